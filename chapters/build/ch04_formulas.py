"""Build chapters/zh/04_formulas.ipynb and chapters/en/04_formulas.ipynb (the article's §4):
the attention formula and why √d_k, the chain rule, an autograd engine written in cells
(scalars, then arrays), the backward of cross-entropy, embedding, GELU, the residual
connection, layer norm and attention derived and checked, and one table that gradchecks every
operation of the library.

    python chapters/build/ch04_formulas.py                    # full run, both editions
    python chapters/build/ch04_formulas.py --fast --out /tmp/ch   # quick check
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Chapter, assignment_task  # noqa: E402

ch = Chapter("04_formulas", number=4, title=("数学模型和公式详细讲解举例说明", "The formulas, explained with examples"),
             sections="§4.1–4.2")
md, code = ch.md, ch.code

# The two engines are written in cells; the prose quotes their length, counted here from the
# cells themselves (so the number cannot drift from the code).
SCALAR_ENGINE = r'''
class Value:
    """A number that remembers how it was made: its inputs, and how to pass a gradient back to them."""

    def __init__(self, data, parents=()):
        self.data, self.grad = float(data), 0.0
        self.parents = parents            # the Values this one was computed from
        self.pass_back = lambda: None     # adds ∂L/∂parent into each parent's .grad

    @staticmethod
    def lift(x):
        return x if isinstance(x, Value) else Value(x)

    def __add__(self, other):
        other = Value.lift(other)
        out = Value(self.data + other.data, (self, other))
        def pass_back():                  # ∂(a+b)/∂a = 1,  ∂(a+b)/∂b = 1
            self.grad += out.grad
            other.grad += out.grad
        out.pass_back = pass_back
        return out

    def __mul__(self, other):
        other = Value.lift(other)
        out = Value(self.data * other.data, (self, other))
        def pass_back():                  # ∂(a·b)/∂a = b,  ∂(a·b)/∂b = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out.pass_back = pass_back
        return out

    def __pow__(self, k):                 # k: a plain number
        out = Value(self.data ** k, (self,))
        def pass_back():                  # ∂(aᵏ)/∂a = k·aᵏ⁻¹
            self.grad += k * self.data ** (k - 1) * out.grad
        out.pass_back = pass_back
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,))
        def pass_back():                  # ∂eᵃ/∂a = eᵃ: the output itself
            self.grad += out.data * out.grad
        out.pass_back = pass_back
        return out

    # everything else is made of the four rules above
    def __neg__(self): return self * -1
    def __sub__(self, other): return self + (-Value.lift(other))
    def __truediv__(self, other): return self * Value.lift(other) ** -1
    def __radd__(self, other): return self + other
    def __rmul__(self, other): return self * other
    def __rsub__(self, other): return Value.lift(other) - self
    def __rtruediv__(self, other): return Value.lift(other) / self

    def parents_first(self):
        """Topological order: every node after all the nodes it was computed from."""
        order, seen = [], set()
        def visit(node):
            if id(node) not in seen:
                seen.add(id(node))
                for parent in node.parents:
                    visit(parent)
                order.append(node)
        visit(self)
        return order

    def backward(self):
        order = self.parents_first()
        for node in order:
            node.grad = 0.0
        self.grad = 1.0                   # ∂L/∂L = 1
        for node in reversed(order):      # a node passes back only after every node that uses it
            node.pass_back()
'''

ARRAY_ENGINE = r'''
def unbroadcast(g, shape):
    """Sum g back to `shape`: over the axes broadcasting added in front, and those it stretched from 1."""
    if g.ndim > len(shape):
        g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True) if stretched else g


class Array:
    """The array twin of Value: each operation stores a vjp(g) → one gradient per parent."""

    def __init__(self, data, parents=(), vjp=None):
        self.data = np.asarray(data, dtype=np.float64)
        self.parents, self.vjp = parents, vjp
        self.grad = None

    parents_first = Value.parents_first   # the same topological sort

    @staticmethod
    def lift(x):
        return x if isinstance(x, Array) else Array(x)

    def __add__(a, b):
        b = Array.lift(b)
        return Array(a.data + b.data, (a, b),
                     lambda g: (unbroadcast(g, a.data.shape), unbroadcast(g, b.data.shape)))

    def __mul__(a, b):
        b = Array.lift(b)
        return Array(a.data * b.data, (a, b),
                     lambda g: (unbroadcast(g * b.data, a.data.shape), unbroadcast(g * a.data, b.data.shape)))

    def __matmul__(a, b):                 # (n, k) @ (k, m): ∂L/∂A = G Bᵀ, ∂L/∂B = Aᵀ G
        return Array(a.data @ b.data, (a, b), lambda g: (g @ b.data.T, a.data.T @ g))

    def sum(self, axis=None, keepdims=False):
        def vjp(g):                       # every summed element receives g
            if axis is not None and not keepdims:
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, self.data.shape),)
        return Array(self.data.sum(axis=axis, keepdims=keepdims), (self,), vjp)

    def exp(self):
        y = np.exp(self.data)
        return Array(y, (self,), lambda g: (g * y,))

    def log(self):
        return Array(np.log(self.data), (self,), lambda g: (g / self.data,))

    def relu(self):
        return Array(np.maximum(self.data, 0.0), (self,), lambda g: (g * (self.data > 0),))

    def __neg__(self): return self * -1.0
    def __sub__(self, other): return self + (-Array.lift(other))

    def backward(self):
        waiting = {id(self): np.ones_like(self.data)}          # ∂L/∂L = 1
        for node in reversed(self.parents_first()):
            node.grad = waiting.pop(id(node), None)
            if node.grad is None or node.vjp is None:
                continue
            for parent, g in zip(node.parents, node.vjp(node.grad)):
                waiting[id(parent)] = waiting.get(id(parent), 0.0) + g   # several paths: gradients add
'''


def lines_of(source):
    return sum(1 for line in source.strip().splitlines() if line.strip())


SCALAR_LINES, ARRAY_LINES = lines_of(SCALAR_ENGINE), lines_of(ARRAY_ENGINE)
ENGINE_LINES = SCALAR_LINES + ARRAY_LINES

# ============================================================================ title
md(zh=r"""
# 4 · 数学模型和公式详细讲解举例说明

> **原文 §4.1 自注意力机制**：自注意力机制的计算公式如下：
> $$ Attention(Q, K, V) = softmax(\frac{QK^T}{\sqrt{d_k}})V $$
> 其中：$Q$ 是查询矩阵，$K$ 是键矩阵，$V$ 是值矩阵，$d_k$ 是键向量的维度。
>
> **原文 §4.2 反向传播算法**：反向传播算法的计算公式如下：
> $$ \frac{\partial L}{\partial w} = \frac{\partial L}{\partial y} \frac{\partial y}{\partial z} \frac{\partial z}{\partial w} $$
> 其中：$L$ 是损失函数，$w$ 是模型参数，$y$ 是模型输出，$z$ 是中间变量。

训练一个 Transformer，靠的就是这两个公式：注意力负责计算，链式法则 (chain rule) 负责算出怎样把计算改好。
本章把两个公式都拆开来看，并且**亲手写出**让链式法则自动运转的那台机器。

**你会亲手搭建**

1. 注意力公式：五行 NumPy，与 `F.scaled_dot_product_attention` 完全一致；再用三个测量说明**为什么要除以 $\sqrt{d_k}$**。
2. 链式法则：在一个三步的小计算图 (computational graph) 上逐个因子手算，与 tinyllm 的梯度 (gradient)、有限差分并排对照，
   并把 tinyllm 自己记录下的图画出来。
3. **一个 """ + str(ENGINE_LINES) + r""" 行的自动求导 (automatic differentiation) 引擎**：先是标量版 `Value`（""" + str(SCALAR_LINES) + r""" 行），
   再是数组版 `Array`（""" + str(ARRAY_LINES) + r""" 行），包括拓扑排序 (topological sort) 和 `backward`；
   用它训练一个小网络，梯度和损失曲线都与 tinyllm 逐位对照。
4. **手推反向传播 (backpropagation)**：矩阵乘法、softmax、**softmax 与交叉熵 (cross-entropy) 合在一起的梯度 $p - \mathrm{onehot}$**、
   **嵌入 (embedding)**、**GELU**、**残差连接 (residual connection)**、**层归一化 (layer normalization)**、注意力，每一个都推导出公式，再用数值方法验证。
5. **一张表**：对库里的每一个运算（每个 `tl.Function`）做 float64 梯度检查 (gradient check)，列出通过与否和最大误差；
   再看梯度检查怎样抓住一个故意写错的反向传播。

完整运行约 {{run_seconds:.0f}} 秒（{{run_cores}} 核 CPU）；设置 `TINYLLM_FAST=1` 时几秒钟即可跑完。
""", en=r"""
# 4 · 数学模型和公式详细讲解举例说明 — The formulas, explained with examples

> **The article, §4.1 自注意力机制 (self-attention)**: 自注意力机制的计算公式如下：
> $$ Attention(Q, K, V) = softmax(\frac{QK^T}{\sqrt{d_k}})V $$
> 其中：$Q$ 是查询矩阵，$K$ 是键矩阵，$V$ 是值矩阵，$d_k$ 是键向量的维度。
> (where $Q$ is the query matrix, $K$ the key matrix, $V$ the value matrix and $d_k$ the
> dimension of the key vectors.)
>
> **The article, §4.2 反向传播算法 (backpropagation)**: 反向传播算法的计算公式如下：
> $$ \frac{\partial L}{\partial w} = \frac{\partial L}{\partial y} \frac{\partial y}{\partial z} \frac{\partial z}{\partial w} $$
> 其中：$L$ 是损失函数，$w$ 是模型参数，$y$ 是模型输出，$z$ 是中间变量。
> ($L$ is the loss, $w$ a parameter, $y$ the model's output, $z$ an intermediate variable.)

Two formulas carry the whole of training a Transformer: the attention that computes, and the
chain rule that computes how to improve it. This chapter takes each apart, and **writes the
machine** that runs the chain rule automatically.

**What you will build**

1. The attention formula as five lines of NumPy, equal to `F.scaled_dot_product_attention`,
   and three measurements of **why it divides by $\sqrt{d_k}$**.
2. The chain rule on a three-step computational graph: each factor by hand, next to tinyllm's
   gradient and a finite difference, and the graph tinyllm recorded, drawn.
3. **An autograd engine of """ + str(ENGINE_LINES) + r""" lines**: for scalars (`Value`, """ + str(SCALAR_LINES) + r""" lines),
   then for arrays (`Array`, """ + str(ARRAY_LINES) + r""" lines), topological sort and `backward` included;
   it trains a small network with the same gradients and loss curve as tinyllm.
4. **Backward passes derived by hand**: matrix product, softmax, **softmax and cross-entropy
   together ($p - \mathrm{onehot}$)**, **embedding**, **GELU**, **the residual connection**,
   **layer norm** and attention, each derived and checked numerically.
5. **One table** that gradchecks every operation of the library (every `tl.Function`) in
   float64 — pass or fail and the largest error — and the check catching a deliberately
   wrong backward.

A full run takes about {{run_seconds:.0f}} seconds on {{run_cores}} CPU cores; with `TINYLLM_FAST=1` a few seconds.
""")

ch.setup(r"""
import tinyllm.functional as F
from IPython.display import Markdown, display
np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)
""")

# ============================================================================ 4.1
md(zh=r"""
## 4.1 自注意力机制

从里往外读这个公式。设有 $n$ 个查询、$m$ 个键和值：

| 部分 | 形状 | 含义 |
|---|---|---|
| $Q$ | $n \times d_k$ | 每行一个查询 |
| $K$ | $m \times d_k$ | 每行一个键 |
| $V$ | $m \times d_v$ | 每行一个值 |
| $S = QK^\top/\sqrt{d_k}$ | $n \times m$ | 每个查询对每个键的分数，已缩放 |
| $P = \mathrm{softmax}(S)$ | $n \times m$ | 第 $i$ 行：查询 $i$ 怎样分配它的注意力；每行之和为 1 |
| $O = PV$ | $n \times d_v$ | 第 $i$ 行：值向量 (value vector) 按 $P$ 的第 $i$ 行加权平均 |

写成代码，表里的每一行就是一行：
""", en=r"""
## 4.1 自注意力机制 — $\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$

Read the formula inside out, with $n$ queries and $m$ keys and values:

| piece | shape | meaning |
|---|---|---|
| $Q$ | $n \times d_k$ | one query per row |
| $K$ | $m \times d_k$ | one key per row |
| $V$ | $m \times d_v$ | one value per row |
| $S = QK^\top/\sqrt{d_k}$ | $n \times m$ | every query's score against every key, scaled |
| $P = \mathrm{softmax}(S)$ | $n \times m$ | row $i$: how query $i$ divides its attention; each row sums to 1 |
| $O = PV$ | $n \times d_v$ | row $i$: the $P$-weighted average of the values |

In code, one line per row of the table:
""")

code(r"""
def attention_numpy(Q, K, V):
    d_k = K.shape[-1]
    S = Q @ K.swapaxes(-1, -2) / np.sqrt(d_k)             # QKᵀ/√d_k          (n, m)
    S = S - S.max(axis=-1, keepdims=True)                  # (softmax ignores a shift; no overflow)
    P = np.exp(S) / np.exp(S).sum(axis=-1, keepdims=True)  # softmax per row   (n, m)
    return P @ V                                           # weighted sum      (n, d_v)

Q, K, V = rng.standard_normal((5, 16)), rng.standard_normal((7, 16)), rng.standard_normal((7, 8))
ours = attention_numpy(Q, K, V)
library = F.scaled_dot_product_attention(tl.Tensor(Q), tl.Tensor(K), tl.Tensor(V))
print("Q", Q.shape, "K", K.shape, "V", V.shape, "→", ours.shape)
print(tr("五行 NumPy == F.scaled_dot_product_attention：", "five lines of NumPy == F.scaled_dot_product_attention:"),
      np.allclose(ours, library.numpy()))
""")

md(zh=r"""
### 为什么除以 $\sqrt{d_k}$？（一）点积 (dot product) 的方差

设查询 $q$ 和键 $k$ 的各个分量相互独立、均值为 0、方差为 1（层归一化和合理的初始化大致给出这样的数）。
每个乘积 $q_c k_c$ 的均值是 0，方差是 $\mathbb E[q_c^2]\,\mathbb E[k_c^2] = 1$，而 $d_k$ 个乘积相互独立，所以

$$
\mathbb E[q \cdot k] = 0, \qquad \mathrm{Var}(q \cdot k) = \sum_{c=1}^{d_k} \mathrm{Var}(q_c k_c) = d_k,
\qquad \mathrm{Var}\!\left(\frac{q \cdot k}{\sqrt{d_k}}\right) = 1 .
$$

分数的离散程度随 $\sqrt{d_k}$ 增长；除以 $\sqrt{d_k}$ 把它拉回到 1，与头的宽度无关。做个实验：
""", en=r"""
### Why divide by $\sqrt{d_k}$? (1) The variance of a dot product

Suppose the components of a query $q$ and a key $k$ are independent with mean 0 and variance 1
(roughly what layer norm and a sensible initialisation give). Each product $q_c k_c$ has mean 0
and variance $\mathbb E[q_c^2]\,\mathbb E[k_c^2] = 1$, and the $d_k$ products are independent, so

$$
\mathbb E[q \cdot k] = 0, \qquad \mathrm{Var}(q \cdot k) = \sum_{c=1}^{d_k} \mathrm{Var}(q_c k_c) = d_k,
\qquad \mathrm{Var}\!\left(\frac{q \cdot k}{\sqrt{d_k}}\right) = 1 .
$$

The scores' spread grows like $\sqrt{d_k}$; dividing by $\sqrt{d_k}$ brings it back to 1,
whatever the head size. The experiment:
""")

code(r"""
dims = 2 ** np.arange(0, 11)                           # d_k = 1 … 1024
pairs = 2_000 if FAST else 20_000
raw_var, scaled_var = [], []
for d in dims:
    q, k = rng.standard_normal((pairs, d)), rng.standard_normal((pairs, d))
    dots = (q * k).sum(axis=1)
    raw_var.append(dots.var()); scaled_var.append((dots / np.sqrt(d)).var())

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.loglog(dims, raw_var, "o-", label="Var(q·k)")
ax.loglog(dims, scaled_var, "s-", label="Var(q·k / √d_k)")
ax.loglog(dims, dims, "k:", label="d_k")
ax.set_xlabel("d_k"); ax.set_ylabel(tr("随机向量对上的方差", "variance over random pairs")); ax.legend()
plt.tight_layout(); plt.show()
for d, r, s in list(zip(dims, raw_var, scaled_var))[::2]:
    print(f"d_k = {d:5d}   Var(q·k) = {r:8.1f}   Var(q·k/√d_k) = {s:.3f}")
record(var_1024=float(raw_var[-1]), scaled_var_1024=float(scaled_var[-1]))
""", alt=(
    "双对数折线图：随机向量点积 q·k 的方差随头的维度 d_k（1 到 1024）"
    "的变化。不缩放的方差 Var(q·k) 沿着表示 d_k 的点线上升，"
    "d_k = 1024 时达到 {{var_1024:.0f}}；"
    "缩放后的 Var(q·k/√d_k) 对每个 d_k 都平稳地停在 1（1024 时为 {{scaled_var_1024:.3f}}）。",
    "Log-log line chart of the variance of the dot product q·k of random vectors against the head "
    "size d_k, from 1 to 1024. The unscaled variance, Var(q·k), climbs along the dotted line d_k and "
    "reaches {{var_1024:.0f}} at d_k = 1024; the scaled one, Var(q·k/√d_k), stays flat at 1 for every "
    "d_k ({{scaled_var_1024:.3f}} at 1024)."))

md(zh=r"""
$d_k = 1024$ 时点积的方差是 {{var_1024:.0f}}，缩放后是 {{scaled_var_1024:.3f}}。

