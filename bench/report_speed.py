"""How long the local report takes to draw, and how large it is, at 30 to thousands of series.

Builds the report's input in memory (a year and a half of daily history and a 28-day forecast
per series, the total, scores, a previous publication, the default calendar) and times
`local_run.report.render`, the part that grows with the series (reading the run's files is a
handful of Parquet reads). Prints one line per size with the load average.

    .venv/bin/python bench/report_speed.py [--series 30 1000 5000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local_run import report
from local_run.report_data import TOTAL, ReportData
from pipeline_code.forecasting.event_calendar import EventCalendar

DATE = dt.date(2026, 4, 25)
HISTORY_DAYS = 550
HORIZON = 28


def synthetic(n_series: int, seed: int = 0) -> ReportData:
    rng = np.random.default_rng(seed)
    ids = [f"model {i:05d}" for i in range(n_series)]
    levels = rng.gamma(2.0, 10.0, n_series)
    days = pd.date_range(end=pd.Timestamp(DATE), periods=HISTORY_DAYS, freq="D")
    history = pd.DataFrame(
        {
            "series_id": np.repeat(ids, HISTORY_DAYS),
            "ds": np.tile(days, n_series),
            "y": rng.poisson(np.repeat(levels, HISTORY_DAYS)).astype(float),
        }
    )
    total = history.groupby("ds")["y"].sum().reset_index().assign(series_id=TOTAL)
    history = pd.concat([history, total[history.columns]], ignore_index=True)

    def forecasts(first: dt.date) -> pd.DataFrame:
        targets = pd.date_range(pd.Timestamp(first) + pd.Timedelta(days=1), periods=HORIZON)
        yhat = np.repeat(np.append(levels, levels.sum()), HORIZON)
        return pd.DataFrame(
            {
                "series_id": np.repeat([*ids, TOTAL], HORIZON),
                "target_date": np.tile(targets, n_series + 1),
                "yhat": yhat,
                "yhat_lower": yhat * 0.6,
                "yhat_upper": yhat * 1.5,
                "model": "theta",
            }
        )

    return ReportData(
        execution_date=DATE,
        execution_id="bench",
        made_at=dt.datetime.now(dt.UTC),
        history=history,
        forecasts=forecasts(DATE),
        metrics=pd.DataFrame({"series_id": [*ids, TOTAL], "mase": 0.7, "snaive_mase": 1.0}),
        evaluation={"overall": {"mase": 0.7, "snaive_mase": 1.0, "relative_mase": 0.7}},
        quality={"set_aside": {}, "outliers": [], "warnings": []},
        calendar=EventCalendar(),
        set_aside_actuals=pd.DataFrame(columns=["series_id", "ds", "y"]),
        previous=(DATE - dt.timedelta(days=1), forecasts(DATE - dt.timedelta(days=1))),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[30, 1000, 5000])
    args = parser.parse_args()
    for n in args.series:
        data = synthetic(n)
        started = time.perf_counter()
        page = report.render(data)
        seconds = time.perf_counter() - started
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(
            f"{n:>6} series: report drawn in {seconds:5.2f} s, {len(page) / 1e6:5.2f} MB "
            f"({min(n, report.CHART_LIMIT) + 1} charts; load average {load})"
        )


if __name__ == "__main__":
    main()
