"""Tests for tinyllm.data.datasets: CausalLMDataset and Seq2SeqDataset."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyllm.data.datasets import IGNORE_INDEX, CausalLMDataset, Seq2SeqBatch, Seq2SeqDataset

# ---- CausalLMDataset -------------------------------------------------------------------------


def test_causal_batch_shapes_dtypes_and_shift():
    ids = np.arange(1000, dtype=np.int64)  # each id is its own position: windows are visible
    dataset = CausalLMDataset(ids, block_size=16)
    x, y = dataset.get_batch(8, np.random.default_rng(0))
    assert x.shape == y.shape == (8, 16)
    assert x.dtype == y.dtype == np.int64
    assert np.array_equal(y[:, :-1], x[:, 1:])  # y is x shifted left by one ...
    assert np.array_equal(y, x + 1)  # ... ending with the token after the window
    assert np.array_equal(x, x[:, :1] + np.arange(16))  # each row: consecutive positions


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 300), block_size=st.integers(1, 64), seed=st.integers(0, 2**32 - 1))
def test_causal_windows_stay_inside_the_data(n, block_size, seed):
    if n < block_size + 1:
        with pytest.raises(ValueError, match="too few"):
            CausalLMDataset(np.arange(n), block_size)
        return
    dataset = CausalLMDataset(np.arange(n), block_size)
    assert len(dataset) == n - block_size
    x, y = dataset.get_batch(32, np.random.default_rng(seed))
    assert x.min() >= 0 and y.max() <= n - 1


def test_causal_every_start_position_is_reachable():
    dataset = CausalLMDataset(np.arange(12), block_size=4)
    x, _ = dataset.get_batch(2000, np.random.default_rng(0))
    assert set(x[:, 0].tolist()) == set(range(12 - 4))  # starts 0..7; 8 would need id 12


def test_causal_shortest_possible_data_gives_the_one_window():
    dataset = CausalLMDataset(np.array([5, 6, 7]), block_size=2)
    x, y = dataset.get_batch(3, np.random.default_rng(0))
    assert x.tolist() == [[5, 6]] * 3 and y.tolist() == [[6, 7]] * 3


def test_causal_same_seed_same_batch_and_small_dtypes_widen():
    ids = np.arange(500, dtype=np.uint16)  # how nanoGPT stores token files
    dataset = CausalLMDataset(ids, block_size=8)
    x1, y1 = dataset.get_batch(4, np.random.default_rng(42))
    x2, y2 = dataset.get_batch(4, np.random.default_rng(42))
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert x1.dtype == np.int64


def test_causal_rejects_bad_inputs():
    with pytest.raises(ValueError, match="block_size \\+ 1 = 11 tokens"):
        CausalLMDataset(np.arange(10), block_size=10)
    with pytest.raises(ValueError, match="1-D"):
        CausalLMDataset(np.zeros((4, 4), dtype=np.int64), block_size=2)
    with pytest.raises(ValueError, match="integer dtype"):
        CausalLMDataset(np.zeros(10), block_size=2)
    with pytest.raises(ValueError, match="block_size"):
        CausalLMDataset(np.arange(10), block_size=0)
    dataset = CausalLMDataset(np.arange(10), block_size=2)
    with pytest.raises(TypeError, match="default_rng"):
        dataset.get_batch(2, rng=0)
    with pytest.raises(ValueError, match="batch_size"):
        dataset.get_batch(0, np.random.default_rng(0))


# ---- Seq2SeqDataset --------------------------------------------------------------------------

PAD, BOS, EOS = 0, 1, 2


def test_seq2seq_batch_layout_on_a_small_example():
    pairs = [([10, 11, 12], [20]), ([13], [21, 22, 23])]
    dataset = Seq2SeqDataset(pairs, pad_id=PAD, bos_id=BOS, eos_id=EOS)
    batch = dataset.make_batch([0, 1])
    assert isinstance(batch, Seq2SeqBatch)
    # (seq, batch): column b is example b.
    assert batch.src.T.tolist() == [[10, 11, 12], [13, PAD, PAD]]
    assert batch.tgt_in.T.tolist() == [[BOS, 20, PAD, PAD], [BOS, 21, 22, 23]]
    assert batch.tgt_out.T.tolist() == [[20, EOS, -100, -100], [21, 22, 23, EOS]]
    # (batch, seq), True where padded.
    assert batch.src_padding_mask.tolist() == [[False, False, False], [False, True, True]]
    assert batch.tgt_padding_mask.tolist() == [[False, False, True, True], [False] * 4]


def test_seq2seq_ignore_index_can_be_the_pad_id_as_in_the_pytorch_tutorial():
    dataset = Seq2SeqDataset([([5], [6]), ([5], [6, 6])], PAD, BOS, EOS, ignore_index=PAD)
    batch = dataset.make_batch([0, 1])
    assert batch.tgt_out.T.tolist() == [[6, EOS, PAD], [6, 6, EOS]]


def test_seq2seq_empty_target_is_just_bos_then_eos():
    batch = Seq2SeqDataset([([7], [])], PAD, BOS, EOS).make_batch([0])
    assert batch.tgt_in.tolist() == [[BOS]] and batch.tgt_out.tolist() == [[EOS]]


pair_lists = st.lists(
    st.tuples(
        st.lists(st.integers(3, 50), min_size=1, max_size=12),
        st.lists(st.integers(3, 50), max_size=12),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=100, deadline=None)
@given(pairs=pair_lists)
def test_seq2seq_batches_hold_every_example_exactly(pairs):
    dataset = Seq2SeqDataset(pairs, PAD, BOS, EOS)
    batch = dataset.make_batch(range(len(pairs)))
    n_examples = len(pairs)
    src_len = max(len(s) for s, _ in pairs)
    tgt_len = max(len(t) for _, t in pairs) + 1
    assert batch.src.shape == (src_len, n_examples)
    assert batch.tgt_in.shape == batch.tgt_out.shape == (tgt_len, n_examples)
    assert batch.src_padding_mask.shape == (n_examples, src_len)
    assert batch.tgt_padding_mask.shape == (n_examples, tgt_len)
    for array in (batch.src, batch.tgt_in, batch.tgt_out):
        assert array.dtype == np.int64 and array.flags.c_contiguous
    assert batch.src_padding_mask.dtype == batch.tgt_padding_mask.dtype == np.bool_
    for b, (source, target) in enumerate(pairs):
        n_src, n_tgt = len(source), len(target)
        assert batch.src[:n_src, b].tolist() == source
        assert (batch.src[n_src:, b] == PAD).all()
        assert batch.src_padding_mask[b].tolist() == [False] * n_src + [True] * (src_len - n_src)
        assert batch.tgt_in[: n_tgt + 1, b].tolist() == [BOS, *target]
        assert batch.tgt_out[: n_tgt + 1, b].tolist() == [*target, EOS]
        assert (batch.tgt_in[n_tgt + 1 :, b] == PAD).all()
        assert (batch.tgt_out[n_tgt + 1 :, b] == IGNORE_INDEX).all()
        assert batch.tgt_padding_mask[b].tolist() == (
            [False] * (n_tgt + 1) + [True] * (tgt_len - n_tgt - 1)
        )
        # Teacher forcing: the label at step t is the decoder input at step t + 1.
        assert batch.tgt_out[:n_tgt, b].tolist() == batch.tgt_in[1 : n_tgt + 1, b].tolist()


def test_seq2seq_ordered_batches_cover_all_pairs_once():
    pairs = [([i + 3], [i + 3] * (i % 4)) for i in range(10)]
    dataset = Seq2SeqDataset(pairs, PAD, BOS, EOS)
    batches = list(dataset.batches(4))
    assert [b.src.shape[1] for b in batches] == [4, 4, 2]
    assert np.concatenate([b.src[0] for b in batches]).tolist() == [i + 3 for i in range(10)]


def test_seq2seq_random_batches_are_reproducible():
    pairs = [([i + 3], [i + 3]) for i in range(50)]
    dataset = Seq2SeqDataset(pairs, PAD, BOS, EOS)
    first = dataset.get_batch(16, np.random.default_rng(7))
    second = dataset.get_batch(16, np.random.default_rng(7))
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert first.src.shape == (1, 16)


def test_seq2seq_rejects_bad_inputs():
    with pytest.raises(ValueError, match="empty source"):
        Seq2SeqDataset([([], [1])], PAD, BOS, EOS)
    with pytest.raises(ValueError, match="at least one pair"):
        Seq2SeqDataset([], PAD, BOS, EOS)
    with pytest.raises(ValueError, match="non-negative"):
        Seq2SeqDataset([([3], [-4])], PAD, BOS, EOS)
    with pytest.raises(ValueError, match="integers"):
        Seq2SeqDataset([([3.5], [4])], PAD, BOS, EOS)
    with pytest.raises(ValueError, match="pad_id"):
        Seq2SeqDataset([([3], [4])], None, BOS, EOS)
    dataset = Seq2SeqDataset([([3], [4])], PAD, BOS, EOS)
    with pytest.raises(TypeError, match="Generator"):
        dataset.get_batch(2, np.random.RandomState(0))
    with pytest.raises(ValueError, match="zero pairs"):
        dataset.make_batch([])


def test_seq2seq_accepts_numpy_id_arrays():
    dataset = Seq2SeqDataset([(np.array([3, 4]), np.array([5], dtype=np.int32))], PAD, BOS, EOS)
    assert dataset.make_batch([0]).src[:, 0].tolist() == [3, 4]
