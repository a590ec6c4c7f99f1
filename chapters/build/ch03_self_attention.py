"""Build chapters/03_self_attention.ipynb: write the cells, run them all (full mode), save
the notebook with its outputs.

    python chapters/build/ch03_self_attention.py            # build and execute (< 1 min)
    python chapters/build/ch03_self_attention.py --fast     # TINYLLM_FAST=1, written to /tmp
    python chapters/build/ch03_self_attention.py --no-execute  # write the cells only
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Notebook  # noqa: E402

nb = Notebook()
md, code = nb.md, nb.code

# ============================================================================ title
md(r"""
# 3 · 核心算法原理具体操作步骤 — Self-attention, step by step

> *Seed §3.1.* **Transformer 模型的核心是自注意力机制，它允许模型在处理每个词时关注输入序列中的其他词，从而更好地理解上下文信息。**
> (The core of the Transformer is the self-attention mechanism: while processing each word the
> model can attend to the other words of the input, and so understand the context better.)
>
> *Seed §3.2.* **LLMs 通常使用反向传播算法进行训练 … 常见的损失函数包括交叉熵损失函数和均方误差损失函数。**
> (LLMs are trained with backpropagation … common losses are cross-entropy and mean squared error.)

The seed lists self-attention as four steps. We do each step by hand on four tokens — small
enough to check every number with pencil and paper — and then let the library do the same.

**What you will build**

1. The seed's four steps — **Q, K, V** (查询、键、值); **scores** (注意力分数); **softmax
   weights** (注意力权重); **weighted sum** (加权求和) — by hand, then with
   `F.attention`, with a heatmap of the weights.
2. **Masks**: the causal mask of a decoder and the padding mask of a batch, each checked by
   experiment.
3. **Multi-head attention**: `nn.MultiheadAttention` taken apart and rebuilt from its weights.
4. **The training algorithm** (§3.2): cross-entropy and mean squared error by hand against
   the library, their gradients, and two small trainings — a line fitted with MSE, and a
   single attention layer that learns to *reverse* a sequence with cross-entropy (you will
   watch its attention map turn into an anti-diagonal).

*Run time:* well under a minute on 2 CPU cores (a few seconds with `TINYLLM_FAST=1`).
""")

code(r"""
import os, sys, time, math
FAST = os.environ.get("TINYLLM_FAST") == "1"   # CI sets this: fewer steps, same cells
# The matrices here are tiny: one BLAS thread is as fast as several, and many times faster
# on a busy shared machine. (Read when NumPy loads, so it must come first; set the
# variables yourself to override.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1"); os.environ.setdefault("OMP_NUM_THREADS", "1")
try:
    import tinyllm
except ImportError:                            # run from chapters/ without the repo on the path
    sys.path.insert(0, os.path.abspath(".."))
    import tinyllm

import numpy as np
import matplotlib.pyplot as plt
%matplotlib inline
plt.rcParams.update({"figure.dpi": 85, "font.size": 9})
np.set_printoptions(precision=3, suppress=True)

import tinyllm as tl
import tinyllm.nn as nn
import tinyllm.functional as F

tl.manual_seed(0)
print(f"tinyllm {tl.__version__} · numpy {np.__version__} · FAST={FAST}")
""")

code(r"""
def show_weights(ax, w, cols, rows, title="", vmax=1.0, fmt="{:.2f}"):
    # a heatmap of attention weights, rows = queries, columns = keys, numbers written in
    ax.imshow(w, cmap="Blues", vmin=0, vmax=vmax)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            ax.text(j, i, fmt.format(w[i, j]), ha="center", va="center", fontsize=7.5,
                    color="white" if w[i, j] > 0.6 * vmax else "black")
    ax.set_xticks(range(len(cols)), cols); ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("key (attended to)"); ax.set_ylabel("query (attending)"); ax.set_title(title, fontsize=9)
""")

# ============================================================================ 3.1
md(r"""
## 3.1 Transformer 架构 — The four steps of self-attention

> **自注意力机制的计算过程如下：**
> 1. **计算查询、键和值向量：** 对于输入序列中的每个词，计算其对应的查询向量（Q）、键向量（K）和值向量（V）。
> 2. **计算注意力分数：** 将查询向量与每个键向量进行点积，得到注意力分数。
> 3. **计算注意力权重：** 对注意力分数进行 softmax 操作，得到注意力权重。
> 4. **加权求和：** 将注意力权重与值向量进行加权求和，得到最终的输出向量。

