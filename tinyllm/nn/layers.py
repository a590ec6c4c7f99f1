"""Layers: Linear, Embedding, LayerNorm, Dropout, activations, positional encodings.

Each behaves like its ``torch.nn`` namesake: the same constructor arguments and defaults,
the same parameter names and shapes (so a torch ``state_dict`` loads), the same default
initialisation (see :mod:`tinyllm.nn.init`). Each ``forward`` is one fused function from
:mod:`tinyllm.functional`.

``device=`` and ``dtype=`` (float32 unless given) say where and how parameters are made;
initial values are always drawn on the host from the seeded generator.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from .. import functional as F
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "Embedding", "LayerNorm", "Dropout", "ReLU", "GELU", "Identity",
           "PositionalEncoding", "LearnedPositionalEncoding", "sinusoidal_positional_encoding"]


def new_parameter(shape, device=None, dtype=None) -> Parameter:
    """An uninitialised parameter of ``shape`` on ``device`` (float32 unless ``dtype``)."""
    dev = backend.get_device(device)
    return Parameter(dev.xp.empty(tuple(shape), dtype=np.dtype(dtype or np.float32)))


def check_positive(value, name, owner):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")


def check_input(owner, x, parameter, what="input"):
    """Refuse an input a layer cannot use, naming the layer, what it expected and what it got:
    not a tl.Tensor, not floating-point, or on another device than the layer's ``parameter``.
    (Shapes are each layer's own business; other float dtypes promote as in NumPy.)"""
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner}: {what} must be a tl.Tensor, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{owner}: {what} must be a floating-point tensor (the layer's parameters are "
                        f"{parameter.dtype}), got dtype {x.dtype}")
    if x.device != parameter.device:
        raise RuntimeError(f"{owner}: {what} is on {x.device!r} but the layer's parameters are on "
                           f"{parameter.device!r}; move one with .to(...)")


