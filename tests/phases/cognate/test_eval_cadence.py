"""How often the trainer evaluates changes what it costs, not what it trains: the evaluations
during training draw no random numbers of the run and put the live weights back bit for bit, so
a run with evaluations every 2 steps sees the same batches, draws and halting as one without any,
and ends within fp32 rounding of its weights. (Not bit for bit: the evaluation's allocations move
later tensors in memory, and a CPU matrix product's last bits depend on where its operands lie;
after the first step with an evaluation before it, weights differed by ~3e-8 here.) The CPU
presets evaluate less often than they used to (docs/performance.md, "Time to accuracy")."""

import torch

from agent_forge.phases.cognate import CallbackSpec, TrainerSpec
from agent_forge.specs import DatasetSpec
from agent_forge.config import apply_overrides
from agent_forge.phases.cognate.fit import FitContext
from agent_forge.phases.cognate.phase import build_model, validate_cognate
from agent_forge.plugins.loggers import JsonlLogger
from agent_forge.plugins.variants import VARIANTS


def train(host, tmp_path, tiny, eval_every):
    raw = apply_overrides(VARIANTS["trm_tiny"][0], [*tiny, "trainer.max_steps=8", f"trainer.eval_every={eval_every}"])
    cfg = validate_cognate(host, raw)
    task = host.get(DatasetSpec, cfg.task_name).build(cfg.task, cfg.data_seed)
    model = build_model(host, cfg, task.spec, cfg.seed)
    trainer = host.get(TrainerSpec, cfg.trainer_name).build(cfg.trainer)
    fit = trainer.fit(FitContext(model=model, task=task, run_dir=tmp_path, seed=cfg.seed, host=host,
                                 callbacks={n: host.get(CallbackSpec, n).build(c) for n, c in cfg.callbacks.items()},
                                 evaluators=cfg.evaluators, progress=False, loggers=JsonlLogger(None, tmp_path)))
    assert fit.status == "completed"
    return fit.state, {n: p.detach().clone() for n, p in model.named_parameters()}


def test_evaluating_during_training_does_not_change_the_training(host, tmp_path, tiny):
    often, often_w = train(host, tmp_path / "often", tiny, 2)
    never, never_w = train(host, tmp_path / "never", tiny, "null")
    assert torch.equal(often.generator.get_state(), never.generator.get_state())  # the same draws
    assert all(torch.equal(often.batch[k], never.batch[k]) for k in often.batch)  # the same data
    assert torch.equal(often.sup_steps, never.sup_steps) and often.examples_started == never.examples_started
    assert often_w.keys() == never_w.keys()
    worst = max(float((often_w[n] - never_w[n]).abs().max()) for n in often_w)
    assert worst < 1e-5, worst
