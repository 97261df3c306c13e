import types

import pytest
import torch

from agent_forge.plugins.callbacks.ema import EMACallback, EMAConfig, ema_decay


def _linear(w: float, b: float) -> torch.nn.Linear:
    model = torch.nn.Linear(1, 1, bias=True)  # two parameters: weight and bias
    with torch.no_grad():
        model.weight.fill_(w)
        model.bias.fill_(b)
    return model


def test_ema_is_the_decay_weighted_average_computed_by_hand():
    model = _linear(1.0, -2.0)
    cb = EMACallback(EMAConfig(decay=0.9, warmup=True))
    state = types.SimpleNamespace(model=model, step=0)
    cb.on_fit_start(None, state)
    expected = None
    for t, (w, b) in enumerate([(3.0, 0.0), (5.0, 1.0), (-1.0, 4.0)]):
        with torch.no_grad():
            model.weight.fill_(w)
            model.bias.fill_(b)
        state.step = t + 1
        cb.on_step_end(None, state)
        new = torch.tensor([w, b])
        if expected is None:  # the first update copies the weights
            expected = new
        else:  # update t averages with num_averaged = t
            d = min(0.9, (1 + t) / (10 + t))
            expected = d * expected + (1 - d) * new
    label, weights = cb.eval_weights(state)
    got = torch.tensor([float(weights["weight"]), float(weights["bias"])])
    assert label == "ema"
    torch.testing.assert_close(got, expected)
    assert not torch.equal(got, torch.tensor([-1.0, 4.0]))  # differs from the raw weights
    # The live model is untouched by averaging.
    assert float(model.weight.detach()) == -1.0 and float(model.bias.detach()) == 4.0


def test_every_skips_the_steps_in_between():
    model = _linear(1.0, 0.0)
    cb = EMACallback(EMAConfig(decay=0.5, warmup=False, every=2))
    state = types.SimpleNamespace(model=model, step=0)
    cb.on_fit_start(None, state)
    for step in (1, 2, 3):
        state.step = step
        cb.on_step_end(None, state)
    assert cb.num_averaged == 1


def test_decay_warmup_then_constant():
    assert ema_decay(0.999, 0, True) == 0.1
    assert ema_decay(0.999, 10_000, True) == 0.999
    assert ema_decay(0.999, 0, False) == 0.999


def test_ema_state_round_trip():
    model = torch.nn.Linear(2, 2)
    cb = EMACallback(EMAConfig(decay=0.5))
    state = types.SimpleNamespace(model=model, step=1)
    cb.on_fit_start(None, state)
    cb.on_step_end(None, state)
    with torch.no_grad():
        model.weight.add_(1.0)
    cb.on_step_end(None, state)
    saved = cb.state_dict()
    other = EMACallback(EMAConfig(decay=0.5))
    other.load_state_dict(saved)
    other.on_fit_start(None, state)
    assert set(other.shadow) == set(cb.shadow)
    for name in cb.shadow:
        assert torch.equal(cb.shadow[name], other.shadow[name])
    assert other.num_averaged == cb.num_averaged == 2


def test_a_checkpoint_for_another_model_is_refused():
    cb = EMACallback(EMAConfig())
    cb.load_state_dict({"shadow": {"weight": torch.zeros(2, 2)}, "num_averaged": 3})
    with pytest.raises(ValueError, match="bias"):
        cb.on_fit_start(None, types.SimpleNamespace(model=torch.nn.Linear(2, 2), step=0))


class SparseTable(torch.nn.Module):
    """A weight EMA averages and a table the model declares as a sparse embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([1.0]))
        self.table = torch.nn.Parameter(torch.tensor([[1.0], [2.0], [3.0]]))

    def sparse_embedding_parameters(self):
        return {"table": self.table}


def test_ema_leaves_out_sparse_embeddings_and_evaluation_uses_their_live_rows():
    from agent_forge.phases.cognate.weights import swapped_in

    model = SparseTable()
    cb = EMACallback(EMAConfig(decay=0.5, warmup=False))
    state = types.SimpleNamespace(model=model, step=1, callbacks={"ema": cb})
    cb.on_fit_start(None, state)
    cb.on_step_end(None, state)  # first update: copies weight = 1
    with torch.no_grad():
        model.weight.fill_(3.0)
        model.table[1] = -5.0
    cb.on_step_end(None, state)  # weight: 0.5 * 1 + 0.5 * 3 = 2
    assert set(cb.shadow) == {"weight"}
    with swapped_in(state, "ema") as m:
        assert float(m.weight.detach()) == 2.0
        assert m.table.detach().flatten().tolist() == [1.0, -5.0, 3.0]  # the live table
    assert float(model.weight.detach()) == 3.0
    # A checkpoint of the average has no table, and loads back into the same model.
    other = EMACallback(EMAConfig(decay=0.5, warmup=False))
    other.load_state_dict(cb.state_dict())
    other.on_fit_start(None, state)
    assert set(other.shadow) == {"weight"} and float(other.shadow["weight"]) == 2.0
