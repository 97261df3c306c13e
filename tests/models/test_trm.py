import pytest
import torch

from agent_forge.models import layers
from agent_forge.models.transformer import TransformerBaseline, TransformerConfig
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate
from agent_forge.specs import ArchitectureSpec

TASK = {"vocab_size": 7, "seq_len": 12}


def _batch(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"inputs": torch.randint(0, 7, (b, 12), generator=g)}


def _model(**kw):
    torch.manual_seed(0)
    cfg = dict(d_model=16, n_layers=2, n_heads=2, n=2, T=3, n_sup=4)
    cfg.update(kw)
    return TRMEnhancedCognate(TRMConfig(**cfg), **TASK)


def _count_net_calls(model):
    calls = []
    model.net.register_forward_hook(lambda mod, args, out: calls.append(torch.is_grad_enabled()))
    return calls


def test_only_the_last_cycle_builds_a_graph():
    model = _model()
    calls = _count_net_calls(model)
    batch = _batch()
    carry = model.initial_carry(batch)
    _, out = model(carry, batch)
    n, T = model.cfg.n, model.cfg.T
    assert calls == [False] * ((T - 1) * (n + 1)) + [True] * (n + 1)
    out.logits.sum().backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    # The same gradients from running T-1 cycles as constants and one differentiable cycle.
    model.zero_grad()
    x = model.embed(batch["inputs"])
    y, z = carry["y"], carry["z"]
    with torch.no_grad():
        for _ in range(T - 1):
            y, z = model.cycle(x, y, z)
    y, z = model.cycle(x, y.detach(), z.detach())
    model.head(y).sum().backward()
    for k, g in grads.items():
        torch.testing.assert_close(model.get_parameter(k).grad, g)


def test_carry_is_detached():
    model = _model()
    batch = _batch()
    carry, out = model(model.initial_carry(batch), batch)
    assert out.logits.requires_grad
    assert all(not v.requires_grad and v.grad_fn is None for v in carry.values())


@pytest.mark.parametrize("n,T", [(1, 1), (2, 3), (4, 2)])
def test_compute_scales_with_n_and_T(n, T):
    model = _model(n=n, T=T)
    blocks = []
    for block in model.net.blocks:
        block.register_forward_hook(lambda *a: blocks.append(1))
    batch = _batch()
    model(model.initial_carry(batch), batch)
    assert len(blocks) == model.cfg.n_layers * (n + 1) * T
    assert model.cfg.effective_depth() == model.cfg.n_layers * (n + 1) * T * model.cfg.n_sup


@pytest.mark.parametrize("causal", [True, False])
def test_causal_output_ignores_the_future_and_bidirectional_does_not(causal):
    model = _model(causal=causal).eval()
    a = _batch(b=1)
    b = {"inputs": a["inputs"].clone()}
    t = 5
    b["inputs"][0, t + 1:] = (a["inputs"][0, t + 1:] + 1) % 7
    with torch.no_grad():
        la = model(model.initial_carry(a), a)[1].logits
        lb = model(model.initial_carry(b), b)[1].logits
    same_prefix = torch.allclose(la[0, :t + 1], lb[0, :t + 1], atol=1e-5)
    assert same_prefix == causal


def test_mlp_mixer_refuses_causal():
    with pytest.raises(ValueError, match="bidirectional"):
        TRMConfig(mixer="mlp", causal=True)


def test_q_head_starts_at_keep_going():
    model = _model()
    batch = _batch()
    _, out = model(model.initial_carry(batch), batch)
    assert torch.allclose(out.q_halt_logits, torch.full((3,), -5.0))


def test_without_a_halting_head_there_is_no_q_head_and_no_halting_logit():
    with_head, without = _model(), _model(halting_head=False)
    assert without.q_head is None and not any(n.startswith("q_head") for n in without.state_dict())
    d = with_head.cfg.d_model
    assert sum(p.numel() for p in with_head.parameters()) - sum(p.numel() for p in without.parameters()) == d + 1
    batch = _batch()
    _, out = without(without.initial_carry(batch), batch)
    assert out.q_halt_logits is None and out.logits.shape == (3, 12, 7)
    out.logits.sum().backward()  # every parameter the model has is reached by the loss
    assert all(p.grad is not None for p in without.parameters())


def test_the_default_keeps_the_halting_head_so_older_weights_load_strictly():
    assert TRMConfig().halting_head is True
    older = _model().state_dict()  # weights saved before the option existed had a q_head
    _model().load_state_dict(older, strict=True)
    with pytest.raises(RuntimeError, match="q_head"):
        _model(halting_head=False).load_state_dict(older, strict=True)


def test_step_scales_are_clamped_and_reported():
    model = _model(step_scales=True, step_scale_min=0.05, step_scale_max=0.5)
    with torch.no_grad():
        model.net.scales.fill_(3.0)
    values = model.step_scale_values()
    assert values and all(v == 0.5 for v in values.values())
    batch = _batch()
    model(model.initial_carry(batch), batch)[1].logits.sum().backward()
    assert model.net.scales.grad is not None


