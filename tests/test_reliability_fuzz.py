"""Proof by fuzzing, end to end: the command line and the loaders on drawn arguments and on
damaged real files.

Every run must end with exit status 0, or a non-zero status and exactly one stderr line
starting "error:" (never a traceback, never "internal error"), within a time limit (a hang
fails the test), and must change no file outside the folder the command writes into
(``train``'s and ``compress quantize/prune``'s --out, a --json target).

Runs are in-process (``tinyllm.cli.main`` with an argument list) because starting Python
costs a second; a few true subprocess runs at the end check the real entry point. The
benchmark is stubbed (it times PyTorch for minutes); everything else really runs, on a tiny
run made here. Example counts are in the settings of each test (docs/RELIABILITY.md sums them).
"""
import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

import tinyllm.cli
import tinyllm.compress_cli as compress_cli
import tinyllm.lab.regularization as regularization
from tinyllm.checkpoint import load_checkpoint
from tinyllm.cli import build_parser, main
from tinyllm.data.tokenizers import load_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGULARIZATION = regularization.regularization_experiment
ARCH = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4"]
TIME_LIMIT = 60  # seconds for one run; the runs here take well under one
FUZZ = dict(deadline=None, suppress_health_check=list(HealthCheck))
REAL = {}


@pytest.fixture(scope="module", autouse=True)
def real_files(tmp_path_factory):
    """A real run (BPE tokenizer, so the tokenizer JSON has structure), its tokenizer file,
    a compressed model of it, and data files good and bad."""
    root = tmp_path_factory.mktemp("real")
    corpus = root / "corpus.txt"
    corpus.write_text("Once upon a time a small model read the same short story again and again, "
                      "and every time it knew a little more of what came next.\n" * 40)
    run = root / "run"
    assert main(["train", "--out", str(run), "--data-path", str(corpus), "--tokenizer", "bpe",
                 "--bpe-vocab-size", "300", "--max-iters", "4", "--eval-interval", "2", "--eval-iters", "1",
                 "--progress", "false", "--no-sample", "--warmup-iters", "1", *ARCH]) == 0
    assert main(["compress", "quantize", "--out", str(run), "--eval-iters", "1"]) == 0
    assert main(["train", "--preset", "cafe", "--out", str(root / "cafe"), "--max-iters", "1", "--eval-interval", "1",
                 "--eval-iters", "1", "--n-layer", "1", "--n-head", "2", "--n-kv-head", "1", "--n-embd", "16",
                 "--intermediate-size", "32", "--batch-size", "2", "--progress", "false", "--no-sample"]) == 0
    from tinyllm.train import Trainer
    Trainer.from_checkpoint(str(run)).task.tokenizer.save(root / "tokenizer.json")
    (root / "binary.bin").write_bytes(bytes(range(256)) * 8)
    (root / "a-file").write_text("not a folder")
    REAL.update(root=root, run=run, corpus=corpus, checkpoint=(run / "ckpt.safetensors").read_bytes(),
                quantized=(run / "quantized.safetensors").read_bytes(),
                tokenizer=(root / "tokenizer.json").read_bytes())


# ----------------------------------------------------------------------------- the oracle
@contextlib.contextmanager
def time_limit(seconds):
    def hung(signum, frame):
        raise AssertionError(f"no answer after {seconds} s: the run hangs")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def snapshot(folder):
    return {os.path.join(d, f): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(folder) for f in files}


