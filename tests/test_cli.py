"""The command line: train, sample, eval, resume, signals, and what each command refuses.

Every refusal here is checked the same way: a non-zero exit status, exactly one stderr line,
starting "error:", naming the option or file, and nothing changed on disk.
"""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import given, settings, strategies as st

import tinyllm as tl
from tinyllm.checkpoint import load_checkpoint, save_checkpoint
from tinyllm.cli import _config_from_args, build_parser, main
from tinyllm.models import GPT, GPTConfig, LlamaConfig
from tinyllm.models.llama import swiglu_hidden_size
from tinyllm.generate import generate_beam
from tinyllm.train import PRESETS, Trainer, TrainConfig

# characters (the default preset learns a BPE vocabulary): runs here start in milliseconds and
# the vocabulary's limits are easy to name
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
        "--eval-iters", "1", "--progress", "false", "--warmup-iters", "2", "--tokenizer", "char"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = {}


@pytest.fixture(scope="module", autouse=True)
def small_corpus(tmp_path_factory):
    """A 6 KB text instead of the shipped corpus: each run starts in milliseconds."""
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    path.write_text("Once upon a time a small model read the same short story again and again, "
                    "and every time it knew a little more of what came next.\n" * 40)
    CORPUS["path"] = str(path)


def train_args(out, max_iters=4, *extra):
    return ["train", "--out", str(out), "--max-iters", str(max_iters), "--eval-interval", "2",
            "--data-path", CORPUS["path"], "--no-sample", *TINY, *extra]


