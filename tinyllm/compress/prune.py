r"""Pruning: setting weights to zero, and keeping them there.

Global magnitude pruning (unstructured)
---------------------------------------
Pool the weights of every Linear layer, and zero the fraction ``amount`` of them with the
smallest magnitude, wherever they are:

    keep_i = [ |w_i| > τ ],   τ = the (amount · N)-th smallest |w| over all N pooled weights

"Global" (one threshold for all layers) lets layers with many small weights lose more than
layers whose weights all matter. A binary mask per parameter records what was cut; after
every optimizer step the masks are applied again (w ← w ⊙ m), so fine-tuning cannot grow the
zeros back. On dense NumPy arrays the zeros save neither memory nor time: a sparse format or
kernel would; here we measure what they cost in loss.

Structured pruning of attention heads
-------------------------------------
A head h of size Q in a layer of width C is the rows h·Q … (h+1)·Q − 1 of the query, key and
value projections (in GPT's packed ``c_attn`` (3C, C): those rows of each third, and their
biases) and the same columns of the output projection ``c_proj`` (C, C). Zeroing them makes
the head's values 0 and cuts its path into the residual stream: the layer computes as if it
had one head fewer (whole rows and columns, which a smaller dense matrix could store).
:func:`head_importance` ranks heads by how much the validation loss rises without each.

    pruner = Pruner.global_magnitude(model, 0.5)         # 50 % of the Linear weights
    pruner = Pruner.attention_heads(model, {"transformer.h.0.attn": [1, 3]})
    pruner.apply()                                       # zero them now
    pruner.attach(optimizer)                             # and after every optimizer.step()
    pruner.sparsity()                                    # fraction of masked weights that are 0
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..tensor import no_grad

__all__ = ["Pruner", "check_amount", "prunable_layers", "attention_layers", "head_importance", "heads_by_layer", "model_sparsity"]

_PRUNABLE = (nn.Linear, nn.Embedding)


def check_amount(amount):
    """The fraction to prune, checked to lie in [0, 1)."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float, np.floating, np.integer)) \
            or not 0.0 <= float(amount) < 1.0:
        raise ValueError(f"pruning amount must be in [0, 1) (the fraction of weights to zero), got {amount!r}")
    return float(amount)


def prunable_layers(model, modules=None):
    """name → layer for the layers whose weights magnitude pruning pools: every
    ``nn.Linear`` by default, or the ``modules`` named (Linear or Embedding; any other
    layer is refused with a ValueError naming it)."""
    named = dict(model.named_modules())
    if modules is None:
        return {name: m for name, m in named.items() if isinstance(m, nn.Linear)}
    out = {}
    for name in ([modules] if isinstance(modules, str) else modules):
        if name not in named:
            raise ValueError(f"prune: {type(model).__name__} has no layer named {name!r}")
        if not isinstance(named[name], _PRUNABLE):
            raise ValueError(f"prune: cannot prune {name!r} ({type(named[name]).__name__}): only Linear and "
                             f"Embedding weights can be magnitude-pruned")
        out[name] = named[name]
    return out


def attention_layers(model):
    """name → attention layer with prunable heads (GPT's ``CausalSelfAttention``, or
    ``nn.MultiheadAttention``), in the model's order."""
    from ..models.gpt import CausalSelfAttention
    return {name: m for name, m in model.named_modules()
            if isinstance(m, (CausalSelfAttention, nn.MultiheadAttention))}


