"""The command line: ``python -m tinyllm <command>``.

    train   train a model from a preset (then sample from it); --resume continues a run
    sample  generate text (or translate) with a trained checkpoint
    eval    evaluate a checkpoint: loss, perplexity, token accuracy (exact match for seq2seq)
    bench   time tinyllm against PyTorch on the same model (see tinyllm.bench)
    demo    a small graph and its gradients, to check against PyTorch
    compress  what a model costs and how to cut it (flops, memory, quantize, prune, distill, ...)
    finetune  instruction-tune a trained model (LoRA or every weight) on the café chat

Every field of :class:`tinyllm.train.TrainConfig` can be overridden: ``--max-iters 500
--n-embd 64 --dropout 0.1``. Errors in the arguments end in argparse's usage message.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import typing

__all__ = ["main", "build_parser"]


def _config_fields():
    from .train import TrainConfig
    hints = typing.get_type_hints(TrainConfig)
    return [(f.name, hints[f.name], f.default) for f in dataclasses.fields(TrainConfig)]


def _parse_bool(text):
    value = text.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _optional(kind):
    def parse(text):
        return None if text.lower() == "none" else kind(text)
    parse.__name__ = kind.__name__
    return parse


def _add_config_overrides(parser):
    group = parser.add_argument_group("config overrides (any TrainConfig field; default: the preset's)")
    for name, hint, _default in _config_fields():
        if name in ("device", "out_dir"):
            continue  # --device and --out have their own options
        args = typing.get_args(hint)
        base = next((a for a in args if a is not type(None)), hint) if args else hint
        kind = {bool: _parse_bool, int: int, float: float, str: str}.get(base, str)
        if type(None) in args:
            kind = _optional(kind)
        flag = "--" + name.replace("_", "-")
        group.add_argument(flag, dest=f"cfg_{name}", type=kind, default=None, metavar=base.__name__.upper())


def build_parser() -> argparse.ArgumentParser:
    from .train import PRESETS
    parser = argparse.ArgumentParser(
        prog="python -m tinyllm", description="tinyllm: a teachable LLM on NumPy/CuPy",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model from a preset, then sample from it")
    train.add_argument("--preset", choices=sorted(PRESETS), default="default")
    train.add_argument("--device", choices=["cpu", "cuda"], default=None)
    train.add_argument("--out", default=None, help="run folder (checkpoint, loss.png); default runs/<preset>")
    train.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    train.add_argument("--no-sample", action="store_true", help="skip sampling after training")
    _add_config_overrides(train)

    sample = sub.add_parser("sample", help="generate text (or translate) with a trained checkpoint")
    sample.add_argument("--out", default=None, help="run folder holding ckpt.safetensors")
    sample.add_argument("--preset", choices=sorted(PRESETS), default="default",
                        help="used to find the run folder when --out is not given")
    sample.add_argument("--device", choices=["cpu", "cuda"], default=None)
    sample.add_argument("--prompt", default=None)
    sample.add_argument("--num-samples", type=int, default=1)
    sample.add_argument("--max-new-tokens", type=int, default=None)
    sample.add_argument("--temperature", type=float, default=None)
    sample.add_argument("--top-k", type=_optional(int), default=None)
    sample.add_argument("--top-p", type=_optional(float), default=None)
    sample.add_argument("--no-cache", action="store_true", help="generate without the KV cache")
    sample.add_argument("--seed", type=int, default=None)

    evaluate = sub.add_parser("eval", help="evaluate a checkpoint on its validation data")
    evaluate.add_argument("--out", default=None)
    evaluate.add_argument("--preset", choices=sorted(PRESETS), default="default")
    evaluate.add_argument("--device", choices=["cpu", "cuda"], default=None)
    evaluate.add_argument("--eval-iters", type=int, default=None)
    evaluate.add_argument("--json", dest="json_path", default=None, help="also write the metrics here")

    bench = sub.add_parser("bench", help="time tinyllm against PyTorch on the same GPT")
    bench.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    bench.add_argument("--configs", default="S,M", help="comma-separated: S, M")
    bench.add_argument("--steps", type=int, default=None, help="timed steps per config")
    bench.add_argument("--json", dest="json_path", default=None, help="write the results as JSON here")
    bench.add_argument("--plot", dest="plot_path", default=None, help="save a bar chart (PNG) here")
    bench.add_argument("--quick", action="store_true", help="few steps, for a smoke test")

    sub.add_parser("demo", help="a small graph, its backward, numbers to check against PyTorch")

    assign = sub.add_parser("assign", help="classroom assignments (release, grade): see tinyllm.assignments")
    assign.add_argument("rest", nargs=argparse.REMAINDER)

    compress = sub.add_parser("compress", help="FLOPs, memory, quantization, pruning, distillation, mixed "
                                               "precision, bias: see tinyllm.compress", add_help=False)
    compress.add_argument("-h", "--help", dest="compress_help", action="store_true")
    compress.add_argument("rest", nargs=argparse.REMAINDER)

    # --- finetune (tinyllm.finetune) ---
    from .finetune import add_arguments as add_finetune_arguments
    finetune = sub.add_parser("finetune", help="instruction-tune a trained model (--lora for adapters)")
    add_finetune_arguments(finetune)
    return parser


def _config_from_args(args, parser):
    from .train import PRESETS, TrainConfig
    values = dict(PRESETS[args.preset])
    for name, _hint, _default in _config_fields():
        override = getattr(args, f"cfg_{name}", None)
        if override is not None:
            values[name] = override
    if args.device:
        values["device"] = args.device
    if args.out:
        values["out_dir"] = args.out
    try:
        return TrainConfig(**values)
    except ValueError as exc:  # a value out of range: a usage error, named by its option
        parser.error(str(exc))


def _run_folder(args):
    from .train import PRESETS
    return args.out or PRESETS[args.preset]["out_dir"]


def _load_trainer(args):
    from .train import Trainer
    folder = _run_folder(args)
    path = os.path.join(folder, Trainer.CHECKPOINT)
    if not os.path.exists(path):
        raise SystemExit(f"error: no checkpoint at {path}; train first (python -m tinyllm train --out {folder})")
    return Trainer.from_checkpoint(folder, device=getattr(args, "device", None))


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = _sigterm_as_interrupt()
    try:
        return _dispatch(parser, args)
    except KeyboardInterrupt:
        # the trainer catches signals during training and saves on the way out (it says so);
        # an interrupt anywhere else (preparing data, sampling) saves nothing
        if not getattr(args, "_saved_on_interrupt", False):
            folder = getattr(args, "out", None) or (
                _run_folder(args) if getattr(args, "preset", None) else None)
            from .train import Trainer
            last = os.path.join(folder, Trainer.CHECKPOINT) if folder else None
            where = f"the last one, if any, is {last}" if last else "nothing was being trained"
            print(f"interrupted: no checkpoint was saved ({where})", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, RuntimeError, OSError) as exc:
        # user-facing problems (missing data, bad checkpoint, unknown device): one clear line
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sigterm_as_interrupt():
    """Treat SIGTERM like Ctrl-C until the trainer installs its own handlers."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return None


