"""Optimizers and gradient clipping, step by step against torch.optim (float64, rtol 1e-7).

Every test feeds both sides the same gradients (random, fixed per step), so any difference
is the update rule's. A "strict" device (NumPy arrays behind a wrapper that refuses to meet
host arrays, as CuPy does) checks that the code takes its array module from the tensors.
"""
import numpy as np
import pytest

import tinyllm as tl
from tinyllm import backend
from tinyllm.optim import SGD, Adam, AdamW, clip_grad_norm_, param_groups

torch = pytest.importorskip("torch")

SHAPES = [(5, 4), (4,), (3, 2, 2)]
STEPS = 20


def make_problem(seed=0, dtype=np.float64, steps=STEPS):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]
    return init, grads


def ours_params(init, device="cpu"):
    return [tl.Tensor(backend.to_device(a.copy(), device), requires_grad=True) for a in init]


def torch_params(init):
    return [torch.tensor(a.copy(), requires_grad=True) for a in init]


def set_grads(params, grads, device="cpu"):
    for p, g in zip(params, grads):
        p.grad = backend.to_device(g.copy(), device)


def set_torch_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g.copy())


def assert_close_to_torch(ours, theirs, step, rtol=1e-7):
    for i, (p, q) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=rtol, atol=0,
                                   err_msg=f"parameter {i} after step {step}")


