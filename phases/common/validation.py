"""A validation split carved from the training rows: where a run may choose, so that the eval
split is only ever reported.

``carve_validation(task, samples, seed)`` takes ``samples`` training rows out of training and
returns them as ``TaskData.validation``. Which rows is decided by a ``torch.Generator`` seeded
with ``seed`` (the run's ``data_seed``) and :data:`SALT`, so every model of a run, every arm of
an ablation and a later phase that rebuilds the task from an artifact (EvoMerge) carve the same
rows. The training split handed to the trainer is the complement: a validation row is never
trained on.

Rows that belong together are carved together: when the training split has
``meta["puzzle"]`` (the original puzzle a row comes from, shared by its augmented copies and by
all its example pairs, as ARC's rows have it), whole puzzles are drawn until at least ``samples``
rows are out, so no copy of a validation puzzle stays in training. A puzzle that also has rows in
the eval split (an ARC evaluation puzzle, whose demonstration pairs are training rows) is never
drawn: its demonstrations are how the model learns the puzzle it is tested on. Augmentation on
the fly (Sudoku, mazes) makes no stored copies, so rows are drawn.
"""

from __future__ import annotations

import dataclasses

import torch

from agent_forge.data import Split, TaskData
from agent_forge.errors import ConfigError

#: Added to the data seed, so the carve draws from its own stream and not one a dataset plugin
#: may also have seeded with ``data_seed``.
SALT = 0x7A11D


#: The per-row meta key naming the original puzzle a row belongs to.
GROUP_KEY = "puzzle"


def validation_rows(split: Split, samples: int, seed: int, tested: Split | None = None) -> torch.Tensor:
    """Sorted indices of the rows of ``split`` that the carve takes (see the module doc);
    ``tested``: the eval split, whose puzzles are never drawn."""
    generator = torch.Generator().manual_seed(seed + SALT)
    group = split.meta.get(GROUP_KEY)
    if group is None:
        return torch.randperm(len(split), generator=generator)[:samples].sort().values
    ids, owner = torch.unique(group, return_inverse=True)
    order = torch.randperm(len(ids), generator=generator)
    if tested is not None and GROUP_KEY in tested.meta:
        order = order[~torch.isin(ids[order], tested.meta[GROUP_KEY])]
    sizes = torch.bincount(owner, minlength=len(ids))[order]
    # The fewest whole puzzles, in draw order, that hold at least ``samples`` rows.
    take = int(torch.searchsorted(sizes.cumsum(0), torch.tensor(samples))) + 1
    chosen = torch.zeros(len(ids), dtype=torch.bool)
    chosen[order[:take]] = True
    return chosen[owner].nonzero().flatten()


def carve_validation(task: TaskData, samples: int, seed: int) -> TaskData:
    """``task`` with ``samples`` training rows (whole puzzles, where rows are grouped) moved into
    ``validation``; ``samples=0`` returns it unchanged."""
    if samples == 0:
        return task
    n = len(task.train)
    if samples >= n:
        raise ConfigError(f"validation_samples={samples} leaves no training rows: the task has {n} training rows;"
                          f" use fewer (e.g. validation_samples={max(1, n // 10)}) or 0 for no validation split")
    rows = validation_rows(task.train, samples, seed, tested=task.eval)
    if len(rows) >= n or len(rows) < samples:
        raise ConfigError(f"validation_samples={samples}: the task's {n} training rows cannot give that many while"
                          " keeping some for training (whole puzzles are held out together, and never one that"
                          " is tested); use fewer")
    keep = torch.ones(n, dtype=torch.bool)
    keep[rows] = False
    return dataclasses.replace(task, train=task.train.subset(keep.nonzero().flatten()),
                               validation=task.train.subset(rows))


__all__ = ["carve_validation", "validation_rows", "GROUP_KEY", "SALT"]