### The tiny example

Four tokens, each already turned into a vector of 4 numbers (an *embedding*; in a real
model it is learned, here we write it down). Three weight matrices of shape $4 \times 3$
project each embedding to a query, a key and a value of size $d_k = d_v = 3$. All entries
are small integers so that you can redo every step on paper.
""")

code(r"""
tokens = ["tiny", "models", "learn", "fast"]
X = np.array([[1, 0, 1, 0],      # "tiny"     one row per token: its embedding x_i (d_model = 4)
              [0, 1, 0, 1],      # "models"
              [1, 1, 0, 0],      # "learn"
              [0, 0, 1, 1]],     # "fast"
             dtype=np.float64)
W_Q = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=np.float64)   # (d_model, d_k)
W_K = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 1]], dtype=np.float64)   # (d_model, d_k)
W_V = np.array([[1, 0, 0], [0, 2, 0], [0, 0, 3], [1, 1, 1]], dtype=np.float64)   # (d_model, d_v)
print("X =\n", X)
""")

md(r"""
### Step 1 · 计算查询、键和值向量 — queries, keys and values

Every token $i$ gets three vectors, by three matrix products with its embedding $x_i$:

$$ q_i = x_i W^Q, \qquad k_i = x_i W^K, \qquad v_i = x_i W^V \qquad\Longleftrightarrow\qquad Q = X W^Q,\; K = X W^K,\; V = X W^V $$

The **query** says what token $i$ is looking for, the **key** what token $j$ offers to be
found by, the **value** what token $j$ hands over once found. In *self*-attention all three
come from the same sequence $X$.
""")

code(r"""
def dot_str(a, b):        # "1·0 + 0·1 + 2·1" : a dot product written out
    return " + ".join(f"{x:g}·{y:g}" for x, y in zip(a, b))

q0 = X[0] @ W_Q
print(f"by hand, q_0 = x_0 W^Q: column by column")
for c in range(3):
    print(f"   q_0[{c}] = {dot_str(X[0], W_Q[:, c])} = {q0[c]:g}")

Q, K, V = X @ W_Q, X @ W_K, X @ W_V          # all tokens at once: (4, 3) each
for name, M in (("Q", Q), ("K", K), ("V", V)):
    print(f"{name} =", M.tolist())
""")

md(r"""
### Step 2 · 计算注意力分数 — scores

"将查询向量与每个键向量进行点积": the score of query $i$ against key $j$ is their dot product;
all of them at once are one matrix product:

$$ s_{ij} = q_i \cdot k_j = \sum_{c=1}^{d_k} q_{ic}\, k_{jc} \qquad\Longleftrightarrow\qquad S = Q K^\top \quad (4 \times 4) $$

A large score means "key $j$ matches what query $i$ looks for".
""")

code(r"""
print(f"scores of the query of {tokens[0]!r} against every key:")
for j in range(4):
    print(f"   s_0{j} = q_0 · k_{j} = {dot_str(Q[0], K[j])} = {Q[0] @ K[j]:g}     ({tokens[j]!r})")
S = Q @ K.T
print("S = Q Kᵀ =\n", S)
""")

md(r"""
### Step 3 · 计算注意力权重 — softmax weights

"对注意力分数进行 softmax 操作": along each row, exponentiate and normalise, so every query's
weights are positive and sum to 1:

$$ a_{ij} = \mathrm{softmax}(s_i)_j = \frac{e^{s_{ij}}}{\sum_{l} e^{s_{il}}} $$
""")

code(r"""
e = np.exp(S[0])
print(f"row 0: exp(scores) = {np.round(e, 3)}, their sum = {e.sum():.3f}")
print(f"       weights a_0 = exp / sum = {np.round(e / e.sum(), 3)}  (sum = {(e / e.sum()).sum():g})")

def softmax_rows(M):
    M = M - M.max(axis=1, keepdims=True)      # the same result, and no overflow for big scores
    E = np.exp(M)
    return E / E.sum(axis=1, keepdims=True)

A = softmax_rows(S)
print("A = softmax(S) =\n", A, "\nrow sums:", A.sum(axis=1))
""")

md(r"""
### Step 4 · 加权求和 — the weighted sum

"将注意力权重与值向量进行加权求和": the output for token $i$ is the average of all value
vectors, weighted by how much $i$ attends to each:

