"""A CPU "device" that fails wherever CuPy would: the test suite's stand-in for a GPU.

CI has no GPU, yet code that mixes host NumPy arrays into device arithmetic, or converts
device arrays to NumPy implicitly, breaks on CuPy. :class:`StrictArray` wraps a NumPy array
and behaves like a CuPy array in exactly those respects:

* arithmetic and ``xp`` functions with a plain (non-0-d) ``numpy.ndarray`` operand raise;
* ``np.asarray(a)`` / ``np.array(a)`` raise (``__array__``), and no buffer or
  ``__array_interface__`` is exposed, so NumPy cannot read it behind our back;
* NumPy's own functions (``np.concatenate(...)``) refuse it: code must call ``xp.…``;
* indexing with host arrays raises (CuPy wants device index arrays).

:data:`strict_xp` plays the array module. :func:`register` adds the device under the name
"strict", so ``Tensor(..., device="strict")`` works and the whole suite can run on it.
"""
from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from .. import backend

__all__ = ["StrictArray", "StrictDeviceError", "strict_xp", "register", "DEVICE_NAME"]

DEVICE_NAME = "strict"


class StrictDeviceError(TypeError):
    """Host and device arrays were mixed, or a device array was converted implicitly."""


def _unwrap(value, where):
    """Replace StrictArrays by their NumPy arrays; refuse host arrays (as CuPy does)."""
    if isinstance(value, StrictArray):
        return value._a
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return value
        raise StrictDeviceError(
            f"{where}: a host numpy.ndarray of shape {value.shape} was mixed with device arrays "
            f"(CuPy raises here); move it to the device explicitly first")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, where) for k, v in value.items()}
    return value


def _wrap(value):
    if isinstance(value, np.ndarray):
        return StrictArray(value)
    if isinstance(value, np.generic):  # NumPy gives scalars where CuPy gives 0-d arrays
        return StrictArray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class StrictArray(NDArrayOperatorsMixin):
    """A NumPy array in disguise, with CuPy's refusals."""

    __slots__ = ("_a",)

    def __init__(self, array):
        if isinstance(array, StrictArray):
            array = array._a
        if not isinstance(array, np.ndarray):
            raise StrictDeviceError(f"StrictArray wraps numpy arrays, got {type(array).__name__}")
        self._a = array

    # NumPy protocol: ufuncs work on device arrays only; everything else refuses.
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        out = kwargs.get("out")
        result = getattr(ufunc, method)(*_unwrap(inputs, where), **_unwrap(kwargs, where))
        if method == "at":
            return None
        if out is not None:  # results live in the caller's own out arrays
            outs = out if isinstance(out, tuple) else (out,)
            return outs[0] if len(outs) == 1 else outs
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        raise StrictDeviceError(
            f"numpy.{func.__name__} was called on a device array: use the tensor's array module "
            f"(xp.{func.__name__}), as CuPy needs")

    def __array__(self, dtype=None, copy=None):
        raise StrictDeviceError(
            "implicit conversion of a device array to a NumPy array (CuPy raises here); "
            "use an explicit transfer (Tensor.numpy(), backend.to_host)")

    def __dlpack__(self, *args, **kwargs):  # pragma: no cover
        raise StrictDeviceError("no DLPack export from the strict device")

    # Array attributes that CuPy has
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: StrictArray(self._a.T))

    @property
    def base(self):
        return None if self._a.base is None else _wrap(self._a.base)

    def __getattr__(self, name):
        # methods such as sum, max, reshape, astype, copy, transpose, swapaxes, fill ...
        if name.startswith("__"):  # never hand NumPy __array_interface__ & co.
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return attr
        where = f"ndarray.{name}"

        def method(*args, **kwargs):
            return _wrap(attr(*_unwrap(args, where), **_unwrap(kwargs, where)))
        return method

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap_index(index)])

    def __setitem__(self, index, value):
        self._a[_unwrap_index(index)] = _unwrap(value, "ndarray.__setitem__")

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(x) for x in self._a)

    # Size-1 conversions synchronise on a GPU but are allowed by CuPy
    def item(self):
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __index__(self):
        return self._a.__index__()

    def __bool__(self):
        return bool(self._a)

    def __repr__(self):
        return "strict_array(" + repr(self._a)[6:]

    def __reduce__(self):  # CuPy arrays pickle (and deep-copy) too
        return (StrictArray, (self._a.copy(),))


