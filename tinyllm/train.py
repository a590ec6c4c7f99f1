"""Training and evaluation: the seed's pipeline (§2.2) from text to a trained model.

    data  → clean → tokenize → batches          (Task: LanguageModeling or Translation)
    model → forward → loss → backward → AdamW   (Trainer.train, one screen below)
    every eval_interval steps: evaluate (loss, perplexity, token accuracy; exact match for
    translation), checkpoint (atomic, resumable), loss-curve PNG.

``python -m tinyllm train --preset default`` runs it from the command line; in Python:

    cfg = TrainConfig(**PRESETS["default"], max_iters=200)
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
from .checkpoint import CheckpointError, generator_state, load_checkpoint, save_checkpoint, set_generator_state
from .data import (CausalLMDataset, CharTokenizer, BPETokenizer, Seq2SeqDataset, clean_text,
                   date_tokenizers, encode_pairs, make_date_pairs, train_val_split)
from .data.instructions import cafe_documents, chat_tokenizer
from .data.tokenizers import Tokenizer
from .functional import cross_entropy
from .models import GPT, GPTConfig, Llama, LlamaConfig, TransformerModel
from .optim import AdamW, clip_grad_norm_, param_groups
from .optim.schedules import cosine_with_warmup, noam
from .tensor import Tensor, no_grad

__all__ = ["TrainConfig", "PRESETS", "Trainer", "LanguageModelingTask", "TranslationTask", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


@dataclass
class TrainConfig:
    """Every knob of a run; presets fill them, the command line overrides any of them."""

    # data
    dataset: str = "tinytales"      # "tinytales" (shipped, data/), "shakespeare", "dates", "cafe"
    data_path: str | None = None    # a local text file instead of the named dataset
    tokenizer: str = "char"         # "char" or "bpe"
    bpe_vocab_size: int = 512
    val_fraction: float = 0.1
    # model: "gpt" or "llama" (decoder-only) or "seq2seq" (the seed's encoder-decoder TransformerModel)
    model: str = "gpt"
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = True
    gelu_approximate: str = "tanh"  # GPT's GELU: "tanh" (GPT-2's form) or "none" (exact erf, nanoGPT's)
    tie_embeddings: bool = True     # GPT's lm_head shares wte's matrix (GPT-2, nanoGPT) or has its own
    d_ff: int = 512                 # seq2seq feed-forward width (nhid)
    # --- Llama only (model="llama"; tinyllm.models.llama) ---
    n_kv_head: int | None = None    # key/value heads: None = n_head (multi-head), 1 = multi-query
    intermediate_size: int | None = None  # SwiGLU width; None = Llama's rule (8/3·n_embd, rounded to 256)
    rope_theta: float = 10000.0     # rotary base θ
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
    eval_interval: int = 250
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
            if not ok:
                raise ValueError(f"TrainConfig.{field} must be {rule}, got {getattr(self, field)!r}")
        for field in ("n_layer", "n_head", "n_embd", "block_size", "d_ff", "batch_size", "eval_interval",
                      "eval_iters", "bpe_vocab_size", "max_new_tokens", "num_samples"):
            need(isinstance(getattr(self, field), int) and getattr(self, field) >= 1, field, "an integer >= 1")
        for field in ("max_iters", "warmup_iters"):
            need(isinstance(getattr(self, field), int) and getattr(self, field) >= 0, field, "an integer >= 0")
        need(self.lr_decay_iters is None or self.lr_decay_iters >= 1, "lr_decay_iters", ">= 1 (or None)")
        for field in ("learning_rate", "min_lr", "weight_decay", "grad_clip", "temperature"):
            value = getattr(self, field)
            need(math.isfinite(value) and value >= 0, field, "a finite number >= 0")
        for field in ("dropout", "label_smoothing"):
            need(0.0 <= getattr(self, field) < 1.0, field, "in [0, 1)")
        need(0.0 < self.val_fraction < 1.0, "val_fraction", "in (0, 1)")
        need(0.0 <= self.beta1 < 1.0, "beta1", "in [0, 1)")
        need(0.0 <= self.beta2 < 1.0, "beta2", "in [0, 1)")
        need(self.top_k is None or self.top_k >= 1, "top_k", ">= 1 (or None)")
        need(self.top_p is None or 0.0 < self.top_p <= 1.0, "top_p", "in (0, 1] (or None)")
        need(self.gelu_approximate in ("tanh", "none"), "gelu_approximate", "'tanh' or 'none'")
        need(self.n_embd % self.n_head == 0, "n_embd", f"divisible by n_head={self.n_head}")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


PRESETS = {
    # a few minutes on 2 CPU cores, on the corpus the project ships (no network needed)
    "default": dict(dataset="tinytales", n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12,
                    max_iters=1500, eval_interval=250, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100,
                    out_dir="runs/default", prompt="Once upon a time"),
    # nanoGPT's shakespeare-char CPU recipe (4/4/128, block 64, batch 12, 2000 steps, lr 1e-3 with
    # warmup and cosine decay, AdamW betas 0.9/0.99, weight decay 0.1, dropout 0, no biases, exact
    # GELU), with three changes a sweep over seeds chose (README, "Results"): separate input and
    # output embeddings, no gradient clipping, and a cosine floor of 3e-4 instead of 1e-4. Exactly
    # nanoGPT's: --tie-embeddings true --grad-clip 1.0 --min-lr 1e-4
    "shakespeare-char": dict(dataset="shakespeare", n_layer=4, n_head=4, n_embd=128, block_size=64,
                             batch_size=12, max_iters=2000, lr_decay_iters=2000, eval_interval=250,
                             eval_iters=200, learning_rate=1e-3, min_lr=3e-4, warmup_iters=100,
                             bias=False, gelu_approximate="none", tie_embeddings=False, grad_clip=0.0,
                             out_dir="runs/shakespeare-char", prompt="ROMEO:"),
    # --- Llama (tinyllm.models.llama) and the café chat (tinyllm.finetune) ---
    # shakespeare-char with a Llama block (RMSNorm, rotary, SwiGLU) at GPT's parameter count:
    # no position table (−8,192 parameters) and a SwiGLU width of 347 (3·128·347 against GPT's
    # 8·128²) leave 812,928 parameters against GPT's 812,416 (docs/llama.md)
    "shakespeare-char-llama": dict(dataset="shakespeare", model="llama", n_layer=4, n_head=4, n_embd=128,
                                   intermediate_size=347, block_size=64, batch_size=12, max_iters=2000,
                                   lr_decay_iters=2000, eval_interval=250, eval_iters=200, learning_rate=1e-3,
                                   min_lr=3e-4, warmup_iters=100, bias=False, tie_embeddings=False,
                                   grad_clip=0.0, out_dir="runs/shakespeare-char-llama", prompt="ROMEO:"),
    # the base model that `python -m tinyllm finetune` instruction-tunes: a Llama with grouped-query
    # attention, pretrained on documents about the café in English and Chinese, with a tokenizer that
    # already has the chat template's special tokens (--model gpt works as well)
    "cafe": dict(dataset="cafe", model="llama", n_layer=4, n_head=4, n_kv_head=2, n_embd=128,
                 intermediate_size=344, block_size=96, batch_size=12, max_iters=1500, eval_interval=250,
                 eval_iters=20, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, bias=False,
                 tie_embeddings=False, out_dir="runs/cafe", prompt="On Monday"),
    # the seed's encoder-decoder on a toy translation: dates into ISO 8601
    "seq2seq": dict(dataset="dates", model="seq2seq", n_layer=2, n_head=4, n_embd=64, d_ff=256,
                    batch_size=64, max_iters=1500, learning_rate=3e-3, min_lr=3e-4, warmup_iters=100,
                    weight_decay=0.01, eval_interval=250, eval_iters=10, dropout=0.1,
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
            elif cfg.tokenizer == "bpe":
                tokenizer = BPETokenizer()
                tokenizer.train(text, cfg.bpe_vocab_size)
            else:
                raise ValueError(f"tokenizer must be 'char' or 'bpe', got {cfg.tokenizer!r}")
        self.tokenizer = tokenizer
        ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
        train_ids, val_ids = train_val_split(ids, cfg.val_fraction)
        self.splits = {"train": CausalLMDataset(train_ids, cfg.block_size),
                       "val": CausalLMDataset(val_ids, cfg.block_size)}
        self.cfg = cfg

    def build_model(self):
        # every field of the family's config the run's config also has (shape, dropout, bias, ...)
        model_class, config_class = LANGUAGE_MODELS[self.cfg.model]
        shared = {f.name: getattr(self.cfg, f.name) for f in dataclasses.fields(config_class)
                  if hasattr(self.cfg, f.name)}
        return model_class(config_class(vocab_size=self.tokenizer.vocab_size, **shared))

    def batch(self, split, rng):
        x, y = self.splits[split].get_batch(self.cfg.batch_size, rng)
        return Tensor(x, device=self.cfg.device), Tensor(y, device=self.cfg.device)

    def loss(self, model, batch):
        """Returns (loss, logits, targets)."""
        x, y = batch
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
    """The seed's encoder-decoder on a toy translation (dates → ISO 8601), teacher forced."""

    def __init__(self, cfg: TrainConfig, n_pairs: int = 20_000):
        if cfg.dataset != "dates":
            raise ValueError(f"the seq2seq model trains on dataset 'dates', got {cfg.dataset!r}")
        self.src_tok, self.tgt_tok = date_tokenizers()
        pairs = make_date_pairs(n_pairs, seed=cfg.seed)
        n_val = max(1, int(len(pairs) * cfg.val_fraction))
        self.text_pairs = {"train": pairs[:-n_val], "val": pairs[-n_val:]}
        self.splits = {k: Seq2SeqDataset(encode_pairs(v, self.src_tok, self.tgt_tok), pad_id=0, bos_id=1, eos_id=2)
                       for k, v in self.text_pairs.items()}
        self.cfg = cfg
        self.tokenizer = self.src_tok

    def build_model(self):
        c = self.cfg
        ntoken = max(self.src_tok.vocab_size, self.tgt_tok.vocab_size)
        return TransformerModel(ntoken, c.n_embd, c.n_head, c.d_ff, c.n_layer, dropout=c.dropout)

    def batch(self, split, rng):
        return self.splits[split].get_batch(self.cfg.batch_size, rng)

    def loss(self, model, b):
        dev = self.cfg.device
        t = b.tgt_in.shape[0]
        tgt_mask = model.generate_square_subsequent_mask(t, device=dev)  # no peeking at later tokens
        logits = model(Tensor(b.src, device=dev), Tensor(b.tgt_in, device=dev), None, tgt_mask,
                       Tensor(b.src_padding_mask, device=dev), Tensor(b.tgt_padding_mask, device=dev), None)
        targets = Tensor(b.tgt_out, device=dev)
        loss = cross_entropy(logits, targets, label_smoothing=self.cfg.label_smoothing)
        return loss, logits, targets

    def extra_metrics(self, model, n=200):
        """Exact match: greedy decoding of validation sources, whole string right."""
        from .generate import greedy_translate
        pairs = self.text_pairs["val"][:n]
        outputs = greedy_translate(model, [s for s, _ in pairs], self.src_tok, self.tgt_tok)
        exact = np.mean([o == t for o, (_, t) in zip(outputs, pairs)])
        return {"exact_match": float(exact)}


