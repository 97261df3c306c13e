"""The official TRM training recipe as options: the epoch budget, AdamATan2, weight decay on every
parameter, no clipping, torch.compile (with an eager fallback), and the paper presets that use
them. Expected values are worked out from the official code's formulas in each test."""

from __future__ import annotations

import math
import types

import pytest
import torch

from agent_forge.config import apply_overrides
from agent_forge.data import Split, TaskData
from agent_forge.errors import ConfigError
from agent_forge.phases.cognate import optimizers
from agent_forge.phases.cognate.config import validate_cognate
from agent_forge.phases.cognate.phase import CognatePhase
from agent_forge.phases.cognate.schedule import epoch_size, epoch_steps, resolve_budget
from agent_forge.phases.cognate.trainer import CompiledOrEager
from agent_forge.phases.cognate.training_config import DeepSupervisionConfig
from agent_forge.plugins.variants import VARIANTS
from agent_forge.runner import RunOptions
from agent_forge.phases.cognate import CallbackSpec, TrainerSpec
from agent_forge.specs import DatasetSpec

PAPER = ("trm_paper", "trm_paper_attention", "trm_maze", "trm_arc")


def _task(n: int, info: dict | None = None, meta: dict | None = None, extras: dict | None = None) -> TaskData:
    x = torch.zeros(n, 4, dtype=torch.long)
    split = Split(x, x.clone(), extras=extras or {}, meta=meta or {})
    spec = types.SimpleNamespace(info={})
    return TaskData(spec=spec, train=split, eval=split, info=info or {})  # type: ignore[arg-type]


# -- the epoch budget ---------------------------------------------------------------------------
def test_epochs_become_the_official_step_count():
    # pretrain.py: total_steps = int(epochs * total_groups * mean_puzzle_examples / global_batch_size)
    official = _task(5, info={"total_groups": 10, "mean_puzzle_examples": 3.5})
    assert epoch_size(official) == (10, 3.5, "task info")
    assert epoch_steps(7, official, 16) == int(7 * 10 * 3.5 / 16) == 15
    # Without the task's counts: one group per training row, one example each.
    assert epoch_steps(7, _task(40), 16) == int(7 * 40 / 16) == 17
    # Sudoku-Extreme's 1,000 puzzles, 50,000 epochs at batch 768: the official 65,104 steps.
    assert epoch_steps(50_000, _task(1000), 768) == 65_104
    # Rows of augmented puzzles (ARC): original puzzles are the groups, rows per augmented puzzle the mean.
    puzzle = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])  # 2 originals
    augmented = torch.tensor([1, 1, 2, 2, 3, 3, 3, 4, 4, 4])  # 4 augmented puzzles, 10 rows
    arc_like = _task(10, meta={"puzzle": puzzle}, extras={"puzzle_ids": augmented})
    assert epoch_size(arc_like) == (2, 2.5, "training rows by puzzle")


def _fit(host, run_dir, overrides):
    from agent_forge.phases.cognate.fit import FitContext
    from agent_forge.phases.cognate.building import build_model

    cfg = validate_cognate(host, apply_overrides(VARIANTS["trm_tiny"][0], overrides))
    task = host.get(DatasetSpec, cfg.task_name).build(cfg.task, cfg.data_seed)
    trainer = host.get(TrainerSpec, cfg.trainer_name).build(cfg.trainer)
    callbacks = {n: host.get(CallbackSpec, n).build(c) for n, c in cfg.callbacks.items()}
    return trainer.fit(FitContext(model=build_model(host, cfg, task.spec, 0), task=task, run_dir=run_dir, seed=0,
                                  callbacks=callbacks, host=host, evaluators=cfg.evaluators, progress=False)), None


def test_the_epoch_budget_ends_training_at_that_step_and_max_steps_caps_it(host, tmp_path, tiny):
    # TINY: 64 training rows, batch 16: 2.5 epochs = int(2.5 * 64 * 1 / 16) = 10 steps.
    fit, _ = _fit(host, tmp_path / "a", tiny + ["trainer.epochs=2.5", "trainer.eval_every=null"])
    assert fit.state.step == 10 and fit.status == "completed" and fit.state.config.max_steps == 10
    fit, _ = _fit(host, tmp_path / "b", tiny + ["trainer.epochs=2.5", "trainer.max_steps=4", "trainer.eval_every=null"])
    assert fit.state.step == 4  # whichever budget ends first
    with pytest.raises(ConfigError, match=r"trainer.epochs=0.1 is less than one optimizer step"):
        resolve_budget(DeepSupervisionConfig(epochs=0.1, batch_size=768), _task(1000))


