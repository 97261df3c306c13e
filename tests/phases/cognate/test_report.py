"""report.md: numbers as a person writes them; windows where nothing halted are gaps, not zeros."""

import math
import re
from types import SimpleNamespace

from agent_forge.phases.cognate.report import at_halt, last_at_halt, plot_history, write_report


def _row(t, sup, exact=0.5, loss=1.0):
    return {"elapsed_s": t, "loss": loss, "mean_sup_steps": sup, "train_exact_at_halt": exact}


def test_a_window_where_nothing_halted_is_missing_not_zero():
    history = [_row(1, 3.0), _row(2, 0.0, exact=0.0), _row(3, 2.5)]
    assert at_halt(history[1], "mean_sup_steps") is None and at_halt(history[1], "train_exact_at_halt") is None
    assert at_halt(history[1], "loss") == 1.0
    assert last_at_halt(history) == 2.5 and last_at_halt(history[:2]) == 3.0 and last_at_halt([_row(1, 0.0)]) is None


def test_the_plot_leaves_a_gap_where_nothing_halted(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    plot_history(tmp_path / "t.png", [[_row(60, 3.0), _row(120, 0.0, exact=0.0), _row(180, 2.0)]], ["m"])
    _, exact_ax, steps_ax = figures[0].axes
    steps = list(steps_ax.lines[0].get_ydata())
    assert steps[0] == 3.0 and math.isnan(steps[1]) and steps[2] == 2.0
    assert math.isnan(list(exact_ax.lines[0].get_ydata())[1])
    assert (tmp_path / "t.png").exists()


def test_report_table_writes_plain_numbers(tmp_path):
    metrics = {"raw/exact_accuracy": 0.91234, "ema/exact_accuracy": 0.5, "raw/token_accuracy": 0.987,
               "ema/token_accuracy": float("nan"), "mean_sup_steps": 2.5, "early_stop_rate": 0.0,
               "steps": 1200.0, "train_seconds": 200.2, "parameters": 134337.0}
    per_model = [{"index": 0, "seed": 0, "status": "completed", "stop_reason": "max_steps", "chosen_weights": "raw",
                  "metrics": metrics, "history": [_row(1, 2.5)]}]
    text = write_report(tmp_path, SimpleNamespace(architecture="trm", task_name="sudoku4"), per_model, "trm_tiny").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| 0 |"))
    for shown in ("134,337", "0.912", "0.500", "0.987", "2.5", "1,200", "3 min 20 s", "n/a"):
        assert f" {shown} |" in row, (shown, row)
    assert not re.search(r"\bnan\b", text, re.IGNORECASE) and "e+0" not in text


def test_report_of_a_tiny_run(tmp_path, host, tiny):
    from agent_forge import run_phase

    result = run_phase("cognate", host=host, variant="trm_tiny", overrides=tiny, max_steps=6, progress=False,
                       out=str(tmp_path / "run"))
    text = (tmp_path / "run" / "report.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| 0 |"))
    params = int(result.metrics["parameters"])
    assert f" {params:,} |" in row and "e+0" not in text and not re.search(r"\bnan\b", text, re.IGNORECASE)
    accuracy = format(result.metrics["raw/exact_accuracy"], ".3f")
    assert f" {accuracy} |" in row
    assert re.search(r"\| [\d.]+ s \|", row)  # train_seconds, rounded, with its unit
