"""The SageMaker pipeline definition: six steps, a quality gate and a fail step. The steps are
training jobs (`pipeline.compute: training`, the default, described below) or Lambda steps
invoking one function each from the same image (`compute: lambda`, `_lambda_step`): the same
arguments either way.

Each step is a SageMaker training job, not a processing job: training jobs can reuse the previous
job's instance from a managed warm pool (`keep_alive_seconds`), so a daily run pays one instance
cold start instead of six. All six share one image, role and resource configuration.

`build_definition(settings)` returns the definition JSON, built offline with the SageMaker Python
SDK 2.x. Values only known at deploy time are written as the placeholder strings in `PLACEHOLDERS`;
the CDK stack swaps them for tokens with `substitute_placeholders` (a plain string replacement,
because the SDK parses some of these values and breaks on tokens). Where each one appears:

- `role_arn` `arn:aws:iam::000000000000:role/PLACEHOLDER-PIPELINE-ROLE`: whole value (`RoleArn`).
- `image_uri` `PLACEHOLDER-IMAGE-URI`: whole value (`TrainingImage`): the job image that
  `cdk deploy` builds from `pipeline_code/Dockerfile`.
- `region` `PLACEHOLDER-REGION`: whole value (the jobs' `AWS_REGION` and `AWS_DEFAULT_REGION`).
- `data_bucket` `PLACEHOLDER-DATA-BUCKET`: a substring, always right after `s3://` (the
  `--data-root` argument, the jobs' output path and the gate's evaluation URI); replace it with
  the bucket name.
- `glue_database` `PLACEHOLDER_GLUE_DATABASE`: whole value (`--database` of Extract and PostProc).
- `athena_workgroup` `PLACEHOLDER_ATHENA_WORKGROUP`: whole value (`--workgroup` of Extract).

No placeholder is a substring of another, so replacing them in any order is safe.

The step code and its pinned dependencies are baked into the job image, so a job installs
nothing at start and its entry command is `python3 -m pipeline_code.steps.<module>` (short enough
for the API's 256-character limit per entry-point item).

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
from typing import TYPE_CHECKING, Any

from pipeline_code import calendar_spec, lambda_handler, run_folder, shards

if TYPE_CHECKING:
    from stacks.config import EnvironmentConfig

PLACEHOLDERS: Mapping[str, str] = {
    "role_arn": "arn:aws:iam::000000000000:role/PLACEHOLDER-PIPELINE-ROLE",
    "image_uri": "PLACEHOLDER-IMAGE-URI",
    "region": "PLACEHOLDER-REGION",
    "data_bucket": "PLACEHOLDER-DATA-BUCKET",
    "glue_database": "PLACEHOLDER_GLUE_DATABASE",
    "athena_workgroup": "PLACEHOLDER_ATHENA_WORKGROUP",
    **{f"function_{module}": f"PLACEHOLDER-FUNCTION-{module.upper()}-ARN" for module in (
        "extract", "preproc", "train", "evaluate", "predict", "postproc"
    )},
}  # fmt: skip

JOB_OUTPUT_PREFIX = f"{run_folder.RUNS}/job-output"
"""Where SageMaker uploads each training job's (empty) model archive; steps write the run folder."""
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


