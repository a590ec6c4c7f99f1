"""Every kernel equals the reference formula it replaces.

For each registered CPU kernel, the same op runs twice on Hypothesis-drawn inputs: once with
the kernels (the default) and once on the formulas (``kernels.reference_only()``); outputs
and gradients must agree, in float64 (to rounding) and float32, on the cpu and the strict
device (which proves a kernel uses only the array module, as CuPy needs). The last test
runs the gradient and PyTorch-parity suites again with ``TINYLLM_KERNELS=reference``, so
the formulas themselves are proven, not only the kernels.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinyllm as tl
import tinyllm.functional as F
from tinyllm import kernels, optim
from tinyllm.kernels import cpu

TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-4, atol=2e-5)}
dtypes = st.sampled_from([np.float64, np.float32])


def run_both(device, fn, arrays, dtype, grad=True):
    """fn(*tensors) and the gradients of Σ w ⊙ fn(...) for a fixed random w, with kernels and
    with the formulas only."""
    results = []
    for reference in (False, True):
        tensors = [tl.Tensor(np.asarray(a, dtype=dtype), requires_grad=grad, device=device) for a in arrays]
        with kernels.reference_only() if reference else _nothing():
            out = fn(*tensors)
            weights = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
            if grad:
                (out * tl.Tensor(weights, device=device)).sum().backward()
        results.append([out.numpy()] + [tl.backend.to_host(t.grad) for t in tensors if grad])
    return results


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def assert_same(device, fn, arrays, dtype, grad=True):
    fast, reference = run_both(device, fn, arrays, dtype, grad)
    for i, (a, b) in enumerate(zip(fast, reference)):
        np.testing.assert_allclose(a, b, **TOLERANCE[dtype], err_msg=f"output {i} (0 = forward)")


def test_every_kernel_is_tested_here():
    tested = {"softmax_rows", "MatMul", "GELU", "LayerNorm", "Attention", "adam_update", "Embedding"}
    assert {name for name, family in kernels.registered()} == tested


def test_kernels_are_used_and_can_be_switched_off():
    x = tl.Tensor(np.ones((2, 3)), requires_grad=True)
    _, fn = F.LayerNorm.apply_with_context(x, eps=1e-5)
    assert fn.kernel is cpu.LayerNorm
    with kernels.reference_only():
        _, fn = F.LayerNorm.apply_with_context(x, eps=1e-5)
        assert fn.kernel is None and not kernels.enabled()
    assert kernels.enabled()


def test_a_class_of_the_same_name_never_gets_a_kernel():
    """Kernels attach to the library's Functions by kernel_name, not by class name: a
    student's own class Attention(Function) runs its own code."""
    class Attention(tl.Function):
        def forward(self, q):
            return q * 2

        def backward(self, g):
            return (g * 2,)
    _, fn = Attention.apply_with_context(tl.Tensor([1.0]))
    assert fn.kernel is None


# ----------------------------------------------------------------------------- one test per kernel
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5), dtype=dtypes,
       seed=st.integers(0, 2**16), scale=st.sampled_from([1.0, 30.0]))
def test_softmax_rows(device, shape, dtype, seed, scale):
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    for fn in (F.softmax, F.log_softmax, lambda t: F.softmax(t, axis=0)):
        assert_same(device, fn, [x], dtype)
    if len(shape) >= 2:
        targets = tl.Tensor(np.random.default_rng(seed).integers(0, shape[-1], shape[:-1]), device=device)
        assert_same(device, lambda z: F.cross_entropy(z, targets, axis=-1, label_smoothing=0.1), [x], dtype)


@st.composite
def matmul_operands(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    stack = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    right = draw(st.sampled_from([(k, m), (k,), stack + (k, m)]))
    return stack + (n, k), right


@given(shapes=matmul_operands(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_matmul(device, shapes, dtype, seed):
    rng = np.random.default_rng(seed)
    assert_same(device, lambda a, b: a @ b, [rng.standard_normal(s) for s in shapes], dtype)


@given(vocab=st.integers(1, 6), width=st.integers(1, 4),
       ids_shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5), dtype=dtypes,
       seed=st.integers(0, 2**16))
def test_embedding(device, vocab, width, ids_shape, dtype, seed):
    """Repeated ids (the sums), ids never used (zero rows), no ids at all, a 0-d id."""
    rng = np.random.default_rng(seed)
    ids = tl.Tensor(rng.integers(0, vocab, ids_shape), device=device)
    assert_same(device, lambda w: F.embedding(ids, w), [rng.standard_normal((vocab, width))], dtype)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6), dtype=dtypes,
       seed=st.integers(0, 2**16), approximate=st.sampled_from(["none", "tanh"]))
def test_gelu(device, shape, dtype, seed, approximate):
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    assert_same(device, lambda t: F.gelu(t, approximate=approximate), [x], dtype)


def test_gelu_on_an_array_large_enough_for_threads(device):
    x = np.random.default_rng(0).standard_normal((300, 500))  # 150,000 > 2 × the piece size
    for approximate in ("none", "tanh"):
        assert_same(device, lambda t: F.gelu(t, approximate=approximate), [x], np.float32)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6), dtype=dtypes,
       seed=st.integers(0, 2**16), affine=st.sampled_from(["none", "weight", "both"]), offset=st.sampled_from([0, 50]))
