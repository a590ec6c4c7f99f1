r"""Post-training int8 quantization: weights stored as 8-bit integers and a scale per row.

Symmetric, per output channel. For a weight W (out, in), each row c (one output channel)
gets its own scale, the largest magnitude in the row mapped to 127:

    s_c = max_i |W_ci| / 127,     q_ci = round(W_ci / s_c) ∈ {−127, …, 127}   (int8)
    Ŵ_ci = q_ci · s_c,            |W_ci − Ŵ_ci| ≤ s_c / 2

A Linear layer then computes, with the scale pulled out of the sum,

    y_c = Σ_i x_i Ŵ_ci + b_c = s_c · (Σ_i x_i q_ci) + b_c

so the product runs against the integer codes and one multiply per output rescales it
(NumPy and CuPy have no int8 matrix product to call, so the codes are widened to the input's
float type for the product; the saving here is in storage, 4× for float32 weights, not in
speed). An embedding table (V, D) is quantized per row (per token), which for GPT's tied
``lm_head`` (= ``wte``, (V, C)) is also per output channel: the one int8 table serves both.

Per *channel* rather than one scale per matrix, because rows differ in range: one large
row would otherwise leave the small rows only a few of the 255 levels.

    quantize_model(model)                 # every Linear and Embedding, in place
    quantize_model(model, ["lm_head"])    # only those named
    model_size_bytes(model)               # bytes of all parameters and buffers, tied ones once

Only ``nn.Linear`` and ``nn.Embedding`` are supported; naming any other layer raises a
ValueError that names it (e.g. a ``MultiheadAttention``, whose packed ``in_proj_weight`` is a
bare parameter, stays in floating point).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..nn.module import Buffer, Module, Parameter
from ..tensor import Function, Tensor

__all__ = ["quantize_per_channel", "dequantize", "QuantizedLinear", "QuantizedEmbedding",
           "QuantizedLinearFunction", "quantize_model", "quantized_module_names", "model_size_bytes"]

QMAX = 127  # symmetric int8: −127 … 127 (−128 is left unused, so that the range is symmetric)


def _array(x):
    return x.data if isinstance(x, Tensor) else x


def quantize_per_channel(weight):
    """``weight`` (out, in) [tensor or array] → ``(q, scale)``: int8 codes (out, in) and
    the per-row scales (out,) in the weight's float dtype, on the weight's device.

    s_c = max_i |W_ci| / 127 (1 for an all-zero row, whose codes are all 0);
    q = clip(round(W / s), −127, 127)."""
    w = _array(weight)
    if w.ndim != 2:
        raise ValueError(f"quantize_per_channel: expected a 2-D weight (out, in), got shape {tuple(w.shape)}")
    if not np.issubdtype(w.dtype, np.floating):
        raise TypeError(f"quantize_per_channel: expected a floating-point weight, got dtype {w.dtype}")
    xp = backend.array_device(w).xp
    peak = xp.abs(w).max(axis=1)
    scale = xp.where(peak > 0, peak / QMAX, 1).astype(w.dtype, copy=False)
    q = xp.rint(w / scale[:, None])
    q = xp.clip(q, -QMAX, QMAX).astype(np.int8)
    return q, scale


def dequantize(q, scale):
    """The float weight the codes stand for: Ŵ = q · s (row c scaled by s_c); (out, in)."""
    q, scale = _array(q), _array(scale)
    return q.astype(scale.dtype) * scale[:, None]


# ----------------------------------------------------------------------------- the ops
class QuantizedLinearFunction(Function):
    r"""y = s ⊙ (x qᵀ) + b: x (..., in), int8 codes q (out, in), scales s (out,), bias b (out,).

    ∂L/∂x = (g ⊙ s) q,  ∂L/∂b = Σ_rows g; the codes and scales are constants (a quantized
    model is for inference; to train, keep the float model)."""

    def forward(self, x, q, scale, bias=None):
        x2 = x.reshape(-1, x.shape[-1])
        y = x2 @ q.T.astype(x.dtype)  # widen the codes: no int8 product in NumPy/CuPy
        y *= scale
        if bias is not None:
            y += bias
        self.save(q, scale, x.shape)
        return y.reshape(x.shape[:-1] + (q.shape[0],))

    def backward(self, g):
        q, scale, shape = self.saved
        g2 = g.reshape(-1, g.shape[-1])
        gx = ((g2 * scale) @ q.astype(g.dtype)).reshape(shape) if self.needs_grad[0] else None
        grads = (gx, None, None)
        if len(self.needs_grad) == 4:
            grads += (g2.sum(axis=0) if self.needs_grad[3] else None,)
        return grads


class QuantizedEmbeddingFunction(Function):
    """y = q[ids] · s[ids]: the rows of the int8 table picked by ``ids``, rescaled to floats
    (no gradient: the table is a constant)."""

    def forward(self, q, scale, ids):
        return q[ids].astype(scale.dtype) * scale[ids][..., None]

    def backward(self, g):  # pragma: no cover - its inputs never require gradients
        return None, None


# ----------------------------------------------------------------------------- the layers
class QuantizedLinear(Module):
    """A :class:`~tinyllm.nn.Linear` whose weight is stored as int8 codes and a scale per
    output channel: y = s ⊙ (x qᵀ) + b.  x (..., in_features) → (..., out_features).

    Buffers ``weight`` (out, in) int8 and ``weight_scale`` (out,) float; ``bias`` stays a
    float parameter. Build one with :meth:`from_float`."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        dev = backend.get_device(device)
        self.weight = Buffer(Tensor(dev.xp.zeros((out_features, in_features), dtype=np.int8)))
        self.weight_scale = Buffer(Tensor(dev.xp.ones((out_features,), dtype=np.dtype(dtype or np.float32))))
        if bias:
            self.bias = Parameter(dev.xp.zeros((out_features,), dtype=np.dtype(dtype or np.float32)))
        else:
            self.register_parameter("bias", None)

    @classmethod
    def from_float(cls, linear, codes=None):
        """The quantized twin of ``linear`` (its bias shared). ``codes``: the
        ``(weight, weight_scale)`` buffers to use, for a weight tied to another layer."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"QuantizedLinear.from_float expects an nn.Linear, got {type(linear).__name__}")
        layer = cls(linear.in_features, linear.out_features, bias=False, device=linear.weight.device)
        layer.weight, layer.weight_scale = codes if codes is not None else _codes(linear.weight)
        if linear.bias is not None:
            layer.bias = linear.bias  # shared with the float layer: biases stay float
        return layer

    def dequantized_weight(self) -> Tensor:
        """Ŵ = q · s, (out, in), as a float tensor (for inspection)."""
        return Tensor(dequantize(self.weight, self.weight_scale))

    def forward(self, x):
        return self.rows(x, 0, self.out_features)

    def rows(self, x, start, stop):
        """Outputs ``start:stop`` only, from those rows of the codes (as :meth:`nn.Linear.rows`:
        GPT's attention reads its packed ``c_attn`` this way)."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"QuantizedLinear: input of shape {x.shape} needs {self.in_features} features "
                             f"in its last axis")
        inputs = (x, self.weight[start:stop], self.weight_scale[start:stop])
        if self.bias is not None:
            inputs += (self.bias[start:stop],)
        return QuantizedLinearFunction.apply(*inputs)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, int8")


