"""The judge–worker channel (tinyllm.assignments.protocol): values cross intact, gradients
flow across, arguments are copies, and anything malformed is refused before it is used.

Both ends run here, in two threads over a socket pair."""
import json
import socket
import struct
import threading

import numpy as np
import pytest

import tinyllm as tl
import tinyllm.functional as F
from tinyllm.assignments import protocol


@pytest.fixture
def remote():
    """A callable ``remote(fn, inplace=())`` that returns fn's stand-in on the other end
    (``inplace``: the arguments, positions or names, whose changes come back)."""
    ours, theirs = socket.socketpair()
    server = protocol.Peer(theirs, "w")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = protocol.Peer(ours, "j", deadline=None)

    def make(fn, inplace=()):
        key = server.export(fn)
        if inplace:
            client.inplace[key] = set(inplace)
        kind = "function_class" if isinstance(fn, type) else "function"
        return client.stand_in({"remote": key, "kind": kind, "name": getattr(fn, "__name__", "f")})

    yield make
    ours.close()
    thread.join(timeout=5)
    theirs.close()


def test_values_cross_intact(remote):
    value = [None, True, 3, 2.5, float("inf"), "é", b"\x00\x01", (1, [2]), {(1, 2): 3, "a": {4}},
             frozenset({5}), np.float32(1.5), np.int64(7), np.arange(6, dtype=np.int32).reshape(2, 3),
             np.array(True), np.zeros((0, 3))]
    back = remote(lambda x: x)(value)
    assert len(back) == len(value)
    for got, sent in zip(back, value):
        assert type(got) is type(sent), (got, sent)
        if isinstance(sent, np.ndarray):
            assert got.dtype == sent.dtype and got.shape == sent.shape and np.array_equal(got, sent)
        elif not (isinstance(sent, float) and np.isnan(sent)):
            assert got == sent


def test_a_tensor_keeps_its_dtype_and_gradients_flow_through_the_other_side(remote):
    mul = remote(lambda a, b: a * b + F.softmax(a, axis=-1))
    a = tl.Tensor(np.random.default_rng(0).normal(size=(2, 3)), requires_grad=True)
    b = tl.Tensor(np.random.default_rng(1).normal(size=(3,)), requires_grad=True)
    assert tl.gradcheck(lambda a, b: mul(a, b), a, b)
    out = remote(lambda x: x * 2)(tl.Tensor(np.ones(2, dtype=np.float32)))
    assert out.dtype == np.float32 and np.array_equal(out.numpy(), [2, 2])


def test_a_function_class_runs_on_the_other_side_and_a_bare_array_backward_is_named():
    class Square(tl.Function):
        def forward(self, x):
            self.save(x)
            return x * x

        def backward(self, g):
            (x,) = self.saved
            return 2 * x * g  # a bare array, not (2 * x * g,)

    ours, theirs = socket.socketpair()
    server = protocol.Peer(theirs, "w")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = protocol.Peer(ours, "j")
    stand_in = client.stand_in({"remote": server.export(Square), "kind": "function_class", "name": "Square"})
    x = tl.Tensor(np.array([1.0, -2.0]), requires_grad=True)
    y = stand_in.apply(x)
    assert np.array_equal(y.numpy(), [1.0, 4.0])
    with pytest.raises(TypeError, match=r"Square.backward returned an array, not a tuple.*\(grad,\)"):
        y.sum().backward()
    ours.close()


def test_arguments_are_copies_except_generators_and_inplace_functions(remote):
    def rewrite(ids, x, rng):
        ids.append(99)
        x.data[...] = 0.0
        return int(rng.integers(1000))

    ids, x, rng = [1, 2], tl.Tensor(np.ones(3), requires_grad=True), np.random.default_rng(0)
    first = remote(rewrite)(ids, x, rng)
    second = remote(rewrite)(ids, x, rng)
    assert ids == [1, 2] and np.array_equal(x.numpy(), np.ones(3))  # the test's objects are untouched
    assert first != second  # ...but the generator moved on
    remote(rewrite, inplace=(0, 1))(ids, x, rng)
    assert ids == [1, 2, 99] and np.array_equal(x.numpy(), np.zeros(3))


