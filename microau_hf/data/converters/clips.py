"""Frames of corpora that ship one folder per clip and name frames by number (CASME, MMEW, 4DME).

These corpora's frame file names are not documented in anything read here; what is known (from MEB's loader, which
lists a clip folder and sorts its images by the digits of their names, then warns when the first file's last number
is not the sheet's onset) is that the *last number in a frame's file name is its frame number*. So a clip folder is
indexed once by that number, whatever the prefix (``img46.jpg``, ``reg_EP01_5-46.jpg``, ``46.bmp``), and a frame the
sheet names but the folder lacks is refused with the folder's own numbering in the message, so a corpus numbered
per clip from 1 shows itself in the report instead of failing silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from .common import FrameLocator, RowRefused

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_LAST_NUMBER = re.compile(r"(\d+)\D*$")

ClipFolder = Callable[[str, str], Path]  # (subject, filename) -> the clip's frame folder


def frames_by_number(folder: Path) -> dict[int, Path]:
    """A clip folder's images by the last number in their names (the first by name wins a tie)."""
    if not folder.is_dir():
        return {}
    index: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        match = _LAST_NUMBER.search(path.stem)
        if path.suffix.lower() in IMAGE_SUFFIXES and match:
            index.setdefault(int(match.group(1)), path)
    return index


def numbered_frames(clip_folder: ClipFolder) -> FrameLocator:
    """A frame locator over clip folders whose frames are named by number; each folder is listed once."""
    listed: dict[Path, dict[int, Path]] = {}

    def locate(subject: str, filename: str, frame: int) -> Path:
        folder = clip_folder(subject, filename)
        if folder not in listed:
            listed[folder] = frames_by_number(folder)
        frames = listed[folder]
        if frame in frames:
            return frames[frame]
        if not frames:
            raise RowRefused("missing_frame", f"{folder}: no frame images (.jpg, .png, .bmp) there")
        raise RowRefused("missing_frame", f"{folder}: no frame {frame}; its frames are numbered "
                                          f"{min(frames)}..{max(frames)}")

    return locate


def folders_by_name(parents: list[Path]) -> dict[str, list[Path]]:
    """Every sub-folder of ``parents`` by its lower-case name (a name may occur under two parents)."""
    found: dict[str, list[Path]] = {}
    for parent in parents:
        for child in sorted(p for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else ():
            found.setdefault(child.name.lower(), []).append(child)
    return found


def one_folder(found: dict[str, list[Path]], name: str, where: str) -> Path:
    """The one folder called ``name`` (case-insensitively); none or several refuse the row, naming them."""
    matches = found.get(name.lower(), [])
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RowRefused("missing_frame", f"no folder {name!r} in {where}")
    raise RowRefused("ambiguous_clip_folder", f"{name!r} is in {len(matches)} folders: "
                                              f"{', '.join(str(m) for m in matches)}")
