"""Build chapters/zh/01_background.ipynb and chapters/en/01_background.ipynb (the article's
§1): one tiny GPT doing the four uses the article names, and a cost meter (FLOPs, time,
memory) over six GPTs, extrapolated to GPT-3.

    python chapters/build/ch01_background.py                    # full run, both editions
    python chapters/build/ch01_background.py --fast --out /tmp/ch   # quick check
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Chapter, assignment_task  # noqa: E402

ch = Chapter("01_background", number=1, title=("背景介绍", "Background"), sections="§1.1–1.2")
md, code = ch.md, ch.code

# ============================================================================ title
md(zh=r"""
# 1 · 背景介绍

> **原文 §1.1 人工智能与大语言模型的兴起**：LLMs 是一种基于深度学习的自然语言处理模型，能够处理和生成人类语言，
> 并在众多领域展现出惊人的潜力，例如：**机器翻译**、**文本摘要**、**对话生成**、**代码生成**。
>
> **原文 §1.2 计算资源需求的挑战**：随着 LLM 模型规模和复杂性的不断增长，其训练和推理过程对计算资源的需求也急剧攀升。
> 挑战包括**高昂的硬件成本**、**能源消耗**和**训练时间**（数周甚至数月）。

原文把这两段背景当作事实陈述。本章把每一条都变成一个你可以重跑的测量。

**你会亲手搭建**

1. **一个小模型，四种工作**（§1.1）。一个仅解码器 (decoder-only) 的 Transformer（GPT，{{four_job_params:,}} 个参数），在一个玩具语料上训练约 {{four_job_seconds:.0f}} 秒。
   语料混合了原文列出的四种用途：把英文短语翻译成法文（机器翻译，machine translation），把三句话的小故事缩成一句（文本摘要，
   text summarization），回复一条聊天消息（对话生成，dialogue generation），按指令写一行 Python（代码生成，code generation）。
   一个模型、一个目标——预测下一个字符——我们测量它在从没见过的提示词上每种工作完全做对的比例。
2. **一个成本表**（§1.2）。六个 GPT，从 {{small_N:,}} 到 {{wide_N:,}} 个参数：每个模型一次训练步的浮点运算 (floating-point operations, FLOPs)，
   逐个运算数出来，并与 **6N 规则**的预测比较；在这台机器上每一步的秒数；权重、梯度 (gradients)、优化器状态 (optimizer state) 和激活值 (activations) 的内存。全部对模型规模作图。
3. **外推**：只用第 2 步检验过的公式和这台机器上测到的速度，推算训练一个真正的 LLM（GPT-3）要多久。

完整运行约 {{run_minutes:.1f}} 分钟（{{run_cores}} 核 CPU）。设置 `TINYLLM_FAST=1`（CI 的做法）时同样的单元只跑很少的步数，
十几秒即可完成，那时的准确率没有意义。
""", en=r"""
# 1 · 背景介绍 — Background

> **The article, §1.1 人工智能与大语言模型的兴起** (the rise of AI and large language models):
> LLMs 是一种基于深度学习的自然语言处理模型，能够处理和生成人类语言 — LLMs are deep-learning
> models of natural language that process and generate human language — with four uses named:
> **机器翻译** (machine translation), **文本摘要** (text summarization), **对话生成** (dialogue
> generation), **代码生成** (code generation).
>
> **The article, §1.2 计算资源需求的挑战** (the challenge of compute demands): as models grow,
> training and inference need ever more compute — **高昂的硬件成本** (high hardware cost),
> **能源消耗** (energy consumption), **训练时间** (training time of weeks or months).

The article states both halves of its background as facts. This chapter turns each into a
measurement you can rerun.

**What you will build**

1. **One tiny model, four jobs** (§1.1). A decoder-only Transformer (a GPT of {{four_job_params:,}}
   parameters) trained for about {{four_job_seconds:.0f}} s on a toy corpus that mixes the article's four uses:
   translating English phrases into French, summarizing three-sentence stories, answering a
   chat message, writing a line of Python from an instruction. One model, one objective —
   predict the next character — and we measure how often it gets each job exactly right on
   prompts it never saw.
2. **A cost meter** (§1.2). Six GPTs from {{small_N:,}} to {{wide_N:,}} parameters: for each, the
   floating-point operations (FLOPs) of a training step, counted op by op and predicted by the
   **6N rule**; the seconds per step on this machine; the memory of weights, gradients,
   optimizer state and activations. All plotted against model size.
3. **An extrapolation** from those measurements to a real LLM (GPT-3), using nothing but the
   formula checked in step 2 and the speed measured on this machine.

A full run takes about {{run_minutes:.1f}} minutes on {{run_cores}} CPU cores. With `TINYLLM_FAST=1` (what CI
does) the same cells run with far fewer steps in a few seconds, and the accuracies are then
meaningless.
""")

ch.setup(r"""
import random
from IPython.display import Markdown, display
from tinyllm.models import GPT, GPTConfig
""")

# ============================================================================ 1.1
md(zh=r"""
## 1.1 人工智能与大语言模型的兴起

**语言模型**给一段文本的每一种可能的续写分配一个概率。按位置写成乘积（概率的链式法则），一串词元 (token)
$x_1, \dots, x_n$ 的概率是

$$ P(x_1, \dots, x_n) = \prod_{t=1}^{n} P(x_t \mid x_1, \dots, x_{t-1}), $$

参数为 $\theta$ 的模型通过在训练文本上最小化交叉熵 (cross-entropy)，学习其中的每个因子 $P_\theta(x_t \mid x_{<t})$——“接下来是什么？”。
**大**语言模型 (large language model, LLM) 是同一件事，只是有数十亿个参数，在数万亿个词元上训练。

为什么预测下一个词元就能翻译、摘要、聊天和写代码？因为这些工作都可以*写成文本*：一段提示词，然后是答案。
如果训练文本里有许多“提示—答案”对，在提示词之后预测下一个词元*就是*在做这件工作。GPT-2（Radford 等，2019）
在真实任务上展示了这一点：在文章后面加上 “TL;DR:”，它就开始写摘要。我们在玩具规模上做同样的事，用四类提示词：

| 原文的术语 | 我们的玩具工作 | 提示词 → 答案 示例 |
|---|---|---|
| 机器翻译 | 英文短语 → 法文（词序会变，形容词要与名词的阴阳性一致） | `translate: the white chair waits =` → ` la chaise blanche attend` |
| 文本摘要 | 三句话的故事只保留那一件事 | `summarize: it rained. eva saw a fox. eva was glad. =` → ` eva saw a fox.` |
| 对话生成 | 回复用户的消息 | `user: my name is leo. bot:` → ` nice to meet you, leo!` |
| 代码生成 | 指令 → 一行 Python | `code: subtract 3 from 9 =` → ` print(9 - 3)` |

这些是模板，不是语言：重点不在于模型聪明，而在于**一个网络、一个训练目标就能服务四种工作**，和真正的 LLM 一样。
""", en=r"""
## 1.1 人工智能与大语言模型的兴起 — What language models do

A **language model** assigns a probability to every possible continuation of a text. Written
as a product over positions (the chain rule of probability), the probability of a sequence
of tokens $x_1, \dots, x_n$ is

$$ P(x_1, \dots, x_n) = \prod_{t=1}^{n} P(x_t \mid x_1, \dots, x_{t-1}), $$

and a model with parameters $\theta$ learns the factors $P_\theta(x_t \mid x_{<t})$ — "what
comes next?" — by minimising the cross-entropy on training text. A **large** language model
(大语言模型) is the same thing with billions of parameters, trained on trillions of tokens.

Why would next-token prediction translate, summarize, chat and code? Because each of these
jobs can be *written as text*: a prompt, then the answer. If the training text contains many
prompt–answer pairs, predicting the next token after a prompt *is* doing the job. GPT-2
(Radford et al., 2019) showed this for real tasks: appending "TL;DR:" to an article made it
summarize. We do it at toy scale, with four families of prompts:

| the article's term | our toy job | example prompt → answer |
|---|---|---|
| 机器翻译 machine translation | English phrase → French (word order changes, adjectives agree in gender) | `translate: the white chair waits =` → ` la chaise blanche attend` |
| 文本摘要 text summarization | keep the one event of a three-sentence story | `summarize: it rained. eva saw a fox. eva was glad. =` → ` eva saw a fox.` |
| 对话生成 dialogue | reply to a user's message | `user: my name is leo. bot:` → ` nice to meet you, leo!` |
| 代码生成 code generation | instruction → a line of Python | `code: subtract 3 from 9 =` → ` print(9 - 3)` |

