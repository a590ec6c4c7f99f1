"""Numerical gradient checks: the proof that every hand-written backward is right.

For a function f of tensors, pick a fixed random cotangent v of f's output shape and
look at the scalar L = Σ v ⊙ f(x). Its gradient comes from ``backward`` (analytic) and
from central differences (numeric):

    ∂L/∂x_i ≈ (L(x + ε e_i) − L(x − ε e_i)) / 2ε

with an error of order ε², so float64 and ε ≈ 1e-6 agree to many digits. The random
cotangent tests the whole vector-Jacobian product, not just one output.

For big inputs, checking every element costs two forward passes per element. The
random-projection check instead compares one directional derivative per input:
(L(x + ε u) − L(x − ε u)) / 2ε against Σ u ⊙ ∂L/∂x for a random direction u.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .tensor import Tensor, no_grad

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with its numerical estimate."""


def _scalar_loss(fn, inputs, cotangent):
    out = fn(*inputs)
    return out, (out * cotangent).sum()


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-4, projections=None, seed=0):
    """Check the gradients of ``fn(*inputs)`` against central differences.

    ``inputs``: tensors; those with ``requires_grad`` are checked (use float64 for them).
    ``projections``: None checks every element; an integer k checks k random directions
    per input instead (cheap for large tensors).
    Returns True, or raises :class:`GradcheckError` naming the input, the element index,
    the analytic and the numeric value.
    """
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True; nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64 so that central "
                            f"differences are accurate (tensor.double())")
    rng = np.random.default_rng(seed)
    for x in inputs:
        if isinstance(x, Tensor):
            x.grad = None
    with no_grad():  # only the output's shape and device, for the random cotangent
        out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: the function must return a Tensor, got {type(out).__name__}")
    cotangent = Tensor(backend.to_device(rng.standard_normal(out.shape), out.device))
    out, loss = _scalar_loss(fn, inputs, cotangent)
    loss.backward()
    analytic = {i: (backend.to_host(inputs[i].grad) if inputs[i].grad is not None
                    else np.zeros(inputs[i].shape)) for i in checked}

    def loss_at():
        with no_grad():
            return float(_scalar_loss(fn, inputs, cotangent)[1].item())

    for i in checked:
        x = inputs[i]
        if projections is None:
            flat = x.data.reshape(-1) if x.data.flags.c_contiguous else None
            if flat is None:  # perturb a contiguous copy in place of the original data
                x.data = x.xp.ascontiguousarray(x.data)
                flat = x.data.reshape(-1)
            numeric = np.zeros(x.size)
            for j in range(x.size):
                original = float(flat[j].item())
                flat[j] = original + eps
                plus = loss_at()
                flat[j] = original - eps
                minus = loss_at()
                flat[j] = original
                numeric[j] = (plus - minus) / (2 * eps)
            numeric = numeric.reshape(x.shape)
            a = analytic[i]
            bad = ~np.isclose(a, numeric, atol=atol, rtol=rtol)
            if bad.any():
                index = tuple(int(k) for k in np.argwhere(bad)[0])
                raise GradcheckError(
                    f"gradcheck failed for input {i} (shape {x.shape}) at index {index}: "
                    f"analytic {a[index]:.10g}, numeric {numeric[index]:.10g} "
                    f"({int(bad.sum())} of {x.size} elements differ; atol={atol}, rtol={rtol})")
        else:
            original = x.data.copy()
            for k in range(projections):
                u = rng.standard_normal(x.shape)
                u_dev = backend.to_device(u, x.device)
                x.data = original + eps * u_dev
                plus = loss_at()
                x.data = original - eps * u_dev
                minus = loss_at()
                x.data = original
                numeric = (plus - minus) / (2 * eps)
                directional = float((analytic[i] * u).sum())
                if not np.isclose(directional, numeric, atol=atol, rtol=rtol):
                    raise GradcheckError(
                        f"gradcheck failed for input {i} (shape {x.shape}) along random direction "
                        f"{k}: analytic {directional:.10g}, numeric {numeric:.10g} "
                        f"(atol={atol}, rtol={rtol})")
    return True
