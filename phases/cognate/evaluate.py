"""``forge eval``: a verified hand-off artifact evaluated on a user's data file, or on a split
of a dataset folder in the official TRM layout (read by the ``official`` dataset plugin)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from agent_forge.config import validate
from agent_forge.contracts import ModelArtifact
from agent_forge.data import TaskData
from agent_forge.errors import ConfigError
from agent_forge.files import atomic_write_bytes
from agent_forge.phases.common.evaluation import EvalContext, run_evaluators, step_curve
from agent_forge.phases.common.loading import load_model
from agent_forge.specs import DatasetSpec

FILE_EVALUATORS = ("exact", "token", "halting", "official")
#: The dataset plugin that reads a folder in the official TRM layout.
FOLDER_TASK = "official"
FOLDER_SPLITS = ("test", "train")
#: ``--protocol NAME``: the evaluator that scores a dataset folder by that benchmark's own rules.
PROTOCOLS = {"arc": "arc_protocol"}


def is_dataset_folder(data: Path) -> bool:
    """A folder in the official layout: ``dataset.json`` in it, or in its ``train/`` or ``test/``."""
    data = Path(data)
    return data.is_dir() and any((data / sub / "dataset.json").is_file() for sub in ("", *FOLDER_SPLITS))


def check_data_file(data: Path, flag: str = "--data") -> None:
    """Refuse a data file that is missing, a folder, or not text (a NUL byte or not UTF-8 in its
    first 64 KiB): every task's ``eval_file`` reader reads text."""
    data = Path(data)
    if data.is_dir():
        raise ConfigError(f"{flag} {data}: is a folder with no dataset.json (in it, or in train/ or test/); name a"
                          " data file (a question,answer CSV for puzzles: forge data generate TASK --out FILE writes"
                          " one) or a dataset folder in the official layout (forge data build writes one)")
    if not data.exists():
        raise ConfigError(f"{flag} {data}: no such file")
    with open(data, "rb") as f:
        head = f.read(1 << 16)
    problem = None
    if bytes(1) in head:
        problem = f"a NUL byte at offset {head.index(bytes(1))}"
    else:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 3 or len(head) < (1 << 16):  # not just a character cut at the end
                problem = f"byte {head[exc.start]:#04x} at offset {exc.start} is not UTF-8"
    if problem:
        raise ConfigError(f"{flag} {data}: is not a text file ({problem}); pass a UTF-8 data file in the"
                          " task's layout (a question,answer CSV for puzzles)")


def task_from_file(host: Any, artifact: ModelArtifact, data: Path) -> TaskData:
    """The artifact's task rebuilt on a user's file, read by the dataset's ``eval_file`` reader.

    The task spec records the dataset and its config (``task.info["dataset"]``); the file becomes
    both splits, so nothing is generated and the eval split is exactly the file, in its order.
    """
    dataset = artifact.task.info.get("dataset") or {"name": artifact.task.name, "config": {}}
    reg = host.get(DatasetSpec, dataset["name"])
    if "eval_file" not in reg.config.model_fields:
        folder = " (pass a dataset folder in the official layout instead)" if dataset["name"] == FOLDER_TASK else ""
        raise ConfigError(f"task {dataset['name']!r} cannot read a data file (its config has no eval_file){folder}")
    # Row subsets the training run read (train_rows, eval_rows) do not apply: the split is the file.
    subsets = {k: None for k in ("train_rows", "eval_rows") if k in reg.config.model_fields}
    cfg = validate(reg.config, {**dataset["config"], **subsets, "train_file": str(data), "eval_file": str(data)},
                   "task")
    return reg.build(cfg, int(artifact.task.info.get("data_seed", 0)))


def task_from_folder(host: Any, artifact: ModelArtifact, data: Path, split: str, manifest: Path) -> TaskData:
    """``split`` of the dataset folder ``data`` (official layout) as both splits of a task, read by
    the ``official`` dataset plugin whatever the artifact trained on, and checked to fit the model."""
    reg = host.get(DatasetSpec, FOLDER_TASK)
    cfg = validate(reg.config, {"path": str(data), "train_split": split, "eval_split": split}, "task")
    task = reg.build(cfg, 0)
    check_fits(artifact, task, f"--data {data} (split {split!r})", manifest)
    return task


