"""Fill a lake folder with demo applications, only where the demo owns it (`demo_lake`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from local_run import demo_lake


def ensure_demo_data(
    lake: Path, end_date: dt.date, years: float | None = None, models: int | None = None
) -> str:
    """Generate demo data ending at `end_date` unless the lake's own demo data already covers it
    with the same settings; says what it did. A lake the demo did not create is refused
    (`demo_lake.LakeRefused`) before anything is written."""
    owned = demo_lake.claim(lake)
    wanted = demo_lake.settings_for(owned, end_date, years, models)
    if owned is not None and owned.complete and _covers(owned.settings, wanted):
        return (
            f"demo data: kept the lake's demo applications ({owned.settings.models} models up to"
            f" {owned.settings.end_date})"
        )
    # Imported here: the generator's dependencies are only needed when it runs.
    from local_run.demo_data import write_demo_applications

    created = owned.created_folder if owned is not None else not lake.exists()
    if owned is not None:
        demo_lake.remove_demo_table(lake, owned)
    lake.mkdir(parents=True, exist_ok=True)
    writing = demo_lake.DemoLake(wanted, files=(), complete=False, created_folder=created)
    demo_lake.write_marker(lake, writing)
    summary = write_demo_applications(
        lake, end_date, years=wanted.years, n_models=wanted.models, seed=wanted.seed
    )
    written = tuple(
        path.relative_to(lake).as_posix()
        for path in sorted(summary.table_path.rglob("*"))
        if path.is_file()
    )
    demo_lake.write_marker(lake, dataclasses.replace(writing, files=written, complete=True))
    action = "replaced the lake's demo applications with" if owned else "wrote"
    return (
        f"demo data: {action} {summary.rows} applications for {len(summary.models)} models, "
        f"{summary.start_date}..{summary.end_date}"
    )


def _covers(have: demo_lake.DemoSettings, wanted: demo_lake.DemoSettings) -> bool:
    """Data up to a later day serves an earlier date: a run reads only up to its date."""
    return (
        have.end_date >= wanted.end_date
        and have.years == wanted.years
        and have.models == wanted.models
    )