def run_cli(argv, capsys):
    """``(exit status, stdout, stderr)`` of ``python -m tinyllm ARGV``, run in-process."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(code, err, *fragments, status=None):
    lines = err.strip().splitlines()
    assert code != 0 and (status is None or code == status), (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "internal error" not in lines[0] and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def tree(folder):
    """path -> bytes of every file under ``folder``."""
    return {os.path.join(d, f): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(folder) for f in files}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(train_args(out)) == 0
    return out


# ----------------------------------------------------------------------------- the happy path
def test_train_sample_eval(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "--out", out, "--max-iters", "6", "--eval-interval", "3",
                 "--max-new-tokens", "12", *TINY]) == 0
    printed = capsys.readouterr().out
    assert '"val_loss"' in printed and os.path.exists(os.path.join(out, "ckpt.safetensors"))
    assert main(["sample", "--out", out, "--prompt", "The", "--max-new-tokens", "8", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("The")
    assert main(["eval", "--out", out, "--json", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["step"] == 6 and metrics["val"]["perplexity"] > 1
    assert main(["train", "--out", out, "--resume", "--max-iters", "9", "--no-sample"]) == 0
    assert '"step": 9' in capsys.readouterr().out


def config_of(*argv):
    """The TrainConfig ``python -m tinyllm train ARGV`` would run."""
    return _config_from_args(build_parser().parse_args(["train", *argv]), "runs/x")


def test_the_model_flags_set_fields_of_the_families_config():
    assert config_of().model == PRESETS["default"]["model"]
    shakespeare = PRESETS["shakespeare-char"]["model"]
    assert config_of("--preset", "shakespeare-char", "--dropout", "0.2").model == dataclasses.replace(
        shakespeare, dropout=0.2)
    # another family than the preset's: a small model of it
    llama = config_of("--model", "llama").model
    assert llama == LlamaConfig(vocab_size=llama.vocab_size, n_layer=4, n_head=4, n_embd=128, block_size=64)
    gpt = config_of("--preset", "cafe", "--model", "gpt", "--block-size", "96").model
    assert gpt == GPTConfig(vocab_size=gpt.vocab_size, n_layer=4, n_head=4, n_embd=128, block_size=96)
    # a Llama's derived sizes follow the flags (multi-head stays so, the SwiGLU width keeps
    # Llama's rule), and a preset's own choices stay
    wide = config_of("--model", "llama", "--n-head", "8", "--n-embd", "256").model
    assert (wide.n_kv_head, wide.intermediate_size) == (8, swiglu_hidden_size(256))
    cafe = config_of("--preset", "cafe", "--n-head", "8").model
    assert (cafe.n_head, cafe.n_kv_head, cafe.intermediate_size) == (8, 2, 344)


def test_out_may_name_the_checkpoint_file_itself(run, capsys):
    code, out, _ = run_cli(["eval", "--out", str(run / "ckpt.safetensors"), "--eval-iters", "1"], capsys)
    assert code == 0 and json.loads(out)["step"] == 4


def test_max_new_tokens_zero_generates_nothing(run, capsys):
    code, out, _ = run_cli(["sample", "--out", str(run), "--prompt", "Once", "--max-new-tokens", "0",
                            "--num-samples", "2"], capsys)
    assert code == 0 and out.split("\n")[::2][:2] == ["Once", "Once"]


# ----------------------------------------------------------------------------- 1. never overwritten silently
def test_a_finished_run_is_never_overwritten_silently(run, capsys):
    before = tree(run)
    code, _, err = run_cli(train_args(run, 2), capsys)
    assert_one_error_line(code, err, str(run / "ckpt.safetensors"), "--resume", "--overwrite", status=1)
    assert tree(run) == before


def test_overwrite_keeps_the_old_checkpoint_until_the_new_runs_first_save(tmp_path, monkeypatch, capsys):
    from tinyllm.train import Trainer
    out = tmp_path / "run"
    assert main(train_args(out)) == 0
    old = (out / "ckpt.safetensors").read_bytes()
    seen = []
    real_save = Trainer.save

    def save(self, path=None):
        backup = out / "ckpt.safetensors.bak"
        seen.append((backup.exists() and backup.read_bytes() == old, (out / "ckpt.safetensors").exists()))
        result = real_save(self, path)
        seen.append(backup.exists())
        return result
    monkeypatch.setattr(Trainer, "save", save)
    assert main(train_args(out, 4, "--overwrite", "--seed", "7")) == 0
    assert seen[:3] == [(True, False), False, (False, True)]  # set aside, then gone after the first save
    assert not (out / "ckpt.safetensors.bak").exists()
    assert load_checkpoint(out / "ckpt.safetensors")[1]["config"]["seed"] == 7


def test_an_overwrite_that_saves_nothing_puts_the_old_run_back(tmp_path, monkeypatch, capsys):
    from tinyllm.train import LanguageModelingTask
    out = tmp_path / "run"
    assert main(train_args(out)) == 0
    old = tree(out)
    capsys.readouterr()

    def broken(self, split, rng):
        raise RuntimeError("the disk went away")
    monkeypatch.setattr(LanguageModelingTask, "batch", broken)
    code, _, err = run_cli(train_args(out, 4, "--overwrite"), capsys)
    assert code == 1 and err.strip().splitlines()[-1] == "error: the disk went away"
    assert tree(out) == old  # the earlier run is back in place, no backup left


def test_a_backup_left_by_a_killed_overwrite_is_never_dropped_silently(run, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "ckpt.safetensors.bak").write_bytes((run / "ckpt.safetensors").read_bytes())
    code, _, err = run_cli(train_args(out), capsys)
    assert_one_error_line(code, err, "ckpt.safetensors.bak", "--overwrite", status=1)
    code, _, err = run_cli(train_args(out, 6, "--resume"), capsys)
    assert_one_error_line(code, err, "no checkpoint at", "rename it to ckpt.safetensors", status=1)
    assert sorted(os.listdir(out)) == ["ckpt.safetensors.bak"]


# ----------------------------------------------------------------------------- 2. --resume needs no repeated flags
def test_resume_takes_model_data_and_tokenizer_from_the_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_args(out, 4, "--dropout", "0.1")) == 0
    # no architecture, data or tokenizer flags: all from the checkpoint
    code, printed, err = run_cli(["train", "--out", str(out), "--resume", "--max-iters", "6",
                                  "--eval-iters", "2", "--no-sample"], capsys)
    assert code == 0, err
    assert '"step": 6' in printed
    config = load_checkpoint(out / "ckpt.safetensors")[1]["config"]
    assert (config["model"]["n_embd"], config["model"]["dropout"], config["data_path"], config["eval_iters"]) == (
        16, 0.1, CORPUS["path"], 2)
    # repeating a flag with the checkpoint's value is fine
    assert main(["train", "--out", str(out), "--resume", "--max-iters", "7", "--n-embd", "16", "--no-sample"]) == 0


@pytest.mark.parametrize("flag, value, saved", [("--n-embd", "32", "n_embd = 16"), ("--n-layer", "3", "n_layer = 1"),
                                               ("--model", "llama", "model = 'gpt'"),
                                               ("--tokenizer", "bpe", "tokenizer = 'char'"),
                                               ("--learning-rate", "0.5", "learning_rate = 0.001")])
def test_resume_refuses_a_flag_that_contradicts_the_checkpoint(run, capsys, flag, value, saved):
    before = tree(run)
    code, _, err = run_cli(["train", "--out", str(run), "--resume", "--max-iters", "8", flag, value], capsys)
    assert_one_error_line(code, err, f"{flag} {value}", saved, "--max-iters", status=2)
    assert tree(run) == before


def test_resume_refuses_a_flag_the_runs_model_does_not_have(run, capsys):
    before = tree(run)
    code, _, err = run_cli(["train", "--out", str(run), "--resume", "--n-kv-head", "1"], capsys)
    assert_one_error_line(code, err, "--n-kv-head: a gpt model has no n_kv_head (a setting of llama only)", status=2)
    assert tree(run) == before


def test_a_run_saved_with_a_flat_config_samples_evaluates_and_resumes(run, tmp_path, capsys):
    """A checkpoint as versions before TrainConfig.model wrote it: the model's fields flat among
    the run's (everything else in the file is as this version writes it)."""
    tensors, meta = load_checkpoint(run / "ckpt.safetensors")
    nested = meta["config"]
    flat = {**{k: v for k, v in nested.items() if k != "model"}, "model": "gpt", "d_ff": 512, "n_kv_head": None,
            "intermediate_size": None, "rope_theta": 10000.0,
            **{k: v for k, v in nested["model"].items() if k not in ("family", "vocab_size", "layer_norm_eps")}}
    meta["config"] = flat
    old = tmp_path / "old"
    save_checkpoint(old / "ckpt.safetensors", tensors, meta)
    outputs = {}
    for folder in (run, old):
        outputs[folder] = [run_cli(argv, capsys)[:2] for argv in (
            ["eval", "--out", str(folder), "--eval-iters", "2"],
            ["sample", "--out", str(folder), "--max-new-tokens", "12", "--temperature", "0"])]
    assert outputs[old] == outputs[run] and outputs[old][0][0] == 0
    code, printed, err = run_cli(["train", "--out", str(old), "--resume", "--max-iters", "6", "--n-embd", "16",
                                  "--no-sample"], capsys)
    assert code == 0, err
    assert '"step": 6' in printed
    assert load_checkpoint(old / "ckpt.safetensors")[1]["config"]["model"] == nested["model"]  # now nested


