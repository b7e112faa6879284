"""The local run: execute the deployed pipeline definition on a laptop, over a lake folder.

See `cli` for the command line and `runner` for how the definition is executed.
"""
