"""Models built from :mod:`tinyllm.nn`.

* :class:`TransformerModel` — the encoder–decoder of the article's code example, token ids (seq, batch).
* :class:`GPT` with :class:`GPTConfig` — decoder-only language model, ids (batch, seq),
  :class:`KVCache` for generation, GPT-2 weights via :meth:`GPT.from_gpt2`.
"""
from .transformer_model import TransformerModel
from .gpt import GPT, GPTConfig, KVCache, load_safetensors

__all__ = ["TransformerModel", "GPT", "GPTConfig", "KVCache", "load_safetensors"]
