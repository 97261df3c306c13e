"""forge eval --samples/--augment/--select/--plot, forge solve and agent_forge.solve on a tiny artifact."""

import json
import re

import pytest
from typer.testing import CliRunner

from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.evaluate import evaluate_artifact_on_file
from agent_forge.phases.cognate.explore import ExploreOptions, explore_artifact_on_file, solve_puzzle
from agent_forge.phases.common.exploration import DEFAULT_NOISE


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from forge_testing import tiny_cognate_run

    host, result = tiny_cognate_run(tmp_path_factory.mktemp("explore") / "run")
    return host, result.artifacts[0].manifest_path


@pytest.fixture(scope="module")
def puzzles(tiny_run, tmp_path_factory):
    from agent_forge.plugins.datasets.files import generate_file

    host, _ = tiny_run
    return generate_file(host, "sudoku4", 10, ["blanks=6"], tmp_path_factory.mktemp("data") / "p.csv", seed=3)[0]


def test_one_noiseless_sample_matches_plain_eval_and_k_samples_report_every_rule(tiny_run, puzzles):
    host, manifest = tiny_run
    plain = evaluate_artifact_on_file(host, manifest, puzzles)
    one = explore_artifact_on_file(host, manifest, puzzles, ExploreOptions(samples=1), batch_size=256)
    assert one["exact_accuracy"] == pytest.approx(plain["exact_accuracy"])
    assert one["noiseless_exact_accuracy"] == pytest.approx(plain["exact_accuracy"])
    m = explore_artifact_on_file(host, manifest, puzzles, ExploreOptions(samples=4, augment=2, seed=1))
    assert m["noise"] == DEFAULT_NOISE and m["examples"] == 10
    assert set(m["selections"]) == {"q", "vote", "verify"}
    assert m["noiseless_exact_accuracy"] == pytest.approx(plain["exact_accuracy"])
    assert m["trajectory_steps"] == 10 * 8 * 3
    assert [(p["samples"], p["augment"]) for p in m["curve"]] == [(1, 1), (2, 1), (4, 1), (1, 2), (2, 2), (4, 2)]
    again = explore_artifact_on_file(host, manifest, puzzles, ExploreOptions(samples=4, augment=2, seed=1))
    assert again["selections"] == m["selections"]  # same seed, same picks
    json.dumps(m)


