"""Builds chapters/05_project_practice.ipynb (seed § 5, 项目实践).

    python chapters/build/ch05_project_practice.py          # full run, saved with outputs
    python chapters/build/ch05_project_practice.py --fast   # TINYLLM_FAST=1 check, to /tmp
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Notebook  # noqa: E402

nb = Notebook()
md, code = nb.md, nb.code

# ----------------------------------------------------------------------------------------- title
md(r"""
# 5 · 项目实践 — The seed's code, complete

> **5. 项目实践：代码实例和详细解释说明** *(project practice: a code example, explained in detail)*

Section 5 of the seed is one block of code: a PyTorch class `TransformerModel` with an
encoder (编码器) and a decoder (解码器), whose interesting lines are all elided as `# ...`.
This chapter fills in every `# ...`, trains the model on a small translation task, decodes
with it, looks inside it, and then shows the same model in PyTorch, number for number.

**What you will build**

1. The seed's `TransformerModel(ntoken, ninp, nhead, nhid, nlayers, dropout=0.5)`, complete,
   in tinyllm (NumPy, hand-written backward), and every formula it computes.
2. A toy translation task — English dates into ISO 8601 (`"the 5th of March 1998"` →
   `"1998-03-05"`) — and a training loop that calls the seed's seven-argument `forward`.
3. Greedy decoding and beam search, and what each gets right and wrong.
4. Encoder self-attention, decoder self-attention and cross-attention maps of the trained model.
5. The same class written with `torch.nn.TransformerEncoder`/`TransformerDecoder`: same
   weights → same logits and gradients; and trained side by side.

A full run takes about 3 minutes on 2 CPU cores.
""")

code(r"""
import os, sys, time, math, re, inspect
FAST = os.environ.get("TINYLLM_FAST") == "1"   # CI sets this: fewer steps, same cells
try:
    import tinyllm
except ImportError:                               # run from chapters/ without installing
    sys.path.insert(0, os.path.abspath(".."))
    import tinyllm

import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Code, Markdown, display

import tinyllm as tl
import tinyllm.functional as F
from tinyllm import nn
from tinyllm.models import TransformerModel
from tinyllm.data import make_date_pairs, date_tokenizers, encode_pairs, Seq2SeqDataset
from tinyllm.generate import greedy_decode, greedy_translate, beam_search
from tinyllm.optim import AdamW, param_groups, clip_grad_norm_, cosine_with_warmup

plt.rcParams.update({"figure.dpi": 85, "axes.grid": True, "grid.alpha": 0.3})
np.set_printoptions(precision=4, suppress=True, linewidth=110)
print("fast mode" if FAST else "full run", "| tinyllm", tl.__version__, "| numpy", np.__version__)
""")

# ----------------------------------------------------------------------------------------- 1
md(r"""
## 1 · The seed's code, as written

This is the seed's block, verbatim:

```python
import torch
import torch.nn as nn

class TransformerModel(nn.Module):
    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
        super(TransformerModel, self).__init__()
        # ...
        self.encoder = nn.TransformerEncoder(encoder_layer, nlayers)
        self.decoder = nn.TransformerDecoder(decoder_layer, nlayers)
        # ...

    def forward(self, src, tgt, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, memory_mask):
        # ...
        src = self.encoder(src, src_mask, src_padding_mask)
        output = self.decoder(tgt, src, tgt_mask, memory_mask, tgt_padding_mask)
        # ...
        return output
```

The visible lines fix the shape of the model: an encoder stack of `nlayers` layers, a decoder
stack of `nlayers` layers, and a `forward` that runs the encoder over the source and the
decoder over the target while it looks at the encoder's output. The `# ...` hide everything
that turns token ids into vectors and vectors back into token scores:

| `# ...` in | what must be there |
|---|---|
| `__init__`, before the stacks | token embeddings (one table for the source, one for the target), a positional encoding, the two layer objects `encoder_layer` and `decoder_layer` |
| `__init__`, after the stacks | an output projection from `ninp` features to `ntoken` scores; an initialisation |
| `forward`, before the encoder | look up embeddings, scale, add positions |
| `forward`, after the decoder | project to vocabulary scores (logits) |

The argument names come from the PyTorch tutorials: `ntoken` vocabulary size, `ninp` the
model width $d_\text{model}$, `nhead` attention heads, `nhid` the feed-forward width, `nlayers`
layers per stack.
""")

# ----------------------------------------------------------------------------------------- 2
md(r"""
## 2 · The class, complete

Here is tinyllm's `TransformerModel` — the seed's class with every `# ...` filled in. It is
the library's own source, printed from the module, so what you read is what runs:
""")

code(r"""
display(Code(inspect.getsource(TransformerModel.__init__) + "\n" + inspect.getsource(TransformerModel.embed)
             + "\n" + inspect.getsource(TransformerModel.forward), language="python"))
""")

md(r"""
Line for line against the seed:

