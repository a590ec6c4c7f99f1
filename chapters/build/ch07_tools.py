"""Builds chapters/07_tools.ipynb (seed § 7, 工具和资源推荐).

    python chapters/build/ch07_tools.py          # full run, saved with outputs
    python chapters/build/ch07_tools.py --fast   # TINYLLM_FAST=1 check, to /tmp
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbtools import Notebook  # noqa: E402

nb = Notebook()
md, code = nb.md, nb.code

# ----------------------------------------------------------------------------------------- title
md(r"""
# 7 · 工具和资源推荐 — Tools: PyTorch, Hugging Face, CuPy

> **7. 工具和资源推荐** *(recommended tools and resources)*
>
> * **PyTorch**：一个开源的深度学习框架，提供了丰富的工具和库，用于构建和训练 LLM。
> * **TensorFlow**：另一个流行的深度学习框架，也提供了 LLM 相关的工具和库。
> * **Hugging Face Transformers**：一个开源的 LLM 库，提供了预训练模型和工具，方便开发者使用 LLM。

tinyllm exists to be read; the seed's tools exist to be used. This chapter puts them next to
each other and moves a model between them, so that what you learned inside tinyllm carries
over to the tools you will use afterwards.

**What you will build**

1. tinyllm next to **PyTorch**: the same lines in both, then the same GPT in both — logits,
   loss, every gradient and an AdamW step, number for number — and the time each takes.
2. Weights moved both ways through **safetensors**, the file format Hugging Face uses, and a
   look inside one.
3. **Hugging Face Transformers**: a GPT-2 model (built locally, randomly initialised — nothing
   is downloaded) saved in its own format and loaded into tinyllm with `GPT.from_gpt2`; then a
   model trained in tinyllm, exported, generating text inside `transformers`.
4. **A GPU with CuPy**: tinyllm's device model, and the strict CPU device that stands in for a
   GPU in the tests.

A full run takes about 1.5 minutes on 2 CPU cores.
""")

code(r"""
import os, sys, time, json, tempfile, warnings
FAST = os.environ.get("TINYLLM_FAST") == "1"   # CI sets this: fewer steps, same cells
try:
    import tinyllm
except ImportError:                               # run from chapters/ without installing
    sys.path.insert(0, os.path.abspath(".."))
    import tinyllm

import numpy as np
import matplotlib.pyplot as plt
import torch
import safetensors, safetensors.numpy, safetensors.torch
import transformers

import tinyllm as tl
import tinyllm.functional as F
from tinyllm.models import GPT, GPTConfig
from tinyllm.torch_reference import TorchGPT   # nanoGPT's model in PyTorch, same parameter names

torch.set_num_threads(1)             # small models: one thread is as fast, and steadier on a shared machine
transformers.utils.logging.set_verbosity_error()      # no download hints, no progress bars
transformers.utils.logging.disable_progress_bar()
plt.rcParams.update({"figure.dpi": 85, "axes.grid": True, "grid.alpha": 0.3})
np.set_printoptions(precision=5, suppress=True, linewidth=110)
work = tempfile.mkdtemp(prefix="tinyllm_ch07_")        # files this chapter writes
print("fast mode" if FAST else "full run")
print(f"tinyllm {tl.__version__} · torch {torch.__version__} · transformers {transformers.__version__} · "
      f"safetensors {safetensors.__version__} · numpy {np.__version__}")
""")

# ----------------------------------------------------------------------------------------- 1
md(r"""
## 1 · tinyllm next to PyTorch

### 1.1 The same lines

A tinyllm `Tensor` speaks NumPy (`axis=`, `.numpy()`), its layers speak `torch.nn` (same
names, arguments and parameter layouts). A small computation, written in both — a linear map,
a cross-entropy loss, and its gradient:

$$z = xW,\qquad \mathcal{L} = -\frac{1}{B}\sum_{b}\log\mathrm{softmax}(z_b)_{y_b},\qquad
\frac{\partial\mathcal{L}}{\partial W} = x^\top\,\frac{\mathrm{softmax}(z) - \mathrm{onehot}(y)}{B}$$
""")

code(r"""
x_np = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 2.0]], dtype=np.float32)
w_np = np.array([[0.1, -0.2], [0.3, 0.0], [-0.4, 0.5]], dtype=np.float32)
y_np = np.array([1, 0])

# tinyllm                                             # PyTorch
x = tl.Tensor(x_np)                                   ; xt = torch.tensor(x_np)
w = tl.Tensor(w_np, requires_grad=True)               ; wt = torch.tensor(w_np, requires_grad=True)
loss = F.cross_entropy(x @ w, tl.Tensor(y_np))        ; loss_t = torch.nn.functional.cross_entropy(xt @ wt, torch.tensor(y_np))
loss.backward()                                       ; loss_t.backward()

print("loss      tinyllm", loss.item(), "   torch", loss_t.item())
print("dL/dW     tinyllm\n", w.grad, "\n          torch\n", wt.grad.numpy())
p = F.softmax(x @ w, axis=-1).numpy()                 # the formula, by hand
print("x^T (softmax(z) - onehot(y)) / B\n", x_np.T @ (p - np.eye(2)[y_np]) / 2)
""")

md(r"""
| | tinyllm | PyTorch |
|---|---|---|
| array library | NumPy (CPU) or CuPy (GPU) | its own tensors |
| a tensor | `tl.Tensor(a, requires_grad=True, device="cpu")` | `torch.tensor(a, requires_grad=True, device="cpu")` |
| reductions | `x.sum(axis=0, keepdims=True)` (NumPy's words) | `x.sum(dim=0, keepdim=True)` |
| gradient of a leaf after `backward()` | `w.grad` — a raw NumPy/CuPy array | `w.grad` — a tensor |
| no graph | `with tl.no_grad():` | `with torch.no_grad():` |
| layers | `tl.nn.Linear(64, 128)`, `tl.nn.TransformerEncoderLayer(...)` | `torch.nn.Linear(64, 128)`, … (same arguments) |
| weights | `model.state_dict()` → name → NumPy array | name → tensor (same names, same shapes) |
| optimizer | `tl.optim.AdamW(groups, lr=…)` | `torch.optim.AdamW(groups, lr=…)` |
| device | `model.to("cuda")`, `Tensor(…, device="cuda")` | the same |

### 1.2 The same GPT

`tinyllm.torch_reference.TorchGPT` is nanoGPT's model written in PyTorch with tinyllm's
parameter names, so a tinyllm `state_dict()` loads into it as it is. Same weights, same batch:
""")

code(r"""
config = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0)
tl.manual_seed(0)
ours = GPT(config)
theirs = TorchGPT(config).load_tinyllm_state(ours.state_dict())
print(f"GPT with {ours.num_params():,} parameters (both sides)")

rng = np.random.default_rng(0)
idx, targets = rng.integers(0, 65, (12, 64)), rng.integers(0, 65, (12, 64))
logits, loss = ours(idx, targets)
loss.backward()
logits_t, loss_t = theirs(torch.from_numpy(idx), torch.from_numpy(targets))
loss_t.backward()
print(f"logits {logits.shape}: max |tinyllm - torch| = {np.abs(logits.numpy() - logits_t.detach().numpy()).max():.2e}")
print(f"loss: tinyllm {loss.item():.6f}, torch {loss_t.item():.6f}")

torch_params = dict(theirs.named_parameters())
rel = {name: np.abs(tl.backend.to_host(p.grad) - torch_params[name].grad.numpy()).max()
             / np.abs(torch_params[name].grad.numpy()).max() for name, p in ours.named_parameters()}
print(f"gradients of {len(rel)} parameter tensors: largest relative difference {max(rel.values()):.1e} "
      f"({max(rel, key=rel.get)})")
""")

md(r"""
float32 in both, so agreement is to about $10^{-6}$. Now the optimizer. AdamW with decoupled
weight decay $\lambda$ (on matrices only, the usual two groups):