def run_and_check(argv, capsys, workspace, may_write=()):
    """Run ``argv`` in-process; check the exit status, the stderr line and the files."""
    before = snapshot(workspace)
    capsys.readouterr()
    with time_limit(TIME_LIMIT), np.errstate(all="ignore"):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, (argv, err)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    event(f"exit status {code}")
    if code == 0:
        assert not errors, (argv, err)
    else:
        assert code in (1, 2) and len(errors) == 1, (argv, code, err)
        assert err.strip().splitlines()[-1] == errors[0], (argv, err)
        assert "internal error" not in errors[0], (argv, errors[0])
        # it names an option or a file of the command line (or, for memory, the sizes it weighed)
        named = [a for a in argv if a.startswith("--") and a.split("=")[0] in errors[0]]
        named += [a for a in argv if os.sep in a and os.path.dirname(a.rstrip(os.sep)) in errors[0]]
        assert named or any(word in errors[0] for word in ("argument", "not enough memory", "data_path", "dataset")), (
            argv, errors[0])
    allowed = [os.path.abspath(p) for p in may_write if p]
    after = snapshot(workspace)
    for path in set(before) | set(after):
        if before.get(path) != after.get(path):
            assert any(os.path.abspath(path) == a or os.path.abspath(path).startswith(a + os.sep) for a in allowed), (
                argv, "changed", path)
    return code, errors[0] if errors else None


def fresh_workspace():
    """A folder holding a copy of the real run, the corpus and the bad files."""
    folder = tempfile.mkdtemp(prefix="tinyllm-fuzz-")
    for name in ("corpus.txt", "tokenizer.json", "binary.bin", "a-file"):
        shutil.copy(REAL["root"] / name, folder)
    shutil.copytree(REAL["run"], os.path.join(folder, "run"))
    shutil.copytree(REAL["root"] / "cafe", os.path.join(folder, "cafe"))  # a base for finetune
    return folder


# ----------------------------------------------------------------------------- drawn argument lists
def _subparsers(parser):
    return parser._subparsers._group_actions[0].choices


def _options(parser):
    """option -> its argparse action, for every option of a parser (help aside)."""
    return {a.option_strings[-1]: a for a in parser._actions if a.option_strings and a.dest != "help"}


# values for options whose valid values only cost time (a huge --max-iters would run for days)
WORK = {"--max-iters", "--eval-iters", "--eval-interval", "--num-samples", "--max-new-tokens", "--iters", "--steps",
        "--finetune-iters", "--sentences", "--accumulate", "--heads", "--train-chars", "--warmup-iters", "--eval-limit"}
JUNK = ["0", "1", "2", "-1", "nan", "inf", "-inf", "1e309", "3.5", "abc", "", "none", "true", "\udcff", "ü",
        "9" * 40, "-5e-324", "0x10", " 1", "1_000"]
SMALL = ["0", "1", "2", "-1", "nan", "inf", "1e309", "3.5", "abc", "", "none", "\udcff", "0x10"]


def _valid_values(action):
    """Values of the option's own kind (choices, integers, numbers, booleans), so that many
    drawn runs get past the parser and do real work."""
    if action.choices:
        return [str(c) for c in action.choices]
    kind = getattr(action.type, "__name__", "str")
    return {"integer": ["1", "2", "3"], "number": ["0", "0.1", "0.5", "0.9"],
            "_parse_bool": ["true", "false", "yes", "0"]}.get(kind, ["x"])


