"""Typed per-environment configuration, parsed from cdk.json `context.environments.<name>`.

Everything that differs between dev and prod lives there; this module turns it into frozen
dataclasses and fails with a message naming the exact key (`environments.dev.pipeline.horizon_days`)
when a value is missing, unknown or of the wrong kind.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline_code import calendar_spec

PROJECT = "forecast"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key."""


@dataclass(frozen=True)
class ScheduleConfig:
    enabled: bool
    cron: str  # EventBridge Scheduler cron expression, e.g. cron(0 3 * * ? *)
    timezone: str


@dataclass(frozen=True)
class PipelineConfig:
    lookback_days: int
    horizon_days: int
    backtest_folds: int
    interval_level: float
    max_mase: float
    max_relative_mase: float
    instance_type: str
    # Seconds each step's instance waits in a SageMaker warm pool for the next step; 0 = none.
    keep_alive_seconds: int
    # The source contract and plausibility checks (README: "Data checks").
    source_timezone: str = "Asia/Tokyo"
    max_missing_days: int = 2
    missing_days_window: int = 28
    outlier_threshold: float = 20.0
    gate_largest_series: int = 5
    max_series_relative_mase: float = 1.5


@dataclass(frozen=True)
class CalendarConfig:
    """The events every forecast knows: public holidays, seasonal breaks and company days."""

    holiday_country: str | None  # None: no public holidays
    breaks: tuple[str, ...]
    company_days: tuple[calendar_spec.CompanyDays, ...]

    @property
    def company_day_arguments(self) -> tuple[str, ...]:
        """One `YYYY-MM-DD[+N]:name` job argument per item."""
        return tuple(str(item) for item in self.company_days)


@dataclass(frozen=True)
class MonitoringConfig:
    slack_secret_name: str
    notify_on_success: bool
    alarm_email: str | None
    # Hours after the scheduled time by which a successful execution must exist.
    success_deadline_hours: int
    # None: unreserved. A new account's concurrency quota of 10 leaves nothing to reserve.
    notifier_reserved_concurrency: int | None


@dataclass(frozen=True)
class QuickSightConfig:
    enabled: bool
    principal_arn: str | None
    timezone: str
    refresh_time: str  # HH:MM, the daily fallback refresh
    max_ingestions_per_day: int


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    account: str | None
    region: str
    retain_data: bool
    schedule: ScheduleConfig
    pipeline: PipelineConfig
    calendar: CalendarConfig
    monitoring: MonitoringConfig
    quicksight: QuickSightConfig

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


