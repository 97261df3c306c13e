"""Shared fixtures. Installed third-party plugins never load here by accident: entry points are
off for the whole session (tests that need them turn them on explicitly in a subprocess)."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
import torch
from forge_testing import CHILDREN, TINY
from hypothesis import HealthCheck, settings

# Hypothesis's two clocks (a 200 ms deadline per example and the "input generation is slow" health
# check) fail a correct property test when the machine is busy: on a loaded 2-core machine
# test_deep_merge_update_wins_and_base_is_untouched failed with "only generated 2 valid inputs
# after 1.08 seconds". A test here may fail for what the code does, never for the time it took.
settings.register_profile("forge", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("forge")


def pytest_configure(config: Any) -> None:
    os.environ["FORGE_LOAD_ENTRYPOINTS"] = "0"
    os.environ.pop("FORGE_DISABLE_PLUGINS", None)
    # A shell starts a background job (`pytest &`, nohup, some CI runners) with SIGINT ignored,
    # and a run rightly leaves an ignored SIGINT alone (tests/phases/cognate/test_interrupt_policy.py):
    # the Ctrl-C tests would then wait for a signal that never lands. They test a run started
    # from a terminal, so the suite restores what a terminal gives; children inherit it.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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


@pytest.fixture(autouse=True)
def _no_child_left_waiting():
    """A paused child whose test failed would wait for its signal for ever: end it."""
    yield
    while CHILDREN:
        proc = CHILDREN.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