def test_gqa_and_memory_options_build_and_run():
    model = _model(n_heads=4, n_kv_heads=2, memory="full", memory_capacity=4)
    batch = _batch()
    carry, out = model(model.initial_carry(batch), batch)
    assert out.logits.shape == (3, 12, 7)
    written = model.memory.write(carry["z"].mean(dim=1), torch.tensor([1.0, 0.0, 2.0]), threshold=0.5)
    assert written == 2 and int(model.memory.filled.sum()) == 2


def test_baseline_and_trm_share_layer_code():
    trm = _model()
    base = TransformerBaseline(TransformerConfig(d_model=16, n_layers=3, n_heads=2), **TASK)
    assert type(trm.net.blocks[0]) is type(base.blocks[0]) is layers.Block
    assert type(trm.embed) is type(base.embed) is layers.TokenEmbedding
    batch = _batch()
    carry, out = base(base.initial_carry(batch), batch)
    assert carry == {} and out.q_halt_logits is None and base.n_sup == 1


# The official count, from the official code's structure (models/recursive_reasoning/trm.py,
# models/layers.py): d = 512, expansion 4, L_layers 2, no biases except the Q-head's.
#   embed_tokens        vocab x 512             Sudoku: vocab 11 (PAD + "0".."9") -> 5,632; ARC: 12 -> 6,144
#   lm_head             512 x vocab, no bias    Sudoku: 5,632; ARC: 6,144
#   q_head              512 x 2 + 2 (halt, continue)                    = 1,026
#   puzzle_emb          a buffer, not a parameter                        = 0
#   pos_encodings       none / rope: no parameters                       = 0
#   per block, channel SwiGLU: hidden = ceil256(round(4 * 512 * 2/3) = 1365) = 1536
#       gate_up 512 x 3072 = 1,572,864; down 1536 x 512 = 786,432      = 2,359,296
#   per block, mlp_t (Sudoku, L = 81 + 16 = 97): hidden = ceil256(round(4 * 97 * 2/3) = 259) = 512
#       gate_up 97 x 1024 = 99,328; down 512 x 97 = 49,664             = 148,992
#   per block, attention: qkv 512 x 1536 = 786,432; o 512 x 512 = 262,144 = 1,048,576
# Sudoku MLP:       2 x (148,992 + 2,359,296) = 5,016,576; + 5,632 + 5,632 + 1,026 = 5,028,866
# Sudoku attention: 2 x (1,048,576 + 2,359,296) = 6,815,744; + 5,632 + 5,632 + 1,026 = 6,828,034
# ARC attention:    6,815,744 + 6,144 + 6,144 + 1,026 = 6,829,058
OFFICIAL = {"trm_paper": 5_028_866, "trm_paper_attention": 6_828_034, "trm_arc": 6_829_058}
# Where ours differs, term by term (everything else is equal):
#   vocab: our Sudoku has no PAD token, 10 rows not 11, in embedding and head: -2 x 512 on Sudoku, 0 on ARC
#   q_head: one output (halt; the official "continue" output is unused with no_ACT_continue) -> -(512 + 1)
#   the puzzle table is a parameter (trained by sign-SGD, outside AdamW and EMA): + num_puzzle_ids x 512
#       (Sudoku: 1 id -> +512; ARC-AGI-1 with 8 augmentations: 1 + 800 x 9 = 7,201 ids)
DIFFERENCE = {"trm_paper": -1024 - 513 + 512, "trm_paper_attention": -1024 - 513 + 512,
              "trm_arc": -513 + 7_201 * 512}


@pytest.mark.parametrize("variant", sorted(OFFICIAL))
def test_paper_presets_have_the_official_parameter_count_plus_exactly_the_stated_terms(host, variant):
    from agent_forge.phases.cognate.phase import validate_cognate
    from agent_forge.plugins.variants import VARIANTS

    cfg = validate_cognate(host, VARIANTS[variant][0])
    spec = cfg.task.task_spec()  # the dataset config says its spec without building the data
    with torch.device("meta"):
        model = host.get(ArchitectureSpec, cfg.architecture).build(cfg.model, spec)
    count = sum(p.numel() for p in model.parameters())
    assert count == OFFICIAL[variant] + DIFFERENCE[variant]
    # The terms that differ are exactly these tensors.
    assert model.q_head.weight.shape == (1, 512)
    assert model.embed.puzzle.shape == (spec.info.get("num_puzzle_ids", 1), 512)
    assert model.embed.weight.shape[0] == (10 if variant != "trm_arc" else 12)


def test_memory_weights_saved_with_a_0d_gate_still_load():
    model = _model(memory="latent", memory_capacity=4)
    state = model.state_dict()
    state["memory.gate"] = torch.tensor(0.25)  # how the gate was stored before it had a dimension
    fresh = _model(memory="latent", memory_capacity=4)
    fresh.load_state_dict(state)
    assert fresh.memory.gate.shape == (1,) and float(fresh.memory.gate.detach()) == 0.25
