"""Where agent-forge keeps what it can rebuild or fetch again: ``$FORGE_CACHE_DIR``, else
``~/.cache/agent-forge`` (generated task data, tokenizers, artifacts downloaded from the Hub)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "FORGE_CACHE_DIR"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "agent-forge")
