"""Will the model and its batch fit in memory? A simple estimate, made before anything is allocated.

An out-of-memory model used to fail inside the allocator with an 80-line traceback, after its run
folder was made. The phase now compares this estimate with the memory the device has free and
refuses the run first, naming the field to change. The estimate is deliberately plain (it is a
bound to catch a model ten times too large, not a profiler)::

    state       = parameters x 4 bytes x copies       copies: weights, gradients, Adam's two
                                                      moments, + 1 with the EMA callback
    activations = B x S x d x 40 x L x (n + 1) x a    the one cycle that keeps gradients: n latent
                  (+ B x S x 2h x S x L x (n+1) x a)  updates + 1 answer update, L layers each,
                                                      ~40 d values per token per layer, plus the
                                                      attention scores (h heads) with attention;
                                                      with model.checkpoint_blocks instead
                  B x S x d x (n + 1) x (L + 2) x a   each block's kept input (and the net's sums)
                  + 2 x B x S x (40 d + 2hS) x a      + one block recomputed, with its gradients
                + B x S x V x 4 x 3                   logits, their softmax and its gradient (with
                                                      model.defer_logits: trainer.loss_chunk_tokens
                                                      rows instead of B x S)
    evaluation  = B_eval x S x (8 d + V) x 4          no gradients: one layer's tensors at a time
    total       = state + max(activations, evaluation)

B is the batch one process holds (``trainer.batch_size / world``), S the sequence length, V the
vocabulary, d ``model.d_model``, L ``model.n_layers``, n ``model.n`` (0 for a model without a
recursion), a the bytes of an activation (2 in bf16, else 4). On a CPU the processes of one
machine share its memory, so the estimate is multiplied by their number; the free memory is
``MemAvailable`` of /proc/meminfo (elsewhere ``os.sysconf``'s available pages). On CUDA it is
``torch.cuda.mem_get_info``'s free memory of the device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

#: Values kept per token per layer application for the backward pass (norm inputs and outputs,
#: the token mixer's and the SwiGLU's inputs and hidden layers, residual sums), in units of d:
#: measured as the peak-RSS difference of trm_paper's first step on a CPU at batch 8 and 48
#: (1.4 and 5.8 GiB: 42-50 d per token per layer application), rounded down.
VALUES_PER_TOKEN_PER_LAYER = 40


@dataclass(frozen=True)
class MemoryEstimate:
    parameters: int
    state_bytes: int
    activation_bytes: int
    eval_bytes: int
    processes: int = 1

    @property
    def total_bytes(self) -> int:
        return (self.state_bytes + max(self.activation_bytes, self.eval_bytes)) * self.processes

    def largest_part(self) -> str:
        """"state" when the parameters' copies dominate, "activations" or "evaluation" otherwise."""
        parts = {"state": self.state_bytes, "activations": self.activation_bytes, "evaluation": self.eval_bytes}
        return max(parts, key=parts.get)  # type: ignore[arg-type]


def gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def estimate(parameters: int, model: Any, trainer: Any, *, seq_len: int, vocab: int, ema: bool,
             world_size: int = 1, activation_bytes: int = 4, shared_memory: bool = True) -> MemoryEstimate:
    """The estimate of the module docstring, from the model and trainer configs (fields read by
    name; a model without ``d_model`` is counted by its parameters and logits only)."""
    copies = 4 + (1 if ema else 0)
    state = parameters * 4 * copies
    batch = max(1, int(getattr(trainer, "batch_size", 1)) // max(1, world_size))
    eval_batch = int(getattr(trainer, "eval_batch_size", batch))
    d = getattr(model, "d_model", None)
    layers = int(getattr(model, "n_layers", 1) or 1)
    n = int(getattr(model, "n", 0) or 0)
    heads = int(getattr(model, "n_heads", 0) or 0) if getattr(model, "mixer", "attention") != "mlp" else 0
    rows = batch * seq_len
    if getattr(model, "defer_logits", False):  # the loss makes at most loss_chunk_tokens rows of logits at once
        rows = min(rows, int(getattr(trainer, "loss_chunk_tokens", rows)))
    logits = rows * vocab * 4 * 3
    acts = logits
    evaluation = eval_batch * seq_len * vocab * 4
    if isinstance(d, int):
        per_token = VALUES_PER_TOKEN_PER_LAYER * d + 2 * heads * seq_len
        if getattr(model, "checkpoint_blocks", False):
            # Recomputed blocks keep only each block application's input (plus the net's two
            # injection sums per call); one block's activations and their gradients live at a time.
            kept = d * (n + 1) * (layers + 2)
            acts += batch * seq_len * (kept + 2 * per_token) * activation_bytes
        else:
            acts += batch * seq_len * per_token * layers * (n + 1) * activation_bytes
        evaluation += eval_batch * seq_len * 8 * d * 4
    return MemoryEstimate(parameters, state, acts, evaluation, world_size if shared_memory else 1)


def available_bytes(device: torch.device) -> int | None:
    """Free memory where the model will live, or None when it cannot be read."""
    if device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
            return int(free)
        except (RuntimeError, AssertionError):
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def refusal(est: MemoryEstimate, available: int, model: Any, trainer: Any) -> str:
    """The one-line message for an estimate above ``available``: both numbers, and the field to change."""
    part = est.largest_part()
    if part == "state":
        field, value = ("model.d_model", getattr(model, "d_model")) if hasattr(model, "d_model") else (
            "model.n_layers", getattr(model, "n_layers", "?"))
        fix = f"lower {field} (now {value}) or model.n_layers"
    elif part == "activations":
        fix = f"lower trainer.batch_size (now {getattr(trainer, 'batch_size', '?')}) or model.d_model"
    else:
        fix = f"lower trainer.eval_batch_size (now {getattr(trainer, 'eval_batch_size', '?')})"
    procs = f" x {est.processes} processes" if est.processes > 1 else ""
    return (f"out of memory before the start: the model and its batch need about {gib(est.total_bytes)}"
            f" ({est.parameters:,} parameters: {gib(est.state_bytes)} for weights, gradients, Adam's moments"
            f" and EMA; activations {gib(max(est.activation_bytes, est.eval_bytes))}{procs}), and"
            f" {gib(available)} is available; {fix} (the estimate: docs/cognate.md, 'Memory')")
