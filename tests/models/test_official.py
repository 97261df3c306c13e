"""The official TRM code's details as options: its MLP token mixer (``mixer="mlp_official"``) and
the puzzle-embedding prefix (``puzzle_emb_len``). Expected values are worked out by hand."""

import math

import pytest
import torch

from agent_forge.models.layers import Block, MLPTokenMixer, TokenEmbedding, swiglu_hidden
from agent_forge.models.stack import make_mixer
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate


def _trm(ids=None, **kw):
    torch.manual_seed(0)
    cfg = dict(d_model=16, n_layers=1, n_heads=2, n=1, T=1, n_sup=2, puzzle_emb_len=4)
    cfg.update(kw)
    return TRMEnhancedCognate(TRMConfig(**cfg), vocab_size=5, seq_len=6, num_puzzle_ids=ids)


# -- the official MLP token mixer -----------------------------------------------------------
@pytest.mark.parametrize("length,official,ours", [
    # 9x9 Sudoku with the 16-position prefix, L = 81 + 16 = 97: round(4 * 97 * 2/3) = round(258.67) = 259,
    # up to a multiple of 256 -> 512 (ours: a multiple of 16 -> 272).
    (97, 512, 272),
    # ARC, L = 900 + 16 = 916: round(4 * 916 * 2/3) = round(2442.67) = 2443 -> 10 * 256 = 2560 (ours: 2448).
    (916, 2560, 2448),
    # 9x9 Sudoku without a prefix, L = 81: round(216.0) = 216 -> 256 (ours: 224).
    (81, 256, 224),
])
def test_official_mixer_hidden_width_rounds_up_to_256(length, official, ours):
    assert swiglu_hidden(length, 4.0, 256) == official
    assert swiglu_hidden(length, 4.0, 16) == ours
    mixer = make_mixer("mlp_official", d_model=8, seq_len=length, n_heads=2, n_kv_heads=2, causal=False,
                       expansion=4.0, rotary=None)
    assert mixer.mlp.down.in_features == official and mixer.mlp.gate_up.out_features == 2 * official
    assert make_mixer("mlp", d_model=8, seq_len=length, n_heads=2, n_kv_heads=2, causal=False,
                      expansion=4.0, rotary=None).mlp.down.in_features == ours


def test_the_paper_model_mixes_97_positions_through_512_hidden_units():
    with torch.device("meta"):
        model = TRMEnhancedCognate(TRMConfig(d_model=512, n_heads=8, mixer="mlp_official", puzzle_emb_len=16),
                                   vocab_size=10, seq_len=81)
    mlp = model.net.blocks[0].mixer.mlp
    assert (mlp.gate_up.in_features, mlp.gate_up.out_features, mlp.down.out_features) == (97, 1024, 97)


def _block(kind: str, d: int = 3, seq: int = 4) -> Block:
    torch.manual_seed(0)
    block = Block(d, make_mixer(kind, d_model=d, seq_len=seq, n_heads=1, n_kv_heads=1, causal=False,
                                expansion=2.0, rotary=None), 2.0)
    with torch.no_grad():  # both sub-layers output 0, so the block is only its two norms
        block.mixer.mlp.down.weight.zero_()
        block.mlp.down.weight.zero_()
    return block


def test_official_mixer_normalises_over_the_sequence_axis():
    # Every channel is constant along the sequence: channel c holds a_c at all 4 positions.
    a = torch.tensor([3.0, -0.5, 2.0])
    h = a.expand(1, 4, 3).clone()
    # Over the sequence axis each channel's RMS is |a_c|, so the first norm gives sign(a_c)
    # (up to eps = 1e-5), and the channel norm of (+-1, ...) leaves it: output = sign(a).
    expected_official = torch.tensor([1.0, -1.0, 1.0]).expand(1, 4, 3)
    torch.testing.assert_close(_block("mlp_official")(h), expected_official, atol=1e-4, rtol=0)
    # Our mixer normalises over the channels: a / RMS(a), RMS(a) = sqrt((9 + 0.25 + 4) / 3) = sqrt(13.25/3).
    rms = math.sqrt(13.25 / 3)
    expected_ours = torch.tensor([3.0 / rms, -0.5 / rms, 2.0 / rms]).expand(1, 4, 3)
    torch.testing.assert_close(_block("mlp")(h), expected_ours, atol=1e-4, rtol=0)


