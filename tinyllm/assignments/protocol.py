"""The channel between the judge and a worker: messages, the values they carry, and calls
across it with gradients flowing through.

The judge (:mod:`~tinyllm.assignments.judge`) runs the teacher's tests; the worker
(:mod:`~tinyllm.assignments.worker`) runs the student's code. In the judge, each name the
student had to write (``Softmax``, ``merge``) is a stand-in that sends its arguments to the
worker and receives what the student's code returned. Only *values* cross:

* ``None``, booleans, numbers, strings, bytes; lists, tuples, dicts, sets of them;
* NumPy arrays and scalars (dtype and shape in the header, the raw bytes in a blob; numbers
  and booleans only, checked on arrival), Tensors (data, ``requires_grad``, ``.grad``),
  NumPy random generators (their state);
* functions and ``tl.Function`` classes, by reference: calling one calls back to the side
  that owns it (a test's ``loss_fn``, a reference helper a hidden test swapped in).

Never pickle: what a worker sends can make the judge run no code but the functions the
judge itself handed over. A message is a JSON header and binary blobs, after a 12-byte
prefix (magic, JSON length, number of blobs).

**Gradients.** A Tensor that requires grad and comes back from a call is joined to the
caller's graph by a :class:`Bridge` Function, whose backward asks the other side for the
gradients with respect to the Tensors the call shared (the caller's leaves). So
``tl.gradcheck`` in the judge differentiates through the student's code in the worker,
and a student's ``loss.backward()`` through the teacher's ``loss_fn``.

**Arguments are copies.** What the callee changes in them stays there, except the state of
random generators (so that 4,000 calls to a sampler draw 4,000 different numbers) and, for
the functions and arguments a task names ``inplace`` (``train_step:params,state``), what
is inside those arguments and inside no other (an optimizer step updates parameters, a KV
cache fills up). Otherwise a student's function could rewrite its input so that the
reference a test computes from it afterwards agrees.
"""
from __future__ import annotations

import builtins
import json
import signal
import socket
import struct
import time
import weakref

import numpy as np

import tinyllm as tl

__all__ = ["Peer", "Bridge", "RemoteFunction", "RemoteError", "ProtocolError", "ChannelClosed", "Deadline",
           "LibrarySolutionRefused", "send", "receive"]

MAGIC = b"TLG1"
MAX_MESSAGE = 256 << 20  # bytes; a bigger message is a protocol error
MAX_DEPTH = 100
_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_SEED = np.random.SeedSequence(0)  # quicker than fresh entropy, for a state that is replaced at once


class ProtocolError(BaseException):
    """The other side sent something that is not a well-formed message. (A BaseException,
    as the channel's other failures: a test's ``except Exception`` must not hide them.)"""


class ChannelClosed(ProtocolError):
    """The other side closed the channel (its process ended)."""


class Deadline(BaseException):
    """No message came before the deadline."""


class LibrarySolutionRefused(ImportError):
    """Student code used a library object that solves the task it is graded on."""


class RemoteError(Exception):
    """An exception raised on the other side; ``remote_type`` is its class name and
    ``where`` the place in the student's code (``a1.py line 12, in forward``) or ""."""

    remote_type, where = "Exception", ""

    def __str__(self):  # the message as the other side wrote it (KeyError would quote it again)
        return str(self.args[0]) if self.args else ""


def _remote_error(info) -> RemoteError:
    """An exception of a class that is both a :class:`RemoteError` and, when the remote type
    is a built-in exception, that type (so a test's ``except ValueError`` still works)."""
    if not isinstance(info, dict):
        raise ProtocolError("an error reply without its description")
    name = str(info.get("type", "Exception"))[:100]
    message = str(info.get("message", ""))[:2000]
    base = getattr(builtins, name, None)
    error = None
    if isinstance(base, type) and issubclass(base, Exception):
        try:
            error = type(name, (RemoteError, base), {"remote_type": name})(message)
        except (TypeError, ValueError):  # a layout that does not mix, or a constructor that wants more
            pass                         # than a message (ExceptionGroup, UnicodeDecodeError)
    if error is None:
        error = type(name, (RemoteError,), {"remote_type": name})(message)
    error.where = str(info.get("where", ""))[:300]
    return error