### （二）不缩放，softmax 就会饱和

离散程度为 $\sqrt{d_k}$ 的分数会让 softmax 几乎只选最大的那一项：$e^{30}$ 旁边的 $e^{10}$ 什么也分不到。
对 32 个键，我们测量每一行最大权重的平均值，以及每一行的熵（除以均匀分布的熵 $\ln 32$）：
""", en=r"""
At $d_k = 1024$ the dot products have variance {{var_1024:.0f}}; scaled, {{scaled_var_1024:.3f}}.

### (2) Without the scaling, the softmax saturates

Scores with a spread of $\sqrt{d_k}$ make the softmax pick its largest entry almost
exclusively: $e^{30}$ beside $e^{10}$ leaves nothing for the rest. For 32 keys we measure the
average largest weight of a row and the entropy of the rows (relative to the uniform row's $\ln 32$):
""")

code(r"""
def softmax_np(S):
    E = np.exp(S - S.max(axis=-1, keepdims=True))
    return E / E.sum(axis=-1, keepdims=True)

n_keys, n_queries = 32, 64 if FAST else 256
stats = {"raw": {"max": [], "entropy": []}, "scaled": {"max": [], "entropy": []}}
for d in dims:
    q, k = rng.standard_normal((n_queries, d)), rng.standard_normal((n_keys, d))
    for name, S in (("raw", q @ k.T), ("scaled", q @ k.T / np.sqrt(d))):
        P = softmax_np(S)
        stats[name]["max"].append(P.max(axis=1).mean())
        stats[name]["entropy"].append((-(P * np.log(P + 1e-30)).sum(axis=1)).mean() / np.log(n_keys))

fig, axes = plt.subplots(1, 2, figsize=(9, 3))
for name, style in (("raw", "o-"), ("scaled", "s-")):
    label = "softmax(QKᵀ)" if name == "raw" else "softmax(QKᵀ/√d_k)"
    axes[0].semilogx(dims, stats[name]["max"], style, label=label, base=2)
    axes[1].semilogx(dims, stats[name]["entropy"], style, label=label, base=2)
axes[0].set_ylabel(tr("每行最大权重的平均值", "mean of the largest weight")); axes[1].set_ylabel(tr("熵 / ln 32", "entropy / ln 32"))
for ax in axes:
    ax.set_xlabel("d_k"); ax.legend()
plt.tight_layout(); plt.show()
i64 = list(dims).index(64)
record(max_raw_64=float(stats["raw"]["max"][i64]), max_scaled_64=float(stats["scaled"]["max"][i64]))
print(tr(f"d_k = 64：最大权重，不缩放 {stats['raw']['max'][i64]:.2f}，缩放 {stats['scaled']['max'][i64]:.2f}",
         f"d_k = 64: largest weight {stats['raw']['max'][i64]:.2f} unscaled vs {stats['scaled']['max'][i64]:.2f} scaled"))
""", alt=(
    "两幅以 d_k（1 到 1024，对数刻度）为横轴的折线图，"
    "每行 32 个键；蓝色圆点是不缩放的 softmax(QKᵀ)，"
    "橙色方块是缩放后的 softmax(QKᵀ/√d_k)。"
    "左：每行最大权重的平均值。不缩放时它随 d_k 增大一路升向 1（d_k = 64 时为 {{max_raw_64:.0%}}），"
    "几乎全部权重都给了一个键；缩放后它一直又低又平（64 时为 {{max_scaled_64:.0%}}）。"
    "右：每行的熵除以 ln 32。不缩放时一路降向 0，缩放后始终平稳。",
    "Two line charts against d_k (1 to 1024, log scale) for rows of 32 keys, the unscaled "
    "softmax(QKᵀ) as blue circles and the scaled softmax(QKᵀ/√d_k) as orange squares. Left, the mean "
    "largest weight of a row: unscaled, it climbs towards 1 as d_k grows ({{max_raw_64:.0%}} at d_k = "
    "64), so one key takes almost all the weight; scaled, it stays low and flat "
    "({{max_scaled_64:.0%}} at 64). Right, the row's entropy divided by ln 32: unscaled, it falls "
    "towards 0; scaled, it stays level."))

md(zh=r"""
$d_k = 64$（GPT-2 每个头的宽度）时，不缩放的行平均把 {{max_raw_64:.0%}} 的权重给了一个键，缩放后是 {{max_scaled_64:.0%}}。

### （三）饱和的 softmax 几乎传不回梯度

softmax 的导数（下面会推导）是 $\partial p_i / \partial s_j = p_i(\delta_{ij} - p_j)$。一行接近 one-hot 时，
对所有 $i, j$ 都有 $p_i(\delta_{ij}-p_j) \approx 0$：不管损失怎么说，分数以及 $W^Q$、$W^K$ 都几乎不动。
用 tinyllm 的反向传播测量：把分数 $S$ 当作叶子张量，$L = \sum G \odot \mathrm{softmax}(S)$（$G$ 随机），看 $|\partial L/\partial S|$ 的平均值：
""", en=r"""
At $d_k = 64$ (GPT-2's head size) an unscaled row gives {{max_raw_64:.0%}} of its weight to one key on
average; scaled, {{max_scaled_64:.0%}}.

### (3) …and a saturated softmax passes back (almost) no gradient

The derivative of the softmax (derived below) is $\partial p_i / \partial s_j = p_i(\delta_{ij} - p_j)$.
When a row is nearly one-hot, $p_i(\delta_{ij}-p_j) \approx 0$ for every $i, j$: whatever the
loss says, the scores — and so $W^Q$ and $W^K$ — hardly move. Measured with tinyllm's
backward: scores $S$ as a leaf tensor, $L = \sum G \odot \mathrm{softmax}(S)$ with a random
$G$, and the mean $|\partial L/\partial S|$:
""")

code(r"""
grad_size = {"raw": [], "scaled": []}
for d in dims:
    q, k = rng.standard_normal((n_queries, d)), rng.standard_normal((n_keys, d))
    G = tl.Tensor(rng.standard_normal((n_queries, n_keys)))
    for name, S in (("raw", q @ k.T), ("scaled", q @ k.T / np.sqrt(d))):
        scores = tl.Tensor(S, requires_grad=True)
        (F.softmax(scores, axis=-1) * G).sum().backward()
        grad_size[name].append(np.abs(scores.grad).mean())

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.loglog(dims, grad_size["raw"], "o-", label="softmax(QKᵀ)", base=2)
ax.loglog(dims, grad_size["scaled"], "s-", label="softmax(QKᵀ/√d_k)", base=2)
ax.set_xlabel("d_k"); ax.set_ylabel(tr("|∂L/∂S| 的平均值", "mean |∂L/∂S|")); ax.legend(); plt.tight_layout(); plt.show()
ratio = {d: grad_size["scaled"][list(dims).index(d)] / grad_size["raw"][list(dims).index(d)] for d in (64, 1024)}
record(grad_ratio_64=float(ratio[64]), grad_ratio_1024=float(ratio[1024]))
for d in (64, 1024):
    print(tr(f"d_k = {d:4d}：缩放后传到分数上的梯度是不缩放时的 {ratio[d]:.0f} 倍",
             f"d_k = {d:4d}: the gradient reaching the scores is {ratio[d]:.0f}× larger with the scaling"))
""", alt=(
    "双对数折线图：传到分数上的梯度大小（|∂L/∂S| 的平均值）"
    "随 d_k（1 到 1024）的变化。缩放后的 softmax(QKᵀ/√d_k)（橙色方块）"
    "是一条水平线；不缩放的 softmax(QKᵀ)（蓝色圆点）"
    "随 d_k 增大一路下降。d_k = 64 时缩放后的梯度大 {{grad_ratio_64:.0f}} "
    "倍，1024 时大 {{grad_ratio_1024:.0f}} 倍。",
    "Log-log line chart of the size of the gradient reaching the scores, the mean |∂L/∂S|, against "
    "d_k from 1 to 1024. With the scaling, softmax(QKᵀ/√d_k) (orange squares), it is a flat line; "
    "without it, softmax(QKᵀ) (blue circles), it falls steadily as d_k grows. The scaled gradient is "
    "{{grad_ratio_64:.0f}}× larger at d_k = 64 and {{grad_ratio_1024:.0f}}× larger at 1024."))

md(zh=r"""
缩放后传到分数上的梯度，$d_k = 64$ 时大 {{grad_ratio_64:.0f}} 倍，$d_k = 1024$ 时大 {{grad_ratio_1024:.0f}} 倍。
这就是原文公式里 $\sqrt{d_k}$ 的理由：不论头多宽，分数都保持在单位尺度上，softmax 保持“软”，也就保持可训练。
（这个因子是与方差论证相符的约定；也有模型把一个学出来的温度 (temperature) 并进 $W^Q$。）

## 4.2 反向传播算法

### 小图上的一条路径

原文的公式有四个量：参数 (parameter) $w$、中间变量 $z$、输出 $y$ 和损失 $L$。同时具备这四者的最小模型，是一个带 sigmoid 的神经元加平方误差：

$$ z = w\,x + b, \qquad y = \sigma(z) = \frac{1}{1+e^{-z}}, \qquad L = (y - t)^2 $$

输入 $x = 1.5$，目标 $t = 1$，参数 $w = 0.8$、$b = -0.5$。链式法则的每个因子，都是其中一行的导数：

$$
\underbrace{\frac{\partial L}{\partial y} = 2(y - t)}_{\text{损失}}, \qquad
\underbrace{\frac{\partial y}{\partial z} = \sigma(z)\,(1-\sigma(z)) = y(1-y)}_{\text{sigmoid}}, \qquad
\underbrace{\frac{\partial z}{\partial w} = x}_{\text{线性}}
\qquad\Longrightarrow\qquad
\frac{\partial L}{\partial w} = 2(y-t)\cdot y(1-y)\cdot x
$$
""", en=r"""
With the scaling, the gradient reaching the scores is {{grad_ratio_64:.0f}}× larger at $d_k = 64$ and
{{grad_ratio_1024:.0f}}× larger at $d_k = 1024$. That is the reason for the $\sqrt{d_k}$ in the article's
formula: it keeps the scores at unit scale for every head size, so the softmax stays soft and
trainable. (The factor is a convention that matches the variance argument; some models fold a
learned temperature into $W^Q$ instead.)

## 4.2 反向传播算法 — The chain rule

### One path through a small graph

The article's formula names four things: a parameter $w$, an intermediate $z$, the output $y$
and the loss $L$. The smallest model that has all four — one neuron with a sigmoid and a
squared error:

$$ z = w\,x + b, \qquad y = \sigma(z) = \frac{1}{1+e^{-z}}, \qquad L = (y - t)^2 $$

with input $x = 1.5$, target $t = 1$, and parameters $w = 0.8$, $b = -0.5$. Each factor of the
chain rule is the derivative of one line:

$$
\underbrace{\frac{\partial L}{\partial y} = 2(y - t)}_{\text{loss}}, \qquad
\underbrace{\frac{\partial y}{\partial z} = \sigma(z)\,(1-\sigma(z)) = y(1-y)}_{\text{sigmoid}}, \qquad
\underbrace{\frac{\partial z}{\partial w} = x}_{\text{linear}}
\qquad\Longrightarrow\qquad
\frac{\partial L}{\partial w} = 2(y-t)\cdot y(1-y)\cdot x
$$
""")

code(r"""
x_val, t_val, w_val, b_val = 1.5, 1.0, 0.8, -0.5
z_val = w_val * x_val + b_val
y_val = 1 / (1 + math.exp(-z_val))
L_val = (y_val - t_val) ** 2
dL_dy, dy_dz, dz_dw = 2 * (y_val - t_val), y_val * (1 - y_val), x_val
print(tr("前向：", "forward: "), f"z = {z_val:.4f}   y = {y_val:.4f}   L = {L_val:.6f}")
print(tr("因子：", "factors: "), f"∂L/∂y = {dL_dy:.4f}   ∂y/∂z = {dy_dz:.4f}   ∂z/∂w = {dz_dw:.4f}")
print(tr("手算：", "by hand: "), f"∂L/∂w = {dL_dy:.4f} × {dy_dz:.4f} × {dz_dw:.4f} = {dL_dy * dy_dz * dz_dw:.6f}")
record(dL_dw_by_hand=dL_dy * dy_dz * dz_dw)
""")

md(zh=r"""
同一个图放进 tinyllm。`retain_grad()` 让中间张量也保留梯度（平时只有叶子张量保留），于是能看到每个部分乘积依次到达：
""", en=r"""
Now the same graph in tinyllm. `retain_grad()` keeps the gradients of the intermediate tensors
(normally only leaves keep theirs), so we can see each partial product arrive:
""")

code(r"""
f64 = np.float64
x = tl.Tensor(x_val, dtype=f64); x.name = "x"
t = tl.Tensor(t_val, dtype=f64); t.name = "t"
w = tl.Tensor(w_val, dtype=f64, requires_grad=True); w.name = "w"
b = tl.Tensor(b_val, dtype=f64, requires_grad=True); b.name = "b"

z = w * x + b;        z.name = "z"
y = F.sigmoid(z);     y.name = "y"
L = (y - t) ** 2;     L.name = "L"
for node in (z, y):
    node.retain_grad()
L.backward()

print(f"∂L/∂y = {y.grad.item():.6f}   ({tr('手算', 'by hand')} {dL_dy:.6f})")
print(f"∂L/∂z = {z.grad.item():.6f}   ({tr('手算', 'by hand')} ∂L/∂y·∂y/∂z = {dL_dy * dy_dz:.6f})")
print(f"∂L/∂w = {w.grad.item():.6f}   ({tr('手算', 'by hand')} ∂L/∂y·∂y/∂z·∂z/∂w = {dL_dy * dy_dz * dz_dw:.6f})")
print(f"∂L/∂b = {b.grad.item():.6f}   " + tr("（∂z/∂b = 1，所以与 ∂L/∂z 相同）", "(∂z/∂b = 1, so the same as ∂L/∂z)"))

def loss_at(w_value):
    zz = w_value * x_val + b_val
    return (1 / (1 + math.exp(-zz)) - t_val) ** 2
eps = 1e-6
print(tr("有限差分", "finite difference"), f"(L(w+ε) − L(w−ε)) / 2ε = {(loss_at(w_val + eps) - loss_at(w_val - eps)) / (2 * eps):.6f}")
""")

md(zh=r"""
### tinyllm 记录下的计算图

每个由运算得到的张量都在 `._ctx` 里记着那个运算（一个 `Function`），运算又在 `.inputs` 里记着它的输入。
从 $L$ 出发沿这些链接往回走，就能找到整个图——这正是 `backward()` 开始计算之前做的事。
下面这个小函数沿着链接走一遍，并按离损失的远近把节点排开画出来：
""", en=r"""
### The graph, as tinyllm recorded it

Every tensor made by an operation remembers that operation in `._ctx` (a `Function`), and the
function remembers its inputs in `.inputs`. Walking those links back from $L$ finds the whole
graph — exactly what `backward()` does before it runs. Here is a small drawing routine that
does the walk and lays the nodes out by their distance from the loss:
""")

code(r"""
def walk_graph(root):
    # tensors reachable from root through ._ctx.inputs; edges (input, output)
    nodes, edges, stack, seen = [], [], [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node)); nodes.append(node)
        if node._ctx is not None:
            for parent in node._ctx.inputs:
                edges.append((parent, node)); stack.append(parent)
    return nodes, edges

def describe(node, show_values):
    value = np.asarray(node.data)
    if node._ctx is None:           # a leaf: a parameter, an input, or a constant
        head = node.name or ("const" if not node.requires_grad else "param")
    else:
        head = type(node._ctx).__name__ + (f" → {node.name}" if node.name else "")
    if value.ndim == 0 and (show_values or node._ctx is None):
        text = f"{head}\n= {value.item():.4g}"
        if show_values and node.grad is not None:
            text += f"\ngrad {np.asarray(node.grad).item():.4g}"
        return text
    return f"{head}\n{tuple(value.shape)}" if value.ndim else head

BOX_W, BOX_H = 0.74, 0.62           # box size in data units (columns are 1 apart)

def box_edge(center, toward):
    # the point where the segment center → toward leaves the box around center
    dx, dy = toward[0] - center[0], toward[1] - center[1]
    scale = min(BOX_W / 2 / abs(dx) if dx else np.inf, BOX_H / 2 / abs(dy) if dy else np.inf)
    return center[0] + dx * scale, center[1] + dy * scale

def draw_graph(root, ax, title="", show_values=True):
    nodes, edges = walk_graph(root)
    depth = {id(n): 0 for n in nodes}
    for _ in range(len(nodes)):                     # longest distance from the root
        for parent, child in edges:
            depth[id(parent)] = max(depth[id(parent)], depth[id(child)] + 1)
    columns = {}
    for n in nodes:
        columns.setdefault(depth[id(n)], []).append(n)
    deepest = max(columns)
    position = {}
    for d, members in columns.items():             # the root on the right, leaves to the left
        for i, n in enumerate(members):
            position[id(n)] = (deepest - d, 1.1 * ((len(members) - 1) / 2 - i))
    for parent, child in edges:
        a, b_ = position[id(parent)], position[id(child)]
        ax.annotate("", xy=box_edge(b_, a), xytext=box_edge(a, b_),
                    arrowprops=dict(arrowstyle="->", color="#555", lw=1, shrinkA=0, shrinkB=0))
    for n in nodes:
        leaf = n._ctx is None
        color = "#f6d9c3" if (leaf and n.requires_grad) else "#eeeeee" if leaf else "#dde8f6"
        x0, y0 = position[id(n)]
        ax.add_patch(plt.matplotlib.patches.FancyBboxPatch(
            (x0 - BOX_W / 2, y0 - BOX_H / 2), BOX_W, BOX_H, boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=color, edgecolor="#444", lw=0.8))
        ax.text(x0, y0, describe(n, show_values), ha="center", va="center", fontsize=7.5)
    ys = [p[1] for p in position.values()]
    ax.set_xlim(-0.5, deepest + 0.5); ax.set_ylim(min(ys) - 0.5, max(ys) + 0.5)
    ax.axis("off"); ax.set_title(title, fontsize=9)
    return len(nodes)

fig, ax = plt.subplots(figsize=(10, 3.4))
draw_graph(L, ax, tr("z = w·x + b,  y = σ(z),  L = (y − t)²（橙色：参数；蓝色：运算）",
                     "z = w·x + b,  y = σ(z),  L = (y − t)²   (orange: parameters; blue: operations)"))
plt.tight_layout(); plt.show()
""", alt=(
    "tinyllm 记录下的 z = w·x + b、y = σ(z)、L = (y − t)² "
    "的计算图，从左到右是用箭头连起来的方框：灰色的叶子 x = 1.5 和 t = 1，"
    "橙色的参数 w = 0.8 和 b = −0.5，蓝色的运算 Mul、Add → z、Sigmoid "
    "→ y、Sub、Pow → L。每个方框标出它的值，需要梯度的还标出梯度："
    "w 的梯度是 {{dL_dw_by_hand:.4f}}，"
    "b 的梯度和 z 的相同（Add 把梯度原样传下去）。",
    "The computational graph of z = w·x + b, y = σ(z), L = (y − t)², as tinyllm recorded it, drawn "
    "left to right as boxes joined by arrows: the leaves x = 1.5 and t = 1 in grey, the parameters w "
    "= 0.8 and b = −0.5 in orange, the operations Mul, Add → z, Sigmoid → y, Sub and Pow → L in blue. "
    "Each box shows its value, and those that need one their gradient: w's is {{dL_dw_by_hand:.4f}}, "
    "and b's equals z's (Add passes the gradient on unchanged)."))

md(zh=r"""
从右往左读这张图，就是反向传播：$L$ 从 $\partial L/\partial L = 1$ 开始；`Pow` 乘上 $2(y-t)$；`Sub` 原样传过去；
`Sigmoid` 乘上 $y(1-y)$；`Add` 把同一个梯度交给两个加数（所以 $\partial L/\partial b = \partial L/\partial z$）；
`Mul` 乘上*另一个*因子 $x$，得到 $\partial L/\partial w$。每个运算只需要知道自己的局部导数——
所以一个自动求导引擎可以由几十条小规则搭起来。

### 多条路径：梯度相加

原文的三个因子相乘，沿的是从 $w$ 到 $L$ 的一条路径。一个量沿几条路径到达损失时，链式法则对所有路径求和：

$$ \frac{\partial L}{\partial w} = \sum_{\text{从 } w \text{ 到 } L \text{ 的路径}} \ \prod_{\text{路径上的边}} \frac{\partial\,\text{终点}}{\partial\,\text{起点}} $$

例子：$u = w x$，$L = u\,w$（即 $L = w^2 x$）。经过 $u$ 的路径给出 $x \cdot w$，直接的路径给出 $u$，和是 $2wx$：
""", en=r"""
Read the drawing from right to left and you have backpropagation: $L$ starts with
$\partial L/\partial L = 1$; `Pow` multiplies by $2(y-t)$; `Sub` passes it through; `Sigmoid`
multiplies by $y(1-y)$; `Add` hands the same gradient to both summands (so
$\partial L/\partial b = \partial L/\partial z$); `Mul` multiplies by the *other* factor, $x$,
to give $\partial L/\partial w$. Each operation only needs its own local derivative — which is
why an autograd engine can be built from a few dozen small rules.

### Several paths: the gradients add

The article's product of three factors follows one path from $w$ to $L$. When a value reaches
the loss along several paths, the chain rule sums over them:

$$ \frac{\partial L}{\partial w} = \sum_{\text{paths } w \to L} \ \prod_{\text{edges on the path}} \frac{\partial\,\text{head}}{\partial\,\text{tail}} $$

Example: $u = w x$, $L = u\,w$ (so $L = w^2 x$). The path through $u$ gives $x \cdot w$; the
direct path gives $u$; the sum is $2wx$:
""")

code(r"""
w2 = tl.Tensor(0.8, dtype=f64, requires_grad=True); w2.name = "w"
u = w2 * x; u.name = "u"
L2 = u * w2; L2.name = "L"
L2.backward()
print(f"tinyllm: ∂L/∂w = {w2.grad.item():.4f};  " + tr("手算", "by hand") +
      f": x·w + u = {x_val * 0.8:.4f} + {x_val * 0.8:.4f} = {2 * 0.8 * x_val:.4f}")
""")

# ============================================================================ engine
md(zh=r"""
### 自己写一个自动求导引擎：标量

现在把 tinyllm 的引擎拆掉，自己写一台。只需要三样东西：

1. 每个数记住**它是由哪些数算出来的**（`parents`），以及**怎样把梯度传回给它们**（`pass_back`，也就是这个运算的局部导数）；
2. 一个**拓扑排序**：把图里的节点排成一列，每个节点都排在算出它的那些节点之后；
3. `backward`：从 $\partial L/\partial L = 1$ 开始，**倒着**走这一列，每个节点把自己的梯度传给父节点。
   倒序保证一个节点开始往回传时，所有用到它的节点都已经把梯度交给它了。

传梯度用 `+=`：一个数被用了两次（上面的 $w$），两条路径的贡献就加在一起。
下面是整个标量引擎，共 """ + str(SCALAR_LINES) + r""" 行（不算空行）：
""", en=r"""
### An autograd engine of our own: scalars

Now take tinyllm's engine apart and write one. It needs three things:

1. every number remembers **which numbers it was computed from** (`parents`) and **how to pass
   a gradient back to them** (`pass_back`: the operation's local derivative);
2. a **topological sort**: the nodes of the graph in a row, each after the nodes it was
   computed from;
3. `backward`: start from $\partial L/\partial L = 1$ and walk that row **backwards**, each
   node passing its gradient to its parents. Walking backwards guarantees that when a node
   passes back, every node that used it has already handed it its share.

Gradients are passed with `+=`: a number used twice ($w$ above) collects both paths'
contributions. The whole scalar engine, """ + str(SCALAR_LINES) + r""" lines without the blank ones:
""")

code(SCALAR_ENGINE)

code(r"""
# the neuron of §4.2, in our engine: the sigmoid is built from exp, +, and /
xv, tv, wv, bv = Value(x_val), Value(t_val), Value(w_val), Value(b_val)
zv = wv * xv + bv
yv = 1 / (1 + (-zv).exp())
Lv = (yv - tv) ** 2
Lv.backward()
print(tr("我们的引擎：", "our engine: "), f"L = {Lv.data:.6f}   ∂L/∂w = {wv.grad:.6f}   ∂L/∂b = {bv.grad:.6f}")
print(tr("tinyllm：   ", "tinyllm:    "), f"L = {L.item():.6f}   ∂L/∂w = {w.grad.item():.6f}   ∂L/∂b = {b.grad.item():.6f}")
w2v = Value(0.8)
(w2v * x_val * w2v).backward()                        # L = w·x·w: two paths from w
print(tr("两条路径（L = w²x）：", "two paths (L = w²x): "), f"∂L/∂w = {w2v.grad:.4f}  (tinyllm {w2.grad.item():.4f})")
print(tr(f"图里的节点数：{len(Lv.parents_first())}，按拓扑顺序：", f"nodes in the graph: {len(Lv.parents_first())}, in topological order:"),
      [f"{n.data:.3g}" for n in Lv.parents_first()])
record(engine_scalar_gap=max(abs(wv.grad - w.grad.item()), abs(bv.grad - b.grad.item())))
""")

md(zh=r"""
我们的引擎与 tinyllm 的梯度相差 {{engine_scalar_gap:.1e}}。注意 sigmoid 不是一条规则：它由 `exp`、`+` 和 `/` 拼成，
引擎自己把这几条规则串起来，就得到了 $y(1-y)$。

### 从标量到数组

神经网络的运算对象是数组。规则不变，只有两点不同：

* 梯度是与输入同形状的数组。一个运算把输出的梯度 $G$ 变成每个输入的梯度，这就是**向量-雅可比积** (vector–Jacobian product, VJP)，
  不需要真的造出雅可比矩阵 (Jacobian)：矩阵乘法 $Y = AB$ 的 VJP 是 $G B^\top$ 和 $A^\top G$（下面会推导）。
* **广播** (broadcasting)：形状 $(1, m)$ 的偏置加到 $(n, m)$ 的矩阵上，等于被用了 $n$ 次，所以它的梯度要沿被拉伸的轴求和（`unbroadcast`）。

下面是数组版引擎，共 """ + str(ARRAY_LINES) + r""" 行。拓扑排序直接借用 `Value` 的那一个：它只看 `parents`。
""", en=r"""
Our engine and tinyllm agree to {{engine_scalar_gap:.1e}}. Note that the sigmoid is no rule of
its own: it is made of `exp`, `+` and `/`, and the engine chains those rules into $y(1-y)$.

### From scalars to arrays

Neural networks compute on arrays. The rules stay; two things change:

* A gradient is an array of the input's shape. An operation turns the gradient $G$ of its
  output into one gradient per input: the **vector–Jacobian product** (VJP), computed without
  ever building the Jacobian — for a matrix product $Y = AB$ it is $G B^\top$ and $A^\top G$
  (derived below).
* **Broadcasting**: a bias of shape $(1, m)$ added to an $(n, m)$ matrix is used $n$ times, so
  its gradient is summed over the stretched axis (`unbroadcast`).

The array engine, """ + str(ARRAY_LINES) + r""" lines. The topological sort is `Value`'s, reused as it is: it
only looks at `parents`.
""")

code(ARRAY_ENGINE)

md(zh=r"""
用它搭一个两层网络和交叉熵损失。交叉熵由 `exp`、`sum`、`log` 拼成；减去每行最大值只是为了不溢出，
它是一个常数（softmax 对整行平移不变），不参与求导。同一个网络再用 tinyllm 写一遍，比较四个参数的梯度：
""", en=r"""
A two-layer network and a cross-entropy loss on top of it. The cross-entropy is made of `exp`,
`sum` and `log`; the row maximum subtracted first only prevents overflow and is a constant
(the softmax ignores a shift of the whole row), not differentiated. The same network again in
tinyllm, and the four parameters' gradients compared:
""")

code(r"""
def engine_cross_entropy(logits, targets):
    shift = Array(logits.data.max(axis=1, keepdims=True))    # a constant: no gradient flows into it
    z = logits - shift
    log_p = z - z.exp().sum(axis=1, keepdims=True).log()      # log softmax
    onehot = np.eye(logits.data.shape[1])[targets]
    return -(log_p * onehot).sum() * (1.0 / len(targets))

def spiral(n_per_class, classes=3, seed=0):
    # three interleaved spiral arms in the plane: a classic small problem no straight line solves
    r = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.05, 1, n_per_class), classes)
    angle = np.concatenate([np.linspace(c * 4.2, (c + 1) * 4.2, n_per_class) for c in range(classes)])
    angle += r.normal(0, 0.25, angle.shape)
    return np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1), np.repeat(np.arange(classes), n_per_class)

