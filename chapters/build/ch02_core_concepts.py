"""Build chapters/02_core_concepts.ipynb: write the cells, run them all (full mode), save
the notebook with its outputs.

    python chapters/build/ch02_core_concepts.py            # build and execute (~2-4 min)
    python chapters/build/ch02_core_concepts.py --no-execute  # write the cells only
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Notebook  # noqa: E402

nb = Notebook()
md, code = nb.md, nb.code

# ============================================================================ title
md(r"""
# 2 · 核心概念与联系 — Core concepts

> *Seed §2.* **LLMs 通常采用 Transformer 架构 … 编码器负责将输入文本转换为特征表示，解码器则根据特征表示生成输出文本。**
> (LLMs usually use the Transformer architecture … the encoder turns the input text into a
> feature representation, the decoder generates the output text from it.)
> Then two lists: the **训练过程** (training process: data preprocessing, model building,
> training, evaluation) and the **推理过程** (inference process: input preprocessing,
> prediction, output postprocessing).

This chapter turns those three short paragraphs into running code. Each box of the seed's
lists becomes a cell you can execute on small data.

**What you will build**

1. **The architecture map** (§2.1): an encoder, a decoder, the encoder–decoder of the seed
   and a decoder-only GPT, each assembled from `tinyllm.nn`, run once, and compared by the one
   thing that really tells them apart: *which token may attend to which*.
2. **The training pipeline** (§2.2): clean text, tokenize it (characters and BPE), build a
   GPT, train it for a few hundred steps on Tiny Shakespeare, evaluate it (loss, perplexity,
   accuracy) against simple baselines.
3. **The inference pipeline** (§2.3): preprocess a prompt, predict the next token (and the
   next, and the next), postprocess the ids into text — for the GPT, and for an
   encoder–decoder that you train in half a minute to translate dates.

*Run time:* about 2–3 minutes on 2 CPU cores. With `TINYLLM_FAST=1` (what CI does) the same
cells run with far fewer steps in well under a minute; the numbers then are of course worse.
""")

code(r"""
import os, sys, time, math
FAST = os.environ.get("TINYLLM_FAST") == "1"   # CI sets this: fewer steps, same cells
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

import tinyllm as tl
import tinyllm.nn as nn
import tinyllm.functional as F
from tinyllm.models import GPT, GPTConfig, TransformerModel

tl.manual_seed(0)
print(f"tinyllm {tl.__version__} · numpy {np.__version__} · FAST={FAST}")
""")

# ============================================================================ 2.1
md(r"""
## 2.1 大语言模型架构 — Architecture

> **LLMs 通常采用 Transformer 架构，这是一种基于自注意力机制的神经网络架构。Transformer 模型由编码器和解码器组成，编码器负责将输入文本转换为特征表示，解码器则根据特征表示生成输出文本。**

The seed describes the original Transformer (Vaswani et al., 2017): an **encoder**
(编码器) that reads the whole input and produces one feature vector (特征表示) per token, and a
**decoder** (解码器) that writes the output one token at a time while looking at those
features. Three families of models grew out of it, and one of them is what people today call
an LLM:

| family | famous example | reads | produces | self-attention |
|---|---|---|---|---|
| encoder-only | BERT | a whole text | a feature vector per token | every token sees every token |
| encoder–decoder | the 2017 Transformer, T5 — and the seed's `TransformerModel` (§5) | a source text | a target text | encoder: full; decoder: causal, plus *cross-attention* to the encoder's features |
| decoder-only | GPT-2/3/4, LLaMA, most LLMs | a prefix | the next token, again and again | causal: token *t* sees tokens ≤ *t* |

All three are stacks of the same two sublayers — self-attention and a position-wise
feed-forward network — with residual connections and layer normalisation. The picture:
""")

code(r"""
def box(ax, x, y, text, w=0.44, h=0.085, color="#dde8f6"):
    ax.add_patch(plt.Rectangle((x - w / 2, y - h / 2), w, h, facecolor=color, edgecolor="#333", lw=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=7)

def arrow(ax, start, end, color="#333"):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color=color, lw=1))

def column(ax, x, labels, colors, w=0.44):
    ys = np.linspace(0.07, 0.88, len(labels))
    hs = [0.05 + 0.038 * (label.count("\n") + 1) for label in labels]
    for i, (label, color) in enumerate(zip(labels, colors)):
        box(ax, x, ys[i], label, w=w, h=hs[i], color=color)
        if i:
            arrow(ax, (x, ys[i - 1] + hs[i - 1] / 2), (x, ys[i] - hs[i] / 2))
    return ys

EMB, ENC, DEC, OUT = "#eeeeee", "#cfe3c6", "#f6d9c3", "#e4d7f0"
fig, axes = plt.subplots(1, 3, figsize=(12, 4.4), gridspec_kw={"width_ratios": [1, 1.7, 1]})
for ax in axes:
    ax.set_xlim(0, 1); ax.set_ylim(0, 1); ax.axis("off")

ax = axes[0]; ax.set_title("encoder-only (BERT)\ninput → features", fontsize=9)
column(ax, 0.5, ["tokens x₁ … xₙ", "embedding + position",
                 "encoder layer × N\nself-attention (all ↔ all)\nfeed-forward", "features h₁ … hₙ"],
       [EMB, EMB, ENC, OUT])

