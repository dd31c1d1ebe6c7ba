"""CAS(ME)^3 part A (Li et al., 2022): micro-expressions of 100 subjects, colour, frames indexed per video.

Layout, as the corpus ships it::

    cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx   sheet "label"
    <any folders>/spNO.1/a/color/123.jpg          subject, task video, frame index without padding

Columns: ``Subject`` (``spNO.1``), ``Filename`` (the task video, ``a`` ...), ``Onset``, ``Apex``, ``Offset``, ``AU``,
``Objective class`` (roman numerals), ``emotion``. One video holds several micro-expressions, so a subject's
filename repeats: the common rules give the later ones ``#2``, ``#3``. The subject folder is spelled ``spNO.1`` in
some copies and ``spNo.1`` in others, so it is found case-insensitively.
"""

from __future__ import annotations

import re
from pathlib import Path

from .common import ConversionReport, CorpusSpec, FrameLocator, run_conversion, subject_number
from .files import find_dirs, find_file

COLUMNS = {
    "subject": "Subject",
    "filename": "Filename",
    "onset": "Onset",
    "apex": "Apex",
    "offset": "Offset",
    "aus": "AU",
}
OPTIONAL_COLUMNS = {"objective_class": "Objective class", "emotion": "emotion"}
SUBJECT_FOLDER = re.compile(r"sp\s*no\.?\s*\d+$", re.IGNORECASE)


def find_annotation(root: Path) -> Path:
    return find_file(root, "cas(me)3_part_A_ME_label*.xlsx", depth=3)


def frame_locator(root: Path, cropped: bool) -> FrameLocator:
    if cropped:
        raise ValueError("casme3: part A ships no aligned crops; convert with cropped=False and align afterwards")
    folders = {normalise_subject(p.name): p for p in find_dirs(root, SUBJECT_FOLDER, depth=5)}
    if not folders:
        raise ValueError(f"{root}: no CAS(ME)^3 subject folders (spNO.1 ...) found")

    def locate(subject: str, filename: str, frame: int) -> Path:
        folder = folders.get(subject, Path(root) / subject)  # an unknown subject gives a missing frame, reported
        return folder / filename / "color" / f"{frame}.jpg"

    return locate


def normalise_subject(value: object) -> str:
    """``"spNO.1"``, ``"spNo.1"``, ``"sp NO. 1"`` and ``1`` all give ``"spNO.1"``."""
    return f"spNO.{subject_number(value)}"


SPEC = CorpusSpec("casme3", "label", COLUMNS, OPTIONAL_COLUMNS, find_annotation, frame_locator, normalise_subject)


def convert(root: str | Path, out: str | Path, *, with_frames: bool = False, cropped: bool = False,
            progress: bool = True, annotation: str | Path | None = None, overwrite: bool = False) -> ConversionReport:
    """Convert a CAS(ME)^3 part A folder (the micro-expression sheet with frame indices)."""
    return run_conversion(SPEC, root, out, with_frames=with_frames, cropped=cropped, progress=progress,
                          annotation=annotation, overwrite=overwrite)
