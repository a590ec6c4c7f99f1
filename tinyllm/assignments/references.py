"""Reference code for the built-in assignments' hidden tests.

Two uses. A hidden test that needs a correct version of another task's code swaps it in
(training BPE calls ``merge``; the GPT calls the block; Task 4.2 grades a backward after a
correct forward), so that each mistake costs its points once. And a hidden test compares a
student's output with a NumPy computation of the same thing. Both live here rather than in
the tests cells, because nbgrader's feedback shows the tests cells to the students: there
they read one import line, not a working solution. The grader refuses this module to the
students' code.
"""
from __future__ import annotations

import math

import numpy as np

import tinyllm.functional as F

__all__ = ["with_reference_forward", "multi_head_attention_numpy", "transformer_block", "gpt_loss",
           "transformer_block_numpy", "gpt_logits_numpy", "adamw_numpy", "pair_counts", "merge",
           "causal_attention_numpy"]


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _causal(scores):
    length, source = scores.shape[-2:]
    return np.where(np.triu(np.ones((length, source), dtype=bool), 1), -np.inf, scores)


# ----------------------------------------------------------------------------- Assignment 4
def _attention_forward(self, q, k, v, causal=False):
    """The forward of Task 4.1, saving what its statement says: q, k, v, P and the scale."""
    scale = 1 / math.sqrt(q.shape[-1])
    scores = (q @ k.swapaxes(-1, -2)) * scale
    p = _softmax(_causal(scores) if causal else scores)
    self.save(q, k, v, p, scale)
    return p @ v


def with_reference_forward(attention_class):
    """``attention_class`` (a student's ``Attention``) with the reference forward and the
    student's backward: Task 4.2 grades the backward, whatever the forward does."""
    return type(attention_class.__name__, (attention_class,), {"forward": _attention_forward})


def _split_heads(qkv, i, d, n_heads):
    batch, length = qkv.shape[:2]
    return qkv[..., i * d:(i + 1) * d].reshape(batch, length, n_heads, d // n_heads).transpose(0, 2, 1, 3)


def multi_head_attention_numpy(x, w_qkv, b_qkv, w_out, b_out, n_heads):
    """Causal multi-head self-attention on arrays: x (B, T, D) → (B, T, D)."""
    batch, length, d = x.shape
    qkv = x @ w_qkv.T + b_qkv
    q, k, v = (_split_heads(qkv, i, d, n_heads) for i in range(3))
    p = _softmax(_causal(q @ k.swapaxes(-1, -2) / np.sqrt(d // n_heads)))
    return (p @ v).transpose(0, 2, 1, 3).reshape(batch, length, d) @ w_out.T + b_out


# ----------------------------------------------------------------------------- Assignment 5
def transformer_block(x, p, n_heads):
    """Task 5.1's pre-norm GPT-2 block, on Tensors (x (B, T, D), p the block's parameters)."""
    batch, length, d = x.shape

    def heads(t):
        return t.reshape(batch, length, n_heads, d // n_heads).transpose(0, 2, 1, 3)

    h = F.layer_norm(x, p["ln_1.weight"], p["ln_1.bias"])
    qkv = F.linear(h, p["attn.c_attn.weight"], p["attn.c_attn.bias"])
    att = F.scaled_dot_product_attention(heads(qkv[..., :d]), heads(qkv[..., d:2 * d]), heads(qkv[..., 2 * d:]),
                                         is_causal=True).transpose(0, 2, 1, 3).reshape(batch, length, d)
    x = x + F.linear(att, p["attn.c_proj.weight"], p["attn.c_proj.bias"])
    h = F.linear(F.layer_norm(x, p["ln_2.weight"], p["ln_2.bias"]), p["mlp.c_fc.weight"], p["mlp.c_fc.bias"])
    return x + F.linear(F.gelu(h, approximate="tanh"), p["mlp.c_proj.weight"], p["mlp.c_proj.bias"])


def gpt_loss(params, ids, targets, n_heads):
    """Task 5.2's GPT, with the reference block: (logits (B, T, V), mean cross-entropy)."""
    x = F.embedding(ids, params["wte"]) + F.embedding(np.arange(ids.shape[1]), params["wpe"])
    for p in params["blocks"]:
        x = transformer_block(x, p, n_heads)
    logits = F.linear(F.layer_norm(x, params["ln_f.weight"], params["ln_f.bias"]), params["wte"])
    return logits, F.cross_entropy(logits, targets, axis=-1)


def _layer_norm(h, weight, bias):
    return (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5) * weight + bias


def transformer_block_numpy(x, p, n_heads):
    """Task 5.1's block on arrays (p: the block's parameters, as Tensors)."""
    def norm(h, name):
        return _layer_norm(h, p[name + ".weight"].numpy(), p[name + ".bias"].numpy())

    def linear(h, name):
        return h @ p[name + ".weight"].numpy().T + p[name + ".bias"].numpy()

    batch, length, d = x.shape
    qkv = linear(norm(x, "ln_1"), "attn.c_attn")
    q, k, v = (_split_heads(qkv, i, d, n_heads) for i in range(3))
    w = _softmax(_causal(q @ k.swapaxes(-1, -2) / np.sqrt(d // n_heads)))
    x = x + linear((w @ v).transpose(0, 2, 1, 3).reshape(batch, length, d), "attn.c_proj")
    h = linear(norm(x, "ln_2"), "mlp.c_fc")
    h = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
    return x + linear(h, "mlp.c_proj")


def gpt_logits_numpy(params, ids, n_heads):
    """Task 5.2's logits on arrays: embeddings, blocks, final layer norm, tied output layer."""
    x = params["wte"].numpy()[ids] + params["wpe"].numpy()[:ids.shape[1]]
    for p in params["blocks"]:
        x = transformer_block_numpy(x, p, n_heads)
    x = _layer_norm(x, params["ln_f.weight"].numpy(), params["ln_f.bias"].numpy())
    return x @ params["wte"].numpy().T


def adamw_numpy(p, grads, lr, betas, eps, weight_decay):
    """``p`` after one AdamW step per gradient in ``grads`` (Task 5.3's formulas)."""
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        p = p * (1 - lr * weight_decay) - lr * (m / (1 - betas[0] ** t)) / (np.sqrt(v / (1 - betas[1] ** t)) + eps)
    return p


# ----------------------------------------------------------------------------- Assignment 6
def pair_counts(ids):
    """Task 6.1: {(a, b): count} in order of first occurrence."""
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids, pair, new_id):
    """Task 6.2: ids with each left-to-right occurrence of ``pair`` replaced by ``new_id``."""
    out, i = [], 0
    while i < len(ids):
        if ids[i:i + 2] == list(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


# ----------------------------------------------------------------------------- Assignment 7
def causal_attention_numpy(x, p, n_heads):
    """Causal multi-head self-attention over a whole sequence x (B, T, D), with Task 7.3's
    parameters ``p`` (Tensors): what a KV cache must reproduce step by step."""
    return multi_head_attention_numpy(x, p["c_attn.weight"].numpy(), p["c_attn.bias"].numpy(),
                                      p["c_proj.weight"].numpy(), p["c_proj.bias"].numpy(), n_heads)
