"""``forge show``: watch a model think — one puzzle's answer after every supervision step.

The artifact is loaded (and verified) as ``forge eval`` loads it, the task is rebuilt on the
user's file by the dataset's ``eval_file`` reader (:func:`task_from_file`), and the model runs
its supervision steps on the one puzzle from a fresh carry, as inference does
(:func:`agent_forge.phases.common.evaluation.predict`). After each step the answer is the argmax
of the logits; it is decoded into grid cells by the task's optional ``TaskData.decode_grid``
(token ids in rows when the task has none). Per step the view marks:

* **changed** cells: different from the previous step (step 1: from the question), in bold;
* **wrong** cells: different from the answer where the answer is scored, in red and with a
  trailing marker readable without colour (``*``, or ``!`` for tasks whose cells use ``*``);
* the Q-head's halting probability ``sigmoid(q)``, and ``halt`` at the first step with
  ``q > 0`` (where inference takes the answer); a model without a Q-head says so.

:func:`trace_puzzle` computes a :class:`Trace`; :func:`render_trace` makes the terminal view,
:func:`write_gif` the animation (one frame per step).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.evaluate import is_dataset_folder, task_from_file, task_from_folder
from agent_forge.phases.common.loading import load_model


@dataclass
class StepView:
    """The answer after one supervision step. Cell lists are row-major, like the tokens."""

    step: int                       # 1-based
    tokens: list[int]
    cells: list[list[str]]
    changed: list[bool]
    wrong: list[bool]
    q_logit: float | None           # None: the model has no Q-head
    halt_prob: float | None         # sigmoid(q_logit)
    halts: bool                     # the first step with q > 0

    @property
    def n_wrong(self) -> int:
        return sum(self.wrong)


@dataclass
class Trace:
    artifact: str
    task: str
    data: str
    index: int
    examples: int
    model_n_sup: int
    question: list[list[str]]
    answer: list[list[str]]
    scored: list[bool]              # which cells the answer scores (targets != ignore_index)
    steps: list[StepView]
    marker: str

    @property
    def has_q_head(self) -> bool:
        return bool(self.steps) and self.steps[0].q_logit is not None

    @property
    def halt_step(self) -> int | None:
        return next((s.step for s in self.steps if s.halts), None)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(halt_step=self.halt_step, has_q_head=self.has_q_head)
        return data


def _grid_decoder(task: Any):
    """The task's ``decode_grid``, or token ids in rows of ``info["size"]`` (else one row)."""
    if task.decode_grid is not None:
        return task.decode_grid
    seq = task.spec.seq_len
    size = task.spec.info.get("size")
    width = int(size) if isinstance(size, int) and size > 0 and seq % size == 0 else seq

    def ids(tokens: torch.Tensor) -> list[list[str]]:
        values = [str(v) for v in tokens.tolist()]
        return [values[r:r + width] for r in range(0, len(values), width)]
    return ids


def _flat(cells: list[list[str]]) -> list[str]:
    return [c for row in cells for c in row]