X_sp, y_sp = spiral(100)
hidden = 32
init = np.random.default_rng(1)
start = [init.normal(0, 1.0, (2, hidden)), np.zeros((1, hidden)), init.normal(0, 0.3, (hidden, 3)), np.zeros((1, 3))]

def engine_loss(params):
    W1, b1, W2, b2 = params
    return engine_cross_entropy((Array(X_sp) @ W1 + b1).relu() @ W2 + b2, y_sp)

def tinyllm_loss(params):
    W1, b1, W2, b2 = params
    return F.cross_entropy(F.relu(tl.Tensor(X_sp) @ W1 + b1) @ W2 + b2, tl.Tensor(y_sp))

ours = [Array(p.copy()) for p in start]
theirs = [tl.Tensor(p.copy(), requires_grad=True) for p in start]
loss_ours, loss_theirs = engine_loss(ours), tinyllm_loss(theirs)
loss_ours.backward(); loss_theirs.backward()
gaps = [np.abs(a.grad - b_.grad).max() for a, b_ in zip(ours, theirs)]
print(tr(f"损失：我们的 {loss_ours.data:.12f}，tinyllm {loss_theirs.item():.12f}",
         f"loss: ours {loss_ours.data:.12f}, tinyllm {loss_theirs.item():.12f}"))
for name, gap in zip(("W1", "b1", "W2", "b2"), gaps):
    print(tr(f"  {name} 的梯度最多相差 {gap:.1e}", f"  gradient of {name}: largest difference {gap:.1e}"))
record(engine_array_gap=float(max(gaps)))
""")

md(zh=r"""
四个梯度与 tinyllm 最多相差 {{engine_array_gap:.1e}}——float64 的舍入误差。既然梯度一样，训练也应该一样：
两个引擎从相同的初始值出发，用同样的梯度下降 (gradient descent) 各训练一遍：
""", en=r"""
The four gradients agree with tinyllm's to {{engine_array_gap:.1e}} — float64 rounding. Same
gradients should mean the same training: both engines start from the same weights and take the
same plain gradient-descent steps:
""")

code(r"""
steps, lr = (60 if FAST else 1500), 0.5
curves = {"ours": [], "tinyllm": []}
ours = [Array(p.copy()) for p in start]
theirs = [tl.Tensor(p.copy(), requires_grad=True) for p in start]
clock = {}
for name, params, loss_fn in (("ours", ours, engine_loss), ("tinyllm", theirs, tinyllm_loss)):
    begin = time.perf_counter()
    for step in range(steps):
        for p in params:
            p.grad = None
        loss = loss_fn(params)
        loss.backward()
        for p in params:
            p.data -= lr * p.grad                      # θ ← θ − η ∂L/∂θ
        curves[name].append(float(loss.data) if name == "ours" else loss.item())
    clock[name] = time.perf_counter() - begin

grid = np.stack(np.meshgrid(np.linspace(-1.1, 1.1, 200), np.linspace(-1.1, 1.1, 200)), axis=-1).reshape(-1, 2)
W1, b1, W2, b2 = (p.data for p in ours)
regions = (np.maximum(grid @ W1 + b1, 0) @ W2 + b2).argmax(axis=1)
train_accuracy = float(((np.maximum(X_sp @ W1 + b1, 0) @ W2 + b2).argmax(axis=1) == y_sp).mean())

fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
axes[0].plot(curves["ours"], lw=2.5, alpha=0.6, label=tr("我们的引擎（Array）", "our engine (Array)"))
axes[0].plot(curves["tinyllm"], "k--", lw=1, label="tinyllm")
axes[0].set_yscale("log"); axes[0].set_xlabel(tr("步数", "step")); axes[0].set_ylabel(tr("交叉熵", "cross-entropy")); axes[0].legend()
axes[1].contourf(grid[:, 0].reshape(200, 200), grid[:, 1].reshape(200, 200), regions.reshape(200, 200), alpha=0.25, cmap="brg")
axes[1].scatter(X_sp[:, 0], X_sp[:, 1], c=y_sp, s=8, cmap="brg")
axes[1].set_title(tr(f"我们的引擎训练出的分类边界（训练准确率 {train_accuracy:.0%}）",
                     f"what our engine learned (training accuracy {train_accuracy:.0%})"), fontsize=9)
axes[1].set_xticks([]); axes[1].set_yticks([])
plt.tight_layout(); plt.show()
curve_gap = float(np.abs(np.array(curves["ours"]) - np.array(curves["tinyllm"])).max())
record(train_steps=steps, curve_gap=curve_gap, spiral_accuracy=train_accuracy,
       loss_first=curves["ours"][0], loss_last=curves["ours"][-1],
       ms_ours=1000 * clock["ours"] / steps, ms_tinyllm=1000 * clock["tinyllm"] / steps,
       speed_note=tr("在这么小的数组上，我们的小引擎反而更快——tinyllm 的每个运算都要检查设备、形状、数据类型和版本，"
                     "这些固定开销在 300 × 32 的矩阵上占了大头", "on arrays this small our little engine is even faster — "
                     "tinyllm checks devices, shapes, dtypes and versions at every operation, and on 300 × 32 matrices "
                     "those fixed costs dominate") if clock["ours"] < 0.8 * clock["tinyllm"]
       else tr("tinyllm 更快，尽管它在每个运算上还要检查设备、形状、数据类型和版本",
               "tinyllm is faster, although it checks devices, shapes, dtypes and versions at every operation")
       if clock["tinyllm"] < 0.8 * clock["ours"]
       else tr("两者差不多快——在这么小的数组上，时间都花在每个运算的固定开销上，而不是算术上",
               "about equally fast — on arrays this small both spend their time on per-operation overhead, not on arithmetic"))
print(tr(f"{steps} 步：损失 {curves['ours'][0]:.3f} → {curves['ours'][-1]:.4f}；两条曲线最多相差 {curve_gap:.1e}",
         f"{steps} steps: loss {curves['ours'][0]:.3f} → {curves['ours'][-1]:.4f}; the two curves differ by at most {curve_gap:.1e}"))
print(tr(f"每步耗时：我们的引擎 {1000 * clock['ours'] / steps:.2f} ms，tinyllm {1000 * clock['tinyllm'] / steps:.2f} ms",
         f"time per step: our engine {1000 * clock['ours'] / steps:.2f} ms, tinyllm {1000 * clock['tinyllm'] / steps:.2f} ms"))
