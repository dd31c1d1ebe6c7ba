"""The one helper that turns an exception into the one line a user reads."""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s text, or its type's name when it has none (``OSError()``, ``KeyError('')``)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


__all__ = ["first_line"]
