"""The CDK stacks of one environment (one module each, wiring their parts), the constructs they
share, the pipeline definition builder and the typed configuration they are built from."""