""", alt=(
    "两幅图。左：{{train_steps}} 步梯度下降中的交叉熵（对数纵轴），"
    "我们的小引擎（粗而淡的线）和 tinyllm（细的黑色虚线）"
    "完全重合（最多相差 {{curve_gap:.1e}}），"
    "从 {{loss_first:.3f}} 降到 {{loss_last:.4f}}。"
    "右：三条交错的螺旋臂，数据点按类别着色，背景是我们的引擎训练出的网络给每个类别划出的区域："
    "边界弯曲着沿螺旋臂走（训练准确率 {{spiral_accuracy:.0%}}）。",
    "Two panels. Left: the cross-entropy (log scale) over {{train_steps}} steps of gradient descent "
    "for our small engine (a thick, pale line) and for tinyllm (a thin black dashed line); the two "
    "coincide (they differ by at most {{curve_gap:.1e}}) and fall from {{loss_first:.3f}} to "
    "{{loss_last:.4f}}. Right: three interleaved spiral arms, the points coloured by class, over the "
    "regions that the network trained by our engine gives each class; the boundaries curl along the "
    "arms (training accuracy {{spiral_accuracy:.0%}})."))

md(zh=r"""
{{train_steps}} 步里损失从 {{loss_first:.3f}} 降到 {{loss_last:.4f}}，两条曲线最多相差 {{curve_gap:.1e}}，
训练准确率 (accuracy) {{spiral_accuracy:.0%}}。我们的引擎每步 {{ms_ours:.2f}} ms，tinyllm 每步 {{ms_tinyllm:.2f}} ms：{{speed_note}}。

**tinyllm 比这台小引擎多了什么？** 思路完全相同（`tinyllm/tensor.py` 里的 `topological_order` 和 `run_backward`），
多出来的是工程：拓扑排序用显式的栈而不是递归（一万个运算串成一条链也不会爆栈）；
反向传播结束后释放保存的数组（省显存，accelerator memory）；检查每个梯度的形状与输入相同；一个输入若不需要梯度就不计算它；
同一份代码既能在 NumPy 上跑，也能在 CuPy（GPU）上跑。

## 手推反向传播

自动求导引擎从不构造雅可比矩阵。对一个运算 $Y = f(X)$，它只需要**向量-雅可比积**：已知 $G = \partial L/\partial Y$（与 $Y$ 同形），
求 $\partial L/\partial X$（与 $X$ 同形）：

$$ \frac{\partial L}{\partial X_{a}} = \sum_{b} \frac{\partial L}{\partial Y_{b}} \frac{\partial Y_{b}}{\partial X_{a}} $$

——又是链式法则，对 $X_a$ 影响到的每一个输出元素 $b$ 求和。在 tinyllm 里这样一条规则是一个 `tl.Function`：
`forward` 作用在原始 NumPy 数组上，并保存反向需要的东西；`backward(g)` 为每个输入返回一个梯度。

检验的办法是**中心差分** (central difference)：

$$ \frac{\partial L}{\partial x_i} \approx \frac{L(x + \varepsilon e_i) - L(x - \varepsilon e_i)}{2\varepsilon} $$

`tl.gradcheck` 对 $L = \sum v \odot f(x)$（$v$ 随机，于是检验的是整个向量-雅可比积，而不只是某一个输出）逐元素做这件事。
中心差分的误差是 $\varepsilon^2$ 量级，单侧差分是 $\varepsilon$ 量级；$\varepsilon$ 太小又会被舍入误差（float64 下约 $10^{-16}/\varepsilon$）淹没——
这就是梯度检查 (gradient check) 必须用 float64 的原因。在 $\tanh'(0.7)$ 上测量：
""", en=r"""
In {{train_steps}} steps the loss fell from {{loss_first:.3f}} to {{loss_last:.4f}}; the two curves differ by
at most {{curve_gap:.1e}}, and the training accuracy is {{spiral_accuracy:.0%}}. Our engine took {{ms_ours:.2f}} ms
per step, tinyllm {{ms_tinyllm:.2f}} ms: {{speed_note}}.

**What does tinyllm have that this small engine does not?** The idea is the same
(`topological_order` and `run_backward` in `tinyllm/tensor.py`); the rest is engineering:
the sort uses an explicit stack, not recursion (a chain of 10,000 operations does not overflow
the stack); saved arrays are released after the backward (memory); every gradient's shape is
checked against its input's; an input that needs no gradient gets none computed; and the same
code runs on NumPy and on CuPy (GPU).

## Backward passes derived by hand

An autograd engine never builds a Jacobian. For an operation $Y = f(X)$ it needs only the
**vector–Jacobian product**: given $G = \partial L/\partial Y$ (shaped like $Y$), return
$\partial L/\partial X$ (shaped like $X$):

$$ \frac{\partial L}{\partial X_{a}} = \sum_{b} \frac{\partial L}{\partial Y_{b}} \frac{\partial Y_{b}}{\partial X_{a}} $$

— the chain rule once more, summed over every output element $b$ that $X_a$ influences. In
tinyllm such a rule is a `tl.Function`: `forward` on raw NumPy arrays, saving what the backward
needs; `backward(g)` returning one gradient per input.

The check is a **central difference**:

$$ \frac{\partial L}{\partial x_i} \approx \frac{L(x + \varepsilon e_i) - L(x - \varepsilon e_i)}{2\varepsilon} $$

`tl.gradcheck` does this element by element on $L = \sum v \odot f(x)$ for a random $v$ (so the
whole vector–Jacobian product is tested, not one output). Central differences err by order
$\varepsilon^2$, one-sided ones by order $\varepsilon$; too small an $\varepsilon$ drowns the
difference in rounding error (about $10^{-16}/\varepsilon$ in float64) — which is why a gradient
check needs float64. Measured on $\tanh'(0.7)$:
""")

code(r"""
f, df, x0 = np.tanh, lambda s: 1 - np.tanh(s) ** 2, 0.7
epsilons = 10.0 ** np.arange(-14, 0)
one_sided = [abs((f(x0 + e) - f(x0)) / e - df(x0)) for e in epsilons]
central = [abs((f(x0 + e) - f(x0 - e)) / (2 * e) - df(x0)) for e in epsilons]
fig, ax = plt.subplots(figsize=(5, 3))
ax.loglog(epsilons, one_sided, "o-", label=tr("单侧 (f(x+ε) − f(x)) / ε", "one-sided (f(x+ε) − f(x)) / ε"))
ax.loglog(epsilons, central, "s-", label=tr("中心 (f(x+ε) − f(x−ε)) / 2ε", "central (f(x+ε) − f(x−ε)) / 2ε"))
ax.set_xlabel("ε"); ax.set_ylabel(tr("tanh′(0.7) 估计值的误差", "error of the estimate of tanh′(0.7)")); ax.legend(fontsize=8)
plt.tight_layout(); plt.show()
record(best_central=float(min(central)), best_central_eps=float(epsilons[int(np.argmin(central))]),
       best_one_sided=float(min(one_sided)), central_gain=float(min(one_sided) / min(central)))
print(tr(f"中心差分最小误差 {min(central):.1e}（ε = {epsilons[int(np.argmin(central))]:.0e}）；单侧最小 {min(one_sided):.1e}",
         f"best central error {min(central):.1e} at ε = {epsilons[int(np.argmin(central))]:.0e}; best one-sided {min(one_sided):.1e}"))

def numeric_gradient(loss_of, x, eps=1e-6):
    # ∂loss/∂x by central differences, one element at a time (x: a float64 NumPy array, changed in place and restored)
    grad, flat = np.zeros(x.size), x.reshape(-1)
    for i in range(x.size):
        keep = flat[i]
        flat[i] = keep + eps; plus = loss_of(x)
        flat[i] = keep - eps; minus = loss_of(x)
        flat[i] = keep
        grad[i] = (plus - minus) / (2 * eps)
    return grad.reshape(x.shape)
""", alt=(
    "双对数图：两种差分估计 tanh′(0.7) 的误差随步长 ε（10⁻¹⁴ 到 10⁻¹）"
    "的变化。两条曲线都呈 V 形：ε 太小时舍入误差占上风，"
    "ε 太大时截断误差占上风。单侧差分的谷底在 {{best_one_sided:.1e}} 附近；"
    "中心差分的谷底低得多，ε = {{best_central_eps:.0e}} 时为 {{best_central:.1e}}，"
    "而且它在右侧上升得比单侧陡一倍（误差与 ε² 成正比，而不是与 ε）。",
    "Log-log chart of the error of two finite-difference estimates of tanh′(0.7) against the step ε, "
    "from 10⁻¹⁴ to 10⁻¹. Both curves form a V: rounding error dominates when ε is too small, "
    "truncation error when it is too large. The one-sided estimate bottoms out near "
    "{{best_one_sided:.1e}}; the central one goes much lower, to {{best_central:.1e}} at ε = "
    "{{best_central_eps:.0e}}, and on the right it rises twice as steeply (its error grows like ε², "
    "not ε)."))

md(zh=r"""
中心差分的最小误差是 {{best_central:.1e}}（在 $\varepsilon = $ {{best_central_eps:.0e}}），比单侧差分的最好结果（{{best_one_sided:.1e}}）
准 {{central_gain:.0e}} 倍；`tl.gradcheck` 用 $\varepsilon = 10^{-6}$。上面最后定义的 `numeric_gradient` 就是这个公式，下面每一节都用它验证推导。

### 矩阵乘法

$Y = XW$，$X$ 为 $(n \times k)$，$W$ 为 $(k \times m)$，所以 $Y_{ij} = \sum_{c} X_{ic} W_{cj}$，$\partial Y_{ij}/\partial X_{ac} = \delta_{ia} W_{cj}$。对输出求和：

$$
\frac{\partial L}{\partial X_{ac}} = \sum_{j} G_{aj}\, W_{cj} = (G W^\top)_{ac}, \qquad
\frac{\partial L}{\partial W_{cj}} = \sum_{i} X_{ic}\, G_{ij} = (X^\top G)_{cj}
$$

用形状就能记住它：$G$ 是 $n \times m$，用 $G$ 和 $W$ 拼出 $n \times k$ 的矩阵，唯一的办法是 $G W^\top$。
""", en=r"""
The central estimate's best error is {{best_central:.1e}} (at $\varepsilon = $ {{best_central_eps:.0e}}),
{{central_gain:.0e}} times smaller than the best one-sided one ({{best_one_sided:.1e}}); `tl.gradcheck`
uses $\varepsilon = 10^{-6}$. The `numeric_gradient` defined at the end of the cell is that
formula; every section below checks its derivation with it.

### Matrix multiplication

$Y = XW$ with $X$ $(n \times k)$, $W$ $(k \times m)$, so $Y_{ij} = \sum_{c} X_{ic} W_{cj}$ and
$\partial Y_{ij}/\partial X_{ac} = \delta_{ia} W_{cj}$. Summing over the outputs:

$$
\frac{\partial L}{\partial X_{ac}} = \sum_{j} G_{aj}\, W_{cj} = (G W^\top)_{ac}, \qquad
\frac{\partial L}{\partial W_{cj}} = \sum_{i} X_{ic}\, G_{ij} = (X^\top G)_{cj}
$$

A shape check remembers it for you: $G$ is $n \times m$; the only way to make an $n \times k$
matrix from $G$ and $W$ is $G W^\top$.
""")

code(r"""
class MyMatMul(tl.Function):
    def forward(self, X, W):
        self.save(X, W)
        return X @ W
    def backward(self, G):
        X, W = self.saved
        return G @ W.T, X.T @ G                 # ∂L/∂X = G Wᵀ,  ∂L/∂W = Xᵀ G

X = tl.Tensor(rng.standard_normal((4, 3)), requires_grad=True)   # float64: gradcheck needs it
W = tl.Tensor(rng.standard_normal((3, 5)), requires_grad=True)
print("gradcheck(MyMatMul):", tl.gradcheck(lambda a, b_: MyMatMul.apply(a, b_), X, W))

G = rng.standard_normal((4, 5))
X.grad = W.grad = None                          # (gradcheck left its own gradients there)
MyMatMul.apply(X, W).backward(G); mine = (X.grad.copy(), W.grad.copy())
X.grad = W.grad = None
(X @ W).backward(G)
print(tr("与库的 @ 梯度相同：", "same gradients as the library's @:"), np.allclose(mine[0], X.grad) and np.allclose(mine[1], W.grad))
""")

md(zh=r"""
### Softmax

$y_i = e^{x_i} / \sum_l e^{x_l}$。用商的求导法则得到雅可比矩阵

$$
\frac{\partial y_i}{\partial x_j} = y_i(\delta_{ij} - y_j) \qquad\Longleftrightarrow\qquad J = \mathrm{diag}(y) - y\,y^\top
$$

再乘上 $g = \partial L/\partial y$，得到向量-雅可比积：

$$
\frac{\partial L}{\partial x_j} = \sum_i g_i\, y_i(\delta_{ij} - y_j) = y_j\Big(g_j - \sum_i g_i y_i\Big)
\qquad\Longleftrightarrow\qquad \frac{\partial L}{\partial x} = y \odot \big(g - (g \cdot y)\big)
$$

它用的是前向的*输出* $y$——所以前向保存 $y$，而不是 $x$。先逐行测出雅可比矩阵本身（$g = e_i$ 的一次反向传播给出 $J$ 的第 $i$ 行）：
""", en=r"""
### Softmax

$y_i = e^{x_i} / \sum_l e^{x_l}$. The quotient rule gives the Jacobian

$$
\frac{\partial y_i}{\partial x_j} = y_i(\delta_{ij} - y_j) \qquad\Longleftrightarrow\qquad J = \mathrm{diag}(y) - y\,y^\top
$$

and the vector–Jacobian product, with $g = \partial L/\partial y$:

$$
\frac{\partial L}{\partial x_j} = \sum_i g_i\, y_i(\delta_{ij} - y_j) = y_j\Big(g_j - \sum_i g_i y_i\Big)
\qquad\Longleftrightarrow\qquad \frac{\partial L}{\partial x} = y \odot \big(g - (g \cdot y)\big)
$$

It uses the forward's *output* $y$ — so the forward saves $y$, not $x$. First the Jacobian
itself, measured row by row (one backward with $g = e_i$ gives row $i$ of $J$):
""")

code(r"""
x_small = rng.standard_normal(4)
y_small = softmax_np(x_small)
J_formula = np.diag(y_small) - np.outer(y_small, y_small)
J_measured = np.zeros((4, 4))
for i in range(4):
    xt = tl.Tensor(x_small, requires_grad=True)
    F.softmax(xt, axis=-1).backward(np.eye(4)[i])          # g = e_i  →  row i of J
    J_measured[i] = xt.grad
print("y =", y_small)
print("diag(y) − y yᵀ =\n", J_formula)
print(tr("反向传播测出的 == 公式：", "measured with backward == formula:"), np.allclose(J_measured, J_formula))
print(tr("每行之和为 0（softmax 对 x 的整体平移不变）：", "each row sums to 0 (softmax ignores a constant shift of x):"),
      np.allclose(J_formula.sum(axis=1), 0))
""")

code(r"""
class MySoftmax(tl.Function):
    def forward(self, x):                       # along the last axis
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        y = e / e.sum(axis=-1, keepdims=True)
        self.save(y)
        return y
    def backward(self, g):
        (y,) = self.saved
        return (y * (g - (g * y).sum(axis=-1, keepdims=True)),)   # y ⊙ (g − g·y)

xs = tl.Tensor(rng.standard_normal((3, 6)), requires_grad=True)
print("gradcheck(MySoftmax):", tl.gradcheck(lambda a: MySoftmax.apply(a), xs))
G = rng.standard_normal((3, 6))
xs.grad = None
MySoftmax.apply(xs).backward(G); mine = xs.grad.copy(); xs.grad = None
F.softmax(xs, axis=-1).backward(G)
print(tr("与 F.softmax 梯度相同：", "same gradient as F.softmax:"), np.allclose(mine, xs.grad))
""")

md(zh=r"""
**检查是会失败的。** 一个不可能失败的测试什么也证明不了。下面是一个看起来合理、其实错了的导数：
忘了每个 $x_j$ 也会改变分母，也就是丢掉了 $-\,g\cdot y$ 这一项：
""", en=r"""
**The checker can fail.** A test that cannot fail proves nothing, so here is a plausible wrong
derivative — forgetting that every $x_j$ also changes the denominator, i.e. dropping the
$-\,g\cdot y$ term:
""")

code(r"""
class WrongSoftmax(MySoftmax):
    def backward(self, g):
        (y,) = self.saved
        return (y * g,)                         # the diagonal of J only: wrong

try:
    tl.gradcheck(lambda a: WrongSoftmax.apply(a), xs)
    print(tr("gradcheck 没有发现错误（不应该发生）", "gradcheck found nothing (this should not happen)"))
except tl.GradcheckError as error:
    print(tr("gradcheck 发现了错误，它的报告是：", "gradcheck caught the mistake; its report reads:"))
    print("   ", error)
""")

md(zh=r"""
报告指出了是哪个输入、哪个元素，以及解析值和数值估计各是多少——错误的反向传播不会悄悄溜过去。

### Softmax 与交叉熵合在一起：$p - \mathrm{onehot}$

分类和语言模型的损失是逻辑值 (logits) $z$ 上的 softmax 接交叉熵 (cross-entropy)。对一个样本，正确类别为 $t$，$p = \mathrm{softmax}(z)$：

$$ L = -\log p_t = -z_t + \log \sum_j e^{z_j} $$

对 $z_j$ 求导，第一项只在 $j = t$ 时有贡献，第二项是 $\log\sum$ 的导数，正好是 softmax：

$$ \frac{\partial L}{\partial z_j} = -\delta_{jt} + \frac{e^{z_j}}{\sum_l e^{z_l}} = p_j - \delta_{jt}
\qquad\Longleftrightarrow\qquad \frac{\partial L}{\partial z} = p - \mathrm{onehot}(t) $$

