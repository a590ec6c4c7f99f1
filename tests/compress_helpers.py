"""Helpers for the tests of tinyllm.compress: tiny models, batches and a tiny trained run."""
import numpy as np

import tinyllm as tl
from tinyllm.models import GPT, GPTConfig


def tiny_gpt(device="cpu", dtype=None, dropout=0.0, n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=11):
    tl.manual_seed(0)
    config = GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                       dropout=dropout)
    return GPT(config, device=device, dtype=dtype)


def batch(model, batch_size=3, seed=0):
    """Random (x, y) id tensors for ``model`` on its device."""
    rng = np.random.default_rng(seed)
    shape = (batch_size, model.config.block_size)
    v = model.config.vocab_size
    return (tl.Tensor(rng.integers(0, v, shape), device=model.device),
            tl.Tensor(rng.integers(0, v, shape), device=model.device))


def make_tiny_run(folder):
    """A 4-step GPT run on the shipped corpus (what load_run and the CLI need), in ``folder``."""
    from tinyllm.models import GPTConfig
    from tinyllm.train import TrainConfig, Trainer
    cfg = TrainConfig(dataset="tinytales", model=GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16), batch_size=4,
                      max_iters=4, eval_iters=1, eval_interval=100, warmup_iters=2, progress=False, out_dir=str(folder))
    Trainer(cfg).train()
    return str(folder)
