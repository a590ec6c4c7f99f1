"""Functions of tensors, as in ``torch.nn.functional`` (import as ``F``); class axis last.

Activations, losses and attention. Softmax, log-softmax with cross-entropy, layer norm,
GELU and attention are *fused*: one op with one hand-written backward instead of a chain
of primitives. That is more stable (max-subtraction inside the op) and does less work than
the chain. Each is written here as its formula; a faster implementation of the same formula
may run instead (:mod:`tinyllm.kernels`, e.g. the softmax rows on all cores). The tests check
each fused op against the same function composed from primitives, and against PyTorch.

Each public function checks its arguments first, in :mod:`tinyllm.arguments` (``check.…``):
what it accepts, and the error a user gets otherwise, are there; the formulas are here.

Notation: ``y`` the output, ``g = ∂L/∂y`` the incoming gradient.
"""
from __future__ import annotations

import math

import numpy as np

from . import arguments as check
from . import backend, kernels
from .arguments import as_index_array, causal_mask, check_mask  # noqa: F401 (F.* for the layers)
from .ops import Where
from .tensor import Function, Tensor, unbroadcast
from .tensor_methods import as_floating

__all__ = [
    "relu", "sigmoid", "logsigmoid", "tanh", "gelu", "softmax", "log_softmax", "logsumexp", "cross_entropy",
    "binary_cross_entropy_with_logits", "mse_loss", "layer_norm", "embedding", "dropout", "masked_fill",
    "linear", "scaled_dot_product_attention", "attention", "check_mask",
]


def _on_a_vector(fn, x, *args, **kwargs):
    """``fn`` applied to a 0-d tensor seen as a vector of one element (the row kernels and
    ``out=`` writes need at least one axis), the result given back its 0-d shape."""
    return fn(x.reshape(1), *args, **kwargs).reshape(())


# ----------------------------------------------------------------------------- activations
class ReLU(Function):
    """y = max(x, 0);  ∂L/∂x = g · [x > 0] (g passes where x is NaN, as torch)."""

    def forward(self, x):
        y = self.xp.maximum(x, 0)
        self.save(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return (self.xp.where(y <= 0, 0, g),)


def relu(x):
    """Rectified linear unit, elementwise: max(x, 0)."""
    return ReLU.apply(check.float_tensor(x))


def _sigmoid(xp, x):
    """σ(x) without overflow or cancellation: with z = e^{−|x|} ∈ (0, 1],
    σ(x) = 1 / (1 + z) for x ≥ 0 and z / (1 + z) for x < 0 (exact to the last bits at
    x = −15 in float32, where ½ (1 + tanh(x/2)) loses 2.6 %, and non-zero down to the
    smallest float instead of 0 from x = −17)."""
    z = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1, z) / (1 + z)


class Sigmoid(Function):
    """y = σ(x) = 1 / (1 + e⁻ˣ);  ∂L/∂x = g · y (1 − y)."""

    def forward(self, x):
        y = _sigmoid(self.xp, x)
        self.save(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return (g * y * (1 - y),)


def sigmoid(x):
    """The logistic function 1 / (1 + e⁻ˣ), elementwise (an integer tensor gives float32, as torch)."""
    return Sigmoid.apply(as_floating(check.tensor(x)))


def _logsigmoid(xp, x):
    """log σ(x) = min(x, 0) − log(1 + e^{−|x|}), exact where log(1 / (1 + e⁻ˣ)) fails: e⁻ˣ
    overflows for x < −709 (float64), and σ(x) rounds to 0 (log 0 = −∞) long before."""
    return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))


class LogSigmoid(Function):
    """y = log σ(x) = min(x, 0) − log(1 + e^{−|x|});  ∂L/∂x = g · (1 − σ(x)) = g · σ(−x)."""

    def forward(self, x):
        self.save(x)
        return _logsigmoid(self.xp, x)

    def backward(self, g):
        (x,) = self.saved
        return (g * _sigmoid(self.xp, -x),)


def logsigmoid(x):
    """log σ(x), elementwise and without overflow (``torch.nn.functional.logsigmoid``)."""
    return LogSigmoid.apply(check.float_tensor(x))


def tanh(x):
    """Hyperbolic tangent, elementwise (an integer tensor gives float32, as torch)."""
    return check.tensor(x).tanh()


SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_A = 0.044715


class GELU(Function):
    r"""Gaussian error linear unit, y = x · Φ(x).

    * exact ("none"):  Φ(x) = ½ (1 + erf(x/√2));  ∂y/∂x = Φ(x) + x · φ(x), with
      φ(x) = e^{−x²/2} / √(2π) the standard normal density.
    * "tanh":  y = ½ x (1 + t),  t = tanh(u),  u = √(2/π) (x + 0.044715 x³);
      ∂y/∂x = ½ (1 + t) + ½ x (1 − t²) · √(2/π) (1 + 3 · 0.044715 x²).

    Half floats are computed in float32 (x² overflows them at |x| ≥ 256). ``x*x*x``, not
    ``x**3``: NumPy's generic power is ~70× slower."""

    kernel_name = "GELU"  # a faster implementation may run instead: tinyllm/kernels/cpu.py

    def forward(self, x, approximate="none"):
        xp = self.xp
        out_dtype = x.dtype
        if x.dtype == np.float16:
            x = x.astype(np.float32)
        if approximate == "tanh":
            t = xp.tanh(SQRT_2_OVER_PI * (x + GELU_A * x * x * x))
            y = 0.5 * x * (1 + t)
        else:
            t = 0.5 * (1 + backend.erf(self.device, x * INV_SQRT_2))  # Φ(x)
            y = x * t
        self.save(x, t, approximate)
        return y.astype(out_dtype, copy=False)

    def backward(self, g):
        x, t, approximate = self.saved
        if approximate == "tanh":
            du = SQRT_2_OVER_PI * (1 + 3 * GELU_A * x * x)
            dy = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du
        else:
            dy = t + x * self.xp.exp(-0.5 * x * x) * INV_SQRT_2PI
        return (g * dy,)


