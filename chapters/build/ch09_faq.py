"""Build chapters/zh/09_faq.ipynb and chapters/en/09_faq.ipynb (the article's §9): a model-choice
table; int8 quantization, a magnitude-pruning mask and the distillation loss written in cells
(each checked against the library before its experiment runs); bias fixes by counterfactual
augmentation and by regularization, measured.

    python chapters/build/ch09_faq.py                        # full run, both editions
    python chapters/build/ch09_faq.py --fast --out /tmp/ch   # quick check
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Chapter, assignment_task  # noqa: E402

ch = Chapter("09_faq", number=9, title=("附录：常见问题与解答", "FAQ"), sections="§9")
md, code = ch.md, ch.code

# ============================================================================ title
md(zh=r"""
# 9 · 附录：常见问题与解答

> **原文 §9**
>
> **Q：如何选择合适的 LLM？**
> A：选择合适的 LLM 取决于具体的应用场景和需求。需要考虑模型的规模、性能、成本等因素。
>
> **Q：如何降低 LLM 的计算资源需求？**
> A：可以通过模型压缩、模型蒸馏等技术来降低 LLM 的计算资源需求。
>
> **Q：如何解决 LLM 的偏差问题？**
> A：可以通过数据增强、模型正则化等技术来解决 LLM 的偏差问题。

每个回答都点出了要衡量的量——规模、性能、成本；省下的计算；减少的偏差——却没有一个数字。本章在这里训练的小模型上把它们全都量出来。

**你会亲手搭建**

1. **一张选模型的表**（规模、性能、成本）：三个 GPT，{{N_small:,}}、{{N_medium:,}} 和 {{N_large:,}} 个参数，用同样的文本训练；
   每个模型的字节数、验证损失和困惑度 (perplexity)、每个训练步的时间、生成速度、训练内存。然后说怎样读这张表。
2. **压缩和蒸馏，以及它们的代价**（模型压缩、模型蒸馏）：把最大的模型量化 (quantization) 成 int8；**亲手**写出全局幅值剪枝 (pruning) 的掩码，
   与库函数对照，再剪掉 30 % 到 90 % 的权重（有无短暂的微调 (fine-tuning)）；**亲手**写出蒸馏损失，与库函数对照（值和梯度），
   再从大模型蒸馏出一个 {{N_small:,}} 参数的学生模型 (student model)——每个变体都给出字节数对损失。
3. **治偏差，量一量**（数据增强、模型正则化）：在第 8 章的偏斜职业语料上，逐步加大反事实数据增强 (counterfactual data augmentation) 的剂量，
   再试三种正则化，每种都给出它留下的偏差分数。

完整运行约 {{run_minutes:.1f}} 分钟（{{run_cores}} 核 CPU，内核 CPU 时间 {{kernel_cpu_minutes:.1f}} 分钟）；设置 `TINYLLM_FAST=1`（CI 的做法）时
同样的单元步数很少，不到一分钟跑完，那时的数字没有意义。
""", en=r"""
# 9 · 附录：常见问题与解答 — FAQ

