"""The weight-access helpers every run uses, whatever it is sharded with (single-process side;
the sharded side is exercised with two gloo ranks in test_distributed.py)."""

import pytest
import torch
from torch import nn

from agent_forge import parallel
from agent_forge.errors import ConfigError
from agent_forge.models.transformer import TransformerBaseline, TransformerConfig
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate

TASK = {"vocab_size": 7, "seq_len": 12}


def test_the_units_are_the_layers_of_the_outermost_module_lists():
    trm = TRMEnhancedCognate(TRMConfig(d_model=16, n_layers=3, n_heads=2, n=1, T=1, n_sup=1), **TASK)
    assert parallel.fsdp_units(trm) == list(trm.net.blocks)
    base = TransformerBaseline(TransformerConfig(d_model=16, n_layers=2, n_heads=2), **TASK)
    assert parallel.fsdp_units(base) == list(base.blocks)

    class Nested(nn.Module):
        def __init__(self):
            super().__init__()
            self.outer = nn.ModuleList(nn.Sequential(nn.ModuleList([nn.Linear(2, 2)])) for _ in range(2))

    nested = Nested()
    assert parallel.fsdp_units(nested) == list(nested.outer)  # not the inner lists as well


def test_a_model_can_name_its_own_units():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)
            self.layers = nn.ModuleList([nn.Linear(2, 2)])

        def fsdp_units(self):
            return [self.a]

    model = Custom()
    assert parallel.fsdp_units(model) == [model.a]


def test_fsdp_refuses_0d_parameters_with_the_fix():
    class Scalar(nn.Module):
        def __init__(self):
            super().__init__()
            self.temperature = nn.Parameter(torch.tensor(1.0))

    with pytest.raises(ConfigError, match=r"temperature.*torch.zeros\(1\).*parallel=ddp"):
        parallel.shard(Scalar(), torch.device("cpu"))


def test_full_state_dict_is_a_copy_on_the_cpu():
    model = nn.Linear(2, 2)
    saved = parallel.full_state_dict(model)
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not torch.equal(saved["weight"], model.weight.detach())
    assert saved["weight"].device.type == "cpu"


def test_unsharded_helpers_are_plain_tensor_operations():
    t = torch.arange(6.0).reshape(2, 3)
    assert parallel.full_tensor(t) is t
    like = torch.zeros(2, 3, dtype=torch.float64)
    copy = parallel.shard_like(t, like)
    assert copy.dtype == torch.float64 and torch.equal(copy, t.double()) and copy.data_ptr() != t.data_ptr()
    model = nn.Linear(2, 2)
    assert not parallel.is_sharded(model)
    parallel.reshard(model)  # a no-op without FSDP
