"""Test-time exploration: the noise option of the TRM, K batched trajectories, the selection
rules, symmetry voting and their determinism."""

import math

import pytest
import torch

from agent_forge.data import Split
from agent_forge.errors import ConfigError
from agent_forge.models.protocol import LatentNoise, ModelOutput
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate
from agent_forge.phases.common.evaluation import predict
from agent_forge.phases.common.exploration import (Candidates, compute_curve, explore, score, select_q,
                                                   select_verify, select_vote)
from agent_forge.plugins.datasets.sudoku import generate, make_check, make_symmetries

NAN = math.nan


def _model(seed: int = 0) -> TRMEnhancedCognate:
    torch.manual_seed(seed)
    model = TRMEnhancedCognate(TRMConfig(d_model=32, n_layers=1, n_heads=2, n=2, T=2, n_sup=3), vocab_size=7,
                               seq_len=36)
    # A random Q-head (the init is all-zero weights: every q would tie).
    torch.nn.init.normal_(model.q_head.weight, std=0.5)
    return model.eval()


def _puzzles(count: int = 10):
    p, s = generate(6, count, (20, 20), seed=5, cache=False)
    return torch.from_numpy(p.astype("int64")), torch.from_numpy(s.astype("int64"))


# -- the model option -----------------------------------------------------------------------------
def test_zero_scale_rows_are_bit_identical_and_others_move():
    h = torch.randn(3, 4, 8)
    out = LatentNoise(torch.tensor([0.0, 0.5, 0.0]), torch.Generator().manual_seed(1)).perturb(h)
    assert torch.equal(out[0], h[0]) and torch.equal(out[2], h[2])
    rel = (out[1] - h[1]).pow(2).mean().sqrt() / h[1].pow(2).mean().sqrt()
    assert 0.4 < float(rel) < 0.6  # relative to the state's RMS


def test_noise_none_and_all_zero_scales_equal_the_plain_forward():
    model = _model()
    x, _ = _puzzles(4)
    batch = {"inputs": x}
    c0, o0 = model(model.initial_carry(batch), batch)
    c1, o1 = model(model.initial_carry(batch), batch, noise=LatentNoise(torch.zeros(4), torch.Generator()))
    assert torch.equal(o0.logits, o1.logits) and torch.equal(c0["z"], c1["z"])
    c2, o2 = model(model.initial_carry(batch), batch, noise=LatentNoise(torch.full((4,), 0.3), torch.Generator()))
    assert not torch.equal(c0["z"], c2["z"])


# -- K = 1 and trajectory 0 ------------------------------------------------------------------------
def test_one_sample_without_noise_is_todays_evaluation_bit_for_bit():
    model = _model()
    x, s = _puzzles(10)
    p = predict(model, Split(x, s), n_sup=3, batch_size=4, device=torch.device("cpu"))
    for noise in (0.0, 0.7):  # with one sample the noise never applies: trajectory 0 is noiseless
        c = explore(model, x, samples=1, noise=noise, n_sup=3, batch_size=4)
        assert torch.equal(c.answers[:, 0], p.final)
        assert torch.equal(c.q[:, 0], p.q_halt_final)  # no q_continue head: the margin is q_halt
        assert c.trajectory_steps == 10 * 3


def test_trajectory_zero_is_noiseless_and_others_differ():
    model = _model()
    x, _ = _puzzles(6)
    # The reference: the same batch layout (each puzzle repeated K times) with no noise at all.
    plain = explore(model, x.repeat_interleave(4, 0), samples=1, n_sup=3, batch_size=24)
    noisy = explore(model, x, samples=4, noise=0.5, n_sup=3, batch_size=24, seed=3)
    assert torch.equal(noisy.answers[:, 0], plain.answers.view(6, 4, -1)[:, 0])
    assert torch.equal(noisy.q[:, 0], plain.q.view(6, 4)[:, 0])
    assert not torch.equal(noisy.q[:, 1:], plain.q.view(6, 4)[:, 1:])


