"""The population checkpoint, one per generation: ``checkpoints/gen-NNNN/`` (safetensors + JSON).

Written through :func:`agent_forge.checkpoint.save_train_state` under a temporary name and renamed
when complete; ``checkpoints/latest.json`` then points at it, and only the newest
:data:`KEEP` are kept. Loading takes the newest that reads back whole (its sha256 matches); a
damaged one is moved aside to ``gen-NNNN.corrupt`` and the one before it is used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from agent_forge.checkpoint import atomic_write_json, load_train_state, save_train_state
from agent_forge.errors import ArtifactError

FORMAT, VERSION = "evomerge-population", 1
KEEP = 2
_NAME = re.compile(r"^gen-(\d{4,})$")


class GenerationCheckpoints:
    def __init__(self, folder: Path, log: Any = None) -> None:
        self.folder, self.log = folder, log

    def _existing(self) -> list[tuple[int, Path]]:
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
        return sorted(found)

    def save(self, generation: int, state: dict[str, Any]) -> Path:
        final = self.folder / f"gen-{generation:04d}"
        tmp = self.folder / f".gen-{generation:04d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        save_train_state(tmp, {"format": FORMAT, "version": VERSION, **state})
        if final.exists():  # a generation redone after a resume: same content, replace it whole
            shutil.rmtree(final)
        os.replace(tmp, final)
        atomic_write_json(self.folder / "latest.json", {"generation": generation, "checkpoint": final.name})
        for _, old in self._existing()[:-KEEP]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def load(self) -> dict[str, Any] | None:
        """The newest readable checkpoint's state, or None when there is none."""
        for generation, folder in reversed(self._existing()):
            try:
                state = load_train_state(folder)
            except (ArtifactError, OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
                corrupt = folder.with_name(folder.name + ".corrupt")
                shutil.rmtree(corrupt, ignore_errors=True)
                os.replace(folder, corrupt)
                if self.log is not None:
                    self.log.warning("checkpoint.corrupt", checkpoint=str(folder), moved_to=str(corrupt),
                                     error=str(exc))
                continue
            if state.get("format") != FORMAT or state.get("version") != VERSION:
                raise ArtifactError(f"{folder}: not an EvoMerge population checkpoint of version {VERSION};"
                                    " start a new run (another --out)")
            return state
        return None
