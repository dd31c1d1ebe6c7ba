"""Tiny long-video corpora in the exact layouts of CAS(ME)^2 and SAMM Long Videos, for the spotting converters.

The workbooks are written as the corpora ship them: CAS(ME)^2's code sheet without a header row beside its two
naming sheets; SAMM-LV's ``FACS_Movement_Only`` sheet with 9 preamble rows before the header. Frames are small
JPEGs numbered from 1 (grey level :func:`fixtures_corpora.frame_level` of the frame number).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import openpyxl
from fixtures_corpora import _write_sheet, write_frame

FRAME_SIZE = 16


@dataclass(frozen=True)
class LongVideo:
    """A long video: ``subject`` and ``code`` name its folder (``s15/15_0101<description>`` for CAS(ME)^2,
    ``006_1`` for SAMM-LV), frames ``1..frames`` are written except ``missing``."""

    subject: int
    code: str
    frames: int
    description: str = "disgustingteeth"
    missing: tuple[int, ...] = ()
    digits: int = 4  # SAMM-LV: zero padding of the frame number


def _write_frames(folder: Path, video: LongVideo, name: str, gray: bool = False) -> None:
    for frame in range(1, video.frames + 1):
        if frame not in video.missing:
            write_frame(folder / name.format(frame), frame, gray=gray, size=FRAME_SIZE)


# ----------------------------------------------------------------------------------------------------------------
# CAS(ME)^2
# ----------------------------------------------------------------------------------------------------------------

CASME_SQ_VIDEOS = (
    LongVideo(15, "0101", 40),
    LongVideo(15, "0401", 30, "angrywhole"),
    LongVideo(16, "0101", 25),
    LongVideo(16, "0401", 12, "angrywhole"),  # no expression annotated in it
)
#: naming rule1: subject folder number | subject code | participant number of the code sheet
CASME_SQ_NAMING1 = ([15, "s15", 1], [16, "s16", 2])
#: naming rule2: video code (text, as the corpus stores it) | expression name
CASME_SQ_NAMING2 = (["0101", "disgust1"], ["0401", "anger1"], ["0502", "happy1"])


def casme_sq_rows() -> list[list]:
    """Code-sheet rows: participant | expression | onset | apex | offset | AUs | emotion | type | self-report."""
    return [
        [1, "disgust1_1", 3, 5, 9, "4+7", "negative", "micro-expression", "disgust"],
        [1, "disgust1_2", 20, 25, 0, "12", "positive", "macro-expression", "happy"],  # offset 0: not annotated
        [1, "anger1_1", 10, 12, 14, "4", "negative", "macro-expression", "anger"],
        [2, "disgust1_1", 2, 4, 6, "L10", "Negative", "micro-expression", "disgust"],
    ]


def build_casme_sq(root: Path, rows: list[list] | None = None, *, videos=CASME_SQ_VIDEOS,
                   naming1=CASME_SQ_NAMING1, naming2=CASME_SQ_NAMING2, code_sheet: str = "CASFEcode_final",
                   header: list | None = None, name: str = "CAS(ME)^2code_final.xlsx") -> Path:
    """A CAS(ME)^2 folder: the three-sheet workbook and ``rawpic/s15/15_0101disgustingteeth/img1.jpg ...``."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = code_sheet
    for values in ([header] if header else []) + (casme_sq_rows() if rows is None else rows):
        sheet.append(values)
    for title, table in (("naming rule1", naming1), ("naming rule2", naming2)):
        if table is not None:
            extra = book.create_sheet(title)
            for values in table:
                extra.append(list(values))
    root.mkdir(parents=True, exist_ok=True)
    book.save(root / name)
    for video in videos:
        folder = root / "rawpic" / f"s{video.subject}" / f"{video.subject}_{video.code}{video.description}"
        _write_frames(folder, video, "img{}.jpg")
    return root


# ----------------------------------------------------------------------------------------------------------------
# SAMM Long Videos
# ----------------------------------------------------------------------------------------------------------------

SAMM_LV_HEADER = ["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration", "Type",
                  "Action Units", "Notes"]
SAMM_LV_PREAMBLE = [["SAMM Long Videos"], ["Macro- and micro-movements, FACS coded"]] + [[]] * 7  # header on row 10
SAMM_LV_VIDEOS = (
    LongVideo(6, "1", 30),
    LongVideo(6, "2", 20),
    LongVideo(7, "3", 15, digits=5),  # frames named 007_3_00001.jpg
)


def samm_lv_rows() -> list[list]:
    """Subject | Filename | Onset | Apex | Offset | Type | Action Units (the other columns are filled in)."""
    return [
        [6, "006_1_1", 5, 7.0, 12, "Micro - 1/2", "R12A"],
        [6, "006_1_2", 0, 20, 28, "Macro", "4+7"],  # onset 0: not annotated
        [6, "006_2_1", 3, -1, 8, "Micro - 1/2", "A1B+A2C"],  # apex unknown
        [7, "007_3_1", 4, 6, 99, "Macro", "12"],  # offset past the last frame (15)
    ]


def build_samm_lv(root: Path, rows: list[list] | None = None, *, videos=SAMM_LV_VIDEOS,
                  name: str = "SAMM_LongVideos_V3_Release.xlsx", drop_column: str | None = None) -> Path:
    """A SAMM-LV folder: the release workbook and grayscale ``SAMM_longvideos/006_1/006_1_0001.jpg ...``."""
    cells = []
    for subject, filename, onset, apex, offset, kind, aus in samm_lv_rows() if rows is None else rows:
        duration = offset - onset + 1 if isinstance(onset, int) and isinstance(offset, int) else None
        cells.append([subject, filename, filename.split("_")[1], onset, apex, offset, duration, kind, aus, None])
    _write_sheet(root / name, "FACS_Movement_Only", SAMM_LV_HEADER, cells, preamble=SAMM_LV_PREAMBLE,
                 drop_column=drop_column)
    for video in videos:
        folder_name = f"{video.subject:03d}_{video.code}"
        _write_frames(root / "SAMM_longvideos" / folder_name, video, folder_name + f"_{{:0{video.digits}d}}.jpg",
                      gray=True)
    return root
