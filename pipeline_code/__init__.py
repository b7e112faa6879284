"""Code that runs inside the SageMaker jobs, the pipeline definition builder, the local runner."""