ax = axes[1]; ax.set_title("encoder–decoder (the seed, §5)\nencoder + decoder", fontsize=9)
ys = column(ax, 0.25, ["source x₁ … xₙ", "embedding + position",
                       "encoder layer × N\nself-attention (all ↔ all)\nfeed-forward", "memory (features)"],
            [EMB, EMB, ENC, OUT], w=0.26)
yd = column(ax, 0.75, ["target so far y₁ … yₜ", "embedding + position",
                       "decoder layer × N\nmasked self-attention\ncross-attention\nfeed-forward",
                       "linear + softmax", "p(yₜ₊₁ | y≤ₜ, x)"], [EMB, EMB, DEC, EMB, OUT], w=0.26)
arrow(ax, (0.38, ys[3]), (0.62, yd[2]), color="#b5482c")
ax.text(0.5, (ys[3] + yd[2]) / 2 + 0.07, "K, V", color="#b5482c", ha="center", fontsize=8)

ax = axes[2]; ax.set_title("decoder-only (GPT)\nthe LLMs of today", fontsize=9)
column(ax, 0.5, ["tokens x₁ … xₜ", "embedding + position",
                 "decoder block × N\nmasked self-attention\nfeed-forward", "linear + softmax",
                 "p(xₜ₊₁ | x≤ₜ)"], [EMB, EMB, DEC, EMB, OUT])
plt.tight_layout(); plt.show()
""")

md(r"""
### Building the four pieces

Now the same map as code. Every class below has the constructor arguments of its
`torch.nn` namesake. Sizes are tiny (width 32, 4 heads, 2 layers) because we only want to
see the shapes. Token ids of the seq2seq models are `(sequence, batch)` as in PyTorch's
`nn.Transformer`; GPT takes `(batch, sequence)` as nanoGPT.
""")

code(r"""
vocab, d_model, nhead, d_ff, n_layers = 20, 32, 4, 64, 2
rng = np.random.default_rng(0)
src = tl.Tensor(rng.integers(3, vocab, size=(7, 2)))   # (S=7, batch=2) source ids
tgt = tl.Tensor(rng.integers(3, vocab, size=(5, 2)))   # (T=5, batch=2) target ids so far

tl.manual_seed(0)
embed = nn.Embedding(vocab, d_model)
pos = nn.PositionalEncoding(d_model, dropout=0.0)
embed_seq = lambda ids: pos(embed(ids) * math.sqrt(d_model))     # (L, N) ids → (L, N, E)

# 1) encoder: input → features (特征表示), one vector per token
encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model, nhead, d_ff, dropout=0.0), n_layers)
features = encoder(embed_seq(src))

# 2) decoder: target prefix + encoder features → one vector per target position
causal = nn.generate_square_subsequent_mask(tgt.shape[0])         # −inf above the diagonal
decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(d_model, nhead, d_ff, dropout=0.0), n_layers)
decoded = decoder(embed_seq(tgt), features, tgt_mask=causal)

# 3) encoder–decoder: the seed's TransformerModel(ntoken, ninp, nhead, nhid, nlayers, dropout)
seq2seq = TransformerModel(vocab, d_model, nhead, d_ff, n_layers, dropout=0.0)
seq2seq_logits = seq2seq(src, tgt, None, TransformerModel.generate_square_subsequent_mask(5), None, None, None)

# 4) decoder-only: GPT, ids (batch, seq)
gpt = GPT(GPTConfig(vocab_size=vocab, block_size=16, n_layer=n_layers, n_head=nhead, n_embd=d_model))
gpt_ids = tl.Tensor(src.numpy().T)                                 # (batch=2, seq=7)
gpt_logits, _ = gpt(gpt_ids)

rows = [("encoder", f"src {src.shape}", features.shape, encoder.num_parameters()),
        ("decoder", f"tgt {tgt.shape} + memory {features.shape}", decoded.shape, decoder.num_parameters()),
        ("encoder–decoder", f"src {src.shape}, tgt {tgt.shape}", seq2seq_logits.shape, seq2seq.num_parameters()),
        ("decoder-only GPT", f"ids {gpt_ids.shape}", gpt_logits.shape, gpt.num_parameters())]
print(f"{'model':17} {'input':38} {'output':14} parameters")
for name, inp, out, n in rows:
    print(f"{name:17} {inp:38} {str(out):14} {n:>9,}")
""")

md(r"""
The encoder's output keeps the input's shape: 7 tokens in, 7 feature vectors of width 32
out. The models that *generate* end with a linear layer onto the vocabulary: one row of 20
logits per position, i.e. a guess at the next token.

### The real difference: who may attend to whom

The attention layers keep their last weights (`.attention_weights`, collected by
`nn.attention_maps`). Row *i* of such a map says how much position *i* read from each
position *j*. The models are untrained, so the weights themselves mean nothing yet — but
the zeros are already there, and they *are* the architecture:
""")

code(r"""
def mean_map(maps, name):             # (N, H, L, S) → first sequence, averaged over heads
    return maps[name][0].numpy().mean(axis=0)

