"""The official TRM code's training details as options: stable-max cross-entropy
(``trainer.loss``) and the sparse puzzle table trained by sign-SGD (``model.puzzle_emb_sparse``).
Expected values are worked out by hand in each test."""

import json
import math
import types

import pytest
import torch

from agent_forge.checkpoint import load_train_state
from agent_forge.config import apply_overrides
from agent_forge.data import Split
from agent_forge.errors import ConfigError
from agent_forge.models.protocol import ModelOutput
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate
from agent_forge.phases.common.evaluation import predict
from agent_forge.phases.common.losses import token_cross_entropy
from agent_forge.phases.cognate import optimizers
from agent_forge.phases.cognate.losses import compute_task_loss
from agent_forge.phases.cognate.building import build_model
from agent_forge.phases.cognate.config import validate_cognate
from agent_forge.phases.cognate.trainer import FitContext
from agent_forge.phases.cognate.training_config import DeepSupervisionConfig
from agent_forge.plugins.variants import VARIANTS
from agent_forge.phases.cognate import Callback, CallbackSpec, TrainerSpec
from agent_forge.specs import DatasetSpec
from forge_testing import assert_same_training_state

# -- stable-max cross-entropy ---------------------------------------------------------------
# Two positions, three classes; targets 0 and 2.
#   [1, 0, -1]: s = [1+1, 0+1, 1/(1+1)] = [2, 1, 1/2], sum 7/2, p(0) = 2/(7/2) = 4/7  -> CE = log(7/4)
#   [2, -2, 0]: s = [3, 1/(1+2), 1] = [3, 1/3, 1],   sum 13/3, p(2) = 1/(13/3) = 3/13 -> CE = log(13/3)
LOGITS = torch.tensor([[[1.0, 0.0, -1.0], [2.0, -2.0, 0.0]]])
TARGETS = torch.tensor([[0, 2]])
STABLEMAX_CE = [math.log(7 / 4), math.log(13 / 3)]


def test_stablemax_cross_entropy_by_hand():
    ce = token_cross_entropy(LOGITS, TARGETS, "stablemax")
    assert ce.dtype == torch.float64  # computed in float64, as the official loss
    torch.testing.assert_close(ce, torch.tensor([STABLEMAX_CE], dtype=torch.float64))
    ignored = token_cross_entropy(LOGITS, torch.tensor([[0, -100]]), "stablemax")
    torch.testing.assert_close(ignored, torch.tensor([[STABLEMAX_CE[0], 0.0]], dtype=torch.float64))
    # softmax for contrast: [1, 0, -1] -> -log(e / (e + 1 + 1/e))
    soft = token_cross_entropy(LOGITS, TARGETS, "softmax")
    assert soft[0, 0].item() == pytest.approx(-math.log(math.e / (math.e + 1 + 1 / math.e)), rel=1e-6)


def _loss_state():
    return types.SimpleNamespace(
        output=ModelOutput(logits=LOGITS.clone()), batch={"targets": TARGETS}, local=lambda t: t,
        task=types.SimpleNamespace(spec=types.SimpleNamespace(ignore_index=-100)),
        sup_steps=torch.tensor([1]), max_sup_steps=4, fresh=torch.tensor([True]), prev_loss=None)


@pytest.mark.parametrize("kind", ["softmax", "stablemax"])
def test_trainer_loss_option_selects_the_cross_entropy(kind):
    task = compute_task_loss(_loss_state(), DeepSupervisionConfig(max_steps=1, loss=kind))
    e = math.e
    expected = (sum(STABLEMAX_CE) if kind == "stablemax"
                else -math.log(e / (e + 1 + 1 / e)) - math.log(1 / (e * e + e ** -2 + 1))) / 2
    assert task.lm.item() == pytest.approx(expected, rel=1e-6)
    assert task.per_sample.dtype == torch.float32


class FixedLogits(torch.nn.Module):
    n_sup = 1

    def initial_carry(self, batch):
        return {}

    def forward(self, carry, batch):
        return {}, ModelOutput(logits=LOGITS.expand(batch["inputs"].shape[0], -1, -1))


def test_eval_loss_is_the_cross_entropy_the_model_trained_with():
    split = Split(torch.zeros(1, 2, dtype=torch.long), TARGETS)
    p = predict(FixedLogits(), split, n_sup=1, batch_size=4, device=torch.device("cpu"), loss="stablemax")
    assert p.loss_kind == "stablemax" and p.loss == pytest.approx(sum(STABLEMAX_CE) / 2, rel=1e-9)
    assert predict(FixedLogits(), split, n_sup=1, batch_size=4, device=torch.device("cpu")).loss_kind == "softmax"


# -- the sparse puzzle table: sign-SGD ------------------------------------------------------
def test_sign_sgd_changes_only_the_rows_in_the_batch_by_hand():
    table = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 0.25], [3.0, 4.0]]))
    table.grad = torch.tensor([[0.0, 0.0], [0.3, -0.7], [0.0, 0.0]])  # a batch of one id: 1
    opt = optimizers.SignSGD([table], lr=0.25, weight_decay=2.0)
    opt.step()
    # row 1: w - lr * (sign(g) + wd * w) = [0.5 - 0.25 * (1 + 1), 0.25 - 0.25 * (-1 + 0.5)] = [0, 0.375]
    assert torch.equal(table.detach(), torch.tensor([[1.0, -2.0], [0.0, 0.375], [3.0, 4.0]]))


