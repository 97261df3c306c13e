import json
import re

from pathlib import Path

import pytest

from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.ablation.markdown import markdown
from agent_forge.phases.cognate.ablation.plots import plot
from agent_forge.phases.cognate.ablation.runner import run_ablation
from agent_forge.phases.cognate.ablation.stats import verdict
from agent_forge.phases.cognate import VariantSpec

SMALL = ["task.train_count=64", "task.eval_count=32", "task.blanks=[6, 8]", "model.d_model=16", "model.n_layers=1",
         "model.n_heads=2", "trainer.batch_size=16", "trainer.eval_every=null", "trainer.log_every=2",
         "trainer.eval_batch_size=32", "trainer.threads=1", "trainer.precision=fp32"]


def test_ablation_runs_every_arm_on_the_same_data_and_budget(tmp_path, host):
    summary = run_ablation(host, ["baseline", "trm_tiny"], task="sudoku4", seeds=2, minutes=0.02,
                           overrides=SMALL + ["trainer.lr=0.01"], out=tmp_path / "abl", progress=False)
    assert set(summary["summary"]) == {"baseline", "trm_tiny"}
    for arm in ("baseline", "trm_tiny"):
        runs = summary["runs"][arm]
        assert len(runs) == 2
        s = summary["summary"][arm]["exact_accuracy"]
        assert s["n"] == 2 and 0 <= s["mean"] <= 1
        for seed in range(2):
            config = json.loads((tmp_path / "abl" / arm / f"seed-{seed}" / "config.json").read_text())["config"]
            assert config["task"]["name"] == "sudoku4" and config["data_seed"] == 0
            assert config["trainer"]["minutes"] == 0.02 and config["trainer"]["max_steps"] is None
            assert config["trainer"]["lr"] == 0.01 and config["seed"] == seed
    # Depth follows the resolved config (n_layers=1 for both): 1 for the baseline, L*(n+1)*T*N_sup for TRM.
    assert summary["summary"]["baseline"]["effective_depth"]["mean"] == 1
    assert summary["summary"]["trm_tiny"]["effective_depth"]["mean"] == 1 * (6 + 1) * 3 * 16
    for name in ("ablation.json", "ablation.md", "ablation.png"):
        assert (tmp_path / "abl" / name).exists()
    assert "Verdict" in (tmp_path / "abl" / "ablation.md").read_text()


def test_ablation_report_shows_the_settings_the_runs_used(tmp_path, host):
    """The header reads each run's resolved config (--set values, not the preset's); one seed has no spread."""
    out = tmp_path / "abl"
    summary = run_ablation(host, ["baseline", "trm_tiny"], task="sudoku4", seeds=1, minutes=0.01,
                           overrides=SMALL + ["trainer.eval_samples=16"], out=out, progress=False)
    text = (out / "ablation.md").read_text()
    settings = text.split("## Results")[0]
    assert "| `trainer.batch_size` | `16` |" in settings and "| `trainer.eval_samples` | `16` |" in settings
    assert "128" not in settings and "200" not in settings  # the presets' batch_size and eval_samples
    # Settings the arms do not share are shown per arm.
    assert "| `model.architecture` | `transformer` | `trm` |" in text
    assert not re.search(r"\bnan\b", text, re.IGNORECASE) and "± 0 " not in text and "± 0 |" not in text
    assert "n/a (1 seed)" in text and "e+0" not in text
    params = int(summary["runs"]["trm_tiny"][0]["parameters"])
    assert f"{params:,} ± n/a (1 seed)" in text
    assert summary["summary"]["trm_tiny"]["exact_accuracy"]["std"] is None
    assert "NaN" not in (out / "ablation.json").read_text()
    assert summary["settings"]["shared"]["trainer.batch_size"] == 16


# -- arms: variant + overrides, and the named arm sets ------------------------------------------
import copy

import pytest

from agent_forge.config import apply_overrides
from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.ablation.arms import Arm, parse_arm
from agent_forge.phases.cognate.ablation.catalogue import expand_arm_sets
from agent_forge.phases.cognate.ablation.runner import resolve_arms


def test_parse_arm_keeps_commas_inside_brackets():
    assert parse_arm("no_ema=trm_paper:callbacks.ema=null") == Arm("no_ema", "trm_paper", ("callbacks.ema=null",))
    assert parse_arm("trm_tiny") == Arm("trm_tiny", "trm_tiny")
    assert parse_arm("b=trm_tiny:task.blanks=[6, 8],model.n=2,trainer.betas=[0.9, 0.95]").overrides == (
        "task.blanks=[6, 8]", "model.n=2", "trainer.betas=[0.9, 0.95]")
    for bad in ("a b=trm_tiny", "x=trm_tiny:model.n", "=trm_tiny"):
        with pytest.raises(ConfigError, match="--arm"):
            parse_arm(bad)


def _resolved(host, names, base="trm_tiny", overrides=SMALL):
    arms = expand_arm_sets(host, names, base, overrides)
    resolved, same_as, _, _ = resolve_arms(host, arms, task="sudoku4", minutes=0.01, overrides=list(overrides))
    out = {}
    for arm, full in resolved:
        raw = apply_overrides(copy.deepcopy(dict(host.get(VariantSpec, arm.variant).config)), list(full))
        out[arm.name] = raw
    return out, same_as


