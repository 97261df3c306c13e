"""Test-time compute for recursive models: K noisy trajectories per puzzle, voting over the
task's symmetries, and the rules that pick one answer (``forge eval --samples/--augment``).

Per puzzle the candidates are ``C = A * K`` trajectories, candidate ``c = a * K + k``: symmetry
``a`` of the task (0 is the identity) applied to the question, and sample ``k`` of it. Sample 0
of every symmetry runs without noise, so candidate 0 is exactly today's evaluation (the
*noiseless* answer); samples ``k >= 1`` add Gaussian noise of relative scale ``noise`` to the
latent after every latent update (:class:`~agent_forge.models.protocol.LatentNoise`). All ``C``
rows of a batch of puzzles run as one batched forward per supervision step. Answers are
mapped back to the question's frame (``Symmetry.invert``) before anything compares them.

Selections (each a pure function of the candidates, ties going to the lowest candidate index,
so the noiseless answer wins every tie it is part of):

* ``q``: the candidate with the highest halting margin (``ModelOutput.halt_margin``: q_halt,
  or q_halt - q_continue) at the step its answer was taken — the Probabilistic TRM's rule;
* ``vote``: the answer whose candidates' summed ``sigmoid(q)`` is largest (a q-weighted vote;
  weight 1 each for a model without a Q-head);
* ``verify``: the highest-q candidate that the task's own checker accepts (Sudoku rules, a
  shortest maze path; no answer key), ``q`` where none passes. It uses task knowledge, so it is
  reported apart from the other two.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn

from agent_forge.data import Symmetry
from agent_forge.errors import ConfigError
from agent_forge.models.protocol import LatentNoise, accepts_noise
from agent_forge.phases.common.evaluation import autocast

SELECTIONS: tuple[str, ...] = ("q", "vote", "verify")
#: The relative latent noise ``forge eval --samples K`` uses when ``--noise`` is not given. How it
#: was chosen (on a validation set, never a reported one): docs/performance.md, "Thinking harder"
#: (0.4 is best for the main job's model, 0.2 for a weaker stand-in; 0.4 costs the stand-in less
#: than 0.2 costs the main job's model).
DEFAULT_NOISE = 0.4

Check = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Candidates:
    """Every trajectory's answer for ``N`` puzzles; ``C = augment * samples`` per puzzle."""

    #: (N, C, S) answers, in the question's frame.
    answers: torch.Tensor
    #: (N, C) halting margin at the step each answer was taken (NaN without a Q-head).
    q: torch.Tensor
    #: (N, C) supervision steps each trajectory ran (n_sup unless it exited early).
    steps: torch.Tensor
    samples: int
    augment: int
    noise: float
    n_sup: int
    #: Wall-clock seconds of the forward passes (the whole explore call, less ``compile_seconds``).
    seconds: float = 0.0
    #: Whether the forward ran compiled (``compile=True`` and compiling worked).
    compiled: bool = False
    #: Seconds of the compiling call (one throw-away supervision step on the first batch); 0 eager.
    compile_seconds: float = 0.0
    #: Why ``compile=True`` ran eager instead (None: it did not, or was not asked to).
    compile_fallback: str | None = None

    @property
    def trajectory_steps(self) -> int:
        """Supervision steps run over all trajectories (the compute spent, in example·steps)."""
        return int(self.steps.sum())

    def prefix(self, samples: int, augment: int) -> "Candidates":
        """The candidates of the first ``samples`` samples of the first ``augment`` symmetries
        (what a smaller run would have drawn from the same distributions)."""
        keep = torch.tensor([a * self.samples + k for a in range(augment) for k in range(samples)])
        frac = len(keep) / (self.samples * self.augment)
        return Candidates(self.answers[:, keep], self.q[:, keep], self.steps[:, keep], samples, augment,
                          self.noise, self.n_sup, self.seconds * frac, self.compiled)


