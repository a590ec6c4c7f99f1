"""Primitive operations: each a small class with its forward and its backward side by side.

Notation (the chapters use the same): ``y`` is the op's output, ``g = ∂L/∂y`` the gradient
arriving from above, and each backward returns ``∂L/∂x = g · ∂y/∂x`` for every input ``x``.
Forward and backward work on raw backend arrays (NumPy or CuPy), taking the array module
from ``self.xp``; broadcasting is undone by :func:`~tinyllm.tensor.unbroadcast`.
"""
from __future__ import annotations

import numpy as np

from .backend import array_device, scatter_add, to_device
from .tensor import Function, Tensor, unbroadcast


def shape_of(x):
    """The shape of an array, or () for a Python number (without asking NumPy, which
    would dispatch on CuPy arrays)."""
    return getattr(x, "shape", ())


def _power(xp, x, p):
    """``x ** p`` without NumPy's slow generic ``pow`` for the common small exponents."""
    if p == 2:
        return x * x
    if p == 3:
        return x * x * x
    if p == 1:
        return x.copy()
    if p == 0.5:
        return xp.sqrt(x)
    if p == -0.5:  # the derivative of √x: NaN below 0, as √x itself (NumPy's (−∞)^−½ would be 0)
        return 1 / xp.sqrt(x)
    if p == -1:
        return 1 / x
    if p == 0:
        return xp.ones_like(x)
    return x ** p


# ----------------------------------------------------------------------------- arithmetic
class Add(Function):
    """y = a + b;  ∂L/∂a = g,  ∂L/∂b = g (each summed over the axes it was broadcast along)."""

    def forward(self, a, b):
        self.save(shape_of(a), shape_of(b))
        return a + b

    def backward(self, g):
        sa, sb = self.saved
        need_a, need_b = self.needs_grad
        return (unbroadcast(g, sa) if need_a else None,
                unbroadcast(g, sb) if need_b else None)


class Sub(Function):
    """y = a − b;  ∂L/∂a = g,  ∂L/∂b = −g."""

    def forward(self, a, b):
        self.save(shape_of(a), shape_of(b))
        return a - b

    def backward(self, g):
        sa, sb = self.saved
        need_a, need_b = self.needs_grad
        return (unbroadcast(g, sa) if need_a else None,
                unbroadcast(-g, sb) if need_b else None)


class Mul(Function):
    """y = a · b;  ∂L/∂a = g · b,  ∂L/∂b = g · a.

    Each side's gradient needs only the *other* side, so only that is kept (as torch:
    ``x * 2`` keeps nothing of x, and a later in-place write to x is harmless)."""

    def forward(self, a, b):
        need_a, need_b = self.needs_grad
        self.save(shape_of(a), shape_of(b), b if need_a else None, a if need_b else None)
        return a * b

    def backward(self, g):
        shape_a, shape_b, b, a = self.saved
        need_a, need_b = self.needs_grad
        return (unbroadcast(g * b, shape_a) if need_a else None,
                unbroadcast(g * a, shape_b) if need_b else None)


class Div(Function):
    """y = a / b;  ∂L/∂a = g / b,  ∂L/∂b = −g · a / b² = −g · y / b."""

    def forward(self, a, b):
        y = a / b
        self.save(shape_of(a), b, y if self.needs_grad[1] else None)
        return y

    def backward(self, g):
        shape_a, b, y = self.saved
        need_a, need_b = self.needs_grad
        ga = g / b
        return (unbroadcast(ga, shape_a) if need_a else None,
                unbroadcast(-ga * y, shape_of(b)) if need_b else None)


class Clone(Function):
    """y = a copy of x in new memory;  ∂L/∂x = g."""

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return (g,)


class Neg(Function):
    """y = −x;  ∂L/∂x = −g."""

    def forward(self, x):
        return -x

    def backward(self, g):
        return (-g,)