These are templates, not language: the point is not that the model is clever but that **one
network and one training objective serve all four jobs**, exactly as in a real LLM.
""")

code(r"""
NOUNS = {"cat": ("chat", "m"), "dog": ("chien", "m"), "wolf": ("loup", "m"), "horse": ("cheval", "m"),
         "bus": ("bus", "m"), "boat": ("bateau", "m"), "pen": ("stylo", "m"), "hat": ("chapeau", "m"),
         "house": ("maison", "f"), "car": ("voiture", "f"), "flower": ("fleur", "f"), "table": ("table", "f"),
         "door": ("porte", "f"), "cup": ("tasse", "f"), "bike": ("moto", "f"), "chair": ("chaise", "f")}
COLORS = {"black": ("noir", "noire"), "green": ("vert", "verte"), "white": ("blanc", "blanche"),
          "grey": ("gris", "grise"), "blue": ("bleu", "bleue"), "red": ("rouge", "rouge"),
          "brown": ("brun", "brune"), "pink": ("rose", "rose")}
VERBS = {"sleeps": "dort", "falls": "tombe", "is here": "est ici", "moves": "bouge",
         "is there": "est la", "waits": "attend"}
# (noun, colour) pairs that never appear in training: the translation test uses only these
HELD_OUT = {(n, c) for i, n in enumerate(NOUNS) for j, c in enumerate(COLORS) if (i + 3 * j) % 7 == 0}

NAMES = ["mia", "tom", "ana", "leo", "eva", "sam", "ivy", "max", "zoe", "ben"]
ANIMALS = ["cat", "dog", "fox", "frog", "duck", "bear", "fish", "goat"]
WEATHER = ["it was cold.", "it rained.", "it was sunny.", "it was late."]
FEELINGS = ["happy", "sad", "scared", "glad"]
SMALL_TALK = [("hi!", "hello! how can i help?"), ("thank you.", "you are welcome."),
              ("bye.", "goodbye, see you soon."), ("how are you?", "i am fine, thanks.")]
OPS = {"add": "+", "subtract": "-", "multiply": "*"}
TASKS = ["translate", "summarize", "chat", "code"]
JOB = {"translate": tr("翻译", "translation"), "summarize": tr("摘要", "summary"),
       "chat": tr("对话", "chat"), "code": tr("代码", "code")}          # what the figures call each job


def example(task, rng, held_out=False):
    # One (prompt, answer) pair of the given job, drawn with the random.Random `rng`.
    if task == "translate":
        while True:
            noun, color = rng.choice(list(NOUNS)), rng.choice(list(COLORS))
            if ((noun, color) in HELD_OUT) == held_out:
                break
        verb = rng.choice(list(VERBS))
        french, gender = NOUNS[noun]
        article, adjective = ("le", COLORS[color][0]) if gender == "m" else ("la", COLORS[color][1])
        return f"translate: the {color} {noun} {verb} =", f" {article} {french} {adjective} {VERBS[verb]}"
    if task == "summarize":
        name, animal = rng.choice(NAMES), rng.choice(ANIMALS)
        story = f"{rng.choice(WEATHER)} {name} saw a {animal}. {name} was {rng.choice(FEELINGS)}."
        return f"summarize: {story} =", f" {name} saw a {animal}."
    if task == "chat":
        if rng.random() < 0.5:
            name = rng.choice(NAMES)
            return f"user: my name is {name}. bot:", f" nice to meet you, {name}!"
        message, reply = rng.choice(SMALL_TALK)
        return f"user: {message} bot:", f" {reply}"
    if task == "code":
        op, x, y = rng.choice(list(OPS)), rng.randrange(10), rng.randrange(10)
        words = {"add": f"add {x} and {y}", "subtract": f"subtract {y} from {x}", "multiply": f"multiply {x} by {y}"}
        return f"code: {words[op]} =", f" print({x} {OPS[op]} {y})"


n_test = 20 if FAST else 40
test_rng = random.Random(2024)
test = {task: [example(task, test_rng, held_out=True) for _ in range(n_test)] for task in TASKS}
unseen = {prompt for task in ("summarize", "code") for prompt, _ in test[task]}  # kept out of training

rng = random.Random(0)
train_pairs = []
while len(train_pairs) < 8000:
    prompt, answer = example(TASKS[len(train_pairs) % 4], rng)
    if prompt not in unseen:
        train_pairs.append((prompt, answer))
for task in TASKS:
    prompt, answer = example(task, random.Random(7))
    print(f"{task:>9}:  {prompt}{answer}")
print(tr(f"\n{len(train_pairs)} 个训练对；每种工作 {n_test} 个测试提示词，都没在训练中出现过"
         f"（翻译：{len(NOUNS) * len(COLORS)} 个名词-颜色组合中有 {len(HELD_OUT)} 个从未训练过）",
         f"\n{len(train_pairs)} training pairs; {n_test} test prompts per job, none of them seen in training "
         f"(translation: {len(HELD_OUT)} of {len(NOUNS) * len(COLORS)} noun-colour pairs never trained on)"))
""")

md(zh=r"""
### 预处理：从字符到编号

原文的流程（§2.2，第 2 章）从分词 (tokenization) 开始。这里用最简单的分词器就够了：每个字符一个词元。
`"\n"` 作为每个样本的开头和每个答案的结尾，模型由此学会答案在哪里结束。
""", en=r"""
### Preprocessing: characters to ids

The article's pipeline (§2.2, chapter 2) starts with 分词 (tokenization). Here the simplest
tokenizer will do: one token per character. `"\n"` starts every example and ends every
answer, so the model learns where an answer stops.
""")

code(r"""
from tinyllm.data import CharTokenizer

tokenizer = CharTokenizer.from_text("\n".join(p + a for p, a in train_pairs) + "\n0123456789")
NEWLINE = tokenizer.encode("\n")[0]
print(tr(f"词表：{tokenizer.vocab_size} 个字符", f"vocabulary: {tokenizer.vocab_size} characters"))
print("'code: add 2 and 5 =' ->", tokenizer.encode("code: add 2 and 5 ="))
""")

md(zh=r"""
### 只在答案上训练

每一行训练数据是一个样本：先是提示词的编号，再是答案的编号。位置 $t$ 的输入是 $x_{\le t}$，目标是 $x_{t+1}$，
和任何语言模型一样；但只有目标属于**答案**（集合 $A$）的位置计入损失：

$$ \mathcal{L}(\theta) = -\frac{1}{|A|} \sum_{t \in A} \log P_\theta(x_{t+1} \mid x_{\le t}). $$

$A$ 之外的目标设为 $-1$，`F.cross_entropy`（因而 `GPT.forward`）会忽略它们。模型仍然通过注意力读提示词，
只是不要求它*预测*提示词——提示词按构造是随机的，预测它会浪费小模型的大部分容量。聊天模型的指令微调 (instruction tuning)
也是这么做的。（“动手试试”里有一题让你去掉这个掩码看看。）
""", en=r"""
### Training on the answers only

Each training row is one example: the prompt's ids, then the answer's. The input at position
$t$ is $x_{\le t}$ and the target is $x_{t+1}$, as in any language model; but only the
positions whose target belongs to the **answer** (the set $A$) count in the loss:

$$ \mathcal{L}(\theta) = -\frac{1}{|A|} \sum_{t \in A} \log P_\theta(x_{t+1} \mid x_{\le t}). $$

Targets outside $A$ are set to $-1$, which `F.cross_entropy` (and so `GPT.forward`) ignores.
The model still reads the prompt through attention; it is just not asked to *predict* the
prompt, which is random by construction and would waste most of a small model's capacity.
This is what instruction tuning of chat models does too. (The "Try it" section asks you to
remove the mask and see.)
""")

code(r"""
class AnswerOnlyBatches:
    # Rows of (prompt + answer) ids; targets are -1 (ignored) except on the answer.

    def __init__(self, pairs, block_size=80):
        self.x = np.zeros((len(pairs), block_size), dtype=np.int64)
        self.y = np.full((len(pairs), block_size), -1, dtype=np.int64)
        for i, (prompt, answer) in enumerate(pairs):
            p, a = tokenizer.encode("\n" + prompt), tokenizer.encode(answer + "\n")
            ids = p + a
            self.x[i, :len(ids) - 1] = ids[:-1]             # input: every token but the last
            self.y[i, len(p) - 1:len(ids) - 1] = a          # target: the next token, on the answer only

    def get_batch(self, batch_size, rng):
        rows = rng.integers(0, len(self.x), batch_size)
        length = int(np.nonzero(self.y[rows] >= 0)[1].max()) + 1   # crop the padding all rows share
        return self.x[rows, :length], self.y[rows, :length]


