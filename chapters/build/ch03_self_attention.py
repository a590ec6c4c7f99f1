"""Build chapters/zh/03_self_attention.ipynb and chapters/en/03_self_attention.ipynb (the
article's §3): the four steps of self-attention by hand, masks, one head then several built
in cells, the two losses, and an attention layer that learns to reverse digits.

    python chapters/build/ch03_self_attention.py                    # full run, both editions
    python chapters/build/ch03_self_attention.py --fast --out /tmp/ch   # quick check
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Chapter, assignment_task  # noqa: E402

ch = Chapter("03_self_attention", number=3, title=("核心算法原理具体操作步骤", "Core algorithm, step by step"),
             sections="§3.1–3.2")
md, code = ch.md, ch.code

# ============================================================================ title
md(zh=r"""
# 3 · 核心算法原理具体操作步骤

> **原文 §3.1**：Transformer 模型的核心是自注意力机制，它允许模型在处理每个词时关注输入序列中的其他词，从而更好地理解上下文信息。
>
> **原文 §3.2**：LLMs 通常使用反向传播算法进行训练，该算法通过计算损失函数的梯度来更新模型参数。常见的损失函数包括交叉熵损失函数和均方误差损失函数。

原文把自注意力 (self-attention) 写成四个步骤。本章先在 4 个词上用纸笔都能核对的小数字把每一步手算一遍，
再让库函数做同样的事；然后亲手写出**一个注意力头**，再把几个头拼成**多头注意力**，最后用两种损失函数训练。

**你会亲手搭建**

1. 原文的四个步骤：**查询、键、值**向量 (query, key, value)、**注意力分数** (attention score)、
   **注意力权重** (attention weight)、**加权求和** (weighted sum)，先手算，再与 `F.attention` 对照，并画成热力图。
2. **掩码** (mask)：解码器的因果掩码 (causal mask) 和批处理的填充掩码 (padding mask)，各用一个实验验证。
3. **一个头，然后多个头**：用三个线性层写出一个注意力头 `Head`，再把 $h$ 个头拼成 `MultiHead`，
   装入 `nn.MultiheadAttention` 的权重后两者输出一致。
4. **训练算法**（§3.2）：交叉熵 (cross-entropy) 和均方误差 (mean squared error, MSE) 手算并与库对照，
   看它们的梯度；再做两次小训练：用 MSE 拟合一条直线，用交叉熵训练我们自己的注意力层把 8 个数字**倒过来**，
   看注意力图怎样变成反对角线，并比较 1 个头和 4 个头。

完整运行约 {{run_seconds:.0f}} 秒（{{run_cores}} 核 CPU）；设置 `TINYLLM_FAST=1`（CI 的做法）时步数更少，几秒钟即可跑完。
""", en=r"""
# 3 · 核心算法原理具体操作步骤 — Core algorithm, step by step

> **The article, §3.1**: Transformer 模型的核心是自注意力机制，它允许模型在处理每个词时关注输入序列中的其他词，从而更好地理解上下文信息。
> (The core of the Transformer is the self-attention mechanism: while processing each word the
> model can attend to the other words of the input, and so understand the context better.)
>
> **The article, §3.2**: LLMs 通常使用反向传播算法进行训练 … 常见的损失函数包括交叉熵损失函数和均方误差损失函数。
> (LLMs are trained with backpropagation, which uses the gradient of a loss function to update
> the parameters; common losses are cross-entropy and mean squared error.)

The article lists self-attention as four steps. We do each step by hand on four tokens —
small enough to check every number with pencil and paper — and then let the library do the
same; then we write **one attention head** ourselves, put several together into **multi-head
attention**, and train with the two losses.

**What you will build**

1. The article's four steps — **query, key, value** vectors (查询、键、值), **scores**
   (注意力分数), **softmax weights** (注意力权重), **weighted sum** (加权求和) — by hand, then
   with `F.attention`, with a heatmap of the weights.
2. **Masks**: the causal mask of a decoder and the padding mask of a batch, each checked by
   experiment.
3. **One head, then several**: an attention head `Head` written from three linear layers, then
   `MultiHead` from $h$ of them; loaded with `nn.MultiheadAttention`'s weights, it gives the
   same outputs.
4. **The training algorithm** (§3.2): cross-entropy and mean squared error by hand against the
   library, their gradients, and two small trainings — a line fitted with MSE, and our own
   attention layer learning to *reverse* 8 digits with cross-entropy (watch its attention map
   turn into an anti-diagonal), with one head and with four.

A full run takes about {{run_seconds:.0f}} seconds on {{run_cores}} CPU cores; with `TINYLLM_FAST=1` (what CI
does) the same cells take a few seconds with fewer steps.
""")

ch.setup(r"""
import tinyllm.nn as nn
import tinyllm.functional as F
np.set_printoptions(precision=3, suppress=True)
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
    ax.set_xlabel(tr("键（被关注者）", "key (attended to)")); ax.set_ylabel(tr("查询（关注者）", "query (attending)"))
    ax.set_title(title, fontsize=9)
""")

# ============================================================================ 3.1
md(zh=r"""
## 3.1 Transformer 架构

> **自注意力机制的计算过程如下：**
> 1. **计算查询、键和值向量：** 对于输入序列中的每个词，计算其对应的查询向量（Q）、键向量（K）和值向量（V）。
> 2. **计算注意力分数：** 将查询向量与每个键向量进行点积，得到注意力分数。
> 3. **计算注意力权重：** 对注意力分数进行 softmax 操作，得到注意力权重。
> 4. **加权求和：** 将注意力权重与值向量进行加权求和，得到最终的输出向量。

### 一个小例子

四个词，每个词已经变成一个长度为 4 的向量，也就是它的**嵌入** (embedding)；真实模型的嵌入是学出来的，这里我们直接写下来。
三个 $4 \times 3$ 的权重矩阵把每个嵌入投影成长度 $d_k = d_v = 3$ 的查询、键和值。所有数都是小整数，每一步都可以在纸上重算。
""", en=r"""
## 3.1 Transformer 架构 — The four steps of self-attention

> **自注意力机制的计算过程如下：**
> 1. **计算查询、键和值向量：** 对于输入序列中的每个词，计算其对应的查询向量（Q）、键向量（K）和值向量（V）。
> 2. **计算注意力分数：** 将查询向量与每个键向量进行点积，得到注意力分数。
> 3. **计算注意力权重：** 对注意力分数进行 softmax 操作，得到注意力权重。
> 4. **加权求和：** 将注意力权重与值向量进行加权求和，得到最终的输出向量。
>
> (1. For every word compute its query (Q), key (K) and value (V) vectors. 2. Dot the query with
> every key: the attention scores. 3. Softmax the scores: the attention weights. 4. Sum the
> values weighted by the attention weights: the output vector.)

### The tiny example

Four tokens, each already turned into a vector of 4 numbers (an *embedding*; in a real model
it is learned, here we write it down). Three weight matrices of shape $4 \times 3$ project
each embedding to a query, a key and a value of size $d_k = d_v = 3$. All entries are small
integers so that you can redo every step on paper.
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

md(zh=r"""
### 第 1 步 · 计算查询、键和值向量

每个词 $i$ 用它的嵌入 $x_i$ 做三次矩阵乘法，得到三个向量：

$$ q_i = x_i W^Q, \qquad k_i = x_i W^K, \qquad v_i = x_i W^V \qquad\Longleftrightarrow\qquad Q = X W^Q,\; K = X W^K,\; V = X W^V $$

**查询** (query) 表示词 $i$ 在找什么，**键** (key) 表示词 $j$ 凭什么被找到，**值** (value) 是词 $j$ 被找到后交出去的内容。
在*自*注意力里，三者都来自同一个序列 $X$。
""", en=r"""
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
print(tr("手算 q_0 = x_0 W^Q，逐列：", "by hand, q_0 = x_0 W^Q, column by column:"))
for c in range(3):
    print(f"   q_0[{c}] = {dot_str(X[0], W_Q[:, c])} = {q0[c]:g}")

Q, K, V = X @ W_Q, X @ W_K, X @ W_V          # all tokens at once: (4, 3) each
for name, M in (("Q", Q), ("K", K), ("V", V)):
    print(f"{name} =", M.tolist())
""")

