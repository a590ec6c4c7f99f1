"""Option values and errors shared by tinyllm's command lines (``python -m tinyllm``, its
``compress`` and ``assign`` commands): argparse types with ranges, checks made before any
work starts, and the two errors every command turns into one ``error: ...`` line.
"""
from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np

from . import backend
from .checkpoint import atomic_write

__all__ = ["ArgumentParser", "CommandError", "UsageError", "integer", "number", "optional", "path_name",
           "check_output_file", "check_writable_folder", "check_device", "json_text", "write_json"]


class CommandError(Exception):
    """A problem found while running a command: printed as one ``error:`` line, exit status 1."""


class UsageError(CommandError):
    """An option's value that only the command could judge (a config out of range, options
    that contradict a checkpoint): one ``error:`` line, exit status 2 as for argparse's."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a usage mistake reported in one line, ``error: <what> (...)``, exit status 2.
    Options must be spelled whole: argparse's default would read ``--np 2`` as ``--nproc 2``
    (and a shortened name is fragile as soon as another option shares its start)."""

    def __init__(self, *args, allow_abbrev=False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)

    def error(self, message):
        # an argument of undecodable bytes arrives as lone surrogates, which no stream can
        # print: shown as \udcff escapes instead of a crash while reporting the mistake
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


# ----------------------------------------------------------------------------- option values
def integer(minimum, maximum=None):
    """An argparse type: an integer in [minimum, maximum]."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            raise argparse.ArgumentTypeError(f"expected an integer {bound}, got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def number(minimum=-math.inf, maximum=math.inf, open_below=False):
    """An argparse type: a finite number in [minimum, maximum] ((minimum, ...] if open_below)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        low_ok = value > minimum if open_below else value >= minimum
        if not (math.isfinite(value) and low_ok and value <= maximum):
            bound = "" if (minimum, maximum) == (-math.inf, math.inf) else \
                f" in {'(' if open_below else '['}{minimum:g}, {maximum:g}]"
            raise argparse.ArgumentTypeError(f"expected a finite number{bound}, got {text}")
        return value
    parse.__name__ = "number"
    return parse


def optional(kind):
    """``kind``, or None for the text "none"."""
    def parse(text):
        return None if text.lower() == "none" else kind(text)
    parse.__name__ = kind.__name__
    return parse


def path_name(text):
    """An argparse type: a file or folder name (not empty, which would quietly mean the default)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got ''")
    return text


# ----------------------------------------------------------------------------- checks before work
def check_output_file(path, option, reading=()):
    """Refuse, before any work, an output file that cannot be written or that would replace
    something to keep: a folder, a checkpoint (``*.safetensors``), a file being read."""
    if os.path.isdir(path):
        raise CommandError(f"{option} {path}: a folder is there; expected a file name")
    if path.lower().endswith((".safetensors", ".safetensors.bak")):  # (.bak: the run --overwrite set aside)
        raise CommandError(f"{option} {path}: would write over a checkpoint file; choose a .json or .png name")
    for source in reading:
        if os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source):
            raise CommandError(f"{option} {path}: that is the file being read; choose another")
    check_writable_folder(os.path.dirname(os.path.abspath(path)), f"{option} {path}")


def check_writable_folder(folder, what):
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise CommandError(f"{what}: {folder} is a file; expected a folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise CommandError(f"{what}: cannot create the folder {folder} ({error.strerror or error})") from None
    probe = os.path.join(folder, f".tinyllm-write-test-{os.getpid()}")
    try:
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as error:
        raise CommandError(f"{what}: cannot write in {folder} ({error.strerror or error})") from None


def check_device(device):
    """Refuse ``--device cuda`` at once where CuPy or a GPU is missing (saying which)."""
    if device == "cuda" and not backend.cuda_available():
        try:
            backend.get_device("cuda")
        except RuntimeError as error:
            raise CommandError(f"--device cuda: {error}") from None


def json_text(data, indent=2):
    """``data`` as JSON text that every parser reads: numbers NumPy made become floats, and a
    number that is not finite (a NaN loss, say) becomes ``null``, since JSON has no NaN or
    Infinity (Python's ``json`` would write the invalid ``NaN``)."""
    def plain(value):
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, (float, np.floating)):
            return float(value) if math.isfinite(value) else None
        return value.item() if isinstance(value, np.generic) else value
    return json.dumps(plain(data), indent=indent, allow_nan=False)


def write_json(path, data):
    """``data`` as indented JSON (:func:`json_text`) in ``path``, replaced atomically."""
    atomic_write(path, (json_text(data) + "\n").encode("utf-8"))
