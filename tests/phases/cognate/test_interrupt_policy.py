"""What a run does with signals it was started with: an ignored SIGINT (nohup, a background
job) stays ignored, a handled one is taken for the run and given back afterwards."""

import signal

import pytest

from agent_forge.phases.cognate.interrupts import Interrupts


@pytest.fixture
def sigint_restored():
    before = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, before)


def test_an_ignored_sigint_stays_ignored_during_a_run(sigint_restored):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with Interrupts() as interrupts:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)  # ignored: the run is not asked to stop
        assert interrupts.signum is None
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_a_handled_sigint_asks_the_run_to_stop_and_the_handler_comes_back(sigint_restored):
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with Interrupts() as interrupts:
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        signal.raise_signal(signal.SIGINT)
        assert interrupts.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_suite_runs_as_from_a_terminal():
    """tests/conftest.py gives back SIGINT when the suite was started as a background job."""
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
