"""The command line: ``python -m tinyllm <command>``.

    train   train a model from a preset (then sample from it); --resume continues a run
    sample  generate text (or translate) with a trained checkpoint
    eval    evaluate a checkpoint: loss, perplexity, token accuracy (exact match for seq2seq)
    bench   time tinyllm against PyTorch on the same model (see tinyllm.bench)
    demo    a small graph and its gradients, to check against PyTorch
    compress  what a model costs and how to cut it (flops, memory, quantize, prune, distill, ...)
    finetune  instruction-tune a trained model (LoRA or every weight) on the café chat

Every field of :class:`tinyllm.train.TrainConfig` can be overridden: ``--max-iters 500
--n-embd 64 --dropout 0.1``. ``--model gpt|llama|seq2seq`` picks the model's family (the
preset's model when it is of that family, else a small one), and the model's flags
(``--n-layer``, ``--n-embd``, ``--block-size``, ``--n-kv-head``, ...) set fields of its config;
a flag its family does not have is refused.

Nothing is lost and nothing hangs: ``train`` refuses a run folder that holds a checkpoint
unless told to ``--resume`` it or to ``--overwrite`` it, and checks the folder, the options
and the memory a step needs before any work starts. Every failure ends with one line
``error: ...`` naming the option or file and what was expected, and a non-zero exit status:
2 for a mistake in the arguments, 1 for a problem found while running, 130 for an
interrupt. docs/RELIABILITY.md lists what each command refuses.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import sys
import typing

from .cli_options import (ArgumentParser, CommandError, UsageError, check_device, check_output_file,
                          check_writable_folder, integer, json_text, number, optional, path_name, write_json)
from .models import MODEL_FAMILIES, family_of
from .train import ConfigError, PRESETS, TrainConfig, Trainer, read_checkpoint, replace_model, small_model
from .compress.flops import STANDARD_SIZES as CONFIGS
from .finetune import add_arguments as add_finetune_arguments, run as run_finetune
from . import backend
from .distributed.communicator import launched_world_size
from .distributed.launch import run_under_mpiexec
from .demo import run
from .assignments.cli import main as assign_main
from .compress_cli import main as compress_main
from .bench import profile_report, run_bench
from .distributed.training import DistributedTrainer

__all__ = ["main", "build_parser"]

# what --resume may change; every other option must agree with the checkpoint's config
RESUMABLE = ("max_iters", "lr_decay_iters", "eval_interval", "eval_iters", "progress", "num_samples",
             "max_new_tokens", "temperature", "top_k", "top_p", "prompt")

# the most batches an evaluation may draw per split: an evaluation cannot be made to run for hours
# (the trainer stops one at the next batch on Ctrl-C or SIGTERM); the presets draw 10 to 200
MAX_EVAL_ITERS = 10_000


def _parse_bool(text):
    value = text.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _config_fields():
    """(name, type hint) of the run's fields (TrainConfig's but ``model``, the model's flags' own)."""
    hints = typing.get_type_hints(TrainConfig)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(TrainConfig) if f.name != "model"]


def _model_fields():
    """name -> (type hint, the families that have it) of the model's flags: every field of a
    family's config but ``vocab_size`` (the tokenizer's) and the norms' epsilons."""
    fields = {}
    for family, (_, config_class) in MODEL_FAMILIES.items():
        hints = typing.get_type_hints(config_class)
        for field in dataclasses.fields(config_class):
            if field.name not in ("vocab_size", "layer_norm_eps", "rms_norm_eps"):
                fields.setdefault(field.name, (hints[field.name], []))[1].append(family)
    return fields


MODEL_FIELDS = _model_fields()


def _flag(field):
    return "--" + field.replace("_", "-")


def _option_type(hint):
    """(argparse type, metavar) of a config field annotated ``hint``."""
    args = typing.get_args(hint)
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    kind = {bool: _parse_bool, int: integer(-sys.maxsize), float: number(), str: str}.get(base, str)
    return (optional(kind) if type(None) in args else kind), base.__name__.upper()


