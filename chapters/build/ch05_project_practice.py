"""Build chapters/zh/05_project_practice.ipynb and chapters/en/05_project_practice.ipynb (the
article's §5): its TransformerModel with every `# ...` filled in, trained on dates, decoded,
looked into, and compared with the same model in PyTorch; then a GPT grown in front of the
reader in five stages (bigram → one head → several heads → pre-norm block → the full model,
equal to tinyllm's GPT), with post-norm (the article's model) against pre-norm side by side.

    python chapters/build/ch05_project_practice.py                    # full run, both editions
    python chapters/build/ch05_project_practice.py --fast --out /tmp/ch   # quick check
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Chapter, assignment_task  # noqa: E402

ch = Chapter("05_project_practice", number=5, title=("项目实践：代码实例和详细解释说明", "Project practice: the code, explained"),
             sections="§5")
md, code = ch.md, ch.code

# ============================================================================ title
md(zh=r"""
# 5 · 项目实践：代码实例和详细解释说明

原文第 5 节是一段代码：一个 PyTorch 类 `TransformerModel`，有编码器 (encoder) 和解码器 (decoder)，
但真正有意思的行都省略成了 `# ...`。本章把每一个 `# ...` 补全，在一个小翻译任务上训练它、用它解码、看它的内部，
再写出同一个模型的 PyTorch 版，逐个数字对照。最后换一个方向：从最简单的二元模型开始，一步一步**长出一个 GPT**，
每个阶段都训练一下，看损失降了多少。（原文这一节没有小节；5.1–5.8 是本章自己的划分。）

**你会亲手搭建**

1. 原文的 `TransformerModel(ntoken, ninp, nhead, nhid, nlayers, dropout=0.5)`，补全后用 tinyllm 实现（NumPy，手写反向传播 (backpropagation)），以及它计算的每一个公式。
2. 一个玩具翻译任务——把英文日期翻译成 ISO 8601（`"the 5th of March 1998"` → `"1998-03-05"`），和一个调用原文七个参数 `forward` 的训练循环。
3. 贪心解码 (greedy decoding) 和束搜索 (beam search)，以及它们各自对在哪里、错在哪里。
4. 训练好的模型里编码器自注意力 (self-attention)、解码器自注意力和交叉注意力 (cross-attention) 的注意力图。
5. 用 `torch.nn.TransformerEncoder`/`TransformerDecoder` 写的同一个类：同样的权重 → 同样的逻辑值 (logits) 和梯度 (gradient)；再并排训练。
6. **一个分五步长出来的 GPT**：二元模型 (bigram model) → 一个注意力头 (attention head) → 多个头 → 带残差连接 (residual connection) 和前馈网络 (feed-forward network) 的前置归一化 (pre-norm) 块 → 完整的模型
   （装入 tinyllm 的 `GPT` 后输出相同）；每个阶段在同样的数据上训练同样的步数，验证损失 (validation loss) 画在前几个阶段旁边。
   再把原文模型用的后置归一化 (post-norm) 与 GPT 用的前置归一化并排训练。

完整运行约 {{run_minutes:.1f}} 分钟（{{run_cores}} 核 CPU）；设置 `TINYLLM_FAST=1` 时不到一分钟。
""", en=r"""
# 5 · 项目实践：代码实例和详细解释说明 — Project practice: the code, explained

Section 5 of the article is one block of code: a PyTorch class `TransformerModel` with an
encoder and a decoder, whose interesting lines are all elided as `# ...`. This chapter fills in
every `# ...`, trains the model on a small translation task, decodes with it, looks inside it,
and then writes the same model in PyTorch, number for number. Then it turns around: starting
from the simplest bigram model it **grows a GPT** step by step, training each step to see how
much the loss falls. (The article's section has no subsections; 5.1–5.8 are this chapter's.)

**What you will build**

1. The article's `TransformerModel(ntoken, ninp, nhead, nhid, nlayers, dropout=0.5)`, complete,
   in tinyllm (NumPy, hand-written backward), and every formula it computes.
2. A toy translation task — English dates into ISO 8601 (`"the 5th of March 1998"` →
   `"1998-03-05"`) — and a training loop that calls the article's seven-argument `forward`.
3. Greedy decoding and beam search, and what each gets right and wrong.
4. Encoder self-attention, decoder self-attention and cross-attention maps of the trained model.
5. The same class written with `torch.nn.TransformerEncoder`/`TransformerDecoder`: same weights →
   same logits and gradients; and trained side by side.