def _value_pool(option, workspace):
    paths = [os.path.join(workspace, "run"), os.path.join(workspace, "run", "ckpt.safetensors"),
             os.path.join(workspace, "a-file"), os.path.join(workspace, "a-file", "x"),
             os.path.join(workspace, "nowhere"), os.path.join(workspace, "binary.bin"), "/proc/self", ""]
    pools = {
        "--out": paths + [os.path.join(workspace, "new-run")],
        "--from": [os.path.join(workspace, "cafe"), os.path.join(workspace, "run"), os.path.join(workspace, "nowhere"),
                   os.path.join(workspace, "a-file"), ""],
        "--targets": ["all-linear", "q_proj,v_proj", "nope", ",", ""],
        "--data-path": [os.path.join(workspace, "corpus.txt"), os.path.join(workspace, "binary.bin"),
                        os.path.join(workspace, "a-file"), os.path.join(workspace, "nowhere"), workspace, ""],
        "--json": [os.path.join(workspace, "r.json"), os.path.join(workspace, "run", "ckpt.safetensors"),
                   os.path.join(workspace, "run"), os.path.join(workspace, "a-file", "r.json"), ""],
        "--plot": [os.path.join(workspace, "p.png"), os.path.join(workspace, "run", "ckpt.safetensors"), ""],
        "--file": ["q.safetensors", "ckpt.safetensors", "../up.safetensors", "", ".", "sub/q.safetensors"],
        "--preset": ["default", "shakespeare-char", "S", "M", "seq2seq", "nope", ""],
        "--device": ["cpu", "cuda", "tpu", "strict", ""],
        "--model": ["gpt", "seq2seq", "bert", ""],
        "--dataset": ["tinytales", "shakespeare", "dates", "poems", ""],
        "--tokenizer": ["char", "bpe", "wordpiece", ""],
        "--schedule": ["cosine", "noam", "constant", "linear", ""],
        "--gelu-approximate": ["tanh", "none", "exact"],
        "--configs": ["S", "M", "S,M", "XL", "S,,M", ""],
        "--modules": ["lm_head", "transformer.wte", "transformer.h.0.attn.c_attn", "nope", "transformer.ln_f", ""],
        "--amounts": ["0,0.5", "0.5,1", "", ",", "nan", "0.9"],
        "--prompt": ["Once", "", "\udcff", "Zürich ☃", "<|endoftext|>", "a" * 40],
        "--peak-size": ["1", "64", "1000000", "0", "abc"],
    }
    return pools.get(option, SMALL if option in WORK else JUNK)


@st.composite
def argument_lists(draw, command, workspace, base):
    """``base`` (a cheap, valid command) followed by drawn options and values; argparse takes
    the last value of a repeated option, so a drawn one overrides the base's."""
    if command[0] == "compress":  # (its options live in the compress command's own parser)
        from tinyllm.compress_cli import build_parser as compress_parser
        sub = _subparsers(compress_parser())[command[1]]
    else:
        sub = _subparsers(build_parser())[command[0]]
    options = sorted(_options(sub).items())
    argv = list(base)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 9))
        if kind == 0:  # a stray word or an unknown option
            argv.append(draw(st.sampled_from(["--nope", "extra", "-x", "--", "--out=", "-h" if draw(st.booleans())
                                              else "--n"])))
            continue
        option, action = draw(st.sampled_from(options))
        argv.append(option)
        if action.nargs != 0 and draw(st.integers(0, 15)):  # (sometimes the value is missing)
            special = option in ("--out", "--data-path", "--json", "--plot", "--file", "--prompt", "--amounts",
                                 "--modules", "--from", "--targets")
            pool = _value_pool(option, workspace) if special or draw(st.booleans()) else _valid_values(action)
            argv.append(draw(st.sampled_from(pool)))
    return argv


def _may_write(argv):
    """The folders and files a command may change: --out of train, finetune (by default
    <--from>-chat) and compress quantize/prune, and --json."""
    values = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
    writes = [values.get("--json")]
    if argv[0] in ("train", "finetune") or argv[:2] in (["compress", "quantize"], ["compress", "prune"]):
        writes.append(values.get("--out"))
    if argv[0] == "finetune":
        writes.append(values.get("--from", "").rstrip(os.sep) + "-chat")
    return writes


def _fuzz(argv_strategy_args, data, capsys):
    workspace = fresh_workspace()
    cwd = os.getcwd()
    os.chdir(workspace)  # a default folder (runs/<preset>) would land here, and count as a change
    try:
        command, base = argv_strategy_args
        base = [part.replace("{ws}", workspace) for part in base]
        argv = data.draw(argument_lists(command, workspace, base), label="argv")
        run_and_check(argv, capsys, workspace, _may_write(argv))
    finally:
        os.chdir(cwd)
        shutil.rmtree(workspace, ignore_errors=True)


