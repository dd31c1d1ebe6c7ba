"""CASME (Yan et al., 2013): 195 micro-expressions of 19 subjects, 60 fps, colour (CD6ME counts 189 with AUs).

Layout, as MEB's loader reads the corpus (``casme.xlsx`` there is a renamed copy of the release's sheet)::

    <name>.xlsx                           the first sheet; the file name is the release's, not confirmed here
    CASME_raw_selected/sub01/EP01_5/...   subject folder ``subNN``, clip folder = ``Filename``, frames by number
    Cropped/sub01/EP01_5/...              the aligned crops (``cropped=True``)

Header: ``Subject | Filename | (blank) | OnsetF | ApexF1 | ApexF2 | OffsetF | (blank) | AU | Emotion``; ``ApexF1`` is
the apex used (``ApexF2``, a second apex some clips have, is not). Subjects are numbers; folders are ``sub`` plus two
digits. Not confirmed from the release itself: the sheet's file name (any ``CASME*.xlsx`` that is not CASME II's or
CAS(ME)^2/3's is taken; an ``.xls`` original must be saved as ``.xlsx``), the spelling of the AU and emotion headers
(``AU`` or ``Action Units``, ``Emotion`` or ``Estimated Emotion`` are both read), and the frame file names (the
last number in a name is read as its frame number, see :mod:`.clips`). MEB corrects a few onsets and offsets of this
sheet from the frame folders; here such a row's missing frame refuses it, named in the report.
"""

from __future__ import annotations

import re
from pathlib import Path

from .clips import numbered_frames
from .common import ConversionReport, CorpusSpec, FrameLocator, run_conversion, subject_number
from .files import find_dir, find_file

COLUMNS = {
    "subject": "Subject",
    "filename": "Filename",
    "onset": ("OnsetF", "OnsetFrame"),
    "apex": ("ApexF1", "ApexF", "ApexFrame"),
    "offset": ("OffsetF", "OffsetFrame"),
    "aus": ("AU", "Action Units"),
}
OPTIONAL_COLUMNS = {"emotion": ("Emotion", "Estimated Emotion"), "objective_class": "Objective Classes"}
#: CASME's sheet, but not CASME II's ``CASME2-coding-*.xlsx`` nor CAS(ME)^2/^3's sheets lying beside it.
ANNOTATION = re.compile(r"casme(?![23]|\^|\(|_?sq)[^/]*\.xlsx$", re.IGNORECASE)


def find_annotation(root: Path) -> Path:
    return find_file(root, ANNOTATION)


def frame_locator(root: Path, cropped: bool) -> FrameLocator:
    folder = find_dir(root, "Cropped" if cropped else "CASME_raw_selected", holds=r"sub\d+")
    return numbered_frames(lambda subject, filename: folder / f"sub{subject}" / filename)


def normalise_subject(value: object) -> str:
    """``1``, ``"01"`` and ``"sub01"`` all give ``"01"``, the folder's number."""
    return f"{subject_number(value):02d}"


SPEC = CorpusSpec("casme", None, COLUMNS, OPTIONAL_COLUMNS, find_annotation, frame_locator, normalise_subject)


def convert(root: str | Path, out: str | Path, *, with_frames: bool = False, cropped: bool = False,
            progress: bool = True, annotation: str | Path | None = None, overwrite: bool = False) -> ConversionReport:
    """Convert a CASME folder; ``cropped`` reads the corpus's aligned crops (``Cropped/``) instead of the raw frames."""
    return run_conversion(SPEC, root, out, with_frames=with_frames, cropped=cropped, progress=progress,
                          annotation=annotation, overwrite=overwrite)
