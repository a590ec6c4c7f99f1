"""Toy translation tasks, generated from a seed, for training a small encoder-decoder.

A real translation corpus needs a big model and days of training. These tasks keep what
makes translation a sequence-to-sequence problem (input and output differ in length, words
must be reordered and rewritten) while a small Transformer can learn them in minutes:

- dates: ``"march 5, 1998"``, ``"5 Mar 1998"``, ``"the 5th of march 1998"``,
  ``"05.03.1998"`` -> ``"1998-03-05"`` (`make_date_pairs`);
- number words: ``"three hundred and twelve"`` -> ``"312"`` (`make_number_pairs`).

Sources stay under about 30 characters. `date_tokenizers` / `number_tokenizers` build the
character tokenizers for each side, with "<pad>", "<bos>", "<eos>" as ids 0, 1, 2, and
`encode_pairs` turns text pairs into the id pairs that `Seq2SeqDataset` takes.

Randomness comes only from ``random.Random(seed).random()``: Python guarantees that this one
method gives the same numbers for the same integer seed in every version, so a seed names
the same data everywhere.
"""

from __future__ import annotations

import datetime
import random
from typing import Callable, Sequence

from .tokenizers import CharTokenizer

__all__ = [
    "PAD",
    "BOS",
    "EOS",
    "SPECIAL_TOKENS",
    "make_date_pairs",
    "make_number_pairs",
    "number_to_words",
    "make_char_tokenizers",
    "date_tokenizers",
    "number_tokenizers",
    "encode_pairs",
]

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD, BOS, EOS)  # ids 0, 1, 2 in every tokenizer built here

_MONTHS = [
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
]
_MONTH_ABBREVIATIONS = [name[:3] for name in _MONTHS]  # "jan", ..., "sep", ..., "dec"

_FIRST_DAY = datetime.date(1900, 1, 1).toordinal()
_LAST_DAY = datetime.date(2099, 12, 31).toordinal()


def _pick(rng: random.Random, options: Sequence):
    """One element of `options`, chosen with rng.random() only (see the module docstring)."""
    return options[int(rng.random() * len(options))]


def _ordinal(day: int) -> str:
    """1 -> "1st", 2 -> "2nd", 3 -> "3rd", 11 -> "11th", 22 -> "22nd"."""
    if 11 <= day % 100 <= 13:  # "11th", not "11st"
        return f"{day}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# Each format renders (date, month word) as a source string; the month word arrives already
# cased ("march" or "March") and abbreviated or not, as the format's second field says.
_DATE_FORMATS: list[tuple[Callable[[datetime.date, str], str], bool]] = [
    (lambda date, month: f"{month} {date.day}, {date.year}", False),  # march 5, 1998
    (lambda date, month: f"{date.day} {month} {date.year}", False),  # 5 march 1998
    (lambda date, month: f"{month} {date.day}, {date.year}", True),  # mar 5, 1998
    (lambda date, month: f"{date.day} {month} {date.year}", True),  # 5 mar 1998
    (lambda date, month: f"the {_ordinal(date.day)} of {month} {date.year}", False),
    (lambda date, month: f"{date.day:02d}.{date.month:02d}.{date.year}", False),  # 05.03.1998
]


def _random_date_pair(rng: random.Random) -> tuple[str, str]:
    date = datetime.date.fromordinal(_FIRST_DAY + int(rng.random() * (_LAST_DAY - _FIRST_DAY + 1)))
    render, abbreviated = _pick(rng, _DATE_FORMATS)
    month = (_MONTH_ABBREVIATIONS if abbreviated else _MONTHS)[date.month - 1]
    if rng.random() < 0.5:
        month = month.capitalize()
    return render(date, month), date.isoformat()


def _make_unique_pairs(
    n: int, seed: int, draw: Callable[[random.Random], tuple[str, str]], unique: bool, limit: int
) -> list[tuple[str, str]]:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if unique and n > limit:
        raise ValueError(f"cannot draw {n} distinct sources: this task has at most {limit}")
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(pairs) < n:
        source, target = draw(rng)
        if unique:
            if source in seen:
                continue
            seen.add(source)
        pairs.append((source, target))
    return pairs


