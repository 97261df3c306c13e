"""Run folders read back: what ``forge runs`` lists and ``forge runs compare`` compares.

A run folder is what :class:`agent_forge.runner.PhaseRunner` leaves: ``config.json`` (written
first), ``result.json`` (written last), and whatever the phase writes, read here when present:
``metrics.jsonl`` (``kind: "train"`` and ``"eval"`` rows; in ``model-K/`` with ``--models N``),
``checkpoints/`` (``latest.json``, ``step-N/``). Nothing here is Cognate-specific: a phase that
writes no metrics is listed with ``-`` for what it lacks.

Pure functions, no CLI: :func:`read_run` turns a folder into a :class:`RunInfo` and never raises
for a malformed file (the run's ``status`` becomes ``"unreadable: <reason>"``);
:func:`list_runs` finds the runs under a folder; :func:`config_diff`, :func:`metric_rows` and
:func:`plot_curves` are the three parts of a comparison; :func:`format_value` rounds a number as
a person reads it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agent_forge.config import flatten
from agent_forge.errors import ForgeError
from agent_forge.phases.common.checkpoints import has_checkpoint
from agent_forge.formatting import format_duration

#: Files whose presence makes a folder a run (the runner writes config.json before anything else).
RUN_MARKERS = ("config.json", "result.json")
#: ``runs/<stamp>-...``: the UTC start time :func:`agent_forge.runner.new_run_id` puts in a run id.
_STAMP = re.compile(r"^(\d{8}-\d{6})-")
#: Shown instead of a value a run does not have.
MISSING = "-"


@dataclass
class RunInfo:
    """One run folder, read. ``None`` means the run does not say (shown as ``-``).

    ``status``: ``completed``/``stopped``/``failed`` (from result.json), ``unfinished-resumable``
    (no result.json, a checkpoint exists), ``unfinished``, or ``unreadable: <reason>``.
    ``exact_accuracy``: of the weights the run handed off (the mean over models with ``--models N``),
    only for finished runs. ``metrics``: result.json's metrics, or for an unfinished run its last
    eval row. ``histories``: the ``kind: "train"`` rows of metrics.jsonl per model (label ``""``
    for a single-model run, ``model-K`` otherwise). ``started_from`` says where ``started`` came
    from: ``run id``, ``config.json`` (its mtime) or ``folder`` (its mtime).
    """

    id: str
    path: Path
    status: str
    phase: str | None = None
    variant: str | None = None
    task: str | None = None
    exact_accuracy: float | None = None
    steps: int | None = None
    train_seconds: float | None = None
    started: datetime | None = None
    started_from: str = "folder"
    config: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def readable(self) -> bool:
        return not self.status.startswith("unreadable")

    def as_json(self) -> dict[str, Any]:
        """The row ``forge runs --json`` prints (raw numbers, ISO time in UTC)."""
        return {"id": self.id, "path": str(self.path), "phase": self.phase, "variant": self.variant,
                "task": self.task, "status": self.status, "exact_accuracy": self.exact_accuracy,
                "steps": self.steps, "train_seconds": self.train_seconds,
                "started": self.started.isoformat() if self.started else None, "started_from": self.started_from}


class _Unreadable(Exception):
    """A run file that exists but cannot be read; the message is the listed reason."""


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in RUN_MARKERS)


def find_run_dirs(root: Path) -> list[Path]:
    """The runs in ``root``: ``root`` itself if it is one, else its run sub-folders, and the runs
    one level further down in folders that are not runs (a pipeline's ``<id>/cognate/``).
    Anything else (files, hidden folders, folders without config.json or result.json) is skipped."""
    root = Path(root)
    if not root.is_dir():
        raise ForgeError(f"{root}: no such folder; pass the folder that holds the runs (default runs/)")
    if is_run_dir(root):
        return [root]
    found: list[Path] = []
    for child in sorted(root.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        if is_run_dir(child):
            found.append(child)
        else:
            found += [g for g in sorted(child.iterdir()) if not g.name.startswith(".") and is_run_dir(g)]
    return found


def list_runs(root: Path) -> list[RunInfo]:
    """Every run under ``root`` (see :func:`find_run_dirs`), oldest start first."""
    root = Path(root)
    runs = []
    for path in find_run_dirs(root):
        run_id = path.name if path == root or path.parent == root else f"{path.parent.name}/{path.name}"
        runs.append(read_run(path, run_id=run_id))
    return sorted(runs, key=lambda r: (r.started or datetime.min.replace(tzinfo=timezone.utc), r.id))


# -- reading one run -------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Unreadable(f"{path.name}: {exc}") from None


def _read_jsonl(path: Path, *, tolerate_partial_last: bool) -> list[dict[str, Any]]:
    """Rows of a metrics.jsonl. A run still writing may leave a half line at the end; that one is
    dropped when ``tolerate_partial_last`` (no result.json yet), any other bad line is an error."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unreadable(f"{path.name}: {exc}") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if tolerate_partial_last and number == len(lines):
                break
            raise _Unreadable(f"{path.parent.name + '/' if path.parent.name.startswith('model-') else ''}"
                              f"{path.name} line {number}: {exc}") from None
        rows.append(row)
    return rows


def _model_dirs(path: Path) -> list[tuple[str, Path]]:
    """(label, folder) of each model's files: the run itself, or ``model-K/`` with ``--models N``."""
    subs = sorted((p for p in path.glob("model-*") if p.is_dir() and p.name[6:].isdigit()),
                  key=lambda p: int(p.name[6:]))
    return [(p.name, p) for p in subs] if subs and not (path / "metrics.jsonl").exists() else [("", path)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _started(path: Path, run_id: str) -> tuple[datetime, str]:
    for name in (path.name, path.parent.name):  # a pipeline's phase folder carries no stamp of its own
        m = _STAMP.match(name)
        if m:
            try:
                return datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc), "run id"
            except ValueError:
                pass
    for source, p in (("config.json", path / "config.json"), ("folder", path)):
        try:
            return datetime.fromtimestamp(p.stat().st_mtime, tz=timezone.utc), source
        except OSError:
            continue
    return datetime.fromtimestamp(0, tz=timezone.utc), "folder"


def read_run(path: Path, run_id: str | None = None) -> RunInfo:
    """Read one run folder. Never raises for a malformed file: the status says what is wrong."""
    path = Path(path)
    started, started_from = _started(path, run_id or path.name)
    info = RunInfo(id=run_id or path.name, path=path, status="unfinished", started=started,
                   started_from=started_from)
    try:
        _fill(info)
    except _Unreadable as exc:
        info.status = f"unreadable: {exc}"
    return info


def _fill(info: RunInfo) -> None:
    path = info.path
    if (path / "config.json").is_file():
        data = _read_json(path / "config.json")
        if not isinstance(data, dict):
            raise _Unreadable("config.json: not a JSON object")
        info.phase = data.get("phase") if isinstance(data.get("phase"), str) else None
        info.variant = data.get("variant") if isinstance(data.get("variant"), str) else None
        config = data.get("config")
        info.config = config if isinstance(config, dict) else {}
        task = info.config.get("task")
        info.task = task.get("name") if isinstance(task, dict) else task if isinstance(task, str) else None
    result = None
    if (path / "result.json").is_file():
        result = _read_json(path / "result.json")
        if not isinstance(result, dict) or not isinstance(result.get("status"), str):
            raise _Unreadable("result.json: no status")
    for label, folder in _model_dirs(path):
        if (folder / "metrics.jsonl").is_file():
            rows = _read_jsonl(folder / "metrics.jsonl", tolerate_partial_last=result is None)
            info.histories[label] = rows
    train = {label: [r for r in rows if r.get("kind", "train") == "train"] for label, rows in info.histories.items()}
    if result is not None:
        info.status = result["status"]
        info.phase = info.phase or result.get("phase")
        metrics = result.get("metrics") if isinstance(result.get("metrics"), dict) else {}
        info.metrics = {k: v for k, v in metrics.items() if _number(v) is not None}
        models = (result.get("details") or {}).get("models") if isinstance(result.get("details"), dict) else None
        per_model = [_number((m.get("metrics") or {}).get("exact_accuracy")) for m in models or ()
                     if isinstance(m, dict) and isinstance(m.get("metrics"), dict)]
        per_model = [a for a in per_model if a is not None]
        # The mean over the models, as result.json's metrics: the best of N on the eval split would be
        # a figure chosen on the split it is reported on.
        info.exact_accuracy = sum(per_model) / len(per_model) if per_model else _number(info.metrics.get("exact_accuracy"))
        steps = _number(info.metrics.get("steps"))
        info.steps = int(steps) if steps is not None else None
        info.train_seconds = _number(info.metrics.get("train_seconds"))
    else:
        resumable = any(has_checkpoint(folder / "checkpoints") for _, folder in _model_dirs(path))
        info.status = "unfinished-resumable" if resumable else "unfinished"
        evals = [r for rows in info.histories.values() for r in rows if r.get("kind") == "eval"]
        if evals:
            info.metrics = {k: v for k, v in evals[-1].items()
                            if k not in ("kind", "step", "elapsed_s") and _number(v) is not None}
    if info.steps is None or info.train_seconds is None:
        last = [rows[-1] for rows in train.values() if rows]
        if last and info.steps is None:
            info.steps = max(int(_number(r.get("step")) or 0) for r in last)
        if last and info.train_seconds is None:
            info.train_seconds = sum(_number(r.get("elapsed_s")) or 0.0 for r in last)


def open_runs(paths: list[Path]) -> list[RunInfo]:
    """The runs named on a command line; a folder that is not a run is an error naming it."""
    paths = [Path(p) for p in paths]
    for p in paths:
        if not is_run_dir(p):
            raise ForgeError(f"{p}: not a run folder (it has no config.json or result.json);"
                             " pass folders listed by `forge runs`")
    names = [p.name for p in paths]
    # Two pipelines' ``cognate`` folders share a name: then the parent tells them apart.
    ids = [n if names.count(n) == 1 else f"{p.parent.name}/{n}" for p, n in zip(paths, names)]
    return [read_run(p, run_id=i) for p, i in zip(paths, ids)]


# -- comparing -------------------------------------------------------------------------------
_ABSENT = object()


def config_diff(runs: list[RunInfo]) -> list[tuple[str, list[Any]]]:
    """(dotted key, value per run) for every key whose values differ; ``phase`` and ``variant``
    count as keys too. A key one run lacks shows :data:`MISSING` for it. Keys in sorted order."""
    flats = [{"phase": r.phase, "variant": r.variant, **flatten(r.config or {})} for r in runs]
    keys = sorted(set().union(*flats))
    out = []
    for key in keys:
        values = [f.get(key, _ABSENT) for f in flats]
        if any(v != values[0] for v in values[1:]):
            out.append((key, [MISSING if v is _ABSENT else v for v in values]))
    return out


#: Metrics shown first in a comparison, in this order; the rest follow as the runs list them.
LEADING_METRICS = ("exact_accuracy", "token_accuracy", "raw/exact_accuracy", "ema/exact_accuracy",
                   "final_loss", "steps", "train_seconds", "parameters")


def final_loss(run: RunInfo) -> float | None:
    """The last logged training loss (the mean over models with ``--models N``)."""
    losses = [_number(rows[-1].get("loss")) for rows in _train_rows(run).values() if rows]
    losses = [v for v in losses if v is not None]
    return sum(losses) / len(losses) if losses else None


def metric_rows(runs: list[RunInfo]) -> list[tuple[str, list[Any]]]:
    """(metric, value per run) side by side: ``status``, then :data:`LEADING_METRICS`, then every
    other metric any run has. A run without a metric shows :data:`MISSING`."""
    table = []
    for r in runs:
        m = dict(r.metrics)
        loss = final_loss(r)
        if loss is not None:
            m["final_loss"] = loss
        if r.steps is not None:
            m.setdefault("steps", r.steps)
        if r.train_seconds is not None:
            m.setdefault("train_seconds", r.train_seconds)
        table.append(m)
    keys = [k for k in LEADING_METRICS if any(k in m for m in table)]
    keys += [k for m in table for k in m if k not in keys]
    keys = list(dict.fromkeys(keys))
    return [("status", [r.status for r in runs])] + [(k, [m.get(k, MISSING) for m in table]) for k in keys]


def _train_rows(run: RunInfo) -> dict[str, list[dict[str, Any]]]:
    return {label: [r for r in rows if r.get("kind", "train") == "train"] for label, rows in run.histories.items()}


def plot_curves(path: Path, runs: list[RunInfo]) -> Path:
    """One PNG: training loss and training accuracy against step, one colour per run (and per
    model with ``--models N``). Accuracy: exact at halt, solid (``train_exact_at_halt``, else
    ``train_exact_accuracy``), token, dashed (``train_token_accuracy``). Written atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agent_forge.files import atomic_write_bytes

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = 0
    for run in runs:
        for label, rows in _train_rows(run).items():
            rows = [r for r in rows if _number(r.get("step")) is not None]
            if not rows:
                continue
            colour = colours[drawn % len(colours)]
            drawn += 1
            name = f"{run.id}/{label}" if label else run.id
            steps = [r["step"] for r in rows]
            loss = [_number(r.get("loss")) for r in rows]
            ax_loss.plot(steps, [v if v is not None else math.nan for v in loss], color=colour, label=name)
            exact_key = "train_exact_at_halt" if any("train_exact_at_halt" in r for r in rows) else "train_exact_accuracy"
            for key, style in ((exact_key, "-"), ("train_token_accuracy", "--")):
                values = [_number(r.get(key)) for r in rows]
                if any(v is not None for v in values):
                    ax_acc.plot(steps, [v if v is not None else math.nan for v in values], style, color=colour)
    ax_loss.set_title("training loss")
    ax_acc.set_title("train accuracy (solid: exact at halt, dashed: token)")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if drawn:
        ax_loss.set_yscale("log")
        ax_loss.legend(fontsize=7)
    else:
        ax_loss.text(0.5, 0.5, "no training rows in metrics.jsonl", ha="center", transform=ax_loss.transAxes)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


# -- numbers as a person reads them ----------------------------------------------------------
def _is_duration(key: str) -> bool:
    return key.endswith(("seconds", "_s")) and not key.endswith("per_s")


def format_value(key: str, value: Any) -> str:
    """A value for a table: accuracies and rates with three decimals (``0.912``), counts with
    thousands separators (``1,617``), durations in s/min/h, other numbers to three significant
    digits, ``None``/absent as ``-``, lists and dicts as compact JSON."""
    if value is None or value is MISSING:
        return MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return str(value)
        if _is_duration(key):
            return format_duration(float(value))
        if "accuracy" in key or key.endswith(("_rate", "rate")):
            return f"{value:.3f}"
        if float(value).is_integer() and abs(value) >= 1:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "))
