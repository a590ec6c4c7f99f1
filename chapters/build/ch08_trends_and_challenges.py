"""Build chapters/08_trends_and_challenges.ipynb (seed § 8): write the cells, execute them
(full mode), save the notebook with its outputs.

    python chapters/build/ch08_trends_and_challenges.py            # ~3 min on 2 idle cores
    python chapters/build/ch08_trends_and_challenges.py --fast     # TINYLLM_FAST=1 check, to /tmp
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Notebook  # noqa: E402

nb = Notebook()
md, code = nb.md, nb.code

# ============================================================================ title
md(r"""
# 8 · 总结：未来发展趋势与挑战 — Trends and challenges

> *Seed §8.* **8.1 未来发展趋势** (future trends): **模型规模进一步扩大** — models keep growing,
> and their performance with them; **多模态 LLM** — multimodal models that take text, images,
> audio; **更强的可解释性和可控性** — more interpretability and controllability.
>
> **8.2 挑战** (challenges): **计算资源需求** (compute), **模型偏差** (bias learned from the
> training data, leading to unfair outputs), **安全风险** (security risks: misuse for false
> information or attacks).

The seed closes with predictions and worries. Some of them can be *measured* on a laptop, and
this chapter measures them; others cannot, and we say so.

**What you will build**

1. **A scaling experiment** (模型规模进一步扩大): six character-level GPTs from 4 thousand to
   800 thousand parameters, trained on the same text with the same batches; their loss
   against parameters and against compute, a power-law fit, and the compute-optimal frontier.
2. **The cost of that trend** (计算资源需求): seconds, tokens per second and FLOP/s of each run on
   this CPU, and the code path that runs the same experiment on a GPU.
3. **A first look inside** (可解释性): attention maps of the largest model, each head's
   behaviour summarised by numbers, and each head's importance measured by removing it.
4. **Multimodal, as an interface** (多模态): an image cut into patches and fed to the same
   Transformer as text tokens (shapes only — nothing is trained).
5. **Bias, measured** (模型偏差): a toy corpus with a controlled occupation–pronoun skew, and the
   model's learned bias against the skew of its data.

*Run time:* about 3 minutes of CPU time (full run), most of it the scaling experiment — 3
minutes on 2 idle cores; the copy you are reading was built on a busy shared machine, where
it took 7. With `TINYLLM_FAST=1` (CI) the same cells run with tiny step counts in well under
a minute.
""")

code(r"""
import os, sys, time, math
FAST = os.environ.get("TINYLLM_FAST") == "1"   # CI sets this: fewer steps, same cells
# Small matrices: one BLAS thread is about as fast as two, and much faster on a busy machine.
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
from tinyllm import backend
from tinyllm.models import GPT, GPTConfig
from tinyllm.optim import AdamW, param_groups, clip_grad_norm_
from tinyllm.optim.schedules import cosine_with_warmup
from tinyllm.compress import gpt_training_flops_per_step
from tinyllm.compress.lm import evaluate_lm

tl.manual_seed(0)
print(f"tinyllm {tl.__version__} · numpy {np.__version__} · FAST={FAST}")
print(f"this machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} "
      f"(above {os.cpu_count()}: shared with other jobs, times inflated), BLAS threads {os.environ['OPENBLAS_NUM_THREADS']}")
""")

# ============================================================================ 8.1 scaling
md(r"""
## 8.1 未来发展趋势 — Trends

### 模型规模进一步扩大 — Bigger models: a scaling experiment

> 随着计算资源的不断提升，LLM 的规模将继续扩大，模型性能也将进一步提升。
> (As compute grows, LLMs will keep growing, and their performance will improve further.)

The seed's first trend rests on an empirical finding: the loss of a language model falls
*predictably* as it grows. Kaplan et al. (2020) found that, with enough data, the test loss
follows a power law in the number of (non-embedding) parameters $N$,

$$ L(N) \approx \left(\frac{N_c}{N}\right)^{\alpha_N}, \qquad \alpha_N \approx 0.076, $$

