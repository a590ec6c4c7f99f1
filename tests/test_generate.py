"""Sampling rules, KV-cache generation equal to uncached, greedy and beam decoding."""
import numpy as np
import pytest

import tinyllm as tl
from tinyllm.generate import beam_search, generate, greedy_decode, sample_next_token
from tinyllm.models import GPT, GPTConfig, TransformerModel

LOGITS = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))


def frequencies(n=20_000, **kwargs):
    rng = np.random.default_rng(0)
    picks = [sample_next_token(np.repeat(LOGITS, 100, axis=0), rng=rng, **kwargs) for _ in range(n // 100)]
    return np.bincount(np.concatenate(picks), minlength=4) / n


def test_temperature_one_samples_the_softmax():
    np.testing.assert_allclose(frequencies(), [0.5, 0.3, 0.15, 0.05], atol=0.015)


def test_temperature_zero_and_top_k_one_are_greedy():
    assert sample_next_token(LOGITS, temperature=0)[0] == 0
    assert (frequencies(top_k=1) == [1, 0, 0, 0]).all()


def test_top_k_and_top_p_restrict_the_candidates():
    f = frequencies(top_k=2)
    assert f[2] == f[3] == 0
    np.testing.assert_allclose(f[:2], [0.5 / 0.8, 0.3 / 0.8], atol=0.015)
    f = frequencies(top_p=0.7)  # 0.5 + 0.3 reaches 0.7: two tokens stay
    assert f[2] == f[3] == 0 and f[1] > 0.3
    f = frequencies(top_p=0.4)
    assert (f == [1, 0, 0, 0]).all()


def test_low_temperature_sharpens():
    assert frequencies(temperature=0.3)[0] > 0.8


@pytest.mark.parametrize("bad", [dict(temperature=-1), dict(top_k=0), dict(top_p=0.0), dict(top_p=1.5)])
def test_bad_sampling_options_are_refused(bad):
    with pytest.raises(ValueError):
        sample_next_token(LOGITS, **bad)


@pytest.fixture(scope="module")
def gpt():
    tl.manual_seed(0)
    return GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16))


@pytest.mark.parametrize("options", [dict(temperature=0), dict(temperature=1.0, top_k=5, top_p=0.9)])
def test_kv_cache_gives_the_same_tokens(gpt, options):
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    a = generate(gpt, prompt, 20, rng=np.random.default_rng(1), **options)  # past block_size 8
    b = generate(gpt, prompt, 20, use_cache=False, rng=np.random.default_rng(1), **options)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 23)


def test_stop_tokens_end_generation(gpt):
    out = generate(gpt, np.array([[1, 2]]), 50, temperature=0)
    first = int(out[0, 2])
    stopped = generate(gpt, np.array([[1, 2]]), 50, temperature=0, stop_tokens=[first])
    assert stopped.shape == (1, 3) and stopped[0, -1] == first


def test_generate_rejects_out_of_vocabulary_ids(gpt):
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 11\)"):
        generate(gpt, np.array([[1, 11]]), 3)


def test_beam_of_one_equals_greedy():
    tl.manual_seed(1)
    model = TransformerModel(ntoken=9, ninp=16, nhead=2, nhid=32, nlayers=1, dropout=0.0)
    src = np.array([[3, 4, 5, 6]]).T
    greedy = greedy_decode(model, src, max_len=6)[0]
    beam, _ = beam_search(model, src, beam_size=1, max_len=6, length_penalty=0.0)
    assert beam == greedy
    wide, score = beam_search(model, src, beam_size=4, max_len=6)
    assert isinstance(wide, list) and np.isfinite(score)
