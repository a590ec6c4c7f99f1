"""Checkpoints: arrays and metadata in one safetensors file, checksummed, written atomically.

The format is ONE ``.safetensors`` file (any safetensors reader opens it)::

    [8 bytes: N, the header's length, little-endian] [N bytes: JSON header] [the arrays' bytes]

The JSON header lists each array's dtype, shape and byte range, and a ``__metadata__`` table
of strings, where tinyllm keeps:

* ``format`` = ``"tinyllm.checkpoint"`` and ``version`` = ``"1"``;
* ``meta``: the caller's metadata (step, config, optimizer scalars, RNG state, a tokenizer's
  JSON...) as JSON text;
* ``meta_sha256``: the SHA-256 of that text (UTF-8);
* ``tensors_sha256``: the SHA-256 of the arrays, name by name in sorted order (the name,
  dtype and shape as JSON, then the array's little-endian bytes).

Why this shape:

* No pickle, ever: loading a pickle runs code from the file. Arrays are raw bytes plus a
  JSON description; everything else is JSON. Object arrays are refused.
* One file, because replacing one file is atomic (``os.replace``) and replacing a directory
  of files is not. A save writes a temporary file next to the target, flushes and fsyncs
  it, then renames it over the target: a crash at any moment leaves either the old
  checkpoint or the new one, never half of one. (A crash may leave the temporary file,
  ``.NAME.tmp-…``, behind; it is never read and can be deleted.)
* The checksums turn a truncated, bit-flipped or hand-edited file into a clear
  :class:`CheckpointError` naming the file and the problem, instead of wrong weights. They
  catch accidents, not forgery: whoever edits the file can recompute them.

Names are namespaced by the caller, e.g. ``"model.h.0.attn.c_attn.weight"`` and
``"optim.state.3.exp_avg"``; :func:`optimizer_to_checkpoint` produces the latter.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import uuid

import numpy as np
import safetensors.numpy

from . import backend

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "atomic_write", "optimizer_to_checkpoint",
           "optimizer_from_checkpoint", "rng_state", "set_rng_state", "generator_state", "set_generator_state"]

FORMAT = "tinyllm.checkpoint"
VERSION = "1"

# the dtypes safetensors stores and NumPy has (bfloat16 and the float8s are not NumPy dtypes)
_DTYPES = {np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                 np.uint16, np.uint32, np.uint64, np.float16, np.float32, np.float64)}


class CheckpointError(ValueError):
    """A checkpoint that cannot be written as asked, or a file that is not an intact checkpoint."""


# ----------------------------------------------------------------------------- saving
def save_checkpoint(path, tensors: dict, meta: dict | None = None) -> None:
    """Write ``tensors`` (name -> array) and ``meta`` (JSON-able dict) to the file ``path``.

    Arrays may be NumPy or device arrays (copied to the host); their dtype must be a bool,
    integer or float type. ``meta`` holds dicts with string keys, lists, strings, numbers,
    booleans and None (tuples come back as lists; NumPy scalars as Python numbers). The
    previous file at ``path``, if any, is replaced atomically; missing folders are created.
    """
    path = os.fspath(path)
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise CheckpointError(f"{path}: tensor names must be non-empty strings other than "
                                  f"'__metadata__', got {name!r}")
        _check_storable_text(path, name, f"the tensor name {name!r}")
        arrays[name] = _storable_array(path, name, value)
    try:
        meta_text = json.dumps(_plain_json(path, {} if meta is None else meta, "meta"), ensure_ascii=False)
    except RecursionError:
        raise CheckpointError(f"{path}: meta is nested too deeply to save as JSON") from None
    header = {
        "format": FORMAT,
        "version": VERSION,
        "meta": meta_text,
        "meta_sha256": _sha256_text(meta_text),
        "tensors_sha256": _tensors_sha256(arrays),
    }
    atomic_write(path, lambda file: write_safetensors(file, arrays, header))


# The safetensors library's codes for the dtypes a checkpoint holds, in the library's order of
# the data in a file (it writes the largest first, so that every array stays aligned).
SAFETENSORS_DTYPES = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16,
                      "F16": np.float16, "I32": np.int32, "U32": np.uint32, "F32": np.float32,
                      "F64": np.float64, "I64": np.int64, "U64": np.uint64}
_CODE_OF = {np.dtype(t): code for code, t in SAFETENSORS_DTYPES.items()}
_DATA_RANK = {code: rank for rank, code in enumerate(SAFETENSORS_DTYPES)}


def write_safetensors(file, arrays: dict, metadata: dict) -> None:
    """Write ``arrays`` (name → little-endian C-ordered array) and ``metadata`` (str → str)
    into the open binary ``file`` in the safetensors format, straight from the arrays' memory.

    The bytes are those of ``safetensors.numpy.save(arrays, metadata)`` with the metadata keys
    sorted (the library keeps them in a hash map whose order changes from run to run; sorted,
    the same state gives the same file, byte for byte). The library's ``save`` builds the
    whole file in memory, and a saved copy of it besides: for a training checkpoint that is
    several times the weights and optimizer state, on top of them. Here the arrays are written
    where they lie. Reading stays with the library, which checks the format."""
    codes = {name: _CODE_OF[array.dtype.newbyteorder("=")] for name, array in arrays.items()}
    names = sorted(arrays, key=lambda name: (-_DATA_RANK[codes[name]], name))
    header, offset = {"__metadata__": dict(sorted(metadata.items()))}, 0
    for name in names:
        end = offset + arrays[name].nbytes
        header[name] = {"dtype": codes[name], "shape": list(arrays[name].shape), "data_offsets": [offset, end]}
        offset = end
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the library pads the header to a multiple of 8 bytes
    file.write(struct.pack("<Q", len(text)) + text)
    for name in names:
        if arrays[name].nbytes:
            file.write(memoryview(arrays[name].reshape(-1)).cast("B"))


def _storable_array(path, name, value) -> np.ndarray:
    """``value`` as a little-endian NumPy array of a dtype safetensors stores."""
    if backend.array_device(value) is None:
        raise CheckpointError(f"{path}: tensor {name!r} is a {type(value).__name__}, not an array "
                              f"(plain values belong in meta)")
    array = backend.to_host(value)
    if array.dtype.newbyteorder("=") not in _DTYPES:
        raise CheckpointError(f"{path}: tensor {name!r} has dtype {array.dtype}, which a checkpoint "
                              f"cannot hold (bool, integer and float arrays only; never objects)")
    return np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")  # keeps 0-d as 0-d


def _plain_json(path, value, where):
    """A copy of ``value`` made of JSON types only, or a CheckpointError naming the spot."""
    if isinstance(value, str):
        _check_storable_text(path, value, where)
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, np.generic) and value.dtype in _DTYPES:
        return value.item()
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CheckpointError(f"{path}: {where} has the key {key!r}; JSON keys are strings "
                                      f"(convert it, so that loading gives back the same dict)")
            _check_storable_text(path, key, f"a key of {where}")
            out[key] = _plain_json(path, item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain_json(path, item, f"{where}[{i}]") for i, item in enumerate(value)]
    hint = " (arrays belong in tensors)" if backend.array_device(value) is not None else ""
    raise CheckpointError(f"{path}: {where} is a {type(value).__name__}, which JSON cannot hold{hint}")


def _check_storable_text(path, text, where):
    """Refuse text that UTF-8 cannot store (a lone surrogate, e.g. from undecodable bytes in
    a command line), naming where it is: the save would fail later, or lose the character."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise CheckpointError(f"{path}: {where} holds a lone surrogate U+{ord(text[error.start]):04X} at "
                                  f"position {error.start}, which UTF-8 (and so the file) cannot store") from None


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _tensors_sha256(arrays: dict) -> str:
    """SHA-256 over every array: its name, dtype and shape (as JSON), then its bytes."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = arrays[name]
        digest.update(json.dumps([name, array.dtype.name, list(array.shape)]).encode("utf-8"))
        digest.update(np.asarray(array, order="C").reshape(-1).view(np.uint8))
    return digest.hexdigest()


def atomic_write(path: str, payload) -> None:
    """Write ``payload`` to ``path`` so that a crash leaves the old file or the new, whole.

    ``payload``: the bytes, or a function that writes them into the open binary file it is
    given (so that a large file need not be built in memory first).

    Temporary file in the same folder (``os.replace`` is atomic only within one file
    system), flush + fsync so the bytes are on disk before the rename makes them visible,
    then fsync the folder so the rename itself survives a power cut.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(payload):
                payload(f)
            else:
                f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
            exc.filename = path  # "No space left on device" then says which checkpoint failed
        raise
    with contextlib.suppress(OSError, AttributeError):  # folders cannot be opened on Windows
        folder = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