def _add_config_overrides(parser):
    model = parser.add_argument_group("the model (default: the preset's)")
    model.add_argument("--model", dest="model_family", choices=list(MODEL_FAMILIES), default=None,
                       help="its family: the preset's model when it is of this family, else a small one "
                            "(4 layers, 4 heads, width 128, 64 positions); the flags below set its fields")
    for name, (hint, families) in MODEL_FIELDS.items():
        kind, metavar = _option_type(hint)
        only = None if len(families) == len(MODEL_FAMILIES) else f"{' and '.join(families)} only"
        model.add_argument(_flag(name), dest=f"model_{name}", type=kind, default=None, metavar=metavar, help=only)
    group = parser.add_argument_group("run config overrides (any other TrainConfig field; default: the preset's)")
    for name, hint in _config_fields():
        if name in ("device", "out_dir"):
            continue  # --device and --out have their own options
        kind, metavar = _option_type(hint)
        group.add_argument(_flag(name), dest=f"cfg_{name}", type=kind, default=None, metavar=metavar)


def _bench_configs(text):
    names = [part.strip() for part in text.split(",")]
    unknown = [name for name in names if name not in CONFIGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(sorted(CONFIGS))}, "
                                         f"got {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m tinyllm", description="tinyllm: a teachable LLM on NumPy/CuPy",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model from a preset, then sample from it")
    train.add_argument("--preset", choices=sorted(PRESETS), default=None,
                       help="default: 'default'; with --resume it only names the run folder")
    train.add_argument("--device", choices=["cpu", "cuda"], default=None)
    train.add_argument("--out", type=path_name, default=None,
                       help="run folder (checkpoint, loss.png); default runs/<preset>")
    train.add_argument("--resume", action="store_true",
                       help="continue the run saved in --out (its model, data and tokenizer)")
    train.add_argument("--overwrite", action="store_true",
                       help="start again in a folder that holds a run (the old checkpoint is kept as "
                            "ckpt.safetensors.bak until the new run's first save)")
    train.add_argument("--no-sample", action="store_true", help="skip sampling after training")
    # several processes (tinyllm.distributed): one rank of `mpiexec -n N`, or start N ranks
    train.add_argument("--distributed", nargs="?", const="auto", choices=["auto", "mpi", "nccl"], default=None,
                       help="data-parallel training, this process being one rank of `mpiexec -n N`")
    train.add_argument("--nproc", type=int, default=None, help="run this command on N ranks under mpiexec")
    _add_config_overrides(train)

    sample = sub.add_parser("sample", help="generate text (or translate) with a trained checkpoint")
    sample.add_argument("--out", type=path_name, default=None,
                        help="run folder holding ckpt.safetensors (or that file)")
    sample.add_argument("--preset", choices=sorted(PRESETS), default="default",
                        help="used to find the run folder when --out is not given")
    sample.add_argument("--device", choices=["cpu", "cuda"], default=None)
    sample.add_argument("--prompt", default=None)
    sample.add_argument("--num-samples", type=integer(1), default=1)
    sample.add_argument("--max-new-tokens", type=integer(0), default=None, help="0 generates nothing")
    sample.add_argument("--temperature", type=number(0), default=None, help="0: always the likeliest token")
    sample.add_argument("--top-k", type=optional(integer(1)), default=None)
    sample.add_argument("--top-p", type=optional(number(0, 1, open_below=True)), default=None)
    sample.add_argument("--no-cache", action="store_true", help="generate without the KV cache")
    sample.add_argument("--beam-size", type=integer(1), default=None,
                        help="beam search: the likeliest continuation of N kept at each step, not a sample")
    sample.add_argument("--stop", action="append", default=[], metavar="TEXT",
                        help="end a continuation at this text (one token of the model's tokenizer; repeatable)")
    sample.add_argument("--seed", type=integer(0), default=None)

    evaluate = sub.add_parser("eval", help="evaluate a checkpoint on its validation data")
    evaluate.add_argument("--out", type=path_name, default=None,
                          help="run folder holding ckpt.safetensors (or that file)")
    evaluate.add_argument("--preset", choices=sorted(PRESETS), default="default")
    evaluate.add_argument("--device", choices=["cpu", "cuda"], default=None)
    evaluate.add_argument("--eval-iters", type=integer(1, MAX_EVAL_ITERS), default=None)
    evaluate.add_argument("--json", dest="json_path", type=path_name, default=None,
                          help="also write the metrics here")

    bench = sub.add_parser("bench", help="time tinyllm against PyTorch on the same GPT")
    bench.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    bench.add_argument("--configs", type=_bench_configs, default="S,M", help="comma-separated: S, M")
    bench.add_argument("--rounds", type=integer(1), default=None,
                       help="alternating rounds of one process per framework (default 3; --quick: 1)")
    bench.add_argument("--profile", action="store_true",
                       help="instead of comparing: where tinyllm's training step spends its time, per config")
    bench.add_argument("--end-to-end", action="store_true",
                       help="also time train --preset shakespeare-char against the same recipe in PyTorch")
    bench.add_argument("--json", dest="json_path", type=path_name, default=None, help="write the results as JSON here")
    bench.add_argument("--plot", dest="plot_path", type=path_name, default=None, help="save a bar chart (PNG) here")
    bench.add_argument("--quick", action="store_true", help="few steps, for a smoke test")

    sub.add_parser("demo", help="a small graph, its backward, numbers to check against PyTorch")

    assign = sub.add_parser("assign", help="classroom assignments (release, grade): see tinyllm.assignments")
    assign.add_argument("rest", nargs=argparse.REMAINDER)

    compress = sub.add_parser("compress", help="FLOPs, memory, quantization, pruning, distillation, mixed "
                                               "precision, bias: see tinyllm.compress", add_help=False)
    compress.add_argument("-h", "--help", dest="compress_help", action="store_true")
    compress.add_argument("rest", nargs=argparse.REMAINDER)

    # --- finetune (tinyllm.finetune) ---
    finetune = sub.add_parser("finetune", help="instruction-tune a trained model (--lora for adapters)")
    add_finetune_arguments(finetune)
    return parser


