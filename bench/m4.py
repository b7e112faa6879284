"""M4 Weekly and Hourly: the pipeline's own forecasting code against the published benchmarks.

Every series goes through `train_series` (rolling-origin backtest over the frequency's candidate
set, per-series choice, fit on the latest window) and `predict_series` (forecast from that fit)
exactly as the Train and Predict steps run them; only the settings differ, taken from the
frequency (`settings_for_frequency`). The forecasts are scored with the shared M4 scorer
(score.py: sMAPE, MASE and OWA against Naive2) and printed beside the published rows of Naive2,
SES, Theta, Damped and Comb.

    .venv/bin/python bench/m4.py                      # both frequencies, every core
    .venv/bin/python bench/m4.py --frequency Hourly --limit 50 --workers 2

Targets: Weekly OWA <= 0.90, Hourly OWA <= 0.62. Wall times depend on what else runs on the
machine. Prints a message and exits 0 when the shared benchmark folder is absent.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections import Counter
from functools import partial
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline_code.forecasting import (
    ForecastSettings,
    SeriesData,
    map_series,
    predict_series,
    settings_for_frequency,
    train_series,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "m4"
FILES = {"Weekly": "m4_weekly_all359.csv", "Hourly": "m4_hourly_all414.csv"}
CODES = {"Weekly": "W", "Hourly": "H"}
TARGET_OWA = {"Weekly": 0.90, "Hourly": 0.62}
PUBLISHED = ("Naive2", "SES", "Theta", "Damped", "Com")


def load_scorer(data_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("m4_score", data_dir / "score.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def forecast_one(series: SeriesData, settings: ForecastSettings) -> tuple[str, str, np.ndarray]:
    """Train's choice then Predict's forecast for one series: the pipeline's path."""
    model = train_series(series, settings).model
    forecast = predict_series(series, model, settings)
    return series.series_id, forecast.model, forecast.yhat


def run_frequency(
    name: str, data_dir: Path, scorer: ModuleType, workers: int, limit: int | None
) -> dict[str, float]:
    train, test = scorer.load_data(data_dir / FILES[name])
    ids = list(test)[:limit] if limit else list(test)
    horizon = scorer.M4_H[name.lower()]
    settings = settings_for_frequency(CODES[name], horizon=horizon)
    series = [SeriesData(uid, np.asarray(train[uid], dtype=float)) for uid in ids]
    started = time.perf_counter()
    results = map_series(partial(forecast_one, settings=settings), series, workers)
    elapsed = time.perf_counter() - started
    forecasts = {uid: yhat for uid, _, yhat in results}
    m = scorer.M4_M[name.lower()]
    summary, _ = scorer.score(train, {u: test[u] for u in ids}, forecasts, m)
    chosen = Counter(model for _, model, _ in results)
    print(f"\n== M4 {name}: {len(ids)} series, horizon {horizon}, scoring m={m}")
    print(f"   {elapsed:.1f}s wall ({len(ids) / elapsed:.1f} series/s); chosen {dict(chosen)}")
    if summary["problems"]:
        print(f"   problems: {summary['problems'][:5]}")
    return {k: summary[k] for k in ("sMAPE", "MASE", "OWA")}


def print_table(name: str, ours: dict[str, float], published: pd.DataFrame) -> None:
    rows = published[(published["frequency"] == name) & published["method"].isin(PUBLISHED)]
    print(f"   {'method':10s} {'sMAPE':>8s} {'MASE':>8s} {'OWA':>8s}")
    for _, row in rows.iterrows():
        print(f"   {row['method']:10s} {row['sMAPE']:8.3f} {row['MASE']:8.3f} {row['OWA']:8.3f}")
    print(f"   {'pipeline':10s} {ours['sMAPE']:8.3f} {ours['MASE']:8.3f} {ours['OWA']:8.3f}")
    verdict = "meets" if ours["OWA"] <= TARGET_OWA[name] else "MISSES"
    print(f"   target OWA <= {TARGET_OWA[name]:.2f}: {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--frequency", choices=[*FILES, "all"], default="all")
    parser.add_argument("--workers", type=int, default=0, help="processes; 0 = every core")
    parser.add_argument("--limit", type=int, default=None, help="first N series only (quick look)")
    args = parser.parse_args(argv)
    if not (args.data_dir / "score.py").exists():
        print(f"SKIPPED: M4 benchmark data not found at {args.data_dir}")
        return 0
    scorer = load_scorer(args.data_dir)
    published = pd.read_csv(args.data_dir / "published_accuracy.csv")
    names = list(FILES) if args.frequency == "all" else [args.frequency]
    for name in names:
        ours = run_frequency(name, args.data_dir, scorer, args.workers, args.limit)
        print_table(name, ours, published)
    return 0


if __name__ == "__main__":
    sys.exit(main())
