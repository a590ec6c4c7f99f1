"""Devices and array modules: where a tensor's numbers live.

A device name maps to an *array module* ``xp`` with NumPy's interface:

* ``"cpu"``  -> :mod:`numpy`
* ``"cuda"`` -> :mod:`cupy` (only when CuPy and a GPU are present)

Every piece of array code in tinyllm takes its module from the tensor it works on
(``xp = tensor.xp``), so one code path serves both. Arrays never move between host
and device implicitly: :func:`to_device` and :func:`to_host` are the only doors.

Tests may register extra devices (see ``tinyllm.testing.strict``: a CPU "device" that
fails wherever CuPy would), through :func:`register_device`.
"""
from __future__ import annotations

import functools
import math

import numpy as np

__all__ = [
    "Device", "get_device", "register_device", "cuda_available", "array_device",
    "to_device", "to_host", "memory_owner", "scatter_add", "erf", "default_generator", "random_uniform",
    "host_generator", "manual_seed", "unbroadcast",
]


class Device:
    """A named place for arrays, with its array module and conversions.

    ``xp`` is the NumPy-like module; ``from_host(a)`` copies a host NumPy array onto the
    device; ``to_host(a)`` copies a device array back into a NumPy array; ``owns(a)`` tells
    whether an array is one of this device's arrays; ``storage(a)`` is the array that owns
    ``a``'s memory (``a`` itself, or the array it is a view of); ``kernel_family`` names the
    fast kernels that may run on it ("cpu" for NumPy arrays, "cuda" for CuPy's).
    """

    def __init__(self, name, xp, array_type, from_host, to_host, scatter_add, erf, generator_factory,
                 storage=None, kernel_family=None):
        self.name = name
        self.kernel_family = kernel_family or name  # which kernels may run here (tinyllm.kernels)
        self.storage = storage or memory_owner
        self.xp = xp
        self.array_type = array_type
        self._from_host = from_host
        self._to_host = to_host
        self._scatter_add = scatter_add
        self._erf = erf
        self._generator_factory = generator_factory
        self._generator = None

    def synchronize(self) -> None:
        """Wait until the device has finished all queued work (GPUs run asynchronously;
        timings need this). A no-op on the CPU."""
        if self.name == "cuda":
            self.xp.cuda.Stream.null.synchronize()

    def owns(self, array) -> bool:
        return isinstance(array, self.array_type)

    def from_host(self, array: np.ndarray):
        return self._from_host(array)

    def to_host(self, array) -> np.ndarray:
        return self._to_host(array)

    @property
    def generator(self):
        """This device's random generator (seeded by :func:`manual_seed`)."""
        if self._generator is None:
            self._generator = self._generator_factory(_seed_for(self.name))
        return self._generator

    def reseed(self, seed: int) -> None:
        self._generator = self._generator_factory(seed)

    def __repr__(self):
        return f"Device({self.name!r})"

    def __reduce__(self):  # copy.deepcopy / pickle of tensors: refer to the device by name
        return (get_device, (self.name,))


def memory_owner(array):
    """The array whose memory ``array`` uses: follow ``.base`` while it is an array of the same
    kind (NumPy and CuPy views both keep their owner there)."""
    while isinstance(array.base, type(array)):
        array = array.base
    return array


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


# ----------------------------------------------------------------------------- seeds
_base_seed = None  # None until manual_seed is called: fresh entropy


def _seed_for(name: str):
    if _base_seed is None:
        return None
    # each device gets its own stream derived from the one seed
    return [_base_seed, sum(map(ord, name))]


# ----------------------------------------------------------------------------- CPU (NumPy)
@functools.lru_cache(maxsize=None)
def _numpy_erf():
    try:
        from scipy.special import erf as scipy_erf
    except ImportError:  # pragma: no cover - scipy is in requirements
        scipy_erf = np.vectorize(math.erf, otypes=[np.float64])
    return scipy_erf


def _numpy_scatter_add(target, indices, values):
    np.add.at(target, indices, values)


def _numpy_erf_call(x):
    out = _numpy_erf()(x)
    return out.astype(x.dtype, copy=False)


_cpu = Device(
    "cpu", np, np.ndarray,
    from_host=lambda a: a,
    to_host=lambda a: a,
    scatter_add=_numpy_scatter_add,
    erf=_numpy_erf_call,
    generator_factory=lambda seed: np.random.default_rng(seed),
)

_devices = {"cpu": _cpu}
_cuda_error = None  # why "cuda" is unavailable, once we looked


