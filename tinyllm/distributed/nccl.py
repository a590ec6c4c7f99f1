"""NCCL: the collectives on GPU arrays, one GPU per rank, through CuPy's ``cupy.cuda.nccl``.

NCCL moves GPU memory directly between GPUs (NVLink, PCIe, InfiniBand) without a detour
through the host. It does not start processes or find its peers: MPI does that. As in
ChainerMN, rank 0 asks NCCL for a unique id (128 bytes), MPI broadcasts it, and every rank
joins the NCCL communicator with it::

    mpiexec -n 4 python -m tinyllm train --device cuda --distributed nccl

Each rank uses GPU ``local_rank % number of GPUs`` (NCCL refuses two ranks on one GPU).
Small host arrays (a loss to print, a flag, a count) still travel by MPI: a collective on a
NumPy array is the MPI communicator's.
NCCL calls are queued on the current CUDA stream and return at once; a CUDA event recorded
after each call is polled until the call is done, or until ``timeout``, when the NCCL
communicator is aborted and :class:`CollectiveTimeout` raised.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .communicator import Communicator
from .mpi import MPICommunicator

__all__ = ["NCCLCommunicator"]


def _import_nccl():
    try:
        import cupy
        from cupy.cuda import nccl
    except ImportError as exc:
        raise ImportError(f"the NCCL backend needs CuPy with NCCL (pip install cupy-cuda12x nvidia-nccl-cu12); "
                          f"the import failed with: {exc}") from None
    if not getattr(nccl, "available", True):
        raise ImportError("this CuPy was built without NCCL: pip install nvidia-nccl-cu12")
    return cupy, nccl


class NCCLCommunicator(Communicator):
    """The collectives over NCCL, on CuPy arrays; ``mpi`` (default: a new
    :class:`MPICommunicator` on COMM_WORLD) starts it and serves ``abort``."""

    backend = "nccl"

    def __init__(self, mpi: MPICommunicator | None = None, timeout: float | None = None, gpu: int | None = None):
        cupy, nccl = _import_nccl()
        if not backend.cuda_available():
            backend.get_device("cuda")  # raises, saying why there is no GPU
        mpi = mpi or MPICommunicator(timeout=timeout)
        super().__init__(mpi.rank, mpi.size, timeout if timeout is not None else mpi.timeout)
        self.mpi, self.cupy, self.nccl = mpi, cupy, nccl
        self.gpu = mpi.local_rank() % cupy.cuda.runtime.getDeviceCount() if gpu is None else int(gpu)
        cupy.cuda.Device(self.gpu).use()
        unique_id = np.zeros(128, dtype=np.int8)  # NCCL_UNIQUE_ID_BYTES
        if self.rank == 0:
            unique_id[:] = nccl.get_unique_id()
        mpi.broadcast(unique_id, root=0)
        self.nccl_comm = nccl.NcclCommunicator(self.size, tuple(int(b) for b in unique_id), self.rank)
        self._dtypes = {np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.float32): nccl.NCCL_FLOAT32,
                        np.dtype(np.float64): nccl.NCCL_FLOAT64, np.dtype(np.int32): nccl.NCCL_INT32,
                        np.dtype(np.int64): nccl.NCCL_INT64}
        self._ops = {"sum": nccl.NCCL_SUM, "max": nccl.NCCL_MAX}

    def abort(self, code: int = 1) -> None:
        self.mpi.abort(code)

    # ---------------------------------------------------------------- helpers
    def _arguments(self, array, what):
        """(pointer, dtype code, stream pointer) of a CuPy ``array``, or a clear error."""
        if not isinstance(array, self.cupy.ndarray):
            raise TypeError(f"{what}: NCCL works on CuPy arrays (device='cuda'), got {type(array).__name__}")
        if array.dtype not in self._dtypes:
            raise TypeError(f"{what}: NCCL has no type for {array.dtype}; expected one of "
                            f"{sorted(str(d) for d in self._dtypes)}")
        return array.data.ptr, self._dtypes[array.dtype], self.cupy.cuda.get_current_stream().ptr

    def _wait(self, what, array):
        """Poll an event recorded after the queued NCCL call; abort NCCL on timeout."""
        event = self.cupy.cuda.get_current_stream().record()

        def done():
            self.nccl_comm.check_async_error()  # a peer's failure reported by NCCL
            return event.done
        try:
            self._poll(done, what, f" ({array.dtype} array of shape {array.shape}, NCCL)")
        except Exception:
            self.nccl_comm.abort()  # the queued kernel would otherwise wait forever on the GPU
            raise

    # ---------------------------------------------------------------- the collectives
    def _all_reduce(self, array, op):
        if isinstance(array, np.ndarray):
            return self.mpi.all_reduce(array, op)
        ptr, dtype, stream = self._arguments(array, "all_reduce")
        self.nccl_comm.allReduce(ptr, ptr, array.size, dtype, self._ops[op], stream)
        self._wait("all_reduce", array)
        return array

    def _broadcast(self, array, root):
        if isinstance(array, np.ndarray):
            return self.mpi.broadcast(array, root)
        ptr, dtype, stream = self._arguments(array, "broadcast")
        self.nccl_comm.broadcast(ptr, ptr, array.size, dtype, root, stream)
        self._wait("broadcast", array)
        return array

    def _all_gather(self, array):
        if isinstance(array, np.ndarray):
            return self.mpi.all_gather(array)
        ptr, dtype, stream = self._arguments(array, "all_gather")
        out = self.cupy.empty((self.size * array.shape[0],) + array.shape[1:], dtype=array.dtype)
        self.nccl_comm.allGather(ptr, out.data.ptr, array.size, dtype, stream)
        self._wait("all_gather", array)
        return out

    def _reduce_scatter(self, array, op):
        if isinstance(array, np.ndarray):
            return self.mpi.reduce_scatter(array, op)
        ptr, dtype, stream = self._arguments(array, "reduce_scatter")
        out = self.cupy.empty((array.shape[0] // self.size,) + array.shape[1:], dtype=array.dtype)
        self.nccl_comm.reduceScatter(ptr, out.data.ptr, out.size, dtype, self._ops[op], stream)
        self._wait("reduce_scatter", array)
        return out

    def _barrier(self):
        self._all_reduce(self.cupy.zeros(1, dtype=np.float32), "sum")  # NCCL has no barrier of its own
