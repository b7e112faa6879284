"""The local stand-in for the dashboard: one self-contained HTML page per execution date.

`<lake>/reports/<execution-date>.html` says what was forecast, for which days, from which data and
when; shows the total across series (the published `__total__` rows, with the interval fitted on
the total's own backtest) and every series in one table, sortable in the browser (last week's
actuals, the next 7 and 28 days with their range, the model, its backtest MASE beside seasonal
naive's, flags); charts with the calendar's event days shaded and named; what changed since the
previous publication; and the data-quality findings in words. Inline CSS, SVG and a few lines of
JavaScript: it opens without a network or a server.

It reads what the run published (the date's partitions) and the run folder's files (the step
contract's paths), so it shows exactly what the run published. At many series, charts are drawn
for the total and the `CHART_LIMIT` largest series only; the table always has every series.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from pathlib import Path
from typing import Any

import pandas as pd

from local_run.report_data import (
    TOTAL,
    ReportData,
    changes,
    event_spans,
    read_report_data,
    realized_by_week,
    series_table,
)
from local_run.report_svg import EventSpan, Line, chart

SUBJECT = "Daily applications per car model"
DASH = "&ndash;"  # no value; also between a range's bounds
HISTORY_DAYS_SHOWN = 180
CHART_LIMIT = 40
"""Series charts drawn at most (the largest by the last 28 days' actuals); the table has all."""
CHANGES_SHOWN = 15
TOTAL_LABEL = "Total (all series)"


# --- figures for people -----------------------------------------------------------------------


def number(value: Any) -> str:
    """A count as people read it: thousands separated, a decimal only below 10."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    value = float(value)
    return f"{value:,.0f}" if abs(value) >= 9.95 or value == 0 else f"{value:,.1f}"


def ratio(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    return f"{float(value):.2f}"


def signed(value: float) -> str:
    if not math.isfinite(value):
        return "new"
    return ("+" if value > 0 else "") + number(value)


def percent(part: float, whole: float) -> str:
    if not whole or not math.isfinite(part) or not math.isfinite(whole):
        return ""
    return f"{part / whole:+.0%}"


def _range(row: dict[str, Any], name: str) -> str:
    if not math.isfinite(row.get(name, math.nan)):
        return DASH
    bounds = f"{number(row[f'{name}_lower'])}{DASH}{number(row[f'{name}_upper'])}"
    return f"{number(row[name])} <small>({bounds})</small>"


# --- sections ---------------------------------------------------------------------------------


def title(data: ReportData) -> str:
    days = data.horizon_days
    first, last = (pd.Timestamp(d).date().isoformat() for d in (days[0], days[-1]))
    last_data = data.history["ds"].max().date().isoformat()
    made = data.made_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"{SUBJECT}: forecast for {first} .. {last}, from data up to {last_data}, made {made}"


def lines(data: ReportData, series_ids: list[str], first_day: pd.Timestamp) -> dict[str, Line]:
    """The charts' data of `series_ids`: history from `first_day` and the forecast. The tables
    are cut down to those series once, so drawing N charts does not scan them N times."""
    past = data.history[
        data.history["series_id"].isin(series_ids) & (data.history["ds"] >= first_day)
    ].sort_values(["series_id", "ds"], kind="stable")
    future = data.forecasts[data.forecasts["series_id"].isin(series_ids)].sort_values(
        ["series_id", "target_date"], kind="stable"
    )
    pasts = dict(tuple(past.groupby("series_id", sort=False)))
    futures = dict(tuple(future.groupby("series_id", sort=False)))
    empty_past, empty_future = past.iloc[0:0], future.iloc[0:0]
    found = {}
    for sid in series_ids:
        p, f = pasts.get(sid, empty_past), futures.get(sid, empty_future)
        found[sid] = Line(
            p["ds"].to_numpy(dtype="datetime64[D]"),
            p["y"].to_numpy(dtype=float),
            f["target_date"].to_numpy(dtype="datetime64[D]"),
            f["yhat"].to_numpy(dtype=float),
            f["yhat_lower"].to_numpy(dtype=float),
            f["yhat_upper"].to_numpy(dtype=float),
        )
    return found


def _headline(data: ReportData, table: pd.DataFrame) -> str:
    total = table.set_index("series_id").loc[TOTAL]
    week, month = int(total["week_days"]), int(total["month_days"])
    level = data.evaluation.get("overall", {}).get("interval_level", 0.8)
    return (
        f"<p class='lead'>All series together: <b>{number(total['next7'])}</b> applications "
        f"forecast for the next {week} days (last week: {number(total['last_week'])}, "
        f"{percent(total['next7'] - total['last_week'], total['last_week'])}), "
        f"<b>{number(total['next28'])}</b> for the next {month} days. Daily intervals are "
        f"{level:.0%} prediction intervals; the ranges of 7- and 28-day sums add the daily "
        "bounds, so they are wider than an interval of the sum.</p>"
    )


def _gate(data: ReportData) -> str:
    overall = data.evaluation.get("overall", {})
    gate = data.evaluation.get("gate", {})
    total = data.evaluation.get("total", {})
    if not overall:
        return "<p>No backtest scores in the run folder.</p>"
    verdict = "passed" if gate.get("passed") else "failed"
    items = [
        f"Quality gate <b>{verdict}</b>. Over the backtest ({html.escape(_folds(data))}), the "
        f"chosen models' mean MASE is <b>{ratio(overall.get('mase'))}</b> against seasonal "
        f"naive's {ratio(overall.get('snaive_mase'))} (lower is better; "
        f"{1 - overall.get('relative_mase', 1):.0%} less error), and "
        f"{overall.get('coverage', 0):.0%} of actuals fell inside their "
        f"{overall.get('interval_level', 0.8):.0%} intervals.",
    ]
    if total:
        items.append(
            f"The total across series: MASE {ratio(total.get('mase'))} against seasonal naive's "
            f"{ratio(total.get('snaive_mase'))}; its interval, fitted on its own "
            f"{total.get('n_points', 0)} backtest days, held {total.get('coverage', 0):.0%} of "
            "them."
        )
    largest = gate.get("largest_series") or []
    if largest:
        worst = max(largest, key=lambda row: row["relative_mase"])
        items.append(
            f"Each of the {len(largest)} largest series is checked on its own: the worst, "
            f"{html.escape(worst['series_id'])}, has {ratio(worst['relative_mase'])} of seasonal "
            f"naive's error (the limit is {ratio(gate.get('max_series_relative_mase'))})."
        )
    return "".join(f"<p>{item}</p>" for item in items)


def _realized(data: ReportData) -> str:
    """Earlier forecasts scored against what happened: the window's figures, its warnings, and
    each series' realized MASE by week beside the MASE its backtest promised."""
    summary = data.accuracy
    history = realized_by_week(data)
    if not summary or history.empty:
        return (
            "<p>No earlier forecast has been scored yet: each run scores the publications before "
            "it on the days it is the first to observe.</p>"
        )
    items = []
    for key, who in (("total", "The total across series"), ("overall", "All series pooled")):
        figures = summary.get(key)
        if figures and figures.get("points"):
            items.append(
                f"{who}: realized MASE <b>{ratio(figures.get('realized_mase'))}</b> over the last "
                f"{figures['points']} scored points, against the backtest's "
                f"{ratio(figures.get('promised_mase'))}; {_share(figures.get('coverage'))} of "
                f"actuals inside the {_share(figures.get('nominal'))} intervals; bias "
                f"{_share(figures.get('bias'), signed=True)}."
            )
    warnings = summary.get("warnings", [])
    notes = "".join(f"<li>{html.escape(line)}</li>" for line in warnings) or (
        "<li>Every series held the backtest's promise over the window.</li>"
    )
    weeks = sorted((c for c in history.columns if c.startswith("week_")), key=_week_number)
    head = "".join(
        f"<th title='click to sort'>{name}</th>"
        for name in ("series", *(_week_label(w) for w in reversed(weeks)), "backtest MASE")
    )
    body = []
    order = [TOTAL, *sorted(s for s in history.index if s != TOTAL)]
    for series_id in [s for s in order if s in history.index]:
        row = history.loc[series_id]
        cells = "".join(_cell(ratio(row[w]), row[w]) for w in reversed(weeks))
        body.append(
            "<tr>"
            + _cell(html.escape(_label(series_id)), series_id, False)
            + cells
            + _cell(ratio(row["promised"]), row["promised"])
            + "</tr>"
        )
    return (
        "".join(f"<p>{item}</p>" for item in items)
        + f"<ul>{notes}</ul>"
        + "<p><small>Realized MASE per target week (the mean absolute error of every earlier "
        "forecast of the week's days, scaled as the backtest scales it), newest week last, beside "
        "the backtest MASE those forecasts were published with.</small></p>"
        + f"<table class='sortable'><thead><tr>{head}</tr></thead><tbody class='rows'>"
        + "".join(body)
        + "</tbody></table>"
    )


def _effects(data: ReportData) -> str:
    """Why a holiday's forecast is what it is: each series' effect per event, pooled over all
    series or its own, and the day a working-day holiday is measured against."""
    effects = data.effects
    if effects is None or effects.empty:
        return "<p>The forecast used no calendar events.</p>"
    head = "".join(
        f"<th title='click to sort'>{name}</th>"
        for name in ("series", "event", "effect", "pooled", "own", "used", "holiday against")
    )
    rows = "".join(
        "<tr>"
        + _cell(html.escape(str(row.series_id)), row.series_id, False)
        + _cell(html.escape(str(row.event)), row.event, False)
        + _cell(ratio(row.effect), row.effect)
        + _cell(ratio(row.pooled), row.pooled)
        + _cell(ratio(row.own) if row.own is not None else DASH, row.own)
        + _cell(html.escape(str(row.source)), row.source, False)
        + _cell(html.escape(str(row.reference)), row.reference, False)
        + "</tr>"
        for row in effects.itertuples(index=False)
    )
    return (
        "<details><summary>Each series' effect of every calendar event (demand on the day over "
        "its reference day's), pooled over all series or its own where its own days outweigh "
        f"the pool: {len(effects):,} rows</summary>"
        f"<table class='sortable'><thead><tr>{head}</tr></thead><tbody class='rows'>{rows}"
        "</tbody></table></details>"
    )


def _share(value: Any, signed: bool = False) -> str:
    if value is None or not math.isfinite(float(value)):
        return DASH
    return f"{float(value):+.0%}" if signed else f"{float(value):.0%}"


def _week_number(column: str) -> int:
    return int(column.split("_", 1)[1])


def _week_label(column: str) -> str:
    weeks = _week_number(column)
    return "last 7 days" if weeks == 0 else f"{weeks} week{'s' if weeks > 1 else ''} before"


def _folds(data: ReportData) -> str:
    folds = data.evaluation.get("backtest", {}).get("folds", {})
    recent = folds.get("recent", {}).get("folds", 0)
    seasonal = folds.get("seasonal", {}).get("folds", 0)
    text = f"{recent} recent 4-week folds"
    return text + (f" and {seasonal} at the same season a year back" if seasonal else "")


def _events_list(spans: list[EventSpan], first: dt.date) -> str:
    ahead = [span for span in spans if span.last >= first]
    if not ahead:
        return "<p>No calendar event falls in the forecast period.</p>"
    items = "".join(f"<li>{html.escape(span.label)}</li>" for span in ahead)
    return f"<p>Calendar events in the forecast period (shaded in the charts):</p><ul>{items}</ul>"


def quality_notes(data: ReportData) -> list[str]:
    """The data-quality findings in words: series set aside, capped outliers, warnings."""
    notes = []
    set_aside = data.quality.get("set_aside", {})
    for reason, words in (
        ("stopped", "had no applications in the recent weeks and are set aside as stopped"),
        ("too_short", "have too short a history to model and are set aside"),
        ("no_known_value", "have no known value and are set aside"),
    ):
        ids = set_aside.get(reason, [])
        if ids:
            count = f"{len(ids)} series" if len(ids) > 1 else "1 series"
            notes.append(
                f"{count} ({', '.join(ids[:20])}{' and more' if len(ids) > 20 else ''}) {words}: "
                "no forecast is published for them."
            )
    for outlier in data.quality.get("outliers", []):
        notes.append(
            f"{outlier['series_id']} had {number(outlier['value'])} applications on "
            f"{outlier['ds']}, far above its usual {number(outlier['median'])}: the models saw "
            f"it capped to {number(outlier['capped_to'])}; the charts show the real value."
        )
    warnings = list(data.quality.get("warnings", []))
    notes.extend(str(warning) for warning in warnings)
    return notes


def _quality(data: ReportData) -> str:
    notes = quality_notes(data)
    if not notes:
        return "<p>No data-quality finding: every check passed and no series was set aside.</p>"
    return "<ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>"


def _label(series_id: str) -> str:
    return TOTAL_LABEL if series_id == TOTAL else series_id


def _changes(data: ReportData) -> str:
    found = changes(data)
    if found is None:
        return "<p>No earlier publication in the lake to compare with.</p>"
    frame, days = found
    previous_date = data.previous[0].isoformat() if data.previous else ""
    rows = []
    for row in frame.itertuples():
        rows.append(
            f"<tr><td>{html.escape(_label(str(row.series_id)))}</td>"
            f"<td class='n'>{number(row.before)}</td><td class='n'>{number(row.now)}</td>"
            f"<td class='n'>{signed(row.change)}</td>"
            f"<td class='n'>{percent(row.change, row.before)}</td></tr>"
        )
    head = "<tr><th>series</th><th>before</th><th>now</th><th>change</th><th>%</th></tr>"
    shown = "".join(rows[:CHANGES_SHOWN])
    rest = "".join(rows[CHANGES_SHOWN:])
    more = (
        f"<details><summary>{len(rows) - CHANGES_SHOWN} more</summary><table>{head}{rest}"
        "</table></details>"
        if rest
        else ""
    )
    return (
        f"<p>Against the publication of {previous_date}: the forecast total of the {days} days "
        f"both runs forecast, per series, largest change first.</p>"
        f"<table>{head}{shown}</table>{more}"
    )


SORT_SCRIPT = """
document.querySelectorAll('table.sortable thead th').forEach(function (th, i) {
  th.addEventListener('click', function () {
    var body = th.closest('table').querySelector('tbody.rows');
    var up = th.dataset.dir !== 'up';
    th.closest('tr').querySelectorAll('th').forEach(function (o) { delete o.dataset.dir; });
    th.dataset.dir = up ? 'up' : 'down';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[i].dataset.v, y = b.cells[i].dataset.v;
      if (x === '' || y === '') { return (x === '') - (y === ''); }
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return up ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _cell(shown: str, value: Any, numeric: bool = True) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        key = ""
    else:
        key = f"{float(value):.6g}" if numeric else str(value)
    cls = " class='n'" if numeric else ""
    return f"<td{cls} data-v='{html.escape(key, quote=True)}'>{shown}</td>"


def _table_row(row: dict[str, Any]) -> str:
    return (
        "<tr>"
        + _cell(html.escape(_label(str(row["series_id"]))), str(row["series_id"]), False)
        + _cell(number(row["last_week"]), row["last_week"])
        + _cell(_range(row, "next7"), row["next7"])
        + _cell(_range(row, "next28"), row["next28"])
        + _cell(
            html.escape(str(row["model"])) if isinstance(row["model"], str) else DASH,
            row["model"] if isinstance(row["model"], str) else "",
            False,
        )
        + _cell(ratio(row["mase"]), row["mase"])
        + _cell(ratio(row["snaive_mase"]), row["snaive_mase"])
        + _cell(html.escape(row["flags"] or ""), row["flags"] or "", False)
        + "</tr>"
    )


def _series_table(table: pd.DataFrame) -> str:
    week, month = int(table["week_days"].max()), int(table["month_days"].max())
    head = "".join(
        f"<th title='click to sort'>{name}</th>"
        for name in (
            "series",
            "last 7 days",
            f"next {week} days (range)",
            f"next {month} days (range)",
            "model",
            "backtest MASE",
            "seasonal naive MASE",
            "flags",
        )
    )
    total = table[table["series_id"] == TOTAL]
    series = table[table["series_id"] != TOTAL].sort_values(
        ["volume", "series_id"], ascending=[False, True], na_position="last"
    )
    total_rows = "".join(_table_row(row) for row in total.to_dict("records"))
    rows = "".join(_table_row(row) for row in series.to_dict("records"))
    return (
        f"<table class='sortable'><thead><tr>{head}</tr></thead>"
        f"<tbody class='total'>{total_rows}</tbody><tbody class='rows'>{rows}</tbody></table>"
    )


def _charts(data: ReportData, table: pd.DataFrame, spans: list[EventSpan]) -> tuple[str, str]:
    first_day = pd.Timestamp(data.execution_date) - pd.Timedelta(days=HISTORY_DAYS_SHOWN - 1)
    forecast_ids = set(data.forecasts["series_id"])
    ranked = table[(table["series_id"] != TOTAL) & table["series_id"].isin(forecast_ids)]
    ranked = ranked.sort_values(["volume", "series_id"], ascending=[False, True])
    drawn = ranked.head(CHART_LIMIT)
    found = lines(data, [TOTAL, *drawn["series_id"]], first_day)
    total = chart(found[TOTAL], spans, f"{TOTAL_LABEL}, applications per day", 1180, 300)
    models = dict(zip(table["series_id"], table["model"], strict=True))
    small = "".join(
        chart(found[sid], spans, f"{sid} ({models.get(sid, '')})", 580, 190)
        for sid in drawn["series_id"]
    )
    note = (
        f"<p>Charts for the {len(drawn)} largest of {len(ranked)} series (by the last 28 days' "
        "applications); every series is in the table above.</p>"
        if len(ranked) > len(drawn)
        else f"<p>All {len(ranked)} forecast series, largest first.</p>"
    )
    return total, note + f"<div class='grid'>{small}</div>"


STYLE = """
body { font-family: -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 1.5em 2em;
       color: #222; max-width: 1220px; }
h1 { font-size: 1.35em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
.lead { font-size: 1.05em; } small { color: #666; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
td.n { text-align: right; white-space: nowrap; }
table.sortable th { cursor: pointer; background: #f6f6f6; position: sticky; top: 0; }
th[data-dir=up]::after { content: ' \\25B2'; } th[data-dir=down]::after { content: ' \\25BC'; }
tbody.total td { font-weight: bold; background: #f3f7fc; }
.grid svg { margin: 4px 6px 4px 0; }
svg text { font-size: 10px; fill: #444; } svg text.title { font-size: 12px; fill: #222; }
svg text.ev { font-size: 9px; fill: #8a5a00; }
.legend span { display: inline-block; margin-right: 1.2em; }
.key { display: inline-block; width: 1.6em; height: 0.7em; margin-right: 0.3em; }
"""

LEGEND = (
    "<p class='legend'><span><i class='key' style='border-top:1px solid #555'></i>actual</span>"
    "<span><i class='key' style='border-top:2px solid #1f63b4'></i>forecast</span>"
    "<span><i class='key' style='background:#1f63b4;opacity:.18'></i>interval</span>"
    "<span><i class='key' style='background:#f2c46d;opacity:.5'></i>calendar event "
    "(hover for its name and dates)</span></p>"
)


def render(data: ReportData) -> str:
    table = series_table(data)
    first = pd.Timestamp(data.execution_date) - pd.Timedelta(days=HISTORY_DAYS_SHOWN - 1)
    last = pd.Timestamp(data.horizon_days[-1])
    spans = event_spans(data.calendar, first.date(), last.date())
    total_chart, series_charts = _charts(data, table, spans)
    heading = title(data)
    n_series = int((table["series_id"] != TOTAL).sum())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(heading)}</h1>
<p><small>Execution {html.escape(data.execution_id)}; {n_series} series.</small></p>
{_headline(data, table)}
{LEGEND}
{total_chart}
{_events_list(spans, (pd.Timestamp(data.execution_date) + pd.Timedelta(days=1)).date())}
<h2>Forecast quality</h2>
{_gate(data)}
<h2>Earlier forecasts against what happened</h2>
{_realized(data)}
<h2>Data quality</h2>
{_quality(data)}
<h2>What changed since the previous run</h2>
{_changes(data)}
<h2>Every series</h2>
<p><small>Click a column to sort. Ranges add the daily interval bounds. MASE: mean absolute
error scaled by the series' own typical week-on-week change; below seasonal naive's is better.
</small></p>
{_series_table(table)}
<h2>How events enter each forecast</h2>
{_effects(data)}
<h2>Charts</h2>
{series_charts}
<script>{SORT_SCRIPT}</script>
</body></html>
"""


def write_report(lake: Path, run_dir: Path, execution_date: dt.date, execution_id: str) -> Path:
    data = read_report_data(lake, run_dir, execution_date, execution_id)
    page = render(data)
    target = lake / "reports" / f"{execution_date.isoformat()}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target


def series_by_volume(history: pd.DataFrame) -> list[str]:
    """Series ids, largest total volume first (ties by name, so the order is stable)."""
    totals = history.groupby("series_id")["y"].sum().reset_index()
    totals = totals.sort_values(["y", "series_id"], ascending=[False, True])
    return totals["series_id"].astype(str).tolist()
