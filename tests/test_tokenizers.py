"""Tests for tinyllm.data.tokenizers: CharTokenizer, BPETokenizer, the JSON files."""

import json
import re
import time
import warnings

import numpy as np
import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyllm.data.corpora import tinyshakespeare
from tinyllm.lab.tinytales import generate_corpus
from tinyllm.data.tokenizers import (
    GPT2_SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    _merge_pair,
    load_tokenizer,
    tokenizer_from_dict,
)

GPT2_SPLIT_REGEX = regex.compile(GPT2_SPLIT_PATTERN)

# Text a reader can recognise in a failure message: scripts, emoji with modifiers and joiners,
# combining marks, the largest code point, control characters.
TRICKY_STRINGS = [
    "",
    "hello world",
    "你好，世界！大语言模型",
    "👍🏽 👩\u200d💻 🇫🇷",
    "e\u0301 a\u0308 \u0915\u094d\u0937",  # combining marks; Devanagari conjunct
    "\U0010ffff\U00010000\x00\x7f\r\n\t",
    "  many   spaces\n\n\nand lines  ",
    "don't we'll I'M 3.14 _under_score_ ½²",
]

# Hypothesis text without surrogates (the default), including astral planes.
any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)


@pytest.fixture(scope="module")
def training_text():
    # A little English from the project's own story generator, plus some other scripts.
    return generate_corpus(seed=1, n_chars=30_000) + "\n" + "\n".join(TRICKY_STRINGS) * 20


@pytest.fixture(scope="module")
def trained_bpe(training_text):
    tokenizer = BPETokenizer(special_tokens=["<|endoftext|>"])
    tokenizer.train(training_text, vocab_size=256 + 200 + 1)
    return tokenizer


# ---- CharTokenizer ---------------------------------------------------------------------------


def test_char_vocabulary_is_sorted_unique_characters_like_nanogpt():
    text = "hello world"
    tokenizer = CharTokenizer.from_text(text)
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}  # nanoGPT's shakespeare_char/prepare.py
    assert tokenizer.chars == chars
    assert tokenizer.vocab_size == len(chars) == 8
    assert tokenizer.encode(text) == [stoi[c] for c in text]
    assert tokenizer.decode(tokenizer.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_char_round_trip_on_any_text(text):
    tokenizer = CharTokenizer.from_text(text)
    ids = tokenizer.encode(text)
    assert len(ids) == len(text)
    assert all(0 <= i < tokenizer.vocab_size for i in ids)
    assert tokenizer.decode(ids) == text


@pytest.mark.parametrize("text", TRICKY_STRINGS)
def test_char_round_trip_on_tricky_strings(text):
    tokenizer = CharTokenizer.from_text(text)
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_char_unknown_character_error_names_character_and_position():
    tokenizer = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError) as error:
        tokenizer.encode("ab\u00e9c\u4e16")
    message = str(error.value)
    assert "'é' (U+00E9) at position 2" in message
    assert "'世' (U+4E16) at position 4" in message
    assert "2 character(s)" in message


def test_char_unk_replaces_unknown_characters():
    tokenizer = CharTokenizer.from_text("abc", unk="\ufffd")
    assert "\ufffd" in tokenizer.chars and tokenizer.vocab_size == 4
    ids = tokenizer.encode("axb")
    assert ids == [tokenizer.encode("a")[0], tokenizer.unk_id, tokenizer.encode("b")[0]]
    assert tokenizer.decode(ids) == "a\ufffdb"
    assert CharTokenizer.from_text("abc").unk_id is None


def test_char_special_tokens_come_first_and_are_never_matched_in_text():
    tokenizer = CharTokenizer.from_text("<pad>ab", special_tokens=["<pad>", "<bos>", "<eos>"])
    assert tokenizer.special_tokens == {"<pad>": 0, "<bos>": 1, "<eos>": 2}
    assert tokenizer.vocab_size == 3 + len(set("<pad>ab"))
    ids = tokenizer.encode("<pad>")
    assert len(ids) == 5 and min(ids) >= 3  # five characters, not the special token
    assert tokenizer.decode([1, *tokenizer.encode("ab"), 2]) == "<bos>ab<eos>"
    assert tokenizer.decode([1, *tokenizer.encode("ab"), 2, 0], skip_special_tokens=True) == "ab"


