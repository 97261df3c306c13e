"""``forge runs`` and ``forge runs compare`` on real (tiny) runs, and the run reader behind them."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from forge_testing import TINY


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two tiny Cognate runs under one folder (with checkpoints); ``b`` differs only in trainer.lr."""
    from agent_forge import run_phase

    root = tmp_path_factory.mktemp("runs")
    run_phase("cognate", variant="trm_tiny", max_steps=4, overrides=TINY, checkpoint_every=4, out=root / "a",
              progress=False)
    run_phase("cognate", variant="trm_tiny", max_steps=4, overrides=TINY + ["trainer.lr=0.002"],
              checkpoint_every=4, out=root / "b", progress=False)
    return root


@pytest.fixture(scope="module")
def app():
    from agent_forge.cli import build_app
    from agent_forge.plugin_host import load_plugins

    return build_app(load_plugins(entry_points=False))


def invoke(app, *args, columns=80):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_forge_runs_lists_both_runs_as_json_and_as_a_table(app, two_runs):
    rows = json.loads(invoke(app, "runs", str(two_runs), "--json"))
    assert [r["id"] for r in rows] == ["a", "b"]  # sorted by start (a was made first)
    for r in rows:
        assert (r["phase"], r["variant"], r["task"], r["status"], r["steps"]) == (
            "cognate", "trm_tiny", "sudoku4", "completed", 4)
        assert 0.0 <= r["exact_accuracy"] <= 1.0 and r["train_seconds"] > 0 and r["started"]
    table = invoke(app, "runs", str(two_runs))
    lines = table.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert any(line.startswith("a ") and "completed" in line for line in lines)
    wide = invoke(app, "runs", "list", str(two_runs), columns=200)
    assert "trm_tiny" in wide and "sudoku4" in wide and "train time" in wide


def test_forge_runs_compare_shows_the_one_config_difference_and_writes_a_png(app, two_runs, tmp_path):
    plot = tmp_path / "cmp.png"
    data = json.loads(invoke(app, "runs", "compare", str(two_runs / "a"), str(two_runs / "b"),
                             "--plot", str(plot), "--json"))
    diff = {d["key"]: d["values"] for d in data["config_diff"]}
    assert diff == {"trainer.lr": [0.003, 0.002]}
    metrics = {m["key"]: m["values"] for m in data["metrics"]}
    assert metrics["status"] == ["completed", "completed"] and metrics["steps"] == [4.0, 4.0]
    assert "exact_accuracy" in metrics and "final_loss" in metrics
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and data["plot"] == str(plot)

    text = invoke(app, "runs", "compare", str(two_runs / "a"), str(two_runs / "b"), "--plot", str(plot))
    diff_lines = [line for line in text.splitlines() if line.startswith("trainer.")]
    assert len(diff_lines) == 1 and diff_lines[0].split() == ["trainer.lr", "0.003", "0.002"]
    assert f"plot: {plot}" in text and all(len(line) <= 80 for line in text.splitlines())


def test_compare_writes_its_default_plot_in_the_current_folder(app, two_runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = invoke(app, "runs", "compare", str(two_runs / "a"), str(two_runs / "b"))
    assert "plot: runs-compare.png" in text and (tmp_path / "runs-compare.png").stat().st_size > 0


def test_unfinished_unreadable_and_stray_folders(app, two_runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(two_runs / "a", root / "20250101-000000-cognate-trm_tiny-beef")
    shutil.copytree(two_runs / "b", root / "resumable")
    (root / "resumable" / "result.json").unlink()
    shutil.copytree(two_runs / "a", root / "fresh")
    (root / "fresh" / "result.json").unlink()
    shutil.rmtree(root / "fresh" / "checkpoints")
    shutil.copytree(two_runs / "a", root / "broken")
    (root / "broken" / "result.json").write_text('{"status": ')
    (root / "not-a-run").mkdir()
    (root / "notes.txt").write_text("hello")
    (root / "20250102-000000-pipeline-trm_tiny-cafe").mkdir()
    shutil.copytree(two_runs / "a", root / "20250102-000000-pipeline-trm_tiny-cafe" / "cognate")

    rows = {r["id"]: r for r in json.loads(invoke(app, "runs", str(root), "--json"))}
    assert set(rows) == {"20250101-000000-cognate-trm_tiny-beef", "resumable", "fresh", "broken",
                         "20250102-000000-pipeline-trm_tiny-cafe/cognate"}
    assert rows["resumable"]["status"] == "unfinished-resumable"
    assert rows["resumable"]["exact_accuracy"] is None and rows["resumable"]["steps"] == 4  # from metrics.jsonl
    assert rows["fresh"]["status"] == "unfinished"
    assert rows["broken"]["status"].startswith("unreadable: result.json")
    stamped = rows["20250101-000000-cognate-trm_tiny-beef"]
    assert stamped["started"].startswith("2025-01-01T00:00:00") and stamped["started_from"] == "run id"
    assert rows["20250102-000000-pipeline-trm_tiny-cafe/cognate"]["started_from"] == "run id"
    assert list(rows)[:2] == ["20250101-000000-cognate-trm_tiny-beef",
                              "20250102-000000-pipeline-trm_tiny-cafe/cognate"]  # oldest first
    table = invoke(app, "runs", str(root))
    assert "unreadable" in table and all(len(line) <= 80 for line in table.splitlines())


def test_compare_refuses_a_folder_that_is_not_a_run(two_runs, tmp_path):
    from agent_forge.errors import ForgeError
    from agent_forge.phases.common.runs import open_runs

    with pytest.raises(ForgeError, match="not a run folder"):
        open_runs([two_runs / "a", tmp_path])


def test_numbers_are_rounded_for_people():
    from agent_forge.phases.common.runs import format_value

    assert format_value("exact_accuracy", 0.91234) == "0.912"
    assert format_value("steps", 1617.0) == "1,617"
    assert format_value("train_seconds", 510.0) == "8 min 30 s"  # agent_forge.formatting.format_duration
    assert format_value("train_seconds", 42.3) == "42 s"
    assert format_value("train_seconds", 7200) == "2 h 00 min"
    assert format_value("final_loss", 0.123456) == "0.123"
    assert format_value("examples_per_s", 1234.5) == "1,234"
    assert format_value("task.blanks", [6, 8]) == "[6, 8]"
    assert format_value("x", None) == "-"


def test_config_diff_reports_absent_keys_and_nested_values():
    from pathlib import Path

    from agent_forge.phases.common.runs import RunInfo, config_diff

    a = RunInfo(id="a", path=Path("a"), status="completed", config={"t": {"lr": 1, "b": [1, 2]}, "s": 0})
    b = RunInfo(id="b", path=Path("b"), status="completed", config={"t": {"lr": 1, "b": [1, 3]}, "x": 1, "s": 0})
    assert config_diff([a, b]) == [("t.b", [[1, 2], [1, 3]]), ("x", ["-", 1])]
