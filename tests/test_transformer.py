"""Transformer layers, stacks and the full Transformer against torch.nn (float64, train mode,
dropout 0): outputs and the gradients of every parameter and input, for post-norm and
pre-norm, ReLU and GELU, both layouts, with causal, memory and padding masks."""
import itertools

import numpy as np
import pytest

import tinyllm as tl
import tinyllm.nn as nn
from torch_twins import (assert_close, assert_grads_close, backward_both, load_torch_weights, perturb,
                                 requires_torch, tensors, torch)

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")  # torch's fast-path notice

D_MODEL, N_HEAD, D_FF = 8, 2, 12


def _padding(rng, n, s):
    lengths = rng.integers(1, s + 1, size=n)
    lengths[0] = s  # one full row
    return np.arange(s)[None, :] >= lengths[:, None]


def _causal(length, as_float):
    mask = np.triu(np.ones((length, length), dtype=bool), 1)
    return np.where(mask, -np.inf, 0.0) if as_float else mask


def _torch(array):
    return None if array is None else torch.from_numpy(array)


def _seq(rng, batch_first, n, length):
    return rng.standard_normal((n, length, D_MODEL) if batch_first else (length, n, D_MODEL))


LAYER_CASES = list(itertools.product([False, True], ["relu", "gelu"], [False, True]))


@requires_torch
@pytest.mark.parametrize("norm_first, activation, batch_first", LAYER_CASES)
def test_encoder_layer_matches_torch(norm_first, activation, batch_first):
    rng = np.random.default_rng([norm_first, activation == "gelu", batch_first])
    kwargs = dict(dim_feedforward=D_FF, dropout=0.0, activation=activation, batch_first=batch_first,
                  norm_first=norm_first, layer_norm_eps=1e-6)
    reference = perturb(torch.nn.TransformerEncoderLayer(D_MODEL, N_HEAD, **kwargs, dtype=torch.float64), rng).train()
    layer = nn.TransformerEncoderLayer(D_MODEL, N_HEAD, **kwargs, dtype=np.float64).train()
    load_torch_weights(layer, reference)
    n, length = 3, 6
    x, tx = tensors(_seq(rng, batch_first, n, length), torch)
    as_float = activation == "gelu"  # float masks in half the cases, boolean in the other
    mask = _causal(length, as_float)
    padding = _padding(rng, n, length)
    padding = np.where(padding, -np.inf, 0.0) if as_float else padding
    out = layer(x, src_mask=mask, src_key_padding_mask=padding)
    t_out = reference(tx, src_mask=_torch(mask), src_key_padding_mask=_torch(padding))
    what = f"EncoderLayer[norm_first={norm_first}, {activation}, batch_first={batch_first}]"
    assert_close(out, t_out, what + " output")
    backward_both(out, t_out, rng)
    assert_close(x.grad, tx.grad, what + " grad of src")
    assert_grads_close(layer, reference, what)


@requires_torch
@pytest.mark.parametrize("norm_first, activation, batch_first", LAYER_CASES)
def test_decoder_layer_matches_torch(norm_first, activation, batch_first):
    rng = np.random.default_rng([7, norm_first, activation == "gelu", batch_first])
    kwargs = dict(dim_feedforward=D_FF, dropout=0.0, activation=activation, batch_first=batch_first,
                  norm_first=norm_first)
    reference = perturb(torch.nn.TransformerDecoderLayer(D_MODEL, N_HEAD, **kwargs, dtype=torch.float64), rng).train()
    layer = nn.TransformerDecoderLayer(D_MODEL, N_HEAD, **kwargs, dtype=np.float64).train()
    load_torch_weights(layer, reference)
    n, length, source_length = 2, 5, 7
    tgt, t_tgt = tensors(_seq(rng, batch_first, n, length), torch)
    memory, t_memory = tensors(_seq(rng, batch_first, n, source_length), torch)
    tgt_mask = _causal(length, as_float=not batch_first)
    memory_mask = rng.standard_normal((length, source_length)) if norm_first else None
    tgt_padding = _padding(rng, n, length)
    memory_padding = _padding(rng, n, source_length)
    if not batch_first:  # torch wants the same mask type throughout; float masks here
        tgt_padding = np.where(tgt_padding, -np.inf, 0.0)
        memory_padding = np.where(memory_padding, -np.inf, 0.0)
    elif memory_mask is not None:
        memory_mask = memory_mask > 1.0  # boolean: mask out a few
        memory_mask[:, 0] = False
    out = layer(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_key_padding_mask=tgt_padding,
                memory_key_padding_mask=memory_padding)
    t_out = reference(t_tgt, t_memory, tgt_mask=_torch(tgt_mask), memory_mask=_torch(memory_mask),
                      tgt_key_padding_mask=_torch(tgt_padding), memory_key_padding_mask=_torch(memory_padding))
    what = f"DecoderLayer[norm_first={norm_first}, {activation}, batch_first={batch_first}]"
    assert_close(out, t_out, what + " output")
    backward_both(out, t_out, rng)
    assert_close(tgt.grad, t_tgt.grad, what + " grad of tgt")
    assert_close(memory.grad, t_memory.grad, what + " grad of memory")
    assert_grads_close(layer, reference, what)