6. **A GPT grown in five stages**: bigram → one attention head → several heads → a pre-norm
   block with residual connections and an MLP → the full model (equal to tinyllm's `GPT` once
   loaded into it); each stage trained for the same steps on the same data, its validation loss
   plotted next to the earlier stages'. Then post-norm (the article's model) against pre-norm
   (GPT's), trained side by side.

A full run takes about {{run_minutes:.1f}} minutes on {{run_cores}} CPU cores; with `TINYLLM_FAST=1`, under a minute.
""")

ch.setup(r"""
import re, inspect, warnings
from IPython.display import Code, display
import tinyllm.functional as F
from tinyllm import nn
from tinyllm.models import TransformerModel, GPT, GPTConfig
from tinyllm.data import (make_date_pairs, date_tokenizers, encode_pairs, Seq2SeqDataset,
                          load_shipped_corpus, CharTokenizer, CausalLMDataset, train_val_split)
from tinyllm.generate import greedy_translate, beam_search, generate
from tinyllm.optim import AdamW, param_groups, clip_grad_norm_, cosine_with_warmup
np.set_printoptions(precision=4, suppress=True, linewidth=110)
""")

# ============================================================================ 5.1
md(zh=r"""
## 5.1 原文的代码

这是原文的代码，一字未改：

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

看得见的几行定下了模型的骨架：`nlayers` 层的编码器堆叠，`nlayers` 层的解码器堆叠，`forward` 先让编码器读源序列，
再让解码器一边读目标序列一边看编码器的输出。`# ...` 藏起来的，是把词元 (token) 编号变成向量、再把向量变回词元分数的所有东西：

| `# ...` 所在位置 | 必须有什么 |
|---|---|
| `__init__`，两个堆叠之前 | 词元嵌入（源和目标各一张表）、位置编码 (positional encoding)、两个层对象 `encoder_layer` 和 `decoder_layer` |
| `__init__`，两个堆叠之后 | 从 `ninp` 个特征到 `ntoken` 个分数的输出投影；初始化 |
| `forward`，编码器之前 | 查嵌入、缩放、加上位置 |
| `forward`，解码器之后 | 投影到词表 (vocabulary) 上的分数（逻辑值） |

参数名来自 PyTorch 的教程：`ntoken` 词表大小，`ninp` 模型宽度 $d_\text{model}$，`nhead` 注意力头数，`nhid` 前馈网络的宽度，`nlayers` 每个堆叠的层数。
""", en=r"""
## 5.1 原文的代码 — The article's code, as written

This is the article's block, verbatim:

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
stack of `nlayers` layers, and a `forward` that runs the encoder over the source and the decoder
over the target while it looks at the encoder's output. The `# ...` hide everything that turns
token ids into vectors and vectors back into token scores:

| `# ...` in | what must be there |
|---|---|
| `__init__`, before the stacks | token embeddings (one table for the source, one for the target), a positional encoding, the two layer objects `encoder_layer` and `decoder_layer` |
| `__init__`, after the stacks | an output projection from `ninp` features to `ntoken` scores; an initialisation |
| `forward`, before the encoder | look up embeddings, scale, add positions |
| `forward`, after the decoder | project to vocabulary scores (logits) |

The argument names come from the PyTorch tutorials: `ntoken` vocabulary size, `ninp` the model
width $d_\text{model}$, `nhead` attention heads, `nhid` the feed-forward width, `nlayers` layers
per stack.
""")

# ============================================================================ 5.2
md(zh=r"""
## 5.2 补全这个类

下面是 tinyllm 的 `TransformerModel`——原文的类，每个 `# ...` 都已补全。它是从库的模块里直接打印出来的源代码，你读到的就是运行的：
""", en=r"""
## 5.2 补全这个类 — The class, complete

Here is tinyllm's `TransformerModel` — the article's class with every `# ...` filled in. It is
the library's own source, printed from the module, so what you read is what runs:
""")

code(r"""
display(Code(inspect.getsource(TransformerModel.__init__) + "\n" + inspect.getsource(TransformerModel.embed)
             + "\n" + inspect.getsource(TransformerModel.forward), language="python"))
""")

md(zh=r"""
与原文逐行对照：

| 原文 | tinyllm |
|---|---|
| `super(TransformerModel, self).__init__()` | `super().__init__()` |
| `# ...` | `src_embedding`、`tgt_embedding`（各 $\text{ntoken}\times\text{ninp}$）、`pos_encoder`、`encoder_layer`、`decoder_layer` |
| `self.encoder = nn.TransformerEncoder(encoder_layer, nlayers)` | 同一行（`tl.nn.TransformerEncoder` 的参数与 torch 相同） |
| `self.decoder = nn.TransformerDecoder(decoder_layer, nlayers)` | 同一行 |
| `# ...` | `output_projection = nn.Linear(ninp, ntoken)`；`init_weights()` |
| `# ...`（forward） | `src = self.embed(self.src_embedding, src)`，`tgt` 同理 |
| `src = self.encoder(src, src_mask, src_padding_mask)` | 同一行 |
| `output = self.decoder(tgt, src, tgt_mask, memory_mask, tgt_padding_mask)` | 同样的调用，再加上 `memory_key_padding_mask=src_padding_mask`（见下） |
| `# ...` | `output = self.output_projection(output)` |

有一处是有意的补充：原文给解码器传了五个位置参数，其中没有 `memory_key_padding_mask`，
于是解码器的交叉注意力也会去看批次里较短源句的*填充*部分。tinyllm 在那里也传入 `src_padding_mask`，PyTorch 的翻译教程也是这样做的。

### 嵌入与位置

词元编号 $i$ 变成嵌入表 $E$ 的第 $i$ 行，乘以 $\sqrt{d_\text{model}}$，再加上它所在位置 $pos$ 的固定正弦位置编码：

$$x_{pos} = \sqrt{d_\text{model}}\;E[\text{id}_{pos}] + PE_{pos},\qquad
PE_{pos,\,2i} = \sin\!\Big(\frac{pos}{10000^{2i/d_\text{model}}}\Big),\quad
PE_{pos,\,2i+1} = \cos\!\Big(\frac{pos}{10000^{2i/d_\text{model}}}\Big)$$

嵌入初始化时很小（在 $[-0.1, 0.1]$ 上均匀分布），而 $PE$ 在 $[-1, 1]$ 之间；乘以 $\sqrt{d_\text{model}}$ 让两者尺度相近。
注意力本身没有顺序的概念——把词元打乱，加权和也跟着打乱——所以 $PE$ 是位置进入模型的唯一途径。
""", en=r"""
Line for line against the article:

| article | tinyllm |
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

One deliberate addition: the article hands the decoder five positional arguments, which leave out
`memory_key_padding_mask`, so the decoder's cross-attention would also look at the *padding* of
shorter sources in a batch. tinyllm passes `src_padding_mask` there too, as the PyTorch
translation tutorial does.

### Embeddings and positions

A token id $i$ becomes the row $E[i]$ of an embedding table, scaled by $\sqrt{d_\text{model}}$,
plus a fixed sinusoidal position code for its position $pos$:

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
axes[0].set(xlabel=tr("位置", "position"), ylabel=tr("特征 i", "feature i"), title=tr("d_model = 64 时的 PE[pos, i]", "PE[pos, i] for d_model = 64"))
fig.colorbar(im, ax=axes[0])
for i in (0, 2, 8, 20):
    axes[1].plot(pe[:40, i], label=tr(f"特征 {i}", f"feature {i}"))
axes[1].set(xlabel=tr("位置", "position"), title=tr("低维特征转得快，高维特征转得慢", "low features turn fast, high features slowly"))
axes[1].legend(fontsize=8)
plt.tight_layout(); plt.show()
""", alt=(
    "d_model = 64 时正弦位置编码的两幅图。左：PE[pos, i] 的热图，"
    "纵轴是特征 0 到 63，横轴是位置 0 到 39，红色是 −1，"
    "蓝色是 +1。最上面几行的颜色逐个位置快速交替，越往下变化越慢，"
    "下半部分变成一条条颜色不变的横纹（正弦行接近 0，余弦行接近 1）。"
    "右：特征 0、2、8、20 随位置的变化：特征 0 和 2 在 −1 与 1 之间快速振荡，"
    "特征 8 在 40 个位置里走了约两个周期，特征 20 只缓慢地升起又开始回落："
    "低维特征转得快，高维特征转得慢。",
    "Two panels on the sinusoidal position encoding for d_model = 64. Left: a heatmap of PE[pos, i], "
    "features 0 to 63 down and positions 0 to 39 across, red for −1 and blue for +1. The top rows "
    "flip colour from one position to the next, the rows below change more and more slowly, and the "
    "lower half is horizontal stripes of constant colour (sine rows near 0, cosine rows near 1). "
    "Right: features 0, 2, 8 and 20 against position. Features 0 and 2 oscillate fast between −1 and "
    "1, feature 8 goes through about two periods in 40 positions, and feature 20 only rises slowly "
    "and starts to turn: low features turn fast, high features slowly."))

md(zh=r"""
### 编码器层和解码器层

每个 `TransformerEncoderLayer` 有两个子层——自注意力 (self-attention) 和逐位置的前馈网络——每个子层都包在一个残差连接
和一个 LayerNorm 里。LayerNorm 放在残差相加**之后**，叫后置归一化（论文和 torch 的默认做法）：

$$h = \mathrm{LayerNorm}\big(x + \mathrm{MultiHead}(x, x, x)\big),\qquad
\text{out} = \mathrm{LayerNorm}\big(h + \mathrm{FFN}(h)\big),\qquad
\mathrm{FFN}(h) = W_2\,\mathrm{ReLU}(W_1 h + b_1) + b_2$$

$W_1$ 的大小是 $\text{nhid}\times\text{ninp}$。多头注意力 (multi-head attention) 就是原文 §4.1 的公式在宽度 $d_k = d_\text{model}/H$ 的切片上跑 $H$ = `nhead` 次：

$$\mathrm{Attention}(Q,K,V) = \mathrm{softmax}\Big(\frac{QK^\top}{\sqrt{d_k}} + M\Big)V,\qquad
\mathrm{MultiHead} = \mathrm{concat}(\text{head}_1,\dots,\text{head}_H)\,W_O,\quad
\text{head}_h = \mathrm{Attention}(XW_Q^{h}, XW_K^{h}, XW_V^{h})$$

$M$ 是掩码 (mask)：允许关注的位置为 $0$，不允许的为 $-\infty$。`TransformerDecoderLayer` 有三个子层：对目前为止的目标序列做带掩码的自注意力，
**交叉注意力**（查询来自目标序列，键和值来自编码器的输出，即“记忆”），再是前馈网络：

$$h_1 = \mathrm{LN}\big(y + \mathrm{MultiHead}(y, y, y;\ M_\text{causal})\big),\quad
h_2 = \mathrm{LN}\big(h_1 + \mathrm{MultiHead}(h_1, \text{mem}, \text{mem})\big),\quad
\text{out} = \mathrm{LN}\big(h_2 + \mathrm{FFN}(h_2)\big)$$

最后 `output_projection` 把每个解码器向量映射成 `ntoken` 个分数（逻辑值）$z$，$p(y_t = j) = \mathrm{softmax}(z_t)_j$。

我们训练的模型：`ninp=64`，`nhead=4`（所以 $d_k = 16$），`nhid=256`，`nlayers=2`，`dropout=0.1`。
（原文的默认值 0.5 来自 PyTorch 的词语言模型教程；在这样规整的任务上有两万对训练数据，强 dropout 主要是拖慢学习——见“动手试试”。）
""", en=r"""
### The encoder and decoder layers

Each `TransformerEncoderLayer` has two sublayers — self-attention and a position-wise
feed-forward network — each wrapped in a residual connection and a LayerNorm. The LayerNorm
comes **after** the residual sum: post-norm, the paper's and torch's default:

$$h = \mathrm{LayerNorm}\big(x + \mathrm{MultiHead}(x, x, x)\big),\qquad
\text{out} = \mathrm{LayerNorm}\big(h + \mathrm{FFN}(h)\big),\qquad
\mathrm{FFN}(h) = W_2\,\mathrm{ReLU}(W_1 h + b_1) + b_2$$

with $W_1$ of size $\text{nhid}\times\text{ninp}$. Multi-head attention is the article's formula
(§4.1) run $H$ = `nhead` times on slices of width $d_k = d_\text{model}/H$:

$$\mathrm{Attention}(Q,K,V) = \mathrm{softmax}\Big(\frac{QK^\top}{\sqrt{d_k}} + M\Big)V,\qquad
\mathrm{MultiHead} = \mathrm{concat}(\text{head}_1,\dots,\text{head}_H)\,W_O,\quad
\text{head}_h = \mathrm{Attention}(XW_Q^{h}, XW_K^{h}, XW_V^{h})$$

where $M$ is a mask: $0$ where attention is allowed, $-\infty$ where it is not. A
`TransformerDecoderLayer` has three sublayers: masked self-attention over the target so far,
**cross-attention** whose queries come from the target and whose keys and values come from the
encoder's output ("memory"), then the feed-forward network:

$$h_1 = \mathrm{LN}\big(y + \mathrm{MultiHead}(y, y, y;\ M_\text{causal})\big),\quad
h_2 = \mathrm{LN}\big(h_1 + \mathrm{MultiHead}(h_1, \text{mem}, \text{mem})\big),\quad
\text{out} = \mathrm{LN}\big(h_2 + \mathrm{FFN}(h_2)\big)$$

Finally `output_projection` maps each decoder vector to `ntoken` scores (logits) $z$, and
$p(y_t = j) = \mathrm{softmax}(z_t)_j$.

The model we train: `ninp=64`, `nhead=4` (so $d_k = 16$), `nhid=256`, `nlayers=2`,
`dropout=0.1`. (The article's default, 0.5, comes from PyTorch's word-language-model tutorial;
with 20,000 training pairs for a task this regular, heavy dropout mainly slows learning — see
*Try it*.)
""")

code(r"""
src_tok, tgt_tok = date_tokenizers()              # character tokenizers; <pad>=0, <bos>=1, <eos>=2
ntoken = max(src_tok.vocab_size, tgt_tok.vocab_size)   # the article has one ntoken for both sides
tl.manual_seed(0)
model = TransformerModel(ntoken=ntoken, ninp=64, nhead=4, nhid=256, nlayers=2, dropout=0.1)
print(model)
print(tr(f"\n源词表 {src_tok.vocab_size}，目标词表 {tgt_tok.vocab_size}，ntoken = {ntoken}",
         f"\nsource vocabulary {src_tok.vocab_size}, target vocabulary {tgt_tok.vocab_size}, ntoken = {ntoken}"))
print(tr(f"参数：{model.num_parameters():,}", f"parameters: {model.num_parameters():,}"))
record(s2s_params=model.num_parameters(), ntoken=ntoken)
""")

md(zh=r"""
### 掩码

`forward` 接收五个掩码，约定全部与 torch 相同：

| 参数 | 形状 | 含义 |
|---|---|---|
| `src_mask` | $(S, S)$ | 源序列的哪些位置可以看哪些位置（None：全部可以） |
| `tgt_mask` | $(T, T)$ | 因果掩码 (causal mask)：目标位置 $t$ 只能看 $\le t$ 的位置 |
| `memory_mask` | $(T, S)$ | 每个目标位置可以看哪些源位置（None：全部可以） |
| `src_padding_mask` | $(B, S)$ | 源序列的填充处为 True |
| `tgt_padding_mask` | $(B, T)$ | 目标序列的填充处为 True |

因果掩码让解码器成为一个*生成器*：训练时解码器一次看到整个目标序列（教师强制 (teacher forcing)），
没有掩码的话，位置 $t$ 直接读第 $t+1$ 个词元就行了——那正是要它预测的答案。

$$M_\text{causal}[i, j] = \begin{cases}0 & j \le i\\ -\infty & j > i\end{cases}
\qquad\Rightarrow\qquad e^{-\infty} = 0:\ \text{不给未来任何权重}$$
""", en=r"""
### The masks

`forward` takes five masks, all with torch's conventions:

| argument | shape | meaning |
|---|---|---|
| `src_mask` | $(S, S)$ | which source positions may look at which (None: all) |
| `tgt_mask` | $(T, T)$ | causal: target position $t$ may only see positions $\le t$ |
| `memory_mask` | $(T, S)$ | which source positions each target position may see (None: all) |
| `src_padding_mask` | $(B, S)$ | True at source padding |
| `tgt_padding_mask` | $(B, T)$ | True at target padding |

The causal mask is the one that makes a decoder a *generator*: during training the decoder sees
the whole target at once (teacher forcing), and without the mask position $t$ could simply read
token $t+1$ — the answer it is asked to predict.

$$M_\text{causal}[i, j] = \begin{cases}0 & j \le i\\ -\infty & j > i\end{cases}
\qquad\Rightarrow\qquad e^{-\infty} = 0:\ \text{no weight on the future}$$
""")

code(r"""
print(model.generate_square_subsequent_mask(5).numpy())
""")

# ============================================================================ 5.3
md(zh=r"""
## 5.3 任务：把日期翻译成 ISO 8601

真正的翻译语料需要大模型和好几天的训练（原文 §1.2）。这个玩具任务保留了翻译作为*序列到序列* (sequence-to-sequence) 问题的本质——
输入和输出长度不同，一部分要调换顺序、改写（`March` → `03`，年份移到最前面）——而一个 {{s2s_params:,}} 个参数的模型几分钟就能学会。
`make_date_pairs` 按随机种子从 1900–2099 年里抽日期，写成六种格式，所以每个人拿到的数据都一样。

这就是原文的数据预处理 (data preprocessing，§2.2)：文本生成时就是干净的，分词 (tokenization) 是一个字符一个编号。
""", en=r"""
## 5.3 任务：把日期翻译成 ISO 8601 — The task: dates into ISO 8601

A real translation corpus needs a big model and days of training (the article's §1.2). The toy
task keeps what makes translation a *sequence-to-sequence* problem — input and output differ in
length, and parts must be reordered and rewritten (`March` → `03`, the year moves to the front) —
while a model of {{s2s_params:,}} parameters learns it in minutes. `make_date_pairs` draws dates from
1900–2099 in six formats, from a seed, so everyone gets the same data.

This is the article's data preprocessing (§2.2): the text is generated clean, and tokenization
is one id per character.
""")

code(r"""
n_train, n_val = (2_000, 500) if FAST else (20_000, 1_000)
pairs = make_date_pairs(n_train + n_val, seed=0)           # unique sources; cut once: no overlap
train_pairs, val_pairs = pairs[:n_train], pairs[n_train:]
for source, target in train_pairs[:8]:
    print(f"{source!r:30} -> {target!r}")
print(tr(f"\n训练 {len(train_pairs):,} 对，验证 {len(val_pairs):,} 对", f"\n{len(train_pairs):,} training pairs, {len(val_pairs):,} validation pairs"))
print(tr("源序列编号：", "source ids of ") + repr(train_pairs[0][0]) + " :", src_tok.encode(train_pairs[0][0]))
""")

md(zh=r"""
`Seq2SeqDataset` 把句对补齐成批次，排成原文 PyTorch 代码期望的 `(seq, batch)` 布局。教师强制：解码器读 `tgt_in` = `<bos>` + 目标，
必须输出 `tgt_out` = 目标 + `<eos>`，错开一位；`tgt_out` 里的填充标成 $-100$，损失会跳过它们。
""", en=r"""
`Seq2SeqDataset` pads pairs into batches laid out `(seq, batch)` as the article's PyTorch code
expects. Teacher forcing: the decoder reads `tgt_in` = `<bos>` + target and must output
`tgt_out` = target + `<eos>`, one position ahead; padding in `tgt_out` is marked $-100$ so the
loss skips it.
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
print(tr("（· 填充，^ <bos>，$ <eos>，_ 忽略的标签）", "(· padding, ^ <bos>, $ <eos>, _ ignored label)"))
""")

# ============================================================================ 5.4
md(zh=r"""
## 5.4 训练

损失是目标词元的交叉熵（原文 §3.2），对 $N$ 个非填充位置取平均：

$$\mathcal{L}(\theta) = -\frac{1}{N}\sum_{(t,b)\,:\,y_{t,b}\neq\text{pad}} \log\,\mathrm{softmax}(z_{t,b})_{y_{t,b}}$$

`loss.backward()` 就是原文的反向传播（§4.2）：链式法则 (chain rule)
$\frac{\partial L}{\partial w} = \frac{\partial L}{\partial y}\frac{\partial y}{\partial z}\frac{\partial z}{\partial w}$
沿着前向建立的计算图 (computational graph) 逐个运算往回用，给每个参数填上 `p.grad`（第 4 章亲手写过这台机器）。然后 AdamW 更新权重，
学习率 (learning rate) $\eta$ 先在 $W$ 步里线性升高，再按半个余弦降到第 $D$ 步的最小值：

$$\eta(s) = \eta_{\max}\cdot\frac{s+1}{W}\ \ (s < W),\qquad
\eta(s) = \eta_{\min} + \tfrac12\Big(1+\cos\frac{\pi(s-W)}{D-W}\Big)(\eta_{\max}-\eta_{\min})\ \ (s \ge W)$$

其中 $\eta_{\max}$ = `max_lr`，$\eta_{\min}$ = `min_lr`，$W$ = `warmup`，$D$ = `steps`。

下面的循环是写出来的，没有藏在训练器里，这样原文的 `forward` 调用看得见：
`model(src, tgt, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, memory_mask)`。
""", en=r"""
## 5.4 训练 — Training

The loss is the cross-entropy of the target tokens (the article's §3.2), averaged over the $N$
non-padding positions:

$$\mathcal{L}(\theta) = -\frac{1}{N}\sum_{(t,b)\,:\,y_{t,b}\neq\text{pad}} \log\,\mathrm{softmax}(z_{t,b})_{y_{t,b}}$$

`loss.backward()` is the article's backpropagation (§4.2): the chain rule
$\frac{\partial L}{\partial w} = \frac{\partial L}{\partial y}\frac{\partial y}{\partial z}\frac{\partial z}{\partial w}$
applied op by op, backwards through the graph the forward built, filling `p.grad` for every
parameter (chapter 4 wrote that machine). AdamW then updates the weights, with a learning rate
$\eta$ that warms up linearly for $W$ steps and then follows a half cosine down to its minimum at
step $D$:

$$\eta(s) = \eta_{\max}\cdot\frac{s+1}{W}\ \ (s < W),\qquad
\eta(s) = \eta_{\min} + \tfrac12\Big(1+\cos\frac{\pi(s-W)}{D-W}\Big)(\eta_{\max}-\eta_{\min})\ \ (s \ge W)$$

with $\eta_{\max}$ = `max_lr`, $\eta_{\min}$ = `min_lr`, $W$ = `warmup`, $D$ = `steps`.

The loop below is written out, not hidden in a trainer, so the article's `forward` call is
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
    logits = model(src, tgt_in, None, tgt_mask, src_pad, tgt_pad, None)    # the article's forward
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
initial_state = model.state_dict()                    # kept for the PyTorch comparison in 5.7
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
        print(tr(f"第 {step + 1:4d} 步  学习率 {lr:.2e}  训练损失 {loss.item():.4f}  验证损失 {history['val'][-1]:.4f}  （{time.perf_counter() - start:.0f} 秒）",
                 f"step {step + 1:4d}  lr {lr:.2e}  train loss {loss.item():.4f}  val loss {history['val'][-1]:.4f}  ({time.perf_counter() - start:.0f} s)"))
train_seconds, train_cpu = time.perf_counter() - start, time.process_time() - start_cpu
print(tr(f"\n{steps} 步用了 {train_seconds:.0f} 秒（每步 {1000 * train_seconds / steps:.0f} ms，CPU 时间每步 {1000 * train_cpu / steps:.0f} ms）",
         f"\n{steps} steps in {train_seconds:.0f} s ({1000 * train_seconds / steps:.0f} ms per step; CPU time {1000 * train_cpu / steps:.0f} ms per step)"))
record(s2s_steps=steps, s2s_first_loss=history["train"][0], s2s_val_last=history["val"][-1], s2s_seconds=train_seconds,
       uniform_loss=math.log(ntoken))
""")

code(r"""
fig, ax = plt.subplots(figsize=(7, 3.4))
ax.plot(history["step"], history["train"], lw=0.8, alpha=0.6, label=tr("训练（单个批次）", "train (one batch)"))
ax.plot(history["val_step"], history["val"], "o-", label=tr("验证（256 对）", "validation (256 pairs)"))
ax.set(yscale="log", xlabel=tr("步数", "step"), ylabel=tr("交叉熵（对数坐标）", "cross-entropy (log scale)"),
       title=tr("TransformerModel：日期 → ISO 8601", "TransformerModel on dates → ISO 8601"))
ax.legend(); plt.tight_layout(); plt.show()
""", alt=(
    "TransformerModel 学习把日期改写成 ISO 8601 时的训练曲线，"
    "交叉熵用对数纵轴，共 {{s2s_steps}} 步：每个训练批次的损失是一条细而抖动的线，"
    "256 对验证数据上每 50 步测一次的损失是连起来的圆点。"
    "两者从 {{s2s_first_loss:.2f}} 一路稳定下降；"
    "验证损失最后降到 {{s2s_val_last:.4f}}，"
    "低于抖动的训练损失（训练时开着 dropout）。",
    "Training curves of the TransformerModel learning to rewrite dates as ISO 8601, cross-entropy on "
    "a log scale over {{s2s_steps}} steps: the loss of each training batch as a thin, jagged line, "
    "and the validation loss on 256 pairs every 50 steps as dots joined by a line. Both fall steadily "
    "from {{s2s_first_loss:.2f}}; the validation loss ends at {{s2s_val_last:.4f}}, below the noisy "
    "training loss (which has dropout on)."))

md(zh=r"""
损失从 {{s2s_first_loss:.2f}}（均匀猜测 45 个词元是 $\ln(\text{ntoken}) = $ {{uniform_loss:.2f}}）降到验证损失 {{s2s_val_last:.4f}}：
逐个字符地看，模型几乎总是对的。不过用户看到的不是字符准确率 (accuracy)——一个日期错一位数字就是错的日期。下一节衡量整个输出。
""", en=r"""
The loss falls from {{s2s_first_loss:.2f}} (a uniform guess over the 45 tokens is $\ln(\text{ntoken}) = $ {{uniform_loss:.2f}})
to a validation loss of {{s2s_val_last:.4f}}: per character, the model is nearly always right. Character
accuracy is not what a user sees, though — a date with one wrong digit is a wrong date. The next
section measures whole outputs.
""")

# ============================================================================ 5.5
md(zh=r"""
## 5.5 推理：贪心解码与束搜索

推理 (inference，原文 §2.3) 分三步：**预处理**输入（把字符编码、补齐），**预测**（运行模型），**后处理**（把编号变回文本）。
序列模型的预测是一个循环：编码器只跑一次，解码器每输出一个词元跑一次，每次读的是到目前为止生成的前缀。

**贪心解码**每一步都取最可能的词元：

$$\hat y_t = \arg\max_{j}\ p_\theta(j \mid \hat y_{<t},\, x)$$

下面对一个日期手动走一遍这个循环，每一步显示最可能的三个词元——`greedy_decode` 对整个批次做的就是这件事。
""", en=r"""
## 5.5 推理：贪心解码与束搜索 — Inference: greedy decoding and beam search

Inference (the article's §2.3) is three steps: **preprocess** the input (encode the characters,
pad), **predict** (run the model), **postprocess** (turn ids back into text). Prediction for a
sequence model is a loop: the encoder runs once, the decoder runs once per output token, each
time on the prefix produced so far.

**Greedy decoding** takes the most likely token at every step:

$$\hat y_t = \arg\max_{j}\ p_\theta(j \mid \hat y_{<t},\, x)$$

Here is that loop by hand for one date, showing the three most likely tokens at each step — the
same computation `greedy_decode` does for a whole batch.
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
            print(tr(f"第 {len(ys):2d} 步：", f"step {len(ys):2d}: ") + "   ".join(f"{tgt_tok.decode([int(j)])!r:8} {probs[j]:.3f}" for j in best))
            ys.append(int(best[0]))
            if ys[-1] == 2:                                       # <eos>
                break
    model.train()
    answer = tgt_tok.decode(ys[1:], skip_special_tokens=True)   # postprocess
    return answer, np.array(rows)

example = "the 21st of February 1987"
answer, step_probs = explain_greedy(example)
print(tr("\n答案：", "\nanswer:"), answer)
record(example_answer=answer, example_min_top=float(step_probs.max(axis=1).min()))
""")

code(r"""
fig, ax = plt.subplots(figsize=(7, 3.2))
labels = [tgt_tok.decode([j]) for j in range(tgt_tok.vocab_size)]
im = ax.imshow(step_probs[:, :tgt_tok.vocab_size].T, cmap="Blues", aspect="auto", vmin=0, vmax=1)
ax.set_yticks(range(tgt_tok.vocab_size), labels, fontsize=8); ax.set_xlabel(tr("解码步", "decoding step"))
ax.set_title(tr(f"'{example}' 每一步的 p(下一个词元)", f"p(next token) at each step for '{example}'"))
fig.colorbar(im, ax=ax); plt.tight_layout(); plt.show()
""", alt=(
    "模型为“the 21st of February 1987”写答案时每一步的下一个词元概率热图："
    "横轴是解码步，纵轴是目标词表（<pad>、<bos>、<eos>、“-”和数字 0 到 9），"
    "深蓝表示概率接近 1。每一列只有一个深色格子，就是选中的词元："
    "依次拼出 {{example_answer}}，最后是 <eos>；"
    "每一步最可能的词元概率都至少是 {{example_min_top:.3f}}。",
    "Heatmap of the decoder's next-token probabilities at each step while it writes the answer to "
    "'the 21st of February 1987': decoding steps across, the target vocabulary (<pad>, <bos>, <eos>, "
    "'-' and the digits 0 to 9) down, dark blue for a probability near 1. Each column has a single "
    "dark cell, the token chosen; together they spell {{example_answer}}, then <eos>, and every "
    "step's most likely token has a probability of at least {{example_min_top:.3f}}."))

md(zh=r"""
模型的答案是 `{{example_answer}}`；每一步最可能的词元概率最低也有 {{example_min_top:.3f}}。现在在整个验证集 (validation set) 上分批做贪心解码
（`greedy_translate` = 预处理 + `greedy_decode` + 后处理），衡量**精确匹配** (exact match)：输出与参考答案逐字符相同的比例。图里按源格式分开统计。
""", en=r"""
The model answers `{{example_answer}}`; at every step the most likely token has a probability of at least
{{example_min_top:.3f}}. Now greedy decoding over the validation set, in batches (`greedy_translate` =
preprocess + `greedy_decode` + postprocess), with the **exact match**: the fraction of outputs
equal to the reference, character for character. The figure splits it by source format.
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
print(tr(f"{n_eval} 个源句的贪心解码：{time.perf_counter() - start:.1f} 秒", f"greedy decoding of {n_eval} sources: {time.perf_counter() - start:.1f} s"))
correct = np.array([g == r for g, r in zip(greedy, references)])
print(tr(f"精确匹配：{correct.mean():.1%}（{correct.sum()} / {n_eval}）", f"exact match: {correct.mean():.1%} ({correct.sum()} of {n_eval})"))

formats = [date_format(s) for s in sources]
names = sorted(set(formats))
rates = [correct[[f == n for f in formats]].mean() for n in names]
fig, ax = plt.subplots(figsize=(7, 2.8))
ax.barh(names, rates, color="tab:blue"); ax.set_xlim(0, 1.12); ax.set_xlabel(tr("精确匹配（贪心）", "exact match (greedy)"))
for y, r in enumerate(rates):
    ax.text(r + 0.01, y, f"{r:.1%}", va="center", fontsize=9)
ax.set_title(tr("按源格式统计的精确匹配", "exact match by source format")); plt.tight_layout(); plt.show()
worst = int(np.argmin(rates))
record(exact_match=float(correct.mean()), n_correct=int(correct.sum()), n_eval=n_eval,
       worst_format=names[worst], worst_rate=float(rates[worst]))
""", alt=(
    "横向柱状图：贪心解码在每种源日期格式上的精确匹配率，每根柱子标着百分比，"
    "格式是“the 5th of march 1998”“march 5, 1998”“mar "
    "5, 1998”“5 march 1998”“5 mar 1998”和“05.03.1998”。"
    "大多数格式在 100% 或接近 100%；最难的是“{{worst_format}}”，"
    "柱子最短，为 {{worst_rate:.1%}}。总体精确匹配率是 {{exact_match:.1%}}。",
    "Horizontal bar chart of the exact match of greedy decoding for each source format of the dates "
    "('the 5th of march 1998', 'march 5, 1998', 'mar 5, 1998', '5 march 1998', '5 mar 1998' and "
    "'05.03.1998'), each bar labelled with its percentage. Most formats are at or near 100%; the "
    "hardest, '{{worst_format}}', has the shortest bar at {{worst_rate:.1%}}. Overall the exact match "
    "is {{exact_match:.1%}}."))

md(zh=r"""
精确匹配 {{exact_match:.1%}}（{{n_eval}} 个中对了 {{n_correct}} 个）；最难的格式是 `{{worst_format}}`（{{worst_rate:.1%}}）。

**束搜索**保留 $k$ 个最好的前缀，而不是一个。每一步把每个前缀用每个词元延长一位，按总的对数概率打分，留下最好的 $k$ 个：

$$\text{score}(y_{1..t}) = \sum_{s=1}^{t} \log p_\theta(y_s \mid y_{<s}, x),\qquad
\text{最终排序：} \frac{\text{score}(Y)}{\mathrm{lp}(Y)},\quad \mathrm{lp}(Y) = \Big(\frac{5 + |Y|}{6}\Big)^{\alpha}$$

（Google 神经机器翻译 (neural machine translation) 系统的长度惩罚 (length penalty)，$\alpha = 0.6$，免得长输出因为求和的项多而吃亏。）贪心就是 $k = 1$ 的束搜索。
下面把贪心的错误用宽度为 4 的束重新解码一遍，并把所有贪心错误按出错的字段分类：
""", en=r"""
Exact match {{exact_match:.1%}} ({{n_correct}} of {{n_eval}}); the hardest format is `{{worst_format}}` ({{worst_rate:.1%}}).

**Beam search** keeps the $k$ best prefixes instead of one. Each step extends every prefix by
every token, scores each by its total log-probability, and keeps the best $k$:

$$\text{score}(y_{1..t}) = \sum_{s=1}^{t} \log p_\theta(y_s \mid y_{<s}, x),\qquad
\text{final rank: } \frac{\text{score}(Y)}{\mathrm{lp}(Y)},\quad \mathrm{lp}(Y) = \Big(\frac{5 + |Y|}{6}\Big)^{\alpha}$$

(the length penalty of Google's NMT system, $\alpha = 0.6$, so that long outputs are not punished
for having more terms in the sum). Greedy is beam search with $k = 1$. Below: the greedy
mistakes, decoded again with a beam of 4, and every greedy mistake sorted by the field it gets
wrong:
""")

code(r"""
mistakes = [i for i in range(n_eval) if not correct[i]]
shown = mistakes[: (3 if FAST else 12)]
fixed, beam_probs = 0, []
print(tr(f"{'源句':26} {'参考':11} {'贪心':11} {'束 (k=4)':11} {'分数':>7} {'P(束的答案)':>12}",
         f"{'source':28} {'reference':11} {'greedy':11} {'beam (k=4)':11} {'score':>7} {'P(beam answer)':>14}"))
for i in shown:
    ids, score = beam_search(model, src_tok.encode(sources[i]), beam_size=4, max_len=12)
    beam = tgt_tok.decode(ids, skip_special_tokens=True)
    fixed += beam == references[i]
    beam_probs.append(math.exp(score))
    print(f"{sources[i]!r:28} {references[i]:11} {greedy[i]:11} {beam:11} {score:7.3f} {math.exp(score):14.2f}"
          + (tr("   ✓ 改对了", "   ✓ fixed") if beam == references[i] else ""))
print(tr(f"\n束搜索改对了列出的 {len(shown)} 个贪心错误中的 {fixed} 个", f"\nbeam search fixes {fixed} of the {len(shown)} greedy mistakes shown"))
ids, _ = beam_search(model, src_tok.encode(sources[0]), beam_size=1, max_len=12)
print(tr("beam_size=1 给出贪心的答案：", "beam_size=1 gives greedy's answer:"), tgt_tok.decode(ids, skip_special_tokens=True) == greedy[0])

def wrong_fields(output, reference):
    fields = [name for name, part in (("year", slice(0, 4)), ("month", slice(5, 7)), ("day", slice(8, 10)))
              if output[part] != reference[part]]
    return fields if len(output) == 10 and fields else ["format"]
kinds = [wrong_fields(greedy[i], references[i]) for i in mistakes]
count = {field: sum(field in k for k in kinds) for field in ("year", "month", "day", "format")}
doubled = sum(1 for i in mistakes if references[i][8] == "0" and greedy[i][8:10] == references[i][9] * 2)
print(tr(f"全部 {len(mistakes)} 个贪心错误里：年份错 {count['year']}，月份错 {count['month']}，日错 {count['day']}，格式错 {count['format']}；"
         f"其中 {doubled} 个是把一位数的日写了两遍（02 → 22）",
         f"of all {len(mistakes)} greedy mistakes: {count['year']} in the year, {count['month']} in the month, {count['day']} in the day, "
         f"{count['format']} malformed; {doubled} of them a one-digit day written twice (02 → 22)"))
record(beam_shown=len(shown), beam_fixed=fixed, n_mistakes=len(mistakes), wrong_year=count["year"], wrong_month=count["month"],
       wrong_day=count["day"], doubled_day=doubled,
       beam_p_low=float(min(beam_probs)) if beam_probs else 0.0, beam_p_high=float(max(beam_probs)) if beam_probs else 0.0)
""")

md(zh=r"""
束搜索改对了 {{beam_shown}} 个中的 {{beam_fixed}} 个。看最后一列：模型给它的错误答案的概率（$e^{\text{score}}$）在 {{beam_p_low:.2f}} 到 {{beam_p_high:.2f}} 之间。
全部 {{n_mistakes}} 个贪心错误中，日错了 {{wrong_day}} 个（其中 {{doubled_day}} 个是一位数的日写了两遍），年份错 {{wrong_year}} 个，月份错 {{wrong_month}} 个。
这些错误是*有把握的*、*成系统的*。束搜索只能找到模型自己打分比贪心答案更高的输出；它推翻不了模型相信的东西，所以在这里作用不大。
束搜索值得它的开销，是在模型拿不准几个续写、要靠后面的词元来定夺的时候——在真实的翻译里，合理的输出很多，这种情况远比这个几乎确定的任务常见。
治疗有把握的错误，要靠更多训练或更多数据（见下面的练习）。
""", en=r"""
Beam search fixes {{beam_fixed}} of the {{beam_shown}}. Look at the last column: the model gives its wrong answers
probabilities ($e^{\text{score}}$) between {{beam_p_low:.2f}} and {{beam_p_high:.2f}}. Of all {{n_mistakes}} greedy mistakes,
{{wrong_day}} are in the day ({{doubled_day}} of them a one-digit day written twice), {{wrong_year}} in the year and
{{wrong_month}} in the month. These mistakes are *confident* and *systematic*. Beam search can only find
an output that the model itself scores higher than greedy's; it cannot overrule what the model
believes, so it changes little here. Beam search earns its cost where the model is unsure between
several continuations and a later token tips the balance — in real translation, with many
plausible outputs, far more often than in this near-deterministic task. The cure for confident
mistakes is more training or more data (try it below).
""")

# ============================================================================ 5.6
md(zh=r"""
## 5.6 看进模型内部：注意力图

每个注意力层都保留着最近一次的权重——形状为（批，头，查询，键）的矩阵 $\mathrm{softmax}(QK^\top/\sqrt{d_k} + M)$——
`model.attention_maps()` 按层名收集它们。先检查这些权重确实就是原文的公式：用第一层编码器的参数和输入，手算它的权重。
""", en=r"""
## 5.6 看进模型内部：注意力图 — Looking inside: attention maps

Every attention layer keeps its last weights — the matrix $\mathrm{softmax}(QK^\top/\sqrt{d_k} + M)$
of shape (batch, heads, queries, keys) — and `model.attention_maps()` collects them by layer name.
First, a check that these weights are the article's formula: recompute the first encoder layer's
weights by hand, from its parameters and its input.
""")

code(r"""
src = tl.Tensor(np.array(src_tok.encode(example))[:, None])           # (S, 1)
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
by_hand_gap = float(np.abs(weights - maps["encoder.layers.0.self_attn"][h]).max())
print(tr("\n手算与层的权重最多相差", "\nmax |by hand - layer| ="), f"{by_hand_gap:.1e}")
record(by_hand_gap=by_hand_gap)
""")

code(r"""
src_chars = list(example)
tgt_in = ["<bos>"] + list(answer)                                     # what the decoder reads
tgt_in_chars = [f"{a} → {b_}" for a, b_ in zip(tgt_in, list(answer) + ["<eos>"])]   # reads → predicts
panels = [("encoder.layers.1.self_attn", src_chars, src_chars, tr("编码器自注意力（第 2 层）", "encoder self-attention (layer 2)")),
          ("decoder.layers.1.self_attn", tgt_in_chars, tgt_in, tr("解码器自注意力（第 2 层）", "decoder self-attention (layer 2)")),
          ("decoder.layers.1.multihead_attn", tgt_in_chars, src_chars, tr("交叉注意力（第 2 层）", "cross-attention (layer 2)"))]
fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), gridspec_kw={"width_ratios": [1.2, 0.7, 1.2]})
for ax, (name, rows, cols, title) in zip(axes, panels):
    ax.imshow(maps[name].mean(axis=0), cmap="viridis", vmin=0)      # averaged over the 4 heads
    ax.set_xticks(range(len(cols)), cols, fontsize=8); ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title(title, fontsize=10); ax.set_xlabel(tr("键（被关注者）", "key (attended to)"))
axes[0].set_ylabel(tr("查询（关注者）", "query (attending)"))
plt.tight_layout(); plt.show()

# how much of the cross-attention of the rows that write each field falls on that field in the source
cross = maps["decoder.layers.1.multihead_attn"].mean(axis=0)         # (T, S)
fields = {"year": (range(0, 4), "1987"), "month": (range(5, 7), "February"), "day": (range(8, 10), "21st")}
on_field, field_zh = {}, {"year": "年", "month": "月", "day": "日"}
for field, (rows_, word) in fields.items():
    start_ = example.index(word)
    on_field[field] = float(cross[list(rows_), start_:start_ + len(word)].sum(axis=1).mean())
    print(tr(f"写{field_zh[field]}的那几行：平均 {on_field[field]:.0%} 的交叉注意力落在源句的 '{word}' 上",
             f"rows writing the {field}: on average {on_field[field]:.0%} of their cross-attention falls on '{word}' in the source"))
record(on_year=on_field["year"], on_month=on_field["month"], on_day=on_field["day"])
""", alt=(
    "第 2 层的三幅注意力权重热图（4 个头的平均，越亮权重越大），"
    "源句是“the 21st of February 1987”，"
    "答案是 {{example_answer}}。左，编码器自注意力（源字符对源字符）："
    "没有掩码，许多行都聚到少数几列上——月份单词的结尾和年份的数字。"
    "中，解码器自注意力：下三角，对角线以上全暗（因果掩码），"
    "行标为“读入 → 预测”。右，交叉注意力（答案的行对源字符）："
    "一条亮带先落在源句末尾的年份上（前四行），然后跳到“February”（写月份的行），"
    "再跳到“21”（写日期的行）；这几组行平均有 {{on_year:.0%}}、{{on_month:.0%}} "
    "和 {{on_day:.0%}} 的注意力落在年、月、日上。",
    "Three heatmaps of second-layer attention weights, averaged over the 4 heads, brighter for larger "
    "weights, for the source 'the 21st of February 1987' and the answer {{example_answer}}. Left, "
    "encoder self-attention (source characters against source characters): no mask, and many rows "
    "gather on a few columns, the end of the month word and the digits of the year. Middle, decoder "
    "self-attention: lower-triangular, dark above the diagonal (the causal mask), rows labelled "
    "'reads → predicts'. Right, cross-attention (answer rows against source characters): a bright "
    "band sits on the year at the end of the source for the first four rows, jumps to 'February' for "
    "the month rows and to '21' for the day rows; on average {{on_year:.0%}}, {{on_month:.0%}} and "
    "{{on_day:.0%}} of those rows' attention falls on the year, the month and the day."))

md(zh=r"""
读法：第 $i$ 行是一个查询位置，它的颜色（加起来为 1）表示它看向哪里。

* **编码器自注意力**没有掩码：每个源字符都可以看每个字符。第二层里很多位置聚向少数几个“汇总”位置——月份单词的结尾、年份的数字。
  编码器的注意力是在构造特征，不是对齐，三张图里它最难读。
* **解码器自注意力**是下三角的：因果掩码在起作用，对角线以上什么也没有。行标签是“读 → 预测”：该位置读进的词元和要预测的词元。
* **交叉注意力**是翻译发生的地方。每一行去读它即将写出的那些字符：写年份数字的那几行，平均 {{on_year:.0%}} 的注意力落在 `1987` 上；
  写月份的落在 `February` 上的是 {{on_month:.0%}}；写日的落在 `21st` 上的是 {{on_day:.0%}}。年份提前这一调序，表现为亮带从源句的末尾跳到开头。

最后一层交叉注意力的各个头分工不同：
""", en=r"""
How to read them: row $i$ is one query position, and its colours (summing to 1) show where it looks.

* **Encoder self-attention** has no mask: every source character may look at every other. In the
  second layer many positions gather at a few "summary" positions — the end of the month word,
  the digits of the year. Encoder attention builds features; it is not meant to be an alignment,
  and it is the hardest of the three to read.
* **Decoder self-attention** is lower-triangular: the causal mask at work — nothing above the
  diagonal. Rows are labelled *reads → predicts*: the token the decoder reads at that position and
  the token it predicts there.
* **Cross-attention** is where translation happens. Each row reads the source at the characters
  it is about to write: the rows writing the year's digits put {{on_year:.0%}} of their attention on
  `1987` on average; the month rows put {{on_month:.0%}} on `February`, the day rows {{on_day:.0%}} on `21st`. The
  reordering (year first) shows as the bright band jumping from the end of the source to the start.

Individual heads of the last cross-attention layer divide the work:
""")

code(r"""
fig, axes = plt.subplots(2, 2, figsize=(14, 7))
for h, ax in enumerate(axes.flat):
    ax.imshow(maps["decoder.layers.1.multihead_attn"][h], cmap="viridis", vmin=0)
    ax.set_xticks(range(len(src_chars)), src_chars, fontsize=7); ax.set_yticks(range(len(tgt_in_chars)), tgt_in_chars, fontsize=7)
    ax.set_title(tr(f"交叉注意力，头 {h}", f"cross-attention, head {h}"), fontsize=10)
plt.tight_layout(); plt.show()
""", alt=(
    "四幅热图，最后一层交叉注意力的每个头一幅：纵轴是答案的行（“读入 → 预测”），"
    "横轴是源句的字符，越亮权重越大。四个头都沿着同样的重排走（先是源句末尾的年份，"
    "然后是月份单词，再是日期），但分工不同：它们在哪个字段上看得最集中、权重铺得多开，"
    "各不相同。",
    "Four heatmaps, one per head of the last cross-attention layer, with the answer's rows ('reads → "
    "predicts') down and the source characters across, brighter for larger weights. All four follow "
    "the same reordering (first the year at the end of the source, then the month word, then the "
    "day), but they divide the work: they differ in which field each looks at most sharply and in how "
    "widely it spreads its weight."))

# ============================================================================ 5.7
md(zh=r"""
## 5.7 同一个模型的 PyTorch 版

原文的代码是 PyTorch。tinyllm 的层接收 torch 的构造参数，参数的名字和布局也与 torch 相同，所以状态字典可以在两者之间原样搬运。
下面做三项检查，从最小的部件到训练。

### `tl.nn.Transformer` 与 `torch.nn.Transformer` 并排

构造一个 `torch.nn.Transformer`，把它的权重复制进配置相同的 tinyllm `nn.Transformer`，给两者同样的输入和掩码：
""", en=r"""
## 5.7 同一个模型的 PyTorch 版 — The same model in PyTorch

The article's code is PyTorch. tinyllm's layers take torch's constructor arguments and use
torch's parameter names and layouts, so a state dict moves between the two unchanged. Three
checks, from the smallest piece to training.

### `tl.nn.Transformer` next to `torch.nn.Transformer`

Build `torch.nn.Transformer`, copy its weights into tinyllm's `nn.Transformer` of the same
configuration, feed both the same inputs and masks:
""")

code(r"""
import torch
import torch.nn as tnn
torch.set_num_threads(1)          # matrices 64 wide: one thread is faster than several, and fair to NumPy
torch.manual_seed(0)

with warnings.catch_warnings():   # torch's performance hint about nested tensors, for this constructor only
    warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
    reference = tnn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                                dim_feedforward=64, dropout=0.0).eval()
