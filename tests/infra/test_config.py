"""stacks/config.py: cdk.json environments parse, and every bad value names its key."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from stacks.config import (
    ConfigError,
    check_deployable,
    load_environment,
    parse_environment,
    with_account,
)
from tests.infra.conftest import cdk_environments


def _dev() -> dict[str, Any]:
    return copy.deepcopy(cdk_environments()["dev"])


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_repo_environments_parse(name: str) -> None:
    config = load_environment(cdk_environments(), name)
    assert config.name == name
    assert config.pipeline_name == f"forecast-{name}-daily"
    assert config.glue_database == f"forecast_{name}"
    assert config.schedule.timezone == "Asia/Tokyo"


def test_prod_keeps_data_and_its_schedule_waits_for_the_first_successful_run() -> None:
    """The schedule (and with it the no-success alarm) is switched on by the operator after the
    first run succeeded (docs/first-deploy.md): on the first deploy there is no data yet."""
    prod = load_environment(cdk_environments(), "prod")
    assert prod.retain_data is True
    assert prod.schedule.enabled is False


def test_an_environment_that_keeps_data_must_name_its_account() -> None:
    prod = load_environment(cdk_environments(), "prod")
    assert prod.account is None
    with pytest.raises(ConfigError) as refused:
        check_deployable(prod)
    message = str(refused.value)
    assert message.startswith("environments.prod.account: required where retain_data is true")
    assert "-c account=123456789012" in message and "\n" not in message
    check_deployable(with_account(prod, "123456789012"))
    check_deployable(load_environment(cdk_environments(), "dev"))  # disposable: may float


@pytest.mark.parametrize("bad", ["12345", "abcdefghijkl", 123456789012])
def test_a_malformed_account_on_the_command_line_is_refused(bad: object) -> None:
    prod = load_environment(cdk_environments(), "prod")
    with pytest.raises(ConfigError, match=r"account: expected 12 digits"):
        with_account(prod, bad)


def test_unknown_environment_lists_known_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"env: unknown environment 'staging' \(known: dev, prod\)"
    ):
        load_environment(cdk_environments(), "staging")


def test_missing_env_choice_says_how_to_choose() -> None:
    with pytest.raises(ConfigError, match="-c env=NAME"):
        load_environment(cdk_environments(), None)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        (
            "pipeline",
            "horizon_days",
            "28",
            r"environments\.dev\.pipeline\.horizon_days: expected an integer",
        ),
        ("pipeline", "horizon_days", 0, r"environments\.dev\.pipeline\.horizon_days"),
        ("pipeline", "max_mase", -1, r"environments\.dev\.pipeline\.max_mase: expected a number"),
        ("pipeline", "instance_type", "m5.large", r"environments\.dev\.pipeline\.instance_type"),
        (
            "pipeline",
            "instance_count",
            65,
            r"environments\.dev\.pipeline\.instance_count: expected an integer from 1 to 64",
        ),
        ("pipeline", "instance_count", 0, r"environments\.dev\.pipeline\.instance_count"),
        (
            "pipeline",
            "keep_alive_seconds",
            3601,
            r"environments\.dev\.pipeline\.keep_alive_seconds: expected an integer from 0 to 3600",
        ),
        (
            "monitoring",
            "notifier_reserved_concurrency",
            0,
            r"environments\.dev\.monitoring\.notifier_reserved_concurrency",
        ),
        (
            "pipeline",
            "source_timezone",
            "JST",
            r"environments\.dev\.pipeline\.source_timezone: expected an IANA",
        ),
        ("pipeline", "max_missing_days", -1, r"environments\.dev\.pipeline\.max_missing_days"),
        ("pipeline", "missing_days_window", 0, r"environments\.dev\.pipeline\.missing_days_wi"),
        ("pipeline", "outlier_threshold", 0, r"environments\.dev\.pipeline\.outlier_threshold"),
        ("pipeline", "gate_largest_series", -1, r"environments\.dev\.pipeline\.gate_largest_s"),
        ("pipeline", "max_series_relative_mase", 0, r"environments\.dev\.pipeline\.max_series_"),
        (
            "schedule",
            "timezone",
            "Mars/Olympus",
            r"environments\.dev\.schedule\.timezone: expected an IANA",
        ),
        ("schedule", "cron", "0 3 * * *", r"environments\.dev\.schedule\.cron"),
        (
            "schedule",
            "enabled",
            "yes",
            r"environments\.dev\.schedule\.enabled: expected true or false",
        ),
        (
            "monitoring",
            "alarm_email",
            "not-an-email",
            r"environments\.dev\.monitoring\.alarm_email",
        ),
        ("quicksight", "refresh_time", "25:00", r"environments\.dev\.quicksight\.refresh_time"),
    ],
)
def test_bad_value_names_its_key(section: str, key: str, value: Any, message: str) -> None:
    raw = _dev()
    raw.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError, match=message):
        parse_environment("dev", raw)


def test_unknown_key_is_rejected_by_path() -> None:
    raw = _dev()
    raw["pipeline"]["horizon"] = 14
    with pytest.raises(ConfigError, match=r"environments\.dev\.pipeline\.horizon: unknown key"):
        parse_environment("dev", raw)


def test_missing_required_key_is_named() -> None:
    raw = _dev()
    del raw["region"]
    with pytest.raises(ConfigError, match=r"environments\.dev\.region: missing"):
        parse_environment("dev", raw)


def test_quicksight_enabled_requires_a_principal() -> None:
    raw = _dev()
    raw["quicksight"] = {"enabled": True}
    with pytest.raises(ConfigError, match=r"environments\.dev\.quicksight\.principal_arn: missing"):
        parse_environment("dev", raw)


def test_environment_name_must_fit_resource_names() -> None:
    with pytest.raises(ConfigError, match="lowercase letters or digits"):
        parse_environment("Dev_1", _dev())


def test_data_check_keys_reach_the_steps_as_arguments() -> None:
    from stacks.pipeline_definition import build_definition, environment_settings

    raw = _dev()
    raw["pipeline"].update(
        source_timezone="UTC", max_missing_days=0, missing_days_window=14, outlier_threshold=8
    )
    config = parse_environment("dev", raw)
    assert config.pipeline.source_timezone == "UTC"
    definition = build_definition(environment_settings(config))
    arguments = {
        step["Name"]: step["Arguments"]["AlgorithmSpecification"]["ContainerArguments"]
        for step in json.loads(definition)["Steps"]
        if step["Type"] == "Training"
    }
    extract = arguments["Extract"]
    for flag, value in [
        ("--source-timezone", "UTC"),
        ("--max-missing-days", "0"),
        ("--missing-days-window", "14"),
    ]:
        assert extract[extract.index(flag) + 1] == value
    preproc = arguments["PreProc"]
    assert preproc[preproc.index("--outlier-threshold") + 1] == "8.0"


def test_data_check_keys_have_defaults() -> None:
    raw = _dev()
    for key in ("source_timezone", "max_missing_days", "missing_days_window", "outlier_threshold"):
        raw["pipeline"].pop(key, None)
    pipeline = parse_environment("dev", raw).pipeline
    assert (pipeline.source_timezone, pipeline.max_missing_days) == ("Asia/Tokyo", 2)
    assert (pipeline.missing_days_window, pipeline.outlier_threshold) == (28, 20.0)


def test_calendar_defaults_to_japanese_holidays_and_the_three_breaks() -> None:
    raw = _dev()
    raw.pop("calendar", None)
    calendar = parse_environment("dev", raw).calendar
    assert calendar.holiday_country == "JP"
    assert calendar.breaks == ("year_end", "golden_week", "obon")
    assert calendar.company_days == ()
    assert calendar.rest_day == "sunday"


def test_calendar_rest_day_reaches_the_definition() -> None:
    raw = _dev()
    raw["calendar"] = {"rest_day": "friday"}
    config = parse_environment("dev", raw)
    from stacks.pipeline_definition import environment_settings

    assert environment_settings(config).rest_day == "friday"


def test_calendar_company_days_become_short_job_arguments() -> None:
    raw = _dev()
    raw["calendar"] = {
        "holiday_country": None,
        "breaks": ["year_end"],
        "company_days": [
            {"date": "2026-03-01", "name": "spring_campaign", "days": 14},
            {"date": "2026-07-01", "name": "launch"},
        ],
    }
    calendar = parse_environment("dev", raw).calendar
    assert calendar.holiday_country is None and calendar.breaks == ("year_end",)
    assert calendar.company_day_arguments == ("2026-03-01+14:spring_campaign", "2026-07-01:launch")


@pytest.mark.parametrize(
    ("calendar", "message"),
    [
        (
            {"company_days": [{"date": "2026-02-30", "name": "sale"}]},
            r"environments\.dev\.calendar\.company_days\[0\]\.date: expected a valid YYYY-MM-DD",
        ),
        (
            {"company_days": [{"date": "2026-03-01", "name": "sale"}, {"date": "2026-03-02"}]},
            r"environments\.dev\.calendar\.company_days\[1\]\.name: missing",
        ),
        (
            {"company_days": [{"date": "2026-03-01", "name": "Big Sale"}]},
            r"environments\.dev\.calendar\.company_days\[0\]\.name: expected a string matching",
        ),
        (
            {"company_days": [{"date": "2026-03-01", "name": "sale", "days": 400}]},
            r"environments\.dev\.calendar\.company_days\[0\]\.days: expected an integer",
        ),
        (
            {"company_days": [{"date": "2026-03-01", "name": "sale", "colour": "red"}]},
            r"environments\.dev\.calendar\.company_days\[0\]\.colour: unknown key",
        ),
        (
            {"company_days": [{"date": "2026-03-01", "name": "sale"}] * 41},
            r"environments\.dev\.calendar\.company_days: expected a list of at most 40 items",
        ),
        ({"breaks": ["summer"]}, r"environments\.dev\.calendar\.breaks\[0\]: expected one of"),
        ({"holiday_country": "Japan"}, r"environments\.dev\.calendar\.holiday_country"),
        ({"holidays": "JP"}, r"environments\.dev\.calendar\.holidays: unknown key"),
        ({"rest_day": "Sun"}, r"environments\.dev\.calendar\.rest_day: expected one of monday"),
    ],
)
def test_bad_calendar_names_its_key(calendar: dict[str, Any], message: str) -> None:
    raw = _dev()
    raw["calendar"] = calendar
    with pytest.raises(ConfigError, match=message):
        parse_environment("dev", raw)


def test_instance_count_is_every_jobs_instance_count() -> None:
    from stacks.pipeline_definition import build_definition, environment_settings, warm_pool_key

    raw = _dev()
    raw["pipeline"]["instance_count"] = 4
    definition = json.loads(build_definition(environment_settings(parse_environment("dev", raw))))
    jobs = [step for step in _all_steps(definition["Steps"]) if step["Type"] == "Training"]
    assert len(jobs) == 6
    assert {job["Arguments"]["ResourceConfig"]["InstanceCount"] for job in jobs} == {4}
    keys = [warm_pool_key(job["Arguments"]) for job in jobs]
    assert all(key == keys[0] for key in keys)  # warm pools still match


def _all_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for step in steps:
        found.append(step)
        arguments = step.get("Arguments", {})
        if step["Type"] == "Condition":
            found += _all_steps(arguments.get("IfSteps", []) + arguments.get("ElseSteps", []))
    return found
