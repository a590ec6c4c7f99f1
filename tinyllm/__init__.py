"""tinyllm: a teachable large language model on NumPy (and CuPy), with hand-written backprop.

    import tinyllm as tl
    import tinyllm.functional as F

    x = tl.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    loss = F.softmax(x @ x, axis=-1)[0, 1].log()
    loss.backward()
    print(x.grad)
"""
import numpy as np

from . import backend, kernels
from .backend import cuda_available, manual_seed
from .tensor import Tensor, Function, no_grad, enable_grad, is_grad_enabled, unbroadcast
from . import tensor_methods  # noqa: F401  (installs +, @, sum, reshape, ... on Tensor)
from .creation import (tensor, zeros, ones, full, zeros_like, ones_like, randn, rand, arange,
                       concatenate, stack, split, where, maximum, minimum, broadcast_to)
from .gradcheck import gradcheck, GradcheckError
from . import functional, profiler, optim
from .anomaly import detect_anomaly, AnomalyError
from . import nn, models

float16, float32, float64 = np.float16, np.float32, np.float64
int32, int64 = np.int32, np.int64
bool_ = np.bool_

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "unbroadcast",
    "tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "randn", "rand", "arange",
    "concatenate", "stack", "split", "where", "maximum", "minimum", "broadcast_to",
    "gradcheck", "GradcheckError", "functional", "profiler", "optim", "nn", "models", "detect_anomaly", "AnomalyError", "manual_seed", "cuda_available", "backend",
    "float16", "float32", "float64", "int32", "int64", "bool_",
]
