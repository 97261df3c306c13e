"""Inference over a split (all supervision steps) and the context evaluators read it from."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from agent_forge.data import Split, TaskData
from agent_forge.phases.common.losses import LossKind, token_cross_entropy
from agent_forge.specs import EvaluatorSpec


def inference_steps(model: nn.Module) -> int:
    """Supervision steps evaluation and generation run by default: the model's ``n_sup_inference``
    where it has one (a TRM's ``model.n_sup_inference``, default its ``n_sup``), else its ``n_sup``
    (1 for a model without supervision steps)."""
    return int(getattr(model, "n_sup_inference", None) or model.n_sup)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class Predictions:
    """What a model answered on a split, per sample.

    ``final``: (N, S) argmax answer after all ``n_sup`` steps. ``at_halt``: the answer at the
    step where the Q-head first said halt (or the last step). ``halt_step``: that step (1-based).
    ``q_halt_final``: (N,) halting logit at the last step (NaN for models without a Q-head).
    ``halting_head``: whether the model returned halting logits (``q_halt_logits`` not None);
    without them every sample runs all ``n_sup`` steps and ``at_halt`` is ``final``.
    """

    final: torch.Tensor
    at_halt: torch.Tensor
    halt_step: torch.Tensor
    q_halt_final: torch.Tensor
    n_sup: int
    #: Mean token cross-entropy at the last step (nats), over scored targets.
    loss: float
    #: Whether the model has a halting head (``q_halt_final`` is NaN and ``at_halt`` = ``final`` if not).
    halting_head: bool = True
    #: Which cross-entropy ``loss`` is: ``softmax`` or ``stablemax`` (the one the model trained with).
    loss_kind: str = "softmax"
    #: (n_sup,) how many samples had their whole answer right after step 1, 2, ... (counts, not
    #: predictions: test-time compute curves at no memory cost).
    step_exact: torch.Tensor | None = None
    #: (n_sup,) how many scored tokens were right after each step (scored as the ``token``
    #: evaluator does: the blank cells of a puzzle, every scored target otherwise).
    step_token: torch.Tensor | None = None
    #: The number of scored tokens (the denominator of ``step_token``).
    token_count: int = 0
    #: With ``token_bytes``: the last step's cross-entropy (nats) summed over targets that stand for
    #: text, and how many bytes those targets are (special tokens count in neither).
    byte_nats: float = 0.0
    byte_count: int = 0

    @property
    def bits_per_byte(self) -> float | None:
        """Held-out bits per byte (nats / ln 2 / bytes), or None without byte counts."""
        return self.byte_nats / math.log(2) / self.byte_count if self.byte_count else None

    def per_step(self) -> list[dict[str, float]]:
        """``[{"step": 1, "exact_accuracy": ..., "token_accuracy": ...}, ...]``, one per step run."""
        if self.step_exact is None or self.step_token is None:
            return []
        n = max(len(self.final), 1)
        return [{"step": k + 1, "exact_accuracy": e / n, "token_accuracy": t / max(self.token_count, 1)}
                for k, (e, t) in enumerate(zip(self.step_exact.tolist(), self.step_token.tolist()))]


@torch.inference_mode()  # no autograd state at all (cheaper than no_grad); see docs/performance.md
def predict(model: nn.Module, split: Split, *, n_sup: int, batch_size: int, device: torch.device,
            precision: str = "fp32", ignore_index: int = -100, loss: LossKind = "softmax",
            blank_token: int | None = None, on_batch: Callable[[int], None] | None = None,
            token_bytes: torch.Tensor | None = None) -> Predictions:
    """Run ``n_sup`` supervision steps on every sample (fewer or more than the model trained
    with); the answers after the last step and at the Q-head's halt, and per step how many
    answers and scored tokens were right. ``blank_token``: score tokens only where the input holds
    it (a puzzle's blank cells), as the ``token`` evaluator does. ``on_batch(rows)`` after each
    batch (a progress bar). ``token_bytes`` (``TaskData.token_bytes``): also sum the nats and bytes
    bits per byte needs."""
    was_training = model.training
    model.eval()
    finals, at_halts, halt_steps, q_finals = [], [], [], []
    loss_sum, loss_count = 0.0, 0
    halting_head = False
    step_exact = torch.zeros(n_sup, dtype=torch.long)
    step_token = torch.zeros(n_sup, dtype=torch.long)
    token_count = 0
    byte_nats, byte_count = 0.0, 0
    try:
        for start in range(0, len(split), batch_size):
            idx = torch.arange(start, min(start + batch_size, len(split)))
            batch = {k: v.to(device) for k, v in split.batch(idx).items()}
            carry = model.initial_carry(batch)
            b = len(idx)
            targets = batch["targets"]
            valid = targets != ignore_index
            scored = valid & (batch["inputs"] == blank_token) if blank_token is not None else valid
            token_count += int(scored.sum())
            exact_step, token_step = [], []
            halted = torch.zeros(b, dtype=torch.bool, device=device)
            halt_step = torch.full((b,), n_sup, dtype=torch.long, device=device)
            at_halt = None
            q = torch.full((b,), float("nan"), device=device)
            for step in range(1, n_sup + 1):
                with autocast(device, precision):
                    carry, out = model(carry, batch)
                    logits = out.full_logits()  # deferred logits are computed here (model protocol)
                pred = logits.argmax(-1)
                right = pred == targets
                exact_step.append((right | ~valid).all(1).sum())
                token_step.append((right & scored).sum())
                halted_before = halted.clone()
                if out.q_halt_logits is not None:
                    halting_head = True
                    q = out.q_halt_logits.float()
                    now = (out.halt_margin().float() > 0) & ~halted
                    halt_step = torch.where(now, torch.full_like(halt_step, step), halt_step)
                    halted |= now
                # A row keeps the answer it had when it halted; the others take this step's.
                at_halt = pred if at_halt is None else torch.where(halted_before.unsqueeze(-1), at_halt, pred)
            step_exact += torch.stack(exact_step).cpu()
            step_token += torch.stack(token_step).cpu()
            ce = token_cross_entropy(logits, targets, loss, ignore_index)
            loss_sum += float(ce.sum())
            if token_bytes is not None:
                nbytes = token_bytes.to(device)[torch.where(valid, targets, 0)] * valid
                byte_nats += float((ce * (nbytes > 0)).sum())
                byte_count += int(nbytes.sum())
            loss_count += int(valid.sum())
            finals.append(pred.cpu())
            at_halts.append(at_halt.cpu())
            halt_steps.append(halt_step.cpu())
            q_finals.append(q.cpu())
            if on_batch is not None:
                on_batch(b)
    finally:
        model.train(was_training)
    return Predictions(torch.cat(finals), torch.cat(at_halts), torch.cat(halt_steps), torch.cat(q_finals),
                       n_sup, loss_sum / max(loss_count, 1), halting_head, loss,
                       step_exact=step_exact, step_token=step_token, token_count=token_count,
                       byte_nats=byte_nats, byte_count=byte_count)


def next_token(logits: torch.Tensor, *, temperature: float = 0.0, top_k: int | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row from last-position ``logits`` (B, V): the argmax at ``temperature`` 0;
    otherwise a draw from ``softmax(logits / temperature)`` over the ``top_k`` likeliest tokens
    (all with None), on the CPU with ``generator`` so a seed gives the same tokens on any device."""
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits.float().cpu() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)


def cache_positions(prompt_len: int, new_tokens: int, seq_len: int) -> int:
    """The most tokens a cache across tokens holds while generating ``new_tokens`` after a prompt
    of ``prompt_len``: the longest window before it slides (the last token is never fed back);
    0 when the prompt alone overflows the window (it slides from the first token: nothing is kept)."""
    return 0 if prompt_len > seq_len else min(prompt_len + new_tokens - 1, seq_len)


@torch.no_grad()
def generate_tokens(model: nn.Module, prompt: torch.Tensor, new_tokens: int, *, n_sup: int, seq_len: int,
                    device: torch.device, temperature: float = 0.0, top_k: int | None = None,
                    generator: torch.Generator | None = None, stop_token: int | None = None,
                    on_token: Callable[[torch.Tensor], None] | None = None, cache: bool = False) -> torch.Tensor:
    """Continue ``prompt`` (B, P) by up to ``new_tokens`` tokens of a causal model.

    Each new token runs all ``n_sup`` supervision steps on the last ``seq_len`` tokens from a
    fresh carry and reads the last position's logits (:func:`next_token`: greedy at
    ``temperature`` 0, else sampled with ``generator``, optionally among the ``top_k``).
    ``on_token(tokens)`` gets each step's (B,) tokens as they come (streaming); generation stops
    early when every row produced ``stop_token``. Returns only the new tokens, (B, new).

    ``cache=False`` recomputes the whole window for every token. ``cache=True`` (a model with
    ``new_cache``/``extend``, e.g. a causal TRM) keeps every application's keys and values across
    tokens and computes only the new position, the same logits within fp32 rounding, until the
    window slides: past ``seq_len`` tokens every position moves (its position embedding or RoPE
    angle changes and the first token leaves every context), so each later token recomputes the
    window as the uncached path does (docs/cognate.md, "Generation").
    """
    was_training = model.training
    model.eval()
    try:
        tokens = prompt.to(device)
        kv = model.new_cache(cache_positions(prompt.shape[1], new_tokens, seq_len), n_sup) if cache else None
        for _ in range(new_tokens):
            window = tokens[:, -seq_len:]
            if kv is not None:
                slid = tokens.shape[1] > seq_len  # from here on every token recomputes the window
                logits = model.extend(window, n_sup, None if slid else kv)
            else:
                batch = {"inputs": window}
                carry = model.initial_carry(batch)
                for _ in range(n_sup):
                    carry, out = model(carry, batch)
                logits = (out.logits[:, -1] if out.logits is not None else out.head(out.hidden[:, -1])).float()
            nxt = next_token(logits, temperature=temperature, top_k=top_k, generator=generator).to(device)
            tokens = torch.cat([tokens, nxt], dim=1)
            if on_token is not None:
                on_token(nxt[:, 0].cpu())
            if stop_token is not None and bool((nxt == stop_token).all()):
                break
    finally:
        model.train(was_training)
    return tokens[:, prompt.shape[1]:].cpu()


@dataclass
class EvalContext:
    """Handed to every evaluator; computes predictions once and shares them.

    Evaluators that produce text (generated samples) put it in ``texts`` under their name; the
    Cognate phase writes it to ``samples.json`` beside the model's metrics.
    """

    model: nn.Module
    task: TaskData
    device: torch.device
    batch_size: int = 256
    precision: str = "fp32"
    n_sup: int | None = None
    split: str = "eval"
    #: The cross-entropy of the eval loss: the one the model trained with (``trainer.loss``).
    loss: LossKind = "softmax"
    #: Called with the number of rows after each inference batch (a progress bar).
    on_batch: Callable[[int], None] | None = None
    texts: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    def predictions(self) -> Predictions:
        if "predictions" not in self._cache:
            self._cache["predictions"] = predict(
                self.model, getattr(self.task, self.split), n_sup=self.n_sup or inference_steps(self.model),
                batch_size=self.batch_size, device=self.device, precision=self.precision,
                ignore_index=self.task.spec.ignore_index, loss=self.loss,
                blank_token=self.task.spec.info.get("blank_token"), on_batch=self.on_batch,
                token_bytes=getattr(self.task, "token_bytes", None))
        return self._cache["predictions"]


def step_curve(ctx: EvalContext) -> dict[str, Any]:
    """Accuracy against supervision steps, from the shared predictions (no extra forward pass).

    ``steps``: exact and token accuracy after every step ``1..n_sup``; ``at_halt``: both at the
    step where the Q-head first said halt (the last step run where it never did) and the mean of
    that step, or None for a model without a halting head. Token accuracy is scored as the
    ``token`` evaluator scores it (a puzzle's blank cells, else every scored target).
    """
    p = ctx.predictions()
    split = getattr(ctx.task, ctx.split)
    at_halt = None
    if p.halting_head:
        valid = split.targets != ctx.task.spec.ignore_index
        blank = ctx.task.spec.info.get("blank_token")
        scored = valid & (split.inputs == blank) if blank is not None else valid
        right = p.at_halt == split.targets
        n = max(len(p.at_halt), 1)
        at_halt = {"exact_accuracy": int((right | ~valid).all(1).sum()) / n,
                   "token_accuracy": int((right & scored).sum()) / max(int(scored.sum()), 1),
                   "mean_halt_step": int(p.halt_step.sum()) / n}
    return {"n_sup": p.n_sup, "steps": p.per_step(), "at_halt": at_halt}


def run_evaluators(host: Any, names: list[str], ctx: EvalContext) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name in names:
        evaluate = host.get(EvaluatorSpec, name).evaluate
        for key, value in evaluate(ctx.model, ctx.task, ctx).items():
            metrics[key] = float(value)
    return metrics

