"""Data preprocessing: cleaning, tokenizers, batches, corpora and toy translation tasks.

This package uses only the standard library and NumPy; it does not depend on the rest of
tinyllm, so it can be read (and tested) on its own.

    cleaning.py    clean_text, train_val_split
    tokenizers.py  CharTokenizer, BPETokenizer (byte-level, trained here), load_tokenizer
    datasets.py    CausalLMDataset (next-token windows), Seq2SeqDataset (padded pairs)
    corpora.py     the shipped Tiny Tales corpus, Tiny Shakespeare (download + checksum)
    synthetic.py   toy translation tasks: dates, number words
"""

from .cleaning import clean_text, train_val_split
from .corpora import ChecksumError, DownloadError, download_file, load_shipped_corpus, sha256_of_file, tinyshakespeare
from .datasets import IGNORE_INDEX, CausalLMDataset, Seq2SeqBatch, Seq2SeqDataset
from .synthetic import (
    BOS,
    EOS,
    PAD,
    SPECIAL_TOKENS,
    date_tokenizers,
    encode_pairs,
    make_char_tokenizers,
    make_date_pairs,
    make_number_pairs,
    number_to_words,
    number_tokenizers,
)
from .tokenizers import (GPT2_SPLIT_PATTERN, BPETokenizer, CharTokenizer, Tokenizer, load_tokenizer,
                         tokenizer_from_dict)

__all__ = [
    # cleaning
    "clean_text",
    "train_val_split",
    # tokenizers
    "Tokenizer",
    "CharTokenizer",
    "BPETokenizer",
    "GPT2_SPLIT_PATTERN",
    "load_tokenizer",
    "tokenizer_from_dict",
    # datasets
    "CausalLMDataset",
    "Seq2SeqDataset",
    "Seq2SeqBatch",
    "IGNORE_INDEX",
    # corpora
    "load_shipped_corpus",
    "tinyshakespeare",
    "download_file",
    "sha256_of_file",
    "ChecksumError",
    "DownloadError",
    # synthetic tasks
    "make_date_pairs",
    "make_number_pairs",
    "number_to_words",
    "make_char_tokenizers",
    "date_tokenizers",
    "number_tokenizers",
    "encode_pairs",
    "PAD",
    "BOS",
    "EOS",
    "SPECIAL_TOKENS",
]
