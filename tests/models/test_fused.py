"""The block's faster paths give the eager model's numbers.

* The default path is bit for bit the block as it was before the fused functions (a copy of that
  code is the reference here).
* ``mixer_layout="direct"`` (the token mixer's weights multiplied from the left, no transposes)
  equals the transposed layout within fp32 rounding: logits within 1e-5 and every gradient within
  1e-5 of the largest gradient entry, after a whole TRM step at the nanotrm shape.
* ``fused_elementwise=True`` (torch.compile'd residual+RMSNorm and SwiGLU product) is as close to
  a float64 copy of the model as eager fp32 is (x2), and within 1e-3 of eager, at the nanotrm
  shape and at an attention config (slow: it compiles); where compiling fails it warns and gives
  eager's numbers exactly.
"""

from __future__ import annotations

import copy

import pytest
import torch

from agent_forge.models import layers
from agent_forge.models.layers import Block, rms_norm
from agent_forge.models.stack import make_mixer
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate

LOGIT_TOL = 1e-5  # absolute, fp32; the logits here are O(1)-O(10)
GRAD_TOL = 1e-5  # relative to the largest |gradient| entry of the same parameter
FUSED_TOL = 1e-3  # compiled vs eager, absolute on logits, relative on gradients (see the slow test)


def reference_block(block: Block, h: torch.Tensor, scales: torch.Tensor | None) -> torch.Tensor:
    """Block.forward as it was before the fused functions (transposed mixer layout)."""
    mixed = block.mixer(h)
    h = h + (mixed if scales is None else scales[0] * mixed)
    h = rms_norm(h.transpose(1, 2)).transpose(1, 2) if block.norm_over_sequence else rms_norm(h)
    fed = block.mlp(h)
    return rms_norm(h + (fed if scales is None else scales[1] * fed))


@pytest.mark.parametrize("kind", ["mlp", "mlp_official", "attention"])
@pytest.mark.parametrize("scaled", [False, True])
def test_default_block_is_bit_for_bit_the_old_block(kind, scaled):
    torch.manual_seed(0)
    d, seq = 16, 9
    block = Block(d, make_mixer(kind, d_model=d, seq_len=seq, n_heads=2, n_kv_heads=2, causal=False,
                                expansion=4, rotary=None), expansion=4)
    h = torch.randn(3, seq, d)
    scales = torch.tensor([0.7, 1.3]) if scaled else None
    assert torch.equal(block(h, scales), reference_block(block, h, scales))


def nanotrm(**kw) -> TRMConfig:
    """The nanotrm shape's network (d=64, 2 layers, n=3, T=2), fewer rows to keep the test fast."""
    return TRMConfig(**{"d_model": 64, "n_layers": 2, "n": 3, "T": 2, "n_sup": 16, "expansion": 4, **kw})


