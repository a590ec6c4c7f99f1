"""Build chapters/04_formulas.ipynb: write the cells, run them all (full mode), save the
notebook with its outputs.

    python chapters/build/ch04_formulas.py            # build and execute (< 1 min)
    python chapters/build/ch04_formulas.py --fast     # TINYLLM_FAST=1, written to /tmp
    python chapters/build/ch04_formulas.py --no-execute  # write the cells only
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Notebook  # noqa: E402

nb = Notebook()
md, code = nb.md, nb.code

# ============================================================================ title
md(r"""
# 4 · 数学模型和公式详细讲解举例说明 — The formulas

> *Seed §4.1 自注意力机制.* **自注意力机制的计算公式如下：**
> $$ Attention(Q, K, V) = softmax(\frac{QK^T}{\sqrt{d_k}})V $$
> **其中：** $Q$ 是查询矩阵 (the query matrix)， $K$ 是键矩阵 (the key matrix)，
> $V$ 是值矩阵 (the value matrix)， $d_k$ 是键向量的维度 (the dimension of the key vectors)。
>
> *Seed §4.2 反向传播算法.* **反向传播算法的计算公式如下：**
> $$ \frac{\partial L}{\partial w} = \frac{\partial L}{\partial y} \frac{\partial y}{\partial z} \frac{\partial z}{\partial w} $$
> **其中：** $L$ 是损失函数 (the loss)， $w$ 是模型参数 (a parameter)， $y$ 是模型输出 (the
> model's output)， $z$ 是中间变量 (an intermediate variable)。

Two formulas carry the whole of training a Transformer: the attention that computes, and
the chain rule that computes how to improve it. This chapter takes each apart.

**What you will build**

1. The attention formula as five lines of NumPy, equal to `F.scaled_dot_product_attention`.
2. **Why $\sqrt{d_k}$**: three measurements — the variance of dot products grows like
   $d_k$; without the scaling the softmax saturates; and its gradient vanishes.
3. **The chain rule** on a three-node graph: each factor by hand, the product, the library's
   gradient and a finite-difference estimate side by side, and the graph drawn from tinyllm's
   own records (`tensor._ctx`, `fn.inputs`).
4. **Backward passes derived by hand** for matmul, softmax, layer norm and attention — each
   written as a `tl.Function`, checked with `tl.gradcheck`, and compared with the library —
   plus proof that the checker catches a wrong derivative.
5. The computational graph of attention drawn twice: composed from primitives, and fused.

*Run time:* about half a minute on 2 CPU cores (a few seconds with `TINYLLM_FAST=1`).
""")

code(r"""
import os, sys, time, math
FAST = os.environ.get("TINYLLM_FAST") == "1"   # CI sets this: smaller experiments, same cells
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
np.set_printoptions(precision=4, suppress=True)

import tinyllm as tl
import tinyllm.functional as F

tl.manual_seed(0)
rng = np.random.default_rng(0)
print(f"tinyllm {tl.__version__} · numpy {np.__version__} · FAST={FAST}")
""")

# ============================================================================ 4.1
md(r"""
## 4.1 自注意力机制 — $\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$

Read the formula inside out, with $n$ queries, $m$ keys and values:

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
    S = S - S.max(axis=-1, keepdims=True)                  # (softmax is unchanged by a shift; no overflow)
    P = np.exp(S) / np.exp(S).sum(axis=-1, keepdims=True)  # softmax per row   (n, m)
    return P @ V                                           # weighted sum      (n, d_v)

Q, K, V = rng.standard_normal((5, 16)), rng.standard_normal((7, 16)), rng.standard_normal((7, 8))
ours = attention_numpy(Q, K, V)
library = F.scaled_dot_product_attention(tl.Tensor(Q), tl.Tensor(K), tl.Tensor(V))
print("shapes: Q", Q.shape, "K", K.shape, "V", V.shape, "→ output", ours.shape)
print("five lines of NumPy == F.scaled_dot_product_attention:", np.allclose(ours, library.numpy()))
""")

md(r"""
### Why divide by $\sqrt{d_k}$? (1) The variance of a dot product

Suppose the components of a query $q$ and a key $k$ are independent with mean 0 and
variance 1 (roughly what layer norm and a sensible initialisation give). Then each product
$q_c k_c$ has mean 0 and variance $\mathbb E[q_c^2]\,\mathbb E[k_c^2] = 1$, and the $d_k$
products are independent, so

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
ax.set_xlabel("d_k"); ax.set_ylabel("variance over random pairs"); ax.legend()
plt.tight_layout(); plt.show()
for d, r, s in list(zip(dims, raw_var, scaled_var))[::2]:
    print(f"d_k = {d:5d}   Var(q·k) = {r:8.1f}   Var(q·k/√d_k) = {s:.3f}")
""")

md(r"""
### (2) Without the scaling, the softmax saturates

Scores with a spread of $\sqrt{d_k}$ make the softmax pick its largest entry almost
exclusively: $e^{30}$ beside $e^{10}$ leaves nothing for the rest. We measure, for 32
keys, the average largest weight of a row and the entropy of the rows (relative to the
uniform row's $\ln 32$):
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
axes[0].set_ylabel("mean of the largest weight"); axes[1].set_ylabel("entropy / ln 32")
for ax in axes:
    ax.set_xlabel("d_k"); ax.legend()
plt.tight_layout(); plt.show()
i64 = list(dims).index(64)
print(f"d_k = 64: largest weight {stats['raw']['max'][i64]:.2f} unscaled vs {stats['scaled']['max'][i64]:.2f} scaled")
""")

md(r"""
### (3) …and a saturated softmax passes back (almost) no gradient

The derivative of the softmax (derived below) is $\partial p_i / \partial s_j = p_i(\delta_{ij} - p_j)$.
When a row is nearly one-hot, $p_i(\delta_{ij}-p_j) \approx 0$ for every $i, j$: whatever
the loss says, the scores — and so $W^Q$ and $W^K$ — hardly move. Measured with tinyllm's
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
ax.set_xlabel("d_k"); ax.set_ylabel("mean |∂L/∂S|"); ax.legend(); plt.tight_layout(); plt.show()
for d in (64, 1024):
    i = list(dims).index(d)
    print(f"d_k = {d:4d}: the gradient reaching the scores is {grad_size['scaled'][i] / grad_size['raw'][i]:.0f}× larger with the scaling")
""")

md(r"""
That is the reason for the $\sqrt{d_k}$ in the seed's formula: it keeps the scores at unit
scale for every head size, so the softmax stays soft and trainable. (The factor is a
convention that matches the variance argument; some models fold a learned temperature into
$W^Q$ instead.)

## 4.2 反向传播算法 — The chain rule

### One path through a small graph

The seed's formula names four things: a parameter $w$, an intermediate $z$, the output $y$
and the loss $L$. The smallest model that has all four — one neuron with a sigmoid and a
squared error:

$$ z = w\,x + b, \qquad y = \sigma(z) = \frac{1}{1+e^{-z}}, \qquad L = (y - t)^2 $$

with input $x = 1.5$, target $t = 1$, and parameters $w = 0.8$, $b = -0.5$. Each factor of
the chain rule is the derivative of one line:

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
print(f"forward:  z = {z_val:.4f}   y = {y_val:.4f}   L = {L_val:.6f}")
print(f"factors:  ∂L/∂y = {dL_dy:.4f}   ∂y/∂z = {dy_dz:.4f}   ∂z/∂w = {dz_dw:.4f}")
print(f"by hand:  ∂L/∂w = {dL_dy:.4f} × {dy_dz:.4f} × {dz_dw:.4f} = {dL_dy * dy_dz * dz_dw:.6f}")
""")

md(r"""
Now the same graph in tinyllm. `retain_grad()` keeps the gradients of the intermediate
tensors (normally only leaves keep theirs), so we can see each partial product arrive:
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

print(f"∂L/∂y = {y.grad.item():.6f}   (by hand {dL_dy:.6f})")
print(f"∂L/∂z = {z.grad.item():.6f}   (by hand ∂L/∂y·∂y/∂z = {dL_dy * dy_dz:.6f})")
print(f"∂L/∂w = {w.grad.item():.6f}   (by hand ∂L/∂y·∂y/∂z·∂z/∂w = {dL_dy * dy_dz * dz_dw:.6f})")
print(f"∂L/∂b = {b.grad.item():.6f}   (∂z/∂b = 1, so the same as ∂L/∂z)")

def loss_at(w_value):
    zz = w_value * x_val + b_val
    return (1 / (1 + math.exp(-zz)) - t_val) ** 2
eps = 1e-6
print(f"finite difference (L(w+ε) − L(w−ε)) / 2ε = {(loss_at(w_val + eps) - loss_at(w_val - eps)) / (2 * eps):.6f}")
""")

md(r"""
### The graph, as tinyllm recorded it

Every tensor made by an operation remembers that operation in `._ctx` (a `Function`), and
the function remembers its inputs in `.inputs`. Walking those links back from $L$ finds the
whole graph — exactly what `backward()` does before it runs. Here is a small drawing routine
that does the walk and lays the nodes out by their distance from the loss:
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
        a, b = position[id(parent)], position[id(child)]
        ax.annotate("", xy=box_edge(b, a), xytext=box_edge(a, b),
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
draw_graph(L, ax, "z = w·x + b,  y = σ(z),  L = (y − t)²   (orange: parameters; blue: operations)")
plt.tight_layout(); plt.show()
""")

md(r"""
Read the drawing from right to left and you have backpropagation: $L$ starts with
$\partial L/\partial L = 1$; `Pow` multiplies by $2(y-t)$; `Sub` passes it through; `Sigmoid`
multiplies by $y(1-y)$; `Add` hands the same gradient to both summands (so
$\partial L/\partial b = \partial L/\partial z$); `Mul` multiplies by the *other* factor,
$x$, to give $\partial L/\partial w$. Each operation only needs its own local derivative —
that is why an autograd engine can be built from a few dozen small rules.

### Several paths: the gradients add

The seed's product of three factors follows one path from $w$ to $L$. When a value reaches
the loss along several paths, the chain rule sums over them:

$$ \frac{\partial L}{\partial w} = \sum_{\text{paths } w \to L} \prod_{\text{edges on the path}} \frac{\partial\,\text{head}}{\partial\,\text{tail}} $$

Example: $u = w x$, $L = u\,w$ (so $L = w^2 x$). Path 1 through $u$ gives $x \cdot w$; path 2
directly gives $u$; the sum is $2wx$:
""")

code(r"""
w2 = tl.Tensor(0.8, dtype=f64, requires_grad=True); w2.name = "w"
u = w2 * x; u.name = "u"
L2 = u * w2; L2.name = "L"
L2.backward()
print(f"tinyllm: ∂L/∂w = {w2.grad.item():.4f};  by hand: x·w + u = {x_val * 0.8:.4f} + {x_val * 0.8:.4f} = {2 * 0.8 * x_val:.4f}")
""")

# ============================================================================ backward by hand
md(r"""
## Backward passes derived by hand

An autograd engine never builds a Jacobian matrix. For an operation $Y = f(X)$ it needs only
the **vector–Jacobian product**: given $G = \partial L/\partial Y$ (same shape as $Y$), return
$\partial L/\partial X$ (same shape as $X$):

$$ \frac{\partial L}{\partial X_{a}} = \sum_{b} \frac{\partial L}{\partial Y_{b}} \frac{\partial Y_{b}}{\partial X_{a}} $$

— the chain rule once more, summed over every output element $b$ that $X_a$ influences. In
tinyllm such a rule is a `tl.Function`: `forward` on raw NumPy arrays, saving what the
backward needs; `backward(g)` returning one gradient per input. We write four of them, and
check each with **`tl.gradcheck`**, which compares the backward against central differences

$$ \frac{\partial L}{\partial x_i} \approx \frac{L(x + \varepsilon e_i) - L(x - \varepsilon e_i)}{2\varepsilon} $$

on $L = \sum v \odot f(x)$ for a random $v$ (so the whole vector–Jacobian product is tested,
not just one output). Central differences have an error of order $\varepsilon^2$, one-sided
ones of order $\varepsilon$. Too small an $\varepsilon$ drowns the difference in rounding
error ($\sim 10^{-16}/\varepsilon$ in float64 — which is why gradcheck insists on float64).
Measured on $\tanh'(0.7)$: the central estimate is best near $\varepsilon = 10^{-5}$ and
about $10^4$ times more accurate than the best one-sided one (gradcheck uses $10^{-6}$):
""")

code(r"""
f, df, x0 = np.tanh, lambda s: 1 - np.tanh(s) ** 2, 0.7
epsilons = 10.0 ** np.arange(-14, 0)
one_sided = [abs((f(x0 + e) - f(x0)) / e - df(x0)) for e in epsilons]
central = [abs((f(x0 + e) - f(x0 - e)) / (2 * e) - df(x0)) for e in epsilons]
fig, ax = plt.subplots(figsize=(5, 3))
ax.loglog(epsilons, one_sided, "o-", label="one-sided (f(x+ε) − f(x)) / ε")
ax.loglog(epsilons, central, "s-", label="central (f(x+ε) − f(x−ε)) / 2ε")
ax.set_xlabel("ε"); ax.set_ylabel("error of the estimate of tanh′(0.7)"); ax.legend(fontsize=8)
plt.tight_layout(); plt.show()
print(f"best central error {min(central):.1e} at ε = {epsilons[int(np.argmin(central))]:.0e}")
""")

md(r"""
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
print("gradcheck(MyMatMul):", tl.gradcheck(lambda a, b: MyMatMul.apply(a, b), X, W))

G = rng.standard_normal((4, 5))
X.grad = W.grad = None                          # (gradcheck left its own gradients there)
MyMatMul.apply(X, W).backward(G); mine = (X.grad.copy(), W.grad.copy())
X.grad = W.grad = None
(X @ W).backward(G)
print("same gradients as the library's @:", np.allclose(mine[0], X.grad) and np.allclose(mine[1], W.grad))
""")

md(r"""
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

Note that it uses the forward's *output* $y$ — so the forward saves $y$, not $x$. First the
Jacobian itself, measured column by column with tinyllm's backward (one backward per unit
vector $g = e_i$ gives row $i$ of $J$):
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
print("measured with backward == formula:", np.allclose(J_measured, J_formula))
print("each row sums to 0 (softmax ignores a constant shift of x):", np.allclose(J_formula.sum(axis=1), 0))
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
print("same gradient as F.softmax:", np.allclose(mine, xs.grad))
""")

md(r"""
**The checker can fail.** A test that cannot fail proves nothing, so here is a plausible
wrong derivative — forgetting that every $x_j$ also changes the denominator, i.e. dropping
the $-\,g\cdot y$ term:
""")

code(r"""
class WrongSoftmax(MySoftmax):
    def backward(self, g):
        (y,) = self.saved
        return (y * g,)                         # the diagonal of J only: wrong

try:
    tl.gradcheck(lambda a: WrongSoftmax.apply(a), xs)
except tl.GradcheckError as error:
    print("GradcheckError:", error)
""")

md(r"""
### Layer normalisation

Over the last axis of width $D$:

$$ \mu = \frac1D \sum_c x_c,\quad \sigma^2 = \frac1D\sum_c (x_c-\mu)^2,\quad r = \frac{1}{\sqrt{\sigma^2+\epsilon}},\quad \hat x = (x-\mu)\,r,\quad y = w \odot \hat x + b $$

The parameters are easy: $\partial L/\partial b = \sum_{\text{rows}} g$ and
$\partial L/\partial w = \sum_{\text{rows}} g \odot \hat x$. For $x$, write
$\hat g = g \odot w$ (the gradient reaching $\hat x$). Three facts —
$\partial(x_i-\mu)/\partial x_j = \delta_{ij} - \frac1D$, $\;\partial\sigma^2/\partial x_j = \frac2D(x_j-\mu)$
(because $\sum_c (x_c - \mu) = 0$), and so $\partial r/\partial x_j = -\frac{r^2}{D}\hat x_j$ — give

$$
\frac{\partial \hat x_i}{\partial x_j} = r\Big(\delta_{ij} - \frac1D - \frac{\hat x_i \hat x_j}{D}\Big)
\qquad\Longrightarrow\qquad
\frac{\partial L}{\partial x} = r\,\Big(\hat g - \mathrm{mean}(\hat g) - \hat x \odot \mathrm{mean}(\hat g \odot \hat x)\Big)
$$

Two projections are removed from $\hat g$: its mean (shifting $x$ does not change $\hat x$)
and its component along $\hat x$ (scaling $x$ does not change $\hat x$).
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
MyLayerNorm.apply(xl, wl, bl).backward(G); mine = [t.grad.copy() for t in (xl, wl, bl)]
for t_ in (xl, wl, bl):
    t_.grad = None
F.layer_norm(xl, wl, bl).backward(G)
print("same gradients as F.layer_norm:", all(np.allclose(m, t_.grad) for m, t_ in zip(mine, (xl, wl, bl))))
""")

md(r"""
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
print("same gradients as F.scaled_dot_product_attention:", all(np.allclose(m, t_.grad) for m, t_ in zip(mine, (q, k, v))))
""")

md(r"""
The library's `Attention` (in `tinyllm/functional.py`) is this class with dropout and
broadcasting added; its docstring carries the same five formulas.

## The computational graph of attention, drawn

The same `draw_graph` as above, on attention written two ways: composed from primitives
(every `@`, `*`, `swapaxes` and the softmax is its own node, each saving its inputs for
backward), and the fused `F.scaled_dot_product_attention` (one node, one hand-written
backward — the one we just derived). Both give the same numbers and gradients; the fused one
records one node instead of five and keeps only $Q, K, V, P$ for the backward.
""")

code(r"""
for tensor_, name in ((q, "Q"), (k, "K"), (v, "V")):
    tensor_.name = name
composed = F.softmax(q @ k.swapaxes(-1, -2) * (1 / math.sqrt(3)), axis=-1) @ v
loss_composed = composed.sum()
fused = F.scaled_dot_product_attention(q, k, v)
loss_fused = fused.sum()
print("composed == fused:", np.allclose(composed.numpy(), fused.numpy()))

fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), gridspec_kw={"width_ratios": [2.2, 1]})
n1 = draw_graph(loss_composed, axes[0], "attention composed from primitives", show_values=False)
n2 = draw_graph(loss_fused, axes[1], "fused F.scaled_dot_product_attention", show_values=False)
plt.tight_layout(); plt.show()
print(f"graph nodes (tensors, leaves and the loss included): composed {n1}, fused {n2}")
""")

md(r"""
## Try it