def gelu(x, approximate="none"):
    """GELU activation; ``approximate="tanh"`` gives GPT-2's tanh form."""
    check.one_of("gelu", "approximate", approximate, ("none", "tanh"))
    if check.float_tensor(x).ndim == 0:
        return _on_a_vector(gelu, x, approximate)
    return GELU.apply(x, approximate=approximate)


# ----------------------------------------------------------------------------- softmax family
@kernels.replaceable
def softmax_rows(device, x):
    """Softmax along the last axis of ``x``, with each row's max m and log Σ_j e^{x_j − m}:

        p = e^{x − m} / Σ_j e^{x_j − m}

    Subtracting m changes nothing but keeps every e^{x − m} ≤ 1: no overflow. Returns
    ``(p, m, log_sum)``, m and log_sum with a last axis of 1. (log Σ e^x = m + log_sum.)"""
    xp = device.xp
    m = x.max(axis=-1, keepdims=True)
    e = xp.exp(x - m)
    s = e.sum(axis=-1, keepdims=True)
    return e / s, m, xp.log(s)


class Softmax(Function):
    r"""y_i = e^{x_i} / Σ_j e^{x_j} along an axis (computed from x − max x: the same value,
    no overflow);  ∂L/∂x = y ⊙ (g − Σ_j g_j y_j)."""

    def forward(self, x, axis=-1):
        xp = self.xp
        if x.size == 0:  # nothing to normalise (an empty axis, or no rows)
            y = x.copy()
        else:
            y = xp.moveaxis(softmax_rows(self.device, xp.moveaxis(x, axis, -1))[0], -1, axis)
        self.save(y, axis)
        return y

    def backward(self, g):
        y, axis = self.saved
        return (y * (g - (g * y).sum(axis=axis, keepdims=True)),)


def softmax(x, axis=-1):
    """softmax(x)_i = exp(x_i) / Σ_j exp(x_j) along ``axis`` (a 0-d tensor gives 1)."""
    axis = check.valid_axis(check.float_tensor(x), axis, "softmax")
    if x.ndim == 0:
        return _on_a_vector(softmax, x, 0)
    return Softmax.apply(x, axis=axis)


class LogSoftmax(Function):
    r"""y = x − logΣexp(x) = (x − m) − log Σ_j e^{x_j − m} along an axis (m = max x);
    ∂L/∂x = g − softmax(x) · Σ_j g_j.

    Subtracting m first keeps x − m exact: x − (m + log s) would round the log-sum away
    when |x| is huge (1e300 − (1e300 + log 2) = 0, not −log 2)."""

    def forward(self, x, axis=-1):
        xp = self.xp
        if x.size == 0:
            self.save(x, axis)
            return x.copy()
        moved = xp.moveaxis(x, axis, -1)
        p, m, log_sum = softmax_rows(self.device, moved)
        self.save(xp.moveaxis(p, -1, axis), axis)
        return xp.moveaxis((moved - m) - log_sum, -1, axis)

    def backward(self, g):
        p, axis = self.saved
        return (g - p * g.sum(axis=axis, keepdims=True),)


def log_softmax(x, axis=-1):
    """log(softmax(x)) computed stably: x − logsumexp(x) (a 0-d tensor gives 0)."""
    axis = check.valid_axis(check.float_tensor(x), axis, "log_softmax")
    if x.ndim == 0:
        return _on_a_vector(log_softmax, x, 0)
    return LogSoftmax.apply(x, axis=axis)


class LogSumExp(Function):
    r"""y = log Σ_j e^{x_j} = m + log s,  s = Σ_j e^{x_j − m};
    ∂L/∂x_i = g · e^{x_i − m} / s = g · softmax(x)_i.

    The backward uses m and s, not the rounded y: at |x| ~ 1e4 in float32, e^{x − y}
    would carry y's rounding error (~1e-3) into every gradient."""

    def forward(self, x, axis=-1, keepdims=False):
        xp = self.xp
        if x.shape[axis] == 0:  # log Σ of nothing = log 0 = −∞, as torch
            y = xp.full(x.shape[:axis] + (1,) + x.shape[axis + 1:], -np.inf, dtype=x.dtype)
            self.save(x, y, y, axis, keepdims)
            return y if keepdims else y.squeeze(axis)
        m = x.max(axis=axis, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0).astype(x.dtype, copy=False)  # rows of -inf: no inf - inf
        s = xp.exp(x - m).sum(axis=axis, keepdims=True)
        y = xp.log(s) + m
        self.save(x, m, s, axis, keepdims)
        return y if keepdims else y.squeeze(axis)

    def backward(self, g):
        x, m, s, axis, keepdims = self.saved
        if not keepdims:
            g = self.xp.expand_dims(g, axis)
        return (g * (self.xp.exp(x - m) / s),)


