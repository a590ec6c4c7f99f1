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
A file is data only: it names its pre-tokenizer from a fixed set (`PRE_TOKENIZERS`) instead of
carrying a regular expression, so no file can make `encode` run for minutes.

`BPETokenizer.from_gpt2(encoder_json, vocab_bpe)` reads OpenAI's GPT-2 vocabulary files and
encodes exactly as GPT-2 does (`save_gpt2` writes them back); with `GPT.from_gpt2` that is
the whole GPT-2 pipeline.
"""

from __future__ import annotations

import heapq
import json
import operator
import os
import re
import warnings
from collections import Counter, defaultdict
from typing import Any, ClassVar, Iterable, Self, Sequence

import regex  # GPT-2's pattern needs \p{L} and \p{N}, which Python's `re` lacks
from ..checkpoint import atomic_write

__all__ = [
    "Tokenizer",
    "CharTokenizer",
    "BPETokenizer",
    "GPT2_SPLIT_PATTERN",
    "PRE_TOKENIZERS",
    "load_tokenizer",
    "tokenizer_from_dict",
]

# Version 2: a BPE tokenizer names its pre-tokenizer ("pre_tokenizer") instead of storing a
# regular expression ("pattern"). Version 1 files still load (see BPETokenizer._from_dict).
_FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)


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
        atomic_write(os.fspath(path), (text + "\n").encode("utf-8"))

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
    return _check_tokenizer_dict(_parse_json(_read_bytes(path), f"{path}: not a valid tokenizer file"), path)


def _parse_json(data: bytes, what: str) -> Any:
    """``json.loads`` whose every failure is a ValueError starting with `what`: invalid JSON,
    text that is not UTF-8, nesting deep enough to exhaust Python's stack, numbers too long
    to convert."""
    text = _decode_utf8(data, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{what}: invalid JSON ({error})") from None
    except RecursionError:
        raise ValueError(f"{what}: the JSON is nested too deeply to read") from None
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        raise ValueError(f"{what}: invalid JSON ({error})") from None


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
            f"{path}: unknown tokenizer type {_short(data['type'])}; "
            f"known types: {sorted(_TOKENIZER_CLASSES)}"
        )
    if type(data.get("version")) is not int or data["version"] not in _READABLE_VERSIONS:
        raise ValueError(
            f"{path}: unsupported tokenizer file version {_short(data.get('version'))} "
            f"(this code reads versions {', '.join(map(str, _READABLE_VERSIONS))})"
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
            raise ValueError(f"a special token must be a non-empty str, got {_short(token)}")
        if not token.isascii():  # (isascii is fast; the UTF-8 check only for other text)
            try:
                token.encode("utf-8")
            except UnicodeEncodeError:
                raise _lone_surrogate_error(token) from None
    duplicates = sorted(token for token, count in Counter(tokens).items() if count > 1)
    if duplicates:
        raise ValueError(f"special tokens repeated: {_short(duplicates)}")
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
                raise ValueError(f"each vocabulary entry must be one character, got {_short(character)}")
        repeated = sorted({c for c, count in Counter(chars).items() if count > 1})
        if repeated:
            raise ValueError(f"characters repeated in the vocabulary: {_short(repeated)}")
        if unk is not None:
            if not isinstance(unk, str) or len(unk) != 1:
                raise ValueError(f"unk must be a single character, got {_short(unk)}")
            if unk not in chars:
                chars.append(unk)
        special_list = _check_special_tokens(special_tokens)
        char_set = set(chars)
        clashes = [token for token in special_list if token in char_set]
        if clashes:
            raise ValueError(f"special tokens that are also vocabulary characters: {_short(clashes)}")

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
# "dog!" share the token " dog" instead of each gluing punctuation to the word. This is GPT-2's
# own pattern, run by the `regex` package as GPT-2's encoder runs it: \p{L} is any letter,
# \p{N} any number (digits, and also "²" or "½"), \s is Unicode white space (not the
# separators U+001C..U+001F, which Python's `re` counts as space). Every character is a
# letter, a number, white space or something else, so the chunks cover the whole text.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# The pre-tokenizers a tokenizer can name, in code and in files. A file never carries a
# pattern of its own: one like "(a+)+$" backtracks for minutes on a short line.
#   "gpt2"  GPT-2's split above.
#   "none"  no split: merges may cross word and space boundaries (the contrast that shows
#           what pre-tokenization buys; a text is one chunk, so training on a long text is slow).
PRE_TOKENIZERS: dict[str, str | None] = {"gpt2": GPT2_SPLIT_PATTERN, "none": None}
_SPLITTERS = {name: regex.compile(pattern) for name, pattern in PRE_TOKENIZERS.items() if pattern}

# Version-1 files stored this pattern, the approximation of GPT-2's that Python's `re` allows.
# They load with "gpt2", which splits differently only around U+001C..U+001F and numbers
# that are not decimal digits ("²", "½").
_VERSION_1_PATTERN = r"'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"

# Encoding caches the ids of each chunk seen; past this many entries the cache starts afresh
# so that encoding a huge, varied text cannot use unbounded memory.
_ENCODE_CACHE_LIMIT = 200_000

# Every token's bytes are kept in memory. Merges that keep doubling a token (a, aa, aaaa, ...)
# would need 2**n bytes for n merges: a tokenizer whose tokens add up to more is refused.
# (GPT-2's 50,257 tokens hold 0.3 MB.)
_MAX_TOKEN_BYTES = 1 << 27


def _gpt2_byte_alphabet() -> list[str]:
    """GPT-2's printable stand-in for each byte value (its files store tokens as text).

    Bytes that print as themselves in Latin-1 ("!".."~", "¡".."¬", "®".."ÿ") stand for
    themselves; the 68 others (control characters, space, DEL, no-break space, soft hyphen)
    take U+0100, U+0101, ... in byte order, so a space is "Ġ" (U+0120), a newline "Ċ" (U+010A).
    """
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    alphabet, others = [], 0
    for byte in range(256):
        if byte in printable:
            alphabet.append(chr(byte))
        else:
            alphabet.append(chr(256 + others))
            others += 1
    return alphabet


_GPT2_BYTE_ALPHABET = _gpt2_byte_alphabet()


def _lone_surrogate_error(text: str) -> ValueError:
    """The error for text that UTF-8 cannot encode, naming the first lone surrogate."""
    surrogate = re.search("[\ud800-\udfff]", text)
    return ValueError(
        f"cannot encode a lone surrogate {_describe_character(surrogate[0])} at position "
        f"{surrogate.start()}: it is not valid Unicode text and has no UTF-8 bytes"
    )


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


def _apply_merges(ids: list[int], merges: dict[tuple[int, int], int]) -> list[int]:
    """`ids` with every merge applied in learning order: the same result as repeating "find
    the earliest-learned pair present, replace each of its occurrences left to right
    (`_merge_pair`)", without rescanning the whole chunk after each merge (n rescans of n
    ids: a crafted chain of merges x+a, (x+a)+a, ... made a 16,000-character chunk take 20 s).

    The ids form a linked list; a heap holds ``(rank, position)`` of every adjacent pair that
    has a merge, the rank being the merge's new id (smaller = learned earlier). Pop the
    smallest; if that pair is still there, merge it in place and push the (at most two) new
    pairs it forms with its neighbours. Entries made stale by an earlier merge are skipped when
    popped. Ties in rank pop leftmost first, which is the left-to-right rule for overlapping
    pairs ("aaa" with a+a gives "aa" + "a"); a new pair always has a larger rank than the
    merge that formed it (a merge only combines ids below its own), so every occurrence of a
    pair is merged before any later merge, as in the repeated scan. O(n log n) for n ids.

    >>> _apply_merges([1, 2, 3, 1, 2], {(1, 2): 9, (9, 3): 10})
    [10, 9]
    >>> _apply_merges([5, 5, 5], {(5, 5): 7})
    [7, 5]
    """
    tokens: list[int | None] = list(ids)
    following = list(range(1, len(tokens))) + [-1]  # position of the next live id, -1 at the end
    preceding = list(range(-1, len(tokens) - 1))
    heap = [(merges[pair], i) for i, pair in enumerate(zip(ids, ids[1:])) if pair in merges]
    heapq.heapify(heap)
    while heap:
        rank, i = heapq.heappop(heap)
        j = following[i]
        if tokens[i] is None or j < 0 or merges.get((tokens[i], tokens[j])) != rank:
            continue  # stale: one of the two ids was merged into something else since
        tokens[i], tokens[j] = rank, None
        k = following[j]
        following[i] = k
        if k >= 0:
            preceding[k] = i
            if (tokens[i], tokens[k]) in merges:
                heapq.heappush(heap, (merges[tokens[i], tokens[k]], i))
        h = preceding[i]
        if h >= 0 and (tokens[h], tokens[i]) in merges:
            heapq.heappush(heap, (merges[tokens[h], tokens[i]], h))
    return [token for token in tokens if token is not None]


class BPETokenizer(Tokenizer):
    """Byte-level byte-pair encoding (BPE), trained from scratch, as in GPT-2.

    Ids: 0..255 are the byte values; the i-th learned merge creates id ``256 + i``; special
    tokens come last, ``256 + len(merges) + j``. So
    ``vocab_size == 256 + len(merges) + len(special_tokens)``. (GPT-2's files number the 256
    bytes in another order, id 0 being "!": a tokenizer from `from_gpt2` keeps that order, so
    its ids are GPT-2's.)

    Training (`train`): split the text into chunks with the pre-tokenizer (see
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
        pre_tokenizer: how text is split into chunks before merging, a name from
            `PRE_TOKENIZERS`: "gpt2" (GPT-2's split, the default) or "none".
        special_tokens: strings such as "<|endoftext|>" that get their own id and are never
            split or merged. When `encode` is called with ``allow_special=True`` (the
            default), their occurrences in the text become those ids.
    """

    type_name = "bpe"

    def __init__(self, pre_tokenizer: str = "gpt2", special_tokens: Sequence[str] = ()) -> None:
        if not isinstance(pre_tokenizer, str) or pre_tokenizer not in PRE_TOKENIZERS:
            raise ValueError(
                f"pre_tokenizer must be one of {sorted(PRE_TOKENIZERS)}, got {pre_tokenizer!r}"
            )
        self.pre_tokenizer = pre_tokenizer
        self._splitter = _SPLITTERS.get(pre_tokenizer)
        self._special_list = _check_special_tokens(special_tokens)
        self._set_merges([], byte_ids=range(256))

    def _set_merges(self, merges: list[tuple[int, int]], byte_ids: Iterable[int] | None = None) -> None:
        """Install a list of merges (pair for id 256, pair for id 257, ...), and optionally the
        order of the bytes (``byte_ids[b]``: the id of byte value b, a permutation of
        0..255), then the tables derived from them.

        Raises:
            ValueError: if the tokens would hold more than `_MAX_TOKEN_BYTES` bytes.
        """
        lengths = [1] * 256
        for first, second in merges:
            lengths.append(lengths[first] + lengths[second])
        if sum(lengths) > _MAX_TOKEN_BYTES:
            raise ValueError(
                f"the merges build tokens of {sum(lengths):,} bytes in all, more than the "
                f"{_MAX_TOKEN_BYTES:,} allowed (merges that keep doubling a token?)"
            )
        if byte_ids is not None:
            self._byte_ids = list(byte_ids)
            self._bytes_are_ids = self._byte_ids == list(range(256))
        # pair -> id it merges into. Since ids are given in learning order, a smaller new id
        # means an earlier merge: encoding uses the id as the merge's priority.
        self.merges: dict[tuple[int, int], int] = {}
        self._token_bytes: list[bytes] = [b""] * 256
        for value, token_id in enumerate(self._byte_ids):
            self._token_bytes[token_id] = bytes([value])
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

    def _ids_of_bytes(self, text: str) -> list[int]:
        """The ids of the UTF-8 bytes of `text`, before any merge."""
        data = text.encode("utf-8")
        return list(data) if self._bytes_are_ids else [self._byte_ids[value] for value in data]

    # ---- training -------------------------------------------------------------------------

    def _split_into_chunks(self, text: str) -> list[str]:
        """Split `text` with the pre-tokenizer; ``"".join(chunks) == text``."""
        if self._splitter is None:
            return [text] if text else []
        return self._splitter.findall(text)

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
        try:
            words: list[list[int]] = [self._ids_of_bytes(chunk) for chunk in chunk_counts]
        except UnicodeEncodeError:
            raise _lone_surrogate_error(text) from None
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
        token_bytes = self._token_bytes[:256]  # for verbose printing only
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
        ids = _apply_merges(self._ids_of_bytes(chunk), self.merges)
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
                    raise _lone_surrogate_error(text) from None
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
        data = {
            "type": self.type_name,
            "version": _FORMAT_VERSION,
            "pre_tokenizer": self.pre_tokenizer,
            # In learning order: merges[i] is the pair that id 256 + i stands for.
            "merges": [list(pair) for pair in self.merges],
            "special_tokens": list(self._special_list),
        }
        if not self._bytes_are_ids:
            data["byte_ids"] = list(self._byte_ids)  # byte_ids[b]: the id of byte value b
        return data

    @classmethod
    def _from_dict(cls, data: dict[str, Any], source: str) -> BPETokenizer:
        invalid = f"{source}: not a valid tokenizer file"
        if "pre_tokenizer" not in data and data["version"] == 1 and "pattern" in data:
            pattern = _require_field(data, "pattern", str, source)
            if pattern != _VERSION_1_PATTERN:
                raise ValueError(
                    f"{invalid}: it carries a regular expression of its own "
                    f"({_short(pattern)}); tinyllm runs none from files, a tokenizer names its "
                    f"pre-tokenizer, one of {sorted(PRE_TOKENIZERS)}"
                )
            pre_tokenizer = "gpt2"
        else:
            pre_tokenizer = _require_field(data, "pre_tokenizer", str, source)
        merges = _require_field(data, "merges", list, source)
        special_tokens = _require_field(data, "special_tokens", list, source)
        byte_ids = data.get("byte_ids", range(256))
        if not isinstance(byte_ids, (list, range)) or sorted(
            b if type(b) is int else -1 for b in byte_ids
        ) != list(range(256)):
            raise ValueError(f"{invalid}: byte_ids should be the ids 0..255 in some order, "
                             f"found {_short(byte_ids)}")
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
                    f"{invalid}: merge {index} should be a pair of ids below {new_id}, "
                    f"found {_short(entry)}"
                )
            pairs.append((entry[0], entry[1]))
        if len(set(pairs)) != len(pairs):
            raise ValueError(f"{invalid}: a merge is repeated")
        try:
            tokenizer = cls(pre_tokenizer=pre_tokenizer, special_tokens=special_tokens)
            tokenizer._set_merges(pairs, byte_ids)
        except ValueError as error:
            raise ValueError(f"{invalid}: {error}") from None
        return tokenizer

    # ---- GPT-2's files --------------------------------------------------------------------

    @classmethod
    def from_gpt2(cls, encoder_json: str | os.PathLike, vocab_bpe: str | os.PathLike) -> BPETokenizer:
        """GPT-2's tokenizer, from OpenAI's two files (Hugging Face names them ``vocab.json``
        and ``merges.txt``): its `encode` gives the ids GPT-2 was trained on.

        * ``encoder_json``: a JSON object, token -> id. A token is written in GPT-2's byte
          alphabet (one printable character per byte; a space is "Ġ"). Ids 0..255 are the 256
          one-byte tokens, in GPT-2's order (id 0 is "!"); the ids after the merges are
          special tokens, written as themselves ("<|endoftext|>" = 50256).
        * ``vocab_bpe``: the merges in learning order, one "first second" pair per line after
          a "#version" line. Merge i joins two tokens into the token with id 256 + i.

        The split into chunks is GPT-2's (`GPT2_SPLIT_PATTERN`).

        Raises:
            FileNotFoundError: if a file is missing.
            ValueError: naming the file, and the line or token, that does not fit this form.
        """
        encoder = _parse_json(_read_bytes(encoder_json), f"{encoder_json}: not a GPT-2 encoder.json")
        if not isinstance(encoder, dict):
            raise ValueError(f"{encoder_json}: not a GPT-2 encoder.json: expected a JSON object "
                             f"(token -> id), found {type(encoder).__name__}")
        text_of_id: dict[int, str] = {}
        for text, token_id in encoder.items():
            if type(token_id) is not int or not 0 <= token_id < len(encoder):
                raise ValueError(f"{encoder_json}: token {_short(text)} has the id {_short(token_id)}; "
                                 f"the ids must be the integers 0..{len(encoder) - 1}, each once")
            if token_id in text_of_id:
                raise ValueError(f"{encoder_json}: tokens {_short(text_of_id[token_id])} and "
                                 f"{_short(text)} both have the id {token_id}")
            text_of_id[token_id] = text
        byte_of_character = {character: value for value, character in enumerate(_GPT2_BYTE_ALPHABET)}
        byte_ids = [0] * 256
        for token_id in range(256):
            text = text_of_id.get(token_id)
            if text not in byte_of_character:
                raise ValueError(f"{encoder_json}: ids 0..255 must be the 256 one-byte tokens of "
                                 f"GPT-2's byte alphabet; id {token_id} is {_short(text)}")
            byte_ids[byte_of_character[text]] = token_id

        lines = _decode_utf8(_read_bytes(vocab_bpe), f"{vocab_bpe}: not a GPT-2 vocab.bpe").split("\n")
        merges: list[tuple[int, int]] = []
        for line_number, line in enumerate(lines, start=1):
            if not line or (line_number == 1 and line.startswith("#")):
                continue
            where = f"{vocab_bpe}, line {line_number}"
            parts = line.split(" ")
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"{where}: expected two tokens separated by one space, found {_short(line)}")
            new_id = 256 + len(merges)
            for part in parts:
                if encoder.get(part, new_id) >= new_id:
                    raise ValueError(f"{where}: {_short(part)} is not a token of {encoder_json} made "
                                     f"before merge {len(merges)} (id {new_id})")
            if encoder.get(parts[0] + parts[1]) != new_id:
                raise ValueError(f"{where}: merge {len(merges)} must make the token with id {new_id}, "
                                 f"but {encoder_json} gives {_short(parts[0] + parts[1])} the id "
                                 f"{encoder.get(parts[0] + parts[1])}")
            merges.append((encoder[parts[0]], encoder[parts[1]]))
        special_tokens = [text_of_id[token_id] for token_id in range(256 + len(merges), len(encoder))]
        try:
            tokenizer = cls(pre_tokenizer="gpt2", special_tokens=special_tokens)
        except ValueError as error:
            raise ValueError(f"{encoder_json}: the ids after the merges are special tokens: {error}") from None
        tokenizer._set_merges(merges, byte_ids)
        return tokenizer

    def save_gpt2(self, encoder_json: str | os.PathLike, vocab_bpe: str | os.PathLike) -> None:
        """Write this tokenizer as GPT-2's two files (see `from_gpt2`), which GPT-2's own code
        and Hugging Face's ``GPT2Tokenizer`` read. Each file is replaced atomically.

        Raises:
            ValueError: if the pre-tokenizer is not "gpt2" (the files cannot say so), or if
                two ids stand for the same bytes (training can build one string from two
                different pairs; GPT-2's files name tokens by their text, so they cannot hold
                both).
        """
        if self.pre_tokenizer != "gpt2":
            raise ValueError(f"save_gpt2: GPT-2's files imply the 'gpt2' pre-tokenizer; this "
                             f"tokenizer uses {self.pre_tokenizer!r}")
        texts = ["".join(_GPT2_BYTE_ALPHABET[value] for value in data) for data in self._token_bytes]
        encoder: dict[str, int] = {}
        for token_id in range(256 + len(self.merges)):
            if texts[token_id] in encoder:
                raise ValueError(f"save_gpt2: ids {encoder[texts[token_id]]} and {token_id} both stand "
                                 f"for {self._token_bytes[token_id]!r}; GPT-2's files cannot hold both")
            encoder[texts[token_id]] = token_id
        for token, token_id in self.special_tokens.items():
            if token in encoder:
                raise ValueError(f"save_gpt2: the special token {token!r} reads as the regular "
                                 f"token {encoder[token]} in GPT-2's byte alphabet")
            encoder[token] = token_id
        merges = "".join(f"{texts[first]} {texts[second]}\n" for first, second in self.merges)
        atomic_write(os.fspath(encoder_json), json.dumps(encoder, ensure_ascii=False).encode("utf-8"))
        atomic_write(os.fspath(vocab_bpe), ("#version: 0.2\n" + merges).encode("utf-8"))

    def __repr__(self) -> str:
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
            f"special_tokens={list(self.special_tokens)})"
        )


def _read_bytes(path: str | os.PathLike) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def _decode_utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{what}: not UTF-8 text ({error})") from None


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to `limit` characters: error messages quote files, never whole."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_TOKENIZER_CLASSES.update({cls.type_name: cls for cls in (CharTokenizer, BPETokenizer)})
