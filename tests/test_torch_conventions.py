"""Regression tests for behaviour ported code relies on: each is a place where tinyllm once
differed from torch silently (a wrong number, a NaN, a crash) and now matches it, or differs
on purpose with a clear message (README, "Differences from PyTorch")."""
import contextlib
import warnings

import numpy as np
import pytest
import torch

import tinyllm as tl
import tinyllm.functional as F
from tinyllm import nn, optim
from tinyllm.generate import sample_next_token

TF = torch.nn.functional


def host(x):
    return tl.backend.to_host(x.data if isinstance(x, tl.Tensor) else x)


# ----------------------------------------------------------------------------- attention masks
def test_sdpa_reads_a_boolean_mask_as_torch_does(device):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 4)) for _ in range(3))
    allowed = np.array([[True, False, True], [True, True, False], [False, False, True]])
    ours = F.scaled_dot_product_attention(*(tl.Tensor(a, device=device) for a in (q, k, v)),
                                          attn_mask=tl.Tensor(allowed, device=device))
    theirs = TF.scaled_dot_product_attention(*(torch.tensor(a) for a in (q, k, v)), attn_mask=torch.tensor(allowed))
    np.testing.assert_allclose(host(ours), theirs.numpy(), rtol=1e-12)


def test_multihead_attention_keeps_torchs_masked_out_convention(device):
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(4, 2, batch_first=True).double()
    ours = nn.MultiheadAttention(4, 2, batch_first=True, device=device, dtype=tl.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    padding = np.array([[False, False, True], [False, True, True]])  # True = a pad, masked out
    blocked = np.triu(np.ones((3, 3), bool), 1)                      # True = may not attend
    out, _ = ours(*(tl.Tensor(x, device=device),) * 3, key_padding_mask=tl.Tensor(padding, device=device),
                  attn_mask=tl.Tensor(blocked, device=device))
    ref, _ = theirs(*(torch.tensor(x),) * 3, key_padding_mask=torch.tensor(padding), attn_mask=torch.tensor(blocked))
    np.testing.assert_allclose(host(out), ref.detach().numpy(), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- stable functions
def test_sigmoid_is_accurate_for_large_negative_float32():
    x = np.array([-15.0, -17.0, -30.0, -80.0], np.float32)
    exact = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    ours = F.sigmoid(tl.Tensor(x)).numpy().astype(np.float64)
    np.testing.assert_allclose(ours, exact, rtol=1e-6)  # was 2.6 % off at -15, exactly 0 from -17
    assert np.isfinite(np.log(ours)).all()


MAGNITUDES = np.array([0.0, -0.0, 1e-300, -1e-300, 1e-10, -1e-10, 0.5, -3.0, 20.0, -40.0, 710.0, -710.0,
                       1e10, -1e10, 1e300, -1e300, np.inf, -np.inf])


def test_logsigmoid_equals_torch_from_tiny_to_huge(device):
    x = tl.Tensor(MAGNITUDES, requires_grad=True, device=device)
    F.logsigmoid(x).sum().backward()
    t = torch.tensor(MAGNITUDES, requires_grad=True)
    TF.logsigmoid(t).sum().backward()
    # within 1e-15 relative but in subnormal results (|y| < 2.2e-308, x ≳ 708), where torch's
    # lose digits (README: Differences from PyTorch)
    np.testing.assert_allclose(host(F.logsigmoid(x)), TF.logsigmoid(t).detach().numpy(), rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(host(x.grad), t.grad.numpy(), rtol=1e-15, atol=1e-300)
    assert F.logsigmoid(tl.Tensor(np.array([-710.0, -800.0]))).numpy().tolist() == [-710.0, -800.0]  # as torch
    ours = F.logsigmoid(tl.Tensor(np.array(740.0))).item()
    assert ours == pytest.approx(-np.exp(-740.0), rel=1e-2) and TF.logsigmoid(torch.tensor(740.0, dtype=torch.float64)) != ours


def test_sigmoid_keeps_the_subnormal_values_torch_rounds_to_zero(device):
    x = np.array([-710.0, -740.0, -700.0])
    ours = host(F.sigmoid(tl.Tensor(x, device=device)))
    theirs = torch.sigmoid(torch.tensor(x)).numpy()
    assert theirs[:2].tolist() == [0.0, 0.0] and (ours[:2] > 0).all()
    np.testing.assert_allclose(ours, np.exp(x), rtol=1e-2)  # subnormal: few digits left
    assert ours[2] == pytest.approx(theirs[2], rel=1e-15)


@pytest.mark.parametrize("target", [0.0, 1.0, 0.3])
def test_bce_with_logits_equals_torch_from_tiny_to_huge(device, target):
    targets = np.full_like(MAGNITUDES, target)
    ours_x, ours_t = (tl.Tensor(a, requires_grad=True, device=device) for a in (MAGNITUDES, targets))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # −∞ · (1 − t) + ∞ is NaN, as torch's, and as silent
        loss = F.binary_cross_entropy_with_logits(ours_x, ours_t, reduction="none")
        loss.backward(tl.Tensor(np.ones_like(MAGNITUDES), device=device))
    x, t = (torch.tensor(a, requires_grad=True) for a in (MAGNITUDES, targets))
    ref = TF.binary_cross_entropy_with_logits(x, t, reduction="none")
    ref.backward(torch.ones_like(ref))
    for ours, theirs in ((loss, ref), (ours_x.grad, x.grad), (ours_t.grad, t.grad)):  # subnormals as above
        np.testing.assert_allclose(host(ours), theirs.detach().numpy(), rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("weights", [{"pos_weight": 2.5}, {"weight": 0.0}, {"pos_weight": 0.0, "weight": 3.0}])
def test_bce_with_logits_at_infinite_logits_is_silent_and_equals_torch(device, weights):
    x_np, t_np = np.array([np.inf, -np.inf, np.inf, -np.inf]), np.array([0.0, 1.0, 0.5, 0.5])
    ours_x, ours_t = (tl.Tensor(a, requires_grad=True, device=device) for a in (x_np, t_np))
    x, t = (torch.tensor(a, requires_grad=True) for a in (x_np, t_np))
    for reduction in ("none", "mean"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loss = F.binary_cross_entropy_with_logits(
                ours_x, ours_t, reduction=reduction, **{k: tl.Tensor(np.array(v), device=device) for k, v in weights.items()})
            loss.backward(tl.Tensor(np.ones(loss.shape), device=device))
        ref = TF.binary_cross_entropy_with_logits(x, t, reduction=reduction,
                                                  **{k: torch.tensor(v, dtype=torch.float64) for k, v in weights.items()})
        ref.backward(torch.ones_like(ref))
        for ours, theirs in ((loss, ref), (ours_x.grad, x.grad), (ours_t.grad, t.grad)):
            np.testing.assert_array_equal(host(ours), theirs.detach().numpy())


def test_bce_with_logits_refuses_weights_that_want_gradients():
    x = tl.Tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(ValueError, match="weight is a constant"):
        F.binary_cross_entropy_with_logits(x, np.zeros(3), weight=tl.Tensor(np.ones(3), requires_grad=True))


# ----------------------------------------------------------------------------- degenerate inputs
def test_cross_entropy_with_every_target_ignored_gives_zero_gradients(device):
    z = tl.Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True, device=device)
    loss = F.cross_entropy(z, tl.Tensor(np.full(3, -100), device=device))
    assert np.isnan(loss.item())  # 0 / 0, as torch
    loss.backward()
    assert not host(z.grad).any()  # zeros, not NaN: one such batch no longer poisons the weights
    total = F.cross_entropy(z, tl.Tensor(np.full(3, -100), device=device), reduction="sum")
    assert total.item() == 0.0


@pytest.mark.parametrize("fn, expected", [(F.softmax, 1.0), (F.log_softmax, 0.0), (F.logsumexp, 2.5)])
def test_softmax_family_on_a_0d_tensor(device, fn, expected):
    x = tl.Tensor(np.array(2.5), requires_grad=True, device=device)
    y = fn(x)
    assert y.shape == () and y.item() == expected
    y.backward()
    assert host(x.grad) == (1.0 if fn is F.logsumexp else 0.0)


def test_softmax_family_over_an_empty_axis(device):
    x = tl.Tensor(np.zeros((3, 0)), requires_grad=True, device=device)
    assert F.softmax(x).shape == (3, 0) and F.log_softmax(x).shape == (3, 0)
    lse = F.logsumexp(x, axis=-1)
    assert host(lse).tolist() == [-np.inf] * 3  # log of an empty sum, as torch
    lse.sum().backward()
    assert x.grad.shape == (3, 0)


def test_linear_with_zero_features(device):
    x = tl.Tensor(np.zeros((2, 0)), requires_grad=True, device=device)
    w = tl.Tensor(np.zeros((3, 0)), requires_grad=True, device=device)
    b = tl.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True, device=device)
    y = F.linear(x, w, b)
    assert host(y).tolist() == [[1.0, 2.0, 3.0]] * 2
    y.sum().backward()
    assert host(b.grad).tolist() == [2.0, 2.0, 2.0] and x.grad.shape == (2, 0)
    w_out = tl.Tensor(np.zeros((0, 4)), requires_grad=True, device=device)
    z = F.linear(tl.Tensor(np.ones((2, 4)), requires_grad=True, device=device), w_out)
    assert z.shape == (2, 0)
    z.sum().backward()


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_on_a_0d_tensor(device, approximate):
    x = tl.Tensor(np.array(1.5), requires_grad=True, device=device)
    y = F.gelu(x, approximate=approximate)
    t = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    ref = TF.gelu(t, approximate=approximate)
    ref.backward()
    y.backward()
    assert y.shape == () and np.isclose(y.item(), ref.item(), rtol=1e-15)
    assert np.isclose(float(host(x.grad)), t.grad.item(), rtol=1e-15)


def test_unbiased_variance_of_one_element_is_nan_not_an_exception(device):
    x = tl.Tensor(np.array([3.0]), requires_grad=True, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy division warning either
        v = x.var(ddof=1)
        v.backward()
    assert np.isnan(v.item()) and np.isnan(host(x.grad)).all()  # torch: nan and nan


def test_power_edge_gradients_match_torch(device):
    x = tl.Tensor(np.array([0.0, 2.0]), requires_grad=True, device=device)
    (x ** 0).sum().backward()
    assert host(x.grad).tolist() == [0.0, 0.0]  # not 0 · 0⁻¹ = nan
    a_np, b_np = np.array([-2.0, 0.0, 0.0, 2.0, -1.0]), np.array([1.5, 2.0, -1.0, 0.0, 0.0])
    a, b = (tl.Tensor(v, requires_grad=True, device=device) for v in (a_np, b_np))
    with np.errstate(all="ignore"):
        (a ** b).sum().backward()
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a_np, b_np))
    (ta ** tb).sum().backward()
    np.testing.assert_array_equal(host(a.grad), ta.grad.numpy())
    np.testing.assert_array_equal(host(b.grad), tb.grad.numpy())  # nan for a < 0, 0 at a = 0, b ≥ 0
    assert np.isnan(host(b.grad)[0])


def test_casting_to_an_integer_dtype_leaves_the_graph(device):
    x = tl.Tensor(np.array([1.7, -2.2]), requires_grad=True, device=device)
    i = x.astype(np.int64)
    assert not i.requires_grad and i.grad_fn is None and host(i).tolist() == [1, -2]
    assert x.to(dtype=np.float32).requires_grad


# ----------------------------------------------------------------------------- norms
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("kernels", ["on", "reference"])
@pytest.mark.parametrize("dtype, scale", [(np.float32, 1e19), (np.float64, 1e300)])
@pytest.mark.parametrize("norm", ["layer_norm", "rms_norm"])
def test_a_norm_whose_squares_overflow_gives_nan_not_zeros(device, norm, dtype, scale, kernels):
    """Row 0's squares overflow: NaN there, forward and backward (zeros would be silently
    wrong; torch's layer_norm gives NaN, its rms_norm 0: README, Differences from PyTorch).
    Row 1 is ordinary and stays exact."""
    x_np = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, -2.0, 0.5, 3.0]]) * np.array([[scale], [1.0]])
    g_np = np.random.default_rng(0).standard_normal(x_np.shape)
    context = tl.kernels.reference_only() if kernels == "reference" else contextlib.nullcontext()
    with context:
        x = tl.Tensor(x_np.astype(dtype), requires_grad=True, device=device)
        w = tl.Tensor(np.full(4, 1.5, dtype), requires_grad=True, device=device)
        y = getattr(F, norm)(x, w, eps=1e-5)
        y.backward(tl.Tensor(g_np.astype(dtype), device=device))
    tx, tw = torch.tensor(x_np[1:], requires_grad=True), torch.tensor(np.full(4, 1.5), requires_grad=True)
    ty = getattr(TF, norm)(tx, (4,), tw, eps=1e-5)
    ty.backward(torch.tensor(g_np[1:]))
    assert np.isnan(host(y)[0]).all() and np.isnan(host(x.grad)[0]).all() and np.isnan(host(w.grad)).all()
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(host(y)[1], ty.detach().numpy()[0], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(host(x.grad)[1], tx.grad.numpy()[0], rtol=rtol, atol=rtol)
    with tl.detect_anomaly(), pytest.raises(tl.anomaly.AnomalyError, match="NaN in its forward"):
        getattr(F, norm)(tl.Tensor(x_np[:1].astype(dtype), device=device))
    theirs = getattr(TF, norm)(torch.tensor(x_np[:1].astype(dtype)), (4,))
    assert (torch.isnan(theirs).all() if norm == "layer_norm" else (theirs == 0).all())  # torch


def test_rms_norm_gradient_is_exact_where_torchs_underflows(device):
    """∂/∂x of rms_norm is scale-free: grad(c·x) = grad(x) / c. torch's backward multiplies r³,
    which underflows to 0 past |x| ≈ 1e103 (float64) and drops a term; tinyllm's does not."""
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((2, 4)), rng.standard_normal((2, 4))

    def grad(scale, ours):
        if ours:
            t = tl.Tensor(x * scale, requires_grad=True, device=device)
            F.rms_norm(t, eps=0.0).backward(tl.Tensor(g, device=device))
            return host(t.grad) * scale
        t = torch.tensor(x * scale, requires_grad=True)
        TF.rms_norm(t, (4,), eps=0.0).backward(torch.tensor(g))
        return t.grad.numpy() * scale
    exact = grad(1.0, ours=False)
    np.testing.assert_allclose(grad(1e150, ours=True), exact, rtol=1e-12)
    assert not np.allclose(grad(1e150, ours=False), exact, rtol=1e-3)  # torch


def test_one_hot_attention_gradients_are_rounding_noise_under_the_cpu_kernel(device):
    """Queries ~1e10 make the weights exactly one-hot: ∂L/∂q is exactly 0 in torch and in the
    formula; the CPU kernel's row sums (from the output) leave noise of ~1e-16 · |G| |V|."""
    rng = np.random.default_rng(0)
    q, k, v, g = rng.standard_normal((2, 3, 4)) * 1e10, rng.standard_normal((2, 5, 4)), \
        rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 3, 3))
    grads = {}
    for mode, context in (("kernel", contextlib.nullcontext()), ("formula", tl.kernels.reference_only())):
        with context:
            ours = tl.Tensor(q, requires_grad=True, device=device)
            F.scaled_dot_product_attention(ours, tl.Tensor(k, device=device), tl.Tensor(v, device=device)).backward(
                tl.Tensor(g, device=device))
        grads[mode] = host(ours.grad)
    theirs = torch.tensor(q, requires_grad=True)
    TF.scaled_dot_product_attention(theirs, torch.tensor(k), torch.tensor(v)).backward(torch.tensor(g))
    assert not theirs.grad.numpy().any() and not grads["formula"].any()
    assert np.abs(grads["kernel"]).max() < 1e-14 * np.abs(g).max() * np.abs(v).max()


