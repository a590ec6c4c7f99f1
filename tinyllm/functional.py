"""Functions of tensors, as in ``torch.nn.functional`` (import as ``F``); class axis last.

Activations, losses and attention. Softmax, log-softmax with cross-entropy, layer norm,
GELU and attention are *fused*: one op with one hand-written backward instead of a chain
of primitives. That is more stable (max-subtraction inside the op) and does less work than
the chain. Each is written here as its formula; a faster implementation of the same formula
may run instead (:mod:`tinyllm.kernels`, e.g. the softmax rows on all cores). The tests check
each fused op against the same function composed from primitives, and against PyTorch.

Notation: ``y`` the output, ``g = ∂L/∂y`` the incoming gradient.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from . import backend, kernels
from .ops import Where, shape_of
from .tensor import Function, Tensor, unbroadcast
from .tensor_methods import as_floating

__all__ = [
    "relu", "sigmoid", "logsigmoid", "tanh", "gelu", "softmax", "log_softmax", "logsumexp", "cross_entropy",
    "binary_cross_entropy_with_logits", "mse_loss", "layer_norm", "embedding", "dropout", "masked_fill",
    "linear", "scaled_dot_product_attention", "attention", "check_mask",
]


def _tensor(x, name="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a tl.Tensor, got {type(x).__name__}")
    return x


def _float_tensor(x, name="input"):
    _tensor(x, name)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def _valid_axis(x, axis, what):
    """``axis`` normalised to [0, ndim) (a 0-d tensor takes axis 0 or −1, as torch's dim)."""
    ndim = max(x.ndim, 1)
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ValueError(f"{what}: axis {axis!r} is out of range for a tensor of shape {x.shape}")
    return int(axis) % ndim


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
    return ReLU.apply(_float_tensor(x))


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
    return Sigmoid.apply(as_floating(_tensor(x)))


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
    return LogSigmoid.apply(_float_tensor(x))


def tanh(x):
    """Hyperbolic tangent, elementwise (an integer tensor gives float32, as torch)."""
    return _tensor(x).tanh()


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
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    if _float_tensor(x).ndim == 0:
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
    axis = _valid_axis(_float_tensor(x), axis, "softmax")
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
    axis = _valid_axis(_float_tensor(x), axis, "log_softmax")
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
    x = as_floating(_tensor(x))
    axis = _valid_axis(x, axis, "logsumexp")
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
    _float_tensor(logits, "logits")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if logits.ndim < 1:
        raise ValueError("cross_entropy: logits need a class axis (shape (..., C))")
    if axis is None:
        if logits.ndim >= 3 and logits.shape[1] == logits.shape[-1]:
            warnings.warn(f"cross_entropy: logits of shape {logits.shape} read with the class axis last "
                          f"(tinyllm's default); torch's layout (N, C, T) has it at axis 1. Pass axis=-1 or "
                          f"axis=1 to say which (and silence this warning).", stacklevel=2)
        axis = -1
    axis = _valid_axis(logits, axis, "cross_entropy")
    if not isinstance(targets, Tensor):
        if logits.device != "cpu":
            raise TypeError(f"cross_entropy: targets are a {type(targets).__name__} but the logits are "
                            f"on {logits.device!r}; make the targets a tl.Tensor on that device")
        targets = Tensor(np.asarray(targets))
    if targets.device != logits.device:
        raise RuntimeError(f"cross_entropy: logits on {logits.device!r} but targets on {targets.device!r}")
    soft = np.issubdtype(targets.dtype, np.floating)
    if axis != logits.ndim - 1:  # bring the class axis last: (N, C, T) → (N, T, C)
        order = [i for i in range(logits.ndim) if i != axis] + [axis]
        logits = logits.transpose(order)
        if soft and targets.ndim == logits.ndim:
            targets = targets.transpose(order)
    c = logits.shape[-1]
    if soft:
        if targets.shape != logits.shape:
            raise ValueError(f"cross_entropy: probability targets must have the logits' shape "
                             f"{logits.shape}, got {targets.shape}")
        t = targets.data.reshape(-1, c).astype(logits.dtype, copy=False)
    else:
        if not np.issubdtype(targets.dtype, np.integer):
            raise TypeError(f"cross_entropy: targets must be integer class indices or float "
                            f"probabilities, got dtype {targets.dtype}")
        if targets.shape != logits.shape[:-1]:
            raise ValueError(f"cross_entropy: logits of shape {logits.shape} (..., C), classes on the last "
                             f"axis, need targets of shape {logits.shape[:-1]}, got {targets.shape}"
                             + (" (for torch's layout (N, C, ...) pass axis=1)" if logits.ndim >= 2 else ""))
        t = targets.data.reshape(-1)
        bad = (t != ignore_index) & ((t < 0) | (t >= c))
        if bool(bad.any()):
            first = int(t[bad][0])
            raise IndexError(f"cross_entropy: target {first} is out of range for {c} classes "
                             f"(expected 0 <= target < {c}, or ignore_index={ignore_index})")
    z = logits.reshape(-1, c)
    out = CrossEntropy.apply(z, Tensor._wrap(t, logits._device), ignore_index=ignore_index,
                             label_smoothing=label_smoothing, reduction=reduction)
    if reduction == "none":
        out = out.reshape(logits.shape[:-1])
    return out


def mse_loss(input, target, reduction="mean"):
    """Mean squared error: mean((input − target)²); ``reduction`` "mean", "sum" or "none".

    ∂L/∂input = 2 (input − target) / N for "mean" (composed from primitives)."""
    _float_tensor(input, "input")
    target_shape = target.shape if isinstance(target, Tensor) else shape_of(np.asarray(target))
    if tuple(target_shape) != input.shape:
        raise ValueError(f"mse_loss: input has shape {input.shape} but target has shape "
                         f"{tuple(target_shape)}; they must match")
    diff = input - target
    sq = diff * diff
    if reduction == "mean":
        return sq.mean()
    if reduction == "sum":
        return sq.sum()
    if reduction == "none":
        return sq
    raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


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
    _float_tensor(input, "input")
    target = target if isinstance(target, Tensor) else Tensor(target, device=input.device, dtype=input.dtype)
    _float_tensor(target, "target")
    if target.shape != input.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target of shape {target.shape} must have the "
                         f"input's shape {input.shape}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"binary_cross_entropy_with_logits: reduction must be 'mean', 'sum' or 'none', "
                         f"got {reduction!r}")
    constants = {}
    for name, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is None:
            continue
        value = value if isinstance(value, Tensor) else Tensor(value, device=input.device, dtype=input.dtype)
        if value.requires_grad:
            raise ValueError(f"binary_cross_entropy_with_logits: {name} is a constant (as in torch); pass "
                             f"{name}.detach() if it comes out of a graph")
        if value.device != input.device:
            raise RuntimeError(f"binary_cross_entropy_with_logits: {name} on {value.device!r} but the input "
                               f"on {input.device!r}")
        try:
            fits = np.broadcast_shapes(value.shape, input.shape) == input.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"binary_cross_entropy_with_logits: {name} of shape {value.shape} does not "
                             f"broadcast to the input's shape {input.shape}")
        constants[name] = value.data
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


