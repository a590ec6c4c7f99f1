"""Build chapters/zh/02_core_concepts.ipynb and chapters/en/02_core_concepts.ipynb (the
article's §2): the architecture map, post-norm against pre-norm trained side by side, the
training pipeline and the inference pipeline.

    python chapters/build/ch02_core_concepts.py                    # full run, both editions
    python chapters/build/ch02_core_concepts.py --fast --out /tmp/ch   # quick check
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Chapter, assignment_task  # noqa: E402

ch = Chapter("02_core_concepts", number=2, title=("核心概念与联系", "Core concepts"), sections="§2.1–2.3")
md, code = ch.md, ch.code

# ============================================================================ title
md(zh=r"""
# 2 · 核心概念与联系

> **原文 §2**：LLMs 通常采用 Transformer 架构 … 编码器负责将输入文本转换为特征表示，解码器则根据特征表示生成输出文本。
> 接着是两张清单：**训练过程**（数据预处理、模型构建、模型训练、模型评估）和**推理过程**（输入预处理、模型预测、输出后处理）。

本章把这三小段话变成能运行的代码，原文清单里的每一项都对应一个可以执行的单元，数据都很小。

**你会亲手搭建**

1. **架构图**（§2.1）：编码器 (encoder)、解码器 (decoder)、原文的编码器-解码器 (encoder–decoder) 和仅解码器 (decoder-only)
   的 GPT，都用 `tinyllm.nn` 搭起来各运行一次，再用真正区分它们的那件事来比较：*哪个词可以关注哪个词*。
2. **后置归一化与前置归一化**：原文描述的 2017 年 Transformer 把层归一化 (layer normalization) 放在残差相加*之后*
   （后置归一化，post-norm），GPT 放在每个子层*之前*（前置归一化，pre-norm）。我们亲手写出这两种块，在同样的数据上并排训练。
3. **训练过程**（§2.2）：清洗文本，分词（字符和 BPE），搭一个 GPT，在 Tiny Shakespeare 上训练几百步，
   再与几个简单的基线 (baseline) 比较损失、困惑度 (perplexity) 和准确率 (accuracy)。
4. **推理过程**（§2.3）：预处理提示词，预测下一个词（再下一个，再下一个），把编号后处理成文本——
   既用于 GPT，也用于一个半分钟训练出来的日期翻译编码器-解码器。

完整运行约 {{run_minutes:.1f}} 分钟（{{run_cores}} 核 CPU）。设置 `TINYLLM_FAST=1`（CI 的做法）时同样的单元只跑很少的步数，
不到一分钟即可完成，得到的数字当然也差得多。
""", en=r"""
# 2 · 核心概念与联系 — Core concepts

> **The article, §2**: LLMs 通常采用 Transformer 架构 … 编码器负责将输入文本转换为特征表示，解码器则根据特征表示生成输出文本。
> (LLMs usually use the Transformer architecture … the encoder turns the input text into a
> feature representation, the decoder generates the output text from it.)
> Then two lists: the **训练过程** (training process: data preprocessing, model building,
> training, evaluation) and the **推理过程** (inference process: input preprocessing,
> prediction, output postprocessing).

This chapter turns those three short paragraphs into running code. Each box of the article's
lists becomes a cell you can execute on small data.

**What you will build**

1. **The architecture map** (§2.1): an encoder, a decoder, the article's encoder–decoder and a
   decoder-only GPT, each assembled from `tinyllm.nn`, run once, and compared by the one thing
   that really tells them apart: *which token may attend to which*.
2. **Post-norm against pre-norm**: the 2017 Transformer the article describes applies layer
   normalization *after* each residual sum (post-norm); GPT applies it *before* each sublayer
   (pre-norm). We write both blocks and train them side by side on the same data.
3. **The training pipeline** (§2.2): clean text, tokenize it (characters and BPE), build a
   GPT, train it for a few hundred steps on Tiny Shakespeare, evaluate it (loss, perplexity,
   accuracy) against simple baselines.
4. **The inference pipeline** (§2.3): preprocess a prompt, predict the next token (and the
   next, and the next), postprocess the ids into text — for the GPT, and for an
   encoder–decoder that you train in half a minute to translate dates.

A full run takes about {{run_minutes:.1f}} minutes on {{run_cores}} CPU cores. With `TINYLLM_FAST=1` (what CI
does) the same cells run with far fewer steps in well under a minute; the numbers then are
of course worse.
""")

ch.setup(r"""
import tinyllm.nn as nn
import tinyllm.functional as F
from tinyllm.models import GPT, GPTConfig, TransformerModel
""")

# ============================================================================ 2.1
md(zh=r"""
## 2.1 大语言模型架构

> **LLMs 通常采用 Transformer 架构，这是一种基于自注意力机制的神经网络架构。Transformer 模型由编码器和解码器组成，编码器负责将输入文本转换为特征表示，解码器则根据特征表示生成输出文本。**

原文描述的是最初的 Transformer（Vaswani 等，2017）：**编码器**读入整个输入，为每个词产生一个特征向量，也就是**特征表示**
(feature representation)；**解码器**一次写一个词，同时查看这些特征。由它衍生出三个家族，今天人们所说的 LLM 是其中之一：

| 家族 | 代表 | 读入 | 产出 | 自注意力 |
|---|---|---|---|---|
| 仅编码器 | BERT | 一整段文本 | 每个词一个特征向量 | 每个词都能看到每个词 |
| 编码器-解码器 | 2017 年的 Transformer、T5，以及原文 §5 的 `TransformerModel` | 源文本 | 目标文本 | 编码器：全部可见；解码器：因果的，外加对编码器特征的*交叉注意力* (cross-attention) |
| 仅解码器 | GPT-2/3/4、LLaMA 以及大多数 LLM | 一段前缀 | 下一个词，一次又一次 | 因果的：第 *t* 个词只能看到 ≤ *t* 的词 |

三者都是同样两种子层的堆叠——自注意力 (self-attention) 和逐位置的前馈网络 (feed-forward network)——再加上残差连接
(residual connection) 和层归一化。画出来是这样：
""", en=r"""
## 2.1 大语言模型架构 — Architecture

> **LLMs 通常采用 Transformer 架构，这是一种基于自注意力机制的神经网络架构。Transformer 模型由编码器和解码器组成，编码器负责将输入文本转换为特征表示，解码器则根据特征表示生成输出文本。**
> (LLMs usually use the Transformer architecture, a neural network built on self-attention.
> It has an encoder and a decoder: the encoder turns the input text into a feature
> representation, the decoder generates the output text from it.)

The article describes the original Transformer (Vaswani et al., 2017): an **encoder** (编码器)
that reads the whole input and produces one feature vector (特征表示) per token, and a
**decoder** (解码器) that writes the output one token at a time while looking at those
features. Three families of models grew out of it, and one of them is what people today call
an LLM:

| family | famous example | reads | produces | self-attention |
|---|---|---|---|---|
| encoder-only | BERT | a whole text | a feature vector per token | every token sees every token |
| encoder–decoder | the 2017 Transformer, T5 — and the article's `TransformerModel` (§5) | a source text | a target text | encoder: full; decoder: causal, plus *cross-attention* to the encoder's features |
| decoder-only | GPT-2/3/4, LLaMA, most LLMs | a prefix | the next token, again and again | causal: token *t* sees tokens ≤ *t* |

All three are stacks of the same two sublayers — self-attention and a position-wise
feed-forward network — with residual connections and layer normalization. The picture:
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
embed_box = tr("嵌入 + 位置", "embedding + position")
fig, axes = plt.subplots(1, 3, figsize=(12, 4.4), gridspec_kw={"width_ratios": [1, 1.7, 1]})
for ax in axes:
    ax.set_xlim(0, 1); ax.set_ylim(0, 1); ax.axis("off")

ax = axes[0]; ax.set_title(tr("仅编码器（BERT）\n输入 → 特征", "encoder-only (BERT)\ninput → features"), fontsize=9)
column(ax, 0.5, [tr("词 x₁ … xₙ", "tokens x₁ … xₙ"), embed_box,
                 tr("编码器层 × N\n自注意力（全部 ↔ 全部）\n前馈网络", "encoder layer × N\nself-attention (all ↔ all)\nfeed-forward"),
                 tr("特征 h₁ … hₙ", "features h₁ … hₙ")],
       [EMB, EMB, ENC, OUT])

ax = axes[1]; ax.set_title(tr("编码器-解码器（原文 §5）\n编码器 + 解码器", "encoder–decoder (the article, §5)\nencoder + decoder"), fontsize=9)
ys = column(ax, 0.25, [tr("源文本 x₁ … xₙ", "source x₁ … xₙ"), embed_box,
                       tr("编码器层 × N\n自注意力（全部 ↔ 全部）\n前馈网络", "encoder layer × N\nself-attention (all ↔ all)\nfeed-forward"),
                       tr("memory（特征）", "memory (features)")],
            [EMB, EMB, ENC, OUT], w=0.26)
yd = column(ax, 0.75, [tr("已写出的目标 y₁ … yₜ", "target so far y₁ … yₜ"), embed_box,
                       tr("解码器层 × N\n带掩码的自注意力\n交叉注意力\n前馈网络",
                          "decoder layer × N\nmasked self-attention\ncross-attention\nfeed-forward"),
                       tr("线性层 + softmax", "linear + softmax"), "p(yₜ₊₁ | y≤ₜ, x)"], [EMB, EMB, DEC, EMB, OUT], w=0.26)