def _one_line(error):
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":  # the two ways of starting ranks must not be mixed up
        ranks = launched_world_size()
        if ranks is not None and args.nproc is not None:
            parser.error(f"--nproc starts mpiexec, but this process already is one of {ranks} ranks that "
                         f"mpiexec started; use --distributed there instead of --nproc")
        if ranks is not None and ranks > 1 and args.distributed is None:
            parser.error(f"started by mpiexec as one of {ranks} ranks without --distributed: each rank "
                         f"would train alone and write the same checkpoint; add --distributed")
    if getattr(args, "nproc", None) is not None:  # `train --nproc N`: this command on N ranks under mpiexec
        if args.nproc < 1:
            parser.error(f"--nproc must be a number of processes >= 1, got {args.nproc}")
        return run_under_mpiexec(sys.argv[1:] if argv is None else list(argv), args.nproc)
    previous = _sigterm_as_interrupt()
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        # the trainer catches signals during training and saves on the way out (it says so);
        # an interrupt anywhere else (preparing data, sampling) saves nothing
        if not getattr(args, "_saved_on_interrupt", False):
            folder = getattr(args, "_run_folder", None)
            last = os.path.join(folder, Trainer.CHECKPOINT) if folder else None
            where = f"the last one, if any, is {last}" if last else "nothing was being trained"
            print(f"interrupted: no checkpoint was saved ({where})", file=sys.stderr)
        return 130
    except UsageError as exc:
        print(f"error: {_one_line(exc)} (see python -m tinyllm {args.command} --help)", file=sys.stderr)
        return 2
    except MemoryError as exc:
        detail = _one_line(exc) if str(exc) else "lower --batch-size, --block-size, --n-embd or --n-layer"
        print(f"error: not enough memory: {detail}", file=sys.stderr)
        return 1
    except (CommandError, ValueError, RuntimeError, OSError) as exc:
        # user-facing problems (missing data, bad checkpoint, unknown device): one clear line
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug in tinyllm: still one line, and it says so
        print(f"error: internal error ({type(exc).__name__}: {_one_line(exc)}); this is a bug in tinyllm, "
              f"please report it with the command that caused it", file=sys.stderr)
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


def _dispatch(args) -> int:
    check_device(getattr(args, "device", None))
    if args.command == "demo":
        run()
        return 0
    if args.command == "assign":
        return assign_main(args.rest)
    if args.command == "compress":
        return compress_main(["--help"] if args.compress_help or not args.rest else args.rest)
    if args.command == "finetune":  # --- finetune (tinyllm.finetune) ---
        return run_finetune(args)
    if args.command == "bench":
        for path, option in ((args.json_path, "--json"), (args.plot_path, "--plot")):
            if path:
                check_output_file(path, option)
        if args.profile:
            reports = {}
            for name in args.configs:
                text, reports[name] = profile_report(name, device=args.device)
                print(text + "\n")
            if args.json_path:
                with open(args.json_path, "w") as f:
                    json.dump(reports, f, indent=2)
            return 0
        run_bench(device=args.device, configs=args.configs, rounds=args.rounds, json_path=args.json_path,
                  quick=args.quick, plot_path=args.plot_path, end_to_end=args.end_to_end)
        return 0
    if args.command == "train":
        return _train(args)
    if args.command == "sample":
        return _sample(args)
    return _evaluate(args)


