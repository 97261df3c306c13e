"""The progressive depth curriculum (callbacks.depth): shallow training forwards early, the
configured depth for everything else."""

import json

import pytest
import torch
from pydantic import ValidationError

from agent_forge.config import apply_overrides
from agent_forge.errors import ConfigError
from agent_forge.phases.cognate import Callback, CallbackSpec, TrainerSpec
from agent_forge.phases.cognate.fit import FitContext
from agent_forge.specs import DatasetSpec
from agent_forge.phases.cognate.phase import build_model, validate_cognate
from agent_forge.plugins.callbacks.depth import DepthCurriculumCallback, DepthCurriculumConfig, stage_depth
from agent_forge.plugins.loggers import JsonlLogger
from agent_forge.plugins.variants import VARIANTS


def test_stage_depth_rounds_and_keeps_at_least_one():
    assert stage_depth(6, 3, 0.34) == (2, 1)  # the paper's first stage of (6, 3)
    assert stage_depth(6, 3, 0.67) == (4, 2)
    assert stage_depth(2, 2, 0.34) == (1, 1)
    assert stage_depth(1, 1, 0.01) == (1, 1)


@pytest.mark.parametrize("kw, word", [({"until": [0.6, 0.3], "depth": [0.5, 0.5]}, "increasing"),
                                      ({"until": [0.3], "depth": [0.5, 0.5]}, "one depth per stage"),
                                      ({"until": [0.3], "depth": [0.0]}, "depth=[0.0]"),
                                      ({"until": [1.5], "depth": [0.5]}, "(0, 1]")])
def test_bad_stages_are_refused_with_the_field_named(kw, word):
    with pytest.raises(ValidationError, match="callbacks.depth") as err:
        DepthCurriculumConfig(**kw)
    assert word in str(err.value)


class Recorder(Callback):
    """Records the depth each training forward ran at (it runs after the curriculum's on_step_start)."""

    def __init__(self):
        self.seen = []

    def on_step_start(self, trainer, state):
        self.seen.append((state.step, state.model.cfg.n, state.model.cfg.T))

    def on_eval(self, trainer, state):
        self.seen.append(("eval", state.model.cfg.n, state.model.cfg.T))


def test_training_runs_shallow_then_full_and_evaluation_always_full(host, tmp_path, tiny):
    raw = apply_overrides(VARIANTS["trm_tiny"][0], [*tiny, "model.n=3", "model.T=3", "trainer.max_steps=8",
                                                    "trainer.eval_every=2", "callbacks.depth={}",
                                                    "callbacks.depth.until=[0.25, 0.5]",
                                                    "callbacks.depth.depth=[0.34, 0.67]"])
    cfg = validate_cognate(host, raw)
    task = host.get(DatasetSpec, cfg.task_name).build(cfg.task, cfg.data_seed)
    model = build_model(host, cfg, task.spec, cfg.seed)
    recorder = Recorder()
    callbacks = {n: host.get(CallbackSpec, n).build(c) for n, c in cfg.callbacks.items()}
    callbacks["recorder"] = recorder  # after depth, so it sees the depth the forward runs at
    trainer = host.get(TrainerSpec, cfg.trainer_name).build(cfg.trainer)
    fit = trainer.fit(FitContext(model=model, task=task, run_dir=tmp_path, seed=cfg.seed, callbacks=callbacks,
                                 host=host, evaluators=cfg.evaluators, progress=False,
                                 loggers=JsonlLogger(None, tmp_path)))
    assert fit.status == "completed"
    train = [s for s in recorder.seen if s[0] != "eval"]
    # Steps 0-1 (< 25% of 8): a third of n=3, T=3; steps 2-3 (< 50%): two thirds; then all of it.
    assert train == [(0, 1, 1), (1, 1, 1), (2, 2, 2), (3, 2, 2), (4, 3, 3), (5, 3, 3), (6, 3, 3), (7, 3, 3)]
    assert {s for s in recorder.seen if s[0] == "eval"} == {("eval", 3, 3)}
    assert (model.cfg.n, model.cfg.T) == (3, 3)  # restored for the final evaluation and the artifact
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["depth/n"] for r in rows if r["kind"] == "train"] == [2.0, 3.0, 3.0, 3.0]  # depth of the next step


def test_a_model_without_a_recursion_depth_is_refused(host, tmp_path, tiny):
    tiny = [o for o in tiny if o.split("=")[0] not in ("model.n", "model.T", "model.n_sup")]  # a TRM's only
    raw = apply_overrides(VARIANTS["baseline"][0], [*tiny, "trainer.max_steps=2", "callbacks.depth={}"])
    cfg = validate_cognate(host, raw)
    task = host.get(DatasetSpec, cfg.task_name).build(cfg.task, cfg.data_seed)
    model = build_model(host, cfg, task.spec, cfg.seed)
    callbacks = {n: host.get(CallbackSpec, n).build(c) for n, c in cfg.callbacks.items()}
    trainer = host.get(TrainerSpec, cfg.trainer_name).build(cfg.trainer)
    with pytest.raises(ConfigError, match="callbacks.depth needs a recursive model"):
        trainer.fit(FitContext(model=model, task=task, run_dir=tmp_path, seed=cfg.seed, callbacks=callbacks,
                               host=host, evaluators=cfg.evaluators, progress=False,
                               loggers=JsonlLogger(None, tmp_path)))
