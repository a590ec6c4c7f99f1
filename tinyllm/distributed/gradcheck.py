r"""Gradient checks for functions that all ranks compute together (tensor parallelism).

:func:`tinyllm.gradcheck` perturbs one input and watches one loss. Across ranks, two
questions need care: *what is the loss*, and *which copies move together*.

* An output is **replicated** (every rank holds the same y, e.g. after g) or **sharded**
  (rank r holds its own part y_r, e.g. after a column-parallel layer). With a random
  cotangent v the loss is L = Σ v ⊙ y for a replicated output (the same v on every rank,
  L counted once) and L = Σ_r Σ v_r ⊙ y_r for a sharded one (an all-reduce of the ranks'
  scalars).
* An input is **replicated** (one tensor with a copy on every rank: the copies move
  together, so a perturbation is made on every rank at once) or **sharded** (each rank's own
  tensor, e.g. its block of a weight: perturbed on one rank at a time, the others still).

The analytic gradient is what each rank's ``backward`` of its own Σ v_r ⊙ y_r leaves in its
inputs' ``.grad``: the collectives' backward rules are exactly what make it equal ∂L/∂x.
Every rank must call this function with inputs of the same shapes, except sharded inputs.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..gradcheck import GradcheckError
from ..tensor import Tensor, no_grad
from .communicator import Communicator

__all__ = ["parallel_gradcheck"]


def parallel_gradcheck(fn, inputs, communicator: Communicator, sharded=(), output="replicated",
                       eps=1e-6, atol=1e-5, rtol=1e-4, seed=0) -> bool:
    """Check every rank's gradients of ``fn(*inputs)`` against central differences of the
    global loss (module docstring). ``sharded``: the indices of the sharded inputs;
    ``output``: "replicated" or "sharded". Inputs with ``requires_grad`` are checked (float64).
    Returns True, or raises :class:`~tinyllm.GradcheckError` on the rank where a gradient
    is wrong, naming the input, its owner rank, the index and both values."""
    comm = communicator
    if output not in ("replicated", "sharded"):
        raise ValueError(f"output must be 'replicated' or 'sharded', got {output!r}")
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"parallel_gradcheck: input {i} is {inputs[i].dtype}; use float64")
    with no_grad():
        out = fn(*inputs)
    rng = np.random.default_rng(seed + (comm.rank if output == "sharded" else 0))
    cotangent = Tensor(backend.to_device(rng.standard_normal(out.shape), out.device))

    def global_loss():
        with no_grad():
            local = np.array([float((fn(*inputs) * cotangent).sum().item())])
        return float(comm.all_reduce(local)[0]) if output == "sharded" else float(local[0])

    for x in inputs:
        if isinstance(x, Tensor):
            x.grad = None
    (fn(*inputs) * cotangent).sum().backward()
    failures = []
    for i in checked:
        x = inputs[i]
        analytic = backend.to_host(x.grad) if x.grad is not None else np.zeros(x.shape)
        if not x.data.flags.c_contiguous:
            x.data = x.xp.ascontiguousarray(x.data)
        flat = x.data.reshape(-1)
        # who perturbs in turn: a sharded input's owner ranks one by one, a replicated input all at once
        sizes = np.array([x.size if r == comm.rank else 0 for r in range(comm.size)], dtype=np.float64)
        owners = list(range(comm.size)) if i in sharded else [None]
        if i in sharded:
            comm.all_reduce(sizes)
        numeric = np.zeros(x.size)
        for owner in owners:
            count = x.size if owner is None else int(sizes[owner])
            mine = owner is None or owner == comm.rank
            for j in range(count):
                original = float(flat[j].item()) if mine else None
                losses = []
                for step in (eps, -eps):
                    if mine:
                        flat[j] = original + step
                    losses.append(global_loss())
                if mine:
                    flat[j] = original
                    numeric[j] = (losses[0] - losses[1]) / (2 * eps)
        bad = ~np.isclose(analytic.reshape(-1), numeric, atol=atol, rtol=rtol)
        if bad.any():
            j = int(np.argmax(bad))
            failures.append(f"input {i} ({'sharded' if i in sharded else 'replicated'}, shape {x.shape}) on rank "
                            f"{comm.rank} of {comm.size}, flat index {j}: analytic {analytic.reshape(-1)[j]:.10g}, "
                            f"numeric {numeric[j]:.10g} ({int(bad.sum())} of {x.size} elements differ)")
    if failures:
        raise GradcheckError("parallel_gradcheck failed for " + "; ".join(failures))
    return True
