"""What the functions of :mod:`tinyllm.functional` accept, checked.

Each public function there hands its arguments to a checker here first. The checker refuses
what the function cannot take, with an error that names what was expected and what came
(a shape, a dtype, a device, a range), and gives the arguments back in the form the
function's :class:`~tinyllm.tensor.Function` takes: a class axis moved last, targets as an
index array, the masks of attention combined into one array. So ``functional.py`` reads as
formulas, and this module says what a user may pass and what they are told otherwise.

Nothing here computes a gradient; nothing here is part of a graph.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from . import backend
from .ops import shape_of
from .tensor import Tensor
from .tensor_methods import axis_index


def tensor(x, name="input"):
    """``x``, which must be a tl.Tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a tl.Tensor, got {type(x).__name__}")
    return x


def float_tensor(x, name="input"):
    """``x``, which must be a floating-point tl.Tensor."""
    tensor(x, name)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def valid_axis(x, axis, what):
    """``axis`` of ``x`` normalised to [0, ndim), as :func:`~tinyllm.tensor_methods.axis_index`
    checks it (a 0-d tensor takes axis 0 or −1, as torch's dim)."""
    return axis_index(axis, max(x.ndim, 1), what)


def one_of(what, name, value, choices):
    """``value``, which must be one of ``choices`` (strings)."""
    if value not in choices:
        listed = " or ".join(", ".join(repr(c) for c in choices).rsplit(", ", 1))
        raise ValueError(f"{what}: {name} must be {listed}, got {value!r}")
    return value


def valid_reduction(what, reduction):
    """``reduction``, which must be "mean", "sum" or "none"."""
    return one_of(what, "reduction", reduction, ("mean", "sum", "none"))


# ----------------------------------------------------------------------------- losses
def cross_entropy(logits, targets, ignore_index, label_smoothing, reduction, axis):
    """The arguments of :func:`~tinyllm.functional.cross_entropy` as its Function takes them:
    ``(z, t, shape)`` with z the logits (N, C), class axis last, t the targets' array (N,) of
    indices or (N, C) of probabilities, and ``shape`` that of the unreduced loss."""
    float_tensor(logits, "logits")
    valid_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if logits.ndim < 1:
        raise ValueError("cross_entropy: logits need a class axis (shape (..., C))")
    if axis is None:
        if logits.ndim >= 3 and logits.shape[1] == logits.shape[-1]:
            warnings.warn(f"cross_entropy: logits of shape {logits.shape} read with the class axis last "
                          f"(tinyllm's default); torch's layout (N, C, T) has it at axis 1. Pass axis=-1 or "
                          f"axis=1 to say which (and silence this warning).", stacklevel=3)
        axis = -1
    axis = valid_axis(logits, axis, "cross_entropy")
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
        return logits.reshape(-1, c), targets.data.reshape(-1, c).astype(logits.dtype, copy=False), \
            logits.shape[:-1]
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
    return logits.reshape(-1, c), t, logits.shape[:-1]


def mse_loss(input, target, reduction):
    """The input of :func:`~tinyllm.functional.mse_loss`, whose target must have its shape."""
    float_tensor(input, "input")
    valid_reduction("mse_loss", reduction)
    target_shape = target.shape if isinstance(target, Tensor) else shape_of(np.asarray(target))
    if tuple(target_shape) != input.shape:
        raise ValueError(f"mse_loss: input has shape {input.shape} but target has shape "
                         f"{tuple(target_shape)}; they must match")
    return input


def binary_cross_entropy(input, target, weight, reduction, pos_weight):
    """``(target, constants)`` for :func:`~tinyllm.functional.binary_cross_entropy_with_logits`:
    the target a float tensor of the input's shape, ``constants`` the weights given (as
    arrays on the input's device, broadcasting to it; never part of a graph)."""
    what = "binary_cross_entropy_with_logits"
    float_tensor(input, "input")
    target = target if isinstance(target, Tensor) else Tensor(target, device=input.device, dtype=input.dtype)
    float_tensor(target, "target")
    if target.shape != input.shape:
        raise ValueError(f"{what}: target of shape {target.shape} must have the input's shape {input.shape}")
    valid_reduction(what, reduction)
    constants = {}
    for name, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is None:
            continue
        value = value if isinstance(value, Tensor) else Tensor(value, device=input.device, dtype=input.dtype)
        if value.requires_grad:
            raise ValueError(f"{what}: {name} is a constant (as in torch); pass {name}.detach() if it comes "
                             f"out of a graph")
        if value.device != input.device:
            raise RuntimeError(f"{what}: {name} on {value.device!r} but the input on {input.device!r}")
        if not broadcasts_to(value.shape, input.shape):
            raise ValueError(f"{what}: {name} of shape {value.shape} does not broadcast to the input's shape "
                             f"{input.shape}")
        constants[name] = value.data
    return target, constants