md(zh=r"""
### 第 2 步 · 计算注意力分数

“将查询向量与每个键向量进行点积”：查询 $i$ 对键 $j$ 的分数就是两者的点积 (dot product)；全部分数一起算就是一次矩阵乘法：

$$ s_{ij} = q_i \cdot k_j = \sum_{c=1}^{d_k} q_{ic}\, k_{jc} \qquad\Longleftrightarrow\qquad S = Q K^\top \quad (4 \times 4) $$

分数大，表示“键 $j$ 正好是查询 $i$ 要找的”。
""", en=r"""
### Step 2 · 计算注意力分数 — scores

"将查询向量与每个键向量进行点积" (dot the query with every key): the score of query $i$
against key $j$ is their dot product; all of them at once are one matrix product:

$$ s_{ij} = q_i \cdot k_j = \sum_{c=1}^{d_k} q_{ic}\, k_{jc} \qquad\Longleftrightarrow\qquad S = Q K^\top \quad (4 \times 4) $$

A large score means "key $j$ matches what query $i$ looks for".
""")

code(r"""
print(tr(f"{tokens[0]!r} 的查询对每个键的分数：", f"scores of the query of {tokens[0]!r} against every key:"))
for j in range(4):
    print(f"   s_0{j} = q_0 · k_{j} = {dot_str(Q[0], K[j])} = {Q[0] @ K[j]:g}     ({tokens[j]!r})")
S = Q @ K.T
print("S = Q Kᵀ =\n", S)
""")

md(zh=r"""
### 第 3 步 · 计算注意力权重

“对注意力分数进行 softmax 操作”：对每一行取指数再归一化，于是每个查询的权重都为正、加起来等于 1：

$$ a_{ij} = \mathrm{softmax}(s_i)_j = \frac{e^{s_{ij}}}{\sum_{l} e^{s_{il}}} $$
""", en=r"""
### Step 3 · 计算注意力权重 — softmax weights

"对注意力分数进行 softmax 操作" (softmax the scores): along each row, exponentiate and
normalise, so every query's weights are positive and sum to 1:

$$ a_{ij} = \mathrm{softmax}(s_i)_j = \frac{e^{s_{ij}}}{\sum_{l} e^{s_{il}}} $$
""")

code(r"""
e = np.exp(S[0])
print(tr(f"第 0 行：exp(分数) = {np.round(e, 3)}，和 = {e.sum():.3f}",
         f"row 0: exp(scores) = {np.round(e, 3)}, their sum = {e.sum():.3f}"))
print(tr(f"       权重 a_0 = exp / 和 = {np.round(e / e.sum(), 3)}（和 = {(e / e.sum()).sum():g}）",
         f"       weights a_0 = exp / sum = {np.round(e / e.sum(), 3)}  (sum = {(e / e.sum()).sum():g})"))

def softmax_rows(M):
    M = M - M.max(axis=1, keepdims=True)      # the same result, and no overflow for big scores
    E = np.exp(M)
    return E / E.sum(axis=1, keepdims=True)

A = softmax_rows(S)
print("A = softmax(S) =\n", A, tr("\n每行之和：", "\nrow sums:"), A.sum(axis=1))
""")

md(zh=r"""
### 第 4 步 · 加权求和

“将注意力权重与值向量进行加权求和”：词 $i$ 的输出是所有值向量的加权平均，权重就是 $i$ 对每个词的关注程度：

$$ z_i = \sum_j a_{ij}\, v_j \qquad\Longleftrightarrow\qquad Z = A V \quad (4 \times 3) $$
""", en=r"""
### Step 4 · 加权求和 — the weighted sum

"将注意力权重与值向量进行加权求和" (sum the values weighted by the attention weights): the
output for token $i$ is the average of all value vectors, weighted by how much $i$ attends to
each:

$$ z_i = \sum_j a_{ij}\, v_j \qquad\Longleftrightarrow\qquad Z = A V \quad (4 \times 3) $$
""")

code(r"""
terms = " + ".join(f"{A[0, j]:.3f}·{V[j].tolist()}" for j in range(4))
print(f"z_0 = {terms}\n    = {np.round(A[0] @ V, 3)}")
Z = A @ V
print("Z = A V =\n", Z)
record(top_of_tiny=tokens[int(A[0].argmax())], top_weight_of_tiny=float(A[0].max()))
""")

md(zh=r"""
$V$ 的第 0 列对每个词都是 1，所以 $Z$ 的第 0 列是 $\sum_j a_{ij} \cdot 1 = 1$：这正好检验了每行权重之和为 1。
词 “tiny”（第 0 行）最关注 “{{top_of_tiny}}”（权重 {{top_weight_of_tiny:.2f}}），所以它的输出主要是 “{{top_of_tiny}}” 的值向量。

### 用库函数做同样的事

四个步骤合起来就是一次调用：`F.attention(q, k, v)` 返回输出和权重（`F.scaled_dot_product_attention` 只返回输出）。
库函数默认把分数除以 $\sqrt{d_k}$，这是原文 §4.1 的公式，第 4 章会解释原因；为了逐位复现原文的四步，我们传入 `scale=1.0`：
""", en=r"""
The first column of $V$ is 1 for every token, so the first column of $Z$ is
$\sum_j a_{ij} \cdot 1 = 1$: a check that the weights of each row sum to one. Token "tiny"
(row 0) attends most to "{{top_of_tiny}}" (weight {{top_weight_of_tiny:.2f}}), so its output is mostly
"{{top_of_tiny}}"'s value.

### The same with the library

All four steps are one call: `F.attention(q, k, v)` returns the output and the weights
(`F.scaled_dot_product_attention` only the output). The library divides the scores by
$\sqrt{d_k}$ by default — the formula of the article's §4.1, explained in chapter 4 — so to
reproduce the article's four steps exactly we pass `scale=1.0`:
""")

code(r"""
q, k, v = tl.Tensor(Q), tl.Tensor(K), tl.Tensor(V)          # float64 tensors
out, weights = F.attention(q, k, v, scale=1.0)
print(tr("库的输出 == 我们的 Z：      ", "library output == our Z:      "), np.allclose(out.numpy(), Z))
print(tr("库的权重 == 我们的 A：      ", "library weights == our A:     "), np.allclose(weights.numpy(), A))

out_scaled, weights_scaled = F.attention(q, k, v)          # default: scale = 1/√d_k
A_scaled = softmax_rows(S / math.sqrt(3))
print(tr("缩放 1/√3 后 == 手算：      ", "with scale 1/√3 == our steps: "), np.allclose(weights_scaled.numpy(), A_scaled))

fig, axes = plt.subplots(1, 2, figsize=(8, 3.3))
show_weights(axes[0], A, tokens, tokens, tr("softmax(QKᵀ)：原文的四步", "softmax(QKᵀ): the article's four steps"))
show_weights(axes[1], A_scaled, tokens, tokens, tr("softmax(QKᵀ/√d_k)：§4.1 的公式", "softmax(QKᵀ/√d_k): §4.1's formula"))
plt.tight_layout(); plt.show()
record(fast_top_unscaled=float(A[3].max()), fast_top_scaled=float(A_scaled[3].max()))
""", alt=(
    "两幅 4 × 4 的注意力权重热图，词是“tiny models learn fast”，"
    "行是查询，列是键，每格标有权重。左：原文四步里的 softmax(QKᵀ)；右："
    "§4.1 公式里的 softmax(QKᵀ/√d_k)。两幅的模式相同，但右图每一行都更平："
    "“fast”这一行最大的权重从 {{fast_top_unscaled:.2f}} 降到 {{fast_top_scaled:.2f}}。",
    "Two 4 × 4 heatmaps of attention weights for the tokens 'tiny models learn fast', queries as rows and"
    " keys as columns, each cell labelled with its weight. Left, softmax(QKᵀ) as in the article's four "
    "steps; right, softmax(QKᵀ/√d_k) as in §4.1's formula. The pattern is the same, but every row on the "
    "right is flatter: the largest weight in the row of 'fast' drops from {{fast_top_unscaled:.2f}} to "
    "{{fast_top_scaled:.2f}}."))