$$ z_i = \sum_j a_{ij}\, v_j \qquad\Longleftrightarrow\qquad Z = A V \quad (4 \times 3) $$
""")

code(r"""
terms = " + ".join(f"{A[0, j]:.3f}·{V[j].tolist()}" for j in range(4))
print(f"z_0 = {terms}\n    = {np.round(A[0] @ V, 3)}")
Z = A @ V
print("Z = A V =\n", Z)
""")

md(r"""
The first column of $V$ is 1 for every token, so the first column of $Z$ is
$\sum_j a_{ij} \cdot 1 = 1$: a check that the weights of each row sum to one. Token "tiny"
(row 0) attends most to "models" (weight 0.53), so its output is mostly "models"'s value.

### The same with the library

All four steps are one call: `F.attention(q, k, v)` returns the output and the weights
(`F.scaled_dot_product_attention` only the output). The library divides the scores by
$\sqrt{d_k}$ by default — the formula of the seed's §4.1, explained in chapter 4 — so to
reproduce the seed's four steps exactly we pass `scale=1.0`:
""")

code(r"""
q, k, v = tl.Tensor(Q), tl.Tensor(K), tl.Tensor(V)          # float64 tensors
out, weights = F.attention(q, k, v, scale=1.0)
print("library output == our Z:      ", np.allclose(out.numpy(), Z))
print("library weights == our A:     ", np.allclose(weights.numpy(), A))

out_scaled, weights_scaled = F.attention(q, k, v)          # default: scale = 1/√d_k
A_scaled = softmax_rows(S / math.sqrt(3))
print("with scale 1/√3 == our steps: ", np.allclose(weights_scaled.numpy(), A_scaled))

fig, axes = plt.subplots(1, 2, figsize=(8, 3.3))
show_weights(axes[0], A, tokens, tokens, "softmax(QKᵀ): the seed's four steps")
show_weights(axes[1], A_scaled, tokens, tokens, "softmax(QKᵀ/√d_k): §4.1's formula")
plt.tight_layout(); plt.show()
""")

md(r"""
Dividing by $\sqrt{d_k}$ makes every row flatter (the largest weight of "fast" drops from
0.64 to 0.49). With $d_k = 3$ that is a small effect; with the $d_k = 64$ or $128$ of real
models it decides whether training works at all — chapter 4 measures it.

### What self-attention does *not* see: order

Shuffle the tokens, and the outputs are shuffled the same way — nothing else changes.
Self-attention treats its input as a *set*. This is why every Transformer adds position
information to the embeddings (sinusoidal tables, or learned position vectors as in GPT).
""")

code(r"""
perm = [2, 0, 3, 1]                                         # a new order of the four tokens
Xp = X[perm]
Zp = softmax_rows((Xp @ W_Q) @ (Xp @ W_K).T) @ (Xp @ W_V)
print("new order:", [tokens[i] for i in perm])
print("outputs of the shuffled input == shuffled outputs:", np.allclose(Zp, Z[perm]))
""")

# ============================================================================ masks
md(r"""
## Masks: who may attend to whom

A mask removes some (query, key) pairs *before* the softmax by adding $-\infty$ to their
scores: $e^{-\infty} = 0$, so they get weight exactly 0 and the remaining weights still sum
to 1:

$$ A = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + M\right), \qquad M_{ij} = \begin{cases} 0 & \text{allowed} \\ -\infty & \text{masked} \end{cases} $$

In tinyllm (as in PyTorch) a mask is either that float matrix, or a boolean matrix. Mind
which way round a boolean mask reads: `F.scaled_dot_product_attention` and `F.attention`
(as `torch.nn.functional.scaled_dot_product_attention`) take **True = may attend**, while
`nn.MultiheadAttention` and the Transformer layers (as their torch namesakes) take
**True = masked out**, the way padding masks are usually written.

### The causal mask

A decoder that learns to predict token $t+1$ must not see it. The causal mask allows
$j \le i$ only — the upper triangle is $-\infty$:
""")

code(r"""
L = len(tokens)
M = np.where(np.triu(np.ones((L, L), dtype=bool), k=1), -np.inf, 0.0)    # −inf above the diagonal
print("M =\n", M)
A_causal = softmax_rows(S / math.sqrt(3) + M)
_, w_lib = F.attention(q, k, v, is_causal=True)
print("by hand == F.attention(..., is_causal=True):", np.allclose(A_causal, w_lib.numpy()))

