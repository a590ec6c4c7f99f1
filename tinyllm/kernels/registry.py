"""The registry of kernels: which faster implementation replaces which reference formula, on
which family of devices (see :mod:`tinyllm.kernels`). Kernel modules import from here, and
the package imports them: the arrows point one way.
"""
from __future__ import annotations

import contextlib
import functools
import os

_registry: dict = {}  # (reference name, device family) -> kernel
_enabled = os.environ.get("TINYLLM_KERNELS", "").strip().lower() != "reference"


def register(name: str, family: str = "cpu"):
    """Decorator: make the decorated class or function the ``family`` kernel of ``name``."""
    def decorate(kernel):
        _registry[(name, family)] = kernel
        return kernel
    return decorate


def find(name: str, family: str):
    """The kernel registered for ``name`` on ``family``, or None (then the formula runs)."""
    return _registry.get((name, family)) if _enabled else None


class FunctionKernel:
    """Base of a Function's kernel: ``forward(fn, *arrays, **params)`` (a static method), and
    ``backward(fn, g)``, or None to keep the reference backward (then forward saves what the
    reference forward saves)."""

    backward = None


def replaceable(reference):
    """Decorator for a reference function whose first argument is a Device: a call runs the
    kernel registered under the function's name for that device's family, if there is one.
    ``reference.reference`` stays the formula itself."""
    name = reference.__name__

    @functools.wraps(reference)
    def dispatch(device, *args, **kwargs):
        kernel = find(name, device.kernel_family)
        return (kernel or reference)(device, *args, **kwargs)
    dispatch.reference = reference
    return dispatch


def enabled() -> bool:
    """False under ``TINYLLM_KERNELS=reference`` or inside :func:`reference_only`."""
    return _enabled


def registered() -> list:
    """Every (reference name, device family) that has a kernel."""
    return sorted(_registry)


@contextlib.contextmanager
def reference_only():
    """Run the reference formulas inside the block, whatever kernels are registered."""
    global _enabled
    previous = _enabled
    _enabled = False
    try:
        yield
    finally:
        _enabled = previous

