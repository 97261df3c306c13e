"""Typed records that cross a phase boundary. All frozen, all ``extra="forbid"``.

A later phase receives a :class:`PhaseResult` (or artifact manifests by path), never tensors or
module objects. Every model here round-trips through JSON:
``PhaseResult.model_validate_json(result.model_dump_json()) == result``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Bumped when a field is added, removed or changes meaning; loaders refuse a newer version.
#: 2: artifact manifests carry ``field_sha256`` and ``manifest_sha256`` (see
#: :func:`agent_forge.artifacts.manifest_digests`); version 1 manifests have neither.
#: 3: artifact manifests may carry ``source`` (an imported model's origin); older ones read as None.
SCHEMA_VERSION = 3


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSpec(Contract):
    """What a model needs to know about its task to be built and scored."""

    name: str
    kind: Literal["puzzle", "lm"] = "puzzle"
    vocab_size: int = Field(gt=0)
    seq_len: int = Field(gt=0)
    causal: bool = False
    #: Target value that the loss and the metrics skip (padding, given cells).
    ignore_index: int = -100
    #: Task-specific facts (grid size, tokenizer name, ...), JSON data only.
    info: dict[str, Any] = Field(default_factory=dict)


class VersionInfo(Contract):
    agent_forge: str
    torch: str
    python: str

    @classmethod
    def current(cls) -> "VersionInfo":
        import platform

        import torch

        from agent_forge import __version__

        return cls(agent_forge=__version__, torch=torch.__version__, python=platform.python_version())


class ArtifactSource(Contract):
    """Where an imported model came from (``forge import``): the file, its sha256 and its format."""

    #: The format read, e.g. ``official-trm`` (a step_N file of the official TRM code).
    format: str
    #: The file as the user named it.
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    #: The source's own architecture config, as read (e.g. the official ``arch`` section).
    config: dict[str, Any] = Field(default_factory=dict)


class ModelArtifact(Contract):
    """The manifest of a hand-off model: enough to trust, load and reproduce it."""

    schema_version: int = SCHEMA_VERSION
    id: str
    phase: str
    variant: str | None = None
    architecture: str
    #: The architecture's own config, as validated by its config model.
    architecture_config: dict[str, Any]
    task: TaskSpec
    #: Weights file (safetensors), relative to the manifest's folder.
    weights: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)
    format: Literal["safetensors"] = "safetensors"
    parameters: int = Field(ge=0)
    metrics: dict[str, float] = Field(default_factory=dict)
    step: int = 0
    seed: int = 0
    #: Which weights these are: "raw" or "ema".
    weights_kind: Literal["raw", "ema"] = "raw"
    config_sha256: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    versions: VersionInfo
    parents: tuple[str, ...] = ()
    #: Set when the model was imported from another code's checkpoint rather than trained here.
    source: ArtifactSource | None = None
    #: sha256 of each other top-level field's canonical JSON, so a reader can name an edited field.
    #: Written by :func:`agent_forge.artifacts.write_artifact`; empty in a manifest not yet written.
    field_sha256: dict[str, str] = Field(default_factory=dict)
    #: sha256 of the canonical JSON of every other field (``field_sha256`` included). None in a
    #: manifest not yet written, and in schema-1 manifests (written before manifest digests).
    manifest_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")

    @property
    def manifest_sealed(self) -> bool:
        """True when the manifest carries its own digest (checked by ``read_manifest``)."""
        return self.manifest_sha256 is not None


class ArtifactRef(Contract):
    """An artifact as a later phase receives it: its manifest path and the manifest itself."""

    manifest_path: Path
    artifact: ModelArtifact


class PhaseResult(Contract):
    phase: str
    status: Literal["completed", "stopped", "failed"]
    artifacts: tuple[ArtifactRef, ...] = ()
    metrics: dict[str, float] = Field(default_factory=dict)
    run_dir: Path
    duration_s: float = Field(ge=0)
    report_path: Path | None = None
    #: Why training stopped (budget, max_steps, early_stop, ...), or the failure message.
    message: str = ""
    details: dict[str, Any] = Field(default_factory=dict)