TRAIN_BASE = ["train", "--out", "{ws}/new-run", "--data-path", "{ws}/corpus.txt", "--no-sample", "--progress", "false",
              *ARCH, "--max-iters", "2", "--eval-interval", "1", "--eval-iters", "1"]


@settings(max_examples=150, **FUZZ)
@given(data=st.data())
def test_fuzz_train_arguments(data, capsys):
    _fuzz((("train",), TRAIN_BASE), data, capsys)


@settings(max_examples=120, **FUZZ)
@given(data=st.data())
def test_fuzz_sample_arguments(data, capsys):
    _fuzz((("sample",), ["sample", "--out", "{ws}/run", "--max-new-tokens", "2"]), data, capsys)


@settings(max_examples=80, **FUZZ)
@given(data=st.data())
def test_fuzz_eval_arguments(data, capsys):
    _fuzz((("eval",), ["eval", "--out", "{ws}/run", "--eval-iters", "1"]), data, capsys)


@settings(max_examples=60, **FUZZ)
@given(data=st.data())
def test_fuzz_finetune_arguments(data, capsys):
    _fuzz((("finetune",), ["finetune", "--from", "{ws}/cafe", "--out", "{ws}/chat", "--lora", "--max-iters", "1",
                           "--batch-size", "2", "--eval-limit", "1"]), data, capsys)


COMPRESS_BASES = {
    "flops": ["--preset", "S", *ARCH, "--steps", "1", "--peak-size", "64"],
    "memory": ["--preset", "S", *ARCH, "--accumulate", "2"],
    "quantize": ["--out", "{ws}/run", "--eval-iters", "1"],
    "prune": ["--out", "{ws}/run", "--eval-iters", "1", "--amounts", "0,0.5"],
    "distill": ["--out", "{ws}/run", "--iters", "1", "--eval-iters", "1", "--student-layers", "1",
                "--student-embd", "8", "--student-heads", "2"],
    "precision": ["--preset", "S", *ARCH, "--steps", "1"],
    "bias": ["--iters", "1", "--sentences", "40"],
    "regularize": ["--iters", "1", "--train-chars", "2000", "--eval-iters", "1", "--data-path", "{ws}/corpus.txt"],
    "eval": ["{ws}/run/quantized.safetensors", "--eval-iters", "1"],
}


@settings(max_examples=150, **FUZZ)
@given(data=st.data(), action=st.sampled_from(sorted(COMPRESS_BASES)))
def test_fuzz_compress_arguments(data, action, capsys, monkeypatch):
    # one small model and one setting instead of five: the command is the subject, not the experiment
    monkeypatch.setattr(compress_cli, "regularization_experiment", lambda *a, **k: REGULARIZATION(
        *a, **k, settings=regularization.DEFAULT_SETTINGS[:1], n_layer=1, n_head=2, n_embd=16))
    _fuzz((("compress", action), ["compress", action, *COMPRESS_BASES[action]]), data, capsys)


@settings(max_examples=60, **FUZZ)
@given(data=st.data())
def test_fuzz_bench_arguments(data, capsys, monkeypatch):
    """The benchmark and the profile are stubbed (they run for minutes); what reaches them must
    be valid: known configs, rounds >= 1, writable outputs."""
    from tinyllm.bench import CONFIGS

    def checked_run_bench(device, configs, rounds, json_path, quick, plot_path, end_to_end):
        assert device in ("cpu", "cuda") and configs and set(configs) <= set(CONFIGS)
        assert rounds is None or (isinstance(rounds, int) and rounds >= 1)
        assert end_to_end in (True, False)
        for path in (json_path, plot_path):
            assert path is None or not path.endswith(".safetensors")
    def checked_profile(name, device):
        assert device in ("cpu", "cuda") and name in CONFIGS
        return "profile", {}
    monkeypatch.setattr(tinyllm.cli, "run_bench", checked_run_bench)
    monkeypatch.setattr(tinyllm.cli, "profile_report", checked_profile)
    _fuzz((("bench",), ["bench", "--quick"]), data, capsys)


