"""``python -m tinyllm compress <command>``: measure what a model costs, and cut it.

    flops       FLOPs per token and per step (6N + attention, and counted), memory estimated and
                measured; --measure also times steps for the MFU
    memory      peak memory of a training step: plain, gradient accumulation, recomputation
    quantize    int8-quantize a trained run's GPT; size and validation loss before and after
    prune       global magnitude pruning (--amount), attention heads (--heads), curves (--curve)
    distill     a small student distilled from a trained run, against the same student alone
    precision   float32 against mixed precision (float16 compute, float32 masters): time, loss
    bias        a pronoun bias learned from skewed data, and counterfactual augmentation
    regularize  weight decay, dropout, label smoothing: the train/validation gap
    eval        evaluate a compressed model file (quantized.safetensors, pruned.safetensors)

Each prints a readable report, and ``--json PATH`` writes the numbers. Experiments that train
take minutes at their defaults; docs/compute.md lists the commands behind its figures.
Every option's value is checked before the work starts; a compressed model is written inside
--out under a name of its own, never over the run's checkpoint or the file being read.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

import numpy as np

from . import backend, functional as F
from .cli_options import (ArgumentParser, CommandError, check_device, check_output_file, integer, number,
                          path_name, write_json)
from .compress.distill import check_temperature
from .compress.flops import (STANDARD_SIZES, STANDARD_VOCAB, FlopCounter, gpt_flops_per_token,
                             gpt_training_flops_per_step, matmul_peak_flops, mfu, transformer_model_flops_per_token,
                             transformer_model_training_flops_per_step)
from .compress.lm import (evaluate_lm, format_bytes, lm_loss, load_compressed, load_run, random_batch,
                          save_compressed, small_config, train_lm)
from .compress.memory import (PeakMemory, gpt_activation_bytes, measure_training_memory, parameter_bytes,
                              training_memory_estimate)
from .compress.prune import Pruner, check_amount, heads_by_layer, model_sparsity
from .compress.quantize import model_size_bytes, quantize_model
from .compress.recompute import accumulate_gradients, recompute_blocks, split_batch
from .lab.bias import bias_experiment
from .lab.compression import distill_experiment, head_pruning_curve, precision_benchmark, rank_heads, sparsity_curve
from .lab.regularization import regularization_experiment
from .models import GPT, ConfigError, GPTConfig, Seq2SeqConfig, TransformerModel
from .nn import generate_square_subsequent_mask
from .optim import AdamW
from .train import PRESETS, TrainConfig, Trainer, check_memory, load_text

__all__ = ["main", "build_parser"]

_RUN = "runs/shakespeare-char"


def _amount(text):
    try:
        return check_amount(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _temperature(text):
    try:
        return check_temperature(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _amounts(text):
    amounts = [_amount(part) for part in text.split(",") if part.strip()]
    if not amounts:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions in [0, 1), got {text!r}")
    return amounts


def _file_name(text):
    """A compressed model's file name: written inside --out, never over the run's checkpoint."""
    if not text or os.path.basename(text) != text or text in (".", ".."):
        raise argparse.ArgumentTypeError(f"expected a file name (it is written inside --out), got {text!r}")
    if text == Trainer.CHECKPOINT:
        raise argparse.ArgumentTypeError(f"{text} is the run's training checkpoint; choose another name")
    if text == Trainer.CHECKPOINT + ".bak":
        raise argparse.ArgumentTypeError(f"{text} is where train --overwrite keeps the earlier run; "
                                         f"choose another name")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m tinyllm compress", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True, metavar="COMMAND")

    def command(name, help):
        p = sub.add_parser(name, help=help)
        p.add_argument("--json", dest="json_path", type=path_name, default=None, help="also write the results here")
        p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
        return p

    def model_options(p):
        p.add_argument("--preset", default="S", choices=sorted(STANDARD_SIZES) + sorted(PRESETS),
                       help="a bench config (S, M) or a train preset")
        p.add_argument("--batch-size", type=integer(1), default=None)
        for name in ("n-layer", "n-head", "n-embd", "block-size", "vocab-size"):
            p.add_argument("--" + name, type=integer(1), default=None, help="override the preset's")

    def run_folder(p):
        p.add_argument("--out", type=path_name, default=_RUN, help=f"the trained run's folder (default {_RUN})")
        p.add_argument("--eval-iters", type=integer(1), default=200, help="validation batches (the trainer's: 200)")

    flops = command("flops", "FLOPs per token and per step, memory, and (with --measure) MFU")
    model_options(flops)
    flops.add_argument("--src-len", type=integer(1), default=24, help="seq2seq: source length")
    flops.add_argument("--tgt-len", type=integer(1), default=12, help="seq2seq: target length")
    flops.add_argument("--measure", action="store_true", help="time training steps: MFU, measured memory")
    flops.add_argument("--steps", type=integer(1), default=5, help="timed steps with --measure")
    flops.add_argument("--peak-size", type=integer(1, 16384), default=2048,
                       help="n of the n×n matmul that measures the peak (at most 16384: 3 GB)")

    memory = command("memory", "peak memory of a training step: plain, accumulation, recomputation")
    model_options(memory)
    memory.add_argument("--accumulate", type=integer(1), default=4, help="micro-batches for gradient accumulation")

    quantize = command("quantize", "int8-quantize a trained GPT: size and validation loss before/after")
    run_folder(quantize)
    quantize.add_argument("--file", type=_file_name, default="quantized.safetensors", help="written inside --out")
    quantize.add_argument("--modules", default=None, help="comma-separated layer names (default: all "
                                                           "Linear and Embedding layers)")

    prune = command("prune", "prune a trained GPT: magnitude (--amount), heads (--heads), curves")
    run_folder(prune)
    prune.add_argument("--amount", type=_amount, default=0.5, help="fraction of Linear weights to zero, in [0, 1)")
    prune.add_argument("--heads", type=integer(0), default=0, help="also remove this many least important heads")
    prune.add_argument("--finetune-iters", type=integer(0), default=0, help="fine-tune with the masks kept")
    prune.add_argument("--lr", type=number(0, open_below=True), default=3e-4, help="fine-tuning learning rate")
    prune.add_argument("--curve", action="store_true", help="the sparsity-versus-loss curve instead")
    prune.add_argument("--amounts", type=_amounts, default=[0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95])
    prune.add_argument("--head-curve", action="store_true", help="the heads-removed-versus-loss curve instead")
    prune.add_argument("--file", type=_file_name, default="pruned.safetensors", help="written inside --out")

    distill = command("distill", "distil a small student from a trained run, against the student alone")
    run_folder(distill)
    distill.add_argument("--iters", type=integer(1), default=1000)
    distill.add_argument("--temperature", type=_temperature, default=2.0)
    distill.add_argument("--alpha", type=number(0, 1), default=0.5, help="weight of the soft (KL) term, in [0, 1]")
    distill.add_argument("--student-layers", type=integer(1), default=2)
    distill.add_argument("--student-heads", type=integer(1), default=2)
    distill.add_argument("--student-embd", type=integer(1), default=64)

    precision = command("precision", "float32 against mixed precision: time per step and losses")
    model_options(precision)
    precision.add_argument("--steps", type=integer(1), default=5)

    bias = command("bias", "bias from skewed data, before and after counterfactual augmentation")
    bias.add_argument("--iters", type=integer(1), default=300)
    bias.add_argument("--skew", type=number(0, 1), default=0.9)
    bias.add_argument("--sentences", type=integer(10), default=4000, help="generated sentences (at least 10)")
    bias.add_argument("--seed", type=integer(0), default=0)

    regularize = command("regularize", "weight decay, dropout, label smoothing: train/validation gap")
    regularize.add_argument("--iters", type=integer(1), default=1000)
    regularize.add_argument("--train-chars", type=integer(1), default=50_000)
    regularize.add_argument("--eval-iters", type=integer(1), default=50)
    regularize.add_argument("--data-path", type=path_name, default=None, help="a text file (default: Tiny Shakespeare)")

    evaluate = command("eval", "evaluate a compressed model file")
    evaluate.add_argument("file", type=path_name, help="e.g. runs/shakespeare-char/quantized.safetensors")
    evaluate.add_argument("--eval-iters", type=integer(1), default=200)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_device(args.device)
    if args.json_path:  # checked before minutes of work, not after
        if args.action == "eval":
            reading = [args.file]
        else:
            reading = [os.path.join(args.out, Trainer.CHECKPOINT)] if hasattr(args, "out") else []
        check_output_file(args.json_path, "--json", reading=reading)
    results = _ACTIONS[args.action](args)
    if args.json_path:
        write_json(args.json_path, results)
    return 0


def _say(text=""):
    print(text, flush=True)


# ----------------------------------------------------------------------------- models by preset
def _gpt_preset(args):
    """(GPTConfig, batch size) of a bench config or a train preset, with the overrides."""
    name = args.preset
    if name in STANDARD_SIZES:
        c = dict(STANDARD_SIZES[name])
    elif name in PRESETS and isinstance(PRESETS[name]["model"], GPTConfig):
        model = PRESETS[name]["model"]
        c = {k: getattr(model, k) for k in ("n_layer", "n_head", "n_embd", "block_size")}
        c["batch_size"] = PRESETS[name]["batch_size"]
    else:
        raise CommandError(f"--preset {name}: not a GPT; this command measures GPTs (bench configs "
                           f"{', '.join(sorted(STANDARD_SIZES))} or the GPT train presets)")
    c["vocab_size"] = STANDARD_VOCAB
    for key in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "batch_size"):
        if getattr(args, key, None) is not None:
            c[key] = getattr(args, key)
    batch = c.pop("batch_size")
    try:
        config = GPTConfig(**c)
    except ConfigError as error:   # the config's own check, told in the options' names
        raise CommandError(f"--preset {name}: --{error.field.replace('_', '-')} must be {error.rule}, "
                           f"got {error.value!r}") from None
    _check_memory(config, batch, args.device)
    return config, batch


def _check_memory(config, batch_size, device):
    """The trainer's memory check (before allocating) for a GPT of ``config``."""
    check_memory(TrainConfig(model=config, batch_size=batch_size, device=device), config.vocab_size)