def test_norms_take_torchs_signature_and_tinyllms(device):
    rng = np.random.default_rng(0)
    x_np, w_np, b_np = rng.standard_normal((2, 3, 4)), rng.standard_normal(4), rng.standard_normal(4)
    x, w, b = (tl.Tensor(a, device=device) for a in (x_np, w_np, b_np))
    tx, tw, tb = (torch.tensor(a) for a in (x_np, w_np, b_np))
    expected = TF.layer_norm(tx, (4,), tw, tb, 1e-3).numpy()
    for ours in (F.layer_norm(x, (4,), w, b, 1e-3), F.layer_norm(x, x.shape[-1:], w, b, 1e-3), F.layer_norm(x, 4, w, b, 1e-3),
                 F.layer_norm(x, [4], weight=w, bias=b, eps=1e-3), F.layer_norm(x, normalized_shape=(4,), weight=w,
                                                                             bias=b, eps=1e-3),
                 F.layer_norm(x, w, b, 1e-3), F.layer_norm(x, w, b, eps=1e-3)):
        np.testing.assert_allclose(host(ours), expected, rtol=1e-12)
    expected = TF.rms_norm(tx, (4,), tw, 1e-3).numpy()
    for ours in (F.rms_norm(x, (4,), w, 1e-3), F.rms_norm(x, 4, weight=w, eps=1e-3), F.rms_norm(x, w, 1e-3),
                 F.rms_norm(x, w, eps=1e-3)):
        np.testing.assert_allclose(host(ours), expected, rtol=1e-12)
    np.testing.assert_allclose(host(F.rms_norm(x, (4,))), TF.rms_norm(tx, (4,)).numpy(), rtol=1e-12)
    # several trailing axes, as torch
    w34, b34 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    ours = F.layer_norm(x, (3, 4), tl.Tensor(w34, device=device), tl.Tensor(b34, device=device))
    np.testing.assert_allclose(host(ours), TF.layer_norm(tx, (3, 4), torch.tensor(w34), torch.tensor(b34)).numpy(),
                               rtol=1e-12)
    ours = F.rms_norm(x, (3, 4), tl.Tensor(w34, device=device))
    np.testing.assert_allclose(host(ours), TF.rms_norm(tx, (3, 4), torch.tensor(w34)).numpy(), rtol=1e-12)
    for call in (lambda: F.layer_norm(x, (5,), w, b), lambda: F.rms_norm(x, (2, 4)), lambda: F.layer_norm(x, ())):
        with pytest.raises(ValueError, match=r"input of shape \(2, 3, 4\) does not end in the normalized shape"):
            call()
    with pytest.raises(ValueError, match=r"must have the normalized shape \(3, 4\), got \(4,\)"):
        F.layer_norm(x, (3, 4), w)
    with pytest.raises(TypeError, match="multiple values for argument 'weight'"):
        F.layer_norm(x, (4,), w, weight=w)
    with pytest.raises(TypeError, match="normalized_shape given twice"):
        F.rms_norm(x, (4,), normalized_shape=(4,))


