# %% [markdown]
# # Assignment 2: matrix products and reductions
#
# *Chapter: the autograd engine.* A Transformer is mostly matrix products, plus the sums,
# means and maxima inside softmax and layer norm. You write the backward rule of each.
#
# Same rules as Assignment 1: write your code at `# YOUR CODE HERE`, run the file (or the
# notebook) and fix the first failing test; the grader adds hidden tests and grades each
# task on its own. `tl.unbroadcast(grad, shape)` (Assignment 1's function, from the library)
# is yours to use.

# %%
import numpy as np

import tinyllm as tl
from tinyllm.assignments.checks import assert_close, random_tensor

# %% [markdown]
# ## Task 2.1: MatMul (3 points)
#
# y = a @ b with a of shape `(..., n, k)` and b of shape `(..., k, m)`, so y is
# `(..., n, m)`; the batch axes `...` broadcast as in NumPy (`(2, n, k) @ (k, m)` is fine).
# Each y_ij = Σ_l a_il b_lj, so a_il meets every g_ij of row i through b_lj:
#
#     ∂L/∂a = g @ bᵀ     (n, m) @ (m, k) → (n, k)
#     ∂L/∂b = aᵀ @ g     (k, n) @ (n, m) → (k, m)
#
# where ᵀ swaps the last two axes (`x.swapaxes(-1, -2)`). Check the shapes: that is the
# quickest way to get the order right. With batch axes, `@` of the stacks gives one
# gradient per batch item; `tl.unbroadcast` sums it back to the input's shape when that
# input was broadcast (e.g. `b` of shape `(k, m)` used by every item). Only inputs with at
# least 2 dimensions are tested.

# %% solution
class MatMul(tl.Function):
    """y = a @ b, a (..., n, k), b (..., k, m) → (..., n, m);
    ∂L/∂a = g @ bᵀ,  ∂L/∂b = aᵀ @ g (each summed over broadcast batch axes)."""

    def forward(self, a, b):
        ### BEGIN SOLUTION
        self.save(a, b)
        return a @ b
        ### END SOLUTION

    def backward(self, g):
        ### BEGIN SOLUTION
        a, b = self.saved
        grad_a = g @ b.swapaxes(-1, -2)
        grad_b = a.swapaxes(-1, -2) @ g
        return tl.unbroadcast(grad_a, a.shape), tl.unbroadcast(grad_b, b.shape)
        ### END SOLUTION

# %% tests task="matmul" points=3 title="MatMul forward and backward"
a, b = random_tensor(3, 4, seed=1), random_tensor(4, 5, seed=2)
assert_close(MatMul.apply(a, b), a.numpy() @ b.numpy(), "MatMul.apply(a (3, 4), b (4, 5))")
tl.gradcheck(lambda a, b: MatMul.apply(a, b), a, b)
a, b = random_tensor(2, 3, 4, seed=3), random_tensor(2, 4, 2, seed=4)
assert_close(MatMul.apply(a, b), a.numpy() @ b.numpy(), "MatMul.apply(a (2, 3, 4), b (2, 4, 2))")
assert tl.gradcheck(lambda a, b: MatMul.apply(a, b), a, b)
### BEGIN HIDDEN TESTS
a, b = random_tensor(2, 3, 4, seed=5), random_tensor(4, 5, seed=6)
tl.gradcheck(lambda a, b: MatMul.apply(a, b), a, b)  # b shared by the batch
a, b = random_tensor(3, 4, seed=7), random_tensor(2, 1, 4, 2, seed=8)
tl.gradcheck(lambda a, b: MatMul.apply(a, b), a, b)
a = random_tensor(3, 3, seed=9)
assert tl.gradcheck(lambda a: MatMul.apply(a, a), a)  # a square matrix used twice
### END HIDDEN TESTS

# %% [markdown]
# ## Task 2.2: Sum over axes (2 points)
#
# y = Σ over `axis` of x, where `axis` is None (all axes), an int, or a tuple of ints
# (negative ones count from the end), and `keepdims` keeps the summed axes with size 1, as
# in `np.sum`. Every x element adds into exactly one y element with weight 1, so
#
#     ∂L/∂x = g, copied back along the summed axes
#
# *Hint:* if `keepdims` was False, first give g its summed axes back as size 1
# (`np.expand_dims(g, axes)` with the axes as non-negative ints), then
# `np.broadcast_to(g, x_shape)`. Save the shape of x, not x itself: backward needs no more.

