"""The stacks as AWS will see them: templates, the real CDK CLI, cfn-lint, cdk-nag, every request
against botocore's service models, and the role against every call the steps make."""
