"""The strict CPU device fails where CuPy would, so CI (no GPU) catches device bugs."""
import numpy as np
import pytest

import tinyllm as tl
from tinyllm.testing.strict import StrictArray, StrictDeviceError, strict_xp


def strict(values):
    return tl.Tensor(np.asarray(values, dtype=np.float64), device="strict")


def test_mixing_host_array_into_device_arithmetic_fails():
    a = strict([1.0, 2.0]).data
    with pytest.raises(StrictDeviceError, match="host numpy.ndarray"):
        a + np.ones(2)
    with pytest.raises(StrictDeviceError):
        np.ones(2) * a
    with pytest.raises(StrictDeviceError):
        strict_xp.maximum(a, np.zeros(2))


def test_implicit_conversion_to_numpy_fails():
    a = strict([1.0, 2.0]).data
    for convert in (np.asarray, np.array, lambda x: np.concatenate([x, x])):
        with pytest.raises(StrictDeviceError):
            convert(a)


def test_scalars_and_explicit_transfers_are_allowed():
    a = strict([1.0, 2.0]).data
    assert isinstance(a * 2.0 + np.float64(1.0), StrictArray)
    assert isinstance(a.sum(), StrictArray) and a.sum().ndim == 0  # 0-d, as CuPy
    np.testing.assert_array_equal(tl.backend.to_host(a), [1.0, 2.0])


def test_host_index_arrays_fail():
    a = strict([1.0, 2.0, 3.0]).data
    with pytest.raises(StrictDeviceError, match="index"):
        a[np.array([0, 1])]


def test_tensor_level_mixing_is_refused():
    x = strict([1.0, 2.0])
    with pytest.raises((TypeError, RuntimeError), match="strict"):
        x + np.ones(2)
    with pytest.raises(TypeError, match="numpy"):
        np.asarray(x)
    with pytest.raises(RuntimeError, match="different devices: 'strict' and 'cpu'"):
        x + tl.Tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="comparison of tensors on different devices: 'strict' and 'cpu'"):
        x == tl.Tensor([1.0, 2.0])


def test_a_bug_that_only_cupy_would_catch_is_caught_here():
    class HostConstantInBackward(tl.Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return (g * np.full(g.shape, 2.0),)  # a host array: wrong on CuPy

    x = tl.Tensor(np.ones(3), requires_grad=True)
    HostConstantInBackward.apply(x).sum().backward()  # plain NumPy never notices
    xs = tl.Tensor(np.ones(3), requires_grad=True, device="strict")
    with pytest.raises(StrictDeviceError):
        HostConstantInBackward.apply(xs).sum().backward()
