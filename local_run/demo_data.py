"""A seeded generator of realistic car-subscription applications, for the local lake and tests.

Each car model has a base daily rate shaped by:

- a weekly pattern (more applications at weekends, fewest mid-week),
- Japanese public holidays (treated like a Sunday), the year-end break (Dec 29 - Jan 3, very
  quiet), Golden Week and Obon (quieter: dealers and call centres close, families travel),
- a yearly trend (growth or decline per model),
- campaigns (a few one- or two-week spikes per model),
- launches (some models start inside the window with a decaying launch boost) and
  discontinuations (some models stop: no applications after their end date).

Daily counts are gamma-Poisson (over-dispersed) draws, so small models have zero days. Each count
becomes that many application rows with a time of day, plan, channel and prefecture, written as
the `applications` table: `<lake>/applications/dt=YYYY-MM-DD/part-0.parquet`.

The same seed, end date and sizes always give the same rows.

Worlds (`WORLDS`, `--world`): the calendar rules above are the `default` world's. The others
change how the calendar moves demand, so the forecast can be measured on rules it was not built
around: `ordinary_holidays` (a holiday is an ordinary day of its weekday), `lift_holidays` (a
holiday lifts its weekday's demand), `mixed_holidays` (a holiday lifts half the models' demand
and cuts the others'), `partial_breaks` (only some days of each break's configured span are low,
and a break's last day may rebound), `friday_rest` (the rest day is Friday: the weekly peak and
the holidays' level follow it). A seed gives the same models and campaigns in every world.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import holidays
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
from scipy import stats

from pipeline_code import tables

_NAME_STEMS = (
    "Aster", "Breeze", "Corona", "Dune", "Ember", "Fjord", "Glide", "Harbor", "Iris", "Jade",
    "Kite", "Lumen", "Mirai", "Nova", "Orbit", "Pulse", "Quill", "Ridge", "Sora", "Tide",
    "Umi", "Vale", "Wren", "Yuki", "Zephyr", "Akari", "Hikari", "Kaze", "Nami", "Sakura",
    "Tsubasa", "Hoshi", "Midori", "Aoi", "Haru", "Kumo", "Ren", "Shiro", "Taiyo", "Yama",
)  # fmt: skip
_BODY_TYPES = ("Compact", "Sedan", "SUV", "Wagon", "Kei", "Minivan", "Hybrid", "EV")

_PLANS = ("3y", "5y", "7y", "flex")
_PLAN_WEIGHTS = (0.25, 0.4, 0.2, 0.15)
_CHANNELS = ("web", "app", "dealer", "partner")
_CHANNEL_WEIGHTS = (0.45, 0.25, 0.22, 0.08)
# The ten most populous prefectures, then the rest as one bucket: enough realism for a dashboard.
_PREFECTURES = (
    "Tokyo", "Kanagawa", "Osaka", "Aichi", "Saitama", "Chiba", "Hyogo", "Hokkaido", "Fukuoka",
    "Shizuoka", "Other",
)  # fmt: skip
_PREFECTURE_WEIGHTS = (0.14, 0.09, 0.07, 0.06, 0.06, 0.05, 0.04, 0.04, 0.04, 0.03, 0.38)

# Monday..Sunday: applications are a weekend activity for private customers.
_WEEKDAY_FACTOR = np.array([0.95, 0.85, 0.8, 0.85, 1.0, 1.35, 1.3])
_HOLIDAY_FACTOR = 1.3
_YEAR_END_FACTOR = 0.25
_GOLDEN_WEEK_FACTOR = 0.7
_OBON_FACTOR = 0.65
# Gamma-Poisson shape: smaller means more over-dispersion than a plain Poisson.
_DISPERSION_SHAPE = 8.0
# Hour-of-day weights (0..23) for applied_at: evening peak, quiet at night.
_HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 1.5, 2.5, 3.5, 4.5, 5, 5, 5, 5, 5, 5, 5, 5.5, 6, 6, 5, 3.5, 2]
)


@dataclass(frozen=True)
class ModelProfile:
    """How one car model's demand behaves over the window."""

    name: str
    base_rate: float  # mean applications per day before effects
    yearly_growth: float  # multiplicative trend per year, e.g. 0.2 = +20 %/year
    launch: dt.date | None  # first day on sale, if inside the window
    end: dt.date | None  # last day on sale, if inside the window
    campaigns: tuple[tuple[dt.date, int, float], ...]  # (start, days, multiplier)


