"""Bad input gets a clear error naming what was expected and what came."""
import ast
import inspect

import numpy as np
import pytest

import tinyllm as tl
import tinyllm.functional as F


def test_tensors_on_different_devices_name_both():
    a = tl.Tensor([1.0], device="cpu")
    b = tl.Tensor([1.0], device="strict")
    with pytest.raises(RuntimeError, match="'cpu' and 'strict'"):
        a * b


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        tl.ones(2, 3) @ tl.ones(4, 5)


def test_broadcast_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)|\(4,\).*\(2, 3\)"):
        tl.broadcast_to(tl.ones(4), (2, 3))
    with pytest.raises(ValueError, match=r"\(2,3\)|\(2, ?3\)"):
        tl.ones(2, 3) + tl.ones(4)
    with tl.profiler.profile(), pytest.raises(ValueError, match=r"Add: shapes \(2, 3\) and \(4,\) do not broadcast"):
        tl.ones(2, 3) + tl.ones(4)  # the same message while hooks are installed


def test_requires_grad_on_integer_tensor():
    with pytest.raises(TypeError, match="floating-point.*int64"):
        tl.Tensor([1, 2], requires_grad=True)


def test_cross_entropy_target_out_of_range_and_wrong_shape():
    z = tl.zeros(4, 3)
    with pytest.raises(IndexError, match="target 3 is out of range for 3 classes"):
        F.cross_entropy(z, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"need targets of shape \(4,\), got \(2, 2\)"):
        F.cross_entropy(z, np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(z, np.zeros(4, dtype=np.bool_))


def test_cuda_without_cupy_says_what_is_missing():
    if tl.cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="device='cuda' is not available: (CuPy is not installed|.*GPU)"):
        tl.Tensor([1.0], device="cuda")


def test_unknown_device():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        tl.Tensor([1.0], device="tpu")


def test_layer_norm_weight_shape():
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.layer_norm(tl.ones(2, 3), tl.ones(4))


def test_embedding_id_out_of_range():
    with pytest.raises(IndexError, match="id 5 is out of range for 5 embeddings"):
        F.embedding(np.array([0, 5]), tl.ones(5, 2))


def test_attention_mask_wrong_shape_and_dtype():
    q = tl.ones(2, 3, 4)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(2, 2\)"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=np.zeros((2, 2), bool))
    with pytest.raises(TypeError, match="boolean .* or float"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=np.zeros((3, 3), np.int64))


def test_backward_on_tensor_without_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tl.ones(2).sum().backward()


def test_functional_leaves_every_argument_check_to_the_arguments_module():
    """functional.py holds formulas: what its functions refuse, and the message, is written in
    tinyllm/arguments.py, so not one ``raise`` or ``warn`` is left in functional.py."""
    tree = ast.parse(inspect.getsource(F))
    refusals = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Raise)
                or (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "warn")]
    assert refusals == [], f"raise or warn at lines {refusals} of tinyllm/functional.py"
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh', got 'x'"):
        F.gelu(tl.ones(2), approximate="x")
    with pytest.raises(ValueError, match=r"mse_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.mse_loss(tl.ones(2), tl.ones(2), reduction="avg")


OUT_OF_RANGE_AXES = {
    "concatenate": lambda x: tl.concatenate([x, x], axis=2),
    "concatenate negative": lambda x: tl.concatenate([x, x], axis=-3),
    "stack": lambda x: tl.stack([x, x], axis=3),
    "stack negative": lambda x: tl.stack([x, x], axis=-4),
    "split": lambda x: tl.split(x, 1, axis=2),
    "unsqueeze": lambda x: x.unsqueeze(3),
    "unsqueeze negative": lambda x: x.unsqueeze(-4),
    "transpose": lambda x: x.transpose(0, 3),
    "transpose both wrapped": lambda x: x.transpose(3, 2),
    "swapaxes": lambda x: x.swapaxes(0, 2),
    "sum": lambda x: x.sum(axis=2),
    "max": lambda x: x.max(axis=-3),
    "squeeze": lambda x: x.squeeze(5),
    "F.softmax": lambda x: F.softmax(x, axis=2),
    "F.logsumexp": lambda x: F.logsumexp(x, axis=-3),
    "F.cross_entropy": lambda x: F.cross_entropy(x, tl.Tensor(np.zeros(2, np.int64)), axis=2),
}


@pytest.mark.parametrize("name", sorted(OUT_OF_RANGE_AXES))
def test_an_axis_out_of_range_is_refused_never_wrapped_around(name):
    """An axis outside [−ndim, ndim) (for a new axis, [−ndim−1, ndim]) is an error that is both
    a ValueError, as NumPy's, and an IndexError, as torch's; it once wrapped around silently
    (concatenate along axis 5 of a matrix joined its columns)."""
    x = tl.ones(2, 3)
    with pytest.raises(IndexError, match=r"axis -?\d+ is out of"):
        OUT_OF_RANGE_AXES[name](x)
    with pytest.raises(ValueError, match=r"axis -?\d+ is out of"):
        OUT_OF_RANGE_AXES[name](x)


def test_the_axes_in_range_keep_working_at_both_ends():
    x = tl.ones(2, 3)
    assert tl.concatenate([x, x], axis=-2).shape == (4, 3)
    assert tl.concatenate([x, x], axis=1).shape == (2, 6)
    assert tl.stack([x, x], axis=-3).shape == (2, 2, 3)
    assert tl.stack([x, x], axis=2).shape == (2, 3, 2)
    assert x.unsqueeze(-3).shape == (1, 2, 3) and x.unsqueeze(2).shape == (2, 3, 1)
    assert x.transpose(-1, 0).shape == (3, 2)
    assert [p.shape for p in tl.split(x, 3, axis=-1)] == [(2, 1)] * 3


def test_concatenating_0d_tensors_or_splitting_into_no_sections_is_a_clear_error():
    with pytest.raises(ValueError, match=r"0-d tensor has no axis to join along \(tl.stack"):
        tl.concatenate([tl.tensor(1.0), tl.tensor(2.0)])
    with pytest.raises(ValueError, match=r"number of sections must be >= 1, got 0"):
        tl.split(tl.ones(2, 3), 0, axis=1)


def test_layer_norm_eps_and_linear_parameters_are_checked_with_a_message():
    """Found by a differential fuzz of the argument checks' move to tinyllm/arguments.py:
    eps=None reached the formula (a TypeError from inside), and so did a weight that is no
    tensor (an AttributeError)."""
    for eps in (None, 0.0, -1e-5, "1e-5"):
        with pytest.raises(ValueError, match=r"layer_norm: eps must be > 0 .*got"):
            F.layer_norm(tl.ones(2, 3), eps=eps)
    with pytest.raises(ValueError, match=r"eps must be > 0 .*got None"):
        F.layer_norm(tl.ones(2, 3), (3,), None, None, None)  # torch's signature
    with pytest.raises(TypeError, match=r"weight must be a tl.Tensor, got NoneType"):
        F.linear(tl.ones(2, 3), None)
    with pytest.raises(TypeError, match=r"bias must be a tl.Tensor, got list"):
        F.linear(tl.ones(2, 3), tl.ones(4, 3), [0.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"rms_norm: weight must have the normalized shape \(3, 4\)"):
        F.rms_norm(tl.ones(2, 3, 4), (3, 4), tl.ones(4))