data = AnswerOnlyBatches(train_pairs)
x, y = data.get_batch(2, np.random.default_rng(0))
print(tr("输入：", "input :"), repr(tokenizer.decode(x[0][x[0] > 0].tolist())))
print(tr("目标：", "target:"), repr(tokenizer.decode(y[0][y[0] >= 0].tolist())), tr("（只有这些位置计分）", "(only these positions are scored)"))
""")

md(zh=r"""
模型：一个 2 层、4 个头、宽 64 的 GPT。`train_lm` 是几行代码的训练循环（AdamW、先预热再余弦下降的学习率、梯度裁剪；第 2 章会把它拆开）。
我们把自己的批次当作数据集传进去，并使用 `GPT` 自带的损失。
""", en=r"""
The model: a GPT with 2 layers, 4 attention heads and width 64. `train_lm` is the trainer's
loop in a few lines (AdamW, warmup then cosine learning rate, gradient clipping; chapter 2
opens it up). We pass our batches as the dataset and let it use `GPT`'s own loss.
""")

code(r"""
from tinyllm.compress.lm import train_lm

def loss_fn(model, x, y):
    _, loss = model(x, y)          # mean cross-entropy over targets != -1
    return loss

tl.manual_seed(0)
model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=80, n_layer=2, n_head=4, n_embd=64))
steps = 40 if FAST else 1000
print(tr(f"{model.num_params():,} 个参数；训练 {steps} 步，每步 32 个样本", f"{model.num_params():,} parameters; training {steps} steps of 32 examples"))
start = time.perf_counter()
losses = train_lm(model, data, steps, batch_size=32, lr=3e-3, min_lr=3e-4, warmup=50, weight_decay=0.0,
                  loss_fn=loss_fn, log_every=steps // 4)
train_seconds = time.perf_counter() - start
print(tr(f"训练用时 {train_seconds:.0f} 秒", f"trained in {train_seconds:.0f} s"))
record(four_job_params=model.num_params(), four_job_steps=steps, four_job_seconds=train_seconds)
""")

md(zh=r"""
### 推理 (inference)：提示词进，答案出

原文的推理过程（§2.3）：预处理（编码提示词），预测（模型一次又一次地选最可能的下一个字符——贪心解码 (greedy decoding)，
`temperature=0`），后处理（解码编号，遇到换行就停）。我们按**精确匹配** (exact match) 打分：整个答案逐字符完全正确。
""", en=r"""
### Inference: prompt in, answer out

The article's inference pipeline (§2.3): preprocess (encode the prompt), predict (the model
picks the most likely next character, again and again — greedy decoding, `temperature=0`),
and postprocess (decode the ids, stop at the newline). We score **exact match**: the whole
answer right, character for character.
""")

code(r"""
from tinyllm.generate import generate

def answer(prompt, max_new_tokens=30):
    ids = np.array([tokenizer.encode("\n" + prompt)])
    out = generate(model, ids, max_new_tokens, temperature=0, stop_tokens=[NEWLINE])
    return tokenizer.decode(out[0, ids.shape[1]:].tolist()).rstrip("\n")

accuracy, shown = {}, []
for task in TASKS:
    outputs = [(prompt, answer(prompt), want) for prompt, want in test[task]]
    accuracy[task] = float(np.mean([got == want for _, got, want in outputs]))
    print(tr(f"{JOB[task]}：精确匹配 {accuracy[task]:.0%}", f"{JOB[task]:>11}: {accuracy[task]:.0%} exact match"))
    shown += [(task, *o) for o in outputs[:2]] + [(task, *o) for o in outputs if o[1] != o[2]][:1]

header = tr("| 工作 | 提示词（训练中从未出现） | 模型的答案 | |", "| job | prompt (never seen in training) | model's answer | |")
rows = "\n".join(f"| {JOB[task]} | `{p}` | `{got}` | {'✓' if got == want else tr('✗ 应为 `', '✗ want `') + want + '`'} |"
                 for task, p, got, want in shown)
display(Markdown(header + "\n|---|---|---|---|\n" + rows))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 2.8))
ax1.plot(losses, lw=0.7)
ax1.set(xlabel=tr("步数", "step"), ylabel=tr("答案词元上的损失", "loss on answer tokens"), yscale="log", title=tr("训练", "training"))
ax2.bar([JOB[t] for t in TASKS], [accuracy[t] for t in TASKS], color="tab:green")
for i, t in enumerate(TASKS):
    ax2.text(i, accuracy[t] + 0.02, f"{accuracy[t]:.0%}", ha="center")
ax2.set(ylim=(0, 1.12), ylabel=tr("精确匹配", "exact match"), title=tr(f"没见过的提示词（每种 {n_test} 个）", f"unseen prompts ({n_test} per job)"))
fig.tight_layout(); plt.show()
hardest = min(TASKS, key=accuracy.get)
record(n_test=n_test, mean_accuracy=float(np.mean(list(accuracy.values()))), hardest_job=JOB[hardest],
       hardest_accuracy=accuracy[hardest], **{f"acc_{t}": accuracy[t] for t in TASKS})
""", alt=(
    "两幅图。左：训练中答案词元上的损失随步数稳步下降（对数纵轴），共下降了几个数量级。右："
    "四种工作（翻译、摘要、对话、代码）在训练中没见过的提示词上的精确匹配率，各一根绿色柱子："
    "平均 {{mean_accuracy:.0%}}，"
    "最低的是{{hardest_job}}（{{hardest_accuracy:.0%}}）。",
    "Two panels. Left: the loss on answer tokens falls steadily over the training steps, by several "
    "orders of magnitude (log scale). Right: one green bar per job (translation, summary, chat, code) "
    "giving the exact match on prompts never seen in training: {{mean_accuracy:.0%}} on average, lowest "
    "for {{hardest_job}} ({{hardest_accuracy:.0%}})."))

md(zh=r"""
**这说明了什么，没说明什么。** 一个约 {{four_job_params:,}} 个参数的网络，训练 {{four_job_seconds:.0f}} 秒，用同一个目标做四种不同的工作：
在每种 {{n_test}} 个没见过的提示词上，精确匹配的平均比例是 {{mean_accuracy:.0%}}（翻译 {{acc_translate:.0%}}、摘要 {{acc_summarize:.0%}}、
对话 {{acc_chat:.0%}}、代码 {{acc_code:.0%}}）。它把提示词里的名字和数字抄进答案，调整词序，也常常能让法文形容词与一个它从没见过
与之搭配的名词保持一致。最难的是{{hardest_job}}（{{hardest_accuracy:.0%}}；见表里的 ✗ 行）。

它没有说明模型理解了语言：每个提示词都出自少数几个模板，词汇只有几十个词。真正的 LLM 的翻译、摘要、对话和代码来自同一个配方——
一个预测下一个词元的 Transformer——只是参数多了大约 $10^{6}$ 倍，训练文本多了大约 $10^{7}$ 倍。本章余下的部分测量这种规模的代价。
""", en=r"""
**What this shows, and what it does not.** A network of about {{four_job_params:,}} parameters, trained for
{{four_job_seconds:.0f}} seconds, does four different jobs from a single objective: on {{n_test}} unseen prompts per job its
exact match averages {{mean_accuracy:.0%}} (translation {{acc_translate:.0%}}, summary {{acc_summarize:.0%}}, chat {{acc_chat:.0%}},
code {{acc_code:.0%}}). It copies names and digits from the prompt into the answer, reorders words,
and often makes the French adjective agree with a noun it has never seen paired with that
adjective. The hardest job was {{hardest_job}} ({{hardest_accuracy:.0%}}; the ✗ rows of the table).

It does not show language understanding: every prompt follows one of a handful of templates,
with a vocabulary of a few dozen words. A real LLM's translation, summaries, dialogue and code
come from the same recipe — a Transformer predicting the next token — applied with roughly
$10^{6}$ times more parameters and $10^{7}$ times more training text. The rest of the chapter
measures what that scale costs.
""")

# ============================================================================ 1.2
md(zh=r"""
## 1.2 计算资源需求的挑战

> 随着 LLM 模型规模和复杂性的不断增长，其训练和推理过程对计算资源的需求也急剧攀升。

“计算资源” (compute resources) 有三个可以测量的部分：一步做多少**算术**（FLOPs，浮点运算次数），在某台机器上花多少**时间**，
需要多少**内存**。我们在一族只有宽度 $C$（`n_embd`）不同的 GPT 上测量这三者，其余全部固定：$L = 4$ 层，$H = 4$ 个头，
上下文 $T = 64$ 个字符，每批 $B = 12$ 个序列，词表 (vocabulary) $V = 65$ 个字符（Tiny Shakespeare 的）。这是 nanoGPT 在 CPU 上训练 Shakespeare 的设置。

### 数参数

每个 Transformer 块有注意力的投影 $W_{qkv}$（$3C \times C$）和 $W_o$（$C \times C$），以及 MLP 的 $C \to 4C \to C$：共 $12C^2$ 个权重，
外加 $13C$ 个偏置 (biases) 和层归一化 (layer normalization) 的增益 (gains)。加上词元表（$V \times C$，与输出层共享）和最后的层归一化，不算位置表（nanoGPT 的约定）时参数个数为

