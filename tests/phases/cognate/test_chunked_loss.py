"""Memory options for large models (deferred logits with a chunked loss, checkpointed blocks)
train the same model as the plain path: the same losses and, up to fp32 summation order, the
same weights (docs/performance.md, "Memory")."""

import pytest
import torch

from agent_forge.config import apply_overrides
from agent_forge.models.protocol import ModelOutput
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate
from agent_forge.phases.cognate.chunked_loss import token_losses
from agent_forge.phases.common.losses import token_cross_entropy as common_token_cross_entropy
from agent_forge.phases.cognate.building import build_model
from agent_forge.phases.cognate.config import validate_cognate
from agent_forge.phases.cognate.fit import FitContext
from agent_forge.plugins.loggers import JsonlLogger
from agent_forge.plugins.variants import VARIANTS
from agent_forge.phases.cognate import Callback, CallbackSpec, TrainerSpec
from agent_forge.specs import DatasetSpec


def token_cross_entropy(logits, targets, ignore):
    return common_token_cross_entropy(logits, targets, "softmax", ignore)


#: lm_conservative shrunk to a tiny causal LM: vocab 300, 24 tokens, d=32.
TINY_LM = ["model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.n_kv_heads=1", "model.head_dim=null",
           "model.n=2", "model.n_sup=2", "task.seq_len=24", "task.vocab_size=300", "task.max_documents=40",
           "task.max_sequences=64", "trainer.batch_size=4", "trainer.eval_batch_size=4", "trainer.eval_samples=4",
           "trainer.eval_every=null", "trainer.log_every=1", "trainer.warmup_steps=1", "trainer.precision=fp32",
           "trainer.threads=1", "trainer.max_steps=3", "evaluators=[loss,token]"]


def _train(host, tmp_path, extra, watch=None):
    raw = apply_overrides(VARIANTS["lm_conservative"][0], TINY_LM + extra)
    cfg = validate_cognate(host, raw)
    task = host.get(DatasetSpec, cfg.task_name).build(cfg.task, cfg.data_seed)
    model = build_model(host, cfg, task.spec, cfg.seed)
    callbacks = {n: host.get(CallbackSpec, n).build(c) for n, c in cfg.callbacks.items()}
    losses = []

    class Record(Callback):
        def on_loss(self, trainer, state):
            losses.append(state.losses["lm"].detach().clone())

    callbacks["record"] = Record()
    if watch is not None:
        callbacks["watch"] = watch
    trainer = host.get(TrainerSpec, cfg.trainer_name).build(cfg.trainer)
    fit = trainer.fit(FitContext(model=model, task=task, run_dir=tmp_path, seed=cfg.seed, callbacks=callbacks,
                                 host=host, evaluators=cfg.evaluators, progress=False,
                                 loggers=JsonlLogger(None, tmp_path)))
    assert fit.status == "completed"
    return torch.stack(losses), {k: v.detach().clone() for k, v in model.state_dict().items()}


PLAIN = ["model.defer_logits=false", "model.checkpoint_blocks=false"]


