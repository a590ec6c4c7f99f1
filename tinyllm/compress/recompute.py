r"""Trading compute for memory: activation recomputation and gradient accumulation.

Activation recomputation ("gradient checkpointing", Chen et al. 2016)
---------------------------------------------------------------------
A training step keeps every intermediate array of the forward pass until the backward pass
has used it (see :mod:`tinyllm.compress.memory`). Recomputing a segment (one Transformer
block) keeps only its *input*: the forward runs the block under ``no_grad`` (so nothing
inside is recorded or kept); when the backward reaches the block, it runs the block's
forward again, this time recording the graph, and backpropagates through that::

    forward:   y = block(x)                 no graph inside; x is saved
    backward:  ŷ = block(x) (recorded)      the same numbers again
               ∂L/∂x, ∂L/∂θ  =  backward of ŷ with the incoming ∂L/∂y

Only one block's intermediates are alive at a time, so the activation memory of L blocks
drops from L blocks' worth to L block inputs plus one block's worth; the price is one extra
forward pass per step (about a third more compute). The gradients are the same numbers:
the recomputation repeats the forward exactly, dropout masks included (the random stream
is replayed).

    recompute_blocks(model)            # every GPT Block (or encoder/decoder layer) from now on
    recompute_blocks(model, False)     # back to normal
    y = recompute(block, x)            # one call

Gradient accumulation
---------------------
A batch of B examples split into k micro-batches of B/k: run forward and backward on each
with the loss divided by k, let the gradients add up in ``.grad``, and step once. For a mean
loss over equal micro-batches,

    ∂/∂θ  mean_B(ℓ)  =  Σ_j  (1/k) ∂/∂θ mean_{B/k, j}(ℓ)

so the step is the big batch's step, while only one micro-batch's activations exist at a
time. See :func:`accumulate_gradients` and :func:`split_batch`.
"""
from __future__ import annotations

import numpy as np

from ..nn.module import Module
from ..tensor import Function, Tensor, enable_grad, is_grad_enabled, no_grad
from ..models.gpt import KVCache

__all__ = ["recompute", "recompute_blocks", "transformer_blocks", "Recompute",
           "accumulate_gradients", "split_batch"]


# ----------------------------------------------------------------------------- recomputation
class _ReplayableRandomness:
    """Lets the recomputation draw the very same random numbers (dropout masks) as the
    forward pass did: a snapshot of the device's generator, restored around the rerun.

    NumPy generators expose their state; CuPy's ``RandomState`` does not, so there the
    segment runs on a generator of its own, seeded from the device's stream."""

    def __init__(self, device):
        self.device = device
        generator = device.generator
        if isinstance(generator, np.random.Generator):
            self.state, self.seed = generator.bit_generator.state, None
        else:
            self.state, self.seed = None, int(generator.randint(0, 2 ** 31 - 1))

    def first_run(self, fn):
        """The forward pass: it draws from the device's stream as usual (on NumPy), or from
        the segment's own generator (elsewhere)."""
        if self.seed is None:
            return fn()
        return self.run(fn)

    def run(self, fn):
        """The recomputation: the same draws again; the device's stream is left as it was."""
        generator = self.device.generator
        if self.seed is None:
            current = generator.bit_generator.state
            generator.bit_generator.state = self.state
            try:
                return fn()
            finally:
                generator.bit_generator.state = current
        segment_generator = type(generator)(self.seed)
        self.device._generator = segment_generator  # the segment's own stream, then back
        try:
            return fn()
        finally:
            self.device._generator = generator


class Recompute(Function):
    """One recomputed segment as one node of the graph.

    Inputs: the segment's tensor arguments, then its parameters. ``forward`` runs the
    segment without recording; ``backward`` reruns it with recording and backpropagates
    ``grad_out`` through the rerun, returning the gradients of the arguments and of the
    parameters (which the engine then adds into ``.grad`` as for any node)."""

    def forward(self, *arrays, run, n_args, parameters):
        randomness = _ReplayableRandomness(self.device)
        args = [Tensor._wrap(a, self.device) for a in arrays[:n_args]]
        with no_grad():
            out = randomness.first_run(lambda: run(*args))
        if not isinstance(out, Tensor):
            raise TypeError(f"recompute: the segment must return one Tensor, got {type(out).__name__}")
        self.save(arrays[:n_args], run, parameters, randomness)
        return out.data

    def backward(self, g):
        arrays, run, parameters, randomness = self.saved
        n_args = len(arrays)
        args = [Tensor._wrap(a, self.device, requires_grad=bool(need))
                for a, need in zip(arrays, self.needs_grad[:n_args])]
        # the segment's parameters collect the rerun's gradients on their own: keep what
        # they already hold (earlier micro-batches, other uses) aside meanwhile
        kept = [p.grad for p in parameters]
        for p in parameters:
            p.grad = None
        try:
            with enable_grad():
                out = randomness.run(lambda: run(*args))
            if out.requires_grad:
                out.backward(g)
            grads = [a.grad if a.requires_grad else None for a in args]
            grads += [p.grad if need else None for p, need in zip(parameters, self.needs_grad[n_args:])]
        finally:
            for p, grad in zip(parameters, kept):
                p.grad = grad
        return tuple(grads)