# ----------------------------------------------------------------------------- train
def _train(args) -> int:
    folder = args.out or PRESETS[args.preset or "default"]["out_dir"]
    args._run_folder = folder
    checkpoint = os.path.join(folder, Trainer.CHECKPOINT)
    backup = checkpoint + ".bak"
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other: continue the run, or start it again")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise CommandError(f"--out {folder}: a file is there; expected the run folder")
    if args.resume:
        if not os.path.isfile(checkpoint):
            hint = (f"; {backup} holds the run an --overwrite set aside: rename it to {Trainer.CHECKPOINT} "
                    f"to resume it" if os.path.isfile(backup) else "")
            raise CommandError(f"--resume: no checkpoint at {checkpoint}{hint}")
        cfg, state = _resumed_config(args, folder, checkpoint)
    else:
        cfg, state = _config_from_args(args, folder), None
        for existing in (checkpoint, backup):
            if os.path.exists(existing) and not args.overwrite:
                raise CommandError(
                    f"--out {folder}: {existing} holds a trained run; --resume continues it, --overwrite "
                    f"starts again (keeping it as {os.path.basename(backup)} until the new run's first save)")
    check_writable_folder(folder, f"--out {folder}")
    _check_run_files(folder)

    if args.distributed:  # one rank of a data-parallel run (tinyllm.distributed.training)
        trainer = DistributedTrainer.from_command_line(cfg, args.resume, args.distributed, checkpoint=state)
    else:
        trainer = Trainer(cfg, resume=args.resume, checkpoint=state)  # data, tokenizer, memory checked here
    trainer.cfg.prompt = _checked_prompt(trainer, args.cfg_prompt)  # before the work, not after it
    trainer.on_interrupt_saved = lambda: setattr(args, "_saved_on_interrupt", True)
    writer = getattr(trainer, "communicator", None) is None or trainer.communicator.rank == 0  # files: rank 0 only
    replacing = writer and args.overwrite and (os.path.exists(checkpoint) or os.path.exists(backup))
    if replacing:
        if os.path.exists(checkpoint):
            os.replace(checkpoint, backup)  # kept until the new run's first checkpoint is on disk
        trainer.on_saved = lambda: _discard(backup)
    print(f"training {cfg.family} ({trainer.model.num_parameters():,} parameters) "
          f"on {cfg.data_path or cfg.dataset}, {cfg.max_iters} steps, device {cfg.device}; run folder {folder}")
    if trainer.step >= cfg.max_iters:
        print(f"(the run is at step {trainer.step} already; raise --max-iters to train further)")
    try:
        trainer.train()
    finally:
        if replacing and os.path.exists(backup) and not os.path.exists(checkpoint):
            os.replace(backup, checkpoint)  # the new run saved nothing: the old one stays
            print(f"(the new run saved nothing: {checkpoint} is the earlier run's again)", file=sys.stderr)
    result = trainer.last_eval if hasattr(trainer, "last_eval") else trainer.evaluate()
    print(json_text({"step": trainer.step, "train_loss": result["train"]["loss"],
                     "val_loss": result["val"]["loss"],
                     **{k: v for k, v in result.items() if not isinstance(v, dict)}}, indent=None))
    if not args.no_sample:
        for _ in range(cfg.num_samples):
            print("-" * 60)
            print(trainer.sample())
    return 0


def _check_run_files(folder):
    """Refuse, before training, a run folder whose checkpoint or loss curve could not be
    written (a folder of that name, a read-only file): the first evaluation would fail."""
    for name, what in ((Trainer.CHECKPOINT, "its checkpoint"), ("loss.png", "its loss curve")):
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            raise CommandError(f"--out {folder}: {path} is a folder; the run writes {what} there")
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise CommandError(f"--out {folder}: {path} cannot be written; the run writes {what} there")


