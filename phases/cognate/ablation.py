"""``forge ablate``: every arm trained on the same task, data, optimizer and wall-clock budget.

Fairness rules, enforced here rather than trusted to the variants:

* one task section for every arm (``--task`` or the first arm's), and one ``data_seed``, so every
  arm trains and is evaluated on the same generated puzzles;
* one optimizer setting (lr, batch, weight decay, warm-up) for every arm, taken from the first
  arm's trainer section; only the architecture and its callbacks differ;
* the same ``--minutes`` budget per run, with no step limit, so faster arms get more steps;
* seeds 0..K-1 for every arm; results are mean ± std over seeds (with one seed the spread is
  "n/a (1 seed)", not 0).

``ablation.md`` shows the settings the runs actually used, read back from every run's resolved
``config.json`` (so ``--set`` values, not the preset's): the ones every arm shared, and per arm
the ones that differ. Numbers go through :func:`agent_forge.formatting.format_number`; a value
that was not measured is "n/a", never ``nan``.

Nothing here is expected to win: ``ablation.md`` says which arm scored highest, by how much, and
whether the gap is larger than the seed-to-seed spread.

**Arms.** An arm is a registered variant plus overrides of its own (:class:`Arm`), given as a
variant name (``--variants a,b``), as ``--arm NAME=VARIANT:key=value,key=value`` (:func:`parse_arm`),
or by a named arm set (``--arms ema,recursion --base trm_paper``, :data:`ARM_SETS`) that expands
against the base variant's config. Arms whose resolved configs are identical run once, under the
first name (``same_as`` in ``ablation.json`` lists the others).
"""

from __future__ import annotations

import copy
import json
import math
import re
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from agent_forge.checkpoint import atomic_write_bytes, atomic_write_json
from agent_forge.config import apply_overrides
from agent_forge.errors import ConfigError
from agent_forge.formatting import format_number, format_spread
from agent_forge.logging import get_logger
from agent_forge.phases.cognate.ablation_jobs import Job, run_jobs
from agent_forge.plugin_host import PluginHost
from agent_forge.runner import PhaseRunner, RunOptions

SHARED_TRAINER_KEYS = ("batch_size", "lr", "optimizer", "weight_decay", "decay_all", "betas", "warmup_steps",
                       "schedule", "grad_clip", "precision", "compile", "eval_every", "eval_samples")
REPORTED = ("exact_accuracy", "token_accuracy", "raw/exact_accuracy", "ema/exact_accuracy", "raw/token_accuracy",
            "ema/token_accuracy", "parameters", "steps", "train_seconds", "mean_sup_steps", "early_stop_rate",
            "final_loss", "effective_depth", "eval_loss", "perplexity", "bits_per_byte", "raw/bits_per_byte",
            "ema/bits_per_byte")

#: What the verdict and the plot compare arms on: the first of these that the runs measured (a text
#: task has no exact accuracy; a run with only the ``loss`` evaluator has neither accuracy). The
#: sign says which way is better.
SCORES: tuple[tuple[str, int], ...] = (("exact_accuracy", 1), ("bits_per_byte", -1), ("token_accuracy", 1),
                                       ("eval_loss", -1))