def test_resume_and_overwrite_exclude_each_other(run, capsys):
    code, _, err = run_cli(["train", "--out", str(run), "--resume", "--overwrite"], capsys)
    assert_one_error_line(code, err, "--resume and --overwrite", status=2)


# ----------------------------------------------------------------------------- 3. --out checked before training
def _out_cases(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cases = [(a_file, "a file is there"), (a_file / "run", "cannot create the folder"),
             ("/proc/self/tinyllm-run", "cannot create the folder"), ("/proc/self", "cannot write in")]
    if os.geteuid() != 0:  # root writes into read-only folders
        read_only = tmp_path / "read-only"
        read_only.mkdir(mode=0o500)
        cases.append((read_only, "cannot write in"))
    return cases


def test_out_is_checked_before_any_work(tmp_path, monkeypatch, capsys):
    import tinyllm.train as train

    def no_work(*args, **kwargs):
        raise AssertionError("the work started before --out was checked")
    monkeypatch.setattr(train, "make_task", no_work)
    for out, problem in _out_cases(tmp_path):
        code, _, err = run_cli(train_args(out), capsys)
        assert_one_error_line(code, err, f"--out {out}", problem, status=1)


# ----------------------------------------------------------------------------- 4. checkpoints that are not runs
def _not_a_run(folder, run, kind):
    """A checkpoint file in ``folder`` that is valid safetensors but not a usable run."""
    tensors, meta = load_checkpoint(run / "ckpt.safetensors")
    path = folder / "ckpt.safetensors"
    folder.mkdir()
    if kind == "plain safetensors":
        safetensors.numpy.save_file({"x": np.zeros(3, np.float32)}, str(path))
        return path, "not a tinyllm checkpoint"
    if kind == "no config":
        meta.pop("config")
        problem = "holds no run config"
    elif kind == "config is a list":
        meta["config"] = [1, 2]
        problem = "expected a JSON object"
    elif kind == "bad config value":
        meta["config"]["model"]["n_layer"] = "four"
        problem = "n_layer must be an integer, got 'four'"
    elif kind == "config out of range":
        meta["config"]["model"]["n_head"] = 3
        problem = "n_embd must be divisible by n_head=3"
    elif kind == "no tokenizer":
        meta.pop("tokenizer")
        problem = "holds no tokenizer"
    elif kind == "tokenizer with a pattern":
        meta["tokenizer"] = {"type": "bpe", "version": 1, "pattern": "(a+)+$", "merges": [], "special_tokens": []}
        problem = "regular expression of its own"
    elif kind == "weights of another shape":
        tensors["model.transformer.wpe.weight"] = np.zeros((3, 16), np.float32)
        problem = "model.transformer.wpe.weight has shape (3, 16), the config gives (16, 16)"
    elif kind == "a layer too many":
        tensors["model.transformer.h.99999999999.ln_1.weight"] = np.zeros(16, np.float32)
        problem = "'model.transformer.h.99999999999.ln_1.weight' is not a weight of this model"
    save_checkpoint(path, tensors, meta)
    return path, problem


NOT_A_RUN = ["plain safetensors", "no config", "config is a list", "bad config value", "config out of range",
             "no tokenizer", "tokenizer with a pattern", "weights of another shape", "a layer too many"]


@pytest.mark.parametrize("kind", NOT_A_RUN)
def test_checkpoints_that_are_not_runs_give_one_line_naming_the_file(run, tmp_path, capsys, kind):
    folder = tmp_path / "other"
    path, problem = _not_a_run(folder, run, kind)
    before = tree(tmp_path)
    for argv in (["sample", "--out", str(folder)], ["eval", "--out", str(path)],
                 ["train", "--out", str(folder), "--resume"],
                 ["compress", "quantize", "--out", str(folder), "--eval-iters", "1"],
                 ["compress", "prune", "--out", str(folder), "--eval-iters", "1"],
                 ["compress", "distill", "--out", str(folder), "--iters", "1", "--eval-iters", "1"],
                 ["compress", "eval", str(path), "--eval-iters", "1"]):
        code, _, err = run_cli(argv, capsys)
        if argv[:2] == ["compress", "eval"] and kind in ("weights of another shape", "a layer too many"):
            problem_here = "not a compressed model"  # (its config and tokenizer are fine: checked first)
        else:
            problem_here = problem
        assert_one_error_line(code, err, str(path), problem_here, status=1)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("edit, problem", [
    (lambda m: m["optimizer"]["param_groups"][0].update(betas=["x", 0.9]), "optimizer or random-generator state"),
    (lambda m: m["optimizer"]["param_groups"][0].update(eps=-1.0), "eps must be a finite number >= 0, got -1.0"),
    (lambda m: m["rng"].update(batch={"bit_generator": "MT19937"}), "optimizer or random-generator state"),
    (lambda m: m.update(step=-3), "its step is -3, not an integer >= 0"),
    (lambda m: m["history"].update(step=[2, 4, 6]), "its history is not lists of numbers of one length"),
    (lambda m: m.update(train_losses=["x"]), "its train_losses are not a list of numbers"),
])
def test_a_forged_training_state_is_refused_before_training(run, tmp_path, capsys, edit, problem):
    """Checksums recomputed (a forger's file): what the trainer restores is checked too,
    so a bad value never surfaces in the middle of training."""
    tensors, meta = load_checkpoint(run / "ckpt.safetensors")
    edit(meta)
    path = tmp_path / "run" / "ckpt.safetensors"
    save_checkpoint(path, tensors, meta)
    for argv in (["train", "--out", str(path.parent), "--resume", "--max-iters", "9"], ["eval", "--out", str(path)]):
        code, _, err = run_cli(argv, capsys)
        assert_one_error_line(code, err, str(path), problem, status=1)


def test_a_compressed_model_is_not_taken_for_a_run(run, tmp_path, capsys):
    code, _, _ = run_cli(["compress", "quantize", "--out", str(run), "--eval-iters", "1",
                          "--file", "q.safetensors"], capsys)
    assert code == 0
    quantized = run / "q.safetensors"
    for argv in (["eval", "--out", str(quantized)], ["sample", "--out", str(quantized)]):
        code, _, err = run_cli(argv, capsys)
        assert_one_error_line(code, err, str(quantized), "compress eval", status=1)
    os.remove(quantized)


def test_compress_never_writes_over_its_input_or_the_training_checkpoint(run, capsys):
    before = tree(run)
    for argv, fragment in ((["compress", "quantize", "--out", str(run), "--file", "ckpt.safetensors"],
                            "is the run's training checkpoint"),
                           (["compress", "prune", "--out", str(run), "--file", "../elsewhere.safetensors"],
                            "expected a file name"),
                           (["compress", "quantize", "--out", str(run), "--json", str(run / "ckpt.safetensors")],
                            "would write over a checkpoint"),
                           (["compress", "eval", str(run / "ckpt.safetensors"), "--json",
                             str(run / "ckpt.safetensors")], "would write over a checkpoint"),
                           (["eval", "--out", str(run), "--json", str(run)], "a folder is there"),
                           (["eval", "--out", str(run), "--json", str(run / "ckpt.safetensors")],
                            "would write over a checkpoint")):
        code, _, err = run_cli(argv, capsys)
        assert_one_error_line(code, err, fragment)
    assert tree(run) == before


def test_json_output_is_checked_before_the_work(run, tmp_path, monkeypatch, capsys):
    from tinyllm.train import Trainer

    def no_work(*args, **kwargs):
        raise AssertionError("evaluated before checking --json")
    monkeypatch.setattr(Trainer, "evaluate", no_work)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, _, err = run_cli(["eval", "--out", str(run), "--json", str(a_file / "m.json")], capsys)
    assert_one_error_line(code, err, f"--json {a_file / 'm.json'}: {a_file} is a file; expected a folder", status=1)


# ----------------------------------------------------------------------------- 6. every option's value
@pytest.mark.parametrize("argv, fragment", [
    (["sample", "--num-samples", "0"], "--num-samples: expected an integer >= 1, got 0"),
    (["sample", "--max-new-tokens", "-1"], "--max-new-tokens: expected an integer >= 0, got -1"),
    (["sample", "--temperature", "nan"], "--temperature: expected a finite number in [0, inf], got nan"),
    (["sample", "--temperature", "-1"], "--temperature"),
    (["sample", "--top-p", "0"], "--top-p: expected a finite number in (0, 1], got 0"),
    (["sample", "--top-k", "0"], "--top-k: expected an integer >= 1, got 0"),
    (["sample", "--seed", "-2"], "--seed"),
    (["eval", "--eval-iters", "0"], "--eval-iters: expected an integer in [1, 10000], got 0"),
    (["train", "--eval-iters", "-1"], "--eval-iters must be an integer >= 1, got -1"),
    (["train", "--eval-iters", "100000000"], "--eval-iters must be an integer in [1, 10,000]"),
    (["eval", "--eval-iters", "10001"], "--eval-iters: expected an integer in [1, 10000], got 10001"),
    (["train", "--out", "rs\udcff"], "--out must be text that UTF-8 can store"),
    (["train", "--eval-interval", "0"], "--eval-interval must be an integer >= 1, got 0"),
    (["train", "--min-lr", "nan"], "--min-lr: expected a finite number"),
    (["train", "--n-embd", "30", "--n-head", "4"], "--n-embd must be divisible by n_head=4"),
    (["train", "--n-layer", "0"], "--n-layer must be an integer >= 1, got 0"),
    (["train", "--n-kv-head", "2"], "--n-kv-head: a gpt model has no n_kv_head (a setting of llama only)"),
    (["train", "--model", "seq2seq", "--block-size", "32"],
     "--block-size: a seq2seq model has no block_size (a setting of gpt and llama only)"),
    (["train", "--preset", "cafe", "--d-ff", "64"], "--d-ff: a llama model has no d_ff (a setting of seq2seq only)"),
    (["train", "--model", "rnn"], "--model: invalid choice: 'rnn'"),
    (["train", "--schedule", "linear"], "--schedule must be 'cosine', 'noam' or 'constant'"),
    (["train", "--prompt", "\udcff"], "--prompt must be text that UTF-8 can store"),
    (["train", "--max-iters", "many"], "--max-iters: expected an integer, got 'many'"),
    (["train", "--preset", "nope"], "--preset: invalid choice"),
    (["bench", "--configs", "S,XL"], "--configs: expected a comma-separated list of M, S"),
    (["bench", "--rounds", "0"], "--rounds"),
    (["compress", "flops", "--peak-size", "1000000"], "--peak-size: expected an integer in [1, 16384]"),
    (["compress", "prune", "--lr", "0"], "--lr"),
    (["compress", "bias", "--skew", "2"], "--skew"),
    (["compress", "frobnicate"], "invalid choice: 'frobnicate'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: COMMAND"),
    (["train", "--dropout"], "--dropout: expected one argument"),
    (["train", "--out", ""], "--out: expected a path, got ''"),  # (not quietly runs/default)
    (["compress", "eval", ""], "file: expected a path, got ''"),
])
def test_usage_mistakes_are_one_line_with_status_2(argv, fragment, capsys):
    code, _, err = run_cli(argv, capsys)
    assert_one_error_line(code, err, fragment, status=2)


@pytest.mark.parametrize("extra, fragment", [
    (["--batch-size", "100000000"], "batch_size=100000000"),
    (["--block-size", "30000", "--batch-size", "1000"], "block_size=30000"),  # the shipped corpus has room
    (["--n-layer", "1000000", "--n-embd", "1024", "--n-head", "4"], "n_layer=1000000"),
])
def test_a_run_too_big_for_memory_is_refused_with_the_estimate_before_allocating(tmp_path, extra, fragment, capsys):
    code, _, err = run_cli(["train", "--out", str(tmp_path / "run"), *TINY, *extra], capsys)
    assert_one_error_line(code, err, "not enough memory: this run needs about", "GB free", fragment, status=1)
    assert not (tmp_path / "run" / "ckpt.safetensors").exists()


@pytest.mark.parametrize("content, fragment", [
    (b"caf\xe9 au lait\n" * 50, "not UTF-8 text (byte 0xe9 at offset 3)"),
    (b"text\x00with a NUL\n" * 50, "holds NUL characters (the first at character 4), so it is binary"),
    (bytes(range(256)) * 20, "not UTF-8 text"),
    (b"", "cannot split 0 items"),
])
def test_a_data_path_that_is_not_text_is_named(tmp_path, capsys, content, fragment):
    data = tmp_path / "data.bin"
    data.write_bytes(content)
    code, _, err = run_cli(train_args(tmp_path / "run", 4, "--data-path", str(data)), capsys)
    assert_one_error_line(code, err, str(data), fragment, status=1)


def test_a_data_path_that_is_a_folder_or_missing_is_named(tmp_path, capsys):
    for path, fragment in ((tmp_path, "is a folder"), (tmp_path / "nowhere.txt", "does not exist")):
        code, _, err = run_cli(train_args(tmp_path / "run", 4, "--data-path", str(path)), capsys)
        assert_one_error_line(code, err, f"data_path {path}: {fragment}", status=1)


def test_sample_refuses_a_prompt_the_tokenizer_cannot_encode(run, capsys):
    code, _, err = run_cli(["sample", "--out", str(run), "--prompt", "Zürich ☃"], capsys)
    assert_one_error_line(code, err, "--prompt: 3 character(s) not in the vocabulary", "U+2603", status=1)


def test_kv_cache_overflow_messages_give_a_usable_number():
    tl.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    with tl.no_grad():
        cache = model.new_kv_cache()
        model(np.zeros((1, 6), np.int64), kv_cache=cache)
        with pytest.raises(ValueError, match="feed at most 2 new tokens"):
            model(np.zeros((1, 3), np.int64), kv_cache=cache)
        model(np.zeros((1, 2), np.int64), kv_cache=cache)
        with pytest.raises(ValueError, match=r"the cache is full: cache.reset\(\)"):
            model(np.zeros((1, 1), np.int64), kv_cache=cache)
        short = model.new_kv_cache(max_length=4)
        model(np.zeros((1, 3), np.int64), kv_cache=short)
        with pytest.raises(ValueError, match="2 new positions after 3 cached ones do not fit max_length=4; "
                                             "feed at most 1"):
            model(np.zeros((1, 2), np.int64), kv_cache=short)


# ----------------------------------------------------------------------------- the parser alone, and signals
def test_sample_without_checkpoint_says_how_to_get_one(tmp_path, capsys):
    code, _, err = run_cli(["sample", "--out", str(tmp_path / "none")], capsys)
    assert_one_error_line(code, err, "no checkpoint at", "train first", status=1)


WORDS = ["train", "sample", "eval", "bench", "demo", "assign", "--preset", "default", "seq2seq",
         "--max-iters", "-3", "x", "--top-k", "0.5", "--resume", "--out", "--device", "tpu", "cuda",
         "--help", "--n-embd", "--", "nan", "--dropout", "1e9", "--bias", "maybe", "-h", "--json"]


@settings(max_examples=300)
@given(argv=st.one_of(st.lists(st.sampled_from(WORDS), max_size=6), st.lists(st.text(max_size=8), max_size=4)))
def test_random_argument_lists_parse_or_end_in_one_usage_line(argv, monkeypatch, capsys):
    """Fuzzing the parser: any argument list is either accepted (then dispatched; the work
    is stubbed out here) or ends in one "error:" line with exit status 2."""
    import tinyllm.cli as cli
    monkeypatch.setattr(cli, "_dispatch", lambda args: 0)
    capsys.readouterr()
    code, _, err = run_cli(argv, capsys)
    assert code in (0, 2)
    if code == 2:
        assert_one_error_line(code, err)


def test_sigterm_saves_a_resumable_checkpoint(tmp_path):
    out = str(tmp_path / "run")
    cmd = [sys.executable, "-m", "tinyllm", "train", "--out", out, "--max-iters", "100000",
           "--eval-interval", "5", "--no-sample", *TINY]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(out, "ckpt.safetensors")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "SIGTERM: saved a resumable checkpoint at step" in output
    step = int(output.split("at step ")[1].split()[0])
    _, meta = load_checkpoint(os.path.join(out, "ckpt.safetensors"))
    assert meta["step"] == step


# ----------------------------------------------------------------------------- gaps an outside audit found
def test_resume_works_from_another_folder(tmp_path, monkeypatch, capsys):
    """The checkpoint keeps the data file's whole path: --resume works from anywhere, and a
    --data-path naming the same file another way is not a contradiction."""
    started, elsewhere = tmp_path / "started", tmp_path / "elsewhere"
    started.mkdir()
    elsewhere.mkdir()
    (started / "d.txt").write_text(open(CORPUS["path"]).read())
    monkeypatch.chdir(started)
    args = ["--max-iters", "2", "--eval-interval", "2", "--no-sample", *TINY]
    assert main(["train", "--out", "run", "--data-path", "d.txt", *args]) == 0
    assert load_checkpoint("run/ckpt.safetensors")[1]["config"]["data_path"] == str(started / "d.txt")
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    code, _, err = run_cli(["train", "--out", str(started / "run"), "--resume", "--max-iters", "3", "--no-sample"],
                           capsys)
    assert code == 0, err
    code, _, err = run_cli(["train", "--out", str(started / "run"), "--resume", "--max-iters", "4", "--no-sample",
                            "--data-path", os.path.relpath(started / "d.txt")], capsys)
    assert code == 0, err
    code, _, err = run_cli(["train", "--out", str(started / "run"), "--resume", "--max-iters", "5",
                            "--data-path", CORPUS["path"]], capsys)
    assert_one_error_line(code, err, f"--data-path {CORPUS['path']}: the run in", "was trained on", status=2)


def test_resuming_a_run_saved_with_a_relative_data_path_says_what_to_pass(tmp_path, monkeypatch, capsys):
    from tinyllm.models import GPTConfig
    from tinyllm.train import Trainer, TrainConfig
    started, elsewhere = tmp_path / "started", tmp_path / "elsewhere"
    started.mkdir()
    elsewhere.mkdir()
    (started / "d.txt").write_text(open(CORPUS["path"]).read())
    monkeypatch.chdir(started)
    cfg = TrainConfig(data_path="d.txt", tokenizer="char", model=GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16),
                      batch_size=4, eval_iters=1, max_iters=2, eval_interval=2, progress=False, out_dir="run")
    Trainer(cfg).train()  # (as runs saved it before: the path as typed)
    monkeypatch.chdir(elsewhere)
    run_folder = str(started / "run")
    code, _, err = run_cli(["train", "--out", run_folder, "--resume", "--max-iters", "3", "--no-sample"], capsys)
    assert_one_error_line(code, err, "--resume:", "data_path d.txt", str(elsewhere / "d.txt"),
                          "pass --data-path", status=1)
    code, _, err = run_cli(["train", "--out", run_folder, "--resume", "--max-iters", "3", "--no-sample",
                            "--data-path", str(started / "d.txt")], capsys)
    assert code == 0, err