enc_maps, dec_maps, gpt_maps = nn.attention_maps(encoder), nn.attention_maps(decoder), gpt.attention_maps()
panels = [("encoder self-attention\n(full: 7 × 7)", mean_map(enc_maps, "layers.0.self_attn"), "key j (source)", "query i (source)"),
          ("decoder self-attention\n(causal: 5 × 5)", mean_map(dec_maps, "layers.0.self_attn"), "key j (target)", "query i (target)"),
          ("decoder cross-attention\n(target → source: 5 × 7)", mean_map(dec_maps, "layers.0.multihead_attn"), "key j (source)", "query i (target)"),
          ("GPT self-attention\n(causal: 7 × 7)", mean_map(gpt_maps, "transformer.h.0.attn"), "key j", "query i")]
fig, axes = plt.subplots(1, 4, figsize=(11, 3))
for ax, (title, w, xl, yl) in zip(axes, panels):
    ax.imshow(w, cmap="Blues", vmin=0, vmax=1)
    ax.set_title(title, fontsize=8.5); ax.set_xlabel(xl); ax.set_ylabel(yl)
    ax.set_xticks(range(w.shape[1])); ax.set_yticks(range(w.shape[0]))
plt.tight_layout(); plt.show()
print("GPT row 0 (the first token may only read itself):", np.round(panels[3][1][0], 3))
""")

md(r"""
A *causal* (masked) self-attention makes position *t* blind to everything after it, so the
model can be trained to predict token *t + 1* at every position at once without cheating.
We can check this by experiment: change the **last** input token and see which outputs move.
""")

code(r"""
changed = src.numpy().copy(); changed[-1, 0] = (changed[-1, 0] + 1) % vocab   # last token of sequence 0

features2 = encoder(embed_seq(tl.Tensor(changed)))
gpt_logits2, _ = gpt(tl.Tensor(changed.T))
enc_moved = np.abs(features2.numpy() - features.numpy())[:, 0].max(axis=-1)      # per position
gpt_moved = np.abs(gpt_logits2.numpy() - gpt_logits.numpy())[0].max(axis=-1)
print("largest change per position (positions 0 … 6):")
print("  encoder features:", np.array2string(enc_moved, precision=3))
print("  GPT logits      :", np.array2string(gpt_moved, precision=3))
""")

md(r"""
Every encoder feature changed — each token's representation depends on the whole sentence,
which is what you want for *understanding* a text. Only the GPT's last position changed —
the prediction at position *t* depends on tokens ≤ *t* only, which is what you need for
*writing* a text left to right. The decoder half of the encoder–decoder is causal in the
target and sees the *whole* source through cross-attention.
""")

# ============================================================================ 2.2
md(r"""
## 2.2 训练过程 — The training pipeline

> **LLM 的训练过程通常包括以下步骤：**
> * **数据预处理：** 对文本数据进行清洗、分词等预处理操作。 (data preprocessing: cleaning, tokenization)
> * **模型构建：** 定义模型架构、参数等。 (model building: architecture and parameters)
> * **模型训练：** 使用大量文本数据对模型进行训练，优化模型参数。 (training: optimise the parameters on text)
> * **模型评估：** 使用测试数据集评估模型性能。 (evaluation on held-out data)

We run the four steps on Tiny Shakespeare (1.1 M characters) if it is on this machine, and on
the Tiny Tales corpus shipped with tinyllm otherwise. Nothing is downloaded.

### Step 1a · 清洗 Cleaning

Text from the wild carries invisible differences: Windows line endings `\r\n`, control
characters from PDFs, and letters such as "é" stored either as one code point or as "e" plus a
combining accent. `tinyllm.data.clean_text` makes equal-looking text equal, code point for
code point, so the tokenizer does not waste vocabulary on variants.
""")

code(r"""
from tinyllm.data import clean_text

messy = "Cafe\u0301 au lait\r\nsecond line\x00 (a NUL from a PDF)\x0c  \r\nthird line  \n"
clean = clean_text(messy, strip_trailing_whitespace=True)
print("before:", repr(messy), f"({len(messy)} code points)")
print("after: ", repr(clean), f"({len(clean)} code points)")
print("'Café' spelled two ways are equal after cleaning:", clean_text("Cafe\u0301") == clean_text("Caf\u00e9"))
print("cleaning twice changes nothing:", clean_text(clean, strip_trailing_whitespace=True) == clean)
""")

code(r"""
from tinyllm.data import tinyshakespeare, load_shipped_corpus

try:
    raw = tinyshakespeare(download=False)        # found in data/ or ../shared/data/, never downloaded here
    corpus_name, prompt_text = "Tiny Shakespeare", "ROMEO:"
except (FileNotFoundError, OSError):
    raw = load_shipped_corpus()                  # ships with the repository
    corpus_name, prompt_text = "Tiny Tales (shipped)", "Once upon a time"
text = clean_text(raw)
print(f"{corpus_name}: {len(raw):,} characters raw, {len(text):,} after cleaning, "
      f"{len(set(text))} distinct")
print("-" * 60); print(text[:260]); print("-" * 60)
""")

md(r"""
### Step 1b · 分词 Tokenization

A model reads numbers. A **tokenizer** (分词器) fixes a vocabulary of pieces and maps text to a
list of ids and back. Two classic choices:

* **characters** — the vocabulary is the set of characters in the text (about 65 for
  Shakespeare); every text is long in tokens;
* **byte-pair encoding (BPE)**, as in GPT-2 — start from the 256 byte values and repeatedly
  merge the most frequent adjacent pair into a new token; frequent words become single tokens.
""")

code(r"""
from tinyllm.data import CharTokenizer, BPETokenizer

