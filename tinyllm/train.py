"""Training and evaluation: the article's pipeline from text to a trained model.

    data  → clean → tokenize → batches          (Task: LanguageModeling or Translation)
    model → forward → loss → backward → AdamW   (Trainer.train, one screen below)
    every eval_interval steps: evaluate (loss, perplexity, token accuracy; exact match for
    translation), checkpoint (atomic, resumable), loss-curve PNG.

``python -m tinyllm train --preset default`` runs it from the command line; in Python:

    cfg = TrainConfig(**{**PRESETS["default"], "max_iters": 200})
    trainer = Trainer(cfg)
    trainer.train()
    print(trainer.sample("Once upon a time"))
"""
from __future__ import annotations

import dataclasses
import math
import os
import signal
import time
from dataclasses import dataclass

import numpy as np

from . import backend
from .checkpoint import (CheckpointError, generator_state, load_checkpoint, optimizer_from_checkpoint,
                         optimizer_to_checkpoint, save_checkpoint, set_generator_state)
from .data import (BPETokenizer, CausalLMDataset, CharTokenizer, Seq2SeqDataset, clean_text, corpora,
                   date_tokenizers, encode_pairs, make_date_pairs, train_val_split)
from .data.instructions import cafe_documents, chat_tokenizer
from .data.tokenizers import Tokenizer, tokenizer_from_dict
from .functional import cross_entropy
from .models import MODEL_FAMILIES, GPTConfig, LlamaConfig, Seq2SeqConfig, build_model, family_of
from .models.config import ConfigError, check_types, require, shown
from .models.llama import swiglu_hidden_size
from .optim import AdamW, clip_grad_norm_, param_groups
from .optim.schedules import cosine_with_warmup, noam
from .tensor import Tensor, no_grad
from .compress.memory import gpt_activation_bytes
from .generate import generate_text, greedy_translate