def _norm_arguments(name, x, args, normalized_shape, **named):
    """The arguments of a norm called as tinyllm's ``f(x, weight, …)`` or as torch's
    ``f(x, normalized_shape, weight, …)`` (told apart by the second argument: a shape, not a
    tensor). Returns the normalized shape (``x.shape[-1:]`` if not given) and ``named``'s
    values in order. A given normalized_shape must be the trailing dims of ``x``."""
    _tensor(x)
    if args and isinstance(args[0], (tuple, list, int, np.integer)):  # torch's order
        if normalized_shape is not None:
            raise TypeError(f"{name}: normalized_shape given twice (as the second argument and by name)")
        normalized_shape, args = args[0], args[1:]
    if len(args) > len(named):
        raise TypeError(f"{name}: takes (input, [normalized_shape,] {', '.join(named)}), got {len(args)} "
                        f"positional arguments after the input and the shape")
    for key, value in zip(named, args):
        if named[key] is not None and key != "eps":  # (eps has a default, which a positional one replaces)
            raise TypeError(f"{name}: got multiple values for argument {key!r}")
        named[key] = value
    if normalized_shape is None:
        return x.shape[-1:], tuple(named.values())
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else \
        tuple(int(n) for n in normalized_shape)
    if not shape or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"{name}: input of shape {x.shape} does not end in the normalized shape {shape}")
    return shape, tuple(named.values())


