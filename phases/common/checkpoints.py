"""A run's checkpoint folder, one layout for every phase that checkpoints.

``checkpoints/`` holds one folder per saved position, ``<prefix>-<N>`` (N zero-padded: Cognate's
``step-00000012``, EvoMerge's ``gen-0003``), each a training state written by
:func:`agent_forge.checkpoint.save_train_state` (safetensors + JSON, never pickle). A folder is
written under the hidden name ``.tmp-<name>`` and renamed when complete, so it appears whole or
not at all; ``latest.json`` (``{"checkpoint": name, <unit>: N}``) then points at it, and only the
newest ``keep`` are kept. Reading takes the newest folder that reads back whole; a damaged one (a
truncated or edited file: its sha256 no longer matches) is moved aside to ``<name>.corrupt`` and
the one before it is tried.

What a phase saved is said to the core as a :class:`agent_forge.runner.SavedCheckpoint` (the
folder, and "step 12" or "generation 3"): the multi-process launcher and the interrupt messages
never read a phase's pointer themselves.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Callable, TypeVar

from agent_forge.checkpoint import save_train_state
from agent_forge.errors import ArtifactError
from agent_forge.files import atomic_write_json
from agent_forge.runner import SavedCheckpoint

T = TypeVar("T")

#: The file that names the newest complete checkpoint of a folder.
POINTER = "latest.json"
#: What a checkpoint that fails to read back raises: it is damaged, and an older one is tried.
#: (A config or world-size mismatch is a ConfigError: an error, not damage.)
DAMAGE = (ArtifactError, OSError, ValueError, KeyError)


class CheckpointFolder:
    """The numbered checkpoints under ``folder``: ``<prefix>-<N>`` with at least ``digits`` digits.

    ``unit`` is what N counts ("step", "generation"): the key of N in ``latest.json`` and the
    word a message uses.
    """

    def __init__(self, folder: Path, *, prefix: str, digits: int, unit: str) -> None:
        self.folder, self.prefix, self.digits, self.unit = Path(folder), prefix, digits, unit
        self._pattern = re.compile(rf"{re.escape(prefix)}-(\d{{{digits},}})")

    def path(self, n: int) -> Path:
        return self.folder / f"{self.prefix}-{n:0{self.digits}d}"

    def numbered(self) -> list[tuple[int, Path]]:
        """``(N, folder)`` of every complete checkpoint, newest first (a ``.tmp-`` folder is one
        half-written, a ``.corrupt`` one was set aside: neither counts)."""
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir()
                 if p.is_dir() and (m := self._pattern.fullmatch(p.name))]
        return sorted(found, reverse=True)

    def newest_first(self) -> list[Path]:
        return [p for _, p in self.numbered()]

    def newest(self) -> SavedCheckpoint | None:
        """The newest complete checkpoint on disk (by its number; ``latest.json`` is only a pointer)."""
        found = self.numbered()
        return SavedCheckpoint(found[0][1], self.unit, found[0][0]) if found else None

    def saved_note(self) -> str:
        """What is on disk, said plainly for a failure message: never claim a checkpoint that is not there."""
        newest = self.newest()
        return (f"the newest checkpoint ({newest.folder}) is intact" if newest is not None
                else "no checkpoint was saved")

    def write(self, n: int, state: dict[str, Any], *, keep: int) -> Path:
        """Save ``state`` as checkpoint ``n`` (replacing a folder of that number whole), point
        ``latest.json`` at it and keep the newest ``keep``. Only one process may call this."""
        final = self.path(n)
        tmp = self.folder / f".tmp-{final.name}"
        shutil.rmtree(tmp, ignore_errors=True)
        save_train_state(tmp, state)
        if final.exists():  # the same position saved again (redone after a resume): replace it whole
            shutil.rmtree(final)
        tmp.rename(final)  # a folder appears whole or not at all
        atomic_write_json(self.folder / POINTER, {"checkpoint": final.name, self.unit: n})
        for old in self.newest_first()[keep:]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def set_aside(self, folder: Path) -> Path:
        """Move a damaged checkpoint out of the way (``<name>.corrupt``, replacing an older one)."""
        aside = folder.with_name(folder.name + ".corrupt")
        shutil.rmtree(aside, ignore_errors=True)
        folder.rename(aside)
        return aside

    def read_newest_intact(self, read: Callable[[Path], T], *, log: Any = None, main: bool = True,
                           barrier: Callable[[], None] = lambda: None) -> tuple[Path, T] | None:
        """``(folder, read(folder))`` for the newest checkpoint that reads back whole, or None when
        none does (or there is none). A folder whose ``read`` raises one of :data:`DAMAGE` is set
        aside (by the ``main`` process; the others wait at ``barrier``), logged as
        ``checkpoint.corrupt`` and the next older one is tried; any other error is raised."""
        for folder in self.newest_first():
            try:
                return folder, read(folder)
            except DAMAGE as exc:
                aside = folder.with_name(folder.name + ".corrupt")
                if main:
                    self.set_aside(folder)
                barrier()
                if log is not None:
                    log.warning("checkpoint.corrupt", checkpoint=str(folder), moved_to=str(aside), error=str(exc))
        return None


def has_checkpoint(folder: Path) -> bool:
    """Whether a ``checkpoints/`` folder holds a pointer or a numbered checkpoint of any phase."""
    folder = Path(folder)
    return (folder / POINTER).is_file() or any(
        p.is_dir() and re.fullmatch(r"[A-Za-z]+-\d+", p.name) for p in folder.glob("*-*"))
