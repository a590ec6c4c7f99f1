"""The skewed toy corpus, the bias score, counterfactual augmentation, and the experiment."""
import collections

import numpy as np
import pytest

import tinyllm as tl
from tinyllm.lab.bias import (OCCUPATIONS, WordTokenizer, bias_experiment, bias_score, counterfactual_augment,
                                   make_occupation_corpus, swap_gender)


def pronoun_counts(text):
    """occupation -> Counter of the gendered word right after it (or two words after)."""
    counts = collections.defaultdict(collections.Counter)
    for sentence in text.split(" ."):
        words = sentence.split()
        if not words:
            continue
        gendered = [w for w in words if w in ("he", "she", "his", "her", "himself", "herself")]
        counts[words[1]]["he" if gendered[0] in ("he", "his", "himself") else "she"] += 1
    return counts


def test_the_corpus_has_the_skew_asked_for():
    text = make_occupation_corpus(4000, skew=0.8, seed=1)
    counts = pronoun_counts(text)
    assert set(counts) == set(OCCUPATIONS)
    agree = sum(c[OCCUPATIONS[job]] for job, c in counts.items()) / sum(sum(c.values()) for c in counts.values())
    assert agree == pytest.approx(0.8, abs=0.02)
    with pytest.raises(ValueError, match=r"skew must be in \[0, 1\]"):
        make_occupation_corpus(10, skew=1.5)


def test_counterfactual_augmentation_balances_every_occupation():
    text = make_occupation_corpus(500, skew=0.9)
    augmented = counterfactual_augment(text)
    assert augmented.count(" .") == 2 * text.count(" .") == 1000
    for job, c in pronoun_counts(augmented).items():
        assert c["he"] == c["she"], job
    sentence = "the nurse said that she lost her keys and asked herself why"
    assert swap_gender(sentence) == "the nurse said that he lost his keys and asked himself why"
    assert swap_gender(swap_gender("the pilot said that he was tired")) == "the pilot said that he was tired"


class FixedModel:
    """A stand-in language model whose next-word logits favour "he" by ``margin`` for the
    occupations in ``he_jobs`` and "she" for the others."""

    def __init__(self, tokenizer, he_jobs, margin):
        self.tokenizer, self.he_jobs, self.margin = tokenizer, he_jobs, margin
        self.training, self.device = False, "cpu"

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def __call__(self, ids):
        ids = ids.numpy()
        logits = np.zeros(ids.shape + (self.tokenizer.vocab_size,))
        for row, sentence in enumerate(ids):
            job = self.tokenizer.words[sentence[2]]
            favoured = "he" if job in self.he_jobs else "she"
            logits[row, -1, self.tokenizer.index[favoured]] = self.margin
        return tl.Tensor(logits), None


def test_bias_score_of_known_probabilities():
    tokenizer = WordTokenizer.from_text(counterfactual_augment(make_occupation_corpus(300)))
    stereotyped = {job for job, pronoun in OCCUPATIONS.items() if pronoun == "he"}
    margin = np.log(3.0)  # P(favoured) = 3/4 of the two: |p_he − p_she| = 0.5
    score = bias_score(FixedModel(tokenizer, stereotyped, margin), tokenizer)
    assert score["bias"] == pytest.approx(0.5) and score["stereotype"] == pytest.approx(0.5)
    anti = bias_score(FixedModel(tokenizer, set(OCCUPATIONS) - stereotyped, margin), tokenizer)
    assert anti["bias"] == pytest.approx(0.5) and anti["stereotype"] == pytest.approx(-0.5)
    assert bias_score(FixedModel(tokenizer, stereotyped, 0.0), tokenizer)["bias"] == pytest.approx(0.0)
    assert score["per_occupation"]["pilot"] == pytest.approx(0.75)


def test_word_tokenizer_round_trip_and_unknown_words():
    tokenizer = WordTokenizer.from_text("the nurse said that she was tired .")
    ids = tokenizer.encode("the nurse was tired .")
    assert tokenizer.decode(ids) == "the nurse was tired ."
    with pytest.raises(ValueError, match="'doctor' is not in the vocabulary"):
        tokenizer.encode("the doctor")


def test_the_experiment_runs_small():
    r = bias_experiment(n_sentences=200, iters=3, batch_size=4, block_size=8, n_embd=16)
    for name in ("skewed", "augmented"):
        assert 0 <= r[name]["bias"] <= 1 and set(r[name]["per_occupation"]) == set(OCCUPATIONS)
    assert r["expected_bias_skewed"] == pytest.approx(0.8)
