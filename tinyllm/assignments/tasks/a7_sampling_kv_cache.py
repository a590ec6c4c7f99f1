# %% [markdown]
# # Assignment 7: sampling and the KV cache
#
# *Chapter: generation.* A trained model gives, for the next token, a vector of logits over
# the vocabulary. Generation turns them into a choice (sampling), appends it, and asks
# again. You write the two classic ways to shape the choice, top-k with temperature and
# nucleus (top-p) sampling, and the KV cache that makes each step cost one token's work
# instead of the whole sequence's.
#
# Write your code at `# YOUR CODE HERE`, run the file or the notebook, fix the first failing
# test.

# %%
import math

import numpy as np

import tinyllm as tl
import tinyllm.functional as F
from tinyllm.assignments.checks import assert_close, assert_equal, random_generator


def numpy_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)

# %% [markdown]
# ## Task 7.1: temperature and top-k (2 points)
#
# `top_k_probs(logits, k, temperature)` turns logits `(V,)` (a NumPy array) into the
# probabilities to sample from:
#
# 1. divide the logits by the temperature T > 0: T < 1 sharpens the distribution
#    (T → 0 is greedy decoding), T > 1 flattens it;
# 2. if k is not None, keep only the k largest logits: set the others to −∞, so that their
#    probability becomes exactly 0 (`np.argsort` or `np.partition` find the k largest);
# 3. softmax (subtract the max first).
#
# Return an array `(V,)` that sums to 1.

# %% solution
def top_k_probs(logits, k=None, temperature=1.0):
    """Sampling probabilities (V,) from logits (V,): temperature, then keep the top k."""
    ### BEGIN SOLUTION
    z = np.asarray(logits, dtype=np.float64) / temperature
    if k is not None and k < z.size:
        kth_largest = np.sort(z)[-k]
        z = np.where(z >= kth_largest, z, -np.inf)
    return numpy_softmax(z)
    ### END SOLUTION

# %% tests task="top_k" points=2 title="Temperature and top-k" forbid="tinyllm.generate"
logits = np.array([1.0, 3.0, 0.5, 2.0, -1.0])
assert_close(top_k_probs(logits), numpy_softmax(logits), "top_k_probs(logits) (k=None, T=1)")
assert_close(top_k_probs(logits, temperature=0.5), numpy_softmax(2 * logits), "top_k_probs(logits, T=0.5)")
expected = np.zeros(5)
expected[[1, 3]] = numpy_softmax(np.array([3.0, 2.0]))
assert_close(top_k_probs(logits, k=2), expected, "top_k_probs(logits, k=2)")
### BEGIN HIDDEN TESTS
expected = np.zeros(5)
expected[[0, 1, 3]] = numpy_softmax(np.array([1.0, 3.0, 2.0]) / 2.0)
assert_close(top_k_probs(logits, k=3, temperature=2.0), expected, "top_k_probs(logits, k=3, T=2)")
assert_close(top_k_probs(logits, k=5), numpy_softmax(logits), "top_k_probs(logits, k=V)")
assert_close(top_k_probs(logits, k=1), [0, 1, 0, 0, 0], "top_k_probs(logits, k=1) (greedy)")
big = np.array([1000.0, 999.0, -1000.0])
assert_close(top_k_probs(big, temperature=0.1), numpy_softmax(np.array([0.0, -10.0, -20000.0])),
             "top_k_probs at T=0.1 on large logits (overflow?)")
### END HIDDEN TESTS