a straight line on log-log axes; and that the compute of training on $D$ tokens is
$C \approx 6ND$ FLOPs (chapter 1 checked the $6N$ per token). Hoffmann et al. (2022,
"Chinchilla") refined this into $L(N, D) = E + A/N^{\alpha} + B/D^{\beta}$: an irreducible
loss $E$, plus one term that shrinks with model size and one that shrinks with data.

We run the experiment in miniature: six GPTs whose width $C$ and depth grow together, the
same text, the same batches in the same order, the same learning-rate schedule, the same
number of steps. Only the size differs.
""")

code(r"""
from tinyllm.data import CharTokenizer, CausalLMDataset, clean_text, train_val_split
import tinyllm.data as data_module

try:
    text, corpus = data_module.tinyshakespeare(download=False), "Tiny Shakespeare"
except (FileNotFoundError, OSError):             # not on this machine: the corpus shipped in data/
    text, corpus = data_module.load_shipped_corpus(), "Tiny Tales (shipped with tinyllm)"
text = clean_text(text)
tokenizer = CharTokenizer.from_text(text)
ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
train_ids, val_ids = train_val_split(ids, 0.1)
T, B = 64, 16                                    # context length, batch size
train_data, val_data = CausalLMDataset(train_ids, T), CausalLMDataset(val_ids, T)
print(f"{corpus}: {len(text):,} characters, vocabulary {tokenizer.vocab_size}; "
      f"train {len(train_ids):,} / validation {len(val_ids):,}")
""")

md(r"""
The training loop is the trainer's (AdamW, warmup then cosine decay, gradient clipping),
written out so that it can also record, at fixed steps, the validation loss, the FLOPs spent
so far ($C_\text{step}$ times the steps taken) and the seconds spent so far. The `device`
argument is the whole GPU story in code: with CuPy and a GPU, `device="cuda"` runs the same
loop there.
""")

code(r"""
SIZES = [(1, 1, 16), (2, 2, 32), (3, 3, 48), (4, 4, 64), (4, 4, 96), (4, 4, 128)]   # (n_layer, n_head, n_embd)
if FAST:
    SIZES = SIZES[:3]
STEPS = 30 if FAST else 500
EVAL_AT = sorted({0, STEPS} | ({10, 20} if FAST else {25, 50, 100, 150, 200, 300, 400}))
EVAL_BATCHES = 2 if FAST else 10
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
    final = evaluate_lm(model, val_data, B, 4 if FAST else 40)
    return model, dict(config=cfg, N=model.num_params(), flops_per_step=flops_per_step, curve=curve,
                       seconds=seconds, val_loss=final, tokens=steps * B * T)


runs = []
for n_layer, n_head, n_embd in SIZES:
    model, run = train_and_track(n_layer, n_head, n_embd)
    runs.append(run)
    print(f"L={n_layer} H={n_head} C={n_embd:>3}: N = {run['N']:>7,}  val loss {run['val_loss']:.3f}  "
          f"{run['seconds']:5.1f} s  ({run['seconds'] / STEPS * 1e3:.0f} ms/step)", flush=True)
largest = model                                     # kept for the attention maps below
""")

code(r"""
Ns = np.array([r["N"] for r in runs], dtype=float)
final = np.array([r["val_loss"] for r in runs])
alpha, log_c = np.polyfit(np.log(Ns), np.log(final), 1)       # log L = alpha·log N + c, alpha < 0
print(f"fit: L(N) ≈ {np.exp(log_c):.2f} · N^({alpha:.3f})   (α_N = {-alpha:.3f}; Kaplan et al.: 0.076)")
print(f"tokens seen per parameter: " + ", ".join(f"{r['tokens'] / r['N']:.1f}" for r in runs))

fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.3))
ax = axes[0]
ax.loglog(Ns, final, "o", ms=7, label="measured (validation)")
grid = np.logspace(np.log10(Ns.min()) - 0.1, np.log10(Ns.max()) + 0.1, 50)
ax.loglog(grid, np.exp(log_c) * grid ** alpha, "k--", label=rf"fit $\propto N^{{{alpha:.3f}}}$")
ax.set(xlabel="parameters N", ylabel="validation loss (nats/char)", title=f"loss vs size, {STEPS} steps each")
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
frontier = np.full_like(budgets, np.nan)
for r in runs:
    pts = [p for p in r["curve"] if p["step"] > 0]
    logf, vals = np.log([p["flops"] for p in pts]), [p["val_loss"] for p in pts]
    at = np.interp(np.log(budgets), logf, vals, left=np.nan, right=np.nan)
    frontier = np.fmin(frontier, at)
