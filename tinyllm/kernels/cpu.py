"""CPU kernels: the same formulas as the references, made fast for NumPy.

Where the time goes in NumPy (measured on 2 cores; see the benchmark): each elementwise
operation is one pass over memory on one core, and every temporary array is a pass more.
The kernels here therefore

* cut big arrays into pieces and run each piece on its own thread (:func:`parallel_for`:
  NumPy releases the GIL inside its loops), small enough that a piece's several passes stay
  in the cache;
* write in place (``out=``, ``*=``) into few buffers instead of making temporaries;
* turn many small matrix products into one large one (a stack of inputs times one matrix);
* use algebra the formula allows: attention's row sums from its (L, d) output instead of
  its (L, S) weights, layer norm's means as one matrix-vector product.

Each kernel names the reference it replaces (``register("Softmax")`` ↔
``tinyllm.functional.Softmax``); ``tests/test_kernels.py`` checks each against its reference.
The constants they need are repeated here (no import of ``ops`` or ``functional``).
"""
from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import backend
from .registry import FunctionKernel, register

__all__ = ["parallel_for", "thread_count", "set_thread_count"]


# ----------------------------------------------------------------------------- threads
_pool = None
_threads = None


def thread_count() -> int:
    """Threads for :func:`parallel_for`: ``$TINYLLM_NUM_THREADS`` when tinyllm was imported
    (to give each of N processes on one machine its share), else the number of cores, unless
    :func:`set_thread_count` said otherwise."""
    global _threads
    if _threads is None:
        wanted = os.environ.get("TINYLLM_NUM_THREADS", "").strip()
        _threads = max(1, int(wanted)) if wanted.isdigit() else (os.cpu_count() or 1)
    return _threads


def set_thread_count(n: int) -> None:
    """Use ``n`` threads in :func:`parallel_for` from now on."""
    global _threads
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_thread_count: expected an integer >= 1, got {n!r}")
    _threads = n


def parallel_for(n, kernel, grain=1 << 16):
    """Run ``kernel(start, stop)`` over ``range(n)`` cut into pieces of about ``grain`` items,
    on a thread pool (one call, ``kernel(0, n)``, when ``n`` is small or there is one thread).
    The kernel must write only inside its own piece."""
    global _pool
    workers = thread_count()
    if workers == 1 or n < 2 * grain:
        kernel(0, n)
        return
    if _pool is None or _pool._max_workers != workers:
        _pool = ThreadPoolExecutor(workers, thread_name_prefix="tinyllm")
    bounds = list(range(0, n, grain)) + [n]
    for future in [_pool.submit(kernel, a, b) for a, b in zip(bounds[:-1], bounds[1:])]:
        future.result()


_scratch = threading.local()  # one set of work arrays per thread: updates in two threads at once must not share one


def _work_array(xp, shape, dtype, slot):
    """A reusable work array of the calling thread (its content is garbage until written):
    the Adam update needs two per parameter, and fresh ones every step would cost page faults."""
    arrays = _scratch.__dict__.setdefault("arrays", {})
    size = math.prod(shape)
    key = (id(xp), np.dtype(dtype), slot)
    flat = arrays.get(key)
    if flat is None or flat.size < size:
        flat = arrays[key] = xp.empty(size, dtype=dtype)
    return flat[:size].reshape(shape)