# ----------------------------------------------------------------------------- loading
def load_checkpoint(path) -> tuple[dict, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(tensors, meta)``.

    ``tensors`` maps names to writable host NumPy arrays; ``meta`` is the JSON metadata.
    Raises :class:`CheckpointError` (naming the file and the problem) for anything that is
    not an intact tinyllm checkpoint: truncated, corrupted, edited, or another format.
    A missing file raises ``FileNotFoundError`` as usual.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    info = _read_metadata(path, data)

    meta_text = info["meta"]
    _check_storable_text(path, meta_text, "the metadata")  # (a \ud800 escape in the header decodes to one)
    if _sha256_text(meta_text) != info["meta_sha256"]:
        raise CheckpointError(f"{path}: the metadata does not match its checksum "
                              f"(edited or corrupted)")
    try:
        meta = json.loads(meta_text)
    except ValueError as exc:
        raise CheckpointError(f"{path}: the metadata is not valid JSON ({exc})") from None
    except RecursionError:
        raise CheckpointError(f"{path}: the metadata's JSON is nested too deeply to read") from None

    try:
        tensors = safetensors.numpy.load(data)
    except Exception as exc:  # safetensors' own error type varies between versions
        raise CheckpointError(f"{path}: the arrays cannot be read ({exc})") from exc
    if _tensors_sha256(tensors) != info["tensors_sha256"]:
        raise CheckpointError(f"{path}: the arrays do not match their checksum "
                              f"(truncated, corrupted or edited)")
    tensors = {name: a if a.flags.writeable else a.copy() for name, a in tensors.items()}
    return tensors, meta


def _read_metadata(path: str, data: bytes) -> dict:
    """Parse the safetensors header far enough to get tinyllm's ``__metadata__`` table."""
    if len(data) < 8:
        raise CheckpointError(f"{path}: {len(data)} bytes is too short to be a checkpoint "
                              f"(truncated or empty)")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > len(data) - 8:
        raise CheckpointError(f"{path}: the header claims {header_length} bytes but the file "
                              f"has {len(data) - 8} after the length (truncated, or not a checkpoint)")
    try:
        header = json.loads(data[8:8 + header_length].decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise CheckpointError(f"{path}: the header is not valid JSON ({exc}); corrupted, "
                              f"or not a safetensors file") from None
    except RecursionError:
        raise CheckpointError(f"{path}: the header's JSON is nested too deeply to read; corrupted, "
                              f"or not a checkpoint") from None
    info = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinyllm checkpoint (no '{FORMAT}' in the "
                              f"safetensors metadata)")
    if info.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {info.get('version')!r}; "
                              f"this tinyllm reads version {VERSION!r}")
    for key in ("meta", "meta_sha256", "tensors_sha256"):
        if not isinstance(info.get(key), str):
            raise CheckpointError(f"{path}: the checkpoint metadata lacks {key!r} (corrupted or edited)")
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2 and isinstance(entry["data_offsets"][1], int)]
    have = len(data) - 8 - header_length
    if ends and max(ends) > have:
        raise CheckpointError(f"{path}: truncated: the header describes {max(ends)} bytes of arrays, the file "
                              f"holds {have} after the header")
    return info