def broadcasts_to(shape, target) -> bool:
    """Whether ``shape`` broadcasts to exactly ``target``."""
    try:
        return np.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)
    except ValueError:
        return False


# ----------------------------------------------------------------------------- layers
def norm(name, x, args, normalized_shape, **named):
    """The arguments of a norm called as tinyllm's ``f(x, weight, …)`` or as torch's
    ``f(x, normalized_shape, weight, …)`` (told apart by the second argument: a shape, not a
    tensor). Returns the normalized shape (``x.shape[-1:]`` if not given) and ``named``'s
    values in order. A given normalized_shape must be the trailing dims of ``x``."""
    tensor(x)
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


def over_trailing_axes(fn, x, shape, *params, **kwargs):
    """``fn`` (a norm over the last axis) over the trailing ``shape`` of ``x``, several axes
    flattened into one and restored (its parameters, of that shape, flattened too)."""
    for p in params:
        if p is not None and p.shape != shape:
            names = "weight and bias" if len(params) > 1 else "weight"
            raise ValueError(f"{fn.__name__}: {names} must have the normalized shape {shape}, got {p.shape}")
    flat = x.reshape(x.shape[:x.ndim - len(shape)] + (math.prod(shape),))
    out = fn(flat, *(p if p is None else p.reshape(-1) for p in params), **kwargs)
    return out.reshape(x.shape)


_UNCHECKED = object()


def norm_over_last_axis(name, x, eps=_UNCHECKED, **params):
    """``x``, a float tensor with at least one feature in its last axis (D), whose ``params``
    (each None or a tensor) have shape (D,); ``eps``, when given, a number > 0."""
    float_tensor(x)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"{name}: needs at least one feature in the last axis, got shape {x.shape}")
    if eps is not _UNCHECKED and not (isinstance(eps, (int, float, np.number)) and eps > 0):
        raise ValueError(f"{name}: eps must be > 0 (it keeps √(σ² + ε) away from 0 on constant rows), "
                         f"got {eps!r}")
    d = x.shape[-1]
    for key, p in params.items():
        if p is not None and p.shape != (d,):
            raise ValueError(f"{name}: {key} must have shape ({d},) for input of shape {x.shape}, got {p.shape}")
    return x


def linear(x, weight, bias):
    """``x`` (..., in) for a weight (out, in) and a bias (out,) or None."""
    float_tensor(x)
    tensor(weight, "weight")
    if bias is not None:
        tensor(bias, "bias")
    if x.ndim == 0:
        raise ValueError(f"linear: input must have shape (..., in_features), got a 0-d tensor (shape {x.shape})")
    if weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} needs a weight of shape (out, {x.shape[-1]}), "
                         f"got {weight.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return x


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
    """The ids of :func:`~tinyllm.functional.embedding` as an index array into ``weight`` (V, D)."""
    float_tensor(weight, "weight")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be (num_embeddings, dim), got shape {weight.shape}")
    return as_index_array(ids, weight._device, "embedding", num_embeddings=weight.shape[0])


def probability(what, name, p, below_one=False):
    """``p``, which must be in [0, 1] (or [0, 1) when ``below_one``)."""
    if not (0.0 <= p < 1.0 if below_one else 0.0 <= p <= 1.0):
        raise ValueError(f"{what}: {name} must be in [0, {'1)' if below_one else '1]'}, got {p}")
    return p


def boolean_mask(mask, x):
    """``mask`` as a boolean Tensor on ``x``'s device that broadcasts to ``x``."""
    tensor(x)
    mask = mask if isinstance(mask, Tensor) else Tensor(mask, device=x.device)
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be boolean, got dtype {mask.dtype}")
    try:
        np.broadcast_shapes(mask.shape, x.shape)
    except ValueError:
        raise ValueError(f"masked_fill: mask of shape {mask.shape} does not broadcast to input "
                         f"of shape {x.shape}") from None
    return mask


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