char_tok = CharTokenizer.from_text(text)
sample = "To be, or not to be" if "Shakespeare" in corpus_name else "Once upon a time"
ids = char_tok.encode(sample)
print(f"char vocabulary: {char_tok.vocab_size} symbols")
print(f"{sample!r} → {ids}")
print("decode(encode(s)) == s:", char_tok.decode(ids) == sample)

bpe_text = text[:100_000] if FAST else text[:300_000]
t0 = time.perf_counter()
bpe = BPETokenizer(); bpe.train(bpe_text, vocab_size=512)
print(f"\nBPE with 512 tokens trained on {len(bpe_text):,} characters in {time.perf_counter() - t0:.1f} s")
print("first merges:", [bpe.token_bytes(256 + i).decode("utf-8", "replace") for i in range(12)])
pieces = [bpe.token_bytes(i).decode("utf-8", "replace") for i in bpe.encode(sample)]
print(f"{sample!r} → {bpe.encode(sample)} = {'|'.join(pieces)}")
""")

md(r"""
The first merges are the most frequent pairs (on Shakespeare `' t'`, `'he'`, `'ou'`, …),
and whole words such as `' the'` follow soon. Bigger BPE
vocabularies make sequences shorter (fewer, longer tokens) at the price of a bigger
embedding table and softmax. Measured on held-out text:
""")

code(r"""
held_out = text[-50_000:]                       # not used to train the tokenizers
sizes = [256, 300, 400, 512, 768] if FAST else [256, 300, 400, 512, 768, 1024]
chars_per_token = []
for size in sizes:
    tok = BPETokenizer(); tok.train(bpe_text, vocab_size=size)
    chars_per_token.append(len(held_out) / len(tok.encode(held_out)))
fig, ax = plt.subplots(figsize=(5, 2.8))
ax.plot(sizes, chars_per_token, "o-", label="BPE")
ax.axhline(1.0, color="gray", ls="--", label=f"characters (vocab {char_tok.vocab_size})")
ax.set_xlabel("vocabulary size"); ax.set_ylabel("characters per token"); ax.legend()
ax.set_title("bigger vocabulary → shorter sequences"); plt.tight_layout(); plt.show()
print({s: round(c, 2) for s, c in zip(sizes, chars_per_token)})
""")

md(r"""
We train with the character tokenizer: 65 classes make a small, fast output layer, and
the losses are directly comparable with nanoGPT's shakespeare-char. (Exercise 1 switches
to BPE.)

### Step 1c · From ids to training examples

A language model learns $p_\theta(x_{t+1} \mid x_1, \dots, x_t)$. We hold out the last 10 %
of the text for evaluation (a contiguous cut, so no validation window overlaps a training
one), then draw random windows of $T + 1$ tokens. A window gives $T$ examples at once:
the inputs $x_{1..T}$ and the targets $y_{1..T} = x_{2..T+1}$, the inputs shifted by one.
""")

code(r"""
from tinyllm.data import train_val_split, CausalLMDataset

all_ids = np.asarray(char_tok.encode(text), dtype=np.int64)
train_ids, val_ids = train_val_split(all_ids, val_fraction=0.1)
block_size = 64
train_data, val_data = CausalLMDataset(train_ids, block_size), CausalLMDataset(val_ids, block_size)
print(f"{len(train_ids):,} training tokens, {len(val_ids):,} validation tokens;", train_data)

x, y = train_data.get_batch(4, np.random.default_rng(0))
print("x shape", x.shape, "y shape", y.shape)
print("x[0] as text:", repr(char_tok.decode(x[0][:40])))
print("y[0] as text:", repr(char_tok.decode(y[0][:40])), "← the same, one character later")
""")

md(r"""
### Step 2 · 模型构建 Model building