md(zh=r"""
除以 $\sqrt{d_k}$ 让每一行都更平缓（“fast” 最大的权重从 {{fast_top_unscaled:.2f}} 降到 {{fast_top_scaled:.2f}}）。
$d_k = 3$ 时影响不大；真实模型的 $d_k$ 是 64 或 128，这时它决定训练能不能进行——第 4 章会测量。

### 自注意力*看不到*的东西：顺序

把词的顺序打乱，输出也按同样的方式打乱，除此之外什么都不变。自注意力把输入当作一个*集合*。
所以每个 Transformer 都要在嵌入里加入位置信息（正弦位置编码 (positional encoding)，或者像 GPT 那样学出来的位置嵌入 (position embedding)）。
""", en=r"""
Dividing by $\sqrt{d_k}$ makes every row flatter (the largest weight of "fast" drops from
{{fast_top_unscaled:.2f}} to {{fast_top_scaled:.2f}}). With $d_k = 3$ that is a small effect; with the $d_k = 64$ or $128$ of
real models it decides whether training works at all — chapter 4 measures it.

### What self-attention does *not* see: order

Shuffle the tokens, and the outputs are shuffled the same way — nothing else changes.
Self-attention treats its input as a *set*. This is why every Transformer adds position
information to the embeddings (a sinusoidal positional encoding, or learned position
embeddings as in GPT).
""")

code(r"""
perm = [2, 0, 3, 1]                                         # a new order of the four tokens
Xp = X[perm]
Zp = softmax_rows((Xp @ W_Q) @ (Xp @ W_K).T) @ (Xp @ W_V)
print(tr("新顺序：", "new order:"), [tokens[i] for i in perm])
print(tr("打乱输入后的输出 == 打乱后的输出：", "outputs of the shuffled input == shuffled outputs:"), np.allclose(Zp, Z[perm]))
""")

# ============================================================================ masks
md(zh=r"""
## 掩码：谁可以关注谁

掩码在 softmax *之前*去掉一部分（查询，键）对：给它们的分数加上 $-\infty$。$e^{-\infty} = 0$，所以它们的权重恰好为 0，剩下的权重之和仍然是 1：

$$ A = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + M\right), \qquad M_{ij} = \begin{cases} 0 & \text{允许} \\ -\infty & \text{屏蔽} \end{cases} $$

在 tinyllm 里（和 PyTorch 一样），掩码可以是上面这样的浮点矩阵，也可以是布尔矩阵。注意布尔掩码的方向：
`F.scaled_dot_product_attention` 和 `F.attention`（与 `torch.nn.functional.scaled_dot_product_attention` 相同）里 **True 表示可以关注**；
而 `nn.MultiheadAttention` 和各个 Transformer 层（与 torch 同名的类相同）里 **True 表示屏蔽**，这是填充掩码的常见写法。

### 因果掩码

要学会预测第 $t+1$ 个词的解码器不能提前看到它。因果掩码只允许 $j \le i$，上三角全是 $-\infty$：
""", en=r"""
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
print(tr("手算 == F.attention(..., is_causal=True)：", "by hand == F.attention(..., is_causal=True):"),
      np.allclose(A_causal, w_lib.numpy()))

fig, ax = plt.subplots(figsize=(4, 3.3))
show_weights(ax, A_causal, tokens, tokens, tr("因果自注意力", "causal self-attention")); plt.tight_layout(); plt.show()
""", alt=(
    "“tiny models learn fast”的因果自注意力权重热图（4 × 4，"
    "每格标有权重）：对角线以上全是 0，每个词只关注它自己和它之前的词；"
    "第一行“tiny”把 1.00 的权重全给了自己，每行之和为 1。",
    "Heatmap of causal self-attention weights for 'tiny models learn fast' (4 × 4, each cell labelled): "
    "every cell above the diagonal is 0, so each token attends only to itself and the tokens before it; "
    "the first row, 'tiny', puts all its weight (1.00) on itself, and every row sums to 1."))

md(zh=r"""
信息不会倒流的证明：把**最后一个**词的嵌入换掉，除最后一行以外的每个输出都完全不变。
""", en=r"""
The proof that no information flows backwards: change the **last** token's embedding, and
every output but the last stays exactly the same.
""")

code(r"""
X_changed = X.copy(); X_changed[3] = [5, -2, 0, 7]               # a completely different last token
def causal_attention(Xin):
    t = [tl.Tensor(Xin @ W) for W in (W_Q, W_K, W_V)]
    return F.scaled_dot_product_attention(*t, is_causal=True).numpy()
moved = np.abs(causal_attention(X_changed) - causal_attention(X)).max(axis=1)
print(tr("每一行输出的最大变化：", "largest change of each output row:"), moved)
""")

md(zh=r"""
### 填充掩码

一个批次里的句子长短不一，短句要用 `<pad>` 词补齐成矩形。填充位置不应被关注：**键填充掩码** (key padding mask)
的形状是（批，S），填充处为 True，它对所有查询屏蔽这些*列*。这里第 1 句是 “learn fast”，补齐到长度 4：
""", en=r"""
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
unmasked_gap = np.abs(F.attention(qb, kb, vb)[0].numpy()[1, :2] - alone.numpy()).max()
print(tr("补齐 + 掩码 == 不补齐（真实位置上）：", "padded + masked == unpadded, at the real positions:"),
      np.allclose(out_pad.numpy()[1, :2], alone.numpy()))
print(tr("不加掩码时最多相差", "without the mask they differ by up to"), round(float(unmasked_gap), 3))

labels = ["learn", "fast", "<pad>", "<pad>"]
fig, axes = plt.subplots(1, 2, figsize=(8, 3.3))
show_weights(axes[0], w_nomask.numpy()[1], labels, labels, tr("不加掩码：填充位抢走了权重", "no mask: the pads steal weight"))
show_weights(axes[1], w_pad.numpy()[1], labels, labels, tr("键填充掩码", "key padding mask"))
plt.tight_layout(); plt.show()
""", alt=(
    "补齐后的序列“learn fast <pad> <pad>”的两幅 4 × 4 热图，"
    "每格标有权重。左：不加掩码时，两个 <pad> 键分走了每一行的一部分权重。右："
    "加了键填充掩码后，<pad> 两列全是 0，"
    "“learn”和“fast”两行的权重只分给这两个真实的词。",
    "Two 4 × 4 heatmaps for the padded sequence 'learn fast <pad> <pad>', each cell labelled with its "
    "weight. Left, without a mask: the two <pad> keys take a share of every row's weight. Right, with the"
    " key padding mask: the <pad> columns are all 0, and the rows of 'learn' and 'fast' share their "
    "weight between those two real tokens only."))

md(zh=r"""
`<pad>` 作为*查询*的那几行仍然有权重：它们的输出照样算出来，然后被忽略（损失函数用 `ignore_index` 跳过填充位置）。
在补齐的批次上，解码器同时用两种掩码，二者按“与”组合（只有两者都允许的位置才可见）：
""", en=r"""
The rows of the `<pad>` *queries* still hold weights: their outputs are computed and then
ignored (the loss skips padding positions with `ignore_index`). A decoder on a padded batch
uses both masks; they combine by "and" (a pair is visible only where both allow it):
""")

code(r"""
both = ~key_padding[:, None, :] & np.tril(np.ones((L, L), dtype=bool))   # (B, L, S), True = may attend
_, w_both = F.attention(qb, kb, vb, attn_mask=both)
print(tr("第 1 句，因果 + 填充：\n", "sentence 1, causal + padding:\n"), w_both.numpy()[1])

# a query that may see no key at all (a fully masked row): softmax of all −inf is 0/0
nothing = np.zeros((1, L, L), dtype=bool)
out_none, w_none = F.attention(q[None], k[None], v[None], attn_mask=nothing)
print(tr(f"整行被屏蔽 → 权重 {w_none.numpy()[0, 0]}，输出 {out_none.numpy()[0, 0]}（tinyllm 给 0，PyTorch 给 nan）",
         f"fully masked rows → weights {w_none.numpy()[0, 0]} and output {out_none.numpy()[0, 0]} "
         f"(tinyllm gives 0 where PyTorch gives nan)"))
""")

