"""The distillation loss: its value against PyTorch, its gradient, its limits, its refusals."""
import numpy as np
import pytest

import tinyllm as tl
from tinyllm.compress.distill import distillation_loss


def logits(seed, shape=(2, 3, 5)):
    return np.random.default_rng(seed).standard_normal(shape) * 2


def test_gradcheck(device):
    teacher = tl.Tensor(logits(1), device=device)
    targets = tl.Tensor(np.random.default_rng(2).integers(0, 5, (2, 3)), device=device)
    student = tl.Tensor(logits(0), device=device, requires_grad=True)
    assert tl.gradcheck(lambda s: distillation_loss(s, teacher, targets, temperature=2.5, alpha=0.3), student)
    assert tl.gradcheck(lambda s: distillation_loss(s, teacher, targets, temperature=0.5, alpha=1.0), student)


def test_the_soft_gradient_is_t_times_the_probability_difference():
    """∂/∂z_s [T² · KL(p_t ‖ p_s)] = T · (p_s − p_t) / N: the T² keeps it from shrinking like 1/T."""
    s, t, temperature = logits(0).reshape(6, 5), logits(1).reshape(6, 5), 4.0
    student = tl.Tensor(s, requires_grad=True)
    distillation_loss(student, tl.Tensor(t), tl.Tensor(np.zeros(6, dtype=np.int64)), temperature, alpha=1.0).backward()

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    expected = temperature * (softmax(s / temperature) - softmax(t / temperature)) / 6
    assert np.allclose(student.grad, expected, atol=1e-15)


@pytest.mark.parametrize("temperature, alpha", [(1.0, 0.5), (2.0, 0.9), (4.0, 0.0)])
def test_matches_pytorch(temperature, alpha):
    torch = pytest.importorskip("torch")
    s, t = logits(0), logits(1)
    y = np.random.default_rng(2).integers(0, 5, (2, 3))
    student = tl.Tensor(s, requires_grad=True)
    loss = distillation_loss(student, tl.Tensor(t), tl.Tensor(y), temperature, alpha)
    loss.backward()
    ts = torch.tensor(s, requires_grad=True)
    tf = torch.nn.functional
    kl = tf.kl_div(tf.log_softmax(ts.reshape(-1, 5) / temperature, -1),
                   tf.softmax(torch.tensor(t).reshape(-1, 5) / temperature, -1), reduction="batchmean")
    ref = alpha * temperature ** 2 * kl + (1 - alpha) * tf.cross_entropy(ts.reshape(-1, 5), torch.tensor(y).reshape(-1))
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    assert np.allclose(student.grad, ts.grad.numpy(), atol=1e-14)


def test_the_soft_term_is_a_true_kl_divergence():
    t = tl.Tensor(logits(1))
    y = tl.Tensor(np.zeros((2, 3), dtype=np.int64))
    assert distillation_loss(tl.Tensor(logits(1)), t, y, temperature=2.0, alpha=1.0).item() == pytest.approx(0, abs=1e-12)
    assert distillation_loss(tl.Tensor(logits(0)), t, y, temperature=2.0, alpha=1.0).item() > 0


def test_no_gradient_reaches_the_teacher():
    teacher = tl.Tensor(logits(1), requires_grad=True)
    student = tl.Tensor(logits(0), requires_grad=True)
    distillation_loss(student, teacher, tl.Tensor(np.zeros((2, 3), dtype=np.int64))).backward()
    assert teacher.grad is None and student.grad is not None


@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), "hot"])
def test_temperature_must_be_positive(temperature):
    with pytest.raises(ValueError, match=r"temperature must be > 0"):
        distillation_loss(tl.Tensor(logits(0)), tl.Tensor(logits(1)), tl.Tensor(np.zeros((2, 3), dtype=np.int64)),
                          temperature=temperature)


def test_alpha_and_shapes_are_checked():
    y = tl.Tensor(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        distillation_loss(tl.Tensor(logits(0)), tl.Tensor(logits(1)), y, alpha=1.5)
    with pytest.raises(ValueError, match="same shape"):
        distillation_loss(tl.Tensor(logits(0)), tl.Tensor(logits(1, (2, 3, 4))), y)