def _mb(n):
    return f"{n / 1e6:8.2f} MB"


# ----------------------------------------------------------------------------- flops
def _flops(args):
    if args.preset in PRESETS and isinstance(PRESETS[args.preset]["model"], Seq2SeqConfig):
        return _flops_seq2seq(args)
    config, batch = _gpt_preset(args)
    backend.manual_seed(0)
    model = GPT(config).to(args.device)
    n = model.num_params()
    head = config.n_embd // config.n_head
    attention = 12 * config.n_layer * config.n_head * head * config.block_size
    per_token = gpt_flops_per_token(config, n)
    per_step = gpt_training_flops_per_step(config, n, batch)
    x, y = random_batch(config.vocab_size, batch, config.block_size, args.device)
    with FlopCounter() as counter:
        loss = lm_loss(model, x, y)
        loss.backward()
    del loss
    model.zero_grad()
    estimate = training_memory_estimate(model, batch)
    r = {"preset": args.preset, "config": vars(config), "batch_size": batch, "tokens_per_step": batch * config.block_size,
         "params_non_embedding": n, "flops_per_token": per_token, "flops_per_token_6N": 6 * n,
         "flops_per_token_attention": attention, "flops_per_step": per_step,
         "flops_per_step_counted": counter.total, "flops_forward_counted": counter.forward,
         "memory_estimate": estimate}
    _say(f"GPT {args.preset}: {config.n_layer} layers, {config.n_head} heads, width {config.n_embd}, "
         f"block {config.block_size}, vocab {config.vocab_size}; batch {batch}")
    _say(f"  parameters (no position table)  N = {n:,}")
    _say(f"  FLOPs per token  6N + 12·L·H·Q·T = {6 * n:,} + {attention:,} = {per_token:,}")
    _say(f"  FLOPs per step   × {batch * config.block_size:,} tokens = {per_step / 1e9:.3f} GFLOP "
         f"(counted matmuls: {counter.total / 1e9:.3f} GFLOP, forward {counter.forward / 1e9:.3f})")
    _say("  memory of a step, estimated (AdamW):")
    for key in ("parameters", "gradients", "optimizer_state", "activations", "total"):
        _say(f"    {key:16s} {_mb(estimate[key])}")
    if args.measure:
        optimizer = AdamW(model.parameters(), lr=1e-3)
        measured = measure_training_memory(model, lambda: lm_loss(model, x, y), optimizer)
        r["memory_measured"] = measured
        _say("  memory of a step, measured:")
        for key in ("parameters", "gradients", "optimizer_state", "activations", "peak"):
            _say(f"    {key:16s} {_mb(measured[key])}")
        dev = backend.get_device(args.device)
        times = []
        for _ in range(args.steps + 1):
            dev.synchronize()
            start = time.perf_counter()
            loss = lm_loss(model, x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            dev.synchronize()
            times.append(time.perf_counter() - start)
        seconds = float(np.median(times[1:]))
        peak = matmul_peak_flops(n=args.peak_size, device=args.device)
        r.update(ms_per_step=seconds * 1e3, achieved_gflops=per_step / seconds / 1e9, matmul_peak_gflops=peak / 1e9,
                 mfu=mfu(per_step, seconds, peak))
        _say(f"  time per step {seconds * 1e3:.1f} ms (median of {args.steps}): {per_step / seconds / 1e9:.2f} GFLOP/s "
             f"of a {peak / 1e9:.0f} GFLOP/s float32 matmul peak: MFU {100 * r['mfu']:.1f} %")
    return r


def _flops_seq2seq(args):
    p = PRESETS[args.preset]
    batch = args.batch_size or p["batch_size"]
    config = dataclasses.replace(p["model"], vocab_size=40, dropout=0.0)
    _check_memory(GPTConfig(vocab_size=config.vocab_size, block_size=max(args.src_len, args.tgt_len),
                            n_layer=2 * config.n_layer, n_head=config.n_head, n_embd=config.n_embd),
                  batch, args.device)  # a GPT as big, roughly
    backend.manual_seed(0)
    model = TransformerModel.from_config(config).to(args.device)
    s, t = args.src_len, args.tgt_len
    per_step = transformer_model_training_flops_per_step(model, batch, s, t)
    src = random_batch(config.vocab_size, s, batch, args.device)[0]
    tgt, targets = random_batch(config.vocab_size, t, batch, args.device, seed=1)
    mask = generate_square_subsequent_mask(t, device=args.device)

    def loss_fn():
        return F.cross_entropy(model(src, tgt, tgt_mask=mask), targets, axis=-1)
    with FlopCounter() as counter:
        loss_fn().backward()
    model.zero_grad()
    r = {"preset": args.preset, "batch_size": batch, "src_len": s, "tgt_len": t,
         "parameters": model.num_parameters(), "flops_per_target_token": transformer_model_flops_per_token(model, s, t),
         "flops_per_step": per_step, "flops_per_step_counted": counter.total,
         "memory_measured": measure_training_memory(model, loss_fn, AdamW(model.parameters())),
         "parameter_bytes": parameter_bytes(model)}
    _say(f"TransformerModel {args.preset}: {config.n_layer}+{config.n_layer} layers, width {config.n_embd}, "
         f"ffn {config.d_ff}; batch {batch}, source {s}, target {t} tokens")
    _say(f"  parameters {r['parameters']:,}")
    _say(f"  FLOPs per step {per_step / 1e9:.4f} GFLOP (counted matmuls {counter.total / 1e9:.4f}); "
         f"per target token {r['flops_per_target_token']:,.0f}")
    _say("  memory of a step, measured:")
    for key in ("parameters", "gradients", "optimizer_state", "activations", "peak"):
        _say(f"    {key:16s} {_mb(r['memory_measured'][key])}")
    return r


# ----------------------------------------------------------------------------- memory
def _memory(args):
    config, batch = _gpt_preset(args)
    k = args.accumulate
    if batch % k:
        raise CommandError(f"--accumulate {k}: must divide the batch size {batch} (--batch-size) into equal "
                           f"micro-batches")
    backend.manual_seed(0)
    model = GPT(config).to(args.device)
    x, y = random_batch(config.vocab_size, batch, config.block_size, args.device)
    rows, reference = [], None
    for name, recompute, micro in (("plain", False, 1), (f"accumulation ×{k}", False, k),
                                   ("recomputation", True, 1), (f"both (×{k})", True, k)):
        recompute_blocks(model, recompute)
        model.zero_grad()
        start = time.perf_counter()
        with PeakMemory(args.device) as mem, FlopCounter() as counter:
            accumulate_gradients(lambda a, b: lm_loss(model, a, b), split_batch(micro, x, y))
        seconds = time.perf_counter() - start
        grads = [p.grad.copy() for p in model.parameters()]
        if reference is None:
            reference = grads
        diff = max(float(abs(g - r).max()) for g, r in zip(grads, reference))
        rows.append({"name": name, "peak_bytes": mem.peak, "seconds": seconds, "flops": counter.total,
                     "max_grad_difference": diff})
    recompute_blocks(model, False)
    _say(f"peak memory of forward + backward, GPT {args.preset} ({config.n_layer} layers, width {config.n_embd}, "
         f"block {config.block_size}), batch {batch} (activations estimated "
         f"{gpt_activation_bytes(config, batch) / 1e6:.2f} MB; parameters {model.num_parameters() * 4 / 1e6:.2f} MB)")
    for row in rows:
        _say(f"  {row['name']:18s} {_mb(row['peak_bytes'])}  ({row['peak_bytes'] / rows[0]['peak_bytes']:5.2f}×)  "
             f"{row['seconds'] * 1e3:7.0f} ms  {row['flops'] / rows[0]['flops']:4.2f}× the FLOPs   "
             f"gradients differ by at most {row['max_grad_difference']:.1e}")
    return {"preset": args.preset, "batch_size": batch, "accumulate": k, "rows": rows,
            "activations_estimated": gpt_activation_bytes(config, batch)}


# ----------------------------------------------------------------------------- quantize
def _quantize(args):
    model, data, cfg = load_run(args.out, args.device)
    size_before = model_size_bytes(model)
    loss_before = evaluate_lm(model, data.val, cfg.batch_size, args.eval_iters)
    with tempfile.TemporaryDirectory() as tmp:
        float_file = save_compressed(os.path.join(tmp, "float.safetensors"), model, cfg, data.tokenizer, {})
        float_file_size = os.path.getsize(float_file)
    modules = args.modules.split(",") if args.modules else None
    quantize_model(model, modules)
    size_after = model_size_bytes(model)
    loss_after = evaluate_lm(model, data.val, cfg.batch_size, args.eval_iters)
    path = save_compressed(os.path.join(args.out, args.file), model, cfg, data.tokenizer, {"kind": "int8"})
    r = {"run": args.out, "file": path, "weights_bytes_float32": size_before, "weights_bytes_int8": size_after,
         "size_ratio": size_before / size_after, "file_bytes_float32": float_file_size,
         "file_bytes_int8": os.path.getsize(path), "val_loss_float32": loss_before, "val_loss_int8": loss_after,
         "val_loss_change": loss_after - loss_before, "eval_iters": args.eval_iters}
    _say(f"int8 quantization of {args.out} (every Linear and Embedding, per output channel)")
    _say(f"  weights   {format_bytes(size_before)} → {format_bytes(size_after)}  ({r['size_ratio']:.2f}× smaller); "
         f"file {format_bytes(float_file_size)} → {format_bytes(r['file_bytes_int8'])}")
    _say(f"  val loss  {loss_before:.4f} → {loss_after:.4f}  ({loss_after - loss_before:+.4f}) "
         f"over {args.eval_iters} batches")
    _say(f"  wrote {path}  (evaluate it: python -m tinyllm compress eval {path})")
    return r


def _evaluate(args):
    model, data, cfg, compression = load_compressed(args.file, args.device)
    loss = evaluate_lm(model, data.val, cfg.batch_size, args.eval_iters)
    quantized = bool(compression.get("quantized"))
    r = {"file": args.file, "val_loss": loss, "weights_bytes": model_size_bytes(model),
         "file_bytes": os.path.getsize(args.file), "compression": compression,
         "sparsity": None if quantized else model_sparsity(model)}
    _say(f"{args.file}: val loss {loss:.4f} over {args.eval_iters} batches; weights {format_bytes(r['weights_bytes'])}"
         + ("" if quantized else f"; sparsity of the Linear weights {r['sparsity']:.3f}"))
    return r


# ----------------------------------------------------------------------------- prune
def _prune(args):
    model, data, cfg = load_run(args.out, args.device)
    bs = cfg.batch_size
    if args.curve:
        _say(f"sparsity versus validation loss, {args.out}" + (f" (fine-tuned {args.finetune_iters} steps)"
                                                              if args.finetune_iters else " (one-shot)"))
        rows = sparsity_curve(model, data, args.amounts, args.finetune_iters, lr=args.lr, batch_size=bs,
                              eval_iters=args.eval_iters, log=lambda row: _say("  " + _row(row)))
        return {"run": args.out, "finetune_iters": args.finetune_iters, "rows": rows}
    if args.head_curve:
        _say(f"attention heads removed (least important first) versus validation loss, {args.out}")
        def log(row):
            added = f" (+ {row['removed'][-1]})" if row["removed"] else ""
            _say(f"  {row['heads_removed']:2d} heads removed{added}: val loss {row['val_loss']:.4f}")
        return {"run": args.out, **head_pruning_curve(model, data, bs, args.eval_iters, log=log)}
    before = evaluate_lm(model, data.val, bs, args.eval_iters)
    pruner = Pruner.global_magnitude(model, args.amount)
    removed = []
    if args.heads:
        ranking = [head for head, _ in rank_heads(model, data, bs)[:args.heads]]
        removed = [f"{n}[{h}]" for n, h in ranking]
        pruner = pruner & Pruner.attention_heads(model, heads_by_layer(ranking))
    pruner.apply()
    one_shot = evaluate_lm(model, data.val, bs, args.eval_iters)
    r = {"run": args.out, "amount": args.amount, "heads_removed": removed, "val_loss_before": before,
         "val_loss_pruned": one_shot, "sparsity": model_sparsity(model)}
    if args.finetune_iters:
        train_lm(model, data.train, args.finetune_iters, batch_size=bs, lr=args.lr, min_lr=args.lr / 10,
                 warmup=min(20, args.finetune_iters), pruner=pruner)
        r["val_loss_finetuned"] = evaluate_lm(model, data.val, bs, args.eval_iters)
        r["sparsity_after_finetuning"] = model_sparsity(model)
    r["file"] = save_compressed(os.path.join(args.out, args.file), model, cfg, data.tokenizer,
                                {"kind": "pruned", "amount": args.amount, "heads_removed": removed,
                                 "sparsity": model_sparsity(model)})
    _say(f"global magnitude pruning of {args.out}: {args.amount:.0%} of the Linear weights"
         + (f", heads {', '.join(removed)}" if removed else ""))
    _say(f"  sparsity {r['sparsity']:.3f}; val loss {before:.4f} → {one_shot:.4f} (one-shot)"
         + (f" → {r['val_loss_finetuned']:.4f} after {args.finetune_iters} fine-tuning steps "
            f"(sparsity {r['sparsity_after_finetuning']:.3f})" if args.finetune_iters else ""))
    _say(f"  wrote {r['file']}")
    return r


def _row(row):
    return ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())


