"""The population and how it evolves: candidates, ranking, breeding, elitism.

Generation 0 is the input models plus seed merges of them (linear, TIES and DARE of all inputs,
SLERP and a frankenmerge of the two fittest), filled up with children when that is fewer than
``population``; all are scored and the fittest ``population`` kept. Every later generation keeps
the ``elite`` fittest unchanged (their scores too: nothing is re-measured) and breeds the rest:
two parents by tournament, an operator and its coefficient at random, and with probability
``mutation_rate`` Gaussian noise on top. Every random choice comes from one ``torch.Generator``,
whose state is checkpointed with the population, so a resumed run makes the same choices.

Task vectors (TIES, DARE) are taken relative to one fixed base, the mean of the inputs: models
trained from different initialisations have no common pre-trained ancestor to subtract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from agent_forge.phases.evomerge.config import EvoMergeConfig
from agent_forge.phases.evomerge.merges import State, add_noise, dare, frankenmerge, layer_groups, linear, slerp, ties


@dataclass
class Candidate:
    """One model of the population. ``config`` indexes the inputs' distinct architecture configs
    (a child takes its fitter parent's). ``selection``/``heldout``: its metrics on each split
    (``heldout`` is measured only for inputs and for each generation's best)."""

    id: str
    state: State
    config: int
    origin: str
    parents: list[str]
    born: int
    selection: dict[str, float] = field(default_factory=dict)
    heldout: dict[str, float] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "config": self.config, "origin": self.origin,
                "parents": list(self.parents), "born": self.born, "selection": dict(self.selection),
                "heldout": None if self.heldout is None else dict(self.heldout)}

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> "Candidate":
        return cls(id=d["id"], state=dict(d["state"]), config=int(d["config"]), origin=d["origin"],
                   parents=list(d["parents"]), born=int(d["born"]), selection=dict(d["selection"]),
                   heldout=None if d["heldout"] is None else dict(d["heldout"]))

    def summary(self, metric: str) -> dict[str, Any]:
        """JSON facts about the candidate (no weights), for reports and ``result.json``."""
        return {"id": self.id, "origin": self.origin, "born": self.born, "parents": list(self.parents),
                "fitness": self.selection.get(metric), "selection": dict(self.selection),
                "heldout": None if self.heldout is None else dict(self.heldout)}


class Ranking:
    """Orders candidates fittest first by (metric, tiebreak); equal ones keep their order."""

    def __init__(self, cfg: EvoMergeConfig) -> None:
        self.metric, self.tiebreak = cfg.metric, cfg.tiebreak
        self.sign = 1.0 if cfg.mode == "max" else -1.0

    def key(self, c: Candidate) -> tuple[float, float]:
        return self.key_of(c.selection)

    def key_of(self, metrics: dict[str, float]) -> tuple[float, float]:
        tie = metrics.get(self.tiebreak, 0.0) if self.tiebreak else 0.0
        return (self.sign * metrics[self.metric], self.sign * tie)

    def sort(self, candidates: list[Candidate]) -> list[Candidate]:
        return sorted(candidates, key=self.key, reverse=True)  # stable, also reversed

    def fitness(self, c: Candidate) -> float:
        return c.selection[self.metric]


Score = Callable[[list[Candidate]], None]


class Evolution:
    """The population across generations; ``score`` fills each new candidate's ``selection``."""

    def __init__(self, cfg: EvoMergeConfig, inputs: list[Candidate], base: State, score: Score) -> None:
        self.cfg, self.inputs, self.base, self.score = cfg, inputs, base, score
        self.rank = Ranking(cfg)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.population: list[Candidate] = []
        self.generation = -1
        self.n_groups = len(layer_groups(list(inputs[0].state)))

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "rng": self.generator.get_state(),
                "population": [c.state_dict() for c in self.population]}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.generation = int(d["generation"])
        self.generator.set_state(d["rng"])
        self.population = [Candidate.from_state_dict(c) for c in d["population"]]

    # -- generations ------------------------------------------------------------------------
    def seed_generation(self) -> list[Candidate]:
        """Generation 0; returns the candidates that were scored."""
        self.generation = 0
        self.score(self.inputs)
        ranked = self.rank.sort(self.inputs)
        seeds = self._seed_merges(ranked)
        self.score(seeds)
        pool = self.rank.sort(ranked + seeds)
        children = [self.child(pool, 0, len(pool) + k) for k in range(self.cfg.population - len(pool))]
        self.score(children)
        self.population = self.rank.sort(pool + children)[: self.cfg.population]
        return ranked + seeds + children

    def next_generation(self) -> list[Candidate]:
        """Elites carried over, the rest bred and scored; returns the children."""
        self.generation += 1
        elites = self.population[: self.cfg.elite]
        children = [self.child(self.population, self.generation, k)
                    for k in range(self.cfg.population - len(elites))]
        self.score(children)
        self.population = self.rank.sort(elites + children)[: self.cfg.population]
        return children

    @property
    def best(self) -> Candidate:
        return self.population[0]

    # -- breeding ---------------------------------------------------------------------------
    def _seed_merges(self, ranked: list[Candidate]) -> list[Candidate]:
        if len(ranked) < 2:
            return []
        cfg, ops = self.cfg, set(self.cfg.operators)
        states = [c.state for c in ranked]
        ids = [c.id for c in ranked]
        first, second = ranked[0], ranked[1]
        made: list[tuple[str, State, list[str]]] = []
        if "linear" in ops:
            made.append(("linear(inputs)", linear(states), ids))
        if "ties" in ops:
            made.append((f"ties(inputs; density={cfg.ties_density:g})", ties(states, cfg.ties_density, self.base), ids))
        if "dare" in ops:
            made.append((f"dare(inputs; drop={cfg.dare_drop:g})",
                         dare(states, cfg.dare_drop, self.generator, self.base), ids))
        if "slerp" in ops:
            made.append((f"slerp({first.id}, {second.id}; t=0.5)", slerp(first.state, second.state, 0.5),
                         [first.id, second.id]))
        if "frankenmerge" in ops and first.config == second.config:
            picks = [g % 2 for g in range(self.n_groups)]
            made.append((f"frankenmerge({first.id}, {second.id}; alternating)",
                         frankenmerge([first.state, second.state], picks), [first.id, second.id]))
        return [Candidate(id=f"g0.{len(ranked) + k}", state=s, config=first.config, origin=origin, parents=parents,
                          born=0) for k, (origin, s, parents) in enumerate(made)]

    def _rand(self) -> float:
        return float(torch.rand((), generator=self.generator))

    def _randint(self, n: int) -> int:
        return int(torch.randint(n, (), generator=self.generator))

    def tournament(self, ranked: list[Candidate], exclude: int | None = None) -> int:
        """Index (into ``ranked``, fittest first) of the fittest of ``tournament`` random draws."""
        pool = [i for i in range(len(ranked)) if i != exclude] or [exclude]
        return min(pool[self._randint(len(pool))] for _ in range(self.cfg.tournament))

    def operators_for(self, a: Candidate, b: Candidate) -> list[str]:
        return [op for op in self.cfg.operators if op != "frankenmerge" or a.config == b.config]

    def child(self, ranked: list[Candidate], generation: int, index: int) -> Candidate:
        cfg = self.cfg
        i = self.tournament(ranked)
        j = self.tournament(ranked, exclude=i)
        a, b = ranked[min(i, j)], ranked[max(i, j)]  # a: the fitter parent
        ops = self.operators_for(a, b)
        if not ops:  # only frankenmerge allowed and the parents' configs differ: mutate the fitter one
            b, ops = a, ["frankenmerge"]
        op = ops[self._randint(len(ops))]
        t = round(self._rand(), 4)
        if op == "linear":
            state, desc = linear([a.state, b.state], [1 - t, t]), f"t={t:g}"
        elif op == "slerp":
            state, desc = slerp(a.state, b.state, t), f"t={t:g}"
        elif op == "ties":
            state, desc = ties([a.state, b.state], cfg.ties_density, self.base), f"density={cfg.ties_density:g}"
        elif op == "dare":
            state = dare([a.state, b.state], cfg.dare_drop, self.generator, self.base, [1 - t, t])
            desc = f"drop={cfg.dare_drop:g}, t={t:g}"
        else:
            picks = torch.randint(2, (self.n_groups,), generator=self.generator).tolist()
            state, desc = frankenmerge([a.state, b.state], picks), "layers " + "".join("ab"[p] for p in picks)
        origin = f"{op}({a.id}, {b.id}; {desc})" if b is not a else f"{op}({a.id}; {desc})"
        if a is b or self._rand() < cfg.mutation_rate:
            state = add_noise(state, cfg.noise_scale, self.generator)
            origin += f" + noise {cfg.noise_scale:g}"
        parents = [a.id] if a is b else [a.id, b.id]
        return Candidate(id=f"g{generation}.{index}", state=state, config=a.config, origin=origin,
                         parents=parents, born=generation)
