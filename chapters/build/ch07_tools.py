"""Build chapters/zh/07_tools.ipynb and chapters/en/07_tools.ipynb (the article's §7, 工具和资源推荐):
tinyllm next to PyTorch on the same GPT, a safetensors file written by hand, Hugging Face GPT-2
weights loaded by hand (then with GPT.from_gpt2) and a tinyllm model generating inside
transformers, CuPy and the strict device, TensorFlow.

    python chapters/build/ch07_tools.py                        # full run, both editions
    python chapters/build/ch07_tools.py --fast --out /tmp/ch   # quick check
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Chapter, assignment_task  # noqa: E402

ch = Chapter("07_tools", number=7, title=("工具和资源推荐", "Tools and resources"), sections="§7")
md, code = ch.md, ch.code

# ============================================================================ title
md(zh=r"""
# 7 · 工具和资源推荐

> **原文 §7**：
> * **PyTorch**：一个开源的深度学习框架，提供了丰富的工具和库，用于构建和训练 LLM。
> * **TensorFlow**：另一个流行的深度学习框架，也提供了 LLM 相关的工具和库。
> * **Hugging Face Transformers**：一个开源的 LLM 库，提供了预训练模型和工具，方便开发者使用 LLM。

tinyllm 是拿来读的，原文推荐的工具是拿来用的。本章把两者放在一起，让同一个模型在它们之间来回搬动：
你在 tinyllm 里学到的东西，换到以后真正要用的工具里依然成立。

**你会亲手搭建**

1. **tinyllm 对照 PyTorch**：同样几行代码在两个库里各写一遍；然后是同一个 GPT——逻辑值 (logits)、损失、每一个梯度 (gradient)、
   一步 AdamW 更新——逐个数字对照，再比较两边各要多少时间。
2. **亲手写一个 safetensors 文件**：8 个字节的长度、一段 JSON 头、原始字节，十几行代码；Hugging Face 的读取器直接读它。
   权重经由这种格式在两个库之间双向搬运。
3. **Hugging Face Transformers**：在本地构建一个随机初始化的 GPT-2（不下载任何东西），**亲手**把它的权重装进 tinyllm——
   改名、转置四个 `Conv1D` 矩阵——再与库函数 `GPT.from_gpt2` 对照；反过来，在 tinyllm 里训练的模型放进 `transformers` 生成文本。
4. **用 CuPy 上 GPU**：tinyllm 的设备模型，以及在测试里代替 GPU 的“严格设备” (strict device)。
5. **TensorFlow** 和延伸阅读。

完整运行约 {{run_seconds:.0f}} 秒（{{run_cores}} 核 CPU，内核 CPU 时间 {{kernel_cpu_seconds:.0f}} 秒）；设置 `TINYLLM_FAST=1`（CI 的做法）时步数更少，同样的单元不到一分钟跑完。
""", en=r"""
# 7 · 工具和资源推荐 — Tools and resources

> **The article, §7**:
> * **PyTorch**：一个开源的深度学习框架，提供了丰富的工具和库，用于构建和训练 LLM。
> * **TensorFlow**：另一个流行的深度学习框架，也提供了 LLM 相关的工具和库。
> * **Hugging Face Transformers**：一个开源的 LLM 库，提供了预训练模型和工具，方便开发者使用 LLM。
>
> (PyTorch: an open-source deep-learning framework with rich tools and libraries for building
> and training LLMs. TensorFlow: another popular framework, also with LLM tools and libraries.
> Hugging Face Transformers: an open-source LLM library of pretrained models and tools that make
> LLMs easy to use.)

tinyllm exists to be read; the article's tools exist to be used. This chapter puts them side by
side and moves one model back and forth between them, so that what you learned inside tinyllm
carries over to the tools you will use afterwards.

**What you will build**

1. **tinyllm next to PyTorch**: the same lines in both; then the same GPT — logits, loss, every
   gradient and an AdamW step, number for number — and the time each takes.
2. **A safetensors file written by hand**: an 8-byte length, a JSON header and the raw bytes,
   a dozen lines that Hugging Face's reader opens; weights moved both ways through that format.
3. **Hugging Face Transformers**: a GPT-2 built locally with random weights (nothing is
   downloaded), its weights loaded into tinyllm **by hand** — renamed, four `Conv1D` matrices
   transposed — and checked against the library's `GPT.from_gpt2`; then a model trained in
   tinyllm generating text inside `transformers`.
4. **A GPU with CuPy**: tinyllm's device model, and the strict device that stands in for a GPU
   in the tests.
5. **TensorFlow**, and where to read on.

A full run takes about {{run_seconds:.0f}} seconds on {{run_cores}} CPU cores ({{kernel_cpu_seconds:.0f}} s of kernel CPU time); with
`TINYLLM_FAST=1` (what CI does) the same cells take under a minute with fewer steps.
""")

ch.setup(r"""
import json, tempfile
import torch
import safetensors, safetensors.numpy, safetensors.torch
import transformers
import tinyllm.functional as F
from tinyllm.models import GPT, GPTConfig
from tinyllm.torch_reference import TorchGPT     # nanoGPT's model in PyTorch, with tinyllm's parameter names

torch.set_num_threads(1)             # small models: one thread is as fast, and steadier on a shared machine
transformers.utils.logging.set_verbosity_error()      # no download hints
transformers.utils.logging.disable_progress_bar()     # no progress bars on stderr
np.set_printoptions(precision=5, suppress=True, linewidth=110)
work = tempfile.mkdtemp(prefix="tinyllm_ch07_")        # the files this chapter writes
print(f"torch {torch.__version__} · transformers {transformers.__version__} · safetensors {safetensors.__version__}")
""")

# ============================================================================ PyTorch
md(zh=r"""
## PyTorch

### 同样的几行代码

tinyllm 的 `Tensor` 说 NumPy 的话（`axis=`、`.numpy()`），它的层说 `torch.nn` 的话（同样的名字、参数和权重布局）。
一个小计算在两边各写一遍——线性映射、交叉熵 (cross-entropy) 损失，以及它的梯度：

$$z = xW,\qquad \mathcal{L} = -\frac{1}{B}\sum_{b}\log\mathrm{softmax}(z_b)_{y_b},\qquad
\frac{\partial\mathcal{L}}{\partial W} = x^\top\,\frac{\mathrm{softmax}(z) - \mathrm{onehot}(y)}{B}$$
""", en=r"""
## PyTorch

### The same lines

A tinyllm `Tensor` speaks NumPy (`axis=`, `.numpy()`), its layers speak `torch.nn` (same
names, arguments and parameter layouts). A small computation written in both — a linear map, a
cross-entropy loss, and its gradient:

$$z = xW,\qquad \mathcal{L} = -\frac{1}{B}\sum_{b}\log\mathrm{softmax}(z_b)_{y_b},\qquad
\frac{\partial\mathcal{L}}{\partial W} = x^\top\,\frac{\mathrm{softmax}(z) - \mathrm{onehot}(y)}{B}$$
""")

code(r"""
x_np = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 2.0]], dtype=np.float32)
w_np = np.array([[0.1, -0.2], [0.3, 0.0], [-0.4, 0.5]], dtype=np.float32)
y_np = np.array([1, 0])

# tinyllm                                             # PyTorch
x = tl.Tensor(x_np)                                   ; xt = torch.tensor(x_np)
w = tl.Tensor(w_np, requires_grad=True)               ; wt = torch.tensor(w_np, requires_grad=True)
loss = F.cross_entropy(x @ w, tl.Tensor(y_np))        ; loss_t = torch.nn.functional.cross_entropy(xt @ wt, torch.tensor(y_np))
loss.backward()                                       ; loss_t.backward()

print(tr("损失      tinyllm", "loss      tinyllm"), loss.item(), "   torch", loss_t.item())
print("dL/dW     tinyllm\n", w.grad, "\n          torch\n", wt.grad.numpy())
p = F.softmax(x @ w, axis=-1).numpy()                 # the formula, by hand
print(tr("公式 x^T (softmax(z) - onehot(y)) / B\n", "the formula x^T (softmax(z) - onehot(y)) / B\n"),
      x_np.T @ (p - np.eye(2)[y_np]) / 2)
