"""The roles that run the steps allow every AWS call the steps make, and the pipeline role
everything SageMaker itself does with it.

The six steps run in order against moto with the prod definition's own arguments (deployed
names: bucket, Glue database, Athena workgroup); every request that reaches the server is
recorded, mapped to the IAM action and resource AWS authorizes it against (`iam_policy`), and
checked against the synthesized role policy: the pipeline role with compute training, and each
step function's role with compute lambda (the same recorded calls: the Lambda steps pass the
jobs' very arguments, which a test here checks). What SageMaker does with the pipeline role is
listed in `service_uses` and `lambda_service_uses`, each with the documentation page it comes
from (docs/iam.md shows the same tables).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import numpy as np
import pandas as pd
import pytest
from aws_cdk.assertions import Template

from local_run.expressions import Scope, resolve, resolve_text
from local_run.runner import typed_parameters
from pipeline_code import lambda_handler, run_folder, storage, tables
from pipeline_code.errors import run_entry_point
from stacks.data_stack import ATHENA_RESULTS_PREFIX
from stacks.pipeline_definition import STEP_MODULES
from tests.infra.api_contract import SERVICE_JOB_NAME, job_steps
from tests.infra.cfn import (
    FAKE_ACCOUNT,
    deployed_definition_body,
    exported_values,
    resource_types,
)
from tests.infra.cfn import resolve as resolve_cfn
from tests.infra.conftest import SynthesizedApp, environment, synth_stacks
from tests.infra.iam_policy import (
    Names,
    Permission,
    allows,
    cloudwatch_operation,
    denied,
    required_permissions,
)
from tests.unit import athena_answers, moto_server
from tests.unit.moto_server import AwsCall, MotoServer, set_athena_results, use_fresh_account

pytestmark = pytest.mark.slow

_moto = moto_server._moto

EXECUTION_DATE = dt.date(2026, 11, 26)
EXECUTION_ID = "a1b2c3d4e5f6"
REGION = "ap-northeast-1"
LOOKBACK_DAYS = 1095  # prod's pipeline.lookback_days: the window Extract asks about


@pytest.fixture(scope="module")
def prod() -> dict[str, cdk.Stack]:
    return synth_stacks(environment("prod"))


@pytest.fixture(scope="module")
def role_statements(prod: dict[str, cdk.Stack]) -> list[dict[str, Any]]:
    template = Template.from_stack(prod["pipeline"])
    policies = template.find_resources("AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith("PipelineRole")]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    exports = exported_values(Template.from_stack(prod["data"]), REGION)
    return resolve_cfn(statements, {}, REGION, resource_types(template), exports)


@pytest.fixture(scope="module")
def names(prod: dict[str, cdk.Stack]) -> Names:
    data = prod["data"]
    types = resource_types(Template.from_stack(data))
    data_key = resolve_cfn(data.resolve(data.key.key_arn), {}, REGION, types)
    return Names(
        partition="aws",
        region=REGION,
        account=FAKE_ACCOUNT,
        data_bucket=f"forecast-prod-data-{FAKE_ACCOUNT}-{REGION}",
        data_key_arn=data_key,
        workgroup="forecast-prod-workgroup",
        database="forecast_prod",
        source_table=tables.APPLICATIONS.name,
        results_prefix=ATHENA_RESULTS_PREFIX,
    )


@pytest.fixture(scope="module")
def prod_definition(prod: dict[str, cdk.Stack]) -> dict[str, Any]:
    return json.loads(
        resolve_cfn(deployed_definition_body(Template.from_stack(prod["pipeline"])), {}, REGION)
    )


# -- the steps' own calls -----------------------------------------------------------------------


def _source(names: Names, endpoint: str, local: Path) -> pd.DataFrame:
    """The data stack's resources in moto, three series over 400 days in the source table (and a
    copy in `local`), Athena's answers to Extract's queries queued; returns the counts Athena's
    UNLOAD would write."""
    boto3.client("s3").create_bucket(Bucket=names.data_bucket)
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": names.database})
    for table in tables.STORED_TABLES:
        location = f"s3://{names.data_bucket}/{table.name}/"
        glue.create_table(
            DatabaseName=names.database, TableInput=tables.glue_table_input(table, location)
        )
    boto3.client("athena").create_work_group(
        Name=names.workgroup,
        Configuration={
            "ResultConfiguration": {
                "OutputLocation": f"s3://{names.data_bucket}/{ATHENA_RESULTS_PREFIX}"
            }
        },
    )
    applications = _applications(days=400)
    for day, rows in applications.groupby(applications["applied_at"].dt.date):
        key = f"{tables.APPLICATIONS.name}/dt={day}/part-0.parquet"
        storage.write_table(rows, f"s3://{names.data_bucket}/{key}")
        storage.write_table(rows, str(local / key))
    start = EXECUTION_DATE - dt.timedelta(days=LOOKBACK_DAYS - 1)
    s3_root = f"s3://{names.data_bucket}/{tables.APPLICATIONS.name}"
    spellings, figures, counts = athena_answers.answers(local, s3_root, start, EXECUTION_DATE)
    set_athena_results(endpoint, athena_answers.NAMES, spellings)
    set_athena_results(endpoint, athena_answers.FIGURES, figures)
    return counts


def _applications(days: int) -> pd.DataFrame:
    """A few applications a day for three car models, every column of the source table."""
    rng = np.random.default_rng(7)
    records = []
    for offset in range(days):
        day = EXECUTION_DATE - dt.timedelta(days=offset)
        for model in ("Aurora", "Breeze", "Comet"):
            for _ in range(int(rng.poisson(4 + 2 * (day.weekday() >= 5))) + 1):
                records.append((f"A{len(records):07d}", f"{day} 10:00:00", model))
    frame = pd.DataFrame(records, columns=["application_id", "applied_at", "car_model"])
    frame["applied_at"] = pd.to_datetime(frame["applied_at"]).astype("datetime64[ms]")
    return frame.assign(plan="3y", channel="web", prefecture="Tokyo")


def _scope(definition: dict[str, Any]) -> Scope:
    def unavailable(*_: str) -> Any:
        raise AssertionError("job arguments read no files")

    return Scope(
        parameters=typed_parameters(definition, {"ExecutionDate": EXECUTION_DATE.isoformat()}),
        execution={
            "PipelineExecutionId": EXECUTION_ID,
            "StartDateTime": "2026-11-26T18:00:04.231Z",
            "PipelineName": "forecast-prod-daily",
        },
        read_json=unavailable,
    )


def _job_argv(step: Mapping[str, Any], scope: Scope) -> list[str]:
    algorithm = step["Arguments"]["AlgorithmSpecification"]
    return [resolve_text(value, scope, step["Name"]) for value in algorithm["ContainerArguments"]]


def _run_job(step: Mapping[str, Any], scope: Scope) -> None:
    """What the step's code does in its job: its entry point with its arguments. (SageMaker's
    own upload of the job's empty model archive, made with the pipeline role, is in
    `service_uses`: a step function makes none.)"""
    module = step["Arguments"]["AlgorithmSpecification"]["ContainerEntrypoint"][-1]
    argv = _job_argv(step, scope)
    assert run_entry_point(importlib.import_module(module).main, argv) == 0, step["Name"]


@pytest.fixture(scope="module")
def step_calls(
    _moto: MotoServer,
    names: Names,
    prod_definition: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[AwsCall]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        endpoint = use_fresh_account(_moto.address, monkeypatch)
        counts = _source(names, endpoint, tmp_path_factory.mktemp("source"))
        scope = _scope(prod_definition)
        steps = [step for step, _ in job_steps(prod_definition["Steps"])]
        with _moto.recorder.recording() as calls:
            # PostProc three times, as re-runs would: the third deletes the first's version.
            for step in [*steps, steps[-1], steps[-1]]:
                _run_job(step, scope)
                if step["Name"] == "Extract":  # what Athena's UNLOAD writes, with the role
                    athena_answers.write_unload(f"s3://{names.data_bucket}", EXECUTION_ID, counts)
        yield list(calls)


def test_every_step_ran_and_made_aws_calls(step_calls: list[AwsCall], names: Names) -> None:
    actions = {a for call in step_calls for a, _ in required_permissions(call, names)}
    assert {
        "athena:StartQueryExecution",
        "glue:GetTable",
        "s3:PutObject",
        "s3:GetObject",
        "s3:ListBucket",
        "kms:GenerateDataKey",
    } <= actions
    assert {"glue:CreatePartition", "glue:BatchDeletePartition", "s3:DeleteObject"} <= actions


def test_the_role_allows_every_call_the_steps_make(
    step_calls: list[AwsCall], names: Names, role_statements: list[dict[str, Any]]
) -> None:
    assert denied(role_statements, step_calls, names) == []


def test_the_steps_put_metrics_only_in_the_namespaces_the_role_allows(
    step_calls: list[AwsCall], role_statements: list[dict[str, Any]]
) -> None:
    """PutMetricData is granted on `*`; its `cloudwatch:namespace` condition is the scope."""
    (statement,) = [s for s in role_statements if "cloudwatch:PutMetricData" in _actions(s)]
    allowed = statement["Condition"]["StringEquals"]["cloudwatch:namespace"]
    assert allowed == ["/aws/sagemaker/TrainingJobs", "Forecast/forecast-prod-daily"]
    assert any(cloudwatch_operation(call) == "PutMetricData" for call in step_calls)
    found = {m["Namespace"] for m in boto3.client("cloudwatch").list_metrics()["Metrics"]}
    # moto reports its own AWS/S3 bucket metrics too; the steps' are the others.
    assert {n for n in found if not n.startswith("AWS/")} == {"Forecast/forecast-prod-daily"}


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def _without(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    trimmed = []
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        kept = [a for a in actions if a != action]
        if kept:
            trimmed.append({**statement, "Action": kept})
    return trimmed


@pytest.mark.parametrize(
    "removed", ["s3:ListBucket", "glue:CreatePartition", "athena:GetQueryExecution", "kms:Decrypt"]
)
def test_a_missing_permission_is_caught(
    step_calls: list[AwsCall],
    names: Names,
    role_statements: list[dict[str, Any]],
    removed: str,
) -> None:
    found = denied(_without(role_statements, removed), step_calls, names)
    assert found and all(line.startswith(f"{removed} on ") for line in found), found


def test_a_resource_outside_the_grant_is_caught(
    names: Names, role_statements: list[dict[str, Any]]
) -> None:
    elsewhere = AwsCall("GET", f"/{names.data_bucket}/secrets/key.txt", {}, "", "", b"")
    assert denied(role_statements, [elsewhere], names) == [
        f"s3:GetObject on arn:aws:s3:::{names.data_bucket}/secrets/key.txt"
    ]


# -- compute lambda: each step function's role, checked against the same calls -------------------


@pytest.fixture(scope="module")
def lambda_template(prod_lambda: SynthesizedApp) -> Template:
    return Template.from_stack(prod_lambda.stacks["pipeline"])


@pytest.fixture(scope="module")
def function_role_statements(
    prod_lambda: SynthesizedApp, lambda_template: Template
) -> dict[str, list[dict[str, Any]]]:
    """Each step function's role policy, resolved, by function name."""
    exports = exported_values(Template.from_stack(prod_lambda.stacks["data"]), REGION)
    types = resource_types(lambda_template)
    policies = lambda_template.find_resources("AWS::IAM::Policy").values()
    by_function = {}
    for function in lambda_template.find_resources("AWS::Lambda::Function").values():
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        (policy,) = [p for p in policies if p["Properties"]["Roles"] == [{"Ref": role}]]
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        name = function["Properties"]["FunctionName"]
        by_function[name] = resolve_cfn(statements, {}, REGION, types, exports)
    assert len(by_function) == 6
    return by_function