fig, ax = plt.subplots(figsize=(4, 3.3))
show_weights(ax, A_causal, tokens, tokens, "causal self-attention"); plt.tight_layout(); plt.show()
""")

md(r"""
The proof that no information flows backwards: change the **last** token's embedding, and
every output but the last stays exactly the same.
""")

code(r"""
X_changed = X.copy(); X_changed[3] = [5, -2, 0, 7]               # a completely different last token
def causal_attention(Xin):
    t = [tl.Tensor(Xin @ W) for W in (W_Q, W_K, W_V)]
    return F.scaled_dot_product_attention(*t, is_causal=True).numpy()
moved = np.abs(causal_attention(X_changed) - causal_attention(X)).max(axis=1)
print("largest change of each output row:", moved)
""")

md(r"""
### The padding mask

Sentences in a batch have different lengths; the short ones are filled up with a `<pad>`
token to make a rectangle. Padding must not be attended to: a **key padding mask** of shape
(batch, S), True at the pads, masks those *columns* for every query. Here sentence 1 is
"learn fast" padded to length 4:
""")

code(r"""
pad_vec = np.zeros(4)                                       # the <pad> embedding (any vector)
batch_X = np.stack([X, np.stack([X[2], X[3], pad_vec, pad_vec])])      # (batch=2, L=4, d_model=4)
key_padding = np.array([[False, False, False, False],
                        [False, False, True, True]])       # (batch, S): True at padding
qb, kb, vb = (tl.Tensor(batch_X @ W) for W in (W_Q, W_K, W_V))

_, w_nomask = F.attention(qb, kb, vb)
# F.attention's boolean mask says where a query *may* look: not at the pads
out_pad, w_pad = F.attention(qb, kb, vb, attn_mask=~key_padding[:, None, :])   # (B, 1, S) → every query row

# the short sentence on its own, without any padding:
alone = F.scaled_dot_product_attention(*(tl.Tensor(batch_X[1, :2] @ W) for W in (W_Q, W_K, W_V)))
print("padded + masked == unpadded, at the real positions:", np.allclose(out_pad.numpy()[1, :2], alone.numpy()))
print("without the mask they differ by up to", np.abs(F.attention(qb, kb, vb)[0].numpy()[1, :2] - alone.numpy()).max().round(3))

labels = ["learn", "fast", "<pad>", "<pad>"]
fig, axes = plt.subplots(1, 2, figsize=(8, 3.3))
show_weights(axes[0], w_nomask.numpy()[1], labels, labels, "no mask: the pads steal weight")
show_weights(axes[1], w_pad.numpy()[1], labels, labels, "key padding mask")
plt.tight_layout(); plt.show()
""")

md(r"""
The rows of the `<pad>` *queries* still hold weights: their outputs are computed and then
ignored (the loss skips padding positions with `ignore_index`). A decoder on a padded batch
uses both masks; they combine by "and" (a pair is visible only where both allow it):
""")

code(r"""
both = ~key_padding[:, None, :] & np.tril(np.ones((L, L), dtype=bool))   # (B, L, S), True = may attend
_, w_both = F.attention(qb, kb, vb, attn_mask=both)
print("sentence 1, causal + padding:\n", w_both.numpy()[1])

# a query that may see no key at all (a fully masked row): softmax of all −inf is 0/0
nothing = np.zeros((1, L, L), dtype=bool)
out_none, w_none = F.attention(q[None], k[None], v[None], attn_mask=nothing)
print("fully masked rows → weights", w_none.numpy()[0, 0], "and output", out_none.numpy()[0, 0],
      "(tinyllm gives 0 where PyTorch gives nan)")
""")

# ============================================================================ multi-head
md(r"""
## Multi-head attention

One attention computes one weighting of the tokens. A Transformer runs $h$ of them side by
side — **heads** — each with its own projections of size $d_k = d_{\text{model}}/h$, and mixes
their outputs with one more matrix $W^O$:

$$
\mathrm{head}_i = \mathrm{softmax}\!\left(\frac{(XW^Q_i)(XW^K_i)^\top}{\sqrt{d_k}}\right) XW^V_i, \qquad
\mathrm{MultiHead}(X) = \big[\mathrm{head}_1, \dots, \mathrm{head}_h\big]\, W^O
$$