def test_train_checks_the_prompt_before_training(tmp_path, monkeypatch, capsys):
    """A character vocabulary learned from one's own data: a --prompt it cannot encode is
    refused before training; the preset's prompt ("Once upon a time") falls back to a newline,
    said, saved, and used by sample."""
    from tinyllm.train import Trainer
    data = tmp_path / "d.txt"
    data.write_text("bdd bbd dbb\n" * 200)
    real_train = Trainer.train

    def no_work(*args, **kwargs):
        raise AssertionError("trained before the prompt was checked")
    monkeypatch.setattr(Trainer, "train", no_work)
    code, _, err = run_cli(train_args(tmp_path / "a", 2, "--data-path", str(data), "--prompt", "bad"), capsys)
    assert_one_error_line(code, err, "--prompt: 1 character(s) not in the vocabulary: 'a'", status=1)
    monkeypatch.setattr(Trainer, "train", real_train)
    code, printed, err = run_cli(train_args(tmp_path / "b", 2, "--data-path", str(data)), capsys)
    assert code == 0, err
    assert "the prompt 'Once upon a time' has characters the vocabulary of" in printed and "'\\n'" in printed
    assert load_checkpoint(tmp_path / "b" / "ckpt.safetensors")[1]["config"]["prompt"] == "\n"
    assert run_cli(["sample", "--out", str(tmp_path / "b"), "--max-new-tokens", "3"], capsys)[0] == 0


