"""The block stack both architectures are built on (agent_forge.models.stack): its config fields
written once, one builder for the blocks, and the token mixers it chooses between."""

import dataclasses

import pytest
import torch

from agent_forge.models.fields import OptionError
from agent_forge.models.layers import Attention, Block, MLPTokenMixer
from agent_forge.models.moh import MoHAttention
from agent_forge.models.stack import StackConfig, block_stack
from agent_forge.models.transformer import TransformerBaseline, TransformerConfig
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate


def test_both_configs_take_the_stack_fields_from_one_place():
    shared = {f.name for f in dataclasses.fields(StackConfig)}
    for config in (TRMConfig, TransformerConfig):
        fields = {f.name: f for f in dataclasses.fields(config)}
        assert shared <= set(fields)
        # Redeclared only where the architecture differs: its depth default and (the baseline) its mixers.
        own = {name for name in shared if config.__dataclass_fields__[name] is not StackConfig.__dataclass_fields__[name]}
        assert own <= {"n_layers", "mixer"}, own
    assert TRMConfig().n_layers == 2 and TransformerConfig().n_layers == 11


@pytest.mark.parametrize("config", [TRMConfig, TransformerConfig])
def test_the_shared_rules_apply_to_both_and_name_the_field(config):
    for kwargs, field in (({"d_model": 30, "n_heads": 4}, "n_heads"), ({"n_heads": 4, "n_kv_heads": 3}, "n_kv_heads"),
                          ({"mixer": "mlp", "causal": True}, "causal"), ({"moh_threshold_init": 1.0}, "moh_threshold_init")):
        with pytest.raises(OptionError) as err:
            config(**kwargs)
        assert err.value.field == field, kwargs


def test_the_baseline_narrows_the_mixers_it_supports():
    assert TRMConfig(mixer="mlp_official").mixer == "mlp_official"
    with pytest.raises(OptionError, match="mixer='mlp_official': use one of 'attention', 'mlp', 'moh'") as err:
        TransformerConfig(mixer="mlp_official")
    assert err.value.field == "mixer"


def test_moh_options_and_weights_come_from_the_config():
    cfg = StackConfig(mixer="moh", moh_threshold_init=0.7, moh_sparsity_weight=0.5)
    assert cfg.moh_options() == {"threshold_init": 0.7, "temperature_init": 1.0}
    assert cfg.moh_weights() == {"balance": 0.1, "complexity": 0.1, "sparsity": 0.5}
    assert StackConfig().moh_options() is None


@pytest.mark.parametrize("mixer, kind", [("attention", Attention), ("moh", MoHAttention), ("mlp", MLPTokenMixer),
                                         ("mlp_official", MLPTokenMixer)])
def test_block_stack_builds_n_layers_blocks_with_one_rotary_table(mixer, kind):
    blocks = block_stack(StackConfig(d_model=16, n_layers=3, n_heads=2, mixer=mixer), seq_len=6, causal=False)
    assert len(blocks) == 3 and all(type(b) is Block and isinstance(b.mixer, kind) for b in blocks)
    rotaries = {id(b.mixer.rotary) for b in blocks} if kind is not MLPTokenMixer else set()
    assert len(rotaries) == (1 if kind is not MLPTokenMixer else 0)
    h = torch.randn(2, 6, 16)
    for block in blocks:
        h = block(h)
    assert h.shape == (2, 6, 16)


@pytest.mark.parametrize("mixer", ["attention", "moh", "mlp"])
def test_the_trm_net_and_the_baseline_are_the_same_stack(mixer):
    """Built from the same seed with the same stack fields, the TRM's shared network and the
    baseline's blocks hold the same tensors: one builder, drawing in one order."""
    stack = dict(d_model=16, n_layers=2, n_heads=2, mixer=mixer)
    torch.manual_seed(0)
    trm = TRMEnhancedCognate(TRMConfig(**stack), vocab_size=7, seq_len=6)
    torch.manual_seed(0)
    base = TransformerBaseline(TransformerConfig(**stack), vocab_size=7, seq_len=6)
    ours, theirs = trm.net.blocks.state_dict(), base.blocks.state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