$N$ 个样本取平均时再除以 $N$。同样的结果也可以用上面的 softmax 规则得到：$\partial L/\partial p = -\mathrm{onehot}(t)/p_t$，
代入 $p \odot (g - g\cdot p)$，因为 $g \cdot p = -1$，得到 $p \odot (-\mathrm{onehot}/p_t + 1) = p - \mathrm{onehot}$。
两项漂亮地抵消了——这正是库把两者**融合** (fuse) 成一个运算的原因：梯度更简单，而且 $\log p_t$ 直接由 $z$ 算出，不会出现 $\log 0$。
数值验证：
""", en=r"""
The report names the input, the element, the analytic and the numeric value — a wrong backward
does not slip through.

### Softmax and cross-entropy together: $p - \mathrm{onehot}$

The loss of classifiers and language models is a softmax over logits $z$ followed by
cross-entropy. For one example with correct class $t$ and $p = \mathrm{softmax}(z)$:

$$ L = -\log p_t = -z_t + \log \sum_j e^{z_j} $$

Differentiate by $z_j$: the first term counts only for $j = t$; the second is the derivative of
a log-sum-exp, which is exactly the softmax:

$$ \frac{\partial L}{\partial z_j} = -\delta_{jt} + \frac{e^{z_j}}{\sum_l e^{z_l}} = p_j - \delta_{jt}
\qquad\Longleftrightarrow\qquad \frac{\partial L}{\partial z} = p - \mathrm{onehot}(t) $$

divided by $N$ for a mean over $N$ examples. The softmax rule above gives the same: with
$\partial L/\partial p = -\mathrm{onehot}(t)/p_t$ we have $g \cdot p = -1$, and
$p \odot (g - g\cdot p) = p \odot (-\mathrm{onehot}/p_t + 1) = p - \mathrm{onehot}$. The terms
cancel beautifully — which is why libraries **fuse** the two into one operation: a simpler
gradient, and $\log p_t$ computed from $z$ directly, so no $\log 0$. Checked numerically:
""")

code(r"""
z_np = rng.standard_normal((5, 7)) * 2          # N = 5 examples, 7 classes
t_np = np.array([0, 3, 6, 3, 1])
p_np = softmax_np(z_np)
formula = (p_np - np.eye(7)[t_np]) / len(t_np)  # (p − onehot) / N

def ce_of(z):
    return float(-np.log(softmax_np(z)[np.arange(len(t_np)), t_np]).mean())
numeric = numeric_gradient(ce_of, z_np.copy())
zt = tl.Tensor(z_np, requires_grad=True)
F.cross_entropy(zt, tl.Tensor(t_np)).backward()
print(tr("(p − onehot)/N 与中心差分最多相差", "(p − onehot)/N against central differences: largest difference"),
      f"{np.abs(formula - numeric).max():.1e}")
print(tr("与 F.cross_entropy 的梯度最多相差", "against F.cross_entropy's gradient: largest difference"), f"{np.abs(formula - zt.grad).max():.1e}")
print(tr("每一行的梯度之和：", "each row's gradient sums to:"), np.round(formula.sum(axis=1), 12))

# why fuse: logits of ±1000, composed from softmax and log, against the fused function
big = tl.Tensor(np.array([[1000.0, 0.0, -1000.0]]), requires_grad=True)
with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
    composed = -F.softmax(big, axis=-1).log()[0, 2]
fused = F.cross_entropy(big, tl.Tensor(np.array([2])))
print(tr(f"逻辑值 ±1000、正确类别是最后一个：分开算 −log softmax = {composed.item()}，融合算 = {fused.item():.1f}",
         f"logits ±1000, the last class correct: −log softmax composed = {composed.item()}, fused = {fused.item():.1f}"))
record(ce_formula_gap=float(np.abs(formula - numeric).max()), ce_composed=str(composed.item()), ce_fused=float(fused.item()))
""")

md(zh=r"""
公式与中心差分相差 {{ce_formula_gap:.1e}}。每行梯度之和为 0：$\sum_j p_j = 1$，减掉的 one-hot 也是 1——把所有逻辑值一起加一个常数，损失不变。
最后一行说明了融合的另一个好处：分开计算时 $p_t$ 下溢成 0，$-\log 0$ 得到 {{ce_composed}}；融合的版本用 $\log\sum e^{z}$ 直接算出 {{ce_fused:.1f}}。

### 嵌入：按行取，按行加回去

嵌入 (embedding) 层就是查表：$Y_n = W_{\text{id}_n}$，$W$ 是 $V \times D$ 的表，每个词元 (token) 取出一行。
$W$ 的第 $v$ 行影响的是所有 $\text{id}_n = v$ 的输出，所以

$$ \frac{\partial L}{\partial W_v} = \sum_{n:\ \text{id}_n = v} G_n $$

没被取到的行梯度为 0；**被取了好几次的行，要把每次的梯度都加起来**。这叫分散累加 (scatter-add)，NumPy 里是 `np.add.at`。
一个常见的错误是写成 `grad[ids] = G`：重复的下标只保留最后一次赋值。两种写法都拿来与中心差分比较，这里词元 2 出现了三次：
""", en=r"""
The formula and the central differences agree to {{ce_formula_gap:.1e}}. Each row's gradient sums to 0:
$\sum_j p_j = 1$ and the one-hot subtracted is 1 too — adding a constant to all logits leaves the
loss unchanged. The last line shows the other reason to fuse: composed, $p_t$ underflows to 0 and
$-\log 0$ gives {{ce_composed}}; the fused version computes {{ce_fused:.1f}} from $\log\sum e^{z}$ directly.

### Embedding: rows taken, rows added back

An embedding layer is a table lookup: $Y_n = W_{\text{id}_n}$, with $W$ a $V \times D$ table
and one row per token. Row $v$ of $W$ influences every output with $\text{id}_n = v$, so

$$ \frac{\partial L}{\partial W_v} = \sum_{n:\ \text{id}_n = v} G_n $$

Rows never taken get 0; **a row taken several times gets the sum of all its gradients**. This is
a scatter-add, `np.add.at` in NumPy. A common mistake is `grad[ids] = G`: for repeated indices
only the last assignment survives. Both against central differences, with token 2 taken three
times:
""")

code(r"""
table = rng.standard_normal((5, 3))             # V = 5 tokens, D = 3
ids = np.array([2, 0, 2, 4, 2])                 # token 2 three times, tokens 1 and 3 never
G = rng.standard_normal((len(ids), 3))          # ∂L/∂Y, one row per looked-up token

right = np.zeros_like(table); np.add.at(right, ids, G)     # scatter-add
wrong = np.zeros_like(table); wrong[ids] = G               # plain assignment: repeats overwrite
numeric = numeric_gradient(lambda W_: float((W_[ids] * G).sum()), table.copy())
wrong_rows = sorted({int(r) for r in np.argwhere(~np.isclose(wrong, numeric))[:, 0]})
wt = tl.Tensor(table, requires_grad=True)
F.embedding(ids, wt).backward(G)
print(tr("分散累加 np.add.at 与中心差分最多相差", "scatter-add (np.add.at) against central differences:"), f"{np.abs(right - numeric).max():.1e}")
print(tr("直接赋值 grad[ids] = G 与中心差分最多相差", "assignment grad[ids] = G against central differences:"), f"{np.abs(wrong - numeric).max():.2f}",
      tr(f"（错在第 {wrong_rows} 行）", f"(wrong in rows {wrong_rows})"))
print(tr("F.embedding 的梯度 == 分散累加：", "F.embedding's gradient == scatter-add:"), np.allclose(wt.grad, right))
record(embedding_gap=float(np.abs(right - numeric).max()), embedding_wrong=float(np.abs(wrong - numeric).max()))
""")

md(zh=r"""
分散累加与中心差分相差 {{embedding_gap:.1e}}；直接赋值在重复出现的那一行上错了 {{embedding_wrong:.2f}}。
在语言模型里这一点很要紧：常见的词元（空格、“的”）在每个批次里出现成百上千次，它们的嵌入正是靠这些梯度加在一起才得到训练的。
GPT 还把同一张表用作输出层（权重共享，weight tying），那时这张表的梯度是两种用法之和——引擎的 `+=` 自动处理。

### GELU

GPT 的前馈网络 (feed-forward network) 用的激活函数 (activation function) 是 GELU：$y = x\,\Phi(x)$，$\Phi$ 是标准正态分布的累积分布函数。
乘积法则给出

$$ \frac{\partial y}{\partial x} = \Phi(x) + x\,\varphi(x), \qquad \varphi(x) = \frac{e^{-x^2/2}}{\sqrt{2\pi}} \qquad\Longrightarrow\qquad \frac{\partial L}{\partial x} = g \odot \big(\Phi(x) + x\,\varphi(x)\big) $$

（$\Phi' = \varphi$）。与 ReLU 不同，它在 0 附近是光滑的，负半轴也有一点梯度；导数可以略大于 1，也可以略小于 0。
GPT-2 用的是 tanh 近似 $\tfrac12 x\,(1 + \tanh(\sqrt{2/\pi}(x + 0.044715x^3)))$，它的导数也在库里手写。验证：
""", en=r"""
The scatter-add agrees with central differences to {{embedding_gap:.1e}}; the assignment is off by
{{embedding_wrong:.2f}} on the repeated row. In a language model this matters: frequent tokens (a
space, "the") occur hundreds of times per batch, and their embeddings learn from the sum of all
those gradients. GPT also uses the same table as its output layer (weight tying); the table's
gradient is then the sum over both uses — the engine's `+=` takes care of it.

### GELU

The activation function of GPT's feed-forward network is GELU: $y = x\,\Phi(x)$, with $\Phi$ the
standard normal cumulative distribution function. The product rule gives

$$ \frac{\partial y}{\partial x} = \Phi(x) + x\,\varphi(x), \qquad \varphi(x) = \frac{e^{-x^2/2}}{\sqrt{2\pi}} \qquad\Longrightarrow\qquad \frac{\partial L}{\partial x} = g \odot \big(\Phi(x) + x\,\varphi(x)\big) $$

($\Phi' = \varphi$). Unlike ReLU it is smooth at 0 and passes a little gradient on the negative
side; its derivative can rise a little above 1 and dip a little below 0. GPT-2 uses the tanh approximation
$\tfrac12 x\,(1 + \tanh(\sqrt{2/\pi}(x + 0.044715x^3)))$, whose derivative the library also
writes by hand. Checked:
""")

code(r"""
from math import erf
xs_g = np.linspace(-4, 4, 161)
Phi = 0.5 * (1 + np.vectorize(erf)(xs_g / math.sqrt(2)))
phi = np.exp(-xs_g ** 2 / 2) / math.sqrt(2 * math.pi)
derivative = Phi + xs_g * phi                                  # our formula
numeric = numeric_gradient(lambda a: float((a * 0.5 * (1 + np.vectorize(erf)(a / math.sqrt(2)))).sum()), xs_g.copy())
library = {}
for form in ("none", "tanh"):
    xt = tl.Tensor(xs_g, requires_grad=True)
    F.gelu(xt, approximate=form).sum().backward()
    library[form] = xt.grad
print(tr("Φ(x) + xφ(x) 与中心差分最多相差", "Φ(x) + xφ(x) against central differences:"), f"{np.abs(derivative - numeric).max():.1e}")
print(tr("与 F.gelu 的梯度最多相差", "against F.gelu's gradient:"), f"{np.abs(derivative - library['none']).max():.1e}")
print(tr("tanh 近似的导数与精确导数最多相差", "the tanh form's derivative against the exact one:"), f"{np.abs(library['tanh'] - library['none']).max():.1e}")
peak = int(np.argmax(derivative))
record(gelu_gap=float(np.abs(derivative - numeric).max()), gelu_tanh_gap=float(np.abs(library['tanh'] - library['none']).max()),
       gelu_peak_x=float(xs_g[peak]), gelu_peak=float(derivative[peak]), gelu_min=float(derivative.min()))

fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].plot(xs_g, xs_g * Phi, label="GELU  xΦ(x)"); axes[0].plot(xs_g, np.maximum(xs_g, 0), "--", label="ReLU")
axes[0].set_xlabel("x"); axes[0].legend(); axes[0].set_title(tr("前向", "forward"), fontsize=9)
axes[1].plot(xs_g, derivative, label="Φ(x) + xφ(x)")
axes[1].plot(xs_g[::8], numeric[::8], "o", ms=3.5, label=tr("中心差分", "central differences"))
axes[1].plot(xs_g, (xs_g > 0).astype(float), "--", label=tr("ReLU 的导数", "ReLU's derivative"))
axes[1].set_xlabel("x"); axes[1].legend(fontsize=8); axes[1].set_title(tr("导数", "derivative"), fontsize=9)
plt.tight_layout(); plt.show()
""", alt=(
    "两幅 x 从 −4 到 4 的图。左（前向）：GELU xΦ(x) 和 ReLU（虚线）。"
    "远离 0 时两者重合，但 GELU 在 0 处是光滑的，"
    "在负半轴略微低于 0。右（导数）：公式 Φ(x) + xφ(x) 画成曲线，"
    "中心差分的点正好落在曲线上，ReLU 的导数是从 0 跳到 1 的虚线台阶。"
    "GELU 的导数平滑上升，在 x = {{gelu_peak_x:.2f}} 处超过 1 达到 "
    "{{gelu_peak:.3f}}，在负半轴降到 {{gelu_min:.3f}}。",
    "Two panels over x from −4 to 4. Left, forward: GELU xΦ(x) beside ReLU (dashed); they coincide "
    "far from 0, but GELU is smooth at 0 and dips slightly below zero for negative x. Right, the "
    "derivative: the formula Φ(x) + xφ(x) as a curve, central differences as dots lying on it, and "
    "ReLU's derivative as a dashed step from 0 to 1. GELU's derivative rises smoothly, overshoots 1 "
    "to {{gelu_peak:.3f}} at x = {{gelu_peak_x:.2f}}, and dips to {{gelu_min:.3f}} on the negative "
    "side."))

md(zh=r"""
推导与中心差分相差 {{gelu_gap:.1e}}；导数最大是 {{gelu_peak:.3f}}（在 $x =$ {{gelu_peak_x:.2f}}），最小是 {{gelu_min:.3f}}（负半轴上一个小小的负值）。
tanh 近似的导数与精确导数最多相差 {{gelu_tanh_gap:.1e}}。

### 残差连接：梯度的高速公路

残差连接 (residual connection) 把一个子层的输出加回到它的输入上：$y = x + f(x)$。加法把梯度原样交给两个加数，所以

$$ \frac{\partial L}{\partial x} = g + \Big(\frac{\partial f}{\partial x}\Big)^{\!\top} g $$

第一项 $g$ 不经过 $f$，直接到达更下面的层。没有它，$N$ 层网络的梯度是 $N$ 个雅可比矩阵的连乘，
每个都稍小于 1 时，乘积随层数指数衰减——梯度消失 (vanishing gradient)。先验证这个公式，再测量 1 到 64 层时到达输入的梯度大小：
""", en=r"""
The derivation agrees with central differences to {{gelu_gap:.1e}}; the derivative peaks at
{{gelu_peak:.3f}} (at $x =$ {{gelu_peak_x:.2f}}) and dips to {{gelu_min:.3f}} (a small negative value on the
negative side). The tanh form's derivative differs from the exact one by at most {{gelu_tanh_gap:.1e}}.

### The residual connection: a highway for gradients

A residual connection adds a sublayer's output back to its input: $y = x + f(x)$. The addition
hands the gradient unchanged to both summands, so

$$ \frac{\partial L}{\partial x} = g + \Big(\frac{\partial f}{\partial x}\Big)^{\!\top} g $$

The first term, $g$, bypasses $f$ and reaches the layers below as it is. Without it the gradient
of an $N$-layer network is a product of $N$ Jacobians; when each is a little smaller than 1, the
product decays exponentially with depth — the vanishing gradient. First the formula, then the
size of the gradient reaching the input of 1 to 64 layers:
""")

code(r"""
d = 16
Wr = tl.Tensor(rng.standard_normal((d, d)) * 0.8 / math.sqrt(d))
xr = rng.standard_normal((3, d)); Gr = rng.standard_normal((3, d))
sublayer = lambda h: (h @ Wr).tanh()                      # f(x) = tanh(x W)
xt = tl.Tensor(xr, requires_grad=True)
(xt + sublayer(xt)).backward(Gr)
J_T_g = (Gr * (1 - np.tanh(xr @ Wr.numpy()) ** 2)) @ Wr.numpy().T   # (∂f/∂x)ᵀ g for f = tanh(xW)
numeric = numeric_gradient(lambda a: float(((a + np.tanh(a @ Wr.numpy())) * Gr).sum()), xr.copy())
print(tr("g + (∂f/∂x)ᵀg == tinyllm 的梯度：", "g + (∂f/∂x)ᵀg == tinyllm's gradient:"), np.allclose(xt.grad, Gr + J_T_g),
      tr("；与中心差分相差", "; against central differences"), f"{np.abs(Gr + J_T_g - numeric).max():.1e}")

depths = [1, 2, 4, 8, 16, 32, 64]
d = 32
weights = [tl.Tensor(rng.standard_normal((d, d)) * 0.8 / math.sqrt(d)) for _ in range(max(depths))]
def gradient_at_input(depth, kind):
    # ‖∂L/∂x‖ / ‖∂L/∂output‖ through `depth` layers of f(h) = tanh(h W)
    x_in = tl.Tensor(rng.standard_normal((16, d)), requires_grad=True)
    h = x_in
    for W_ in weights[:depth]:
        f_h = (h @ W_).tanh()
        h = f_h if kind == "plain" else h + f_h if kind == "residual" else h + f_h * (1 / math.sqrt(depth))
    G_out = rng.standard_normal(h.shape)
    h.backward(G_out)
    return np.linalg.norm(x_in.grad) / np.linalg.norm(G_out)

