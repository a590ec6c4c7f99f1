"""MPI: the collectives on host arrays, through mpi4py.

Start N ranks with MPICH's launcher (``pip install mpich mpi4py`` installs both, and puts
``mpiexec`` next to the Python interpreter)::

    mpiexec -n 2 python -m tinyllm train --preset shakespeare-char --distributed

mpi4py's upper-case methods (``Iallreduce``, ``Ibcast``…) read and write NumPy buffers
directly, without pickling. Each collective here is started *non-blocking* and then polled
until it completes or ``timeout`` passes (:meth:`Communicator._poll`), so that a dead rank
ends the others with :class:`CollectiveTimeout` instead of a hang. Device (CuPy) arrays go
through the host explicitly: ``backend.to_host`` before, ``backend.to_device`` after.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .communicator import Communicator

__all__ = ["MPICommunicator", "import_mpi"]


def import_mpi():
    """The ``mpi4py.MPI`` module, or an ImportError that says what to install."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"the MPI backend needs mpi4py and an MPI library: pip install mpich mpi4py "
                          f"(or pip install 'tinyllm[distributed]'); the import failed with: {exc}") from None
    return MPI


class MPICommunicator(Communicator):
    """The collectives over an MPI communicator (default ``MPI.COMM_WORLD``)."""

    backend = "mpi"

    def __init__(self, mpi_comm=None, timeout: float | None = None):
        MPI = import_mpi()
        self.MPI = MPI
        self.mpi_comm = MPI.COMM_WORLD if mpi_comm is None else mpi_comm
        super().__init__(self.mpi_comm.Get_rank(), self.mpi_comm.Get_size(), timeout)

    def local_rank(self) -> int:
        """This rank's number among the ranks on the same machine (which GPU it should use)."""
        local = self.mpi_comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        rank = local.Get_rank()
        local.Free()
        return rank

    def abort(self, code: int = 1) -> None:
        self.mpi_comm.Abort(code)

    @staticmethod
    def _back(array, host):
        """The result in ``array``: already there for NumPy, copied back for a device array."""
        if host is not array:
            array[...] = backend.to_device(host, backend.array_device(array))
        return array

    def _wait(self, request, what, host):
        self._poll(request.Test, what, f" ({host.dtype} array of shape {host.shape})")

    def _op(self, op):
        return {"sum": self.MPI.SUM, "max": self.MPI.MAX}[op]

    # ---------------------------------------------------------------- the collectives
    def _all_reduce(self, array, op):
        host = backend.to_host(array)  # NumPy: the array itself; a device array: a copy
        self._wait(self.mpi_comm.Iallreduce(self.MPI.IN_PLACE, host, op=self._op(op)), "all_reduce", host)
        return self._back(array, host)

    def _broadcast(self, array, root):
        host = backend.to_host(array)
        self._wait(self.mpi_comm.Ibcast(host, root=root), "broadcast", host)
        return self._back(array, host)

    def _all_gather(self, array):
        host = backend.to_host(array)
        out = np.empty((self.size * host.shape[0],) + host.shape[1:], dtype=host.dtype)
        self._wait(self.mpi_comm.Iallgather(host, out), "all_gather", host)
        return backend.to_device(out, backend.array_device(array))

    def _reduce_scatter(self, array, op):
        host = backend.to_host(array)
        out = np.empty((host.shape[0] // self.size,) + host.shape[1:], dtype=host.dtype)
        self._wait(self.mpi_comm.Ireduce_scatter_block(host, out, op=self._op(op)), "reduce_scatter", host)
        return backend.to_device(out, backend.array_device(array))

    def _barrier(self):
        self._poll(self.mpi_comm.Ibarrier().Test, "barrier")