class QuantizedEmbedding(Module):
    """An :class:`~tinyllm.nn.Embedding` stored as int8 codes with one scale per row:
    ids (any shape) → (*ids.shape, embedding_dim) floats q[ids] · s[ids].

    Buffers ``weight`` (num_embeddings, embedding_dim) int8 and ``weight_scale``
    (num_embeddings,) float. Build one with :meth:`from_float`."""

    def __init__(self, num_embeddings, embedding_dim, device=None, dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        dev = backend.get_device(device)
        self.weight = Buffer(Tensor(dev.xp.zeros((num_embeddings, embedding_dim), dtype=np.int8)))
        self.weight_scale = Buffer(Tensor(dev.xp.ones((num_embeddings,), dtype=np.dtype(dtype or np.float32))))

    @classmethod
    def from_float(cls, embedding, codes=None):
        """The quantized twin of ``embedding``; ``codes`` as in :meth:`QuantizedLinear.from_float`."""
        if not isinstance(embedding, nn.Embedding):
            raise TypeError(f"QuantizedEmbedding.from_float expects an nn.Embedding, "
                            f"got {type(embedding).__name__}")
        layer = cls(embedding.num_embeddings, embedding.embedding_dim, device=embedding.weight.device)
        layer.weight, layer.weight_scale = codes if codes is not None else _codes(embedding.weight)
        return layer

    def dequantized_weight(self) -> Tensor:
        return Tensor(dequantize(self.weight, self.weight_scale))

    def forward(self, ids):
        ids = F.as_index_array(ids, self.weight._device, "QuantizedEmbedding", self.num_embeddings)
        return QuantizedEmbeddingFunction.apply(self.weight, self.weight_scale, ids=ids)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}, int8"


