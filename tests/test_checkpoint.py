"""Checkpoints: round trips, refusals, integrity (every bit flip, every truncation, fuzzing),
atomic replacement (a failure in the middle of a write, a killed process), and resuming an
optimizer and the random streams exactly."""
import functools
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
import safetensors
import safetensors.numpy
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tinyllm as tl
from tinyllm import backend
from tinyllm.checkpoint import (SAFETENSORS_DTYPES, CheckpointError, load_checkpoint, optimizer_from_checkpoint,
                                optimizer_to_checkpoint, rng_state, save_checkpoint, set_rng_state,
                                write_safetensors)
from tinyllm.optim import AdamW, SGD, param_groups

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sample_tensors():
    rng = np.random.default_rng(0)
    return {
        "model.w": rng.standard_normal((4, 3)).astype(np.float32),
        "model.b": rng.standard_normal(3),
        "model.half": rng.standard_normal(5).astype(np.float16),
        "ids": np.arange(6, dtype=np.int64).reshape(2, 3),
        "small": np.array([-3, 7], dtype=np.int8),
        "mask": np.array([True, False, True]),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "transposed": np.arange(6, dtype=np.float32).reshape(2, 3).T,   # not contiguous
        "big_endian": np.arange(3, dtype=">i4"),
    }


SAMPLE_META = {"step": 1234, "config": {"n_layer": 4, "dropout": 0.0, "bias": False, "name": "ünï"},
               "losses": [2.5, 1.9], "best": None, "tokenizer": json.dumps({"vocab": ["a", "b"]})}


@pytest.fixture
def path(tmp_path):
    return tmp_path / "ckpt.safetensors"


def test_round_trip(path):
    tensors = sample_tensors()
    save_checkpoint(path, tensors, SAMPLE_META)
    loaded, meta = load_checkpoint(path)
    assert meta == SAMPLE_META
    assert sorted(loaded) == sorted(tensors)
    for name, array in tensors.items():
        assert loaded[name].shape == array.shape, name
        assert loaded[name].dtype == array.dtype.newbyteorder("="), name
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)
        assert isinstance(loaded[name], np.ndarray) and loaded[name].flags.writeable


def test_meta_is_normalised_to_json(path):
    save_checkpoint(path, {}, {"t": (1, 2), "n": np.int64(3), "x": np.float32(0.5), "nan": float("nan")})
    _, meta = load_checkpoint(path)
    assert meta["t"] == [1, 2] and type(meta["n"]) is int and meta["x"] == 0.5 and meta["nan"] != meta["nan"]


def test_it_is_a_plain_safetensors_file(path):
    save_checkpoint(path, {"w": np.ones(2, dtype=np.float32)}, {"step": 7})
    with safetensors.safe_open(str(path), framework="np") as f:
        info = f.metadata()
        np.testing.assert_array_equal(f.get_tensor("w"), np.ones(2))
    assert info["format"] == "tinyllm.checkpoint" and info["version"] == "1"
    assert json.loads(info["meta"]) == {"step": 7}
    assert len(info["meta_sha256"]) == len(info["tensors_sha256"]) == 64


@pytest.mark.parametrize("tensors, meta, message", [
    ({"o": np.array([1, "a"], dtype=object)}, {}, "dtype object"),
    ({"s": np.array(["ab"])}, {}, "dtype <U2"),
    ({"c": np.ones(2, dtype=np.complex64)}, {}, "complex64"),
    ({"l": [1.0, 2.0]}, {}, "not an array"),
    ({"__metadata__": np.ones(1)}, {}, "names"),
    ({}, {"a": {1: "x"}}, r"meta\['a'\] has the key 1"),
    ({}, {"a": np.ones(3)}, "arrays belong in tensors"),
    ({}, {"a": [{1, 2}]}, r"meta\['a'\]\[0\] is a set"),
    # text UTF-8 cannot store (a lone surrogate, e.g. from undecodable bytes on a command line)
    ({}, {"config": {"prompt": "ab\udcff"}}, r"meta\['config'\]\['prompt'\] holds a lone surrogate U\+DCFF at "
                                              r"position 2, which UTF-8 \(and so the file\) cannot store"),
    ({}, {"a": {"k\ud800": 1}}, r"a key of meta\['a'\] holds a lone surrogate U\+D800"),
    ({}, {"a": ["x", "\udfff"]}, r"meta\['a'\]\[1\] holds a lone surrogate"),
    ({"w\udcff": np.ones(1)}, {}, r"the tensor name 'w\\udcff' holds a lone surrogate U\+DCFF at position 1"),
    ({}, {"deep": functools.reduce(lambda inner, _: [inner], range(100_000), [])}, "meta is nested too deeply"),
])
def test_save_refuses_what_it_cannot_hold(path, tensors, meta, message):
    with pytest.raises(CheckpointError, match=message) as info:
        save_checkpoint(path, tensors, meta)
    assert str(path) in str(info.value)
    assert not os.path.exists(path)
    assert issubclass(CheckpointError, ValueError)


