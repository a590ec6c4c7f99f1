"""The experiments at toy sizes (seconds), compressed files, and ``python -m tinyllm compress``."""
import json
import os

import numpy as np
import pytest

from tinyllm.cli import main
from tinyllm.compress.lm import evaluate_lm, load_compressed, load_run, save_compressed, small_config
from tinyllm.compress.prune import Pruner, model_sparsity
from tinyllm.compress.quantize import QuantizedLinear, quantize_model
from tinyllm.lab.compression import distill_experiment, head_pruning_curve, sparsity_curve
from tinyllm.lab.regularization import regularization_experiment
from tinyllm.train import Trainer, TrainConfig

from compress_helpers import make_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("tiny") / "run")


def test_load_run_evaluates_as_the_trainer_does(run):
    model, data, cfg = load_run(run)
    trainer = Trainer(TrainConfig.from_json({**cfg.to_json(), "out_dir": run, "eval_iters": 3}), resume=True)
    assert evaluate_lm(model, data.val, cfg.batch_size, 3) == pytest.approx(trainer.evaluate()["val"]["loss"], rel=1e-6)
    with pytest.raises(FileNotFoundError, match="train one first"):
        load_run(os.path.join(run, "nothing-here"))


def test_compressed_files_round_trip(run, tmp_path):
    model, data, cfg = load_run(run)
    reference = evaluate_lm(model, data.val, 4, 2)
    quantize_model(model)
    quantized = evaluate_lm(model, data.val, 4, 2)
    path = save_compressed(tmp_path / "q.safetensors", model, cfg, data.tokenizer, {"kind": "int8"})
    again, _, _, compression = load_compressed(path)
    assert isinstance(again.lm_head, QuantizedLinear) and compression["kind"] == "int8"
    assert evaluate_lm(again, data.val, 4, 2) == pytest.approx(quantized, rel=1e-6)
    assert abs(quantized - reference) < 0.01

    model, data, cfg = load_run(run)
    Pruner.global_magnitude(model, 0.5).apply()
    path = save_compressed(tmp_path / "p.safetensors", model, cfg, data.tokenizer, {"kind": "pruned"})
    again, _, _, _ = load_compressed(path)
    assert model_sparsity(again) == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError, match="not a compressed model"):
        load_compressed(os.path.join(run, "ckpt.safetensors"))


def test_pruning_curves_small(run):
    model, data, _ = load_run(run)
    rows = sparsity_curve(model, data, amounts=(0.0, 0.5), finetune_iters=2, batch_size=4, eval_iters=2)
    assert [r["sparsity"] for r in rows] == pytest.approx([0.0, 0.5], abs=1e-3)
    assert rows[1]["sparsity_after_finetuning"] == pytest.approx(0.5, abs=1e-3)
    assert model_sparsity(model) == 0.0  # the curve prunes copies
    heads = head_pruning_curve(model, data, batch_size=4, eval_iters=2, ranking_iters=1)
    assert len(heads["ranking"]) == 2 and [r["heads_removed"] for r in heads["rows"]] == [0, 1, 2]


def test_distillation_experiment_small(run):
    teacher, data, _ = load_run(run)
    r = distill_experiment(teacher, data, small_config(teacher.config.vocab_size, 16, 1, 1, 8), iters=3,
                           batch_size=4, eval_iters=2, warmup=1)
    for key in ("teacher_val_loss", "alone_val_loss", "distilled_val_loss"):
        assert np.isfinite(r[key])
    assert r["student_params"] < r["teacher_params"]


def test_regularization_experiment_small():
    text = "To be, or not to be, that is the question. " * 200
    settings = [{"name": "none", "weight_decay": 0.0, "dropout": 0.0, "label_smoothing": 0.0},
                {"name": "all", "weight_decay": 0.1, "dropout": 0.1, "label_smoothing": 0.1}]
    r = regularization_experiment(text, train_chars=2000, iters=2, settings=settings, n_layer=1, n_head=1, n_embd=8,
                                  block_size=8, batch_size=2, eval_iters=2)
    assert [row["name"] for row in r["rows"]] == ["none", "all"]
    assert all(row["gap"] == pytest.approx(row["val_loss"] - row["train_loss"]) for row in r["rows"])


def test_command_line_quantize_prune_distill(run, tmp_path, capsys):
    j = str(tmp_path / "r.json")
    assert main(["compress", "quantize", "--out", run, "--eval-iters", "2", "--json", j]) == 0
    r = json.loads(open(j).read())
    assert r["size_ratio"] > 2 and abs(r["val_loss_change"]) < 0.05
    assert main(["compress", "eval", r["file"], "--eval-iters", "2"]) == 0
    assert main(["compress", "prune", "--out", run, "--amount", "0.3", "--heads", "1", "--finetune-iters", "1",
                 "--eval-iters", "2", "--json", j]) == 0
    r = json.loads(open(j).read())
    assert r["sparsity"] >= 0.3 and len(r["heads_removed"]) == 1
    assert main(["compress", "prune", "--out", run, "--curve", "--amounts", "0,0.5", "--eval-iters", "1"]) == 0
    assert main(["compress", "distill", "--out", run, "--iters", "2", "--eval-iters", "1", "--student-layers", "1",
                 "--student-embd", "8", "--student-heads", "1"]) == 0
    out = capsys.readouterr().out
    assert "val loss" in out and "student distilled" in out and "sparsity" in out


TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "2"]


def test_command_line_measurements(tmp_path, capsys):
    j = str(tmp_path / "r.json")
    assert main(["compress", "flops", *TINY, "--measure", "--steps", "1", "--peak-size", "128", "--json", j]) == 0
    r = json.loads(open(j).read())
    assert r["config"]["n_embd"] == 16 and r["batch_size"] == 2 and 0 < r["mfu"]
    assert r["flops_per_step_counted"] < r["flops_per_step"] < 1.1 * r["flops_per_step_counted"]
    assert main(["compress", "flops", "--preset", "seq2seq", "--batch-size", "2", "--json", j]) == 0
    r = json.loads(open(j).read())
    assert r["flops_per_step_counted"] == r["flops_per_step"]
    assert main(["compress", "memory", *TINY, "--accumulate", "2", "--json", j]) == 0
    assert all(row["max_grad_difference"] < 1e-5 for row in json.loads(open(j).read())["rows"])
    assert main(["compress", "precision", *TINY, "--steps", "1"]) == 0
    assert main(["compress", "bias", "--iters", "2", "--sentences", "100"]) == 0
    out = capsys.readouterr().out
    assert "FLOPs per token" in out and "recomputation" in out and "mixed" in out and "augmented" in out


@pytest.mark.parametrize("argv, message", [
    (["prune", "--amount", "1.2"], r"amount must be in \[0, 1\)"),
    (["distill", "--temperature", "-1"], "temperature must be > 0"),
    (["prune", "--amounts", "0.5,1"], r"amount must be in \[0, 1\)"),
])
def test_bad_arguments_say_the_allowed_range(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compress", *argv])
    assert exc.value.code == 2
    import re
    assert re.search(message, capsys.readouterr().err)


def test_missing_run_is_one_clear_line(tmp_path, capsys):
    assert main(["compress", "quantize", "--out", str(tmp_path / "none")]) == 1
    assert "train one first" in capsys.readouterr().err