@pytest.mark.parametrize(
    "arguments, match",
    [
        (dict(chars=["a", "bc"]), "one character"),
        (dict(chars=["a", "a"]), "repeated"),
        (dict(chars=["a"], unk="??"), "unk"),
        (dict(chars=["a"], special_tokens=["a"]), "also vocabulary characters"),
        (dict(chars=["a"], special_tokens=["<x>", "<x>"]), "repeated"),
        (dict(chars=["a"], special_tokens=[""]), "non-empty"),
    ],
)
def test_char_constructor_rejects_bad_vocabularies(arguments, match):
    with pytest.raises(ValueError, match=match):
        CharTokenizer(**arguments)


def test_char_decode_rejects_ids_outside_the_vocabulary():
    tokenizer = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match="token id 3 at position 1"):
        tokenizer.decode([0, 3])
    with pytest.raises(ValueError, match="token id -1 at position 0"):
        tokenizer.decode([-1])  # would silently mean "the last one" as a list index


def test_char_decode_accepts_numpy_arrays():
    tokenizer = CharTokenizer.from_text("abc")
    assert tokenizer.decode(np.array([2, 1, 0], dtype=np.int64)) == "cba"


def test_char_save_load_round_trip(tmp_path):
    text = "héllo 世界 👍🏽 \ud800"  # a lone surrogate too: ASCII JSON keeps it
    tokenizer = CharTokenizer.from_text(text, unk="?", special_tokens=["<pad>"])
    path = tmp_path / "char.json"
    tokenizer.save(path)
    assert json.loads(path.read_text())["type"] == "char"
    for loaded in (CharTokenizer.load(path), load_tokenizer(path)):
        assert isinstance(loaded, CharTokenizer)
        assert loaded.chars == tokenizer.chars
        assert loaded.unk == "?" and loaded.special_tokens == {"<pad>": 0}
        assert loaded.encode(text) == tokenizer.encode(text)
        assert loaded.decode(loaded.encode(text)) == text
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_char_repr():
    assert repr(CharTokenizer.from_text("ab")) == (
        "CharTokenizer(vocab_size=2, unk=None, special_tokens=[])"
    )


# ---- BPETokenizer: splitting -----------------------------------------------------------------


def test_split_is_gpt2s():
    tokenizer = BPETokenizer()
    chunks = tokenizer._split_into_chunks("Hello world's 123 !!!  ok\n\nyes_no ½²")
    # As in GPT-2, a run of whitespace leaves its last character to the next word when that
    # is a space (" ok"), a newline never joins a word ("\n", "\n", "yes"), "_" is
    # punctuation and "½²" are numbers.
    assert chunks == [
        "Hello", " world", "'s", " 123", " !!!", " ", " ok", "\n", "\n", "yes", "_", "no", " ½²"
    ]


def test_split_does_not_count_information_separators_as_space():
    # Python's \s matches U+001C..U+001F, GPT-2's (Unicode White_Space) does not: the
    # separator joins the apostrophe as punctuation, and "s" is left a word.
    assert BPETokenizer()._split_into_chunks("\x1e's") == ["\x1e'", "s"]
    assert BPETokenizer()._split_into_chunks("a\x1f\x1c b") == ["a", "\x1f\x1c", " b"]


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_split_covers_the_whole_text(text):
    assert "".join(BPETokenizer()._split_into_chunks(text)) == text


def test_pre_tokenizer_none_keeps_the_text_whole_and_merges_across_words():
    tokenizer = BPETokenizer(pre_tokenizer="none")
    assert tokenizer._split_into_chunks("ab, CD ef!") == ["ab, CD ef!"]
    assert tokenizer._split_into_chunks("") == []
    tokenizer.train("the cat the cat the cat", vocab_size=264)
    assert any(b" " in tokenizer.token_bytes(i)[1:-1] for i in range(256, 264))  # " the c"...
    assert tokenizer.decode(tokenizer.encode("the cat")) == "the cat"
    assert tokenizer_from_dict(tokenizer.to_dict()).encode("a cat") == tokenizer.encode("a cat")


@pytest.mark.parametrize("name", ["GPT2", "[a-z]+", "(a+)+$", None, 3])
def test_pre_tokenizer_is_a_name_from_the_fixed_set(name):
    with pytest.raises(ValueError, match=r"pre_tokenizer must be one of \['gpt2', 'none'\]"):
        BPETokenizer(pre_tokenizer=name)


