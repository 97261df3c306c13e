"""The deep-supervision trainer's config, and how its device and precision are resolved."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator

from agent_forge import distributed as dist
from agent_forge.config import StrictModel
from agent_forge.errors import ConfigError
from agent_forge.parallel import Parallel


class DeepSupervisionConfig(StrictModel):
    name: str = "deep_supervision"
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["adamw", "adam_atan2", "muon"] = Field(
        "adamw", description="'adamw' (torch's, eps 1e-8); 'adam_atan2': the official TRM code's AdamATan2,"
                             " atan2(m, sqrt(v)) in place of m / (sqrt(v) + eps), no eps; or 'muon': torch.optim.Muon"
                             " for the hidden layers' weight matrices and AdamW for embeddings, heads, norms and"
                             " biases (nanochat's split). docs/cognate.md.")
    weight_decay: float = Field(0.1, ge=0)
    decay_all: bool = Field(
        False, description="Weight decay on every parameter, as the official code; false: on matrices only (not on"
                           " biases, gains or step scales).")
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = Field(100, ge=0)
    schedule: Literal["constant", "cosine"] = "constant"
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    grad_clip: float | None = Field(1.0, gt=0, description="Clip the gradient norm to this; null: no clipping"
                                                          " (the official code's).")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps; at least one of max_steps, minutes, epochs.")
    minutes: float | None = Field(None, gt=0, description="Wall-clock budget for training.")
    epochs: float | None = Field(
        None, gt=0, description="Training length as the official TRM code counts it: int(epochs * total_groups *"
                                " mean_puzzle_examples / batch_size) optimizer steps, total_groups and"
                                " mean_puzzle_examples from the task's info when it gives them, else the training"
                                " rows and 1 (docs/cognate.md). With max_steps or minutes: whichever ends first.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="'auto': bf16 on CUDA and on CPUs with AMX, fp32 elsewhere (see docs/performance.md).")
    compile: bool | Literal["auto"] = Field(
        False, description="torch.compile the training step: true, false, or 'auto': compile only when the run's"
                           " budget left after a few eager steps is long enough for the expected saving to exceed"
                           " the compile time (measured on this machine by earlier runs when it can be; see"
                           " docs/performance.md, 'torch.compile: once per run').")
    device: str = Field("auto", description="'auto' (cuda if present), 'cpu', 'cuda', 'cuda:1', ...")
    parallel: Parallel = Field(
        "ddp", description="How a multi-process run splits the model: 'ddp' (replicated, gradients averaged) or"
                           " 'fsdp' (FSDP2: parameters, gradients, optimizer and EMA sharded); see"
                           " docs/distributed.md. A single process ignores it.")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: torch's).")
    loss_chunk_tokens: int = Field(
        1024, ge=1, description="Tokens per chunk of the loss when the model defers its logits (model.defer_logits):"
                                " at most this many rows of (tokens, vocab) logits exist at once.")
    log_every: int = Field(25, ge=1)
    eval_every: int | None = Field(250, ge=1)
    eval_samples: int = Field(500, ge=1, description="Eval examples used during training.")
    eval_batch_size: int = Field(500, ge=1)
    checkpoint_every: int | None = Field(None, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    nan_patience: int = Field(10, ge=1, description="Stop after this many non-finite steps in a row.")
    supervision_weight_base: float = Field(
        1.0, gt=0, description="Step s of N weighs base**((s-1)/(N-1)), normalised; 1 = uniform.")
    improvement_reward_scale: float = Field(
        0.0, ge=0, description="Adds scale * relu(loss_s - loss_{s-1}): a penalty for getting worse.")
    loss: Literal["softmax", "stablemax"] = Field(
        "softmax", description="Token cross-entropy: 'softmax', or 'stablemax' (the official TRM code's, in"
                               " float64; see docs/cognate.md).")
    puzzle_emb_lr: float = Field(
        1e-2, gt=0, description="Peak lr of the sign-SGD step on a sparse puzzle table (model.puzzle_emb_sparse);"
                                " follows the same schedule as trainer.lr.")
    puzzle_emb_weight_decay: float = Field(
        0.1, ge=0, description="Decoupled weight decay of the sparse puzzle table's sign-SGD step.")

    @model_validator(mode="after")
    def _check(self) -> "DeepSupervisionConfig":
        if self.max_steps is None and self.minutes is None and self.epochs is None:
            raise ValueError("set trainer.max_steps, trainer.minutes or trainer.epochs (or --max-steps / --minutes)")
        return self


def check_batch_split(batch_size: int, world_size: int) -> None:
    """The one check that ``world_size`` processes can split the global batch evenly: before any
    rank starts (the phase's ``check_ready``) and again in the trainer, which may run on its own."""
    if world_size > 1 and batch_size % world_size:
        fit = max(world_size, batch_size // world_size * world_size)
        raise ConfigError(
            f"trainer.batch_size={batch_size} is the global batch and must split evenly among {world_size}"
            f" processes (--nproc {world_size}); use a multiple of {world_size}, e.g. --set"
            f" trainer.batch_size={fit}, or another --nproc")


def resolve_device(name: str, field: str = "trainer.device") -> torch.device:
    """``name`` as a device present on this machine; ``field`` is what an error calls it (the
    config field, or the flag of a command such as ``forge eval --device``)."""
    if name == "auto":
        # One GPU per rank under a launcher; LOCAL_RANK is 0 otherwise.
        return torch.device("cuda", dist.local_rank()) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{field}={name!r} is not a device name; use 'auto', 'cpu', 'cuda' or"
                          " 'cuda:N'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{field}={name!r} but no CUDA device is available; use 'cpu' or 'auto'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(f"{field}={name!r} but this machine has {count} CUDA device(s)"
                          f" (cuda:0 to cuda:{count - 1}); use one of them, or 'auto'")
    return device


def resolve_precision(name: str, device: torch.device) -> str:
    """bf16 only where it is fast: CUDA, or a CPU with AMX tiles. On an AVX2-only CPU, bf16
    matrix products measured ~6x *slower* than fp32 (docs/performance.md)."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16"
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return "fp32"
    return "bf16" if "amx_bf16" in flags else "fp32"
