"""The deep-supervision loop: refill, halting, NaN guard, early stop, metrics."""

import json

import pytest
import torch

from agent_forge.config import apply_overrides
from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.building import build_model
from agent_forge.phases.cognate.config import validate_cognate
from agent_forge.phases.cognate.fit import FitContext
from agent_forge.plugins.loggers import JsonlLogger
from agent_forge.plugins.variants import VARIANTS
from agent_forge.phases.common.validation import carve_validation
from agent_forge.phases.cognate import Callback, CallbackSpec, TrainerSpec
from agent_forge.specs import DatasetSpec


def _fit(host, tmp_path, overrides, variant="trm_tiny", callbacks_extra=None, resume=False):
    raw = apply_overrides(VARIANTS[variant][0], overrides)
    cfg = validate_cognate(host, raw)
    task = carve_validation(host.get(DatasetSpec, cfg.task_name).build(cfg.task, cfg.data_seed), cfg.validation_samples,
                            cfg.data_seed)
    model = build_model(host, cfg, task.spec, cfg.seed)
    # Test callbacks run first, so the built-ins see what they set.
    callbacks = dict(callbacks_extra or {})
    callbacks.update({n: host.get(CallbackSpec, n).build(c) for n, c in cfg.callbacks.items()})
    trainer = host.get(TrainerSpec, cfg.trainer_name).build(cfg.trainer)
    fit = trainer.fit(FitContext(model=model, task=task, run_dir=tmp_path, seed=cfg.seed, callbacks=callbacks,
                                 host=host, evaluators=cfg.evaluators, resume=resume, progress=False,
                                 loggers=JsonlLogger(None, tmp_path)))
    return fit, model


def test_halted_rows_are_refilled_so_halting_raises_examples_per_step(host, tmp_path, tiny):
    class ForceHalt(Callback):
        """Halts every row after its first step, like a Q-head that is always sure."""

        def on_halt(self, trainer, state):
            state.halted = torch.ones_like(state.halted)

    steps = ["trainer.max_steps=6", "trainer.eval_every=null", "callbacks.act=null"]
    plain, _ = _fit(host, tmp_path / "a", tiny + steps)
    halting, _ = _fit(host, tmp_path / "b", tiny + steps, callbacks_extra={"force": ForceHalt()})
    b = 16
    # Without halting each row lives n_sup=3 steps: fresh rows at steps 1 and 4 only.
    assert plain.state.examples_started == 2 * b and plain.state.examples_finished == 2 * b
    # Forced halting: every row is refilled before every step, so 3x the examples in the same steps.
    assert halting.state.examples_started == 6 * b and halting.state.examples_finished == 6 * b
    assert halting.state.early_stop_rate == 1.0 and plain.state.early_stop_rate == 0.0
    assert halting.state.batch["inputs"].shape == plain.state.batch["inputs"].shape  # shape never changes


def test_nan_loss_is_skipped_and_counted(host, tmp_path, tiny):
    class PoisonOnce(Callback):
        poisoned = False

        def on_loss(self, trainer, state):
            if state.step == 2 and not self.poisoned:
                self.poisoned = True
                state.losses["poison"] = torch.tensor(float("nan"))

    fit, _ = _fit(host, tmp_path, tiny + ["trainer.max_steps=5", "trainer.eval_every=null"],
                  callbacks_extra={"poison": PoisonOnce()})
    assert fit.state.nan_skipped == 1 and fit.state.step == 5 and fit.status == "completed"
    assert all(torch.isfinite(p).all() for p in fit.state.model.parameters())


def test_repeated_nans_stop_with_a_clear_message(host, tmp_path, tiny):
    class AlwaysNaN(Callback):
        def on_loss(self, trainer, state):
            state.losses["poison"] = torch.tensor(float("nan"))

    fit, _ = _fit(host, tmp_path, tiny + ["trainer.max_steps=50", "trainer.nan_patience=3",
                                          "trainer.eval_every=null"], callbacks_extra={"poison": AlwaysNaN()})
    assert fit.status == "failed" and "3 non-finite steps in a row" in fit.message
    assert fit.state.step == 0


def test_early_stop_cuts_supervision_at_threshold(host, tmp_path, tiny):
    class FakeAccuracy(Callback):
        def on_log(self, trainer, state):
            state.metrics["train_exact_at_halt"] = 1.0 if state.step >= 4 else 0.0

    fit, _ = _fit(host, tmp_path, tiny + ["trainer.max_steps=8", "trainer.eval_every=null",
                                          "callbacks.early_stop.cut_threshold=0.95", "callbacks.early_stop.cut_to=1"],
                  callbacks_extra={"fake": FakeAccuracy()})
    cb = fit.state.callbacks["early_stop"]
    assert cb.cut_at_step == 4
    assert fit.state.max_sup_steps == 1
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["max_sup_steps"] for r in rows if r["kind"] == "train"] == [3, 3, 1, 1]


