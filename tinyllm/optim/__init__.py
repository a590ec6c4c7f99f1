"""Optimization: optimizers (SGD, Adam, AdamW), gradient clipping, learning-rate schedules.

    import tinyllm.optim as optim

    groups = optim.param_groups(model.named_parameters(), weight_decay=0.1)
    optimizer = optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99))
    schedule = optim.Schedule(optimizer, lambda s: optim.cosine_with_warmup(s, 1e-3, 1e-4, 100, 2000))

Written by hand, update rule by update rule, to follow ``torch.optim``'s numbers exactly.
"""
from .optimizers import Optimizer, SGD, Adam, AdamW, param_groups, clip_grad_norm_
from .schedules import cosine_with_warmup, noam, Schedule
from . import schedules

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "param_groups", "clip_grad_norm_",
           "cosine_with_warmup", "noam", "Schedule", "schedules"]
