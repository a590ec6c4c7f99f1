# %% [markdown]
# # Assignment 5: a Transformer block, a GPT, and a training step
#
# *Chapters: the Transformer; training.* You assemble GPT-2's architecture from the
# functions of `tinyllm.functional` (`F.layer_norm`, `F.linear`, `F.gelu`,
# `F.scaled_dot_product_attention`, `F.embedding`, `F.cross_entropy`), then write the AdamW
# update that trains it. Autograd does every backward for you; the art is in the shapes.
#
# Parameters are plain dicts of Tensors named as in GPT-2 and nanoGPT, weights in torch's
# `(out, in)` layout, so `F.linear(x, w, b)` computes x wᵀ + b. The helpers below make
# random ones.
#
# Write your code at `# YOUR CODE HERE`, run the file or the notebook, fix the first failing
# test.

# %%
import numpy as np

import tinyllm as tl
import tinyllm.functional as F
from tinyllm.assignments.checks import assert_close, random_generator, random_tensor


def leaf(array):
    """A float64 Tensor that requires gradients (a parameter)."""
    return tl.Tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def init_block(d, rng):
    """Random parameters of one block of width d, named as in GPT-2."""
    def normal(*shape, std=0.3):
        return rng.normal(0.0, std, shape)

    return {
        "ln_1.weight": leaf(1 + normal(d, std=0.1)), "ln_1.bias": leaf(normal(d, std=0.1)),
        "attn.c_attn.weight": leaf(normal(3 * d, d)), "attn.c_attn.bias": leaf(normal(3 * d, std=0.1)),
        "attn.c_proj.weight": leaf(normal(d, d)), "attn.c_proj.bias": leaf(normal(d, std=0.1)),
        "ln_2.weight": leaf(1 + normal(d, std=0.1)), "ln_2.bias": leaf(normal(d, std=0.1)),
        "mlp.c_fc.weight": leaf(normal(4 * d, d)), "mlp.c_fc.bias": leaf(normal(4 * d, std=0.1)),
        "mlp.c_proj.weight": leaf(normal(d, 4 * d)), "mlp.c_proj.bias": leaf(normal(d, std=0.1)),
    }


def init_gpt(vocab_size, block_size, d, n_layers, rng):
    """Random parameters of a GPT: embeddings, blocks, final layer norm. There is no
    separate output layer: it is tied to the token embedding, as in GPT-2."""
    return {"wte": leaf(rng.normal(0.0, 0.5, (vocab_size, d))),
            "wpe": leaf(rng.normal(0.0, 0.5, (block_size, d))),
            "blocks": [init_block(d, rng) for _ in range(n_layers)],
            "ln_f.weight": leaf(np.ones(d)), "ln_f.bias": leaf(np.zeros(d))}


def parameters(params):
    """Every parameter Tensor of a GPT, in a fixed order."""
    out = []
    for key, value in params.items():
        if key == "blocks":
            out += [t for block in value for t in block.values()]
        else:
            out.append(value)
    return out


# %% [markdown]
# ## Task 5.1: a Transformer block (4 points)
#
# GPT-2's block is *pre-norm*: each sublayer reads a normalised copy of the residual
# stream x `(B, T, D)` and adds its result back to it:
#
#     x = x + attention(layer_norm_1(x))       causal multi-head self-attention
#     x = x + mlp(layer_norm_2(x))             mlp(h) = c_proj(gelu(c_fc(h)))
#
# * `layer_norm_1(x) = F.layer_norm(x, p["ln_1.weight"], p["ln_1.bias"])`, same for `ln_2`.
# * attention: Task 4.3's `multi_head_attention` with `p["attn.c_attn.weight"]`,
#   `p["attn.c_attn.bias"]`, `p["attn.c_proj.weight"]`, `p["attn.c_proj.bias"]` (you may
#   paste your code from Assignment 4, with its `F.scaled_dot_product_attention`).
# * mlp: `F.linear` with `mlp.c_fc` (D → 4D), `F.gelu(h, approximate="tanh")` (GPT-2's
#   GELU), `F.linear` with `mlp.c_proj` (4D → D).
#
# The residual connections are what let gradients flow through deep stacks: if both
# sublayers output 0, the block is the identity.

