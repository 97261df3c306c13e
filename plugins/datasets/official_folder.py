"""The official TRM code's dataset folder layout, read and written.

The official builders (``dataset/build_*_dataset.py`` in SamsungSAILMontreal/TinyRecursiveModels)
write, per split (``train/``, ``test/``)::

    SPLIT/dataset.json                 metadata (:class:`OfficialMetadata`)
    SPLIT/<set>__inputs.npy            (examples, seq_len) token ids
    SPLIT/<set>__labels.npy            (examples, seq_len) target ids (``ignore_label_id`` = not scored)
    SPLIT/<set>__puzzle_identifiers.npy (puzzles,) the puzzle-embedding row of each puzzle
    SPLIT/<set>__puzzle_indices.npy    (puzzles + 1,) puzzle p owns examples [i[p], i[p+1])
    SPLIT/<set>__group_indices.npy     (groups + 1,) group g owns puzzles [g[i], g[i+1])

one ``<set>`` per name in ``metadata.sets`` (``all`` for Sudoku and Maze). A *group* is one
original puzzle with its augmented versions; a *puzzle* one (augmented) puzzle with its examples.

Arrays are read with ``allow_pickle=False``: a ``.npy`` holding Python objects is refused, never
unpickled. Every check names the file and what is wrong.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from agent_forge.errors import ConfigError
from agent_forge.files import atomic_write_bytes, atomic_write_stream

#: The arrays of one set, in the order the official builders write them.
ARRAY_FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
SPLITS = ("train", "test")


class OfficialMetadata(BaseModel):
    """``dataset.json`` as the official ``PuzzleDatasetMetadata`` defines it (same fields, same
    meaning). Unknown keys are refused so a misspelt field is an error, not a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pad_id: int
    ignore_label_id: int | None
    blank_identifier_id: int
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int
    total_groups: int
    mean_puzzle_examples: float
    total_puzzles: int
    sets: list[str]


@dataclass
class OfficialSet:
    """One ``<set>``'s five arrays (numpy, as stored)."""

    inputs: np.ndarray
    labels: np.ndarray
    puzzle_identifiers: np.ndarray
    puzzle_indices: np.ndarray
    group_indices: np.ndarray

    def example_puzzle_identifiers(self) -> np.ndarray:
        """(examples,) the puzzle identifier of every example (its puzzle's, spread over the
        puzzle's examples), as the official loader hands them to the model."""
        counts = np.diff(self.puzzle_indices.astype(np.int64))
        return np.repeat(self.puzzle_identifiers.astype(np.int64), counts)


@dataclass
class OfficialSplit:
    """A split folder: its metadata and its sets, by name, in ``metadata.sets`` order."""

    folder: Path
    metadata: OfficialMetadata
    sets: dict[str, OfficialSet]

    def __len__(self) -> int:
        return sum(len(s.inputs) for s in self.sets.values())