@pytest.fixture(scope="module")
def lambda_definition(lambda_template: Template) -> dict[str, Any]:
    return json.loads(resolve_cfn(deployed_definition_body(lambda_template), {}, REGION))


def test_the_lambda_steps_pass_the_jobs_very_arguments(
    prod_definition: dict[str, Any], lambda_definition: dict[str, Any]
) -> None:
    """What each step function's handler runs (its own reading of the resolved event) is the
    command line of the step's job, so the calls recorded from the jobs' arguments are the
    functions' calls too."""
    scope = _scope(prod_definition)
    jobs = {step["Name"]: step for step, _ in job_steps(prod_definition["Steps"])}
    lambdas = [step for step, _ in job_steps(lambda_definition["Steps"])]
    assert [step["Name"] for step in lambdas] == list(jobs) == list(STEP_MODULES)
    for step in lambdas:
        event = {k: resolve(v, scope, step["Name"]) for k, v in step["Arguments"].items()}
        call = lambda_handler.step_call(event)
        job = jobs[step["Name"]]
        assert call.module == STEP_MODULES[step["Name"]]
        assert job["Arguments"]["AlgorithmSpecification"]["ContainerEntrypoint"][-1] == (
            f"pipeline_code.steps.{call.module}"
        )
        assert call.arguments == _job_argv(job, scope), step["Name"]


