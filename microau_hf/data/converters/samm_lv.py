"""SAMM Long Videos (Yap et al., 2020): 147 long videos of 32 subjects at 200 fps, grayscale, with 343 macro- and
159 micro-movements (the counts of the MEGC 2020 baseline, ``MEGC2020_results.txt``).

Layout, as the corpus ships it (and as the MEGC 2020 baseline and SOFTNet expect it)::

    SAMM_LongVideos_V3_Release.xlsx    V1 and V2 copies too; the latest version found is used
    SAMM_longvideos/006_1/006_1_0001.jpg ...   one folder per video, frames numbered from 1 (five digits where a
                                               video has more than 9999 frames)

Sheet ``FACS_Movement_Only`` (the first sheet where a copy names it otherwise): 9 rows of preamble, the header on
row 10, one movement a row from row 11 (the MEGC 2020 baseline skips rows 0..9; pandas users pass
``skiprows=9``). Header: ``Subject | Filename | Inducement Code | Onset | Apex | Offset | Duration | Type |
Action Units | Notes``. ``Filename`` is ``<subject>_<video>_<n>`` (``006_1_2``: video ``006_1``); ``Type`` is
``Micro - 1/2`` or ``Macro``. Some frame numbers are stored as floats (rounded half up, as the baseline does);
onsets of 0 mean "not annotated" and start at the apex; apexes of -1 or outside the interval are estimated (see
:mod:`.spotting`). The sheet has no emotion column: ``emotion`` is "" unless a copy adds ``Estimated Emotion``.

Onset, apex and offset are image numbers (``006_1_<n>.jpg``); in the dataset they are positions into the video's
frames sorted by number, i.e. ``n - 1`` for a video numbered 1..N. Videos are named as their folders (``006_1``),
subjects by their three digits (``006``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..au_codes import cell_text
from .common import RowNote, RowRefused, subject_number
from .files import find_dir, find_file, open_workbook, read_sheet
from .spotting import (
    AnnotatedRow,
    SpottingReport,
    SpottingSpec,
    VideoFolder,
    annotated_row,
    spotting_converter,
)

FPS = 200.0
SHEET = "FACS_Movement_Only"
FRAME_PATTERN = re.compile(r".+_(\d+)\.jpe?g", re.IGNORECASE)  # the number after the last "_"
VIDEO_FOLDER = re.compile(r"(\d+)_(\d+)")
COLUMNS = {
    "subject": "Subject",
    "filename": "Filename",
    "onset": "Onset",
    "apex": "Apex",
    "offset": "Offset",
    "type": "Type",
    "aus": "Action Units",
}
OPTIONAL_COLUMNS = {"emotion": "Estimated Emotion"}


def find_annotation(root: Path) -> Path:
    return find_file(root, "SAMM_LongVideos_V*.xlsx")


def find_videos(root: Path) -> dict[str, VideoFolder]:
    """Every long video under ``SAMM_longvideos/``, keyed ``"006_1"``."""
    top = find_dir(root, "SAMM_longvideos", holds=VIDEO_FOLDER.pattern)
    videos = {}
    for folder in sorted(p for p in top.iterdir() if p.is_dir()):
        match = VIDEO_FOLDER.fullmatch(folder.name)
        if match:
            key = _video_key(match.group(1), match.group(2))
            videos[key] = VideoFolder(key.split("_")[0], key, folder)
    if not videos:
        raise ValueError(f"{top}: no video folders like 006_1 found")
    return videos


def _video_key(subject: str, video: str) -> str:
    return f"{int(subject):03d}_{int(video)}"


def read_annotation(path: Path, report: SpottingReport) -> list[AnnotatedRow]:
    """The movements of the sheet; a row whose cells cannot be read is refused in the report."""
    with open_workbook(path) as book:
        names = book.sheetnames
    sheet = next((n for n in names if n.lower() == SHEET.lower()), names[0])
    rows = []
    for sheet_row in read_sheet(path, sheet, COLUMNS, OPTIONAL_COLUMNS):
        cells = sheet_row.cells
        report.rows_read += 1
        name = cell_text(cells["filename"]) or f"row {sheet_row.number}"
        try:
            rows.append(_row(sheet_row.number, cells))
        except RowRefused as refusal:
            report.refused.append(RowNote(sheet_row.number, name, refusal.rule, refusal.detail))
    return rows


def _row(number: int, cells: dict) -> AnnotatedRow:
    filename = cell_text(cells["filename"])
    parts = re.fullmatch(r"(\d+)_(\d+)(?:_.*)?", filename)
    if not parts:
        raise RowRefused("missing_filename", f"Filename {filename!r} is not <subject>_<video>_<n>")
    video = _video_key(parts.group(1), parts.group(2))
    try:
        subject = subject_number(cells["subject"])
    except ValueError as error:
        raise RowRefused("bad_subject", str(error)) from None
    if f"{subject:03d}" != video.split("_")[0]:
        raise RowRefused("bad_subject", f"Subject {subject} but Filename {filename!r}")
    return annotated_row(number, video, f"{video}/{filename}", cells)


SPEC = SpottingSpec("samm_lv", FPS, FRAME_PATTERN, find_annotation, find_videos, read_annotation)

convert = spotting_converter(SPEC, "Convert a SAMM Long Videos folder into a long-video spotting "
                                            "dataset (one row per video folder).")