> **The article, §9**
>
> **Q：如何选择合适的 LLM？** (How to choose a suitable LLM?)
> A：选择合适的 LLM 取决于具体的应用场景和需求。需要考虑模型的规模、性能、成本等因素。
> (It depends on the application and its needs: weigh the model's size, performance and cost.)
>
> **Q：如何降低 LLM 的计算资源需求？** (How to reduce an LLM's compute demands?)
> A：可以通过模型压缩、模型蒸馏等技术来降低 LLM 的计算资源需求。
> (By model compression, model distillation and similar techniques.)
>
> **Q：如何解决 LLM 的偏差问题？** (How to address an LLM's bias?)
> A：可以通过数据增强、模型正则化等技术来解决 LLM 的偏差问题。
> (By data augmentation, model regularization and similar techniques.)

Each answer names quantities — size, performance, cost; compute saved; bias reduced — without
a number. This chapter puts numbers on all of them, measured on small models you train here.

**What you will build**

1. **A model-choice table** (规模、性能、成本): three GPTs of {{N_small:,}}, {{N_medium:,}} and {{N_large:,}}
   parameters trained on the same text; for each, the size in bytes, the validation loss and
   perplexity, the training time per step, the generation speed, the training memory. Then a way
   to read it.
2. **Compression and distillation, with their trade-offs** (模型压缩、模型蒸馏): int8 quantization
   of the largest model; the global magnitude-**pruning mask written by hand**, checked against
   the library, then 30 % to 90 % of the weights pruned (with and without a short fine-tune); the
   **distillation loss written by hand**, checked against the library (value and gradient), then a
   {{N_small:,}}-parameter student distilled from the large model — bytes against loss for every variant.
3. **Bias fixes, measured** (数据增强、模型正则化): on the skewed occupation corpus of chapter 8,
   counterfactual data augmentation in increasing doses, and three regularizers, each with the
   bias score it leaves.

A full run takes about {{run_minutes:.1f}} minutes on {{run_cores}} CPU cores ({{kernel_cpu_minutes:.1f}} minutes of kernel CPU
time); with `TINYLLM_FAST=1` (what CI does) the same cells run with tiny step counts in under a
minute, and the numbers are then meaningless.
""")

ch.setup(r"""
import copy
from IPython.display import Markdown, display
import tinyllm.nn as nn
import tinyllm.functional as F
from tinyllm.models import GPT, GPTConfig
from tinyllm.compress.lm import LMData, train_lm, evaluate_lm
from tinyllm.data import CharTokenizer, CausalLMDataset, clean_text, train_val_split
import tinyllm.data as data_module
print(tr(f"负载均值 {os.getloadavg()[0]:.1f}（超过 {os.cpu_count()} 表示还有别的任务在用这些核，下面的时间会偏长）",
         f"load average {os.getloadavg()[0]:.1f} (above {os.cpu_count()}: other jobs share the cores, times below are inflated)"))
""")

# ============================================================================ Q1
md(zh=r"""
## Q1 · 如何选择合适的 LLM？

“规模、性能、成本”一旦各自成为一列测量值，就具体了：

* **规模**：参数量 $N$，以及权重的字节数（float32 下是 $4N$）；
* **性能**：验证集上的交叉熵 (cross-entropy) $\mathcal{L}$（每个字符多少 nats）和困惑度 $\text{PPL} = e^{\mathcal{L}}$——
  模型平均而言有多不确定，相当于在多少个字符里均匀地挑一个；
* **成本**：每个训练步的时间（前向 + 反向 + 更新，每个词元约 $6N$ 次浮点运算 (FLOPs)），每秒生成的词元数
  （每个词元一次前向，有键值缓存 (KV cache) 时每个词元约 $2N$ FLOPs），以及一个训练步的内存（权重、梯度和 AdamW 状态共 $16N$ 字节，加上激活值 (activations)）。

三个模型，用同样的方式在同样的文本上各训练 {{steps}} 步：
""", en=r"""
## Q1 · 如何选择合适的 LLM？ — How to choose a model

"Size, performance, cost" become concrete once each is a measured column:

* **size**: parameters $N$, and the bytes of the weights ($4N$ in float32);
* **performance**: validation cross-entropy $\mathcal{L}$ (nats per character) and perplexity
  $\text{PPL} = e^{\mathcal{L}}$ — the number of characters the model is, on average, as uncertain
  as if choosing uniformly among;
* **cost**: training time per step (forward + backward + update, about $6N$ FLOPs per token),
  generation speed in tokens per second (a forward pass per token, about $2N$ FLOPs per token
  with the KV cache), and the memory of a training step ($16N$ bytes of weights, gradients and
  AdamW state, plus activations).

Three models, trained the same way on the same text, {{steps}} steps each:
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
T, B = 64, 16
data = LMData(CausalLMDataset(train_ids, T), CausalLMDataset(val_ids, T), tokenizer, T)
print(tr(f"{corpus}：{len(text):,} 个字符，词表 {tokenizer.vocab_size}", f"{corpus}: {len(text):,} characters, vocabulary {tokenizer.vocab_size}"))

STEPS = 30 if FAST else 500
EVAL_BATCHES = 4 if FAST else 40
SIZES = {"small": (2, 2, 32), "medium": (4, 4, 64), "large": (4, 4, 128)}


def shown(name):
    # a model's or variant's name as this edition writes it ("large, int8" → "大模型，int8")
    if LANG != "zh":
        return name
    for english, chinese in (("small", "小模型"), ("medium", "中模型"), ("large", "大模型"),
                             (" + the same fine-tuning", "，再做同样的微调"),
                             (" pruned + fine-tuned (sparse storage)", "剪枝并微调（稀疏存储）"),
                             ("distilled", "蒸馏"), (", ", "，")):
        name = name.replace(english, chinese)
    return name


def make_config(n_layer, n_head, n_embd):
    return GPTConfig(vocab_size=tokenizer.vocab_size, block_size=T, n_layer=n_layer, n_head=n_head, n_embd=n_embd)


models, train_seconds = {}, {}
for name, shape in SIZES.items():
    tl.manual_seed(1337)
    models[name] = GPT(make_config(*shape))
    start = time.process_time()              # CPU time: the fair clock on a shared machine
    train_lm(models[name], data.train, STEPS, batch_size=B, lr=2e-3, min_lr=2e-4, warmup=min(50, STEPS), seed=1337)
    train_seconds[name] = time.process_time() - start
    print(tr(f"{shown(name):>6}：N = {models[name].num_params():>7,}，训练 {STEPS} 步用了 {train_seconds[name]:.0f} 秒 CPU 时间",
             f"{name:>6}: N = {models[name].num_params():>7,}, trained {STEPS} steps in {train_seconds[name]:.0f} s of CPU time"), flush=True)
record(N_small=models["small"].num_params(), N_medium=models["medium"].num_params(), N_large=models["large"].num_params(),
       steps=STEPS)
""")

code(r"""
from tinyllm.generate import generate
from tinyllm.compress import model_size_bytes, training_memory_estimate

NEWLINE = tokenizer.encode("\n")[0]
N_NEW = 50 if FAST else 200


def generation_speed(model, n_new=N_NEW, use_cache=True):
    # tokens per second (of CPU time) of sampling n_new characters, best of two
    best = math.inf
    for _ in range(2):
        start = time.process_time()
        generate(model, np.array([[NEWLINE]]), n_new, temperature=1.0, use_cache=use_cache, rng=np.random.default_rng(0))
        best = min(best, time.process_time() - start)
    return n_new / best


table = {}
for name, model in models.items():
    loss = evaluate_lm(model, data.val, B, EVAL_BATCHES)
    table[name] = dict(N=model.num_params(), bytes=model_size_bytes(model), val_loss=loss, ppl=math.exp(loss),
                       ms_per_step=train_seconds[name] / STEPS * 1e3, gen_tok_s=generation_speed(model),
                       train_mb=training_memory_estimate(model, B)["total"] / 1e6)

rows = [tr("| 模型 | 参数 | 权重 | 验证损失 | 困惑度 | 训练 毫秒/步（CPU） | 生成 词元/秒（CPU） | 训练内存 |",
           "| model | parameters | weights | val loss | perplexity | train ms/step (CPU) | generate tokens/s (CPU) | training memory |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|"]
for name, r in table.items():
    rows.append(f"| {shown(name)} | {r['N']:,} | {r['bytes'] / 1e6:.2f} MB | {r['val_loss']:.3f} | {r['ppl']:.2f} | "
                f"{r['ms_per_step']:.0f} | {r['gen_tok_s']:,.0f} | {r['train_mb']:.0f} MB |")
display(Markdown("\n".join(rows)))
small, large_row = table["small"], table["large"]
bytes_ratio, speed_ratio = large_row["bytes"] / small["bytes"], small["gen_tok_s"] / large_row["gen_tok_s"]
record(loss_small=small["val_loss"], loss_medium=table["medium"]["val_loss"], loss_large=large_row["val_loss"],
       ppl_small=small["ppl"], ppl_large=large_row["ppl"], bytes_ratio=bytes_ratio, speed_ratio=speed_ratio,
       speed_verdict=tr("慢得远不如它大得多", "slower by far less than its size ratio") if speed_ratio < bytes_ratio / 3
       else tr("慢的倍数与大的倍数相当", "slower by about its size ratio"))
""")

code(r"""
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.2))
for name, r in table.items():
    ax1.scatter(r["bytes"] / 1e6, r["val_loss"], s=60)
    ax1.annotate(shown(name), (r["bytes"] / 1e6, r["val_loss"]), textcoords="offset points", xytext=(6, 4))
    ax2.scatter(r["gen_tok_s"], r["val_loss"], s=60)
    ax2.annotate(shown(name), (r["gen_tok_s"], r["val_loss"]), textcoords="offset points", xytext=(6, 4))
ax1.set(xscale="log", xlabel=tr("权重（MB，float32）", "weights (MB, float32)"),
        ylabel=tr("验证损失（越低越好）", "validation loss (lower is better)"), title=tr("质量对规模", "quality vs size"))
ax2.set(xscale="log", xlabel=tr("生成速度（每秒 CPU 时间的词元数）", "generation speed (tokens per CPU second)"),
        title=tr("质量对速度", "quality vs speed"))
for ax in (ax1, ax2):                      # plain numbers at 1, 2, 5 × 10^k on the log axes
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
fig.tight_layout(); plt.show()
""", alt=(
    "两幅散点图，各有三个点（小模型、中模型、大模型）。左：权重的兆字节数（对数横轴）对验证损失：越大的模型损失越低，"
    "small {{loss_small:.3f}}、medium {{loss_medium:.3f}}、large {{loss_large:.3f}}，large 的字节数是 small 的 {{bytes_ratio:.0f}} 倍。"
    "右：生成速度（每秒 CPU 时间的词元数，对数横轴）对验证损失：large 只比 small 慢 {{speed_ratio:.1f}} 倍。",
    "Two scatter plots of three points each (small, medium, large). Left: megabytes of weights (log axis) against "
    "validation loss: the larger the model, the lower the loss, small {{loss_small:.3f}}, medium {{loss_medium:.3f}}, large "
    "{{loss_large:.3f}}, with large taking {{bytes_ratio:.0f}}× the bytes of small. Right: generation speed (tokens per CPU "
    "second, log axis) against validation loss: large is only {{speed_ratio:.1f}}× slower than small."))

md(zh=r"""
**怎样读这张表。** 没有哪一列能单独选出模型；应用场景给出约束，表格告诉你哪些模型满足它们：

* **质量门槛**（比如损失低于某个值，文本才能用）排除它上面的模型，不管它们多便宜；
* **延迟或吞吐门槛**（交互工具需要的每秒词元数）和**内存门槛**（它必须运行在什么设备上）排除它下面的模型；
* 在剩下的模型里，最便宜的胜出——对服务来说，成本按生成的每个词元、每个用户、在模型部署的整个期间支付，通常远超训练成本。

这里大模型的质量明显最好（验证损失 {{loss_large:.3f}}，困惑度 {{ppl_large:.2f}}；中模型的验证损失 {{loss_medium:.3f}}；小模型是 {{loss_small:.3f}} 和 {{ppl_small:.2f}}），字节数是小模型的 {{bytes_ratio:.0f}} 倍；
它的生成只慢了 {{speed_ratio:.1f}} 倍，{{speed_verdict}}，因为在这个规模上，一个生成步主要花在每个词元的固定开销上，而不是算术上（第 1 章）。
对真实的 LLM，同样的表第一列是几十亿，读法不变。下一个问题是：怎样把一个模型在这两张图里往*左下*挪。
""", en=r"""
**How to read the table.** No column picks a model by itself; the application sets the
constraints, and the table says which models satisfy them:

* a **quality bar** (say, a loss below some value for the text to be usable) rules out the
  models above it, whatever they cost;
* a **latency or throughput bar** (tokens per second for an interactive tool) and a **memory
  bar** (the device it must run on) rule out the models below it;
* among what is left, the cheapest wins — for serving, cost is paid per generated token, for
  every user, for as long as the model is deployed, and usually dwarfs the training cost.

Here the large model is clearly best in quality (validation loss {{loss_large:.3f}}, perplexity {{ppl_large:.2f}};
the medium one's loss {{loss_medium:.3f}}; the small one {{loss_small:.3f}} and {{ppl_small:.2f}}) and {{bytes_ratio:.0f}}× the bytes of the small one; its generation is
{{speed_ratio:.1f}}× slower, {{speed_verdict}}, because at these sizes a generation step is dominated by
per-token overhead, not arithmetic (chapter 1). With real LLMs the same table has billions in the
first column and is read the same way. The next question is how to move a model *down and to
the left* in these plots.
""")

# ============================================================================ Q2
md(zh=r"""
## Q2 · 如何降低 LLM 的计算资源需求？

我们拿大模型，用三种办法削减它的成本：用更少的位存储权重（量化），去掉权重（剪枝），或者训练一个小模型去模仿它（蒸馏）。
每种办法都用它省下的和它在损失上付出的来衡量。

### 量化：int8 权重

每个权重矩阵 $W$（输出 × 输入）的每个输出行 $c$ 有一个缩放因子，权重变成 8 位整数（`tinyllm.compress.quantize`）：

$$ s_c = \frac{\max_i |W_{ci}|}{127}, \qquad q_{ci} = \operatorname{round}\!\left(\frac{W_{ci}}{s_c}\right) \in \{-127,\dots,127\},
   \qquad \hat W_{ci} = q_{ci}\, s_c, \qquad |W_{ci} - \hat W_{ci}| \le \frac{s_c}{2}. $$

存储从每个权重 4 字节降到 1 字节（外加每行一个缩放因子）。之后各层用 $\hat W$ 计算。下面先对一层亲手做一遍，再量化整个模型：
""", en=r"""
## Q2 · 如何降低 LLM 的计算资源需求？ — Compression and distillation

We take the large model and cut its cost three ways: store its weights in fewer bits
(quantization), remove weights (pruning), or train a small model to imitate it
(distillation). Each is measured by what it saves and what it costs in loss.

### Quantization: int8 weights

Each weight matrix $W$ (out × in) gets one scale per output row $c$, and its weights become
8-bit integers (`tinyllm.compress.quantize`):

$$ s_c = \frac{\max_i |W_{ci}|}{127}, \qquad q_{ci} = \operatorname{round}\!\left(\frac{W_{ci}}{s_c}\right) \in \{-127,\dots,127\},
   \qquad \hat W_{ci} = q_{ci}\, s_c, \qquad |W_{ci} - \hat W_{ci}| \le \frac{s_c}{2}. $$

Storage falls from 4 bytes per weight to 1 (plus one scale per row). The layers then compute
with $\hat W$. We do one layer by hand first, then quantize the whole model:
""")

code(r"""
from tinyllm.compress import quantize_model, quantize_per_channel

large = models["large"]
w = large.transformer.h[0].mlp.c_fc.weight.numpy()
s = np.abs(w).max(axis=1, keepdims=True) / 127                 # one scale per output row
q = np.round(w / s).astype(np.int8)                             # the int8 codes
error = np.abs(w - q * s)
codes, scales = quantize_per_channel(large.transformer.h[0].mlp.c_fc.weight.data)
print(tr(f"亲手量化 == quantize_per_channel：{np.array_equal(q, codes)}（缩放因子最大差 {np.abs(s.ravel() - scales.ravel()).max():.1e}）",
         f"by hand == quantize_per_channel: {np.array_equal(q, codes)} (scales differ by at most {np.abs(s.ravel() - scales.ravel()).max():.1e})"))
print(tr(f"这一层的舍入误差：平均 {error.mean():.2e}，最大 {error.max():.2e}（上界 s/2：{s.max() / 2:.2e}）；权重的平均大小 {np.abs(w).mean():.2e}",
         f"one layer's rounding error: mean {error.mean():.2e}, max {error.max():.2e} (bound s/2: {s.max() / 2:.2e}); "
         f"weights' mean magnitude {np.abs(w).mean():.2e}"))

quantized = quantize_model(copy.deepcopy(large))          # every Linear and Embedding, in place on the copy
variants = {"large, float32": dict(bytes=model_size_bytes(large), val_loss=table["large"]["val_loss"])}
variants["large, int8"] = dict(bytes=model_size_bytes(quantized), val_loss=evaluate_lm(quantized, data.val, B, EVAL_BATCHES))
shrink = variants["large, float32"]["bytes"] / variants["large, int8"]["bytes"]
change = variants["large, int8"]["val_loss"] - variants["large, float32"]["val_loss"]
speeds = np.array([(generation_speed(large), generation_speed(quantized)) for _ in range(3)])   # interleaved
f32_speed, int8_speed = speeds.max(axis=0)
speed_ratio_q = int8_speed / f32_speed
print(tr(f"权重：{variants['large, float32']['bytes'] / 1e6:.2f} MB → {variants['large, int8']['bytes'] / 1e6:.2f} MB（小了 {shrink:.2f} 倍）",
         f"weights: {variants['large, float32']['bytes'] / 1e6:.2f} MB -> {variants['large, int8']['bytes'] / 1e6:.2f} MB ({shrink:.2f}x smaller)"))
print(tr(f"验证损失：{variants['large, float32']['val_loss']:.4f} → {variants['large, int8']['val_loss']:.4f}（变化 {change:+.4f}）",
         f"validation loss: {variants['large, float32']['val_loss']:.4f} -> {variants['large, int8']['val_loss']:.4f} (change {change:+.4f})"))
print(tr(f"生成（CPU 时间，交替测三次取最好）：float32 每秒 {f32_speed:,.0f} 个词元，int8 每秒 {int8_speed:,.0f} 个",
         f"generation (CPU time, best of three, interleaved): {f32_speed:,.0f} tokens/s float32, {int8_speed:,.0f} tokens/s int8"))
embedding_numbers = large.transformer.wte.weight.size + large.transformer.wpe.weight.size   # left in float32 by exercise 1
record(int8_shrink=shrink, int8_change=change, err_mean=error.mean(), w_mean=np.abs(w).mean(),
       embed_share=embedding_numbers / large.num_parameters(),
       f32_speed=f32_speed, int8_speed=int8_speed,
       int8_speed_verdict=tr("两者相差不到 10%", "within 10 % of each other") if abs(speed_ratio_q - 1) <= 0.1
       else tr("int8 更慢", "int8 is slower") if speed_ratio_q < 1
       else tr("int8 测得更快，但那只能是测量的起伏", "int8 measured faster, which can only be measurement noise"))
""")

md(zh=r"""
大小缩小了 {{int8_shrink:.2f}} 倍（略少于 4 倍：缩放因子、偏置和层归一化的增益仍是 float32），损失只变了 {{int8_change:+.4f}}：
每个权重的舍入误差（平均 {{err_mean:.1e}}）远小于权重本身的大小（平均 {{w_mean:.1e}}），而且在每个点积的几百项里相互抵消。
速度：float32 每秒 {{f32_speed:,.0f}} 个词元，int8 每秒 {{int8_speed:,.0f}} 个（CPU 时间，交替测三次取最好）——{{int8_speed_verdict}}。
int8 在这里也*不可能*更快：NumPy 没有 int8 的矩阵乘法，所以 tinyllm 每次乘法前都要把编码扩回浮点数，多做一步而不是少做一步。
这里省下的是内存，不是时间。
有 int8 算术的硬件（以及为它写的 GPU 内核）能把同一个想法也变成速度。

### 剪枝：把最小的权重置零

全局幅值剪枝把所有线性层的权重放在一起，把其中幅值最小的比例 $a$ 置零：

$$ m_i = \big[\, |w_i| > \tau \,\big], \qquad \tau = \text{第 } aN \text{ 小的 } |w| , \qquad w \leftarrow w \odot m , $$

然后（可选地）微调，每一步之后重新施加掩码，让零保持为零。剪枝掩码 (pruning mask) 就是上式的 $m$——先亲手算出来，再与库的 `Pruner.global_magnitude` 对照：
""", en=r"""
The size fell {{int8_shrink:.2f}}-fold (a little less than 4: the scales, biases and LayerNorm gains stay in
float32) and the loss moved by {{int8_change:+.4f}}: the rounding error of each weight (mean {{err_mean:.1e}}) is far
below the weights' own magnitude (mean {{w_mean:.1e}}), and it averages out over the hundreds of terms
of each dot product. Speed: {{f32_speed:,.0f}} tokens per second in float32, {{int8_speed:,.0f}} in int8 (CPU
time, best of three, interleaved) — {{int8_speed_verdict}}. int8 *cannot* be faster here: NumPy has no
int8 matrix product, so tinyllm widens the codes back to float before every product — one step
more, not one less. The saving is memory, not time. Hardware with int8 arithmetic (and GPU kernels
written for it) turns the same idea into speed as well.

### Pruning: zeroing the smallest weights

Global magnitude pruning pools all the weights of the Linear layers and zeroes the fraction
$a$ with the smallest magnitude,

$$ m_i = \big[\, |w_i| > \tau \,\big], \qquad \tau = \text{the } aN\text{-th smallest } |w| , \qquad w \leftarrow w \odot m , $$

then (optionally) fine-tunes with the mask re-applied after every step, so the zeros stay. The
mask is the $m$ above — computed by hand first, then checked against the library's
`Pruner.global_magnitude`:
""")

code(r"""
from tinyllm.compress import Pruner

# every Linear layer's weight, once (lm_head shares its matrix with the token embedding)
linear = list({id(m.weight): m.weight for _, m in large.named_modules() if isinstance(m, nn.Linear)}.values())

def magnitude_masks(weights, amount):
    magnitudes = np.concatenate([np.abs(w.numpy()).ravel() for w in weights])   # all the weights, pooled
    k = int(round(amount * magnitudes.size))                                     # how many to zero
    tau = np.partition(magnitudes, k - 1)[k - 1]                                 # the k-th smallest |w|
    return [(np.abs(w.numpy()) > tau).astype(w.numpy().dtype) for w in weights]  # 1 = keep, 0 = pruned

linear_weights = sum(w.size for w in linear)
mine = magnitude_masks(linear, 0.5)
library_masks = Pruner.global_magnitude(large, 0.5).masks                       # built, not applied
differ = sum(int((m != tl.backend.to_host(library_masks[w])).sum()) for m, w in zip(mine, linear))
kept = sum(int(m.sum()) for m in mine)
print(tr(f"{len(linear)} 个线性层的 {linear_weights:,} 个权重，剪掉 50 %：亲手的掩码保留 {kept:,} 个；与库的掩码有 {differ} 处不同",
         f"{linear_weights:,} weights in {len(linear)} Linear layers, 50 % pruned: the mask by hand keeps {kept:,}; "
         f"it differs from the library's in {differ} places"))
per_layer = [1 - m.mean() for m in mine]
print(tr("每层被剪掉的比例（全局阈值让各层不同）：", "share pruned per layer (one global threshold, so it differs by layer): ")
      + " ".join(f"{p:.2f}" for p in per_layer))
record(mask_differ=differ, n_linear=len(linear), linear_weights=linear_weights,
       pruned_min=min(per_layer), pruned_max=max(per_layer))
""")

md(zh=r"""
{{n_linear}} 个线性层的 {{linear_weights:,}} 个权重里，亲手算的掩码与库的掩码有 {{mask_differ}} 处不同（库用 `argpartition` 恰好置零 $k$ 个；只有当好几个权重的幅值恰好等于阈值时两者才会不同）。
全局阈值意味着每层剪掉的比例并不相同——这里在 {{pruned_min:.2f}} 到 {{pruned_max:.2f}} 之间：许多小权重的层多丢，权重都要紧的层少丢。
`sparsity_curve` 对一组比例做同样的事，每个比例剪一个副本，评估，再带着掩码微调 {{finetune}} 步：
""", en=r"""
Over the {{linear_weights:,}} weights of {{n_linear}} Linear layers, the mask by hand and the library's differ in {{mask_differ}} places (the library zeroes exactly $k$ with
`argpartition`; the two can differ only where several weights tie at the threshold). One global
threshold means each layer loses a different share — here between {{pruned_min:.2f}} and {{pruned_max:.2f}}: layers
with many small weights lose more, layers whose weights all matter lose less. `sparsity_curve`
does the same for a list of amounts, pruning a copy for each, evaluating it, then fine-tuning
{{finetune}} steps with the mask kept:
""")

code(r"""
from tinyllm.lab.compression import sparsity_curve

AMOUNTS = (0.0, 0.5, 0.9) if FAST else (0.0, 0.3, 0.5, 0.7, 0.8, 0.9)
FINETUNE = 5 if FAST else 60
curve = sparsity_curve(large, data, amounts=AMOUNTS, finetune_iters=FINETUNE, lr=5e-4, batch_size=B,
                       eval_iters=EVAL_BATCHES, seed=0)
for row in curve:
    print(tr(f"剪掉 {row['amount']:.0%} 的线性层权重：立即的验证损失 {row['val_loss']:.3f}，微调 {FINETUNE} 步后 {row['val_loss_finetuned']:.3f}",
             f"pruned {row['amount']:.0%} of Linear weights:  val loss {row['val_loss']:.3f} at once, "
             f"{row['val_loss_finetuned']:.3f} after {FINETUNE} fine-tuning steps"))

fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot([r["amount"] for r in curve], [r["val_loss"] for r in curve], "o-", label=tr("剪枝，不微调", "pruned, no fine-tuning"))
ax.plot([r["amount"] for r in curve], [r["val_loss_finetuned"] for r in curve], "s-",
        label=tr(f"+ 微调 {FINETUNE} 步", f"+ {FINETUNE} fine-tuning steps"))
ax.axhline(curve[0]["val_loss_finetuned"], color="grey", ls=":", label=tr("不剪枝 + 同样的微调", "unpruned + the same fine-tuning"))
ax.axhline(table["medium"]["val_loss"], color="tab:green", ls=":", label=tr("中模型（稠密）", "the medium model (dense)"))
ax.axhline(table["small"]["val_loss"], color="tab:red", ls=":", label=tr("小模型（稠密）", "the small model (dense)"))
ax.set(xlabel=tr("置零的线性层权重比例", "fraction of Linear weights set to zero"), ylabel=tr("验证损失", "validation loss"),
       title=tr("给大模型剪枝", "pruning the large model"))
ax.legend(fontsize=8); fig.tight_layout(); plt.show()

by_amount = {round(r["amount"], 2): r for r in curve}
base_ft = by_amount[0.0]["val_loss_finetuned"]
record(finetune=FINETUNE, base_ft=base_ft, ft50=by_amount[0.5]["val_loss_finetuned"], ft90=by_amount[0.9]["val_loss_finetuned"],
       cost50=by_amount[0.5]["val_loss_finetuned"] - base_ft,
       cost70=by_amount[0.7]["val_loss_finetuned"] - base_ft if 0.7 in by_amount else float("nan"),
       ft90_vs_medium=tr("比稠密的中模型差", "worse than the dense medium model")
       if by_amount[0.9]["val_loss_finetuned"] > table["medium"]["val_loss"] else tr("比稠密的中模型还好", "better than the dense medium model"))
""", alt=(
    "一幅折线图：横轴是置零的线性层权重比例（0 到 0.9），纵轴是验证损失。圆点线（剪枝后不微调）随比例上升，到 0.9 时升得很高；"
    "方块线（再微调 {{finetune}} 步）在 0.5 以前几乎贴着灰色点线（不剪枝加同样的微调，{{base_ft:.3f}}），0.9 时是 {{ft90:.3f}}，{{ft90_vs_medium}}；"
    "绿色和红色点线标出稠密的中模型和小模型。",
    "One line chart: the fraction of Linear weights set to zero (0 to 0.9) against validation loss. The dotted-circle line "
    "(pruned, no fine-tuning) climbs with the fraction, steeply at 0.9; the square line (plus {{finetune}} fine-tuning steps) "
    "stays close to the grey dotted line (unpruned with the same fine-tuning, {{base_ft:.3f}}) up to 0.5 and reaches "
    "{{ft90:.3f}} at 0.9, {{ft90_vs_medium}}; green and red dotted lines mark the dense medium and small models."))

md(zh=r"""
微调后的点要和**剪掉 0 % 的那一行**比，而不是和原模型比：多出来的 {{finetune}} 步也是训练，连不剪枝的模型都会因此变好（灰线，{{base_ft:.3f}}）。
与这个公平的基线相比，剪掉一半权重只多付 {{cost50:+.3f}} nats，剪掉 70 % 多付 {{cost70:+.3f}}；剪掉 90 % 时（{{ft90:.3f}}），剪过的大模型{{ft90_vs_medium}}——
下面的总图会说明，按稀疏格式存储时，它占的字节数与中模型差不多。两个诚实的保留：

* 零仍然被存着：一个全是零的稠密 NumPy 数组占同样的内存、花同样的时间。剪枝只有用稀疏格式（把每个非零值和它的位置一起存：
  8 字节而不是 4 字节，所以稀疏度 (sparsity) 到 50 % 才打平）才省内存，只有用能跳过零的内核才省时间——或者用*结构化*剪枝，
  去掉整行、整个头或整层（`Pruner.attention_heads`，第 8 章亲手做过同样的置零），留下更小的稠密矩阵。
* 微调要花训练计算；这里是 {{finetune}} 步，大约是原始训练的十分之一。

### 蒸馏：小的学生向大的教师学

不缩小大模型，而是训练一个小模型去模仿它（Hinton、Vinyals 与 Dean，2015）。学生模型看到的是教师模型 (teacher model) 预测的*整个*分布，
而不只是那一个正确的下一个字符。记学生的逻辑值 (logits) 为 $z_s$，教师的为 $z_t$，温度 (temperature) 为 $T$，权重为 $\alpha$：

$$ \mathcal{L}_\text{distill} = \alpha\, T^2\, \mathrm{KL}\!\left(p_t \,\big\|\, p_s\right) + (1-\alpha)\, \mathrm{CE}(z_s, y),
   \qquad p_t = \operatorname{softmax}(z_t/T),\; p_s = \operatorname{softmax}(z_s/T), $$

$$ \mathrm{KL}(p_t \,\|\, p_s) = \sum_c p_{t,c} \left(\log p_{t,c} - \log p_{s,c}\right). $$

教师对*错误*字符给出的概率——软目标 (soft targets)——带着 one-hot 目标没有的信息（“th” 之后，“e” 很可能，“a” 说得通，“q” 荒唐）。
为什么乘 $T^2$？对学生逻辑值求导，KL 散度 (KL divergence) 里只有 $-\sum_c p_{t,c}\log p_{s,c}$ 依赖 $z_s$，它的梯度是 softmax 交叉熵的梯度再乘 $1/T$：

$$ \frac{\partial}{\partial z_{s,c}}\, T^2\,\mathrm{KL}(p_t \,\|\, p_s) = T^2 \cdot \frac{1}{T}\left(p_{s,c} - p_{t,c}\right) = T\left(p_{s,c} - p_{t,c}\right). $$

没有 $T^2$，软项的梯度会随 $T$ 增大而按 $1/T$ 缩小；乘上它，两项的平衡就不随 $T$ 变。先亲手写出这个损失，
在一个真实批次上检查它的值和梯度与库函数 `distillation_loss` 相同，梯度也等于上面的公式：
""", en=r"""
Read the fine-tuned points against the **0 % row**, not against the original model: the
{{finetune}} extra steps are more training, and improve even the unpruned model (the grey line,
{{base_ft:.3f}}). Against that fair baseline, pruning half of the weights costs {{cost50:+.3f}} nats and 70 %
costs {{cost70:+.3f}}; at 90 % ({{ft90:.3f}}) the pruned large model is {{ft90_vs_medium}} — which, as the
picture further down shows, takes about as many bytes as the 90 %-pruned model stored sparsely.
Two honest caveats:

* The zeros are still stored: a dense NumPy array of zeros takes the same memory and the same
  time. Pruning saves memory only with a sparse format (storing each non-zero with its position:
  8 bytes instead of 4, so it breaks even at 50 % sparsity) and time only with kernels that skip
  zeros — or with *structured* pruning that removes whole rows, heads or layers
  (`Pruner.attention_heads`; chapter 8 did the same zeroing by hand), leaving smaller dense matrices.
* Fine-tuning costs training compute; here {{finetune}} steps, about a tenth of the original training.

### Distillation: a small student learns from the large teacher

Instead of shrinking the large model, train a small one to imitate it (Hinton, Vinyals and
Dean, 2015). The student sees the teacher's whole predicted distribution, not just the one
correct next character: with student logits $z_s$, teacher logits $z_t$, temperature $T$ and
weight $\alpha$,

$$ \mathcal{L}_\text{distill} = \alpha\, T^2\, \mathrm{KL}\!\left(p_t \,\big\|\, p_s\right) + (1-\alpha)\, \mathrm{CE}(z_s, y),
   \qquad p_t = \operatorname{softmax}(z_t/T),\; p_s = \operatorname{softmax}(z_s/T), $$

$$ \mathrm{KL}(p_t \,\|\, p_s) = \sum_c p_{t,c} \left(\log p_{t,c} - \log p_{s,c}\right). $$

The teacher's probabilities of the *wrong* characters — soft targets — carry information ("after
'th', 'e' is likely, 'a' plausible, 'q' absurd") that a one-hot target does not. Why $T^2$? Of
the KL divergence only $-\sum_c p_{t,c}\log p_{s,c}$ depends on $z_s$; its gradient is that of a
softmax cross-entropy, times $1/T$:

$$ \frac{\partial}{\partial z_{s,c}}\, T^2\,\mathrm{KL}(p_t \,\|\, p_s) = T^2 \cdot \frac{1}{T}\left(p_{s,c} - p_{t,c}\right) = T\left(p_{s,c} - p_{t,c}\right). $$

Without the $T^2$ the soft term's gradient would shrink like $1/T$ as $T$ grows; with it, the
balance of the two terms does not depend on $T$. We write the loss by hand, and check on a real
batch that its value and gradient equal the library's `distillation_loss`, and that the gradient
is the formula above:
""")

code(r"""
from tinyllm.compress.distill import distillation_loss
from tinyllm.lab.compression import distill_experiment

def my_distillation_loss(student_logits, teacher_logits, targets, T=2.0, alpha=0.5):
    C = student_logits.shape[-1]
    z_s, z_t = student_logits.reshape(-1, C), teacher_logits.reshape(-1, C).detach()   # no gradient into the teacher
    log_p_t = F.log_softmax(z_t * (1 / T), axis=-1)
    log_p_s = F.log_softmax(z_s * (1 / T), axis=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(axis=-1).mean()          # KL(p_t || p_s), mean over positions
    ce = F.cross_entropy(z_s, targets.reshape(-1))                           # the ordinary loss on the data
    return kl * (alpha * T * T) + ce * (1 - alpha)

x, y = data.train.get_batch(B, np.random.default_rng(5))
with tl.no_grad():
    teacher_logits, _ = large(tl.Tensor(x))
tl.manual_seed(1337)
student = GPT(make_config(*SIZES["small"]))
with tl.no_grad():
    z = student(tl.Tensor(x))[0].numpy()
results = {}
for name, loss_fn, alpha in (("mine", my_distillation_loss, 0.5), ("library", distillation_loss, 0.5),
                             ("soft only", my_distillation_loss, 1.0)):
    z_s = tl.Tensor(z, requires_grad=True)                                   # the student's logits, as a leaf
    loss = loss_fn(z_s, teacher_logits, tl.Tensor(y), 2.0, alpha)
    loss.backward()
    results[name] = (loss.item(), z_s.grad)
value_gap = abs(results["mine"][0] - results["library"][0])
grad_gap = np.abs(results["mine"][1] - results["library"][1]).max()
# the soft term's gradient, by the formula: T (p_s - p_t), divided by the number of positions (the mean)
def softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
formula = 2.0 * (softmax(z / 2.0) - softmax(teacher_logits.numpy() / 2.0)) / (z.shape[0] * z.shape[1])
formula_gap = np.abs(results["soft only"][1] - formula).max()
print(tr(f"亲手的损失 {results['mine'][0]:.6f}，库的 {results['library'][0]:.6f}：差 {value_gap:.1e}；梯度最大差 {grad_gap:.1e}",
         f"loss by hand {results['mine'][0]:.6f}, library {results['library'][0]:.6f}: difference {value_gap:.1e}; gradients differ by at most {grad_gap:.1e}"))
print(tr(f"软项的梯度 vs 公式 T(p_s − p_t)/N：最大差 {formula_gap:.1e}", f"the soft term's gradient vs the formula T(p_s − p_t)/N: largest difference {formula_gap:.1e}"))
record(distill_value_gap=value_gap, distill_grad_gap=grad_gap, distill_formula_gap=formula_gap)
""")

md(zh=r"""
亲手写的损失与库函数相差 {{distill_value_gap:.1e}}，梯度相差 {{distill_grad_gap:.1e}}，软项的梯度与公式相差 {{distill_formula_gap:.1e}}：浮点舍入，仅此而已。
（库函数把 KL 算成“软目标交叉熵减去教师的熵”，数学上相同。）

`distill_experiment` 用这个损失把同一个学生训练两次，初始权重相同、批次相同——一次单独训练，一次蒸馏——然后评估两者：
""", en=r"""
The loss by hand and the library's differ by {{distill_value_gap:.1e}}, their gradients by {{distill_grad_gap:.1e}}, and the soft
term's gradient differs from the formula by {{distill_formula_gap:.1e}}: floating-point rounding, nothing more.
(The library computes the KL as the soft-target cross-entropy minus the teacher's entropy: the
same thing, mathematically.)

`distill_experiment` trains the same student twice with this loss, from the same initial weights
on the same batches — alone and distilled — and evaluates both:
""")

code(r"""
result = distill_experiment(large, data, make_config(*SIZES["small"]), STEPS, batch_size=B, temperature=2.0, alpha=0.5,
                            lr=2e-3, min_lr=2e-4, warmup=min(50, STEPS), eval_iters=EVAL_BATCHES, seed=1337)
gap = result["alone_val_loss"] - result["teacher_val_loss"]
closed = (result["alone_val_loss"] - result["distilled_val_loss"]) / gap if gap > 0 else float("nan")
print(tr(f"教师（N = {table['large']['N']:,}）：        验证损失 {result['teacher_val_loss']:.3f}",
         f"teacher (N = {table['large']['N']:,}):      val loss {result['teacher_val_loss']:.3f}"))
print(tr(f"单独训练的学生（N = {table['small']['N']:,}）：验证损失 {result['alone_val_loss']:.3f}（每步 {result['alone_ms_per_step']:.0f} ms）",
         f"student alone (N = {table['small']['N']:,}):  val loss {result['alone_val_loss']:.3f}  ({result['alone_ms_per_step']:.0f} ms/step)"))
print(tr(f"蒸馏的学生（T=2，α=0.5）：   验证损失 {result['distilled_val_loss']:.3f}（每步 {result['distilled_ms_per_step']:.0f} ms：每个批次都要跑一遍教师）",
         f"student distilled (T=2, α=0.5):    val loss {result['distilled_val_loss']:.3f}  "
         f"({result['distilled_ms_per_step']:.0f} ms/step: the teacher runs on every batch)"))
print(tr(f"蒸馏缩小了学生与教师之间差距的 {closed:.0%}", f"distillation closed {closed:.0%} of the gap between student and teacher"))
variants["small, float32"] = dict(bytes=model_size_bytes(models["small"]), val_loss=table["small"]["val_loss"])
variants["small, distilled"] = dict(bytes=model_size_bytes(models["small"]), val_loss=result["distilled_val_loss"])
record(teacher_loss=result["teacher_val_loss"], alone_loss=result["alone_val_loss"], distilled_loss=result["distilled_val_loss"],
       alone_ms=result["alone_ms_per_step"], distilled_ms=result["distilled_ms_per_step"], closed=closed,
       distill_verdict=tr("比单独训练的同一个学生好", "better than the same student trained alone")
       if result["distilled_val_loss"] < result["alone_val_loss"] else tr("并不比单独训练的同一个学生好", "no better than the same student trained alone"))
""")

md(zh=r"""
蒸馏的学生（{{distilled_loss:.3f}}）{{distill_verdict}}（{{alone_loss:.3f}}），大小和推理成本完全一样；它缩小了与教师（{{teacher_loss:.3f}}）之间差距的 {{closed:.0%}}——
真实但不大的收益，代价是每个训练批次都要跑一遍教师（每步 {{distilled_ms:.0f}} ms 对 {{alone_ms:.0f}} ms）。训练更久、学生的规模更接近教师时收益更大：
`docs/compute.md` 里一个更大的学生在更长的训练后缩小了一半以上的差距。DistilBERT（Sanh 等，2019）就这样以 BERT 60 % 的大小保留了它 97 % 的基准分数。

### 所有取舍，一张图
""", en=r"""
The distilled student ({{distilled_loss:.3f}}) is {{distill_verdict}} ({{alone_loss:.3f}}), at exactly the same size
and inference cost; it closed {{closed:.0%}} of the gap to the teacher ({{teacher_loss:.3f}}) — a real but modest gain,
at the price of running the teacher on every training batch ({{distilled_ms:.0f}} ms per step against
{{alone_ms:.0f}}). With longer training, and a student closer in size to its teacher, the gain is larger:
in `docs/compute.md` a larger student trained longer closes more than half of the gap.
DistilBERT (Sanh et al., 2019) kept 97 % of BERT's benchmark score at 60 % of its size this way.

### All the trade-offs in one picture
""")

code(r"""
variants["large, float32 + the same fine-tuning"] = dict(bytes=variants["large, float32"]["bytes"], val_loss=base_ft)
for row in curve:
    if row["amount"] in (0.5, 0.9):
        # stored sparsely: 4 bytes per surviving Linear weight + a 4-byte index, the rest dense
        kept = (1 - row["amount"]) * linear_weights
        dense_rest = variants["large, float32"]["bytes"] - 4 * linear_weights
        variants[f"large, {row['amount']:.0%} pruned + fine-tuned (sparse storage)"] = dict(
            bytes=dense_rest + 8 * kept, val_loss=row["val_loss_finetuned"])
variants["medium, float32"] = dict(bytes=table["medium"]["bytes"], val_loss=table["medium"]["val_loss"])

fig, ax = plt.subplots(figsize=(7.5, 3.6))
for name, v in variants.items():
    marker = "o" if "float32" in name else "s" if "int8" in name else "^" if "pruned" in name else "*"
    ax.scatter(v["bytes"] / 1e6, v["val_loss"], s=90 if marker == "*" else 50, marker=marker)
    # three points share x = the large model's bytes, within 0.02 in loss: spread their labels
    dy = {"large, float32": 8, "large, float32 + the same fine-tuning": -16}.get(name, -4)
    ax.annotate(shown(name), (v["bytes"] / 1e6, v["val_loss"]), textcoords="offset points", xytext=(6, dy), fontsize=7)
ax.set(xscale="log", xlabel=tr("存储模型所需的字节（MB）", "bytes to store the model (MB)"), ylabel=tr("验证损失", "validation loss"),
       title=tr("每种技术买到了什么：越左越小，越下越好", "what each technique buys: left is smaller, down is better"))
ax.set_xlim(right=ax.get_xlim()[1] * 4)
fig.tight_layout(); plt.show()
rows = [tr("| 变体 | MB | 验证损失 |", "| variant | MB | val loss |"), "|---|---:|---:|"] + [
    f"| {shown(n)} | {v['bytes'] / 1e6:.2f} | {v['val_loss']:.3f} |" for n, v in sorted(variants.items(), key=lambda kv: kv[1]["bytes"])]
display(Markdown("\n".join(rows)))
""", alt=(
    "一幅带标签的散点图：存储模型所需的兆字节（对数横轴）对验证损失，每个压缩变体一个点，越左越小、越下越好。"
    "最右边一列是大模型的三个点（float32、加同样的微调、剪枝 50 % 后按稀疏格式存储：稀疏格式在 50 % 时正好打平），损失都在 {{loss_large:.2f}} 左右；"
    "int8 的大模型在它们左边约 {{int8_shrink:.1f}} 倍处，损失几乎一样；剪枝 90 % 的大模型（{{ft90:.3f}}）和中模型在 int8 附近但更高；"
    "最左边是两个小模型，蒸馏的学生（{{distilled_loss:.3f}}）比单独训练的（{{alone_loss:.3f}}）低一些。下面的表列出每个点的数。",
    "A labelled scatter plot: megabytes to store the model (log axis) against validation loss, one point per compression "
    "variant, left smaller and down better. At the right, three points of the large model (float32, with the same "
    "fine-tuning, and 50 % pruned stored sparsely: sparse storage breaks even at 50 %), all near {{loss_large:.2f}}; the "
    "int8 large model about {{int8_shrink:.1f}}× to their left at almost the same loss; the 90 %-pruned large model "
    "({{ft90:.3f}}) and the medium model near int8 but higher; at the far left the two small models, the distilled "
    "student ({{distilled_loss:.3f}}) a little below the one trained alone ({{alone_loss:.3f}}). The table below gives every "
    "point's numbers."))

md(zh=r"""
（剪掉 50 % 的模型如果落在原大模型*下面*，那只是因为它多训练了 {{finetune}} 步：“大模型，float32，再做同样的微调”那个点才是公平的比较。）

在这个规模上，**int8 量化显然最划算**：四分之一的字节，几乎不损失，也不用重新训练。剪枝要稀疏格式才省得下东西，要重新训练才保得住精度；
蒸馏能改进小模型，但达不到大模型。实践中常把它们叠起来用（先蒸馏，再量化）。对原文“模型压缩、模型蒸馏”这句话：两者都有效，
但代价的*种类*不同——量化只付精度，剪枝付重新训练和特殊格式，蒸馏付一次把教师放在循环里的完整训练。

（混合精度——float16 计算、float32 主权重，`tinyllm.compress.precision`——是另一种日常的节省，省的是激活值内存，在 GPU 上还省时间；
它关乎训练而不是存储的模型，所以不在图里。）

## Q3 · 如何解决 LLM 的偏差问题？

第 8 章在一个生成的语料上训练了小的词级 GPT：每种职业以概率 $s$ 与一个刻板的代词同现；亲手写出的偏差分数
$\frac{1}{|O|}\sum_o |2 p_\text{he}(o) - 1|$（与库函数 `bias_score` 相同，下面就用它）接近语料的 $2s - 1$。现在固定 $s = 0.9$，试原文提出的两种补救。

### 数据增强：反事实数据增强

把语料里一部分句子复制一份，交换其中的性别词（he ↔ she，his ↔ her，himself ↔ herself；Lu 等 2018，Zmigrod 等 2019），加回语料。
增强比例为 $f$ 时，语料的比率 $s$ 变为

$$ s_f = \frac{s + f(1 - s)}{1 + f}, \qquad \text{预期的偏差} = 2 s_f - 1 , $$

所以 $f = 1$（每个句子都交换一次）使 $s_f = \tfrac12$：关联完全消失，语料对每种职业都是平衡的。
""", en=r"""
(If the 50 %-pruned model sits *below* the original large model, that is only because of its
{{finetune}} extra training steps: the point "large, float32 + the same fine-tuning" is the fair comparison.)

At this scale **int8 quantization is the clear win**: a quarter of the bytes for almost no loss,
and no retraining. Pruning needs a sparse format to save anything and retraining to stay
accurate; distillation improves a small model but does not reach the large one. The
combinations used in practice (a distilled, then quantized model) stack these gains. On the
article's phrase 模型压缩、模型蒸馏: both work, and their costs are different in kind —
quantization costs accuracy only, pruning costs retraining and a special format, distillation
costs a full training run with the teacher in the loop.

(Mixed precision — float16 arithmetic with float32 master weights, `tinyllm.compress.precision` —
is the other everyday saving, of activation memory and, on GPUs, of time; it is about training,
not about the stored model, and is left out of the picture.)

## Q3 · 如何解决 LLM 的偏差问题？ — Augmentation and regularization

Chapter 8 trained small word-level GPTs on a generated corpus where each occupation goes with a
stereotyped pronoun with probability $s$, and found the bias score
$\frac{1}{|O|}\sum_o |2 p_\text{he}(o) - 1|$ — written by hand there, equal to the library's
`bias_score` used here — close to the corpus's $2s - 1$. Now we fix $s = 0.9$ and try the
article's two remedies.

### 数据增强 — Counterfactual data augmentation

Add to the corpus a copy of some of its sentences with the gendered words swapped (he ↔ she,
his ↔ her, himself ↔ herself; Lu et al. 2018, Zmigrod et al. 2019). Augmenting a fraction $f$ of
the sentences turns the corpus rate $s$ into

$$ s_f = \frac{s + f(1 - s)}{1 + f}, \qquad \text{expected bias} = 2 s_f - 1 , $$

so $f = 1$ (every sentence swapped once) makes $s_f = \tfrac12$: no association left, the corpus
balanced for every occupation.
""")

code(r"""
from tinyllm.lab.bias import make_occupation_corpus, swap_gender, WordTokenizer, bias_score
from tinyllm.compress.lm import small_config

SKEW = 0.9
BIAS_ITERS = 30 if FAST else 1000
corpus = make_occupation_corpus(4000, skew=SKEW, seed=0)
sentences = [s.strip() + " ." for s in corpus.split(" .") if s.strip()]
print(sentences[0], "  ->  ", swap_gender(sentences[0]))
words = WordTokenizer.from_text(corpus + " " + " ".join(swap_gender(s) for s in sentences))


def train_bias_model(corpus_text, weight_decay=0.0, dropout=0.0, label_smoothing=0.0, seed=0):
    dataset = CausalLMDataset(np.array(words.encode(corpus_text)), 12)
    tl.manual_seed(seed)
    model = GPT(small_config(words.vocab_size, block_size=12, n_layer=2, n_head=2, n_embd=48, dropout=dropout))

    def loss_fn(model, x, y):
        logits, _ = model(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), label_smoothing=label_smoothing)

    train_lm(model, dataset, BIAS_ITERS, batch_size=32, lr=3e-3, min_lr=3e-4, warmup=min(50, BIAS_ITERS),
             weight_decay=weight_decay, seed=seed, loss_fn=loss_fn)
    return model


rng = np.random.default_rng(0)
FRACTIONS = [0.0, 1.0] if FAST else [0.0, 0.25, 0.5, 0.75, 1.0]
augmentation = {}
for f in FRACTIONS:
    chosen = rng.permutation(len(sentences))[:int(round(f * len(sentences)))]
    text_f = " ".join(sentences + [swap_gender(sentences[i]) for i in chosen])
    score = bias_score(train_bias_model(text_f), words)
    s_f = (SKEW + f * (1 - SKEW)) / (1 + f)
    augmentation[f] = dict(bias=score["bias"], expected=2 * s_f - 1, stereotype=score["stereotype"])
    print(tr(f"增强 {f:.0%} 的句子：预期偏差 {2 * s_f - 1:.3f}，测得 {score['bias']:.3f}（带符号的刻板分数 {score['stereotype']:+.3f}）",
             f"augmented {f:.0%} of sentences: expected bias {2 * s_f - 1:.3f}, measured {score['bias']:.3f} "
             f"(signed stereotype score {score['stereotype']:+.3f})"))
partial = [f for f in FRACTIONS if 0 < f < 1]
below = [f for f in partial if augmentation[f]["bias"] < augmentation[f]["expected"]]
under_floor = [f for f in partial if augmentation[f]["bias"] < augmentation[1.0]["bias"]]
under = tr("、".join(f"f = {f:g}（{augmentation[f]['bias']:.3f}，预期 {augmentation[f]['expected']:.3f}）" for f in under_floor),
           ", ".join(f"f = {f:g} ({augmentation[f]['bias']:.3f}, expected {augmentation[f]['expected']:.3f})" for f in under_floor))
record(aug_none=augmentation[0.0]["bias"], aug_full=augmentation[1.0]["bias"], aug_full_signed=augmentation[1.0]["stereotype"],
       n_partial=len(partial), n_below=len(below),
       under_clause=tr(f"{under}甚至低于噪声底：剩下的那点关联在这些步数里没学会，而完全平衡的语料上的模型也会因随机游走得到高于 0 的分数，"
                       f"所以低于噪声底的分数并不说明比完全平衡更好。",
                       f"{under} even came out below the noise floor: the small remaining association was not learned "
                       f"in these steps, while a model of a perfectly balanced corpus scores above zero by its random "
                       f"wander, so a score below the floor does not mean better than balanced.")
       if under_floor else tr("没有哪个部分剂量低于噪声底。", "No partial dose came out below the noise floor."))
""")

md(zh=r"""
### 模型正则化

正则化 (regularization) 限制模型把训练数据拟合得多紧。三种常见的，每一种都是 tinyllm 的一个旋钮：

* **权重衰减** (weight decay) $\lambda$（AdamW）：每一步 $\theta \leftarrow \theta - \eta\lambda\theta$，把权重拉向 0；
* **丢弃法** (dropout) $p$：训练时每个激活值以概率 $p$ 置零（其余乘以 $\frac{1}{1-p}$）；
* **标签平滑** (label smoothing) $\varepsilon$：目标变成 $(1-\varepsilon)\,\text{onehot}(y) + \varepsilon / V$，模型永远不会被推向完全确定。

它们能减小偏差吗？三种都在同一个偏斜语料上训练（不做增强）。
""", en=r"""
### 模型正则化 — Regularization

Regularizers limit how sharply a model fits its training data. Three common ones, each a knob of
tinyllm:

* **weight decay** $\lambda$ (AdamW): $\theta \leftarrow \theta - \eta\lambda\theta$ every step, pulling weights toward 0;
* **dropout** $p$: during training each activation is zeroed with probability $p$ (the rest scaled by $\frac{1}{1-p}$);
* **label smoothing** $\varepsilon$: the target becomes $(1-\varepsilon)\,\text{onehot}(y) + \varepsilon / V$,
  so the model is never pushed to full confidence.

Do they reduce bias? All three are trained on the same skewed corpus (no augmentation).
""")

code(r"""
SETTINGS = [(tr("无", "none"), {}), (tr("权重衰减 1.0", "weight decay 1.0"), dict(weight_decay=1.0)),
            (tr("丢弃法 0.2", "dropout 0.2"), dict(dropout=0.2)),
            (tr("标签平滑 0.1", "label smoothing 0.1"), dict(label_smoothing=0.1)),
            (tr("标签平滑 0.3", "label smoothing 0.3"), dict(label_smoothing=0.3))]
if FAST:
    SETTINGS = SETTINGS[:2]
regularized = {}
for name, knobs in SETTINGS:
    score = bias_score(train_bias_model(corpus, **knobs), words)
    regularized[name] = score["bias"]
    print(tr(f"{name:>20}：偏差 {score['bias']:.3f}   带符号的刻板分数 {score['stereotype']:+.3f}",
             f"{name:>20}: bias {score['bias']:.3f}   signed stereotype score {score['stereotype']:+.3f}"))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 1.4]})