def _dispatch(parser, args) -> int:
    if args.command == "demo":
        from .demo import run
        run()
        return 0
    if args.command == "assign":
        from .assignments.cli import main as assign_main
        return assign_main(args.rest)
    if args.command == "compress":
        from .compress.cli import main as compress_main
        return compress_main(["--help"] if args.compress_help or not args.rest else args.rest)
    if args.command == "finetune":  # --- finetune (tinyllm.finetune) ---
        from .finetune import run as run_finetune
        return run_finetune(args)
    if args.command == "bench":
        from .bench import run_bench
        run_bench(device=args.device, configs=args.configs.split(","), steps=args.steps,
                  json_path=args.json_path, quick=args.quick, plot_path=args.plot_path)
        return 0
    if args.command == "train":
        from .train import Trainer
        cfg = _config_from_args(args, parser)
        if args.resume and not os.path.exists(os.path.join(cfg.out_dir, Trainer.CHECKPOINT)):
            parser.error(f"--resume: no checkpoint in {cfg.out_dir}")
        trainer = Trainer(cfg, resume=args.resume)
        trainer.on_interrupt_saved = lambda: setattr(args, "_saved_on_interrupt", True)
        print(f"training {cfg.model} ({trainer.model.num_parameters():,} parameters) "
              f"on {cfg.dataset}, {cfg.max_iters} steps, device {cfg.device}; run folder {cfg.out_dir}")
        trainer.train()
        result = trainer.last_eval if hasattr(trainer, "last_eval") else trainer.evaluate()
        print(json.dumps({"step": trainer.step, "train_loss": result["train"]["loss"],
                          "val_loss": result["val"]["loss"],
                          **{k: v for k, v in result.items() if not isinstance(v, dict)}}))
        if not args.no_sample:
            for _ in range(cfg.num_samples):
                print("-" * 60)
                print(trainer.sample())
        return 0
    trainer = _load_trainer(args)
    if args.command == "sample":
        from . import backend
        if args.seed is not None:
            backend.manual_seed(args.seed)
        options = {k: v for k, v in dict(temperature=args.temperature, top_k=args.top_k,
                                          top_p=args.top_p).items() if v is not None}
        if args.no_cache:
            options["use_cache"] = False
        for _ in range(args.num_samples):
            print(trainer.sample(args.prompt, max_new_tokens=args.max_new_tokens, **options))
            print("-" * 60)
        return 0
    if args.command == "eval":
        if args.eval_iters:
            trainer.cfg.eval_iters = args.eval_iters
        result = trainer.evaluate()
        text = json.dumps({"step": trainer.step, **result}, indent=2)
        print(text)
        if args.json_path:
            with open(args.json_path, "w") as f:
                f.write(text + "\n")
        return 0
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