__all__ = ["TrainConfig", "ConfigError", "PRESETS", "Trainer", "LanguageModelingTask", "TranslationTask",
           "TrainingDiverged", "read_checkpoint", "checkpoint_tokenizer", "check_weights", "check_memory",
           "estimate_memory_bytes", "evaluate"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


def small_model(family: str):
    """A small model of ``family`` ("gpt", "llama" or "seq2seq"): 4 layers, 4 heads, width
    128, 64 positions (where the family has a context length), the family's other defaults.
    A run's default model is the small GPT; ``--model`` gives the others."""
    _, config_class = MODEL_FAMILIES[family]
    sizes = dict(n_layer=4, n_head=4, n_embd=128)
    if family != "seq2seq":
        sizes["block_size"] = 64
    return config_class(**sizes)


def replace_model(config, **changes):
    """``dataclasses.replace(config, **changes)``, except that a Llama's derived sizes follow
    what they derive from unless given: ``n_kv_head`` stays ``n_head`` (multi-head attention)
    and ``intermediate_size`` stays Llama's rule of ``n_embd`` where they were so."""
    if isinstance(config, LlamaConfig):
        if "n_kv_head" not in changes and config.n_kv_head == config.n_head:
            changes["n_kv_head"] = None
        if "intermediate_size" not in changes and config.intermediate_size == swiglu_hidden_size(config.n_embd):
            changes["intermediate_size"] = None
    return dataclasses.replace(config, **changes)


@dataclass
class TrainConfig:
    """Every knob of a run; presets fill them, the command line overrides any of them.

    ``model`` is the model's own config (a :class:`GPTConfig`, :class:`LlamaConfig` or
    :class:`Seq2SeqConfig`), whose type is the run's :attr:`family`; the task fills in its
    ``vocab_size`` once the tokenizer is known, so a saved run's config carries it."""

    # data
    dataset: str = "tinytales"      # "tinytales" (shipped, data/), "shakespeare", "dates", "cafe"
    data_path: str | None = None    # a local text file instead of the named dataset
    tokenizer: str = "char"         # "char" or "bpe"
    bpe_vocab_size: int = 512
    val_fraction: float = 0.1
    # the model: GPTConfig or LlamaConfig (decoder-only), or Seq2SeqConfig (the article's
    # encoder-decoder TransformerModel); a copy is kept, so a preset's is never changed
    model: GPTConfig | LlamaConfig | Seq2SeqConfig = dataclasses.field(default_factory=lambda: small_model("gpt"))
    # optimization
    batch_size: int = 12
    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    schedule: str = "cosine"        # "cosine" (warmup + cosine), "noam", "constant"
    warmup_iters: int = 100
    lr_decay_iters: int | None = None  # None: max_iters
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    label_smoothing: float = 0.0
    # evaluation, checkpoints, logging
    eval_interval: int = 250        # 0: no evaluation and no checkpoint (a training-only run)
    eval_iters: int = 20
    out_dir: str = "runs/default"
    progress: bool = True
    # sampling after training
    num_samples: int = 1
    max_new_tokens: int = 300
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = 0.95
    prompt: str = "\n"
    # where and how
    device: str = "cpu"
    seed: int = 1337

    def __post_init__(self):
        """Refuse values that mean nothing, naming the field (the CLI shows this as usage)."""
        def need(ok, field, rule):
            require(ok, self, field, rule)
        need(type(self.model) in (config for _, config in MODEL_FAMILIES.values()), "model",
             "a GPTConfig, LlamaConfig or Seq2SeqConfig")
        self.model = dataclasses.replace(self.model)
        check_types(self, skip=("model",))  # types first: the ranges below compare values
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, str) and not value.isascii():  # a lone surrogate (undecodable argv
                try:                                                # bytes) could never be saved
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    need(False, field.name, "text that UTF-8 can store (it holds a lone surrogate)")
        for field in ("batch_size", "eval_iters", "bpe_vocab_size", "num_samples"):
            need(getattr(self, field) >= 1, field, "an integer >= 1")
        for field in ("max_iters", "warmup_iters", "max_new_tokens", "seed", "eval_interval"):
            need(getattr(self, field) >= 0, field, "an integer >= 0")
        need(self.lr_decay_iters is None or self.lr_decay_iters >= 1, "lr_decay_iters", ">= 1 (or None)")
        for field in ("learning_rate", "min_lr", "weight_decay", "grad_clip", "temperature"):
            value = getattr(self, field)
            need(math.isfinite(value) and value >= 0, field, "a finite number >= 0")
        need(0.0 <= self.label_smoothing < 1.0, "label_smoothing", "in [0, 1)")
        need(0.0 < self.val_fraction < 1.0, "val_fraction", "in (0, 1)")
        need(0.0 <= self.beta1 < 1.0, "beta1", "in [0, 1)")
        need(0.0 <= self.beta2 < 1.0, "beta2", "in [0, 1)")
        need(self.top_k is None or self.top_k >= 1, "top_k", ">= 1 (or None)")
        need(self.top_p is None or 0.0 < self.top_p <= 1.0, "top_p", "in (0, 1] (or None)")
        need(self.tokenizer in ("char", "bpe"), "tokenizer", "'char' or 'bpe'")
        if self.tokenizer == "bpe":
            need(self.bpe_vocab_size >= 256, "bpe_vocab_size", "an integer >= 256 (the 256 byte tokens come first)")
        need(self.schedule in ("cosine", "noam", "constant"), "schedule", "'cosine', 'noam' or 'constant'")
        if self.family == "seq2seq":
            need(self.dataset == "dates", "dataset", "'dates' for the seq2seq model")
        else:
            need(self.data_path is not None or self.dataset in ("tinytales", "shakespeare", "cafe"), "dataset",
                 "'tinytales', 'shakespeare' or 'cafe' (or data_path=...)")

    @property
    def family(self) -> str:
        """The model's family: "gpt", "llama" or "seq2seq" (from the type of ``model``)."""
        return family_of(self.model)

    def to_json(self) -> dict:
        """The fields as JSON; ``model`` as ``{"family": ..., its fields}``."""
        data = dataclasses.asdict(self)
        data["model"] = {"family": self.family, **data["model"]}
        return data

    @classmethod
    def from_json(cls, data: dict, source: str = "config") -> "TrainConfig":
        """The config saved with :meth:`to_json`, or in the flat form versions before the
        nested ``model`` wrote (``"model": "gpt"`` and the model's fields next to the run's).
        Fields it lacks take their defaults, names no config knows are ignored. Anything else
        is a ValueError whose message starts with ``source`` (e.g. the checkpoint's path)."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object of TrainConfig fields, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)} - {"model"}
        try:
            model = data.get("model", "gpt")
            if isinstance(model, dict):
                family, fields = model.get("family"), model
            else:  # the flat form: the model's fields among the run's, absent ones at that form's defaults
                family, fields = model, {**_FLAT_MODEL_DEFAULTS, **data}
            if family not in MODEL_FAMILIES:
                raise ConfigError("TrainConfig", "model", f"a family of {', '.join(map(repr, MODEL_FAMILIES))}",
                                  family)
            config_class = MODEL_FAMILIES[family][1]
            model = config_class(**{f.name: fields[f.name] for f in dataclasses.fields(config_class) if f.name in fields})
            return cls(model=model, **{k: v for k, v in data.items() if k in known})
        except ConfigError as error:
            raise ValueError(f"{source}: {error}") from None


# the model fields of the flat TrainConfig that versions before the nested ``model`` had, and
# their defaults there: a flat config that lacks one (written before it existed) meant these
_FLAT_MODEL_DEFAULTS = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0, bias=True,
                            gelu_approximate="tanh", tie_embeddings=True, d_ff=512, n_kv_head=None,
                            intermediate_size=None, rope_theta=10000.0)


PRESETS = {
    # about two minutes on 2 idle CPU cores, on the corpus the project ships (no network needed).
    # A 512-token BPE vocabulary learned from the corpus (0.1 s): a token is 2.3 characters on
    # average, so a 64-token window holds a sentence or two and the sample is made of words.
    # Characters instead (--tokenizer char) reach validation loss 0.567 per character in the
    # same steps, and their samples drift into non-words ("But leas it goo, nen ginghed")
    "default": dict(dataset="tinytales", tokenizer="bpe", bpe_vocab_size=512,
                    model=GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=64),
                    batch_size=12, max_iters=1500, eval_interval=250, learning_rate=1e-3,
                    min_lr=1e-4, warmup_iters=100, out_dir="runs/default", prompt="Once upon a time"),
    # nanoGPT's shakespeare-char CPU recipe (4/4/128, block 64, batch 12, 2000 steps, lr 1e-3 with
    # warmup and cosine decay, AdamW betas 0.9/0.99, weight decay 0.1, dropout 0, no biases, exact
    # GELU), with three changes a sweep over seeds chose (README, "Results"): separate input and
    # output embeddings, no gradient clipping, and a cosine floor of 3e-4 instead of 1e-4. Exactly
    # nanoGPT's: --tie-embeddings true --grad-clip 1.0 --min-lr 1e-4
    "shakespeare-char": dict(dataset="shakespeare",
                             model=GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=64, bias=False,
                                             gelu_approximate="none", tie_embeddings=False),
                             batch_size=12, max_iters=2000, lr_decay_iters=2000, eval_interval=250,
                             eval_iters=200, learning_rate=1e-3, min_lr=3e-4, warmup_iters=100, grad_clip=0.0,
                             out_dir="runs/shakespeare-char", prompt="ROMEO:"),
    # --- Llama (tinyllm.models.llama) and the café chat (tinyllm.finetune) ---
    # shakespeare-char with a Llama block (RMSNorm, rotary, SwiGLU) at GPT's parameter count:
    # no position table (−8,192 parameters) and a SwiGLU width of 347 (3·128·347 against GPT's
    # 8·128²) leave 812,928 parameters against GPT's 812,416 (docs/llama.md)
    "shakespeare-char-llama": dict(dataset="shakespeare",
                                   model=LlamaConfig(n_layer=4, n_head=4, n_embd=128, intermediate_size=347,
                                                     block_size=64),
                                   batch_size=12, max_iters=2000, lr_decay_iters=2000, eval_interval=250,
                                   eval_iters=200, learning_rate=1e-3, min_lr=3e-4, warmup_iters=100,
                                   grad_clip=0.0, out_dir="runs/shakespeare-char-llama", prompt="ROMEO:"),
    # the base model that `python -m tinyllm finetune` instruction-tunes: a Llama with grouped-query
    # attention, pretrained on documents about the café in English and Chinese, with a tokenizer that
    # already has the chat template's special tokens (--model gpt --block-size 96 works as well)
    "cafe": dict(dataset="cafe",
                 model=LlamaConfig(n_layer=4, n_head=4, n_kv_head=2, n_embd=128, intermediate_size=344,
                                   block_size=96),
                 batch_size=12, max_iters=1500, eval_interval=250, eval_iters=20, learning_rate=1e-3,
                 min_lr=1e-4, warmup_iters=100, out_dir="runs/cafe", prompt="On Monday"),
    # the article's encoder-decoder on a toy translation: dates into ISO 8601
    "seq2seq": dict(dataset="dates", model=Seq2SeqConfig(n_layer=2, n_head=4, n_embd=64, d_ff=256, dropout=0.1),
                    batch_size=64, max_iters=1500, learning_rate=3e-3, min_lr=3e-4, warmup_iters=100,
                    weight_decay=0.01, eval_interval=250, eval_iters=10,
                    out_dir="runs/seq2seq", prompt="march 5, 1998"),
}


# ------------------------------------------------------------------------------ tasks
class LanguageModelingTask:
    """Next-token prediction on one text: char or BPE tokens, random windows."""

    def __init__(self, cfg: TrainConfig, text: str, tokenizer: Tokenizer | None = None):
        text = clean_text(text)
        if tokenizer is None:
            if cfg.tokenizer == "char":
                tokenizer = CharTokenizer.from_text(text)
            else:
                tokenizer = BPETokenizer()
                tokenizer.train(text, cfg.bpe_vocab_size)
        self.tokenizer = tokenizer
        source = cfg.data_path or f"dataset {cfg.dataset!r}"
        try:
            ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
            train_ids, val_ids = train_val_split(ids, cfg.val_fraction)
            self.splits = {"train": CausalLMDataset(train_ids, cfg.model.block_size),
                           "val": CausalLMDataset(val_ids, cfg.model.block_size)}
        except ValueError as error:  # text the tokenizer cannot encode, or too short
            raise ValueError(f"{source}: {error}") from None
        self.cfg = cfg
        self.vocab_size = tokenizer.vocab_size
        cfg.model = dataclasses.replace(cfg.model, vocab_size=self.vocab_size)  # (saved with the run)
        self.loss_fn = None

    @classmethod
    def on_datasets(cls, cfg: TrainConfig, splits: dict, loss_fn=None):
        """A task over datasets already made (split name → :class:`CausalLMDataset`), whose
        loss is ``loss_fn(model, x, y)`` when given (distillation, say) instead of the model's
        own cross-entropy: what experiments plug into :class:`Trainer`."""
        task = cls.__new__(cls)
        task.cfg, task.splits, task.loss_fn = cfg, dict(splits), loss_fn
        task.tokenizer = task.vocab_size = None
        return task

    def build_model(self):
        return build_model(self.cfg.model)

    def batch(self, split, rng):
        x, y = self.splits[split].get_batch(self.cfg.batch_size, rng)
        return Tensor(x, device=self.cfg.device), Tensor(y, device=self.cfg.device)

    def loss(self, model, batch):
        """Returns (loss, logits, targets); logits None when a plugged ``loss_fn`` gives the loss."""
        x, y = batch
        if self.loss_fn is not None:
            return self.loss_fn(model, x, y), None, y
        if not self.cfg.label_smoothing:
            logits, loss = model(x, y)
        else:  # the model's own loss has no smoothing
            logits, _ = model(x)
            loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                 ignore_index=-1, label_smoothing=self.cfg.label_smoothing)
        return loss, logits, y

    def extra_metrics(self, model):
        return {}


class TranslationTask:
    """The article's encoder-decoder on a toy translation (dates → ISO 8601), teacher forced."""

    def __init__(self, cfg: TrainConfig, n_pairs: int = 20_000):
        self.src_tok, self.tgt_tok = date_tokenizers()
        pairs = make_date_pairs(n_pairs, seed=cfg.seed)
        n_val = max(1, int(len(pairs) * cfg.val_fraction))
        self.text_pairs = {"train": pairs[:-n_val], "val": pairs[-n_val:]}
        self.splits = {k: Seq2SeqDataset(encode_pairs(v, self.src_tok, self.tgt_tok), pad_id=0, bos_id=1, eos_id=2)
                       for k, v in self.text_pairs.items()}
        self.cfg = cfg
        self.tokenizer = self.src_tok
        self.vocab_size = max(self.src_tok.vocab_size, self.tgt_tok.vocab_size)
        cfg.model = dataclasses.replace(cfg.model, vocab_size=self.vocab_size)  # (saved with the run)

    def build_model(self):
        return build_model(self.cfg.model)

    def batch(self, split, rng):
        return self.splits[split].get_batch(self.cfg.batch_size, rng)

    def loss(self, model, b):
        dev = self.cfg.device
        t = b.tgt_in.shape[0]
        tgt_mask = model.generate_square_subsequent_mask(t, device=dev)  # no peeking at later tokens
        logits = model(Tensor(b.src, device=dev), Tensor(b.tgt_in, device=dev), None, tgt_mask,
                       Tensor(b.src_padding_mask, device=dev), Tensor(b.tgt_padding_mask, device=dev), None)
        targets = Tensor(b.tgt_out, device=dev)
        loss = cross_entropy(logits, targets, label_smoothing=self.cfg.label_smoothing, axis=-1)
        return loss, logits, targets

    def extra_metrics(self, model, n=200):
        """Exact match: greedy decoding of validation sources, whole string right."""
        pairs = self.text_pairs["val"][:n]
        outputs = greedy_translate(model, [s for s, _ in pairs], self.src_tok, self.tgt_tok)
        exact = np.mean([o == t for o, (_, t) in zip(outputs, pairs)])
        return {"exact_match": float(exact)}


