"""Shared fixtures. Installed third-party plugins never load here by accident: entry points are
off for the whole session (tests that need them turn them on explicitly in a subprocess)."""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch


def pytest_configure(config: Any) -> None:
    os.environ["FORGE_LOAD_ENTRYPOINTS"] = "0"
    os.environ.pop("FORGE_DISABLE_PLUGINS", None)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def host():
    from agent_forge.plugin_host import load_plugins

    return load_plugins(entry_points=False)


#: Overrides that make any Cognate variant train in about a second.
TINY = [
    "task.name=sudoku4", "task.train_count=64", "task.eval_count=32", "task.blanks=[6, 8]",
    "model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.n=1", "model.T=2", "model.n_sup=3",
    "trainer.batch_size=16", "trainer.log_every=2", "trainer.eval_every=4", "trainer.eval_samples=16",
    "trainer.eval_batch_size=32", "trainer.warmup_steps=2", "trainer.precision=fp32", "trainer.threads=1",
]


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