def test_the_same_seed_gives_the_same_picks_and_another_seed_other_draws():
    model = _model()
    x, _ = _puzzles(6)
    a = explore(model, x, samples=4, noise=0.5, n_sup=2, batch_size=12, seed=11)
    b = explore(model, x, samples=4, noise=0.5, n_sup=2, batch_size=12, seed=11)
    c = explore(model, x, samples=4, noise=0.5, n_sup=2, batch_size=12, seed=12)
    assert torch.equal(a.answers, b.answers) and torch.equal(a.q, b.q)
    assert torch.equal(select_q(a.q), select_q(b.q)) and torch.equal(select_vote(a.answers, a.q),
                                                                      select_vote(b.answers, b.q))
    assert not torch.equal(a.q, c.q)


def test_early_exit_stops_halted_trajectories_and_keeps_their_answer():
    model = _model()
    x, _ = _puzzles(5)
    full = explore(model, x, samples=1, n_sup=3, batch_size=8)
    early = explore(model, x, samples=1, n_sup=3, batch_size=8, early_exit=True)
    # Without early exit every row runs 3 steps; with it a row stops when its margin is > 0.
    assert full.steps.eq(3).all()
    halted = early.steps < 3
    assert (early.q[halted] > 0).all()
    ran_all = ~halted
    assert torch.equal(early.answers[ran_all], full.answers[ran_all])


def test_noise_on_a_model_that_does_not_take_it_is_a_clear_error():
    class Plain(torch.nn.Module):
        n_sup = 1

    with pytest.raises(ConfigError, match="--samples 4 --noise 0.5.*accepts_noise"):
        explore(Plain(), torch.zeros(1, 4, dtype=torch.long), samples=4, noise=0.5)
    with pytest.raises(ConfigError, match="--noise"):
        explore(_model(), torch.zeros(1, 36, dtype=torch.long), samples=2, noise=-1.0)


# -- selection rules on hand-made candidates -------------------------------------------------------
def test_select_q_takes_the_highest_and_ties_go_to_the_lowest_index():
    q = torch.tensor([[0.1, 2.0, 1.0], [1.0, 1.0, 0.5], [NAN, -3.0, NAN], [NAN, NAN, NAN], [0.0, 3.0, 3.0]])
    assert select_q(q).tolist() == [1, 0, 1, 0, 1]


def test_select_vote_weighs_answers_by_sigmoid_q_with_ties_to_the_first():
    A, B, C = [1, 1], [2, 2], [3, 3]
    answers = torch.tensor([
        [A, B, B, C],   # B twice at sigmoid(0) = 0.5 each beats A once at sigmoid(2) = 0.88
        [A, B, B, C],   # A alone at q = 10 (~1.0) beats B twice at q = -10
        [A, B, A, B],   # an exact tie between A and B: A (its first candidate, 0) wins
        [C, A, B, A],   # no Q-head (NaN): a plain majority, the first candidate of A is index 1
    ])
    q = torch.tensor([[2.0, 0.0, 0.0, -1.0], [10.0, -10.0, -10.0, -10.0], [0.3, 0.3, 0.3, 0.3], [NAN] * 4])
    assert select_vote(answers, q).tolist() == [1, 0, 0, 1]


def test_select_verify_prefers_checked_answers_then_q():
    answers = torch.zeros(3, 3, 2, dtype=torch.long)
    q = torch.tensor([[5.0, 1.0, 2.0], [5.0, 1.0, 1.0], [0.0, 4.0, 1.0]])
    passes = torch.tensor([[False, True, True], [False, True, True], [False, False, False]])
    # Row 0: the best passing one (index 2); row 1: a tie between passing ones -> index 1;
    # row 2: none passes -> plain q (index 1).
    assert select_verify(answers, q, passes).tolist() == [2, 1, 1]


def test_scores_count_when_selection_picks_worse_than_the_noiseless_answer():
    targets = torch.tensor([[1, 1], [2, 2], [3, 3]])
    answers = torch.tensor([
        [[1, 1], [9, 9]],  # noiseless right, noisy wrong with higher q: q picks worse
        [[9, 9], [2, 2]],  # noiseless wrong, noisy right with higher q: q picks better
        [[3, 3], [3, 3]],  # both right
    ])
    q = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    cands = Candidates(answers, q, torch.full((3, 2), 4), samples=2, augment=1, noise=0.1, n_sup=4)
    s = score(cands, torch.zeros(3, 2, dtype=torch.long), targets)
    assert s.noiseless_exact_accuracy == pytest.approx(2 / 3)
    assert s.oracle_exact_accuracy == 1.0
    assert s.selections["q"].worse_than_noiseless == 1 and s.selections["q"].better_than_noiseless == 1
    assert "verify" not in s.selections  # no checker given
    curve = compute_curve(cands, torch.zeros(3, 2, dtype=torch.long), targets)
    assert [(p["samples"], p["augment"], p["trajectory_steps"]) for p in curve] == [(1, 1, 12), (2, 1, 24)]
    assert curve[0]["selections"]["q"]["exact_accuracy"] == pytest.approx(2 / 3)


