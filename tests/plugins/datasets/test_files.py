"""forge data generate / forge data stats, through the CLI app."""

import json

from typer.testing import CliRunner


def _app(host):
    from agent_forge.cli import build_app

    return build_app(host)


def test_generate_prints_stats_and_stats_reads_any_file(tmp_path, host):
    runner = CliRunner()
    app = _app(host)
    out = tmp_path / "hard.csv"
    gen = runner.invoke(app, ["data", "generate", "sudoku9_hard", "--count", "2", "--out", str(out)])
    assert gen.exit_code == 0, gen.output
    printed = json.loads(gen.stdout)
    assert printed["count"] == 2 and printed["stats"]["needs_search"] == 1.0
    stats = runner.invoke(app, ["data", "stats", str(out)])
    assert stats.exit_code == 0, stats.output
    again = json.loads(stats.stdout)
    assert {k: v for k, v in again.items() if k != "stats_seconds"} == {
        k: v for k, v in printed["stats"].items() if k != "stats_seconds"}
    assert json.loads(runner.invoke(app, ["data", "stats", str(out), "--rows", "1"]).stdout)["puzzles"] == 1
    bad = runner.invoke(app, ["data", "stats", str(out), "--task", "text"])
    assert bad.exit_code != 0
