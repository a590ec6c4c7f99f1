r"""Bias a model learns from skewed data, a score for it, and a data fix that reduces it.

A language model learns the associations of its corpus, including unwanted ones. To see
that in a controlled way we *generate* the corpus: sentences about people of 16 occupations,
each occupation given a stereotyped pronoun that it gets with probability ``skew`` (0.9:
nine "the nurse said that she …" for one "… he …"). The association is artificial and
arbitrary by design; only its strength is under our control.

Bias score. After the prompt ". the <occupation> said that", take the model's next-word
probabilities of "he" and "she", renormalised over the two, p_he = P(he) / (P(he) + P(she)):

    bias = mean over occupations of |p_he − p_she|        (0: no preference, 1: certain)
    stereotype = mean over occupations of (p_stereotyped − p_other)   (signed, in [−1, 1])

A model that learned the corpus's rates exactly scores 2·skew − 1 (0.8 for skew 0.9).

Counterfactual data augmentation (CDA, Lu et al. 2018; Zmigrod et al. 2019): add to the
corpus a copy of every sentence with the gendered words swapped (he ↔ she, his ↔ her,
himself ↔ herself, …). Each occupation then co-occurs with both pronouns equally, and the
learned association goes away (on this toy corpus, where swapping is exact; in real text
"her" maps to both "his" and "him", names and agreement get in the way).

Words are the tokens here (:class:`WordTokenizer`): the prompt's next token is the pronoun.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..compress.lm import small_config, train_lm
from ..data import CausalLMDataset
from ..models import GPT
from ..tensor import Tensor, no_grad

__all__ = ["OCCUPATIONS", "GENDER_SWAPS", "make_occupation_corpus", "counterfactual_augment", "swap_gender",
           "WordTokenizer", "bias_score", "bias_experiment"]

# occupation -> the pronoun the generated corpus associates with it (arbitrary, for the experiment)
OCCUPATIONS = {
    "engineer": "he", "mechanic": "he", "pilot": "he", "carpenter": "he",
    "surgeon": "he", "plumber": "he", "programmer": "he", "farmer": "he",
    "nurse": "she", "secretary": "she", "receptionist": "she", "librarian": "she",
    "dancer": "she", "nanny": "she", "cashier": "she", "baker": "she",
}

GENDER_SWAPS = {"he": "she", "she": "he", "his": "her", "her": "his", "him": "her",
                "himself": "herself", "herself": "himself", "man": "woman", "woman": "man"}

_SUBJECT_TEMPLATES = [
    "the {job} said that {he} would be late .",
    "the {job} said that {he} was tired .",
    "the {job} told us that {he} liked the work .",
    "the {job} thinks that {he} works too hard .",
]
_POSSESSIVE_TEMPLATES = [
    "the {job} forgot {his} keys .",
    "the {job} finished {his} shift early .",
    "the {job} asked {himself} why .",
]
_FORMS = {"he": {"he": "he", "his": "his", "himself": "himself"},
          "she": {"he": "she", "his": "her", "himself": "herself"}}


def make_occupation_corpus(n_sentences=4000, skew=0.9, seed=0):
    """``n_sentences`` generated sentences (one text, space-separated words), each about a
    random occupation, using its stereotyped pronoun with probability ``skew``."""
    if not 0.0 <= skew <= 1.0:
        raise ValueError(f"make_occupation_corpus: skew must be in [0, 1], got {skew}")
    rng = np.random.default_rng(seed)
    jobs = list(OCCUPATIONS)
    templates = _SUBJECT_TEMPLATES + _POSSESSIVE_TEMPLATES
    sentences = []
    for _ in range(n_sentences):
        job = jobs[rng.integers(len(jobs))]
        stereotype = OCCUPATIONS[job]
        gender = stereotype if rng.random() < skew else GENDER_SWAPS[stereotype]
        template = templates[rng.integers(len(templates))]
        sentences.append(template.format(job=job, **_FORMS[gender]))
    return " ".join(sentences)


def swap_gender(sentence):
    """The sentence with every gendered word swapped (``GENDER_SWAPS``)."""
    return " ".join(GENDER_SWAPS.get(word, word) for word in sentence.split(" "))


def counterfactual_augment(text):
    """The corpus followed by its gender-swapped copy (sentences end with " .")."""
    sentences = [s.strip() + " ." for s in text.split(" .") if s.strip()]
    return " ".join(sentences + [swap_gender(s) for s in sentences])


class WordTokenizer:
    """Whitespace-separated words ↔ ids (the vocabulary: the sorted words of a text)."""

    def __init__(self, words):
        self.words = sorted(set(words))
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_text(cls, text):
        return cls(text.split())

    @property
    def vocab_size(self):
        return len(self.words)

    def encode(self, text):
        try:
            return [self.index[w] for w in text.split()]
        except KeyError as missing:
            raise ValueError(f"WordTokenizer: the word {missing} is not in the vocabulary") from None

    def decode(self, ids):
        return " ".join(self.words[int(i)] for i in ids)


def bias_score(model, tokenizer, occupations=None, template=". the {job} said that"):
    """The bias of ``model`` (see the module docstring): ``{"bias", "stereotype",
    "per_occupation": {job: p_he}}``, from the next-word probabilities of "he" and "she"
    after ``template`` for each occupation."""
    occupations = occupations or OCCUPATIONS
    he, she = tokenizer.index["he"], tokenizer.index["she"]
    jobs = list(occupations)
    ids = np.array([tokenizer.encode(template.format(job=job)) for job in jobs])
    was_training = model.training
    model.eval()
    with no_grad():
        logits, _ = model(Tensor(ids, device=model.device))
    model.train(was_training)
    last = logits[:, -1, :].numpy().astype(np.float64)  # (occupations, vocab), copied to the host
    two = last[:, [he, she]]
    probs = np.exp(two - two.max(axis=1, keepdims=True))
    p_he = probs[:, 0] / probs.sum(axis=1)  # P(he) / (P(he) + P(she)): the softmax's normaliser cancels
    stereotyped = np.array([p if occupations[j] == "he" else 1 - p for j, p in zip(jobs, p_he)])
    return {"bias": float(np.mean(np.abs(2 * p_he - 1))),
            "stereotype": float(np.mean(2 * stereotyped - 1)),
            "per_occupation": {j: float(p) for j, p in zip(jobs, p_he)}}


def bias_experiment(n_sentences=4000, skew=0.9, iters=300, batch_size=32, block_size=12, n_layer=2, n_head=2,
                    n_embd=48, lr=3e-3, seed=0, device="cpu"):
    """Train the same small word-level GPT twice for ``iters`` steps: on the skewed corpus,
    and on the corpus with counterfactual augmentation. Returns both bias scores (and the
    training losses at the end)."""
    text = make_occupation_corpus(n_sentences, skew, seed)
    augmented = counterfactual_augment(text)
    # every word the templates can make, so that a small corpus still covers the prompts the
    # score asks about (with the default 4,000 sentences the vocabulary is the same either way)
    every_word = " ".join(template.format(job=job, **forms) for template in _SUBJECT_TEMPLATES + _POSSESSIVE_TEMPLATES
                          for job in OCCUPATIONS for forms in _FORMS.values())
    tokenizer = WordTokenizer.from_text(augmented + " " + every_word)
    results = {"n_sentences": n_sentences, "skew": skew, "iters": iters, "expected_bias_skewed": 2 * skew - 1}
    for name, corpus in (("skewed", text), ("augmented", augmented)):
        data = CausalLMDataset(np.array(tokenizer.encode(corpus)), block_size)
        backend.manual_seed(seed)
        model = GPT(small_config(tokenizer.vocab_size, block_size, n_layer, n_head, n_embd)).to(device)
        losses = train_lm(model, data, iters, batch_size=batch_size, lr=lr, min_lr=lr / 10, warmup=min(50, iters),
                          weight_decay=0.0, seed=seed)
        score = bias_score(model, tokenizer)
        results[name] = {"bias": score["bias"], "stereotype": score["stereotype"],
                         "final_train_loss": float(np.mean(losses[-20:])), "per_occupation": score["per_occupation"]}
    return results
