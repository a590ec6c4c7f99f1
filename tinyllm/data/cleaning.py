"""Text cleaning and the train/validation split: the first steps of data preprocessing.

A model learns whatever is in its data, including invisible junk: a Windows file has "\\r\\n"
line endings, a copy-paste from a PDF brings form feeds and NUL bytes, and the same letter "é"
may be stored as one code point (U+00E9) or as two ("e" + U+0301 COMBINING ACUTE ACCENT).
`clean_text` makes such variants identical before tokenization, so the tokenizer does not
spend vocabulary entries on them and the model does not learn two spellings of one thing.

`train_val_split` holds out the tail of the data for validation, as nanoGPT does: a
contiguous cut, so no validation window overlaps a training window.
"""

from __future__ import annotations

import numbers
import re
import unicodedata
from typing import TypeVar

__all__ = ["clean_text", "train_val_split"]

# Line boundaries other than "\n" that Unicode and Python's str.splitlines() recognise:
# Windows "\r\n", old Mac "\r", NEL (U+0085, a C1 control), LINE SEPARATOR and PARAGRAPH
# SEPARATOR. "\r\n" comes first in the alternation so it becomes one "\n", not two.
_LINE_BREAKS = re.compile("\r\n|\r|\u0085|\u2028|\u2029")

# Unicode category Cc ("control") is exactly U+0000-U+001F and U+007F-U+009F. We keep "\t"
# (U+0009) and "\n" (U+000A). Format characters (category Cf) such as ZERO WIDTH JOINER are
# NOT removed: emoji sequences like "👩‍💻" need them.
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# Spaces and tabs right before a line break or at the very end of the text.
_TRAILING_WHITESPACE = re.compile("[ \t]+(?=\n|\\Z)")


def clean_text(text: str, *, strip_trailing_whitespace: bool = False) -> str:
    """Normalise text so that equal-looking text is equal code point for code point.

    Steps, in this order (the order makes the function idempotent:
    ``clean_text(clean_text(t)) == clean_text(t)``):

    1. Line endings: "\\r\\n", "\\r", U+0085, U+2028 and U+2029 become "\\n".
    2. Control characters (Unicode category Cc) are removed, except "\\n" and "\\t".
    3. Unicode NFC normalisation: "e" + U+0301 becomes the single code point "é". It runs
       after step 2 because removing a control character can bring a letter and a
       combining mark together.
    4. Optionally (``strip_trailing_whitespace=True``), spaces and tabs at the end of each
       line and at the end of the text are removed.

    Args:
        text: any Python string.
        strip_trailing_whitespace: also remove spaces and tabs before each line break.

    Returns:
        The cleaned string.

    >>> clean_text("cafe\\u0301\\r\\nbar\\x00 \\n", strip_trailing_whitespace=True)
    'café\\nbar\\n'
    """
    if not isinstance(text, str):
        raise TypeError(f"clean_text expects a str, got {type(text).__name__}")
    text = _LINE_BREAKS.sub("\n", text)
    text = _CONTROL_CHARACTERS.sub("", text)
    text = unicodedata.normalize("NFC", text)
    if strip_trailing_whitespace:
        text = _TRAILING_WHITESPACE.sub("", text)
    return text


Items = TypeVar("Items")  # a str, a list, or a NumPy array: anything with len() and slicing


def train_val_split(items: Items, val_fraction: float = 0.1) -> tuple[Items, Items]:
    """Split a sequence into a training head and a validation tail.

    The cut is contiguous, ``n_train = int(len(items) * (1 - val_fraction))``, as in
    nanoGPT (``data[:int(n * 0.9)]``). A contiguous cut matters for language modelling:
    random windows drawn from a random mix of positions would put nearly the same text in
    both parts, and the validation loss would flatter the model.

    Args:
        items: a str, a list, or a 1-D NumPy array of token ids, shape (n,).
        val_fraction: share of items for validation, strictly between 0 and 1.

    Returns:
        ``(train, val)``, slices of ``items`` (views, for a NumPy array), shapes
        (n_train,) and (n - n_train,).

    Raises:
        ValueError: if ``val_fraction`` is not in (0, 1), or if either part would be empty.
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real):
        raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    if not 0.0 < val_fraction < 1.0:  # also rejects NaN, for which every comparison is False
        raise ValueError(f"val_fraction must be strictly between 0 and 1, got {val_fraction!r}")
    n_items = len(items)
    n_train = int(n_items * (1.0 - val_fraction))
    if n_train == 0 or n_train == n_items:
        raise ValueError(
            f"cannot split {n_items} items with val_fraction={val_fraction}: "
            f"the training part would have {n_train} and the validation part "
            f"{n_items - n_train}; both need at least one"
        )
    return items[:n_train], items[n_train:]
