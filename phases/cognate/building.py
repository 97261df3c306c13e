"""From a validated Cognate config to objects: the task's spec, the model, and whether they fit.

Used by the phase before and during a run, by ``forge variants`` (shapes on the meta device) and
by the tools that rebuild a model from a config (tests, benchmarks).
"""

from __future__ import annotations

from typing import Any

import torch

from agent_forge.contracts import TaskSpec
from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.config import CognateConfig
from agent_forge.phases.cognate.training_config import resolve_device
from agent_forge.plugin_host import PluginHost
from agent_forge.specs import ArchitectureSpec, DatasetSpec


def task_spec_for(host: PluginHost, cfg: CognateConfig) -> TaskSpec:
    """The task's spec without generating its data, when the dataset config can say it."""
    spec = getattr(cfg.task, "task_spec", None)
    if callable(spec):
        return spec()
    return host.get(DatasetSpec, cfg.task_name).build(cfg.task, cfg.data_seed).spec


def build_model(host: PluginHost, cfg: CognateConfig, task: TaskSpec, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return host.get(ArchitectureSpec, cfg.architecture).build(cfg.model, task)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_memory(host: PluginHost, cfg: CognateConfig, world_size: int) -> None:
    """Refuse a model and batch that will not fit the device's free memory, before anything is
    allocated (:mod:`~agent_forge.phases.cognate.memory_estimate`). Skipped when the task cannot
    say its shape without building its data, or the free memory cannot be read."""
    from agent_forge.phases.cognate import memory_estimate as mem
    from agent_forge.phases.cognate.training_config import resolve_precision

    spec_of = getattr(cfg.task, "task_spec", None)
    if not callable(spec_of):
        return
    spec = spec_of()
    try:
        with torch.device("meta"):  # shapes only: no memory, no init time
            parameters = count_parameters(host.get(ArchitectureSpec, cfg.architecture).build(cfg.model, spec))
    except Exception:  # an architecture that cannot be built without memory: no estimate, as before
        return
    device = resolve_device(getattr(cfg.trainer, "device", "cpu"))
    precision = resolve_precision(getattr(cfg.trainer, "precision", "fp32"), device)
    est = mem.estimate(parameters, cfg.model, cfg.trainer, seq_len=spec.seq_len, vocab=spec.vocab_size,
                       ema="ema" in cfg.callbacks, world_size=world_size,
                       activation_bytes=2 if precision == "bf16" else 4, shared_memory=device.type == "cpu")
    available = mem.available_bytes(device)
    if available is not None and est.total_bytes > available:
        raise ConfigError(mem.refusal(est, available, cfg.model, cfg.trainer))


class out_of_memory_as_one_line:
    """An allocation that fails anyway (the estimate is a bound, not a promise) becomes one
    ConfigError naming what was being done and what to lower, instead of the allocator's traceback."""

    def __init__(self, doing: str) -> None:
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        text = str(exc) if exc is not None else ""
        if isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or (
                isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)):
            first = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
            raise ConfigError(f"out of memory while {self.doing} ({first}); lower model.d_model or"
                              " trainer.batch_size (or trainer.eval_batch_size)") from None
        return False
