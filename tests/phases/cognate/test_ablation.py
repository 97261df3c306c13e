import json
import re

from agent_forge.phases.cognate.ablation import run_ablation

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
