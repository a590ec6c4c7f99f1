r"""The layers Llama put in place of GPT-2's: RMSNorm, rotary positions, a SwiGLU MLP and
grouped-query self-attention.

    GPT-2 block                               Llama block
    x + attn(LayerNorm(x))                    x + attn(RMSNorm(x))       queries and keys rotated
                                                                         by position (RoPE); groups of
                                                                         query heads share K/V heads
    x + W₂ GELU(W₁ LayerNorm(x))              x + W_down (silu(W_gate x̂) ⊙ W_up x̂),  x̂ = RMSNorm(x)
    learned position table added to tokens    no position table: positions live in the rotation

Parameter names are Hugging Face's Llama names (``q_proj``, ``k_proj``, ``v_proj``, ``o_proj``,
``gate_proj``, ``up_proj``, ``down_proj``, ``weight`` of the norms), so a ``LlamaForCausalLM``
state dict loads without renaming (see :mod:`tinyllm.models.llama`). ``RMSNorm`` has
``torch.nn.RMSNorm``'s arguments and defaults.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from . import init
from .attention import cached_query_mask, merge_heads, split_heads
from .layers import Dropout, Linear, check_positive, check_input, new_parameter
from .module import Module

__all__ = ["RMSNorm", "SwiGLU", "RotaryEmbedding", "GroupedQueryAttention"]


class RMSNorm(Module):
    r"""y = x / √(mean(x²) + ε) ⊙ weight over the trailing ``normalized_shape`` axes (no
    mean subtracted, no bias), as ``torch.nn.RMSNorm``: ``eps=None`` means the dtype's
    machine epsilon; ``weight`` starts at 1."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(int(n) for n in normalized_shape)
        for n in self.normalized_shape:
            check_positive(n, "normalized_shape", "RMSNorm")
        self.eps = None if eps is None else float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        if elementwise_affine:
            self.weight = new_parameter(self.normalized_shape, device, dtype)
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x):
        shape = self.normalized_shape
        if self.weight is not None:
            check_input("RMSNorm", x, self.weight)
        if not isinstance(x, Tensor):
            raise TypeError(f"RMSNorm: input must be a tl.Tensor, got {type(x).__name__}")
        if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
            raise ValueError(f"RMSNorm: input of shape {x.shape} does not end in the normalized shape {shape}")
        return F.rms_norm(x, shape, self.weight, eps=self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class SwiGLU(Module):
    r"""Llama's feed-forward network: down_proj(silu(gate_proj(x)) ⊙ up_proj(x)).

    x (..., in_features) → (..., in_features), through ``hidden_features`` gated units. Three
    matrices instead of GPT's two, so for the same parameters the hidden width is 2/3 of
    GPT's 4·d: 3·d·h = 8·d² at h = 8d/3 (Llama-7B: d = 4096, h = 11008)."""

    def __init__(self, in_features, hidden_features, bias=False, device=None, dtype=None):
        super().__init__()
        kw = dict(bias=bias, device=device, dtype=dtype)
        self.gate_proj = Linear(in_features, hidden_features, **kw)
        self.up_proj = Linear(in_features, hidden_features, **kw)
        self.down_proj = Linear(hidden_features, in_features, **kw)

    def forward(self, x):
        return self.down_proj(F.swiglu(self.gate_proj(x), self.up_proj(x)))


class RotaryEmbedding(Module):
    r"""Rotates queries or keys (..., T, head_dim) by their positions (see
    :func:`tinyllm.functional.apply_rotary`): ``rope(x, start)`` uses positions
    ``start … start + T − 1``. No parameters: the cos/sin tables for ``max_positions``
    positions are computed once per device and dtype and kept (not in ``state_dict``)."""

    def __init__(self, head_dim, max_positions, theta=10000.0):
        super().__init__()
        check_positive(head_dim, "head_dim", "RotaryEmbedding")
        check_positive(max_positions, "max_positions", "RotaryEmbedding")
        if head_dim % 2:
            raise ValueError(f"RotaryEmbedding: head_dim must be even (the dims rotate in pairs), got {head_dim}")
        self.head_dim, self.max_positions, self.theta = int(head_dim), int(max_positions), float(theta)
        self._tables = {}  # (device name, dtype) -> (cos, sin), each (max_positions, head_dim / 2)

    def tables(self, like, start, length):
        """(cos, sin) Tensors (length, head_dim / 2) for positions start … start + length − 1,
        on ``like``'s device and in its dtype."""
        if start < 0 or start + length > self.max_positions:
            raise ValueError(f"RotaryEmbedding: positions {start}..{start + length - 1} do not fit "
                             f"max_positions={self.max_positions}")
        key = (like.device, like.dtype.str)
        if key not in self._tables:
            self._tables[key] = F.rotary_tables(self.max_positions, self.head_dim, self.theta,
                                                dtype=like.dtype, device=like.device)
        cos, sin = self._tables[key]
        return Tensor(cos.data[start:start + length]), Tensor(sin.data[start:start + length])

    def forward(self, x, start=0):
        cos, sin = self.tables(x, start, x.shape[-2])
        return F.apply_rotary(x, cos, sin)

    def extra_repr(self):
        return f"head_dim={self.head_dim}, max_positions={self.max_positions}, theta={self.theta:g}"


class GroupedQueryAttention(Module):
    r"""Causal self-attention with rotary positions and ``num_kv_heads`` key/value heads
    shared by groups of the ``num_heads`` query heads (Llama-2-70B, Llama-3, Mistral).

        Q = x W_qᵀ (H heads),  K = x W_kᵀ, V = x W_vᵀ (H_kv heads each),  d = embed_dim / H
        Q, K ← RoPE(Q), RoPE(K)
        head_h = softmax(Q_h K_{h // G}ᵀ / √d + causal) V_{h // G},   G = H / H_kv
        y = concat(head_1 … head_H) W_oᵀ

    ``num_kv_heads`` = ``num_heads`` is multi-head attention (Llama-7B), 1 is multi-query
    attention. ``k_proj`` and ``v_proj`` are (H_kv·d, embed_dim): fewer parameters, and a KV
    cache G times smaller, for the same number of query heads.

    ``forward(x, kv_cache=None, layer=0)``: x (B, T, embed_dim). With a ``kv_cache`` (any
    object with ``position`` and ``update(layer, k, v)``, e.g. :class:`tinyllm.models.KVCache`),
    the tokens take positions ``kv_cache.position …``, their rotated keys and values (H_kv
    heads only) are cached, and they attend to every cached position.
    ``.attention_weights`` keeps the last (B, H, T, S) weights."""

    keep_attention_weights = True

    def __init__(self, embed_dim, num_heads, num_kv_heads=None, max_positions=2048, rope_theta=10000.0,
                 bias=False, dropout=0.0, device=None, dtype=None):
        super().__init__()
        check_positive(embed_dim, "embed_dim", "GroupedQueryAttention")
        check_positive(num_heads, "num_heads", "GroupedQueryAttention")
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        check_positive(num_kv_heads, "num_kv_heads", "GroupedQueryAttention")
        if embed_dim % num_heads:
            raise ValueError(f"GroupedQueryAttention: embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        if num_heads % num_kv_heads:
            raise ValueError(f"GroupedQueryAttention: num_kv_heads ({num_kv_heads}) must divide num_heads "
                             f"({num_heads}): each key/value head serves a whole group of query heads")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"GroupedQueryAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads, self.num_kv_heads = int(embed_dim), int(num_heads), int(num_kv_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.dropout = float(dropout)
        kw = dict(bias=bias, device=device, dtype=dtype)
        kv_dim = self.num_kv_heads * self.head_dim
        self.q_proj = Linear(embed_dim, embed_dim, **kw)
        self.k_proj = Linear(embed_dim, kv_dim, **kw)
        self.v_proj = Linear(embed_dim, kv_dim, **kw)
        self.o_proj = Linear(embed_dim, embed_dim, **kw)
        self.rotary = RotaryEmbedding(self.head_dim, max_positions, rope_theta)
        self.resid_dropout = Dropout(dropout)
        self.attention_weights = None

    def forward(self, x, kv_cache=None, layer=0):
        check_input("GroupedQueryAttention", x, self.q_proj.weight)
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"GroupedQueryAttention: x must be (batch, seq, {self.embed_dim}), got {x.shape}")
        length = x.shape[1]
        start = 0 if kv_cache is None else kv_cache.position
        q = self.rotary(split_heads(self.q_proj(x), self.num_heads, batch_first=True), start)
        k = self.rotary(split_heads(self.k_proj(x), self.num_kv_heads, batch_first=True), start)
        v = split_heads(self.v_proj(x), self.num_kv_heads, batch_first=True)
        mask, is_causal = cached_query_mask(start, length, x.xp)   # (None, True) without a cache
        if kv_cache is not None:
            k, v = kv_cache.update(layer, k, v)
        y, weights = F.grouped_query_attention(q, k, v, attn_mask=mask, is_causal=is_causal,
                                               dropout_p=self.dropout if self.training else 0.0,
                                               return_weights=True)
        self.attention_weights = weights if self.keep_attention_weights else None
        return self.resid_dropout(self.o_proj(merge_heads(y, batch_first=True)))

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, num_kv_heads={self.num_kv_heads}"
