"""``trainer.compile=auto``: compile the training step only when it pays off within the run.

torch.compile makes a step faster (1.2-1.5x on 2 CPU cores in docs/performance.md) for a fixed
price paid at its first call: tens of seconds with an empty cache, a few with a warm one. Whether
that pays depends on how much training is left, so ``auto`` decides during the run:

1. the first steps run eager; after one untimed step, ``probe`` steps give the eager step time;
2. the training left is estimated from the budget (``max_steps`` and/or ``minutes``, whichever
   ends first); what compiling would save is ``left * (1 - 1/speed-up)``;
3. the compile seconds and speed-up are this machine's own, read from a small record of earlier
   runs of the same model, shape, device, threads and torch (``compile-records.json`` in the
   forge cache; after the first, cold compile the kernels are cached, so the next is expected
   at :data:`WARM_FRACTION` of it); without a record, the measured ranges' middle
   (:data:`COLD_COMPILE_S`, :data:`GUESSED_SPEEDUP`);
4. it compiles when the saving exceeds the compile time; after the compiled first step and
   ``probe`` compiled steps it records what it measured, and goes back to eager if the compiled
   step was not faster.

Every decision is one log line (``compile.auto``) with its numbers. The inductor cache is kept
in the forge cache (``$FORGE_CACHE_DIR/inductor``) unless ``TORCHINDUCTOR_CACHE_DIR`` is set, so
it survives a reboot and the next run's compile is the warm one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from agent_forge import distributed as dist
from agent_forge.cache import cache_dir

#: Seconds a first (cold-cache) compile of the training step is assumed to take without a record:
#: 30.5 s on 2 idle CPU cores, 133-212 s on one core of a loaded machine (docs/performance.md).
COLD_COMPILE_S = {"cpu": 90.0, "cuda": 90.0}
#: Speed-up assumed without a record: 1.17-1.51x measured on the CPU (1.47x for trm_small).
GUESSED_SPEEDUP = 1.3
#: A compile whose kernels are already in inductor's cache re-traces and loads them: 9.7 s against
#: 133 s cold in docs/performance.md, so a recorded cold compile is expected to cost this fraction.
WARM_FRACTION = 0.1
RECORDS = "compile-records.json"


def use_persistent_inductor_cache() -> None:
    """Point inductor's on-disk cache at the forge cache unless the user chose a place."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "inductor"))


def record_key(state: Any) -> str:
    """What a compile's cost depends on: the model, the step's shapes, device, threads and torch."""
    model = state.model
    desc = {"model": repr(getattr(model, "cfg", type(model).__name__)),
            "parameters": sum(p.numel() for p in model.parameters()),
            "batch": {k: list(v.shape) for k, v in state.local_batch().items()},
            "device": state.device.type, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "precision": state.precision}
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Estimate:
    compile_s: float
    speedup: float
    measured: bool


