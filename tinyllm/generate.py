"""Inference: preprocess the input, predict, postprocess the output (the article's three steps).

The three steps, in a loop::

    prompt text ──encode──▶ ids ──model──▶ logits of the next token ──sample──▶ id ─┐
         ▲                                                                          │
         └──────────────────────────── append, repeat ◀────────────────────────────┘
    ids ──decode──▶ text

Decoder-only (GPT, Llama: any :class:`tinyllm.models.CausalLM`): :func:`generate` with
greedy, temperature, top-k and top-p sampling and stop tokens, and :func:`generate_beam`,
with or without the KV cache (same tokens either way; the cache makes each new token cost
one position instead of the whole context).

Encoder-decoder (the article's ``TransformerModel``): :func:`greedy_decode` and
:func:`beam_search` run the encoder once and the decoder once per new token.

The next-token choice runs on the host (one row of V logits per sequence): the only
transfer per step, and where the Python decisions (stop tokens) are made anyway.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import backend
from .tensor import Tensor, no_grad
from .functional import log_softmax

__all__ = ["sample_next_token", "generate", "generate_text", "generate_beam", "greedy_decode", "beam_search",
           "greedy_translate"]


def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, rng=None):
    r"""Pick one token per row of ``logits`` (B, V), on the host.

    * ``temperature`` τ: sample from softmax(logits / τ); τ → 0 sharpens towards the argmax,
      τ = 0 *is* the argmax (greedy); τ > 1 flattens.
    * ``top_k`` k: only the k most likely tokens stay candidates.
    * ``top_p`` p (nucleus sampling): only the smallest set of most likely tokens whose
      probabilities add up to at least p stays.

    Returns an int64 array (B,).
    """
    logits = np.asarray(backend.to_host(logits.data if isinstance(logits, Tensor) else logits), dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] == 0:
        raise ValueError(f"sample_next_token: logits must be (batch, vocab) with vocab >= 1, got shape {logits.shape}")
    _check_sampling(temperature, top_k, top_p)
    bad = np.isnan(logits) | (logits == np.inf)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise ValueError(f"sample_next_token: the logits of row {row} contain NaN or +inf; a model that "
                         f"produces them is broken (find where with tl.detect_anomaly())")
    empty = ~np.isfinite(logits).any(axis=-1)
    if empty.any():
        raise ValueError(f"sample_next_token: every logit of row {int(np.argmax(empty))} is -inf: no token "
                         f"can be chosen")
    if temperature == 0:
        return logits.argmax(axis=-1)
    rng = rng if rng is not None else backend.host_generator()
    # shift before scaling: (z − max z)/τ ≤ 0 cannot overflow, however small τ is
    logits = (logits - logits.max(axis=-1, keepdims=True)) / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        # exactly k candidates (as torch.topk), even when several logits tie with the k-th
        top = np.argpartition(-logits, top_k - 1, axis=-1, kind="introselect")[:, :top_k]  # O(V)
        kept = np.full_like(logits, -np.inf)
        np.put_along_axis(kept, top, np.take_along_axis(logits, top, axis=-1), axis=-1)
        logits = kept
    probs = np.exp(logits)  # the largest logit is 0 (shifted above; top-k keeps it)
    probs /= probs.sum(axis=-1, keepdims=True)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-probs, axis=-1, kind="stable")
        sorted_probs = np.take_along_axis(probs, order, axis=-1)
        before = np.cumsum(sorted_probs, axis=-1) - sorted_probs  # mass of the tokens ranked above
        sorted_probs[before >= top_p] = 0.0  # the first token always stays (before = 0)
        probs = np.zeros_like(probs)
        np.put_along_axis(probs, order, sorted_probs, axis=-1)
        probs /= probs.sum(axis=-1, keepdims=True)
    # inverse-CDF sampling: the first token whose cumulative probability passes u
    u = rng.random((probs.shape[0], 1))
    return np.minimum((np.cumsum(probs, axis=-1) < u).sum(axis=-1), probs.shape[-1] - 1)


def _check_sampling(temperature, top_k, top_p):
    """Refuse sampling options that mean nothing, naming the option and the value."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not 0 <= temperature < np.inf:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 (or None), got {top_k!r}")
    if top_p is not None and (not isinstance(top_p, numbers.Real) or not 0.0 < top_p <= 1.0):
        raise ValueError(f"top_p must be in (0, 1] (or None), got {top_p!r}")


