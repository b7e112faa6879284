"""The local report's content: figures for people, events named, changes, flags, chart limit."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from local_run import report
from local_run.report_data import TOTAL, ReportData, changes, event_spans, flags
from pipeline_code.forecasting.event_calendar import EventCalendar
from pipeline_code.tables import OVERALL_SERIES_ID

DATE = dt.date(2026, 4, 25)
HORIZON = 28


def _history(series: dict[str, tuple[float, int]]) -> pd.DataFrame:
    """Each series at a constant level for the given number of days up to DATE, and the total."""
    frames = [
        pd.DataFrame(
            {
                "series_id": sid,
                "ds": pd.date_range(end=pd.Timestamp(DATE), periods=days, freq="D"),
                "y": level,
            }
        )
        for sid, (level, days) in series.items()
    ]
    history = pd.concat(frames, ignore_index=True)
    total = history.groupby("ds")["y"].sum().reset_index().assign(series_id=TOTAL)
    return pd.concat([history, total[history.columns]], ignore_index=True)


def _forecasts(levels: dict[str, float], first: dt.date = DATE) -> pd.DataFrame:
    days = pd.date_range(pd.Timestamp(first) + pd.Timedelta(days=1), periods=HORIZON, freq="D")
    rows = [
        pd.DataFrame(
            {
                "series_id": sid,
                "target_date": days,
                "yhat": level,
                "yhat_lower": level * 0.5,
                "yhat_upper": level * 1.5,
                "model": "theta",
            }
        )
        for sid, level in {**levels, TOTAL: sum(levels.values())}.items()
    ]
    return pd.concat(rows, ignore_index=True)


def _data(n_series: int = 3, previous: pd.DataFrame | None = None) -> ReportData:
    series = {f"s{i:04d}": (float(10 + i), 500) for i in range(n_series)}
    series["s0000"] = (10.0, 100)  # a short history
    levels = {sid: level for sid, (level, _) in series.items()}
    metrics = pd.DataFrame(
        {
            "series_id": [*series, OVERALL_SERIES_ID, TOTAL],
            "mase": 0.7,
            "snaive_mase": 1.0,
        }
    )
    return ReportData(
        execution_date=DATE,
        execution_id="exec-1",
        made_at=dt.datetime(2026, 4, 26, 3, 12, tzinfo=dt.UTC),
        history=_history(series),
        forecasts=_forecasts(levels),
        metrics=metrics,
        evaluation={
            "overall": {"mase": 0.7, "snaive_mase": 1.0, "relative_mase": 0.7, "coverage": 0.8},
            "gate": {
                "passed": True,
                "largest_series": [
                    {"series_id": "s0001", "relative_mase": 0.9},
                    {"series_id": "s0002", "relative_mase": 0.6},
                ],
            },
        },
        quality={
            "set_aside": {"stopped": ["gone"], "too_short": []},
            "outliers": [
                {
                    "series_id": "s0002",
                    "ds": "2026-04-25",
                    "value": 480.0,
                    "median": 12.0,
                    "capped_to": 40.0,
                }
            ],
            "warnings": ["1 source day missing: 2026-04-02"],
        },
        calendar=EventCalendar(),
        set_aside_actuals=pd.DataFrame(
            {"series_id": ["gone"], "ds": [pd.Timestamp(DATE)], "y": [0.0]}
        ),
        previous=(DATE - dt.timedelta(days=1), previous) if previous is not None else None,
    )


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.svgs = 0
        self.first_cells: list[str] = []
        self._row_open = False
        self._in_td = False
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.svgs += tag == "svg"
        if tag == "tr":
            self._row_open = True
        if tag == "td" and self._row_open:
            self._in_td, self._text = True, ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._in_td:
            self.first_cells.append(self._text.strip())
            self._in_td = self._row_open = False

    def handle_data(self, data: str) -> None:
        if self._in_td:
            self._text += data


def test_figures_are_rounded_for_people() -> None:
    assert report.number(1234.56) == "1,235"
    assert report.number(12.4) == "12"
    assert report.number(4.44) == "4.4"
    assert report.number(0.0) == "0"
    assert report.number(float("nan")) == report.DASH
    assert report.ratio(0.74946120534) == "0.75"
    assert report.percent(-13.0, 100.0) == "-13%"


def test_the_title_says_what_for_which_days_from_when_and_when_made() -> None:
    assert report.title(_data()) == (
        "Daily applications per car model: forecast for 2026-04-26 .. 2026-05-23, "
        "from data up to 2026-04-25, made 2026-04-26 03:12 UTC"
    )


def test_event_days_are_merged_into_named_spans() -> None:
    spans = event_spans(EventCalendar(), dt.date(2026, 4, 26), dt.date(2026, 5, 23))
    golden = [span for span in spans if span.name == "Golden Week"]
    assert [(s.first, s.last) for s in golden] == [(dt.date(2026, 4, 29), dt.date(2026, 5, 5))]
    assert "Children's Day" in golden[0].detail
    assert any(span.first == dt.date(2026, 5, 6) and "Substitute" in span.name for span in spans)


def test_changes_compare_the_days_both_runs_forecast_largest_first() -> None:
    before = _forecasts({"s0000": 10.0, "s0001": 11.0, "s0002": 20.0}, DATE - dt.timedelta(1))
    before["target_date"] = pd.to_datetime(before["target_date"])
    found = changes(_data(previous=before))
    assert found is not None
    frame, days = found
    assert days == HORIZON - 1  # the previous run's first day is past, the last new day unseen
    assert frame["series_id"].tolist()[:2] == [TOTAL, "s0002"]
    s0002 = frame.set_index("series_id").loc["s0002"]
    assert (s0002["before"], s0002["now"], s0002["change"]) == (20.0 * 27, 12.0 * 27, -8.0 * 27)


def test_flags_name_set_aside_capped_short_and_worst_in_gate() -> None:
    data = _data()
    found = flags(data, pd.Index(["s0000", "s0001", "s0002", "gone"]))
    assert "short history" in found["s0000"]
    assert found["s0001"] == "worst in gate"
    assert "capped outlier on 2026-04-25 (480 -> 40)" in found["s0002"]
    assert found["gone"].startswith("set aside: stopped")


def test_data_quality_is_said_in_words() -> None:
    notes = report.quality_notes(_data())
    assert notes[0].startswith("1 series (gone) had no applications in the recent weeks")
    assert "s0002 had 480 applications on 2026-04-25, far above its usual 12" in notes[1]
    assert notes[2] == "1 source day missing: 2026-04-02"


@pytest.mark.parametrize("n_series", [3, report.CHART_LIMIT + 5])
def test_every_series_is_in_the_table_and_charts_stop_at_the_limit(n_series: int) -> None:
    page = _Page()
    data = _data(n_series)
    page.feed(report.render(data))
    series = {sid for sid in data.forecasts["series_id"] if sid != TOTAL}
    assert series | {report.TOTAL_LABEL, "gone"} <= set(page.first_cells)
    assert page.svgs == 1 + min(n_series, report.CHART_LIMIT)  # the total's chart, then series
    if n_series > report.CHART_LIMIT:
        assert f"Charts for the {report.CHART_LIMIT} largest of {n_series} series" in (
            report.render(data)
        )


def test_the_total_chart_draws_its_own_interval() -> None:
    data = _data()
    line = report.lines(data, [TOTAL], pd.Timestamp(DATE) - pd.Timedelta(days=30))[TOTAL]
    total = data.forecasts[data.forecasts["series_id"] == TOTAL]
    assert np.array_equal(line.upper, total["yhat_upper"].to_numpy())
    assert len(line.history) == 31
