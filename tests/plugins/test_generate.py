"""``forge generate``'s sampling: reproducible with a seed, the argmax at temperature 0, streamed."""

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