1. **Softmax from primitives.** Write `def softmax_composed(x): e = (x - x.max(axis=-1, keepdims=True)).exp(); return e / e.sum(axis=-1, keepdims=True)`,
   gradcheck it, and draw its graph. *Expected:* gradcheck passes — the engine derives the
   softmax backward from the rules of `max`, `−`, `exp`, `sum` and `/` on its own — and the
   graph has five operation nodes where `F.softmax` has one.
2. **Break layer norm.** Drop the last term, `- xhat * (ghat * xhat).mean(...)`, from
   `MyLayerNorm.backward`. *Expected:* `GradcheckError` for input 0 naming an element, the
   analytic and the numeric value. Dropping `- ghat.mean(...)` instead fails too. The
   gradients of `w` and `b` are unaffected (check them alone by passing `xl` with
   `requires_grad=False`).
3. **Scale the queries.** Repeat the saturation experiment with queries and keys of
   standard deviation 2 instead of 1 (`2 * rng.standard_normal(...)`). *Expected:* the scaled
   curve is flat again, but at a largest weight of ≈ 0.65 instead of ≈ 0.15: the variance is
   now $16\,d_k$, and dividing by $\sqrt{d_k}$ leaves 16. The $\sqrt{d_k}$ removes the
   dependence on the head size only; the size of $q$ and $k$ themselves is kept in check by
   layer norm and a careful initialisation.