| seed | tinyllm |
|---|---|
| `super(TransformerModel, self).__init__()` | `super().__init__()` |
| `# ...` | `src_embedding`, `tgt_embedding` ($\text{ntoken}\times\text{ninp}$ each), `pos_encoder`, `encoder_layer`, `decoder_layer` |
| `self.encoder = nn.TransformerEncoder(encoder_layer, nlayers)` | the same line (`tl.nn.TransformerEncoder` has torch's signature) |
| `self.decoder = nn.TransformerDecoder(decoder_layer, nlayers)` | the same line |
| `# ...` | `output_projection = nn.Linear(ninp, ntoken)`; `init_weights()` |
| `# ...` (forward) | `src = self.embed(self.src_embedding, src)`, the same for `tgt` |
| `src = self.encoder(src, src_mask, src_padding_mask)` | the same line |
| `output = self.decoder(tgt, src, tgt_mask, memory_mask, tgt_padding_mask)` | the same call, plus `memory_key_padding_mask=src_padding_mask` (below) |
| `# ...` | `output = self.output_projection(output)` |

One deliberate addition: the seed hands the decoder five positional arguments, which leave
out `memory_key_padding_mask`, so the decoder's cross-attention would also look at the
*padding* of shorter sources in a batch. tinyllm passes `src_padding_mask` there too, as the
PyTorch translation tutorial does.

### 2.1 Embeddings and positions

A token id $i$ becomes the row $E[i]$ of an embedding table (词嵌入), scaled by
$\sqrt{d_\text{model}}$, plus a fixed sinusoidal position code (位置编码) for its position
$pos$:

$$x_{pos} = \sqrt{d_\text{model}}\;E[\text{id}_{pos}] + PE_{pos},\qquad
PE_{pos,\,2i} = \sin\!\Big(\frac{pos}{10000^{2i/d_\text{model}}}\Big),\quad
PE_{pos,\,2i+1} = \cos\!\Big(\frac{pos}{10000^{2i/d_\text{model}}}\Big)$$

The embeddings start small (uniform in $[-0.1, 0.1]$) while $PE$ lies in $[-1, 1]$; the
$\sqrt{d_\text{model}}$ factor puts them on a similar scale. Attention itself has no notion of
order — permute the tokens and the weighted sums permute with them — so $PE$ is the only place
where position enters the model.
""")

code(r"""
pe = nn.PositionalEncoding(64, dropout=0.0).pe.numpy()          # (max_len, d_model)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
im = axes[0].imshow(pe[:40].T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
axes[0].set(xlabel="position", ylabel="feature i", title="PE[pos, i] for d_model = 64"); axes[0].grid(False)
fig.colorbar(im, ax=axes[0])
for i in (0, 2, 8, 20):
    axes[1].plot(pe[:40, i], label=f"feature {i}")
axes[1].set(xlabel="position", title="low features turn fast, high features slowly"); axes[1].legend(fontsize=8)
plt.tight_layout(); plt.show()
""")

md(r"""
### 2.2 The encoder and decoder layers

Each `TransformerEncoderLayer` has two sublayers — self-attention (自注意力) and a
position-wise feed-forward network — each wrapped in a residual connection and a LayerNorm
(post-norm, the paper's and torch's default):

$$h = \mathrm{LayerNorm}\big(x + \mathrm{MultiHead}(x, x, x)\big),\qquad
\text{out} = \mathrm{LayerNorm}\big(h + \mathrm{FFN}(h)\big),\qquad
\mathrm{FFN}(h) = W_2\,\mathrm{ReLU}(W_1 h + b_1) + b_2$$

with $W_1$ of size $\text{nhid}\times\text{ninp}$. Multi-head attention is the seed's formula
(§ 4.1) run $H$ = `nhead` times on slices of width $d_k = d_\text{model}/H$:

$$\mathrm{Attention}(Q,K,V) = \mathrm{softmax}\Big(\frac{QK^\top}{\sqrt{d_k}} + M\Big)V,\qquad
\mathrm{MultiHead} = \mathrm{concat}(\text{head}_1,\dots,\text{head}_H)\,W_O,\quad
\text{head}_h = \mathrm{Attention}(XW_Q^{h}, XW_K^{h}, XW_V^{h})$$

where $M$ is a mask: $0$ where attention is allowed, $-\infty$ where it is not. A
`TransformerDecoderLayer` has three sublayers: masked self-attention over the target so far,
**cross-attention** (交叉注意力) whose queries come from the target and whose keys and values
come from the encoder's output ("memory"), then the feed-forward network:

$$h_1 = \mathrm{LN}\big(y + \mathrm{MultiHead}(y, y, y;\ M_\text{causal})\big),\quad
h_2 = \mathrm{LN}\big(h_1 + \mathrm{MultiHead}(h_1, \text{mem}, \text{mem})\big),\quad
\text{out} = \mathrm{LN}\big(h_2 + \mathrm{FFN}(h_2)\big)$$

Finally `output_projection` maps each decoder vector to `ntoken` scores (logits) $z$, and
$p(y_t = j) = \mathrm{softmax}(z_t)_j$.

The model we train: `ninp=64`, `nhead=4` (so $d_k = 16$), `nhid=256`, `nlayers=2`,
`dropout=0.1`. (The seed's default, 0.5, comes from PyTorch's word-language-model tutorial;
with 20,000 training pairs for a task this regular, heavy dropout mainly slows learning — see
*Try it*.)
""")

code(r"""
src_tok, tgt_tok = date_tokenizers()              # character tokenizers; <pad>=0, <bos>=1, <eos>=2
ntoken = max(src_tok.vocab_size, tgt_tok.vocab_size)   # the seed has one ntoken for both sides
tl.manual_seed(0)
model = TransformerModel(ntoken=ntoken, ninp=64, nhead=4, nhid=256, nlayers=2, dropout=0.1)
print(model)
print(f"\nsource vocabulary {src_tok.vocab_size}, target vocabulary {tgt_tok.vocab_size}, ntoken = {ntoken}")
print(f"parameters: {model.num_parameters():,}")
""")

md(r"""
### 2.3 The masks

`forward` takes five masks, all with torch's conventions:

| argument | shape | meaning |
|---|---|---|
| `src_mask` | $(S, S)$ | which source positions may look at which (None: all) |
| `tgt_mask` | $(T, T)$ | causal: target position $t$ may only see positions $\le t$ |
| `memory_mask` | $(T, S)$ | which source positions each target position may see (None: all) |
| `src_padding_mask` | $(B, S)$ | True at source padding |
| `tgt_padding_mask` | $(B, T)$ | True at target padding |

The causal mask is the one that makes a decoder a *generator*: during training the decoder
sees the whole target at once (teacher forcing), and without the mask position $t$ could
simply read token $t+1$ — the answer it is asked to predict.

$$M_\text{causal}[i, j] = \begin{cases}0 & j \le i\\ -\infty & j > i\end{cases}
\qquad\Rightarrow\qquad e^{-\infty} = 0:\ \text{no weight on the future}$$
""")

code(r"""
print(model.generate_square_subsequent_mask(5).numpy())
""")

# ----------------------------------------------------------------------------------------- 3
md(r"""
## 3 · The task: dates into ISO 8601

A real translation corpus needs a big model and days of training (seed § 1.2). The toy task
keeps what makes translation a *sequence-to-sequence* problem — input and output differ in
length, and parts must be reordered and rewritten (`March` → `03`, the year moves to the
front) — while a model of 240 k parameters learns it in minutes. `make_date_pairs` draws
dates from 1900–2099 in six formats, from a seed, so everyone gets the same data.

This is the seed's data preprocessing (数据预处理, § 2.2): the text is generated clean, and
tokenization (分词) is one id per character.
""")

code(r"""
n_train, n_val = (2_000, 500) if FAST else (20_000, 1_000)
pairs = make_date_pairs(n_train + n_val, seed=0)           # unique sources; cut once: no overlap
train_pairs, val_pairs = pairs[:n_train], pairs[n_train:]
for source, target in train_pairs[:8]:
    print(f"{source!r:30} -> {target!r}")
print(f"\n{len(train_pairs):,} training pairs, {len(val_pairs):,} validation pairs")
print("source ids of", repr(train_pairs[0][0]), ":", src_tok.encode(train_pairs[0][0]))
""")

md(r"""
`Seq2SeqDataset` pads pairs into batches laid out `(seq, batch)` as the seed's PyTorch code
expects. Teacher forcing (教师强制): the decoder reads `tgt_in` = `<bos>` + target and must
output `tgt_out` = target + `<eos>`, one position ahead; padding in `tgt_out` is marked
$-100$ so the loss skips it.
""")

code(r"""
train_set = Seq2SeqDataset(encode_pairs(train_pairs, src_tok, tgt_tok), pad_id=0, bos_id=1, eos_id=2)
val_set = Seq2SeqDataset(encode_pairs(val_pairs, src_tok, tgt_tok), pad_id=0, bos_id=1, eos_id=2)
batch = train_set.make_batch([0, 1, 3])
for name, array in batch._asdict().items():
    print(f"{name:17} shape {str(array.shape):8} {array.dtype}")
print()
show = lambda ids, tok: "".join("·" if i == 0 else tok.decode([i]) if i > 0 else "_" for i in ids)
for column in range(3):
    print("src    ", show(batch.src[:, column], src_tok))
    print("tgt_in ", show(batch.tgt_in[:, column], tgt_tok).replace("<bos>", "^"),
          "   tgt_out", show(batch.tgt_out[:, column], tgt_tok).replace("<eos>", "$"))
print("(· padding, ^ <bos>, $ <eos>, _ ignored label)")
""")

# ----------------------------------------------------------------------------------------- 4
md(r"""
## 4 · Training

The loss is the cross-entropy (交叉熵, seed § 3.2) of the target tokens, averaged over the
$N$ non-padding positions:

$$\mathcal{L}(\theta) = -\frac{1}{N}\sum_{(t,b)\,:\,y_{t,b}\neq\text{pad}} \log\,\mathrm{softmax}(z_{t,b})_{y_{t,b}}$$

`loss.backward()` is the seed's backpropagation (反向传播, § 4.2): the chain rule
$\frac{\partial L}{\partial w} = \frac{\partial L}{\partial y}\frac{\partial y}{\partial z}\frac{\partial z}{\partial w}$
applied op by op, backwards through the graph the forward built, filling `p.grad` for every
parameter. AdamW then updates the weights, with a learning rate $\eta$ that warms up linearly
for $W$ steps and then follows a half cosine down to its minimum at step $D$:

$$\eta(s) = \eta_{\max}\cdot\frac{s+1}{W}\ \ (s < W),\qquad
\eta(s) = \eta_{\min} + \tfrac12\Big(1+\cos\frac{\pi(s-W)}{D-W}\Big)(\eta_{\max}-\eta_{\min})\ \ (s \ge W)$$

with $\eta_{\max}$ = `max_lr`, $\eta_{\min}$ = `min_lr`, $W$ = `warmup`, $D$ = `steps`.

The loop below is written out, not hidden in a trainer, so the seed's `forward` call is
visible: `model(src, tgt, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, memory_mask)`.
""")

code(r"""
steps = 10 if FAST else 400
batch_size = 16 if FAST else 64
max_lr, min_lr = 3e-3, 3e-4
warmup = 3 if FAST else 40
eval_every = 5 if FAST else 50

def to_tensors(b):
    # host NumPy batch -> tl.Tensors; (seq, batch) ids, (batch, seq) boolean padding masks
    return (tl.Tensor(b.src), tl.Tensor(b.tgt_in), tl.Tensor(b.tgt_out),
            tl.Tensor(b.src_padding_mask), tl.Tensor(b.tgt_padding_mask))

def batch_loss(model, b):
    src, tgt_in, tgt_out, src_pad, tgt_pad = to_tensors(b)
    tgt_mask = model.generate_square_subsequent_mask(tgt_in.shape[0])
    logits = model(src, tgt_in, None, tgt_mask, src_pad, tgt_pad, None)    # the seed's forward
    return F.cross_entropy(logits, tgt_out)          # (T, B, ntoken) vs (T, B); -100 ignored

val_batch = val_set.make_batch(range(256))           # a fixed batch for the validation loss

def validation_loss(model):
    model.eval()
    with tl.no_grad():
        loss = batch_loss(model, val_batch).item()
    model.train()
    return loss

tl.manual_seed(0)
model = TransformerModel(ntoken, ninp=64, nhead=4, nhid=256, nlayers=2, dropout=0.1)
initial_state = model.state_dict()                    # kept for the PyTorch comparison in § 7
optimizer = AdamW(param_groups(model.named_parameters(), weight_decay=0.01), lr=max_lr, betas=(0.9, 0.98))
batch_rng = np.random.default_rng(0)

history = {"step": [], "train": [], "val_step": [], "val": []}
start, start_cpu = time.perf_counter(), time.process_time()
for step in range(steps):
    lr = cosine_with_warmup(step, max_lr, min_lr, warmup, steps)
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss = batch_loss(model, train_set.get_batch(batch_size, batch_rng))   # forward
    optimizer.zero_grad()
    loss.backward()                                                        # backward: dL/dw
    clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()                                                       # update
    history["step"].append(step); history["train"].append(loss.item())
    if (step + 1) % eval_every == 0:
        history["val_step"].append(step + 1); history["val"].append(validation_loss(model))
        print(f"step {step + 1:4d}  lr {lr:.2e}  train loss {loss.item():.4f}  val loss {history['val'][-1]:.4f}"
              f"  ({time.perf_counter() - start:.0f} s)")
train_seconds, train_cpu = time.perf_counter() - start, time.process_time() - start_cpu
print(f"\n{steps} steps in {train_seconds:.0f} s ({1000 * train_seconds / steps:.0f} ms per step; "
      f"CPU time {1000 * train_cpu / steps:.0f} ms per step)")
""")

code(r"""
fig, ax = plt.subplots(figsize=(7, 3.4))
ax.plot(history["step"], history["train"], lw=0.8, alpha=0.6, label="train (one batch)")
ax.plot(history["val_step"], history["val"], "o-", label="validation (256 pairs)")
ax.set(yscale="log", xlabel="step", ylabel="cross-entropy (log scale)",
       title="TransformerModel on dates → ISO 8601")
ax.legend(); plt.tight_layout(); plt.show()
""")

md(r"""
The loss falls from $\ln(\text{ntoken}) \approx 3.8$ (a uniform guess over 45 tokens) to a few
hundredths: per character, the model is nearly always right. Character accuracy is not what a
user sees, though — a date with one wrong digit is a wrong date. The next section measures
whole outputs.
""")

# ----------------------------------------------------------------------------------------- 5
md(r"""
## 5 · Inference: greedy decoding and beam search

Inference (推理, seed § 2.3) is three steps: **preprocess** the input (encode the characters,
pad), **predict** (run the model), **postprocess** (turn ids back into text). Prediction for a
sequence model is a loop: the encoder runs once, the decoder runs once per output token, each
time on the prefix produced so far.

**Greedy decoding** takes the most likely token at every step:

$$\hat y_t = \arg\max_{j}\ p_\theta(j \mid \hat y_{<t},\, x)$$

Here is that loop by hand for one date, showing the three most likely tokens at each step —
the same computation `greedy_decode` does for a whole batch.
""")

code(r"""
def explain_greedy(text, top=3):
    model.eval()
    src = np.array(src_tok.encode(text))[:, None]                 # preprocess: (S, 1) ids
    with tl.no_grad():
        memory = model.encode(tl.Tensor(src))                     # the encoder runs once
        ys, rows = [1], []                                        # start with <bos>
        for _ in range(12):
            tgt = tl.Tensor(np.array(ys)[:, None])
            logits = model.decode(tgt, memory, tgt_mask=model.generate_square_subsequent_mask(len(ys)))
            probs = F.softmax(logits[-1, 0], axis=-1).numpy()     # p(next token | prefix, source)
            best = np.argsort(-probs)[:top]
            rows.append(probs)
            print(f"step {len(ys):2d}: " + "   ".join(f"{tgt_tok.decode([int(j)])!r:8} {probs[j]:.3f}" for j in best))
            ys.append(int(best[0]))
            if ys[-1] == 2:                                       # <eos>
                break
    model.train()
    answer = tgt_tok.decode(ys[1:], skip_special_tokens=True)   # postprocess
    return answer, np.array(rows)

answer, step_probs = explain_greedy("the 21st of February 1987")
print("\nanswer:", answer)
""")

code(r"""
fig, ax = plt.subplots(figsize=(7, 3.2))
labels = [tgt_tok.decode([j]) for j in range(tgt_tok.vocab_size)]
im = ax.imshow(step_probs[:, :tgt_tok.vocab_size].T, cmap="Blues", aspect="auto", vmin=0, vmax=1)
ax.set_yticks(range(tgt_tok.vocab_size), labels, fontsize=8); ax.set_xlabel("decoding step"); ax.grid(False)
ax.set_title("p(next token) at each step for 'the 21st of February 1987'")
fig.colorbar(im, ax=ax); plt.tight_layout(); plt.show()
""")

md(r"""
Most steps are near-certain. Now greedy decoding over the validation set, in batches
(`greedy_translate` = preprocess + `greedy_decode` + postprocess), with the **exact match**:
the fraction of outputs equal to the reference, character for character. The figure splits
it by source format.
""")

code(r"""
def date_format(source):
    if source.startswith("the "):
        return "the 5th of march 1998"
    if re.fullmatch(r"\d\d\.\d\d\.\d{4}", source):
        return "05.03.1998"
    first = source.split()[0]
    if first[0].isdigit():
        return "5 mar 1998" if len(source.split()[1]) == 3 else "5 march 1998"
    return "mar 5, 1998" if len(first) == 3 else "march 5, 1998"

n_eval = 50 if FAST else len(val_pairs)
sources = [s for s, _ in val_pairs[:n_eval]]
references = [t for _, t in val_pairs[:n_eval]]
start = time.perf_counter()
greedy = []
for i in range(0, n_eval, 250):
    greedy += greedy_translate(model, sources[i:i + 250], src_tok, tgt_tok)
print(f"greedy decoding of {n_eval} sources: {time.perf_counter() - start:.1f} s")
correct = np.array([g == r for g, r in zip(greedy, references)])
print(f"exact match: {correct.mean():.1%} ({correct.sum()} of {n_eval})")

formats = [date_format(s) for s in sources]
names = sorted(set(formats))
rates = [correct[[f == n for f in formats]].mean() for n in names]
fig, ax = plt.subplots(figsize=(7, 2.8))
ax.barh(names, rates, color="tab:blue"); ax.set_xlim(0, 1.12); ax.set_xlabel("exact match (greedy)")
for y, r in enumerate(rates):
    ax.text(r + 0.01, y, f"{r:.1%}", va="center", fontsize=9)
ax.set_title("exact match by source format"); plt.tight_layout(); plt.show()
""")

md(r"""
**Beam search** (束搜索) keeps the $k$ best prefixes instead of one. Each step extends every
prefix by every token, scores each by its total log-probability, and keeps the best $k$:

$$\text{score}(y_{1..t}) = \sum_{s=1}^{t} \log p_\theta(y_s \mid y_{<s}, x),\qquad
\text{final rank: } \frac{\text{score}(Y)}{\mathrm{lp}(Y)},\quad \mathrm{lp}(Y) = \Big(\frac{5 + |Y|}{6}\Big)^{\alpha}$$

(the length penalty of Google's NMT system, $\alpha = 0.6$, so that long outputs are not
punished for having more terms in the sum). Greedy is beam search with $k = 1$. Below: the
greedy mistakes, decoded again with a beam of 4.
""")

code(r"""
mistakes = [i for i in range(n_eval) if not correct[i]][: (3 if FAST else 12)]
fixed = 0
print(f"{'source':28} {'reference':11} {'greedy':11} {'beam (k=4)':11} {'score':>7} {'P(beam answer)':>14}")
for i in mistakes:
    ids, score = beam_search(model, src_tok.encode(sources[i]), beam_size=4, max_len=12)
    beam = tgt_tok.decode(ids, skip_special_tokens=True)
    fixed += beam == references[i]
    print(f"{sources[i]!r:28} {references[i]:11} {greedy[i]:11} {beam:11} {score:7.3f} {math.exp(score):14.2f}"
          + ("   ✓ fixed" if beam == references[i] else ""))
print(f"\nbeam search fixes {fixed} of {len(mistakes)} greedy mistakes shown")
ids, _ = beam_search(model, src_tok.encode(sources[0]), beam_size=1, max_len=12)
print("beam_size=1 gives greedy's answer:", tgt_tok.decode(ids, skip_special_tokens=True) == greedy[0])
""")

md(r"""
Look at the last column: the model gives its wrong answers probabilities of roughly 0.5 to
0.9 ($e^{\text{score}}$). These mistakes are *confident* and *systematic* — typically a one-digit
day written twice (`2nd` → `22`, `1` → `11`) or two digits of the year swapped. Beam
search can only find an output that the model itself scores higher than greedy's; it cannot
overrule what the model believes, so it changes little here. Beam search earns its cost
where the model is unsure between several continuations and a later token tips the balance
— in real translation, with many plausible outputs, far more often than in this
near-deterministic task. The cure for confident mistakes is more training or more data
(try it below).
""")

# ----------------------------------------------------------------------------------------- 6
md(r"""
## 6 · Looking inside: attention maps

Every attention layer keeps its last weights — the matrix
$\mathrm{softmax}(QK^\top/\sqrt{d_k} + M)$ of shape (batch, heads, queries, keys) — and
`model.attention_maps()` collects them by layer name. First, a check that these weights are
the seed's formula: recompute the first encoder layer's weights by hand, from its parameters
and its input.
""")

code(r"""
text = "the 21st of February 1987"
src = tl.Tensor(np.array(src_tok.encode(text))[:, None])             # (S, 1)
tgt = tl.Tensor(np.array([1] + tgt_tok.encode(answer))[:, None])     # <bos> + answer, (T, 1)
model.eval()
with tl.no_grad():
    model(src, tgt, None, model.generate_square_subsequent_mask(tgt.shape[0]), None, None, None)
    x = model.embed(model.src_embedding, src).numpy()[:, 0]           # encoder layer 0's input (S, 64)
maps = {name: w.numpy()[0] for name, w in model.attention_maps().items()}   # (heads, L, S) each
print("\n".join(f"{name:34} {w.shape}" for name, w in maps.items()))

attn = model.encoder.layers[0].self_attn
W, b = attn.in_proj_weight.numpy(), attn.in_proj_bias.numpy()
E, H = 64, 4; d_k = E // H
Q, K = x @ W[:E].T + b[:E], x @ W[E:2 * E].T + b[E:2 * E]             # (S, 64) each
h = 0                                                                 # head 0: features 0..15
scores = Q[:, h * d_k:(h + 1) * d_k] @ K[:, h * d_k:(h + 1) * d_k].T / np.sqrt(d_k)   # QK^T / sqrt(d_k)
weights = np.exp(scores - scores.max(-1, keepdims=True)); weights /= weights.sum(-1, keepdims=True)  # softmax
print("\nmax |by hand - layer| =", np.abs(weights - maps["encoder.layers.0.self_attn"][h]).max())
""")

code(r"""
src_chars = list(text)
tgt_in = ["<bos>"] + list(answer)                                     # what the decoder reads
tgt_in_chars = [f"{a} → {b}" for a, b in zip(tgt_in, list(answer) + ["<eos>"])]   # reads → predicts
panels = [("encoder.layers.1.self_attn", src_chars, src_chars, "encoder self-attention (layer 2)"),
          ("decoder.layers.1.self_attn", tgt_in_chars, tgt_in, "decoder self-attention (layer 2)"),
          ("decoder.layers.1.multihead_attn", tgt_in_chars, src_chars, "cross-attention (layer 2)")]
fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), gridspec_kw={"width_ratios": [1.2, 0.7, 1.2]})
for ax, (name, rows, cols, title) in zip(axes, panels):
    ax.imshow(maps[name].mean(axis=0), cmap="viridis", vmin=0)      # averaged over the 4 heads
    ax.set_xticks(range(len(cols)), cols, fontsize=8); ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title(title, fontsize=10); ax.set_xlabel("key (attended to)"); ax.grid(False)
