"""Tokenizers, written by hand: text -> list of integer ids -> text.

A model sees numbers, not text. A tokenizer fixes a vocabulary of pieces and maps each piece
to an id. Two classic choices live here:

- `CharTokenizer`: one id per character (Unicode code point). Tiny vocabulary (65 for Tiny
  Shakespeare), long sequences. What nanoGPT's shakespeare-char uses.
- `BPETokenizer`: byte-level byte-pair encoding, as in GPT-2. Start from the 256 byte values,
  then repeatedly give the most frequent adjacent pair of ids a new id ("merge" it). Frequent
  words become one token; any string still encodes, because every string is bytes.

Both save to and load from JSON (never pickle: loading a pickle runs code). The JSON object
has a "type" field ("char" or "bpe"), so `load_tokenizer(path)` returns the right class.
"""

from __future__ import annotations

import json
import operator
import os
import re
import warnings
from collections import Counter, defaultdict
from typing import Any, ClassVar, Iterable, Self, Sequence

__all__ = [
    "Tokenizer",
    "CharTokenizer",
    "BPETokenizer",
    "GPT2_SPLIT_PATTERN",
    "load_tokenizer",
]

_FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------
# The common part: ids checking and the JSON file format
# --------------------------------------------------------------------------------------------


class Tokenizer:
    """What every tokenizer here offers.

    Subclasses set `type_name` (the JSON "type" field) and implement `encode`, `decode`,
    `vocab_size`, `to_dict` and `_from_dict`. Saving and loading are shared.
    """

    type_name: ClassVar[str] = ""

    # Filled by each subclass's constructor: special token string -> id.
    special_tokens: dict[str, int]

    def encode(self, text: str) -> list[int]:
        """Text -> token ids."""
        raise NotImplementedError

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = False) -> str:
        """Token ids -> text; special tokens become their strings, or nothing if skipped."""
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        """Number of distinct ids: every id is in ``range(vocab_size)``."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready description of this tokenizer (includes "type" and "version")."""
        raise NotImplementedError

    @classmethod
    def _from_dict(cls, data: dict[str, Any], source: str) -> Tokenizer:
        """Build from a `to_dict` result; raise ValueError mentioning `source` if invalid."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer to `path` as JSON.

        The file is written next to its destination under a temporary name, then renamed,
        so a crash never leaves a half-written tokenizer behind.
        """
        # ensure_ascii=True writes non-ASCII characters as \uXXXX escapes: less pretty, but
        # every code point survives, even a lone surrogate that UTF-8 cannot store.
        text = json.dumps(self.to_dict(), ensure_ascii=True, indent=1)
        from ..checkpoint import _atomic_write  # (safetensors loads only when saving)
        _atomic_write(os.fspath(path), (text + "\n").encode("utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Self:
        """Read a tokenizer saved by `save`. ``Tokenizer.load`` (on the base class) loads
        any kind, like `load_tokenizer`; ``CharTokenizer.load`` only a char tokenizer.

        Raises:
            FileNotFoundError: if there is no such file.
            ValueError: if the file is not a valid tokenizer file of this class; the message
                names the file and the problem.
        """
        data = _read_tokenizer_json(path)
        if cls is not Tokenizer and data["type"] != cls.type_name:
            raise ValueError(
                f"{path}: holds a {data['type']!r} tokenizer, not a {cls.type_name!r} one; "
                f"use load_tokenizer(path) to load any kind"
            )
        return _TOKENIZER_CLASSES[data["type"]]._from_dict(data, str(path))

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        """Return `ids` as a list of Python ints, or raise ValueError naming a bad one."""
        try:
            # operator.index accepts Python and NumPy integers but refuses 2.5 or "7",
            # where int() would quietly truncate or parse.
            id_list = [operator.index(token_id) for token_id in ids]
        except TypeError as error:
            raise ValueError(f"token ids must be integers: {error}") from None
        vocab_size = self.vocab_size
        for position, token_id in enumerate(id_list):
            # A negative id would silently index from the end of a Python list: refuse it.
            if not 0 <= token_id < vocab_size:
                raise ValueError(
                    f"token id {token_id} at position {position} is outside the "
                    f"vocabulary (valid ids are 0..{vocab_size - 1})"
                )
        return id_list


_TOKENIZER_CLASSES: dict[str, type[Tokenizer]] = {}  # "type" field -> class, filled below


def _read_tokenizer_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read and minimally check a tokenizer JSON file (an object with "type" and "version")."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not a valid tokenizer file: invalid JSON ({error})") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a valid tokenizer file: not UTF-8 text ({error})") from None
    return _check_tokenizer_dict(data, path)


def _check_tokenizer_dict(data: Any, path: str | os.PathLike) -> dict[str, Any]:
    """Check the outer shape of a tokenizer description (an object with "type" and "version")."""
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: not a valid tokenizer file: expected a JSON object, "
            f"found {type(data).__name__}"
        )
    if "type" not in data:
        raise ValueError(f"{path}: not a valid tokenizer file: missing the \"type\" field")
    if not isinstance(data["type"], str) or data["type"] not in _TOKENIZER_CLASSES:
        raise ValueError(
            f"{path}: unknown tokenizer type {data['type']!r}; "
            f"known types: {sorted(_TOKENIZER_CLASSES)}"
        )
    if data.get("version") != _FORMAT_VERSION:
        raise ValueError(
            f"{path}: unsupported tokenizer file version {data.get('version')!r} "
            f"(this code reads version {_FORMAT_VERSION})"
        )
    return data