def step(cfg: TRMConfig, batch: dict[str, torch.Tensor], seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits of one supervision step from the initial carry, and every parameter's gradient of
    a loss on them; the same seed gives every config the same weights."""
    torch.manual_seed(seed)
    model = TRMEnhancedCognate(cfg, vocab_size=7, seq_len=36)
    _, out = model(model.initial_carry(batch), batch)
    loss = torch.nn.functional.cross_entropy(out.logits.flatten(0, 1), batch["labels"].flatten())
    loss = loss + out.q_halt_logits.float().pow(2).mean()
    loss.backward()
    return out.logits.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def assert_close(a: tuple, b: tuple) -> dict[str, float]:
    (la, ga), (lb, gb) = a, b
    diffs = {"logits": float((la - lb).abs().max())}
    assert diffs["logits"] <= LOGIT_TOL, diffs
    assert ga.keys() == gb.keys()
    for name in ga:
        scale = float(ga[name].abs().max()) or 1.0
        diffs[name] = float((ga[name] - gb[name]).abs().max()) / scale
        assert diffs[name] <= GRAD_TOL, (name, diffs[name])
    return diffs


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"inputs": torch.randint(0, 7, (8, 36), generator=g), "labels": torch.randint(1, 7, (8, 36), generator=g)}


@pytest.mark.parametrize("mixer", ["mlp", "mlp_official"])
def test_direct_mixer_layout_equals_the_transposed_one(mixer, batch):
    eager = step(nanotrm(mixer=mixer), batch)
    direct = step(nanotrm(mixer=mixer, mixer_layout="direct"), batch)
    diffs = assert_close(eager, direct)
    print(mixer, "max |logits diff|", diffs["logits"], "max relative grad diff", max(diffs.values()))
    # Not a vacuous comparison: other weights would be far off.
    other = step(nanotrm(mixer=mixer), batch, seed=1)
    assert float((other[0] - eager[0]).abs().max()) > 1e-2


def test_direct_layout_is_refused_for_an_unknown_name():
    with pytest.raises(ValueError, match="unknown mixer layout"):
        layers.MLPTokenMixer(36, 4, layout="sideways")


def test_fused_falls_back_to_eager_with_a_warning_when_compile_fails(monkeypatch, batch):
    def broken_compile(fn, **kw):
        def call(*a, **k):
            raise RuntimeError("no C++ compiler here")
        return call

    monkeypatch.setattr(layers, "_FUSED", {})
    monkeypatch.setattr(torch, "compile", broken_compile)
    eager = step(nanotrm(mixer="attention", n_heads=4), batch)
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*no C\\+\\+ compiler here.*running eager"):
        fused = step(nanotrm(mixer="attention", n_heads=4, fused_elementwise=True), batch)
    assert torch.equal(fused[0], eager[0])
    assert all(torch.equal(fused[1][n], eager[1][n]) for n in eager[1])


def forward_backward(model: TRMEnhancedCognate, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """Logits (as float64) and gradients of one step of an already built model, in its own dtype."""
    dtype = next(model.parameters()).dtype
    carry = {k: v.to(dtype) for k, v in model.initial_carry(batch).items()}
    _, out = model(carry, batch)
    out.logits.float().logsumexp(-1).mean().backward()
    return out.logits.detach().double(), {n: p.grad.double() for n, p in model.named_parameters()
                                          if p.grad is not None}


@pytest.mark.slow
@pytest.mark.parametrize("kw", [dict(mixer="mlp"), dict(mixer="mlp_official", mixer_layout="direct"),
                                dict(mixer="attention", n_heads=4)], ids=["nanotrm", "port-direct", "attention"])
def test_fused_elementwise_equals_eager(kw, batch, monkeypatch):
    """Compiled kernels sum in another order, and 16 blocks of recursion carry that rounding into
    the logits (3e-4 at the nanotrm shape, where eager fp32 itself is 2.7e-4 from float64). So the
    test asks that the fused model be no further from a float64 copy of the eager model than the
    eager fp32 model is (x2), and within FUSED_TOL of eager, logits and gradients."""
    monkeypatch.setattr(layers, "_FUSED", {})
    torch.manual_seed(0)
    eager_model = TRMEnhancedCognate(nanotrm(**kw), vocab_size=7, seq_len=36)
    torch.manual_seed(0)
    fused_model = TRMEnhancedCognate(nanotrm(**kw, fused_elementwise=True), vocab_size=7, seq_len=36)
    reference = copy.deepcopy(eager_model).double()
    eager, fused, exact = (forward_backward(m, batch) for m in (eager_model, fused_model, reference))
    assert layers._FUSED and all(fn is not layers._EAGER[name] for name, fn in layers._FUSED.items()), \
        "compile fell back to eager: nothing fused was tested"
    err_eager = float((eager[0] - exact[0]).abs().max())
    err_fused = float((fused[0] - exact[0]).abs().max())
    assert err_fused <= 2 * err_eager + 1e-6, (err_fused, err_eager)
    assert float((fused[0] - eager[0]).abs().max()) <= FUSED_TOL
    for name, g in eager[1].items():
        assert float((fused[1][name] - g).abs().max()) <= FUSED_TOL * float(g.abs().max() or 1.0), name