axes[1].plot(budgets, frontier, color="grey", lw=6, alpha=0.35, zorder=0, label="frontier")
axes[1].set(xscale="log", xlabel="training compute so far (FLOPs)", ylabel="validation loss", title="loss vs compute")
axes[1].legend(fontsize=7)
axes[2].set(xscale="log", xlabel="training time so far (s, this CPU)", title="loss vs wall-clock time")
for ax in axes[1:]:
    ax.set_ylim(top=min(4.3, ax.get_ylim()[1]))
fig.tight_layout(); plt.show()
""")

md(r"""
**Reading the three plots.**

* *Left:* at the same number of steps, every larger model reached a lower validation loss,
  and the points lie close to a straight line on log-log axes — a power law, as in the
  scaling-law papers. Our exponent is not Kaplan's $0.076$, and should not be: our models
  were not trained to convergence, they are tiny, the learning rate was not tuned per size, and
  a character-level loss on Shakespeare has a different irreducible part $E$. What carries over
  is the *shape*: steady, predictable returns from size.
* *Middle:* plotted against the compute spent, the curves cross. With a small budget, a small
  model trained for all its steps beats a large model stopped early; the grey **frontier** (the
  best loss at each budget) moves to larger models as the budget grows. This is the
  Chinchilla question — for a given compute $C = 6ND$, how to split it between parameters $N$ and
  tokens $D$ — and the answer Hoffmann et al. found for large models is to grow both together,
  about 20 tokens per parameter. Our runs span from over a hundred tokens per parameter (the
  smallest) to under one (the largest, printed above): the large ones are far from done.
* *Right:* the same curves against seconds on this CPU. Per FLOP the small models run *less*
  efficiently (chapter 1: overhead dominates small steps), so measured in seconds they look
  worse than measured in FLOPs, and the frontier moves to larger models sooner.

This is one seed per size, one learning rate, 500 steps. The differences between neighbouring
sizes (about a tenth of a nat) are much larger than the evaluation noise (40 batches of 1024
characters: about ±0.01), but a careful study would repeat each run with several seeds.

### 计算资源需求 — The cost of the trend, on a CPU and on a GPU
""")

code(r"""
rows = ["| N | FLOPs per step | ms per step | tokens/s | achieved GFLOP/s | total s | final val loss |",
        "|---:|---:|---:|---:|---:|---:|---:|"]
for r in runs:
    per_step = r["seconds"] / STEPS
    rows.append(f"| {r['N']:,} | {r['flops_per_step']:.2e} | {per_step * 1e3:.0f} | {B * T / per_step:,.0f} | "
                f"{r['flops_per_step'] / per_step / 1e9:.1f} | {r['seconds']:.0f} | {r['val_loss']:.3f} |")
display(Markdown("\n".join(rows)))
first, last = runs[0], runs[-1]
print(f"smallest -> largest: {last['N'] / first['N']:.0f}x the parameters, "
      f"{last['flops_per_step'] / first['flops_per_step']:.0f}x the FLOPs per step, "
      f"{last['seconds'] / first['seconds']:.0f}x the seconds")
device = "cuda" if tl.cuda_available() else "cpu"
print(f"GPU available: {tl.cuda_available()}  ->  device = {device!r}")
if device == "cuda":                             # the same experiment, unchanged, on the GPU
    for n_layer, n_head, n_embd in SIZES[-2:]:
        _, gpu_run = train_and_track(n_layer, n_head, n_embd, device="cuda")
        print(f"GPU C={n_embd}: {gpu_run['seconds'] / STEPS * 1e3:.1f} ms/step, val loss {gpu_run['val_loss']:.3f}")
else:
    print("no GPU here, so no GPU numbers: train_and_track(..., device='cuda') is the whole change")
