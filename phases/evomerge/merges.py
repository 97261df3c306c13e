"""Merge operators on state dicts (``name -> tensor``), plain torch.

Every operator returns a new state with the keys of the first one. Tensors that are not floating
point (counters, integer buffers) are copied from the first state: there is nothing to average.

* :func:`linear`: the weighted sum ``sum_i w_i * theta_i`` (weights default to the mean).
* :func:`slerp`: spherical interpolation per tensor between two states.
* :func:`ties`: TIES-merging of task vectors ``delta_i = theta_i - base``: keep the ``density``
  largest entries of each (trim), elect each entry's sign by the sum of the trimmed values,
  average only the entries that agree with it (disjoint mean), add to ``base``.
* :func:`dare`: drop each task-vector entry with probability ``drop`` and rescale the rest by
  ``1 / (1 - drop)`` (so the expectation is unchanged), then add the weighted sum to ``base``.
* :func:`frankenmerge`: per layer group (:func:`layer_groups`: a numbered block, or a top-level
  module), every tensor from one parent.
* :func:`add_noise`: Gaussian noise scaled to each tensor's own standard deviation (mutation).

The random ones take an explicit ``torch.Generator``: a run with the same generator state draws
the same masks, which is what makes an EvoMerge resume bit-identical.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

State = dict[str, torch.Tensor]
_NUMBER = re.compile(r"^\d+$")


def _floating(t: torch.Tensor) -> bool:
    return t.is_floating_point()


def _weights(n: int, weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise ValueError(f"{len(weights)} weights for {n} states")
    return [float(w) for w in weights]


def linear(states: list[State], weights: Sequence[float] | None = None) -> State:
    """``sum_i w_i * states[i]`` per tensor, in float32, cast back to each tensor's dtype."""
    w = _weights(len(states), weights)
    out: State = {}
    for k, first in states[0].items():
        if not _floating(first):
            out[k] = first.clone()
            continue
        acc = torch.zeros_like(first, dtype=torch.float32)
        for wi, s in zip(w, states):
            acc += wi * s[k].float()
        out[k] = acc.to(first.dtype)
    return out


def slerp(a: State, b: State, t: float) -> State:
    """Spherical interpolation per tensor; falls back to linear for (nearly) parallel tensors."""
    out: State = {}
    for k in a:
        x, y = a[k].float(), b[k].float()
        if not _floating(a[k]) or x.numel() < 2:
            out[k] = a[k].clone() if not _floating(a[k]) else ((1 - t) * x + t * y).to(a[k].dtype)
            continue
        xn, yn = x.flatten() / (x.norm() + 1e-12), y.flatten() / (y.norm() + 1e-12)
        omega = torch.arccos(torch.clamp((xn * yn).sum(), -1.0, 1.0))
        if omega.abs() < 1e-4:
            mixed = (1 - t) * x + t * y
        else:
            so = torch.sin(omega)
            mixed = (torch.sin((1 - t) * omega) / so) * x + (torch.sin(t * omega) / so) * y
        out[k] = mixed.to(a[k].dtype)
    return out


def ties(states: list[State], density: float, base: State | None = None) -> State:
    """TIES-merging (trim, elect sign, disjoint mean) of task vectors relative to ``base``
    (default: the mean of ``states``)."""
    base = linear(states) if base is None else base
    out: State = {}
    for k, b in base.items():
        if not _floating(b):
            out[k] = states[0][k].clone()
            continue
        deltas = torch.stack([s[k].float() - b.float() for s in states])  # (M, ...)
        flat = deltas.reshape(len(states), -1)
        n = flat.shape[1]
        keep = max(1, int(round(density * n)))
        thresh = flat.abs().kthvalue(n - keep + 1, dim=1, keepdim=True).values
        trimmed = torch.where(flat.abs() >= thresh, flat, torch.zeros_like(flat))
        sign = torch.sign(trimmed.sum(0))
        agree = (torch.sign(trimmed) == sign) & (trimmed != 0)
        merged = (trimmed * agree).sum(0) / agree.sum(0).clamp(min=1)
        out[k] = (b.float() + merged.reshape(b.shape)).to(b.dtype)
    return out


def dare(states: list[State], drop: float, generator: torch.Generator, base: State | None = None,
         weights: Sequence[float] | None = None) -> State:
    """DARE: ``base + sum_i w_i * (m_i * delta_i) / (1 - drop)`` with ``m_i`` a Bernoulli(1 - drop)
    mask per entry, drawn from ``generator`` tensor by tensor (keys in order), state by state.
    ``base`` defaults to the mean of ``states``, ``weights`` to ``1/M`` each."""
    if not 0.0 <= drop < 1.0:
        raise ValueError(f"dare: drop must be in [0, 1), got {drop}")
    base = linear(states) if base is None else base
    w = _weights(len(states), weights)
    out: State = {}
    for k, b in base.items():
        if not _floating(b):
            out[k] = states[0][k].clone()
            continue
        acc = b.float().clone()
        for wi, s in zip(w, states):
            delta = s[k].float() - b.float()
            keep = torch.rand(delta.shape, generator=generator) >= drop
            acc += wi * torch.where(keep, delta / (1.0 - drop), torch.zeros_like(delta))
        out[k] = acc.to(b.dtype)
    return out


def layer_group(key: str) -> str:
    """The layer a tensor belongs to: its name up to the first number (``net.blocks.0`` for
    ``net.blocks.0.mlp.down.weight``), or its first part (``embed`` for ``embed.position``)."""
    parts = key.split(".")
    for i, part in enumerate(parts):
        if _NUMBER.match(part):
            return ".".join(parts[: i + 1])
    return parts[0]


def layer_groups(keys: Sequence[str]) -> dict[str, list[str]]:
    """``{group: [keys]}`` in the order the groups first appear."""
    groups: dict[str, list[str]] = {}
    for k in keys:
        groups.setdefault(layer_group(k), []).append(k)
    return groups


def frankenmerge(states: list[State], picks: Sequence[int]) -> State:
    """Layer-wise merge: group ``g`` (in :func:`layer_groups` order) takes every tensor from
    ``states[picks[g]]``. Needs states of one architecture config (same layers, same roles)."""
    groups = layer_groups(list(states[0]))
    if len(picks) != len(groups):
        raise ValueError(f"frankenmerge: {len(picks)} picks for {len(groups)} layer groups ({', '.join(groups)})")
    out: State = {}
    for pick, keys in zip(picks, groups.values()):
        for k in keys:
            out[k] = states[int(pick)][k].clone()
    return {k: out[k] for k in states[0]}


def add_noise(state: State, scale: float, generator: torch.Generator) -> State:
    """Each floating tensor of two or more entries plus ``N(0, (scale * std(tensor))^2)`` noise."""
    out: State = {}
    for k, t in state.items():
        if not _floating(t) or t.numel() < 2 or scale == 0:
            out[k] = t.clone()
            continue
        x = t.float()
        noise = torch.randn(x.shape, generator=generator) * (scale * float(x.std()))
        out[k] = (x + noise).to(t.dtype)
    return out


__all__ = ["State", "linear", "slerp", "ties", "dare", "frankenmerge", "layer_group", "layer_groups", "add_noise"]