mine = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                      dim_feedforward=64, dropout=0.0)
print(mine.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()}))

S, T, B = 7, 5, 3
src_x, tgt_x = np.random.default_rng(0).standard_normal((2, 7, B, 32)).astype(np.float32)
tgt_x = tgt_x[:T]
causal = np.triu(np.ones((T, T), dtype=bool), 1)                      # True = may not attend (torch's convention here)
pad = np.zeros((B, S), dtype=bool); pad[0, 5:] = True                 # first source is 5 long
with torch.no_grad():
    expected = reference(torch.from_numpy(src_x), torch.from_numpy(tgt_x), tgt_mask=torch.from_numpy(causal),
                         src_key_padding_mask=torch.from_numpy(pad), memory_key_padding_mask=torch.from_numpy(pad))
got = mine(tl.Tensor(src_x), tl.Tensor(tgt_x), tgt_mask=tl.Tensor(causal),
           src_key_padding_mask=tl.Tensor(pad), memory_key_padding_mask=tl.Tensor(pad))
transformer_gap = float(np.abs(got.numpy() - expected.numpy()).max())
print(tr("输出", "output"), got.shape, tr(" max |tinyllm - torch| =", " max |tinyllm - torch| ="), f"{transformer_gap:.2e}")
record(transformer_gap=transformer_gap)
""")

md(zh=r"""
两个库的输出最多相差 {{transformer_gap:.2e}}——float32 的舍入。