axes[0].set_ylabel("query (attending)")
plt.tight_layout(); plt.show()
""")

md(r"""
How to read them: row $i$ is one query position, and its colours (summing to 1) show where it
looks.

* **Encoder self-attention** has no mask: every source character may look at every other.
  In the second layer many positions gather at a few "summary" positions — the end of the
  month word, the digits of the year. Encoder attention builds features; it is not meant to
  be an alignment, and it is the hardest of the three to read.
* **Decoder self-attention** is lower-triangular: the causal mask at work — nothing above the
  diagonal. Rows are labelled *reads → predicts*: the token the decoder reads at that position
  and the token it predicts there.
* **Cross-attention** is where translation happens. Each row reads the source at the
  characters it is about to write: while predicting the year's digits the decoder looks at
  `1987`, for the month at `February`, for the day at `21`. The reordering (year first) shows
  as the bright band jumping from the end of the source to the start.

Individual heads of the last cross-attention layer divide the work:
""")

code(r"""
fig, axes = plt.subplots(2, 2, figsize=(14, 7))
for h, ax in enumerate(axes.flat):
    ax.imshow(maps["decoder.layers.1.multihead_attn"][h], cmap="viridis", vmin=0)
    ax.set_xticks(range(len(src_chars)), src_chars, fontsize=7); ax.set_yticks(range(len(tgt_in_chars)), tgt_in_chars, fontsize=7)
    ax.set_title(f"cross-attention, head {h}", fontsize=10); ax.grid(False)
