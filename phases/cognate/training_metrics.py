"""Training metrics between two log lines, and the progress bar that shows them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from agent_forge import distributed as dist
from agent_forge.progress import PROGRESS_LINE_EVERY_S, TerminalBar


class MetricsAccumulator:
    """Training metrics summed between two log lines."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.steps = 0
        self.loss = {}  # name -> sum
        self.token_correct = 0.0
        self.token_total = 0.0
        self.seq_correct = 0.0
        self.rows = 0
        self.finished = 0
        self.finished_steps = 0.0
        self.finished_correct = 0.0

    def add(self, state: Any, done: torch.Tensor) -> None:
        self.steps += 1
        for name, value in state.losses.items():
            self.loss[name] = self.loss.get(name, 0.0) + float(value.detach())
        self.token_correct += float(state.token_correct.float().sum())
        self.token_total += state.token_correct.numel()
        self.seq_correct += float(state.seq_correct.float().sum())
        self.rows += state.seq_correct.numel()
        self.finished += int(done.sum())
        self.finished_steps += float(state.sup_steps[done].float().sum())
        self.finished_correct += float(state.seq_correct[done].float().sum())

    def flush(self, state: Any) -> dict[str, float]:
        n = max(self.steps, 1)
        if self.loss:
            # Each rank summed the loss of its own rows; their mean is the global batch's loss.
            names = sorted(self.loss)
            sums = dist.agree([self.loss[k] for k in names], "sum")
            self.loss = {k: v / dist.world_size() for k, v in zip(names, sums)}
        row: dict[str, float] = {f"loss/{k}": v / n for k, v in self.loss.items()}
        row["loss"] = sum(self.loss.values()) / n
        row["train_token_accuracy"] = self.token_correct / max(self.token_total, 1)
        row["train_exact_accuracy"] = self.seq_correct / max(self.rows, 1)
        row["finished"] = float(self.finished)
        if self.finished:
            # Averages over the samples that halted in this window; a window where none did has
            # none (not 0: no sample halts after 0 supervision steps).
            row["train_exact_at_halt"] = self.finished_correct / self.finished
            row["mean_sup_steps"] = self.finished_steps / self.finished
        self.reset()
        return row

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.__dict__.update(s)


@dataclass
class LogWindow:
    """Where the current log window started: time, step and finished examples."""

    t: float
    step: int
    examples: int

    def close(self, state: Any, batch_size: int) -> dict[str, float]:
        """The window's metrics row (global figures, all-reduced); the next window starts now."""
        now = time.monotonic()
        dt = max(now - self.t, 1e-9)
        row = state.accumulator.flush(state)
        row.update(step=state.step, elapsed_s=round(state.elapsed_s, 2),
                   lr=state.optimizer.param_groups[0]["lr"], grad_norm=state.grad_norm,
                   examples_per_s=(state.examples_finished - self.examples) / dt,
                   sup_steps_per_s=(state.step - self.step) * batch_size / dt,
                   early_stop_rate=state.early_stop_rate, nan_skipped=state.nan_skipped,
                   max_sup_steps=state.max_sup_steps)
        if hasattr(state.model, "step_scale_values"):
            row.update(state.model.step_scale_values())
        row.update(model_metrics(state.model))
        self.t, self.step, self.examples = now, state.step, state.examples_finished
        return row


def model_metrics(model: Any) -> dict[str, float]:
    """The optional ``model.metrics()`` (docs/plugins.md, the model protocol): what the model
    measured in its last forward, averaged over the ranks (each saw its own rows)."""
    read = getattr(model, "metrics", None)
    values = read() if callable(read) else {}
    if not values or not dist.active():
        return dict(values)
    names = sorted(values)
    sums = dist.agree([float(values[k]) for k in names], "sum")
    return {k: v / dist.world_size() for k, v in zip(names, sums)}


class ProgressBar(TerminalBar):
    """Training progress where the user can see it.

    On a terminal: a rich bar on the shared console with step/total (or time/budget), elapsed
    and time left, loss, exact accuracy at halt, supervision steps and examples/s. Elsewhere (a
    redirected log: nohup, CI, a cluster job): a ``train.progress`` log line at most every
    ``every_s`` seconds, with the same figures and the ETA, in the log's own format (JSON lines
    unless ``--console-logs``). ``enabled=False`` (``--no-progress``, ranks other than 0): neither.
    """

    def __init__(self, enabled: bool, total: int | None, minutes: float | None, start_step: int,
                 *, every_s: float = PROGRESS_LINE_EVERY_S, log: Any = None) -> None:
        from agent_forge.logging import console

        self.total, self.minutes, self.every_s, self.log = total, minutes, every_s, log
        self.plain = enabled and not console.is_terminal and log is not None
        self.last_line = float("-inf")
        self.by_time = total is None
        done = "{task.completed:.0f}/{task.total:.0f} s" if self.by_time else "step {task.completed:.0f}/{task.total:.0f}"

        def columns(rp: Any) -> list[Any]:
            return [rp.TextColumn("[bold]train"), rp.BarColumn(bar_width=24), rp.TextColumn(done),
                    rp.TimeElapsedColumn(), rp.TextColumn("eta"), rp.TimeRemainingColumn(),
                    rp.TextColumn("{task.description}")]

        super().__init__(enabled, columns, total=(minutes * 60 if self.by_time else total),
                         completed=0 if self.by_time else start_step)

    def track(self, state: Any) -> None:
        """Move the bar to the state's step (or elapsed time, for a time budget)."""
        self.set(completed=state.elapsed_s if self.by_time else state.step)

    def update(self, state: Any) -> None:
        """After each log row: refresh the bar's figures, or write a plain line if it is time."""
        m = state.metrics
        figures = (f"loss {m.get('loss', 0):.3f} exact {_or_dash(m, 'train_exact_at_halt', '.3f')}"
                   f" steps {_or_dash(m, 'mean_sup_steps', '.1f')} {m.get('examples_per_s', 0):.0f} ex/s")
        if self.drawing:
            self.set(description=figures)
        elif self.plain and time.monotonic() - self.last_line >= self.every_s:
            self.last_line = time.monotonic()
            self.log.info("train.progress", step=state.step, total_steps=self.total,
                          elapsed_s=round(state.elapsed_s, 1), eta_s=self._eta(state), loss=round(m.get("loss", 0), 4),
                          exact_at_halt=_rounded(m.get("train_exact_at_halt")),
                          mean_sup_steps=_rounded(m.get("mean_sup_steps")),
                          examples_per_s=round(m.get("examples_per_s", 0), 1))

    def _eta(self, state: Any) -> float | None:
        """Seconds left by the budget that runs out first, at the pace so far; None if unknown."""
        left = []
        if self.total and state.step:
            left.append(state.elapsed_s / state.step * (self.total - state.step))
        if self.minutes:
            left.append(self.minutes * 60 - state.elapsed_s)
        return round(max(0.0, min(left)), 1) if left else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _or_dash(row: dict[str, float], key: str, spec: str) -> str:
    """A metric of a window where no sample halted is absent: show "-" rather than a fake 0."""
    return format(row[key], spec) if key in row else "-"