# -- symmetries and the Sudoku checker on real puzzles ---------------------------------------------
def test_sudoku_symmetries_round_trip_and_keep_puzzles_valid():
    x, s = _puzzles(20)
    check = make_check(6)
    syms = make_symmetries(6)(8, seed=3)
    assert torch.equal(syms[0].apply(x), x)
    assert check(x, s).all()
    for sym in syms:
        assert torch.equal(sym.invert(sym.apply(x)), x) and torch.equal(sym.invert(sym.apply(s)), s)
        # The transformed solution solves the transformed puzzle (answer-preserving).
        assert check(sym.apply(x), sym.apply(s)).all()
    assert not torch.equal(syms[1].apply(x), x)
    assert [repr(a) for a in make_symmetries(6)(4, 3)] == [repr(a) for a in syms[:4]]
    assert all(torch.equal(a.positions, b.positions) for a, b in zip(make_symmetries(6)(8, 3), syms))


def test_sudoku_check_rejects_broken_answers():
    x, s = _puzzles(3)
    check = make_check(6)
    bad = s.clone()
    bad[0, [0, 1]] = bad[0, [1, 0]]  # swap two cells of the first row: columns break
    changed_given = s.clone()
    given = int((x[1] != 0).nonzero()[0])
    changed_given[1, given] = changed_given[1, given] % 6 + 1
    assert check(x, bad).tolist() == [False, True, True]
    assert check(x, changed_given).tolist() == [True, False, True]


def test_voting_over_symmetries_maps_answers_back_to_the_question_frame():
    x, s = _puzzles(6)

    class Oracle(torch.nn.Module):
        """Answers every (transformed) puzzle with its (transformed) solution: after inversion all
        candidates must equal the original solution."""

        n_sup = 1

        def initial_carry(self, batch):
            return {}

        def forward(self, carry, batch):
            rows = batch["inputs"]
            answer = torch.stack([lookup[tuple(r.tolist())] for r in rows])
            return {}, ModelOutput(logits=torch.nn.functional.one_hot(answer, 7).float())

    syms = make_symmetries(6)(4, seed=1)
    lookup = {tuple(sym.apply(x[i]).tolist()): sym.apply(s[i]) for sym in syms for i in range(len(x))}
    c = explore(Oracle(), x, samples=1, augment=4, symmetries=syms, batch_size=8)
    assert c.answers.shape == (6, 4, 36)
    assert torch.equal(c.answers, s.unsqueeze(1).expand(6, 4, 36))


def test_maze_dihedral_symmetries_round_trip_and_keep_shortest_paths():
    from agent_forge.plugins.datasets.maze import MazeConfig, generate, make_check, make_parse_question
    from agent_forge.plugins.datasets.maze_core import to_text
    from agent_forge.plugins.datasets.grids import dihedral_symmetries

    cfg = MazeConfig(size=9)
    q, a = (torch.from_numpy(v.astype("int64")) for v in generate(cfg, 6, seed=2, cache=False))
    check = make_check(9)
    syms = dihedral_symmetries(9, 8, seed=0)
    assert len({tuple(s.positions.tolist()) for s in syms}) == 8 and torch.equal(syms[0].apply(q), q)
    for sym in syms:
        assert torch.equal(sym.invert(sym.apply(q)), q) and torch.equal(sym.invert(sym.apply(a)), a)
        assert check(sym.apply(q), sym.apply(a)).all()
    assert not check(q, q).any()  # no path marked
    assert torch.equal(make_parse_question(9)(to_text(q[0].tolist())), q[0])
    with pytest.raises(ConfigError, match="--augment 9"):
        dihedral_symmetries(9, 9, 0)


