"""Builds chapters/06_applications.ipynb (seed § 6, 实际应用场景).

    python chapters/build/ch06_applications.py          # full run, saved with outputs
    python chapters/build/ch06_applications.py --fast   # TINYLLM_FAST=1 check, to /tmp
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Notebook  # noqa: E402

nb = Notebook()
md, code = nb.md, nb.code

# ----------------------------------------------------------------------------------------- title
md(r"""
# 6 · 实际应用场景 — Applications, small and honest

> **6. 实际应用场景** *(practical application scenarios)*
>
> LLMs 在众多领域具有广泛的应用，例如：**智能客服**（customer service: answering common
> questions around the clock）、**智能助手**（assistants: setting alarms, playing music）、
> **教育领域**（education: personalised learning, grading homework）、**医疗领域**（medicine:
> helping doctors diagnose and suggest treatment）。

The seed lists what large models are used for. A model trained for a few minutes on a laptop
is not a large model, but the *mechanics* of each use are the same at any size: a prompt goes
in, tokens come out one at a time, and something around the model decides what to do with
them. This chapter builds three small, real applications and measures where each one breaks.

**What you will build**

1. **Text generation** (文本生成): a character-level GPT trained on Tiny Shakespeare, and the
   three knobs that shape its output — temperature, top-k and top-p — compared in formulas,
   in pictures and by measurement.
2. **An assistant skill** (智能助手): "remind me to … on *date*" — the date translation model of
   chapter 5 inside a pipeline that checks its own output against the calendar.
3. **A customer-service bot** (智能客服): a tiny GPT that learns a café's opening hours and
   prices, tested on questions phrased in ways it never saw, and on questions it cannot know.
4. **An honest account** of what models of this size cannot do, with the measurements.

A full run takes about 5 minutes on 2 CPU cores.
""")

code(r"""
import os, sys, time, math, re, random, tempfile, datetime
FAST = os.environ.get("TINYLLM_FAST") == "1"   # CI sets this: fewer steps, same cells
try:
    import tinyllm
except ImportError:                               # run from chapters/ without installing
    sys.path.insert(0, os.path.abspath(".."))
    import tinyllm

import numpy as np
import matplotlib.pyplot as plt

import tinyllm as tl
import tinyllm.functional as F
from tinyllm.models import GPT, GPTConfig
from tinyllm.data import CharTokenizer, CausalLMDataset, clean_text, train_val_split
from tinyllm.generate import generate, sample_next_token, greedy_translate, beam_search
from tinyllm.train import Trainer, TrainConfig, PRESETS
from tinyllm.optim import AdamW, param_groups, clip_grad_norm_, cosine_with_warmup

plt.rcParams.update({"figure.dpi": 85, "axes.grid": True, "grid.alpha": 0.3})
np.set_printoptions(precision=4, suppress=True, linewidth=110)
run_dir = tempfile.mkdtemp(prefix="tinyllm_ch06_")   # checkpoints of this chapter's runs
print("fast mode" if FAST else "full run", "| runs in", run_dir)
""")

# ----------------------------------------------------------------------------------------- 1
md(r"""
## 1 · Text generation

### 1.1 A small GPT on Tiny Shakespeare

The corpus is Tiny Shakespeare (1.1 M characters) when a copy is on disk; without one (no
download happens here) the chapter falls back to Tiny Tales, the story corpus shipped with
tinyllm. The model is nanoGPT's "shakespeare-char" shape — 4 layers, 4 heads, 128 wide,
a 64-character context — trained with tinyllm's `Trainer` (the loop of chapter 5, packaged,
with evaluation and checkpoints) for a few hundred steps: a fraction of the usual 2,000.
""")

code(r"""
from tinyllm.data import tinyshakespeare, load_shipped_corpus
try:
    text = tinyshakespeare(download=False)       # a local copy, or FileNotFoundError
    dataset, prompt = "shakespeare", "ROMEO:\n"
except FileNotFoundError:
    text = load_shipped_corpus()
    dataset, prompt = "tinytales", "Once upon a time"
