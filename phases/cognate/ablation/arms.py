"""An arm of an ablation: a registered variant plus overrides of its own, and how ``--arm`` spells it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agent_forge.errors import ConfigError


@dataclass(frozen=True)
class Arm:
    """One arm: a registered variant and overrides applied after the shared ones (``--set``)."""

    name: str
    variant: str
    overrides: tuple[str, ...] = ()

    def describe(self) -> str:
        return self.variant + (":" + ",".join(self.overrides) if self.overrides else "")


#: What an arm's name may be: it names a folder of runs.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """``text`` split at ``sep`` outside brackets, braces and quotes: ``a=[1, 2],b=3`` -> 2 parts."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_arm(text: str) -> Arm:
    """``NAME=VARIANT:key=value,key=value``, ``NAME=VARIANT`` or ``VARIANT`` (named after it).

    Values are ``--set`` values; a comma inside brackets or quotes does not split
    (``task.blanks=[6, 8]``). ``callbacks.ema=null`` turns a callback off.
    """
    head, colon, tail = text.partition(":")
    name, eq, variant = head.partition("=")
    if not eq:
        name = variant = head
    name, variant = name.strip(), variant.strip()
    overrides = tuple(split_top_level(tail)) if colon else ()
    if not variant or not NAME.match(name):
        raise ConfigError(f"--arm {text!r}: expected NAME=VARIANT:key=value,key=value (NAME: letters, digits,"
                          " '_', '-', '.'), e.g. --arm no_ema=trm_paper:callbacks.ema=null")
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"--arm {text!r}: {bad[0]!r} is not key=value")
    return Arm(name, variant, overrides)


def parse_arm_steps(text: str) -> dict[str, int]:
    """``--arm-steps base=380,A_n3=290`` -> ``{"base": 380, "A_n3": 290}``."""
    steps: dict[str, int] = {}
    for part in split_top_level(text):
        name, eq, value = part.partition("=")
        try:
            steps[name.strip()] = int(value)
        except ValueError:
            eq = ""
        if not eq or not name.strip():
            raise ConfigError(f"--arm-steps {text!r}: {part!r} is not ARM=STEPS; write e.g. --arm-steps base=380,A_n3=290")
    if not steps:
        raise ConfigError(f"--arm-steps {text!r}: give ARM=STEPS for every arm, e.g. --arm-steps base=380,A_n3=290")
    return steps


def flow(value: Any) -> str:
    """``value`` as a ``--set`` value (JSON: lists, mappings and strings read back as they were)."""
    return json.dumps(value)
