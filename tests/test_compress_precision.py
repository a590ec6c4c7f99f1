"""Mixed precision: float16 steps track float32 ones; the loss scaler's rules."""
import numpy as np
import pytest

import tinyllm as tl
from tinyllm.compress.lm import lm_loss
from tinyllm.compress.precision import DynamicLossScaler, MixedPrecision
from tinyllm.optim import SGD

from compress_helpers import batch, tiny_gpt


def test_a_float16_step_is_within_tolerance_of_float32(device):
    reference, model = tiny_gpt(device), tiny_gpt(device)
    x, y = batch(model)
    loss32 = lm_loss(reference, x, y)
    loss32.backward()
    mixed = MixedPrecision(model, SGD(model.parameters(), lr=0.1))
    loss16, skipped = mixed.step(lambda m: lm_loss(m, x, y))
    assert not skipped and mixed.working.dtype == np.float16 and model.dtype == np.float32
    assert loss16 == pytest.approx(loss32.item(), rel=2e-3)
    for p32, p in zip(reference.parameters(), model.parameters()):
        g32, g16 = tl.Tensor(p32.grad).numpy(), tl.Tensor(p.grad).numpy()
        assert g16.dtype == np.float32  # unscaled into the float32 master's .grad
        assert np.linalg.norm(g16 - g32) <= 2e-2 * np.linalg.norm(g32) + 1e-6


def test_mixed_precision_training_tracks_float32(device):
    reference, model = tiny_gpt(device), tiny_gpt(device)
    start = [p.numpy() for p in model.parameters()]
    x, y = batch(model)
    opt32 = SGD(reference.parameters(), lr=0.5, momentum=0.9)
    mixed = MixedPrecision(model, SGD(model.parameters(), lr=0.5, momentum=0.9), grad_clip=1.0)
    for _ in range(4):
        loss = lm_loss(reference, x, y)
        opt32.zero_grad()
        loss.backward()
        tl.optim.clip_grad_norm_(reference.parameters(), 1.0)
        opt32.step()
        loss16, _ = mixed.step(lambda m: lm_loss(m, x, y))
    assert loss16 == pytest.approx(loss.item(), rel=1e-2)
    moved32 = np.concatenate([(p.numpy() - s).ravel() for p, s in zip(reference.parameters(), start)])
    moved16 = np.concatenate([(p.numpy() - s).ravel() for p, s in zip(model.parameters(), start)])
    assert np.linalg.norm(moved16 - moved32) < 0.02 * np.linalg.norm(moved32)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point
def test_an_overflow_skips_the_step_and_halves_the_scale():
    model = tiny_gpt()
    x, y = batch(model)
    mixed = MixedPrecision(model, SGD(model.parameters(), lr=0.1))
    before = [p.numpy() for p in model.parameters()]
    _, skipped = mixed.step(lambda m: lm_loss(m, x, y) * 1e30)  # the scaled gradients overflow
    assert skipped and mixed.scaler.scale == 2.0 ** 15 and mixed.scaler.skipped_steps == 1
    assert all(np.array_equal(a, p.numpy()) for a, p in zip(before, model.parameters()))
    _, skipped = mixed.step(lambda m: lm_loss(m, x, y))
    assert not skipped and not all(np.array_equal(a, p.numpy()) for a, p in zip(before, model.parameters()))


def test_the_scale_grows_after_good_steps():
    scaler = DynamicLossScaler(init_scale=8.0, growth_interval=3)
    for _ in range(2):
        scaler.update(found_inf=False)
    assert scaler.scale == 8.0
    scaler.update(found_inf=False)
    assert scaler.scale == 16.0
    scaler.update(found_inf=True)
    assert scaler.scale == 8.0 and scaler.good_steps == 0
    restored = DynamicLossScaler()
    restored.load_state_dict(scaler.state_dict())
    assert restored.scale == 8.0 and restored.skipped_steps == 1
    with pytest.raises(ValueError, match="backoff_factor"):
        DynamicLossScaler(backoff_factor=2.0)


def test_scaling_rescues_gradients_that_float16_would_flush_to_zero():
    w = tl.Tensor(np.ones(4, dtype=np.float16), requires_grad=True)
    a = tl.Tensor(np.full(4, 1e-4, dtype=np.float16))
    ((w * a) * a).sum().backward()  # ∂L/∂w = 1e-8: below float16's smallest number
    assert (w.grad == 0).all()
    w.grad = None
    (((w * a) * a).sum() * 2.0 ** 12).backward()  # scaled: 4·10⁻⁵ on the way, representable
    assert np.allclose(w.grad.astype(np.float32) / 2 ** 12, 1e-8, rtol=1e-2)


def test_the_master_model_must_be_float32():
    model = tiny_gpt(dtype=np.float64)
    with pytest.raises(TypeError, match="float32"):
        MixedPrecision(model, SGD(model.parameters(), lr=0.1))