def recompute(segment, *args, parameters=None, **kwargs):
    """``segment(*args, **kwargs)`` with activation recomputation (see the module docstring).

    ``segment``: a Module (its parameters are found), or a function of tensors together with
    ``parameters``, the list of every parameter it uses (a parameter left out would get no
    gradient). Tensor arguments become inputs of the graph; other arguments (masks, flags)
    are passed through unchanged. Returns one Tensor. Without gradient recording (under
    ``no_grad``) it is a plain call."""
    if parameters is None:
        if not isinstance(segment, Module):
            raise TypeError("recompute: pass parameters=[...] with a plain function (or give a Module)")
        parameters = list(segment.parameters())
    parameters = list(dict.fromkeys(parameters))  # a tied parameter once, in order
    if not is_grad_enabled():
        return segment(*args, **kwargs)
    tensor_slots = [i for i, a in enumerate(args) if isinstance(a, Tensor)]

    def run(*tensors):
        full = list(args)
        for i, t in zip(tensor_slots, tensors):
            full[i] = t
        return segment(*full, **kwargs)

    return Recompute.apply(*(args[i] for i in tensor_slots), *parameters,
                            run=run, n_args=len(tensor_slots), parameters=parameters)


class _RecomputedForward:
    """Replaces a block's ``forward`` (as an instance attribute): recomputed when a graph
    is being recorded and no KV cache is in use, the plain forward otherwise."""

    def __init__(self, block):
        self.block = block

    def __call__(self, *args, **kwargs):
        plain = type(self.block).forward.__get__(self.block)
        uses_cache = any(isinstance(a, KVCache) for a in list(args) + list(kwargs.values()))
        if not is_grad_enabled() or uses_cache:
            return plain(*args, **kwargs)
        return recompute(plain, *args, parameters=list(self.block.parameters()), **kwargs)


def transformer_blocks(model):
    """The repeated blocks of ``model``: a GPT's ``transformer.h``, a TransformerModel's
    encoder and decoder layers, an ``nn.TransformerEncoder``/``Decoder``'s ``layers``."""
    if hasattr(model, "transformer") and hasattr(model.transformer, "h"):
        return list(model.transformer.h)
    if hasattr(model, "encoder") and hasattr(model, "decoder"):
        return list(model.encoder.layers) + list(model.decoder.layers)
    if hasattr(model, "layers"):
        return list(model.layers)
    raise ValueError(f"recompute_blocks: {type(model).__name__} has no Transformer blocks that tinyllm knows "
                     f"(a GPT's transformer.h, a TransformerModel's encoder/decoder layers)")


def recompute_blocks(model, enabled=True):
    """Turn activation recomputation on (or off) for every Transformer block of ``model``,
    in place; returns ``model``. Parameter names and the state dict do not change."""
    for block in transformer_blocks(model):
        if enabled:
            object.__setattr__(block, "forward", _RecomputedForward(block))
        else:
            block.__dict__.pop("forward", None)
    return model


# ----------------------------------------------------------------------------- accumulation
def split_batch(k, *arrays):
    """Split each array (or tensor) along its first axis into ``k`` equal micro-batches:
    a list of ``k`` tuples. The batch size must be divisible by ``k``."""
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"split_batch: k must be a positive integer, got {k!r}")
    n = arrays[0].shape[0]
    if n % k:
        raise ValueError(f"split_batch: a batch of {n} does not split into {k} equal micro-batches")
    size = n // k
    return [tuple(a[j * size:(j + 1) * size] for a in arrays) for j in range(k)]


def accumulate_gradients(loss_fn, micro_batches):
    """Forward and backward over each micro-batch with the loss divided by their number,
    so that the gradients add up (in ``.grad``) to those of the mean loss over the whole
    batch. ``loss_fn(*micro_batch)`` returns a scalar mean loss. Returns the mean of the
    micro-batch losses (a float). Zero the gradients before, step after."""
    micro_batches = list(micro_batches)
    if not micro_batches:
        raise ValueError("accumulate_gradients: no micro-batches")
    k, total = len(micro_batches), 0.0
    for batch in micro_batches:
        loss = loss_fn(*batch)
        (loss * (1.0 / k)).backward()
        total += loss.item()
    return total / k
