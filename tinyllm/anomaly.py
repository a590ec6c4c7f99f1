"""Find the first op that makes a NaN or an Inf, forward or backward.

    with tl.detect_anomaly():
        loss = model(x, y)[1]
        loss.backward()

raises :class:`AnomalyError` at the first op whose output (forward) or whose input
gradients (backward) contain NaN or Inf, naming the op, the shapes of its inputs, and the
line of *your* code where that op was created. Checking every array costs time: use it
to find a bug, not for every run.
"""
from __future__ import annotations

import contextlib
import os
import traceback

import numpy as np

from .tensor import backward_hooks, forward_hooks

__all__ = ["detect_anomaly", "AnomalyError"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class AnomalyError(FloatingPointError):
    """An op produced NaN or Inf while :func:`detect_anomaly` was active."""


def _user_frame():
    """The innermost stack frame outside tinyllm (where the user called in)."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f'{frame.filename}:{frame.lineno} in {frame.name}: "{(frame.line or "").strip()}"'
    return "<unknown>"


def _bad(array, xp):
    """"NaN", "Inf" or None for a finite (or non-float) array."""
    if array is None or not np.issubdtype(array.dtype, np.floating):
        return None
    finite = xp.isfinite(array)
    if bool(finite.all()):
        return None
    return "NaN" if bool(xp.isnan(array).any()) else "Inf"


def _forward_hook(fn, arrays, call):
    fn.created_at = _user_frame()
    out = call()
    kind = _bad(out, fn.xp)
    if kind is not None:
        shapes = ", ".join(str(tuple(getattr(a, "shape", ()))) for a in arrays)
        inputs_bad = [i for i, a in enumerate(arrays) if hasattr(a, "dtype") and _bad(a, fn.xp)]
        note = (f"; input(s) {inputs_bad} already held NaN/Inf" if inputs_bad else
                "; its inputs were all finite")
        raise AnomalyError(f"{type(fn).__name__} produced {kind} in its forward output "
                           f"(input shapes {shapes}){note}. The op was called at {fn.created_at}")
    return out


def _backward_hook(fn, grad, call):
    grads = call()
    for i, g in enumerate(grads):
        kind = _bad(g, fn.xp) if g is not None else None
        if kind is not None:
            incoming = "finite" if _bad(grad, fn.xp) is None else "already non-finite"
            raise AnomalyError(
                f"{type(fn).__name__}.backward produced {kind} in the gradient of input {i} "
                f"(shape {tuple(g.shape)}; the incoming gradient of shape {tuple(grad.shape)} was "
                f"{incoming}). The op was created at {getattr(fn, 'created_at', '<before detect_anomaly>')}")
    return grads


@contextlib.contextmanager
def detect_anomaly():
    """Raise :class:`AnomalyError` at the first NaN/Inf produced inside the block."""
    forward_hooks.append(_forward_hook)
    backward_hooks.append(_backward_hook)
    try:
        yield
    finally:
        forward_hooks.remove(_forward_hook)
        backward_hooks.remove(_backward_hook)
