"""Training, evaluation, checkpoints and exact resuming (small smoke runs, seconds each)."""
import dataclasses
import os

import numpy as np
import pytest

from tinyllm.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinyllm import manual_seed
from tinyllm.models import GPTConfig, LlamaConfig, Seq2SeqConfig, TransformerModel, build_model
from tinyllm.train import PRESETS, Trainer, TrainConfig

TINY_MODEL = dict(n_layer=1, n_head=2, n_embd=16, block_size=16)
TINY = dict(batch_size=4, eval_iters=2, progress=False, warmup_iters=2)


def config(tmp_path, model=None, **overrides):
    """The default preset made tiny; ``model`` (a dict) sets more fields of its GPTConfig."""
    gpt = dataclasses.replace(PRESETS["default"]["model"], **{**TINY_MODEL, **(model or {})})
    return TrainConfig(**{**PRESETS["default"], **TINY, "model": gpt, "out_dir": str(tmp_path), **overrides})


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
    full = Trainer(config(tmp_path / "a", max_iters=12, eval_interval=6, model=dict(dropout=0.1)))
    full.train()
    first = Trainer(config(tmp_path / "b", max_iters=12, eval_interval=6, model=dict(dropout=0.1)))
    first.train(stop_after=5)
    first.save()
    resumed = Trainer(config(tmp_path / "b", max_iters=12, eval_interval=6, model=dict(dropout=0.1)), resume=True)
    assert resumed.step == 5
    resumed.train()
    assert resumed.train_losses == full.train_losses  # bit for bit, dropout included
    assert resumed.history == full.history


def test_same_seed_gives_bit_identical_checkpoints(tmp_path):
    for name in ("a", "b"):
        Trainer(config(tmp_path / name, max_iters=6, eval_interval=3, model=dict(dropout=0.1))).train()
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
    model = dataclasses.replace(PRESETS["seq2seq"]["model"], n_embd=32, d_ff=64, n_layer=1)
    cfg = TrainConfig(**{**PRESETS["seq2seq"], "out_dir": str(tmp_path), "max_iters": 30,
                         "eval_interval": 30, "eval_iters": 1, "progress": False, "model": model, "batch_size": 16})
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
    trainer = Trainer(config(tmp_path, model=dict(gelu_approximate="none", bias=False), max_iters=2, eval_interval=2))
    trainer.train()
    block = trainer.model.transformer.h[0]
    assert block.mlp.gelu.approximate == "none"
    assert not any(name.endswith(".bias") for name, _ in trainer.model.named_parameters())
    _, meta = load_checkpoint(tmp_path / "ckpt.safetensors")
    rebuilt = TrainConfig.from_json(meta["config"])
    assert (rebuilt.model.gelu_approximate, rebuilt.model.bias) == ("none", False)
    with pytest.raises(ValueError, match="gelu_approximate must be 'tanh' or 'none', got 'erf'"):
        config(tmp_path, model=dict(gelu_approximate="erf"))


def test_shakespeare_char_preset_is_nanogpts_shape_with_untied_embeddings(tmp_path):
    from tinyllm.data import corpora
    folder = corpora.data_folder_from_environment()
    shared = folder / "tinyshakespeare.txt" if folder else None
    if shared is None or not shared.is_file():
        pytest.skip("no Tiny Shakespeare in the folder $TINYLLM_DATA names")
    cfg = TrainConfig(**{**PRESETS["shakespeare-char"], "data_path": str(shared), "max_iters": 3,
                         "eval_interval": 3, "eval_iters": 1, "progress": False, "out_dir": str(tmp_path)})
    fixed_by_the_recipe = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0)
    assert {k: getattr(cfg.model, k) for k in fixed_by_the_recipe} == fixed_by_the_recipe
    assert (cfg.batch_size, cfg.learning_rate, cfg.schedule) == (12, 1e-3, "cosine")
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


