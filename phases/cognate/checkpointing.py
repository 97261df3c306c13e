"""Training checkpoints: what one holds, written and read through ONE description.

:func:`checkpoint_parts` is the single list of what a checkpoint holds. Each part knows how to
read itself from the run (``save``) and how to put itself back (``load``); saving walks the list
one way and loading walks it the other, so a field can never be saved and forgotten on load.
Parts load in list order: the model before the optimizer (whose state refers to its
parameters), callbacks last.

A checkpoint is a folder ``step-<N>/`` (safetensors + JSON, never pickle; see
:func:`agent_forge.checkpoint.save_train_state`) written under a temporary name and renamed, so
it appears whole or not at all; ``latest.json`` points at the newest.
"""

from __future__ import annotations

import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from agent_forge import distributed as dist
from agent_forge import parallel
from agent_forge.checkpoint import atomic_write_json, load_train_state, save_train_state
from agent_forge.errors import ArtifactError, ConfigError
from agent_forge.phases.cognate.state import TrainState

#: Bumped when the parts change; a checkpoint of another layout is refused with a clear message.
LAYOUT = 2
_NAME = re.compile(r"step-\d{8}")


@dataclass(frozen=True)
class Part:
    save: Callable[[], Any]
    load: Callable[[Any], None]


def checkpoint_parts(state: TrainState) -> dict[str, Part]:
    """Everything that shapes the rest of a run. Every rank calls ``save`` (under FSDP the
    model and optimizer are gathered, and the carry and RNG states are gathered from every rank)."""
    model, optimizer = state.model, state.optimizer
    return {
        "model": Part(lambda: parallel.full_state_dict(model),
                      lambda v: parallel.load_full_state_dict(model, v)),
        "optimizer": Part(lambda: parallel.optimizer_state_dict(model, optimizer),
                          lambda v: parallel.load_optimizer_state_dict(model, optimizer, v)),
        "loop": Part(state.state_dict, state.load_state_dict),
        "stream": Part(state.stream.state_dict, state.stream.load_state_dict),
        "accumulator": Part(state.accumulator.state_dict, state.accumulator.load_state_dict),
        "rng": Part(lambda: _rng_state(state.generator), lambda v: _set_rng_state(state.generator, v)),
        "callbacks": Part(lambda: _callback_states(state.callbacks),
                          lambda v: _load_callback_states(state.callbacks, v)),
    }


def save_checkpoint(state: TrainState, ckpt_dir: Path, fingerprint: str, keep: int) -> Path:
    """Write ``step-<N>/`` and point ``latest.json`` at it; keep the newest ``keep`` folders.
    Every rank calls this; only rank 0 writes."""
    final = ckpt_dir / f"step-{state.step:08d}"
    # Rank 0's view, shared: the other ranks must take the same branch (the parts gather).
    if dist.broadcast_object(final.exists()):
        # This step boundary is already saved (a periodic checkpoint, then an interrupt at the
        # same step): keep that whole folder rather than delete it to write the same again.
        return final
    payload = {key: part.save() for key, part in checkpoint_parts(state).items()}
    if not dist.is_main():
        return final
    payload["meta"] = {"layout": LAYOUT, "fingerprint": fingerprint, "world_size": dist.world_size()}
    tmp = ckpt_dir / f".tmp-step-{state.step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_train_state(tmp, payload)
    tmp.rename(final)  # a folder appears whole or not at all
    atomic_write_json(ckpt_dir / "latest.json", {"checkpoint": final.name, "step": state.step})
    for old in checkpoints_newest_first(ckpt_dir)[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(state: TrainState, folder: Path, fingerprint: str) -> None:
    payload = load_train_state(folder)
    meta = payload.get("meta") or {}
    if meta.get("layout") != LAYOUT:
        raise ConfigError(f"--resume: {folder} was written by another version of agent-forge (checkpoint"
                          f" layout {meta.get('layout', 1)}, this version reads {LAYOUT}); start a new run")
    if fingerprint and meta.get("fingerprint") and meta["fingerprint"] != fingerprint:
        raise ConfigError(f"--resume: the checkpoint {folder} was written with a different config;"
                          " resume with the same flags, or start a new run")
    saved_world = int(meta.get("world_size", 1))
    if saved_world != dist.world_size():
        raise ConfigError(f"--resume: the checkpoint {folder} was written by {saved_world} process(es), this run"
                          f" has {dist.world_size()}; resume with --nproc {saved_world} (a resumed run"
                          " continues exactly only with the same number of processes)")
    for key, part in checkpoint_parts(state).items():
        part.load(payload[key])


def saved_note(ckpt_dir: Path) -> str:
    """What is on disk, said plainly for a failure message: never claim a checkpoint that is not there."""
    folders = checkpoints_newest_first(ckpt_dir)
    return f"the newest checkpoint ({folders[0]}) is intact" if folders else "no checkpoint was saved"


def checkpoints_newest_first(ckpt_dir: Path) -> list[Path]:
    """``step-<8 digits>`` folders; a ``.tmp-`` (half-written) or ``.corrupt`` one is none."""
    return sorted((p for p in ckpt_dir.glob("step-*") if p.is_dir() and _NAME.fullmatch(p.name)), reverse=True)


def resume_from_newest_intact(state: TrainState, ckpt_dir: Path, fingerprint: str, log: Any = None) -> Path:
    """Load the newest checkpoint that reads back whole. A damaged one (a truncated or edited
    file: its sha256 no longer matches) is moved aside to ``<name>.corrupt`` and the next older
    one is tried, and the log says so. Config and world-size mismatches are errors, not damage."""
    folders = checkpoints_newest_first(ckpt_dir)
    if not folders:
        raise ConfigError(f"--resume: no checkpoint under {ckpt_dir}; start the run without --resume")
    for folder in folders:
        try:
            load_checkpoint(state, folder, fingerprint)
            return folder
        except (ArtifactError, ValueError, KeyError, OSError) as exc:
            aside = folder.with_name(folder.name + ".corrupt")
            if dist.is_main():
                shutil.rmtree(aside, ignore_errors=True)
                folder.rename(aside)
            dist.barrier()
            if log is not None:
                log.warning("checkpoint.corrupt", checkpoint=str(folder), moved_to=str(aside), error=str(exc))
    raise ArtifactError(f"--resume: every checkpoint under {ckpt_dir} is damaged (moved aside as *.corrupt);"
                        " start a new run")


# -- parts that are not a state_dict of one object -------------------------------------------
def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    out = {"generator": generator.get_state(),
           "torch": dist.gather_rows(torch.get_rng_state().unsqueeze(0)),  # (world, n): one per rank
           "python": [version, list(internal), gauss]}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _set_rng_state(generator: torch.Generator, saved: dict[str, Any]) -> None:
    generator.set_state(saved["generator"])
    # clone(): set_rng_state reads from the start of the storage, so a row view would not do.
    torch.set_rng_state(saved["torch"][dist.rank()].clone())
    version, internal, gauss = saved["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in saved and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])


def _callback_states(callbacks: dict[str, Any]) -> dict[str, Any]:
    return {name: cb.state_dict() for name, cb in callbacks.items() if hasattr(cb, "state_dict")}


def _load_callback_states(callbacks: dict[str, Any], saved: dict[str, Any]) -> None:
    for name, cb_state in saved.items():
        if name in callbacks and hasattr(callbacks[name], "load_state_dict"):
            callbacks[name].load_state_dict(cb_state)
