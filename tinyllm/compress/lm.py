"""What the compression experiments share: runs reopened, models trained and scored.

A trained run (``python -m tinyllm train --preset shakespeare-char`` writes
``runs/shakespeare-char/ckpt.safetensors``) is reopened with :func:`load_run`: its GPT, its
tokenizer and the same train/validation split it was trained on. :func:`evaluate_lm` scores
a model exactly as the trainer does (it *is* the trainer's evaluation, on one dataset), and
:func:`train_lm` trains one with the trainer's own loop, with a pluggable loss, for the
experiments that train students, fine-tune pruned models or compare regularisers.

Compressed models (quantized, pruned) are saved with :func:`save_compressed` next to the run
and reopened with :func:`load_compressed`.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from .. import functional as F
from ..checkpoint import save_checkpoint
from ..tensor import Tensor
from ..train import (LanguageModelingTask, TrainConfig, Trainer, check_memory, check_weights,
                     checkpoint_tokenizer, evaluate, make_task, read_checkpoint)
from .quantize import quantize_model, quantized_module_names
from ..models import GPTConfig

__all__ = ["LMData", "load_run", "evaluate_lm", "train_lm", "lm_loss", "save_compressed", "load_compressed",
           "random_batch", "small_config", "format_bytes"]


@dataclass
class LMData:
    """A language-modelling corpus split for training and validation."""
    train: object      # CausalLMDataset
    val: object        # CausalLMDataset
    tokenizer: object
    block_size: int


def _task_data(task):
    return LMData(task.splits["train"], task.splits["val"], task.tokenizer, task.cfg.model.block_size)


def load_run(folder, device="cpu"):
    """Reopen a trained GPT run: ``(model, data, cfg)`` with the run's config, tokenizer and
    train/validation split (``folder`` holds ``ckpt.safetensors``)."""
    path = os.path.join(folder, Trainer.CHECKPOINT)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}; train one first: "
                                f"python -m tinyllm train --preset shakespeare-char --out {folder}")
    tensors, meta, cfg = read_checkpoint(path)
    if cfg.family != "gpt":
        raise ValueError(f"{path}: a {cfg.family!r} run; the compression experiments need a GPT run")
    return _rebuild(path, tensors, meta, cfg, device)


def _rebuild(path, tensors, meta, cfg, device, quantized=()):
    """``(model, data, cfg)`` from a file's tensors and metadata: the run's config and
    tokenizer give the task and an empty model (its ``quantized`` layers made int8 first),
    then the ``model.*`` tensors fill it; whatever does not fit is an error naming ``path``."""
    cfg.device = device
    task = make_task(cfg, checkpoint_tokenizer(cfg, meta, path))
    check_memory(cfg, task.vocab_size, training=False)
    model = task.build_model()
    if quantized:
        try:
            quantize_model(model, quantized)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path}: its list of quantized layers does not fit the model: {error}") from None
    model.load_state_dict(check_weights(path, model, tensors))
    return model.to(device), _task_data(task), cfg


def lm_loss(model, x, y, label_smoothing=0.0):
    """Mean next-token cross-entropy of a GPT on (x, y) (B, T) id tensors; computed in
    float32 when the logits are float16 (as under mixed precision)."""
    logits, _ = model(x)
    if logits.dtype.itemsize < 4:
        logits = logits.astype(np.float32)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), label_smoothing=label_smoothing,
                           ignore_index=-1)


def _task(model, splits, batch_size, loss_fn=None, **settings):
    """A language-modelling task over ``splits`` (anything with ``get_batch(batch_size, rng)``)
    for :class:`~tinyllm.train.Trainer` (its config holds the model's, informative only here)."""
    cfg = TrainConfig(model=model.config, batch_size=batch_size, device=model.device, progress=False,
                      eval_interval=0, **settings)
    return cfg, LanguageModelingTask.on_datasets(cfg, splits, loss_fn or lm_loss)


def evaluate_lm(model, dataset, batch_size=12, iters=200, seed=1234):
    """Mean cross-entropy of ``model`` over ``iters`` batches of ``dataset`` drawn with a
    generator seeded ``seed``: the trainer's evaluation (:func:`tinyllm.train.evaluate`)."""
    _, task = _task(model, {"val": dataset}, batch_size)
    return evaluate(model, task, iters, splits=("val",), seed=seed)["val"]["loss"]


def train_lm(model, dataset, iters, batch_size=12, lr=1e-3, min_lr=1e-4, warmup=100, weight_decay=0.1,
             betas=(0.9, 0.99), grad_clip=1.0, seed=1337, loss_fn=None, pruner=None, log_every=0):
    """Train ``model`` for ``iters`` steps on random windows of ``dataset`` with the trainer's
    loop and recipe (:class:`~tinyllm.train.Trainer`: AdamW with decay on matrices, linear
    warmup then cosine to ``min_lr``, gradient clipping), no evaluation and no checkpoint.
    ``loss_fn(model, x, y)`` gives the loss (default :func:`lm_loss`); ``pruner`` (a
    :class:`~tinyllm.compress.prune.Pruner`) keeps its zeros through the steps. ``seed``
    seeds the run as the trainer does (the batches and tinyllm's random streams). Every
    ``log_every`` steps a line gives the mean loss and the time per step. Returns the list of
    training losses."""
    cfg, task = _task(model, {"train": dataset}, batch_size, loss_fn, max_iters=iters, learning_rate=lr,
                      min_lr=min_lr, warmup_iters=min(warmup, iters), lr_decay_iters=max(iters, 1),
                      weight_decay=weight_decay, beta1=betas[0], beta2=betas[1], grad_clip=grad_clip, seed=seed)
    trainer = Trainer(cfg, task=task, model=model)
    if log_every:
        start = time.perf_counter()

        def log(t):
            done = len(t.train_losses)
            if done % log_every == 0:
                print(f"  step {done}/{iters}: loss {np.mean(t.train_losses[-log_every:]):.4f} "
                      f"({(time.perf_counter() - start) / done * 1e3:.0f} ms/step)", flush=True)
        trainer.on_step = log
    if pruner is not None:
        pruner.attach(trainer.optimizer)
    try:
        trainer.train()
    finally:
        if pruner is not None:
            pruner.detach(trainer.optimizer)
    return trainer.train_losses


def random_batch(vocab_size, batch_size, length, device="cpu", seed=0):
    """``(x, y)``: two (batch_size, length) tensors of random token ids, for measuring a
    step's time, FLOPs or memory (the values do not matter there)."""
    rng = np.random.default_rng(seed)
    return tuple(Tensor(rng.integers(0, vocab_size, (batch_size, length)), device=device) for _ in range(2))


def small_config(vocab_size, block_size, n_layer=2, n_head=2, n_embd=64, dropout=0.0):
    """A GPTConfig for the small students and toy models of the experiments."""
    return GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                     n_embd=n_embd, dropout=dropout)