def test_every_arm_set_expands_to_configs_that_validate(host):
    from agent_forge.phases.cognate.config import validate_cognate

    configs, _ = _resolved(host, ["paper"])
    for name, raw in configs.items():
        validate_cognate(host, raw)  # each arm is a config the phase accepts
        assert raw["task"]["name"] == "sudoku4" and raw["trainer"]["lr"] == configs["base"]["trainer"]["lr"], name
    base = configs["base"]["model"]
    assert "ema" in configs["base"]["callbacks"] and "ema" not in configs["no_ema"]["callbacks"]
    for T, n in ((3, 6), (3, 2), (2, 6), (2, 2)):
        name = f"T{T}_n{n}"
        if name in configs:  # T3_n6 is trm_tiny itself: folded into base
            assert (configs[name]["model"]["T"], configs[name]["model"]["n"]) == (T, n)
    assert configs["mlp"]["model"]["mixer"] == "mlp_official" and configs["mlp"]["model"]["rope"] is False
    assert configs["attention"]["model"]["mixer"] == "attention" and configs["attention"]["model"]["rope"] is True
    assert configs["layers2"]["model"]["n_layers"] == 2
    nsup1 = configs["nsup1"]
    assert nsup1["model"]["n_sup"] == 1 and "act" not in nsup1["callbacks"]
    # The baseline: the TRM's width and shared-network layers (parameters), or the layers of one step (depth).
    for arm, layers in (("baseline_params", base["n_layers"]),
                        ("baseline_depth", base["n_layers"] * (base["n"] + 1) * base["T"])):
        model = configs[arm]["model"]
        assert model["architecture"] == "transformer" and model["n_layers"] == layers
        assert model["d_model"] == base["d_model"] and model["n_heads"] == base["n_heads"]
        assert "act" not in configs[arm]["callbacks"] and "ema" in configs[arm]["callbacks"]


def test_identical_arms_run_once_under_the_first_name(host):
    configs, same_as = _resolved(host, ["layers", "recursion"])  # SMALL: n_layers=1; trm_tiny: T=3, n=6
    assert "layers1" not in configs and "T3_n6" not in configs and same_as == {"base": ["layers1", "T3_n6"]}
    with pytest.raises(ConfigError, match="no such arm set"):
        expand_arm_sets(host, ["emma"], "trm_tiny")
    with pytest.raises(ConfigError, match="two different arms are named 'x'"):
        resolve_arms(host, [Arm("x", "trm_tiny"), Arm("x", "trm_tiny", ("model.n=2",))], task=None, minutes=1,
                     overrides=[])


def test_arm_sets_run_in_one_invocation(tmp_path, host):
    """--arms ema,baseline at tiny size, 2 steps per arm: four arms, each run with its own overrides."""
    out = tmp_path / "abl"
    arms = expand_arm_sets(host, ["ema", "baseline"], "trm_tiny", SMALL) + [parse_arm("n2=trm_tiny:model.n=2")]
    summary = run_ablation(host, arms, task="sudoku4", seeds=1, minutes=1.0,
                           overrides=SMALL + ["trainer.max_steps=2"], out=out, progress=False)
    assert summary["arms"] == ["base", "no_ema", "baseline_params", "baseline_depth", "n2"]
    for arm in summary["arms"]:
        config = json.loads((out / arm / "seed-0" / "config.json").read_text())["config"]
        assert config["trainer"]["max_steps"] == 2 and config["task"]["name"] == "sudoku4"
    depth = summary["summary"]["baseline_depth"]["effective_depth"]["mean"]
    assert depth == 1 * (6 + 1) * 3 and summary["summary"]["baseline_params"]["effective_depth"]["mean"] == 1
    assert summary["settings"]["per_arm"]["model.n"]["n2"] == 2
    params = {arm: summary["summary"][arm]["parameters"]["mean"] for arm in ("base", "baseline_params")}
    assert abs(params["baseline_params"] - params["base"]) <= 0.05 * params["base"], params
    text = (out / "ablation.md").read_text()
    assert "## Arms" in text and "| no_ema | `trm_tiny` | `callbacks.ema=null` |" in text


def test_ablate_command_takes_arm_sets_and_arms(tmp_path, host):
    from typer.testing import CliRunner

    from agent_forge.cli import build_app

    sets = [a for o in SMALL + ["trainer.max_steps=1"] for a in ("--set", o)]
    result = CliRunner().invoke(build_app(host), [
        "ablate", "--arms", "ema", "--base", "trm_tiny", "--arm", "wide=trm_tiny:model.d_model=24",
        "--task", "sudoku4", "--minutes", "1", "--out", str(tmp_path / "a"), *sets])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["arms"] == ["base", "no_ema", "wide"]


def _spread(mean: float, std: float | None, n: int = 3) -> dict:
    return {"mean": mean, "std": std, "n": n}


