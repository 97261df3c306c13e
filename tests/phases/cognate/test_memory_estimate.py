"""The memory estimate that refuses a run before it starts counts what checkpointed blocks keep
(docs/cognate.md, "Memory"): without that the LM presets, which fit in a few GB, were refused."""

import copy
from types import SimpleNamespace

import pytest
import torch

from agent_forge.phases.cognate import memory_estimate as mem
from agent_forge.phases.cognate.building import count_parameters
from agent_forge.phases.cognate.config import validate_cognate
from agent_forge.specs import ArchitectureSpec
from agent_forge.plugins.variants import VARIANTS


def test_checkpointed_blocks_keep_block_inputs_and_one_block_hand_computed():
    model = dict(d_model=64, n_layers=2, n=3, n_heads=4, mixer="attention", defer_logits=False)
    trainer = SimpleNamespace(batch_size=2, eval_batch_size=2)
    per_token = 40 * 64 + 2 * 4 * 8  # values per token per layer application, attention scores included
    logits = 2 * 8 * 10 * 4 * 3
    plain = mem.estimate(0, SimpleNamespace(**model, checkpoint_blocks=False), trainer, seq_len=8, vocab=10, ema=False)
    assert plain.activation_bytes == logits + 2 * 8 * per_token * 2 * 4 * 4
    ckpt = mem.estimate(0, SimpleNamespace(**model, checkpoint_blocks=True), trainer, seq_len=8, vocab=10, ema=False)
    # each of the (n+1) x L block applications keeps its input, the net 2 sums per call; one block recomputed.
    assert ckpt.activation_bytes == logits + 2 * 8 * (64 * 4 * (2 + 2) + 2 * per_token) * 4


@pytest.mark.parametrize("name", ["lm_conservative", "lm_balanced", "lm_aggressive"])
def test_the_lm_presets_are_estimated_to_fit_a_24_gb_machine(host, name):
    cfg = validate_cognate(host, copy.deepcopy(VARIANTS[name][0]))
    spec = cfg.task.task_spec()
    with torch.device("meta"):
        parameters = count_parameters(host.get(ArchitectureSpec, cfg.architecture).build(cfg.model, spec))
    est = mem.estimate(parameters, cfg.model, cfg.trainer, seq_len=spec.seq_len, vocab=spec.vocab_size, ema=True)
    assert cfg.model.checkpoint_blocks and cfg.model.defer_logits
    # What the machine of docs/performance.md ("Memory") has free; the estimate ignored the
    # checkpointing before and asked 84-207 GiB of it.
    assert est.total_bytes < 16 * 2**30, mem.gib(est.total_bytes)
    unchecked = mem.estimate(parameters, cfg.model.model_copy(update={"checkpoint_blocks": False}), cfg.trainer,
                             seq_len=spec.seq_len, vocab=spec.vocab_size, ema=True)
    assert unchecked.total_bytes > 5 * est.total_bytes