def check_fits(artifact: ModelArtifact, task: TaskData, data: str, manifest: Path) -> None:
    """Refuse data the model cannot read: another vocabulary or sequence length, or puzzle
    identifiers without a row in the model's puzzle table. Every mismatch in one error."""
    model, found = artifact.task, task.spec
    problems = [f"{field} is {getattr(found, field)} in the data but {getattr(model, field)} in the model"
                for field in ("vocab_size", "seq_len") if getattr(found, field) != getattr(model, field)]
    ids = task.eval.extras.get("puzzle_ids")
    table = model.info.get("num_puzzle_ids")
    if ids is not None and len(ids):
        top = int(ids.max())
        blank = found.info.get("blank_identifier_id", 0)
        if table and top >= table:
            problems.append(f"puzzle identifiers go up to {top} but the model's puzzle table has {table} row(s)"
                            f" (0..{table - 1})")
        elif not table and bool((ids != blank).any()):
            problems.append(f"the data names puzzles (identifiers up to {top}) but the model has no puzzle table")
    if problems:
        raise ConfigError(f"{data} does not fit the model of {manifest}: {'; '.join(problems)}. Evaluate a model"
                          " trained on data of this layout (e.g. forge run phase cognate --task official --set"
                          " task.path=FOLDER)")


def check_predictions_path(path: Path, overwrite: bool) -> None:
    """Refuse a ``--save-predictions`` target before any work: not ``.npy``, a folder, under a
    file, or an existing file without ``overwrite``."""
    path = Path(path)
    if path.suffix != ".npy":
        raise ConfigError(f"--save-predictions {path}: name a .npy file (e.g. {path.with_suffix('.npy')})")
    if path.is_dir():
        raise ConfigError(f"--save-predictions {path}: is a folder; name a .npy file to write")
    if path.exists() and not overwrite:
        raise ConfigError(f"--save-predictions {path}: already exists; pass --overwrite to replace it, or name"
                          " another file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--save-predictions {path}: {parent} is a file, not a folder")
            break


def check_new_file(path: Path, flag: str, overwrite: bool) -> None:
    """Refuse an output file target before any work: a folder, under a file, or an existing file
    without ``overwrite``."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; name the file to write")
    if path.exists() and not overwrite:
        raise ConfigError(f"{flag} {path}: already exists; pass --overwrite to replace it, or name another file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {path}: {parent} is a file, not a folder")
            break


def check_protocol(protocol: str | None, submission: Path | None, folder: bool, data: Path, split: str | None,
                   overwrite: bool) -> None:
    """``--protocol`` names a known protocol and needs a dataset folder's test split (the split
    a benchmark's answers describe); ``--submission`` needs ``--protocol`` and a file it may write."""
    if protocol is not None:
        if protocol not in PROTOCOLS:
            raise ConfigError(f"--protocol {protocol!r}: known protocols are {', '.join(PROTOCOLS)}")
        if not folder:
            raise ConfigError(f"--protocol {protocol}: scores a dataset folder, but --data {data} is a file; pass the"
                              f" folder (forge data build {protocol} SRC OUT writes one)")
        if split != "test":
            raise ConfigError(f"--split {split}: --protocol {protocol} scores the test split (the folder's answers"
                              " describe it); leave --split out")
    if submission is not None:
        if protocol is None:
            raise ConfigError(f"--submission {submission}: is written by a benchmark protocol; add --protocol arc")
        check_new_file(submission, "--submission", overwrite)


