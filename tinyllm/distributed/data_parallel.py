r"""Data parallelism: N copies of one model, each on a slice of the batch.

The loss of a batch of B rows is the mean of the rows' losses, so if rank r trains on b_r
of the rows (Σ b_r = B) and computes the mean L_r over its own rows,

    L = Σ_r (b_r / B) · L_r        and so        ∇L = Σ_r (b_r / B) · ∇L_r.

Each rank scales its gradient by its weight w_r = b_r / B (= 1/N when the rows split
evenly), an all-reduce sums the scaled gradients, and every rank then holds ∇L, exactly the
gradient one process would compute on the whole batch. With the same parameters, the same
gradient and the same optimizer, every rank makes the same update, so the copies never drift
apart; they only need to start equal (a broadcast from rank 0).

Summing one array per parameter would cost one collective (and its latency α) per
parameter; as ChainerMN and torch's DDP do, the gradients are packed into one flat buffer,
reduced in one call, and unpacked.

::

    comm = init_communicator()                   # under mpiexec: MPI
    model = DistributedDataParallel(GPT(config), comm)   # rank 0's weights everywhere
    optimizer = AdamW(model.parameters(), lr=1e-3)
    x, y = dataset.get_batch(B, rng)             # the same global batch on every rank (same seed)
    rows, weight = batch_share(B, comm.rank, comm.size)
    _, loss = model(x[rows], y[rows])
    optimizer.zero_grad()
    model.backward(loss, weight)                 # loss.backward(), then the all-reduce
    optimizer.step()

torch's DDP starts the all-reduce from hooks inside ``backward``; tinyllm's engine has no
hooks, so :meth:`DistributedDataParallel.backward` is the visible line where it happens.
"""
from __future__ import annotations

import contextlib

import numpy as np

from .. import backend
from ..nn import Module
from ..tensor import Tensor
from .communicator import Communicator, SingleProcessCommunicator, shard_range

__all__ = ["DistributedDataParallel", "batch_share", "broadcast_parameters", "FlatBuffer"]


def batch_share(batch_size: int, rank: int, size: int) -> tuple[slice, float]:
    """The rows of a global batch that ``rank`` trains on, and its weight ``rows / batch_size``.

    Contiguous blocks as equal as possible: the first ``batch_size % size`` ranks get one row
    more (10 rows on 3 ranks: 4, 3, 3)."""
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= size):
        raise ValueError(f"the global batch ({batch_size!r} rows) must have at least one row per rank "
                         f"({size} ranks)")
    rows = shard_range(batch_size, rank, size)
    return rows, (rows.stop - rows.start) / batch_size


class FlatBuffer:
    """Tensors of one dtype and device laid end to end in one flat array (plus ``extra``
    elements at the end): :meth:`pack` copies arrays in, :meth:`views` gives each tensor's
    stretch of it back in the tensor's shape."""

    def __init__(self, tensors, extra: int = 0):
        self.tensors = list(tensors)
        first = self.tensors[0]
        self.offsets = np.cumsum([0] + [t.size for t in self.tensors]).tolist()
        self.size = self.offsets[-1]
        self.array = first.xp.zeros(self.size + extra, dtype=first.dtype)

    def pack(self, arrays) -> None:
        """Copy ``arrays`` (one per tensor, or None for zeros) into the buffer, in order."""
        for array, start, stop in zip(arrays, self.offsets[:-1], self.offsets[1:]):
            if array is None:
                self.array[start:stop] = 0
            else:
                self.array[start:stop] = array.reshape(-1)

    def views(self):
        """One view of the buffer per tensor, shaped like it (no copies)."""
        return [self.array[start:stop].reshape(t.shape)
                for t, start, stop in zip(self.tensors, self.offsets[:-1], self.offsets[1:])]


def _by_dtype(tensors):
    groups = {}
    for t in tensors:
        groups.setdefault(np.dtype(t.dtype), []).append(t)
    return list(groups.values())


def _check_same_layout(tensors, comm: Communicator, what: str) -> None:
    """Refuse to go on if the ranks hold different tensors (a collective on buffers of
    different sizes would fail obscurely, or hang)."""
    if comm.size == 1:
        return
    sizes = [len(tensors), sum(t.size for t in tensors)]
    both = np.array(sizes + [-s for s in sizes], dtype=np.float64)
    comm.all_reduce(both, op="max")
    if both[0] != -both[2] or both[1] != -both[3]:
        raise ValueError(f"{what}: the ranks hold different models: between {int(-both[2])} and {int(both[0])} "
                         f"tensors, {int(-both[3])} to {int(both[1])} numbers; every rank must build the same model")