def _codes(weight):
    q, s = quantize_per_channel(weight)
    return Buffer(Tensor(q)), Buffer(Tensor(s))


# ----------------------------------------------------------------------------- whole models
_QUANTIZERS = {nn.Linear: QuantizedLinear, nn.Embedding: QuantizedEmbedding}


def quantize_model(model, modules=None):
    """Replace ``Linear`` and ``Embedding`` layers of ``model`` by their int8 twins, in place;
    returns ``model``.

    ``modules``: the dotted names of the layers to quantize (as ``named_modules()`` gives
    them); None means every Linear and Embedding. A name that is not a Linear or an
    Embedding is refused with a ValueError naming it and its type. Weights shared by two
    layers (GPT's ``lm_head`` and ``transformer.wte``) are quantized once and stay shared.
    """
    named = dict(model.named_modules())
    if modules is None:
        targets = [name for name, m in named.items() if type(m) in _QUANTIZERS and name]
    else:
        targets = [modules] if isinstance(modules, str) else list(modules)
        for name in targets:
            if name not in named:
                raise ValueError(f"quantize_model: {type(model).__name__} has no layer named {name!r}")
            layer = named[name]
            if type(layer) not in _QUANTIZERS:
                kind = ("already quantized" if type(layer) in _QUANTIZERS.values() else "not supported")
                raise ValueError(f"quantize_model: cannot quantize {name!r} ({type(layer).__name__}): {kind}; "
                                 f"only Linear and Embedding layers can be quantized")
    shared = {}  # id(float weight) -> its (codes, scales) buffers
    for name in targets:
        layer = named[name]
        key = id(layer.weight)
        if key not in shared:
            shared[key] = _codes(layer.weight)
        quantized = _QUANTIZERS[type(layer)].from_float(layer, codes=shared[key])
        _set_submodule(model, name, quantized)
    return model


def quantized_module_names(model):
    """Dotted names of the quantized layers in ``model`` (to rebuild its structure on load)."""
    return [name for name, m in model.named_modules() if isinstance(m, (QuantizedLinear, QuantizedEmbedding))]


def _set_submodule(model, name, module):
    parent_name, _, child = name.rpartition(".")
    parent = model
    for part in parent_name.split(".") if parent_name else []:
        parent = getattr(parent, part)
    setattr(parent, child, module)


def model_size_bytes(model) -> int:
    """Bytes of every parameter and buffer of ``model``, a tensor shared by two names once
    (what the weights take in memory, and about what they take on disk)."""
    return int(sum(t.data.nbytes for t in model._all_tensors()))  # each tensor once