arrow(ax, (0.38, ys[3]), (0.62, yd[2]), color="#b5482c")
ax.text(0.5, (ys[3] + yd[2]) / 2 + 0.07, "K, V", color="#b5482c", ha="center", fontsize=8)

ax = axes[2]; ax.set_title(tr("仅解码器（GPT）\n今天的 LLM", "decoder-only (GPT)\nthe LLMs of today"), fontsize=9)
column(ax, 0.5, [tr("词 x₁ … xₜ", "tokens x₁ … xₜ"), embed_box,
                 tr("解码器块 × N\n带掩码的自注意力\n前馈网络", "decoder block × N\nmasked self-attention\nfeed-forward"),
                 tr("线性层 + softmax", "linear + softmax"), "p(xₜ₊₁ | x≤ₜ)"], [EMB, EMB, DEC, EMB, OUT])
plt.tight_layout(); plt.show()
""", alt=(
    "三种架构的示意图，每种是一列自下而上的方框。仅编码器（BERT）："
    "词、嵌入加位置、N 层编码器（对所有位置的自注意力和前馈网络），输出特征。"
    "编码器-解码器（原文的模型）：同样的编码器把源序列变成记忆，一个箭头把记忆的键和值送进解码器；"
    "解码器读已写出的目标，经过嵌入、N 层（带掩码的自注意力、交叉注意力、前馈网络），"
    "再经线性层和 softmax 给出 p(yₜ₊₁ | y≤ₜ, x)。仅解码器（GPT，"
    "今天的 LLM）：词、嵌入、N 个解码器块（带掩码的自注意力和前馈网络），"
    "再经线性层和 softmax 给出 p(xₜ₊₁ | x≤ₜ)。",
    "Diagram of three architectures, each a column of boxes read from bottom to top. Encoder-only (BERT):"
    " tokens, embedding and position, N encoder layers (self-attention over all positions, feed-forward),"
    " then features. Encoder-decoder (the article's model): the same encoder turns the source into a "
    "memory, whose keys and values an arrow carries into the decoder; the decoder reads the target "
    "written so far through an embedding and N layers of masked self-attention, cross-attention and feed-"
    "forward, then a linear layer and softmax give p(yₜ₊₁ | y≤ₜ, x). Decoder-only (GPT, today's LLMs): "
    "tokens, embedding, N decoder blocks of masked self-attention and feed-forward, then linear and "
    "softmax give p(xₜ₊₁ | x≤ₜ)."))

md(zh=r"""
### 搭出这四个部件

现在把同一张图写成代码。下面每个类的构造参数都与 `torch.nn` 里的同名类相同。尺寸很小（宽 32、4 个头、2 层），
因为我们只想看形状。seq2seq 模型的词编号按 PyTorch 的 `nn.Transformer` 排成（序列，批）；GPT 按 nanoGPT 的习惯用（批，序列）。
""", en=r"""
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

# 3) encoder–decoder: the article's TransformerModel(ntoken, ninp, nhead, nhid, nlayers, dropout)
seq2seq = TransformerModel(vocab, d_model, nhead, d_ff, n_layers, dropout=0.0)
seq2seq_logits = seq2seq(src, tgt, None, TransformerModel.generate_square_subsequent_mask(5), None, None, None)

# 4) decoder-only: GPT, ids (batch, seq)
gpt = GPT(GPTConfig(vocab_size=vocab, block_size=16, n_layer=n_layers, n_head=nhead, n_embd=d_model))
gpt_ids = tl.Tensor(src.numpy().T)                                 # (batch=2, seq=7)
gpt_logits, _ = gpt(gpt_ids)

rows = [(tr("编码器", "encoder"), f"src {src.shape}", features.shape, encoder.num_parameters()),
        (tr("解码器", "decoder"), f"tgt {tgt.shape} + memory {features.shape}", decoded.shape, decoder.num_parameters()),
        (tr("编码器-解码器", "encoder–decoder"), f"src {src.shape}, tgt {tgt.shape}", seq2seq_logits.shape, seq2seq.num_parameters()),
        (tr("仅解码器 GPT", "decoder-only GPT"), f"ids {gpt_ids.shape}", gpt_logits.shape, gpt.num_parameters())]
print(f"{tr('模型', 'model'):17} {tr('输入', 'input'):38} {tr('输出', 'output'):14} {tr('参数', 'parameters')}")
for name, inp, out, n in rows:
    print(f"{name:17} {inp:38} {str(out):14} {n:>9,}")
""")

md(zh=r"""
编码器的输出保持输入的形状：进去 7 个词，出来 7 个宽 32 的特征向量。*生成*文本的模型最后都有一个映射到词表 (vocabulary)
的线性层：每个位置一行 20 个逻辑值 (logits)，也就是对下一个词的猜测。

### 真正的区别：谁可以关注谁

注意力层会保留最近一次的权重（`.attention_weights`，由 `nn.attention_maps` 收集）。这样一张图的第 *i* 行表示位置 *i*
从每个位置 *j* 读了多少。模型还没训练，权重本身没有意义——但零已经在那里了，而这些零*就是*架构：
""", en=r"""
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
key_j, query_i = tr("键 j", "key j"), tr("查询 i", "query i")
panels = [(tr("编码器自注意力\n（全部可见：7 × 7）", "encoder self-attention\n(full: 7 × 7)"), mean_map(enc_maps, "layers.0.self_attn"),
           tr("键 j（源）", "key j (source)"), tr("查询 i（源）", "query i (source)")),
          (tr("解码器自注意力\n（因果：5 × 5）", "decoder self-attention\n(causal: 5 × 5)"), mean_map(dec_maps, "layers.0.self_attn"),
           tr("键 j（目标）", "key j (target)"), tr("查询 i（目标）", "query i (target)")),
          (tr("解码器交叉注意力\n（目标 → 源：5 × 7）", "decoder cross-attention\n(target → source: 5 × 7)"),
           mean_map(dec_maps, "layers.0.multihead_attn"), tr("键 j（源）", "key j (source)"), tr("查询 i（目标）", "query i (target)")),
          (tr("GPT 自注意力\n（因果：7 × 7）", "GPT self-attention\n(causal: 7 × 7)"), mean_map(gpt_maps, "transformer.h.0.attn"), key_j, query_i)]
fig, axes = plt.subplots(1, 4, figsize=(11, 3))
for ax, (title, w, xl, yl) in zip(axes, panels):
    ax.imshow(w, cmap="Blues", vmin=0, vmax=1)
    ax.set_title(title, fontsize=8.5); ax.set_xlabel(xl); ax.set_ylabel(yl)
    ax.set_xticks(range(w.shape[1])); ax.set_yticks(range(w.shape[0]))
plt.tight_layout(); plt.show()
print(tr("GPT 第 0 行（第一个词只能读它自己）：", "GPT row 0 (the first token may only read itself):"), np.round(panels[3][1][0], 3))
""", alt=(
    "四幅注意力权重热图，颜色越深权重越大，行是查询，列是键。编码器自注意力（7 × 7）："
    "权重分布在整个网格上。解码器自注意力（5 × 5）和 GPT 自注意力（7 × 7）："
    "对角线以上全是空白，因为每个位置只看它自己和它之前的位置；第一行把全部权重放在第一个键上。"
    "解码器交叉注意力（5 个目标查询 × 7 个源键）：淡淡的权重铺满整个源序列。",
    "Four heatmaps of attention weights, darker meaning more weight, queries as rows and keys as columns."
    " Encoder self-attention (7 × 7): weight spread over the whole grid. Decoder self-attention (5 × 5) "
    "and GPT self-attention (7 × 7): everything above the diagonal is blank, since a position attends "
    "only to itself and the positions before it; the first row puts all its weight on the first key. "
    "Decoder cross-attention (5 target queries × 7 source keys): pale weight spread over the whole "
    "source."))

md(zh=r"""
*因果* (causal) 的自注意力让位置 *t* 看不到它之后的一切，这样模型就能在每个位置同时学习预测第 *t + 1* 个词而不作弊。
用实验来检验：改动**最后一个**输入词，看哪些输出会变。
""", en=r"""
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
print(tr("每个位置的最大变化（位置 0 … 6）：", "largest change per position (positions 0 … 6):"))
print(tr("  编码器特征：", "  encoder features:"), np.array2string(enc_moved, precision=3))
print(tr("  GPT 逻辑值：", "  GPT logits      :"), np.array2string(gpt_moved, precision=3))
record(encoder_moved=int((enc_moved > 0).sum()), gpt_moved=int((gpt_moved > 0).sum()))
""")

md(zh=r"""
编码器的 7 个特征里有 {{encoder_moved}} 个变了——每个词的表示都依赖整句话，这正是*理解*一段文本所需要的。
GPT 的 7 个位置里只有 {{gpt_moved}} 个变了，就是最后一个——位置 *t* 的预测只依赖 ≤ *t* 的词，这正是从左到右*书写*所需要的。
编码器-解码器的解码器部分在目标序列上是因果的，而通过交叉注意力可以看到*整个*源序列。
""", en=r"""
{{encoder_moved}} of the 7 encoder features changed — each token's representation depends on the whole
sentence, which is what you want for *understanding* a text. {{gpt_moved}} of the GPT's 7 positions
changed, the last one — the prediction at position *t* depends on tokens ≤ *t* only, which is
what you need for *writing* a text left to right. The decoder half of the encoder–decoder is
causal in the target and sees the *whole* source through cross-attention.
""")

# ============================================================================ 2.2
md(zh=r"""
## 2.2 训练过程