print(f"{dataset}: {len(text):,} characters, {len(set(text))} distinct")
print(text[:300])
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
print(f"{gpt.num_params():,} parameters, {gpt_steps} steps in {time.perf_counter() - start:.0f} s")
for step, train_loss, val_loss in zip(*(trainer.history[k] for k in ("step", "train_loss", "val_loss"))):
    print(f"  step {step:4d}: train loss {train_loss:.3f}   val loss {val_loss:.3f}   (perplexity {math.exp(val_loss):.1f})")

fig, ax = plt.subplots(figsize=(7, 3.2))
ax.plot(trainer.train_losses, lw=0.6, alpha=0.5, label="train (one batch)")
ax.plot(trainer.history["step"], trainer.history["val_loss"], "o-", label="validation")
ax.axhline(math.log(char_tok.vocab_size), color="gray", ls=":", label=f"uniform guess, ln {char_tok.vocab_size}")
ax.set(xlabel="step", ylabel="cross-entropy (nats per character)", title=f"char GPT on {dataset}")
ax.legend(); plt.tight_layout(); plt.show()
""")

md(r"""
### 1.2 From logits to a token: temperature, top-k, top-p

At each step the model gives a vector of logits $z$ (one score per character). *How* the next
token is picked from them is a choice made outside the model:

* **Greedy**: $\hat y = \arg\max_i z_i$. Deterministic; tends to loop.
* **Temperature** $\tau$: sample from
  $$p_i(\tau) = \frac{e^{z_i/\tau}}{\sum_j e^{z_j/\tau}}.$$
  $\tau < 1$ sharpens the distribution towards the argmax ($\tau \to 0$ *is* greedy); $\tau > 1$
  flattens it towards uniform.
* **Top-k**: keep the $k$ most likely tokens, $V_k$, and renormalise:
  $p'_i = p_i / \sum_{j \in V_k} p_j$ for $i \in V_k$, else 0.
* **Top-p** (nucleus sampling): keep the smallest set $V_p$ of most likely tokens whose total
  probability reaches $p$, $\sum_{i\in V_p} p_i \ge p$, and renormalise. Unlike top-k, the
  number of candidates adapts: one when the model is sure, many when it is not.

Below, the same next-character distribution after a prompt, reshaped by each rule.
`filtered` restates the formulas in NumPy; the last check draws 20,000 tokens with
tinyllm's `sample_next_token` and compares the frequencies with them.
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
    ax.set_title(f"{name}: {np.count_nonzero(p > 1e-9)} candidates", fontsize=10)
axes[0].set_ylabel("probability")
fig.suptitle(f"next character after {context[-25:]!r}", fontsize=10); plt.tight_layout(); plt.show()

rng = np.random.default_rng(0)
for name, kw in settings[1:]:
    draws = sample_next_token(np.tile(z, (20_000, 1)), rng=rng, **kw)
    freq = np.bincount(draws, minlength=len(z)) / len(draws)
    print(f"{name:12} max |empirical - formula| = {np.abs(freq - filtered(z, **kw)).max():.4f}")
""")

md(r"""
Now whole texts. One call of `generate` continues 6 copies of the prompt at once (a batch),
using the KV cache so each new character costs one position instead of the whole context.
The same random generator seed is used for every setting.
""")

code(r"""
sample_settings = [("greedy (τ = 0)", dict(temperature=0)), ("τ = 0.5", dict(temperature=0.5)),
                   ("τ = 1.0", dict(temperature=1.0)), ("τ = 1.6", dict(temperature=1.6)),
                   ("top-k = 5", dict(top_k=5)), ("top-p = 0.8", dict(top_p=0.8))]
n_chars = 30 if FAST else 220
for name, kw in sample_settings:
    ids = generate(gpt, np.array([char_tok.encode(prompt)]), n_chars, rng=np.random.default_rng(7), **kw)
    print(f"─── {name} " + "─" * (60 - len(name)))
    print(char_tok.decode(ids[0].tolist()))