ax1.plot(FRACTIONS, [augmentation[f]["expected"] for f in FRACTIONS], "k--", label=tr("预期 2s_f − 1", "expected 2s_f − 1"))
ax1.plot(FRACTIONS, [augmentation[f]["bias"] for f in FRACTIONS], "o-", label=tr("测得", "measured"))
ax1.set(xlabel=tr("加入交换性别副本的句子比例 f", "fraction f of sentences added gender-swapped"), ylabel=tr("偏差分数", "bias score"),
        ylim=(-0.02, 1), title=tr("数据增强", "data augmentation"))
ax1.legend()
names = list(regularized)
ax2.barh(names, [regularized[n] for n in names], color="tab:purple")
ax2.axvline(2 * SKEW - 1, color="k", ls="--", lw=1, label=tr("语料比率 2s − 1", "corpus rate 2s − 1"))
ax2.axvline(augmentation[max(FRACTIONS)]["bias"], color="tab:green", ls=":",
            label=tr(f"增强 f = {max(FRACTIONS):g}", f"augmentation f = {max(FRACTIONS):g}"))
ax2.set(xlabel=tr("偏差分数", "bias score"), xlim=(0, 1.4), xticks=np.arange(0, 1.01, 0.2),
        title=tr(f"正则化（偏斜 {SKEW}）", f"regularization (skew {SKEW})"))