# ----------------------------------------------------------------------------- compressed files
def save_compressed(path, model, cfg, tokenizer, compression: dict):
    """Write a compressed GPT (its state dict: int8 codes and scales for quantized layers)
    with what is needed to rebuild it: the run's config, its tokenizer, and
    ``compression`` (e.g. ``{"quantized": [names]}`` or ``{"sparsity": 0.5}``)."""
    compression = dict(compression)
    compression.setdefault("quantized", quantized_module_names(model))
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    save_checkpoint(path, tensors, {"config": cfg.to_json(), "tokenizer": tokenizer.to_dict(),
                                    "compression": compression})
    return path


def load_compressed(path, device="cpu"):
    """Reopen a file written by :func:`save_compressed`: ``(model, data, cfg, compression)``."""
    tensors, meta, cfg = read_checkpoint(path)
    compression = meta.get("compression")
    if not isinstance(compression, dict):
        raise ValueError(f"{path}: not a compressed model (written by save_compressed); "
                         f"for a training checkpoint use python -m tinyllm eval")
    if cfg.family != "gpt":
        raise ValueError(f"{path}: a {cfg.family!r} run; compressed models are GPTs")
    quantized = compression.get("quantized", [])
    if not (isinstance(quantized, list) and all(isinstance(name, str) for name in quantized)):
        raise ValueError(f"{path}: its compression['quantized'] should be a list of layer names")
    return _rebuild(path, tensors, meta, cfg, device, quantized) + (compression,)


def format_bytes(n):
    """1234567 -> '1.23 MB' (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"  # pragma: no cover

