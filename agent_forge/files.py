"""Files written whole or not at all, and their digests.

Every file agent-forge writes goes through :func:`atomic_write_to`: a temporary file beside the
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
from safetensors.torch import save_file


# -- atomic writes ---------------------------------------------------------------------------
def atomic_write_to(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` with the name of a temporary file beside ``path`` (for writers that
    take a file name, like safetensors' ``save_file``), flush it to disk, then rename it to
    ``path``: ``path`` holds either the old or the new content, never a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp makes the file 0600, and so does safetensors' writer; the file it becomes gets
        # the mode any new file would (0666 less the umask), so an export meant for sharing is
        # readable by others. Set after the writer, which may have made the file anew.
        os.chmod(tmp, 0o666 & ~current_umask())
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_stream(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """:func:`atomic_write_to` for writers that take an open binary file (``np.save``,
    ``torch.save``), so a large payload is streamed, never copied in memory."""
    def to_file(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            write(f)

    atomic_write_to(path, to_file)


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
def writable_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` as safetensors can write it: each tensor on the CPU, contiguous and with a
    storage no earlier entry uses (safetensors refuses entries that share one). Only a tensor that
    is not so (a GPU tensor, a strided view, a tied or sliced weight sharing an earlier entry's
    storage) is copied; the rest are handed over as they are, because a copy of a whole training
    state is as large as the state (docs/performance.md, "Saving without copies")."""
    out: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for key, value in state.items():
        tensor = value.detach()
        if tensor.device.type != "cpu":
            tensor = tensor.to("cpu").contiguous()
        elif not tensor.is_contiguous():
            tensor = tensor.contiguous()  # a copy of its own
        elif tensor.untyped_storage().data_ptr() in storages:
            tensor = tensor.clone()
        if tensor.numel():
            storages.add(tensor.untyped_storage().data_ptr())
        out[key] = tensor
    return out


def save_weights(path: str | Path, state: dict[str, torch.Tensor]) -> tuple[str, int]:
    """Write a state dict atomically; return its (sha256, size in bytes).

    safetensors' ``save_file`` writes each tensor from its own memory, so saving costs no copy of
    the state (building the file as ``bytes`` first cost up to four: a 318M-parameter LM's
    end-of-training checkpoint, 5 GB of weights, EMA and Adam moments, was killed for memory).
    The digest is read back from the written file."""
    tensors = writable_tensors(state)
    atomic_write_to(path, lambda tmp: save_file(tensors, str(tmp)))
    return sha256_file(path), Path(path).stat().st_size
