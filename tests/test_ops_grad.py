"""Every primitive op's backward, checked against float64 central differences.

Shapes are drawn by Hypothesis (size-1 and broadcast dims included); inputs are kept away
from kinks (|x| at 0, max ties) and poles (1/x at 0); some inputs are non-contiguous.
Each test runs on every device (cpu, the CuPy-strict cpu device, and cuda when present).
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinyllm as tl
from helpers import broadcastable_pair, shapes, tensor, values

check = tl.gradcheck


# ----------------------------------------------------------------------------- unary
UNARY = {
    "neg": (lambda x: -x, {}),
    "exp": (lambda x: x.exp(), {}),
    "log": (lambda x: x.log(), {"low": 0.2, "high": 3.0}),
    "sqrt": (lambda x: x.sqrt(), {"low": 0.2, "high": 3.0}),
    "tanh": (lambda x: x.tanh(), {}),
    "abs": (lambda x: abs(x), {"away_from": [0.0]}),
    "pow2": (lambda x: x ** 2, {}),
    "pow3": (lambda x: x ** 3, {}),
    "pow_half": (lambda x: x ** 0.5, {"low": 0.2, "high": 3.0}),
    "pow_minus1": (lambda x: x ** -1, {"away_from": [0.0], "margin": 0.3}),
    "pow_1.7": (lambda x: x ** 1.7, {"low": 0.2, "high": 3.0}),
    "rpow": (lambda x: 2.0 ** x, {}),
    "clip": (lambda x: x.clip(-1.0, 1.0), {"away_from": [-1.0, 1.0]}),
    "scalar_ops": (lambda x: (3.0 - x) * 0.5 / (x * x + 1.0) + 1.0, {}),
    "rdiv": (lambda x: 1.0 / x, {"away_from": [0.0], "margin": 0.3}),
    "astype_same": (lambda x: x.astype(np.float64) * 2, {}),
}


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data(), shape=shapes, noncontiguous=st.booleans())
def test_unary(device, name, data, shape, noncontiguous):
    fn, domain = UNARY[name]
    x = tensor(values(data.draw, shape, **domain), device, noncontiguous=noncontiguous)
    assert check(fn, x)


def _axes(draw, ndim):
    choice = draw(st.sampled_from(["none", "one", "tuple"]))
    if choice == "none":
        return None
    if choice == "one":
        return draw(st.integers(-ndim, ndim - 1))
    return tuple(sorted(draw(st.sets(st.integers(0, ndim - 1), min_size=1, max_size=ndim))))


@pytest.mark.parametrize("reduction", ["sum", "mean", "var", "max", "min", "std"])
@given(data=st.data(), shape=shapes, keepdims=st.booleans())
def test_reductions(device, reduction, data, shape, keepdims):
    axis = _axes(data.draw, len(shape))
    # distinct values keep max/min away from ties (where the derivative is not defined)
    x_np = values(data.draw, shape)
    x_np = x_np + np.arange(x_np.size).reshape(shape) * 1e-2
    x = tensor(x_np, device)
    if reduction == "var":
        ddof = data.draw(st.sampled_from([0, 1]))
        n = x.size if axis is None else int(np.prod([shape[a] for a in np.atleast_1d(axis)]))
        if n - ddof <= 0:
            return
        fn = lambda t: t.var(axis=axis, ddof=ddof, keepdims=keepdims)  # noqa: E731
    elif reduction == "std":
        fn = lambda t: t.std(axis=axis, keepdims=keepdims)  # noqa: E731
        n = x.size if axis is None else int(np.prod([shape[a] for a in np.atleast_1d(axis)]))
        if n < 2:
            return  # std of one value is 0: sqrt at its kink
    else:
        fn = lambda t: getattr(t, reduction)(axis=axis, keepdims=keepdims)  # noqa: E731
    assert check(fn, x)


def test_max_ties_share_gradient(device):
    x = tl.Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True, device=device)
    x.max().backward()
    np.testing.assert_allclose(tl.backend.to_host(x.grad), [0, 0.5, 0.5, 0])


# ----------------------------------------------------------------------------- shapes
@given(data=st.data(), shape=shapes)
def test_reshape_transpose_swapaxes(device, data, shape):
    x = tensor(values(data.draw, shape), device, noncontiguous=True)
    perm = data.draw(st.permutations(range(len(shape))))
    assert check(lambda t: t.reshape(-1), x)
    assert check(lambda t: t.transpose(*perm) * 1.5, x)
    assert check(lambda t: t.swapaxes(0, -1), x)
    assert check(lambda t: t.unsqueeze(1).squeeze(1), x)


@given(data=st.data(), shapes_=broadcastable_pair())
def test_broadcast_to(device, data, shapes_):
    big = tuple(np.broadcast_shapes(*shapes_))
    x = tensor(values(data.draw, shapes_[1]), device)
    assert check(lambda t: tl.broadcast_to(t, big), x)


@given(data=st.data(), shape=shapes)
def test_getitem_slices(device, data, shape):
    x = tensor(values(data.draw, shape), device)
    starts = [data.draw(st.integers(0, n - 1)) for n in shape]
    index = tuple(slice(s, None, data.draw(st.sampled_from([1, 2]))) for s in starts)
    assert check(lambda t: t[index], x)
    assert check(lambda t: t[..., 0], x)
    assert check(lambda t: t[None, 0], x)


@given(data=st.data(), shape=shapes)
def test_getitem_repeated_integer_indices_accumulate(device, data, shape):
    x = tensor(values(data.draw, shape), device)
    idx = data.draw(hnp.arrays(np.int64, st.integers(1, 6), elements=st.integers(0, shape[0] - 1)))
    assert check(lambda t: t[idx], x)
    assert check(lambda t: t[tl.Tensor(idx, device=device)] * 2.0, x)
    mask = data.draw(hnp.arrays(np.bool_, shape))
    assert check(lambda t: t[tl.Tensor(mask, device=device)], x)


def test_getitem_repeated_index_gradient_value(device):
    x = tl.Tensor(np.arange(3.0), requires_grad=True, device=device)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(tl.backend.to_host(x.grad), [3.0, 0.0, 1.0])


@given(data=st.data(), shape=shapes, n=st.integers(1, 3))
def test_concatenate_stack_split(device, data, shape, n):
    axis = data.draw(st.integers(0, len(shape) - 1))
    xs = [tensor(values(data.draw, shape), device) for _ in range(n)]
    assert check(lambda *ts: tl.concatenate(ts, axis=axis), *xs)
    assert check(lambda *ts: tl.stack(ts, axis=axis), *xs)
    assert check(lambda *ts: tl.stack(ts, axis=-1), *xs)
    big = tl.concatenate([x.detach() for x in xs], axis=axis).requires_grad_()
    assert check(lambda t: tl.concatenate([p * (i + 1.0) for i, p in enumerate(tl.split(t, n, axis=axis))], axis=axis), big)
    if shape[axis] > 1:
        assert check(lambda t: tl.split(t, [1], axis=axis)[1], xs[0])


# ----------------------------------------------------------------------------- binary
BINARY = {
    "add": (lambda a, b: a + b, {}, {}),
    "sub": (lambda a, b: a - b, {}, {}),
    "mul": (lambda a, b: a * b, {}, {}),
    "div": (lambda a, b: a / b, {}, {"away_from": [0.0], "margin": 0.3}),
    "pow": (lambda a, b: a ** b, {"low": 0.3, "high": 2.0}, {}),
    "maximum": (lambda a, b: tl.maximum(a, b), {}, {}),
    "minimum": (lambda a, b: tl.minimum(a, b), {}, {}),
}


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data(), pair=broadcastable_pair(), swap=st.booleans())
def test_binary_broadcasting(device, name, data, pair, swap):
    fn, dom_a, dom_b = BINARY[name]
    sa, sb = pair[::-1] if swap else pair
    a_np, b_np = values(data.draw, sa, **dom_a), values(data.draw, sb, **dom_b)
    if name in ("maximum", "minimum"):  # keep a and b apart: a = b is a kink
        for offset in np.linspace(0.0, 1.0, 23):
            if np.abs(np.subtract(a_np, b_np + offset)).min() > 0.02:
                b_np = b_np + offset
                break
    a, b = tensor(a_np, device), tensor(b_np, device)
    assert check(fn, a, b)


@given(data=st.data(), pair=broadcastable_pair())
def test_where(device, data, pair):
    sa, sb = pair
    cond = data.draw(hnp.arrays(np.bool_, sb))
    a, b = tensor(values(data.draw, sa), device), tensor(values(data.draw, sb), device)
    assert check(lambda x, y: tl.where(tl.Tensor(cond, device=device), x, y), a, b)


@st.composite
def matmul_shapes(draw):
    """Every kind of matmul operand pair: vector or matrix on either side (1-D @ 1-D is a dot
    product), with or without batch axes, batch axes that broadcast (size 1, or missing on
    one side), a stack times one matrix."""
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    left = draw(st.sampled_from(["vector", "matrix", "batched"]))
    right = draw(st.sampled_from(["vector", "matrix", "batched"]))
    batch_a, batch_b = draw(broadcastable_pair(max_dims=2))
    a = (k,) if left == "vector" else (n, k)
    b = (k,) if right == "vector" else (k, m)
    return (batch_a + a if left == "batched" else a), (batch_b + b if right == "batched" else b)


@given(data=st.data(), shapes_=matmul_shapes(), noncontiguous=st.booleans())
def test_matmul(device, data, shapes_, noncontiguous):
    sa, sb = shapes_
    a = tensor(values(data.draw, sa), device, noncontiguous=noncontiguous)
    b = tensor(values(data.draw, sb), device)
    assert check(lambda x, y: x @ y, a, b)


def test_gradient_only_for_inputs_that_require_it(device):
    a = tl.Tensor(np.ones((2, 3)), requires_grad=True, device=device)
    b = tl.Tensor(np.ones((3, 4)), device=device)
    (a @ b).sum().backward()
    assert a.grad.shape == (2, 3) and b.grad is None
