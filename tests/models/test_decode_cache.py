"""Decoding with a cache across tokens: ``KVCache`` (layers) and ``RecursionCache`` /
``TRMEnhancedCognate.extend`` (trm) give what the uncached model gives, within fp32 rounding.

The largest |logit difference| the greedy test's configurations show is 4.2e-6
(``bench/generate_cache_diff.py`` prints it; fp32 logits of order 1: the cached path multiplies
one row where the uncached one multiplies the window, so the sums round differently); the
tolerance is 1e-4.
"""

import pytest
import torch

from agent_forge.models.layers import Attention, KVCache, RotaryEmbedding
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate
from agent_forge.phases.common import evaluation
from agent_forge.phases.common.evaluation import generate_tokens

TOL = 1e-4
VOCAB = 11

CONFIGS = {
    "n1_T1_nsup1_one_layer": dict(n=1, T=1, n_sup=1, n_layers=1),
    "n2_T2_nsup3": dict(n=2, T=2, n_sup=3, n_layers=1),
    "gqa_step_scales": dict(n=2, T=2, n_sup=2, n_layers=2, n_kv_heads=2, step_scales=True),
    "n3_T1_nsup2_gqa1": dict(n=3, T=1, n_sup=2, n_layers=2, n_kv_heads=1),
    "moh": dict(n=2, T=1, n_sup=2, n_layers=2, mixer="moh"),
    "learned_positions_prefix_no_rope": dict(n=1, T=2, n_sup=2, n_layers=2, learned_positions=True, rope=False,
                                             puzzle_emb_len=2),
    "empty_memory_bank": dict(n=2, T=1, n_sup=2, n_layers=1, memory="full"),
    "deferred_logits": dict(n=1, T=2, n_sup=2, n_layers=1, defer_logits=True),
}


def _model(seq_len: int = 12, causal: bool = True, **kw) -> TRMEnhancedCognate:
    torch.manual_seed(0)
    model = TRMEnhancedCognate(TRMConfig(d_model=32, n_heads=4, halting_head=False, **kw), vocab_size=VOCAB,
                               seq_len=seq_len, causal=causal).eval()
    if model.net.scales is not None:  # scales that differ per layer and step, so a wrong slot shows
        with torch.no_grad():
            model.net.scales.uniform_(0.2, 1.0)
    return model


def _uncached_logits(model: TRMEnhancedCognate, window: torch.Tensor, n_sup: int) -> torch.Tensor:
    """The last position's logits as generate_tokens computes them without a cache."""
    batch = {"inputs": window}
    carry = model.initial_carry(batch)
    with torch.no_grad():
        for _ in range(n_sup):
            carry, out = model(carry, batch)
    return out.full_logits()[:, -1].float()


def test_attention_with_a_cache_fed_in_chunks_is_attention_over_the_whole_sequence():
    torch.manual_seed(0)
    attn = Attention(32, 4, 2, causal=True, rotary=RotaryEmbedding(8, 16)).eval()
    x = torch.randn(2, 9, 32)
    cache = KVCache(capacity=16)
    with torch.no_grad():
        full = attn(x)
        # A first chunk, a chunk of several positions after it (the masked case), then one by one.
        parts = [attn(x[:, :3], cache=cache), attn(x[:, 3:6], cache=cache)]
        parts += [attn(x[:, i:i + 1], cache=cache) for i in range(6, 9)]
    assert cache.length == 9
    assert (torch.cat(parts, dim=1) - full).abs().max() < TOL


def test_a_cache_refuses_what_it_cannot_hold_and_bidirectional_attention():
    attn = Attention(32, 4, 4, causal=True, rotary=None)
    with pytest.raises(ValueError, match="holds 4 positions"):
        attn(torch.randn(1, 5, 32), cache=KVCache(capacity=4))
    with pytest.raises(ValueError, match="needs causal attention"):
        Attention(32, 4, 4, causal=False, rotary=None)(torch.randn(1, 2, 32), cache=KVCache(capacity=4))