### 原文的类，补全后用 PyTorch 写

现在是原文自己的代码，`# ...` 用和 tinyllm 完全一样的方式补全——只用 PyTorch 的模块，属性名也相同。
（`enable_nested_tensor=False` 让 torch 的编码器走普通的代码路径。）训练好的 tinyllm 权重原样装进去：
""", en=r"""
The two libraries' outputs differ by at most {{transformer_gap:.2e}} — float32 rounding.

### The article's class, complete, in PyTorch

Now the article's own code with its `# ...` filled in exactly as tinyllm fills them — PyTorch
modules only, the same attribute names. (`enable_nested_tensor=False` keeps torch's encoder on its
ordinary code path.) The trained tinyllm weights load into it unchanged:
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
logits_gap = float(np.abs(tl_logits - torch_logits)[valid].max())
same_argmax = bool((tl_logits.argmax(-1) == torch_logits.argmax(-1))[valid].all())
print(tr(f"逻辑值 {tl_logits.shape}：max |tinyllm - torch| = {logits_gap:.2e}（逻辑值范围 ±{np.abs(tl_logits).max():.0f}）",
         f"logits {tl_logits.shape}: max |tinyllm - torch| = {logits_gap:.2e}  (logits range ±{np.abs(tl_logits).max():.0f})"))
print(tr("每个位置的 argmax 都相同：", "same argmax at every position:"), same_argmax)
record(logits_gap=logits_gap, same_argmax=tr("每个位置的 argmax 都相同", "the argmax is the same at every position") if same_argmax
       else tr("有的位置 argmax 不同", "the argmax differs at some positions"))
