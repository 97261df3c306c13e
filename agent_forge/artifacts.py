"""Hand-off models on disk: ``<name>.safetensors`` + ``<name>.json``, checked before a byte is read.

An artifact is its weights (written by :func:`agent_forge.files.save_weights`) and a manifest (a
:class:`~agent_forge.contracts.ModelArtifact`). The manifest carries a digest of its own content
(:func:`manifest_digests`), so an edited metric, parameter count or variant is refused, naming the
field; :func:`load_artifact` checks that, then the weights' size and sha256, before reading a byte
of the weights. An export folder (``forge export``) or a folder of one artifact is read through
its manifest (:func:`manifest_file`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from agent_forge.contracts import SCHEMA_VERSION, ModelArtifact
from agent_forge.errors import ArgumentTypeError, ArtifactError
from agent_forge.files import atomic_write_json, save_weights, sha256_file


def check_path_argument(function: str, name: str, value: Any) -> None:
    """Refuse a Python API argument that is not a path (``load_artifact(None)``), naming it."""
    if not isinstance(value, (str, os.PathLike)):
        raise ArgumentTypeError(f"{function}({name}={value!r}): expected a path (str or pathlib.Path) to an"
                                f" artifact manifest (.json) or an export folder, got {type(value).__name__}")


# -- artifact manifests ----------------------------------------------------------------------
#: The manifest fields that hold its own digests; every other top-level field is covered by them.
DIGEST_FIELDS = ("field_sha256", "manifest_sha256")
#: The first schema version whose manifests always carry ``manifest_sha256``.
SEALED_SINCE = 2


def canonical_json(data: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no whitespace, UTF-8 (floats as ``repr``)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(data: Any) -> str:
    return hashlib.sha256(canonical_json(data)).hexdigest()


def manifest_digests(data: dict[str, Any]) -> dict[str, Any]:
    """The digests a manifest carries about itself, computed from its JSON content ``data``.

    * ``field_sha256``: ``{field: sha256(canonical_json(value))}`` for every top-level field
      except the two digest fields. It is the record of what was written, which is what lets a
      reader *name* the field that was edited (``metrics``, ``parameters``, ``variant``, ...).
    * ``manifest_sha256``: sha256 of the canonical JSON of every other field, ``field_sha256``
      included, so an edit of the per-field digests themselves is caught too.

    The digests are over the JSON values as they are on disk (not over a re-serialised model),
    so they do not depend on how a library version prints a datetime. They catch edits and
    damage, not forgery: whoever edits a field can recompute them (that would need a signature).
    """
    body = {k: v for k, v in data.items() if k not in DIGEST_FIELDS}
    fields = {k: _digest(v) for k, v in sorted(body.items())}
    return {"field_sha256": fields, "manifest_sha256": _digest({**body, "field_sha256": fields})}


def write_artifact(manifest_path: str | Path, artifact_fields: dict[str, Any],
                   state: dict[str, torch.Tensor]) -> ModelArtifact:
    """Write weights next to ``manifest_path`` (same stem, ``.safetensors``) and then the manifest.

    The manifest is written last, so a manifest on disk always describes complete weights. It is
    sealed with :func:`manifest_digests`; the returned artifact carries those digests.
    """
    manifest_path = Path(manifest_path)
    weights_path = manifest_path.with_suffix(".safetensors")
    sha, size = save_weights(weights_path, state)
    fields = {k: v for k, v in artifact_fields.items() if k not in DIGEST_FIELDS}
    artifact = ModelArtifact(weights=weights_path.name, sha256=sha, size_bytes=size, **fields)
    data = artifact.model_dump(mode="json", exclude=set(DIGEST_FIELDS))
    data.update(manifest_digests(data))
    atomic_write_json(manifest_path, data)
    return ModelArtifact.model_validate(data)


def _check_manifest_digests(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Refuse a manifest whose content differs from its digests; return ``data`` to validate.

    A manifest without ``manifest_sha256`` is accepted only at schema_version 1 (written before
    manifests carried digests): it loads, its weights are still checked, and ``manifest_sealed``
    is False so ``forge inspect`` says "manifest unverified". From schema_version 2 on, a missing
    digest means it was removed, and the manifest is refused.
    """
    refuse = (" Refusing to load it: restore the manifest that was written with the weights,"
              " or re-run the phase that wrote it.")
    version = data.get("schema_version", 1)
    recorded = data.get("manifest_sha256")
    if recorded is None:
        if isinstance(version, int) and not isinstance(version, bool) and version < SEALED_SINCE:
            return {**data, "schema_version": version}
        raise ArtifactError(f"{path}: schema_version {version!r} manifest has no manifest_sha256; its digest was"
                            f" removed, so its content cannot be checked.{refuse}")
    body = {k: v for k, v in data.items() if k not in DIGEST_FIELDS}
    fields = data.get("field_sha256")
    if isinstance(fields, dict) and fields:
        changes = []
        for key in sorted(set(body) | set(fields)):
            if key not in body:
                changes.append(f"{key} (removed)")
            elif key not in fields:
                changes.append(f"{key} (added)")
            elif fields[key] != _digest(body[key]):
                changes.append(key)
        if changes:
            noun = "field" if len(changes) == 1 else "fields"
            raise ArtifactError(f"{path}: manifest {noun} {', '.join(changes)} differ{'s' if noun == 'field' else ''}"
                                f" from what was written (field_sha256); the manifest was edited.{refuse}")
    if _digest({**body, "field_sha256": fields}) != recorded:
        raise ArtifactError(f"{path}: manifest_sha256 does not match the manifest's content (its digests were"
                            f" edited or removed); the manifest was edited.{refuse}")
    return data