@settings(max_examples=40, **FUZZ)
@given(argv=st.lists(st.sampled_from(["demo", "list", "release", "--out", "--format", "py", "ipynb", "--tasks",
                                      "--assignment", "nope", "x", "-h", "--nope"]), max_size=4))
def test_fuzz_demo_and_assign_end_in_one_error_line(argv, capsys, monkeypatch):
    """demo, and the assignments' command; grading and the self-check run students' code and
    are left out."""
    workspace = tempfile.mkdtemp(prefix="tinyllm-fuzz-")
    monkeypatch.chdir(workspace)
    try:
        command = ["demo"] if argv[:1] == ["demo"] else ["assign"]
        argv = command + [os.path.join(workspace, a) if a == "x" else a for a in argv[1 if command == ["demo"] else 0:]]
        before = snapshot(workspace)
        with time_limit(TIME_LIMIT):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
        err = capsys.readouterr().err
        assert "Traceback" not in err and code in (0, 1, 2), (argv, code, err)
        if code:  # the one-line rule, for assign as for every command
            assert len(err.strip().splitlines()) == 1 and err.startswith("error:"), (argv, err)
        if command == ["demo"]:
            assert snapshot(workspace) == before
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def test_assign_usage_mistakes_are_one_error_line(capsys):
    with pytest.raises(SystemExit):
        main(["assign", "frobnicate"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")


# ----------------------------------------------------------------------------- damaged real files
def _split(data):
    length = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + length]), data[8 + length:]


def _join(header, body):
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def _refresh_checksums(header, body):
    """A header edited on purpose, with the checksums recomputed: a forged file gets past
    the checksums and must be caught by what reads the content."""
    from tinyllm.checkpoint import _sha256_text, _tensors_sha256
    info = header["__metadata__"]
    with contextlib.suppress(UnicodeEncodeError):  # (text UTF-8 cannot hold: left stale)
        info["meta_sha256"] = _sha256_text(info["meta"])
    try:
        import safetensors.numpy
        tensors = safetensors.numpy.load(_join(header, body))
        info["tensors_sha256"] = _tensors_sha256(tensors)
    except Exception:  # noqa: BLE001 - a header the library refuses: the loader must refuse it too
        pass
    return header


class Damaged(bytes):
    """Damaged file contents that print as what was done to them (not as 300 KB of bytes)."""

    def __new__(cls, data, how):
        self = super().__new__(cls, data)
        self.how = how
        return self

    def __repr__(self):
        return f"<{len(self)} bytes: {self.how}>"


