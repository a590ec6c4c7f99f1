# %% [markdown]
# # Assignment 3: softmax, cross-entropy and layer norm
#
# *Chapter: fused functions.* You could build softmax from `exp`, `sum` and `/` and let
# autograd do the rest. Real libraries *fuse* it: one op, one hand-written backward, fewer
# arrays kept in memory, and the max-subtraction that keeps `exp` from overflowing. You write
# three fused ops, forward and backward, on raw NumPy arrays: the softmax, the
# cross-entropy loss on logits, and layer normalisation.
#
# Write your code at `# YOUR CODE HERE`, run the file or the notebook, fix the first failing
# test. The tests compare your forward with `tinyllm.functional` (imported as `F`) and your
# backward with `tl.gradcheck`.

# %%
import numpy as np

import tinyllm as tl
import tinyllm.functional as F
from tinyllm.assignments.checks import assert_close, random_tensor

# %% [markdown]
# ## Task 3.1: softmax (3 points)
#
# Along the last axis, y_i = e^(x_i − m) / Σ_j e^(x_j − m), with m = max_j x_j. Subtracting
# m changes nothing mathematically (it cancels) but keeps every exponent ≤ 0, so
# `exp` cannot overflow even for logits like 1000.
#
# For the backward, the Jacobian is ∂y_i/∂x_k = y_i (δ_ik − y_k). Multiplying by g and
# summing over i gives a formula with no Jacobian matrix in it:
#
#     ∂L/∂x = y ⊙ (g − Σ_j g_j y_j)        (the sum along the last axis, kept as size 1)
#
# Both terms matter: g ⊙ y alone is the derivative of the numerators only. Save y in forward.

# %% solution
class Softmax(tl.Function):
    """y = softmax(x) along the last axis;  ∂L/∂x = y ⊙ (g − Σ_j g_j y_j)."""

    def forward(self, x):
        ### BEGIN SOLUTION
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        y = e / e.sum(axis=-1, keepdims=True)
        self.save(y)
        return y
        ### END SOLUTION

    def backward(self, g):
        ### BEGIN SOLUTION
        (y,) = self.saved
        grad = g * y
        grad -= y * grad.sum(axis=-1, keepdims=True)
        return (grad,)
        ### END SOLUTION

# %% tests task="softmax" points=3 title="Softmax forward and backward"
x = random_tensor(3, 5, seed=1)
assert_close(Softmax.apply(x), F.softmax(x), "Softmax.apply(x)")
tl.gradcheck(lambda x: Softmax.apply(x), x)
big = tl.Tensor(np.array([[1000.0, 1001.0, 999.0]]))
assert_close(Softmax.apply(big), F.softmax(big), "Softmax.apply([[1000, 1001, 999]]) (overflow?)")
### BEGIN HIDDEN TESTS
x = random_tensor(2, 3, 4, seed=2, low=-5, high=5)
assert_close(Softmax.apply(x), F.softmax(x), "Softmax.apply(x) on a (2, 3, 4) input")
tl.gradcheck(lambda x: Softmax.apply(x), x)
assert tl.gradcheck(lambda x: Softmax.apply(x), random_tensor(1, 1, seed=3))
### END HIDDEN TESTS

# %% [markdown]
# ## Task 3.2: cross-entropy on logits (3 points)
#
# A language model outputs logits z of shape `(N, C)` (N predictions, C classes); the
# targets t are `N` integer class ids. With p = softmax(z), the mean cross-entropy is
#
#     L = −(1/N) Σ_n log p_{n, t_n} = (1/N) Σ_n (logsumexp(z_n) − z_{n, t_n})
#
# Use the right-hand form: logsumexp(z) = m + log Σ_j e^(z_j − m) is stable, while
# log(softmax(z)) gives log(0) = −inf when a probability underflows. The gradient is the
# famous one:
#
#     ∂L/∂z = (p − onehot(t)) / N        (times g, a scalar here)
#
# `targets` arrives in forward as an integer NumPy array; backward returns `None` for it.
# *Hint:* `z[np.arange(N), t]` picks each row's target logit.

# %% solution
class CrossEntropy(tl.Function):
    """L = mean_n (logsumexp(z_n) − z_{n,t_n}) for logits z (N, C), targets t (N,);
    ∂L/∂z = g · (softmax(z) − onehot(t)) / N."""

    def forward(self, logits, targets):
        ### BEGIN SOLUTION
        n = logits.shape[0]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_total = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        log_p = shifted - log_total
        self.save(log_p, targets)
        return -log_p[np.arange(n), targets].mean()
        ### END SOLUTION

    def backward(self, g):
        ### BEGIN SOLUTION
        log_p, targets = self.saved
        n = log_p.shape[0]
        grad = np.exp(log_p)
        grad[np.arange(n), targets] -= 1
        return grad * (g / n), None
        ### END SOLUTION