kinds = {"plain": tr("无残差：h ← f(h)", "no residual: h ← f(h)"),
         "residual": tr("残差：h ← h + f(h)", "residual: h ← h + f(h)"),
         "scaled": tr("残差，分支乘 1/√N：h ← h + f(h)/√N", "residual, branch × 1/√N: h ← h + f(h)/√N")}
norms = {kind: [gradient_at_input(n, kind) for n in depths] for kind in kinds}
fig, ax = plt.subplots(figsize=(6, 3.3))
for kind, label in kinds.items():
    ax.semilogy(depths, norms[kind], "o-", label=label)
ax.set_xscale("log", base=2); ax.set_xlabel(tr("层数 N", "layers N")); ax.set_ylabel("‖∂L/∂x‖ / ‖∂L/∂y‖"); ax.legend(fontsize=8)
plt.tight_layout(); plt.show()
for kind in kinds:
    print(f"{kinds[kind]:40}", "  ".join(f"{v:.2g}" for v in norms[kind]))
record(plain_16=float(norms["plain"][depths.index(16)]), plain_64=float(norms["plain"][-1]),
       residual_64=float(norms["residual"][-1]), scaled_64=float(norms["scaled"][-1]))
""", alt=(
    "传到输入的梯度大小 ‖∂L/∂x‖ / ‖∂L/∂y‖（对数纵轴）"
    "随层数 N（1 到 64，对数横轴）的变化，三种由 tanh 层堆成的网络。"
    "无残差（蓝）：梯度迅速变小，16 层时为 {{plain_16:.1e}}，"
    "64 层时为 {{plain_64:.1e}}。残差（橙）："
    "从不低于 1，但 64 层时涨到 {{residual_64:.0f}}。"
    "分支乘 1/√N 的残差（绿）：始终平稳地停在 1 附近（64 层时为 {{scaled_64:.2f}}）。",
    "The size of the gradient reaching the input, ‖∂L/∂x‖ / ‖∂L/∂y‖ (log scale), against the number "
    "of layers N (1 to 64, log scale), for three stacks of tanh layers. Without residuals (blue) it "
    "shrinks fast: {{plain_16:.1e}} at 16 layers, {{plain_64:.1e}} at 64. With residuals (orange) it "
    "never drops below 1 but grows to {{residual_64:.0f}} at 64 layers. With each branch scaled by "
    "1/√N (green) it stays flat near 1 ({{scaled_64:.2f}} at 64)."))

md(zh=r"""
没有残差时，16 层后到达输入的梯度只剩 {{plain_16:.1e}}，64 层后是 {{plain_64:.1e}}；有残差时它不会小于 1（恒等路径的 $g$ 总在），
但 64 层后长到了 {{residual_64:.0f}}：每一层都往残差流 (residual stream) 里加东西，不加约束，流的尺度和梯度都会随深度增长。
把每个分支乘上 $1/\sqrt{N}$，64 层后是 {{scaled_64:.2f}}，与深度无关。GPT-2 的初始化做的正是这件事：写回残差流的两个投影
（`attn.c_proj`、`mlp.c_proj`）初始化时标准差除以 $\sqrt{2N}$（`tinyllm/models/gpt.py`）。第 5 章会把残差连接、层归一化和前馈网络拼成一个块。

### 层归一化

对宽度为 $D$ 的最后一个轴：

$$ \mu = \frac1D \sum_c x_c,\quad \sigma^2 = \frac1D\sum_c (x_c-\mu)^2,\quad r = \frac{1}{\sqrt{\sigma^2+\epsilon}},\quad \hat x = (x-\mu)\,r,\quad y = w \odot \hat x + b $$

参数的梯度很简单：$\partial L/\partial b = \sum_{\text{行}} g$，$\partial L/\partial w = \sum_{\text{行}} g \odot \hat x$。对 $x$，记 $\hat g = g \odot w$（到达 $\hat x$ 的梯度）。
三个事实——$\partial(x_i-\mu)/\partial x_j = \delta_{ij} - \frac1D$；$\partial\sigma^2/\partial x_j = \frac2D(x_j-\mu)$（因为 $\sum_c (x_c - \mu) = 0$）；
于是 $\partial r/\partial x_j = -\frac{r^2}{D}\hat x_j$——给出

$$
\frac{\partial \hat x_i}{\partial x_j} = r\Big(\delta_{ij} - \frac1D - \frac{\hat x_i \hat x_j}{D}\Big)
\qquad\Longrightarrow\qquad
\frac{\partial L}{\partial x} = r\,\Big(\hat g - \mathrm{mean}(\hat g) - \hat x \odot \mathrm{mean}(\hat g \odot \hat x)\Big)
$$

$\hat g$ 被去掉了两个投影：它的均值（平移 $x$ 不改变 $\hat x$），以及它沿 $\hat x$ 的分量（缩放 $x$ 不改变 $\hat x$）。
""", en=r"""
Without residuals the gradient reaching the input is down to {{plain_16:.1e}} after 16 layers and
{{plain_64:.1e}} after 64. With them it never falls below 1 (the identity path's $g$ is always
there), but after 64 layers it has grown to {{residual_64:.0f}}: every layer adds to the residual
stream, and unchecked, the stream's scale and the gradient grow with depth. Multiplying each
branch by $1/\sqrt{N}$ gives {{scaled_64:.2f}} after 64 layers, whatever the depth. GPT-2's
initialisation does exactly that: the two projections that write into the residual stream
(`attn.c_proj`, `mlp.c_proj`) start with their standard deviation divided by $\sqrt{2N}$
(`tinyllm/models/gpt.py`). Chapter 5 assembles the residual connection, layer norm and the
feed-forward network into a block.

### Layer normalisation

Over the last axis of width $D$:

$$ \mu = \frac1D \sum_c x_c,\quad \sigma^2 = \frac1D\sum_c (x_c-\mu)^2,\quad r = \frac{1}{\sqrt{\sigma^2+\epsilon}},\quad \hat x = (x-\mu)\,r,\quad y = w \odot \hat x + b $$

The parameters are easy: $\partial L/\partial b = \sum_{\text{rows}} g$ and
$\partial L/\partial w = \sum_{\text{rows}} g \odot \hat x$. For $x$, write $\hat g = g \odot w$
(the gradient reaching $\hat x$). Three facts — $\partial(x_i-\mu)/\partial x_j = \delta_{ij} - \frac1D$,
$\;\partial\sigma^2/\partial x_j = \frac2D(x_j-\mu)$ (because $\sum_c (x_c - \mu) = 0$), and so
$\partial r/\partial x_j = -\frac{r^2}{D}\hat x_j$ — give

$$
\frac{\partial \hat x_i}{\partial x_j} = r\Big(\delta_{ij} - \frac1D - \frac{\hat x_i \hat x_j}{D}\Big)
\qquad\Longrightarrow\qquad
\frac{\partial L}{\partial x} = r\,\Big(\hat g - \mathrm{mean}(\hat g) - \hat x \odot \mathrm{mean}(\hat g \odot \hat x)\Big)
$$

Two projections are removed from $\hat g$: its mean (shifting $x$ does not change $\hat x$) and
its component along $\hat x$ (scaling $x$ does not change $\hat x$).
""")

code(r"""
class MyLayerNorm(tl.Function):
    def forward(self, x, w, b, eps=1e-5):
        mu = x.mean(axis=-1, keepdims=True)
        r = 1.0 / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
        xhat = (x - mu) * r
        self.save(xhat, r, w)
        return xhat * w + b
    def backward(self, g):
        xhat, r, w = self.saved
        ghat = g * w
        gx = r * (ghat - ghat.mean(axis=-1, keepdims=True) - xhat * (ghat * xhat).mean(axis=-1, keepdims=True))
        rows = g.reshape(-1, g.shape[-1])
        gw = (rows * xhat.reshape(rows.shape)).sum(axis=0)
        gb = rows.sum(axis=0)
        return gx, gw, gb

xl = tl.Tensor(rng.standard_normal((2, 3, 8)), requires_grad=True)
wl = tl.Tensor(1 + 0.3 * rng.standard_normal(8), requires_grad=True)
bl = tl.Tensor(0.1 * rng.standard_normal(8), requires_grad=True)
print("gradcheck(MyLayerNorm):", tl.gradcheck(lambda a, w_, b_: MyLayerNorm.apply(a, w_, b_), xl, wl, bl))
G = rng.standard_normal((2, 3, 8))
xl.grad = wl.grad = bl.grad = None
MyLayerNorm.apply(xl, wl, bl).backward(G); mine = [t_.grad.copy() for t_ in (xl, wl, bl)]
for t_ in (xl, wl, bl):
    t_.grad = None
F.layer_norm(xl, wl, bl).backward(G)
print(tr("与 F.layer_norm 梯度相同：", "same gradients as F.layer_norm:"), all(np.allclose(m, t_.grad) for m, t_ in zip(mine, (xl, wl, bl))))
""")

md(zh=r"""
### 注意力

不需要新的微积分：注意力是两次矩阵乘法中间夹一个 softmax，它的反向传播就是上面三条规则倒着用一遍。
前向，$s = 1/\sqrt{d_k}$，$M$ 是可选的掩码：

$$ S = s\,QK^\top + M, \qquad P = \mathrm{softmax}(S), \qquad O = PV $$

反向，$G = \partial L/\partial O$：

$$
\begin{aligned}
\frac{\partial L}{\partial V} &= P^\top G, \qquad \frac{\partial L}{\partial P} = G V^\top && (O = PV\ \text{的矩阵乘法规则})\\
\frac{\partial L}{\partial S} &= P \odot \Big(\frac{\partial L}{\partial P} - \mathrm{rowsum}\big(\tfrac{\partial L}{\partial P} \odot P\big)\Big) && (\text{softmax 规则，逐行})\\
\frac{\partial L}{\partial Q} &= s\,\frac{\partial L}{\partial S}\,K, \qquad \frac{\partial L}{\partial K} = s\,\Big(\frac{\partial L}{\partial S}\Big)^{\!\top} Q && (S = sQK^\top\ \text{的矩阵乘法规则})
\end{aligned}
$$

被屏蔽的位置 $P_{ij} = 0$，所以它的 $\partial L/\partial S_{ij}$ 也是 0：同一个反向传播对有无掩码都成立。
""", en=r"""
### Attention

No new calculus is needed: attention is two matrix products with a softmax between, so its
backward is the three rules above, applied in reverse order. Forward, with $s = 1/\sqrt{d_k}$
and an optional mask $M$:

$$ S = s\,QK^\top + M, \qquad P = \mathrm{softmax}(S), \qquad O = PV $$

Backward, with $G = \partial L/\partial O$:

$$
\begin{aligned}
\frac{\partial L}{\partial V} &= P^\top G, \qquad \frac{\partial L}{\partial P} = G V^\top && \text{(matmul rule on } O = PV)\\
\frac{\partial L}{\partial S} &= P \odot \Big(\frac{\partial L}{\partial P} - \mathrm{rowsum}\big(\tfrac{\partial L}{\partial P} \odot P\big)\Big) && \text{(softmax rule, row by row)}\\
\frac{\partial L}{\partial Q} &= s\,\frac{\partial L}{\partial S}\,K, \qquad \frac{\partial L}{\partial K} = s\,\Big(\frac{\partial L}{\partial S}\Big)^{\!\top} Q && \text{(matmul rule on } S = sQK^\top)
\end{aligned}
$$

A masked entry has $P_{ij} = 0$, so its $\partial L/\partial S_{ij}$ is 0 as well: the same
backward is right with and without masks.
""")

code(r"""
class MyAttention(tl.Function):
    def forward(self, q, k, v, causal=False):
        d_k = q.shape[-1]
        scale = 1.0 / np.sqrt(d_k)
        S = q @ k.swapaxes(-1, -2) * scale                          # (…, n, m)
        if causal:
            S = np.where(np.triu(np.ones(S.shape[-2:], dtype=bool), 1), -np.inf, S)
        P = np.exp(S - S.max(axis=-1, keepdims=True))
        P /= P.sum(axis=-1, keepdims=True)
        self.save(q, k, v, P, scale)
        return P @ v
    def backward(self, G):
        q, k, v, P, scale = self.saved
        dV = P.swapaxes(-1, -2) @ G                                 # Pᵀ G
        dP = G @ v.swapaxes(-1, -2)                                 # G Vᵀ
        dS = P * (dP - (dP * P).sum(axis=-1, keepdims=True))       # softmax rule
        dQ = scale * dS @ k                                         # s · dS K
        dK = scale * dS.swapaxes(-1, -2) @ q                        # s · dSᵀ Q
        return dQ, dK, dV

q = tl.Tensor(rng.standard_normal((2, 4, 3)), requires_grad=True)   # (batch, n, d_k)
k = tl.Tensor(rng.standard_normal((2, 4, 3)), requires_grad=True)   # (batch, m, d_k)
v = tl.Tensor(rng.standard_normal((2, 4, 2)), requires_grad=True)   # (batch, m, d_v)
for causal in (False, True):
    ok = tl.gradcheck(lambda a, b_, c: MyAttention.apply(a, b_, c, causal=causal), q, k, v)
    print(f"gradcheck(MyAttention, causal={causal}):", ok)

G = rng.standard_normal((2, 4, 2))
q.grad = k.grad = v.grad = None
MyAttention.apply(q, k, v, causal=True).backward(G); mine = [t_.grad.copy() for t_ in (q, k, v)]
for t_ in (q, k, v):
    t_.grad = None
F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(G)
print(tr("与 F.scaled_dot_product_attention 梯度相同：", "same gradients as F.scaled_dot_product_attention:"),
      all(np.allclose(m, t_.grad) for m, t_ in zip(mine, (q, k, v))))
""")

# ============================================================================ the table
md(zh=r"""
库里的 `Attention`（`tinyllm/functional.py`）就是这个类加上 dropout 和广播，它的文档字符串里写着同样的五个公式。

## 一张表：库里每个运算的梯度检查

tinyllm 的每个运算都是一个 `tl.Function` 子类，带一个手写的 `backward`。下面把它们**全部**找出来
（`tl.Function` 的所有子类，来自 `tinyllm/ops.py`、`tinyllm/functional.py` 和 `tinyllm/compress/`），
每个运算在一个小输入上跑一次 `tl.gradcheck`（float64，中心差分，带广播的形状），再用上面的 `numeric_gradient` 量出解析梯度与数值梯度的最大差。
有两种形式的运算（GELU 的精确式和 tanh 近似，注意力的因果掩码 (causal mask) 和布尔掩码）各占一行。表的最后一行是故意写错的 `WrongSoftmax`。
""", en=r"""
The library's `Attention` (in `tinyllm/functional.py`) is this class with dropout and
broadcasting added; its docstring carries the same five formulas.

## One table: every operation of the library, gradchecked

Every operation of tinyllm is a `tl.Function` subclass with a hand-written `backward`. Below we
find **all** of them (every subclass of `tl.Function`, from `tinyllm/ops.py`,
`tinyllm/functional.py` and `tinyllm/compress/`), run `tl.gradcheck` on each with a small input
(float64, central differences, broadcasting shapes), and measure the largest difference between
the analytic and the numeric gradient with the `numeric_gradient` above. Operations with two forms
(GELU exact and tanh, attention with a causal and a boolean mask) get a row each. The table's last
row is the deliberately wrong `WrongSoftmax`.
""")

code(r"""
import importlib
import pkgutil
from tinyllm import ops
from tinyllm.compress.recompute import Recompute, recompute
from tinyllm.compress.quantize import QuantizedLinearFunction, QuantizedEmbeddingFunction, quantize_per_channel
from tinyllm.testing import strict
from tinyllm.distributed import (CopyToTensorParallel, ReduceFromTensorParallel, SingleProcessCommunicator,
                                 copy_to_tensor_parallel, reduce_from_tensor_parallel)
strict.register()                                  # the test suite's stand-in for a GPU (for ToDevice)

table_rng = np.random.default_rng(0)
def leaf(*shape, positive=False):
    a = table_rng.standard_normal(shape)
    return tl.Tensor(0.5 + np.abs(a) if positive else a, requires_grad=True)

def largest_error(fn, inputs):
    # max |analytic − numeric| over every input that requires a gradient, L = Σ v ⊙ fn(inputs)
    with tl.no_grad():
        out = fn(*inputs)
    v = tl.Tensor(np.random.default_rng(1).standard_normal(out.shape), device=out.device)
    for x_ in inputs:
        x_.grad = None
    (fn(*inputs) * v).sum().backward()
    def loss_of(_):
        with tl.no_grad():
            return (fn(*inputs) * v).sum().item()
    worst = 0.0
    for x_ in inputs:
        if x_.requires_grad:
            analytic = x_.grad if x_.grad is not None else np.zeros(x_.shape)
            worst = max(worst, float(np.abs(analytic - numeric_gradient(loss_of, x_.data)).max()))
    return worst

choose = table_rng.random((3, 4)) > 0.5            # a fixed condition for where
q8, s8 = quantize_per_channel(table_rng.standard_normal((5, 4)))
lookup = np.array([[0, 2, 2], [4, 0, 1]])
allowed = np.tril(np.ones((4, 5), dtype=bool), 1)  # True = may attend
w_ck = leaf(4, 4)
one_rank = SingleProcessCommunicator()             # one process: tensor parallelism's f and g are the identity
def dropout_seeded(x_):
    tl.manual_seed(3)                              # the same mask at every call
    return F.dropout(x_, 0.3)

