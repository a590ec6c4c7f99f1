# %% [markdown]
# # Assignment 1: elementwise operations and broadcasting
#
# *Chapter: the autograd engine.* You write the backward rules of a few elementwise
# operations, the way `tinyllm/ops.py` does, including the one thing that makes them tricky:
# NumPy broadcasting.
#
# **How to work.** Write your code where it says `# YOUR CODE HERE` (and delete the
# `raise NotImplementedError()`). Under each task, a tests cell checks it: run this file
# (`python a1_elementwise.py`) or the notebook's cells in order, and fix the first failure.
# The grader runs the same tests plus a few hidden ones, each task on its own, so a mistake
# in one task costs only that task's points.
#
# **A `tl.Function`** works on raw NumPy arrays. `forward` computes the output and keeps
# what backward needs with `self.save(...)`; `backward(g)` receives g = ∂L/∂y (the shape of
# y) and returns one gradient per input, each of that input's shape:
#
# ```python
# class Square(tl.Function):
#     """y = x²;  ∂L/∂x = g · 2x."""
#
#     def forward(self, x):
#         self.save(x)
#         return x * x
#
#     def backward(self, g):
#         (x,) = self.saved
#         return (g * 2 * x,)
#
# y = Square.apply(t)   # on Tensors: runs forward and records the graph for backward
# ```
#
# **`tl.gradcheck(fn, *inputs)`** compares your backward with central differences,
# ∂L/∂x ≈ (L(x + ε) − L(x − ε)) / 2ε, and when they disagree raises an error that names
# the input, the element, and both values. That message is the grader's hint.

# %%
import numpy as np

import tinyllm as tl
from tinyllm.assignments.checks import assert_close, random_tensor

# %% [markdown]
# ## Task 1.1: undo broadcasting (2 points)
#
# When `a` of shape `(3, 1)` meets `b` of shape `(4,)`, NumPy broadcasts both to `(3, 4)`:
# `b` is repeated along a new leading axis, `a` along its axis of size 1. Each copy was used,
# so each sends back a gradient, and the gradient of the original is the sum over its
# copies:
#
#     ∂L/∂a = Σ over the broadcast axes of ∂L/∂y
#
# Write `unbroadcast(grad, shape)`: sum `grad` over (1) the leading axes that `shape` does
# not have and (2) the axes where `shape` has size 1 and `grad` does not, and return an
# array of exactly `shape`.
#
# *Example:* `grad` of shape `(2, 3, 4)` and `shape == (3, 1)`: sum over axis 0 (missing in
# `shape`) and axis 2 (size 1 in `shape`).
# *Hint:* `grad.sum(axis=(...), keepdims=True)` keeps the summed axes as size 1; a final
# `.reshape(shape)` drops the leading ones. `shape` may be `()` (a scalar).

# %% solution
def unbroadcast(grad, shape):
    """Sum ``grad`` (an array) down to ``shape`` (a tuple), undoing NumPy broadcasting."""
    ### BEGIN SOLUTION
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, size in enumerate(shape) if size == 1 and grad.shape[extra + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)
    ### END SOLUTION

# %% tests task="unbroadcast" points=2 title="unbroadcast" forbid="tinyllm.unbroadcast"
g = np.arange(24.0).reshape(2, 3, 4)
assert_close(unbroadcast(g, (2, 3, 4)), g, "unbroadcast(g, (2, 3, 4)) (nothing to undo)")
assert_close(unbroadcast(g, (4,)), g.sum(axis=(0, 1)), "unbroadcast(g, (4,))")
assert_close(unbroadcast(g, (3, 1)), g.sum(axis=(0, 2)).reshape(3, 1), "unbroadcast(g, (3, 1))")
### BEGIN HIDDEN TESTS
assert_close(unbroadcast(g, ()), g.sum(), "unbroadcast(g, ()) (to a scalar)")
assert_close(unbroadcast(g, (1, 1, 1)), g.sum().reshape(1, 1, 1), "unbroadcast(g, (1, 1, 1))")
assert_close(unbroadcast(g, (2, 1, 4)), g.sum(axis=1, keepdims=True), "unbroadcast(g, (2, 1, 4))")
assert_close(unbroadcast(g, (1, 3, 1)), g.sum(axis=(0, 2), keepdims=True), "unbroadcast(g, (1, 3, 1))")
assert_close(unbroadcast(np.ones((5, 1)), (1, 1)), [[5.0]], "unbroadcast(ones((5, 1)), (1, 1))")
### END HIDDEN TESTS

# %% [markdown]
# ## Task 1.2: multiplication, with broadcasting (2 points)
#
# y = a · b elementwise. By the product rule, ∂L/∂a = g · b and ∂L/∂b = g · a, where g has
# the broadcast shape; sum each back to its input's shape with your `unbroadcast`.
# (The grader uses the library's `tl.unbroadcast` here, so a mistake in Task 1.1 does not
# cost you twice.)
#
# `b` may be a plain number (`Mul.apply(x, 2.0)`); you only need to handle arrays, but
# `np.shape(b)` gives `()` for a number, `b.shape` would fail.

# %% solution
class Mul(tl.Function):
    """y = a · b (elementwise, broadcasting);  ∂L/∂a = g · b,  ∂L/∂b = g · a, each summed
    back to its input's shape."""

    def forward(self, a, b):
        ### BEGIN SOLUTION
        self.save(a, b)
        return a * b
        ### END SOLUTION

    def backward(self, g):
        ### BEGIN SOLUTION
        a, b = self.saved
        return unbroadcast(g * b, np.shape(a)), unbroadcast(g * a, np.shape(b))
        ### END SOLUTION

