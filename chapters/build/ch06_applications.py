"""Build chapters/zh/06_applications.ipynb and chapters/en/06_applications.ipynb (the
article's §6): text generation and its sampling knobs, the KV cache built in cells and timed,
an assistant skill, a customer-service bot, automatic grading (the education example) with
tinyllm's assignments, and an honest account of what models this small cannot do.

    python chapters/build/ch06_applications.py                    # full run, both editions
    python chapters/build/ch06_applications.py --fast --out /tmp/ch   # quick check
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Chapter, assignment_task  # noqa: E402

ch = Chapter("06_applications", number=6, title=("实际应用场景", "Applications, small and honest"), sections="§6")
md, code = ch.md, ch.code

# ============================================================================ title
md(zh=r"""
# 6 · 实际应用场景

> **原文 §6**：LLMs 在众多领域具有广泛的应用，例如：**智能客服**、**智能助手**、**教育领域**、**医疗领域**。

原文列出了大模型的用途：智能客服 (customer service bot) 全天候回答常见问题，智能助手 (intelligent assistant) 替人完成任务，
教育里做个性化学习和自动批改 (automatic grading)，医疗里辅助诊断。在笔记本电脑上训练几分钟的模型不是大模型，
但每一种用法的*机制*在任何尺寸上都一样：提示 (prompt) 进去，词元 (token) 一个一个出来，模型周围的代码决定怎么处理它们。
本章搭几个小而真实的应用，并测量每一个在哪里失灵。（原文这一节没有小节；6.1–6.7 是本章自己的划分。）

**你会亲手搭建**

1. **文本生成**：一个在 {{dataset_title}} 上训练的字符级 GPT，以及决定它输出的三个旋钮——温度 (temperature)、top-k 和 top-p——用公式、图和测量三种方式比较。
2. **键值缓存** (KV cache)：在单元格里一步一步写出来——每步只为新词元算键和值，追加进缓存——与每步重算整个上下文对照计时，并确认生成的词元与库的 `generate` 完全相同。
3. **智能助手的一个技能**：“在某天提醒我……”——把第 5 章的日期翻译模型放进一条流水线，让日历检查它的输出。
4. **智能客服**：一个学会了咖啡馆营业时间和价格的小 GPT，用它没见过的问法和它不可能知道的问题测试。
5. **教育领域：自动批改**：用 tinyllm 自带的课堂作业和评分器批改三份作业，看它给出的分数和提示。
6. 一份**诚实的清单**：这种尺寸的模型做不到什么，附上测量。

完整运行约 {{run_minutes:.1f}} 分钟（{{run_cores}} 核 CPU）；设置 `TINYLLM_FAST=1` 时不到一分钟。
""", en=r"""
# 6 · 实际应用场景 — Applications, small and honest

> **The article, §6**: LLMs 在众多领域具有广泛的应用，例如：**智能客服**、**智能助手**、**教育领域**、**医疗领域**。
> (LLMs are widely used in many fields, for example customer service, intelligent assistants,
> education and medicine.)

The article lists what large models are used for: customer-service bots answering common questions
around the clock, assistants carrying out tasks, personalised learning and automatic grading in
education, diagnosis support in medicine. A model trained for a few minutes on a laptop is not a
large model, but the *mechanics* of each use are the same at any size: a prompt goes in, tokens
come out one at a time, and code around the model decides what to do with them. This chapter
builds a few small, real applications and measures where each one breaks. (The article's section
has no subsections; 6.1–6.7 are this chapter's.)

**What you will build**

1. **Text generation**: a character-level GPT trained on {{dataset_title}}, and the three knobs that
   shape its output — temperature, top-k and top-p — compared in formulas, pictures and measurements.
2. **The KV cache**, written in cells step by step — keys and values computed for the new token
   only and appended to a cache — timed against recomputing the whole context, and checked to give
   exactly the tokens of the library's `generate`.
3. **An assistant skill**: "remind me to … on *date*" — chapter 5's date-translation model inside a
   pipeline whose calendar checks its output.
4. **A customer-service bot**: a tiny GPT that learns a café's opening hours and prices, tested on
   phrasings it never saw and on questions it cannot know.
5. **Education: automatic grading** — tinyllm's classroom assignments and grader marking three
   submissions, with the scores and hints they give.
6. **An honest account** of what models this size cannot do, with the measurements.

A full run takes about {{run_minutes:.1f}} minutes on {{run_cores}} CPU cores; with `TINYLLM_FAST=1`, under a minute.
""")

ch.setup(r"""
import re, random, tempfile, datetime, pathlib, contextlib, io
import tinyllm.functional as F
from tinyllm.models import GPT, GPTConfig
from tinyllm.data import CharTokenizer, CausalLMDataset, Seq2SeqDataset, encode_pairs, tinyshakespeare, load_shipped_corpus
from tinyllm.generate import generate, sample_next_token, greedy_translate, beam_search
from tinyllm.train import Trainer, TrainConfig, PRESETS
from tinyllm.optim import AdamW, param_groups, clip_grad_norm_, cosine_with_warmup
np.set_printoptions(precision=4, suppress=True, linewidth=110)
run_dir = tempfile.mkdtemp(prefix="tinyllm_ch06_")   # checkpoints of this chapter's runs
""")

# ============================================================================ 6.1
md(zh=r"""
## 6.1 文本生成

### 一个小 GPT

语料是 Tiny Shakespeare（110 万个字符），前提是磁盘上有一份；没有的话（这里不会下载）就退回 tinyllm 自带的儿童故事语料 Tiny Tales。
模型是 nanoGPT 的 “shakespeare-char” 形状——4 层、4 个头、宽 128、64 个字符的上下文——用 tinyllm 的 `Trainer`
（第 5 章的训练循环，打包好并带上评估和检查点）训练几百步，只是通常 2,000 步的一小部分。
""", en=r"""
## 6.1 文本生成 — Text generation

### A small GPT

The corpus is Tiny Shakespeare (1.1 M characters) when a copy is on disk; without one (no download
happens here) the chapter falls back to Tiny Tales, the story corpus shipped with tinyllm. The
model is nanoGPT's "shakespeare-char" shape — 4 layers, 4 heads, 128 wide, a 64-character context —
trained with tinyllm's `Trainer` (chapter 5's loop, packaged, with evaluation and checkpoints) for a
few hundred steps: a fraction of the usual 2,000.
""")

code(r"""
try:
    text = tinyshakespeare(download=False)       # a local copy, or FileNotFoundError
    dataset, prompt = "shakespeare", "ROMEO:\n"
except FileNotFoundError:
    text = load_shipped_corpus()
    dataset, prompt = "tinytales", "Once upon a time"
