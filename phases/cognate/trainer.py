"""DeepSupervisionTrainer: trains any model that follows the model protocol.

The loop is documented step by step in :mod:`agent_forge.events`. Two ideas carry it:

* **Deep supervision with a carry.** Every optimizer step runs *one* supervision step on a batch
  of B rows; each row is a sample somewhere between its first and its ``max_sup_steps``-th step.
  The carry (y, z) is detached between steps, so each step is its own loss and update.
* **Refill, not mask.** A row whose sample halted (by the Q-head or at the step limit) is
  refilled with a fresh training example and a fresh carry before the next step, as the
  official TRM code does. The batch shape never changes, and halting early means more examples
  per second instead of idle rows.

Everything that shapes the future of a run (weights, optimizer, elapsed time, the active batch and
carry, the data cursor, every RNG, every callback's state) is saved by ``save_checkpoint``, so a
resumed run on the CPU reaches bit-identical weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from agent_forge import distributed as dist
from agent_forge import parallel
from agent_forge.parallel import Parallel
from agent_forge.checkpoint import atomic_write_json, load_train_state, save_train_state
from agent_forge.config import StrictModel
from agent_forge.data import TaskData
from agent_forge.errors import ConfigError
from agent_forge.events import Event
from agent_forge.phases.common.evaluation import EvalContext, autocast, run_evaluators
from agent_forge.phases.cognate.metrics_log import MetricsLog
from agent_forge.phases.cognate.state import TrainState
from agent_forge.models.protocol import merge_carry


class DeepSupervisionConfig(StrictModel):
    name: str = "deep_supervision"
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = Field(100, ge=0)
    schedule: Literal["constant", "cosine"] = "constant"
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    grad_clip: float | None = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps; at least one of max_steps/minutes.")
    minutes: float | None = Field(None, gt=0, description="Wall-clock budget for training.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="'auto': bf16 on CUDA and on CPUs with AMX, fp32 elsewhere (see docs/performance.md).")
    compile: bool = False
    device: str = Field("auto", description="'auto' (cuda if present), 'cpu', 'cuda', 'cuda:1', ...")
    parallel: Parallel = Field(
        "ddp", description="How a multi-process run splits the model: 'ddp' (replicated, gradients averaged) or"
                           " 'fsdp' (FSDP2: parameters, gradients, optimizer and EMA sharded); see"
                           " docs/distributed.md. A single process ignores it.")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: torch's).")
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

    @model_validator(mode="after")
    def _check(self) -> "DeepSupervisionConfig":
        if self.max_steps is None and self.minutes is None:
            raise ValueError("set trainer.max_steps or trainer.minutes (or --max-steps / --minutes)")
        return self


@dataclass
class FitContext:
    model: nn.Module
    task: TaskData
    run_dir: Path
    seed: int
    callbacks: dict[str, Any] = field(default_factory=dict)
    host: Any = None
    evaluators: list[str] = field(default_factory=lambda: ["exact", "token"])
    resume: bool = False
    progress: bool = True
    log: Any = None
    #: Identifies the run's config; a resume with another is refused.
    config_fingerprint: str = ""


@dataclass
class FitResult:
    state: TrainState
    status: Literal["completed", "stopped", "failed"]
    message: str


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        # One GPU per rank under a launcher; LOCAL_RANK is 0 otherwise.
        return torch.device("cuda", dist.local_rank()) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name!r} but no CUDA device is available; use 'cpu' or 'auto'")
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


def lr_factor(cfg: DeepSupervisionConfig, step: int, elapsed_s: float) -> float:
    """Linear warm-up, then constant or cosine decay over the budget that runs out first.

    With only ``max_steps`` the schedule is a function of the step (deterministic, resumable
    bit-for-bit). With a ``minutes`` budget, progress is the larger of the two fractions, so a
    time-limited run still anneals to ``min_lr_ratio`` at its end.
    """
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    fractions = []
    if cfg.max_steps:
        fractions.append((step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    if cfg.minutes:
        fractions.append(elapsed_s / (cfg.minutes * 60))
    progress = min(1.0, max(fractions))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class DataStream:
    """Endless shuffled epochs over the training split; the position is part of the checkpoint."""

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n, self.generator = n, generator
        self.epoch, self.cursor = 0, 0
        self.order = torch.randperm(n, generator=generator)

    def take(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            if self.cursor == self.n:
                self.epoch += 1
                self.cursor = 0
                self.order = torch.randperm(self.n, generator=self.generator)
            m = min(k, self.n - self.cursor)
            out.append(self.order[self.cursor:self.cursor + m])
            self.cursor += m
            k -= m
        return torch.cat(out)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor, "order": self.order}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.epoch, self.cursor, self.order = int(s["epoch"]), int(s["cursor"]), s["order"]


class DeepSupervisionTrainer:
    def __init__(self, cfg: DeepSupervisionConfig) -> None:
        self.cfg = cfg

    # -- set-up ---------------------------------------------------------------------------
    def _state(self, ctx: FitContext) -> TrainState:
        cfg = self.cfg
        device = resolve_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        world = dist.world_size()
        if cfg.batch_size % world:
            raise ConfigError(f"trainer.batch_size={cfg.batch_size} is the global batch and must divide evenly"
                              f" among {world} processes; use a multiple of {world}")
        model = ctx.model.to(device)
        # FSDP shards before the optimizer is built: AdamW must hold (and size its moments by)
        # the shards, not the full parameters.
        sharded = dist.active() and cfg.parallel == "fsdp"
        if sharded:
            parallel.shard(model, device)
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            (no_decay if p.dim() < 2 or "scales" in name else decay).append(p)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr, betas=cfg.betas)
        generator = torch.Generator().manual_seed(ctx.seed)
        state = TrainState(model=model, optimizer=optimizer, task=ctx.task, device=device,
                           run_dir=ctx.run_dir, config=cfg, generator=generator, callbacks=ctx.callbacks,
                           precision=resolve_precision(cfg.precision, device))
        state.max_sup_steps = state.n_sup
        state.extras["stream"] = DataStream(len(ctx.task.train), generator)
        state.extras["rows"] = dist.local_rows(cfg.batch_size)
        if dist.active() and not sharded:
            from torch.nn.parallel import DistributedDataParallel

            # Parameters are broadcast from rank 0 here, so every rank starts from the same weights.
            state.extras["ddp"] = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=bool(getattr(model, "has_unused_parameters", False)))
        return state

    @staticmethod
    def _local(state: TrainState, t: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global per-row tensor (all of them in a single process)."""
        return t[state.extras["rows"]]

    def _fire(self, state: TrainState, event: Event) -> None:
        for cb in state.callbacks.values():
            handler = getattr(cb, event.value, None)
            if handler is not None:
                handler(state)

    def _draw(self, state: TrainState, k: int) -> dict[str, torch.Tensor]:
        idx = state.extras["stream"].take(k)
        batch = state.task.train.batch(idx)
        if state.task.augment is not None:
            batch = state.task.augment(batch, state.generator)
        state.examples_started += k
        return {key: v.to(state.device) for key, v in batch.items()}

    def _refill(self, state: TrainState) -> None:
        """Replace halted rows with fresh examples and a fresh carry."""
        b = self.cfg.batch_size
        if not state.batch:
            state.batch = self._draw(state, b)
            state.carry = state.model.initial_carry(self._local_batch(state))
            state.sup_steps = torch.zeros(b, dtype=torch.long, device=state.device)
            state.min_halt_steps = torch.ones(b, dtype=torch.long, device=state.device)
            state.fresh = torch.ones(b, dtype=torch.bool, device=state.device)
            return
        halted = state.halted
        state.fresh = halted.clone()
        k = int(halted.sum())
        if k == 0:
            return
        new = self._draw(state, k)
        rows = halted.nonzero().flatten()
        for key in state.batch:
            state.batch[key] = state.batch[key].index_copy(0, rows, new[key])
        fresh_carry = state.model.initial_carry(self._local_batch(state))
        state.carry = merge_carry(state.carry, fresh_carry, self._local(state, halted))
        state.sup_steps = torch.where(halted, torch.zeros_like(state.sup_steps), state.sup_steps)

    def _local_batch(self, state: TrainState) -> dict[str, torch.Tensor]:
        return {key: self._local(state, value) for key, value in state.batch.items()}

    # -- one step -------------------------------------------------------------------------
    def _losses(self, state: TrainState) -> None:
        out, targets = state.output, self._local(state, state.batch["targets"])
        ignore = state.task.spec.ignore_index
        logits = out.logits.float()
        ce = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=ignore, reduction="none")  # (B, S)
        scored = targets != ignore
        per_sample = (ce * scored).sum(1) / scored.sum(1).clamp(min=1)
        weights = self._step_weights(state)
        lm = (per_sample * weights).mean()
        if self.cfg.improvement_reward_scale > 0:
            prev = state.extras.get("prev_loss")
            if prev is not None:
                worse = F.relu(per_sample - prev) * (~self._local(state, state.fresh))
                lm = lm + self.cfg.improvement_reward_scale * worse.mean()
            state.extras["prev_loss"] = per_sample.detach()
        with torch.no_grad():
            pred = logits.argmax(-1)
            state.token_correct = (pred == targets) | ~scored
            state.seq_correct = state.token_correct.all(1)
            state.per_sample_loss = per_sample.detach()
        state.losses = {"lm": lm}
        for name, value in out.aux_losses.items():
            state.losses[name] = value

    def _step_weights(self, state: TrainState) -> torch.Tensor:
        base, n = self.cfg.supervision_weight_base, state.max_sup_steps
        s = self._local(state, state.sup_steps).float()  # already incremented: s in 1..n
        if base == 1.0 or n == 1:
            return torch.ones_like(s)
        w = base ** ((s - 1) / (n - 1))
        mean_w = sum(base ** (i / (n - 1)) for i in range(n)) / n
        return w / mean_w

    def _train_step(self, state: TrainState) -> bool:
        """One supervision step for every row; False if it was skipped as non-finite."""
        cfg = self.cfg
        self._refill(state)
        self._fire(state, Event.STEP_START)
        carry_before = state.carry
        net = state.extras.get("ddp", state.model)  # the DDP wrapper averages gradients across ranks
        with autocast(state.device, state.precision):
            state.carry, state.output = net(state.carry, self._local_batch(state))
        state.sup_steps = state.sup_steps + 1
        self._losses(state)
        self._fire(state, Event.LOSS)
        loss = sum(state.losses.values())
        state.optimizer.zero_grad(set_to_none=True)
        # Every rank must skip together, or the others would wait forever in DDP's all-reduce.
        finite = dist.agree([float(bool(torch.isfinite(loss)))], "min")[0] > 0
        if finite:
            loss.backward()
            self._fire(state, Event.AFTER_BACKWARD)
            params = [p for p in state.model.parameters() if p.grad is not None]
            # With no clip the norm is still measured (for the metrics); scaling by 1 is exact.
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip or math.inf)
            # Of the averaged gradients, so the same on every rank (gathered from FSDP's shards).
            state.grad_norm = float(parallel.full_tensor(norm))
            finite = math.isfinite(state.grad_norm)
        if not finite:
            # Skip: no update, and the rows keep the carry they had before this step.
            state.optimizer.zero_grad(set_to_none=True)
            state.carry = carry_before
            state.sup_steps = state.sup_steps - 1
            state.halted = torch.zeros_like(state.sup_steps, dtype=torch.bool)
            state.nan_skipped += 1
            state.nan_in_a_row += 1
            if state.nan_in_a_row >= cfg.nan_patience:
                state.should_stop, state.failed = True, True
                state.stop_reason = (f"{state.nan_in_a_row} non-finite steps in a row at step {state.step};"
                                     " training stopped, the last checkpoint is intact. Lower trainer.lr,"
                                     " or try trainer.precision=fp32.")
            return False
        state.nan_in_a_row = 0
        for group in state.optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(cfg, state.step, state.elapsed_s)
        state.optimizer.step()
        state.step += 1
        self._fire(state, Event.STEP_END)
        self._gather_rows(state)
        state.halted = state.sup_steps >= state.max_sup_steps
        self._fire(state, Event.HALT)
        done = state.halted
        n_done = int(done.sum())
        state.examples_finished += n_done
        state.finished_early += int((done & (state.sup_steps < state.n_sup)).sum())
        acc = state.extras.setdefault("acc", _Accumulator())
        acc.add(state, done)
        return True

    def _gather_rows(self, state: TrainState) -> None:
        """From here on the step's per-row outputs cover the global batch, so halting, refill
        and training metrics are decided identically on every rank."""
        if not dist.active():
            return
        q = state.output.q_halt_logits
        state.output = dataclasses.replace(
            state.output, q_halt_logits=None if q is None else dist.gather_rows(q.detach().float()))
        state.seq_correct = dist.gather_rows(state.seq_correct)
        state.token_correct = dist.gather_rows(state.token_correct)
        state.per_sample_loss = dist.gather_rows(state.per_sample_loss)

    # -- the loop -------------------------------------------------------------------------
    def fit(self, ctx: FitContext) -> FitResult:
        cfg = self.cfg
        state = self._state(ctx)
        ckpt_dir = ctx.run_dir / "checkpoints"
        metrics_log = MetricsLog(ctx.run_dir / "metrics.jsonl", enabled=dist.is_main())
        if ctx.resume:
            latest = latest_checkpoint(ckpt_dir)
            if latest is None:
                raise ConfigError(f"--resume: no checkpoint under {ckpt_dir}")
            self.load_checkpoint(state, latest, ctx.config_fingerprint)
            metrics_log.truncate_after(state.step)
            if ctx.log:
                ctx.log.info("resume", step=state.step, checkpoint=str(latest))
        else:
            metrics_log.reset()
        if cfg.compile:
            state.extras["compiled"] = True
            state.model.forward = torch.compile(state.model.forward)  # type: ignore[method-assign]
        self._fire(state, Event.FIT_START)
        progress = _Progress(enabled=ctx.progress and dist.is_main(), total=cfg.max_steps, minutes=cfg.minutes, start_step=state.step)
        t_start = time.monotonic() - state.elapsed_s
        last_log_t, last_log_step, last_log_examples = time.monotonic(), state.step, state.examples_finished
        try:
            with progress:
                while not state.should_stop:
                    if cfg.max_steps is not None and state.step >= cfg.max_steps:
                        state.should_stop, state.stop_reason = True, "max_steps"
                        break
                    if cfg.minutes is not None and state.elapsed_s >= cfg.minutes * 60:
                        state.should_stop, state.stop_reason = True, "time_budget"
                        break
                    stepped = self._train_step(state)
                    state.elapsed_s = time.monotonic() - t_start
                    if dist.active():
                        # One clock and one stop decision for all ranks, or they would part ways.
                        elapsed, stop = dist.agree([state.elapsed_s, float(state.should_stop)], "max")
                        state.elapsed_s, state.should_stop = elapsed, bool(stop)
                    if not stepped:
                        continue
                    if state.step % cfg.log_every == 0:
                        now = time.monotonic()
                        dt = max(now - last_log_t, 1e-9)
                        row = state.extras["acc"].flush(state)  # global figures (all-reduced)
                        row.update(step=state.step, elapsed_s=round(state.elapsed_s, 2),
                                   lr=state.optimizer.param_groups[0]["lr"], grad_norm=state.grad_norm,
                                   examples_per_s=(state.examples_finished - last_log_examples) / dt,
                                   sup_steps_per_s=(state.step - last_log_step) * cfg.batch_size / dt,
                                   early_stop_rate=state.early_stop_rate, nan_skipped=state.nan_skipped,
                                   max_sup_steps=state.max_sup_steps)
                        if hasattr(state.model, "step_scale_values"):
                            row.update(state.model.step_scale_values())
                        state.metrics = row
                        self._fire(state, Event.LOG)
                        metrics_log.write({"kind": "train", **state.metrics})
                        state.history.append(dict(state.metrics))
                        progress.update(state)
                        last_log_t, last_log_step, last_log_examples = now, state.step, state.examples_finished
                    if cfg.eval_every and state.step % cfg.eval_every == 0:
                        self.evaluate_during_training(state, ctx, metrics_log)
                    if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
                        self.save_checkpoint(state, ckpt_dir, ctx.config_fingerprint)
                    progress.advance(state)
        except KeyboardInterrupt:
            state.stop_reason = "interrupted"
            state.should_stop = True
            if cfg.checkpoint_every:
                self.save_checkpoint(state, ckpt_dir, ctx.config_fingerprint)
            raise
        self._fire(state, Event.FIT_END)
        if cfg.checkpoint_every and not state.failed:
            self.save_checkpoint(state, ckpt_dir, ctx.config_fingerprint)
        status: Literal["completed", "stopped", "failed"] = (
            "failed" if state.failed else "completed" if state.stop_reason in {"max_steps", "time_budget"} else "stopped")
        return FitResult(state, status, state.stop_reason)

    def evaluate_during_training(self, state: TrainState, ctx: FitContext, metrics_log: MetricsLog) -> None:
        n = min(self.cfg.eval_samples, len(state.task.eval))
        sub = TaskData(spec=state.task.spec, train=state.task.train,
                       eval=state.task.eval.subset(slice(0, n)))
        metrics: dict[str, float] = {}
        for label in self.weight_labels(state):
            with self.weights(state, label) as model:
                ec = EvalContext(model, sub, state.device, batch_size=self.cfg.eval_batch_size,
                                 precision=state.precision)
                for k, v in run_evaluators(ctx.host, ctx.evaluators, ec).items():
                    metrics[f"{label}/{k}" if label else k] = v
        state.eval_metrics = metrics
        self._fire(state, Event.EVAL)
        metrics_log.write({"kind": "eval", "step": state.step, "elapsed_s": round(state.elapsed_s, 2), **metrics})
        if ctx.log:
            ctx.log.info("eval", step=state.step, **{k: round(v, 4) for k, v in metrics.items()})

    @staticmethod
    def _offers(state: TrainState) -> dict[str, dict[str, torch.Tensor]]:
        """Weights the callbacks offer for evaluation (EMA), by label."""
        offers: dict[str, dict[str, torch.Tensor]] = {}
        for cb in state.callbacks.values():
            offer = getattr(cb, "eval_weights", None)
            extra = offer(state) if offer is not None else None
            if extra is not None:
                label, weights = extra
                offers[label] = weights
        return offers

    def weight_labels(self, state: TrainState) -> list[str]:
        """The weights to evaluate: ``raw`` (the live model), then any a callback offers (``ema``)."""
        return ["raw", *self._offers(state)]

    @contextlib.contextmanager
    def weights(self, state: TrainState, label: str) -> Iterator[nn.Module]:
        """The live model holding the weights called ``label`` for the duration of the block.

        Offered weights are copied into the model's parameters and the live ones are put back
        afterwards, bit for bit. Swapping in place, rather than evaluating a copy of the model,
        works the same for a sharded (FSDP) model, which cannot be copied, and keeps the live
        buffers (a memory bank) in use.
        """
        # Under FSDP, start and end with the parameters sharded (at rest): the offer is laid out
        # like the shards, and an evaluation's forward leaves the root unit gathered.
        parallel.reshard(state.model)
        offered = self._offers(state)[label] if label != "raw" else {}
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

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self, state: TrainState, ckpt_dir: Path, fingerprint: str) -> Path:
        """Every rank calls this (the carry and RNG states are gathered); only rank 0 writes."""
        self._fire(state, Event.SAVE_CHECKPOINT)
        carry = {k: dist.gather_rows(v) for k, v in state.carry.items()}
        prev_loss = state.extras.get("prev_loss")
        prev_loss = dist.gather_rows(prev_loss) if prev_loss is not None else None
        torch_rng = dist.gather_rows(torch.get_rng_state().unsqueeze(0))  # (world, n): one per rank
        # Collectives under FSDP (the shards are gathered to rank 0), so every rank takes part.
        model_state = parallel.full_state_dict(state.model)
        optimizer_state = parallel.optimizer_state_dict(state.model, state.optimizer)
        callback_states = {name: cb.state_dict() for name, cb in state.callbacks.items() if hasattr(cb, "state_dict")}
        final = ckpt_dir / f"step-{state.step:08d}"
        if not dist.is_main():
            return final
        payload = {
            "fingerprint": fingerprint,
            "world_size": dist.world_size(),
            "step": state.step,
            "elapsed_s": state.elapsed_s,
            "max_sup_steps": state.max_sup_steps,
            "model": model_state,
            "optimizer": optimizer_state,
            "generator": state.generator.get_state(),
            "torch_rng": torch_rng,
            "python_rng": _py_rng_state(),
            "stream": state.extras["stream"].state_dict(),
            "active": {"batch": state.batch, "carry": carry, "sup_steps": state.sup_steps,
                       "min_halt_steps": state.min_halt_steps, "halted": state.halted, "fresh": state.fresh,
                       "prev_loss": prev_loss},
            "counters": {"examples_started": state.examples_started, "examples_finished": state.examples_finished,
                         "finished_early": state.finished_early, "nan_skipped": state.nan_skipped},
            "accumulator": state.extras.get("acc", _Accumulator()).state_dict(),
            "callbacks": callback_states,
        }
        if torch.cuda.is_available():
            payload["cuda_rng"] = torch.cuda.get_rng_state_all()
        tmp = ckpt_dir / f".tmp-step-{state.step:08d}"
        shutil.rmtree(tmp, ignore_errors=True)
        save_train_state(tmp, payload)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)  # a folder appears whole or not at all
        atomic_write_json(ckpt_dir / "latest.json", {"checkpoint": final.name, "step": state.step})
        for old in sorted(p for p in ckpt_dir.glob("step-*") if p.is_dir())[:-self.cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def load_checkpoint(self, state: TrainState, folder: Path, fingerprint: str) -> None:
        payload = load_train_state(folder)
        if fingerprint and payload.get("fingerprint") and payload["fingerprint"] != fingerprint:
            raise ConfigError(f"--resume: the checkpoint {folder} was written with a different config;"
                              " resume with the same flags, or start a new run")
        saved_world = int(payload.get("world_size", 1))
        if saved_world != dist.world_size():
            raise ConfigError(f"--resume: the checkpoint {folder} was written by {saved_world} process(es), this run"
                              f" has {dist.world_size()}; resume with --nproc {saved_world} (a resumed run"
                              " continues exactly only with the same number of processes)")
        parallel.load_full_state_dict(state.model, payload["model"])
        parallel.load_optimizer_state_dict(state.model, state.optimizer, payload["optimizer"])
        state.generator.set_state(payload["generator"])
        torch_rng = payload["torch_rng"]
        # clone(): set_rng_state reads from the start of the storage, so a row view would not do.
        torch.set_rng_state((torch_rng[dist.rank()] if torch_rng.dim() == 2 else torch_rng).clone())
        _set_py_rng_state(payload["python_rng"])
        if "cuda_rng" in payload and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        state.extras["stream"].load_state_dict(payload["stream"])
        state.step, state.elapsed_s = int(payload["step"]), float(payload["elapsed_s"])
        state.max_sup_steps = int(payload["max_sup_steps"])
        active = payload["active"]
        dev = state.device
        state.batch = {k: v.to(dev) for k, v in active["batch"].items()}
        state.carry = {k: self._local(state, v).to(dev) for k, v in active["carry"].items()}
        for key in ("sup_steps", "min_halt_steps", "halted", "fresh"):
            value = active.get(key)
            setattr(state, key, value.to(dev) if value is not None else None)
        if active.get("prev_loss") is not None:
            state.extras["prev_loss"] = self._local(state, active["prev_loss"]).to(dev)
        for key, value in payload["counters"].items():
            setattr(state, key, int(value))
        acc = _Accumulator()
        acc.load_state_dict(payload["accumulator"])
        state.extras["acc"] = acc
        for name, cb_state in payload["callbacks"].items():
            if name in state.callbacks and hasattr(state.callbacks[name], "load_state_dict"):
                state.callbacks[name].load_state_dict(cb_state)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    import json

    pointer = ckpt_dir / "latest.json"
    if pointer.exists():
        folder = ckpt_dir / json.loads(pointer.read_text())["checkpoint"]
        if folder.exists():
            return folder
    folders = sorted(p for p in ckpt_dir.glob("step-*") if p.is_dir())
    return folders[-1] if folders else None


def _py_rng_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_py_rng_state(s: list[Any]) -> None:
    random.setstate((s[0], tuple(s[1]), s[2]))


class _Accumulator:
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

    def add(self, state: TrainState, done: torch.Tensor) -> None:
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

    def flush(self, state: TrainState) -> dict[str, float]:
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
        row["train_exact_at_halt"] = self.finished_correct / max(self.finished, 1)
        row["mean_sup_steps"] = self.finished_steps / max(self.finished, 1)
        self.reset()
        return row

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.__dict__.update(s)


class _Progress:
    """A rich progress bar on the shared console; silent when disabled or not a terminal."""

    def __init__(self, enabled: bool, total: int | None, minutes: float | None, start_step: int) -> None:
        from agent_forge.logging import console

        self.enabled = enabled and console.is_terminal
        self.bar = None
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.description}"),
                                TimeElapsedColumn(), console=console, transient=False)
            self.by_time = total is None
            self.task = self.bar.add_task("", total=(minutes * 60 if self.by_time else total),
                                          completed=0 if self.by_time else start_step)

    def __enter__(self) -> "_Progress":
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar:
            self.bar.__exit__(*exc)

    def advance(self, state: TrainState) -> None:
        if self.bar:
            self.bar.update(self.task, completed=state.elapsed_s if self.by_time else state.step)

    def update(self, state: TrainState) -> None:
        if self.bar:
            m = state.metrics
            self.bar.update(self.task, description=(
                f"step {state.step} loss {m.get('loss', 0):.3f} exact {m.get('train_exact_at_halt', 0):.3f}"
                f" steps {m.get('mean_sup_steps', 0):.1f} {m.get('examples_per_s', 0):.0f} ex/s"))