ax2.invert_yaxis(); ax2.legend(fontsize=7, loc="center right")
fig.tight_layout(); plt.show()
values = list(regularized.values())
record(reg_min=min(values), reg_max=max(values), corpus_rate=2 * SKEW - 1,
       reg_verdict=tr("全都把分数留在语料比率附近", "all leave the score near the corpus rate")
       if all(abs(v - (2 * SKEW - 1)) < 0.1 for v in values) else tr("并不都把分数留在语料比率附近", "do not all leave the score near the corpus rate"))
""", alt=(
    "两幅图。左：加入交换性别副本的句子比例 f（0 到 1）对偏差分数；黑色虚线是预期的 2s_f − 1，圆点线是测得的，"
    "从 {{aug_none:.3f}} 降到 {{aug_full:.3f}}，紧跟虚线。右：五种正则化设置（无、权重衰减、丢弃法、两种标签平滑）的横向紫色柱，"
    "都在 {{reg_min:.3f}} 到 {{reg_max:.3f}} 之间，贴着表示语料比率 {{corpus_rate:.1f}} 的黑色虚线，远在绿色点线（完全增强）的右边。",
    "Two panels. Left: the fraction f of sentences added gender-swapped (0 to 1) against the bias score; a dashed black "
    "line is the expected 2s_f − 1 and the dotted line the measured score, falling from {{aug_none:.3f}} to {{aug_full:.3f}} close to "
    "the dashed one. Right: horizontal purple bars for five regularization settings (none, weight decay, dropout, two "
    "label smoothings), all between {{reg_min:.3f}} and {{reg_max:.3f}}, next to a dashed black line at the corpus rate "
    "{{corpus_rate:.1f}} and far right of a dotted green line (full augmentation)."))

md(zh=r"""
两种补救并不一样：

