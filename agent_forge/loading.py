"""Models rebuilt from verified artifacts: :func:`load_model` is the public way in from Python."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agent_forge.artifacts import load_artifact
from agent_forge.config import validate
from agent_forge.contracts import ModelArtifact
from agent_forge.errors import ArtifactError
from agent_forge.models.protocol import RecursiveModel
from agent_forge.specs import ArchitectureSpec


def build_model(host: Any, artifact: ModelArtifact, state: dict[str, torch.Tensor],
                where: str | Path = "artifact") -> torch.nn.Module:
    """The artifact's architecture built from its config and task, with ``state`` loaded strictly."""
    reg = host.get(ArchitectureSpec, artifact.architecture)
    cfg = validate(reg.config, artifact.architecture_config, "architecture_config")
    model = reg.build(cfg, artifact.task)
    if not isinstance(model, RecursiveModel):  # every reader of a loaded model relies on it (n_sup, ...)
        raise ArtifactError(f"{where}: architecture {artifact.architecture!r} built a {type(model).__name__}, which"
                            " does not follow the model protocol (n_sup, initial_carry(batch), forward(carry,"
                            " batch)); see docs/plugins.md")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(f"{where}: weights do not fit architecture {artifact.architecture!r}: {exc}") from exc
    return model


def load_model(artifact: str | Path, device: str | torch.device = "cpu", *, host: Any = None) -> torch.nn.Module:
    """The model of a verified artifact, in eval mode on ``device``.

    ``artifact``: a manifest (``.json``), a folder written by ``forge export`` / ``forge import``,
    or the id (``owner/name``) of a Hub repository holding a ``forge export`` folder (downloaded
    through ``huggingface_hub`` into its cache when nothing local has that name). The manifest's digests and the weights' size and sha256 are checked first
    (:func:`agent_forge.load_artifact`). Use it as the trainer does::

        model = load_model("runs/a/artifacts/model-0.json")
        carry = model.initial_carry(batch)            # batch = {"inputs": LongTensor (B, S), "puzzle_ids": ...}
        for _ in range(model.n_sup):
            carry, out = model(carry, batch)          # out.logits (B, S, vocab), out.q_halt_logits (B,)
    """
    from agent_forge.artifacts import check_path_argument, manifest_file

    check_path_argument("load_model", "artifact", artifact)
    from agent_forge.plugin_host import get_host

    from agent_forge.hub import resolve_artifact

    manifest = manifest_file(resolve_artifact(artifact))
    meta, state = load_artifact(manifest)
    model = build_model(host or get_host(), meta, state, manifest)
    return model.to(torch.device(device)).eval()

