"""The autograd engine: how ``loss.backward()`` finds every gradient.

A :class:`Tensor` wraps one backend array (``.data``: NumPy on the CPU, CuPy on a GPU).
When an operation runs on tensors that require gradients, the result remembers the
:class:`Function` that made it (``._ctx``), and that function remembers its inputs. Those
links form a directed acyclic graph. ``backward()`` visits it in reverse topological order
and applies the chain rule at every node::

    ∂L/∂x = Σ over the uses y of x of  ∂L/∂y · ∂y/∂x

Each Function's ``backward(g)`` receives g = ∂L/∂y as a raw array and returns one array
∂L/∂x per input; the engine adds the contributions of tensors used more than once and
checks each gradient's shape against its tensor's.

This file reads top to bottom: the graph walk, then :class:`Function`, then the core of
:class:`Tensor`. The NumPy-style surface of a tensor (``+``, ``@``, ``sum``, ``reshape``, …)
is installed on it by :mod:`tinyllm.tensor_methods`, on top of :mod:`tinyllm.ops`.
"""
from __future__ import annotations

import contextlib
import functools
import threading
import weakref

import numpy as np

from . import backend, kernels
from .backend import Device, array_device, get_device, unbroadcast  # unbroadcast: the backward of broadcasting

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "unbroadcast"]


# ------------------------------------------------------------------------------ the graph walk
def topological_order(root):
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
                    f"backward through the graph a second time: the arrays saved by {type(fn).__name__} "
                    f"were freed after the first backward. Pass retain_graph=True to the first backward() "
                    f"if you need to do this.")
            for parent in fn.inputs:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def run_backward(root, grad, retain_graph=False):
    """The chain rule over the graph below ``root``, starting from ∂L/∂root = ``grad``."""
    # gradients waiting to be used: id(tensor) -> [array, owned]; "owned" arrays were made
    # here (a sum of contributions) and may be added into in place
    pending = {id(root): [grad, False]}
    handed_to_leaves = set()
    for node in reversed(topological_order(root)):
        entry = pending.pop(id(node), None)
        if entry is None:
            continue
        g, owned = entry
        fn = node._ctx
        if fn is None or node._retains_grad:
            _store_grad(node, g, owned, handed_to_leaves)
        if fn is None:
            continue
        if _writes:
            _check_saved_versions(fn)
        kernel = fn.kernel
        backward = fn.backward if kernel is None or kernel.backward is None else functools.partial(kernel.backward, fn)
        grads = _call_hooked(backward_hooks, fn, g, lambda: backward(g)) if backward_hooks else backward(g)
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


def _store_grad(node, g, owned, handed):
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


# ------------------------------------------------------------------------------ grad mode, hooks
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
# detection. Each is ``hook(fn, arrays_or_grad, call)`` and must return ``call()``'s result.
# Empty lists cost the hot path one truth test.
forward_hooks = []
backward_hooks = []


def _call_hooked(hooks, fn, value, call):
    for hook in hooks:
        call = functools.partial(hook, fn, value, call)
    return call()


# ------------------------------------------------------------------------------ in-place writes
# Version counters, as torch's: each block of memory counts the in-place writes into it
# (id(owner array) -> count; an entry appears at the first write and goes when the memory is
# freed). Views, detach() and Tensor(t) share memory, so they share the count. A Function
# records the counts of the arrays it saved; backward refuses arrays written since.
_writes = {}


def _memory_version(device, array):
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
    expected = fn.saved_versions or (0,) * len(fn.saved)
    for item, before in zip(fn.saved, expected):
        now = _memory_version(fn.device, item)
        if now != before:
            owner = fn.device.storage(item)
            shapes = [t.shape for t in fn.inputs
                      if isinstance(t.data, fn.device.array_type) and fn.device.storage(t.data) is owner]
            raise RuntimeError(
                f"{type(fn).__name__}.backward needs a tensor of shape {shapes[0] if shapes else tuple(item.shape)} "
                f"that was modified in place after the forward pass: it is at version {now}, the forward "
                f"saved version {before}. Its gradient would be computed from the new values; make the "
                f"in-place write after backward(), or write to a copy (tensor.clone()) instead.")