def test_max_steps_flag_replaces_the_presets_epoch_budget(host):
    raw = CognatePhase(host).apply_run_options(VARIANTS["trm_paper"][0], RunOptions.checked(max_steps=50))
    cfg = validate_cognate(host, raw)
    assert cfg.trainer.max_steps == 50 and cfg.trainer.epochs is None and cfg.trainer.minutes is None


# -- AdamATan2 ----------------------------------------------------------------------------------
def _official_adam_atan2(p, grads, lr, betas, wd):
    """The official update, from the adam-atan2 package's CUDA kernel (csrc/adam_atan2.cu) and its
    reference test: p *= 1 - lr*wd; m, v = Adam's moments (lerp); p -= lr / (1 - b1^t) *
    atan2(m, sqrt(v) / sqrt(1 - b2^t))."""
    b1, b2 = betas
    p, m, v = p.clone().double(), torch.zeros_like(p).double(), torch.zeros_like(p).double()
    for t, g in enumerate(grads, 1):
        g = g.double()
        p = p * (1 - lr * wd)
        m = m + (1 - b1) * (g - m)
        v = v + (1 - b2) * (g * g - v)
        p = p - lr / (1 - b1 ** t) * torch.atan2(m, v.sqrt() / math.sqrt(1 - b2 ** t))
    return p


def test_adam_atan2_first_step_by_hand():
    # p = 1, g = 0.5, lr = 0.1, wd = 0.1, betas (0.9, 0.95): p -> 0.99; m = 0.05, v = 0.0125;
    # sqrt(v / (1 - 0.95)) = 0.5; step = 0.1 / (1 - 0.9) * atan2(0.05, 0.5) = atan(0.1).
    p = torch.nn.Parameter(torch.tensor([1.0]))
    opt = optimizers.AdamATan2([{"params": [p], "weight_decay": 0.1}], lr=0.1, betas=(0.9, 0.95))
    p.grad = torch.tensor([0.5])
    opt.step()
    assert p.item() == pytest.approx(0.99 - math.atan(0.1), abs=1e-7)


def test_adam_atan2_matches_the_official_update_and_the_package_defaults_do_not():
    from adam_atan2_pytorch import AdamAtan2

    torch.manual_seed(0)
    start = torch.randn(4, 3)
    grads = [torch.randn(4, 3) * s for s in (1.0, 0.01, 3.0, 0.5, 1e-4, 2.0)]
    lr, betas, wd = 0.05, (0.9, 0.95), 0.3
    expected = _official_adam_atan2(start, grads, lr, betas, wd)

    def run(make):
        p = torch.nn.Parameter(start.clone())
        opt = make([{"params": [p], "weight_decay": wd}])
        for g in grads:
            p.grad = g.clone()
            opt.step()
        return p.detach().double()

    ours = run(lambda groups: optimizers.AdamATan2(groups, lr=lr, betas=betas))
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)
    # The package as it comes (a = 1.27, b = 1), and even at a = b = 1 (bias correction inside
    # atan2), takes other steps: that is why the subclass passes a = b = 1 / (1 - beta1^t).
    for a in (1.27, 1.0):
        plain = run(lambda groups: AdamAtan2(groups, lr=lr, betas=betas, a=a, b=1.0))
        assert (plain - expected).abs().max() > 1e-3


