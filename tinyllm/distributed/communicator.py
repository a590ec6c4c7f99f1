r"""Communicators: how N processes combine their arrays.

N processes (ranks 0 … N−1) run the same program, each with its own arrays. A *collective*
is a call that every rank makes, in the same order, with arrays of the same shape and dtype
(x_r is rank r's array):

==================  ==========================================================  ==========
call                what every rank has afterwards                              ring cost
==================  ==========================================================  ==========
all_reduce(x)       x_0 + x_1 + … + x_{N−1}, written into x                     2(N−1)(α + nβ/N)
broadcast(x, root)  x_root, written into x                                      log₂N·α + 2nβ(N−1)/N
all_gather(x)       [x_0; x_1; …; x_{N−1}] (a new array, blocks along axis 0)   (N−1)(α + nβ)
reduce_scatter(x)   block r of x_0 + … + x_{N−1}: axis 0 of x cut in N blocks   (N−1)(α + nβ/N)
barrier()           nothing; it returns once every rank has called it           ≈ log₂N · α
==================  ==========================================================  ==========

The cost column is the ring algorithm's, for an n-byte x (all_gather: n bytes per rank),
with α the latency of one message and β the seconds per byte of a link. In a ring each rank
sends to its right neighbour only; all_reduce is a reduce_scatter (after N−1 steps rank r
holds the finished sum of block r) followed by an all_gather of the finished blocks, so each
rank sends 2(N−1)/N · n bytes whatever N is: the bandwidth term hardly grows with the number
of ranks, the latency term does. ``docs/distributed.md`` fits α and β on this machine.

Three backends implement the same five calls:

* :class:`SingleProcessCommunicator` — one rank; every collective is the identity. Code
  written for N ranks runs unchanged in one process.
* :class:`~tinyllm.distributed.mpi.MPICommunicator` — MPI through mpi4py, on host NumPy
  arrays. Device (CuPy) arrays are copied to the host and back explicitly (``to_host`` /
  ``to_device``), never converted behind the reader's back.
* :class:`~tinyllm.distributed.nccl.NCCLCommunicator` — NCCL through CuPy, on GPU arrays,
  one GPU per rank; MPI only starts it (rank 0's NCCL id travels by MPI broadcast).

A rank that dies or hangs must not hang the others: every collective waits at most
``timeout`` seconds and then raises :class:`CollectiveTimeout`, naming the call and the rank.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback

import numpy as np

from .. import backend

__all__ = ["Communicator", "SingleProcessCommunicator", "CollectiveTimeout", "init_communicator",
           "launched_by_mpiexec", "shard_range", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = float(os.environ.get("TINYLLM_COLLECTIVE_TIMEOUT", "300"))
_OPS = ("sum", "max")


class CollectiveTimeout(RuntimeError):
    """A collective did not finish in time: another rank died, hung, or called something else."""


class Communicator:
    """The five collectives (see the module docstring), on the arrays of one device.

    ``rank`` and ``size`` say who this process is; ``timeout`` (seconds) bounds every wait.
    Subclasses implement ``_all_reduce``, ``_broadcast``, ``_all_gather``,
    ``_reduce_scatter`` and ``_barrier`` on checked arrays; this class checks the arguments.
    """

    backend = "?"

    def __init__(self, rank: int, size: int, timeout: float | None = None):
        self.rank, self.size = int(rank), int(size)
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        if not self.timeout > 0:
            raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")

    # ---------------------------------------------------------------- the collectives
    def all_reduce(self, array, op: str = "sum"):
        """Every rank's ``array`` becomes the elementwise sum (or max) over ranks; returns it."""
        self._check(array, "all_reduce", op=op)
        return self._all_reduce(array, op)

    def broadcast(self, array, root: int = 0):
        """Every rank's ``array`` becomes rank ``root``'s; returns it."""
        self._check(array, "broadcast")
        if not (isinstance(root, (int, np.integer)) and 0 <= root < self.size):
            raise ValueError(f"broadcast: root must be a rank in [0, {self.size}), got {root!r}")
        return self._broadcast(array, int(root))

    def all_gather(self, array):
        """A new array: every rank's ``array`` (all of one shape), concatenated along axis 0
        in rank order: shape (size·n, …) for an (n, …) array."""
        self._check(array, "all_gather", min_ndim=1)
        return self._all_gather(array)

    def reduce_scatter(self, array, op: str = "sum"):
        """A new array: block ``rank`` of the sum over ranks, ``array`` (size·k, …) being cut
        into ``size`` blocks of k rows. Pad a flat buffer to a multiple of ``size`` first."""
        self._check(array, "reduce_scatter", op=op, min_ndim=1)
        if array.shape[0] % self.size:
            raise ValueError(f"reduce_scatter: axis 0 of the array ({array.shape[0]}) must be a multiple of "
                             f"the number of ranks ({self.size}); pad it")
        return self._reduce_scatter(array, op)

    def barrier(self) -> None:
        """Return once every rank has called ``barrier()``."""
        self._barrier()

    def abort(self, code: int = 1) -> None:
        """End every rank's process now (the others cannot be told any other way)."""
        os._exit(code)

    # ---------------------------------------------------------------- failures
    @contextlib.contextmanager
    def abort_on_error(self):
        """Inside this block, an exception on one rank ends all of them (after printing it
        with the rank), instead of leaving the others waiting in their next collective.
        With one rank the exception propagates as usual. ``KeyboardInterrupt`` propagates:
        the trainer makes every rank stop at the same step."""
        try:
            yield
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            if self.size == 1 or (isinstance(exc, SystemExit) and not exc.code):
                raise
            details = "".join(traceback.format_exception(exc)) if not isinstance(exc, SystemExit) else ""
            sys.stdout.flush()
            sys.stderr.write(f"{details}error on rank {self.rank} of {self.size}: {exc}\n"
                             f"ending all {self.size} ranks\n")
            sys.stderr.flush()
            self.abort(1)

    def _deadline_passed(self, start: float, what: str, detail: str = "") -> None:
        if time.monotonic() - start > self.timeout:
            raise CollectiveTimeout(
                f"rank {self.rank} of {self.size}: {what} did not finish within {self.timeout:g} s{detail}; "
                f"another rank has died, hangs, or is calling a different collective "
                f"(set TINYLLM_COLLECTIVE_TIMEOUT to wait longer)")

    def _poll(self, done, what: str, detail: str = "") -> None:
        """Wait until ``done()`` is true, or raise :class:`CollectiveTimeout`.

        MPI moves messages forward only while some call polls it, so the first 10 ms are
        polled back to back, yielding the core between polls (when ranks outnumber cores,
        the rank being waited for gets to run); a longer wait (a checkpoint being written)
        sleeps longer and longer between polls, up to 1 ms. Measured here, a 4 KB all_reduce
        on 2 ranks: 9 µs this way, 7 µs with MPI's blocking call, 0.2 ms with sleeps only."""
        start, pause = time.monotonic(), 1e-5
        while not done():
            waited = time.monotonic() - start
            if waited < 0.01:
                os.sched_yield()
                continue
            self._deadline_passed(start, what, detail)
            time.sleep(pause)
            pause = min(2 * pause, 1e-3)

    # ---------------------------------------------------------------- checks
    def _check(self, array, what, op="sum", min_ndim=0):
        if backend.array_device(array) is None:
            raise TypeError(f"{what}: expected a NumPy or device array, got {type(array).__name__} "
                            f"(pass tensor.data for a tl.Tensor)")
        if op not in _OPS:
            raise ValueError(f"{what}: op must be one of {_OPS}, got {op!r}")
        if array.ndim < min_ndim:
            raise ValueError(f"{what}: expected an array with at least {min_ndim} dimension, got a 0-d array")
        if not array.flags.c_contiguous:
            raise ValueError(f"{what}: the array must be C-contiguous (collectives read and write its memory "
                             f"directly); pass xp.ascontiguousarray(array)")

    def __repr__(self):
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class SingleProcessCommunicator(Communicator):
    """One rank: the sum over ranks of x is x. Lets N-rank code run in one process."""

    backend = "single"

    def __init__(self, timeout: float | None = None):
        super().__init__(0, 1, timeout)

    def _all_reduce(self, array, op):
        return array

    def _broadcast(self, array, root):
        return array

    def _all_gather(self, array):
        return array.copy()

    def _reduce_scatter(self, array, op):
        return array.copy()

    def _barrier(self):
        pass


