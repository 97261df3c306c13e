"""bench/peer.py: its arguments, rate arithmetic, comparison table and the port driver's protocol.

The fast tests download nothing and never start the port. The slow one runs the whole command,
and only where the side environment already exists (``bench/peer.py --setup-only``; its folder is
``$FORGE_PEER_VENV`` or the default under ``$FORGE_CACHE_DIR``).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


peer = load("peer")


def test_arguments_default_to_the_ports_exact_network_and_alternating_rounds():
    a = peer.parse_args([])
    assert (a.ours_shape, a.rounds, a.steps, a.warmup, a.threads) == ("nanotrm_port", 5, 8, 2, None)
    a = peer.parse_args(["--rounds", "3", "--steps", "2", "--threads", "1", "--set", "trainer.compile=true",
                         "--venv", "/x/v"])
    assert (a.rounds, a.steps, a.threads, a.overrides, a.venv) == (3, 2, 1, ["trainer.compile=true"], Path("/x/v"))


@pytest.mark.parametrize("argv", [["--rounds", "0"], ["--steps", "0"], ["--warmup", "-1"]])
def test_arguments_refuse_empty_measurements(argv):
    with pytest.raises(SystemExit):
        peer.parse_args(argv)


def test_rate_is_rows_times_steps_per_second():
    assert peer.rate(256, 8, 2.0) == 1024.0
    with pytest.raises(ValueError):
        peer.rate(256, 8, 0.0)


def test_compare_gives_ours_over_port_from_medians_and_from_each_round():
    port = peer.Side("port", 256, 4, (2.0, 4.0, 3.0), gflop_per_step=58.0)  # 512, 256, 341.3 /s
    ours = peer.Side("ours", 256, 4, (1.0, 1.0, 3.0), gflop_per_step=29.0)  # 1024, 1024, 341.3 /s
    r = peer.compare(port, ours)
    assert r["port_median"] == pytest.approx(1024 / 3)
    assert r["ours_median"] == pytest.approx(1024.0)
    assert r["ratio_of_medians"] == pytest.approx(3.0)
    assert r["round_ratios"] == pytest.approx([2.0, 4.0, 1.0])
    assert r["median_round_ratio"] == pytest.approx(2.0)
    assert r["port_best"] == pytest.approx(512.0) and r["ours_best"] == pytest.approx(1024.0)
    assert r["flops_ratio_ours_over_port"] == pytest.approx(0.5)


def test_compare_refuses_unpaired_rounds():
    with pytest.raises(ValueError, match="rounds differ"):
        peer.compare(peer.Side("p", 1, 1, (1.0, 1.0)), peer.Side("o", 1, 1, (1.0,)))


def test_table_shows_both_sides_and_the_ratio():
    port = peer.Side("nano-trm", 256, 2, (2.0, 2.0), gflop_per_step=58.0)
    ours = peer.Side("agent-forge", 256, 2, (1.0, 1.0), gflop_per_step=58.0)
    text = peer.table(port, ours, peer.compare(port, ours))
    lines = text.splitlines()
    assert lines[0].startswith("| side |") and len(lines) == 5
    assert "| nano-trm | 256.0 | 256.0 | 256.0, 256.0 | 58.0 | 58.0 |" in lines
    assert "| agent-forge | 512.0 |" in lines[3]
    assert "**2.00x**" in lines[4] and "median of rounds 2.00x" in lines[4] and "1.00x" in lines[4]


def test_table_without_flop_counts_prints_dashes():
    port, ours = peer.Side("p", 8, 1, (1.0,)), peer.Side("o", 8, 1, (0.5,))
    assert "| p | 8.0 | 8.0 | 8.0 | - | - |" in peer.table(port, ours, peer.compare(port, ours))


def test_command_line_quotes_what_needs_it():
    assert peer.command_line(["--rounds", "5", "--set", "a b=1"]) == \
        ".venv/bin/python bench/peer.py --rounds 5 --set 'a b=1'"


def test_shape_of_maps_our_recursion_onto_the_ports_cycles():
    cfg = SimpleNamespace(model=SimpleNamespace(d_model=64, n_layers=2, n=3, T=2, n_sup=16, expansion=4.0),
                          trainer=SimpleNamespace(batch_size=256))
    spec = SimpleNamespace(seq_len=36, vocab_size=7)
    assert peer.shape_of(cfg, spec) == {"d_model": 64, "layers": 2, "n": 3, "T": 2, "n_sup": 16, "batch": 256,
                                        "seq_len": 36, "vocab": 7, "expansion": 4.0}


def test_the_port_gets_the_environment_the_user_started_with(monkeypatch):
    monkeypatch.setattr(peer, "USER_ENV", {"PATH": "/bin"})
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")  # as import agent_forge sets it
    assert peer.port_env() == {"PATH": "/bin"}


def test_the_shapes_peer_runs_exist_and_port_shape_is_the_ports_network():
    sys.path.insert(0, str(BENCH))
    try:
        tp = load("throughput")
    finally:
        sys.path.remove(str(BENCH))
    variant, overrides = tp.SHAPES["nanotrm_port"]
    assert variant == tp.SHAPES["nanotrm"][0]
    assert overrides[: len(tp.SHAPES["nanotrm"][1])] == tp.SHAPES["nanotrm"][1]
    assert {"model.mixer=mlp_official", "model.learned_positions=false", "trainer.loss=stablemax"} <= set(overrides)
    assert not hasattr(tp, "PORT_REFERENCE")  # no quoted figure of the port any more


def test_port_driver_answers_one_json_line_per_command():
    driver = load("peer_port")

    class FakePort:
        def run(self, steps, threads):
            return {"wall_s": 0.5 * steps, "cpu_s": 0.4 * steps, "steps": steps, "threads": threads}

        def flops(self):
            return 1.5e9

        def info(self):
            return {"nano_trm_version": "0.1.0"}

    lines = [json.dumps(c) + "\n" for c in ({"cmd": "info"}, {"cmd": "flops"}, {"cmd": "run", "steps": 4},
                                             {"cmd": "bogus"}, {"cmd": "quit"}, {"cmd": "info"})]
    out = io.StringIO()
    driver.serve(FakePort(), lines, out)
    replies = [json.loads(x) for x in out.getvalue().splitlines()]
    assert replies == [{"nano_trm_version": "0.1.0"}, {"flops": 1.5e9},
                       {"wall_s": 2.0, "cpu_s": 1.6, "steps": 4, "threads": None},
                       {"error": "unknown command 'bogus'"}]  # nothing after quit


def test_port_driver_arguments_are_the_shape():
    driver = load("peer_port")
    a = driver.parse_args(["--d-model=64", "--layers=2", "--n=3", "--T=2", "--n-sup=16", "--batch=256",
                           "--seq-len=36", "--vocab=7", "--expansion=4.0"])
    assert (a.d_model, a.layers, a.n, a.T, a.n_sup, a.batch, a.seq_len, a.vocab, a.expansion) == \
        (64, 2, 3, 2, 16, 256, 36, 7, 4.0)


def _venv() -> Path:
    if os.environ.get("FORGE_PEER_VENV"):
        return Path(os.environ["FORGE_PEER_VENV"])
    return peer.default_venv()


@pytest.mark.slow
def test_whole_command_runs_the_port_and_ours_on_the_same_work(capsys):
    venv = _venv()
    if not peer.venv_ready(venv):
        pytest.skip(f"no side environment at {venv}; run bench/peer.py --setup-only (or set FORGE_PEER_VENV)")
    peer.main(["--venv", str(venv), "--no-setup", "--rounds", "1", "--steps", "1", "--warmup", "0",
               "--set", "trainer.batch_size=16"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["shape"]["batch"] == 16 and result["port"]["nano_trm_version"] == "0.1.0"
    # Same network: the same parameters and FLOPs per step, counted on both sides.
    assert result["ours_parameters"] == result["port"]["parameters"]
    assert result["flops_ratio_ours_over_port"] == pytest.approx(1.0, rel=1e-3)
    assert result["ratio_of_medians"] > 0 and len(result["walls_s"]["port"]) == 1