# -- arms ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """One arm: a registered variant and overrides applied after the shared ones (``--set``)."""

    name: str
    variant: str
    overrides: tuple[str, ...] = ()

    def describe(self) -> str:
        return self.variant + (":" + ",".join(self.overrides) if self.overrides else "")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """``text`` split at ``sep`` outside brackets, braces and quotes: ``a=[1, 2],b=3`` -> 2 parts."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_arm(text: str) -> Arm:
    """``NAME=VARIANT:key=value,key=value``, ``NAME=VARIANT`` or ``VARIANT`` (named after it).

    Values are ``--set`` values; a comma inside brackets or quotes does not split
    (``task.blanks=[6, 8]``). ``callbacks.ema=null`` turns a callback off.
    """
    head, colon, tail = text.partition(":")
    name, eq, variant = head.partition("=")
    if not eq:
        name = variant = head
    name, variant = name.strip(), variant.strip()
    overrides = tuple(split_top_level(tail)) if colon else ()
    if not variant or not _NAME.match(name):
        raise ConfigError(f"--arm {text!r}: expected NAME=VARIANT:key=value,key=value (NAME: letters, digits,"
                          " '_', '-', '.'), e.g. --arm no_ema=trm_paper:callbacks.ema=null")
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"--arm {text!r}: {bad[0]!r} is not key=value")
    return Arm(name, variant, overrides)


def _flow(value: Any) -> str:
    return json.dumps(value)


def _ema_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    return [Arm("no_ema", base, ("callbacks.ema=null",))]


def _recursion_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    return [Arm(f"T{T}_n{n}", base, (f"model.T={T}", f"model.n={n}")) for T, n in ((3, 6), (3, 2), (2, 6), (2, 2))]


def _mixer_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    # The official commands: mlp_t with pos_encodings=none; attention with RoPE.
    return [Arm("mlp", base, ("model.mixer=mlp_official", "model.rope=false", "model.learned_positions=false")),
            Arm("attention", base, ("model.mixer=attention", "model.rope=true", "model.learned_positions=false"))]


def _layers_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    return [Arm("layers2", base, ("model.n_layers=2",)), Arm("layers1", base, ("model.n_layers=1",))]


def _deep_supervision_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    # One supervision step per sample, nothing to halt on: no ACT (and no halting head) and no
    # supervision cut. Every optimizer step runs one supervision step on B rows whatever n_sup
    # is, so at the same budget both arms take the same number of equally costly steps.
    return [Arm("nsup1", base, ("model.n_sup=1", "callbacks.act=null", "callbacks.early_stop=null"))]


#: TRM model fields the non-recursive baseline shares (its own ``mixer`` has no ``mlp_official``).
_BASELINE_FIELDS = ("d_model", "n_heads", "head_dim", "n_kv_heads", "expansion", "causal", "rope",
                    "learned_positions")


def _baseline_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    model = cfg.get("model") or {}
    if model.get("architecture") != "trm":
        raise ConfigError(f"--arms baseline: the base variant {base!r} is not a TRM (architecture"
                          f" {model.get('architecture')!r}); pass --base trm_paper or another TRM variant")
    settings = {k: model[k] for k in _BASELINE_FIELDS if k in model}
    mixer = model.get("mixer", "attention")
    settings["mixer"] = "mlp" if mixer == "mlp_official" else mixer
    layers = int(model.get("n_layers", 2))
    depth = layers * (int(model.get("n", 3)) + 1) * int(model.get("T", 3))
    callbacks = {k: v for k, v in (cfg.get("callbacks") or {}).items() if k not in ("act", "memory", "early_stop")}
    shared = tuple(f"model.{k}={_flow(v)}" for k, v in settings.items()) + (f"callbacks={_flow(callbacks)}",)
    if cfg.get("evaluators"):
        shared += (f"evaluators={_flow(cfg['evaluators'])}",)
    if "loss" in (cfg.get("trainer") or {}):
        shared += (f"trainer.loss={_flow(cfg['trainer']['loss'])}",)
    return [Arm("baseline_params", "baseline", shared + (f"model.n_layers={layers}",)),
            Arm("baseline_depth", "baseline", shared + (f"model.n_layers={depth}",))]


def _lm_seed002_arms(base: str, cfg: dict[str, Any]) -> list[Arm]:
    # Seed 002's experiments as a ladder from its control (n=2, T=1, N_sup=4, lm_baseline_70m):
    # A raises n to 3, B adds T=2 on top, C doubles N_sup on top (= config A's recursion). Each arm
    # evaluates with the N_sup it trained with ("match training"). A base that is the control
    # itself folds the control arm into it (same_as).
    def arm(name: str, n: int, T: int, n_sup: int) -> Arm:
        return Arm(name, base, (f"model.n={n}", f"model.T={T}", f"model.n_sup={n_sup}",
                                f"model.n_sup_inference={n_sup}"))

    return [arm("control", 2, 1, 4), arm("A_n3", 3, 1, 4), arm("B_n3_T2", 3, 2, 4), arm("C_n3_T2_nsup8", 3, 2, 8)]


#: Named arm sets: ``name -> (what it compares, arms from (base variant, its config))``. Every set
#: runs the base variant itself first, as arm ``base``.
ARM_SETS: dict[str, tuple[str, Callable[[str, dict[str, Any]], list[Arm]]]] = {
    "ema": ("EMA of the weights on (base) and off (no_ema: callbacks.ema=null)", _ema_arms),
    "recursion": ("T cycles x n latent updates: T3_n6 (the paper's), T3_n2, T2_n6, T2_n2", _recursion_arms),
    "mixer": ("token mixing: mlp (mlp_official, no position encoding) vs attention (RoPE), as the official"
              " commands", _mixer_arms),
    "layers": ("layers in the shared network: layers2 vs layers1 (n, T unchanged)", _layers_arms),
    "deep-supervision": ("nsup1: one supervision step per sample (no ACT), at the same compute per optimizer"
                         " step and the same budget", _deep_supervision_arms),
    "baseline": ("the non-recursive transformer: baseline_params (n_layers = L: the TRM's parameters) and"
                 " baseline_depth (n_layers = L*(n+1)*T: the layers one supervision step runs)", _baseline_arms),
    "lm-seed002": ("seed 002's experiments on a causal LM, a ladder from its control (n=2, T=1, N_sup=4): A_n3,"
                   " B_n3_T2 (A + T=2), C_n3_T2_nsup8 (B + N_sup=8); use --base lm_baseline_70m (or a shrunk"
                   " copy via --set)", _lm_seed002_arms),
}
#: ``--arms paper``: every puzzle set above (not the LM's), the base run once.
ARM_SET_GROUPS = {"paper": tuple(k for k in ARM_SETS if k != "lm-seed002")}


def expand_arm_sets(host: PluginHost, names: list[str], base: str, overrides: list[str] | tuple[str, ...] = ()
                    ) -> list[Arm]:
    """The arms of each named set, against ``base``'s config with ``overrides`` (the shared
    ``--set`` values) applied; ``base`` first."""
    spec = host.get("variant", base).obj
    cfg = apply_overrides(copy.deepcopy(dict(spec)), list(overrides))
    arms = [Arm("base", base)]
    for name in names:
        for set_name in ARM_SET_GROUPS.get(name, (name,)):
            if set_name not in ARM_SETS:
                known = ", ".join([*ARM_SETS, *ARM_SET_GROUPS])
                raise ConfigError(f"--arms {name!r}: no such arm set; known: {known}")
            arms += ARM_SETS[set_name][1](base, cfg)
    return arms


def _common_overrides(host: PluginHost, first: Arm, task: str | None, minutes: float, overrides: list[str] = (),
                      max_steps: int | None = None) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    # The shared trainer settings are what the first arm's runs use: its variant with the --set
    # values and its own overrides (a --set trainer.batch_size=16 is every run's batch).
    spec = apply_overrides(copy.deepcopy(dict(host.get("variant", first.variant).obj)),
                           [*overrides, *first.overrides])
    task_section = {"name": task} if task else dict(spec["task"])
    shared = {k: v for k, v in spec.get("trainer", {}).items() if k in SHARED_TRAINER_KEYS}
    # One budget for every arm: a preset's step or epoch budget would end arms unequally. Equal
    # wall-clock by default; an equal step budget (--max-steps) is fair under uneven machine load.
    budget = (["trainer.max_steps=null", "trainer.epochs=null", f"trainer.minutes={minutes}"] if max_steps is None
              else [f"trainer.max_steps={max_steps}", "trainer.epochs=null", "trainer.minutes=null"])
    common = [f"task={_flow(task_section)}", *budget]
    common += [f"trainer.{k}={_flow(v)}" for k, v in shared.items()]
    return task_section, shared, common


def resolve_arms(host: PluginHost, arms: list[str | Arm], *, task: str | None, minutes: float,
                 overrides: list[str], max_steps: int | None = None) -> tuple[list[tuple[Arm, tuple[str, ...]]], dict[str, list[str]],
                                                dict[str, Any], dict[str, Any]]:
    """Every arm with the overrides its runs get (shared ones, ``--set``, then its own), arms with
    the same resolved config folded into the first (``same_as``), the task section and the shared
    trainer settings. Checks variants and names before anything runs."""
    if not arms:
        raise ConfigError("name at least one arm: --variants a,b, --arm NAME=VARIANT:key=value or --arms SET")
    parsed = [a if isinstance(a, Arm) else Arm(a, a) for a in arms]
    for arm in parsed:
        host.get("variant", arm.variant)
        if not _NAME.match(arm.name):
            raise ConfigError(f"arm name {arm.name!r}: use letters, digits, '_', '-' and '.'")
    task_section, shared, common = _common_overrides(host, parsed[0], task, minutes, list(overrides), max_steps)
    out: list[tuple[Arm, tuple[str, ...]]] = []
    seen: dict[str, str] = {}
    same_as: dict[str, list[str]] = {}
    names: set[str] = set()
    for arm in parsed:
        full = tuple(common + list(overrides) + list(arm.overrides))
        resolved = json.dumps(apply_overrides(copy.deepcopy(dict(host.get("variant", arm.variant).obj)), list(full)),
                              sort_keys=True, default=str)
        if resolved in seen:
            if seen[resolved] != arm.name:
                same_as.setdefault(seen[resolved], []).append(arm.name)
            continue
        if arm.name in names:
            raise ConfigError(f"two different arms are named {arm.name!r}; give each --arm its own name")
        names.add(arm.name)
        seen[resolved] = arm.name
        out.append((arm, full))
    return out, same_as, task_section, shared


def run_ablation(host: PluginHost, arms: list[str | Arm], *, task: str | None, seeds: int, minutes: float,
                 overrides: list[str], out: Path | None, progress: bool = True, jobs: int = 1,
                 max_steps: int | None = None) -> dict[str, Any]:
    """Train every arm ``seeds`` times and write ``ablation.json``/``.md``/``.png`` into ``out``.

    ``jobs > 1`` runs that many at once as separate processes (:mod:`.ablation_jobs`), each
    with ``cores // jobs`` threads; ``jobs=1`` runs them one after another in this process.
    ``max_steps``: every run takes this many optimizer steps instead of ``minutes`` of wall clock.
    """
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: give 1 or more")
    if not minutes > 0:
        raise ConfigError(f"--minutes {minutes}: give a training budget above 0 (minutes per run)")
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"--max-steps {max_steps}: give 1 or more optimizer steps per run")
    resolved, same_as, task_section, shared = resolve_arms(host, arms, task=task, minutes=minutes,
                                                           overrides=overrides, max_steps=max_steps)
    out = out or Path("runs") / f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-ablation"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; an ablation writes a folder of runs there: choose another --out")
    plan = [Job(arm_spec.name, arm_spec.variant, seed, full, out / arm_spec.name / f"seed-{seed}")
            for arm_spec, full in resolved for seed in range(seeds)]
    # A run folder that already holds a finished run would be reported as if it were this
    # ablation's (the serial path refuses it too, but only when it reaches that run).
    done = [job.run_dir for job in plan if (job.run_dir / "result.json").exists()]
    if done:
        raise ConfigError(f"--out {out}: {done[0]} already holds a finished run (of {len(done)} of this"
                          " ablation's runs): choose another --out, or delete the folder to run it again")
    jobs = min(jobs, len(plan))  # --jobs 8 with 2 runs runs 2 at a time, each with half the cores
    if jobs == 1:
        runner = PhaseRunner(host)
        results = {job: runner.run("cognate", RunOptions(variant=job.variant, seed=job.seed,
                                                         overrides=job.overrides, progress=progress),
                                   run_dir=job.run_dir) for job in plan}
    else:
        log = get_logger(phase="ablate")
        results = run_jobs(plan, jobs, on_done=lambda job, r: log.info(
            "ablation.run_done", arm=job.arm, seed=job.seed, status=r.status,
            exact_accuracy=r.metrics.get("exact_accuracy"), run_dir=str(job.run_dir)))
    rows: dict[str, list[dict[str, float | None]]] = {}
    configs: dict[str, list[dict[str, Any]]] = {}
    for job in plan:
        result = results[job]
        m: dict[str, float | None] = {k: _finite(v) for k, v in result.metrics.items()}
        models = result.details.get("models") or [{}]
        history = models[0].get("history") or []
        m["final_loss"] = _finite(history[-1]["loss"]) if history else None
        m["effective_depth"] = _effective_depth(host, job.run_dir)
        rows.setdefault(job.arm, []).append(m)
        configs.setdefault(job.arm, []).append(json.loads((job.run_dir / "config.json").read_text())["config"])
    summary = {arm: {k: _mean_std([r.get(k) for r in runs]) for k in REPORTED} for arm, runs in rows.items()}
    verdict = _verdict(summary)
    names = [a.name for a, _ in resolved]
    data = {"arms": names, "arm_specs": {a.name: {"variant": a.variant, "overrides": list(a.overrides)}
                                         for a, _ in resolved},
            "same_as": same_as, "task": task_section, "seeds": seeds, "minutes": minutes, "max_steps": max_steps,
            "shared_trainer": shared,
            "overrides": overrides, "jobs": jobs, "settings": _settings(configs), "summary": summary, "runs": rows,
            "verdict": verdict, "out": str(out)}
    atomic_write_json(out / "ablation.json", data)
    atomic_write_bytes(out / "ablation.md", _markdown(data).encode())
    _plot(out / "ablation.png", out, names, seeds)
    return data


#: Config keys that differ between runs by design and are reported elsewhere (seeds 0..K-1).
_PER_RUN_KEYS = ("seed", "models")
_UNSET = "(not set)"


def _flatten(config: dict[str, Any]) -> dict[str, Any]:
    from agent_forge.config import flatten

    # An empty section (no callbacks) is left out: its settings show as "(not set)".
    return flatten({key: value for key, value in config.items() if value != {}})


def _settings(configs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """What the runs ran with, from their resolved configs (dotted keys, ``seed`` left out).

    ``shared``: ``{setting: value}`` for settings with one value in every run of every arm.
    ``per_arm``: ``{setting: {arm: value}}`` for the others; an arm whose seeds ran with
    different values has ``{"per_seed": [value, ...]}``; an arm without the setting has "(not set)".
    """
    flat = {arm: [_flatten({k: v for k, v in c.items() if k not in _PER_RUN_KEYS}) for c in runs]
            for arm, runs in configs.items()}
    keys = sorted({k for runs in flat.values() for c in runs for k in c})
    shared: dict[str, Any] = {}
    per_arm: dict[str, dict[str, Any]] = {}
    for key in keys:
        by_arm: dict[str, Any] = {}
        for arm, runs in flat.items():
            values = [c.get(key, _UNSET) for c in runs]
            same = len({json.dumps(v, sort_keys=True) for v in values}) == 1
            by_arm[arm] = values[0] if same else {"per_seed": values}
        if len({json.dumps(v, sort_keys=True) for v in by_arm.values()}) == 1 and not any(
                isinstance(v, dict) and "per_seed" in v for v in by_arm.values()):
            shared[key] = next(iter(by_arm.values()))
        else:
            per_arm[key] = by_arm
    return {"shared": shared, "per_arm": per_arm}


def _setting_text(value: Any) -> str:
    if isinstance(value, dict) and "per_seed" in value:
        return " / ".join(f"seed {i}: {_setting_text(v)}" for i, v in enumerate(value["per_seed"]))
    if value == _UNSET:
        return value
    return f"`{value}`" if isinstance(value, str) else f"`{json.dumps(value)}`"


def _finite(value: Any) -> float | None:
    """A metric as a float, or None when it is missing or not a number (NaN, inf)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _effective_depth(host: PluginHost, run_dir: Path) -> float | None:
    """From the run's resolved config, through the architecture's own config model; None if it has none."""
    model = dict(json.loads((run_dir / "config.json").read_text())["config"]["model"])
    reg = host.get("architecture", model.pop("architecture"))
    cfg = reg.config(**model) if reg.config is not None else None
    depth = getattr(cfg, "effective_depth", None)
    return float(depth()) if callable(depth) else None


