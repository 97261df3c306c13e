"""Weights and training state on disk: safetensors + JSON, atomic, checksummed, never pickled.

Two kinds of files:

* **Artifacts** (hand-off models): ``<name>.safetensors`` + ``<name>.json`` (a
  :class:`~agent_forge.contracts.ModelArtifact`). :func:`load_artifact` verifies size and sha256
  before reading a byte of the weights.
* **Training state** (resume): any nested structure of dicts, lists, tuples, tensors and JSON
  scalars (model, optimizer, scheduler, RNG and callback states). Tensors go to one safetensors
  file, the structure to a JSON skeleton that points into it. Neither format can run code when
  loaded, unlike ``torch.load`` of a pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save as st_save_bytes

from agent_forge.contracts import SCHEMA_VERSION, ModelArtifact
from agent_forge.errors import ArtifactError

# Named keys of the training-state skeleton (torchtune keeps these as constants too).
STATE_FORMAT = "agent-forge-train-state"
STATE_VERSION = 1


# -- atomic writes ---------------------------------------------------------------------------
def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` holds either the old or the new content, never a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # The rename itself is durable only once the directory entry is flushed.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=False, default=str) + "\n").encode())


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_json(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


# -- weights ---------------------------------------------------------------------------------
def state_dict_bytes(state: dict[str, torch.Tensor]) -> bytes:
    # safetensors refuses shared storage and non-contiguous views: hand it clean copies.
    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    return st_save_bytes(clean)


def save_weights(path: str | Path, state: dict[str, torch.Tensor]) -> tuple[str, int]:
    """Write a state dict atomically; return its (sha256, size in bytes)."""
    data = state_dict_bytes(state)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest(), len(data)


def write_artifact(manifest_path: str | Path, artifact_fields: dict[str, Any],
                   state: dict[str, torch.Tensor]) -> ModelArtifact:
    """Write weights next to ``manifest_path`` (same stem, ``.safetensors``) and then the manifest.

    The manifest is written last, so a manifest on disk always describes complete weights.
    """
    manifest_path = Path(manifest_path)
    weights_path = manifest_path.with_suffix(".safetensors")
    sha, size = save_weights(weights_path, state)
    artifact = ModelArtifact(weights=weights_path.name, sha256=sha, size_bytes=size, **artifact_fields)
    atomic_write_json(manifest_path, artifact.model_dump(mode="json"))
    return artifact


def read_manifest(manifest_path: str | Path) -> ModelArtifact:
    path = Path(manifest_path)
    if path.is_dir():
        raise ArtifactError(f"{path} is a folder; pass the artifact's .json manifest inside it")
    if not path.exists():
        raise ArtifactError(f"No artifact manifest at {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise ArtifactError(
            f"{path} has schema_version {version}; this agent-forge reads up to {SCHEMA_VERSION}."
            " Upgrade agent-forge to load it.")
    try:
        return ModelArtifact.model_validate(data)
    except Exception as exc:
        raise ArtifactError(f"{path} is not a valid artifact manifest: {exc}") from exc


def verify_artifact(manifest_path: str | Path) -> tuple[ModelArtifact, Path]:
    """Check the weights file's size and sha256 against the manifest; return both."""
    manifest_path = Path(manifest_path)
    artifact = read_manifest(manifest_path)
    weights = (manifest_path.parent / artifact.weights).resolve()
    if manifest_path.parent.resolve() not in weights.parents:
        raise ArtifactError(f"{manifest_path}: weights path {artifact.weights!r} leaves the artifact's folder")
    if not weights.exists():
        raise ArtifactError(f"{manifest_path}: weights file {weights} is missing")
    size = weights.stat().st_size
    if size != artifact.size_bytes:
        raise ArtifactError(
            f"{weights}: size {size} bytes does not match the manifest's {artifact.size_bytes};"
            " the file is truncated or was replaced. Refusing to load it.")
    digest = sha256_file(weights)
    if digest != artifact.sha256:
        raise ArtifactError(
            f"{weights}: sha256 {digest} does not match the manifest's {artifact.sha256};"
            " the file was modified or corrupted. Refusing to load it.")
    return artifact, weights


def load_artifact(manifest_path: str | Path) -> tuple[ModelArtifact, dict[str, torch.Tensor]]:
    """Verify an artifact and return its manifest and state dict (on CPU).

    Every failure is an :class:`ArtifactError`: the weights file passed instead of its
    manifest, a manifest that is not text, and weights that are not safetensors (even with a
    matching checksum)."""
    path = Path(manifest_path)
    if path.suffix == ".safetensors":
        raise ArtifactError(f"{path} is the weights file; pass its manifest {path.with_suffix('.json')} instead")
    try:
        artifact, weights = verify_artifact(path)
    except UnicodeDecodeError:
        raise ArtifactError(f"{path} is not an artifact manifest (not JSON text); pass the .json manifest"
                            " written next to the weights") from None
    try:
        return artifact, load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{weights}: not a readable safetensors file ({exc}), although its size and sha256"
                            " match the manifest: the artifact was written wrong or both files were replaced;"
                            " export it again") from None


# -- training state --------------------------------------------------------------------------
def _flatten(obj: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
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