`nn.MultiheadAttention` stores the three projections of all heads stacked in one matrix
`in_proj_weight` $(3d_{\text{model}}, d_{\text{model}})$ (PyTorch's layout: $y = xW^\top + b$)
and $W^O$ in `out_proj`. We take it apart and rebuild its output by hand:
""")

code(r"""
tl.manual_seed(0)
d_model, n_heads = 8, 2
mha = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
words = ["the", "cat", "sat", "on", "mats"]
x_in = tl.randn(1, len(words), d_model)                      # (batch, L, d_model)
out_lib, w_heads = mha(x_in, x_in, x_in, average_attn_weights=False)   # w_heads: (batch, h, L, L)

W, b = mha.in_proj_weight.numpy(), mha.in_proj_bias.numpy()
Wq, Wk, Wv = W[:d_model], W[d_model:2 * d_model], W[2 * d_model:]
bq, bk, bv = b[:d_model], b[d_model:2 * d_model], b[2 * d_model:]
xn = x_in.numpy()[0]                                        # (L, d_model)
Qm, Km, Vm = xn @ Wq.T + bq, xn @ Wk.T + bk, xn @ Wv.T + bv   # (L, d_model) each
d_k = d_model // n_heads
heads, head_weights = [], []
for h in range(n_heads):
    cols = slice(h * d_k, (h + 1) * d_k)                  # head h owns d_k of the columns
    A_h = softmax_rows(Qm[:, cols] @ Km[:, cols].T / math.sqrt(d_k))
    heads.append(A_h @ Vm[:, cols]); head_weights.append(A_h)
concat = np.concatenate(heads, axis=1)                    # (L, h·d_k) = (L, d_model)
out_hand = concat @ mha.out_proj.weight.numpy().T + mha.out_proj.bias.numpy()

print("rebuilt output == nn.MultiheadAttention:", np.allclose(out_hand, out_lib.numpy()[0], atol=1e-5))
print("rebuilt weights == its per-head weights:", np.allclose(np.stack(head_weights), w_heads.numpy()[0], atol=1e-5))
print("parameters:", mha.num_parameters(), "= 4·d_model² + 4·d_model =", 4 * d_model ** 2 + 4 * d_model,
      "(the same for any number of heads)")

fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.4))
for h in range(n_heads):
    show_weights(axes[h], w_heads.numpy()[0, h], words, words, f"head {h}")
plt.tight_layout(); plt.show()
""")

md(r"""
Even untrained, the two heads weigh the tokens differently: they look at different
$d_k$-dimensional projections of the same tokens. Training gives each head a job (one might
look at the previous token, another at the subject of the sentence); splitting costs no
parameters, since $h$ heads of width $d_{\text{model}}/h$ have the same matrices as one head
of width $d_{\text{model}}$.
""")

# ============================================================================ 3.2
md(r"""
## 3.2 训练算法 — The training algorithm

> **LLMs 通常使用反向传播算法进行训练，该算法通过计算损失函数的梯度来更新模型参数。常见的损失函数包括交叉熵损失函数和均方误差损失函数。**
> (Backpropagation computes the gradient of a loss function and uses it to update the
> parameters. Common losses: cross-entropy (交叉熵) and mean squared error (均方误差).)

Training repeats: compute the loss $\mathcal L(\theta)$ on a batch (**forward**), compute its
gradient $\nabla_\theta \mathcal L$ by backpropagation (**backward**, chapter 4 derives it),
and step downhill (**update**):

$$ \theta \leftarrow \theta - \eta\, \nabla_\theta \mathcal L(\theta) $$

with learning rate $\eta$ (Adam and AdamW rescale this step per parameter, but the idea is
the same). The loss says what "good" means. Two losses cover most cases.

### Cross-entropy (交叉熵) — for choosing a class, e.g. the next token

For $N$ examples with logits $z_n \in \mathbb R^C$ and correct classes $t_n$:

$$ \mathcal L_{\mathrm{CE}} = -\frac1N \sum_{n=1}^{N} \log \mathrm{softmax}(z_n)_{t_n}, \qquad
\frac{\partial \mathcal L_{\mathrm{CE}}}{\partial z_n} = \frac{1}{N}\big(\mathrm{softmax}(z_n) - \mathrm{onehot}(t_n)\big) $$

The gradient is beautifully simple: predicted probabilities minus the truth.
""")

code(r"""
logits_np = np.array([[2.0, 1.0, 0.1, -1.0],      # N = 3 examples, C = 4 classes
                      [0.5, 2.5, 0.3, 0.0],
                      [1.0, 1.0, 1.0, 1.0]])
