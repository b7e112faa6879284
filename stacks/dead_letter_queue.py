"""The one kind of dead-letter queue the stacks use: encrypted (with a given KMS key, or SQS's own
key where no key is given), TLS only, 14 days' retention, and the cdk-nag finding that it has no
dead-letter queue of its own acknowledged with what it holds."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.nag import acknowledge

RETENTION = cdk.Duration.days(14)


def dead_letter_queue(
    scope: Construct,
    construct_id: str,
    *,
    holds: str,
    key: kms.IKey | None = None,
    queue_name: str | None = None,
) -> sqs.Queue:
    """A dead-letter queue for `holds` (what lands in it, said in the acknowledgement)."""
    queue = sqs.Queue(
        scope,
        construct_id,
        queue_name=queue_name,
        encryption=sqs.QueueEncryption.KMS if key else sqs.QueueEncryption.SQS_MANAGED,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=RETENTION,
    )
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        f"This queue is itself a dead-letter queue (of {holds}); it needs none of its own.",
    )
    return queue