def is_official_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder with ``train/dataset.json`` or ``test/dataset.json`` (or is
    itself a split folder holding ``dataset.json``)."""
    p = Path(path)
    return p.is_dir() and ((p / "dataset.json").is_file()
                           or any((p / s / "dataset.json").is_file() for s in SPLITS))


def split_folder(path: str | Path, split: str) -> Path:
    """The folder of ``split`` under a dataset folder (or ``path`` itself when it is one split)."""
    p = Path(path)
    if (p / split / "dataset.json").is_file():
        return p / split
    if (p / "dataset.json").is_file():
        if split == p.name:
            return p
        raise ConfigError(f"{p}: is the {p.name!r} split folder itself, not the {split!r} split; pass the dataset"
                          f" folder that holds both ({p.parent}) or the {split!r} split folder")
    present = [s for s in SPLITS if (p / s / "dataset.json").is_file()]
    if not p.exists():
        raise ConfigError(f"{p}: no such folder")
    if not p.is_dir():
        raise ConfigError(f"{p}: is a file; an official dataset is a folder with train/ and test/ (dataset.json"
                          " and <set>__*.npy in each)")
    raise ConfigError(f"{p / split / 'dataset.json'}: not found; this dataset folder has "
                      + (f"the split(s) {', '.join(present)}" if present else "no split (train/ or test/ with a"
                         " dataset.json)") + "; choose one of those or build the folder with the official layout")


def _metadata_problem(exc: ValidationError) -> str:
    """The first problem of a ``dataset.json`` as one phrase that names the field (and the fix)."""
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(top level)"
    known = ", ".join(OfficialMetadata.model_fields)
    if first["type"] == "missing":
        return f"missing field {field!r}; the official metadata has the fields {known}"
    if first["type"] == "extra_forbidden":
        return f"unknown field {field!r}; the official metadata has the fields {known}"
    value = repr(first.get("input"))
    return f"field {field!r}: {first['msg']} (got {value if len(value) <= 60 else value[:57] + '...'})"


def read_metadata(folder: Path) -> OfficialMetadata:
    """``folder/dataset.json``, checked: readable JSON, the official fields (no more, no fewer), sizes >= 1."""
    path = folder / "dataset.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; an official dataset split folder holds dataset.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object with the official metadata fields, got {type(raw).__name__}")
    try:
        meta = OfficialMetadata.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_metadata_problem(exc)}") from None
    problems = [f"{name}={getattr(meta, name)} must be >= {low}" for name, low in
                (("vocab_size", 1), ("seq_len", 1), ("num_puzzle_identifiers", 1))
                if getattr(meta, name) < low]
    if not meta.sets:
        problems.append("sets is empty")
    if problems:
        raise ConfigError(f"{path}: {'; '.join(problems)}")
    return meta


def _load_array(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; every set of an official split folder has the arrays "
                          + ", ".join(f"<set>__{f}.npy" for f in ARRAY_FIELDS)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: not readable ({exc})") from None
    # Without the .npy header np.load would take the file for a pickle (and suggest unpickling it).
    if magic != b"\x93NUMPY":
        raise ConfigError(f"{path}: not a .npy file (no NumPy header); write the array with numpy.save")
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode=None)
    except ValueError as exc:  # an object array needs pickle: refused
        raise ConfigError(f"{path}: holds Python objects or is damaged ({exc}); arrays are never unpickled, save"
                          " an integer array") from None
    except OSError as exc:
        raise ConfigError(f"{path}: not readable as .npy ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iu":
        raise ConfigError(f"{path}: expected an integer array, got dtype {getattr(arr, 'dtype', type(arr))}")
    return arr


def _check_set(folder: Path, name: str, meta: OfficialMetadata, s: OfficialSet) -> None:
    def where(field: str) -> Path:
        return folder / f"{name}__{field}.npy"

    n = len(s.inputs)
    if s.inputs.ndim != 2 or s.inputs.shape[1] != meta.seq_len:
        raise ConfigError(f"{where('inputs')}: shape {s.inputs.shape}; expected (examples, seq_len={meta.seq_len})"
                          " as dataset.json says")
    if s.labels.shape != s.inputs.shape:
        raise ConfigError(f"{where('labels')}: shape {s.labels.shape}; the inputs are {s.inputs.shape}")
    for field in ("puzzle_identifiers", "puzzle_indices", "group_indices"):
        if getattr(s, field).ndim != 1:
            raise ConfigError(f"{where(field)}: shape {getattr(s, field).shape}; expected one dimension")
    pi, gi = s.puzzle_indices, s.group_indices
    if len(pi) != len(s.puzzle_identifiers) + 1:
        raise ConfigError(f"{where('puzzle_indices')}: {len(pi)} entries; expected one more than the"
                          f" {len(s.puzzle_identifiers)} puzzle identifiers")
    if len(pi) == 0 or pi[0] != 0 or pi[-1] != n or np.any(np.diff(pi) < 0):
        raise ConfigError(f"{where('puzzle_indices')}: must rise from 0 to the {n} examples of"
                          f" {where('inputs').name}")
    if len(gi) == 0 or gi[0] != 0 or gi[-1] != len(s.puzzle_identifiers) or np.any(np.diff(gi) < 0):
        raise ConfigError(f"{where('group_indices')}: must rise from 0 to the {len(s.puzzle_identifiers)} puzzles")
    if len(s.puzzle_identifiers) and (s.puzzle_identifiers.min() < 0
                                      or s.puzzle_identifiers.max() >= meta.num_puzzle_identifiers):
        raise ConfigError(f"{where('puzzle_identifiers')}: values {int(s.puzzle_identifiers.min())}.."
                          f"{int(s.puzzle_identifiers.max())} outside 0..{meta.num_puzzle_identifiers - 1}"
                          " (num_puzzle_identifiers in dataset.json)")
    if n and (s.inputs.min() < 0 or s.inputs.max() >= meta.vocab_size):
        raise ConfigError(f"{where('inputs')}: token ids {int(s.inputs.min())}..{int(s.inputs.max())} outside"
                          f" 0..{meta.vocab_size - 1} (vocab_size in dataset.json)")
    scored = s.labels if meta.ignore_label_id is None else s.labels[s.labels != meta.ignore_label_id]
    if scored.size and (scored.min() < 0 or scored.max() >= meta.vocab_size):
        raise ConfigError(f"{where('labels')}: label ids {int(scored.min())}..{int(scored.max())} outside"
                          f" 0..{meta.vocab_size - 1} (vocab_size in dataset.json)")


def read_split(path: str | Path, split: str = "test") -> OfficialSplit:
    """Read and check one split of an official dataset folder (``path`` is the dataset folder
    holding ``train/`` and ``test/``, or one split folder itself)."""
    folder = split_folder(path, split)
    meta = read_metadata(folder)
    sets: dict[str, OfficialSet] = {}
    for name in meta.sets:
        arrays = {field: _load_array(folder / f"{name}__{field}.npy") for field in ARRAY_FIELDS}
        s = OfficialSet(**arrays)
        _check_set(folder, name, meta, s)
        sets[name] = s
    return OfficialSplit(folder, meta, sets)


def write_split(path: str | Path, split: str, metadata: OfficialMetadata, sets: dict[str, OfficialSet]) -> Path:
    """Write ``sets`` and ``metadata`` as ``path/split`` in the official layout; return that folder.

    The arrays are written with the dtypes given (the official builders use int32 for the index
    arrays and the input dtype for inputs/labels). Each file goes to a temporary name first, so
    an interrupted write leaves no half file under a real name.
    """
    folder = Path(path) / split
    folder.mkdir(parents=True, exist_ok=True)
    if list(metadata.sets) != list(sets):
        raise ValueError(f"metadata.sets {metadata.sets} != the sets given {list(sets)}")
    for name, s in sets.items():
        _check_set(folder, name, metadata, s)
        for field in ARRAY_FIELDS:
            save_array(folder / f"{name}__{field}.npy", getattr(s, field))
    # json.dumps of model_dump(): the bytes the official builders write (same keys, order, spacing).
    atomic_write_bytes(folder / "dataset.json", json.dumps(metadata.model_dump()).encode())
    return folder


def save_array(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` (no pickle) streamed to a temporary file beside ``path``, flushed to disk, then
    renamed (:func:`agent_forge.files.atomic_write_stream`): ``path`` never holds half an array."""
    atomic_write_stream(path, lambda f: np.save(f, array, allow_pickle=False))


# -- writing a dataset folder into place (the builders: official_build.py, arc_build.py) -----
def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that is a file, or a non-empty folder (without ``overwrite``; with it,
    only a dataset folder is replaced, never a folder of other files)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"OUT {out}: is a file; name a folder to write the dataset into")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"OUT {out}: {parent} is a file, not a folder")
            break
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"OUT {out}: is not empty; pass --overwrite to replace the dataset there, or name a"
                              " new folder")
        if not is_official_folder(out):
            raise ConfigError(f"OUT {out}: holds files but no dataset (no train/ or test/ with a dataset.json);"
                              " --overwrite replaces only a dataset folder. Name a new folder")


def replace_folder(new: Path, out: Path) -> None:
    """Move the finished folder ``new`` to ``out``; an existing ``out`` goes only once ``new`` is in place."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.{os.getpid()}.old")
        os.replace(out, old)
    os.replace(new, out)
    if old is not None:
        shutil.rmtree(old)
