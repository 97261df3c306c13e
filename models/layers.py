"""Small layers shared by every architecture: norm, SwiGLU, rotary embeddings, attention, the MLP
token mixer and the post-norm block built from them. Tensors are (batch, seq, d_model) unless a
comment says otherwise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def trunc_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """Truncated normal at ±2 std, rescaled so the *result* has standard deviation ``std``.

    torch's own ``trunc_normal_`` keeps the pre-truncation std, which shrinks the spread by ~12%;
    the deep recursion is sensitive to that, so correct for it (as the official TRM code does).
    """
    if std == 0:
        return tensor.zero_()
    # Variance of a standard normal truncated to [-2, 2].
    a, b = -2.0, 2.0
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    z = math.erf(b / math.sqrt(2)) / 2 - math.erf(a / math.sqrt(2)) / 2
    var = 1 - (b * pdf(b) - a * pdf(a)) / z
    with torch.no_grad():
        nn.init.trunc_normal_(tensor, mean=0.0, std=1.0, a=a, b=b)
        return tensor.mul_(std / math.sqrt(var))


class Linear(nn.Linear):
    """nn.Linear with LeCun fan-in initialisation: std = 1/sqrt(fan_in), truncated."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__(in_features, out_features, bias=bias)
        trunc_normal_(self.weight, std=1.0 / math.sqrt(in_features))
        if self.bias is not None:
            nn.init.zeros_(self.bias)


def rms_norm(x: torch.Tensor, eps: float = 1e-5, dim: int = -1) -> torch.Tensor:
    """Parameter-free RMSNorm over ``dim``, computed in fp32 (bf16 loses too much in the mean of
    squares)."""
    dtype = x.dtype
    x = x.float()
    return (x * torch.rsqrt(x.pow(2).mean(dim, keepdim=True) + eps)).to(dtype)


def add_rms_norm(h: torch.Tensor, delta: torch.Tensor, scale: torch.Tensor | None = None, dim: int = -1,
                 eps: float = 1e-5) -> torch.Tensor:
    """``rms_norm(h + scale * delta)`` over ``dim``: the residual-and-norm pair of a post-norm block,
    as one function so that a compiler can make it one pass over memory."""
    return rms_norm(h + (delta if scale is None else scale * delta), eps, dim)


def swiglu_product(gate_up: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``silu(gate) * up`` for ``gate, up = gate_up.chunk(2, dim)``: SwiGLU's elementwise middle."""
    gate, up = gate_up.chunk(2, dim=dim)
    return F.silu(gate) * up


#: The fused (torch.compile'd) versions of the elementwise functions above, built once per process.
_FUSED: dict[str, Callable[..., torch.Tensor]] = {}
_EAGER: dict[str, Callable[..., torch.Tensor]] = {"add_rms_norm": add_rms_norm, "swiglu_product": swiglu_product}


def fused_function(name: str) -> Callable[..., torch.Tensor]:
    """``add_rms_norm`` or ``swiglu_product`` compiled into one kernel each (inductor), used by
    blocks built with ``fused=True``. Eager execution runs each as 4-6 memory-bound kernels (the
    profile's norm and "other elementwise" third of a step); compiled, each reads its inputs and
    writes its output once. Inside a whole-model ``torch.compile`` the plain function is returned
    (the outer compile fuses it anyway). Where compiling fails (no C++ compiler, an unsupported
    backend) it warns once with the reason and runs eager: the same results, without the fusion.
    Compiled results may differ from eager in the last fp32 bits (reduction order)."""
    eager = _EAGER[name]

    def call(*args: torch.Tensor | None, **kw: object) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return eager(*args, **kw)
        fn = _FUSED.get(name)
        if fn is None:
            fn = _FUSED[name] = torch.compile(eager, dynamic=None, fullgraph=True)
        if fn is eager:
            return eager(*args, **kw)
        try:
            return fn(*args, **kw)
        except Exception as e:  # noqa: BLE001 - any compiler failure: fall back, and say why
            warnings.warn(f"fused {name}: torch.compile failed ({type(e).__name__}: {e}); running eager",
                          RuntimeWarning, stacklevel=2)
            _FUSED[name] = eager
            return eager(*args, **kw)

    return call


class RMSNorm(nn.Module):
    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.eps)


