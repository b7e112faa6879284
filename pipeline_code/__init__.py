"""Code that runs inside the SageMaker jobs, the pipeline definition builder and the local runner."""