def make_date_pairs(n: int, seed: int = 0, *, unique: bool = True) -> list[tuple[str, str]]:
    """`n` (English date, ISO date) pairs, e.g. ("March 5, 1998", "1998-03-05").

    Dates are uniform over 1900-01-01 .. 2099-12-31; the format (6 kinds) and the month's
    capitalisation are uniform too. Sources are at most 26 characters, targets exactly 10.

    For a train/test split without overlap, draw once and cut:
    ``pairs = make_date_pairs(n_train + n_test, seed); train, test = pairs[:n_train],
    pairs[n_train:]``. Two calls with different seeds can share a few pairs.

    Args:
        n: number of pairs.
        seed: the same seed gives the same list, on any machine and Python version.
        unique: if True, no source string appears twice in the list.

    Returns:
        A list of (source, target) string pairs.
    """
    # Distinct sources: days * (5 formats with a month word * 2 cases + 1 numeric format).
    n_distinct = (_LAST_DAY - _FIRST_DAY + 1) * 11
    # Rejection sampling slows down as the pool empties; a quarter of it stays fast.
    return _make_unique_pairs(n, seed, _random_date_pair, unique, limit=n_distinct // 4)


_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
    "seventeen", "eighteen", "nineteen",
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_to_words(number: int) -> str:
    """An integer in 0..999 in British English words.

    >>> number_to_words(312)
    'three hundred and twelve'
    >>> number_to_words(77)
    'seventy-seven'
    """
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 999:
        raise ValueError(f"number must be an integer in 0..999, got {number!r}")
    hundreds, rest = divmod(number, 100)
    if rest < 20:
        rest_words = _ONES[rest]
    else:
        tens, ones = divmod(rest, 10)
        rest_words = _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if hundreds == 0:
        return rest_words
    if rest == 0:
        return f"{_ONES[hundreds]} hundred"
    return f"{_ONES[hundreds]} hundred and {rest_words}"


def make_number_pairs(
    n: int, seed: int = 0, *, max_value: int = 999, unique: bool = True
) -> list[tuple[str, str]]:
    """`n` (number in words, digits) pairs, e.g. ("three hundred and twelve", "312").

    Numbers are uniform over 0..max_value. Sources are at most 31 characters
    ("seven hundred and seventy-seven").

    Args:
        n: number of pairs; with ``unique=True`` at most ``max_value + 1``.
        seed: the same seed gives the same list.
        max_value: largest number, at most 999.
        unique: if True, no number appears twice.
    """
    if isinstance(max_value, bool) or not isinstance(max_value, int) or not 0 <= max_value <= 999:
        raise ValueError(f"max_value must be an integer in 0..999, got {max_value!r}")

    def draw(rng: random.Random) -> tuple[str, str]:
        number = int(rng.random() * (max_value + 1))
        return number_to_words(number), str(number)

    return _make_unique_pairs(n, seed, draw, unique, limit=max_value + 1)


def make_char_tokenizers(
    pairs: Sequence[tuple[str, str]],
    *,
    extra_source_chars: str = "",
    extra_target_chars: str = "",
) -> tuple[CharTokenizer, CharTokenizer]:
    """Source and target character tokenizers for a translation task.

    Each vocabulary is the sorted set of characters on its side of `pairs` (plus the
    extra characters), after the special tokens "<pad>" = 0, "<bos>" = 1, "<eos>" = 2.
    Build them from all the data you will encode (or pass the task's full alphabet as
    extra characters): a character never seen here cannot be encoded later.

    Returns:
        ``(source_tokenizer, target_tokenizer)``.
    """
    source_chars = set(extra_source_chars)
    target_chars = set(extra_target_chars)
    for source, target in pairs:
        source_chars.update(source)
        target_chars.update(target)
    return (
        CharTokenizer(sorted(source_chars), special_tokens=SPECIAL_TOKENS),
        CharTokenizer(sorted(target_chars), special_tokens=SPECIAL_TOKENS),
    )


def date_tokenizers() -> tuple[CharTokenizer, CharTokenizer]:
    """Tokenizers that cover every string `make_date_pairs` can produce, whatever the seed."""
    month_letters = "".join(_MONTHS) + "".join(name.capitalize() for name in _MONTHS)
    return make_char_tokenizers(
        [],
        extra_source_chars=month_letters + "0123456789 ,." + "the of st nd rd th",
        extra_target_chars="0123456789-",
    )


def number_tokenizers() -> tuple[CharTokenizer, CharTokenizer]:
    """Tokenizers that cover every string `make_number_pairs` can produce."""
    words = " ".join(_ONES + _TENS) + " hundred and -"
    return make_char_tokenizers([], extra_source_chars=words, extra_target_chars="0123456789")


def encode_pairs(
    pairs: Sequence[tuple[str, str]],
    source_tokenizer: CharTokenizer,
    target_tokenizer: CharTokenizer,
) -> list[tuple[list[int], list[int]]]:
    """Text pairs -> id pairs, ready for ``Seq2SeqDataset(..., pad_id=0, bos_id=1, eos_id=2)``.

    BOS and EOS are not added here: the dataset adds them to the target when it builds
    ``tgt_in`` and ``tgt_out``.
    """
    return [
        (source_tokenizer.encode(source), target_tokenizer.encode(target))
        for source, target in pairs
    ]