@pytest.mark.parametrize("extra", [
    ["model.defer_logits=true", "model.checkpoint_blocks=false", "trainer.loss_chunk_tokens=7"],
    ["model.defer_logits=false", "model.checkpoint_blocks=true"],
    ["model.defer_logits=true", "model.checkpoint_blocks=true", "trainer.loss_chunk_tokens=32"],
], ids=["chunked_loss", "checkpointed_blocks", "both"])
def test_memory_options_train_the_same_tiny_lm(host, tmp_path, extra):
    ref_losses, ref_weights = _train(host, tmp_path / "plain", PLAIN)
    losses, weights = _train(host, tmp_path / "opt", extra)
    # The first step's loss is the same function of the same weights: the same number.
    torch.testing.assert_close(losses[0], ref_losses[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(losses, ref_losses, rtol=1e-5, atol=1e-6)
    for name, value in ref_weights.items():
        torch.testing.assert_close(weights[name], value, rtol=1e-5, atol=1e-6, msg=name)
    if extra[1].endswith("true") and extra[0].endswith("false"):
        # Recomputing a block in fp32 repeats the same operations: bit-identical training.
        assert torch.equal(losses, ref_losses)
        assert all(torch.equal(weights[k], v) for k, v in ref_weights.items())


def test_deferred_logits_give_the_same_per_token_loss_gradients_and_predictions():
    torch.manual_seed(0)
    cfg = dict(d_model=16, n_layers=1, n_heads=2, n=1, T=2, n_sup=2, causal=True, halting_head=False)
    plain = TRMEnhancedCognate(TRMConfig(**cfg), vocab_size=301, seq_len=10)
    deferred = TRMEnhancedCognate(TRMConfig(**cfg, defer_logits=True), vocab_size=301, seq_len=10)
    deferred.load_state_dict(plain.state_dict())
    g = torch.Generator().manual_seed(1)
    batch = {"inputs": torch.randint(0, 301, (3, 10), generator=g)}
    targets = torch.randint(0, 301, (3, 10), generator=g)
    targets[0, :4] = -100
    results = []
    for model in (plain, deferred):
        _, out = model(model.initial_carry(batch), batch)
        assert (out.logits is None) == (model is deferred)
        loss, pred = token_losses(out, targets, -100, token_cross_entropy, chunk_tokens=4)
        loss.sum().backward()
        results.append((loss.detach(), pred, {k: p.grad.clone() for k, p in model.named_parameters()}))
        assert torch.equal(out.full_logits().argmax(-1), pred)
    (l0, p0, g0), (l1, p1, g1) = results
    torch.testing.assert_close(l1, l0, rtol=0, atol=1e-6)
    assert torch.equal(p0, p1)
    assert float(l0[0, :4].abs().max()) == 0.0  # ignored targets cost nothing
    for k in g0:
        # fp32 rounding only: the matrix products are summed in another order (~1e-6 of up to 13).
        torch.testing.assert_close(g1[k], g0[k], rtol=1e-5, atol=1e-5, msg=k)


def test_model_output_needs_logits_or_hidden_and_head():
    with pytest.raises(ValueError, match="hidden and head"):
        ModelOutput(None)
    h = torch.randn(2, 3, 4)
    out = ModelOutput(None, hidden=h, head=torch.nn.Linear(4, 5))
    assert out.full_logits().shape == (2, 3, 5)


def test_bf16_autocast_keeps_fp32_master_weights_gradients_and_optimizer_state(host, tmp_path):
    """trainer.precision=bf16 is the CUDA recipe (bf16 activations, fp32 master weights), run here
    with the CPU's autocast as its stand-in, on the LM presets' path (chunked loss, checkpointed
    blocks): the recursion's matrix products give bf16 (the norms' fp32 residual stream is
    autocast's own choice); the loss, every weight, gradient and Adam
    moment stay fp32; and it trains the fp32 model to bf16 accuracy."""
    seen: dict[str, set] = {"matmul": set(), "loss": set(), "params": set(), "grads": set(), "moments": set()}

    def record(module, args, output):
        if torch.is_grad_enabled():  # the training steps' graded cycle, not evaluation (no_grad)
            seen["matmul"].add(output.dtype)

    class Watch(Callback):
        def on_fit_start(self, trainer, state):
            for block in state.model.net.blocks:  # the attention's and the SwiGLU's output projections
                block.mixer.register_forward_hook(record)
                block.mlp.register_forward_hook(record)

        def on_loss(self, trainer, state):
            seen["loss"].add(state.losses["lm"].dtype)

        def on_step_end(self, trainer, state):
            params = list(state.model.parameters())
            seen["params"] |= {p.dtype for p in params}
            seen["grads"] |= {p.grad.dtype for p in params if p.grad is not None}
            seen["moments"] |= {v.dtype for s in state.optimizer.state.values() for v in s.values()
                                if torch.is_tensor(v) and v.dim() > 0}

    memory = ["model.defer_logits=true", "model.checkpoint_blocks=true", "trainer.loss_chunk_tokens=32"]
    losses, weights = _train(host, tmp_path / "bf16", memory + ["trainer.precision=bf16"], watch=Watch())
    assert seen["matmul"] == {torch.bfloat16}
    assert seen["loss"] == seen["params"] == seen["grads"] == seen["moments"] == {torch.float32}
    assert all(w.dtype == torch.float32 for w in weights.values() if w.is_floating_point())
    ref_losses, _ = _train(host, tmp_path / "fp32", memory)
    # bf16 keeps 8 bits of mantissa: the same losses to ~1%, not bit for bit.
    torch.testing.assert_close(losses, ref_losses, rtol=2e-2, atol=0)
    assert not torch.equal(losses, ref_losses)  # the activations really were rounded
