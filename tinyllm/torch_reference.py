"""The PyTorch twin of :class:`tinyllm.models.GPT`, for side-by-side benchmarks and tests.

This is the *only* file in tinyllm that imports PyTorch, and nothing in the library's
computation uses it: ``python -m tinyllm bench`` builds this model with the same weights
as a tinyllm GPT to time both on the same batch. The layout and names are nanoGPT's (and
tinyllm's), so ``TorchGPT.load_tinyllm_state(model.state_dict())`` copies weights over.
It has a KV cache (:class:`TorchKVCache`) for the generation benchmark, and
``python -m tinyllm.torch_reference`` runs the shakespeare-char training recipe in PyTorch
for ``bench --end-to-end``: the same data, batches, initial weights, schedule, evaluations,
checkpoints and final sample as ``python -m tinyllm train --preset shakespeare-char``.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import backend
from .optim.schedules import cosine_with_warmup
from .train import PRESETS, TrainConfig, make_task

__all__ = ["TorchGPT", "TorchKVCache", "adamw"]


def adamw(model, weight_decay, **options):
    """torch.optim.AdamW with nanoGPT's two groups (as tinyllm's ``param_groups(...,
    decay_embeddings=True)``): every matrix decayed, vectors not."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], **options)


class TorchKVCache:
    """Keys and values of every layer for positions ``0 .. position-1``, preallocated."""

    def __init__(self, cfg, batch, device, dtype):
        shape = (cfg.n_layer, batch, cfg.n_head, cfg.block_size, cfg.n_embd // cfg.n_head)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.position = 0


class _Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.n_head, self.dropout = cfg.n_head, cfg.dropout

    def forward(self, x, cache=None, layer=0):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        if cache is not None:   # write this call's keys and values, attend to all cached so far
            p = cache.position
            if t > 1 and p > 0:
                raise ValueError("TorchKVCache: several new positions only on an empty cache (the prompt)")
            cache.k[layer, :, :, p:p + t] = k
            cache.v[layer, :, :, p:p + t] = v
            k, v = cache.k[layer, :, :, :p + t], cache.v[layer, :, :, :p + t]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))


class _Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.attn = _Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias),
                                      c_proj=nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)))
        self.approximate = cfg.gelu_approximate

    def forward(self, x, cache=None, layer=0):
        x = x + self.attn(self.ln_1(x), cache, layer)
        h = F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate=self.approximate)
        return x + self.mlp.c_proj(h)