def test_official_mixer_is_bidirectional_only():
    with pytest.raises(ValueError, match="bidirectional"):
        TRMConfig(mixer="mlp_official", causal=True)
    assert MLPTokenMixer(5, 4.0, official=True).norm_over_sequence


# -- the puzzle-embedding prefix ------------------------------------------------------------
def test_prefix_holds_the_puzzle_vector_first_then_zeros_then_the_tokens():
    emb = TokenEmbedding(5, 4, num_puzzles=3, prefix_len=2)
    with torch.no_grad():
        emb.puzzle.copy_(torch.tensor([[1.0, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]))
    tokens = torch.tensor([[0, 1, 2]])
    x = emb(tokens, torch.tensor([2]))
    assert x.shape == (1, 2 + 3, 4)
    scale = 2.0  # sqrt(d_model = 4)
    torch.testing.assert_close(x[0, 0], scale * torch.tensor([9.0, 10, 11, 12]))
    torch.testing.assert_close(x[0, 1], torch.zeros(4))
    torch.testing.assert_close(x[0, 2:], scale * emb.weight[tokens[0]].detach())
    # Without ids (Sudoku, Maze) every row is puzzle 0.
    torch.testing.assert_close(emb(tokens)[0, 0], scale * torch.tensor([1.0, 2, 3, 4]))


def test_prefix_output_has_the_sequence_length_and_the_carry_the_prefix_too():
    model = _trm()
    batch = {"inputs": torch.randint(0, 5, (3, 6))}
    carry, out = model(model.initial_carry(batch), batch)
    assert out.logits.shape == (3, 6, 5)
    assert carry["y"].shape == carry["z"].shape == (3, 4 + 6, 16)
    assert model.embed.puzzle.shape == (1, 16)  # no puzzle ids: one puzzle, as the official Sudoku data


def test_q_head_reads_the_first_prefix_position_and_the_answer_head_skips_the_prefix():
    model = _trm()
    model.cycle = lambda x, y, z: (y, z)  # the states pass through, so y is what the carry says
    w = torch.arange(16, dtype=torch.float32) / 10
    with torch.no_grad():
        model.q_head.weight.copy_(w.unsqueeze(0))
        model.q_head.bias.zero_()
    batch = {"inputs": torch.zeros(1, 6, dtype=torch.long)}
    y = torch.randn(1, 10, 16)
    carry = {"y": y, "z": torch.zeros_like(y)}
    _, base = model(carry, batch)
    torch.testing.assert_close(base.q_halt_logits, (w * y[0, 0]).sum().unsqueeze(0))

    later = y.clone()
    later[0, 1:] += 1.0  # every position but the first: the other prefix positions and the cells
    _, out = model({"y": later, "z": carry["z"]}, batch)
    torch.testing.assert_close(out.q_halt_logits, base.q_halt_logits)

    first = y.clone()
    first[0, 0] += 1.0  # the first position only: q moves by w . 1, the answer does not move
    _, out = model({"y": first, "z": carry["z"]}, batch)
    torch.testing.assert_close(out.q_halt_logits, base.q_halt_logits + w.sum())
    torch.testing.assert_close(out.logits, base.logits)
    torch.testing.assert_close(base.logits[0], model.head(y[0, 4:]))


def test_without_a_prefix_the_q_head_reads_the_mean_as_before():
    model = _trm(puzzle_emb_len=0)
    model.cycle = lambda x, y, z: (y, z)
    with torch.no_grad():
        model.q_head.weight.fill_(1.0)
        model.q_head.bias.zero_()
    y = torch.randn(2, 6, 16)
    _, out = model({"y": y, "z": y}, {"inputs": torch.zeros(2, 6, dtype=torch.long)})
    torch.testing.assert_close(out.q_halt_logits, y.mean(1).sum(-1))
    assert out.logits.shape == (2, 6, 5)


def test_sparse_puzzle_table_is_declared_only_when_asked():
    assert _trm().sparse_embedding_parameters() == {}
    model = _trm(puzzle_emb_sparse=True)
    assert list(model.sparse_embedding_parameters()) == ["embed.puzzle"]
    assert model.sparse_embedding_parameters()["embed.puzzle"] is model.embed.puzzle
    with pytest.raises(ValueError, match="puzzle_emb_len=16"):
        _trm(puzzle_emb_len=0, puzzle_emb_sparse=True)  # no puzzle ids and no prefix: no table
