"""Forecast accuracy measures and the empirical prediction-interval calibration.

Definitions follow the M4 competition: sMAPE in 0..200 with a 0/0 term scored 0 (demand counts
have zeros), MASE scaled by the in-sample mean absolute seasonal difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


def mase_scale(history: np.ndarray, season_length: int) -> float:
    """In-sample MAE of the seasonal-naive forecast: the MASE denominator.

    A history without any seasonal change (e.g. all zeros) has scale 0; it falls back to the lag-1
    MAE, then the mean absolute value, then 1.0, so the MASE stays finite and comparable.
    """
    x = np.asarray(history, dtype=float)
    for lag in (season_length, 1):
        if len(x) > lag:
            scale = float(np.mean(np.abs(x[lag:] - x[:-lag])))
            if scale > 0:
                return scale
    level = float(np.mean(np.abs(x))) if len(x) else 0.0
    return level if level > 0 else 1.0


def absolute_errors(actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(actual, dtype=float) - np.asarray(forecast, dtype=float))


def smape_terms(actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """200|y-f|/(|y|+|f|) per point; a point with y == f == 0 counts as a perfect 0."""
    y = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    denominator = np.abs(y) + np.abs(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator == 0, 0.0, 200.0 * np.abs(y - f) / denominator)


def inside_interval(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Per point, whether the actual is inside [lower, upper], bounds included."""
    y = np.asarray(actual, dtype=float)
    return (y >= np.asarray(lower, dtype=float)) & (y <= np.asarray(upper, dtype=float))


def mean_mase(actual: np.ndarray, forecast: np.ndarray, scales: np.ndarray) -> float:
    """MASE averaged over rows: `actual` and `forecast` are (rows, points), each row scaled by
    its own `scales` entry (a series, or a backtest fold of one series)."""
    row_mae = np.mean(absolute_errors(actual, forecast), axis=1)
    return float(np.mean(row_mae / np.asarray(scales, dtype=float)))


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(absolute_errors(actual, forecast)))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean of `smape_terms`."""
    return float(np.mean(smape_terms(actual, forecast)))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside [lower, upper], bounds included."""
    return float(np.mean(inside_interval(actual, lower, upper)))


def interval_offsets(errors: np.ndarray, level: float) -> tuple[float, float]:
    """Offsets (low, high) to add to a point forecast for a central interval of `level`.

    `errors` are past out-of-sample errors (actual - forecast). The quantile levels are widened
    by the split-conformal finite-sample correction, so a handful of backtest errors does not
    give an interval that is too narrow. No errors: a zero-width interval.
    """
    e = np.asarray(errors, dtype=float).ravel()
    e = e[np.isfinite(e)]
    if e.size == 0:
        return 0.0, 0.0
    tail = (1.0 - level) / 2.0
    n = e.size
    upper_q = min(1.0, math.ceil((n + 1) * (1.0 - tail)) / n)
    lower_q = max(0.0, 1.0 - upper_q)
    low, high = np.quantile(e, [lower_q, upper_q])
    return float(low), float(high)


# --- calibration of the intervals across series

CALIBRATION_STEP_REACH = 3  # an ordinary day's step pools the steps up to 3 either side
MIN_CALIBRATION_POINTS = 20  # fewer backtest points in a class: leave its intervals as they are
# Distinct calendar days a class of event days needs for a factor of its own. All series see
# the same holiday on the same day and share its estimated effect, so their errors on that day
# move together: a class's evidence is its number of days, not of points (27 series on 3
# holidays are 3 draws, whose 80% quantiles spread from 0.6 to 1.5 on the demo data).
MIN_EVENT_DAYS = 5