def test_sample_names_prompt_when_the_runs_own_prompt_cannot_be_encoded(run, tmp_path, capsys):
    tensors, meta = load_checkpoint(run / "ckpt.safetensors")  # a run saved before prompts were checked
    meta["config"]["prompt"] = "ZZ top"
    save_checkpoint(tmp_path / "ckpt.safetensors", tensors, meta)
    code, _, err = run_cli(["sample", "--out", str(tmp_path), "--max-new-tokens", "0"], capsys)
    assert_one_error_line(code, err, "--prompt: the run's prompt 'ZZ top'", "not in the vocabulary",
                          "give --prompt", status=1)


def test_a_loss_curve_that_cannot_be_written_is_refused_before_work(tmp_path, monkeypatch, capsys):
    import tinyllm.train as train

    def no_work(*args, **kwargs):
        raise AssertionError("the work started before the run's files were checked")
    monkeypatch.setattr(train, "make_task", no_work)
    for name in ("loss.png", "ckpt.safetensors"):
        out = tmp_path / name.split(".")[0]
        (out / name).mkdir(parents=True)
        code, _, err = run_cli(train_args(out, 2, "--overwrite"), capsys)
        assert_one_error_line(code, err, f"--out {out}: {out / name} is a folder", status=1)


def test_backups_are_not_output_files(run, capsys):
    before = tree(run)
    code, _, err = run_cli(["eval", "--out", str(run), "--json", str(run / "ckpt.safetensors.bak")], capsys)
    assert_one_error_line(code, err, "--json", "would write over a checkpoint file", status=1)
    code, _, err = run_cli(["compress", "quantize", "--out", str(run), "--file", "ckpt.safetensors.bak"], capsys)
    assert_one_error_line(code, err, "--file: ckpt.safetensors.bak is where train --overwrite keeps", status=2)
    assert tree(run) == before


