"""The command line: train, sample, eval, resume, signals, and bad arguments."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

from tinyllm.cli import main

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
        "--eval-iters", "1", "--progress", "false", "--warmup-iters", "2"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    assert main(["train", "--out", out, "--resume", "--max-iters", "9", "--eval-interval", "3",
                 "--no-sample", *TINY]) == 0
    assert '"step": 9' in capsys.readouterr().out


def test_sample_without_checkpoint_says_how_to_get_one(tmp_path):
    with pytest.raises(SystemExit, match="no checkpoint at .*train first"):
        main(["sample", "--out", str(tmp_path / "none")])


@pytest.mark.parametrize("argv", [["train", "--preset", "nope"], ["train", "--max-iters", "many"],
                                  ["frobnicate"], [], ["train", "--dropout"], ["sample", "--top-p", "x"]])
def test_bad_arguments_end_in_usage(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


WORDS = ["train", "sample", "eval", "bench", "demo", "assign", "--preset", "default", "seq2seq",
         "--max-iters", "-3", "x", "--top-k", "0.5", "--resume", "--out", "--device", "tpu", "cuda",
         "--help", "--n-embd", "--", "nan", "--dropout", "1e9", "--bias", "maybe", "-h", "--json"]


@settings(max_examples=300)
@given(argv=st.one_of(st.lists(st.sampled_from(WORDS), max_size=6), st.lists(st.text(max_size=8), max_size=4)))
def test_random_argument_lists_never_give_a_traceback(argv, monkeypatch):
    """Fuzzing the parser: any argument list is either accepted (then dispatched; the heavy
    work is stubbed out here) or ends in argparse's usage message with exit code 2."""
    import tinyllm.cli as cli
    monkeypatch.setattr(cli, "_dispatch", lambda parser, args: 0)
    try:
        assert main(argv) == 0
    except SystemExit as exc:
        assert exc.code in (0, 2)


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
    from tinyllm.checkpoint import load_checkpoint
    _, meta = load_checkpoint(os.path.join(out, "ckpt.safetensors"))
    assert meta["step"] == step
