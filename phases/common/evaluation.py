"""Inference over a split (all supervision steps) and the context evaluators read it from."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from agent_forge.data import Split, TaskData


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
    halting_head: bool = True


@torch.no_grad()
def predict(model: nn.Module, split: Split, *, n_sup: int, batch_size: int, device: torch.device,
            precision: str = "fp32", ignore_index: int = -100) -> Predictions:
    was_training = model.training
    model.eval()
    finals, at_halts, halt_steps, q_finals = [], [], [], []
    loss_sum, loss_count = 0.0, 0
    halting_head = False
    try:
        for start in range(0, len(split), batch_size):
            idx = torch.arange(start, min(start + batch_size, len(split)))
            batch = {k: v.to(device) for k, v in split.batch(idx).items()}
            carry = model.initial_carry(batch)
            b = len(idx)
            halted = torch.zeros(b, dtype=torch.bool, device=device)
            halt_step = torch.full((b,), n_sup, dtype=torch.long, device=device)
            at_halt = None
            q = torch.full((b,), float("nan"), device=device)
            for step in range(1, n_sup + 1):
                with autocast(device, precision):
                    carry, out = model(carry, batch)
                    logits = out.full_logits()
                pred = logits.argmax(-1)
                halted_before = halted.clone()
                if out.q_halt_logits is not None:
                    halting_head = True
                    q = out.q_halt_logits.float()
                    now = (q > 0) & ~halted
                    halt_step = torch.where(now, torch.full_like(halt_step, step), halt_step)
                    halted |= now
                # A row keeps the answer it had when it halted; the others take this step's.
                at_halt = pred if at_halt is None else torch.where(halted_before.unsqueeze(-1), at_halt, pred)
            targets = batch["targets"]
            logits = logits.float()
            mask = targets != ignore_index
            ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                   ignore_index=ignore_index, reduction="sum")
            loss_sum += float(ce)
            loss_count += int(mask.sum())
            finals.append(pred.cpu())
            at_halts.append(at_halt.cpu())
            halt_steps.append(halt_step.cpu())
            q_finals.append(q.cpu())
    finally:
        model.train(was_training)
    return Predictions(torch.cat(finals), torch.cat(at_halts), torch.cat(halt_steps), torch.cat(q_finals),
                       n_sup, loss_sum / max(loss_count, 1), halting_head)


@torch.no_grad()
def generate_tokens(model: nn.Module, prompt: torch.Tensor, new_tokens: int, *, n_sup: int, seq_len: int,
                    device: torch.device, temperature: float = 0.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Continue ``prompt`` (B, P) by ``new_tokens`` tokens of a causal model.

    Each new token runs all ``n_sup`` supervision steps on the last ``seq_len`` tokens from a
    fresh carry and reads the last position's logits: greedy at ``temperature`` 0 (reproducible),
    otherwise sampled with ``generator``. Returns only the new tokens, (B, new_tokens).
    """
    was_training = model.training
    model.eval()
    try:
        tokens = prompt.to(device)
        for _ in range(new_tokens):
            batch = {"inputs": tokens[:, -seq_len:]}
            carry = model.initial_carry(batch)
            for _ in range(n_sup):
                carry, out = model(carry, batch)
            logits = (out.logits[:, -1] if out.logits is not None else out.head(out.hidden[:, -1])).float()
            if temperature > 0:
                probs = torch.softmax(logits / temperature, dim=-1).cpu()
                nxt = torch.multinomial(probs, 1, generator=generator).to(device)
            else:
                nxt = logits.argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, nxt], dim=1)
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
    texts: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    def predictions(self) -> Predictions:
        if "predictions" not in self._cache:
            self._cache["predictions"] = predict(
                self.model, getattr(self.task, self.split), n_sup=self.n_sup or int(getattr(self.model, "n_sup", 1)),
                batch_size=self.batch_size, device=self.device, precision=self.precision,
                ignore_index=self.task.spec.ignore_index)
        return self._cache["predictions"]


def run_evaluators(host: Any, names: list[str], ctx: EvalContext) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name in names:
        evaluate = host.get("evaluator", name).obj
        for key, value in evaluate(ctx.model, ctx.task, ctx).items():
            metrics[key] = float(value)
    return metrics