def metrics_namespace(pipeline_name: str) -> str:
    """The CloudWatch namespace of the pipeline's own metrics (TrainEvaluation's gate figures):
    one per environment, so the role's `cloudwatch:namespace` condition confines each
    environment's jobs to their own."""
    return f"Forecast/{pipeline_name}"


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
    rest_day: str = calendar_spec.DEFAULT_REST_DAY  # monday .. sunday
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    """Instances of every job (one ResourceConfig for all, so warm pools match): Train and
    Predict split the series over them, the other steps run on the first (`shards`)."""
    volume_size_gb: int = 30
    max_runtime_seconds: int = 3600
    keep_alive_seconds: int = 300
    """How long each job's instance waits in a warm pool for the next step's job; 0 = no pool."""
    compute: str = "training"
    """`training`: each step a training job; `lambda`: each step a Lambda step invoking the
    step's function (the same image), for runs whose work fits one function (`LAMBDA_LIMITS`)."""
    lambda_memory_mb: int = 4096
    lambda_timeout_seconds: int = 600
    source_timezone: str = "Asia/Tokyo"
    """The zone the source's naive `applied_at` values are in (Extract's source contract)."""
    max_missing_days: int = 2
    missing_days_window: int = 28
    outlier_threshold: float = 20.0
    min_day_volume_ratio: float = 0.5
    """A day with fewer applications than this share of its nearby same weekdays is partial."""
    gate_largest_series: int = 5
    """How many of the largest series the gate checks one by one."""
    max_series_relative_mase: float = 1.5
    accuracy_window_days: int = 28
    """Scored days over which realized accuracy is held against the backtest's promise."""
    accuracy_max_mase_ratio: float = 1.5
    """Warn when realized MASE exceeds the backtest MASE by more than this factor."""
    accuracy_coverage_band: float = 0.1
    """Warn when realized interval coverage leaves the nominal level +- this."""
    accuracy_min_points: int = 14
    """A series is judged on at least this many scored points (fewer say too little)."""

    def __post_init__(self) -> None:
        problems = _setting_problems(self)
        if problems:
            raise ValueError("DefinitionSettings: " + "; ".join(problems))


def environment_settings(config: EnvironmentConfig) -> DefinitionSettings:
    """The definition's settings from the environment: every `pipeline.*` key under its own name
    (a key the definition does not know fails here), plus the schedule's zone and the calendar.
    Synth and the local run (`--env`) both build from this, so a local run tries what deploys."""
    return DefinitionSettings(
        pipeline_name=config.pipeline_name,
        timezone=config.schedule.timezone,
        holiday_country=config.calendar.holiday_country,
        calendar_breaks=config.calendar.breaks,
        company_days=config.calendar.company_day_arguments,
        rest_day=config.calendar.rest_day,
        **config.pipeline.model_dump(),
    )


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
        f"instance_count must be 1-{shards.BUCKETS}": 1
        <= settings.instance_count
        <= shards.BUCKETS,
        "volume_size_gb must be > 0": settings.volume_size_gb > 0,
        "max_runtime_seconds must be > 0": settings.max_runtime_seconds > 0,
        "keep_alive_seconds must be 0-3600": 0 <= settings.keep_alive_seconds <= 3600,
        "max_missing_days must be >= 0": settings.max_missing_days >= 0,
        "missing_days_window must be > 0": settings.missing_days_window > 0,
        "outlier_threshold must be > 0": settings.outlier_threshold > 0,
        "min_day_volume_ratio must be 0-1": 0 <= settings.min_day_volume_ratio < 1,
        "gate_largest_series must be >= 0": settings.gate_largest_series >= 0,
        "max_series_relative_mase must be > 0": settings.max_series_relative_mase > 0,
        f"at most {calendar_spec.MAX_COMPANY_DAYS} company_days": len(settings.company_days)
        <= calendar_spec.MAX_COMPANY_DAYS,
        "company_days must be YYYY-MM-DD[+N]:name items": all(
            _is_company_day(item) for item in settings.company_days
        ),
        "rest_day must be a day's name": settings.rest_day in calendar_spec.REST_DAYS,
        "compute must be training or lambda": settings.compute in COMPUTE_KINDS,
        **(_lambda_problems(settings) if settings.compute == "lambda" else {}),
        "calendar_breaks must be known breaks": set(settings.calendar_breaks)
        <= set(calendar_spec.BREAKS),
    }
    return [problem for problem, ok in checks.items() if not ok]


