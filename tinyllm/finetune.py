"""Instruction tuning: teach a pretrained base model to answer in a chat format.

    base checkpoint (python -m tinyllm train --preset cafe [--model llama])
      → LoRA adapters on its Linear layers (or every weight, without --lora)
      → next-token loss on chat conversations, counted on the answers only
      → before/after answers and exact-match accuracy on held-out questions

``python -m tinyllm finetune --from runs/cafe --lora`` runs it; in Python::

    report = finetune(FinetuneConfig(base="runs/cafe", lora=True, max_iters=300))

The run folder (``--out``, default ``<base>-chat``) receives ``adapters.safetensors`` (the
LoRA matrices alone, with their rank, α and the base checkpoint in the metadata) or, for
full fine-tuning, ``model.safetensors``; and ``report.json`` with the numbers printed. The
command line refuses a folder that already holds them unless ``--overwrite`` is given.
The data set and the template are :mod:`tinyllm.data.instructions`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from dataclasses import dataclass

import numpy as np

from . import backend
from .checkpoint import save_checkpoint
from .cli_options import CommandError, UsageError, check_writable_folder, integer, number, path_name
from .data.instructions import END, chat_batch, encode_chat, split_conversations
from .generate import generate
from .nn import Linear, lora
from .nn.lora import ALL_LINEAR
from .optim import AdamW, clip_grad_norm_, param_groups
from .optim.schedules import cosine_with_warmup
from .tensor import Tensor
from .train import Trainer

__all__ = ["FinetuneConfig", "finetune", "answer", "accuracy"]


@dataclass
class FinetuneConfig:
    """Every knob of a fine-tuning run (the command line sets each of them)."""

    base: str = "runs/cafe"          # the run folder of the pretrained base model
    out_dir: str | None = None       # default: <base>-chat
    lora: bool = True                # LoRA adapters (False: fine-tune every weight)
    rank: int = 8
    alpha: float = 16.0
    lora_dropout: float = 0.0
    targets: str = ALL_LINEAR        # "all-linear" or comma-separated layer names ("q_proj,v_proj")
    mask_prompt: bool = True         # loss on the answers only (False: on the whole conversation)
    max_iters: int = 300
    batch_size: int = 16
    learning_rate: float = 3e-3
    min_lr: float = 3e-4
    warmup_iters: int = 20
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    held_out_fraction: float = 0.2
    device: str | None = None        # default: the base run's
    seed: int = 0
    samples: int = 4                 # held-out questions shown before and after
    eval_limit: int | None = None    # score only the first N training and held-out questions (None: all)

    def __post_init__(self):
        def need(ok, field, rule):
            if not ok:
                raise ValueError(f"FinetuneConfig.{field} must be {rule}, got {getattr(self, field)!r}")
        for field in ("rank", "batch_size"):
            need(isinstance(getattr(self, field), int) and getattr(self, field) >= 1, field, "an integer >= 1")
        for field in ("max_iters", "warmup_iters", "samples"):
            need(isinstance(getattr(self, field), int) and getattr(self, field) >= 0, field, "an integer >= 0")
        for field in ("alpha", "learning_rate"):
            need(getattr(self, field) > 0, field, "> 0")
        for field in ("min_lr", "weight_decay", "grad_clip"):
            need(getattr(self, field) >= 0, field, ">= 0")
        need(self.eval_limit is None or self.eval_limit >= 1, "eval_limit", ">= 1 (or None)")
        need(0.0 <= self.lora_dropout < 1.0, "lora_dropout", "in [0, 1)")
        need(0.0 < self.held_out_fraction < 1.0, "held_out_fraction", "in (0, 1)")


def answer(model, tokenizer, question, max_new_tokens=60):
    """The model's greedy answer to ``question`` in the chat template (up to ``<|end|>``)."""
    ids, n_prompt = encode_chat(tokenizer, question)
    room = model.config.block_size - n_prompt
    end = tokenizer.special_tokens[END]
    out = generate(model, np.asarray([ids]), min(max_new_tokens, room), temperature=0, stop_tokens=[end])[0]
    new = out[n_prompt:].tolist()
    return tokenizer.decode(new[:new.index(end)] if end in new else new, skip_special_tokens=True)


def accuracy(model, tokenizer, conversations):
    """Share of ``conversations`` whose greedy answer is exactly the right one."""
    if not conversations:
        return float("nan")
    return float(np.mean([answer(model, tokenizer, c.question) == c.answer for c in conversations]))