@requires_torch
@pytest.mark.parametrize("norm_first, activation, batch_first", [(False, "relu", False), (True, "gelu", True)])
def test_transformer_matches_torch(norm_first, activation, batch_first):
    rng = np.random.default_rng([11, norm_first, batch_first])
    kwargs = dict(d_model=D_MODEL, nhead=N_HEAD, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=D_FF,
                  dropout=0.0, activation=activation, batch_first=batch_first, norm_first=norm_first)
    reference = perturb(torch.nn.Transformer(**kwargs, dtype=torch.float64), rng).train()
    model = nn.Transformer(**kwargs, dtype=np.float64).train()
    load_torch_weights(model, reference)
    n, source_length, length = 3, 6, 5
    src, t_src = tensors(_seq(rng, batch_first, n, source_length), torch)
    tgt, t_tgt = tensors(_seq(rng, batch_first, n, length), torch)
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(length, dtype=np.float64)
    src_padding, tgt_padding = _padding(rng, n, source_length), _padding(rng, n, length)
    masks = dict(src_key_padding_mask=src_padding, tgt_key_padding_mask=tgt_padding,
                 memory_key_padding_mask=src_padding)
    causal = tgt_mask.numpy() < -1  # as a boolean mask: True above the diagonal
    out = model(src, tgt, tgt_mask=causal, **masks)
    t_out = reference(t_src, t_tgt, tgt_mask=torch.from_numpy(causal),
                      **{k: torch.from_numpy(v) for k, v in masks.items()})
    what = f"Transformer[norm_first={norm_first}, {activation}, batch_first={batch_first}]"
    assert_close(out, t_out, what + " output")
    backward_both(out, t_out, rng)
    assert_close(src.grad, t_src.grad, what + " grad of src")
    assert_close(tgt.grad, t_tgt.grad, what + " grad of tgt")
    assert_grads_close(model, reference, what)


@requires_torch
def test_generate_square_subsequent_mask_matches_torch():
    ours = nn.Transformer.generate_square_subsequent_mask(5)
    theirs = torch.nn.Transformer.generate_square_subsequent_mask(5)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_stacks_copy_the_layer_and_apply_the_final_norm():
    tl.manual_seed(0)
    layer = nn.TransformerEncoderLayer(D_MODEL, N_HEAD, D_FF, dropout=0.0)
    encoder = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(D_MODEL))
    first, second = encoder.layers[0], encoder.layers[1]
    assert first is not layer and first.linear1.weight is not second.linear1.weight
    np.testing.assert_array_equal(first.linear1.weight.numpy(), second.linear1.weight.numpy())  # torch clones too
    assert len(encoder.state_dict()) == 3 * 12 + 2
    x = tl.randn(4, 2, D_MODEL)
    out = encoder(x).numpy()
    np.testing.assert_allclose(out.mean(-1), 0, atol=1e-5)  # the final LayerNorm (weight 1, bias 0)


@requires_torch
def test_transformer_parameter_names_match_torch():
    reference = torch.nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=4)
    ours = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=4)
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == theirs


def test_transformer_bad_input():
    with pytest.raises(ValueError, match="activation must be 'relu', 'gelu' or a callable, got 'swish'"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")
    with pytest.raises(ValueError, match=r"embed_dim \(8\) must be divisible by num_heads \(3\)"):
        nn.TransformerDecoderLayer(8, 3)
    model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=4)
    with pytest.raises(ValueError, match=r"batch sizes 2 and 3"):
        model(tl.randn(5, 2, 8), tl.randn(4, 3, 8))
    with pytest.raises(ValueError, match=r"2-D attn_mask must have shape \(L, S\) = \(4, 4\), got \(5, 5\)"):
        model(tl.randn(5, 2, 8), tl.randn(4, 2, 8), tgt_mask=model.generate_square_subsequent_mask(5))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(N, S\) = \(2, 5\), got \(5, 2\)"):
        model(tl.randn(5, 2, 8), tl.randn(4, 2, 8), src_key_padding_mask=np.zeros((5, 2), dtype=bool))
