"""Llama's pieces: rms_norm, rotary embeddings, SiLU/SwiGLU, grouped-query attention.

Each: a float64 gradcheck on Hypothesis shapes on every device, the fused op against its
composition from primitives, and the forward and backward against PyTorch (torch's
``rms_norm``/``nn.RMSNorm``, ``silu``, ``scaled_dot_product_attention(enable_gqa=True)``,
transformers' ``apply_rotary_pos_emb``)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinyllm as tl
import tinyllm.functional as F
from tinyllm import nn
from helpers import shapes, tensor, values

check = tl.gradcheck


def host(t):
    return tl.backend.to_host(t.data if isinstance(t, tl.Tensor) else t)


def torch_compare(ours_fn, torch_fn, arrays, device="cpu", rtol=1e-10, atol=1e-12, seed=0):
    """Forward and backward of ``ours_fn`` (tinyllm tensors on ``device``) against ``torch_fn``,
    float64, with a random cotangent."""
    torch = pytest.importorskip("torch")
    ours = [tl.Tensor(a, requires_grad=True, device=device) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, yt = ours_fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(host(y), yt.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(seed).standard_normal(tuple(yt.shape))
    y.backward(tl.Tensor(g, device=device))
    yt.backward(torch.tensor(g))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------- RMSNorm
@given(data=st.data(), shape=shapes, weighted=st.booleans(), noncontiguous=st.booleans())
def test_rms_norm_gradients(device, data, shape, weighted, noncontiguous):
    x = tensor(values(data.draw, shape), device, noncontiguous=noncontiguous)
    if weighted:
        w = tensor(values(data.draw, shape[-1:]), device)
        assert check(lambda a, b: F.rms_norm(a, b, eps=1e-6), x, w)
    else:
        assert check(lambda a: F.rms_norm(a, eps=1e-6), x)


@given(data=st.data(), shape=shapes)
def test_rms_norm_equals_its_composition_and_torch(device, data, shape):
    x = values(data.draw, shape)
    w = values(data.draw, shape[-1:])
    composed = lambda a, b: a / ((a * a).mean(axis=-1, keepdims=True) + 1e-6).sqrt() * b  # noqa: E731
    xt, wt = tensor(x, device), tensor(w, device)
    np.testing.assert_allclose(host(F.rms_norm(xt, wt, eps=1e-6)), host(composed(xt, wt)), rtol=1e-12, atol=1e-14)
    torch = pytest.importorskip("torch")
    torch_compare(lambda a, b: F.rms_norm(a, b, eps=1e-6),
                  lambda a, b: torch.nn.functional.rms_norm(a, a.shape[-1:], b, eps=1e-6), [x, w], device)
    # eps=None: the dtype's machine epsilon, as torch
    torch_compare(F.rms_norm, lambda a: torch.nn.functional.rms_norm(a, a.shape[-1:]), [x], device)


def test_rms_norm_layer_equals_torch_and_keeps_float16_finite(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    ours = nn.RMSNorm(6, eps=1e-5, device=device, dtype=np.float64)
    theirs = torch.nn.RMSNorm(6, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(rng.standard_normal(6)))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((2, 3, 6))
    np.testing.assert_allclose(host(ours(tl.Tensor(x, device=device))), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-12)
    two_axes = nn.RMSNorm((3, 6), device=device, dtype=np.float64)
    torch_two = torch.nn.RMSNorm((3, 6), dtype=torch.float64)
    np.testing.assert_allclose(host(two_axes(tl.Tensor(x, device=device))), torch_two(torch.tensor(x)).detach().numpy(),
                               rtol=1e-12)
    big = tl.Tensor(np.full((1, 4), 1000.0, dtype=np.float16), device=device)  # x² overflows float16
    y = nn.RMSNorm(4, device=device, dtype=np.float16)(big)
    assert y.dtype == np.float16 and np.allclose(host(y), 1.0)
    with pytest.raises(ValueError, match=r"does not end in the normalized shape \(6,\)"):
        ours(tl.Tensor(np.zeros((2, 5)), device=device))


# ----------------------------------------------------------------------------- rotary embeddings
rotary_shapes = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 4), st.sampled_from([2, 4, 6]))


@given(data=st.data(), shape=rotary_shapes, start=st.integers(0, 5))
def test_rotary_gradient_is_the_transposed_rotation(device, data, shape, start):
    x = tensor(values(data.draw, shape), device)
    cos, sin = F.rotary_tables(shape[-2], shape[-1], start=start, dtype=np.float64, device=device)
    assert check(lambda a: F.apply_rotary(a, cos, sin), x)
    # backward = rotation by −θ: rotating the gradient back recovers it exactly
    g = tl.Tensor(values(data.draw, shape), device=device)
    x.grad = None
    F.apply_rotary(x, cos, sin).backward(g)
    np.testing.assert_allclose(host(F.apply_rotary(tl.Tensor(x.grad), cos, sin)), host(g), atol=1e-12)


@given(data=st.data(), shape=rotary_shapes)
def test_rotary_keeps_norms_and_makes_scores_relative(device, data, shape):
    x = tensor(values(data.draw, shape), device, requires_grad=False)
    length, d = shape[-2], shape[-1]
    cos, sin = F.rotary_tables(length, d, dtype=np.float64, device=device)
    y = F.apply_rotary(x, cos, sin)
    np.testing.assert_allclose(np.linalg.norm(host(y), axis=-1), np.linalg.norm(host(x), axis=-1), rtol=1e-12)
    # <R(s) q, R(t) k> depends on t − s only: shifting both positions by 7 changes nothing
    q, k = host(x)[..., :1, :], host(x)[..., -1:, :]
    scores = []
    for shift in (0, 7):
        c, s = F.rotary_tables(length, d, start=shift, dtype=np.float64, device=device)
        rq = host(F.apply_rotary(tl.Tensor(q, device=device), tl.Tensor(c.data[:1]), tl.Tensor(s.data[:1])))
        rk = host(F.apply_rotary(tl.Tensor(k, device=device), tl.Tensor(c.data[-1:]), tl.Tensor(s.data[-1:])))
        scores.append((rq * rk).sum(-1))
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-10, atol=1e-12)


def test_rotary_equals_transformers_llama():
    torch = pytest.importorskip("torch")
    modeling_llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((2, 3, 5, 8)), rng.standard_normal((2, 1, 5, 8))  # (B, heads, T, head_dim)
    cos, sin = F.rotary_tables(5, 8, theta=500.0, start=3, dtype=np.float64)
    full_cos = torch.tensor(np.concatenate([cos.numpy()] * 2, axis=-1))[None]  # Hugging Face's (B, T, d)
    full_sin = torch.tensor(np.concatenate([sin.numpy()] * 2, axis=-1))[None]
    for x in (q, k):  # Hugging Face rotates queries and keys alike
        torch_compare(lambda a: F.apply_rotary(a, cos, sin),
                      lambda a: modeling_llama.apply_rotary_pos_emb(a, a, full_cos, full_sin)[0], [x])


def test_rotary_tables_and_errors(device):
    cos, sin = F.rotary_tables(4, 6, theta=100.0, start=2, dtype=np.float64, device=device)
    expected = np.arange(2, 6)[:, None] * 100.0 ** (-np.arange(0, 6, 2) / 6)
    np.testing.assert_allclose(host(cos), np.cos(expected))
    np.testing.assert_allclose(host(sin), np.sin(expected))
    x = tl.Tensor(np.zeros((4, 6)), device=device)
    with pytest.raises(ValueError, match="even head_dim"):
        F.apply_rotary(tl.Tensor(np.zeros((4, 5)), device=device), cos, sin)
    with pytest.raises(ValueError, match=r"cos must have shape \(3, 3\)"):
        F.apply_rotary(x[:3], cos, sin)
    with pytest.raises(ValueError, match="positive even number"):
        F.rotary_tables(4, 5)
    rope = nn.RotaryEmbedding(6, max_positions=8)
    with pytest.raises(ValueError, match=r"positions 6\.\.9 do not fit max_positions=8"):
        rope(x, start=6)


# ----------------------------------------------------------------------------- SiLU, SwiGLU
@given(data=st.data(), shape=shapes, noncontiguous=st.booleans())
def test_silu_and_swiglu_gradients(device, data, shape, noncontiguous):
    a = tensor(values(data.draw, shape, low=-5, high=5), device, noncontiguous=noncontiguous)
    b = tensor(values(data.draw, shape), device)
    assert check(F.silu, a)
    assert check(F.swiglu, a, b)


@given(data=st.data(), shape=shapes)
def test_swiglu_equals_its_composition_and_torch(device, data, shape):
    torch = pytest.importorskip("torch")
    a, b = values(data.draw, shape, low=-5, high=5), values(data.draw, shape)
    at, bt = tensor(a, device), tensor(b, device)
    np.testing.assert_allclose(host(F.swiglu(at, bt)), host(at * F.sigmoid(at) * bt), rtol=1e-12, atol=1e-14)
    torch_compare(F.silu, torch.nn.functional.silu, [a], device)
    torch_compare(F.swiglu, lambda x, y: torch.nn.functional.silu(x) * y, [a, b], device)


def test_swiglu_layer_equals_transformers_llama_mlp():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.models.llama.modeling_llama import LlamaMLP
    config = transformers.LlamaConfig(hidden_size=8, intermediate_size=12, num_attention_heads=2, num_key_value_heads=2)
    theirs = LlamaMLP(config).double()
    ours = nn.SwiGLU(8, 12, dtype=np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 3, 8))
    torch_compare(lambda t: ours(t), lambda t: theirs(t), [x])
    with pytest.raises(ValueError, match=r"gate and up must have the same shape"):
        F.swiglu(tl.Tensor(np.zeros(3)), tl.Tensor(np.zeros(4)))


# ----------------------------------------------------------------------------- grouped-query attention
@st.composite
def gqa_problem(draw):
    kv_heads = draw(st.integers(1, 2))
    heads = kv_heads * draw(st.integers(1, 3))
    batch, length, source, d = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 4)),
                                draw(st.integers(1, 3)))
    return (batch, heads, length, d), (batch, kv_heads, source, d)


@given(data=st.data(), problem=gqa_problem(), kind=st.sampled_from(["none", "causal", "bool", "float"]))
def test_grouped_query_attention_gradients_and_torch(device, data, problem, kind):
    torch = pytest.importorskip("torch")
    q_shape, kv_shape = problem
    q, k, v = values(data.draw, q_shape), values(data.draw, kv_shape), values(data.draw, kv_shape)
    ours_kw, torch_kw = {}, {}
    if kind == "causal":
        ours_kw = torch_kw = {"is_causal": True}
    elif kind == "bool":  # per head, True = may attend; key 0 always visible (torch gives nan otherwise)
        allowed = data.draw(hnp.arrays(np.bool_, q_shape[1:2] + (q_shape[2], kv_shape[2])))
        allowed[..., 0] = True
        ours_kw = {"attn_mask": tl.Tensor(allowed, device=device)}
        torch_kw = {"attn_mask": torch.tensor(allowed)}
    elif kind == "float":
        bias = values(data.draw, (q_shape[2], kv_shape[2]))
        ours_kw, torch_kw = {"attn_mask": tl.Tensor(bias, device=device)}, {"attn_mask": torch.tensor(bias)}
    gqa = lambda a, b, c: F.grouped_query_attention(a, b, c, **ours_kw)  # noqa: E731
    assert check(gqa, tensor(q, device), tensor(k, device), tensor(v, device))
    torch_compare(gqa, lambda a, b, c: torch.nn.functional.scaled_dot_product_attention(
        a, b, c, enable_gqa=True, **torch_kw), [q, k, v], device)


def test_grouped_query_attention_equals_repeated_heads(device):
    """Sharing a K/V head equals giving each query head a copy of it (Hugging Face's repeat_kv)."""
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((2, 6, 4, 3)), rng.standard_normal((2, 2, 5, 3)), rng.standard_normal((2, 2, 5, 3))
    shared = F.grouped_query_attention(*(tl.Tensor(a, device=device) for a in (q, k, v)), is_causal=True,
                                       return_weights=True)
    copied = F.attention(*(tl.Tensor(a, device=device) for a in (q, np.repeat(k, 3, axis=1), np.repeat(v, 3, axis=1))),
                         is_causal=True)
    for ours, theirs in zip(shared, copied):
        np.testing.assert_allclose(host(ours), host(theirs), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="must be equal and divide the 6 query heads"):
        F.grouped_query_attention(tl.Tensor(q), tl.Tensor(k[:, :1].repeat(4, axis=1)), tl.Tensor(v[:, :1].repeat(4, axis=1)))
    with pytest.raises(ValueError, match=r"does not broadcast to the scores' shape \(2, 6, 4, 5\)"):
        F.grouped_query_attention(tl.Tensor(q), tl.Tensor(k), tl.Tensor(v), attn_mask=np.ones((3, 4, 5), dtype=bool))


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_grouped_query_attention_layer_gradients(device, kv_heads):
    layer = nn.GroupedQueryAttention(8, 4, kv_heads, max_positions=6, device=device, dtype=np.float64)
    assert layer.k_proj.weight.shape == (2 * kv_heads, 8)
    x = tensor(np.random.default_rng(2).standard_normal((2, 3, 8)), device)
    assert check(lambda t: layer(t), x)
    assert layer.attention_weights.shape == (2, 4, 3, 3)
    with pytest.raises(ValueError, match=r"num_kv_heads \(3\) must divide num_heads \(4\)"):
        nn.GroupedQueryAttention(8, 4, 3)