def test_overwrite_and_permissions(path):
    save_checkpoint(path, {"w": np.zeros(2)}, {"step": 1})
    save_checkpoint(path, {"w": np.ones(2)}, {"step": 2})
    tensors, meta = load_checkpoint(path)
    assert meta["step"] == 2 and tensors["w"].tolist() == [1, 1]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    assert os.listdir(path.parent) == [path.name]   # no temporary file left


def test_missing_folders_are_created(tmp_path):
    target = tmp_path / "runs" / "a" / "last.safetensors"
    save_checkpoint(target, {"w": np.zeros(1)}, {})
    assert load_checkpoint(target)[1] == {}


# ----------------------------------------------------------------------------- integrity
def _small_checkpoint(path):
    save_checkpoint(path, {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], np.int16)},
                    {"step": 3, "name": "tiny"})
    return path.read_bytes()


def _expect_refusal(path, data):
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_every_single_bit_flip_is_refused(tmp_path):
    good = _small_checkpoint(tmp_path / "good.safetensors")
    bad = tmp_path / "bad.safetensors"
    for i in range(len(good)):
        for bit in range(8):
            data = bytearray(good)
            data[i] ^= 1 << bit
            _expect_refusal(bad, bytes(data))


def test_every_truncation_is_refused(tmp_path):
    good = _small_checkpoint(tmp_path / "good.safetensors")
    bad = tmp_path / "bad.safetensors"
    for length in range(len(good)):
        _expect_refusal(bad, good[:length])
    _expect_refusal(bad, good + b"\0")  # and an extension


def _rewrite(path, edit_meta=None, edit_tensors=None):
    """Edit a checkpoint by hand as someone with the safetensors library would: the old
    checksums are kept, the content changes."""
    with safetensors.safe_open(str(path), framework="np") as f:
        info = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if edit_meta:
        info["meta"] = json.dumps(edit_meta(json.loads(info["meta"])))
    if edit_tensors:
        edit_tensors(tensors)
    safetensors.numpy.save_file(tensors, str(path), metadata=info)


def test_hand_edits_are_refused(path):
    _small_checkpoint(path)
    _rewrite(path, edit_meta=lambda meta: {**meta, "step": 4})
    with pytest.raises(CheckpointError, match="metadata does not match its checksum"):
        load_checkpoint(path)

    _small_checkpoint(path)

    def edit(tensors):
        tensors["w"][0, 0] = 42.0
    _rewrite(path, edit_tensors=edit)
    with pytest.raises(CheckpointError, match="arrays do not match their checksum"):
        load_checkpoint(path)

    _small_checkpoint(path)
    _rewrite(path, edit_tensors=lambda tensors: tensors.update(extra=np.zeros(1)))
    with pytest.raises(CheckpointError, match="arrays do not match"):
        load_checkpoint(path)

    _small_checkpoint(path)
    _rewrite(path, edit_tensors=lambda tensors: tensors.update(w=tensors["w"].reshape(3, 2)))
    with pytest.raises(CheckpointError, match="arrays do not match"):
        load_checkpoint(path)


def test_other_files_are_refused(path):
    safetensors.numpy.save_file({"w": np.ones(2)}, str(path))
    assert "not a tinyllm checkpoint" in _expect_refusal(path, path.read_bytes())
    good = _small_checkpoint(path)
    newer = good.replace(b'"version":"1"', b'"version":"9"')
    assert "version '9'" in _expect_refusal(path, newer)
    assert "too short" in _expect_refusal(path, b"")
    assert "not valid JSON" in _expect_refusal(path, struct.pack("<Q", 4) + b"\xff\xfe{}")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(path.parent / "missing.safetensors")