#: The files of a folder written by ``forge export`` (:mod:`agent_forge.export`).
EXPORT_CONFIG, EXPORT_WEIGHTS = "config.json", "model.safetensors"


def manifest_file(path: str | Path) -> Path:
    """The manifest to read for ``path``: itself, the ``config.json`` of an export folder, or the
    one manifest (``NAME.json`` beside ``NAME.safetensors``) of a folder holding a single artifact."""
    path = Path(path)
    if path.is_dir() and (path / EXPORT_CONFIG).is_file() and (path / EXPORT_WEIGHTS).is_file():
        return path / EXPORT_CONFIG
    if path.is_dir():  # a folder of one artifact (forge import's model.json + model.safetensors)
        pairs = [p for p in sorted(path.glob("*.json")) if p.with_suffix(".safetensors").is_file()]
        if len(pairs) == 1:
            return pairs[0]
    return path


def _run_folder_artifacts(path: Path) -> list[Path] | None:
    """The artifact manifests of a run folder (``artifacts/*.json``; a pipeline's per phase), or
    None when ``path`` is not a run folder (an export folder has ``model.safetensors`` instead)."""
    if (path / EXPORT_WEIGHTS).is_file():
        return None
    marks = ("result.json", "checkpoints", "artifacts", "metrics.jsonl")
    runs = [path] if any((path / m).exists() for m in marks) else [
        p for p in sorted(path.iterdir()) if p.is_dir() and (p / "config.json").is_file()
        and any((p / m).exists() for m in marks)]
    if not runs:
        return None
    return [m for run in runs for m in sorted((run / "artifacts").glob("*.json"))]


def read_manifest(manifest_path: str | Path) -> ModelArtifact:
    """Parse and check a manifest: schema version, its own digests (:func:`_check_manifest_digests`), fields."""
    path = manifest_file(manifest_path)
    if path.is_dir():
        run_artifacts = _run_folder_artifacts(path)
        if run_artifacts is not None:
            found = (f"its artifacts: {', '.join(str(p) for p in run_artifacts[:4])}"
                     + (f" (and {len(run_artifacts) - 4} more)" if len(run_artifacts) > 4 else "")
                     if run_artifacts else "it has no artifacts yet (a run writes them when it finishes)")
            raise ArtifactError(f"{path} is a run folder, not an artifact; {found}. Pass an artifact's .json"
                                " manifest")
        has = [name for name in (EXPORT_CONFIG, EXPORT_WEIGHTS) if (path / name).is_file()]
        if has:  # an export folder with a part missing: say which
            lacks = EXPORT_WEIGHTS if has == [EXPORT_CONFIG] else EXPORT_CONFIG
            raise ArtifactError(f"{path} looks like an exported model ({has[0]}) but has no {lacks}; export it"
                                " again (forge export ARTIFACT FOLDER)")
        manifests = sorted(p.name for p in path.glob("*.json"))
        hint = f" (here: {', '.join(manifests[:3])})" if manifests else ""
        raise ArtifactError(f"{path} is a folder; pass the artifact's .json manifest inside it{hint}")
    if not path.exists():
        raise ArtifactError(f"No artifact manifest at {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    except UnicodeDecodeError:
        raise ArtifactError(f"{path} is not an artifact manifest (not JSON text); pass the .json manifest"
                            " written next to the weights") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise ArtifactError(
            f"{path} has schema_version {version}; this agent-forge reads up to {SCHEMA_VERSION}."
            " Upgrade agent-forge to load it.")
    if not isinstance(data, dict):
        raise ArtifactError(f"{path} is not an artifact manifest (expected a JSON object)")
    data = _check_manifest_digests(path, data)
    try:
        return ModelArtifact.model_validate(data)
    except Exception as exc:
        raise ArtifactError(f"{path} is not a valid artifact manifest: {exc}") from exc


def verify_artifact(manifest_path: str | Path) -> tuple[ModelArtifact, Path]:
    """Check the manifest's own digests, then the weights file's size and sha256; return both.

    A schema-1 manifest (no digests) is accepted with ``artifact.manifest_sealed`` False and a
    warning logged: its weights are verified, its other fields are not.
    """
    manifest_path = manifest_file(manifest_path)
    artifact = read_manifest(manifest_path)
    named = manifest_path.parent / artifact.weights
    weights = named.resolve()
    if manifest_path.parent.resolve() not in weights.parents:
        # The file itself or a folder between it and the manifest may be the link that leads out.
        inside = [named, *named.parents[:max(0, len(Path(artifact.weights).parts) - 1)]]
        link = next((p for p in inside if p.is_symlink()), None)
        why = (f"it is a symlink ({link} -> {os.readlink(link)}) to {weights}, outside the artifact's folder;"
               " copy the weights file into the folder instead of linking it" if link is not None else
               f"weights path {artifact.weights!r} leaves the artifact's folder ({weights})")
        raise ArtifactError(f"{manifest_path}: {why}. Refusing to load it.")
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
    if not artifact.manifest_sealed:
        from agent_forge.logging import get_logger

        get_logger().warning("artifact.manifest_unverified", manifest=str(manifest_path),
                             schema_version=artifact.schema_version,
                             reason="written before manifests carried a digest; only its weights were verified")
    return artifact, weights


def load_artifact(manifest_path: str | Path) -> tuple[ModelArtifact, dict[str, torch.Tensor]]:
    """Verify an artifact and return its manifest and state dict (on CPU).

    Every failure is an :class:`ArtifactError`: the weights file passed instead of its
    manifest, a manifest that is not text, and weights that are not safetensors (even with a
    matching checksum)."""
    check_path_argument("load_artifact", "manifest_path", manifest_path)
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
