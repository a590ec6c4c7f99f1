"""A small instruction data set made by code: the café of chapter 6, now in English and
Chinese, and the chat template that instruction tuning teaches.

The café has opening hours for seven days and prices for seven items. Two kinds of text
come out of those facts:

* **documents** (:func:`cafe_documents`): the facts stated in several wordings per language,
  in short pages. A *base* model is pretrained on them (``python -m tinyllm train --preset
  cafe``): it learns the facts and how the sentences go, but it has never seen a question
  answered.
* **conversations** (:func:`cafe_conversations`): a question in one of four phrasings per
  topic and language, and its one right answer. *Instruction tuning*
  (``python -m tinyllm finetune``) teaches the base model to answer them in the chat format.
  One combination of (language, phrasing, day or item) in five is held out: the model never
  sees, say, "一份汤要多少钱？" answered, though it sees soup asked about in other words and
  that phrasing used for other items.

The chat template, with three special tokens (ids 0, 1, 2 of :func:`chat_tokenizer`, never
produced by encoding text)::

    <|user|>How much is the soup?<|assistant|>The soup costs 6 euros.<|end|>

Instruction tuning computes the loss on the answer and ``<|end|>`` only (the prompt's
targets are ``IGNORE``): the model is not asked to predict the user's words.
"""
from __future__ import annotations

import random
from typing import NamedTuple

import numpy as np

from .tokenizers import CharTokenizer

__all__ = ["USER", "ASSISTANT", "END", "IGNORE", "Conversation", "cafe_documents", "cafe_conversations",
           "split_conversations", "chat_tokenizer", "encode_chat", "chat_batch"]

USER, ASSISTANT, END = "<|user|>", "<|assistant|>", "<|end|>"
IGNORE = -1  # a target GPT and Llama leave out of their loss (their ignore_index)

# ------------------------------------------------------------------------------ the facts
DAYS = [("Monday", "周一"), ("Tuesday", "周二"), ("Wednesday", "周三"), ("Thursday", "周四"),
        ("Friday", "周五"), ("Saturday", "周六"), ("Sunday", "周日")]
HOURS = {"Monday": (9, 18), "Tuesday": (9, 18), "Wednesday": (9, 13), "Thursday": (9, 18),
         "Friday": (9, 20), "Saturday": (10, 16), "Sunday": None}  # (opens, closes), 24-hour clock
ITEMS = [("tea", "茶", 2), ("coffee", "咖啡", 3), ("cake", "蛋糕", 4), ("soup", "汤", 6),
         ("bagel", "贝果", 3), ("juice", "果汁", 4), ("sandwich", "三明治", 5)]  # euros


def _english_time(hour):
    return f"{hour} am" if hour < 12 else ("12 pm" if hour == 12 else f"{hour - 12} pm")


def _chinese_time(hour):
    if hour < 12:
        return f"上午{hour}点"
    if hour == 12:
        return "中午12点"
    return f"下午{hour - 12}点" if hour <= 18 else f"晚上{hour - 12}点"


# ------------------------------------------------------------------------------ documents
# statements of one fact; {d} day, {o}/{c} opening and closing time, {i} item, {p} price
_DOCUMENT_TEMPLATES = {
    ("en", "open"): ["On {d} the café is open from {o} to {c}.", "The café opens at {o} on {d} and closes at {c}.",
                     "{d}: open {o} to {c}.", "Our hours on {d} are {o} to {c}."],
    ("en", "closed"): ["On {d} the café is closed.", "The café does not open on {d}.", "{d}: closed.",
                       "We are closed all day on {d}."],
    ("en", "price"): ["The {i} costs {p} euros.", "A {i} is {p} euros at the café.", "Price of the {i}: {p} euros.",
                      "You can buy the {i} for {p} euros."],
    ("zh", "open"): ["{d}咖啡馆{o}到{c}营业。", "咖啡馆{d}{o}开门，{c}关门。", "{d}：{o}至{c}。",
                     "我们{d}的营业时间是{o}到{c}。"],
    ("zh", "closed"): ["{d}咖啡馆不营业。", "咖啡馆{d}休息。", "{d}：休息。", "我们{d}全天不开门。"],
    ("zh", "price"): ["{i}的价格是{p}欧元。", "咖啡馆的{i}卖{p}欧元。", "{i}：{p}欧元。", "{p}欧元可以买一份{i}。"],
}


def _facts(language):
    """(kind, fields) for every fact, in ``language``'s words."""
    english = language == "en"
    facts = []
    for day_en, day_zh in DAYS:
        hours = HOURS[day_en]
        day = day_en if english else day_zh
        if hours is None:
            facts.append(("closed", dict(d=day)))
        else:
            time = _english_time if english else _chinese_time
            facts.append(("open", dict(d=day, o=time(hours[0]), c=time(hours[1]))))
    for item_en, item_zh, price in ITEMS:
        facts.append(("price", dict(i=item_en if english else item_zh, p=price)))
    return facts


def cafe_documents(n_pages=2000, seed=0) -> str:
    """Pages of 3–8 statements about the café, each page in one language, separated by
    blank lines (about 200,000 characters for the default 2,000 pages; deterministic)."""
    rng = random.Random(seed)
    pages = []
    for _ in range(n_pages):
        language = rng.choice(("en", "zh"))
        facts = _facts(language)
        lines = []
        for kind, fields in rng.sample(facts, rng.randint(3, 8)):
            lines.append(rng.choice(_DOCUMENT_TEMPLATES[(language, kind)]).format(**fields))
        pages.append((" " if language == "en" else "").join(lines))
    return "\n\n".join(pages) + "\n"