""")

md(r"""
The table is the seed's **计算资源需求** in small. From the smallest model to the largest, the
FLOPs per step grew more than a hundredfold, the seconds per step "only" about twentyfold
(printed under the table): the larger model uses the CPU far more
efficiently (the achieved GFLOP/s column), because its matrix products are big enough to
amortise the per-operation overhead. At the sizes of real LLMs every step is that large, and
time grows in proportion to FLOPs.

On a GPU the same code runs with `device="cuda"` (tinyllm then keeps every array in CuPy). We
have no GPU on this machine, so we quote no GPU numbers. What to expect, and why: a GPU's peak
is far higher than a CPU's, but each of the hundreds of small operations in a tinyllm step
costs a fixed launch overhead from Python, so the *smallest* models gain little or nothing, and
the gain grows with the model — the same overhead story as chapter 1, with a much higher
ceiling. `python -m tinyllm bench --device cuda` measures it, next to PyTorch.

### 更强的可解释性 — Interpretability: a first look inside

> 研究人员将致力于提高 LLM 的可解释性和可控性，使其更加可靠和安全。
> (Researchers will work to make LLMs more interpretable and controllable, so they are more
> reliable and safe.)

The one place a Transformer shows its routing is the attention weights: for each head, the
matrix

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
            ax.set_title(f"head {head}", fontsize=8)
        if head == 0:
            ax.set_ylabel(f"layer {layer}\nquery i", fontsize=8)
fig.suptitle("attention weights A[i, j] (row: the position reading, column: the position read)", fontsize=9)
fig.tight_layout(); plt.show()

# the vertical stripes: positions that many later positions read. Attention received by position j,
# per position that can see it (T - j of them), averaged over the heads of layers 1 and up:
later = np.mean([w for w in list(maps.values())[1:]], axis=(0, 1))          # (T, T)
received = later.sum(axis=0) / np.arange(len(prompt_ids), 0, -1)
top = np.argsort(received)[::-1][:6]
print("most-read positions in layers 1+:", ", ".join(f"{j} {prompt_chars[j]!r}" for j in top))
""")

md(r"""
Pictures invite stories; numbers keep them honest. Three summaries of each head, averaged over
many validation windows:

* **previous-token score** $\frac{1}{T-1}\sum_{i \ge 1} A_{i,\,i-1}$: how much a head reads the
  character just before (1 = always, only that);
* **mean look-back** $\frac{1}{T}\sum_i \sum_j A_{ij}\,(i-j)$: how far back it reads, on average;
* **importance**: how much the validation loss rises when the head is removed (its rows of
  $W_q, W_k, W_v$ and its columns of $W_o$ set to zero; `tinyllm.compress.head_importance`).

The first two describe *where* a head looks; only the third measures whether the model *needs*
what it finds there. An untrained model is the baseline: its heads spread attention nearly
uniformly over the past.
""")

code(r"""
from tinyllm.compress import head_importance


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


n_stat = 2 if FAST else 10
previous, lookback = head_statistics(largest, n_stat)
tl.manual_seed(0)
untrained = GPT(largest.config)
previous0, lookback0 = head_statistics(untrained, n_stat)
print(f"previous-token score, mean over heads: untrained {previous0.mean():.2f}, trained {previous.mean():.2f}; "
      f"best trained head {previous.max():.2f}")
print(f"mean look-back (characters): untrained {lookback0.mean():.1f}, trained {lookback.mean():.1f}")

scores = head_importance(largest, lambda: evaluate_lm(largest, val_data, B, 3 if FAST else 10, seed=4321))
importance = np.zeros((n_layer, n_head))
for (name, head), rise in scores.items():
    importance[int(name.split(".")[2]), head] = rise

fig, axes = plt.subplots(1, 4, figsize=(12, 2.8), gridspec_kw={"width_ratios": [1, 1, 1, 1.2]})
for ax, values, title, cmap in [(axes[0], previous, "previous-token score", "Blues"),
                                (axes[1], lookback, "mean look-back (chars)", "Greens"),
                                (axes[2], importance, "loss rise without the head", "Reds")]:
    im = ax.imshow(values, cmap=cmap)
    for (l, h), v in np.ndenumerate(values):
        ax.text(h, l, f"{v:.2f}" if v < 10 else f"{v:.0f}", ha="center", va="center", fontsize=7)
    ax.set(xlabel="head", ylabel="layer", title=title, xticks=range(n_head), yticks=range(n_layer))