""")

md(r"""
Reading them side by side: greedy decoding falls into a loop (the most likely continuation of a
phrase keeps leading back to the same phrase); low temperature is tidy but repetitive; high
temperature invents non-words and stray capitals; top-k and top-p cut off the unlikely tail
where the stray symbols live, while still sampling. To put numbers on "repetitive" and "invents non-words",
generate many samples per setting and measure two things:

* **distinct words** — different words / all words in the samples (low = repeats itself);
* **real-word rate** — the share of generated words that occur anywhere in the training text.

A good setting is high on both; no setting maximises both. Each sample continues the prompt
for 56 characters, so that prompt and sample fit the model's 64-character context and the KV
cache serves every step; 24 samples per setting are drawn in one batch.
""")

code(r"""
corpus_words = set(re.findall(r"[a-z']+", text.lower()))

def measure(samples):
    words = [re.findall(r"[a-z']+", s.lower()) for s in samples]
    flat = [x for w in words for x in w]
    return len(set(flat)) / max(len(flat), 1), np.mean([x in corpus_words for x in flat])

n_samples = 4 if FAST else 24
length = gpt.config.block_size - len(char_tok.encode(prompt)) - 1       # stay inside the context window
grid = [("greedy", dict(temperature=0))] + [(f"τ={t}", dict(temperature=t)) for t in (0.4, 0.7, 1.0, 1.3, 1.6)] \
     + [(f"k={k}", dict(top_k=k)) for k in (3, 10)] + [(f"p={p}", dict(top_p=p)) for p in (0.5, 0.8, 0.95)]
results = {}
start = time.perf_counter()
for name, kw in grid:
    ids = generate(gpt, np.array([char_tok.encode(prompt)] * n_samples), length, rng=np.random.default_rng(1), **kw)
    results[name] = measure([char_tok.decode(row[len(char_tok.encode(prompt)):].tolist()) for row in ids])
print(f"{len(grid)} settings × {n_samples} samples × {length} characters in {time.perf_counter() - start:.0f} s\n")
print(f"{'setting':8} {'distinct words':>15} {'real-word rate':>15}")
for name, (distinct, real) in results.items():
    print(f"{name:8} {distinct:15.2f} {real:15.2f}")

fig, ax = plt.subplots(figsize=(7, 4.2))
label_y = -1.0
for name, (distinct, real) in sorted(results.items(), key=lambda item: item[1][1]):   # labels bottom to top
    color = "black" if name == "greedy" else "tab:blue" if name.startswith("τ") else "tab:orange" if name.startswith("k") else "tab:green"
    ax.scatter(distinct, real, color=color, s=40, zorder=3)
    label_y = max(real, label_y + 0.045)                                # keep labels apart
    ax.annotate(name, (distinct, real), xytext=(distinct + 0.03, label_y), fontsize=9, color=color, va="center",
                arrowprops=dict(arrowstyle="-", color="gray", lw=0.5))
taus = [results[n] for n, _ in grid if n.startswith("τ")]
ax.plot(*zip(*taus), color="tab:blue", lw=0.8, alpha=0.6)
ax.set_xlim(0, 1.15); ax.set_ylim(0, 1.1)
ax.set(xlabel="distinct words / all words (variety →)", ylabel="real-word rate (correctness →)",
       title="the sampling trade-off (blue: temperature; orange: top-k; green: top-p)")
plt.tight_layout(); plt.show()
""")

md(r"""
Temperature trades one axis against the other along a curve: cold is correct and repetitive,
hot is varied and wrong; greedy sits at the far corner, all real words and almost no variety.
Top-k and top-p (at $\tau = 1$) land close to the same curve here (top-k = 3 somewhat below
it): for this model they are another way to move along the trade-off, not a way around it. That is a property of
*this* model. With 65 characters there is little tail to cut; a large model with a 50,000-token
vocabulary puts a noticeable total probability on thousands of individually unlikely tokens,
and cutting that tail (top-p) removes most of the nonsense a plain temperature would let
through. Deployed systems typically combine a moderate temperature with a top-p cut — and
almost never decode greedily, for the reason in the first row of the table.

