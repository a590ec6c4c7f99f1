"""Learning-rate schedules: the learning rate as a function of the step.

Two classic shapes, each a plain function ``step -> lr`` (easy to plot, easy to test), and
:class:`Schedule`, which writes such a function's value into an optimizer's groups::

    schedule = Schedule(optimizer, lambda step: cosine_with_warmup(step, 1e-3, 1e-4, 100, 2000))
    for step in range(2000):
        ...                      # forward, backward
        optimizer.step()         # the update of step s uses fn(s)
        schedule.step()          # now the optimizer holds fn(s + 1)

Steps count optimizer updates from 0, as nanoGPT's ``iter_num``.
"""
from __future__ import annotations

import math

__all__ = ["cosine_with_warmup", "noam", "Schedule"]


def cosine_with_warmup(step: int, max_lr: float, min_lr: float, warmup_steps: int,
                       decay_steps: int) -> float:
    r"""Linear warmup, then a half cosine down to ``min_lr``, then constant (nanoGPT's ``get_lr``).

    .. math::

        \text{lr}(s) = \begin{cases}
          \text{max\_lr} \cdot \dfrac{s+1}{W}                        & s < W \\[4pt]
          \text{min} + \tfrac12\,(1 + \cos(\pi r))\,(\text{max} - \text{min}),
              \quad r = \dfrac{s - W}{D - W}                          & W \le s \le D \\[4pt]
          \text{min\_lr}                                             & s > D
        \end{cases}

    with W = ``warmup_steps`` and D = ``decay_steps``. ``decay_steps`` is the step at which
    the cosine reaches ``min_lr``, counted from step 0 with the warmup included (nanoGPT's
    ``lr_decay_iters``), not the length of the decay. The warmup's first step already uses
    max_lr/W (never 0, which would waste a step) and its last step, W − 1, reaches max_lr,
    where the cosine starts. (nanoGPT's current code divides by W + 1, so its peak comes one
    step later; older versions used s/W and started at 0.)
    """
    if step < 0 or warmup_steps < 0 or decay_steps < warmup_steps:
        raise ValueError(f"need 0 <= step and 0 <= warmup_steps <= decay_steps, got step={step}, "
                         f"warmup_steps={warmup_steps}, decay_steps={decay_steps}")
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= decay_steps:
        return min_lr
    decay_ratio = (step - warmup_steps) / (decay_steps - warmup_steps)
    coefficient = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))  # from 1 down to 0
    return min_lr + coefficient * (max_lr - min_lr)


def noam(step: int, d_model: int, warmup_steps: int, factor: float = 1.0) -> float:
    r"""The schedule of "Attention Is All You Need" (§5.3), as in the Annotated Transformer.

    .. math::

        \text{lr}(s) = \text{factor} \cdot d_\text{model}^{-1/2} \cdot
                       \min\big((s+1)^{-1/2},\ (s+1)\cdot W^{-3/2}\big)

    ``step`` s counts from 0 here, the paper's step_num from 1: step_num = s + 1 (which also
    keeps 0^{-1/2} away). The rate grows linearly for the first W = ``warmup_steps`` updates,
    peaks at s = W − 1 (step_num = W) at factor·(d_model·W)^{-1/2}, then decays as
    1/√step_num.
    """
    if step < 0 or warmup_steps <= 0 or d_model <= 0:
        raise ValueError(f"need step >= 0, warmup_steps > 0 and d_model > 0, got step={step}, "
                         f"warmup_steps={warmup_steps}, d_model={d_model}")
    step_num = step + 1
    return factor * d_model ** -0.5 * min(step_num ** -0.5, step_num * warmup_steps ** -1.5)


class Schedule:
    """Drive an optimizer's learning rate with a function ``fn(step) -> lr``.

    On construction every group's ``lr`` is set to ``fn(0)``; each :meth:`step` advances the
    count and sets ``fn(current_step)`` (like ``torch.optim.lr_scheduler.LambdaLR``, except
    that ``fn`` returns the rate itself, not a factor of the initial one). Call it after
    ``optimizer.step()``. Every group gets the same rate; groups differ in weight decay.
    """

    def __init__(self, optimizer, fn):
        self.optimizer = optimizer
        self.fn = fn
        self.current_step = 0
        self._apply()

    def _apply(self) -> None:
        lr = float(self.fn(self.current_step))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    @property
    def lr(self) -> float:
        """The rate the optimizer holds now, ``fn(current_step)``."""
        return self.optimizer.param_groups[0]["lr"]

    def step(self) -> None:
        """Advance one optimizer step and set the new rate on every group."""
        self.current_step += 1
        self._apply()

    def state_dict(self) -> dict:
        """``{"step": current_step}``: the function itself is code, rebuilt by the caller."""
        return {"step": self.current_step}

    def load_state_dict(self, state_dict: dict) -> None:
        """Resume at a saved step, setting the rate that step uses."""
        self.current_step = int(state_dict["step"])
        self._apply()
