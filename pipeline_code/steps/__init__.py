"""One module per pipeline step; each is an entry point: `python -m pipeline_code.steps.<name>`."""
