"""Models built from :mod:`tinyllm.nn`.

* :class:`TransformerModel` — the encoder–decoder of the article's code example, token ids (seq, batch);
  :class:`Seq2SeqConfig` holds its sizes.
* :class:`GPT` with :class:`GPTConfig` — decoder-only language model, ids (batch, seq),
  :class:`KVCache` for generation, GPT-2 weights via :meth:`GPT.from_gpt2`.
* :class:`Llama` with :class:`LlamaConfig` — the same interface (both are :class:`CausalLM`),
  with RMSNorm, rotary positions, SwiGLU and grouped-query attention; Hugging Face Llama
  weights via :meth:`Llama.from_hf`.

:data:`MODEL_FAMILIES` names the three (``"gpt"``, ``"llama"``, ``"seq2seq"``): a config's
class tells its family (:func:`family_of`), which is how a training run's config says what
it trains.
"""
from .config import ConfigError
from .transformer_model import TransformerModel, Seq2SeqConfig
from .gpt import GPT, GPTConfig, CausalLM, KVCache, load_safetensors
from .llama import Llama, LlamaConfig

__all__ = ["TransformerModel", "Seq2SeqConfig", "GPT", "GPTConfig", "CausalLM", "KVCache", "load_safetensors",
           "Llama", "LlamaConfig", "ConfigError", "MODEL_FAMILIES", "family_of", "build_model"]

#: The model families a training run knows: family name -> (model class, its config class).
MODEL_FAMILIES = {"gpt": (GPT, GPTConfig), "llama": (Llama, LlamaConfig), "seq2seq": (TransformerModel, Seq2SeqConfig)}


def family_of(config) -> str:
    """The family name of a model config (a GPTConfig is "gpt", ...); a TypeError for anything else."""
    for family, (_, config_class) in MODEL_FAMILIES.items():
        if type(config) is config_class:
            return family
    raise TypeError(f"expected a model config ({', '.join(c.__name__ for _, c in MODEL_FAMILIES.values())}), "
                    f"got {type(config).__name__}")


def build_model(config):
    """The model a config describes: GPT(GPTConfig), Llama(LlamaConfig), or
    TransformerModel.from_config(Seq2SeqConfig)."""
    model_class, _ = MODEL_FAMILIES[family_of(config)]
    return model_class.from_config(config) if model_class is TransformerModel else model_class(config)