@dataclass(frozen=True)
class IntervalCalibration:
    """Factors on each series' interval offsets: per horizon step (ordinary days) and on events.

    A series' own backtest has too few errors to tell step 1 from step 28 or event days from
    the rest; the backtests of all series together do. The factor of a class is the smallest
    that makes `level` of that class's backtest points fall inside their widened intervals.
    Event days are calibrated per kind (a break, a single public holiday, a company day: their
    errors differ in more than their level); a kind with too few days takes the factor of all
    event days, and with too few of those, the ordinary factor of its step.

    An event class's factor is learned from few occurrences (a backtest may hold one Obon and
    two holidays), so it is trusted only as far as it is stable across them: on a day of the
    class the factor is its own to the power of its weight times its prior's (all event days
    for a kind, the ordinary step for all event days) to the rest (`occurrence_weight`).
    """

    step_factors: tuple[float, ...] = (1.0,)  # step 1, 2, ...; the last one holds beyond
    event_factor: float | None = None  # all event days together; None: too few days
    kind_factors: dict[int, float] = field(default_factory=dict)  # event kind: its own factor
    event_weight: float = 1.0  # the event factor's weight against the ordinary step's
    kind_weights: dict[int, float] = field(default_factory=dict)  # against all event days'; 1

    def factors(self, steps: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """The factor of each forecast day: `steps` are 1-based, `kinds` its event kinds."""
        kinds = np.asarray(kinds)
        by_step = np.asarray(self.step_factors, dtype=float)
        out = by_step[np.minimum(np.asarray(steps) - 1, len(by_step) - 1)]
        if self.event_factor is not None:
            events = _blend(self.event_factor, out, self.event_weight)
            out = np.where(kinds != 0, events, out)
        for kind, factor in self.kind_factors.items():
            own = _blend(factor, out, self.kind_weights.get(kind, 1.0))
            out = np.where(kinds == kind, own, out)
        return out

    def to_json(self) -> dict[str, object]:
        """A JSON object (floats round-trip exactly through Python's json)."""
        return {
            "step_factors": list(self.step_factors),
            "event_factor": self.event_factor,
            "kind_factors": {str(kind): factor for kind, factor in self.kind_factors.items()},
            "event_weight": self.event_weight,
            "kind_weights": {str(kind): weight for kind, weight in self.kind_weights.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> IntervalCalibration:
        """From `to_json`; a file written before the weights existed has full weights."""
        return cls(
            step_factors=tuple(float(f) for f in data["step_factors"]),
            event_factor=None if data["event_factor"] is None else float(data["event_factor"]),
            kind_factors={int(k): float(v) for k, v in data["kind_factors"].items()},
            event_weight=float(data.get("event_weight", 1.0)),
            kind_weights={int(k): float(v) for k, v in data.get("kind_weights", {}).items()},
        )


def _blend(own: float, prior: np.ndarray, weight: float) -> np.ndarray:
    """own**weight * prior**(1 - weight): the weighted mean in log space (a zero stays zero)."""
    if weight >= 1.0:
        return np.full(np.shape(prior), own)
    return np.power(own, weight) * np.power(prior, 1.0 - weight)


def occurrence_weight(own: float, prior: float, variance: float | None) -> float:
    """How far a class's factor `own` is trusted against its `prior`, in log space, given the
    variance of log `own`.

    The shift from the prior beyond the factor's noise is the class's own (method of moments:
    tau**2 = shift**2 - variance) and the weight is tau**2 / (tau**2 + variance): 0 where the
    shift is within the noise, near 1 where it is far beyond it. Where the noise cannot be
    measured (None: fewer than two occurrences with enough points each) the factor stands, as
    the class's minimum of days and points allowed it.
    """
    if variance is None:
        return 1.0
    if not (own > 0 and prior > 0):
        return 0.0
    shift = math.log(own) - math.log(prior)
    if shift**2 <= variance:
        return 0.0
    return 1.0 - variance / shift**2


def occurrences(days: set[int]) -> list[list[int]]:
    """Runs of consecutive calendar days: an event's occurrences (a break, a holiday, a long
    weekend), each one estimate of its effect, shared by all its days."""
    ordered = sorted(days)
    runs: list[list[int]] = []
    for day in ordered:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


NO_CALIBRATION = IntervalCalibration()


def needed_factors(errors: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per point, the smallest factor on its offsets (low <= 0 <= high) that covers its error."""
    with np.errstate(divide="ignore", invalid="ignore"):
        above = np.where(high > 0, errors / high, np.inf)
        below = np.where(low < 0, errors / low, np.inf)
    return np.where(errors > 0, above, np.where(errors < 0, below, 0.0))


# The needed factors are counted in bins, 1024 to a doubling (0.07% wide) between 2**-16 and
# 2**16, plus a bin for 0 and one for anything larger, infinity included. Counts add: every
# instance's points can be counted apart and summed, in any order, to the same factors, and the
# memory does not grow with the number of points.
BINS_PER_DOUBLING = 1024
SMALLEST_DOUBLING = -16
LARGEST_DOUBLING = 16
_REGULAR_BINS = (LARGEST_DOUBLING - SMALLEST_DOUBLING) * BINS_PER_DOUBLING
ZERO_BIN, TINY_BIN, FIRST_BIN = 0, 1, 2
HUGE_BIN = FIRST_BIN + _REGULAR_BINS
N_BINS = HUGE_BIN + 1
ORDINARY = 0  # the event kind of an ordinary day


def factor_bins(needed: np.ndarray) -> np.ndarray:
    """The bin of each needed factor (>= 0; NaN counts as infinitely large). A regular bin holds
    the factors above the previous bin's upper edge up to its own, so a factor that is an edge
    (1, 2, 0.5, ...) is its bin's upper edge, exactly."""
    v = np.asarray(needed, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        position = np.ceil((np.log2(v) - SMALLEST_DOUBLING) * BINS_PER_DOUBLING)
    regular = FIRST_BIN - 1 + np.clip(np.nan_to_num(position), 1, _REGULAR_BINS).astype(np.int64)
    bins = np.where(position < 1, TINY_BIN, regular)
    bins = np.where(~(position <= _REGULAR_BINS), HUGE_BIN, bins)  # NaN too
    return np.where(v == 0, ZERO_BIN, bins)


def bin_upper_edge(bin_: int) -> float:
    """The largest factor a bin holds (HUGE_BIN: infinity)."""
    if bin_ == ZERO_BIN:
        return 0.0
    if bin_ == HUGE_BIN:
        return math.inf
    return 2.0 ** (SMALLEST_DOUBLING + (bin_ - FIRST_BIN + 1) / BINS_PER_DOUBLING)


@dataclass
class CalibrationCounts:
    """What the interval calibration needs of the backtest points, in a size that does not grow
    with them: per horizon step of ordinary days and per event kind, the count of needed factors
    in each bin and the largest finite one; per event kind and calendar day, the same counts
    (event days are few: a backtest's windows hold some tens of them), so an event class's
    factor can be measured on each of its occurrences alone.

    Built from any split of the points (`add`, `merge`), it gives the same `calibration`: the
    factor of a class is the upper edge of the bin that holds its split-conformal quantile, at
    most 0.07% above the exact quantile of the points.
    """

    level: float | None = None
    horizon: int = 0
    counts: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # (kind, step)
    largest: dict[tuple[int, int], float] = field(default_factory=dict)
    days: dict[int, set[int]] = field(default_factory=dict)  # event kind: its days
    day_counts: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # (kind, day)

    def add(
        self,
        steps: np.ndarray,
        kinds: np.ndarray,
        days: np.ndarray,
        needed: np.ndarray,
        level: float,
    ) -> None:
        """Count points: their horizon steps (1-based), event kinds (0: an ordinary day), calendar
        days (any id equal for the same date across series) and needed factors."""
        steps, kinds, days, needed = (np.asarray(a).ravel() for a in (steps, kinds, days, needed))
        if not steps.size:
            return
        if self.level is not None and level != self.level:
            raise ValueError(f"points at interval level {level} added to counts at {self.level}")
        self.level = float(level)
        self.horizon = max(self.horizon, int(steps.max()))
        # Event days are one class per kind whatever their step; ordinary days one per step.
        step_of_class = np.where(kinds == ORDINARY, steps, 0).astype(np.int64)
        classes, inverse = np.unique(
            kinds.astype(np.int64) * (self.horizon + 1) + step_of_class, return_inverse=True
        )
        inverse = inverse.ravel()
        table = np.bincount(
            inverse * N_BINS + factor_bins(needed), minlength=classes.size * N_BINS
        ).reshape(classes.size, N_BINS)
        largest = np.full(classes.size, -np.inf)
        np.maximum.at(largest, inverse, np.where(np.isfinite(needed), needed, -np.inf))
        self._add_event_days(kinds, days, needed)
        for i, code in enumerate(classes.tolist()):
            key = divmod(code, self.horizon + 1)  # (kind, step)
            self.counts[key] = (
                self.counts[key] + table[i] if key in self.counts else table[i].copy()
            )
            self.largest[key] = max(self.largest.get(key, -np.inf), float(largest[i]))

    def merge(self, other: CalibrationCounts) -> None:
        if other.level is None:
            return
        if self.level is not None and other.level != self.level:
            raise ValueError(f"counts at interval level {other.level} merged into {self.level}")
        self.level = other.level
        self.horizon = max(self.horizon, other.horizon)
        for key, counts in other.counts.items():
            self.counts[key] = self.counts[key] + counts if key in self.counts else counts.copy()
            self.largest[key] = max(self.largest.get(key, -np.inf), other.largest[key])
        for kind, days in other.days.items():
            self.days.setdefault(kind, set()).update(days)
        for key, counts in other.day_counts.items():
            self._add_day_counts(key, counts)

    def _add_event_days(self, kinds: np.ndarray, days: np.ndarray, needed: np.ndarray) -> None:
        """Count the event points by kind and calendar day."""
        event = kinds != ORDINARY
        if not event.any():
            return
        keys, inverse = np.unique(
            np.stack([kinds[event], days[event]], axis=1).astype(np.int64),
            axis=0,
            return_inverse=True,
        )
        inverse = inverse.ravel()
        table = np.bincount(
            inverse * N_BINS + factor_bins(needed[event]), minlength=len(keys) * N_BINS
        ).reshape(len(keys), N_BINS)
        for i, (kind, day) in enumerate(keys.tolist()):
            self.days.setdefault(int(kind), set()).add(int(day))
            self._add_day_counts((int(kind), int(day)), table[i])

    def _add_day_counts(self, key: tuple[int, int], counts: np.ndarray) -> None:
        if key in self.day_counts:
            self.day_counts[key] = self.day_counts[key] + counts
        else:
            self.day_counts[key] = counts.copy()

    def calibration(self) -> IntervalCalibration:
        """Factors per step of ordinary days, for all event days and per kind of event day."""
        if self.level is None:
            return IntervalCalibration()
        kinds = sorted({kind for kind, _ in self.counts if kind != ORDINARY})
        step_factors = tuple(self._step_factor(step) for step in range(1, self.horizon + 1))
        event_factor = self._event_factor(kinds)
        if event_factor is None:
            return IntervalCalibration(step_factors)
        ordinary = self._factor([(ORDINARY, s) for s in range(1, self.horizon + 1)]) or 1.0
        noise = self._occurrence_variance(kinds)
        event_weight = occurrence_weight(
            event_factor, ordinary, self._variance_of_class(noise, kinds)
        )
        events = event_factor**event_weight * ordinary ** (1.0 - event_weight)
        kind_factors, kind_weights = {}, {}
        for kind in kinds:
            factor = self._event_factor([kind])
            if factor is not None:
                kind_factors[kind] = factor
                variance = self._variance_of_class(noise, [kind])
                kind_weights[kind] = occurrence_weight(factor, events, variance)
        return IntervalCalibration(
            step_factors, event_factor, kind_factors, event_weight, kind_weights
        )

    def _step_factor(self, step: int) -> float:
        """An ordinary day's factor, from the points of the steps up to the reach either side;
        1.0 (the intervals as they are) with too few points."""
        reach = range(step - CALIBRATION_STEP_REACH, step + CALIBRATION_STEP_REACH + 1)
        factor = self._factor([(ORDINARY, s) for s in reach])
        return 1.0 if factor is None else factor

    def _event_factor(self, kinds: list[int]) -> float | None:
        """The factor of event days of `kinds`; None when they have too few days or points."""
        days = set().union(*(self.days.get(kind, set()) for kind in kinds))
        if len(days) < MIN_EVENT_DAYS:
            return None
        return self._factor([(kind, 0) for kind in kinds])

    def _occurrence_logs(self, kind: int) -> np.ndarray:
        """The log factor of each occurrence of `kind`, from its own points (an occurrence with
        too few points is left out)."""
        logs = []
        for run in occurrences(self.days.get(kind, set())):
            counts = np.sum([self.day_counts[(kind, day)] for day in run], axis=0)
            factor = self._factor([(kind, 0)], counts)
            if factor is not None and factor > 0:
                logs.append(math.log(factor))
        return np.array(logs)

    def _occurrence_variance(self, kinds: list[int]) -> float | None:
        """The variance of one occurrence's log factor about its kind's: pooled over the kinds
        seen more than once (a kind seen once still has this noise); with none, about the mean
        of all occurrences; None with fewer than two occurrences."""
        logs = [self._occurrence_logs(kind) for kind in kinds]
        repeated = [kind_logs for kind_logs in logs if len(kind_logs) >= 2]
        if repeated:
            squares = sum(float(np.sum((v - v.mean()) ** 2)) for v in repeated)
            return squares / sum(len(v) - 1 for v in repeated)
        every = np.concatenate(logs) if logs else np.zeros(0)
        return float(np.var(every, ddof=1)) if len(every) >= 2 else None

    def _variance_of_class(self, noise: float | None, kinds: list[int]) -> float | None:
        """The variance of the log factor of event days of `kinds`: one occurrence's over the
        number of their occurrences."""
        if noise is None:
            return None
        days = set().union(*(self.days.get(kind, set()) for kind in kinds))
        return noise / max(len(occurrences(days)), 1)

    def _factor(
        self, keys: list[tuple[int, int]], counts: np.ndarray | None = None
    ) -> float | None:
        """The split-conformal quantile of the classes' points (or of `counts`, some of them),
        rounded up to its bin's upper edge; None with fewer than MIN_CALIBRATION_POINTS
        points."""
        present = [key for key in keys if key in self.counts]
        if not present:
            return None
        if counts is None:
            counts = np.sum([self.counts[key] for key in present], axis=0)
        n = int(counts.sum())
        if n < MIN_CALIBRATION_POINTS:
            return None
        q = min(1.0, math.ceil((n + 1) * self.level) / n)
        rank = math.ceil(q * (n - 1))  # numpy's "higher" quantile: the (rank+1)-th smallest
        factor = bin_upper_edge(int(np.searchsorted(np.cumsum(counts), rank, side="right")))
        if math.isfinite(factor):
            return factor
        # Most points could not be covered by any factor: the widest finite one, at least 1.
        return max(1.0, max(self.largest[key] for key in present))


def calibrate_intervals(
    steps: np.ndarray,
    kinds: np.ndarray,
    days: np.ndarray,
    needed: np.ndarray,
    level: float,
    horizon: int,
) -> IntervalCalibration:
    """Factors per step of ordinary days, for all event days, per kind of event day.

    Each point is one backtest day of one series: its horizon step, its event kind (0: an
    ordinary day), its calendar day (any id that is equal for the same date across series) and
    the factor its interval needed (`needed_factors`). `horizon` is the number of step factors.
    """
    counts = CalibrationCounts(horizon=horizon)
    counts.add(steps, kinds, days, needed, level)
    counts.horizon = horizon
    return counts.calibration()
