"""The profiler's table and detect_anomaly's first-NaN report."""
import numpy as np
import pytest

import tinyllm as tl
import tinyllm.functional as F


def test_profiler_counts_forward_and_backward_per_op(device):
    x = tl.Tensor(np.ones((4, 3)), requires_grad=True, device=device)
    with tl.profiler.profile() as prof:
        y = F.softmax(x * 2.0).sum()
        y.backward()
    rows = {r["op"]: r for r in prof.rows()}
    assert rows["Softmax"]["forward_calls"] == 1 and rows["Softmax"]["backward_calls"] == 1
    assert rows["Mul"]["forward_calls"] == 1
    table = prof.table()
    assert "Softmax" in table and "wall" in table


def test_detect_anomaly_names_op_shapes_and_user_line(device):
    x = tl.Tensor(np.array([1.0, -1.0]), requires_grad=True, device=device)
    with pytest.raises(tl.AnomalyError) as info:
        with tl.detect_anomaly(), np.errstate(invalid="ignore"):
            y = (x * 2.0).log()  # the line to be named
    message = str(info.value)
    assert "Log produced NaN" in message and "(2,)" in message
    assert "test_profiler_anomaly.py" in message and "the line to be named" in message


def test_detect_anomaly_in_backward(device):
    """NaN made by a backward: 0 · ∂√x/∂x at x = 0 is 0/0 (torch flags SqrtBackward here too)."""
    x = tl.Tensor(np.array([1.0, 0.0]), requires_grad=True, device=device)
    with pytest.raises(tl.AnomalyError, match=r"Sqrt.backward produced NaN in the gradient of input 0"):
        with tl.detect_anomaly(), np.errstate(divide="ignore", invalid="ignore"):
            (x.sqrt() * 0.0).sum().backward()


def test_detect_anomaly_lets_infinities_pass(device):
    """As torch: ∞ is a value, not an anomaly (∂√x/∂x = ∞ at 0; the -inf of a mask)."""
    x = tl.Tensor(np.array([1.0, 0.0]), requires_grad=True, device=device)
    with tl.detect_anomaly(), np.errstate(divide="ignore"):
        x.sqrt().sum().backward()
    assert tl.backend.to_host(x.grad)[1] == np.inf


def test_detect_anomaly_accepts_the_masked_softmax_idiom(device):
    scores = tl.Tensor(np.random.default_rng(0).standard_normal((2, 4, 4)), requires_grad=True, device=device)
    future = tl.Tensor(np.triu(np.ones((4, 4), bool), 1), device=device)
    with tl.detect_anomaly():
        p = F.softmax(F.masked_fill(scores, future, -np.inf), axis=-1)
        (p * p).sum().backward()
    assert np.isfinite(tl.backend.to_host(scores.grad)).all()


def test_detect_anomaly_quiet_on_finite_graphs(device):
    x = tl.Tensor(np.array([1.0, 2.0]), requires_grad=True, device=device)
    with tl.detect_anomaly():
        F.log_softmax(x * 1e4).sum().backward()
    assert np.isfinite(tl.backend.to_host(x.grad)).all()


def test_hooks_are_removed_after_the_block():
    from tinyllm.tensor import backward_hooks, forward_hooks
    with tl.profiler.profile():
        with tl.detect_anomaly():
            assert len(forward_hooks) == 2 and len(backward_hooks) == 2
    assert forward_hooks == [] and backward_hooks == []