def _count(value, name, minimum=0):
    """``value`` as an int, or a clear error: counts must be integers >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _host_ids(idx, what):
    """Token ids (a Tensor, array or nested lists) as a host int64 array, refusing anything
    that is not integers (float ids would be truncated silently)."""
    try:
        ids = backend.to_host(idx.data if isinstance(idx, Tensor) else idx)
    except ValueError:  # ragged nested lists
        raise ValueError(f"{what}: the rows of the token ids have different lengths") from None
    if ids.dtype == object:
        raise ValueError(f"{what}: the rows of the token ids have different lengths (or are not numbers)")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{what}: token ids must be integers, got dtype {ids.dtype}")
    return ids.astype(np.int64, copy=False)


def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
             stop_tokens=None, use_cache=True, rng=None):
    """Continue each row of ``idx`` (B, T) by up to ``max_new_tokens`` tokens from a GPT.

    With ``use_cache`` the prompt runs once and each new token runs alone against the
    cached keys and values; without it the whole (cropped) context reruns per token. A row
    that emits one of ``stop_tokens`` is finished: it is padded with that token while the
    other rows go on, and generation ends when every row is finished.
    Returns the ids (host int64, (B, T + new)).
    """
    ids = _decoder_prompt(model, idx, stop_tokens, "generate")
    max_new_tokens = _count(max_new_tokens, "generate: max_new_tokens")
    _check_sampling(temperature, top_k, top_p)
    device = model.device
    block = model.config.block_size
    stop = set(stop_tokens or ())
    finished = np.zeros(len(ids), dtype=bool)
    pad = np.zeros(len(ids), dtype=np.int64)
    was_training = model.training
    model.eval()
    cache = model.new_kv_cache() if use_cache else None
    try:
        with no_grad():
            for _ in range(max_new_tokens):
                if cache is None:
                    context = ids[:, -block:]
                    logits, _ = model(Tensor(context, device=device), last_logits_only=True)
                else:
                    if cache.position == 0 or cache.position >= block:
                        # first call, or the position table is used up: (re)fill the cache
                        # with the same context the uncached path would see
                        cache.reset()
                        feed = ids[:, -block:]
                    else:
                        feed = ids[:, -1:]
                    logits, _ = model(Tensor(feed, device=device), kv_cache=cache, last_logits_only=True)
                nxt = sample_next_token(logits.data[:, -1, :], temperature, top_k, top_p, rng)
                nxt = np.where(finished, pad, nxt)
                ids = np.concatenate([ids, nxt[:, None]], axis=1)
                if stop:
                    newly = ~finished & np.isin(nxt, list(stop))
                    pad = np.where(newly, nxt, pad)
                    finished |= newly
                    if finished.all():
                        break
    finally:
        model.train(was_training)
    return ids


def _decoder_prompt(model, idx, stop_tokens, what):
    """Check a decoder-only model, its prompt ids (→ host int64 (B, T)) and stop tokens."""
    config = getattr(model, "config", None)
    if not hasattr(config, "vocab_size") or not hasattr(model, "new_kv_cache"):
        raise TypeError(f"{what}: model must be a GPT or Llama (a decoder-only model, with .config.vocab_size), "
                        f"got {type(model).__name__}; for an encoder-decoder model use greedy_decode or beam_search")
    ids = np.array(_host_ids(idx, what))
    if ids.ndim == 1:
        ids = ids[None]
    if ids.ndim != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"{what}: idx must be (batch, seq) with at least one row and one token, "
                         f"got shape {ids.shape}")
    vocab = config.vocab_size
    if ids.min() < 0 or ids.max() >= vocab:
        raise ValueError(f"{what}: token ids must be in [0, {vocab}), got {ids.min()}..{ids.max()}")
    if stop_tokens is not None and (isinstance(stop_tokens, (int, np.integer, str))
                                    or not all(isinstance(t, (int, np.integer)) for t in stop_tokens)):
        raise TypeError(f"{what}: stop_tokens must be a list of integer token ids, got {stop_tokens!r}")
    return ids


def generate_beam(model, idx, max_new_tokens, beam_size=4, stop_tokens=None, length_penalty=0.6,
                  use_cache=True):
    """Continue one prompt ``idx`` (T,) or (1, T) from a decoder-only model by beam search:
    keep the ``beam_size`` continuations with the highest sum of token log-probabilities,
    extend each by its ``beam_size`` best tokens, keep the best ``beam_size`` again.

    A continuation that emits one of ``stop_tokens`` is finished; finished ones are ranked as
    in :func:`beam_search` (score / ((5 + length) / 6) ** length_penalty). With ``use_cache``
    the KV cache's rows follow the surviving hypotheses (``KVCache.select``), so each step
    feeds one token per hypothesis. Returns ``(ids, score)``: host int64 (T + new,) and the
    sum of the new tokens' log-probabilities."""
    ids = _decoder_prompt(model, idx, stop_tokens, "generate_beam")
    if ids.shape[0] != 1:
        raise ValueError(f"generate_beam: one prompt at a time, got {ids.shape[0]} rows")
    max_new_tokens = _count(max_new_tokens, "generate_beam: max_new_tokens")
    beam_size = _count(beam_size, "generate_beam: beam_size", minimum=1)
    device, block, stop = model.device, model.config.block_size, set(stop_tokens or ())
    prompt = ids[0].tolist()
    beams, finished = [([], 0.0)], []  # (new tokens, score)
    was_training = model.training
    model.eval()
    cache = model.new_kv_cache() if use_cache else None
    try:
        with no_grad():
            for step in range(max_new_tokens):
                rows = np.array([prompt + seq for seq, _ in beams], dtype=np.int64)
                if cache is None:
                    logits, _ = model(Tensor(rows[:, -block:], device=device), last_logits_only=True)
                else:
                    if step == 0 or cache.position >= block:
                        cache.reset()  # first step, or the position table is used up: refill
                        feed = rows[:, -block:]
                    else:
                        feed = rows[:, -1:]
                    logits, _ = model(Tensor(feed, device=device), kv_cache=cache, last_logits_only=True)
                logp = backend.to_host(log_softmax(logits[:, -1]).data)  # (live beams, V)
                candidates = []
                for b, (seq, score) in enumerate(beams):
                    for token in np.argsort(-logp[b], kind="stable")[:beam_size]:
                        candidates.append((b, seq + [int(token)], score + float(logp[b, token])))
                candidates.sort(key=lambda c: -c[2])
                parents, beams = [], []
                for b, seq, score in candidates:
                    if seq[-1] in stop:
                        finished.append((seq, score))
                    else:
                        parents.append(b)
                        beams.append((seq, score))
                    if len(beams) == beam_size:
                        break
                best_live = max((s for _, s in beams), default=-np.inf)
                if not beams or (len(finished) >= beam_size and max(
                        _normalised(s, q, length_penalty) for q, s in finished) >= best_live):
                    break  # no live continuation can beat a finished one: scores only go down
                if cache is not None:
                    cache.select(parents)
    finally:
        model.train(was_training)
    seq, score = max(finished or beams, key=lambda c: _normalised(c[1], c[0], length_penalty))
    return np.asarray(prompt + seq, dtype=np.int64), score