# %% [markdown]
# ## Task 7.2: nucleus (top-p) sampling (3 points)
#
# Top-k keeps a fixed number of tokens, too many when the model is sure and too few when
# it is not. Nucleus sampling (Holtzman et al., 2019) keeps the *smallest set of most
# likely tokens whose probabilities add up to at least p*:
#
# 1. probs = softmax(logits);
# 2. sort the tokens by probability, largest first (`np.argsort(-probs)`), and take the
#    running total (`np.cumsum`);
# 3. keep the first n tokens, n the smallest count whose total is ≥ p (always at least 1);
# 4. renormalise the kept probabilities and draw one token with `rng.choice(tokens, p=...)`.
#
# Example: probabilities (0.5, 0.3, 0.15, 0.05) and p = 0.75: 0.5 < 0.75 ≤ 0.5 + 0.3, so
# tokens 0 and 1 are kept, drawn with probabilities 0.625 and 0.375. Return the token id
# (an int).

# %% solution
def sample_top_p(logits, p, rng):
    """Draw one token id from the nucleus of softmax(logits) (V,) with mass p."""
    ### BEGIN SOLUTION
    probs = numpy_softmax(np.asarray(logits, dtype=np.float64))
    order = np.argsort(-probs, kind="stable")
    total = np.cumsum(probs[order])
    n = min(int(np.searchsorted(total, p)) + 1, probs.size)
    kept = probs[order[:n]]
    return int(rng.choice(order[:n], p=kept / kept.sum()))
    ### END SOLUTION

# %% tests task="top_p" points=3 title="Nucleus sampling" forbid="tinyllm.generate"
def frequencies(logits, p, draws=4000, seed=0):
    rng = np.random.default_rng(seed)
    samples = [sample_top_p(logits, p, rng) for _ in range(draws)]
    assert all(isinstance(s, (int, np.integer)) for s in samples[:5]), "sample_top_p should return an int"
    return np.bincount(samples, minlength=len(logits)) / draws


logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
assert_close(frequencies(logits, 0.75), [0.625, 0.375, 0, 0], "how often each token is drawn with p=0.75",
             atol=0.03)
assert_close(frequencies(logits, 1e-6, draws=50), [1, 0, 0, 0], "draws with a tiny p (always the top token)")
### BEGIN HIDDEN TESTS
assert_close(frequencies(logits, 0.9), np.array([0.5, 0.3, 0.15, 0]) / 0.95, "draws with p=0.9", atol=0.03)
assert_close(frequencies(logits, 1.0), [0.5, 0.3, 0.15, 0.05], "draws with p=1", atol=0.03)
shuffled = np.log(np.array([0.05, 0.15, 0.3, 0.5]))
assert_close(frequencies(shuffled, 0.75), [0, 0, 0.375, 0.625], "draws when the likely tokens come last",
             atol=0.03)
### END HIDDEN TESTS

# %% [markdown]
# ## Task 7.3: one step of attention with a KV cache (4 points)
#
# Generating token t+1 without a cache reruns attention over all t tokens, although the
# keys and values of the first t − 1 have not changed. The KV cache keeps them: each step
# computes q, k, v for the *new* token only, appends k and v to the cache, and lets the new
# query attend to every cached key. Work per step: O(t) instead of O(t²).
#
# `attention_step(x_t, p, cache, n_heads)`: x_t `(B, 1, D)` is the new token's vector
# (runs under `tl.no_grad()`); p holds `c_attn.weight` `(3D, D)`, `c_attn.bias`,
# `c_proj.weight` `(D, D)`, `c_proj.bias`; `cache` is a dict, empty before the first step.
#
# 1. `qkv = F.linear(x_t, p["c_attn.weight"], p["c_attn.bias"])`; split q, k, v as in Task 4.3
#    and into heads: each `(B, H, 1, D_h)`;
# 2. append the new k and v along the time axis: `cache["k"] = tl.concatenate([cache["k"],
#    k], axis=2)` (or just `k` on the first step), the same for v: now `(B, H, t, D_h)`;
# 3. attention of the one query over the t keys: softmax(q Kᵀ / √D_h) V → `(B, H, 1, D_h)`.
#    *No mask*: the newest token may see every position so far, itself included. (Careful:
#    `is_causal=True` would be wrong here, with 1 query and t keys it lets the query see
#    only the first key.)
# 4. merge the heads and apply `c_proj`: return `(B, 1, D)`.
#
# Step by step, the outputs equal those of causal attention over the whole sequence.

