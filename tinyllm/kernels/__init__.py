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

The registry itself is :mod:`tinyllm.kernels.registry`; each kernel module (``cpu.py``)
imports it and registers its kernels when the package imports the module. Nothing here
imports :mod:`tinyllm.ops` or :mod:`tinyllm.functional`: the arrows point one way,
backend ← kernels ← tensor, ops, functional, optim.
"""
from __future__ import annotations

from . import cpu  # noqa: F401  (registers the CPU kernels)
from .registry import FunctionKernel, enabled, find, reference_only, register, registered, replaceable

__all__ = ["register", "find", "replaceable", "FunctionKernel", "reference_only", "registered", "enabled"]