plt.tight_layout(); plt.show()
""")

# ----------------------------------------------------------------------------------------- 7
md(r"""
## 7 · The same model in PyTorch

The seed's code is PyTorch. tinyllm's layers take torch's constructor arguments and use
torch's parameter names and layouts, so a state dict moves between the two unchanged. Three
checks, from the smallest piece to training.

### 7.1 `tl.nn.Transformer` next to `torch.nn.Transformer`

Build `torch.nn.Transformer`, copy its weights into tinyllm's `nn.Transformer` of the same
configuration, feed both the same inputs and masks:
""")

code(r"""
import warnings
import torch
import torch.nn as tnn
warnings.filterwarnings("ignore", message="enable_nested_tensor is True")   # a torch performance hint
torch.set_num_threads(1)          # matrices 64 wide: one thread is faster than several, and fair to NumPy
torch.manual_seed(0)

reference = tnn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                            dim_feedforward=64, dropout=0.0).eval()
mine = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                      dim_feedforward=64, dropout=0.0)
print(mine.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()}))

S, T, B = 7, 5, 3
src_x, tgt_x = np.random.default_rng(0).standard_normal((2, 7, B, 32)).astype(np.float32)
tgt_x = tgt_x[:T]
causal = np.triu(np.ones((T, T), dtype=bool), 1)                      # True = may not attend
pad = np.zeros((B, S), dtype=bool); pad[0, 5:] = True                 # first source is 5 long
with torch.no_grad():
    expected = reference(torch.from_numpy(src_x), torch.from_numpy(tgt_x), tgt_mask=torch.from_numpy(causal),
                         src_key_padding_mask=torch.from_numpy(pad), memory_key_padding_mask=torch.from_numpy(pad))
