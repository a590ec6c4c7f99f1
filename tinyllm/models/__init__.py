"""Models built from :mod:`tinyllm.nn`.

* :class:`TransformerModel` — the encoder–decoder of the article's code example, token ids (seq, batch).
* :class:`GPT` with :class:`GPTConfig` — decoder-only language model, ids (batch, seq),
  :class:`KVCache` for generation, GPT-2 weights via :meth:`GPT.from_gpt2`.
* :class:`Llama` with :class:`LlamaConfig` — the same interface (both are :class:`CausalLM`),
  with RMSNorm, rotary positions, SwiGLU and grouped-query attention; Hugging Face Llama
  weights via :meth:`Llama.from_hf`.
"""
from .transformer_model import TransformerModel
from .gpt import GPT, GPTConfig, CausalLM, KVCache, load_safetensors
from .llama import Llama, LlamaConfig

__all__ = ["TransformerModel", "GPT", "GPTConfig", "CausalLM", "KVCache", "load_safetensors", "Llama", "LlamaConfig"]