class Pruner:
    """A set of masks (0/1 arrays, one per pruned parameter) and the means to keep them.

    Build one with :meth:`global_magnitude` or :meth:`attention_heads`; combine two with
    ``a & b``. ``names`` maps each masked parameter to a readable name."""

    def __init__(self, masks, names):
        self.masks = dict(masks)   # Parameter -> mask array (the parameter's dtype and device)
        self.names = dict(names)   # Parameter -> "transformer.h.0.attn.c_attn.weight"
        self._wrapped = {}

    # ---------------------------------------------------------------- building masks
    @classmethod
    def global_magnitude(cls, model, amount, modules=None):
        """Masks zeroing the ``amount`` (in [0, 1)) smallest-magnitude weights pooled over
        the layers :func:`prunable_layers` selects (every Linear by default; a weight shared
        by two layers counts once)."""
        amount = check_amount(amount)
        params, names = [], {}
        for name, layer in prunable_layers(model, modules).items():
            if layer.weight not in names:  # a tied weight once
                params.append(layer.weight)
                names[layer.weight] = name + ".weight"
        if not params:
            raise ValueError(f"prune: {type(model).__name__} has no Linear layer to prune")
        xp = params[0].xp
        magnitudes = xp.concatenate([xp.abs(p.data).reshape(-1) for p in params])
        k = int(round(amount * magnitudes.size))
        keep = xp.ones(magnitudes.size, dtype=params[0].dtype)
        if k > 0:
            keep[xp.argpartition(magnitudes, k - 1)[:k]] = 0  # exactly the k smallest (ties broken arbitrarily)
        masks, start = {}, 0
        for p in params:
            masks[p] = keep[start:start + p.size].reshape(p.shape).astype(p.dtype, copy=False)
            start += p.size
        return cls(masks, names)

    @classmethod
    def attention_heads(cls, model, heads):
        """Masks removing attention heads: ``heads`` maps an attention layer's name (see
        :func:`attention_layers`) to the head indices to remove, e.g.
        ``{"transformer.h.0.attn": [1, 3]}``."""
        layers = attention_layers(model)
        masks, names = {}, {}
        for name, remove in heads.items():
            if name not in layers:
                raise ValueError(f"prune heads: {name!r} is not an attention layer of {type(model).__name__}; "
                                 f"expected one of {list(layers)}")
            layer = layers[name]
            if isinstance(layer, nn.MultiheadAttention):
                n_head, qkv_w, qkv_b = layer.num_heads, (layer.in_proj_weight, "in_proj_weight"), \
                    (layer.in_proj_bias, "in_proj_bias")
                out_w = (layer.out_proj.weight, "out_proj.weight")
            else:
                n_head, qkv_w, qkv_b = layer.n_head, (layer.c_attn.weight, "c_attn.weight"), \
                    (layer.c_attn.bias, "c_attn.bias")
                out_w = (layer.c_proj.weight, "c_proj.weight")
            width = out_w[0].shape[1]
            size = width // n_head
            remove = sorted(set(int(h) for h in remove))
            bad = [h for h in remove if not 0 <= h < n_head]
            if bad:
                raise ValueError(f"prune heads: {name!r} has heads 0..{n_head - 1}, got {bad}")
            xp = out_w[0].xp
            rows = xp.ones(width, dtype=out_w[0].dtype)  # 1 = kept, per position within Q, K or V
            for h in remove:
                rows[h * size:(h + 1) * size] = 0
            qkv_rows = xp.concatenate([rows, rows, rows])
            for param, suffix, mask in ((qkv_w[0], qkv_w[1], qkv_rows[:, None]), (qkv_b[0], qkv_b[1], qkv_rows),
                                        (out_w[0], out_w[1], rows[None, :])):
                if param is None:  # bias=False
                    continue
                masks[param] = xp.broadcast_to(mask, param.shape).astype(param.dtype)
                names[param] = f"{name}.{suffix}"
        return cls(masks, names)

    def __and__(self, other):
        """Both sets of masks (a weight masked by both keeps only what both keep)."""
        masks, names = dict(self.masks), {**self.names, **other.names}
        for p, m in other.masks.items():
            masks[p] = masks[p] * m if p in masks else m
        return Pruner(masks, names)

    # ---------------------------------------------------------------- keeping them
    def apply(self):
        """Zero the pruned weights now: w ← w ⊙ m for every masked parameter."""
        with no_grad():
            for p, mask in self.masks.items():
                p.data *= mask
                p.bump_version()
        return self

    def attach(self, optimizer):
        """Make ``optimizer.step()`` re-apply the masks after every update (the update would
        otherwise move pruned weights away from zero: AdamW's momentum, for one). Applies
        them once now. Returns the optimizer."""
        self.apply()
        if id(optimizer) in self._wrapped:
            return optimizer
        step = optimizer.step

        def step_then_mask(*args, **kwargs):
            result = step(*args, **kwargs)
            self.apply()
            return result
        optimizer.step = step_then_mask  # an instance attribute, in front of the class's method
        self._wrapped[id(optimizer)] = step
        return optimizer

    def detach(self, optimizer):
        """Undo :meth:`attach`."""
        if self._wrapped.pop(id(optimizer), None) is not None:
            del optimizer.step

    def sparsity(self):
        """Fraction of the masked parameters' entries that are exactly zero."""
        zeros = sum(int((p.data == 0).sum()) for p in self.masks)
        total = sum(p.size for p in self.masks)
        return zeros / max(total, 1)

    def __repr__(self):
        return f"Pruner({len(self.masks)} masked tensors, sparsity {self.sparsity():.3f})"


def model_sparsity(model, modules=None):
    """Fraction of zero weights over the layers :func:`prunable_layers` selects."""
    seen, zeros, total = set(), 0, 0
    for layer in prunable_layers(model, modules).values():
        if id(layer.weight) in seen:
            continue
        seen.add(id(layer.weight))
        zeros += int((layer.weight.data == 0).sum())
        total += layer.weight.size
    return zeros / max(total, 1)


def head_importance(model, evaluate):
    """How much each attention head matters: ``{(layer name, head): loss without it − loss
    with it}``, where ``evaluate()`` returns the loss of ``model`` (e.g. a validation loss
    on fixed batches). Each head is removed alone, then put back."""
    base = evaluate()
    scores = {}
    for name, layer in attention_layers(model).items():
        n_head = layer.num_heads if isinstance(layer, nn.MultiheadAttention) else layer.n_head
        for h in range(n_head):
            pruner = Pruner.attention_heads(model, {name: [h]})
            saved = {p: p.data.copy() for p in pruner.masks}
            pruner.apply()
            scores[(name, h)] = evaluate() - base
            for p, data in saved.items():
                p.data[...] = data
                p.bump_version()
    return scores


def heads_by_layer(heads):
    """``[(layer, head), ...]`` → ``{layer: [head, ...]}``, what :meth:`Pruner.attention_heads` takes."""
    grouped = {}
    for name, h in heads:
        grouped.setdefault(name, []).append(h)
    return grouped
