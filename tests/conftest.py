"""Shared fixtures. Installed third-party plugins never load here by accident: entry points are
off for the whole session (tests that need them turn them on explicitly in a subprocess)."""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch
from forge_testing import TINY


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


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