@pytest.mark.parametrize("name", ["n2_T2_nsup3", "gqa_step_scales", "learned_positions_prefix_no_rope"])
def test_extend_token_by_token_gives_the_uncached_logits_at_every_position(name):
    kw = CONFIGS[name]
    model = _model(**kw)
    n_sup = kw["n_sup"]
    tokens = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(1))
    cache = model.new_cache(12, n_sup)
    # The prompt of 3 in one call (the prefill), then one new position per call up to a full window.
    for end in range(3, 13):
        window = tokens[:, :end]
        cached = model.extend(window, n_sup, cache)
        assert cache.length == model.prefix + end
        assert (cached - _uncached_logits(model, window, n_sup)).abs().max() < TOL, end
    # Without a cache, extend is the model's forward, read at the last position.
    assert (model.extend(tokens, n_sup) - _uncached_logits(model, tokens, n_sup)).abs().max() < TOL


@pytest.mark.parametrize("name", list(CONFIGS))
def test_greedy_generation_is_the_same_with_and_without_the_cache_through_the_slide(name, monkeypatch):
    """A prompt of 3 and 14 new tokens on windows of 12: the window slides for the last 5 tokens,
    where the cached path recomputes the window as the uncached one does. The same tokens, and
    the logits every token was chosen from equal within fp32 rounding."""
    kw = CONFIGS[name]
    model = _model(**kw)
    prompt = torch.randint(0, VOCAB, (2, 3), generator=torch.Generator().manual_seed(2))
    choose = evaluation.next_token
    outs, logits = {}, {}
    for cache in (False, True):
        seen = logits[cache] = []
        monkeypatch.setattr(evaluation, "next_token", lambda lg, **kw: seen.append(lg) or choose(lg, **kw))
        outs[cache] = generate_tokens(model, prompt, 14, n_sup=kw["n_sup"], seq_len=12, device=torch.device("cpu"),
                                      cache=cache)
    assert outs[True].shape == (2, 14)
    assert torch.equal(outs[True], outs[False])
    assert (torch.stack(logits[True]) - torch.stack(logits[False])).abs().max() < TOL


def test_the_cache_takes_the_bytes_cache_bytes_says():
    model = _model(n=2, T=2, n_sup=2, n_layers=2, n_kv_heads=2, puzzle_emb_len=1)
    cache = model.new_cache(7, 2)
    model.extend(torch.randint(0, VOCAB, (3, 7)), 2, cache)
    held = sum(kv.k.nbytes + kv.v.nbytes for step in cache.slots for cycle in step for app in cycle for kv in app)
    # 2 steps x 2 cycles x 3 applications x 2 layers = 24 slots; K and V of 2 heads x 8 wide, fp32.
    assert held == model.cache_bytes(3, 7, 2) == 3 * (1 + 7) * 24 * 2 * 16 * 4


def test_models_whose_earlier_positions_read_later_ones_are_refused():
    bidirectional = _model(n=1, T=1, n_sup=1, causal=False)
    assert "bidirectional" in bidirectional.cache_refusal()
    with pytest.raises(ValueError, match="no cache across tokens"):
        bidirectional.new_cache(8, 1)
    mlp = _model(n=1, T=1, n_sup=1, causal=False, mixer="mlp")
    assert "mixer='mlp'" in mlp.cache_refusal()
    memory = _model(n=1, T=1, n_sup=1, memory="latent")
    assert memory.cache_refusal() is None  # an empty bank reads zeros: nothing crosses positions
    memory.memory.write(torch.randn(1, 32), torch.ones(1), threshold=0.0)
    assert "memory bank" in memory.cache_refusal()


def test_extend_refuses_a_cache_of_other_supervision_steps_or_nothing_new():
    model = _model(n=1, T=1, n_sup=2)
    cache = model.new_cache(4, 2)
    tokens = torch.randint(0, VOCAB, (1, 4))
    with pytest.raises(ValueError, match="n_sup=2, not 3"):
        model.extend(tokens, 3, cache)
    model.extend(tokens, 2, cache)
    with pytest.raises(ValueError, match="none new"):
        model.extend(tokens, 2, cache)