axes[3].scatter(previous.ravel(), importance.ravel(), c=np.repeat(np.arange(n_layer), n_head), cmap="viridis")
axes[3].set(xlabel="previous-token score", ylabel="loss rise without it", title="where it looks vs what it is worth")
fig.tight_layout(); plt.show()
""")

md(r"""
What the numbers say, for this model (a run with another seed may name other heads):

* Training created structure. Untrained, every head spreads its attention almost uniformly over
  the past (previous-token score ≈ 0.06, mean look-back ≈ 16 characters). Trained, the heads of
  layer 0 look close by — two of them put a quarter of their attention on the character just
  before, four times the untrained level: *previous-token heads*, among the first circuits
  found in real Transformers (Olsson et al., 2022). The later layers look further back, with
  the vertical stripes of the maps: many positions reading the same few characters. The
  positions printed under the maps say which: mostly the first characters of the window —
  an *attention sink*, a place where heads park their attention when nothing specific is
  needed (Xiao et al., 2023) — and the line break.
* Ablation ranks the heads differently from the pictures. Removing one of the two
  previous-token heads raises the loss by about a tenth of a nat, the most of any head; the
  sharp-looking stripes of layers 1–3 cost almost nothing each (≤ 0.01): either the other heads
  cover for them, or what they compute is not used much yet. A striking attention pattern is
  not, by itself, evidence that the model *needs* it ("attention is not explanation", Jain &
  Wallace 2019); only an intervention like the ablation says so.

That is the state of **可解释性** in miniature: we can see where information flows, and test
causally what matters, but a full account of *how* even this 800 k-parameter model predicts
the next character is beyond these tools. The research the seed anticipates — mechanistic
interpretability — builds exactly such tests (ablations, activation patching) at scale.

**可控性 — control.** The simplest control knob of any LLM is at sampling time: the
temperature $\tau$ in $p_i \propto \exp(z_i/\tau)$ trades predictability against variety.
""")

code(r"""
from tinyllm.generate import generate_text

for temperature in (0.5, 1.2):
    backend.manual_seed(7)
    sample = generate_text(largest, tokenizer, "\n", 30 if FAST else 160, temperature=temperature)
    print(f"--- temperature {temperature} ---{sample}\n")
""")

md(r"""
Both samples have the *shape* of a play — a speaker's name in capitals and a colon, lines of
about the right length, frequent short words — and neither means anything: the model has
learned (some of) the *form* of its text, with no notion of meaning or truth. At
$\tau = 0.5$ it repeats safe, frequent patterns ("the the"); at $\tau = 1.2$ it invents
more non-words. Real
controllability — making a model follow instructions and refuse harmful ones — is done by
training (instruction tuning, RLHF) and is far beyond a toy; but it acts on the same
next-token distribution you just sampled from.

### 多模态 LLM — Multimodal models, as an interface

A Transformer reads a *sequence of vectors*; nothing in it knows they came from characters.
A multimodal model (ViT for images, Dosovitskiy et al. 2020; LLaVA-style models for images
and text) cuts an image into patches, flattens each patch, and projects it with a learned
matrix to the model's width — the patches become tokens. The cell below does this with the
largest model's blocks and an *untrained* projection: it shows the interface, the shapes,
and nothing else. tinyllm does not train multimodal models.
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
print(f"patches {patches.shape} -> image tokens {image_tokens.shape}; text tokens {text_tokens.shape}; "
      f"through {len(largest.transformer.h)} blocks -> {x.shape}")
""")

# ============================================================================ 8.2
md(r"""
## 8.2 挑战 — Challenges

**计算资源需求 (compute)** is measured above and in chapter 1. The other two:

### 模型偏差 — Bias, measured

> LLM 可能会学习到训练数据中的偏差，导致模型输出不公平或歧视性的结果。
> (LLMs can learn the biases of their training data, producing unfair or discriminatory output.)

To see a model learn a bias in a controlled way, we *generate* the training text
(`tinyllm.compress.bias`): sentences about people in 16 occupations, where each occupation is
given a stereotyped pronoun (arbitrarily: "engineer" → he, "nurse" → she, …) that a sentence
uses with probability $s$, the **skew**:

    the nurse said that she would be late .      (probability s)
    the nurse said that he would be late .       (probability 1 − s)

