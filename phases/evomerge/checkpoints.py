"""The population checkpoint, one per generation: ``checkpoints/gen-NNNN/``.

The folder is the shared one (:mod:`agent_forge.phases.common.checkpoints`): written whole or not
at all, ``latest.json`` pointing at the newest, only the newest :data:`KEEP` kept, a damaged one
moved aside to ``gen-NNNN.corrupt`` on load and the one before it used. What is EvoMerge's own is
the name and the format tag of the state it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_forge.checkpoint import load_train_state
from agent_forge.errors import ArtifactError
from agent_forge.phases.common.checkpoints import CheckpointFolder

FORMAT, VERSION = "evomerge-population", 1
KEEP = 2


def generation_folder(folder: Path) -> CheckpointFolder:
    """EvoMerge's checkpoints under ``folder``: ``gen-<4+ digits>``, counted in generations."""
    return CheckpointFolder(folder, prefix="gen", digits=4, unit="generation")


class GenerationCheckpoints:
    def __init__(self, folder: Path, log: Any = None) -> None:
        self.folder, self.log = folder, log
        self.store = generation_folder(folder)

    def save(self, generation: int, state: dict[str, Any]) -> Path:
        # A generation redone after a resume has the same content: it replaces the folder whole.
        return self.store.write(generation, {"format": FORMAT, "version": VERSION, **state}, keep=KEEP)

    def load(self) -> dict[str, Any] | None:
        """The newest readable checkpoint's state, or None when there is none."""
        found = self.store.read_newest_intact(load_train_state, log=self.log)
        if found is None:
            return None
        folder, state = found
        if state.get("format") != FORMAT or state.get("version") != VERSION:
            raise ArtifactError(f"{folder}: not an EvoMerge population checkpoint of version {VERSION};"
                                " start a new run (another --out)")
        return state