def test_layer_norm(device, shape, dtype, seed, affine, offset):
    rng = np.random.default_rng(seed)
    d = shape[-1]
    arrays = [rng.standard_normal(shape) + offset]
    if affine == "none":
        fn = F.layer_norm
    else:
        arrays += [rng.standard_normal(d)] + ([rng.standard_normal(d)] if affine == "both" else [])
        fn = F.layer_norm
    assert_same(device, fn, arrays, dtype)


@st.composite
def attention_problem(draw):
    batch = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=2))
    length, source, d, dv = (draw(st.integers(1, 4)) for _ in range(4))
    mask = draw(st.sampled_from(["none", "causal", "bool", "float", "empty row"]))
    return batch, length, source, d, dv, mask


@given(problem=attention_problem(), dtype=dtypes, seed=st.integers(0, 2**16), dropout=st.sampled_from([0.0, 0.3]))
def test_attention(device, problem, dtype, seed, dropout):
    batch, length, source, d, dv, mask = problem
    if mask == "causal":
        source = length
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(batch + (length, d)), rng.standard_normal(batch + (source, d)),
              rng.standard_normal(batch + (source, dv))]
    kwargs = {"dropout_p": dropout, "is_causal": mask == "causal"}
    if mask in ("bool", "empty row"):
        allowed = rng.random((length, source)) > 0.3
        allowed[:, 0] = mask == "bool" or allowed[:, 0]
        if mask == "empty row":
            allowed[0] = False  # a query that sees no key: weights and output 0 in both
        kwargs["attn_mask"] = tl.Tensor(allowed, device=device)
    elif mask == "float":
        kwargs["attn_mask"] = tl.Tensor(rng.standard_normal((length, source)).astype(dtype), device=device)

    def fn(q, k, v):
        tl.manual_seed(3)  # the same dropout mask both times
        return F.scaled_dot_product_attention(q, k, v, **kwargs)
    assert_same(device, fn, arrays, dtype)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=300), dtype=dtypes,
       seed=st.integers(0, 2**16), kind=st.sampled_from(["Adam", "AdamW"]), transposed=st.booleans())
def test_adam_update(device, shape, dtype, seed, kind, transposed):
    """Three steps of the kernel and of the formula from the same start (strided parameters
    included: the kernel then works on whole arrays)."""
    rng = np.random.default_rng(seed)
    start, grads = rng.standard_normal(shape), [rng.standard_normal(shape) for _ in range(3)]
    finals = []
    for reference in (False, True):
        p = tl.Tensor(start.astype(dtype), requires_grad=True, device=device)
        if transposed and len(shape) == 2:
            p = tl.Tensor(tl.Tensor(np.ascontiguousarray(start.T).astype(dtype), device=device).data.T,
                          requires_grad=True)
        opt = getattr(optim, kind)([p], lr=1e-2, weight_decay=0.1)
        with kernels.reference_only() if reference else _nothing():
            for g in grads:
                p.grad = tl.Tensor(g.astype(dtype), device=device).data
                opt.step()
        finals.append([p.numpy(), tl.backend.to_host(opt.state[p]["exp_avg"]),
                       tl.backend.to_host(opt.state[p]["exp_avg_sq"])])
    for a, b in zip(*finals):
        np.testing.assert_allclose(a, b, **TOLERANCE[dtype])


def test_adam_update_large_enough_for_threads(device):
    test_adam_update.hypothesis.inner_test(device, (400, 400), np.float32, 0, "AdamW", False)


def test_parallel_for_covers_every_index_once():
    seen = np.zeros(1_000_003, np.int64)

    def kernel(lo, hi):
        seen[lo:hi] += 1
    cpu.parallel_for(seen.size, kernel, grain=1000)
    assert (seen == 1).all()


# ----------------------------------------------------------------------------- the formulas alone
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_gradient_and_parity_suites_pass_on_the_reference_formulas():
    """CI's second run of the proofs: every gradcheck, every torch comparison and the sample
    table, with no kernel at all (TINYLLM_KERNELS=reference in a fresh process)."""
    suites = ["tests/test_ops_grad.py", "tests/test_functional_grad.py", "tests/test_torch_parity.py",
              "tests/test_opinfo.py", "tests/test_torch_conventions.py", "tests/test_optim.py",
              "tests/test_inplace_versions.py"]
    env = dict(os.environ, TINYLLM_KERNELS="reference", TINYLLM_TEST_DEVICES="cpu,strict")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:warnings", *suites],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.splitlines()[-1]


def test_adam_updates_in_threads_at_once_equal_one_after_the_other():
    """The update's work array is per thread: optimizers stepping at the same time in several
    threads (ranks simulated by threads, chapter 8) do not overwrite each other's scratch."""
    import threading
    n_threads, steps, size = 4, 20, 200_000
    rng = np.random.default_rng(0)
    starts = [rng.standard_normal(size) for _ in range(n_threads)]
    grads = [[rng.standard_normal(size) for _ in range(steps)] for _ in range(n_threads)]

    def run(index, barrier=None):
        p = tl.Tensor(starts[index].copy(), requires_grad=True)
        opt = optim.AdamW([p], lr=1e-2, weight_decay=0.1)
        for g in grads[index]:
            p.grad = g
            if barrier is not None:
                barrier.wait()                      # every thread updates at the same moment
            opt.step()
        results[index] = p.numpy()

    results = [None] * n_threads
    for i in range(n_threads):
        run(i)
    alone = list(results)
    barrier = threading.Barrier(n_threads, timeout=60)
    threads = [threading.Thread(target=run, args=(i, barrier)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for together, one in zip(results, alone):
        np.testing.assert_array_equal(together, one)
