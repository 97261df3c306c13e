"""Running an ablation: one task, data, optimizer and budget for every arm, every arm ``seeds``
times, then ``ablation.json``/``.md``/``.png`` written from the runs' results and resolved configs."""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agent_forge.config import apply_overrides
from agent_forge.errors import ConfigError
from agent_forge.files import atomic_write_bytes, atomic_write_json
from agent_forge.logging import get_logger
from agent_forge.phases.cognate.ablation.arms import NAME, Arm, flow
from agent_forge.phases.cognate.ablation.calibrate import calibrate, equal_time_steps
from agent_forge.phases.cognate.ablation.jobs import Job, run_jobs, threads_per_job
from agent_forge.phases.cognate.ablation.markdown import markdown
from agent_forge.phases.cognate.ablation.plots import plot
from agent_forge.phases.cognate.ablation.stats import REPORTED, finite, mean_std, settings, verdict
from agent_forge.plugin_host import PluginHost
from agent_forge.runner import PhaseRunner, RunOptions
from agent_forge.phases.cognate.hookspecs import VariantSpec
from agent_forge.specs import ArchitectureSpec

#: The trainer settings every arm takes from the first arm (only the architecture and its
#: callbacks differ between arms).
SHARED_TRAINER_KEYS = ("batch_size", "lr", "optimizer", "weight_decay", "decay_all", "betas", "warmup_steps",
                       "schedule", "grad_clip", "precision", "compile", "eval_every", "eval_samples")
#: The wall-clock budget per run when no budget is given (``--minutes``).
DEFAULT_MINUTES = 2.0
#: The budget overrides of a run whose step count is its arm's own (``--equal-time``,
#: ``--arm-steps``): no common budget; each arm's ``trainer.max_steps`` is appended to its overrides.
PER_ARM = ["trainer.max_steps=null", "trainer.epochs=null", "trainer.minutes=null"]


def _common_overrides(host: PluginHost, first: Arm, task: str | None, minutes: float | None, overrides: list[str] = (),
                      max_steps: int | None = None) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    # The shared trainer settings are what the first arm's runs use: its variant with the --set
    # values and its own overrides (a --set trainer.batch_size=16 is every run's batch).
    spec = apply_overrides(copy.deepcopy(dict(host.get(VariantSpec, first.variant).config)),
                           [*overrides, *first.overrides])
    task_section = {"name": task} if task else dict(spec["task"])
    shared = {k: v for k, v in spec.get("trainer", {}).items() if k in SHARED_TRAINER_KEYS}
    # One budget for every arm: a preset's step or epoch budget would end arms unequally. Equal
    # wall-clock by default; an equal step budget (--max-steps) is fair under uneven machine load.
    if max_steps is not None:
        budget = [f"trainer.max_steps={max_steps}", "trainer.epochs=null", "trainer.minutes=null"]
    elif minutes is not None:
        budget = ["trainer.max_steps=null", "trainer.epochs=null", f"trainer.minutes={minutes}"]
    else:  # each arm's own step budget, appended to its overrides later
        budget = list(PER_ARM)
    common = [f"task={flow(task_section)}", *budget]
    common += [f"trainer.{k}={flow(v)}" for k, v in shared.items()]
    return task_section, shared, common