class Pow(Function):
    """y = xᵖ for a constant p;  ∂L/∂x = g · p · xᵖ⁻¹ (0 for p = 0, also at x = 0, as torch)."""

    def forward(self, x, exponent):
        if isinstance(exponent, Tensor):  # pragma: no cover - routed to PowTensor
            raise TypeError("Pow takes a constant exponent")
        self.save(x, exponent)
        return _power(self.xp, x, exponent)

    def backward(self, g):
        x, p = self.saved
        if p == 0:  # y = 1 everywhere; p · x⁻¹ would be 0 · ∞ = nan at x = 0
            return (self.xp.zeros_like(g),)
        return (g * (p * _power(self.xp, x, p - 1)),)


class PowTensor(Function):
    """y = aᵇ with both sides tensors;  ∂L/∂a = g · b · aᵇ⁻¹,  ∂L/∂b = g · y · ln a.

    As torch: ∂L/∂a = 0 where b = 0 (y = 1 whatever a is); ∂L/∂b = 0 where a = 0 and
    b ≥ 0 (y = 0ᵇ is flat there), and nan where a < 0 (ln a is not real)."""

    def forward(self, a, b):
        y = self.xp.power(a, b)
        self.save(a, b, y)
        return y

    def backward(self, g):
        a, b, y = self.saved
        xp = self.xp
        need_a, need_b = self.needs_grad
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):  # 0⁻¹, ln 0 and ln(−1): inf and nan, as torch
            if need_a:
                ga = unbroadcast(xp.where(b == 0, 0, g * b * xp.power(a, b - 1)), shape_of(a))
            if need_b:
                gb = unbroadcast(xp.where((a == 0) & (b >= 0), 0, g * y * xp.log(a)), shape_of(b))
        return ga, gb


class Abs(Function):
    """y = |x|;  ∂L/∂x = g · sign(x): g for x > 0, −g for x < 0, 0 at x = 0 (and at NaN, as torch)."""

    def forward(self, x):
        self.save(x)
        return self.xp.abs(x)

    def backward(self, g):
        (x,) = self.saved
        xp = self.xp
        return (xp.where(x > 0, g, xp.where(x < 0, -g, 0)),)


class Clip(Function):
    """y = min(max(x, lo), hi);  ∂L/∂x = g where lo ≤ x ≤ hi, else 0."""

    def forward(self, x, a_min=None, a_max=None):
        self.save(x, a_min, a_max)
        return self.xp.clip(x, a_min, a_max)

    def backward(self, g):
        x, lo, hi = self.saved
        keep = True
        if lo is not None:
            keep = x >= lo
        if hi is not None:
            keep = keep & (x <= hi) if lo is not None else x <= hi
        return (g * keep,)


# ----------------------------------------------------------------------------- matmul
class MatMul(Function):
    """y = a @ b (NumPy's matmul, batch axes broadcast);
    ∂L/∂a = g @ bᵀ,  ∂L/∂b = aᵀ @ g (summed over broadcast batch axes).

    A vector operand is a matrix for matmul: (k,) → (1, k) on the left, (k, 1) on the right,
    and that axis is dropped from y; the backward puts it back on g, then all are matrices."""

    kernel_name = "MatMul"  # a faster implementation may run instead: tinyllm/kernels/cpu.py

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands need at least one dimension (use * for scalars)")
        ka, kb = a.shape[-1], (b.shape[-2] if b.ndim > 1 else b.shape[0])
        if ka != kb:
            raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not match: "
                             f"{ka} (last axis of the first) != {kb} (axis -2 of the second)")
        need_a, need_b = self.needs_grad
        self.save(a if need_b else None, b if need_a else None, a.shape, b.shape)  # ∂a needs b, ∂b needs a
        return a @ b

    def backward(self, g):
        a, b, shape_a, shape_b = self.saved
        a_mat, b_mat = matrix_shapes(shape_a, shape_b)
        g = g.reshape(g.shape[:max(len(a_mat), len(b_mat)) - 2] + (a_mat[-2], b_mat[-1]))
        need_a, need_b = self.needs_grad
        ga = unbroadcast(g @ b.reshape(b_mat).swapaxes(-1, -2), a_mat).reshape(shape_a) if need_a else None
        gb = unbroadcast(a.reshape(a_mat).swapaxes(-1, -2) @ g, b_mat).reshape(shape_b) if need_b else None
        return ga, gb


