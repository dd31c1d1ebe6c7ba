"""Argument types that check a value before any model loads (standard library only).

Each raises `argparse.ArgumentTypeError` with the value and the problem, which the parser prints as one line.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path

# A Hub repository id: NAME or ORG/NAME (letters, digits, '-', '_', '.').
HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")
DEVICE = re.compile(r"^(?:auto|cpu|mps|cuda(?::\d+)?)$")
RESULT_SUFFIXES = (".json", ".csv")
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")  # what the converters' reader (openpyxl) opens; every corpus ships .xlsx


def _fail(value: str, problem: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{value}: {problem}")


def _expand(value: str) -> Path:
    """The path with ``~`` expanded; an unknown ``~user`` is one line too."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        raise _fail(value, "cannot expand ~ (no such user home)") from None


def _existing(value: str, kind: str) -> Path:
    """A path that exists and is a ``kind`` ("file" or "folder")."""
    path = _expand(value)
    if not path.exists():
        raise _fail(value, f"no such {kind}")
    if path.is_file() != (kind == "file"):
        raise _fail(value, "is a folder, not a file" if kind == "file" else "is a file, not a folder")
    return path


def existing_file(value: str) -> Path:
    path = _existing(value, "file")
    if path.stat().st_size == 0:
        raise _fail(value, "the file is empty")
    return path


def existing_file_of(suffixes: tuple[str, ...]) -> Callable[[str], Path]:
    """An existing, non-empty file with one of ``suffixes`` (what its reader opens; a renamed file fails there)."""

    def check(value: str) -> Path:
        path = existing_file(value)
        if path.suffix.lower() not in suffixes:
            raise _fail(value, f"give a {' or '.join(suffixes)} file, not {path.suffix or 'no extension'!r}")
        return path

    return check


def existing_folder(value: str) -> Path:
    return _existing(value, "folder")


def folder_or_list(value: str) -> Path:
    """A dataset folder, or a text file listing dataset folders one a line (``evaluate --protocol cd6me``)."""
    path = _expand(value)
    if path.is_file() and path.suffix.lower() != ".txt":
        raise _fail(value, "is a file, not a folder (a list of corpus folders for --protocol cd6me is a .txt file)")
    return existing_file_of((".txt",))(value) if path.is_file() else existing_folder(value)


def video_source(value: str) -> Path:
    """A video file, or a folder of its frames (an image sequence, as the long-video corpora ship)."""
    path = _expand(value)
    return existing_folder(value) if path.is_dir() else existing_file(value)


def output_folder(value: str) -> Path:
    """A folder to write into: it may not exist yet, but it may not be a file, and its parent must be creatable."""
    path = _expand(value)
    if path.exists() and not path.is_dir():
        raise _fail(value, "exists and is a file; give a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise _fail(value, f"{parent} is a file, so the folder cannot be made")
            break
    return path


def output_file(suffixes: tuple[str, ...], stdout_ok: bool = False) -> Callable[[str], Path | str]:
    """A file to write, by its extension; ``-`` means standard output where ``stdout_ok``."""

    def check(value: str) -> Path | str:
        if stdout_ok and value == "-":
            return value
        path = _expand(value)
        if path.suffix.lower() not in suffixes:
            raise _fail(value, f"write {' or '.join(suffixes)} (by extension), not {path.suffix or 'no extension'!r}")
        if path.is_dir():
            raise _fail(value, "is a folder; give a file name")
        if not path.parent.is_dir():
            raise _fail(value, f"the folder {path.parent} does not exist")
        return path

    return check


def model_source(value: str) -> str:
    """A checkpoint folder (it must hold config.json) or a Hub id."""
    path = _expand(value)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise _fail(value, "not a checkpoint folder (no config.json); train one with `microau quickstart`")
        return str(path)
    if path.exists():
        raise _fail(value, "is a file; give the checkpoint folder (save_pretrained) or a Hub id")
    looks_local = value.startswith((".", "/", "~")) or value.count("/") > 1 or "\\" in value
    if looks_local or not HUB_ID.match(value):
        raise _fail(value, "no such checkpoint folder (and not a Hub id such as ORG/NAME)")
    return value


def device(value: str) -> str:
    if not DEVICE.match(value):
        raise _fail(value, "a device is auto, cpu, cuda, cuda:N or mps")
    return value


def _number(value: str, kind: type, whole: bool, accept: Callable[[float], bool], rule: str) -> int | float:
    try:
        number = kind(value)
    except ValueError:
        raise _fail(value, "not a whole number" if whole else "not a number") from None
    if not accept(number):
        raise _fail(value, rule)
    return number


def positive_int(value: str) -> int:
    return _number(value, int, True, lambda n: n >= 1, "must be at least 1")


def non_negative_int(value: str) -> int:
    return _number(value, int, True, lambda n: n >= 0, "must be 0 or more")


def positive_float(value: str) -> float:
    # float() reads "inf" and "1e400" as infinity: an endless --epochs or --learning-rate is no setting
    return _number(value, float, False, lambda n: 0 < n < math.inf, "must be a finite number greater than 0")


def probability(value: str) -> float:
    return _number(value, float, False, lambda n: 0.0 <= n <= 1.0, "must lie in [0, 1]")
