"""Instruction tuning: the café data set and chat template (tinyllm.data.instructions), the
loss mask, and `python -m tinyllm finetune` from a trained checkpoint (LoRA and full)."""
import json
import os

import numpy as np
import pytest

import tinyllm as tl
from tinyllm.checkpoint import load_checkpoint
from tinyllm.cli import main
from tinyllm.data import instructions as ins
from tinyllm.finetune import FinetuneConfig, answer, finetune
from tinyllm.models import Llama, LlamaConfig


def test_the_data_set_is_bilingual_deterministic_and_held_out_by_combination():
    conversations = ins.cafe_conversations()
    assert len(conversations) == 112 and len(set(conversations)) == 112
    assert {c.language for c in conversations} == {"en", "zh"}
    assert ins.Conversation("一份汤要多少钱？", "汤6欧元。", "zh", "price", 3, "soup") in conversations
    assert ins.Conversation("Are you open on Sunday?", "On Sunday we are closed.", "en", "hours", 2,
                            "Sunday") in conversations
    train, held_out = ins.split_conversations()
    assert len(held_out) == 22 and not set(train) & set(held_out)
    assert (train, held_out) == ins.split_conversations()  # seeded
    # every held-out question's entity and phrasing appear in training, in other combinations
    for c in held_out:
        assert any(t.entity == c.entity and t.language == c.language for t in train)
        assert any(t.phrasing == c.phrasing and t.topic == c.topic and t.language == c.language for t in train)
    documents = ins.cafe_documents()
    assert documents == ins.cafe_documents() and len(documents) > 100_000
    assert "汤的价格是6欧元。" in documents and "On Sunday the café is closed." in documents
    assert ins.USER not in documents  # a base model never sees the chat template


def test_chat_template_and_loss_mask():
    tokenizer = ins.chat_tokenizer()
    assert [tokenizer.special_tokens[t] for t in (ins.USER, ins.ASSISTANT, ins.END)] == [0, 1, 2]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tokenizer.encode("<|end|>")  # typed text never makes a special token
    conversation = ins.Conversation("汤多少钱？", "汤6欧元。", "zh", "price", 0, "soup")
    ids, n_prompt = ins.encode_chat(tokenizer, conversation.question, conversation.answer)
    assert tokenizer.decode(ids) == "<|user|>汤多少钱？<|assistant|>汤6欧元。<|end|>" and n_prompt == 7
    longer = ins.Conversation("How much is the soup?", "The soup costs 6 euros.", "en", "price", 0, "soup")
    x, y = ins.chat_batch([conversation, longer], tokenizer)
    assert x.shape == y.shape == (2, len(ins.encode_chat(tokenizer, longer.question, longer.answer)[0]) - 1)
    # masked: only the answer and <|end|> are targets; padding never is
    assert tokenizer.decode(y[0][y[0] != ins.IGNORE].tolist()) == "汤6欧元。<|end|>"
    assert tokenizer.decode(y[1][y[1] != ins.IGNORE].tolist()) == "The soup costs 6 euros.<|end|>"
    np.testing.assert_array_equal(x[0, :len(ids) - 1], ids[:-1])
    x_all, y_all = ins.chat_batch([conversation], tokenizer, mask_prompt=False)
    assert tokenizer.decode(y_all[0].tolist()) == "汤多少钱？<|assistant|>汤6欧元。<|end|>"
    with pytest.raises(ValueError, match="the tokenizer has no"):
        ins.encode_chat(tl.data.CharTokenizer.from_text("abc"), "a")