def swiglu_hidden(width: int, expansion: float, multiple: int = 256) -> int:
    # 2/3 keeps SwiGLU's parameter count equal to a plain MLP of the same expansion; rounding up
    # to a multiple of 256 keeps GEMMs hardware-friendly and matches the official TRM code, so
    # our parameter counts are comparable with the paper's.
    hidden = round(expansion * width * 2 / 3)
    return multiple * math.ceil(hidden / multiple)


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))`` over the last dimension; ``fused``: the product compiled."""

    def __init__(self, width: int, expansion: float, multiple: int = 256, fused: bool = False) -> None:
        super().__init__()
        hidden = swiglu_hidden(width, expansion, multiple)
        self.gate_up = Linear(width, 2 * hidden)
        self.down = Linear(hidden, width)
        self.product = fused_function("swiglu_product") if fused else swiglu_product

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.product(self.gate_up(x)))


class RotaryEmbedding(nn.Module):
    """cos/sin tables for rotary position embeddings, (seq, head_dim)."""

    def __init__(self, head_dim: int, max_len: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        t = torch.arange(max_len, dtype=torch.float32)
        freqs = torch.outer(t, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, seq_len: int, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The tables of positions ``start .. start + seq_len - 1`` (``start`` > 0: positions after
        those a :class:`KVCache` holds)."""
        return self.cos[start:start + seq_len], self.sin[start:start + seq_len]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (batch, heads, seq, head_dim)
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return (x * cos.to(x.dtype) + rotated * sin.to(x.dtype))


