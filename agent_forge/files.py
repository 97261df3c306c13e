"""Files written whole or not at all, and their digests.

Every file agent-forge writes goes through :func:`atomic_write_stream`: a temporary file beside the
target, flushed to disk, then renamed over it, so a reader (or a resumed run) finds either the old
content or the new, never a torn file. :func:`save_weights` is the one way a state dict becomes a
safetensors file (never pickle).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch
from safetensors.torch import save as st_save_bytes


# -- atomic writes ---------------------------------------------------------------------------
def atomic_write_stream(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, flush it to disk, then rename it to
    ``path``: ``path`` holds either the old or the new content, never a torn file. For writers
    that stream (``np.save``, ``torch.save``), so a large payload is never copied in memory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600; the file it becomes gets the mode any new file would
        # (0666 less the umask), so an export meant for sharing is readable by others.
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` holds either the old or the new content, never a torn file."""
    atomic_write_stream(path, lambda f: f.write(data))


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (/proc/self/status);
    elsewhere set and restored at once."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    # The rename itself is durable only once the directory entry is flushed.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=False, default=str) + "\n").encode())


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_json(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


# -- weights ---------------------------------------------------------------------------------
def state_dict_bytes(state: dict[str, torch.Tensor]) -> bytes:
    # safetensors refuses shared storage and non-contiguous views: hand it clean copies.
    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    return st_save_bytes(clean)


def save_weights(path: str | Path, state: dict[str, torch.Tensor]) -> tuple[str, int]:
    """Write a state dict atomically; return its (sha256, size in bytes)."""
    data = state_dict_bytes(state)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest(), len(data)
