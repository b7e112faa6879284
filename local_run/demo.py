"""Fill a local lake with demo applications, unless it already holds data up to the date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline_code import tables


def latest_source_day(lake: Path) -> dt.date | None:
    """The newest `dt=` partition of the lake's applications table, if any."""
    table = lake / tables.APPLICATIONS.name
    days = []
    for partition in table.glob(f"{tables.APPLICATIONS.partition_key}=*"):
        try:
            days.append(dt.date.fromisoformat(partition.name.split("=", 1)[1]))
        except ValueError:
            continue
    return max(days, default=None)


def ensure_demo_data(lake: Path, end_date: dt.date, years: float, models: int) -> str:
    """Generate demo data ending at `end_date` when the lake lacks it; says what it did."""
    latest = latest_source_day(lake)
    if latest is not None and latest >= end_date:
        return f"demo data: the lake already has applications up to {latest}, kept as they are"
    # Imported here: the generator's dependencies are only needed when it runs.
    from local_run.demo_data import write_demo_applications

    summary = write_demo_applications(lake, end_date, years=years, n_models=models)
    return (
        f"demo data: wrote {summary.rows} applications for {len(summary.models)} models, "
        f"{summary.start_date}..{summary.end_date}"
    )
