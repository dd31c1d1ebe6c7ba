"""4DME (Li et al., 2022): 267 micro-expressions of 41 subjects; the 2D grey-scale videos are converted (CD6ME's
"fourd"). The corpus name is ``4dme``; a module name cannot start with a digit.

Layout, as MEB's loader reads the corpus::

    4DME_Labelling_Micro_release v1.xlsx     the first sheet
    gray_micro/<sub_ID>/<fold_name>/...      grey-scale frames by number
    gray_micro_crop/<sub_ID>/<fold_name>/... face crops (``cropped=True``)

Columns read: ``sub_ID`` (used as the folder name, matched without case), ``fold_name`` (the clip folder),
``Onset``, ``Apex``, ``Offset`` (Excel may store them as 4.0), ``AUs`` and, when present, ``Emotion``; the sheet's
per-emotion 0/1 columns (Positive, Negative, Surprise, Repression, Others) and its eye-blink column are not read.
AUs marked ``(k)`` (``AU4(k)``) are not counted, as MEB does not count them; the AU parser reports each as a
fragment it did not read, so the report lists them row by row. What ``(k)`` means was not found in anything read
here. Not confirmed from the release itself: the frame file names (the last number in a name is its frame number,
see :mod:`.clips`; frames numbered per clip from 1 would refuse every row, with the folder's numbering named) and
the crop folder's name (MEB's own path, which may be its own crops).
"""

from __future__ import annotations

from pathlib import Path

from ..au_codes import cell_text
from .clips import folders_by_name, numbered_frames, one_folder
from .common import ConversionReport, CorpusSpec, FrameLocator, run_conversion
from .files import find_dir, find_file

COLUMNS = {
    "subject": "sub_ID",
    "filename": "fold_name",
    "onset": "Onset",
    "apex": "Apex",
    "offset": "Offset",
    "aus": "AUs",
}
OPTIONAL_COLUMNS = {"emotion": "Emotion", "objective_class": "Objective Classes"}


def find_annotation(root: Path) -> Path:
    return find_file(root, "4DME_Labelling_Micro*.xlsx", depth=3)


def frame_locator(root: Path, cropped: bool) -> FrameLocator:
    top = find_dir(root, "gray_micro_crop" if cropped else "gray_micro", depth=3)
    subjects = folders_by_name([top])

    def clip_folder(subject: str, filename: str) -> Path:
        clips = folders_by_name([one_folder(subjects, subject, str(top))])
        return one_folder(clips, filename, f"{top}/{subject}")

    return numbered_frames(clip_folder)


def normalise_subject(value: object) -> str:
    """The cell as written (it names the subject's folder); an empty cell is refused."""
    text = cell_text(value)
    if not text:
        raise ValueError("the sub_ID cell is empty")
    return text


SPEC = CorpusSpec("4dme", None, COLUMNS, OPTIONAL_COLUMNS, find_annotation, frame_locator, normalise_subject)


def convert(root: str | Path, out: str | Path, *, with_frames: bool = False, cropped: bool = False,
            progress: bool = True, annotation: str | Path | None = None, overwrite: bool = False) -> ConversionReport:
    """Convert a 4DME folder (its micro-expression sheet and 2D grey-scale frames)."""
    return run_conversion(SPEC, root, out, with_frames=with_frames, cropped=cropped, progress=progress,
                          annotation=annotation, overwrite=overwrite)