CASES = [  # (Function, how it is called, fn, inputs)
    (ops.Add, "a + b, (3,1) + (1,4)", lambda a, b_: a + b_, (leaf(3, 1), leaf(1, 4))),
    (ops.Sub, "a − b, (3,4) − (4,)", lambda a, b_: a - b_, (leaf(3, 4), leaf(4))),
    (ops.Mul, "a · b, (2,3,1) · (3,4)", lambda a, b_: a * b_, (leaf(2, 3, 1), leaf(3, 4))),
    (ops.Div, "a / b", lambda a, b_: a / b_, (leaf(3, 4), leaf(1, 4, positive=True))),
    (ops.Clone, "x.clone()", lambda x_: x_.clone(), (leaf(3, 4),)),
    (ops.Neg, "−x", lambda x_: -x_, (leaf(3, 4),)),
    (ops.Pow, "x ** 3", lambda x_: x_ ** 3, (leaf(3, 4),)),
    (ops.PowTensor, "a ** b", lambda a, b_: a ** b_, (leaf(3, 4, positive=True), leaf(3, 4))),
    (ops.Abs, "abs(x)", lambda x_: abs(x_), (leaf(3, 4),)),
    (ops.Clip, "x.clip(−0.5, 0.5)", lambda x_: x_.clip(-0.5, 0.5), (leaf(3, 4),)),
    (ops.MatMul, "a @ b, (2,3,4) @ (4,5)", lambda a, b_: a @ b_, (leaf(2, 3, 4), leaf(4, 5))),
    (ops.Sum, "x.sum(axis=1)", lambda x_: x_.sum(axis=1), (leaf(3, 4, 2),)),
    (ops.Mean, "x.mean(axis=0, keepdims=True)", lambda x_: x_.mean(axis=0, keepdims=True), (leaf(3, 4),)),
    (ops.Var, "x.var(axis=−1)", lambda x_: x_.var(axis=-1), (leaf(3, 4),)),
    (ops.Std, "x.std(axis=0, ddof=1)", lambda x_: x_.std(axis=0, ddof=1), (leaf(3, 4),)),
    (ops.Max, "x.max(axis=−1)", lambda x_: x_.max(axis=-1), (leaf(3, 4),)),
    (ops.Reshape, "x.reshape(4, 3)", lambda x_: x_.reshape(4, 3), (leaf(3, 4),)),
    (ops.Transpose, "x.transpose(2, 0, 1)", lambda x_: x_.transpose(2, 0, 1), (leaf(2, 3, 4),)),
    (ops.BroadcastTo, "tl.broadcast_to(x, (2,3,4))", lambda x_: tl.broadcast_to(x_, (2, 3, 4)), (leaf(3, 1),)),
    (ops.GetItem, "x[[0, 2, 0], 1:]", lambda x_: x_[[0, 2, 0], 1:], (leaf(3, 4),)),
    (ops.Concatenate, "tl.concatenate([a, b], axis=1)", lambda a, b_: tl.concatenate([a, b_], axis=1), (leaf(3, 2), leaf(3, 4))),
    (ops.Stack, "tl.stack([a, b])", lambda a, b_: tl.stack([a, b_]), (leaf(3, 4), leaf(3, 4))),
    (ops.Where, "tl.where(c, a, b)", lambda a, b_: tl.where(tl.Tensor(choose), a, b_), (leaf(3, 4), leaf(3, 4))),
    (ops.Maximum, "tl.maximum(a, b)", lambda a, b_: tl.maximum(a, b_), (leaf(3, 4), leaf(3, 4))),
    (ops.Exp, "x.exp()", lambda x_: x_.exp(), (leaf(3, 4),)),
    (ops.Log, "x.log()", lambda x_: x_.log(), (leaf(3, 4, positive=True),)),
    (ops.Sqrt, "x.sqrt()", lambda x_: x_.sqrt(), (leaf(3, 4, positive=True),)),
    (ops.Tanh, "x.tanh()", lambda x_: x_.tanh(), (leaf(3, 4),)),
    (ops.Cast, "x.astype(np.longdouble)", lambda x_: x_.astype(np.longdouble), (leaf(3, 4),)),
    (ops.ToDevice, "x.to('strict').to('cpu')", lambda x_: x_.to("strict").to("cpu"), (leaf(3, 4),)),
    (F.ReLU, "F.relu(x)", F.relu, (leaf(3, 4),)),
    (F.Sigmoid, "F.sigmoid(x)", F.sigmoid, (leaf(3, 4),)),
    (F.LogSigmoid, "F.logsigmoid(x)", F.logsigmoid, (leaf(3, 4),)),
    (F.SiLU, "F.silu(x)", F.silu, (leaf(3, 4),)),
    (F.SwiGLU, "F.swiglu(a, b)", F.swiglu, (leaf(3, 4), leaf(3, 4))),
    (F.GELU, "F.gelu(x)", F.gelu, (leaf(3, 4),)),
    (F.GELU, "F.gelu(x, approximate='tanh')", lambda x_: F.gelu(x_, approximate="tanh"), (leaf(3, 4),)),
    (F.Softmax, "F.softmax(x)", F.softmax, (leaf(3, 4),)),
    (F.LogSoftmax, "F.log_softmax(x)", F.log_softmax, (leaf(3, 4),)),
    (F.LogSumExp, "F.logsumexp(x)", F.logsumexp, (leaf(3, 4),)),
    (F.CrossEntropy, "F.cross_entropy(z, t), one t = −100", lambda z_: F.cross_entropy(z_, tl.Tensor(np.array([0, 3, -100, 1]))), (leaf(4, 5),)),
    (F.BinaryCrossEntropyWithLogits, "F.binary_cross_entropy_with_logits(z, t)", F.binary_cross_entropy_with_logits,
     (leaf(3, 4), tl.Tensor(table_rng.random((3, 4)), requires_grad=True))),
    (F.LayerNorm, "F.layer_norm(x, w, b)", F.layer_norm, (leaf(2, 3, 5), leaf(5), leaf(5))),
    (F.RMSNorm, "F.rms_norm(x, w)", lambda x_, w_: F.rms_norm(x_, w_, eps=1e-6), (leaf(2, 3, 5), leaf(5))),
    (F.Rotary, "F.apply_rotary(x, cos, sin)", lambda x_: F.apply_rotary(x_, *F.rotary_tables(3, 4, dtype=np.float64)),
     (leaf(2, 3, 4),)),
    (F.Linear, "F.linear(x, w, b)", F.linear, (leaf(2, 3, 4), leaf(5, 4), leaf(5))),
    (F.Embedding, "F.embedding(ids, w), repeated ids", lambda w_: F.embedding(lookup, w_), (leaf(5, 3),)),
    (F.Dropout, "F.dropout(x, 0.3)", dropout_seeded, (leaf(3, 4),)),
    (F.Attention, "F.scaled_dot_product_attention, causal", lambda a, b_, c: F.scaled_dot_product_attention(a, b_, c, is_causal=True),
     (leaf(2, 4, 3), leaf(2, 4, 3), leaf(2, 4, 2))),
    (F.Attention, "F.scaled_dot_product_attention, boolean mask", lambda a, b_, c: F.scaled_dot_product_attention(a, b_, c, attn_mask=tl.Tensor(allowed)),
     (leaf(2, 4, 3), leaf(2, 5, 3), leaf(2, 5, 2))),
    (CopyToTensorParallel, "copy_to_tensor_parallel(x, comm) · 2", lambda x_: copy_to_tensor_parallel(x_, one_rank) * 2.0,
     (leaf(3, 4),)),
    (ReduceFromTensorParallel, "reduce_from_tensor_parallel(x, comm)", lambda x_: reduce_from_tensor_parallel(x_, one_rank),
     (leaf(3, 4),)),
    (Recompute, "recompute(tanh(x @ w))", lambda x_, w_: recompute(lambda a: (a @ w_).tanh(), x_, parameters=[w_]), (leaf(3, 4), w_ck)),
    (QuantizedLinearFunction, "int8 linear: ∂/∂x, ∂/∂b", lambda x_, b_: QuantizedLinearFunction.apply(x_, tl.Tensor(q8), tl.Tensor(s8), b_),
     (leaf(2, 4), leaf(5))),
    (WrongSoftmax, tr("故意写错（本章上面）", "deliberately wrong (above)"), lambda x_: WrongSoftmax.apply(x_), (leaf(3, 4),)),
]
NOT_DIFFERENTIABLE = {QuantizedEmbeddingFunction: tr("int8 表和缩放都是常量：没有要求导的输入",
                                                     "the int8 table and its scales are constants: no input to differentiate")}

rows, passed, worst_library, errors = [], 0, 0.0, {}
for fn_class, how, fn, inputs in CASES:
    try:
        tl.gradcheck(fn, *inputs)
        verdict = tr("通过", "pass")
        passed += fn_class is not WrongSoftmax
    except tl.GradcheckError as error:
        verdict = tr("**失败**：", "**fail**: ") + str(error).split(":")[0]
    error_size = errors[fn_class] = largest_error(fn, inputs)
    if fn_class is not WrongSoftmax:
        worst_library = max(worst_library, error_size)
    where = "" if fn_class is WrongSoftmax else fn_class.__module__.replace("tinyllm.", "") + "."
    rows.append(f"| `{where}{fn_class.__name__}` | `{how}` | {verdict} | {error_size:.1e} |")
for fn_class, why in NOT_DIFFERENTIABLE.items():
    rows.append(f"| `{fn_class.__module__.replace('tinyllm.', '')}.{fn_class.__name__}` | — | {why} | — |")
header = tr("| 运算 | 怎样调用 | tl.gradcheck | 最大误差 |", "| operation | called as | tl.gradcheck | largest error |")
display(Markdown("\n".join([header, "|---|---|---|---|", *rows])))

def every_subclass(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from every_subclass(sub)
# import every module of the library, so that no Function hides in a module this chapter did not
# import; the assignments' Functions are the students' own versions, not the library's
for module in pkgutil.walk_packages(tl.__path__, "tinyllm."):
    if not module.name.startswith(("tinyllm.assignments", "tinyllm.torch_reference", "tinyllm.__main__")):
        importlib.import_module(module.name)
library_functions = {c for c in every_subclass(tl.Function)
                     if c.__module__.startswith("tinyllm.") and not c.__module__.startswith("tinyllm.assignments")}
covered = {c for c, *_ in CASES} | set(NOT_DIFFERENTIABLE)
missing = sorted(c.__name__ for c in library_functions - covered)
checked_rows = len(CASES) - 1
print(tr(f"库里共有 {len(library_functions)} 个 tl.Function 子类；表里覆盖了 {len(library_functions & covered)} 个，"
         f"{checked_rows} 行检查中 {passed} 行通过，最大误差 {worst_library:.1e}。",
         f"The library has {len(library_functions)} tl.Function subclasses; the table covers {len(library_functions & covered)}; "
         f"{passed} of {checked_rows} checked rows pass, largest error {worst_library:.1e}."))
print(tr("没有覆盖的：", "not covered: ") + (", ".join(missing) if missing else tr("无", "none")))
record(n_functions=len(library_functions), n_rows=checked_rows, n_passed=passed, table_max_error=worst_library,
       n_missing=len(missing), wrong_error=errors[WrongSoftmax])
""")

md(zh=r"""
库里的 {{n_functions}} 个 `tl.Function` 子类，表里都有（没有覆盖的：{{n_missing}} 个）；{{n_rows}} 行检查中 {{n_passed}} 行通过，
库的运算最大误差 {{table_max_error:.1e}}，故意写错的 `WrongSoftmax` 误差是 {{wrong_error:.1e}}。这张表会随库一起变：
以后有人往库里加一个新的 `tl.Function` 而不在表里加一行，“没有覆盖的”那一行就会点出它的名字。

几点说明：

* `Cast` 转成 `np.longdouble`（扩展精度）再回来：转成 float32 会让中心差分被 float32 的舍入（约 $10^{-7}$）淹没，什么也检查不了。
* `ToDevice` 借用测试用的 “strict” 设备（一个行为像 CuPy 的 CPU 设备），因为这台机器不一定有 GPU。
* `Dropout` 每次调用前重新设随机种子，使掩码固定；否则函数本身是随机的，差分没有意义。
* `QuantizedEmbeddingFunction` 的输入（int8 码表和每行的缩放）是推理 (inference) 用的常量，设计上不求导。
* `CopyToTensorParallel` 和 `ReduceFromTensorParallel` 是张量并行 (tensor parallelism) 的 $f$ 和 $g$（第 8 章）：在一个进程里它们是恒等映射，这里只检查单进程的情形；跨进程的检查在测试套件里用 MPI 在 2 个和 3 个进程上运行。
* 这里每个运算只检查一组形状；测试套件 (`tests/test_ops_grad.py`、`tests/test_functional_grad.py`) 用 Hypothesis 随机抽取形状（包括大小为 1 的维度和广播）反复检查，并与 PyTorch 逐个比较。

## 注意力的计算图

用上面的 `draw_graph` 画两种写法的注意力：由基本运算拼成（每个 `@`、`*`、`swapaxes` 和 softmax 都是一个节点，各自为反向传播保存输入），
以及融合的 `F.scaled_dot_product_attention`（一个节点，一个手写的反向传播——就是我们刚推导的那个）。
两者的数值和梯度都相同；融合的版本记录的节点更少，反向只需保存 $Q, K, V, P$。
""", en=r"""
All {{n_functions}} `tl.Function` subclasses of the library are in the table (not covered: {{n_missing}});
{{n_passed}} of the {{n_rows}} checked rows pass, the library's largest error is {{table_max_error:.1e}}, and the
deliberately wrong `WrongSoftmax` errs by {{wrong_error:.1e}}. The table moves with the library: if someone
adds a `tl.Function` without adding a row here, the "not covered" line names it.

Notes:

* `Cast` goes to `np.longdouble` (extended precision) and back: a cast to float32 would drown the
  central differences in float32 rounding (about $10^{-7}$) and check nothing.
* `ToDevice` uses the test suite's "strict" device (a CPU device that behaves like CuPy), since
  this machine need not have a GPU.
* `Dropout` reseeds before each call so that its mask is fixed; otherwise the function is random
  and differences mean nothing.
* `QuantizedEmbeddingFunction`'s inputs (the int8 codes and row scales) are inference constants,
  not differentiated by design.
* `CopyToTensorParallel` and `ReduceFromTensorParallel` are tensor parallelism's $f$ and $g$
  (chapter 8): in one process they are the identity, and only that case is checked here; the
  cross-process checks run in the test suite under MPI, on 2 and 3 processes.
* Each operation is checked on one set of shapes here; the test suite (`tests/test_ops_grad.py`,
  `tests/test_functional_grad.py`) draws shapes with Hypothesis (size-1 dimensions and broadcasting
  included), checks them again and again, and compares each with PyTorch.

## The computational graph of attention, drawn

The same `draw_graph` on attention written two ways: composed from primitives (every `@`, `*`,
`swapaxes` and the softmax is its own node, each saving its inputs for backward), and the fused
`F.scaled_dot_product_attention` (one node, one hand-written backward — the one we just derived).
Both give the same numbers and gradients; the fused one records fewer nodes and keeps only
$Q, K, V, P$ for the backward.
""")

code(r"""
for tensor_, name in ((q, "Q"), (k, "K"), (v, "V")):
    tensor_.name = name
composed = F.softmax(q @ k.swapaxes(-1, -2) * (1 / math.sqrt(3)), axis=-1) @ v
loss_composed = composed.sum()
fused = F.scaled_dot_product_attention(q, k, v)
loss_fused = fused.sum()
print(tr("拼成的 == 融合的：", "composed == fused:"), np.allclose(composed.numpy(), fused.numpy()))

fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), gridspec_kw={"width_ratios": [2.2, 1]})
n1 = draw_graph(loss_composed, axes[0], tr("由基本运算拼成的注意力", "attention composed from primitives"), show_values=False)
n2 = draw_graph(loss_fused, axes[1], tr("融合的 F.scaled_dot_product_attention", "fused F.scaled_dot_product_attention"), show_values=False)
plt.tight_layout(); plt.show()
record(nodes_composed=n1, nodes_fused=n2)
print(tr(f"图的节点数（张量，含叶子和损失）：拼成的 {n1}，融合的 {n2}",
         f"graph nodes (tensors, leaves and the loss included): composed {n1}, fused {n2}"))
""", alt=(
    "注意力的两张计算图，方框和箭头，橙色的输入 Q、K（形状 (2, 4, 3)）"
    "和 V（(2, 4, 2)）。左：由基本运算拼成：K 的 Transpose，"
    "与 Q 的 MatMul，乘以常数 0.5774（1/√3）"
    "的 Mul，Softmax，与 V 的 MatMul，最后是 Sum，"
    "共 {{nodes_composed}} 个节点。右：融合的 F.scaled_dot_product_attention："
    "Q、K、V 直接进入一个 Attention 节点，然后是 Sum，"
    "共 {{nodes_fused}} 个节点。",
    "Two computational graphs of attention as boxes and arrows, with the inputs Q and K (shape (2, 4, "
    "3)) and V ((2, 4, 2)) in orange. Left, composed from primitives: a Transpose of K, a MatMul with "
    "Q, a Mul by the constant 0.5774 (1/√3), a Softmax, a MatMul with V and a Sum: {{nodes_composed}} "
    "nodes. Right, the fused F.scaled_dot_product_attention: Q, K and V go straight into one "
    "Attention node, then the Sum: {{nodes_fused}} nodes."))

# ============================================================================ try it
md(zh=r"""
两张图的节点数：拼成的 {{nodes_composed}} 个，融合的 {{nodes_fused}} 个。

## 动手试试

1. **用基本运算拼出 softmax。** 写 `def softmax_composed(x): e = (x - x.max(axis=-1, keepdims=True)).exp(); return e / e.sum(axis=-1, keepdims=True)`，
   对它做 gradcheck，并画出它的图。*预期：* gradcheck 通过——引擎自己从 `max`、`−`、`exp`、`sum`、`/` 的规则推出了 softmax 的反向传播；
   图里有五个运算节点，而 `F.softmax` 只有一个。