def _sparse_trm():
    torch.manual_seed(0)
    return TRMEnhancedCognate(TRMConfig(d_model=8, n_layers=1, n_heads=2, n=1, T=1, n_sup=2, puzzle_emb_len=2,
                                        puzzle_emb_sparse=True), vocab_size=4, seq_len=3, num_puzzle_ids=3)


def test_trainer_steps_the_puzzle_table_by_sign_sgd_at_its_own_lr_on_the_same_schedule():
    model = _sparse_trm()
    table = model.embed.puzzle
    with torch.no_grad():
        table.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.25] * 2, [0.5, 0.25, -1.0, 2.0] * 2, [3.0, 4.0, 0.0, 1.0] * 2]))
    before = table.detach().clone()
    cfg = DeepSupervisionConfig(max_steps=1, lr=1e-3, weight_decay=0.1, puzzle_emb_lr=0.5, puzzle_emb_weight_decay=2.0)
    opt = optimizers.build_optimizer(model, cfg)
    adamw_params = [p for group in opt.adamw.param_groups for p in group["params"]]
    assert all(p is not table for p in adamw_params)
    assert len(adamw_params) == sum(1 for _ in model.parameters()) - 1

    batch = {"inputs": torch.tensor([[1, 2, 3]]), "puzzle_ids": torch.tensor([1])}
    _, out = model(model.initial_carry(batch), batch)
    out.logits.square().sum().backward()
    assert table.grad[[0, 2]].abs().sum() == 0 and table.grad[1].abs().sum() > 0
    sign = table.grad[1].sign()
    assert all(p is not table for p in optimizers.clipped_parameters(model, opt))

    optimizers.set_lr(opt, cfg, 0.5)  # the schedule's factor, for both optimizers
    assert [g["lr"] for g in opt.param_groups] == [0.5 * 1e-3, 0.5 * 1e-3, 0.5 * 0.5]
    opt.step()
    lr, wd = 0.25, 2.0
    assert torch.equal(table.detach()[[0, 2]], before[[0, 2]])
    assert torch.equal(table.detach()[1], before[1] - lr * (sign + wd * before[1]))
    assert opt.state_dict() == opt.adamw.state_dict()  # sign-SGD keeps nothing to checkpoint


def test_sparse_puzzle_table_under_fsdp_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="trainer.parallel=ddp"):
        optimizers.check_shardable(_sparse_trm())
    optimizers.check_shardable(TRMEnhancedCognate(TRMConfig(d_model=8, n_heads=2), vocab_size=4, seq_len=3))


# -- a paper preset trains, checkpoints and resumes exactly ----------------------------------
def _fit(host, run_dir, overrides, variant, callbacks_extra=None, resume=False):
    cfg = validate_cognate(host, apply_overrides(VARIANTS[variant][0], overrides))
    task = host.get(DatasetSpec, cfg.task_name).build(cfg.task, cfg.data_seed)
    model = build_model(host, cfg, task.spec, cfg.seed)
    callbacks = dict(callbacks_extra or {})
    callbacks.update({n: host.get(CallbackSpec, n).build(c) for n, c in cfg.callbacks.items()})
    trainer = host.get(TrainerSpec, cfg.trainer_name).build(cfg.trainer)
    return trainer.fit(FitContext(model=model, task=task, run_dir=run_dir, seed=cfg.seed, callbacks=callbacks,
                                  host=host, evaluators=cfg.evaluators, resume=resume, progress=False))


def _latest(run_dir):
    latest = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    return load_train_state(run_dir / "checkpoints" / latest["checkpoint"])


def test_paper_preset_resumes_bit_identically(host, tmp_path, tiny):
    class Crash(Callback):
        def on_step_start(self, trainer, state):
            if state.step == 5:
                raise RuntimeError("crash after the checkpoint at step 4")

    # The preset's recipe (AdamATan2, decay on every parameter, no clip, exploration redrawn per
    # step) resumes exactly too; compile is off only to keep the test fast.
    sets = tiny + ["trainer.max_steps=8", "trainer.checkpoint_every=4", "trainer.eval_every=null",
                   "trainer.compile=false"]
    full = _fit(host, tmp_path / "full", sets, "trm_paper")
    assert isinstance(full.state.optimizer, optimizers.CombinedOptimizer)
    assert isinstance(full.state.optimizer.adamw, optimizers.AdamATan2)
    assert "embed.puzzle" not in full.state.callbacks["ema"].shadow
    assert full.state.model.embed.puzzle.detach().abs().sum() > 0  # sign-SGD moved puzzle 0's row
    with pytest.raises(RuntimeError, match="crash"):
        _fit(host, tmp_path / "crashed", sets, "trm_paper", callbacks_extra={"crash": Crash()})
    resumed = _fit(host, tmp_path / "crashed", sets, "trm_paper", resume=True)
    assert resumed.state.step == 8
    assert_same_training_state(_latest(tmp_path / "full"), _latest(tmp_path / "crashed"))