@torch.no_grad()
def trace_puzzle(host: Any, manifest: Path, data: Path, index: int, *, n_sup: int | None = None,
                 split_name: str = "test") -> Trace:
    """Run puzzle ``index`` (0-based: the file's first data row, or the example of a dataset
    folder's ``split_name``) of ``data`` through the artifact's model for ``n_sup`` supervision
    steps (default: the model's own ``n_sup``)."""
    artifact, model = load_model(host, manifest)
    name = (artifact.task.info.get("dataset") or {}).get("name", artifact.task.name)
    if is_dataset_folder(Path(data)):
        task = task_from_folder(host, artifact, Path(data), split_name, Path(manifest))
    else:
        fix = (f"Pass a file in the {name} layout (CSV question,answer), e.g. one made by:"
               f" forge data generate {name} --count 10 --out puzzles.csv" if name != "official" else
               "Pass a dataset folder in the official layout (with train/ or test/ holding dataset.json)")
        if not Path(data).is_file():
            raise ConfigError(f"--data {data}: no such file. {fix}")
        try:
            task = task_from_file(host, artifact, data)
        except ConfigError as exc:
            reason = str(exc).removeprefix(f"{data}: ")
            raise ConfigError(
                f"--data {data}: not a data file of this artifact's task {name!r}: {reason}. {fix}") from None
    split = task.eval
    if not 0 <= index < len(split):
        raise ConfigError(f"--index {index}: {data} holds {len(split)} puzzle(s), numbered 0 to {len(split) - 1};"
                          f" pass --index between 0 and {len(split) - 1}")
    steps_to_run = int(n_sup if n_sup is not None else model.n_sup)
    if steps_to_run < 1:
        raise ConfigError(f"--n-sup {steps_to_run}: run at least one supervision step (--n-sup 1 or more)")
    decode = _grid_decoder(task)
    batch = split.batch(torch.tensor([index]))
    inputs, targets = batch["inputs"][0], batch["targets"][0]
    scored = (targets != task.spec.ignore_index).tolist()
    question = decode(inputs)
    answer = decode(torch.where(targets == task.spec.ignore_index, inputs, targets))
    was_training = model.training
    model.eval()
    views: list[StepView] = []
    try:
        carry = model.initial_carry(batch)
        previous = inputs.tolist()
        halted = False
        for step in range(1, steps_to_run + 1):
            carry, out = model(carry, batch)
            pred = out.logits.argmax(-1)[0]
            tokens = pred.tolist()
            q = None if out.q_halt_logits is None else float(out.q_halt_logits.float()[0])
            halts = q is not None and q > 0 and not halted
            halted |= halts
            views.append(StepView(
                step=step, tokens=tokens, cells=decode(pred),
                changed=[a != b for a, b in zip(tokens, previous)],
                wrong=[s and p != t for s, p, t in zip(scored, tokens, targets.tolist())],
                q_logit=q, halt_prob=None if q is None else 1.0 / (1.0 + math.exp(-q)), halts=halts))
            previous = tokens
    finally:
        model.train(was_training)
    labels = {c for grid in [question, answer, *(v.cells for v in views)] for c in _flat(grid)}
    marker = "!" if any("*" in c for c in labels) else "*"
    return Trace(artifact=artifact.id, task=name, data=str(data), index=index, examples=len(split),
                 model_n_sup=int(model.n_sup), question=question, answer=answer, scored=scored,
                 steps=views, marker=marker)


# -- the terminal view -----------------------------------------------------------------------
CHANGED_STYLE = "bold yellow"
WRONG_STYLE = "red"


def _cell_width(trace: Trace) -> int:
    grids = [trace.question, trace.answer, *(s.cells for s in trace.steps)]
    return max((len(c) for g in grids for c in _flat(g)), default=1)


def _grid_text(cells: list[list[str]], width: int, marker: str, changed: list[bool] | None = None,
               wrong: list[bool] | None = None) -> Any:
    from rich.text import Text

    text = Text()
    i = 0
    for r, row in enumerate(cells):
        if r:
            text.append("\n")
        for c, label in enumerate(row):
            is_wrong = bool(wrong and wrong[i])
            style = " ".join(s for s, on in ((CHANGED_STYLE, changed and changed[i]), (WRONG_STYLE, is_wrong)) if on)
            text.append(label.rjust(width), style=style or None)
            text.append(marker if is_wrong else " ", style=WRONG_STYLE if is_wrong else None)
            if c < len(row) - 1:
                text.append(" ")
            i += 1
    return text


def step_header(view: StepView, total: int) -> tuple[str, str]:
    """Two short lines: ``step 2/3 halt`` and ``p(halt) 0.731`` (or ``no halting head``)."""
    first = f"step {view.step}/{total}" + ("  halt" if view.halts else "")
    second = "no halting head" if view.halt_prob is None else f"p(halt) {view.halt_prob:.3f}"
    return first, second