def generate_text(model, tokenizer, prompt, max_new_tokens=200, beam_size=None, **options):
    """Preprocess (encode the prompt), predict (generate), postprocess (decode): text in,
    text out. ``options`` go to :func:`generate`; with ``beam_size``, the prediction is
    :func:`generate_beam`'s, which takes only ``stop_tokens`` and ``use_cache`` of them."""
    ids = np.asarray([tokenizer.encode(prompt) if prompt else [0]], dtype=np.int64)
    if beam_size is None:
        return tokenizer.decode(generate(model, ids, max_new_tokens, **options)[0].tolist())
    sampling = sorted(set(options) - {"stop_tokens", "use_cache"})
    if sampling:
        raise ValueError(f"beam_size: beam search keeps the likeliest continuations, so "
                         f"{', '.join(sampling)} (options of sampling) cannot be given with it")
    out, _ = generate_beam(model, ids, max_new_tokens, beam_size=beam_size, **options)
    return tokenizer.decode(out.tolist())


# ------------------------------------------------------------------------------ encoder-decoder
def greedy_decode(model, src, src_padding_mask=None, max_len=32, bos_id=1, eos_id=2, vocab_size=None):
    """Translate a batch by always taking the most likely next token.

    ``src`` (S, B) ids; ``src_padding_mask`` (B, S) True at padding. The encoder runs once;
    the decoder reruns on the growing target prefix (T, B) under a causal mask.
    ``vocab_size``: only ids below it are chosen (the target vocabulary, when the model's
    output layer also covers a larger source vocabulary). Returns a list of B id lists
    (without BOS and EOS).
    """
    device = model.device
    src = src if isinstance(src, Tensor) else Tensor(_host_ids(src, "greedy_decode"), device=device)
    if src.ndim != 2:
        raise ValueError(f"greedy_decode: src must be token ids shaped (S, batch), got shape {src.shape}")
    max_len = _count(max_len, "greedy_decode: max_len")
    mask = None if src_padding_mask is None else (
        src_padding_mask if isinstance(src_padding_mask, Tensor) else Tensor(np.asarray(src_padding_mask), device=device))
    batch = src.shape[1]
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            memory = model.encode(src, src_padding_mask=mask)
            ys = np.full((1, batch), bos_id, dtype=np.int64)
            done = np.zeros(batch, dtype=bool)
            for _ in range(max_len):
                t = ys.shape[0]
                tgt_mask = model.generate_square_subsequent_mask(t, device=device)
                logits = model.decode(Tensor(ys, device=device), memory, tgt_mask=tgt_mask,
                                      memory_padding_mask=mask)
                nxt = backend.to_host(logits.data[-1, :, :vocab_size]).argmax(axis=-1)
                nxt = np.where(done, eos_id, nxt)
                ys = np.concatenate([ys, nxt[None]], axis=0)
                done |= nxt == eos_id
                if done.all():
                    break
    finally:
        model.train(was_training)
    out = []
    for column in ys[1:].T.tolist():
        out.append(column[:column.index(eos_id)] if eos_id in column else column)
    return out


