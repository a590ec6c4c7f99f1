# %% [markdown]
# # Assignment 4: self-attention, forward, backward, multi-head
#
# *Chapter: attention.* Scaled dot-product attention is the heart of the Transformer:
#
#     Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + M) V
#
# Each of the T queries (rows of Q) scores every key, softmax turns the scores into weights
# that sum to 1, and the output row is the weighted average of the value rows. M is the
# causal mask: 0 where query i may look at key j (j ≤ i), −∞ where it may not (j > i), so a
# token never sees the future. You write attention as one fused op, then the multi-head
# version from library pieces.
#
# Write your code at `# YOUR CODE HERE`, run the file or the notebook, fix the first failing
# test.

# %%
import math

import numpy as np

import tinyllm as tl
import tinyllm.functional as F
from tinyllm.assignments.checks import assert_close, random_tensor

# %% [markdown]
# ## Task 4.1: attention, forward (2 points)
#
# q `(..., T, d)`, k `(..., S, d)`, v `(..., S, d_v)` → `(..., T, d_v)`:
#
#     S = q kᵀ / √d      P = softmax(S + M) along the last axis      O = P v
#
# with `kᵀ = k.swapaxes(-1, -2)`. If `causal`, mask entry (i, j) with j > i:
# `np.triu(np.ones((T, S), dtype=bool), 1)` is True exactly there, and
# `np.where(mask, -np.inf, scores)` applies it (e^(−∞) = 0). Subtract each row's max before
# `exp`, as in Assignment 3. Save what backward needs (Task 4.2), exactly
# `self.save(q, k, v, p, scale)`: the grader runs your backward after a correct forward that
# saves these, in this order, so that a mistake in the forward costs only this task.

# %% [markdown]
# ## Task 4.2: attention, backward (4 points)
#
# Walk the forward backwards, with G = ∂L/∂O:
#
#     ∂L/∂v = Pᵀ G                                  (O = P v, as in MatMul)
#     ∂L/∂P = G vᵀ
#     ∂L/∂S = P ⊙ (∂L/∂P − Σ_j (∂L/∂P)_j P_j)        (softmax's backward, Assignment 3)
#     ∂L/∂q = ∂L/∂S k / √d,    ∂L/∂k = (∂L/∂S)ᵀ q / √d
#
# The mask needs nothing: masked weights are exactly 0, so they pass no gradient. Here
# ᵀ is again `swapaxes(-1, -2)`; batch axes ride along.

# %% solution
class Attention(tl.Function):
    """O = softmax(q kᵀ / √d (+ causal mask)) v;  q (..., T, d), k (..., S, d), v (..., S, d_v)."""

    def forward(self, q, k, v, causal=False):
        ### BEGIN SOLUTION
        scale = 1 / math.sqrt(q.shape[-1])
        scores = (q @ k.swapaxes(-1, -2)) * scale
        if causal:
            mask = np.triu(np.ones(scores.shape[-2:], dtype=bool), 1)
            scores = np.where(mask, -np.inf, scores)
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
        self.save(q, k, v, p, scale)
        return p @ v
        ### END SOLUTION

    def backward(self, g):
        ### BEGIN SOLUTION
        q, k, v, p, scale = self.saved
        grad_v = p.swapaxes(-1, -2) @ g
        grad_p = g @ v.swapaxes(-1, -2)
        grad_s = p * (grad_p - (grad_p * p).sum(axis=-1, keepdims=True))
        grad_q = grad_s @ k * scale
        grad_k = grad_s.swapaxes(-1, -2) @ q * scale
        return grad_q, grad_k, grad_v
        ### END SOLUTION

# %% tests task="attention_forward" points=2 title="Attention forward"
q, k, v = random_tensor(4, 3, seed=1), random_tensor(4, 3, seed=2), random_tensor(4, 2, seed=3)
assert_close(Attention.apply(q, k, v), F.scaled_dot_product_attention(q, k, v), "Attention.apply(q, k, v)")
assert_close(Attention.apply(q, k, v, causal=True), F.scaled_dot_product_attention(q, k, v, is_causal=True),
             "Attention.apply(q, k, v, causal=True)")
### BEGIN HIDDEN TESTS
q, k, v = random_tensor(2, 2, 5, 4, seed=4), random_tensor(2, 2, 5, 4, seed=5), random_tensor(2, 2, 5, 3, seed=6)
assert_close(Attention.apply(q, k, v, causal=True), F.scaled_dot_product_attention(q, k, v, is_causal=True),
             "causal Attention on (batch, heads, T, d) inputs")
q = random_tensor(3, 4, seed=7, low=-30, high=30)
assert_close(Attention.apply(q, q, q), F.scaled_dot_product_attention(q, q, q), "Attention with large scores")
### END HIDDEN TESTS

# %% tests task="attention_backward" points=4 title="Attention backward"
### BEGIN HIDDEN TESTS
from tinyllm.assignments.references import with_reference_forward

