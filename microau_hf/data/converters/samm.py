"""SAMM (Davison et al., 2018): 159 micro-movements of 32 subjects, 200 fps, grayscale.

Layout, as the corpus ships it::

    SAMM_Micro_FACS_Codes_v2.xlsx     sheet "MICRO_ONLY": 13 preamble rows, then the header
    SAMM/006/006_1_2/006_05562.jpg    subject folder, clip folder, frames numbered with five digits

Header: ``Subject | Filename | Inducement Code | Onset Frame | Apex Frame | Offset Frame | Duration | Micro |
Action Units | Estimated Emotion | Objective Classes | Notes``. ``Apex Frame`` is ``-1`` where it is unknown.
SAMM ships no aligned crops, so ``cropped=True`` is refused: align with :mod:`microau_hf.face` instead.
"""

from __future__ import annotations

from pathlib import Path

from .common import ConversionReport, CorpusSpec, FrameLocator, run_conversion, subject_number
from .files import find_dir, find_file

COLUMNS = {
    "subject": "Subject",
    "filename": "Filename",
    "onset": "Onset Frame",
    "apex": "Apex Frame",
    "offset": "Offset Frame",
    "aus": "Action Units",
    "emotion": "Estimated Emotion",
}
OPTIONAL_COLUMNS = {"objective_class": "Objective Classes"}


def find_annotation(root: Path) -> Path:
    return find_file(root, "SAMM_Micro_FACS_Codes*.xlsx")


def frame_locator(root: Path, cropped: bool) -> FrameLocator:
    if cropped:
        raise ValueError("samm: the corpus ships no aligned crops; convert with cropped=False and align afterwards")
    folder = find_dir(root, "SAMM", holds=r"\d{3}")
    return lambda subject, filename, frame: folder / subject / filename / f"{subject}_{frame:05d}.jpg"


def normalise_subject(value: object) -> str:
    """``6`` and ``"006"`` both give ``"006"``, the folder's name."""
    return f"{subject_number(value):03d}"


SPEC = CorpusSpec("samm", "MICRO_ONLY", COLUMNS, OPTIONAL_COLUMNS, find_annotation, frame_locator, normalise_subject)


def convert(root: str | Path, out: str | Path, *, with_frames: bool = False, cropped: bool = False,
            progress: bool = True, annotation: str | Path | None = None, overwrite: bool = False) -> ConversionReport:
    """Convert a SAMM folder (the micro-expression sheet only)."""
    return run_conversion(SPEC, root, out, with_frames=with_frames, cropped=cropped, progress=progress,
                          annotation=annotation, overwrite=overwrite)