def attention(q, k, v, dropout_p):
    """Queries (..., L, d_k), keys (..., S, d_k) and values (..., S, d_v), S ≥ 1."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        float_tensor(t, name)
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"attention: q, k, v need shape (..., seq, dim); got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention: queries of dim {q.shape[-1]} and keys of dim {k.shape[-1]} differ "
                         f"(q {q.shape}, k {k.shape})")
    if k.shape[-2] == 0:
        raise ValueError(f"attention: there are no keys to attend to (k has shape {k.shape}, S = 0)")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"attention: {k.shape[-2]} keys but {v.shape[-2]} values (k {k.shape}, v {v.shape})")
    probability("attention", "dropout_p", dropout_p, below_one=True)


def attention_mask(attn_mask, is_causal, q, k):
    """Combine a user mask (boolean: True = may attend; or float, added) and causality into
    one backend array for :class:`~tinyllm.functional.Attention` (boolean: True = masked
    out; or float), or None."""
    device = q._device
    length, source_length = q.shape[-2], k.shape[-2]
    mask = None
    if attn_mask is not None:
        m = check_mask(attn_mask, "attention", "attn_mask", q.device, true_means="may attend")
        expected = q.shape[:-2] + (length, source_length)
        if not broadcasts_to(m.shape, expected):
            raise ValueError(f"attention: attn_mask of shape {m.shape} does not broadcast to the "
                             f"scores' shape {expected} (..., L, S)")
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


def grouped_heads(q, k, v):
    """The number G of query heads that share each key/value head: q (..., H, L, d),
    k and v (..., H_kv, S, ·) with H_kv dividing H."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        float_tensor(t, name)
        if t.ndim < 3:
            raise ValueError(f"grouped_query_attention: {name} must be (..., heads, seq, dim), got shape {t.shape}")
    heads, kv_heads = q.shape[-3], k.shape[-3]
    if v.shape[-3] != kv_heads or kv_heads == 0 or heads % kv_heads:
        raise ValueError(f"grouped_query_attention: key and value heads ({kv_heads}, {v.shape[-3]}) must be "
                         f"equal and divide the {heads} query heads (q {q.shape}, k {k.shape}, v {v.shape})")
    return heads // kv_heads


def grouped_mask(attn_mask, is_causal, q, k, groups):
    """The mask of :func:`~tinyllm.functional.grouped_query_attention` (user mask and
    causality, True = may attend) for its stacked queries (..., H_kv, G·L, S), as a Tensor,
    or None."""
    length, source_length, xp = q.shape[-2], k.shape[-2], q.xp
    visible = ~causal_mask(q._device, length, source_length) if is_causal else None
    if attn_mask is None:  # the same (L, S) rule for every stacked head: (G·L, S)
        return Tensor(xp.tile(visible, (groups, 1))) if is_causal else None
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
    lead, kv_heads = q.shape[:-3], k.shape[-3]
    return Tensor(xp.broadcast_to(mask, full).reshape(lead + (kv_heads, groups * length, source_length)))


# ----------------------------------------------------------------------------- Llama's pieces
def rotary_tables(length, head_dim, start):
    """A positive even ``head_dim``, non-negative ``length`` and ``start``."""
    if head_dim <= 0 or head_dim % 2:
        raise ValueError(f"rotary_tables: head_dim must be a positive even number, got {head_dim}")
    if length < 0 or start < 0:
        raise ValueError(f"rotary_tables: length and start must be >= 0, got {length} and {start}")


def rotary(x, cos, sin):
    """The tables ``cos``, ``sin`` as arrays in ``x``'s dtype, each (seq, head_dim / 2) for
    x (..., seq, head_dim)."""
    float_tensor(x)
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
    return tables


def same_shape(what, a, b, names):
    """Two float tensors of one shape."""
    float_tensor(a, names[0])
    float_tensor(b, names[1])
    if a.shape != b.shape:
        raise ValueError(f"{what}: {names[0]} and {names[1]} must have the same shape, got {a.shape} and {b.shape}")