def test_eval_of_nan_weights_prints_valid_json_with_null(run, tmp_path, capsys):
    tensors, meta = load_checkpoint(run / "ckpt.safetensors")
    tensors["model.transformer.ln_f.weight"][:] = np.nan
    save_checkpoint(tmp_path / "ckpt.safetensors", tensors, meta)
    code, printed, err = run_cli(["eval", "--out", str(tmp_path), "--json", str(tmp_path / "m.json")], capsys)
    assert code == 0, err
    for text in (printed, (tmp_path / "m.json").read_text()):
        metrics = json.loads(text, parse_constant=lambda name: pytest.fail(f"invalid JSON constant {name}"))
        assert metrics["val"]["loss"] is None and metrics["step"] == 4


# ----------------------------------------------------------------------------- sample: beam search, stop texts
def test_sample_by_beam_search_gives_generate_beams_text(run, capsys):
    code, out, err = run_cli(["sample", "--out", str(run), "--prompt", "Once", "--max-new-tokens", "10",
                              "--beam-size", "3", "--num-samples", "2"], capsys)
    assert code == 0, err
    first, second = [text for text in out.split("-" * 60 + "\n") if text]
    assert first == second and first.startswith("Once")  # a search, not a sample: the same text each time
    trainer = Trainer.from_checkpoint(str(run / "ckpt.safetensors"))
    ids = np.asarray(trainer.task.tokenizer.encode("Once"), np.int64)
    expected, _ = generate_beam(trainer.model, ids, 10, beam_size=3)
    assert first == trainer.task.tokenizer.decode(expected.tolist()) + "\n"