""")

md(zh=r"""
逻辑值最多相差 {{logits_gap:.2e}}，{{same_argmax}}。

### 同样的梯度

前向的值一致，手写的反向传播仍可能是错的。所以：从相同的初始权重出发，用 float64，让同一个批次通过两个模型，
两边都 `loss.backward()`，比较每个参数的梯度 $\partial\mathcal{L}/\partial w$。（用 `eval()` 关掉 dropout，让两边计算同一个函数。）
""", en=r"""
The logits differ by at most {{logits_gap:.2e}}; {{same_argmax}}.

### The same gradients

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
print(tr("损失：", "loss: "), f"tinyllm {tl_loss.item():.12f}   torch {torch_loss.item():.12f}")

torch_grads = {n: p.grad.numpy() for n, p in torch_model64.named_parameters()}
worst = []
for name, p in tl_model64.named_parameters():
    g, ref = tl.backend.to_host(p.grad), torch_grads[name]       # p.grad: the raw (NumPy) array
    worst.append((np.abs(g - ref).max() / (np.abs(ref).max() + 1e-30), name))
worst.sort(reverse=True)
print(tr(f"{len(worst)} 个参数张量；相对梯度差最大的几个：", f"{len(worst)} parameter tensors; largest relative gradient differences:"))
for rel, name in worst[:4]:
    print(f"   {rel:.1e}  {name}")
record(n_param_tensors=len(worst), grad_rel_gap=float(worst[0][0]), loss_gap=abs(tl_loss.item() - torch_loss.item()))
""")

md(zh=r"""
{{n_param_tensors}} 个参数张量的梯度，相对差最大 {{grad_rel_gap:.1e}}（损失相差 {{loss_gap:.1e}}）：float64 的舍入。每个运算手写的反向传播——
嵌入、带掩码的注意力、LayerNorm、ReLU、带忽略位置的交叉熵——都与 PyTorch 的自动求导 (autograd) 一致。

### 并排训练

最后，让 PyTorch 版从*同样*的初始权重出发，在*同样*的批次上、用同样的优化器 (optimizer) 设置训练。两个库里的 dropout 抽的随机掩码不同，
所以两条曲线形状一致，但不逐位相同。训练好的 PyTorch 权重再装回一个 tinyllm 模型，用 tinyllm 的 `greedy_translate` 解码验证集。
""", en=r"""
The gradients of all {{n_param_tensors}} parameter tensors agree to a relative {{grad_rel_gap:.1e}} (the losses to
{{loss_gap:.1e}}): float64 rounding. The hand-written backward of every op — embedding, attention with
masks, LayerNorm, ReLU, cross-entropy with ignored positions — agrees with PyTorch's autograd.

### Trained side by side

Last, train the PyTorch twin from the *same* initial weights on the *same* batches with the same
optimizer settings. Dropout draws different random masks in the two libraries, so the curves agree
in shape, not bit for bit. The trained PyTorch weights then load back into a tinyllm model, which
decodes the validation set with tinyllm's `greedy_translate`.
""")

code(r"""
torch.manual_seed(0)
twin = TorchTransformerModel(ntoken, 64, 4, 256, 2, dropout=0.1)
twin.load_state_dict({k: torch.from_numpy(v) for k, v in initial_state.items()})
decay_names = {n for n, p in model.named_parameters() if any(p is q for q in optimizer.param_groups[0]["params"])}
groups = [{"params": [p for n, p in twin.named_parameters() if n in decay_names], "weight_decay": 0.01},
          {"params": [p for n, p in twin.named_parameters() if n not in decay_names], "weight_decay": 0.0}]
torch_optimizer = torch.optim.AdamW(groups, lr=max_lr, betas=(0.9, 0.98))
batch_rng = np.random.default_rng(0)                                  # the same batches as 5.4
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
torch_exact = float(np.mean([g == r for g, r in zip(torch_greedy, references)]))

tail = min(20, steps)
print(tr(f"{'':8} {'墙钟 ms/步':>12} {'CPU ms/步':>12} {'最终损失（最后 20 步平均）':>20} {'精确匹配':>10}",
         f"{'':8} {'wall ms/step':>12} {'CPU ms/step':>12} {'final loss (mean of last 20)':>29} {'exact match':>12}"))
print(f"{'tinyllm':8} {1000 * train_seconds / steps:12.0f} {1000 * train_cpu / steps:12.0f} "
      f"{np.mean(history['train'][-tail:]):29.4f} {correct.mean():12.1%}")
print(f"{'PyTorch':8} {1000 * torch_seconds / steps:12.0f} {1000 * torch_cpu / steps:12.0f} "
      f"{np.mean(torch_history[-tail:]):29.4f} {torch_exact:12.1%}")

fig, ax = plt.subplots(figsize=(7, 3.4))
ax.plot(history["train"], lw=0.8, label=tr("tinyllm（NumPy）", "tinyllm (NumPy)"))
ax.plot(torch_history, lw=0.8, alpha=0.8, label=tr("PyTorch 版", "PyTorch twin"))
ax.set(yscale="log", xlabel=tr("步数", "step"), ylabel=tr("训练损失（对数坐标）", "training loss (log scale)"),
       title=tr("同样的模型，同样的数据，两个库", "same model, same data, two libraries"))
ax.legend(); plt.tight_layout(); plt.show()
record(tl_ms=1000 * train_cpu / steps, torch_ms=1000 * torch_cpu / steps, tl_final=float(np.mean(history["train"][-tail:])),
       torch_final=float(np.mean(torch_history[-tail:])), torch_exact=torch_exact,
       speed_ratio=max(train_cpu, torch_cpu) / min(train_cpu, torch_cpu),
       faster="tinyllm" if train_cpu < torch_cpu else "PyTorch")
""", alt=(
    "训练损失（对数纵轴）随步数的变化，共 {{s2s_steps}} 步："
    "tinyllm（NumPy）和它的 PyTorch 版从同样的权重出发、用同样的批次训练。"
    "两条抖动的曲线从头到尾几乎重合；最后 20 步的平均损失 tinyllm 为 {{tl_final:.4f}}，"
    "PyTorch 为 {{torch_final:.4f}}。",
    "Training loss (log scale) against step over {{s2s_steps}} steps for tinyllm (NumPy) and its "
    "PyTorch twin, started from the same weights on the same batches: the two jagged curves lie "
    "almost on top of each other all the way down; the mean of the last 20 steps is {{tl_final:.4f}} "
    "for tinyllm and {{torch_final:.4f}} for PyTorch."))

md(zh=r"""
两条曲线形状一致：最后 20 步的平均训练损失 tinyllm {{tl_final:.4f}}，PyTorch {{torch_final:.4f}}；精确匹配 {{exact_match:.1%}} 对 {{torch_exact:.1%}}。

关于耗时（在运行本笔记本的机器上测量；“CPU”只计本进程运行的时间，在共享的机器上更公平）：每步 CPU 时间 tinyllm {{tl_ms:.0f}} ms，
PyTorch {{torch_ms:.0f}} ms，{{faster}} 快 {{speed_ratio:.1f}} 倍。在这个尺寸上两个库差不多：矩阵只有 64 宽，一步是几百个很小的运算，
时间花在每个运算的固定开销上——tinyllm 里是 Python 调用，PyTorch 里是分派和自动求导的簿记——而不是算术。模型变大后算术占主导，
PyTorch 融合 (fused)、编译过的内核就会领先；`python -m tinyllm bench` 在一个 GPT 上测量这一点。
""", en=r"""
The two curves agree in shape: the mean training loss of the last 20 steps is {{tl_final:.4f}} for tinyllm and
{{torch_final:.4f}} for PyTorch; exact match {{exact_match:.1%}} against {{torch_exact:.1%}}.

About the timings (measured on the machine that ran this notebook; "CPU" counts only the time this
process ran, the fairer number on a shared machine): CPU time per step is {{tl_ms:.0f}} ms for tinyllm
and {{torch_ms:.0f}} ms for PyTorch, {{faster}} faster by {{speed_ratio:.1f}}×. At this size the libraries are close:
the matrices are 64 wide, so a step is hundreds of tiny operations, and the time goes into
per-operation overhead — Python calls in tinyllm, dispatch and autograd bookkeeping in PyTorch —
more than into arithmetic. As models grow, arithmetic dominates and PyTorch's fused, compiled
kernels pull ahead; `python -m tinyllm bench` measures that on a GPT.
""")

# ============================================================================ 5.8 GPT in stages
md(zh=r"""
## 5.8 从零长出一个 GPT

原文的 `TransformerModel` 是编码器-解码器 (encoder–decoder)：它把一个序列翻译成另一个。今天的大语言模型 (large language model) 大多是**仅解码器** (decoder-only) 的 GPT：
只有一个堆叠，读到目前为止的文本，预测下一个词元。tinyllm 有现成的 `GPT`，但这里我们先不用它，而是**一步一步把它搭出来**，
每加一样东西就训练一次，看损失降了多少：

| 阶段 | 模型 | 新加的东西 |
|---|---|---|
| 1 | 二元模型 | 只看当前字符，查表给出下一个字符的分数 |
| 2 | 一个注意力头 | 词元嵌入 + 位置嵌入 (position embedding)，一个因果自注意力头：能看到前文了 |
| 3 | 多个头 | 4 个宽 16 的头并排，再用一个投影混合 |
| 4 | 一个块 | 前置归一化 + 残差连接包住注意力，再加一个前馈网络（GELU） |
| 5 | 完整的模型 | 两个块叠起来，最后再做一次层归一化 (layer normalization)——这就是 GPT |

数据是 tinyllm 自带的儿童故事语料 Tiny Tales，字符级分词；每个阶段都用同样的数据、同样的批次（32 条，每条 32 个字符）、同样的步数和学习率调度，
每 25 步在同样的 4 个验证批次上算一次验证损失。
""", en=r"""
## 5.8 从零长出一个 GPT — Growing a GPT from nothing

The article's `TransformerModel` is an encoder–decoder: it translates one sequence into another.
Most of today's large language models are **decoder-only** GPTs: one stack that reads the text so
far and predicts the next token. tinyllm has a `GPT` ready, but here we do not import it: we
**build it step by step**, training after each addition to see how much the loss falls:

| stage | model | what is new |
|---|---|---|
| 1 | bigram | only the current character: a table of next-character scores |
| 2 | one attention head | token + position embeddings and one causal self-attention head: the past becomes visible |
| 3 | several heads | 4 heads of width 16 side by side, mixed by one projection |
| 4 | one block | pre-norm and a residual connection around attention, then a feed-forward network (GELU) |
| 5 | the full model | two blocks stacked and a final layer norm — this is GPT |

The data is Tiny Tales, the children's-story corpus tinyllm ships, tokenized by character. Every
stage gets the same data, the same batches (32 sequences of 32 characters), the same number of
steps and the same schedule, and a validation loss every 25 steps on the same 4 validation batches.
""")

code(r"""
text = load_shipped_corpus()
char_tok = CharTokenizer.from_text(text)
ids = np.array(char_tok.encode(text))
train_ids, val_ids = train_val_split(ids, 0.1)
CONTEXT, BATCH = 32, 32
lm_train, lm_val = CausalLMDataset(train_ids, CONTEXT), CausalLMDataset(val_ids, CONTEXT)
VOCAB = char_tok.vocab_size
val_rng = np.random.default_rng(123)
val_batches = [lm_val.get_batch(64, val_rng) for _ in range(4)]
stage_steps = 40 if FAST else 400
print(tr(f"Tiny Tales：{len(text):,} 个字符，词表 {VOCAB} 个字符；训练 {len(train_ids):,}，验证 {len(val_ids):,}",
         f"Tiny Tales: {len(text):,} characters, a vocabulary of {VOCAB}; {len(train_ids):,} for training, {len(val_ids):,} for validation"))

def lm_loss(model, batch):
    x_ids, y_ids = batch
    logits = model(x_ids)                                            # (B, T, VOCAB)
    return F.cross_entropy(logits.reshape(-1, VOCAB), tl.Tensor(y_ids.reshape(-1)))

def train_lm(model, steps=stage_steps, lr=3e-3, warmup=20, every=25):
    # AdamW with warmup and cosine decay; the validation loss every `every` steps
    tl.manual_seed(0)
    opt = AdamW(param_groups(model.named_parameters(), 0.01), lr=lr)
    rng_ = np.random.default_rng(0)                                  # the same batches for every stage
    curve, begin = [], time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = cosine_with_warmup(step, lr, lr / 10, warmup, steps)
        loss = lm_loss(model, lm_train.get_batch(BATCH, rng_))
        opt.zero_grad(); loss.backward(); opt.step()
        if (step + 1) % every == 0 or step + 1 == steps:
            with tl.no_grad():
                curve.append((step + 1, float(np.mean([lm_loss(model, vb).item() for vb in val_batches]))))
    return curve, time.perf_counter() - begin

""")

md(zh=r"""
### 阶段 1：二元模型

最简单的语言模型只看当前字符：一张 $V \times V$ 的表，第 $i$ 行就是字符 $i$ 之后每个字符的逻辑值。它就是一个嵌入层，
只不过嵌入的宽度等于词表大小。它的表每一项只在那个字符出现时才被更新，又从 $N(0, 1)$ 开始，所以这个阶段用 10 倍的学习率。
""", en=r"""
### Stage 1: the bigram model

The simplest language model looks only at the current character: a $V \times V$ table whose row
$i$ holds the logits of every character that may follow character $i$. It is an embedding layer
whose width is the vocabulary size. Each entry of its table moves only when its character occurs,
starting from $N(0, 1)$, so this stage gets a 10× larger learning rate.
""")

code(r"""
stages = {}                                                          # name → (curve, seconds, parameters)
def show_stages(current):
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for name, (curve, _, _) in stages.items():
        steps_, losses_ = zip(*curve)
        ax.plot(steps_, losses_, lw=2.5 if name == current else 1, alpha=1 if name == current else 0.6,
                label=f"{name}: {losses_[-1]:.3f}")
    ax.axhline(math.log(VOCAB), color="gray", ls=":", lw=1, label=tr(f"均匀猜测 ln {VOCAB}", f"uniform guess, ln {VOCAB}"))
    ax.set(xlabel=tr("步数", "step"), ylabel=tr("验证损失（交叉熵）", "validation loss (cross-entropy)"))
    ax.legend(fontsize=8); plt.tight_layout(); plt.show()
    curve, seconds, n_params = stages[current]
    print(tr(f"{current}：{n_params:,} 个参数，{curve[-1][0]} 步用了 {seconds:.0f} 秒，验证损失 {curve[-1][1]:.3f}",
             f"{current}: {n_params:,} parameters, {curve[-1][0]} steps in {seconds:.0f} s, validation loss {curve[-1][1]:.3f}"))