# %% solution
class Sum(tl.Function):
    """y = Σ_axis x (as ``np.sum(x, axis, keepdims=keepdims)``);  ∂L/∂x = g broadcast back."""

    def forward(self, x, axis=None, keepdims=False):
        ### BEGIN SOLUTION
        if axis is None:
            axes = tuple(range(x.ndim))
        else:
            axes = tuple(a % x.ndim for a in (axis if isinstance(axis, tuple) else (axis,)))
        self.save(x.shape, axes, keepdims)
        return x.sum(axis=axes, keepdims=keepdims)
        ### END SOLUTION

    def backward(self, g):
        ### BEGIN SOLUTION
        shape, axes, keepdims = self.saved
        if not keepdims:
            g = np.expand_dims(g, axes)
        return (np.broadcast_to(g, shape),)
        ### END SOLUTION

# %% tests task="sum" points=2 title="Sum over axes"
x = random_tensor(2, 3, 4, seed=1)
assert_close(Sum.apply(x), x.numpy().sum(), "Sum.apply(x)")
tl.gradcheck(lambda x: Sum.apply(x), x)
assert_close(Sum.apply(x, axis=1), x.numpy().sum(axis=1), "Sum.apply(x, axis=1)")
tl.gradcheck(lambda x: Sum.apply(x, axis=1), x)
assert_close(Sum.apply(x, axis=-1, keepdims=True), x.numpy().sum(axis=-1, keepdims=True),
             "Sum.apply(x, axis=-1, keepdims=True)")
assert tl.gradcheck(lambda x: Sum.apply(x, axis=-1, keepdims=True), x)
### BEGIN HIDDEN TESTS
assert_close(Sum.apply(x, axis=(0, 2)), x.numpy().sum(axis=(0, 2)), "Sum.apply(x, axis=(0, 2))")
tl.gradcheck(lambda x: Sum.apply(x, axis=(0, 2)), x)
tl.gradcheck(lambda x: Sum.apply(x, axis=(0, -1), keepdims=True), x)
tl.gradcheck(lambda x: Sum.apply(x, keepdims=True), x)
assert tl.gradcheck(lambda x: Sum.apply(x, axis=0), random_tensor(5, seed=2))
### END HIDDEN TESTS

# %% [markdown]
# ## Task 2.3: Max along an axis (2 points)
#
# y = max over `axis` (an int) of x, with `keepdims` as in `np.max`. Only the largest
# element of each row influences y, so the gradient goes there and nowhere else:
#
#     ∂L/∂x = g where x equals its row's maximum, 0 elsewhere
#
# When several elements tie for the maximum, they share g equally (each gets g / count), as
# `torch.amax` does. *Hint:* compute the max with `keepdims=True` and save it; then
# `x == y_kept` is a mask of the maxima, and its sum along the axis is the count.

# %% solution
class Max(tl.Function):
    """y = max_axis x;  ∂L/∂x = g at each row's maximum (shared equally by ties), else 0."""

    def forward(self, x, axis=-1, keepdims=False):
        ### BEGIN SOLUTION
        y = x.max(axis=axis, keepdims=True)
        self.save(x, y, axis, keepdims)
        return y if keepdims else np.squeeze(y, axis=axis)
        ### END SOLUTION

    def backward(self, g):
        ### BEGIN SOLUTION
        x, y, axis, keepdims = self.saved
        if not keepdims:
            g = np.expand_dims(g, axis)
        is_max = x == y
        return (is_max * g / is_max.sum(axis=axis, keepdims=True),)
        ### END SOLUTION

# %% tests task="max" points=2 title="Max along an axis"
x = random_tensor(3, 5, seed=1)
assert_close(Max.apply(x, axis=1), x.numpy().max(axis=1), "Max.apply(x, axis=1)")
tl.gradcheck(lambda x: Max.apply(x, axis=1), x)
assert_close(Max.apply(x, axis=0, keepdims=True), x.numpy().max(axis=0, keepdims=True),
             "Max.apply(x, axis=0, keepdims=True)")
assert tl.gradcheck(lambda x: Max.apply(x, axis=0, keepdims=True), x)
### BEGIN HIDDEN TESTS
tl.gradcheck(lambda x: Max.apply(x, axis=-1), random_tensor(2, 3, 4, seed=2))
ties = tl.Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
Max.apply(ties, axis=1).sum().backward()
assert_close(ties.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], "the gradient of max with ties")
### END HIDDEN TESTS
