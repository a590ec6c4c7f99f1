"""Activation recomputation and gradient accumulation: the same gradients, less memory."""
import numpy as np
import pytest

import tinyllm as tl
import tinyllm.functional as F
from tinyllm.compress.recompute import (accumulate_gradients, recompute, recompute_blocks, split_batch,
                                            transformer_blocks)
from tinyllm.compress.lm import lm_loss
from tinyllm.compress.memory import PeakMemory
from tinyllm.models import TransformerModel

from compress_helpers import batch, tiny_gpt


def gradients(model, loss_fn, seed=5):
    model.zero_grad()
    tl.manual_seed(seed)  # the same dropout masks in both runs
    loss = loss_fn()
    loss.backward()
    return loss.item(), {name: tl.Tensor(p.grad).numpy() for name, p in model.named_parameters()}


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_recomputed_gpt_blocks_give_exactly_the_same_gradients(device, dropout):
    model = tiny_gpt(device, dtype=np.float64, dropout=dropout)
    x, y = batch(model)
    loss, reference = gradients(model, lambda: lm_loss(model, x, y))
    names = list(model.state_dict())
    recompute_blocks(model)
    loss_ckpt, grads = gradients(model, lambda: lm_loss(model, x, y))
    assert loss_ckpt == loss
    for name, g in reference.items():
        assert np.array_equal(grads[name], g), name
    assert list(model.state_dict()) == names  # the names do not change
    recompute_blocks(model, False)
    assert "forward" not in model.transformer.h[0].__dict__


def test_recomputed_encoder_decoder_layers_give_the_same_gradients(device):
    tl.manual_seed(0)
    model = TransformerModel(13, 16, 2, 24, 2, dropout=0.1).to(device, np.float64)
    rng = np.random.default_rng(0)
    src, tgt = tl.Tensor(rng.integers(0, 13, (5, 2)), device=device), tl.Tensor(rng.integers(0, 13, (4, 2)), device=device)
    targets = tl.Tensor(rng.integers(0, 13, (4, 2)), device=device)
    mask = model.generate_square_subsequent_mask(4, device=device, dtype=np.float64)

    def loss_fn():
        return F.cross_entropy(model(src, tgt, tgt_mask=mask), targets)
    loss, reference = gradients(model, loss_fn)
    assert len(transformer_blocks(model)) == 4
    recompute_blocks(model)
    loss_ckpt, grads = gradients(model, loss_fn)
    assert loss_ckpt == loss
    for name, g in reference.items():
        assert np.allclose(grads[name], g, rtol=1e-12, atol=1e-14), name


def test_recomputation_cuts_the_peak_memory():
    model = tiny_gpt(n_layer=4, n_head=4, n_embd=64, block_size=64, vocab_size=40)
    x, y = batch(model, batch_size=8)
    peaks = []
    for enabled in (False, True):
        recompute_blocks(model, enabled)
        model.zero_grad()
        with PeakMemory() as mem:
            lm_loss(model, x, y).backward()
        peaks.append(mem.peak)
    assert peaks[1] < 0.7 * peaks[0]


def test_checkpointing_keeps_gradients_already_there_and_leaves_inference_alone():
    model = tiny_gpt(dtype=np.float64)
    x, y = batch(model)
    _, once = gradients(model, lambda: lm_loss(model, x, y))
    recompute_blocks(model)
    model.zero_grad()
    for _ in range(2):  # two backwards accumulate: twice the gradient
        lm_loss(model, x, y).backward()
    for name, p in model.named_parameters():
        assert np.allclose(p.grad, 2 * once[name], rtol=1e-12, atol=1e-15), name
    with tl.no_grad():  # generation with a KV cache goes through the plain forward
        cache = model.new_kv_cache()
        full = model(x)[0].numpy()
        step = model(x, kv_cache=cache)[0].numpy()
    assert np.allclose(full, step)


def test_checkpoint_of_a_function_needs_its_parameters():
    model = tiny_gpt()
    block = model.transformer.h[0]
    x = tl.Tensor(np.ones((1, 3, 16), dtype=np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="parameters"):
        recompute(lambda t: block(t), x)
    out = recompute(lambda t: block(t), x, parameters=block.parameters())
    out.sum().backward()
    assert x.grad is not None and block.ln_1.weight.grad is not None


def test_gradient_accumulation_equals_the_whole_batch(device):
    model = tiny_gpt(device, dtype=np.float64)
    x, y = batch(model, batch_size=4)
    loss, reference = gradients(model, lambda: lm_loss(model, x, y))
    model.zero_grad()
    mean = accumulate_gradients(lambda a, b: lm_loss(model, a, b), split_batch(4, x, y))
    assert mean == pytest.approx(loss, rel=1e-12)
    for name, p in model.named_parameters():
        assert np.allclose(tl.Tensor(p.grad).numpy(), reference[name], rtol=1e-10, atol=1e-13), name


def test_accumulation_cuts_the_peak_memory():
    model = tiny_gpt(n_layer=2, n_embd=64, block_size=64, vocab_size=40)
    x, y = batch(model, batch_size=8)
    peaks = []
    for k in (1, 4):
        model.zero_grad()
        with PeakMemory() as mem:
            accumulate_gradients(lambda a, b: lm_loss(model, a, b), split_batch(k, x, y))
        peaks.append(mem.peak)
    assert peaks[1] < 0.6 * peaks[0]


def test_split_batch_refusals():
    with pytest.raises(ValueError, match="does not split into 3"):
        split_batch(3, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="positive integer"):
        split_batch(0, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="no micro-batches"):
        accumulate_gradients(lambda: None, [])
    with pytest.raises(ValueError, match="no Transformer blocks"):
        recompute_blocks(tl.nn.Linear(2, 2))
