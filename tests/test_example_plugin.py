"""End to end: the example plugin package is pip-installed and found through its entry point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(ROOT / "examples" / "forge-example-plugin")],
                   check=True, capture_output=True, timeout=300)
    env = {**os.environ, "FORGE_LOAD_ENTRYPOINTS": "1",
           "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    return env


def _forge(env, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "agent_forge", *args], capture_output=True, text=True, env=env,
                          timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_installed_plugin_shows_in_forge_plugins(plugin_env):
    rows = json.loads(_forge(plugin_env, "plugins", "--json").stdout)
    row = next(r for r in rows if r["name"] == "example")
    assert row["origin"] == "entrypoint" and row["status"] == "ok"
    assert row["distribution"] == "forge-example-plugin" and row["version"] == "0.3.0"
    assert row["registered"] == {"architecture": ["cell_mlp"], "callback": ["loss_spike"], "dataset": ["echo"],
                                 "evaluator": ["first_cell"], "export_format": ["parameters"], "logger": ["print"],
                                 "phase": ["example_summary"], "variant": ["cell_mlp_echo"]}


def test_plugin_command_runs(plugin_env):
    assert "hello from forge-example-plugin, you" in _forge(plugin_env, "example-hello", "--name", "you").stdout


def test_plugin_architecture_is_selectable_by_name(plugin_env, tmp_path):
    proc = _forge(plugin_env, "--json-logs", "run", "phase", "cognate", "--variant", "baseline",
                  "--set", "model={architecture: cell_mlp, hidden: 16}", "--task", "sudoku4",
                  "--set", "task.train_count=32", "--set", "task.eval_count=16",
                  "--set", "trainer.batch_size=8", "--set", "trainer.eval_every=null",
                  "--max-steps", "3", "--no-progress", "--json", "--out", str(tmp_path / "run"))
    result = json.loads(proc.stdout)
    assert result["status"] == "completed"
    assert result["artifacts"][0]["artifact"]["architecture"] == "cell_mlp"


def test_plugin_that_raises_on_import_is_named_and_the_cli_still_works(plugin_env, tmp_path):
    broken = tmp_path / "broken"
    (broken / "forge_broken-9.9.dist-info").mkdir(parents=True)
    (broken / "forge_broken-9.9.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: forge-broken\nVersion: 9.9\n")
    (broken / "forge_broken-9.9.dist-info" / "entry_points.txt").write_text("[agent_forge]\nbroken = forge_broken\n")
    (broken / "forge_broken.py").write_text("raise RuntimeError('this plugin is broken on purpose')\n")
    env = {**plugin_env, "PYTHONPATH": os.pathsep.join([str(broken), plugin_env["PYTHONPATH"]])}
    rows = json.loads(_forge(env, "plugins", "--json").stdout)
    row = next(r for r in rows if r["name"] == "broken")
    assert row["status"] == "failed" and "broken on purpose" in row["error"]
    assert row["distribution"] == "forge-broken" and row["version"] == "9.9"
    assert any(r["name"] == "example" and r["status"] == "ok" for r in rows)
    variants = json.loads(_forge(env, "variants", "--json", "--no-counts").stdout)
    assert any(v["name"] == "trm_small" for v in variants)
    # Blocking it by name hides it entirely.
    rows = json.loads(_forge({**env, "FORGE_DISABLE_PLUGINS": "broken"}, "plugins", "--json").stdout)
    assert not any(r["name"] == "broken" for r in rows)


def test_plugin_variant_trains_with_its_own_task_evaluator_callback_and_logger(plugin_env, tmp_path):
    proc = _forge(plugin_env, "--json-logs", "run", "phase", "cognate", "--variant", "cell_mlp_echo",
                  "--logger", "jsonl,print", "--max-steps", "4", "--set", "trainer.log_every=2", "--no-progress",
                  "--json", "--out", str(tmp_path / "run"))
    result = json.loads(proc.stdout)
    assert result["status"] == "completed"
    assert "first_cell_accuracy" in json.dumps(result["metrics"])
    assert "run step 2: loss" in proc.stderr  # the print logger writes on stderr


EXAMPLE = ROOT / "examples" / "forge-example-plugin" / "forge_example_plugin" / "__init__.py"


def test_the_docs_show_the_whole_example_file():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    start = docs.index("`forge_example_plugin/__init__.py`, the whole file")
    block = docs[docs.index("```python\n", start) + len("```python\n"):]
    assert block[:block.index("```\n")] == EXAMPLE.read_text()


def test_the_example_passes_mypy_and_mypy_catches_a_wrong_spec(tmp_path, monkeypatch):
    api = pytest.importorskip("mypy.api", reason="mypy is not installed (pip install mypy)")
    # The installed layout (models/, phases/, plugins/ inside agent_forge), which mypy cannot read
    # through the editable install's import hook.
    pkg = tmp_path / "path" / "agent_forge"
    pkg.mkdir(parents=True)
    for item in (ROOT / "agent_forge").iterdir():
        (pkg / item.name).symlink_to(item)
    for folder in ("models", "phases", "plugins"):
        (pkg / folder).symlink_to(ROOT / folder)
    monkeypatch.setenv("MYPYPATH", str(pkg.parent))
    # A copy that registers a callback spec from the logger hook, with a logger class as its build.
    wrong = tmp_path / "wrong_example.py"
    wrong.write_text(EXAMPLE.read_text().replace('register(LoggerSpec("print", PrintLogger,',
                                                 'register(CallbackSpec("print", PrintLogger,'))
    out, err, status = api.run(["--follow-imports=silent", "--no-error-summary", "--disallow-untyped-defs",
                                "--cache-dir", str(tmp_path / "cache"), str(EXAMPLE), str(wrong)])
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert errors and all(line.startswith(str(wrong)) for line in errors), out + err
    assert any('incompatible type "CallbackSpec"; expected "LoggerSpec"' in line for line in errors), out
