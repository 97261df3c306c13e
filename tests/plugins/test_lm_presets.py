"""The ``lm_*`` presets as seed 002 writes them, and ``n_sup_inference`` as evaluation reads it."""

import pytest
import torch

from agent_forge.phases.cognate.config import validate_cognate
from agent_forge.plugins.variants import VARIANTS
from agent_forge.specs import ArchitectureSpec

# Seed 002's configs A-D and its control ("current"): layers, width, n, T, N_sup, sequence_len.
SEED_002 = {
    "lm_conservative": (12, 768, 3, 2, 8, 1024),
    "lm_balanced": (16, 1024, 4, 2, 8, 1024),
    "lm_aggressive": (20, 1024, 4, 2, 12, 1024),
    "lm_cloud": (24, 1536, 4, 2, 12, 2048),
    "lm_baseline_70m": (12, 768, 2, 1, 4, 1024),
}


@pytest.mark.parametrize("variant", sorted(SEED_002))
def test_lm_presets_have_the_seed_002_fields(host, variant):
    cfg = validate_cognate(host, VARIANTS[variant][0])
    layers, width, n, T, n_sup, seq_len = SEED_002[variant]
    m = cfg.model
    assert (m.n_layers, m.d_model, m.n, m.T, m.n_sup, m.n_kv_heads) == (layers, width, n, T, n_sup, 4)
    assert m.n_sup_inference == n_sup  # "match training"
    assert cfg.task.seq_len == seq_len and cfg.task.vocab_size == 50304
    assert cfg.trainer.supervision_weight_base == 5.0
    assert cfg.trainer.improvement_reward_scale == 1.0
    assert "loss" in cfg.evaluators  # held-out perplexity and bits per byte


def test_the_control_has_config_a_s_parameters(host):
    # Recursion counts add no parameters: the control and config A are the same network.
    counts = {}
    for variant in ("lm_baseline_70m", "lm_conservative"):
        cfg = validate_cognate(host, VARIANTS[variant][0])
        with torch.device("meta"):
            model = host.get(ArchitectureSpec, cfg.architecture).build(cfg.model, cfg.task.task_spec())
        counts[variant] = sum(p.numel() for p in model.parameters())
    assert counts["lm_baseline_70m"] == counts["lm_conservative"]
    # Not the seed's "70M": its name is the seed's, its count is this (untied 50304 x 768 embedding and
    # head are 77.3M of it; docs/performance.md).
    assert counts["lm_baseline_70m"] == 152_764_416


def _tiny_lm(**model):
    from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate

    torch.manual_seed(0)
    cfg = TRMConfig(d_model=16, n_layers=1, n_heads=2, n=1, T=1, halting_head=False, **model)
    return TRMEnhancedCognate(cfg, vocab_size=11, seq_len=8, causal=True)


def test_evaluation_and_samples_run_n_sup_inference_steps():
    from agent_forge.data import Split, TaskData
    from agent_forge.contracts import TaskSpec
    from agent_forge.phases.common.evaluation import EvalContext, inference_steps

    assert inference_steps(_tiny_lm(n_sup=2)) == 2  # default: n_sup
    model = _tiny_lm(n_sup=2, n_sup_inference=5)
    assert inference_steps(model) == 5
    x = torch.randint(0, 11, (3, 8))
    spec = TaskSpec(name="t", kind="lm", vocab_size=11, seq_len=8, causal=True)
    task = TaskData(spec=spec, train=Split(x, x), eval=Split(x, x))
    assert EvalContext(model, task, torch.device("cpu")).predictions().n_sup == 5
    # An explicit --n-sup still wins.
    assert EvalContext(model, task, torch.device("cpu"), n_sup=1).predictions().n_sup == 1
