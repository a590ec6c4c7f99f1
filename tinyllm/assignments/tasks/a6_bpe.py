# %% [markdown]
# # Assignment 6: byte-pair encoding
#
# *Chapter: tokenization.* A model reads integers, not text. GPT-2's answer is byte-level
# byte-pair encoding (BPE): write the text as UTF-8 bytes (ids 0–255), then repeatedly find
# the most frequent pair of neighbouring ids and give it a new id (256, 257, …), replacing
# every occurrence. Frequent words end up as single tokens, and any text still encodes,
# because any text is bytes. Plain Python, no NumPy needed.
#
# The *merges* are a dict `{(a, b): new_id}` in the order they were learned (Python dicts
# keep insertion order). Example: training on `"aaabdaaabac"` for 3 merges learns
# `(97, 97) → 256` ("aa"), then `(256, 97) → 257` ("aaa"), then `(257, 98) → 258` ("aaab").
#
# Write your code at `# YOUR CODE HERE`, run the file or the notebook, fix the first failing
# test. Tasks 6.3 and 6.4 use your functions from 6.1 and 6.2; the grader runs them with
# reference versions, so each mistake costs you once.

# %%
from tinyllm.assignments.checks import assert_equal

# %% [markdown]
# ## Task 6.1: count the pairs (1 point)
#
# `pair_counts(ids)` returns a dict mapping each pair of neighbours `(ids[i], ids[i + 1])`
# to how often it occurs, with the pairs in the order they *first* occur. (That order breaks
# ties in Task 6.3.) Overlapping pairs all count: `[1, 1, 1]` has the pair `(1, 1)` twice.

# %% solution
def pair_counts(ids):
    """{(a, b): number of times b follows a in ids}, in order of first occurrence."""
    ### BEGIN SOLUTION
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts
    ### END SOLUTION

# %% tests task="pair_counts" points=1 title="Pair counts" forbid="tinyllm.data.tokenizers"
assert_equal(pair_counts([1, 2, 3, 1, 2]), {(1, 2): 2, (2, 3): 1, (3, 1): 1}, "pair_counts([1, 2, 3, 1, 2])")
assert_equal(pair_counts([7]), {}, "pair_counts([7])")
### BEGIN HIDDEN TESTS
assert_equal(pair_counts([1, 1, 1]), {(1, 1): 2}, "pair_counts([1, 1, 1])")
assert_equal(list(pair_counts([5, 4, 3, 5, 4])), [(5, 4), (4, 3), (3, 5)], "the order of pair_counts' keys")
assert_equal(pair_counts([]), {}, "pair_counts([])")
### END HIDDEN TESTS

# %% [markdown]
# ## Task 6.2: merge a pair (2 points)
#
# `merge(ids, pair, new_id)` returns a new list where every occurrence of `pair` is replaced
# by `new_id`, scanning left to right and never reusing an id: merging `(1, 1)` in
# `[1, 1, 1]` gives `[new_id, 1]`. Do not change `ids` itself.

# %% solution
def merge(ids, pair, new_id):
    """ids with each left-to-right occurrence of ``pair`` replaced by ``new_id``."""
    ### BEGIN SOLUTION
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    ### END SOLUTION

# %% tests task="merge" points=2 title="Merge a pair" inplace="merge:ids" forbid="tinyllm.data.tokenizers"
assert_equal(merge([5, 6, 7, 5, 6], (5, 6), 300), [300, 7, 300], "merge([5, 6, 7, 5, 6], (5, 6), 300)")
assert_equal(merge([1, 1, 1], (1, 1), 256), [256, 1], "merge([1, 1, 1], (1, 1), 256)")
### BEGIN HIDDEN TESTS
ids = [1, 2, 1, 2, 2]
assert_equal(merge(ids, (2, 1), 9), [1, 9, 2, 2], "merge([1, 2, 1, 2, 2], (2, 1), 9)")
assert_equal(ids, [1, 2, 1, 2, 2], "the list given to merge (it must not change)")
assert_equal(merge([1, 1, 1, 1], (1, 1), 256), [256, 256], "merge([1, 1, 1, 1], (1, 1), 256)")
assert_equal(merge([3, 4], (4, 3), 9), [3, 4], "merge of a pair that is not there")
assert_equal(merge([], (1, 2), 9), [], "merge([], ...)")
### END HIDDEN TESTS

# %% [markdown]
# ## Task 6.3: train BPE (3 points)
#
# `train_bpe(text, vocab_size)` learns `vocab_size − 256` merges:
#
# 1. `ids = list(text.encode("utf-8"))`;
# 2. for new_id = 256, 257, …: count the pairs, pick the most frequent one (ties: the one
#    that occurs first, which is what `max(counts, key=counts.get)` returns), record
#    `merges[pair] = new_id`, and merge it in `ids`;
# 3. stop early if `ids` has fewer than 2 ids left (no pair to merge).
#
# Return the merges dict. Use your `pair_counts` and `merge`. Mind that the pairs are of
# *bytes*: "é" is the two bytes 195 169, and a merge may join "h" with the first of them.

