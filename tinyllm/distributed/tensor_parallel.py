r"""Tensor parallelism by hand: one layer's matrices cut across ranks (Megatron-LM).

Data parallelism copies the model; tensor parallelism cuts each big matrix so that every
rank holds and multiplies only its part. For a linear layer Y = X Wᵀ (W: out × in) there
are two cuts:

* **column-parallel** (cut the outputs): rank r holds the rows W_r of W and computes
  Y_r = X W_rᵀ, its block of the output features. X must be on every rank.
* **row-parallel** (cut the inputs): rank r holds the columns W_r of W and the matching
  features X_r of the input, and computes a partial product; the sum over ranks is Y:
  Y = Σ_r X_r W_rᵀ.

A column-parallel layer's output is split exactly as a row-parallel layer wants its input,
so an MLP (Megatron's Figure 3) needs no communication in the middle::

               rank 0: X ─ f ─ X W₁[rows 0]ᵀ ─ GELU ─ · W₂[:, cols 0]ᵀ ─┐
    X (every rank)                                                     g ─ + b₂ ─ Y (every rank)
               rank 1: X ─ f ─ X W₁[rows 1]ᵀ ─ GELU ─ · W₂[:, cols 1]ᵀ ─┘

GELU is elementwise, so it applies to each block alone. Attention splits the same way by
heads: each rank computes the Q, K, V of its heads (column-parallel), attends, and the output
projection is row-parallel.

The whole lesson is in the two functions f and g, each other's conjugate:

* f (:class:`CopyToTensorParallel`): forward y = x (every rank uses the same x); backward
  ∂L/∂x = Σ_r g_r, because x feeds every rank's part: an **all-reduce in backward**.
* g (:class:`ReduceFromTensorParallel`): forward y = Σ_r x_r (**all-reduce in forward**);
  backward ∂L/∂x_r = g, since each x_r enters the sum with coefficient 1 and y, replicated,
  has the same gradient g on every rank.

Everything outside f…g (layer norms, residuals, biases added after g) is replicated: equal
values and equal gradients on every rank, with no communication.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from ..nn import Dropout, Linear, Module, Parameter
from ..nn.attention import merge_heads, split_heads
from ..nn.layers import project_rows
from ..tensor import Function
from .communicator import Communicator, shard_range

__all__ = ["CopyToTensorParallel", "ReduceFromTensorParallel", "copy_to_tensor_parallel",
           "reduce_from_tensor_parallel", "ColumnParallelLinear", "RowParallelLinear", "ParallelMLP",
           "ParallelCausalSelfAttention"]


# ----------------------------------------------------------------------------- f and g
class CopyToTensorParallel(Function):
    r"""Megatron's f, the entry of a parallel region: y = x;  ∂L/∂x = Σ_r g_r (all-reduce).

    x is replicated; each rank's y feeds that rank's shard, so the total derivative of the
    loss with respect to x sums the contributions of all ranks."""

    def forward(self, x, communicator):
        self.save(communicator)
        return x

    def backward(self, g):
        (communicator,) = self.saved
        return (communicator.all_reduce(g.copy()),)


class ReduceFromTensorParallel(Function):
    r"""Megatron's g, the exit of a parallel region: y = Σ_r x_r (all-reduce);  ∂L/∂x_r = g.

    y is replicated, so g = ∂L/∂y is the same on every rank, and ∂y/∂x_r = I."""

    def forward(self, x, communicator):
        return communicator.all_reduce(x.copy())

    def backward(self, g):
        return (g,)


def copy_to_tensor_parallel(x, communicator: Communicator):
    """f: x unchanged; in backward its gradient is summed over ranks."""
    return CopyToTensorParallel.apply(x, communicator=communicator)


def reduce_from_tensor_parallel(x, communicator: Communicator):
    """g: the sum of every rank's x; in backward the gradient passes through unchanged."""
    return ReduceFromTensorParallel.apply(x, communicator=communicator)


# ----------------------------------------------------------------------------- the two linear layers
def _part(array, index, axis):
    """A parameter holding ``array``'s rows (axis 0) or columns (axis 1) ``index``: a slice,
    or a host index array (moved to the array's device first, as CuPy wants)."""
    if isinstance(index, np.ndarray):
        index = backend.to_device(index, backend.array_device(array))
    return Parameter((array[index] if axis == 0 else array[:, index]).copy())


