r"""GPT: a decoder-only Transformer language model (GPT-2's architecture, nanoGPT's layout).

    idx (batch, seq) token ids
      → wte[idx] + wpe[positions]                  token and learned position embeddings
      → n_layer × Block:  x = x + attn(ln_1(x))    causal self-attention (pre-LayerNorm)
                          x = x + mlp(ln_2(x))     Linear(4·n_embd) → GELU → Linear(n_embd)
      → ln_f → lm_head (= wteᵀ when tied)          logits (batch, seq, vocab_size)

``forward(idx, targets=None, kv_cache=None, last_logits_only=False)`` returns
``(logits, loss)``; with ``targets`` (batch, seq) the loss is the mean cross-entropy of the
next-token predictions (targets equal to −1 are ignored), else ``loss`` is None.

Names follow nanoGPT and Hugging Face: ``transformer.wte``, ``transformer.wpe``,
``transformer.h.{i}.ln_1``, ``.attn.c_attn`` (Q, K, V packed: (3·n_embd, n_embd)),
``.attn.c_proj``, ``.ln_2``, ``.mlp.c_fc``, ``.mlp.c_proj``, ``transformer.ln_f``,
``lm_head``. Weights are in torch's Linear layout (out, in); Hugging Face's GPT-2 stores its
Conv1D weights as (in, out), which :meth:`GPT.from_gpt2` and :meth:`GPT.to_gpt2_state_dict`
transpose.

Initialisation is GPT-2's: every weight N(0, 0.02²), biases 0, and the two projections that
write into the residual stream (``attn.c_proj``, ``mlp.c_proj``) N(0, (0.02/√(2·n_layer))²),
so that the residual sum of 2·n_layer contributions keeps a steady variance.

Tied embeddings (GPT-2's and nanoGPT's default, ``tie_embeddings=True``): ``lm_head.weight``
*is* ``transformer.wte.weight``, one (vocab, n_embd) matrix that both reads tokens in (row
lookup) and scores them out (logits = x·Wᵀ); its gradient is the sum of the two uses. With
``tie_embeddings=False`` the output matrix is a separate parameter, N(0, 0.02²) like the
rest. Tying saves vocab·n_embd parameters, which matters for a 50,257-token vocabulary; for
a 65-character vocabulary it saves 8 k, and on Tiny Shakespeare separate matrices reached a
lower loss in 2,000 steps (the ``shakespeare-char`` preset unties them:
``docs/shakespeare-char.md``).

KV cache (for generation)
-------------------------
Without a cache, predicting token t+1 reruns the model over all t tokens. The keys and
values of earlier tokens do not change, so a :class:`KVCache` keeps them (per layer,
(batch, n_head, max_length, head_size) arrays) and each step only computes the new
tokens::

    cache = model.new_kv_cache()                  # or KVCache(n_layer, max_length)
    with tl.no_grad():
        logits, _ = model(prompt, kv_cache=cache)              # (B, T0, V); cache.position == T0
        next_id = logits[:, -1].argmax(axis=-1)                # (B,)
        logits, _ = model(next_id.reshape(-1, 1), kv_cache=cache)   # (B, 1, V); position T0 + 1

Each call's tokens take positions ``cache.position …``; they attend to everything cached
plus, causally, to each other; the cache then advances by their number. The logits equal
those of a full forward over the whole sequence. A cache is for inference only (it must
run under ``tl.no_grad()``), holds one batch size, and cannot go past ``block_size``
positions (the position table ends there): to continue, ``cache.reset()`` and feed the last
``block_size`` tokens again (``tinyllm.generate`` does this, so past ``block_size`` each new
token costs a full forward, as it does without a cache). ``cache.crop(n)`` forgets all but the
first n positions.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..nn import init
from ..nn.attention import cached_query_mask, merge_heads, split_heads
from ..tensor import Tensor, is_grad_enabled
from .config import check_types, require

__all__ = ["GPTConfig", "GPT", "KVCache", "CausalLM", "CausalSelfAttention", "MLP", "Block", "load_safetensors"]


@dataclass
class GPTConfig:
    """Hyperparameters of a :class:`GPT` (defaults: GPT-2 small, 124 M parameters).

    ``gelu_approximate="tanh"`` is GPT-2's GELU (Hugging Face "gelu_new"); "none" is the
    exact erf form (nanoGPT uses it; the two differ by < 1e-3)."""

    vocab_size: int = 50257
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True
    gelu_approximate: str = "tanh"
    layer_norm_eps: float = 1e-5
    tie_embeddings: bool = True

    def __post_init__(self):
        check_types(self)
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            require(getattr(self, name) >= 1, self, name, "an integer >= 1")
        require(self.n_embd % self.n_head == 0, self, "n_embd", f"divisible by n_head={self.n_head}")
        require(0.0 <= self.dropout < 1.0, self, "dropout", "in [0, 1)")
        require(self.gelu_approximate in ("tanh", "none"), self, "gelu_approximate", "'tanh' or 'none'")
        require(self.layer_norm_eps > 0, self, "layer_norm_eps", "a number > 0")


# ----------------------------------------------------------------------------- KV cache
class KVCache:
    """Keys and values of the tokens seen so far, per layer, for incremental decoding.

    ``position``: how many positions are cached (the position of the next token fed).
    ``keys[i]``, ``values[i]``: layer i's arrays (batch, n_head, max_length, head_size),
    allocated at the first forward (whose batch size, dtype and device they take); only
    ``[:, :, :position]`` is meaningful. See the module docstring for the usage.
    """

    def __init__(self, n_layer: int, max_length: int):
        self.n_layer, self.max_length = int(n_layer), int(max_length)
        self.keys = [None] * self.n_layer
        self.values = [None] * self.n_layer
        self.position = 0

    def __len__(self):
        return self.position

    def reset(self) -> None:
        """Forget everything (the arrays are kept and reused)."""
        self.position = 0

    def crop(self, length: int) -> None:
        """Keep only the first ``length`` positions (e.g. to back up after rejected tokens)."""
        if not 0 <= length <= self.position:
            raise ValueError(f"KVCache.crop: length must be in [0, {self.position}], got {length}")
        self.position = int(length)

    def update(self, layer: int, k: Tensor, v: Tensor):
        """Write layer ``layer``'s new keys and values (batch, n_head, T, head_size) at
        positions ``position … position+T−1`` and return all cached ones so far,
        (batch, n_head, position+T, head_size) each (views, no copy). ``position`` itself
        advances only in :meth:`advance`, after every layer has written."""
        end = self.position + k.shape[2]
        if end > self.max_length:
            room = self.max_length - self.position
            raise ValueError(f"KVCache: {k.shape[2]} new positions after {self.position} cached ones do not fit "
                             f"max_length={self.max_length}; feed at most {room}, or reset() or crop() the cache")
        cached = self.keys[layer]
        shape = k.shape[:2] + (self.max_length, k.shape[3])
        if (cached is None or cached.shape != shape or cached.dtype != k.dtype
                or backend.array_device(cached) is not backend.get_device(k.device)):
            if self.position != 0:
                raise ValueError(f"KVCache: it holds {self.position} positions of keys shaped "
                                 f"{cached.shape[:2] + cached.shape[3:]} (batch, heads, head_size), {cached.dtype}; "
                                 f"new keys are {k.shape} {k.dtype}: reset() it first")
            self.keys[layer] = k.xp.empty(shape, dtype=k.dtype)
            self.values[layer] = k.xp.empty(shape, dtype=v.dtype)
        self.keys[layer][:, :, self.position:end] = k.data
        self.values[layer][:, :, self.position:end] = v.data
        return Tensor(self.keys[layer][:, :, :end]), Tensor(self.values[layer][:, :, :end])

    def advance(self, n: int) -> None:
        self.position += int(n)

    def select(self, rows) -> None:
        """Keep batch rows ``rows`` (host ints, in that order, repeats allowed) of every
        layer's keys and values: beam search follows its surviving hypotheses this way."""
        for layer, keys in enumerate(self.keys):
            if keys is not None:
                index = backend.to_device(np.asarray(rows, dtype=np.int64), backend.array_device(keys))
                self.keys[layer] = keys[index]
                self.values[layer] = self.values[layer][index]

    @property
    def nbytes(self) -> int:
        """Bytes held by the allocated key and value arrays (all max_length positions)."""
        return sum(a.nbytes for a in self.keys + self.values if a is not None)

    def __repr__(self):
        return f"KVCache(n_layer={self.n_layer}, max_length={self.max_length}, position={self.position})"