# ----------------------------------------------------------------------------- framing
def send(sock, header: dict, blobs=()) -> None:
    """Write one message (signals blocked meanwhile: an alarm must not cut a frame)."""
    data = json.dumps(header).encode()
    parts = [struct.pack("!4sII", MAGIC, len(data), len(blobs)), data]
    for blob in blobs:
        parts += [struct.pack("!Q", len(blob)), blob]
    mask = signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    if mask:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    try:
        sock.sendall(b"".join(parts))
    finally:
        if mask:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _read(sock, n, deadline, budget):
    if n > budget[0]:
        raise ProtocolError(f"a message larger than {MAX_MESSAGE >> 20} MiB")
    budget[0] -= n
    buffer, got = bytearray(n), 0
    view = memoryview(buffer)
    if deadline is None:
        sock.settimeout(None)
    while got < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Deadline()
            sock.settimeout(remaining)
        try:
            count = sock.recv_into(view[got:], n - got)
        except socket.timeout:
            raise Deadline() from None
        except OSError as exc:
            raise ChannelClosed(str(exc)) from None
        if count == 0:
            raise ChannelClosed("the channel was closed")
        got += count
    return bytes(buffer)


def receive(sock, deadline=None):
    """Read one message: ``(header, blobs)``. ``deadline``: a ``time.monotonic()`` value."""
    budget = [MAX_MESSAGE]
    magic, length, count = struct.unpack("!4sII", _read(sock, 12, deadline, budget))
    if magic != MAGIC:
        raise ProtocolError("a message without the protocol's magic bytes")
    try:
        header = json.loads(_read(sock, length, deadline, budget))
    except ValueError:
        raise ProtocolError("a message header that is not JSON") from None
    if not isinstance(header, dict):
        raise ProtocolError("a message header that is not a JSON object")
    blobs = []
    for _ in range(count):
        (size,) = struct.unpack("!Q", _read(sock, 8, deadline, budget))
        blobs.append(_read(sock, size, deadline, budget))
    return header, blobs


# ----------------------------------------------------------------------------- values
def _array(array):
    """An array as (JSON description, raw bytes): its dtype and shape, then its data."""
    array = np.asarray(array)
    if array.dtype.kind not in "biufc":
        raise TypeError(f"cannot send an array of {array.dtype} (only numbers and booleans)")
    return {"dtype": array.dtype.str, "shape": list(array.shape)}, np.ascontiguousarray(array).tobytes()


def _from_array(description, blob) -> np.ndarray:
    """The array back, checked: a plain numeric dtype, a shape that matches the bytes."""
    try:
        dtype = np.dtype(description["dtype"])
        shape = tuple(int(n) for n in description["shape"])
    except (TypeError, KeyError, ValueError):
        raise ProtocolError("an array with an invalid dtype or shape") from None
    if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
        raise ProtocolError("an array that is not of numbers or booleans")
    if any(n < 0 for n in shape) or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != len(blob):
        raise ProtocolError("an array whose shape does not match its data")
    return np.frombuffer(blob, dtype=dtype).reshape(shape).copy()


def _is_leaf_wanting_grad(value) -> bool:
    return isinstance(value, tl.Tensor) and value.requires_grad and value.is_leaf


class _Session:
    """The objects one top-level call shares between the two sides, by id ("j3", "w1"): an
    object sent twice arrives as the same object, and a returned object as the original."""

    def __init__(self):
        self.objects, self.ids = {}, {}

    def add(self, sid, value):
        self.objects[sid] = value
        self.ids[id(value)] = sid


