"""The numbers of an ablation: mean ± std over seeds, the settings the runs shared, the verdict.

A value that was not measured is None (shown "n/a"), never ``nan``; with one seed the spread is
None ("n/a (1 seed)"), not 0.
"""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

from agent_forge.formatting import format_number, format_spread

#: The metrics summarised per arm (mean ± std over its seeds).
REPORTED = ("exact_accuracy", "token_accuracy", "raw/exact_accuracy", "ema/exact_accuracy", "raw/token_accuracy",
            "ema/token_accuracy", "parameters", "steps", "train_seconds", "mean_sup_steps", "early_stop_rate",
            "final_loss", "effective_depth", "eval_loss", "perplexity", "bits_per_byte", "raw/bits_per_byte",
            "ema/bits_per_byte")

#: What the verdict and the plot compare arms on: the first of these that the runs measured (a text
#: task has no exact accuracy; a run with only the ``loss`` evaluator has neither accuracy). The
#: sign says which way is better.
SCORES: tuple[tuple[str, int], ...] = (("exact_accuracy", 1), ("bits_per_byte", -1), ("token_accuracy", 1),
                                       ("eval_loss", -1))

#: Config keys that differ between runs by design and are reported elsewhere (seeds 0..K-1).
PER_RUN_KEYS = ("seed", "models")
UNSET = "(not set)"


def _flatten(config: dict[str, Any]) -> dict[str, Any]:
    from agent_forge.config import flatten

    # An empty section (no callbacks) is left out: its settings show as "(not set)".
    return flatten({key: value for key, value in config.items() if value != {}})


def settings(configs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """What the runs ran with, from their resolved configs (dotted keys, ``seed`` left out).

    ``shared``: ``{setting: value}`` for settings with one value in every run of every arm.
    ``per_arm``: ``{setting: {arm: value}}`` for the others; an arm whose seeds ran with
    different values has ``{"per_seed": [value, ...]}``; an arm without the setting has "(not set)".
    """
    flat = {arm: [_flatten({k: v for k, v in c.items() if k not in PER_RUN_KEYS}) for c in runs]
            for arm, runs in configs.items()}
    keys = sorted({k for runs in flat.values() for c in runs for k in c})
    shared: dict[str, Any] = {}
    per_arm: dict[str, dict[str, Any]] = {}
    for key in keys:
        by_arm: dict[str, Any] = {}
        for arm, runs in flat.items():
            values = [c.get(key, UNSET) for c in runs]
            same = len({json.dumps(v, sort_keys=True) for v in values}) == 1
            by_arm[arm] = values[0] if same else {"per_seed": values}
        if len({json.dumps(v, sort_keys=True) for v in by_arm.values()}) == 1 and not any(
                isinstance(v, dict) and "per_seed" in v for v in by_arm.values()):
            shared[key] = next(iter(by_arm.values()))
        else:
            per_arm[key] = by_arm
    return {"shared": shared, "per_arm": per_arm}



def finite(value: Any) -> float | None:
    """A metric as a float, or None when it is missing or not a number (NaN, inf)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None



def mean_std(values: list[float | None]) -> dict[str, Any] | None:
    """Mean, std and n over the measured values (None and NaN are not measurements);
    ``std`` is None with one value: one seed says nothing about the spread."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "n": float(len(values))}


def verdict(summary: dict[str, dict[str, Any]]) -> str:
    for metric, sign in SCORES:
        scored = [(arm, s[metric]) for arm, s in summary.items() if s.get(metric)]
        if len(scored) >= 2:
            break
    else:
        return "fewer than two arms measured a score: nothing to compare"
    scored.sort(key=lambda x: -sign * x[1]["mean"])
    (best, b), (second, c) = scored[0], scored[1]
    gap = abs(b["mean"] - c["mean"])
    name = metric.replace("_", " ")
    kind = "fraction" if metric.endswith("accuracy") else "auto"

    def val(v: float) -> str:
        return format_number(v, kind, key=metric)

    if gap == 0:
        return f"{best} and {second} tie on {name} ({val(b['mean'])})"
    best_word = "highest" if sign > 0 else "lowest"
    head = (f"{best} has the {best_word} {name} ({format_spread(b['mean'], b['std'], int(b['n']), kind, key=metric)}),"
            f" {val(gap)} {'above' if sign > 0 else 'below'} {second}")
    if b["std"] is None or c["std"] is None:
        return (f"{head}; the seed-to-seed spread is n/a (1 seed), so whether the gap is more than seed"
                " noise cannot be told: run more seeds (--seeds)")
    spread = max(b["std"], c["std"])
    if spread == 0:
        return f"{head}; the seeds did not vary (spread 0), so the gap cannot be set against a spread"
    return f"{head}, {gap / spread:.1f}× the larger seed-to-seed spread of the two ({val(spread)})"