def _checked_prompt(trainer, given, fall_back=True):
    """The prompt sampling will start from, checked against the run's tokenizer before any
    work: ``--prompt`` if given, else the run's config's. With ``fall_back`` (``train``), a
    preset's prompt that a character vocabulary learned from one's own data cannot encode
    ("Once upon a time" on a file without an "O") does not stop the run: it becomes a newline
    if the vocabulary has one, else the vocabulary's first character, and says so (the config
    saves it, so ``sample`` starts from it too)."""
    cfg = trainer.cfg
    tokenizer = trainer.task.src_tok if cfg.family == "seq2seq" else trainer.task.tokenizer
    prompt = cfg.prompt if given is None else given
    try:
        tokenizer.encode(prompt)
        return prompt
    except ValueError as error:
        problem = error
    if given is not None:
        raise CommandError(f"--prompt: {problem}") from None
    if not fall_back or cfg.tokenizer != "char" or cfg.family == "seq2seq":
        raise CommandError(f"--prompt: the run's prompt {prompt!r} (its config's; no --prompt was given): "
                           f"{problem}; give --prompt with text the vocabulary holds") from None
    fallback = "\n" if "\n" in tokenizer.chars else tokenizer.chars[0]
    print(f"(the prompt {prompt!r} has characters the vocabulary of {cfg.data_path or cfg.dataset} lacks: "
          f"samples start from {fallback!r} instead; --prompt chooses another)")
    return fallback


def _discard(path):
    if os.path.exists(path):
        os.remove(path)


def _usage_error(error):
    """A TrainConfig refusal as a usage error naming the option."""
    option = "--out" if error.field == "out_dir" else _flag(error.field)
    return UsageError(f"{option} must be {error.rule}, got {error.value!r}")


def _config_from_args(args, folder):
    values = dict(PRESETS[args.preset or "default"])
    for name, _hint in _config_fields():
        override = getattr(args, f"cfg_{name}", None)
        if override is not None:
            values[name] = override
    if args.device:
        values["device"] = args.device
    values["model"] = _model_from_args(args, values["model"])
    values["out_dir"] = folder
    if values.get("data_path"):  # saved whole: --resume works from any folder
        values["data_path"] = os.path.abspath(values["data_path"])
    return _command_line_config(values)


def _model_flags(args, family):
    """The model's flags given (field -> value); one the ``family`` does not have is refused."""
    given = {name: getattr(args, f"model_{name}") for name in MODEL_FIELDS
             if getattr(args, f"model_{name}", None) is not None}
    for name in given:
        families = MODEL_FIELDS[name][1]
        if family not in families:
            raise UsageError(f"{_flag(name)}: a {family} model has no {name} (a setting of "
                             f"{' and '.join(families)} only)")
    return given


def _model_from_args(args, preset_model):
    """The preset's model config, or a small one of the ``--model`` family when that differs,
    with the model's flags applied."""
    family = args.model_family or family_of(preset_model)
    model = preset_model if family == family_of(preset_model) else small_model(family)
    changes = _model_flags(args, family)
    try:
        return replace_model(model, **changes)
    except ConfigError as exc:
        raise _usage_error(exc) from None


def _command_line_config(values):
    """TrainConfig(**values), with what the command line must refuse besides: a run with
    ``eval_interval`` 0 would save nothing (the library allows it for experiments)."""
    if values.get("eval_interval", 1) == 0:
        raise UsageError("--eval-interval must be an integer >= 1, got 0 (a run that never evaluates saves nothing)")
    if isinstance(values.get("eval_iters"), int) and values["eval_iters"] > MAX_EVAL_ITERS:
        raise UsageError(f"--eval-iters must be an integer in [1, {MAX_EVAL_ITERS:,}] (batches per split at "
                         f"each evaluation), got {values['eval_iters']}")
    try:
        return TrainConfig(**values)
    except ConfigError as exc:
        raise _usage_error(exc) from None