# ----------------------------------------------------------------------------- Linear
class Linear(Module):
    r"""y = x Wᵀ + b.  x (..., in_features) → y (..., out_features).

    Parameters: ``weight`` (out_features, in_features), ``bias`` (out_features,) — torch's
    layout. Initialised U(−1/√in, 1/√in), as torch."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        check_positive(in_features, "in_features", "Linear")
        check_positive(out_features, "out_features", "Linear")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = new_parameter((out_features, in_features), device, dtype)
        if bias:
            self.bias = new_parameter((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.in_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        check_input("Linear", x, self.weight)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: input must have shape (..., in_features={self.in_features}), "
                             f"got shape {x.shape}")
        return F.linear(x, self.weight, self.bias)

    def rows(self, x, start, stop):
        """Outputs ``start:stop`` only: x W[start:stop]ᵀ + b[start:stop], for a packed layer
        read in pieces (GPT's ``c_attn`` as Q, K and V; see :func:`project_rows`)."""
        return project_rows(x, self.weight, self.bias, start, stop)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def project_rows(x, weight, bias, start, stop):
    """``F.linear`` with rows ``start:stop`` of a packed projection: x Wᵀ[:, start:stop] + b[start:stop].

    Three such calls (for Q, K, V) cost the same matmul work as one packed call followed
    by a split, but the backward is cheaper: splitting the (…, 3E) output would make each
    piece's gradient a zero-filled (…, 3E) array; slicing the small (3E, E) weight instead
    does that on the weight only."""
    return F.linear(x, weight[start:stop], bias[start:stop] if bias is not None else None)


# ----------------------------------------------------------------------------- Embedding
class Embedding(Module):
    """A lookup table: integer ids (any shape) → rows of ``weight`` (num_embeddings,
    embedding_dim), giving ``(*ids.shape, embedding_dim)``. Initialised N(0, 1), as torch.

    ``ids`` may be a tl.Tensor of integers on the weight's device, or a host NumPy array
    (CPU only)."""

    def __init__(self, num_embeddings, embedding_dim, device=None, dtype=None):
        super().__init__()
        check_positive(num_embeddings, "num_embeddings", "Embedding")
        check_positive(embedding_dim, "embedding_dim", "Embedding")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.weight = new_parameter((num_embeddings, embedding_dim), device, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight, 0.0, 1.0)

    def forward(self, ids):
        return F.embedding(ids, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


# ----------------------------------------------------------------------------- LayerNorm
class LayerNorm(Module):
    r"""y = (x − μ) / √(σ² + ε) ⊙ weight + bias, μ and σ² taken over the trailing
    ``normalized_shape`` axes (usually just the feature axis, D).

    Parameters (when ``elementwise_affine``): ``weight`` = 1 and ``bias`` = 0 of shape
    ``normalized_shape``; ``bias=False`` leaves the shift out (as GPT configs without bias)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(int(n) for n in normalized_shape)
        for n in self.normalized_shape:
            check_positive(n, "normalized_shape", "LayerNorm")
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.number)) or not eps > 0:
            raise ValueError(f"LayerNorm: eps must be a number > 0 (it keeps √(σ² + ε) away from 0 on "
                             f"constant rows; torch accepts 0 and gives nan there), got {eps!r}")
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        if elementwise_affine:
            self.weight = new_parameter(self.normalized_shape, device, dtype)
            if bias:
                self.bias = new_parameter(self.normalized_shape, device, dtype)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        shape = self.normalized_shape
        if self.weight is not None:
            check_input("LayerNorm", x, self.weight)
        if not isinstance(x, Tensor):
            raise TypeError(f"LayerNorm: input must be a tl.Tensor, got {type(x).__name__}")
        if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
            raise ValueError(f"LayerNorm: input of shape {x.shape} does not end in the normalized "
                             f"shape {shape}")
        return F.layer_norm(x, shape, self.weight, self.bias, eps=self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


# ----------------------------------------------------------------------------- Dropout, activations
class Dropout(Module):
    """In training mode, zero each element with probability ``p`` and scale the rest by
    1/(1−p); in eval mode (``model.eval()``), the identity."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x):
        return F.dropout(x, self.p, training=self.training)

    def extra_repr(self):
        return f"p={self.p}"


class ReLU(Module):
    """max(x, 0), elementwise."""

    def forward(self, x):
        return F.relu(x)


class GELU(Module):
    """x · Φ(x), elementwise; ``approximate="tanh"`` is the tanh form GPT-2 uses."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Identity(Module):
    """Returns its input (a placeholder where a layer is switched off)."""

    def forward(self, x):
        return x


# ----------------------------------------------------------------------------- positions
def sinusoidal_positional_encoding(max_len, d_model) -> np.ndarray:
    r"""The table of "Attention Is All You Need", as a host float64 array (max_len, d_model):

        PE[pos, 2i]   = sin(pos / 10000^{2i/d_model})
        PE[pos, 2i+1] = cos(pos / 10000^{2i/d_model})

    Each pair of columns is a sine/cosine of one frequency, from one turn per 2π positions
    down to one per 10000·2π; PE[pos + k] is a fixed rotation of PE[pos], so relative
    offsets are easy for attention to read."""
    check_positive(max_len, "max_len", "sinusoidal_positional_encoding")
    check_positive(d_model, "d_model", "sinusoidal_positional_encoding")
    position = np.arange(max_len, dtype=np.float64)[:, None]
    inverse_frequency = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-math.log(10000.0) / d_model))
    angles = position * inverse_frequency  # (max_len, ceil(d_model / 2))
    table = np.zeros((max_len, d_model))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, : d_model // 2])
    return table


def _check_positions(x, start, max_len, batch_first, owner):
    if x.ndim != 3:
        layout = "(batch, seq, d_model)" if batch_first else "(seq, batch, d_model)"
        raise ValueError(f"{owner}: input must be {layout}, got shape {x.shape}")
    length = x.shape[1] if batch_first else x.shape[0]
    if start < 0 or start + length > max_len:
        raise ValueError(f"{owner}: positions {start}..{start + length - 1} do not fit max_len={max_len}; "
                         f"make max_len at least {start + length}")
    return length


class PositionalEncoding(Module):
    r"""Adds the sinusoidal table to token embeddings, then dropout (the PyTorch tutorial's
    ``PositionalEncoding``):  y = dropout(x + PE[start : start + seq]).

    x is (seq, batch, d_model), or (batch, seq, d_model) with ``batch_first=True``.
    ``start`` offsets the positions (for decoding one token at a time). The table has no
    parameters and is not saved in ``state_dict``: it is computed from the configuration
    in float64 and cached once per device and dtype (so ``.double()`` gets a float64 table,
    not a widened float32 one). ``pe`` is the table (max_len, d_model), for plotting."""

    def __init__(self, d_model, dropout=0.1, max_len=5000, batch_first=False):
        super().__init__()
        self.d_model, self.max_len, self.batch_first = int(d_model), int(max_len), bool(batch_first)
        self.dropout = Dropout(dropout)
        self._tables = {}  # (device name, dtype) -> backend array (max_len, d_model)

    @property
    def pe(self) -> Tensor:
        return Tensor(sinusoidal_positional_encoding(self.max_len, self.d_model))

    def _table(self, like):
        key = (like.device, like.dtype.str)
        table = self._tables.get(key)
        if table is None:
            host = sinusoidal_positional_encoding(self.max_len, self.d_model).astype(like.dtype)
            table = self._tables[key] = backend.to_device(host, like.device)
        return table

    def forward(self, x, start=0):
        length = _check_positions(x, start, self.max_len, self.batch_first, "PositionalEncoding")
        pe = self._table(x)[start:start + length]  # (seq, d_model)
        if not self.batch_first:
            pe = pe.reshape(length, 1, self.d_model)
        return self.dropout(x + Tensor(pe))

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}, batch_first={self.batch_first}"


class LearnedPositionalEncoding(Module):
    r"""Adds a trained vector per position, then dropout:  y = dropout(x + weight[start : start + seq]).

    ``weight`` (max_len, d_model), initialised N(0, 0.02²) as GPT-2's position table. Same
    layouts and ``start`` argument as :class:`PositionalEncoding`."""

    def __init__(self, d_model, dropout=0.1, max_len=1024, batch_first=False, device=None, dtype=None):
        super().__init__()
        self.d_model, self.max_len, self.batch_first = int(d_model), int(max_len), bool(batch_first)
        self.weight = new_parameter((max_len, d_model), device, dtype)
        init.normal_(self.weight, 0.0, 0.02)
        self.dropout = Dropout(dropout)

    def forward(self, x, start=0):
        length = _check_positions(x, start, self.max_len, self.batch_first, "LearnedPositionalEncoding")
        pe = self.weight[start:start + length]
        return self.dropout(x + (pe if self.batch_first else pe.reshape(length, 1, self.d_model)))

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}, batch_first={self.batch_first}"
