"""The test suite (`make test`): unit/ (each step, the forecasting code, the Lambda handlers, AWS
paths against moto), infra/ (the stacks: CDK assertions, `cdk synth` through the CLI, cfn-lint,
cdk-nag, API contracts, IAM coverage), integration/ (whole local runs on small demo lakes)."""
