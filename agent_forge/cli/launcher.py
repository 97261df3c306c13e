"""``forge run ... --nproc K``: the same command re-run as K ranks under torch.distributed.run.

The launching process checks everything a rank would refuse before any rank starts (the caller
does, through ``PhaseRunner.check``), starts the ranks, waits, and turns how they ended into one
message: an interrupt (:class:`RunInterrupted`) or the first rank that died (:class:`ForgeError`),
each naming what the phase saved. It never reads a phase's checkpoint files: the phase says what
it saved (:meth:`agent_forge.runner.Phase.newest_checkpoint`: Cognate's "step 12", EvoMerge's
"generation 3").
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from agent_forge.errors import ForgeError, RunInterrupted
from agent_forge.runner import SavedCheckpoint

#: What the launcher asks after the ranks stopped: the newest checkpoint the phase saved, if any.
NewestCheckpoint = Callable[[], Optional[SavedCheckpoint]]


def without_flag(argv: list[str], flag: str) -> list[str]:
    """``argv`` without ``flag`` and its value (``--out DIR`` or ``--out=DIR``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == flag:
            skip = True
            continue
        if arg.startswith(flag + "="):
            continue
        out.append(arg)
    return out


def resume_command(argv: list[str], run_dir: Path) -> str:
    """The command that continues an interrupted run: the same flags, ``--out RUN_DIR --resume``."""
    rest = [a for a in without_flag(argv, "--out") if a != "--resume"]
    return shlex.join(["forge", *rest, "--out", str(run_dir), "--resume"])


def interrupted(signal_name: str, run_dir: Path, saved: SavedCheckpoint | None) -> RunInterrupted:
    """Every rank stopped on ``signal_name`` after saving what it had: say what is on disk."""
    said = f"the newest checkpoint is {saved}" if saved is not None else "no checkpoint was saved"
    exc = RunInterrupted(f"interrupted by {signal_name}; every rank stopped, {said}", signal_name=signal_name,
                         step=saved.position if saved is not None else -1,
                         checkpoint=saved.folder if saved is not None else None,
                         exit_code=128 + int(getattr(signal, signal_name)))
    exc.run_dir = run_dir
    return exc


def rank_failed(failures: dict[int, Any], saved: SavedCheckpoint | None) -> ForgeError:
    """A rank died (torchrun's ``ChildFailedError.failures``): name the first, how the others were
    stopped, and whether ``--resume`` has a checkpoint to continue from."""

    def how(failure: Any) -> str:
        return (f"killed by signal {failure.signal_name()}" if failure.exitcode < 0
                else f"exit code {failure.exitcode}")

    # The first rank to fail is the cause; the agent then stopped the others (SIGTERM).
    ordered = sorted(failures.items(), key=lambda kv: kv[1].timestamp)
    first_rank, first = ordered[0]
    others = "".join(f"; rank {r} was stopped ({how(f)})" for r, f in ordered[1:])
    said = (f"the newest checkpoint, {saved}, is intact: rerun with --resume" if saved is not None
            else "no checkpoint was saved: rerun without --resume")
    return ForgeError(f"distributed run failed: rank {first_rank} (pid {first.pid}) died first, {how(first)}"
                      f"{others}. {said[:1].upper()}{said[1:]}.")


def launch_ranks(nproc: int, backend: Optional[str], run_dir: Path, newest_checkpoint: NewestCheckpoint) -> None:
    """Re-run this very command as ``nproc`` ranks under torch.distributed.run, and wait.

    Every rank gets ``--out run_dir``. A rank that dies brings the others down (torchrun's agent
    stops them) and this raises a ForgeError naming the rank and how it ended. SIGINT/SIGTERM
    reach the ranks (directly from a terminal, or forwarded by torchrun's agent); they finish the
    step in flight, save a checkpoint of it and exit 130/143, and this raises
    :class:`RunInterrupted`; either names ``newest_checkpoint()``, what the phase says it saved.

    The agent waits ``TORCH_ELASTIC_SHUTDOWN_TIMEOUT`` seconds for ranks it forwarded a signal
    to before it SIGKILLs them; torch's default (30 s) can be shorter than one step plus a
    checkpoint of a large model, so unless set it is the collective timeout
    (``FORGE_DIST_TIMEOUT_S``, default 300 s), which bounds a stuck rank anyway. A rank that
    fails on its own is still stopped within torch's fixed 30 s.
    """

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    from agent_forge.distributed import TIMEOUT_ENV

    if backend:
        os.environ["FORGE_DIST_BACKEND"] = backend
    os.environ.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(int(float(os.environ.get(TIMEOUT_ENV, "300")))))
    argv = [*without_flag(without_flag(without_flag(sys.argv[1:], "--nproc"), "--backend"), "--out"),
            "--out", str(run_dir)]
    # torchrun makes a log folder per launch (``torchelastic_*`` in the temp folder when not told
    # where) and never removes it: every multi-process run used to leave one behind. Ours goes.
    logs = tempfile.TemporaryDirectory(prefix="forge-torchrun-")
    try:
        torchrun(["--standalone", f"--nproc-per-node={nproc}", "--monitor-interval=0.5",
                  f"--log-dir={logs.name}", "--module", "agent_forge", *argv])
    except SignalException as exc:  # this process got the signal; the agent forwarded it and waited for the ranks
        raise interrupted(signal.Signals(exc.sigval).name, run_dir, newest_checkpoint()) from None
    except ChildFailedError as exc:
        codes = {f.exitcode for f in exc.failures.values()}
        if codes <= {130, 143}:  # every rank stopped on an interrupt, after its checkpoint
            raise interrupted("SIGINT" if 130 in codes else "SIGTERM", run_dir, newest_checkpoint()) from None
        raise rank_failed(exc.failures, newest_checkpoint()) from None
    finally:
        logs.cleanup()
