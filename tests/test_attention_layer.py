"""MultiheadAttention against torch.nn.MultiheadAttention (float64, train mode, dropout 0):
outputs, returned weights, and the gradients of every parameter and input, with and without
masks of every kind, in both layouts."""
import zlib

import numpy as np
import pytest

import tinyllm as tl
import tinyllm.nn as nn
from torch_twins import (assert_close, assert_grads_close, backward_both, load_torch_weights, requires_torch,
                                 tensors, torch)


def _padding(rng, n, s):
    """(n, s) boolean key-padding mask: a random tail of each row padded, key 0 never."""
    lengths = rng.integers(1, s + 1, size=n)
    return np.arange(s)[None, :] >= lengths[:, None]


def _masks(kind, rng, n, h, length, source_length):
    """(attn_mask, key_padding_mask) as NumPy arrays for one test case."""
    causal = np.triu(np.ones((length, source_length), dtype=bool), 1)
    attn, padding = None, None
    if "bool2d" in kind:
        attn = causal
    if "float2d" in kind:
        attn = np.where(causal, -np.inf, 0.0) + 0.3 * rng.standard_normal((length, source_length))
    if "bool3d" in kind:
        attn = rng.random((n * h, length, source_length)) < 0.4
        attn[..., 0] = False  # every query keeps at least one key
    if "float3d" in kind:
        attn = rng.standard_normal((n * h, length, source_length))
    if "pad" in kind:
        padding = _padding(rng, n, source_length)
    if "floatpad" in kind:
        padding = np.where(padding, -np.inf, 0.0)
    return attn, padding


CASES = [
    # (batch_first, bias, cross, mask kind, need_weights, average)
    (False, True, False, "none", True, True),
    (True, True, False, "none", True, False),
    (False, True, False, "bool2d", True, True),
    (True, False, False, "float2d", True, True),
    (False, True, False, "pad", True, False),
    (True, True, False, "bool2d+pad", False, True),
    (False, True, False, "float2d+pad", True, True),
    (True, True, False, "float2d+floatpad", True, True),
    (False, True, True, "pad", True, True),
    (True, True, True, "bool3d", True, False),
    (False, False, True, "float3d+pad", True, True),
    (True, True, True, "bool3d+pad", True, True),
]


@requires_torch
@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")  # torch warns on float + bool
@pytest.mark.parametrize("batch_first, bias, cross, kind, need_weights, average", CASES)
def test_multihead_attention_matches_torch(batch_first, bias, cross, kind, need_weights, average):
    rng = np.random.default_rng(zlib.crc32(repr((batch_first, bias, cross, kind)).encode()))
    n, h, e = 3, int(rng.choice([1, 2, 4])), 8
    length = 5
    source_length = 7 if cross else length
    torch.manual_seed(0)
    reference = torch.nn.MultiheadAttention(e, h, bias=bias, batch_first=batch_first).double().train()
    mha = nn.MultiheadAttention(e, h, bias=bias, batch_first=batch_first, dtype=np.float64).train()
    load_torch_weights(mha, reference)

    def shaped(seq):
        return (n, seq, e) if batch_first else (seq, n, e)

    q, tq = tensors(rng.standard_normal(shaped(length)), torch)
    if cross:
        k, tk = tensors(rng.standard_normal(shaped(source_length)), torch)
        v, tv = tensors(rng.standard_normal(shaped(source_length)), torch)
    else:
        k, tk, v, tv = q, tq, q, tq  # self-attention: one input
    attn, padding = _masks(kind, rng, n, h, length, source_length)
    kwargs = dict(need_weights=need_weights, average_attn_weights=average)
    out, weights = mha(q, k, v, key_padding_mask=padding, attn_mask=attn, **kwargs)
    t_out, t_weights = reference(tq, tk, tv, key_padding_mask=None if padding is None else torch.from_numpy(padding),
                                 attn_mask=None if attn is None else torch.from_numpy(attn), **kwargs)
    what = f"MHA[{kind}, batch_first={batch_first}, bias={bias}, cross={cross}, heads={h}]"
    assert_close(out, t_out, what + " output")
    if need_weights:
        assert_close(weights, t_weights, what + " weights")
    else:
        assert weights is None and t_weights is None
    backward_both(out, t_out, rng)
    for name, ours, theirs in (("query", q, tq), ("key", k, tk), ("value", v, tv)):
        assert_close(ours.grad, theirs.grad, f"{what} grad of {name}")
    assert_grads_close(mha, reference, what)