* **数据增强从源头去掉偏差。** 测得的分数跟着预期的 $2s_f - 1$ 走，从 {{aug_none:.3f}}（不增强）降到 {{aug_full:.3f}}（$f = 1$）。
  $f = 1$ 时语料对每种职业都是严格平衡的，所以它的分数就是这个设置的**噪声底** (noise floor)：有限步训练后 $p_\text{he}$ 在 ½ 附近的随机游走
  （带符号的刻板分数是 {{aug_full_signed:+.3f}}，游走相互抵消）。{{n_partial}} 个部分剂量中有 {{n_below}} 个测得的分数低于预期——弱的关联最后才学会（第 8 章）。
  {{under_clause}}模型学的是给它的数据的统计规律，所以修好数据就修好了模型。
  麻烦在于这只在交换有明确定义的地方管用：在我们的玩具语料上它是精确的；在真实文本里，“her” 既对应 “his” 又对应 “him”，
  名字和语法一致性会碍事，而且只有有人想到要列出来的偏差才会被增强。
* **正则化碰不到它。** 权重衰减、丢弃法和标签平滑{{reg_verdict}}（{{reg_min:.3f}} 到 {{reg_max:.3f}}，语料比率 {{corpus_rate:.1f}}）。
  正则化对付的是*过拟合* (overfitting)——背下来的噪声、数据撑不住的细节——而这种偏差两者都不是：它是训练数据里一个强而一致的模式，
  正是一个正则化得当的模型*应该*学会的东西。标签平滑确实压平了每个预测，但对 “he” 和 “she” 加的是同样的 $\varepsilon / V$，
  所以分数衡量的两者之比几乎不动。