> **LLM 的训练过程通常包括以下步骤：**
> * **数据预处理：** 对文本数据进行清洗、分词等预处理操作。
> * **模型构建：** 定义模型架构、参数等。
> * **模型训练：** 使用大量文本数据对模型进行训练，优化模型参数。
> * **模型评估：** 使用测试数据集评估模型性能。

如果本机有 Tiny Shakespeare（110 万个字符），我们就在它上面走这四步，否则用 tinyllm 自带的 Tiny Tales 语料。不会下载任何东西。

### 第 1a 步 · 清洗

来自真实世界的文本带着看不见的差别：Windows 的换行 `\r\n`、从 PDF 里带出来的控制字符，还有像 “é” 这样的字母，
既可能存成一个码位，也可能存成 “e” 加一个组合重音。数据预处理 (data preprocessing) 的第一步清洗 (cleaning) 由
`tinyllm.data.clean_text` 完成：让看起来相同的文本在码位上也相同，分词器就不会把词表浪费在变体上。
""", en=r"""
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
print(tr("清洗前：", "before:"), repr(messy), tr(f"（{len(messy)} 个码位）", f"({len(messy)} code points)"))
print(tr("清洗后：", "after: "), repr(clean), tr(f"（{len(clean)} 个码位）", f"({len(clean)} code points)"))
print(tr("两种写法的 'Café' 清洗后相等：", "'Café' spelled two ways are equal after cleaning:"),
      clean_text("Cafe\u0301") == clean_text("Caf\u00e9"))
print(tr("清洗两次与清洗一次相同：", "cleaning twice changes nothing:"), clean_text(clean, strip_trailing_whitespace=True) == clean)
""")

code(r"""
from tinyllm.data import tinyshakespeare, load_shipped_corpus

try:
    raw = tinyshakespeare(download=False)        # a local copy if there is one; never downloaded here
    corpus_name, prompt_text = "Tiny Shakespeare", "ROMEO:"
except (FileNotFoundError, OSError):
    raw = load_shipped_corpus()                  # ships with the repository
    corpus_name, prompt_text = "Tiny Tales", "Once upon a time"
text = clean_text(raw)
print(tr(f"{corpus_name}：原始 {len(raw):,} 个字符，清洗后 {len(text):,} 个，不同的字符 {len(set(text))} 个",
         f"{corpus_name}: {len(raw):,} characters raw, {len(text):,} after cleaning, {len(set(text))} distinct"))
print("-" * 60); print(text[:260]); print("-" * 60)
record(corpus=corpus_name, corpus_chars=len(text))
""")

md(zh=r"""
### 第 1b 步 · 分词

模型读的是数字。**分词器** (tokenizer) 定下一个由若干片段组成的词表，把文本映射成编号列表，也能映射回来。两种经典选择：

* **字符**：词表就是文本中出现的字符集合（Shakespeare 约 65 个）；任何文本按词元 (token) 数都很长；
* **字节对编码 (byte-pair encoding, BPE)**，GPT-2 的做法：从 256 个字节值出发，反复把最常见的相邻一对合并成一个新词元；
  常见的词最后会变成单个词元。
""", en=r"""
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
print(tr(f"字符词表：{char_tok.vocab_size} 个符号", f"char vocabulary: {char_tok.vocab_size} symbols"))
print(f"{sample!r} → {ids}")
print("decode(encode(s)) == s:", char_tok.decode(ids) == sample)

bpe_text = text[:100_000] if FAST else text[:300_000]
t0 = time.perf_counter()
bpe = BPETokenizer(); bpe.train(bpe_text, vocab_size=512)
print(tr(f"\n在 {len(bpe_text):,} 个字符上训练 512 个词元的 BPE，用时 {time.perf_counter() - t0:.1f} 秒",
         f"\nBPE with 512 tokens trained on {len(bpe_text):,} characters in {time.perf_counter() - t0:.1f} s"))
first_merges = [bpe.token_bytes(256 + i).decode("utf-8", "replace") for i in range(12)]
print(tr("最先的合并：", "first merges:"), first_merges)
pieces = [bpe.token_bytes(i).decode("utf-8", "replace") for i in bpe.encode(sample)]
print(f"{sample!r} → {bpe.encode(sample)} = {'|'.join(pieces)}")
record(first_merges=", ".join(f"`{m!r}`" for m in first_merges[:4]))
""")

md(zh=r"""
最先合并的是最常见的字节对（这里是 {{first_merges}}……），像 `' the'` 这样的整词很快也会出现。
BPE 词表越大，序列越短（词元更少、更长），代价是更大的嵌入 (embedding) 表和 softmax。在留出的文本上测量：
""", en=r"""
The first merges are the most frequent pairs (here {{first_merges}}, …), and whole words such as
`' the'` follow soon. Bigger BPE vocabularies make sequences shorter (fewer, longer tokens) at
the price of a bigger embedding table and softmax. Measured on held-out text:
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
ax.axhline(1.0, color="gray", ls="--", label=tr(f"字符（词表 {char_tok.vocab_size}）", f"characters (vocab {char_tok.vocab_size})"))
ax.set_xlabel(tr("词表大小", "vocabulary size")); ax.set_ylabel(tr("每个词元的字符数", "characters per token")); ax.legend()
ax.set_title(tr("词表越大 → 序列越短", "bigger vocabulary → shorter sequences")); plt.tight_layout(); plt.show()
print({s: round(c, 2) for s, c in zip(sizes, chars_per_token)})
record(chars_per_token_512=chars_per_token[sizes.index(512)])
""", alt=(
    "折线图：留出文本上每个词元的字符数随 BPE 词表大小（256 到 1024）的变化："
    "先陡升、后变缓，256 时为 1（只有字节），"
    "512 时为 {{chars_per_token_512:.2f}}；"
    "一条虚线标出字符分词器的每词元 1 个字符。词表越大，序列越短。",
    "Line chart of characters per token on held-out text against the BPE vocabulary size, from 256 to "
    "1024: it rises steeply at first and then more slowly, from 1 at 256 (bytes only) to "
    "{{chars_per_token_512:.2f}} at 512 and beyond; a dashed line marks the character tokenizer's 1 "
    "character per token. A bigger vocabulary gives shorter sequences."))

md(zh=r"""
我们用字符分词器训练：65 个类别让输出层小而快，损失也能直接和 nanoGPT 的 shakespeare-char 比较。（练习 1 换成 BPE。）

### 第 1c 步 · 从编号到训练样本

语言模型学习 $p_\theta(x_{t+1} \mid x_1, \dots, x_t)$。我们留出文本最后的 10% 做评估（连续的一刀切下，所以验证窗口不会与训练窗口重叠），
然后随机抽取长 $T + 1$ 个词元的窗口。一个窗口同时给出 $T$ 个样本：输入 $x_{1..T}$ 和目标 $y_{1..T} = x_{2..T+1}$，即输入错开一位。
""", en=r"""
We train with the character tokenizer: 65 classes make a small, fast output layer, and the
losses are directly comparable with nanoGPT's shakespeare-char. (Exercise 1 switches to BPE.)

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
print(tr(f"训练词元 {len(train_ids):,} 个，验证词元 {len(val_ids):,} 个；", f"{len(train_ids):,} training tokens, {len(val_ids):,} validation tokens;"),
      train_data)

x, y = train_data.get_batch(4, np.random.default_rng(0))
print(tr("x 的形状", "x shape"), x.shape, tr("y 的形状", "y shape"), y.shape)
print(tr("x[0] 的文本：", "x[0] as text:"), repr(char_tok.decode(x[0][:40])))
print(tr("y[0] 的文本：", "y[0] as text:"), repr(char_tok.decode(y[0][:40])), tr("← 同一段，晚一个字符", "← the same, one character later"))
""")

md(zh=r"""
### 第 2 步 · 模型构建

“定义模型架构、参数”。一个 2 层、4 个头、宽 64 的仅解码器 GPT（nanoGPT 的 shakespeare-char 用 4/4/128，我们的便宜 8 倍）：
""", en=r"""
### Step 2 · 模型构建 Model building