targets = np.array([0, 1, 3])

P = softmax_rows(logits_np)
ce_hand = -np.log(P[np.arange(3), targets]).mean()
grad_hand = (P - np.eye(4)[targets]) / 3

z = tl.Tensor(logits_np, requires_grad=True)
ce = F.cross_entropy(z, tl.Tensor(targets))
ce.backward()
print(f"cross-entropy by hand {ce_hand:.6f}, library {ce.item():.6f}")
print("gradient by hand == library z.grad:", np.allclose(grad_hand, z.grad))
print("z.grad =\n", z.grad)
""")

md(r"""
### Mean squared error (均方误差) — for predicting numbers

For predictions $\hat y_n$ and targets $y_n$:

$$ \mathcal L_{\mathrm{MSE}} = \frac1N \sum_{n=1}^{N} (\hat y_n - y_n)^2, \qquad
\frac{\partial \mathcal L_{\mathrm{MSE}}}{\partial \hat y_n} = \frac{2}{N}(\hat y_n - y_n) $$
""")

code(r"""
pred_np, target_np = np.array([2.5, 0.0, -1.0, 4.0]), np.array([3.0, -0.5, -1.0, 2.0])
mse_hand = ((pred_np - target_np) ** 2).mean()
y_hat = tl.Tensor(pred_np, requires_grad=True)
mse = F.mse_loss(y_hat, tl.Tensor(target_np))
mse.backward()
print(f"MSE by hand {mse_hand:.4f}, library {mse.item():.4f}")
print("gradient by hand", 2 * (pred_np - target_np) / 4, "== library", y_hat.grad)
""")

md(r"""
**Why language models use cross-entropy, not MSE.** Suppose the model gives the correct token
probability $p$. Cross-entropy charges $-\log p$; the squared error against the one-hot
target, summed over two classes, charges $(1-p)^2 + (0-(1-p))^2 = 2(1-p)^2$. Near $p=0$ — a confident mistake — cross-entropy goes to infinity and
its gradient stays large, while MSE stays bounded and its gradient through the softmax
*vanishes*: the model barely learns from its worst errors.
""")

code(r"""
p = np.linspace(0.005, 0.995, 200)
# two classes, logits (l, 0): p = σ(l); gradients with respect to the logit l
ce_curve, mse_curve = -np.log(p), 2 * (1 - p) ** 2
ce_grad, mse_grad = -(1 - p), -4 * (1 - p) * p * (1 - p)
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].plot(p, ce_curve, label="cross-entropy −log p"); axes[0].plot(p, mse_curve, label="MSE 2(1−p)²")
axes[0].set_xlabel("probability of the correct class p"); axes[0].set_ylabel("loss"); axes[0].legend()
axes[1].plot(p, np.abs(ce_grad), label="cross-entropy"); axes[1].plot(p, np.abs(mse_grad), label="MSE")
axes[1].set_xlabel("p"); axes[1].set_ylabel("|∂loss/∂logit|"); axes[1].legend()
axes[1].set_title("gradient reaching the logit"); plt.tight_layout(); plt.show()
""")

md(r"""
### Training with MSE: fitting a line

The whole algorithm fits in a loop of five lines. Data from $y = 3x - 1$ plus noise, a model
$\hat y = wx + b$ (`nn.Linear(1, 1)`), MSE loss, and plain gradient descent written out —
no optimizer object:
""")

code(r"""
rng = np.random.default_rng(0)
x_data = rng.uniform(-2, 2, size=(64, 1))
y_data = 3 * x_data - 1 + 0.3 * rng.standard_normal((64, 1))
xs, ys = tl.Tensor(x_data), tl.Tensor(y_data)

tl.manual_seed(0)
line = nn.Linear(1, 1, dtype=np.float64)
lr, mse_history = 0.1, []
for step in range(20 if FAST else 60):
    loss = F.mse_loss(line(xs), ys)            # forward
    line.zero_grad()
    loss.backward()                            # backward: ∂L/∂w, ∂L/∂b
    for param in line.parameters():            # update: θ ← θ − η ∂L/∂θ
        param.data -= lr * param.grad
    mse_history.append(loss.item())
