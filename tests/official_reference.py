"""An independent reading of the official TRM forward pass, for the import tests.

Written from the official model's definition (its config fields, tensor names and order of
operations), not from agent-forge's model: it works on the official state dict directly, so a
wrong entry in the import's tensor map shows up as a difference. It also makes official-layout
checkpoints (``step_N`` + ``all_config.yaml``) from random tensors.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml

ARCH_NAME = "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"


def arch(**kw: Any) -> dict[str, Any]:
    base = {"name": ARCH_NAME, "loss": {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"},
            "H_cycles": 2, "L_cycles": 2, "H_layers": 0, "L_layers": 2, "hidden_size": 16, "expansion": 4,
            "num_heads": 2, "pos_encodings": "rope", "halt_max_steps": 4, "halt_exploration_prob": 0.1,
            "forward_dtype": "bfloat16", "mlp_t": False, "puzzle_emb_len": 4, "puzzle_emb_ndim": 16,
            "no_ACT_continue": True}
    base.update(kw)
    return base


def prefix_len(a: dict[str, Any]) -> int:
    return a["puzzle_emb_len"] or -(-a["puzzle_emb_ndim"] // a["hidden_size"])


def _swiglu_width(width: int, expansion: float) -> int:
    return 256 * math.ceil(round(expansion * width * 2 / 3) / 256)


def random_state(a: dict[str, Any], *, vocab: int, seq_len: int, puzzles: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every tensor the official model saves (names relative to ``model.inner.``), random."""
    g = torch.Generator().manual_seed(seed)
    d, length = a["hidden_size"], seq_len + prefix_len(a)

    def rand(*shape: int, std: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    dtype = getattr(torch, a["forward_dtype"])
    s = {"embed_tokens.embedding_weight": rand(vocab, d), "lm_head.weight": rand(vocab, d),
         "q_head.weight": rand(2, d, std=0.1), "q_head.bias": rand(2),
         "H_init": rand(d, std=1.0).to(dtype), "L_init": rand(d, std=1.0).to(dtype)}
    if a["pos_encodings"] == "learned":
        s["embed_pos.embedding_weight"] = rand(length, d)
    if a["puzzle_emb_ndim"]:
        s["puzzle_emb.weights"] = rand(puzzles, a["puzzle_emb_ndim"], std=0.5)
    hidden_c = _swiglu_width(d, a["expansion"])
    for i in range(a["L_layers"]):
        p = f"L_level.layers.{i}."
        if a["mlp_t"]:
            hidden_t = _swiglu_width(length, a["expansion"])
            s[p + "mlp_t.gate_up_proj.weight"] = rand(2 * hidden_t, length, std=length ** -0.5)
            s[p + "mlp_t.down_proj.weight"] = rand(length, hidden_t, std=hidden_t ** -0.5)
        else:
            s[p + "self_attn.qkv_proj.weight"] = rand(3 * d, d, std=d ** -0.5)
            s[p + "self_attn.o_proj.weight"] = rand(d, d, std=d ** -0.5)
        s[p + "mlp.gate_up_proj.weight"] = rand(2 * hidden_c, d, std=d ** -0.5)
        s[p + "mlp.down_proj.weight"] = rand(d, hidden_c, std=hidden_c ** -0.5)
    return s


def write_checkpoint(folder: Path, a: dict[str, Any], state: dict[str, torch.Tensor], *, step: int = 100,
                     compiled: bool = True, **config: Any) -> Path:
    """``folder/step_N`` and ``folder/all_config.yaml`` as the official pretrain.py writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "_orig_mod.model.inner." if compiled else "model.inner."
    path = folder / f"step_{step}"
    torch.save({prefix + k: v for k, v in state.items()}, path)
    full = {"arch": a, "data_paths": ["data/none"], "global_batch_size": 8, "epochs": 10, "lr": 1e-4,
            "ema": False, **config}
    (folder / "all_config.yaml").write_text(yaml.dump(full))
    return path


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-5)


def _swiglu(x: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
    g, u = F.linear(x, gate_up).chunk(2, dim=-1)
    return F.linear(F.silu(g) * u, down)


def forward(s: dict[str, torch.Tensor], a: dict[str, Any], inputs: torch.Tensor, puzzle_ids: torch.Tensor,
            steps: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(logits, q_halt, q_continue) after each of ``steps`` supervision steps, in fp32, eval mode."""
    s = {k: v.float() for k, v in s.items()}
    d, heads = a["hidden_size"], a["num_heads"]
    P = prefix_len(a)
    b, seq = inputs.shape
    length = seq + P
    x = s["embed_tokens.embedding_weight"][inputs]
    if a["puzzle_emb_ndim"]:
        row = s["puzzle_emb.weights"][puzzle_ids]
        row = F.pad(row, (0, P * d - row.shape[-1]))
        x = torch.cat((row.view(b, P, d), x), dim=1)
    if a["pos_encodings"] == "learned":
        x = 0.707106781 * (x + s["embed_pos.embedding_weight"])
    x = math.sqrt(d) * x
    hd = d // heads
    inv = 1.0 / (a.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    freqs = torch.outer(torch.arange(length, dtype=torch.float32), inv)
    cos, sin = torch.cat((freqs, freqs), -1).cos(), torch.cat((freqs, freqs), -1).sin()

    def rotate(t: torch.Tensor) -> torch.Tensor:  # t: (b, length, heads, hd)
        half = torch.cat((-t[..., hd // 2:], t[..., : hd // 2]), dim=-1)
        return t * cos.unsqueeze(-2) + half * sin.unsqueeze(-2)

    def block(i: int, h: torch.Tensor) -> torch.Tensor:
        p = f"L_level.layers.{i}."
        if a["mlp_t"]:
            t = h.transpose(1, 2)
            h = _rms(t + _swiglu(t, s[p + "mlp_t.gate_up_proj.weight"], s[p + "mlp_t.down_proj.weight"])).transpose(1, 2)
        else:
            qkv = F.linear(h, s[p + "self_attn.qkv_proj.weight"]).view(b, length, 3 * heads, hd)
            q, k, v = qkv[:, :, :heads], qkv[:, :, heads:2 * heads], qkv[:, :, 2 * heads:]
            if a["pos_encodings"] == "rope":
                q, k = rotate(q), rotate(k)
            att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
            h = _rms(h + F.linear(att.transpose(1, 2).reshape(b, length, d), s[p + "self_attn.o_proj.weight"]))
        return _rms(h + _swiglu(h, s[p + "mlp.gate_up_proj.weight"], s[p + "mlp.down_proj.weight"]))

    def net(h: torch.Tensor, inj: torch.Tensor) -> torch.Tensor:
        h = h + inj
        for i in range(a["L_layers"]):
            h = block(i, h)
        return h

    zh = s["H_init"].expand(b, length, d)
    zl = s["L_init"].expand(b, length, d)
    out = []
    for _ in range(steps):
        for _ in range(a["H_cycles"]):
            for _ in range(a["L_cycles"]):
                zl = net(zl, zh + x)
            zh = net(zh, zl)
        logits = F.linear(zh, s["lm_head.weight"])[:, P:]
        q = F.linear(zh[:, 0], s["q_head.weight"], s["q_head.bias"])
        out.append((logits, q[:, 0], q[:, 1]))
    return out