got = mine(tl.Tensor(src_x), tl.Tensor(tgt_x), tgt_mask=tl.Tensor(causal),
           src_key_padding_mask=tl.Tensor(pad), memory_key_padding_mask=tl.Tensor(pad))
print("output", got.shape, " max |tinyllm - torch| =", np.abs(got.numpy() - expected.numpy()).max())
""")

md(r"""
### 7.2 The seed's class, complete, in PyTorch

Now the seed's own code with its `# ...` filled in exactly as tinyllm fills them — PyTorch
modules only, the same attribute names. (`enable_nested_tensor=False` keeps torch's encoder
on its ordinary code path.) The trained tinyllm weights load into it unchanged:
""")

code(r"""
class PositionalEncoding(tnn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super().__init__()
        self.dropout = tnn.Dropout(p=dropout)
        position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model, dtype=torch.float64)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe, persistent=False)      # computed (float64), not saved

    def forward(self, x):
        return self.dropout(x + self.pe[:x.size(0)].to(x.dtype))


class TorchTransformerModel(tnn.Module):
    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
        super(TorchTransformerModel, self).__init__()
        self.ninp = ninp
        self.src_embedding = tnn.Embedding(ntoken, ninp)
        self.tgt_embedding = tnn.Embedding(ntoken, ninp)
        self.pos_encoder = PositionalEncoding(ninp, dropout)
        encoder_layer = tnn.TransformerEncoderLayer(ninp, nhead, nhid, dropout)
        decoder_layer = tnn.TransformerDecoderLayer(ninp, nhead, nhid, dropout)
        self.encoder = tnn.TransformerEncoder(encoder_layer, nlayers, enable_nested_tensor=False)
        self.decoder = tnn.TransformerDecoder(decoder_layer, nlayers)
        self.output_projection = tnn.Linear(ninp, ntoken)

    def forward(self, src, tgt, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, memory_mask):
        src = self.pos_encoder(self.src_embedding(src) * math.sqrt(self.ninp))
        tgt = self.pos_encoder(self.tgt_embedding(tgt) * math.sqrt(self.ninp))
        src = self.encoder(src, src_mask, src_padding_mask)
        output = self.decoder(tgt, src, tgt_mask, memory_mask, tgt_padding_mask,
                              memory_key_padding_mask=src_padding_mask)
        output = self.output_projection(output)
        return output


