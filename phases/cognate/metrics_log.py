"""metrics.jsonl: one JSON object per line, appended and flushed as training goes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from agent_forge.checkpoint import atomic_write_bytes


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf: write them as strings a reader can still parse.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsLog:
    """``enabled=False`` (ranks other than 0 in a distributed run) makes every write a no-op."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled

    def reset(self) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def truncate_after(self, step: int) -> None:
        """On resume: drop rows logged after the checkpoint, which the resumed run logs again."""
        if not self.enabled:
            return
        rows = [r for r in self.read() if int(r.get("step", 0)) <= step]
        atomic_write_bytes(self.path, "".join(json.dumps(r) + "\n" for r in rows).encode())
