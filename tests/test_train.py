"""Training, evaluation, checkpoints and exact resuming (small smoke runs, seconds each)."""
import os

import numpy as np
import pytest

from tinyllm.checkpoint import CheckpointError, load_checkpoint
from tinyllm.train import PRESETS, Trainer, TrainConfig

TINY = dict(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, eval_iters=2, progress=False,
            warmup_iters=2)


def config(tmp_path, **overrides):
    return TrainConfig(**{**PRESETS["default"], **TINY, "out_dir": str(tmp_path), **overrides})


def test_training_lowers_the_loss_and_writes_checkpoint_and_plot(tmp_path):
    trainer = Trainer(config(tmp_path, max_iters=40, eval_interval=20, learning_rate=3e-3))
    history = trainer.train()
    assert history["step"] == [20, 40]
    assert history["val_loss"][-1] < history["val_loss"][0] < np.log(trainer.task.tokenizer.vocab_size) + 0.5
    assert os.path.exists(tmp_path / "ckpt.safetensors") and os.path.getsize(tmp_path / "loss.png") > 1000
    result = trainer.evaluate()
    assert set(result["val"]) == {"loss", "perplexity", "accuracy"}
    assert result["val"]["perplexity"] == pytest.approx(np.exp(result["val"]["loss"]))
    assert isinstance(trainer.sample("Once", max_new_tokens=10), str)


def test_interrupted_and_resumed_run_gives_the_same_losses(tmp_path):
    full = Trainer(config(tmp_path / "a", max_iters=12, eval_interval=6, dropout=0.1))
    full.train()
    first = Trainer(config(tmp_path / "b", max_iters=12, eval_interval=6, dropout=0.1))
    first.train(stop_after=5)
    first.save()
    resumed = Trainer(config(tmp_path / "b", max_iters=12, eval_interval=6, dropout=0.1), resume=True)
    assert resumed.step == 5
    resumed.train()
    assert resumed.train_losses == full.train_losses  # bit for bit, dropout included
    assert resumed.history == full.history


