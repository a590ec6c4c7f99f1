"""Beyond one process: data parallelism, ZeRO-1 and tensor parallelism on MPI and NCCL.

    communicator.py    the five collectives (all_reduce, broadcast, all_gather, reduce_scatter,
                       barrier), their ring costs, timeouts; the one-process backend
    mpi.py, nccl.py    the MPI (mpi4py, host arrays) and NCCL (CuPy, GPU arrays) backends
    data_parallel.py   DistributedDataParallel: one packed all-reduce of the gradients
    zero.py            ZeroRedundancyAdamW: AdamW's state cut in N shards (ZeRO stage 1)
    tensor_parallel.py Megatron's f and g, column- and row-parallel Linear, a split MLP and attention
    gradcheck.py       gradient checks across ranks
    training.py        the trainer on N ranks (``python -m tinyllm train --distributed``)
    launch.py          finding mpiexec; ``train --nproc N``

Run N ranks with MPI (``pip install mpich mpi4py``)::

    mpiexec -n 2 python -m tinyllm train --preset shakespeare-char --distributed

In Python, the same code runs on one rank or many::

    import tinyllm.distributed as dist
    comm = dist.init_communicator()        # MPI under mpiexec, else one process
    model = dist.DistributedDataParallel(model, comm)

``docs/distributed.md`` measures the costs on a small machine.
"""
from .communicator import (CollectiveTimeout, Communicator, SingleProcessCommunicator, init_communicator,
                           launched_by_mpiexec, shard_range)
from .data_parallel import DistributedDataParallel, FlatBuffer, batch_share, broadcast_parameters
from .gradcheck import parallel_gradcheck
from .tensor_parallel import (ColumnParallelLinear, CopyToTensorParallel, ParallelCausalSelfAttention, ParallelMLP,
                              ReduceFromTensorParallel, RowParallelLinear, copy_to_tensor_parallel,
                              reduce_from_tensor_parallel)
from .zero import ZeroRedundancyAdamW

__all__ = ["Communicator", "SingleProcessCommunicator", "CollectiveTimeout", "init_communicator",
           "launched_by_mpiexec", "shard_range", "DistributedDataParallel", "FlatBuffer", "batch_share",
           "broadcast_parameters", "ZeroRedundancyAdamW", "CopyToTensorParallel", "ReduceFromTensorParallel",
           "copy_to_tensor_parallel", "reduce_from_tensor_parallel", "ColumnParallelLinear", "RowParallelLinear",
           "ParallelMLP", "ParallelCausalSelfAttention", "parallel_gradcheck"]