""")

md(zh=r"""
| 功能 | tinyllm | PyTorch |
|---|---|---|
| 数组库 | NumPy（CPU）或 CuPy（GPU） | 自己的张量 |
| 建一个张量 | `tl.Tensor(a, requires_grad=True, device="cpu")` | `torch.tensor(a, requires_grad=True, device="cpu")` |
| 归约 | `x.sum(axis=0, keepdims=True)`（NumPy 的说法） | `x.sum(dim=0, keepdim=True)` |
| `backward()` 之后叶子的梯度 | `w.grad`：一个 NumPy/CuPy 数组 | `w.grad`：一个张量 |
| 不建计算图 | `with tl.no_grad():` | `with torch.no_grad():` |
| 层 | `tl.nn.Linear(64, 128)`、`tl.nn.TransformerEncoderLayer(...)` | `torch.nn.Linear(64, 128)` 等（参数相同） |
| 权重 | `model.state_dict()`：名字 → NumPy 数组 | 名字 → 张量（名字相同，形状相同） |
| 优化器 (optimizer) | `tl.optim.AdamW(groups, lr=…)` | `torch.optim.AdamW(groups, lr=…)` |
| 设备 | `model.to("cuda")`、`Tensor(…, device="cuda")` | 相同 |

### 同一个 GPT

`tinyllm.torch_reference.TorchGPT` 是用 PyTorch 写的 nanoGPT 模型，参数名与 tinyllm 相同，所以 tinyllm 的 `state_dict()`
可以原样装进去。同样的权重，同样的批次：
""", en=r"""
| feature | tinyllm | PyTorch |
|---|---|---|
| array library | NumPy (CPU) or CuPy (GPU) | its own tensors |
| a tensor | `tl.Tensor(a, requires_grad=True, device="cpu")` | `torch.tensor(a, requires_grad=True, device="cpu")` |
| reductions | `x.sum(axis=0, keepdims=True)` (NumPy's words) | `x.sum(dim=0, keepdim=True)` |
| gradient of a leaf after `backward()` | `w.grad`: a NumPy/CuPy array | `w.grad`: a tensor |
| no graph | `with tl.no_grad():` | `with torch.no_grad():` |
| layers | `tl.nn.Linear(64, 128)`, `tl.nn.TransformerEncoderLayer(...)` | `torch.nn.Linear(64, 128)`, … (same arguments) |
| weights | `model.state_dict()`: name → NumPy array | name → tensor (same names, same shapes) |
| optimizer | `tl.optim.AdamW(groups, lr=…)` | `torch.optim.AdamW(groups, lr=…)` |
| device | `model.to("cuda")`, `Tensor(…, device="cuda")` | the same |

### The same GPT

`tinyllm.torch_reference.TorchGPT` is nanoGPT's model written in PyTorch with tinyllm's
parameter names, so a tinyllm `state_dict()` loads into it as it is. Same weights, same batch:
""")

code(r"""
config = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0)
tl.manual_seed(0)
ours = GPT(config)
theirs = TorchGPT(config).load_tinyllm_state(ours.state_dict())
print(tr(f"GPT，两边都是 {ours.num_params():,} 个参数", f"GPT with {ours.num_params():,} parameters (both sides)"))

rng = np.random.default_rng(0)
idx, targets = rng.integers(0, 65, (12, 64)), rng.integers(0, 65, (12, 64))
logits, loss = ours(idx, targets)
loss.backward()
logits_t, loss_t = theirs(torch.from_numpy(idx), torch.from_numpy(targets))
loss_t.backward()
logits_diff = np.abs(logits.numpy() - logits_t.detach().numpy()).max()
print(tr(f"逻辑值 {logits.shape}：max |tinyllm - torch| = {logits_diff:.2e}",
         f"logits {logits.shape}: max |tinyllm - torch| = {logits_diff:.2e}"))
print(tr(f"损失：tinyllm {loss.item():.6f}，torch {loss_t.item():.6f}", f"loss: tinyllm {loss.item():.6f}, torch {loss_t.item():.6f}"))

torch_params = dict(theirs.named_parameters())
rel = {name: np.abs(tl.backend.to_host(p.grad) - torch_params[name].grad.numpy()).max()
             / np.abs(torch_params[name].grad.numpy()).max() for name, p in ours.named_parameters()}
worst = max(rel, key=rel.get)
print(tr(f"{len(rel)} 个参数张量的梯度：最大相对差 {rel[worst]:.1e}（{worst}）",
         f"gradients of {len(rel)} parameter tensors: largest relative difference {rel[worst]:.1e} ({worst})"))
record(n_params=ours.num_params(), logits_diff=float(logits_diff), grad_rel=float(rel[worst]), n_grads=len(rel))
""")

md(zh=r"""
两边都是 float32：这个 {{n_params:,}} 个参数的 GPT 的逻辑值最多相差 {{logits_diff:.1e}}，{{n_grads}} 个梯度张量的最大相对差是 {{grad_rel:.1e}}——都是舍入误差的量级。
接下来是优化器。AdamW 带解耦的权重衰减 $\lambda$（只作用于矩阵，也就是常见的两组参数）：

$$m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad
w_t = w_{t-1} - \eta\Big(\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon} + \lambda\, w_{t-1}\Big)$$

除以 $\sqrt{v_t}$ 让每一步的步长都约等于 $\eta$，*不管梯度本身多大*。所以对一个梯度几乎为零的权重，float32 的舍入误差
会决定步长里看得见的一部分。为了比较两个优化器的算术，而不是 float32 的噪声，这次核对用 float64：两边从相同的权重出发各训练三步。
""", en=r"""
float32 on both sides: the logits of this {{n_params:,}}-parameter GPT differ by at most {{logits_diff:.1e}}, and the largest relative difference
over the {{n_grads}} gradient tensors is {{grad_rel:.1e}} — rounding, no more. Now the optimizer. AdamW with
decoupled weight decay $\lambda$ (on matrices only, the usual two groups):

$$m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad
w_t = w_{t-1} - \eta\Big(\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon} + \lambda\, w_{t-1}\Big)$$

Dividing by $\sqrt{v_t}$ makes every step about $\eta$ long *whatever the gradient's size*, so
for a weight whose gradient is nearly zero, float32 rounding in the gradient decides a visible
part of the step. To compare the optimizers' arithmetic rather than float32 noise, this check
runs in float64: three training steps on each side, from the same weights.
""")

code(r"""
def adamw_pair(tl_model, torch_model, lr=1e-3):
    # tinyllm's parameter groups, and the same split (by parameter name) for PyTorch
    groups = tl.optim.param_groups(tl_model.named_parameters(), weight_decay=0.1)
    decayed = {n for n, p in tl_model.named_parameters() if any(p is q for q in groups[0]["params"])}
    torch_groups = [{"params": [p for n, p in torch_model.named_parameters() if n in decayed], "weight_decay": 0.1},
                    {"params": [p for n, p in torch_model.named_parameters() if n not in decayed], "weight_decay": 0.0}]
    return tl.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99)), torch.optim.AdamW(torch_groups, lr=lr, betas=(0.9, 0.99))

ours64 = GPT(config); ours64.load_state_dict(ours.state_dict()); ours64.double()
theirs64 = TorchGPT(config).double().load_tinyllm_state(ours64.state_dict())
opt64, opt64_t = adamw_pair(ours64, theirs64)
adamw_diff = 0.0
for step in range(3):
    _, loss = ours64(idx, targets); opt64.zero_grad(); loss.backward(); opt64.step()
    _, loss_t = theirs64(torch.from_numpy(idx), torch.from_numpy(targets)); opt64_t.zero_grad(); loss_t.backward(); opt64_t.step()
    after = theirs64.state_dict()
    diff = max(np.abs(v - after[k].numpy()).max() for k, v in ours64.state_dict().items())
    adamw_diff = max(adamw_diff, diff)
    print(tr(f"第 {step + 1} 步：损失 tinyllm {loss.item():.10f}，torch {loss_t.item():.10f}；max |w_tinyllm - w_torch| = {diff:.1e}",
             f"step {step + 1}: loss tinyllm {loss.item():.10f}, torch {loss_t.item():.10f};  max |w_tinyllm - w_torch| = {diff:.1e}"))
record(adamw_diff=float(adamw_diff))
""")

md(zh=r"""
三步之后两边的权重最多相差 {{adamw_diff:.1e}}：float64 的舍入误差，两个优化器做的是同一套算术。