$$m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad
w_t = w_{t-1} - \eta\Big(\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon} + \lambda\, w_{t-1}\Big)$$

Dividing by $\sqrt{v_t}$ makes every step about $\eta$ long *whatever the gradient's size*, so
for a weight whose gradient is nearly zero, float32 rounding in the gradient decides a visible
part of the step. To compare the optimizers' arithmetic rather than float32 noise, this check
runs in float64: three training steps on each side, from the same weights.
""")

code(r"""
def adamw_pair(tl_model, torch_model, lr=1e-3):
    # tinyllm's parameter groups, and the same split (by parameter name) for PyTorch
    groups = tl.optim.param_groups(tl_model.named_parameters(), weight_decay=0.1)
    decayed = {n for n, p in tl_model.named_parameters() if any(p is q for q in groups[0]["params"])}
    torch_groups = [{"params": [p for n, p in torch_model.named_parameters() if n in decayed], "weight_decay": 0.1},
                    {"params": [p for n, p in torch_model.named_parameters() if n not in decayed], "weight_decay": 0.0}]
    return tl.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99)), torch.optim.AdamW(torch_groups, lr=lr, betas=(0.9, 0.99))

ours64 = GPT(config); ours64.load_state_dict(ours.state_dict()); ours64.double()
theirs64 = TorchGPT(config).double().load_tinyllm_state(ours64.state_dict())
opt64, opt64_t = adamw_pair(ours64, theirs64)
for step in range(3):
    _, loss = ours64(idx, targets); opt64.zero_grad(); loss.backward(); opt64.step()
    _, loss_t = theirs64(torch.from_numpy(idx), torch.from_numpy(targets)); opt64_t.zero_grad(); loss_t.backward(); opt64_t.step()
    after = theirs64.state_dict()
    diff = max(np.abs(v - after[k].numpy()).max() for k, v in ours64.state_dict().items())
    print(f"step {step + 1}: loss tinyllm {loss.item():.10f}, torch {loss_t.item():.10f};  "
          f"max |w_tinyllm - w_torch| = {diff:.1e}")
""")

md(r"""
### 1.3 How fast is each?

Same model, same batch, a full training step (forward, backward, AdamW), alternating between
the two libraries so both see the same machine state. "CPU" is the time this process ran
(the fairer number when the machine is shared); "wall" is what a clock on the wall shows.
""")

code(r"""
opt, opt_t = adamw_pair(ours, theirs)                                  # float32, as in training

def tinyllm_step():
    _, loss = ours(idx, targets); opt.zero_grad(); loss.backward(); opt.step()

def torch_step():
    _, loss = theirs(torch.from_numpy(idx), torch.from_numpy(targets)); opt_t.zero_grad(); loss.backward(); opt_t.step()

def timed(step):
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - wall, time.process_time() - cpu

repeats = 2 if FAST else 10
for step in (tinyllm_step, torch_step):
    step()                                                              # warm-up
times = {"tinyllm": [], "PyTorch": []}
for _ in range(repeats):
    times["tinyllm"].append(timed(tinyllm_step)); times["PyTorch"].append(timed(torch_step))
tokens = idx.size
print(f"training step, batch 12 × 64 tokens, median of {repeats} (torch threads: {torch.get_num_threads()}):")
for name, t in times.items():
    wall, cpu = np.median(np.array(t), axis=0)
    print(f"  {name:8} wall {1000 * wall:6.0f} ms   CPU {1000 * cpu:6.0f} ms   ({tokens / wall:,.0f} tokens/s)")