w_fit, b_fit = line.weight.numpy().item(), line.bias.numpy().item()
print(f"learned w = {w_fit:.3f}, b = {b_fit:.3f}   (true: 3, −1);  final MSE {mse_history[-1]:.4f}")

fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].semilogy(mse_history); axes[0].set_xlabel("step"); axes[0].set_ylabel("MSE (log scale)")
axes[1].scatter(x_data, y_data, s=8, alpha=0.6, label="data")
grid = np.linspace(-2, 2, 2)
axes[1].plot(grid, w_fit * grid + b_fit, "r", label=f"ŷ = {w_fit:.2f}x {b_fit:+.2f}"); axes[1].legend()
plt.tight_layout(); plt.show()
""")

md(r"""
### Training with cross-entropy: attention learns to reverse a sequence

Now the two halves of this chapter meet. The task: read 8 digits, output them in reverse
order. Position $i$ must copy the token at position $7 - i$ — a pure "where to look"
problem, exactly what attention is for. The model is as small as it can be:

$$ h = \mathrm{Emb}_{\text{token}}(x) + \mathrm{Emb}_{\text{position}}, \qquad
\text{logits} = \mathrm{MultiHeadAttention}(h, h, h)\, W_{\text{out}} $$

(one head, width 32, no feed-forward, no layer norm; the position embedding is essential,
as we saw: attention alone cannot tell positions apart). Cross-entropy on every position,
Adam.
""")

code(r"""
SEQ, DIGITS, WIDTH = 8, 10, 32

class Reverser(nn.Module):
    def __init__(self, num_heads=1):
        super().__init__()
        self.token = nn.Embedding(DIGITS, WIDTH)
        self.position = nn.Embedding(SEQ, WIDTH)
        self.attn = nn.MultiheadAttention(WIDTH, num_heads, batch_first=True)
        self.out = nn.Linear(WIDTH, DIGITS)

    def forward(self, ids, is_causal=False):
        h = self.token(ids) + self.position(tl.arange(ids.shape[1]))
        mixed, weights = self.attn(h, h, h, is_causal=is_causal)
        return self.out(mixed), weights                 # (B, L, DIGITS), (B, L, L)

def make_batch(rng, n=64):
    x = rng.integers(0, DIGITS, size=(n, SEQ))
    return x, x[:, ::-1].copy()                          # target: the input reversed

def cross_entropy_loss(logits, y):
    return F.cross_entropy(logits, tl.Tensor(y))

def train_reverser(steps, model, is_causal=False, seed=0, snapshots=(), loss_fn=cross_entropy_loss):
    rng, probe = np.random.default_rng(seed), np.random.default_rng(99).integers(0, DIGITS, (1, SEQ))
    optimizer = tl.optim.Adam(model.parameters(), lr=3e-3)
    log, maps = {"loss": [], "accuracy": []}, {}
    for step in range(steps + 1):
        if step in snapshots:
            with tl.no_grad():
                maps[step] = model(tl.Tensor(probe), is_causal)[1].numpy()[0]
        if step == steps:
            break
        x, y = make_batch(rng)
        logits, _ = model(tl.Tensor(x), is_causal)
        loss = loss_fn(logits, y)                       # forward
        optimizer.zero_grad()
        loss.backward()                                 # backward
        optimizer.step()                                # update
        log["loss"].append(loss.item())
        log["accuracy"].append(float((logits.numpy().argmax(-1) == y).mean()))
    return log, maps, probe

rev_steps = 40 if FAST else 150
snap_steps = (0, 10, 25, rev_steps)
tl.manual_seed(0)
t0 = time.perf_counter()
reverser = Reverser()
rev_log, rev_maps, probe = train_reverser(rev_steps, reverser, snapshots=snap_steps)
print(f"{rev_steps} steps in {time.perf_counter() - t0:.1f} s: loss {rev_log['loss'][0]:.3f} → "
      f"{rev_log['loss'][-1]:.4f}, accuracy {rev_log['accuracy'][0]:.2f} → {rev_log['accuracy'][-1]:.3f}")
with tl.no_grad():
    answer = reverser(tl.Tensor(probe))[0].numpy().argmax(-1)