class Bigram(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.table = nn.Embedding(vocab, vocab)                     # row i: logits of the character after i
    def forward(self, idx):
        return self.table(idx)                                       # (B, T) → (B, T, vocab)

tl.manual_seed(0)
bigram = Bigram(VOCAB)
curve, seconds = train_lm(bigram, lr=3e-2)
stages[tr("1 二元", "1 bigram")] = (curve, seconds, bigram.num_parameters())
show_stages(tr("1 二元", "1 bigram"))
""", alt=(
    "二元模型的验证损失（交叉熵）随步数的变化，共 {{stage_steps}} 步："
    "它从最上方表示均匀猜测的点线（{{uniform_lm:.3f}}）"
    "下方开始，先迅速下降，然后变平，停在 {{bigram_loss:.3f}}。",
    "Validation loss (cross-entropy) of the bigram model against step, {{stage_steps}} steps: it "
    "starts just under the dotted line of a uniform guess at the top ({{uniform_lm:.3f}}), falls "
    "quickly, then levels off at {{bigram_loss:.3f}}."))

md(zh=r"""
### 阶段 2：一个注意力头

现在让每个位置能看见前文。词元嵌入加上*学出来*的位置嵌入（GPT 的做法，原文模型用的是正弦位置编码），再接一个因果自注意力头：
第 3 章的四个步骤，加上把未来位置设为 $-\infty$ 的掩码。最后一个线性层把向量映射回词表上的逻辑值。
""", en=r"""
### Stage 2: one attention head

Now let every position see the past. Token embeddings plus *learned* position embeddings (GPT's
choice; the article's model uses the sinusoidal encoding), then one causal self-attention head:
chapter 3's four steps plus a mask that sets future positions to $-\infty$. A final linear layer
maps the vectors back to logits over the vocabulary.
""")

code(r"""
class Head(nn.Module):
    # one causal self-attention head: (B, T, d) → (B, T, d_head)
    def __init__(self, d, d_head):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(d, d_head), nn.Linear(d, d_head), nn.Linear(d, d_head)
    def forward(self, x):
        q, k, v = self.query(x), self.key(x), self.value(x)
        scores = q @ k.swapaxes(-1, -2) * (1.0 / math.sqrt(q.shape[-1]))            # (B, T, T)
        allowed = tl.Tensor(np.tril(np.ones((x.shape[1], x.shape[1]), dtype=bool)))  # key j ≤ query i
        scores = tl.where(allowed, scores, tl.Tensor(-np.inf, dtype=scores.dtype))
        return F.softmax(scores, axis=-1) @ v

class LanguageModel(nn.Module):
    # token + position embeddings → body → (final layer norm) → logits
    def __init__(self, body, d=64, final_norm=False):
        super().__init__()
        self.token, self.position = nn.Embedding(VOCAB, d), nn.Embedding(CONTEXT, d)
        self.body = body
        self.norm = nn.LayerNorm(d) if final_norm else None
        self.head = nn.Linear(d, VOCAB, bias=False)
    def forward(self, idx):
        x = self.token(idx) + self.position(np.arange(idx.shape[1]))   # (B, T, d) + (T, d)
        x = self.body(x)
        if self.norm is not None:
            x = self.norm(x)
        return self.head(x)

tl.manual_seed(0)
one_head = LanguageModel(Head(64, 64))
curve, seconds = train_lm(one_head)
stages[tr("2 一个头", "2 one head")] = (curve, seconds, one_head.num_parameters())
show_stages(tr("2 一个头", "2 one head"))
""", alt=(
    "同一张验证损失图，加上一个注意力头的模型（粗线）：它起点比二元模型低得多，"
    "下降得更慢，中途被二元模型的细线追上，最后停在 {{one_head_loss:.3f}}，"
    "比二元模型的 {{bigram_loss:.3f}} 略低。"
    "最上方的点线是均匀猜测。",
    "The same validation-loss chart with the one-head model added as a thick line: it starts much "
    "lower than the bigram model, falls more slowly, is caught up by the bigram's thin line along the "
    "way, and ends at {{one_head_loss:.3f}}, a little below the bigram's {{bigram_loss:.3f}}. The "
    "dotted line at the top is a uniform guess."))

md(zh=r"""
### 阶段 3：多个头

4 个宽 16 的头并排（参数量与一个宽 64 的头相同），把它们的输出拼起来，再用一个线性层 $W^O$ 混合——第 3 章的多头注意力。
""", en=r"""
### Stage 3: several heads

Four heads of width 16 side by side (as many parameters as one head of width 64), their outputs
concatenated and mixed by one linear layer $W^O$ — chapter 3's multi-head attention.
""")

code(r"""
class MultiHead(nn.Module):
    def __init__(self, d, n_heads):
        super().__init__()
        self.heads = nn.ModuleList([Head(d, d // n_heads) for _ in range(n_heads)])
        self.proj = nn.Linear(d, d)                                  # W^O
    def forward(self, x):
        return self.proj(tl.concatenate([head(x) for head in self.heads], axis=-1))

tl.manual_seed(0)
multi_head = LanguageModel(MultiHead(64, 4))
curve, seconds = train_lm(multi_head)
stages[tr("3 四个头", "3 four heads")] = (curve, seconds, multi_head.num_parameters())
show_stages(tr("3 四个头", "3 four heads"))
""", alt=(
    "同一张验证损失图，加上四个头的模型（粗线）：它几乎一直在前两条曲线下方，"
    "最后停在 {{four_heads_loss:.3f}}（一个头是 {{one_head_loss:.3f}}，"
    "二元模型是 {{bigram_loss:.3f}}）。",
    "The same validation-loss chart with the four-head model added as a thick line: it runs below "
    "both earlier curves almost all the way and ends at {{four_heads_loss:.3f}} (one head: "
    "{{one_head_loss:.3f}}, bigram: {{bigram_loss:.3f}})."))

md(zh=r"""
### 阶段 4：前置归一化的块：残差连接和前馈网络

注意力让位置之间交换信息；之后每个位置还需要自己“想一想”：一个逐位置的前馈网络，先放大 4 倍、过 GELU、再缩回来。
两个子层都包在残差连接里（第 4 章：梯度的高速公路），每个子层读的是层归一化之后的副本——**前置归一化**，GPT-2 及以后的做法：

$$x \leftarrow x + \mathrm{MultiHead}(\mathrm{LN}_1(x)), \qquad x \leftarrow x + \mathrm{MLP}(\mathrm{LN}_2(x)), \qquad \mathrm{MLP}(h) = W_2\,\mathrm{GELU}(W_1 h)$$

原文模型（torch 的默认）是**后置归一化**：$x \leftarrow \mathrm{LN}(x + \mathrm{子层}(x))$。两者的差别在残差流 (residual stream) 上：
前置归一化时，从第一层到最后一层有一条不经过任何归一化的恒等路径 $x_L = x_0 + \sum_l f_l(\cdot)$；后置归一化时，每个 LN 都横在这条路上。
前置归一化的模型最后还要再做一次层归一化（下面的 `final_norm=True`），因为残差流本身从未被归一化过。`pre_norm=False` 给出后置的写法，本节末尾会用到。
""", en=r"""
### Stage 4: a pre-norm block — residual connections and an MLP

Attention lets positions exchange information; after it every position needs to "think" on its
own: a position-wise feed-forward network that widens 4×, applies GELU, and narrows back. Both
sublayers are wrapped in residual connections (chapter 4: the gradient highway), and each reads a
layer-normalised copy — **pre-norm**, as in GPT-2 and after:

$$x \leftarrow x + \mathrm{MultiHead}(\mathrm{LN}_1(x)), \qquad x \leftarrow x + \mathrm{MLP}(\mathrm{LN}_2(x)), \qquad \mathrm{MLP}(h) = W_2\,\mathrm{GELU}(W_1 h)$$

The article's model (torch's default) is **post-norm**: $x \leftarrow \mathrm{LN}(x + \mathrm{sublayer}(x))$.
The difference lies on the residual stream: with pre-norm, an identity path runs from the first
layer to the last without passing any normalisation, $x_L = x_0 + \sum_l f_l(\cdot)$; with
post-norm, every LN sits across that path. A pre-norm model normalises once more at the end
(`final_norm=True` below), since the stream itself is never normalised. `pre_norm=False` gives the
post-norm version, used at the end of this section.
""")

code(r"""
class MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c_fc, self.c_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))  # GPT-2's GELU

class Block(nn.Module):
    def __init__(self, d, n_heads, pre_norm=True):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(d), MultiHead(d, n_heads)
        self.ln_2, self.mlp = nn.LayerNorm(d), MLP(d)
        self.pre_norm = pre_norm
    def forward(self, x):
        if self.pre_norm:                                            # GPT: normalise what each sublayer reads
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x))                              # the article's model: normalise each sum
        return self.ln_2(x + self.mlp(x))

tl.manual_seed(0)
one_block = LanguageModel(Block(64, 4), final_norm=True)
curve, seconds = train_lm(one_block)
stages[tr("4 一个块", "4 one block")] = (curve, seconds, one_block.num_parameters())
show_stages(tr("4 一个块", "4 one block"))
""", alt=(
    "同一张验证损失图，加上一个前置归一化块的模型（粗线）：从一开始就明显低于前三条曲线，"
    "最后停在 {{block_loss:.3f}}（四个头是 {{four_heads_loss:.3f}}）。",
    "The same validation-loss chart with the one-block model (pre-norm) added as a thick line: it "
    "lies clearly below the three earlier curves from the start and ends at {{block_loss:.3f}} (four "
    "heads: {{four_heads_loss:.3f}})."))

md(zh=r"""
### 阶段 5：完整的模型

两个块叠起来，最后做一次层归一化：这就是 GPT 的结构（GPT-2 小号是 12 个块、宽 768、12 个头；结构相同，只是更大）。
""", en=r"""
### Stage 5: the full model

Two blocks stacked, then a final layer norm: this is GPT's architecture (GPT-2 small has 12 blocks,
width 768, 12 heads — the same structure, larger).
""")

code(r"""
class TinyGPT(LanguageModel):
    def __init__(self, d=64, n_heads=4, n_layers=2, pre_norm=True):
        super().__init__(nn.Sequential(*[Block(d, n_heads, pre_norm) for _ in range(n_layers)]), d, final_norm=pre_norm)

tl.manual_seed(0)
tiny_gpt = TinyGPT()
curve, seconds = train_lm(tiny_gpt)
stages[tr("5 完整模型", "5 full model")] = (curve, seconds, tiny_gpt.num_parameters())
show_stages(tr("5 完整模型", "5 full model"))
finals = [curve_[-1][1] for curve_, _, _ in stages.values()]
drops = [a - b_ for a, b_ in zip(finals, finals[1:])]
step_names = [tr("加上注意力头", "adding an attention head"), tr("从一个头到四个头", "going from one head to four"),
              tr("加上残差连接、层归一化和前馈网络", "adding residual connections, layer norms and the MLP"),
              tr("再叠一个块", "stacking a second block")]
record(drop_head=drops[0], drop_heads=drops[1], drop_block=drops[2], drop_second=drops[3],
       largest_step=step_names[int(np.argmax(drops))], largest_drop=max(drops))
record(stage_steps=stage_steps, bigram_loss=finals[0], one_head_loss=finals[1], four_heads_loss=finals[2],
       block_loss=finals[3], gpt_loss=finals[4], gpt_params=tiny_gpt.num_parameters(), uniform_lm=math.log(VOCAB),
       each_better=tr("每个阶段都比前一个低", "every stage ends below the one before") if all(a > b_ for a, b_ in zip(finals, finals[1:]))
       else tr("并不是每个阶段都比前一个低", "not every stage ends below the one before"))
""", alt=(
    "五个阶段的验证损失曲线画在一起，完整的两块模型是最下面的粗线。"
    "最后一步从上到下：二元 {{bigram_loss:.3f}}，"
    "一个头 {{one_head_loss:.3f}}，四个头 {{four_heads_loss:.3f}}，"
    "一个块 {{block_loss:.3f}}，完整模型 {{gpt_loss:.3f}}——{{each_better}}。"
    "最上方的点线是均匀猜测（{{uniform_lm:.3f}}）。",
    "The validation-loss curves of all five stages together, the full two-block model as the thick "
    "line at the bottom. At the last step, from top to bottom: bigram {{bigram_loss:.3f}}, one head "
    "{{one_head_loss:.3f}}, four heads {{four_heads_loss:.3f}}, one block {{block_loss:.3f}}, full "
    "model {{gpt_loss:.3f}}: {{each_better}}. The dotted line at the top is a uniform guess "
    "({{uniform_lm:.3f}})."))

md(zh=r"""
{{stage_steps}} 步之后的验证损失：二元 {{bigram_loss:.3f}}，一个头 {{one_head_loss:.3f}}，四个头 {{four_heads_loss:.3f}}，一个块 {{block_loss:.3f}}，
完整模型 {{gpt_loss:.3f}}（均匀猜测是 {{uniform_lm:.3f}}）——{{each_better}}。

每个阶段让验证损失下降：加上注意力头 {{drop_head:.3f}}，从一个头到四个头 {{drop_heads:.3f}}，加上残差连接、层归一化和前馈网络 {{drop_block:.3f}}，
再叠一个块 {{drop_second:.3f}}；降得最多的是{{largest_step}}（{{largest_drop:.3f}}）。读这些数时要记住：每个阶段都只训练了 {{stage_steps}} 步，
比较的是“同样的短预算下学到多少”，不是每个结构的极限。单独一个头只能在前文里取*一种*加权平均，而且没有前馈网络去加工它取回的东西；
几个头可以同时看几个地方；块里的前馈网络让每个位置加工它读到的信息，残差连接让更深的堆叠仍然好训练。

### 它就是 GPT：装进 tinyllm 的 `GPT`

