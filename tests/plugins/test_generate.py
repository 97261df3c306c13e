"""``forge generate``'s sampling: reproducible with a seed, the argmax at temperature 0, streamed."""

import pytest
import torch

from agent_forge.plugins.datasets.text import ByteTokenizer
from agent_forge.plugins.generate import generate_text
from agent_forge.phases.common.evaluation import next_token


def _model():
    from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate

    torch.manual_seed(0)
    cfg = TRMConfig(d_model=16, n_layers=1, n_heads=2, n=1, T=1, n_sup=2, halting_head=False)
    return TRMEnhancedCognate(cfg, vocab_size=257, seq_len=16, causal=True)


def _run(**kw):
    pieces = []
    text = generate_text(_model(), ByteTokenizer(), 16, "ab", max_tokens=12, write=pieces.append, **kw)
    return text, pieces


def test_the_same_seed_gives_the_same_text_and_another_seed_another():
    a, _ = _run(temperature=1.0, top_k=None, seed=3)
    b, _ = _run(temperature=1.0, top_k=None, seed=3)
    c, _ = _run(temperature=1.0, top_k=None, seed=4)
    assert a == b and a != c


def test_temperature_zero_is_the_argmax_of_the_model_run_by_hand():
    model = _model()
    ids = list(b"ab")
    for _ in range(5):  # greedy decoding written out: n_sup steps on the window, argmax of the last position
        batch = {"inputs": torch.tensor([ids[-16:]])}
        carry = model.initial_carry(batch)
        for _ in range(2):
            carry, out = model(carry, batch)
        ids.append(int(out.logits[0, -1].argmax()))
    text, pieces = _run(temperature=0.0, top_k=None, seed=None)
    expected = ByteTokenizer().decode(ids[2:])
    assert text[:len(expected)] == expected
    assert "".join(pieces) == text  # streamed piece by piece, nothing lost


def test_top_k_only_draws_among_the_k_likeliest():
    logits = torch.tensor([[0.0, 5.0, 4.0, -1.0, 3.0]])
    g = torch.Generator().manual_seed(0)
    drawn = {int(next_token(logits, temperature=5.0, top_k=2, generator=g)) for _ in range(200)}
    assert drawn == {1, 2}
    assert int(next_token(logits, temperature=0.0)) == 1


def test_sampling_with_a_seed_gives_the_same_text_with_and_without_the_cache():
    # 40 new tokens on windows of 16: the window slides after 14 of them.
    texts = [generate_text(_model(), ByteTokenizer(), 16, "ab", max_tokens=40, temperature=1.0, top_k=50, seed=5,
                           cache=cache) for cache in (False, True)]
    assert texts[0] == texts[1] and len(texts[0]) > 0


def test_the_default_caches_where_the_model_allows_and_says_why_where_not():
    from agent_forge.errors import ConfigError
    from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate
    from agent_forge.plugins.generate import use_cache

    notes = []
    assert use_cache(_model(), None, positions=16, n_sup=2, max_mb=1, note=notes.append) and not notes
    assert not use_cache(_model(), False, positions=16, n_sup=2, max_mb=1)
    bidirectional = TRMEnhancedCognate(TRMConfig(d_model=16, n_layers=1, n_heads=2, n=1, T=1, n_sup=1,
                                                 halting_head=False), vocab_size=257, seq_len=16, causal=False)
    assert not use_cache(bidirectional, None, positions=16, n_sup=1, max_mb=1, note=notes.append)
    assert notes and "bidirectional" in notes[0] and "--no-cache" not in notes[0]
    with pytest.raises(ConfigError, match="--cache: no cache across tokens: its attention is bidirectional"):
        use_cache(bidirectional, True, positions=16, n_sup=1, max_mb=1)
    # 16 positions x 2 steps x 2 applications x 1 layer x K and V x 16 wide x 4 bytes = 8 KiB.
    assert _model().cache_bytes(1, 16, 2) == 16 * 2 * 2 * 2 * 16 * 4
    with pytest.raises(ConfigError, match=r"take 0\.0078 MiB .* over --cache-max-mb 0\.005; raise --cache-max-mb"):
        use_cache(_model(), True, positions=16, n_sup=2, max_mb=0.005)
    notes.clear()
    assert not use_cache(_model(), None, positions=16, n_sup=2, max_mb=0.005, note=notes.append)
    assert "--cache-max-mb" in notes[0]


def test_a_prompt_longer_than_the_window_generates_the_same_with_the_cache_on():
    # The window slides from the first token: the cached path keeps nothing and recomputes it.
    prompt = "a prompt longer than sixteen bytes"
    texts = [generate_text(_model(), ByteTokenizer(), 16, prompt, max_tokens=6, temperature=1.0, top_k=None, seed=1,
                           cache=cache, cache_max_mb=0.0) for cache in (False, True)]
    assert texts[0] == texts[1]
