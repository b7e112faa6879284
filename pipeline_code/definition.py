"""The SageMaker pipeline definition: six processing steps, a quality gate and a fail step.

`build_definition(settings)` returns the definition JSON, built offline with the SageMaker Python
SDK 2.x. Values only known at deploy time are written as the placeholder strings in `PLACEHOLDERS`;
the CDK stack swaps them for tokens with `substitute_placeholders` (a plain string replacement,
because the SDK parses some of these values and breaks on tokens). Where each one appears:

- `role_arn` `arn:aws:iam::000000000000:role/PLACEHOLDER-PIPELINE-ROLE`: whole value (`RoleArn`).
- `image_uri` `PLACEHOLDER-IMAGE-URI`: whole value (`ImageUri`), only when the settings' image_uri
  is None.
- `code_uri` `s3://PLACEHOLDER-CODE-ASSET/pipeline_code.zip`: whole value (the code input's
  `S3Uri`); replace it with the asset's `s3://bucket/key` URL.
- `data_bucket` `PLACEHOLDER-DATA-BUCKET`: a substring, always right after `s3://` (the
  `--data-root` argument and the evaluation output's URI); replace it with the bucket name.
- `glue_database` `PLACEHOLDER_GLUE_DATABASE`: whole value (`--database` of Extract and PostProc).
- `athena_workgroup` `PLACEHOLDER_ATHENA_WORKGROUP`: whole value (`--workgroup` of Extract).

No placeholder is a substring of another, so replacing them in any order is safe.

Step code ships as one zip: the CDK directory asset of the repository's `pipeline_code/` folder, so
the package's files sit at the zip's root (`requirements.txt`, `steps/...`). A ProcessingInput
downloads that zip, unopened, into `CODE_INPUT_DIR`; `container_entrypoint` unpacks it into
`<CODE_DIR>/pipeline_code` so that `python -m pipeline_code.steps.<module>` resolves from
`CODE_DIR`, installs the requirements when the image lacks them, and runs the step with the
container arguments.

Caching is off for every step, on purpose. Each step's arguments carry `--execution-id` (steps
share files through the run folder `runs/<execution-id>/`), so a cache key never matches across
executions, and inside one execution a retried step must run again anyway. Dropping the id to make
hits possible would let a re-run of a date reuse an Extract of source data that has since changed,
and would point later steps at another execution's run folder. A re-run of a failed date is cheap
(one batch), so correctness wins over the saved minutes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_code import calendar_spec

PLACEHOLDERS: Mapping[str, str] = {
    "role_arn": "arn:aws:iam::000000000000:role/PLACEHOLDER-PIPELINE-ROLE",
    "image_uri": "PLACEHOLDER-IMAGE-URI",
    "code_uri": "s3://PLACEHOLDER-CODE-ASSET/pipeline_code.zip",
    "data_bucket": "PLACEHOLDER-DATA-BUCKET",
    "glue_database": "PLACEHOLDER_GLUE_DATABASE",
    "athena_workgroup": "PLACEHOLDER_ATHENA_WORKGROUP",
}

CODE_INPUT_DIR = "/opt/ml/processing/input/code"
"""Where the code input downloads the zip (as `<asset hash>.zip`, the file name is not known)."""
CODE_DIR = "/opt/ml/processing/code"
"""Where the zip is unpacked, as `<CODE_DIR>/pipeline_code/...`; the steps run from here."""
EVALUATION_DIR = "/opt/ml/processing/evaluation"
"""TrainEvaluation's `--output-dir`, uploaded to the run folder's `evaluation/` by its output."""

EVALUATION_OUTPUT = "evaluation"
EVALUATION_PROPERTY_FILE = "EvaluationReport"
EVALUATION_FILE = "evaluation.json"
GATE_STEP = "QualityGate"
FAIL_STEP = "GateFailed"

STEP_MODULES: Mapping[str, str] = {
    "Extract": "extract",
    "PreProc": "preproc",
    "Train": "train",
    "TrainEvaluation": "evaluate",
    "Predict": "predict",
    "PostProc": "postproc",
}
"""Step name -> module under `pipeline_code.steps`."""

# Any region works: nothing is looked up, and the image URI (the only regional value) is either
# given or a placeholder the stack fills per region.
_BUILD_REGION = "us-east-1"


@dataclass(frozen=True)
class DefinitionSettings:
    """What the definition is built from; cdk.json's environment config supplies these."""

    pipeline_name: str
    timezone: str = "Asia/Tokyo"
    lookback_days: int = 1095
    horizon_days: int = 28
    max_mase: float = 1.5
    max_relative_mase: float = 1.0
    interval_level: float = 0.8
    backtest_folds: int = 3
    season_length: int = 7
    min_history_days: int = 56
    holiday_country: str | None = calendar_spec.DEFAULT_COUNTRY  # None: no public holidays
    calendar_breaks: tuple[str, ...] = calendar_spec.DEFAULT_BREAKS
    company_days: tuple[str, ...] = ()  # `YYYY-MM-DD[+N]:name` items, one job argument each
    train_workers: int = 2
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    volume_size_gb: int = 30
    max_runtime_seconds: int = 3600
    image_uri: str | None = None
    """None: the prebuilt SageMaker scikit-learn 1.4-2 image, filled in by the stack per region."""
    install_requirements: bool = True
    """True for the prebuilt image (pip install at job start); False for an image that has them."""

    def __post_init__(self) -> None:
        problems = _setting_problems(self)
        if problems:
            raise ValueError("DefinitionSettings: " + "; ".join(problems))


