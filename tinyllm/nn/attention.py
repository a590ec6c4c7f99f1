r"""Multi-head attention, as ``torch.nn.MultiheadAttention``.

With E = embed_dim split into H heads of size d = E / H, for queries X_q (L tokens) and
keys/values X_k, X_v (S tokens):

    Q = X_q W_qᵀ + b_q,   K = X_k W_kᵀ + b_k,   V = X_v W_vᵀ + b_v          (each (…, E))
    head_h = softmax(Q_h K_hᵀ / √d + M) V_h                                (each (…, L, d))
    output = concat(head_1, …, head_H) W_oᵀ + b_o

W_q, W_k, W_v are stacked in one parameter ``in_proj_weight`` (3E, E) with bias
``in_proj_bias`` (3E,), and W_o, b_o live in ``out_proj`` — torch's names and layout, so a
torch ``state_dict`` loads as it is.

Masks follow torch: a boolean mask is True where attention is *not allowed*; a float mask is
added to the scores (−inf forbids). ``attn_mask`` is (L, S) or (N·H, L, S);
``key_padding_mask`` is (N, S), True at padding keys. A query that may see no key at all
gets zero weights and a zero output (torch gives nan there).

After every forward, ``.attention_weights`` holds the per-head weights (N, H, L, S),
detached, for plotting (set ``keep_attention_weights = False`` on a module to skip
keeping them); :func:`attention_maps` collects them from a whole model.
"""
from __future__ import annotations

import collections

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from . import init
from .layers import Linear, check_positive, check_input, new_parameter, project_rows
from .module import Module

__all__ = ["MultiheadAttention", "attention_maps", "project_rows", "split_heads", "merge_heads",
           "cached_query_mask"]


