"""Task ``official``: a dataset folder in the official TRM code's layout, read as it is.

``--task official --set task.path=DIR`` trains on ``DIR/train`` and evaluates on ``DIR/test``
(:mod:`official_folder` describes and checks the layout). Nothing is re-encoded: token ids,
``pad_id`` and puzzle identifiers are the folder's own, so a model trained here and one trained
by the official code see the same numbers. As the official loader does, a label equal to the
folder's ``ignore_label_id`` becomes "not scored" (the task's ``ignore_index``, -100).

Every set of a split (``metadata.sets``) is concatenated in that order. Each example carries the
puzzle identifier of its puzzle (``puzzle_ids`` in the batch), for a model with a puzzle table;
the spec's ``num_puzzle_ids`` is the train split's ``num_puzzle_identifiers``, so the table has a
row per identifier. ``total_groups`` and ``mean_puzzle_examples`` of the train split travel in
the spec's and the task's ``info``: the official code's step budget is
``epochs * total_groups * mean_puzzle_examples / global_batch_size``.

The folder holds its augmentations precomputed (the official builders write them), so batches
are not augmented on the fly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
from pydantic import Field

from agent_forge import hookimpl
from agent_forge.config import StrictModel
from agent_forge.contracts import TaskSpec
from agent_forge.data import Split, TaskData
from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets.official_folder import OfficialSplit, read_split
from agent_forge.specs import DatasetSpec

#: Where a target is not scored (TaskSpec's default, and the official code's IGNORE_LABEL_ID).
IGNORE_INDEX = -100

SplitName = Literal["train", "test"]


class OfficialConfig(StrictModel):
    name: str = "official"
    path: Path = Field(..., description="The dataset folder (train/ and test/, each a dataset.json and"
                       " <set>__*.npy arrays), as the official builders or `forge data build` write it.")
    train_split: SplitName = Field("train", description="The split to train on.")
    eval_split: SplitName = Field("test", description="The split to evaluate on.")


#: Integer dtypes torch handles fully (it has no complete uint16/uint32/uint64 support).
_TORCH_INTS = (np.uint8, np.int8, np.int16, np.int32, np.int64)


def _signed_for(top: int) -> type:
    """The narrowest signed dtype holding ``IGNORE_INDEX..top``."""
    return np.int16 if top <= np.iinfo(np.int16).max else np.int32 if top <= np.iinfo(np.int32).max else np.int64


def to_split(split: OfficialSplit) -> Split:
    """The examples of every set, concatenated in ``metadata.sets`` order, as a :class:`Split`:
    inputs as stored (uint8 stays uint8), labels with ``ignore_label_id`` turned into -100 (in a
    signed copy), and per example the puzzle identifier of its puzzle as ``puzzle_ids``."""
    meta = split.metadata
    sets = [split.sets[name] for name in meta.sets]
    inputs = np.concatenate([s.inputs for s in sets])
    if inputs.dtype not in _TORCH_INTS:
        inputs = inputs.astype(_signed_for(meta.vocab_size))
    labels = np.concatenate([s.labels for s in sets])
    targets = labels.astype(_signed_for(meta.vocab_size))
    if meta.ignore_label_id is not None:
        targets[labels == meta.ignore_label_id] = IGNORE_INDEX
    puzzle_ids = np.concatenate([s.example_puzzle_identifiers() for s in sets]).astype(np.int64)
    return Split(torch.from_numpy(inputs), torch.from_numpy(targets),
                 extras={"puzzle_ids": torch.from_numpy(puzzle_ids)})


def _check_same(train: OfficialSplit, other: OfficialSplit) -> None:
    """Two splits one model reads must agree on the vocabulary and the sequence length, and the
    second's puzzle identifiers must have rows in the first's table."""
    for field in ("vocab_size", "seq_len"):
        a, b = getattr(train.metadata, field), getattr(other.metadata, field)
        if a != b:
            raise ConfigError(f"{other.folder / 'dataset.json'}: {field}={b}, but {train.folder / 'dataset.json'}"
                              f" says {field}={a}; one model reads both splits, so they must agree")
    table = train.metadata.num_puzzle_identifiers
    top = max((int(s.puzzle_identifiers.max()) for s in other.sets.values() if len(s.puzzle_identifiers)),
              default=0)
    if top >= table:
        raise ConfigError(f"{other.folder}: puzzle identifier {top} has no row in the model's puzzle table of"
                          f" {table} (num_puzzle_identifiers in {train.folder / 'dataset.json'})")


def task_spec(cfg: OfficialConfig, train: OfficialSplit) -> TaskSpec:
    meta = train.metadata
    info: dict[str, Any] = {
        "num_puzzle_ids": meta.num_puzzle_identifiers, "total_groups": meta.total_groups,
        "mean_puzzle_examples": meta.mean_puzzle_examples, "pad_id": meta.pad_id,
        "blank_identifier_id": meta.blank_identifier_id, "official_ignore_label_id": meta.ignore_label_id,
        "sets": list(meta.sets)}
    side = math.isqrt(meta.seq_len)
    if side * side == meta.seq_len:
        info["size"] = side  # `forge show` draws the tokens in rows of this many
    return TaskSpec(name=cfg.name, kind="puzzle", vocab_size=meta.vocab_size, seq_len=meta.seq_len, causal=False,
                    ignore_index=IGNORE_INDEX, info=info)


def build_official(cfg: OfficialConfig, seed: int) -> TaskData:
    """Read ``cfg.path``'s train and eval splits (one read when they are the same split)."""
    read: dict[str, OfficialSplit] = {}
    for name in (cfg.train_split, cfg.eval_split):
        if name not in read:
            read[name] = read_split(cfg.path, name)
    train, evaluation = read[cfg.train_split], read[cfg.eval_split]
    if evaluation is not train:
        _check_same(train, evaluation)
    if not len(train):
        raise ConfigError(f"{train.folder}: the {cfg.train_split!r} split has no examples")
    train_split = to_split(train)
    eval_split = train_split if evaluation is train else to_split(evaluation)
    spec = task_spec(cfg, train)
    info = {key: spec.info[key] for key in ("total_groups", "mean_puzzle_examples", "num_puzzle_ids")}
    info.update(train_source=str(train.folder), eval_source=str(evaluation.folder),
                eval_total_groups=evaluation.metadata.total_groups)
    return TaskData(spec=spec, train=train_split, eval=eval_split, info=info)


@hookimpl
def forge_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    register(DatasetSpec("official", build_official, config=OfficialConfig,
                         description="a dataset folder in the official TRM layout (task.path=DIR), token ids as they"
                                     " are"))
