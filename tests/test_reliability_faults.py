"""Faults that lose nothing: saves killed at any point, truncated, bit-flipped,
hand-edited and booby-trapped checkpoints, training runs stopped by SIGINT, SIGTERM and
SIGKILL, a full disk at the worst moment, and NaN weights.

What already has tests elsewhere and is not repeated here: every bit flip and every
truncation of a small checkpoint, random bytes and JSON headers fuzzed at the loader, a
write failing midway and a failed rename (tests/test_checkpoint.py); SIGTERM on the CLI
(tests/test_cli.py); resuming after ``stop_after`` and same-seed checkpoints equal array by
array (tests/test_train.py).
"""
import json
import os
import pickle
import random
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import tinyllm as tl
from tinyllm import checkpoint as ckpt
from tinyllm.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinyllm.cli import build_parser, main
from tinyllm.train import LanguageModelingTask, Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
        "--eval-iters", "1", "--progress", "false", "--warmup-iters", "2", "--dropout", "0.1",
        "--lr-decay-iters", "40", "--no-sample"]


CORPUS = {}


@pytest.fixture(scope="module", autouse=True)
def small_corpus(tmp_path_factory):
    """A 6 KB text instead of the shipped 400 KB corpus: each run starts in milliseconds."""
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    path.write_text("Once upon a time a small model read the same short story again and again, "
                    "and every time it knew a little more of what came next.\n" * 40)
    CORPUS["path"] = str(path)


def train_args(out, max_iters, eval_interval=100, *extra):
    return ["train", "--out", str(out), "--max-iters", str(max_iters), "--eval-interval", str(eval_interval),
            "--data-path", CORPUS["path"], *TINY, *extra]


def config_for(argv):
    """The TrainConfig the CLI builds from ``argv`` (so in-process runs match CLI runs)."""
    from tinyllm.cli import _config_from_args
    args = build_parser().parse_args(argv)
    return _config_from_args(args, args.out)


def reference_losses(tmp_path, max_iters, eval_interval=100):
    """train_losses of an uninterrupted run (and its checkpoint's bytes)."""
    out = tmp_path / f"reference-{max_iters}-{eval_interval}"
    assert main(train_args(out, max_iters, eval_interval)) == 0
    _, meta = load_checkpoint(out / "ckpt.safetensors")
    return meta["train_losses"], (out / "ckpt.safetensors").read_bytes()


# ----------------------------------------------------------------------------- a save killed at any point
OLD = ({"w": np.zeros(5000, np.float32)}, {"step": 1})
NEW = ({"w": np.ones(5000, np.float32)}, {"step": 2})


def _die_at(point, fraction):
    """In a child process: make the next save die (os._exit: no cleanup, no finally, as
    SIGKILL) at ``point``: "write" after ``fraction`` of the bytes, "fsync" before the file's
    fsync, "replace" before the rename, "replaced" after it (before the folder's fsync)."""
    real_fdopen, real_replace = os.fdopen, os.replace

    class Dying:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[:int(len(data) * fraction)])
            self.f.flush()
            os._exit(0)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    if point == "write":
        os.fdopen = lambda fd, mode: Dying(real_fdopen(fd, mode))
    elif point == "fsync":
        os.fsync = lambda fd: os._exit(0)
    elif point == "replace":
        os.replace = lambda src, dst: os._exit(0)
    elif point == "replaced":
        def replace_then_die(src, dst):
            real_replace(src, dst)
            os._exit(0)
        os.replace = replace_then_die


CRASH_POINTS = ([("write", f) for f in (0.0, 1e-4, 0.003, 0.01, 0.05, 0.25, 0.5, 0.9, 0.999, 1.0)]
                + [("fsync", 1.0), ("replace", 1.0), ("replaced", 1.0)])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_save_killed_at_any_point_leaves_a_loadable_checkpoint(tmp_path):
    """A child process dies in the middle of save_checkpoint at 13 points (inside the
    8-byte length, inside the JSON header, inside the arrays, before fsync, before and
    after the rename). Every time the file loads: the old checkpoint if the rename had not
    happened, the new one if it had; never an error, never a mix. Leftover temporary files
    are in nobody's way."""
    path = tmp_path / "ckpt.safetensors"
    for point, fraction in CRASH_POINTS:
        save_checkpoint(path, *OLD)
        pid = os.fork()
        if pid == 0:  # the child: die while saving
            try:
                _die_at(point, fraction)
                save_checkpoint(path, *NEW)
            finally:
                os._exit(3)  # not reached when the save dies as planned
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0, (point, fraction)
        tensors, meta = load_checkpoint(path)
        expected = NEW if point == "replaced" else OLD
        assert meta == expected[1], (point, fraction)
        np.testing.assert_array_equal(tensors["w"], expected[0]["w"])
    leftovers = [n for n in os.listdir(tmp_path) if n != path.name]
    assert leftovers and all(n.startswith(".ckpt.safetensors.tmp-") for n in leftovers)
    save_checkpoint(path, *NEW)
    assert load_checkpoint(path)[1] == {"step": 2}


