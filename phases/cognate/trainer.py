"""DeepSupervisionTrainer: trains any model that follows the model protocol.

Read this file top to bottom: set-up, one step, the loop. The event list in
:mod:`agent_forge.phases.cognate.events` is its map. Two ideas carry it:

* **Deep supervision with a carry.** Every optimizer step runs *one* supervision step on a batch
  of B rows; each row is a sample somewhere between its first and its ``max_sup_steps``-th step.
  The carry (y, z) is detached between steps, so each step is its own loss and update.
* **Refill, not mask.** A row whose sample halted (by the Q-head or at the step limit) is
  refilled with a fresh training example and a fresh carry before the next step, as the
  official TRM code does. The batch shape never changes, and halting early means more examples
  per second instead of idle rows.

Everything that shapes the future of a run is saved by
:func:`~agent_forge.phases.cognate.checkpointing.save_checkpoint` (its ``checkpoint_parts`` is
the one list), so a resumed run on the CPU reaches bit-identical weights. Rooms beside this one:
``training_config`` (the config), ``schedule`` (lr and data stream), ``losses``,
``training_metrics`` (metric windows, progress bar), ``weights`` (raw/EMA evaluation),
``checkpointing``; what the phase hands in and gets back is in ``fit``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import time
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from agent_forge import distributed as dist
from agent_forge import parallel
from agent_forge.data import Split, TaskData
from agent_forge.errors import ConfigError, RunInterrupted
from agent_forge.loggers import Logger
from agent_forge.models.protocol import RecursiveModel, merge_carry
from agent_forge.phases.common.evaluation import autocast
from agent_forge.phases.cognate import checkpointing, optimizers
from agent_forge.phases.cognate.callback import CallbackList
from agent_forge.phases.cognate.fit import FitContext, FitResult
from agent_forge.phases.cognate.interrupts import Interrupts
from agent_forge.phases.cognate.losses import compute_task_loss
from agent_forge.phases.cognate.schedule import DataStream, epoch_size, lr_factor, resolve_budget
from agent_forge.phases.cognate.state import TrainState
from agent_forge.phases.cognate.training_config import (DeepSupervisionConfig, check_batch_split, resolve_device,
                                                     resolve_precision)
from agent_forge.phases.cognate.training_metrics import LogWindow, ProgressBar
from agent_forge.phases.cognate.weights import evaluate_weights, handoff_label, swapped_in, weight_labels


class DeepSupervisionTrainer:
    def __init__(self, cfg: DeepSupervisionConfig) -> None:
        self.cfg = cfg
        #: The run's callbacks, in their configured order (set when a fit starts).
        self.callbacks = CallbackList({})

    def weight_labels(self, state: TrainState) -> list[str]:
        return weight_labels(state)

    def handoff_label(self, state: TrainState) -> str:
        return handoff_label(state)

    def weights(self, state: TrainState, label: str) -> contextlib.AbstractContextManager[nn.Module]:
        return swapped_in(state, label)

    # -- set-up ---------------------------------------------------------------------------
    def _state(self, ctx: FitContext) -> TrainState:
        # trainer.epochs becomes max_steps here, where the training data is known.
        cfg = self.cfg = resolve_budget(self.cfg, ctx.task)
        if cfg.epochs is not None and ctx.log:
            groups, mean, source = epoch_size(ctx.task)
            ctx.log.info("budget", epochs=cfg.epochs, total_groups=groups, mean_puzzle_examples=round(mean, 4),
                         counted_from=source, max_steps=cfg.max_steps)
        if not isinstance(ctx.model, RecursiveModel):
            raise ConfigError(f"{type(ctx.model).__name__} does not follow the model protocol (n_sup,"
                              " initial_carry(batch), forward(carry, batch)); see docs/plugins.md")
        self.callbacks = CallbackList(ctx.callbacks)  # refuses an object that is not a Callback
        device = resolve_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        check_batch_split(cfg.batch_size, dist.world_size())
        model = ctx.model.to(device)
        # FSDP shards before the optimizer is built: AdamW must hold (and size its moments by)
        # the shards, not the full parameters.
        sharded = dist.active() and cfg.parallel == "fsdp"
        if sharded:
            optimizers.check_shardable(model)
            parallel.shard(model, device)
        optimizer = optimizers.build_optimizer(model, cfg)
        generator = torch.Generator().manual_seed(ctx.seed)
        forward_module = model
        if dist.active() and not sharded:
            from torch.nn.parallel import DistributedDataParallel

            # Parameters are broadcast from rank 0 here, so every rank starts from the same weights.
            forward_module = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=bool(getattr(model, "has_unused_parameters", False)))
        state = TrainState(model=model, optimizer=optimizer, task=ctx.task, device=device, run_dir=ctx.run_dir,
                           config=cfg, generator=generator, stream=DataStream(len(ctx.task.train), generator),
                           callbacks=ctx.callbacks, precision=resolve_precision(cfg.precision, device),
                           rows=dist.local_rows(cfg.batch_size), forward_module=forward_module)
        state.max_sup_steps = state.n_sup
        return state

    def compile_for_training(self, state: TrainState, log: Any = None) -> None:
        """``trainer.compile``: torch.compile the module that runs the training step, once.

        Only the training forward is compiled (``state.forward_module``; the DDP wrapper where
        there is one). Evaluation calls ``state.model`` and stays eager: it runs under
        ``no_grad`` and at the eval batch size, and each of those (grad mode, a new shape, a
        smaller last batch) would otherwise compile the whole recursion again. The training
        batch never changes shape (refill, not mask), so the forward is traced once, and
        AOTAutograd adds one backward graph: two compiles per run (docs/performance.md).

        Where compiling fails (no C++ compiler for the CPU backend, an unsupported op), the run
        goes on eager with a warning that says so, rather than dying on a speed option.
        """
        state.forward_module = CompiledOrEager(state.forward_module, log)

    # -- the batch: draw and refill -------------------------------------------------------
    def _draw(self, state: TrainState, k: int) -> dict[str, torch.Tensor]:
        batch = state.task.train.batch(state.stream.take(k))
        if state.task.augment is not None:
            batch = state.task.augment(batch, state.generator)
        state.examples_started += k
        return {key: v.to(state.device) for key, v in batch.items()}

    def _refill(self, state: TrainState) -> None:
        """Replace halted rows with fresh examples and a fresh carry."""
        b = self.cfg.batch_size
        if not state.batch:
            state.batch = self._draw(state, b)
            state.carry = state.model.initial_carry(state.local_batch())
            state.sup_steps = torch.zeros(b, dtype=torch.long, device=state.device)
            state.min_halt_steps = torch.ones(b, dtype=torch.long, device=state.device)
            state.fresh = torch.ones(b, dtype=torch.bool, device=state.device)
            return
        halted = state.halted
        state.fresh = halted.clone()
        if not bool(halted.any()):
            return
        new = self._draw(state, int(halted.sum()))
        rows = halted.nonzero().flatten()
        for key in state.batch:
            state.batch[key] = state.batch[key].index_copy(0, rows, new[key])
        fresh_carry = state.model.initial_carry(state.local_batch())
        state.carry = merge_carry(state.carry, fresh_carry, state.local(halted))
        state.sup_steps = torch.where(halted, torch.zeros_like(state.sup_steps), state.sup_steps)

    # -- one step -------------------------------------------------------------------------
    def _train_step(self, state: TrainState) -> bool:
        """One supervision step for every row; False if it was skipped as non-finite."""
        cfg = self.cfg
        self._refill(state)
        self.callbacks.on_step_start(self, state)
        carry_before = state.carry
        with autocast(state.device, state.precision):
            state.carry, state.output = state.forward_module(state.carry, state.local_batch())
        state.sup_steps = state.sup_steps + 1
        task = compute_task_loss(state, cfg)
        state.token_correct, state.seq_correct = task.token_correct, task.seq_correct
        state.per_sample_loss = task.per_sample
        if cfg.improvement_reward_scale > 0:
            state.prev_loss = task.per_sample  # the next step's improvement penalty compares with it
        state.losses = {"lm": task.lm, **state.output.aux_losses}
        self.callbacks.on_loss(self, state)
        loss = sum(state.losses.values())
        state.optimizer.zero_grad(set_to_none=True)
        # Every rank must skip together, or the others would wait forever in DDP's all-reduce.
        finite = dist.agree([float(bool(torch.isfinite(loss)))], "min")[0] > 0
        if finite:
            loss.backward()
            self.callbacks.on_after_backward(self, state)
            params = optimizers.clipped_parameters(state.model, state.optimizer)
            # With no clip the norm is still measured (for the metrics); scaling by 1 is exact.
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip or math.inf)
            # Of the averaged gradients, so the same on every rank (gathered from FSDP's shards).
            state.grad_norm = float(parallel.full_tensor(norm))
            finite = math.isfinite(state.grad_norm)
        if not finite:
            self._skip_step(state, carry_before)
            return False
        state.nan_in_a_row = 0
        optimizers.set_lr(state.optimizer, cfg, lr_factor(cfg, state.step, state.elapsed_s))
        state.optimizer.step()
        state.step += 1
        self.callbacks.on_step_end(self, state)
        self._gather_rows(state)
        state.halted = state.sup_steps >= state.max_sup_steps
        self.callbacks.on_halt(self, state)
        done = state.halted
        state.examples_finished += int(done.sum())
        state.finished_early += int((done & (state.sup_steps < state.n_sup)).sum())
        state.accumulator.add(state, done)
        return True

    def _skip_step(self, state: TrainState, carry_before: dict[str, torch.Tensor]) -> None:
        """A non-finite loss or gradient: no update, and the rows keep the carry they had."""
        state.optimizer.zero_grad(set_to_none=True)
        state.carry = carry_before
        state.sup_steps = state.sup_steps - 1
        state.halted = torch.zeros_like(state.sup_steps, dtype=torch.bool)
        state.nan_skipped += 1
        state.nan_in_a_row += 1
        if state.nan_in_a_row >= self.cfg.nan_patience:
            state.should_stop, state.failed = True, True
            state.stop_reason = (f"{state.nan_in_a_row} non-finite steps in a row at step {state.step};"
                                 f" training stopped, {checkpointing.saved_note(state.run_dir / 'checkpoints')}."
                                 " Lower trainer.lr,"
                                 " or try trainer.precision=fp32.")

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

    # -- steps without the loop (forge ablate --equal-time times them) --------------------
    def start(self, ctx: FitContext) -> TrainState:
        """The state :meth:`fit` would train, callbacks started; nothing is logged or saved."""
        state = self._state(ctx)
        self.callbacks.on_fit_start(self, state)
        return state

    def step(self, state: TrainState) -> bool:
        """One optimizer step of :meth:`fit`'s loop body (:meth:`_train_step`)."""
        return self._train_step(state)

    # -- the loop -------------------------------------------------------------------------
    def fit(self, ctx: FitContext) -> FitResult:
        state = self._state(ctx)
        cfg = self.cfg  # after _state: with the epoch budget resolved into max_steps
        ckpt_dir = ctx.run_dir / "checkpoints"
        resumed_at: int | None = None
        if ctx.resume:
            latest = checkpointing.resume_from_newest_intact(state, ckpt_dir, ctx.config_fingerprint, ctx.log)
            resumed_at = state.step
            if ctx.log:
                ctx.log.info("resume", step=state.step, checkpoint=str(latest))
        ctx.loggers.start(ctx.config, resume_step=resumed_at)
        auto_compile = None
        if cfg.compile == "auto":  # decided after a few eager steps (phases/cognate/autocompile.py)
            from agent_forge.phases.cognate.autocompile import AutoCompile

            auto_compile = AutoCompile(state, cfg, lambda module: CompiledOrEager(module, ctx.log), ctx.log)
        elif cfg.compile:
            self.compile_for_training(state, ctx.log)
        self.callbacks.on_fit_start(self, state)
        progress = ProgressBar(enabled=ctx.progress and dist.is_main(), total=cfg.max_steps, minutes=cfg.minutes,
                               start_step=state.step, log=ctx.log)
        t_start = time.monotonic() - state.elapsed_s
        window = LogWindow(time.monotonic(), state.step, state.examples_finished)
        try:
            with progress, Interrupts() as interrupts:
                stop_signal: int | None = None  # a signal every rank has seen (agreed below)
                while not state.should_stop:
                    if stop_signal is not None or self._budget_spent(state):
                        break
                    stepped = self._train_step(state)
                    state.elapsed_s = time.monotonic() - t_start
                    if auto_compile is not None and not auto_compile.done:
                        auto_compile.after_step(state)
                    stop_signal = interrupts.signum
                    if dist.active():
                        # One clock, one stop and one interrupt decision for all ranks, or they
                        # would part ways (a signal reaches each rank at its own moment).
                        elapsed, stop, signum = dist.agree(
                            [state.elapsed_s, float(state.should_stop), float(stop_signal or 0)], "max")
                        state.elapsed_s, state.should_stop, stop_signal = elapsed, bool(stop), int(signum) or None
                    if not stepped:
                        continue
                    if state.step % cfg.log_every == 0:
                        self._log(state, window, ctx.loggers)
                        progress.update(state)
                    if cfg.eval_every and state.step % cfg.eval_every == 0:
                        self.evaluate_during_training(state, ctx)
                    if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
                        self._save(state, ckpt_dir, ctx)
                    progress.track(state)
                if stop_signal is not None:
                    self._stop_on_interrupt(state, ckpt_dir, ctx, signal.Signals(stop_signal).name)
        except RunInterrupted:
            ctx.loggers.finish("interrupted")
            raise
        except BaseException as exc:
            state.should_stop, state.failed = True, True
            state.stop_reason = state.stop_reason or f"{type(exc).__name__}: {exc}"
            self.callbacks.on_exception(self, state, exc)
            ctx.loggers.finish("interrupted" if isinstance(exc, (RunInterrupted, KeyboardInterrupt)) else "failed")
            raise
        self.callbacks.on_fit_end(self, state)
        # Always, not only with --checkpoint-every: the final evaluation can take long (an LM's, a
        # large eval split), and a kill there must not lose the training that just finished.
        final = self._save(state, ckpt_dir, ctx) if not state.failed else None
        status: Literal["completed", "stopped", "failed"] = (
            "failed" if state.failed else "completed" if state.stop_reason in {"max_steps", "time_budget"} else "stopped")
        return FitResult(state, status, state.stop_reason, checkpoint=final)

    def _stop_on_interrupt(self, state: TrainState, ckpt_dir: Path, ctx: FitContext, name: str) -> None:
        """Save the last finished step (it is a consistent boundary: the step in flight when the
        signal came was completed) and raise :class:`RunInterrupted`."""
        folder = self._save(state, ckpt_dir, ctx)
        self.callbacks.on_exception(self, state, KeyboardInterrupt(name))
        code = 128 + int(getattr(signal, name))
        raise RunInterrupted(f"interrupted by {name} at step {state.step}; saved checkpoint {folder}",
                             signal_name=name, step=state.step, checkpoint=folder, exit_code=code)

    def _budget_spent(self, state: TrainState) -> bool:
        cfg = self.cfg
        if cfg.max_steps is not None and state.step >= cfg.max_steps:
            state.should_stop, state.stop_reason = True, "max_steps"
        elif cfg.minutes is not None and state.elapsed_s >= cfg.minutes * 60:
            state.should_stop, state.stop_reason = True, "time_budget"
        return state.should_stop

    def _log(self, state: TrainState, window: LogWindow, loggers: Logger) -> None:
        state.metrics = window.close(state, self.cfg.batch_size)
        self.callbacks.on_log(self, state)
        loggers.log_metrics("train", state.step, state.metrics)
        state.history.append(dict(state.metrics))

    def evaluate_during_training(self, state: TrainState, ctx: FitContext) -> None:
        """The first ``eval_samples`` rows of the eval split, every weights label, **logged only**
        (``raw/...``, ``ema/...``: a curve to watch), and of the validation split when the run has
        one (``val/raw/...``). Callbacks see only the validation figures (``state.eval_metrics``,
        empty without a validation split): the eval split is reported, so nothing may decide on
        it, not even when to stop."""
        task, n = state.task, self.cfg.eval_samples
        reported = evaluate_weights(self, state, _first_rows(task, task.eval, n), ctx.host, ctx.evaluators,
                                    self.cfg.eval_batch_size).flat()
        state.eval_metrics = {}
        if task.validation is not None:
            validation = evaluate_weights(self, state, _first_rows(task, task.validation, n), ctx.host,
                                          ctx.evaluators, self.cfg.eval_batch_size)
            state.eval_metrics = {f"val/{k}": v for k, v in validation.flat().items()}
        self.callbacks.on_eval(self, state)
        row = {**reported, **state.eval_metrics}
        ctx.loggers.log_metrics("eval", state.step, {"elapsed_s": round(state.elapsed_s, 2), **row})
        if ctx.log:
            ctx.log.info("eval", step=state.step, **{k: round(v, 4) for k, v in row.items()})

    def _save(self, state: TrainState, ckpt_dir: Path, ctx: FitContext) -> Path:
        self.callbacks.on_save_checkpoint(self, state)
        # A step already saved (periodically, then on an interrupt or at the end) is kept, not
        # rewritten; every rank takes rank 0's view of that (see save_checkpoint).
        return checkpointing.save_checkpoint(state, ckpt_dir, ctx.config_fingerprint, self.cfg.keep_checkpoints)


