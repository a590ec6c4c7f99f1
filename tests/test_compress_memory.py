"""Memory: the activation formula, the graph census and tracemalloc's measurement agree."""
import numpy as np
import pytest

from tinyllm.compress.lm import lm_loss
from tinyllm.compress.memory import (PeakMemory, gpt_activation_bytes, graph_activation_bytes,
                                     measure_training_memory, parameter_bytes, training_memory_estimate)
from tinyllm.optim import AdamW, SGD

from compress_helpers import batch, tiny_gpt


def test_peak_memory_sees_numpy_allocations():
    with PeakMemory() as mem:
        a = np.ones(1_000_000)  # 8 MB
        del a
    assert 8_000_000 <= mem.peak < 9_000_000 and mem.current < 100_000


@pytest.mark.parametrize("shape", [dict(batch_size=4, n_embd=32, block_size=16),
                                   dict(batch_size=4, n_embd=48, block_size=32)])
def test_activation_formula_matches_the_graph_and_the_measurement(shape):
    model = tiny_gpt(n_embd=shape["n_embd"], block_size=shape["block_size"], vocab_size=40)
    x, y = batch(model, shape["batch_size"])
    lm_loss(model, x, y)  # first-call allocations (caches, lazy imports) are not activations
    with PeakMemory() as mem:
        loss = lm_loss(model, x, y)
    estimated = gpt_activation_bytes(model.config, shape["batch_size"])
    counted = graph_activation_bytes(loss)
    assert counted == pytest.approx(estimated, rel=0.05)
    # plus the Python objects of the graph (a few hundred Functions and Tensors, ~50 KB: about
    # 10 % of this tiny model's 480 KB of activations, whatever the order the tests run in)
    assert estimated <= mem.current <= 1.15 * estimated


def test_training_memory_estimate_and_measurement():
    model = tiny_gpt(n_embd=32, block_size=16, vocab_size=40)
    x, y = batch(model, 4)
    p = parameter_bytes(model)
    assert p == 4 * model.num_parameters()  # float32, the tied matrix once
    estimate = training_memory_estimate(model, 4)
    assert estimate["gradients"] == p and estimate["optimizer_state"] == 2 * p
    assert estimate["total"] == sum(v for k, v in estimate.items() if k != "total")
    assert training_memory_estimate(model, 4, optimizer="sgd")["optimizer_state"] == 0
    with pytest.raises(ValueError, match="optimizer must be one of"):
        training_memory_estimate(model, 4, optimizer="lion")
    measured = measure_training_memory(model, lambda: lm_loss(model, x, y), AdamW(model.parameters()))
    assert measured["parameters"] == p and measured["gradients"] == p
    assert 2 * p <= measured["optimizer_state"] <= 3 * p  # m and v, plus a scratch buffer
    # activations plus the graph's Python objects (~10 % of this tiny model), as above
    assert estimate["activations"] <= measured["activations"] <= 1.15 * estimate["activations"]
    assert measured["peak"] >= measured["activations"]
    sgd = measure_training_memory(model, lambda: lm_loss(model, x, y), SGD(model.parameters(), lr=0.1))
    assert sgd["optimizer_state"] < measured["optimizer_state"]