# ----------------------------------------------------------------------------- the blocks
class CausalSelfAttention(nn.Module):
    r"""Multi-head self-attention in which position t sees positions ≤ t.

    Q, K, V = x W_attnᵀ + b_attn split in three (``c_attn``: (3C, C)), each reshaped to
    (B, n_head, T, C/n_head); y = softmax(Q Kᵀ/√d + causal mask) V, heads merged,
    then ``c_proj``. ``.attention_weights`` keeps the last (B, n_head, T, S) weights."""

    keep_attention_weights = True

    def __init__(self, config: GPTConfig, device=None, dtype=None):
        super().__init__()
        kw = dict(bias=config.bias, device=device, dtype=dtype)
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, **kw)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, **kw)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout
        self.attention_weights = None

    def forward(self, x, kv_cache=None, layer=0):
        """x (B, T, C) → (B, T, C); with ``kv_cache``, attends to the cached positions too."""
        c, qkv = self.n_embd, self.c_attn
        q = split_heads(qkv.rows(x, 0, c), self.n_head, batch_first=True)
        k = split_heads(qkv.rows(x, c, 2 * c), self.n_head, batch_first=True)
        v = split_heads(qkv.rows(x, 2 * c, 3 * c), self.n_head, batch_first=True)
        dropout_p = self.dropout if self.training else 0.0
        mask, is_causal = None, True
        if kv_cache is not None:
            mask, is_causal = cached_query_mask(kv_cache.position, x.shape[1], x.xp)
            k, v = kv_cache.update(layer, k, v)
        y, weights = F.attention(q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=dropout_p)
        self.attention_weights = weights if self.keep_attention_weights else None
        return self.resid_dropout(self.c_proj(merge_heads(y, batch_first=True)))