def test_the_verdict_sets_the_gap_against_the_seed_spread():
    summary = {"trm": {"exact_accuracy": _spread(0.80, 0.02)}, "baseline": {"exact_accuracy": _spread(0.50, 0.05)},
               "small": {"exact_accuracy": _spread(0.10, 0.01)}}
    said = verdict(summary)
    # best vs the runner-up: gap 0.30 against the larger spread 0.05 -> 6.0x
    assert said.startswith("trm has the highest exact accuracy") and "6.0×" in said and "baseline" in said


def test_the_verdict_falls_back_to_what_a_text_task_measures():
    # No exact accuracy (a text task with the loss evaluator only): lower eval loss wins.
    summary = {"a": {"eval_loss": _spread(2.0, 0.1)}, "b": {"eval_loss": _spread(1.5, 0.1)}}
    said = verdict(summary)
    assert said.startswith("b has the lowest eval loss") and "below a" in said and "5.0×" in said
    assert "nothing to compare" in verdict({"a": {"eval_loss": _spread(2.0, None, 1)}})


def _write_evals(run: Path, rows: list[dict]) -> None:
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps({"kind": "eval", **r}) + "\n" for r in rows))


def test_the_plot_and_report_work_without_exact_accuracy(tmp_path):
    # A text run's evaluations have token accuracy and loss, no exact accuracy (this used to raise KeyError).
    for arm in ("a", "b"):
        _write_evals(tmp_path / arm / "seed-0", [{"step": s, "elapsed_s": 6.0 * s, "raw/token_accuracy": 0.1 * s,
                                                   "raw/eval_loss": 3.0 - 0.1 * s} for s in (1, 2, 3)])
    plot(tmp_path / "ablation.png", tmp_path, ["a", "b"], 1)
    assert (tmp_path / "ablation.png").stat().st_size > 0
    summary = {arm: {"token_accuracy": _spread(v, None, 1), "steps": _spread(3, None, 1)}
               for arm, v in (("a", 0.3), ("b", 0.2))}
    text = markdown({"arms": ["a", "b"], "task": {"name": "text"}, "seeds": 1, "minutes": 1.0,
                      "settings": {"shared": {}, "per_arm": {}}, "summary": summary, "verdict": verdict(summary)})
    header = next(line for line in text.splitlines() if line.startswith("| arm |"))
    assert "token_accuracy" in header and "exact_accuracy" not in header
    assert "a has the highest token accuracy" in text


def test_jobs_run_in_parallel_processes_and_give_the_serial_results(tmp_path, host):
    from agent_forge.phases.cognate.ablation.jobs import threads_per_job

    small = [o for o in SMALL if not o.startswith("trainer.threads")] + ["trainer.max_steps=3"]
    kwargs = dict(task="sudoku4", seeds=1, minutes=1.0, overrides=small, progress=False)
    serial = run_ablation(host, ["baseline", "trm_tiny"], out=tmp_path / "serial",
                          **{**kwargs, "overrides": small + [f"trainer.threads={threads_per_job(2)}"]})
    parallel = run_ablation(host, ["baseline", "trm_tiny"], out=tmp_path / "par", jobs=2, **kwargs)
    for arm in ("baseline", "trm_tiny"):
        config = json.loads((tmp_path / "par" / arm / "seed-0" / "config.json").read_text())["config"]
        assert config["trainer"]["threads"] == threads_per_job(2)  # the cores split between the jobs
        assert (tmp_path / "par" / arm / "seed-0.log").exists()
        # Same runs, same seeds, same thread count: the same numbers, in a process of their own.
        for key in ("exact_accuracy", "token_accuracy", "final_loss", "steps"):
            assert parallel["runs"][arm][0][key] == serial["runs"][arm][0][key], (arm, key)
    assert parallel["jobs"] == 2 and "2 runs at a time" in (tmp_path / "par" / "ablation.md").read_text()


def test_a_job_that_cannot_run_names_its_log(tmp_path, host):
    from agent_forge.phases.cognate.ablation.arms import Arm

    # Two runs, so that --jobs 2 runs them as processes; only trm_tiny's config is refused.
    arms = ["trm_tiny", Arm("ok", "baseline", ("model.d_model=16",))]
    with pytest.raises(ConfigError, match=r"ablation run trm_tiny seed 0 failed .*seed-0\.log"):
        run_ablation(host, arms, task="sudoku4", seeds=1, minutes=1.0, jobs=2, progress=False,
                     overrides=SMALL + ["trainer.max_steps=2", "model.d_model=-4"], out=tmp_path / "bad")


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_finished_run_in_the_folder_is_refused_not_reported(tmp_path, host, jobs):
    # It would be counted as this ablation's run (with --jobs it used to be, silently).
    stale = tmp_path / "abl" / "trm_tiny" / "seed-0"
    stale.mkdir(parents=True)
    (stale / "result.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"already holds a finished run.*choose another --out"):
        run_ablation(host, ["baseline", "trm_tiny"], task="sudoku4", seeds=1, minutes=1.0, jobs=jobs, progress=False,
                     overrides=SMALL + ["trainer.max_steps=2"], out=tmp_path / "abl")
    assert not (tmp_path / "abl" / "baseline").exists()  # refused before any run started