print(tr(f"{dataset}：{len(text):,} 个字符，{len(set(text))} 种", f"{dataset}: {len(text):,} characters, {len(set(text))} distinct"))
print(text[:300])
record(dataset_title="Tiny Shakespeare" if dataset == "shakespeare" else "Tiny Tales", n_chars=len(text))
""")

code(r"""
gpt_steps = 10 if FAST else 600
cfg = TrainConfig(**{**PRESETS["shakespeare-char"], "dataset": dataset, "max_iters": gpt_steps,
                     "lr_decay_iters": gpt_steps, "warmup_iters": min(100, gpt_steps // 4),
                     "eval_interval": gpt_steps if FAST else 100, "eval_iters": 2 if FAST else 20,
                     "progress": False, "out_dir": os.path.join(run_dir, "gpt"), "seed": 1337})
start = time.perf_counter()
trainer = Trainer(cfg)
trainer.train()
gpt, char_tok = trainer.model, trainer.task.tokenizer
gpt_seconds = time.perf_counter() - start
print(tr(f"{gpt.num_params():,} 个参数，{gpt_steps} 步用了 {gpt_seconds:.0f} 秒",
         f"{gpt.num_params():,} parameters, {gpt_steps} steps in {gpt_seconds:.0f} s"))
for step, train_loss, val_loss in zip(*(trainer.history[k] for k in ("step", "train_loss", "val_loss"))):
    print(tr(f"  第 {step:4d} 步：训练损失 {train_loss:.3f}   验证损失 {val_loss:.3f}   （困惑度 {math.exp(val_loss):.1f}）",
             f"  step {step:4d}: train loss {train_loss:.3f}   val loss {val_loss:.3f}   (perplexity {math.exp(val_loss):.1f})"))

fig, ax = plt.subplots(figsize=(7, 3.2))
ax.plot(trainer.train_losses, lw=0.6, alpha=0.5, label=tr("训练（单个批次）", "train (one batch)"))
ax.plot(trainer.history["step"], trainer.history["val_loss"], "o-", label=tr("验证", "validation"))
ax.axhline(math.log(char_tok.vocab_size), color="gray", ls=":", label=tr(f"均匀猜测 ln {char_tok.vocab_size}", f"uniform guess, ln {char_tok.vocab_size}"))
ax.set(xlabel=tr("步数", "step"), ylabel=tr("交叉熵（每个字符，nat）", "cross-entropy (nats per character)"), title=tr(f"{dataset} 上的字符级 GPT", f"char GPT on {dataset}"))
ax.legend(); plt.tight_layout(); plt.show()
val_last = trainer.history["val_loss"][-1]
record(gpt_params=gpt.num_params(), gpt_steps=gpt_steps, gpt_seconds=gpt_seconds, gpt_val=val_last, gpt_ppl=math.exp(val_last),
       vocab=char_tok.vocab_size)
""", alt=(
    "字符级 GPT 在 {{dataset_title}} 上的训练曲线："
    "每个字符的交叉熵（nat）随步数的变化，共 {{gpt_steps}} 步。"
    "每个训练批次的损失（一条细而抖动的线）从表示均匀猜测 {{vocab}} 个字符的点线处开始，"
    "先陡降，后缓慢下降；每 100 步测一次的验证损失紧跟着它，"
    "最后降到 {{gpt_val:.3f}}（困惑度 {{gpt_ppl:.1f}}）。",
    "Training curves of the character-level GPT on {{dataset_title}}: cross-entropy in nats per "
    "character against step, {{gpt_steps}} steps. The loss of each training batch (a thin, noisy "
    "line) starts at the dotted line of a uniform guess over {{vocab}} characters, drops steeply, "
    "then slowly; the validation loss, measured every 100 steps, follows it closely down to "
    "{{gpt_val:.3f}} (perplexity {{gpt_ppl:.1f}})."))

md(zh=r"""
{{gpt_steps}} 步后验证损失 (validation loss) {{gpt_val:.3f}}，困惑度 (perplexity) {{gpt_ppl:.1f}}：模型平均在大约 {{gpt_ppl:.0f}} 个字符之间犹豫（均匀猜测是 {{vocab}} 个）。

### 从逻辑值到一个词元：温度、top-k、top-p

每一步模型给出一个逻辑值 (logits) 向量 $z$（每个字符一个分数）。下一个词元*怎样*从中选出来，是模型之外的选择：

* **贪心** (greedy)：$\hat y = \arg\max_i z_i$。确定的，容易陷入循环。
* **温度** $\tau$：从下面的分布中采样 (sampling)
  $$p_i(\tau) = \frac{e^{z_i/\tau}}{\sum_j e^{z_j/\tau}}.$$
  $\tau < 1$ 让分布向 argmax 收紧（$\tau \to 0$ *就是*贪心）；$\tau > 1$ 让它向均匀分布摊平。
* **top-k**：只保留最可能的 $k$ 个词元 $V_k$ 并重新归一化：$i \in V_k$ 时 $p'_i = p_i / \sum_{j \in V_k} p_j$，否则为 0。
* **top-p**（核采样，nucleus sampling）：保留概率之和达到 $p$ 的最小的那组最可能词元 $V_p$（$\sum_{i\in V_p} p_i \ge p$），重新归一化。
  与 top-k 不同，候选的个数会自己调整：模型有把握时只有一个，没把握时有很多。

下面是同一个提示之后、下一个字符的同一个分布，被每条规则改成的样子。`filtered` 用 NumPy 重写这些公式；
最后用 tinyllm 的 `sample_next_token` 抽 20,000 次，把频率与公式比较。
""", en=r"""
After {{gpt_steps}} steps the validation loss is {{gpt_val:.3f}}, a perplexity of {{gpt_ppl:.1f}}: on average the model
hesitates between about {{gpt_ppl:.0f}} characters (a uniform guess: {{vocab}}).

### From logits to a token: temperature, top-k, top-p

At each step the model gives a vector of logits $z$ (one score per character). *How* the next token
is picked from them is a choice made outside the model:

* **Greedy**: $\hat y = \arg\max_i z_i$. Deterministic; tends to loop.
* **Temperature** $\tau$: sample from
  $$p_i(\tau) = \frac{e^{z_i/\tau}}{\sum_j e^{z_j/\tau}}.$$
  $\tau < 1$ sharpens the distribution towards the argmax ($\tau \to 0$ *is* greedy); $\tau > 1$
  flattens it towards uniform.
* **Top-k**: keep the $k$ most likely tokens, $V_k$, and renormalise:
  $p'_i = p_i / \sum_{j \in V_k} p_j$ for $i \in V_k$, else 0.
* **Top-p** (nucleus sampling): keep the smallest set $V_p$ of most likely tokens whose total
  probability reaches $p$, $\sum_{i\in V_p} p_i \ge p$, and renormalise. Unlike top-k, the number of
  candidates adapts: one when the model is sure, many when it is not.

Below, the same next-character distribution after a prompt, reshaped by each rule. `filtered`
restates the formulas in NumPy; the last check draws 20,000 tokens with tinyllm's
`sample_next_token` and compares the frequencies with them.
""")

code(r"""
def next_logits(context):
    ids = np.array([char_tok.encode(context)[-gpt.config.block_size:]])
    gpt.eval()
    with tl.no_grad():
        logits, _ = gpt(ids, last_logits_only=True)
    return logits.numpy()[0, -1].astype(np.float64)

def filtered(z, temperature=1.0, top_k=None, top_p=None):
    p = np.exp((z - z.max()) / temperature); p /= p.sum()               # softmax(z / tau)
    order = np.argsort(-p)
    keep = np.zeros_like(p, dtype=bool)
    if top_k is not None:
        keep[order[:top_k]] = True                                      # the k most likely
    elif top_p is not None:
        before = np.cumsum(p[order]) - p[order]                         # mass ranked above each token
        keep[order[before < top_p]] = True                              # smallest set reaching p
    else:
        keep[:] = True
    p = np.where(keep, p, 0.0)
    return p / p.sum()

context = "ROMEO:\nWhat light through yonder window br" if dataset == "shakespeare" else "Once upon a time, there was a l"
z = next_logits(context)
settings = [("τ = 0.5", dict(temperature=0.5)), ("τ = 1.0", dict(temperature=1.0)), ("τ = 1.5", dict(temperature=1.5)),
            ("top-k = 3", dict(top_k=3)), ("top-p = 0.9", dict(top_p=0.9))]
top = np.argsort(-z)[:12]
fig, axes = plt.subplots(1, len(settings), figsize=(16, 2.9), sharey=True)
for ax, (name, kw) in zip(axes, settings):
    p = filtered(z, **kw)
    ax.bar(range(len(top)), p[top], color="tab:blue")
    ax.set_xticks(range(len(top)), [repr(char_tok.decode([int(i)]))[1:-1] for i in top], fontsize=8)
    ax.set_title(tr(f"{name}：{np.count_nonzero(p > 1e-9)} 个候选", f"{name}: {np.count_nonzero(p > 1e-9)} candidates"), fontsize=10)
axes[0].set_ylabel(tr("概率", "probability"))
fig.suptitle(tr(f"{context[-25:]!r} 之后的下一个字符", f"next character after {context[-25:]!r}"), fontsize=10); plt.tight_layout(); plt.show()

rng = np.random.default_rng(0)
gaps = []
for name, kw in settings[1:]:
    draws = sample_next_token(np.tile(z, (20_000, 1)), rng=rng, **kw)
    freq = np.bincount(draws, minlength=len(z)) / len(draws)
    gaps.append(np.abs(freq - filtered(z, **kw)).max())
    print(tr(f"{name:12} max |抽样频率 - 公式| = {gaps[-1]:.4f}", f"{name:12} max |empirical - formula| = {gaps[-1]:.4f}"))
record(sampling_gap=float(max(gaps)))
""", alt=(
    "并排的五幅柱状图，每种采样规则一幅，画的是同一个提示之后最可能的 12 个下一个字符的概率（同一组模型输出，"
    "每次按规则重新变形）。τ = 0.5 把大部分概率给了第一个字符；"
    "τ = 1.0 是模型本来的分布；τ = 1.5 把分布压平，"
    "尾部变长；top-k = 3 只留下三个字符，top-p = 0.9 只留下凑够 90% 的几个字符，"
    "都重新归一化。每幅的标题写着剩下的候选字符个数。",
    "Five bar charts side by side, one per sampling rule, of the probabilities of the 12 most likely "
    "next characters after the same prompt (the same model output, reshaped each time). τ = 0.5 gives "
    "most of the probability to the first character; τ = 1.0 is the model's own distribution; τ = 1.5 "
    "flattens it, so the tail grows; top-k = 3 keeps exactly three characters and top-p = 0.9 the few "
    "that reach 90%, each renormalised. Each title gives the number of candidates left."))

md(zh=r"""
20,000 次抽样的频率与公式最多相差 {{sampling_gap:.4f}}。现在生成整段文本。对一批 6 份同样的提示调用一次 `generate`，
它用键值缓存，每个新字符只算一个位置，而不是整个上下文（6.2 节会亲手写出这个缓存）。每种设置都用同一个随机种子。
""", en=r"""
The frequencies of 20,000 draws differ from the formulas by at most {{sampling_gap:.4f}}. Now whole texts. One
call of `generate` continues copies of the prompt, using the KV cache so each new character costs one
position instead of the whole context (6.2 writes that cache by hand). The same random seed serves
every setting.
""")

code(r"""
sample_settings = [(tr("贪心 (τ = 0)", "greedy (τ = 0)"), dict(temperature=0)), ("τ = 0.5", dict(temperature=0.5)),
                   ("τ = 1.0", dict(temperature=1.0)), ("τ = 1.6", dict(temperature=1.6)),
                   ("top-k = 5", dict(top_k=5)), ("top-p = 0.8", dict(top_p=0.8))]
n_chars = 30 if FAST else 220
samples = {}
for name, kw in sample_settings:
    ids = generate(gpt, np.array([char_tok.encode(prompt)]), n_chars, rng=np.random.default_rng(7), **kw)
    samples[name] = char_tok.decode(ids[0].tolist())
    print(f"─── {name} " + "─" * (60 - len(name)))
    print(samples[name])

def longest_repeat(s, min_len=8):
    # the longest substring (≥ min_len) that occurs at least twice: a loop's signature
    best = ""
    for n in range(min_len, len(s) // 2):
        seen, found = set(), None
        for i in range(len(s) - n + 1):
            piece = s[i:i + n]
            if piece in seen:
                found = piece; break
            seen.add(piece)
        if found is None:
            break
        best = found
    return best
greedy_loop = longest_repeat(samples[sample_settings[0][0]][len(prompt):])
record(greedy_loop=repr(greedy_loop), greedy_loop_len=len(greedy_loop))
""")

md(zh=r"""
并排读这几段：贪心解码 (greedy decoding) 里最长的重复片段有 {{greedy_loop_len}} 个字符（{{greedy_loop}}）——一个短语最可能的续写又把它带回同一个短语；
低温整齐但重复；高温编出不存在的词和乱放的大写字母；top-k 和 top-p 在仍然采样的同时，切掉了乱七八糟的符号所在的那条长尾。
为了给“重复”和“编造词”一个数，每种设置生成许多样本，测两样东西：

* **不同词的比例**：样本中不同的词 / 所有的词（低 = 自我重复）；
* **真词率**：生成的词中，在训练文本里出现过的比例。

好的设置两样都高；没有哪个设置能同时把两样都做到最大。每个样本在提示之后续写 {{sample_len}} 个字符，
这样提示加样本正好放进模型 {{block_size}} 个字符的上下文，每一步都能用上缓存；每种设置一次抽 {{n_samples}} 个样本。
""", en=r"""
Reading them side by side: the longest repeated piece of the greedy text is {{greedy_loop_len}} characters long
({{greedy_loop}}) — the most likely continuation of a phrase keeps leading back to the same phrase; low
temperature is tidy but repetitive; high temperature invents non-words and stray capitals; top-k and
top-p cut off the unlikely tail where the stray symbols live, while still sampling. To put numbers on
"repetitive" and "invents non-words", generate many samples per setting and measure two things:

* **distinct words** — different words / all words in the samples (low = repeats itself);
* **real-word rate** — the share of generated words that occur anywhere in the training text.

A good setting is high on both; no setting maximises both. Each sample continues the prompt for
{{sample_len}} characters, so that prompt and sample fit the model's {{block_size}}-character context and the
cache serves every step; {{n_samples}} samples per setting are drawn in one batch.
""")

code(r"""
corpus_words = set(re.findall(r"[a-z']+", text.lower()))

def measure(texts):
    words = [re.findall(r"[a-z']+", s.lower()) for s in texts]
    flat = [x for w in words for x in w]
    return len(set(flat)) / max(len(flat), 1), float(np.mean([x in corpus_words for x in flat])) if flat else 0.0

n_samples = 4 if FAST else 24
length = gpt.config.block_size - len(char_tok.encode(prompt)) - 1       # stay inside the context window
greedy = tr("贪心", "greedy")
grid = [(greedy, dict(temperature=0))] + [(f"τ={t}", dict(temperature=t)) for t in (0.4, 0.7, 1.0, 1.3, 1.6)] \
     + [(f"k={k}", dict(top_k=k)) for k in (3, 10)] + [(f"p={p}", dict(top_p=p)) for p in (0.5, 0.8, 0.95)]
results = {}
start = time.perf_counter()
for name, kw in grid:
    ids = generate(gpt, np.array([char_tok.encode(prompt)] * n_samples), length, rng=np.random.default_rng(1), **kw)
    results[name] = measure([char_tok.decode(row[len(char_tok.encode(prompt)):].tolist()) for row in ids])
print(tr(f"{len(grid)} 种设置 × {n_samples} 个样本 × {length} 个字符，用了 {time.perf_counter() - start:.0f} 秒\n",
         f"{len(grid)} settings × {n_samples} samples × {length} characters in {time.perf_counter() - start:.0f} s\n"))
print(tr(f"{'设置':8} {'不同词的比例':>10} {'真词率':>10}", f"{'setting':8} {'distinct words':>15} {'real-word rate':>15}"))
for name, (distinct, real) in results.items():
    print(f"{name:8} {distinct:15.2f} {real:15.2f}")

fig, ax = plt.subplots(figsize=(7, 4.2))
label_y = -1.0
for name, (distinct, real) in sorted(results.items(), key=lambda item: item[1][1]):   # labels bottom to top
    color = "black" if name == greedy else "tab:blue" if name.startswith("τ") else "tab:orange" if name.startswith("k") else "tab:green"
    ax.scatter(distinct, real, color=color, s=40, zorder=3)
    label_y = max(real, label_y + 0.045)                                # keep labels apart
    ax.annotate(name, (distinct, real), xytext=(distinct + 0.03, label_y), fontsize=9, color=color, va="center",
                arrowprops=dict(arrowstyle="-", color="gray", lw=0.5))
taus = sorted(results[n] for n, _ in grid if n.startswith("τ"))
ax.plot(*zip(*taus), color="tab:blue", lw=0.8, alpha=0.6)
ax.set_xlim(0, 1.15); ax.set_ylim(0, 1.1)
ax.set(xlabel=tr("不同词 / 所有词（多样 →）", "distinct words / all words (variety →)"), ylabel=tr("真词率（正确 →）", "real-word rate (correctness →)"),
       title=tr("采样的取舍（蓝：温度；橙：top-k；绿：top-p）", "the sampling trade-off (blue: temperature; orange: top-k; green: top-p)"))
plt.tight_layout(); plt.show()

# how far above (or below) the temperature curve each top-k / top-p point lies, at equal variety
tau_x, tau_y = zip(*taus)
offsets = {name: results[name][1] - float(np.interp(results[name][0], tau_x, tau_y))
           for name, _ in grid if name[0] in "kp"}
best = max(offsets, key=offsets.get)
record(n_samples=n_samples, sample_len=length, block_size=gpt.config.block_size,
       greedy_distinct=results[greedy][0], greedy_real=results[greedy][1],
       hot_distinct=results["τ=1.6"][0], hot_real=results["τ=1.6"][1],
       offset_best=best, offset_best_value=offsets[best], offset_worst_value=min(offsets.values()),
       offset_verdict=tr("这个设置比单用温度多换来了一点正确，但其余的点仍在温度曲线附近，算不上绕开了这个取舍",
                         "that setting buys a little correctness over temperature alone, but the other points stay near the "
                         "temperature curve: no way around the trade-off") if offsets[best] > 0.05
       else tr("它们都落在温度曲线附近：对这个模型来说，它们是沿着这个取舍移动的另一种方式，而不是绕开它的办法",
               "they all lie close to the temperature curve: for this model they are another way to move along the "
               "trade-off, not a way around it"))
for name, off in offsets.items():
    print(tr(f"{name:7} 比同样多样性下的温度曲线高 {off:+.2f}", f"{name:7} real-word rate minus the temperature curve's at equal variety: {off:+.2f}"))
""", alt=(
    "采样取舍的散点图，每种设置一个带标签的点：横轴是不同词的比例（多样性），"
    "纵轴是真词率（正确性）。贪心独自在左上角（真词率 {{greedy_real:.2f}}，"
    "不同词比例 {{greedy_distinct:.2f}}）。"
    "各个温度（蓝色，用线连起来）从左上的 τ = 0.4 一路排到右下的 τ = 1.6（不同词 "
    "{{hot_distinct:.2f}}，真词率 {{hot_real:.2f}}）。"
    "在同样的多样性下，top-k（橙）和 top-p（绿）的点的真词率与这条线相差 {{offset_worst_value:+.2f}} "
    "到 {{offset_best_value:+.2f}}（最好的是 {{offset_best}}）；{{offset_verdict}}。",
    "Scatter plot of the sampling trade-off, one labelled point per setting: the share of distinct "
    "words (variety) across, the real-word rate (correctness) up. Greedy sits alone in the top-left "
    "corner (real-word rate {{greedy_real:.2f}}, distinct words {{greedy_distinct:.2f}}). The "
    "temperatures (blue, joined by a line) run from τ = 0.4 at the upper left down to τ = 1.6 at the "
    "lower right ({{hot_distinct:.2f}} distinct, {{hot_real:.2f}} real). At equal variety the top-k "
    "(orange) and top-p (green) points differ from that line's real-word rate by "
    "{{offset_worst_value:+.2f}} to {{offset_best_value:+.2f}} (the best is {{offset_best}}); "
    "{{offset_verdict}}."))

md(zh=r"""
温度沿着一条曲线拿一样换另一样：冷则正确而重复，热则多样而错误。贪心在最远的角上：真词率 {{greedy_real:.2f}}，不同词的比例只有 {{greedy_distinct:.2f}}；
$\tau = 1.6$ 时不同词的比例是 {{hot_distinct:.2f}}，真词率是 {{hot_real:.2f}}。在同样的多样性下比较，top-k 和 top-p（$\tau = 1$）的真词率与温度曲线相差 {{offset_worst_value:+.2f}} 到 {{offset_best_value:+.2f}}
（最好的是 `{{offset_best}}`）——{{offset_verdict}}。

这是*这个*模型的性质。{{vocab}} 个字符的词表 (vocabulary) 没有多少尾巴可切；一个有 50,000 个词元的大模型会把不小的总概率分给成千上万个各自不太可能的词元，
切掉这条尾巴（top-p）就能去掉单用温度会放过的大部分胡话。部署的系统通常把适中的温度和 top-p 结合起来——几乎从不贪心解码，原因见上表的第一行。

无论哪种设置，这些文本都**没有**的东西：意义。模型学会了拼写、诗行的样子、说话人的名字后面跟冒号和换行、哪些词跟着哪些词——
全部来自 {{n_chars:,}} 个字符和几分钟的训练。它没有学会人物是谁、一场戏讲的是什么，在这样的尺寸和预算下也永远学不会。
""", en=r"""
Temperature trades one axis against the other along a curve: cold is correct and repetitive, hot is
varied and wrong. Greedy sits at the far corner: a real-word rate of {{greedy_real:.2f}} and only {{greedy_distinct:.2f}} distinct
words; at $\tau = 1.6$, {{hot_distinct:.2f}} distinct words and a real-word rate of {{hot_real:.2f}}. Compared at equal variety, top-k and top-p (at $\tau = 1$)
differ from the temperature curve's real-word rate by {{offset_worst_value:+.2f}} to {{offset_best_value:+.2f}} (the best is `{{offset_best}}`) —
{{offset_verdict}}.

That is a property of *this* model. With {{vocab}} characters there is little tail to cut; a large model
with a 50,000-token vocabulary puts a noticeable total probability on thousands of individually
unlikely tokens, and cutting that tail (top-p) removes most of the nonsense a plain temperature would
let through. Deployed systems typically combine a moderate temperature with a top-p cut — and almost
never decode greedily, for the reason in the table's first row.

What the text does **not** have, at any setting: meaning. The model has learned spelling, the look
of a verse line, that a speaker's name is followed by a colon and a line break, and which words
follow which — all from {{n_chars:,}} characters in a few minutes. It has not learned who the
characters are or what a scene is about, and it never will at this size and budget.
""")

# ============================================================================ 6.2 KV cache
md(zh=r"""
## 6.2 键值缓存：每一步只算新的词元

生成第 $t+1$ 个词元时，如果把整个上下文重新跑一遍模型，前 $t$ 个词元的键和值会被重新算一遍——可它们根本没变：
因果掩码 (causal mask) 保证一个位置的键和值只取决于它自己和它之前的词元。**键值缓存**把它们存起来，于是每一步只需为*新*词元计算查询、键和值，
把新的键和值追加到缓存后面，再让新的查询关注缓存里的所有键：

$$ K_{1..t+1} = \begin{bmatrix} K_{1..t} \\ k_{t+1} \end{bmatrix}, \qquad V_{1..t+1} = \begin{bmatrix} V_{1..t} \\ v_{t+1} \end{bmatrix}, \qquad
o_{t+1} = \mathrm{softmax}\!\Big(\frac{q_{t+1} K_{1..t+1}^\top}{\sqrt{d_k}}\Big) V_{1..t+1} $$

新的查询只有一个，而且它可以看到到目前为止的每一个位置，所以这里**不需要掩码**。每一层都有自己的缓存。下面用 6.1 节训练好的 GPT 的各个模块，
把一步前向写出来：
""", en=r"""
## 6.2 键值缓存：每一步只算新的词元 — The KV cache: compute only the new token

Generating token $t+1$ by running the model over the whole context again recomputes the keys and
values of the first $t$ tokens — yet they have not changed: the causal mask guarantees that a
position's key and value depend only on itself and the tokens before it. The **KV cache** keeps
them, so each step computes the query, key and value of the *new* token only, appends the new key
and value to the cache, and lets the new query attend to every cached key:

$$ K_{1..t+1} = \begin{bmatrix} K_{1..t} \\ k_{t+1} \end{bmatrix}, \qquad V_{1..t+1} = \begin{bmatrix} V_{1..t} \\ v_{t+1} \end{bmatrix}, \qquad
o_{t+1} = \mathrm{softmax}\!\Big(\frac{q_{t+1} K_{1..t+1}^\top}{\sqrt{d_k}}\Big) V_{1..t+1} $$

There is one new query and it may see every position so far, so **no mask** is needed here. Every
layer has its own cache. Below, one step of the forward pass written out with the modules of the GPT
trained in 6.1:
""")

code(r"""
def split_heads(t, n_head):                        # (B, T, C) → (B, n_head, T, C / n_head)
    B, T, C = t.shape
    return t.reshape(B, T, n_head, C // n_head).transpose(0, 2, 1, 3)

def new_cache(model):
    return {"k": [None] * model.config.n_layer, "v": [None] * model.config.n_layer, "length": 0}

def step_with_cache(model, token, cache):
    # the logits after one new token (B, 1) at position cache["length"]; appends its keys and values
    t, C, H = model.transformer, model.config.n_embd, model.config.n_head
    x = t.wte(token) + t.wpe(np.array([cache["length"]]))           # (B, 1, C)
    for i, block in enumerate(t.h):
        qkv = block.attn.c_attn(block.ln_1(x))                      # (B, 1, 3C): this token's q, k, v only
        q, k, v = (split_heads(qkv[..., j * C:(j + 1) * C], H) for j in range(3))
        if cache["k"][i] is None:
            cache["k"][i], cache["v"][i] = k, v
        else:                                                        # append along the time axis
            cache["k"][i] = tl.concatenate([cache["k"][i], k], axis=2)
            cache["v"][i] = tl.concatenate([cache["v"][i], v], axis=2)
        weights = F.softmax(q @ cache["k"][i].swapaxes(-1, -2) * (1 / math.sqrt(C // H)), axis=-1)   # (B, H, 1, t+1)
        y = (weights @ cache["v"][i]).transpose(0, 2, 1, 3).reshape(x.shape)
        x = x + block.attn.c_proj(y)                                 # the block, as in chapter 5
        x = x + block.mlp(block.ln_2(x))
    cache["length"] += 1
    return model.lm_head(t.ln_f(x))[:, -1]                          # (B, vocab)

def greedy_with_cache(model, prompt_ids, n_new):
    cache, out, seconds = new_cache(model), list(prompt_ids), []
    model.eval()
    with tl.no_grad():
        for token in prompt_ids[:-1]:                                # the prompt, one token at a time
            step_with_cache(model, np.array([[token]]), cache)
        for _ in range(n_new):
            begin = time.perf_counter()
            logits = step_with_cache(model, np.array([[out[-1]]]), cache)
            out.append(int(logits.numpy()[0].argmax()))
            seconds.append(time.perf_counter() - begin)
    return out, seconds, cache

def greedy_recomputing(model, prompt_ids, n_new):
    out, seconds = list(prompt_ids), []
    model.eval()
    with tl.no_grad():
        for _ in range(n_new):
            begin = time.perf_counter()
            logits, _ = model(np.array([out[-model.config.block_size:]]), last_logits_only=True)   # the whole context again
            out.append(int(logits.numpy()[0, -1].argmax()))
            seconds.append(time.perf_counter() - begin)
    return out, seconds
""")

md(zh=r"""
两种做法各生成一段，再与库的 `generate`（贪心，带缓存）比较：三者必须给出完全相同的词元。缓存的大小是每层两个 $(B, H, t, d_k)$ 的数组：
""", en=r"""
Both ways generate a text, compared with the library's `generate` (greedy, with its cache): all three
must give exactly the same tokens. The cache holds two $(B, H, t, d_k)$ arrays per layer:
""")

code(r"""
prompt_ids = char_tok.encode(prompt)
n_new = gpt.config.block_size - len(prompt_ids)                     # fill the context exactly
cached_ids, cached_seconds, cache = greedy_with_cache(gpt, prompt_ids, n_new)
recomputed_ids, recomputed_seconds = greedy_recomputing(gpt, prompt_ids, n_new)
library_ids = generate(gpt, np.array([prompt_ids]), n_new, temperature=0)[0].tolist()
same = cached_ids == recomputed_ids == library_ids
print(tr("缓存 == 重算 == 库的 generate：", "cache == recompute == library generate:"), same)
print(repr(char_tok.decode(cached_ids)))
cache_bytes = sum(a.numpy().nbytes for layer in (cache["k"], cache["v"]) for a in layer)
print(tr(f"缓存：{gpt.config.n_layer} 层 × 键和值 × {tuple(cache['k'][0].shape)}，共 {cache_bytes / 1024:.0f} KiB",
         f"cache: {gpt.config.n_layer} layers × keys and values × {tuple(cache['k'][0].shape)}, {cache_bytes / 1024:.0f} KiB in all"))
print(tr(f"每个新词元：缓存 {1000 * np.median(cached_seconds):.1f} ms，重算 {1000 * np.median(recomputed_seconds):.1f} ms（中位数）",
         f"per new token: cache {1000 * np.median(cached_seconds):.1f} ms, recompute {1000 * np.median(recomputed_seconds):.1f} ms (median)"))
record(kv_same=tr("三者完全相同", "all three are identical") if same else tr("三者并不相同", "they are not identical"),
       kv_new=n_new, kv_kib=cache_bytes / 1024, kv_ms_cache=1000 * float(np.median(cached_seconds)),
       kv_ms_recompute=1000 * float(np.median(recomputed_seconds)), kv_speedup_small=sum(recomputed_seconds) / sum(cached_seconds))
""")

md(zh=r"""
{{kv_new}} 个新词元：{{kv_same}}。缓存一共 {{kv_kib:.0f}} KiB。在 {{block_size}} 个字符的上下文里，每个新词元缓存要 {{kv_ms_cache:.1f}} ms，
重算要 {{kv_ms_recompute:.1f}} ms（中位数），整段快 {{kv_speedup_small:.1f}} 倍。上下文这么短时，一次前向的时间主要花在每个运算的固定开销上，
而不是随长度增长的算术上；差距随上下文变长而变大。下面用一个同样宽、同样深、但上下文为 512 的 GPT（未训练：计时不需要训练好的权重），
测量两种做法在不同位置生成一个词元的时间，并检查一直生成到第 512 个位置的词元与库的 `generate` 相同：
""", en=r"""
{{kv_new}} new tokens: {{kv_same}}. The cache holds {{kv_kib:.0f}} KiB. In a {{block_size}}-character context a new token
costs {{kv_ms_cache:.1f}} ms with the cache and {{kv_ms_recompute:.1f}} ms recomputing (medians), {{kv_speedup_small:.1f}}× faster over the text. With
a context this short a forward pass is dominated by each operation's fixed overhead, not by
arithmetic that grows with length; the gap widens as the context grows. Below, a GPT
as wide and deep but with a 512-token context (untrained: timing needs no trained weights) — the time
to produce one token at various positions both ways, and a check that the tokens generated with the cache,
all the way to position 512, are those of the library's `generate`:
""")

code(r"""
tl.manual_seed(0)
long_gpt = GPT(GPTConfig(vocab_size=char_tok.vocab_size, block_size=128 if FAST else 512, n_layer=4, n_head=4, n_embd=128,
                         bias=False, gelu_approximate="none", tie_embeddings=False))
long_new = long_gpt.config.block_size - len(prompt_ids)
long_ids, long_seconds, long_cache = greedy_with_cache(long_gpt, prompt_ids, long_new)
begin = time.perf_counter()
library_long = generate(long_gpt, np.array([prompt_ids]), long_new, temperature=0)[0].tolist()
library_seconds = time.perf_counter() - begin
positions = [p for p in (16, 64, 128, 256, 384, 512) if p <= long_gpt.config.block_size]
def best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        begin = time.perf_counter(); fn(); times.append(time.perf_counter() - begin)
    return min(times)
with tl.no_grad():                                   # one recomputing step with p tokens of context, best of 3
    recompute_at = [best_of(lambda: long_gpt(np.array([long_ids[:p]]), last_logits_only=True)) for p in positions]
cache_at = [float(np.median(long_seconds[max(0, p - len(prompt_ids) - 8):p - len(prompt_ids) + 1])) for p in positions]
estimated_recompute = float(np.interp(np.arange(len(prompt_ids), long_gpt.config.block_size), positions, recompute_at).sum())

fig, ax = plt.subplots(figsize=(6.5, 3.3))
ax.plot(positions, 1000 * np.array(recompute_at), "o-", label=tr("每步重算整个上下文", "recompute the context each step"))
ax.plot(positions, 1000 * np.array(cache_at), "s-", label=tr("我们的键值缓存", "our KV cache"))
ax.set(xlabel=tr("上下文长度（已有的词元数）", "context length (tokens so far)"), ylabel=tr("生成一个词元的时间 (ms)", "time for one new token (ms)"))
ax.legend(); plt.tight_layout(); plt.show()
long_same = long_ids == library_long
long_kib = sum(a.numpy().nbytes for layer in (long_cache["k"], long_cache["v"]) for a in layer) / 1024
print(tr(f"缓存生成的 {long_new} 个词元 == 库的 generate：{long_same}", f"the {long_new} tokens generated with our cache == library generate: {long_same}"))
print(tr(f"整段：我们的缓存 {sum(long_seconds):.1f} 秒，库的缓存 {library_seconds:.1f} 秒，逐步重算（按上图估计）{estimated_recompute:.1f} 秒",
         f"whole text: our cache {sum(long_seconds):.1f} s, the library's {library_seconds:.1f} s, recomputing (estimated from the plot) {estimated_recompute:.1f} s"))
gpt2_bytes = 2 * 12 * 1024 * 768 * 4                 # GPT-2 small: 12 layers, width 768, 1,024 positions, float32
record(long_same=tr("完全相同", "identical") if long_same else tr("不同", "different"), long_new=long_new,
       long_cache_s=sum(long_seconds), long_library_s=library_seconds, long_recompute_s=estimated_recompute,
       long_speedup=estimated_recompute / sum(long_seconds), recompute_512_ms=1000 * recompute_at[-1], cache_512_ms=1000 * cache_at[-1],
       long_kib=long_kib, gpt2_cache_mib=gpt2_bytes / 2 ** 20, last_position=positions[-1])
""", alt=(
    "折线图：生成一个新词元的时间（毫秒）随上下文长度（已有的词元数，"
    "到 {{last_position}}）的变化，模型是上下文 512 的 4 层 GPT。"
    "每步重算整个上下文的时间随长度陡增，{{last_position}} 时为 {{recompute_512_ms:.0f}} "
    "毫秒；用我们的键值缓存，时间几乎是一条水平线，{{last_position}} 时为 {{cache_512_ms:.1f}} "
    "毫秒。",
    "Line chart of the time to produce one new token (ms) against the context length (tokens so far, "
    "up to {{last_position}}) for a 4-layer GPT with a 512-token context. Recomputing the whole "
    "context each step grows steeply with the length, to {{recompute_512_ms:.0f}} ms at "
    "{{last_position}}; with our KV cache the time is an almost flat line, {{cache_512_ms:.1f}} ms at "
    "{{last_position}}."))

md(zh=r"""
在位置 {{last_position}}，重算一步要 {{recompute_512_ms:.0f}} ms，用缓存只要 {{cache_512_ms:.1f}} ms。重算的时间随上下文增长（注意力是 $t \times t$ 的，其余的运算是 $t$ 倍的），
缓存的时间几乎不变（只算一个位置，注意力是 $1 \times t$ 的）。整段 {{long_new}} 个词元：我们的缓存 {{long_cache_s:.1f}} 秒，库的缓存 {{long_library_s:.1f}} 秒，
逐步重算估计要 {{long_recompute_s:.0f}} 秒——快了 {{long_speedup:.0f}} 倍；缓存生成的词元与库的 `generate` {{long_same}}。

代价是内存：每层存着所有位置的键和值，$2 \times n_\text{layer} \times t \times d_\text{model}$ 个数。这个小模型在 512 个位置时是 {{long_kib:,.0f}} KiB；
GPT-2 小号（12 层、宽 768、1,024 个位置，float32）每条序列是 {{gpt2_cache_mib:.0f}} MiB，批次里的每条序列各要一份。
大模型推理 (inference) 时，显存 (accelerator memory) 常常先被键值缓存而不是权重占满——这就是多查询注意力 (multi-query attention)、分组查询注意力 (grouped-query attention) 这类设计要减少键和值的头数的原因。

库的 `GPT` 用的是同样的想法，只是预先分配好整块数组、按位置写入（`tinyllm/models/gpt.py` 里的 `KVCache`），而不是每步 `concatenate` 出一个新数组。
""", en=r"""
At position {{last_position}} a recomputing step takes {{recompute_512_ms:.0f}} ms, a cached one {{cache_512_ms:.1f}} ms. The recomputing
time grows with the context (attention is $t \times t$, everything else $t$ times the work); the cached
time barely moves (one position; attention is $1 \times t$). For the whole text of {{long_new}} tokens: our
cache {{long_cache_s:.1f}} s, the library's {{long_library_s:.1f}} s, recomputing an estimated {{long_recompute_s:.0f}} s — {{long_speedup:.0f}}× faster;
the tokens generated with our cache and by the library's `generate` are {{long_same}}.

The price is memory: every layer keeps the keys and values of every position,
$2 \times n_\text{layer} \times t \times d_\text{model}$ numbers. This small model holds {{long_kib:,.0f}} KiB at 512
positions; GPT-2 small (12 layers, width 768, 1,024 positions, float32) holds {{gpt2_cache_mib:.0f}} MiB per
sequence, one copy for each sequence of a batch. In large-model inference the accelerator memory
often fills with the KV cache before the weights — the reason for designs such as multi-query and
grouped-query attention, which cut the number of key and value heads.

The library's `GPT` uses the same idea, but allocates the whole arrays once and writes by position
(`KVCache` in `tinyllm/models/gpt.py`) instead of `concatenate`-ing a new array each step.
""")

# ============================================================================ 6.3 assistant
md(zh=r"""
## 6.3 智能助手：“在某天提醒我……”

设置提醒的助手必须把人写的东西——`the 3rd of May 2031`、`3 May 2031`、`03.05.2031`——变成一个机器日期。这正是第 5 章的翻译任务，
所以这里用 `Trainer` 和 `"seq2seq"` 预设（同样的结构）重新训练日期模型，再包进原文 §2.3 推理的三个步骤：

1. **预处理**——找出请求里的日期短语；拒绝模型没见过的字符（反正分词器 (tokenizer) 也会失败）；
2. **预测**——贪心解码，并保留模型给自己答案的概率 $P(\hat y \mid x) = \prod_t p_\theta(\hat y_t \mid \hat y_{<t}, x)$；
3. **后处理**——用日历 (`datetime.date.fromisoformat`) 解析 ISO 字符串：模型可以输出 `2023-02-30`，日历不会接受。
""", en=r"""
## 6.3 智能助手：“在某天提醒我……” — An assistant skill: "remind me to … on *date*"

An assistant that sets reminders must turn what a person writes — `the 3rd of May 2031`,
`3 May 2031`, `03.05.2031` — into one machine date. That is exactly chapter 5's translation task, so
the date model is trained again here (with `Trainer` and the `"seq2seq"` preset, the same
architecture), and wrapped in the three inference steps of the article's §2.3:

1. **preprocess** — find the date phrase in the request; refuse characters the model has never seen
   (the tokenizer would fail anyway);
2. **predict** — greedy decoding, keeping the probability the model gives its own answer,
   $P(\hat y \mid x) = \prod_t p_\theta(\hat y_t \mid \hat y_{<t}, x)$;
3. **postprocess** — parse the ISO string with the calendar (`datetime.date.fromisoformat`): the
   model can emit `2023-02-30`, the calendar cannot.
""")

code(r"""
s2s_steps = 10 if FAST else 400
s2s_cfg = TrainConfig(**{**PRESETS["seq2seq"], "max_iters": s2s_steps, "warmup_iters": min(40, s2s_steps // 4),
                         "eval_interval": s2s_steps if FAST else 100, "eval_iters": 2 if FAST else 10,
                         "progress": False, "out_dir": os.path.join(run_dir, "dates"), "seed": 0})
start = time.perf_counter()
s2s = Trainer(s2s_cfg)
s2s.train()
date_model, src_tok, tgt_tok = s2s.model, s2s.task.src_tok, s2s.task.tgt_tok
print(tr(f"{date_model.num_parameters():,} 个参数，{s2s_steps} 步用了 {time.perf_counter() - start:.0f} 秒；200 个验证日期上的精确匹配：{s2s.last_eval['exact_match']:.1%}",
         f"{date_model.num_parameters():,} parameters, {s2s_steps} steps in {time.perf_counter() - start:.0f} s; "
         f"exact match on 200 validation dates: {s2s.last_eval['exact_match']:.1%}"))
record(date_exact=s2s.last_eval["exact_match"])
""")

code(r"""
def understand_date(phrase):
    # 1. preprocess: characters outside the source vocabulary cannot be encoded
    unknown = sorted({c for c in phrase if c not in src_tok.chars})
    if unknown:
        return None, None, tr(f"读不了这些字符：{''.join(unknown)!r}", f"cannot read the characters {''.join(unknown)!r}")
    # 2. predict: greedy decoding (a beam of 1), with the log-probability of the answer
    ids, log_prob = beam_search(date_model, src_tok.encode(phrase), beam_size=1, max_len=12)
    iso = tgt_tok.decode(ids, skip_special_tokens=True)
    # 3. postprocess: the calendar has the last word
    try:
        verdict = datetime.date.fromisoformat(iso).strftime("%a %d %b %Y")
    except ValueError:
        verdict = tr("不是日期：请用户再说一遍", "not a date: ask the user again")
    return iso, math.exp(log_prob), verdict

def remind(request):
    match = re.fullmatch(r"remind me to (.+) on (.+)", request.strip())
    if not match:
        return request, None, None, tr("不是提醒请求", "not a reminder request")
    task, phrase = match.groups()
    return (phrase,) + understand_date(phrase)

requests = [  # (request, the right ISO date or None when there is none)
    # in the training distribution (the six formats, 1900-2099)
    ("remind me to call Ana on 3 Sep 2031", "2031-09-03"),
    ("remind me to water the plants on the 2nd of June 2024", "2024-06-02"),
    ("remind me to pay rent on 01.12.2025", "2025-12-01"),
    ("remind me to celebrate on February 29, 2024", "2024-02-29"),
    # outside it
    ("remind me to celebrate on February 29, 2023", None),    # not a leap year: no such day
    ("remind me to buy a cake on february 30, 2026", None),   # no such day in any year
    ("remind me to visit Mars on 4 July 2150", "2150-07-04"),  # a year beyond 2099
    ("remind me to vote on Sept 3, 2031", "2031-09-03"),       # an abbreviation never seen ("Sep" is)
    ("remind me to rest on march 5th, 1998", "1998-03-05"),    # a format never seen
    ("remind me to call mum on friday", None),                 # no date at all
    ("remind me to study on 5/3/2024", "2024-03-05"),          # a character never seen
]
outcome, produced = {}, {}
print(tr(f"{'日期短语':22} {'模型':11} {'P(答案)':>9}   日历的结论", f"{'date phrase':24} {'model':11} {'P(answer)':>9}   calendar says"))
for request, right in requests:
    phrase, iso, prob, verdict = remind(request)
    print(f"{phrase!r:24} {iso or '—':11} {'—' if prob is None else f'{prob:.3f}':>9}   {verdict}")
    produced[phrase] = iso
    if iso is None:
        outcome[phrase] = "refused"
    elif iso == right:
        outcome[phrase] = "right"
    else:
        try:
            datetime.date.fromisoformat(iso)
            outcome[phrase] = "silent"                    # a real date, and the wrong one
        except ValueError:
            outcome[phrase] = "caught"                    # the calendar rejects it

def phrases(kind, start=4):                               # the out-of-distribution requests with this outcome
    names = [f"`{p}`" for p in list(outcome)[start:] if outcome[p] == kind]
    return tr("、", ", ").join(names) if names else tr("没有", "none")
record(in_right=sum(outcome[p] == "right" for p in list(outcome)[:4]), ood_right=phrases("right"), ood_caught=phrases("caught"),
       ood_silent=phrases("silent"), ood_refused=phrases("refused"), friday_output=produced["friday"],
       impossible_outputs=tr("、", ", ").join(f"`{produced[p]}`" for p in ("February 29, 2023", "february 30, 2026")))
""")

md(zh=r"""
训练分布里的四个请求，模型答对了 {{in_right}} 个。分布之外，看它*怎样*失败：

* **答对了的**（模型靠相似性，超出了它的六种格式）：{{ood_right}}。
* **被日历抓住的**（输出不是一个存在的日期，后处理拒绝了它，否则提醒会被设在一个不存在的日子上，或者让闹钟程序崩溃）：{{ood_caught}}。
* **悄悄错了的**（输出是一个*真实的*日期，只是错的那个；日历抓不住，这是最危险的一种错误：无声无息）：{{ood_silent}}。
* **在预处理就拒绝的**（模型从没见过的字符）：{{ood_refused}}。

不可能的日期（`February 29, 2023`、`february 30, 2026`）变成了 {{impossible_outputs}}：模型学的是字符串之间的映射，不是日历。
没有日期的请求 `friday` 里每个字母都在词表中，模型照样给出 `{{friday_output}}`：模型总会产生输出，决定是否相信它，是它周围代码的事。

$P(\hat y \mid x)$ 作为警示灯有多大用？下面是它在训练分布内的验证日期（几乎都翻译对了）上的分布，以及上面那些分布外请求的值。
""", en=r"""
The model got {{in_right}} of the four in-distribution requests right. Outside the distribution, note *how* it fails:

* **Right anyway** (by resemblance, beyond its six formats): {{ood_right}}.
* **Caught by the calendar** (the output is no existing date; the postprocessing rejects it — without it the
  reminder would be set for a day that does not exist, or crash the alarm code): {{ood_caught}}.
* **Silently wrong** (the output is a *real* date, just the wrong one; the calendar cannot catch that, and it is
  the most dangerous kind of mistake: silent): {{ood_silent}}.
* **Refused at preprocessing** (characters the model has never seen): {{ood_refused}}.

The impossible dates (`February 29, 2023`, `february 30, 2026`) became {{impossible_outputs}}: the model learned a
mapping between strings, not a calendar. The request with no date, `friday`, has every letter in the
vocabulary, so the model answers `{{friday_output}}` anyway: a model always produces an output; deciding
whether to trust it is the job of the code around it.

How useful is $P(\hat y \mid x)$ as a warning light? Below, its distribution over in-distribution
validation dates (almost all translated correctly) against the out-of-distribution requests above.
""")

code(r"""
def answer_probabilities(sources, answers):
    # P(answer | source) for a batch, by teacher forcing: one forward, no decoding loop
    ds = Seq2SeqDataset(encode_pairs(list(zip(sources, answers)), src_tok, tgt_tok), pad_id=0, bos_id=1, eos_id=2)
    b = ds.make_batch(range(len(sources)))
    date_model.eval()
    with tl.no_grad():
        logits = date_model(tl.Tensor(b.src), tl.Tensor(b.tgt_in), None,
                            date_model.generate_square_subsequent_mask(b.tgt_in.shape[0]),
                            tl.Tensor(b.src_padding_mask), tl.Tensor(b.tgt_padding_mask), None)
        logp = F.log_softmax(logits, axis=-1).numpy()
    valid = b.tgt_out >= 0
    picked = np.take_along_axis(logp, np.where(valid, b.tgt_out, 0)[..., None], axis=-1)[..., 0]
    return np.exp((picked * valid).sum(axis=0))

val_pairs = s2s.task.text_pairs["val"][: (30 if FAST else 500)]
val_sources = [s for s, _ in val_pairs]
val_answers = greedy_translate(date_model, val_sources, src_tok, tgt_tok)
val_right = np.array([a == t for a, (_, t) in zip(val_answers, val_pairs)], dtype=bool)
val_prob = answer_probabilities(val_sources, val_answers)

ood = [(p, prob) for p, iso, prob, _ in (remind(r) for r, _ in requests[4:]) if prob is not None]
fig, ax = plt.subplots(figsize=(9, 3.8))
bins = np.linspace(0, 1, 41)
ax.hist(val_prob[val_right], bins=bins, color="tab:blue", alpha=0.7, label=tr(f"验证集，答对（{val_right.sum()}）", f"validation, right ({val_right.sum()})"))
ax.hist(val_prob[~val_right], bins=bins, color="tab:red", alpha=0.7, label=tr(f"验证集，答错（{(~val_right).sum()}）", f"validation, wrong ({(~val_right).sum()})"))
text_x = -1.0
for phrase, prob in sorted(ood, key=lambda item: item[1]):
    ax.axvline(prob, color="black", lw=1, ls="--")
    text_x = max(prob, text_x + 0.022)                                  # keep labels apart
    ax.text(text_x, 1.5, phrase, fontsize=8, rotation=90, va="bottom", ha="right")
ax.set(xlabel="P(answer | source)", ylabel=tr("个数", "count"), yscale="log", xlim=(0, 1.02),
       title=tr("模型的置信度：训练分布内（柱）与上面的请求（虚线）", "the model's confidence: in distribution (bars) and the requests above (dashed)"))
ax.legend(loc="upper left", fontsize=8); plt.tight_layout(); plt.show()
median_right = float(np.median(val_prob[val_right])) if val_right.any() else float("nan")
median_wrong = float(np.median(val_prob[~val_right])) if (~val_right).any() else float("nan")
ood_probs = dict(ood)
print(tr(f"验证集：答对 {val_right.sum()} 个，P 的中位数 {median_right:.3f}；答错 {(~val_right).sum()} 个，中位数 {median_wrong:.3f}",
         f"validation: {val_right.sum()} right, median P {median_right:.3f}; {(~val_right).sum()} wrong, median {median_wrong:.3f}"))
confident_ood = [p for p, prob in ood if prob >= median_wrong and outcome[p] != "right"]   # wrong, yet confident
record(val_n_right=int(val_right.sum()), val_n_wrong=int((~val_right).sum()), median_right=median_right, median_wrong=median_wrong,
       confident_ood=tr("、", ", ").join(f"`{p}`" for p in confident_ood) if confident_ood else tr("没有", "none"))
""", alt=(
    "模型置信度 P(答案 | 源) 的直方图，横轴 0 到 1，"
    "纵轴是对数刻度的个数：验证集里答对的 {{val_n_right}} 个日期（蓝）"
    "和答错的 {{val_n_wrong}} 个（红），另外上面每个分布外请求画一条带标签的竖虚线。"
    "答对的紧挨着 1 堆积（中位数 {{median_right:.3f}}）；"
    "答错的分布得更低（中位数 {{median_wrong:.3f}}），"
    "但和答对的有重叠。好几条虚线，包括答错的请求，落在高置信度处，"
    "和答对的日期混在一起。",
    "Histogram of the model's confidence P(answer | source), 0 to 1 across, counts on a log scale: "
    "{{val_n_right}} validation dates answered right (blue) and {{val_n_wrong}} answered wrong (red), "
    "plus a labelled dashed line for each out-of-distribution request above. The right answers pile "
    "up next to 1 (median {{median_right:.3f}}); the wrong ones spread lower (median "
    "{{median_wrong:.3f}}) but overlap them. Several dashed lines, wrongly answered requests among "
    "them, sit at high confidence among the right answers."))

md(zh=r"""
训练分布内，答对的 {{val_n_right}} 个答案 $P$ 的中位数是 {{median_right:.3f}}，答错的 {{val_n_wrong}} 个是 {{median_wrong:.3f}}：错的答案概率往往更低，
所以一个阈值能抓住不少错误——代价是也会质疑一些对的答案。分布之外信号更弱：置信度衡量的是这个*模式*有多熟悉，而不是答案对不对；
上面答错了的请求里，{{confident_ood}} 得到的置信度不低于验证集 (validation set) 里答错答案的中位数。所以一个真正的助手会检查它*能*检查的事实（日历），
没把握时反问用户，并用人们真正会输入的内容来训练。

## 6.4 智能客服：一个咖啡馆机器人

原文的第一个应用：全天候回答常见问题。我们的咖啡馆有一周七天的营业时间和七样东西的价格。问题有八种问法（每个话题四种）；
每个（问法，日子或东西）组合都有唯一的正确答案。五分之一的组合被**留出**：比如机器人从没见过 *"what is the price of the bagel?"*，
虽然它见过用别的说法问 bagel，也见过这个问法用在别的东西上。答对留出的组合，说明它学会了组合，而不是背诵。

机器人是一个在 `Q: … \nA: …` 这种格式的文本上训练的 GPT；回答就是生成：提示是 `Q: <问题>\nA:`，贪心解码，遇到换行就停。
""", en=r"""
In distribution, the {{val_n_right}} right answers have a median $P$ of {{median_right:.3f}} and the {{val_n_wrong}} wrong ones {{median_wrong:.3f}}:
wrong answers tend to come with lower probability, so a threshold would catch many of them — at the
price of also questioning some right answers. Outside the distribution the signal is weaker: the
confidence measures how familiar the *pattern* is, not whether the answer is right; among the
requests above that it got wrong, {{confident_ood}} got a confidence at least as high as the median wrong
answer in validation. A real assistant therefore checks facts it *can* check (the calendar), asks back when
unsure, and is trained on the inputs people actually type.

## 6.4 智能客服：一个咖啡馆机器人 — A customer-service bot

The article's first application: answering common questions around the clock. Our café has opening
hours for seven days and prices for seven items. Questions come in eight phrasings (four per topic);
every (phrasing, day or item) combination has one right answer. One in five combinations is **held
out**: the bot never sees, for example, *"what is the price of the bagel?"*, though it sees the bagel
asked about in other words and that phrasing used for other items. Answering held-out combinations
right means it learned to combine, not to recite.

The bot is a GPT trained on lines of the form `Q: … \nA: …`; answering is generation: the prompt is
`Q: <question>\nA:`, decoding is greedy, and it stops at the line break.
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

def price_answer(item):
    return f"the {item} costs {PRICES[item]}."

faq = [(q.format(d), hours_answer(d)) for q in HOUR_QUESTIONS for d in HOURS] \
    + [(q.format(i), price_answer(i)) for q in PRICE_QUESTIONS for i in PRICES]
random.Random(0).shuffle(faq)
faq_test, faq_train = faq[: len(faq) // 5], faq[len(faq) // 5:]
every_answer = {a for _, a in faq}
print(tr(f"{len(faq)} 个问答对：学 {len(faq_train)} 个，留出 {len(faq_test)} 个", f"{len(faq)} question-answer pairs: {len(faq_train)} to learn from, {len(faq_test)} held out"))
for q, a in faq_test[:3]:
    print(tr("   留出：", "   held out: ") + f"{q!r} -> {a!r}")

qa_tok = CharTokenizer(list("QAabcdefghijklmnopqrstuvwxyz0123456789 .,?!'-:\n"))   # fixed: any question encodes
sampler = random.Random(1)
qa_text = "".join(f"Q: {q}\nA: {a}\n\n" for q, a in (sampler.choice(faq_train) for _ in range(4000)))
qa_data = CausalLMDataset(np.array(qa_tok.encode(qa_text)), block_size=96)
print(tr(f"训练文本：{len(qa_text):,} 个字符，例如\n", f"training text: {len(qa_text):,} characters, e.g.\n") + qa_text[:120])
""")

md(zh=r"""
训练：在问答文本上做下一个词元的交叉熵 (cross-entropy)，就是第 5 章的损失，用在仅解码器 (decoder-only) 的模型上，
$\mathcal{L} = -\frac{1}{BT}\sum_{b,t}\log p_\theta(x_{b,t+1}\mid x_{b,\le t})$。模型很小——2 层，宽 64。
""", en=r"""
Training: next-token cross-entropy on the Q/A text, the loss of chapter 5 with a decoder-only model,
$\mathcal{L} = -\frac{1}{BT}\sum_{b,t}\log p_\theta(x_{b,t+1}\mid x_{b,\le t})$. The model is small — 2 layers,
64 wide.
""")

code(r"""
qa_steps = 10 if FAST else 600
tl.manual_seed(0)
bot = GPT(GPTConfig(vocab_size=qa_tok.vocab_size, block_size=96, n_layer=2, n_head=4, n_embd=64))
qa_opt = AdamW(param_groups(bot.named_parameters(), 0.1), lr=3e-3, betas=(0.9, 0.99))
batch_rng, qa_losses = np.random.default_rng(0), []
start = time.perf_counter()
for step in range(qa_steps):
    for group in qa_opt.param_groups:
        group["lr"] = cosine_with_warmup(step, 3e-3, 3e-4, min(30, qa_steps // 4), qa_steps)
    x, y = qa_data.get_batch(16, batch_rng)
    _, loss = bot(x, y)                                    # logits and the mean cross-entropy
    qa_opt.zero_grad(); loss.backward(); clip_grad_norm_(bot.parameters(), 1.0); qa_opt.step()
    qa_losses.append(loss.item())
print(tr(f"{bot.num_params():,} 个参数，{qa_steps} 步用了 {time.perf_counter() - start:.0f} 秒，最终损失 {np.mean(qa_losses[-20:]):.3f}",
         f"{bot.num_params():,} parameters, {qa_steps} steps in {time.perf_counter() - start:.0f} s, final loss {np.mean(qa_losses[-20:]):.3f}"))

newline, space = qa_tok.encode("\n")[0], qa_tok.encode(" ")[0]

def ask(question):
    # greedy answer, and per character the probability the bot gave it
    prompt_ids_ = qa_tok.encode(f"Q: {question}\nA:")
    room = bot.config.block_size - len(prompt_ids_)                  # the context holds 96 characters
    ids = generate(bot, np.array([prompt_ids_]), min(60, room), temperature=0, stop_tokens=[newline])[0]
    bot.eval()
    with tl.no_grad():
        logits, _ = bot(ids[None, :-1])                              # one pass scores every generated token
    probs = F.softmax(logits, axis=-1).numpy()[0]
    answer_ids = ids[len(prompt_ids_):]
    char_probs = probs[np.arange(len(prompt_ids_) - 1, len(ids) - 1), answer_ids]
    keep = slice(1 if answer_ids[0] == space else 0, -1 if answer_ids[-1] == newline else None)
    return qa_tok.decode(answer_ids[keep].tolist()), char_probs[keep]

scores = {}
for name, pairs in ((tr("见过的", "seen"), faq_train), (tr("留出的", "held out"), faq_test)):
    pairs = pairs[:3] if FAST else pairs
    right = [ask(q)[0] == a for q, a in pairs]
    scores[name] = (sum(right), len(pairs))
    print(tr(f"{name:4} 组合：{np.mean(right):.0%} 答得一字不差（{sum(right)} / {len(pairs)}）",
             f"{name:9} combinations: {np.mean(right):.0%} answered exactly right ({sum(right)} of {len(pairs)})"))
(seen_right, seen_n), (held_right, held_n) = scores.values()
record(bot_params=bot.num_params(), seen_right=seen_right, seen_n=seen_n, held_right=held_right, held_n=held_n, held_share=held_right / held_n)
""")

code(r"""
print(tr("留出的问题：", "held-out questions:"))
held_answers = {}
for q, a in (faq_test[:3] if FAST else faq_test):
    held_answers[q] = ask(q)
    got = held_answers[q][0]
    print(f"  {q:38} -> {got}" + ("" if got == a else tr(f"   ✗（正确：{a}）", f"   ✗ (right: {a})")))
wrong_held = [(q, got) for q, (got, _) in held_answers.items() if got != dict(faq_test)[q]]
swapped = sum(got in every_answer for _, got in wrong_held)

unknown = ["how much is the pizza?", "are you open on holidays?", "do you have wifi?",
           "how much is the coffe?", "when do you close on friday?", "what does the tea cost"]
print(tr("\n它不可能知道的问题，或从没见过这种问法的问题：", "\nquestions it cannot know, or has never seen phrased this way:"))
answers = {}
for q in unknown:
    answers[q] = ask(q)
    print(f"  {q:38} -> {answers[q][0]}")
cannot_know = unknown[:3]                                       # pizza, holidays, wifi: not in its data at all
fluent_wrong = sum(answers[q][0] in every_answer for q in cannot_know)
record(wrong_held=len(wrong_held), swapped=swapped, fluent_wrong=fluent_wrong, n_cannot_know=len(cannot_know),
       variants_right=sum(answers[q][0] == a for q, a in (("how much is the coffe?", price_answer("coffee")),
                                                          ("when do you close on friday?", hours_answer("friday")),
                                                          ("what does the tea cost", price_answer("tea")))))
""")

md(zh=r"""
留出的组合答对了 {{held_right}} / {{held_n}}（见过的 {{seen_right}} / {{seen_n}}）；答错的 {{wrong_held}} 个里，有 {{swapped}} 个是把另一样东西或另一天的正确答案搬了过来。
再看第二张单子：关于它从没被告知过的事（披萨、节假日、无线网络）的 {{n_cannot_know}} 个问题里，有 {{fluent_wrong}} 个得到的是一个流利、完整、关于别的东西的答案——
训练数据里另一个问题的正确回答，被当作事实说了出来；其余的是别的输出，比如训练文本的碎片。已知问题的三个小变体（拼写错误、换个动词、少个问号）答对了 {{variants_right}} 个。
在客服里，要紧的失败是那个笃定的编造答案；它叫做幻觉 (hallucination)。

机器人“知道”自己在猜吗？按机器人给每个字符的概率给答案上色：
""", en=r"""
The held-out combinations: {{held_right}} of {{held_n}} right (seen: {{seen_right}} of {{seen_n}}); of the {{wrong_held}} wrong ones,
{{swapped}} give the right answer about another item or day. Now the second list: of the {{n_cannot_know}} questions about
things it was never told (a pizza, holidays, wifi), {{fluent_wrong}} get a fluent, complete answer about something
else — the right answer to another question of the training data, stated as fact; the rest get some
other output, such as a fragment of the training text. Of three small variations of known questions (a typo, another verb, no
question mark), {{variants_right}} are answered right. In customer service, the confident invented answer is
the failure that matters; it is called hallucination.

Does the bot "know" when it is guessing? Colour each answer's characters by the probability the bot
gave them:
""")

code(r"""
shown = [faq_test[0][0], faq_test[1][0]] + unknown[:4]
fig, ax = plt.subplots(figsize=(12, 0.55 * len(shown) + 0.6))
cmap = plt.get_cmap("RdYlGn")

# white text on a dark box, black on a light one, by WCAG's relative luminance (at 0.18 both contrast alike)
def ink(colour):
    r, g, b = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in colour[:3]]
    return "white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.18 else "black"

for row, q in enumerate(shown):
    answer, char_probs = answers[q] if q in answers else held_answers[q] if q in held_answers else ask(q)
    ax.text(-0.5, row, q, ha="right", va="center", fontsize=9)
    for col, (ch_, p) in enumerate(zip(answer, char_probs)):
        box = cmap(float(p))
        ax.text(col * 0.55, row, ch_, ha="center", va="center", fontsize=10, family="monospace", color=ink(box),
                bbox=dict(boxstyle="square,pad=0.12", fc=box, ec="none"))
    ax.text(len(answer) * 0.55 + 0.5, row, f"min p = {char_probs.min():.2f}", va="center", fontsize=8)
ax.set_xlim(-16, 36); ax.set_ylim(len(shown) - 0.5, -0.5); ax.axis("off")
ax.set_title(tr("答案的每个字符按它的概率上色（绿 ≈ 1，红 ≈ 0）", "each answer character coloured by its probability (green ≈ 1, red ≈ 0)"), fontsize=10)
plt.tight_layout(); plt.show()

# a refusal rule: answer "I don't know" when any character has p < 0.5
right_held = [q for q, (got, _) in held_answers.items() if got == dict(faq_test)[q]]
refused_right = sum(held_answers[q][1].min() < 0.5 for q in right_held)
refused_unknown = sum(answers[q][1].min() < 0.5 for q in cannot_know)
record(refused_unknown=refused_unknown, refused_right=refused_right, n_right_held=len(right_held))
print(tr(f"规则“有字符 p < 0.5 就回答不知道”：拒绝了 {refused_unknown} / {len(cannot_know)} 个不可能知道的问题，也拒绝了 {refused_right} / {len(right_held)} 个答对的留出问题",
         f"the rule 'any character with p < 0.5 → I don't know' refuses {refused_unknown} of {len(cannot_know)} unknowable questions, "
         f"and {refused_right} of {len(right_held)} correctly answered held-out ones"))
""", alt=(
    "六个问题，每个后面是机器人的回答，一个字符一个小方块，方块的颜色是机器人给这个字符的概率："
    "红色接近 0，经黄色到深绿接近 1；行末写着这个回答里最小的概率（min p）。"
    "前两个是留出的价格问题，几乎全是深绿，回答得很有把握。接下来三个问的是它从没被告知的东西（披萨、"
    "节假日、无线网络）：它照样写出通顺的句子，说的却是别的事（营业时间，"
    "或照抄训练数据里的一个问题），大多是绿色，只在选日子或选商品的地方有几个黄色或橙色字符；"
    "其中 {{refused_unknown}} 个有字符的概率低于 0.5。"
    "最后一个是带错字的“how much is the coffe?”，"
    "也得到了一个有把握的咖啡价格。",
    "Six questions, each followed by the bot's answer written one character per box, each box "
    "coloured by the probability the bot gave that character, from red (near 0) through yellow to "
    "dark green (near 1), with the answer's smallest probability (min p) at the end of the line. The "
    "first two, held-out price questions, are answered confidently, almost all dark green. The next "
    "three ask about things it was never told (a pizza, holidays, wifi): it still writes fluent text "
    "about something else (opening hours, or a question copied from its training data), mostly green, "
    "with a few yellow or orange characters where it picked a day or an item; {{refused_unknown}} of "
    "them have a character below 0.5. The last, 'how much is the coffe?' with a typo, also gets a "
    "confident coffee price."))

md(zh=r"""
上图里，机器人在猜的时候，猜测常常表现为几个没把握的（红色）字符——它不得不挑一个没人告诉它的日子或东西的地方——后面跟着有把握的字符：
选择一旦做出，句子的其余部分就由它决定了。于是一条拒答规则（“只要有字符 $p < 0.5$，就回答*不知道*”）拒绝了 {{refused_unknown}} / {{n_cannot_know}} 个不可能知道的问题，
同时也拒绝了 {{refused_right}} / {{n_right_held}} 个本来答对的留出问题；它抓不住一个笃定的编造。生产系统会加上检索 (retrieval)（先查到事实，再让模型组织语言），
并用拒答的例子来训练；两者都不是几分钟 CPU 能做完的，但都从这个观察出发。

## 6.5 教育领域：自动批改

原文把个性化学习和自动批改作业列为教育里的用途。自动批改有两种，区别很大：

* **用测试批改代码**：答案可以运行，测试决定对错。这是可靠的，tinyllm 就自带了这样一套：七份课堂作业（`tinyllm/assignments/tasks/`），
  从“写出乘法的反向传播 (backpropagation)”到“写出键值缓存”，一条命令发给学生，一条命令批改（教师指南：`docs/TEACHERS.md`）。
* **用语言模型批改文字**：模型读学生的回答，给出分数和评语。这是原文的意思，也是大模型今天在做的事；
  但上面的机器人已经说明了原因——一个会编造价格的模型也会编造分数，而且同样笃定。它需要参考答案、评分标准和人的复核。

下面演示第一种：把本章相关的作业 `a7_sampling_kv_cache`（采样和键值缓存）发布成学生版，然后批改三位“学生”的作业：
小明交的是教师的参考答案，小红交的是没动过的学生版，小刚的键值缓存忘了把新的键和值追加进去。
""", en=r"""
In the figure, where the bot is guessing, the guess often shows as a few uncertain (red) characters — the point
where it had to choose a day or an item it was not given — followed by confident characters: once
the choice is made, the rest of the sentence follows from it. So a refusal rule ("if any character
has $p < 0.5$, answer *I don't know*") refuses {{refused_unknown}} of the {{n_cannot_know}} unknowable questions — and also
{{refused_right}} of the {{n_right_held}} held-out questions it answered right; an invention made with confidence slips
through. Production systems add retrieval (look the fact up, then let the model phrase it) and train
on refusals; neither fits in a few minutes on a CPU, and both start from this observation.

## 6.5 教育领域：自动批改 — Education: automatic grading

The article names personalised learning and automatic grading of homework as uses in education.
There are two kinds of automatic grading, and they differ a lot:

* **Grading code with tests**: the answer runs, and tests decide. This is reliable, and tinyllm ships
  one: seven classroom assignments (`tinyllm/assignments/tasks/`), from "write the backward of a
  multiplication" to "write the KV cache", released to students with one command and graded with
  another (the teachers' guide: `docs/TEACHERS.md`).
* **Grading text with a language model**: the model reads the student's answer and gives a score and
  a comment. That is what the article means, and what large models do today; but the bot above
  already shows why it needs care — a model that invents prices invents grades, just as confidently.
  It needs reference answers, a rubric and a human check.

Below, the first kind: the assignment that goes with this chapter, `a7_sampling_kv_cache` (sampling and
the KV cache), released as the student version, then three "students" graded: Xiaoming hands in the
teacher's reference solution, Xiaohong the untouched student version, and Xiaogang's KV cache forgets
to append the new keys and values.
""")

code(r"""
from tinyllm.assignments import load_assignments, grade_paths, format_table
from tinyllm.assignments.source import builtin_tasks_dir
from tinyllm.assignments.cli import main as assignments_cli

classroom = pathlib.Path(tempfile.mkdtemp(prefix="tinyllm_grading_"))
with contextlib.redirect_stdout(io.StringIO()):      # (it lists the files it writes)
    assignments_cli(["release", "--out", str(classroom / "release"), "--assignment", "a7_sampling_kv_cache"])
teacher = (builtin_tasks_dir() / "a7_sampling_kv_cache.py").read_text(encoding="utf-8")
forgot_to_append = (teacher.replace('cache["k"] = tl.concatenate([cache["k"], k], axis=2) if "k" in cache else k', 'cache["k"] = k')
                           .replace('cache["v"] = tl.concatenate([cache["v"], v], axis=2) if "v" in cache else v', 'cache["v"] = v'))
handed_in = {"xiaoming": teacher, "xiaohong": (classroom / "release" / "a7_sampling_kv_cache.py").read_text(encoding="utf-8"),
             "xiaogang": forgot_to_append}
for student, source in handed_in.items():
    (classroom / "submitted" / student).mkdir(parents=True)
    (classroom / "submitted" / student / "homework7.py").write_text(source, encoding="utf-8")
begin = time.perf_counter()
reports = grade_paths([str(classroom / "submitted")], load_assignments(), by_student=True, timeout=30)
grading_seconds = time.perf_counter() - begin
print(format_table(reports))
totals = {r.student: f"{r.earned:g}/{r.possible:g}" for r in reports}
record(grading_seconds=grading_seconds, **{f"score_{name}": total for name, total in totals.items()})
print(tr(f"\n三份作业批改用了 {grading_seconds:.1f} 秒", f"\nthree submissions graded in {grading_seconds:.1f} s"))
""")

md(zh=r"""
三份作业批改用了 {{grading_seconds:.1f}} 秒：小明 {{score_xiaoming}}，小红 {{score_xiaohong}}，小刚 {{score_xiaogang}}。每个任务单独在一个新进程里运行学生的代码和测试（包括学生看不到的隐藏测试），
只有全部通过才得分；给学生的提示 (hint) 是第一个失败的测试的信息。同样的命令对一个班的两百份作业也适用：
`python -m tinyllm.assignments grade submitted/ --students --json grades.json --csv grades.csv`。
这只能批改有测试可依的东西；它说明不了语言模型批改作文靠不靠得住——那需要一个大模型、真实的作文和人工评分来对照。

## 6.6 医疗领域：为什么这里不做

原文提到辅助医生诊断、建议治疗。这里有意不去尝试：上面每一个机器人都会用笃定的语气编造答案，而在错误会伤害人的地方，这是不可接受的。
一个医疗应用需要的东西——经过审核的知识来源、不确定时拒答、人的最终决定、在真实病例上的评估——没有一样是几分钟训练出的小模型能演示的。

## 6.7 小模型做不到什么

| 原文的应用 | 本章 | 做到了的 | 没做到的（上面测量过） |
|---|---|---|---|
| 智能客服 | 6.4，咖啡馆机器人 | 留出的组合答对 {{held_right}} / {{held_n}} | 不可能知道的 {{n_cannot_know}} 个问题里，{{fluent_wrong}} 个得到笃定的编造答案 |
| 智能助手 | 6.3，提醒技能 | 训练过的六种格式（验证集精确匹配 (exact match) {{date_exact:.1%}}） | 没见过的格式、年份和词；悄悄错了的：{{ood_silent}} |
| 文本生成（原文 §1.1 的对话生成、文本摘要） | 6.1，字符级 GPT | 拼写、版式、局部的词序 | 意义、事实、一两行以外的连贯 |
| 教育领域 | 6.5，自动批改 | 用测试批改代码：三份作业 {{grading_seconds:.1f}} 秒 | 用模型批改文字：没有尝试，它会像机器人一样编造 |
| 医疗领域 | 6.6 | | 有意不尝试 |

三条经验原样适用于大模型：

1. **模型总会回答。** 是否相信答案，由它周围的代码决定：校验（日历）、拒答阈值、检索。
2. **置信度不等于正确。** 概率反映的是模式有多熟悉。
3. **行为受训练数据限制。** 机器人做对的每件事，都以某种形式出现在它们的数据里；做错的都没有。
""", en=r"""
Three submissions graded in {{grading_seconds:.1f}} s: Xiaoming {{score_xiaoming}}, Xiaohong {{score_xiaohong}}, Xiaogang {{score_xiaogang}}. Each task runs the student's code and the tests
(hidden ones included, which students do not see) in a fresh process of its own, and earns its points
only when all pass; the hint is the first failing test's message. The same command grades a class of
two hundred: `python -m tinyllm.assignments grade submitted/ --students --json grades.json --csv grades.csv`.
This grades only what tests can decide; it says nothing about whether a language model grades essays
well — that takes a large model, real essays and human grades to compare with.

## 6.6 医疗领域：为什么这里不做 — Medicine: why not here

The article mentions helping doctors diagnose and suggest treatment. This is deliberately not
attempted here: every bot above invents answers in a confident voice, which is unacceptable where
errors harm people. What a medical application needs — vetted sources, refusal under uncertainty, a
human's final decision, evaluation on real cases — is nothing a model trained for minutes can show.

## 6.7 小模型做不到什么 — What a tiny model cannot do

| the article's application | here | what worked | what did not, measured above |
|---|---|---|---|
| 智能客服 customer service | 6.4, café bot | held-out combinations: {{held_right}} of {{held_n}} right | of {{n_cannot_know}} unknowable questions, {{fluent_wrong}} got a confident invented answer |
| 智能助手 assistants | 6.3, reminder skill | the six date formats it was trained on (validation exact match {{date_exact:.1%}}) | unseen formats, years and words; silently wrong: {{ood_silent}} |
| text generation (§1.1 of the article: 对话生成, 文本摘要) | 6.1, char GPT | spelling, layout, local word order | meaning, facts, coherence beyond a line or two |
| 教育领域 education | 6.5, automatic grading | grading code with tests: three submissions in {{grading_seconds:.1f}} s | grading text with a model: not attempted; it would invent like the bot |
| 医疗领域 medicine | 6.6 | | deliberately not attempted |

Three lessons carry over to large models unchanged:

1. **A model always answers.** Whether to trust the answer is decided by code around it: validation
   (the calendar), refusal thresholds, retrieval.
2. **Confidence is not correctness.** Probabilities reflect how familiar the pattern is.
3. **Behaviour is bounded by the training data.** Everything the bots did right was in their data in
   some form; everything they got wrong was not.
""")

# ============================================================================ try it
md(zh=r"""
## 动手试试

1. **把莎士比亚模型训练得更久。** 令 `gpt_steps = 2000`（时间约为现在的 3 倍多）。*预期：* 验证损失继续下降，
   接近 `docs/shakespeare-char.md` 里完整预设报告的值；$\tau = 1$ 时的真词率明显上升，说话人的名字变成真的名字。
2. **温度接近零。** 用 `temperature=0.05` 生成。*预期：* 与贪心解码相同（或几乎相同），包括它的循环。
3. **top-k = 1 和 top-p → 0。** *预期：* 无论温度是多少，两者都等于贪心解码：只有一个候选能留下来。
4. **教助手一种新格式。** 把 `("5/3/1998", "1998-03-05")` 这样的句对加进训练数据（需要一个包含 "/" 的源分词器）。
   *预期：* 重新训练后这个请求能用了，其他格式不受影响。
5. **教机器人拒答。** 加几行 `Q: how much is the pizza?\nA: sorry, we do not sell pizza.` 这样的训练文本，覆盖几样没有的东西。
   *预期：* 它会拒绝这几样东西——但多半不会拒绝它没见过被拒绝的其他东西，或者开始拒绝用不寻常方式问的已知东西。拒答和其他一切一样，是从例子里学来的。
6. **整个留出一个实体。** 从训练数据中删掉所有关于 `soup` 的问题。*预期：* 关于汤的问题得到另一样东西的价格：模型造不出它从没见过的事实。
7. **温度和 top-k。** 在下面的起点单元里写 `top_k_probs(logits, k, temperature)`：先除以温度，只留最大的 $k$ 个逻辑值，再做 softmax。
   """ + assignment_task("a7_sampling_kv_cache", "top_k")["zh"] + r"""
8. **核采样。** 在起点单元里写 `sample_top_p(logits, p, rng)`：按概率从大到小排序，留下累计概率达到 $p$ 的最小集合，重新归一化后抽一个。
   """ + assignment_task("a7_sampling_kv_cache", "top_p")["zh"] + r"""
9. **一层注意力的键值缓存。** 6.2 节的 `step_with_cache` 处理整个 GPT；在起点单元里只写一层：`attention_step(x_t, p, cache, n_heads)`，
   参数放在按 GPT-2 命名的字典里，缓存是一个字典。""" + assignment_task("a7_sampling_kv_cache", "kv_cache")["zh"] + r"""
""", en=r"""
## Try it

1. **Train the Shakespeare model longer.** Set `gpt_steps = 2000` (a little over 3× the time).
   *Expected:* the validation loss keeps falling, towards what `docs/shakespeare-char.md` reports for
   the full preset; the real-word rate at $\tau = 1$ rises noticeably, and the speakers' names become
   real names.
2. **Temperature near zero.** Generate with `temperature=0.05`. *Expected:* the same text as greedy
   decoding (or nearly), including its loop.
3. **top-k = 1 and top-p → 0.** *Expected:* both equal greedy decoding, whatever the temperature:
   only one candidate survives the cut.
4. **Teach the assistant a new format.** Add pairs like `("5/3/1998", "1998-03-05")` to the training
   data (you need a source tokenizer that includes "/"). *Expected:* after retraining that request
   works, and the other formats are unaffected.
5. **Teach the bot to refuse.** Add training lines such as
   `Q: how much is the pizza?\nA: sorry, we do not sell pizza.` for a few unknown items. *Expected:*
   it refuses those items — and probably not other unknown items it never saw refused, or it starts
   refusing known items phrased in unusual ways. Refusal is learned from examples, like everything else.
6. **Hold out an entity entirely.** Remove every question about `soup` from training. *Expected:*
   questions about soup get another item's price: the model cannot produce a fact it never saw.
7. **Temperature and top-k.** Write `top_k_probs(logits, k, temperature)` in the starter cell below:
   divide by the temperature, keep the $k$ largest logits, softmax.
   """ + assignment_task("a7_sampling_kv_cache", "top_k")["en"] + r"""
8. **Nucleus sampling.** Write `sample_top_p(logits, p, rng)` in the starter cell: sort by probability,
   keep the smallest set whose total reaches $p$, renormalise, draw one.
   """ + assignment_task("a7_sampling_kv_cache", "top_p")["en"] + r"""
9. **A KV cache for one attention layer.** 6.2's `step_with_cache` handles a whole GPT; write one layer
   in the starter cell: `attention_step(x_t, p, cache, n_heads)`, its parameters in a dict named as in
   GPT-2, the cache a dict. """ + assignment_task("a7_sampling_kv_cache", "kv_cache")["en"] + r"""
""")

code(r"""
#zh: 练习 7 和 8 的起始代码（作业 a7_sampling_kv_cache，任务 7.1 和 7.2）。两个都写好，再运行 check_sampling()。
#en: Exercises 7 and 8, starters (assignment a7_sampling_kv_cache, tasks 7.1 and 7.2). Fill in both, then run check_sampling().
def top_k_probs(logits, k=None, temperature=1.0):
    #zh: logits (V,) → 概率 (V,)：除以温度；保留最大的 k 个（其余设为 −inf）；softmax
    #en: logits (V,) → probabilities (V,): divide by the temperature; keep the k largest (others −inf); softmax
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def sample_top_p(logits, p, rng):
    #zh: 一个词元编号（int）：概率之和达到 p 的最小的一组最可能的词元，重新归一化后从中抽取
    #en: one token id (an int): the smallest set of most likely tokens whose probabilities reach p, renormalised
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def check_sampling():
    z_ = np.array([1.0, 3.0, 0.5, 2.0, -1.0])
    ok_k = np.allclose(top_k_probs(z_, k=2, temperature=0.5), filtered(z_, temperature=0.5, top_k=2))
    draws = [sample_top_p(np.log(np.array([0.5, 0.3, 0.15, 0.05])), 0.75, np.random.default_rng(i)) for i in range(4000)]
    ok_p = np.allclose(np.bincount(draws, minlength=4) / 4000, [0.625, 0.375, 0, 0], atol=0.03)
    print(tr("top_k_probs 与上面的 filtered 一致 ✓", "top_k_probs matches filtered above ✓") if ok_k else tr("top_k_probs 还不对 ✗", "top_k_probs is not right yet ✗"))
    print(tr("sample_top_p 的频率正确 ✓", "sample_top_p draws with the right frequencies ✓") if ok_p else tr("sample_top_p 的频率还不对 ✗", "sample_top_p's frequencies are not right yet ✗"))

# check_sampling()      # uncomment when both functions are written
""")

code(r"""
#zh: 练习 9 的起始代码（作业 a7_sampling_kv_cache，任务 7.3）。写好函数，再运行 check_attention_step()。
#en: Exercise 9, starter (assignment a7_sampling_kv_cache, task 7.3). Fill in the function, then run check_attention_step().
def attention_step(x_t, p, cache, n_heads):
    #zh: x_t 的形状是 (B, 1, D)，在 tl.no_grad() 下；p：{"c_attn.weight" (3D, D), "c_attn.bias", "c_proj.weight" (D, D), "c_proj.bias"}
    #en: x_t (B, 1, D), under tl.no_grad(); p: {"c_attn.weight" (3D, D), "c_attn.bias", "c_proj.weight" (D, D), "c_proj.bias"}
    #zh: 1. 新词元的 q、k、v，分成多个头：每个 (B, H, 1, D/H)
    #en: 1. q, k, v of the new token, split into heads: (B, H, 1, D/H) each
    #zh: 2. cache["k"] = tl.concatenate([cache["k"], k], axis=2)（第一步直接用 k）；"v" 也一样
    #en: 2. cache["k"] = tl.concatenate([cache["k"], k], axis=2) (or k on the first step); the same for "v"
    #zh: 3. softmax(q Kᵀ / √(D/H)) V——不要掩码：新词元能看到之前的每个位置；4. 合并各头，再过 c_proj
    #en: 3. softmax(q Kᵀ / √(D/H)) V — no mask: the new token sees every position so far; 4. merge heads, c_proj
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def check_attention_step():
    tl.manual_seed(3)
    layer = GPT(GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_head=2, n_embd=8)).transformer.h[0].attn
    p = {name: value for name, value in layer.named_parameters()}
    x_ = tl.randn(2, 6, 8)
    with tl.no_grad():
        whole = layer(x_).numpy()                                    # causal attention over all 6 positions at once
        cache_ = {}
        steps_ = np.concatenate([attention_step(x_[:, i:i + 1], p, cache_, 2).numpy() for i in range(6)], axis=1)
    print(tr("6 步的输出与整段的因果注意力一致 ✓", "6 steps match causal attention over the whole sequence ✓") if np.allclose(steps_, whole, atol=1e-5)
          else tr("还不一致 ✗", "not yet ✗"))

# check_attention_step()      # uncomment when your function is written
""")

md(zh=r"""
## 小结

| 原文（§6） | 本章的做法 |
|---|---|
| 大模型用于智能客服，回答常见问题 | 6.4：一个咖啡馆机器人，能回答范围内的问题（包括新问法，留出的组合对了 {{held_right}} / {{held_n}}）——也会编造范围外问题的答案 |
| ……用于智能助手，完成任务 | 6.3：提醒技能 = 预处理 + 翻译模型 + 日历检查 |
| ……用于教育 | 6.5：用 tinyllm 的作业和评分器自动批改三份作业；为什么用模型批改文字要小心 |
| ……用于医疗 | 6.6：为什么不假装能做，以及需要什么 |
| （§1.1）文本生成、对话 | 6.1：字符级 GPT 的生成；温度、top-k、top-p 的公式、图和测量出的取舍 |
| （生成的机制） | 6.2：亲手写的键值缓存，与库的 `generate` 词元{{long_same}}，512 个位置时比重算快 {{long_speedup:.0f}} 倍 |
| （§2.3）推理 = 预处理、预测、后处理 | 这里每个应用都是这三步；后处理是抓住错误的地方 |
""", en=r"""
## Summary

| the article says (§6) | shown here |
|---|---|
| LLMs are used in customer service, to answer common questions | 6.4: a café bot that answers in-scope questions, including new phrasings ({{held_right}} of {{held_n}} held-out combinations) — and invents answers out of scope |
| … in assistants, to carry out tasks | 6.3: a reminder skill = preprocessing + the translation model + a calendar check |
| … in education | 6.5: three submissions graded automatically with tinyllm's assignments and grader; why grading text with a model needs care |
| … in medicine | 6.6: why we do not pretend to, and what would be needed |
| (§1.1) text generation, dialogue | 6.1: generation from a char GPT; temperature, top-k, top-p as formulas, pictures and a measured trade-off |
| (the machinery of generation) | 6.2: a KV cache written by hand, tokens {{long_same}} to the library's `generate`, {{long_speedup:.0f}}× faster than recomputing at 512 positions |
| (§2.3) inference = preprocess, predict, postprocess | every application here is those three steps; the postprocessing is where mistakes get caught |
""")

ch.index(builds=("字符级 GPT 与温度、top-k、top-p 的取舍；亲手写的键值缓存（与 `generate` 的词元相同，计时对照重算）；"
                 "带日历检查的提醒技能；咖啡馆客服机器人与它的幻觉；用课堂作业和评分器自动批改",
                 "a char GPT and the temperature / top-k / top-p trade-off; a KV cache written by hand (the same tokens "
                 "as `generate`, timed against recomputing); a reminder skill with a calendar check; a café bot and its "
                 "hallucinations; automatic grading with the classroom assignments"),
         figures=("验证损失 {{gpt_val:.3f}}（{{gpt_steps}} 步）；键值缓存在 512 个位置时快 {{long_speedup:.0f}} 倍；"
                  "留出的问题答对 {{held_right}}/{{held_n}}",
                  "validation loss {{gpt_val:.3f}} ({{gpt_steps}} steps); the KV cache {{long_speedup:.0f}}× faster at 512 "
                  "positions; held-out questions {{held_right}}/{{held_n}} right"))

if __name__ == "__main__":
    ch.build()