"定义模型架构、参数" — define the architecture and its parameters. A decoder-only GPT with 2
layers, 4 heads and width 64 (nanoGPT's shakespeare-char uses 4/4/128; this is 8× cheaper):
""")

code(r"""
tl.manual_seed(0)
config = GPTConfig(vocab_size=char_tok.vocab_size, block_size=block_size, n_layer=2, n_head=4, n_embd=64)
model = GPT(config)
print(config)
groups = {"token embedding (tied with the output layer)": "wte", "position embedding": "wpe",
          "attention": ".attn.", "feed-forward (MLP)": ".mlp.", "layer norms": "ln_"}
counted = {label: sum(p.size for n, p in model.named_parameters() if key in n) for label, key in groups.items()}
for label, n in counted.items():
    print(f"  {label:45} {n:>7,}")
print(f"  {'total':45} {model.num_parameters():>7,}")
""")

md(r"""
Before any training the model should know nothing: every one of the $V$ characters equally
likely, so the loss — the cross-entropy $-\log p_\theta(\text{correct token})$ — should be
about $\ln V$. GPT-2's small initialisation gets close:
""")

code(r"""
with tl.no_grad():
    _, initial_loss = model(tl.Tensor(x), tl.Tensor(y))
print(f"loss at initialisation {initial_loss.item():.3f}   vs   ln V = ln {char_tok.vocab_size} = {math.log(char_tok.vocab_size):.3f}")
""")

md(r"""
### Step 3 · 模型训练 Training

"使用大量文本数据对模型进行训练，优化模型参数" — optimise the parameters on text. The objective
is the mean cross-entropy of the next-token predictions over a batch of $B$ windows of $T$
tokens:

$$
\mathcal{L}(\theta) = -\frac{1}{BT}\sum_{b=1}^{B}\sum_{t=1}^{T} \log p_\theta\!\left(y_{b,t} \mid x_{b,1..t}\right)
$$

Each step is the same four lines: **forward** (compute $\mathcal L$), **backward**
(compute $\partial\mathcal L/\partial\theta$ for every parameter by the chain rule — chapter 4),
clip the gradient norm to 1, and **update** with AdamW. The learning rate warms up for 50
steps and then follows a cosine down to a tenth of its peak.
""")

code(r"""
from tinyllm.optim import AdamW, param_groups, clip_grad_norm_, cosine_with_warmup

steps = 40 if FAST else 800
batch_size, max_lr, warmup = 16, 3e-3, min(50, steps // 4)
eval_every, eval_batches = (20, 2) if FAST else (100, 10)
optimizer = AdamW(param_groups(model.named_parameters(), weight_decay=0.1, decay_embeddings=True),
                  lr=max_lr, betas=(0.9, 0.99))

def estimate_loss(dataset, n_batches=eval_batches, batch=32):
    # mean loss and next-token accuracy on fixed batches (the same ones every time)
    rng = np.random.default_rng(1234)
    losses, hits, count = [], 0, 0
    with tl.no_grad():
        for _ in range(n_batches):
            xb, yb = dataset.get_batch(batch, rng)
            logits, loss = model(tl.Tensor(xb), tl.Tensor(yb))
            losses.append(loss.item())
            hits += int((logits.numpy().argmax(-1) == yb).sum()); count += yb.size
    return float(np.mean(losses)), hits / count

batch_rng = np.random.default_rng(0)
batch_losses, history = [], {"step": [], "train": [], "val": []}
t0 = time.perf_counter()
for step in range(steps):
    lr = cosine_with_warmup(step, max_lr, max_lr / 10, warmup, steps)
    for group in optimizer.param_groups:
        group["lr"] = lr
    xb, yb = train_data.get_batch(batch_size, batch_rng)
    _, loss = model(tl.Tensor(xb), tl.Tensor(yb))     # forward: logits and the loss
    optimizer.zero_grad()
    loss.backward()                                    # backward: ∂loss/∂θ for every θ
    clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()                                   # update: θ ← θ − lr · AdamW direction
    batch_losses.append(loss.item())
    if (step + 1) % eval_every == 0 or step == steps - 1:
        (train_loss, _), (val_loss, _) = estimate_loss(train_data), estimate_loss(val_data)
        for k, v in (("step", step + 1), ("train", train_loss), ("val", val_loss)):
            history[k].append(v)
        print(f"step {step + 1:4d}  lr {lr:.2e}  train {train_loss:.3f}  val {val_loss:.3f}  "
              f"({time.perf_counter() - t0:.0f} s)")
train_seconds = time.perf_counter() - t0
print(f"{steps} steps in {train_seconds:.0f} s ({1000 * train_seconds / steps:.0f} ms per step)")
""")

code(r"""
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(np.arange(1, steps + 1), batch_losses, lw=0.6, alpha=0.5, label="training batch")
ax.plot(history["step"], history["train"], "o-", ms=3, label="train (estimate)")
ax.plot(history["step"], history["val"], "o-", ms=3, label="validation")
ax.axhline(math.log(char_tok.vocab_size), color="gray", ls=":", label="ln V (knows nothing)")
ax.set_xlabel("step"); ax.set_ylabel("cross-entropy (nats per character)"); ax.legend(fontsize=8)
ax.set_title(f"GPT {config.n_layer}×{config.n_embd} on {corpus_name}"); plt.tight_layout(); plt.show()
""")

md(r"""
### Step 4 · 模型评估 Evaluation

"使用测试数据集评估模型性能" — measure on data the model never trained on. Three numbers:

* **loss** $\mathcal L$, the mean cross-entropy in nats per token;
* **perplexity** $\mathrm{PPL} = e^{\mathcal L}$: the model is as unsure as if it chose uniformly
  among PPL tokens;
* **accuracy**: how often the most likely token is the right one.

A number means little without a baseline, so we compare with three models that need no
training loop at all: uniform ($\ln V$), unigram (character frequencies) and bigram
(frequencies of the next character given the current one, add-one smoothed), all counted on
the training split and scored on the validation split.
""")

code(r"""
V = char_tok.vocab_size
unigram = np.bincount(train_ids, minlength=V) + 1.0; unigram /= unigram.sum()
bigram = np.ones((V, V)); np.add.at(bigram, (train_ids[:-1], train_ids[1:]), 1.0)
bigram /= bigram.sum(axis=1, keepdims=True)
baselines = {"uniform": (math.log(V), 1 / V),
             "unigram": (-np.log(unigram[val_ids[1:]]).mean(), float((val_ids[1:] == unigram.argmax()).mean())),
             "bigram": (-np.log(bigram[val_ids[:-1], val_ids[1:]]).mean(),
                        float((bigram.argmax(axis=1)[val_ids[:-1]] == val_ids[1:]).mean()))}
gpt_val_loss, gpt_val_acc = estimate_loss(val_data, n_batches=4 if FAST else 40)
results = {**baselines, f"GPT ({steps} steps)": (gpt_val_loss, gpt_val_acc)}
print(f"{'model':18} {'val loss':>9} {'perplexity':>11} {'accuracy':>9}")
for name, (loss_value, acc) in results.items():
    print(f"{name:18} {loss_value:9.3f} {math.exp(loss_value):11.2f} {acc:9.3f}")
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.barh(list(results), [r[0] for r in results.values()], color=["#bbb", "#bbb", "#bbb", "#4c72b0"])
ax.set_xlabel("validation cross-entropy (lower is better)"); ax.invert_yaxis(); plt.tight_layout(); plt.show()
""")

md(r"""
The bigram model knows only the previous character. The GPT attends to up to 64 of them,
and after a few hundred steps it is already well below the bigram model. (nanoGPT's
4-layer, 128-wide recipe, trained for 2000 steps, reaches ≈ 1.9 on Tiny Shakespeare; the
`shakespeare-char` preset of tinyllm's `Trainer` reproduces it, and with separate input and
output embeddings reaches ≈ 1.86.)

Everything above is what `tinyllm.train.Trainer` packages — the same loop plus checkpoints
and a learning-rate schedule from a config. From the command line:
`python -m tinyllm train --preset shakespeare-char`.
""")

# ============================================================================ 2.3
md(r"""
## 2.3 推理过程 — The inference pipeline

> **LLM 的推理过程是指使用训练好的模型进行预测。推理过程通常包括以下步骤：**
> * **输入预处理：** 对输入文本进行预处理。 (input preprocessing)
> * **模型预测：** 使用训练好的模型对输入文本进行预测。 (model prediction)
> * **输出后处理：** 对模型输出进行后处理，例如格式转换等。 (output postprocessing, e.g. format conversion)

### Step 1 · 输入预处理 Input preprocessing

The prompt goes through the *same* cleaning and tokenizer as the training data (a different
one would hand the model ids it never saw). Characters outside the vocabulary cannot be
encoded; we drop them and say so. The context is cropped to the model's `block_size`.
""")

code(r"""
def preprocess(prompt, tokenizer=char_tok, block=config.block_size):
    cleaned = clean_text(prompt)
    known = "".join(c for c in cleaned if c in tokenizer.chars)
    if known != cleaned:
        print(f"  (dropped characters outside the vocabulary: {sorted(set(cleaned) - set(known))})")
    ids = tokenizer.encode(known)[-block:]
    return tl.Tensor(np.asarray([ids], dtype=np.int64))             # (batch=1, T0)

prompt_ids = preprocess(prompt_text + "☺\r\n")
print(prompt_ids.shape, prompt_ids.numpy()[0].tolist(), "=", repr(char_tok.decode(prompt_ids.numpy()[0])))
""")

md(r"""
### Step 2 · 模型预测 Model prediction

One forward pass gives logits $z \in \mathbb R^{V}$ at every position; the last position's
logits, through a softmax, are the model's distribution over the next character:

$$ p(x_{t+1} = i \mid x_{\le t}) = \mathrm{softmax}(z)_i = \frac{e^{z_i}}{\sum_{j} e^{z_j}} $$
""")

code(r"""
model.eval()
with tl.no_grad():
    logits, _ = model(prompt_ids)                   # (1, T0, V)
probs = F.softmax(logits[0, -1], axis=-1).numpy()   # the next character's distribution
top = np.argsort(-probs)[:10]
fig, ax = plt.subplots(figsize=(6, 2.4))
ax.bar(range(10), probs[top], color="#4c72b0")
ax.set_xticks(range(10), [repr(char_tok.decode([i])) for i in top])
ax.set_ylabel("probability"); ax.set_title(f"next character after {char_tok.decode(prompt_ids.numpy()[0])!r}")
plt.tight_layout(); plt.show()
print("sum of probabilities:", probs.sum().round(6))
""")

md(r"""
Generating text is this prediction in a loop: pick a token, append it, predict again
(*autoregressive* decoding). Written out, with the greedy choice (always the most likely
token):
""")

code(r"""
from tinyllm.generate import generate

ids = prompt_ids.numpy()
with tl.no_grad():
    for _ in range(100):
        logits, _ = model(tl.Tensor(ids[:, -config.block_size:]))   # predict
        next_id = logits.numpy()[:, -1].argmax(axis=-1)              # choose (greedy)
        ids = np.concatenate([ids, next_id[:, None]], axis=1)       # append, repeat
by_hand = ids
library = generate(model, prompt_ids, 100, temperature=0)            # the same, with a KV cache
print("our loop == tinyllm.generate:", np.array_equal(by_hand, library))
""")

md(r"""
Greedy decoding tends to repeat itself. Sampling from the softmax with a **temperature**
$\tau$, i.e. from $\mathrm{softmax}(z/\tau)$, keeps variety; $\tau < 1$ sharpens the
distribution, $\tau > 1$ flattens it. `top_p` (nucleus sampling) keeps only the most likely
tokens that together hold probability $p$.
""")

code(r"""
tl.manual_seed(0)
sampled = generate(model, prompt_ids, 200, temperature=0.8, top_p=0.95, rng=np.random.default_rng(0))
""")

md(r"""
### Step 3 · 输出后处理 Output postprocessing

The model produced ids; the user wants text. Postprocessing here: decode the ids, drop an
unfinished last line (a model stopped by a length limit stops mid-word), and strip
surrounding whitespace — "格式转换" (format conversion) in its simplest form.
""")

code(r"""
def postprocess(ids, tokenizer=char_tok):
    text_out = tokenizer.decode(ids.tolist())
    cut = text_out.rfind("\n")
    if cut > len(text_out) // 2:                        # drop an unfinished last line
        text_out = text_out[:cut]                       # (but never most of the text)
    return text_out.strip()

print("greedy:\n" + postprocess(by_hand[0]))
print("\nsampled (τ = 0.8, top-p 0.95):\n" + postprocess(sampled[0]))
""")

md(r"""
Greedy decoding falls into a loop; sampling does not. The text is far from the original,
but after 800 small steps the model has picked up its format — short lines, capitals after
line breaks, punctuation, frequent short words — which is what a bigram model cannot do.

### The same three steps for an encoder–decoder: translating dates

The seed's picture of a decoder "generating output from features" is easiest to see in a
translation task. `tinyllm.data` generates one: English dates in six formats → ISO 8601
(`"the 5th of march 1998"` → `"1998-03-05"`). We train the seed's `TransformerModel` (1
encoder and 1 decoder layer, width 64) for 600 steps with the loop from §2.2; the
`TranslationTask` helper from `tinyllm.train` supplies the data, the padded batches and the
loss (cross-entropy with teacher forcing: the decoder reads `<bos> + target` and predicts
`target + <eos>`).
""")

code(r"""
import dataclasses
from tinyllm.train import TrainConfig, PRESETS, TranslationTask

cfg = dataclasses.replace(TrainConfig(**PRESETS["seq2seq"]), n_layer=1, batch_size=32, dropout=0.1)
task = TranslationTask(cfg, n_pairs=4_000 if FAST else 20_000)
tl.manual_seed(0)
translator = task.build_model()
print(f"TransformerModel: {translator.num_parameters():,} parameters; "
      f"{len(task.text_pairs['train']):,} training pairs, e.g. {task.text_pairs['train'][:2]}")

s2s_steps = 30 if FAST else 600
s2s_warmup = min(cfg.warmup_iters, s2s_steps // 4)
s2s_opt = AdamW(param_groups(translator.named_parameters(), weight_decay=cfg.weight_decay),
                lr=cfg.learning_rate, betas=(0.9, 0.99))
s2s_rng, s2s_losses, t0 = np.random.default_rng(0), [], time.perf_counter()
translator.train()
for step in range(s2s_steps):
    for group in s2s_opt.param_groups:
        group["lr"] = cosine_with_warmup(step, cfg.learning_rate, cfg.min_lr, s2s_warmup, s2s_steps)
    loss, _, _ = task.loss(translator, task.batch("train", s2s_rng))   # forward
    s2s_opt.zero_grad(); loss.backward()                              # backward
    clip_grad_norm_(translator.parameters(), 1.0); s2s_opt.step()     # update
    s2s_losses.append(loss.item())
print(f"{s2s_steps} steps in {time.perf_counter() - t0:.0f} s; last batch loss {s2s_losses[-1]:.4f}")
fig, ax = plt.subplots(figsize=(5, 2.5))
ax.semilogy(s2s_losses, lw=0.8); ax.set_xlabel("step"); ax.set_ylabel("loss (log scale)")
ax.set_title("TransformerModel on dates → ISO 8601"); plt.tight_layout(); plt.show()
""")

md(r"""
Now the pipeline, one step per cell. **Preprocessing** encodes a batch of sources with the
source tokenizer and pads them to a common length; the padding mask (True at padding) tells
attention to ignore the pads.
""")

code(r"""
queries = ["the 21st of july 1969", "Nov 9, 1989", "14.07.2024", "1 January 2000"]
encoded = [task.src_tok.encode(clean_text(q)) for q in queries]
S = max(map(len, encoded))
src_ids = np.zeros((S, len(queries)), dtype=np.int64)       # (S, batch), 0 = <pad>
src_pad = np.ones((len(queries), S), dtype=bool)            # (batch, S), True at padding
for b, e in enumerate(encoded):
    src_ids[:len(e), b], src_pad[b, :len(e)] = e, False
print("src ids (S, batch):", src_ids.shape, "| padding per sequence:", src_pad.sum(axis=1))
""")

md(r"""
**Prediction** runs the encoder once (its output is the "特征表示", the memory) and the decoder
once per new token, each time on everything written so far, choosing the most likely next
character (greedy). We print the partial outputs to watch the decoder write:
""")

code(r"""
BOS, EOS = task.tgt_tok.special_tokens["<bos>"], task.tgt_tok.special_tokens["<eos>"]
translator.eval()
with tl.no_grad():
    memory = translator.encode(tl.Tensor(src_ids), src_padding_mask=tl.Tensor(src_pad))   # (S, batch, 64)
    out = np.full((1, len(queries)), BOS)
    for t in range(12):
        mask = TransformerModel.generate_square_subsequent_mask(out.shape[0])
        logits = translator.decode(tl.Tensor(out), memory, tgt_mask=mask, memory_padding_mask=tl.Tensor(src_pad))
        next_ids = logits.numpy()[-1].argmax(axis=-1)                # the last position predicts
        out = np.concatenate([out, next_ids[None]], axis=0)
        if t in (0, 3, 6):
            print(f"after {t + 1:2d} tokens:", [task.tgt_tok.decode(out[1:, b]) for b in range(len(queries))])
        if (out == EOS).any(axis=0).all():
            break
print("memory shape (S, batch, d_model):", memory.shape)
""")

md(r"""
**Postprocessing** turns ids into the final format: cut at `<eos>`, decode without special
tokens, and check that the string is a valid date — the kind of format check a real system
runs before showing an answer.
""")

code(r"""
import datetime

def postprocess_date(column):
    ids = column[1:].tolist()                                          # drop <bos>
    ids = ids[:ids.index(EOS)] if EOS in ids else ids                  # cut at <eos>
    answer = task.tgt_tok.decode(ids, skip_special_tokens=True)
    try:
        return answer, datetime.date.fromisoformat(answer).strftime("%A %d %B %Y")
    except ValueError:
        return answer, "not a valid date"

for b, q in enumerate(queries):
    iso, check = postprocess_date(out[:, b])
    print(f"{q:24} → {iso:12} ({check})")
""")

md(r"""
Where did the decoder look? The cross-attention weights of the last decoding step (one row
per target character, one column per source character) show the decoder reading the year
digits while it writes the year, and the month and day while it writes those:
""")

code(r"""
b = 0
cross = translator.attention_maps()["decoder.layers.0.multihead_attn"][b].numpy().mean(axis=0)  # (T, S)
n_out = out.shape[0] - 1
src_chars = list(queries[b]); tgt_chars = [task.tgt_tok.decode([i]) for i in out[:n_out, b]]
fig, ax = plt.subplots(figsize=(7, 3.6))
ax.imshow(cross[:n_out, :len(src_chars)], cmap="viridis")
ax.set_xticks(range(len(src_chars)), src_chars); ax.set_yticks(range(n_out), tgt_chars)
ax.set_xlabel("source character (key)"); ax.set_ylabel("decoder input (query)")
ax.set_title("cross-attention: where the decoder reads the source"); plt.tight_layout(); plt.show()

val_pairs = task.text_pairs["val"][:50 if FAST else 200]
from tinyllm.generate import greedy_translate
predictions = greedy_translate(translator, [s for s, _ in val_pairs], task.src_tok, task.tgt_tok)
exact = np.mean([p == t for p, (_, t) in zip(predictions, val_pairs)])
print(f"exact match on {len(val_pairs)} held-out dates: {exact:.1%}")
""")

md(r"""
(Row *i* is the decoder's query after reading target position *i*, i.e. while predicting
character *i + 1*; the first row belongs to `<bos>`.) `tinyllm.generate.greedy_translate`
is the three steps above in one function; `beam_search` keeps several candidates instead of
one.

## Try it

1. **BPE instead of characters.** Re-run §2.2 with `bpe` (512 tokens) instead of `char_tok`
   (use `bpe.encode` and `vocab_size=bpe.vocab_size`). *Expected* (800 steps, measured on
   Tiny Shakespeare): validation loss ≈ 3.5 nats per *token* against 2.1 for characters —
   worse at first sight, but each BPE token carries ≈ 1.9 characters, so per *character* it
   is ≈ 1.83, better than the character model. Compare language models per character (or
   per byte), never per token, when their tokenizers differ.
2. **Causality, once more.** In the encoder–decoder, change one *source* character and see
   which decoder outputs change. *Expected:* all of them — cross-attention is not masked.
   Change a *target* token instead: only that position and the ones after it change.
3. **Temperature.** Sample 200 characters at τ = 0.2, 1.0 and 1.5. *Expected:* 0.2 repeats
   a few common words; 1.0 is varied with more misspellings; 1.5 is close to random letters.
4. **Longer training.** Set `steps = 2000` (about 2 minutes). *Expected:* validation loss
   ≈ 1.9 and text with more real words; the gap between training and validation loss opens
   (≈ 0.17 against ≈ 0.05 after 800 steps): the model starts to memorise its training text.
5. **Unknown characters.** `char_tok.encode("ü")` raises a `ValueError` naming the
   character and its position. *Expected:* that is why `preprocess` filters; a BPE tokenizer
   never has this problem (every string is bytes).

## Summary

| seed (§2) | what this chapter showed |
|---|---|
| Transformer 架构, 基于自注意力机制 | encoder, decoder, encoder–decoder and GPT built from the same `tinyllm.nn` layers, run on a toy batch |
| 编码器 … 转换为特征表示 | the encoder maps 7 tokens to 7 feature vectors; each depends on the whole input (changing the last token moves all of them) |
| 解码器 … 根据特征表示生成输出文本 | the decoder writes dates character by character while cross-attending to the encoder's memory |
| 数据预处理: 清洗、分词 | `clean_text` (line endings, control characters, Unicode NFC); character and BPE tokenizers, sequence length vs vocabulary size |
| 模型构建 | a 2-layer GPT, parameters counted by part; initial loss ≈ ln V |
| 模型训练 | forward → backward → clip → AdamW, warmup + cosine; loss curves |
| 模型评估 | validation loss, perplexity, accuracy, against uniform, unigram and bigram baselines |
| 推理: 输入预处理 → 模型预测 → 输出后处理 | clean + encode + crop; next-token softmax and the autoregressive loop (= `generate`); decode + format check, for GPT and for the encoder–decoder |

Next: chapter 3 opens the box labelled "self-attention" and computes it by hand.
""")


if __name__ == "__main__":
    nb.build("02_core_concepts.ipynb")