What the text does **not** have, at any setting: meaning. The model has learned spelling,
the look of a verse line, that a speaker's name is followed by a colon and a line break, and
which words follow which — all from 1 M characters in a few minutes. It has not learned who
the characters are or what a scene is about, and it never will at this size and budget.
""")

# ----------------------------------------------------------------------------------------- 2
md(r"""
## 2 · An assistant skill: "remind me to … on *date*" (智能助手)

An assistant that sets reminders must turn what a person writes — `the 3rd of May 2031`,
`3 May 2031`, `03.05.2031` — into one machine date. That is exactly chapter 5's translation
task, so the date model is trained again here (with `Trainer` and the `"seq2seq"` preset, the
same architecture), and wrapped in the three inference steps of seed § 2.3:

1. **preprocess** — find the date phrase in the request; refuse characters the model has
   never seen (the tokenizer would fail anyway);
2. **predict** — greedy decoding, keeping the probability the model gives its own answer,
   $P(\hat y \mid x) = \prod_t p_\theta(\hat y_t \mid \hat y_{<t}, x)$;
3. **postprocess** — parse the ISO string with the calendar (`datetime.date.fromisoformat`):
   the model can emit `2023-02-30`, the calendar cannot.
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
print(f"{date_model.num_parameters():,} parameters, {s2s_steps} steps in {time.perf_counter() - start:.0f} s; "
      f"exact match on 200 validation dates: {s2s.last_eval['exact_match']:.1%}")
""")

code(r"""
def understand_date(phrase):
    # 1. preprocess: characters outside the source vocabulary cannot be encoded
    unknown = sorted({c for c in phrase if c not in src_tok.chars})
    if unknown:
        return None, None, f"cannot read the characters {''.join(unknown)!r}"
    # 2. predict: greedy decoding (a beam of 1), with the log-probability of the answer
    ids, log_prob = beam_search(date_model, src_tok.encode(phrase), beam_size=1, max_len=12)
    iso = tgt_tok.decode(ids, skip_special_tokens=True)
    # 3. postprocess: the calendar has the last word
    try:
        date = datetime.date.fromisoformat(iso)
        verdict = date.strftime("%a %d %b %Y")
    except ValueError:
        verdict = "not a date: ask the user again"
    return iso, math.exp(log_prob), verdict

def remind(request):
    match = re.fullmatch(r"remind me to (.+) on (.+)", request.strip())
    if not match:
        return request, None, None, "not a reminder request"
    task, phrase = match.groups()
    return (phrase,) + understand_date(phrase)

requests = [
    # in the training distribution (the six formats, 1900-2099)
    "remind me to call Ana on 3 Sep 2031",
    "remind me to water the plants on the 2nd of June 2024",
    "remind me to pay rent on 01.12.2025",
    "remind me to celebrate on February 29, 2024",
    # outside it
    "remind me to celebrate on February 29, 2023",    # not a leap year: no such day
    "remind me to buy a cake on february 30, 2026",   # no such day in any year
    "remind me to visit Mars on 4 July 2150",          # a year beyond 2099
    "remind me to vote on Sept 3, 2031",               # an abbreviation never seen ("Sep" is)
    "remind me to rest on march 5th, 1998",            # a format never seen
    "remind me to call mum on friday",                 # no date at all
    "remind me to study on 5/3/2024",                  # a character never seen
]
print(f"{'date phrase':24} {'model':11} {'P(answer)':>9}   calendar says")
for request in requests:
    phrase, iso, prob, verdict = remind(request)
    print(f"{phrase!r:24} {iso or '—':11} {'—' if prob is None else f'{prob:.3f}':>9}   {verdict}")
""")

md(r"""
The skill is reliable on the formats it was trained on. Outside them, note *how* it fails:

* Impossible dates (`February 30`, `February 29, 2023`) are translated faithfully into
  impossible ISO strings — the model learned a string mapping, not a calendar. The
  postprocessing step catches them; without it the reminder would be set for a day that does
  not exist (or crash the alarm code).
* Some unseen variants still come out right (in the run above, `Sept` and `5th`): the model
  generalises a little beyond its six formats, by resemblance.