@requires_torch
def test_is_causal_alone_equals_torch_with_causal_mask():
    rng = np.random.default_rng(1)
    torch.manual_seed(1)
    reference = torch.nn.MultiheadAttention(8, 2, batch_first=True).double()
    mha = nn.MultiheadAttention(8, 2, batch_first=True, dtype=np.float64)
    load_torch_weights(mha, reference)
    x, tx = tensors(rng.standard_normal((2, 6, 8)), torch)
    out, _ = mha(x, x, x, is_causal=True, need_weights=False)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(6, dtype=torch.float64)
    t_out, _ = reference(tx, tx, tx, attn_mask=causal, is_causal=True, need_weights=False)
    assert_close(out, t_out, "MHA is_causal output")
    # and is_causal together with the same mask changes nothing
    out2, _ = mha(x, x, x, attn_mask=causal.numpy(), is_causal=True, need_weights=False)
    assert_close(out2, t_out, "MHA is_causal + causal attn_mask output")


@requires_torch
def test_unbatched_input_matches_torch():
    rng = np.random.default_rng(2)
    torch.manual_seed(2)
    reference = torch.nn.MultiheadAttention(6, 3).double()
    mha = nn.MultiheadAttention(6, 3, dtype=np.float64)
    load_torch_weights(mha, reference)
    q, tq = tensors(rng.standard_normal((4, 6)), torch)
    kv, tkv = tensors(rng.standard_normal((5, 6)), torch)
    padding = np.array([False, False, True, False, True])
    out, w = mha(q, kv, kv, key_padding_mask=padding)
    t_out, t_w = reference(tq, tkv, tkv, key_padding_mask=torch.from_numpy(padding))
    assert_close(out, t_out, "unbatched MHA output")
    assert_close(w, t_w, "unbatched MHA weights")
    assert mha.attention_weights.shape == (3, 4, 5)


@requires_torch
def test_parameters_names_shapes_and_init():
    tl.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4)
    shapes = {k: v.shape for k, v in mha.state_dict().items()}
    reference = torch.nn.MultiheadAttention(16, 4)
    assert shapes == {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert list(shapes) == list(reference.state_dict())
    bound = np.sqrt(6.0 / (16 + 48))  # Xavier uniform on (3E, E)
    w = mha.in_proj_weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert not mha.in_proj_bias.numpy().any() and not mha.out_proj.bias.numpy().any()
    assert mha.in_proj_weight.dtype == np.float32


def test_attention_weights_kept_per_head_and_detached():
    tl.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = tl.randn(3, 5, 8, requires_grad=True)
    mha(x, x, x, need_weights=False)
    w = mha.attention_weights
    assert w.shape == (3, 2, 5, 5) and not w.requires_grad
    np.testing.assert_allclose(w.numpy().sum(-1), 1.0, rtol=1e-5)
    assert list(nn.attention_maps(mha)) == [""]
    mha.keep_attention_weights = False
    mha(x, x, x)
    assert mha.attention_weights is None


def test_fully_masked_query_gives_zeros_not_nan():
    mha = nn.MultiheadAttention(4, 2, batch_first=True)
    x = tl.randn(1, 3, 4)
    padding = np.array([[True, True, True]])
    out, w = mha(x, x, x, key_padding_mask=padding)
    assert np.isfinite(out.numpy()).all() and not w.numpy().any()


def test_dropout_on_weights_only_in_training():
    tl.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True)
    x = tl.randn(2, 6, 8)
    _, w_train = mha(x, x, x, average_attn_weights=False)
    assert (w_train.numpy() == 0).any()
    mha.eval()
    a, _ = mha(x, x, x)
    b, _ = mha(x, x, x)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


# ----------------------------------------------------------------------------- bad input
def test_embed_dim_not_divisible_by_heads():
    with pytest.raises(ValueError, match=r"embed_dim \(10\) must be divisible by num_heads \(4\)"):
        nn.MultiheadAttention(10, 4)


@pytest.mark.parametrize("mask, message", [
    (np.zeros((5, 6), dtype=bool), r"2-D attn_mask must have shape \(L, S\) = \(5, 5\), got \(5, 6\)"),
    (np.zeros((3, 5, 5), dtype=bool),
     r"3-D attn_mask must have shape \(N·num_heads, L, S\) = \(4, 5, 5\), got \(3, 5, 5\)"),
    (np.zeros((1, 1, 5, 5), dtype=bool), r"attn_mask must be \(L, S\)"),
    (np.zeros((5, 5), dtype=np.int64), r"attn_mask must be boolean .* or floating .* got dtype int64"),
])
def test_bad_attn_mask(mask, message):
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = tl.randn(2, 5, 8)
    with pytest.raises((ValueError, TypeError), match=message):
        mha(x, x, x, attn_mask=mask)