2. **给我们的引擎加一条规则。** 在 `Array` 里加上 `tanh`（$\partial L/\partial x = g\,(1-y^2)$，保存输出 $y$），把网络的 `relu` 换成它，
   再与 tinyllm 的 `F.tanh` 版比较梯度。*预期：* 两者相差在 $10^{-12}$ 以内；把规则写成 $(1 - x^2)$ 时就对不上了。
3. **弄坏层归一化。** 从 `MyLayerNorm.backward` 里删掉最后一项 `- xhat * (ghat * xhat).mean(...)`。*预期：* 输入 0 上的 gradcheck 失败，
   报告某个元素的解析值和数值；删掉 `- ghat.mean(...)` 也会失败。`w` 和 `b` 的梯度不受影响（把 `xl` 设为 `requires_grad=False` 单独检查它们）。
4. **放大查询。** 把饱和实验里的查询和键改成标准差 2（`2 * rng.standard_normal(...)`）。*预期：* 缩放后的曲线又是平的，
   但最大权重的平均值比上面的 {{max_scaled_64:.2f}} 高得多：方差变成了 $16\,d_k$，除以 $\sqrt{d_k}$ 后还剩 16。
   $\sqrt{d_k}$ 只消除了对头宽度的依赖；$q$、$k$ 本身的大小要靠层归一化和小心的初始化来控制。
5. **原文的公式，用数算一遍。** 在 4.2 节把目标改成 $t = 0$，比较 $w = 0.8$ 和 $w = 3$。*预期：* $w = 3$ 时模型错得*更*厉害
   （$y \approx 0.98$，$L \approx 0.96$，而 $w = 0.8$ 时是 $0.45$），$\partial L/\partial w$ 却*小*了大约 9 倍（$0.052$ 对 $0.444$），
   因为因子 $\partial y/\partial z = y(1-y)$ 降到了 $0.018$。饱和的 sigmoid 恰恰在自信地犯错时学得最慢——与 4.1 节饱和的 softmax、第 3 章的 MSE 是同一个现象。
6. **把交叉熵写成一个融合运算。** 按上面推导的 $p - \mathrm{onehot}$，在下面的起点单元里写 `CrossEntropyFn`：前向用减去最大值的 log-softmax，
   反向返回 $g\,(p - \mathrm{onehot})/N$。""" + assignment_task("a3_softmax_layernorm", "cross_entropy")["zh"] + r"""
7. **max 的梯度，以及并列的情况。** `x.max(axis)` 的梯度只流向每行的最大元素；几个元素并列最大时，它们平分梯度（与 `torch.amax` 相同）。
   在起点单元里写 `MaxFn`。""" + assignment_task("a2_matmul_reductions", "max")["zh"] + r"""
8. **数值稳定的 sigmoid。** $x = -1000$ 时 $e^{-x}$ 溢出。用 $e^{-|x|}$ 分两种情况写 `SigmoidFn`，反向用输出 $y$：$g\,y(1-y)$。
   """ + assignment_task("a1_elementwise", "sigmoid")["zh"] + r"""
""", en=r"""
Nodes in the two graphs: {{nodes_composed}} composed, {{nodes_fused}} fused.

## Try it

1. **Softmax from primitives.** Write `def softmax_composed(x): e = (x - x.max(axis=-1, keepdims=True)).exp(); return e / e.sum(axis=-1, keepdims=True)`,
   gradcheck it, and draw its graph. *Expected:* gradcheck passes — the engine derives the softmax
   backward from the rules of `max`, `−`, `exp`, `sum` and `/` on its own — and the graph has five
   operation nodes where `F.softmax` has one.
2. **Add a rule to our engine.** Give `Array` a `tanh` ($\partial L/\partial x = g\,(1-y^2)$, saving
   the output $y$), use it instead of `relu` in the network, and compare the gradients with a
   tinyllm version using `F.tanh`. *Expected:* they agree within $10^{-12}$; with $(1 - x^2)$ as the
   rule they do not.
3. **Break layer norm.** Drop the last term, `- xhat * (ghat * xhat).mean(...)`, from
   `MyLayerNorm.backward`. *Expected:* the gradcheck fails for input 0, naming an element and both
   values; dropping `- ghat.mean(...)` instead fails too. The gradients of `w` and `b` are unaffected
   (check them alone by giving `xl` `requires_grad=False`).
4. **Scale the queries.** Repeat the saturation experiment with queries and keys of standard
   deviation 2 (`2 * rng.standard_normal(...)`). *Expected:* the scaled curve is flat again, but the
   mean largest weight is far above the {{max_scaled_64:.2f}} above: the variance is now $16\,d_k$, and
   dividing by $\sqrt{d_k}$ leaves 16. The $\sqrt{d_k}$ removes the dependence on the head size only;
   the size of $q$ and $k$ themselves is kept in check by layer norm and a careful initialisation.
5. **The article's formula, numerically.** In §4.2 set the target $t = 0$, then compare $w = 0.8$
   with $w = 3$. *Expected:* at $w = 3$ the model is *more* wrong ($y \approx 0.98$, $L \approx 0.96$
   against $0.45$), yet $\partial L/\partial w$ is about 9× *smaller* ($0.052$ against $0.444$),
   because the factor $\partial y/\partial z = y(1-y)$ has fallen to $0.018$. A saturated sigmoid
   learns slowly exactly when it is confidently wrong — the same effect as the saturated softmax of
   §4.1 and as MSE in chapter 3.
6. **Cross-entropy as one fused operation.** From the $p - \mathrm{onehot}$ derived above, write
   `CrossEntropyFn` in the starter cell below: a forward with the max-shifted log-softmax, a backward
   returning $g\,(p - \mathrm{onehot})/N$. """ + assignment_task("a3_softmax_layernorm", "cross_entropy")["en"] + r"""
7. **The gradient of max, and ties.** The gradient of `x.max(axis)` goes only to each row's largest
   element; when several tie, they share it equally (as `torch.amax`). Write `MaxFn` in the starter
   cell. """ + assignment_task("a2_matmul_reductions", "max")["en"] + r"""
8. **A numerically stable sigmoid.** At $x = -1000$, $e^{-x}$ overflows. Write `SigmoidFn` with
   $e^{-|x|}$ in two cases, and a backward from the output $y$: $g\,y(1-y)$.
   """ + assignment_task("a1_elementwise", "sigmoid")["en"] + r"""
""")

code(r"""
#zh: 练习 6 的起始代码（作业 a3_softmax_layernorm，任务 3.2）。写好两个方法，再运行 check_cross_entropy()。
#en: Exercise 6, starter (assignment a3_softmax_layernorm, task 3.2). Fill in both methods, then run check_cross_entropy().
class CrossEntropyFn(tl.Function):
    #zh: L = mean_n (logsumexp(z_n) − z_{n, t_n})，logits z 的形状是 (N, C)，整数目标 t 的形状是 (N,)
    #en: L = mean_n (logsumexp(z_n) − z_{n, t_n}) for logits z (N, C) and integer targets t (N,)
    def forward(self, logits, targets):
        #zh: 1. 每行减去它的最大值；2. log_p = shifted − log Σ exp(shifted)；3. 保存反向传播要用的量
        #en: 1. shift each row by its max; 2. log_p = shifted − log Σ exp(shifted); 3. save what backward needs
        raise NotImplementedError(tr("在这里写前向", "your forward here"))
    def backward(self, g):
        #zh: ∂L/∂z = g · (softmax(z) − onehot(t)) / N；返回 (grad_logits, None)：目标没有梯度
        #en: ∂L/∂z = g · (softmax(z) − onehot(t)) / N; return (grad_logits, None): targets get no gradient
        raise NotImplementedError(tr("在这里写反向", "your backward here"))

def check_cross_entropy():
    z_ = tl.Tensor(np.random.default_rng(1).standard_normal((4, 5)), requires_grad=True)
    t_ = np.array([0, 3, 4, 3])
    try:
        same = np.allclose(CrossEntropyFn.apply(z_, t_).item(), F.cross_entropy(z_, tl.Tensor(t_)).item())
        tl.gradcheck(lambda a: CrossEntropyFn.apply(a, t_), z_)
        print(tr("前向与 F.cross_entropy 一致，gradcheck 通过 ✓", "forward matches F.cross_entropy, gradcheck passes ✓") if same
              else tr("前向与 F.cross_entropy 不一致 ✗", "the forward differs from F.cross_entropy ✗"))
    except tl.GradcheckError as error:
        print(tr("反向还不对 ✗：", "the backward is not right yet ✗: "), error)

# check_cross_entropy()      # uncomment when CrossEntropyFn is written
""")

code(r"""
#zh: 练习 7 的起始代码（作业 a2_matmul_reductions，任务 2.3）。写好两个方法，再运行 check_max()。
#en: Exercise 7, starter (assignment a2_matmul_reductions, task 2.3). Fill in both methods, then run check_max().
class MaxFn(tl.Function):
    #zh: y = x 沿 `axis`（一个整数）的最大值，keepdims 与 np.max 相同
    #en: y = max of x along `axis` (an int), keepdims as in np.max
    def forward(self, x, axis=-1, keepdims=False):
        raise NotImplementedError(tr("在这里写前向", "your forward here"))
    def backward(self, g):
        #zh: g 流向每行的最大值；并列的最大值平分它（g / 个数）
        #en: g goes to each row's maximum; tied maxima share it equally (g / count)
        raise NotImplementedError(tr("在这里写反向", "your backward here"))

def check_max():
    ties = tl.Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    MaxFn.apply(ties, axis=1).sum().backward()
    shared = np.allclose(ties.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    try:
        tl.gradcheck(lambda a: MaxFn.apply(a, axis=0, keepdims=True), tl.Tensor(np.random.default_rng(2).standard_normal((3, 4)), requires_grad=True))
        print(tr("gradcheck 通过", "gradcheck passes") + (tr("，并列的最大值平分梯度 ✓", ", ties share the gradient ✓") if shared
              else tr("，但并列的最大值没有平分梯度 ✗", ", but ties do not share the gradient ✗")))
    except tl.GradcheckError as error:
        print(tr("反向还不对 ✗：", "the backward is not right yet ✗: "), error)

# check_max()      # uncomment when MaxFn is written
""")

code(r"""
#zh: 练习 8 的起始代码（作业 a1_elementwise，任务 1.4）。写好两个方法，再运行 check_sigmoid()。
#en: Exercise 8, starter (assignment a1_elementwise, task 1.4). Fill in both methods, then run check_sigmoid().
class SigmoidFn(tl.Function):
    def forward(self, x):
        #zh: e = np.exp(-np.abs(x))；x ≥ 0 处 y = 1/(1+e)，x < 0 处 y = e/(1+e)；保存 y
        #en: e = np.exp(-np.abs(x)); y = 1/(1+e) where x ≥ 0, e/(1+e) where x < 0; save y
        raise NotImplementedError(tr("在这里写前向", "your forward here"))
    def backward(self, g):
        #zh: ∂L/∂x = g · y · (1 − y)
        #en: ∂L/∂x = g · y · (1 − y)
        raise NotImplementedError(tr("在这里写反向", "your backward here"))

def check_sigmoid():
    x_ = tl.Tensor(np.array([-1000.0, -2.0, 0.0, 3.0, 1000.0]), requires_grad=True)
    with np.errstate(over="raise", invalid="raise"):
        y_ = SigmoidFn.apply(x_).numpy()
    finite = np.allclose(y_[[0, 2, 4]], [0.0, 0.5, 1.0])
    try:
        tl.gradcheck(lambda a: SigmoidFn.apply(a), tl.Tensor(np.linspace(-4, 4, 9), requires_grad=True))
        print(tr("gradcheck 通过", "gradcheck passes") + (tr("，±1000 也没有溢出 ✓", ", and ±1000 does not overflow ✓") if finite
              else tr("，但 ±1000 的值不对 ✗", ", but the values at ±1000 are wrong ✗")))
    except tl.GradcheckError as error:
        print(tr("反向还不对 ✗：", "the backward is not right yet ✗: "), error)

# check_sigmoid()      # uncomment when SigmoidFn is written
""")

md(zh=r"""
## 小结

| 原文（§4） | 本章的做法 |
|---|---|
| $Attention(Q,K,V) = softmax(\frac{QK^T}{\sqrt{d_k}})V$ | 五行 NumPy，与 `F.scaled_dot_product_attention` 相同；每个中间量的形状 |
| $Q$、$K$、$V$：查询、键、值矩阵 | 每行一个查询、键、值；$S$ 和 $P$ 是 $n \times m$ |
| $d_k$：键向量 (key vector) 的维度 | 测得 $\mathrm{Var}(q\cdot k) = d_k$（$d_k$ 从 1 到 1024）；不除以 $\sqrt{d_k}$，softmax 饱和，传到分数上的梯度变小（$d_k = 1024$ 时小 {{grad_ratio_1024:.0f}} 倍） |
| $\frac{\partial L}{\partial w} = \frac{\partial L}{\partial y}\frac{\partial y}{\partial z}\frac{\partial z}{\partial w}$ | 对 $z = wx+b$、$y=\sigma(z)$、$L=(y-t)^2$ 逐个因子手算，等于 tinyllm 的 `w.grad` 和有限差分；多条路径的梯度相加 |
| $L$、$w$、$y$、$z$ | 画成 tinyllm 记录的计算图（`._ctx`、`.inputs`），带数值和梯度 |
| 反向传播算法本身 | 自己写的引擎：标量 `Value` 和数组 `Array`，共 """ + str(ENGINE_LINES) + r""" 行，拓扑排序 + 倒序传梯度；梯度与 tinyllm 相差 {{engine_array_gap:.1e}}，训练曲线重合 |
| Transformer 各运算的反向传播 | 矩阵乘法、softmax、交叉熵 $p - \mathrm{onehot}$、嵌入（分散累加）、GELU $\Phi + x\varphi$、残差 $g + J^\top g$、层归一化、注意力：逐个推导并数值验证 |
| 每个梯度都经过检验 | 库里 {{n_functions}} 个 `tl.Function` 全部进表，{{n_rows}} 行中 {{n_passed}} 行通过，最大误差 {{table_max_error:.1e}}；故意写错的 softmax 被抓住 |

下一章把这些部件拼成原文的 `TransformerModel` 并训练它，再从二元模型 (bigram model) 开始一步一步长出一个 GPT。
""", en=r"""
## Summary

| the article (§4) | what this chapter showed |
|---|---|
| $Attention(Q,K,V) = softmax(\frac{QK^T}{\sqrt{d_k}})V$ | five lines of NumPy equal to `F.scaled_dot_product_attention`; the shapes of every intermediate |
| $Q$, $K$, $V$ 查询/键/值矩阵 | one row per query, key, value; $S$ and $P$ are $n \times m$ |
| $d_k$ 键向量的维度 | $\mathrm{Var}(q\cdot k) = d_k$ measured for $d_k = 1 \dots 1024$; without $1/\sqrt{d_k}$ the softmax saturates and the gradient reaching the scores shrinks ({{grad_ratio_1024:.0f}}× at $d_k = 1024$) |
| $\frac{\partial L}{\partial w} = \frac{\partial L}{\partial y}\frac{\partial y}{\partial z}\frac{\partial z}{\partial w}$ | each factor by hand for $z = wx+b$, $y=\sigma(z)$, $L=(y-t)^2$; equal to tinyllm's `w.grad` and to a finite difference; several paths add |
| $L$, $w$, $y$, $z$ | drawn as the graph tinyllm records (`._ctx`, `.inputs`), with values and gradients |
| backpropagation itself | our own engine: scalar `Value` and array `Array`, """ + str(ENGINE_LINES) + r""" lines, topological sort + gradients passed back in reverse; gradients within {{engine_array_gap:.1e}} of tinyllm's, the same training curve |
| the backward of the Transformer's operations | matmul, softmax, cross-entropy $p - \mathrm{onehot}$, embedding (scatter-add), GELU $\Phi + x\varphi$, residual $g + J^\top g$, layer norm, attention: each derived and checked numerically |
| every gradient checked | all {{n_functions}} `tl.Function`s of the library in one table, {{n_passed}} of {{n_rows}} rows pass, largest error {{table_max_error:.1e}}; the wrong softmax caught |

Next: chapter 5 assembles these pieces into the article's `TransformerModel` and trains it, then
grows a GPT step by step from a bigram model.
""")

ch.index(builds=("自动求导引擎（标量 `Value`、数组 `Array`，拓扑排序与 `backward`），与 tinyllm 对照并训练一个小网络；"
                 "√d_k 的三个测量；交叉熵（p − onehot）、嵌入、GELU、残差、层归一化、注意力的反向传播推导与数值验证；"
                 "库里每个 `tl.Function` 的梯度检查表",
                 "an autograd engine (scalar `Value`, array `Array`, topological sort and `backward`), checked against "
                 "tinyllm and training a small network; three measurements of √d_k; the backward of cross-entropy "
                 "(p − onehot), embedding, GELU, residual, layer norm and attention derived and checked; a gradcheck "
                 "table of every `tl.Function` of the library"),
         figures=("{{n_passed}}/{{n_rows}} 行梯度检查通过（库里 {{n_functions}} 个 `tl.Function` 全部在表里），最大误差 {{table_max_error:.1e}}；自写引擎与 tinyllm 梯度差 "
                  "{{engine_array_gap:.1e}}；d_k = 1024 时缩放使梯度大 {{grad_ratio_1024:.0f}} 倍",
                  "{{n_passed}}/{{n_rows}} gradcheck rows pass (all {{n_functions}} `tl.Function`s of the library in the table), largest error {{table_max_error:.1e}}; our engine vs "
                  "tinyllm gradients {{engine_array_gap:.1e}}; at d_k = 1024 the scaling makes the gradient "
                  "{{grad_ratio_1024:.0f}}× larger"))

if __name__ == "__main__":
    ch.build()
