r"""What regularisation does: the gap between training and validation loss, measured.

A model that memorises its training text has a low training loss and a higher validation
loss; the difference (the *generalisation gap*) is what regularisers shrink. Three common
ones, each a knob of tinyllm:

* **weight decay** λ (AdamW): every step shrinks the weights, θ ← θ − lr·λ·θ, pulling
  toward small weights the data does not argue for;
* **dropout** p: in training, each activation is zeroed with probability p (and the rest
  scaled by 1/(1−p)), so no unit can rely on any other being there;
* **label smoothing** ε: the target is (1 − ε)·onehot + ε/V instead of the one-hot, so the
  model is never pushed to infinite confidence.

:func:`regularization_experiment` trains the same GPT on a small slice of a text (small, so
that it overfits within minutes) with each setting, from the same initial weights and on the
same batches, and measures the training and validation cross-entropy (plain, unsmoothed,
dropout off) and their gap.
"""
from __future__ import annotations

from .. import backend
from ..compress.lm import evaluate_lm, lm_loss, small_config, train_lm
from ..data import CausalLMDataset
from ..models import GPT
from ..train import LanguageModelingTask, TrainConfig

__all__ = ["DEFAULT_SETTINGS", "regularization_experiment"]

DEFAULT_SETTINGS = [
    {"name": "none", "weight_decay": 0.0, "dropout": 0.0, "label_smoothing": 0.0},
    {"name": "weight decay 0.1", "weight_decay": 0.1, "dropout": 0.0, "label_smoothing": 0.0},
    {"name": "weight decay 1.0", "weight_decay": 1.0, "dropout": 0.0, "label_smoothing": 0.0},
    {"name": "dropout 0.2", "weight_decay": 0.0, "dropout": 0.2, "label_smoothing": 0.0},
    {"name": "label smoothing 0.1", "weight_decay": 0.0, "dropout": 0.0, "label_smoothing": 0.1},
]


def regularization_experiment(text, train_chars=50_000, iters=1000, settings=None, n_layer=4, n_head=4, n_embd=128,
                              block_size=64, batch_size=12, lr=1e-3, eval_iters=50, seed=1337, device="cpu",
                              log_every=0):
    """Train one character-level GPT per setting (dicts with ``name``, ``weight_decay``,
    ``dropout``, ``label_smoothing``; default :data:`DEFAULT_SETTINGS`) for ``iters`` steps on
    the first ``train_chars`` characters of the training part (90 %) of ``text``; validate on
    the last 10 %. Returns ``{"rows": [{name, ..., train_loss, val_loss, gap}], ...}``."""
    task = LanguageModelingTask(TrainConfig(model=small_config(1, block_size), val_fraction=0.1), text)  # clean, chars, split
    train = CausalLMDataset(task.splits["train"].ids[:train_chars], block_size)
    val = task.splits["val"]
    rows = []
    for setting in settings or DEFAULT_SETTINGS:
        backend.manual_seed(seed)
        model = GPT(small_config(task.tokenizer.vocab_size, block_size, n_layer, n_head, n_embd,
                                 dropout=setting["dropout"])).to(device)
        smoothing = setting["label_smoothing"]
        train_lm(model, train, iters, batch_size=batch_size, lr=lr, min_lr=lr / 10, weight_decay=setting["weight_decay"],
                 seed=seed, loss_fn=lambda m, x, y: lm_loss(m, x, y, label_smoothing=smoothing), log_every=log_every)
        train_loss = evaluate_lm(model, train, batch_size, eval_iters)
        val_loss = evaluate_lm(model, val, batch_size, eval_iters)
        rows.append({**setting, "train_loss": train_loss, "val_loss": val_loss, "gap": val_loss - train_loss})
    return {"train_chars": len(train.ids), "val_chars": len(val.ids), "iters": iters, "rows": rows}