def _setting_problems(settings: DefinitionSettings) -> list[str]:
    checks = {
        "pipeline_name must not be empty": bool(settings.pipeline_name),
        "lookback_days must be > 0": settings.lookback_days > 0,
        "horizon_days must be > 0": settings.horizon_days > 0,
        "max_mase must be > 0": settings.max_mase > 0,
        "max_relative_mase must be > 0": settings.max_relative_mase > 0,
        "interval_level must be between 0 and 1": 0 < settings.interval_level < 1,
        "backtest_folds must be > 0": settings.backtest_folds > 0,
        "season_length must be > 0": settings.season_length > 0,
        "min_history_days must be > 0": settings.min_history_days > 0,
        "train_workers must be > 0": settings.train_workers > 0,
        "instance_count must be > 0": settings.instance_count > 0,
        "volume_size_gb must be > 0": settings.volume_size_gb > 0,
        "max_runtime_seconds must be > 0": settings.max_runtime_seconds > 0,
        "image_uri must not be empty (use None for the default image)": settings.image_uri != "",
        f"at most {calendar_spec.MAX_COMPANY_DAYS} company_days": len(settings.company_days)
        <= calendar_spec.MAX_COMPANY_DAYS,
        "company_days must be YYYY-MM-DD[+N]:name items": all(
            _is_company_day(item) for item in settings.company_days
        ),
        "calendar_breaks must be known breaks": set(settings.calendar_breaks)
        <= set(calendar_spec.BREAKS),
    }
    return [problem for problem, ok in checks.items() if not ok]


def _is_company_day(item: str) -> bool:
    try:
        calendar_spec.parse_company_days(item)
    except ValueError:
        return False
    return True


def _calendar_arguments(settings: DefinitionSettings) -> list[str]:
    """The Train job's calendar: short items, so the job stays within SageMaker's limits."""
    arguments = [
        "--holiday-country",
        settings.holiday_country or "none",
        "--breaks",
        ",".join(settings.calendar_breaks) or "none",
    ]
    if settings.company_days:
        arguments += ["--company-days", *settings.company_days]
    return arguments