$$ N = L\,(12C^2 + 13C) + VC + 2C \;\approx\; 12\,L\,C^2 \quad \text{（$C$ 很大时）}. $$
""", en=r"""
## 1.2 计算资源需求的挑战 — What it costs

> 随着 LLM 模型规模和复杂性的不断增长，其训练和推理过程对计算资源的需求也急剧攀升。
> (As LLMs grow in size and complexity, the compute their training and inference need
> climbs steeply.)

"Compute" has three measurable parts: the **arithmetic** a step performs (FLOPs, floating-point
operations), the **time** it takes on a given machine, and the **memory** it needs. We measure
all three on a family of GPTs that differ only in width $C$ (`n_embd`), with everything else
fixed: $L = 4$ layers, $H = 4$ heads, context $T = 64$ characters, batches of $B = 12$
sequences, a vocabulary of $V = 65$ characters (Tiny Shakespeare's). These are nanoGPT's
Shakespeare-on-a-CPU settings.

### Counting parameters

Each Transformer block holds the attention projections $W_{qkv}$ ($3C \times C$) and $W_o$
($C \times C$) and the MLP's $C \to 4C \to C$: $12C^2$ weights, plus $13C$ biases and
LayerNorm gains. With the token table ($V \times C$, shared with the output layer) and the
final LayerNorm, the parameter count without the position table (nanoGPT's convention) is

$$ N = L\,(12C^2 + 13C) + VC + 2C \;\approx\; 12\,L\,C^2 \quad \text{for large } C. $$
""")

code(r"""
L, H, T, B, V = 4, 4, 64, 12, 65
WIDTHS = [16, 32, 64, 128] if FAST else [16, 32, 64, 128, 256, 384]

def config(width):
    return GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=H, n_embd=width)

def n_params_formula(c):
    return L * (12 * c * c + 13 * c) + V * c + 2 * c

for c in WIDTHS:
    model = GPT(config(c))
    print(f"C = {c:>3}:  N = {model.num_params():>9,}   {tr('公式', 'formula')} {n_params_formula(c):>9,}   "
          f"12·L·C² = {12 * L * c * c:>9,}")
""")

md(zh=r"""
### FLOPs：检验 6N 规则

前向 (forward) 时每个权重 $w$ 对每个词元参与一次乘加（$2$ 次浮点运算）；反向 (backward) 时参与两次：一次为该层的输入算梯度，一次为 $w$ 自己算梯度（$4$ 次）。
注意力还要算 $QK^\top$ 和 $PV$，它们不含权重，但随上下文长度增长。每个词元的前向加反向（Kaplan 等，2020；nanoGPT 的
`estimate_mfu`，沿用 PaLM 论文）：

$$ C_\text{token} = 6N + 12\,L\,H\,Q\,T, \qquad Q = C/H \text{（头的宽度）}, \qquad
   C_\text{step} = C_\text{token} \cdot B \cdot T . $$

用 $6N \approx 72\,L\,C^2$ 近似时，注意力项相对于 $6N$ 约为 $\dfrac{12\,L\,C\,T}{72\,L\,C^2} = \dfrac{T}{6C}$：
对我们这些窄模型和 64 字符的上下文来说很大，对 GPT-3（$C = 12288$，$T = 2048$）只有 3%。下面会看到这个近似在窄模型上偏多少。

`tinyllm.compress.gpt_training_flops_per_step` 计算 $C_\text{step}$。`FlopCounter` 负责检验：它盯着前向和反向中真正执行的每一次矩阵乘法
（线性层、`@`、融合的注意力），对每个 $(m \times k)(k \times n)$ 乘积加上 $2mkn$。它数的是乘积，不读硬件计数器；
逐元素的运算（softmax、GELU、层归一化、优化器）不算在内，和规则一样。
""", en=r"""
### FLOPs: the 6N rule, checked

Every weight $w$ takes part in one multiply-add per token on the way forward ($2$ FLOPs), and
in two on the way back: one for the gradient of the layer's input, one for the gradient of
$w$ itself ($4$ FLOPs). Attention adds the products $QK^\top$ and $PV$, which involve no
weights but grow with the context. Per token, forward plus backward (Kaplan et al., 2020;
nanoGPT's `estimate_mfu`, after the PaLM paper):

$$ C_\text{token} = 6N + 12\,L\,H\,Q\,T, \qquad Q = C/H \text{ (head size)}, \qquad
   C_\text{step} = C_\text{token} \cdot B \cdot T . $$

With $6N \approx 72\,L\,C^2$, the attention term relative to $6N$ is about
$\dfrac{12\,L\,C\,T}{72\,L\,C^2} = \dfrac{T}{6C}$: large for our narrow models with their
64-character context, small for GPT-3 ($C = 12288$, $T = 2048$: 3 %). We will see below how far
that approximation is off for narrow models.

`tinyllm.compress.gpt_training_flops_per_step` computes $C_\text{step}$. `FlopCounter`
checks it: it watches every matrix product that actually runs in a forward and backward pass
(linear layers, `@`, the fused attention) and adds $2mkn$ for each $(m \times k)(k \times n)$
product. It counts products, it does not read hardware counters; element-wise work (softmax,
GELU, LayerNorm, the optimizer) is left out, as in the rule.
""")

code(r"""
from tinyllm.compress import FlopCounter, gpt_training_flops_per_step

batch_rng = np.random.default_rng(0)
x_ids, y_ids = batch_rng.integers(0, V, (B, T)), batch_rng.integers(0, V, (B, T))

results = []
for c in WIDTHS:
    tl.manual_seed(0)
    model = GPT(config(c))
    N = model.num_params()
    with FlopCounter() as counter:
        _, loss = model(tl.Tensor(x_ids), tl.Tensor(y_ids))
        loss.backward()
    results.append(dict(C=c, N=N, rule_6N=6 * N * B * T,
                        formula=gpt_training_flops_per_step(model.config, N, B),
                        counted=counter.total, forward=counter.forward, backward=counter.backward))

print(f"{'C':>4} {'N':>10} {'6N·BT':>12} {'6N+attn':>12} {tr('实数', 'counted'):>12} {tr('实数/公式', 'counted/formula'):>16} "
      f"{tr('反向/前向', 'backward/forward'):>17}")
for r in results:
    print(f"{r['C']:>4} {r['N']:>10,} {r['rule_6N']:>12.3e} {r['formula']:>12.3e} {r['counted']:>12.3e} "
          f"{r['counted'] / r['formula']:>16.3f} {r['backward'] / r['forward']:>17.2f}")
small, wide = results[0], results[-1]
ratios = [r["counted"] / r["formula"] for r in results]
record(small_C=small["C"], wide_C=wide["C"], small_N=small["N"], wide_N=wide["N"],
       attn_share_small=(small["formula"] - small["rule_6N"]) / small["rule_6N"],
       attn_share_wide=(wide["formula"] - wide["rule_6N"]) / wide["rule_6N"],
       approx_share_small=T / (6 * small["C"]), approx_share_wide=T / (6 * wide["C"]),
       rule_of_count_small=small["rule_6N"] / small["counted"],
       ratio_min=min(ratios), ratio_max=max(ratios),
       backward_forward=float(np.mean([r["backward"] / r["forward"] for r in results])),
       flops_growth=wide["formula"] / small["formula"])
""")

code(r"""
Ns = np.array([r["N"] for r in results]); Cs = np.array([r["C"] for r in results])
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.2))
ax1.loglog(Ns, [r["counted"] for r in results], "o", ms=7, label=tr("实数（FlopCounter）", "counted (FlopCounter)"))
ax1.loglog(Ns, [r["formula"] for r in results], "-", label=r"$(6N + 12LHQT)\,BT$")
ax1.loglog(Ns, [r["rule_6N"] for r in results], "--", label=r"$6N \cdot BT$")
ax1.set(xlabel=tr("参数 N", "parameters N"), ylabel=tr("每个训练步的 FLOPs", "FLOPs per training step"),
        title=tr("一步的算术量", "arithmetic of one step"))