def test_each_function_role_allows_every_call_the_steps_make(
    step_calls: list[AwsCall],
    names: Names,
    function_role_statements: dict[str, list[dict[str, Any]]],
) -> None:
    for name, statements in function_role_statements.items():
        assert denied(statements, step_calls, names) == [], name


def test_function_roles_hold_the_pipeline_roles_data_statements_and_no_more(
    role_statements: list[dict[str, Any]],
    function_role_statements: dict[str, list[dict[str, Any]]],
) -> None:
    """The very statements the training-mode pipeline role gives the jobs for the data, built
    once (`StepDataAccess`); PutMetricData only in the environment's namespace, and writing to
    the function's own log group."""
    data_sids = {
        "ListOwnPrefixes",
        "ReadSource",
        "ReadWriteRunsResultsAndStoredVersions",
        "ReadAndReplacePublicationsAndRunHistory",
        "UseDataKey",
        "QueryInOwnWorkgroup",
        "ReadSourceAndRegisterPublishedPartitions",
        "DropSupersededVersions",
    }
    jobs = [s for s in role_statements if s["Sid"] in data_sids]
    assert {s["Sid"] for s in jobs} == data_sids
    for name, statements in function_role_statements.items():
        by_sid = {s["Sid"]: s for s in statements}
        assert set(by_sid) == data_sids | {"PublishGateMetrics", "WriteOwnLogs"}, name
        assert [by_sid[s["Sid"]] for s in jobs] == jobs, name
        metrics = by_sid["PublishGateMetrics"]
        assert _actions(metrics) == ["cloudwatch:PutMetricData"]
        namespaces = metrics["Condition"]["StringEquals"]["cloudwatch:namespace"]
        assert namespaces == ["Forecast/forecast-prod-daily"], name
        assert _actions(by_sid["WriteOwnLogs"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]


def test_a_function_role_without_a_data_permission_is_caught(
    step_calls: list[AwsCall],
    names: Names,
    function_role_statements: dict[str, list[dict[str, Any]]],
) -> None:
    statements = next(iter(function_role_statements.values()))
    found = denied(_without(statements, "glue:BatchDeletePartition"), step_calls, names)
    assert found and all(line.startswith("glue:BatchDeletePartition on ") for line in found)


# -- what SageMaker itself does with the role ------------------------------------------------------

ROLES_PAGE = "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html"
PIPELINES_ACCESS_PAGE = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/build-and-manage-access.html"
)


