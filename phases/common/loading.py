"""Rebuilding a model from a verified hand-off artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agent_forge.checkpoint import load_artifact
from agent_forge.config import validate
from agent_forge.contracts import ModelArtifact
from agent_forge.errors import ArtifactError


def load_model(host: Any, manifest: str | Path) -> tuple[ModelArtifact, torch.nn.Module]:
    """Verify the artifact (size, sha256), rebuild its architecture, load the weights strictly."""
    artifact, state = load_artifact(manifest)
    reg = host.get("architecture", artifact.architecture)
    cfg = validate(reg.config, artifact.architecture_config, "architecture_config")
    model = reg.obj(cfg, artifact.task)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(f"{manifest}: weights do not fit architecture {artifact.architecture!r}: {exc}") from exc
    model.eval()
    return artifact, model