这里有一个陷阱：第 8 章量到，只训练 300 步的模型给弱关联打的分数远低于语料比率——模型还没学会哪种职业配哪个代词。
在这样的模型上比较，任何让学习变慢的东西（较强的丢弃法、较强的标签平滑）和任何削弱关联的部分增强，都会*看起来*像是治好了偏差。
所以这里每个模型都训练了第 8 章训练到底的那么多步（`BIAS_ITERS`）：测偏差要用训练到底的模型。

所以原文的回答，关于数据增强是对的；关于正则化，至少对一种作为数据中一致模式的偏差，是错的。确实有通过目标函数对付偏差的方法——
给被测量的量本身加惩罚（这里就是一组职业上 $p_\text{he}$ 与 $p_\text{she}$ 之差）——但那样的“正则项”和增强一样，需要同一份偏差清单。
""", en=r"""
The two remedies are not alike:

* **Data augmentation removes the bias at its source.** The measured score follows the predicted
  $2s_f - 1$, from {{aug_none:.3f}} (no augmentation) down to {{aug_full:.3f}} ($f = 1$). At $f = 1$ the corpus is
  exactly balanced for every occupation, so its score is this setup's **noise floor**: the random
  wander of $p_\text{he}$ around ½ after finite training (the signed stereotype score is
  {{aug_full_signed:+.3f}}: the wanders cancel). {{n_below}} of the {{n_partial}} partial doses measured below the
  prediction — a weak association is learned last (chapter 8). {{under_clause}} The model learns the
  statistics of the data it is given, so fixing the data fixes the model. The catch is that this only works where the swap is well defined. On our toy corpus
  it is exact; in real text "her" maps to both "his" and "him", names and grammatical agreement
  get in the way, and only the biases someone thought to list get augmented.