### 各自有多快？

同样的模型、同样的批次，完整的一个训练步（前向、反向、AdamW），两个库交替运行，让它们面对同样的机器状态。
“CPU” 是这个进程真正运行的时间（机器被共享时更公平的数字），“墙钟” (wall) 是墙上的钟走过的时间。
""", en=r"""
After three steps the two sides' weights differ by at most {{adamw_diff:.1e}}: float64 rounding — the two
optimizers do the same arithmetic.

### How fast is each?

Same model, same batch, a full training step (forward, backward, AdamW), alternating between
the two libraries so that both see the same machine state. "CPU" is the time this process ran
(the fairer number on a shared machine); "wall" is what a clock on the wall shows.
""")

code(r"""
opt, opt_t = adamw_pair(ours, theirs)                                  # float32, as in training

def tinyllm_step():
    _, loss = ours(idx, targets); opt.zero_grad(); loss.backward(); opt.step()

def torch_step():
    _, loss = theirs(torch.from_numpy(idx), torch.from_numpy(targets)); opt_t.zero_grad(); loss.backward(); opt_t.step()

def timed(step):
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - wall, time.process_time() - cpu

repeats = 2 if FAST else 10
for step in (tinyllm_step, torch_step):
    step()                                                              # warm-up
times = {"tinyllm": [], "PyTorch": []}
for _ in range(repeats):
    times["tinyllm"].append(timed(tinyllm_step)); times["PyTorch"].append(timed(torch_step))
n_tokens = idx.size
print(tr(f"一个训练步，批次 12 × 64 个词元，{repeats} 次的中位数（torch 线程数 {torch.get_num_threads()}）：",
         f"training step, batch 12 × 64 tokens, median of {repeats} (torch threads: {torch.get_num_threads()}):"))
medians = {}
for name, t in times.items():
    medians[name] = np.median(np.array(t), axis=0)
    wall, cpu = medians[name]
    print(tr(f"  {name:8} 墙钟 {1000 * wall:6.0f} ms   CPU {1000 * cpu:6.0f} ms   （每秒 {n_tokens / wall:,.0f} 个词元）",
             f"  {name:8} wall {1000 * wall:6.0f} ms   CPU {1000 * cpu:6.0f} ms   ({n_tokens / wall:,.0f} tokens/s)"))
ratio = medians["tinyllm"][1] / medians["PyTorch"][1]
print(tr(f"tinyllm / PyTorch（CPU 时间）：{ratio:.1f}×", f"tinyllm / PyTorch (CPU time): {ratio:.1f}×"))

fig, ax = plt.subplots(figsize=(5.5, 2.6))
for row, (name, t) in enumerate(times.items()):
    t = 1000 * np.array(t)                                   # (repeats, 2): wall, CPU in ms
    ax.scatter(t[:, 0], np.full(len(t), row + 0.12), marker="|", s=150, color="tab:grey")
    ax.scatter(t[:, 1], np.full(len(t), row - 0.12), marker="|", s=150, color="tab:blue")
ax.scatter([], [], marker="|", color="tab:grey", label=tr("墙钟", "wall"))
ax.scatter([], [], marker="|", color="tab:blue", label="CPU")
ax.set_yticks([0, 1], list(times)); ax.set_ylim(-0.6, 1.6); ax.set_xlim(left=0)
ax.set_xlabel(tr("一个训练步的毫秒数（每条竖线是一次测量）", "milliseconds per training step (one tick per measurement)"))
ax.set_title(tr("同一个 GPT、同一个批次", "the same GPT, the same batch")); ax.legend(fontsize=8, loc="lower right")
plt.tight_layout(); plt.show()
record(step_ratio=float(ratio), tinyllm_cpu_ms=1000 * float(medians["tinyllm"][1]),
       torch_cpu_ms=1000 * float(medians["PyTorch"][1]))
""", alt=(
    "同一个 GPT、同一个批次上一个训练步的时间，横轴是从 0 开始的毫秒数，"
    "每次测量一条竖线，两行：PyTorch 和 tinyllm，"
    "每行上面是墙钟时间（灰），下面是 CPU 时间（蓝）。每个库的竖线都挤在一小段里，"
    "重复测量之间差别很小，墙钟和 CPU 时间几乎重合；CPU 时间的中位数 tinyllm 为 "
    "{{tinyllm_cpu_ms:.0f}} 毫秒，PyTorch 为 {{torch_cpu_ms:.0f}} "
    "毫秒（比值 {{step_ratio:.1f}}）。",
    "Strip chart of the time of one training step of the same GPT on the same batch, milliseconds "
    "from 0 across, one tick per measurement, in two rows, PyTorch and tinyllm, each with wall-clock "
    "ticks (grey) above CPU-time ticks (blue). Each library's ticks sit in a narrow cluster, the "
    "repeats vary little, and wall and CPU time nearly coincide; the median CPU time is "
    "{{tinyllm_cpu_ms:.0f}} ms for tinyllm and {{torch_cpu_ms:.0f}} ms for PyTorch (a ratio of "
    "{{step_ratio:.1f}})."))

md(zh=r"""
这次运行里，tinyllm 的一步用了 {{tinyllm_cpu_ms:.0f}} ms CPU 时间，PyTorch 用了 {{torch_cpu_ms:.0f}} ms，比值 {{step_ratio:.1f}}。
两者谁快多少取决于机器和机器上同时在跑什么，所以墙钟时间旁边列了 CPU 时间。与机器无关的是：矩阵乘法两边花的一样多
（NumPy 和 PyTorch 调用的是同一类 BLAS 库），差别在其余的一切。PyTorch 把每个运算作为编译好的 C++ 执行，有些还会融合；
tinyllm 把每个运算写成几次从 Python 发起的 NumPy 调用，计算图放在 Python 对象里，反向传播也是更多的 NumPy 调用。
在这个规模上，一步是几百个小运算，每个运算的固定开销对两边都很重；模型越大，PyTorch 的编译和融合内核优势越明显。
这就是每一行都能读懂的代价——而能读懂正是 tinyllm 的目的。（`python -m tinyllm bench` 在两个模型规模上测量两者，
还包括内存和生成速度。）

## 权重双向搬运：safetensors

一个检查点 (checkpoint) 就是“名字 → 数组”的映射。`torch.save` 用 pickle 写它——而反序列化一个 pickle 文件会执行文件里的代码。
**safetensors** 是 Hugging Face 现在默认的格式，它只是数据：

```
[ N：8 字节，小端 ][ N 字节的 JSON：{"名字": {"dtype": …, "shape": […], "data_offsets": [开始, 结束]}, …} ][ 各数组的原始字节 ]
```

能读 JSON 和字节的库都能读它：NumPy、PyTorch、TensorFlow、JAX/Flax、MLX 和 Paddle 都有读取器。
格式简单到可以亲手写一个：
""", en=r"""
In this run a tinyllm step took {{tinyllm_cpu_ms:.0f}} ms of CPU time and a PyTorch step {{torch_cpu_ms:.0f}} ms, a ratio of
{{step_ratio:.1f}}. How the two compare depends on the machine and on what else it is doing, which is why
CPU time is shown next to wall time. What does not depend on the machine: matrix products cost
the same in both (NumPy and PyTorch call the same kind of BLAS library); the difference is
everything else. PyTorch runs each op as compiled C++ and fuses some; tinyllm runs each op as a
few NumPy calls from Python, keeps its graph in Python objects, and writes its backward as more
NumPy calls. At this size a step is a few hundred small operations and per-operation overhead
weighs on both; as the model grows, PyTorch's compiled and fused kernels pull ahead. That is
the price of being able to read every line — which is the point of tinyllm.
(`python -m tinyllm bench` measures both on two model sizes, with memory and generation speed.)

## Weights both ways: safetensors

A checkpoint is a map from names to arrays. `torch.save` writes it with pickle — and
unpickling a file runs code from it. **safetensors**, the format Hugging Face now uses by
default, is plain data:

```
[ N: 8 bytes, little-endian ][ N bytes of JSON: {"name": {"dtype": …, "shape": […], "data_offsets": [start, end]}, …} ][ the arrays' raw bytes ]
```