# ---- BPETokenizer: training ------------------------------------------------------------------


def test_bpe_learns_the_textbook_example():
    # Wikipedia's "aaabdaaabac": first "aa" (4 times, overlaps counted). Then "aa"+"a" and
    # "a"+"b" both occur twice; the tie goes to the smaller pair (97, 98) = "ab". Then
    # "aa"+"ab" (twice).
    tokenizer = BPETokenizer()
    tokenizer.train("aaabdaaabac", vocab_size=259)
    assert list(tokenizer.merges) == [(97, 97), (97, 98), (256, 257)]
    assert tokenizer.token_bytes(258) == b"aaab"
    assert tokenizer.encode("aaabdaaabac") == [258, 100, 258, 97, 99]


def naive_bpe_merges(text, n_merges):
    """The textbook algorithm, slow and obvious: recount every pair after every merge."""
    chunks = GPT2_SPLIT_REGEX.findall(text)
    words = [list(chunk.encode("utf-8")) for chunk in chunks]
    merges = []
    for new_id in range(256, 256 + n_merges):
        counts = {}
        for ids in words:
            for pair in zip(ids, ids[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        best = max(counts, key=lambda pair: (counts[pair], -pair[0], -pair[1]))
        merges.append(best)
        for index, ids in enumerate(words):
            merged, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and (ids[i], ids[i + 1]) == best:
                    merged.append(new_id)
                    i += 2
                else:
                    merged.append(ids[i])
                    i += 1
            words[index] = merged
    return merges


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet="ab c\nxé", max_size=300), n_merges=st.integers(1, 30))
def test_bpe_incremental_training_matches_the_naive_algorithm(text, n_merges):
    # A small alphabet makes many repeats and many ties between equally frequent pairs.
    tokenizer = BPETokenizer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny texts run out of pairs: fine here
        tokenizer.train(text, vocab_size=256 + n_merges)
    assert list(tokenizer.merges) == naive_bpe_merges(text, n_merges)
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_bpe_training_is_deterministic(training_text):
    first, second = BPETokenizer(), BPETokenizer()
    first.train(training_text, 400)
    second.train(training_text, 400)
    assert first.merges == second.merges
    assert list(first.merges.values()) == list(range(256, 400))


def test_bpe_vocab_size_counts_bytes_merges_and_specials(trained_bpe):
    assert trained_bpe.vocab_size == 256 + 200 + 1
    assert len(trained_bpe.merges) == 200
    assert trained_bpe.special_tokens == {"<|endoftext|>": 456}
    assert BPETokenizer().vocab_size == 256


def test_bpe_merges_compress_text(training_text, trained_bpe):
    held_out = generate_corpus(seed=2, n_chars=5_000)
    n_tokens = len(trained_bpe.encode(held_out))
    n_bytes = len(held_out.encode("utf-8"))
    assert n_tokens < 0.6 * n_bytes  # 200 merges of English: roughly 2+ bytes per token
    # Frequent words become single tokens.
    assert len(trained_bpe.encode(" said")) == 1


def test_bpe_merges_never_cross_chunk_boundaries():
    tokenizer = BPETokenizer()
    tokenizer.train("x y " * 200 + "hello, world. " * 100, vocab_size=266)
    for token_id in tokenizer.merges.values():
        token = tokenizer.token_bytes(token_id)
        # A chunk is a word with at most one leading space: no letter before a space,
        # no letter next to punctuation.
        assert not re.search(rb"[a-z] |[a-z][,.]|[,.][a-z]", token), token


def test_bpe_training_stops_early_on_tiny_text():
    tokenizer = BPETokenizer()
    with pytest.warns(UserWarning, match="stopped after 2 of 10 merges"):
        tokenizer.train("abc", vocab_size=266)  # "abc" -> "ab"+"c" -> "abc": 2 merges
    assert tokenizer.vocab_size == 258


def test_bpe_training_rejects_too_small_vocabulary():
    with pytest.raises(ValueError, match="at least 256 bytes"):
        BPETokenizer(special_tokens=["<s>"]).train("text", vocab_size=256)


def test_bpe_verbose_prints_each_merge(capsys):
    BPETokenizer().train("aaabdaaabac", vocab_size=258, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "merge 1/2: (97, 97) -> 256 b'aa' (4 occurrences)",
        "merge 2/2: (97, 98) -> 257 b'ab' (2 occurrences)",
    ]


