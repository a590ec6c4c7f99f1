r"""ZeRO stage 1: AdamW whose state is cut into N shards, one per rank.

Data parallelism keeps N identical copies of everything: parameters, gradients, and AdamW's
two moments m and v, which are twice the parameters. ZeRO (Rajbhandari et al., 2020) notes
that the update θ ← AdamW(θ, g, m, v) is elementwise, so element i needs only its own
θ_i, g_i, m_i, v_i. Lay all P parameters end to end, cut the line into N blocks of
k = ⌈P/N⌉ numbers, and let rank r update block r only:

    reduce_scatter(g)   rank r receives block r of Σ_r w_r g_r       (a ring: (N−1)/N · P numbers sent)
    AdamW on block r    with m, v of block r only                    (2k numbers of state, not 2P)
    all_gather(θ)       every rank receives every updated block      ((N−1)/N · P numbers sent)

reduce_scatter followed by all_gather is exactly what an all-reduce does inside, so this
sends as many bytes as plain data parallelism, and the optimizer state per rank drops from
2P to 2P/N numbers. (Stage 2 shards the gradients too, stage 3 the parameters.)

The update of block r is an ordinary :class:`~tinyllm.optim.AdamW` over 1-D tensors that are
this rank's stretches of the parameters (a parameter may straddle two blocks), so the
arithmetic is AdamW's, number for number: after k steps the parameters equal plain AdamW's.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..optim import AdamW
from ..tensor import Tensor
from .communicator import Communicator
from .data_parallel import FlatBuffer

__all__ = ["ZeroRedundancyAdamW"]


class ZeroRedundancyAdamW:
    """AdamW with its state sharded over ``communicator``'s ranks (ZeRO-1).

    ``ZeroRedundancyAdamW(params, communicator, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
    weight_decay=0.01, max_grad_norm=None)``: the arguments of :class:`~tinyllm.optim.AdamW`
    (parameter groups included), plus ``max_grad_norm`` to clip the summed gradient by its
    global norm (from the blocks' squared norms, all-reduced) before the update. Every rank
    passes the same parameters, of one dtype and device, equal on all ranks at the start
    (:func:`~tinyllm.distributed.broadcast_parameters`).

    It replaces :meth:`DistributedDataParallel.sync_gradients`: after the local
    ``loss.backward()``, ``step(weight)`` reduce-scatters the local gradients scaled by
    ``weight`` (default 1/N), updates this rank's block and all-gathers the parameters back
    into every rank's tensors. :meth:`state_dict` gathers the state into
    :class:`~tinyllm.optim.AdamW`'s format, so a checkpoint moves between world sizes, and
    between sharded and plain AdamW.
    """

    def __init__(self, params, communicator: Communicator, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.01, max_grad_norm: float | None = None):
        # a plain AdamW checks the groups and hyperparameters; its own state stays empty
        self.optimizer = AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.param_groups = self.optimizer.param_groups
        self.params = [p for group in self.param_groups for p in group["params"]]
        if len({(str(p.dtype), p.device) for p in self.params}) > 1:
            raise TypeError(f"ZeroRedundancyAdamW needs parameters of one dtype and device, got "
                            f"{sorted({(str(p.dtype), p.device) for p in self.params})}")
        self.communicator, self.max_grad_norm, self.last_grad_norm = communicator, max_grad_norm, None
        # the line of numbers: every parameter that can have a gradient, in group order
        self.laid_out = [index for index, p in enumerate(self.params) if p.requires_grad]
        n, total = communicator.size, sum(self.params[index].size for index in self.laid_out)
        self.block = math.ceil(total / n)                       # k numbers per rank
        self.flat = FlatBuffer([self.params[i] for i in self.laid_out], extra=n * self.block - total)  # N·k
        self.start = communicator.rank * self.block              # this rank's block: [start, start + k)
        self.shard = self.params[0].xp.zeros(self.block, dtype=self.params[0].dtype)
        # the stretches of parameters inside the block, each a 1-D tensor viewing self.shard:
        # (tensor, parameter index, start and stop in the flattened parameter, start in the block)
        self.pieces = []
        for index, lo, hi in self._stretches():
            a, b = max(lo, self.start), min(hi, self.start + self.block)
            if a < b:
                at = a - self.start
                self.pieces.append((Tensor(self.shard[at:at + b - a]), index, a - lo, b - lo, at))
        group_of = [g for g, group in enumerate(self.param_groups) for _ in group["params"]]
        local_groups = [{**self._hyperparameters(group),
                         "params": [t for t, index, *_ in self.pieces if group_of[index] == g]}
                        for g, group in enumerate(self.param_groups)]
        # the update of the block: an ordinary AdamW over the pieces (none if the block is padding)
        self.local = AdamW(local_groups) if self.pieces else None

    def _stretches(self):
        """(parameter index, start, stop) of each laid-out parameter on the line."""
        return zip(self.laid_out, self.flat.offsets[:-1], self.flat.offsets[1:])

    @staticmethod
    def _hyperparameters(group):
        return {k: v for k, v in group.items() if k != "params"}

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none)

    def state_nbytes(self) -> int:
        """Bytes of optimizer state this rank holds (m and v of its block)."""
        state = self.local.state.values() if self.local else ()
        return sum(v.nbytes for entry in state for v in entry.values() if hasattr(v, "nbytes"))

    # ------------------------------------------------------------------ the step
    def step(self, weight: float | None = None) -> None:
        """reduce_scatter the gradients, AdamW on this rank's block, all_gather the parameters."""
        comm, flat = self.communicator, self.flat
        self.optimizer._check_gradients()
        flat.pack([p.grad for p in flat.tensors])
        flat.array *= 1.0 / comm.size if weight is None else float(weight)
        grad_block = comm.reduce_scatter(flat.array)
        # a parameter no rank has a gradient for is skipped, as plain AdamW skips grad = None
        had_grad = np.array([p.grad is not None for p in self.params], dtype=np.float64)
        comm.all_reduce(had_grad)
        if self.max_grad_norm is not None:
            self.last_grad_norm = self._clip(grad_block)
        for tensor, index, lo, hi, at in self.pieces:
            tensor.data[...] = self.params[index].data.reshape(-1)[lo:hi]  # the parameters are the truth
            tensor.grad = grad_block[at:at + hi - lo] if had_grad[index] else None
        if self.local is not None:
            for group, local in zip(self.param_groups, self.local.param_groups):
                local.update(self._hyperparameters(group))  # a schedule may have changed lr
            self.local.step()
            for tensor, *_ in self.pieces:
                tensor.grad = None  # views of grad_block: let it go
        gathered = comm.all_gather(self.shard)
        for index, lo, hi in self._stretches():
            if had_grad[index]:
                p = self.params[index]
                p.data[...] = gathered[lo:hi].reshape(p.shape)
                p.bump_version()

    def _clip(self, grad_block) -> float:
        """clip_grad_norm_ on the summed gradient, from the blocks: ‖g‖² = Σ_r ‖block_r‖²."""
        squares = np.array([float(self.params[0].xp.vdot(grad_block, grad_block))])
        self.communicator.all_reduce(squares)
        total_norm = math.sqrt(squares[0])
        coef = self.max_grad_norm / (total_norm + 1e-6)  # clip_grad_norm_'s formula
        if not coef >= 1.0:
            grad_block *= coef
        return total_norm

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, copy: bool = True) -> dict:
        """The whole state, gathered from all ranks, in AdamW's ``state_dict`` format
        (host arrays, new ones whatever ``copy`` says). A collective: every rank must call it."""
        comm, xp = self.communicator, self.params[0].xp
        local_state = self.local.state if self.local else {}
        steps = np.zeros(len(self.params))
        for tensor, index, *_ in self.pieces:
            if tensor in local_state:
                steps[index] = local_state[tensor]["step"]
        comm.all_reduce(steps, op="max")
        state = {index: {"step": int(step)} for index, step in enumerate(steps) if step > 0}
        for name in ("exp_avg", "exp_avg_sq"):
            block = xp.zeros_like(self.shard)
            for tensor, index, lo, hi, at in self.pieces:
                if tensor in local_state:
                    block[at:at + hi - lo] = local_state[tensor][name]
            full = backend.to_host(comm.all_gather(block))
            for index, lo, hi in self._stretches():
                if index in state:
                    state[index][name] = full[lo:hi].reshape(self.params[index].shape).copy()
        return {"state": state, "param_groups": self.optimizer.state_dict()["param_groups"]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a full AdamW ``state_dict`` (from this class or from plain AdamW): each rank
        keeps the stretches of its block."""
        saved_groups = state_dict["param_groups"]
        if [len(g["params"]) for g in saved_groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(f"the state dict's parameter groups hold {[len(g['params']) for g in saved_groups]} "
                             f"parameters, this optimizer's {[len(g['params']) for g in self.param_groups]}")
        for saved, group in zip(saved_groups, self.param_groups):
            group.update({k: tuple(v) if isinstance(group.get(k), tuple) else v
                          for k, v in saved.items() if k != "params"})
        order = [int(i) for g in saved_groups for i in g["params"]]  # saved index of each parameter
        state = {int(k): v for k, v in state_dict["state"].items()}
        device = self.params[0].device
        new_state = {}
        for tensor, index, lo, hi, _ in self.pieces:
            saved = state.get(order[index])
            if saved is None:
                continue
            entry = {"step": int(saved["step"])}
            for name in ("exp_avg", "exp_avg_sq"):
                host = np.asarray(backend.to_host(saved[name]), dtype=self.params[index].dtype).reshape(-1)
                if host.size != self.params[index].size:
                    raise ValueError(f"state {name!r} of parameter {order[index]} has {host.size} numbers, "
                                     f"the parameter {self.params[index].size}")
                entry[name] = backend.to_device(host[lo:hi].copy(), device)
            new_state[tensor] = entry
        if self.local is not None:
            self.local.state = new_state
