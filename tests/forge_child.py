"""``forge`` in a child process that stops at a point the test names and waits there (test only).

A test that signals or kills a run must not guess when to do it: a delay or a poll races the
run, which on a loaded machine may be several steps further, or finished, when the signal lands.
Here the run itself says where it is and waits::

    python tests/forge_child.py ARGS...          # the same arguments as `forge`

with ``FORGE_TEST_PAUSE=WHERE:N``, WHERE one of

* ``before_step`` — before training step N+1 starts: every checkpoint up to step N is on disk;
* ``after_step`` — right after optimizer step N (before the loop saves or logs it);
* ``after_generation`` — after EvoMerge saved generation N's checkpoint.

There the child prints ``paused WHERE N rank R`` on stdout (flushed) and waits until a signal
arrives. SIGINT or SIGTERM goes to the run's own handler (which asks the run to stop) and the
run goes on from where it waited; SIGKILL ends it where it waits. ``FORGE_TEST_PAUSE_RANK=R``
pauses only that rank of a multi-process run (default: every rank). Ranks started by
``--nproc`` run this file too: torch.distributed.run is pointed at it instead of
``-m agent_forge``. ``FORGE_TEST_REPEAT_WINDOW_S`` replaces the window in which a repeated
signal counts as the same interrupt (0: every signal counts).
"""

from __future__ import annotations

import os
import sys
import time

# Run as a script, this file's folder (tests/) comes first on sys.path, and its tests/agent_forge/
# folder would shadow the package: take it off.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

# A plain flag, not a threading.Event: the signal handler runs in the main thread, possibly while
# that thread holds the Event's (non-reentrant) lock inside wait(), and set() would then wait
# for it forever.
_signalled = [False]


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _pause(where: str, n: int) -> None:
    wanted = os.environ.get("FORGE_TEST_PAUSE_RANK")
    if wanted is not None and int(wanted) != _rank():
        return
    sys.stdout.write(f"paused {where} {n} rank {_rank()}\n")
    sys.stdout.flush()
    # A signal that arrived before this point (another rank paused first) counts too.
    while not _signalled[0]:
        time.sleep(0.05)


def install() -> None:
    """Patch the trainer, EvoMerge's checkpoints, the signal handler and the rank launcher."""
    spec = os.environ.get("FORGE_TEST_PAUSE", "")
    where, _, number = spec.partition(":")
    target = int(number) if number else -1

    from agent_forge.phases.cognate import interrupts

    window = os.environ.get("FORGE_TEST_REPEAT_WINDOW_S")
    if window is not None:
        interrupts.REPEAT_WINDOW_S = float(window)
    handle = interrupts.Interrupts._handle

    def noting_handle(self, signum, frame):  # type: ignore[no-untyped-def]
        _signalled[0] = True
        handle(self, signum, frame)

    interrupts.Interrupts._handle = noting_handle

    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):  # outside training (EvoMerge) too
        previous = signal.getsignal(sig)
        if callable(previous):
            def chained(signum, frame, previous=previous):  # type: ignore[no-untyped-def]
                _signalled[0] = True
                previous(signum, frame)

            signal.signal(sig, chained)

    if where in ("before_step", "after_step"):
        from agent_forge.phases.cognate.trainer import DeepSupervisionTrainer

        step = DeepSupervisionTrainer._train_step

        def pausing_step(self, state):  # type: ignore[no-untyped-def]
            if where == "before_step" and state.step == target:
                _pause(where, target)
            stepped = step(self, state)
            if where == "after_step" and state.step == target and stepped:
                _pause(where, target)
            return stepped

        DeepSupervisionTrainer._train_step = pausing_step
    elif where == "after_generation":
        from agent_forge.phases.evomerge.checkpoints import GenerationCheckpoints

        save = GenerationCheckpoints.save

        def pausing_save(self, generation, state):  # type: ignore[no-untyped-def]
            folder = save(self, generation, state)
            if generation == target:
                _pause(where, target)
            return folder

        GenerationCheckpoints.save = pausing_save

    import torch.distributed.run as torchrun

    launch = torchrun.main

    def launch_this_file(args=None):  # type: ignore[no-untyped-def]
        args = list(args or [])
        if "--module" in args and args[args.index("--module") + 1] == "agent_forge":
            i = args.index("--module")
            args[i:i + 2] = [os.path.abspath(__file__)]
        return launch(args)

    torchrun.main = launch_this_file


if __name__ == "__main__":
    install()
    from agent_forge.cli import main

    main(sys.argv[1:])