def test_bpe_retraining_replaces_merges():
    tokenizer = BPETokenizer()
    tokenizer.train("aaaa bbbb", vocab_size=260)
    tokenizer.train("cccc", vocab_size=257)
    assert list(tokenizer.merges) == [(99, 99)]
    assert tokenizer.encode("aaaa") == [97] * 4


# ---- BPETokenizer: encoding and decoding -----------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(text=any_text)
def test_bpe_round_trip_on_any_text(trained_bpe, text):
    ids = trained_bpe.encode(text)
    assert all(0 <= i < trained_bpe.vocab_size for i in ids)
    assert trained_bpe.decode(ids) == text


@pytest.mark.parametrize("text", TRICKY_STRINGS)
def test_bpe_round_trip_on_tricky_strings(trained_bpe, text):
    assert trained_bpe.decode(trained_bpe.encode(text)) == text


def test_bpe_untrained_is_plain_utf8_bytes():
    text = "é世👍"
    assert BPETokenizer().encode(text) == list(text.encode("utf-8"))


def test_bpe_special_tokens_encode_to_one_id_unless_disallowed(trained_bpe):
    end = trained_bpe.special_tokens["<|endoftext|>"]
    ids = trained_bpe.encode("one story.<|endoftext|>Another")
    assert ids.count(end) == 1
    assert trained_bpe.decode(ids) == "one story.<|endoftext|>Another"
    plain = trained_bpe.encode("<|endoftext|>", allow_special=False)
    assert end not in plain and trained_bpe.decode(plain) == "<|endoftext|>"


def test_bpe_training_never_merges_into_special_tokens():
    tokenizer = BPETokenizer(special_tokens=["<|endoftext|>"])
    tokenizer.train("ab<|endoftext|>" * 50, vocab_size=256 + 1 + 1)
    assert list(tokenizer.merges) == [(97, 98)]  # "ab"; nothing joins "b" and "<"
    for token_id in tokenizer.merges.values():
        assert b"<" not in tokenizer.token_bytes(token_id)


def test_bpe_longer_special_token_wins():
    tokenizer = BPETokenizer(special_tokens=["<a>", "<a><b>"])
    assert tokenizer.encode("<a><b><a>") == [tokenizer.special_tokens["<a><b>"],
                                            tokenizer.special_tokens["<a>"]]


def test_bpe_decode_replaces_broken_utf8_and_rejects_bad_ids(trained_bpe):
    euro = list("€".encode("utf-8"))  # three bytes
    assert trained_bpe.decode(euro[:2]) == "\ufffd"
    with pytest.raises(ValueError, match=f"token id {trained_bpe.vocab_size} at position 0"):
        trained_bpe.decode([trained_bpe.vocab_size])
    with pytest.raises(ValueError, match="token id -1"):
        trained_bpe.decode([-1])
    with pytest.raises(ValueError, match="integers"):
        trained_bpe.decode(["a"])


def test_bpe_encode_rejects_lone_surrogate_with_its_position(trained_bpe):
    with pytest.raises(ValueError, match=r"lone surrogate '\\ud800' \(U\+D800\) at position 3"):
        trained_bpe.encode("abc\ud800def")


def test_bpe_repr(trained_bpe):
    assert repr(trained_bpe) == (
        "BPETokenizer(vocab_size=457, merges=200, special_tokens=['<|endoftext|>'])"
    )


def test_bpe_save_load_round_trip(tmp_path, trained_bpe, training_text):
    path = tmp_path / "bpe.json"
    trained_bpe.save(path)
    data = json.loads(path.read_text())
    assert data["type"] == "bpe" and data["pre_tokenizer"] == "gpt2" and "pattern" not in data
    assert len(data["merges"]) == 200
    sample = training_text[:3000] + "<|endoftext|>"
    for loaded in (BPETokenizer.load(path), load_tokenizer(path)):
        assert isinstance(loaded, BPETokenizer)
        assert loaded.merges == trained_bpe.merges
        assert loaded.special_tokens == trained_bpe.special_tokens
        assert loaded.encode(sample) == trained_bpe.encode(sample)


