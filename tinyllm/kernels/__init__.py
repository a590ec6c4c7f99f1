"""Faster implementations of reference formulas, chosen per device.

Every Function in :mod:`tinyllm.ops` and :mod:`tinyllm.functional`, and every optimizer
update, is written as its formula: that is the code the chapters show and the tests prove.
A *kernel* is a faster implementation of one of those formulas, registered under the
reference's name for one family of devices:

* ``"cpu"``: NumPy arrays, and the strict test device (NumPy behind CuPy's rules, so every
  CPU kernel is also checked to use only the array module);
* ``"cuda"``: CuPy arrays (none registered yet: on a GPU the formulas run as they are).

The engine asks :func:`find` once per op. Without a kernel, or with the environment variable
``TINYLLM_KERNELS=reference`` (read at import), or inside :func:`reference_only`, the formula
runs. A kernel must give the reference's results (``tests/test_kernels.py`` checks each one
against its reference on Hypothesis-drawn shapes), and for a Function it saves for backward
what the reference saves, unless it brings its own backward too.

A kernel for a Function is a class with ``forward(fn, *arrays, **params)`` and, optionally,
``backward(fn, g)``, both called with the Function instance ``fn`` (``fn.save``,
``fn.saved``, ``fn.xp``, ``fn.needs_grad``), exactly like the reference methods. A kernel
for anything else is a plain function with the reference function's signature.

Nothing here imports :mod:`tinyllm.ops` or :mod:`tinyllm.functional`: the arrows point one
way, backend ← kernels ← tensor, ops, functional, optim.
"""
from __future__ import annotations

import contextlib
import functools
import os

__all__ = ["register", "find", "replaceable", "FunctionKernel", "reference_only", "registered", "enabled"]

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


from . import cpu  # noqa: E402,F401  (registers the CPU kernels)