# ============================================================================ heads
md(zh=r"""
## 一个注意力头，然后多个

上面的 $W^Q, W^K, W^V$ 是手写的常数。在模型里它们是**参数** (parameter)：三个没有偏置的线性层，由训练来调整。
一个**注意力头** (attention head) 就是这三个线性层加上四个步骤。我们用 tinyllm 的张量运算把它写出来——矩阵乘法、
`F.softmax`、`tl.where`——于是反向传播 (backpropagation) 自动就有了：
""", en=r"""
## One attention head, then several

The $W^Q, W^K, W^V$ above were constants written by hand. In a model they are **parameters**:
three linear layers without bias, tuned by training. One **attention head** is those three
layers plus the four steps. We write it with tinyllm's tensor operations — matrix product,
`F.softmax`, `tl.where` — so backpropagation comes for free:
""")

code(r"""
class Head(nn.Module):
    # One head of self-attention: x (B, T, d_model) → (B, T, d_head), and its weights (B, T, T).

    def __init__(self, d_model, d_head):
        super().__init__()
        self.query = nn.Linear(d_model, d_head, bias=False)     # step 1: q = x W^Q
        self.key = nn.Linear(d_model, d_head, bias=False)       #         k = x W^K
        self.value = nn.Linear(d_model, d_head, bias=False)     #         v = x W^V
        self.d_head = d_head

    def forward(self, x, causal=False):
        q, k, v = self.query(x), self.key(x), self.value(x)
        scores = q @ k.swapaxes(-1, -2) / math.sqrt(self.d_head)   # step 2: (B, T, T), scaled as in §4.1
        if causal:                                               # keys after the query: −inf
            T = x.shape[-2]
            future = tl.Tensor(np.triu(np.ones((T, T), dtype=bool), k=1))
            scores = tl.where(future, tl.Tensor(-np.inf, dtype=scores.dtype), scores)
        weights = F.softmax(scores, axis=-1)                     # step 3
        return weights @ v, weights                              # step 4


tl.manual_seed(0)
head = Head(4, 3).to(dtype=np.float64)
x_batch = tl.Tensor(X[None])                                     # (B=1, T=4, d_model=4)
z_head, a_head = head(x_batch, causal=True)
q_lib, k_lib, v_lib = head.query(x_batch), head.key(x_batch), head.value(x_batch)
print(tr("我们的头 == F.scaled_dot_product_attention：", "our head == F.scaled_dot_product_attention:"),
      np.allclose(z_head.numpy(), F.scaled_dot_product_attention(q_lib, k_lib, v_lib, is_causal=True).numpy()))
x_check = tl.Tensor(X[None], requires_grad=True)
print(tr("它的梯度通过 tl.gradcheck（float64 中心差分）：", "its gradient passes tl.gradcheck (float64 central differences):"),
      tl.gradcheck(lambda x: head(x, causal=True)[0].sum(), x_check))
""")

md(zh=r"""
一个头只能算出**一种**加权方式。Transformer 让 $h$ 个头并排工作，每个头有自己宽度为 $d_k = d_{\text{model}}/h$ 的投影，
再用一个矩阵 $W^O$ 把它们的输出混合起来，这就是**多头注意力** (multi-head attention)：

$$
\mathrm{head}_i = \mathrm{softmax}\!\left(\frac{(XW^Q_i)(XW^K_i)^\top}{\sqrt{d_k}}\right) XW^V_i, \qquad
\mathrm{MultiHead}(X) = \big[\mathrm{head}_1, \dots, \mathrm{head}_h\big]\, W^O
$$
""", en=r"""
One head computes **one** weighting of the tokens. A Transformer runs $h$ of them side by side,
each with its own projections of width $d_k = d_{\text{model}}/h$, and mixes their outputs
with one more matrix $W^O$: **multi-head attention**.

$$
\mathrm{head}_i = \mathrm{softmax}\!\left(\frac{(XW^Q_i)(XW^K_i)^\top}{\sqrt{d_k}}\right) XW^V_i, \qquad
\mathrm{MultiHead}(X) = \big[\mathrm{head}_1, \dots, \mathrm{head}_h\big]\, W^O
$$
""")

code(r"""
class MultiHead(nn.Module):
    # h heads of width d_model / h side by side, concatenated, mixed by W^O: (B, T, d_model) → (B, T, d_model).

    def __init__(self, d_model, n_heads):
        super().__init__()
        self.heads = nn.ModuleList([Head(d_model, d_model // n_heads) for _ in range(n_heads)])
        self.out = nn.Linear(d_model, d_model)                  # W^O (with a bias, as in nn.MultiheadAttention)

    def forward(self, x, causal=False):
        outputs, weights = zip(*(head(x, causal) for head in self.heads))
        return self.out(tl.concatenate(outputs, axis=-1)), tl.stack(weights, axis=1)   # weights: (B, h, T, T)


d_model, n_heads = 8, 2
tl.manual_seed(0)
ours = MultiHead(d_model, n_heads)
library = nn.MultiheadAttention(d_model, n_heads, bias=False, batch_first=True)
# nn.MultiheadAttention keeps all heads' W^Q, W^K, W^V stacked in one (3·d_model, d_model) matrix
# (PyTorch's layout, y = x Wᵀ); head i owns rows i·d_k … (i+1)·d_k of each third. Copy ours in.
d_k = d_model // n_heads
with tl.no_grad():
    stacked = np.concatenate([np.concatenate([getattr(h, part).weight.numpy() for h in ours.heads])
                              for part in ("query", "key", "value")])
    library.in_proj_weight.data[...] = stacked
    library.out_proj.weight.data[...] = ours.out.weight.numpy()
    ours.out.bias.data[...] = 0.0                               # the library layer has no bias here
words = ["the", "cat", "sat", "on", "mats"]
x_in = tl.randn(1, len(words), d_model)
out_ours, w_ours = ours(x_in)
out_lib, w_lib_heads = library(x_in, x_in, x_in, average_attn_weights=False)
print(tr("MultiHead == nn.MultiheadAttention（同样的权重）：", "MultiHead == nn.MultiheadAttention (same weights):"),
      np.allclose(out_ours.numpy(), out_lib.numpy(), atol=1e-5),
      tr("；各头的权重也相同：", "; per-head weights too:"), np.allclose(w_ours.numpy(), w_lib_heads.numpy(), atol=1e-5))
print(tr(f"参数量：{library.num_parameters()} = 4·d_model² =", f"parameters: {library.num_parameters()} = 4·d_model² ="),
      4 * d_model ** 2, tr("（与头数无关）", "(whatever the number of heads)"))

fig, axes = plt.subplots(1, n_heads, figsize=(8.5, 3.4))
for h in range(n_heads):
    show_weights(axes[h], w_ours.numpy()[0, h], words, words, tr(f"头 {h}", f"head {h}"))
plt.tight_layout(); plt.show()
""", alt=(
    "两幅 5 × 5 热图，每个头一幅，"
    "是未训练的多头注意力在“the cat sat on mats”上的权重，每格标有数值："
    "权重比较平均（还没有训练），两个头在同样的词上分配权重的方式不同。",
    "Two 5 × 5 heatmaps, one per head, of the untrained multi-head attention weights over 'the cat sat on"
    " mats', each cell labelled: the weights are fairly even (nothing is trained yet), and the two heads "
    "spread them differently over the same tokens."))

md(zh=r"""
即使没有训练，两个头对词的加权也不同：它们看的是同一组词在不同的 $d_k$ 维投影。训练会给每个头分配一个职责
（比如一个头看前一个词，另一个头看句子的主语）。分成多个头不增加参数：$h$ 个宽 $d_{\text{model}}/h$ 的头，
矩阵总量和一个宽 $d_{\text{model}}$ 的头相同。本章末尾的训练会把 1 个头和 4 个头放在一起比较。
""", en=r"""
Even untrained, the two heads weigh the tokens differently: they look at different
$d_k$-dimensional projections of the same tokens. Training gives each head a job (one might
look at the previous token, another at the subject of the sentence); splitting costs no
parameters, since $h$ heads of width $d_{\text{model}}/h$ have the same matrices as one head
of width $d_{\text{model}}$. The training at the end of this chapter compares one head with four.
""")

