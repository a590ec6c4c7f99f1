"""Build chapters/01_background.ipynb (seed § 1): write the cells, execute them (full mode),
save the notebook with its outputs.

    python chapters/build/ch01_background.py            # ~1.5 min on 2 idle cores
    python chapters/build/ch01_background.py --fast     # TINYLLM_FAST=1 check, to /tmp
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Notebook  # noqa: E402

nb = Notebook()
md, code = nb.md, nb.code

# ============================================================================ title
md(r"""
# 1 · 背景介绍 — Background

> *Seed §1.* **1.1 人工智能与大语言模型的兴起** (the rise of AI and large language models):
> LLMs 是一种基于深度学习的自然语言处理模型，能够处理和生成人类语言 — LLMs are deep-learning
> models of natural language that process and generate human language — with four uses named:
> **机器翻译** (machine translation), **文本摘要** (text summarization), **对话生成** (dialogue
> generation), **代码生成** (code generation).
>
> **1.2 计算资源需求的挑战** (the challenge of compute demands): as models grow, training and
> inference need ever more compute — **高昂的硬件成本** (high hardware cost), **能源消耗**
> (energy consumption), **训练时间** (training time of weeks or months).

The seed states both halves of its background as facts. This chapter turns each into a
measurement you can rerun.

**What you will build**

1. **One tiny model, four jobs** (§1.1). A decoder-only Transformer (a GPT, 100 k parameters)
   trained for about a minute on a toy corpus that mixes the seed's four uses: translating
   English phrases into French, summarizing three-sentence stories, answering a chat message,
   writing a line of Python from an instruction. One model, one objective — predict the next
   character — and we measure how often it gets each job exactly right on prompts it never saw.
2. **A cost meter** (§1.2). Six GPTs from 14 thousand to 7 million parameters: for each, the
   floating-point operations (FLOPs) of a training step, counted op by op and predicted by the
   **6N rule**; the seconds per step on this machine; the memory of weights, gradients,
   optimizer state and activations. All plotted against model size.
3. **An extrapolation** from those measurements to a real LLM (GPT-3), using nothing but the
   formula checked in step 2 and the speed measured on this machine.

*Run time:* about 1.5 minutes on 2 CPU cores (full run). With `TINYLLM_FAST=1` (what CI
does) the same cells run with far fewer steps in about 10 seconds, and the accuracies are
then meaningless.
""")

code(r"""
import os, sys, time, math, random
FAST = os.environ.get("TINYLLM_FAST") == "1"   # CI sets this: fewer steps, same cells
# The matrices here are small: one BLAS thread is about as fast as two, and much faster on a
# busy shared machine. (Read when NumPy loads, so it comes first; set the variables yourself
# to override.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1"); os.environ.setdefault("OMP_NUM_THREADS", "1")
try:
    import tinyllm
except ImportError:                            # run from chapters/ without the repo on the path
    sys.path.insert(0, os.path.abspath(".."))
    import tinyllm

import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
%matplotlib inline
plt.rcParams.update({"figure.dpi": 85, "font.size": 9})

import tinyllm as tl
from tinyllm.models import GPT, GPTConfig

tl.manual_seed(0)
print(f"tinyllm {tl.__version__} · numpy {np.__version__} · FAST={FAST}")
print(f"this machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} "
      f"(above {os.cpu_count()} means other jobs share the cores and times below are inflated), "
      f"BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}")
""")

# ============================================================================ 1.1
md(r"""
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

| seed term | our toy job | example prompt → answer |
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
print(f"\n{len(train_pairs)} training pairs; {n_test} test prompts per job, none of them seen in training "
      f"(translation: {len(HELD_OUT)} of {len(NOUNS) * len(COLORS)} noun-colour pairs never trained on)")
""")

md(r"""
### Preprocessing: characters to ids

The seed's pipeline (§2.2, chapter 2) starts with 分词 (tokenization). Here the simplest
tokenizer will do: one token per character. `"\n"` starts every example and ends every
answer, so the model learns where an answer stops.
""")

code(r"""
from tinyllm.data import CharTokenizer