# ----------------------------------------------------------------------------- softmax rows
def softmax_rows_inplace(xp, scores, rows_may_be_empty=False, max_out=None, log_sum_out=None):
    """Softmax over the last axis of the C-contiguous ``scores``, in place, by pieces of rows
    on all cores. A row of −∞ becomes all 0 when ``rows_may_be_empty`` (else 0/0 = nan).
    ``max_out`` and ``log_sum_out`` (rows, 1) receive each row's max m and log Σ e^{x − m}."""
    rows = scores.reshape(-1, scores.shape[-1])

    def kernel(lo, hi):
        block = rows[lo:hi]
        row_max = block.max(axis=-1, keepdims=True)
        if rows_may_be_empty:
            row_max[~xp.isfinite(row_max)] = 0
        block -= row_max
        xp.exp(block, out=block)
        total = block.sum(axis=-1, keepdims=True)
        if rows_may_be_empty:
            total[total == 0] = 1  # 0/1 = 0 on fully masked rows
        if max_out is not None:
            max_out[lo:hi] = row_max
        if log_sum_out is not None:
            log_sum_out[lo:hi] = xp.log(total)
        block *= 1.0 / total
    parallel_for(rows.shape[0], kernel, grain=max(1, (1 << 15) // max(rows.shape[1], 1)))
    return scores


@register("softmax_rows")
def softmax_rows(device, x):
    """``functional.softmax_rows``: one pass of the row kernel over a copy of ``x``."""
    xp = device.xp
    p = x.copy()  # C order
    m = xp.empty(x.shape[:-1] + (1,), dtype=x.dtype)
    log_sum = xp.empty_like(m)
    softmax_rows_inplace(xp, p, max_out=m.reshape(-1, 1), log_sum_out=log_sum.reshape(-1, 1))
    return p, m, log_sum


# ----------------------------------------------------------------------------- matmul
@register("MatMul")
class MatMul(FunctionKernel):
    """``ops.MatMul`` with a stack of inputs times one matrix, (..., n, k) @ (k, m), run as one
    (N, k) @ (k, m) product, forward and backward: one large BLAS call instead of one per
    item of the stack (and no (…, k, m) stack of weight gradients to sum)."""

    @staticmethod
    def forward(fn, a, b):
        if not (b.ndim == 2 and a.ndim > 2):
            return type(fn).forward(fn, a, b)
        need_a, need_b = fn.needs_grad
        fn.save(a if need_b else None, b if need_a else None, a.shape, b.shape)
        k = a.shape[-1]
        if k != b.shape[0]:
            return type(fn).forward(fn, a, b)  # the reference's error message
        return (a.reshape(-1, k) @ b).reshape(a.shape[:-1] + (b.shape[1],))

    @staticmethod
    def backward(fn, g):
        a, b, shape_a, shape_b = fn.saved
        if not (len(shape_b) == 2 and len(shape_a) > 2):
            return type(fn).backward(fn, g)
        k, m = shape_b
        g2 = g.reshape(-1, m)
        need_a, need_b = fn.needs_grad
        ga = (g2 @ b.T).reshape(shape_a) if need_a else None
        gb = a.reshape(-1, k).T @ g2 if need_b else None
        return ga, gb


# ----------------------------------------------------------------------------- GELU
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_A = 0.044715


def _gelu_tanh_t(xp, x, t):
    """t = tanh(u), u = √(2/π) (x + a x³), written into ``t``."""
    xp.multiply(x, x, out=t)
    t *= GELU_A * SQRT_2_OVER_PI
    t += SQRT_2_OVER_PI
    t *= x
    xp.tanh(t, out=t)


def _gelu_tanh_forward(xp, x, y):
    """y = ½ x (1 + tanh(√(2/π) (x + a x³)))."""
    _gelu_tanh_t(xp, x, y)
    y += 1.0
    y *= x
    y *= 0.5


def _gelu_tanh_backward(xp, x, g, out):
    """out = g · (½ (1 + t) + ½ x (1 − t²) √(2/π) (1 + 3a x²)), t recomputed from x (saving
    t would hold a second activation-sized array per layer until the backward)."""
    t, sech2 = xp.empty_like(x), xp.empty_like(x)   # one piece of the array: stays in the cache
    _gelu_tanh_t(xp, x, t)
    xp.multiply(t, t, out=sech2)
    xp.subtract(1.0, sech2, out=sech2)                 # 1 − t²
    xp.multiply(x, x, out=out)
    out *= 3 * GELU_A * SQRT_2_OVER_PI
    out += SQRT_2_OVER_PI       # du/dx
    out *= x
    out *= sech2                # x (1 − t²) du/dx
    out += t
    out += 1.0
    out *= 0.5
    out *= g


@register("GELU")
class GELU(FunctionKernel):
    """``functional.GELU``: the tanh form as in-place passes over pieces of the array on all
    cores (each piece's passes in the cache), saving x only (in float32 for half floats; the
    backward recomputes tanh(u), as torch does, to hold one activation-sized array instead
    of two); the exact form's backward in place, from x and Φ(x)."""

    @staticmethod
    def forward(fn, x, approximate="none"):
        xp = fn.xp
        out_dtype = x.dtype
        x = xp.ascontiguousarray(x.astype(np.float32) if x.dtype == np.float16 else x)
        if approximate == "tanh":
            y, t = xp.empty_like(x), None
            xf, yf = x.reshape(-1), y.reshape(-1)
            parallel_for(xf.size, lambda lo, hi: _gelu_tanh_forward(xp, xf[lo:hi], yf[lo:hi]))
        else:
            t = backend.erf(fn.device, x * INV_SQRT_2)
            t += 1
            t *= 0.5                # Φ(x)
            y = x * t
        fn.save(x, t, approximate)
        return y.astype(out_dtype, copy=False)

    @staticmethod
    def backward(fn, g):
        x, t, approximate = fn.saved
        xp = fn.xp
        g = xp.ascontiguousarray(g.astype(x.dtype, copy=False))
        if approximate == "tanh":
            grad = xp.empty_like(x)
            xf, gf, outf = x.reshape(-1), g.reshape(-1), grad.reshape(-1)
            parallel_for(xf.size, lambda lo, hi: _gelu_tanh_backward(xp, xf[lo:hi], gf[lo:hi], outf[lo:hi]))
            return (grad,)
        density = x * x             # φ(x) = e^{−x²/2}/√(2π), then Φ(x) + x φ(x)
        density *= -0.5
        xp.exp(density, out=density)
        density *= INV_SQRT_2PI
        density *= x
        density += t
        density *= g
        return (density,)


# ----------------------------------------------------------------------------- layer norm
@register("LayerNorm")
class LayerNorm(FunctionKernel):
    """``functional.LayerNorm`` with the row means as one matrix-vector product with the
    vector (1/D, …, 1/D) (a BLAS call instead of a reduction), the sums of squares by
    ``einsum`` (no squared temporary), and the backward written in place."""

    @staticmethod
    def forward(fn, x, weight=None, bias=None, eps=1e-5):
        xp = fn.xp
        out_dtype = x.dtype
        if x.dtype == np.float16:
            x = x.astype(np.float32)
        d = x.shape[-1]
        mean_of = xp.full((d,), 1.0 / d, dtype=x.dtype)  # x @ mean_of = the row means
        xhat = x - x[..., :1]  # shift by the first element: a constant row becomes exact zeros
        xhat -= (xhat @ mean_of)[..., None]
        var = xp.einsum("...i,...i->...", xhat, xhat) / d
        rstd = backend.inverse_std(xp, var, eps)[..., None]
        xhat *= rstd
        fn.save(xhat, rstd, weight, mean_of)
        y = xhat * weight if weight is not None else xhat.copy()
        if bias is not None:
            y += bias
        return y.astype(out_dtype, copy=False)

    @staticmethod
    def backward(fn, g):
        xhat, rstd, weight, mean_of = fn.saved
        xp = fn.xp
        need = fn.needs_grad
        g = g.astype(xhat.dtype, copy=False)
        d = xhat.shape[-1]
        rows, xrows = g.reshape(-1, d), xhat.reshape(-1, d)
        gw = xp.einsum("ij,ij->j", rows, xrows) if len(need) > 1 and need[1] else None
        gb = rows.sum(axis=0) if len(need) > 2 and need[2] else None
        gx = None
        if need[0]:
            gh = g * weight if weight is not None else g.copy()  # ĝ
            mean_gh_xhat = xp.einsum("...i,...i->...", gh, xhat) / d
            gh -= (gh @ mean_of)[..., None]
            gh -= xhat * mean_gh_xhat[..., None]
            gh *= rstd
            gx = gh
        return (gx, gw, gb)[:len(need)]


# ----------------------------------------------------------------------------- attention
@register("Attention")
class Attention(FunctionKernel):
    """``functional.Attention`` with fewer passes over the big (…, L, S) arrays:

    * Q is scaled (L × d numbers) instead of the scores (L × S);
    * the mask is written into the scores in place; the softmax is the row kernel;
    * the backward's row sums r = rowsum(∂L/∂P ⊙ P) come from the output instead of the
      weights: Σ_j P̃_ij (G_i · V_j) = G_i · O_i, an (L, d) product (FlashAttention's trick);
    * ∂L/∂S is built in place in one (L, S) buffer.
    """

    @staticmethod
    def forward(fn, q, k, v, mask=None, scale=1.0, dropout_p=0.0):
        xp = fn.xp
        scores = (q * scale) @ k.swapaxes(-1, -2)  # a new (…, L, S) array: written in place below
        if mask is not None:
            if mask.dtype == np.bool_:
                xp.copyto(scores, scores.dtype.type(-np.inf), where=mask)
            else:
                scores += mask
        rows_may_be_empty = mask is not None
        p = softmax_rows_inplace(xp, xp.ascontiguousarray(scores), rows_may_be_empty)
        drop = None
        p_used = p
        if dropout_p > 0.0:
            drop = (backend.random_uniform(fn.device, p.shape, p.dtype) >= dropout_p).astype(p.dtype)
            drop *= 1.0 / (1.0 - dropout_p)
            p_used = p * drop
        out = p_used @ v
        fn.save(q, k, v, p, drop, p_used, out, scale)
        fn.weights = p_used
        return out

    @staticmethod
    def backward(fn, g):
        q, k, v, p, drop, p_used, out, scale = fn.saved
        need_q, need_k, need_v = fn.needs_grad
        gq = gk = gv = None
        if need_v:
            gv = backend.unbroadcast(p_used.swapaxes(-1, -2) @ g, v.shape)
        if need_q or need_k:
            gs = g @ v.swapaxes(-1, -2)  # ∂L/∂P̃, (…, L, S)
            if drop is not None:
                gs *= drop
            gs -= (g * out).sum(axis=-1, keepdims=True)  # − r
            gs *= p                                       # ∂L/∂S
            if need_q:
                gq = backend.unbroadcast(gs @ k, q.shape)
                gq *= scale
            if need_k:
                gk = backend.unbroadcast(gs.swapaxes(-1, -2) @ q, k.shape)
                gk *= scale
        return gq, gk, gv


# ----------------------------------------------------------------------------- embedding
@register("Embedding")
class Embedding(FunctionKernel):
    """``functional.Embedding`` with the backward's scatter-add done by sorting: the rows of g
    ordered by id, each run of equal ids summed by one ``add.reduceat``, the sums written to
    their rows (``np.add.at`` visits the rows one by one: 1.8 ms against 0.14 ms for 768 ids
    of width 128 here)."""

    @staticmethod
    def forward(fn, weight, ids):
        fn.save(ids, weight.shape)
        return weight[ids]

    @staticmethod
    def backward(fn, g):
        ids, shape = fn.saved
        xp = fn.xp
        flat = ids.reshape(-1)
        grad = xp.zeros(shape, dtype=g.dtype)
        if flat.size == 0:
            return (grad,)
        order = xp.argsort(flat, kind="stable")
        ordered = flat[order]
        starts = xp.flatnonzero(xp.concatenate([xp.ones(1, dtype=bool), ordered[1:] != ordered[:-1]]))
        grad[ordered[starts]] = xp.add.reduceat(g.reshape(-1, shape[1])[order], starts, axis=0)
        return (grad,)


# ----------------------------------------------------------------------------- Adam
@register("adam_update")
def adam_update(device, theta, g, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """``optim.adam_update`` as in-place passes over pieces of the flat arrays on all cores,
    with the bias corrections folded into two numbers (no array pass spent on them):

        lr·m̂/(√v̂ + ε) = [lr·√(1−β₂ᵗ)/(1−β₁ᵗ)] · m / (√v + ε·√(1−β₂ᵗ))
    """
    xp = device.xp
    sqrt_bias_correction2 = math.sqrt(1.0 - beta2 ** step)
    step_size = lr * sqrt_bias_correction2 / (1.0 - beta1 ** step)
    eps_hat = eps * sqrt_bias_correction2
    decay = 1.0 - lr * weight_decay if weight_decay and decoupled else None
    l2 = weight_decay if weight_decay and not decoupled else 0.0
    flat = all(a.flags.c_contiguous for a in (theta, g, m, v))
    shape = (theta.size,) if flat else theta.shape
    theta_, grad_, m_, v_ = (a.reshape(shape) if flat else a for a in (theta, g, m, v))
    work = _work_array(xp, shape, theta.dtype, 0)
    work2 = _work_array(xp, shape, theta.dtype, 1) if l2 else None

    def kernel(lo, hi):
        part = slice(lo, hi) if flat else Ellipsis
        th, gr, mm, vv, w = theta_[part], grad_[part], m_[part], v_[part], work[part]
        if decay is not None:
            th *= decay                                     # AdamW: θ ← θ − lr·λθ
        if l2:
            gr = xp.multiply(th, l2, out=work2[part])
            gr += grad_[part]                               # Adam: g ← g + λθ
        mm *= beta1                                         # m ← β₁m + (1−β₁)g
        mm += xp.multiply(gr, 1.0 - beta1, out=w)
        vv *= beta2                                         # v ← β₂v + (1−β₂)g²
        xp.multiply(gr, gr, out=w)
        w *= 1.0 - beta2
        vv += w
        denominator = xp.sqrt(vv, out=w)                    # √v + ε√(1−β₂ᵗ)
        denominator += eps_hat
        update = xp.divide(mm, denominator, out=w)
        update *= step_size
        th -= update                                        # θ ← θ − lr·m̂/(√v̂+ε)
    if flat:
        parallel_for(theta.size, kernel)
    else:
        kernel(0, theta.size)