def _over_trailing_axes(fn, x, shape, *params, **kwargs):
    """``fn`` (a norm over the last axis) over the trailing ``shape`` of ``x``, several axes
    flattened into one and restored (its parameters, of that shape, flattened too)."""
    for p in params:
        if p is not None and p.shape != shape:
            raise ValueError(f"{fn.__name__}: weight and bias must have the normalized shape {shape}, got {p.shape}")
    flat = x.reshape(x.shape[:x.ndim - len(shape)] + (math.prod(shape),))
    out = fn(flat, *(p if p is None else p.reshape(-1) for p in params), **kwargs)
    return out.reshape(x.shape)


def layer_norm(x, *args, normalized_shape=None, weight=None, bias=None, eps=1e-5):
    """Normalise ``x`` (..., D) over its last axis, then scale by ``weight`` (D,) and
    shift by ``bias`` (D,) when given: ``F.layer_norm(x, weight, bias, eps)``, or torch's
    ``F.layer_norm(x, normalized_shape, weight, bias, eps)`` (normalized_shape: the trailing
    dims of x, several of them normalised together)."""
    shape, (weight, bias, eps) = _norm_arguments("layer_norm", x, args, normalized_shape,
                                                 weight=weight, bias=bias, eps=eps)
    if len(shape) > 1:
        return _over_trailing_axes(layer_norm, x, shape, weight, bias, eps=eps)
    _float_tensor(x)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"layer_norm: needs at least one feature in the last axis, got shape {x.shape}")
    if not eps > 0:
        raise ValueError(f"layer_norm: eps must be > 0 (it keeps √(σ² + ε) away from 0 on constant rows), "
                         f"got {eps!r}")
    d = x.shape[-1]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != (d,):
            raise ValueError(f"layer_norm: {name} must have shape ({d},) for input of shape {x.shape}, "
                             f"got {p.shape}")
    if weight is None and bias is not None:
        weight = Tensor._wrap(x.xp.ones((d,), dtype=x.dtype), x._device)
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
    _float_tensor(x)
    if x.ndim == 0:
        raise ValueError(f"linear: input must have shape (..., in_features), got a 0-d tensor (shape {x.shape})")
    if weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} needs a weight of shape (out, {x.shape[-1]}), "
                         f"got {weight.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
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


def as_index_array(ids, device, what, num_embeddings=None):
    """``ids`` as an integer array on ``device`` (a Tensor there, or host ids for the CPU),
    each in [0, num_embeddings) when that is given: CuPy would wrap others around silently."""
    if isinstance(ids, Tensor):
        if ids.device != device.name:
            raise RuntimeError(f"{what}: ids on {ids.device!r} but weight on {device.name!r}")
        ids = ids.data
    elif backend.array_device(ids) is None or backend.array_device(ids).name == "cpu":
        ids = np.asarray(ids)
        if device.name != "cpu":
            raise TypeError(f"{what}: ids are a host array but the weight is on {device.name!r}; "
                            f"make them a tl.Tensor on that device")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{what}: ids must be integers, got dtype {ids.dtype}")
    if num_embeddings is not None:
        out_of_range = (ids < 0) | (ids >= num_embeddings)
        if bool(out_of_range.any()):
            bad = int(ids[out_of_range].reshape(-1)[0])
            raise IndexError(f"{what}: id {bad} is out of range for {num_embeddings} embeddings "
                             f"(expected 0 <= id < {num_embeddings})")
    return ids


def embedding(ids, weight):
    """Rows of ``weight`` (V, D) picked by integer ``ids`` (any shape) → ``(*ids.shape, D)``."""
    _float_tensor(weight, "weight")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be (num_embeddings, dim), got shape {weight.shape}")
    ids = as_index_array(ids, weight._device, "embedding", num_embeddings=weight.shape[0])
    return Embedding.apply(weight, ids=ids)


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
    _float_tensor(x)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return Dropout.apply(x, p=p)