def beam_search(model, src, beam_size=4, max_len=32, bos_id=1, eos_id=2, length_penalty=0.6):
    """Translate one source (S,) or (S, 1) keeping the ``beam_size`` best prefixes.

    Each step extends every live prefix by every token, scores them by the sum of token
    log-probabilities, and keeps the best ``beam_size``. Finished hypotheses (ending in EOS)
    are ranked by score / ((5 + length) / 6) ** length_penalty (GNMT's length
    normalisation, so short outputs are not favoured unfairly). Returns (ids, score).
    """
    device = model.device
    src_np = _host_ids(src, "beam_search")
    if not (src_np.ndim == 1 or (src_np.ndim == 2 and src_np.shape[1] == 1)) or src_np.size == 0:
        raise ValueError(f"beam_search: src must be one source, (S,) or (S, 1) with S >= 1, got shape "
                         f"{src_np.shape} (use greedy_decode for a batch)")
    src_np = src_np.reshape(-1, 1)
    beam_size = _count(beam_size, "beam_search: beam_size", minimum=1)
    max_len = _count(max_len, "beam_search: max_len")
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            memory = model.encode(Tensor(src_np, device=device))
            beams = [([bos_id], 0.0)]
            finished = []
            for _ in range(max_len):
                prefixes = np.array([b[0] for b in beams], dtype=np.int64).T  # (T, beams)
                mem = memory if len(beams) == 1 else Tensor(
                    memory.xp.repeat(memory.data, len(beams), axis=1))
                tgt_mask = model.generate_square_subsequent_mask(prefixes.shape[0], device=device)
                logits = model.decode(Tensor(prefixes, device=device), mem, tgt_mask=tgt_mask)
                logp = backend.to_host(log_softmax(logits[-1]).data)  # (beams, V)
                candidates = []
                for b, (seq, score) in enumerate(beams):
                    for token in np.argsort(-logp[b])[:beam_size]:
                        candidates.append((seq + [int(token)], score + float(logp[b, token])))
                candidates.sort(key=lambda c: -c[1])
                beams = []
                for seq, score in candidates:
                    if seq[-1] == eos_id:
                        finished.append((seq, score))
                    else:
                        beams.append((seq, score))
                    if len(beams) == beam_size:
                        break
                best_live = max((s for _, s in beams), default=-np.inf)
                if len(finished) >= beam_size and max(
                        _normalised(s, q, length_penalty) for q, s in finished) >= best_live:
                    break  # no live prefix can beat a finished one: scores only go down
                if not beams:
                    break
    finally:
        model.train(was_training)
    pool = finished or beams
    seq, score = max(pool, key=lambda c: _normalised(c[1], c[0], length_penalty))
    body = seq[1:]
    return (body[:body.index(eos_id)] if eos_id in body else body), score


def _normalised(score, seq, alpha):
    return score / (((5 + len(seq)) / 6) ** alpha)


def greedy_translate(model, texts, src_tokenizer, tgt_tokenizer, max_len=32):
    """Strings in, strings out, for the toy translation: encode and pad the sources,
    :func:`greedy_decode`, decode the targets."""
    encoded = [src_tokenizer.encode(t) for t in texts]
    length = max(len(e) for e in encoded)
    src = np.zeros((length, len(encoded)), dtype=np.int64)
    mask = np.ones((len(encoded), length), dtype=bool)
    for i, e in enumerate(encoded):
        src[:len(e), i] = e
        mask[i, :len(e)] = False
    dev = model.device
    outputs = greedy_decode(model, Tensor(src, device=dev), Tensor(mask, device=dev), max_len=max_len,
                            vocab_size=tgt_tokenizer.vocab_size)
    return [tgt_tokenizer.decode(o, skip_special_tokens=True) for o in outputs]