def render_trace(trace: Trace) -> list[Any]:
    """Renderables for a rich console: a heading, the question and answer, one block per step
    (laid out side by side as the width allows), a legend and the outcome."""
    from rich.columns import Columns
    from rich.console import Group
    from rich.text import Text

    width = _cell_width(trace)
    total = len(trace.steps)
    cells = sum(trace.scored)
    blocks = [Group(Text("question", style="bold"), Text(""), _grid_text(trace.question, width, trace.marker)),
              Group(Text("answer", style="bold"), Text(""), _grid_text(trace.answer, width, trace.marker))]
    for view in trace.steps:
        first, second = step_header(view, total)
        blocks.append(Group(Text(first, style="bold"), Text(second),
                            _grid_text(view.cells, width, trace.marker, view.changed, view.wrong),
                            Text(f"{sum(view.changed)} changed, {view.n_wrong} wrong")))
    steps_note = f"{total} supervision steps" + (f" (--n-sup; the model's n_sup is {trace.model_n_sup})"
                                                 if total != trace.model_n_sup else "")
    heading = Text(f"{trace.task} puzzle {trace.index} of {trace.data} ({trace.examples} in all), {steps_note}\n"
                   f"artifact {trace.artifact}")
    legend = Text.assemble(("bold", CHANGED_STYLE), ": changed since the step before (step 1: the question); ",
                           (f"trailing {trace.marker}", WRONG_STYLE), ": wrong")
    last = trace.steps[-1]
    outcome = [f"after step {last.step}: {cells - last.n_wrong}/{cells} cells right"
               + (" (solved)" if last.n_wrong == 0 else "")]
    if not trace.has_q_head:
        outcome.append("no halting head: inference runs every step")
    elif trace.halt_step is None:
        outcome.append(f"the Q-head never said halt (q > 0) in {total} steps")
    else:
        at = trace.steps[trace.halt_step - 1]
        outcome.append(f"halts at step {at.step} (first q > 0) with {cells - at.n_wrong}/{cells} cells right")
    return [heading, Text(""), Columns(blocks, padding=(1, 3)), legend, *(Text(line) for line in outcome)]


# -- the animation ---------------------------------------------------------------------------
def check_gif_path(path: Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ConfigError(f"--gif {path}: the animation is a GIF; name the file with .gif, e.g. --gif show.gif")
    if path.is_dir():
        raise ConfigError(f"--gif {path}: is a folder; name the GIF file to write, e.g. --gif {path / 'show.gif'}")
    # The nearest folder that exists must be a folder: the missing ones below it are made.
    existing = next((p for p in path.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"--gif {path}: {existing} is a file, not a folder; choose another path")
    return path


def write_gif(trace: Trace, path: Path, *, fps: float = 1.0) -> Path:
    """The steps as a GIF, one frame per supervision step: changed cells on yellow, wrong cells
    red with the marker, the question's given cells grey. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.patches import Rectangle

    path = check_gif_path(path)
    # Before the figure exists: a failure here must not leave an Animation that was never saved
    # (matplotlib warns about it when it is collected).
    path.parent.mkdir(parents=True, exist_ok=True)
    rows, cols = len(trace.question), max(len(r) for r in trace.question)
    given = [q == a for q, a in zip(_flat(trace.question), _flat(trace.answer))]
    scale = 0.45 if max(rows, cols) > 6 else 0.7
    fig, ax = plt.subplots(figsize=(max(3.2, cols * scale), max(3.0, rows * scale + 0.8)))
    fig.subplots_adjust(left=0.05, right=0.95, bottom=0.03, top=0.85)
    total = len(trace.steps)

    def draw(i: int) -> list:
        view = trace.steps[i]
        ax.clear()
        ax.set_xlim(-0.05, cols + 0.05)
        ax.set_ylim(rows + 0.05, -0.05)
        ax.set_aspect("equal")
        ax.axis("off")
        for k, label in enumerate(_flat(view.cells)):
            r, c = divmod(k, cols)
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor="#ffe58a" if view.changed[k] else "white",
                                   edgecolor="#999999", linewidth=0.6))
            colour = "#c62828" if view.wrong[k] else ("#777777" if given[k] else "black")
            ax.text(c + 0.5, r + 0.55, label + (trace.marker if view.wrong[k] else ""), ha="center", va="center",
                    fontsize=11 if max(rows, cols) <= 9 else 7, color=colour,
                    fontweight="bold" if view.changed[k] else "normal")
        first, second = step_header(view, total)
        ax.set_title(f"{first}   {second}\n{sum(view.changed)} changed, {view.n_wrong} wrong", fontsize=9)
        return []

    anim = FuncAnimation(fig, draw, frames=total, blit=False, repeat=False)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.gif")
    try:
        anim.save(str(tmp), writer=PillowWriter(fps=fps))
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
