"""Mixture-of-Heads attention (``mixer="moh"``): every token routes to a learned subset of heads.

A router reads each token's hidden state and gives a distribution over the heads,
``p = softmax(router(h) / tau)`` with a learned temperature ``tau``. The heads are ranked by
``p`` and a token takes heads from the top until their mass reaches a learned threshold
``theta`` (top-p routing): head k of the ranking is active when the mass of the heads ranked
above it is below ``theta``. The first head is always active, so a token uses 1 to H heads, and
how many depends on the token (a peaked ``p`` needs fewer heads to reach ``theta``). Active head
h contributes ``H * p_h`` times its output (inactive heads 0), so with a uniform router and every
head active the layer is exactly standard multi-head attention, which is where it starts (the
router is initialised at zero and ``theta`` near 1).

Routing is differentiable by a straight-through mask: the forward pass uses the hard 0/1 mask,
the backward pass the gradient of the soft mask ``sigmoid((theta - mass_above) / MASK_WIDTH)``,
so the task loss reaches the threshold, the temperature and the router. All heads are computed
and then weighted (dense): the routing decides what each token reads, not how many FLOPs it
costs here.

Three auxiliary losses, each averaged over the calls of one forward that build a graph (the
model weighs and returns them as ``ModelOutput.aux_losses``):

* ``balance``: ``H * sum_h f_h * P_h`` (Switch Transformer's load balance), ``f_h`` the share of
  head activations that went to head h (hard, no gradient), ``P_h`` the mean router probability
  of head h; 1 when every head is used equally, up to H when one takes everything.
* ``complexity``: the mean number of active heads per token over H (1 = every head), forward
  value of the hard count with the soft mask's gradient: it pushes ``theta`` down.
* ``sparsity``: the entropy of ``p`` per token over ``log H`` (1 = uniform, 0 = one head): it
  makes the routing peaked (the router and ``tau``), so fewer heads reach ``theta``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from agent_forge.models.layers import Attention, KVCache, Linear, RotaryEmbedding

#: Width of the soft mask around the threshold (in probability mass): the straight-through
#: gradient of a head whose mass-above is within ~2 widths of theta.
MASK_WIDTH = 0.1
#: Clamp of the router temperature.
TEMPERATURE_RANGE = (0.05, 20.0)
AUX_NAMES = ("balance", "complexity", "sparsity")


class MoHAttention(Attention):
    """Self-attention whose heads are routed per token (module docstring): an
    :class:`~agent_forge.models.layers.Attention` (same ``qkv``/``out`` projections and heads)
    plus ``router``, ``threshold_logit`` (theta = sigmoid of it) and ``log_temperature``
    (1-element tensors, not 0-d, so FSDP can shard them).

    Every call appends its routing statistics to ``self.calls`` (detached, except the auxiliary
    losses of a call that builds a graph); the model clears it at the start of its forward with
    :meth:`reset` and reads it with :func:`aux_losses` and :func:`layer_metrics`.
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, causal: bool,
                 rotary: RotaryEmbedding | None, head_dim: int | None = None, *,
                 threshold_init: float = 0.9, temperature_init: float = 1.0) -> None:
        super().__init__(d_model, n_heads, n_kv_heads, causal, rotary, head_dim)
        if not 0 < threshold_init < 1:
            raise ValueError(f"threshold_init {threshold_init} must be in (0, 1)")
        self.router = Linear(d_model, n_heads, bias=True)
        nn.init.zeros_(self.router.weight)  # uniform routing at the start: plain attention
        self.threshold_logit = nn.Parameter(torch.tensor([math.log(threshold_init / (1 - threshold_init))]))
        self.log_temperature = nn.Parameter(torch.tensor([math.log(temperature_init)]))
        self.calls: list[dict[str, torch.Tensor]] = []

    def reset(self) -> None:
        self.calls = []

    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp().clamp(*TEMPERATURE_RANGE)

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Router probabilities ``p``, the straight-through mask and the hard mask, each
        (batch, seq, heads), in fp32."""
        p = F.softmax(self.router(x).float() / self.temperature(), dim=-1)
        ranked, order = p.sort(dim=-1, descending=True, stable=True)
        above = ranked.cumsum(-1) - ranked  # mass of the heads ranked above each one
        theta = torch.sigmoid(self.threshold_logit.float())
        soft_ranked = torch.sigmoid((theta - above) / MASK_WIDTH)
        hard_ranked = (above < theta).to(p.dtype)
        soft = torch.zeros_like(p).scatter(-1, order, soft_ranked)
        hard = torch.zeros_like(p).scatter(-1, order, hard_ranked)
        return p, hard + soft - soft.detach(), hard

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """``cache``: as :meth:`Attention.heads` (the routing reads each token alone, so it needs
        none); a cached call records no routing statistics (decoding reads none)."""
        b, s, _ = x.shape
        y = self.heads(x, cache)  # as Attention, up to the per-head outputs (b, heads, s, head_dim)
        p, mask, hard = self.route(x)
        weight = self.n_heads * mask * p  # (b, s, heads)
        y = y.transpose(1, 2) * weight.unsqueeze(-1).to(y.dtype)  # (b, s, heads, head_dim)
        if cache is None:
            self._record(p, mask, hard)
        return self.out(y.reshape(b, s, self.n_heads * self.head_dim))

    def _record(self, p: torch.Tensor, mask: torch.Tensor, hard: torch.Tensor) -> None:
        call = {"heads": hard.sum(-1).mean().detach(), "temperature": self.temperature().detach().reshape(()),
                "threshold": torch.sigmoid(self.threshold_logit.detach().float()).reshape(())}
        h = self.n_heads
        usage = hard.flatten(0, -2).sum(0)  # activations per head
        share = usage / usage.sum()
        balance = h * (share * p.flatten(0, -2).mean(0)).sum()
        complexity = mask.sum(-1).mean() / h
        entropy = -(p * p.clamp_min(1e-9).log()).sum(-1).mean()
        sparsity = entropy / math.log(h) if h > 1 else entropy * 0
        values = {"balance": balance, "complexity": complexity, "sparsity": sparsity}
        if torch.is_grad_enabled():
            call.update({f"aux/{k}": v for k, v in values.items()})
        call.update({k: v.detach() for k, v in values.items()})
        self.calls.append(call)


def moh_layers(model: nn.Module) -> list[MoHAttention]:
    """The model's MoH mixers in module order (the model's layers)."""
    return [m for m in model.modules() if isinstance(m, MoHAttention)]


def reset(layers: list[MoHAttention]) -> None:
    for layer in layers:
        layer.reset()


def aux_losses(layers: list[MoHAttention], weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """``moh_<name>``: ``weights[name]`` times the mean of that loss over every call that built a
    graph, in every layer. Empty when no call did (a forward under ``no_grad``); a weight of 0
    still returns its term (zero), so the set of losses does not depend on the weights."""
    out: dict[str, torch.Tensor] = {}
    for name in AUX_NAMES:
        terms = [c[f"aux/{name}"] for layer in layers for c in layer.calls if f"aux/{name}" in c]
        if terms:
            out[f"moh_{name}"] = weights[name] * torch.stack(terms).mean()
    return out


def layer_metrics(layers: list[MoHAttention], positions: int | None = None) -> dict[str, float]:
    """Routing metrics of the last forward: ``moh/heads`` (mean active heads per token, over
    every call), per layer ``moh/l{i}/heads``, ``moh/l{i}/temperature``, ``moh/l{i}/threshold``,
    the unweighted auxiliary losses ``moh/{balance,complexity,sparsity}``, and with
    ``positions`` P (a recursive model whose net runs at positions 0..P-1 in turn) the mean
    active heads at each position, ``moh/l{i}/p{j}/heads``."""
    out: dict[str, float] = {}
    every: list[torch.Tensor] = []
    for i, layer in enumerate(layers):
        if not layer.calls:
            continue
        heads = [c["heads"] for c in layer.calls]
        every.extend(heads)
        out[f"moh/l{i}/heads"] = float(torch.stack(heads).mean())
        last = layer.calls[-1]
        out[f"moh/l{i}/temperature"] = float(last["temperature"])
        out[f"moh/l{i}/threshold"] = float(last["threshold"])
        if positions:
            for j in range(positions):
                at = heads[j::positions]
                if at:
                    out[f"moh/l{i}/p{j}/heads"] = float(torch.stack(at).mean())
    if every:
        out["moh/heads"] = float(torch.stack(every).mean())
        for name in AUX_NAMES:
            values = [c[name] for layer in layers for c in layer.calls]
            out[f"moh/{name}"] = float(torch.stack(values).mean())
    return out