def matrix_shapes(shape_a, shape_b):
    """The shapes matmul gives its operands: a vector becomes a row (left) or a column (right)."""
    return ((1,) + shape_a if len(shape_a) == 1 else shape_a), (shape_b + (1,) if len(shape_b) == 1 else shape_b)


# ----------------------------------------------------------------------------- reductions
def _expand(g, shape, axis, keepdims):
    """Give a reduced gradient back its reduced axes (as size 1) so it broadcasts."""
    if axis is None:
        return g.reshape((1,) * len(shape)) if not keepdims else g
    if not keepdims:
        g = g.reshape(tuple(1 if i in axis else n for i, n in enumerate(shape)))
    return g


def _count(shape, axis):
    if axis is None:
        return int(np.prod(shape))
    return int(np.prod([shape[a] for a in axis]))


class Sum(Function):
    """y = Σ_axis x;  ∂L/∂x = g broadcast back along the summed axes."""

    def forward(self, x, axis=None, keepdims=False):
        self.save(x.shape, axis, keepdims)
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, g):
        shape, axis, keepdims = self.saved
        return (self.xp.broadcast_to(_expand(g, shape, axis, keepdims), shape),)


class Mean(Function):
    """y = (1/N) Σ_axis x;  ∂L/∂x = g / N broadcast back (N = number of averaged items)."""

    def forward(self, x, axis=None, keepdims=False):
        self.save(x.shape, axis, keepdims)
        return x.mean(axis=axis, keepdims=keepdims)

    def backward(self, g):
        shape, axis, keepdims = self.saved
        g = _expand(g, shape, axis, keepdims) / _count(shape, axis)
        return (self.xp.broadcast_to(g, shape),)


def _centered(xp, x, axis):
    """x − mean(x) over ``axis`` (a tuple, or None for all), with exact zeros where the data
    is constant: each group is first shifted by its first element (x − x₀ is exactly 0 when
    all are equal, while a mean of equal numbers may be off by an ulp)."""
    if x.size:
        first = x.reshape(-1)[:1].reshape(()) if axis is None else \
            x[tuple(slice(0, 1) if i in axis else slice(None) for i in range(x.ndim))]
        x = x - xp.where(xp.isfinite(first), first, 0)  # no shift by ∞ or NaN (∞ − ∞ is NaN)
    return x - x.mean(axis=axis, keepdims=True)


class Var(Function):
    """y = Σ (x − μ)² / (N − ddof);  ∂L/∂x = g · 2 (x − μ) / (N − ddof).

    With N − ddof ≤ 0 (one value and ddof = 1, say) the divisor is 0, as torch: the result
    is nan (0/0) or inf, and so are the gradients."""

    def forward(self, x, axis=None, ddof=0, keepdims=False):
        centered = _centered(self.xp, x, axis)
        dof = x.dtype.type(max(_count(x.shape, axis) - ddof, 0))  # an array scalar: x/0 is inf or nan
        self.save(centered, axis, keepdims, dof)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (centered * centered).sum(axis=axis, keepdims=keepdims) / dof

    def backward(self, g):
        centered, axis, keepdims, dof = self.saved
        g = _expand(g, centered.shape, axis, keepdims)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g * centered * (2 / dof),)


