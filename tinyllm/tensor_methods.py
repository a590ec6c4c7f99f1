"""The NumPy-style surface of a Tensor: operators, reductions, shapes, conversions.

Each method is one line onto a primitive of :mod:`tinyllm.ops`, plus the argument checks
NumPy and torch users expect. They are written as the methods of ``_Methods`` and installed on
:class:`~tinyllm.tensor.Tensor` when tinyllm is imported (the engine in ``tensor.py`` cannot
import ``ops``, which is built on it). Methods speak NumPy (``axis=``, ``keepdims=``,
``transpose(*axes)``); arithmetic promotes dtypes as torch does (an integer tensor meeting a
float becomes float32, never float64; a 0-d tensor does not widen a tensor with dimensions).
"""
from __future__ import annotations

import numpy as np

from . import ops
from .backend import array_device, get_device
from .tensor import Tensor, is_grad_enabled

__all__ = ["install"]


class _Methods:
    # ---------------------------------------------------------------- arithmetic
    def __add__(self, other):
        return ops.Add.apply(*_promote(self, other))

    def __radd__(self, other):
        return ops.Add.apply(*_promote(other, self))

    def __sub__(self, other):
        return ops.Sub.apply(*_promote(self, other))

    def __rsub__(self, other):
        return ops.Sub.apply(*_promote(other, self))

    def __mul__(self, other):
        return ops.Mul.apply(*_promote(self, other))

    def __rmul__(self, other):
        return ops.Mul.apply(*_promote(other, self))

    def __truediv__(self, other):
        return ops.Div.apply(*_promote(self, other, true_division=True))

    def __rtruediv__(self, other):
        return ops.Div.apply(*_promote(other, self, true_division=True))

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return ops.PowTensor.apply(*_promote(self, exponent))
        base, exponent = _promote(self, exponent)
        return ops.Pow.apply(base, exponent=exponent)

    def __rpow__(self, base):
        return ops.PowTensor.apply(*_promote(base, self))

    def __matmul__(self, other):
        return ops.MatMul.apply(self, other)

    def __rmatmul__(self, other):
        return ops.MatMul.apply(other, self)

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ops.Abs.apply(self)

    # ---------------------------------------------------------------- indexing
    def __getitem__(self, index):
        return ops.GetItem.apply(self, index=ops.device_index(index, self._device))

    def __setitem__(self, index, value):
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError("in-place assignment into a tensor that requires grad would corrupt "
                               "its gradient; assign under tl.no_grad() or to a copy (tensor.clone())")
        value = value.data if isinstance(value, Tensor) else value
        if array_device(value) not in (None, self._device):
            raise RuntimeError(f"cannot assign an array on {array_device(value).name!r} into a tensor "
                               f"on {self.device!r}")
        self.data[ops.device_index(index, self._device)] = value
        self.bump_version()

    def __iter__(self):
        """The sub-tensors along the first axis (``self[0]``, ``self[1]``, …), as torch."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    # ---------------------------------------------------------------- comparisons (no gradient)
    def _compare(self, other, op):
        if isinstance(other, Tensor):
            if other._device is not self._device:
                raise RuntimeError(f"comparison of tensors on different devices: {self.device!r} and "
                                   f"{other.device!r}")
            other_data = other.data
        else:
            other_data = Tensor._constant(other, self._device).data
        return Tensor._wrap(op(self.data, other_data), self._device)

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    def __invert__(self):
        return Tensor._wrap(~self.data, self._device)

    # ---------------------------------------------------------------- reductions
    def sum(self, axis=None, keepdims=False):
        return ops.Sum.apply(self, axis=_norm_axis(axis, self.ndim, "sum"), keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        """The mean; an integer or boolean tensor's is float32 (torch refuses it)."""
        return ops.Mean.apply(as_floating(self), axis=_norm_axis(axis, self.ndim, "mean"), keepdims=keepdims)

    def var(self, axis=None, ddof=0, keepdims=False, **torch_names):
        """The variance Σ (x − μ)² / (N − ddof). ``ddof=0`` by default, as NumPy: torch's
        default is the unbiased ``correction=1`` (pass ``ddof=1``)."""
        _refuse_torch_correction("var", torch_names)
        return ops.Var.apply(as_floating(self), axis=_norm_axis(axis, self.ndim, "var"), ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, ddof=0, keepdims=False, **torch_names):
        """The standard deviation √(Σ (x − μ)² / (N − ddof)); ``ddof=0`` by default, as NumPy
        (torch's default is ``correction=1``: pass ``ddof=1``)."""
        _refuse_torch_correction("std", torch_names)
        return ops.Std.apply(as_floating(self), axis=_norm_axis(axis, self.ndim, "std"), ddof=ddof, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return ops.Max.apply(self, axis=_norm_axis(axis, self.ndim, "max"), keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return -ops.Max.apply(-self, axis=_norm_axis(axis, self.ndim, "min"), keepdims=keepdims)

    def argmax(self, axis=None, keepdims=False):
        return Tensor._wrap(_argreduce(self.xp.argmax, self.data, axis, keepdims), self._device)

    def argmin(self, axis=None, keepdims=False):
        return Tensor._wrap(_argreduce(self.xp.argmin, self.data, axis, keepdims), self._device)

    # ---------------------------------------------------------------- shapes
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape=shape)

    def view(self, *shape):
        return self.reshape(*shape)

    def flatten(self):
        return self.reshape(-1)

    def transpose(self, *axes):
        """A permutation of the axes (NumPy's meaning: all of them reversed by default);
        :meth:`swapaxes` swaps two (torch's ``transpose``)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if not axes:
            axes = tuple(reversed(range(self.ndim)))
        in_range = tuple(axis_index(a, max(self.ndim, 1), "transpose") for a in axes)
        if sorted(in_range) != list(range(self.ndim)):
            raise ValueError(f"transpose axes {axes} are not a permutation of the {self.ndim} axes of shape {self.shape}")
        return ops.Transpose.apply(self, axes=in_range)

    @property
    def T(self):
        return self.transpose()

    def swapaxes(self, axis1, axis2):
        """Swap two axes (torch's ``transpose(dim0, dim1)``; a 0-d tensor takes 0 or −1)."""
        for axis in (axis1, axis2):
            _norm_axis(axis, self.ndim, "swapaxes")  # in range, or a clear error
        if self.ndim == 0:
            return self.reshape(())
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return ops.Transpose.apply(self, axes=tuple(axes))

    def squeeze(self, axis=None):
        """Drop axes of size 1 (all, or those named). Naming an axis of another size is an
        error, as in NumPy (torch leaves it)."""
        if axis is None:
            shape = tuple(n for n in self.shape if n != 1)
        else:
            axes = _norm_axis(axis, self.ndim, "squeeze") or ()
            for a in axes:
                if self.shape[a] != 1:
                    raise ValueError(f"cannot squeeze axis {a} of size {self.shape[a]} (shape {self.shape})")
            shape = tuple(n for i, n in enumerate(self.shape) if i not in axes)
        return self.reshape(shape)

    def unsqueeze(self, axis):
        axis = axis_index(axis, self.ndim + 1, "unsqueeze")  # the new axis' place in the result
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    expand_dims = unsqueeze

    # ---------------------------------------------------------------- elementwise
    def exp(self):
        return ops.Exp.apply(as_floating(self))

    def log(self):
        return ops.Log.apply(as_floating(self))

    def sqrt(self):
        return ops.Sqrt.apply(as_floating(self))

    def tanh(self):
        return ops.Tanh.apply(as_floating(self))

    def abs(self):
        return ops.Abs.apply(self)

    def clip(self, a_min=None, a_max=None):
        return ops.Clip.apply(self, a_min=a_min, a_max=a_max)

    # ---------------------------------------------------------------- torch's names for the same ops
    # (torch code ported to tinyllm runs unchanged where the meaning is the same; where NumPy and
    # torch mean different things by one name, as transpose, size, max, the NumPy meaning stays:
    # see the README's "Differences from PyTorch")
    def matmul(self, other):
        return self @ other

    def pow(self, exponent):
        return self ** exponent

    def neg(self):
        return -self

    def square(self):
        return self * self

    def clamp(self, min=None, max=None):
        return self.clip(min, max)

    def t(self):
        """The transpose of a matrix (a 0-d or 1-D tensor is returned as it is), as torch's."""
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with at most 2 axes, got shape {self.shape}; "
                             f"use swapaxes(a, b) or transpose(*axes)")
        return self.transpose()

    def permute(self, *axes):
        """The axes in a new order (torch's ``permute``; NumPy's ``transpose(*axes)``)."""
        return self.transpose(*axes)

    def dim(self):
        return self.ndim

    def numel(self):
        return self.size

    # ---------------------------------------------------------------- copies, dtypes, devices
    def clone(self):
        """A copy in new memory that stays in the graph (∂copy/∂self = 1), as torch's ``clone``:
        write into the copy without touching ``self`` or anything saved from it."""
        return ops.Clone.apply(self)

    def astype(self, dtype):
        """A copy with another dtype; gradients flow back cast to this tensor's dtype. An
        integer or boolean result is outside the graph (it cannot carry a gradient), as torch."""
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        if not np.issubdtype(dtype, np.floating):
            return Tensor._wrap(self.data.astype(dtype), self._device)
        return ops.Cast.apply(self, dtype=dtype)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def to(self, device=None, dtype=None):
        """This tensor on another device and/or dtype (a differentiable copy)."""
        out = self
        if device is not None and get_device(device) is not self._device:
            out = ops.ToDevice.apply(out, device=get_device(device))
        if dtype is not None and np.dtype(dtype) != out.dtype:
            out = out.astype(dtype)
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")


def install():
    """Put the methods above on Tensor (done once, when tinyllm is imported)."""
    for name, value in vars(_Methods).items():
        # (a class body with __eq__ gets __hash__ = None; Tensor keeps its identity hash)
        if name not in ("__module__", "__qualname__", "__dict__", "__weakref__", "__doc__", "__hash__"):
            setattr(Tensor, name, value)


# ------------------------------------------------------------------------------ helpers
def _is_float(x):
    return x.dtype.kind == "f" if isinstance(x, Tensor) else isinstance(x, float)


_CATEGORY = {"b": 0, "i": 1, "u": 1, "f": 2}  # torch's order: bool < integer < floating


def _promote(a, b, true_division=False):
    """(a, b) cast where torch's promotion differs from NumPy's:

    * an integer or boolean tensor meets a float (a Python float: float32; a float tensor:
      its dtype), or true division: it becomes float;
    * a 0-d tensor meets a tensor with dimensions of the same category (float with float,
      integer with integer): the 0-d one takes the other's dtype, as a Python number would
      (float32 × 0-d float64 is float32, not float64).

    Anything else (NumPy arrays included, which torch also hands to NumPy) passes unchanged."""
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)):
        if isinstance(a, Tensor) and (_is_float(b) or true_division):
            a = as_floating(a)
        elif isinstance(b, Tensor) and (_is_float(a) or true_division):
            b = as_floating(b)
        return a, b
    ka, kb = a.data.dtype.kind, b.data.dtype.kind
    if ka == kb == "f" and a.data.dtype == b.data.dtype:
        return a, b  # the hot path: two tensors of one float dtype
    if ka in "biu" and (kb == "f" or true_division):
        a = a.astype(b.dtype if kb == "f" else np.float32)
    if kb in "biu" and (ka == "f" or true_division):
        b = b.astype(a.dtype if ka == "f" else np.float32)
    if a.ndim == 0 and b.ndim and _CATEGORY[a.dtype.kind] == _CATEGORY[b.dtype.kind]:
        a = a.astype(b.dtype)
    elif b.ndim == 0 and a.ndim and _CATEGORY[a.dtype.kind] == _CATEGORY[b.dtype.kind]:
        b = b.astype(a.dtype)
    return a, b