COMPUTE_KINDS = ("training", "lambda")
LAMBDA_STEP_MAX_SECONDS = 600
"""The longest a Lambda step waits for its function: "a maximum value of 10 minutes"
(https://docs.aws.amazon.com/sagemaker/latest/dg/build-and-manage-steps-types.html#step-type-lambda,
"Timeout and stopping behavior"); past it the step fails while the function runs on."""
LAMBDA_MEMORY_MB = (128, 10240)
"""Lambda's memory range (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html)."""


def _lambda_problems(settings: DefinitionSettings) -> dict[str, bool]:
    """What compute `lambda` cannot do: a function is one machine, and the Lambda step waits at
    most LAMBDA_STEP_MAX_SECONDS for it."""
    low, high = LAMBDA_MEMORY_MB
    return {
        "compute lambda runs every step in one function: instance_count must be 1 (or set"
        " compute to training)": settings.instance_count == 1,
        f"compute lambda: lambda_timeout_seconds must be 1-{LAMBDA_STEP_MAX_SECONDS}, the"
        " longest a SageMaker Lambda step waits (or set compute to training)": 1
        <= settings.lambda_timeout_seconds
        <= LAMBDA_STEP_MAX_SECONDS,
        f"compute lambda: lambda_memory_mb must be {low}-{high}, Lambda's range (or set compute"
        " to training)": low <= settings.lambda_memory_mb <= high,
    }


def _is_company_day(item: str) -> bool:
    try:
        calendar_spec.parse_company_days(item)
    except ValueError:
        return False
    return True


def _calendar_arguments(settings: DefinitionSettings) -> list[str]:
    """The calendar and cycle of Extract (whose volume check leaves event days alone), PreProc
    (which sums the events' effects per bucket) and Train (which pools those sums and shrinks
    each series' effects toward the pool): short items, so the jobs stay within SageMaker's
    limits."""
    arguments = [
        "--season-length",
        str(settings.season_length),
        "--holiday-country",
        settings.holiday_country or "none",
        "--breaks",
        ",".join(settings.calendar_breaks) or "none",
        "--rest-day",
        settings.rest_day,
    ]
    if settings.company_days:
        arguments += ["--company-days", *settings.company_days]
    return arguments


WARM_POOL_MATCH: tuple[tuple[str, ...], ...] = (
    ("RoleArn",),
    ("ResourceConfig", "InstanceCount"),
    ("ResourceConfig", "InstanceType"),
    ("ResourceConfig", "VolumeKmsKeyId"),
    ("ResourceConfig", "VolumeSizeInGB"),
    ("VpcConfig",),
    ("EnableInterContainerTrafficEncryption",),
    ("EnableNetworkIsolation",),
)
"""The CreateTrainingJob members SageMaker compares before it hands a warm pool to the next job
(https://docs.aws.amazon.com/sagemaker/latest/dg/train-warm-pools.html, "Matching training
jobs"). The image, command, arguments and environment may differ."""