ax1.legend()
ax2.semilogx(Ns, [r["counted"] / r["rule_6N"] for r in results], "o-", label=tr("实数 / 6N·BT", "counted / 6N·BT"))
ax2.semilogx(Ns, 1 + T / (6 * Cs), "k:", label=r"$1 + T/(6C)$")
ax2.semilogx(Ns, [r["counted"] / r["formula"] for r in results], "s-", label=tr("实数 / (6N + 注意力)·BT", "counted / (6N + attention)·BT"))
ax2.axhline(1, color="grey", lw=0.5)
ax2.set(xlabel=tr("参数 N", "parameters N"), ylabel=tr("比值", "ratio"), title=tr("规则有多准？", "how good is the rule?"))
ax2.legend()
fig.tight_layout(); plt.show()
""", alt=(
    "两幅以六个 GPT 的参数量 N 为横轴的对数图。左："
    "FlopCounter 数出来的每个训练步的 FLOPs（圆点）、公式 (6N + 12LHQT)·BT（实线）和 6N·BT 规则（虚线）；"
    "每个规模的圆点都落在实线上，虚线在小模型处低于圆点。右："
    "实数与 6N·BT 之比在最小的模型上明显大于 1，随 N 增大降向 1，"
    "接近点线所示的近似 1 + T/(6C)；"
    "实数与完整公式之比始终接近 1（从 {{ratio_min:.3f}} 到 {{ratio_max:.3f}}）。",
    "Two log-log panels against the parameter count N of six GPTs. Left: FLOPs per training step as "
    "counted by FlopCounter (dots), the formula (6N + 12LHQT)·BT (solid line) and the rule 6N·BT (dashed "
    "line); the dots lie on the solid line at every size, and the dashed line falls below them for the "
    "small models. Right: the ratio counted / 6N·BT starts well above 1 for the smallest model and falls "
    "towards 1 as N grows, close to the dotted approximation 1 + T/(6C); the ratio to the full formula "
    "stays near 1 (from {{ratio_min:.3f}} to {{ratio_max:.3f}})."))

md(zh=r"""
从表和图里读出三件事：

* **反向传播 (backpropagation) 的开销是前向的两倍**（表的最后一列，平均 {{backward_forward:.2f}}），这就是 6 = 2 + 4 的来历。
* **只用 $6N$ 会低估小模型**：$C = {{small_C}}$ 时，注意力项在 $6N$ 之上再加 {{attn_share_small:.0%}}（近似式 $T/6C$ 给出
  {{approx_share_small:.0%}}：它用 $12LC^2$ 代替了真实的 $N$，而窄模型的 $N$ 里嵌入 (embedding) 表和偏置占了不小的份额）；到 $C = {{wide_C}}$ 时只加
  {{attn_share_wide:.0%}}（近似式：{{approx_share_wide:.0%}}）。换句话说，对最小的模型，$6N \cdot BT$ 只有实际数出来的 FLOPs 的
  {{rule_of_count_small:.0%}}。完整公式 $(6N + 12LHQT)\,BT$ 对每种尺寸都与实数相差不到几个百分点（实数/公式在 {{ratio_min:.3f}} 到 {{ratio_max:.3f}} 之间）。
* **规则略微多算**（比值略小于 1）：$N$ 里包括偏置和层归一化的增益，它们不参与矩阵乘法。它们的份额大约是每块 $13/(12C)$，随宽度增加而缩小。

### 时间：这台机器上每一步的秒数

FLOPs 是模型的属性；秒数是模型*和*机器共同的属性。我们给完整的训练步（前向、反向、AdamW 更新）计时，然后相除：

$$ \text{实际 FLOP/s} = \frac{C_\text{step}}{t_\text{step}}, \qquad
   \text{MFU} = \frac{C_\text{step} / t_\text{step}}{\text{峰值 FLOP/s}} , $$

其中 MFU（模型算力利用率，model FLOPs utilization）与硬件能达到的最好水平相比。峰值用这台机器上一个大的 float32 矩阵乘法的速度
（`matmul_peak_flops`）来测。
""", en=r"""
Three things to read off:

* **The backward pass costs twice the forward** (the last column of the table, {{backward_forward:.2f}} on
  average), which is where the 6 = 2 + 4 comes from.
* **$6N$ alone underestimates small models**: for $C = {{small_C}}$ attention adds {{attn_share_small:.0%}} on top of
  $6N$ (the approximation $T/6C$ says {{approx_share_small:.0%}}: it puts $12LC^2$ in place of the real $N$, in
  which the embedding table and biases weigh a lot for narrow models); by $C = {{wide_C}}$ it adds
  {{attn_share_wide:.0%}} (approximation: {{approx_share_wide:.0%}}). Put the other way round, for the smallest model
  $6N \cdot BT$ is only {{rule_of_count_small:.0%}} of the FLOPs actually counted. The full formula
  $(6N + 12LHQT)\,BT$ is within a few per cent of the count for every size (counted/formula
  from {{ratio_min:.3f}} to {{ratio_max:.3f}}).
* **The rule slightly over-counts** (ratio just below 1): $N$ includes biases and LayerNorm
  gains, which do no matrix products. Their share, $\approx 13/(12C)$ per block, shrinks as
  the model widens.

### Time: seconds per step on this machine

FLOPs are a property of the model; seconds are a property of the model *and* the machine.
We time whole training steps (forward, backward, AdamW update) and divide:

$$ \text{achieved FLOP/s} = \frac{C_\text{step}}{t_\text{step}}, \qquad
   \text{MFU} = \frac{C_\text{step} / t_\text{step}}{\text{peak FLOP/s}} , $$

where MFU (model FLOPs utilisation) compares with the best the hardware can do. For the peak
we measure the machine's speed on one large float32 matrix product (`matmul_peak_flops`).
""")

code(r"""
from tinyllm import backend
from tinyllm.compress import matmul_peak_flops
from tinyllm.optim import AdamW, param_groups


def seconds_per_step(width, device="cpu", repeats=3):
    # Median wall-clock seconds of a full training step (after one warm-up step).
    tl.manual_seed(0)
    model = GPT(config(width)).to(device)
    optimizer = AdamW(param_groups(model.named_parameters(), 0.1, decay_embeddings=True), lr=1e-3)
    x, y = tl.Tensor(x_ids, device=device), tl.Tensor(y_ids, device=device)
    sync = backend.get_device(device).synchronize        # a GPU runs asynchronously: wait for it
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


load = os.getloadavg()[0]
print(tr(f"负载均值 {load:.1f}（超过 {os.cpu_count()} 说明有别的任务在分享这些核，下面的时间会偏长）",
         f"load average {load:.1f} (above {os.cpu_count()} means other jobs share the cores and the "
         f"times below are inflated)"))
# The peak is measured between the timings too, and the best one kept: on a shared machine a
# single measurement can catch a busy moment.
peaks = [matmul_peak_flops(n=1024 if FAST else 2048, repeats=3)]
for r in results:
    r["seconds"] = seconds_per_step(r["C"], repeats=1 if FAST else 3)
    peaks.append(matmul_peak_flops(n=1024 if FAST else 2048, repeats=3))
peak = max(peaks)
print(tr(f"这台机器的峰值（float32 矩阵乘法，{os.environ['OPENBLAS_NUM_THREADS']} 个 BLAS 线程，{len(peaks)} 次测量中最好的）：{peak / 1e9:.1f} GFLOP/s",
         f"peak of this machine (float32 matrix product, {os.environ['OPENBLAS_NUM_THREADS']} BLAS thread, best of "
         f"{len(peaks)} measurements): {peak / 1e9:.1f} GFLOP/s"))
for r in results:
    r["flops_per_s"] = r["formula"] / r["seconds"]
    print(f"C = {r['C']:>3}  N = {r['N']:>9,}:  {r['seconds'] * 1e3:7.1f} ms/step  "
          f"{r['flops_per_s'] / 1e9:5.1f} GFLOP/s  MFU {r['flops_per_s'] / peak:5.1%}  "
          f"{B * T / r['seconds']:8,.0f} tokens/s")
big = next(r for r in results if r["C"] == 128)
print(tr(f"\nC = 128 对 C = 16：FLOPs 是 {big['formula'] / results[0]['formula']:.0f} 倍，时间是 {big['seconds'] / results[0]['seconds']:.1f} 倍",
         f"\nC = 128 against C = 16: {big['formula'] / results[0]['formula']:.0f}x the FLOPs, "
         f"{big['seconds'] / results[0]['seconds']:.1f}x the time"))
mfus = [r["flops_per_s"] / peak for r in results]
record(load=load, peak_gflops=peak / 1e9, big_N=big["N"], big_flops_ratio=big["formula"] / results[0]["formula"],
       big_time_ratio=big["seconds"] / results[0]["seconds"], mfu_small=mfus[0], mfu_best=max(mfus),
       mfu_best_C=results[int(np.argmax(mfus))]["C"])
""")

code(r"""
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.2))
flops = np.array([r["formula"] for r in results]); secs = np.array([r["seconds"] for r in results])
ax1.loglog(flops, secs, "o-", label=tr("实测", "measured"))
ax1.loglog(flops, flops / peak, "k--", label=tr("按矩阵乘法峰值", "at the matmul peak"))
ax1.set(xlabel=tr("每个训练步的 FLOPs", "FLOPs per training step"), ylabel=tr("每步秒数", "seconds per step"),
        title=tr("时间与工作量", "time against work"))
