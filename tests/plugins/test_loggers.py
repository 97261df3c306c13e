"""Metrics loggers: TensorBoard event files read back by tensorboard's own reader, the CSV long
form, resume trimming, and a failing logger that does not stop the run."""

import csv
import json

import pytest

from agent_forge import hookimpl, run_phase
from agent_forge.loggers import Logger, LoggerSet
from agent_forge.plugin_host import load_plugins
from agent_forge.specs import LoggerSpec

STEPS = 6


@pytest.fixture(scope="module")
def tb_run(tmp_path_factory):
    from forge_testing import TINY

    out = tmp_path_factory.mktemp("tb") / "run"
    result = run_phase("cognate", variant="trm_tiny", max_steps=STEPS, progress=False, out=out,
                       loggers=("jsonl", "tensorboard", "csv"), overrides=list(TINY) + ["trainer.eval_every=3"])
    return out, result


def test_tensorboard_events_hold_the_scalars_at_the_logged_steps(tb_run):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, result = tb_run
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    jsonl = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in jsonl if r["kind"] == "train"]
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [r["step"] for r in train] == [2, 4, 6]  # TINY logs every 2 steps
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in train], rel=1e-6)
    evals = acc.Scalars("eval/raw/exact_accuracy")
    assert [e.step for e in evals] == [3, 6]
    final = acc.Scalars("final/exact_accuracy")
    assert [e.step for e in final] == [STEPS] and final[0].value == pytest.approx(result.metrics["exact_accuracy"])
    assert "report/training" in tags["images"]
    assert "config/text_summary" in tags["tensors"]


def test_csv_is_long_form_and_matches_the_jsonl(tb_run):
    out, _ = tb_run
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["kind", "step", "metric", "value"]
    losses = [(int(r["step"]), float(r["value"])) for r in rows if r["kind"] == "train" and r["metric"] == "loss"]
    jsonl = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert losses == [(r["step"], r["loss"]) for r in jsonl if r["kind"] == "train"]


def test_jsonl_and_csv_drop_rows_after_the_resume_step(tmp_path):
    from agent_forge.plugins.loggers import CsvLogger, JsonlLogger

    for cls in (JsonlLogger, CsvLogger):
        logger = cls(None, tmp_path)
        logger.start({})
        for step in (1, 2, 3, 4):
            logger.log_metrics("train", step, {"loss": float(step)})
        again = cls(None, tmp_path)
        again.start({}, resume_step=2)
        again.log_metrics("train", 3, {"loss": 30.0})
        path = tmp_path / ("metrics.jsonl" if cls is JsonlLogger else "metrics.csv")
        text = path.read_text()
        assert "30.0" in text and "4.0" not in text and text.count("\n") == (3 if cls is JsonlLogger else 4)


def test_a_failing_logger_is_dropped_and_the_run_completes(tmp_path, tiny):
    calls = []

    class Broken(Logger):
        def __init__(self, cfg, run_dir):
            pass

        def log_metrics(self, kind, step, metrics):
            calls.append(step)
            raise RuntimeError("dashboard is down")

    class Plugin:
        @staticmethod
        @hookimpl
        def forge_register_loggers(register):
            register(LoggerSpec("broken", Broken))

    host = load_plugins(entry_points=False, extra=(Plugin,))
    result = run_phase("cognate", host=host, variant="trm_tiny", max_steps=4, progress=False, out=tmp_path / "r",
                       loggers=("broken", "jsonl"), overrides=tiny + ["trainer.eval_every=null"])
    assert result.status == "completed" and calls == [2]  # called once, then dropped
    assert (tmp_path / "r" / "metrics.jsonl").read_text().count('"train"') == 2


def test_a_missing_optional_package_names_the_extra(monkeypatch, tmp_path):
    import builtins

    from agent_forge.errors import ConfigError
    from agent_forge.plugins.loggers import WandbConfig, WandbLogger

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("no wandb")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    with pytest.raises(ConfigError, match=r"agent-forge\[wandb\]"):
        WandbLogger(WandbConfig(), tmp_path)


def test_logger_set_is_silent_when_disabled(tmp_path):
    seen = []

    class Rec(Logger):
        def log_metrics(self, kind, step, metrics):
            seen.append(step)

    LoggerSet({"r": Rec()}, enabled=False).log_metrics("train", 1, {})
    LoggerSet({"r": Rec()}).log_metrics("train", 2, {})
    assert seen == [2]
