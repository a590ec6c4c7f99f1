"""The Tensor and the graph: how ``loss.backward()`` finds every gradient.

A :class:`Tensor` wraps one backend array (``.data``: NumPy on the CPU, CuPy on a GPU).
When an operation runs on tensors that require gradients, the result remembers the
:class:`Function` that made it (``._ctx``), and that function remembers its inputs.
Those links form a directed acyclic graph. ``backward()`` visits the graph in reverse
topological order and applies the chain rule at every node::

    ∂L/∂x = Σ over the uses y of x of  ∂L/∂y · ∂y/∂x

Each Function's ``backward(grad_out)`` receives ∂L/∂y as a raw array and returns one array
∂L/∂x per input; the engine adds the contributions of tensors used more than once and
checks each gradient's shape against its tensor's.
"""
from __future__ import annotations

import contextlib
import functools
import threading
import weakref

import numpy as np

from . import backend
from .backend import Device, get_device, array_device

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "unbroadcast"]

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


@contextlib.contextmanager
def _grad_mode(enabled: bool):
    previous = is_grad_enabled()
    _state.grad_enabled = enabled
    try:
        yield
    finally:
        _state.grad_enabled = previous


def no_grad():
    """Context manager (and decorator) in which no graph is recorded: results of operations
    never require gradients. Use it for evaluation, sampling and optimizer updates."""
    return _grad_mode(False)


def enable_grad():
    """Context manager that turns graph recording back on inside :func:`no_grad`."""
    return _grad_mode(True)


# Wrappers around every forward and backward, installed by the profiler and anomaly
# detection. Each is ``hook(fn, arrays_or_grad, call)`` and must return ``call()``'s result
# (it may time it, or check it). Empty lists cost the hot path one truth test.
forward_hooks = []
backward_hooks = []


def _call_hooked(hooks, fn, value, call):
    for hook in hooks:
        call = functools.partial(hook, fn, value, call)
    return call()


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting.

    Broadcasting copies a value along new leading axes and along axes of size 1; in the
    backward pass each copy sends back its gradient, so the copies' gradients are summed:
    ``∂L/∂x = Σ_{broadcast axes} ∂L/∂y``.
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"cannot unbroadcast gradient of shape {grad.shape} to larger shape {tuple(shape)}")
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if extra:
        grad = grad.reshape(shape)
    return grad


# ------------------------------------------------------------------ in-place writes
# Version counters, as torch's: each block of memory counts the in-place writes into it
# (``id(owner array) → count``; an entry appears at the first write and goes when the memory
# is freed). Views, ``detach()`` and ``Tensor(t)`` share memory, so they share the count.
# A Function records the counts of the memory it saved; backward compares them, and refuses
# arrays that were overwritten since (their gradient would silently use the new values).
_writes = {}


def _memory_version(device, array):
    """How many in-place writes the memory of ``array`` has seen (0 for Python numbers)."""
    if not _writes or not isinstance(array, device.array_type):
        return 0
    return _writes.get(id(device.storage(array)), 0)


def _count_write(device, array):
    owner = device.storage(array)
    key = id(owner)
    if key not in _writes:
        _writes[key] = 0
        weakref.finalize(owner, _writes.pop, key, None)  # the id may be reused once it is freed
    _writes[key] += 1


def _saved_versions(fn):
    """The version of each array ``fn`` saved, or () when all are 0 (the usual case)."""
    versions = tuple(_memory_version(fn.device, item) for item in fn.saved)
    return versions if any(versions) else ()


def _check_saved_versions(fn):
    """Refuse to run ``fn.backward`` on saved arrays that were written in place since."""
    expected = fn.saved_versions or (0,) * len(fn.saved)
    for item, before in zip(fn.saved, expected):
        now = _memory_version(fn.device, item)
        if now != before:
            owner = fn.device.storage(item)
            shapes = [t.shape for t in fn.inputs if isinstance(t.data, fn.device.array_type)
                      and fn.device.storage(t.data) is owner]
            shape = shapes[0] if shapes else tuple(item.shape)
            raise RuntimeError(
                f"{type(fn).__name__}.backward needs a tensor of shape {shape} that was modified in "
                f"place after the forward pass: it is at version {now}, the forward saved version "
                f"{before}. Its gradient would be computed from the new values; make the in-place "
                f"write after backward(), or write to a copy (tensor.clone()) instead.")