def container_entrypoint(module: str, install_requirements: bool) -> list[str]:
    """The job's entry command: unpack the code zip, install requirements, run the step.

    SageMaker appends the ContainerArguments, which reach the step as `"$@"`; the last element
    fills `$0` (the step module) so error messages name the step. `PIPELINE_CODE_INPUT_DIR` and
    `PIPELINE_CODE_DIR` override the two folders, which lets a test run this command on a laptop.
    """
    install = (
        "python3 -m pip install --quiet --no-cache-dir --disable-pip-version-check"
        ' -r "$package/requirements.txt"\n'
        if install_requirements
        else ""
    )
    script = (
        "set -euo pipefail\n"
        f'input_dir="${{PIPELINE_CODE_INPUT_DIR:-{CODE_INPUT_DIR}}}"\n'
        f'code_dir="${{PIPELINE_CODE_DIR:-{CODE_DIR}}}"\n'
        'package="$code_dir/pipeline_code"\n'
        'shopt -s nullglob\nzips=("$input_dir"/*.zip)\n'
        'if [ "${#zips[@]}" -ne 1 ]; then\n'
        '  echo "$0: expected one code zip in $input_dir, found ${#zips[@]}" >&2; exit 2\n'
        "fi\n"
        # `unzip` is not in every image; Python's zipfile module always is.
        'mkdir -p "$package" && python3 -m zipfile -e "${zips[0]}" "$package"\n'
        'if [ ! -f "$package/steps/__init__.py" ]; then\n'
        '  echo "$0: ${zips[0]} must hold the pipeline_code folder\'s files at its root" >&2\n'
        "  exit 2\n"
        "fi\n"
        f"{install}"
        'cd "$code_dir"\n'
        f'exec python3 -m pipeline_code.steps.{module} "$@"\n'
    )
    return ["bash", "-c", script, f"pipeline_code.steps.{module}"]


def substitute_placeholders(definition: str, values: Mapping[str, str]) -> str:
    """Replace each placeholder named in `values` (keys of PLACEHOLDERS) with its value."""
    unknown = sorted(set(values) - set(PLACEHOLDERS))
    if unknown:
        raise KeyError(f"unknown placeholder names {unknown}; known: {sorted(PLACEHOLDERS)}")
    for name, value in values.items():
        definition = definition.replace(PLACEHOLDERS[name], value)
    return definition


def build_definition(settings: DefinitionSettings) -> str:
    """The pipeline definition JSON, with placeholders for deploy-time values."""
    with _quiet_sdk():
        from sagemaker.workflow.pipeline import Pipeline

        session = _offline_session()
        parameters = _Parameters.create(settings)
        steps = _build_steps(settings, parameters, session)
        pipeline = Pipeline(
            name=settings.pipeline_name,
            parameters=parameters.all(),
            steps=steps,
            sagemaker_session=session,
            # Experiments tracking is not used; leaving it out keeps the definition to what runs.
            pipeline_experiment_config=None,
        )
        definition = json.loads(pipeline.definition())
    # The SDK writes `null` for a missing experiment config; the key is optional, leave it out.
    if definition.get("PipelineExperimentConfig") is None:
        definition.pop("PipelineExperimentConfig", None)
    return json.dumps(definition, indent=2)