4. **Derive tanh.** Write `MyTanh` with $y = \tanh x$ and $\partial L/\partial x = g\,(1-y^2)$
   (save $y$). *Expected:* gradcheck passes; with $(1 - x^2)$ instead it fails.
5. **The seed's formula, numerically.** In §4.2 set the target $t = 0$, then compare
   $w = 0.8$ with $w = 3$. *Expected:* at $w = 3$ the model is *more* wrong ($y \approx 0.98$,
   $L \approx 0.96$ against $0.45$), yet $\partial L/\partial w$ is about 9× *smaller*
   ($0.052$ against $0.444$), because the factor $\partial y/\partial z = y(1-y)$ has fallen
   to $0.018$. A saturated sigmoid learns slowly exactly when it is confidently wrong — the
   same effect as the saturated softmax of §4.1 and as MSE in chapter 3.

## Summary

| seed (§4) | what this chapter showed |
|---|---|
| $Attention(Q,K,V) = softmax(\frac{QK^T}{\sqrt{d_k}})V$ | five lines of NumPy equal to `F.scaled_dot_product_attention`; the shapes of every intermediate |
| $Q$, $K$, $V$ 查询/键/值矩阵 | one row per query, key, value; $S$ and $P$ are $n \times m$ |
| $d_k$ 键向量的维度 | $\mathrm{Var}(q\cdot k) = d_k$ measured for $d_k = 1 \dots 1024$; without $1/\sqrt{d_k}$ the softmax saturates (largest weight → 1) and the gradient reaching the scores shrinks (by more than an order of magnitude at $d_k = 1024$) |
| $\frac{\partial L}{\partial w} = \frac{\partial L}{\partial y}\frac{\partial y}{\partial z}\frac{\partial z}{\partial w}$ | each factor by hand for $z = wx+b$, $y=\sigma(z)$, $L=(y-t)^2$; equal to tinyllm's `w.grad` and to a finite difference; several paths add |
| $L$, $w$, $y$, $z$ | drawn as the graph tinyllm records (`._ctx`, `.inputs`), with values and gradients |
| 反向传播 for the Transformer's operations | matmul $GW^\top$, $X^\top G$; softmax $y\odot(g - g\cdot y)$; layer norm $r(\hat g - \overline{\hat g} - \hat x\,\overline{\hat g\hat x})$; attention from those three — each a `tl.Function`, gradchecked, equal to the library; a wrong softmax caught |

Next: chapter 5 assembles these pieces into the seed's `TransformerModel` and trains it.
""")


if __name__ == "__main__":
    nb.build("04_formulas.ipynb")
