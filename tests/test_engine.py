"""The graph engine: topological order, accumulation, freeing, no_grad, dtypes, devices."""
import numpy as np
import pytest

import tinyllm as tl
import tinyllm.functional as F


def host(a):
    return tl.backend.to_host(a)


def test_long_chain_does_not_hit_recursion_limit(device):
    x = tl.Tensor(np.array(1.0), requires_grad=True, device=device)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(float(host(x.grad)), 1.0001 ** 10_000, rtol=1e-6)


def test_tensor_used_twice_gets_both_contributions(device):
    x = tl.Tensor(np.array([2.0, 3.0]), requires_grad=True, device=device)
    y = x * x + x  # dy/dx = 2x + 1
    y.sum().backward()
    np.testing.assert_array_equal(host(x.grad), [5.0, 7.0])


def test_diamond_graph(device):
    x = tl.Tensor(np.array(1.5), requires_grad=True, device=device)
    a, b = x.exp(), x.tanh()
    (a * b + a).backward()
    e, t = np.exp(1.5), np.tanh(1.5)
    np.testing.assert_allclose(float(host(x.grad)), e * t + e * (1 - t * t) + e)


def test_grads_accumulate_across_backward_calls(device):
    x = tl.Tensor(np.array([1.0, 2.0]), requires_grad=True, device=device)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(host(x.grad), [6.0, 6.0])


def test_leaf_grads_are_independent_writable_arrays(device):
    a = tl.Tensor(np.ones(3), requires_grad=True, device=device)
    b = tl.Tensor(np.ones(3), requires_grad=True, device=device)
    (a + b).sum().backward()  # Add passes one array to both
    a.grad[0] = 10.0
    assert float(host(b.grad)[0]) == 1.0
    c = tl.Tensor(np.ones((2, 3)), requires_grad=True, device=device)
    c.sum().backward()  # a broadcast (read-only) view upstream
    c.grad[0, 0] = 5.0


def test_second_backward_without_retain_graph_is_a_clear_error(device):
    x = tl.Tensor(np.array([1.0, 2.0]), requires_grad=True, device=device)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward(device):
    x = tl.Tensor(np.array([1.0, 2.0]), requires_grad=True, device=device)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = host(x.grad).copy()
    y.backward()
    np.testing.assert_allclose(host(x.grad), 2 * first)


def test_saved_arrays_released_after_backward(device):
    x = tl.Tensor(np.ones(3), requires_grad=True, device=device)
    y = x.exp()
    y.sum().backward()
    assert y._ctx.saved is None


def test_no_grad_records_nothing(device):
    x = tl.Tensor(np.ones(3), requires_grad=True, device=device)
    with tl.no_grad():
        y = x * 2
        with tl.enable_grad():
            z = x * 2
    assert not y.requires_grad and y._ctx is None
    assert z.requires_grad


def test_requires_grad_propagates(device):
    a = tl.Tensor(np.ones(2), device=device)
    b = tl.Tensor(np.ones(2), requires_grad=True, device=device)
    assert not (a * 2).requires_grad
    assert (a * b).requires_grad
    assert not (a * b).detach().requires_grad


def test_backward_on_non_scalar_needs_grad(device):
    x = tl.Tensor(np.ones(3), requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match=r"scalar.*shape \(3,\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"grad has shape \(2,\), expected \(3,\)"):
        (x * 2).backward(tl.Tensor(np.ones(2), device=device))


def test_wrong_gradient_shape_from_a_backward_is_caught(device):
    class Broken(tl.Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return (g.sum(axis=0),)
    x = tl.Tensor(np.ones((2, 3)), requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match=r"Broken.backward produced a gradient of shape \(3,\) for an input of shape \(2, 3\)"):
        Broken.apply(x).sum().backward()


def test_default_dtype_is_float32_and_is_kept(device):
    x = tl.Tensor([[1.0, 2.0]], requires_grad=True, device=device)
    assert x.dtype == np.float32
    y = F.gelu(F.layer_norm(x * 0.5 + 1.0)).exp().sum()
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32
    assert tl.Tensor(np.zeros(2)).dtype == np.float64  # NumPy arrays keep their dtype
    assert tl.Tensor([1, 2]).dtype == np.int64


def test_numpy_scalars_do_not_promote_float32(device):
    """np.float64(0.5) is a float subclass with a dtype of its own: mixed in as it is, it would
    turn every float32 result after it into float64."""
    x = tl.Tensor([[1.0, 2.0]], requires_grad=True, device=device)
    y = x * np.float64(0.5) + np.float64(1.0) - np.int64(1)
    assert y.dtype == np.float32 and (np.float64(2.0) * x).dtype == np.float32
    assert (x > np.float64(0.5)).dtype == np.bool_
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_retain_grad_on_intermediate(device):
    x = tl.Tensor(np.array([1.0, 2.0]), requires_grad=True, device=device)
    h = (x * 3).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_array_equal(host(h.grad), [6.0, 12.0])


def test_numpy_copy_and_to(device):
    x = tl.Tensor(np.arange(3.0), requires_grad=True, device=device)
    a = x.numpy()
    assert isinstance(a, np.ndarray)
    a[0] = 100
    assert float(host(x.data)[0]) == 0.0
    y = x.to("cpu")
    assert y.device == "cpu"
    (y * 2).sum().backward()
    assert x.grad is not None and x.device == device
    np.testing.assert_array_equal(host(x.grad), [2.0, 2.0, 2.0])


def test_comparisons_have_no_grad(device):
    x = tl.Tensor(np.array([1.0, -1.0]), requires_grad=True, device=device)
    m = x > 0
    assert m.dtype == np.bool_ and not m.requires_grad
    np.testing.assert_array_equal(host(m.data), [True, False])


def test_manual_seed_reproduces(device):
    tl.manual_seed(5)
    a = tl.randn(4, device=device).numpy(), F.dropout(tl.ones(8, device=device), 0.5).numpy()
    tl.manual_seed(5)
    b = tl.randn(4, device=device).numpy(), F.dropout(tl.ones(8, device=device), 0.5).numpy()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_repr_mentions_grad_fn():
    x = tl.Tensor([1.0], requires_grad=True)
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=<Mul>" in repr(x * 2)


def test_no_float64_leaks_in_float32_graphs(device):
    rng = np.random.default_rng(0)
    x = tl.Tensor(rng.standard_normal((2, 4, 8)).astype(np.float32), requires_grad=True, device=device)
    w = tl.Tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=True, device=device)
    h = F.layer_norm(F.linear(x, w))
    h = F.scaled_dot_product_attention(h, h, h, is_causal=True, dropout_p=0.1)
    h = F.gelu(h) + F.gelu(h, "tanh") + F.sigmoid(h) + F.relu(h) + F.softmax(h) + F.log_softmax(h)
    h = F.dropout(h, 0.1) + F.logsumexp(h, keepdims=True) + h.var(axis=-1, keepdims=True)
    t = tl.Tensor(rng.integers(0, 8, size=(2, 4)), device=device)
    loss = F.cross_entropy(h, t, label_smoothing=0.1) + F.mse_loss(h, h.detach() * 0.5) + h.mean() / 3
    assert loss.dtype == np.float32
    loss.backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32