def make_task(cfg: TrainConfig, tokenizer=None):
    if cfg.family == "seq2seq":
        return TranslationTask(cfg)
    if tokenizer is None and cfg.dataset == "cafe":  # its tokenizer has the chat template's special tokens
        tokenizer = chat_tokenizer()
    return LanguageModelingTask(cfg, load_text(cfg), tokenizer)


def load_text(cfg: TrainConfig) -> str:
    """The training text named by the config (a path wins over a dataset name). A data file
    must be UTF-8 text: one that is not, or holds NUL bytes (binary), is refused by name."""
    if cfg.data_path is not None:
        path = cfg.data_path
        if not os.path.isfile(path):
            what = "is a folder" if os.path.isdir(path) else "does not exist"
            raise FileNotFoundError(f"data_path {path}: {what}; expected a UTF-8 text file")
        with open(path, "rb") as f:
            data = f.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"data_path {path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
                             f"{error.start}); tinyllm trains on text files") from None
        if "\x00" in text:
            raise ValueError(f"data_path {path}: holds NUL characters (the first at character "
                             f"{text.index(chr(0))}), so it is binary, not text")
        return text
    if cfg.dataset == "tinytales":
        return corpora.load_shipped_corpus()
    if cfg.dataset == "cafe":
        return cafe_documents()
    return corpora.tinyshakespeare()