@st.composite
def damaged_checkpoints(draw):
    """A damaged copy of the real checkpoint (bytes that print as what was done)."""
    good = REAL["checkpoint"]
    how = draw(st.sampled_from(["truncate", "bit flips", "header length", "swap tensors", "tensor edit",
                                "rename tensor", "meta edit", "nested meta", "huge number", "meta junk"]))
    header, body = _split(good)
    names = sorted(k for k in header if k != "__metadata__")
    forged = draw(st.booleans())  # recompute the checksums (only content checks can tell)
    if how == "truncate":
        n = draw(st.integers(0, len(good) - 1))
        return Damaged(good[:n], f"truncated to {n} bytes")
    if how == "bit flips":
        data = bytearray(good)
        flips = [(draw(st.integers(0, len(data) - 1)), draw(st.integers(0, 7))) for _ in range(draw(st.integers(1, 8)))]
        for offset, bit in flips:
            data[offset] ^= 1 << bit
        return Damaged(data, f"bits flipped (offset, bit): {flips}")
    if how == "header length":
        length = draw(st.sampled_from([0, 1, 7, 2**63, 2**64 - 1, len(good)]))
        return Damaged(struct.pack("<Q", length) + good[8:], f"header length {length}")
    if how == "swap tensors":
        a, b = draw(st.lists(st.sampled_from(names), min_size=2, max_size=2, unique=True))
        how = f"swapped {a} and {b}"
        header[a]["data_offsets"], header[b]["data_offsets"] = header[b]["data_offsets"], header[a]["data_offsets"]
        header[a]["shape"], header[b]["shape"] = header[b]["shape"], header[a]["shape"]
        header[a]["dtype"], header[b]["dtype"] = header[b]["dtype"], header[a]["dtype"]
    elif how == "tensor edit":
        name = draw(st.sampled_from(names))
        field = draw(st.sampled_from(["shape", "dtype", "data_offsets"]))
        header[name][field] = value = draw(st.sampled_from(
            {"shape": [[], [0], [10**30], [-1, 4], [1, 1, 1, 1, 1], "x"],
             "dtype": ["F16", "BF16", "I8", "BOOL", "F8_E4M3", "OBJ", 7],
             "data_offsets": [[0, 0], [0, 10**20], [-4, 4], [5], None]}[field]))
        how = f"{name}'s {field} set to {value!r}"
    elif how == "rename tensor":
        name = draw(st.sampled_from(names))
        new = draw(st.sampled_from(["model.transformer.h.99999999999999999999.ln_1.weight", "model.h.5000.x",
                                    "model." + "9" * 5000, "", "__metadata__", "model.transformer.h.-1.ln_1.weight"]))
        header[new] = header.pop(name)
        how = f"{name} renamed {new[:60]!r}"
    else:
        meta = json.loads(header["__metadata__"]["meta"])
        if how == "meta edit":
            path = draw(st.sampled_from([("config",), ("tokenizer",), ("step",), ("optimizer",), ("history",),
                                         ("rng",), ("config", "n_layer"), ("config", "block_size"),
                                         ("config", "vocab"), ("config", "batch_size"), ("config", "model"),
                                         ("config", "tokenizer"), ("tokenizer", "merges"), ("tokenizer", "type"),
                                         ("tokenizer", "pre_tokenizer"), ("tokenizer", "special_tokens"),
                                         ("optimizer", "param_groups"), ("rng", "batch"), ("history", "step")]))
            value = draw(st.one_of(st.sampled_from([None, -1, 0, 10**30, 1e308, "x", [], {}, [[1, 2]], True,
                                                    "(a+)+$", [[97, 97]] * 3, 2**63, -0.0]),
                                   st.recursive(st.none() | st.integers() | st.text(max_size=5),
                                                lambda kids: st.lists(kids, max_size=3), max_leaves=6)))
            target = meta
            for key in path[:-1]:
                target = target[key]
            if draw(st.booleans()) and path[-1] in target:
                del target[path[-1]]
                how = f"meta{list(path)} deleted"
            else:
                target[path[-1]] = value
                how = f"meta{list(path)} = {repr(value)[:60]}"
            text = json.dumps(meta)
        elif how == "nested meta":
            depth = draw(st.sampled_from([100, 5_000, 200_000]))
            key = draw(st.sampled_from(["config", "tokenizer", "extra", "history"]))
            text = json.dumps(meta)[:-1] + f', "{key}": ' + "[" * depth + "]" * depth + "}"
            how = f"meta[{key!r}] nested {depth} deep"
        elif how == "huge number":
            key = draw(st.sampled_from(["step", "extra"]))
            text = json.dumps({k: v for k, v in meta.items() if k != key})[:-1] + f', "{key}": 1{"0" * 5000}}}'
            how = f"meta[{key!r}] a 5001-digit number"
        else:  # meta junk
            text = draw(st.sampled_from(["", "null", "[]", "{", '"x"', "{}", "\ud800"]))
            how = f"meta text {text!r}"
        header["__metadata__"]["meta"] = text
    if forged:
        header = _refresh_checksums(header, body)
    return Damaged(_join(header, body), how + (", checksums recomputed" if forged else ""))


