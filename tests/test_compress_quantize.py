"""int8 quantization: the error bound, the layers, whole models, files, and refusals."""
import numpy as np
import pytest

import tinyllm as tl
import tinyllm.functional as F
from tinyllm import nn
from tinyllm.compress.quantize import (QuantizedEmbedding, QuantizedLinear, dequantize, model_size_bytes,
                                       quantize_model, quantize_per_channel, quantized_module_names)
from tinyllm.models import TransformerModel

from compress_helpers import batch, tiny_gpt


def test_quantize_then_dequantize_error_is_at_most_half_a_step(device):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 9)).astype(np.float32) * rng.uniform(0.01, 3, (6, 1)).astype(np.float32)
    w[2] = 0.0  # an all-zero row
    q, scale = quantize_per_channel(tl.Tensor(w, device=device))
    assert q.dtype == np.int8 and scale.dtype == np.float32
    codes, s = tl.Tensor(q).numpy(), tl.Tensor(scale).numpy()
    assert np.abs(codes).max() <= 127 and (np.abs(codes).max(axis=1)[[0, 1, 3, 4, 5]] == 127).all()
    assert np.allclose(s, np.where(np.abs(w).max(axis=1) > 0, np.abs(w).max(axis=1) / 127, 1))
    error = np.abs(w - tl.Tensor(dequantize(q, scale)).numpy())
    assert (error <= s[:, None] / 2 * (1 + 1e-6)).all()  # |W − Ŵ| ≤ s/2, row by row
    assert (codes[2] == 0).all()


def test_quantized_linear_equals_linear_with_the_dequantized_weight(device):
    tl.manual_seed(0)
    linear = nn.Linear(7, 5, device=device)
    layer = QuantizedLinear.from_float(linear)
    x = tl.Tensor(np.random.default_rng(1).standard_normal((2, 3, 7)).astype(np.float32), device=device)
    expected = F.linear(x, layer.dequantized_weight(), linear.bias)
    assert np.allclose(layer(x).numpy(), expected.numpy(), atol=1e-5)
    assert np.abs(layer(x).numpy() - linear(x).numpy()).max() < 0.05  # close to the float layer


def test_quantized_linear_gradient_wrt_input_is_right():
    tl.manual_seed(0)
    layer = QuantizedLinear.from_float(nn.Linear(4, 3, dtype=np.float64))
    x = tl.Tensor(np.random.default_rng(0).standard_normal((2, 4)), requires_grad=True)
    assert tl.gradcheck(lambda a: layer(a), x)


def test_quantized_embedding_rows(device):
    tl.manual_seed(0)
    table = nn.Embedding(10, 4, device=device)
    layer = QuantizedEmbedding.from_float(table)
    ids = tl.Tensor(np.array([[1, 9], [0, 1]]), device=device)
    assert np.allclose(layer(ids).numpy(), layer.dequantized_weight().numpy()[[[1, 9], [0, 1]]])
    assert np.abs(layer(ids).numpy() - table(ids).numpy()).max() < 0.02
    with pytest.raises(IndexError, match="out of range"):
        layer(tl.Tensor(np.array([10]), device=device))


def test_quantized_gpt_is_smaller_and_close(device):
    model = tiny_gpt(device, n_embd=32, vocab_size=40)
    x, y = batch(model)
    with tl.no_grad():
        logits, loss = model(x, y)
        before = model_size_bytes(model)
        quantize_model(model)
        q_logits, q_loss = model(x, y)
    assert not any(isinstance(m, (nn.Linear, nn.Embedding)) for m in model.modules())
    assert model.lm_head.weight is model.transformer.wte.weight  # the tied table stays one table
    assert before / model_size_bytes(model) > 3
    assert np.abs(q_logits.numpy() - logits.numpy()).max() < 0.05
    assert abs(q_loss.item() - loss.item()) < 0.01
    state = model.state_dict()
    assert state["lm_head.weight"].dtype == np.int8 and "lm_head.weight_scale" in state
    assert quantized_module_names(model)[:2] == ["transformer.wte", "transformer.wpe"]


def test_quantized_gpt_attention_reads_the_int8_codes_by_rows(device):
    """GPT's attention reads Q, K and V from the packed c_attn as three row blocks; quantized,
    each block is an int8 product (no float copy of the weight is made) and equals the float
    layer with the dequantized weight."""
    model = tiny_gpt(device, n_embd=32, vocab_size=40)
    quantize_model(model)
    x, _ = batch(model)
    with tl.no_grad(), tl.profiler.profile() as prof:
        model(x)
    calls = {r["op"]: r["forward_calls"] for r in prof.rows()}
    n_layer = len(model.transformer.h)
    assert calls["QuantizedLinearFunction"] == n_layer * (3 + 1 + 2) + 1  # q, k, v, proj, mlp ×2; lm_head
    c_attn = model.transformer.h[0].attn.c_attn
    h = tl.Tensor(np.random.default_rng(0).standard_normal((2, 5, 32)), dtype=np.float32, device=device)
    reference = F.linear(h, c_attn.dequantized_weight().to(device), c_attn.bias)
    for start, stop in ((0, 32), (32, 64), (64, 96)):
        np.testing.assert_allclose(c_attn.rows(h, start, stop).numpy(), reference.numpy()[..., start:stop],
                                   rtol=1e-5, atol=1e-5)


def test_quantize_only_named_layers_and_refuse_others():
    model = tiny_gpt()
    quantize_model(model, ["transformer.h.0.mlp.c_fc"])
    assert isinstance(model.transformer.h[0].mlp.c_fc, QuantizedLinear)
    assert isinstance(model.transformer.h[0].mlp.c_proj, nn.Linear)
    with pytest.raises(ValueError, match=r"'transformer\.ln_f' \(LayerNorm\).*only Linear and Embedding"):
        quantize_model(model, ["transformer.ln_f"])
    with pytest.raises(ValueError, match="already quantized"):
        quantize_model(model, ["transformer.h.0.mlp.c_fc"])
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        quantize_model(model, ["nope"])


def test_transformer_model_keeps_the_packed_attention_in_float():
    tl.manual_seed(0)
    model = TransformerModel(13, 16, 2, 24, 1, dropout=0.0)
    rng = np.random.default_rng(0)
    src, tgt = tl.Tensor(rng.integers(0, 13, (5, 2))), tl.Tensor(rng.integers(0, 13, (4, 2)))
    with tl.no_grad():
        reference = model(src, tgt).numpy()
        quantize_model(model)
        out = model(src, tgt).numpy()
    assert isinstance(model.output_projection, QuantizedLinear)
    assert model.encoder.layers[0].self_attn.in_proj_weight.dtype == np.float32
    assert np.abs(out - reference).max() < 0.05
    with pytest.raises(ValueError, match=r"'encoder\.layers\.0\.self_attn' \(MultiheadAttention\)"):
        quantize_model(model, ["encoder.layers.0.self_attn"])
