"""``forge ablate --equal-time SECONDS``: every arm the same wall-clock training budget, as step counts.

A ``--minutes`` budget is equal wall-clock only while the machine's load stays the same from the
first run to the last; on a shared machine it does not, and an arm that happens to run while
something else is busy gets fewer steps. So the wall-clock budget is turned into step budgets
before anything trains:

1. every arm's training state is built in this process (its model, optimizer, callbacks and
   data stream, from the config its runs resolve to, seed 0);
2. after :data:`WARMUP` untimed steps each, the arms take turns, :data:`BLOCK` optimizer steps a
   turn, for :data:`ROUNDS` rounds, the order rotated every round (A B C D, B C D A, ...): a
   change of load during the calibration hits every arm alike, and no arm always goes first;
3. an arm's seconds per step is the median of its turns (one turn slowed by a burst of load does
   not move it); its budget is ``round(SECONDS / seconds per step)`` optimizer steps.

The runs then take those step counts, so what they compute does not depend on the load while they
run, and ``--arm-steps`` with the recorded counts reruns them exactly. What the calibration
measures is the ratio between the arms' step times under the load at that moment; the absolute
step count follows that load too, which is why the load average is recorded with it.

Only training steps are timed: the periodic evaluation, logging and the final evaluation are not
part of the budget (as with ``--minutes``, whose clock also runs over evaluations during training:
set ``trainer.eval_every=null`` for a like-for-like budget). ``trainer.compile=true`` is timed
compiled (the compile falls in the warm-up, and is not part of the budget); ``auto`` is refused,
since it decides in each run, from that run's budget, whether to compile.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.building import build_model
from agent_forge.phases.cognate.fit import FitContext
from agent_forge.phases.cognate.hookspecs import CallbackSpec, TrainerSpec
from agent_forge.phases.common.validation import carve_validation
from agent_forge.plugin_host import PluginHost
from agent_forge.runner import PhaseRunner, RunOptions
from agent_forge.specs import DatasetSpec

#: Untimed steps per arm first: the first steps allocate, fill the carry and warm the caches.
WARMUP = 4
#: Timed optimizer steps per turn: long enough that switching arms (another model's weights in
#: the caches) is a small part of a turn.
BLOCK = 3
#: Turns per arm; the median of an odd number is one measured turn.
ROUNDS = 7


def equal_time_steps(seconds: float, step_seconds: dict[str, float]) -> dict[str, int]:
    """Each arm's step budget for ``seconds`` of training at its measured seconds per step (at least 1)."""
    return {arm: max(1, round(seconds / s)) for arm, s in step_seconds.items()}


def measure_interleaved(steppers: dict[str, Callable[[], Any]], *, warmup: int = WARMUP, block: int = BLOCK,
                        rounds: int = ROUNDS, clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Seconds per call of each stepper: ``warmup`` untimed calls each, then ``rounds`` rounds in
    which every stepper makes ``block`` timed calls in turn (the order rotated each round); the
    median over its turns."""
    names = list(steppers)
    for name in names:
        for _ in range(warmup):
            steppers[name]()
    turns: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = clock()
            for _ in range(block):
                steppers[name]()
            turns[name].append((clock() - start) / block)
    return {name: statistics.median(times) for name, times in turns.items()}


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the system does not say (Windows)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _stepper(host: PluginHost, arm: str, variant: str, overrides: tuple[str, ...], run_dir: Path,
             tasks: dict[str, Any]) -> Callable[[], Any]:
    # The config this arm's seed-0 run resolves to, through the same runner, so the timed step is
    # the run's step (its batch, threads, precision, callbacks).
    _, _, cfg = PhaseRunner(host).prepare("cognate", RunOptions(variant=variant, seed=0, overrides=overrides))
    compile_ = getattr(cfg.trainer, "compile", False)
    if compile_ == "auto":
        # auto decides in each run, from that run's budget and the compile records, whether to
        # compile: the runs' step times would not be the calibrated ones.
        raise ConfigError(f"--equal-time: arm {arm} has trainer.compile='auto', which decides per run whether to"
                          " compile, so its step time is not known before the run: --set trainer.compile=false"
                          " (or true)")
    trainer = host.get(TrainerSpec, cfg.trainer_name).build(cfg.trainer)
    if not callable(getattr(trainer, "start", None)) or not callable(getattr(trainer, "step", None)):
        raise ConfigError(f"--equal-time: trainer {cfg.trainer_name!r} (arm {arm}) has no start()/step() to time;"
                          " give the step budgets with --arm-steps instead")
    # Every arm shares the task section, so its data is built once.
    key = repr((cfg.task.model_dump(mode="json"), cfg.task_name, cfg.data_seed, cfg.validation_samples))
    if key not in tasks:
        task_data = host.get(DatasetSpec, cfg.task_name).build(cfg.task, cfg.data_seed)
        tasks[key] = carve_validation(task_data, cfg.validation_samples, cfg.data_seed)
    task_data = tasks[key]
    model = build_model(host, cfg, task_data.spec, 0)
    callbacks = {name: host.get(CallbackSpec, name).build(c) for name, c in cfg.callbacks.items()}
    folder = run_dir / arm
    folder.mkdir(parents=True, exist_ok=True)
    state = trainer.start(FitContext(model=model, task=task_data, run_dir=folder, seed=0, callbacks=callbacks,
                                     host=host, evaluators=cfg.evaluators, progress=False))
    if compile_ is True:  # compiled as fit compiles it; the warm-up steps take the compile
        trainer.compile_for_training(state)
    return lambda: trainer.step(state)


def calibrate(host: PluginHost, arms: list[tuple[str, str, tuple[str, ...]]], log: Any = None,
              **timing: Any) -> dict[str, Any]:
    """Seconds per optimizer step of every ``(arm, variant, overrides)``, measured interleaved in
    this process (:func:`measure_interleaved`), with the load average before and after. ``log``
    (a structlog logger) hears when the timing starts, after every arm's state is built: a config
    an arm cannot train with is refused before that, as the error alone."""
    threads = torch.get_num_threads()
    start = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="forge-equal-time-") as tmp:
            tasks: dict[str, Any] = {}
            steppers = {arm: _stepper(host, arm, variant, overrides, Path(tmp), tasks)
                        for arm, variant, overrides in arms}
            before = load_average()
            if log is not None:
                log.info("ablation.calibrating", arms=list(steppers), load_average=before,
                         note="timing every arm's optimizer steps, interleaved, before the runs")
            step_seconds = measure_interleaved(steppers, **timing)
    finally:
        torch.set_num_threads(threads)  # the arms' trainer.threads must not outlive the calibration
    return {"step_seconds": step_seconds, "load_average_before": before, "load_average_after": load_average(),
            "seconds": round(time.monotonic() - start, 1),
            "warmup": timing.get("warmup", WARMUP), "block": timing.get("block", BLOCK),
            "rounds": timing.get("rounds", ROUNDS)}
