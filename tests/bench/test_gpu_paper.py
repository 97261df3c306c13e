"""bench/gpu_paper.sh: its CPU fallback runs every stage end to end; without CUDA, the CUDA path
stops at its check with the fix; bad arguments are refused. (The GPU figures themselves need a GPU.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_paper.sh"


def _run(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_bad_arguments_are_refused_naming_them(tmp_path):
    out = _run("--device", "tpu", "--out", str(tmp_path / "b"))
    assert out.returncode == 2 and "--device tpu: use cuda or cpu" in out.stderr
    out = _run("--frobnicate")
    assert out.returncode == 2 and "unknown argument --frobnicate" in out.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check passes")
def test_without_cuda_the_cuda_path_stops_at_the_check_and_says_what_to_do(tmp_path):
    out = _run("--out", str(tmp_path / "g"))
    assert out.returncode == 3, out.stdout + out.stderr
    assert "CUDA: not available to torch" in out.stdout and "--device cpu" in out.stdout
    assert not (tmp_path / "g" / "run").exists()  # nothing trained


@pytest.mark.slow
def test_the_cpu_fallback_runs_every_stage(tmp_path):
    out = _run("--device", "cpu", "--out", str(tmp_path / "c"), "--budget", "800")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    summary = (tmp_path / "c" / "summary.txt").read_text()
    assert "train: trm_paper on cpu" in summary and "train: steps/s (steady" in summary
    assert "train: peak memory: host RSS" in summary and "train: final, whole eval split: exact" in summary
    table = [line for line in summary.splitlines() if line.startswith("train: ") and line.split()[1:2] == ["2"]]
    assert table, summary  # the accuracy row at step 2 (eval_every=2)
    for stage in ("paper-bf16", "paper-fp32", "nanotrm-fp32", "nanotrm-bf16"):
        assert f"{stage}:" in summary and "examples·steps/s" in summary.split(f"{stage}:", 1)[1]
    data = tmp_path / "c" / "data"
    train = (data / "train.csv").read_text().splitlines()
    evals = (data / "eval.csv").read_text().splitlines()
    assert train[0] == evals[0] == "question,answer" and len(train) == 17 and len(evals) == 9
    assert not set(train[1:]) & set(evals[1:])
    assert "all stages completed" in out.stdout