def test_monitor_early_stop_names_missing_metric(host, tmp_path, tiny):
    with pytest.raises(Exception, match="not a validation metric; available: .*val/raw/exact_accuracy"):
        _fit(host, tmp_path, tiny + ["trainer.max_steps=8", "validation_samples=8",
                                     "callbacks.early_stop.monitor=val/raw/exact_acc"])


def test_monitor_early_stop_on_plateau(host, tmp_path, tiny):
    fit, _ = _fit(host, tmp_path, tiny + ["trainer.max_steps=400", "trainer.eval_every=2", "validation_samples=8",
                                          "callbacks.early_stop.monitor=val/raw/exact_accuracy",
                                          "callbacks.early_stop.patience=2", "callbacks.early_stop.min_delta=1.0"])
    assert fit.status == "stopped" and "no val/raw/exact_accuracy improvement in 2" in fit.message
    assert fit.state.step == 6  # evals at 2 (best), 4 and 6 (no improvement by 1.0)


def test_metrics_file_has_the_promised_fields(host, tmp_path, tiny):
    _fit(host, tmp_path, tiny + ["trainer.max_steps=4"])
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["kind"] == "train"][-1]
    for key in ("loss", "train_token_accuracy", "train_exact_accuracy", "grad_norm", "mean_sup_steps",
                "examples_per_s", "lr", "early_stop_rate"):
        assert key in train
    ev = [r for r in rows if r["kind"] == "eval"][-1]
    for key in ("raw/exact_accuracy", "ema/exact_accuracy", "raw/halting_accuracy", "raw/mean_halt_steps"):
        assert key in ev


def test_offered_weights_are_swapped_in_for_evaluation_and_the_live_ones_restored(host, tmp_path, tiny):
    fit, model = _fit(host, tmp_path, tiny + ["trainer.max_steps=4", "trainer.eval_every=null"])
    trainer = host.get(TrainerSpec, "deep_supervision").build(fit.state.config)
    assert trainer.weight_labels(fit.state) == ["raw", "ema"]
    live = {n: p.detach().clone() for n, p in model.named_parameters()}
    ema = fit.state.callbacks["ema"].shadow
    with trainer.weights(fit.state, "ema") as module:
        assert module is model
        assert all(torch.equal(p, ema[n]) for n, p in module.named_parameters())
        assert not all(torch.equal(p, live[n]) for n, p in module.named_parameters())
    assert all(torch.equal(p, live[n]) for n, p in model.named_parameters())  # bit for bit
    with pytest.raises(RuntimeError):
        with trainer.weights(fit.state, "ema"):
            raise RuntimeError("an evaluator failed")
    assert all(torch.equal(p, live[n]) for n, p in model.named_parameters())  # restored on errors too


def test_the_halting_head_is_built_only_where_act_trains_it(host):
    def head(variant, *overrides):
        return validate_cognate(host, apply_overrides(VARIANTS[variant][0], list(overrides))).model.halting_head

    assert head("trm_tiny") is True
    assert head("trm_tiny", "callbacks.act=null") is False  # nothing would train it
    assert head("trm_tiny", "model.halting_head=true") is True
    assert VARIANTS["lm_conservative"][0]["model"]["halting_head"] is False  # the LM presets say so
    assert head("lm_conservative") is False
    with pytest.raises(ConfigError, match=r"callbacks\.act is on but model\.halting_head=false.*"
                                        r"model\.halting_head=true.*callbacks\.act=null"):
        head("lm_conservative", "callbacks.act={}")
    assert head("lm_conservative", "callbacks.act={}", "model.halting_head=true") is True
    with pytest.raises(ConfigError, match=r"model\.halting_head=true but callbacks\.act is off.*callbacks\.act=\{\}"):
        head("trm_tiny", "callbacks.act=null", "model.halting_head=true")  # computed, but no loss would reach it


def test_without_act_halting_metrics_are_absent_not_made_up(host, tmp_path, tiny):
    fit, model = _fit(host, tmp_path, tiny + ["trainer.max_steps=4", "callbacks.act=null"])
    assert model.q_head is None and fit.status == "completed"
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    ev = [r for r in rows if r["kind"] == "eval"][-1]
    assert "raw/exact_accuracy" in ev and not any("halt" in key for key in ev)
    train = [r for r in rows if r["kind"] == "train"][-1]
    assert train["mean_sup_steps"] == 3  # every sample ran all n_sup steps


@pytest.mark.slow
def test_compile_traces_the_training_step_once_even_with_evaluations(host, tmp_path, tiny):
    # trainer.compile used to wrap model.forward, so every evaluation (no_grad, another batch
    # size) compiled the recursion again. Only the training forward is compiled now.
    from torch._dynamo.utils import counters

    counters.clear()
    fit, _ = _fit(host, tmp_path, tiny + ["trainer.max_steps=4", "trainer.eval_every=2", "trainer.compile=true"])
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert fit.status == "completed" and [r["step"] for r in rows if r["kind"] == "eval"] == [2, 4]
    assert counters["stats"]["unique_graphs"] == 1
    assert sum(counters["recompiles"].values()) == 0
