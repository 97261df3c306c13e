"""Rebuilding a model from a verified hand-off artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agent_forge.artifacts import load_artifact, manifest_file
from agent_forge.contracts import ModelArtifact
from agent_forge.hub import resolve_artifact
from agent_forge.loading import build_model


def load_model(host: Any, manifest: str | Path) -> tuple[ModelArtifact, torch.nn.Module]:
    """Verify the artifact (size, sha256), rebuild its architecture, load the weights strictly.
    ``manifest`` may also be a Hub id (:func:`agent_forge.hub.resolve_artifact`)."""
    manifest = manifest_file(resolve_artifact(manifest))
    artifact, state = load_artifact(manifest)
    model = build_model(host, artifact, state, manifest)
    model.eval()
    return artifact, model