"定义模型架构、参数" — define the architecture and its parameters. A decoder-only GPT with 2
layers, 4 heads and width 64 (nanoGPT's shakespeare-char uses 4/4/128; this is 8× cheaper):
""")

code(r"""
tl.manual_seed(0)
config = GPTConfig(vocab_size=char_tok.vocab_size, block_size=block_size, n_layer=2, n_head=4, n_embd=64)
model = GPT(config)
print(config)
groups = {tr("词元嵌入（与输出层共享）", "token embedding (tied with the output layer)"): "wte",
          tr("位置嵌入", "position embedding"): "wpe", tr("注意力", "attention"): ".attn.",
          tr("前馈网络（MLP）", "feed-forward (MLP)"): ".mlp.", tr("层归一化", "layer norms"): "ln_"}
counted = {label: sum(p.size for n, p in model.named_parameters() if key in n) for label, key in groups.items()}
for label, n in counted.items():
    print(f"  {label:45} {n:>7,}")
print(f"  {tr('合计', 'total'):45} {model.num_parameters():>7,}")
""")

md(zh=r"""
训练之前模型应该一无所知：$V$ 个字符等可能，所以损失——交叉熵 (cross-entropy) $-\log p_\theta(\text{正确的词元})$——应该约等于
$\ln V$。GPT-2 的小初始化离这个值很近：
""", en=r"""
Before any training the model should know nothing: every one of the $V$ characters equally
likely, so the loss — the cross-entropy $-\log p_\theta(\text{correct token})$ — should be
about $\ln V$. GPT-2's small initialisation gets close:
""")

code(r"""
with tl.no_grad():
    _, initial_loss = model(tl.Tensor(x), tl.Tensor(y))
print(tr(f"初始化时的损失 {initial_loss.item():.3f}，ln V = ln {char_tok.vocab_size} = {math.log(char_tok.vocab_size):.3f}",
         f"loss at initialisation {initial_loss.item():.3f}   vs   ln V = ln {char_tok.vocab_size} = {math.log(char_tok.vocab_size):.3f}"))
""")

md(zh=r"""
### 第 3 步 · 模型训练

“使用大量文本数据对模型进行训练，优化模型参数”。目标是一批 $B$ 个长 $T$ 的窗口上、下一个词元预测的平均交叉熵：

$$
\mathcal{L}(\theta) = -\frac{1}{BT}\sum_{b=1}^{B}\sum_{t=1}^{T} \log p_\theta\!\left(y_{b,t} \mid x_{b,1..t}\right)
$$

每一步都是同样的四行：**前向**（算出 $\mathcal L$）、**反向**（用链式法则为每个参数算出 $\partial\mathcal L/\partial\theta$，见第 4 章）、
把梯度范数裁剪到 1（梯度裁剪，gradient clipping），再用 AdamW **更新**。学习率 (learning rate) 先用 50 步预热，再按余弦曲线降到峰值的十分之一。
""", en=r"""
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

def estimate_loss(model, dataset, n_batches=eval_batches, batch=32):
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
        (train_loss, _), (val_loss, _) = estimate_loss(model, train_data), estimate_loss(model, val_data)
        for k, v in (("step", step + 1), ("train", train_loss), ("val", val_loss)):
            history[k].append(v)
        print(f"step {step + 1:4d}  lr {lr:.2e}  train {train_loss:.3f}  val {val_loss:.3f}  "
              f"({time.perf_counter() - t0:.0f} s)")
train_seconds = time.perf_counter() - t0
print(tr(f"{steps} 步，用时 {train_seconds:.0f} 秒（每步 {1000 * train_seconds / steps:.0f} 毫秒）",
         f"{steps} steps in {train_seconds:.0f} s ({1000 * train_seconds / steps:.0f} ms per step)"))
record(steps=steps, train_seconds=train_seconds, gap=history["val"][-1] - history["train"][-1])
""")

code(r"""
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(np.arange(1, steps + 1), batch_losses, lw=0.6, alpha=0.5, label=tr("训练批次", "training batch"))
ax.plot(history["step"], history["train"], "o-", ms=3, label=tr("训练集（估计）", "train (estimate)"))
ax.plot(history["step"], history["val"], "o-", ms=3, label=tr("验证集", "validation"))
ax.axhline(math.log(char_tok.vocab_size), color="gray", ls=":", label=tr("ln V（一无所知）", "ln V (knows nothing)"))
ax.set_xlabel(tr("步数", "step")); ax.set_ylabel(tr("交叉熵（每字符 nat）", "cross-entropy (nats per character)"))
ax.legend(fontsize=8)
ax.set_title(f"GPT {config.n_layer}×{config.n_embd}, {corpus_name}"); plt.tight_layout(); plt.show()
""", alt=(
    "GPT 在 {{corpus}} 上的训练曲线：交叉熵（每字符 nat）随步数变化。"
    "每个训练批次的损失（一条细而抖动的线）从表示“一无所知”的点线 ln V 附近迅速下降，"
    "然后变慢；定期估计的训练集和验证集损失紧贴着它，"
    "降到验证集上的 {{gpt_val_loss:.3f}}，两条曲线几乎重合。",
    "Training curves of the GPT on {{corpus}}: cross-entropy in nats per character against the step. The "
    "loss of each training batch (a thin, noisy line) falls quickly from near the dotted line ln V, the "
    "loss of a model that knows nothing, then more slowly; the train and validation losses, estimated at "
    "intervals, follow it down to {{gpt_val_loss:.3f}} on validation, the two curves almost on top of "
    "each other."))

md(zh=r"""
### 第 4 步 · 模型评估

“使用测试数据集评估模型性能”：在模型从没训练过的数据，也就是验证集 (validation set) 上测量。三个数：

* **损失** $\mathcal L$：平均交叉熵，单位是每个词元多少 nat；
* **困惑度** $\mathrm{PPL} = e^{\mathcal L}$：模型的不确定程度，相当于在 PPL 个词元里均匀地挑；
* **准确率**：最可能的词元恰好正确的比例。

没有基线的数字意义不大，所以我们和三个根本不用训练循环的模型比较：均匀分布（$\ln V$）、一元模型（字符频率）和二元模型
(bigram model)（给定当前字符时下一个字符的频率，加一平滑），都在训练部分上计数，在验证部分上打分。
""", en=r"""
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
baselines = {tr("均匀", "uniform"): (math.log(V), 1 / V),
             tr("一元", "unigram"): (-np.log(unigram[val_ids[1:]]).mean(), float((val_ids[1:] == unigram.argmax()).mean())),
             tr("二元", "bigram"): (-np.log(bigram[val_ids[:-1], val_ids[1:]]).mean(),
                                  float((bigram.argmax(axis=1)[val_ids[:-1]] == val_ids[1:]).mean()))}
gpt_val_loss, gpt_val_acc = estimate_loss(model, val_data, n_batches=4 if FAST else 40)
results = {**baselines, tr(f"GPT（{steps} 步）", f"GPT ({steps} steps)"): (gpt_val_loss, gpt_val_acc)}
print(f"{tr('模型', 'model'):18} {tr('验证损失', 'val loss'):>9} {tr('困惑度', 'perplexity'):>11} {tr('准确率', 'accuracy'):>9}")
for name, (loss_value, acc) in results.items():
    print(f"{name:18} {loss_value:9.3f} {math.exp(loss_value):11.2f} {acc:9.3f}")
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.barh(list(results), [r[0] for r in results.values()], color=["#bbb", "#bbb", "#bbb", "#4c72b0"])
ax.set_xlabel(tr("验证集交叉熵（越低越好）", "validation cross-entropy (lower is better)")); ax.invert_yaxis()
plt.tight_layout(); plt.show()
bigram_loss, unigram_loss = baselines[tr("二元", "bigram")][0], baselines[tr("一元", "unigram")][0]
record(gpt_val_loss=gpt_val_loss, gpt_ppl=math.exp(gpt_val_loss), gpt_val_acc=gpt_val_acc, bigram_loss=bigram_loss,
       unigram_loss=unigram_loss, uniform_loss=math.log(V),
       gpt_vs_bigram=tr("低于", "below") if gpt_val_loss < bigram_loss else tr("高于", "above"))
""", alt=(
    "验证集交叉熵的横向柱状图，越低越好：均匀 {{uniform_loss:.3f}}，"
    "一元 {{unigram_loss:.3f}}，二元 {{bigram_loss:.3f}}，"
    "蓝色突出显示的 GPT 为 {{gpt_val_loss:.3f}}，"
    "{{gpt_vs_bigram}}二元模型。",
    "Horizontal bar chart of the validation cross-entropy, lower is better: uniform {{uniform_loss:.3f}},"
    " unigram {{unigram_loss:.3f}}, bigram {{bigram_loss:.3f}}, and the GPT, highlighted in blue, "
    "{{gpt_val_loss:.3f}}, {{gpt_vs_bigram}} the bigram model."))

md(zh=r"""
二元模型只知道前一个字符；GPT 最多能看 64 个。训练 {{steps}} 步后，GPT 的验证损失是 {{gpt_val_loss:.3f}}（困惑度 {{gpt_ppl:.2f}}），
{{gpt_vs_bigram}}二元模型的 {{bigram_loss:.3f}}；一元模型是 {{unigram_loss:.3f}}，均匀分布是 {{uniform_loss:.3f}}。
同样的循环再加上检查点和由配置决定的学习率计划，就是 `tinyllm.train.Trainer`：`python -m tinyllm train --preset shakespeare-char`
（它在 README 的训练表里，2000 步，4 层宽 128）。

### 插曲：后置归一化与前置归一化

原文的模型是 2017 年的 Transformer，它的每个子层（注意力或前馈网络）写成 $x \leftarrow \mathrm{LN}(x + \mathrm{sublayer}(x))$：
先相加，再做层归一化，称为**后置归一化** (post-norm)。`nn.TransformerEncoderLayer` 默认就是这样（`norm_first=False`，与 PyTorch 相同）。
GPT-2 以后的模型改成 $x \leftarrow x + \mathrm{sublayer}(\mathrm{LN}(x))$：只归一化子层的输入，**前置归一化** (pre-norm)，
并在最后加一个 LN。二者只差一行，效果却不同：前置时，从输出到每一层都有一条不经过任何 LN 的恒等通路，即**残差流**
(residual stream)，每个块只往里加一点修正；后置时，每一层的输出都要再过一次 LN，信号和梯度都要穿过一串 LN。
文献（Xiong 等 2020；Liu 等 2020）发现后置归一化对学习率很敏感，需要预热才能稳定地训练深层网络。

我们亲手写出这两种块，只有 `forward` 里的两行不同：
""", en=r"""
The bigram model knows only the previous character; the GPT attends to up to 64 of them.
After {{steps}} steps its validation loss is {{gpt_val_loss:.3f}} (perplexity {{gpt_ppl:.2f}}), {{gpt_vs_bigram}} the bigram
model's {{bigram_loss:.3f}}; the unigram model scores {{unigram_loss:.3f}} and the uniform one {{uniform_loss:.3f}}. The same
loop plus checkpoints and a learning-rate schedule from a config is `tinyllm.train.Trainer`:
`python -m tinyllm train --preset shakespeare-char` (in the README's training table: 2,000
steps, 4 layers of width 128).

### A detour: post-norm against pre-norm

The article's model is the 2017 Transformer, whose every sublayer (attention or feed-forward)
reads $x \leftarrow \mathrm{LN}(x + \mathrm{sublayer}(x))$: add, then layer-normalize —
**post-norm**. `nn.TransformerEncoderLayer` does this by default (`norm_first=False`, as in
PyTorch). From GPT-2 on, models write $x \leftarrow x + \mathrm{sublayer}(\mathrm{LN}(x))$:
normalize only the sublayer's input — **pre-norm** — and add one LN at the very end. One line
apart, they behave differently: with pre-norm there is an identity path from the output to
every layer that no LN touches, the **residual stream**, to which each block adds a small
correction; with post-norm every layer's output goes through one more LN, so signals and
gradients cross a chain of them. The literature (Xiong et al. 2020; Liu et al. 2020) found
post-norm sensitive to the learning rate, needing a warmup to train deep stacks stably.

We write both blocks; their `forward`s differ in two lines:
""")

code(r"""
class Block(nn.Module):
    # One Transformer block, post-norm (the article's 2017 model) or pre-norm (GPT).

    def __init__(self, d, n_heads, pre_norm):
        super().__init__()
        self.pre_norm = pre_norm
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def attend(self, h):
        return self.attn(h, h, h, is_causal=True, need_weights=False)[0]

    def forward(self, x):
        if self.pre_norm:                              # GPT: x + sublayer(LN(x))
            x = x + self.attend(self.ln1(x))
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attend(x))               # 2017: LN(x + sublayer(x))
        return self.ln2(x + self.mlp(x))