class _Encoder:
    def __init__(self, peer, result=False):
        self.peer, self.result, self.blobs = peer, result, []

    def blob(self, data: bytes) -> int:
        self.blobs.append(data)
        return len(self.blobs) - 1

    def array(self, value) -> dict:
        description, data = _array(value)
        description["blob"] = self.blob(data)
        return description

    def value(self, value, depth=0):
        if depth > MAX_DEPTH:
            raise TypeError("a value nested too deeply to send")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)) and type(value) in (int, float):
            return value
        if isinstance(value, np.generic):
            return {"scalar": self.array(value)}
        session = self.peer.session
        sid = session.ids.get(id(value)) if session is not None else None
        if sid is not None and session.objects.get(sid) is value:
            return {"ref": sid}
        if isinstance(value, tuple):
            return {"tuple": [self.value(v, depth + 1) for v in value]}
        if isinstance(value, (set, frozenset)):
            return {"set": [self.value(v, depth + 1) for v in value], "frozen": isinstance(value, frozenset)}
        if isinstance(value, bytes):
            return {"bytes": self.blob(value)}
        if isinstance(value, (list, dict, np.ndarray, tl.Tensor, np.random.Generator)):
            return self._shared(value, depth)
        if isinstance(value, type) and issubclass(value, tl.Function):
            return self._reference(value, "function_class")
        if callable(value):
            return self._reference(value, "function")
        raise TypeError(f"cannot send a {type(value).__name__} object to the other process (send arrays, "
                        f"Tensors, numbers, strings, lists, tuples or dicts)")

    def _shared(self, value, depth):
        sid = self.peer.new_sid(value)
        if isinstance(value, list):
            return {"list": [self.value(v, depth + 1) for v in value], "sid": sid}
        if isinstance(value, dict):
            return {"dict": [[self.value(k, depth + 1), self.value(v, depth + 1)] for k, v in value.items()],
                    "sid": sid}
        if isinstance(value, np.ndarray):
            return {"array": self.array(value), "sid": sid}
        if isinstance(value, np.random.Generator):
            return {"rng": value.bit_generator.state, "sid": sid}
        return self.tensor(value, sid)

    def tensor(self, value, sid):
        out = {"tensor": self.array(tl.backend.to_host(value.data)), "rg": bool(value.requires_grad),
               "grad": None if value.grad is None else self.array(tl.backend.to_host(value.grad)), "sid": sid}
        if self.result and value.requires_grad and tl.is_grad_enabled():
            session = self.peer.session
            wrt = [(s, t) for s, t in list(session.objects.items())
                   if t is not value and _is_leaf_wanting_grad(t)]
            out["bridge"] = self.peer.export((value, [t for _, t in wrt]))
            out["wrt"] = [s for s, _ in wrt]
        return out

    def _reference(self, value, kind):
        own = vars(value).get("_remote") if hasattr(value, "__dict__") else None
        if own is not None and own[0] is self.peer:  # a stand-in for the other side's object
            return {"yours": own[1]}
        return {"remote": self.peer.export(value), "kind": kind, "name": str(getattr(value, "__name__", kind))}

    def sync(self, side, kinds):
        """The current state of the objects the other ``side`` shared in this session: its
        random generators (``kinds`` "rng"), or everything ("all")."""
        out = []
        for sid, value in list(self.peer.session.objects.items()):
            if not sid.startswith(side) or (kinds != "all" and not isinstance(value, np.random.Generator)):
                continue
            if isinstance(value, list):
                out.append([sid, {"list": [self.value(v, 1) for v in value]}])
            elif isinstance(value, dict):
                out.append([sid, {"dict": [[self.value(k, 1), self.value(v, 1)] for k, v in value.items()]}])
            elif isinstance(value, np.ndarray):
                out.append([sid, {"array": self.array(value)}])
            elif isinstance(value, np.random.Generator):
                out.append([sid, {"rng": value.bit_generator.state}])
            elif isinstance(value, tl.Tensor):
                grad = None if value.grad is None else self.array(tl.backend.to_host(value.grad))
                out.append([sid, {"tensor": self.array(tl.backend.to_host(value.data)), "grad": grad}])
        return out