# ----------------------------------------------------------------------------- damaged trainer checkpoints
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real trainer checkpoint (weights, AdamW state, RNG states, tokenizer, history)."""
    out = tmp_path_factory.mktemp("trained")
    assert main(train_args(out, 6, 3)) == 0
    return out, (out / "ckpt.safetensors").read_bytes()


def _header_length(data):
    return 8 + struct.unpack("<Q", data[:8])[0]


def test_a_trainer_checkpoint_truncated_anywhere_is_refused_naming_the_file(trained, tmp_path):
    """Truncated at 400 places (every one of the first 64 bytes, then spread over the JSON
    header and the arrays, and one byte short): CheckpointError naming the file every time."""
    _, good = trained
    header = _header_length(good)
    offsets = sorted(set(list(range(64)) + list(np.linspace(64, header, 120, dtype=int))
                         + list(np.linspace(header, len(good) - 1, 215, dtype=int)) + [len(good) - 1]))
    assert len(offsets) >= 395
    bad = tmp_path / "ckpt.safetensors"
    for n in offsets:
        bad.write_bytes(good[:n])
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(bad)
        assert str(bad) in str(info.value), n


@pytest.mark.parametrize("damage", ["truncated", "bit flip", "hand edit"])
@pytest.mark.parametrize("command", ["train --resume", "sample", "eval"])
def test_the_cli_refuses_a_damaged_checkpoint_with_one_clear_line(trained, tmp_path, capsys, damage, command):
    """Whatever the command, a damaged checkpoint ends in exit code 1 and one line
    "error: <file>: <problem>", no traceback; the file is left as it was."""
    _, good = trained
    out = tmp_path / "run"
    out.mkdir()
    path = out / "ckpt.safetensors"
    if damage == "truncated":
        data = good[:len(good) // 2]
    elif damage == "bit flip":
        data = bytearray(good)
        data[len(good) - 100] ^= 0x10
        data = bytes(data)
    else:  # change the step in the JSON text, keeping the old checksum
        data = good.replace(b'\\"step\\": 6', b'\\"step\\": 7', 1)
        assert data != good
    path.write_bytes(data)
    argv = {"train --resume": train_args(out, 9, 3, "--resume"),
            "sample": ["sample", "--out", str(out)], "eval": ["eval", "--out", str(out)]}[command]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}: "), err
    assert "Traceback" not in err[0]
    problem = {"truncated": "truncated", "bit flip": "checksum", "hand edit": "checksum"}[damage]
    assert problem in err[0]
    assert path.read_bytes() == data


class _Boom:
    """Unpickling this runs code: it would create a file named by the test."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_loading_never_unpickles_anything(trained, tmp_path, monkeypatch):
    """A pickle (bare, or in a torch-style zip, or disguised behind a safetensors length
    prefix) is refused with CheckpointError and its code never runs; a good checkpoint
    loads with every pickle entry point and np.load booby-trapped."""
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Boom(str(marker)))
    import zipfile
    zipped = tmp_path / "zipped.safetensors"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("archive/data.pkl", payload)
    candidates = {"bare.safetensors": payload, "zipped.safetensors": zipped.read_bytes(),
                  "prefixed.safetensors": struct.pack("<Q", len(payload)) + payload,
                  "object.safetensors": _object_array_file()}
    for name, data in candidates.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=str(path)):
            load_checkpoint(path)
    assert not marker.exists()

    def trap(*args, **kwargs):
        raise AssertionError("the loader tried to unpickle")
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, trap)
    monkeypatch.setattr(np, "load", trap)
    good = tmp_path / "good.safetensors"
    good.write_bytes(trained[1])
    tensors, meta = load_checkpoint(good)
    assert meta["step"] == 6 and all(a.dtype != object for a in tensors.values())


