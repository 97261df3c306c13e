"""The Q-head option ``model.halting_head_kind``: ``linear`` (the default, unchanged: older
artifacts load strictly and a seed builds the same weights) or ``mlp`` (seed 001's remedy)."""

import json

import pytest
import torch

from agent_forge.config import apply_overrides
from agent_forge.errors import ConfigError
from agent_forge.models.fields import OptionError
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate
from agent_forge.phases.cognate.phase import validate_cognate
from agent_forge.phases.common.loading import load_model
from agent_forge.plugins.variants import VARIANTS

SMALL = dict(d_model=16, n_layers=1, n_heads=2, n=1, T=2, n_sup=3)


def _model(**kw):
    torch.manual_seed(0)
    return TRMEnhancedCognate(TRMConfig(**{**SMALL, **kw}), vocab_size=5, seq_len=6)


def _batch(b=4):
    return {"inputs": torch.randint(0, 5, (b, 6), generator=torch.Generator().manual_seed(3))}


def test_the_default_head_is_the_linear_q_head_of_every_earlier_artifact():
    model = _model()
    assert TRMConfig().halting_head_kind == "linear" and isinstance(model.q_head, torch.nn.Linear)
    state = model.state_dict()
    # Names and values as before the option (recorded from the code at commit f5d5059, seed 0):
    # the same parameters and the same random draws, in the same order.
    assert list(state) == ["y_init", "z_init", "embed.weight", "net.blocks.0.mixer.qkv.weight",
                           "net.blocks.0.mixer.out.weight", "net.blocks.0.mlp.gate_up.weight",
                           "net.blocks.0.mlp.down.weight", "head.weight", "q_head.weight", "q_head.bias"]
    assert float(state["y_init"].double().sum()) == pytest.approx(1.7925718128681183, abs=1e-9)
    assert float(state["z_init"].double().sum()) == pytest.approx(0.4729235917329788, abs=1e-9)
    assert float(state["head.weight"].double().sum()) == pytest.approx(3.5323878942072042, abs=1e-9)
    _model(halting_head_kind="linear").load_state_dict(state, strict=True)


def test_the_mlp_head_starts_at_keep_going_and_trains_every_layer():
    model = _model(halting_head_kind="mlp", halting_head_hidden=8)
    head = model.q_head
    assert [n for n, _ in head.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert head[0].weight.shape == (8, 16) and head[2].weight.shape == (1, 8)
    batch = _batch()
    _, out = model(model.initial_carry(batch), batch)
    assert torch.equal(out.q_halt_logits, torch.full((4,), -5.0))  # sigmoid(-5) ~ 0.007: no early halting
    # Two steps of BCE: the output layer moves first (it starts at zero), then the hidden layer.
    opt = torch.optim.SGD(head.parameters(), lr=0.5)
    before = {n: p.detach().clone() for n, p in head.named_parameters()}
    for _ in range(2):
        _, out = model(model.initial_carry(batch), batch)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.q_halt_logits, torch.tensor([1.0, 0, 1, 0]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(not torch.equal(before[n], p) for n, p in head.named_parameters())


def test_mlp_hidden_width_defaults_to_d_model_and_costs_what_it_says():
    linear, mlp = _model(), _model(halting_head_kind="mlp")
    d = 16
    assert mlp.q_head[0].weight.shape == (d, d)
    extra = sum(p.numel() for p in mlp.parameters()) - sum(p.numel() for p in linear.parameters())
    assert extra == (d * d + d + d + 1) - (d + 1)
    with pytest.raises(RuntimeError, match="q_head"):
        linear.load_state_dict(mlp.state_dict(), strict=True)


def test_an_mlp_head_without_a_head_is_refused_naming_the_field(host):
    with pytest.raises(OptionError) as err:
        TRMConfig(halting_head=False, halting_head_kind="mlp")
    assert err.value.field == "halting_head_kind"
    # In the pipeline: the head follows callbacks.act, so an MLP head without ACT names the field.
    raw = apply_overrides(VARIANTS["trm_small"][0], ["callbacks.act=null", "model.halting_head_kind=mlp"])
    with pytest.raises(ConfigError, match="halting_head_kind"):
        validate_cognate(host, raw)


def test_a_run_with_the_mlp_head_trains_and_its_artifact_loads_strictly(host, tmp_path, tiny):
    from agent_forge import run_phase

    result = run_phase("cognate", host=host, variant="trm_small", max_steps=4, progress=False, out=str(tmp_path / "r"),
                       overrides=tiny + ["model.halting_head_kind=mlp", "trainer.eval_every=null"])
    assert result.status == "completed"
    manifest = result.artifacts[0].manifest_path
    assert json.loads(manifest.read_text())["architecture_config"]["halting_head_kind"] == "mlp"
    _, model = load_model(host, manifest)
    assert isinstance(model.q_head, torch.nn.Sequential)