class _Decoder:
    def __init__(self, peer, blobs):
        self.peer, self.blobs = peer, blobs

    def blob(self, index) -> bytes:
        if not isinstance(index, int) or not 0 <= index < len(self.blobs):
            raise ProtocolError("a reference to a missing blob")
        return self.blobs[index]

    def array(self, description) -> np.ndarray:
        if not isinstance(description, dict):
            raise ProtocolError("an array without its description")
        return _from_array(description, self.blob(description.get("blob")))

    def value(self, tree, depth=0):
        if depth > MAX_DEPTH:
            raise ProtocolError("a value nested too deeply")
        if tree is None or isinstance(tree, (bool, int, float, str)):
            return tree
        if not isinstance(tree, dict):
            raise ProtocolError(f"an unknown value encoding: {type(tree).__name__}")
        if "ref" in tree:
            session = self.peer.session
            if session is None or tree["ref"] not in session.objects:
                raise ProtocolError("a reference to an object that was not shared")
            return session.objects[tree["ref"]]
        if "scalar" in tree:
            array = self.array(tree["scalar"])
            if array.ndim:
                raise ProtocolError("a scalar that is not 0-dimensional")
            return array[()]
        if "tuple" in tree:
            return tuple(self.value(v, depth + 1) for v in self._items(tree["tuple"]))
        if "set" in tree:
            items = [self.value(v, depth + 1) for v in self._items(tree["set"])]
            try:
                return frozenset(items) if tree.get("frozen") else set(items)
            except TypeError:
                raise ProtocolError("a set of unhashable values") from None
        if "bytes" in tree:
            return self.blob(tree["bytes"])
        if "yours" in tree:
            if tree["yours"] not in self.peer.exports:
                raise ProtocolError("a reference to an object this side never sent")
            return self.peer.exports[tree["yours"]]
        if "remote" in tree:
            return self.peer.stand_in(tree)
        value = self._shared(tree, depth)
        sid = tree.get("sid")
        if isinstance(sid, str) and self.peer.session is not None:
            self.peer.session.add(sid, value)
        return value

    def _items(self, items):
        if not isinstance(items, list):
            raise ProtocolError("a container encoding without a list")
        return items

    def _shared(self, tree, depth):
        if "list" in tree:
            return [self.value(v, depth + 1) for v in self._items(tree["list"])]
        if "dict" in tree:
            out = {}
            for pair in self._items(tree["dict"]):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise ProtocolError("a dict entry that is not a pair")
                key = self.value(pair[0], depth + 1)
                try:
                    out[key] = self.value(pair[1], depth + 1)
                except TypeError:
                    raise ProtocolError("a dict key that is not hashable") from None
            return out
        if "array" in tree:
            return self.array(tree["array"])
        if "rng" in tree:
            return _generator(tree["rng"])
        if "tensor" in tree:
            return self.tensor(tree)
        raise ProtocolError(f"an unknown value encoding with keys {sorted(tree)[:5]}")

    def tensor(self, tree):
        data = self.array(tree["tensor"])
        if "bridge" in tree:
            wrt = tree.get("wrt")
            session = self.peer.session
            if not isinstance(wrt, list) or session is None or any(s not in session.objects for s in wrt):
                raise ProtocolError("a gradient bridge to objects that were not shared")
            inputs = [session.objects[s] for s in wrt]
            if not all(isinstance(t, tl.Tensor) for t in inputs):
                raise ProtocolError("a gradient bridge to something that is not a Tensor")
            return Bridge.apply(*inputs, data=data, peer=self.peer, handle=tree["bridge"])
        tensor = tl.Tensor(data, requires_grad=bool(tree.get("rg")) and data.dtype.kind == "f")
        if tree.get("grad") is not None:
            tensor.grad = self.array(tree["grad"])
        return tensor


def _generator(state):
    if not isinstance(state, dict) or state.get("bit_generator") not in _GENERATORS:
        raise ProtocolError("a random generator of an unknown kind")
    generator = np.random.Generator(getattr(np.random, state["bit_generator"])(_SEED))  # then its state
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError):
        raise ProtocolError("a random generator with an invalid state") from None
    return generator


# ----------------------------------------------------------------------------- stand-ins
class Bridge(tl.Function):
    """Joins a Tensor computed on the other side to this side's graph: forward is the value
    it came with; backward asks the other side for the gradients of the Tensors the call
    shared (this side's inputs of the Bridge)."""

    def forward(self, *arrays, data, peer, handle):
        self.peer, self.handle = peer, handle
        weakref.finalize(self, peer.release, handle)
        return data

    def backward(self, g):
        grads = self.peer.request("grad", self.handle, [g])
        if not isinstance(grads, list) or len(grads) != len(self.inputs):
            raise ProtocolError("gradients that do not match the inputs")
        return tuple(grads)