# ----------------------------------------------------------------------------- helpers for the trainer
def optimizer_to_checkpoint(optimizer, prefix: str = "optim.", copy: bool = True) -> tuple[dict, dict]:
    """Split ``optimizer.state_dict()`` into arrays and JSON: ``(tensors, meta)``.

    Arrays are named ``f"{prefix}state.{index}.{name}"`` (e.g. ``optim.state.0.exp_avg``);
    ``meta`` holds the groups' hyperparameters and the per-parameter scalars (``step``).
    A trainer saves them as::

        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        optim_tensors, optim_meta = optimizer_to_checkpoint(optimizer)
        save_checkpoint(path, {**tensors, **optim_tensors}, {"step": step, "optimizer": optim_meta})

    and restores with ``optimizer_from_checkpoint(optimizer, tensors, meta["optimizer"])``.
    ``copy=False``: the state's own host arrays, not copies (``optimizer.state_dict(copy=False)``),
    for a checkpoint written at once.
    """
    state_dict = optimizer.state_dict(copy=copy)
    tensors, scalars = {}, {}
    for index, entry in state_dict["state"].items():
        scalars[str(index)] = {}
        for name, value in entry.items():
            if isinstance(value, np.ndarray):
                tensors[f"{prefix}state.{index}.{name}"] = value
            else:
                scalars[str(index)][name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "state": scalars}


def optimizer_from_checkpoint(optimizer, tensors: dict, meta: dict, prefix: str = "optim.") -> None:
    """Restore an optimizer from what :func:`optimizer_to_checkpoint` produced.

    ``tensors`` may hold other arrays too (``model.…``): only names under ``prefix + "state."``
    are read. ``meta`` is the dict :func:`optimizer_to_checkpoint` returned.
    """
    state = {int(index): dict(entry) for index, entry in meta["state"].items()}
    start = f"{prefix}state."
    for key, array in tensors.items():
        if key.startswith(start):
            index, name = key[len(start):].split(".", 1)
            state.setdefault(int(index), {})[name] = array
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def rng_state() -> dict:
    """The state of tinyllm's NumPy random generators (host initialisation and the "cpu"
    device, used by dropout), as JSON-able dicts (``bit_generator.state``).

    CuPy's generator has no portable state, so the "cuda" device's stream is not included:
    a resumed GPU run draws different dropout masks from then on.
    """
    return {"host": generator_state(backend.host_generator()), "cpu": generator_state("cpu")}


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned: the next draws repeat the saved run's."""
    set_generator_state(backend.host_generator(), state["host"])
    set_generator_state("cpu", state["cpu"])


def generator_state(generator):
    """A NumPy generator's state as JSON (Python ints); ``generator`` may be a device name,
    meaning that device's generator. None for CuPy's, whose state is not exposed."""
    if not isinstance(generator, np.random.Generator):
        generator = backend.default_generator(generator)
        if not isinstance(generator, np.random.Generator):
            return None
    return json.loads(json.dumps(generator.bit_generator.state, default=int))


def set_generator_state(generator, state) -> None:
    """Restore :func:`generator_state`'s result (nothing for None or a CuPy generator)."""
    if not isinstance(generator, np.random.Generator):
        generator = backend.default_generator(generator)
    if state is not None and isinstance(generator, np.random.Generator):
        generator.bit_generator.state = state