def _try_cuda():
    """Register the "cuda" device if CuPy and a GPU are present; remember why not."""
    global _cuda_error
    if "cuda" in _devices or _cuda_error is not None:
        return
    try:
        import cupy
    except ImportError:
        _cuda_error = ("CuPy is not installed: `pip install cupy-cuda12x` (or the wheel for "
                       "your CUDA version) to use device='cuda'")
        return
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        _cuda_error = f"CuPy is installed but no GPU could be used ({exc})"
        return
    if n == 0:
        _cuda_error = "CuPy is installed but no GPU was found"
        return
    import cupyx
    import cupyx.scipy.special

    def scatter_add(target, indices, values):
        cupyx.scatter_add(target, indices, values)

    _devices["cuda"] = Device(
        "cuda", cupy, cupy.ndarray,
        from_host=cupy.asarray,
        to_host=cupy.asnumpy,
        scatter_add=scatter_add,
        erf=cupyx.scipy.special.erf,
        # CuPy's new-style Generator lacks normal/choice; RandomState has what we use
        generator_factory=lambda seed: cupy.random.RandomState(
            None if seed is None else int(np.random.SeedSequence(seed).generate_state(1)[0])),
    )


def cuda_available() -> bool:
    """True when CuPy is installed and can see a GPU."""
    _try_cuda()
    return "cuda" in _devices


def register_device(device: Device) -> None:
    """Add a device (used by the test suite's strict CPU device)."""
    _devices[device.name] = device


def get_device(name) -> Device:
    """The :class:`Device` called ``name`` ("cpu", "cuda", or a registered test device)."""
    if isinstance(name, Device):
        return name
    if name is None:
        return _cpu
    if not isinstance(name, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {type(name).__name__}")
    name = name.lower()
    if name.startswith("cuda:"):
        name = "cuda"  # one GPU is all tinyllm addresses
    if name == "cuda":
        _try_cuda()
        if "cuda" not in _devices:
            raise RuntimeError(f"device='cuda' is not available: {_cuda_error}")
    if name not in _devices:
        raise ValueError(f"unknown device {name!r}; expected one of {sorted(set(_devices) | {'cuda'})}")
    return _devices[name]


def array_device(array) -> Device | None:
    """The device that owns ``array``, or None for something that is not an array."""
    for device in _devices.values():
        if device.name != "cpu" and device.owns(array):
            return device
    if isinstance(array, np.ndarray):
        return _cpu
    if "cuda" not in _devices and type(array).__module__.startswith("cupy"):
        _try_cuda()
        if "cuda" in _devices:
            return _devices["cuda"]
    return None


def to_device(array, device):
    """``array`` (a host NumPy array or any device's array) on ``device``: a copy when it
    moves, the same array when it is already there."""
    device = get_device(device)
    source = array_device(array)
    if source is device:
        return array
    if source is not None and source is not _cpu:
        array = source.to_host(array)
    return device.from_host(np.asarray(array))


def to_host(array) -> np.ndarray:
    """A host NumPy array with the values of ``array`` (a copy for device arrays)."""
    source = array_device(array)
    if source is None or source is _cpu:
        return np.asarray(array)
    return source.to_host(array)


def scatter_add(device, target, indices, values) -> None:
    """``target[indices] += values`` with repeated indices accumulated (``np.add.at``)."""
    get_device(device)._scatter_add(target, indices, values)


def erf(device, x):
    """The error function, elementwise, on ``device``'s arrays, keeping the dtype."""
    return get_device(device)._erf(x)


def inverse_std(xp, mean_square, eps):
    """1 / √(mean_square + ε) for layer and RMS norms, NaN (not 0) where ``mean_square``
    overflowed to ∞: the row's squares were too large to sum (|x| ≳ 1e19 in float32), and a 0
    would silently zero the row and its gradients. NaN is torch's layer_norm answer, and
    ``tl.detect_anomaly()`` names the op."""
    return xp.where(xp.isposinf(mean_square), xp.nan, 1 / xp.sqrt(mean_square + eps))


def default_generator(device):
    """The random generator of ``device``: ``numpy.random.Generator`` on the CPU,
    ``cupy.random.RandomState`` on the GPU. Use :func:`random_uniform` for code that
    must run on both."""
    return get_device(device).generator


def random_uniform(device, shape, dtype):
    """Uniform [0, 1) numbers of ``shape`` and ``dtype`` on ``device``."""
    device = get_device(device)
    gen = device.generator
    if isinstance(gen, np.random.Generator):
        dt = np.dtype(dtype)
        sample = gen.random(shape, dtype=dt if dt in (np.float32, np.float64) else np.float32)
        return device.from_host(sample.astype(dt, copy=False))
    return gen.random_sample(shape).astype(dtype, copy=False)  # cupy RandomState


def manual_seed(seed: int) -> None:
    """Seed every random stream tinyllm uses (host initialisation and each device)."""
    global _base_seed
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _base_seed = int(seed)
    for device in _devices.values():
        device.reseed(_seed_for(device.name))
    global _host_generator
    _host_generator = np.random.default_rng(_base_seed)


_host_generator = np.random.default_rng()


def host_generator() -> np.random.Generator:
    """The host generator used for parameter initialisation (seeded by :func:`manual_seed`)."""
    return _host_generator