def resolve_arms(host: PluginHost, arms: list[str | Arm], *, task: str | None, minutes: float | None,
                 overrides: list[str], max_steps: int | None = None) -> tuple[list[tuple[Arm, tuple[str, ...]]], dict[str, list[str]],
                                                dict[str, Any], dict[str, Any]]:
    """Every arm with the overrides its runs get (shared ones, ``--set``, then its own), arms with
    the same resolved config folded into the first (``same_as``), the task section and the shared
    trainer settings. Checks variants and names before anything runs."""
    if not arms:
        raise ConfigError("name at least one arm: --variants a,b, --arm NAME=VARIANT:key=value or --arms SET")
    parsed = [a if isinstance(a, Arm) else Arm(a, a) for a in arms]
    for arm in parsed:
        host.get(VariantSpec, arm.variant)
        if not NAME.match(arm.name):
            raise ConfigError(f"arm name {arm.name!r}: use letters, digits, '_', '-' and '.'")
    task_section, shared, common = _common_overrides(host, parsed[0], task, minutes, list(overrides), max_steps)
    out: list[tuple[Arm, tuple[str, ...]]] = []
    seen: dict[str, str] = {}
    same_as: dict[str, list[str]] = {}
    names: set[str] = set()
    for arm in parsed:
        full = tuple(common + list(overrides) + list(arm.overrides))
        resolved = json.dumps(apply_overrides(copy.deepcopy(dict(host.get(VariantSpec, arm.variant).config)), list(full)),
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


def run_ablation(host: PluginHost, arms: list[str | Arm], *, task: str | None, seeds: int,
                 minutes: float | None = None, overrides: list[str], out: Path | None, progress: bool = True,
                 jobs: int = 1, max_steps: int | None = None, equal_time: float | None = None,
                 arm_steps: dict[str, int] | None = None) -> dict[str, Any]:
    """Train every arm ``seeds`` times and write ``ablation.json``/``.md``/``.png`` into ``out``.

    ``jobs > 1`` runs that many at once as separate processes (:mod:`.jobs`), each
    with ``cores // jobs`` threads; ``jobs=1`` runs them one after another in this process.
    One budget, at most: ``minutes`` of wall clock per run (the default,
    :data:`DEFAULT_MINUTES`); ``max_steps`` optimizer steps per run; ``equal_time`` seconds of
    training per run, turned into each arm's step count by timing the arms' steps before the runs
    (:mod:`.calibrate`); or ``arm_steps``, each arm's step count given (``{arm: steps}``: what an
    ``equal_time`` ablation records, to rerun it exactly).
    """
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: give 1 or more")
    given = [flag for flag, value in (("--minutes", minutes), ("--max-steps", max_steps),
                                      ("--equal-time", equal_time), ("--arm-steps", arm_steps)) if value is not None]
    if len(given) > 1:
        raise ConfigError(f"{' and '.join(given)}: give one training budget per ablation (--minutes, --max-steps,"
                          " --equal-time or --arm-steps), not several")
    if not given:
        minutes = DEFAULT_MINUTES
    if minutes is not None and not minutes > 0:
        raise ConfigError(f"--minutes {minutes}: give a training budget above 0 (minutes per run)")
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"--max-steps {max_steps}: give 1 or more optimizer steps per run")
    if equal_time is not None and not (equal_time > 0 and math.isfinite(equal_time)):
        raise ConfigError(f"--equal-time {equal_time}: give the training seconds per run, above 0"
                          " (e.g. --equal-time 300)")
    resolved, same_as, task_section, shared = resolve_arms(host, arms, task=task, minutes=minutes,
                                                           overrides=overrides, max_steps=max_steps)
    out = out or Path("runs") / f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-ablation"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; an ablation writes a folder of runs there: choose another --out")
    # A run folder that already holds a finished run would be reported as if it were this
    # ablation's (the serial path refuses it too, but only when it reaches that run). Checked
    # before the calibration, which takes minutes.
    done = [out / a.name / f"seed-{seed}" for a, _ in resolved for seed in range(seeds)
            if (out / a.name / f"seed-{seed}" / "result.json").exists()]
    if done:
        raise ConfigError(f"--out {out}: {done[0]} already holds a finished run (of {len(done)} of this"
                          " ablation's runs): choose another --out, or delete the folder to run it again")
    calibration: dict[str, Any] | None = None
    if arm_steps is not None:
        steps = _check_arm_steps(arm_steps, [a.name for a, _ in resolved], same_as)
    elif equal_time is not None:
        # The jobs of --jobs N run with cores // N threads each (jobs.command); time them so.
        threads = (f"trainer.threads={threads_per_job(min(jobs, len(resolved) * seeds))}",) if jobs > 1 else ()
        # A step budget for the calibration's configs to validate; it does not change a step's cost.
        timed = [(a.name, a.variant, threads + full + ("trainer.max_steps=1000000",)) for a, full in resolved]
        calibration = calibrate(host, timed, log=get_logger(phase="ablate"))
        steps = equal_time_steps(equal_time, calibration["step_seconds"])
        calibration = {"seconds_per_run": equal_time, **calibration, "steps": steps}
        get_logger(phase="ablate").info("ablation.equal_time", seconds=equal_time, steps=steps,
                                        step_seconds={a: round(s, 4) for a, s in calibration["step_seconds"].items()},
                                        load_average=calibration["load_average_before"])
    else:
        steps = None
    if steps is not None:
        resolved = [(a, full + (f"trainer.max_steps={steps[a.name]}",)) for a, full in resolved]
    plan = [Job(arm_spec.name, arm_spec.variant, seed, full, out / arm_spec.name / f"seed-{seed}")
            for arm_spec, full in resolved for seed in range(seeds)]
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
        m: dict[str, float | None] = {k: finite(v) for k, v in result.metrics.items()}
        models = result.details.get("models") or [{}]
        history = models[0].get("history") or []
        m["final_loss"] = finite(history[-1]["loss"]) if history else None
        m["effective_depth"] = _effective_depth(host, job.run_dir)
        rows.setdefault(job.arm, []).append(m)
        configs.setdefault(job.arm, []).append(json.loads((job.run_dir / "config.json").read_text())["config"])
    summary = {arm: {k: mean_std([r.get(k) for r in runs]) for k in REPORTED} for arm, runs in rows.items()}
    said = verdict(summary)
    names = [a.name for a, _ in resolved]
    data = {"arms": names, "arm_specs": {a.name: {"variant": a.variant, "overrides": list(a.overrides)}
                                         for a, _ in resolved},
            "same_as": same_as, "task": task_section, "seeds": seeds, "minutes": minutes, "max_steps": max_steps,
            "arm_steps": steps, "equal_time": calibration, "shared_trainer": shared,
            "overrides": overrides, "jobs": jobs, "settings": settings(configs), "summary": summary, "runs": rows,
            "verdict": said, "out": str(out)}
    atomic_write_json(out / "ablation.json", data)
    atomic_write_bytes(out / "ablation.md", markdown(data).encode())
    plot(out / "ablation.png", out, names, seeds)
    return data