def _object_array_file():
    """A tinyllm-looking safetensors header that declares a NumPy object array."""
    meta = {"format": "tinyllm.checkpoint", "version": "1", "meta": "{}",
            "meta_sha256": ckpt._sha256_text("{}"), "tensors_sha256": "0" * 64}
    header = json.dumps({"__metadata__": meta, "w": {"dtype": "O", "shape": [1], "data_offsets": [0, 8]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * 8


# ----------------------------------------------------------------------------- signals, in-process and deterministic
def _signal_at(monkeypatch, steps, sig=signal.SIGTERM, times=1):
    """Send ``sig`` (``times`` times) to this process while the trainer draws the batch of
    each step in ``steps`` (the handler only sets a flag; the step finishes, then the
    trainer saves)."""
    real_batch = LanguageModelingTask.batch
    calls = {"n": 0}

    def batch(self, split, rng):
        if split == "train":
            if calls["n"] in steps:
                for _ in range(times):
                    os.kill(os.getpid(), sig)
            calls["n"] += 1
        return real_batch(self, split, rng)
    monkeypatch.setattr(LanguageModelingTask, "batch", batch)


@pytest.fixture
def never_die_of_sigterm():
    """If the trainer failed to catch SIGTERM, pytest would be killed: fail instead."""
    def fail(signum, frame):
        raise AssertionError("SIGTERM reached the default handler")
    previous = signal.signal(signal.SIGTERM, fail)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_saves_and_resume_rewrites_the_very_same_checkpoint(tmp_path, monkeypatch, capsys, sig,
                                                                     never_die_of_sigterm):
    """Stopped by a signal at step 3 of 10 (dropout on, so the RNG streams matter): exit
    code 130, a message naming the signal, the step and the file; then ``--resume`` runs
    to the end, and the final checkpoint is byte for byte the one an uninterrupted run writes."""
    out = tmp_path / "run"
    assert main(train_args(out, 10)) == 0
    uninterrupted = (out / "ckpt.safetensors").read_bytes()
    capsys.readouterr()
    _signal_at(monkeypatch, {3}, sig)
    assert main(train_args(out, 10, 100, "--overwrite")) == 130
    printed = capsys.readouterr()
    name = signal.Signals(sig).name
    assert f"{name}: saved a resumable checkpoint at step 4 to {out / 'ckpt.safetensors'}" in printed.out
    assert load_checkpoint(out / "ckpt.safetensors")[1]["step"] == 4
    monkeypatch.undo()
    assert main(train_args(out, 10, 100, "--resume")) == 0
    assert (out / "ckpt.safetensors").read_bytes() == uninterrupted


def test_signals_during_evaluation_during_the_save_and_twice_in_a_row(tmp_path, monkeypatch, capsys,
                                                                      never_die_of_sigterm):
    """A second SIGINT right after the first, a SIGTERM while evaluating, one while the
    checkpoint is being written: each time one clean stop with a resumable checkpoint, and
    the resumed run ends with the losses of an uninterrupted one."""
    reference, _ = reference_losses(tmp_path, 12, 3)
    out = tmp_path / "run"
    # twice in a row (an impatient Ctrl-C, Ctrl-C)
    _signal_at(monkeypatch, {1}, signal.SIGINT, times=2)
    assert main(train_args(out, 12, 3)) == 130
    assert load_checkpoint(out / "ckpt.safetensors")[1]["step"] == 2
    monkeypatch.undo()
    # while evaluating (at step 3)
    real_evaluate = Trainer.evaluate

    def evaluate(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real_evaluate(self, *args, **kwargs)
    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    assert main(train_args(out, 12, 3, "--resume")) == 130
    assert load_checkpoint(out / "ckpt.safetensors")[1]["step"] == 3  # (the evaluation stopped: redone on resume)
    monkeypatch.undo()
    # while writing the checkpoint (the one of the evaluation at step 3, redone)
    real_write = ckpt.atomic_write

    def write(path, payload):
        os.kill(os.getpid(), signal.SIGTERM)
        real_write(path, payload)
    monkeypatch.setattr(ckpt, "atomic_write", write)
    assert main(train_args(out, 12, 3, "--resume")) == 130
    monkeypatch.undo()
    assert load_checkpoint(out / "ckpt.safetensors")[1]["step"] == 4
    capsys.readouterr()
    assert main(train_args(out, 12, 3, "--resume")) == 0
    assert load_checkpoint(out / "ckpt.safetensors")[1]["train_losses"] == reference


def test_a_signal_stops_an_evaluation_within_a_batch(tmp_path, monkeypatch, capsys, never_die_of_sigterm):
    """SIGTERM in the middle of a long evaluation (--eval-iters 5000): the evaluation draws no
    further batch, the run saves at once (exit 130), and resuming evaluates again and goes on."""
    out = tmp_path / "run"
    real_batch = LanguageModelingTask.batch
    drawn = {"val": 0, "train": 0}

    def batch(self, split, rng):
        drawn[split] += 1
        if drawn["val"] == 0 and drawn["train"] == 2 + 10:  # 2 training steps, then 10 evaluation batches
            os.kill(os.getpid(), signal.SIGTERM)
        return real_batch(self, split, rng)
    monkeypatch.setattr(LanguageModelingTask, "batch", batch)
    assert main(train_args(out, 4, 2, "--eval-iters", "5000")) == 130
    assert drawn == {"train": 12, "val": 0}
    _, meta = load_checkpoint(out / "ckpt.safetensors")
    assert meta["step"] == 2 and meta["history"]["step"] == []
    assert "SIGTERM: saved a resumable checkpoint at step 2" in capsys.readouterr().out
    monkeypatch.undo()
    assert main(train_args(out, 4, 2, "--resume", "--eval-iters", "2")) == 0
    assert load_checkpoint(out / "ckpt.safetensors")[1]["history"]["step"] == [2, 4]


def test_a_full_disk_during_the_signal_save_says_so_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys,
                                                                                 never_die_of_sigterm):
    """SIGTERM at step 4, and the disk is full when the trainer saves on the way out: exit
    code 1 and one line naming the checkpoint file and the error (so the user knows no
    new checkpoint was written); the one from step 3 still loads."""
    out = tmp_path / "run"
    _signal_at(monkeypatch, {4})
    real_fdopen = os.fdopen
    saves = {"n": 0}

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[:100])
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def fdopen(fd, mode):
        saves["n"] += 1
        return FullDisk(real_fdopen(fd, mode)) if saves["n"] == 2 else real_fdopen(fd, mode)
    monkeypatch.setattr(os, "fdopen", fdopen)
    assert main(train_args(out, 12, 3)) == 1
    monkeypatch.undo()
    err = capsys.readouterr().err.strip()
    assert err == f"error: [Errno 28] No space left on device: '{out / 'ckpt.safetensors'}'"
    assert load_checkpoint(out / "ckpt.safetensors")[1]["step"] == 3
    assert sorted(os.listdir(out)) == ["ckpt.safetensors", "loss.png"]  # no temporary file left


# ----------------------------------------------------------------------------- signals to real processes
def _spawn(argv):
    return subprocess.Popen([sys.executable, "-m", "tinyllm", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for_step(path, above, deadline):
    """Until the checkpoint at ``path`` reports a step > ``above`` (read while it may be
    being replaced: each read must succeed)."""
    while time.time() < deadline:
        if os.path.exists(path):
            step = load_checkpoint(path)[1]["step"]
            if step > above:
                return step
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint past step {above} at {path}")


def test_sigint_to_a_real_training_process_saves_and_resume_gives_the_same_losses(tmp_path):
    """The CLI in its own process, SIGINT (Ctrl-C) once it has checkpointed: exit code 130,
    "SIGINT: saved a resumable checkpoint at step N", the file says step N; then --resume to
    N + 5 gives exactly the losses of an uninterrupted run of N + 5 steps."""
    out = tmp_path / "run"
    path = out / "ckpt.safetensors"
    proc = _spawn(train_args(out, 100_000, 5))
    try:
        _wait_for_step(path, 0, time.time() + 120)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, output
    assert "SIGINT: saved a resumable checkpoint at step" in output and "Traceback" not in output
    step = int(output.split("at step ")[1].split()[0])
    assert load_checkpoint(path)[1]["step"] == step
    assert main(train_args(out, step + 5, 5, "--resume")) == 0
    reference, _ = reference_losses(tmp_path, step + 5, 5)
    assert load_checkpoint(path)[1]["train_losses"] == reference


def test_training_killed_with_sigkill_at_random_moments_loses_nothing(tmp_path):
    """kill -9 three times at random moments of a run that checkpoints every 4 steps (the
    checkpoint is read while being replaced, too): the file always loads, each restart with
    --resume goes on from it, and the finished run has exactly the losses of an
    uninterrupted one (work since the last checkpoint is redone, identically)."""
    out = tmp_path / "run"
    path = out / "ckpt.safetensors"
    rng = random.Random(7)
    seen = 0
    for attempt in range(3):
        proc = _spawn(train_args(out, 200, 4, *(["--resume"] if attempt else [])))
        try:
            seen = _wait_for_step(path, seen, time.time() + 120)
            time.sleep(rng.uniform(0.0, 0.4))
        finally:
            proc.kill()  # SIGKILL: no handler, no cleanup
            proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        seen = load_checkpoint(path)[1]["step"]
    assert main(train_args(out, seen + 8, 4, "--resume")) == 0
    reference, _ = reference_losses(tmp_path, seen + 8, 4)
    assert load_checkpoint(path)[1]["train_losses"] == reference


# ----------------------------------------------------------------------------- same seed, same bytes
def test_same_seed_same_machine_gives_byte_identical_checkpoint_files(tmp_path):
    """Stronger than equal arrays: two runs in the same folder write the same file, byte
    for byte (no timestamps, no unordered dicts, no nondeterministic reductions)."""
    out = tmp_path / "run"
    first = []
    for _ in range(2):
        assert main(train_args(out, 6, 3, "--overwrite")) == 0
        first.append((out / "ckpt.safetensors").read_bytes())
    assert not (out / "ckpt.safetensors.bak").exists()  # the backup goes once the new run has saved
    assert first[0] == first[1]


# ----------------------------------------------------------------------------- NaN weights
def test_a_nan_weight_survives_a_checkpoint_faithfully_and_detect_anomaly_names_the_op(trained, tmp_path):
    """Documented behaviour: a checkpoint is a faithful container; a NaN saved in a weight
    (with valid checksums) loads as NaN. Finding it is detect_anomaly's job: the first op
    it reaches is named, with its shapes and this file's line."""
    out = tmp_path / "run"
    out.mkdir()
    tensors, meta = load_checkpoint(trained[0] / "ckpt.safetensors")
    tensors["model.transformer.h.0.mlp.c_fc.weight"][0, 0] = np.nan
    save_checkpoint(out / "ckpt.safetensors", tensors, meta)
    cfg = config_for(train_args(out, 8, 100))
    trainer = Trainer(cfg, resume=True)
    assert np.isnan(trainer.model.transformer.h[0].mlp.c_fc.weight.data[0, 0])
    batch = trainer.task.batch("train", np.random.default_rng(0))
    with pytest.raises(tl.AnomalyError) as info:
        with tl.detect_anomaly():
            trainer.task.loss(trainer.model, batch)  # the step that meets the NaN
    message = str(info.value)
    assert message.startswith("Linear produced NaN") and "already held NaN" in message
    assert "test_reliability_faults.py" in message


# ----------------------------------------------------------------------------- core problems (xfail)
def test_training_stops_at_the_first_non_finite_loss_and_keeps_the_good_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    cfg = config_for(train_args(out, 12, 3))
    trainer = Trainer(cfg)
    real_batch = LanguageModelingTask.batch

    def batch(self, split, rng):
        if split == "train" and trainer.step == 5:
            trainer.model.transformer.h[0].mlp.c_fc.weight.data[0, 0] = np.nan
        return real_batch(self, split, rng)
    monkeypatch.setattr(LanguageModelingTask, "batch", batch)
    with pytest.raises(RuntimeError, match=r"step 5.*nan"):
        trainer.train()
    tensors, meta = load_checkpoint(out / "ckpt.safetensors")
    assert meta["step"] == 3 and all(np.isfinite(a).all() for a in tensors.values() if a.dtype.kind == "f")


def test_resuming_from_an_evaluation_checkpoint_does_not_repeat_the_evaluation(tmp_path):
    reference = Trainer(config_for(train_args(tmp_path / "a", 8, 4)))
    reference.train()
    crashed = Trainer(config_for(train_args(tmp_path / "b", 8, 4)))
    crashed.train(stop_after=6)  # as if killed at step 6: the file holds the evaluation of step 4
    resumed = Trainer(config_for(train_args(tmp_path / "b", 8, 4)), resume=True)
    assert resumed.step == 4
    resumed.train()
    assert resumed.train_losses == reference.train_losses  # this part holds
    assert resumed.history == reference.history


def test_an_interrupt_before_training_starts_says_no_checkpoint_was_saved(tmp_path, monkeypatch, capsys):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(LanguageModelingTask, "__init__", interrupted)
    assert main(train_args(tmp_path / "run", 6)) == 130
    assert "no checkpoint was saved" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["optimizer", "rng", "history"])
def test_resuming_from_an_incomplete_training_checkpoint_names_the_file_and_the_key(trained, tmp_path, missing):
    out = tmp_path / "run"
    out.mkdir()
    tensors, meta = load_checkpoint(trained[0] / "ckpt.safetensors")
    del meta[missing]
    save_checkpoint(out / "ckpt.safetensors", tensors, meta)  # valid checksums, incomplete content
    with pytest.raises(CheckpointError, match=rf"{out / 'ckpt.safetensors'}: .*{missing}"):
        Trainer(config_for(train_args(out, 8, 100)), resume=True)
