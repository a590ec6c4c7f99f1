"""Small helpers for the assignments' tests cells, written so that a failure explains itself:
the grader shows the first failure's message to the student as the hint.

    x = random_tensor(3, 4, seed=1)                 # float64, requires_grad, values in [-2, 2]
    assert_close(my_softmax(x), F.softmax(x), "softmax(x)")
    tl.gradcheck(lambda x: MySoftmax.apply(x), x)   # GradcheckError names input, index, values

**Fresh inputs when graded.** On a student's machine, ``seed=1`` always draws the same
numbers. When the grader runs the tests, it sets ``grading_salt`` to a number drawn for
that grading run, and the same seeds draw new inputs: an answer memorized for the inputs
of the published tests is worth nothing. Statistical tests keep a fixed seed
(``np.random.default_rng(0)``), so that their tolerance holds.
"""
from __future__ import annotations

import numpy as np

import tinyllm as tl

__all__ = ["random_tensor", "random_generator", "as_array", "assert_close", "assert_equal"]

grading_salt = None  # set by the grader's judge for each grading run


def random_generator(seed=0) -> np.random.Generator:
    """``np.random.default_rng(seed)``, or, when graded, a generator for this grading run."""
    return np.random.default_rng(seed if grading_salt is None else (grading_salt, seed))


def random_tensor(*shape, seed=0, low=-2.0, high=2.0, away_from_zero=0.0, requires_grad=True):
    """A float64 tensor of uniform values in [low, high] (float64: what gradcheck needs).

    ``away_from_zero=m`` moves values closer than m to 0 out to ±m (for divisions, logs)."""
    x = random_generator(seed).uniform(low, high, size=shape)
    if away_from_zero:
        small = np.abs(x) < away_from_zero
        x[small] = np.where(x[small] >= 0, away_from_zero, -away_from_zero)
    return tl.Tensor(x, requires_grad=requires_grad)


def as_array(x, what="the result"):
    """A NumPy array from a Tensor, an array, a number or a list."""
    if x is None:
        raise AssertionError(f"{what} is None: did the function forget to return it?")
    if isinstance(x, tl.Tensor):
        return x.numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} should be an array or a Tensor, got {type(x).__name__}") from None


def assert_close(actual, expected, what="the result", atol=1e-6, rtol=1e-5):
    """Fail with the shape, or the first wrong element and both values, unless close."""
    a, e = as_array(actual, what), as_array(expected, "the expected value")
    if a.shape != e.shape:
        raise AssertionError(f"{what} has shape {a.shape}, expected {e.shape}")
    if np.isnan(a).any() and not np.isnan(e).any():
        index = tuple(int(i) for i in np.argwhere(np.isnan(a))[0])
        raise AssertionError(f"{what} contains nan (first at index {index}; overflow?)")
    bad = ~np.isclose(a, e, atol=atol, rtol=rtol)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(f"{what} is wrong at index {index}: got {a[index]:.6g}, expected "
                             f"{e[index]:.6g} ({int(bad.sum())} of {a.size} values differ)")


def assert_equal(actual, expected, what="the result"):
    """Exact equality for ints, lists, dicts, strings; the message shows both (shortened)."""
    if actual != expected:
        def short(value):
            text = repr(value)
            return text if len(text) <= 160 else text[:160] + "…"

        raise AssertionError(f"{what}: got {short(actual)}, expected {short(expected)}")