# ============================================================================ 3.2
md(zh=r"""
## 3.2 训练算法

> **LLMs 通常使用反向传播算法进行训练，该算法通过计算损失函数的梯度来更新模型参数。常见的损失函数包括交叉熵损失函数和均方误差损失函数。**

训练就是反复做三件事：在一批数据上算出损失 $\mathcal L(\theta)$（**前向**）；用反向传播算出它的梯度 (gradient)
$\nabla_\theta \mathcal L$（**反向**，第 4 章推导）；然后往下坡走一步（**更新**）：

$$ \theta \leftarrow \theta - \eta\, \nabla_\theta \mathcal L(\theta) $$

其中 $\eta$ 是学习率 (learning rate)（Adam 和 AdamW 会按参数调整步长，但思路相同）。损失函数 (loss function) 规定了什么叫“好”，两种损失覆盖了大多数情形。

### 交叉熵：用于在若干类别中选一个，比如下一个词

对 $N$ 个样本，逻辑值 (logits) 为 $z_n \in \mathbb R^C$，正确类别为 $t_n$：

$$ \mathcal L_{\mathrm{CE}} = -\frac1N \sum_{n=1}^{N} \log \mathrm{softmax}(z_n)_{t_n}, \qquad
\frac{\partial \mathcal L_{\mathrm{CE}}}{\partial z_n} = \frac{1}{N}\big(\mathrm{softmax}(z_n) - \mathrm{onehot}(t_n)\big) $$

梯度简单得漂亮：预测的概率减去真实答案。
""", en=r"""
## 3.2 训练算法 — The training algorithm

> **LLMs 通常使用反向传播算法进行训练，该算法通过计算损失函数的梯度来更新模型参数。常见的损失函数包括交叉熵损失函数和均方误差损失函数。**
> (Backpropagation computes the gradient of a loss function and uses it to update the
> parameters. Common losses: cross-entropy and mean squared error.)

Training repeats: compute the loss $\mathcal L(\theta)$ on a batch (**forward**), compute its
gradient $\nabla_\theta \mathcal L$ by backpropagation (**backward**, chapter 4 derives it),
and step downhill (**update**):

$$ \theta \leftarrow \theta - \eta\, \nabla_\theta \mathcal L(\theta) $$

with learning rate $\eta$ (Adam and AdamW rescale this step per parameter, but the idea is
the same). The loss function says what "good" means. Two losses cover most cases.

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
print(tr(f"交叉熵：手算 {ce_hand:.6f}，库 {ce.item():.6f}", f"cross-entropy by hand {ce_hand:.6f}, library {ce.item():.6f}"))
print(tr("手算梯度 == 库的 z.grad：", "gradient by hand == library z.grad:"), np.allclose(grad_hand, z.grad))
print("z.grad =\n", z.grad)
""")

md(zh=r"""
### 均方误差：用于预测数值

对预测值 $\hat y_n$ 和目标值 $y_n$：

$$ \mathcal L_{\mathrm{MSE}} = \frac1N \sum_{n=1}^{N} (\hat y_n - y_n)^2, \qquad
\frac{\partial \mathcal L_{\mathrm{MSE}}}{\partial \hat y_n} = \frac{2}{N}(\hat y_n - y_n) $$
""", en=r"""
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
print(tr(f"MSE：手算 {mse_hand:.4f}，库 {mse.item():.4f}", f"MSE by hand {mse_hand:.4f}, library {mse.item():.4f}"))
print(tr("手算梯度", "gradient by hand"), 2 * (pred_np - target_np) / 4, tr("== 库", "== library"), y_hat.grad)
""")

md(zh=r"""
**为什么语言模型用交叉熵而不用 MSE。** 设模型给正确词的概率是 $p$。交叉熵的代价是 $-\log p$；
对 one-hot 目标的平方误差（两个类别求和）是 $(1-p)^2 + (0-(1-p))^2 = 2(1-p)^2$。在 $p \to 0$ 附近，也就是**自信地犯错**时，
交叉熵趋于无穷，梯度一直很大；MSE 却是有界的，而且穿过 softmax 之后的梯度会*消失*：模型几乎学不到它最严重的错误。
""", en=r"""
**Why language models use cross-entropy, not MSE.** Suppose the model gives the correct token
probability $p$. Cross-entropy charges $-\log p$; the squared error against the one-hot
target, summed over two classes, charges $(1-p)^2 + (0-(1-p))^2 = 2(1-p)^2$. Near $p=0$ — a
confident mistake — cross-entropy goes to infinity and its gradient stays large, while MSE
stays bounded and its gradient through the softmax *vanishes*: the model barely learns from
its worst errors.
""")

code(r"""
p = np.linspace(0.005, 0.995, 200)
# two classes, logits (l, 0): p = σ(l); gradients with respect to the logit l
ce_curve, mse_curve = -np.log(p), 2 * (1 - p) ** 2
ce_grad, mse_grad = -(1 - p), -4 * (1 - p) * p * (1 - p)
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].plot(p, ce_curve, label=tr("交叉熵 −log p", "cross-entropy −log p"))
axes[0].plot(p, mse_curve, label="MSE 2(1−p)²")
axes[0].set_xlabel(tr("正确类别的概率 p", "probability of the correct class p")); axes[0].set_ylabel(tr("损失", "loss"))
axes[0].legend()
axes[1].plot(p, np.abs(ce_grad), label=tr("交叉熵", "cross-entropy")); axes[1].plot(p, np.abs(mse_grad), label="MSE")
axes[1].set_xlabel("p"); axes[1].set_ylabel("|∂loss/∂logit|"); axes[1].legend()
axes[1].set_title(tr("传到逻辑值上的梯度", "gradient reaching the logit")); plt.tight_layout(); plt.show()
""", alt=(
    "两幅以 p（模型给正确类别的概率）为横轴的曲线图。左是损失："
    "p 趋于 0 时交叉熵 −log p 急剧增大，而 MSE 2(1−p)² 始终不超过 2。"
    "右是传到逻辑值上的梯度大小：交叉熵的是 1 − p，模型错得越离谱梯度越大；"
    "MSE 的在 p 趋于 0 时消失，所以一个很自信地犯错的模型几乎学不到东西。",
    "Two line charts against p, the probability the model gives the correct class. Left, the loss: cross-"
    "entropy −log p shoots up as p goes to 0, while MSE 2(1−p)² never exceeds 2. Right, the size of the "
    "gradient reaching the logit: for cross-entropy it is 1 − p, largest when the model is most wrong; "
    "for MSE it vanishes as p goes to 0, so a confidently wrong model learns almost nothing."))

md(zh=r"""
### 用 MSE 训练：拟合一条直线

整个算法写成循环只有五行。数据来自 $y = 3x - 1$ 加噪声，模型 $\hat y = wx + b$（`nn.Linear(1, 1)`），MSE 损失，
梯度下降 (gradient descent) 手写，不用优化器对象：
""", en=r"""
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
print(tr(f"学到 w = {w_fit:.3f}，b = {b_fit:.3f}（真值 3，−1）；最终 MSE {mse_history[-1]:.4f}",
         f"learned w = {w_fit:.3f}, b = {b_fit:.3f}   (true: 3, −1);  final MSE {mse_history[-1]:.4f}"))
record(w_fit=w_fit, b_fit=b_fit, line_steps=len(mse_history))

fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].semilogy(mse_history); axes[0].set_xlabel(tr("步数", "step")); axes[0].set_ylabel(tr("MSE（对数刻度）", "MSE (log scale)"))
axes[1].scatter(x_data, y_data, s=8, alpha=0.6, label=tr("数据", "data"))
grid = np.linspace(-2, 2, 2)
axes[1].plot(grid, w_fit * grid + b_fit, "r", label=f"ŷ = {w_fit:.2f}x {b_fit:+.2f}"); axes[1].legend()
plt.tight_layout(); plt.show()
""", alt=(
    "两幅图。左：MSE 随步数的变化（对数纵轴），开始几步下降很快，"
    "之后在共 {{line_steps}} 步中一直停在噪声的水平。右：散布在一条直线两侧的数据点，"
    "以及穿过它们的红色拟合直线 ŷ = {{w_fit:.2f}}x {{b_fit:+.2f}}。",
    "Two panels. Left: the MSE against the step on a log scale, falling fast in the first steps and then "
    "flat at the level of the noise for the rest of the {{line_steps}} steps. Right: the data points "
    "scattered about a straight line, and the fitted line ŷ = {{w_fit:.2f}}x {{b_fit:+.2f}} in red "
    "through them."))