def masked_fill(x, mask, value):
    """``x`` with ``value`` where ``mask`` is True (mask broadcasts to x);
    ∂L/∂x = g where the mask is False, 0 where it is True."""
    _tensor(x)
    mask_t = mask if isinstance(mask, Tensor) else Tensor(mask, device=x.device)
    if mask_t.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be boolean, got dtype {mask_t.dtype}")
    try:
        np.broadcast_shapes(mask_t.shape, x.shape)
    except ValueError:
        raise ValueError(f"masked_fill: mask of shape {mask_t.shape} does not broadcast to input "
                         f"of shape {x.shape}") from None
    return Where.apply(mask_t, value, x)


# ----------------------------------------------------------------------------- attention
_causal_cache = {}


def causal_mask(device, length, source_length):
    """(L, S) boolean, True above the diagonal: position i may not look at j > i (cached)."""
    key = (device.name, length, source_length)
    mask = _causal_cache.get(key)
    if mask is None:
        xp = device.xp
        mask = xp.triu(xp.ones((length, source_length), dtype=bool), 1)
        if len(_causal_cache) > 64:
            _causal_cache.clear()
        _causal_cache[key] = mask
    return mask


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


def check_mask(mask, owner, name, device, true_means):
    """A user's mask as a Tensor on ``device`` (the queries'), refused with a message naming
    ``owner`` and ``name`` when it is on another device or neither boolean nor float.
    ``true_means`` says what True means in this caller's convention (for the message)."""
    m = mask if isinstance(mask, Tensor) else Tensor(mask, device=device)
    if m.device != device:
        raise RuntimeError(f"{owner}: {name} is on {m.device!r} but the inputs are on {device!r}")
    if m.dtype != np.bool_ and not np.issubdtype(m.dtype, np.floating):
        raise TypeError(f"{owner}: {name} must be boolean (True = {true_means}) or floating "
                        f"(added to the scores), got dtype {m.dtype}")
    return m


def _attention_mask(attn_mask, is_causal, q, k):
    """Combine a user mask (boolean: True = may attend; or float, added) and causality into
    one backend array for :class:`Attention` (boolean: True = masked out; or float), or None."""
    device = q._device
    length, source_length = q.shape[-2], k.shape[-2]
    mask = None
    if attn_mask is not None:
        m = check_mask(attn_mask, "attention", "attn_mask", q.device, true_means="may attend")
        expected = q.shape[:-2] + (length, source_length)
        try:
            if np.broadcast_shapes(m.shape, expected) != tuple(expected):
                raise ValueError
        except ValueError:
            raise ValueError(f"attention: attn_mask of shape {m.shape} does not broadcast to the "
                             f"scores' shape {expected} (..., L, S)") from None
        mask = ~m.data if m.dtype == np.bool_ else m.data.astype(q.dtype, copy=False)
    if is_causal:
        causal = causal_mask(device, length, source_length)
        if mask is None:
            mask = causal
        elif mask.dtype == np.bool_:
            mask = mask | causal
        else:
            mask = device.xp.where(causal, -np.inf, mask).astype(q.dtype, copy=False)
    return mask


