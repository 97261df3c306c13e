"""Evolution without models: a fitness that reads the weights directly."""

import torch

from agent_forge.phases.evomerge.config import EvoMergeConfig
from agent_forge.phases.evomerge.merges import linear
from agent_forge.phases.evomerge.population import Candidate, Evolution


def _inputs(values):
    return [Candidate(id=f"in{i}", state={"w": torch.full((4,), float(v)), "net.0.w": torch.full((2,), float(v)),
                                         "net.1.w": torch.full((2,), -float(v))},
                      config=0, origin=f"input {i}", parents=[], born=0) for i, v in enumerate(values)]


def _closeness(target):
    """Fitness: minus the distance of ``w`` to ``target`` (higher is better)."""
    def score(candidates):
        for c in candidates:
            c.selection = {"exact_accuracy": -float((c.state["w"] - target).abs().mean()), "token_accuracy": 0.0}
    return score


def _evolution(values, score, **cfg):
    inputs = _inputs(values)
    return Evolution(EvoMergeConfig(**cfg), inputs, linear([c.state for c in inputs]), score)


def test_elites_are_carried_over_unchanged_and_the_best_never_gets_worse():
    evo = _evolution([0.0, 1.0, 4.0], _closeness(2.5), population=6, elite=2)
    evo.seed_generation()
    assert len(evo.population) == 6
    bests = [evo.rank.fitness(evo.best)]
    for _ in range(6):
        elites = [(c.id, {k: v.clone() for k, v in c.state.items()}, dict(c.selection)) for c in evo.population[:2]]
        children = evo.next_generation()
        assert len(children) == 4 and len(evo.population) == 6
        now = {c.id: c for c in evo.population}
        for cid, state, selection in elites:
            assert cid in now, f"elite {cid} was dropped"
            assert all(torch.equal(now[cid].state[k], v) for k, v in state.items())
            assert now[cid].selection == selection  # not re-scored
        bests.append(evo.rank.fitness(evo.best))
    assert bests == sorted(bests)


def test_an_unbeatable_input_stays_the_best():
    inputs_w = torch.full((4,), 7.0)

    def score(candidates):  # only the exact weights of input 1 are fit
        for c in candidates:
            c.selection = {"exact_accuracy": float(torch.equal(c.state["w"], inputs_w)), "token_accuracy": 0.0}

    evo = _evolution([0.0, 7.0, 3.0], score)
    evo.seed_generation()
    for _ in range(5):
        evo.next_generation()
    assert evo.best.id == "in1" and torch.equal(evo.best.state["w"], inputs_w)


def test_generation_zero_holds_the_inputs_and_one_seed_merge_per_operator():
    evo = _evolution([0.0, 1.0, 4.0], _closeness(1.0), population=8, elite=2)
    scored = evo.seed_generation()
    origins = [c.origin for c in scored]
    assert origins[:3] == ["input 1", "input 0", "input 2"]  # ranked: 1.0 is closest to the target
    assert [o.split("(")[0] for o in origins[3:8]] == ["linear", "ties", "dare", "slerp", "frankenmerge"]
    assert len(scored) == 8 and {c.id for c in evo.population} == {c.id for c in scored}


def test_a_checkpointed_evolution_continues_exactly():
    def run(split):
        evo = _evolution([0.0, 1.0, 4.0], _closeness(2.5))
        evo.seed_generation()
        for _ in range(split):
            evo.next_generation()
        saved = evo.state_dict()
        evo = _evolution([0.0, 1.0, 4.0], _closeness(2.5))
        evo.load_state_dict(saved)
        for _ in range(5 - split):
            evo.next_generation()
        return evo.population

    a, b = run(0), run(3)
    assert [c.id for c in a] == [c.id for c in b] and [c.origin for c in a] == [c.origin for c in b]
    assert all(torch.equal(x.state[k], y.state[k]) for x, y in zip(a, b) for k in x.state)


def test_frankenmerge_is_never_drawn_for_parents_of_different_configs():
    inputs = _inputs([0.0, 1.0, 4.0])
    inputs[1].config = 1
    evo = Evolution(EvoMergeConfig(), inputs, linear([c.state for c in inputs]), _closeness(2.0))
    assert "frankenmerge" not in evo.operators_for(inputs[0], inputs[1])
    assert "frankenmerge" in evo.operators_for(inputs[0], inputs[2])