# ------------------------------------------------------------------------------ memory, before allocating
def estimate_memory_bytes(cfg: TrainConfig, vocab_size: int, training: bool = True) -> int:
    """Bytes a step of this run needs, roughly, computed before anything is allocated.

    Parameters P of a GPT: vocab·C + block·C (embeddings; + vocab·C untied) + L·(12C² + 13C);
    A: the activations the graph holds (``tinyllm.compress.memory.gpt_activation_bytes``).
    The seq2seq model is counted as a GPT of 2·n_layer layers over 64 positions. float32.

    Inference: P + A. Training: 4.5·P + 2·A + 70 KB per layer, fitted to the peak resident
    memory of CPU runs (3 steps, an evaluation and a checkpoint; above the peak of a run of
    one layer of width 16, which holds the interpreter, NumPy and the data), for 8 shapes from
    n_layer 2,000 at n_embd 16 to n_layer 8 at n_embd 1,024 (100 M parameters), batch 1 to 12,
    block 16 to 256: the estimate is 1.05 to 1.52 times the measured peak. The terms: weights,
    gradients and AdamW's two moments are 4·P, and the update's temporaries about 0.3·P more;
    the backward makes each activation's gradient while the graph still holds the activation
    (2·A); and every block leaves graph nodes, tensors and array headers as Python objects,
    which outweigh the numbers themselves at n_embd 16. (The estimate was 16·P + 2·A + 120 KB a
    layer while saving a checkpoint copied the whole state two or three times over: the peak of
    a 100 M-parameter run fell from 6.3 GB to 1.8 GB when the writer began streaming the arrays.)
    """
    m = cfg.model
    seq2seq = cfg.family == "seq2seq"
    shape = GPTConfig(vocab_size=vocab_size, block_size=64 if seq2seq else m.block_size,
                      n_layer=2 * m.n_layer if seq2seq else m.n_layer, n_head=m.n_head, n_embd=m.n_embd)
    c = m.n_embd
    params = vocab_size * c * (1 if not seq2seq and m.tie_embeddings else 2) + shape.block_size * c
    params += shape.n_layer * (12 * c * c + 13 * c + (2 * c * m.d_ff if seq2seq else 0))
    activations = gpt_activation_bytes(shape, cfg.batch_size)
    if not training:
        return 4 * params + activations
    return int(4.5 * 4 * params) + 2 * activations + 70_000 * shape.n_layer