class TinyLM(nn.Module):
    # Embeddings, a stack of blocks, (a final LN for pre-norm), a linear layer onto the vocabulary.

    def __init__(self, vocab_size, d, n_heads, n_layers, pre_norm):
        super().__init__()
        self.token, self.position = nn.Embedding(vocab_size, d), nn.Embedding(block_size, d)
        self.blocks = nn.ModuleList([Block(d, n_heads, pre_norm) for _ in range(n_layers)])
        self.ln_f = nn.LayerNorm(d) if pre_norm else nn.Identity()
        self.head = nn.Linear(d, vocab_size)

    def forward(self, ids, targets=None):
        h = self.token(ids) + self.position(tl.arange(ids.shape[1]))
        for block in self.blocks:
            h = block(h)
        logits = self.head(self.ln_f(h))
        loss = None if targets is None else F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss
""")

md(zh=r"""
实验：12 层、宽 32、4 个头，同样的初始化种子、同样的批次，不预热、不裁剪梯度，各训练 {{norm_steps}} 步，学习率取温和的
$3\times10^{-3}$ 和激进的 $10^{-2}$ 两档。四次训练在 2 核 CPU 上共需约 {{norm_minutes:.1f}} 分钟。
""", en=r"""
The experiment: 12 layers of width 32 with 4 heads, the same initialisation seed and the same
batches, no warmup and no gradient clipping, {{norm_steps}} steps each, at a gentle learning rate of
$3\times10^{-3}$ and an aggressive one of $10^{-2}$. The four trainings take about {{norm_minutes:.1f}} minutes
on 2 CPU cores.
""")

code(r"""
def train_tiny_lm(pre_norm, lr, steps, n_layers=12, d=32):
    tl.manual_seed(0)
    lm = TinyLM(char_tok.vocab_size, d, 4, n_layers, pre_norm)
    opt = AdamW(lm.parameters(), lr=lr, weight_decay=0.0)
    rng, losses = np.random.default_rng(0), []
    for _ in range(steps):
        xb, yb = train_data.get_batch(16, rng)
        _, loss = lm(tl.Tensor(xb), tl.Tensor(yb))
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    return losses, estimate_loss(lm, val_data)[0]

norm_steps = 4 if FAST else 150
norm_runs, t0 = {}, time.perf_counter()
for lr in (3e-3, 1e-2):
    for pre_norm in (True, False):
        norm_runs[lr, pre_norm] = train_tiny_lm(pre_norm, lr, norm_steps)
norm_seconds = time.perf_counter() - t0

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
for ax, lr in zip(axes, (3e-3, 1e-2)):
    for pre_norm, name in ((True, tr("前置归一化（GPT）", "pre-norm (GPT)")), (False, tr("后置归一化（2017）", "post-norm (2017)"))):
        losses, val = norm_runs[lr, pre_norm]
        ax.plot(losses, lw=0.8, label=tr(f"{name}，验证 {val:.3f}", f"{name}, val {val:.3f}"))
    ax.axhline(unigram_loss, color="gray", ls=":", label=tr("一元模型", "unigram model"))
    ax.set_title(tr(f"学习率 {lr:g}，不预热", f"learning rate {lr:g}, no warmup")); ax.set_xlabel(tr("步数", "step"))
    ax.legend(fontsize=8)
axes[0].set_ylabel(tr("训练批次的交叉熵", "cross-entropy of the training batch"))
plt.tight_layout(); plt.show()
for (lr, pre_norm), (losses, val) in norm_runs.items():
    print(f"lr {lr:g}  {tr('前置归一化', 'pre-norm ') if pre_norm else tr('后置归一化', 'post-norm')}  {tr('验证', 'val')} {val:.3f}")
pre_low, post_low, pre_high, post_high = (norm_runs[key][1] for key in ((3e-3, True), (3e-3, False), (1e-2, True), (1e-2, False)))
stuck = post_high - pre_high > 0.2 and abs(post_low - pre_low) < 0.1
verdict = (tr("两种块的参数完全一样多，在温和的学习率下差别很小；学习率调高后，前置归一化照样训练，后置归一化却卡住了",
              "The two blocks have exactly the same parameters and differ little at a gentle learning rate; at a higher "
              "one pre-norm still trains while post-norm gets stuck") if stuck else
           tr("这一次两种块在两档学习率下的差别不像下面说的那样明显（见上面的数字）",
              "This time the two blocks did not differ as clearly as described below (see the numbers above)"))
record(norm_steps=norm_steps, norm_minutes=norm_seconds / 60, pre_low=pre_low, post_low=post_low,
       pre_high=pre_high, post_high=post_high, norm_verdict=verdict)
""", alt=(
    "两幅图："
    "前置归一化块（GPT）和后置归一化块（2017）在 {{norm_steps}} 步中训练批次的交叉熵，"
    "点线是一元模型的损失。左，学习率 0.003："
    "验证损失前置 {{pre_low:.3f}}、后置 {{post_low:.3f}}。右，"
    "学习率 0.01："
    "前置 {{pre_high:.3f}}、后置 {{post_high:.3f}}。"
    "{{norm_verdict}}。",
    "Two panels of the training-batch cross-entropy over {{norm_steps}} steps of a pre-norm block (GPT) "
    "and a post-norm block (2017), with a dotted line at the unigram model's loss. Left, learning rate "
    "0.003: validation loss {{pre_low:.3f}} for pre-norm, {{post_low:.3f}} for post-norm. Right, learning"
    " rate 0.01: {{pre_high:.3f}} and {{post_high:.3f}}. {{norm_verdict}}."))

md(zh=r"""
验证损失：学习率 $3\times10^{-3}$ 时，前置 {{pre_low:.3f}}、后置 {{post_low:.3f}}；学习率 $10^{-2}$ 时，前置 {{pre_high:.3f}}、
后置 {{post_high:.3f}}（一元模型是 {{unigram_loss:.3f}}）。

**这说明了什么。** {{norm_verdict}}。原因在上面说的那条通路：前置时每个块只是往残差流上加一项，哪怕某个块的更新一时过大，恒等通路仍然把信号和梯度原样送过去；
后置时，每一层的输出都被 LN 重新缩放后再交给下一层，一处过大的更新会一层层传下去，深度越大越难收拾。
2017 年的 Transformer 用学习率预热 (warmup) 解决这个问题，GPT-2 以后的模型干脆改用前置归一化，tinyllm 的 `GPT` 也是如此。

**没说明什么。** 这只是一个小模型、一个数据集、一个种子、{{norm_steps}} 步的结果。加上预热和梯度裁剪后，后置归一化也能训练（在 `train_tiny_lm` 里加上 `cosine_with_warmup` 和 `clip_grad_norm_` 试试）；
也有工作认为训练好的后置归一化模型最终效果更好。这里测到的只是“对学习率的敏感程度”，不是“哪个更好”。
""", en=r"""
Validation losses: at a learning rate of $3\times10^{-3}$, pre-norm {{pre_low:.3f}} and post-norm {{post_low:.3f}};
at $10^{-2}$, pre-norm {{pre_high:.3f}} and post-norm {{post_high:.3f}} (the unigram model: {{unigram_loss:.3f}}).

