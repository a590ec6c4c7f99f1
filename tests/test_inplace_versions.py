"""In-place writes never corrupt a gradient: version counters, as torch's.

Every tensor's memory carries a counter that each in-place write bumps; a Function records
the versions of the tensors whose memory it saved, and backward refuses stale ones. Writes
that cannot change a gradient (to tensors no Function saved, after backward, by an optimizer
step after backward) stay legal.
"""
import numpy as np
import pytest
import torch

import tinyllm as tl
import tinyllm.functional as F
from tinyllm import nn, optim


def _leaf(device, values=(1.0, 2.0, 3.0)):
    return tl.Tensor(np.array(values), requires_grad=True, device=device)


# ----------------------------------------------------------------------------- the error
def test_write_under_no_grad_to_a_saved_input_is_refused(device):
    x = _leaf(device)
    y = (x * x).sum()
    with tl.no_grad():
        x[0] = 100.0
    with pytest.raises(RuntimeError, match=r"Mul\.backward .*shape \(3,\).*version 1.*version 0"):
        y.backward()


def test_torch_refuses_the_same_pattern():
    """The behaviour copied: torch raises on this pattern too (so does a port of it)."""
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    y = (x * x).sum()
    with torch.no_grad():
        x[0] = 100.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_write_through_detach_is_refused(device):
    x = _leaf(device)
    y = (x * x).sum()
    d = x.detach()
    assert d._version == x._version == 0
    d[0] = 100.0  # shares memory and counter with x
    assert x._version == 1
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_write_to_the_base_of_a_saved_view_is_refused(device):
    w = _leaf(device)
    base = tl.Tensor(np.arange(4.0), device=device)
    view = base[0:3]           # a view: it shares base's memory, so its counter
    z = (w * view).sum()       # Mul saves view for w's gradient
    base[1] = 50.0
    assert view._version == 1
    with pytest.raises(RuntimeError, match=r"Mul\.backward .*shape \(3,\)"):
        z.backward()


def test_write_to_a_saved_output_is_refused(device):
    x = _leaf(device)
    y = x.exp()                # Exp saves its output y for ∂y/∂x = y
    loss = (y * 2.0).sum()
    y.detach()[1] = 0.0
    with pytest.raises(RuntimeError, match=r"Exp\.backward"):
        loss.backward()


def test_tensor_made_from_a_tensor_shares_the_counter(device):
    x = _leaf(device)
    y = (x * x).sum()
    alias = tl.Tensor(x)       # no copy: the same memory
    alias[2] = -1.0
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_layer_weights_changed_before_backward_are_refused(device):
    layer = nn.Linear(3, 2, device=device, dtype=tl.float64)
    x = tl.Tensor(np.ones((4, 3)), device=device, requires_grad=True)
    loss = layer(x).sum()      # ∂L/∂x needs the weight
    with tl.no_grad():
        layer.weight[0, 0] = 5.0
    with pytest.raises(RuntimeError, match=r"Linear\.backward .*shape \(2, 3\)"):
        loss.backward()


def test_optimizer_step_before_backward_is_refused(device):
    """The classic mistake: step() between forward and backward changes the saved weights."""
    layer = nn.Linear(3, 2, device=device, dtype=tl.float64)
    opt = optim.SGD(layer.parameters(), lr=0.1)
    x = tl.Tensor(np.ones((4, 3)), device=device, requires_grad=True)
    loss = layer(x).sum()
    for p in layer.parameters():
        p.grad = p.xp.ones_like(p.data)
    opt.step()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


# ----------------------------------------------------------------------------- legal patterns
def test_optimizer_steps_after_backward_are_legal(device):
    layer = nn.Linear(3, 2, device=device, dtype=tl.float64)
    for opt in (optim.SGD(layer.parameters(), lr=0.1, momentum=0.9), optim.AdamW(layer.parameters())):
        x = tl.Tensor(np.ones((4, 3)), device=device)
        for _ in range(3):
            before = layer.weight._version
            loss = (layer(x) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            assert layer.weight._version == before + 1


def test_retain_graph_without_a_write_is_legal(device):
    x = _leaf(device)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.tolist() if hasattr(x.grad, "tolist") else x.grad,
                               [4.0, 8.0, 12.0])


