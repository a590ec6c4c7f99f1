"""Build chapters/09_faq.ipynb (seed § 9): write the cells, execute them (full mode), save the
notebook with its outputs.

    python chapters/build/ch09_faq.py            # ~5 min on 2 idle cores
    python chapters/build/ch09_faq.py --fast     # TINYLLM_FAST=1 check, to /tmp
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Notebook  # noqa: E402

nb = Notebook()
md, code = nb.md, nb.code

# ============================================================================ title
md(r"""
# 9 · 附录：常见问题与解答 — FAQ

> *Seed §9.* Three questions, three one-line answers:
>
> **Q: 如何选择合适的 LLM？** (How to choose a suitable LLM?)
> A: 选择合适的 LLM 取决于具体的应用场景和需求。需要考虑模型的规模、性能、成本等因素。
> (It depends on the application and its needs: weigh the model's size, performance and cost.)
>
> **Q: 如何降低 LLM 的计算资源需求？** (How to reduce an LLM's compute demands?)
> A: 可以通过模型压缩、模型蒸馏等技术来降低 LLM 的计算资源需求。
> (By model compression, model distillation and similar techniques.)
>
> **Q: 如何解决 LLM 的偏差问题？** (How to address an LLM's bias?)
> A: 可以通过数据增强、模型正则化等技术来解决 LLM 的偏差问题。
> (By data augmentation, model regularisation and similar techniques.)

Each answer names quantities — size, performance, cost; compute saved; bias reduced — without
a number. This chapter puts numbers on all of them, measured on small models you train here.

**What you will build**

1. **A model-choice table** (规模、性能、成本): three GPTs of 30 k, 200 k and 800 k parameters
   trained on the same text; for each, the size in bytes, the validation loss and perplexity,
   the training time per step, the generation speed, the training memory. Then a way to read it.
2. **Compression and distillation, with their trade-offs** (模型压缩、模型蒸馏): int8 quantization
   of the largest model, magnitude pruning from 30 % to 90 % of its weights (with and without a
   short fine-tune), and a 30 k student distilled from it — bytes against loss for every variant.
3. **Bias fixes, measured** (数据增强、模型正则化): on the skewed occupation corpus of chapter 8,
   counterfactual data augmentation in increasing doses, and three regularisers, each with the
   bias score it leaves.

*Run time:* about 5 minutes of CPU time (full run) — 5 minutes on 2 idle cores; the copy you
are reading was built on a busy shared machine, where it took longer. With `TINYLLM_FAST=1`
(CI) the same cells run with tiny step counts in well under a minute; the numbers are then
meaningless.
""")

code(r"""
import os, sys, time, math, copy
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
from tinyllm.compress.lm import LMData, train_lm, evaluate_lm

tl.manual_seed(0)
print(f"tinyllm {tl.__version__} · numpy {np.__version__} · FAST={FAST}")
print(f"this machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} "
      f"(above {os.cpu_count()}: shared with other jobs, times inflated), BLAS threads {os.environ['OPENBLAS_NUM_THREADS']}")
""")

# ============================================================================ Q1
md(r"""
## Q1 · 如何选择合适的 LLM？ — How to choose a model

"Size, performance, cost" become concrete once each is a measured column:

* **size**: parameters $N$, and the bytes of the weights ($4N$ in float32);
* **performance**: validation cross-entropy $\mathcal{L}$ (nats per character) and perplexity
  $\text{PPL} = e^{\mathcal{L}}$ — the number of characters the model is, on average, as
  uncertain as if choosing uniformly among;
* **cost**: training time per step (forward + backward + update, about $6N$ FLOPs per token),
  generation speed in tokens per second (a forward pass per token, about $2N$ FLOPs per token
  with the KV cache), and the memory of a training step ($16N$ bytes of weights, gradients
  and AdamW state, plus activations).

Three models, trained the same way on the same text:
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
T, B = 64, 16
data = LMData(CausalLMDataset(train_ids, T), CausalLMDataset(val_ids, T), tokenizer, T)
print(f"{corpus}: {len(text):,} characters, vocabulary {tokenizer.vocab_size}")

STEPS = 30 if FAST else 500
EVAL_BATCHES = 4 if FAST else 40
SIZES = {"small": (2, 2, 32), "medium": (4, 4, 64), "large": (4, 4, 128)}


def make_config(n_layer, n_head, n_embd):
    return GPTConfig(vocab_size=tokenizer.vocab_size, block_size=T, n_layer=n_layer, n_head=n_head, n_embd=n_embd)


models, train_seconds = {}, {}
for name, shape in SIZES.items():
    tl.manual_seed(1337)
    models[name] = GPT(make_config(*shape))
    start = time.perf_counter()
    train_lm(models[name], data.train, STEPS, batch_size=B, lr=2e-3, min_lr=2e-4, warmup=min(50, STEPS), seed=1337)
    train_seconds[name] = time.perf_counter() - start
    print(f"{name:>6}: N = {models[name].num_params():>7,}, trained {STEPS} steps in {train_seconds[name]:.0f} s", flush=True)
""")

code(r"""
from tinyllm.generate import generate
from tinyllm.compress import model_size_bytes, training_memory_estimate

NEWLINE = tokenizer.encode("\n")[0]
N_NEW = 50 if FAST else 200


def generation_speed(model, n_new=N_NEW):
    # tokens per second of sampling n_new characters (KV cache on), best of two
    best = math.inf
    for _ in range(2):
        start = time.perf_counter()
        generate(model, np.array([[NEWLINE]]), n_new, temperature=1.0, rng=np.random.default_rng(0))
        best = min(best, time.perf_counter() - start)
    return n_new / best


table = {}
for name, model in models.items():
    loss = evaluate_lm(model, data.val, B, EVAL_BATCHES)
    table[name] = dict(N=model.num_params(), bytes=model_size_bytes(model), val_loss=loss, ppl=math.exp(loss),
                       ms_per_step=train_seconds[name] / STEPS * 1e3, gen_tok_s=generation_speed(model),
                       train_mb=training_memory_estimate(model, B)["total"] / 1e6)

rows = ["| model | parameters | weights | val loss | perplexity | train ms/step | generate tokens/s | training memory |",
        "|---|---:|---:|---:|---:|---:|---:|---:|"]
for name, r in table.items():
    rows.append(f"| {name} | {r['N']:,} | {r['bytes'] / 1e6:.2f} MB | {r['val_loss']:.3f} | {r['ppl']:.2f} | "
                f"{r['ms_per_step']:.0f} | {r['gen_tok_s']:,.0f} | {r['train_mb']:.0f} MB |")
display(Markdown("\n".join(rows)))
""")

code(r"""
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.2))
for name, r in table.items():
    ax1.scatter(r["bytes"] / 1e6, r["val_loss"], s=60)
    ax1.annotate(name, (r["bytes"] / 1e6, r["val_loss"]), textcoords="offset points", xytext=(6, 4))
    ax2.scatter(r["gen_tok_s"], r["val_loss"], s=60)
    ax2.annotate(name, (r["gen_tok_s"], r["val_loss"]), textcoords="offset points", xytext=(6, 4))
ax1.set(xscale="log", xlabel="weights (MB, float32)", ylabel="validation loss (lower is better)", title="quality vs size")
ax2.set(xscale="log", xlabel="generation speed (tokens/s, this CPU)", title="quality vs speed")
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
for ax in (ax1, ax2):                      # plain numbers at 1, 2, 5 × 10^k on the log axes
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
fig.tight_layout(); plt.show()
""")

md(r"""
**How to read the table.** No column picks a model by itself; the application sets the
constraints, and the table says which models satisfy them:

* a **quality bar** (say, a loss below some value for the text to be usable) rules out the
  models above it, whatever they cost;
* a **latency or throughput bar** (tokens per second for an interactive tool) and a **memory
  bar** (the device it must run on) rule out the models below it;
* among what is left, the cheapest wins — for serving, cost is paid per generated token, for
  every user, for as long as the model is deployed, and usually dwarfs the training cost.

Here the large model is clearly best in quality and about 27× the bytes of the small one; its
generation is slower by much less than its size ratio, because at these sizes a generation
step is dominated by per-token overhead, not arithmetic (chapter 1). With real LLMs the same
table has billions in the first column and is read the same way. The next question is how to
move a model *down and to the left* in these plots.

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
with $\hat W$.
""")

code(r"""
from tinyllm.compress import quantize_model

large = models["large"]
quantized = quantize_model(copy.deepcopy(large))          # every Linear and Embedding, in place on the copy
variants = {"large, float32": dict(bytes=model_size_bytes(large), val_loss=table["large"]["val_loss"])}
variants["large, int8"] = dict(bytes=model_size_bytes(quantized), val_loss=evaluate_lm(quantized, data.val, B, EVAL_BATCHES))
w = large.transformer.h[0].mlp.c_fc.weight.numpy()
s = np.abs(w).max(axis=1, keepdims=True) / 127
error = np.abs(w - np.round(w / s) * s)
print(f"weights: {variants['large, float32']['bytes'] / 1e6:.2f} MB -> {variants['large, int8']['bytes'] / 1e6:.2f} MB "
      f"({variants['large, float32']['bytes'] / variants['large, int8']['bytes']:.2f}x smaller)")
print(f"validation loss: {variants['large, float32']['val_loss']:.4f} -> {variants['large, int8']['val_loss']:.4f} "
      f"(change {variants['large, int8']['val_loss'] - variants['large, float32']['val_loss']:+.4f})")
print(f"one layer's rounding error: mean {error.mean():.2e}, max {error.max():.2e} (bound s/2: {s.max() / 2:.2e}); "
      f"weights' mean magnitude {np.abs(w).mean():.2e}")
print(f"generation: {table['large']['gen_tok_s']:,.0f} tokens/s float32, {generation_speed(quantized):,.0f} tokens/s int8")
""")

md(r"""
The size fell almost fourfold (a little less: the scales, biases and LayerNorm gains stay in
float32) and the loss barely moved: the rounding error of each weight is far below the
weights' own magnitude, and it averages out over the hundreds of terms of each dot product.
Speed did not improve in any reliable way — the two generation rates above differ by less
than the run-to-run noise of this shared machine (in other runs int8 came out a little
slower) — and it cannot: NumPy has no int8 matrix product, so tinyllm widens the codes back
to float for every product. The saving here is memory, not time.
Hardware with int8 arithmetic (and GPU kernels written for it) turns the same idea into
speed as well.

### Pruning: zeroing the smallest weights

Global magnitude pruning pools all the weights of the Linear layers and zeroes the fraction
$a$ with the smallest magnitude,

$$ m_i = \big[\, |w_i| > \tau \,\big], \qquad \tau = \text{the } aN\text{-th smallest } |w| , \qquad w \leftarrow w \odot m , $$

then (optionally) fine-tunes with the mask re-applied after every step, so the zeros stay.
`sparsity_curve` does both for a list of amounts.
""")

code(r"""
from tinyllm.compress.prune import sparsity_curve, prunable_layers

AMOUNTS = (0.0, 0.5, 0.9) if FAST else (0.0, 0.3, 0.5, 0.7, 0.8, 0.9)
FINETUNE = 5 if FAST else 60
curve = sparsity_curve(large, data, amounts=AMOUNTS, finetune_iters=FINETUNE, lr=5e-4, batch_size=B,
                       eval_iters=EVAL_BATCHES, seed=0)
for row in curve:
    print(f"pruned {row['amount']:.0%} of Linear weights:  val loss {row['val_loss']:.3f} at once, "
          f"{row['val_loss_finetuned']:.3f} after {FINETUNE} fine-tuning steps")

pooled = {id(layer.weight): layer.weight for layer in prunable_layers(large).values()}   # lm_head = wte, once
linear_weights = sum(w.size for w in pooled.values())
fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot([r["amount"] for r in curve], [r["val_loss"] for r in curve], "o-", label="pruned, no fine-tuning")
ax.plot([r["amount"] for r in curve], [r["val_loss_finetuned"] for r in curve], "s-", label=f"+ {FINETUNE} fine-tuning steps")
ax.axhline(curve[0]["val_loss_finetuned"], color="grey", ls=":", label="unpruned + the same fine-tuning")
ax.axhline(table["medium"]["val_loss"], color="tab:green", ls=":", label="the medium model (dense)")
ax.axhline(table["small"]["val_loss"], color="tab:red", ls=":", label="the small model (dense)")
ax.set(xlabel="fraction of Linear weights set to zero", ylabel="validation loss", title="pruning the large model")
ax.legend(fontsize=8); fig.tight_layout(); plt.show()
""")

md(r"""
Read the fine-tuned points against the **0 % row**, not against the original model: the 60
extra steps are more training, and improve even the unpruned model. Against that fair
baseline (the grey line), up to half of the weights go at almost no cost, 70 % costs a few
hundredths of a nat, and at 90 % the pruned large model is worse than the dense medium
model — which, as the picture further down shows, takes about as many bytes as the 90 %-pruned
model stored sparsely. Two honest caveats:

* The zeros are still stored: a dense NumPy array of zeros takes the same memory and the same
  time. Pruning saves memory only with a sparse format (storing each non-zero with its
  position: 8 bytes instead of 4, so it breaks even at 50 % sparsity) and time only with kernels that skip
  zeros — or with *structured* pruning that removes whole rows, heads or layers
  (`Pruner.attention_heads`), leaving smaller dense matrices.
* Fine-tuning costs training compute; here 60 steps, about a tenth of the original training.

### Distillation: a small student learns from the large teacher

Instead of shrinking the large model, train a small one to imitate it (Hinton, Vinyals and
Dean, 2015). The student sees the teacher's whole predicted distribution, not just the one
correct next character: with student logits $z_s$, teacher logits $z_t$, temperature $T$ and
weight $\alpha$,

$$ \mathcal{L}_\text{distill} = \alpha\, T^2\, \mathrm{KL}\!\left(\operatorname{softmax}(z_t/T)\,\big\|\,\operatorname{softmax}(z_s/T)\right)
   + (1-\alpha)\, \mathrm{CE}(z_s, y) . $$

The teacher's probabilities of the *wrong* characters carry information ("after 'th', 'e' is
likely, 'a' plausible, 'q' absurd") that a one-hot target does not. `distill_experiment`
trains the same student twice, from the same initial weights on the same batches — alone and
distilled — and evaluates both.
""")

code(r"""
from tinyllm.compress.distill import distill_experiment

result = distill_experiment(large, data, make_config(*SIZES["small"]), STEPS, batch_size=B, temperature=2.0, alpha=0.5,
                            lr=2e-3, min_lr=2e-4, warmup=min(50, STEPS), eval_iters=EVAL_BATCHES, seed=1337)
gap = result["alone_val_loss"] - result["teacher_val_loss"]
closed = (result["alone_val_loss"] - result["distilled_val_loss"]) / gap if gap > 0 else float("nan")
print(f"teacher (N = {table['large']['N']:,}):      val loss {result['teacher_val_loss']:.3f}")
print(f"student alone (N = {table['small']['N']:,}):  val loss {result['alone_val_loss']:.3f}  "
      f"({result['alone_ms_per_step']:.0f} ms/step)")
print(f"student distilled (T=2, α=0.5):    val loss {result['distilled_val_loss']:.3f}  "
      f"({result['distilled_ms_per_step']:.0f} ms/step: the teacher runs on every batch)")
print(f"distillation closed {closed:.0%} of the gap between student and teacher")
variants["small, float32"] = dict(bytes=model_size_bytes(models["small"]), val_loss=table["small"]["val_loss"])
variants["small, distilled"] = dict(bytes=model_size_bytes(models["small"]), val_loss=result["distilled_val_loss"])
""")

md(r"""
The distilled student is better than the same student trained alone, at exactly the same
size and inference cost: a real but modest gain, at the price of running the teacher on
every training batch (the ms/step above). With longer training, and a student closer in size
to its teacher, the gain is larger: in `docs/compute.md` a 108 k-parameter student trained
2000 steps from the 2000-step teacher closes more than half of the gap (validation loss
2.099 alone, 1.997 distilled). DistilBERT (Sanh et al., 2019) kept 97 % of BERT's benchmark
score at 60 % of its size this way.

### All the trade-offs in one picture
""")

code(r"""
variants["large, float32 + the same fine-tuning"] = dict(bytes=variants["large, float32"]["bytes"],
                                                        val_loss=curve[0]["val_loss_finetuned"])
for row in curve:
    if row["amount"] in (0.5, 0.9):
        # stored sparsely: 4 bytes per surviving Linear weight + a 4-byte index, the rest dense
        kept = (1 - row["amount"]) * linear_weights
        dense_rest = variants["large, float32"]["bytes"] - 4 * linear_weights
        variants[f"large, {row['amount']:.0%} pruned + fine-tuned (sparse storage)"] = dict(
            bytes=dense_rest + 8 * kept, val_loss=row["val_loss_finetuned"])
for name, r in table.items():
    if name == "medium":
        variants["medium, float32"] = dict(bytes=r["bytes"], val_loss=r["val_loss"])

fig, ax = plt.subplots(figsize=(7.5, 3.6))
for name, v in variants.items():
    marker = "o" if "float32" in name else "s" if "int8" in name else "^" if "pruned" in name else "*"
    ax.scatter(v["bytes"] / 1e6, v["val_loss"], s=90 if marker == "*" else 50, marker=marker)
    # three points share x = the large model's bytes, within 0.02 in loss: spread their labels
    dy = {"large, float32": 8, "large, float32 + the same fine-tuning": -16}.get(name, -4)
    ax.annotate(name, (v["bytes"] / 1e6, v["val_loss"]), textcoords="offset points", xytext=(6, dy), fontsize=7)
ax.set(xscale="log", xlabel="bytes to store the model (MB)", ylabel="validation loss",
       title="what each technique buys: left is smaller, down is better")
ax.set_xlim(right=ax.get_xlim()[1] * 4)
fig.tight_layout(); plt.show()
rows = ["| variant | MB | val loss |", "|---|---:|---:|"] + [
    f"| {n} | {v['bytes'] / 1e6:.2f} | {v['val_loss']:.3f} |" for n, v in sorted(variants.items(), key=lambda kv: kv[1]["bytes"])]
display(Markdown("\n".join(rows)))
""")

md(r"""
(The 50 %-pruned model sits a hair *below* the original large model only because of its 60
extra training steps: the point "large, float32 + the same fine-tuning" is the fair comparison.)

At this scale **int8 quantization is the clear win**: a quarter of the bytes for almost no
loss, and no retraining. Pruning needs a sparse format to save anything and retraining to stay
accurate; distillation improves a small model but does not reach the large one. The
combinations used in practice (a distilled, then quantized model) stack these gains. On the
seed's phrase 模型压缩、模型蒸馏: both work, their costs are different in kind — quantization
costs accuracy only, pruning costs retraining and a special format, distillation costs a full
training run with the teacher in the loop.

(Mixed precision — float16 arithmetic with float32 master weights, `tinyllm.compress.precision` —
is the other everyday saving, of activation memory and, on GPUs, of time; it is about
training, not about the stored model, and is left out of the picture.)

## Q3 · 如何解决 LLM 的偏差问题？ — Augmentation and regularisation

Chapter 8 trained small word-level GPTs on a generated corpus where each occupation goes with
a stereotyped pronoun with probability $s$, and found the learned bias score
($\frac{1}{|O|}\sum_o |2 p_\text{he}(o) - 1|$) close to the corpus's $2s - 1$. Now we fix
$s = 0.9$ and try the seed's two remedies.

### 数据增强 — Counterfactual data augmentation

Add to the corpus a copy of some of its sentences with the gendered words swapped (he ↔ she,
his ↔ her, himself ↔ herself; Lu et al. 2018, Zmigrod et al. 2019). Augmenting a fraction $f$
of the sentences turns the corpus rate $s$ into

$$ s_f = \frac{s + f(1 - s)}{1 + f}, \qquad \text{expected bias} = 2 s_f - 1 , $$

so $f = 1$ (every sentence swapped once) makes $s_f = \tfrac12$: no association left.
""")

code(r"""
from tinyllm.compress.bias import make_occupation_corpus, swap_gender, WordTokenizer, bias_score
from tinyllm.compress.lm import small_config
import tinyllm.functional as F

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

    losses = train_lm(model, dataset, BIAS_ITERS, batch_size=32, lr=3e-3, min_lr=3e-4, warmup=min(50, BIAS_ITERS),
                      weight_decay=weight_decay, seed=seed, loss_fn=loss_fn)
    return model, float(np.mean(losses[-20:]))


rng = np.random.default_rng(0)
FRACTIONS = [0.0, 1.0] if FAST else [0.0, 0.25, 0.5, 0.75, 1.0]
augmentation = {}
for f in FRACTIONS:
    chosen = rng.permutation(len(sentences))[:int(round(f * len(sentences)))]
    text_f = " ".join(sentences + [swap_gender(sentences[i]) for i in chosen])
    model, _ = train_bias_model(text_f)
    s_f = (SKEW + f * (1 - SKEW)) / (1 + f)
    score = bias_score(model, words)
    augmentation[f] = dict(bias=score["bias"], expected=2 * s_f - 1)
    print(f"augmented {f:.0%} of sentences: expected bias {2 * s_f - 1:.3f}, measured {score['bias']:.3f} "
          f"(signed stereotype score {score['stereotype']:+.3f})")
""")

md(r"""
### 模型正则化 — Regularisation

Regularisers limit how sharply a model fits its training data. Three common ones, each a knob
of tinyllm:

* **weight decay** $\lambda$ (AdamW): $\theta \leftarrow \theta - \eta\lambda\theta$ every step, pulling weights toward 0;
* **dropout** $p$: during training each activation is zeroed with probability $p$ (the rest scaled by $\frac{1}{1-p}$);
* **label smoothing** $\varepsilon$: the target becomes $(1-\varepsilon)\,\text{onehot}(y) + \varepsilon / V$,
  so the model is never pushed to full confidence.

Do they reduce bias? All three are trained on the same skewed corpus (no augmentation).
""")

code(r"""
SETTINGS = [("none", {}), ("weight decay 1.0", dict(weight_decay=1.0)), ("dropout 0.2", dict(dropout=0.2)),
            ("label smoothing 0.1", dict(label_smoothing=0.1)), ("label smoothing 0.3", dict(label_smoothing=0.3))]
if FAST:
    SETTINGS = SETTINGS[:2]
regularised = {}
for name, knobs in SETTINGS:
    model, _ = train_bias_model(corpus, **knobs)
    score = bias_score(model, words)
    regularised[name] = dict(bias=score["bias"])
    print(f"{name:>20}: bias {score['bias']:.3f}   signed stereotype score {score['stereotype']:+.3f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 1.4]})
ax1.plot(FRACTIONS, [augmentation[f]["expected"] for f in FRACTIONS], "k--", label=r"expected $2s_f - 1$")
ax1.plot(FRACTIONS, [augmentation[f]["bias"] for f in FRACTIONS], "o-", label="measured")
ax1.set(xlabel="fraction of sentences added gender-swapped", ylabel="bias score", ylim=(-0.02, 1),
        title="data augmentation")
ax1.legend()
names = list(regularised)
ax2.barh(names, [regularised[n]["bias"] for n in names], color="tab:purple")
ax2.axvline(2 * SKEW - 1, color="k", ls="--", lw=1, label="corpus rate 2s − 1")
ax2.axvline(augmentation[max(FRACTIONS)]["bias"], color="tab:green", ls=":", label=f"augmentation f = {max(FRACTIONS):g}")
ax2.set(xlabel="bias score", xlim=(0, 1.4), xticks=np.arange(0, 1.01, 0.2), title=f"regularisation (skew {SKEW})")
ax2.invert_yaxis(); ax2.legend(fontsize=7, loc="center right")
fig.tight_layout(); plt.show()
""")

md(r"""
The two remedies are not alike:

* **Data augmentation removes the bias at its source.** The measured score follows the
  predicted $2s_f - 1$, a little below it — a weak association is learned last (chapter 8),
  and at 75 % the small remainder (0.11 expected) was not learned at all in these steps — and
  full augmentation leaves only the noise floor. The model learns the statistics of the data
  it is given, so fixing the data fixes the model. The catch is that
  this only works where the swap is well defined. On our toy corpus it is exact; in real text
  "her" maps to both "his" and "him", names and grammatical agreement get in the way, and only
  the biases someone thought to list get augmented.
* **Regularisation does not touch it.** Weight decay, dropout and label smoothing all leave
  the score at the corpus rate. A regulariser fights *overfitting* — memorised noise, detail
  the data does not support — and this bias is neither: it is a strong, consistent pattern of
  the training data, exactly what a well-regularised model is supposed to learn. Label
  smoothing does flatten every prediction, but by the same $\varepsilon / V$ for "he" and
  "she", so the ratio of the two, which the score measures, barely moves.

A trap we fell into while writing this chapter: with 300 training steps instead of 1000,
dropout and strong label smoothing *seemed* to cut the bias (to about 0.15 and 0.5), and a
quarter-dose of augmentation seemed to remove it entirely. They had only slowed learning:
the models had not yet learned which occupation goes with which pronoun (chapter 8 shows the
same for weak skews). Measure bias on models trained to the end.

So the seed's answer is right about data augmentation and, at least for a bias that is a
consistent pattern of the data, wrong about regularisation. Methods that do attack bias
through the objective exist — they add a penalty on the measured quantity itself (here, the
difference between $p_\text{he}$ and $p_\text{she}$ for a list of occupations) — but then the
"regulariser" needs the same list of biases as augmentation does.

## Try it

1. **Quantize less.** Quantize only the attention and MLP layers,
   `quantize_model(copy.deepcopy(large), [n for n, m in large.named_modules() if n.endswith(("c_attn", "c_proj", "c_fc"))])`.
   *Expected:* almost the same saving — the token and position tables that stay in float32
   are only about 2 % of this model's weights (a 65-character vocabulary) — and the same
   negligible loss change. In a real LLM with a 50 000-token vocabulary the tables are a much
   larger share.
2. **Fine-tune longer.** Run `sparsity_curve` with `finetune_iters=300`. *Expected:* every
   fine-tuned point moves further down toward the unpruned loss (and costs five times the
   fine-tuning compute); the lower the sparsity, the closer it gets.
3. **Distil at temperature 1.** `distill_experiment(..., temperature=1.0, alpha=0.9)`.
   *Expected:* in our trial this was slightly *better* than $T = 2$, $\alpha = 0.5$ (validation
   loss about 0.02 lower): with a teacher this close to its student in quality, following its
   distribution closely pays; the best $T$ and $\alpha$ depend on the pair.
4. **Bias of a bigger model.** Train the bias model with `n_embd=96, n_layer=4`.
   *Expected:* the score stays at the corpus rate: more capacity fits the skew just as well;
   size is no remedy either.
5. **Augment, then test on another frame.** Augment with $f = 1$ and score with
   `template=". the {job} told us that"`. *Expected:* still at the noise floor — the swap was
   applied to every sentence frame in the corpus, so every frame is balanced.

## Summary

| the seed says | what we measured |
|---|---|
| 选择合适的 LLM：考虑模型的规模、性能、成本 | a table of size (bytes), performance (loss, perplexity) and cost (training ms/step, generation tokens/s, memory) for three models; the application's constraints pick the row |
| 模型压缩 lowers compute demands | int8: ~4× fewer bytes, loss unchanged to three decimals, no speed-up without int8 kernels; pruning: 50 % nearly free after a short fine-tune, 90 % worse than a dense model of the same bytes; savings only with sparse storage |
| 模型蒸馏 | the distilled student beats the same student trained alone, at equal size; it costs the teacher's forward pass on every training step |
| 数据增强 solves bias | counterfactual augmentation lowered the bias score as predicted by the corpus rates, to the noise floor at full dose |
| 模型正则化 solves bias | weight decay, dropout and label smoothing left it at the corpus rate (on models trained to the end) |
""")

if __name__ == "__main__":
    nb.build("09_faq.ipynb")