ratio = np.median([a[1] for a in times["tinyllm"]]) / np.median([a[1] for a in times["PyTorch"]])
print(f"tinyllm / PyTorch (CPU time): {ratio:.1f}×")
""")

md(r"""
How the two compare depends on the machine and on what else it is doing: the numbers above
were measured on a shared machine while other work was running, which is why CPU time is
shown next to wall time. What does not depend on the machine: matrix multiplications cost the
same in both (NumPy and PyTorch call the same kind of BLAS library); the difference is
everything else. PyTorch runs each op as compiled C++ and fuses some; tinyllm runs each op as
a few NumPy calls from Python, keeps its graph in Python objects, and writes its backward as
more NumPy calls. At this size a step is a few hundred small operations and per-operation
overhead weighs on both; as the model grows, PyTorch's compiled and fused kernels pull ahead.
That is the price of being able to read every line — which is the point of tinyllm.
(`python -m tinyllm bench` measures both on two model sizes, with memory and generation
speed.)

## 2 · Weights both ways, through safetensors

A checkpoint is a map from names to arrays. `torch.save` writes it with pickle — and
unpickling a file runs code from it. **safetensors**, the format Hugging Face now uses by
default, is plain data:

```
[ N: 8 bytes, little-endian ][ N bytes of JSON: {"name": {"dtype": …, "shape": […], "data_offsets": [start, end]}, …} ][ the arrays' raw bytes ]
```

Any library that can read JSON and bytes can read it: there are readers for NumPy, PyTorch,
TensorFlow, JAX/Flax, MLX and Paddle.
""")

code(r"""
# tinyllm -> file -> PyTorch
path = os.path.join(work, "tinyllm_gpt.safetensors")
safetensors.numpy.save_file(dict(ours.state_dict()), path)              # NumPy arrays in, no torch needed
with open(path, "rb") as f:
    n = int.from_bytes(f.read(8), "little")
    header = json.loads(f.read(n))
print(f"{os.path.getsize(path):,} bytes; header: {n} bytes of JSON describing {len(header)} arrays, e.g.")
for name in list(header)[:3]:
    print("  ", name, header[name])

loaded = TorchGPT(config)
print("torch.load_state_dict:", loaded.load_state_dict(safetensors.torch.load_file(path)))
with torch.no_grad(), tl.no_grad():
    a, _ = ours(idx); b, _ = loaded(torch.from_numpy(idx))
print(f"max |tinyllm logits - torch logits| = {np.abs(a.numpy() - b.numpy()).max():.2e}")
""")

md(r"""
The other way has one wrinkle: **tied weights**. GPT uses one matrix both to embed tokens
(`transformer.wte.weight`) and to score them (`lm_head.weight`). PyTorch's state dict lists
it under both names, sharing memory, and `safetensors.torch.save_file` refuses to write two
names for one memory (they could come back as two different arrays). `save_model` writes it
once, under one name; loading into tinyllm then reports the other name as missing, which is
harmless because both names point to the same parameter.
""")

code(r"""
# PyTorch -> file -> tinyllm
path_t = os.path.join(work, "torch_gpt.safetensors")
try:
    safetensors.torch.save_file(theirs.state_dict(), path_t)
except RuntimeError as error:
    print("save_file:", str(error).strip().splitlines()[0])
safetensors.torch.save_model(theirs, path_t)                         # writes the shared matrix once
from tinyllm.models.gpt import load_safetensors                       # tinyllm's own reader: JSON + bytes
state = load_safetensors(path_t)
print("names in the file:", len(state), "| lm_head.weight" if "lm_head.weight" in state else "", 
      "| transformer.wte.weight" if "transformer.wte.weight" in state else "")
back = GPT(config)
print("tinyllm load_state_dict:", back.load_state_dict(state, strict=False))
print("the tied twin is filled too:", back.transformer.wte.weight is back.lm_head.weight)
with torch.no_grad(), tl.no_grad():
    a, _ = back(idx); b, _ = theirs(torch.from_numpy(idx))
print(f"max |tinyllm logits - torch logits| = {np.abs(a.numpy() - b.numpy()).max():.2e}")
""")

md(r"""
tinyllm's own training checkpoints (`tinyllm.checkpoint.save_checkpoint`, used by the
`Trainer`) are safetensors files too, with the run's metadata (step, config, optimizer state,
tokenizer) as JSON in the header and SHA-256 checksums of both. So the standard readers open
them, and tinyllm itself refuses a damaged one with a clear message:
""")

code(r"""
from tinyllm.checkpoint import save_checkpoint, load_checkpoint, CheckpointError
ckpt = os.path.join(work, "ckpt.safetensors")
save_checkpoint(ckpt, {f"model.{k}": v for k, v in ours.state_dict().items()}, {"step": 1, "note": "chapter 7"})

