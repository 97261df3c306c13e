"""report.md and fitness.png of an EvoMerge run.

The plot shows, per generation, the best and the mean fitness of the population on the selection
split, and the held-out score of that generation's best (dotted), against the best input's
held-out score (a grey line). "The best input" is the input the selection split ranks first (what
would be handed on without merging), never one picked by its held-out score. The report says
whether the hand-off beats it on the held-out split, and if not, why that can happen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_forge.files import atomic_write_bytes
from agent_forge.formatting import format_number
from agent_forge.phases.evomerge.population import Ranking


def _f(value: Any, key: str) -> str:
    return format_number(value, "auto", key=key)


def plot_fitness(path: Path, history: list[dict[str, Any]], cfg: Any, best_input: dict[str, Any]) -> Path:
    """Best and mean fitness per generation (selection split), the best's held-out score, and the
    best input's held-out score as a line; a second panel the same for the tiebreak metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(cfg.metric, "")] + ([(cfg.tiebreak, "tiebreak_")] if cfg.tiebreak else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 3.8), squeeze=False)
    gens = [r["generation"] for r in history]
    for ax, (name, prefix) in zip(axes[0], panels):
        ax.plot(gens, [r.get(f"{prefix}best") for r in history], marker="o", label="best (selection split)")
        ax.plot(gens, [r.get(f"{prefix}mean") for r in history], marker=".", linestyle="--",
                label="mean (selection split)")
        ax.plot(gens, [r.get(f"{prefix}heldout_best") for r in history], marker="x", linestyle=":",
                label="best's score on the held-out split")
        if best_input["heldout"].get(name) is not None:
            ax.axhline(best_input["heldout"][name], color="grey", linewidth=0.8, label="best input, held-out")
        ax.set_xlabel("generation")
        ax.set_ylabel(name)
        ax.set_xticks(gens)
        ax.grid(alpha=0.3)
        ax.set_title(f"{name} ({'fitness' if not prefix else 'tiebreak'})")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def verdict(cfg: Any, handoff: dict[str, Any], best_input: dict[str, Any]) -> str:
    """One paragraph: the hand-off against the best input on both splits, and what that means.
    "At least as well" compares (metric, tiebreak), the order candidates are ranked in."""
    metric = cfg.metric
    h_sel, h_held = handoff["selection"][metric], handoff["heldout"][metric]
    i_sel, i_held = best_input["selection"][metric], best_input["heldout"][metric]
    text = (f"On the selection split the hand-off scores {_f(h_sel, metric)} against {_f(i_sel, metric)} for"
            f" the best input on the selection split ({best_input['id']}); on the held-out split {_f(h_held, metric)}"
            f" against {_f(i_held, metric)}")
    if cfg.tiebreak and h_held == i_held:
        tb = cfg.tiebreak
        text += (f" (`{tb}`, the tiebreak: {_f(handoff['heldout'].get(tb), tb)} against"
                 f" {_f(best_input['heldout'].get(tb), tb)})")
    text += ". "
    if handoff.get("is_input") and handoff["input_id"] == best_input["id"]:
        return text + ("The hand-off is that input: no merge beat it on the selection split, so it is handed on"
                       " unchanged.")
    rank = Ranking(cfg)
    if rank.key_of(handoff["heldout"]) >= rank.key_of(best_input["heldout"]):
        return text + "The hand-off scores at least as well as the best input on the held-out split."
    return text + ("The hand-off scores below the best input on the held-out split. Elitism keeps the inputs in"
                   " generation 0, which guarantees that the hand-off is at least as fit on the selection split,"
                   " the split every choice is made on; it guarantees nothing on puzzles never chosen on. A lead"
                   f" on the selection split ({handoff['selection_samples']} puzzles) that does not carry over is"
                   " sampling noise the search has found and kept: the candidate is luckier there, not better.")


