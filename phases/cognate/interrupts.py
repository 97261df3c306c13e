"""SIGINT and SIGTERM during training: a flag the loop reads at step boundaries.

The first signal only sets :attr:`Interrupts.signum`; the step in flight finishes, the trainer
saves a checkpoint of that step boundary and stops (see the trainer's loop). A second signal
acts at once: Python's own behaviour comes back (KeyboardInterrupt for SIGINT, termination for
SIGTERM). Checkpoints are written to a temporary folder and renamed, so even that abrupt exit
leaves the last good checkpoint intact.

A repeat within :data:`REPEAT_WINDOW_S` of the first signal counts as the same interrupt: a
terminal's Ctrl-C reaches every process of a multi-process run directly *and* through the
launcher (torch.distributed.run forwards the signal it got to each rank a moment later).
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any, Callable

REPEAT_WINDOW_S = 1.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """``with Interrupts() as interrupts:`` ... ``if interrupts.signum is not None: stop``.

    ``on_first(signum)``, if given, is called by the first signal itself (and may raise, which
    ends the guarded block at once): for work such as an evaluation that has no step boundary
    worth waiting for and nothing to save.
    """

    def __init__(self, on_first: Callable[[int], None] | None = None) -> None:
        self._on_first = on_first
        self.signum: int | None = None
        self._first_at = 0.0
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def __enter__(self) -> "Interrupts":
        # Signal handlers can only be set from the main thread; elsewhere (a run embedded in a
        # worker thread) interrupts keep their default behaviour.
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                if signal.getsignal(sig) is signal.SIG_IGN:
                    continue  # ignored on purpose (nohup, a background job): leave it so
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.signum is None:
            self.signum, self._first_at = signum, now
            if self._on_first is not None:
                self._on_first(signum)
            return
        if now - self._first_at < REPEAT_WINDOW_S:
            return  # the same interrupt, forwarded by a launcher
        # A second, deliberate interrupt: behave as if we had never caught it.
        previous = self._previous.get(signum, signal.SIG_DFL)
        self.__exit__()
        if callable(previous):
            previous(signum, frame)
        else:
            signal.raise_signal(signum)  # SIG_DFL is back: this ends the process