def tokenizer_from_dict(data: dict[str, Any], source: str = "<tokenizer dict>") -> Tokenizer:
    """Rebuild any tokenizer from its `to_dict` description (e.g. kept inside a checkpoint)."""
    data = _check_tokenizer_dict(data, source)
    return _TOKENIZER_CLASSES[data["type"]]._from_dict(data, source)


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load any tokenizer saved with `save`, choosing the class from the file's "type" field.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if the file is malformed; the message names the file and the problem.
    """
    return Tokenizer.load(path)


def _require_field(data: dict[str, Any], name: str, kind: type, source: str) -> Any:
    """Return ``data[name]`` if present and of type `kind`, else raise a clear ValueError."""
    if name not in data:
        raise ValueError(f"{source}: not a valid tokenizer file: missing the {name!r} field")
    value = data[name]
    if not isinstance(value, kind):
        raise ValueError(
            f"{source}: not a valid tokenizer file: field {name!r} should be {kind.__name__}, "
            f"found {type(value).__name__}"
        )
    return value


def _check_special_tokens(special_tokens: Sequence[str]) -> list[str]:
    """Special tokens must be distinct, non-empty strings."""
    tokens = list(special_tokens)
    for token in tokens:
        if not isinstance(token, str) or not token:
            raise ValueError(f"a special token must be a non-empty str, got {token!r}")
    duplicates = sorted({token for token in tokens if tokens.count(token) > 1})
    if duplicates:
        raise ValueError(f"special tokens repeated: {duplicates}")
    return tokens


def _describe_character(character: str) -> str:
    """'é' -> "'é' (U+00E9)": the code point makes invisible characters visible."""
    return f"{character!r} (U+{ord(character):04X})"


# --------------------------------------------------------------------------------------------
# Character-level tokenizer
# --------------------------------------------------------------------------------------------


class CharTokenizer(Tokenizer):
    """One token per character, as in nanoGPT's shakespeare-char.

    A "character" here is a Unicode code point (one element of a Python str), not what a
    reader sees as one symbol: "👍🏽" is two code points, so two tokens.

    Ids: special tokens first (ids ``0 .. k-1``, in the order given), then the characters in
    vocabulary order. With no special tokens, ``CharTokenizer.from_text(text)`` gives exactly
    nanoGPT's ``stoi = {ch: i for i, ch in enumerate(sorted(set(text)))}``.

    Special tokens (e.g. "<pad>", "<bos>", "<eos>" for a translation model) are never matched
    inside text: "<pad>" in a string encodes as five characters. Insert their ids directly,
    from ``tokenizer.special_tokens["<pad>"]``.

    Unknown characters: by default `encode` raises a ValueError naming each unknown character
    and its position. With ``unk="\\ufffd"`` (or any single character), unknown characters
    encode to the id of `unk` instead, and `unk` is added to the vocabulary if missing; the
    text then no longer round-trips, which is why this is opt-in.

    Args:
        chars: the vocabulary, one character per entry, in id order, no repeats.
        unk: optional replacement character for characters outside the vocabulary.
        special_tokens: optional strings that get their own ids before the characters.
    """

    type_name = "char"

    def __init__(
        self,
        chars: Iterable[str],
        *,
        unk: str | None = None,
        special_tokens: Sequence[str] = (),
    ) -> None:
        chars = list(chars)
        for character in chars:
            if not isinstance(character, str) or len(character) != 1:
                raise ValueError(f"each vocabulary entry must be one character, got {character!r}")
        repeated = sorted({c for c, count in Counter(chars).items() if count > 1})
        if repeated:
            raise ValueError(f"characters repeated in the vocabulary: {repeated}")
        if unk is not None:
            if not isinstance(unk, str) or len(unk) != 1:
                raise ValueError(f"unk must be a single character, got {unk!r}")
            if unk not in chars:
                chars.append(unk)
        special_list = _check_special_tokens(special_tokens)
        clashes = [token for token in special_list if token in chars]
        if clashes:
            raise ValueError(f"special tokens that are also vocabulary characters: {clashes}")

        self.chars: list[str] = chars
        self.unk = unk
        self.special_tokens = {token: index for index, token in enumerate(special_list)}
        first_char_id = len(special_list)
        self._char_to_id = {c: first_char_id + index for index, c in enumerate(chars)}
        # Decoding table: id -> string. Special tokens decode to their own text.
        self._id_to_string: list[str] = special_list + chars

    @classmethod
    def from_text(
        cls, text: str, *, unk: str | None = None, special_tokens: Sequence[str] = ()
    ) -> CharTokenizer:
        """Build the vocabulary from the sorted set of characters in `text` (plus `unk`)."""
        characters = set(text)
        if unk is not None:
            characters.add(unk)
        return cls(sorted(characters), unk=unk, special_tokens=special_tokens)

    @property
    def vocab_size(self) -> int:
        return len(self._id_to_string)

    @property
    def unk_id(self) -> int | None:
        """Id of the `unk` character, or None when unknown characters are an error."""
        return None if self.unk is None else self._char_to_id[self.unk]

    def encode(self, text: str) -> list[int]:
        """Text -> one id per character, shape (len(text),).

        Raises:
            ValueError: for characters outside the vocabulary (when there is no `unk`),
                naming up to five of them with their positions.
        """
        char_to_id = self._char_to_id
        if self.unk is not None:
            unk_id = char_to_id[self.unk]
            return [char_to_id.get(c, unk_id) for c in text]
        try:
            return [char_to_id[c] for c in text]  # the fast path: all characters known
        except KeyError:
            unknown = [(i, c) for i, c in enumerate(text) if c not in char_to_id]
            shown = ", ".join(f"{_describe_character(c)} at position {i}" for i, c in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise ValueError(
                f"{len(unknown)} character(s) not in the vocabulary: {shown}{more}. "
                f"Build the tokenizer from text that contains them, or pass unk='\\ufffd'"
            ) from None

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = False) -> str:
        """Ids -> text. Special tokens decode to their strings unless skipped.

        Raises:
            ValueError: for an id outside ``range(vocab_size)``, naming it and its position.
        """
        id_list = self._check_ids(ids)
        if skip_special_tokens:
            first_char_id = len(self.special_tokens)
            id_list = [token_id for token_id in id_list if token_id >= first_char_id]
        id_to_string = self._id_to_string
        return "".join([id_to_string[token_id] for token_id in id_list])

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "version": _FORMAT_VERSION,
            "chars": list(self.chars),
            "unk": self.unk,
            "special_tokens": list(self.special_tokens),
        }

    @classmethod
    def _from_dict(cls, data: dict[str, Any], source: str) -> CharTokenizer:
        chars = _require_field(data, "chars", list, source)
        unk = data.get("unk")
        special_tokens = _require_field(data, "special_tokens", list, source)
        try:
            return cls(chars, unk=unk, special_tokens=special_tokens)
        except ValueError as error:
            raise ValueError(f"{source}: not a valid tokenizer file: {error}") from None

    def __repr__(self) -> str:
        return (
            f"CharTokenizer(vocab_size={self.vocab_size}, unk={self.unk!r}, "
            f"special_tokens={list(self.special_tokens)})"
        )


# --------------------------------------------------------------------------------------------
# Byte-level BPE tokenizer
# --------------------------------------------------------------------------------------------

# GPT-2 first splits text into chunks (words with their leading space, numbers, runs of
# punctuation, runs of whitespace) and learns merges only inside a chunk, so "dog." and
# "dog!" share the token " dog" instead of each gluing punctuation to the word. GPT-2's
# pattern is
#     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# Python's `re` has no \p{L} (letter) or \p{N} (number), so we approximate with classes it has:
#     \p{N}  ~  \d          decimal digits (Unicode category Nd)
#     \p{L}  ~  [^\W\d_]    "word" characters that are not digits or "_": letters, plus the
#                           few non-decimal numbers such as "²" and "½" (GPT-2: \p{N})
#     [^\s\p{L}\p{N}]  ~  [^\s\w]|_   everything else: punctuation, symbols, emoji, and
#                           combining marks (which are not \p{L} in GPT-2 either)
# Every character falls into one class, so the chunks cover the whole text.
GPT2_SPLIT_PATTERN = (
    r"'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"
)

# Encoding caches the ids of each chunk seen; past this many entries the cache starts afresh
# so that encoding a huge, varied text cannot use unbounded memory.
_ENCODE_CACHE_LIMIT = 200_000


def _merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each non-overlapping occurrence of `pair`, left to right, by `new_id`.

    >>> _merge_pair([1, 2, 3, 1, 2], (1, 2), 9)
    [9, 3, 9]
    >>> _merge_pair([5, 5, 5], (5, 5), 7)  # "aaa" -> "aa" + "a"
    [7, 5]
    """
    first, second = pair
    merged = []
    index = 0
    length = len(ids)
    while index < length:
        if index + 1 < length and ids[index] == first and ids[index + 1] == second:
            merged.append(new_id)
            index += 2
        else:
            merged.append(ids[index])
            index += 1
    return merged