def logsumexp(x, axis=-1, keepdims=False):
    """log Σ exp(x) along ``axis``, without overflow (−∞ over an empty axis; a 0-d tensor
    gives itself; an integer tensor gives float32, as torch)."""
    x = as_floating(check.tensor(x))
    axis = check.valid_axis(x, axis, "logsumexp")
    if x.ndim == 0:
        return _on_a_vector(logsumexp, x, 0, keepdims=True)
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)


# ----------------------------------------------------------------------------- losses
def _sum_dtype(dtype):
    """Accumulate half floats in float32 (their sums overflow at 65504); others as they are."""
    return np.float32 if dtype == np.float16 else dtype


class CrossEntropy(Function):
    r"""Softmax cross-entropy on logits z (N, C) and class indices t (N,), fused.

    With p = softmax(z), smoothing ε and the valid rows V (t ≠ ignore_index):

        loss_n = (1 − ε) · (−log p_{n,t_n}) + ε · (−(1/C) Σ_c log p_{n,c})

    and ∂loss_n/∂z_n = p_n − (1 − ε) · onehot(t_n) − ε/C. With soft targets q (N, C)
    instead of indices: loss_n = −Σ_c q'_{n,c} log p_{n,c} with q' = (1 − ε) q + ε/C, and
    ∂loss_n/∂z_n = p_n Σ_c q'_{n,c} − q'_n. "mean" divides by |V| (as torch)."""

    def forward(self, z, t, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
        xp = self.xp
        n, c = z.shape
        p, m, log_sum = softmax_rows(self.device, z)  # log p = (z − m) − log_sum
        if t.ndim == 2:  # soft targets (class probabilities)
            q = t if label_smoothing == 0 else t * (1 - label_smoothing) + label_smoothing / c
            losses = -(q * ((z - m) - log_sum)).sum(axis=1)
            valid, count = None, n
        else:
            valid = t != ignore_index
            safe_t = xp.where(valid, t, 0)
            m, log_sum = m[:, 0], log_sum[:, 0]
            losses = (m - xp.take_along_axis(z, safe_t[:, None], axis=1)[:, 0]) + log_sum  # −log p_{n,t_n}
            if label_smoothing:  # −mean_c log p_{n,c} = (m − mean_c z_c) + log_sum
                losses = losses * (1 - label_smoothing) + ((m - z.mean(axis=1)) + log_sum) * label_smoothing
            losses = xp.where(valid, losses, 0)
            count = valid.sum(dtype=_sum_dtype(z.dtype))  # not int64: that would promote to float64
            q = safe_t
        self.save(p, q, valid, count, label_smoothing, reduction)
        if reduction == "none":
            return losses
        total = losses.sum(dtype=_sum_dtype(z.dtype))  # float16 sums overflow past 65504
        if reduction == "mean":
            with np.errstate(invalid="ignore"):  # every target ignored: 0/0 = nan, as torch (no warning)
                total = total / count
        return total.astype(z.dtype)

    def backward(self, g):
        p, q, valid, count, eps, reduction = self.saved
        xp = self.xp
        n, c = p.shape
        # ∂L/∂loss_n, one number per row (0 on ignored rows), applied with p in one pass; when
        # every target is ignored the mean is 0/0 = nan, but no row has a gradient: all 0, as torch
        scale = g / xp.maximum(count, 1) if reduction == "mean" else g
        if valid is None:  # soft targets
            row = xp.broadcast_to(scale, (n,)).astype(p.dtype)[:, None]
            grad = p * (q.sum(axis=1, keepdims=True) * row)
            grad -= q * row
        else:
            row = (valid * scale).astype(p.dtype)
            grad = p * row[:, None]
            if eps:
                grad -= (eps / c) * row[:, None]
            grad[xp.arange(n), q] -= (1 - eps) * row
        return grad, None


def cross_entropy(logits, targets, ignore_index=-100, label_smoothing=0.0, reduction="mean", axis=None):
    """Cross-entropy between ``logits`` (..., C) and ``targets``: class indices (...) or
    class probabilities of the same shape as ``logits``.

    ``ignore_index``: targets equal to it add nothing (and are not counted in the mean; if
    every target is ignored, "mean" gives nan and every gradient is 0, as torch).
    ``label_smoothing`` ε ∈ [0, 1]: mixes the target with the uniform distribution.
    ``reduction``: "mean" (over counted targets), "sum" or "none" (shape of ``targets``).
    ``axis``: the class axis, last by default (a language model's (B, T, V) logits). torch's
    ``cross_entropy`` puts it at 1, (N, C, T); pass ``axis=1`` for that layout. When the
    default meets logits (N, X, X), where both readings fit, a warning asks to say which.
    """
    z, t, shape = check.cross_entropy(logits, targets, ignore_index, label_smoothing, reduction, axis)
    out = CrossEntropy.apply(z, Tensor._wrap(t, logits._device), ignore_index=ignore_index,
                             label_smoothing=label_smoothing, reduction=reduction)
    return out.reshape(shape) if reduction == "none" else out


def mse_loss(input, target, reduction="mean"):
    """Mean squared error: mean((input − target)²); ``reduction`` "mean", "sum" or "none".

    ∂L/∂input = 2 (input − target) / N for "mean" (composed from primitives)."""
    diff = check.mse_loss(input, target, reduction) - target
    sq = diff * diff
    return sq.mean() if reduction == "mean" else sq.sum() if reduction == "sum" else sq


class BinaryCrossEntropyWithLogits(Function):
    r"""Binary cross-entropy on logits x and targets t ∈ [0, 1], fused, as torch's:

        ℓ = −w · [p_w · t · log σ(x) + (1 − t) · log(1 − σ(x))]
          = w · [(1 − t) · x − l · log σ(x)],   l = 1 + (p_w − 1) · t

    (using log(1 − σ(x)) = log σ(x) − x, and the exact log σ of :func:`logsigmoid`: no log
    of a rounded 0 for logits of any size). With g = ∂L/∂ℓ:

        ∂L/∂x = g · w · (l · σ(x) − p_w · t)          (= g · w · (σ(x) − t) when p_w = 1)
        ∂L/∂t = g · w · (log σ(−x) − p_w · log σ(x))  (= −g · w · x when p_w = 1)

    σ(x) − t is computed as written, not as (1 − t) − σ(−x): at x = −40, t = 0 the first
    keeps the 4e-18, the second rounds it to 0. The weights w, p_w are constants. At ±∞
    logits 0 · ∞ gives NaN where torch does, without NumPy's warning (torch is silent)."""

    def forward(self, x, t, weight=None, pos_weight=None, reduction="mean"):
        xp = self.xp
        log_weight = 1 if pos_weight is None else (pos_weight - 1) * t + 1
        with np.errstate(invalid="ignore"):
            loss = (1 - t) * x - log_weight * _logsigmoid(xp, x)
            if weight is not None:
                loss = loss * weight
        self.save(x, t, weight, pos_weight, reduction)
        if reduction == "none":
            return loss
        return loss.mean() if reduction == "mean" else loss.sum()

    def backward(self, g):
        x, t, weight, pos_weight, reduction = self.saved
        xp = self.xp
        if reduction == "mean":
            g = g / x.size
        if weight is not None:
            g = g * weight
        need_x, need_t = self.needs_grad
        gx = gt = None
        if need_x:
            s = _sigmoid(xp, x)
            gx = g * (s - t if pos_weight is None else ((pos_weight - 1) * t + 1) * s - pos_weight * t)
        if need_t:
            with np.errstate(invalid="ignore"):  # 0 · ∞ at ±∞ logits: NaN, as torch, silently
                gt = g * (-x if pos_weight is None else _logsigmoid(xp, -x) - pos_weight * _logsigmoid(xp, x))
        return (None if gx is None else xp.broadcast_to(gx, x.shape),
                None if gt is None else xp.broadcast_to(gt, t.shape))


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy between logits ``input`` and probabilities ``target`` (same
    shape), as ``torch.nn.functional.binary_cross_entropy_with_logits``: ``weight``
    (broadcasts to the input) scales each element, ``pos_weight`` (broadcasts, usually one
    per class on the last axis) weighs the positive term; ``reduction`` "mean", "sum" or
    "none". Gradients flow to the input and the target; the weights are constants."""
    target, constants = check.binary_cross_entropy(input, target, weight, reduction, pos_weight)
    return BinaryCrossEntropyWithLogits.apply(input, target, reduction=reduction, **constants)


# ----------------------------------------------------------------------------- layers
class LayerNorm(Function):
    r"""Layer normalisation over the last axis (D features), fused.

        μ = mean(x),  σ² = mean((x − μ)²),  x̂ = (x − μ) / √(σ² + ε),  y = x̂ ⊙ w + b

    Backward, with ĝ = g ⊙ w (the gradient reaching x̂):

        ∂L/∂x = (1/√(σ² + ε)) · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂))
        ∂L/∂w = Σ_rows g ⊙ x̂,   ∂L/∂b = Σ_rows g

    Each row is first shifted by its first element (x̂ does not change): a constant row then
    gives exact zeros, not the rounding of its mean divided by √ε. Half floats are computed in
    float32 (a spread of 256 overflows their squares). A row whose squares overflow even so
    gives NaN, as torch (not a silent row of zeros)."""

    kernel_name = "LayerNorm"  # a faster implementation may run instead: tinyllm/kernels/cpu.py

    def forward(self, x, weight=None, bias=None, eps=1e-5):
        xp = self.xp
        out_dtype = x.dtype
        if x.dtype == np.float16:
            x = x.astype(np.float32)
        x = x - x[..., :1]
        centered = x - x.mean(axis=-1, keepdims=True)
        rstd = backend.inverse_std(xp, (centered * centered).mean(axis=-1, keepdims=True), eps)  # 1/√(σ² + ε)
        xhat = centered * rstd
        y = xhat * weight if weight is not None else xhat
        if bias is not None:
            y = y + bias
        self.save(xhat, rstd, weight)
        return y.astype(out_dtype, copy=False)

    def backward(self, g):
        xhat, rstd, weight = self.saved
        need = self.needs_grad
        g = g.astype(xhat.dtype, copy=False)  # float16 inputs: backward in float32 too
        rows, xhat_rows = g.reshape(-1, xhat.shape[-1]), xhat.reshape(-1, xhat.shape[-1])
        gx = gw = gb = None
        if need[0]:
            gh = g * weight if weight is not None else g  # ĝ
            gx = rstd * (gh - gh.mean(axis=-1, keepdims=True) - xhat * (gh * xhat).mean(axis=-1, keepdims=True))
        if len(need) > 1 and need[1]:
            gw = (rows * xhat_rows).sum(axis=0)
        if len(need) > 2 and need[2]:
            gb = rows.sum(axis=0)
        return (gx, gw, gb)[:len(need)]


def layer_norm(x, *args, normalized_shape=None, weight=None, bias=None, eps=1e-5):
    """Normalise ``x`` (..., D) over its last axis, then scale by ``weight`` (D,) and
    shift by ``bias`` (D,) when given: ``F.layer_norm(x, weight, bias, eps)``, or torch's
    ``F.layer_norm(x, normalized_shape, weight, bias, eps)`` (normalized_shape: the trailing
    dims of x, several of them normalised together)."""
    shape, (weight, bias, eps) = check.norm("layer_norm", x, args, normalized_shape,
                                            weight=weight, bias=bias, eps=eps)
    if len(shape) > 1:
        return check.over_trailing_axes(layer_norm, x, shape, weight, bias, eps=eps)
    check.norm_over_last_axis("layer_norm", x, eps=eps, weight=weight, bias=bias)
    if weight is None and bias is not None:
        weight = Tensor._wrap(x.xp.ones(x.shape[-1:], dtype=x.dtype), x._device)
    inputs = [x] + [p for p in (weight, bias) if p is not None]
    return LayerNorm.apply(*inputs, eps=eps)


class Linear(Function):
    r"""y = x Wᵀ + b with x (..., in), W (out, in), b (out,) — one matrix product.

    ∂L/∂x = g W,   ∂L/∂W = gᵀ x (over all rows),   ∂L/∂b = Σ_rows g."""

    def forward(self, x, weight, bias=None):
        x2 = x.reshape(math.prod(x.shape[:-1]), x.shape[-1])  # (rows, in); reshape(-1, 0) is ambiguous
        y = x2 @ weight.T
        if bias is not None:
            y += bias
        self.save(x2, weight, x.shape)
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, g):
        x2, weight, shape = self.saved
        g2 = g.reshape(x2.shape[0], weight.shape[0])
        need = self.needs_grad
        gx = (g2 @ weight).reshape(shape) if need[0] else None
        gw = g2.T @ x2 if need[1] else None
        if len(need) == 2:
            return gx, gw
        gb = g2.sum(axis=0) if need[2] else None
        return gx, gw, gb


def linear(x, weight, bias=None):
    """Affine map y = x Wᵀ + b, as ``torch.nn.functional.linear``: x (..., in), W (out, in)."""
    check.linear(x, weight, bias)
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


class Embedding(Function):
    """y = W[ids] (a row lookup);  ∂L/∂W = zeros with each g row added at its id's row
    (ids repeat, so the adds accumulate: a scatter-add)."""

    kernel_name = "Embedding"  # a faster implementation may run instead: tinyllm/kernels/cpu.py

    def forward(self, weight, ids):
        self.save(ids, weight.shape)
        return weight[ids]

    def backward(self, g):
        ids, shape = self.saved
        grad = self.xp.zeros(shape, dtype=g.dtype)
        backend.scatter_add(self.device, grad, ids.reshape(-1), g.reshape(-1, shape[1]))
        return (grad,)


def embedding(ids, weight):
    """Rows of ``weight`` (V, D) picked by integer ``ids`` (any shape) → ``(*ids.shape, D)``."""
    return Embedding.apply(weight, ids=check.embedding(ids, weight))


class Dropout(Function):
    """y = x ⊙ m / (1 − p) with m ~ Bernoulli(1 − p);  ∂L/∂x = g ⊙ m / (1 − p)."""

    def forward(self, x, p):
        keep = backend.random_uniform(self.device, x.shape, x.dtype) >= p
        scale = keep.astype(x.dtype)
        scale *= 1.0 / (1.0 - p)
        self.save(scale)
        return x * scale

    def backward(self, g):
        (scale,) = self.saved
        return (g * scale,)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by 1/(1−p) (training);
    the identity when not training or p = 0."""
    check.float_tensor(x)
    check.probability("dropout", "p", p)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return Dropout.apply(x, p=p)


