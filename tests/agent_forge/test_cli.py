"""The forge CLI as a user meets it: results on stdout, one-line errors on stderr, exit codes."""

import json
import os
import subprocess
import sys

import pytest

from forge_testing import TINY
from agent_forge.specs import DatasetSpec


def forge(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "agent_forge", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_typo_fails_before_training_without_traceback(tmp_path):
    proc = forge("run", "phase", "cognate", "--variant", "trm_small", "--set", "trainer.ema_decya=0.9",
                 "--out", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2
    assert "ema_decya" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()  # nothing was started
    debug = forge("--debug", "run", "phase", "cognate", "--variant", "trm_small", "--set", "trainer.ema_decya=0.9",
                  check=False)
    assert "Traceback" in debug.stderr


def test_unknown_variant_lists_the_known_ones():
    proc = forge("run", "phase", "cognate", "--variant", "trm_smal", check=False)
    assert proc.returncode == 2 and "Did you mean 'trm_small'" in proc.stderr


def test_variants_json_counts_parameters_and_depth():
    rows = {r["name"]: r for r in json.loads(forge("variants", "--json").stdout)}
    # The official counts (5,028,866 and 6,828,034) minus 1,025: the terms that differ are derived
    # in tests/models/test_trm.py (vocab 10 not 11, a one-output Q-head, the puzzle table a parameter).
    assert rows["trm_paper"]["parameters"] == 5_028_866 - 1_025
    assert rows["trm_paper_attention"]["parameters"] == 6_828_034 - 1_025
    small = rows["trm_small"]
    assert small["effective_depth"] == small["layers"] * (small["n"] + 1) * small["T"] * small["n_sup"]
    assert rows["baseline"]["n_sup"] == 1


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    sets = [a for o in TINY for a in ("--set", o)]
    proc = forge("--json-logs", "run", "phase", "cognate", "--variant", "trm_tiny", "--max-steps", "6",
                 "--no-progress", "--json", "--out", str(out), *sets)
    return out, json.loads(proc.stdout), proc.stderr


def test_run_prints_phase_result_and_writes_the_run_directory(finished_run):
    out, result, stderr = finished_run
    assert result["status"] == "completed" and result["phase"] == "cognate"
    for name in ("config.json", "metrics.jsonl", "result.json", "report.md", "training.png"):
        assert (out / name).exists(), name
    for line in stderr.strip().splitlines():  # logs are JSON lines on stderr when not a TTY
        json.loads(line)
    metrics = result["metrics"]
    for key in ("raw/exact_accuracy", "ema/exact_accuracy", "mean_sup_steps", "early_stop_rate"):
        assert key in metrics


def test_inspect_verifies_and_refuses_tampering(finished_run, tmp_path):
    out, result, _ = finished_run
    manifest = result["artifacts"][0]["manifest_path"]
    info = json.loads(forge("inspect", manifest, "--json").stdout)
    assert info["verified"] is True and info["sha256"] == result["artifacts"][0]["artifact"]["sha256"]
    # Tamper with a copy.
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(out / "artifacts", copy)
    weights = copy / "model-0.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    proc = forge("inspect", str(copy / "model-0.json"), check=False)
    assert proc.returncode == 2 and "sha256" in proc.stderr and "Refusing" in proc.stderr


def test_data_generate_and_eval_on_the_file(finished_run, tmp_path):
    _, result, _ = finished_run
    csv = tmp_path / "puzzles.csv"
    gen = json.loads(forge("data", "generate", "sudoku4", "--count", "20", "--set", "blanks=6",
                           "--out", str(csv)).stdout)
    assert gen["count"] == 20 and csv.read_text().startswith("question,answer\n")
    assert len(csv.read_text().splitlines()) == 21
    metrics = json.loads(forge("eval", result["artifacts"][0]["manifest_path"], "--data", str(csv), "--json").stdout)
    assert metrics["examples"] == 20
    assert 0.0 <= metrics["exact_accuracy"] <= 1.0 and "token_accuracy" in metrics


def test_eval_reports_malformed_csv_with_row_number(finished_run, tmp_path):
    _, result, _ = finished_run
    csv = tmp_path / "bad.csv"
    csv.write_text("question,answer\n" + "." * 16 + "," + "1234341221434321\n" + "12x4" + "." * 12 + ",1234341221434321\n")
    proc = forge("eval", result["artifacts"][0]["manifest_path"], "--data", str(csv), check=False)
    assert proc.returncode == 2 and "row 3" in proc.stderr and "'x'" in proc.stderr


def test_data_generate_maze_writes_readable_csv(tmp_path):
    from agent_forge.plugins.datasets.maze import read_maze_csv

    out = tmp_path / "mazes.csv"
    gen = json.loads(forge("data", "generate", "maze", "--count", "10", "--set", "size=9", "--out", str(out)).stdout)
    assert gen["count"] == 10
    questions, answers = read_maze_csv(out, 9)  # validates every marked path is a shortest one
    assert questions.shape == (10, 81)


# -- commands arrive through forge_register_commands ----------------------------------------------
def test_help_lists_every_command_core_and_plugin():
    out = forge("--help").stdout
    for name in ("plugins", "inspect", "run", "variants", "eval", "ablate", "data"):
        assert f" {name} " in out, name
    assert "generate" in forge("data", "--help").stdout


def _commands_plugin(name, hook):
    import types

    from agent_forge import hookimpl

    mod = types.ModuleType(name)
    mod.forge_register_commands = hookimpl(hook)
    return mod


def _app_with(*plugins):
    from agent_forge.cli import build_app
    from agent_forge.plugin_host import load_plugins

    host = load_plugins(entry_points=False, extra=plugins)
    return build_app(host), host


def test_an_inline_plugin_adds_a_command_and_a_data_subcommand():
    """The docs/plugins.md example, registered inline as a third-party package would be."""
    import typer
    from typer.testing import CliRunner

    from agent_forge.cli import command_group, emit_json
    from agent_forge.plugin_host import get_host

    def task_info(task: str = typer.Argument(...)) -> None:
        host = get_host()
        spec = host.get(DatasetSpec, task)
        emit_json({"task": task, "plugin": host.plugin_of(DatasetSpec, task),
                   "fields": sorted(spec.config.model_fields)})

    def hook(cli):
        cli.command("task-info")(task_info)
        command_group(cli, "data", help="ignored: the group exists").command("info")(task_info)

    app, host = _app_with(_commands_plugin("third_party_commands", hook))
    assert host.failures == []
    runner = CliRunner()
    for args in (["task-info", "sudoku4"], ["data", "info", "sudoku4"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        info = json.loads(result.stdout)
        assert info["plugin"] == "agent_forge.plugins.datasets.sudoku" and "blanks" in info["fields"]
    data_help = runner.invoke(app, ["data", "--help"]).stdout
    assert "generate" in data_help and "info" in data_help  # one data group, filled by two plugins
    assert "task-info" in runner.invoke(app, ["--help"]).stdout


def test_a_failing_or_clashing_command_plugin_is_reported_and_taken_back():
    from typer.testing import CliRunner

    def broken(cli):
        cli.command("half-added")(lambda: None)
        raise RuntimeError("commands broken on purpose")

    def clashing(cli):
        cli.command("variants")(lambda: None)  # Cognate's, registered by agent_forge.plugins.phases

    app, host = _app_with(_commands_plugin("broken_commands", broken), _commands_plugin("clashing_commands", clashing))
    errors = {f.name: f.error for f in host.failures}
    assert "commands broken on purpose" in errors["broken_commands"]
    clash = errors["clashing_commands"]
    assert "'forge variants'" in clash and "agent_forge.plugins.phases" in clash
    runner = CliRunner()
    listing = runner.invoke(app, ["--help"]).stdout
    assert "half-added" not in listing
    rows = json.loads(runner.invoke(app, ["variants", "--json", "--no-counts"]).stdout)  # the built-in one
    assert any(r["name"] == "trm_small" for r in rows)


def test_the_core_imports_no_phase_or_plugin_and_no_phase_imports_a_plugin():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]

    def imports(path):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                yield node.module
            elif isinstance(node, ast.Import):
                yield from (a.name for a in node.names)

    rules = [("agent_forge", ("agent_forge.phases", "agent_forge.plugins")), ("phases", ("agent_forge.plugins",))]
    broken = [f"{path.relative_to(root)} imports {name} ({folder}/ must not import {', '.join(banned)})"
              for folder, banned in rules for path in sorted((root / folder).rglob("*.py"))
              for name in imports(path) if any(name == b or name.startswith(b + ".") for b in banned)]
    assert broken == []


def test_run_prints_a_summary_on_stdout_and_json_only_when_asked(tmp_path):
    """stdout holds the result (a summary, or the PhaseResult JSON with --json); logs go to stderr,
    so `forge run ... 2>/dev/null` shows only the summary."""
    sets = [a for o in TINY for a in ("--set", o)]
    base = ["run", "phase", "cognate", "--variant", "trm_tiny", "--max-steps", "2", "--no-progress", *sets,
            "--set", "trainer.eval_every=null"]
    plain = forge(*base, "--out", str(tmp_path / "a"))
    lines = plain.stdout.strip().splitlines()
    assert lines[0].split() == ["phase", "status", "exact", "raw/ema", "steps", "time"]
    assert "cognate" in plain.stdout and "completed" in plain.stdout
    assert f"artifact: {(tmp_path / 'a' / 'artifacts' / 'model-0.json').resolve()}" in plain.stdout
    assert "{" not in plain.stdout and "phase.start" in plain.stderr and "phase.start" not in plain.stdout
    as_json = forge(*base, "--json", "--out", str(tmp_path / "b"))
    result = json.loads(as_json.stdout)
    assert result["status"] == "completed"
    assert json.loads((tmp_path / "b" / "result.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("command", [["variants", "--no-counts"], ["plugins"]])
def test_tables_go_to_stdout_and_fit_80_columns(command):
    proc = forge(*command, env={"COLUMNS": "80"})
    assert proc.stdout.strip() and not proc.stderr.strip()
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    assert "…" not in proc.stdout  # nothing cut short


def test_help_reads_at_80_columns_with_help_on_every_option():
    import typer.main

    from agent_forge.cli import build_app

    def commands(group, path=()):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from commands(cmd, path + (name,))
            else:
                yield path + (name,), cmd

    missing = [f"{' '.join(path)} {param.opts[0]}" for path, cmd in commands(typer.main.get_command(build_app()))
               for param in cmd.params
               if param.param_type_name == "option" and not (getattr(param, "help", None) or "").strip()]
    assert missing == [], "options without help text"
    for command in (["run", "phase"], ["run", "pipeline"], ["eval"], ["inspect"], ["ablate"], ["show"],
                    ["runs", "compare"], ["data", "generate"], ["export"]):
        out = forge(*command, "--help", env={"COLUMNS": "80"}).stdout
        assert max(len(line) for line in out.splitlines()) <= 80, command
        assert "…" not in out, command


def test_a_redirected_run_logs_plain_progress_lines(tmp_path):
    """Off a terminal there is no bar; progress comes as train.progress log lines (JSON here)."""
    sets = [a for o in TINY for a in ("--set", o)]
    base = ["--json-logs", "run", "phase", "cognate", "--variant", "trm_tiny", "--max-steps", "4", *sets,
            "--set", "trainer.eval_every=null"]
    shown = forge(*base, "--out", str(tmp_path / "a"))
    events = [json.loads(line) for line in shown.stderr.splitlines() if line.startswith("{")]
    progress = [e for e in events if e["event"] == "train.progress"]
    assert progress and progress[0]["step"] == 2 and progress[0]["total_steps"] == 4
    assert {"elapsed_s", "eta_s", "loss", "examples_per_s"} <= set(progress[0])
    quiet = forge(*base, "--no-progress", "--out", str(tmp_path / "b"))
    assert "train.progress" not in quiet.stderr
