"""CASME II (Yan et al., 2014): 255 samples of 26 subjects, 200 fps, colour.

Layout, as the corpus ships it::

    CASME2-coding-20140508.xlsx            sheet "Sheet1"; later copies carry a later date, the latest is used
    CASME2_RAW_selected/sub01/EP02_01f/img46.jpg
    Cropped/sub01/EP02_01f/reg_img46.jpg   the aligned crops (``cropped=True``)

Header: ``Subject | Filename | | OnsetFrame | ApexFrame | OffsetFrame | | Action Units | Estimated Emotion``, some
copies add ``Objective Classes``. ``ApexFrame`` is ``/`` where the coders gave none.
"""

from __future__ import annotations

from pathlib import Path

from .common import ConversionReport, CorpusSpec, FrameLocator, run_conversion, subject_number
from .files import find_dir, find_file

COLUMNS = {
    "subject": "Subject",
    "filename": "Filename",
    "onset": "OnsetFrame",
    "apex": "ApexFrame",
    "offset": "OffsetFrame",
    "aus": "Action Units",
    "emotion": "Estimated Emotion",
}
OPTIONAL_COLUMNS = {"objective_class": "Objective Classes"}


def find_annotation(root: Path) -> Path:
    return find_file(root, "CASME2-coding-*.xlsx")


def frame_locator(root: Path, cropped: bool) -> FrameLocator:
    folder = find_dir(root, "Cropped" if cropped else "CASME2_RAW_selected", holds=r"sub\d+")
    prefix = "reg_img" if cropped else "img"
    return lambda subject, filename, frame: folder / f"sub{subject}" / filename / f"{prefix}{frame}.jpg"


def normalise_subject(value: object) -> str:
    """``1``, ``"1"``, ``"01"`` and ``"sub01"`` all give ``"01"``, the folder's number."""
    return f"{subject_number(value):02d}"


SPEC = CorpusSpec("casme2", "Sheet1", COLUMNS, OPTIONAL_COLUMNS, find_annotation, frame_locator, normalise_subject)


def convert(root: str | Path, out: str | Path, *, with_frames: bool = False, cropped: bool = False,
            progress: bool = True, annotation: str | Path | None = None, overwrite: bool = False) -> ConversionReport:
    """Convert a CASME II folder; ``cropped`` reads the corpus's own aligned crops instead of the raw frames."""
    return run_conversion(SPEC, root, out, with_frames=with_frames, cropped=cropped, progress=progress,
                          annotation=annotation, overwrite=overwrite)