torch_model = TorchTransformerModel(ntoken, 64, 4, 256, 2, dropout=0.1)
print(torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()}))

def torch_batch(b):
    causal = torch.triu(torch.ones(b.tgt_in.shape[0], b.tgt_in.shape[0], dtype=torch.bool), 1)
    return (torch.from_numpy(b.src), torch.from_numpy(b.tgt_in), None, causal,
            torch.from_numpy(b.src_padding_mask), torch.from_numpy(b.tgt_padding_mask), None)

torch_model.eval(); model.eval()
with torch.no_grad():
    torch_logits = torch_model(*torch_batch(val_batch)).numpy()
with tl.no_grad():
    src, tgt_in, _, src_pad, tgt_pad = to_tensors(val_batch)
    tl_logits = model(src, tgt_in, None, model.generate_square_subsequent_mask(tgt_in.shape[0]), src_pad, tgt_pad, None).numpy()
model.train()
valid = ~val_batch.tgt_padding_mask.T                                   # (T, B) non-padding positions
print(f"logits {tl_logits.shape}: max |tinyllm - torch| = {np.abs(tl_logits - torch_logits)[valid].max():.2e}"
      f"  (logits range ±{np.abs(tl_logits).max():.0f})")
print("same argmax at every position:", bool((tl_logits.argmax(-1) == torch_logits.argmax(-1))[valid].all()))
""")

md(r"""
### 7.3 The same gradients

