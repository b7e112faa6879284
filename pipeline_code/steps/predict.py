"""Predict: forecast the horizon with each series' chosen model, point and interval.

Runs on every instance, each over its share of the buckets of series (`shards`): reads the share's
series files (`preproc/series/bucket=NNN.parquet`) and the models files of the same buckets
(`train/models/bucket=NNN.pkl`), and the interval calibration TrainEvaluation fitted on all
series (`evaluation/calibration.json`); writes one `predict/forecasts/bucket=NNN.parquet` per
bucket:

    series_id, target_date (execution date + 1 .. + horizon), yhat, yhat_lower, yhat_upper, model,
    event_kind (the target day's kind of calendar event, 0: an ordinary day; not published:
    PostProc widens the total's interval on event days with it)

Models are stored per bucket, not per Train instance, so an instance reads exactly the models of
its own series whatever the instance count of Train was (a retry, a changed count) and holds no
other instance's models in memory.

Each series is forecast from the fitted model Train stored (no refit), from the series' last day;
the point forecast carries the calendar events' effects Train estimated, and the interval comes
from that model's backtest errors at `--interval-level`, widened by the calibration (per
horizon step, and on event days). The data must be the
series Train fitted on (the same length). A series whose chosen model could not fit the latest
window gets seasonal naive, named in `model`. Demand is a count, so yhat and both bounds are
clipped at 0, and yhat_lower <= yhat <= yhat_upper always holds. A series whose data ends before
the execution date is forecast across the missing days, and only the target dates are kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import pickle
import sys
from functools import partial

import numpy as np
import pandas as pd

from pipeline_code import accuracy_files, bucket_files, run_folder, shards, storage
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.forecasting import (
    ForecastSettings,
    SeriesData,
    SeriesForecast,
    SeriesModel,
    map_series,
    predict_series,
)
from pipeline_code.forecasting.artifacts import TrainedModels, load_models
from pipeline_code.forecasting.metrics import IntervalCalibration
from pipeline_code.forecasting.selection import event_kinds
from pipeline_code.forecasting.series_table import last_day
from pipeline_code.progress import Progress
from pipeline_code.run_context import RunContext, add_common_arguments, context_from
from pipeline_code.shards import Share
from pipeline_code.steps.train import load_series

STEP = "Predict"
COLUMNS = ("series_id", "target_date", "yhat", "yhat_lower", "yhat_upper", "model")
FILE_COLUMNS = (*COLUMNS, "event_kind")
"""A forecasts bucket file's columns: the published ones and the target day's event kind."""


def load_trained(ctx: RunContext, buckets: list[int]) -> TrainedModels:
    """The models of `buckets`, as one TrainedModels."""
    uris = bucket_files.bucket_uris(ctx, STEP, run_folder.models_bucket, buckets, "Train")
    parts = [_load_models(uri) for uri in uris]
    models = {sid: model for part in parts for sid, model in part.models.items()}
    return TrainedModels(parts[0].settings, parts[0].execution_date, models)


def _load_models(uri: str) -> TrainedModels:
    try:
        return load_models(storage.read_bytes(uri))
    except (ValueError, pickle.UnpicklingError, AttributeError, EOFError) as err:
        raise StepError(STEP, f"{uri} is not a models file of this code version: {err}") from err


def load_calibration(ctx: RunContext) -> IntervalCalibration:
    uri = ctx.path(*run_folder.CALIBRATION)
    if not storage.exists(uri):
        raise StepError(STEP, f"input {uri} does not exist (did TrainEvaluation run?)")
    try:
        return IntervalCalibration.from_json(storage.read_json(uri))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise StepError(STEP, f"{uri} is not an interval calibration: {err}") from err


def _pair_models(series: list[SeriesData], trained: TrainedModels) -> list[SeriesModel]:
    """The model of every series; data and models must describe the same series."""
    ids = {s.series_id for s in series}
    without_model = sorted(ids - set(trained.models))
    without_data = sorted(set(trained.models) - ids)
    if without_model or without_data:
        raise StepError(
            STEP,
            f"series and models differ: no model for {without_model[:5]}, "
            f"no data for {without_data[:5]} (was Train run on this run's series?)",
        )
    # A stored fit ends at the last observation Train saw: other data would shift the forecast.
    other_length = [
        s.series_id for s in series if len(s.y) != trained.models[s.series_id].n_observations
    ]
    if other_length:
        raise StepError(
            STEP,
            f"series {other_length[:5]} differ in length from the data their models were fitted "
            "on (was Train run on this run's series?)",
        )
    return [trained.models[s.series_id] for s in series]


def _forecast_one(
    pair: tuple[SeriesData, SeriesModel],
    settings: ForecastSettings,
    steps: int,
    level: float,
    calibration: IntervalCalibration,
) -> SeriesForecast:
    series, model = pair
    return predict_series(
        series, model, settings, horizon=steps, level=level, calibration=calibration
    )


def forecast_frame(
    series: list[SeriesData],
    forecasts: list[SeriesForecast],
    execution_date: dt.date,
    horizon: int,
) -> pd.DataFrame:
    """Keep the steps whose date is execution date + 1 .. + horizon."""
    target_dates = [execution_date + dt.timedelta(days=k) for k in range(1, horizon + 1)]
    parts = []
    for s, fc in zip(series, forecasts, strict=True):
        skip = (execution_date - last_day(s)).days  # days between the data's end and the date
        window = slice(skip, skip + horizon)
        parts.append(
            pd.DataFrame(
                {
                    "series_id": s.series_id,
                    "target_date": target_dates,
                    "yhat": fc.yhat[window],
                    "yhat_lower": fc.lower[window],
                    "yhat_upper": fc.upper[window],
                    "model": fc.model,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[list(COLUMNS)]


def target_day_kinds(
    settings: ForecastSettings, execution_date: dt.date, horizon: int
) -> dict[dt.date, int]:
    """Each target day's kind of calendar event (0: ordinary), from the calendar Train used."""
    days = [execution_date + dt.timedelta(days=k) for k in range(1, horizon + 1)]
    calendar = settings.calendar
    if calendar is None or calendar.empty or settings.frequency != "D":
        return dict.fromkeys(days, 0)
    kinds = event_kinds(calendar.codes(days[0], horizon), settings)
    return {day: int(kind) for day, kind in zip(days, kinds, strict=True)}