def save_predictions(path: Path, predictions: np.ndarray, vocab_size: int) -> Path:
    """Write (examples, seq_len) token ids atomically as ``.npy``: uint8 when the vocabulary fits
    (as the official builders store tokens), else int32."""
    dtype = np.uint8 if vocab_size <= 256 else np.int32
    buf = io.BytesIO()
    np.save(buf, predictions.astype(dtype), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def check_data_and_split(data: Path, split: str | None) -> str | None:
    """Check ``--data`` and ``--split`` before any work; the split to read (``test`` by default
    for a dataset folder, None for a file, where the whole file is read)."""
    if is_dataset_folder(data):
        split = split or "test"
        if split not in FOLDER_SPLITS:
            raise ConfigError(f"--split {split!r}: a dataset folder has the splits {', '.join(FOLDER_SPLITS)}")
        return split
    check_data_file(data)
    if split is not None:
        raise ConfigError(f"--split {split}: chooses a split of a dataset folder, but --data {data} is a file"
                          " (the whole file is evaluated); leave --split out")
    return None


def eval_task(host: Any, artifact: ModelArtifact, data: Path, split: str | None, manifest: Path) -> TaskData:
    """The data to evaluate on: ``split`` of a dataset folder, or the whole file."""
    if split is not None:
        return task_from_folder(host, artifact, data, split, manifest)
    return task_from_file(host, artifact, data)


def evaluate_artifact_on_file(host: Any, manifest: Path, data: Path, *, batch_size: int = 256,
                              n_sup: int | None = None, device: str = "cpu", split: str | None = None,
                              predictions_path: Path | None = None, overwrite: bool = False,
                              protocol: str | None = None, submission_path: Path | None = None,
                              progress: bool = False) -> dict[str, Any]:
    """Load a verified artifact, read ``data`` with its task's ``eval_file`` reader (or, for a
    dataset folder in the official layout, its ``split``, default ``test``), return metrics.

    ``n_sup``: supervision steps to run (default: the model's own); the metrics are those after
    the last step, and ``steps`` holds exact and token accuracy after every step up to it, with
    ``at_halt`` at the Q-head's halting step (:func:`~agent_forge.phases.common.evaluation.step_curve`).
    ``official_accuracy`` and ``official_exact_accuracy`` are the official code's metrics at the
    last step. ``device``: ``cpu``, ``cuda[:i]`` or ``auto``; on CUDA the forward runs in bf16, as
    training does. ``predictions_path``: also write the answers after the last step, one row per
    example in the data's order (:func:`save_predictions`); an existing file only with ``overwrite``.
    ``protocol``: also score a dataset folder by a benchmark's own rules (:data:`PROTOCOLS`; ``arc``:
    votes over augmented versions, pass@k per puzzle under ``protocol``); ``submission_path``: write
    the protocol's submission file there (an existing file only with ``overwrite``). ``progress``:
    a bar over the examples on a terminal, an ``eval.progress`` line every 30 s off one.
    """
    from agent_forge.phases.cognate.training_config import resolve_device, resolve_precision
    from agent_forge.phases.cognate.weights import EvalBar

    where = resolve_device(device, "--device")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size!r}: must be an integer >= 1")
    split = check_data_and_split(data, split)
    if predictions_path is not None:
        check_predictions_path(predictions_path, overwrite)
    check_protocol(protocol, submission_path, split is not None, data, split, overwrite)
    artifact, model = load_model(host, manifest)
    task = eval_task(host, artifact, data, split, manifest)
    model.to(where)
    evaluators = list(FILE_EVALUATORS) + ([PROTOCOLS[protocol]] if protocol else [])
    with EvalBar(progress, len(task.eval), field="data") as bar:
        bar.label(Path(data).name)
        ctx = EvalContext(model, task, where, batch_size=batch_size, n_sup=n_sup,
                          precision=resolve_precision("auto", where) if where.type == "cuda" else "fp32",
                          on_batch=bar.advance)
        metrics: dict[str, Any] = run_evaluators(host, evaluators, ctx)
    curve = step_curve(ctx)
    out: dict[str, Any] = {"artifact": artifact.id, "data": str(data)}
    if split is not None:
        out["split"] = split
    out.update({"examples": len(task.eval), "device": str(where), **metrics, "n_sup": curve["n_sup"],
                "trained_n_sup": int(model.n_sup), "steps": curve["steps"],
                "at_halt": curve["at_halt"]})
    if predictions_path is not None:
        written = save_predictions(predictions_path, ctx.predictions().final.numpy(), artifact.task.vocab_size)
        out["predictions"] = str(written)
    if protocol:
        texts = ctx.texts.get(PROTOCOLS[protocol], {})
        out["protocol"] = {"name": protocol, "per_puzzle": texts.get("per_puzzle", {}),
                           "unanswered": texts.get("unanswered", [])}
        if submission_path is not None:
            atomic_write_bytes(submission_path, json.dumps(texts["submission"]).encode())
            out["submission"] = str(submission_path)
    return out


def steps_table(metrics: dict[str, Any]) -> str:
    """The ``steps`` and ``at_halt`` of :func:`evaluate_artifact_on_file` as a plain-text table."""
    from agent_forge.formatting import format_number

    trained = metrics.get("trained_n_sup")
    rows = [("step", "exact", "token", "")]
    for s in metrics.get("steps") or []:
        note = "trained n_sup" if s["step"] == trained else ""
        rows.append((str(s["step"]), format_number(s["exact_accuracy"], "fraction"),
                     format_number(s["token_accuracy"], "fraction"), note))
    halt = metrics.get("at_halt")
    if halt:
        rows.append(("halt", format_number(halt["exact_accuracy"], "fraction"),
                     format_number(halt["token_accuracy"], "fraction"),
                     f"at the Q-head's halting step (mean {format_number(halt['mean_halt_step'], 'float')})"))
    else:
        rows.append(("halt", "n/a", "n/a", "no halting head: every sample runs all steps"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths)) + (f"  {r[3]}" if r[3] else "")
                     for r in rows)


def protocol_table(metrics: dict[str, Any]) -> str:
    """The ``protocol`` section of :func:`evaluate_artifact_on_file` as a plain-text table: one
    row per puzzle with its test inputs and its pass@1 and pass@2."""
    from agent_forge.formatting import format_number

    section = metrics.get("protocol") or {}
    rows = [("puzzle", "tests", "pass@1", "pass@2")]
    for puzzle, row in section.get("per_puzzle", {}).items():
        scores = [format_number(row[k], "fraction") if k in row else "not scored" for k in ("pass@1", "pass@2")]
        rows.append((puzzle, str(row["tests"]), *scores))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
