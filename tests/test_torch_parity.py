"""Forward values and gradients equal PyTorch's, in float64, for every op with a twin.

PyTorch is only a test-time reference; these tests skip cleanly without it."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinyllm as tl
import tinyllm.functional as F
from helpers import broadcastable_pair, values

torch = pytest.importorskip("torch")
TF = torch.nn.functional
RTOL = 1e-7  # the bar; most ops agree to ~1e-15
ATOL = 1e-12


def both(*arrays, device="cpu"):
    """The same float64 values as tinyllm tensors and torch tensors, both requiring grad."""
    ours = [tl.Tensor(a, requires_grad=True, device=device) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


def compare(ours_fn, torch_fn, arrays, device="cpu", grad_seed=0):
    ours, theirs = both(*arrays, device=device)
    y, yt = ours_fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=RTOL, atol=ATOL)
    g = np.random.default_rng(grad_seed).standard_normal(yt.shape)
    y.backward(tl.Tensor(g, device=device))
    yt.backward(torch.tensor(g))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(tl.backend.to_host(a.grad), b.grad.numpy(), rtol=RTOL, atol=ATOL)


UNARY = [
    ("exp", lambda x: x.exp(), torch.exp, {}),
    ("log", lambda x: x.log(), torch.log, {"low": 0.1, "high": 3}),
    ("sqrt", lambda x: x.sqrt(), torch.sqrt, {"low": 0.1, "high": 3}),
    ("tanh", lambda x: x.tanh(), torch.tanh, {}),
    ("neg", lambda x: -x, lambda x: -x, {}),
    ("abs", abs, torch.abs, {"away_from": [0.0]}),
    ("pow3", lambda x: x ** 3, lambda x: x ** 3, {}),
    ("pow1.5", lambda x: x ** 1.5, lambda x: x ** 1.5, {"low": 0.1, "high": 3}),
    ("relu", F.relu, TF.relu, {"away_from": [0.0]}),
    ("sigmoid", F.sigmoid, torch.sigmoid, {}),
    ("gelu", F.gelu, TF.gelu, {}),
    ("gelu_tanh", lambda x: F.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh"), {}),
    ("softmax", F.softmax, lambda x: TF.softmax(x, dim=-1), {}),
    ("softmax0", lambda x: F.softmax(x, axis=0), lambda x: TF.softmax(x, dim=0), {}),
    ("log_softmax", F.log_softmax, lambda x: TF.log_softmax(x, dim=-1), {}),
    ("logsumexp", F.logsumexp, lambda x: torch.logsumexp(x, dim=-1), {}),
    ("sum", lambda x: x.sum(axis=0), lambda x: x.sum(dim=0), {}),
    ("mean", lambda x: x.mean(axis=-1, keepdims=True), lambda x: x.mean(dim=-1, keepdim=True), {}),
    ("var", lambda x: x.var(axis=-1, ddof=0), lambda x: x.var(dim=-1, correction=0), {}),
    ("max", lambda x: x.max(axis=-1), lambda x: x.amax(dim=-1), {}),
    ("transpose", lambda x: x.T, lambda x: x.permute(*reversed(range(x.ndim))), {}),
    ("layer_norm", F.layer_norm, lambda x: TF.layer_norm(x, x.shape[-1:]), {}),
    ("clip", lambda x: x.clip(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5), {"away_from": [-0.5, 0.5]}),
]


@pytest.mark.parametrize("name,ours,theirs,domain", UNARY, ids=[u[0] for u in UNARY])
@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
def test_unary_and_reductions(name, ours, theirs, domain, data, shape):
    compare(ours, theirs, [values(data.draw, shape, **domain)])


BINARY = [
    ("add", lambda a, b: a + b, {}),
    ("sub", lambda a, b: a - b, {}),
    ("mul", lambda a, b: a * b, {}),
    ("div", lambda a, b: a / b, {"away_from": [0.0], "margin": 0.3}),
]


@pytest.mark.parametrize("name,fn,domain_b", BINARY, ids=[b[0] for b in BINARY])
@given(data=st.data(), pair=broadcastable_pair())
def test_binary(name, fn, domain_b, data, pair):
    compare(fn, fn, [values(data.draw, pair[0]), values(data.draw, pair[1], **domain_b)])


@given(data=st.data(), pair=broadcastable_pair())
def test_maximum_and_where(data, pair):
    a, b = values(data.draw, pair[0]), values(data.draw, pair[1])
    compare(tl.maximum, torch.maximum, [a, b])
    cond = data.draw(hnp.arrays(np.bool_, pair[1]))
    compare(lambda x, y: tl.where(tl.Tensor(cond), x, y),
            lambda x, y: torch.where(torch.tensor(cond), x, y), [a, b])


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)),
                                   ((2, 1, 3, 4), (3, 4, 2)), ((4,), (4, 5)), ((2, 3, 4), (4,))])
def test_matmul(sa, sb):
    rng = np.random.default_rng(0)
    compare(lambda a, b: a @ b, torch.matmul, [rng.standard_normal(sa), rng.standard_normal(sb)])


def test_indexing_concatenate_stack():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3))
    idx = np.array([0, 2, 2, 3, 0])
    compare(lambda t: t[idx], lambda t: t[torch.tensor(idx)], [x])
    compare(lambda t: t[1:, ::2], lambda t: t[1:, ::2], [x])
    compare(lambda a, b: tl.concatenate([a, b], axis=1), lambda a, b: torch.cat([a, b], dim=1), [x, x * 2])
    compare(lambda a, b: tl.stack([a, b], axis=1), lambda a, b: torch.stack([a, b], dim=1), [x, x * 2])
    compare(lambda t: tl.broadcast_to(t[:1], (5, 3)), lambda t: t[:1].expand(5, 3), [x])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(reduction, smoothing):
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((2, 5, 7)) * 3
    targets = rng.integers(0, 7, size=(2, 5))
    targets[0, 1] = targets[1, 3] = -100
    compare(lambda z: F.cross_entropy(z, targets, label_smoothing=smoothing, reduction=reduction),
            lambda z: TF.cross_entropy(z.reshape(-1, 7), torch.tensor(targets.reshape(-1)),
                                       label_smoothing=smoothing, reduction=reduction).reshape(
                                           (2, 5) if reduction == "none" else ()),
            [logits])


def test_cross_entropy_probability_targets():
    rng = np.random.default_rng(3)
    logits, q = rng.standard_normal((6, 4)), rng.random((6, 4))
    q /= q.sum(-1, keepdims=True)
    compare(lambda z: F.cross_entropy(z, tl.Tensor(q), label_smoothing=0.2),
            lambda z: TF.cross_entropy(z, torch.tensor(q), label_smoothing=0.2), [logits])


def test_mse_layer_norm_linear_embedding():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    compare(F.mse_loss, TF.mse_loss, [a, b])
    x, w, bias = rng.standard_normal((2, 3, 5)), rng.standard_normal(5), rng.standard_normal(5)
    compare(lambda x_, w_, b_: F.layer_norm(x_, w_, b_),
            lambda x_, w_, b_: TF.layer_norm(x_, (5,), w_, b_), [x, w, bias])
    W, c = rng.standard_normal((4, 5)), rng.standard_normal(4)
    compare(F.linear, TF.linear, [x, W, c])
    ids = rng.integers(0, 6, size=(3, 4))
    E = rng.standard_normal((6, 5))
    compare(lambda e: F.embedding(ids, e), lambda e: TF.embedding(torch.tensor(ids), e), [E])


@pytest.mark.parametrize("mask", ["none", "causal", "bool", "float"])
def test_scaled_dot_product_attention(mask):
    rng = np.random.default_rng(5)
    q, k, v = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 5, 6))
    bool_mask = rng.random((5, 5)) > 0.3  # True = may attend
    bool_mask[:, 0] = True  # every query keeps at least one key (torch gives nan otherwise)
    float_mask = rng.standard_normal((5, 5))
    ours = {"none": {}, "causal": {"is_causal": True}, "bool": {"attn_mask": tl.Tensor(bool_mask)},
            "float": {"attn_mask": tl.Tensor(float_mask)}}[mask]
    # both read a boolean attn_mask as "may attend"
    theirs = {"none": {}, "causal": {"is_causal": True}, "bool": {"attn_mask": torch.tensor(bool_mask)},
              "float": {"attn_mask": torch.tensor(float_mask)}}[mask]
    compare(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **ours),
            lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, **theirs), [q, k, v])