# ------------------------------------------------------------------------------ conversations
class Conversation(NamedTuple):
    """One question and its right answer, with what it is about (for held-out splits)."""
    question: str
    answer: str
    language: str   # "en" or "zh"
    topic: str      # "hours" or "price"
    phrasing: int   # which of the four question templates
    entity: str     # the day or item, in English


_QUESTIONS = {
    ("en", "hours"): ["When are you open on {d}?", "What are your hours on {d}?", "Are you open on {d}?",
                      "What time do you open on {d}?"],
    ("en", "price"): ["How much is the {i}?", "What does the {i} cost?", "How much do you charge for the {i}?",
                      "What is the price of the {i}?"],
    ("zh", "hours"): ["{d}几点开门？", "{d}的营业时间是什么？", "{d}营业吗？", "你们{d}什么时候开？"],
    ("zh", "price"): ["{i}多少钱？", "{i}怎么卖？", "{i}的价格是多少？", "一份{i}要多少钱？"],
}
_ANSWERS = {
    ("en", "open"): "On {d} we are open from {o} to {c}.", ("en", "closed"): "On {d} we are closed.",
    ("en", "price"): "The {i} costs {p} euros.",
    ("zh", "open"): "{d}我们{o}到{c}营业。", ("zh", "closed"): "{d}我们不营业。", ("zh", "price"): "{i}{p}欧元。",
}


def cafe_conversations() -> list:
    """Every (language, topic, phrasing, day or item) combination as a :class:`Conversation`:
    2 languages × 4 phrasings × (7 days + 7 items) = 112."""
    out = []
    for language in ("en", "zh"):
        entities = [day for day, _ in DAYS] + [item for item, _, _ in ITEMS]
        for (kind, fields), entity in zip(_facts(language), entities):
            topic = "price" if kind == "price" else "hours"
            for phrasing, template in enumerate(_QUESTIONS[(language, topic)]):
                out.append(Conversation(template.format(**fields), _ANSWERS[(language, kind)].format(**fields),
                                        language, topic, phrasing, entity))
    return out


def split_conversations(conversations=None, held_out_fraction=0.2, seed=0):
    """``(train, held_out)``: a seeded shuffle, the first ``held_out_fraction`` held out."""
    conversations = list(cafe_conversations() if conversations is None else conversations)
    random.Random(seed).shuffle(conversations)
    n_held_out = int(round(len(conversations) * held_out_fraction))
    return conversations[n_held_out:], conversations[:n_held_out]


# ------------------------------------------------------------------------------ the template
def chat_tokenizer() -> CharTokenizer:
    """A character tokenizer for the café: the chat's special tokens (ids 0, 1, 2), then
    every character of the documents and conversations."""
    text = cafe_documents() + "".join(c.question + c.answer for c in cafe_conversations())
    return CharTokenizer.from_text(text, special_tokens=(USER, ASSISTANT, END))


def _special_ids(tokenizer):
    missing = [t for t in (USER, ASSISTANT, END) if t not in tokenizer.special_tokens]
    if missing:
        raise ValueError(f"the tokenizer has no {missing} special tokens: the chat template needs "
                         f"{USER}, {ASSISTANT} and {END} (pretrain the base model with --preset cafe, "
                         f"whose tokenizer has them)")
    return [tokenizer.special_tokens[t] for t in (USER, ASSISTANT, END)]


def encode_chat(tokenizer, question, answer=None):
    """``<|user|>question<|assistant|>`` (a prompt, when ``answer`` is None) or the whole
    ``…answer<|end|>``, as ids; returns ``(ids, n_prompt)`` with n_prompt the prompt's length."""
    user, assistant, end = _special_ids(tokenizer)
    ids = [user] + tokenizer.encode(question) + [assistant]
    n_prompt = len(ids)
    if answer is not None:
        ids += tokenizer.encode(answer) + [end]
    return ids, n_prompt


def chat_batch(conversations, tokenizer, mask_prompt=True):
    """Inputs and targets ``(x, y)``, int64 (B, T), for next-token training on whole
    conversations, right-padded to the longest one (T = its length − 1).

    ``y[b, t]`` is the token after ``x[b, t]``, or ``IGNORE`` on padding and, with
    ``mask_prompt``, wherever that next token still belongs to the prompt: the loss then
    counts the answer and ``<|end|>`` only."""
    encoded = [encode_chat(tokenizer, c.question, c.answer) for c in conversations]
    length = max(len(ids) for ids, _ in encoded) - 1
    end = tokenizer.special_tokens[END]
    x = np.full((len(encoded), length), end, dtype=np.int64)
    y = np.full((len(encoded), length), IGNORE, dtype=np.int64)
    for row, (ids, n_prompt) in enumerate(encoded):
        x[row, :len(ids) - 1] = ids[:-1]
        y[row, :len(ids) - 1] = ids[1:]
        if mask_prompt:
            y[row, :n_prompt - 1] = IGNORE  # targets ids[1:n_prompt]: the question and <|assistant|>
    return x, y
