"""FLOPs: the 6N + attention estimate, the exact count, the counter that watches real steps, MFU."""
import numpy as np
import pytest

import tinyllm as tl
import tinyllm.functional as F
from tinyllm.compress import flops
from tinyllm.compress.flops import (FlopCounter, estimate_mfu, gpt_flops_per_token, gpt_training_flops_per_step,
                                    matmul_peak_flops, mfu, transformer_model_flops_per_token,
                                    transformer_model_training_flops_per_step)
from tinyllm.models import TransformerModel
from tinyllm.tensor import backward_hooks, forward_hooks

from compress_helpers import batch, tiny_gpt


def exact_gpt_step_flops(config, batch_size):
    """6 · (matmul weights) · tokens + 12·L·C·T · tokens: what the GPT's matmuls do."""
    c, t = config.n_embd, config.block_size
    weights = config.n_layer * (3 * c * c + c * c + 8 * c * c) + config.vocab_size * c  # blocks + lm_head
    tokens = batch_size * t
    return 6 * weights * tokens + 12 * config.n_layer * c * t * tokens


def test_counted_flops_of_a_gpt_step_equal_the_formula(device):
    model = tiny_gpt(device)
    x, y = batch(model, batch_size=3)
    with FlopCounter() as counter:
        _, loss = model(x, y)
        loss.backward()
    assert counter.total == exact_gpt_step_flops(model.config, 3)
    assert counter.backward == 2 * counter.forward  # two products backward for each forward one
    # the 6N rule also counts biases and LayerNorm gains (no matmul work): a little above
    estimate = gpt_training_flops_per_step(model.config, model.num_params(), 3)
    assert counter.total < estimate < 1.1 * counter.total
    assert not forward_hooks and not backward_hooks  # the counter cleaned up


def test_the_estimate_per_token_is_nanogpts():
    model = tiny_gpt()
    c = model.config
    n = model.num_params()
    assert gpt_flops_per_token(c, n) == 6 * n + 12 * c.n_layer * c.n_embd * c.block_size
    assert gpt_training_flops_per_step(c, n, 5) == gpt_flops_per_token(c, n) * 5 * c.block_size


def test_no_backward_means_forward_flops_only():
    model = tiny_gpt()
    x, _ = batch(model)
    with tl.no_grad(), FlopCounter() as counter:
        model(x)
    assert counter.backward == 0 and counter.forward == exact_gpt_step_flops(model.config, 3) // 3


@pytest.mark.parametrize("src_len, tgt_len", [(7, 5), (4, 9)])
def test_transformer_model_flops_formula_matches_the_counter(device, src_len, tgt_len):
    tl.manual_seed(0)
    model = TransformerModel(13, 16, 2, 24, 2, dropout=0.0).to(device)
    rng = np.random.default_rng(0)
    src = tl.Tensor(rng.integers(0, 13, (src_len, 3)), device=device)
    tgt = tl.Tensor(rng.integers(0, 13, (tgt_len, 3)), device=device)
    targets = tl.Tensor(rng.integers(0, 13, (tgt_len, 3)), device=device)
    mask = model.generate_square_subsequent_mask(tgt_len, device=device)
    with FlopCounter() as counter:
        F.cross_entropy(model(src, tgt, tgt_mask=mask), targets).backward()
    assert counter.total == transformer_model_training_flops_per_step(model, 3, src_len, tgt_len)
    assert transformer_model_flops_per_token(model, src_len, tgt_len) * tgt_len == \
        transformer_model_training_flops_per_step(model, 1, src_len, tgt_len)


def test_matmul_flops_count_only_the_gradients_needed():
    a = tl.Tensor(np.ones((4, 5)), requires_grad=True)
    b = tl.Tensor(np.ones((5, 6)))  # no gradient wanted: its product is skipped
    with FlopCounter() as counter:
        (a @ b).sum().backward()
    assert counter.forward == 2 * 4 * 5 * 6 and counter.backward == 2 * 4 * 5 * 6


def test_mfu_and_its_refusals():
    assert mfu(1e9, 0.5, 4e9) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="> 0"):
        mfu(1e9, 0.0, 1e9)
    model = tiny_gpt()
    flops_per_step = gpt_training_flops_per_step(model.config, model.num_params(), 2)
    assert estimate_mfu(model, 2, 0.01, peak_flops=1e12) == pytest.approx(flops_per_step / 0.01 / 1e12)


def test_matmul_peak_is_measured():
    assert matmul_peak_flops(n=64, repeats=2) > 1e6


def test_the_old_names_stay_importable():
    from tinyllm.bench import gpt_training_flops_per_step as from_bench
    assert from_bench is flops.gpt_training_flops_per_step