Any library that can read JSON and bytes can read it: there are readers for NumPy, PyTorch,
TensorFlow, JAX/Flax, MLX and Paddle. The format is simple enough to write by hand:
""")

code(r"""
DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}

def write_safetensors(path, arrays):
    # name -> array into one file: an 8-byte header length, the JSON header, the raw bytes
    header, offset, blobs = {}, 0, []
    for name, a in arrays.items():
        blob = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()     # little-endian bytes
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    head = json.dumps(header).encode("utf-8")
    head += b" " * (-len(head) % 8)              # pad the header with spaces to a multiple of 8 bytes
    with open(path, "wb") as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        f.write(b"".join(blobs))

path = os.path.join(work, "tinyllm_gpt.safetensors")
write_safetensors(path, ours.state_dict())
with open(path, "rb") as f:                                           # read the header back, by hand
    n = int.from_bytes(f.read(8), "little")
    header = json.loads(f.read(n))
print(tr(f"{os.path.getsize(path):,} 字节；头部是 {n} 字节的 JSON，描述 {len(header)} 个数组，例如",
         f"{os.path.getsize(path):,} bytes; header: {n} bytes of JSON describing {len(header)} arrays, e.g."))
for name in list(header)[:2]:
    print("  ", name, header[name])

# Hugging Face's reader opens our file; PyTorch loads it
theirs_arrays = safetensors.numpy.load_file(path)
same = all(np.array_equal(theirs_arrays[k], v) for k, v in ours.state_dict().items())
print(tr("safetensors.numpy 读回的每个数组都与原来相同：", "every array safetensors.numpy reads back is the original:"), same)
loaded = TorchGPT(config)
print("torch load_state_dict:", loaded.load_state_dict(safetensors.torch.load_file(path)))
with torch.no_grad(), tl.no_grad():
    a, _ = ours(idx); b, _ = loaded(torch.from_numpy(idx))
file_diff = np.abs(a.numpy() - b.numpy()).max()
print(tr(f"max |tinyllm 逻辑值 - torch 逻辑值| = {file_diff:.2e}", f"max |tinyllm logits - torch logits| = {file_diff:.2e}"))
record(header_bytes=n, n_arrays=len(header))
""")

md(zh=r"""
我们的文件开头是 {{header_bytes:,}} 字节的 JSON，后面全是原始字节；Hugging Face 的读取器照样读它，PyTorch 照样装载它。

另一个方向有一个小麻烦：**共享的权重** (tied weights)。GPT 用同一个矩阵既把词元嵌入 (`transformer.wte.weight`)，
又给词元打分 (`lm_head.weight`)。PyTorch 的 state dict 在两个名字下各列一次、共用同一块内存，
而 `safetensors.torch.save_file` 拒绝为一块内存写两个名字（读回来时它们可能变成两个不同的数组）。
`save_model` 只用一个名字写一次；装进 tinyllm 时另一个名字报告为缺失，这无妨，因为两个名字指向同一个参数。
（我们亲手写的文件没有这个讲究：tinyllm 的 `state_dict()` 也在两个名字下各列一次，于是上面的 {{n_arrays}} 个数组里这个矩阵存了两份。）
""", en=r"""
Our file opens with {{header_bytes:,}} bytes of JSON, then raw bytes only; Hugging Face's reader opens
it all the same, and PyTorch loads it.

The other way has one wrinkle: **tied weights**. GPT uses one matrix both to embed tokens
(`transformer.wte.weight`) and to score them (`lm_head.weight`). PyTorch's state dict lists it
under both names, sharing memory, and `safetensors.torch.save_file` refuses to write two names
for one memory (they could come back as two different arrays). `save_model` writes it once,
under one name; loading into tinyllm then reports the other name as missing, which is harmless
because both names point to the same parameter. (Our hand-written file is not that careful:
tinyllm's `state_dict()` lists the matrix under both names too, so the {{n_arrays}} arrays above store
it twice.)
""")

code(r"""
# PyTorch -> file -> tinyllm
path_t = os.path.join(work, "torch_gpt.safetensors")
try:
    safetensors.torch.save_file(theirs.state_dict(), path_t)
except RuntimeError as error:
    print(tr("save_file 拒绝了：", "save_file refused:"), str(error).strip().splitlines()[0])
safetensors.torch.save_model(theirs, path_t)                         # writes the shared matrix once
from tinyllm.models.gpt import load_safetensors                       # tinyllm's own reader: JSON + bytes
state = load_safetensors(path_t)
print(tr("文件里的名字：", "names in the file:"), len(state), "| lm_head.weight" if "lm_head.weight" in state else "",
      "| transformer.wte.weight" if "transformer.wte.weight" in state else "")
back = GPT(config)
print("tinyllm load_state_dict:", back.load_state_dict(state, strict=False))
print(tr("共享的另一个名字也装上了：", "the tied twin is filled too:"), back.transformer.wte.weight is back.lm_head.weight)
with torch.no_grad(), tl.no_grad():
    a, _ = back(idx); b, _ = theirs(torch.from_numpy(idx))
print(tr(f"max |tinyllm 逻辑值 - torch 逻辑值| = {np.abs(a.numpy() - b.numpy()).max():.2e}",
         f"max |tinyllm logits - torch logits| = {np.abs(a.numpy() - b.numpy()).max():.2e}"))
""")

md(zh=r"""
tinyllm 自己的训练检查点（`tinyllm.checkpoint.save_checkpoint`，`Trainer` 用的就是它）也是 safetensors 文件，
运行的元数据（步数、配置、优化器状态、分词器）以 JSON 放在头部，并带有两者的 SHA-256 校验和。
所以标准读取器能打开它们，而 tinyllm 自己遇到损坏的文件会给出清楚的说明并拒绝：
""", en=r"""
tinyllm's own training checkpoints (`tinyllm.checkpoint.save_checkpoint`, used by the
`Trainer`) are safetensors files too, with the run's metadata (step, config, optimizer state,
tokenizer) as JSON in the header and SHA-256 checksums of both. So the standard readers open
them, and tinyllm itself refuses a damaged one with a clear message:
""")

code(r"""
from tinyllm.checkpoint import save_checkpoint, load_checkpoint, CheckpointError
ckpt = os.path.join(work, "ckpt.safetensors")
save_checkpoint(ckpt, {f"model.{k}": v for k, v in ours.state_dict().items()}, {"step": 1, "note": "chapter 7"})

with safetensors.safe_open(ckpt, framework="pt") as f:                 # PyTorch's reader, no tinyllm
    keys, metadata = list(f.keys()), f.metadata()
print(tr(f"safetensors/torch 读到 {len(keys)} 个张量；元数据字段 {sorted(metadata)}",
         f"read by safetensors/torch: {len(keys)} tensors; metadata fields {sorted(metadata)}"))
tensors, meta = load_checkpoint(ckpt)
print(tr("tinyllm 读取并核对了校验和；meta =", "read by tinyllm, checksums verified; meta ="), meta)

data = bytearray(open(ckpt, "rb").read()); data[-100] ^= 0xFF          # flip one byte of one weight
open(ckpt, "wb").write(data)
try:
    load_checkpoint(ckpt)
except CheckpointError as error:
    print(tr("翻转一个字节之后：", "after flipping one byte:"), str(error).replace(work, "…"))
""")

# ============================================================================ Hugging Face
md(zh=r"""
## Hugging Face Transformers

### GPT-2 的权重装进 tinyllm，先亲手来

`transformers` 把 GPT-2 定义为 `GPT2LMHeadModel`。这里没法下载真正的 GPT-2 权重（也不需要：要紧的是*格式*），
所以我们用 `GPT2Config` 构建一个随机权重的小 GPT-2——和 `from_pretrained` 填入下载的数字之前构建的一模一样——
再用 `save_pretrained` 保存。它写出 `model.safetensors` 和 `config.json`，就是你在 Hub 上会看到的文件。
""", en=r"""
## Hugging Face Transformers

### GPT-2 weights into tinyllm, first by hand