tokenizer = CharTokenizer.from_text("\n".join(p + a for p, a in train_pairs) + "\n0123456789")
NEWLINE = tokenizer.encode("\n")[0]
print(f"vocabulary: {tokenizer.vocab_size} characters")
print("'code: add 2 and 5 =' ->", tokenizer.encode("code: add 2 and 5 ="))
""")

md(r"""
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
print("input :", repr(tokenizer.decode(x[0][x[0] > 0].tolist())))
print("target:", repr(tokenizer.decode(y[0][y[0] >= 0].tolist())), "(only these positions are scored)")
""")

md(r"""
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
print(f"{model.num_params():,} parameters; training {steps} steps of 32 examples")
start = time.perf_counter()
losses = train_lm(model, data, steps, batch_size=32, lr=3e-3, min_lr=3e-4, warmup=50, weight_decay=0.0,
                  loss_fn=loss_fn, log_every=steps // 4)
train_seconds = time.perf_counter() - start
print(f"trained in {train_seconds:.0f} s")
""")

md(r"""
### Inference: prompt in, answer out

The seed's inference pipeline (§2.3): preprocess (encode the prompt), predict (the model picks
the most likely next character, again and again — greedy decoding, `temperature=0`), and
postprocess (decode the ids, stop at the newline). We score **exact match**: the whole answer
right, character for character.
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
    accuracy[task] = np.mean([got == want for _, got, want in outputs])
    print(f"{task:>9}: {accuracy[task]:.0%} exact match")
    shown += [(task, *o) for o in outputs[:2]] + [(task, *o) for o in outputs if o[1] != o[2]][:1]

rows = "\n".join(f"| {task} | `{p}` | `{got}` | {'✓' if got == want else '✗ want `' + want + '`'} |"
                 for task, p, got, want in shown)
display(Markdown("| job | prompt (never seen in training) | model's answer | |\n|---|---|---|---|\n" + rows))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 2.8))
ax1.plot(losses, lw=0.7)
ax1.set(xlabel="step", ylabel="loss on answer tokens", yscale="log", title="training")
ax2.bar(TASKS, [accuracy[t] for t in TASKS], color="tab:green")
for i, t in enumerate(TASKS):
    ax2.text(i, accuracy[t] + 0.02, f"{accuracy[t]:.0%}", ha="center")
ax2.set(ylim=(0, 1.12), ylabel="exact match", title=f"unseen prompts ({n_test} per job)")
fig.tight_layout(); plt.show()
""")

md(r"""
**What this shows, and what it does not.** A network of about 100 thousand parameters,
trained for about a minute, does four different jobs from a single objective; it got most
unseen prompts exactly right (the chart above; a fast CI run trains too briefly to get
any). It copies names and digits from the prompt into the answer, reorders words, and mostly
makes the French adjective agree with a noun it has never seen paired with that adjective.
In the full run, that translation of unseen noun–colour pairs was the hardest of the four
jobs (the ✗ rows of the table).

It does not show language understanding: every prompt follows one of a handful of templates,
with a vocabulary of a few dozen words. A real LLM's translation, summaries, dialogue and code
come from the same recipe — a Transformer predicting the next token — applied with roughly
$10^{6}$ times more parameters and $10^{7}$ times more training text. The rest of the chapter
measures what that scale costs.
""")

# ============================================================================ 1.2
md(r"""
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
    print(f"C = {c:>3}:  N = {model.num_params():>9,}   formula {n_params_formula(c):>9,}   "
          f"12·L·C² = {12 * L * c * c:>9,}")
""")

md(r"""
### FLOPs: the 6N rule, checked