def available_memory_bytes(device: str) -> int | None:
    """Free memory of ``device`` in bytes (the GPU's for "cuda", else the host's
    MemAvailable), or None where it cannot be read."""
    if device == "cuda":
        free, _total = backend.get_device("cuda").xp.cuda.runtime.memGetInfo()
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(cfg: TrainConfig, vocab_size: int, training: bool = True) -> None:
    """Refuse, before allocating, a run whose :func:`estimate_memory_bytes` exceeds the
    device's free memory, naming the sizes that decide it."""
    need = estimate_memory_bytes(cfg, vocab_size, training)
    have = available_memory_bytes(cfg.device)
    if have is not None and need > have:
        block = f"block_size={cfg.model.block_size}, " if hasattr(cfg.model, "block_size") else ""
        raise MemoryError(
            f"this run needs about {need / 1e9:,.1f} GB for one {'training' if training else 'evaluation'} step "
            f"(batch_size={cfg.batch_size}, {block}n_layer={cfg.model.n_layer}, "
            f"n_embd={cfg.model.n_embd}, vocabulary {vocab_size}), more than the {have / 1e9:,.1f} GB free on "
            f"{cfg.device}: lower batch_size, block_size, n_embd or n_layer")


# ------------------------------------------------------------------------------ reading a run's checkpoint
def read_checkpoint(path) -> tuple[dict, dict, TrainConfig]:
    """``(tensors, meta, cfg)`` of a file the trainer (or ``compress``) wrote, checked before
    anything is built: it must be an intact checkpoint holding a valid run config, and, for a
    GPT, the tokenizer it was trained with. Raises CheckpointError / ValueError naming the file."""
    tensors, meta = load_checkpoint(path)
    if not isinstance(meta, dict) or "config" not in meta:
        raise CheckpointError(f"{path}: holds no run config (meta['config']): not written by "
                              f"python -m tinyllm train (or compress)")
    cfg = TrainConfig.from_json(meta["config"], f"{path}: its config")
    checkpoint_tokenizer(cfg, meta, path)  # checked now, before anything is built
    return tensors, meta, cfg


def checkpoint_tokenizer(cfg, meta, path):
    """The tokenizer saved in a run's metadata (None for seq2seq, whose are fixed)."""
    if cfg.family == "seq2seq":
        return None
    data = meta.get("tokenizer")
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: holds no tokenizer (meta['tokenizer']); a GPT run's checkpoint "
                              f"carries the one its model was trained with")
    return tokenizer_from_dict(data, f"{path}: its tokenizer")


def check_weights(path, model, tensors, prefix="model.") -> dict:
    """The ``prefix`` tensors of a checkpoint as ``model``'s state (prefix removed), or one
    CheckpointError naming the file and the first name or shape that does not fit."""
    state = {name[len(prefix):]: array for name, array in tensors.items() if name.startswith(prefix)}
    own = model.state_dict()  # (tied weights: one array under two names)
    expected = {name: tuple(array.shape) for name, array in own.items()}
    problems = [f"{prefix}{name} is missing" for name in expected if name not in state]
    problems += [f"{prefix}{name} has shape {tuple(state[name].shape)}, the config gives {shape}"
                 for name, shape in expected.items() if name in state and tuple(state[name].shape) != shape]
    problems += [f"{shown(prefix + name)} is not a weight of this model" for name in state if name not in expected]
    first_of = {}
    for name in own:
        first = first_of.setdefault(id(own[name]), name)
        if first != name and not problems and not np.array_equal(state[first], state[name]):
            problems.append(f"{prefix}{first} and {prefix}{name} differ, but the config ties them "
                            f"(tie_embeddings)")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CheckpointError(f"{path}: its weights do not fit the model its config describes: {problems[0]}{more}")
    return state


# ------------------------------------------------------------------------------ evaluation
class EvaluationStopped(KeyboardInterrupt):
    """:func:`evaluate` ended early because its ``stop`` said so (the trainer got a signal)."""