def write_report(run_dir: Path, *, cfg: Any, history: list[dict[str, Any]], inputs: list[dict[str, Any]],
                 population: list[dict[str, Any]], handoff: dict[str, Any], best_input: dict[str, Any],
                 sizes: dict[str, int], stop_reason: str, evaluations: dict[str, int]) -> Path:
    metric = cfg.metric
    plot = plot_fitness(run_dir / "fitness.png", history, cfg, best_input)
    last = history[-1]["generation"] if history else 0
    lines = [f"# EvoMerge run `{run_dir.name}`", "",
             f"Population {cfg.population}, elite {cfg.elite}, tournament {cfg.tournament}, operators"
             f" {', '.join(cfg.operators)}; mutation rate {cfg.mutation_rate:g}, noise {cfg.noise_scale:g}; seed"
             f" {cfg.seed}. Generations run: {last} of {cfg.generations} after generation 0 (stopped: {stop_reason}).",
             f"Fitness: `{metric}` ({'higher' if cfg.mode == 'max' else 'lower'} is better"
             + (f", ties broken by `{cfg.tiebreak}`" if cfg.tiebreak else "") + f") on the selection split: "
             + (f"{sizes['selection']} rows the inputs' run held out of its training data (validation_samples)"
                if handoff.get("selection_from") == "validation" else
                f"{sizes['selection']} rows of the training data, which the inputs trained on (their run held no"
                " validation rows out; train them with validation_samples=N for a selection split they never saw)")
             + f". Held-out split: the first {sizes['heldout']} rows of the task's eval split, measured for the"
             " inputs and each generation's best, never selected on."
             f" {evaluations['selection']} candidates scored on the selection split,"
             f" {evaluations['heldout']} on the held-out split.", "",
             "## Inputs", "",
             f"| input | artifact | selection {metric} | held-out {metric} |", "|---|---|---|---|"]
    for row in inputs:
        lines.append(f"| {row['id']} | `{row['artifact']}` | {_f(row['selection'][metric], metric)} |"
                     f" {_f(row['heldout'][metric], metric)} |")
    tb = cfg.tiebreak
    tb_head = f" best {tb} | mean {tb} | held-out {tb} |" if tb else ""
    lines += ["", "## Generations", "", f"Fitness (`{metric}`) of the population on the selection split"
              + (f", then the tiebreak (`{tb}`)" if tb else "") + "; the best candidate's score on the held-out split.",
              "", f"| generation | best | mean | best on held-out |{tb_head} best candidate | scored | elapsed |",
              "|---|---|---|---|" + ("---|---|---|" if tb else "") + "---|---|---|"]
    for r in history:
        tb_cells = (f" {_f(r.get('tiebreak_best'), tb)} | {_f(r.get('tiebreak_mean'), tb)} |"
                    f" {_f(r.get('tiebreak_heldout_best'), tb)} |") if tb else ""
        lines.append(f"| {r['generation']} | {_f(r['best'], metric)} | {_f(r['mean'], metric)} |"
                     f" {_f(r.get('heldout_best'), metric)} |{tb_cells} {r['best_id']}: {r['best_origin']} |"
                     f" {r['scored']} | {format_number(r['elapsed_s'], 'seconds')} |")
    lines += ["", f"![fitness per generation]({plot.name})", "", "## Hand-off", "",
              f"`{handoff['id']}`: {handoff['origin']} (born in generation {handoff['born']}).", "",
              verdict(cfg, handoff, best_input), "",
              "| split | hand-off | best input |", "|---|---|---|"]
    for split in ("selection", "heldout"):
        for key in sorted(handoff[split]):
            lines.append(f"| {split} {key} | {_f(handoff[split][key], key)} | {_f(best_input[split].get(key), key)} |")
    lines += ["", "## Final population", "", f"| rank | candidate | origin | born | selection {metric} |",
              "|---|---|---|---|---|"]
    for rank, c in enumerate(population, 1):
        lines.append(f"| {rank} | {c['id']} | {c['origin']} | {c['born']} | {_f(c['fitness'], metric)} |")
    lines += ["", "Models trained from different initialisations are not aligned unit for unit, so a merge of two"
              " of them usually scores below both; candidates close to one parent (small interpolation"
              " coefficients, noise) are the ones that can keep up. Config: `config.json`; per generation,"
              " with every candidate scored: `metrics.jsonl`.", ""]
    path = run_dir / "report.md"
    atomic_write_bytes(path, "\n".join(lines).encode())
    return path
