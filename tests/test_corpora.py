"""Tests for tinyllm.data.corpora: the shipped corpus and Tiny Shakespeare.

Nothing here touches the network: urllib's urlopen is replaced in every test, either by a
function that fails the test or by a fake server that serves known bytes.
"""

import hashlib
import io
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tinyllm.data import corpora
from tinyllm.lab import tinytales
from tinyllm.lab.tinytales import generate_corpus
from tinyllm.data.corpora import (
    TINYSHAKESPEARE_SHA256,
    TINYSHAKESPEARE_URL,
    TINYTALES_N_CHARS,
    TINYTALES_SEED,
    ChecksumError,
    DownloadError,
    download_file,
    load_shipped_corpus,
    sha256_of_file,
    tinyshakespeare,
)

SHIPPED = corpora.DATA_DIR / corpora.TINYTALES_FILENAME
# A copy of Tiny Shakespeare outside the project, named by $TINYLLM_DATA (CI sets it); never copied in.
_FOLDER = corpora.data_folder_from_environment()
SHARED_SHAKESPEARE = _FOLDER / "tinyshakespeare.txt" if _FOLDER else None
needs_shared_shakespeare = pytest.mark.skipif(
    SHARED_SHAKESPEARE is None or not SHARED_SHAKESPEARE.is_file(),
    reason="no Tiny Shakespeare in the folder $TINYLLM_DATA names")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def isolated_dirs(tmp_path, monkeypatch):
    """An empty data/ and no shared copy, so tinyshakespeare() has to download."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setattr(corpora, "DATA_DIR", data_dir)
    monkeypatch.setenv(corpora.DATA_ENV_VAR, str(tmp_path / "no-shared-data"))
    return data_dir


def serve(monkeypatch, payload=None, error=None):
    """Make urlopen return `payload` (bytes) or raise `error`, and record the URLs asked."""
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        if error is not None:
            raise error
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return requested


# ---- the shipped corpus ----------------------------------------------------------------------


def test_shipped_corpus_is_reproduced_byte_for_byte_by_the_generator():
    regenerated = generate_corpus(seed=TINYTALES_SEED, n_chars=TINYTALES_N_CHARS).encode("ascii")
    assert SHIPPED.is_file(), "run `python -m tinyllm.lab.tinytales` to write it"
    assert hashlib.sha256(regenerated).hexdigest() == sha256_of_file(SHIPPED)


def test_data_readme_states_the_shipped_digest_and_size():
    readme = (corpora.DATA_DIR / "README.md").read_text(encoding="utf-8")
    assert sha256_of_file(SHIPPED) in readme
    assert f"{SHIPPED.stat().st_size:,} bytes" in readme


def test_load_shipped_corpus_reads_the_file():
    text = load_shipped_corpus()
    assert text == SHIPPED.read_text(encoding="utf-8")
    assert 300_000 <= len(text) <= 600_000


def test_load_shipped_corpus_explains_a_missing_file(isolated_dirs):  # an empty data/
    with pytest.raises(FileNotFoundError, match="python -m tinyllm.lab.tinytales"):
        load_shipped_corpus()


def test_generated_corpus_is_deterministic_and_seed_dependent():
    assert generate_corpus(seed=5, n_chars=20_000) == generate_corpus(seed=5, n_chars=20_000)
    assert generate_corpus(seed=5, n_chars=20_000) != generate_corpus(seed=6, n_chars=20_000)


def test_generated_corpus_shape():
    text = generate_corpus(seed=0, n_chars=50_000)
    assert len(text) >= 50_000
    assert text.isascii() and text.endswith(".\n") and "\n\n\n" not in text
    stories = text.rstrip("\n").split("\n\n")
    assert len(stories) > 50
    for story in stories:
        title, *paragraphs = story.split("\n")
        assert title[0].isupper() and not title.endswith(".")
        assert len(paragraphs) >= 3
        assert all(p[0].isupper() or p[0] == '"' for p in paragraphs)
        assert all(p.count('"') % 2 == 0 for p in paragraphs)  # quotes are closed
    # The shorter text is a prefix of the longer: generation only decides where to stop.
    assert generate_corpus(seed=0, n_chars=100_000).startswith(text)


def test_generated_corpus_has_enough_variety_to_learn_from():
    words = generate_corpus(seed=0, n_chars=100_000).split()
    assert len(set(words)) > 500
    assert len(set(words)) < len(words) / 10  # ... and enough repetition to learn


def test_generate_corpus_rejects_bad_length():
    with pytest.raises(ValueError, match="n_chars"):
        generate_corpus(n_chars=0)


def test_command_line_writes_and_checks(tmp_path, capsys):
    output = tmp_path / "tales.txt"
    assert tinytales.main(["--n-chars", "5000", "--seed", "3", "--output", str(output)]) == 0
    assert output.read_text() == generate_corpus(seed=3, n_chars=5000)
    assert "sha256" in capsys.readouterr().out
    assert tinytales.main(["--n-chars", "5000", "--seed", "3", "--output", str(output),
                         "--check"]) == 0
    assert tinytales.main(["--n-chars", "5000", "--seed", "4", "--output", str(output),
                         "--check"]) == 1


def test_command_line_check_passes_on_the_shipped_file(capsys):
    assert tinytales.main(["--check"]) == 0
    assert "matches" in capsys.readouterr().out


# ---- Tiny Shakespeare ------------------------------------------------------------------------


def test_explicit_path_is_used_as_is(tmp_path):
    path = tmp_path / "my_shakespeare.txt"
    path.write_text("To be, or not to be")
    assert tinyshakespeare(path) == "To be, or not to be"
    with pytest.raises(FileNotFoundError, match="no Tiny Shakespeare file"):
        tinyshakespeare(tmp_path / "missing.txt")


def test_data_dir_copy_comes_before_the_shared_one(isolated_dirs, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "tinyshakespeare.txt").write_text("the copy $TINYLLM_DATA names")
    monkeypatch.setenv(corpora.DATA_ENV_VAR, str(elsewhere))
    assert tinyshakespeare() == "the copy $TINYLLM_DATA names"
    (isolated_dirs / "tinyshakespeare.txt").write_text("local copy")
    assert tinyshakespeare() == "local copy"


@needs_shared_shakespeare
def test_shared_copy_is_found_and_has_the_published_checksum(isolated_dirs, monkeypatch):
    monkeypatch.setenv(corpora.DATA_ENV_VAR, str(SHARED_SHAKESPEARE.parent))
    text = tinyshakespeare()
    assert len(text) == 1_115_394 and len(set(text)) == 65
    assert sha256_of_file(SHARED_SHAKESPEARE) == TINYSHAKESPEARE_SHA256
    assert list(isolated_dirs.iterdir()) == []  # found, not copied


def test_offline_error_says_where_to_put_the_file(isolated_dirs, monkeypatch):
    requested = serve(monkeypatch, error=urllib.error.URLError("Name or service not known"))
    with pytest.raises(DownloadError) as error:
        tinyshakespeare()
    message = str(error.value)
    assert requested == [TINYSHAKESPEARE_URL]
    assert str(isolated_dirs / "tinyshakespeare.txt") in message
    assert TINYSHAKESPEARE_URL in message and "offline" in message
    assert not (isolated_dirs / "tinyshakespeare.txt").exists()


def test_timeout_is_a_download_error(isolated_dirs, monkeypatch):
    serve(monkeypatch, error=TimeoutError("timed out"))
    with pytest.raises(DownloadError, match="timed out"):
        tinyshakespeare()


def test_download_false_never_downloads(isolated_dirs):
    with pytest.raises(FileNotFoundError, match="download=False"):
        tinyshakespeare(download=False)


@needs_shared_shakespeare
def test_download_keeps_a_file_with_the_right_checksum(isolated_dirs, monkeypatch):
    requested = serve(monkeypatch, payload=SHARED_SHAKESPEARE.read_bytes())
    text = tinyshakespeare()
    assert requested == [TINYSHAKESPEARE_URL]
    saved = isolated_dirs / "tinyshakespeare.txt"
    assert sha256_of_file(saved) == TINYSHAKESPEARE_SHA256
    assert text == saved.read_text()
    assert sorted(p.name for p in isolated_dirs.iterdir()) == ["tinyshakespeare.txt"]
    # The second call finds the downloaded copy and does not download again.
    assert tinyshakespeare() == text and len(requested) == 1


@needs_shared_shakespeare
def test_download_with_a_wrong_checksum_keeps_nothing(isolated_dirs, monkeypatch):
    corrupted = bytearray(SHARED_SHAKESPEARE.read_bytes())
    corrupted[1000] ^= 1  # one flipped bit
    serve(monkeypatch, payload=bytes(corrupted))
    with pytest.raises(ChecksumError, match=f"expected {TINYSHAKESPEARE_SHA256}"):
        tinyshakespeare()
    assert list(isolated_dirs.iterdir()) == []


def test_without_a_repository_downloads_go_to_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(corpora, "DATA_DIR", tmp_path / "site-packages" / "data")  # absent
    monkeypatch.setenv(corpora.DATA_ENV_VAR, str(tmp_path / "no-shared-data"))
    monkeypatch.setattr(Path, "home", lambda: tmp_path / "home")
    serve(monkeypatch, error=urllib.error.URLError("offline"))
    with pytest.raises(DownloadError, match=str(tmp_path / "home" / ".cache" / "tinyllm")):
        tinyshakespeare()


def test_download_file_checks_the_checksum(tmp_path, monkeypatch):
    payload = b"some bytes"
    serve(monkeypatch, payload=payload)
    destination = tmp_path / "sub" / "file.bin"
    good = hashlib.sha256(payload).hexdigest()
    assert download_file("https://example.invalid/f", destination, good) == destination
    assert destination.read_bytes() == payload
    with pytest.raises(ChecksumError):
        download_file("https://example.invalid/f", tmp_path / "other.bin", "0" * 64)
    assert not (tmp_path / "other.bin").exists()


def test_sha256_of_file(tmp_path):
    path = Path(tmp_path / "x")
    path.write_bytes(b"abc")
    assert sha256_of_file(path) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