class BPETokenizer(Tokenizer):
    """Byte-level byte-pair encoding (BPE), trained from scratch, as in GPT-2.

    Ids: 0..255 are the byte values; the i-th learned merge creates id ``256 + i``; special
    tokens come last, ``256 + len(merges) + j``. So
    ``vocab_size == 256 + len(merges) + len(special_tokens)``.

    Training (`train`): split the text into chunks with `pattern` (see
    `GPT2_SPLIT_PATTERN`), write each chunk as its UTF-8 bytes, then repeat: count every
    adjacent pair of ids in every chunk, give the most frequent pair a new id, and replace
    it everywhere. Merges never cross a chunk boundary.

    Encoding (`encode`): split the text the same way; in each chunk apply merges in the order
    they were learned (always the earliest-learned pair present first) until none applies.

    Decoding (`decode`): concatenate each id's bytes and decode as UTF-8 with
    ``errors="replace"``: a sequence of ids that splits a multi-byte character (a model can
    sample one) shows U+FFFD instead of failing. Ids produced by `encode` always decode back
    to the exact text.

    Args:
        pattern: regular expression that splits text into chunks before merging.
        special_tokens: strings such as "<|endoftext|>" that get their own id and are never
            split or merged. When `encode` is called with ``allow_special=True`` (the
            default), their occurrences in the text become those ids.
    """

    type_name = "bpe"

    def __init__(
        self, pattern: str = GPT2_SPLIT_PATTERN, special_tokens: Sequence[str] = ()
    ) -> None:
        self.pattern = pattern
        self._splitter = re.compile(pattern)
        self._special_list = _check_special_tokens(special_tokens)
        self._set_merges([])

    def _set_merges(self, merges: list[tuple[int, int]]) -> None:
        """Install a list of merges (pair for id 256, pair for id 257, ...) and derived tables."""
        # pair -> id it merges into. Since ids are given in learning order, a smaller new id
        # means an earlier merge: encoding uses the id as the merge's priority.
        self.merges: dict[tuple[int, int], int] = {}
        self._token_bytes: list[bytes] = [bytes([value]) for value in range(256)]
        for new_id, (first, second) in enumerate(merges, start=256):
            self.merges[(first, second)] = new_id
            self._token_bytes.append(self._token_bytes[first] + self._token_bytes[second])
        first_special_id = 256 + len(merges)
        self.special_tokens = {
            token: first_special_id + index for index, token in enumerate(self._special_list)
        }
        self._token_bytes.extend(token.encode("utf-8") for token in self._special_list)
        # Longest first, so that of two specials where one is a prefix of the other, the
        # longer one wins.
        if self._special_list:
            alternatives = sorted(self._special_list, key=len, reverse=True)
            self._special_splitter = re.compile(
                "(" + "|".join(re.escape(token) for token in alternatives) + ")"
            )
        else:
            self._special_splitter = None
        self._encode_cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self._token_bytes)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes that `token_id` stands for, e.g. ``b" the"`` (special tokens: their UTF-8)."""
        return self._token_bytes[self._check_ids([token_id])[0]]

    # ---- training -------------------------------------------------------------------------

    def _split_into_chunks(self, text: str) -> list[str]:
        """Split `text` with the pattern. Text the pattern skips becomes a chunk of its own,
        so ``"".join(chunks) == text`` holds for any pattern."""
        chunks = []
        position = 0
        for match in self._splitter.finditer(text):
            start, end = match.span()
            if start > position:
                chunks.append(text[position:start])
            if end > start:
                chunks.append(text[start:end])
            position = max(position, end)
        if position < len(text):
            chunks.append(text[position:])
        return chunks

    def _split_special(self, text: str, allow_special: bool) -> list[tuple[str, bool]]:
        """Split `text` into (piece, is_special_token) parts."""
        if self._special_splitter is None or not allow_special:
            return [(text, False)]
        # re.split with one capturing group alternates: text, special, text, special, ...
        parts = self._special_splitter.split(text)
        return [(part, index % 2 == 1) for index, part in enumerate(parts) if part]

    def train(self, text: str, vocab_size: int, verbose: bool = False) -> None:
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from `text`, replacing
        any merges learned before.

        Ties between equally frequent pairs go to the smallest pair ``(first, second)``, so
        training is deterministic. Special tokens in `text` are cut out before counting.
        If the text runs out of pairs first, training stops early with a warning and the
        vocabulary is smaller than asked.

        Cost: the pair counts are built once over the unique chunks (each with its number of
        occurrences) and then updated only for the chunks that contain the merged pair, so a
        merge costs time in proportion to those chunks, not to the size of the text: 512
        tokens on Tiny Shakespeare (1.1 MB) take about a second. A chunk that holds the pair
        is recounted whole, so text made of very long chunks trains slower: Chinese without
        spaces is one chunk per paragraph (a single 90 KB chunk takes ~10 s for 256 merges).

        Args:
            text: training text.
            vocab_size: size of the final vocabulary, at least ``256 + len(special_tokens)``.
            verbose: print each merge.
        """
        n_merges = vocab_size - 256 - len(self._special_list)
        if n_merges < 0:
            raise ValueError(
                f"vocab_size must be at least 256 bytes + {len(self._special_list)} special "
                f"tokens = {256 + len(self._special_list)}, got {vocab_size}"
            )

        # Unique chunks and how often each occurs: the text " the" appears thousands of times
        # but needs to be merged only once per training step.
        chunk_counts: Counter[str] = Counter()
        for piece, is_special in self._split_special(text, allow_special=True):
            if not is_special:
                chunk_counts.update(self._split_into_chunks(piece))
        words: list[list[int]] = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
        weights: list[int] = list(chunk_counts.values())

        # pair_counts[pair]: occurrences of the pair in the whole text.
        # words_with_pair[pair]: indices of the words that contain it, to find them fast.
        pair_counts: dict[tuple[int, int], int] = defaultdict(int)
        words_with_pair: dict[tuple[int, int], set[int]] = defaultdict(set)
        for word_index, (ids, weight) in enumerate(zip(words, weights)):
            for pair in zip(ids, ids[1:]):
                pair_counts[pair] += weight
                words_with_pair[pair].add(word_index)

        merges: list[tuple[int, int]] = []
        token_bytes = [bytes([value]) for value in range(256)]  # for verbose printing only
        for merge_index in range(n_merges):
            if not pair_counts:
                warnings.warn(
                    f"BPE training stopped after {merge_index} of {n_merges} merges: no pair "
                    f"of tokens is left to merge (the text is too small); vocab_size is "
                    f"{256 + merge_index + len(self._special_list)}",
                    stacklevel=2,
                )
                break
            # Most frequent pair; among equals, the smallest (first, second).
            best = max(pair_counts, key=lambda pair: (pair_counts[pair], -pair[0], -pair[1]))
            best_count = pair_counts[best]
            new_id = 256 + merge_index

            changed_pairs = set()
            for word_index in words_with_pair.pop(best):
                old_ids = words[word_index]
                new_ids = _merge_pair(old_ids, best, new_id)
                weight = weights[word_index]
                # Update the counts: remove every pair of the old word, add every pair of
                # the new one. Only pairs next to a merged occurrence really change.
                for pair in zip(old_ids, old_ids[1:]):
                    pair_counts[pair] -= weight
                    changed_pairs.add(pair)
                for pair in zip(new_ids, new_ids[1:]):
                    pair_counts[pair] += weight
                    words_with_pair[pair].add(word_index)
                for pair in set(zip(old_ids, old_ids[1:])) - set(zip(new_ids, new_ids[1:])):
                    if pair != best:
                        words_with_pair[pair].discard(word_index)
                words[word_index] = new_ids
            for pair in changed_pairs:
                if pair_counts.get(pair) == 0:
                    del pair_counts[pair]
                    words_with_pair.pop(pair, None)

            merges.append(best)
            token_bytes.append(token_bytes[best[0]] + token_bytes[best[1]])
            if verbose:
                print(
                    f"merge {merge_index + 1}/{n_merges}: {best} -> {new_id} "
                    f"{token_bytes[new_id]!r} ({best_count} occurrences)"
                )
        self._set_merges(merges)

    # ---- encoding and decoding ------------------------------------------------------------

    def _encode_chunk(self, chunk: str) -> list[int]:
        """Ids of one chunk: its bytes, merged in learning order."""
        cached = self._encode_cache.get(chunk)
        if cached is not None:
            return cached
        ids = list(chunk.encode("utf-8"))
        merges = self.merges
        never_learned = self.vocab_size  # ranks after every learned merge's id
        while len(ids) >= 2:
            # The pair learned earliest (smallest new id) among those present merges first,
            # as in training.
            pair = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, never_learned))
            if pair not in merges:
                break
            ids = _merge_pair(ids, pair, merges[pair])
        if len(self._encode_cache) >= _ENCODE_CACHE_LIMIT:
            self._encode_cache.clear()
        self._encode_cache[chunk] = ids
        return ids

    def encode(self, text: str, *, allow_special: bool = True) -> list[int]:
        """Text -> token ids. ``decode(encode(text)) == text`` for any string that UTF-8 can
        hold (every string without lone surrogates).

        Args:
            text: the text.
            allow_special: if True, registered special tokens in `text` become their ids; if
                False they are encoded as ordinary text. Use False for untrusted input, so a
                user cannot inject "<|endoftext|>".

        Raises:
            ValueError: if `text` holds a lone surrogate (U+D800..U+DFFF), which has no
                UTF-8 form.
        """
        ids: list[int] = []
        for piece, is_special in self._split_special(text, allow_special):
            if is_special:
                ids.append(self.special_tokens[piece])
                continue
            for chunk in self._split_into_chunks(piece):
                try:
                    ids.extend(self._encode_chunk(chunk))
                except UnicodeEncodeError:
                    surrogate = re.search("[\ud800-\udfff]", text)
                    raise ValueError(
                        f"cannot encode a lone surrogate {_describe_character(surrogate[0])} "
                        f"at position {surrogate.start()}: it is not valid Unicode text and "
                        f"has no UTF-8 bytes"
                    ) from None
        return ids

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = False) -> str:
        """Token ids -> text: join the ids' bytes, decode UTF-8 with errors="replace".
        Special tokens decode to their strings unless skipped.

        Raises:
            ValueError: for an id outside ``range(vocab_size)``, naming it and its position.
        """
        id_list = self._check_ids(ids)
        if skip_special_tokens:
            first_special_id = 256 + len(self.merges)
            id_list = [token_id for token_id in id_list if token_id < first_special_id]
        token_bytes = self._token_bytes
        data = b"".join([token_bytes[token_id] for token_id in id_list])
        return data.decode("utf-8", errors="replace")

    # ---- saving and loading ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "version": _FORMAT_VERSION,
            "pattern": self.pattern,
            # In learning order: merges[i] is the pair that id 256 + i stands for.
            "merges": [list(pair) for pair in self.merges],
            "special_tokens": list(self._special_list),
        }

    @classmethod
    def _from_dict(cls, data: dict[str, Any], source: str) -> BPETokenizer:
        pattern = _require_field(data, "pattern", str, source)
        merges = _require_field(data, "merges", list, source)
        special_tokens = _require_field(data, "special_tokens", list, source)
        pairs = []
        for index, entry in enumerate(merges):
            new_id = 256 + index
            # A merge may only combine ids that exist before it: bytes or earlier merges.
            if (
                not isinstance(entry, list)
                or len(entry) != 2
                or not all(type(part) is int and 0 <= part < new_id for part in entry)
            ):
                raise ValueError(
                    f"{source}: not a valid tokenizer file: merge {index} should be a pair "
                    f"of ids below {new_id}, found {entry!r}"
                )
            pairs.append((entry[0], entry[1]))
        if len(set(pairs)) != len(pairs):
            raise ValueError(f"{source}: not a valid tokenizer file: a merge is repeated")
        try:
            tokenizer = cls(pattern=pattern, special_tokens=special_tokens)
        except (ValueError, re.error) as error:
            raise ValueError(f"{source}: not a valid tokenizer file: {error}") from None
        tokenizer._set_merges(pairs)
        return tokenizer

    def __repr__(self) -> str:
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
            f"special_tokens={list(self.special_tokens)})"
        )


_TOKENIZER_CLASSES.update({cls.type_name: cls for cls in (CharTokenizer, BPETokenizer)})
