"""``forge import official`` and ``forge export --format official``: whole artifacts both ways.

An import writes an ordinary verified artifact (``OUT/model.json`` + ``OUT/model.safetensors``)
whose manifest records, under ``source``, the checkpoint's path and sha256 and its ``arch``
section; every command that takes an artifact (``inspect``, ``eval``, ``show``, ``export``,
EvoMerge) takes it. An export writes ``OUT/step_N`` and ``OUT/all_config.yaml`` that the
official ``pretrain.py`` loads with its own ``load_checkpoint`` (``load_checkpoint=OUT/step_N``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml

from agent_forge.artifacts import load_artifact, write_artifact
from agent_forge.contracts import ArtifactSource, TaskSpec, VersionInfo
from agent_forge.errors import ConfigError
from agent_forge.files import atomic_write_bytes, atomic_write_stream
from agent_forge.loading import build_model
from agent_forge.plugins.official.checkpoint import (OFFICIAL_TRAINING_DEFAULTS, official_arch_from,
                                                     official_state_from, read_official)
from agent_forge.specs import ArchitectureSpec

MANIFEST_NAME = "model.json"
#: Our trainer.loss -> the official loss_type.
LOSS_TYPES = {"stablemax": "stablemax_cross_entropy", "softmax": "softmax_cross_entropy"}


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; name a folder to write into")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"--out {out}: is not empty; choose a new or empty folder (or pass --overwrite)")
    out.mkdir(parents=True, exist_ok=True)


def import_official(path: str | Path, out: str | Path, *, config_path: str | Path | None = None,
                    seq_len: int | None = None, overwrite: bool = False, host: Any = None) -> Path:
    """Import an official ``step_N`` checkpoint as an artifact in ``out``; return its manifest path.

    The model is built and the weights loaded strictly before anything is written, so a
    checkpoint that does not fit is refused with nothing left behind.
    """
    from agent_forge.plugin_host import get_host

    host = host or get_host()
    source = read_official(path, config_path=config_path, seq_len=seq_len)
    data_paths = [str(p) for p in source.config.get("data_paths") or []]
    info: dict[str, Any] = {"official": True}
    if source.num_puzzle_ids is not None:
        info["num_puzzle_ids"] = source.num_puzzle_ids
    if data_paths:
        info["dataset"] = {"name": "official", "config": {"path": data_paths[0]}}
    task = TaskSpec(name="official", vocab_size=source.vocab_size, seq_len=source.seq_len, info=info)
    reg = host.get(ArchitectureSpec, "trm")
    cfg = reg.config.model_validate(source.model_config)
    fields: dict[str, Any] = {
        "id": f"official-{source.sha256[:12]}", "phase": "import", "architecture": "trm",
        "architecture_config": cfg.model_dump(mode="json"), "task": task, "step": source.step,
        "weights_kind": source.weights_kind, "versions": VersionInfo.current(),
        "source": ArtifactSource(format="official-trm", path=str(path), sha256=source.sha256,
                                 config=source.arch.model_dump(mode="json")),
    }
    from agent_forge.contracts import ModelArtifact

    # Build and load before writing: a misfit is an error with no half-written folder.
    probe = ModelArtifact(weights="-", sha256="0" * 64, size_bytes=0, parameters=0, **fields)
    model = build_model(host, probe, source.state, path)
    fields["parameters"] = sum(p.numel() for p in model.parameters())
    out = Path(out)
    _prepare_out(out, overwrite)
    write_artifact(out / MANIFEST_NAME, fields, source.state)
    return out / MANIFEST_NAME


def _loss_type(manifest: Path) -> str:
    """The run's ``trainer.loss`` as the official loss_type (stable-max when not found, as there)."""
    config = manifest.resolve().parent.parent / "config.json"
    try:
        loss = json.loads(config.read_text()).get("trainer", {}).get("loss")
    except (OSError, ValueError, AttributeError):
        loss = None
    return LOSS_TYPES.get(str(loss), LOSS_TYPES["stablemax"])


def export_official(manifest: str | Path, out: str | Path, *, overwrite: bool = False,
                    forward_dtype: str = "float32") -> list[Path]:
    """Write ``out/step_N`` and ``out/all_config.yaml`` for the official TRM code.

    ``forward_dtype`` float32 keeps every value exact (``import(export(a))`` is bit-identical);
    bfloat16 rounds the two init states to bf16, as the official model holds them when it trains
    in bf16. The training settings in ``all_config.yaml`` are the official defaults
    (config/cfg_pretrain.yaml): set your own with hydra overrides there.
    """
    manifest = Path(manifest)
    artifact, state = load_artifact(manifest)
    if artifact.architecture != "trm":
        raise ConfigError(f"{manifest}: architecture {artifact.architecture!r}; only 'trm' has an official"
                          " counterpart (the official TinyRecursiveReasoningModel_ACTV1)")
    if artifact.task.causal:
        raise ConfigError(f"{manifest}: a causal (language-model) task; the official TRM is bidirectional")
    arch = official_arch_from(artifact.architecture_config, loss_type=_loss_type(manifest),
                              forward_dtype=forward_dtype)
    official = official_state_from(state, arch)
    num_ids = state["embed.puzzle"].shape[0] if "embed.puzzle" in state else 1
    config = {**OFFICIAL_TRAINING_DEFAULTS, "arch": arch,
              # Ignored by the official PretrainConfig (extra keys are dropped); read back by forge import.
              "agent_forge": {"artifact": artifact.id, "vocab_size": artifact.task.vocab_size,
                              "seq_len": artifact.task.seq_len, "num_puzzle_identifiers": num_ids,
                              "step": artifact.step}}
    out = Path(out)
    _prepare_out(out, overwrite)
    step_file = out / f"step_{artifact.step}"
    atomic_write_stream(step_file, lambda f: torch.save(official, f))
    config_file = out / "all_config.yaml"
    atomic_write_bytes(config_file, yaml.safe_dump(config, sort_keys=True).encode())
    return [step_file, config_file]