After the prompt ". the ⟨occupation⟩ said that", the model's next-word probabilities of "he"
and "she", renormalised over the two, give

$$ p_\text{he}(o) = \frac{P(\text{he} \mid o)}{P(\text{he} \mid o) + P(\text{she} \mid o)},
   \qquad \text{bias} = \frac{1}{|O|} \sum_{o \in O} \left| p_\text{he}(o) - p_\text{she}(o) \right|
   = \frac{1}{|O|} \sum_{o} \left| 2\,p_\text{he}(o) - 1 \right| . $$

0 means no preference, 1 certainty. A model that learned its corpus's rates exactly scores
$2s - 1$. We train one small word-level GPT per skew, from the same initial weights.
""")

code(r"""
from tinyllm.compress.bias import make_occupation_corpus, WordTokenizer, bias_score, OCCUPATIONS
from tinyllm.compress.lm import train_lm, small_config

print(make_occupation_corpus(4, skew=0.9, seed=1).replace(" . ", " .\n"))

BIAS_ITERS = 30 if FAST else 1000
SKEWS = [0.5, 0.9] if FAST else [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def train_on_corpus(corpus_text, seed=0):
    words = WordTokenizer.from_text(corpus_text)
    dataset = CausalLMDataset(np.array(words.encode(corpus_text)), 12)
    tl.manual_seed(seed)
    model = GPT(small_config(words.vocab_size, block_size=12, n_layer=2, n_head=2, n_embd=48))
    train_lm(model, dataset, BIAS_ITERS, batch_size=32, lr=3e-3, min_lr=3e-4, warmup=50, weight_decay=0.0, seed=seed)
    return model, words


bias_runs, bias_models = {}, {}
for skew in SKEWS:
    model, words = train_on_corpus(make_occupation_corpus(4000, skew=skew, seed=0))
    bias_models[skew] = (model, words)
    bias_runs[skew] = bias_score(model, words)
    print(f"skew {skew:.1f}: corpus association 2s-1 = {2 * skew - 1:.2f}   learned bias {bias_runs[skew]['bias']:.3f}")
""")

code(r"""
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.2), gridspec_kw={"width_ratios": [1, 1.8]})
ax1.plot([0.5, 1], [0, 1], "k--", lw=1, label="2s − 1 (the data's rate)")
ax1.plot(SKEWS, [bias_runs[s]["bias"] for s in SKEWS], "o-", label="learned bias")
ax1.set(xlabel="skew s of the training corpus", ylabel="bias score", title="the model mirrors its data")
ax1.legend()
skew = 0.9 if 0.9 in bias_runs else SKEWS[-1]
jobs = list(OCCUPATIONS)
p_he = [bias_runs[skew]["per_occupation"][j] for j in jobs]
ax2.bar(jobs, p_he, color=["tab:blue" if OCCUPATIONS[j] == "he" else "tab:orange" for j in jobs])
ax2.axhline(0.5, color="grey", lw=0.8)
ax2.axhline(skew, color="tab:blue", ls=":", lw=1); ax2.axhline(1 - skew, color="tab:orange", ls=":", lw=1)
ax2.set(ylabel="p_he after '… said that'", ylim=(0, 1), title=f"per occupation, skew {skew} (dotted: the corpus rates)")
ax2.tick_params(axis="x", rotation=60)
fig.tight_layout(); plt.show()
""")

md(r"""
Two things to read off:

* **The model mirrors its data.** For every skew the learned score lies close to the
  corpus's $2s - 1$, and each occupation's probability sits on its corpus rate (right plot).
  The model neither exaggerates the association nor softens it.
* **The score has a noise floor.** At skew 0.5 there is nothing to learn, yet the score is
  not 0: each occupation's $p_\text{he}$ wanders randomly around ½ after finite training, and
  the absolute value in the score turns every wander into a positive "bias". Comparing a bias
  score with that of a model trained on balanced data is the honest way to read it.
  (`bias_score` also returns a signed `stereotype` score, the mean of
  $p_\text{stereotyped} - p_\text{other}$, in which the random wanders cancel instead of adding up.)

