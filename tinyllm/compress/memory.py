r"""Where the memory of training goes: parameters, gradients, optimizer state, activations.

With P parameters stored in b bytes each (4 for float32), one training step with AdamW holds

    parameters        P·b
    gradients         P·b          (one ``.grad`` per parameter, after backward)
    optimizer state   2·P·b        (AdamW's m and v; SGD with momentum: P·b; plain SGD: 0)
    activations       A·b          (what the forward keeps for the backward)

The first three do not depend on the batch; the activations grow with it. In tinyllm every
node of the graph keeps its input tensors (and whatever its backward saved) until the graph
is dropped, so A is the sum of the intermediate arrays of the forward pass. For a GPT with
L layers, width C, H heads, vocabulary V, on a batch of B sequences of T tokens (n = B·T
rows), dropout off, counting the arrays each block leaves behind:

    per block   21·n·C + B·H·T²       (19 n·C of outputs: ln_1, q, k, v, attention output and
                                       its merged copy, c_proj, residual, ln_2, c_fc (4), GELU
                                       (4), c_proj, residual; 2 n·C saved: two normalised x̂;
                                       the attention probabilities B·H·T²), plus 4·n·C with
                                       the exact GELU, which saves Φ(x) (the tanh form
                                       recomputes its tanh in the backward)
    whole model L·(per block) + 4·n·C + 2·n·V   (embeddings and their sum, ln_f with its x̂,
                                       the logits and the saved log-probabilities)

:func:`gpt_activation_bytes` computes that; :func:`graph_activation_bytes` counts what a
real graph holds (walking it from the loss); :class:`PeakMemory` measures the highest
allocation while code runs (``tracemalloc`` on NumPy, whose arrays it traces; a CuPy memory
hook on a GPU). The tests hold the three together.

Two ways to trade compute for activation memory are in :mod:`tinyllm.compress.recompute`:
gradient accumulation (k micro-batches: activations ÷ k) and activation recomputation
(keep each block's input only, recompute its inside during backward).
"""
from __future__ import annotations

import tracemalloc

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = ["parameter_bytes", "gpt_activation_bytes", "training_memory_estimate", "graph_activation_bytes",
           "PeakMemory", "measure_training_memory", "OPTIMIZER_STATES"]

# arrays of optimizer state per parameter
OPTIMIZER_STATES = {"adamw": 2, "adam": 2, "sgd_momentum": 1, "sgd": 0}


def parameter_bytes(model) -> int:
    """Bytes of the model's parameters, a tied parameter once."""
    return int(sum(p.data.nbytes for p in model.parameters()))


def gpt_activation_bytes(config, batch_size, seq_len=None, itemsize=4) -> int:
    """Bytes of activations a tinyllm GPT's graph holds after the forward pass (the formula
    of the module docstring; dropout off), for ``batch_size`` sequences of ``seq_len``
    tokens (default ``block_size``), ``itemsize`` bytes per number."""
    t = config.block_size if seq_len is None else int(seq_len)
    n, c, h = int(batch_size) * t, config.n_embd, config.n_head
    saved_gelu = 4 * n * c if config.gelu_approximate == "none" else 0   # Φ(x); tanh is recomputed
    per_block = 21 * n * c + saved_gelu + int(batch_size) * h * t * t
    numbers = config.n_layer * per_block + 4 * n * c + 2 * n * config.vocab_size
    return int(numbers * itemsize)


def training_memory_estimate(model, batch_size, seq_len=None, optimizer="adamw") -> dict:
    """Estimated bytes of one training step of a GPT: ``parameters``, ``gradients``,
    ``optimizer_state`` (``optimizer``: "adamw", "adam", "sgd_momentum" or "sgd"),
    ``activations`` and their ``total``."""
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"training_memory_estimate: optimizer must be one of {sorted(OPTIMIZER_STATES)}, "
                         f"got {optimizer!r}")
    params = parameter_bytes(model)
    itemsize = np.dtype(model.dtype).itemsize
    out = {"parameters": params, "gradients": params, "optimizer_state": OPTIMIZER_STATES[optimizer] * params,
           "activations": gpt_activation_bytes(model.config, batch_size, seq_len, itemsize)}
    out["total"] = sum(out.values())
    return out


# ----------------------------------------------------------------------------- counting a graph
def _root(array):
    while getattr(array, "base", None) is not None:
        array = array.base
    return array