def masked_fill(x, mask, value):
    """``x`` with ``value`` where ``mask`` is True (mask broadcasts to x);
    ∂L/∂x = g where the mask is False, 0 where it is True."""
    return Where.apply(check.boolean_mask(mask, x), value, x)


# ----------------------------------------------------------------------------- attention
class Attention(Function):
    r"""Scaled dot-product attention, fused:  O = softmax(Q Kᵀ · s + M) V,  s = 1/√d_k.

    Forward, with P the attention weights (rows sum to 1; a row whose every key is masked
    is all 0) and D the dropout mask (each kept entry 1/(1 − p)):

        S = Q Kᵀ · s (+ mask),   P = softmax(S),   P̃ = P ⊙ D,   O = P̃ V

    Backward, with G = ∂L/∂O, the chain rule through each line in turn:

        ∂L/∂V = P̃ᵀ G,   ∂L/∂P = (G Vᵀ) ⊙ D,   ∂L/∂S = P ⊙ (∂L/∂P − rowsum(∂L/∂P ⊙ P)),
        ∂L/∂Q = ∂L/∂S · K · s,   ∂L/∂K = (∂L/∂S)ᵀ · Q · s

    ``mask`` is boolean (True = masked out: −∞ added) or float (added). The weights P̃ stay
    on ``self.weights`` for :func:`attention`.
    """

    kernel_name = "Attention"  # a faster implementation may run instead: tinyllm/kernels/cpu.py

    __slots__ = ("weights",)

    def forward(self, q, k, v, mask=None, scale=1.0, dropout_p=0.0):
        xp = self.xp
        scores = (q @ k.swapaxes(-1, -2)) * scale
        if mask is not None:
            scores = xp.where(mask, -np.inf, scores) if mask.dtype == np.bool_ else scores + mask
        m = scores.max(axis=-1, keepdims=True)
        e = xp.exp(scores - xp.where(m == -np.inf, 0, m))  # a row of −∞ (every key masked): e = 0 ...
        total = e.sum(axis=-1, keepdims=True)
        p = e / xp.where(total == 0, 1, total)               # ... and weights 0, not 0/0
        drop = None
        if dropout_p > 0.0:
            drop = (backend.random_uniform(self.device, p.shape, p.dtype) >= dropout_p) / (1.0 - dropout_p)
            drop = drop.astype(p.dtype, copy=False)
        self.weights = p if drop is None else p * drop
        self.save(q, k, v, p, drop, scale)
        return self.weights @ v

    def backward(self, g):
        q, k, v, p, drop, scale = self.saved
        need_q, need_k, need_v = self.needs_grad
        p_used = p if drop is None else p * drop
        gv = unbroadcast(p_used.swapaxes(-1, -2) @ g, v.shape) if need_v else None
        gq = gk = None
        if need_q or need_k:
            gp = g @ v.swapaxes(-1, -2)  # ∂L/∂P̃
            if drop is not None:
                gp = gp * drop           # ∂L/∂P
            gs = p * (gp - (gp * p).sum(axis=-1, keepdims=True))  # ∂L/∂S
            gq = unbroadcast(gs @ k, q.shape) * scale if need_q else None
            gk = unbroadcast(gs.swapaxes(-1, -2) @ q, k.shape) * scale if need_k else None
        return gq, gk, gv

    def release(self):
        super().release()
        self.weights = None