def test_eval_command_exploring_plots_and_refuses_bad_options(tiny_run, puzzles, tmp_path):
    from agent_forge.cli import build_app

    host, manifest = tiny_run
    app = build_app(host)
    png = tmp_path / "curve.png"
    out = CliRunner().invoke(app, ["eval", str(manifest), "--data", str(puzzles), "--samples", "2", "--noise",
                                   "0.3", "--select", "vote", "--plot", str(png), "--json"])
    assert out.exit_code == 0, out.output
    m = json.loads(out.stdout)
    assert m["select"] == "vote" and m["exact_accuracy"] == m["selections"]["vote"]["exact_accuracy"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    bad = CliRunner().invoke(app, ["eval", str(manifest), "--data", str(puzzles), "--samples", "2", "--select",
                                   "best"])
    assert isinstance(bad.exception, ConfigError) and "--select 'best'" in str(bad.exception)
    assert "q, vote, verify" in str(bad.exception)
    text = CliRunner().invoke(app, ["eval", str(manifest), "--data", str(puzzles), "--samples", "2"])
    assert text.exit_code == 0 and "worse than noiseless" in text.output
    # --compile with --early-exit cannot serve one graph: it runs eager and the report says why.
    fell = CliRunner().invoke(app, ["eval", str(manifest), "--data", str(puzzles), "--compile", "--early-exit",
                                    "--json"])
    assert fell.exit_code == 0, fell.output
    m = json.loads(fell.stdout)
    assert m["compiled"] is False and "early-exit" in m["compile_fallback"] and m["compile_s"] == 0
    assert m["examples"] == 10 and m["threads"] >= 1 and "load_average" in m


def test_eval_help_explains_the_three_selections_and_the_default_noise(tiny_run):
    from agent_forge.cli import build_app

    host, _ = tiny_run
    out = CliRunner().invoke(build_app(host), ["eval", "--help"], env={"COLUMNS": "200"})
    lines = out.output.splitlines()
    for rule in ("q", "vote", "verify"):
        assert sum(1 for line in lines if line.strip().startswith(rule + " ")) == 1
    assert f"{DEFAULT_NOISE}, chosen on" in " ".join(out.output.split())


def test_solve_one_puzzle_from_the_cli_and_from_python(tiny_run, puzzles):
    from agent_forge import solve
    from agent_forge.cli import build_app

    host, manifest = tiny_run
    question = puzzles.read_text().splitlines()[1].split(",")[0]
    r = solve(manifest, question, samples=3, trajectories=True, host=host)
    assert len(r["answer"]) == 16 and len(r["grid"]) == 4 and r["steps"] == 3
    assert len(r["trajectories"]) == 3 and r["trajectories"][0]["noise"] == 0.0
    assert r["picked"] in (0, 1, 2) and isinstance(r["valid"], bool)
    assert solve_puzzle(host, manifest, question) == solve(manifest, question, host=host)
    out = CliRunner().invoke(build_app(host), ["solve", str(manifest), question, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["answer"] == solve(manifest, question, host=host)["answer"]
    with pytest.raises(ConfigError, match="PUZZLE has 5 cells.*4x4"):
        solve(manifest, "1.2.3", host=host)
    with pytest.raises(ConfigError, match="--augment 3: a square|--augment"):
        solve(manifest, question, augment=0, host=host)


def test_show_draws_the_k_trajectories_of_one_puzzle(tiny_run, puzzles):
    from agent_forge.cli import build_app

    host, manifest = tiny_run
    out = CliRunner().invoke(build_app(host), ["show", str(manifest), "--data", str(puzzles), "--index", "2",
                                               "--samples", "3", "--json"])
    assert out.exit_code == 0, out.output
    r = json.loads(out.stdout)
    assert [t["index"] for t in r["trajectories"]] == [0, 1, 2] and r["trajectories"][0]["noise"] == 0.0
    assert all(isinstance(t["correct"], bool) for t in r["trajectories"])
    text = CliRunner().invoke(build_app(host), ["show", str(manifest), "--data", str(puzzles), "--samples", "3"])
    assert text.exit_code == 0 and text.output.count("\n> #") == 1 and "noiseless" in text.output


@pytest.mark.parametrize("exploring", [[], ["--samples", "2"]])
def test_eval_says_how_far_it_got_on_stderr_unless_told_not_to(tiny_run, puzzles, exploring):
    # `forge eval --samples 64` on 1,000 puzzles ran for 20 minutes with nothing on stderr.
    from agent_forge.cli import build_app

    host, manifest = tiny_run
    app = build_app(host)
    args = ["eval", str(manifest), "--data", str(puzzles), "--json", *exploring]
    shown = CliRunner().invoke(app, args)  # stderr is not a terminal here: plain lines
    assert shown.exit_code == 0, shown.output
    assert "eval.progress" in shown.stderr and re.search(r"total\W+10\b", shown.stderr), shown.stderr
    json.loads(shown.stdout)  # the lines go to stderr: stdout stays one JSON document
    quiet = CliRunner().invoke(app, [*args, "--no-progress"])
    assert quiet.exit_code == 0 and "eval.progress" not in quiet.stderr, quiet.stderr


def test_a_warning_reaches_the_user_as_one_line_without_python_source(tiny_run, puzzles, capsys):
    # It used to print "/…/explore.py:76: UserWarning: …" and the source line under it.
    from forge_testing import forge_main

    _, manifest = tiny_run
    code, _, err = forge_main(["eval", str(manifest), "--data", str(puzzles), "--compile", "--early-exit",
                               "--no-progress", "--json"], capsys)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == ["warning: --compile --early-exit: trajectories leave the batch, so every step has another"
                     " shape; ran eager"], err