Attention = with_reference_forward(Attention)  # graded after a correct forward: Task 4.1 counts once
### END HIDDEN TESTS
q, k, v = random_tensor(4, 3, seed=1), random_tensor(4, 3, seed=2), random_tensor(4, 2, seed=3)
tl.gradcheck(lambda q, k, v: Attention.apply(q, k, v), q, k, v)
assert tl.gradcheck(lambda q, k, v: Attention.apply(q, k, v, causal=True), q, k, v)
### BEGIN HIDDEN TESTS
q, k, v = random_tensor(2, 3, 4, seed=4), random_tensor(2, 5, 4, seed=5), random_tensor(2, 5, 3, seed=6)
tl.gradcheck(lambda q, k, v: Attention.apply(q, k, v), q, k, v)  # T = 3 queries, S = 5 keys
q, k, v = random_tensor(2, 2, 4, 3, seed=7), random_tensor(2, 2, 4, 3, seed=8), random_tensor(2, 2, 4, 3, seed=9)
tl.gradcheck(lambda q, k, v: Attention.apply(q, k, v, causal=True), q, k, v)
x = random_tensor(3, 4, seed=10)
assert tl.gradcheck(lambda x: Attention.apply(x, x, x, causal=True), x)  # self-attention: x used three times
### END HIDDEN TESTS

# %% [markdown]
# ## Task 4.3: multi-head self-attention (3 points)
#
# One attention computes one kind of weighted average. Multi-head attention runs H of them
# side by side on slices of the features. For x of shape `(B, T, D)`, with H heads of size
# D_h = D / H:
#
# 1. `qkv = F.linear(x, w_qkv, b_qkv)` → `(B, T, 3D)` (w_qkv is `(3D, D)`, torch's layout);
#    q, k, v are its three D-wide slices, `qkv[..., :D]` and so on.
# 2. Split each into heads: `(B, T, D)` → `reshape(B, T, H, D_h)` → `transpose(0, 2, 1, 3)`
#    → `(B, H, T, D_h)`. Now each head is a batch item.
# 3. `F.scaled_dot_product_attention(q, k, v, is_causal=True)` → `(B, H, T, D_h)`.
# 4. Merge the heads back: `transpose(0, 2, 1, 3)` → `(B, T, H, D_h)` → `reshape(B, T, D)`.
# 5. `F.linear(merged, w_out, b_out)` mixes the heads (w_out is `(D, D)`).
#
# Stay on Tensors (no `.numpy()`, no `.data`) so that gradients flow to x and the weights.

# %% solution
def multi_head_attention(x, w_qkv, b_qkv, w_out, b_out, n_heads):
    """Causal multi-head self-attention: x (B, T, D) → (B, T, D)."""
    ### BEGIN SOLUTION
    batch, length, d = x.shape
    head = d // n_heads
    qkv = F.linear(x, w_qkv, b_qkv)

    def heads(t):
        return t.reshape(batch, length, n_heads, head).transpose(0, 2, 1, 3)

    q, k, v = heads(qkv[..., :d]), heads(qkv[..., d:2 * d]), heads(qkv[..., 2 * d:])
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    merged = out.transpose(0, 2, 1, 3).reshape(batch, length, d)
    return F.linear(merged, w_out, b_out)
    ### END SOLUTION

# %% tests task="multi_head" points=3 title="Multi-head self-attention" forbid="tinyllm.models tinyllm.nn"
def numpy_softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


x = random_tensor(2, 3, 4, seed=1)
w_qkv, b_qkv = random_tensor(12, 4, seed=2), random_tensor(12, seed=3)
w_out, b_out = random_tensor(4, 4, seed=4), random_tensor(4, seed=5)
y = multi_head_attention(x, w_qkv, b_qkv, w_out, b_out, n_heads=2)
assert y.shape == (2, 3, 4), f"the output has shape {y.shape}, expected (2, 3, 4)"
# with one head, it is plain attention: check against NumPy
qkv = x.numpy() @ w_qkv.numpy().T + b_qkv.numpy()
q, k, v = qkv[..., :4], qkv[..., 4:8], qkv[..., 8:]
mask = np.triu(np.ones((3, 3), dtype=bool), 1)
p = numpy_softmax(np.where(mask, -np.inf, q @ k.swapaxes(-1, -2) / 2.0))
expected = (p @ v) @ w_out.numpy().T + b_out.numpy()
assert_close(multi_head_attention(x, w_qkv, b_qkv, w_out, b_out, n_heads=1), expected, "one head")
# causal: the output at position 0 cannot depend on positions 1 and 2
x2 = tl.Tensor(np.concatenate([x.numpy()[:, :1], 5 + x.numpy()[:, 1:]], axis=1))
assert_close(multi_head_attention(x2, w_qkv, b_qkv, w_out, b_out, 2)[:, 0], y[:, 0],
             "position 0's output after changing later tokens (is it causal?)")
### BEGIN HIDDEN TESTS
from tinyllm.assignments.references import multi_head_attention_numpy as reference

arrays = [t.numpy() for t in (x, w_qkv, b_qkv, w_out, b_out)]
assert_close(y, reference(*arrays, 2), "two heads")
x = random_tensor(1, 5, 6, seed=6)
w_qkv, b_qkv = random_tensor(18, 6, seed=7), random_tensor(18, seed=8)
w_out, b_out = random_tensor(6, 6, seed=9), random_tensor(6, seed=10)
arrays = [t.numpy() for t in (x, w_qkv, b_qkv, w_out, b_out)]
assert_close(multi_head_attention(x, w_qkv, b_qkv, w_out, b_out, 3), reference(*arrays, 3), "three heads")
assert tl.gradcheck(lambda x, w_qkv, w_out: multi_head_attention(x, w_qkv, b_qkv, w_out, b_out, 3),
                    x, w_qkv, w_out, projections=3)
### END HIDDEN TESTS