# ------------------------------------------------------------------------------ Function
class Function:
    """One differentiable operation: ``forward`` on raw arrays, ``backward`` on raw arrays.

    Subclasses implement ``forward(self, *arrays, **params) -> array`` and
    ``backward(self, g) -> tuple`` (one array or None per tensor input), keeping whatever
    backward needs with :meth:`save`. ``Function.apply`` runs forward and links the result
    into the graph when gradients are wanted. ``self.needs_grad`` (one flag per input) is
    known in forward already, so forward can keep only what the wanted gradients use.

    A faster implementation of the same formula may run instead: a subclass that sets
    ``kernel_name`` names its kernel in :mod:`tinyllm.kernels`; ``self.kernel`` is the one
    that runs, or None when the reference methods run.
    """

    kernel_name = None
    __slots__ = ("inputs", "saved", "saved_versions", "device", "released", "needs_grad", "kernel",
                 "created_at", "__weakref__")

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
        for x in inputs:
            if isinstance(x, Tensor):
                if dev is None:
                    dev = x._device
                elif x._device is not dev:
                    raise RuntimeError(f"{cls.__name__}: tensors on different devices: {dev.name!r} and "
                                       f"{x.device!r}; move one with .to(...)")
        dev = dev or get_device("cpu")
        tensors = [x if isinstance(x, Tensor) else Tensor._constant(x, dev) for x in inputs]
        fn = cls()
        fn.device, fn.saved, fn.saved_versions, fn.released = dev, (), (), False
        requires_grad = is_grad_enabled() and any(t.requires_grad for t in tensors)
        fn.needs_grad = tuple(requires_grad and t.requires_grad for t in tensors)
        fn.kernel = kernels.find(cls.kernel_name, dev.kernel_family) if cls.kernel_name else None
        arrays = [t.data for t in tensors]
        if fn.kernel is None:
            forward = functools.partial(fn.forward, *arrays, **params)
        else:
            forward = functools.partial(fn.kernel.forward, fn, *arrays, **params)
        try:
            out_data = _call_hooked(forward_hooks, fn, arrays, forward) if forward_hooks else forward()
        except ValueError as exc:
            if "broadcast" not in str(exc):
                raise
            shapes = " and ".join(str(t.shape) for t in tensors)
            raise ValueError(f"{cls.__name__}: shapes {shapes} do not broadcast together "
                             f"(NumPy says: {exc})") from None
        if not isinstance(out_data, fn.device.array_type):  # NumPy returns scalars for 0-d results
            out_data = fn.device.xp.asarray(out_data)
        out = Tensor._wrap(out_data, fn.device, requires_grad)  # fn.device: ToDevice moves it
        if requires_grad:
            fn.inputs = tensors
            if _writes:  # else every saved version is 0
                fn.saved_versions = _saved_versions(fn)
            out._ctx = fn
        return out, fn

    def forward(self, *arrays, **params):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, g):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no backward rule")

    def release(self):
        self.saved = None
        self.released = True

    @property
    def xp(self):
        return self.device.xp

    def __repr__(self):
        return f"<{type(self).__name__}>"


# ------------------------------------------------------------------------------ Tensor
def _default_dtype_for(value):
    """bool and int64 for Python bools and ints; None (float32 below) for floats and lists."""
    if isinstance(value, (bool, np.bool_)):
        return np.bool_
    if isinstance(value, (int, np.integer)):
        return np.int64
    return None


class Tensor:
    """An n-dimensional array that can record how it was computed.

    ``Tensor(data, requires_grad=False, dtype=None, device=None)``

    * ``data``: a number, nested list, NumPy array, CuPy array or Tensor (a Tensor's memory
      is shared, as ``detach()``).
    * ``dtype``: defaults to float32 for Python floats and lists of floats (the speed
      default), int64 for Python ints; NumPy/CuPy arrays keep their own dtype.
    * ``device``: "cpu" (NumPy) or "cuda" (CuPy); None means where ``data`` already is.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_device", "_retains_grad", "name", "__weakref__")
    __array_priority__ = 1000  # so ndarray + Tensor defers to Tensor.__radd__
    __hash__ = object.__hash__  # tensors compare elementwise (==), so hash by identity

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
        self.data, self._device, self.grad, self._ctx = data, target, None, None
        self._retains_grad, self.name, self.requires_grad = False, None, False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data, device: Device, requires_grad=False):
        """Wrap an array produced by an op (no checks, no copies: the hot path)."""
        t = cls.__new__(cls)
        t.data, t._device, t.grad, t._ctx = data, device, None, None
        t._retains_grad, t.name, t.requires_grad = False, None, requires_grad
        return t

    @classmethod
    def _constant(cls, value, device: Device):
        """A plain number or array used inside an op, as a tensor on ``device``."""
        if isinstance(value, (np.number, np.bool_)):
            # a NumPy scalar has a dtype of its own (np.float64(0.5) would turn float32 into
            # float64); as a Python number it keeps the tensor's
            return cls._wrap(value.item(), device)
        if isinstance(value, (int, float, bool)):
            return cls._wrap(value, device)  # Python scalars keep the tensor's dtype
        if array_device(value) is device:
            return cls._wrap(value, device)
        if array_device(value) is not None and not (device.name == "cpu" and isinstance(value, np.ndarray)):
            raise RuntimeError(f"an array on {array_device(value).name!r} was mixed with tensors on "
                               f"{device.name!r}; convert it explicitly with tl.Tensor(array, device={device.name!r})")
        if device.name != "cpu":
            raise TypeError(f"a {type(value).__name__} was mixed with tensors on {device.name!r}; "
                            f"convert it explicitly with tl.Tensor(value, device={device.name!r})")
        if isinstance(value, np.ndarray):
            return cls._wrap(value, device)  # host arrays keep their dtype on the CPU
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)  # lists of Python floats: the default dtype
        return cls._wrap(array, device)

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
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a one-element (scalar) output, "
                                   f"got shape {self.shape}; pass grad= of that shape, or reduce first "
                                   f"(e.g. loss.sum())")
            grad = self.xp.ones(self.data.shape, dtype=self.dtype)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            if array_device(grad) is not self._device:
                raise RuntimeError(f"backward(grad) got an array on "
                                   f"{getattr(array_device(grad), 'name', type(grad).__name__)!r}, "
                                   f"the tensor is on {self.device!r}")
            if tuple(grad.shape) != self.shape:
                raise ValueError(f"backward(grad): grad has shape {tuple(grad.shape)}, expected {self.shape}")
            grad = grad.astype(self.dtype, copy=True)  # a leaf's .grad must never alias the caller's array
        run_backward(self, grad, retain_graph)

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

    def detach(self):
        """The same data, cut from the graph (shares memory and version counter, like torch)."""
        return Tensor._wrap(self.data, self._device)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

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

    # ---------------------------------------------------------------- array facts
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

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ---------------------------------------------------------------- to Python and the host
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