class _Section:
    """Reads one mapping of the config, remembering its path for error messages."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(data).__name__}")
        self.data = data
        self.path = path
        self.read: set[str] = set()

    def _get(self, key: str, default: Any = ...) -> Any:
        self.read.add(key)
        if key in self.data:
            return self.data[key]
        if default is ...:
            raise ConfigError(f"{self.path}.{key}: missing")
        return default

    def _fail(self, key: str, expected: str, value: Any) -> ConfigError:
        return ConfigError(f"{self.path}.{key}: expected {expected}, got {value!r}")

    def section(self, key: str) -> _Section:
        return _Section(self._get(key, {}), f"{self.path}.{key}")

    def string(self, key: str, default: Any = ..., pattern: str | None = None) -> str:
        value = self._get(key, default)
        if not isinstance(value, str) or not value:
            raise self._fail(key, "a non-empty string", value)
        if pattern and not re.fullmatch(pattern, value):
            raise self._fail(key, f"a string matching {pattern}", value)
        return value

    def optional_string(self, key: str, pattern: str | None = None) -> str | None:
        if self._get(key, None) is None:
            return None
        return self.string(key, pattern=pattern)

    def boolean(self, key: str, default: Any = ...) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def integer(self, key: str, default: Any = ..., low: int = 1, high: int = 10**6) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self._fail(key, f"an integer from {low} to {high}", value)
        return value

    def optional_integer(self, key: str, low: int = 1, high: int = 10**6) -> int | None:
        if self._get(key, None) is None:
            return None
        return self.integer(key, low=low, high=high)

    def number(self, key: str, default: Any = ..., low: float = 0.0, high: float = 1e9) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
            raise self._fail(key, f"a number above {low} and at most {high}", value)
        return float(value)

    def timezone(self, key: str, default: Any = ...) -> str:
        value = self.string(key, default)
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise self._fail(key, "an IANA time zone such as Asia/Tokyo", value) from err
        return value

    def items(self, key: str, max_items: int) -> list[Any]:
        """A list of at most `max_items` values (absent: empty)."""
        value = self._get(key, [])
        if not isinstance(value, list) or len(value) > max_items:
            raise self._fail(key, f"a list of at most {max_items} items", value)
        return value

    def date(self, key: str) -> dt.date:
        value = self.string(key, pattern=r"\d{4}-\d{2}-\d{2}")
        try:
            return dt.date.fromisoformat(value)
        except ValueError as err:
            raise self._fail(key, "a valid YYYY-MM-DD date", value) from err

    def reject_unknown_keys(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise ConfigError(f"{self.path}.{unknown[0]}: unknown key")


_CRON = r"cron\(\S+ \S+ \S+ \S+ \S+ \S+\)"
_ACCOUNT = r"\d{12}"
_REGION = r"[a-z]{2}(-[a-z]+)+-\d"
_ARN = r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:.+"
_EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"


def _schedule(s: _Section) -> ScheduleConfig:
    config = ScheduleConfig(
        enabled=s.boolean("enabled", True),
        cron=s.string("cron", pattern=_CRON),
        timezone=s.timezone("timezone"),
    )
    s.reject_unknown_keys()
    return config


def _pipeline(s: _Section) -> PipelineConfig:
    config = PipelineConfig(
        lookback_days=s.integer("lookback_days", 1095, low=90, high=3650),
        horizon_days=s.integer("horizon_days", 28, high=365),
        backtest_folds=s.integer("backtest_folds", 3, high=12),
        interval_level=s.number("interval_level", 0.8, high=0.99),
        max_mase=s.number("max_mase"),
        max_relative_mase=s.number("max_relative_mase", 1.0),
        instance_type=s.string("instance_type", "ml.m5.large", pattern=r"ml\.[a-z0-9]+\.[a-z0-9]+"),
        keep_alive_seconds=s.integer("keep_alive_seconds", 300, low=0, high=3600),
        source_timezone=s.timezone("source_timezone", "Asia/Tokyo"),
        max_missing_days=s.integer("max_missing_days", 2, low=0, high=365),
        missing_days_window=s.integer("missing_days_window", 28, high=365),
        outlier_threshold=s.number("outlier_threshold", 20.0, high=1000.0),
        gate_largest_series=s.integer("gate_largest_series", 5, low=0, high=1000),
        max_series_relative_mase=s.number("max_series_relative_mase", 1.5),
    )
    s.reject_unknown_keys()
    return config


def _company_days(s: _Section) -> calendar_spec.CompanyDays:
    item = calendar_spec.CompanyDays(
        start=s.date("date"),
        days=s.integer("days", 1, high=calendar_spec.MAX_COMPANY_DAY_SPAN),
        name=s.string("name", pattern=calendar_spec.COMPANY_DAY_NAME),
    )
    s.reject_unknown_keys()
    return item


def _calendar(s: _Section) -> CalendarConfig:
    """`holiday_country` null turns public holidays off; absent keys take the defaults."""
    country = s._get("holiday_country", calendar_spec.DEFAULT_COUNTRY)
    if country is not None:
        country = s.string(
            "holiday_country", calendar_spec.DEFAULT_COUNTRY, pattern=calendar_spec.COUNTRY_CODE
        )
    breaks = s.items("breaks", len(calendar_spec.BREAKS)) if "breaks" in s.data else None
    for i, name in enumerate(breaks or []):
        if name not in calendar_spec.BREAKS:
            raise ConfigError(
                f"{s.path}.breaks[{i}]: expected one of {sorted(calendar_spec.BREAKS)}, "
                f"got {name!r}"
            )
    config = CalendarConfig(
        holiday_country=country,
        breaks=calendar_spec.DEFAULT_BREAKS if breaks is None else tuple(dict.fromkeys(breaks)),
        company_days=tuple(
            _company_days(_Section(item, f"{s.path}.company_days[{i}]"))
            for i, item in enumerate(s.items("company_days", calendar_spec.MAX_COMPANY_DAYS))
        ),
    )
    s.reject_unknown_keys()
    return config


def _monitoring(s: _Section, env: str) -> MonitoringConfig:
    config = MonitoringConfig(
        slack_secret_name=s.string("slack_secret_name", f"{PROJECT}/{env}/slack-webhook"),
        notify_on_success=s.boolean("notify_on_success", False),
        alarm_email=s.optional_string("alarm_email", pattern=_EMAIL),
        success_deadline_hours=s.integer("success_deadline_hours", 6, high=23),
        notifier_reserved_concurrency=s.optional_integer(
            "notifier_reserved_concurrency", low=1, high=1000
        ),
    )
    s.reject_unknown_keys()
    return config


def _quicksight(s: _Section, default_timezone: str) -> QuickSightConfig:
    enabled = s.boolean("enabled", False)
    config = QuickSightConfig(
        enabled=enabled,
        principal_arn=s.string("principal_arn", pattern=_ARN)
        if enabled
        else s.optional_string("principal_arn", pattern=_ARN),
        timezone=s.timezone("timezone", default_timezone),
        refresh_time=s.string("refresh_time", "06:00", pattern=r"([01]\d|2[0-3]):[0-5]\d"),
        max_ingestions_per_day=s.integer("max_ingestions_per_day", 8, high=32),
    )
    s.reject_unknown_keys()
    return config


def parse_environment(name: str, raw: Any) -> EnvironmentConfig:
    """Parse one environment's mapping; raises ConfigError naming the bad key."""
    if not re.fullmatch(r"[a-z][a-z0-9]{1,11}", name):
        raise ConfigError(
            f"environments.{name}: the name must be 2-12 lowercase letters or digits"
            " (it is part of deployed resource names)"
        )
    root = _Section(raw, f"environments.{name}")
    schedule = _schedule(root.section("schedule"))
    config = EnvironmentConfig(
        name=name,
        account=root.optional_string("account", pattern=_ACCOUNT),
        region=root.string("region", pattern=_REGION),
        retain_data=root.boolean("retain_data", True),
        schedule=schedule,
        pipeline=_pipeline(root.section("pipeline")),
        calendar=_calendar(root.section("calendar")),
        monitoring=_monitoring(root.section("monitoring"), name),
        quicksight=_quicksight(root.section("quicksight"), schedule.timezone),
    )
    root.reject_unknown_keys()
    return config


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