`transformers` defines GPT-2 as `GPT2LMHeadModel`. Downloading the real GPT-2 weights is not
possible here (and not needed: the *format* is what matters), so we build a small GPT-2 with
random weights from a `GPT2Config`, exactly as `from_pretrained` would build it before filling
in the downloaded numbers, and save it with `save_pretrained` — which writes `model.safetensors`
and `config.json`, the same files you would find on the Hub.
""")

code(r"""
hf_config = transformers.GPT2Config(vocab_size=96, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
torch.manual_seed(0)
hf_model = transformers.GPT2LMHeadModel(hf_config).eval()
hf_dir = os.path.join(work, "tiny-gpt2")
hf_model.save_pretrained(hf_dir)
print(sorted(os.listdir(hf_dir)))
saved = json.load(open(os.path.join(hf_dir, "config.json")))
print({k: saved[k] for k in ("model_type", "n_layer", "n_head", "n_embd", "n_positions", "vocab_size", "activation_function")})
hf_state = safetensors.numpy.load_file(os.path.join(hf_dir, "model.safetensors"))
print(tr(f"文件里有 {len(hf_state)} 个数组，第 0 个块的：", f"{len(hf_state)} arrays in the file; those of block 0:"))
for name, value in hf_state.items():
    if ".h.0." in name:
        print(f"   {name:36} {value.shape}")
""")

md(zh=r"""
名字已经和 tinyllm 的一样（tinyllm 的 GPT 本来就照 GPT-2 的名字取名）。两个布局之间真正的差别只有一处：
Hugging Face 的 GPT-2 把投影存成 `Conv1D` 的权重，形状是（输入，输出），而 `torch.nn.Linear`——以及 tinyllm——
用的是（输出，输入）。所以每个块的四个矩阵要转置。`lm_head.weight` 不在文件里：它与 `wte` 共享，写一次就够了。
GPT-2 的 GELU 用 tanh 近似
$\mathrm{GELU}(x) \approx \tfrac12 x\big(1+\tanh\big(\sqrt{2/\pi}\,(x + 0.044715x^3)\big)\big)$，
配置里要选它；头数在任何形状里都看不出来，只能照抄配置。
""", en=r"""
The names are already tinyllm's (tinyllm's GPT was named after GPT-2's). The one real
difference between the layouts: Hugging Face's GPT-2 stores its projections as `Conv1D`
weights of shape (in, out), where `torch.nn.Linear` — and tinyllm — use (out, in), so four
matrices per block are transposed. `lm_head.weight` is not in the file: it is tied to `wte`,
written once. GPT-2's GELU is the tanh approximation
$\mathrm{GELU}(x) \approx \tfrac12 x\big(1+\tanh\big(\sqrt{2/\pi}\,(x + 0.044715x^3)\big)\big)$,
which the config must select; the number of heads shows in no shape, so it is copied from the config.
""")

code(r"""
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")   # stored (in, out)
by_hand_state = {name: (value.T if name.endswith(CONV1D) else value) for name, value in hf_state.items()}
wte, wpe = hf_state["transformer.wte.weight"], hf_state["transformer.wpe.weight"]
by_hand = GPT(GPTConfig(vocab_size=wte.shape[0], block_size=wpe.shape[0], n_embd=wte.shape[1],
                        n_layer=1 + max(int(k.split(".")[2]) for k in hf_state if k.startswith("transformer.h.")),
                        n_head=saved["n_head"], gelu_approximate="tanh"))
print(tr("亲手装载：", "loaded by hand:"), by_hand.load_state_dict(by_hand_state, strict=False))

ids = np.random.default_rng(1).integers(0, hf_config.vocab_size, (3, 40))
with torch.no_grad():
    hf_logits = hf_model(torch.from_numpy(ids)).logits.numpy()
tl_gpt2 = GPT.from_gpt2(os.path.join(hf_dir, "model.safetensors"), n_head=hf_config.n_head)   # the library's loader
with tl.no_grad():
    hand_logits, _ = by_hand(ids)
    lib_logits, _ = tl_gpt2(ids)
gpt2_diff = np.abs(hand_logits.numpy() - hf_logits).max()
print(tr(f"逻辑值 {hand_logits.shape}：max |亲手装载 - transformers| = {gpt2_diff:.2e}",
         f"logits {hand_logits.shape}: max |by hand - transformers| = {gpt2_diff:.2e}"))
print(tr("GPT.from_gpt2 与亲手装载完全相同：", "GPT.from_gpt2 gives exactly the same logits:"),
      np.array_equal(lib_logits.numpy(), hand_logits.numpy()))
record(gpt2_diff=float(gpt2_diff))
""")

md(zh=r"""
亲手装载的模型与 `transformers` 的逻辑值最多相差 {{gpt2_diff:.1e}}（float32 舍入），与库函数 `GPT.from_gpt2` 的结果一位不差：
`from_gpt2` 做的就是上面这几行，外加读文件和检查。换成真正的 GPT-2 small（1.24 亿参数）也只是两行：

```python
hf = transformers.GPT2LMHeadModel.from_pretrained("gpt2")          # 第一次需要联网
model = GPT.from_gpt2({k: v.numpy() for k, v in hf.state_dict().items()}, n_head=12)
```

### tinyllm 的模型放进 `transformers`

另一个方向：在 tinyllm 里用随库附带的 Tiny Tales 语料训练一个小的字符级 GPT，用 `to_gpt2_state_dict()` 导出，
装进一个 `GPT2LMHeadModel`，让 Hugging Face 的 `generate` 用它写字。贪心解码 (greedy decoding) 是确定的，
所以两个库必须写出同样的字符。（文本停在 64 个字符的上下文处：GPT-2 学到的位置只到 `n_positions`，`transformers`
不会越过它滑动窗口。）
""", en=r"""
The model loaded by hand gives `transformers`' logits to within {{gpt2_diff:.1e}} (float32 rounding), and
exactly the logits of the library's `GPT.from_gpt2`: `from_gpt2` is the lines above, plus reading
the file and checking. With the real GPT-2 small (124 M parameters) it is two lines:

```python
hf = transformers.GPT2LMHeadModel.from_pretrained("gpt2")          # needs the network once
model = GPT.from_gpt2({k: v.numpy() for k, v in hf.state_dict().items()}, n_head=12)
```

### A tinyllm model inside `transformers`

The other direction: train a small character-level GPT in tinyllm on the shipped Tiny Tales
corpus, export it with `to_gpt2_state_dict()`, load it into a `GPT2LMHeadModel`, and let
Hugging Face's `generate` write with it. Greedy decoding is deterministic, so the two libraries
must produce the same characters. (The text stops at the 64-character context: GPT-2 has
learned positions only up to `n_positions`, and `transformers` does not slide a window past them.)
""")

code(r"""
from tinyllm.data import load_shipped_corpus, CharTokenizer, CausalLMDataset
from tinyllm.generate import generate

text = load_shipped_corpus()
tok = CharTokenizer.from_text(text)
data = CausalLMDataset(np.array(tok.encode(text)), block_size=64)
small = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=4, n_embd=128)
tl.manual_seed(0)
student = GPT(small)
optimizer = tl.optim.AdamW(tl.optim.param_groups(student.named_parameters(), 0.1), lr=3e-3, betas=(0.9, 0.99))
steps, batch_rng, losses = (10 if FAST else 500), np.random.default_rng(0), []
start = time.perf_counter()
for step in range(steps):
    for group in optimizer.param_groups:
        group["lr"] = tl.optim.cosine_with_warmup(step, 3e-3, 3e-4, min(30, steps // 4), steps)
    x, y = data.get_batch(16, batch_rng)
    _, loss = student(x, y)
    optimizer.zero_grad(); loss.backward(); tl.optim.clip_grad_norm_(student.parameters(), 1.0); optimizer.step()
    losses.append(loss.item())
train_seconds = time.perf_counter() - start
print(tr(f"{steps} 步，用时 {train_seconds:.0f} 秒；损失 {losses[0]:.2f} → {np.mean(losses[-20:]):.2f}",
         f"{steps} steps in {train_seconds:.0f} s; loss {losses[0]:.2f} → {np.mean(losses[-20:]):.2f}"))
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.plot(losses, lw=0.8)
ax.set(xlabel=tr("步数", "step"), ylabel=tr("交叉熵（每字符）", "cross-entropy (per character)"),
       title=tr("在 tinyllm 里训练，随后导出到 transformers", "trained in tinyllm, then exported to transformers"))
plt.tight_layout(); plt.show()

exported = transformers.GPT2LMHeadModel(transformers.GPT2Config(
    vocab_size=small.vocab_size, n_positions=small.block_size, n_embd=small.n_embd, n_layer=small.n_layer,
    n_head=small.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    bos_token_id=None, eos_token_id=None)).eval()                      # no end token: id 0 is "\n" here
print("transformers load_state_dict:",
      exported.load_state_dict({k: torch.from_numpy(v) for k, v in student.to_gpt2_state_dict().items()}))

prompt = np.array([tok.encode("Once upon a time")])
new = small.block_size - prompt.shape[1]        # GPT-2 has no positions past n_positions: stay inside
hf_ids = exported.generate(torch.from_numpy(prompt), max_new_tokens=new, do_sample=False, pad_token_id=0).numpy()
tl_ids = generate(student, prompt, new, temperature=0)
print("\ntransformers.generate:\n" + tok.decode(hf_ids[0].tolist()))
print(tr("\ntinyllm 的 generate：\n", "\ntinyllm generate:\n") + tok.decode(tl_ids[0].tolist()))
same_tokens = bool(np.array_equal(hf_ids, tl_ids))
print(tr("\n词元完全相同：", "\nsame tokens:"), same_tokens)
record(student_steps=steps, student_loss_first=losses[0], student_loss_last=float(np.mean(losses[-20:])),
       same_tokens=tr("完全相同", "identical") if same_tokens else tr("不同", "different"))
""", alt=(
    "在 tinyllm 里训练的小型字符级 GPT 在自带的 Tiny Tales 语料上的训练损失（每字符交叉熵），"
    "共 {{student_steps}} 步：前几十步从 {{student_loss_first:.2f}} "
    "陡降，然后是一段长长的、略带抖动的稳定下降，最后约为 {{student_loss_last:.2f}}。",
    "Training loss (cross-entropy per character) of the small character-level GPT trained in tinyllm "
    "on the shipped Tiny Tales corpus, over {{student_steps}} steps: a steep drop from "
    "{{student_loss_first:.2f}} in the first few dozen steps, then a long, slightly noisy, steady "
    "decline to about {{student_loss_last:.2f}}."))

md(zh=r"""
训练 {{student_steps}} 步后，损失从 {{student_loss_first:.2f}} 降到 {{student_loss_last:.2f}}；两个库贪心生成的词元{{same_tokens}}。
Hugging Face 生态为 GPT-2 提供的一切——各种采样选项、pipeline、微调脚本、Hub——现在都能用在一个每个梯度都由本课程的
NumPy 代码算出来的模型上。

## 用 CuPy 在 GPU 上运行

原文 §1.2 说计算资源是挑战；实际的答案是 GPU。tinyllm 通过 **CuPy**（一个兼容 NumPy 的 NVIDIA GPU 数组库）在 GPU 上运行。

### 设备模型

设计借鉴了 Chainer：

* **设备**名对应一个**数组模块** `xp`：`"cpu"` → `numpy`，`"cuda"` → `cupy`；
* 一个 `Tensor` 在一个设备上持有一个数组；每个运算向张量要它的模块（`xp = tensor.xp`），再调用 `xp.exp`、`xp.matmul` 等——两种设备一条代码路径；
* 数组从不隐式搬家：`tl.backend.to_device` 和 `tl.backend.to_host` 是仅有的两扇门，`model.to("cuda")`、`Tensor(a, device="cuda")`、
  `.numpy()` 和 `.item()` 都走它们；
* 一个训练步把一批词元编号搬上设备，把一个损失值搬回来。

这台机器上：
""", en=r"""
After {{student_steps}} steps the loss fell from {{student_loss_first:.2f}} to {{student_loss_last:.2f}}, and the two libraries' greedy
tokens are {{same_tokens}}. Everything the Hugging Face ecosystem offers for a GPT-2 — its sampling
options, pipelines, fine-tuning scripts, the Hub — now works on a model whose every gradient was
computed by the NumPy code of this course.

## Running on a GPU with CuPy

The article's §1.2 calls compute a challenge; the practical answer is a GPU. tinyllm runs on
one through **CuPy**, a NumPy-compatible array library for NVIDIA GPUs.

### The device model

The design, borrowed from Chainer:

* a **device** name maps to an **array module** `xp`: `"cpu"` → `numpy`, `"cuda"` → `cupy`;
* a `Tensor` holds one array on one device; every op asks the tensor for its module
  (`xp = tensor.xp`) and calls `xp.exp`, `xp.matmul`, … — one code path for both;
* arrays never move implicitly: `tl.backend.to_device` and `tl.backend.to_host` are the only
  doors, used by `model.to("cuda")`, `Tensor(a, device="cuda")`, `.numpy()` and `.item()`;
* a training step moves one batch of token ids to the device and one loss value back.

On this machine:
""")

code(r"""
print("tl.cuda_available():", tl.cuda_available())
try:
    tl.backend.get_device("cuda")
except RuntimeError as error:
    print(tr("设备 'cuda'：", "device 'cuda':"), error)
t = tl.Tensor([1.0, 2.0, 3.0])
print(tr(f"一个 CPU 张量：设备 {t.device!r}，数组模块 {t.xp.__name__}，数据类型 {type(t.data).__name__}",
         f"a CPU tensor: device {t.device!r}, array module {t.xp.__name__}, data type {type(t.data).__name__}"))
""")

md(zh=r"""
不管有没有 GPU，代码都一样，只换设备名。在有 NVIDIA GPU 并执行过 `pip install cupy-cuda12x` 的机器上，下面这个单元在 GPU 上训练；
在这里它在 CPU 上运行：
""", en=r"""
The code is the same either way; only the device name changes. On a machine with an NVIDIA
GPU and `pip install cupy-cuda12x`, this cell trains on the GPU; here it runs wherever it can:
""")

code(r"""
device = "cuda" if tl.cuda_available() else "cpu"
tl.manual_seed(0)
model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)).to(device)
optimizer = tl.optim.AdamW(model.parameters(), lr=1e-3)
x = tl.Tensor(idx, device=device)               # host -> device: the batch, once per step
y = tl.Tensor(targets, device=device)
for step in range(3):
    _, loss = model(x, y)
    optimizer.zero_grad(); loss.backward(); optimizer.step()
    print(tr(f"第 {step} 步：损失 {loss.item():.4f}，在 {device} 上", f"step {step}: loss {loss.item():.4f} on {device}"))   # .item(): one number back