class CompileRecords:
    """Compile seconds and speed-ups measured on this machine, by :func:`record_key`."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / RECORDS

    def read(self) -> dict[str, dict[str, float]]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def estimate(self, key: str, device: str) -> Estimate:
        """The last measured speed-up and compile time of ``key``; a compile measured once (cold)
        left its kernels in the cache, so the next one is expected at :data:`WARM_FRACTION` of it."""
        rec = self.read().get(key)
        if rec:
            compile_s = float(rec["compile_s"]) * (WARM_FRACTION if int(rec.get("compiles", 1)) == 1 else 1.0)
            return Estimate(compile_s, float(rec["speedup"]), True)
        return Estimate(COLD_COMPILE_S.get(device, COLD_COMPILE_S["cpu"]), GUESSED_SPEEDUP, False)

    def write(self, key: str, compile_s: float, speedup: float) -> None:
        records = self.read()
        compiles = int(records.get(key, {}).get("compiles", 0)) + 1
        records[key] = {"compile_s": round(compile_s, 2), "speedup": round(speedup, 4), "compiles": compiles}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(records, indent=1, sort_keys=True))
            tmp.replace(self.path)
        except OSError:  # a read-only cache costs the next run its record, nothing else
            pass


def training_left_s(cfg: Any, state: Any, step_s: float) -> float:
    """Seconds of training left: the step budget at ``step_s`` a step, the time budget, or the
    smaller of the two."""
    left = []
    if cfg.max_steps:
        left.append(max(0, cfg.max_steps - state.step) * step_s)
    if cfg.minutes:
        left.append(max(0.0, cfg.minutes * 60 - state.elapsed_s))
    return min(left) if left else 0.0


class AutoCompile:
    """Called after every training step while the decision is open (see the module docstring).

    ``wrap(module)`` is what compiling means (the trainer's ``CompiledOrEager``); ``clock`` and
    ``records`` are there for tests."""

    def __init__(self, state: Any, cfg: Any, wrap: Callable[[Any], Any], log: Any = None, probe: int = 3,
                 records: CompileRecords | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.cfg, self.wrap, self.log, self.probe, self.clock = cfg, wrap, log, probe, clock
        self.records = records or CompileRecords()
        self.eager_module = state.forward_module
        self.phase = "warm"  # warm -> eager probe -> compile step -> compiled probe -> done
        self.times: list[float] = []
        self.last = clock()
        self.eager_step_s = self.compiled_step_s = self.first_compiled_s = 0.0
        self.key = ""
        self.decision = "undecided"

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def _say(self, event: str, **kw: Any) -> None:
        if self.log is not None and dist.is_main():
            self.log.info(event, **kw)

    def after_step(self, state: Any) -> None:
        now = self.clock()
        took, self.last = now - self.last, now
        if self.phase == "warm":
            self.phase = "eager"
            return
        if self.phase in ("eager", "compiled"):
            self.times.append(took)
            if len(self.times) < self.probe:
                return
            mean = sum(self.times) / len(self.times)
            self.times = []
            if self.phase == "eager":
                self.eager_step_s = mean
                self._decide(state)
            else:
                self.compiled_step_s = mean
                self._judge(state)
            return
        if self.phase == "first":
            self.first_compiled_s = took
            self.phase = "compiled"
            if getattr(state.forward_module, "mode", "compiled") == "eager":  # compiling failed: it said why
                self.decision, self.phase = "failed", "done"

    def _decide(self, state: Any) -> None:
        self.key = record_key(state)
        est = self.records.estimate(self.key, state.device.type)
        left = training_left_s(self.cfg, state, self.eager_step_s)
        saving = left * (1 - 1 / est.speedup) if est.speedup > 1 else 0.0
        go = saving > est.compile_s
        go = dist.agree([float(go)], "min")[0] > 0  # every rank compiles, or none does
        self._say("compile.auto", decision="compile" if go else "eager", training_left_s=round(left, 1),
                  eager_step_s=round(self.eager_step_s, 4), expected_compile_s=round(est.compile_s, 1),
                  expected_speedup=round(est.speedup, 3), expected_saving_s=round(saving, 1),
                  from_record=est.measured)
        if not go:
            self.decision, self.phase = "eager", "done"
            return
        use_persistent_inductor_cache()
        state.forward_module = self.wrap(self.eager_module)
        self.phase = "first"

    def _judge(self, state: Any) -> None:
        compile_s = max(0.0, self.first_compiled_s - self.compiled_step_s)
        speedup = self.eager_step_s / max(self.compiled_step_s, 1e-9)
        self.records.write(self.key, compile_s, speedup)
        keep = dist.agree([float(speedup > 1.0)], "min")[0] > 0
        self._say("compile.auto", decision="keep compiled" if keep else "back to eager",
                  compile_s=round(compile_s, 1), eager_step_s=round(self.eager_step_s, 4),
                  compiled_step_s=round(self.compiled_step_s, 4), speedup=round(speedup, 3))
        if not keep:
            state.forward_module = self.eager_module
        self.decision, self.phase = ("compiled" if keep else "eager"), "done"