class Std(Function):
    """y = √(Σ (x − μ)² / (N − ddof));  ∂L/∂x = g · (x − μ) / (y · (N − ddof)), and 0 where
    y = 0 (all values equal: √ has no slope to give there; torch masks it the same way)."""

    def forward(self, x, axis=None, ddof=0, keepdims=False):
        centered = _centered(self.xp, x, axis)
        dof = x.dtype.type(max(_count(x.shape, axis) - ddof, 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            y = self.xp.sqrt((centered * centered).sum(axis=axis, keepdims=True) / dof)
        self.save(centered, y, axis, keepdims, dof)
        return y if keepdims else (y.reshape(()) if axis is None else y.squeeze(axis))

    def backward(self, g):
        centered, y, axis, keepdims, dof = self.saved
        g = _expand(g, centered.shape, axis, keepdims)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.xp.where(y == 0, 0, g * centered / (y * dof)),)


class Max(Function):
    """y = max_axis x;  ∂L/∂x = g at the maximum, shared equally between ties (as
    ``torch.amax``), 0 elsewhere."""

    def forward(self, x, axis=None, keepdims=False):
        y = x.max(axis=axis, keepdims=True)
        self.save(x, y, axis, keepdims)
        return y if keepdims else (y.reshape(()) if axis is None else y.squeeze(axis))

    def backward(self, g):
        x, y, axis, keepdims = self.saved
        is_max = x == y
        count = is_max.sum(axis=axis, keepdims=True)
        g = _expand(g, x.shape, axis, keepdims)
        return (is_max * (g / count),)


# ----------------------------------------------------------------------------- shapes
class Reshape(Function):
    """y = x reshaped;  ∂L/∂x = g reshaped back."""

    def forward(self, x, shape):
        self.save(x.shape)
        return x.reshape(shape)

    def backward(self, g):
        (shape,) = self.saved
        return (g.reshape(shape),)


class Transpose(Function):
    """y = x with axes permuted;  ∂L/∂x = g with the inverse permutation."""

    def forward(self, x, axes):
        self.save(axes)
        return x.transpose(axes)

    def backward(self, g):
        (axes,) = self.saved
        return (g.transpose(tuple(int(i) for i in np.argsort(axes))),)


class BroadcastTo(Function):
    """y = x broadcast to a shape;  ∂L/∂x = g summed over the broadcast axes."""

    def forward(self, x, shape):
        self.save(x.shape)
        return self.xp.broadcast_to(x, shape)

    def backward(self, g):
        (shape,) = self.saved
        return (unbroadcast(g, shape),)


def device_index(index, device):
    """An index with every array-like part (Tensor, list, NumPy array) on ``device``.

    Explicit transfers only: CuPy refuses host arrays inside device indexing."""
    if isinstance(index, tuple):
        return tuple(device_index(i, device) for i in index)
    if isinstance(index, Tensor):
        if index.device != device.name:
            raise RuntimeError(f"index tensor on {index.device!r} used on a tensor on {device.name!r}")
        if np.issubdtype(index.dtype, np.floating):
            raise IndexError(f"tensors used as indices must be integer or boolean, got {index.dtype}")
        return index.data
    if isinstance(index, (list, np.ndarray)):
        arr = np.asarray(index)
        if arr.dtype == object or np.issubdtype(arr.dtype, np.floating):
            raise IndexError(f"index arrays must be integer or boolean, got {arr.dtype}")
        return device.from_host(arr)
    if array_device(index) not in (None, device):
        raise RuntimeError(f"index array on {array_device(index).name!r} used on a tensor on {device.name!r}")
    return index


def _picks_each_once(index):
    """True when ``index`` (slices, integers, boolean masks) cannot pick an element twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, slice, np.integer))
               or (hasattr(p, "dtype") and p.dtype == np.bool_) for p in parts)


class GetItem(Function):
    """y = x[index];  ∂L/∂x = zeros with g added at the indexed places.

    With integer-array indices an element can be picked several times; its gradient is
    the sum over the picks (a scatter-add, ``np.add.at``)."""

    def forward(self, x, index):
        self.save(x.shape, x.dtype, index)
        return x[index]

    def backward(self, g):
        shape, dtype, index = self.saved
        grad = self.xp.zeros(shape, dtype=dtype)
        if _picks_each_once(index):
            grad[index] = g
        else:
            scatter_add(self.device, grad, index, g)
        return (grad,)


class Concatenate(Function):
    """y = [x₁, x₂, …] joined along an axis;  ∂L/∂xᵢ = the slice of g where xᵢ went."""

    def forward(self, *xs, axis=0):
        self.save(axis, [x.shape[axis] for x in xs])
        return self.xp.concatenate(xs, axis=axis)

    def backward(self, g):
        axis, sizes = self.saved
        bounds = np.cumsum(sizes)[:-1].tolist()
        return tuple(self.xp.split(g, bounds, axis=axis))


class Stack(Function):
    """y = [x₁, x₂, …] stacked along a new axis;  ∂L/∂xᵢ = g taken at position i of it."""

    def forward(self, *xs, axis=0):
        self.save(axis, len(xs))
        return self.xp.stack(xs, axis=axis)

    def backward(self, g):
        axis, n = self.saved
        return tuple(self.xp.take(g, i, axis=axis) for i in range(n))


class Where(Function):
    """y = cond ? a : b;  ∂L/∂a = g where cond, ∂L/∂b = g where not cond."""

    def forward(self, cond, a, b):
        self.save(cond, shape_of(a), shape_of(b))
        return self.xp.where(cond, a, b)

    def backward(self, g):
        cond, sa, sb = self.saved
        zero = g.dtype.type(0)
        return None, unbroadcast(self.xp.where(cond, g, zero), sa), unbroadcast(self.xp.where(cond, zero, g), sb)


class Maximum(Function):
    """y = max(a, b) elementwise;  ∂L/∂a = g where a > b, ∂L/∂b = g where b > a, and g/2
    to each where they are equal (as ``torch.maximum``)."""

    def forward(self, a, b):
        self.save(a, b)
        return self.xp.maximum(a, b)

    def backward(self, g):
        a, b = self.saved
        xp = self.xp
        shared = xp.where(a == b, g / 2, g)  # where a NaN makes every comparison False, both get g (as torch)
        return (unbroadcast(xp.where(a < b, 0, shared), shape_of(a)),
                unbroadcast(xp.where(a > b, 0, shared), shape_of(b)))


# ----------------------------------------------------------------------------- elementwise
class Exp(Function):
    """y = eˣ;  ∂L/∂x = g · y."""

    def forward(self, x):
        y = self.xp.exp(x)
        self.save(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return (g * y,)


class Log(Function):
    """y = ln x;  ∂L/∂x = g / x (x = 0 gives ±inf, like torch; x < 0 gives nan)."""

    def forward(self, x):
        self.save(x)
        return self.xp.log(x)

    def backward(self, g):
        (x,) = self.saved
        return (g / x,)


class Sqrt(Function):
    """y = √x;  ∂L/∂x = g / (2y) (inf at x = 0, like torch)."""

    def forward(self, x):
        y = self.xp.sqrt(x)
        self.save(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return (g / (2 * y),)


class Tanh(Function):
    """y = tanh x;  ∂L/∂x = g · (1 − y²)."""

    def forward(self, x):
        y = self.xp.tanh(x)
        self.save(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return (g * (1 - y * y),)


class Cast(Function):
    """y = x converted to another dtype;  ∂L/∂x = g converted back to x's dtype."""

    def forward(self, x, dtype):
        self.save(x.dtype)
        return x.astype(dtype)

    def backward(self, g):
        (dtype,) = self.saved
        return (g.astype(dtype),)


class ToDevice(Function):
    """y = x copied to another device;  ∂L/∂x = g copied back."""

    def forward(self, x, device):
        self.save(self.device)
        self.device = device  # the output lives on the target device
        return to_device(x, device)

    def backward(self, g):
        (source,) = self.saved
        return (to_device(g, source),)