def test_nested_json_and_lone_surrogates_in_a_file_are_refused(path):
    good = _small_checkpoint(path)
    deep = b"[" * 100_000 + b"]" * 100_000
    assert "header's JSON is nested too deeply" in _expect_refusal(path, struct.pack("<Q", len(deep)) + deep)
    header_length = struct.unpack("<Q", good[:8])[0]
    header = json.loads(good[8:8 + header_length])
    for meta, problem in (("[" * 100_000 + "]" * 100_000, "the metadata's JSON is nested too deeply"),
                          ("\ud800", "the metadata holds a lone surrogate U+D800")):
        header["__metadata__"]["meta"] = meta  # with its checksum, as a forger would
        header["__metadata__"]["meta_sha256"] = hashlib.sha256(meta.encode("utf-8", "surrogatepass")).hexdigest()
        text = json.dumps(header).encode()
        assert problem in _expect_refusal(path, struct.pack("<Q", len(text)) + text + good[8 + header_length:])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_raise_only_checkpoint_error(tmp_path, data):
    _expect_refusal(tmp_path / "fuzz.safetensors", data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.one_of(
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                 max_leaves=8),
    st.fixed_dictionaries({"__metadata__": st.dictionaries(
        st.sampled_from(["format", "version", "meta", "meta_sha256", "tensors_sha256"]),
        st.sampled_from(["tinyllm.checkpoint", "1", "{}", "x" * 64, ""]))}),
), body=st.binary(max_size=40))
def test_json_headers_raise_only_checkpoint_error(tmp_path, header, body):
    raw = json.dumps(header).encode()
    _expect_refusal(tmp_path / "fuzz.safetensors", struct.pack("<Q", len(raw)) + raw + body)