print(tr("参数所在设备：", "parameters live on:"), model.lm_head.weight.device,
      tr("| 数组来自", "| their arrays are"), type(model.lm_head.weight.data).__module__)
""")

md(zh=r"""
### 严格设备：没有 GPU 也能测试 GPU 代码

在 NumPy 上能跑的代码到了 CuPy 上仍可能出错。NumPy 会悄悄接受混合的数组，在你背后做转换；CuPy 拒绝把主机数组混进设备运算，
也拒绝隐式转换成 NumPy（那是一次隐藏的、很慢的拷贝）。CI 没有 GPU，所以 tinyllm 的测试里有一个 CPU 上的**严格设备**
（`tinyllm.testing.strict`）：把 NumPy 数组包起来，CuPy 拒绝什么它就拒绝什么。整个测试集都在它上面运行一遍
（`TINYLLM_TEST_DEVICES=cpu,strict`）；在那里通过的代码，到 CuPy 上也很可能通过。

在严格设备上，模型算出一样的数：
""", en=r"""
### The strict device: testing GPU code without a GPU

Code that works on NumPy can still break on CuPy. NumPy quietly accepts a mix of arrays and
converts behind your back; CuPy refuses to mix a host array into device arithmetic and refuses
implicit conversion to NumPy (it would be a hidden, slow copy). CI has no GPU, so tinyllm's
tests include a CPU **"strict" device** (`tinyllm.testing.strict`): NumPy arrays in a wrapper
that refuses exactly what CuPy refuses. The whole test suite runs on it
(`TINYLLM_TEST_DEVICES=cpu,strict`); code that passes there is very likely to pass on CuPy.

On the strict device the model computes the same numbers:
""")

code(r"""
from tinyllm.testing import strict
strict.register()                                                   # adds the device "strict"