* **Regularization does not touch it.** Weight decay, dropout and label smoothing {{reg_verdict}}
  ({{reg_min:.3f}} to {{reg_max:.3f}}, corpus rate {{corpus_rate:.1f}}). A regularizer fights *overfitting* — memorised noise,
  detail the data does not support — and this bias is neither: it is a strong, consistent pattern
  of the training data, exactly what a well-regularized model is supposed to learn. Label
  smoothing does flatten every prediction, but by the same $\varepsilon / V$ for "he" and "she",
  so the ratio of the two, which the score measures, barely moves.

There is a trap here: chapter 8 measured that a model trained only 300 steps scores a weak
association far below its corpus rate — it has not yet learned which occupation goes with which
pronoun. Compared on such models, anything that slows learning (strong dropout, strong label
smoothing) and any partial augmentation that weakens the association would *look* like a cure.
So every model here trains as many steps as chapter 8's fully trained ones (`BIAS_ITERS`): measure
bias on models trained to the end.

So the article's answer is right about data augmentation and, at least for a bias that is a
consistent pattern of the data, wrong about regularization. Methods that do attack bias through
the objective exist — they add a penalty on the measured quantity itself (here, the difference
between $p_\text{he}$ and $p_\text{she}$ for a list of occupations) — but then the "regularizer"
needs the same list of biases as augmentation does.
""")

# ============================================================================ Try it
md(zh=r"""
## 动手试试

1. **少量化一些。** 只量化注意力层和 MLP 层：
   `quantize_model(copy.deepcopy(large), [n for n, m in large.named_modules() if n.endswith(("c_attn", "c_proj", "c_fc"))])`。
   *预期：* 节省几乎一样——留在 float32 的词元表和位置表只占这个模型权重的 {{embed_share:.1%}}（词表只有几十个字符）——损失的变化同样可以忽略。
   在词表有五万个词元的真实 LLM 里，这两张表占的比例要大得多。
2. **微调更久。** 用 `finetune_iters=300` 运行 `sparsity_curve`。*预期：* 每个微调后的点都进一步向不剪枝的损失靠拢（微调的计算也是五倍）；
   稀疏度越低，靠得越近。
3. **在温度 1 下蒸馏。** `distill_experiment(..., temperature=1.0, alpha=0.9)`。*预期：* 与 $T = 2$、$\alpha = 0.5$ 相差不大，
   哪个更好取决于这一对教师和学生——量一量；最好的 $T$ 和 $\alpha$ 没有通用答案。
