"""Multi-process training on ``torch.distributed``: one process per rank, launched by torchrun.

A run is distributed when the launcher's environment says so (``WORLD_SIZE`` > 1, set by
``torchrun`` or by ``forge run ... --nproc K``, which calls ``torch.distributed.run`` itself).
Without it every function here is a cheap no-op, so single-process runs are unchanged.

The contract the trainer builds on (docs/distributed.md):

* **Replicated bookkeeping, sharded compute.** Every rank holds the same data, draws the same
  global batch from the same seeded stream, and makes the same halting and refill decisions on
  the *global* batch; rank ``r`` runs the model only on its rows ``[r*b, (r+1)*b)``. So the
  examples are split between ranks without overlap, and every rank takes the same number of
  optimizer steps (the refill keeps every row busy).
* **Agreement.** Gradients are averaged by DDP or FSDP (:mod:`agent_forge.parallel`); skip/stop
  decisions and the clock are reduced
  with :func:`agree`, per-row outputs are gathered with :func:`gather_rows`.
* **Rank 0 writes** (:func:`is_main`): checkpoints, metrics, artifacts, reports.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch
import torch.distributed as dist

BACKEND_ENV = "FORGE_DIST_BACKEND"
TIMEOUT_ENV = "FORGE_DIST_TIMEOUT_S"


def launched() -> bool:
    """True when a launcher (torchrun) started this process as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank_from_env() -> int:
    """This process's rank as the launcher set it (also after the group is shut down)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def check_backend(name: str) -> None:
    """Refuse a ``--backend`` that torch.distributed does not know or this torch build lacks."""
    from agent_forge.errors import ConfigError

    known = [b for b in dist.Backend.backend_list if b not in ("undefined", "fake")]
    if name not in known:
        raise ConfigError(f"--backend {name!r}: not a torch.distributed backend; use gloo (CPU) or nccl (CUDA)"
                          f" (known: {', '.join(known)})")
    if not dist.is_available() or not dist.is_backend_available(name):
        raise ConfigError(f"--backend {name!r}: this torch build has no {name} support; use gloo"
                          f"{' (nccl needs a CUDA build of torch and a GPU)' if name == 'nccl' else ''}")


def init_from_env() -> bool:
    """Join the process group that the launcher described; returns whether the run is distributed.

    Backend: ``$FORGE_DIST_BACKEND`` if set (``gloo``, ``nccl``), else NCCL with CUDA and gloo
    without. ``$FORGE_DIST_TIMEOUT_S`` (default 300) bounds how long a collective waits for a
    rank that has stopped answering before the job fails instead of hanging.
    """
    if not launched():
        return False
    if dist.is_initialized():
        return True
    backend = os.environ.get(BACKEND_ENV) or default_backend()
    if backend == "nccl" and torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
    timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "300")))
    dist.init_process_group(backend=backend, timeout=timeout)
    return True


def shutdown(*, sync: bool = False) -> None:
    """Leave the process group (a no-op when not distributed).

    ``sync=True`` (the normal end of a run) first waits at a barrier for every rank: a rank that
    tears its gloo group down while a peer's background thread still talks to it can make that
    peer abort at exit ("terminate called without an active exception"). After an error the
    barrier is skipped, since a failed peer would never reach it.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if sync:
        try:
            dist.barrier()
        except RuntimeError:  # a peer already left; leaving now is all that is left to do
            pass
    dist.destroy_process_group()


def _device_for_collectives() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def agree(values: list[float], op: str = "max") -> list[float]:
    """Reduce a few scalars across ranks (``max``, ``min`` or ``sum``) so every rank decides alike."""
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=_device_for_collectives())
    dist.all_reduce(t, op={"max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN, "sum": dist.ReduceOp.SUM}[op])
    return t.cpu().tolist()


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows (same shape on every rank) in rank order."""
    if not active():
        return t
    dev = _device_for_collectives()
    local = t.detach().to(dev).contiguous()
    parts = [torch.empty_like(local) for _ in range(world_size())]
    dist.all_gather(parts, local)
    return torch.cat(parts).to(t.device)


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. the run directory it picked)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if active():
        dist.barrier()


def local_rows(batch_size: int) -> slice:
    """This rank's rows of a global batch of ``batch_size``."""
    b = batch_size // world_size()
    return slice(rank() * b, (rank() + 1) * b)