Every weight $w$ takes part in one multiply-add per token on the way forward ($2$ FLOPs), and
in two on the way back: one for the gradient of the layer's input, one for the gradient of
$w$ itself ($4$ FLOPs). Attention adds the products $QK^\top$ and $PV$, which involve no
weights but grow with the context. Per token, forward plus backward (Kaplan et al., 2020;
nanoGPT's `estimate_mfu`, after the PaLM paper):

$$ C_\text{token} = 6N + 12\,L\,H\,Q\,T, \qquad Q = C/H \text{ (head size)}, \qquad
   C_\text{step} = C_\text{token} \cdot B \cdot T . $$

The attention term relative to $6N \approx 72\,L\,C^2$ is about $\dfrac{12\,L\,C\,T}{72\,L\,C^2} =
\dfrac{T}{6C}$: large for our narrow models with their 64-character context, small for GPT-3
($C = 12288$, $T = 2048$: 3 %).

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

print(f"{'C':>4} {'N':>10} {'6N·BT':>12} {'6N+attn':>12} {'counted':>12} {'counted/formula':>16} {'backward/forward':>17}")
for r in results:
    print(f"{r['C']:>4} {r['N']:>10,} {r['rule_6N']:>12.3e} {r['formula']:>12.3e} {r['counted']:>12.3e} "
          f"{r['counted'] / r['formula']:>16.3f} {r['backward'] / r['forward']:>17.2f}")
""")

code(r"""
Ns = np.array([r["N"] for r in results]); Cs = np.array([r["C"] for r in results])
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.2))
ax1.loglog(Ns, [r["counted"] for r in results], "o", ms=7, label="counted (FlopCounter)")
ax1.loglog(Ns, [r["formula"] for r in results], "-", label=r"$(6N + 12LHQT)\,BT$")
ax1.loglog(Ns, [r["rule_6N"] for r in results], "--", label=r"$6N \cdot BT$ alone")
ax1.set(xlabel="parameters N", ylabel="FLOPs per training step", title="arithmetic of one step")
ax1.legend()
ax2.semilogx(Ns, [r["counted"] / r["rule_6N"] for r in results], "o-", label="counted / 6N·BT")
ax2.semilogx(Ns, 1 + T / (6 * Cs), "k:", label=r"$1 + T/(6C)$ (attention's share)")
ax2.semilogx(Ns, [r["counted"] / r["formula"] for r in results], "s-", label="counted / (6N + attention)·BT")
ax2.axhline(1, color="grey", lw=0.5)
ax2.set(xlabel="parameters N", ylabel="ratio", title="how good is the rule?")
ax2.legend()
fig.tight_layout(); plt.show()
""")

md(r"""
Three things to read off:

* **The backward pass costs twice the forward** (the last column of the table: 2.00), which
  is where the 6 = 2 + 4 comes from.
* **$6N$ alone underestimates small models**: for $C = 16$ attention adds $T/6C \approx 67\,\%$
  on top; by $C = 384$ it is 3 %. The full formula $(6N + 12LHQT)\,BT$ is within a few per
  cent of the count for every size.
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


peak = matmul_peak_flops(n=1024 if FAST else 2048, repeats=3)
print(f"peak of this machine (float32 matrix product, {os.environ['OPENBLAS_NUM_THREADS']} BLAS thread): "
      f"{peak / 1e9:.1f} GFLOP/s")
for r in results:
    r["seconds"] = seconds_per_step(r["C"], repeats=1 if FAST else 3)
    r["flops_per_s"] = r["formula"] / r["seconds"]
    print(f"C = {r['C']:>3}  N = {r['N']:>9,}:  {r['seconds'] * 1e3:7.1f} ms/step  "
          f"{r['flops_per_s'] / 1e9:5.1f} GFLOP/s  MFU {r['flops_per_s'] / peak:5.1%}  "
          f"{B * T / r['seconds']:8,.0f} tokens/s")
big = next(r for r in results if r["C"] == 128)
print(f"\nC = 128 against C = 16: {big['formula'] / results[0]['formula']:.0f}x the FLOPs, "
      f"{big['seconds'] / results[0]['seconds']:.1f}x the time")