# ----------------------------------------------------------------------------- building blocks
def split_heads(x, num_heads, batch_first):
    """(N, L, E) [or (L, N, E) when not batch_first] → (N, H, L, E/H): one view, no copy."""
    if batch_first:
        n, length, e = x.shape
        return x.reshape(n, length, num_heads, e // num_heads).transpose(0, 2, 1, 3)
    length, n, e = x.shape
    return x.reshape(length, n, num_heads, e // num_heads).transpose(1, 2, 0, 3)


def cached_query_mask(start, length, xp):
    """``(attn_mask, is_causal)`` for ``length`` new queries at positions ``start …
    start+length−1`` attending to every cached key ``0 … start+length−1``: query i sees keys
    j ≤ start + i. An empty cache is the usual causal case; one new query sees everything."""
    if start == 0:
        return None, True
    if length == 1:
        return None, False
    return Tensor(xp.arange(start + length)[None, :] <= (start + xp.arange(length))[:, None]), False


def merge_heads(x, batch_first):
    """(N, H, L, d) → (N, L, H·d) [or (L, N, H·d) when not batch_first]: the inverse of
    :func:`split_heads` (one copy, into the layout the output projection reads)."""
    n, h, length, d = x.shape
    if batch_first:
        return x.transpose(0, 2, 1, 3).reshape(n, length, h * d)
    return x.transpose(2, 0, 1, 3).reshape(length, n, h * d)


def _as_mask(mask, name, device):
    """A user mask as a tl.Tensor on ``device``, checked to be boolean or floating (or None)."""
    return None if mask is None else F.check_mask(mask, "MultiheadAttention", name, device,
                                                  true_means="masked out")


def _to_additive(array, xp, dtype):
    """A boolean mask (True = masked out) as a float mask: −inf where True, 0 elsewhere."""
    if array.dtype == np.bool_:
        return xp.where(array, dtype.type(-np.inf), dtype.type(0)).astype(dtype, copy=False)
    return array.astype(dtype, copy=False)


# ----------------------------------------------------------------------------- the layer
class MultiheadAttention(Module):
    r"""Multi-head attention (see the module docstring for the formula and the masks).

    ``MultiheadAttention(embed_dim, num_heads, dropout=0.0, bias=True, batch_first=False)``;
    ``dropout`` applies to the attention weights in training mode.

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)`` → ``(output, weights)``:

    * query (L, N, E), key and value (S, N, E) — or (N, L, E), (N, S, E) with
      ``batch_first=True``, or unbatched (L, E), (S, E);
    * output shaped like query;
    * weights (N, L, S) averaged over heads, or (N, H, L, S) with
      ``average_attn_weights=False``; None when ``need_weights=False``. They are detached
      (torch's are differentiable).
    * ``is_causal=True`` adds the causal mask (query i sees keys j ≤ i). torch treats it as
      a hint that ``attn_mask`` already is that mask, and requires ``attn_mask``; here it
      is also enough on its own.
    """

    keep_attention_weights = True

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        check_positive(embed_dim, "embed_dim", "MultiheadAttention")
        check_positive(num_heads, "num_heads", "MultiheadAttention")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads}); {embed_dim} / {num_heads} = {embed_dim / num_heads:g} is not "
                             f"a whole head size")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are not supported")
        if kdim not in (None, embed_dim) or vdim not in (None, embed_dim):
            raise NotImplementedError(f"MultiheadAttention: kdim and vdim must equal embed_dim ({embed_dim}) "
                                      f"(separate q/k/v projection weights are not supported), "
                                      f"got kdim={kdim}, vdim={vdim}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.dropout = float(dropout)
        self.batch_first = bool(batch_first)
        self.in_proj_weight = new_parameter((3 * embed_dim, embed_dim), device, dtype)
        if bias:
            self.in_proj_bias = new_parameter((3 * embed_dim,), device, dtype)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        self.attention_weights = None
        self.reset_parameters()

    def reset_parameters(self):
        """torch's initialisation: Xavier-uniform in-projection, zero biases (the output
        projection's weight keeps Linear's default)."""
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, " \
               f"batch_first={self.batch_first}"

    # ---------------------------------------------------------------- forward
    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        batched = self._check_inputs(query, key, value)
        batch_axis = 0 if self.batch_first else 1
        if not batched:
            query, key, value = (t.unsqueeze(batch_axis) for t in (query, key, value))
        n = query.shape[batch_axis]
        length, source_length = query.shape[1 - batch_axis], key.shape[1 - batch_axis]
        mask = self._merge_masks(attn_mask, key_padding_mask, n, length, source_length, batched, query)

        e, w, b = self.embed_dim, self.in_proj_weight, self.in_proj_bias
        q = split_heads(project_rows(query, w, b, 0, e), self.num_heads, self.batch_first)
        k = split_heads(project_rows(key, w, b, e, 2 * e), self.num_heads, self.batch_first)
        v = split_heads(project_rows(value, w, b, 2 * e, 3 * e), self.num_heads, self.batch_first)
        dropout_p = self.dropout if self.training else 0.0
        if mask is not None and mask.dtype == np.bool_:
            mask = ~mask  # this layer's True = masked out; F.attention's True = may attend
        heads, weights = F.attention(q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=dropout_p)
        output = self.out_proj(merge_heads(heads, self.batch_first))

        if not batched:
            output = output.squeeze(batch_axis)
            weights = weights.squeeze(0)
        self.attention_weights = weights if self.keep_attention_weights else None
        if not need_weights:
            return output, None
        if average_attn_weights:
            weights = Tensor(weights.data.mean(axis=-3))
        return output, weights

    def _check_inputs(self, query, key, value):
        for name, t in (("query", query), ("key", key), ("value", value)):
            check_input("MultiheadAttention", t, self.in_proj_weight, what=name)
        layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
        if query.ndim not in (2, 3):
            raise ValueError(f"MultiheadAttention: query must be {layout} or unbatched (L, E), got shape {query.shape}")
        if key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"MultiheadAttention: query, key and value must have the same number of "
                             f"dimensions, got {query.shape}, {key.shape}, {value.shape}")
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.shape[-1] != self.embed_dim:
                raise ValueError(f"MultiheadAttention: {name} must have embed_dim={self.embed_dim} features "
                                 f"in its last axis, got shape {t.shape}")
        if key.shape != value.shape:
            raise ValueError(f"MultiheadAttention: key and value must have the same shape, got "
                             f"{key.shape} and {value.shape}")
        if key.shape[1 if key.ndim == 3 and self.batch_first else 0] == 0:
            raise ValueError(f"MultiheadAttention: key and value need at least one position (S >= 1) "
                             f"to attend to, got shape {key.shape}")
        if query.ndim == 3:
            batch_axis = 0 if self.batch_first else 1
            if query.shape[batch_axis] != key.shape[batch_axis]:
                raise ValueError(f"MultiheadAttention: query and key have batch sizes "
                                 f"{query.shape[batch_axis]} and {key.shape[batch_axis]} "
                                 f"(layout {layout}): they must be equal")
        return query.ndim == 3

    def _merge_masks(self, attn_mask, key_padding_mask, n, length, source_length, batched, like):
        """One mask of shape broadcastable to (N, H, L, S) from ``attn_mask`` and
        ``key_padding_mask`` (None if neither): boolean if both are, else additive float."""
        h = self.num_heads
        attn = _as_mask(attn_mask, "attn_mask", like.device)
        padding = _as_mask(key_padding_mask, "key_padding_mask", like.device)
        parts = []
        if attn is not None:
            if attn.ndim == 2:
                if attn.shape != (length, source_length):
                    raise ValueError(f"MultiheadAttention: a 2-D attn_mask must have shape (L, S) = "
                                     f"{(length, source_length)}, got {attn.shape}")
                parts.append(attn.data)
            elif attn.ndim == 3:
                expected = (n * h, length, source_length)
                if attn.shape != expected:
                    raise ValueError(f"MultiheadAttention: a 3-D attn_mask must have shape (N·num_heads, L, S) "
                                     f"= {expected}, got {attn.shape}")
                parts.append(attn.data.reshape(n, h, length, source_length))
            else:
                raise ValueError(f"MultiheadAttention: attn_mask must be (L, S) = {(length, source_length)} or "
                                 f"(N·num_heads, L, S) = {(n * h, length, source_length)}, got shape {attn.shape}")
        if padding is not None:
            expected = (n, source_length) if batched else (source_length,)
            if padding.shape != expected:
                raise ValueError(f"MultiheadAttention: key_padding_mask must have shape "
                                 f"{'(N, S)' if batched else '(S,)'} = {expected}, got {padding.shape}")
            parts.append(padding.data.reshape(n, 1, 1, source_length))
        if not parts:
            return None
        if len(parts) == 1:
            return Tensor(parts[0])
        if all(p.dtype == np.bool_ for p in parts):
            return Tensor(parts[0] | parts[1])
        xp = like.xp
        return Tensor(_to_additive(parts[0], xp, like.dtype) + _to_additive(parts[1], xp, like.dtype))


# ----------------------------------------------------------------------------- reading the maps
def attention_maps(module: Module) -> "collections.OrderedDict[str, Tensor]":
    """name → attention weights of the last forward, for every attention layer in
    ``module`` that kept them: (N, H, L, S) each (detached), in the model's order.

    For heatmaps: ``attention_maps(model)["transformer.h.0.attn"][0, head].numpy()``."""
    maps = collections.OrderedDict()
    for name, m in module.named_modules():
        weights = getattr(m, "attention_weights", None)
        if isinstance(weights, Tensor):
            maps[name] = weights
    return maps