tl.manual_seed(0)
cpu_model = GPT(config)
strict_model = GPT(config); strict_model.load_state_dict(cpu_model.state_dict()); strict_model.to("strict")
with tl.no_grad():
    cpu_logits, cpu_loss = cpu_model(idx, targets)
    strict_logits, strict_loss = strict_model(tl.Tensor(idx, device="strict"), tl.Tensor(targets, device="strict"))
print(tr(f"损失：cpu 上 {cpu_loss.item():.6f}，strict 上 {strict_loss.item():.6f}；strict 上的数组类型 {type(strict_logits.data).__name__}",
         f"loss on cpu {cpu_loss.item():.6f}, on strict {strict_loss.item():.6f}; array type on strict: {type(strict_logits.data).__name__}"))
print(tr("逻辑值完全相同：", "same logits:"), np.array_equal(cpu_logits.numpy(), strict_logits.numpy()))
""")

md(zh=r"""
……而且它能抓住那些只会在 GPU 上暴露的错误：
""", en=r"""
…and it catches the mistakes that would only show up on a GPU:
""")

code(r"""
a = tl.Tensor(np.ones(3, dtype=np.float32), device="strict")
mistakes = {
    tr("把主机数组混进设备运算", "mixing a host array into device arithmetic"): lambda: a.data + np.arange(3, dtype=np.float32),
    tr("隐式转换设备数组", "converting a device array implicitly"):           lambda: np.asarray(a.data),
    tr("用了 NumPy 函数而不是 xp.…", "a NumPy function instead of xp.…"):      lambda: np.concatenate([a.data, a.data]),
    tr("用主机数组做下标", "indexing with a host index array"):                 lambda: a.data[np.array([0, 2])],
}
for what, mistake in mistakes.items():
    try:
        mistake()
        print(tr(f"{what}：没抓住", f"{what}: not caught"))
    except Exception as error:           # the strict device's error, shown as a sentence
        print(tr(f"{what}：被拦下（{type(error).__name__}）\n    {str(error)[:150]}",
                 f"{what}: stopped ({type(error).__name__})\n    {str(error)[:150]}"))
print(tr("\n正确的写法：", "\nthe right ways:"), (a.data + a.xp.arange(3, dtype=np.float32)).__class__.__name__, "·",
      tl.backend.to_host(a.data), "·", a.xp.concatenate([a.data, a.data]).shape)
""")

# ============================================================================ TensorFlow
md(zh=r"""
## TensorFlow 与延伸资源

原文还推荐了 **TensorFlow**（以及 Keras）。这里没有安装它，tinyllm 也没有 TensorFlow 的代码；桥梁和 PyTorch 一样——一个 safetensors 文件，
用 `safetensors.tensorflow.load_file` 读进形状相同的 Keras 层（Keras `Dense` 的核按（输入，输出）存放，和 GPT-2 的 `Conv1D` 一样，要转置）。
概念在每个框架里都一样：设备上的张量、记录下来的计算图、一次反向传播、一步优化器更新。

