"""Making tensors (zeros, ones, random numbers, ranges) and joining or picking them."""
from __future__ import annotations

import numpy as np

from . import backend
from .ops import BroadcastTo, Concatenate, Maximum, Stack, Where
from .tensor import Tensor
from .tensor_methods import axis_index

__all__ = ["tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "randn", "rand", "arange",
           "concatenate", "stack", "split", "where", "maximum", "minimum", "broadcast_to"]

_DEFAULT = np.float32


def tensor(data, requires_grad=False, dtype=None, device=None):
    """Same as ``Tensor(...)``, for readers coming from ``torch.tensor``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _make(array, device, requires_grad):
    dev = backend.get_device(device)
    return Tensor(dev.from_host(array), requires_grad=requires_grad)


def zeros(*shape, dtype=_DEFAULT, device="cpu", requires_grad=False):
    dev = backend.get_device(device)
    return Tensor(dev.xp.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=_DEFAULT, device="cpu", requires_grad=False):
    dev = backend.get_device(device)
    return Tensor(dev.xp.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def full(shape, value, dtype=_DEFAULT, device="cpu", requires_grad=False):
    dev = backend.get_device(device)
    return Tensor(dev.xp.full(tuple(shape), value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(t, dtype=None):
    return Tensor(t.xp.zeros(t.shape, dtype=dtype or t.dtype))


def ones_like(t, dtype=None):
    return Tensor(t.xp.ones(t.shape, dtype=dtype or t.dtype))


def randn(*shape, dtype=_DEFAULT, device="cpu", requires_grad=False):
    """Standard normal numbers, drawn on the host from the seeded generator (so the same
    seed gives the same numbers on every device), then moved to ``device``."""
    array = backend.host_generator().standard_normal(_shape(shape)).astype(dtype)
    return _make(array, device, requires_grad)


def rand(*shape, dtype=_DEFAULT, device="cpu", requires_grad=False):
    """Uniform numbers in [0, 1), drawn like :func:`randn`."""
    array = backend.host_generator().random(_shape(shape)).astype(dtype)
    return _make(array, device, requires_grad)


def arange(*args, dtype=None, device="cpu"):
    dev = backend.get_device(device)
    return Tensor(dev.xp.arange(*args, dtype=dtype))


def _tensors(xs, what):
    xs = list(xs)
    if not xs:
        raise ValueError(f"{what} needs at least one tensor")
    if not all(isinstance(x, Tensor) for x in xs):
        raise TypeError(f"{what} takes tl.Tensor objects")
    return xs


def concatenate(tensors, axis=0):
    """Join tensors along an existing axis (``np.concatenate``)."""
    xs = _tensors(tensors, "concatenate")
    ndim = xs[0].ndim
    if ndim == 0:
        raise ValueError("concatenate: a 0-d tensor has no axis to join along (tl.stack makes a new one)")
    axis_n = axis_index(axis, ndim, "concatenate")
    for x in xs[1:]:
        if x.ndim != ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, xs[0].shape)) if i != axis_n):
            raise ValueError(f"concatenate: shapes {xs[0].shape} and {x.shape} differ outside axis {axis}")
    return Concatenate.apply(*xs, axis=axis_n)


def stack(tensors, axis=0):
    """Join same-shaped tensors along a new axis (``np.stack``)."""
    xs = _tensors(tensors, "stack")
    for x in xs[1:]:
        if x.shape != xs[0].shape:
            raise ValueError(f"stack: all tensors need the same shape, got {xs[0].shape} and {x.shape}")
    return Stack.apply(*xs, axis=axis_index(axis, xs[0].ndim + 1, "stack"))


def split(x, indices_or_sections, axis=0):
    """Split a tensor into a list of tensors (``np.split``, and torch's ``tensor_split``): a
    number of equal sections, or the indices where each new piece starts. (``torch.split``
    reads an int as each piece's size and a list as the sizes.)"""
    axis = axis_index(axis, x.ndim, "split")
    n = x.shape[axis]
    if isinstance(indices_or_sections, int):
        if indices_or_sections < 1:
            raise ValueError(f"split: the number of sections must be >= 1, got {indices_or_sections}")
        if n % indices_or_sections:
            raise ValueError(f"split: axis {axis} of size {n} does not divide into "
                             f"{indices_or_sections} equal sections")
        step = n // indices_or_sections
        bounds = list(range(0, n + 1, step))
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    index = [slice(None)] * x.ndim
    pieces = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        index[axis] = slice(start, stop)
        pieces.append(x[tuple(index)])
    return pieces


def where(condition, x, y):
    """Elementwise ``x`` where ``condition`` else ``y`` (gradients flow to both sides)."""
    device = next((t.device for t in (x, y, condition) if isinstance(t, Tensor)), "cpu")
    cond = condition if isinstance(condition, Tensor) else Tensor(condition, device=device)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must be boolean, got dtype {cond.dtype}")
    return Where.apply(cond, x, y)


def maximum(x, y):
    """Elementwise maximum; ties share the gradient equally (as ``torch.maximum``)."""
    return Maximum.apply(x, y)


def minimum(x, y):
    """Elementwise minimum, as ``-maximum(-x, -y)``."""
    return -Maximum.apply(-x, -y)


def broadcast_to(x, shape):
    """``x`` broadcast to ``shape`` (``np.broadcast_to``); gradients are summed back."""
    shape = tuple(shape)
    try:
        if np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None
    return BroadcastTo.apply(x, shape=shape)