# ----------------------------------------------------------------------------- float16
def test_clip_grad_norm_sums_half_precision_in_float32(device):
    p = tl.Tensor(np.zeros(4, np.float16), requires_grad=True, device=device)
    p.grad = tl.Tensor(np.full(4, 300.0, np.float16), device=device).data
    norm = optim.clip_grad_norm_([p], max_norm=1.0)
    assert norm == pytest.approx(600.0)  # √(4 · 300²); in float16 300² is already inf
    assert p.grad.dtype == np.float16
    np.testing.assert_allclose(host(p.grad).astype(np.float64), 0.5, rtol=1e-3)
    ref = torch.zeros(4, dtype=torch.float16, requires_grad=True)
    ref.grad = torch.full((4,), 300.0, dtype=torch.float16)
    assert float(torch.nn.utils.clip_grad_norm_([ref], 1.0)) == pytest.approx(600.0)


def test_clip_grad_norm_of_half_gradients_beyond_65504_stays_finite(device):
    p = tl.Tensor(np.zeros(4, np.float16), requires_grad=True, device=device)
    p.grad = tl.Tensor(np.full(4, 60000.0, np.float16), device=device).data
    norm = optim.clip_grad_norm_([p], max_norm=1.0)
    assert norm == pytest.approx(120000.0)  # > 65504, the largest float16
    np.testing.assert_allclose(host(p.grad).astype(np.float64), 0.5, rtol=1e-3)
    ref = torch.zeros(4, dtype=torch.float16, requires_grad=True)
    ref.grad = torch.full((4,), 60000.0, dtype=torch.float16)
    assert torch.isinf(torch.nn.utils.clip_grad_norm_([ref], 1.0)) and (ref.grad == 0).all()  # torch