class RemoteFunction(tl.Function):
    """Stand-in for a ``tl.Function`` class of the other side (a subclass is made for each,
    named like it): forward and backward run there, on copies of the arrays.

    A subclass may override ``forward`` with a local one that saves what the remote
    backward expects: Task 4.2 grades a backward after the reference forward this way."""

    _remote = None  # (peer, export id), set on each subclass

    def forward(self, *arrays, **params):
        peer, target = self._remote
        out = peer.request("forward", target, list(arrays), params)
        if not (isinstance(out, list) and len(out) == 2 and isinstance(out[0], np.ndarray)):
            raise TypeError(f"{type(self).__name__}.forward must return an array, got {_kind(out)}")
        self.handle = out[1]
        weakref.finalize(self, peer.release, out[1])
        return out[0]

    def backward(self, g):
        peer, target = self._remote
        if getattr(self, "handle", None) is None:  # the forward ran here
            grads = peer.request("backward_saved", target, [tuple(self.saved), g, list(self.needs_grad)])
        else:
            grads = peer.request("backward", self.handle, [g])
        name = type(self).__name__
        if isinstance(grads, np.ndarray):
            raise TypeError(f"{name}.backward returned an array, not a tuple: return one gradient per input, "
                            f"in a tuple, even for one input: (grad,)")
        if not isinstance(grads, (tuple, list)):
            raise TypeError(f"{name}.backward must return a tuple of gradients, got {_kind(grads)}")
        return tuple(g.data if isinstance(g, tl.Tensor) else g for g in grads)


def _kind(value) -> str:
    return "None" if value is None else f"a {type(value).__name__}"