def _mean_std(values: list[float | None]) -> dict[str, Any] | None:
    """Mean, std and n over the measured values (None and NaN are not measurements);
    ``std`` is None with one value: one seed says nothing about the spread."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "n": float(len(values))}


def _verdict(summary: dict[str, dict[str, Any]]) -> str:
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


RESULT_COLUMNS = ("exact_accuracy", "raw/exact_accuracy", "ema/exact_accuracy", "bits_per_byte", "raw/bits_per_byte",
                  "ema/bits_per_byte", "token_accuracy", "eval_loss",
                  "final_loss", "parameters", "effective_depth", "steps", "train_seconds", "mean_sup_steps",
                  "early_stop_rate")


def _markdown(data: dict[str, Any]) -> str:
    # Only the columns some arm measured (a text task has no exact accuracy, a puzzle no eval loss).
    cols = [c for c in RESULT_COLUMNS if any(s.get(c) for s in data["summary"].values())]
    seeds = data["seeds"]
    settings = data["settings"]
    spread = ("Values are mean ± std over seeds." if seeds > 1 else
              "One seed per arm: values are single runs and the seed-to-seed spread is n/a (1 seed).")
    lines = [f"# Ablation: {', '.join(data['arms'])}", "",
             f"Task `{data['task'].get('name', data['task'])}`, {seeds} seed{'s' if seeds != 1 else ''} per arm"
             f" (seeds {', '.join(str(i) for i in range(seeds))}), "
             + (f"a budget of {data['max_steps']} optimizer steps per run (--max-steps)" if data.get("max_steps")
                else f"a wall-clock budget of {format_number(data['minutes'] * 60, 'seconds')} per run")
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
    lines += ["## Settings every arm ran with", "", "| setting | value |", "|---|---|"]
    lines += [f"| `{key}` | {_setting_text(value)} |" for key, value in settings["shared"].items()]
    lines.append("")
    if settings["per_arm"]:
        lines += ["## Settings that differ between arms", "", "| setting | " + " | ".join(data["arms"]) + " |",
                  "|---|" + "---|" * len(data["arms"])]
        for key, by_arm in settings["per_arm"].items():
            lines.append(f"| `{key}` | " + " | ".join(_setting_text(by_arm.get(arm, _UNSET)) for arm in data["arms"])
                         + " |")
        lines += ["", f"{_UNSET}: the arm's config has no such setting (a callback that is off, a field its"
                  " architecture does not have).", ""]
    lines += ["## Results", "", spread + " n/a: not measured.", "",
              "| arm | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for arm, s in data["summary"].items():
        cells = [format_spread(s[c]["mean"], s[c]["std"], int(s[c]["n"]), "auto", key=c) if s.get(c) else "n/a"
                 for c in cols]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += ["", f"**Verdict:** {data['verdict']}.", "", "![eval accuracy over time](ablation.png)", ""]
    return "\n".join(lines)


def _plotted_metric(evals: list[dict[str, Any]]) -> str | None:
    keys = set(evals[0])
    return next((m for m, _ in SCORES if keys & {m, f"raw/{m}", f"ema/{m}"}), None)


def _plot(path: Path, out: Path, arms: list[str], seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    metric: str | None = None  # one metric for every curve, the first SCORES entry the evaluations have
    for arm in arms:
        for seed in range(seeds):
            metrics = out / arm / f"seed-{seed}" / "metrics.jsonl"
            if not metrics.exists():
                continue
            evals = [json.loads(line) for line in metrics.read_text().splitlines() if '"eval"' in line]
            evals = [e for e in evals if e.get("kind") == "eval"]
            if not evals:
                continue
            metric = metric or _plotted_metric(evals)
            if metric is None:
                continue
            key = next((k for k in (f"ema/{metric}", f"raw/{metric}", metric) if k in evals[0]), None)
            points = [(e["elapsed_s"] / 60, e[key]) for e in evals if key and e.get(key) is not None]
            if points:
                ax.plot(*zip(*points), label=f"{arm} s{seed} ({key.split('/')[0] if '/' in key else 'final'})")
    ax.set_xlabel("minutes")
    ax.set_ylabel(f"eval {(metric or 'exact_accuracy').replace('_', ' ')}")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    else:
        ax.set_title("no evaluations during training (trainer.eval_every is off)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
