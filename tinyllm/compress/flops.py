r"""Counting the work: FLOPs per token and per training step, the machine's peak, and MFU.

For a GPT with N parameters (the position table excluded) training on sequences of length
T, nanoGPT's ``estimate_mfu`` (after the PaLM paper, appendix B) counts

    FLOPs per token = 6N + 12 · L · H · Q · T

6N: every weight takes part in one multiply-add (2 FLOPs) in the forward pass and two in
the backward pass (the gradient with respect to the input and to the weight); 12·L·H·Q·T:
attention's two matmuls (QKᵀ and PV), forward and backward, in L layers of H heads of size Q.
Model FLOPs utilisation (MFU) is achieved FLOPs per second over the peak the hardware can do:

    MFU = FLOPs per step / seconds per step / peak FLOP/s

The 6N rule is an estimate: N also counts biases and LayerNorm gains, which do no matmul
work. :class:`FlopCounter` *measures* instead: it watches every matrix product a real
forward and backward run (linear layers, ``@``, fused attention) and adds up 2·m·k·n for
each; the tests check that the two agree.

The encoder–decoder :class:`~tinyllm.models.TransformerModel` counts the same way, with each
weight multiplied by the tokens it is applied to (encoder weights see the S source tokens,
decoder weights the T target tokens, except the cross-attention's key and value projections,
which read the S memory positions) and three attention terms: encoder self-attention 12·E·S²,
decoder self-attention 12·E·T², cross-attention 12·E·T·S per layer and sequence.
"""
from __future__ import annotations

import math
import time
import weakref

import numpy as np

from ..tensor import backward_hooks, forward_hooks
from .. import backend, functional, ops
from .quantize import QuantizedLinearFunction

__all__ = ["STANDARD_SIZES", "STANDARD_VOCAB", "gpt_flops_per_token", "gpt_training_flops_per_step", "matmul_peak_flops",
           "transformer_model_training_flops_per_step", "transformer_model_flops_per_token",
           "mfu", "estimate_mfu", "FlopCounter"]


# The two GPT sizes the benchmark and the cost commands measure: S is the shakespeare-char
# recipe's shape (what students train on laptops), M a size where matrix products dominate.
STANDARD_SIZES = {
    "S": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12),
    "M": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=8),
}
STANDARD_VOCAB = 65  # Tiny Shakespeare's characters


def gpt_flops_per_token(config, n_params):
    """Training FLOPs per token of a GPT (see the module docstring); ``n_params`` without
    the position table (``GPT.num_params()``)."""
    head = config.n_embd // config.n_head
    return 6 * n_params + 12 * config.n_layer * config.n_head * head * config.block_size


def gpt_training_flops_per_step(config, n_params, batch_size):
    """FLOPs of one forward + backward over a (batch_size, block_size) batch."""
    return gpt_flops_per_token(config, n_params) * config.block_size * batch_size


def _transformer_model_dims(model):
    layer = model.encoder.layers[0]
    return dict(E=model.ninp, F=layer.linear1.out_features, L=model.encoder.num_layers,
                L_dec=model.decoder.num_layers, V=model.output_projection.out_features)


def transformer_model_training_flops_per_step(model, batch_size, src_len, tgt_len):
    r"""Training FLOPs (forward + backward) of a :class:`~tinyllm.models.TransformerModel`
    on a batch of ``batch_size`` pairs of ``src_len`` source and ``tgt_len`` target tokens.

    With width E, feed-forward width F, L encoder and L' decoder layers, vocabulary V:

        encoder weights   (4E² + 2EF) · L   on S tokens (self-attention Q, K, V, out; FFN)
        decoder weights   (6E² + 2EF) · L'  on T tokens (self-attention 4E², cross Q and out 2E², FFN)
                           2E² · L'         on S tokens (cross-attention K and V of the memory)
        output projection  E·V              on T tokens
        FLOPs = batch · [6 · Σ weights × tokens + 12·E·(L·S² + L'·T² + L'·T·S)]

    Biases, LayerNorms and the embedding lookups do no matmul work and are left out."""
    d = _transformer_model_dims(model)
    e, f, s, t = d["E"], d["F"], int(src_len), int(tgt_len)
    weights_times_tokens = ((4 * e * e + 2 * e * f) * d["L"] * s
                            + (6 * e * e + 2 * e * f) * d["L_dec"] * t
                            + 2 * e * e * d["L_dec"] * s
                            + e * d["V"] * t)
    attention = 12 * e * (d["L"] * s * s + d["L_dec"] * t * t + d["L_dec"] * t * s)
    return int(batch_size) * (6 * weights_times_tokens + attention)


def transformer_model_flops_per_token(model, src_len, tgt_len):
    """Training FLOPs per *target* token of a TransformerModel (the per-step count over
    one pair, divided by ``tgt_len``)."""
    return transformer_model_training_flops_per_step(model, 1, src_len, tgt_len) / int(tgt_len)


def matmul_peak_flops(n=2048, repeats=5, device="cpu", dtype=np.float32):
    """The FLOP/s of an n×n float32 matrix product on ``device`` (best of ``repeats``):
    the practical peak MFU is measured against."""
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