One caution we learned the hard way: with 300 training steps instead of 1000, the strong
skews were learned but the weak ones hardly at all (skew 0.7 scored 0.19 instead of about
0.4). A model first learns that "he" and "she" are equally frequent *overall*, and only later
which occupation goes with which. **A bias measured on an undertrained model can be far too
optimistic.** (Try it, exercise 5.)

That is exactly the mechanism the seed warns about, and why it is hard: a language model is
*trained* to reproduce the statistics of its text, and a real corpus carries associations
nobody chose — with no generator whose skew we can turn down. Chapter 9 measures the two
remedies the seed names, data augmentation and regularisation.

### 安全风险 — Safety risks

> LLM 可能会被恶意利用，例如生成虚假信息或进行网络攻击。
> (LLMs can be misused, for example to generate false information or for cyberattacks.)

This one we cannot measure with a model that writes pseudo-Shakespeare, and we do not
pretend to. What the samples above do show is the root of the false-information problem: a
language model produces the most *plausible* continuation, not the *true* one, with the same
fluency either way. The defences — refusal training, filtering, red-teaming, watermarking
generated text — are all applied to models far beyond this course's scale.

## Try it

1. **Train longer.** Set `STEPS = 2000` (about four times the run time). *Expected:* every
   loss falls, the large models' most (their curves were still dropping steeply at step 500,
   the small ones had nearly flattened), so the fitted $\alpha_N$ grows; the frontier plot
   extends to larger budgets and larger models own more of it.
2. **Read the frontier.** From the middle plot, which size gives the lowest loss for a budget
   of $10^{11}$ FLOPs, and which for $10^{12}$? *Expected:* a small model for the first (the
   large models have barely started at that budget), a larger one for the second.
3. **Remove the most important head** — `from tinyllm.compress import Pruner`;
   `Pruner.attention_heads(largest, {"transformer.h.L.attn": [h]}).apply()` with the reddest
   cell of the importance map — and re-evaluate the validation loss. *Expected:* it rises by
   about the amount in that cell (the same measurement, on other batches); then remove all
   four heads of layer 0 together and watch the loss rise far more than for any single head:
   one head can stand in for another, a whole layer's heads cannot.
4. **Bias from another template.** With `model, words = bias_models[0.9]`, call
   `bias_score(model, words, template=". the {job} told us that")`. *Expected:* about the same
   score: the association is between occupation and pronoun, whichever sentence frame
   carries it.
5. **Bias and training time.** Set `BIAS_ITERS = 300` and rerun the skew sweep. *Expected:*
   skews 0.9 and 1.0 score about as before; 0.6–0.8 fall far below the diagonal (in our trial
   0.7 scored 0.19, 0.8 scored 0.53): the association is learned late, after the overall
   pronoun frequencies.
6. **Bias and the amount of data.** Train the skew-0.9 model on `make_occupation_corpus(500, 0.9)`
   instead of 4000 sentences. *Expected:* about the same bias: some 30 sentences per
   occupation are plenty to learn a 90/10 association. Less data does not mean less bias.

## Summary

| the seed says | what we measured |
|---|---|
| 模型规模进一步扩大，模型性能也将进一步提升 | at equal steps, loss fell with every size step, close to a power law $L \propto N^{-\alpha}$ (exponent printed above) |
| (and with it) 计算资源需求 | FLOPs per step grew over 100× from the smallest to the largest model, seconds per step about 20× on this CPU (small models waste it on overhead); for a fixed compute budget the best model size depends on the budget (the frontier) |
| 多模态 LLM | the interface only: image patches become tokens for the same blocks (no training) |
| 更强的可解释性和可控性 | attention maps and head statistics show specialised heads (previous-token heads in layer 0); ablation shows that those matter most and the striking later patterns little; temperature as the simplest control |
| 模型偏差 — models learn their data's biases | learned bias ≈ the corpus's $2s - 1$ for every skew, above a small noise floor; weak associations are learned late in training |
| 安全风险 | not measurable at this scale; fluent output without truth is visible in the samples |
""")

if __name__ == "__main__":
    nb.build("08_trends_and_challenges.ipynb")
