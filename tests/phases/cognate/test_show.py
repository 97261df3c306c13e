"""``forge show``: one puzzle's answer after every supervision step, as text, JSON and a GIF."""

import json
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from forge_testing import TINY
from agent_forge.specs import DatasetSpec

N_SUP = 3  # TINY's model.n_sup


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny TRM run on sudoku4 and a sudoku4 file of 5 puzzles."""
    from agent_forge import run_phase
    from agent_forge.plugin_host import load_plugins
    from agent_forge.plugins.datasets.files import generate_file

    root = tmp_path_factory.mktemp("show")
    result = run_phase("cognate", variant="trm_tiny", max_steps=4, overrides=TINY, out=root / "run", progress=False)
    data = root / "puzzles.csv"
    generate_file(load_plugins(entry_points=False), "sudoku4", 5, ["blanks=8"], data, seed=7)
    return result.artifacts[0].manifest_path, data


@pytest.fixture(scope="module")
def app():
    from agent_forge.cli import build_app
    from agent_forge.plugin_host import load_plugins

    return build_app(load_plugins(entry_points=False))


def invoke(app, *args):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_show_prints_one_grid_per_supervision_step(app, trained):
    manifest, data = trained
    text = invoke(app, "show", manifest, "--data", data, "--index", 2)
    assert len(re.findall(r"step \d+/3\b", text)) == N_SUP
    assert "question" in text and "answer" in text and "p(halt) " in text
    assert all(len(line) <= 80 for line in text.splitlines())
    more = invoke(app, "show", manifest, "--data", data, "--index", 2, "--n-sup", 5)
    assert [int(n) for n in re.findall(r"step (\d+)/5\b", more)] == [1, 2, 3, 4, 5]
    assert "the model's n_sup is 3" in more


def test_show_json_marks_wrong_and_changed_cells_and_the_halting_step(app, trained):
    manifest, data = trained
    trace = json.loads(invoke(app, "show", manifest, "--data", data, "--index", 1, "--json"))
    assert trace["index"] == 1 and trace["examples"] == 5 and trace["has_q_head"] and len(trace["steps"]) == N_SUP
    answer = [c for row in trace["answer"] for c in row]
    question = [c for row in trace["question"] for c in row]
    previous = question
    for step in trace["steps"]:
        cells = [c for row in step["cells"] for c in row]
        assert len(cells) == 16 and step["wrong"] == [c != a for c, a in zip(cells, answer)]
        assert step["changed"] == [c != p for c, p in zip(cells, previous)]
        assert step["halt_prob"] == pytest.approx(1 / (1 + pow(2.718281828459045, -step["q_logit"])))
        previous = cells
    first_halt = next((s["step"] for s in trace["steps"] if s["q_logit"] > 0), None)
    assert trace["halt_step"] == first_halt
    assert [s["step"] for s in trace["steps"] if s["halts"]] == ([first_halt] if first_halt else [])


def test_show_gif_has_one_frame_per_step(app, trained, tmp_path):
    from PIL import Image

    manifest, data = trained
    for n_sup, expected in ((None, N_SUP), (2, 2)):
        gif = tmp_path / f"steps-{n_sup}.gif"
        args = ["show", manifest, "--data", data, "--gif", gif] + (["--n-sup", n_sup] if n_sup else [])
        text = invoke(app, *args)
        assert f"gif: {gif} ({expected} frames)" in text
        with Image.open(gif) as im:
            assert im.format == "GIF" and im.n_frames == expected


def test_bad_index_data_and_gif_name_are_config_errors_naming_the_flag(host, trained, tmp_path):
    from agent_forge.errors import ConfigError
    from agent_forge.phases.cognate.show import check_gif_path, trace_puzzle
    from agent_forge.plugins.datasets.files import generate_file

    manifest, data = trained
    with pytest.raises(ConfigError, match=r"--index 5: .* holds 5 puzzle\(s\), numbered 0 to 4"):
        trace_puzzle(host, manifest, data, 5)
    six = generate_file(host, "sudoku6", 2, [], tmp_path / "six.csv", seed=0)[0]
    with pytest.raises(ConfigError, match=r"--data .*six.csv: not a data file of this artifact's task 'sudoku4'"
                                          r".*6x6 grid.*forge data generate sudoku4"):
        trace_puzzle(host, manifest, six, 0)
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match=r"--data .*other.csv: .*question"):
        trace_puzzle(host, manifest, tmp_path / "other.csv", 0)
    with pytest.raises(ConfigError, match=r"--gif x.png: .*\.gif"):
        check_gif_path("x.png")


def test_the_cli_prints_one_error_line(trained):
    manifest, data = trained
    proc = subprocess.run([sys.executable, "-m", "agent_forge", "show", str(manifest), "--data", str(data),
                           "--index", "9"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FORGE_LOAD_ENTRYPOINTS": "0"})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: --index 9")


def test_a_model_without_a_q_head_says_so(app, trained, tmp_path):
    from agent_forge import run_phase

    overrides = [o for o in TINY if not o.startswith("model.")] + [
        "model.d_model=32", "model.n_layers=1", "model.n_heads=2"]
    result = run_phase("cognate", variant="baseline", max_steps=2, overrides=overrides, out=tmp_path / "base",
                       progress=False)
    manifest, data = result.artifacts[0].manifest_path, trained[1]
    text = invoke(app, "show", manifest, "--data", data)
    assert len(re.findall(r"step \d+/1\b", text)) == 1 and "no halting head" in text and "p(halt)" not in text
    trace = json.loads(invoke(app, "show", manifest, "--data", data, "--n-sup", 2, "--json"))
    assert [s["q_logit"] for s in trace["steps"]] == [None, None] and trace["halt_step"] is None


def test_maze_cells_are_the_characters_of_its_render(host):
    from agent_forge.config import validate

    reg = host.get(DatasetSpec, "maze")
    task = reg.build(validate(reg.config, {"size": 7, "train_count": 2, "eval_count": 2, "cache": False}, "task"), 0)
    row = task.eval.targets[0]
    cells = task.decode_grid(row)
    assert "\n".join("".join(r) for r in cells) == task.render(row)
    assert "*" in "".join(c for r in cells for c in r)  # the path (so forge show marks wrong cells with "!")