# ----------------------------------------------------------------------------- no silent differences
def test_integer_tensors_promote_as_torch():
    i = tl.Tensor([1, 2, 3])
    cases = {"i / 2": i / 2, "2 / i": 2 / i, "i * 0.5": i * 0.5, "i / i": i / i, "i ** 0.5": i ** 0.5,
             "i + float32": i + tl.Tensor([1.0, 2.0, 3.0]), "i * 2": i * 2}
    ti = torch.tensor([1, 2, 3])
    expected = {"i / 2": ti / 2, "2 / i": 2 / ti, "i * 0.5": ti * 0.5, "i / i": ti / ti, "i ** 0.5": ti ** 0.5,
                "i + float32": ti + torch.tensor([1.0, 2.0, 3.0]), "i * 2": ti * 2}
    for name, ours in cases.items():
        assert str(ours.dtype) == str(expected[name].dtype).replace("torch.", ""), name
        np.testing.assert_allclose(ours.numpy(), expected[name].numpy(), rtol=1e-6, err_msg=name)


def test_a_0d_tensor_does_not_widen_a_tensor_with_dimensions(device):
    """torch's rule: a 0-d tensor of the same category (float/float, int/int) acts like a Python
    number; NumPy would give float64 for float32 × 0-d float64. Across categories, or between
    tensors with dimensions, the wider dtype wins as before."""
    pairs = [(np.float32, (3,), np.float64, ()), (np.float16, (3,), np.float32, ()), (np.int32, (3,), np.int64, ()),
             (np.float64, (), np.float32, (3,)), (np.float32, (3,), np.float64, (3,)), (np.int64, (3,), np.float16, ()),
             (np.int32, (3,), np.float64, ()), (np.float16, (3,), np.int64, ()), (np.uint8, (3,), np.int64, ()),
             (np.float32, (), np.float64, ())]
    for da, sa, db, sb in pairs:
        a, b = np.ones(sa, da), np.full(sb, 2, db)
        ta, tb = torch.tensor(a), torch.tensor(b)
        for op in ("__add__", "__sub__", "__mul__", "__truediv__", "__pow__"):
            theirs = getattr(ta, op)(tb)
            ours = getattr(tl.Tensor(a, device=device), op)(tl.Tensor(b, device=device))
            assert str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), (da, sa, op, db, sb)
            np.testing.assert_allclose(host(ours).astype(float), theirs.double().numpy())
    x = tl.Tensor(np.ones(2, np.float32), requires_grad=True, device=device)
    (x * tl.Tensor(np.array(3.0), device=device)).sum().backward()
    assert x.grad.dtype == np.float32 and host(x.grad).tolist() == [3.0, 3.0]