def attention(q, k, v, attn_mask=None, is_causal=False, dropout_p=0.0, scale=None):
    """Scaled dot-product attention returning ``(output, weights)``; ``weights`` (…, L, S)
    are the attention probabilities (after dropout), detached from the graph. Arguments and
    masks as :func:`scaled_dot_product_attention` (a boolean mask: True = may attend)."""
    check.attention(q, k, v, dropout_p)
    mask = check.attention_mask(attn_mask, is_causal, q, k)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    out, fn = Attention.apply_with_context(q, k, v, mask=mask, scale=scale, dropout_p=dropout_p)
    weights = Tensor._wrap(fn.weights, q._device)
    if out._ctx is None:
        fn.release()  # no graph: nothing will call backward, free the saved arrays now
    return out, weights


def scaled_dot_product_attention(q, k, v, attn_mask=None, is_causal=False, dropout_p=0.0, scale=None):
    r"""Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V.

    q (..., L, d_k), k (..., S, d_k), v (..., S, d_v) → (..., L, d_v).
    ``attn_mask``, as ``torch.nn.functional.scaled_dot_product_attention``: boolean with
    True = *may attend* (False = masked out), or float added to the scores (use -inf to
    mask); broadcasts to (..., L, S). (``nn.MultiheadAttention``'s masks, as torch's, use the
    opposite: True = masked out.) ``is_causal``: position i attends only to j ≤ i. A query
    whose every key is masked gets weights 0 and output 0 (torch gives nan).
    """
    return attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, dropout_p=dropout_p, scale=scale)[0]


