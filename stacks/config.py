"""Typed per-environment configuration, parsed from cdk.json `context.environments.<name>`.

Everything that differs between dev and prod lives there; this module declares it as frozen
pydantic models (unknown keys forbidden, ranges and patterns as field constraints) and turns any
validation error into a ConfigError naming the exact key, e.g.
`environments.dev.pipeline.horizon_days: expected an integer from 1 to 365, got '28'`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from annotated_types import Ge, GroupedMetadata, Gt, Le
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    StringConstraints,
    ValidationError,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pipeline_code import calendar_spec, shards
from stacks.pipeline_definition import LAMBDA_STEP_MAX_SECONDS

PROJECT = "forecast"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key."""


# --- value types: each says in its error what it expects ------------------------------------


def _expecting(text: str) -> WrapValidator:
    """Replace pydantic's own wording with `expected <text>` (the key and value are added later)."""

    def validate(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError(
                "expected", "expected {expected}", {"expected": text}
            ) from None

    return WrapValidator(validate)


def _fail(text: str) -> PydanticCustomError:
    return PydanticCustomError("expected", "expected {expected}", {"expected": text})


@dataclass(frozen=True)
class IntegerIn(GroupedMetadata):
    """An integer from `low` to `high` (true and false are not integers here)."""

    low: int
    high: int

    def __iter__(self) -> Iterator[Any]:
        yield Strict()
        yield Ge(self.low)
        yield Le(self.high)
        yield _expecting(f"an integer from {self.low} to {self.high}")


@dataclass(frozen=True)
class NumberIn(GroupedMetadata):
    """A number above `low` and at most `high`; an integer is read as a float."""

    high: float
    low: float = 0.0

    def __iter__(self) -> Iterator[Any]:
        yield Strict()
        yield Gt(self.low)
        yield Le(self.high)
        yield _expecting(f"a number above {self.low} and at most {self.high}")


@dataclass(frozen=True)
class TextLike(GroupedMetadata):
    """A non-empty string, matching `pattern` as a whole when one is given."""

    pattern: str | None = None

    def __iter__(self) -> Iterator[Any]:
        anchored = f"^(?:{self.pattern})$" if self.pattern else None
        yield StringConstraints(strict=True, min_length=1, pattern=anchored)
        yield _expecting(
            f"a string matching {self.pattern}" if self.pattern else "a non-empty string"
        )


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail("an IANA time zone such as Asia/Tokyo") from None
    return value


def _date(value: Any) -> dt.date:
    if not isinstance(value, str) or not re.fullmatch(_DATE, value):
        raise _fail(f"a string matching {_DATE}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _fail("a valid YYYY-MM-DD date") from None


def _list_of_at_most(max_items: int) -> BeforeValidator:
    """Checked before the items, so that an item's own error keeps its index in the key."""

    def check(value: Any) -> Any:
        if not isinstance(value, list) or len(value) > max_items:
            raise _fail(f"a list of at most {max_items} items")
        return value

    return BeforeValidator(check)


def _known_break(value: str) -> str:
    if value not in calendar_spec.BREAKS:
        raise _fail(f"one of {sorted(calendar_spec.BREAKS)}")
    return value


Flag = Annotated[bool, Strict(), _expecting("true or false")]
TimeZone = Annotated[str, TextLike(), AfterValidator(_zone)]
Date = Annotated[dt.date, PlainValidator(_date)]
BreakName = Annotated[str, Strict(), AfterValidator(_known_break)]


def _known_rest_day(value: str) -> str:
    if value not in calendar_spec.REST_DAYS:
        raise _fail(f"one of {', '.join(calendar_spec.REST_DAYS)}")
    return value


RestDay = Annotated[str, Strict(), AfterValidator(_known_rest_day)]

_DATE = r"\d{4}-\d{2}-\d{2}"
_CRON = r"cron\(\S+ \S+ \S+ \S+ \S+ \S+\)"
_ACCOUNT = r"\d{12}"
_REGION = r"[a-z]{2}(-[a-z]+)+-\d"
_ARN = r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:.+"
_EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
_INSTANCE_TYPE = r"ml\.[a-z0-9]+\.[a-z0-9]+"
_CLOCK = r"([01]\d|2[0-3]):[0-5]\d"


class _MissingKey(ValueError):
    """Raised by a model validator for a key that is required only in some cases."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _InvalidKey(ValueError):
    """Raised by a model validator for a key whose value another key rules out."""

    def __init__(self, key: str, expected: str, value: Any) -> None:
        super().__init__(key)
        self.key = key
        self.expected = expected
        self.value = value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the sections -----------------------------------------------------------------------------


class ScheduleConfig(_Section):
    enabled: Flag = True
    # EventBridge Scheduler cron expression, e.g. cron(0 3 * * ? *)
    cron: Annotated[str, TextLike(_CRON)]
    timezone: TimeZone


class PipelineConfig(_Section):
    lookback_days: Annotated[int, IntegerIn(90, 3650)] = 1095
    horizon_days: Annotated[int, IntegerIn(1, 365)] = 28
    backtest_folds: Annotated[int, IntegerIn(1, 12)] = 3
    interval_level: Annotated[float, NumberIn(0.99)] = 0.8
    max_mase: Annotated[float, NumberIn(1e9)]
    max_relative_mase: Annotated[float, NumberIn(1e9)] = 1.0
    instance_type: Annotated[str, TextLike(_INSTANCE_TYPE)] = "ml.m5.large"
    # Instances of every job; Train and Predict split the series over them (at most one
    # instance per bucket of series).
    instance_count: Annotated[int, IntegerIn(1, shards.BUCKETS)] = 1
    # Seconds each step's instance waits in a SageMaker warm pool for the next step; 0 = none.
    keep_alive_seconds: Annotated[int, IntegerIn(0, 3600)] = 300
    # Where the six steps run: SageMaker training jobs (any size) or Lambda functions from the
    # same image (starts in seconds; one instance, Lambda's memory and the Lambda step's time).
    compute: Literal["training", "lambda"] = "training"
    # With compute lambda: each function's memory (Lambda gives CPU in proportion) and the most
    # time a step may take (the Lambda step waits at most 600 s; synth refuses more).
    lambda_memory_mb: Annotated[int, IntegerIn(128, 10240)] = 4096
    lambda_timeout_seconds: Annotated[int, IntegerIn(1, 900)] = 600
    # The source contract and plausibility checks (README: "Data checks").
    source_timezone: TimeZone = "Asia/Tokyo"
    max_missing_days: Annotated[int, IntegerIn(0, 365)] = 2
    missing_days_window: Annotated[int, IntegerIn(1, 365)] = 28
    outlier_threshold: Annotated[float, NumberIn(1000.0)] = 20.0
    min_day_volume_ratio: Annotated[float, NumberIn(0.99)] = 0.5
    gate_largest_series: Annotated[int, IntegerIn(0, 1000)] = 5
    max_series_relative_mase: Annotated[float, NumberIn(1e9)] = 1.5
    # Realized accuracy (README: "Realized accuracy"): warnings, never failures.
    accuracy_window_days: Annotated[int, IntegerIn(7, 60)] = 28
    accuracy_max_mase_ratio: Annotated[float, NumberIn(100.0)] = 1.5
    accuracy_coverage_band: Annotated[float, NumberIn(0.5)] = 0.1
    accuracy_min_points: Annotated[int, IntegerIn(1, 10000)] = 14

    @model_validator(mode="after")
    def _fits_a_lambda_step(self) -> PipelineConfig:
        """What compute lambda cannot run is refused here, naming the key, before any synth
        (the definition's settings check the same: `pipeline_definition._lambda_problems`)."""
        if self.compute != "lambda":
            return self
        if self.instance_count != 1:
            raise _InvalidKey(
                "instance_count",
                "1 with compute lambda (one function runs each step), or compute training",
                self.instance_count,
            )
        if self.lambda_timeout_seconds > LAMBDA_STEP_MAX_SECONDS:
            raise _InvalidKey(
                "lambda_timeout_seconds",
                f"at most {LAMBDA_STEP_MAX_SECONDS} with compute lambda (the longest a SageMaker"
                " Lambda step waits), or compute training",
                self.lambda_timeout_seconds,
            )
        return self


class CompanyDaysConfig(_Section):
    """One `{"date": ..., "name": ..., "days": ...}` item of `calendar.company_days`."""

    date: Date
    name: Annotated[str, TextLike(calendar_spec.COMPANY_DAY_NAME)]
    days: Annotated[int, IntegerIn(1, calendar_spec.MAX_COMPANY_DAY_SPAN)] = 1

    @property
    def spec(self) -> calendar_spec.CompanyDays:
        return calendar_spec.CompanyDays(start=self.date, days=self.days, name=self.name)


class CalendarConfig(_Section):
    """The events every forecast knows: public holidays, seasonal breaks and company days."""

    # None: no public holidays.
    holiday_country: Annotated[str, TextLike(calendar_spec.COUNTRY_CODE)] | None = (
        calendar_spec.DEFAULT_COUNTRY
    )
    breaks: Annotated[tuple[BreakName, ...], _list_of_at_most(len(calendar_spec.BREAKS))] = (
        calendar_spec.DEFAULT_BREAKS
    )
    company_days: Annotated[
        tuple[CompanyDaysConfig, ...], _list_of_at_most(calendar_spec.MAX_COMPANY_DAYS)
    ] = ()
    # The weekly day off a working-day holiday may be measured against (learned per series).
    rest_day: RestDay = calendar_spec.DEFAULT_REST_DAY

    @field_validator("breaks")
    @classmethod
    def _once_each(cls, breaks: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(breaks))

    @property
    def company_day_arguments(self) -> tuple[str, ...]:
        """One `YYYY-MM-DD[+N]:name` job argument per item."""
        return tuple(str(item.spec) for item in self.company_days)


class MonitoringConfig(_Section):
    # Defaults to forecast/<env>/slack-webhook (EnvironmentConfig fills it in).
    slack_secret_name: Annotated[str, TextLike()]
    notify_on_success: Flag = False
    alarm_email: Annotated[str, TextLike(_EMAIL)] | None = None
    # Hours after the scheduled time by which a successful execution must exist.
    success_deadline_hours: Annotated[int, IntegerIn(1, 23)] = 6
    # None: unreserved. A new account's concurrency quota of 10 leaves nothing to reserve.
    notifier_reserved_concurrency: Annotated[int, IntegerIn(1, 1000)] | None = None


class QuickSightConfig(_Section):
    enabled: Flag = False
    principal_arn: Annotated[str, TextLike(_ARN)] | None = None  # required when enabled
    timezone: TimeZone  # defaults to the schedule's (EnvironmentConfig)
    # HH:MM, the daily fallback refresh.
    refresh_time: Annotated[str, TextLike(_CLOCK)] = "06:00"
    max_ingestions_per_day: Annotated[int, IntegerIn(1, 32)] = 8

    @model_validator(mode="after")
    def _principal_when_enabled(self) -> QuickSightConfig:
        if self.enabled and self.principal_arn is None:
            raise _MissingKey("principal_arn")
        return self


def _section() -> Any:
    """An absent section reads as `{}`, so its required keys are reported by name."""
    return Field(default_factory=dict, validate_default=True)


class EnvironmentConfig(_Section):
    name: str
    account: Annotated[str, TextLike(_ACCOUNT)] | None = None
    region: Annotated[str, TextLike(_REGION)]
    retain_data: Flag = True
    schedule: ScheduleConfig = _section()
    pipeline: PipelineConfig = _section()
    calendar: CalendarConfig = _section()
    monitoring: MonitoringConfig = _section()
    quicksight: QuickSightConfig = _section()

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_other_keys(cls, data: Any) -> Any:
        """The Slack secret's name carries the environment; QuickSight's time zone is the
        schedule's unless set."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        _default_in(
            data, "monitoring", "slack_secret_name", f"{PROJECT}/{data['name']}/slack-webhook"
        )
        schedule = data.get("schedule")
        if isinstance(schedule, dict) and "timezone" in schedule:
            _default_in(data, "quicksight", "timezone", schedule["timezone"])
        return data

    def resource_name(self, suffix: str, sep: str = "-") -> str:
        """A deployed resource's name, carrying the environment: forecast-dev-<suffix>."""
        return sep.join([PROJECT, self.name, suffix])

    @property
    def stack_prefix(self) -> str:
        return f"Forecast-{self.name}"

    @property
    def glue_database(self) -> str:
        return f"{PROJECT}_{self.name}"

    def data_bucket_name(self, account: str) -> str:
        """A fixed, predictable name: every stack derives it instead of importing it."""
        return f"{PROJECT}-{self.name}-data-{account}-{self.region}"

    @property
    def pipeline_name(self) -> str:
        return self.resource_name("daily")


def _default_in(data: dict[str, Any], section: str, key: str, value: Any) -> None:
    """Set `data[section][key]` unless given; a section that is not a mapping is left as it is."""
    current = data.get(section, {})
    if isinstance(current, dict) and key not in current:
        data[section] = {**current, key: value}


# --- errors naming the key ----------------------------------------------------------------


def _key_path(root: str, loc: tuple[int | str, ...]) -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _message(root: str, error: Any) -> str:
    kind, loc, value = error["type"], tuple(error["loc"]), error.get("input")
    if kind == "missing":
        return f"{_key_path(root, loc)}: missing"
    if kind == "extra_forbidden":
        return f"{_key_path(root, loc)}: unknown key"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{_key_path(root, loc)}: expected a mapping, got {type(value).__name__}"
    if kind == "value_error" and isinstance(error.get("ctx", {}).get("error"), _MissingKey):
        return f"{_key_path(root, (*loc, error['ctx']['error'].key))}: missing"
    if kind == "value_error" and isinstance(error.get("ctx", {}).get("error"), _InvalidKey):
        invalid = error["ctx"]["error"]
        where = _key_path(root, (*loc, invalid.key))
        return f"{where}: expected {invalid.expected}, got {invalid.value!r}"
    return f"{_key_path(root, loc)}: {error['msg']}, got {value!r}"


def parse_environment(name: str, raw: Any) -> EnvironmentConfig:
    """Parse one environment's mapping; raises ConfigError naming the bad key."""
    root = f"environments.{name}"
    if not re.fullmatch(r"[a-z][a-z0-9]{1,11}", name):
        raise ConfigError(
            f"{root}: the name must be 2-12 lowercase letters or digits"
            " (it is part of deployed resource names)"
        )
    if not isinstance(raw, dict):
        raise ConfigError(f"{root}: expected a mapping, got {type(raw).__name__}")
    if "name" in raw:
        raise ConfigError(f"{root}.name: unknown key")
    try:
        return EnvironmentConfig.model_validate({**raw, "name": name})
    except ValidationError as err:
        raise ConfigError(_message(root, err.errors()[0])) from None


def with_account(config: EnvironmentConfig, account: Any) -> EnvironmentConfig:
    """The environment with `account` from the command line (`-c account=...`), when given."""
    if account is None:
        return config
    if not isinstance(account, str) or not re.fullmatch(_ACCOUNT, account):
        raise ConfigError(f"account: expected 12 digits (-c account=...), got {account!r}")
    return config.model_copy(update={"account": account})


def check_deployable(config: EnvironmentConfig) -> None:
    """An environment that keeps its data names its account: deployed with `account: null` it
    would land in whichever account the CLI's credentials hold (dev may: it is disposable)."""
    if config.retain_data and config.account is None:
        raise ConfigError(
            f"environments.{config.name}.account: required where retain_data is true, so that"
            " a kept environment is never deployed into whichever account the CLI holds; set it"
            " in cdk.json or pass -c account=123456789012"
        )


def load_environment(environments: Any, name: str | None) -> EnvironmentConfig:
    """Pick and parse the environment named by `-c env=NAME`."""
    if not isinstance(environments, dict) or not environments:
        raise ConfigError("environments: cdk.json context must define at least one environment")
    if not name:
        raise ConfigError(
            "env: choose an environment with -c env=NAME"
            f" (one of {', '.join(sorted(environments))})"
        )
    if name not in environments:
        raise ConfigError(
            f"env: unknown environment {name!r} (known: {', '.join(sorted(environments))})"
        )
    return parse_environment(name, environments[name])