with safetensors.safe_open(ckpt, framework="pt") as f:                 # PyTorch's reader, no tinyllm
    keys, metadata = list(f.keys()), f.metadata()
print(f"read by safetensors/torch: {len(keys)} tensors; metadata fields {sorted(metadata)}")
tensors, meta = load_checkpoint(ckpt)
print("read by tinyllm, checksums verified; meta =", meta)

data = bytearray(open(ckpt, "rb").read()); data[-100] ^= 0xFF          # flip one byte of one weight
open(ckpt, "wb").write(data)
try:
    load_checkpoint(ckpt)
except CheckpointError as error:
    print("after flipping one byte:", error)
""")

# ----------------------------------------------------------------------------------------- 3
md(r"""
## 3 · Hugging Face Transformers

### 3.1 GPT-2 weights into tinyllm

`transformers` defines GPT-2 as `GPT2LMHeadModel`. Downloading the real GPT-2 weights is not
possible here (and not needed: the *format* is what matters), so we build a small GPT-2 with
random weights from a `GPT2Config`, exactly as `from_pretrained` would build it before
filling in the downloaded numbers, and save it with `save_pretrained` — which writes
`model.safetensors` and `config.json`, the same files you would find on the Hub.
""")

code(r"""
hf_config = transformers.GPT2Config(vocab_size=96, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
torch.manual_seed(0)
hf_model = transformers.GPT2LMHeadModel(hf_config).eval()
hf_dir = os.path.join(work, "tiny-gpt2")
hf_model.save_pretrained(hf_dir)
print(sorted(os.listdir(hf_dir)))
saved = json.load(open(os.path.join(hf_dir, "config.json")))
print({k: saved[k] for k in ("model_type", "n_layer", "n_head", "n_embd", "n_positions", "vocab_size", "activation_function")})
""")

md(r"""
`GPT.from_gpt2` reads the file and builds a tinyllm `GPT`. It reads the sizes off the weights'
shapes; only the number of heads must be given (it cannot be seen in any shape). One real
difference between the two layouts: Hugging Face's GPT-2 stores its projections as `Conv1D`
weights of shape (in, out), where `torch.nn.Linear` — and tinyllm — use (out, in), so those
four matrices per block are transposed on the way in (and out again in `to_gpt2_state_dict`).
GPT-2's GELU is the tanh approximation,
$\mathrm{GELU}(x) \approx \tfrac12 x\big(1+\tanh\big(\sqrt{2/\pi}\,(x + 0.044715x^3)\big)\big)$,
which `from_gpt2` selects.
""")

code(r"""
tl_gpt2 = GPT.from_gpt2(os.path.join(hf_dir, "model.safetensors"), n_head=hf_config.n_head)
print(tl_gpt2.config)
hf_w = hf_model.state_dict()["transformer.h.0.attn.c_attn.weight"]
print(f"c_attn.weight: Hugging Face {tuple(hf_w.shape)} (in, out) -> tinyllm {tl_gpt2.transformer.h[0].attn.c_attn.weight.shape} (out, in)")

ids = np.random.default_rng(1).integers(0, hf_config.vocab_size, (3, 40))
with torch.no_grad():
    hf_logits = hf_model(torch.from_numpy(ids)).logits.numpy()
with tl.no_grad():
    tl_logits, _ = tl_gpt2(ids)
print(f"logits {tl_logits.shape}: max |tinyllm - transformers| = {np.abs(tl_logits.numpy() - hf_logits).max():.2e}")
""")

md(r"""
With the real GPT-2 small (124 M parameters) the same two lines would be:

```python
hf = transformers.GPT2LMHeadModel.from_pretrained("gpt2")          # needs the network once
model = GPT.from_gpt2({k: v.numpy() for k, v in hf.state_dict().items()}, n_head=12)
```

### 3.2 A tinyllm model inside `transformers`

The other direction: train a small character-level GPT in tinyllm on the shipped Tiny Tales
corpus, export it with `to_gpt2_state_dict()`, load it into a `GPT2LMHeadModel`, and let
Hugging Face's `generate` write with it. Greedy decoding is deterministic, so the two
libraries must produce the same characters. (The text stops at the 64-character context:
GPT-2 has learned positions only up to `n_positions`, and `transformers` does not slide a
window past them.)
""")

code(r"""
from tinyllm.data import load_shipped_corpus, CharTokenizer, CausalLMDataset
from tinyllm.generate import generate

text = load_shipped_corpus()
tok = CharTokenizer.from_text(text)
data = CausalLMDataset(np.array(tok.encode(text)), block_size=64)
small = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=4, n_embd=128)
tl.manual_seed(0)
student = GPT(small)
optimizer = tl.optim.AdamW(tl.optim.param_groups(student.named_parameters(), 0.1), lr=3e-3, betas=(0.9, 0.99))
steps, batch_rng, losses = (10 if FAST else 500), np.random.default_rng(0), []
start = time.perf_counter()
for step in range(steps):
    for group in optimizer.param_groups:
        group["lr"] = tl.optim.cosine_with_warmup(step, 3e-3, 3e-4, min(30, steps // 4), steps)
    x, y = data.get_batch(16, batch_rng)
    _, loss = student(x, y)
    optimizer.zero_grad(); loss.backward(); tl.optim.clip_grad_norm_(student.parameters(), 1.0); optimizer.step()
    losses.append(loss.item())
print(f"{steps} steps in {time.perf_counter() - start:.0f} s; loss {losses[0]:.2f} -> {np.mean(losses[-20:]):.2f}")

exported = transformers.GPT2LMHeadModel(transformers.GPT2Config(
    vocab_size=small.vocab_size, n_positions=small.block_size, n_embd=small.n_embd, n_layer=small.n_layer,
    n_head=small.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    bos_token_id=None, eos_token_id=None)).eval()                      # no end token: id 0 is "\n" here
print("transformers load_state_dict:",
      exported.load_state_dict({k: torch.from_numpy(v) for k, v in student.to_gpt2_state_dict().items()}))

prompt = np.array([tok.encode("Once upon a time")])
new = small.block_size - prompt.shape[1]        # GPT-2 has no positions past n_positions: stay inside
hf_ids = exported.generate(torch.from_numpy(prompt), max_new_tokens=new, do_sample=False, pad_token_id=0).numpy()
tl_ids = generate(student, prompt, new, temperature=0)
print("\ntransformers.generate:\n" + tok.decode(hf_ids[0].tolist()))
print("\ntinyllm generate:\n" + tok.decode(tl_ids[0].tolist()))
print("\nsame tokens:", bool(np.array_equal(hf_ids, tl_ids)))
""")

md(r"""
Everything the Hugging Face ecosystem offers for a GPT-2 — its sampling options, pipelines,
fine-tuning scripts, the Hub — now works on a model whose every gradient was computed by
the NumPy code of this course.

## 4 · Running on a GPU with CuPy

### 4.1 The device model

tinyllm runs on a GPU through **CuPy**, a NumPy-compatible array library for NVIDIA GPUs.
The design, borrowed from Chainer:

* a **device** name maps to an **array module** `xp`: `"cpu"` → `numpy`, `"cuda"` → `cupy`;
* a `Tensor` holds one array on one device; every op asks the tensor for its module
  (`xp = tensor.xp`) and calls `xp.exp`, `xp.matmul`, … — one code path for both;
* arrays never move implicitly: `tl.backend.to_device` and `tl.backend.to_host` are the only
  doors, used by `model.to("cuda")`, `Tensor(a, device="cuda")`, `.numpy()` and `.item()`;
* a training step moves one batch of token ids to the device and one loss value back.

This machine has no GPU:
""")

code(r"""
print("tl.cuda_available():", tl.cuda_available())
try:
    tl.backend.get_device("cuda")
except RuntimeError as error:
    print("device 'cuda':", error)
t = tl.Tensor([1.0, 2.0, 3.0])
print(f"a CPU tensor: device {t.device!r}, array module {t.xp.__name__}, data type {type(t.data).__name__}")
""")

md(r"""
The code is the same either way; only the device name changes. On a machine with an NVIDIA
GPU and `pip install cupy-cuda12x`, this cell trains on the GPU; here it runs on the CPU:
""")

code(r"""
device = "cuda" if tl.cuda_available() else "cpu"
tl.manual_seed(0)
model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)).to(device)
optimizer = tl.optim.AdamW(model.parameters(), lr=1e-3)
x = tl.Tensor(idx, device=device)               # host -> device: the batch, once per step
y = tl.Tensor(targets, device=device)
for step in range(3):
    _, loss = model(x, y)
    optimizer.zero_grad(); loss.backward(); optimizer.step()
    print(f"step {step}: loss {loss.item():.4f} on {device}")   # .item(): device -> host, one number
