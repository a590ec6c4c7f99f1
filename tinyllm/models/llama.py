r"""Llama: the decoder-only Transformer most open models since 2023 follow (Llama 1–3,
Mistral, Qwen), built from GPT's skeleton with four pieces changed.

    idx (batch, seq) token ids
      → embed_tokens[idx]                                no position table
      → n_layer × LlamaDecoderLayer:
            x = x + self_attn(input_layernorm(x))        RMSNorm; rotary Q, K; n_kv_head K/V heads
            x = x + mlp(post_attention_layernorm(x))     SwiGLU: down(silu(gate(x)) ⊙ up(x))
      → norm (RMSNorm) → lm_head                          logits (batch, seq, vocab_size)

What each change buys (the layers are in :mod:`tinyllm.nn.llama_layers`):

* **RMSNorm** instead of LayerNorm: scale only, no centring, no bias; one statistic per row
  instead of two, and it trains as well.
* **Rotary position embeddings** instead of a learned table: queries and keys are rotated
  by angles proportional to their positions, so attention scores depend on relative
  offsets; no parameters, and no table whose length caps the context.
* **SwiGLU** instead of GELU: a gated MLP (three matrices, hidden width ≈ 8/3·d).
* **Grouped-query attention**: ``n_kv_head`` key/value heads shared by the ``n_head`` query
  heads; the KV cache shrinks by n_head / n_kv_head.

No biases anywhere (``bias=False``), and separate input and output embeddings by default.

``forward(idx, targets=None, kv_cache=None, last_logits_only=False)`` → ``(logits, loss)``,
exactly as :class:`GPT` (both are :class:`CausalLM`), so training, evaluation, sampling,
beam search and the KV cache work unchanged. The cache holds (batch, n_kv_head,
max_length, head_dim) arrays per layer, keys already rotated.

Names are Hugging Face's (``model.embed_tokens``, ``model.layers.{i}.self_attn.q_proj`` …,
``model.norm``, ``lm_head``), in torch's (out, in) layout: :meth:`Llama.from_hf` and
:meth:`Llama.to_hf_state_dict` exchange weights with ``transformers.LlamaForCausalLM``
without renaming or transposing. The rotary layout is Hugging Face's "halves" (dims
i and i + d/2 rotate together); Meta's original checkpoints pair dims 2i and 2i + 1, which
Hugging Face's conversion script turns into halves by permuting the rows of q_proj and k_proj.

Initialisation: every weight N(0, 0.02²) as Hugging Face's ``initializer_range``, norms 1;
and, as GPT-2 (and unlike Hugging Face), the projections into the residual stream
(``o_proj``, ``down_proj``) N(0, (0.02/√(2·n_layer))²), so that the two models compared in
the docs differ in their blocks only.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from .. import nn
from ..nn import init
from ..nn.llama_layers import RMSNorm, SwiGLU
from .config import check_types, require
from .gpt import CausalLM, load_safetensors

__all__ = ["LlamaConfig", "Llama", "LlamaDecoderLayer", "swiglu_hidden_size"]


def swiglu_hidden_size(n_embd, multiple_of=256):
    """Llama's rule for the MLP width: 2/3 of 4·n_embd (so three matrices hold what GPT's two
    do), rounded up to a multiple of ``multiple_of``. n_embd 4096 → 11008 (Llama-7B)."""
    hidden = int(2 * 4 * n_embd / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


@dataclass
class LlamaConfig:
    """Hyperparameters of a :class:`Llama` (defaults: Llama-2-7B's shape, as
    ``transformers.LlamaConfig()``), in GPT's field names where the two share a meaning.

    ``n_kv_head``: key/value heads (None: ``n_head``, plain multi-head attention; 1:
    multi-query). ``intermediate_size``: SwiGLU width (None: :func:`swiglu_hidden_size`).
    ``block_size`` is the longest context (Hugging Face's ``max_position_embeddings``)."""

    vocab_size: int = 32000
    block_size: int = 2048
    n_layer: int = 32
    n_head: int = 32
    n_kv_head: int | None = None
    n_embd: int = 4096
    intermediate_size: int | None = None
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    dropout: float = 0.0
    bias: bool = False
    tie_embeddings: bool = False

    def __post_init__(self):
        check_types(self)
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if self.intermediate_size is None:
            self.intermediate_size = swiglu_hidden_size(self.n_embd)
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_kv_head", "n_embd", "intermediate_size"):
            require(getattr(self, name) >= 1, self, name, "an integer >= 1")
        require(self.n_embd % self.n_head == 0 and (self.n_embd // self.n_head) % 2 == 0, self, "n_embd",
                f"n_head={self.n_head} times an even head size (rotary embeddings turn dims in pairs)")
        require(self.n_head % self.n_kv_head == 0, self, "n_kv_head", f"a divisor of n_head={self.n_head}")
        require(0.0 <= self.dropout < 1.0, self, "dropout", "in [0, 1)")
        require(self.rope_theta > 0, self, "rope_theta", "a number > 0")
        require(self.rms_norm_eps > 0, self, "rms_norm_eps", "a number > 0")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def kv_cache_bytes(self, batch, length, dtype=np.float32) -> int:
        """Bytes a KV cache of ``length`` positions takes:
        2 (keys, values) · n_layer · batch · n_kv_head · length · head_dim · itemsize —
        n_kv_head, not n_head: grouped-query attention caches the shared heads only."""
        return 2 * self.n_layer * batch * self.n_kv_head * length * self.head_dim * np.dtype(dtype).itemsize

    # ---------------------------------------------------------------- Hugging Face's config
    @classmethod
    def from_hf(cls, hf_config) -> "LlamaConfig":
        """From a ``transformers.LlamaConfig`` (or a dict of its fields). Refuses what this
        model does not implement (rope scaling, a head size other than n_embd / n_head,
        biases on only some projections)."""
        get = hf_config.get if isinstance(hf_config, dict) else (lambda k, d=None: getattr(hf_config, k, d))
        hidden, heads = get("hidden_size"), get("num_attention_heads")
        rope = get("rope_parameters") or {}
        rope_theta = rope.get("rope_theta", get("rope_theta", 10000.0))
        rope_type = rope.get("rope_type", (get("rope_scaling") or {}).get("rope_type", "default"))
        if rope_type != "default":
            raise ValueError(f"LlamaConfig.from_hf: rope type {rope_type!r} is not implemented (only 'default')")
        head_dim = get("head_dim") or hidden // heads
        if head_dim * heads != hidden:
            raise ValueError(f"LlamaConfig.from_hf: head_dim {head_dim} × {heads} heads != hidden_size {hidden}")
        if bool(get("attention_bias", False)) != bool(get("mlp_bias", False)):
            raise ValueError("LlamaConfig.from_hf: attention_bias and mlp_bias must agree (one bias switch here)")
        if get("hidden_act", "silu") != "silu":
            raise ValueError(f"LlamaConfig.from_hf: hidden_act {get('hidden_act')!r} is not 'silu'")
        return cls(vocab_size=get("vocab_size"), block_size=get("max_position_embeddings"),
                   n_layer=get("num_hidden_layers"), n_head=heads,
                   n_kv_head=get("num_key_value_heads") or heads, n_embd=hidden,
                   intermediate_size=get("intermediate_size"), rope_theta=float(rope_theta),
                   rms_norm_eps=float(get("rms_norm_eps", 1e-6)), bias=bool(get("attention_bias", False)),
                   tie_embeddings=bool(get("tie_word_embeddings", False)))

    def to_hf(self) -> dict:
        """The keyword arguments of the equivalent ``transformers.LlamaConfig(**kwargs)``."""
        return dict(vocab_size=self.vocab_size, max_position_embeddings=self.block_size,
                    num_hidden_layers=self.n_layer, num_attention_heads=self.n_head,
                    num_key_value_heads=self.n_kv_head, hidden_size=self.n_embd,
                    intermediate_size=self.intermediate_size, rms_norm_eps=self.rms_norm_eps,
                    rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
                    attention_bias=self.bias, mlp_bias=self.bias, tie_word_embeddings=self.tie_embeddings,
                    hidden_act="silu")


class LlamaDecoderLayer(nn.Module):
    """x + self_attn(input_layernorm(x)), then x + mlp(post_attention_layernorm(x))."""

    def __init__(self, config: LlamaConfig, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        c = config
        self.self_attn = nn.GroupedQueryAttention(c.n_embd, c.n_head, c.n_kv_head, max_positions=c.block_size,
                                                  rope_theta=c.rope_theta, bias=c.bias, dropout=c.dropout, **kw)
        self.mlp = SwiGLU(c.n_embd, c.intermediate_size, bias=c.bias, **kw)
        self.input_layernorm = RMSNorm(c.n_embd, eps=c.rms_norm_eps, **kw)
        self.post_attention_layernorm = RMSNorm(c.n_embd, eps=c.rms_norm_eps, **kw)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x, kv_cache=None, layer=0):
        x = x + self.self_attn(self.input_layernorm(x), kv_cache, layer)
        return x + self.dropout(self.mlp(self.post_attention_layernorm(x)))


class Llama(CausalLM):
    """A Llama language model (see the module docstring). ``Llama(LlamaConfig(...))``."""

    def __init__(self, config: LlamaConfig, device=None, dtype=None):
        super().__init__()
        if not isinstance(config, LlamaConfig):
            raise TypeError(f"Llama expects a LlamaConfig, got {type(config).__name__}")
        self.config = config
        kw = dict(device=device, dtype=dtype)
        self.model = nn.ModuleDict(dict(
            embed_tokens=nn.Embedding(config.vocab_size, config.n_embd, **kw),
            layers=nn.ModuleList([LlamaDecoderLayer(config, **kw) for _ in range(config.n_layer)]),
            norm=RMSNorm(config.n_embd, eps=config.rms_norm_eps, **kw),
        ))
        self.drop = nn.Dropout(config.dropout)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False, **kw)
        if config.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.reset_parameters()

    def reset_parameters(self):
        """N(0, 0.02²) weights, zero biases, unit norms; residual projections scaled by
        1/√(2·n_layer) (see the module docstring)."""
        std = 0.02
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                init.normal_(module.weight, 0.0, std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                init.zeros_(module.bias)
        residual_std = std / math.sqrt(2 * self.config.n_layer)
        for layer in self.model.layers:
            init.normal_(layer.self_attn.o_proj.weight, 0.0, residual_std)
            init.normal_(layer.mlp.down_proj.weight, 0.0, residual_std)

    def num_params(self, non_embedding=True) -> int:
        """Number of parameters (a tied token matrix once). Llama has no position table, so
        ``non_embedding`` changes nothing; it is there to be called as GPT's is."""
        return self.num_parameters()

    def hidden_states(self, idx, start, kv_cache):
        """Token embeddings, the decoder layers (rotary positions from ``start``), the final RMSNorm."""
        m = self.model
        x = self.drop(m.embed_tokens(idx))
        for i, layer in enumerate(m.layers):
            x = layer(x, kv_cache, i)
        return m.norm(x)

    def kv_cache_bytes(self, batch, length) -> int:
        """Bytes a KV cache of ``length`` positions takes in this model's dtype
        (:meth:`LlamaConfig.kv_cache_bytes`)."""
        return self.config.kv_cache_bytes(batch, length, self.dtype)

    # ---------------------------------------------------------------- Hugging Face
    @classmethod
    def from_hf(cls, state_dict, config, dtype=None, device=None) -> "Llama":
        """A Llama with the weights of a Hugging Face ``LlamaForCausalLM``, whose logits equal
        that model's.

        ``state_dict``: name → NumPy array (``{k: v.numpy() for k, v in hf.state_dict().items()}``)
        or the path of a ``.safetensors`` file; ``config``: a :class:`LlamaConfig`, or the
        Hugging Face config (``hf.config``) or a dict of its fields. ``dtype``: float32 or
        float64 (default: the checkpoint's; float32 for half precision)."""
        if isinstance(state_dict, (str, os.PathLike)):
            state_dict = load_safetensors(state_dict)
        if not isinstance(config, LlamaConfig):
            config = LlamaConfig.from_hf(config)
        state = {name: np.asarray(value) for name, value in state_dict.items()
                 if not name.endswith("rotary_emb.inv_freq")}  # a buffer older versions saved
        if "model.embed_tokens.weight" not in state:
            raise ValueError("Llama.from_hf: the state dict has no 'model.embed_tokens.weight' "
                             "(is it a LlamaForCausalLM checkpoint?)")
        embed = state["model.embed_tokens.weight"]
        if config.tie_embeddings:
            state.setdefault("lm_head.weight", embed)  # a tied checkpoint may store one copy
        if dtype is None:
            dtype = embed.dtype if embed.dtype in (np.float32, np.float64) else np.float32
        model = cls(config, device=device, dtype=dtype)
        model.load_state_dict(state)
        return model

    def to_hf_state_dict(self) -> dict:
        """This model's weights as a Hugging Face ``LlamaForCausalLM`` state dict (NumPy, the
        same names and layout); load with ``hf.load_state_dict({k: torch.from_numpy(v) ...})``
        into ``LlamaForCausalLM(transformers.LlamaConfig(**model.config.to_hf()))``."""
        return dict(self.state_dict())

    def extra_repr(self):
        fields = asdict(self.config)
        return ", ".join(f"{k}={fields[k]}" for k in ("n_layer", "n_head", "n_kv_head", "n_embd",
                                                        "intermediate_size"))