# ----------------------------------------------------------------------------- distill
def _distill(args):
    if args.student_embd % args.student_heads:
        raise CommandError(f"--student-embd {args.student_embd} must be divisible by --student-heads "
                           f"{args.student_heads}")
    teacher, data, cfg = load_run(args.out, args.device)
    student = small_config(teacher.config.vocab_size, teacher.config.block_size, args.student_layers,
                           args.student_heads, args.student_embd)
    _check_memory(student, cfg.batch_size, args.device)
    _say(f"distilling {args.out} ({teacher.num_parameters():,} parameters) into a {args.student_layers}-layer, "
         f"{args.student_embd}-wide student, {args.iters} steps, T = {args.temperature}, α = {args.alpha}")
    r = distill_experiment(teacher, data, student, args.iters, batch_size=cfg.batch_size, temperature=args.temperature,
                           alpha=args.alpha, eval_iters=args.eval_iters, log_every=max(args.iters // 5, 1))
    _say(f"  teacher                 val loss {r['teacher_val_loss']:.4f}")
    _say(f"  student alone           val loss {r['alone_val_loss']:.4f}  ({r['alone_ms_per_step']:.0f} ms/step)")
    _say(f"  student distilled       val loss {r['distilled_val_loss']:.4f}  ({r['distilled_ms_per_step']:.0f} ms/step)")
    return {"run": args.out, **r}


# ----------------------------------------------------------------------------- precision
def _precision(args):
    config, batch = _gpt_preset(args)
    r = precision_benchmark(config, batch, args.steps, args.device)
    _say(f"GPT {args.preset} on {args.device}, batch {r['batch_size']}: float32 {r['float32_ms_per_step']:.1f} ms/step, "
         f"mixed (float16 compute) {r['mixed_ms_per_step']:.1f} ms/step ("
         + (f"{r['speedup']:.2f}× faster" if r["speedup"] >= 1 else f"{1 / r['speedup']:.1f}× slower") + "); "
         f"loss after {args.steps + 1} steps {r['float32_final_loss']:.4f} vs {r['mixed_final_loss']:.4f}")
    if args.device == "cpu":
        _say("  (NumPy has no float16 matrix product: on a CPU, mixed precision is slower. It is meant for CuPy.)")
    return {"preset": args.preset, **r}


# ----------------------------------------------------------------------------- bias
def _bias(args):
    r = bias_experiment(args.sentences, args.skew, args.iters, seed=args.seed, device=args.device)
    _say(f"pronoun bias after \". the <occupation> said that\" ({args.sentences} generated sentences, skew "
         f"{args.skew}, {args.iters} steps; a model matching the data scores {r['expected_bias_skewed']:.2f})")
    for name in ("skewed", "augmented"):
        _say(f"  {name:10s} bias {r[name]['bias']:.3f}  (stereotype {r[name]['stereotype']:+.3f}, "
             f"train loss {r[name]['final_train_loss']:.3f})")
    return r


# ----------------------------------------------------------------------------- regularize
def _regularize(args):
    text = load_text(TrainConfig(dataset="shakespeare", data_path=args.data_path))
    r = regularization_experiment(text, args.train_chars, args.iters, eval_iters=args.eval_iters, device=args.device,
                                  log_every=max(args.iters // 4, 1))
    _say(f"train/validation gap, {r['train_chars']:,} training characters, {args.iters} steps")
    _say(f"  {'setting':22s} {'train':>7s} {'val':>7s} {'gap':>7s}")
    for row in r["rows"]:
        _say(f"  {row['name']:22s} {row['train_loss']:7.4f} {row['val_loss']:7.4f} {row['gap']:7.4f}")
    return r


_ACTIONS = {"flops": _flops, "memory": _memory, "quantize": _quantize, "prune": _prune, "distill": _distill,
            "precision": _precision, "bias": _bias, "regularize": _regularize, "eval": _evaluate}