def service_uses(definition: dict[str, Any], names: Names) -> list[tuple[str, str, str]]:
    """(action, resource, documentation page) for what SageMaker does with the pipeline role:
    the pipeline starts each job and passes the role to it; the job pulls its image, writes its
    logs and metrics and uploads its model archive. docs/iam.md holds the same table."""
    step, _ = next(job_steps(definition["Steps"]))
    arguments = step["Arguments"]
    image = arguments["AlgorithmSpecification"]["TrainingImage"]
    registry, _, repository = image.partition("/")
    account, _, _, region = registry.split(".")[:4]
    repository_arn = f"arn:aws:ecr:{region}:{account}:repository/{repository.split(':')[0]}"
    prefix = f"arn:aws:logs:{names.region}:{names.account}:log-group:/aws/sagemaker/TrainingJobs"
    job = f"arn:aws:sagemaker:{names.region}:{names.account}:training-job/{SERVICE_JOB_NAME}"
    output = arguments["OutputDataConfig"]["S3OutputPath"].removeprefix("s3://")
    model = f"arn:aws:s3:::{output}/{SERVICE_JOB_NAME}/output/model.tar.gz"
    return [
        ("sagemaker:CreateTrainingJob", job, PIPELINES_ACCESS_PAGE),
        ("sagemaker:DescribeTrainingJob", job, PIPELINES_ACCESS_PAGE),
        ("sagemaker:StopTrainingJob", job, PIPELINES_ACCESS_PAGE),
        ("sagemaker:AddTags", job, PIPELINES_ACCESS_PAGE),
        ("iam:PassRole", arguments["RoleArn"], PIPELINES_ACCESS_PAGE),
        ("ecr:GetAuthorizationToken", "*", ROLES_PAGE),
        ("ecr:BatchCheckLayerAvailability", repository_arn, ROLES_PAGE),
        ("ecr:GetDownloadUrlForLayer", repository_arn, ROLES_PAGE),
        ("ecr:BatchGetImage", repository_arn, ROLES_PAGE),
        ("logs:CreateLogGroup", f"{prefix}:*", ROLES_PAGE),
        ("logs:DescribeLogStreams", f"{prefix}:*", ROLES_PAGE),
        ("logs:CreateLogStream", f"{prefix}:log-stream:{SERVICE_JOB_NAME}/algo-1", ROLES_PAGE),
        ("logs:PutLogEvents", f"{prefix}:log-stream:{SERVICE_JOB_NAME}/algo-1", ROLES_PAGE),
        ("cloudwatch:PutMetricData", "*", ROLES_PAGE),
        ("s3:PutObject", model, ROLES_PAGE),
        ("kms:GenerateDataKey", names.data_key_arn, ROLES_PAGE),
    ]