# -- inference speed: the embedding once per carry, the compiled step ---------------------------------
def _steps(model, batch, steps, noise_seed=None):
    """Carry and outputs after each of ``steps`` supervision steps (with noise when a seed is given)."""
    carry, outs = model.initial_carry(batch), []
    gen = None if noise_seed is None else torch.Generator().manual_seed(noise_seed)
    for _ in range(steps):
        kw = {} if gen is None else {"noise": LatentNoise(torch.tensor([0.0, 0.4, 0.4, 0.0]), gen)}
        carry, out = model(carry, batch, **kw)
        outs.append((carry["y"].clone(), carry["z"].clone(), out.logits.clone(), out.q_halt_logits.clone()))
    return carry, outs


@pytest.mark.parametrize("cfg", [dict(), dict(learned_positions=True, puzzle_emb_len=2)])
def test_inference_embeds_once_per_carry_with_the_same_results_bit_for_bit(cfg):
    torch.manual_seed(0)
    model = TRMEnhancedCognate(TRMConfig(d_model=32, n_layers=1, n_heads=2, n=2, T=2, n_sup=3, **cfg), vocab_size=7,
                               seq_len=36, num_puzzle_ids=5 if cfg else None).eval()
    torch.nn.init.normal_(model.q_head.weight, std=0.5)
    if cfg:
        torch.nn.init.normal_(model.embed.puzzle, std=0.5)
    x, _ = _puzzles(4)
    batch = {"inputs": x, **({"puzzle_ids": torch.tensor([0, 3, 1, 4])} if cfg else {})}
    for seed in (None, 7):
        with torch.no_grad():  # the old path: no carry["x"], the input embedded at every step
            plain_carry, plain = _steps(model, batch, 3, seed)
        with torch.inference_mode():  # embedded once by initial_carry, read back at every step
            cached_carry, cached = _steps(model, batch, 3, seed)
        assert set(plain_carry) == {"y", "z"} and set(cached_carry) == {"x", "y", "z"}
        for a, b in zip(plain, cached):
            assert all(torch.equal(u, v) for u, v in zip(a, b))
    # Training (autograd on) never caches: the embedding's gradient flows through every step.
    assert set(model.initial_carry(batch)) == {"y", "z"}


def test_compile_falls_back_to_eager_and_says_why(monkeypatch):
    model = _model()
    x, _ = _puzzles(5)
    eager = explore(model, x, samples=2, noise=0.5, n_sup=2, batch_size=4, seed=1)
    assert not eager.compiled and eager.compile_fallback is None

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(UserWarning, match="torch.compile failed.*no C\\+\\+ compiler"):
        c = explore(model, x, samples=2, noise=0.5, n_sup=2, batch_size=4, seed=1, compile=True)
    assert not c.compiled and "no C++ compiler" in c.compile_fallback
    # Eager after the fallback, the padded batches included: the very answers of an eager run.
    assert torch.equal(c.answers, eager.answers) and torch.equal(c.q, eager.q)
    with pytest.warns(UserWarning, match="early-exit"):
        e = explore(model, x, samples=1, n_sup=2, batch_size=4, early_exit=True, compile=True)
    assert not e.compiled and "early-exit" in e.compile_fallback


@pytest.mark.slow  # compiles (tens of seconds on a loaded CPU)
def test_compiled_step_matches_eager_up_to_rounding():
    model = _model()
    x, _ = _puzzles(10)
    eager = explore(model, x, samples=1, n_sup=3, batch_size=4)
    comp = explore(model, x, samples=1, n_sup=3, batch_size=4, compile=True)  # 4 a batch: the last one padded
    assert comp.compiled and comp.compile_fallback is None and comp.compile_seconds > 0
    assert torch.allclose(comp.q, eager.q, atol=1e-3)
    assert (comp.answers == eager.answers).float().mean() > 0.99
    # With noise (the padded last batch draws for its padding rows too, so only trajectory 0 is
    # comparable with eager): deterministic given the seed, and trajectory 0 noiseless.
    runs = [explore(model, x, samples=3, noise=0.3, seed=2, n_sup=3, batch_size=12, compile=True) for _ in range(2)]
    assert runs[0].compiled and torch.equal(runs[0].answers, runs[1].answers) and torch.equal(runs[0].q, runs[1].q)
    assert torch.allclose(runs[0].q[:, 0], eager.q[:, 0], atol=1e-3)