ax1.legend()
ax2.semilogx(Ns, secs / secs[0], "o-", label=tr("每步时间", "time per step"))
ax2.semilogx(Ns, flops / flops[0], "s--", label=tr("每步 FLOPs", "FLOPs per step"))
ax2.set(xlabel=tr("参数 N", "parameters N"), ylabel=tr(f"相对于 C = {WIDTHS[0]}", f"relative to C = {WIDTHS[0]}"), yscale="log",
        title=tr("随规模增长", "growth with size"))
ax2.legend()
fig.tight_layout(); plt.show()
""", alt=(
    "两幅对数图。左：每个训练步的实测秒数对每步 FLOPs（连线的圆点），"
    "以及按矩阵乘法峰值所需的时间（虚线）；小模型远在虚线之上，随着工作量增大，实测曲线向虚线靠拢。"
    "右：以最小的模型为 1，每步时间和每步 FLOPs 随参数量 N 的增长；"
    "FLOPs 比时间增长得快得多，因为小模型的一步主要花在开销上，而不是算术上。",
    "Two log-log panels. Left: measured seconds per training step against FLOPs per step (dots joined by "
    "a line), with the time the matmul peak would need (dashed line); the small models lie far above the "
    "dashed line, and the measured curve comes closer to it as the work grows. Right: time per step and "
    "FLOPs per step relative to the smallest model, against the parameter count N; the FLOPs grow much "
    "faster than the time, because a small model's step is mostly overhead, not arithmetic."))

md(zh=r"""
小模型离虚线很远：$C = 128$ 的模型（{{big_N:,}} 个参数）一步的算术量是 $C = 16$ 的 {{big_flops_ratio:.0f}} 倍，时间却只是
{{big_time_ratio:.1f}} 倍（上面打印的最后一行）。小模型的时间花在 Python 上，花在启动数百个很小的 NumPy 运算上，每个都小到无法让处理器忙起来——
这是*开销*，不是算术。模型变宽后，矩阵乘积变大，开销被摊薄，实测时间逐渐与 FLOPs 成正比（对数图上曲线的斜率趋于 1），MFU 上升：
最小的模型是 {{mfu_small:.0%}}，最好的（$C = {{mfu_best_C}}$）是 {{mfu_best:.0%}}。大模型就处在这个区间里，所以 FLOPs 是衡量训练成本的标准单位。
（这台机器是共享的：计时开始时负载均值是 {{load:.1f}}，而它只有 {{run_cores}} 个核；几步的计时带着这种噪声。）

### 内存

用 AdamW 训练一个有 $P$ 个 float32 参数的模型，要同时保留四类数组：

$$ M \;=\; \underbrace{4P}_{\text{权重}} + \underbrace{4P}_{\text{梯度}}
      + \underbrace{8P}_{\text{AdamW 的 } m,\,v} + \underbrace{4A}_{\text{激活值}} \quad \text{字节}, $$

其中 $A$ 是前向传播为反向传播保留下来的数的个数，即**激活值** (activations)。在 tinyllm 的 GPT 里，设 $n = BT$ 行
（逐个数组的计数见 `tinyllm/compress/memory.py`），

$$ A = L\,(25\,nC + B H T^2) + 4\,nC + 2\,nV . $$

前三项由模型决定；激活值随批大小增长，并（通过 $T^2$）随上下文增长。`training_memory_estimate` 计算这个公式，
`measure_training_memory` 实际跑一步，记录 NumPy 真正分配了多少（`tracemalloc`）。
""", en=r"""
The small models are far from the dashed line: a step of the $C = 128$ model ({{big_N:,}} parameters)
does {{big_flops_ratio:.0f}} times the arithmetic of the $C = 16$ one but takes only {{big_time_ratio:.1f}} times as long
(the last line printed above). A small model's time goes into Python and into launching
hundreds of small NumPy operations, each too small to keep the processor busy — *overhead*,
not arithmetic. As the model widens, the matrix products grow, the overhead is amortised, and
the measured time approaches proportionality to FLOPs (the curve's slope tends to 1 on the
log-log plot) while MFU rises: {{mfu_small:.0%}} for the smallest model, {{mfu_best:.0%}} at best ($C = {{mfu_best_C}}$).
Large models live in that regime, which is why the FLOP count is the standard unit of
training cost. (This machine is shared: the load average was {{load:.1f}} on its {{run_cores}} cores when
the timing began; timings of a few steps carry that noise.)

### Memory

Training a model of $P$ float32 parameters with AdamW keeps four kinds of arrays alive:

$$ M \;=\; \underbrace{4P}_{\text{weights}} + \underbrace{4P}_{\text{gradients}}
      + \underbrace{8P}_{\text{AdamW } m,\,v} + \underbrace{4A}_{\text{activations}} \quad \text{bytes,} $$

where $A$ counts the numbers the forward pass keeps for the backward. In tinyllm's GPT, with
$n = BT$ rows (see `tinyllm/compress/memory.py` for the count, array by array),

$$ A = L\,(25\,nC + B H T^2) + 4\,nC + 2\,nV . $$

The first three terms are fixed by the model; the activations grow with the batch and (through
$T^2$) with the context. `training_memory_estimate` evaluates the formula,
`measure_training_memory` runs a step and records what NumPy really allocates (`tracemalloc`).
""")

code(r"""
from tinyllm.compress import measure_training_memory, training_memory_estimate

for r in results:
    tl.manual_seed(0)
    model = GPT(config(r["C"]))
    optimizer = AdamW(param_groups(model.named_parameters(), 0.1, decay_embeddings=True), lr=1e-3)
    x, y = tl.Tensor(x_ids), tl.Tensor(y_ids)
    r["memory"] = measure_training_memory(model, lambda: model(x, y)[1], optimizer)
    r["estimate"] = training_memory_estimate(model, B)

print(f"{'C':>4} {tr('权重', 'weights'):>9} {tr('梯度', 'grads'):>9} {'AdamW':>9} {tr('激活值', 'activations'):>12} "
      f"{tr('（估计）', '(estimated)'):>12} {tr('合计', 'sum'):>9}   MB")
for r in results:
    m, e = r["memory"], r["estimate"]
    total = m["parameters"] + m["gradients"] + m["optimizer_state"] + m["activations"]
    r["memory_total"] = total
    print(f"{r['C']:>4} {m['parameters'] / 1e6:>9.2f} {m['gradients'] / 1e6:>9.2f} {m['optimizer_state'] / 1e6:>9.2f} "
          f"{m['activations'] / 1e6:>12.2f} {e['activations'] / 1e6:>12.2f} {total / 1e6:>9.2f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.2), gridspec_kw={"width_ratios": [1.4, 1]})
labels = [f"C={r['C']}\n{r['N'] / 1e6:.2f} M" for r in results]
bottom = np.zeros(len(results))
for key, name in [("parameters", tr("权重", "weights")), ("gradients", tr("梯度", "gradients")),
                  ("optimizer_state", tr("AdamW 的 m, v", "AdamW m, v")), ("activations", tr("激活值", "activations"))]:
    share = np.array([r["memory"][key] / r["memory_total"] for r in results])
    ax1.bar(labels, share, bottom=bottom, label=name)
    bottom += share
ax1.set(ylabel=tr("占一步内存的比例", "share of the step's memory"), ylim=(0, 1),
        title=tr(f"内存里装的是什么（B={B}，T={T}）", f"what the memory holds (B={B}, T={T})"))
ax1.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.2))
ax2.loglog(Ns, [r["memory_total"] / 1e6 for r in results], "o", ms=7, label=tr("实测", "measured"))
ax2.loglog(Ns, [r["estimate"]["total"] / 1e6 for r in results], "-", label=tr("公式", "formula"))
ax2.loglog(Ns, 16 * Ns / 1e6, "--", label=tr("16 N 字节（不含激活值）", "16 N bytes (no activations)"))
ax2.set(xlabel=tr("参数 N", "parameters N"), ylabel="MB", title=tr("合计", "total"))
ax2.legend(fontsize=8)
fig.tight_layout(); plt.show()
activation_error = max(abs(r["estimate"]["activations"] / r["memory"]["activations"] - 1) for r in results)
record(activation_error=activation_error,
       act_share_small=results[0]["memory"]["activations"] / results[0]["memory_total"],
       act_share_wide=results[-1]["memory"]["activations"] / results[-1]["memory_total"])