""")

code(r"""
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.2))
flops = np.array([r["formula"] for r in results]); secs = np.array([r["seconds"] for r in results])
ax1.loglog(flops, secs, "o-", label="measured")
ax1.loglog(flops, flops / peak, "k--", label="at the matmul peak")
ax1.set(xlabel="FLOPs per training step", ylabel="seconds per step", title="time against work")
ax1.legend()
ax2.semilogx(Ns, secs / secs[0], "o-", label="time per step")
ax2.semilogx(Ns, flops / flops[0], "s--", label="FLOPs per step")
ax2.set(xlabel="parameters N", ylabel=f"relative to C = {WIDTHS[0]}", yscale="log", title="growth with size")
ax2.legend()
fig.tight_layout(); plt.show()
""")

md(r"""
The small models are far from the dashed line: a step of the 14 k-parameter model does about
forty times less arithmetic than one of the 800 k model but takes only five or six times less
time (the last line printed above). Its time goes into Python and into launching hundreds of small NumPy operations, each
too small to keep the processor busy — *overhead*, not arithmetic. As the model widens,
the matrix products grow, the overhead is amortised, and the measured time approaches
proportionality to FLOPs (the curve's slope tends to 1 on the log-log plot, MFU rises). Large
models live in that regime, which is why the FLOP count is the standard unit of training cost.
(The widest model's MFU can dip again: this machine is shared, and timings of a few steps
carry that noise.)

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

print(f"{'C':>4} {'weights':>9} {'grads':>9} {'AdamW':>9} {'activations':>12} {'(estimated)':>12} {'sum':>9}   MB")
for r in results:
    m, e = r["memory"], r["estimate"]
    total = m["parameters"] + m["gradients"] + m["optimizer_state"] + m["activations"]
    r["memory_total"] = total
    print(f"{r['C']:>4} {m['parameters'] / 1e6:>9.2f} {m['gradients'] / 1e6:>9.2f} {m['optimizer_state'] / 1e6:>9.2f} "
          f"{m['activations'] / 1e6:>12.2f} {e['activations'] / 1e6:>12.2f} {total / 1e6:>9.2f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.2), gridspec_kw={"width_ratios": [1.4, 1]})
labels = [f"C={r['C']}\n{r['N'] / 1e6:.2f} M" for r in results]
bottom = np.zeros(len(results))
for key, name in [("parameters", "weights"), ("gradients", "gradients"), ("optimizer_state", "AdamW m, v"),
                  ("activations", "activations")]:
    share = np.array([r["memory"][key] / r["memory_total"] for r in results])
    ax1.bar(labels, share, bottom=bottom, label=name)
    bottom += share
ax1.set(ylabel="share of the step's memory", ylim=(0, 1), title=f"what the memory holds (B={B}, T={T})")
ax1.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.2))
ax2.loglog(Ns, [r["memory_total"] / 1e6 for r in results], "o", ms=7, label="measured")
ax2.loglog(Ns, [r["estimate"]["total"] / 1e6 for r in results], "-", label="formula")
ax2.loglog(Ns, 16 * Ns / 1e6, "--", label="16 N bytes (no activations)")
ax2.set(xlabel="parameters N", ylabel="MB", title="total")
ax2.legend(fontsize=8)
fig.tight_layout(); plt.show()
""")

md(r"""
The formula and the measurement agree to within a few per cent on the activations (the
table). At this batch size the **activations dominate** for small models (they scale with $nC$ and $BHT^2$,
while the weights scale with $C^2$); as the width grows, weights, gradients and the optimizer's
two moments — $16P$ bytes together — catch up: about half of the total at $C = 384$, and the
bulk for any model much wider. For a model with billions of parameters those
$16P$ bytes alone exceed any single accelerator's memory, which is the first reason LLMs are
trained on many devices at once: the seed's **高昂的硬件成本**.

### From here to GPT-3

The rule checked above gives the whole cost of training on $D$ tokens:
$C_\text{train} \approx 6ND$ (attention's share is small at GPT-3's width). GPT-3 (Brown et al., 2020) has
$N = 175 \times 10^9$ parameters and was trained on $D = 300 \times 10^9$ tokens; the paper
reports $3.14 \times 10^{23}$ FLOPs. With *our measured* speed:
""")

code(r"""
N_gpt3, D_gpt3 = 175e9, 300e9
C_gpt3 = 6 * N_gpt3 * D_gpt3
best = max(r["flops_per_s"] for r in results)          # our fastest measured training rate
years = C_gpt3 / best / (3600 * 24 * 365)
print(f"6·N·D = {C_gpt3:.2e} FLOPs (the GPT-3 paper: 3.14e23)")
print(f"at {best / 1e9:.1f} GFLOP/s, this machine's best measured rate: {years:,.0f} years")
print(f"at this machine's matmul peak ({peak / 1e9:.1f} GFLOP/s): {C_gpt3 / peak / (3600 * 24 * 365):,.0f} years")
print(f"weights + gradients + AdamW state: 16 bytes × N = {16 * N_gpt3 / 1e12:.1f} TB (before activations)")