**What this shows.** {{norm_verdict}}. The reason is the path described above: with pre-norm each block only adds a term to the residual
stream, so even if one block's update is too large for a while, the identity path carries
signals and gradients through unchanged; with post-norm every layer's output is rescaled by an
LN before the next layer sees it, and one oversized update propagates layer by layer, harder
to absorb the deeper the stack. The 2017 Transformer fixed this with a learning-rate warmup;
from GPT-2 on, models switched to pre-norm instead, and so does tinyllm's `GPT`.

**What it does not show.** This is one small model, one data set, one seed, {{norm_steps}} steps. With
warmup and gradient clipping post-norm trains too (add `cosine_with_warmup` and
`clip_grad_norm_` to `train_tiny_lm` and see), and some work finds well-trained post-norm
models end up slightly better. What is measured here is sensitivity to the learning rate, not
which one is better.
""")

# ============================================================================ 2.3
md(zh=r"""
## 2.3 推理过程

> **LLM 的推理过程是指使用训练好的模型进行预测。推理过程通常包括以下步骤：**
> * **输入预处理：** 对输入文本进行预处理。
> * **模型预测：** 使用训练好的模型对输入文本进行预测。
> * **输出后处理：** 对模型输出进行后处理，例如格式转换等。

### 第 1 步 · 输入预处理

提示词要经过与训练数据*相同*的清洗和分词器（换一个分词器会交给模型它从没见过的编号）。词表之外的字符无法编码：
我们把它们去掉并说明。上下文截到模型的 `block_size`。
""", en=r"""
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
        print(tr(f"  （去掉了词表外的字符：{sorted(set(cleaned) - set(known))}）",
                 f"  (dropped characters outside the vocabulary: {sorted(set(cleaned) - set(known))})"))
    ids = tokenizer.encode(known)[-block:]
    return tl.Tensor(np.asarray([ids], dtype=np.int64))             # (batch=1, T0)

prompt_ids = preprocess(prompt_text + "☺\r\n")
print(prompt_ids.shape, prompt_ids.numpy()[0].tolist(), "=", repr(char_tok.decode(prompt_ids.numpy()[0])))
""")

md(zh=r"""
### 第 2 步 · 模型预测

一次前向传播给出每个位置的逻辑值 $z \in \mathbb R^{V}$；最后一个位置的逻辑值经过 softmax，就是模型对下一个字符的概率分布 (probability distribution)：

$$ p(x_{t+1} = i \mid x_{\le t}) = \mathrm{softmax}(z)_i = \frac{e^{z_i}}{\sum_{j} e^{z_j}} $$
""", en=r"""
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
ax.set_ylabel(tr("概率", "probability"))
ax.set_title(tr(f"{char_tok.decode(prompt_ids.numpy()[0])!r} 之后的下一个字符", f"next character after {char_tok.decode(prompt_ids.numpy()[0])!r}"))
plt.tight_layout(); plt.show()
print(tr("概率之和：", "sum of probabilities:"), probs.sum().round(6))
""", alt=(
    "柱状图：训练好的 GPT 在提示词“ROMEO:”加换行之后最可能的十个下一个字符，"
    "按概率从高到低排列；大多是能开始一行诗的大写字母，概率分散在许多字符上，没有哪一个占绝对优势。",
    "Bar chart of the ten most likely next characters after the prompt 'ROMEO:' and a newline, from the "
    "trained GPT, in decreasing probability: mostly capital letters that can begin a line of verse, the "
    "probability spread over many of them, none dominant."))

md(zh=r"""
生成文本就是把这个预测放进循环：选一个词元，接到后面，再预测（**自回归** (autoregressive) 解码）。写出来，用贪心 (greedy) 选择（每次都取最可能的词元）：
""", en=r"""
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
print(tr("我们的循环 == tinyllm.generate：", "our loop == tinyllm.generate:"), np.array_equal(by_hand, library))
""")

md(zh=r"""
贪心解码容易重复自己。按**温度** (temperature) $\tau$ 从 softmax 中**采样** (sampling)，即从 $\mathrm{softmax}(z/\tau)$ 中抽取，可以保留变化；
$\tau < 1$ 让分布更尖，$\tau > 1$ 让分布更平。`top_p`（核采样）只保留合计概率为 $p$ 的那些最可能的词元。
""", en=r"""
Greedy decoding tends to repeat itself. Sampling from the softmax with a **temperature**
$\tau$, i.e. from $\mathrm{softmax}(z/\tau)$, keeps variety; $\tau < 1$ sharpens the
distribution, $\tau > 1$ flattens it. `top_p` (nucleus sampling) keeps only the most likely
tokens that together hold probability $p$.
""")

code(r"""
tl.manual_seed(0)
sampled = generate(model, prompt_ids, 200, temperature=0.8, top_p=0.95, rng=np.random.default_rng(0))
""")

md(zh=r"""
### 第 3 步 · 输出后处理

模型产出的是编号，用户要的是文本。这里的后处理：解码编号，丢掉没写完的最后一行（因长度限制而停下的模型会停在词的中间），
去掉首尾空白——这就是最简单的“格式转换”。
""", en=r"""
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

greedy_text, sampled_text = postprocess(by_hand[0]), postprocess(sampled[0])
print(tr("贪心：\n", "greedy:\n") + greedy_text)
print(tr("\n采样（τ = 0.8，top-p 0.95）：\n", "\nsampled (τ = 0.8, top-p 0.95):\n") + sampled_text)

def distinct_share(s, n=12):                            # share of distinct n-character windows
    windows = [s[i:i + n] for i in range(len(s) - n + 1)]
    return len(set(windows)) / max(1, len(windows))
record(greedy_distinct=distinct_share(greedy_text), sampled_distinct=distinct_share(sampled_text))
""")

md(zh=r"""
衡量重复的一个简单办法：文本里所有长 12 个字符的片段中，不重复的占多少。贪心输出是 {{greedy_distinct:.0%}}，采样输出是 {{sampled_distinct:.0%}}
——贪心解码会陷入循环。这段文字离原作还很远，但模型已经学到了格式：短行、换行后的大写、标点和常见的短词，这是二元模型做不到的。

### 编码器-解码器的同样三步：翻译日期

原文说解码器“根据特征表示生成输出文本”，在翻译任务里最容易看清。`tinyllm.data` 能生成这样一个任务：六种格式的英文日期
→ ISO 8601（`"the 5th of march 1998"` → `"1998-03-05"`），也就是一个小小的机器翻译 (machine translation)。
我们用 §2.2 的循环把原文的 `TransformerModel`（编码器和解码器各 1 层，宽 64）训练 {{s2s_steps}} 步；`tinyllm.train` 的 `TranslationTask`
提供数据、补齐的批次和损失（带**教师强制** (teacher forcing) 的交叉熵：解码器读入 `<bos> + 目标`，预测 `目标 + <eos>`）。
""", en=r"""
One simple measure of repetition: of all the 12-character windows of a text, the share that
are distinct. Greedy output: {{greedy_distinct:.0%}}; sampled output: {{sampled_distinct:.0%}} — greedy decoding falls into
loops. The text is far from the original, but the model has picked up its format — short
lines, capitals after line breaks, punctuation, frequent short words — which is what a bigram
model cannot do.

### The same three steps for an encoder–decoder: translating dates

The article's picture of a decoder "generating output from features" is easiest to see in a
translation task. `tinyllm.data` generates one: English dates in six formats → ISO 8601
(`"the 5th of march 1998"` → `"1998-03-05"`). We train the article's `TransformerModel` (1
encoder and 1 decoder layer, width 64) for {{s2s_steps}} steps with the loop from §2.2; the
`TranslationTask` helper from `tinyllm.train` supplies the data, the padded batches and the
loss (cross-entropy with teacher forcing: the decoder reads `<bos> + target` and predicts
`target + <eos>`).
""")

code(r"""
import dataclasses
from tinyllm.train import TrainConfig, PRESETS, TranslationTask

preset = TrainConfig(**PRESETS["seq2seq"])
cfg = dataclasses.replace(preset, model=dataclasses.replace(preset.model, n_layer=1, dropout=0.1), batch_size=32)
task = TranslationTask(cfg, n_pairs=4_000 if FAST else 20_000)
tl.manual_seed(0)
translator = task.build_model()
print(tr(f"TransformerModel：{translator.num_parameters():,} 个参数；{len(task.text_pairs['train']):,} 个训练对，例如 {task.text_pairs['train'][:2]}",
         f"TransformerModel: {translator.num_parameters():,} parameters; {len(task.text_pairs['train']):,} training pairs, "
         f"e.g. {task.text_pairs['train'][:2]}"))

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
print(tr(f"{s2s_steps} 步，用时 {time.perf_counter() - t0:.0f} 秒；最后一批的损失 {s2s_losses[-1]:.4f}",
         f"{s2s_steps} steps in {time.perf_counter() - t0:.0f} s; last batch loss {s2s_losses[-1]:.4f}"))
