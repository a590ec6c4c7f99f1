"""Tests for tinyllm.data.cleaning: clean_text and train_val_split."""

import math
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyllm.data.cleaning import clean_text, train_val_split


# ---- clean_text ------------------------------------------------------------------------------


def test_nfc_joins_letter_and_combining_mark():
    decomposed = "cafe\u0301"  # "e" + COMBINING ACUTE ACCENT
    assert clean_text(decomposed) == "caf\u00e9"
    assert len(clean_text(decomposed)) == 4


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("a\r\nb", "a\nb"),  # Windows: one line break, not two
        ("a\rb", "a\nb"),  # old Mac
        ("a\r\n\r\nb", "a\n\nb"),
        ("a\r\r\nb", "a\n\nb"),
        ("a\u2028b\u2029c\u0085d", "a\nb\nc\nd"),  # Unicode line/paragraph separators, NEL
    ],
)
def test_line_endings_become_newline(raw, expected):
    assert clean_text(raw) == expected


def test_control_characters_removed_but_newline_and_tab_kept():
    assert clean_text("a\x00b\x07c\x1bd\x7fe\x9ff\tg\nh") == "abcdef\tg\nh"


def test_format_characters_kept_so_emoji_sequences_survive():
    woman_technologist = "\U0001f469\u200d\U0001f4bb"  # joined by ZERO WIDTH JOINER
    assert clean_text(woman_technologist) == woman_technologist
    assert clean_text("你好, 世界 👍🏽") == "你好, 世界 👍🏽"


def test_trailing_whitespace_is_kept_by_default_and_stripped_on_request():
    text = "one  \ntwo\t\n  three  "
    assert clean_text(text) == text
    assert clean_text(text, strip_trailing_whitespace=True) == "one\ntwo\n  three"


def test_clean_text_rejects_bytes():
    with pytest.raises(TypeError, match="str"):
        clean_text(b"bytes")


@settings(max_examples=200, deadline=None)
@given(text=st.text(), strip=st.booleans())
def test_clean_text_output_is_clean_and_idempotent(text, strip):
    cleaned = clean_text(text, strip_trailing_whitespace=strip)
    assert clean_text(cleaned, strip_trailing_whitespace=strip) == cleaned
    assert unicodedata.is_normalized("NFC", cleaned)
    assert "\r" not in cleaned
    assert all(c in "\n\t" or unicodedata.category(c) != "Cc" for c in cleaned)
    if strip:
        assert all(not line.endswith((" ", "\t")) for line in cleaned.split("\n"))


# ---- train_val_split -------------------------------------------------------------------------


def test_split_is_a_contiguous_tail_cut_like_nanogpt():
    data = np.arange(1000)
    train, val = train_val_split(data)
    assert np.array_equal(train, data[: int(1000 * 0.9)])
    assert np.array_equal(val, data[900:])
    assert np.shares_memory(train, data)  # slices, not copies


def test_split_works_on_text_and_lists():
    train, val = train_val_split("abcdefghij", val_fraction=0.2)
    assert (train, val) == ("abcdefgh", "ij")
    train, val = train_val_split(list(range(10)), val_fraction=0.5)
    assert train + val == list(range(10)) and len(val) == 5


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 10_000), fraction=st.floats(0.01, 0.99))
def test_split_parts_cover_the_data(n, fraction):
    data = np.arange(n)
    try:
        train, val = train_val_split(data, fraction)
    except ValueError:
        # Only when one side would be empty.
        assert int(n * (1 - fraction)) in (0, n)
        return
    assert len(train) + len(val) == n
    assert np.array_equal(np.concatenate([train, val]), data)
    assert len(train) == int(n * (1 - fraction))


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.1, 1.5, math.nan, math.inf])
def test_split_rejects_fraction_outside_open_interval(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(np.arange(100), fraction)


@pytest.mark.parametrize("fraction", ["0.1", None, True])
def test_split_rejects_non_numbers(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(np.arange(100), fraction)


def test_split_rejects_data_too_short_for_two_parts():
    with pytest.raises(ValueError, match="both need at least one"):
        train_val_split("", 0.1)
    with pytest.raises(ValueError, match="both need at least one"):
        train_val_split("a", 0.1)  # int(1 * 0.9) = 0 training items
    with pytest.raises(ValueError, match="both need at least one"):
        train_val_split("ab", 0.6)