class ColumnParallelLinear(Module):
    """Rank r's block of a Linear's output features: Y_r = f(X) W_rᵀ + b_r.

    X (..., in_features) is the same on every rank; Y_r is (..., rows on this rank). Made
    from an existing :class:`~tinyllm.nn.Linear` (:meth:`from_linear`), or like one: the
    full layer is initialised with tinyllm's generator and cut, so the same seed gives the
    same numbers as the unsplit layer.
    """

    def __init__(self, in_features, out_features, communicator: Communicator, bias=True, device=None, dtype=None):
        super().__init__()
        self._take(Linear(in_features, out_features, bias=bias, device=device, dtype=dtype), communicator, None)

    @classmethod
    def from_linear(cls, linear: Linear, communicator: Communicator, rows=None) -> "ColumnParallelLinear":
        """The rows ``rows`` (default: this rank's even block) of ``linear``'s weight and bias."""
        layer = cls.__new__(cls)
        Module.__init__(layer)
        layer._take(linear, communicator, rows)
        return layer

    def _take(self, linear, communicator, rows):
        self.communicator = communicator
        if rows is None:
            rows = shard_range(linear.out_features, communicator.rank, communicator.size)
        self.weight = _part(linear.weight.data, rows, axis=0)
        if linear.bias is not None:
            self.bias = _part(linear.bias.data, rows, axis=0)
        else:
            self.register_parameter("bias", None)
        self.in_features, self.out_features = linear.in_features, self.weight.shape[0]

    def forward(self, x):
        return F.linear(copy_to_tensor_parallel(x, self.communicator), self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features} (this rank's), " \
               f"rank={self.communicator.rank} of {self.communicator.size}"


class RowParallelLinear(Module):
    """A Linear whose input features are split over ranks: Y = g(Σ_r X_r W_rᵀ) + b.

    X_r (..., columns on this rank) is this rank's block of the input features (what a
    :class:`ColumnParallelLinear` produces); Y (..., out_features) is the same on every rank.
    The bias is added once, after the sum, so it is replicated."""

    def __init__(self, in_features, out_features, communicator: Communicator, bias=True, device=None, dtype=None):
        super().__init__()
        self._take(Linear(in_features, out_features, bias=bias, device=device, dtype=dtype), communicator, None)

    @classmethod
    def from_linear(cls, linear: Linear, communicator: Communicator, columns=None) -> "RowParallelLinear":
        """The columns ``columns`` (default: this rank's even block) of ``linear``'s weight,
        and its whole bias."""
        layer = cls.__new__(cls)
        Module.__init__(layer)
        layer._take(linear, communicator, columns)
        return layer

    def _take(self, linear, communicator, columns):
        self.communicator = communicator
        if columns is None:
            columns = shard_range(linear.in_features, communicator.rank, communicator.size)
        self.weight = _part(linear.weight.data, columns, axis=1)
        if linear.bias is not None:
            self.bias = Parameter(linear.bias.data.copy())
        else:
            self.register_parameter("bias", None)
        self.in_features, self.out_features = self.weight.shape[1], linear.out_features

    def forward(self, x):
        y = reduce_from_tensor_parallel(F.linear(x, self.weight), self.communicator)
        return y if self.bias is None else y + self.bias

    def extra_repr(self):
        return f"in_features={self.in_features} (this rank's), out_features={self.out_features}, " \
               f"rank={self.communicator.rank} of {self.communicator.size}"


# ----------------------------------------------------------------------------- the split blocks
class ParallelMLP(Module):
    """GPT's MLP cut across ranks: c_fc column-parallel, GELU on each block, c_proj
    row-parallel (the figure in the module docstring). x and the output are (B, T, C) on
    every rank; the hidden layer (B, T, 4C) exists only in blocks."""

    def __init__(self, mlp, communicator: Communicator):
        super().__init__()
        hidden = shard_range(mlp.c_fc.out_features, communicator.rank, communicator.size)
        self.c_fc = ColumnParallelLinear.from_linear(mlp.c_fc, communicator, hidden)
        self.gelu = mlp.gelu
        self.c_proj = RowParallelLinear.from_linear(mlp.c_proj, communicator, hidden)
        self.dropout = Dropout(mlp.dropout.p)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class ParallelCausalSelfAttention(Module):
    """GPT's causal self-attention with its heads cut across ranks.

    Rank r keeps the heads ``shard_range(n_head, r, N)``: the Q, K and V rows of ``c_attn``
    for those heads (column-parallel) and the matching columns of ``c_proj``
    (row-parallel). Heads are independent, so each rank attends with its own and only the
    output projection's partial sums meet, in g."""

    def __init__(self, attention, communicator: Communicator):
        super().__init__()
        heads = shard_range(attention.n_head, communicator.rank, communicator.size)
        if heads.stop == heads.start:
            raise ValueError(f"ParallelCausalSelfAttention: {attention.n_head} heads cannot be cut over "
                             f"{communicator.size} ranks (each rank needs at least one)")
        c, d = attention.n_embd, attention.n_embd // attention.n_head
        columns = np.arange(heads.start * d, heads.stop * d)  # this rank's features of Q, K and V
        self.c_attn = ColumnParallelLinear.from_linear(attention.c_attn, communicator,
                                                       np.concatenate([columns, c + columns, 2 * c + columns]))
        self.c_proj = RowParallelLinear.from_linear(attention.c_proj, communicator, columns)
        self.resid_dropout = Dropout(attention.resid_dropout.p)
        self.communicator, self.n_head, self.width = communicator, heads.stop - heads.start, len(columns)
        self.dropout = attention.dropout

    def forward(self, x):
        """x (B, T, C) on every rank → (B, T, C) on every rank."""
        x = copy_to_tensor_parallel(x, self.communicator)  # f, once for Q, K and V
        w, b, e = self.c_attn.weight, self.c_attn.bias, self.width
        q, k, v = (split_heads(project_rows(x, w, b, i * e, (i + 1) * e), self.n_head, batch_first=True)
                   for i in range(3))
        y, _ = F.attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        return self.resid_dropout(self.c_proj(merge_heads(y, batch_first=True)))
