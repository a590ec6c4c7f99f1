"""Helpers shared by the nn/model tests (a plain module, not a conftest): comparing a
tinyllm module with its torch twin, and a minimal Adam for the overfitting tests.

Every comparison records its largest difference; run with TINYLLM_PARITY_REPORT=1 to print
the largest seen over the session (``pytest -s``).
"""
from __future__ import annotations

import atexit
import os

import numpy as np
import pytest

import tinyllm as tl

try:  # torch is the test-only reference; without it the comparisons skip, the rest still runs
    import torch
except ImportError:  # pragma: no cover
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="torch (the test-only reference) is not installed")

RTOL, ATOL = 1e-6, 1e-9

# the largest differences seen: (value, what)
LARGEST = {"abs": (0.0, ""), "rel": (0.0, "")}


def _record(actual, expected, what):
    diff = np.abs(actual - expected)
    worst = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(expected).max()) if diff.size else 0.0
    relative = worst / scale if scale > 0 else worst
    if worst > LARGEST["abs"][0]:
        LARGEST["abs"] = (worst, what)
    if relative > LARGEST["rel"][0]:
        LARGEST["rel"] = (relative, what)


def assert_close(actual, expected, what, rtol=RTOL, atol=ATOL):
    """``actual`` (tl.Tensor or array) equals ``expected`` (torch tensor or array) within
    |a − e| ≤ atol + rtol·|e|, elementwise; the message names what and where."""
    actual = actual.numpy() if isinstance(actual, tl.Tensor) else np.asarray(actual)
    if hasattr(expected, "detach"):
        expected = expected.detach().numpy()
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    _record(actual, expected, what)
    bad = ~np.isclose(actual, expected, rtol=rtol, atol=atol)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(f"{what}: {int(bad.sum())} of {actual.size} elements differ; first at {index}: "
                             f"got {actual[index]!r}, expected {expected[index]!r} "
                             f"(max abs diff {np.abs(actual - expected).max():.3g})")


def load_torch_weights(module, torch_module):
    """Copy a torch module's state_dict (as NumPy) into a tinyllm module."""
    return module.load_state_dict({k: v.detach().numpy() for k, v in torch_module.state_dict().items()})


def tensors(array, torch):
    """The same float64 values as a tinyllm leaf and a torch leaf, both requiring grad."""
    return tl.Tensor(array.copy(), requires_grad=True), torch.tensor(array.copy(), requires_grad=True)


def backward_both(out, torch_out, rng):
    """Backpropagate the same random cotangent through both outputs."""
    import torch
    cotangent = rng.standard_normal(out.shape)
    (out * tl.Tensor(cotangent)).sum().backward()
    (torch_out * torch.from_numpy(cotangent)).sum().backward()


def assert_grads_close(module, torch_module, what):
    """Every parameter gradient of ``module`` equals the torch twin's, name by name."""
    ours = dict(module.named_parameters())
    theirs = dict(torch_module.named_parameters())
    assert list(ours) == list(theirs), f"{what}: parameter names differ:\n{list(ours)}\n{list(theirs)}"
    for name, p in ours.items():
        assert p.grad is not None, f"{what}: {name} got no gradient"
        assert_close(p.grad, theirs[name].grad, f"{what}: grad of {name}")


class Adam:
    """A minimal Adam (Kingma & Ba), enough to overfit one batch in the tests."""

    def __init__(self, params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]
        self.t = 0

    def step(self):
        self.t += 1
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m *= self.b1
            m += (1 - self.b1) * p.grad
            v *= self.b2
            v += (1 - self.b2) * p.grad * p.grad
            m_hat = m / (1 - self.b1 ** self.t)
            v_hat = v / (1 - self.b2 ** self.t)
            p.data -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def zero_grad(self):
        for p in self.params:
            p.grad = None


def _report():
    if os.environ.get("TINYLLM_PARITY_REPORT"):
        print(f"\nlargest absolute difference from the reference: {LARGEST['abs'][0]:.3g} ({LARGEST['abs'][1]})")
        print(f"largest difference relative to the reference's max: {LARGEST['rel'][0]:.3g} ({LARGEST['rel'][1]})")



def perturb(torch_module, rng, scale=0.1):
    """Add noise to every parameter of a torch module (so LayerNorm's 1/0 and the zero
    biases of a fresh module do not hide a wrong gradient or a missing term)."""
    import torch
    with torch.no_grad():
        for p in torch_module.parameters():
            p.add_(torch.from_numpy(scale * rng.standard_normal(tuple(p.shape))).to(p.dtype))
    return torch_module


atexit.register(_report)
