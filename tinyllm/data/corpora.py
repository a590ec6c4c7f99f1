"""Text corpora: the corpus this project writes itself, and Tiny Shakespeare.

Tiny Tales (``data/tinytales.txt``): short, simple stories produced by a seeded procedural
grammar (:mod:`tinyllm.lab.tinytales`; ``python -m tinyllm.lab.tinytales`` regenerates the
file, and a test checks the shipped file against the generator). No text was downloaded or
copied to make it.

Tiny Shakespeare: the 1.1 MB corpus of Karpathy's char-rnn, the usual first dataset for
character-level models. `tinyshakespeare` finds a local copy or downloads it once, checking
its SHA-256.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
from pathlib import Path

from ..checkpoint import atomic_write

__all__ = [
    "DATA_DIR",
    "TINYTALES_FILENAME",
    "TINYTALES_SEED",
    "TINYTALES_N_CHARS",
    "TINYSHAKESPEARE_URL",
    "TINYSHAKESPEARE_SHA256",
    "ChecksumError",
    "DownloadError",
    "load_shipped_corpus",
    "tinyshakespeare",
    "download_file",
    "sha256_of_file",
]

# tinyllm/data/corpora.py -> the repository root is two folders above tinyllm/data/.
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPOSITORY_ROOT / "data"
# A folder of data files kept outside the project (a lab machine's copy of Tiny Shakespeare,
# say), named by this environment variable; looked at after data/ and before any download.
DATA_ENV_VAR = "TINYLLM_DATA"


def data_folder_from_environment() -> Path | None:
    """The folder named by ``$TINYLLM_DATA``, or None when the variable is unset or empty."""
    folder = os.environ.get(DATA_ENV_VAR, "").strip()
    return Path(folder) if folder else None

TINYTALES_FILENAME = "tinytales.txt"
TINYTALES_SEED = 2025
TINYTALES_N_CHARS = 400_000

TINYSHAKESPEARE_FILENAME = "tinyshakespeare.txt"
TINYSHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


class ChecksumError(ValueError):
    """Downloaded bytes do not have the expected SHA-256."""


class DownloadError(OSError):
    """A file could not be downloaded (no network, timeout, HTTP error)."""


def load_shipped_corpus() -> str:
    """The Tiny Tales corpus shipped in the repository's data/ folder.

    Raises:
        FileNotFoundError: if data/tinytales.txt is not there (for example when tinyllm is
            installed without its repository); the message says how to regenerate it.
    """
    path = DATA_DIR / TINYTALES_FILENAME
    if not path.is_file():
        raise FileNotFoundError(
            f"the shipped corpus {path} is missing. It lives in the data/ folder of the "
            f"tinyllm repository; regenerate it with `python -m tinyllm.lab.tinytales "
            f"--output {path}`, or call tinyllm.lab.tinytales.generate_corpus() for the text in memory"
        )
    return path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Downloads with a checksum, and Tiny Shakespeare
# --------------------------------------------------------------------------------------------


def sha256_of_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, as 64 lowercase hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(
    url: str, destination: str | os.PathLike, sha256: str, timeout: float = 30.0
) -> Path:
    """Download `url` to `destination`, keeping it only if its SHA-256 is `sha256`.

    The bytes are checked in memory and then written to a temporary file beside
    `destination` and renamed into place, so `destination` is either absent or complete
    and correct, never half-written.

    Raises:
        DownloadError: no network, timeout, or an HTTP error.
        ChecksumError: the bytes arrived but are not the expected ones; nothing is saved.
    """
    destination = Path(destination)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    # URLError (no network, HTTP errors) and TimeoutError are both OSErrors; a connection
    # cut mid-transfer raises http.client.HTTPException.
    except (OSError, http.client.HTTPException) as error:
        raise DownloadError(f"could not download {url}: {error}") from error
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ChecksumError(
            f"the file downloaded from {url} has SHA-256 {actual}, expected {sha256}; "
            f"it was not saved (a changed or truncated download)"
        )
    atomic_write(os.fspath(destination), data)
    return destination


def tinyshakespeare(
    path: str | os.PathLike | None = None,
    download: bool = True,
    data_dir: str | os.PathLike | None = None,
) -> str:
    """The Tiny Shakespeare text (1,115,394 characters, 65 distinct).

    Looks, in this order, for:

    1. `path`, if given (used as it is; no checksum, so you may pass your own variant);
    2. ``data/tinyshakespeare.txt`` in the repository (or in `data_dir`);
    3. ``tinyshakespeare.txt`` in the folder named by the environment variable ``TINYLLM_DATA``;
    4. otherwise, if `download` is True, downloads it from `TINYSHAKESPEARE_URL` into
       ``data/tinyshakespeare.txt`` (ignored by git), checking `TINYSHAKESPEARE_SHA256`.

    Args:
        path: an explicit file to read.
        download: allow step 4.
        data_dir: the folder for steps 2 and 4 instead of the repository's data/ (or, when
            there is no repository, ``~/.cache/tinyllm``).

    Raises:
        FileNotFoundError: `path` does not exist, or no copy was found and `download` is
            False.
        DownloadError: the download failed (offline); the message says where to put the
            file by hand.
        ChecksumError: the downloaded bytes are not Tiny Shakespeare; nothing is saved.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no Tiny Shakespeare file at {path}")
        return path.read_text(encoding="utf-8")

    if data_dir is None:
        # In a checkout, the repository's data/. Without one (tinyllm installed as a
        # package), a per-user cache rather than a folder inside site-packages.
        data_dir = DATA_DIR if DATA_DIR.is_dir() else Path.home() / ".cache" / "tinyllm"
    local_copy = Path(data_dir) / TINYSHAKESPEARE_FILENAME
    elsewhere = data_folder_from_environment()
    for candidate in (local_copy, elsewhere / TINYSHAKESPEARE_FILENAME if elsewhere else None):
        if candidate is not None and candidate.is_file():
            return candidate.read_text(encoding="utf-8")

    by_hand = (
        f"Download {TINYSHAKESPEARE_URL} by hand and save it as {local_copy} "
        f"(SHA-256 {TINYSHAKESPEARE_SHA256}), or pass its location as "
        f"tinyshakespeare(path=...)."
    )
    if not download:
        raise FileNotFoundError(f"Tiny Shakespeare not found and download=False. {by_hand}")
    try:
        download_file(TINYSHAKESPEARE_URL, local_copy, TINYSHAKESPEARE_SHA256)
    except DownloadError as error:
        raise DownloadError(f"{error}. Are you offline? {by_hand}") from error
    return local_copy.read_text(encoding="utf-8")