# %% solution
def attention_step(x_t, p, cache, n_heads):
    """Causal multi-head self-attention for one new token x_t (B, 1, D), with a KV cache."""
    ### BEGIN SOLUTION
    batch, _, d = x_t.shape
    head = d // n_heads

    def heads(t):
        return t.reshape(batch, 1, n_heads, head).transpose(0, 2, 1, 3)

    qkv = F.linear(x_t, p["c_attn.weight"], p["c_attn.bias"])
    q, k, v = heads(qkv[..., :d]), heads(qkv[..., d:2 * d]), heads(qkv[..., 2 * d:])
    cache["k"] = tl.concatenate([cache["k"], k], axis=2) if "k" in cache else k
    cache["v"] = tl.concatenate([cache["v"], v], axis=2) if "v" in cache else v
    weights = F.softmax(q @ cache["k"].swapaxes(-1, -2) / math.sqrt(head), axis=-1)
    out = (weights @ cache["v"]).transpose(0, 2, 1, 3).reshape(batch, 1, d)
    return F.linear(out, p["c_proj.weight"], p["c_proj.bias"])
    ### END SOLUTION

# %% tests task="kv_cache" points=4 title="Attention step with a KV cache" inplace="attention_step:cache" forbid="tinyllm.models tinyllm.nn"
rng = random_generator(0)
d = 4
p = {"c_attn.weight": tl.Tensor(rng.normal(0, 0.5, (3 * d, d))), "c_attn.bias": tl.Tensor(rng.normal(0, 0.1, 3 * d)),
     "c_proj.weight": tl.Tensor(rng.normal(0, 0.5, (d, d))), "c_proj.bias": tl.Tensor(rng.normal(0, 0.1, d))}
w, b = p["c_attn.weight"].numpy(), p["c_attn.bias"].numpy()
wo, bo = p["c_proj.weight"].numpy(), p["c_proj.bias"].numpy()
x = rng.normal(0, 1, (2, 3, d))  # (B, T, D): 3 tokens
with tl.no_grad():
    cache = {}
    y1 = attention_step(tl.Tensor(x[:, :1]), p, cache, n_heads=1)
    # the first token sees only itself: its weight is 1, the output is its value, projected
    assert_close(y1, (x[:, :1] @ w[2 * d:].T + b[2 * d:]) @ wo.T + bo, "the first step's output")
    assert_equal(tuple(cache["k"].shape), (2, 1, 1, d), "the cached keys' shape after one step (B, H, t, D_h)")
    y2 = attention_step(tl.Tensor(x[:, 1:2]), p, cache, n_heads=1)
    assert_equal(tuple(cache["v"].shape), (2, 1, 2, d), "the cached values' shape after two steps")
    # the second token attends to both: check against NumPy, one head
    qkv = x[:, :2] @ w.T + b
    q, k, v = qkv[:, 1:2, :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
    expected = (numpy_softmax(q @ k.swapaxes(-1, -2) / math.sqrt(d)) @ v) @ wo.T + bo
    assert_close(y2, expected, "the second step's output")
### BEGIN HIDDEN TESTS
from tinyllm.assignments.references import causal_attention_numpy

x = rng.normal(0, 1, (2, 5, d))
with tl.no_grad():
    for n_heads in (1, 2, 4):
        cache = {}
        steps = [attention_step(tl.Tensor(x[:, t:t + 1]), p, cache, n_heads).numpy() for t in range(5)]
        assert_close(np.concatenate(steps, axis=1), causal_attention_numpy(x, p, n_heads),
                     f"5 steps with {n_heads} heads against attention over the whole sequence")
        assert_equal(tuple(cache["k"].shape), (2, n_heads, 5, d // n_heads),
                     f"the cached keys' shape ({n_heads} heads)")
### END HIDDEN TESTS