# %% solution
def train_bpe(text, vocab_size):
    """Learn BPE merges {(a, b): new_id} from text, for a vocabulary of vocab_size ids."""
    ### BEGIN SOLUTION
    ids = list(text.encode("utf-8"))
    merges = {}
    for new_id in range(256, vocab_size):
        if len(ids) < 2:
            break
        counts = pair_counts(ids)
        pair = max(counts, key=counts.get)
        merges[pair] = new_id
        ids = merge(ids, pair, new_id)
    return merges
    ### END SOLUTION

# %% tests task="train_bpe" points=3 title="Train BPE" forbid="tinyllm.data.tokenizers"
### BEGIN HIDDEN TESTS
from tinyllm.assignments.references import merge, pair_counts  # Tasks 6.1 and 6.2 count once
### END HIDDEN TESTS
assert_equal(train_bpe("aaabdaaabac", 259), {(97, 97): 256, (256, 97): 257, (257, 98): 258},
             'train_bpe("aaabdaaabac", 259)')
assert_equal(train_bpe("abc", 256), {}, 'train_bpe("abc", 256) (no merges asked for)')
### BEGIN HIDDEN TESTS
assert_equal(train_bpe("ab", 300), {(97, 98): 256}, 'train_bpe("ab", 300) (runs out of pairs)')
assert_equal(train_bpe("héhé", 258), {(104, 195): 256, (256, 169): 257}, 'train_bpe("héhé", 258) (UTF-8 bytes)')
assert_equal(train_bpe("xyxz", 257), {(120, 121): 256}, 'train_bpe("xyxz", 257) (a tie: the first pair wins)')
merges = train_bpe("the cat sat on the mat with the hat " * 3, 270)
assert_equal(list(merges.values()), list(range(256, 270)), "the new ids of 14 merges")
assert_equal(list(merges)[:4], [(116, 104), (97, 116), (257, 32), (256, 101)], "the first 4 merges on a longer text")
### END HIDDEN TESTS

# %% [markdown]
# ## Task 6.4: encode (2 points)
#
# `encode(text, merges)` turns text into ids with learned merges. Start from the UTF-8
# bytes and apply merges **in the order they were learned**: while some neighbouring pair
# is in `merges`, merge the one with the *smallest* new id (the earliest learned), everywhere.
# Stop when no neighbouring pair is in `merges`.
#
# *Hint:* `min(pair_counts(ids), key=lambda p: merges.get(p, float("inf")))` finds the
# pair to merge; if it is not in `merges`, you are done.

# %% solution
def encode(text, merges):
    """Text → list of token ids, applying the merges in the order they were learned."""
    ### BEGIN SOLUTION
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pair = min(pair_counts(ids), key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = merge(ids, pair, merges[pair])
    return ids
    ### END SOLUTION

# %% tests task="encode" points=2 title="Encode" forbid="tinyllm.data.tokenizers"
### BEGIN HIDDEN TESTS
from tinyllm.assignments.references import merge, pair_counts  # Tasks 6.1 and 6.2 count once
### END HIDDEN TESTS
merges = {(97, 97): 256, (256, 97): 257, (257, 98): 258}
assert_equal(encode("aaabdaaabac", merges), [258, 100, 258, 97, 99], 'encode("aaabdaaabac")')
assert_equal(encode("xyz", merges), [120, 121, 122], 'encode("xyz") (no merge applies)')
### BEGIN HIDDEN TESTS
assert_equal(encode("", merges), [], 'encode("")')
assert_equal(encode("aaaa", merges), [256, 256], 'encode("aaaa") (the earliest merge first)')
order = {(98, 99): 256, (97, 98): 257}  # "bc" was learned first, so "abc" is a + bc
assert_equal(encode("abc", order), [97, 256], "encode with merges that compete for a byte")
assert_equal(encode("é", {(195, 169): 256}), [256], 'encode("é") (UTF-8)')
### END HIDDEN TESTS

# %% [markdown]
# ## Task 6.5: decode (2 points)
#
# `decode(ids, merges)` turns ids back into text. Build the vocabulary: `vocab[i] =
# bytes([i])` for the 256 bytes, then for each merge `(a, b) → new_id`, in order,
# `vocab[new_id] = vocab[a] + vocab[b]`. Join the bytes of the ids and decode them with
# `.decode("utf-8", errors="replace")`: a sequence cut inside a multi-byte character
# shows � instead of failing.

# %% solution
def decode(ids, merges):
    """List of token ids → text."""
    ### BEGIN SOLUTION
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in merges.items():
        vocab[new_id] = vocab[a] + vocab[b]
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
    ### END SOLUTION

# %% tests task="decode" points=2 title="Decode" forbid="tinyllm.data.tokenizers"
merges = {(97, 97): 256, (256, 97): 257, (257, 98): 258}
assert_equal(decode([258, 100, 258, 97, 99], merges), "aaabdaaabac", "decode([258, 100, 258, 97, 99])")
assert_equal(decode([104, 105], {}), "hi", "decode([104, 105]) without merges")
### BEGIN HIDDEN TESTS
assert_equal(decode([], merges), "", "decode([])")
assert_equal(decode([256, 195], {(195, 169): 256}), "é\ufffd", "decode of an id for é, then half a character")
assert_equal(decode([257], {(104, 105): 256, (256, 33): 257}), "hi!", "decode of a merge of a merge")
### END HIDDEN TESTS