md(zh=r"""
{{line_steps}} 步之后，$w = {{w_fit:.3f}}$、$b = {{b_fit:.3f}}$，离真值 3 和 −1 只差噪声带来的一点偏差。

### 用交叉熵训练：注意力学会把序列倒过来

现在本章的两半合在一起。任务：读入 8 个数字，倒序输出。位置 $i$ 必须复制位置 $7 - i$ 的词——纯粹是“看哪里”的问题，
正是注意力擅长的。模型小到不能再小，注意力层就是上面我们自己写的 `MultiHead`：

$$ h = \mathrm{Emb}_{\text{token}}(x) + \mathrm{Emb}_{\text{position}}, \qquad
\text{logits} = \mathrm{MultiHead}(h)\, W_{\text{out}} $$

（宽度 32，没有前馈网络，没有层归一化；位置嵌入必不可少，因为正如上面看到的，注意力本身分不清位置。）
每个位置都用交叉熵，优化器是 Adam。
""", en=r"""
After {{line_steps}} steps, $w = {{w_fit:.3f}}$ and $b = {{b_fit:.3f}}$: the true 3 and −1 up to the noise.

### Training with cross-entropy: attention learns to reverse a sequence

Now the two halves of this chapter meet. The task: read 8 digits, output them in reverse
order. Position $i$ must copy the token at position $7 - i$ — a pure "where to look"
problem, exactly what attention is for. The model is as small as it can be, and its attention
is the `MultiHead` we wrote above:

$$ h = \mathrm{Emb}_{\text{token}}(x) + \mathrm{Emb}_{\text{position}}, \qquad
\text{logits} = \mathrm{MultiHead}(h)\, W_{\text{out}} $$

(width 32, no feed-forward, no layer norm; the position embedding is essential, as we saw:
attention alone cannot tell positions apart). Cross-entropy on every position, Adam.
""")

code(r"""
SEQ, DIGITS, WIDTH = 8, 10, 32

class Reverser(nn.Module):
    def __init__(self, num_heads=1):
        super().__init__()
        self.token = nn.Embedding(DIGITS, WIDTH)
        self.position = nn.Embedding(SEQ, WIDTH)
        self.attn = MultiHead(WIDTH, num_heads)
        self.out = nn.Linear(WIDTH, DIGITS)

    def forward(self, ids, causal=False):
        h = self.token(ids) + self.position(tl.arange(ids.shape[1]))
        mixed, weights = self.attn(h, causal)
        return self.out(mixed), weights                 # (B, L, DIGITS), (B, heads, L, L)

def make_batch(rng, n=64):
    x = rng.integers(0, DIGITS, size=(n, SEQ))
    return x, x[:, ::-1].copy()                          # target: the input reversed

def cross_entropy_loss(logits, y):
    return F.cross_entropy(logits, tl.Tensor(y))

def train_reverser(steps, model, causal=False, seed=0, snapshots=(), loss_fn=cross_entropy_loss):
    rng, probe = np.random.default_rng(seed), np.random.default_rng(99).integers(0, DIGITS, (1, SEQ))
    optimizer = tl.optim.Adam(model.parameters(), lr=3e-3)
    log, maps = {"loss": [], "accuracy": []}, {}
    for step in range(steps + 1):
        if step in snapshots:
            with tl.no_grad():
                maps[step] = model(tl.Tensor(probe), causal)[1].numpy()[0]    # (heads, L, L)
        if step == steps:
            break
        x, y = make_batch(rng)
        logits, _ = model(tl.Tensor(x), causal)
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
rev_seconds = time.perf_counter() - t0
print(tr(f"{rev_steps} 步，用时 {rev_seconds:.1f} 秒：损失 {rev_log['loss'][0]:.3f} → {rev_log['loss'][-1]:.4f}，"
         f"准确率 {rev_log['accuracy'][0]:.2f} → {rev_log['accuracy'][-1]:.3f}",
         f"{rev_steps} steps in {rev_seconds:.1f} s: loss {rev_log['loss'][0]:.3f} → {rev_log['loss'][-1]:.4f}, "
         f"accuracy {rev_log['accuracy'][0]:.2f} → {rev_log['accuracy'][-1]:.3f}"))
with tl.no_grad():
    answer = reverser(tl.Tensor(probe))[0].numpy().argmax(-1)
print(tr("输入  ", "input   "), probe[0], tr("\n倒序  ", "\nreversed"), answer[0])
record(rev_steps=rev_steps, rev_loss_first=rev_log["loss"][0], rev_loss_last=rev_log["loss"][-1],
       rev_acc_first=rev_log["accuracy"][0], rev_acc_last=rev_log["accuracy"][-1])
""")

code(r"""
fig, axes = plt.subplots(1, len(snap_steps) + 1, figsize=(13, 2.9))
axes[0].plot(rev_log["loss"], label=tr("损失", "loss")); axes[0].plot(rev_log["accuracy"], label=tr("准确率", "accuracy"))
axes[0].set_xlabel(tr("步数", "step")); axes[0].legend(); axes[0].set_title(tr("交叉熵训练", "cross-entropy training"))
digits = [str(d) for d in probe[0]]
for ax, s in zip(axes[1:], snap_steps):
    ax.imshow(rev_maps[s][0], cmap="Blues", vmin=0, vmax=1)
    ax.set_title(tr(f"第 {s} 步的注意力", f"attention at step {s}"), fontsize=9)
    ax.set_xticks(range(SEQ), digits); ax.set_yticks(range(SEQ), range(SEQ))
    ax.set_xlabel(tr("键（输入数字）", "key (input digit)")); ax.set_ylabel(tr("输出位置", "output position"))
plt.tight_layout(); plt.show()
""", alt=(
    "五幅图。第一幅：交叉熵训练中损失从 {{rev_loss_first:.2f}} 降到接近 0，"
    "准确率升到 {{rev_acc_last:.2f}}。其余四幅："
    "训练中四个时刻（从第 0 步到最后的第 {{rev_steps}} 步）输出位置（行）对输入数字（列）的注意力；"
    "第 0 步时权重模糊地分散在许多输入上，之后一步步集中到反对角线上："
    "输出位置 i 看输入位置 7 − i。",
    "Five panels. The first: during cross-entropy training the loss falls from {{rev_loss_first:.2f}} to "
    "near 0 and the accuracy rises to {{rev_acc_last:.2f}}. The other four: the attention of the output "
    "positions (rows) over the input digits (columns) at four moments, from step 0 to the last step, "
    "{{rev_steps}}; at step 0 the weight is blurred over many inputs, and step by step it gathers on the "
    "anti-diagonal, output position i looking at input position 7 − i."))

md(zh=r"""
第 0 步时权重是散开的：每个输出都是许多输入的模糊混合。随后，对交叉熵做梯度下降不断调整查询和键的投影，
直到输出位置 $i$ 几乎把全部权重放在输入位置 $7-i$ 上——反对角线。没有人告诉模型该*看哪里*，是损失的梯度告诉了它。
{{rev_steps}} 步里，损失从 {{rev_loss_first:.3f}} 降到 {{rev_loss_last:.4f}}，批次上的准确率从 {{rev_acc_first:.2f}} 升到 {{rev_acc_last:.3f}}。

### 1 个头与 4 个头

同样的模型，同样的数据顺序，只把 `MultiHead(32, 1)` 换成 `MultiHead(32, 4)`：4 个宽 8 的头，参数量完全相同。
""", en=r"""
At step 0 the weights are spread out: every output is a blur of many inputs. Gradient
descent on the cross-entropy then moves the query and key projections until output position
$i$ puts almost all its weight on input position $7-i$ — the anti-diagonal. Nobody told the
model *where* to look; the gradient of the loss did. In {{rev_steps}} steps the loss went from
{{rev_loss_first:.3f}} to {{rev_loss_last:.4f}} and the batch accuracy from {{rev_acc_first:.2f}} to {{rev_acc_last:.3f}}.

### One head against four

The same model and the same batches, with `MultiHead(32, 4)` instead of `MultiHead(32, 1)`:
four heads of width 8, exactly as many parameters.
""")

