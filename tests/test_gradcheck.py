"""The checker itself: it must fail on wrong gradients, and say where."""
import numpy as np
import pytest

import tinyllm as tl


class SquareWithWrongBackward(tl.Function):
    """y = x², with the derivative mistakenly written as x instead of 2x."""

    def forward(self, x):
        self.save(x)
        return x * x

    def backward(self, g):
        (x,) = self.saved
        return (g * x,)


class MatMulWithTransposedGradient(tl.Function):
    """y = a @ b whose ∂L/∂a forgets to transpose b (only shape-correct for square b)."""

    def forward(self, a, b):
        self.save(a, b)
        return a @ b

    def backward(self, g):
        a, b = self.saved
        return g @ b, a.T @ g


def test_gradcheck_passes_on_a_correct_backward(device):
    x = tl.Tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True, device=device)
    assert tl.gradcheck(lambda t: (t * t).sum(axis=0), x) is True


def test_gradcheck_fails_on_a_wrong_backward_and_names_the_place(device):
    x = tl.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True, device=device)
    with pytest.raises(tl.GradcheckError) as info:
        tl.gradcheck(lambda t: SquareWithWrongBackward.apply(t), x)
    message = str(info.value)
    assert "input 0" in message and "index (0, 0)" in message
    assert "analytic" in message and "numeric" in message


def test_gradcheck_catches_a_transposed_gradient(device):
    rng = np.random.default_rng(1)
    a = tl.Tensor(rng.standard_normal((2, 3)), requires_grad=True, device=device)
    b = tl.Tensor(rng.standard_normal((3, 3)), requires_grad=True, device=device)
    with pytest.raises(tl.GradcheckError, match="input 0"):
        tl.gradcheck(MatMulWithTransposedGradient.apply, a, b)


def test_projection_mode_also_fails_on_wrong_backward(device):
    x = tl.Tensor(np.random.default_rng(2).standard_normal((50, 40)), requires_grad=True, device=device)
    assert tl.gradcheck(lambda t: (t * t).tanh(), x, projections=3)
    with pytest.raises(tl.GradcheckError, match="random direction"):
        tl.gradcheck(lambda t: SquareWithWrongBackward.apply(t), x, projections=3)


def test_gradcheck_requires_float64():
    x = tl.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        tl.gradcheck(lambda t: t * 2, x)


def test_gradcheck_needs_something_to_check():
    with pytest.raises(ValueError, match="requires_grad"):
        tl.gradcheck(lambda t: t * 2, tl.Tensor(np.ones(2)))