def test_split_and_squeeze_keep_numpys_meaning(device):
    x = tl.Tensor(np.arange(12.0).reshape(6, 2), device=device)
    t = torch.arange(12.0).reshape(6, 2)
    assert [p.shape for p in tl.split(x, 3)] == [(2, 2)] * 3  # three pieces (np.split)
    assert [tuple(p.shape) for p in torch.split(t, 3)] == [(3, 2)] * 2  # pieces of three
    assert [tuple(p.shape) for p in torch.tensor_split(t, 3)] == [(2, 2)] * 3  # torch's np.split
    assert [p.shape[0] for p in tl.split(x, [1, 4])] == [1, 3, 2]
    assert [p.shape[0] for p in torch.split(t, [1, 4, 1])] == [1, 4, 1]
    assert "torch.split" in tl.split.__doc__
    with pytest.raises(ValueError, match=r"cannot squeeze axis 0 of size 6"):
        x.squeeze(0)
    assert tuple(t.squeeze(0).shape) == (6, 2)  # torch: unchanged
    assert x[:1].squeeze(0).shape == (2,) and tl.Tensor(2.0).squeeze(0).shape == ()


def test_a_numpy_array_operand_promotes_as_numpy_in_both():
    """torch hands an ndarray operand to NumPy (float32 tensor × np.array(2.0) is float64 there
    too); tinyllm does the same."""
    x = np.ones(3, np.float32)
    assert (tl.Tensor(x) * np.array(2.0)).dtype == np.float64
    assert (torch.tensor(x) * np.array(2.0)).dtype == torch.float64


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid", "logsumexp", "mean", "var", "std"])
def test_float_valued_functions_of_integer_tensors_are_float32(device, name):
    ints = np.array([[1, 2], [3, 5]])
    ours_call = {"sigmoid": F.sigmoid, "logsumexp": lambda x: F.logsumexp(x, axis=-1)}.get(
        name, lambda x: getattr(x, name)())
    for values in (ints, ints > 2):
        with np.errstate(divide="ignore"):  # log(False) = −∞
            ours = ours_call(tl.Tensor(values, device=device))
        assert ours.dtype == np.float32, (name, values.dtype)
        t = torch.tensor(values)
        if name in ("mean", "var", "std"):  # torch refuses these (README: Differences from PyTorch)
            with pytest.raises(RuntimeError):
                getattr(t, name)()
            expected = getattr(values.astype(np.float64), name)()
        else:
            theirs = {"sigmoid": torch.sigmoid, "logsumexp": lambda v: torch.logsumexp(v, -1)}.get(
                name, lambda v: getattr(torch, name)(v))(t)
            assert theirs.dtype == torch.float32
            expected = theirs.numpy()
        np.testing.assert_allclose(host(ours), expected, rtol=1e-6)