COMMANDS_ON_A_RUN = [
    ["sample", "--out", "{run}", "--max-new-tokens", "2", "--prompt", "Once"],
    ["eval", "--out", "{run}", "--eval-iters", "1"],
    ["train", "--out", "{run}", "--resume", "--max-iters", "6", "--eval-iters", "1", "--no-sample",
     "--progress", "false"],
    ["compress", "quantize", "--out", "{run}", "--eval-iters", "1"],
    ["compress", "eval", "{run}/ckpt.safetensors", "--eval-iters", "1"],
]


@settings(max_examples=250, **FUZZ)
@given(data=st.data(), command=st.sampled_from(COMMANDS_ON_A_RUN))
def test_fuzz_damaged_checkpoints_through_every_command(data, command, capsys):
    """Truncations, bit flips, header edits, swapped and renamed tensors (layer numbers of
    twenty digits), edited and junk metadata, JSON nested 200,000 deep, 5,000-digit
    numbers; with the checksums left stale or recomputed (forged)."""
    workspace = fresh_workspace()
    try:
        damaged = data.draw(damaged_checkpoints(), label="damage")
        run = os.path.join(workspace, "run")
        with open(os.path.join(run, "ckpt.safetensors"), "wb") as f:
            f.write(damaged)
        argv = [part.replace("{run}", run) for part in command]
        writes = [run] if argv[0] == "train" or argv[1] == "quantize" else []
        code, error = run_and_check(argv, capsys, workspace, writes)
        if code and "ckpt.safetensors" not in (error or "") and argv[:2] != ["compress", "eval"]:
            # a refusal about the file names it (other refusals: e.g. NaN logits when sampling)
            assert any(word in error for word in ("logits", "NaN", "memory", "vocabulary")), error
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


@st.composite
def damaged_tokenizers(draw):
    """A damaged copy of the real tokenizer file (bytes that print as what was done)."""
    good = REAL["tokenizer"]
    how = draw(st.sampled_from(["truncate", "bit flips", "edit", "nested", "huge number"]))
    if how == "truncate":
        n = draw(st.integers(0, len(good) - 1))
        return Damaged(good[:n], f"truncated to {n} bytes")
    if how == "bit flips":
        data = bytearray(good)
        flips = [(draw(st.integers(0, len(data) - 1)), draw(st.integers(0, 7))) for _ in range(draw(st.integers(1, 6)))]
        for offset, bit in flips:
            data[offset] ^= 1 << bit
        return Damaged(data, f"bits flipped (offset, bit): {flips}")
    data = json.loads(good)
    if how == "edit":
        key = draw(st.sampled_from(["type", "version", "pre_tokenizer", "merges", "special_tokens", "byte_ids",
                                    "pattern", "chars"]))
        data[key] = value = draw(st.one_of(
            st.sampled_from([None, 1, 2, "bpe", "char", "gpt2", "none", "(a+)+$", [], [[97, 97]] * 2, [[256, 256]],
                             [[97, 97]] + [[256 + i, 256 + i] for i in range(64)], list(range(256))[::-1],
                             list(range(255)), ["<|endoftext|>"] * 2, ["\ud800"], [""], 10**30]),
            st.recursive(st.none() | st.integers(-300, 300) | st.text(max_size=4),
                         lambda kids: st.lists(kids, max_size=3), max_leaves=8)))
        return Damaged(json.dumps(data).encode("utf-8", "surrogatepass"), f"{key} = {repr(value)[:60]}")
    if how == "nested":
        depth = draw(st.sampled_from([50, 3_000, 100_000]))
        text = json.dumps(data)[:-1].encode() + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
        return Damaged(text, f"a list nested {depth} deep")
    return Damaged(json.dumps(data)[:-1].encode() + b', "version": 1' + b"0" * 5000 + b"}", "a 5001-digit version")


