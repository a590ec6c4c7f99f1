"""The trainer on N ranks: ``mpiexec -n N python -m tinyllm train --distributed``.

:class:`DistributedTrainer` is :class:`~tinyllm.train.Trainer` with four changes, all here:

* the model is wrapped in :class:`DistributedDataParallel` (rank 0's weights everywhere);
* the task hands out *this rank's rows* of each training batch. Every rank draws the same
  global batch from the same seeded generator and keeps its rows, so the generator's state,
  and with it the checkpoint, is the same for any number of ranks: a run saved with N
  ranks resumes with M (or in one process);
* the loss it returns (:class:`DataParallelLoss`) reduces the gradients at the end of
  ``backward()`` (before clipping, so the norm is the global batch's), and its ``item()``
  is the global batch's loss. The same all-reduce carries the ranks' stop requests
  (Ctrl-C, SIGTERM), so that every rank stops, saves and exits at the same step;
* only rank 0 writes checkpoints, plots and samples, and prints (progress and logs).

Evaluation runs whole batches on every rank (the same numbers as one process). The rows are
weighted by their number of predicted tokens, so the gradient is the one-process gradient of
the global batch, padding included (seq2seq). With dropout, every rank draws its masks from
the same stream, so only dropout-free runs repeat the one-process run number for number.
A rank that fails prints its error and ends all ranks; one that dies or hangs is noticed by
the others' collective timeouts.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import sys

import numpy as np

from ..data import Seq2SeqBatch
from ..tensor import Tensor, is_grad_enabled
from ..train import Trainer, TrainConfig
from .communicator import Communicator, init_communicator, shard_range
from .data_parallel import DistributedDataParallel, batch_share

__all__ = ["DistributedTrainer", "DataParallelTask", "DataParallelLoss"]


class DistributedTrainer(Trainer):
    """A :class:`~tinyllm.train.Trainer` for one rank of a data-parallel run (module docstring).

    ``DistributedTrainer(cfg, resume=False, checkpoint=None, communicator=None)``; the
    communicator defaults to MPI under ``mpiexec``, else a single process. ``cfg.batch_size``
    is the global batch, as in the one-process run.
    """

    _agreed_stop = None   # the stop signal every rank agreed on (see DataParallelLoss.item)
    _pending_stop = None  # a signal this rank received, not yet shared

    def __init__(self, cfg: TrainConfig, resume: bool = False, checkpoint=None,
                 communicator: Communicator | None = None):
        self.communicator = comm = communicator or init_communicator("auto")
        with comm.abort_on_error():
            if comm.rank != 0:
                cfg = dataclasses.replace(cfg, progress=False)
            batch_share(cfg.batch_size, comm.rank, comm.size)  # at least one row per rank
            super().__init__(cfg, resume=resume, checkpoint=checkpoint)
            self.data_parallel = DistributedDataParallel(self.model, comm)
            self.task = DataParallelTask(self.task, self)

    @classmethod
    def from_command_line(cls, cfg: TrainConfig, resume: bool, backend_name: str = "auto",
                          checkpoint=None) -> "DistributedTrainer":
        """For ``python -m tinyllm train --distributed``: ranks other than 0 print nothing
        (their standard output goes to the null device; errors still reach standard error)."""
        comm = init_communicator(backend_name)
        if comm.rank != 0:
            sys.stdout = open(os.devnull, "w")
        rows = [shard_range(cfg.batch_size, r, comm.size) for r in range(comm.size)]
        print(f"data parallel: {comm.size} ranks ({comm.backend}), global batch {cfg.batch_size} = "
              f"{' + '.join(str(r.stop - r.start) for r in rows)} rows per rank")
        return cls(cfg, resume=resume, checkpoint=checkpoint, communicator=comm)

    # The trainer's signal handler sets _stop_signal on the rank that got the signal; the
    # loop reads it. Here the handler's value waits until every rank knows it.
    @property
    def _stop_signal(self):
        return self._agreed_stop

    @_stop_signal.setter
    def _stop_signal(self, signum):
        self._pending_stop = signum

    def train(self, max_iters=None, stop_after=None):
        with self.communicator.abort_on_error():
            return super().train(max_iters, stop_after)

    def save(self, path=None):
        """Rank 0 writes the checkpoint (the same file as a one-process run's); every rank
        waits until it is written."""
        if self.communicator.rank == 0:
            path = super().save(path)
        self.communicator.barrier()
        return path or self.checkpoint_path

    def plot(self):
        if self.communicator.rank == 0:
            super().plot()

    def sample(self, prompt=None, max_new_tokens=None, **kwargs):
        """Rank 0's sample (the others return "")."""
        return super().sample(prompt, max_new_tokens, **kwargs) if self.communicator.rank == 0 else ""


class DataParallelTask:
    """A task whose training batches are this rank's rows of the global batch, and whose
    training loss is a :class:`DataParallelLoss`. Under ``no_grad`` (evaluation) it is the
    task itself: whole batches, plain losses. Everything else is the wrapped task's."""

    def __init__(self, task, trainer: DistributedTrainer):
        self.task, self.trainer = task, trainer
        self.weight = None  # this rank's share of the last training batch's predicted tokens

    def __getattr__(self, name):
        return getattr(self.task, name)

    def batch(self, split, rng):
        batch = self.task.batch(split, rng)
        if not is_grad_enabled():
            return batch
        comm = self.trainer.communicator
        rows, _ = batch_share(self.trainer.cfg.batch_size, comm.rank, comm.size)
        if isinstance(batch, Seq2SeqBatch):  # sequence-first arrays: the batch is axis 1
            local = Seq2SeqBatch(batch.src[:, rows], batch.tgt_in[:, rows], batch.tgt_out[:, rows],
                                 batch.src_padding_mask[rows], batch.tgt_padding_mask[rows])
            counted, total = (local.tgt_out >= 0).sum(), (batch.tgt_out >= 0).sum()
        else:
            x, y = batch
            local = (Tensor(x.data[rows]), Tensor(y.data[rows]))
            counted, total = (local[1].data >= 0).sum(), (y.data >= 0).sum()
        self.weight = int(counted) / max(int(total), 1)
        return local

    def loss(self, model, batch):
        loss, logits, targets = self.task.loss(model, batch)
        if not is_grad_enabled():
            return loss, logits, targets
        return DataParallelLoss(loss, self.trainer, self.weight), logits, targets


class DataParallelLoss:
    """This rank's loss L_r in the training loop, with the two data-parallel steps attached:

    * ``backward()``: L_r's backward, then the weighted all-reduce of the gradients;
    * ``item()``: Σ_r w_r L_r, the global batch's loss (one small all-reduce, which also
      shares any rank's stop signal, so that all ranks stop at this step)."""

    def __init__(self, loss: Tensor, trainer: DistributedTrainer, weight: float):
        self.loss, self.trainer, self.weight = loss, trainer, weight

    def backward(self):
        self.trainer.data_parallel.backward(self.loss, self.weight)

    def item(self) -> float:
        trainer = self.trainer
        pending = trainer._pending_stop
        summed = trainer.communicator.all_reduce(np.array([self.loss.item() * self.weight, pending is not None]))
        if summed[1]:  # some rank got a signal: every rank stops after this step (named as SIGTERM if not here)
            trainer._agreed_stop = pending or signal.SIGTERM
        return float(summed[0])
