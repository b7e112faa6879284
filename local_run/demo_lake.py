"""What the demo owns in a lake folder, and the only removals the local tools ever make.

The demo writes its generated `applications` table into a lake folder only when the folder is
absent or empty, and then leaves a marker (`.demo-lake.json`) listing every file it wrote and the
settings it wrote them with. Anything else (a user's own table, a notes file, a lake made some
other way) is refused before a byte is touched. Later demo runs and `clean` remove only:

- the files the marker lists (the demo's applications), and
- what local pipeline runs write: the run folders, the published tables, their publication
  pointers and locks, and the reports (`RUN_OUTPUTS`).

A file the user put anywhere else in a demo lake is kept, and `clean` says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline_code import run_folder, tables
from pipeline_code.publication import LOCKS_DIR, PUBLICATIONS_DIR

MARKER = ".demo-lake.json"
DEMO_TABLE = tables.APPLICATIONS.name
RUN_OUTPUTS: tuple[str, ...] = (
    run_folder.RUNS,
    "reports",
    PUBLICATIONS_DIR,
    LOCKS_DIR,
    *(table.name for table in tables.PUBLISHED_TABLES),
)
"""Top-level lake folders that local pipeline runs write (and only they)."""


class LakeRefused(ValueError):
    """The folder holds something the demo did not write; nothing was touched."""


@dataclass(frozen=True)
class DemoSettings:
    """What the demo data was generated with: a later run reuses these unless told otherwise."""

    end_date: str
    years: float
    models: int
    seed: int


@dataclass(frozen=True)
class DemoLake:
    """A lake the demo created: its settings and the files (relative paths) it wrote."""

    settings: DemoSettings
    files: tuple[str, ...]
    complete: bool = True
    created_folder: bool = False
    """The demo made the lake folder itself (so `clean` may remove it once empty)."""
    """False while the demo is writing its table: an interrupted write leaves every file under
    the table folder the demo's own (the folder held nothing else when it began)."""

    def wrote(self, relative: str) -> bool:
        if not self.complete and relative.split("/", 1)[0] == DEMO_TABLE:
            return True
        return relative in self.files


def read_marker(lake: Path) -> DemoLake | None:
    """The demo's marker of `lake`, or None when the demo did not create it."""
    path = lake / MARKER
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        return DemoLake(
            DemoSettings(**raw["settings"]),
            tuple(raw["files"]),
            complete=bool(raw.get("complete", True)),
            created_folder=bool(raw.get("created_folder", False)),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise LakeRefused(
            f"--lake {lake}: {MARKER} is not the demo's marker ({err}); "
            "remove the folder yourself or choose another --lake"
        ) from None


def write_marker(lake: Path, demo: DemoLake) -> None:
    body = {"written_by": "python -m local_run run --demo", "settings": asdict(demo.settings)}
    body["files"] = list(demo.files)
    body["complete"] = demo.complete
    body["created_folder"] = demo.created_folder
    temporary = lake / f"{MARKER}.tmp"
    temporary.write_text(json.dumps(body, indent=1) + "\n")
    temporary.replace(lake / MARKER)


def claim(lake: Path) -> DemoLake | None:
    """The lake's marker if the demo owns it; None if the folder is absent or empty (the demo may
    create it). Anything else is refused, before any change."""
    if lake.exists() and not lake.is_dir():
        raise LakeRefused(f"--lake {lake}: is not a folder")
    owned = read_marker(lake)
    if owned is not None:
        foreign = _foreign_files(lake, owned, under=DEMO_TABLE)
        if foreign:
            raise LakeRefused(
                f"--lake {lake}: {foreign[0]} was not written by the demo, so the demo will not"
                f" replace its {DEMO_TABLE} table; move that file out, or run without --demo"
            )
        return owned
    if lake.exists() and any(lake.iterdir()):
        raise LakeRefused(
            f"--lake {lake}: the folder holds files the demo did not write, so it will not put"
            " demo data there; choose a new or empty folder (make demo LAKE=.lake-demo), or run"
            " without --demo to forecast the data already in it"
        )
    return None


def remove_demo_table(lake: Path, owned: DemoLake) -> None:
    """Remove the applications files the demo wrote (after `claim` found no other file there)."""
    table = lake / DEMO_TABLE
    for relative in list(_files(table)) if table.is_dir() else []:
        if owned.wrote(f"{DEMO_TABLE}/{relative}"):
            (table / relative).unlink()
    _remove_empty_folders(table)


@dataclass(frozen=True)
class Cleaned:
    removed: int
    kept: tuple[str, ...]  # relative paths the demo and the runs did not write


def clean(lake: Path) -> Cleaned:
    """Remove what the demo and local runs wrote in a demo lake; keep (and name) anything else.
    A lake the demo did not create is refused whole."""
    if not lake.exists():
        return Cleaned(removed=0, kept=())
    owned = read_marker(lake) if lake.is_dir() else None
    if owned is None:
        raise LakeRefused(
            f"--lake {lake}: not a folder the demo created (no {MARKER}), so nothing in it is"
            " removed; delete what you no longer need yourself"
        )
    removed = 0
    kept = []
    for relative in _files(lake):
        if owned.wrote(relative) or relative.split("/", 1)[0] in RUN_OUTPUTS or relative == MARKER:
            (lake / relative).unlink()
            removed += 1
        else:
            kept.append(relative)
    for entry in lake.iterdir():
        _remove_empty_folders(entry)
    if owned.created_folder and not any(lake.iterdir()):
        lake.rmdir()
    return Cleaned(removed=removed, kept=tuple(kept))


def _files(root: Path) -> Iterator[str]:
    """Every file and link below `root`, as sorted relative paths with '/' separators."""
    found = []
    for folder, folders, files in os.walk(root):
        base = Path(folder).relative_to(root)
        # A link to a folder (a published partition locally) is an entry, not a tree to walk.
        links = [name for name in folders if (Path(folder) / name).is_symlink()]
        for name in [*files, *links]:
            found.append((base / name).as_posix())
    return iter(sorted(found))


def _foreign_files(lake: Path, owned: DemoLake, under: str) -> list[str]:
    table = lake / under
    if not table.exists():
        return []
    paths = (f"{under}/{relative}" for relative in _files(table))
    return [path for path in paths if not owned.wrote(path)]


def _remove_empty_folders(root: Path) -> None:
    """Remove folders left empty below `root` and `root` itself if empty; never a file."""
    if not root.is_dir() or root.is_symlink():
        return
    for folder, _, _ in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        path = Path(folder)
        if not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()


def settings_for(
    owned: DemoLake | None, end_date: dt.date, years: float | None, models: int | None
) -> DemoSettings:
    """Requested settings, falling back to what the lake's demo data used, then the defaults."""
    before = owned.settings if owned else DemoSettings(end_date.isoformat(), 3.0, 30, 7)
    return DemoSettings(
        end_date=end_date.isoformat(),
        years=before.years if years is None else years,
        models=before.models if models is None else models,
        seed=before.seed,
    )