def test_the_role_allows_what_sagemaker_does_with_it(
    prod_definition: dict[str, Any], names: Names, role_statements: list[dict[str, Any]]
) -> None:
    uses = service_uses(prod_definition, names)
    missing = [(a, r) for a, r, _ in uses if not allows(role_statements, (a, r))]
    assert missing == []


def test_docs_list_every_service_use_with_its_page(
    prod_definition: dict[str, Any], names: Names
) -> None:
    table = (Path(__file__).resolve().parents[2] / "docs" / "iam.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    for action, _, page in service_uses(prod_definition, names):
        assert any(f"`{action}`" in row and page in row for row in rows), action


def test_a_log_group_arn_without_the_stream_wildcard_is_denied() -> None:
    group = "arn:aws:logs:ap-northeast-1:123456789012:log-group:/aws/sagemaker/TrainingJobs"
    statements = [{"Effect": "Allow", "Action": ["logs:CreateLogGroup"], "Resource": [group]}]
    permission: Permission = ("logs:CreateLogGroup", f"{group}:*")
    assert not allows(statements, permission)


# -- what SageMaker does with the pipeline role with compute lambda --------------------------------

PIPELINES_MANAGED_POLICIES_PAGE = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/security-iam-awsmanpol-pipelines.html"
)
S3_KMS_PAGE = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html"


def lambda_service_uses(definition: dict[str, Any], names: Names) -> list[tuple[str, str, str]]:
    """(action, resource, documentation page) for what SageMaker does with the pipeline role
    when every step is a Lambda step: invoke each step's function, and read this execution's
    evaluation.json for the gate's JsonGet (an SSE-KMS object: decrypting it with the data
    key). docs/iam.md holds the same table."""
    functions = [step["FunctionArn"] for step, _ in job_steps(definition["Steps"])]
    evaluation = (
        f"arn:aws:s3:::{names.data_bucket}/{run_folder.RUNS}/{EXECUTION_ID}/"
        f"{run_folder.relative(run_folder.EVALUATION)}"
    )
    return [
        *(("lambda:InvokeFunction", arn, PIPELINES_MANAGED_POLICIES_PAGE) for arn in functions),
        ("s3:GetObject", evaluation, PIPELINES_ACCESS_PAGE),
        ("kms:Decrypt", names.data_key_arn, S3_KMS_PAGE),
    ]


@pytest.fixture(scope="module")
def lambda_role_statements(
    prod_lambda: SynthesizedApp, lambda_template: Template
) -> list[dict[str, Any]]:
    (pipeline,) = lambda_template.find_resources("AWS::SageMaker::Pipeline").values()
    role = pipeline["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    policies = lambda_template.find_resources("AWS::IAM::Policy").values()
    (policy,) = [p for p in policies if p["Properties"]["Roles"] == [{"Ref": role}]]
    exports = exported_values(Template.from_stack(prod_lambda.stacks["data"]), REGION)
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    return resolve_cfn(statements, {}, REGION, resource_types(lambda_template), exports)


def test_the_lambda_mode_pipeline_role_allows_what_sagemaker_does_and_nothing_else(
    lambda_definition: dict[str, Any], names: Names, lambda_role_statements: list[dict[str, Any]]
) -> None:
    uses = lambda_service_uses(lambda_definition, names)
    assert [(a, r) for a, r, _ in uses if not allows(lambda_role_statements, (a, r))] == []
    granted = {(a, r) for s in lambda_role_statements for a in _actions(s) for r in _as_list(s)}
    needed = {(a, r) for a, r, _ in uses}
    # Every grant serves a use: the functions exactly, the evaluation file of any execution.
    assert {(a, r) for a, r in granted if "*" not in r} <= needed
    assert {(a, r) for a, r in granted if "*" in r} == {
        (
            "s3:GetObject",
            f"arn:aws:s3:::{names.data_bucket}/runs/*/evaluation/evaluation.json",
        )
    }


def test_docs_list_every_lambda_mode_service_use_with_its_page(
    lambda_definition: dict[str, Any], names: Names
) -> None:
    table = (Path(__file__).resolve().parents[2] / "docs" / "iam.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    for action, _, page in lambda_service_uses(lambda_definition, names):
        assert any(f"`{action}`" in row and page in row for row in rows), action


def _as_list(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]