def write_forecasts(ctx: RunContext, frame: pd.DataFrame) -> None:
    bucket_files.write_buckets(
        ctx, bucket_files.split_by_bucket(frame), run_folder.forecasts_bucket
    )


def run(ctx: RunContext, args: argparse.Namespace, share: Share | None = None) -> pd.DataFrame:
    if args.horizon < 1 or not 0 < args.interval_level < 1:
        raise StepError(STEP, "--horizon must be >= 1 and --interval-level between 0 and 1")
    share = share or shards.current_share()
    series, _, buckets = load_series(ctx, STEP, share)
    if not series:
        print(f"{STEP}: {share.label}: no series in its share of buckets, nothing to forecast")
        return pd.DataFrame(columns=list(FILE_COLUMNS))
    trained = load_trained(ctx, buckets)
    models = _pair_models(series, trained)
    steps = args.horizon + max((ctx.execution_date - last_day(s)).days for s in series)
    forecast = partial(
        _forecast_one,
        settings=trained.settings,
        steps=steps,
        level=args.interval_level,
        calibration=load_calibration(ctx),
    )
    progress = Progress(STEP, len(series))
    pairs = list(zip(series, models, strict=True))
    forecasts = map_series(forecast, pairs, args.workers, progress.advance)
    frame = forecast_frame(series, forecasts, ctx.execution_date, args.horizon)
    kinds = target_day_kinds(trained.settings, ctx.execution_date, args.horizon)
    frame["event_kind"] = frame["target_date"].map(kinds).astype("int64")
    if not np.isfinite(frame[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all():
        raise StepError(STEP, "a forecast is not finite")
    write_forecasts(ctx, frame)
    scoring = accuracy_files.score_share(
        ctx, buckets, args.horizon, args.accuracy_window, trained.settings.mase_season_length
    )
    print(
        f"{STEP}: {share.label}, {len(buckets)} buckets: {len(series)} series x {args.horizon} "
        f"days -> {ctx.path(*run_folder.FORECASTS)}; scored {len(scoring.scored)} earlier"
        f" publications on {len(scoring.days)} newly observed days"
    )
    return frame


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Forecast the horizon with the chosen models.")
    add_common_arguments(parser)
    parser.add_argument("--horizon", type=int, default=28, help="days after the execution date")
    parser.add_argument("--interval-level", type=float, default=0.8, help="nominal coverage")
    parser.add_argument(
        "--accuracy-window", type=int, default=28, help="scored days the promise is checked over"
    )
    parser.add_argument("--workers", type=int, default=0, help="processes; 0 = all cores")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run(context_from(args), args)


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