record(s2s_steps=s2s_steps)
fig, ax = plt.subplots(figsize=(5, 2.5))
ax.semilogy(s2s_losses, lw=0.8); ax.set_xlabel(tr("步数", "step")); ax.set_ylabel(tr("损失（对数刻度）", "loss (log scale)"))
ax.set_title(tr("TransformerModel：日期 → ISO 8601", "TransformerModel on dates → ISO 8601")); plt.tight_layout(); plt.show()
""", alt=(
    "TransformerModel 学习把日期改写成 ISO 8601 格式时的损失随步数的变化（对数纵轴）："
    "开始时下降很快，之后在共 {{s2s_steps}} 步里缓慢而抖动地下降。",
    "The loss of the TransformerModel learning to rewrite dates in ISO 8601, against the step, on a log "
    "scale: it falls fast at first, then slowly and noisily over the rest of the {{s2s_steps}} steps."))

md(zh=r"""
现在一步一个单元地走一遍。**预处理**用源语言分词器编码一批源文本并补齐到同样长度；填充掩码（填充处为 True）告诉注意力忽略它们。
""", en=r"""
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
print(tr("源编号（S，批）：", "src ids (S, batch):"), src_ids.shape, tr("| 每句的填充数：", "| padding per sequence:"), src_pad.sum(axis=1))
""")

md(zh=r"""
**预测**：编码器只运行一次（它的输出就是“特征表示”，即 memory），解码器每生成一个新词元运行一次，每次都基于已经写出的全部内容，
选最可能的下一个字符（贪心）。我们打印中间结果，看解码器怎样一个字一个字地写：
""", en=r"""
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
            print(tr(f"写了 {t + 1:2d} 个词元：", f"after {t + 1:2d} tokens:"), [task.tgt_tok.decode(out[1:, b]) for b in range(len(queries))])
        if (out == EOS).any(axis=0).all():
            break
print(tr("memory 的形状（S，批，d_model）：", "memory shape (S, batch, d_model):"), memory.shape)
""")

md(zh=r"""
**后处理**把编号变成最终格式：在 `<eos>` 处截断，解码时去掉特殊词元，再检查字符串是不是一个合法日期——真实系统在展示答案之前也会做这种格式检查。
""", en=r"""
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
        return answer, tr("不是合法日期", "not a valid date")

for b, q in enumerate(queries):
    iso, check = postprocess_date(out[:, b])
    print(f"{q:24} → {iso:12} ({check})")
""")

md(zh=r"""
解码器看了源文本的哪里？最后一步解码的交叉注意力权重（每个目标字符一行，每个源字符一列）：
""", en=r"""
Where did the decoder look? The cross-attention weights of the last decoding step (one row
per target character, one column per source character):
""")

code(r"""
b = 0
cross = translator.attention_maps()["decoder.layers.0.multihead_attn"][b].numpy().mean(axis=0)  # (T, S)
n_out = out.shape[0] - 1
src_chars = list(queries[b]); tgt_chars = [task.tgt_tok.decode([i]) for i in out[:n_out, b]]
fig, ax = plt.subplots(figsize=(7, 3.6))
ax.imshow(cross[:n_out, :len(src_chars)], cmap="viridis")
ax.set_xticks(range(len(src_chars)), src_chars); ax.set_yticks(range(n_out), tgt_chars)
ax.set_xlabel(tr("源字符（键）", "source character (key)")); ax.set_ylabel(tr("解码器输入（查询）", "decoder input (query)"))
ax.set_title(tr("交叉注意力：解码器在源文本的哪里读", "cross-attention: where the decoder reads the source")); plt.tight_layout(); plt.show()

# rows 0-3 predict the four year digits; how much of their attention lands on the year in the source?
year_at = queries[b].index("1969")
year_attention = cross[:4, year_at:year_at + 4].sum(axis=1).mean()

val_pairs = task.text_pairs["val"][:50 if FAST else 200]
from tinyllm.generate import greedy_translate
predictions = greedy_translate(translator, [s for s, _ in val_pairs], task.src_tok, task.tgt_tok)
exact = np.mean([p == t for p, (_, t) in zip(predictions, val_pairs)])
print(tr(f"{len(val_pairs)} 个留出日期上的精确匹配：{exact:.1%}", f"exact match on {len(val_pairs)} held-out dates: {exact:.1%}"))
record(year_attention=year_attention, year_share=4 / len(queries[b]), exact=exact, n_val_dates=len(val_pairs))
""", alt=(
    "一个日期的解码器交叉注意力热图：行是解码器的输入（<bos>，"
    "然后是已写出的 ISO 日期 1969-07-21），"
    "列是源文本“the 21st of july 1969”的字符，越亮权重越大。"
    "写年份时（前几行）解码器看源文本末尾的“1969”，写月份时看“july”，写日期时看“21”："
    "亮格从源文本的右端一路回到开头。"
    "写年份的四行把 {{year_attention:.0%}} 的权重放在年份的四个字符上。",
    "Heatmap of the decoder's cross-attention for one date: rows are the decoder inputs (<bos>, then the "
    "ISO date 1969-07-21 written so far), columns the characters of the source 'the 21st of july 1969', "
    "brighter meaning more weight. While writing the year (the first rows) the decoder looks at '1969' at"
    " the end of the source, then at 'july' for the month and at '21' for the day: the bright cells run "
    "from the right end of the source back to its start. The four year rows put {{year_attention:.0%}} of"
    " their weight on the year's four characters."))

md(zh=r"""
（第 *i* 行是解码器读了目标位置 *i* 之后的查询，也就是在预测第 *i + 1* 个字符；第一行属于 `<bos>`。）写年份的四个数字时（前四行），
解码器把 {{year_attention:.0%}} 的交叉注意力放在源文本里 “1969” 这四个字符上，而它们只占源文本的 {{year_share:.0%}}。
在 {{n_val_dates}} 个留出的日期上，精确匹配 (exact match) 是 {{exact:.1%}}。`tinyllm.generate.greedy_translate` 把上面三步合成一个函数；
`beam_search`（束搜索）则同时保留几个候选，而不只是一个。

## 动手试试

1. **用 BPE 代替字符。** 用 `bpe`（512 个词元）代替 `char_tok` 重跑 §2.2（用 `bpe.encode`，`vocab_size=bpe.vocab_size`）。
   *预期：* 每个*词元*的损失比字符模型高得多，但每个 BPE 词元平均包含 {{chars_per_token_512:.2f}} 个字符（上面测的），
   所以要除以这个数才能和字符模型比较。分词器不同的语言模型，要按每个字符（或每个字节）比较，不能按每个词元比较。
   想自己写 BPE 的训练？""" + assignment_task("a6_bpe", "train_bpe")["zh"] + r"""
2. **再看因果性。** 在编码器-解码器里改一个*源*字符，看哪些解码器输出会变。*预期：* 全都会变——交叉注意力不加掩码。
   改一个*目标*词元：只有那个位置和它之后的输出会变。
3. **温度。** 分别在 τ = 0.2、1.0、1.5 下采样 200 个字符。*预期：* 0.2 反复写几个常见词；1.0 多样，拼写错误更多；1.5 接近随机字母。
   想自己写温度和 top-k？""" + assignment_task("a7_sampling_kv_cache", "top_k")["zh"] + r"""
4. **训练更久。** 令 `steps = 2000`。*预期：* 验证损失继续下降，生成的文本里真词更多；训练损失和验证损失之间的差距会拉大
   （这次 {{steps}} 步时是 {{gap:.3f}}）：模型开始记住训练文本。
5. **前置归一化块，用函数写。** 上面的 `Block` 用了现成的层。GPT-2 的块只用 `F.layer_norm`、`F.linear`、`F.gelu` 和注意力就能写出来，
   参数名与 tinyllm 的 `GPT` 相同。""" + assignment_task("a5_transformer_gpt", "block")["zh"] + r"""
6. **词表外的字符。** `char_tok.encode("ü")` 会抛出 `ValueError`，指出是哪个字符、在哪个位置。*预期：* 这就是 `preprocess` 要过滤的原因；
   BPE 分词器没有这个问题（任何字符串都是字节）。

下面三个起点单元对应练习 1、3、5：写好函数，再取消最后一行的注释来检查。
""", en=r"""
(Row *i* is the decoder's query after reading target position *i*, i.e. while predicting
character *i + 1*; the first row belongs to `<bos>`.) While writing the four year digits (the
first four rows), the decoder puts {{year_attention:.0%}} of its cross-attention on the four characters of
"1969" in the source, which are {{year_share:.0%}} of it. On {{n_val_dates}} held-out dates the exact match is
{{exact:.1%}}. `tinyllm.generate.greedy_translate` is the three steps above in one function;
`beam_search` keeps several candidates instead of one.

## Try it

1. **BPE instead of characters.** Re-run §2.2 with `bpe` (512 tokens) instead of `char_tok`
   (use `bpe.encode` and `vocab_size=bpe.vocab_size`). *Expected:* a much higher loss per
   *token* than the character model's, but each BPE token carries {{chars_per_token_512:.2f}} characters on
   average (measured above), so divide by that before comparing. Compare language models per
   character (or per byte), never per token, when their tokenizers differ. Write BPE's
   training yourself. """ + assignment_task("a6_bpe", "train_bpe")["en"] + r"""
2. **Causality, once more.** In the encoder–decoder, change one *source* character and see
   which decoder outputs change. *Expected:* all of them — cross-attention is not masked.
   Change a *target* token instead: only that position and the ones after it change.