* The year 2150 is outside everything it saw (1900–2099). Look at what it produced: a
  *real* date in a year it knows. The calendar cannot catch that — it is a valid date, just
  the wrong one — and this is the most dangerous kind of mistake: silent.
* `friday` has no date in it, but every letter is in the vocabulary, so the model answers
  with a date anyway. A model always produces an output; deciding whether to trust it is
  the job of the code around it.

How useful is $P(\hat y \mid x)$ as a warning light? Below, its distribution over in-distribution
validation dates (almost all translated correctly) against the out-of-distribution requests
above.
""")

code(r"""
def answer_probabilities(sources, answers):
    # P(answer | source) for a batch, by teacher forcing: one forward, no decoding loop
    from tinyllm.data import Seq2SeqDataset, encode_pairs
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

ood = [(p, prob) for p, iso, prob, _ in map(remind, requests[4:]) if prob is not None]
fig, ax = plt.subplots(figsize=(9, 3.8))
bins = np.linspace(0, 1, 41)
ax.hist(val_prob[val_right], bins=bins, color="tab:blue", alpha=0.7, label=f"validation, right ({val_right.sum()})")
ax.hist(val_prob[~val_right], bins=bins, color="tab:red", alpha=0.7, label=f"validation, wrong ({(~val_right).sum()})")
text_x = -1.0
for phrase, prob in sorted(ood, key=lambda item: item[1]):
    ax.axvline(prob, color="black", lw=1, ls="--")
    text_x = max(prob, text_x + 0.022)                                  # keep labels apart
    ax.text(text_x, 1.5, phrase, fontsize=8, rotation=90, va="bottom", ha="right")
ax.set(xlabel="P(answer | source)", ylabel="count", yscale="log", xlim=(0, 1.02),
       title="the model's confidence: in distribution (bars) and the requests above (dashed)")
ax.legend(loc="upper left", fontsize=8); plt.tight_layout(); plt.show()
for name, chosen in (("right", val_right), ("wrong", ~val_right)):
    if chosen.any():
        print(f"validation answers {name}: {chosen.sum():4d}, median P(answer) {np.median(val_prob[chosen]):.3f}")
""")

md(r"""
In distribution, wrong answers tend to come with lower probability than right ones, so a
threshold would catch many of them — at the price of also questioning some right answers.
Outside the distribution the signal is weaker: the confidence measures how familiar the
*pattern* is, not whether the answer is right, and some inputs that should be rejected
(an impossible date, a year out of range) get as much confidence as ordinary ones. A real assistant therefore checks facts it *can*
check (the calendar), asks back when unsure, and is trained on the inputs people actually
type.
""")

# ----------------------------------------------------------------------------------------- 3
md(r"""
## 3 · A customer-service bot (智能客服)

The seed's first application: answering common questions around the clock. Our café has
opening hours for seven days and prices for seven items. Questions come in eight phrasings
(four per topic); every (phrasing, day or item) combination has one right answer. One in five
combinations is **held out**: the bot never sees, for example, *"what is the price of the
bagel?"*, though it sees the bagel asked about in other words and that phrasing used for
other items. Answering held-out combinations right means it learned to combine, not to recite.

The bot is a GPT trained on lines of the form `Q: … \nA: …`; answering is generation: the
prompt is `Q: <question>\nA:`, decoding is greedy, and it stops at the line break.
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
print(f"{len(faq)} question-answer pairs: {len(faq_train)} to learn from, {len(faq_test)} held out")
for q, a in faq_test[:3]:
    print(f"   held out: {q!r} -> {a!r}")