class KVCache:
    """The keys and values one causal attention layer computed at earlier positions, so that a
    later call computes only its new positions (decoding a token at a time): pass it to
    :meth:`Attention.heads` / ``forward`` as ``cache``. One cache serves one layer in one place of
    the computation (a TRM needs one per layer, recursion step and supervision step).

    Buffers of ``capacity`` positions, (batch, kv_heads, capacity, head_dim) each for K and V, are
    allocated at the first write (the layer decides their shape and dtype); ``length`` positions
    are filled. Keys are stored after RoPE and before the grouped-query repeat (the repeat would
    multiply the memory by n_heads / n_kv_heads for nothing).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.length = 0
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k``, ``v`` (batch, kv_heads, new, head_dim) after the filled positions; return the
        keys and values of every position so far (views of the buffers)."""
        b, h, s, d = k.shape
        end = self.length + s
        if end > self.capacity:
            raise ValueError(f"KVCache holds {self.capacity} positions; {self.length} filled + {s} new exceeds it")
        if self.k is None or self.v is None:
            self.k, self.v = k.new_empty(b, h, self.capacity, d), v.new_empty(b, h, self.capacity, d)
        self.k[:, :, self.length:end] = k
        self.v[:, :, self.length:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class Attention(nn.Module):
    """Multi-head or grouped-query self-attention; causal or bidirectional; RoPE optional."""

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, causal: bool,
                 rotary: RotaryEmbedding | None, head_dim: int | None = None) -> None:
        super().__init__()
        if head_dim is None and d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}; pass head_dim")
        if n_heads % n_kv_heads:
            raise ValueError(f"n_heads {n_heads} is not divisible by n_kv_heads {n_kv_heads}")
        self.n_heads, self.n_kv_heads, self.causal = n_heads, n_kv_heads, causal
        self.head_dim = head_dim or d_model // n_heads
        self.qkv = Linear(d_model, (n_heads + 2 * n_kv_heads) * self.head_dim)
        self.out = Linear(n_heads * self.head_dim, d_model)
        self.rotary = rotary

    def heads(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Every head's output, ``(batch, heads, seq, head_dim)``, before the output projection
        (Mixture-of-Heads attention weights them there). With a ``cache`` (causal attention only)
        ``x`` holds the positions after those the cache holds; their keys and values join it."""
        b, s, _ = x.shape
        h, kv, d = self.n_heads, self.n_kv_heads, self.head_dim
        start = 0 if cache is None else cache.length
        if cache is not None and not self.causal:
            raise ValueError("a KVCache needs causal attention: a bidirectional layer's earlier positions"
                             " read the later ones")
        q, k, v = self.qkv(x).split([h * d, kv * d, kv * d], dim=-1)
        q = q.view(b, s, h, d).transpose(1, 2)
        k = k.view(b, s, kv, d).transpose(1, 2)
        v = v.view(b, s, kv, d).transpose(1, 2)
        if self.rotary is not None:
            cos, sin = self.rotary(s, start)
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:
            k, v = cache.append(k, v)
        if kv != h:
            repeat = h // kv
            k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
        if start == 0:
            return F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        # After cached positions: new position start + i sees keys 0 .. start + i (one new
        # position sees every key, so it needs no mask).
        mask = None if s == 1 else torch.ones(s, start + s, dtype=torch.bool, device=x.device).tril(start)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        b, s, _ = x.shape
        y = self.heads(x, cache)
        return self.out(y.transpose(1, 2).reshape(b, s, self.n_heads * self.head_dim))


class MLPTokenMixer(nn.Module):
    """A SwiGLU across the sequence axis: every position mixes with every other (bidirectional).

    The TRM paper's best Sudoku model uses this instead of attention: with a fixed, small grid
    a learned position-to-position map beats content-based attention.

    ``official=True`` is the official TRM code's ``mlp_t``: the hidden width rounds up to a
    multiple of 256 like every other SwiGLU (512 on 9x9 Sudoku with its 16-position prefix,
    L = 97), not 16 (224), and the block normalises the mixed sum over the sequence axis
    instead of the channels (``norm_over_sequence``).

    ``layout="direct"`` multiplies the weights from the left, ``W @ x[b]``, instead of applying
    the SwiGLU to the transposed states: the same products with no transposed views, so the
    elementwise work and the block's norm over the sequence run on contiguous memory. The sums
    are the same; their order inside the GEMM may differ, so results may differ in fp32 rounding
    (``tests/models/test_fused.py`` pins the difference).
    """

    def __init__(self, seq_len: int, expansion: float, official: bool = False, layout: str = "transpose",
                 fused: bool = False) -> None:
        super().__init__()
        if layout not in ("transpose", "direct"):
            raise ValueError(f"unknown mixer layout {layout!r}; use 'transpose' or 'direct'")
        self.norm_over_sequence = official
        self.layout = layout
        self.mlp = SwiGLU(seq_len, expansion, multiple=256 if official else 16, fused=fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layout == "direct":
            # (2H, L) @ (B, L, D) -> (B, 2H, D); the product over the hidden axis; (L, H) @ (B, H, D).
            gate_up = torch.matmul(self.mlp.gate_up.weight, x)
            return torch.matmul(self.mlp.down.weight, self.mlp.product(gate_up, dim=1))
        return self.mlp(x.transpose(1, 2)).transpose(1, 2)


class Block(nn.Module):
    """Post-norm block: ``h = norm(h + a·mix(h)); h = norm(h + b·mlp(h))``.

    ``a, b`` are 1 unless the caller passes residual scales (TRM's learnable per-step scales).
    The first norm is over the channels, or over the sequence axis for a mixer that says
    ``norm_over_sequence`` (the official MLP mixer): through transposes, or in place over axis 1
    when the mixer's ``layout`` is ``"direct"``.

    ``fused=True`` runs each residual-and-norm pair and the SwiGLU product as one compiled
    function (:func:`fused_function`); the default runs the same operations eagerly, in the order
    they have always run (bit for bit the results of earlier versions).
    """

    def __init__(self, d_model: int, mixer: nn.Module, expansion: float, fused: bool = False) -> None:
        super().__init__()
        self.mixer = mixer
        self.norm_over_sequence = bool(getattr(mixer, "norm_over_sequence", False))
        self.sequence_in_place = getattr(mixer, "layout", "transpose") == "direct"
        self.fused = fused
        self.mlp = SwiGLU(d_model, expansion, fused=fused)
        self.add_norm = fused_function("add_rms_norm") if fused else add_rms_norm

    def forward(self, h: torch.Tensor, scales: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        """``cache``: the attention mixer's :class:`KVCache` (``h`` then holds only the positions
        after the cached ones; everything but the mixer works position by position)."""
        s_mix, s_mlp = (None, None) if scales is None else (scales[0], scales[1])
        mixed = self.mixer(h) if cache is None else self.mixer(h, cache=cache)
        if not self.norm_over_sequence:
            h = self.add_norm(h, mixed, s_mix)
        elif self.sequence_in_place:
            h = self.add_norm(h, mixed, s_mix, dim=1)
        else:
            h = h + (mixed if s_mix is None else s_mix * mixed)
            h = rms_norm(h.transpose(1, 2)).transpose(1, 2)
        return self.add_norm(h, self.mlp(h), s_mlp)


class TokenEmbedding(nn.Module):
    """Token embedding scaled by sqrt(d_model), initialised with std 1/sqrt(d_model), so the
    embedded input starts at unit scale like the recurrent states it is added to.

    With ``seq_len`` set it adds a learned embedding per position (same scaling): on a fixed grid
    it tells every cell which row, column and box it is in, which 1-D rotary offsets only imply.
    ``seq_len`` then counts the prefix positions too.

    With ``num_puzzles`` set it learns a vector per puzzle id (``batch["puzzle_ids"]``): a task
    such as ARC names the puzzle (and its augmentation) a grid belongs to, and the model learns
    that puzzle's rule into this vector from its demonstration pairs. It starts at zero so it
    first learns nothing puzzle-specific, as in the official TRM code. With ``prefix_len`` 0 the
    vector is added to every position; with ``prefix_len`` P (the official code's
    ``puzzle_emb_len``, 16) the output gains P positions in front: the puzzle's vector in the
    first, zeros in the rest (the official code pads its table row of width d_model to P
    positions), so the output is ``(batch, P + seq, d_model)``. Without ``puzzle_ids`` in the
    batch every row is puzzle 0, as in the official Sudoku and Maze data. ``puzzle_dim`` (default
    ``d_model``; the official ``puzzle_emb_ndim``) is the table's width: a row is zero-padded to
    ``P * d_model`` and spread over the P prefix positions in order.

    ``position_scale`` multiplies ``token + position`` before the ``sqrt(d_model)`` scale (the
    official code uses 1/sqrt(2) = 0.707106781 to keep the sum at unit variance; default 1).
    """

    def __init__(self, vocab_size: int, d_model: int, seq_len: int | None = None,
                 num_puzzles: int | None = None, prefix_len: int = 0, puzzle_dim: int | None = None,
                 position_scale: float = 1.0) -> None:
        super().__init__()
        if prefix_len and not num_puzzles:
            raise ValueError(f"prefix_len={prefix_len} needs a puzzle table; pass num_puzzles (1 if the task"
                             " names no puzzles)")
        puzzle_dim = puzzle_dim or d_model
        if prefix_len and puzzle_dim > prefix_len * d_model:
            raise ValueError(f"puzzle_dim={puzzle_dim} does not fit {prefix_len} prefix positions of width {d_model}")
        if not prefix_len and puzzle_dim != d_model:
            raise ValueError(f"puzzle_dim={puzzle_dim} != d_model={d_model} needs prefix positions (prefix_len > 0)")
        self.scale = math.sqrt(d_model)
        self.d_model = d_model
        self.prefix_len = prefix_len
        self.position_scale = position_scale
        self.weight = nn.Parameter(trunc_normal_(torch.empty(vocab_size, d_model), std=1.0 / self.scale))
        self.position = (nn.Parameter(trunc_normal_(torch.empty(seq_len, d_model), std=1.0 / self.scale))
                         if seq_len else None)
        self.puzzle = nn.Parameter(torch.zeros(num_puzzles, puzzle_dim)) if num_puzzles else None

    def _with_position(self, x: torch.Tensor) -> torch.Tensor:
        if self.position is None:
            return x
        x = x + self.position[: x.shape[1]]
        # The official code scales (token + position) by 1/sqrt(2) to keep the sum at unit variance.
        return x if self.position_scale == 1.0 else self.position_scale * x

    def forward(self, tokens: torch.Tensor, puzzle_ids: torch.Tensor | None = None) -> torch.Tensor:
        x = F.embedding(tokens, self.weight)
        if self.prefix_len:
            if puzzle_ids is None:
                puzzle_ids = torch.zeros(tokens.shape[0], dtype=torch.long, device=tokens.device)
            puzzle = F.embedding(puzzle_ids, self.puzzle)  # (batch, puzzle_dim)
            # The row is zero-padded to prefix_len * d_model and laid over the prefix positions, so
            # a row of width d_model fills the first position and leaves the others zero.
            pad = self.prefix_len * self.d_model - puzzle.shape[1]
            if pad:
                puzzle = F.pad(puzzle, (0, pad))
            prefix = puzzle.view(-1, self.prefix_len, self.d_model)
            x = torch.cat((prefix.to(x.dtype), x), dim=1)
            return self.scale * self._with_position(x)
        x = self._with_position(x)
        if self.puzzle is not None and puzzle_ids is not None:
            x = x + F.embedding(puzzle_ids, self.puzzle).unsqueeze(1)
        return self.scale * x