def test_var_and_std_say_their_default_is_numpys():
    x = tl.Tensor(np.array([1.0, 2.0, 4.0]))
    assert x.var().item() == pytest.approx(np.var([1.0, 2.0, 4.0]))  # ddof=0 (torch: correction=1)
    assert x.var(ddof=1).item() == pytest.approx(torch.tensor([1.0, 2.0, 4.0]).var().item())
    for name in ("var", "std"):
        for torch_kw in ({"correction": 1}, {"unbiased": True}):
            with pytest.raises(TypeError, match=r"ddof= \(default 0.*ddof=1"):
                getattr(x, name)(**torch_kw)
    assert "ddof=0" in tl.Tensor.var.__doc__ and "correction=1" in tl.Tensor.std.__doc__


def test_grad_never_aliases_the_array_given_to_backward(device):
    x = tl.Tensor(np.ones(3), requires_grad=True, device=device)
    g = tl.Tensor(np.array([1.0, 2.0, 3.0]), device=device)
    x.backward(g)
    g.data[0] = 99.0
    assert host(x.grad).tolist() == [1.0, 2.0, 3.0]
    y = x * 1.0
    y.backward(g)
    assert host(x.grad).tolist() == [100.0, 4.0, 6.0]


def test_iterating_a_0d_tensor_raises_type_error():
    with pytest.raises(TypeError, match="0-d"):
        iter(tl.Tensor(1.0))
    with pytest.raises(TypeError):
        iter(torch.tensor(1.0))  # as torch
    assert [t.item() for t in tl.Tensor([[1.0, 2.0], [3.0, 4.0]])[0]] == [1.0, 2.0]


