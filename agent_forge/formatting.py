"""Numbers as a person writes them, for every human-facing output (report.md, ablation.md, inspect).

:func:`format_number` takes a ``kind``:

* ``"count"``: whole numbers with thousands separators (``134,337``); a mean of counts keeps
  one decimal (``1,234.5``).
* ``"fraction"``: accuracies and rates in [0, 1], three decimals (``0.912``). Every accuracy in
  agent-forge's outputs is written this way, never as a percentage, so columns compare at a glance.
* ``"seconds"``: a duration, rounded: ``0.42 s``, ``4.2 s``, ``42 s``, ``3 min 20 s``, ``1 h 02 min``.
* ``"float"``: anything else (a loss, a learning rate): four significant digits, without
  scientific notation between 0.001 and 1e6 (``1.083``, ``0.0031``, ``12,345``; ``1e-05`` outside).
* ``"auto"``: the kind is guessed from ``key`` (a metric's name), see :func:`kind_for`.

A missing value (None, NaN) prints as ``n/a``: no output says ``nan``.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "n/a"
KINDS = ("count", "fraction", "seconds", "float", "auto")

_COUNT_WORDS = ("parameters", "steps", "step", "examples", "examples_seen", "nan_skipped", "size_bytes", "seed",
                "candidates", "effective_depth", "examples_started", "examples_finished")
_SECONDS_WORDS = ("seconds", "elapsed_s", "duration_s", "train_seconds")


def kind_for(key: str) -> str:
    """The kind of a metric by its name: ``raw/exact_accuracy`` -> fraction, ``steps`` -> count."""
    name = key.rsplit("/", 1)[-1]
    if name.endswith(("accuracy", "_rate", "_fraction")):
        return "fraction"
    if name in _SECONDS_WORDS or name.endswith("_seconds"):
        return "seconds"
    if name in _COUNT_WORDS or name.endswith(("_count", "_steps_total")):
        return "count"
    return "float"


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_number(value: Any, kind: str = "float", *, key: str = "") -> str:
    """``value`` written for a person; ``kind`` is one of :data:`KINDS` (``"auto"`` reads ``key``)."""
    if kind == "auto":
        kind = kind_for(key)
    if kind not in KINDS:
        raise ValueError(f"format_number: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if is_missing(value):
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if kind == "count":
        if float(value).is_integer():
            return f"{int(value):,}"
        return f"{value:,.1f}"
    if kind == "fraction":
        return f"{value:.3f}"
    if kind == "seconds":
        return format_duration(float(value))
    return _float(float(value))


def _float(value: float) -> str:
    if value == 0:
        return "0"
    size = abs(value)
    if size >= 1e6 or size < 1e-3:
        return f"{value:.4g}"
    if size >= 1000:
        return f"{value:,.0f}"
    digits = 3 - math.floor(math.log10(size))  # four significant digits
    text = f"{value:.{max(digits, 0)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_duration(value: float) -> str:
    """A duration in seconds, rounded for a person: ``0.42 s``, ``4.2 s``, ``42 s``, ``3 min 20 s``,
    ``1 h 02 min`` (the one duration format of every human-facing output)."""
    sign, value = ("-" if value < 0 else ""), abs(value)
    if value < 1:
        return f"{sign}{value:.2f} s"
    if value < 10:
        return f"{sign}{value:.1f} s"
    if value < 120:
        return f"{sign}{value:.0f} s"
    total = round(value)
    if total < 3600:
        return f"{sign}{total // 60} min {total % 60:02d} s"
    minutes = round(value / 60)
    return f"{sign}{minutes // 60} h {minutes % 60:02d} min"


def format_spread(mean: Any, std: Any, n: int, kind: str = "float", *, key: str = "") -> str:
    """``mean ± std`` over ``n`` runs; with one run the spread is ``n/a (1 seed)``, never ``± 0``."""
    if is_missing(mean):
        return MISSING
    text = format_number(mean, kind, key=key)
    if n < 2 or is_missing(std):
        return f"{text} ± {MISSING} (1 seed)" if n < 2 else f"{text} ± {MISSING}"
    return f"{text} ± {format_number(std, kind, key=key)}"