def as_floating(x):
    """``x`` itself if floating, else (integers, booleans) cast to float32, tinyllm's default
    dtype: what torch gives for exp, log, sqrt, tanh, sigmoid... of an integer tensor."""
    return x if x.data.dtype.kind == "f" else x.astype(np.float32)


def _refuse_torch_correction(name, torch_names):
    if torch_names:
        raise TypeError(f"{name}() takes NumPy's ddof= (default 0: divide by N), not {', '.join(torch_names)}=; "
                        f"torch's default (correction=1, unbiased=True) is ddof=1")


# NumPy's AxisError is both a ValueError (as NumPy raises) and an IndexError (as torch raises).
AxisError = np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError


def axis_index(axis, ndim, what):
    """``axis`` (an int in [−ndim, ndim)) as an index in [0, ndim); otherwise an
    :data:`AxisError` naming ``what``, the axis and the range (never a silent wrap-around)."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{what}: axis must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise AxisError(f"{what}: axis {axis} is out of range (expected {-ndim} <= axis <= {ndim - 1})")
    return int(axis) % ndim


def _norm_axis(axis, ndim, what):
    """``axis`` as a sorted tuple of axes in [0, ndim), or None for all of them. A 0-d tensor
    accepts axis 0 or −1 (as torch's dim) and reduces over nothing."""
    if axis is None:
        return None
    axes = axis if isinstance(axis, (list, tuple)) else (axis,)
    normalised = tuple(sorted(axis_index(a, max(ndim, 1), what) for a in axes))
    if ndim == 0:
        return None
    if len(set(normalised)) != len(normalised):
        raise ValueError(f"repeated axis in {axis}")
    return normalised


def _argreduce(fn, data, axis, keepdims):
    if axis is None:  # index into the flattened array
        out = fn(data)
        return out.reshape((1,) * data.ndim) if keepdims else out
    return fn(data, axis=axis, keepdims=keepdims)


install()
