"""The data stack: encryption, bucket hardening, the Athena workgroup and the Glue tables."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk.assertions import Match, Template

from pipeline_code import tables
from tests.infra.cfn import resolve


def _template(stacks: dict[str, cdk.Stack]) -> Template:
    return Template.from_stack(stacks["data"])


def test_customer_managed_key_rotates(dev_stacks: dict[str, cdk.Stack]) -> None:
    template = _template(dev_stacks)
    template.resource_count_is("AWS::KMS::Key", 1)
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties("AWS::KMS::Alias", {"AliasName": "alias/forecast-dev-data"})


def test_data_bucket_is_kms_encrypted_versioned_private_and_logged(
    dev_stacks: dict[str, cdk.Stack],
) -> None:
    template = _template(dev_stacks)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    Match.object_like(
                        {
                            "BucketKeyEnabled": True,
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": Match.any_value(),
                            },
                        }
                    )
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": {
                "DestinationBucketName": Match.any_value(),
                "LogFilePrefix": "data-bucket/",
            },
        },
    )


def test_every_bucket_denies_plain_http(dev_stacks: dict[str, cdk.Stack]) -> None:
    template = _template(dev_stacks)
    buckets = template.find_resources("AWS::S3::Bucket")
    policies = template.find_resources("AWS::S3::BucketPolicy")
    ssl_denied = [
        policy["Properties"]["Bucket"]["Ref"]
        for policy in policies.values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert sorted(ssl_denied) == sorted(buckets)


def test_workgroup_enforces_encrypted_results(dev_stacks: dict[str, cdk.Stack]) -> None:
    template = _template(dev_stacks)
    template.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "Name": "forecast-dev-workgroup",
            "WorkGroupConfiguration": Match.object_like(
                {
                    "EnforceWorkGroupConfiguration": True,
                    "ResultConfiguration": {
                        "EncryptionConfiguration": {
                            "EncryptionOption": "SSE_KMS",
                            "KmsKey": Match.any_value(),
                        },
                        "OutputLocation": Match.any_value(),
                    },
                }
            ),
        },
    )


def test_glue_tables_match_the_data_contracts(dev_stacks: dict[str, cdk.Stack]) -> None:
    template = _template(dev_stacks)
    template.has_resource_properties(
        "AWS::Glue::Database",
        {"DatabaseInput": {"Name": "forecast_dev", "Description": Match.any_value()}},
    )
    found = {
        resource["Properties"]["TableInput"]["Name"]: resource["Properties"]["TableInput"]
        for resource in template.find_resources("AWS::Glue::Table").values()
    }
    stored = {table.name for table in tables.STORED_TABLES}
    published = {table.name for table in tables.PUBLISHED_TABLES}
    assert stored == {
        "applications",
        "forecasts_versions",
        "forecast_metrics_versions",
        "forecast_accuracy_versions",
        "publications",
    }
    assert published == {"forecasts", "forecast_metrics", "forecast_accuracy"}
    assert set(found) == stored | published | {"run_history"}
    for table in (*tables.STORED_TABLES, tables.RUN_HISTORY):
        table_input = found[table.name]
        assert table_input["TableType"] == "EXTERNAL_TABLE"
        columns = [(c["Name"], c["Type"]) for c in table_input["StorageDescriptor"]["Columns"]]
        assert columns == [(c.name, c.glue_type) for c in table.columns]
        assert [k["Name"] for k in table_input["PartitionKeys"]] == list(table.partition_keys)
        assert table_input["Parameters"]["classification"] == "parquet"
    assert [k["Name"] for k in found["forecasts_versions"]["PartitionKeys"]] == [
        "execution_date",
        "version",
    ]
    assert found["applications"]["Parameters"]["projection.dt.type"] == "date"
    assert "projection.enabled" not in found["publications"]["Parameters"]
    # Every execution's row lands without a Glue call: its daily partitions are projected.
    history = found["run_history"]["Parameters"]
    assert history["projection.enabled"] == "true"
    assert history["projection.execution_date.type"] == "date"
    location = resolve(found["run_history"]["StorageDescriptor"]["Location"], {})
    assert location.endswith("/run_history/"), location
    for table in tables.PUBLISHED_TABLES:
        view = found[table.name]
        assert view["TableType"] == "VIRTUAL_VIEW"
        columns = [c["Name"] for c in view["StorageDescriptor"]["Columns"]]
        assert columns == [*table.column_names, "execution_date"]


def test_the_published_views_are_created_after_the_tables_they_read(
    dev_stacks: dict[str, cdk.Stack],
) -> None:
    resources = _template(dev_stacks).to_json()["Resources"]
    logical = {
        body["Properties"]["TableInput"]["Name"]: name
        for name, body in resources.items()
        if body["Type"] == "AWS::Glue::Table"
    }
    for table in tables.PUBLISHED_TABLES:
        depends = set(resources[logical[table.name]].get("DependsOn", []))
        assert {logical[f"{table.name}_versions"], logical["publications"]} <= depends


def test_dev_data_is_destroyed_with_the_stack_and_prod_data_is_kept() -> None:
    from tests.infra.conftest import environment, synth_stacks

    prod = Template.from_stack(synth_stacks(environment("prod"))["data"])
    for resource in prod.find_resources("AWS::S3::Bucket").values():
        assert resource["DeletionPolicy"] == "Retain"
    dev = Template.from_stack(synth_stacks(environment("dev"))["data"])
    for resource in dev.find_resources("AWS::S3::Bucket").values():
        assert resource["DeletionPolicy"] == "Delete"
    # A bucket that still holds objects cannot be deleted: dev's empty themselves first.
    emptied = dev.find_resources("Custom::S3AutoDeleteObjects")
    assert len(emptied) == len(dev.find_resources("AWS::S3::Bucket")) == 2
    assert prod.find_resources("Custom::S3AutoDeleteObjects") == {}