# %% tests task="cross_entropy" points=3 title="Cross-entropy forward and backward"
z = random_tensor(4, 5, seed=1)
t = np.array([0, 3, 4, 3])
assert_close(CrossEntropy.apply(z, t), F.cross_entropy(z, tl.Tensor(t)), "CrossEntropy.apply(z, t)")
assert tl.gradcheck(lambda z: CrossEntropy.apply(z, t), z)
### BEGIN HIDDEN TESTS
z = random_tensor(6, 3, seed=2, low=-4, high=4)
t = np.array([2, 2, 0, 1, 0, 2])
assert_close(CrossEntropy.apply(z, t), F.cross_entropy(z, tl.Tensor(t)), "CrossEntropy.apply(z, t), N=6")
tl.gradcheck(lambda z: CrossEntropy.apply(z, t), z)
big = tl.Tensor(np.array([[1000.0, 0.0, -1000.0], [0.0, 800.0, 0.0]]), requires_grad=True)
loss = CrossEntropy.apply(big, np.array([2, 1]))
assert_close(loss, 1000.0, "the loss on logits of ±1000 (overflow, or log(0)?)")
loss.backward()
assert_close(big.grad, [[0.5, 0, -0.5], [0, 0, 0]], "the gradient on logits of ±1000")
### END HIDDEN TESTS

# %% [markdown]
# ## Task 3.3: layer norm (4 points)
#
# Over the last axis (D features) of x:
#
#     μ = mean(x),  σ² = mean((x − μ)²),  x̂ = (x − μ) / √(σ² + ε),  y = x̂ ⊙ w + b
#
# with w and b of shape `(D,)`. The gradients of w and b are sums over all rows (every row
# used them): ∂L/∂w = Σ_rows g ⊙ x̂ and ∂L/∂b = Σ_rows g. For x, let ĝ = g ⊙ w (the
# gradient reaching x̂); since μ and σ depend on every element of the row,
#
#     ∂L/∂x = (ĝ − mean(ĝ) − x̂ ⊙ mean(ĝ ⊙ x̂)) / √(σ² + ε)      (means along the last axis)
#
# x may have any number of leading axes, `(..., D)`: `reshape(-1, D)` turns "all rows" into
# axis 0. Save x̂ and 1/√(σ² + ε), not x.

# %% solution
class LayerNorm(tl.Function):
    """y = (x − μ) / √(σ² + ε) ⊙ w + b over the last axis; x (..., D), w (D,), b (D,)."""

    def forward(self, x, weight, bias, eps=1e-5):
        ### BEGIN SOLUTION
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        rstd = 1 / np.sqrt(var + eps)
        xhat = (x - mu) * rstd
        self.save(xhat, rstd, weight)
        return xhat * weight + bias
        ### END SOLUTION

    def backward(self, g):
        ### BEGIN SOLUTION
        xhat, rstd, weight = self.saved
        d = xhat.shape[-1]
        grad_weight = (g * xhat).reshape(-1, d).sum(axis=0)
        grad_bias = g.reshape(-1, d).sum(axis=0)
        gh = g * weight
        grad_x = (gh - gh.mean(axis=-1, keepdims=True)
                  - xhat * (gh * xhat).mean(axis=-1, keepdims=True)) * rstd
        return grad_x, grad_weight, grad_bias
        ### END SOLUTION

# %% tests task="layer_norm" points=4 title="LayerNorm forward and backward"
x, w, b = random_tensor(3, 5, seed=1), random_tensor(5, seed=2), random_tensor(5, seed=3)
assert_close(LayerNorm.apply(x, w, b), F.layer_norm(x, w, b), "LayerNorm.apply(x, w, b)")
assert tl.gradcheck(lambda x, w, b: LayerNorm.apply(x, w, b), x, w, b)
### BEGIN HIDDEN TESTS
x = random_tensor(2, 3, 4, seed=4, low=-3, high=3)
w, b = random_tensor(4, seed=5), random_tensor(4, seed=6)
assert_close(LayerNorm.apply(x, w, b), F.layer_norm(x, w, b), "LayerNorm.apply on a (2, 3, 4) input")
tl.gradcheck(lambda x, w, b: LayerNorm.apply(x, w, b), x, w, b)
assert_close(LayerNorm.apply(x, w, b, eps=0.5), F.layer_norm(x, w, b, eps=0.5), "LayerNorm with eps=0.5")
assert tl.gradcheck(lambda x: LayerNorm.apply(x, w, b, eps=0.5), x)
### END HIDDEN TESTS