class MLP(nn.Module):
    """The position-wise feed-forward network: c_proj(GELU(c_fc(x))), 4× wider inside."""

    def __init__(self, config: GPTConfig, device=None, dtype=None):
        super().__init__()
        kw = dict(bias=config.bias, device=device, dtype=dtype)
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, **kw)
        self.gelu = nn.GELU(approximate=config.gelu_approximate)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, **kw)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """One pre-LayerNorm Transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: GPTConfig, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias, **kw)
        self.attn = CausalSelfAttention(config, **kw)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias, **kw)
        self.mlp = MLP(config, **kw)

    def forward(self, x, kv_cache=None, layer=0):
        x = x + self.attn(self.ln_1(x), kv_cache, layer)
        return x + self.mlp(self.ln_2(x))


# ----------------------------------------------------------------------------- the model
class CausalLM(nn.Module):
    """What every decoder-only language model here shares (GPT, Llama): the call
    ``model(idx, targets=None, kv_cache=None, last_logits_only=False) -> (logits, loss)``,
    its checks, the next-token loss and the KV cache. A subclass sets ``self.config`` (with
    ``vocab_size``, ``block_size``, ``n_layer``) and ``self.lm_head``, and implements
    :meth:`hidden_states`. :mod:`tinyllm.generate` needs nothing else."""

    def hidden_states(self, idx, start, kv_cache):
        """idx (B, T) ids at positions ``start …`` → (B, T, C), after the final norm."""
        raise NotImplementedError(f"{type(self).__name__} has no hidden_states()")  # pragma: no cover

    def new_kv_cache(self, max_length=None) -> KVCache:
        """An empty :class:`KVCache` for this model (``max_length`` ≤ block_size, default block_size)."""
        max_length = self.config.block_size if max_length is None else int(max_length)
        if not 0 < max_length <= self.config.block_size:
            raise ValueError(f"{type(self).__name__}.new_kv_cache: max_length must be in "
                             f"[1, block_size={self.config.block_size}], got {max_length}")
        return KVCache(self.config.n_layer, max_length)

    def _as_ids(self, ids, name):
        owner = type(self).__name__
        if not isinstance(ids, Tensor):
            ids = Tensor(np.asarray(ids), device=self.device)
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"{owner}: {name} must be integer token ids, got dtype {ids.dtype}")
        if ids.device != self.device:
            raise RuntimeError(f"{owner}: {name} is on {ids.device!r} but the model is on {self.device!r}; "
                               f"make it with device={self.device!r}")
        return ids

    def forward(self, idx, targets=None, kv_cache=None, last_logits_only=False):
        """idx (B, T) token ids → ``(logits, loss)``.

        * logits (B, T, vocab_size) — or (B, 1, vocab_size) with ``last_logits_only``;
        * loss: mean cross-entropy against ``targets`` (B, T) (−1 = ignore), or None;
        * ``kv_cache``: a :class:`KVCache`; idx then holds the *new* tokens only, at
          positions ``kv_cache.position`` onward (inference only, under ``tl.no_grad()``).
        """
        owner = type(self).__name__
        idx = self._as_ids(idx, "idx")
        if idx.ndim != 2:
            raise ValueError(f"{owner}: idx must be token ids shaped (batch, seq), got shape {idx.shape}")
        batch, length = idx.shape
        if length == 0:
            raise ValueError(f"{owner}: idx must hold at least one token per row, got shape {idx.shape}")
        start = 0
        if kv_cache is not None:
            if is_grad_enabled():
                raise RuntimeError(f"{owner}: a kv_cache is for inference; run the forward under tl.no_grad() "
                                   "(the cached keys and values are not part of the graph)")
            if kv_cache.n_layer != self.config.n_layer:
                raise ValueError(f"{owner}: kv_cache has {kv_cache.n_layer} layers, the model {self.config.n_layer}")
            start = kv_cache.position
        if start + length > self.config.block_size:
            block = self.config.block_size
            what = f"{length} tokens" + (f" after {start} cached ones" if start else "")
            if not start:
                fix = f"crop the input to its last {block} tokens"
            elif start < block:
                fix = f"feed at most {block - start} new tokens, or cache.reset() and feed the last {block}"
            else:
                fix = f"the cache is full: cache.reset() (or crop() it) and feed the last {block} tokens"
            raise ValueError(f"{owner}: a sequence of {what} is longer than block_size={block}; {fix}")
        x = self.hidden_states(idx, start, kv_cache)
        if last_logits_only:
            x = x[:, -1:, :]
        logits = self.lm_head(x)
        loss = None
        if targets is not None:
            targets = self._as_ids(targets, "targets")
            if targets.shape != logits.shape[:2]:
                raise ValueError(f"{owner}: targets must have shape {logits.shape[:2]} (batch, seq), "
                                 f"got {targets.shape}")
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)
        if kv_cache is not None:
            kv_cache.advance(length)
        return logits, loss

    def attention_maps(self):
        """name → attention weights (B, n_head, T, S) of the last forward, per layer."""
        return nn.attention_maps(self)


# Hugging Face's GPT-2 keeps these weights as Conv1D (in, out): transposed from ours.
_CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def _gpt2_shapes(state) -> dict:
    """name -> shape of every tensor a GPT-2 state dict (Hugging Face names, Conv1D (in, out)
    layout) must hold, given its embeddings: the layers are ``h.0``, ``h.1``, ... as long as
    ``h.{i}.ln_1.weight`` is there, so no name can ask for more layers than the weights hold.
    A missing ``lm_head.weight`` is filled with wte (a tied checkpoint may store only wte)."""
    for name in ("transformer.wte.weight", "transformer.wpe.weight"):
        if name not in state:
            raise ValueError(f"GPT.from_gpt2: the state dict has no {name!r} (is it a GPT-2 checkpoint?)")
        if state[name].ndim != 2 or 0 in state[name].shape:
            raise ValueError(f"GPT.from_gpt2: {name} has shape {state[name].shape}; expected (rows, n_embd)")
    (vocab, c), block = state["transformer.wte.weight"].shape, state["transformer.wpe.weight"].shape[0]
    head = state.setdefault("lm_head.weight", state["transformer.wte.weight"])
    if head.shape != (vocab, c):
        raise ValueError(f"GPT.from_gpt2: lm_head.weight has shape {head.shape}, transformer.wte.weight "
                         f"{(vocab, c)}; they must match")
    shapes = {"transformer.wte.weight": (vocab, c), "transformer.wpe.weight": (block, c),
              "transformer.ln_f.weight": (c,), "transformer.ln_f.bias": (c,), "lm_head.weight": (vocab, c)}
    block_shapes = {"ln_1.weight": (c,), "ln_1.bias": (c,), "attn.c_attn.weight": (c, 3 * c),
                    "attn.c_attn.bias": (3 * c,), "attn.c_proj.weight": (c, c), "attn.c_proj.bias": (c,),
                    "ln_2.weight": (c,), "ln_2.bias": (c,), "mlp.c_fc.weight": (c, 4 * c),
                    "mlp.c_fc.bias": (4 * c,), "mlp.c_proj.weight": (4 * c, c), "mlp.c_proj.bias": (c,)}
    layer = 0
    while f"transformer.h.{layer}.ln_1.weight" in state:
        shapes.update({f"transformer.h.{layer}.{name}": shape for name, shape in block_shapes.items()})
        layer += 1
    missing = [name for name in shapes if name not in state]
    if missing:
        raise ValueError(f"GPT.from_gpt2: the state dict has no {missing[0]!r}"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return shapes


class GPT(CausalLM):
    """A GPT language model (see the module docstring). ``GPT(GPTConfig(...))``."""

    def __init__(self, config: GPTConfig, device=None, dtype=None):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT expects a GPTConfig, got {type(config).__name__}")
        self.config = config
        kw = dict(device=device, dtype=dtype)
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd, **kw),
            wpe=nn.Embedding(config.block_size, config.n_embd, **kw),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, **kw) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias, **kw),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False, **kw)
        if config.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight  # one matrix reads and writes tokens
        self.reset_parameters()

    def reset_parameters(self):
        """GPT-2's initialisation (see the module docstring)."""
        std = 0.02
        for name, module in self.named_modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                init.normal_(module.weight, 0.0, std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                init.zeros_(module.bias)
        residual_std = std / math.sqrt(2 * self.config.n_layer)
        for block in self.transformer.h:
            init.normal_(block.attn.c_proj.weight, 0.0, residual_std)
            init.normal_(block.mlp.c_proj.weight, 0.0, residual_std)

    def num_params(self, non_embedding=True) -> int:
        """Number of parameters (a tied token matrix once); ``non_embedding`` leaves out
        the position table, as nanoGPT reports it."""
        n = self.num_parameters()
        return n - self.transformer.wpe.weight.size if non_embedding else n

    def hidden_states(self, idx, start, kv_cache):
        """Token plus position embeddings, the blocks, the final LayerNorm: (B, T, C)."""
        t = self.transformer
        positions = Tensor(t.wte.weight.xp.arange(start, start + idx.shape[1]))
        x = t.drop(t.wte(idx) + t.wpe(positions))  # (B, T, C) + (T, C)
        for i, block in enumerate(t.h):
            x = block(x, kv_cache, i)
        return t.ln_f(x)

    # ---------------------------------------------------------------- Hugging Face GPT-2
    @classmethod
    def from_gpt2(cls, state_dict, n_head, dtype=None, device=None) -> "GPT":
        """A GPT with the weights of a Hugging Face GPT-2 checkpoint, whose logits equal that
        model's (``GPT2LMHeadModel`` with ``activation_function="gelu_new"``).

        ``state_dict``: name → NumPy array (``{k: v.numpy() for k, v in hf.state_dict().items()}``),
        from ``GPT2LMHeadModel`` ("transformer.h.0…", "lm_head.weight") or ``GPT2Model``
        ("h.0…"); or the path of a ``.safetensors`` file. A ``lm_head.weight`` that differs from
        ``wte`` (``tie_word_embeddings=False``) gives an untied model. ``n_head`` cannot be read off the
        weights (GPT-2 small: 12). ``dtype``: float32 or float64; default the checkpoint's
        (float32 for half-precision files). Vocabulary, context length, width and depth come
        from the weights' shapes."""
        if isinstance(state_dict, (str, os.PathLike)):
            state_dict = load_safetensors(state_dict)
        state = {}
        for name, value in state_dict.items():
            array = np.asarray(value)
            if not isinstance(name, str):
                raise ValueError(f"GPT.from_gpt2: tensor names must be strings, got {name!r}")
            if name.endswith(".attn.masked_bias") or (name.endswith(".attn.bias") and array.ndim == 4):
                continue  # old checkpoints store the causal mask as a buffer
            if not name.startswith(("transformer.", "lm_head.")):
                name = "transformer." + name
            state[name] = array
        expected = _gpt2_shapes(state)  # from the expected names only, before allocating anything
        problems = [f"{name} has shape {state[name].shape}, expected {shape}"
                    for name, shape in expected.items() if state[name].shape != shape]
        problems += [f"{name} has dtype {state[name].dtype}, not a float type"
                     for name in expected if not np.issubdtype(state[name].dtype, np.floating)]
        problems += [f"{name[:80]!r} is not a GPT-2 weight" for name in state if name not in expected]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ValueError(f"GPT.from_gpt2: {problems[0]}{more}")
        wte, wpe, head = state["transformer.wte.weight"], state["transformer.wpe.weight"], state["lm_head.weight"]
        n_layer = sum(name.endswith(".ln_1.weight") for name in expected)
        config = GPTConfig(vocab_size=wte.shape[0], block_size=wpe.shape[0], n_layer=n_layer, n_head=n_head,
                           n_embd=wte.shape[1], bias=True, gelu_approximate="tanh",
                           tie_embeddings=bool(np.array_equal(head, wte)))
        if dtype is None:
            dtype = wte.dtype if wte.dtype in (np.float32, np.float64) else np.float32
        for name in list(state):
            if name.endswith(_CONV1D_WEIGHTS):
                state[name] = state[name].T
        model = cls(config, device=device, dtype=dtype)
        model.load_state_dict(state)
        return model

    def to_gpt2_state_dict(self) -> dict:
        """This model's weights as a Hugging Face ``GPT2LMHeadModel`` state dict (NumPy,
        Conv1D weights transposed to (in, out)); load with
        ``hf.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``."""
        out = {}
        for name, array in self.state_dict().items():
            out[name] = np.ascontiguousarray(array.T) if name.endswith(_CONV1D_WEIGHTS) else array
        return out


# ----------------------------------------------------------------------------- .safetensors
_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
                       "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def load_safetensors(path) -> dict:
    """name -> NumPy array from a ``.safetensors`` file.

    The format: 8 bytes (little-endian length n), n bytes of JSON mapping each name to
    its dtype, shape and byte range, then the raw little-endian data. bfloat16 tensors are
    widened to float32 (bfloat16 is the top half of a float32's bits). A truncated or
    malformed file raises a ValueError naming it and the problem."""
    with open(path, "rb") as f:
        data = f.read()

    def malformed(problem):
        return ValueError(f"load_safetensors: {path}: {problem}")
    if len(data) < 8:
        raise malformed(f"{len(data)} bytes is too short for a .safetensors file (truncated or empty)")
    header_length = int.from_bytes(data[:8], "little")
    if header_length > len(data) - 8:
        raise malformed(f"the header claims {header_length} bytes, the file has {len(data) - 8} after its "
                        f"length (truncated, or not a .safetensors file)")
    try:
        header = json.loads(data[8:8 + header_length].decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise malformed(f"the header is not readable JSON ({type(error).__name__}); not a .safetensors file?") from None
    if not isinstance(header, dict):
        raise malformed("the header is not a JSON object")
    body = data[8 + header_length:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            kind, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
            itemsize = 2 if kind == "BF16" else np.dtype(_SAFETENSORS_DTYPES[kind]).itemsize
            if not (all(type(n) is int and n >= 0 for n in (*shape, start, end))
                    and start <= end <= len(body) and math.prod(shape) * itemsize == end - start):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise malformed(f"tensor {name[:80]!r}: its dtype, shape or byte range is malformed, unsupported "
                            f"or past the end of the file ({str(info)[:120]})") from None
        raw = body[start:end]
        if kind == "BF16":
            array = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, dtype=np.dtype(_SAFETENSORS_DTYPES[kind]).newbyteorder("<"))
        tensors[name] = array.reshape(shape).copy()
    return tensors