def shard_range(n: int, rank: int, size: int) -> slice:
    """Rank ``rank``'s block of ``range(n)`` cut into ``size`` contiguous blocks as equal as
    possible: the first ``n % size`` ranks get one more (10 on 3 ranks: 4, 3, 3)."""
    base, extra = divmod(int(n), size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def launched_by_mpiexec() -> bool:
    """True when this process was started by an MPI launcher (MPICH's or Open MPI's mpiexec)."""
    return any(name in os.environ for name in ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE"))


def launched_world_size() -> int | None:
    """How many ranks the MPI launcher that started this process started (``-n``), or None
    when no launcher did (or it does not say)."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return None


def init_communicator(backend_name: str = "auto", timeout: float | None = None) -> Communicator:
    """The communicator for this process.

    ``"single"``: one process. ``"mpi"``: MPI (mpi4py). ``"nccl"``: NCCL on GPUs, started
    over MPI. ``"auto"``: MPI when started by ``mpiexec``, else one process.
    """
    if backend_name == "auto":
        backend_name = "mpi" if launched_by_mpiexec() else "single"
    if backend_name == "single":
        return SingleProcessCommunicator(timeout)
    if backend_name == "mpi":
        from .mpi import MPICommunicator
        return MPICommunicator(timeout=timeout)
    if backend_name == "nccl":
        from .nccl import NCCLCommunicator
        return NCCLCommunicator(timeout=timeout)
    raise ValueError(f"backend must be 'auto', 'single', 'mpi' or 'nccl', got {backend_name!r}")