# %% tests task="mul" points=2 title="Mul with broadcasting"
### BEGIN HIDDEN TESTS
unbroadcast = tl.unbroadcast  # graded with the library's unbroadcast: Task 1.1 counts once
### END HIDDEN TESTS
a, b = random_tensor(2, 3, seed=1), random_tensor(2, 3, seed=2)
assert_close(Mul.apply(a, b), a.numpy() * b.numpy(), "Mul.apply(a, b)")
tl.gradcheck(lambda a, b: Mul.apply(a, b), a, b)
a, b = random_tensor(3, 1, seed=3), random_tensor(4, seed=4)
assert_close(Mul.apply(a, b), a.numpy() * b.numpy(), "Mul.apply(a (3, 1), b (4,))")
assert tl.gradcheck(lambda a, b: Mul.apply(a, b), a, b)
### BEGIN HIDDEN TESTS
a, b = random_tensor(2, 1, 4, seed=5), random_tensor(3, 1, seed=6)
tl.gradcheck(lambda a, b: Mul.apply(a, b), a, b)
a = random_tensor(3, seed=7)
tl.gradcheck(lambda a: Mul.apply(a, a), a)  # a used twice: both contributions add up
assert tl.gradcheck(lambda a: Mul.apply(a, 2.5), a)
### END HIDDEN TESTS

# %% [markdown]
# ## Task 1.3: division (2 points)
#
# y = a / b. The quotient rule gives
#
#     ∂L/∂a = g / b,        ∂L/∂b = −g · a / b²  (= −g · y / b)
#
# again summed back to each input's shape (broadcasting works as in Task 1.2).

# %% solution
class Div(tl.Function):
    """y = a / b (elementwise, broadcasting);  ∂L/∂a = g / b,  ∂L/∂b = −g · a / b²."""

    def forward(self, a, b):
        ### BEGIN SOLUTION
        self.save(a, b)
        return a / b
        ### END SOLUTION

    def backward(self, g):
        ### BEGIN SOLUTION
        a, b = self.saved
        grad_a = g / b
        grad_b = -grad_a * a / b
        return unbroadcast(grad_a, np.shape(a)), unbroadcast(grad_b, np.shape(b))
        ### END SOLUTION

# %% tests task="div" points=2 title="Div with broadcasting"
### BEGIN HIDDEN TESTS
unbroadcast = tl.unbroadcast  # graded with the library's unbroadcast: Task 1.1 counts once
### END HIDDEN TESTS
a, b = random_tensor(2, 3, seed=1), random_tensor(2, 3, seed=2, away_from_zero=0.5)
assert_close(Div.apply(a, b), a.numpy() / b.numpy(), "Div.apply(a, b)")
assert tl.gradcheck(lambda a, b: Div.apply(a, b), a, b)
### BEGIN HIDDEN TESTS
a, b = random_tensor(4, 3, seed=3), random_tensor(3, seed=4, away_from_zero=0.5)
assert_close(Div.apply(a, b), a.numpy() / b.numpy(), "Div.apply(a (4, 3), b (3,))")
tl.gradcheck(lambda a, b: Div.apply(a, b), a, b)
b = random_tensor(2, 1, seed=5, away_from_zero=0.5)
assert tl.gradcheck(lambda b: Div.apply(1.0, b), b)
### END HIDDEN TESTS

# %% [markdown]
# ## Task 1.4: the sigmoid, from its output (2 points)
#
# σ(x) = 1 / (1 + e⁻ˣ). Its derivative is best written with the output y = σ(x):
#
#     ∂L/∂x = g · y · (1 − y)
#
# so save y in forward, not x. For large |x| one of e⁻ˣ and eˣ overflows: compute
# e^(−|x|), which is always in (0, 1], and use σ(x) = 1 / (1 + e^(−x)) for x ≥ 0 and
# σ(x) = eˣ / (1 + eˣ) for x < 0 (`np.where` picks per element). For x = ±1000 your
# sigmoid must return 1 and 0, with no `nan`.

# %% solution
class Sigmoid(tl.Function):
    """y = σ(x) = 1 / (1 + e⁻ˣ);  ∂L/∂x = g · y · (1 − y)."""

    def forward(self, x):
        ### BEGIN SOLUTION
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        self.save(y)
        return y
        ### END SOLUTION

    def backward(self, g):
        ### BEGIN SOLUTION
        (y,) = self.saved
        return (g * y * (1 - y),)
        ### END SOLUTION

# %% tests task="sigmoid" points=2 title="Sigmoid"
x = random_tensor(3, 4, seed=1, low=-4, high=4)
assert_close(Sigmoid.apply(x), 1 / (1 + np.exp(-x.numpy())), "Sigmoid.apply(x)")
assert tl.gradcheck(lambda x: Sigmoid.apply(x), x)
### BEGIN HIDDEN TESTS
with np.errstate(over="raise", invalid="raise"):
    big = tl.Tensor(np.array([-1000.0, 0.0, 1000.0]), requires_grad=True)
    y = Sigmoid.apply(big)
    assert_close(y, [0.0, 0.5, 1.0], "Sigmoid.apply([-1000, 0, 1000]) (overflow?)")
    y.sum().backward()
assert_close(big.grad, [0.0, 0.25, 0.0], "the gradient of the sigmoid at [-1000, 0, 1000]")
### END HIDDEN TESTS