def evaluate(model, task, iters, splits=("train", "val"), seed=1234, stop=None):
    """Per split: the mean loss over ``iters`` batches drawn with a generator seeded ``seed``
    (fixed, so numbers do not depend on when they are taken), perplexity e^loss, and token
    accuracy (when the task's loss gives logits). In eval mode, without a graph. ``stop``, if
    given, is asked before every batch; when it returns True the evaluation raises
    :class:`EvaluationStopped` (the trainer's Ctrl-C: within a batch, not after thousands)."""
    was_training = model.training
    model.eval()
    results = {}
    with no_grad():
        for split in splits:
            rng = np.random.default_rng(seed)
            losses, correct, counted, accuracy = [], 0, 0, True
            for _ in range(iters):
                if stop is not None and stop():
                    model.train(was_training)
                    raise EvaluationStopped
                loss, logits, targets = task.loss(model, task.batch(split, rng))
                losses.append(loss.item())
                if logits is None:
                    accuracy = False
                    continue
                valid = targets.data >= 0
                correct += int((logits.data.argmax(axis=-1) == targets.data)[valid].sum())
                counted += int(valid.sum())
            mean = float(np.mean(losses))
            results[split] = {"loss": mean, "perplexity": math.exp(min(mean, 50)),
                              "accuracy": correct / max(counted, 1) if accuracy else None}
    model.train(was_training)
    return results