print("input   ", probe[0], "\nreversed", answer[0])
""")

code(r"""
fig, axes = plt.subplots(1, len(snap_steps) + 1, figsize=(13, 2.9))
axes[0].plot(rev_log["loss"], label="loss"); axes[0].plot(rev_log["accuracy"], label="accuracy")
axes[0].set_xlabel("step"); axes[0].legend(); axes[0].set_title("cross-entropy training")
digits = [str(d) for d in probe[0]]
for ax, s in zip(axes[1:], snap_steps):
    ax.imshow(rev_maps[s], cmap="Blues", vmin=0, vmax=1)
    ax.set_title(f"attention at step {s}", fontsize=9)
    ax.set_xticks(range(SEQ), digits); ax.set_yticks(range(SEQ), range(SEQ))
    ax.set_xlabel("key (input digit)"); ax.set_ylabel("output position")
plt.tight_layout(); plt.show()
""")

md(r"""
At step 0 the weights are spread out: every output is a blur of many inputs. Gradient
descent on the cross-entropy then moves the query and key projections until output position
$i$ puts almost all its weight on input position $7-i$ — the anti-diagonal. Nobody told the
model *where* to look; the gradient of the loss did.

## Try it

1. **Change a projection.** In the tiny example set `W_Q[0] = [0, 0, 3]` and rerun steps
   1–4. *Expected:* the queries of "tiny" and "learn" (the tokens with $x_{i0} = 1$) now
   point along the keys' third component, so both attend almost only to "fast" (weights
   ≈ 0.93 and 0.91), whose key $[0, 1, 2]$ has the largest third component; the rows of
   "models" and "fast" do not change.
2. **Reverse without positions.** In `Reverser.forward` drop `+ self.position(...)` and
   train. *Expected:* accuracy stalls near 0.3: an output can depend on its own digit and on
   the *set* of digits (the shuffle experiment above), never on where they are, so it can
   only guess which digit belongs at its position.
3. **Reverse with a causal mask.** `train_reverser(300, Reverser(), is_causal=True)`.
   *Expected:* accuracy plateaus near 0.55: positions 4–7 find their source (it lies in the
   past), positions 0–3 cannot — the input they need is in the future. This is what the
   causal mask guarantees.
4. **MSE for classification.** Train with
   `loss_fn=lambda logits, y: F.mse_loss(F.softmax(logits, axis=-1), tl.Tensor(np.eye(DIGITS)[y]))`.
   *Expected:* on this easy task, from the default initialisation, it learns as fast as
   cross-entropy. Now start *confidently wrong*: multiply the output layer by 30
   (`model.out.weight.data *= 30`) before training, once with each loss. Cross-entropy still
   reaches accuracy ≈ 1.0 within about 60 steps; MSE stalls near 0.8 for hundreds of steps —
   the vanishing gradient of the plot above.
5. **More heads.** `Reverser(num_heads=2)`, and plot both heads' maps
   (`model.attn.attention_weights`, shape (B, h, L, L), after a forward). *Expected:* the
   task is solved just as fast (accuracy 1.0 by step ≈ 40); the heads may share the
   anti-diagonal between them or both learn it.

## Summary

| seed (§3) | what this chapter showed |
|---|---|
| 1. 计算查询、键和值向量 | $Q = XW^Q$, $K = XW^K$, $V = XW^V$ by hand on 4 tokens |
| 2. 计算注意力分数 (点积) | $S = QK^\top$, one dot product written out per entry |
| 3. 计算注意力权重 (softmax) | row-wise softmax, rows sum to 1; heatmap |
| 4. 加权求和 | $Z = AV$; identical to `F.attention(q, k, v, scale=1.0)`; the library's default adds the $1/\sqrt{d_k}$ of §4.1 |
| 关注输入序列中的其他词 | the weights say which words each word reads; self-attention ignores order, hence position embeddings |
| (masks) | causal mask: later tokens cannot influence earlier outputs; padding mask: a padded sentence gives the same outputs as the unpadded one |
| (multi-head) | `nn.MultiheadAttention` rebuilt from its weights, head by head |
| 反向传播算法 … 计算损失函数的梯度来更新模型参数 | forward → backward → update loops, for a line (plain gradient descent) and for attention (Adam) |
| 交叉熵损失函数 | by hand = `F.cross_entropy`; gradient softmax − one-hot; learned the reversal, anti-diagonal attention |
| 均方误差损失函数 | by hand = `F.mse_loss`; gradient $2(\hat y - y)/N$; fitted $y = 3x - 1$ |

Next: chapter 4 writes the formulas — $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$ and the chain
rule — and derives every backward used here by hand.
""")


if __name__ == "__main__":
    nb.build("03_self_attention.ipynb")