def test_sample_stops_at_a_stop_text(run, capsys):
    common = ["sample", "--out", str(run), "--prompt", "Once", "--max-new-tokens", "40", "--temperature", "0"]
    _, free, _ = run_cli(common, capsys)
    continuation = free.split("\n")[0][len("Once"):]
    stop = continuation[-1]  # a character the greedy continuation emits: it ends where that one first comes
    code, stopped, err = run_cli(common + ["--stop", stop], capsys)
    assert code == 0, err
    assert stopped.split("\n")[0] == "Once" + continuation[:continuation.index(stop) + 1]


@pytest.mark.parametrize("argv, fragments", [
    (["--stop", "on"], ["--stop: 'on' is 2 tokens in this model's tokenizer, not one"]),
    (["--stop", "☃"], ["--stop: '☃': 1 character(s) not in the vocabulary"]),
    (["--stop", ""], ["--stop: each --stop must be a non-empty text"]),
    (["--beam-size", "2", "--temperature", "0.5"], ["--beam-size: beam search", "--temperature"]),
    (["--beam-size", "0"], ["--beam-size"]),
])
def test_sample_refuses_options_that_do_not_fit_in_one_line(run, capsys, argv, fragments):
    code, _, err = run_cli(["sample", "--out", str(run), "--max-new-tokens", "4", *argv], capsys)
    assert_one_error_line(code, err, *fragments)


def test_a_translation_checkpoint_refuses_sampling_options_instead_of_ignoring_them(tmp_path):
    model = dataclasses.replace(PRESETS["seq2seq"]["model"], n_embd=16, d_ff=32, n_layer=1, n_head=2)
    cfg = TrainConfig(**{**PRESETS["seq2seq"], "out_dir": str(tmp_path), "max_iters": 1, "eval_iters": 1,
                         "progress": False, "model": model})
    trainer = Trainer(cfg)
    assert isinstance(trainer.sample("march 5, 1998"), str)
    for options in ({"temperature": 0.5}, {"beam_size": 2}, {"stop": ["-"]}):
        with pytest.raises(ValueError, match="the seq2seq model translates greedily"):
            trainer.sample("march 5, 1998", **options)