# =============================================================================================
# After GPT-2: the pieces of a Llama-style block (RMSNorm, rotary embeddings, SwiGLU,
# grouped-query attention). Used by tinyllm.nn.llama_layers and tinyllm.models.llama.
# =============================================================================================
__all__ += ["rms_norm", "rotary_tables", "apply_rotary", "silu", "swiglu", "grouped_query_attention"]


class RMSNorm(Function):
    r"""Root-mean-square normalisation over the last axis (D features), fused:

        r = 1 / √(mean(x²) + ε),   x̂ = x · r,   y = x̂ ⊙ w

    Unlike layer norm, no mean is subtracted and there is no bias: only the scale of each
    row is normalised. Backward, with h = g ⊙ w (the gradient reaching x̂) and
    ∂r/∂x_j = −r³ x_j / D:

        ∂L/∂x_j = r h_j − (r³ x_j / D) Σ_i h_i x_i = r · (h_j − x̂_j · mean(h ⊙ x̂))
        ∂L/∂w = Σ_rows g ⊙ x̂

    A row whose squares overflow (mean(x²) = ∞) gives NaN, as layer norm (torch's rms_norm
    gives a silent 0 there).
    """

    def forward(self, x, weight=None, eps=1e-6):
        xp = self.xp
        out_dtype = x.dtype
        if x.dtype == np.float16:  # squares of half floats overflow at |x| ≥ 256: use float32
            x = x.astype(np.float32)
        d = x.shape[-1]
        mean_square = xp.einsum("...i,...i->...", x, x)[..., None] / d  # no (…, D) temporary
        r = backend.inverse_std(xp, mean_square, eps)
        xhat = x * r
        self.save(xhat, r, weight)
        y = xhat * weight if weight is not None else xhat
        return y.astype(out_dtype, copy=False)

    def backward(self, g):
        xhat, r, weight = self.saved
        xp = self.xp
        need = self.needs_grad
        g = g.astype(xhat.dtype, copy=False)
        d = xhat.shape[-1]
        gw = None
        if weight is not None and need[1]:
            gw = xp.einsum("ij,ij->j", g.reshape(-1, d), xhat.reshape(-1, d)).astype(weight.dtype, copy=False)
        gx = None
        if need[0]:
            h = g * weight if weight is not None else g.copy()
            mean_h_xhat = xp.einsum("...i,...i->...", h, xhat)[..., None] / d
            h -= xhat * mean_h_xhat
            h *= r
            gx = h
        return (gx, gw)[:len(need)]