def graph_activation_bytes(output) -> int:
    """Bytes of the arrays the graph behind ``output`` (e.g. the loss) keeps alive: every
    intermediate tensor and every array a backward saved, views counted once with the
    array they look into, leaves (parameters, inputs) left out. NumPy and CuPy arrays."""
    leaves, arrays, seen_nodes = set(), {}, set()
    stack = [output]
    while stack:
        t = stack.pop()
        if id(t) in seen_nodes:
            continue
        seen_nodes.add(id(t))
        fn = t._ctx
        if fn is None:
            leaves.add(id(_root(t.data)))
            continue
        arrays[id(_root(t.data))] = _root(t.data)
        for item in tuple(fn.saved or ()) + (getattr(fn, "weights", None),):
            if backend.array_device(item) is not None:
                root = _root(item)
                arrays[id(root)] = root
        for parent in fn.inputs:
            if isinstance(parent, Tensor):
                stack.append(parent)
                if parent._ctx is None:
                    leaves.add(id(_root(parent.data)))
    return int(sum(getattr(a, "nbytes", 0) for key, a in arrays.items() if key not in leaves))


# ----------------------------------------------------------------------------- measuring
class PeakMemory:
    """Measures the highest memory allocated while the ``with`` body runs, above the level
    at its start::

        with PeakMemory("cpu") as mem:
            loss = model(x, y)[1]
            loss.backward()
        mem.peak      # bytes
        mem.current   # bytes still held at the end (above the start)

    On the CPU it uses ``tracemalloc``, which NumPy reports its array buffers to (other
    Python objects count too, but arrays dominate); on "cuda" a CuPy memory hook counts the
    bytes handed out by CuPy's pool. Not reentrant: one at a time.
    """

    def __init__(self, device="cpu"):
        self.device = backend.get_device(device)
        self.peak = 0
        self.current = 0

    def __enter__(self):
        if self.device.name == "cuda":
            self._hook = _cupy_peak_hook()
            self._hook.__enter__()
        else:
            self._started = not tracemalloc.is_tracing()
            if self._started:
                tracemalloc.start()
            tracemalloc.reset_peak()
            self._start, _ = tracemalloc.get_traced_memory()
        return self

    def __exit__(self, *exc):
        if self.device.name == "cuda":
            self.device.synchronize()
            self._hook.__exit__(*exc)
            self.peak, self.current = self._hook.peak, self._hook.current
        else:
            current, peak = tracemalloc.get_traced_memory()
            self.peak, self.current = peak - self._start, current - self._start
            if self._started:
                tracemalloc.stop()
        return False


def _cupy_peak_hook():
    """A ``cupy.cuda.MemoryHook`` that follows the bytes allocated from the pool."""
    import cupy

    class PeakHook(cupy.cuda.MemoryHook):
        name = "tinyllm.PeakHook"

        def __init__(self):
            self.current = self.peak = 0

        def malloc_postprocess(self, device_id, size, mem_size, mem_ptr, pmem_id):
            self.current += mem_size
            self.peak = max(self.peak, self.current)

        def free_postprocess(self, device_id, mem_size, mem_ptr, pmem_id):
            self.current -= mem_size

    return PeakHook()


def measure_training_memory(model, loss_fn, optimizer=None) -> dict:
    """Run one training step and measure its memory, in bytes.

    ``loss_fn()`` runs the forward and returns the scalar loss; ``optimizer`` (optional)
    takes the step. Returns ``parameters``; ``activations`` (held by the graph after the
    forward: measured, and ``activations_counted`` by :func:`graph_activation_bytes`);
    ``gradients`` and ``optimizer_state`` (the arrays they hold afterwards); ``peak`` (the
    highest allocation of the whole step above where it started)."""
    device = model.device
    out = {"parameters": parameter_bytes(model)}
    for p in model.parameters():
        p.grad = None
    with PeakMemory(device) as step:
        with PeakMemory(device) as forward:
            loss = loss_fn()
        out["activations"] = forward.current
        out["activations_counted"] = graph_activation_bytes(loss)
        loss.backward()
        del loss
        if optimizer is not None:
            optimizer.step()
    out["peak"] = step.peak
    out["gradients"] = int(sum(p.grad.nbytes for p in model.parameters() if p.grad is not None))
    if optimizer is not None:
        state = [a for entry in optimizer.state.values() for a in entry.values()
                 if backend.array_device(a) is not None]
        out["optimizer_state"] = int(sum(a.nbytes for a in state))
    return out
