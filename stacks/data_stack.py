"""Data stack: the KMS key, the data and access-log buckets, the Athena workgroup and the Glue
database: the source table, the two published views and the tables behind them (stored versions
and `publications`, see `stacks.glue_views`), and `run_history` (pipeline_code/run_history.py)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline_code import run_folder, tables
from stacks import glue_views
from stacks.config import EnvironmentConfig
from stacks.nag import acknowledge

ATHENA_RESULTS_PREFIX = "athena-results/"
RUNS_PREFIX = f"{run_folder.RUNS}/"
PROJECTED_TABLES = (tables.APPLICATIONS, tables.RUN_HISTORY)
"""Tables whose daily partitions Athena projects: nothing registers them one by one."""


class DataStack(cdk.Stack):
    """Owns everything that holds data; other stacks receive it as constructor arguments."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        removal = cdk.RemovalPolicy.RETAIN if config.retain_data else cdk.RemovalPolicy.DESTROY

        self.key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{config.resource_name('data')}",
            description=f"Encrypts the {config.name} forecast pipeline's data, queries and alerts",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        self.log_bucket = self._log_bucket(removal)
        self.bucket = self._data_bucket(removal)
        if not config.retain_data:
            review_auto_delete_provider(self)
        self.workgroup = self._workgroup()
        self.database_name = config.glue_database
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=self.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description=f"Forecast pipeline ({config.name}): source and published tables",
            ),
        )
        self.tables = {
            table.name: self._glue_table(table)
            for table in (*tables.STORED_TABLES, tables.RUN_HISTORY)
        }
        self.views = {table.name: self._published_view(table) for table in tables.PUBLISHED_TABLES}

    def _log_bucket(self, removal: cdk.RemovalPolicy) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            # S3 server access logging can only deliver to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(365),
                    noncurrent_version_expiration=cdk.Duration.days(30),
                )
            ],
            removal_policy=removal,
            # A bucket that is not retained must be emptied, or `cdk destroy` fails on it.
            auto_delete_objects=not self.config.retain_data,
        )
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "This is the access-log bucket itself; logging it into itself would loop.",
        )
        return bucket

    def _data_bucket(self, removal: cdk.RemovalPolicy) -> s3.Bucket:
        return s3.Bucket(
            self,
            "DataBucket",
            bucket_name=self.config.data_bucket_name(self.account),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="data-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-run-folders",
                    prefix=RUNS_PREFIX,
                    expiration=cdk.Duration.days(run_folder.RETENTION_DAYS),
                ),
                s3.LifecycleRule(
                    id="expire-query-results",
                    prefix=ATHENA_RESULTS_PREFIX,
                    expiration=cdk.Duration.days(30),
                ),
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=cdk.Duration.days(30),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                ),
            ],
            removal_policy=removal,
            auto_delete_objects=not self.config.retain_data,
        )

    def _workgroup(self) -> athena.CfnWorkGroup:
        return athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=self.config.resource_name("workgroup"),
            description=f"Forecast pipeline queries ({self.config.name})",
            state="ENABLED",
            recursive_delete_option=not self.config.retain_data,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=100 * 1024**3,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=self.bucket.s3_url_for_object(ATHENA_RESULTS_PREFIX),
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=self.key.key_arn
                    ),
                ),
            ),
        )

    def _glue_table(self, table: tables.Table) -> cdk.CfnResource:
        projection = (
            _daily_partition_projection(table.partition_key) if table in PROJECTED_TABLES else None
        )
        table_input = tables.glue_table_input(
            table, self.bucket.s3_url_for_object(f"{table.name}/"), projection
        )
        resource = glue_views.glue_table_resource(
            self, f"Table{_pascal(table.name)}", self.database_name, table_input
        )
        resource.add_resource_dependency(self.database)
        return resource

    def _published_view(self, table: tables.Table) -> cdk.CfnResource:
        view = glue_views.glue_table_resource(
            self,
            f"View{_pascal(table.name)}",
            self.database_name,
            glue_views.published_view_input(table, self.database_name),
        )
        view.add_resource_dependency(self.tables[tables.versions_of(table).name])
        view.add_resource_dependency(self.tables[tables.PUBLICATIONS.name])
        return view


def _pascal(name: str) -> str:
    return name.title().replace("_", "")


def _daily_partition_projection(key: str) -> dict[str, str]:
    """New source and run-history partitions appear every day; projection makes them queryable
    without registering each one (the stored versions and `publications` are registered by
    PostProc)."""
    return {
        "projection.enabled": "true",
        f"projection.{key}.type": "date",
        f"projection.{key}.format": "yyyy-MM-dd",
        f"projection.{key}.range": "2015-01-01,NOW",
        f"projection.{key}.interval": "1",
        f"projection.{key}.interval.unit": "DAYS",
    }


def review_auto_delete_provider(stack: cdk.Stack) -> None:
    """The CDK's own function that empties non-retained buckets on delete: its managed policy is
    acknowledged, and its DependsOn on its role dropped (its GetAtt of the role already orders
    them; cfn-lint W3005)."""
    provider = stack.node.try_find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider")
    assert provider is not None, "auto_delete_objects creates the provider"
    handler = provider.node.find_child("Handler")
    assert isinstance(handler, cdk.CfnResource)
    handler.add_deletion_override("DependsOn")
    acknowledge(
        provider,
        "AwsSolutions-IAM4",
        "The CDK-provided function that empties the bucket on stack deletion (retain_data off)"
        " uses AWSLambdaBasicExecutionRole for its own logs; its S3 rights are in the bucket"
        " policy, scoped to this bucket.",
    )
