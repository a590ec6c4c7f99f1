"""Find the first op that makes a NaN, forward or backward.

    with tl.detect_anomaly():
        loss = model(x, y)[1]
        loss.backward()

raises :class:`AnomalyError` at the first op whose output (forward) or whose input
gradients (backward) contain NaN, naming the op, the shapes of its inputs, and the line of
*your* code where that op was created. Checking every array costs time: use it to find a
bug, not for every run.

Infinities are not anomalies: ``masked_fill(scores, mask, -inf)`` before a softmax is the
standard way to mask attention, and log 0 = −∞ is a correct answer. As torch's anomaly
mode, this flags NaN (torch checks only the backward; the forward check here finds the op
one step earlier, usually the one that turned ∞ into ∞ − ∞ or 0 · ∞).
"""
from __future__ import annotations

import contextlib
import linecache
import os
import sys

import numpy as np

from .tensor import backward_hooks, forward_hooks

__all__ = ["detect_anomaly", "AnomalyError"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class AnomalyError(FloatingPointError):
    """An op produced NaN while :func:`detect_anomaly` was active."""


def _user_frame():
    """(file, line, function) of the innermost stack frame outside tinyllm (where the user
    called in). Recorded for every op, so only these three are taken here; the source line
    is read when an error names it (:func:`_describe`)."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if not os.path.abspath(code.co_filename).startswith(_PACKAGE_DIR):
            return code.co_filename, frame.f_lineno, code.co_name
        frame = frame.f_back
    return None


def _describe(where):
    if where is None:
        return "<unknown>"
    filename, lineno, name = where
    return f'{filename}:{lineno} in {name}: "{linecache.getline(filename, lineno).strip()}"'


def _has_nan(array, xp):
    """True when a floating-point array holds a NaN (never for None or integer arrays)."""
    if array is None or not np.issubdtype(array.dtype, np.floating):
        return False
    return bool(xp.isnan(array).any())


def _forward_hook(fn, arrays, call):
    fn.created_at = _user_frame()
    out = call()
    if _has_nan(out, fn.xp):
        shapes = ", ".join(str(tuple(getattr(a, "shape", ()))) for a in arrays)
        inputs_bad = [i for i, a in enumerate(arrays) if hasattr(a, "dtype") and _has_nan(a, fn.xp)]
        note = (f"; input(s) {inputs_bad} already held NaN" if inputs_bad else "; none of its inputs held NaN")
        raise AnomalyError(f"{type(fn).__name__} produced NaN in its forward output "
                           f"(input shapes {shapes}){note}. The op was called at {_describe(fn.created_at)}")
    return out


def _backward_hook(fn, grad, call):
    grads = call()
    for i, g in enumerate(grads):
        if g is not None and _has_nan(g, fn.xp):
            incoming = "already held NaN" if _has_nan(grad, fn.xp) else "held no NaN"
            raise AnomalyError(
                f"{type(fn).__name__}.backward produced NaN in the gradient of input {i} "
                f"(shape {tuple(g.shape)}; the incoming gradient of shape {tuple(grad.shape)} "
                f"{incoming}). The op was created at "
                f"{_describe(fn.created_at) if hasattr(fn, 'created_at') else '<before detect_anomaly>'}")
    return grads


@contextlib.contextmanager
def detect_anomaly():
    """Raise :class:`AnomalyError` at the first NaN produced inside the block (forward or backward)."""
    forward_hooks.append(_forward_hook)
    backward_hooks.append(_backward_hook)
    try:
        yield
    finally:
        forward_hooks.remove(_forward_hook)
        backward_hooks.remove(_backward_hook)