@contextlib.contextmanager
def _quiet_sdk() -> Iterator[None]:
    """Silence the SDK's notices that do not apply to an offline build (no jobs, no config)."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    for name in ("sagemaker.config", "sagemaker.workflow.utilities"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"sagemaker\..*")
        yield


def _offline_session() -> Any:
    """A PipelineSession that never calls AWS: dummy credentials, explicit config and bucket."""
    import boto3
    from sagemaker.workflow.pipeline_context import PipelineSession

    boto_session = boto3.Session(
        region_name=_BUILD_REGION,
        aws_access_key_id="offline-build",
        aws_secret_access_key="offline-build",
    )
    session = PipelineSession(
        boto_session=boto_session,
        default_bucket=PLACEHOLDERS["data_bucket"],
        # An explicit SDK config: a developer's ~/.config/sagemaker/config.yaml must not inject
        # defaults (VPC, KMS keys, tags) into the deployed definition.
        sagemaker_config={"SchemaVersion": "1.0"},
    )
    # Emptied after construction: the SDK re-validates a non-empty config on every lookup
    # (seconds per build), while an empty one means "no defaults" without any validation.
    session.sagemaker_config = {}
    return session


@dataclass(frozen=True)
class _Parameters:
    execution_date: Any
    max_mase: Any
    max_relative_mase: Any
    horizon: Any

    @classmethod
    def create(cls, settings: DefinitionSettings) -> _Parameters:
        from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString

        return cls(
            execution_date=ParameterString("ExecutionDate", default_value=""),
            max_mase=ParameterFloat("MaxMase", default_value=settings.max_mase),
            max_relative_mase=ParameterFloat(
                "MaxRelativeMase", default_value=settings.max_relative_mase
            ),
            horizon=ParameterInteger("Horizon", default_value=settings.horizon_days),
        )

    def all(self) -> list[Any]:
        return [self.execution_date, self.max_mase, self.max_relative_mase, self.horizon]


def _data_root() -> str:
    return f"s3://{PLACEHOLDERS['data_bucket']}"


def _common_arguments(settings: DefinitionSettings, parameters: _Parameters) -> list[Any]:
    from sagemaker.workflow.execution_variables import ExecutionVariables

    return [
        "--execution-date",
        parameters.execution_date,
        "--start-time",
        ExecutionVariables.START_DATETIME,
        "--timezone",
        settings.timezone,
        "--execution-id",
        ExecutionVariables.PIPELINE_EXECUTION_ID,
        "--data-root",
        _data_root(),
    ]


def _step_arguments(settings: DefinitionSettings, parameters: _Parameters) -> dict[str, list[Any]]:
    """The step-specific arguments; numeric parameters are joined into the strings jobs take."""
    database = PLACEHOLDERS["glue_database"]
    return {
        "Extract": [
            "--lookback-days",
            str(settings.lookback_days),
            "--database",
            database,
            "--workgroup",
            PLACEHOLDERS["athena_workgroup"],
        ],
        "PreProc": ["--min-history-days", str(settings.min_history_days)],
        "Train": [
            "--horizon",
            parameters.horizon.to_string(),
            "--season-length",
            str(settings.season_length),
            "--backtest-folds",
            str(settings.backtest_folds),
            "--workers",
            str(settings.train_workers),
            *_calendar_arguments(settings),
        ],
        "TrainEvaluation": [
            "--max-mase",
            parameters.max_mase.to_string(),
            "--max-relative-mase",
            parameters.max_relative_mase.to_string(),
            "--output-dir",
            EVALUATION_DIR,
        ],
        "Predict": [
            "--horizon",
            parameters.horizon.to_string(),
            "--interval-level",
            str(settings.interval_level),
        ],
        "PostProc": ["--database", database],
    }


_STEP_DESCRIPTIONS: Mapping[str, str] = {
    "Extract": "Query the source table for the look-back window ending at the execution date.",
    "PreProc": "Turn raw rows into clean daily series per car model.",
    "Train": "Fit forecasting models per series; choose by rolling-origin backtest.",
    "TrainEvaluation": "Score the backtest against the gate thresholds; write evaluation.json.",
    "Predict": "Forecast the horizon (point and interval) with the chosen models.",
    "PostProc": "Publish forecasts and metrics to the execution date's partitions.",
}


def _retry_policies() -> list[Any]:
    """Retry what is AWS's fault (throttling, faults, capacity), never a step's own error."""
    from sagemaker.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )

    return [
        StepRetryPolicy(
            exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
            interval_seconds=10,
            backoff_rate=2.0,
            max_attempts=5,
        ),
        SageMakerJobStepRetryPolicy(
            exception_types=[
                SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
            ],
            # Capacity comes back in minutes, not seconds.
            interval_seconds=60,
            backoff_rate=2.0,
            max_attempts=3,
        ),
    ]


def _processor(settings: DefinitionSettings, step_name: str, session: Any) -> Any:
    from sagemaker.processing import Processor

    return Processor(
        role=PLACEHOLDERS["role_arn"],
        image_uri=settings.image_uri or PLACEHOLDERS["image_uri"],
        entrypoint=container_entrypoint(STEP_MODULES[step_name], settings.install_requirements),
        instance_count=settings.instance_count,
        instance_type=settings.instance_type,
        volume_size_in_gb=settings.volume_size_gb,
        max_runtime_in_seconds=settings.max_runtime_seconds,
        base_job_name=f"{settings.pipeline_name}-{step_name}".lower()[:32],
        # Unbuffered output: the job's CloudWatch log shows progress as it happens.
        env={"PYTHONUNBUFFERED": "1"},
        sagemaker_session=session,
    )


def _code_input() -> Any:
    from sagemaker.processing import ProcessingInput

    return ProcessingInput(
        input_name="code",
        source=PLACEHOLDERS["code_uri"],
        destination=CODE_INPUT_DIR,
    )


def _evaluation_output() -> Any:
    """evaluation.json to the run folder's `evaluation/`, where the gate's JsonGet reads it."""
    from sagemaker.processing import ProcessingOutput
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.functions import Join

    return ProcessingOutput(
        output_name=EVALUATION_OUTPUT,
        source=EVALUATION_DIR,
        destination=Join(
            on="/",
            values=[
                f"{_data_root()}/runs",
                ExecutionVariables.PIPELINE_EXECUTION_ID,
                EVALUATION_OUTPUT,
            ],
        ),
    )


def _processing_step(
    settings: DefinitionSettings,
    parameters: _Parameters,
    session: Any,
    step_name: str,
    depends_on: list[Any] | None = None,
    property_files: list[Any] | None = None,
) -> Any:
    from sagemaker.workflow.steps import ProcessingStep

    outputs = [_evaluation_output()] if property_files else None
    arguments = (
        _common_arguments(settings, parameters) + _step_arguments(settings, parameters)[step_name]
    )
    step_args = _processor(settings, step_name, session).run(
        inputs=[_code_input()], outputs=outputs, arguments=arguments
    )
    return ProcessingStep(
        name=step_name,
        step_args=step_args,
        description=_STEP_DESCRIPTIONS[step_name],
        depends_on=depends_on,
        property_files=property_files,
        retry_policies=_retry_policies(),
    )


def _evaluation_property_file() -> Any:
    from sagemaker.workflow.properties import PropertyFile

    return PropertyFile(
        name=EVALUATION_PROPERTY_FILE, output_name=EVALUATION_OUTPUT, path=EVALUATION_FILE
    )


def _gate_metric(evaluation_step: Any, report: Any, json_path: str) -> Any:
    from sagemaker.workflow.functions import JsonGet

    return JsonGet(step_name=evaluation_step.name, property_file=report, json_path=json_path)


def _gate_conditions(evaluation_step: Any, report: Any, parameters: _Parameters) -> list[Any]:
    """Both thresholds, compared here rather than trusting evaluation.json's own verdict.

    The comparison with the pipeline parameters is visible in the console next to the values, and
    relative MASE <= 1 is "beats seasonal-naive". TrainEvaluation gets the same thresholds as
    arguments so its `gate` section explains a failure in words.
    """
    from sagemaker.workflow.conditions import ConditionLessThanOrEqualTo

    return [
        ConditionLessThanOrEqualTo(
            left=_gate_metric(evaluation_step, report, "overall.mase"), right=parameters.max_mase
        ),
        ConditionLessThanOrEqualTo(
            left=_gate_metric(evaluation_step, report, "overall.relative_mase"),
            right=parameters.max_relative_mase,
        ),
    ]


def _fail_step(evaluation_step: Any, report: Any, parameters: _Parameters) -> Any:
    """Ends the execution as Failed, with the metrics and thresholds in its message."""
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join

    message = Join(
        on="",
        values=[
            "Quality gate failed, nothing was published: MASE ",
            _gate_metric(evaluation_step, report, "overall.mase"),
            " (max ",
            parameters.max_mase,
            "), MASE relative to seasonal-naive ",
            _gate_metric(evaluation_step, report, "overall.relative_mase"),
            " (max ",
            parameters.max_relative_mase,
            "). Details: evaluation.json in the run folder runs/",
            ExecutionVariables.PIPELINE_EXECUTION_ID,
            "/evaluation/.",
        ],
    )
    return FailStep(
        name=FAIL_STEP,
        description="The backtest missed a gate threshold.",
        error_message=message,
    )


def _build_steps(settings: DefinitionSettings, parameters: _Parameters, session: Any) -> list[Any]:
    from sagemaker.workflow.condition_step import ConditionStep

    def step(name: str, after: Any = None, property_files: list[Any] | None = None) -> Any:
        depends_on = [after] if after is not None else None
        return _processing_step(settings, parameters, session, name, depends_on, property_files)

    # Steps share files through the run folder, not step properties, so the order is explicit.
    extract = step("Extract")
    preproc = step("PreProc", after=extract)
    train = step("Train", after=preproc)
    report = _evaluation_property_file()
    evaluation = step("TrainEvaluation", after=train, property_files=[report])
    predict = step("Predict")
    postproc = step("PostProc", after=predict)
    gate = ConditionStep(
        name=GATE_STEP,
        description="Publish only when the backtest meets the thresholds.",
        conditions=_gate_conditions(evaluation, report, parameters),
        if_steps=[predict, postproc],
        else_steps=[_fail_step(evaluation, report, parameters)],
    )
    return [extract, preproc, train, evaluation, gate]