""", alt=(
    "两幅图。左：每种模型宽度（从 C=16 到 C=384）一根堆叠柱，"
    "把一个训练步的内存分成权重、梯度、AdamW 的两个矩和激活值；"
    "窄模型的柱子几乎全是激活值（C=16 时 {{act_share_small:.0%}}），"
    "随着权重、梯度和优化器状态变大，"
    "C=384 时降到 {{act_share_wide:.0%}}。右："
    "一步的总内存（MB）随参数量 N 的变化（对数坐标）：实测值（圆点）落在公式（实线）上，"
    "不含激活值的 16 N 字节（虚线）在小模型处远低于实测，模型越大越接近。",
    "Two panels. Left: one stacked bar per model width, from C=16 to C=384, splitting the memory of a "
    "training step into weights, gradients, the AdamW moments and activations; activations fill almost "
    "all of the narrow models' bars ({{act_share_small:.0%}} at C=16) and shrink to "
    "{{act_share_wide:.0%}} at C=384 as weights, gradients and optimizer state grow. Right: the step's "
    "total memory in MB against the parameter count N (log-log): the measurement (dots) lies on the "
    "formula (solid line), while 16 N bytes without activations (dashed line) lies far below for small "
    "models and closes in for larger ones."))

md(zh=r"""
激活值的公式与实测相差不超过 {{activation_error:.1%}}（表中两列）。在这个批大小下，小模型的内存**以激活值为主**
（$C = {{small_C}}$ 时占 {{act_share_small:.0%}}；激活值随 $nC$ 和 $BHT^2$ 增长，而权重随 $C^2$ 增长）；随着宽度增加，
权重、梯度和优化器的两个矩——合计 $16P$ 字节——逐渐追上：$C = {{wide_C}}$ 时激活值占 {{act_share_wide:.0%}}，再宽得多的模型里这 $16P$ 字节就成了大头。
对数十亿参数的模型，光这 $16P$ 字节就超过任何一块加速器的显存 (accelerator memory)，这是 LLM 要在许多设备上同时训练的第一个原因：
原文说的**高昂的硬件成本** (hardware cost)。

### 从这里到 GPT-3

上面检验过的规则给出在 $D$ 个词元上训练的总成本：$C_\text{train} \approx 6ND$（在 GPT-3 的宽度下注意力的份额很小）。
GPT-3（Brown 等，2020）有 $N = 175 \times 10^9$ 个参数，在 $D = 300 \times 10^9$ 个词元上训练；论文报告的是 $3.14 \times 10^{23}$ FLOPs。
用*我们实测*的速度：
""", en=r"""
The activation formula and the measurement agree to within {{activation_error:.1%}} (the two columns of the
table). At this batch size the **activations dominate** small models ({{act_share_small:.0%}} at $C = {{small_C}}$;
they scale with $nC$ and $BHT^2$, while the weights scale with $C^2$); as the width grows,
weights, gradients and the optimizer's two moments — $16P$ bytes together — catch up: the
activations are {{act_share_wide:.0%}} at $C = {{wide_C}}$, and the minor part for any model much wider. For a
model with billions of parameters those $16P$ bytes alone exceed any single accelerator's
memory, which is the first reason LLMs are trained on many devices at once: the article's
**高昂的硬件成本** (high hardware cost).

### From here to GPT-3

The rule checked above gives the whole cost of training on $D$ tokens:
$C_\text{train} \approx 6ND$ (attention's share is small at GPT-3's width). GPT-3 (Brown et
al., 2020) has $N = 175 \times 10^9$ parameters and was trained on $D = 300 \times 10^9$
tokens; the paper reports $3.14 \times 10^{23}$ FLOPs. With *our measured* speed:
""")

code(r"""
N_gpt3, D_gpt3 = 175e9, 300e9
C_gpt3 = 6 * N_gpt3 * D_gpt3
best = max(r["flops_per_s"] for r in results)          # our fastest measured training rate
years = C_gpt3 / best / (3600 * 24 * 365)
years_at_peak = C_gpt3 / peak / (3600 * 24 * 365)
print(tr(f"6·N·D = {C_gpt3:.2e} FLOPs（GPT-3 论文：3.14e23）", f"6·N·D = {C_gpt3:.2e} FLOPs (the GPT-3 paper: 3.14e23)"))
print(tr(f"按这台机器实测的最快速度 {best / 1e9:.1f} GFLOP/s：{years:,.0f} 年",
         f"at {best / 1e9:.1f} GFLOP/s, this machine's best measured rate: {years:,.0f} years"))
print(tr(f"按这台机器的矩阵乘法峰值（{peak / 1e9:.1f} GFLOP/s）：{years_at_peak:,.0f} 年",
         f"at this machine's matmul peak ({peak / 1e9:.1f} GFLOP/s): {years_at_peak:,.0f} years"))
print(tr(f"权重 + 梯度 + AdamW 状态：16 字节 × N = {16 * N_gpt3 / 1e12:.1f} TB（还没算激活值）",
         f"weights + gradients + AdamW state: 16 bytes × N = {16 * N_gpt3 / 1e12:.1f} TB (before activations)"))
budget_tokens = best * 3600 / (6 * wide["N"])          # exercise 5: one hour of the widest model at our best rate
record(gpt3_flops=C_gpt3, best_gflops=best / 1e9, gpt3_years=years, gpt3_years_peak=years_at_peak, gpt3_tb=16 * N_gpt3 / 1e12,
       budget_tokens=budget_tokens, budget_passes=budget_tokens / 1_115_394)   # Tiny Shakespeare's characters

# The same training step, on a GPU if this machine has one (CuPy + CUDA); nothing is quoted otherwise.
device = "cuda" if tl.cuda_available() else "cpu"
if device == "cuda":
    for c in WIDTHS:
        print(f"GPU, C = {c}: {seconds_per_step(c, device='cuda') * 1e3:.1f} ms/step")
else:
    print(tr("这台机器没有 GPU：同样的 seconds_per_step(width, device='cuda') 在有 GPU 的机器上原样可用",
             "no GPU on this machine: the same seconds_per_step(width, device='cuda') runs there, unchanged"))
""")

md(zh=r"""
在这台机器上要 {{gpt3_years:,.0f}} 年（即使一直跑在矩阵乘法峰值上也要 {{gpt3_years_peak:,.0f}} 年）：这就是原文说的**训练时间** (training time)
挑战，也是真正的 LLM 要用成千上万块加速器训练数周的原因。到了 GPU 上算术并不会变便宜——FLOPs 数还是同一个数——只是做得更快、更并行，
代价是硬件和能源。**能源消耗** (energy consumption) 直接由此而来：能量 = 功率 × 时间，$E = P_\text{瓦} \cdot t$；我们在这里测不到这台机器的功耗，
但你给 $P_\text{瓦}$ 填入的任何数都要乘以上面的时间。（有 GPU 时，`python -m tinyllm bench --device cuda` 把 tinyllm 和 PyTorch 并排计时；
`docs/compute.md` 收集了本项目在 CPU 上测到的数字。）

## 动手试试

1. **更长的上下文。** 在成本单元里令 `T = 256`，重新数 FLOPs。*预期：* 注意力的份额大约变为原来的 4 倍
   （近似式 $T/6C$：$C = 64$ 时从 $64/384 \approx 17\%$ 变为 $256/384 \approx 67\%$），实数仍与完整公式相差几个百分点以内；
   激活值内存的增长超过词元数的 4 倍，对窄模型更明显，因为它们的 $BHT^2$ 项（注意力权重 (attention weights)，变为 16 倍）占比最大。
2. **批大小加倍。** 令 `B = 24`。*预期：* 每步 FLOPs 正好加倍；大模型每步时间大约加倍（小模型不到两倍，因为每步的开销不变）；
   权重、梯度和 AdamW 的内存不变，激活值加倍。
3. **在全部位置上训练。** 在 `AnswerOnlyBatches` 里给每个位置都打分：把目标那一行换成 `self.y[i, :len(ids) - 1] = ids[1:]`。
   *预期：* 同样 {{four_job_steps}} 步，损失现在主要衡量模型猜随机提示词的本事；需要抄数字的工作受害最重（模型学到数字不可预测，就不再抄它们），
   摘要和对话影响不大。
4. **把模型变大。** 用 `n_embd=96, n_layer=3` 训练四种工作的模型。*预期：* 没见过的名词-颜色组合的翻译和代码答案会变好；
   每一步的 FLOPs 大约是原来的 3 倍（$6N$，$N$ 约大 3 倍），训练时间也相应变长。
5. **你自己的预算。** 用上面测到的 FLOP/s，一小时能让 {{wide_N:,}} 个参数的模型训练多少个词元？
   （*预期：* $D = \text{FLOP/s} \times 3600 / (6N)$——按这次测到的最快速度约 {{budget_tokens:.1e}} 个词元，相当于把 Tiny Shakespeare 的 111.5 万个字符过 {{budget_passes:.1f}} 遍。）
6. **用采样代替贪心解码来回答。** `answer()` 每次都取最可能的字符。写一个核采样 (nucleus sampling) 函数，在 `answer()` 里用它，
   看精确匹配怎样变化（*预期：* 下降，因为采样偶尔会选到不那么可能的字符，而一个字符错了整个答案就错了）。
   """ + assignment_task("a7_sampling_kv_cache", "top_p")["zh"] + r"""