# %% solution
def transformer_block(x, p, n_heads):
    """One pre-norm GPT-2 block: x (B, T, D) → (B, T, D); p: the block's parameters."""
    ### BEGIN SOLUTION
    batch, length, d = x.shape

    def heads(t):
        return t.reshape(batch, length, n_heads, d // n_heads).transpose(0, 2, 1, 3)

    h = F.layer_norm(x, p["ln_1.weight"], p["ln_1.bias"])
    qkv = F.linear(h, p["attn.c_attn.weight"], p["attn.c_attn.bias"])
    q, k, v = heads(qkv[..., :d]), heads(qkv[..., d:2 * d]), heads(qkv[..., 2 * d:])
    att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    att = att.transpose(0, 2, 1, 3).reshape(batch, length, d)
    x = x + F.linear(att, p["attn.c_proj.weight"], p["attn.c_proj.bias"])
    h = F.layer_norm(x, p["ln_2.weight"], p["ln_2.bias"])
    h = F.gelu(F.linear(h, p["mlp.c_fc.weight"], p["mlp.c_fc.bias"]), approximate="tanh")
    return x + F.linear(h, p["mlp.c_proj.weight"], p["mlp.c_proj.bias"])
    ### END SOLUTION

# %% tests task="block" points=4 title="Transformer block" forbid="tinyllm.models tinyllm.nn"
rng = random_generator(0)
p = init_block(8, rng)
x = random_tensor(2, 5, 8, seed=1)
y = transformer_block(x, p, n_heads=2)
assert y.shape == (2, 5, 8), f"the block's output has shape {y.shape}, expected (2, 5, 8)"
# both sublayers silenced: the residual connections make the block the identity
quiet = {**p, **{name: tl.Tensor(np.zeros(p[name].shape)) for name in
                 ("attn.c_proj.weight", "attn.c_proj.bias", "mlp.c_proj.weight", "mlp.c_proj.bias")}}
assert_close(transformer_block(x, quiet, 2), x, "the block with zero output projections (residuals?)")
# causal: positions 0..3 cannot see a change at position 4
x2 = tl.Tensor(np.concatenate([x.numpy()[:, :4], x.numpy()[:, 4:] + 3.0], axis=1))
assert_close(transformer_block(x2, p, 2)[:, :4], y[:, :4], "outputs before a changed token (causal?)")
### BEGIN HIDDEN TESTS
from tinyllm.assignments.references import transformer_block_numpy as reference_block

assert_close(y, reference_block(x.numpy(), p, 2), "the block's output (2 heads)")
assert_close(transformer_block(x, p, 4), reference_block(x.numpy(), p, 4), "the block's output (4 heads)")
small = init_block(4, random_generator(1))
x = random_tensor(1, 3, 4, seed=2)
assert tl.gradcheck(lambda x, w1, w2: transformer_block(x, {**small, "attn.c_attn.weight": w1, "mlp.c_fc.weight": w2}, 2),
                    x, small["attn.c_attn.weight"], small["mlp.c_fc.weight"], projections=3)
### END HIDDEN TESTS

# %% [markdown]
# ## Task 5.2: GPT: from token ids to the loss (3 points)
#
# For token ids `(B, T)` (integers below the vocabulary size V) and targets `(B, T)` (the
# next token at each position):
#
# 1. x = token embedding + position embedding:
#    `F.embedding(ids, params["wte"]) + F.embedding(np.arange(T), params["wpe"])`
#    → `(B, T, D)` (the `(T, D)` positions broadcast over the batch);
# 2. every block in `params["blocks"]` in order: `x = transformer_block(x, p, n_heads)`;
# 3. the final layer norm, `params["ln_f.weight"]` and `params["ln_f.bias"]`;
# 4. logits = x wteᵀ, i.e. `F.linear(x, params["wte"])` → `(B, T, V)`: the output layer
#    is *tied* to the token embedding, as in GPT-2;
# 5. loss = `F.cross_entropy(logits, targets)` (the mean over all B·T positions).
#
# Return `(logits, loss)`. (The grader runs this task with a reference `transformer_block`,
# so a mistake in Task 5.1 does not cost you twice.)

# %% solution
def gpt_loss(params, ids, targets, n_heads):
    """ids, targets (B, T) integer arrays → (logits (B, T, V), mean cross-entropy loss)."""
    ### BEGIN SOLUTION
    length = ids.shape[1]
    x = F.embedding(ids, params["wte"]) + F.embedding(np.arange(length), params["wpe"])
    for p in params["blocks"]:
        x = transformer_block(x, p, n_heads)
    x = F.layer_norm(x, params["ln_f.weight"], params["ln_f.bias"])
    logits = F.linear(x, params["wte"])
    return logits, F.cross_entropy(logits, targets)
    ### END SOLUTION

# %% tests task="gpt" points=3 title="GPT forward and loss" forbid="tinyllm.models tinyllm.nn"
### BEGIN HIDDEN TESTS
from tinyllm.assignments.references import transformer_block  # the reference: Task 5.1 counts once
### END HIDDEN TESTS
rng = random_generator(0)
params = init_gpt(vocab_size=7, block_size=6, d=8, n_layers=2, rng=rng)
ids, targets = rng.integers(0, 7, (2, 5)), rng.integers(0, 7, (2, 5))
logits, loss = gpt_loss(params, ids, targets, n_heads=2)
assert logits.shape == (2, 5, 7), f"the logits have shape {logits.shape}, expected (2, 5, 7)"
assert_close(loss, F.cross_entropy(logits, targets), "the loss of the logits you return")
# causal: the logits before the last position cannot depend on the last token
changed = ids.copy()
changed[:, -1] = (changed[:, -1] + 1) % 7
assert_close(gpt_loss(params, changed, targets, 2)[0][:, :-1], logits[:, :-1], "logits before a changed token")
# tied output layer: a zero token embedding gives logits 0 and a loss of log V
zeroed = {**params, "wte": tl.Tensor(np.zeros((7, 8)))}
assert_close(gpt_loss(zeroed, ids, targets, 2)[1], np.log(7), "the loss when wte is zero (tied output layer?)")
loss.backward()
for name in ("wte", "wpe", "ln_f.weight"):
    assert params[name].grad is not None and np.abs(params[name].grad).sum() > 0, f"no gradient reached {name}"
### BEGIN HIDDEN TESTS
from tinyllm.assignments.references import gpt_logits_numpy

assert_close(logits, gpt_logits_numpy(params, ids, 2), "the logits")
### END HIDDEN TESTS

# %% [markdown]
# ## Task 5.3: an AdamW training step (4 points)
#
# `train_step(loss_fn, params, state, lr, betas, eps, weight_decay)` does one step of
# training on the list of Tensors `params`:
#
# 1. forget the old gradients (`p.grad = None` for each p: `backward` *adds* into `.grad`);
# 2. `loss = loss_fn()` (a scalar Tensor), then `loss.backward()`;
# 3. update each p with AdamW (`state` is a dict you own: it starts empty, keep the step
#    count t and one m and one v array per parameter in it), with g = p.grad:
#
#        t ← t + 1
#        m ← β₁ m + (1 − β₁) g              v ← β₂ v + (1 − β₂) g²        (m, v start at 0)
#        m̂ = m / (1 − β₁ᵗ)                  v̂ = v / (1 − β₂ᵗ)            (bias correction)
#        p ← p · (1 − lr · λ) − lr · m̂ / (√v̂ + ε)                        (λ = weight_decay)
#
#    on the raw arrays (`p.data`), so the update itself is not recorded in any graph.
#    Skip a parameter whose `.grad` is None (the loss does not use it);
# 4. return the loss as a Python float.
#
# The weight decay is *decoupled* (AdamW, not Adam with an L2 term): it shrinks p directly
# instead of passing through m and v. On the first step m̂ = g and v̂ = g², so every
# parameter moves by about lr in the direction of −g, whatever the size of g.

# %% solution
def train_step(loss_fn, params, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    """Zero the gradients, compute loss_fn() and its gradients, apply AdamW; return the loss."""
    ### BEGIN SOLUTION
    for p in params:
        p.grad = None
    loss = loss_fn()
    loss.backward()
    beta1, beta2 = betas
    if not state:
        state.update(step=0, m=[np.zeros_like(p.data) for p in params], v=[np.zeros_like(p.data) for p in params])
    state["step"] += 1
    t = state["step"]
    for p, m, v in zip(params, state["m"], state["v"]):
        if p.grad is None:
            continue
        m *= beta1
        m += (1 - beta1) * p.grad
        v *= beta2
        v += (1 - beta2) * p.grad * p.grad
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        p.data *= 1 - lr * weight_decay
        p.data -= lr * m_hat / (np.sqrt(v_hat) + eps)
    return float(loss.item())
    ### END SOLUTION

# %% tests task="train_step" points=4 title="AdamW training step" inplace="train_step:params,state" forbid="tinyllm.optim tinyllm.kernels"
### BEGIN HIDDEN TESTS
from tinyllm.assignments.references import gpt_loss  # the reference: Tasks 5.1 and 5.2 count once
### END HIDDEN TESTS
c = np.array([[3.0, -0.5], [0.02, -40.0]])
# weight decay alone (a loss with zero gradient) shrinks p by (1 - lr·λ) per step
p = tl.Tensor(np.array([[1.0, -2.0], [3.0, 4.0]]), requires_grad=True)
state = {}
for _ in range(3):
    train_step(lambda: (p * 0.0).sum(), [p], state, lr=0.1, weight_decay=0.5)
assert_close(p, np.array([[1.0, -2.0], [3.0, 4.0]]) * 0.95 ** 3, "p after 3 steps of weight decay alone")
# a constant gradient c: every step moves each parameter by lr against the sign of c
p, state = tl.Tensor(np.zeros((2, 2)), requires_grad=True), {}
loss = train_step(lambda: (p * tl.Tensor(c)).sum(), [p], state, lr=0.01, weight_decay=0.0)
assert_close(p, -0.01 * np.sign(c), "p after one step", atol=1e-7)
assert isinstance(loss, float), f"train_step should return a Python float, got {type(loss).__name__}"
train_step(lambda: (p * tl.Tensor(c)).sum(), [p], state, lr=0.01, weight_decay=0.0)
assert_close(p, -0.02 * np.sign(c), "p after two steps (were the gradients reset?)", atol=1e-7)
### BEGIN HIDDEN TESTS
from tinyllm.assignments.references import adamw_numpy as reference_adamw

start = np.array([0.5, -1.5, 2.0])
p, state, grads = tl.Tensor(start.copy(), requires_grad=True), {}, []
for _ in range(5):
    grads.append(2 * p.numpy() - 1)  # the gradient of Σ (p² − p) at the current p
    train_step(lambda: (p * p - p).sum(), [p], state, lr=0.05, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.1)
assert_close(p, reference_adamw(start, grads, 0.05, (0.8, 0.9), 1e-3, 0.1), "p after 5 AdamW steps")
unused = tl.Tensor(np.ones(2), requires_grad=True)
q = tl.Tensor(np.ones(2), requires_grad=True)
train_step(lambda: (q * q).sum(), [q, unused], {}, lr=0.1)
assert_close(unused, np.ones(2), "a parameter the loss does not use")
### END HIDDEN TESTS
# the real thing: a tiny GPT learns to continue a repeating sequence
rng = np.random.default_rng(0)
params = init_gpt(vocab_size=5, block_size=8, d=16, n_layers=1, rng=rng)
sequence = np.array([[0, 1, 2, 3, 4, 0, 1, 2, 3]] * 2)
ids, targets = sequence[:, :-1], sequence[:, 1:]
state = {}
losses = [train_step(lambda: gpt_loss(params, ids, targets, 2)[1], parameters(params), state, lr=0.02)
          for _ in range(30)]
assert losses[-1] < 0.2 * losses[0], f"the GPT's loss went from {losses[0]:.3f} to {losses[-1]:.3f} in 30 steps"