def warm_pool_key(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A training job's values of the members a warm pool is matched on (absent ones as None)."""

    def value(path: tuple[str, ...]) -> Any:
        node: Any = arguments
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        return node

    return {".".join(path): value(path) for path in WARM_POOL_MATCH}


def container_entrypoint(module: str) -> list[str]:
    """The job's entry command: the step module, from the code baked into the job image.
    SageMaker appends the ContainerArguments."""
    return ["python3", "-m", f"pipeline_code.steps.{module}"]


def job_environment() -> dict[str, str]:
    """Every job's environment. The region is explicit because pyarrow's S3 filesystem falls
    back to us-east-1 without it; unbuffered output shows progress in the job's log as it runs."""
    region = PLACEHOLDERS["region"]
    return {"PYTHONUNBUFFERED": "1", "AWS_REGION": region, "AWS_DEFAULT_REGION": region}


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
    # The SDK builds sessions while importing; on a laptop their credential lookup would probe
    # the EC2 instance metadata endpoint. A build needs no credentials and calls nothing.
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("sagemaker.config", "sagemaker.workflow.utilities", "sagemaker.telemetry"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from sagemaker.telemetry import telemetry_logging

    # Estimator.fit() reports telemetry over the network. The SDK's only switch is a config key,
    # which would make every config lookup re-validate the config (a minute per build); a build
    # must call nothing, so the sender is replaced for the build's duration.
    sender = telemetry_logging._send_telemetry_request
    telemetry_logging._send_telemetry_request = lambda *args, **kwargs: None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"sagemaker\..*")
            yield
    finally:
        telemetry_logging._send_telemetry_request = sender


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


PARAMETERS: Mapping[str, str] = {
    "ExecutionDate": "the data day, YYYY-MM-DD or an ISO timestamp; empty: the day before the"
    " scheduled (or start) time",
    "MaxMase": "gate: overall backtest MASE at most this (pipeline.max_mase)",
    "MaxRelativeMase": "gate: overall MASE over seasonal naive's at most this"
    " (pipeline.max_relative_mase)",
    "MaxSeriesRelativeMase": "gate: each of the largest series' relative MASE at most this"
    " (pipeline.max_series_relative_mase)",
    "Horizon": "days forecast (pipeline.horizon_days)",
}
"""The pipeline's parameters, what each means and the environment key giving its default."""


@dataclass(frozen=True)
class _Parameters:
    execution_date: Any
    max_mase: Any
    max_relative_mase: Any
    horizon: Any
    max_series_relative_mase: Any

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
            max_series_relative_mase=ParameterFloat(
                "MaxSeriesRelativeMase", default_value=settings.max_series_relative_mase
            ),
        )

    def all(self) -> list[Any]:
        return [
            self.execution_date,
            self.max_mase,
            self.max_relative_mase,
            self.horizon,
            self.max_series_relative_mase,
        ]


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
            "--source-timezone",
            settings.source_timezone,
            "--max-missing-days",
            str(settings.max_missing_days),
            "--missing-days-window",
            str(settings.missing_days_window),
            "--min-day-volume-ratio",
            str(settings.min_day_volume_ratio),
            *_calendar_arguments(settings),
        ],
        "PreProc": [
            "--min-history-days",
            str(settings.min_history_days),
            "--outlier-threshold",
            str(settings.outlier_threshold),
            *_calendar_arguments(settings),
        ],
        "Train": [
            "--horizon",
            parameters.horizon.to_string(),
            "--interval-level",
            str(settings.interval_level),
            "--backtest-folds",
            str(settings.backtest_folds),
            *_calendar_arguments(settings),
        ],
        "TrainEvaluation": [
            "--max-mase",
            parameters.max_mase.to_string(),
            "--max-relative-mase",
            parameters.max_relative_mase.to_string(),
            "--largest-series",
            str(settings.gate_largest_series),
            "--max-series-relative-mase",
            parameters.max_series_relative_mase.to_string(),
            "--metrics-namespace",
            metrics_namespace(settings.pipeline_name),
        ],
        "Predict": [
            "--horizon",
            parameters.horizon.to_string(),
            "--interval-level",
            str(settings.interval_level),
            "--accuracy-window",
            str(settings.accuracy_window_days),
        ],
        "PostProc": [
            "--database",
            database,
            "--interval-level",
            str(settings.interval_level),
            "--horizon",
            parameters.horizon.to_string(),
            "--accuracy-window",
            str(settings.accuracy_window_days),
            "--accuracy-max-ratio",
            str(settings.accuracy_max_mase_ratio),
            "--accuracy-coverage-band",
            str(settings.accuracy_coverage_band),
            "--accuracy-min-points",
            str(settings.accuracy_min_points),
        ],
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