def test_retain_graph_then_a_write_is_refused(device):
    x = _leaf(device)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    with tl.no_grad():
        x[0] = 7.0
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_writes_to_tensors_no_function_saved_are_legal(device):
    x = _leaf(device)
    y = (x + 1.0).sum()        # Add saves only shapes
    with tl.no_grad():
        x[0] = 100.0
    y.backward()
    assert tl.Tensor(x.grad).tolist() == [1.0, 1.0, 1.0]
    a = _leaf(device)
    c = tl.Tensor(np.array([2.0, 2.0, 2.0]), device=device)
    z = (a * c.sum()).sum()    # Mul saves the sum's result, a new array, not c
    c[0] = 0.0
    z.backward()
    assert tl.Tensor(a.grad).tolist() == [6.0, 6.0, 6.0]


def test_writes_after_backward_are_legal(device):
    x = _leaf(device)
    (x * x).sum().backward()
    with tl.no_grad():
        x[0] = 0.0
    assert x._version == 1


def test_a_copy_is_independent(device):
    x = _leaf(device)
    y = (x * x).sum()
    c = x.clone()
    assert c._version == 0
    with tl.no_grad():
        c[0] = 9.0
    y.backward()
    assert x._version == 0
    assert tl.Tensor(x.grad).tolist() == [2.0, 4.0, 6.0]


def test_clone_is_differentiable(device):
    x = _leaf(device)
    assert tl.gradcheck(lambda t: t.clone() * t, x)


# ----------------------------------------------------------------------------- what bumps
def test_every_library_write_bumps_the_counter(device):
    layer = nn.Linear(2, 2, device=device)
    w = layer.weight
    v = w._version
    nn.init.zeros_(w)
    nn.init.uniform_(w, -1, 1)
    assert w._version == v + 2
    layer.load_state_dict({"weight": np.ones((2, 2), np.float32), "bias": np.zeros(2, np.float32)})
    assert w._version == v + 3
    w.grad = w.xp.ones_like(w.data)
    optim.Adam([w]).step()
    assert w._version == v + 4


def test_views_made_by_ops_share_the_counter(device):
    x = tl.Tensor(np.arange(6.0), device=device)
    views = [x.reshape(2, 3), x[1:4], x.reshape(3, 2).transpose(), x.detach()]
    x[0] = -1.0
    assert [v._version for v in views] == [1, 1, 1, 1]
    copies = [x * 1.0, x.clone(), x[np.array([0, 1])]]  # new memory: own counters
    x[1] = -2.0
    assert [c._version for c in copies] == [0, 0, 0]


def test_fused_functions_check_what_they_saved(device):
    """GELU saves its input (stale after the write: refused); softmax saves only its output
    (untouched by a write to the input: the gradient is still right, so it is legal)."""
    rng = np.random.default_rng(0)
    for approximate in ("none", "tanh"):
        x = tl.Tensor(rng.standard_normal((2, 4)), requires_grad=True, device=device)
        out = F.gelu(x, approximate=approximate)
        with tl.no_grad():
            x[0, 0] = 1.0
        with pytest.raises(RuntimeError, match=r"GELU\.backward"):
            out.sum().backward()
    x = tl.Tensor(rng.standard_normal((2, 4)), requires_grad=True, device=device)
    y = F.softmax(x)
    expected = tl.Tensor(y.data * 0.0)  # Σ_j y_j = 1 in every row: the gradient of y.sum() is 0
    with tl.no_grad():
        x[0, 0] = 1.0
    y.sum().backward()
    np.testing.assert_allclose(tl.Tensor(x.grad).numpy(), expected.numpy(), atol=1e-12)