print("parameters live on:", model.lm_head.weight.device, "| their arrays are", type(model.lm_head.weight.data).__module__)
""")

md(r"""
### 4.2 The strict device: testing GPU code without a GPU

Code that works on NumPy can still break on CuPy. NumPy quietly accepts a mix of arrays and
converts behind your back; CuPy refuses to mix a host array into device arithmetic and
refuses implicit conversion to NumPy (it would be a hidden, slow copy). CI has no GPU, so
tinyllm's tests include a CPU **"strict" device** (`tinyllm.testing.strict`): NumPy arrays in a
wrapper that refuses exactly what CuPy refuses. The whole test suite runs on it
(`TINYLLM_TEST_DEVICES=cpu,strict`); code that passes there is very likely to pass on CuPy.

On the strict device the model computes the same numbers:
""")

code(r"""
from tinyllm.testing import strict
strict.register()                                                   # adds the device "strict"

tl.manual_seed(0)
cpu_model = GPT(config)
strict_model = GPT(config); strict_model.load_state_dict(cpu_model.state_dict()); strict_model.to("strict")
with tl.no_grad():
    cpu_logits, cpu_loss = cpu_model(idx, targets)
    strict_logits, strict_loss = strict_model(tl.Tensor(idx, device="strict"), tl.Tensor(targets, device="strict"))
