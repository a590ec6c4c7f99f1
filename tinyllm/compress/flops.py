r"""Counting the work: FLOPs per token and per training step, and the machine's peak.

For a GPT with N parameters (embeddings of positions excluded) training on sequences of
length T, nanoGPT's ``estimate_mfu`` (after the PaLM paper, appendix B) counts

    FLOPs per token = 6N + 12 · L · H · Q · T

6N: every weight takes part in one multiply-add (2 FLOPs) in the forward pass and two in
the backward pass (the gradient with respect to the input and to the weight); 12·L·H·Q·T:
attention's two matmuls (QKᵀ and PV), forward and backward, in L layers of H heads of size Q.
Model FLOPs utilisation (MFU) is achieved FLOPs per second over the peak the hardware can do.
"""
from __future__ import annotations

import math
import time

import numpy as np

__all__ = ["gpt_flops_per_token", "gpt_training_flops_per_step", "matmul_peak_flops"]


def gpt_flops_per_token(config, n_params):
    """Training FLOPs per token of a GPT (see the module docstring); ``n_params`` without
    the position table (``GPT.num_params()``)."""
    head = config.n_embd // config.n_head
    return 6 * n_params + 12 * config.n_layer * config.n_head * head * config.block_size


def gpt_training_flops_per_step(config, n_params, batch_size):
    """FLOPs of one forward + backward over a (batch_size, block_size) batch."""
    return gpt_flops_per_token(config, n_params) * config.block_size * batch_size


def matmul_peak_flops(n=2048, repeats=5, device="cpu", dtype=np.float32):
    """The FLOP/s of an n×n float32 matrix product on ``device`` (best of ``repeats``):
    the practical peak MFU is measured against."""
    from .. import backend
    dev = backend.get_device(device)
    a = dev.from_host(np.random.default_rng(0).standard_normal((n, n)).astype(dtype))
    a @ a
    dev.synchronize()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        dev.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best