def _unwrap_index(index):
    if isinstance(index, tuple):
        return tuple(_unwrap_index(i) for i in index)
    if isinstance(index, StrictArray):
        return index._a
    if isinstance(index, np.ndarray) and index.ndim > 0:
        raise StrictDeviceError("indexing a device array with a host numpy array (CuPy wants a "
                                "device index array)")
    if isinstance(index, list):
        raise StrictDeviceError("indexing a device array with a Python list (CuPy wants a device "
                                "index array)")
    return index


class _StrictCallable:
    """A NumPy function or ufunc seen through the strict device (``xp.exp``, ``xp.add.at``)."""

    __slots__ = ("_f", "_name")

    def __init__(self, f, name):
        self._f = f
        self._name = name

    def __call__(self, *args, **kwargs):
        where = f"xp.{self._name}"
        out = kwargs.get("out")
        result = self._f(*_unwrap(args, where), **_unwrap(kwargs, where))
        if isinstance(out, StrictArray):
            return out
        return _wrap(result)

    def __getattr__(self, name):
        attr = getattr(self._f, name)
        return _StrictCallable(attr, f"{self._name}.{name}") if callable(attr) else attr


class _StrictModule:
    """The strict device's ``xp``: NumPy's namespace, taking and giving StrictArrays.

    ``xp.asarray``/``xp.array`` on host data is the explicit host-to-device copy (as
    ``cupy.asarray``)."""

    ndarray = StrictArray
    newaxis = None
    pi, e, inf, nan = np.pi, np.e, np.inf, np.nan
    float16, float32, float64 = np.float16, np.float32, np.float64
    int8, int32, int64, uint8, bool_ = np.int8, np.int32, np.int64, np.uint8, np.bool_
    finfo, iinfo, dtype = np.finfo, np.iinfo, np.dtype
    random = None  # device randomness goes through tinyllm.backend

    def asarray(self, value, dtype=None):
        if isinstance(value, StrictArray):
            return value if dtype is None else value.astype(dtype)
        return StrictArray(np.array(value, dtype=dtype))

    array = asarray

    def asnumpy(self, value):
        return _to_host(value)

    def __getattr__(self, name):
        attr = getattr(np, name)
        if isinstance(attr, (type, numbers.Number)) or not callable(attr):
            return attr
        return _StrictCallable(attr, name)


strict_xp = _StrictModule()


def _to_host(value):
    if isinstance(value, StrictArray):
        return value._a.copy()
    raise StrictDeviceError(f"to_host expects a strict device array, got {type(value).__name__}")


def _from_host(value):
    if isinstance(value, StrictArray):
        return value
    return StrictArray(np.array(value, copy=True))


def _scatter_add(target, indices, values):
    np.add.at(target._a, _unwrap_index(indices), _unwrap(values, "scatter_add"))


def _erf(x):
    from scipy.special import erf
    return StrictArray(erf(x._a).astype(x.dtype, copy=False))


def register():
    """Register the strict device with tinyllm's backend (idempotent)."""
    backend.register_device(backend.Device(
        DEVICE_NAME, strict_xp, StrictArray,
        from_host=_from_host, to_host=_to_host, scatter_add=_scatter_add, erf=_erf,
        generator_factory=lambda seed: np.random.default_rng(seed),
        storage=lambda a: backend.memory_owner(a._a),
        kernel_family="cpu",  # the CPU kernels run here too: proof that they use only xp
    ))