code(r"""
def first_step_at(accuracy, level=0.99, window=5):
    # the first step after which the mean accuracy of `window` steps reaches `level` (None: never)
    smooth = np.convolve(accuracy, np.ones(window) / window, mode="valid")
    hits = np.nonzero(smooth >= level)[0]
    return int(hits[0]) + window if len(hits) else None

tl.manual_seed(0)
four = Reverser(num_heads=4)
print(tr("参数量：1 个头", "parameters: one head"), reverser.num_parameters(), tr("，4 个头", ", four heads"), four.num_parameters())
four_log, four_maps, _ = train_reverser(rev_steps, four, snapshots=(rev_steps,))

fig, axes = plt.subplots(1, 5, figsize=(13, 2.9))
axes[0].plot(rev_log["loss"], label=tr("1 个头", "1 head")); axes[0].plot(four_log["loss"], label=tr("4 个头", "4 heads"))
axes[0].set_yscale("log"); axes[0].set_xlabel(tr("步数", "step")); axes[0].set_ylabel(tr("交叉熵", "cross-entropy"))
axes[0].legend(); axes[0].set_title(tr("同样的参数量", "same number of parameters"))
for h in range(4):
    axes[h + 1].imshow(four_maps[rev_steps][h], cmap="Blues", vmin=0, vmax=1)
    axes[h + 1].set_title(tr(f"4 个头中的头 {h}", f"head {h} of 4"), fontsize=9)
    axes[h + 1].set_xticks(range(SEQ), digits); axes[h + 1].set_yticks(range(SEQ), range(SEQ))
plt.tight_layout(); plt.show()

never = tr("没有达到", "never")
one_at, four_at = first_step_at(rev_log["accuracy"]), first_step_at(four_log["accuracy"])
one_at, four_at = (never if at is None else at for at in (one_at, four_at))
# how much weight each head puts on the right source (position 7 − i), over 256 fresh inputs
with tl.no_grad():
    _, four_weights = four(tl.Tensor(make_batch(np.random.default_rng(7), 256)[0]))
on_source = four_weights.numpy()[:, :, np.arange(SEQ), SEQ - 1 - np.arange(SEQ)].mean(axis=(0, 2))   # (heads,)
split = on_source.min() < 0.5
verdict = (tr("各头分担了反对角线，有的头只负责其中几个位置", "the heads split the anti-diagonal: some cover only a few positions")
           if split else tr("四个头各自都学会了几乎整条反对角线——它们做同一件事，彼此冗余",
                            "each of the four heads learned nearly the whole anti-diagonal — they do the same job, redundantly"))
record(one_head_at=one_at, four_heads_at=four_at, four_loss_last=four_log["loss"][-1],
       on_source=", ".join(f"{w:.2f}" for w in on_source), head_verdict=verdict)
print(tr(f"准确率（5 步平均）首次达到 0.99 的步数：1 个头 {one_at}，4 个头 {four_at}",
         f"accuracy (mean of 5 steps) first at 0.99: one head at step {one_at}, four heads at step {four_at}"))
print(tr("每个头放在正确来源上的平均权重：", "mean weight each head puts on the right source:"), np.round(on_source, 2))
""", alt=(
    "五幅图。第一幅：参数量相同的 1 个头和 4 个头的交叉熵随步数的变化（对数纵轴），"
    "两者都降到很低的损失，"
    "准确率达到 0.99 的步数分别是第 {{one_head_at}} 步和第 {{four_heads_at}} 步。"
    "其余四幅：训练后四个头各自对输入数字的注意力；{{head_verdict}}。",
    "Five panels. The first: the cross-entropy against the step (log scale) of one head and of four heads"
    " with the same number of parameters; both fall to a very low loss, the accuracy reaching 0.99 at "
    "step {{one_head_at}} with one head and {{four_heads_at}} with four. The other four: the attention of"
    " each of the four heads over the input digits after training; {{head_verdict}}."))

md(zh=r"""
准确率（5 步平均）首次达到 0.99：1 个头在第 {{one_head_at}} 步，4 个头在第 {{four_heads_at}} 步；4 个头最后的损失是 {{four_loss_last:.4f}}。
每个头放在正确来源（位置 $7-i$）上的平均权重依次是 {{on_source}}：{{head_verdict}}。

这个实验说明了什么，没说明什么：倒序只需要每个位置看*一个*地方，一个头就够了，多头在这里不是必需的，
也不保证分工——没有任何东西迫使几个头做不同的事。多头真正的好处在于一个位置需要同时看*几个*地方
（比如前一个词和句子的主语）的时候；第 8 章会看训练好的 GPT 里各个头在做什么。

## 动手试试

1. **改一个投影。** 在小例子里令 `W_Q[0] = [0, 0, 3]`，重做第 1–4 步。*预期：* “tiny” 和 “learn”（$x_{i0} = 1$ 的两个词）
   的查询现在指向键的第三个分量，于是二者几乎只关注 “fast”（它的键 $[0, 1, 2]$ 第三个分量最大）；“models” 和 “fast” 两行不变。
2. **去掉位置的倒序。** 在 `Reverser.forward` 里删掉 `+ self.position(...)` 再训练。*预期：* 准确率停在很低的水平：
   一个输出只能依赖自己的数字和数字的*集合*（上面打乱顺序的实验），永远不知道它们在哪里，所以最多只能猜出现最多的那个数字。
3. **带因果掩码的倒序。** `train_reverser(300, Reverser(), causal=True)`。*预期：* 准确率停在
   $(4 + 4 \times \tfrac{1}{10}) / 8 = 0.55$ 附近：位置 4–7 的来源在过去，找得到；位置 0–3 需要的输入在未来，只能瞎猜（十分之一）。
   这正是因果掩码的保证。
4. **用 MSE 做分类。** 用
   `loss_fn=lambda logits, y: F.mse_loss(F.softmax(logits, axis=-1), tl.Tensor(np.eye(DIGITS)[y]))` 训练。
   *预期：* 在这个简单任务上，从默认初始化出发，它学得和交叉熵一样快。现在让模型一开始就*自信地犯错*：
   训练前把输出层乘以 30（`model.out.weight.data *= 30`），两种损失各训练一次。交叉熵仍然很快把准确率推到接近 1；
   MSE 会在较低的准确率上停留数百步——这就是上图里消失的梯度。
5. **一次矩阵乘法的多头注意力。** `MultiHead` 用 $h$ 个小矩阵；`nn.MultiheadAttention` 和 GPT 把所有头的 $W^Q, W^K, W^V$
   叠成一个矩阵，算一次乘法，再用 `reshape` 和 `transpose` 把头拆成批次维。在下面的起点单元里写出这种做法。
   """ + assignment_task("a4_attention", "multi_head")["zh"] + r"""
""", en=r"""
Accuracy (mean of 5 steps) first reached 0.99 at step {{one_head_at}} with one head and at step {{four_heads_at}} with four;
the four heads' last loss was {{four_loss_last:.4f}}. The mean weight each head puts on the right
source (position $7-i$) is, head by head, {{on_source}}: {{head_verdict}}.

What this shows and what it does not: reversal needs each position to look at *one* place, so
one head is enough and several are not needed here; nor are they bound to divide the work —
nothing pushes the heads to do different things. Multi-head attention pays off when a position
must look at *several* places at once (the previous token and the subject of the sentence);
chapter 8 looks at what the heads of a trained GPT do.

## Try it

1. **Change a projection.** In the tiny example set `W_Q[0] = [0, 0, 3]` and rerun steps
   1–4. *Expected:* the queries of "tiny" and "learn" (the tokens with $x_{i0} = 1$) now
   point along the keys' third component, so both attend almost only to "fast", whose key
   $[0, 1, 2]$ has the largest third component; the rows of "models" and "fast" do not change.
2. **Reverse without positions.** In `Reverser.forward` drop `+ self.position(...)` and
   train. *Expected:* accuracy stays low: an output can depend on its own digit and on the
   *set* of digits (the shuffle experiment above), never on where they are, so the best it can
   do is guess the most frequent digit.
3. **Reverse with a causal mask.** `train_reverser(300, Reverser(), causal=True)`.
   *Expected:* accuracy plateaus near $(4 + 4 \times \tfrac{1}{10}) / 8 = 0.55$: positions
   4–7 find their source (it lies in the past), positions 0–3 cannot — the input they need is
   in the future, so they guess (one in ten). This is what the causal mask guarantees.
4. **MSE for classification.** Train with
   `loss_fn=lambda logits, y: F.mse_loss(F.softmax(logits, axis=-1), tl.Tensor(np.eye(DIGITS)[y]))`.
   *Expected:* on this easy task, from the default initialisation, it learns as fast as
   cross-entropy. Now start *confidently wrong*: multiply the output layer by 30
   (`model.out.weight.data *= 30`) before training, once with each loss. Cross-entropy still
   pushes the accuracy close to 1 quickly; MSE lingers at a lower accuracy for hundreds of
   steps — the vanishing gradient of the plot above.
5. **Multi-head attention in one matrix product.** `MultiHead` uses $h$ small matrices;
   `nn.MultiheadAttention` and GPT stack every head's $W^Q, W^K, W^V$ in one matrix, do one
   product, and split the heads into a batch axis with `reshape` and `transpose`. Write that
   version in the starter cell below. """ + assignment_task("a4_attention", "multi_head")["en"] + r"""
""")

