"""The functions of tinyllm.functional: gradients checked numerically, and every fused
op compared with the same function composed from primitives."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinyllm as tl
import tinyllm.functional as F
from helpers import shapes, tensor, values

check = tl.gradcheck


def host(t):
    return tl.backend.to_host(t.data if isinstance(t, tl.Tensor) else t)


# ----------------------------------------------------------------------------- activations
ACTIVATIONS = {
    "relu": (F.relu, {"away_from": [0.0]}),
    "sigmoid": (F.sigmoid, {"low": -6, "high": 6}),
    "tanh": (F.tanh, {}),
    "gelu": (F.gelu, {"low": -4, "high": 4}),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), {"low": -4, "high": 4}),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@given(data=st.data(), shape=shapes, noncontiguous=st.booleans())
def test_activation_gradients(device, name, data, shape, noncontiguous):
    fn, domain = ACTIVATIONS[name]
    assert check(fn, tensor(values(data.draw, shape, **domain), device, noncontiguous=noncontiguous))


@given(data=st.data(), shape=shapes)
def test_fused_activations_equal_their_composition(device, data, shape):
    x = tensor(values(data.draw, shape, low=-4, high=4), device)
    erf = tl.Tensor(tl.backend.erf(device, x.data / math.sqrt(2)))
    composed = {
        "sigmoid": 1.0 / (1.0 + (-x).exp()),
        "gelu": x * 0.5 * (1.0 + erf),
        "gelu_tanh": 0.5 * x * (1.0 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)).tanh()),
        "relu": tl.maximum(x, 0.0 * x),
    }
    for name, expected in composed.items():
        np.testing.assert_allclose(host(ACTIVATIONS[name][0](x)), host(expected), rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- softmax family
@given(data=st.data(), shape=shapes)
def test_softmax_family_gradients(device, data, shape):
    x = tensor(values(data.draw, shape, low=-3, high=3), device, noncontiguous=data.draw(st.booleans()))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    assert check(lambda t: F.softmax(t, axis=axis), x)
    assert check(lambda t: F.log_softmax(t, axis=axis), x)
    assert check(lambda t: F.logsumexp(t, axis=axis), x)
    assert check(lambda t: F.logsumexp(t, axis=axis, keepdims=True), x)


@given(data=st.data(), shape=shapes)
def test_softmax_family_equals_composition(device, data, shape):
    x = tensor(values(data.draw, shape, low=-3, high=3), device)
    e = x.exp()
    s = e / e.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(host(F.softmax(x)), host(s), rtol=1e-12)
    np.testing.assert_allclose(host(F.log_softmax(x)), host(s.log()), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(F.logsumexp(x)), host(e.sum(axis=-1).log()), rtol=1e-12)
    # and the gradients of the composition equal the fused backward
    g = values(data.draw, shape)
    for fused, composed in ((F.softmax, lambda t: t.exp() / t.exp().sum(axis=-1, keepdims=True)),
                            (F.log_softmax, lambda t: t - t.exp().sum(axis=-1, keepdims=True).log())):
        a, b = x.detach().requires_grad_(), x.detach().requires_grad_()
        fused(a).backward(tl.Tensor(g, device=device))
        composed(b).backward(tl.Tensor(g, device=device))
        np.testing.assert_allclose(host(a.grad), host(b.grad), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- losses
@st.composite
def classification(draw):
    lead = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=3))
    c = draw(st.integers(1, 5))
    return lead, c


@given(data=st.data(), problem=classification(),
       reduction=st.sampled_from(["mean", "sum", "none"]),
       smoothing=st.sampled_from([0.0, 0.1, 0.5]))
def test_cross_entropy_gradients(device, data, problem, reduction, smoothing):
    lead, c = problem
    logits = tensor(values(data.draw, lead + (c,), low=-3, high=3), device)
    targets = data.draw(hnp.arrays(np.int64, lead, elements=st.integers(0, c - 1)))
    ignore = data.draw(hnp.arrays(np.bool_, lead))
    if reduction == "mean":
        ignore.flat[0] = False  # at least one counted target
    targets = np.where(ignore, -100, targets)
    t = tl.Tensor(targets, device=device)
    assert check(lambda z: F.cross_entropy(z, t, label_smoothing=smoothing, reduction=reduction), logits)


@given(data=st.data(), problem=classification(), smoothing=st.sampled_from([0.0, 0.2]))
def test_cross_entropy_soft_targets(device, data, problem, smoothing):
    lead, c = problem
    logits = tensor(values(data.draw, lead + (c,)), device)
    q = np.random.default_rng(0).random(lead + (c,))
    q /= q.sum(-1, keepdims=True)
    qt = tl.Tensor(q, device=device)
    assert check(lambda z: F.cross_entropy(z, qt, label_smoothing=smoothing, axis=-1), logits)


@given(data=st.data(), problem=classification(), smoothing=st.sampled_from([0.0, 0.3]))
def test_cross_entropy_equals_composition(device, data, problem, smoothing):
    lead, c = problem
    x = tensor(values(data.draw, lead + (c,), low=-3, high=3), device)
    targets = data.draw(hnp.arrays(np.int64, lead, elements=st.integers(0, c - 1)))
    onehot = np.eye(c)[targets] * (1 - smoothing) + smoothing / c
    composed = -(F.log_softmax(x) * tl.Tensor(onehot, device=device)).sum(axis=-1).mean()
    fused = F.cross_entropy(x, tl.Tensor(targets, device=device), label_smoothing=smoothing)
    np.testing.assert_allclose(host(fused), host(composed), rtol=1e-12)


def test_cross_entropy_ignore_index_counts_only_valid(device):
    z = tl.Tensor(np.zeros((4, 3)), requires_grad=True, device=device)
    t = tl.Tensor(np.array([0, -100, 2, -100]), device=device)
    loss = F.cross_entropy(z, t)
    np.testing.assert_allclose(loss.item(), math.log(3))
    loss.backward()
    g = host(z.grad)
    assert np.all(g[[1, 3]] == 0)
    np.testing.assert_allclose(g[0], np.array([1 / 3 - 1, 1 / 3, 1 / 3]) / 2)


@given(data=st.data(), shape=shapes, reduction=st.sampled_from(["mean", "sum", "none"]))
def test_mse_loss(device, data, shape, reduction):
    a = tensor(values(data.draw, shape), device)
    b = tensor(values(data.draw, shape), device)
    assert check(lambda x, y: F.mse_loss(x, y, reduction=reduction), a, b)
    expected = (host(a) - host(b)) ** 2
    expected = {"mean": expected.mean(), "sum": expected.sum(), "none": expected}[reduction]
    np.testing.assert_allclose(host(F.mse_loss(a, b, reduction=reduction)), expected, rtol=1e-12)


# ----------------------------------------------------------------------------- layers
@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4),
       affine=st.sampled_from(["both", "weight", "none"]))
def test_layer_norm(device, data, shape, affine):
    d = shape[-1]
    x = tensor(values(data.draw, shape), device, noncontiguous=data.draw(st.booleans()))
    w = tensor(values(data.draw, (d,), low=0.5, high=1.5), device)
    b = tensor(values(data.draw, (d,)), device)
    if affine == "both":
        assert check(lambda x_, w_, b_: F.layer_norm(x_, w_, b_), x, w, b)
    elif affine == "weight":
        assert check(lambda x_, w_: F.layer_norm(x_, w_), x, w)
    else:
        assert check(lambda x_: F.layer_norm(x_), x)
    # equal to the composition from primitives
    mu = x.mean(axis=-1, keepdims=True)
    composed = (x - mu) / (x.var(axis=-1, keepdims=True) + 1e-5).sqrt() * w + b
    np.testing.assert_allclose(host(F.layer_norm(x, w, b)), host(composed), rtol=1e-10, atol=1e-12)


@given(data=st.data(), lead=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3),
       n_in=st.integers(1, 4), n_out=st.integers(1, 4), bias=st.booleans())
def test_linear(device, data, lead, n_in, n_out, bias):
    x = tensor(values(data.draw, lead + (n_in,)), device)
    w = tensor(values(data.draw, (n_out, n_in)), device)
    b = tensor(values(data.draw, (n_out,)), device)
    if bias:
        assert check(F.linear, x, w, b)
        composed = x @ w.T + b
        np.testing.assert_allclose(host(F.linear(x, w, b)), host(composed), rtol=1e-12, atol=1e-14)
    else:
        assert check(F.linear, x, w)


@given(data=st.data(), ids=hnp.arrays(np.int64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5),
                                       elements=st.integers(0, 3)))
def test_embedding_repeated_ids_accumulate(device, data, ids):
    w = tensor(values(data.draw, (4, 3)), device)
    ids_t = tl.Tensor(ids, device=device)
    assert check(lambda w_: F.embedding(ids_t, w_), w)
    out = F.embedding(ids_t, w.detach())
    np.testing.assert_array_equal(host(out), host(w)[ids])


@given(data=st.data(), shape=shapes, p=st.sampled_from([0.1, 0.5, 0.9]))
def test_dropout(device, data, shape, p):
    x = tensor(values(data.draw, shape), device)

    def fn(t):
        tl.manual_seed(3)  # the same mask on every call of the gradient check
        return F.dropout(t, p=p, training=True)
    assert check(fn, x)
    y = host(fn(x))
    kept = y != 0
    np.testing.assert_allclose(y[kept], host(x)[kept] / (1 - p), rtol=1e-12)
    assert F.dropout(x, p=p, training=False) is x


def test_dropout_keeps_expected_fraction(device):
    x = tl.ones(100_000, device=device)
    y = host(F.dropout(x, p=0.3))
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.02


@given(data=st.data(), shape=shapes)
def test_masked_fill(device, data, shape):
    x = tensor(values(data.draw, shape), device)
    mask = data.draw(hnp.arrays(np.bool_, shape[-1:]))
    m = tl.Tensor(mask, device=device)
    assert check(lambda t: F.masked_fill(t, m, -5.0), x)
    np.testing.assert_array_equal(host(F.masked_fill(x, m, -5.0)), np.where(mask, -5.0, host(x)))


# ----------------------------------------------------------------------------- attention
@st.composite
def attention_problem(draw):
    batch = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=2))
    length, source, dk, dv = (draw(st.integers(1, 4)) for _ in range(4))
    return batch, length, source, dk, dv


def _reference_attention(q, k, v, allowed=None, additive=None, causal=False):
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if additive is not None:
        s = s + additive
    if causal:
        s = np.where(np.triu(np.ones(s.shape[-2:], bool), 1), -np.inf, s)
    if allowed is not None:  # boolean masks as torch's scaled_dot_product_attention: True = may attend
        s = np.where(allowed, s, -np.inf)
    m = s.max(-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(s - m)
    z = e.sum(-1, keepdims=True)
    p = np.where(z > 0, e / np.where(z > 0, z, 1), 0)
    return p @ v


@given(data=st.data(), problem=attention_problem(),
       mask_kind=st.sampled_from(["none", "bool", "additive", "causal", "causal+bool"]))
def test_attention(device, data, problem, mask_kind):
    batch, length, source, dk, dv = problem
    if "causal" in mask_kind:
        source = length
    q = tensor(values(data.draw, batch + (length, dk)), device)
    k = tensor(values(data.draw, batch + (source, dk)), device)
    v = tensor(values(data.draw, batch + (source, dv)), device)
    allowed = additive = None
    kwargs = {}
    if "bool" in mask_kind:
        allowed = data.draw(hnp.arrays(np.bool_, (length, source)))
        kwargs["attn_mask"] = tl.Tensor(allowed, device=device)
    if mask_kind == "additive":
        additive = values(data.draw, (length, source))
        kwargs["attn_mask"] = tl.Tensor(additive, device=device)
    causal = "causal" in mask_kind
    kwargs["is_causal"] = causal
    assert check(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **kwargs), q, k, v)
    expected = _reference_attention(host(q), host(k), host(v), allowed, additive, causal)
    np.testing.assert_allclose(host(F.scaled_dot_product_attention(q, k, v, **kwargs)), expected,
                               rtol=1e-10, atol=1e-12)


def test_attention_fully_masked_rows_are_zero_not_nan(device):
    q = tl.Tensor(np.ones((2, 3, 4)), requires_grad=True, device=device)
    allowed = np.ones((3, 3), bool)
    allowed[1] = False  # query 1 may look at nothing
    out, weights = F.attention(q, q, q, attn_mask=tl.Tensor(allowed, device=device))
    out.sum().backward()
    assert np.all(host(out)[:, 1] == 0) and np.all(host(weights)[:, 1] == 0)
    assert np.isfinite(host(q.grad)).all()


def test_attention_with_dropout_gradients(device):
    rng = np.random.default_rng(0)
    q, k, v = (tensor(rng.standard_normal((2, 3, 4)), device) for _ in range(3))

    def fn(a, b, c):
        tl.manual_seed(7)
        return F.scaled_dot_product_attention(a, b, c, dropout_p=0.3)
    assert check(fn, q, k, v)


def test_attention_equals_composition_from_primitives(device):
    rng = np.random.default_rng(1)
    q, k, v = (tensor(rng.standard_normal((2, 5, 4)), device) for _ in range(3))
    composed = F.softmax(q @ k.swapaxes(-1, -2) / math.sqrt(4) + tl.Tensor(
        np.triu(np.full((5, 5), -np.inf), 1), device=device)) @ v
    fused = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose(host(fused), host(composed), rtol=1e-12)
    g = tl.Tensor(rng.standard_normal((2, 5, 4)), device=device)
    fused.backward(g)
    grads_fused = [host(t.grad) for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    composed.backward(g)
    for a, t in zip(grads_fused, (q, k, v)):
        np.testing.assert_allclose(a, host(t.grad), rtol=1e-10, atol=1e-12)