# ------------------------------------------------------------------------------ the trainer
class Trainer:
    """Holds the task, model, optimizer and RNG streams of one run; trains, evaluates,
    checkpoints and resumes it."""

    CHECKPOINT = "ckpt.safetensors"

    def __init__(self, cfg: TrainConfig, resume: bool = False, checkpoint=None, task=None, model=None):
        """``resume``: continue from a checkpoint, ``cfg.out_dir``'s unless ``checkpoint``
        names the file, or gives ``(file, tensors, meta)`` already read (see
        :meth:`from_checkpoint`). ``task`` and ``model`` replace the ones the config would
        make (an experiment's own data and loss, an existing model): the same loop trains them."""
        self.cfg = cfg
        backend.manual_seed(cfg.seed)
        self.batch_rng = np.random.default_rng(cfg.seed)  # which windows train on
        self.history = {"step": [], "train_loss": [], "val_loss": [], "lr": []}
        self.train_losses = []  # every training step's batch loss
        self.step = 0
        ckpt_meta = ckpt_tensors = None
        tokenizer = None
        self.resumed_from = None
        if resume:
            if checkpoint is None or isinstance(checkpoint, (str, os.PathLike)):
                self.resumed_from = checkpoint or self.checkpoint_path
                ckpt_tensors, ckpt_meta = load_checkpoint(self.resumed_from)
            else:
                self.resumed_from, ckpt_tensors, ckpt_meta = checkpoint
            tokenizer = checkpoint_tokenizer(cfg, ckpt_meta, self.resumed_from)
        self.task = task if task is not None else make_task(cfg, tokenizer)
        if model is None:
            check_memory(cfg, self.task.vocab_size)  # before the model and its batches take it
            model = self.task.build_model()
        self.model = model.to(cfg.device)
        # decay every matrix, the tied token embedding included (as nanoGPT); not biases or norms
        groups = param_groups(self.model.named_parameters(), cfg.weight_decay, decay_embeddings=True)
        self.optimizer = AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
        if resume:
            self._restore(ckpt_tensors, ckpt_meta)
        self._stop_signal = None
        self.on_interrupt_saved = None  # called after the save a signal triggers (the CLI uses it)
        self.on_saved = None  # called after every checkpoint written (the CLI uses it)
        self.on_step = None  # called as on_step(trainer) after every training step (a log line, say)

    @classmethod
    def from_checkpoint(cls, path, device=None) -> "Trainer":
        """The run saved in ``path`` (its folder, or the checkpoint file itself), with the
        config it was trained with (on ``device`` if given), ready to evaluate, sample or
        train on; the file is read once."""
        file = os.path.join(path, cls.CHECKPOINT) if os.path.isdir(path) else path
        tensors, meta, cfg = read_checkpoint(file)
        cfg.out_dir, cfg.progress = os.path.dirname(file), False
        if device:
            cfg.device = device
        return cls(cfg, resume=True, checkpoint=(file, tensors, meta))

    # ---------------------------------------------------------------- the loop, one screen
    def train(self, max_iters=None, stop_after=None):
        """Train until ``max_iters`` (default: the config's); ``stop_after`` stops early
        (for tests of resuming). Returns the history of evaluations."""
        from tqdm.auto import tqdm
        cfg = self.cfg
        max_iters = cfg.max_iters if max_iters is None else max_iters
        self.model.train()
        bar = tqdm(range(self.step, max_iters), initial=self.step, total=max_iters,
                   disable=not cfg.progress, desc="train", dynamic_ncols=True)
        previous_handlers = self._catch_signals()
        try:
            t0, tokens = time.perf_counter(), 0
            for step in bar:
                self.step = step
                if cfg.eval_interval and step % cfg.eval_interval == 0 and step > 0 and not self._evaluated_at_this_step():
                    self.evaluate_and_checkpoint()  # (not again when resuming from this evaluation)
                lr = self.learning_rate(step)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                batch = self.task.batch("train", self.batch_rng)
                loss, _, targets = self.task.loss(self.model, batch)  # forward
                self.optimizer.zero_grad()
                loss.backward()                                       # backward
                if cfg.grad_clip:
                    clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.optimizer.step()                                 # update
                self.last_loss = loss.item()
                if not math.isfinite(self.last_loss):
                    raise TrainingDiverged(
                        f"step {step}: the loss became {self.last_loss}; stopped without saving, so the last "
                        f"good checkpoint ({self.checkpoint_path}, if any) is kept. Run the step under "
                        f"tl.detect_anomaly() to find the op that made it, or lower the learning rate")
                self.train_losses.append(self.last_loss)
                if self.on_step is not None:
                    self.on_step(self)
                tokens += targets.size  # predicted positions (padding included)
                bar.set_postfix(loss=f"{self.last_loss:.4f}", lr=f"{lr:.2e}",
                                tok_s=f"{tokens / (time.perf_counter() - t0):.0f}")
                self.step = step + 1
                if stop_after is not None and self.step >= stop_after:
                    break
                if self._stop_signal is not None:
                    self._save_and_stop()
            else:
                if cfg.eval_interval and not self._evaluated_at_this_step():  # (a resumed finished run: done)
                    self.evaluate_and_checkpoint()
        finally:
            bar.close()
            self._restore_signals(previous_handlers)
        return self.history

    # ---------------------------------------------------------------- pieces the loop calls
    @property
    def checkpoint_path(self):
        return os.path.join(self.cfg.out_dir, self.CHECKPOINT)

    def _evaluated_at_this_step(self):
        return self.history["step"][-1:] == [self.step]

    def learning_rate(self, step):
        cfg = self.cfg
        if cfg.schedule == "constant":
            return cfg.learning_rate
        if cfg.schedule == "noam":
            return noam(step, cfg.model.n_embd, cfg.warmup_iters) * cfg.learning_rate / noam(
                cfg.warmup_iters - 1, cfg.model.n_embd, cfg.warmup_iters)
        if cfg.schedule == "cosine":
            decay = cfg.lr_decay_iters or cfg.max_iters
            return cosine_with_warmup(step, cfg.learning_rate, cfg.min_lr, min(cfg.warmup_iters, decay), decay)
        raise ValueError(f"schedule must be 'cosine', 'noam' or 'constant', got {cfg.schedule!r}")

    def evaluate(self, splits=("train", "val")):
        """:func:`evaluate` on this run's model and task, plus the task's own metrics (exact
        match for translation)."""
        results = evaluate(self.model, self.task, self.cfg.eval_iters, splits,
                           stop=lambda: self._stop_signal is not None)
        with no_grad():
            self.model.eval()
            results.update(self.task.extra_metrics(self.model))
            self.model.train()
        return results

    def evaluate_and_checkpoint(self):
        try:
            results = self.evaluate()
        except EvaluationStopped:  # a signal during the evaluation: it counts for nothing
            self._save_and_stop()
        h = self.history
        h["step"].append(self.step)
        h["train_loss"].append(results["train"]["loss"])
        h["val_loss"].append(results["val"]["loss"])
        h["lr"].append(self.learning_rate(self.step))
        extra = "".join(f", {k} {v:.4f}" for k, v in results.items() if not isinstance(v, dict))
        message = (f"step {self.step}: train loss {results['train']['loss']:.4f}, val loss "
                   f"{results['val']['loss']:.4f}, val ppl {results['val']['perplexity']:.2f}, "
                   f"val acc {results['val']['accuracy']:.3f}{extra}")
        if self.cfg.progress:
            from tqdm.auto import tqdm
            tqdm.write(message)
        self.last_eval = results
        self.save()
        self.plot()
        return results

    # ---------------------------------------------------------------- checkpoints
    def save(self, path=None):
        """Write weights, optimizer state, step, config, RNG states and tokenizer to one
        checksummed safetensors file, atomically."""
        path = path or self.checkpoint_path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        # the arrays themselves, not copies: they are written out before anything changes them
        tensors = {f"model.{k}": v for k, v in self.model.state_dict(copy=False).items()}
        optim_tensors, optim_meta = optimizer_to_checkpoint(self.optimizer, copy=False)
        tensors.update(optim_tensors)
        meta = {
            "step": self.step, "config": self.cfg.to_json(), "optimizer": optim_meta,
            "history": self.history, "train_losses": self.train_losses,
            "rng": {"batch": generator_state(self.batch_rng), "device": generator_state(self.cfg.device)},
            "tokenizer": _tokenizer_to_json(self.task),
        }
        save_checkpoint(path, tensors, meta)
        if self.on_saved is not None:
            self.on_saved()
        return path

    def _restore(self, tensors, meta):
        """Weights, optimizer, step, history and RNG streams from a checkpoint; anything
        missing or malformed is one CheckpointError naming the file (nothing half-restored
        is used: the trainer is not returned)."""
        path = self.resumed_from
        if "compression" in meta:
            raise CheckpointError(f"{path}: a compressed model, not a training checkpoint; evaluate it with "
                                  f"python -m tinyllm compress eval {path}")
        missing = [key for key in ("step", "config", "optimizer", "history", "rng") if key not in meta]
        if missing or not any(k.startswith("model.") for k in tensors):
            what = f"its metadata lacks {missing}" if missing else "it holds no model.* weights"
            raise CheckpointError(f"{path}: not a training checkpoint: {what}")
        self.model.load_state_dict(check_weights(path, self.model, tensors))
        step, history, losses = meta["step"], meta["history"], meta.get("train_losses", [])
        if type(step) is not int or step < 0:
            raise CheckpointError(f"{path}: its step is {shown(step)}, not an integer >= 0")
        columns = [history.get(k) for k in self.history] if isinstance(history, dict) else [None]
        if not (all(_numbers(column) for column in columns) and len({len(column) for column in columns}) == 1):
            raise CheckpointError(f"{path}: its history is not lists of numbers of one length ({list(self.history)})")
        if not _numbers(losses):
            raise CheckpointError(f"{path}: its train_losses are not a list of numbers")
        try:
            optimizer_from_checkpoint(self.optimizer, tensors, meta["optimizer"])
            for group in self.optimizer.param_groups:  # the checks a new optimizer makes, on the saved values
                type(self.optimizer)(group["params"], **{k: v for k, v in group.items() if k != "params"})
            set_generator_state(self.batch_rng, meta["rng"]["batch"])
            set_generator_state(self.cfg.device, meta["rng"]["device"])
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as error:
            raise CheckpointError(f"{path}: its optimizer or random-generator state is malformed "
                                  f"({type(error).__name__}: {str(error)[:200]})") from None
        self.step, self.history, self.train_losses = step, history, list(losses)

    def plot(self):
        """Save the loss curves as ``loss.png`` in the run's folder."""
        from matplotlib.figure import Figure  # not pyplot: leaves a notebook's backend alone
        fig = Figure(figsize=(6, 3.5))
        ax = fig.subplots()
        if self.train_losses:
            ax.plot(np.arange(len(self.train_losses)), self.train_losses, lw=0.6, alpha=0.4,
                    label="train (batch)")
        ax.plot(self.history["step"], self.history["train_loss"], "o-", label="train (eval)")
        ax.plot(self.history["step"], self.history["val_loss"], "o-", label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy loss")
        ax.set_title(f"{self.cfg.family} on {self.cfg.dataset}")
        ax.legend()
        fig.tight_layout()
        os.makedirs(self.cfg.out_dir, exist_ok=True)
        fig.savefig(os.path.join(self.cfg.out_dir, "loss.png"), dpi=120)

    # ---------------------------------------------------------------- signals
    def _catch_signals(self):
        def handler(signum, frame):
            self._stop_signal = signum
        previous = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: signals cannot be caught here
            pass
        return previous

    def _save_and_stop(self):
        """What a caught SIGINT or SIGTERM ends in: a resumable checkpoint, a line saying so,
        and KeyboardInterrupt (the CLI's exit status 130)."""
        from tqdm.auto import tqdm
        self.save()
        tqdm.write(f"{signal.Signals(self._stop_signal).name}: saved a resumable checkpoint "
                   f"at step {self.step} to {self.checkpoint_path}")
        if self.on_interrupt_saved is not None:
            self.on_interrupt_saved()
        raise KeyboardInterrupt

    def _restore_signals(self, previous):
        for sig, h in previous.items():
            signal.signal(sig, h)

    # ---------------------------------------------------------------- inference
    def sample(self, prompt=None, max_new_tokens=None, beam_size=None, stop=(), **kwargs):
        """Text continuing ``prompt`` (GPT, Llama) or the translation of ``prompt`` (seq2seq,
        greedy). ``kwargs``: sampling options of :func:`~tinyllm.generate.generate`
        (temperature, top_k, top_p, use_cache). ``beam_size``: beam search instead of sampling
        (:func:`~tinyllm.generate.generate_beam`). ``stop``: texts, each one token of the
        model's tokenizer, that end the continuation (kept at its end)."""
        cfg = self.cfg
        prompt = cfg.prompt if prompt is None else prompt
        if cfg.family == "seq2seq":
            given = [name for name, value in (("beam_size", beam_size), ("stop", stop or None), *kwargs.items())
                     if value is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: the seq2seq model translates greedily, so these options "
                                 f"do not apply (they are for gpt and llama models)")
            return greedy_translate(self.model, [prompt], self.task.src_tok, self.task.tgt_tok)[0]
        # the run's sampling settings apply to sampling; a beam search takes none of them
        options = {} if beam_size is not None else dict(temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p)
        options.update(kwargs, stop_tokens=[self._stop_token(text) for text in stop] or None)
        max_new_tokens = cfg.max_new_tokens if max_new_tokens is None else max_new_tokens
        return generate_text(self.model, self.task.tokenizer, prompt, max_new_tokens, beam_size=beam_size, **options)

    def _stop_token(self, text):
        """The one token id that ``text`` encodes to in the model's tokenizer."""
        if not isinstance(text, str) or not text:
            raise ValueError(f"stop: each stop must be a non-empty text, got {text!r}")
        try:
            ids = self.task.tokenizer.encode(text)
        except ValueError as error:
            raise ValueError(f"stop: {text!r}: {error}") from None
        if len(ids) != 1:
            raise ValueError(f"stop: {text!r} is {len(ids)} tokens in this model's tokenizer, not one; "
                             f"give a text that is a single token (a character for a char tokenizer)")
        return int(ids[0])


# ------------------------------------------------------------------------------ helpers
def _numbers(values):
    return isinstance(values, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _tokenizer_to_json(task):
    if isinstance(task, TranslationTask):
        return None  # the date tokenizers are fixed; rebuilt from code
    return task.tokenizer.to_dict()