def test_adam_atan2_corrects_bias_per_parameter_when_one_skipped_steps():
    """A parameter without a gradient at some step keeps its own step count, as the official
    kernel does (its state_steps are per tensor)."""
    torch.manual_seed(1)
    a0, b0 = torch.randn(3), torch.randn(3)
    ga, gb = [torch.randn(3) for _ in range(3)], [torch.randn(3) for _ in range(2)]
    a, b = torch.nn.Parameter(a0.clone()), torch.nn.Parameter(b0.clone())
    opt = optimizers.AdamATan2([{"params": [a, b], "weight_decay": 0.1}], lr=0.01)
    for step in range(3):
        a.grad = ga[step].clone()
        b.grad = gb[step - 1].clone() if step else None  # b gets no gradient at the first step
        opt.step()
    torch.testing.assert_close(a.detach().double(), _official_adam_atan2(a0, ga, 0.01, (0.9, 0.95), 0.1),
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(b.detach().double(), _official_adam_atan2(b0, gb, 0.01, (0.9, 0.95), 0.1),
                               rtol=0, atol=1e-6)
    assert opt.param_groups[0]["params"] == [a, b] and opt.param_groups[0]["a"] == 1.0  # groups put back


def test_optimizer_option_and_decay_on_every_parameter(host, tiny):
    from agent_forge.phases.cognate.building import build_model

    def built(*overrides):
        cfg = validate_cognate(host, apply_overrides(VARIANTS["trm_tiny"][0], [*tiny, *overrides]))
        model = build_model(host, cfg, host.get(DatasetSpec, cfg.task_name).build(cfg.task, 0).spec, 0)
        return model, optimizers.build_optimizer(model, cfg.trainer)

    model, adamw = built()
    assert type(adamw) is torch.optim.AdamW
    bias = model.q_head.bias
    assert any(p is bias for p in adamw.param_groups[1]["params"]) and adamw.param_groups[1]["weight_decay"] == 0
    model, atan2 = built("trainer.optimizer=adam_atan2", "trainer.decay_all=true")
    assert isinstance(atan2, optimizers.AdamATan2) and len(atan2.param_groups) == 2
    decayed = atan2.param_groups[0]
    assert len(decayed["params"]) == len(list(model.parameters())) and not atan2.param_groups[1]["params"]
    assert decayed["weight_decay"] == 0.1 and any(p is model.q_head.bias for p in decayed["params"])
    with pytest.raises(ConfigError, match="trainer.optimizer"):
        built("trainer.optimizer=adam")


# -- torch.compile ------------------------------------------------------------------------------
def test_a_failed_compile_falls_back_to_eager_with_a_warning(monkeypatch):
    from torch._dynamo.exc import TorchDynamoException

    warnings = []
    log = types.SimpleNamespace(warning=lambda event, **kw: warnings.append((event, kw)))

    def broken_compile(module):
        def call(*args):
            raise TorchDynamoException("no C++ compiler found")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    layer = torch.nn.Linear(2, 2)
    forward = CompiledOrEager(layer, log)
    x = torch.ones(1, 2)
    assert torch.equal(forward(x), layer(x)) and torch.equal(forward(x), layer(x))
    assert forward.mode == "eager" and len(warnings) == 1
    event, fields = warnings[0]
    assert event == "compile.failed" and "no C++ compiler" in fields["error"] and "trainer.compile=false" in fields["note"]

    def model_bug(module):
        def call(*args):
            raise ValueError("a shape error in the model")
        return call

    monkeypatch.setattr(torch, "compile", model_bug)
    with pytest.raises(ValueError, match="shape error"):  # not a compiler failure: raised, not hidden
        CompiledOrEager(layer, log)(x)


# -- the paper presets ----------------------------------------------------------------------------
@pytest.mark.parametrize("variant", PAPER)
def test_paper_presets_run_the_official_recipe(host, variant):
    cfg = validate_cognate(host, VARIANTS[variant][0])
    t = cfg.trainer
    assert t.epochs == (100_000 if variant == "trm_arc" else 50_000) and t.minutes is None and t.max_steps is None
    assert t.batch_size == 768 and t.optimizer == "adam_atan2" and t.decay_all and t.grad_clip is None
    assert t.compile and t.schedule == "constant" and t.loss == "stablemax"
    assert cfg.callbacks["act"].exploration == "per_step" and cfg.callbacks["ema"].warmup is False
    assert cfg.validation_samples == 0  # every training row trains, as in the official code


def test_other_presets_keep_their_recipe(host):
    cfg = validate_cognate(host, VARIANTS["trm_small"][0])
    t = cfg.trainer
    assert (t.optimizer, t.decay_all, t.grad_clip, t.compile, t.epochs) == ("adamw", False, 1.0, "auto", None)
    assert t.minutes == 8.5 and cfg.callbacks["act"].exploration == "per_sample"