def attention(q, k, v, attn_mask=None, is_causal=False, dropout_p=0.0, scale=None):
    """Scaled dot-product attention returning ``(output, weights)``; ``weights`` (…, L, S)
    are the attention probabilities (after dropout), detached from the graph. Arguments and
    masks as :func:`scaled_dot_product_attention` (a boolean mask: True = may attend)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        _float_tensor(t, name)
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"attention: q, k, v need shape (..., seq, dim); got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention: queries of dim {q.shape[-1]} and keys of dim {k.shape[-1]} differ "
                         f"(q {q.shape}, k {k.shape})")
    if k.shape[-2] == 0:
        raise ValueError(f"attention: there are no keys to attend to (k has shape {k.shape}, S = 0)")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"attention: {k.shape[-2]} keys but {v.shape[-2]} values (k {k.shape}, v {v.shape})")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"attention: dropout_p must be in [0, 1), got {dropout_p}")
    mask = _attention_mask(attn_mask, is_causal, q, k)
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
    shape, (weight, eps) = _norm_arguments("rms_norm", x, args, normalized_shape, weight=weight, eps=eps)
    if len(shape) > 1:
        return _over_trailing_axes(rms_norm, x, shape, weight, eps=eps)
    _float_tensor(x)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"rms_norm: needs at least one feature in the last axis, got shape {x.shape}")
    d = x.shape[-1]
    if weight is not None and weight.shape != (d,):
        raise ValueError(f"rms_norm: weight must have shape ({d},) for input of shape {x.shape}, got {weight.shape}")
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
    if head_dim <= 0 or head_dim % 2:
        raise ValueError(f"rotary_tables: head_dim must be a positive even number, got {head_dim}")
    if length < 0 or start < 0:
        raise ValueError(f"rotary_tables: length and start must be >= 0, got {length} and {start}")
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
    _float_tensor(x)
    if x.ndim < 2 or x.shape[-1] % 2:
        raise ValueError(f"apply_rotary: x must be (..., seq, head_dim) with an even head_dim, got {x.shape}")
    tables = []
    for name, t in (("cos", cos), ("sin", sin)):
        t = t if isinstance(t, Tensor) else Tensor(t, device=x.device)
        if t.device != x.device:
            raise RuntimeError(f"apply_rotary: {name} is on {t.device!r} but x is on {x.device!r}")
        expected = x.shape[-2:-1] + (x.shape[-1] // 2,)
        if t.shape != expected:
            raise ValueError(f"apply_rotary: {name} must have shape {expected} (seq, head_dim / 2) for x of "
                             f"shape {x.shape}, got {t.shape}")
        tables.append(t.data.astype(x.dtype, copy=False))
    return Rotary.apply(x, cos=tables[0], sin=tables[1])


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
    return SiLU.apply(_float_tensor(x))


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
    _float_tensor(gate, "gate")
    _float_tensor(up, "up")
    if gate.shape != up.shape:
        raise ValueError(f"swiglu: gate and up must have the same shape, got {gate.shape} and {up.shape}")
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
    for name, t in (("q", q), ("k", k), ("v", v)):
        _float_tensor(t, name)
        if t.ndim < 3:
            raise ValueError(f"grouped_query_attention: {name} must be (..., heads, seq, dim), got shape {t.shape}")
    heads, kv_heads = q.shape[-3], k.shape[-3]
    if v.shape[-3] != kv_heads or kv_heads == 0 or heads % kv_heads:
        raise ValueError(f"grouped_query_attention: key and value heads ({kv_heads}, {v.shape[-3]}) must be "
                         f"equal and divide the {heads} query heads (q {q.shape}, k {k.shape}, v {v.shape})")
    groups, length, source_length = heads // kv_heads, q.shape[-2], k.shape[-2]
    if groups == 1:
        out, weights = attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, dropout_p=dropout_p,
                                 scale=scale)
        return (out, weights) if return_weights else out
    lead, xp = q.shape[:-3], q.xp
    visible = ~causal_mask(q._device, length, source_length) if is_causal else None
    mask = None
    if attn_mask is None and is_causal:  # the same (L, S) rule for every stacked head: (G·L, S)
        mask = Tensor(xp.tile(visible, (groups, 1)))
    elif attn_mask is not None:
        m = check_mask(attn_mask, "grouped_query_attention", "attn_mask", q.device, true_means="may attend")
        full = q.shape[:-2] + (length, source_length)
        try:
            mask = xp.broadcast_to(m.data, full)
        except ValueError:
            raise ValueError(f"grouped_query_attention: attn_mask of shape {m.shape} does not broadcast "
                             f"to the scores' shape {full} (..., H, L, S)") from None
        if visible is not None:
            mask = mask & visible if mask.dtype == np.bool_ else xp.where(visible, mask, -np.inf).astype(q.dtype)
        # (..., H, L, S) → (..., H_kv, G·L, S), the layout of the stacked queries
        mask = Tensor(xp.broadcast_to(mask, full).reshape(lead + (kv_heads, groups * length, source_length)))
    stacked = q.reshape(lead + (kv_heads, groups * length, q.shape[-1]))
    out, weights = attention(stacked, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    out = out.reshape(q.shape[:-1] + (v.shape[-1],))
    if not return_weights:
        return out
    return out, weights.reshape(q.shape[:-1] + (source_length,))
