"""TRMEnhancedCognate: a Tiny Recursive Model ("Less is More", Jolicoeur-Martineau 2025).

One small shared network ``net`` (``n_layers`` post-norm blocks) refines two states: the answer
``y`` and a latent ``z``. One call of :meth:`forward` is one *supervision step*::

    x = embed(inputs)                     # at inference once per carry (initial_carry), not per step
    no_grad: repeat T-1 times: y, z = cycle(x, y, z)
    y, z = cycle(x, y, z)                 # the only cycle that builds a graph
    return (y, z).detach(), head(y), q_head(y)    # q_head only with halting_head=True

    cycle(x, y, z): repeat n times: z = net(z, x + y)   # think
                    y = net(y, z)                        # answer

With ``noise`` (:class:`~agent_forge.models.protocol.LatentNoise`, inference-time exploration)
``z`` is perturbed after every one of its ``n`` updates in every cycle; ``y`` never is.

Effective depth per supervision step is ``n_layers * (n + 1) * T``; the trainer runs up to
``n_sup`` steps per sample, so the whole model is ``n_layers * (n+1) * T * n_sup`` layers deep.

Plain torch: the model takes its config and what the task says, nothing of the pipeline::

    model = TRMEnhancedCognate(TRMConfig(d_model=64, n=2, T=2), vocab_size=7, seq_len=36)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from agent_forge.models import moh
from agent_forge.models.fields import OptionError, option
from agent_forge.models.layers import Attention, KVCache, Linear, TokenEmbedding, trunc_normal_
from agent_forge.models.memory import MemoryBank
from agent_forge.models.protocol import Batch, Carry, LatentNoise, ModelOutput
from agent_forge.models.stack import StackConfig, block_stack


@dataclass
class TRMConfig(StackConfig):
    """The TRM's config: the block stack's fields (:class:`~agent_forge.models.stack.StackConfig`),
    then the recursion, halting head, memory and puzzle-embedding options."""

    n_layers: int = option(2, "Blocks in the shared network (L).", ge=1)
    n: int = option(3, "Latent updates per cycle.", ge=1)
    T: int = option(3, "Cycles per supervision step (T-1 without gradients).", ge=1)
    n_sup: int = option(16, "Maximum supervision steps per sample.", ge=1)
    n_sup_inference: int | None = option(
        None, "Supervision steps at evaluation and generation (default: n_sup); a --n-sup flag overrides it.",
        ge=1)
    learned_positions_scale: float = option(
        1.0, "learned_positions: multiply token + position embedding by this before the sqrt(d_model) scale"
             " (the official code: 0.707106781, i.e. 1/sqrt(2)).", gt=0)
    rope_base: float = option(10000.0, "Base (theta) of the rotary position frequencies.", gt=0)
    step_scales: bool = option(False, "Learnable per-step residual scales (ReZero-style).")
    step_scale_init: float = option(0.1, "Initial value of every step scale.", gt=0)
    step_scale_min: float = option(0.01, "Lower clamp of the step scales.", ge=0)
    step_scale_max: float = option(1.0, "Upper clamp of the step scales.", gt=0)
    memory: Literal["none", "latent", "full"] = option(
        "none", "Memory bank read into z ('latent') or into z and y ('full').")
    memory_capacity: int = option(64, "Slots in the memory bank.", ge=1)
    halting_head: bool = option(
        True, "The Q-head predicting 'halt' (trained by callbacks.act); off: no q_head, q_halt_logits=None.")
    puzzle_emb_len: int = option(
        0, "Positions prepended for the puzzle embedding (official: 16); the Q-head reads the first."
           " 0: the puzzle embedding is added to every position and the Q-head reads their mean.", ge=0)
    puzzle_emb_dim: int | None = option(
        None, "Width of a puzzle-table row (the official puzzle_emb_ndim; default d_model). A row is zero-padded"
              " to puzzle_emb_len * d_model and spread over the prefix positions; needs puzzle_emb_len > 0"
              " unless it equals d_model.", ge=1)
    q_head_input: Literal["auto", "first", "mean"] = option(
        "auto", "What the Q-head reads: 'first' position of y (the official code, always), the 'mean' over"
                " positions, or 'auto': first with a puzzle prefix, else the mean.")
    q_continue: bool = option(
        False, "A second Q-head row, q_continue (the official no_ACT_continue: false): a sample halts when"
               " q_halt > q_continue instead of q_halt > 0. For imported official checkpoints; training it is"
               " not supported.")
    puzzle_emb_sparse: bool = option(
        False, "Train the puzzle table as the official code does: sign-SGD on the rows in the batch at"
               " trainer.puzzle_emb_lr / puzzle_emb_weight_decay, outside AdamW and EMA.")
    halting_head_kind: Literal["linear", "mlp"] = option(
        "linear", "The Q-head: one linear layer, or an MLP (linear, GELU, linear) of width halting_head_hidden.")
    halting_head_hidden: int | None = option(
        None, "Hidden width of halting_head_kind='mlp' (default: d_model).", ge=1)
    defer_logits: bool = option(
        False, "Return the final hidden state and the head instead of the (batch, seq, vocab) logits; the loss"
               " computes them in chunks (trainer.loss_chunk_tokens). For large vocabularies.")
    checkpoint_blocks: bool = option(
        False, "Recompute each block of the graded cycle in the backward pass (torch.utils.checkpoint) instead"
               " of keeping its activations: less memory, about a third more compute per step.")
    fused_elementwise: bool = option(
        False, "Run each block's residual-and-RMSNorm pairs and SwiGLU product as single torch.compile'd"
               " functions (fewer memory passes; fp32 results equal to eager within rounding, pinned by"
               " tests/models/test_fused.py). Falls back to eager, with a warning, where compiling fails.")
    mixer_layout: Literal["transpose", "direct"] = option(
        "transpose", "mixer=mlp/mlp_official: 'direct' multiplies the token mixer's weights from the left"
                     " instead of transposing the states (no transposed views; equal within fp32 rounding).")

    def __post_init__(self) -> None:
        super().__post_init__()  # bounds, choices and the stack's own rules
        if self.step_scale_min > self.step_scale_max:
            raise OptionError("step_scale_min", f"step_scale_min={self.step_scale_min} exceeds step_scale_max="
                                                f"{self.step_scale_max}; lower the minimum or raise the maximum")
        if self.puzzle_emb_dim not in (None, self.d_model) and not self.puzzle_emb_len:
            raise OptionError("puzzle_emb_dim", f"puzzle_emb_dim={self.puzzle_emb_dim} differs from d_model="
                                                f"{self.d_model}, which needs prefix positions; set puzzle_emb_len >="
                                                f" {-(-self.puzzle_emb_dim // self.d_model)}")
        if self.puzzle_emb_dim and self.puzzle_emb_len and self.puzzle_emb_dim > self.puzzle_emb_len * self.d_model:
            raise OptionError("puzzle_emb_dim", f"puzzle_emb_dim={self.puzzle_emb_dim} does not fit puzzle_emb_len="
                                                f"{self.puzzle_emb_len} positions of d_model={self.d_model}; set"
                                                f" puzzle_emb_len >= {-(-self.puzzle_emb_dim // self.d_model)}")
        if self.q_continue and not self.halting_head:
            raise OptionError("q_continue", "q_continue=true needs the Q-head; set halting_head=true")
        if self.q_continue and self.halting_head_kind != "linear":
            raise OptionError("q_continue", "q_continue=true needs halting_head_kind='linear' (the official"
                                            " two-row head)")
        if self.halting_head_kind != "linear" and not self.halting_head:
            raise OptionError("halting_head_kind", f"halting_head_kind={self.halting_head_kind!r} but"
                                                   " halting_head=false (no Q-head); turn the head on or"
                                                   " leave halting_head_kind='linear'")

    def effective_depth(self) -> int:
        return self.n_layers * (self.n + 1) * self.T * self.n_sup


class RecursiveNet(nn.Module):
    """The one shared network: ``net(h, injection) = blocks(h + injection)``."""

    def __init__(self, cfg: TRMConfig, seq_len: int, causal: bool) -> None:
        super().__init__()
        self.blocks = block_stack(cfg, seq_len=seq_len, causal=causal, rope_base=cfg.rope_base,
                                  layout=cfg.mixer_layout, fused=cfg.fused_elementwise)
        # One (mixer, mlp) scale pair per block and per position in the cycle (0..n).
        self.scales = (nn.Parameter(torch.full((cfg.n_layers, cfg.n + 1, 2), cfg.step_scale_init))
                       if cfg.step_scales else None)
        self.scale_range = (cfg.step_scale_min, cfg.step_scale_max)
        self.checkpoint_blocks = cfg.checkpoint_blocks

    def forward(self, h: torch.Tensor, injection: torch.Tensor, step: int,
                caches: list[KVCache] | None = None) -> torch.Tensor:
        """``caches``: one :class:`KVCache` per block (decoding; ``h`` holds the new positions only)."""
        h = h + injection
        recompute = self.checkpoint_blocks and torch.is_grad_enabled()
        for i, block in enumerate(self.blocks):
            scales = None if self.scales is None else self.scales[i, step].clamp(*self.scale_range)
            if caches is not None:
                h = block(h, scales, caches[i])
            else:
                h = checkpoint(block, h, scales, use_reentrant=False) if recompute else block(h, scales)
        return h


class RecursionCache:
    """Keys and values across tokens for decoding a causal TRM a token at a time
    (:meth:`TRMEnhancedCognate.extend`): every network application attends over every earlier
    position *at that same application*, so each (supervision step, cycle, application, layer)
    keeps its own :class:`~agent_forge.models.layers.KVCache`:
    ``slots[step][cycle][application][layer]``, applications 0..n-1 updating z and n updating y.
    ``length`` positions (the puzzle prefix included) are filled in every slot, of ``capacity``.
    """

    def __init__(self, n_sup: int, T: int, n: int, n_layers: int, capacity: int) -> None:
        self.n_sup, self.capacity, self.length = n_sup, capacity, 0
        self.slots = [[[[KVCache(capacity) for _ in range(n_layers)] for _ in range(n + 1)] for _ in range(T)]
                      for _ in range(n_sup)]


class TRMEnhancedCognate(nn.Module):
    """The TRM for a task of ``vocab_size`` tokens and sequences of ``seq_len``.

    ``causal`` is the task's default (``cfg.causal`` overrides it when set); ``num_puzzle_ids``
    adds a learned embedding per puzzle id (``batch["puzzle_ids"]``) when the task names puzzles.
    With ``cfg.puzzle_emb_len`` P > 0 the states are ``P + seq_len`` long: P prefix positions
    (the puzzle embedding in the first; one puzzle, id 0, when the task names none) that the
    answer head skips and whose first the Q-head reads, as in the official code.
    """

    def __init__(self, cfg: TRMConfig, *, vocab_size: int, seq_len: int, causal: bool = False,
                 num_puzzle_ids: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_sup = cfg.n_sup
        self.n_sup_inference = cfg.n_sup_inference or cfg.n_sup
        causal = causal if cfg.causal is None else cfg.causal
        d = cfg.d_model
        self.prefix = cfg.puzzle_emb_len
        length = seq_len + self.prefix
        if self.prefix and not num_puzzle_ids:
            num_puzzle_ids = 1
        if cfg.puzzle_emb_sparse and not num_puzzle_ids:
            raise OptionError("puzzle_emb_sparse", "puzzle_emb_sparse=True but the task names no puzzles and"
                                                   " puzzle_emb_len=0, so there is no puzzle table; set"
                                                   " puzzle_emb_len=16 or puzzle_emb_sparse=false")
        self.embed = TokenEmbedding(vocab_size, d, length if cfg.learned_positions else None, num_puzzle_ids,
                                    prefix_len=self.prefix, puzzle_dim=cfg.puzzle_emb_dim,
                                    position_scale=cfg.learned_positions_scale)
        self.q_reads_first = cfg.q_head_input == "first" or (cfg.q_head_input == "auto" and self.prefix > 0)
        self.net = RecursiveNet(cfg, length, causal)
        self.head = Linear(d, vocab_size)
        # The halting head exists only when asked for: a head no loss trains would be a parameter
        # without a gradient, which DDP refuses (and halting on an untrained head means nothing).
        self.q_head = halting_head(cfg) if cfg.halting_head else None
        # Fixed (not learned) starting points for y and z, as in the official code.
        self.register_buffer("y_init", trunc_normal_(torch.empty(d), std=1.0))
        self.register_buffer("z_init", trunc_normal_(torch.empty(d), std=1.0))
        self.memory = MemoryBank(d, cfg.memory_capacity) if cfg.memory != "none" else None
        # An empty bank is not read, so its parameters get no gradient on those steps; DDP must
        # be told to look for such parameters (see the model protocol in docs/plugins.md).
        self.has_unused_parameters = self.memory is not None
        self._moh = moh.moh_layers(self.net)  # the MoH mixers (mixer=moh), one per layer

    def initial_carry(self, batch: Batch) -> Carry:
        b, s = batch["inputs"].shape
        shape = (b, self.prefix + s, self.cfg.d_model)
        carry = {"y": self.y_init.expand(shape).clone(), "z": self.z_init.expand(shape).clone()}
        # A sharded (FSDP) embedding is whole only inside forward, so it is not read here.
        sharded = hasattr(self.embed.weight, "full_tensor")
        if torch.is_inference_mode_enabled() and not sharded:
            # Inference: the input, so its embedding, is the same at every supervision step of this
            # carry; embed it once here and let forward read it ("x"). Training embeds at every
            # step (the embedding's gradient flows through each), so its carry never holds it.
            carry["x"] = self.embed(batch["inputs"], batch.get("puzzle_ids"))
        return carry

    def cycle(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, noise: LatentNoise | None = None,
              caches: list[list[KVCache]] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``caches``: this cycle's slots of a :class:`RecursionCache` (decoding: x, y, z hold the
        new positions only)."""
        kv = caches or [None] * (self.cfg.n + 1)
        recall = self.memory.read(z) if self.memory is not None else 0
        for i in range(self.cfg.n):
            z = self._net(z, x + y + recall, i, kv[i])
            if noise is not None:  # exploration at inference: the latent only, after every update
                z = noise.perturb(z)
        answer_recall = recall if self.cfg.memory == "full" else 0
        y = self._net(y, z + answer_recall, self.cfg.n, kv[self.cfg.n])
        return y, z

    def _net(self, h: torch.Tensor, injection: torch.Tensor, step: int, caches: list[KVCache] | None) -> torch.Tensor:
        # Only decoding passes caches: every other call is net(h, injection, step) as it always was
        # (a stand-in network with that signature, as tests/models/test_trm_recursion.py uses, still fits).
        return self.net(h, injection, step=step) if caches is None else self.net(h, injection, step=step, caches=caches)

    #: Takes ``noise=LatentNoise(...)`` in :meth:`forward` (the model protocol's exploration option).
    accepts_noise = True

    def forward(self, carry: Carry, batch: Batch, noise: LatentNoise | None = None) -> tuple[Carry, ModelOutput]:
        """One supervision step; ``noise`` perturbs the latent after each update (None: no noise)."""
        moh.reset(self._moh)
        x = carry["x"] if "x" in carry else self.embed(batch["inputs"], batch.get("puzzle_ids"))  # (batch, seq, d)
        y, z = carry["y"], carry["z"]
        with torch.no_grad():
            for _ in range(self.cfg.T - 1):
                y, z = self.cycle(x, y, z) if noise is None else self.cycle(x, y, z, noise)
        y, z = self.cycle(x, y, z) if noise is None else self.cycle(x, y, z, noise)
        q_halt = q_continue = None
        if self.q_head is not None:
            q = self.q_head(y[:, 0] if self.q_reads_first else y.mean(dim=1))  # (batch, 1 or 2)
            q_halt = q[..., 0]
            if self.cfg.q_continue:
                q_continue = q[..., 1]
        aux = moh.aux_losses(self._moh, self.cfg.moh_weights()) if self._moh else {}
        answer = y[:, self.prefix:]  # (batch, seq, d): the prefix has no answer
        new_carry = {"y": y.detach(), "z": z.detach(), **({"x": x} if "x" in carry else {})}
        if self.cfg.defer_logits:  # the loss runs the head chunk by chunk (model protocol)
            return new_carry, ModelOutput(None, q_halt, aux_losses=aux, hidden=answer, head=self.head,
                                          q_continue_logits=q_continue)
        logits = self.head(answer)  # (batch, seq, vocab)
        return new_carry, ModelOutput(logits=logits, q_halt_logits=q_halt, aux_losses=aux,
                                      q_continue_logits=q_continue)

    def cache_refusal(self) -> str | None:
        """Why :meth:`extend` cannot keep a :class:`RecursionCache` for this model, or None when it
        can. A cache is exact only when no position's state depends on a later position: causal
        attention in every block, and no memory bank whose read pools z over every position."""
        mixers = [block.mixer for block in self.net.blocks]
        if not all(isinstance(m, Attention) for m in mixers):
            return f"mixer={self.cfg.mixer!r} mixes every position with every other (no causal attention)"
        if not all(m.causal for m in mixers):
            return "its attention is bidirectional (model.causal=false): earlier positions read later ones"
        if self.memory is not None and bool(self.memory.filled.any()):
            return ("its memory bank holds entries, and a read pools z over every position, so an earlier"
                    " position's state depends on later ones")
        # Everything else works position by position: y/z start from per-position constants, the
        # embedding (learned positions, puzzle prefix) is recomputed from the whole window, RoPE
        # reads the cache's offset, step scales and MoH routing read one position at a time.
        return None

    def cache_bytes(self, batch: int, positions: int, n_sup: int) -> int:
        """Bytes a :class:`RecursionCache` of ``positions`` tokens (plus the puzzle prefix) takes:
        ``n_sup * T * (n+1) * n_layers`` slots x 2 (K and V) x ``n_kv_heads * head_dim`` x the
        element size, per row and position."""
        cfg = self.cfg
        kv_width = (cfg.n_kv_heads or cfg.n_heads) * (cfg.head_dim or cfg.d_model // cfg.n_heads)
        slots = n_sup * cfg.T * (cfg.n + 1) * cfg.n_layers
        return batch * (self.prefix + positions) * slots * 2 * kv_width * self.head.weight.element_size()

    def new_cache(self, positions: int, n_sup: int) -> RecursionCache:
        """An empty cache for windows of up to ``positions`` tokens decoded with ``n_sup`` supervision
        steps (buffers allocated at the first :meth:`extend`); a ValueError saying why where a cache
        would not give this model's results (:meth:`cache_refusal`)."""
        refusal = self.cache_refusal()
        if refusal:
            raise ValueError(f"no cache across tokens for this model: {refusal}")
        return RecursionCache(n_sup, self.cfg.T, self.cfg.n, self.cfg.n_layers, self.prefix + positions)

    @torch.no_grad()
    def extend(self, inputs: torch.Tensor, n_sup: int, cache: RecursionCache | None = None) -> torch.Tensor:
        """The last position's logits, (batch, vocab), after ``n_sup`` supervision steps from a fresh
        carry on ``inputs`` (batch, seq): what ``forward`` run ``n_sup`` times gives there (equal
        within fp32 rounding). With a ``cache`` that holds the first ``cache.length`` positions of
        this window (from earlier calls), only the positions after them are computed, and join it.
        Decoding only: no noise, no halting logits, nothing recorded for the metrics."""
        moh.reset(self._moh)
        # The whole window's embedding (a lookup) sliced, so positions and the prefix are exactly
        # what forward embeds.
        x = self.embed(inputs)
        start = 0
        if cache is not None:
            if cache.n_sup != n_sup:
                raise ValueError(f"the cache was made for n_sup={cache.n_sup}, not {n_sup}")
            start = cache.length
            if start >= x.shape[1]:
                raise ValueError(f"the cache holds {start} positions; the window has {x.shape[1]}, none new")
            x = x[:, start:]
        b, s, d = x.shape
        y, z = self.y_init.expand(b, s, d), self.z_init.expand(b, s, d)
        for step in range(n_sup):
            for c in range(self.cfg.T):
                y, z = self.cycle(x, y, z, caches=None if cache is None else cache.slots[step][c])
        if cache is not None:
            cache.length = start + s
        return self.head(y[:, -1]).float()

    def sparse_embedding_parameters(self) -> dict[str, nn.Parameter]:
        """Parameters (by name) to train as sparse embeddings: a sign-SGD step on the rows in the
        batch instead of AdamW, and no EMA average. The puzzle table with ``puzzle_emb_sparse``."""
        if self.cfg.puzzle_emb_sparse and self.embed.puzzle is not None:
            return {"embed.puzzle": self.embed.puzzle}
        return {}

    def step_scale_values(self) -> dict[str, float]:
        """Current clamped residual scales, for the metrics (empty when disabled)."""
        if self.net.scales is None:
            return {}
        s = self.net.scales.detach()
        # Under FSDP the parameter is a sharded DTensor; the metrics need all of it.
        s = s.full_tensor() if hasattr(s, "full_tensor") else s
        s = s.clamp(*self.net.scale_range)
        return {f"scale/l{l}/s{i}/{part}": float(s[l, i, j]) for l in range(s.shape[0])
                for i in range(s.shape[1]) for j, part in enumerate(("mix", "mlp"))}

    def metrics(self) -> dict[str, float]:
        """Metrics of the last forward for the training log (model protocol, docs/plugins.md):
        with mixer=moh the routing (:func:`agent_forge.models.moh.layer_metrics`), with the
        active heads also per position of the recursion (0..n-1 update z, n updates y)."""
        return moh.layer_metrics(self._moh, positions=self.cfg.n + 1) if self._moh else {}


def halting_head(cfg: TRMConfig) -> nn.Module:
    """The Q-head, started at "keep going" (zero weights into the output, bias -5: sigmoid(-5) ~
    0.007) so early training never halts. ``linear``: ``nn.Linear(d, 1)`` (parameters
    ``q_head.weight``/``bias``, as every artifact saved before the option has). ``mlp``: Linear,
    GELU, Linear of width ``halting_head_hidden`` (seed 001's remedy: more capacity to tell when
    the answer is right)."""
    d = cfg.d_model
    if cfg.halting_head_kind == "mlp":
        hidden = cfg.halting_head_hidden or d
        head = nn.Sequential(Linear(d, hidden, bias=True), nn.GELU(), nn.Linear(hidden, 1))
        last = head[-1]
    else:
        # With q_continue the official two-row head: row 0 q_halt, row 1 q_continue.
        head = last = nn.Linear(d, 2 if cfg.q_continue else 1)
    nn.init.zeros_(last.weight)
    nn.init.constant_(last.bias, -5.0)
    return head
