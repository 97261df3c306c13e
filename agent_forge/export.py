"""``forge export``: an artifact as a shareable folder in the Hugging Face Hub's layout.

::

    DIR/model.safetensors   the weights (byte-identical copy)
    DIR/config.json         the artifact's manifest, re-sealed for the new weights file name:
                            architecture and its config, task spec, metrics, sha256, versions ...
    DIR/README.md           a model card: task, variant, parameters, metrics, and how it was made

``config.json`` is a complete, sealed :class:`~agent_forge.contracts.ModelArtifact`, so
:func:`agent_forge.load_artifact` (and ``forge eval``, ``forge inspect``) read the folder back —
pass the folder or its ``config.json`` — verifying the manifest's digests and the weights' size
and sha256, and refuse an edited one. Nothing is uploaded: publishing the folder is the user's
step (``huggingface-cli upload``, a git push, ...).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from agent_forge.artifacts import DIGEST_FIELDS, EXPORT_CONFIG, EXPORT_WEIGHTS, manifest_digests, verify_artifact
from agent_forge.contracts import ModelArtifact
from agent_forge.errors import ArtifactError
from agent_forge.files import atomic_write_bytes, atomic_write_json
from agent_forge.formatting import format_number

WEIGHTS_NAME, CONFIG_NAME, CARD_NAME = EXPORT_WEIGHTS, EXPORT_CONFIG, "README.md"


def export_artifact(manifest: str | Path, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Verify ``manifest`` and write the export folder ``out_dir``; return its ``config.json``."""
    artifact, weights = verify_artifact(manifest)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ArtifactError(f"{out} is a file; name a folder to export into")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ArtifactError(f"{out} is not empty; choose an empty or new folder (or pass --overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{WEIGHTS_NAME}.tmp"
    shutil.copyfile(weights, tmp)
    tmp.replace(out / WEIGHTS_NAME)
    data = artifact.model_dump(mode="json", exclude=set(DIGEST_FIELDS))
    data["weights"] = WEIGHTS_NAME
    data.update(manifest_digests(data))
    atomic_write_json(out / CONFIG_NAME, data)
    exported = ModelArtifact.model_validate(data)
    atomic_write_bytes(out / CARD_NAME, model_card(exported, _run_command(Path(manifest))).encode())
    verify_artifact(out / CONFIG_NAME)  # what we wrote reads back
    return out / CONFIG_NAME


def _run_command(manifest: Path) -> str | None:
    """The command that made the artifact, from its run's config.json (None when not found)."""
    config = manifest.resolve().parent.parent / "config.json"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return None
    options = data.get("options") or {}
    parts = ["forge", "run", "phase", str(data.get("phase", "cognate"))]
    if data.get("variant"):
        parts += ["--variant", str(data["variant"])]
    for flag, key in (("--task", "task"), ("--max-steps", "max_steps"), ("--minutes", "minutes"),
                      ("--seed", "seed"), ("--models", "models")):
        if options.get(key) is not None:
            parts += [flag, str(options[key])]
    for assignment in options.get("overrides") or ():
        parts += ["--set", str(assignment)]
    return " ".join(parts)


def model_card(artifact: ModelArtifact, command: str | None) -> str:
    """A Hugging Face style README: YAML front matter, then what the model is and how it scored."""
    task = artifact.task
    lines = ["---", "library_name: agent-forge", "tags:", "- agent-forge", f"- {artifact.architecture}",
             f"- {task.name}", "---", "", f"# {artifact.variant or artifact.architecture} on {task.name}", "",
             f"A `{artifact.architecture}` model from the agent-forge `{artifact.phase}` phase"
             f" ({artifact.weights_kind} weights, step {format_number(artifact.step, 'count')},"
             f" seed {artifact.seed}).", "",
             "| | |", "| --- | --- |",
             f"| parameters | {format_number(artifact.parameters, 'count')} |",
             f"| task | {task.name} (vocabulary {task.vocab_size}, sequence {task.seq_len}) |",
             f"| variant | {artifact.variant or '-'} |",
             f"| artifact id | `{artifact.id}` |",
             f"| weights sha256 | `{artifact.sha256}` |", "",
             "## Metrics", "",
             "Measured by the phase on its held-out split when the model was made:", "",
             "| metric | value |", "| --- | --- |"]
    for key, value in sorted(artifact.metrics.items()):
        lines.append(f"| {key} | {format_number(value, 'auto', key=key)} |")
    lines += ["", "## How it was made", ""]
    if command:
        lines += ["```bash", command, "```", ""]
    else:
        lines += ["The run's command was not found beside the artifact; `config.json` holds the model's"
                  " whole configuration.", ""]
    lines += ["## Loading", "", "```python", "from agent_forge import load_artifact",
              "manifest, weights = load_artifact(\"path/to/this/folder\")   # verifies sha256", "```",
              "", "or `forge eval path/to/this/folder --data FILE`.", ""]
    return "\n".join(lines)