""", en=r"""
{{gpt3_years:,.0f}} years on this machine ({{gpt3_years_peak:,.0f}} years even at its matmul peak): that is the
article's **训练时间** (training time) challenge, and the reason real LLMs are trained on
thousands of accelerators for weeks. The arithmetic does not get cheaper on a GPU — the FLOP
count is the same number — it gets done faster, in parallel, at a cost in hardware and
energy. **能源消耗** (energy consumption) follows directly: energy is power × time,
$E = P_\text{watts} \cdot t$; we cannot measure this machine's power draw here, but any number
you put in for $P_\text{watts}$ multiplies the time above. (`python -m tinyllm bench --device
cuda` times tinyllm and PyTorch on a GPU side by side, when you have one; `docs/compute.md`
collects the project's measured CPU figures.)

## Try it

1. **Longer context.** Set `T = 256` in the cost cell and rerun the FLOP count. *Expected:*
   the attention share roughly quadruples (by the approximation $T/6C$, for $C = 64$ from
   $64/384 \approx 17\,\%$ to $256/384 \approx 67\,\%$), the counted FLOPs still match the full
   formula within a few per cent, and the activation memory grows more than fourfold, most for
   the narrow models, whose $BHT^2$ term (the attention weights, sixteenfold) matters most.
2. **Double the batch.** Set `B = 24`. *Expected:* FLOPs per step double exactly; time per step
   roughly doubles for the large models (less than that for the small ones, whose overhead per
   step stays the same); weights, gradients and AdamW memory do not change, activations double.
3. **Train on everything.** In `AnswerOnlyBatches`, score every position: replace the target
   line by `self.y[i, :len(ids) - 1] = ids[1:]`. *Expected:* at the same {{four_job_steps}} steps the loss
   now mostly measures how well the model guesses random prompts, and the jobs that copy
   digits suffer most (the model learns that digits are unpredictable and stops copying
   them); summaries and chat are barely affected.
4. **Make it bigger.** Train the four-job model with `n_embd=96, n_layer=3`. *Expected:* the
   translation of unseen noun–colour pairs and the code answers improve; each step costs about
   three times as many FLOPs ($6N$ with $N$ ≈ 3× larger), and the training takes correspondingly
   longer.
5. **Your own budget.** With the FLOP/s measured above, how many tokens could you train the
   {{wide_N:,}}-parameter model on in one hour? (*Expected:* $D = \text{FLOP/s} \times 3600 / (6N)$ — at this
   run's best measured rate about {{budget_tokens:.1e}} tokens, {{budget_passes:.1f}} passes over Tiny Shakespeare's
   1,115,394 characters.)
6. **Answer by sampling instead of greedily.** `answer()` always takes the most likely
   character. Write nucleus sampling, use it in `answer()`, and see how the exact match changes
   (*expected:* it drops: sampling now and then picks a less likely character, and one wrong
   character spoils the whole answer). """ + assignment_task("a7_sampling_kv_cache", "top_p")["en"] + r"""
""")

code(r"""
#zh: 练习 6 的起始代码（作业 a7_sampling_kv_cache，任务 7.2）：从 logits (V,) 里抽一个编号
#en: Exercise 6, starter (assignment a7_sampling_kv_cache, task 7.2): sample one id from logits (V,)
def sample_top_p(logits, p, rng):
    #zh: softmax；从大到小排序；保留概率之和 ≥ p 的最短前缀；
    #en: softmax; sort descending; keep the smallest prefix whose probabilities sum to ≥ p;
    #zh: 重新归一化；用 rng.choice 抽一个下标；以 int 返回
    #en: renormalise; draw one index with rng.choice; return it as an int
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def check_sample_top_p():
    rng = np.random.default_rng(0)
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    counts = np.bincount([sample_top_p(logits, 0.75, rng) for _ in range(4000)], minlength=4) / 4000
    #zh: p = 0.75 保留前两个词元（0.5 + 0.3 ≥ 0.75），重新归一化为 0.625 和 0.375
    #en: p = 0.75 keeps the first two tokens (0.5 + 0.3 ≥ 0.75), renormalised to 0.625 and 0.375
    print(tr("正确 ✓", "correct ✓") if np.allclose(counts, [0.625, 0.375, 0, 0], atol=0.03) else tr("还不对 ✗", "not yet ✗"), counts)

# check_sample_top_p()
""")

md(zh=r"""
## 小结

| 原文 | 我们测到的 |
|---|---|
| LLMs 是一种基于深度学习的自然语言处理模型，能够处理和生成人类语言 | 一个只被训练来预测下一个字符的 GPT |
| 用途：机器翻译、文本摘要、对话生成、代码生成 | 一个 {{four_job_params:,}} 参数的模型在没见过的提示词上做了这四种工作的玩具版本，精确匹配平均 {{mean_accuracy:.0%}} |
| 对计算资源的需求也急剧攀升 | 每个词元每步的 FLOPs 按 $6N + 12LHQT$ 增长，`FlopCounter` 证实误差在几个百分点内；宽 {{wide_C}} 的模型一步的 FLOPs 是宽 {{small_C}} 的 {{flops_growth:.0f}} 倍，每步时间逐渐与 FLOPs 成正比 |
| 训练时间（数周甚至数月） | 按这台机器实测的速度，GPT-3 的 $6ND$ 需要 {{gpt3_years:,.0f}} 年 |
| 高昂的硬件成本 | 训练内存是 $16P$ 字节加激活值，公式与实测一致；GPT-3 的 1750 亿参数不算激活值就要 {{gpt3_tb:.1f}} TB |
| 能源消耗 | 这里没有测：能量 = 功率 × 上面的时间 |

第 2 章打开这个盒子：Transformer 架构，以及上面用到的训练和推理流程。第 8 章回到成本：损失怎样随计算量下降。
""", en=r"""
## Summary

| the article says | what we measured |
|---|---|
| LLMs 是一种基于深度学习的自然语言处理模型，能够处理和生成人类语言 (deep-learning models that process and generate language) | a GPT trained only to predict the next character |
| uses: 机器翻译, 文本摘要, 对话生成, 代码生成 | one {{four_job_params:,}}-parameter model does toy versions of all four on unseen prompts, {{mean_accuracy:.0%}} exact match on average |
| 对计算资源的需求也急剧攀升 (compute climbs steeply with size) | FLOPs per step grow as $6N + 12LHQT$ per token, which `FlopCounter` confirms within a few per cent; the {{wide_C}}-wide model needs {{flops_growth:.0f}}× the FLOPs of the {{small_C}}-wide one, and its time per step approaches proportionality to them |
| 训练时间 (weeks or months) | GPT-3's $6ND$ at this machine's measured rate is {{gpt3_years:,.0f}} years |
| 高昂的硬件成本 (hardware cost) | training memory is $16P$ bytes plus activations, formula and measurement agreeing; {{gpt3_tb:.1f}} TB for GPT-3's 175 B parameters before activations |
| 能源消耗 (energy) | not measured here: energy = power × the time above |

Chapter 2 opens the box: the Transformer architecture, and the training and inference
pipelines used above. Chapter 8 returns to cost: how the loss falls as compute grows.
""")

ch.index(builds=("一个小 GPT 做原文的四种用途（翻译、摘要、对话、代码）；六个 GPT（{{small_N:,}} → {{wide_N:,}} 个参数）的成本表："
                 "数出来的 FLOPs 对 6N + 注意力、时间、MFU、内存；外推到 GPT-3",
                 "one tiny GPT doing the article's four uses (translation, summary, chat, code) on a toy corpus; a cost "
                 "meter over six GPTs ({{small_N:,}} → {{wide_N:,}} parameters): FLOPs counted vs 6N + attention, time, "
                 "MFU, memory; the extrapolation to GPT-3"),
         figures=("四种工作平均精确匹配 {{mean_accuracy:.0%}}；实数/公式 {{ratio_min:.3f}} → {{ratio_max:.3f}}；最小模型上 6N 只有实数的 "
                  "{{rule_of_count_small:.0%}}（注意力加 {{attn_share_small:.0%}}）；激活值公式误差 ≤ {{activation_error:.1%}}；GPT-3 在这台机器上 "
                  "{{gpt3_years:,.0f}} 年",
                  "four jobs {{mean_accuracy:.0%}} exact match on average; counted/formula {{ratio_min:.3f}} → "
                  "{{ratio_max:.3f}}; for the smallest model 6N is {{rule_of_count_small:.0%}} of the count (attention adds "
                  "{{attn_share_small:.0%}}); activation formula within {{activation_error:.1%}}; GPT-3 on this machine "
                  "{{gpt3_years:,.0f}} years"))

if __name__ == "__main__":
    ch.build()