print(f"loss on cpu {cpu_loss.item():.6f}, on strict {strict_loss.item():.6f}; array type on strict: "
      f"{type(strict_logits.data).__name__}")
print("same logits:", np.array_equal(cpu_logits.numpy(), strict_logits.numpy()))
""")

md(r"""
…and it catches the mistakes that would only show up on a GPU:
""")

code(r"""
a = tl.Tensor(np.ones(3, dtype=np.float32), device="strict")
mistakes = {
    "mixing a host array into device arithmetic": lambda: a.data + np.arange(3, dtype=np.float32),
    "converting a device array implicitly":       lambda: np.asarray(a.data),
    "a NumPy function instead of xp.…":           lambda: np.concatenate([a.data, a.data]),
    "indexing with a host index array":           lambda: a.data[np.array([0, 2])],
}
for what, mistake in mistakes.items():
    try:
        mistake()
        print(f"{what}: not caught")
    except Exception as error:
        print(f"{what}:\n    {type(error).__name__}: {str(error)[:150]}")
print("\nthe right ways:", (a.data + a.xp.arange(3, dtype=np.float32)).__class__.__name__, "·",
      tl.backend.to_host(a.data), "·", a.xp.concatenate([a.data, a.data]).shape)
""")

# ----------------------------------------------------------------------------------------- 5
md(r"""
## 5 · TensorFlow, and where to go next