# ----------------------------------------------------------------------------- the peer
class Peer:
    """One end of the channel. ``request`` calls an object of the other side and serves the
    other side's requests (callbacks, gradients) while it waits for the reply.

    ``side``: "j" (the judge) or "w" (a worker). ``handlers``: extra operations this side
    serves, ``{op: fn(args, kwargs) -> value}``. ``describe(exc)``: how an exception raised
    here is reported to the other side (type, message, where). ``bindings()``: names to
    rebind on the other side before a call (the judge's swapped-in reference helpers)."""

    def __init__(self, sock, side, deadline=None, handlers=None, describe=None, on_note=None, bindings=None,
                 call_guard=None):
        self.sock, self.side, self.deadline = sock, side, deadline
        self.handlers = handlers or {}
        self.describe = describe or (lambda exc: {"type": type(exc).__name__, "message": str(exc)})
        self.on_note, self.bindings = on_note, bindings
        self.call_guard = call_guard  # context manager around the code a request runs (the worker's alarm)
        self.exports, self._stand_ins, self._released = {}, {}, []
        self.session, self._count, self._requests = None, 0, 0
        self.inplace = {}  # export id -> the arguments (positions, names) whose changes come back

    # -- identities
    def export(self, value) -> int:
        self._count += 1
        self.exports[self._count] = value
        return self._count

    def new_sid(self, value) -> str:
        if self.session is None:
            self.session = _Session()
        self._count += 1
        sid = f"{self.side}{self._count}"
        self.session.add(sid, value)
        return sid

    def release(self, handle) -> None:
        """The other side may forget ``handle`` (sent with the next message)."""
        self._released.append(handle)

    def stand_in(self, tree):
        """This side's object for the other side's function or Function class."""
        key = tree.get("remote")
        if key in self._stand_ins:
            return self._stand_ins[key]
        name = str(tree.get("name", "remote"))[:100]
        if tree.get("kind") == "function_class":
            made = type(name, (RemoteFunction,), {"_remote": (self, key), "__module__": __name__})
        elif tree.get("kind") == "function":
            def made(*args, **kwargs):
                return self.request("call", key, args, kwargs)

            made.__name__ = made.__qualname__ = name
            made._remote = (self, key)
        else:
            raise ProtocolError("a reference of an unknown kind")
        self._stand_ins[key] = made
        return made

    # -- the wire
    def note(self, **fields) -> None:
        send(self.sock, {"op": "note", **fields})

    def _send(self, header, blobs=()):
        if self._released:
            header["release"], self._released = self._released, []
        send(self.sock, header, blobs)

    def _receive(self):
        header, blobs = receive(self.sock, self.deadline)
        released = header.get("release", [])
        if isinstance(released, list):
            for handle in released:
                if isinstance(handle, int):
                    self.exports.pop(handle, None)
        return header, blobs

    def request(self, op, target, args=(), kwargs=None):
        """Run ``op`` on the other side's object ``target``; its result, or its exception
        raised here as a :class:`RemoteError`."""
        top = self.session is None
        if top:
            self.session = _Session()
        self._requests += 1
        rid = f"{self.side}{self._requests}"
        try:
            encoder, sync = _Encoder(self), None
            header = {"op": op, "id": rid, "target": target, "args": encoder.value(list(args)),
                      "kwargs": encoder.value(dict(kwargs or {})), "grad": tl.is_grad_enabled()}
            if op == "call":
                sync = "all" if target in self.inplace else "rng"
                header["sync"] = sync
                if target in self.inplace:
                    sync = self._writable(self.inplace[target], args, kwargs)
            if self.bindings is not None:
                bind = self.bindings()
                if bind:
                    header["bind"] = encoder.value(bind)
            self._send(header, encoder.blobs)
            while True:
                header, blobs = self._receive()
                kind = header.get("op")
                if kind in ("reply", "error"):
                    if header.get("id") != rid:
                        continue  # the reply to a request the other side abandoned
                    decoder = _Decoder(self, blobs)
                    if kind == "error":
                        raise _remote_error(header.get("error"))
                    value = decoder.value(header.get("value"))
                    self._apply_sync(decoder, header.get("sync", []), sync)
                    return value
                if kind == "note":
                    if self.on_note is not None:
                        self.on_note(header)
                    continue
                self._serve(header, blobs)
        finally:
            if top:
                self.session = None

    def _writable(self, chosen, args, kwargs):
        """The ids of the shared objects an in-place call may change: those inside the
        arguments ``chosen`` (positions, names) and inside no other argument. A function
        that fills a cache must not also rewrite the parameters a reference uses afterwards,
        through the cache or otherwise."""
        inside, outside = set(), set()
        for key, value in [*enumerate(args), *kwargs.items()]:
            _objects_in(value, inside if key in chosen else outside)
        ids = self.session.ids
        return {ids[key] for key in inside - outside if key in ids}

    def _apply_sync(self, decoder, entries, wanted):
        """Apply the other side's state updates: a random generator's always; for an in-place
        call (``wanted``, a set of ids), those of the objects it may change."""
        if wanted is None or not isinstance(entries, list):
            return
        for entry in entries:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict)):
                raise ProtocolError("a malformed state update")
            sid, state = entry
            target = self.session.objects.get(sid) if isinstance(sid, str) and sid.startswith(self.side) else None
            if target is None:
                continue
            if isinstance(target, np.random.Generator) and "rng" in state:
                rng = state["rng"]
                if not isinstance(rng, dict) or rng.get("bit_generator") != type(target.bit_generator).__name__:
                    raise ProtocolError("a random generator's state of another kind")
                try:
                    target.bit_generator.state = rng
                except (TypeError, ValueError, KeyError):
                    raise ProtocolError("a random generator with an invalid state") from None
            elif not isinstance(wanted, set) or sid not in wanted:
                continue
            elif isinstance(target, list) and "list" in state:
                target[:] = [decoder.value(v, 1) for v in decoder._items(state["list"])]
            elif isinstance(target, dict) and "dict" in state:
                target.clear()
                target.update(decoder._shared({"dict": state["dict"]}, 1))
            elif isinstance(target, np.ndarray) and "array" in state:
                new = decoder.array(state["array"])
                if new.shape == target.shape:
                    target[...] = new
            elif isinstance(target, tl.Tensor) and "tensor" in state:
                new = decoder.array(state["tensor"])
                if new.shape == target.shape and new.dtype == target.dtype and target.data.flags.writeable:
                    target.data[...] = new
                else:
                    target.data = new
                grad = state.get("grad")
                target.grad = None if grad is None else decoder.array(grad)

    def serve_forever(self) -> None:
        """Serve requests until the other side closes the channel."""
        while True:
            try:
                header, blobs = self._receive()
            except ChannelClosed:
                return
            if header.get("op") not in ("reply", "error", "note"):
                self._serve(header, blobs)

    def _serve(self, header, blobs):
        top = self.session is None
        if top:
            self.session = _Session()
        rid = header.get("id")
        try:
            decoder = _Decoder(self, blobs)
            args, kwargs = decoder.value(header.get("args", [])), decoder.value(header.get("kwargs", {}))
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise ProtocolError("a request without argument lists")
            op = header.get("op")
            bind = decoder.value(header["bind"]) if "bind" in header else None
            mode = tl.enable_grad() if header.get("grad", True) else tl.no_grad()
            with mode:
                if bind and "bind" in self.handlers:
                    self.handlers["bind"]([bind], {})
                value = self._dispatch(op, header.get("target"), args, kwargs)
                encoder = _Encoder(self, result=True)
                reply = {"op": "reply", "id": rid, "value": encoder.value(value)}
                if header.get("sync"):
                    reply["sync"] = encoder.sync("j" if self.side == "w" else "w", header["sync"])
            self._send(reply, encoder.blobs)
        except (ChannelClosed, Deadline):
            raise
        except BaseException as exc:  # the student's code may raise anything, SystemExit included
            self._send({"op": "error", "id": rid, "error": self.describe(exc)})
            if isinstance(exc, KeyboardInterrupt):
                raise
        finally:
            if top:
                self.session = None

    def _dispatch(self, op, target, args, kwargs):
        if op in self.handlers:
            return self.handlers[op](args, kwargs)
        if op not in ("call", "forward", "backward", "backward_saved", "grad"):
            raise ProtocolError(f"an unknown operation {op!r}")
        if target not in self.exports:
            raise ProtocolError(f"an operation on an object this side does not have ({op})")
        obj = self.exports[target]
        guard = self.call_guard() if self.call_guard is not None else _nothing()
        with guard:
            if op == "call":
                return obj(*args, **kwargs)
            if op == "forward":
                tensors = [tl.Tensor(a, requires_grad=a.dtype.kind == "f" and tl.is_grad_enabled())
                           if isinstance(a, np.ndarray) else a for a in args]
                out, fn = obj.apply_with_context(*tensors, **kwargs)
                return [out.data, self.export(fn)]
            if op == "backward":
                return obj.backward(*args)
            if op == "backward_saved":
                saved, g, needs_grad = args
                fn = obj.__new__(obj)
                fn.device, fn.saved, fn.released = tl.backend.get_device("cpu"), tuple(saved), False
                fn.needs_grad, fn.inputs = tuple(bool(n) for n in needs_grad), ()
                return fn.backward(g)
            output, wrt = obj  # "grad"
            return gradients(output, wrt, args[0])


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _objects_in(value, found):
    """Add to ``found`` the id of each list, dict, array, Tensor and generator in ``value``."""
    stack = [value]
    while stack:
        value = stack.pop()
        if isinstance(value, (list, dict, np.ndarray, tl.Tensor, np.random.Generator)):
            if id(value) in found:
                continue
            found.add(id(value))
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend(value)


def _reachable_leaves(output):
    leaves, seen, stack = [], set(), [output]
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        fn = tensor.grad_fn
        if fn is None:
            leaves.append(tensor)
        else:
            stack.extend(t for t in getattr(fn, "inputs", ()) if t.requires_grad)
    return leaves


def gradients(output, wrt, g):
    """∂L/∂t for each t in ``wrt``, given g = ∂L/∂output, leaving every ``.grad`` as it was
    (the graph is kept: the other side may ask again)."""
    leaves = _reachable_leaves(output)
    saved = [(t, t.grad) for t in leaves + list(wrt)]
    for t, _ in saved:
        t.grad = None
    try:
        output.backward(g, retain_graph=True)
        return [t.grad for t in wrt]
    finally:
        for t, grad in saved:
            t.grad = grad