# the decoder-only families LanguageModelingTask trains: name -> (model class, its config class)
LANGUAGE_MODELS = {"gpt": (GPT, GPTConfig), "llama": (Llama, LlamaConfig)}


def make_task(cfg: TrainConfig, tokenizer=None):
    if cfg.model == "seq2seq":
        return TranslationTask(cfg)
    if cfg.model not in LANGUAGE_MODELS:
        raise ValueError(f"model must be one of {sorted(LANGUAGE_MODELS) + ['seq2seq']}, got {cfg.model!r}")
    if tokenizer is None and cfg.dataset == "cafe":  # its tokenizer has the chat template's special tokens
        tokenizer = chat_tokenizer()
    return LanguageModelingTask(cfg, load_text(cfg), tokenizer)


def load_text(cfg: TrainConfig) -> str:
    """The training text named by the config (a path wins over a dataset name)."""
    from .data import corpora
    if cfg.data_path:
        if not os.path.exists(cfg.data_path):
            raise FileNotFoundError(f"data_path {cfg.data_path!r} does not exist")
        with open(cfg.data_path, encoding="utf-8") as f:
            return f.read()
    if cfg.dataset == "tinytales":
        return corpora.load_shipped_corpus()
    if cfg.dataset == "shakespeare":
        return corpora.tinyshakespeare()
    if cfg.dataset == "cafe":
        return cafe_documents()
    raise ValueError(f"unknown dataset {cfg.dataset!r}; expected 'tinytales', 'shakespeare', 'cafe' or 'dates' "
                     f"(or data_path=...)")