The seed also recommends **TensorFlow** (with Keras). It is not installed here, and tinyllm
has no TensorFlow code; the bridge would be the same as for PyTorch — a safetensors file,
read with `safetensors.tensorflow.load_file`, into Keras layers with the same shapes (Keras's
`Dense` kernel is stored (in, out), like GPT-2's `Conv1D`). The concepts are the same in every
framework: tensors on a device, a recorded graph, a backward pass, an optimizer step.

| resource | what it is for |
|---|---|
| [PyTorch documentation](https://pytorch.org/docs/stable/) — `torch.nn.Transformer`, `torch.nn.functional.scaled_dot_product_attention` | the reference for every layer tinyllm copies |
| [Hugging Face Transformers](https://huggingface.co/docs/transformers) and the [Hub](https://huggingface.co/models) | pretrained models (GPT-2 and successors), tokenizers, generation, fine-tuning |
| [safetensors](https://huggingface.co/docs/safetensors) | the weight format used above |
| [TensorFlow](https://www.tensorflow.org/) / [Keras](https://keras.io/) | the seed's second framework |
| [CuPy](https://docs.cupy.dev/) | NumPy on NVIDIA GPUs — tinyllm's GPU backend |
| [nanoGPT](https://github.com/karpathy/nanoGPT) | the GPT whose layout and training recipe tinyllm follows |
| [The Annotated Transformer](https://nlp.seas.harvard.edu/annotated-transformer/) | the paper, line by line, with code |
| [Dive into Deep Learning](https://d2l.ai/), chapters 10–11 | attention and Transformers, with exercises |

## 6 · Try it

1. **float64 on both sides.** Repeat the logits and gradient check of § 1.2 with
   `ours64` and `theirs64`. *Expected:* agreement to about $10^{-14}$ instead of $10^{-6}$ —
   the float32 differences were rounding, not a bug.
2. **Scale the timing.** Change § 1.3's config to `n_layer=6, n_head=6, n_embd=384` and a
   batch of 8 × 256. *Expected:* both get slower, and PyTorch's lead widens: more of the time is
   now in the ops PyTorch fuses and tinyllm does not.
3. **The wrong `n_head`.** Load the Hugging Face model with `GPT.from_gpt2(..., n_head=2)`.
   *Expected:* it loads without complaint (all shapes still fit) but the logits disagree —
   the head count changes how the same numbers are grouped.
4. **Skip the transpose.** Load `{k: v.numpy() for k, v in hf_model.state_dict().items()}`
   into a tinyllm `GPT` of the same size with plain `load_state_dict`. *Expected:* an error
   listing every Conv1D matrix, e.g. `transformer.h.0.attn.c_attn.weight: expected shape
   (192, 64), got (64, 192)`.
5. **A strict-device bug hunt.** Write a function that normalises a tensor's data with
   `x.data / np.linalg.norm(x.data)` and run it on the strict device. *Expected:* a
   `StrictDeviceError`; the CuPy-safe version uses `x.xp.linalg.norm`.
6. **Sample with Hugging Face.** Call `exported.generate(..., do_sample=True, top_p=0.9,
   temperature=0.8)`. *Expected:* varied text in the style of § 3.2, produced by tinyllm's
   weights with Hugging Face's sampler (chapter 6 compares these knobs).

## Summary

| the seed says (§ 7) | shown here |
|---|---|
| PyTorch: a framework with rich tools for building and training LLMs | § 1: the same code in both; the same GPT gives the same logits, gradients and AdamW update; PyTorch is built for speed, tinyllm for reading |
| TensorFlow: another popular framework | § 5: the same concepts; safetensors would carry the weights across |
| Hugging Face Transformers: pretrained models and tools | § 3: GPT-2-format weights load into tinyllm (`GPT.from_gpt2`) with identical logits; a tinyllm-trained model generates inside `transformers` |
| (§ 1.2) compute is a challenge: GPUs | § 4: the same code on a GPU through CuPy; the strict device keeps it GPU-safe without one |
""")

if __name__ == "__main__":
    nb.build("07_tools.ipynb")
