r"""Knowledge distillation (Hinton, Vinyals and Dean, 2015): a small student learns from a
big teacher's whole predicted distribution, not only from the one right answer.

With student logits z_s, teacher logits z_t, temperature T and weight α, per position:

    p_t = softmax(z_t / T),   log p_s = log_softmax(z_s / T)
    L = α · T² · KL(p_t ‖ p_s)  +  (1 − α) · CE(z_s, y)
      = α · T² · Σ_c p_t,c (log p_t,c − log p_s,c)  +  (1 − α) · (−log softmax(z_s)_y)

averaged over positions. A temperature T > 1 flattens both distributions, so the teacher's
"dark knowledge" (which wrong answers are nearly right) weighs in; the soft part's gradient
is ∂/∂z_s [T² · KL] = T · (p_s − p_t), which shrinks like 1/T without the T² factor — the
T² keeps the two parts balanced whatever T is. The teacher is a constant: no gradient
flows into it.

The KL term is computed as the soft-target cross-entropy −Σ p_t log p_s (``F.cross_entropy``
accepts probability targets) minus the teacher's entropy, a constant that makes the value a
true KL divergence (0 when the student matches the teacher) without changing the gradient.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..tensor import no_grad

__all__ = ["distillation_loss", "check_temperature"]


def check_temperature(temperature):
    """The temperature, checked to be a number > 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating, np.integer)) \
            or not float(temperature) > 0:
        raise ValueError(f"distillation temperature must be > 0 (a number in (0, ∞)), got {temperature!r}")
    return float(temperature)


def distillation_loss(student_logits, teacher_logits, targets, temperature=2.0, alpha=0.5, ignore_index=-100):
    """α · T² · KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − α) · CE(student, targets).

    ``student_logits`` and ``teacher_logits`` (..., C); ``targets`` (...) class ids (those
    equal to ``ignore_index`` leave the cross-entropy; the KL term counts every position).
    ``temperature`` > 0, ``alpha`` ∈ [0, 1]. Returns a scalar tensor; the gradient reaches
    the student only."""
    temperature = check_temperature(temperature)
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"distillation alpha must be in [0, 1] (the weight of the soft term), got {alpha!r}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"distillation_loss: student logits {student_logits.shape} and teacher logits "
                         f"{teacher_logits.shape} must have the same shape")
    c = student_logits.shape[-1]
    student = student_logits.reshape(-1, c)
    with no_grad():
        teacher_log_probs = F.log_softmax(teacher_logits.detach().reshape(-1, c) * (1.0 / temperature), axis=-1)
        teacher_probs = teacher_log_probs.exp()
        teacher_entropy = -(teacher_probs * teacher_log_probs).sum(axis=-1).mean()
    soft = F.cross_entropy(student * (1.0 / temperature), teacher_probs) - teacher_entropy  # KL(p_t ‖ p_s)
    loss = soft * (alpha * temperature * temperature)
    if alpha < 1.0:
        hard = F.cross_entropy(student, targets.reshape(-1), ignore_index=ignore_index)
        loss = loss + hard * (1.0 - alpha)
    return loss