def broadcast_parameters(module: Module, comm: Communicator, root: int = 0) -> None:
    """Copy rank ``root``'s parameters and buffers into every rank's ``module``, in place
    (one packed broadcast per dtype). Written tensors' version counters are bumped."""
    tensors = list(module.parameters()) + list(module.buffers())
    _check_same_layout(tensors, comm, "broadcast_parameters")
    if comm.size == 1:
        return
    for group in _by_dtype(tensors):
        flat = FlatBuffer(group)
        if comm.rank == root:
            flat.pack([t.data for t in group])
        comm.broadcast(flat.array, root)
        if comm.rank != root:
            for t, view in zip(group, flat.views()):
                t.data[...] = view
                t.bump_version()


class DistributedDataParallel(Module):
    """``module`` replicated on every rank, its gradients averaged over the ranks.

    At construction, rank 0's parameters and buffers are broadcast to all ranks.
    ``forward`` is the module's. After the local backward, :meth:`sync_gradients` turns each
    rank's gradient into the weighted sum over ranks (see the module docstring);
    :meth:`backward` does both. Parameters with ``requires_grad=False`` are left out; a
    tensor reached under two names (tied weights) is one parameter, reduced once; a
    parameter that no rank's backward reached keeps ``grad = None`` (as in one process).

    ``state_dict()`` names are prefixed ``module.`` as in torch; save ``ddp.module`` to get
    the names of the model itself (what tinyllm's trainer does).
    """

    def __init__(self, module: Module, communicator: Communicator | None = None):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a tl.nn.Module, got {type(module).__name__}")
        self.module = module
        self.communicator = communicator or SingleProcessCommunicator()
        broadcast_parameters(module, self.communicator)
        self._trainable = [p for p in module.parameters() if p.requires_grad]
        self._buffers_for_gradients = None  # made at the first sync: FlatBuffer per dtype
        self._sync = True

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Inside, :meth:`backward` only accumulates local gradients (gradient accumulation):
        the all-reduce happens at the first :meth:`backward` after the block, on the sum of
        all the micro-batches' gradients, and its ``weight`` scales that whole sum. So either
        every rank's micro-batches are equal shares (scale each loss by 1/k for k
        micro-batches, keep the default weight 1/N), or scale each micro-batch's loss by its
        rows' share of the whole global batch and pass ``weight=1`` to the last backward."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    def backward(self, loss: Tensor, weight: float | None = None) -> None:
        """``loss.backward()``, then (outside :meth:`no_sync`) :meth:`sync_gradients`."""
        loss.backward()
        if self._sync:
            self.sync_gradients(weight)

    def sync_gradients(self, weight: float | None = None) -> None:
        r"""Every rank's gradients become Σ_r w_r ∇L_r, w_r = ``weight`` (default 1/N).

        One all-reduce per dtype of one flat buffer: the scaled gradients, then one count per
        parameter of the ranks that had a gradient for it (0 on all ranks: ``grad`` stays None)."""
        comm = self.communicator
        weight = 1.0 / comm.size if weight is None else float(weight)
        if self._buffers_for_gradients is None:
            self._buffers_for_gradients = [FlatBuffer(group, extra=len(group)) for group in _by_dtype(self._trainable)]
        for flat in self._buffers_for_gradients:
            flat.pack([p.grad for p in flat.tensors])
            flat.array[:flat.size] *= weight
            counts = flat.array[flat.size:]
            had_grad = np.array([p.grad is not None for p in flat.tensors], dtype=counts.dtype)
            counts[...] = backend.to_device(had_grad, flat.tensors[0].device)
            comm.all_reduce(flat.array)
            for p, view, count in zip(flat.tensors, flat.views(), backend.to_host(counts)):
                if not count:
                    p.grad = None
                elif p.grad is None:
                    p.grad = view.copy()
                else:
                    p.grad[...] = view

    def extra_repr(self):
        return f"ranks={self.communicator.size}, backend={self.communicator.backend}"
