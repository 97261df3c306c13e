"""Training state on disk (resume): any nested structure, never pickled.

A training state is any nested structure of dicts, lists, tuples, tensors and JSON scalars (model,
optimizer, scheduler, RNG and callback states). Tensors go to one safetensors file
(``state.safetensors``), the structure to a JSON skeleton that points into it (``state.json``).
Neither format can run code when loaded, unlike ``torch.load`` of a pickle. Where a phase keeps
its checkpoints and how they are named is :mod:`agent_forge.phases.common.checkpoints`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from agent_forge.errors import ArtifactError
from agent_forge.files import atomic_write_json, save_weights, sha256_file

# Named keys of the training-state skeleton (torchtune keeps these as constants too).
STATE_FORMAT = "agent-forge-train-state"
STATE_VERSION = 1


def _flatten(obj: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        # No copy here: save_weights copies only what safetensors cannot write as it lies, and
        # the state is written before training touches it again.
        tensors[key] = obj.detach()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        # Keys keep their type (optimizer state is keyed by int), so store pairs.
        return {"__dict__": [[k, _flatten(v, tensors, f"{path}/{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, tensors, f"{path}/{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, tensors, f"{path}/{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"training state at {path or '/'} holds a {type(obj).__name__}; "
                    "only tensors, dicts, lists, tuples and JSON scalars can be saved")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        raise ArtifactError(f"unexpected object in a training-state skeleton: {sorted(obj)}")
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_train_state(folder: str | Path, state: dict[str, Any]) -> Path:
    """Save a nested training state into ``folder`` (``state.safetensors`` + ``state.json``)."""
    folder = Path(folder)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, tensors, "")
    sha, size = save_weights(folder / "state.safetensors", tensors)
    atomic_write_json(folder / "state.json", {
        "format": STATE_FORMAT, "version": STATE_VERSION,
        "tensors": {"file": "state.safetensors", "sha256": sha, "size_bytes": size},
        "state": skeleton,
    })
    return folder


def load_train_state(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    meta_path = folder / "state.json"
    if not meta_path.exists():
        raise ArtifactError(f"No training state at {folder} (missing state.json)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != STATE_FORMAT:
        raise ArtifactError(f"{meta_path} is not an agent-forge training state")
    tensors_path = folder / meta["tensors"]["file"]
    if sha256_file(tensors_path) != meta["tensors"]["sha256"]:
        raise ArtifactError(f"{tensors_path}: sha256 mismatch; the checkpoint is corrupt")
    tensors = load_file(str(tensors_path), device="cpu")
    return _unflatten(meta["state"], tensors)