# ----------------------------------------------------------------------------- the config: the model's inside the run's
# each preset's model as the flat TrainConfig built it (recorded before the model's config moved into
# TrainConfig.model; vocab_size left out: the task sets it)
PRESET_MODELS = {
    "default": GPTConfig(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=True,
                         gelu_approximate="tanh", layer_norm_eps=1e-5, tie_embeddings=True),
    "shakespeare-char": GPTConfig(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False,
                                  gelu_approximate="none", layer_norm_eps=1e-5, tie_embeddings=False),
    "shakespeare-char-llama": LlamaConfig(block_size=64, n_layer=4, n_head=4, n_kv_head=4, n_embd=128,
                                          intermediate_size=347, rope_theta=10000.0, rms_norm_eps=1e-6,
                                          dropout=0.0, bias=False, tie_embeddings=False),
    "cafe": LlamaConfig(block_size=96, n_layer=4, n_head=4, n_kv_head=2, n_embd=128, intermediate_size=344,
                        rope_theta=10000.0, rms_norm_eps=1e-6, dropout=0.0, bias=False, tie_embeddings=False),
    "seq2seq": Seq2SeqConfig(n_layer=2, n_head=4, n_embd=64, d_ff=256, dropout=0.1),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_presets_model_is_the_one_it_always_was(name):
    cfg = TrainConfig(**{**PRESETS[name], "max_iters": 5})  # (as the chapters write it)
    expected = PRESET_MODELS[name]
    assert type(cfg.model) is type(expected)
    assert {**dataclasses.asdict(cfg.model), "vocab_size": None} == {**dataclasses.asdict(expected), "vocab_size": None}
    assert cfg.family == {GPTConfig: "gpt", LlamaConfig: "llama", Seq2SeqConfig: "seq2seq"}[type(expected)]


def test_a_run_fills_in_the_vocabulary_and_never_changes_the_preset(tmp_path):
    cfg = config(tmp_path, max_iters=2, eval_interval=2)
    trainer = Trainer(cfg)
    assert cfg.model.vocab_size == trainer.task.tokenizer.vocab_size == trainer.model.config.vocab_size
    assert PRESETS["default"]["model"].vocab_size == GPTConfig().vocab_size  # the preset's own is not touched
    trainer.train()
    saved = load_checkpoint(tmp_path / "ckpt.safetensors")[1]["config"]
    assert saved["model"] == {"family": "gpt", **dataclasses.asdict(trainer.model.config)}
    assert "n_layer" not in saved  # one place for each model field
    assert TrainConfig.from_json(saved) == cfg


def test_the_model_field_must_be_a_model_config():
    with pytest.raises(ValueError, match="TrainConfig.model must be a GPTConfig, LlamaConfig or Seq2SeqConfig"):
        TrainConfig(model="gpt")
    with pytest.raises(ValueError, match="dataset must be 'dates' for the seq2seq model"):
        TrainConfig(model=Seq2SeqConfig())
    with pytest.raises(ValueError, match=r"Seq2SeqConfig.n_embd must be divisible by n_head=3, got 64"):
        Seq2SeqConfig(n_embd=64, n_head=3)


# what versions before TrainConfig.model saved: the model's fields flat among the run's (this is
# the config of `config(tmp_path, tokenizer="char", max_iters=4, eval_interval=2)` as they wrote it)
FLAT = {"dataset": "tinytales", "data_path": None, "tokenizer": "char", "bpe_vocab_size": 512, "val_fraction": 0.1,
        "model": "gpt", "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16, "dropout": 0.0, "bias": True,
        "gelu_approximate": "tanh", "tie_embeddings": True, "d_ff": 512, "n_kv_head": None,
        "intermediate_size": None, "rope_theta": 10000.0, "batch_size": 4, "max_iters": 4, "learning_rate": 0.001,
        "min_lr": 0.0001, "schedule": "cosine", "warmup_iters": 2, "lr_decay_iters": None, "weight_decay": 0.1,
        "beta1": 0.9, "beta2": 0.99, "grad_clip": 1.0, "label_smoothing": 0.0, "eval_interval": 2, "eval_iters": 2,
        "out_dir": "runs/default", "progress": False, "num_samples": 1, "max_new_tokens": 300, "temperature": 0.8,
        "top_k": None, "top_p": 0.95, "prompt": "Once upon a time", "device": "cpu", "seed": 1337}


def test_a_flat_config_as_older_versions_saved_it_is_read():
    cfg = TrainConfig.from_json(FLAT)
    assert cfg.model == GPTConfig(vocab_size=cfg.model.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16)
    assert (cfg.batch_size, cfg.max_iters, cfg.prompt) == (4, 4, "Once upon a time")
    llama = TrainConfig.from_json({**FLAT, "model": "llama", "dataset": "cafe", "bias": False, "tie_embeddings": False})
    assert llama.model == LlamaConfig(vocab_size=llama.model.vocab_size, block_size=16, n_layer=1, n_head=2,
                                      n_kv_head=2, n_embd=16, bias=False, tie_embeddings=False)
    seq2seq = TrainConfig.from_json({**FLAT, "model": "seq2seq", "dataset": "dates", "d_ff": 64, "dropout": 0.1})
    assert seq2seq.model == Seq2SeqConfig(vocab_size=seq2seq.model.vocab_size, n_layer=1, n_head=2, n_embd=16,
                                          d_ff=64, dropout=0.1)
    # the oldest wrote no "model", "gelu_approximate" or "tie_embeddings": a GPT with tanh GELU, tied
    oldest = {k: v for k, v in FLAT.items() if k not in ("model", "gelu_approximate", "tie_embeddings")}
    assert TrainConfig.from_json(oldest).model == cfg.model
    with pytest.raises(ValueError, match="here: TrainConfig.model must be a family of 'gpt', 'llama', 'seq2seq', "
                                         "got 'rnn'"):
        TrainConfig.from_json({**FLAT, "model": "rnn"}, "here")


def test_a_run_saved_with_a_flat_config_samples_evaluates_and_resumes(tmp_path):
    """An older version's checkpoint: everything but the config is as this version writes it."""
    reference = Trainer(config(tmp_path / "now", tokenizer="char", max_iters=4, eval_interval=2))
    reference.train(stop_after=2)
    reference.save()
    tensors, meta = load_checkpoint(tmp_path / "now" / "ckpt.safetensors")
    meta["config"] = {**FLAT, "out_dir": str(tmp_path / "old")}
    save_checkpoint(tmp_path / "old" / "ckpt.safetensors", tensors, meta)
    old = Trainer.from_checkpoint(str(tmp_path / "old"))
    assert old.cfg.model == reference.model.config and old.step == 2
    assert old.evaluate() == reference.evaluate()
    assert old.sample(max_new_tokens=8, temperature=0) == reference.sample(max_new_tokens=8, temperature=0)
    old.train()
    reference.train()
    assert old.train_losses == reference.train_losses  # resumed exactly
    assert load_checkpoint(tmp_path / "old" / "ckpt.safetensors")[1]["config"]["model"]["family"] == "gpt"


def test_a_seq2seq_config_builds_the_articles_model():
    config = Seq2SeqConfig(vocab_size=11, n_layer=1, n_head=2, n_embd=8, d_ff=16, dropout=0.1)
    manual_seed(0)
    built = build_model(config).state_dict()
    manual_seed(0)
    article = TransformerModel(11, 8, 2, 16, 1, dropout=0.1).state_dict()
    assert built.keys() == article.keys() and all(np.array_equal(built[k], article[k]) for k in built)


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
    cfg = TrainConfig(data_path=str(data), tokenizer="char",
                      model=GPTConfig(n_layer=n_layer, n_head=4, n_embd=n_embd, block_size=16), batch_size=2, max_iters=2, eval_interval=0, progress=False, out_dir=str(tmp_path / "run"))
    task = make_task(cfg)
    with PeakMemory("cpu") as memory:
        Trainer(cfg, task=task).train()
    assert estimate_memory_bytes(cfg, task.vocab_size) >= memory.peak


def test_saving_a_run_spends_no_memory_on_copies_of_its_state(tmp_path):
    """Trainer.save writes the weights and AdamW's moments from where they lie: it used to copy
    them (state_dict, the optimizer's state_dict), build the file in memory and copy that
    again, which made a checkpoint the peak of a run (6.3 GB for 100 M parameters against
    1.8 GB once streamed)."""
    import tracemalloc
    from tinyllm.train import make_task
    data = tmp_path / "d.txt"
    data.write_text("Once upon a time a small model read the same short story again and again.\n" * 40)
    cfg = TrainConfig(data_path=str(data), tokenizer="char", model=GPTConfig(n_layer=2, n_head=4, n_embd=256, block_size=16),
                      batch_size=2, max_iters=1, eval_interval=0, progress=False, out_dir=str(tmp_path / "run"))
    trainer = Trainer(cfg, task=make_task(cfg))
    trainer.train()
    state = sum(3 * p.data.nbytes for p in trainer.model.parameters())  # weights and two moments
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        trainer.save()
        extra = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert extra < 0.05 * state, f"saving {state / 1e6:.1f} MB of state allocated {extra / 1e6:.1f} MB"