code(r"""
#zh: 练习 5 的起始代码（作业 a4_attention，任务 4.3）。写好函数，再运行 check_multi_head()。
#en: Exercise 5, starter (assignment a4_attention, task 4.3). Fill in the function, then run check_multi_head().
def multi_head_attention(x, w_qkv, b_qkv, w_out, b_out, n_heads):
    #zh: 因果多头自注意力：x (B, T, D) → (B, T, D)。w_qkv (3D, D) 是叠在一起的 W^Q、W^K、W^V。
    #en: Causal multi-head self-attention: x (B, T, D) → (B, T, D). w_qkv (3D, D) holds W^Q, W^K, W^V stacked.
    #zh: 1. qkv = F.linear(x, w_qkv, b_qkv)：(B, T, 3D)；q、k、v 是它的三段，每段宽 D
    #en: 1. qkv = F.linear(x, w_qkv, b_qkv): (B, T, 3D); q, k, v are its three D-wide slices
    #zh: 2. 每个 (B, T, D) → reshape(B, T, H, D // H) → transpose(0, 2, 1, 3)：(B, H, T, D // H)
    #en: 2. each (B, T, D) → reshape(B, T, H, D // H) → transpose(0, 2, 1, 3): (B, H, T, D // H)
    #zh: 3. F.scaled_dot_product_attention(q, k, v, is_causal=True)
    #en: 3. F.scaled_dot_product_attention(q, k, v, is_causal=True)
    #zh: 4. 变回来：transpose(0, 2, 1, 3) → reshape(B, T, D)；再做 F.linear(..., w_out, b_out)
    #en: 4. back: transpose(0, 2, 1, 3) → reshape(B, T, D); then F.linear(..., w_out, b_out)
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def check_multi_head():
    tl.manual_seed(1)
    layer = nn.MultiheadAttention(8, 2, batch_first=True)
    x = tl.randn(2, 5, 8)
    want, _ = layer(x, x, x, is_causal=True)
    got = multi_head_attention(x, layer.in_proj_weight, layer.in_proj_bias, layer.out_proj.weight, layer.out_proj.bias, 2)
    print(tr("与 nn.MultiheadAttention 一致 ✓", "matches nn.MultiheadAttention ✓") if np.allclose(got.numpy(), want.numpy(), atol=1e-5)
          else tr("还不一致 ✗", "not yet ✗"))

# check_multi_head()      # uncomment when your function is written
""")

md(zh=r"""
## 小结

| 原文（§3） | 本章的做法 |
|---|---|
| 1. 计算查询、键和值向量 | 在 4 个词上手算 $Q = XW^Q$、$K = XW^K$、$V = XW^V$ |
| 2. 计算注意力分数（点积） | $S = QK^\top$，每个元素的点积都写了出来 |
| 3. 计算注意力权重（softmax） | 按行 softmax，每行和为 1；热力图 |
| 4. 加权求和 | $Z = AV$，与 `F.attention(q, k, v, scale=1.0)` 完全相同；库默认再乘 §4.1 的 $1/\sqrt{d_k}$ |
| 关注输入序列中的其他词 | 权重说明每个词读了哪些词；自注意力不管顺序，所以需要位置嵌入 |
| （掩码） | 因果掩码：后面的词影响不到前面的输出；填充掩码：补齐的句子与不补齐时输出相同 |
| （注意力头） | 自己写的 `Head`（通过 gradcheck）和 `MultiHead`（装入同样权重后等于 `nn.MultiheadAttention`） |
| 反向传播算法 … 计算损失函数的梯度来更新模型参数 | 前向 → 反向 → 更新的循环：直线（手写梯度下降）和注意力（Adam） |
| 交叉熵损失函数 | 手算 = `F.cross_entropy`；梯度 = softmax − one-hot；学会倒序，注意力呈反对角线 |
| 均方误差损失函数 | 手算 = `F.mse_loss`；梯度 $2(\hat y - y)/N$；拟合 $y = 3x - 1$ |

下一章写出公式 $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$ 和链式法则，并亲手推导这里用到的每一个反向传播。
""", en=r"""
## Summary

| the article (§3) | what this chapter did |
|---|---|
| 1. 计算查询、键和值向量 (Q, K, V) | $Q = XW^Q$, $K = XW^K$, $V = XW^V$ by hand on 4 tokens |
| 2. 计算注意力分数 (dot products) | $S = QK^\top$, one dot product written out per entry |
| 3. 计算注意力权重 (softmax) | row-wise softmax, rows sum to 1; heatmap |
| 4. 加权求和 (weighted sum) | $Z = AV$; identical to `F.attention(q, k, v, scale=1.0)`; the library's default adds the $1/\sqrt{d_k}$ of §4.1 |
| 关注输入序列中的其他词 (attend to the other words) | the weights say which words each word reads; self-attention ignores order, hence position embeddings |
| (masks) | causal mask: later tokens cannot influence earlier outputs; padding mask: a padded sentence gives the same outputs as the unpadded one |
| (heads) | our own `Head` (passes gradcheck) and `MultiHead` (equal to `nn.MultiheadAttention` with the same weights) |
| 反向传播算法 (backpropagation updates the parameters) | forward → backward → update loops, for a line (plain gradient descent) and for attention (Adam) |
| 交叉熵损失函数 (cross-entropy) | by hand = `F.cross_entropy`; gradient softmax − one-hot; learned the reversal, anti-diagonal attention |
| 均方误差损失函数 (MSE) | by hand = `F.mse_loss`; gradient $2(\hat y - y)/N$; fitted $y = 3x - 1$ |

Next: chapter 4 writes the formulas — $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$ and the chain
rule — and derives every backward used here by hand.
""")

ch.index(builds=("原文的四个步骤在 4 个词上手算，再用库函数；因果掩码和填充掩码；自己写一个注意力头，再拼成多头（与 "
                 "`nn.MultiheadAttention` 一致）；交叉熵与 MSE；自己的注意力层学会把数字倒序，1 个头对 4 个头",
                 "the article's four steps by hand on 4 tokens, then the library; causal and padding masks; one "
                 "attention head written in cells, then several (equal to `nn.MultiheadAttention`); cross-entropy "
                 "vs MSE; our attention layer learning to reverse digits, one head against four"),
         figures=("倒序：损失 {{rev_loss_first:.3f}} → {{rev_loss_last:.4f}}，准确率 {{rev_acc_last:.3f}}（{{rev_steps}} 步）；"
                  "准确率达到 0.99：1 个头第 {{one_head_at}} 步，4 个头第 {{four_heads_at}} 步",
                  "reversal: loss {{rev_loss_first:.3f}} → {{rev_loss_last:.4f}}, accuracy {{rev_acc_last:.3f}} in "
                  "{{rev_steps}} steps; accuracy 0.99 at step {{one_head_at}} (one head) vs {{four_heads_at}} (four)"))

if __name__ == "__main__":
    ch.build()