def test_bpe_is_fast_enough():
    # The goal: 512 tokens on ~1 MB well under a minute; encoding 100 KB in seconds.
    # Measured on Tiny Shakespeare: about 1 s and 0.05 s on one core. The bounds are loose
    # on purpose. Tiny Shakespeare has ~25,000 distinct chunks, enough to catch a training
    # loop that rescans all of them at every merge; the generated stories have far fewer.
    try:
        text = tinyshakespeare(download=False)
    except FileNotFoundError:
        text = generate_corpus(seed=3, n_chars=1_000_000)
    tokenizer = BPETokenizer()
    start = time.perf_counter()
    tokenizer.train(text, vocab_size=512)
    assert time.perf_counter() - start < 30
    start = time.perf_counter()
    ids = tokenizer.encode(text[:100_000])
    assert time.perf_counter() - start < 5
    assert tokenizer.decode(ids) == text[:100_000]


# ---- malformed files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"version": 1}', "missing the \"type\" field"),
        ('{"type": "wordpiece", "version": 1}', "unknown tokenizer type 'wordpiece'"),
        ('{"type": ["char"], "version": 1}', "unknown tokenizer type"),
        ('{"type": "char", "version": 99, "chars": []}', "unsupported tokenizer file version"),
        ('{"type": "char", "version": 1, "special_tokens": []}', "missing the 'chars' field"),
        ('{"type": "char", "version": 1, "chars": "abc", "special_tokens": []}',
         "field 'chars' should be list"),
        ('{"type": "char", "version": 1, "chars": ["ab"], "special_tokens": []}',
         "one character"),
        ('{"type": "bpe", "version": 2, "pre_tokenizer": "gpt2", "special_tokens": []}',
         "missing the 'merges' field"),
        ('{"type": "bpe", "version": 2, "pre_tokenizer": "gpt2", "merges": [[97, 300]], '
         '"special_tokens": []}', "merge 0 should be a pair of ids below 256"),
        ('{"type": "bpe", "version": 2, "pre_tokenizer": "gpt2", "merges": [[97, 98], [97, 98]], '
         '"special_tokens": []}', "repeated"),
        ('{"type": "bpe", "version": 2, "pre_tokenizer": "(", "merges": [], "special_tokens": []}',
         "pre_tokenizer must be one of ['gpt2', 'none'], got '('"),
        ('{"type": "bpe", "version": 2, "pattern": "x", "merges": [], "special_tokens": []}',
         "missing the 'pre_tokenizer' field"),
        # a version-1 file with a pattern of its own: never compiled, never run
        ('{"type": "bpe", "version": 1, "pattern": "(a+)+$", "merges": [], "special_tokens": []}',
         "carries a regular expression of its own ('(a+)+$')"),
        ('{"type": "bpe", "version": 2, "pre_tokenizer": "gpt2", "merges": [], "special_tokens": [], '
         '"byte_ids": [0, 1]}', "byte_ids should be the ids 0..255 in some order"),
        ('{"type": "bpe", "version": 2, "pre_tokenizer": "gpt2", "merges": [], '
         '"special_tokens": ["\\ud800"]}', "lone surrogate"),
        ('{"type": "char", "version": 1, "chars": ["' + "x" * 10_000 + '"], "special_tokens": []}',
         "one character, got 'xxxx"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"type": "char", "version": 1, "chars": [], "special_tokens": [], "n": 1' + "0" * 5000 + "}",
         "invalid JSON"),
    ],
    ids=lambda value: value[:40],
)
def test_malformed_files_give_clear_errors_naming_the_file(tmp_path, content, match):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(match)) as error:
        load_tokenizer(path)
    assert str(path) in str(error.value) and len(str(error.value)) < 400  # quotes, never whole