def test_optimizer_zero_grad_keeping_the_arrays(device):
    p = tl.Tensor(np.ones(3), requires_grad=True, device=device)
    (p * p).sum().backward()
    opt = optim.SGD([p], lr=0.1)
    kept = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is kept and not host(p.grad).any()
    opt.zero_grad()
    assert p.grad is None


@pytest.mark.parametrize("eps", [0.0, -1e-5])
def test_layer_norm_refuses_eps_that_is_not_positive(eps):
    with pytest.raises(ValueError, match="eps must be a number > 0"):
        nn.LayerNorm(4, eps=eps)
    with pytest.raises(ValueError, match="eps must be > 0"):
        F.layer_norm(tl.Tensor(np.ones((2, 4))), eps=eps)


def test_top_k_one_keeps_exactly_one_token_even_on_ties():
    logits = np.zeros((2, 6))  # every token ties
    picks = {int(sample_next_token(logits, top_k=1, rng=np.random.default_rng(s))[row])
             for s in range(40) for row in range(2)}
    assert len(picks) == 1
    three = {int(sample_next_token(np.array([[1.0, 3, 3, 3, 0]]), top_k=2, rng=np.random.default_rng(s))[0])
             for s in range(200)}
    assert len(three) == 2 and three <= {1, 2, 3}


def test_cross_entropy_takes_torchs_layout_with_an_explicit_axis(device):
    rng = np.random.default_rng(0)
    z, t = rng.standard_normal((2, 5, 3)), np.array([[0, 4, 1], [2, -100, 3]])  # (N, C, T)
    ours = tl.Tensor(z, requires_grad=True, device=device)
    loss = F.cross_entropy(ours, tl.Tensor(t, device=device), axis=1)
    loss.backward()
    ref_z = torch.tensor(z, requires_grad=True)
    ref = TF.cross_entropy(ref_z, torch.tensor(t))
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(host(ours.grad), ref_z.grad.numpy(), rtol=1e-12)