def _estimator(
    settings: DefinitionSettings, step_name: str, arguments: list[Any], session: Any
) -> Any:
    """One training job per step. Every job shares the settings SageMaker matches warm pools on
    (role, instance type and count, volume size and key, network settings), so each job after the
    first starts on the instance the previous one left in the pool."""
    from sagemaker.estimator import Estimator

    return Estimator(
        role=PLACEHOLDERS["role_arn"],
        image_uri=PLACEHOLDERS["image_uri"],
        container_entry_point=container_entrypoint(STEP_MODULES[step_name]),
        container_arguments=arguments,
        instance_count=settings.instance_count,
        instance_type=settings.instance_type,
        volume_size=settings.volume_size_gb,
        max_run=settings.max_runtime_seconds,
        keep_alive_period_in_seconds=_keep_alive(settings),
        output_path=f"{_data_root()}/{JOB_OUTPUT_PREFIX}",
        base_job_name=f"{settings.pipeline_name}-{step_name}".lower()[:32],
        environment=job_environment(),
        # No SageMaker Debugger or Profiler: nothing here is a neural network to inspect.
        disable_profiler=True,
        debugger_hook_config=False,
        sagemaker_session=session,
    )


def _keep_alive(settings: DefinitionSettings) -> int | None:
    """Every job keeps its instance the same time, PostProc too. The warm-pools page has each
    subsequent job specify a keep-alive to match a pool, and PostProc's own pool is what the
    next date of a backfill (and a re-run right after a run) starts on: one cold start a
    backfill, not one a date. The cost is PostProc's idle instance for at most the keep-alive
    after the last run (`bench/cost.py` counts it), and the training-job quota must hold it
    (`quota_needed`)."""
    return settings.keep_alive_seconds or None


def quota_needed(settings: DefinitionSettings, concurrency: int) -> int:
    """Instances of the type the training-job (and warm-pool) quota must allow: each of
    `concurrency` executions holds its `instance_count` instances, running or pooled, and one
    more set is an execution's last pool waiting out its keep-alive while another starts (or a
    scheduled run overlapping a backfill). Warm-pool instances count toward the training-job
    quota
    (https://docs.aws.amazon.com/sagemaker/latest/dg/train-warm-pools-resource-limits.html)."""
    return settings.instance_count * (concurrency + 1)


def _job_step(
    settings: DefinitionSettings,
    parameters: _Parameters,
    session: Any,
    step_name: str,
    depends_on: list[Any] | None = None,
) -> Any:
    from sagemaker.workflow.steps import TrainingStep

    arguments = (
        _common_arguments(settings, parameters) + _step_arguments(settings, parameters)[step_name]
    )
    estimator = _estimator(settings, step_name, arguments, session)
    return TrainingStep(
        name=step_name,
        step_args=estimator.fit(),
        description=_STEP_DESCRIPTIONS[step_name],
        depends_on=depends_on,
        retry_policies=_retry_policies(),
    )


def evaluation_uri() -> Any:
    """The evaluation file of this execution, where TrainEvaluation writes it."""
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.functions import Join

    return Join(
        on="/",
        values=[
            f"{_data_root()}/{run_folder.RUNS}",
            ExecutionVariables.PIPELINE_EXECUTION_ID,
            *run_folder.EVALUATION,
        ],
    )


def _gate_metric(json_path: str) -> Any:
    from sagemaker.workflow.functions import JsonGet

    return JsonGet(s3_uri=evaluation_uri(), json_path=json_path)


def _gate_conditions(parameters: _Parameters) -> list[Any]:
    """Both thresholds, compared here rather than trusting evaluation.json's own verdict.

    The comparison with the pipeline parameters is visible in the console next to the values, and
    relative MASE <= 1 is "beats seasonal-naive". TrainEvaluation gets the same thresholds as
    arguments so its `gate` section explains a failure in words.
    """
    from sagemaker.workflow.conditions import ConditionLessThanOrEqualTo

    return [
        ConditionLessThanOrEqualTo(left=_gate_metric("overall.mase"), right=parameters.max_mase),
        ConditionLessThanOrEqualTo(
            left=_gate_metric("overall.relative_mase"),
            right=parameters.max_relative_mase,
        ),
        # Each of the largest series on its own: one broken series cannot hide in the average.
        ConditionLessThanOrEqualTo(
            left=_gate_metric("overall.largest_series_relative_mase"),
            right=parameters.max_series_relative_mase,
        ),
    ]


