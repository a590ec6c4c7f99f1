"""Test helpers: Hypothesis strategies for shapes and arrays, tensors on any device."""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinyllm as tl

# small shapes, size-1 dimensions included (they exercise broadcasting)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)


@st.composite
def broadcastable_pair(draw, max_dims=3):
    """Two shapes that broadcast together (one may have fewer dims or size-1 axes)."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=1, max_side=3))
    a, b = list(shape), list(shape)
    for i in range(len(shape)):
        choice = draw(st.integers(0, 2))
        if choice == 1:
            a[i] = 1
        elif choice == 2:
            b[i] = 1
    drop = draw(st.integers(0, len(b) - 1))
    return tuple(a), tuple(b[drop:])


def values(draw, shape, low=-2.0, high=2.0, away_from=None, margin=0.1):
    """float64 values of ``shape`` in [low, high], at least ``margin`` from each point in
    ``away_from`` (kinks and poles, where central differences are wrong)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=shape)
    for point in away_from or ():
        close = np.abs(x - point) < margin
        x[close] = point + np.where(x[close] >= point, margin, -margin) * 2
    return x


def tensor(array, device, requires_grad=True, noncontiguous=False):
    """A float64 tensor on ``device``; optionally with non-contiguous (transposed) storage."""
    array = np.asarray(array, dtype=np.float64)
    if noncontiguous and array.ndim >= 2:
        t = tl.Tensor(np.ascontiguousarray(array.T), device=device)
        return tl.Tensor(t.data.T, requires_grad=requires_grad)
    return tl.Tensor(array, requires_grad=requires_grad, device=device)
