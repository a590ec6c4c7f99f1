"""Batches of token ids for training: language modelling and sequence-to-sequence.

Everything here is host NumPy: int64 arrays that the training loop moves to the model's
device once per batch.

- `CausalLMDataset`: random windows of one long token stream; the target is the input
  shifted by one position (predict the next token), as in nanoGPT's ``get_batch``.
- `Seq2SeqDataset`: (source, target) pairs padded into batches for an encoder-decoder,
  laid out like PyTorch's nn.Transformer translation tutorial (``batch_first=False``).
"""

from __future__ import annotations

import numbers
from typing import Iterator, NamedTuple, Sequence

import numpy as np

__all__ = ["CausalLMDataset", "Seq2SeqBatch", "Seq2SeqDataset", "IGNORE_INDEX"]

# The label value a loss skips: PyTorch's cross_entropy default ``ignore_index=-100``.
IGNORE_INDEX = -100


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_generator(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator, e.g. np.random.default_rng(seed), "
            f"got {type(rng).__name__}"
        )
    return rng


class CausalLMDataset:
    """Random training windows from one long sequence of token ids.

    A window of ``block_size + 1`` consecutive ids gives ``block_size`` training examples at
    once: at every position t the model sees ``x[:t+1]`` and must predict ``y[t] = x[t+1]``.

    Args:
        ids: the token ids, shape (n,), any integer dtype (a uint16 memmap works too).
        block_size: context length T of each window; needs ``n >= block_size + 1``.
    """

    def __init__(self, ids: np.ndarray, block_size: int) -> None:
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(f"ids must be a 1-D array of token ids, got shape {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must have an integer dtype, got {ids.dtype}")
        self.block_size = _check_positive_int(block_size, "block_size")
        if len(ids) < self.block_size + 1:
            raise ValueError(
                f"the data has {len(ids)} tokens, too few for block_size={self.block_size}: "
                f"one window needs block_size + 1 = {self.block_size + 1} tokens (the inputs "
                f"and the next token after them)"
            )
        self.ids = ids
        self._offsets = np.arange(self.block_size)

    def __len__(self) -> int:
        """Number of distinct windows (start positions)."""
        return len(self.ids) - self.block_size

    def get_batch(
        self, batch_size: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw `batch_size` windows at uniformly random start positions (with replacement).

        Returns:
            ``(x, y)``, both int64 of shape (batch_size, block_size), with
            ``y[b, t] == x[b, t + 1]`` for ``t < block_size - 1``: y is x shifted left by one,
            plus the token that follows the window.
        """
        batch_size = _check_positive_int(batch_size, "batch_size")
        rng = _check_generator(rng)
        # A start s is valid when s + block_size (the last target) is still inside the data.
        starts = rng.integers(0, len(self.ids) - self.block_size, size=batch_size)
        positions = starts[:, None] + self._offsets  # (batch_size, block_size)
        x = self.ids[positions].astype(np.int64, copy=False)
        y = self.ids[positions + 1].astype(np.int64, copy=False)
        return x, y

    def __repr__(self) -> str:
        return f"CausalLMDataset(n_tokens={len(self.ids)}, block_size={self.block_size})"


class Seq2SeqBatch(NamedTuple):
    """One padded batch for an encoder-decoder (sequence-first, like ``batch_first=False``).

    S is the longest source in the batch, T the longest target + 1, B the batch size.

    Fields:
        src: (S, B) int64, source ids, padded with ``pad_id``.
        tgt_in: (T, B) int64, decoder input: BOS, then the target; padded with ``pad_id``.
        tgt_out: (T, B) int64, labels: the target, then EOS; padding positions hold the
            dataset's ``ignore_index`` (default -100), so a cross-entropy with that
            ignore_index skips them.
        src_padding_mask: (B, S) bool, True where `src` is padding (the
            ``src_key_padding_mask`` convention of torch.nn.Transformer).
        tgt_padding_mask: (B, T) bool, True where `tgt_in` (and so `tgt_out`) is padding.
    """

    src: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray
    src_padding_mask: np.ndarray
    tgt_padding_mask: np.ndarray


class Seq2SeqDataset:
    """(source ids, target ids) pairs, served as padded `Seq2SeqBatch` batches.

    Teacher forcing: the decoder reads ``tgt_in = [BOS] + target`` and learns to output
    ``tgt_out = target + [EOS]``, one position ahead. For a target "abc":

        tgt_in  = BOS  a  b  c
        tgt_out =  a   b  c  EOS

    Args:
        pairs: list of (source ids, target ids). Sources must be non-empty (an all-padding
            source would leave attention nothing to look at); targets may be empty.
        pad_id: id used to pad `src` and `tgt_in`.
        bos_id: beginning-of-sequence id, put in front of each target in `tgt_in`.
        eos_id: end-of-sequence id, put after each target in `tgt_out`.
        ignore_index: value written into `tgt_out` at padding positions. The default -100
            matches cross_entropy's default; pass ``ignore_index=pad_id`` to follow the
            PyTorch tutorial, which pads labels with PAD and sets the loss's ignore_index.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
        pad_id: int,
        bos_id: int,
        eos_id: int,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        for name, value in [("pad_id", pad_id), ("bos_id", bos_id), ("eos_id", eos_id),
                            ("ignore_index", ignore_index)]:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        self.pad_id, self.bos_id, self.eos_id = int(pad_id), int(bos_id), int(eos_id)
        self.ignore_index = int(ignore_index)

        self.pairs: list[tuple[list[int], list[int]]] = []
        for index, pair in enumerate(pairs):
            if len(pair) != 2:
                raise ValueError(f"pair {index} should be (source ids, target ids), got {pair!r}")
            source, target = (_as_id_list(part, f"pair {index}") for part in pair)
            if not source:
                raise ValueError(f"pair {index} has an empty source")
            self.pairs.append((source, target))
        if not self.pairs:
            raise ValueError("a Seq2SeqDataset needs at least one pair")

    def __len__(self) -> int:
        return len(self.pairs)

    def make_batch(self, indices: Sequence[int]) -> Seq2SeqBatch:
        """Pad the pairs at `indices` (in that order) into one batch of B = len(indices)."""
        selected = [self.pairs[int(index)] for index in indices]
        batch_size = len(selected)
        if batch_size == 0:
            raise ValueError("cannot make a batch from zero pairs")
        src_len = max(len(source) for source, _ in selected)
        tgt_len = max(len(target) for _, target in selected) + 1  # + BOS (in) / EOS (out)

        # Filled batch-major (B, seq) because each row is one example, then transposed.
        src = np.full((batch_size, src_len), self.pad_id, dtype=np.int64)
        tgt_in = np.full((batch_size, tgt_len), self.pad_id, dtype=np.int64)
        tgt_out = np.full((batch_size, tgt_len), self.ignore_index, dtype=np.int64)
        src_padding_mask = np.ones((batch_size, src_len), dtype=bool)
        tgt_padding_mask = np.ones((batch_size, tgt_len), dtype=bool)
        for row, (source, target) in enumerate(selected):
            src[row, : len(source)] = source
            src_padding_mask[row, : len(source)] = False
            tgt_in[row, 0] = self.bos_id
            tgt_in[row, 1 : len(target) + 1] = target
            tgt_out[row, : len(target)] = target
            tgt_out[row, len(target)] = self.eos_id
            tgt_padding_mask[row, : len(target) + 1] = False
        # .T gives a view; the copy makes the (seq, batch) arrays contiguous for the model.
        return Seq2SeqBatch(
            src=np.ascontiguousarray(src.T),
            tgt_in=np.ascontiguousarray(tgt_in.T),
            tgt_out=np.ascontiguousarray(tgt_out.T),
            src_padding_mask=src_padding_mask,
            tgt_padding_mask=tgt_padding_mask,
        )

    def get_batch(self, batch_size: int, rng: np.random.Generator) -> Seq2SeqBatch:
        """A batch of `batch_size` pairs drawn uniformly at random (with replacement)."""
        batch_size = _check_positive_int(batch_size, "batch_size")
        rng = _check_generator(rng)
        return self.make_batch(rng.integers(0, len(self.pairs), size=batch_size))

    def batches(self, batch_size: int) -> Iterator[Seq2SeqBatch]:
        """All pairs once, in order, `batch_size` at a time (the last batch may be smaller).

        For evaluation: every example is seen exactly once.
        """
        batch_size = _check_positive_int(batch_size, "batch_size")
        for start in range(0, len(self.pairs), batch_size):
            yield self.make_batch(range(start, min(start + batch_size, len(self.pairs))))

    def __repr__(self) -> str:
        return (
            f"Seq2SeqDataset(n_pairs={len(self.pairs)}, pad_id={self.pad_id}, "
            f"bos_id={self.bos_id}, eos_id={self.eos_id}, ignore_index={self.ignore_index})"
        )


def _as_id_list(ids: Sequence[int], where: str) -> list[int]:
    """A sequence of non-negative integer ids as a list of Python ints."""
    id_list = []
    for token_id in ids:
        if isinstance(token_id, bool) or not isinstance(token_id, numbers.Integral):
            raise ValueError(f"{where}: token ids must be integers, got {token_id!r}")
        if token_id < 0:
            raise ValueError(f"{where}: token ids must be non-negative, got {token_id}")
        id_list.append(int(token_id))
    return id_list
