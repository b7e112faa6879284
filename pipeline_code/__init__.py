"""The job package: everything that runs inside the SageMaker jobs, and nothing else.

It is what the job image holds (pipeline_code/Dockerfile copies this folder): the step entry points,
forecasting, storage and the table contracts. The definition builder (stacks/), the local runner
and demo generator (local_run/) and the re-run tool (rerun/) live outside it.
"""
