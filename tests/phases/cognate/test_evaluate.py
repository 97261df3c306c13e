"""forge eval --n-sup K: accuracy after every supervision step and at halt; steps.json and steps.png."""

import json

import pytest
from typer.testing import CliRunner

from agent_forge.phases.cognate.evaluate import evaluate_artifact_on_file, steps_table


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from forge_testing import tiny_cognate_run

    out = tmp_path_factory.mktemp("eval") / "run"
    host, result = tiny_cognate_run(out)
    return host, out, result


@pytest.fixture(scope="module")
def puzzles(tiny_run, tmp_path_factory):
    from agent_forge.plugins.datasets.files import generate_file

    host, _, _ = tiny_run
    return generate_file(host, "sudoku4", 12, ["blanks=6"], tmp_path_factory.mktemp("data") / "p.csv", seed=3)[0]


@pytest.mark.parametrize("n_sup", [1, 5])
def test_eval_reports_every_step_up_to_k_and_at_halt(tiny_run, puzzles, n_sup):
    host, _, result = tiny_run
    manifest = result.artifacts[0].manifest_path
    m = evaluate_artifact_on_file(host, manifest, puzzles, n_sup=n_sup)
    assert m["n_sup"] == n_sup and m["trained_n_sup"] == 3 and m["examples"] == 12
    assert [s["step"] for s in m["steps"]] == list(range(1, n_sup + 1))
    # The headline metrics are those after the last step run.
    assert m["steps"][-1]["exact_accuracy"] == pytest.approx(m["exact_accuracy"])
    assert m["steps"][-1]["token_accuracy"] == pytest.approx(m["token_accuracy"])
    assert m["at_halt"]["exact_accuracy"] == pytest.approx(m["halt_exact_accuracy"])
    assert 1 <= m["at_halt"]["mean_halt_step"] <= n_sup
    table = steps_table(m)
    lines = table.splitlines()
    assert lines[0].split() == ["step", "exact", "token"] and len(lines) == n_sup + 2
    assert lines[-1].startswith("halt") and "mean" in lines[-1]
    assert ("trained n_sup" in table) == (n_sup >= 3)
    json.dumps(m)  # plain JSON


def test_eval_command_takes_n_sup(tiny_run, puzzles):
    from agent_forge.cli import build_app

    host, _, result = tiny_run
    out = CliRunner().invoke(build_app(host), ["eval", str(result.artifacts[0].manifest_path), "--data",
                                               str(puzzles), "--n-sup", "4", "--json"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)["steps"]) == 4


def test_the_run_writes_steps_json_and_plots_it(tiny_run):
    _, out, result = tiny_run
    curves = json.loads((out / "steps.json").read_text())
    assert set(curves) == {"raw", "ema"}
    for curve in curves.values():
        assert curve["n_sup"] == 3 and len(curve["steps"]) == 3 and curve["at_halt"] is not None
    chosen = result.details["models"][0]["chosen_weights"]
    assert curves[chosen]["steps"][-1]["exact_accuracy"] == pytest.approx(result.metrics["exact_accuracy"])
    metrics = result.artifacts[0].artifact.metrics  # one number per name: the curve is not in them
    assert not any("@" in k or "step_" in k or "per_step" in k for k in metrics) and metrics["steps"] == 4
    assert (out / "steps.png").exists() and "](steps.png)" in (out / "report.md").read_text()
