"""``ablation.md``: what ran (the arms, the settings every run shared and those that differ, read
back from the runs' resolved configs) and what came out (mean ± std per arm, the verdict)."""

from __future__ import annotations

import json
from typing import Any

from agent_forge.formatting import format_number, format_spread
from agent_forge.phases.cognate.ablation.stats import UNSET

#: The result columns, in order; a column no arm measured is left out.
RESULT_COLUMNS = ("exact_accuracy", "raw/exact_accuracy", "ema/exact_accuracy", "bits_per_byte", "raw/bits_per_byte",
                  "ema/bits_per_byte", "token_accuracy", "eval_loss",
                  "final_loss", "parameters", "effective_depth", "steps", "train_seconds", "mean_sup_steps",
                  "early_stop_rate")


def _setting_text(value: Any) -> str:
    if isinstance(value, dict) and "per_seed" in value:
        return " / ".join(f"seed {i}: {_setting_text(v)}" for i, v in enumerate(value["per_seed"]))
    if value == UNSET:
        return value
    return f"`{value}`" if isinstance(value, str) else f"`{json.dumps(value)}`"




def _budget_text(data: dict[str, Any]) -> str:
    if data.get("equal_time"):
        seconds = format_number(data["equal_time"]["seconds_per_run"], "seconds")
        return (f"an equal wall-clock budget of {seconds} of training per run (--equal-time), as each arm's step"
                " count from its step time measured before the runs (below)")
    if data.get("arm_steps"):
        return "each arm's own step budget (--arm-steps, below)"
    if data.get("max_steps"):
        return f"a budget of {data['max_steps']} optimizer steps per run (--max-steps)"
    return f"a wall-clock budget of {format_number(data['minutes'] * 60, 'seconds')} per run"


def _per_arm_budget(data: dict[str, Any]) -> list[str]:
    """The step count of every arm and, under --equal-time, the calibration it came from."""
    steps = data.get("arm_steps")
    if not steps:
        return []
    rerun = "--arm-steps " + ",".join(f"{arm}={n}" for arm, n in steps.items())
    cal = data.get("equal_time")
    if not cal:
        return ["## Steps per arm", "", "| arm | optimizer steps |", "|---|---|",
                *[f"| {arm} | {n:,} |" for arm, n in steps.items()], ""]
    load = cal.get("load_average_before")
    after = cal.get("load_average_after")
    lines = ["## Budget: equal wall-clock", "",
             f"Each arm's seconds per optimizer step were measured in one process before the runs: after"
             f" {cal['warmup']} untimed steps each, {cal['rounds']} rounds in which every arm took {cal['block']}"
             f" steps in turn (the order rotated each round); the median of its turns. Its budget is"
             f" {format_number(cal['seconds_per_run'], 'seconds')} over that, rounded. The calibration took"
             f" {format_number(cal['seconds'], 'seconds')}; load average (1/5/15 min)"
             f" {' / '.join(f'{x:.2f}' for x in load) if load else 'n/a'} before,"
             f" {' / '.join(f'{x:.2f}' for x in after) if after else 'n/a'} after. The step counts, not the"
             " clock, end the runs, so the runs compute the same under any load; the counts themselves"
             f" follow the load at calibration. To rerun exactly: `{rerun}` in place of `--equal-time`.", "",
             "| arm | seconds per step | steps | steps × seconds per step |", "|---|---|---|---|"]
    for arm, n in steps.items():
        s = cal["step_seconds"][arm]
        lines.append(f"| {arm} | {s:.4f} | {n:,} | {format_number(n * s, 'seconds')} |")
    return lines + [""]


def markdown(data: dict[str, Any]) -> str:
    # Only the columns some arm measured (a text task has no exact accuracy, a puzzle no eval loss).
    cols = [c for c in RESULT_COLUMNS if any(s.get(c) for s in data["summary"].values())]
    seeds = data["seeds"]
    settings = data["settings"]
    spread = ("Values are mean ± std over seeds." if seeds > 1 else
              "One seed per arm: values are single runs and the seed-to-seed spread is n/a (1 seed).")
    lines = [f"# Ablation: {', '.join(data['arms'])}", "",
             f"Task `{data['task'].get('name', data['task'])}`, {seeds} seed{'s' if seeds != 1 else ''} per arm"
             f" (seeds {', '.join(str(i) for i in range(seeds))}), "
             + _budget_text(data)
             + ". The settings below are read back from"
             " every run's resolved `config.json` (`--set` values included)."
             + (f" {data['jobs']} runs at a time (`--jobs`), each its own process with its share of the cores"
                " (`trainer.threads` below)." if data.get("jobs", 1) > 1 else ""), ""]
    specs = data.get("arm_specs") or {}
    if any(spec["overrides"] or spec["variant"] != arm for arm, spec in specs.items()):
        lines += ["## Arms", "", "| arm | variant | its own overrides |", "|---|---|---|"]
        for arm, spec in specs.items():
            own = ", ".join(f"`{o}`" for o in spec["overrides"]) or "(none)"
            alias = data.get("same_as", {}).get(arm)
            lines.append(f"| {arm}{' (= ' + ', '.join(alias) + ')' if alias else ''} | `{spec['variant']}` | {own} |")
        lines.append("")
    lines += _per_arm_budget(data)
    lines += ["## Settings every arm ran with", "", "| setting | value |", "|---|---|"]
    lines += [f"| `{key}` | {_setting_text(value)} |" for key, value in settings["shared"].items()]
    lines.append("")
    if settings["per_arm"]:
        lines += ["## Settings that differ between arms", "", "| setting | " + " | ".join(data["arms"]) + " |",
                  "|---|" + "---|" * len(data["arms"])]
        for key, by_arm in settings["per_arm"].items():
            lines.append(f"| `{key}` | " + " | ".join(_setting_text(by_arm.get(arm, UNSET)) for arm in data["arms"])
                         + " |")
        lines += ["", f"{UNSET}: the arm's config has no such setting (a callback that is off, a field its"
                  " architecture does not have).", ""]
    lines += ["## Results", "", spread + " n/a: not measured.", "",
              "| arm | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for arm, s in data["summary"].items():
        cells = [format_spread(s[c]["mean"], s[c]["std"], int(s[c]["n"]), "auto", key=c) if s.get(c) else "n/a"
                 for c in cols]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += ["", f"**Verdict:** {data['verdict']}.", "", "![eval accuracy over time](ablation.png)", ""]
    return "\n".join(lines)