qa_tok = CharTokenizer(list("QAabcdefghijklmnopqrstuvwxyz0123456789 .,?!'-:\n"))   # fixed: any question encodes
sampler = random.Random(1)
qa_text = "".join(f"Q: {q}\nA: {a}\n\n" for q, a in (sampler.choice(faq_train) for _ in range(4000)))
qa_data = CausalLMDataset(np.array(qa_tok.encode(qa_text)), block_size=96)
print(f"training text: {len(qa_text):,} characters, e.g.\n" + qa_text[:120])
""")

md(r"""
Training: next-token cross-entropy on the Q/A text, the loss of chapter 5 with a decoder-only
model, $\mathcal{L} = -\frac{1}{BT}\sum_{b,t}\log p_\theta(x_{b,t+1}\mid x_{b,\le t})$. The model is
small — 2 layers, 64 wide.
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
print(f"{bot.num_params():,} parameters, {qa_steps} steps in {time.perf_counter() - start:.0f} s, "
      f"final loss {np.mean(qa_losses[-20:]):.3f}")

newline, space = qa_tok.encode("\n")[0], qa_tok.encode(" ")[0]

def ask(question):
    # greedy answer, and per character the probability the bot gave it
    prompt_ids = qa_tok.encode(f"Q: {question}\nA:")
    room = bot.config.block_size - len(prompt_ids)                  # the context holds 96 characters
    ids = generate(bot, np.array([prompt_ids]), min(60, room), temperature=0, stop_tokens=[newline])[0]
    bot.eval()
    with tl.no_grad():
        logits, _ = bot(ids[None, :-1])                            # one pass scores every generated token
    probs = F.softmax(logits, axis=-1).numpy()[0]
    answer_ids = ids[len(prompt_ids):]
    char_probs = probs[np.arange(len(prompt_ids) - 1, len(ids) - 1), answer_ids]
    keep = slice(1 if answer_ids[0] == space else 0, -1 if answer_ids[-1] == newline else None)
    return qa_tok.decode(answer_ids[keep].tolist()), char_probs[keep]

for name, pairs in (("seen", faq_train), ("held out", faq_test)):
    pairs = pairs[:3] if FAST else pairs
    right = [ask(q)[0] == a for q, a in pairs]
    print(f"{name:9} combinations: {np.mean(right):.0%} answered exactly right ({sum(right)} of {len(pairs)})")
""")

code(r"""
print("held-out questions:")
for q, a in faq_test[:6]:
    got, _ = ask(q)
    print(f"  {q:38} -> {got}" + ("" if got == a else f"   ✗ (right: {a})"))

unknown = ["how much is the pizza?", "are you open on holidays?", "do you have wifi?",
           "how much is the coffe?", "when do you close on friday?", "what does the tea cost"]
print("\nquestions it cannot know, or has never seen phrased this way:")
answers = {}
for q in unknown:
    answers[q] = ask(q)
    print(f"  {q:38} -> {answers[q][0]}")
""")

md(r"""
The bot answers the café's questions, mostly including phrasings it never saw for those days
and items (the mistakes it makes there swap one item's answer for another's). And it answers
*everything else* too: look at the second list. A question about something it was never told
(a pizza, holidays, wifi) gets either a fluent, confident answer about something else — an
opening time stated as fact — or a fragment of the training text, such as a piece of another
question. Small variations of known questions (a typo, another verb) often still work. In
customer service, the confident invented answer is the failure that matters; it is called
hallucination (幻觉).

Does the bot "know" when it is guessing? Colour each answer's characters by the probability
the bot gave them:
""")

code(r"""
shown = [faq_test[0][0], faq_test[1][0]] + unknown[:4]
fig, ax = plt.subplots(figsize=(12, 0.55 * len(shown) + 0.6))
cmap = plt.get_cmap("RdYlGn")
for row, q in enumerate(shown):
    answer, char_probs = answers[q] if q in answers else ask(q)
    ax.text(-0.5, row, q, ha="right", va="center", fontsize=9)
    for col, (ch, p) in enumerate(zip(answer, char_probs)):
        ax.text(col * 0.55, row, ch, ha="center", va="center", fontsize=10, family="monospace",
                bbox=dict(boxstyle="square,pad=0.12", fc=cmap(float(p)), ec="none"))
    ax.text(len(answer) * 0.55 + 0.5, row, f"min p = {char_probs.min():.2f}", va="center", fontsize=8)