@pytest.mark.parametrize("mask, message", [
    (np.zeros((2, 4), dtype=bool), r"key_padding_mask must have shape \(N, S\) = \(2, 5\), got \(2, 4\)"),
    (np.zeros((5,), dtype=bool), r"key_padding_mask must have shape \(N, S\) = \(2, 5\), got \(5,\)"),
    (np.zeros((2, 5), dtype=np.int32), r"key_padding_mask must be boolean .* got dtype int32"),
])
def test_bad_key_padding_mask(mask, message):
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = tl.randn(2, 5, 8)
    with pytest.raises((ValueError, TypeError), match=message):
        mha(x, x, x, key_padding_mask=mask)


def test_bad_inputs():
    mha = nn.MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match=r"query must have embed_dim=8 features in its last axis, got shape \(5, 2, 6"):
        mha(tl.randn(5, 2, 6), tl.randn(5, 2, 6), tl.randn(5, 2, 6))
    with pytest.raises(ValueError, match=r"key and value must have the same shape"):
        mha(tl.randn(5, 2, 8), tl.randn(4, 2, 8), tl.randn(3, 2, 8))
    with pytest.raises(ValueError, match=r"batch sizes 2 and 3"):
        mha(tl.randn(5, 2, 8), tl.randn(4, 3, 8), tl.randn(4, 3, 8))


# ----------------------------------------------------------------------------- random configurations
try:
    from hypothesis import given, settings, strategies as st
except ImportError:  # pragma: no cover - hypothesis draws the configurations
    given = None


def _check_random_configuration(n, heads, head_dim, length, source_length, batch_first, seed):
    rng = np.random.default_rng(seed)
    e = heads * head_dim
    torch.manual_seed(seed)
    reference = torch.nn.MultiheadAttention(e, heads, batch_first=batch_first).double()
    perturbed = {k: v.numpy() + 0.1 * rng.standard_normal(tuple(v.shape)) for k, v in reference.state_dict().items()}
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in perturbed.items()})
    mha = nn.MultiheadAttention(e, heads, batch_first=batch_first, dtype=np.float64)
    mha.load_state_dict(perturbed)
    shape = (lambda s: (n, s, e)) if batch_first else (lambda s: (s, n, e))
    q, tq = tensors(rng.standard_normal(shape(length)), torch)
    k, tk = tensors(rng.standard_normal(shape(source_length)), torch)
    v, tv = tensors(rng.standard_normal(shape(source_length)), torch)
    padding = _padding(rng, n, source_length)
    out, w = mha(q, k, v, key_padding_mask=padding, average_attn_weights=False)
    t_out, t_w = reference(tq, tk, tv, key_padding_mask=torch.from_numpy(padding), average_attn_weights=False)
    assert_close(out, t_out, "MHA random config output")
    assert_close(w, t_w, "MHA random config weights")
    backward_both(out, t_out, rng)
    for ours, theirs, name in ((q, tq, "query"), (k, tk, "key"), (v, tv, "value")):
        assert_close(ours.grad, theirs.grad, f"MHA random config grad of {name}")
    assert_grads_close(mha, reference, "MHA random config")


@pytest.mark.skipif(given is None, reason="hypothesis is not installed")
@requires_torch
def test_random_configurations_match_torch():
    """20 configurations drawn by Hypothesis: batch, heads, head size, lengths, layout."""
    check = given(n=st.integers(1, 3), heads=st.integers(1, 3), head_dim=st.integers(1, 4),
                  length=st.integers(1, 5), source_length=st.integers(1, 5), batch_first=st.booleans(),
                  seed=st.integers(0, 2**16))(_check_random_configuration)
    settings(max_examples=20, deadline=None)(check)()


def test_float32_stays_float32():
    mha = nn.MultiheadAttention(8, 2)
    x = tl.randn(3, 2, 8, requires_grad=True)
    mask = nn.generate_square_subsequent_mask(3, dtype=np.float64)  # a float64 mask does not promote
    out, w = mha(x, x, x, attn_mask=mask, key_padding_mask=np.zeros((2, 3), dtype=bool))
    assert out.dtype == np.float32 and w.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32 and mha.in_proj_weight.grad.dtype == np.float32


def test_every_device_gives_the_cpu_result(device):
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    padding = np.array([[False] * 5, [False, False, False, True, True]])
    causal = nn.generate_square_subsequent_mask(5).numpy()
    expected, expected_w = mha(tl.Tensor(x), tl.Tensor(x), tl.Tensor(x), key_padding_mask=padding, attn_mask=causal)
    mha.to(device)
    xd = tl.Tensor(x, device=device, requires_grad=True)
    out, w = mha(xd, xd, xd, key_padding_mask=tl.Tensor(padding, device=device),
                 attn_mask=tl.Tensor(causal, device=device))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.numpy(), expected_w.numpy(), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    assert xd.grad.shape == x.shape and mha.in_proj_weight.grad is not None
