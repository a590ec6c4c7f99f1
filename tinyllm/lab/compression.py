"""The compression experiments the chapters and ``python -m tinyllm compress`` run: a student
trained alone and distilled, the loss against sparsity, attention heads removed in order of
importance. They drive the tools of :mod:`tinyllm.compress` with the trainer's loop."""
from __future__ import annotations

import copy
import time

import numpy as np

from .. import backend
from ..compress.distill import distillation_loss
from ..compress.lm import evaluate_lm, lm_loss, train_lm
from ..compress.prune import Pruner, head_importance, heads_by_layer, model_sparsity
from ..models import GPT
from ..tensor import no_grad

__all__ = ["distill_experiment", "sparsity_curve", "rank_heads", "head_pruning_curve"]


def distill_experiment(teacher, data, student_config, iters, batch_size=12, temperature=2.0, alpha=0.5,
                       lr=1e-3, min_lr=1e-4, warmup=100, eval_iters=200, seed=1337, log_every=0):
    """Train the same student twice for ``iters`` steps, from the same initial weights on
    the same batches: alone (cross-entropy on the data) and distilled from ``teacher``
    (:func:`distillation_loss`). Returns the validation cross-entropy of the teacher, of
    the student alone and of the distilled student (the trainer's evaluation), their
    parameter counts, the time per step of each, and the settings."""
    device = teacher.device
    teacher.eval()
    results = {"iters": iters, "temperature": temperature, "alpha": alpha, "batch_size": batch_size,
               "teacher_params": teacher.num_parameters()}
    results["teacher_val_loss"] = evaluate_lm(teacher, data.val, batch_size, eval_iters)

    def distilled_loss(model, x, y):
        with no_grad():
            teacher_logits, _ = teacher(x)
        logits, _ = model(x)
        return distillation_loss(logits, teacher_logits, y, temperature, alpha, ignore_index=-1)

    for name, loss_fn in (("alone", lm_loss), ("distilled", distilled_loss)):
        backend.manual_seed(seed)
        student = GPT(student_config).to(device)
        start = time.perf_counter()
        losses = train_lm(student, data.train, iters, batch_size=batch_size, lr=lr, min_lr=min_lr,
                          warmup=warmup, seed=seed, loss_fn=loss_fn, log_every=log_every)
        results[f"{name}_ms_per_step"] = (time.perf_counter() - start) / max(iters, 1) * 1e3
        results[f"{name}_train_loss_last"] = float(np.mean(losses[-min(len(losses), 50):]))
        results[f"{name}_val_loss"] = evaluate_lm(student, data.val, batch_size, eval_iters)
        results["student_params"] = student.num_parameters()
    return results




def sparsity_curve(model, data, amounts=(0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95), finetune_iters=0, lr=3e-4,
                   batch_size=12, eval_iters=200, seed=1337, log=None):
    """Validation loss against sparsity: for each amount, a copy of ``model`` pruned by
    global magnitude, evaluated at once (one-shot) and, with ``finetune_iters`` > 0, again
    after fine-tuning that many steps with the masks kept (AdamW, warmup + cosine from
    ``lr``). Returns a list of rows ``{amount, sparsity, val_loss, val_loss_finetuned}``."""
    rows = []
    for amount in amounts:
        pruned = copy.deepcopy(model)
        pruner = Pruner.global_magnitude(pruned, amount).apply()
        row = {"amount": float(amount), "sparsity": model_sparsity(pruned),
               "val_loss": evaluate_lm(pruned, data.val, batch_size, eval_iters)}
        if finetune_iters:
            train_lm(pruned, data.train, finetune_iters, batch_size=batch_size, lr=lr, min_lr=lr / 10,
                     warmup=min(20, finetune_iters), seed=seed, pruner=pruner)
            row["val_loss_finetuned"] = evaluate_lm(pruned, data.val, batch_size, eval_iters)
            row["sparsity_after_finetuning"] = model_sparsity(pruned)
        rows.append(row)
        if log:
            log(row)
    return rows


def rank_heads(model, data, batch_size=12, ranking_iters=20):
    """Attention heads, least important first: ``[((layer, head), loss increase)]`` from
    :func:`head_importance` on ``ranking_iters`` validation batches (drawn with seed 4321,
    apart from the batches that score the results)."""
    scores = head_importance(model, lambda: evaluate_lm(model, data.val, batch_size, ranking_iters, seed=4321))
    return sorted(scores.items(), key=lambda item: item[1])


def head_pruning_curve(model, data, batch_size=12, eval_iters=200, ranking_iters=20, log=None):
    """Validation loss as attention heads are removed, least important first (importance:
    :func:`head_importance` on ``ranking_iters`` validation batches other than the scored
    ones). Returns ``{"ranking": [(layer, head, loss increase)], "rows": [{heads_removed,
    removed, val_loss}]}``."""
    ranking = rank_heads(model, data, batch_size, ranking_iters)
    rows = []
    for k in range(len(ranking) + 1):
        pruned = copy.deepcopy(model)
        heads = heads_by_layer(head for head, _ in ranking[:k])
        if heads:
            Pruner.attention_heads(pruned, heads).apply()
        row = {"heads_removed": k, "removed": [f"{n}[{h}]" for (n, h), _ in ranking[:k]],
               "val_loss": evaluate_lm(pruned, data.val, batch_size, eval_iters)}
        rows.append(row)
        if log:
            log(row)
    return {"ranking": [(n, h, float(s)) for (n, h), s in ranking], "rows": rows}