def test_an_ambiguous_cross_entropy_layout_cannot_pass_unnoticed():
    z = tl.Tensor(np.zeros((2, 4, 4)))
    t = tl.Tensor(np.zeros((2, 4), np.int64))
    with pytest.warns(UserWarning, match=r"Pass axis=-1 or axis=1") as caught:
        F.cross_entropy(z, t)
    assert caught[0].filename == __file__  # the warning points at the caller's line, not the library's
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.cross_entropy(z, t, axis=-1)  # said explicitly: no warning
        F.cross_entropy(z, t, axis=1)
    with pytest.raises(ValueError, match=r"for torch's layout \(N, C, \.\.\.\) pass axis=1"):
        F.cross_entropy(tl.Tensor(np.zeros((2, 5, 3))), tl.Tensor(np.zeros((2, 3), np.int64)))


def test_three_documented_differences_of_warnings_and_dtypes():
    """README, Differences from PyTorch: the same values as torch with NumPy's warning (mean of
    an empty axis, silu at ±inf), and relu refusing an integer tensor."""
    with pytest.warns(RuntimeWarning, match="Mean of empty slice"):
        empty_mean = tl.Tensor(np.zeros((0,))).mean()
    assert np.isnan(empty_mean.item()) and torch.zeros(0, dtype=torch.float64).mean().isnan()
    x = np.array([-np.inf, np.inf, 1.0])
    with pytest.warns(RuntimeWarning):
        ours = F.silu(tl.Tensor(x)).numpy()
    np.testing.assert_array_equal(ours, torch.nn.functional.silu(torch.tensor(x)).numpy())
    with pytest.raises(TypeError, match="floating-point tensor, got dtype int64"):
        F.relu(tl.Tensor(np.array([1, -2])))


TORCH_NAMED_METHODS = {  # name: (tinyllm's call, torch's call), both on a (3, 4) float64 tensor
    "relu": (lambda x: x.relu(), lambda x: x.relu()),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid()),
    "silu": (lambda x: x.silu(), lambda x: torch.nn.functional.silu(x)),
    "softmax": (lambda x: x.softmax(-1), lambda x: x.softmax(-1)),
    "log_softmax": (lambda x: x.log_softmax(axis=0), lambda x: x.log_softmax(dim=0)),
    "logsumexp": (lambda x: x.logsumexp(axis=1), lambda x: x.logsumexp(dim=1)),
    "matmul": (lambda x: x.matmul(x.swapaxes(0, 1)), lambda x: x.matmul(x.transpose(0, 1))),
    "pow": (lambda x: x.pow(3), lambda x: x.pow(3)),
    "neg": (lambda x: x.neg(), lambda x: x.neg()),
    "square": (lambda x: x.square(), lambda x: x.square()),
    "clamp": (lambda x: x.clamp(-0.5, 0.7), lambda x: x.clamp(-0.5, 0.7)),
    "clamp min only": (lambda x: x.clamp(min=0.1), lambda x: x.clamp(min=0.1)),
    "t": (lambda x: x.t(), lambda x: x.t()),
    "permute": (lambda x: x.reshape(3, 2, 2).permute(2, 0, 1), lambda x: x.reshape(3, 2, 2).permute(2, 0, 1)),
}


@pytest.mark.parametrize("name", sorted(TORCH_NAMED_METHODS))
def test_torch_named_tensor_methods_give_torchs_values_and_gradients(name):
    ours_fn, theirs_fn = TORCH_NAMED_METHODS[name]
    data = np.random.default_rng(len(name)).standard_normal((3, 4))
    x = tl.Tensor(data, requires_grad=True)
    y = ours_fn(x)
    weights = np.random.default_rng(7).standard_normal(y.shape)
    (y * tl.Tensor(weights)).sum().backward()
    tx = torch.tensor(data, requires_grad=True)
    ty = theirs_fn(tx)
    (ty * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(host(y.data), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(host(x.grad), tx.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_torch_named_shape_methods():
    x = tl.ones(2, 3, 4)
    assert x.dim() == 3 and x.numel() == 24 and x.size == 24  # size: NumPy's attribute (README)
    assert tl.ones(3).t().shape == (3,) and tl.tensor(1.0).t().shape == ()
    with pytest.raises(ValueError, match=r"t\(\) expects a tensor with at most 2 axes, got shape \(2, 3, 4\)"):
        x.t()


def test_grad_is_the_raw_array_as_the_readme_says():
    x = tl.Tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert type(x.grad) is np.ndarray and np.array_equal(x.grad, [2.0, 4.0])
    assert tl.Tensor(x.grad).sum().item() == 6.0