4. **更大模型的偏差。** 用 `n_embd=96, n_layer=4` 训练偏差模型。*预期：* 分数仍在语料比率附近：更大的容量同样能拟合这种偏斜；规模也不是补救。
5. **增强之后换个句式测。** 用 $f = 1$ 增强，再用 `template=". the {job} told us that"` 打分。*预期：* 仍在噪声底——交换施加在语料的每个句子框架上，所以每个框架都是平衡的。
6. **没有键值缓存的生成。** 在 Q1 里用 `generation_speed(large, use_cache=False)` 再量一次。*预期：* 更慢，而且生成得越长慢得越多：
   没有缓存时每一步都要把整个上下文重算一遍。然后在下面的起点单元里亲手写出带缓存的一步注意力 `attention_step`，
   `check_kv_cache()` 把它与大模型第 0 层的注意力对照。
   """ + assignment_task("a7_sampling_kv_cache", "kv_cache")["zh"] + r"""
""", en=r"""
## Try it

1. **Quantize less.** Quantize only the attention and MLP layers,
   `quantize_model(copy.deepcopy(large), [n for n, m in large.named_modules() if n.endswith(("c_attn", "c_proj", "c_fc"))])`.
   *Expected:* almost the same saving — the token and position tables that stay in float32 are
   only {{embed_share:.1%}} of this model's weights (a vocabulary of a few dozen characters) — and the same
   negligible loss change. In a real LLM with a 50 000-token vocabulary the tables are a much larger share.
2. **Fine-tune longer.** Run `sparsity_curve` with `finetune_iters=300`. *Expected:* every
   fine-tuned point moves further down toward the unpruned loss (and costs five times the
   fine-tuning compute); the lower the sparsity, the closer it gets.
3. **Distil at temperature 1.** `distill_experiment(..., temperature=1.0, alpha=0.9)`.
   *Expected:* not far from $T = 2$, $\alpha = 0.5$; which is better depends on the pair of
   teacher and student — measure it; there is no universal best $T$ and $\alpha$.
4. **Bias of a bigger model.** Train the bias model with `n_embd=96, n_layer=4`. *Expected:* the
   score stays near the corpus rate: more capacity fits the skew just as well; size is no remedy either.
5. **Augment, then test on another frame.** Augment with $f = 1$ and score with
   `template=". the {job} told us that"`. *Expected:* still at the noise floor — the swap was
   applied to every sentence frame in the corpus, so every frame is balanced.
6. **Generation without the KV cache.** In Q1, measure `generation_speed(large, use_cache=False)`.
   *Expected:* slower, and the more so the longer it generates: without the cache every step
   recomputes the whole context. Then write one attention step with a cache, `attention_step`, in
   the starter cell below; `check_kv_cache()` compares it with layer 0 of the large model.
   """ + assignment_task("a7_sampling_kv_cache", "kv_cache")["en"] + r"""
""")

code(r"""
#zh: 练习 6 的起始代码（作业 a7_sampling_kv_cache，任务 7.3）。写好函数，再运行 check_kv_cache()。
#en: Exercise 6, starter (assignment a7_sampling_kv_cache, task 7.3). Fill in the function, then run check_kv_cache().
def attention_step(x_t, p, cache, n_heads):
    #zh: 一个新词元 x_t (B, 1, D) 的因果多头自注意力，带键值缓存（一个字典，开始时为空）。
    #en: Causal multi-head self-attention for one new token x_t (B, 1, D), with a KV cache (a dict, empty at first).
    #zh: 1. qkv = F.linear(x_t, p["c_attn.weight"], p["c_attn.bias"])；q、k、v 是它的三段，每段宽 D，
    #en: 1. qkv = F.linear(x_t, p["c_attn.weight"], p["c_attn.bias"]); q, k, v: its three D-wide slices,
    #zh:    各自变形成多个头 (B, H, 1, D // H)
    #en:    each reshaped to heads (B, H, 1, D // H)
    #zh: 2. 沿时间轴（axis 2）把 k、v 接到 cache["k"]、cache["v"] 后面
    #en: 2. append k and v to cache["k"], cache["v"] along the time axis (axis 2)
    #zh: 3. 对缓存里的所有位置算 softmax(q Kᵀ / √(D // H)) V（不要掩码），合并各头，再用 c_proj 做 F.linear
    #en: 3. softmax(q Kᵀ / √(D // H)) V over all cached positions (no mask), merge the heads, then F.linear with c_proj
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def check_kv_cache():
    attn = large.transformer.h[0].attn
    p = {name: getattr(attn, layer).weight if name.endswith("weight") else getattr(attn, layer).bias
         for name, layer in (("c_attn.weight", "c_attn"), ("c_attn.bias", "c_attn"),
                             ("c_proj.weight", "c_proj"), ("c_proj.bias", "c_proj"))}
    x = tl.randn(2, 6, attn.n_embd)
    large.eval()
    with tl.no_grad():
        whole = attn(x).numpy()                                   # causal attention over the whole sequence
        cache = {}
        steps = np.concatenate([attention_step(x[:, t:t + 1], p, cache, attn.n_head).numpy() for t in range(6)], axis=1)
    print(tr("与整段的因果注意力一致 ✓", "matches causal attention over the whole sequence ✓")
          if np.allclose(steps, whole, atol=1e-5) else tr("还不一致 ✗", "not yet ✗"))

# check_kv_cache()      # uncomment when your function is written
""")

md(zh=r"""
## 小结

| 原文 | 测到的 |
|---|---|
| 选择合适的 LLM：考虑模型的规模、性能、成本 | 三个模型的规模（字节）、性能（损失、困惑度）和成本（训练每步毫秒、每秒生成词元、内存）一张表；应用的约束决定选哪一行 |
| 模型压缩能降低计算资源需求 | int8：字节少 {{int8_shrink:.2f}} 倍，损失变化 {{int8_change:+.4f}}，没有 int8 内核就不提速；剪枝（掩码亲手算，与库有 {{mask_differ}} 处不同）：短暂微调后剪掉 50 % 只多付 {{cost50:+.3f}}，剪掉 90 % {{ft90_vs_medium}}；只有稀疏存储才省得下 |
| 模型蒸馏 | 亲手写的蒸馏损失 = `distillation_loss`（值和梯度）；蒸馏的学生 {{distilled_loss:.3f}}，单独训练的 {{alone_loss:.3f}}，大小相同；代价是每个训练步都跑一遍教师 |
| 数据增强能解决偏差 | 反事实增强让偏差分数按语料比率的预期下降：{{aug_none:.3f}} → {{aug_full:.3f}}（$f = 1$，即噪声底） |
| 模型正则化能解决偏差 | 权重衰减、丢弃法和标签平滑留下 {{reg_min:.3f}} 到 {{reg_max:.3f}}（语料比率 {{corpus_rate:.1f}}；模型都训练到底） |
""", en=r"""
## Summary

| the article says | what we measured |
|---|---|
| 选择合适的 LLM：考虑模型的规模、性能、成本 (size, performance, cost) | a table of size (bytes), performance (loss, perplexity) and cost (training ms/step, generation tokens/s, memory) for three models; the application's constraints pick the row |
| 模型压缩 (compression) lowers compute demands | int8: {{int8_shrink:.2f}}× fewer bytes, loss change {{int8_change:+.4f}}, no speed-up without int8 kernels; pruning (mask by hand, {{mask_differ}} places differ from the library's): 50 % costs {{cost50:+.3f}} after a short fine-tune, 90 % is {{ft90_vs_medium}}; savings only with sparse storage |
| 模型蒸馏 (distillation) | the distillation loss by hand = `distillation_loss` (value and gradient); the distilled student {{distilled_loss:.3f}} against {{alone_loss:.3f}} alone, at equal size; it costs the teacher's forward pass on every training step |
| 数据增强 (augmentation) solves bias | counterfactual augmentation lowered the bias score as the corpus rates predict: {{aug_none:.3f}} → {{aug_full:.3f}} ($f = 1$, the noise floor) |
| 模型正则化 (regularization) solves bias | weight decay, dropout and label smoothing left {{reg_min:.3f}} to {{reg_max:.3f}} (corpus rate {{corpus_rate:.1f}}; models trained to the end) |
""")

code(r"""
record(kernel_cpu_minutes=time.process_time() / 60)       # this kernel's CPU time for the whole chapter
""")

ch.index(builds=("一张选模型的表（规模、损失、速度、内存）；int8 量化（一层亲手做）；亲手写剪枝掩码（对照 `Pruner`）和剪枝曲线；"
                 "亲手写蒸馏损失（值和梯度对照 `distillation_loss`）和蒸馏实验；反事实增强与正则化治偏差",
                 "a model-choice table (size, loss, speed, memory); int8 quantization (one layer by hand); the pruning "
                 "mask written in cells (checked against `Pruner`) and pruning curves; the distillation loss written "
                 "in cells (value and gradient checked against `distillation_loss`) and a distillation run; bias "
                 "fixes by counterfactual augmentation and regularization"),
         figures=("int8 小 {{int8_shrink:.2f}} 倍，损失 {{int8_change:+.4f}}；剪掉 50 % + 微调 {{ft50:.3f}}，不剪枝 {{base_ft:.3f}}；"
                  "蒸馏的学生 {{distilled_loss:.3f}}，单独 {{alone_loss:.3f}}；增强使偏差 {{aug_none:.3f}} → {{aug_full:.3f}}（f = 1）；"
                  "正则化后偏差 {{reg_min:.3f}}–{{reg_max:.3f}}",
                  "int8 {{int8_shrink:.2f}}× smaller, loss {{int8_change:+.4f}}; 50 % pruned + fine-tuned {{ft50:.3f}} vs "
                  "{{base_ft:.3f}} unpruned; distilled student {{distilled_loss:.3f}} vs {{alone_loss:.3f}} alone; augmentation "
                  "bias {{aug_none:.3f}} → {{aug_full:.3f}} (f = 1); regularization leaves bias at {{reg_min:.3f}}–{{reg_max:.3f}}"))

if __name__ == "__main__":
    ch.build()
