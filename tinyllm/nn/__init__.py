"""Layers and models' building blocks, as ``torch.nn`` (import as ``import tinyllm.nn as nn``).

Files, bottom to top: ``module.py`` (Module, Parameter, Buffer, Sequential, ModuleList,
ModuleDict), ``init.py`` (initialisers), ``layers.py`` (Linear, Embedding, LayerNorm,
Dropout, ReLU, GELU, positional encodings), ``attention.py`` (MultiheadAttention),
``transformer.py`` (encoder and decoder layers and stacks, Transformer), ``llama_layers.py``
(RMSNorm, SwiGLU, RotaryEmbedding, GroupedQueryAttention), ``lora.py`` (LoRALinear and
``lora.wrap``: low-rank adapters over a frozen model).

Each layer has torch's constructor arguments, defaults, parameter names and shapes, so::

    layer = nn.TransformerEncoderLayer(d_model=64, nhead=4)
    layer.load_state_dict({k: v.numpy() for k, v in torch_layer.state_dict().items()})

gives the same outputs and gradients as ``torch_layer``.
"""
from . import init
from .module import Module, Parameter, Buffer, Sequential, ModuleList, ModuleDict, LoadResult
from .layers import (Linear, Embedding, LayerNorm, Dropout, ReLU, GELU, Identity, PositionalEncoding,
                     LearnedPositionalEncoding, sinusoidal_positional_encoding)
from .attention import MultiheadAttention, attention_maps
from .llama_layers import RMSNorm, SwiGLU, RotaryEmbedding, GroupedQueryAttention
from . import lora
from .lora import LoRALinear
from .transformer import (TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder, TransformerDecoder,
                          Transformer, generate_square_subsequent_mask)

__all__ = [
    "init", "Module", "Parameter", "Buffer", "Sequential", "ModuleList", "ModuleDict", "LoadResult",
    "Linear", "Embedding", "LayerNorm", "Dropout", "ReLU", "GELU", "Identity", "PositionalEncoding",
    "LearnedPositionalEncoding", "sinusoidal_positional_encoding", "MultiheadAttention", "attention_maps",
    "TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder", "TransformerDecoder",
    "Transformer", "generate_square_subsequent_mask",
    "RMSNorm", "SwiGLU", "RotaryEmbedding", "GroupedQueryAttention", "lora", "LoRALinear",
]
