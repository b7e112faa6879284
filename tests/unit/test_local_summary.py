"""The local run's closing summary: the gate's figures and its per-series check are printed, so a
broken large series is seen even when the average passes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from local_run.runner import RunOutcome
from local_run.summary import render, rounded_figures
from pipeline_code.steps.evaluate import gate

DAY = dt.date(2026, 11, 28)


def _write_evaluation(lake: Path, execution_id: str, evaluation: dict[str, object]) -> None:
    folder = lake / "runs" / execution_id / "evaluation"
    folder.mkdir(parents=True)
    (folder / "evaluation.json").write_text(json.dumps(evaluation))


def test_the_summary_names_the_worst_of_the_largest_series(tmp_path: Path) -> None:
    overall = {"mase": 0.7, "relative_mase": 0.72, "coverage": 0.8, "n_series": 27}
    largest = [
        {"series_id": "Ridge Wagon", "relative_mase": 0.81},
        {"series_id": "Aero Hatch", "relative_mase": 1.14},
    ]
    verdict = gate(overall, 1.5, 1.0, 0.0, max_series_relative_mase=1.25, largest=largest)
    _write_evaluation(tmp_path, "exec-1", {"overall": overall, "gate": verdict})
    text = render(tmp_path, DAY, RunOutcome(execution_id="exec-1", parameters={}), None)
    assert "gate passed: mase 0.700, relative_mase 0.720" in text
    assert "2 largest series each at most relative MASE 1.250: worst Aero Hatch at 1.140" in text


def test_a_broken_large_series_fails_the_gate_and_is_named(tmp_path: Path) -> None:
    overall = {"mase": 0.7, "relative_mase": 0.72, "coverage": 0.8, "n_series": 27}
    largest = [{"series_id": "Aero Hatch", "relative_mase": 3.0}]
    verdict = gate(overall, 1.5, 1.0, 0.0, max_series_relative_mase=1.25, largest=largest)
    _write_evaluation(tmp_path, "exec-1", {"overall": overall, "gate": verdict})
    text = render(tmp_path, DAY, RunOutcome(execution_id="exec-1", parameters={}), None)
    assert "gate failed" in text
    assert "series Aero Hatch (among the largest) has relative MASE 3.0000" in text


def test_gate_figures_are_rounded_for_people_and_thresholds_kept() -> None:
    message = "MASE 0.7494612053441166 above 0.7 (max 0.0001); coverage 0.80000000001 in run v1.2"
    assert (
        rounded_figures(message) == "MASE 0.7495 above 0.7 (max 0.0001); coverage 0.8 in run v1.2"
    )