def test_an_inplace_call_changes_only_what_is_inside_the_arguments_named_and_no_other():
    """A KV-cache step may fill its cache, not rewrite the parameters a reference uses
    afterwards: neither directly, nor through the cache (the same Tensors passed in both)."""
    def step(p, cache):
        for t in p.values():
            t.data[...] = 0.0
        cache["p"] = p
        cache["k"] = cache.get("k", 0) + 1
        return None

    ours, theirs = socket.socketpair()
    server = protocol.Peer(theirs, "w")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = protocol.Peer(ours, "j")
    key = server.export(step)
    client.inplace[key] = {1, "cache"}
    remote = client.stand_in({"remote": key, "kind": "function", "name": "step"})
    p, cache = {"w": tl.Tensor(np.ones(2))}, {}
    remote(p, cache)
    assert np.array_equal(p["w"].numpy(), np.ones(2)) and cache["k"] == 1
    assert cache["p"] is p  # the test's own dict, untouched
    remote(p, cache=cache)  # p now inside the cache too: still not written back
    assert np.array_equal(p["w"].numpy(), np.ones(2)) and cache["k"] == 2
    ours.close()


def test_a_callback_runs_on_the_side_that_owns_it_and_gradients_come_back(remote):
    """The shape of an optimizer step: the caller's loss function is called back, its
    gradient reaches the parameters on the other side, which are then updated in place."""
    def step(loss_fn, params):
        for p in params:
            p.grad = None
        loss = loss_fn()
        loss.backward()
        for p in params:
            p.data -= 0.5 * p.grad
        return float(loss.item())

    p = tl.Tensor(np.array([1.0, -3.0]), requires_grad=True)
    loss = remote(step, inplace=(1,))(lambda: (p * p).sum(), [p])
    assert loss == 10.0
    assert np.allclose(p.numpy(), [0.0, 0.0]) and np.allclose(p.grad, [2.0, -6.0])


def test_an_exception_on_the_other_side_keeps_its_type_and_message(remote):
    def fail(x):
        raise ValueError(f"no {x}")

    with pytest.raises(ValueError, match="no 3") as info:
        remote(fail)(3)
    assert isinstance(info.value, protocol.RemoteError) and info.value.remote_type == "ValueError"
    with pytest.raises(TypeError, match="cannot send a object"):
        remote(lambda: object())()


@pytest.mark.parametrize("raised, caught", [(MemoryError, MemoryError), (KeyError("k"), KeyError),
                                            (ExceptionGroup("two", [ValueError(1), KeyError(2)]), protocol.RemoteError),
                                            (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), protocol.RemoteError)])
def test_every_built_in_exception_comes_back_as_itself_or_a_remote_error_of_its_name(remote, raised, caught):
    """A MemoryError (the memory limit) must reach the student's hint as a MemoryError, not
    as the TypeError of rebuilding it wrongly; ExceptionGroup's constructor wants more than
    a message: it comes back as a RemoteError named like it."""
    def fail():
        raise raised

    with pytest.raises(caught) as info:
        remote(fail)()
    name = type(raised).__name__ if isinstance(raised, BaseException) else raised.__name__
    assert isinstance(info.value, protocol.RemoteError) and info.value.remote_type == name
    assert type(info.value).__name__ == name
    assert str(info.value) == (str(raised) if isinstance(raised, BaseException) else "")


def _frame(header, blobs=()):
    body = json.dumps(header).encode()
    return struct.pack("!4sII", b"TLG1", len(body), len(blobs)) + body + b"".join(
        struct.pack("!Q", len(b)) + b for b in blobs)


@pytest.mark.parametrize("frame, message", [
    (b"XXXX" + bytes(8), "magic"),
    (struct.pack("!4sII", b"TLG1", protocol.MAX_MESSAGE + 1, 0), "larger than"),
    (struct.pack("!4sII", b"TLG1", 3, 0) + b"{x}", "not JSON"),
    (_frame({"op": "reply", "id": "j1", "value": {"array": {"dtype": "|O", "shape": [1], "blob": 0}}}, [bytes(8)]),
     "not of numbers"),
    (_frame({"op": "reply", "id": "j1", "value": {"array": {"dtype": "<f8", "shape": [3], "blob": 0}}}, [bytes(8)]),
     "does not match"),
    (_frame({"op": "reply", "id": "j1", "value": {"pickle": "gASVAAAAAAAAAA=="}}), "unknown value encoding"),
    (_frame({"op": "reply", "id": "j1", "value": {"ref": "j9"}}), "not shared"),
    (_frame({"op": "reply", "id": "j1", "value": {"rng": {"bit_generator": "os.system"}}}), "unknown kind"),
])
def test_malformed_messages_are_refused(frame, message):
    ours, theirs = socket.socketpair()
    peer = protocol.Peer(ours, "j")
    theirs.sendall(frame)
    with pytest.raises(protocol.ProtocolError, match=message):
        peer.request("call", 1, [])
    ours.close()
    theirs.close()
