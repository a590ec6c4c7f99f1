"""Parameter initialisation, as ``torch.nn.init``: fill a tensor in place with random numbers.

Every draw happens on the host, from :func:`tinyllm.backend.host_generator` (seeded by
``tl.manual_seed``), and is then copied onto the tensor's device in one transfer. So the
same seed gives the same initial weights on the CPU and on a GPU, and in float32 and
float64 (up to rounding).

The defaults the layers use (the same as PyTorch's):

* ``Linear(in, out)``: weight and bias ~ U(−1/√in, 1/√in) (PyTorch's "kaiming uniform with
  a = √5", which works out to exactly this bound);
* ``Embedding``: N(0, 1);  ``LayerNorm``: weight 1, bias 0;
* ``MultiheadAttention``: the packed in-projection Xavier-uniform, biases 0.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = ["uniform_", "normal_", "zeros_", "ones_", "constant_", "xavier_uniform_", "fan_in_and_fan_out"]


def _fill(tensor: Tensor, host_values: np.ndarray) -> Tensor:
    """Copy host values into ``tensor.data`` in place (one host-to-device transfer)."""
    values = np.asarray(host_values, dtype=tensor.dtype)
    tensor.data[...] = backend.to_device(values, tensor.device)
    tensor.bump_version()
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill ``tensor`` with numbers drawn from U(a, b)."""
    return _fill(tensor, backend.host_generator().uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill ``tensor`` with numbers drawn from N(mean, std²)."""
    return _fill(tensor, backend.host_generator().normal(mean, std, size=tensor.shape))


def constant_(tensor: Tensor, value: float) -> Tensor:
    """Fill ``tensor`` with ``value``."""
    tensor.data[...] = value
    tensor.bump_version()
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight, as PyTorch counts them: a Linear weight (out, in) has
    fan_in = in and fan_out = out."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor of at least 2 dimensions, got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    r"""Glorot/Xavier uniform: U(−a, a) with a = gain · √(6 / (fan_in + fan_out)), which keeps
    the variance of activations and of gradients about the same from layer to layer."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)