3. **Temperature.** Sample 200 characters at τ = 0.2, 1.0 and 1.5. *Expected:* 0.2 repeats
   a few common words; 1.0 is varied with more misspellings; 1.5 is close to random letters.
   Write temperature and top-k yourself. """ + assignment_task("a7_sampling_kv_cache", "top_k")["en"] + r"""
4. **Longer training.** Set `steps = 2000`. *Expected:* the validation loss keeps falling and
   the text has more real words; the gap between training and validation loss widens (it was
   {{gap:.3f}} after {{steps}} steps here): the model starts to memorise its training text.
5. **The pre-norm block, in functions.** The `Block` above used ready-made layers. GPT-2's
   block needs only `F.layer_norm`, `F.linear`, `F.gelu` and attention, with the parameter
   names of tinyllm's `GPT`. """ + assignment_task("a5_transformer_gpt", "block")["en"] + r"""
6. **Unknown characters.** `char_tok.encode("ü")` raises a `ValueError` naming the character
   and its position. *Expected:* that is why `preprocess` filters; a BPE tokenizer never has
   this problem (every string is bytes).

The three starter cells below belong to exercises 1, 3 and 5: write the function, then
uncomment the last line to check it.
""")

code(r"""
#zh: 练习 1 的起始代码（作业 a6_bpe，任务 6.3）：学出 vocab_size − 256 个合并 {(a, b): new_id}
#en: Exercise 1, starter (assignment a6_bpe, task 6.3): learn vocab_size − 256 merges {(a, b): new_id}
def train_bpe(text, vocab_size):
    ids = list(text.encode("utf-8"))
    merges = {}
    #zh: 对 new_id = 256 … vocab_size − 1：数相邻的对，取最常见的一对，
    #en: for new_id in 256 … vocab_size − 1: count adjacent pairs, take the most frequent,
    #zh: 记下 merges[pair] = new_id，把 ids 里的这一对换成 new_id
    #en: record merges[pair] = new_id, replace the pair by new_id in ids
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def check_train_bpe():
    reference = BPETokenizer(pattern=r"(?s).+")      # one chunk: merges may cross words, as in the task
    reference.train(text[:20_000], vocab_size=266)
    mine = train_bpe(text[:20_000], 266)
    print(tr("前 10 个合并与 tinyllm 的相同 ✓", "the first 10 merges match tinyllm's ✓") if list(mine.items()) == list(reference.merges.items())
          else tr("还不一致 ✗", "not yet ✗"))

# check_train_bpe()
""")

code(r"""
#zh: 练习 3 的起始代码（作业 a7_sampling_kv_cache，任务 7.1）：用来采样的概率
#en: Exercise 3, starter (assignment a7_sampling_kv_cache, task 7.1): the probabilities to sample from
def top_k_probs(logits, k=None, temperature=1.0):
    #zh: 1. 除以温度  2. 若给了 k：保留最大的 k 个 logits，其余设为 −inf  3. softmax
    #en: 1. divide by the temperature  2. if k: keep the k largest logits, the others −inf  3. softmax
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def check_top_k_probs():
    z = np.array([2.0, 1.0, 0.5, -1.0, 3.0])
    p = top_k_probs(z, k=2, temperature=0.5)
    want = np.zeros(5); want[[0, 4]] = F.softmax(tl.Tensor(z[[0, 4]] / 0.5), axis=-1).numpy()
    print(tr("正确 ✓", "correct ✓") if np.allclose(p, want) else tr("还不对 ✗", "not yet ✗"))

# check_top_k_probs()
""")

code(r"""
#zh: 练习 5 的起始代码（作业 a5_transformer_gpt，任务 5.1）：用函数写一个前置归一化的 GPT-2 块
#en: Exercise 5, starter (assignment a5_transformer_gpt, task 5.1): one pre-norm GPT-2 block with functions
def transformer_block(x, p, n_heads):
    #zh: x = x + attention(F.layer_norm(x, p["ln_1.weight"], p["ln_1.bias"]))   （参数 p["attn.c_attn.weight"]、…"attn.c_proj..."）
    #en: x = x + attention(F.layer_norm(x, p["ln_1.weight"], p["ln_1.bias"]))   (p["attn.c_attn.weight"], ..."attn.c_proj...")
    #zh: x = x + mlp(F.layer_norm(x, p["ln_2.weight"], p["ln_2.bias"]))         （c_fc → F.gelu(..., approximate="tanh") → c_proj）
    #en: x = x + mlp(F.layer_norm(x, p["ln_2.weight"], p["ln_2.bias"]))         (c_fc → F.gelu(..., approximate="tanh") → c_proj)
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def check_transformer_block():
    tl.manual_seed(2)
    block = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)).transformer.h[0]
    x = tl.randn(2, 5, 8)
    got = transformer_block(x, dict(block.named_parameters()), n_heads=2)
    print(tr("与 GPT 的块一致 ✓", "matches GPT's block ✓") if np.allclose(got.numpy(), block(x).numpy(), atol=1e-5)
          else tr("还不一致 ✗", "not yet ✗"))

# check_transformer_block()
""")

md(zh=r"""
## 小结

| 原文（§2） | 本章的做法 |
|---|---|
| Transformer 架构，基于自注意力机制 | 编码器、解码器、编码器-解码器和 GPT 都由同样的 `tinyllm.nn` 层搭成，在一个玩具批次上运行 |
| 编码器 … 转换为特征表示 | 编码器把 7 个词映射成 7 个特征向量，每个都依赖整个输入（改最后一个词，它们都会变） |
| 解码器 … 根据特征表示生成输出文本 | 解码器一个字符一个字符地写日期，同时交叉注意力到编码器的 memory |
| （原文的模型与 GPT） | 后置归一化与前置归一化的块各写一遍，并排训练：学习率调高后后置归一化卡住，前置归一化照常训练 |
| 数据预处理：清洗、分词 | `clean_text`（换行、控制字符、Unicode NFC）；字符和 BPE 分词器，序列长度与词表大小的取舍 |
| 模型构建 | 一个 2 层 GPT，按部件数参数；初始损失 ≈ ln V |
| 模型训练 | 前向 → 反向 → 裁剪 → AdamW，预热 + 余弦；损失曲线 |
| 模型评估 | 验证损失、困惑度、准确率，与均匀、一元、二元基线比较 |
| 推理：输入预处理 → 模型预测 → 输出后处理 | 清洗 + 编码 + 截断；下一个词元的 softmax 和自回归循环（= `generate`）；解码 + 格式检查，GPT 和编码器-解码器各一遍 |

下一章打开标着“自注意力”的盒子，把它手算一遍。
""", en=r"""
## Summary

| the article (§2) | what this chapter showed |
|---|---|
| Transformer 架构, 基于自注意力机制 (built on self-attention) | encoder, decoder, encoder–decoder and GPT built from the same `tinyllm.nn` layers, run on a toy batch |
| 编码器 … 转换为特征表示 (encoder → features) | the encoder maps 7 tokens to 7 feature vectors; each depends on the whole input (changing the last token moves all of them) |
| 解码器 … 根据特征表示生成输出文本 (decoder → output) | the decoder writes dates character by character while cross-attending to the encoder's memory |
| (the article's model and GPT) | post-norm and pre-norm blocks written out and trained side by side: at a higher learning rate post-norm gets stuck, pre-norm trains |
| 数据预处理: 清洗、分词 (cleaning, tokenization) | `clean_text` (line endings, control characters, Unicode NFC); character and BPE tokenizers, sequence length vs vocabulary size |
| 模型构建 (model building) | a 2-layer GPT, parameters counted by part; initial loss ≈ ln V |
| 模型训练 (training) | forward → backward → clip → AdamW, warmup + cosine; loss curves |
| 模型评估 (evaluation) | validation loss, perplexity, accuracy, against uniform, unigram and bigram baselines |
| 推理: 输入预处理 → 模型预测 → 输出后处理 (inference) | clean + encode + crop; next-token softmax and the autoregressive loop (= `generate`); decode + format check, for GPT and for the encoder–decoder |

Next: chapter 3 opens the box labelled "self-attention" and computes it by hand.
""")

ch.index(builds=("架构图（编码器、解码器、编码器-解码器、仅解码器）各运行一次；后置归一化（原文的模型）与前置归一化（GPT）的块亲手写出并排训练；"
                 "训练流程（清洗 → 分词 → 切分 → 训练 → 评估）和两种推理流程逐步走一遍",
                 "the architecture map (encoder, decoder, encoder–decoder, decoder-only) run once each; post-norm (the "
                 "article's model) and pre-norm (GPT) blocks written out and trained side by side; the training pipeline "
                 "(clean → tokenize → split → train → evaluate) and both inference pipelines step by step"),
         figures=("GPT {{steps}} 步后验证损失 {{gpt_val_loss:.3f}}，二元模型 {{bigram_loss:.3f}}，均匀 {{uniform_loss:.3f}}；"
                  "学习率 0.01 时前置 {{pre_high:.3f}} 对后置 {{post_high:.3f}}；日期翻译精确匹配 {{exact:.1%}}",
                  "GPT val loss {{gpt_val_loss:.3f}} after {{steps}} steps vs bigram {{bigram_loss:.3f}} and uniform "
                  "{{uniform_loss:.3f}}; at lr 0.01 pre-norm {{pre_high:.3f}} vs post-norm {{post_high:.3f}}; date translator "
                  "{{exact:.1%}} exact match"))

if __name__ == "__main__":
    ch.build()