def _first_rows(task: TaskData, split: Split, n: int) -> TaskData:
    """``task`` whose eval split is the first ``n`` rows of ``split`` (what the evaluators read)."""
    return dataclasses.replace(task, eval=split.subset(slice(0, min(n, len(split)))))


class CompiledOrEager:
    """``torch.compile(module)``, called like the module; if its first call fails inside the
    compiler (torch._dynamo or torch._inductor raised: no C++ compiler for the CPU backend, an op
    it cannot trace), every call from then on runs ``module`` eagerly, after one warning naming
    the error. Errors after a successful first call, and errors of the model itself, are raised."""

    def __init__(self, module: nn.Module, log: Any = None) -> None:
        self.module, self.compiled, self.log = module, torch.compile(module), log
        self.mode: Literal["first", "compiled", "eager"] = "first"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.mode == "compiled":
            return self.compiled(*args, **kwargs)
        if self.mode == "eager":
            return self.module(*args, **kwargs)
        try:
            out = self.compiled(*args, **kwargs)
        except Exception as exc:
            if not type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
                raise
            self.mode = "eager"
            message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            if self.log is not None:
                self.log.warning("compile.failed", error=message[:300], fallback="eager",
                                 note="trainer.compile=true could not compile the training step here; training"
                                      " continues uncompiled (slower, same results). --set trainer.compile=false"
                                      " skips the attempt")
            return self.module(*args, **kwargs)
        self.mode = "compiled"
        return out
