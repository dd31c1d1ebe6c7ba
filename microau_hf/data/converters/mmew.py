"""MMEW (Ben et al., 2021): 300 micro-expressions of 36 subjects, 90 fps, colour.

Layout, as MEB's loader reads the corpus::

    MMEW_Micro_Exp.xlsx                          the first sheet
    Micro_Expression/<emotion>/<Filename>/...    clip folders grouped by emotion, frames by number

Header: ``Subject | Filename | OnsetFrame | ApexFrame | OffsetFrame | Action Units | Estimated Emotion | remarks``.
Clip folders sit under an emotion folder, so a clip is found by its ``Filename`` under any emotion folder (a name
under two emotion folders refuses its row, naming both). MEB reads the same ``Micro_Expression`` folder for its
"cropped" and raw MMEW, so these frames are taken to be the release's face crops; ``cropped=True`` reads the same
folder. MEB re-labels MMEW's ``others`` as ``repression`` and replaces 16 apex/offset cells with its own estimates;
neither is done here (labels are kept as coded; an unknown apex is the middle of onset..offset, reported). Not
confirmed from the release itself: the frame file names (the last number in a name is its frame number, see
:mod:`.clips`) and the subject cells' spelling (any form with one number, ``S01`` or ``1``, gives ``"01"``).
"""

from __future__ import annotations

from pathlib import Path

from .clips import folders_by_name, numbered_frames, one_folder
from .common import ConversionReport, CorpusSpec, FrameLocator, run_conversion, subject_number
from .files import find_dir, find_file

COLUMNS = {
    "subject": "Subject",
    "filename": "Filename",
    "onset": "OnsetFrame",
    "apex": "ApexFrame",
    "offset": "OffsetFrame",
    "aus": "Action Units",
}
OPTIONAL_COLUMNS = {"emotion": "Estimated Emotion", "objective_class": "Objective Classes"}


def find_annotation(root: Path) -> Path:
    return find_file(root, "MMEW_Micro_Exp*.xlsx", depth=3)


def frame_locator(root: Path, cropped: bool) -> FrameLocator:
    top = find_dir(root, "Micro_Expression", depth=3)
    clips = folders_by_name([p for p in sorted(top.iterdir()) if p.is_dir()])  # emotion folders -> clip folders
    return numbered_frames(lambda subject, filename: one_folder(clips, filename, f"{top}/<emotion>/"))


def normalise_subject(value: object) -> str:
    """``"S01"``, ``1`` and ``"01"`` all give ``"01"``."""
    return f"{subject_number(value):02d}"


SPEC = CorpusSpec("mmew", None, COLUMNS, OPTIONAL_COLUMNS, find_annotation, frame_locator, normalise_subject)


def convert(root: str | Path, out: str | Path, *, with_frames: bool = False, cropped: bool = False,
            progress: bool = True, annotation: str | Path | None = None, overwrite: bool = False) -> ConversionReport:
    """Convert an MMEW folder (its micro-expression part)."""
    return run_conversion(SPEC, root, out, with_frames=with_frames, cropped=cropped, progress=progress,
                          annotation=annotation, overwrite=overwrite)