| 资源 | 用途 |
|---|---|
| [PyTorch 文档](https://pytorch.org/docs/stable/)：`torch.nn.Transformer`、`torch.nn.functional.scaled_dot_product_attention` | tinyllm 照着写的每一层的参考 |
| [Hugging Face Transformers](https://huggingface.co/docs/transformers) 和 [Hub](https://huggingface.co/models) | 预训练模型（GPT-2 及其后继）、分词器、生成、微调 |
| [safetensors](https://huggingface.co/docs/safetensors) | 上面用到的权重格式 |
| [TensorFlow](https://www.tensorflow.org/) / [Keras](https://keras.io/) | 原文推荐的第二个框架 |
| [CuPy](https://docs.cupy.dev/) | NVIDIA GPU 上的 NumPy，tinyllm 的 GPU 后端 |
| [nanoGPT](https://github.com/karpathy/nanoGPT) | tinyllm 的 GPT 在结构和训练配方上照着它 |
| [The Annotated Transformer](https://nlp.seas.harvard.edu/annotated-transformer/) | 论文逐行配代码 |
| [动手学深度学习](https://zh.d2l.ai/)（第 10–11 章） | 注意力与 Transformer，带练习 |
""", en=r"""
## TensorFlow, and where to go next

The article also recommends **TensorFlow** (with Keras). It is not installed here, and tinyllm
has no TensorFlow code; the bridge would be the same as for PyTorch — a safetensors file, read
with `safetensors.tensorflow.load_file`, into Keras layers with the same shapes (Keras's `Dense`
kernel is stored (in, out), like GPT-2's `Conv1D`: transpose it). The concepts are the same in
every framework: tensors on a device, a recorded graph, a backward pass, an optimizer step.

| resource | what it is for |
|---|---|
| [PyTorch documentation](https://pytorch.org/docs/stable/): `torch.nn.Transformer`, `torch.nn.functional.scaled_dot_product_attention` | the reference for every layer tinyllm copies |
| [Hugging Face Transformers](https://huggingface.co/docs/transformers) and the [Hub](https://huggingface.co/models) | pretrained models (GPT-2 and successors), tokenizers, generation, fine-tuning |
| [safetensors](https://huggingface.co/docs/safetensors) | the weight format used above |
| [TensorFlow](https://www.tensorflow.org/) / [Keras](https://keras.io/) | the article's second framework |
| [CuPy](https://docs.cupy.dev/) | NumPy on NVIDIA GPUs — tinyllm's GPU backend |
| [nanoGPT](https://github.com/karpathy/nanoGPT) | the GPT whose layout and training recipe tinyllm follows |
| [The Annotated Transformer](https://nlp.seas.harvard.edu/annotated-transformer/) | the paper, line by line, with code |
| [Dive into Deep Learning](https://d2l.ai/), chapters 10–11 | attention and Transformers, with exercises |
""")

# ============================================================================ Try it
md(zh=r"""
## 动手试试

1. **两边都用 float64。** 用 `ours64` 和 `theirs64` 重做“同一个 GPT”里逻辑值和梯度的核对。*预期：* 一致到约 $10^{-14}$，
   而不是 $10^{-6}$——float32 下的差别是舍入，不是错误。
2. **放大计时。** 把“各自有多快”里的配置改成 `n_layer=6, n_head=6, n_embd=384`，批次改成 8 × 256。*预期：* 两边都变慢，
   但矩阵乘法占的时间比例变大，而两边的矩阵乘法一样快，所以两者的比值会变；变向哪边，取决于 PyTorch 融合掉的那部分运算占多少——量一量。
3. **写错 `n_head`。** 用 `GPT.from_gpt2(..., n_head=2)` 装载 Hugging Face 的模型。*预期：* 装载时不报错（所有形状仍然吻合），
   但逻辑值对不上——头数改变的是同一批数字怎样分组。
4. **忘了转置。** 在亲手装载的单元里去掉 `.T`。*预期：* 报错，列出每个块里形状不对的三个矩阵，例如
   `transformer.h.0.attn.c_attn.weight: expected shape (192, 64), got (64, 192)`。第四个 `attn.c_proj.weight` 是 64 × 64 的方阵，
   它*不会*报错，而是悄悄地以转置的形式装进去——形状检查抓不住的错误，只有逻辑值的对照能抓住。
5. **在严格设备上找错。** 写一个函数用 `x.data / np.linalg.norm(x.data)` 归一化张量的数据，在严格设备上运行。
   *预期：* 抛出 `StrictDeviceError`；能在 CuPy 上运行的写法用 `x.xp.linalg.norm`。
6. **用 Hugging Face 采样。** 调用 `exported.generate(..., do_sample=True, top_p=0.9, temperature=0.8)`。*预期：* 每次不同、
   风格与上面贪心生成相近的文本，由 tinyllm 训练的权重和 Hugging Face 的采样器 (sampling) 共同产生（第 6 章比较这些旋钮）。
7. **亲手写 AdamW 的一步。** 在下面的起点单元里写 `train_step`：清梯度、算损失、反向传播，再按上面的公式更新每个参数，
   `check_train_step()` 把它与 `torch.optim.AdamW` 逐步对照。*预期：* 五步之后两边相差不到 $10^{-10}$（float64）。
   """ + assignment_task("a5_transformer_gpt", "train_step")["zh"] + r"""
""", en=r"""
## Try it

1. **float64 on both sides.** Repeat the logits and gradient check of "The same GPT" with
   `ours64` and `theirs64`. *Expected:* agreement to about $10^{-14}$ instead of $10^{-6}$ —
   the float32 differences were rounding, not a bug.
2. **Scale the timing.** Change the config of "How fast is each?" to `n_layer=6, n_head=6,
   n_embd=384` and the batch to 8 × 256. *Expected:* both get slower, and matrix products,
   which cost the same in both, take a larger share of each step, so the ratio moves; which way
   depends on how much of the rest PyTorch fuses away — measure it.
3. **The wrong `n_head`.** Load the Hugging Face model with `GPT.from_gpt2(..., n_head=2)`.
   *Expected:* it loads without complaint (all shapes still fit) but the logits disagree — the
   head count changes how the same numbers are grouped.
4. **Skip the transpose.** In the cell that loads by hand, drop the `.T`. *Expected:* an error
   listing three mis-shaped matrices per block, e.g. `transformer.h.0.attn.c_attn.weight:
   expected shape (192, 64), got (64, 192)`. The fourth, `attn.c_proj.weight`, is a 64 × 64
   square and raises *nothing*: it loads silently transposed — a mistake no shape check catches,
   only a comparison of the logits.
5. **A strict-device bug hunt.** Write a function that normalises a tensor's data with
   `x.data / np.linalg.norm(x.data)` and run it on the strict device. *Expected:* a
   `StrictDeviceError`; the CuPy-safe version uses `x.xp.linalg.norm`.
6. **Sample with Hugging Face.** Call `exported.generate(..., do_sample=True, top_p=0.9,
   temperature=0.8)`. *Expected:* varied text in the style of the greedy sample above, produced
   by tinyllm's weights with Hugging Face's sampler (chapter 6 compares these knobs).
7. **One AdamW step by hand.** Write `train_step` in the starter cell below: clear the
   gradients, compute the loss, backpropagate, then update each parameter by the formula above;
   `check_train_step()` compares it step by step with `torch.optim.AdamW`. *Expected:* after five
   steps the two agree to better than $10^{-10}$ (float64).
   """ + assignment_task("a5_transformer_gpt", "train_step")["en"] + r"""
""")

code(r"""
#zh: 练习 7 的起始代码（作业 a5_transformer_gpt，任务 5.3）。写好函数，再运行 check_train_step()。
#en: Exercise 7, starter (assignment a5_transformer_gpt, task 5.3). Fill in the function, then run check_train_step().
def train_step(loss_fn, params, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    #zh: 对张量列表 params 做一步 AdamW；以 float 返回损失。
    #en: One AdamW step on the list of Tensors params; return the loss as a float.
    #zh: 1. 对每个 p 令 p.grad = None；loss = loss_fn(); loss.backward()
    #en: 1. p.grad = None for every p; loss = loss_fn(); loss.backward()
    #zh: 2. state（一个字典，开始时为空）保存步数 t，以及每个参数各一个 m 和 v 数组
    #en: 2. state (a dict, empty at first) keeps the step count t and one m and one v array per parameter
    #zh: 3. t += 1；m = β1 m + (1 − β1) g；v = β2 v + (1 − β2) g²；m̂ = m / (1 − β1^t)；v̂ = v / (1 − β2^t)
    #en: 3. t += 1; m = β1 m + (1 − β1) g; v = β2 v + (1 − β2) g²; m̂ = m / (1 − β1^t); v̂ = v / (1 − β2^t)
    #zh: 4. p.data = p.data * (1 − lr λ) − lr m̂ / (√v̂ + ε)      （直接在数组上算：不建计算图）
    #en: 4. p.data = p.data * (1 − lr λ) − lr m̂ / (√v̂ + ε)      (on the raw arrays: no graph)
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def check_train_step():
    start = np.random.default_rng(3).normal(size=(4, 3))
    target = np.random.default_rng(4).normal(size=(4, 3))
    p, state = tl.Tensor(start.copy(), requires_grad=True), {}
    pt = torch.tensor(start.copy(), requires_grad=True)
    opt_ref = torch.optim.AdamW([pt], lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)
    for _ in range(5):
        train_step(lambda: ((p - tl.Tensor(target)) ** 2).sum(), [p], state, lr=0.05, betas=(0.8, 0.9), eps=1e-6,
                   weight_decay=0.1)
        opt_ref.zero_grad(); ((pt - torch.tensor(target)) ** 2).sum().backward(); opt_ref.step()
    gap = np.abs(p.numpy() - pt.detach().numpy()).max()
    print(tr(f"与 torch.optim.AdamW 相差 {gap:.1e}", f"differs from torch.optim.AdamW by {gap:.1e}"),
          "✓" if gap < 1e-10 else "✗")

# check_train_step()      # uncomment when your function is written
""")

md(zh=r"""
## 小结

| 原文（§7） | 本章的做法 |
|---|---|
| PyTorch：构建和训练 LLM 的工具和库 | 同样的代码在两边各写一遍；同一个 GPT 的逻辑值（差 {{logits_diff:.1e}}）、梯度和 AdamW 更新（float64 下差 {{adamw_diff:.1e}}）一致；PyTorch 为速度而建，tinyllm 为阅读而建 |
| TensorFlow：另一个流行的框架 | 概念相同；safetensors 可以把权重带过去 |
| Hugging Face Transformers：预训练模型和工具 | 亲手写 safetensors 文件；GPT-2 格式的权重亲手装进 tinyllm（改名、转置），逻辑值差 {{gpt2_diff:.1e}}，与 `GPT.from_gpt2` 完全相同；tinyllm 训练的模型在 `transformers` 里生成同样的文本 |
| （§1.2）计算资源是挑战：GPU | 同一份代码经 CuPy 在 GPU 上运行；严格设备让它在没有 GPU 时也保持 GPU 安全 |

完整运行：{{run_seconds:.0f}} 秒墙钟时间，内核 CPU 时间 {{kernel_cpu_seconds:.0f}} 秒。
""", en=r"""
## Summary

| the article (§7) | what this chapter did |
|---|---|
| PyTorch: tools and libraries to build and train LLMs | the same code in both; the same GPT gives the same logits (within {{logits_diff:.1e}}), gradients and AdamW update (within {{adamw_diff:.1e}} in float64); PyTorch is built for speed, tinyllm for reading |
| TensorFlow: another popular framework | the same concepts; a safetensors file would carry the weights across |
| Hugging Face Transformers: pretrained models and tools | a safetensors file written by hand; GPT-2-format weights loaded into tinyllm by hand (renamed, transposed), logits within {{gpt2_diff:.1e}} and equal to `GPT.from_gpt2`'s; a tinyllm-trained model generates the same text inside `transformers` |
| (§1.2) compute is a challenge: GPUs | the same code on a GPU through CuPy; the strict device keeps it GPU-safe without one |

Full run: {{run_seconds:.0f}} s of wall time, {{kernel_cpu_seconds:.0f}} s of kernel CPU time.
""")

code(r"""
record(kernel_cpu_seconds=time.process_time())       # this kernel's CPU time for the whole chapter
""")

ch.index(builds=("tinyllm 与 PyTorch 并排跑同一个 GPT（逻辑值、梯度、AdamW）；亲手写 safetensors 文件；亲手把 Hugging Face "
                 "GPT-2 的权重装进 tinyllm（改名、转置 Conv1D），再与 `GPT.from_gpt2` 对照；tinyllm 训练的模型在 "
                 "`transformers` 里生成；CuPy 与严格设备",
                 "tinyllm next to PyTorch on the same GPT (logits, gradients, AdamW); a safetensors file written by "
                 "hand; Hugging Face GPT-2 weights loaded into tinyllm by hand (renamed, Conv1D transposed), then "
                 "with `GPT.from_gpt2`; a tinyllm-trained model generating inside `transformers`; CuPy and the strict device"),
         figures=("逻辑值对 PyTorch 差 {{logits_diff:.1e}}；float64 AdamW 三步后权重差 {{adamw_diff:.1e}}；"
                  "GPT-2 逻辑值对 transformers 差 {{gpt2_diff:.1e}}",
                  "logits vs PyTorch {{logits_diff:.1e}}; weights after 3 float64 AdamW steps {{adamw_diff:.1e}}; "
                  "GPT-2 logits vs transformers {{gpt2_diff:.1e}}"))

if __name__ == "__main__":
    ch.build()
