"""Loaders that cannot be made to hang or exhaust memory: GPT.from_gpt2 and load_safetensors
on hostile input (the tokenizer files: test_tokenizers.py; checkpoints: test_checkpoint.py
and test_reliability_fuzz.py)."""
import json
import struct
import time

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import given, settings, strategies as st

import tinyllm as tl
from tinyllm.models import GPT, GPTConfig, load_safetensors


def gpt2_state(n_layer=2, n_embd=8, vocab=11, block=8):
    """A small GPT-2 state dict with Hugging Face's names and Conv1D layout."""
    tl.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=n_layer, n_head=2, n_embd=n_embd))
    return model.to_gpt2_state_dict()


def refuse_to_build_models(monkeypatch):
    """From now on, building a GPT fails the test (a refusal must come before allocating)."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("a GPT was built before the state dict was checked")
    monkeypatch.setattr(GPT, "__init__", refuse)


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.update({"transformer.h.5000.x": np.zeros(8, np.float32)}),
     "'transformer.h.5000.x' is not a GPT-2 weight"),
    (lambda s: s.update({"h.99999999999999999999.ln_1.weight": np.zeros(8, np.float32)}),
     "'transformer.h.99999999999999999999.ln_1.weight' is not a GPT-2 weight"),
    (lambda s: s.update({"transformer.h.2.ln_1.bias": np.zeros(8, np.float32)}), "'transformer.h.2.ln_1.bias' is not"),
    (lambda s: s.pop("transformer.h.1.mlp.c_fc.bias"), "has no 'transformer.h.1.mlp.c_fc.bias'"),
    (lambda s: s.pop("transformer.ln_f.weight"), "has no 'transformer.ln_f.weight'"),
    (lambda s: s.update({"transformer.h.0.attn.c_attn.weight": np.zeros((8, 8), np.float32)}),
     "transformer.h.0.attn.c_attn.weight has shape (8, 8), expected (8, 24)"),
    (lambda s: s.update({"transformer.h.1.ln_2.weight": np.zeros(8, np.int64)}),
     "transformer.h.1.ln_2.weight has dtype int64, not a float type"),
    (lambda s: s.update({"transformer.wpe.weight": np.zeros(8, np.float32)}), "transformer.wpe.weight has shape (8,)"),
    (lambda s: s.update({"transformer.wte.weight": np.zeros((0, 8), np.float32),
                         "lm_head.weight": np.zeros((0, 8), np.float32)}), "transformer.wte.weight has shape (0, 8)"),
    (lambda s: s.update({3: np.zeros(8, np.float32)}), "tensor names must be strings, got 3"),
])
def test_from_gpt2_checks_names_and_shapes_before_allocating(edit, message, monkeypatch):
    state = gpt2_state()
    edit(state)
    refuse_to_build_models(monkeypatch)
    with pytest.raises(ValueError, match=f"^GPT.from_gpt2: .*{message.replace('(', '.').replace(')', '.')}"):
        GPT.from_gpt2(state, n_head=2)


def test_from_gpt2_takes_the_layers_the_names_give():
    model = GPT.from_gpt2(gpt2_state(n_layer=3), n_head=2)
    assert model.config.n_layer == 3 and model.config.n_embd == 8 and model.config.block_size == 8


@settings(max_examples=150)
@given(data=st.data())
def test_fuzz_from_gpt2_state_dicts(data):
    """Drawn edits of a valid state dict (names with huge layer numbers, dropped, reshaped,
    retyped tensors): a model whose config matches the weights, or one ValueError, fast."""
    state = gpt2_state()
    names = sorted(state)
    for _ in range(data.draw(st.integers(0, 3))):
        kind = data.draw(st.sampled_from(["add", "drop", "reshape", "retype", "rename"]))
        name = data.draw(st.sampled_from(names))
        if kind == "add":
            layer = data.draw(st.sampled_from([2, 3, 5000, 10**20]))
            suffix = data.draw(st.sampled_from(["ln_1.weight", "x", "attn.c_attn.bias", "mlp.c_proj.weight"]))
            state[f"transformer.h.{layer}.{suffix}"] = np.zeros(8, np.float32)
        elif kind == "drop":
            state.pop(name, None)
        elif kind == "reshape" and name in state:
            state[name] = np.zeros(data.draw(st.sampled_from([(), (0,), (8,), (3, 8), (8, 8, 1)])), np.float32)
        elif kind == "retype" and name in state:
            state[name] = state[name].astype(data.draw(st.sampled_from([np.float16, np.float64, np.int32, bool])))
        elif kind == "rename" and name in state:
            state[data.draw(st.sampled_from(["h.0." + name, "lm_head.bias", name + ".", "model." + name]))] = \
                state.pop(name)
    start = time.perf_counter()
    try:
        model = GPT.from_gpt2(state, n_head=2)
    except ValueError as error:
        assert str(error).startswith("GPT.from_gpt2: ") and "\n" not in str(error)
    else:
        assert model.config.n_layer <= 2
    assert time.perf_counter() - start < 10


# ----------------------------------------------------------------------------- load_safetensors
GOOD_FILE = {}


@pytest.fixture
def safetensors_file(tmp_path):
    path = tmp_path / "model.safetensors"
    safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in gpt2_state().items()}, str(path))
    return path


def _header(data):
    length = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + length]), data[8 + length:]


def _write(path, header, body):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + body)


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:5], "is too short for a .safetensors file"),
    (lambda d: d[:200], "the header claims"),
    (lambda d: struct.pack("<Q", 2**64 - 1) + d[8:], "the header claims 18446744073709551615 bytes"),
    (lambda d: struct.pack("<Q", 3) + b"[[[" + d[11:], "the header is not readable JSON"),
    (lambda d: d[:-100], "past the end of the file"),
    (lambda d: b"\x00" * 64, "the header is not readable JSON"),
])
def test_load_safetensors_names_the_file_on_damage(safetensors_file, damage, message):
    safetensors_file.write_bytes(damage(safetensors_file.read_bytes()))
    with pytest.raises(ValueError, match=f"^load_safetensors: {safetensors_file}: .*{message}"):
        load_safetensors(safetensors_file)


@pytest.mark.parametrize("field, value", [("dtype", "F8_E4M3"), ("dtype", 7), ("shape", [10**30]), ("shape", "x"),
                                          ("data_offsets", [0, 10**20]), ("data_offsets", [5]), ("shape", [-1, 8])])
def test_load_safetensors_refuses_malformed_entries(safetensors_file, field, value):
    header, body = _header(safetensors_file.read_bytes())
    name = sorted(k for k in header if k != "__metadata__")[0]
    header[name][field] = value
    _write(safetensors_file, header, body)
    with pytest.raises(ValueError, match=f"load_safetensors: {safetensors_file}: tensor '{name}': its dtype, shape"):
        load_safetensors(safetensors_file)


def test_load_safetensors_refuses_deeply_nested_json(tmp_path):
    path = tmp_path / "nested.safetensors"
    text = b"[" * 100_000 + b"]" * 100_000
    path.write_bytes(struct.pack("<Q", len(text)) + text)
    with pytest.raises(ValueError, match="the header is not readable JSON .RecursionError"):
        load_safetensors(path)


@settings(max_examples=200)
@given(data=st.data())
def test_fuzz_load_safetensors_and_from_gpt2_on_damaged_files(data, safetensors_file):
    """Truncations and bit flips of a real .safetensors file: GPT.from_gpt2(path) gives a
    model or one ValueError (naming the file when the file is what is wrong)."""
    good = GOOD_FILE.setdefault("bytes", safetensors_file.read_bytes())  # (the same file for every example)
    if data.draw(st.booleans()):
        damaged = good[:data.draw(st.integers(0, len(good) - 1))]
    else:
        damaged = bytearray(good)
        for _ in range(data.draw(st.integers(1, 6))):
            damaged[data.draw(st.integers(0, len(good) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    safetensors_file.write_bytes(bytes(damaged))
    try:
        GPT.from_gpt2(safetensors_file, n_head=2)
    except ValueError as error:
        assert str(error).startswith(("GPT.from_gpt2: ", f"load_safetensors: {safetensors_file}: ")), str(error)