class TorchGPT(nn.Module):
    """nanoGPT's model in PyTorch, configured by a :class:`tinyllm.models.GPTConfig`."""

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd), wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
            h=nn.ModuleList([_Block(cfg) for _ in range(cfg.n_layer)]),
            ln_f=nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias)))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight

    def load_tinyllm_state(self, state):
        """Copy a tinyllm ``state_dict()`` (NumPy arrays, same names) into this model."""
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise KeyError(f"tinyllm state lacks {missing[:5]}")
        with torch.no_grad():
            for name, tensor in own.items():
                tensor.copy_(torch.from_numpy(np.ascontiguousarray(state[name])))
        return self

    def forward(self, idx, targets=None, cache=None):
        start = cache.position if cache is not None else 0
        pos = torch.arange(start, start + idx.shape[1], device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for i, block in enumerate(self.transformer.h):
            x = block(x, cache, i)
        if cache is not None:
            cache.position += idx.shape[1]
            x = x[:, -1:]           # generation needs the last position's logits only
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=0.0, top_p=None, generator=None):
        """Continue ``idx`` (B, T) by ``max_new_tokens`` tokens with a KV cache, as
        :func:`tinyllm.generate.generate` does: greedy at temperature 0, else sampling with
        nucleus ``top_p``; when the position table is used up the cache is refilled with the
        last ``block_size`` tokens."""
        self.eval()
        block = self.config.block_size
        cache = TorchKVCache(self.config, idx.shape[0], idx.device, self.lm_head.weight.dtype)
        for _ in range(max_new_tokens):
            if cache.position == 0 or cache.position >= block:
                cache.position = 0
                logits, _ = self(idx[:, -block:], cache=cache)
            else:
                logits, _ = self(idx[:, -1:], cache=cache)
            logits = logits[:, -1]
            if temperature == 0:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                if top_p is not None:
                    sorted_p, order = probs.sort(dim=-1, descending=True)
                    keep = sorted_p.cumsum(-1) - sorted_p < top_p     # the smallest set reaching top_p
                    probs = torch.zeros_like(probs).scatter(-1, order, sorted_p * keep)
                nxt = torch.multinomial(probs / probs.sum(-1, keepdim=True), 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx

    def generate_greedy(self, idx, max_new_tokens):
        """Greedy continuation with the KV cache (the generation benchmark)."""
        return self.generate(idx, max_new_tokens, temperature=0.0)


# ----------------------------------------------------------------------------- the recipe, in PyTorch
def train_recipe(out_dir, preset="shakespeare-char", **overrides):
    """``python -m tinyllm train --preset shakespeare-char`` written in PyTorch: tinyllm's data
    and batch windows (the same seeds), the same initial weights (a tinyllm GPT's, copied),
    AdamW with the same groups, warm-up and cosine decay, evaluation every ``eval_interval``
    steps on ``eval_iters`` batches per split (the same batches), a checkpoint written at
    each evaluation (torch.save, then renamed into place), a sample at the end. Prints what
    the CLI prints at the end: one JSON line with the final losses, then the sample."""
    cfg = TrainConfig(**{**PRESETS[preset], **overrides, "out_dir": out_dir})
    backend.manual_seed(cfg.seed)
    batch_rng = np.random.default_rng(cfg.seed)
    task = make_task(cfg)
    tl_model = task.build_model()
    model = TorchGPT(tl_model.config).load_tinyllm_state(tl_model.state_dict())
    opt = adamw(model, cfg.weight_decay, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
    decay_iters = cfg.lr_decay_iters or cfg.max_iters

    def batch(split, rng):
        x, y = task.splits[split].get_batch(cfg.batch_size, rng)
        return torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y))

    @torch.no_grad()
    def evaluate():
        model.eval()
        out = {}
        for split in ("train", "val"):
            rng = np.random.default_rng(1234)
            out[split] = float(np.mean([model(*batch(split, rng))[1].item() for _ in range(cfg.eval_iters)]))
        model.train()
        return out

    def evaluate_and_save(step):
        losses = evaluate()
        print(f"step {step}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}", flush=True)
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "ckpt.pt")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}, path + ".tmp")
        os.replace(path + ".tmp", path)
        return losses

    model.train()
    losses = None
    for step in range(cfg.max_iters):
        if cfg.eval_interval and step % cfg.eval_interval == 0 and step > 0:
            losses = evaluate_and_save(step)
        lr = cosine_with_warmup(step, cfg.learning_rate, cfg.min_lr, min(cfg.warmup_iters, decay_iters), decay_iters)
        for group in opt.param_groups:
            group["lr"] = lr
        _, loss = model(*batch("train", batch_rng))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
    if cfg.eval_interval:
        losses = evaluate_and_save(cfg.max_iters)
    print(json.dumps({"step": cfg.max_iters, "train_loss": losses["train"], "val_loss": losses["val"]}))
    prompt = torch.tensor([task.tokenizer.encode(cfg.prompt)])
    ids = model.generate(prompt, cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                         generator=torch.Generator().manual_seed(cfg.seed))
    print("-" * 60)
    print(task.tokenizer.decode(ids[0].tolist()))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinyllm.torch_reference",
                                     description="the shakespeare-char recipe in PyTorch (bench --end-to-end)")
    parser.add_argument("--out", required=True, help="run folder (the checkpoint goes here)")
    for name in ("max-iters", "lr-decay-iters", "eval-interval", "eval-iters", "max-new-tokens"):
        parser.add_argument("--" + name, type=int, default=None)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k != "out" and v is not None}
    start = time.perf_counter()
    train_recipe(args.out, **overrides)
    print(f"({time.perf_counter() - start:.1f} s in the recipe)")


if __name__ == "__main__":
    main()