我们的 `TinyGPT` 与 tinyllm 的 `GPT` 结构相同，只是参数的名字和存放方式不同：`GPT` 把所有头的 $W^Q, W^K, W^V$ 叠成一个矩阵 `c_attn`。
把训练好的权重按名字搬过去，两个模型在同样的输入上应该给出同样的逻辑值：
""", en=r"""
Validation loss after {{stage_steps}} steps: bigram {{bigram_loss:.3f}}, one head {{one_head_loss:.3f}}, four heads
{{four_heads_loss:.3f}}, one block {{block_loss:.3f}}, the full model {{gpt_loss:.3f}} (a uniform guess is {{uniform_lm:.3f}}) —
{{each_better}}.

Each stage lowered the validation loss: adding an attention head by {{drop_head:.3f}}, going from one head to
four by {{drop_heads:.3f}}, adding residual connections, layer norms and the MLP by {{drop_block:.3f}}, stacking a second
block by {{drop_second:.3f}}; the largest step was {{largest_step}} ({{largest_drop:.3f}}). Keep in mind that each stage
trained for {{stage_steps}} steps only: the curves compare "how much is learned on the same short budget", not each
architecture's limit. A single head can take only *one* weighted average of the past, and nothing
processes what it fetched; several heads look at several places at once; the block's MLP lets each
position process what it read, and the residual connections keep deeper stacks trainable.

### It is GPT: loaded into tinyllm's `GPT`

Our `TinyGPT` has the architecture of tinyllm's `GPT`; only the parameters' names and packing
differ: `GPT` stacks every head's $W^Q, W^K, W^V$ into one matrix `c_attn`. Move the trained weights
over by name, and the two models should give the same logits on the same input:
""")

code(r"""
def gpt_state_from(ours):
    # our parameter names → GPT's (nanoGPT's) names; the heads' Q, K, V rows stacked into c_attn
    state = {"transformer.wte.weight": ours.token.weight, "transformer.wpe.weight": ours.position.weight,
             "transformer.ln_f.weight": ours.norm.weight, "transformer.ln_f.bias": ours.norm.bias,
             "lm_head.weight": ours.head.weight}
    for i, block in enumerate(ours.body):
        p, heads = f"transformer.h.{i}.", block.attn.heads
        for part in ("weight", "bias"):
            state[p + "attn.c_attn." + part] = tl.concatenate(
                [getattr(getattr(head, role), part) for role in ("query", "key", "value") for head in heads], axis=0)
            for ours_name, gpt_name in (("ln_1", "ln_1"), ("ln_2", "ln_2"), ("attn.proj", "attn.c_proj"),
                                        ("mlp.c_fc", "mlp.c_fc"), ("mlp.c_proj", "mlp.c_proj")):
                module = block
                for attr in ours_name.split("."):
                    module = getattr(module, attr)
                state[p + gpt_name + "." + part] = getattr(module, part)
    return {name: value.numpy() for name, value in state.items()}

gpt = GPT(GPTConfig(vocab_size=VOCAB, block_size=CONTEXT, n_layer=2, n_head=4, n_embd=64, tie_embeddings=False))
print(gpt.load_state_dict(gpt_state_from(tiny_gpt)))
probe_ids, _ = lm_val.get_batch(4, np.random.default_rng(7))
with tl.no_grad():
    ours_logits, (gpt_logits, _) = tiny_gpt(probe_ids).numpy(), gpt(probe_ids)
gpt_gap = float(np.abs(ours_logits - gpt_logits.numpy()).max())
print(tr(f"参数：我们的 {tiny_gpt.num_parameters():,}，GPT {gpt.num_parameters():,}；逻辑值最多相差 {gpt_gap:.1e}",
         f"parameters: ours {tiny_gpt.num_parameters():,}, GPT {gpt.num_parameters():,}; the logits differ by at most {gpt_gap:.1e}"))
prompt = "Once upon a time"
sample = generate(gpt, np.array([char_tok.encode(prompt)]), 40 if FAST else 200, temperature=0.8, rng=np.random.default_rng(0))
print(tr("\nGPT 的 generate 用我们训练的权重续写：\n", "\nGPT's generate continuing with our trained weights:\n") + char_tok.decode(sample[0].tolist()))
record(gpt_gap=gpt_gap)
""")

md(zh=r"""
逻辑值最多相差 {{gpt_gap:.1e}}（不超过 float32 的舍入）：我们一步一步搭出来的模型，就是 tinyllm 的 `GPT`。
续写的文本还很粗糙——{{stage_steps}} 步、{{gpt_params:,}} 个参数——但已经有了单词、空格和句子的样子。第 6 章把这样一个 GPT 训练得更久，并一点点拆开它生成文本的过程。

### 后置归一化与前置归一化，并排训练

原文的 `TransformerModel` 是后置归一化，GPT 是前置归一化。用同样的两块模型、同样的数据和预算各训练一次（后置归一化的模型不需要最后那次层归一化：每个块本来就以 LN 结束）：
""", en=r"""
The logits differ by at most {{gpt_gap:.1e}} (no more than float32 rounding): the model we built step by step *is*
tinyllm's `GPT`. The continuation is still rough — {{stage_steps}} steps, {{gpt_params:,}} parameters — but it
has words, spaces and the look of sentences. Chapter 6 trains such a GPT for
longer and takes its generation apart.

### Post-norm and pre-norm, trained side by side

The article's `TransformerModel` is post-norm; GPT is pre-norm. The same two-block model, the same
data and budget, once each (the post-norm model needs no final layer norm: each of its blocks
already ends with one):
""")

code(r"""
tl.manual_seed(0)
post_gpt = TinyGPT(pre_norm=False)
post_curve, post_seconds = train_lm(post_gpt)
pre_curve = stages[tr("5 完整模型", "5 full model")][0]

# a stress test: ten times the learning rate and no warmup, for a few steps
stress_steps = 20 if FAST else 150
stress = {}
for name, pre in ((tr("前置归一化", "pre-norm"), True), (tr("后置归一化", "post-norm"), False)):
    tl.manual_seed(0)
    stress[name], _ = train_lm(TinyGPT(pre_norm=pre), steps=stress_steps, lr=3e-2, warmup=1)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for curve_, label in ((pre_curve, tr("前置归一化（GPT）", "pre-norm (GPT)")), (post_curve, tr("后置归一化（原文模型）", "post-norm (the article's model)"))):
    axes[0].plot(*zip(*curve_), label=f"{label}: {curve_[-1][1]:.3f}")
axes[0].set(xlabel=tr("步数", "step"), ylabel=tr("验证损失", "validation loss"), title=tr("学习率 3e-3，预热 20 步", "lr 3e-3, 20 warmup steps"))
for name, curve_ in stress.items():
    axes[1].plot(*zip(*curve_), label=f"{name}: {curve_[-1][1]:.3f}")
axes[1].axhline(math.log(VOCAB), color="gray", ls=":", lw=1)
axes[1].set(xlabel=tr("步数", "step"), title=tr("学习率 3e-2，不预热", "lr 3e-2, no warmup"))
for ax in axes:
    ax.legend(fontsize=8)
plt.tight_layout(); plt.show()

pre_final, post_final = pre_curve[-1][1], post_curve[-1][1]
stress_pre, stress_post = (c[-1][1] for c in stress.values())
record(pre_final=pre_final, post_final=post_final, stress_pre=stress_pre, stress_post=stress_post, stress_steps=stress_steps,
       normal_verdict=tr("后置归一化更低", "post-norm ends lower") if post_final < pre_final else tr("前置归一化更低", "pre-norm ends lower"),
       stress_verdict=(tr("后置归一化明显更差", "post-norm is clearly worse") if stress_post > stress_pre + 0.2 else
                       tr("两者相差不大", "the two end close together") if abs(stress_post - stress_pre) <= 0.2 else
                       tr("前置归一化反而更差", "pre-norm is worse")),
       stress_shows=tr("压力测试显示的就是这一点", "the stress test shows exactly that") if stress_post > stress_pre + 0.2
       else tr("不过这一次的压力测试没有显示出来", "though this time the stress test did not show it"))
print(tr(f"常规设置：前置 {pre_final:.3f}，后置 {post_final:.3f}；压力测试（{stress_steps} 步）：前置 {stress_pre:.3f}，后置 {stress_post:.3f}",
         f"usual setting: pre-norm {pre_final:.3f}, post-norm {post_final:.3f}; stress test ({stress_steps} steps): pre-norm {stress_pre:.3f}, post-norm {stress_post:.3f}"))
""", alt=(
    "两幅验证损失随步数变化的图，比较两块的前置归一化模型（GPT）"
    "和后置归一化模型（原文的模型）。左，常规设置（学习率 3e-3，"
    "预热 20 步）：两条曲线靠得很近，最后前置为 {{pre_final:.3f}}，"
    "后置为 {{post_final:.3f}}——{{normal_verdict}}。"
    "右，压力测试（学习率 3e-2，不预热，{{stress_steps}} 步）："
    "前置降到 {{stress_pre:.3f}}，后置停在 {{stress_post:.3f}}——{{stress_verdict}}；"
    "点线是均匀猜测。",
    "Two panels of validation loss against step, comparing the two-block pre-norm model (GPT) with "
    "the post-norm one (the article's model). Left, the usual setting (learning rate 3e-3, 20 warmup "
    "steps): the curves run close together and end at {{pre_final:.3f}} for pre-norm and "
    "{{post_final:.3f}} for post-norm: {{normal_verdict}}. Right, the stress test (learning rate "
    "3e-2, no warmup, {{stress_steps}} steps): pre-norm falls to {{stress_pre:.3f}}, post-norm ends "
    "at {{stress_post:.3f}}: {{stress_verdict}}; the dotted line is a uniform guess."))

md(zh=r"""
常规设置下（学习率 3e-3，预热 20 步），前置归一化 {{pre_final:.3f}}，后置归一化 {{post_final:.3f}}：{{normal_verdict}}。
压力测试（学习率 3e-2，不预热，{{stress_steps}} 步）：前置 {{stress_pre:.3f}}，后置 {{stress_post:.3f}}——{{stress_verdict}}。

这说明了什么，没说明什么：两块的小模型、温和的学习率和预热下，后置归一化完全能训练，甚至可以更好——原始的 Transformer 论文就是这样训练的，
第 5.4 节的日期模型也是。前置归一化的好处在于*稳定*：残差流上有一条不被归一化打断的恒等路径，梯度直达底层，
所以它对大学习率、没有预热和很深的堆叠都更宽容；{{stress_shows}}。模型有几十上百层、训练又贵得重来不起时，这份宽容比最后那一点损失更重要——
所以 GPT-2 以后的大语言模型几乎都用前置归一化。两块、几百步的实验说明不了深层模型的情形；那需要更深的模型和更长的训练。

## 动手试试

1. **忘掉因果掩码。** 在 `batch_loss` 里把 `tgt_mask` 换成 `None` 再训练。*预期：* 训练损失几十步之内就降到接近 0——比原来还快——
   但贪心解码输出的是乱码（精确匹配接近 0 %）。每个位置都能读到要它预测的那个词元，于是模型学会的是抄写，不是翻译。解码器自注意力的图不再是三角形。
2. **束的宽度。** 用 `beam_size=1, 2, 8` 重新解码贪心的错误。*预期：* 宽度 1 与贪心完全相同；更宽的束几乎改不了这些答案（它们是有把握的错误），
   解码时间却大致随宽度线性增长。
3. **更小的模型。** `ninp=32, nhid=64, nlayers=1`。*预期：* 损失降得更慢，400 步后的精确匹配明显更低；按格式的柱状图显示哪些格式对它最难。
4. **另一个任务。** `from tinyllm.data import make_number_pairs, number_tokenizers` 给出 `("three hundred and twelve", "312")` 这样的句对。
   用同一个类训练它。*预期：* 同样的预算下精确匹配很高；交叉注意力里，三位数的第一位读的是 `hundred` 前面的那个词。
5. **原文的 dropout。** 用原文的默认值 `dropout=0.5` 训练。*预期：* 同样 400 步里损失降得慢得多，精确匹配更低——强 dropout 是用来对付过拟合 (overfitting) 的，
   数据充足时没有多少可对付的。
6. **更深的后置归一化。** 把 5.8 节的 `TinyGPT` 改成 `n_layers=6`，前置、后置各训练一次（学习率 1e-2，`warmup=1`）。
   *预期：* 层数越多，后置归一化越容易卡住或变差，前置归一化仍能训练——但时间是两块时的三倍左右。
7. **写一个 Transformer 块。** 用 `F.layer_norm`、`F.linear`、`F.gelu`、`F.scaled_dot_product_attention` 写出阶段 4 的块，
   参数放在一个按 GPT-2 命名的字典里（`"ln_1.weight"`、`"attn.c_attn.weight"`……），在下面的起点单元里完成。
   """ + assignment_task("a5_transformer_gpt", "block")["zh"] + r"""
8. **GPT 的前向和损失。** 在起点单元里写 `gpt_loss(params, ids, targets, n_heads)`：嵌入、各个块、最后的层归一化、与词元嵌入共享的输出层、交叉熵。
   """ + assignment_task("a5_transformer_gpt", "gpt")["zh"] + r"""
9. **AdamW 的一步。** 本章一直在用 `tl.optim.AdamW`；在起点单元里自己写一步更新（一阶矩、二阶矩、偏差修正、解耦的权重衰减）。
   """ + assignment_task("a5_transformer_gpt", "train_step")["zh"] + r"""
""", en=r"""
In the usual setting (lr 3e-3, 20 warmup steps) pre-norm ends at {{pre_final:.3f}} and post-norm at {{post_final:.3f}}:
{{normal_verdict}}. Stress test (lr 3e-2, no warmup, {{stress_steps}} steps): pre-norm {{stress_pre:.3f}}, post-norm
{{stress_post:.3f}} — {{stress_verdict}}.

What this shows and what it does not: with two blocks, a moderate learning rate and warmup,
post-norm trains perfectly well and can even end lower — the original Transformer paper trained
this way, and so did the date model of 5.4. Pre-norm's advantage is *stability*: the residual
stream keeps an identity path that no normalisation interrupts, the gradient reaches the bottom
layers directly, and so it tolerates large learning rates, no warmup and deep stacks better; {{stress_shows}}. When a model has dozens or hundreds of layers and a run is too
expensive to restart, that tolerance matters more than the last bit of loss — which is why nearly
every large language model since GPT-2 is pre-norm. A two-block, few-hundred-step experiment says
nothing about deep models; that takes deeper models and longer runs.