def test_masked_loss_counts_the_answer_tokens_only():
    """The model's mean loss over a masked batch equals the mean over answer positions alone."""
    tl.manual_seed(0)
    tokenizer = ins.chat_tokenizer()
    model = Llama(LlamaConfig(vocab_size=tokenizer.vocab_size, block_size=96, n_layer=1, n_head=2, n_embd=16,
                              intermediate_size=32), dtype=np.float64)
    train, _ = ins.split_conversations()
    x, y = ins.chat_batch(train[:3], tokenizer)
    logits, loss = model(x, y)
    logp = tl.functional.log_softmax(logits).numpy()
    counted = y != ins.IGNORE
    expected = -np.mean(logp[counted, y[counted]])
    assert abs(loss.item() - expected) < 1e-12


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A tiny base model pretrained on the café documents (a few steps: the pipeline, not quality)."""
    out = str(tmp_path_factory.mktemp("runs") / "cafe")
    assert main(["train", "--preset", "cafe", "--model", "llama", "--out", out, "--max-iters", "4",
                 "--eval-interval", "4", "--eval-iters", "1", "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
                 "--intermediate-size", "32", "--block-size", "96", "--batch-size", "2", "--progress", "false",
                 "--no-sample"]) == 0
    return out


def test_finetune_lora_from_a_checkpoint_saves_adapters_alone(base_run, tmp_path, capsys):
    out = str(tmp_path / "chat")
    assert main(["finetune", "--from", base_run, "--out", out, "--lora", "--rank", "2", "--alpha", "4",
                 "--targets", "q_proj,v_proj", "--max-iters", "3", "--batch-size", "4", "--eval-limit", "2"]) == 0
    printed = capsys.readouterr().out
    assert "LoRA rank 2, alpha 4 on 2 layers, 128 adapter parameters trained" in printed
    assert "held-out accuracy" in printed
    report = json.loads((tmp_path / "chat" / "report.json").read_text(encoding="utf-8"))
    assert report["trainable_parameters"] == 2 * (2 * 16 + 16 * 2)  # A (2, 16) and B (16, 2), for q and v
    assert len(report["after"]["samples"]) == 4 and 0 <= report["before"]["held_out_accuracy"] <= 1
    tensors, meta = load_checkpoint(os.path.join(out, "adapters.safetensors"))
    assert sorted(tensors) == [f"model.layers.0.self_attn.{m}.lora_{ab}.weight" for m in ("q_proj", "v_proj")
                               for ab in "AB"]
    assert meta["lora"]["rank"] == 2 and meta["base"] == os.path.abspath(base_run)
    # the adapters and the base reproduce the fine-tuned answers
    from tinyllm.nn import lora
    from tinyllm.train import Trainer
    base = Trainer.from_checkpoint(base_run)
    lora.load_adapters(base.model, os.path.join(out, "adapters.safetensors"))
    sample = report["after"]["samples"][0]
    assert answer(base.model, base.task.tokenizer, sample["question"]) == sample["answer"]


def test_full_finetune_without_mask(base_run, tmp_path):
    report = finetune(FinetuneConfig(base=base_run, out_dir=str(tmp_path / "full"), lora=False, mask_prompt=False,
                                     max_iters=2, batch_size=2, samples=1, eval_limit=1), log=lambda *_: None)
    assert report["frozen_parameters"] == 0 and report["wrapped_layers"] == 0
    tensors, _ = load_checkpoint(str(tmp_path / "full" / "model.safetensors"))
    assert "model.lm_head.weight" in tensors


def test_finetune_errors(tmp_path, capsys):
    assert main(["finetune", "--from", str(tmp_path / "nothing")]) == 1
    assert "pretrain a base model first" in capsys.readouterr().err
    with pytest.raises(ValueError, match="FinetuneConfig.rank must be an integer >= 1"):
        FinetuneConfig(rank=0)
    out = str(tmp_path / "tales")  # a base whose tokenizer lacks the chat's special tokens
    assert main(["train", "--out", out, "--max-iters", "1", "--eval-interval", "1", "--eval-iters", "1",
                 "--n-layer", "1", "--n-head", "2", "--n-embd", "8", "--block-size", "8", "--batch-size", "2",
                 "--progress", "false", "--no-sample"]) == 0
    assert main(["finetune", "--from", out, "--max-iters", "1"]) == 1
    assert "pretrain the base model with --preset cafe" in capsys.readouterr().err


def _one_error_line(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "internal error" not in lines[0], err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_finetune_checks_out_before_any_work(base_run, tmp_path, monkeypatch, capsys):
    """--out that is a file or cannot be created, or that holds a fine-tuned model (unless
    --overwrite): refused before the base is even loaded, one line, status 1."""
    import tinyllm.finetune as ft

    def no_work(*args, **kwargs):
        raise AssertionError("the work started before --out was checked")
    monkeypatch.setattr(ft, "finetune", no_work)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    done = tmp_path / "done"
    done.mkdir()
    (done / "report.json").write_text("{}")
    for out, problem in ((a_file, "a file is there"), ("/proc/self/x", "cannot create the folder"),
                         (done, "holds a fine-tuned run (report.json); --overwrite replaces it")):
        assert main(["finetune", "--from", base_run, "--out", str(out)]) == 1
        _one_error_line(capsys.readouterr().err, f"--out {out}", problem)
    assert (done / "report.json").read_text() == "{}"
    assert main(["finetune", "--from", base_run, "--out", str(done), "--overwrite"]) == 1  # (it got to the work)
    assert "the work started" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, fragment", [
    ("--rank", "0", "--rank: expected an integer in [1, 1024], got 0"),
    ("--lora-dropout", "1", "--lora-dropout: expected a number in [0, 1), got 1"),
    ("--batch-size", "0", "--batch-size"), ("--max-iters", "-1", "--max-iters"), ("--lr", "0", "--lr"),
    ("--alpha", "nan", "--alpha"), ("--eval-limit", "0", "--eval-limit"), ("--out", "", "--out"),
])
def test_finetune_usage_mistakes_exit_2_naming_the_option(option, value, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        main(["finetune", option, value])
    assert info.value.code == 2
    _one_error_line(capsys.readouterr().err, fragment)


def test_finetune_refuses_a_base_whose_block_size_cannot_hold_a_conversation(tmp_path, monkeypatch, capsys):
    import tinyllm.finetune as ft
    base = str(tmp_path / "cafe16")
    assert main(["train", "--preset", "cafe", "--out", base, "--max-iters", "1", "--eval-interval", "1",
                 "--eval-iters", "1", "--n-layer", "1", "--n-head", "2", "--n-kv-head", "1", "--n-embd", "16",
                 "--intermediate-size", "32", "--block-size", "16", "--batch-size", "2", "--progress", "false",
                 "--no-sample"]) == 0
    monkeypatch.setattr(ft, "_snapshot", lambda *a: pytest.fail("evaluated before checking the block size"))
    capsys.readouterr()
    assert main(["finetune", "--from", base, "--out", str(tmp_path / "chat"), "--max-iters", "1"]) == 1
    _one_error_line(capsys.readouterr().err, f"{base}: the base model's block_size is 16",
                    "pretrain it with --block-size")


def test_finetune_refuses_unknown_targets_before_the_work(base_run, tmp_path, monkeypatch, capsys):
    import tinyllm.finetune as ft
    monkeypatch.setattr(ft, "_snapshot", lambda *a: pytest.fail("evaluated before checking --targets"))
    assert main(["finetune", "--from", base_run, "--out", str(tmp_path / "chat"), "--lora",
                 "--targets", "q_proj,v_prj"]) == 1
    _one_error_line(capsys.readouterr().err, "--targets q_proj,v_prj: the base model has no Linear layer named "
                                             "'v_prj'", "q_proj")
