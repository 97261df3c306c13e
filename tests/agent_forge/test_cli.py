"""The forge CLI as a user meets it: results on stdout, one-line errors on stderr, exit codes."""

import json
import os
import subprocess
import sys

import pytest

from forge_testing import TINY


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
    paper = rows["trm_paper"]
    assert abs(paper["parameters"] - 5_000_000) / 5_000_000 < 0.10
    assert abs(rows["trm_paper_attention"]["parameters"] - 7_000_000) / 7_000_000 < 0.10
    small = rows["trm_small"]
    assert small["effective_depth"] == small["layers"] * (small["n"] + 1) * small["T"] * small["n_sup"]
    assert rows["baseline"]["n_sup"] == 1


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    sets = [a for o in TINY for a in ("--set", o)]
    proc = forge("--json-logs", "run", "phase", "cognate", "--variant", "trm_tiny", "--max-steps", "6",
                 "--no-progress", "--out", str(out), *sets)
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
