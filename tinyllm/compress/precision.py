r"""Mixed precision: float16 arithmetic, float32 weights, and a loss scale that adapts.

float16 has a 10-bit mantissa (about 3 decimal digits) and a range of 6·10⁻⁸ … 65504.
GPUs multiply float16 matrices several times faster than float32 (tensor cores) and move
half the bytes, so the forward and backward passes run in float16 — but two things would go
wrong if everything did (Micikevicius et al., "Mixed Precision Training", 2018):

1. **Updates vanish.** lr · g is often below the float16 spacing of a weight (a weight of 1
   has neighbours 1 ± 0.001), so w + lr·g == w. The optimizer therefore keeps **float32
   master weights** and updates those; a float16 copy is made from them for each step.
2. **Small gradients underflow.** Gradients below 6·10⁻⁸ become 0 in float16. So the loss
   is multiplied by a scale S (say 2¹⁶) before ``backward``: every gradient is S times
   larger and stays representable; the float32 copies are divided by S again before the
   update. Too large an S overflows to inf — **dynamic loss scaling** checks the gradients:
   any inf or nan → skip this step and halve S; ``growth_interval`` good steps in a row →
   double S. The scale finds the largest safe value by itself.

One step of :class:`MixedPrecision`::

    w16 ← float16(w32)                        copy the master weights (one pass)
    loss = loss_fn(model16)                   forward in float16 (the loss itself in float32)
    (S · loss).backward()                     backward in float16
    g32 = float32(g16) / S                    unscale into the master weights' .grad
    if all finite: optimizer.step()  (on w32)  else: skip
    S ← scaler.update(found_inf)

The loss (softmax and log of the logits) is computed in float32 from float16 logits, as
``torch.autocast`` does: a sum over the vocabulary is where float16's few digits hurt most.
On NumPy this runs (and is tested) but is *slower* than float32: CPUs have no float16
matrix product, NumPy emulates it. It is meant for CuPy on a GPU.
"""
from __future__ import annotations

import copy

import numpy as np

from ..optim import clip_grad_norm_



__all__ = ["DynamicLossScaler", "MixedPrecision"]


class DynamicLossScaler:
    """The loss scale S and its rule (the defaults of ``torch.cuda.amp.GradScaler``).

    ``scale``: the current S; ``update(found_inf)`` after each step: an overflow multiplies
    S by ``backoff_factor`` (0.5) and restarts the count; ``growth_interval`` steps in a row
    without one multiply it by ``growth_factor`` (2)."""

    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
        if not init_scale > 0 or not growth_factor > 1 or not 0 < backoff_factor < 1 or growth_interval < 1:
            raise ValueError(f"DynamicLossScaler: need init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 "
                             f"and growth_interval >= 1; got {init_scale}, {growth_factor}, {backoff_factor}, "
                             f"{growth_interval}")
        self.scale = float(init_scale)
        self.growth_factor, self.backoff_factor = float(growth_factor), float(backoff_factor)
        self.growth_interval = int(growth_interval)
        self.good_steps = 0
        self.skipped_steps = 0

    def unscale_(self, params):
        """Divide every ``p.grad`` by S in place; return True if any gradient holds an inf or
        a nan (one device-to-host sync for all of them)."""
        inverse = 1.0 / self.scale
        finite = []
        for p in params:
            if p.grad is not None:
                p.grad *= inverse
                finite.append(p.xp.isfinite(p.grad).all())
        if not finite:
            return False
        xp = params[0].xp
        return not bool(xp.stack(finite).all())

    def update(self, found_inf):
        """Adapt S after a step (see the class docstring)."""
        if found_inf:
            self.scale *= self.backoff_factor
            self.good_steps = 0
            self.skipped_steps += 1
        else:
            self.good_steps += 1
            if self.good_steps >= self.growth_interval:
                self.scale *= self.growth_factor
                self.good_steps = 0

    def state_dict(self):
        return {"scale": self.scale, "good_steps": self.good_steps, "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state):
        self.scale, self.good_steps = float(state["scale"]), int(state["good_steps"])
        self.skipped_steps = int(state.get("skipped_steps", 0))


class MixedPrecision:
    """Train ``model`` (float32: the master weights, which ``optimizer`` updates) with its
    forward and backward in ``dtype`` (float16) on a working copy (see the module docstring).

    ``step(loss_fn)`` runs one step: ``loss_fn(working_model)`` returns a scalar loss (compute
    it in float32 from the logits, e.g. :func:`tinyllm.compress.lm.lm_loss`). It returns
    ``(loss value, skipped)``. ``grad_clip`` clips the unscaled float32 gradients.
    ``working`` is the float16 model (use it for evaluation too, after :meth:`sync`)."""

    def __init__(self, model, optimizer, dtype=np.float16, scaler=None, grad_clip=None):
        if np.dtype(model.dtype) != np.float32:
            raise TypeError(f"MixedPrecision: the master model must be float32, got {model.dtype}")
        self.model, self.optimizer = model, optimizer
        self.dtype = np.dtype(dtype)
        self.scaler = scaler or DynamicLossScaler()
        self.grad_clip = grad_clip
        self.working = copy.deepcopy(model).to(dtype=self.dtype)
        masters, copies = list(model.parameters()), list(self.working.parameters())
        if len(masters) != len(copies):  # pragma: no cover - deepcopy keeps the structure
            raise RuntimeError("MixedPrecision: the working copy's parameters do not match the model's")
        self.pairs = list(zip(masters, copies))

    def sync(self):
        """Copy the master weights into the working copy, cast to its dtype."""
        for master, half in self.pairs:
            half.data[...] = master.data
            half.bump_version()

    def step(self, loss_fn):
        """One mixed-precision training step; returns ``(loss value, skipped)``."""
        self.sync()
        for _, half in self.pairs:
            half.grad = None
        loss = loss_fn(self.working)
        (loss * self.scaler.scale).backward()
        for master, half in self.pairs:
            master.grad = None if half.grad is None else half.grad.astype(master.dtype)
            half.grad = None
        found_inf = self.scaler.unscale_([m for m, _ in self.pairs])
        if not found_inf:
            if self.grad_clip:
                clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
        self.scaler.update(found_inf)
        return loss.item(), found_inf