Forward values could agree while a hand-written backward is wrong. So: from the same initial
weights, in float64, one batch through both, `loss.backward()` in both, and compare every
parameter's gradient $\partial\mathcal{L}/\partial w$. (Dropout is switched off with `eval()` so
both compute the same function.)
""")

code(r"""
tl_model64 = TransformerModel(ntoken, 64, 4, 256, 2, dropout=0.1)
tl_model64.load_state_dict(initial_state); tl_model64.double().eval()
torch_model64 = TorchTransformerModel(ntoken, 64, 4, 256, 2, dropout=0.1).double().eval()
torch_model64.load_state_dict({k: torch.from_numpy(v).double() for k, v in initial_state.items()})

b = train_set.make_batch(range(32))
tl_loss = batch_loss(tl_model64, b)
tl_loss.backward()
torch_logits = torch_model64(*torch_batch(b))
torch_loss = torch.nn.functional.cross_entropy(torch_logits.reshape(-1, ntoken), torch.from_numpy(b.tgt_out).reshape(-1))
torch_loss.backward()
print(f"loss: tinyllm {tl_loss.item():.12f}   torch {torch_loss.item():.12f}")

torch_grads = {n: p.grad.numpy() for n, p in torch_model64.named_parameters()}
worst = []
for name, p in tl_model64.named_parameters():
    g, ref = tl.backend.to_host(p.grad), torch_grads[name]       # p.grad: the raw (NumPy) array
    worst.append((np.abs(g - ref).max() / (np.abs(ref).max() + 1e-30), name))
worst.sort(reverse=True)
print(f"{len(worst)} parameter tensors; largest relative gradient differences:")
for rel, name in worst[:4]:
    print(f"   {rel:.1e}  {name}")
""")

md(r"""
Differences of $10^{-13}$–$10^{-15}$ in float64 are rounding: the hand-written backward of
every op — embedding, attention with masks, LayerNorm, ReLU, cross-entropy with ignored
positions — agrees with PyTorch's autograd.

### 7.4 Trained side by side

Last, train the PyTorch twin from the *same* initial weights on the *same* batches with the
same optimizer settings. Dropout draws different random masks in the two libraries, so the
curves agree in shape, not bit for bit. The trained PyTorch weights then load back into a
tinyllm model, which decodes the validation set with tinyllm's `greedy_translate`.
""")

code(r"""
torch.manual_seed(0)
twin = TorchTransformerModel(ntoken, 64, 4, 256, 2, dropout=0.1)
twin.load_state_dict({k: torch.from_numpy(v) for k, v in initial_state.items()})
decay_names = {n for n, p in model.named_parameters() if any(p is q for q in optimizer.param_groups[0]["params"])}
groups = [{"params": [p for n, p in twin.named_parameters() if n in decay_names], "weight_decay": 0.01},
          {"params": [p for n, p in twin.named_parameters() if n not in decay_names], "weight_decay": 0.0}]
torch_optimizer = torch.optim.AdamW(groups, lr=max_lr, betas=(0.9, 0.98))
batch_rng = np.random.default_rng(0)                                  # the same batches as § 4
torch_history = []
start, start_cpu = time.perf_counter(), time.process_time()
for step in range(steps):
    for group in torch_optimizer.param_groups:
        group["lr"] = cosine_with_warmup(step, max_lr, min_lr, warmup, steps)
    b = train_set.get_batch(batch_size, batch_rng)
    logits = twin(*torch_batch(b))
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, ntoken), torch.from_numpy(b.tgt_out).reshape(-1))
    torch_optimizer.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(twin.parameters(), 1.0)
    torch_optimizer.step()
    torch_history.append(loss.item())