ax.set_xlim(-16, 36); ax.set_ylim(len(shown) - 0.5, -0.5); ax.axis("off")
ax.set_title("each answer character coloured by its probability (green ≈ 1, red ≈ 0)", fontsize=10)
plt.tight_layout(); plt.show()
""")

md(r"""
Where the bot is guessing, the guess often shows as a few uncertain (red) characters — the
point where it had to choose a day or an item it was not given — followed by confident
characters: once the choice is made, the rest of the sentence follows from it. So a refusal
rule ("if any character has $p < 0.5$, answer *I don't know*") catches some inventions; it
cannot catch an invention made with confidence, and it will also refuse some right answers.
Production systems add retrieval (look the fact up, then let the model phrase it) and train
on refusals; neither fits in a few minutes on a CPU, and both start from this observation.
""")

# ----------------------------------------------------------------------------------------- 4
md(r"""
## 4 · What a tiny model cannot do

| seed's application | shown here | what worked | what did not, measured above |
|---|---|---|---|
| 智能客服 customer service | § 3, café bot | answers, including unseen phrasings of known facts | invents answers to unknown questions (pizza, holidays), often confidently |
| 智能助手 assistants | § 2, reminder skill | the six date formats it was trained on | unseen formats, years and words; impossible dates pass the model and need the calendar |
| text generation (§ 1.1 of the seed: 对话生成, 文本摘要) | § 1, char GPT | spelling, layout, local word order | meaning, facts, coherence beyond a line or two |
| 教育领域 education | — | | grading needs a reference answer and judgement; a model that invents prices will invent grades |
| 医疗领域 medicine | — | | deliberately not attempted: hallucination with a confident voice is unacceptable where errors harm people |

Three lessons carry over to large models unchanged:

1. **A model always answers.** Whether to trust the answer is decided by code around it:
   validation (the calendar), refusal thresholds, retrieval.
2. **Confidence is not correctness.** Probabilities reflect how familiar the pattern is.
3. **Behaviour is bounded by the training data.** Everything the bots did right was in
   their data in some form; everything they got wrong was not.

## 5 · Try it

1. **Train the Shakespeare model longer.** Set `gpt_steps = 2000` (about 5× the time).
   *Expected:* the validation loss keeps falling, to about 1.87 (the full `shakespeare-char`
   preset; nanoGPT's exact recipe reaches about 1.9); the real-word rate at $\tau = 1$ rises noticeably, and the speakers' names
   become real names.
2. **Temperature near zero.** Generate with `temperature=0.05`. *Expected:* the same text as
   greedy decoding (or nearly), including its loop.
3. **top-k = 1 and top-p → 0.** *Expected:* both equal greedy decoding, whatever the temperature:
   only one candidate survives the cut.
4. **Teach the assistant a new format.** Add pairs like `("5/3/1998", "1998-03-05")` to the
   training data (you need a source tokenizer that includes "/"). *Expected:* after retraining
   that request works, and the other formats are unaffected.
5. **Teach the bot to refuse.** Add training lines such as
   `Q: how much is the pizza?\nA: sorry, we do not sell pizza.` for a few unknown items.
   *Expected:* it refuses those items — and probably not other unknown items it never saw
   refused, or it starts refusing known items phrased in unusual ways. Refusal is learned
   from examples, like everything else.
6. **Hold out an entity entirely.** Remove every question about `soup` from training.
   *Expected:* questions about soup get another item's price: the model cannot produce a fact
   it never saw.

## Summary

| the seed says (§ 6) | shown here |
|---|---|
| LLMs are used in customer service, to answer common questions | § 3: a café bot that answers in-scope questions, including new phrasings — and invents answers out of scope |
| … in assistants, to carry out tasks | § 2: a reminder skill = preprocessing + the translation model + a calendar check |
| … in education and medicine | § 4: why we do not pretend to, and what would be needed |
| (§ 1.1) text generation, dialogue | § 1: generation from a char GPT; temperature, top-k, top-p as formulas, pictures and a measured trade-off |
| (§ 2.3) inference = preprocess, predict, postprocess | every application here is those three steps; the postprocessing is where mistakes get caught |
""")

if __name__ == "__main__":
    nb.build("06_applications.ipynb")