# The same training step, on a GPU if this machine has one (CuPy + CUDA); nothing is quoted otherwise.
device = "cuda" if tl.cuda_available() else "cpu"
if device == "cuda":
    for c in WIDTHS:
        print(f"GPU, C = {c}: {seconds_per_step(c, device='cuda') * 1e3:.1f} ms/step")
else:
    print("no GPU on this machine: the same seconds_per_step(width, device='cuda') runs there, unchanged")
""")

md(r"""
Over a hundred thousand years on this machine: that is the seed's **训练时间** challenge,
and the reason real LLMs are trained on thousands of accelerators for weeks. The arithmetic does
not get cheaper on a GPU — the FLOP count is the same number — it gets done faster, in
parallel, at a cost in hardware and energy. **能源消耗** follows directly: energy is power
× time, $E = P_\text{watts} \cdot t$; we cannot measure this machine's power draw here, but
any number you put in for $P_\text{watts}$ multiplies the time above. (`python -m tinyllm
bench --device cuda` times tinyllm and PyTorch on a GPU side by side, when you have one;
`docs/compute.md` collects the project's measured CPU figures.)

## Try it

1. **Longer context.** Set `T = 256` in the cost cell and rerun the FLOP count. *Expected:*
   the attention share $T/6C$ quadruples (for $C = 64$: from 17 % to 67 %), the counted FLOPs
   still match the full formula within a few per cent, and the activation memory grows more
   than the fourfold of the token count: 5–8× for the narrow models, whose $BHT^2$ term (the
   attention weights, sixteenfold) matters most.
2. **Double the batch.** Set `B = 24`. *Expected:* FLOPs per step double exactly; time per step
   roughly doubles for the large models (less than that for the small ones, whose overhead per
   step stays the same); weights, gradients and AdamW memory do not change, activations double.
3. **Train on everything.** In `AnswerOnlyBatches`, score every position: replace the target
   line by `self.y[i, :len(ids) - 1] = ids[1:]`. *Expected:* at the same 1000 steps the loss
   now mostly measures how well the model guesses random prompts, and the jobs that copy
   digits suffer most: in our run code fell from 100 % to 0 % exact match (the model learned
   that digits are unpredictable and stopped copying them), translation fell by about ten
   points, summaries and chat stayed right.
4. **Make it bigger.** Train the four-job model with `n_embd=96, n_layer=3`. *Expected:* the
   translation of unseen noun–colour pairs and the code answers improve; each step costs about
   three times as many FLOPs ($6N$ with $N$ ≈ 3× larger), and the training takes correspondingly
   longer.
5. **Your own budget.** With the FLOP/s measured above, how many tokens could you train the
   7 M-parameter model on in one hour? (*Expected:* $D = \text{FLOP/s} \times 3600 / (6N)$ — a
   few million tokens, two or three passes over Tiny Shakespeare's 1.1 million characters.)

## Summary

| the seed says | what we measured |
|---|---|
| LLMs are 基于深度学习的自然语言处理模型 that 处理和生成人类语言 | a GPT trained only to predict the next character |
| uses: 机器翻译, 文本摘要, 对话生成, 代码生成 | one 100 k-parameter model does toy versions of all four on unseen prompts; accuracy in the chart above |
| 对计算资源的需求也急剧攀升 (compute climbs steeply with size) | FLOPs per step grow as $6N + 12LHQT$ per token, which `FlopCounter` confirms within a few per cent; the 384-wide model needs over 300× the FLOPs of the 16-wide one, and its time per step approaches proportionality to them |
| 训练时间 (weeks or months) | GPT-3's $6ND$ at this machine's measured rate is over a hundred thousand years |
| 高昂的硬件成本 | training memory is $16P$ bytes plus activations, formula and measurement agreeing; 2.8 TB for GPT-3's 175 B parameters before activations |
| 能源消耗 | not measured here: energy = power × the time above |

Chapter 2 opens the box: the Transformer architecture, and the training and inference
pipelines used above. Chapter 8 returns to cost: how the loss falls as compute grows.
""")

if __name__ == "__main__":
    nb.build("01_background.ipynb")