torch_seconds, torch_cpu = time.perf_counter() - start, time.process_time() - start_cpu

back = TransformerModel(ntoken, 64, 4, 256, 2, dropout=0.1)
back.load_state_dict({k: v.detach().numpy() for k, v in twin.state_dict().items()})   # torch -> tinyllm
torch_greedy = []
for i in range(0, n_eval, 250):
    torch_greedy += greedy_translate(back, sources[i:i + 250], src_tok, tgt_tok)
torch_exact = np.mean([g == r for g, r in zip(torch_greedy, references)])

print(f"{'':8} {'wall ms/step':>12} {'CPU ms/step':>12} {'final loss (mean of last 20)':>29} {'exact match':>12}")
print(f"{'tinyllm':8} {1000 * train_seconds / steps:12.0f} {1000 * train_cpu / steps:12.0f} "
      f"{np.mean(history['train'][-20:]):29.4f} {correct.mean():12.1%}")
print(f"{'PyTorch':8} {1000 * torch_seconds / steps:12.0f} {1000 * torch_cpu / steps:12.0f} "
      f"{np.mean(torch_history[-20:]):29.4f} {torch_exact:12.1%}")

fig, ax = plt.subplots(figsize=(7, 3.4))
ax.plot(history["train"], lw=0.8, label="tinyllm (NumPy)")
ax.plot(torch_history, lw=0.8, alpha=0.8, label="PyTorch twin")
ax.set(yscale="log", xlabel="step", ylabel="training loss (log scale)", title="same model, same data, two libraries")
ax.legend(); plt.tight_layout(); plt.show()
""")

md(r"""
The two curves lie on top of each other and both models translate equally well.

About the timings (measured on the machine that ran this notebook; "CPU" counts only the
time this process ran, which is the fairer number on a shared machine): at this size the two
libraries are within a small factor of each other. The matrices are 64 wide, so a step is
hundreds of tiny operations, and the time goes into per-operation overhead — Python calls in
tinyllm, dispatch and autograd bookkeeping in PyTorch — more than into arithmetic. As models
grow, arithmetic dominates and PyTorch's fused, compiled kernels pull ahead; `python -m
tinyllm bench` measures that on a GPT.

## 8 · Try it

1. **Forget the causal mask.** In `batch_loss`, pass `None` instead of `tgt_mask` and train
   again. *Expected:* the training loss drops to near 0 within a few dozen steps — faster than
   before — yet greedy decoding produces garbage (exact match near 0 %). Each position could
   read the token it was asked to predict, so the model learned to copy, not to translate.
   The attention map of the decoder's self-attention is no longer triangular.
2. **Beam width.** Decode the greedy mistakes with `beam_size=1, 2, 8`. *Expected:* 1 gives
   greedy's answers exactly; wider beams change few if any of these answers (the mistakes
   are confident ones), while the decoding time grows roughly linearly with the beam width.
3. **A smaller model.** `ninp=32, nhid=64, nlayers=1`. *Expected:* the loss falls more
   slowly and the exact match after 400 steps is clearly lower; the per-format chart shows
   which formats are hardest for it (compare with the one above).
4. **Another task.** `from tinyllm.data import make_number_pairs, number_tokenizers` gives
   `("three hundred and twelve", "312")` pairs. Train the same class on them. *Expected:* a
   high exact match within the same budget; in the cross-attention, the first digit of a
   three-digit number reads the word before `hundred`.
5. **The seed's dropout.** Train with `dropout=0.5`, the seed's default. *Expected:* the loss
   falls much more slowly in the same 400 steps and the exact match is lower — heavy dropout
   fights overfitting, and with plentiful data there is little to fight.
6. **Skip the memory padding mask.** Remove `memory_key_padding_mask=src_padding_mask` from a
   copy of `forward` (the seed's five-argument call). *Expected:* the trained model's outputs
   for the shortest sources in a padded batch change slightly, since cross-attention now also
   reads padding; decoding one source at a time (no padding) is unaffected.

## Summary

| the seed says (§ 5, and the sections it rests on) | shown here |
|---|---|
| a `TransformerModel(ntoken, ninp, nhead, nhid, nlayers, dropout=0.5)` built from `nn.TransformerEncoder` and `nn.TransformerDecoder` | § 2: the class with every `# ...` filled in; § 7.2: the same lines in PyTorch load the same weights |
| `forward(src, tgt, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, memory_mask)` | § 2.3: what each mask means; § 4: the loop calls exactly this signature |
| the encoder turns input into features, the decoder generates output from them (§ 2.1) | § 6: encoder self-attention, causal decoder self-attention, and cross-attention reading the source |
| $\mathrm{Attention}(Q,K,V) = \mathrm{softmax}(QK^\top/\sqrt{d_k})V$ (§ 4.1) | § 6: recomputed by hand from the trained layer's weights, equal to $10^{-7}$ |
| training: preprocessing, model, training, evaluation (§ 2.2); backpropagation with cross-entropy (§ 3.2, § 4.2) | §§ 3–5: tokenized pairs, the loop with `loss.backward()`, loss curves and exact match; § 7.3: gradients equal to PyTorch's |
| inference: preprocess, predict, postprocess (§ 2.3) | § 5: greedy decoding step by step, beam search |
| PyTorch as the tool (§ 7) | § 7: same outputs, same gradients, same training curve — and the difference in speed |
""")

if __name__ == "__main__":
    nb.build("05_project_practice.ipynb")
