"""tinyllm.nn: Module bookkeeping (names, state dicts, modes, devices, dtypes, printing),
containers, and each layer against its torch.nn namesake."""
import copy
import math
import pickle

import numpy as np
import pytest

import tinyllm as tl
import tinyllm.nn as nn
from torch_twins import (assert_close, assert_grads_close, backward_both, load_torch_weights, requires_torch,
                                 tensors, torch)


class Net(nn.Module):
    """A small module with every kind of member, for the bookkeeping tests."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
        self.scale = nn.Parameter(np.ones(4, dtype=np.float32))
        self.register_buffer("steps", tl.Tensor(np.zeros(1, dtype=np.int64)))
        self.register_buffer("table", tl.Tensor(np.ones((2, 2), dtype=np.float32)), persistent=False)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight  # tied
        self.drop = nn.Dropout(0.5)

    def forward(self, ids):
        return self.head(self.drop(self.body(self.embed(ids)) * self.scale))


# torch's order: a module's own parameters first, then each child's, in assignment order
NAMES = ["scale", "embed.weight", "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"]


def test_parameters_in_registration_order_tied_once():
    net = Net()
    assert [name for name, _ in net.named_parameters()] == NAMES
    params = list(net.parameters())
    assert len(params) == 6 and params[1] is net.head.weight
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in params)
    assert net.num_parameters() == 40 + (32 + 8 + 32 + 4) + 4


def test_state_dict_lists_tied_names_and_persistent_buffers_as_host_copies():
    net = Net()
    state = net.state_dict()
    assert list(state) == ["scale", "steps"] + NAMES[1:] + ["head.weight"]  # as torch
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["head.weight"] is state["embed.weight"]  # one copy for a tied tensor, as torch
    state["scale"][:] = 7
    assert net.scale.numpy()[0] == 1  # copies, not views


def test_load_state_dict_round_trip_in_place_with_cast():
    a, b = Net(), Net()
    params_before = [id(p) for p in b.parameters()]
    data_before = b.body[0].weight.data
    state = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in a.state_dict().items()}
    result = b.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert [id(p) for p in b.parameters()] == params_before and b.body[0].weight.data is data_before
    assert b.body[0].weight.dtype == np.float32
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
    # tensors are accepted as values too
    b.load_state_dict({k: tl.Tensor(v) for k, v in a.state_dict().items()})


def test_load_state_dict_lists_every_problem_at_once_and_copies_nothing():
    net = Net()
    before = net.state_dict()
    state = dict(before)
    del state["body.0.bias"], state["scale"]
    state["body.9.weight"] = np.zeros(3)
    state["body.2.weight"] = np.zeros((4, 7))
    state["embed.weight"] = np.full((10, 4), 5.0)
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert "missing keys (2): scale, body.0.bias" in message
    assert "unexpected keys (1): body.9.weight" in message
    assert "body.2.weight: expected shape (4, 8), got (4, 7)" in message
    np.testing.assert_array_equal(net.embed.weight.numpy(), before["embed.weight"])


def test_load_state_dict_non_strict():
    net = Net()
    state = net.state_dict()
    del state["scale"]
    state["extra"] = np.zeros(1)
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["scale"] and result.unexpected_keys == ["extra"]
    state["body.0.bias"] = np.zeros(3)
    with pytest.raises(RuntimeError, match=r"body.0.bias: expected shape \(8,\), got \(3,\)"):
        net.load_state_dict(state, strict=False)  # shapes must match even when not strict


def test_train_eval_and_dropout():
    net = Net()
    assert net.training and net.drop.training
    assert net.eval() is net and not net.body[0].training and not net.drop.training
    x = tl.randn(50, 40)
    np.testing.assert_array_equal(net.drop(x).numpy(), x.numpy())
    net.train()
    y = net.drop(x).numpy()
    kept = y != 0
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_allclose(y[kept], 2 * x.numpy()[kept], rtol=1e-6)


def test_to_dtype_in_place_keeps_parameter_objects_and_grads():
    net = Net()
    params = list(net.parameters())
    net(np.array([[1, 2, 3]])).sum().backward()
    assert net.double() is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in params)
    assert net.steps.dtype == np.int64  # integer buffers keep their dtype
    assert net.to(np.float32).scale.dtype == np.float32
    assert net.to("cpu").device == "cpu" and net.dtype == np.float32
    with pytest.raises(ValueError, match="unknown device"):
        net.to("tpu")
    with pytest.raises(TypeError, match="floating-point"):
        net.to(dtype=np.int32)


def test_zero_grad_and_requires_grad():
    net = Net()
    net(np.array([[1, 2]])).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(not p.grad.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_repr_shows_tree_and_counts():
    text = repr(Net())
    assert text.splitlines()[0] == "Net(  # 120 parameters"
    assert "  (body): Sequential(  # 76 parameters" in text
    assert "    (0): Linear(in_features=4, out_features=8, bias=True)  # 40 parameters" in text
    assert "    (1): ReLU()" in text
    assert "  (drop): Dropout(p=0.5)" in text


def test_register_before_init_and_wrong_assignments():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) first"):
        Broken()
    net = Net()
    with pytest.raises(TypeError, match="cannot assign a ndarray to parameter 'scale'"):
        net.scale = np.ones(4)
    replacement = nn.Parameter(np.zeros(4, dtype=np.float32))
    net.scale = replacement  # a new parameter under a registered name keeps its place
    assert [n for n, _ in net.named_parameters()] == NAMES and net.scale is replacement
    net.scale = None
    assert "scale" not in dict(net.named_parameters())
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'nope'"):
        net.nope


def test_containers():
    seq = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 2))
    assert len(seq) == 3 and isinstance(seq[1], nn.GELU) and len(seq[1:]) == 2
    assert seq(tl.randn(5, 3)).shape == (5, 2)
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.LayerNorm(2))
    assert len(layers) == 4 and [n for n, _ in layers.named_parameters()][-2:] == ["3.weight", "3.bias"]
    assert len(list(layers.parameters())) == 8
    d = nn.ModuleDict({"a": nn.Linear(2, 3), "b": nn.ReLU()})
    assert list(d) == ["a", "b"] and "a" in d and d["a"].out_features == 3
    assert [n for n, _ in d.named_parameters()] == ["a.weight", "a.bias"]


def test_deepcopy_and_pickle_give_independent_equal_modules():
    net = Net()
    net.last_output = net(np.array([[1, 2]]))  # a plain tensor attribute is copied too
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        for (name, p), (_, q) in zip(net.named_parameters(), clone.named_parameters()):
            assert p is not q and name
            np.testing.assert_array_equal(p.numpy(), q.numpy())
        assert clone.head.weight is clone.embed.weight  # ties survive
        np.testing.assert_array_equal(clone.last_output.numpy(), net.last_output.numpy())
        clone.scale.data += 1
        assert net.scale.numpy()[0] == 1


def test_same_seed_same_weights():
    tl.manual_seed(123)
    a = Net().state_dict()
    tl.manual_seed(123)
    b = Net().state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_default_initialisation_statistics():
    tl.manual_seed(0)
    linear = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (linear.weight, linear.bias):
        values = p.numpy()
        assert values.dtype == np.float32 and np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.95 * bound
    std = nn.Embedding(500, 64).weight.numpy().std()
    assert abs(std - 1.0) < 0.02
    norm = nn.LayerNorm(5)
    assert (norm.weight.numpy() == 1).all() and (norm.bias.numpy() == 0).all()


# ----------------------------------------------------------------------------- layers vs torch
@requires_torch
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch_and_state_dicts_go_both_ways(bias):
    rng = np.random.default_rng(0)
    reference = torch.nn.Linear(5, 3, bias=bias).double()
    layer = nn.Linear(5, 3, bias=bias, dtype=np.float64)
    load_torch_weights(layer, reference)
    x, tx = tensors(rng.standard_normal((2, 4, 5)), torch)
    out, t_out = layer(x), reference(tx)
    assert_close(out, t_out, "Linear output")
    backward_both(out, t_out, rng)
    assert_close(x.grad, tx.grad, "Linear grad of input")
    assert_grads_close(layer, reference, "Linear")
    # and back: our weights into torch
    tl.manual_seed(1)
    ours = nn.Linear(5, 3, bias=bias, dtype=np.float64)
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    assert_close(ours(x), reference(tx), "Linear output, weights from tinyllm")


@requires_torch
def test_embedding_matches_torch_with_repeated_ids():
    rng = np.random.default_rng(1)
    reference = torch.nn.Embedding(7, 3).double()
    layer = nn.Embedding(7, 3, dtype=np.float64)
    load_torch_weights(layer, reference)
    ids = np.array([[0, 3, 3], [6, 0, 3]])
    out, t_out = layer(ids), reference(torch.from_numpy(ids))
    assert_close(out, t_out, "Embedding output")
    backward_both(out, t_out, rng)
    assert_grads_close(layer, reference, "Embedding")
    with pytest.raises(IndexError, match="id 7 is out of range for 7 embeddings"):
        layer(np.array([7]))


@requires_torch
@pytest.mark.parametrize("shape, affine, bias",
                         [(6, True, True), (6, True, False), (6, False, True), ((3, 4), True, True)])
def test_layer_norm_matches_torch(shape, affine, bias):
    rng = np.random.default_rng(2)
    reference = torch.nn.LayerNorm(shape, eps=1e-4, elementwise_affine=affine, bias=bias).double()
    layer = nn.LayerNorm(shape, eps=1e-4, elementwise_affine=affine, bias=bias, dtype=np.float64)
    with torch.no_grad():  # move away from the default 1 / 0 so the test sees the parameters
        for p in reference.parameters():
            p.add_(torch.from_numpy(rng.standard_normal(tuple(p.shape))))
    load_torch_weights(layer, reference)
    full = (2, 5) + ((shape,) if isinstance(shape, int) else shape)
    x, tx = tensors(rng.standard_normal(full) * 3 + 1, torch)
    out, t_out = layer(x), reference(tx)
    assert_close(out, t_out, "LayerNorm output")
    backward_both(out, t_out, rng)
    assert_close(x.grad, tx.grad, "LayerNorm grad of input")
    if affine:
        assert_grads_close(layer, reference, "LayerNorm")
    with pytest.raises(ValueError, match="does not end in the normalized shape"):
        layer(tl.randn(2, 7))


@requires_torch
@pytest.mark.parametrize("name, args", [("ReLU", ()), ("GELU", ()), ("GELU", ("tanh",)), ("Identity", ())])
def test_activations_match_torch(name, args):
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    rng = np.random.default_rng(3)
    x, tx = tensors(rng.standard_normal((4, 5)) * 2 + 0.01, torch)
    out, t_out = ours(x), theirs(tx)
    assert_close(out, t_out, f"{type(ours).__name__} output")
    backward_both(out, t_out, rng)
    assert_close(x.grad, tx.grad, f"{type(ours).__name__} grad")


@requires_torch
def test_sinusoidal_table_matches_the_pytorch_tutorial():
    max_len, d = 50, 16
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(10000.0) / d))
    pe = torch.zeros(max_len, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    assert_close(nn.sinusoidal_positional_encoding(max_len, d), pe, "sinusoidal table")
    odd = nn.sinusoidal_positional_encoding(4, 5)
    assert odd.shape == (4, 5) and np.allclose(odd[:, 4], np.sin(np.arange(4) * 10000 ** (-4 / 5)))


@pytest.mark.parametrize("cls", [nn.PositionalEncoding, nn.LearnedPositionalEncoding])
@pytest.mark.parametrize("batch_first", [False, True])
def test_positional_encodings(cls, batch_first):
    layer = cls(8, dropout=0.0, max_len=12, batch_first=batch_first)
    table = layer.pe.numpy() if cls is nn.PositionalEncoding else layer.weight.numpy()
    shape = (2, 5, 8) if batch_first else (5, 2, 8)
    x = tl.zeros(*shape)
    out = layer(x, start=3).numpy()
    expected = table[3:8][None] if batch_first else table[3:8][:, None]
    np.testing.assert_allclose(out, np.broadcast_to(expected, shape))
    with pytest.raises(ValueError, match=r"positions 10..14 do not fit max_len=12"):
        layer(x, start=10)
    if cls is nn.PositionalEncoding:
        assert list(layer.state_dict()) == []  # the table is recomputed, not saved
    else:
        assert list(layer.state_dict()) == ["weight"]
        layer(tl.randn(*shape), start=1).sum().backward()
        assert layer.weight.grad[1:6].all() and not layer.weight.grad[6:].any()


def test_parameter_basics():
    p = nn.Parameter(np.zeros(3))
    assert p.requires_grad and p.dtype == np.float64 and repr(p).startswith("Parameter containing:")
    with pytest.raises(TypeError, match="floating-point"):
        nn.Parameter(np.zeros(3, dtype=np.int64))


# ----------------------------------------------------------------------------- every device
def test_module_moves_to_every_device_in_place(device):
    net = Net().eval()
    ids = np.array([[1, 2, 3]])
    expected = net(ids).numpy()
    params = list(net.parameters())
    assert net.to(device) is net and net.device == device
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.device == device for p in params) and net.steps.device == device
    out = net(tl.Tensor(ids, device=device))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)
    out.sum().backward()
    assert all(tl.backend.array_device(p.grad).name == device for p in params)
    state = net.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    net.load_state_dict(state)
    clone = copy.deepcopy(net)
    np.testing.assert_allclose(clone(tl.Tensor(ids, device=device)).numpy(), expected, rtol=1e-5, atol=1e-6)