## Try it

1. **Forget the causal mask.** In `batch_loss`, pass `None` instead of `tgt_mask` and train again.
   *Expected:* the training loss drops to near 0 within a few dozen steps — faster than before — yet
   greedy decoding produces garbage (exact match near 0 %). Each position could read the token it
   was asked to predict, so the model learned to copy, not to translate. The decoder's
   self-attention map is no longer triangular.
2. **Beam width.** Decode the greedy mistakes with `beam_size=1, 2, 8`. *Expected:* 1 gives
   greedy's answers exactly; wider beams change few if any of these answers (the mistakes are
   confident ones), while the decoding time grows roughly linearly with the beam width.
3. **A smaller model.** `ninp=32, nhid=64, nlayers=1`. *Expected:* the loss falls more slowly and
   the exact match after 400 steps is clearly lower; the per-format chart shows which formats are
   hardest for it.
4. **Another task.** `from tinyllm.data import make_number_pairs, number_tokenizers` gives
   `("three hundred and twelve", "312")` pairs. Train the same class on them. *Expected:* a high
   exact match within the same budget; in the cross-attention, the first digit of a three-digit
   number reads the word before `hundred`.
5. **The article's dropout.** Train with `dropout=0.5`, the article's default. *Expected:* the loss
   falls much more slowly in the same 400 steps and the exact match is lower — heavy dropout fights
   overfitting, and with plentiful data there is little to fight.
6. **Deeper post-norm.** Give 5.8's `TinyGPT` `n_layers=6` and train it pre-norm and post-norm
   (lr 1e-2, `warmup=1`). *Expected:* the deeper the stack, the more readily post-norm stalls or
   falls behind while pre-norm still trains — at about three times the two-block time.
7. **Write a Transformer block.** Write stage 4's block with `F.layer_norm`, `F.linear`, `F.gelu`
   and `F.scaled_dot_product_attention`, its parameters in a dict named as in GPT-2
   (`"ln_1.weight"`, `"attn.c_attn.weight"`, …), in the starter cell below.
   """ + assignment_task("a5_transformer_gpt", "block")["en"] + r"""
8. **GPT's forward and loss.** Write `gpt_loss(params, ids, targets, n_heads)` in the starter cell:
   embeddings, the blocks, the final layer norm, an output layer tied to the token embedding,
   cross-entropy. """ + assignment_task("a5_transformer_gpt", "gpt")["en"] + r"""
9. **One AdamW step.** This chapter used `tl.optim.AdamW` throughout; write one update yourself in
   the starter cell (first and second moments, bias correction, decoupled weight decay).
   """ + assignment_task("a5_transformer_gpt", "train_step")["en"] + r"""
""")

code(r"""
#zh: 练习 7 的起始代码（作业 a5_transformer_gpt，任务 5.1）。写好函数，再运行 check_block()。
#en: Exercise 7, starter (assignment a5_transformer_gpt, task 5.1). Fill in the function, then run check_block().
from tinyllm.models.gpt import Block as GPTBlock

def transformer_block(x, p, n_heads):
    #zh: 一个前置归一化的 GPT-2 块，x (B, T, D) → (B, T, D)；p：{"ln_1.weight", "ln_1.bias", "attn.c_attn.weight",
    #en: one pre-norm GPT-2 block, x (B, T, D) → (B, T, D); p: {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight",
    #zh: "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
    #en: "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
    #zh: "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"}
    #en: "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"}
    #zh: x = x + attention(layer_norm_1(x))；x = x + c_proj(gelu(c_fc(layer_norm_2(x))))   （gelu 用 approximate="tanh"）
    #en: x = x + attention(layer_norm_1(x));  x = x + c_proj(gelu(c_fc(layer_norm_2(x))))   (gelu: approximate="tanh")
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def check_block():
    tl.manual_seed(1)
    block = GPTBlock(GPTConfig(n_embd=16, n_head=2))                 # tinyllm's own GPT block
    p = dict(block.named_parameters())
    x = tl.randn(2, 5, 16)
    with tl.no_grad():
        same = np.allclose(transformer_block(x, p, 2).numpy(), block(x).numpy(), atol=1e-5)
    print(tr("与 tinyllm 的 GPT 块一致 ✓", "matches tinyllm's GPT block ✓") if same else tr("还不一致 ✗", "not yet ✗"))

# check_block()      # uncomment when your function is written
""")

code(r"""
#zh: 练习 8 的起始代码（作业 a5_transformer_gpt，任务 5.2）。写好函数，再运行 check_gpt_loss()。
#en: Exercise 8, starter (assignment a5_transformer_gpt, task 5.2). Fill in the function, then run check_gpt_loss().
def gpt_loss(params, ids, targets, n_heads):
    #zh: params：{"wte", "wpe", "blocks": [每块一个字典，同练习 7], "ln_f.weight", "ln_f.bias"}
    #en: params: {"wte", "wpe", "blocks": [block dicts as in exercise 7], "ln_f.weight", "ln_f.bias"}
    #zh: 1. x = F.embedding(ids, wte) + F.embedding(np.arange(T), wpe)；2. 依次过每个块；3. 最后的层归一化
    #en: 1. x = F.embedding(ids, wte) + F.embedding(np.arange(T), wpe);  2. every block;  3. the final layer norm
    #zh: 4. logits = F.linear(x, params["wte"])（共享权重）；5. 返回 logits, F.cross_entropy(logits, targets)
    #en: 4. logits = F.linear(x, params["wte"]) (tied);  5. return logits, F.cross_entropy(logits, targets)
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def check_gpt_loss():
    tl.manual_seed(2)
    reference_gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16))   # tied embeddings
    named = dict(reference_gpt.named_parameters())
    params = {"wte": named["transformer.wte.weight"], "wpe": named["transformer.wpe.weight"],
              "ln_f.weight": named["transformer.ln_f.weight"], "ln_f.bias": named["transformer.ln_f.bias"],
              "blocks": [{k[len(f"transformer.h.{i}."):]: v for k, v in named.items() if k.startswith(f"transformer.h.{i}.")}
                         for i in range(2)]}
    ids_, targets_ = np.random.default_rng(0).integers(0, 11, (2, 8)), np.random.default_rng(1).integers(0, 11, (2, 8))
    with tl.no_grad():
        logits_, loss_ = gpt_loss(params, ids_, targets_, 2)
        want_logits, want_loss = reference_gpt(ids_, targets_)
    same = np.allclose(logits_.numpy(), want_logits.numpy(), atol=1e-5) and np.isclose(loss_.item(), want_loss.item(), atol=1e-5)
    print(tr("逻辑值和损失都与 tinyllm 的 GPT 一致 ✓", "logits and loss match tinyllm's GPT ✓") if same else tr("还不一致 ✗", "not yet ✗"))

# check_gpt_loss()      # uncomment when your function is written
""")

code(r"""
#zh: 练习 9 的起始代码（作业 a5_transformer_gpt，任务 5.3）。写好函数，再运行 check_train_step()。
#en: Exercise 9, starter (assignment a5_transformer_gpt, task 5.3). Fill in the function, then run check_train_step().
def train_step(loss_fn, params, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    #zh: 1. 对每个 p 令 p.grad = None；2. loss = loss_fn(); loss.backward()
    #en: 1. p.grad = None for each p;  2. loss = loss_fn(); loss.backward()
    #zh: 3. 在 p.data 上做 AdamW：t += 1；m = β1 m + (1−β1) g；v = β2 v + (1−β2) g²；m̂ = m/(1−β1ᵗ)；v̂ = v/(1−β2ᵗ)
    #en: 3. AdamW on p.data: t += 1; m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²; m̂ = m/(1−β1ᵗ); v̂ = v/(1−β2ᵗ)
    #zh:    p ← p (1 − lr λ) − lr m̂ / (√v̂ + ε)   （t、m、v 存在 `state` 里；跳过 grad 为 None 的 p）
    #en:    p ← p (1 − lr λ) − lr m̂ / (√v̂ + ε)   (keep t, m, v in `state`; skip p whose grad is None)
    #zh: 4. 返回 loss.item()
    #en: 4. return loss.item()
    raise NotImplementedError(tr("在这里写你的代码", "your code here"))

def check_train_step():
    start_ = np.array([0.5, -1.5, 2.0])
    mine_p, lib_p = tl.Tensor(start_.copy(), requires_grad=True), tl.Tensor(start_.copy(), requires_grad=True)
    state_, lib_opt = {}, AdamW([lib_p], lr=0.05, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.1)
    for _ in range(5):
        train_step(lambda: (mine_p * mine_p - mine_p).sum(), [mine_p], state_, lr=0.05, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.1)
        lib_opt.zero_grad(); (lib_p * lib_p - lib_p).sum().backward(); lib_opt.step()
    print(tr("5 步之后与 tl.optim.AdamW 一致 ✓", "after 5 steps, matches tl.optim.AdamW ✓") if np.allclose(mine_p.numpy(), lib_p.numpy())
          else tr("还不一致 ✗", "not yet ✗"))

# check_train_step()      # uncomment when your function is written
""")

md(zh=r"""
## 小结

| 原文（§5，以及它依赖的各节） | 本章的做法 |
|---|---|
| 用 `nn.TransformerEncoder` 和 `nn.TransformerDecoder` 搭的 `TransformerModel(ntoken, ninp, nhead, nhid, nlayers, dropout=0.5)` | 5.2：每个 `# ...` 补全；5.7：PyTorch 里同样的几行装入同样的权重 |
| `forward(src, tgt, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, memory_mask)` | 5.2：每个掩码的含义；5.4：训练循环调用的正是这个签名 |
| 编码器把输入变成特征，解码器据此生成输出（§2.1） | 5.6：编码器自注意力、因果的解码器自注意力，以及读源句的交叉注意力（写年份的行 {{on_year:.0%}} 的注意力在 `1987` 上） |
| $\mathrm{Attention}(Q,K,V) = \mathrm{softmax}(QK^\top/\sqrt{d_k})V$（§4.1） | 5.6：从训练好的层的权重手算，相差 {{by_hand_gap:.1e}} |
| 训练：预处理、建模、训练、评估（§2.2）；交叉熵和反向传播（§3.2、§4.2） | 5.3–5.5：分词后的句对、带 `loss.backward()` 的循环、损失曲线和精确匹配 {{exact_match:.1%}}；5.7：梯度与 PyTorch 相差 {{grad_rel_gap:.1e}} |
| 推理：预处理、预测、后处理（§2.3） | 5.5：逐步的贪心解码，束搜索 |
| 工具：PyTorch（§7） | 5.7：`nn.Transformer` 相差 {{transformer_gap:.2e}}，同样的梯度，同样的训练曲线，以及速度的差别 |
| （今天的大语言模型） | 5.8：二元 → 一个头 → 多个头 → 前置归一化块 → GPT，验证损失 {{bigram_loss:.3f}} → {{gpt_loss:.3f}}；装进 `GPT` 后逻辑值相差 {{gpt_gap:.1e}}；后置与前置归一化并排训练 |
""", en=r"""
## Summary

| the article says (§5, and the sections it rests on) | shown here |
|---|---|
| a `TransformerModel(ntoken, ninp, nhead, nhid, nlayers, dropout=0.5)` built from `nn.TransformerEncoder` and `nn.TransformerDecoder` | 5.2: the class with every `# ...` filled in; 5.7: the same lines in PyTorch load the same weights |
| `forward(src, tgt, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, memory_mask)` | 5.2: what each mask means; 5.4: the loop calls exactly this signature |
| the encoder turns input into features, the decoder generates output from them (§2.1) | 5.6: encoder self-attention, causal decoder self-attention, and cross-attention reading the source (the year rows put {{on_year:.0%}} of their attention on `1987`) |
| $\mathrm{Attention}(Q,K,V) = \mathrm{softmax}(QK^\top/\sqrt{d_k})V$ (§4.1) | 5.6: recomputed by hand from the trained layer's weights, within {{by_hand_gap:.1e}} |
| training: preprocessing, model, training, evaluation (§2.2); backpropagation with cross-entropy (§3.2, §4.2) | 5.3–5.5: tokenized pairs, the loop with `loss.backward()`, loss curves and exact match {{exact_match:.1%}}; 5.7: gradients within {{grad_rel_gap:.1e}} of PyTorch's |
| inference: preprocess, predict, postprocess (§2.3) | 5.5: greedy decoding step by step, beam search |
| PyTorch as the tool (§7) | 5.7: `nn.Transformer` within {{transformer_gap:.2e}}, the same gradients, the same training curve — and the difference in speed |
| (today's large language models) | 5.8: bigram → one head → several heads → pre-norm block → GPT, validation loss {{bigram_loss:.3f}} → {{gpt_loss:.3f}}; loaded into `GPT`, logits within {{gpt_gap:.1e}}; post-norm and pre-norm side by side |
""")

ch.index(builds=("原文的 `TransformerModel` 补全、在日期翻译上训练、贪心与束搜索、注意力图，与 PyTorch 逐数对照并并排训练；"
                 "一个分五步长出来的 GPT（二元 → 一个头 → 多个头 → 前置归一化块 → 完整模型，装进 `GPT` 后输出相同）；后置与前置归一化对比",
                 "the article's `TransformerModel` completed, trained on dates, greedy and beam decoding, attention maps, "
                 "checked number for number against PyTorch and trained side by side; a GPT grown in five stages "
                 "(bigram → one head → several heads → pre-norm block → the full model, equal to `GPT` once loaded); "
                 "post-norm against pre-norm"),
         figures=("精确匹配 {{exact_match:.1%}}；`nn.Transformer` 与 torch 相差 {{transformer_gap:.2e}}；五个阶段的验证损失 "
                  "{{bigram_loss:.3f}} → {{gpt_loss:.3f}}；与 `GPT` 的逻辑值相差 {{gpt_gap:.1e}}",
                  "exact match {{exact_match:.1%}}; `nn.Transformer` vs torch {{transformer_gap:.2e}}; validation loss over the "
                  "five stages {{bigram_loss:.3f}} → {{gpt_loss:.3f}}; logits vs `GPT` {{gpt_gap:.1e}}"))

if __name__ == "__main__":
    ch.build()