def test_same_seed_gives_bit_identical_checkpoints(tmp_path):
    for name in ("a", "b"):
        Trainer(config(tmp_path / name, max_iters=6, eval_interval=3, dropout=0.1)).train()
    a, meta_a = load_checkpoint(tmp_path / "a" / "ckpt.safetensors")
    b, meta_b = load_checkpoint(tmp_path / "b" / "ckpt.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    meta_a["config"].pop("out_dir"), meta_b["config"].pop("out_dir")
    assert meta_a == meta_b


def test_corrupted_checkpoint_is_refused_and_names_the_file(tmp_path):
    Trainer(config(tmp_path, max_iters=2, eval_interval=2)).train()
    path = tmp_path / "ckpt.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="ckpt.safetensors"):
        Trainer(config(tmp_path, max_iters=2), resume=True)


def test_seq2seq_task_trains_and_reports_exact_match(tmp_path):
    cfg = TrainConfig(**{**PRESETS["seq2seq"], "out_dir": str(tmp_path), "max_iters": 30,
                         "eval_interval": 30, "eval_iters": 1, "progress": False, "n_embd": 32, "d_ff": 64,
                         "n_layer": 1, "batch_size": 16})
    trainer = Trainer(cfg)
    trainer.train()
    assert 0.0 <= trainer.last_eval["exact_match"] <= 1.0
    assert trainer.history["val_loss"][-1] < 2.5
    assert isinstance(trainer.sample("march 5, 1998"), str)


def test_unknown_dataset_and_missing_file_are_clear(tmp_path):
    with pytest.raises(ValueError, match="dataset must be 'tinytales', 'shakespeare' or 'cafe' .*, got 'poems'"):
        Trainer(config(tmp_path, dataset="poems"))
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        Trainer(config(tmp_path, data_path=str(tmp_path / "nowhere.txt")))


def test_bpe_tokenizer_run_and_resume_keeps_the_tokenizer(tmp_path):
    cfg = config(tmp_path, tokenizer="bpe", bpe_vocab_size=300, max_iters=3, eval_interval=3)
    trainer = Trainer(cfg)
    trainer.train()
    resumed = Trainer(cfg, resume=True)
    assert resumed.task.tokenizer.to_dict() == trainer.task.tokenizer.to_dict()


def test_gelu_and_bias_choices_reach_the_model_and_travel_with_the_checkpoint(tmp_path):
    trainer = Trainer(config(tmp_path, gelu_approximate="none", bias=False, max_iters=2, eval_interval=2))
    trainer.train()
    block = trainer.model.transformer.h[0]
    assert block.mlp.gelu.approximate == "none"
    assert not any(name.endswith(".bias") for name, _ in trainer.model.named_parameters())
    _, meta = load_checkpoint(tmp_path / "ckpt.safetensors")
    rebuilt = TrainConfig.from_json(meta["config"])
    assert (rebuilt.gelu_approximate, rebuilt.bias) == ("none", False)
    with pytest.raises(ValueError, match="gelu_approximate must be 'tanh' or 'none', got 'erf'"):
        config(tmp_path, gelu_approximate="erf")


def test_shakespeare_char_preset_is_nanogpts_shape_with_untied_embeddings(tmp_path):
    from tinyllm.data import corpora
    folder = corpora.data_folder_from_environment()
    shared = folder / "tinyshakespeare.txt" if folder else None
    if shared is None or not shared.is_file():
        pytest.skip("no Tiny Shakespeare in the folder $TINYLLM_DATA names")
    cfg = TrainConfig(**{**PRESETS["shakespeare-char"], "data_path": str(shared), "max_iters": 3,
                         "eval_interval": 3, "eval_iters": 1, "progress": False, "out_dir": str(tmp_path)})
    fixed_by_the_recipe = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, learning_rate=1e-3,
                               dropout=0.0, schedule="cosine")
    assert {k: getattr(cfg, k) for k in fixed_by_the_recipe} == fixed_by_the_recipe
    assert PRESETS["shakespeare-char"]["max_iters"] == PRESETS["shakespeare-char"]["lr_decay_iters"] == 2000
    trainer = Trainer(cfg)
    model = trainer.model
    assert trainer.task.tokenizer.vocab_size == 65
    assert model.lm_head.weight is not model.transformer.wte.weight
    assert sum(p.size for p in model.parameters()) == 812_416  # 804,096 tied, + 65 × 128
    trainer.train()
    assert np.isfinite(trainer.history["val_loss"][-1])


def test_resuming_a_finished_run_does_not_evaluate_again(tmp_path):
    Trainer(config(tmp_path, max_iters=4, eval_interval=2)).train()
    resumed = Trainer(config(tmp_path, max_iters=4, eval_interval=2), resume=True)
    mtime = os.path.getmtime(tmp_path / "ckpt.safetensors")
    assert resumed.train()["step"] == [2, 4]
    assert os.path.getmtime(tmp_path / "ckpt.safetensors") == mtime  # not rewritten


@pytest.mark.parametrize("n_layer, n_embd", [(200, 16), (2, 256)], ids=["deep-narrow", "wide"])
def test_the_memory_estimate_is_not_below_what_training_allocates(tmp_path, n_layer, n_embd):
    """The refusal before allocating is only as good as the estimate: it must not be below
    the memory two training steps really take. NumPy's and Python's allocations traced (a
    lower bound of the process's resident memory). At 200 layers of width 16 the graph's
    objects outweigh the numbers: the estimate had been half of the traced peak."""
    from tinyllm.compress.memory import PeakMemory
    from tinyllm.train import estimate_memory_bytes, make_task
    data = tmp_path / "d.txt"
    data.write_text("Once upon a time a small model read the same short story again and again.\n" * 40)
    cfg = TrainConfig(data_path=str(data), tokenizer="char", n_layer=n_layer, n_head=4, n_embd=n_embd, block_size=16,
                      batch_size=2, max_iters=2, eval_interval=0, progress=False, out_dir=str(tmp_path / "run"))
    task = make_task(cfg)
    with PeakMemory("cpu") as memory:
        Trainer(cfg, task=task).train()
    assert estimate_memory_bytes(cfg, task.vocab_size) >= memory.peak