@dataclass(frozen=True)
class DemoSummary:
    """What `write_demo_applications` wrote."""

    table_path: Path
    start_date: dt.date
    end_date: dt.date
    rows: int
    partitions: int
    models: tuple[str, ...]
    launched_late: tuple[str, ...]
    discontinued: tuple[str, ...]


def model_names(n_models: int) -> list[str]:
    """Distinct, stable names: the i-th name does not depend on how many models there are."""
    names = []
    for i in range(n_models):
        stem = _NAME_STEMS[i % len(_NAME_STEMS)]
        body = _BODY_TYPES[(i * 3 + i // len(_NAME_STEMS)) % len(_BODY_TYPES)]
        names.append(f"{stem} {body}")
    return names


def _profiles(
    start: dt.date, end: dt.date, n_models: int, rng: np.random.Generator
) -> list[ModelProfile]:
    span = (end - start).days
    profiles: list[ModelProfile] = []
    for i, name in enumerate(model_names(n_models)):
        # A few big sellers, many small ones: log-normal sizes.
        base_rate = float(np.clip(rng.lognormal(mean=1.6, sigma=0.9), 0.4, 60.0))
        growth = float(rng.normal(0.05, 0.2))
        # Fixed roles so every data set with enough models has late starters and stoppers.
        launch = (
            start + dt.timedelta(days=int(span * rng.uniform(0.3, 0.7))) if i % 7 == 3 else None
        )
        stop = start + dt.timedelta(days=int(span * rng.uniform(0.5, 0.85))) if i % 9 == 5 else None
        campaigns = tuple(
            (
                start + dt.timedelta(days=int(rng.integers(0, max(span - 14, 1)))),
                int(rng.choice([7, 14])),
                float(rng.uniform(1.5, 3.0)),
            )
            for _ in range(int(rng.integers(0, 4)))
        )
        profiles.append(ModelProfile(name, base_rate, growth, launch, stop, campaigns))
    return profiles


@dataclass(frozen=True)
class World:
    """How the calendar moves demand in one variant of the generator.

    `holidays`: "rest_day" (a holiday's demand is the rest day's times `holiday_factor`),
    "weekday" (its own weekday's times `holiday_factor`), "mixed" (its own weekday's times
    `holiday_factor` for even-numbered models, times `holiday_cut` for odd ones).
    `partial_breaks`: only the days listed in `_PARTIAL_BREAKS` move, by their own factor.
    `rest_day`: 0 Monday .. 6 Sunday; the weekly pattern is turned so that it peaks there.
    """

    name: str
    holidays: str = "rest_day"
    holiday_factor: float = _HOLIDAY_FACTOR
    holiday_cut: float = 1.0
    partial_breaks: bool = False
    rest_day: int = 6


WORLDS = {
    w.name: w
    for w in (
        World("default"),
        World("ordinary_holidays", holidays="weekday", holiday_factor=1.0),
        World("lift_holidays", holidays="weekday", holiday_factor=1.5),
        World("mixed_holidays", holidays="mixed", holiday_factor=1.5, holiday_cut=0.6),
        World("partial_breaks", partial_breaks=True),
        World("friday_rest", rest_day=4),
    )
}
DEFAULT_WORLD = WORLDS["default"]

# partial_breaks: (month, day) -> factor for the break days that move; the span's other days are
# ordinary. The year end is low from the 30th and recovers on the 3rd, Golden Week is low only on
# its fixed holidays (3-5 May), Obon on its middle two days, with a rebound on its last.
_PARTIAL_BREAKS = {
    (12, 30): 0.3, (12, 31): 0.2, (1, 1): 0.15, (1, 2): 0.3, (1, 3): 0.7,
    (5, 3): 0.6, (5, 4): 0.55, (5, 5): 0.65,
    (8, 14): 0.5, (8, 15): 0.5, (8, 16): 1.25,
}  # fmt: skip


def weekday_factors(world: World = DEFAULT_WORLD) -> np.ndarray:
    """Monday..Sunday: the weekly pattern of `world`, peaking on and before its rest day."""
    return np.roll(_WEEKDAY_FACTOR, world.rest_day - 6)


def _calendar_factor(
    days: pd.DatetimeIndex, n_models: int = 1, world: World = DEFAULT_WORLD
) -> np.ndarray:
    """Weekday, public-holiday and seasonal-break effects, a (days, models) matrix."""
    jp_holidays = holidays.country_holidays("JP", years=range(days[0].year, days[-1].year + 1))
    pattern = weekday_factors(world)
    factor = pattern[days.dayofweek.to_numpy()].copy()
    is_holiday = np.array([day.date() in jp_holidays for day in days])
    month, day = days.month.to_numpy(), days.day.to_numpy()
    if world.holidays == "rest_day":
        factor[is_holiday] = pattern[world.rest_day] * world.holiday_factor
    if world.partial_breaks:
        for (m, d), effect in _PARTIAL_BREAKS.items():
            factor[(month == m) & (day == d)] *= effect
    else:
        year_end = ((month == 12) & (day >= 29)) | ((month == 1) & (day <= 3))
        golden_week = ((month == 4) & (day >= 29)) | ((month == 5) & (day <= 5))
        obon = (month == 8) & (day >= 13) & (day <= 16)
        factor[year_end] *= _YEAR_END_FACTOR
        factor[golden_week] *= _GOLDEN_WEEK_FACTOR
        factor[obon] *= _OBON_FACTOR
    matrix = np.repeat(factor[:, None], n_models, axis=1)
    if world.holidays in ("weekday", "mixed"):
        lift = np.full(n_models, world.holiday_factor)
        if world.holidays == "mixed":
            lift[1::2] = world.holiday_cut
        matrix[is_holiday] *= lift
    return matrix


def _model_rates(days: pd.DatetimeIndex, profile: ModelProfile) -> np.ndarray:
    """Expected applications per day for one model, before calendar effects."""
    dates = days.date
    years_in = np.arange(len(days)) / 365.25
    rate = profile.base_rate * np.power(1.0 + profile.yearly_growth, years_in)
    for start, length, multiplier in profile.campaigns:
        in_campaign = (dates >= start) & (dates < start + dt.timedelta(days=length))
        rate[in_campaign] *= multiplier
    if profile.launch is not None:
        since = np.array([(d - profile.launch).days for d in dates])
        # Pent-up demand right after launch, fading over about a month.
        rate = np.where(since < 0, 0.0, rate * (1.0 + 2.0 * np.exp(-np.maximum(since, 0) / 20)))
    if profile.end is not None:
        rate[dates > profile.end] = 0.0
    return rate


def _window(end_date: dt.date, years: float) -> pd.DatetimeIndex:
    start = end_date - dt.timedelta(days=round(years * 365.25) - 1)
    return pd.date_range(start, end_date, freq="D")


def demo_daily_counts(
    end_date: dt.date,
    years: float = 3.0,
    n_models: int = 30,
    seed: int = 7,
    world: World = DEFAULT_WORLD,
) -> pd.DataFrame:
    """Daily counts per model as the between-step series table: series_id, ds (date), y (float).

    Every (model, day) of the window is present, zeros included; the applications written by
    `write_demo_applications` with the same arguments add up to exactly these counts.
    """
    counts, days, _ = _simulate(end_date, years, n_models, seed, world)
    names = model_names(n_models)
    return pd.DataFrame(
        {
            "series_id": np.repeat(names, len(days)),
            "ds": np.tile(days.date, n_models),
            "y": counts.T.reshape(-1).astype("float64"),
        }
    )


def _simulate(
    end_date: dt.date, years: float, n_models: int, seed: int, world: World = DEFAULT_WORLD
) -> tuple[np.ndarray, pd.DatetimeIndex, list[ModelProfile]]:
    """Counts as a (days, models) matrix, the days, and the model profiles."""
    run = _simulate_with_future(end_date, years, n_models, seed, future_days=0, world=world)
    return run.counts, run.days, run.profiles


@dataclass(frozen=True)
class DemoFuture:
    """The demo data's days after its end date: realised counts and the expected rates.

    `expected` is the mean of the count distribution each day (the rate; the gamma noise has mean
    1): the best any forecast can do on average. Both are (days, models) matrices.
    """

    days: pd.DatetimeIndex
    models: tuple[str, ...]
    counts: np.ndarray
    expected: np.ndarray


def count_probability(expected: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The probability that a day's count falls in [lower, upper] when its rate is `expected`:
    the coverage an interval has on average over the generator's draws (gamma-Poisson, that is
    negative binomial with `_DISPERSION_SHAPE` successes)."""
    rate = np.maximum(np.asarray(expected, dtype=float), 1e-12)
    success = _DISPERSION_SHAPE / (_DISPERSION_SHAPE + rate)
    highest = np.floor(np.asarray(upper, dtype=float) + 1e-9)
    below = np.ceil(np.asarray(lower, dtype=float) - 1e-9) - 1
    return stats.nbinom.cdf(highest, _DISPERSION_SHAPE, success) - stats.nbinom.cdf(
        below, _DISPERSION_SHAPE, success
    )


@dataclass(frozen=True)
class _Simulation:
    counts: np.ndarray
    days: pd.DatetimeIndex
    profiles: list[ModelProfile]
    future: DemoFuture


def _simulate_with_future(
    end_date: dt.date,
    years: float,
    n_models: int,
    seed: int,
    future_days: int,
    world: World = DEFAULT_WORLD,
) -> _Simulation:
    """The window's counts and `future_days` more: the window's draws come first, unchanged."""
    if years <= 0 or n_models <= 0:
        raise ValueError(f"years and n_models must be positive, got {years} and {n_models}")
    if n_models > len(_NAME_STEMS) * len(_BODY_TYPES):
        raise ValueError(f"at most {len(_NAME_STEMS) * len(_BODY_TYPES)} models, got {n_models}")
    rng = np.random.default_rng(seed)
    days = _window(end_date, years)
    profiles = _profiles(days[0].date(), end_date, n_models, rng)
    all_days = pd.date_range(days[0], end_date + dt.timedelta(days=future_days), freq="D")
    calendar = _calendar_factor(all_days, n_models, world)
    rates = np.column_stack([_model_rates(all_days, p) for p in profiles]) * calendar
    past, future = rates[: len(days)], rates[len(days) :]
    # Gamma-Poisson: a day-to-day noise factor on the rate, then Poisson counts.
    noise = rng.gamma(_DISPERSION_SHAPE, 1.0 / _DISPERSION_SHAPE, size=past.shape)
    counts = rng.poisson(past * noise)
    future_noise = rng.gamma(_DISPERSION_SHAPE, 1.0 / _DISPERSION_SHAPE, size=future.shape)
    names = tuple(p.name for p in profiles)
    realised = DemoFuture(all_days[len(days) :], names, rng.poisson(future * future_noise), future)
    return _Simulation(counts, days, profiles, realised)


def demo_future(
    end_date: dt.date,
    days: int,
    years: float = 3.0,
    n_models: int = 30,
    seed: int = 7,
    world: World = DEFAULT_WORLD,
) -> DemoFuture:
    """The `days` after `end_date` of the demo data written with the same arguments."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    return _simulate_with_future(end_date, years, n_models, seed, days, world).future


def world_named(name: str) -> World:
    """The generator world called `name`; ValueError lists the known ones."""
    if name not in WORLDS:
        raise ValueError(f"unknown demo world {name!r}; known: {', '.join(WORLDS)}")
    return WORLDS[name]


def _application_rows(
    counts: np.ndarray, days: pd.DatetimeIndex, names: list[str], rng: np.random.Generator
) -> pa.Table:
    """One row per application, in day order (the writer relies on it)."""
    flat = counts.reshape(-1)  # day-major: day 0 model 0, day 0 model 1, ...
    n_rows = int(flat.sum())
    day_index = np.repeat(np.repeat(np.arange(len(days)), counts.shape[1]), flat)
    model_index = np.repeat(np.tile(np.arange(counts.shape[1]), len(days)), flat)
    hours = rng.choice(24, size=n_rows, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    seconds = hours * 3600 + rng.integers(0, 3600, size=n_rows)
    day_ns = days.to_numpy().astype("datetime64[ms]")[day_index]
    applied_at = day_ns + seconds.astype("timedelta64[s]").astype("timedelta64[ms]")
    order = np.lexsort((applied_at, day_index))  # by day, then time of day
    dt_text = np.asarray(days.strftime("%Y-%m-%d"))[day_index][order]
    ids = np.char.add("A", np.char.zfill(np.arange(1, n_rows + 1).astype(str), 9))
    columns = {
        "application_id": ids,
        "applied_at": applied_at[order],
        "car_model": np.asarray(names)[model_index][order],
        "plan": np.asarray(_PLANS)[rng.choice(len(_PLANS), size=n_rows, p=_PLAN_WEIGHTS)],
        "channel": np.asarray(_CHANNELS)[
            rng.choice(len(_CHANNELS), size=n_rows, p=_CHANNEL_WEIGHTS)
        ],
        "prefecture": np.asarray(_PREFECTURES)[
            rng.choice(len(_PREFECTURES), size=n_rows, p=_PREFECTURE_WEIGHTS)
        ],
    }
    schema = tables.arrow_schema(tables.APPLICATIONS).append(pa.field("dt", pa.string()))
    return pa.Table.from_pydict({**columns, "dt": dt_text}, schema=schema)


def write_demo_applications(
    lake: Path, end_date: dt.date, years: float = 3.0, n_models: int = 30, seed: int = 7
) -> DemoSummary:
    """Write the `applications` table for `years` ending at `end_date` into the lake folder.

    Only into a table folder that is absent or empty: the generator never removes or overwrites
    files (`local_run.demo` decides, with `demo_lake`, what of a lake the demo may replace).
    """
    counts, days, profiles = _simulate(end_date, years, n_models, seed)
    names = [p.name for p in profiles]
    table = _application_rows(counts, days, names, np.random.default_rng(seed + 1))
    table_path = Path(lake) / tables.APPLICATIONS.name
    if table_path.exists() and any(table_path.iterdir()):
        raise FileExistsError(f"{table_path}: already holds files; demo data goes into a new table")
    _write_partitions(table, table_path, len(days))
    return DemoSummary(
        table_path=table_path,
        start_date=days[0].date(),
        end_date=end_date,
        rows=table.num_rows,
        partitions=int((counts.sum(axis=1) > 0).sum()),
        models=tuple(names),
        launched_late=tuple(p.name for p in profiles if p.launch is not None),
        discontinued=tuple(p.name for p in profiles if p.end is not None),
    )


def write_world_applications(
    lake: Path,
    end_date: dt.date,
    world: World,
    years: float = 3.0,
    n_models: int = 30,
    seed: int = 7,
) -> Path:
    """Write the `applications` table of `world` into a lake that has none yet (the benchmarks'
    fresh lakes); the rows are those `write_demo_applications` writes for the default world."""
    table_path = Path(lake) / tables.APPLICATIONS.name
    if table_path.exists():
        raise FileExistsError(f"{table_path}: the lake already has an applications table")
    counts, days, profiles = _simulate(end_date, years, n_models, seed, world)
    table = _application_rows(
        counts, days, [p.name for p in profiles], np.random.default_rng(seed + 1)
    )
    _write_partitions(table, table_path, len(days))
    return table_path


def _write_partitions(table: pa.Table, table_path: Path, days: int) -> None:
    """The rows as `dt=YYYY-MM-DD/part-0.parquet` partitions of a table folder that holds no
    data (the callers check; pyarrow refuses existing data too)."""
    pads.write_dataset(
        table,
        table_path,
        format="parquet",
        partitioning=pads.partitioning(pa.schema([("dt", pa.string())]), flavor="hive"),
        basename_template="part-{i}.parquet",
        max_partitions=days + 1,
        # Rows are in day order, so each partition is written by one file even past this limit.
        max_open_files=64,
        existing_data_behavior="error",
    )


def write_small_demo_applications(lake: Path, end_date: dt.date, seed: int = 7) -> DemoSummary:
    """A small table for tests: 4 models (one launched late) over about one year."""
    return write_demo_applications(lake, end_date, years=1.0, n_models=4, seed=seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fill a local lake with demo applications.")
    parser.add_argument("--lake", type=Path, required=True, help="the local lake folder")
    parser.add_argument("--end-date", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--world", choices=sorted(WORLDS), default=DEFAULT_WORLD.name)
    args = parser.parse_args(argv)
    if args.world != DEFAULT_WORLD.name:
        world = world_named(args.world)
        path = write_world_applications(
            args.lake, args.end_date, world, args.years, args.models, args.seed
        )
        print(f"wrote the {world.name} world's applications into {path}")
        return
    summary = write_demo_applications(args.lake, args.end_date, args.years, args.models, args.seed)
    print(
        f"wrote {summary.rows} applications for {len(summary.models)} models, "
        f"{summary.start_date}..{summary.end_date}, into {summary.table_path}"
    )


if __name__ == "__main__":
    main()