def rms_norm(x, *args, normalized_shape=None, weight=None, eps=None):
    """Normalise ``x`` (..., D) by the root mean square of its last axis, then scale by
    ``weight`` (D,) when given: ``F.rms_norm(x, weight, eps)``, or torch's
    ``F.rms_norm(x, normalized_shape, weight, eps)``. ``eps`` None means the dtype's machine
    epsilon, as ``torch.nn.functional.rms_norm`` (Llama uses 1e-6 or 1e-5)."""
    shape, (weight, eps) = check.norm("rms_norm", x, args, normalized_shape, weight=weight, eps=eps)
    if len(shape) > 1:
        return check.over_trailing_axes(rms_norm, x, shape, weight, eps=eps)
    check.norm_over_last_axis("rms_norm", x, weight=weight)
    eps = float(np.finfo(x.dtype).eps) if eps is None else float(eps)
    if weight is None:
        return RMSNorm.apply(x, eps=eps)
    return RMSNorm.apply(x, weight, eps=eps)


def rotary_tables(length, head_dim, theta=10000.0, start=0, dtype=np.float32, device="cpu"):
    r"""The cosines and sines of rotary position embeddings, ``(cos, sin)``, each a Tensor
    (length, head_dim / 2) for the positions ``start … start + length − 1``:

        angle[t, i] = t · θ^(−2i / head_dim),   i = 0 … head_dim/2 − 1

    Pair i turns once per 2π·θ^(2i/d) positions: the first pair fastest (one radian per
    position), the last slowest. Computed in float64 on the host, then cast (Hugging Face
    computes the angles in float32, which costs ~1e-7 relative at positions < 2048)."""
    check.rotary_tables(length, head_dim, start)
    inverse_frequency = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.arange(start, start + length, dtype=np.float64)[:, None] * inverse_frequency
    dev = backend.get_device(device)
    return (Tensor(dev.from_host(np.cos(angles).astype(dtype))),
            Tensor(dev.from_host(np.sin(angles).astype(dtype))))


class Rotary(Function):
    r"""Rotary position embedding (RoPE), in the "halves" layout of Hugging Face's Llama:
    the last axis is split into x = [x₁, x₂] (d/2 each), and pair (x₁ᵢ, x₂ᵢ) at position t is
    rotated by the angle θ_{t,i}:

        y₁ = x₁ cos θ − x₂ sin θ,     y₂ = x₂ cos θ + x₁ sin θ       (y = R(θ) x)

    A rotation is orthogonal: R(θ)⁻¹ = R(θ)ᵀ = R(−θ). The backward applies the transpose,
    i.e. rotates the gradient back by −θ:

        ∂L/∂x₁ = g₁ cos θ + g₂ sin θ,     ∂L/∂x₂ = g₂ cos θ − g₁ sin θ

    (Why attention likes it: ⟨R(θ_s) q, R(θ_t) k⟩ = ⟨q, R(θ_t − θ_s) k⟩, so scores depend
    on the offset t − s only.)"""

    def forward(self, x, cos, sin):
        self.save(cos, sin)
        return _rotate(self.xp, x, cos, sin, sign=1.0)

    def backward(self, g):
        cos, sin = self.saved
        return (_rotate(self.xp, g, cos, sin, sign=-1.0),)