def _fail_step(parameters: _Parameters) -> Any:
    """Ends the execution as Failed, with the metrics and thresholds in its message."""
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join

    message = Join(
        on="",
        values=[
            "Quality gate failed, nothing was published: MASE ",
            _gate_metric("overall.mase"),
            " (max ",
            parameters.max_mase,
            "), MASE relative to seasonal-naive ",
            _gate_metric("overall.relative_mase"),
            " (max ",
            parameters.max_relative_mase,
            "), worst relative MASE of the largest series ",
            _gate_metric("overall.largest_series_relative_mase"),
            " (max ",
            parameters.max_series_relative_mase,
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


def lambda_inputs(module: str, arguments: list[Any]) -> dict[str, Any]:
    """The Lambda step's inputs: the step's module and its arguments, one key each, in order
    (`pipeline_code.lambda_handler` reads them back). A Lambda step's inputs are one flat mapping
    of primitive values (the step-types page, "Inputs and outputs"), so the argument list is
    spread over numbered keys.
    A numeric parameter goes as itself (the function turns every value into text), not as the
    `Std:Join` a job argument needs, so every input is a primitive or a variable."""
    from sagemaker.workflow.functions import Join

    def plain(value: Any) -> Any:
        if isinstance(value, Join) and value.on == "" and len(value.values) == 1:
            return value.values[0]
        return value

    return {
        lambda_handler.STEP_KEY: module,
        **{lambda_handler.argument_key(i): plain(value) for i, value in enumerate(arguments)},
    }


def _lambda_step(
    settings: DefinitionSettings,
    parameters: _Parameters,
    session: Any,
    step_name: str,
    depends_on: list[Any] | None = None,
) -> Any:
    """The step as a Lambda step invoking its function with the job's very arguments. Lambda
    steps take no retry policy (the schema has none); Pipelines itself retries a throttled or
    faulted invocation (https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines-retry-policy.html),
    and a Lambda function has no instance capacity to wait for."""
    from sagemaker.lambda_helper import Lambda
    from sagemaker.workflow.lambda_step import LambdaStep

    module = STEP_MODULES[step_name]
    arguments = (
        _common_arguments(settings, parameters) + _step_arguments(settings, parameters)[step_name]
    )
    return LambdaStep(
        name=step_name,
        # With an ARN and no code the helper only names the function: nothing is created.
        lambda_func=Lambda(function_arn=PLACEHOLDERS[f"function_{module}"], session=session),
        description=_STEP_DESCRIPTIONS[step_name],
        inputs=lambda_inputs(module, arguments),
        depends_on=depends_on,
    )


def _build_steps(settings: DefinitionSettings, parameters: _Parameters, session: Any) -> list[Any]:
    from sagemaker.workflow.condition_step import ConditionStep

    def step(name: str, after: Any = None) -> Any:
        depends_on = [after] if after is not None else None
        if settings.compute == "lambda":
            return _lambda_step(settings, parameters, session, name, depends_on)
        return _job_step(settings, parameters, session, name, depends_on)

    # Steps share files through the run folder, not step properties, so the order is explicit.
    extract = step("Extract")
    preproc = step("PreProc", after=extract)
    train = step("Train", after=preproc)
    evaluation = step("TrainEvaluation", after=train)
    predict = step("Predict")
    postproc = step("PostProc", after=predict)
    gate = ConditionStep(
        name=GATE_STEP,
        description="Publish only when the backtest meets the thresholds.",
        # The gate reads evaluation.json by URI, which names no step: the order is explicit.
        depends_on=[evaluation],
        conditions=_gate_conditions(parameters),
        if_steps=[predict, postproc],
        else_steps=[_fail_step(parameters)],
    )
    return [extract, preproc, train, evaluation, gate]
