"""The CDK stacks of one environment, and the typed configuration they are built from."""