def _rotate(xp, x, cos, sin, sign):
    """[x₁ cos − s·x₂ sin, x₂ cos + s·x₁ sin] with s = ±1 (the rotation by ±θ)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    y = xp.empty(x.shape, dtype=x.dtype)
    y1, y2 = y[..., :half], y[..., half:]
    xp.multiply(x1, cos, out=y1)
    xp.multiply(x2, cos, out=y2)
    if sign > 0:
        y1 -= x2 * sin
        y2 += x1 * sin
    else:
        y1 += x2 * sin
        y2 -= x1 * sin
    return y


def apply_rotary(x, cos, sin):
    """Rotate ``x`` (..., T, d) by the position angles whose cosines and sines are ``cos``,
    ``sin`` (T, d/2) (from :func:`rotary_tables`; they broadcast against x[..., :d/2]).
    Applied to queries and keys (not values) before attention."""
    cos, sin = check.rotary(x, cos, sin)
    return Rotary.apply(x, cos=cos, sin=sin)


class SiLU(Function):
    r"""y = x σ(x) (the "swish");  ∂L/∂x = g · σ(x) (1 + x (1 − σ(x)))."""

    def forward(self, x):
        s = _sigmoid(self.xp, x)
        self.save(x, s)
        return x * s

    def backward(self, g):
        x, s = self.saved
        return (g * _silu_derivative(x, s),)


def _silu_derivative(x, s):
    """d/dx (x σ(x)) = σ(x) (1 + x (1 − σ(x)))."""
    d = 1 - s
    d *= x
    d += 1
    d *= s
    return d


def silu(x):
    """SiLU (swish) activation, elementwise: x · σ(x)."""
    return SiLU.apply(check.float_tensor(x))


class SwiGLU(Function):
    r"""The gated activation of Llama's MLP, fused: y = silu(a) ⊙ b, with a = x W_gateᵀ
    (the gate) and b = x W_upᵀ (the values).

        ∂L/∂a = g ⊙ b ⊙ σ(a) (1 + a (1 − σ(a))),     ∂L/∂b = g ⊙ silu(a)

    One op instead of three (sigmoid, two products): σ(a) is computed once and kept."""

    def forward(self, a, b):
        s = _sigmoid(self.xp, a)
        silu_a = a * s
        self.save(a, b, s, silu_a)
        return silu_a * b

    def backward(self, g):
        a, b, s, silu_a = self.saved
        need = self.needs_grad
        ga = g * b * _silu_derivative(a, s) if need[0] else None
        gb = g * silu_a if need[1] else None
        return ga, gb


def swiglu(gate, up):
    """silu(gate) ⊙ up, elementwise (the two inputs have one shape): the hidden layer of a
    SwiGLU MLP, ``down(swiglu(gate(x), up(x)))``."""
    check.same_shape("swiglu", gate, up, ("gate", "up"))
    return SwiGLU.apply(gate, up)


def grouped_query_attention(q, k, v, attn_mask=None, is_causal=False, dropout_p=0.0, scale=None,
                            return_weights=False):
    r"""Attention in which groups of query heads share one key/value head (GQA).

    q (..., H, L, d), k (..., H_kv, S, d), v (..., H_kv, S, d_v) with H_kv dividing H;
    query head h reads key/value head h // (H / H_kv) (as Hugging Face's ``repeat_kv`` and
    torch's ``scaled_dot_product_attention(..., enable_gqa=True)``). H_kv = H is ordinary
    multi-head attention, H_kv = 1 multi-query attention. → (..., H, L, d_v); with
    ``return_weights`` also the weights (..., H, L, S), detached.

    No key or value is copied: the G = H / H_kv query heads of a group are stacked along the
    query axis, q → (..., H_kv, G·L, d), and attend to their group's keys in one call of the
    fused attention, whose backward then already *sums* the G heads' contributions to each
    shared key and value:

        ∂L/∂K_j = Σ_{h in group j} (∂S_h)ᵀ Q_h · s,     ∂L/∂V_j = Σ_{h in group j} P_hᵀ G_h

    ``attn_mask`` (boolean: True = may attend, or float, added) broadcasts to (..., H, L, S);
    ``is_causal``: query i sees keys j ≤ i. Other arguments as
    :func:`scaled_dot_product_attention`."""
    groups = check.grouped_heads(q, k, v)
    if groups == 1:
        out, weights = attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, dropout_p=dropout_p,
                                 scale=scale)
        return (out, weights) if return_weights else out
    mask = check.grouped_mask(attn_mask, is_causal, q, k, groups)
    lead, kv_heads, source_length = q.shape[:-3], k.shape[-3], k.shape[-2]
    stacked = q.reshape(lead + (kv_heads, groups * q.shape[-2], q.shape[-1]))
    out, weights = attention(stacked, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    out = out.reshape(q.shape[:-1] + (v.shape[-1],))
    if not return_weights:
        return out
    return out, weights.reshape(q.shape[:-1] + (source_length,))


# torch's tensor methods for the activations: x.relu(), x.sigmoid(), x.softmax(axis)...
for _function in (relu, sigmoid, softmax, log_softmax, logsumexp, silu):
    setattr(Tensor, _function.__name__, _function)
del _function
