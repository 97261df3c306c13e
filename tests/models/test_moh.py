"""Mixture-of-Heads attention (mixer=moh): routing, its gradients, the auxiliary losses in the
trainer's total, the metrics, and the mixer in the TRM and the baseline."""

import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from agent_forge import run_phase
from agent_forge.models import moh
from agent_forge.models.layers import Attention, RotaryEmbedding
from agent_forge.models.moh import MoHAttention
from agent_forge.models.transformer import TransformerBaseline, TransformerConfig
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate
from forge_testing import TINY


def _layer(heads=4, d=32, causal=False, **kw):
    torch.manual_seed(0)
    return MoHAttention(d, heads, heads, causal, RotaryEmbedding(d // heads, 16), **kw)


def _routed(layer, scale=3.0):
    """Give the router random weights, so tokens route differently."""
    with torch.no_grad():
        layer.router.weight.normal_(0, scale / math.sqrt(layer.router.in_features))
    return layer


def _x(b=4, s=12, d=32, seed=1):
    return torch.randn(b, s, d, generator=torch.Generator().manual_seed(seed))


def test_it_starts_as_plain_multi_head_attention():
    # Zero router: uniform p = 1/H, every head active (theta 0.9), weight H * p = 1 for each head.
    layer = _layer()
    plain = Attention(32, 4, 4, False, layer.rotary)
    plain.load_state_dict({k: v for k, v in layer.state_dict().items() if k.startswith(("qkv", "out"))})
    x = _x()
    torch.testing.assert_close(layer(x), plain(x))
    assert float(layer.calls[-1]["heads"]) == 4.0


def test_the_number_of_heads_varies_per_token_between_one_and_all():
    layer = _routed(_layer(threshold_init=0.6))
    p, mask, hard = layer.route(_x())
    count = hard.sum(-1)
    assert count.min() >= 1 and count.max() <= 4 and len(count.unique()) > 1
    torch.testing.assert_close(mask, hard)  # the straight-through mask is the hard one going forward
    # The first-ranked head is always active.
    assert bool(hard.gather(-1, p.argmax(-1, keepdim=True)).all())


def test_gradients_of_the_task_loss_reach_the_router_threshold_and_temperature():
    layer = _routed(_layer())
    layer(_x()).pow(2).mean().backward()  # no auxiliary loss involved
    for name in ("router.weight", "router.bias", "threshold_logit", "log_temperature"):
        grad = layer.get_parameter(name).grad
        assert grad is not None and float(grad.abs().sum()) > 0, name


def _aux_gradient(layer, name, parameter):
    layer.reset()
    layer(_x())
    (grad,) = torch.autograd.grad(layer.calls[-1][f"aux/{name}"], layer.get_parameter(parameter))
    return float(grad.sum())


def test_each_auxiliary_loss_pulls_the_way_it_says():
    layer = _routed(_layer())
    # complexity (mean active heads / H): its gradient on the threshold is positive, so a step
    # lowers the threshold: fewer heads.
    assert _aux_gradient(layer, "complexity", "threshold_logit") > 0
    # sparsity (routing entropy): positive on the temperature, so a step cools the softmax:
    # a peaked routing, which reaches the threshold with fewer heads.
    assert _aux_gradient(layer, "sparsity", "log_temperature") > 0
    # balance: with head 0 favoured by every token, a step lowers head 0's router bias.
    with torch.no_grad():
        layer.router.bias.copy_(torch.tensor([2.0, 0.0, 0.0, 0.0]))
    layer.reset()
    layer(_x())
    (grad,) = torch.autograd.grad(layer.calls[-1]["aux/balance"], layer.router.bias)
    assert grad[0] > 0 and (grad[1:] < 0).all()


def test_aux_values_at_the_start():
    layer = _layer()
    layer(_x())
    call = layer.calls[-1]
    for name, value in {"balance": 1.0, "complexity": 1.0, "sparsity": 1.0}.items():
        assert float(call[name]) == pytest.approx(value, abs=1e-5), name
    with torch.no_grad():  # a call without a graph records no losses to train on
        layer(_x())
    assert "aux/balance" not in layer.calls[-1] and "balance" in layer.calls[-1]


def _train(sparsity_weight, steps=40):
    torch.manual_seed(0)
    model = TransformerBaseline(TransformerConfig(d_model=32, n_layers=1, n_heads=4, mixer="moh",
                                                  moh_balance_weight=0.0, moh_complexity_weight=0.0,
                                                  moh_sparsity_weight=sparsity_weight), vocab_size=7, seq_len=12)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    inputs, targets = torch.randint(0, 7, (32, 12), generator=g), torch.randint(0, 7, (32, 12), generator=g)
    for _ in range(steps):
        _, out = model({}, {"inputs": inputs})
        loss = F.cross_entropy(out.logits.flatten(0, 1), targets.flatten()) + sum(out.aux_losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.metrics()


def test_the_mean_head_count_responds_to_the_sparsity_weight():
    free, sparse = _train(0.0), _train(1.0)
    assert free["moh/heads"] > 3.0  # random targets: nothing asks for fewer heads
    assert sparse["moh/heads"] < free["moh/heads"] - 1.5, (free["moh/heads"], sparse["moh/heads"])
    assert sparse["moh/sparsity"] < free["moh/sparsity"]


def test_causal_moh_does_not_read_the_future():
    layer = _routed(_layer(causal=True))
    x = _x(b=1)
    changed = x.clone()
    changed[:, 6:] += 1.0
    torch.testing.assert_close(layer(x)[:, :6], layer(changed)[:, :6])


def _trm(**kw):
    torch.manual_seed(0)
    cfg = dict(d_model=32, n_layers=2, n_heads=4, n=2, T=3, n_sup=4, mixer="moh")
    cfg.update(kw)
    return TRMEnhancedCognate(TRMConfig(**cfg), vocab_size=7, seq_len=12)


def test_trm_returns_weighted_aux_losses_of_the_graded_cycle_and_every_parameter_gets_a_gradient():
    model = _trm(moh_balance_weight=0.5, moh_complexity_weight=0.25, moh_sparsity_weight=0.0)
    batch = {"inputs": torch.randint(0, 7, (3, 12))}
    _, out = model(model.initial_carry(batch), batch)
    assert set(out.aux_losses) == {"moh_balance", "moh_complexity", "moh_sparsity"}
    # At the start every loss is 1 unweighted; a weight of 0 still gives its (zero) term.
    assert float(out.aux_losses["moh_balance"].detach()) == pytest.approx(0.5)
    assert float(out.aux_losses["moh_complexity"].detach()) == pytest.approx(0.25)
    assert float(out.aux_losses["moh_sparsity"].detach()) == 0.0
    (out.logits.logsumexp(-1).mean() + sum(out.aux_losses.values()) + out.q_halt_logits.sum()).backward()
    # DDP without find_unused_parameters needs every parameter in the graph.
    assert not model.has_unused_parameters
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    # T cycles of n+1 net calls each, every call through both layers.
    assert [len(m.calls) for m in model.net.modules() if isinstance(m, MoHAttention)] == [9, 9]


def test_trm_metrics_per_layer_and_recursion_position():
    model = _trm()
    for layer in moh.moh_layers(model):
        _routed(layer)
    batch = {"inputs": torch.randint(0, 7, (3, 12))}
    model(model.initial_carry(batch), batch)
    m = model.metrics()
    for i in range(2):
        assert {f"moh/l{i}/heads", f"moh/l{i}/temperature", f"moh/l{i}/threshold"} <= set(m)
        positions = [m[f"moh/l{i}/p{j}/heads"] for j in range(3)]  # n=2: positions 0, 1 (z) and 2 (y)
        assert all(1 <= h <= 4 for h in positions)
        assert sum(positions) / 3 == pytest.approx(m[f"moh/l{i}/heads"])  # T cycles at each position
    assert {"moh/heads", "moh/balance", "moh/complexity", "moh/sparsity"} <= set(m)
    assert f"moh/l0/p3/heads" not in m
    # An attention TRM reports nothing.
    assert _trm(mixer="attention").metrics() == {}


def test_baseline_with_the_moh_mixer():
    torch.manual_seed(0)
    model = TransformerBaseline(TransformerConfig(d_model=32, n_layers=3, n_heads=4, mixer="moh", causal=True),
                                vocab_size=7, seq_len=12)
    _, out = model({}, {"inputs": torch.randint(0, 7, (2, 12))})
    assert set(out.aux_losses) == {"moh_balance", "moh_complexity", "moh_sparsity"}
    (out.logits.sum() + sum(out.aux_losses.values())).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    m = model.metrics()
    assert all(f"moh/l{i}/heads" in m for i in range(3)) and not any("/p0/" in k for k in m)


def _rows(run_dir, kind="train"):
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


def _check_aux_in_total(rows, positions):
    assert rows
    for row in rows:
        parts = {k: v for k, v in row.items() if k.startswith("loss/")}
        assert {"loss/moh_balance", "loss/moh_complexity", "loss/moh_sparsity"} <= set(parts)
        assert all(math.isfinite(v) for v in parts.values())
        assert row["loss"] == pytest.approx(sum(parts.values()))  # the aux losses are in the total
        assert 1 <= row["moh/heads"] <= 2 and row["moh/l0/temperature"] > 0
        assert all(f"moh/l0/p{j}/heads" in row for j in range(positions))
        for name in ("balance", "complexity", "sparsity"):
            assert math.isfinite(row[f"moh/{name}"])


def test_trm_moh_preset_trains_with_the_aux_losses_in_the_total(host, tmp_path, tiny):
    # TINY: n=1, two heads; weights changed from the defaults to show they come from the config.
    result = run_phase("cognate", host=host, variant="trm_moh", max_steps=6, progress=False, out=str(tmp_path / "r"),
                       overrides=tiny + ["model.moh_complexity_weight=0.2", "trainer.eval_every=null"])
    assert result.status == "completed"
    rows = _rows(tmp_path / "r")
    _check_aux_in_total(rows, positions=2)
    # The first logged step is close to the start, where each unweighted loss is ~1.
    assert rows[0]["loss/moh_complexity"] == pytest.approx(0.2 * rows[0]["moh/complexity"], rel=1e-4)
    config = json.loads((tmp_path / "r" / "config.json").read_text())["config"]["model"]
    assert config["mixer"] == "moh" and config["moh_balance_weight"] == 0.1 and config["moh_sparsity_weight"] == 0.01


BASELINE_TINY = [o for o in TINY if not o.startswith(("model.n=", "model.T=", "model.n_sup="))]


def test_baseline_moh_preset_trains(host, tmp_path):
    result = run_phase("cognate", host=host, variant="baseline_moh", max_steps=4, progress=False,
                       out=str(tmp_path / "r"), overrides=BASELINE_TINY + ["trainer.eval_every=null"])
    assert result.status == "completed"
    _check_aux_in_total(_rows(tmp_path / "r"), positions=0)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_trm_moh_trains_on_two_processes(tmp_path, parallel):
    # DDP without find_unused_parameters: every MoH parameter must get a gradient at every step.
    out = tmp_path / "run"
    sets = [o for o in TINY if o != "trainer.threads=1"] + ["trainer.threads=1", f"trainer.parallel={parallel}"]
    proc = subprocess.run([sys.executable, "-m", "agent_forge", "run", "phase", "cognate", "--variant", "trm_moh",
                           *[x for o in sets for x in ("--set", o)], "--max-steps", "4", "--out", str(out),
                           "--no-progress", "--nproc", "2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_aux_in_total(_rows(out), positions=2)


def test_it_is_an_attention_layer_with_a_router_added():
    """MoHAttention extends Attention: the same projections, drawn in the same order, plus the router."""
    torch.manual_seed(0)
    plain = Attention(32, 4, 2, True, None).state_dict()
    torch.manual_seed(0)
    routed = MoHAttention(32, 4, 2, True, None)
    assert isinstance(routed, Attention)
    state = routed.state_dict()
    assert all(torch.equal(state[k], plain[k]) for k in plain)
    assert set(state) - set(plain) == {"router.weight", "router.bias", "threshold_logit", "log_temperature"}
    with pytest.raises(ValueError, match="threshold_init 1.5 must be in"):
        MoHAttention(32, 4, 4, False, None, threshold_init=1.5)