CONFIGS = {
    "sgd": (lambda ps: SGD(ps, lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    "sgd_momentum": (lambda ps: SGD(ps, lr=0.05, momentum=0.9),
                     lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
    "sgd_nesterov": (lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
                     lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True)),
    "sgd_weight_decay": (lambda ps: SGD(ps, lr=0.05, weight_decay=0.1),
                         lambda ps: torch.optim.SGD(ps, lr=0.05, weight_decay=0.1)),
    "sgd_all": (lambda ps: SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
                lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    "sgd_dampening": (lambda ps: SGD(ps, lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
                      lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    "adam": (lambda ps: Adam(ps, lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
    "adam_weight_decay": (lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
                          lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    "adamw": (lambda ps: AdamW(ps, lr=0.01), lambda ps: torch.optim.AdamW(ps, lr=0.01)),
    "adamw_strong_decay": (lambda ps: AdamW(ps, lr=0.02, betas=(0.9, 0.95), weight_decay=0.5),
                           lambda ps: torch.optim.AdamW(ps, lr=0.02, betas=(0.9, 0.95), weight_decay=0.5)),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_trajectory_matches_torch(name):
    make_ours, make_theirs = CONFIGS[name]
    init, grads = make_problem()
    ours, theirs = ours_params(init), torch_params(init)
    opt, topt = make_ours(ours), make_theirs(theirs)
    for step, gs in enumerate(grads):
        before_grads = [g.copy() for g in gs]
        set_grads(ours, gs)
        grad_arrays = [p.grad for p in ours]
        data_arrays = [p.data for p in ours]
        set_torch_grads(theirs, gs)
        opt.step()
        topt.step()
        assert_close_to_torch(ours, theirs, step)
        for p, g, before, data in zip(ours, grad_arrays, before_grads, data_arrays):
            assert p.grad is g and np.array_equal(g, before), "step() must not write p.grad"
            assert p.data is data, "step() must update p.data in place (tied weights share it)"
    # the remembered state is torch's too
    for i, (p, q) in enumerate(zip(ours, theirs)):
        for key, value in topt.state[q].items():
            if key in opt.state.get(p, {}):
                np.testing.assert_allclose(np.asarray(opt.state[p][key]), value.numpy(), rtol=1e-7,
                                           err_msg=f"state {key!r} of parameter {i}")


def test_param_groups_with_their_own_lr_and_decay():
    init, grads = make_problem(seed=1)
    ours, theirs = ours_params(init), torch_params(init)
    opt = AdamW([{"params": ours[:1], "weight_decay": 0.3},
                 {"params": ours[1:], "lr": 0.05, "weight_decay": 0.0}], lr=0.01)
    topt = torch.optim.AdamW([{"params": theirs[:1], "weight_decay": 0.3},
                              {"params": theirs[1:], "lr": 0.05, "weight_decay": 0.0}], lr=0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.05]
    for step, gs in enumerate(grads):
        if step == 10:  # a schedule changes lr between steps
            for group, tgroup in zip(opt.param_groups, topt.param_groups):
                group["lr"] *= 0.5
                tgroup["lr"] *= 0.5
        set_grads(ours, gs)
        set_torch_grads(theirs, gs)
        opt.step()
        topt.step()
        assert_close_to_torch(ours, theirs, step)


def test_params_without_grad_are_skipped():
    init, grads = make_problem(seed=2)
    ours, theirs = ours_params(init), torch_params(init)
    opt, topt = Adam(ours, lr=0.01), torch.optim.Adam(theirs, lr=0.01)
    for step, gs in enumerate(grads):
        skip = step % 3  # a different parameter has no gradient each step
        set_grads(ours, gs)
        set_torch_grads(theirs, gs)
        ours[skip].grad = None
        theirs[skip].grad = None
        opt.step()
        topt.step()
        assert_close_to_torch(ours, theirs, step)
    assert opt.state[ours[0]]["step"] == int(topt.state[theirs[0]]["step"]) == 13


def test_zero_grad_sets_none():
    ps = ours_params(make_problem()[0])
    set_grads(ps, make_problem()[1][0])
    opt = SGD(ps, lr=0.1)
    opt.zero_grad()
    assert all(p.grad is None for p in ps)
    opt.step()  # nothing to do, no error


@pytest.mark.parametrize("name", ["sgd_all", "sgd_momentum", "adam_weight_decay", "adamw"])
def test_state_dict_round_trip_mid_run(name):
    make_ours, _ = CONFIGS[name]
    init, grads = make_problem(seed=3)
    a = ours_params(init)
    opt_a = make_ours(a)
    for gs in grads[:10]:
        set_grads(a, gs)
        opt_a.step()
    opt_a.param_groups[0]["lr"] = 0.0123  # hyperparameters travel with the state
    snapshot = opt_a.state_dict()
    _assert_plain(snapshot)

    b = ours_params([p.numpy() for p in a])
    opt_b = make_ours(b)
    opt_b.load_state_dict(snapshot)
    assert opt_b.param_groups[0]["lr"] == 0.0123
    for gs in grads[10:]:
        set_grads(a, gs)
        set_grads(b, gs)
        opt_a.step()
        opt_b.step()
        for p, q in zip(a, b):
            np.testing.assert_array_equal(p.data, q.data)
    # the snapshot did not move with the optimizer, and b does not alias it
    again = opt_a.state_dict()
    for index, entry in snapshot["state"].items():
        for key, value in entry.items():
            if isinstance(value, np.ndarray):
                assert not np.array_equal(value, again["state"][index][key])


def _assert_plain(obj):
    """Only NumPy arrays, numbers, strings, booleans, None, and lists/tuples/dicts of them."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            assert isinstance(key, (int, str))
            _assert_plain(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _assert_plain(value)
    else:
        assert obj is None or type(obj) in (bool, int, float, str, np.ndarray), type(obj)


def test_load_state_dict_refuses_a_mismatch_and_changes_nothing():
    init, grads = make_problem()
    a = ours_params(init)
    opt = Adam(a, lr=0.01)
    set_grads(a, grads[0])
    opt.step()
    snapshot = opt.state_dict()
    other = Adam(ours_params(init[:2]), lr=0.02)
    with pytest.raises(ValueError, match="parameters"):
        other.load_state_dict(snapshot)
    assert other.param_groups[0]["lr"] == 0.02 and other.state == {}
    bad = opt.state_dict()
    bad["state"][0]["exp_avg"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(bad)


def test_float32_stays_float32():
    init, grads = make_problem(dtype=np.float32, steps=3)
    for make in (lambda ps: SGD(ps, lr=np.float64(0.1), momentum=0.9, nesterov=True, weight_decay=np.float64(0.01)),
                 lambda ps: Adam(ps, lr=np.float64(1e-3), weight_decay=0.1),
                 lambda ps: AdamW(ps, lr=np.float64(1e-3), betas=(np.float64(0.9), 0.99))):
        ps = ours_params(init)
        opt = make(ps)
        for gs in grads:
            set_grads(ps, gs)
            opt.step()
        for p in ps:
            assert p.dtype == np.float32
            for value in opt.state[p].values():
                assert not hasattr(value, "dtype") or value.dtype == np.float32
        # a float64 snapshot loads as float32
        snapshot = opt.state_dict()
        for entry in snapshot["state"].values():
            for key, value in entry.items():
                if isinstance(value, np.ndarray):
                    entry[key] = value.astype(np.float64)
        opt.load_state_dict(snapshot)
        assert all(v.dtype == np.float32 for s in opt.state.values() for v in s.values() if hasattr(v, "dtype"))


def test_constructor_errors():
    p = tl.Tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        Adam([])
    with pytest.raises(ValueError, match="twice"):
        Adam([p, p])
    with pytest.raises(ValueError, match="lr"):
        Adam([p], lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="unknown"):
        AdamW([{"params": [p], "weight_decy": 0.1}])
    with pytest.raises(TypeError, match="floating"):
        SGD([tl.Tensor(np.zeros(3, dtype=np.int64))], lr=0.1)


# ----------------------------------------------------------------------------- param_groups
def test_param_groups_rule():
    def t(*shape):
        return tl.Tensor(np.zeros(shape), requires_grad=True)
    wte = t(65, 8)
    named = [
        ("transformer.wte.weight", wte),
        ("transformer.wpe.weight", t(16, 8)),
        ("transformer.h.0.ln_1.weight", t(8)),
        ("transformer.h.0.ln_1.bias", t(8)),
        ("transformer.h.0.attn.c_attn.weight", t(8, 24)),
        ("transformer.h.0.attn.c_attn.bias", t(24)),
        ("encoder.embedding.weight", t(10, 8)),
        ("tok_emb.weight", t(10, 8)),
        ("decoder.layers.0.linear1.weight", t(32, 8)),
        ("norm.weight", t(8)),
        ("lm_head.weight", wte),  # tied: listed once, under its first name
    ]
    decay, no_decay = param_groups(named, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = {id(p): name for name, p in named[:-1]}
    assert sorted(ids[id(p)] for p in decay["params"]) == [
        "decoder.layers.0.linear1.weight", "transformer.h.0.attn.c_attn.weight"]
    assert len(no_decay["params"]) == 8
    assert sum(len(g["params"]) for g in (decay, no_decay)) == len(named) - 1
    decay, _ = param_groups(dict(named), 0.1, decay_embeddings=True)
    assert len(decay["params"]) == 6
    AdamW(param_groups(named, 0.1), lr=1e-3)  # the groups are accepted as they are


# ----------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_clip_grad_norm_matches_torch(max_norm):
    init, grads = make_problem(seed=4, steps=1)
    ours, theirs = ours_params(init), torch_params(init)
    set_grads(ours, grads[0])
    set_torch_grads(theirs, grads[0])
    ours[1].grad = None
    theirs[1].grad = None
    old = [p.grad for p in ours]
    old_values = [None if g is None else g.copy() for g in old]
    norm = clip_grad_norm_(ours, max_norm)
    tnorm = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert type(norm) is float
    assert norm == pytest.approx(float(tnorm), rel=1e-12)
    for p, q, g, before in zip(ours, theirs, old, old_values):
        if q.grad is None:
            assert p.grad is None
            continue
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12)
        np.testing.assert_array_equal(g, before)  # replaced, never written in place
        assert (p.grad is g) == (norm <= max_norm)


def test_clip_grad_norm_float32_and_single_tensor():
    g = np.full((3, 4), 2.0, dtype=np.float32)  # norm = 2·√12
    p = tl.Tensor(np.zeros((3, 4), dtype=np.float32), requires_grad=True)
    p.grad = g
    norm = clip_grad_norm_(p, 1.0)
    assert norm == pytest.approx(2 * 12 ** 0.5, rel=1e-6)
    assert p.grad.dtype == np.float32
    assert np.linalg.norm(p.grad) == pytest.approx(1.0, rel=1e-5)
    assert clip_grad_norm_([tl.Tensor(np.zeros(2), requires_grad=True)], 1.0) == 0.0


# ----------------------------------------------------------------------------- the CuPy-like device
from tinyllm.testing.strict import StrictArray  # noqa: E402  (registered by conftest.py)


@pytest.fixture
def strict_device():
    return "strict"


@pytest.mark.parametrize("name", ["sgd_all", "adam_weight_decay", "adamw"])
def test_on_a_strict_device_same_numbers_and_state_dict(strict_device, name):
    make_ours, _ = CONFIGS[name]
    init, grads = make_problem(seed=5, steps=6)
    host, dev = ours_params(init), ours_params(init, strict_device)
    opt_host, opt_dev = make_ours(host), make_ours(dev)
    for gs in grads[:3]:
        set_grads(host, gs)
        set_grads(dev, gs, strict_device)
        clip_grad_norm_(host, 2.0)
        clip_grad_norm_(dev, 2.0)
        opt_host.step()
        opt_dev.step()
    assert all(isinstance(p.data, StrictArray) for p in dev)
    snapshot = opt_dev.state_dict()
    _assert_plain(snapshot)
    opt_dev = make_ours(dev)
    opt_dev.load_state_dict(snapshot)
    assert all(isinstance(v, StrictArray) for s in opt_dev.state.values() for v in s.values()
               if hasattr(v, "dtype"))
    for gs in grads[3:]:
        set_grads(host, gs)
        set_grads(dev, gs, strict_device)
        opt_host.step()
        opt_dev.step()
    for p, q in zip(host, dev):
        np.testing.assert_array_equal(p.data, q.numpy())


def test_state_dicts_copy_unless_told_not_to():
    """state_dict() snapshots (host copies); state_dict(copy=False) hands the host arrays
    themselves, as torch's state_dict shares memory, for writing a checkpoint without copies."""
    layer = tl.nn.Linear(3, 2)
    opt = AdamW(layer.parameters(), lr=0.1)
    layer(tl.ones(4, 3)).sum().backward()
    opt.step()
    shared, copied = layer.state_dict(copy=False), layer.state_dict()
    assert shared["weight"] is layer.weight.data and copied["weight"] is not layer.weight.data
    np.testing.assert_array_equal(copied["weight"], layer.weight.data)
    moments = opt.state[layer.weight]
    assert opt.state_dict(copy=False)["state"][0]["exp_avg"] is moments["exp_avg"]
    snapshot = opt.state_dict()["state"][0]["exp_avg"]
    assert snapshot is not moments["exp_avg"] and np.array_equal(snapshot, moments["exp_avg"])
