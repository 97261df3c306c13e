"""trainer.optimizer=muon: which parameters Muon trains and which AdamW does (nanochat's split)."""

import torch

from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate
from agent_forge.phases.cognate.optimizers import build_optimizer, muon_split
from agent_forge.phases.cognate.training_config import DeepSupervisionConfig


def _model():
    torch.manual_seed(0)
    cfg = TRMConfig(d_model=16, n_layers=2, n_heads=2, n=1, T=1, n_sup=2, halting_head=True)
    return TRMEnhancedCognate(cfg, vocab_size=11, seq_len=8, causal=True)


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest():
    model = _model()
    muon, adamw = muon_split(model)
    assert sorted(muon) == sorted(f"net.blocks.{i}.{w}.weight" for i in range(2)
                                  for w in ("mixer.qkv", "mixer.out", "mlp.gate_up", "mlp.down"))
    # Embedding, the answer head and the Q-head (a matrix and its bias) stay with AdamW.
    assert {"embed.weight", "head.weight", "q_head.weight", "q_head.bias"} <= set(adamw)
    assert all(p.dim() == 2 for p in muon.values())
    assert len(muon) + len(adamw) == len(list(model.parameters()))


def test_the_muon_optimizer_steps_both_sets_and_round_trips_its_state():
    model = _model()
    opt = build_optimizer(model, DeepSupervisionConfig(max_steps=1, optimizer="muon", lr=0.01))
    assert isinstance(opt.muon, torch.optim.Muon) and isinstance(opt.adamw, torch.optim.AdamW)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = {"inputs": torch.randint(0, 11, (2, 8))}
    _, out = model(model.initial_carry(batch), batch)
    (out.logits.square().mean() + out.q_halt_logits.square().mean()).backward()
    opt.step()
    for name in ("net.blocks.0.mixer.qkv.weight", "embed.weight", "head.weight"):
        assert not torch.equal(before[name], dict(model.named_parameters())[name]), name
    fresh = build_optimizer(model, DeepSupervisionConfig(max_steps=1, optimizer="muon", lr=0.01))
    fresh.load_state_dict(opt.state_dict())
    assert set(fresh.state_dict()) == {"muon", "adamw"}
