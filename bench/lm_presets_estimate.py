"""What the LM presets need per training step, computed without running them: parameters, the
phase's memory estimate (the one that refuses a run before it starts, docs/cognate.md "Memory"),
and the matrix-product FLOPs of one optimizer step, counted on the meta device.

    .venv/bin/python bench/lm_presets_estimate.py [lm_conservative lm_balanced lm_aggressive ...]

FLOPs (``torch.utils.flop_counter``): the step's forward (T-1 cycles without gradients, the graded
cycle, the head) and backward at the preset's batch and sequence length, plus the graded cycle's
forward once more, which ``model.checkpoint_blocks`` recomputes in the backward (counted as
forward / T: the head's share of it is small at these sizes). Not a measurement of time.
"""
import copy
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode

from agent_forge.phases.cognate import memory_estimate as mem
from agent_forge.phases.cognate.building import count_parameters
from agent_forge.phases.cognate.config import validate_cognate
from agent_forge.specs import ArchitectureSpec
from agent_forge.plugin_host import get_host
from agent_forge.plugins.variants import VARIANTS

host = get_host()
for name in sys.argv[1:] or ["lm_conservative", "lm_balanced", "lm_aggressive"]:
    cfg = validate_cognate(host, copy.deepcopy(VARIANTS[name][0]))
    spec = cfg.task.task_spec()
    with torch.device("meta"):
        parameters = count_parameters(host.get(ArchitectureSpec, cfg.architecture).build(cfg.model, spec))
    est = mem.estimate(parameters, cfg.model, cfg.trainer, seq_len=spec.seq_len, vocab=spec.vocab_size,
                       ema="ema" in cfg.callbacks)
    # The FLOPs of the same step with the full logits and no recompute (the same products), then
    # the recompute added.
    raw = copy.deepcopy(VARIANTS[name][0])
    raw["model"].update(defer_logits=False, checkpoint_blocks=False)
    plain = validate_cognate(host, raw)
    with torch.device("meta"):
        model = host.get(ArchitectureSpec, plain.architecture).build(plain.model, spec)
        batch = {"inputs": torch.zeros(cfg.trainer.batch_size, spec.seq_len, dtype=torch.long)}
        with FlopCounterMode(display=False) as fwd:
            _, out = model(model.initial_carry(batch), batch)
        with FlopCounterMode(display=False) as bwd:
            out.logits.float().logsumexp(-1).mean().backward()
    f, b = fwd.get_total_flops(), bwd.get_total_flops()
    step = f + b + (f / cfg.model.T if cfg.model.checkpoint_blocks else 0)
    print(f"{name}: {parameters:,} parameters; batch {cfg.trainer.batch_size} x {spec.seq_len} tokens;"
          f" memory estimate {mem.gib(est.total_bytes)} (state {mem.gib(est.state_bytes)}, activations"
          f" {mem.gib(est.activation_bytes)}); step {step / 1e12:.1f} TFLOP (forward {f / 1e12:.1f}, backward"
          f" {b / 1e12:.1f})")
