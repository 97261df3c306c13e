import types

import torch

from agent_forge.plugins.callbacks.ema import EMACallback, EMAConfig, ema_decay


def test_ema_is_the_decay_weighted_average_computed_by_hand():
    model = torch.nn.Linear(1, 1, bias=True)  # two parameters: weight and bias
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(-2.0)
    cb = EMACallback(EMAConfig(decay=0.9, warmup=True))
    state = types.SimpleNamespace(model=model, step=0)
    cb.on_fit_start(state)
    expected = None
    for t, (w, b) in enumerate([(3.0, 0.0), (5.0, 1.0), (-1.0, 4.0)]):
        with torch.no_grad():
            model.weight.fill_(w)
            model.bias.fill_(b)
        state.step = t + 1
        cb.on_step_end(state)
        new = torch.tensor([w, b])
        if expected is None:  # AveragedModel's first update copies the weights
            expected = new
        else:  # update t averages with num_averaged = t
            d = min(0.9, (1 + t) / (10 + t))
            expected = d * expected + (1 - d) * new
    ema = cb.module(model)
    got = torch.tensor([float(ema.weight.detach()), float(ema.bias.detach())])
    torch.testing.assert_close(got, expected)
    assert not torch.equal(got, torch.tensor([-1.0, 4.0]))  # differs from the raw weights


def test_decay_warmup_then_constant():
    assert ema_decay(0.999, 0, True) == 0.1
    assert ema_decay(0.999, 10_000, True) == 0.999
    assert ema_decay(0.999, 0, False) == 0.999


def test_ema_state_round_trip():
    model = torch.nn.Linear(2, 2)
    cb = EMACallback(EMAConfig(decay=0.5))
    state = types.SimpleNamespace(model=model, step=1)
    cb.on_fit_start(state)
    cb.on_step_end(state)
    saved = cb.state_dict()
    other = EMACallback(EMAConfig(decay=0.5))
    other.load_state_dict(saved)
    other.on_fit_start(state)
    for a, b in zip(cb.averaged.parameters(), other.averaged.parameters()):
        assert torch.equal(a, b)
    assert int(other.averaged.n_averaged) == int(cb.averaged.n_averaged)