@settings(max_examples=300, **FUZZ)
@given(data=st.data(), text=st.text(max_size=60))
def test_fuzz_damaged_tokenizer_files(data, text, tmp_path_factory):
    """A damaged tokenizer file loads, or raises ValueError naming the file; what loads
    encodes any text in bounded time (no pattern from the file runs) and round-trips it."""
    damaged = data.draw(damaged_tokenizers(), label="tokenizer file")
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    path.write_bytes(damaged)
    with time_limit(TIME_LIMIT):
        try:
            tokenizer = load_tokenizer(path)
        except ValueError as error:
            assert str(path) in str(error) and len(str(error)) < 600, str(error)[:300]
            return
        try:
            ids = tokenizer.encode(text)
        except ValueError as error:  # a char tokenizer and characters it lacks
            assert "not in the vocabulary" in str(error)
            return
        decoded = tokenizer.decode(ids)
    assert decoded == text or tokenizer.type_name == "char"


@settings(max_examples=80, **FUZZ)
@given(data=st.data())
def test_fuzz_damaged_tokenizers_inside_a_checkpoint(data, capsys):
    """The same damage inside a run's checkpoint (checksums valid): sample ends in exit 0 or
    one error line naming the file."""
    workspace = fresh_workspace()
    try:
        damaged = data.draw(damaged_tokenizers(), label="tokenizer")
        try:
            tokenizer = json.loads(damaged.decode("utf-8", "surrogatepass"))
        except (ValueError, RecursionError):
            tokenizer = damaged.decode("latin-1")  # not JSON: stored as a string
        path = os.path.join(workspace, "run", "ckpt.safetensors")
        tensors, meta = load_checkpoint(path)
        header, body = _split(open(path, "rb").read())
        meta["tokenizer"] = tokenizer
        try:
            header["__metadata__"]["meta"] = json.dumps(meta)
        except RecursionError:
            return
        with open(path, "wb") as f:
            f.write(_join(_refresh_checksums(header, body), body))
        code, error = run_and_check(["sample", "--out", os.path.join(workspace, "run"), "--max-new-tokens", "3",
                                     "--prompt", "Once"], capsys, workspace)
        if code:
            assert path in error or "--prompt" in error, error
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


# ----------------------------------------------------------------------------- the real entry point
SUBPROCESS_CASES = [
    # (argv with {ws}, exit status, a fragment of the one error line)
    (["train", "--out", "{ws}/run", "--data-path", "{ws}/corpus.txt", *ARCH], 1, "holds a trained run"),
    (["train", "--out", "{ws}/run", "--resume", "--n-embd", "64"], 2, "--n-embd 64: the run in"),
    (["train", "--out", "{ws}/a-file"], 1, "a file is there"),
    (["train", "--out", "{ws}/new", "--prompt", b"\xff\xfe".decode("utf-8", "surrogateescape")], 2,
     "--prompt must be text that UTF-8 can store"),
    (["sample", "--out", "{ws}/run/quantized.safetensors"], 1, "a compressed model"),
    (["eval", "--out", "{ws}/run", "--eval-iters", "0"], 2, "--eval-iters: expected an integer in [1, 10000]"),
    (["compress", "quantize", "--out", "{ws}/run", "--file", "ckpt.safetensors"], 2, "training checkpoint"),
    (["sample", "--out", "{ws}/binary.bin"], 1, "binary.bin: "),
    ([], 2, "the following arguments are required"),
]


def test_the_real_entry_point_prints_one_error_line(capsys):
    """``python -m tinyllm`` in its own process (the real argv decoding, exit status and
    stderr), on a few of the cases above."""
    workspace = fresh_workspace()
    try:
        before = snapshot(workspace)
        for argv, status, fragment in SUBPROCESS_CASES:
            argv = [a.replace("{ws}", workspace) for a in argv]
            result = subprocess.run([sys.executable, "-m", "tinyllm", *argv], cwd=ROOT, capture_output=True,
                                    timeout=120, env={**os.environ, "PYTHONPATH": ROOT})
            err = result.stderr.decode("utf-8", "replace")
            lines = err.strip().splitlines()
            assert result.returncode == status, (argv, result.returncode, err)
            assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], (argv, err)
        assert snapshot(workspace) == before
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
