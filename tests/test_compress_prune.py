"""Pruning: global magnitude masks, heads, masks kept through training, refusals."""
import numpy as np
import pytest

import tinyllm as tl
from tinyllm import nn
from tinyllm.compress.lm import lm_loss
from tinyllm.compress.prune import Pruner, attention_layers, head_importance, model_sparsity, prunable_layers
from tinyllm.models import TransformerModel
from tinyllm.optim import AdamW

from compress_helpers import batch, tiny_gpt


def test_global_magnitude_prunes_exactly_the_smallest_weights(device):
    model = tiny_gpt(device)
    weights = {id(l.weight): l.weight for l in prunable_layers(model).values()}
    magnitudes = np.concatenate([np.abs(w.numpy()).ravel() for w in weights.values()])
    pruner = Pruner.global_magnitude(model, 0.6).apply()
    after = np.concatenate([np.abs(w.numpy()).ravel() for w in weights.values()])
    pruned = after == 0
    assert pruned.sum() == round(0.6 * magnitudes.size)
    assert magnitudes[pruned].max() <= magnitudes[~pruned].min()  # one threshold for all layers
    per_layer = [float((w.numpy() == 0).mean()) for w in weights.values()]
    assert max(per_layer) - min(per_layer) > 0.05  # global: layers lose different shares
    assert pruner.sparsity() == pytest.approx(0.6, abs=1e-3) and model_sparsity(model) == pytest.approx(0.6, abs=1e-3)


def test_pruned_weights_stay_zero_through_training(device):
    model = tiny_gpt(device)
    x, y = batch(model)
    optimizer = AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    pruner = Pruner.global_magnitude(model, 0.5)
    pruner.attach(optimizer)
    zeros = {p: p.numpy() == 0 for p in pruner.masks}
    for _ in range(3):
        loss = lm_loss(model, x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for p, was_zero in zeros.items():
        assert (p.numpy()[was_zero] == 0).all()
    pruner.detach(optimizer)  # without the masks, the update moves them again
    loss = lm_loss(model, x, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert model_sparsity(model) < 0.5


@pytest.mark.parametrize("amount", [-0.1, 1.0, 1.5, "half", True])
def test_amount_outside_its_range_is_refused(amount):
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        Pruner.global_magnitude(tiny_gpt(), amount)


def test_unsupported_layer_is_named():
    with pytest.raises(ValueError, match=r"'transformer\.h\.0\.ln_1' \(LayerNorm\)"):
        Pruner.global_magnitude(tiny_gpt(), 0.5, modules=["transformer.h.0.ln_1"])
    with pytest.raises(ValueError, match="not an attention layer"):
        Pruner.attention_heads(tiny_gpt(), {"transformer.h.0.mlp": [0]})
    with pytest.raises(ValueError, match=r"heads 0\.\.1, got \[2\]"):
        Pruner.attention_heads(tiny_gpt(), {"transformer.h.0.attn": [2]})


def test_a_pruned_head_no_longer_reaches_the_output(device):
    model = tiny_gpt(device, n_head=4, n_embd=16)
    x, _ = batch(model)
    name = "transformer.h.1.attn"
    Pruner.attention_heads(model, {name: [2]}).apply()
    attn = model.transformer.h[1].attn
    c, q = 16, 4
    rows = [r for base in (0, c, 2 * c) for r in range(base + 2 * q, base + 3 * q)]
    assert (attn.c_attn.weight.numpy()[rows] == 0).all() and (attn.c_attn.bias.numpy()[rows] == 0).all()
    assert (attn.c_proj.weight.numpy()[:, 2 * q:3 * q] == 0).all()
    with tl.no_grad():
        reference = model(x)[0].numpy()
        attn.c_attn.weight[rows] = 5.0  # the head's inputs change: nothing downstream notices
        changed = model(x)[0].numpy()
    assert np.allclose(reference, changed, atol=1e-6)


def test_heads_of_multihead_attention_and_combined_masks():
    tl.manual_seed(0)
    model = TransformerModel(13, 16, 2, 24, 1, dropout=0.0)
    names = list(attention_layers(model))
    assert names == ["encoder.layers.0.self_attn", "decoder.layers.0.self_attn", "decoder.layers.0.multihead_attn"]
    heads = Pruner.attention_heads(model, {names[0]: [1]})
    both = Pruner.global_magnitude(model, 0.3) & heads
    both.apply()
    attn = model.encoder.layers[0].self_attn
    assert (attn.in_proj_weight.numpy()[8:16] == 0).all() and (attn.out_proj.weight.numpy()[:, 8:] == 0).all()
    assert attn.in_proj_weight in both.masks and model.output_projection.weight in both.masks


def test_head_importance_scores_every_head():
    model = tiny_gpt()
    x, y = batch(model)
    before = [p.numpy().copy() for p in model.parameters()]
    with tl.no_grad():
        scores = head_importance(model, lambda: lm_loss(model, x, y).item())
    assert set(scores) == {(f"transformer.h.{i}.attn", h) for i in range(2) for h in range(2)}
    assert all(np.array_equal(a, p.numpy()) for a, p in zip(before, model.parameters()))  # put back


def test_prunable_layers_default_to_linear():
    model = tiny_gpt()
    layers = prunable_layers(model)
    assert all(isinstance(l, nn.Linear) for l in layers.values()) and "lm_head" in layers
