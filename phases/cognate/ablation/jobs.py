"""``forge ablate --jobs N``: the ablation's runs as N concurrent ``forge run`` processes.

An ablation is many independent runs, so on a machine with spare cores they can share it: each
run gets ``cores // N`` intra-op threads (``trainer.threads``, unless the overrides set it) and
runs in its own process, so their wall-clock budgets overlap but no two runs share a thread.
Every run is still the same ``forge run phase cognate`` with the same overrides as in the serial
path; only how many run at once differs. A run's log goes to ``<arm>/seed-<k>.log``.

Each job is a fresh interpreter (``python -m agent_forge``), which sees the plugins installed in
the environment (entry points), not ones registered in the calling process's host by hand;
a program with such plugins keeps ``jobs=1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from agent_forge.contracts import PhaseResult
from agent_forge.errors import ConfigError

POLL_S = 0.5


@dataclass(frozen=True)
class Job:
    arm: str
    variant: str
    seed: int
    overrides: tuple[str, ...]
    run_dir: Path

    @property
    def log(self) -> Path:
        return self.run_dir.parent / f"{self.run_dir.name}.log"


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    return max(1, available_cores() // jobs)


def command(job: Job, threads: int) -> list[str]:
    # The thread count goes first so that an explicit trainer.threads in the overrides wins.
    sets = [f"trainer.threads={threads}", *job.overrides]
    return [sys.executable, "-m", "agent_forge", "run", "phase", "cognate", "--variant", job.variant,
            "--seed", str(job.seed), "--out", str(job.run_dir), "--no-progress", "--json",
            *[x for s in sets for x in ("--set", s)]]


def run_jobs(jobs: list[Job], parallel: int, *, on_done: Callable[[Job, PhaseResult], None] | None = None
             ) -> dict[Job, PhaseResult]:
    """Run every job, ``parallel`` at a time; their results by job. A job that ends without a
    result (a config error, a crash) stops the others and raises with its log's tail; Ctrl-C
    stops them all."""
    threads = threads_per_job(parallel)
    waiting, running, results = list(jobs), {}, {}
    started: dict[Job, float] = {}
    try:
        while waiting or running:
            while waiting and len(running) < parallel:
                job = waiting.pop(0)
                job.run_dir.parent.mkdir(parents=True, exist_ok=True)
                started[job] = time.time()
                with job.log.open("wb") as log:
                    running[job] = subprocess.Popen(command(job, threads), stdout=subprocess.DEVNULL, stderr=log)
            for job, proc in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                del running[job]
                result_file = job.run_dir / "result.json"
                # A run that failed in training still writes its result (status "failed"), which
                # the ablation reports as the serial path does; no result means it never ran.
                fresh = result_file.exists() and result_file.stat().st_mtime >= started[job] - 1
                if not fresh:  # none, or one this job did not write (a refused run leaves the old one)
                    tail = job.log.read_text(errors="replace")[-2000:] if job.log.exists() else ""
                    raise ConfigError(f"ablation run {job.arm} seed {job.seed} failed (exit {code}); its log:"
                                      f" {job.log}\n{tail}")
                results[job] = PhaseResult.model_validate_json(result_file.read_text())
                if on_done:
                    on_done(job, results[job])
            time.sleep(POLL_S)
    finally:
        for proc in running.values():
            proc.terminate()
        for proc in running.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return results