def _resumed_config(args, folder, checkpoint):
    """The checkpoint's own config, with the options that may change on resume applied;
    an option that contradicts the checkpoint is refused, naming both values."""
    tensors, meta, saved = read_checkpoint(checkpoint)
    values = {field.name: getattr(saved, field.name) for field in dataclasses.fields(saved)}
    values["data_path"] = _resumed_data_path(args.cfg_data_path, saved.data_path, checkpoint)

    def refuse(name, given, has):
        allowed = ", ".join(_flag(field) for field in RESUMABLE)
        raise UsageError(f"{_flag(name)} {given}: the run in {checkpoint} has {name} = {has!r}; --resume may "
                         f"change only {allowed} and --device (or start again with --overwrite)")
    if args.model_family not in (None, saved.family):
        refuse("model", args.model_family, saved.family)
    for name, given in _model_flags(args, saved.family).items():
        if given != getattr(saved.model, name):
            refuse(name, given, getattr(saved.model, name))
    for name, _hint in _config_fields():
        given = getattr(args, f"cfg_{name}", None)
        if given is None or given == values[name] or name == "data_path":  # (data_path: just above)
            continue
        if name not in RESUMABLE:
            refuse(name, given, values[name])
        values[name] = given
    values["out_dir"] = folder
    if args.device:
        values["device"] = args.device
    return _command_line_config(values), (checkpoint, tensors, meta)


def _resumed_data_path(given, saved, checkpoint):
    """The data file a resumed run reads. The checkpoint names it (whole since runs save it
    so; a run saved before then holds the path as typed, relative to the folder it was started
    in). ``--data-path`` may name the same file by any path, or, where the saved one is not
    found from here (the file or the folder moved), its new place."""
    if given is not None and (saved is None or os.path.isfile(saved) and not (
            os.path.isfile(given) and os.path.samefile(given, saved))):
        raise UsageError(f"--data-path {given}: the run in {checkpoint} was trained on "
                         f"{saved or 'a shipped data set'}; --resume reads the same data (or start again "
                         f"with --overwrite)")
    if saved is None or os.path.isfile(saved):
        return saved and os.path.abspath(saved)
    if given is not None:
        return os.path.abspath(given)
    relative = "" if os.path.isabs(saved) else \
        f" (relative to the folder the run started in: {os.path.abspath(saved)} here)"
    raise CommandError(f"--resume: the run in {checkpoint} was trained on data_path {saved}, which does not exist"
                       f"{relative}; pass --data-path with that file's path")


# ----------------------------------------------------------------------------- sample, eval
def _checkpoint_of(args):
    """The checkpoint ``--out`` names: a run folder's ckpt.safetensors, or that file itself."""
    path = args.out or PRESETS[args.preset]["out_dir"]
    checkpoint = path if os.path.isfile(path) else os.path.join(path, Trainer.CHECKPOINT)
    if not os.path.isfile(checkpoint):
        raise CommandError(f"no checkpoint at {checkpoint}; train first (python -m tinyllm train --out {path})")
    return checkpoint


# the sampling options of Trainer.sample, by the flag that sets each (for its error messages)
SAMPLE_FLAGS = {"beam_size": "--beam-size", "stop": "--stop", "temperature": "--temperature", "top_k": "--top-k",
                "top_p": "--top-p", "use_cache": "--no-cache"}


def _sample(args) -> int:
    trainer = Trainer.from_checkpoint(_checkpoint_of(args), device=args.device)
    _checked_prompt(trainer, args.prompt, fall_back=False)
    if args.seed is not None:
        backend.manual_seed(args.seed)
    options = {k: v for k, v in dict(temperature=args.temperature, top_k=args.top_k,
                                      top_p=args.top_p).items() if v is not None}
    if args.no_cache:
        options["use_cache"] = False
    if args.beam_size is not None:
        options["beam_size"] = args.beam_size
    if args.stop:
        options["stop"] = args.stop
    for _ in range(args.num_samples):
        try:
            text = trainer.sample(args.prompt, max_new_tokens=args.max_new_tokens, **options)
        except ValueError as error:  # options that do not fit this model: said with the flags' names
            raise CommandError(re.sub(rf"\b({'|'.join(SAMPLE_FLAGS)})\b", lambda m: SAMPLE_FLAGS[m.group(1)],
                                      str(error))) from None
        print(text)
        print("-" * 60)
    return 0


def _evaluate(args) -> int:
    checkpoint = _checkpoint_of(args)
    if args.json_path:
        check_output_file(args.json_path, "--json", reading=[checkpoint])
    trainer = Trainer.from_checkpoint(checkpoint, device=args.device)
    if args.eval_iters:
        trainer.cfg.eval_iters = args.eval_iters
    result = trainer.evaluate()
    print(json_text({"step": trainer.step, **result}))
    if args.json_path:
        write_json(args.json_path, {"step": trainer.step, **result})
    return 0