# -- selection rules (pure) ---------------------------------------------------------------------
def _finite(q: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(q.float(), nan=-math.inf)


def select_q(q: torch.Tensor) -> torch.Tensor:
    """(N, C) margins -> (N,) the index of the highest; ties (and NaN) go to the lowest index."""
    q = _finite(q)
    best = q.max(dim=1, keepdim=True).values
    is_best = q == best
    return is_best.float().argmax(dim=1)  # the first True: argmax returns the first maximal index


def select_vote(answers: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(N, C, S) answers and (N, C) margins -> (N,) the index of a candidate (the first) of the
    answer with the largest summed ``sigmoid(q)`` (weight 1 where q is NaN). Ties between
    answers go to the one whose first candidate has the lowest index."""
    weights = torch.where(torch.isnan(q), torch.ones_like(q, dtype=torch.float64),
                          torch.sigmoid(q.double()))
    picks = []
    for n in range(answers.shape[0]):
        _, inverse = torch.unique(answers[n], dim=0, return_inverse=True)  # (C,) group of each candidate
        groups = int(inverse.max()) + 1
        score = torch.zeros(groups, dtype=torch.float64).index_add_(0, inverse, weights[n])
        first = torch.full((groups,), answers.shape[1], dtype=torch.long).scatter_reduce_(
            0, inverse, torch.arange(answers.shape[1]), reduce="amin")
        best = score == score.max()
        picks.append(int(first[best].min()))
    return torch.tensor(picks, dtype=torch.long)


def select_verify(answers: torch.Tensor, q: torch.Tensor, passes: torch.Tensor) -> torch.Tensor:
    """(N, C, S) answers, (N, C) margins and (N, C) bool checker verdicts -> (N,) the
    highest-q candidate that passes; :func:`select_q` where none does. Ties to the lowest index."""
    gated = torch.where(passes, _finite(q).clamp(min=-1e30), torch.full_like(q, -math.inf, dtype=torch.float32))
    return torch.where(passes.any(dim=1), select_q(gated), select_q(q))


def check_candidates(check: Check, questions: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """(N, S) questions and (N, C, S) answers -> (N, C) verdicts of the task's checker."""
    n, c, s = answers.shape
    flat_q = questions.unsqueeze(1).expand(n, c, s).reshape(n * c, s)
    return check(flat_q.long(), answers.reshape(n * c, s).long()).view(n, c)


def select(rule: str, cands: Candidates, questions: torch.Tensor | None = None,
           check: Check | None = None) -> torch.Tensor:
    """The (N,) picks of ``rule`` (``q``, ``vote`` or ``verify``; verify needs ``check``)."""
    if rule == "q":
        return select_q(cands.q)
    if rule == "vote":
        return select_vote(cands.answers, cands.q)
    if rule == "verify":
        if check is None or questions is None:
            raise ConfigError("--select verify: this task has no answer checker (Sudoku and maze have one);"
                              " use --select q or --select vote")
        return select_verify(cands.answers, cands.q, check_candidates(check, questions, cands.answers))
    raise ConfigError(f"--select {rule!r}: choose one of {', '.join(SELECTIONS)}")


def picked(cands: Candidates, index: torch.Tensor) -> torch.Tensor:
    """(N, S) the answers at the (N,) candidate indices."""
    return cands.answers[torch.arange(len(index)), index]


# -- running the trajectories -------------------------------------------------------------------
def _check_options(model: nn.Module, samples: int, noise: float, augment: int,
                   symmetries: Sequence[Symmetry] | None) -> None:
    if not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"--samples {samples!r}: must be an integer >= 1 (1: the noiseless trajectory only)")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ConfigError(f"--noise {noise!r}: must be a finite number >= 0 (relative to the latent's RMS)")
    if samples > 1 and noise > 0 and not accepts_noise(model):
        raise ConfigError(f"--samples {samples} --noise {noise}: {type(model).__name__} does not take exploration"
                          " noise (model protocol: accepts_noise); use --samples 1, or --noise 0 with --augment")
    if augment > 1 and (symmetries is None or len(symmetries) < augment):
        raise ConfigError(f"--augment {augment}: this task has no symmetries to vote over; use --augment 1")


@torch.inference_mode()
def explore(model: nn.Module, inputs: torch.Tensor, *, samples: int = 1, noise: float = 0.0,
            n_sup: int | None = None, batch_size: int = 256, device: torch.device | str = "cpu",
            seed: int = 0, symmetries: Sequence[Symmetry] | None = None, augment: int = 1,
            extras: dict[str, torch.Tensor] | None = None, early_exit: bool = False,
            precision: str = "fp32", on_batch: Callable[[int], None] | None = None,
            compile: bool = False) -> Candidates:
    """Run ``augment * samples`` trajectories on each question of ``inputs`` (N, S).

    ``batch_size`` counts rows of the model's batch (trajectories); a batch holds
    ``max(1, batch_size // C)`` whole puzzles. ``seed`` seeds one generator for all the noise
    (the same seed, inputs and batch size give the same draws). ``early_exit``: a trajectory
    stops at the first step its Q-head says halt (margin > 0) and leaves the batch; its answer
    and q are those of that step (default: every trajectory runs all ``n_sup`` steps).
    ``extras`` are per-question tensors the model reads (``puzzle_ids``), repeated per trajectory.
    ``compile``: run the supervision step through ``torch.compile`` (:func:`compiled_forward`;
    answers equal the eager ones up to float rounding, not bit for bit); every batch is then padded
    to the same rows so one graph serves them all. Where it cannot compile, or with
    ``early_exit`` (rows leave the batch: a new shape every step), it runs eager and
    ``Candidates.compile_fallback`` says why.
    """
    device = torch.device(device)
    _check_options(model, samples, noise, augment, symmetries)
    n_sup = int(n_sup or model.n_sup)
    syms = list(symmetries[:augment]) if symmetries is not None and augment > 1 else []
    c = augment * samples
    noisy = samples > 1 and noise > 0
    gen = torch.Generator(device=device).manual_seed(int(seed)) if noisy else None
    # The noise scale of each candidate: sample 0 of every symmetry is noiseless.
    scale_c = torch.tensor([0.0 if k == 0 else float(noise) for _ in range(augment) for k in range(samples)])
    per_batch = max(1, batch_size // c)
    was_training = model.training
    model.eval()
    answers, qs, steps_all = [], [], []
    forward: Callable[..., Any] = model
    compile_seconds, fallback = 0.0, None
    start_time = time.perf_counter()
    try:
        for start in range(0, len(inputs), per_batch):
            x = inputs[start:start + per_batch].long()
            p = len(x)
            pad = per_batch - p if forward is not model else 0
            if pad:  # the compiled graph has static shapes: the short last batch repeats its last puzzle
                x = torch.cat([x, x[-1:].expand(pad, -1)])
            frames = torch.stack([sym.apply(x) for sym in syms], 1) if syms else x.unsqueeze(1)  # (p, A, S)
            rows = frames.unsqueeze(2).expand(p + pad, augment, samples, x.shape[1]).reshape((p + pad) * c, -1)
            batch = {"inputs": rows.to(device)}
            for key, value in (extras or {}).items():
                v = value[start:start + per_batch]
                if pad:
                    v = torch.cat([v, v[-1:].expand(pad, *v.shape[1:])])
                batch[key] = v.repeat_interleave(c, dim=0).to(device)
            scale = scale_c.repeat(p + pad).to(device)
            if compile and start == 0:
                t0 = time.perf_counter()
                forward, fallback = compiled_forward(model, batch, scale if noisy else None, early_exit, precision)
                compile_seconds = time.perf_counter() - t0
            ans, q, steps = _run(forward, model.initial_carry(batch), batch, n_sup, device, precision,
                                 scale if noisy else None, gen, early_exit)
            if pad:
                ans, q, steps = ans[:p * c], q[:p * c], steps[:p * c]
            ans = ans.view(p, augment, samples, -1)
            if syms:
                ans = torch.stack([sym.invert(ans[:, a]) for a, sym in enumerate(syms)], 1)
            answers.append(ans.reshape(p, c, -1).cpu())
            qs.append(q.view(p, c).cpu())
            steps_all.append(steps.view(p, c).cpu())
            if on_batch is not None:
                on_batch(p)
    finally:
        model.train(was_training)
    return Candidates(torch.cat(answers), torch.cat(qs), torch.cat(steps_all), samples, augment, float(noise),
                      n_sup, time.perf_counter() - start_time - compile_seconds, forward is not model,
                      round(compile_seconds, 3), fallback)


#: The last model compiled and its compiled forward: a process that explores the same model many
#: times (a benchmark, a sweep) compiles once. One entry only, as it keeps that model alive.
_COMPILED: dict[str, Any] = {}


def compiled_forward(model: nn.Module, batch: dict[str, torch.Tensor], scale: torch.Tensor | None,
                     early_exit: bool, precision: str = "fp32") -> tuple[Callable[..., Any], str | None]:
    """``model``'s supervision step under ``torch.compile`` (static shapes), compiled by one
    throw-away step on ``batch`` (noise, where ``scale`` is given, from a throw-away generator, so
    the run's own draws are untouched), and None; or ``model`` itself and why, where compiling
    fails or cannot serve: with ``early_exit`` every step has fewer rows, a new graph each time.

    Why compile at all: the inference step is a chain of small matrix products and many small
    elementwise kernels (norms, SwiGLU, residual adds, rotary); inductor fuses the elementwise
    work, which at this width is much of a step (docs/performance.md, "Evaluation against
    training"). It costs a compile (tens of seconds on the CPU; inductor's on-disk cache makes a
    second run of the same shapes cheap), so it is an option that pays on large evaluations.
    """
    if early_exit:
        reason = "--early-exit: trajectories leave the batch, so every step has another shape; ran eager"
        warnings.warn(f"--compile {reason}", stacklevel=4)  # past explore and its inference_mode wrapper
        return model, reason
    try:
        if _COMPILED.get("model") is not model:
            _COMPILED.clear()
            _COMPILED.update(model=model, forward=torch.compile(model, dynamic=False))
        fn = _COMPILED["forward"]
        kwargs = {} if scale is None else {"noise": LatentNoise(scale, torch.Generator(scale.device).manual_seed(0))}
        with autocast(scale.device if scale is not None else batch["inputs"].device, precision):
            fn(model.initial_carry(batch), batch, **kwargs)
        return fn, None
    except Exception as e:  # noqa: BLE001 - any compiler failure: run eager, and say why
        _COMPILED.clear()
        reason = f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); ran eager"
        warnings.warn(f"--compile: {reason}", stacklevel=4)
        return model, reason


def _run(forward: Callable[..., Any], carry: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], n_sup: int,
         device: torch.device, precision: str, scale: torch.Tensor | None, gen: torch.Generator | None,
         early_exit: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All supervision steps of one batch of trajectories from ``carry``, each a call of
    ``forward`` (the model, or its compiled step): (answers, margins, steps) per row."""
    rows = batch["inputs"].shape[0]
    answer = q_out = None
    steps = torch.full((rows,), n_sup, dtype=torch.long, device=device)
    active = torch.arange(rows, device=device)
    sub = batch
    for step in range(1, n_sup + 1):
        kwargs = {} if scale is None else {"noise": LatentNoise(scale[active], gen)}
        with autocast(device, precision):
            carry, out = forward(carry, sub, **kwargs)
        if not early_exit and step < n_sup:
            continue  # only the last step's answer is kept: no head, argmax or margin before it
        with autocast(device, precision):
            logits = out.full_logits()
        pred = logits.argmax(-1)
        margin = out.halt_margin()
        margin = (margin.float() if margin is not None
                  else torch.full((len(active),), math.nan, device=device))
        if not early_exit:
            answer, q_out = pred, margin
            break
        if answer is None:
            answer = torch.empty((rows, pred.shape[1]), dtype=pred.dtype, device=device)
            q_out = torch.full((rows,), math.nan, device=device)
        done = (margin > 0) | (step == n_sup)
        answer[active[done]] = pred[done]
        q_out[active[done]] = margin[done]
        steps[active[done]] = step
        keep = ~done
        if not bool(keep.any()):
            break
        active = active[keep]
        carry = {k: v[keep] for k, v in carry.items()}
        sub = {k: v[keep] for k, v in sub.items()}
    return answer, q_out, steps


# -- scoring -------------------------------------------------------------------------------------
@dataclass
class SelectionScore:
    """How one selection rule did against the answer key."""

    exact_accuracy: float
    #: Puzzles where the noiseless answer was right and the pick is wrong (selection's harm).
    worse_than_noiseless: int
    #: Puzzles where the noiseless answer was wrong and the pick is right.
    better_than_noiseless: int

    def as_json(self) -> dict[str, Any]:
        return {"exact_accuracy": self.exact_accuracy, "worse_than_noiseless": self.worse_than_noiseless,
                "better_than_noiseless": self.better_than_noiseless}


@dataclass
class ExplorationScore:
    """Accuracy of the noiseless answer, of each selection and of the best candidate (an oracle)."""

    examples: int
    noiseless_exact_accuracy: float
    #: Share of puzzles where some candidate is right: what a perfect selector would reach.
    oracle_exact_accuracy: float
    selections: dict[str, SelectionScore] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"examples": self.examples, "noiseless_exact_accuracy": self.noiseless_exact_accuracy,
                "oracle_exact_accuracy": self.oracle_exact_accuracy,
                "selections": {k: v.as_json() for k, v in self.selections.items()}}


def correct(answers: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """(N, C, S) answers against (N, S) targets -> (N, C) whole answer right (unscored positions skipped)."""
    valid = (targets != ignore_index).unsqueeze(1)
    return ((answers == targets.unsqueeze(1)) | ~valid).all(-1)


def score(cands: Candidates, questions: torch.Tensor, targets: torch.Tensor, *, check: Check | None = None,
          ignore_index: int = -100, rules: Sequence[str] = SELECTIONS) -> ExplorationScore:
    """Score every rule in ``rules`` (``verify`` only where ``check`` is given)."""
    right = correct(cands.answers, targets.long(), ignore_index)
    n = max(len(right), 1)
    noiseless = right[:, 0]
    out = ExplorationScore(len(right), float(noiseless.sum()) / n, float(right.any(1).sum()) / n)
    for rule in rules:
        if rule == "verify" and check is None:
            continue
        idx = select(rule, cands, questions, check)
        ok = right[torch.arange(len(idx)), idx]
        out.selections[rule] = SelectionScore(float(ok.sum()) / n, int((noiseless & ~ok).sum()),
                                              int((~noiseless & ok).sum()))
    return out


def compute_curve(cands: Candidates, questions: torch.Tensor, targets: torch.Tensor, *,
                  check: Check | None = None, ignore_index: int = -100) -> list[dict[str, Any]]:
    """Accuracy against compute: for K' = 1, 2, 4, ... up to ``samples`` (and ``samples``
    itself), with 1 symmetry and with all of them, the scores of the first K' samples' candidates
    (:meth:`Candidates.prefix`) and their compute (trajectory steps; wall seconds pro rata)."""
    ks = sorted({min(2 ** i, cands.samples) for i in range(int(math.log2(cands.samples)) + 2)})
    augments = sorted({1, cands.augment})
    points = []
    for a in augments:
        for k in ks:
            sub = cands.prefix(k, a)
            s = score(sub, questions, targets, check=check, ignore_index=ignore_index)
            points.append({"samples": k, "augment": a, "trajectory_steps": sub.trajectory_steps,
                           "seconds_pro_rata": round(sub.seconds, 3), **s.as_json()})
    return points