def _check_arm_steps(arm_steps: dict[str, int], names: list[str], same_as: dict[str, list[str]]) -> dict[str, int]:
    """``--arm-steps`` by the arms' run names (an arm folded into another may be named either way),
    every arm given, each at least one step."""
    alias = {other: first for first, others in same_as.items() for other in others}
    steps: dict[str, int] = {}
    for name, n in arm_steps.items():
        arm = alias.get(name, name)
        if arm not in names:
            raise ConfigError(f"--arm-steps {name}={n}: no arm {name!r} in this ablation; its arms: {', '.join(names)}")
        if n < 1:
            raise ConfigError(f"--arm-steps {name}={n}: give 1 or more optimizer steps")
        steps[arm] = n
    missing = [name for name in names if name not in steps]
    if missing:
        raise ConfigError(f"--arm-steps: no steps for arm{'s' if len(missing) > 1 else ''} {', '.join(missing)};"
                          " give every arm's, e.g. " + ",".join(f"{name}=200" for name in names))
    return {name: steps[name] for name in names}


def _effective_depth(host: PluginHost, run_dir: Path) -> float | None:
    """From the run's resolved config, through the architecture's own config model; None if it has none."""
    model = dict(json.loads((run_dir / "config.json").read_text())["config"]["model"])
    reg = host.get(ArchitectureSpec, model.pop("architecture"))
    cfg = reg.config(**model) if reg.config is not None else None
    depth = getattr(cfg, "effective_depth", None)
    return float(depth()) if callable(depth) else None