def test_version_1_files_with_the_old_pattern_load_with_gpt2s_split(tmp_path, trained_bpe):
    data = trained_bpe.to_dict()
    del data["pre_tokenizer"]
    data.update(version=1, pattern=r"'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(data))
    loaded = load_tokenizer(path)
    assert loaded.pre_tokenizer == "gpt2" and loaded.merges == trained_bpe.merges


def test_merges_that_keep_doubling_a_token_are_refused_before_building_it(tmp_path):
    # 60 merges: "a", "aa", "aaaa", ... would need 2**60 bytes for the last token
    merges = [[97, 97]] + [[256 + i, 256 + i] for i in range(59)]
    path = tmp_path / "bomb.json"
    path.write_text(json.dumps({"type": "bpe", "version": 2, "pre_tokenizer": "gpt2",
                                "merges": merges, "special_tokens": []}))
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: .*merges build tokens of .* bytes"):
        load_tokenizer(path)


class _CountingDict(dict):
    """A merge table that counts its lookups (``in``, ``[]``, ``get``)."""

    lookups = 0

    def __contains__(self, key):
        self.lookups += 1
        return super().__contains__(key)

    def __getitem__(self, key):
        self.lookups += 1
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.lookups += 1
        return super().get(key, default)


def test_a_crafted_merge_chain_encodes_in_a_number_of_lookups_linear_in_the_chunk(tmp_path):
    # x+a -> 256, 256+a -> 257, ...: one merge per character of "xaaa...a", each found
    # only after the previous one. Rescanning the chunk after every merge made 4,000
    # characters cost ~8 million lookups (20 s for 16,000); the heap needs a few per id.
    n = 4000
    merges = [[ord("x"), ord("a")]] + [[256 + i, ord("a")] for i in range(n - 1)]
    path = tmp_path / "chain.json"
    path.write_text(json.dumps({"type": "bpe", "version": 2, "pre_tokenizer": "gpt2",
                                "merges": merges, "special_tokens": []}))
    tokenizer = load_tokenizer(path)
    tokenizer.merges = _CountingDict(tokenizer.merges)
    assert tokenizer.encode("x" + "a" * (n - 1)) == [256 + n - 2]
    assert tokenizer.encode("x" + "a" * n) == [256 + n - 1]
    assert tokenizer.merges.lookups < 20 * n


def _reference_encode(tokenizer, text):
    """Encoding as first written: find the earliest-learned pair present, merge all of its
    occurrences (`_merge_pair`), rescan; the heap in `_apply_merges` must give the same ids."""
    ids = []
    for chunk in tokenizer._split_into_chunks(text):
        chunk_ids = tokenizer._ids_of_bytes(chunk)
        while len(chunk_ids) >= 2:
            pair = min(zip(chunk_ids, chunk_ids[1:]), key=lambda p: tokenizer.merges.get(p, float("inf")))
            if pair not in tokenizer.merges:
                break
            chunk_ids = _merge_pair(chunk_ids, pair, tokenizer.merges[pair])
        ids += chunk_ids
    return ids


@settings(max_examples=200, deadline=None)
@given(text=any_text)
def test_bpe_encoding_equals_the_rescanning_reference(trained_bpe, text):
    assert trained_bpe.encode(text, allow_special=False) == _reference_encode(trained_bpe, text)


@settings(max_examples=100, deadline=None)
@given(training=st.text(alphabet="aab b", min_size=2, max_size=200), n_merges=st.integers(1, 20),
       text=st.text(alphabet="aab b", max_size=100))
def test_bpe_encoding_equals_the_reference_on_repeated_letters(training, n_merges, text):
    # runs of one letter are where overlapping pairs ("aaa": a+a twice) must merge left to right
    tokenizer = BPETokenizer(pre_tokenizer="none")
    tokenizer.train(training, 256 + n_merges)
    assert tokenizer.encode(text) == _reference_encode(tokenizer, text)


def test_many_special_tokens_load_in_linear_time(tmp_path):
    specials = [f"<s{i}>" for i in range(100_000)]  # a quadratic duplicate check: minutes
    path = tmp_path / "many.json"
    path.write_text(json.dumps({"type": "char", "version": 1, "chars": list("ab"), "special_tokens": specials}))
    start = time.perf_counter()
    assert load_tokenizer(path).vocab_size == 100_002
    assert time.perf_counter() - start < 10


def test_non_utf8_file_gives_clear_error(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not UTF-8") as error:
        load_tokenizer(path)
    assert str(path) in str(error.value)


def test_loading_the_wrong_class_says_what_the_file_holds(tmp_path):
    path = tmp_path / "char.json"
    CharTokenizer.from_text("abc").save(path)
    with pytest.raises(ValueError, match="holds a 'char' tokenizer, not a 'bpe' one"):
        BPETokenizer.load(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path / "nope.json")


def test_base_class_load_returns_the_right_class(tmp_path, trained_bpe):
    path = tmp_path / "bpe.json"
    trained_bpe.save(path)
    assert isinstance(Tokenizer.load(path), BPETokenizer)


def test_bpe_decode_can_skip_special_tokens(trained_bpe):
    ids = trained_bpe.encode("a<|endoftext|>b")
    assert trained_bpe.decode(ids, skip_special_tokens=True) == "ab"


def test_decode_refuses_non_integer_ids(trained_bpe):
    with pytest.raises(ValueError, match="integers"):
        trained_bpe.decode([65.0])  # int() would have truncated it quietly
    with pytest.raises(ValueError, match="integers"):
        CharTokenizer.from_text("ab").decode(np.array([0.0, 1.0]))


# ---- GPT-2's file format (the real files: test_gpt2_tokenizer.py) ----------------------------


def test_a_trained_tokenizer_saved_as_gpt2_files_reads_the_same_in_hugging_face(tmp_path, trained_bpe,
                                                                                 training_text):
    transformers = pytest.importorskip("transformers")
    trained_bpe.save_gpt2(tmp_path / "vocab.json", tmp_path / "merges.txt")
    theirs = transformers.GPT2Tokenizer.from_pretrained(str(tmp_path))
    again = BPETokenizer.from_gpt2(tmp_path / "vocab.json", tmp_path / "merges.txt")
    assert again.merges == trained_bpe.merges and again.special_tokens == trained_bpe.special_tokens
    for text in [training_text[:2000], *TRICKY_STRINGS, "a\x1e's<|endoftext|>b"]:
        assert theirs.encode(text) == trained_bpe.encode(text) == again.encode(text)


def _gpt2_files(tmp_path, tokenizer):
    encoder, merges = tmp_path / "encoder.json", tmp_path / "vocab.bpe"
    tokenizer.save_gpt2(encoder, merges)
    return encoder, merges


@pytest.mark.parametrize("edit, match", [
    (lambda e, m: (e.write_text("[1, 2]"), None), "encoder.json: not a GPT-2 encoder.json: expected a JSON object"),
    (lambda e, m: (e.write_text("[" * 50_000), None), "nested too deeply"),
    (lambda e, m: (e.write_bytes(b"\xff\xfe"), None), "encoder.json: not a GPT-2 encoder.json: not UTF-8"),
    (lambda e, m: (e.write_text(json.dumps({**json.loads(e.read_text()), "!": 34})), None),
     "tokens '!' and '\"' both have the id 34"),
    (lambda e, m: (e.write_text(json.dumps({**json.loads(e.read_text()), "!": 9999})), None),
     "token '!' has the id 9999; the ids must be the integers 0.."),
    (lambda e, m: (e.write_text(json.dumps({**json.loads(e.read_text()), "!": "0"})), None), "has the id '0'"),
    (lambda e, m: (e.write_text(json.dumps({("ab" if k == "!" else k): v for k, v in
                                            json.loads(e.read_text()).items()})), None),
     "ids 0..255 must be the 256 one-byte tokens of GPT-2's byte alphabet; id 33 is 'ab'"),
    (lambda e, m: (m.write_text("#version: 0.2\na b c\n"), None), "vocab.bpe, line 2: expected two tokens"),
    (lambda e, m: (m.write_text("#version: 0.2\nzz q\n"), None), "vocab.bpe, line 2: 'zz' is not a token"),
    (lambda e, m: (m.write_bytes(b"\xff"), None), "vocab.bpe: not a GPT-2 vocab.bpe: not UTF-8"),
    (lambda e, m: (m.write_text("\n".join(m.read_text().splitlines()[:1] + m.read_text().splitlines()[2:])),
                   None), "vocab.bpe, line 2: merge 0 must make the token with id 256"),
])
def test_from_gpt2_names_the_file_and_line_that_does_not_fit(tmp_path, trained_bpe, edit, match):
    encoder, merges = _gpt2_files(tmp_path, trained_bpe)
    edit(encoder, merges)
    with pytest.raises(ValueError, match=re.escape(match)):
        BPETokenizer.from_gpt2(encoder, merges)


def test_save_gpt2_refuses_what_the_files_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="'gpt2' pre-tokenizer"):
        BPETokenizer(pre_tokenizer="none").save_gpt2(tmp_path / "e.json", tmp_path / "m.bpe")
    twice = BPETokenizer()
    twice._set_merges([(97, 98), (256, 99), (98, 99), (97, 258)])  # "abc" = "ab"+"c" = "a"+"bc"
    with pytest.raises(ValueError, match=r"ids 257 and 259 both stand for b'abc'"):
        twice.save_gpt2(tmp_path / "e.json", tmp_path / "m.bpe")
    assert not list(tmp_path.iterdir())  # nothing half-written