# ------------------------------------------------------------------------------ the trainer
class Trainer:
    """Holds the task, model, optimizer and RNG streams of one run; trains, evaluates,
    checkpoints and resumes it."""

    CHECKPOINT = "ckpt.safetensors"

    def __init__(self, cfg: TrainConfig, resume: bool = False, checkpoint=None):
        """``resume``: continue from ``cfg.out_dir``'s checkpoint; ``checkpoint``: its
        ``(tensors, meta)`` when already read (see :meth:`from_checkpoint`)."""
        self.cfg = cfg
        backend.manual_seed(cfg.seed)
        self.batch_rng = np.random.default_rng(cfg.seed)  # which windows train on
        self.history = {"step": [], "train_loss": [], "val_loss": [], "lr": []}
        self.train_losses = []  # every training step's batch loss
        self.step = 0
        ckpt_meta = ckpt_tensors = None
        tokenizer = None
        if resume:
            ckpt_tensors, ckpt_meta = checkpoint or load_checkpoint(self.checkpoint_path)
            tokenizer = _tokenizer_from_json(ckpt_meta.get("tokenizer"))
        self.task = make_task(cfg, tokenizer)
        self.model = self.task.build_model().to(cfg.device)
        # decay every matrix, the tied token embedding included (as nanoGPT); not biases or norms
        groups = param_groups(self.model.named_parameters(), cfg.weight_decay, decay_embeddings=True)
        self.optimizer = AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
        if resume:
            self._restore(ckpt_tensors, ckpt_meta)
        self._stop_signal = None
        self.on_interrupt_saved = None  # called after the save a signal triggers (the CLI uses it)

    @classmethod
    def from_checkpoint(cls, folder, device=None) -> "Trainer":
        """The run saved in ``folder``, with the config it was trained with (on ``device``
        if given), ready to evaluate, sample or train on; the file is read once."""
        tensors, meta = load_checkpoint(os.path.join(folder, cls.CHECKPOINT))
        cfg = TrainConfig.from_json(meta["config"])
        cfg.out_dir, cfg.progress = folder, False
        if device:
            cfg.device = device
        return cls(cfg, resume=True, checkpoint=(tensors, meta))

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
                if step % cfg.eval_interval == 0 and step > 0 and not self._evaluated_at_this_step():
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
                tokens += targets.size  # predicted positions (padding included)
                bar.set_postfix(loss=f"{self.last_loss:.4f}", lr=f"{lr:.2e}",
                                tok_s=f"{tokens / (time.perf_counter() - t0):.0f}")
                self.step = step + 1
                if stop_after is not None and self.step >= stop_after:
                    break
                if self._stop_signal is not None:
                    self.save()
                    bar.write(f"{signal.Signals(self._stop_signal).name}: saved a resumable checkpoint "
                              f"at step {self.step} to {self.checkpoint_path}")
                    if self.on_interrupt_saved is not None:
                        self.on_interrupt_saved()
                    raise KeyboardInterrupt
            else:
                if not self._evaluated_at_this_step():  # (a finished run resumed: already done)
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
            return noam(step, cfg.n_embd, cfg.warmup_iters) * cfg.learning_rate / noam(
                cfg.warmup_iters - 1, cfg.n_embd, cfg.warmup_iters)
        if cfg.schedule == "cosine":
            decay = cfg.lr_decay_iters or cfg.max_iters
            return cosine_with_warmup(step, cfg.learning_rate, cfg.min_lr, min(cfg.warmup_iters, decay), decay)
        raise ValueError(f"schedule must be 'cosine', 'noam' or 'constant', got {cfg.schedule!r}")

    def evaluate(self, splits=("train", "val")):
        """Mean loss over ``eval_iters`` batches per split (a fixed evaluation RNG, so the
        numbers do not depend on when they are taken), perplexity e^loss, token accuracy;
        plus the task's own metrics (exact match for translation)."""
        self.model.eval()
        results = {}
        with no_grad():
            for split in splits:
                rng = np.random.default_rng(1234)
                losses, correct, counted = [], 0, 0
                for _ in range(self.cfg.eval_iters):
                    loss, logits, targets = self.task.loss(self.model, self.task.batch(split, rng))
                    losses.append(loss.item())
                    pred = logits.data.argmax(axis=-1)
                    valid = targets.data >= 0
                    correct += int((pred == targets.data)[valid].sum())
                    counted += int(valid.sum())
                mean = float(np.mean(losses))
                results[split] = {"loss": mean, "perplexity": math.exp(min(mean, 50)),
                                  "accuracy": correct / max(counted, 1)}
            results.update(self.task.extra_metrics(self.model))
        self.model.train()
        return results

    def evaluate_and_checkpoint(self):
        results = self.evaluate()
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
        from .checkpoint import optimizer_to_checkpoint
        path = path or self.checkpoint_path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        optim_tensors, optim_meta = optimizer_to_checkpoint(self.optimizer)
        tensors.update(optim_tensors)
        meta = {
            "step": self.step, "config": self.cfg.to_json(), "optimizer": optim_meta,
            "history": self.history, "train_losses": self.train_losses,
            "rng": {"batch": generator_state(self.batch_rng), "device": generator_state(self.cfg.device)},
            "tokenizer": _tokenizer_to_json(self.task),
        }
        save_checkpoint(path, tensors, meta)
        return path

    def _restore(self, tensors, meta):
        from .checkpoint import optimizer_from_checkpoint
        missing = [key for key in ("step", "config", "optimizer", "history", "rng") if key not in meta]
        if missing or not any(k.startswith("model.") for k in tensors):
            what = f"its metadata lacks {missing}" if missing else "it holds no model.* weights"
            raise CheckpointError(f"{self.checkpoint_path}: not a training checkpoint: {what}")
        model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        self.model.load_state_dict(model_state)
        optimizer_from_checkpoint(self.optimizer, tensors, meta["optimizer"])
        self.step = int(meta["step"])
        self.history = meta["history"]
        self.train_losses = list(meta.get("train_losses", []))
        set_generator_state(self.batch_rng, meta["rng"]["batch"])
        set_generator_state(self.cfg.device, meta["rng"]["device"])

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
        ax.set_title(f"{self.cfg.model} on {self.cfg.dataset}")
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

    def _restore_signals(self, previous):
        for sig, h in previous.items():
            signal.signal(sig, h)

    # ---------------------------------------------------------------- inference
    def sample(self, prompt=None, max_new_tokens=None, **kwargs):
        """Text continuing ``prompt`` (GPT) or the translation of ``prompt`` (seq2seq)."""
        from .generate import generate_text, greedy_translate
        cfg = self.cfg
        prompt = cfg.prompt if prompt is None else prompt
        if cfg.model == "seq2seq":
            return greedy_translate(self.model, [prompt], self.task.src_tok, self.task.tgt_tok)[0]
        options = dict(temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p)
        options.update(kwargs)
        return generate_text(self.model, self.task.tokenizer, prompt,
                             max_new_tokens or cfg.max_new_tokens, **options)


# ------------------------------------------------------------------------------ helpers
def _tokenizer_to_json(task):
    if isinstance(task, TranslationTask):
        return None  # the date tokenizers are fixed; rebuilt from code
    return task.tokenizer.to_dict()


def _tokenizer_from_json(data):
    if data is None:
        return None
    from .data.tokenizers import tokenizer_from_dict
    return tokenizer_from_dict(data, "the checkpoint's tokenizer")
