"""Fields of the model config dataclasses: a default, a one-line description and optional bounds.

Everything lives in ``dataclasses.field`` metadata, so a config stays a plain stdlib dataclass::

    @dataclass
    class MyConfig:
        d_model: int = option(128, "Width of every layer.", ge=8)
        mixer: Literal["attention", "mlp"] = option("attention", "Token mixer.")

        def __post_init__(self) -> None:
            check_options(self)                      # bounds and Literal choices
            if self.d_model % 2:                     # cross-field / extra rules
                raise OptionError("d_model", f"d_model={self.d_model} is odd; use an even width")

A pipeline that wraps the config (agent-forge's ``config_from_dataclass``) reads the same
metadata for its own validation and reports an :class:`OptionError` under the field it names.
"""

from __future__ import annotations

import dataclasses
import operator
import typing
from typing import Any, Literal

#: Bound name -> (test, how to say it).
BOUNDS = {"ge": (operator.ge, ">="), "gt": (operator.gt, ">"), "le": (operator.le, "<="), "lt": (operator.lt, "<")}


class OptionError(ValueError):
    """A bad config value: ``field`` names the field the message is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def option(default: Any, description: str = "", **bounds: float) -> Any:
    """A dataclass field with a default, a description and bounds (``ge``, ``gt``, ``le``, ``lt``)."""
    unknown = set(bounds) - set(BOUNDS)
    if unknown:
        raise TypeError(f"option(): unknown bounds {sorted(unknown)}; use {', '.join(BOUNDS)}")
    return dataclasses.field(default=default, metadata={"description": description, **bounds})


def check_options(cfg: Any) -> None:
    """Raise :class:`OptionError` for a value outside its field's bounds or ``Literal`` choices
    (``None`` passes the bounds: it means "use the default behaviour")."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if typing.get_origin(hints[f.name]) is Literal and value not in typing.get_args(hints[f.name]):
            choices = ", ".join(repr(c) for c in typing.get_args(hints[f.name]))
            raise OptionError(f.name, f"{f.name}={value!r}: use one of {choices}")
        for key, (test, sign) in BOUNDS.items():
            if key in f.metadata and value is not None and not test(value, f.metadata[key]):
                raise OptionError(f.name, f"{f.name}={value!r}: must be {sign} {f.metadata[key]}")
