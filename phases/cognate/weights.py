"""The weights a run can evaluate and hand off, and the one path that evaluates them.

``raw`` is the live model; callbacks may offer more (EMA offers ``ema``) through
:meth:`~agent_forge.phases.cognate.callback.Callback.eval_weights`. :func:`evaluate_weights`
is used both for the evaluations during training and for the final one.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

from agent_forge import parallel
from agent_forge.data import TaskData
from agent_forge.phases.common.evaluation import EvalContext, run_evaluators, step_curve
from agent_forge.phases.cognate.state import TrainState
from agent_forge.progress import PlainLines, TerminalBar


def offered_weights(state: TrainState) -> dict[str, dict[str, torch.Tensor]]:
    """Weights the callbacks offer for evaluation, by label."""
    offers: dict[str, dict[str, torch.Tensor]] = {}
    for cb in state.callbacks.values():
        extra = cb.eval_weights(state)
        if extra is not None:
            label, weights = extra
            offers[label] = weights
    return offers


def weight_labels(state: TrainState) -> list[str]:
    """The weights to evaluate: ``raw`` (the live model), then any a callback offers (``ema``)."""
    return ["raw", *offered_weights(state)]


def handoff_label(state: TrainState) -> str:
    """The weights a run hands off: those a callback offers (EMA's, when the ``ema`` callback is
    on; the first offer, in config order, if several callbacks offered), else ``raw``.

    The rule reads the config, never a score. Handing off whichever of raw and EMA scored higher
    on the eval split made every reported figure the larger of two noisy measurements taken on the
    very split it is reported on (an upward bias); the official TRM code evaluates and keeps the
    EMA weights, as this does. Both are still evaluated and reported (``raw/...``, ``ema/...``).
    """
    offered = list(offered_weights(state))
    return offered[0] if offered else "raw"


@contextlib.contextmanager
def swapped_in(state: TrainState, label: str) -> Iterator[nn.Module]:
    """The live model holding the weights called ``label`` for the duration of the block.

    Offered weights are copied into the model's parameters and the live ones are put back
    afterwards, bit for bit. Swapping in place, rather than evaluating a copy of the model,
    works the same for a sharded (FSDP) model, which cannot be copied, and keeps the live
    buffers (a memory bank) in use.
    """
    # Under FSDP, start and end with the parameters sharded (at rest): the offer is laid out
    # like the shards, and an evaluation's forward leaves the root unit gathered.
    parallel.reshard(state.model)
    offered = offered_weights(state)[label] if label != "raw" else {}
    params = dict(state.model.named_parameters())
    unknown = sorted(set(offered) - set(params))
    if unknown:
        raise ValueError(f"weights {label!r} name parameters the model does not have: {unknown[:5]}")
    with torch.no_grad():
        live = {name: params[name].detach().clone() for name in offered}
        for name, value in offered.items():
            params[name].copy_(value)
    try:
        yield state.model
    finally:
        parallel.reshard(state.model)
        with torch.no_grad():
            for name, value in live.items():
                params[name].copy_(value)


@dataclass
class WeightsEvaluation:
    #: label -> evaluator metrics (``exact_accuracy``, ...)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    #: label -> texts the evaluators produced (generated samples), where any did
    texts: dict[str, Any] = field(default_factory=dict)
    #: label -> accuracy after every supervision step and at halt
    #: (:func:`~agent_forge.phases.common.evaluation.step_curve`), where the evaluators predicted
    curves: dict[str, Any] = field(default_factory=dict)

    def flat(self) -> dict[str, float]:
        """``{"raw/exact_accuracy": ..., "ema/exact_accuracy": ...}``"""
        return {f"{label}/{k}": v for label, m in self.metrics.items() for k, v in m.items()}


def evaluate_weights(trainer: Any, state: TrainState, task: TaskData, host: Any, evaluators: list[str],
                     batch_size: int, *, progress: bool = False) -> WeightsEvaluation:
    """Run ``evaluators`` on ``task``'s eval split with every weights label the trainer offers.
    ``progress``: a bar over the examples of every label, on a terminal (the final evaluation
    can take a while, and a silent screen looks hung)."""
    result = WeightsEvaluation()
    labels = trainer.weight_labels(state)
    with EvalBar(progress, len(task.eval) * len(labels)) as bar:
        for label in labels:
            bar.label(label)
            with trainer.weights(state, label) as model:
                ctx = EvalContext(model, task, state.device, batch_size=batch_size, precision=state.precision,
                                  loss=getattr(state.config, "loss", "softmax"), on_batch=bar.advance)
                result.metrics[label] = run_evaluators(host, evaluators, ctx)
                if "predictions" in ctx._cache:  # from the evaluators' own pass: no extra forward
                    result.curves[label] = step_curve(ctx)
            if ctx.texts:
                result.texts[label] = ctx.texts
    return result


class EvalBar(TerminalBar):
    """A rich bar "eval <label> n/N examples" on the shared console; off a terminal, an
    ``eval.progress`` log line when it starts and then every ``PROGRESS_LINE_EVERY_S`` seconds
    (a final evaluation of text or ARC tasks, or ``forge eval --samples 64``, can take minutes).
    ``label(name)`` names what is evaluated (the lines' ``field``: the weights label in training,
    the data file in ``forge eval``); ``advance(n)`` counts examples (an ``on_batch``)."""

    def __init__(self, enabled: bool, total: int, *, field: str = "weights") -> None:
        def columns(rp: Any) -> list[Any]:
            return [rp.TextColumn("[bold]eval {task.description}"), rp.BarColumn(bar_width=24),
                    rp.MofNCompleteColumn(), rp.TextColumn("examples"), rp.TimeElapsedColumn()]

        super().__init__(enabled, columns, total=total, transient=True)
        self.lines = PlainLines(enabled, "eval.progress")
        self.total, self.done, self.current, self.started = total, 0, "", time.monotonic()
        self.field = field

    def label(self, label: str) -> None:
        self.current = label
        self.set(description=label)
        self._line()

    def advance(self, amount: float) -> None:
        super().advance(amount)
        self.done += int(amount)
        self._line()

    def _line(self) -> None:
        self.lines.tick(**{self.field: self.current}, examples=self.done, total=self.total,
                        elapsed_s=round(time.monotonic() - self.started, 1))