# ----------------------------------------------------------------------------- atomic replacement
class _FailingFile:
    """A file that takes half of what it is given, then reports a full disk."""

    def __init__(self, f):
        self.f = f

    def write(self, data):
        self.f.write(data[:len(data) // 2])
        self.f.flush()
        raise OSError(28, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_a_failure_mid_write_keeps_the_old_checkpoint(path, monkeypatch):
    save_checkpoint(path, {"w": np.zeros(1000)}, {"step": 1})
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: _FailingFile(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, {"w": np.ones(1000)}, {"step": 2})
    monkeypatch.undo()
    tensors, meta = load_checkpoint(path)
    assert meta == {"step": 1} and not tensors["w"].any()
    assert os.listdir(path.parent) == [path.name]  # the partial temporary file was removed


def test_a_failed_rename_keeps_the_old_checkpoint(path, monkeypatch):
    save_checkpoint(path, {"w": np.zeros(10)}, {"step": 1})

    def broken_replace(src, dst):
        raise PermissionError("rename refused")
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(PermissionError):
        save_checkpoint(path, {"w": np.ones(10)}, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)[1] == {"step": 1}
    assert os.listdir(path.parent) == [path.name]


CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from tinyllm.checkpoint import save_checkpoint

    class SlowFile:  # writes half, says so, then hangs until killed
        def __init__(self, f):
            self.f = f
        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            print("half written", flush=True)
            time.sleep(60)
        def __getattr__(self, name):
            return getattr(self.f, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.f.close()

    real_fdopen = os.fdopen
    os.fdopen = lambda fd, mode: SlowFile(real_fdopen(fd, mode))
    save_checkpoint(sys.argv[2], {"w": np.ones(100_000)}, {"step": 2})
""")


def test_a_killed_save_keeps_the_old_checkpoint(path):
    save_checkpoint(path, {"w": np.zeros(100_000)}, {"step": 1})
    child = subprocess.Popen([sys.executable, "-c", CHILD, REPO, str(path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "half written"
        leftovers = [n for n in os.listdir(path.parent) if n != path.name]
        assert len(leftovers) == 1 and leftovers[0].startswith(f".{path.name}.tmp-")
    finally:
        child.kill()
        child.wait(timeout=10)
        child.stdout.close()
    tensors, meta = load_checkpoint(path)
    assert meta == {"step": 1} and not tensors["w"].any()
    save_checkpoint(path, {"w": np.ones(3)}, {"step": 3})  # the leftover is in nobody's way
    assert load_checkpoint(path)[1] == {"step": 3}


# ----------------------------------------------------------------------------- resuming training
def _model(seed):
    rng = np.random.default_rng(seed)
    return {"h.0.weight": tl.Tensor(rng.standard_normal((6, 4)).astype(np.float32), requires_grad=True),
            "h.0.bias": tl.Tensor(np.zeros(4, dtype=np.float32), requires_grad=True),
            "wte.weight": tl.Tensor(rng.standard_normal((10, 6)).astype(np.float32), requires_grad=True)}


def _train(model, opt, steps, rng):
    for _ in range(steps):
        for p in model.values():
            p.grad = rng.standard_normal(p.shape).astype(np.float32)
        opt.step()


@pytest.mark.parametrize("make_optimizer", [
    lambda model: AdamW(param_groups(model.items(), 0.1), lr=1e-2, betas=(0.9, 0.99)),
    lambda model: SGD(list(model.values()), lr=0.1, momentum=0.9, nesterov=True),
])
def test_resume_from_a_checkpoint_continues_identically(path, make_optimizer):
    model = _model(0)
    opt = make_optimizer(model)
    _train(model, opt, 5, np.random.default_rng(1))

    tensors = {f"model.{k}": p.numpy() for k, p in model.items()}
    optim_tensors, optim_meta = optimizer_to_checkpoint(opt)
    assert all(k.startswith("optim.state.") for k in optim_tensors)
    save_checkpoint(path, {**tensors, **optim_tensors}, {"step": 5, "optimizer": optim_meta})

    loaded, meta = load_checkpoint(path)
    resumed_model = {k: tl.Tensor(loaded[f"model.{k}"], requires_grad=True) for k in model}
    resumed = make_optimizer(resumed_model)
    optimizer_from_checkpoint(resumed, loaded, meta["optimizer"])

    _train(model, opt, 5, np.random.default_rng(2))
    _train(resumed_model, resumed, 5, np.random.default_rng(2))
    for k in model:
        np.testing.assert_array_equal(model[k].data, resumed_model[k].data, err_msg=k)
        assert resumed_model[k].dtype == np.float32


def test_rng_state_round_trip(path):
    tl.manual_seed(7)
    backend.host_generator().standard_normal(3)
    save_checkpoint(path, {}, {"rng": rng_state()})
    expected_host = backend.host_generator().standard_normal(4)
    expected_cpu = backend.default_generator("cpu").random(4)
    tl.manual_seed(99)
    set_rng_state(load_checkpoint(path)[1]["rng"])
    np.testing.assert_array_equal(backend.host_generator().standard_normal(4), expected_host)
    np.testing.assert_array_equal(backend.default_generator("cpu").random(4), expected_cpu)


# ----------------------------------------------------------------------------- the file, written without copies
def _library_bytes(arrays, metadata):
    """``safetensors.numpy.save``'s bytes for ``arrays`` with the metadata keys sorted (the
    library's own order of them changes from run to run)."""
    payload = safetensors.numpy.save(arrays, metadata=metadata)
    (length,) = struct.unpack("<Q", payload[:8])
    header = json.loads(payload[8:8 + length])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + payload[8 + length:]


@settings(max_examples=60, deadline=None)
@given(arrays=st.dictionaries(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6).filter(lambda n: n != "__metadata__"),
    st.sampled_from(sorted(SAFETENSORS_DTYPES)).flatmap(lambda code: hnp.arrays(
        np.dtype(SAFETENSORS_DTYPES[code]).newbyteorder("<"), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                                               max_side=4))),
    max_size=6),
    metadata=st.dictionaries(st.text(max_size=5), st.text(max_size=8), min_size=1, max_size=4))  # a checkpoint always has some
def test_the_streamed_file_is_the_safetensors_librarys_file_byte_for_byte(arrays, metadata):
    buffer = io.BytesIO()
    write_safetensors(buffer, arrays, metadata)
    assert buffer.getvalue() == _library_bytes(arrays, metadata)
    back = safetensors.numpy.load(buffer.getvalue())
    assert back.keys() == arrays.keys()
    for name, array in arrays.items():
        np.testing.assert_array_equal(back[name], array)
        assert back[name].dtype == array.dtype and back[name].shape == array.shape


def test_saving_makes_no_copy_of_the_arrays(tmp_path):
    """The library's save built the file in memory, and the header's rewrite copied it twice
    more: saving 40 MB of arrays allocated 120 MB besides them (measured before the change)."""
    arrays = {f"w{i}": np.ones((1250, 1000), np.float32) for i in range(8)}  # 40 MB
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        save_checkpoint(tmp_path / "big.safetensors", arrays, {"step": 1})
        extra = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert extra < 2_000_000, f"saving 40 MB of arrays allocated {extra / 1e6:.1f} MB"
    tensors, meta = load_checkpoint(tmp_path / "big.safetensors")
    assert meta == {"step": 1} and all(np.array_equal(tensors[k], v) for k, v in arrays.items())