class Function:
    """One differentiable operation: ``forward`` on raw arrays, ``backward`` on raw arrays.

    Subclasses implement ``forward(self, *arrays, **params) -> array`` and
    ``backward(self, grad_out) -> tuple`` (one array or None per tensor input), keeping
    whatever backward needs on ``self`` via :meth:`save`. ``Function.apply`` runs forward,
    and links the result into the graph when gradients are wanted.
    """

    __slots__ = ("inputs", "saved", "saved_versions", "device", "released", "needs_grad", "created_at",
                 "__weakref__")

    def save(self, *arrays):
        """Keep arrays for backward; released after backward unless retain_graph=True."""
        self.saved = arrays

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on tensors (or plain numbers, which become constants)."""
        return cls.apply_with_context(*inputs, **params)[0]

    @classmethod
    def apply_with_context(cls, *inputs, **params):
        """Like :meth:`apply`, also returning the Function instance (even under no_grad),
        for callers that want something the forward kept (e.g. attention weights)."""
        dev = None
        tensors = []
        for x in inputs:
            if isinstance(x, Tensor):
                if dev is None:
                    dev = x._device
                elif x._device is not dev:
                    raise RuntimeError(
                        f"{cls.__name__}: tensors on different devices: {dev.name!r} and {x.device!r}; "
                        f"move one with .to(...)")
            tensors.append(x)
        if dev is None:
            dev = get_device("cpu")
        for i, x in enumerate(tensors):
            if not isinstance(x, Tensor):
                tensors[i] = Tensor._constant(x, dev)
        fn = cls()
        fn.device = dev
        fn.saved = ()
        fn.saved_versions = ()
        fn.released = False
        requires_grad = is_grad_enabled() and any(t.requires_grad for t in tensors)
        # which inputs want a gradient: forward may save only what their gradients need,
        # backward may skip the others (nothing is wanted when no graph is recorded)
        fn.needs_grad = tuple(requires_grad and t.requires_grad for t in tensors)
        arrays = [t.data for t in tensors]
        try:
            if forward_hooks:
                out_data = _call_hooked(forward_hooks, fn, arrays, lambda: fn.forward(*arrays, **params))
            else:
                out_data = fn.forward(*arrays, **params)
        except ValueError as exc:
            if "broadcast" not in str(exc):
                raise
            shapes = " and ".join(str(t.shape) for t in tensors)
            raise ValueError(f"{cls.__name__}: shapes {shapes} do not broadcast together "
                             f"(NumPy says: {exc})") from None
        if not isinstance(out_data, fn.device.array_type):  # NumPy returns scalars for 0-d results
            out_data = fn.device.xp.asarray(out_data)
        out = Tensor._wrap(out_data, fn.device, requires_grad)
        if requires_grad:
            fn.inputs = tensors
            if _writes:  # else every saved version is 0
                fn.saved_versions = _saved_versions(fn)
            out._ctx = fn
        return out, fn

    def forward(self, *arrays, **params):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, grad_out):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no backward rule")

    def release(self):
        self.saved = None
        self.released = True

    @property
    def xp(self):
        return self.device.xp

    def __repr__(self):
        return f"<{type(self).__name__}>"


def _default_dtype_for(value):
    """float32 for Python floats and lists of them; NumPy arrays keep their dtype."""
    if isinstance(value, (bool, np.bool_)):
        return np.bool_
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return np.int64
    return None


class Tensor:
    """An n-dimensional array that can record how it was computed.

    ``Tensor(data, requires_grad=False, dtype=None, device=None)``

    * ``data``: a number, nested list, NumPy array, CuPy array or Tensor.
    * ``dtype``: defaults to float32 for Python floats and lists of floats (the speed
      default), int64 for Python ints; NumPy/CuPy arrays keep their own dtype.
    * ``device``: "cpu" (NumPy) or "cuda" (CuPy); None means where ``data`` already is.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_device", "_retains_grad", "name", "__weakref__")
    __array_priority__ = 1000  # so ndarray + Tensor defers to Tensor.__radd__

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        source = array_device(data)
        target = get_device(device) if device is not None else (source or get_device("cpu"))
        if source is None:  # Python numbers and lists: build on the host first
            if dtype is None:
                dtype = _default_dtype_for(data)
            array = np.asarray(data, dtype=dtype)
            if dtype is None and array.dtype == np.float64:
                array = array.astype(np.float32)  # lists of floats -> float32, as torch
            data = target.from_host(array)
        else:
            if source is not target:
                data = backend.to_device(data, target)
            if dtype is not None and np.dtype(dtype) != data.dtype:
                data = data.astype(dtype)
        self.data = data
        self._device = target
        self.grad = None
        self._ctx = None
        self._retains_grad = False
        self.name = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---------------------------------------------------------------- construction helpers
    @classmethod
    def _wrap(cls, data, device: Device, requires_grad=False):
        """Wrap an array produced by an op (no checks, no copies: the hot path)."""
        t = cls.__new__(cls)
        t.data = data
        t._device = device
        t.grad = None
        t._ctx = None
        t._retains_grad = False
        t.name = None
        t.requires_grad = requires_grad
        return t

    @classmethod
    def _constant(cls, value, device: Device):
        """A plain number or array used inside an op, as a tensor on ``device``."""
        if isinstance(value, (np.number, np.bool_)):
            # a NumPy scalar has a dtype of its own (np.float64(0.5), a float subclass, would
            # turn float32 into float64); as a Python number it keeps the tensor's
            return cls._wrap(value.item(), device)
        if isinstance(value, (int, float, bool)):
            # Python scalars stay scalars: NumPy/CuPy keep the tensor's dtype for them
            return cls._wrap(value, device)
        if array_device(value) is device:
            return cls._wrap(value, device)
        if array_device(value) is not None and not (device.name == "cpu" and isinstance(value, np.ndarray)):
            raise RuntimeError(
                f"an array on {array_device(value).name!r} was mixed with tensors on {device.name!r}; "
                f"convert it explicitly with tl.Tensor(array, device={device.name!r})")
        if device.name != "cpu":
            raise TypeError(f"a {type(value).__name__} was mixed with tensors on {device.name!r}; "
                            f"convert it explicitly with tl.Tensor(value, device={device.name!r})")
        if isinstance(value, np.ndarray):
            return cls._wrap(value, device)  # host arrays keep their dtype on the CPU
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)  # lists of Python floats: the default dtype
        return cls._wrap(array, device)

    # ---------------------------------------------------------------- properties
    @property
    def device(self) -> str:
        return self._device.name

    @property
    def xp(self):
        """The array module of this tensor's device (numpy or cupy)."""
        return self._device.xp

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return int(self.data.size)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def _version(self) -> int:
        """How many in-place writes this tensor's memory has seen (torch's ``t._version``).
        Tensors that share memory (views made by ops, ``detach()``) share the count."""
        return _memory_version(self._device, self.data)

    def bump_version(self):
        """Record an in-place write into ``self.data`` (``__setitem__`` and the optimizers call
        this; so must any code that writes a tensor's array in place). A backward that needs
        the old values then raises instead of using the new ones."""
        _count_write(self._device, self.data)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        """The sub-tensors along the first axis (``self[0]``, ``self[1]``, …), as torch."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def requires_grad_(self, requires_grad=True):
        """Mark this tensor as a leaf whose gradient ``backward`` should compute."""
        if requires_grad and not np.issubdtype(self.dtype, np.floating):
            raise TypeError(f"only floating-point tensors can require gradients; this one is {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        self._retains_grad = True
        return self

    # ---------------------------------------------------------------- conversion
    def numpy(self) -> np.ndarray:
        """A host NumPy copy of the data (never a view into the graph)."""
        host = backend.to_host(self.data)  # already a copy for a device array
        return host.copy() if host is self.data else host

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.item())

    def __array__(self, dtype=None, copy=None):
        if self._device.name != "cpu":
            raise TypeError(f"a tensor on {self.device!r} cannot become a NumPy array implicitly; "
                            f"call .numpy() to copy it to the host")
        if copy is False and dtype is not None and np.dtype(dtype) != self.dtype:
            raise ValueError(f"np.array(tensor, copy=False) cannot convert {self.dtype} to {np.dtype(dtype)} "
                             f"without a copy")
        array = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return array.copy() if copy and array is self.data else array

    def to(self, device=None, dtype=None):
        """This tensor on another device and/or dtype (a differentiable copy)."""
        out = self
        if device is not None and get_device(device) is not self._device:
            out = ops.ToDevice.apply(out, device=get_device(device))
        if dtype is not None and np.dtype(dtype) != out.dtype:
            out = out.astype(dtype)
        return out

    def move_(self, device=None, dtype=None):
        """Move this tensor's data (and grad) to ``device`` and/or floating ``dtype`` *in place*:
        the same Tensor object afterwards (what ``Module.to`` needs, so optimizers holding
        the parameters keep working). Only for leaves: a graph cannot follow."""
        if self._ctx is not None:
            raise RuntimeError("move_() is for leaf tensors (parameters); use .to() inside a graph")
        target = get_device(device) if device is not None else self._device
        for name in ("data", "grad"):
            array = getattr(self, name)
            if array is None:
                continue
            array = backend.to_device(array, target)
            if dtype is not None and np.issubdtype(array.dtype, np.floating) and array.dtype != np.dtype(dtype):
                array = array.astype(dtype)  # integer data (counters, ids) keeps its dtype
            setattr(self, name, array)
        self._device = target
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

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

    def clone(self):
        """A copy in new memory that stays in the graph (∂copy/∂self = 1), as torch's ``clone``:
        write into the copy without touching ``self`` or anything saved from it."""
        return ops.Clone.apply(self)

    def detach(self):
        """The same data, cut from the graph (shares memory and version counter, like torch)."""
        return Tensor._wrap(self.data, self._device)

    def __repr__(self):
        body = np.array2string(backend.to_host(self.data), precision=4, separator=", ",
                               threshold=50, edgeitems=3, prefix="tensor(", floatmode="fixed")
        extras = []
        if self.dtype != np.float32:
            extras.append(f"dtype={self.dtype}")
        if self.device != "cpu":
            extras.append(f"device={self.device!r}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{type(self._ctx).__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # ---------------------------------------------------------------- autograd
    def backward(self, grad=None, retain_graph=False):
        """Compute the gradient of this tensor with respect to every leaf that requires it.

        ``grad`` is ∂L/∂self; it may be omitted only for a one-element tensor (then 1).
        Gradients add into each leaf's ``.grad``. The graph's saved arrays are freed
        afterwards; pass ``retain_graph=True`` to call backward through it again.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input "
                               "of the computation had requires_grad=True (or it ran under no_grad())")
        xp = self.xp
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a one-element (scalar) output, "
                                   f"got shape {self.shape}; pass grad= of that shape, or reduce first "
                                   f"(e.g. loss.sum())")
            grad = xp.ones(self.data.shape, dtype=self.dtype)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            if array_device(grad) is not self._device:
                raise RuntimeError(f"backward(grad) got an array on "
                                   f"{getattr(array_device(grad), 'name', type(grad).__name__)!r}, "
                                   f"the tensor is on {self.device!r}")
            if tuple(grad.shape) != self.shape:
                raise ValueError(f"backward(grad): grad has shape {tuple(grad.shape)}, expected {self.shape}")
            grad = grad.astype(self.dtype, copy=True)  # a leaf's .grad must never alias the caller's array
        _run_backward(self, grad, retain_graph)

    # ---------------------------------------------------------------- operators
    # Arithmetic promotes as torch, not as NumPy: an integer tensor meeting a Python float or a
    # float tensor becomes float (the default float32, or that tensor's dtype), never float64;
    # true division of integers gives float32.
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

    def __getitem__(self, index):
        return ops.GetItem.apply(self, index=ops.device_index(index, self._device))

    def __setitem__(self, index, value):
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError("in-place assignment into a tensor that requires grad would corrupt "
                               "its gradient; assign under tl.no_grad() or to a detached copy")
        value = value.data if isinstance(value, Tensor) else value
        if array_device(value) not in (None, self._device):
            raise RuntimeError(f"cannot assign an array on {array_device(value).name!r} into a tensor "
                               f"on {self.device!r}")
        self.data[ops.device_index(index, self._device)] = value
        self.bump_version()

    # comparisons: no gradient, boolean results
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

    __hash__ = object.__hash__

    # ---------------------------------------------------------------- NumPy-named methods
    def sum(self, axis=None, keepdims=False):
        return ops.Sum.apply(self, axis=_norm_axis(axis, self.ndim), keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return ops.Mean.apply(self, axis=_norm_axis(axis, self.ndim), keepdims=keepdims)

    def var(self, axis=None, ddof=0, keepdims=False):
        return ops.Var.apply(self, axis=_norm_axis(axis, self.ndim), ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, ddof=0, keepdims=False):
        return ops.Std.apply(self, axis=_norm_axis(axis, self.ndim), ddof=ddof, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return ops.Max.apply(self, axis=_norm_axis(axis, self.ndim), keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return -ops.Max.apply(-self, axis=_norm_axis(axis, self.ndim), keepdims=keepdims)

    def argmax(self, axis=None, keepdims=False):
        return Tensor._wrap(_argreduce(self.xp.argmax, self.data, axis, keepdims), self._device)

    def argmin(self, axis=None, keepdims=False):
        return Tensor._wrap(_argreduce(self.xp.argmin, self.data, axis, keepdims), self._device)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape=shape)

    def view(self, *shape):
        return self.reshape(*shape)

    def flatten(self):
        return self.reshape(-1)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if not axes:
            axes = tuple(reversed(range(self.ndim)))
        if sorted(a % max(self.ndim, 1) for a in axes) != list(range(self.ndim)):
            raise ValueError(f"transpose axes {axes} are not a permutation of the {self.ndim} axes of shape {self.shape}")
        return ops.Transpose.apply(self, axes=tuple(a % self.ndim for a in axes))

    @property
    def T(self):
        return self.transpose()

    def swapaxes(self, axis1, axis2):
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return ops.Transpose.apply(self, axes=tuple(axes))

    def squeeze(self, axis=None):
        if axis is None:
            shape = tuple(n for n in self.shape if n != 1)
        else:
            axes = {a % self.ndim for a in ((axis,) if isinstance(axis, int) else axis)}
            for a in axes:
                if self.shape[a] != 1:
                    raise ValueError(f"cannot squeeze axis {a} of size {self.shape[a]} (shape {self.shape})")
            shape = tuple(n for i, n in enumerate(self.shape) if i not in axes)
        return self.reshape(shape)

    def unsqueeze(self, axis):
        axis = axis % (self.ndim + 1)
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    expand_dims = unsqueeze

    def exp(self):
        return ops.Exp.apply(self)

    def log(self):
        return ops.Log.apply(self)

    def sqrt(self):
        return ops.Sqrt.apply(self)

    def tanh(self):
        return ops.Tanh.apply(self)

    def abs(self):
        return ops.Abs.apply(self)

    def clip(self, a_min=None, a_max=None):
        return ops.Clip.apply(self, a_min=a_min, a_max=a_max)


def _is_float(x):
    return x.dtype.kind == "f" if isinstance(x, Tensor) else isinstance(x, float)


def _promote(a, b, true_division=False):
    """(a, b) with an integer or boolean tensor cast to float where torch would make the
    result float: when the other side is floating (a Python float: float32; a float tensor:
    its dtype), or for true division. Floating tensors and int-with-int pass unchanged (the
    common case: two attribute reads)."""
    a_int = isinstance(a, Tensor) and a.data.dtype.kind in "biu"
    b_int = isinstance(b, Tensor) and b.data.dtype.kind in "biu"
    if not (a_int or b_int):
        return a, b
    if a_int and (_is_float(b) or true_division):
        a = a.astype(b.dtype if isinstance(b, Tensor) and b.dtype.kind == "f" else np.float32)
    if b_int and (_is_float(a) or true_division):
        b = b.astype(a.dtype if isinstance(a, Tensor) and a.dtype.kind == "f" else np.float32)
    return a, b


def _norm_axis(axis, ndim):
    """``axis`` as a sorted tuple of axes in [0, ndim), or None for all of them. A 0-d tensor
    accepts axis 0 or −1 (as torch's dim) and reduces over nothing."""
    if axis is None:
        return None
    if ndim == 0:
        for a in (axis if isinstance(axis, (list, tuple)) else (axis,)):
            _check_axis(a, ndim)
        return None
    if isinstance(axis, (list, tuple)):
        axes = tuple(sorted(_check_axis(a, ndim) for a in axis))
        if len(set(axes)) != len(axes):
            raise ValueError(f"repeated axis in {axis}")
        return axes
    return (_check_axis(axis, ndim),)


def _check_axis(axis, ndim):
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ValueError(f"axis {axis} is out of bounds for a tensor with {ndim} dimensions")
    return axis % max(ndim, 1)


def _argreduce(fn, data, axis, keepdims):
    if axis is None:  # index into the flattened array
        out = fn(data)
        return out.reshape((1,) * data.ndim) if keepdims else out
    return fn(data, axis=axis, keepdims=keepdims)


# ------------------------------------------------------------------------------ the engine
def _topological_order(root):
    """Tensors reachable from ``root`` through requires_grad links, inputs before users.

    Iterative depth-first search (no recursion: a 10,000-op chain is fine)."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        fn = node._ctx
        if fn is not None:
            if fn.released:
                raise RuntimeError(
                    f"backward through the graph a second time: the arrays saved by "
                    f"{type(fn).__name__} were freed after the first backward. Pass "
                    f"retain_graph=True to the first backward() if you need to do this.")
            for parent in fn.inputs:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def _run_backward(root, grad, retain_graph):
    order = _topological_order(root)
    # gradients waiting to be used: id(tensor) -> [array, owned]; "owned" arrays were
    # allocated here (by a sum of contributions) and may be added into in place
    pending = {id(root): [grad, False]}
    handed_to_leaves = set()
    for node in reversed(order):
        entry = pending.pop(id(node), None)
        if entry is None:
            continue
        g, owned = entry
        fn = node._ctx
        if fn is None or node._retains_grad:
            _store_leaf_grad(node, g, owned, handed_to_leaves)
        if fn is None:
            continue
        if _writes:
            _check_saved_versions(fn)
        grads = _call_hooked(backward_hooks, fn, g, lambda: fn.backward(g)) if backward_hooks else fn.backward(g)
        if len(grads) != len(fn.inputs):
            raise RuntimeError(f"{type(fn).__name__}.backward returned {len(grads)} gradients "
                               f"for {len(fn.inputs)} inputs")
        for parent, pg in zip(fn.inputs, grads):
            if pg is None or not parent.requires_grad:
                continue
            if tuple(pg.shape) != parent.shape:
                raise RuntimeError(f"{type(fn).__name__}.backward produced a gradient of shape "
                                   f"{tuple(pg.shape)} for an input of shape {parent.shape}")
            if pg.dtype != parent.dtype:
                pg = pg.astype(parent.dtype)
            slot = pending.get(id(parent))
            if slot is None:
                pending[id(parent)] = [pg, False]
            elif slot[1]:
                slot[0] += pg
            else:
                pending[id(parent)] = [slot[0] + pg, True]
        if not retain_graph:
            fn.release()


def _store_leaf_grad(node, g, owned, handed):
    """Add ``g`` into ``node.grad``, making sure every ``.grad`` is its own writable array."""
    if not isinstance(g, node._device.array_type):
        g, owned = node.xp.asarray(g), True
    if node.grad is None:
        if not owned and (g.base is not None or id(g) in handed or not g.flags.c_contiguous):
            g = g.copy()
        handed.add(id(g))
        node.grad = g
    else:
        node.grad = node.grad + g


from . import ops  # noqa: E402  (ops needs Tensor and Function defined above)