def _snapshot(model, tokenizer, train, held_out, shown):
    return {"train_accuracy": accuracy(model, tokenizer, train),
            "held_out_accuracy": accuracy(model, tokenizer, held_out),
            "samples": [{"question": c.question, "answer": answer(model, tokenizer, c.question),
                         "right": c.answer} for c in shown]}


def finetune(cfg: FinetuneConfig, log=print) -> dict:
    """Fine-tune the base model of ``cfg.base`` on the café conversations; returns (and
    saves as ``report.json``) the before/after accuracies and samples, the losses, the
    trainable parameter count and the time."""
    base = Trainer.from_checkpoint(cfg.base, device=cfg.device)
    model, tokenizer = base.model, base.task.tokenizer
    out_dir = output_folder(cfg)
    backend.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train, held_out = split_conversations(held_out_fraction=cfg.held_out_fraction, seed=cfg.seed)
    longest = max(len(encode_chat(tokenizer, c.question, c.answer)[0]) for c in train + held_out) - 1
    if longest > model.config.block_size:  # (training and answering would fail after the work)
        raise ValueError(f"{cfg.base}: the base model's block_size is {model.config.block_size}, but the "
                         f"longest conversation is {longest} tokens; pretrain it with --block-size {longest} or more")
    targets = cfg.targets if cfg.targets == ALL_LINEAR else cfg.targets.split(",")
    if cfg.lora and targets != ALL_LINEAR:  # a misspelt name would fail, or adapt less, after the work
        layers = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, Linear)})
        unknown = [name for name in targets if name not in layers]
        if unknown:
            raise ValueError(f"--targets {cfg.targets}: the base model has no Linear layer named "
                             f"{', '.join(map(repr, unknown))}; its layers: all-linear or {', '.join(layers)}")
    shown = held_out[:cfg.samples]
    scored = (train[:cfg.eval_limit], held_out[:cfg.eval_limit])
    before = _snapshot(model, tokenizer, *scored, shown)

    if cfg.lora:
        wrapped = lora.wrap(model, targets, rank=cfg.rank, alpha=cfg.alpha, dropout=cfg.lora_dropout)
    else:
        wrapped = []
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    n_trainable = sum(p.size for _, p in trainable)
    n_frozen = model.num_parameters() - n_trainable
    log(f"fine-tuning {type(model).__name__} from {cfg.base}: "
        + (f"LoRA rank {cfg.rank}, alpha {cfg.alpha:g} on {len(wrapped)} layers, {n_trainable:,} adapter "
           f"parameters trained, the base's {n_frozen:,} frozen" if cfg.lora
           else f"every weight, {n_trainable:,} parameters trained")
        + "; loss on " + ("the answers only" if cfg.mask_prompt else "whole conversations"))
    optimizer = AdamW(param_groups(trainable, cfg.weight_decay), lr=cfg.learning_rate, betas=(0.9, 0.99))

    losses, start = [], time.perf_counter()
    model.train()
    for step in range(cfg.max_iters):
        for group in optimizer.param_groups:
            group["lr"] = cosine_with_warmup(step, cfg.learning_rate, cfg.min_lr,
                                             min(cfg.warmup_iters, cfg.max_iters), cfg.max_iters)
        batch = [train[i] for i in rng.integers(0, len(train), cfg.batch_size)]
        x, y = chat_batch(batch, tokenizer, mask_prompt=cfg.mask_prompt)
        _, loss = model(Tensor(x, device=model.device), Tensor(y, device=model.device))
        optimizer.zero_grad()
        loss.backward()
        if cfg.grad_clip:
            clip_grad_norm_([p for _, p in trainable], cfg.grad_clip)
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0 or step + 1 == cfg.max_iters:
            log(f"step {step + 1}: loss {np.mean(losses[-50:]):.4f}")
    seconds = time.perf_counter() - start
    after = _snapshot(model, tokenizer, *scored, shown)

    os.makedirs(out_dir, exist_ok=True)
    meta = {"base": os.path.abspath(cfg.base), "finetune": dataclasses.asdict(cfg)}
    if cfg.lora:
        weights = os.path.join(out_dir, "adapters.safetensors")
        lora.save_adapters(model, weights, meta)
    else:
        weights = os.path.join(out_dir, "model.safetensors")
        save_checkpoint(weights, {f"model.{k}": v for k, v in model.state_dict().items()}, meta)
    report = {"config": dataclasses.asdict(cfg), "model": type(model).__name__,
              "trainable_parameters": n_trainable, "frozen_parameters": n_frozen,
              "wrapped_layers": len(wrapped), "seconds": seconds,
              "first_loss": losses[0] if losses else None,
              "final_loss": float(np.mean(losses[-20:])) if losses else None,
              "before": before, "after": after, "weights": weights,
              "weights_bytes": os.path.getsize(weights)}
    with open(os.path.join(out_dir, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, ensure_ascii=False, indent=1)
    _print_report(report, log)
    return report


def _print_report(report, log):
    for when in ("before", "after"):
        r = report[when]
        log(f"{when}: held-out accuracy {r['held_out_accuracy']:.0%}, training questions "
            f"{r['train_accuracy']:.0%}")
        for s in r["samples"]:
            mark = "✓" if s["answer"] == s["right"] else f"✗ (right: {s['right']})"
            log(f"  {s['question']} → {s['answer']!r} {mark}")
    log(f"{report['trainable_parameters']:,} parameters trained in {report['seconds']:.0f} s; "
        f"wrote {report['weights']} ({report['weights_bytes']:,} bytes)")


# ------------------------------------------------------------------------------ command line
def add_arguments(parser) -> None:
    """The ``finetune`` subcommand's options (registered by :mod:`tinyllm.cli`)."""
    defaults = FinetuneConfig()
    parser.add_argument("--from", dest="base", type=path_name, default=defaults.base,
                        help="run folder of the base model")
    parser.add_argument("--out", dest="out_dir", type=path_name, default=None, help="run folder (default: <base>-chat)")
    parser.add_argument("--overwrite", action="store_true", help="replace the fine-tuned model already in --out")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters (default: every weight)")
    parser.add_argument("--rank", type=integer(1, 1024), default=defaults.rank)
    parser.add_argument("--alpha", type=number(0, open_below=True), default=defaults.alpha)
    parser.add_argument("--lora-dropout", type=_fraction_below_one, default=defaults.lora_dropout)
    parser.add_argument("--targets", default=defaults.targets,
                        help="layers to adapt: all-linear, or names such as q_proj,v_proj")
    parser.add_argument("--no-mask", dest="mask_prompt", action="store_false",
                        help="count the loss on the questions too (default: answers only)")
    parser.add_argument("--max-iters", type=integer(0), default=defaults.max_iters)
    parser.add_argument("--batch-size", type=integer(1, 4096), default=defaults.batch_size)
    parser.add_argument("--lr", dest="learning_rate", type=number(0, open_below=True), default=defaults.learning_rate)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--seed", type=integer(0, 2**32 - 1), default=defaults.seed)
    parser.add_argument("--eval-limit", type=integer(1), default=None,
                        help="score only the first N training and held-out questions (default: all)")


def output_folder(cfg: FinetuneConfig) -> str:
    """Where the run writes: ``--out``, or ``<base>-chat``."""
    return cfg.out_dir or cfg.base.rstrip("/\\") + "-chat"


OUTPUTS = ("adapters.safetensors", "model.safetensors", "report.json")


def run(args) -> int:
    """Run ``python -m tinyllm finetune`` with the parsed ``args``; the base and the output
    folder are checked before any work (a folder holding a fine-tuned model's files is not
    written over without ``--overwrite``, as for ``train``)."""
    fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    try:
        cfg = FinetuneConfig(**{k: v for k, v in vars(args).items() if k in fields})
    except ValueError as error:  # (the parser's ranges catch these first)
        raise UsageError(str(error)) from None
    if not os.path.exists(os.path.join(cfg.base, Trainer.CHECKPOINT)):
        raise FileNotFoundError(f"no checkpoint in {cfg.base}; pretrain a base model first "
                                f"(python -m tinyllm train --preset cafe --out {cfg.base})")
    out = output_folder(cfg)
    if os.path.exists(out) and not os.path.isdir(out):
        raise CommandError(f"--out {out}: a file is there; expected the run folder")
    existing = [name for name in OUTPUTS if os.path.exists(os.path.join(out, name))]
    if existing and not args.overwrite:
        raise CommandError(f"--out {out}: holds a fine-tuned run ({', '.join(existing)}); --overwrite replaces it, "
                           f"or choose another --out")
    for name in OUTPUTS:
        if os.path.isdir(os.path.join(out, name)):
            raise CommandError(f"--out {out}: {os.path.join(out, name)} is a folder; the run writes a file there")
    check_writable_folder(out, f"--out {out}")
    finetune(cfg)
    return 0


def _fraction_below_one(text):
    value = number(0, 1)(text)
    if value == 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value