def mfu(flops_per_step, seconds_per_step, peak_flops):
    """Model FLOPs utilisation: the fraction of ``peak_flops`` (FLOP/s) that a step of
    ``flops_per_step`` FLOPs taking ``seconds_per_step`` achieves."""
    if seconds_per_step <= 0 or peak_flops <= 0:
        raise ValueError(f"mfu: seconds_per_step and peak_flops must be > 0, got {seconds_per_step} "
                         f"and {peak_flops}")
    return flops_per_step / seconds_per_step / peak_flops


def estimate_mfu(model, batch_size, seconds_per_step, peak_flops=None):
    """nanoGPT's ``estimate_mfu`` for a tinyllm GPT: the 6N + attention count of one step
    of ``batch_size`` full-length sequences, over the measured float32 matmul peak of the
    model's device (measured now when ``peak_flops`` is None)."""
    if peak_flops is None:
        peak_flops = matmul_peak_flops(device=model.device)
    flops = gpt_training_flops_per_step(model.config, model.num_params(), batch_size)
    return mfu(flops, seconds_per_step, peak_flops)


# ----------------------------------------------------------------------------- measuring
class FlopCounter:
    """Counts the matmul FLOPs that really run, forward and backward, while it is active::

        with FlopCounter() as counter:
            _, loss = model(x, y)
            loss.backward()
        counter.forward, counter.backward, counter.total   # FLOPs (ints)

    A product of an (m, k) and a (k, n) matrix costs 2·m·k·n FLOPs (a multiply and an add
    per term). Counted: linear layers (``F.linear``), ``@`` and the fused attention; in the
    backward pass only the products that run (an input that needs no gradient costs none).
    Element-wise work (softmax, GELU, LayerNorm, the optimizer) is not counted, as in the
    6N rule. It works through the hooks :mod:`tinyllm.tensor` offers the profiler.
    """

    def __init__(self):
        self.forward = 0
        self.backward = 0
        self._input_shapes = weakref.WeakKeyDictionary()  # Function -> its inputs' shapes

    @property
    def total(self):
        return self.forward + self.backward

    def __enter__(self):
        forward_hooks.append(self._forward_hook)
        backward_hooks.append(self._backward_hook)
        return self

    def __exit__(self, *exc):
        forward_hooks.remove(self._forward_hook)
        backward_hooks.remove(self._backward_hook)
        return False

    def _forward_hook(self, fn, arrays, call):
        out = call()
        flops = _forward_flops(fn, arrays, out)
        if flops:
            self.forward += flops
            # its inputs' shapes, kept until its backward (weakly: a Function no graph holds goes away)
            self._input_shapes[fn] = [tuple(a.shape) for a in arrays[:3]]
        return out

    def _backward_hook(self, fn, grad, call):
        shapes = self._input_shapes.pop(fn, None)
        result = call()
        if shapes is not None:
            self.backward += _backward_flops(fn, shapes, result)
        return result


def _matmul_kind(fn):
    if isinstance(fn, (functional.Linear, QuantizedLinearFunction)):
        return "linear"
    if isinstance(fn, ops.MatMul):
        return "matmul"
    if isinstance(fn, functional.Attention):
        return "attention"
    return None


def _forward_flops(fn, arrays, out):
    kind = _matmul_kind(fn)
    if kind == "linear":  # x (..., in) @ W (out, in)ᵀ
        x, w = arrays[0], arrays[1]
        return 2 * (x.size // x.shape[-1]) * w.shape[0] * w.shape[1]
    if kind == "matmul":  # (..., n, k) @ (..., k, m): the output has (..., n, m) entries, each k terms
        a = arrays[0]
        return 2 * int(np.prod(out.shape)) * a.shape[-1]
    if kind == "attention":  # Q Kᵀ: (..., L, d)(..., d, S) and P V: (..., L, S)(..., S, d_v)
        q, k, v = arrays[0], arrays[1], arrays[2]
        scores = int(np.prod(np.broadcast_shapes(q.shape[:-2], k.shape[:-2]))) * q.shape[-2] * k.shape[-2]
        return 2 * scores * q.shape[-1] + 2 * scores * v.shape[-1]
    return 0


def _backward_flops(fn, shapes, grads):
    kind = _matmul_kind(fn)
    needs = [g is not None for g in grads]
    if kind == "linear":  # gx = g W, gW = gᵀ x: each as many FLOPs as the forward product
        x, w = shapes[0], shapes[1]
        one = 2 * (int(np.prod(x)) // x[-1]) * w[0] * w[1]
        return one * (int(needs[0]) + int(needs[1]))
    if kind == "matmul":
        a, b = shapes[0], shapes[1]
        out = np.broadcast_shapes(a[:-2], b[:-2]) + ((a[-2],) if len(a) > 1 else ()) + ((b[-1],) if len(b) > 1 else ())
        one = 2 * int(np.prod(out)) * a[-1]
        return one * (int(needs[0]) + int(needs[1]))
    if kind == "attention":  # ∂V = Pᵀ G; ∂P = G Vᵀ (when ∂Q or ∂K is needed); ∂Q = ∂S K; ∂K = ∂Sᵀ Q
        q, k, v = shapes[0], shapes[1], shapes[2]
        scores = int(np.prod(np.broadcast_shapes(q[:-2], k[:-2]))) * q[-2] * k[-2]
        flops = 2 * scores * v[-1] * needs[2]
        if needs[0] or needs[1]:
            flops += 2 * scores * v[-1] + 2 * scores * q[-1] * (int(needs[0]) + int(needs[1]))
        return flops
    return 0
