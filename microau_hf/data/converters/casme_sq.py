"""CAS(ME)^2 (Qu et al., 2018), part A: 98 long videos of 22 subjects at 30 fps, with 300 macro- and 57
micro-expressions (the counts of the MEGC 2020 baseline, ``MEGC2020_results.txt``). Named ``casme_sq`` as
SOFTNet (Liong et al., 2021) and the spotting code after it name the corpus folder (``CASME_sq``).

Layout, as the corpus ships it (and as the MEGC 2020 baseline and SOFTNet expect it)::

    CAS(ME)^2code_final.xlsx          later copies: "CAS(ME)^2code_final(Updated).xlsx" (preferred when both)
    rawpic/s15/15_0101disgustingteeth/img1.jpg ...     the long videos' frames, numbered from 1
    rawvideo/, selectedpic/, cropped/ the same videos as .avi, and the expression clips (not used here)

The workbook has three sheets, read by name or, as SOFTNet does, by position:

* ``CASFEcode_final`` (``CASMEcode_final`` in some copies), **no header row**, one expression a row:
  participant | expression ``<name>_<n>`` (``disgust1_1``) | onset | apex | offset | AUs | estimated emotion |
  ``micro-expression`` or ``macro-expression`` | self-reported emotion. Offsets of 0 mean "not annotated": the
  interval ends at the apex, as in the MEGC 2020 baseline (see :mod:`.spotting`).
* ``naming rule1``: subject folder number (15) | subject code | participant number used in the first sheet.
* ``naming rule2``: video code (``0101``, stored as text or as the number 101) | expression name (``disgust1``).

So the row ``1 | disgust1_1 | ...`` belongs to ``rawpic/s15/15_0101*/`` when rule 1 maps participant 1 to 15 and
rule 2 maps ``disgust1`` to ``0101``. Onset, apex and offset are image numbers (``img<n>.jpg``); in the dataset
they are positions into the video's frames sorted by number, i.e. ``n - 1`` for a video numbered 1..N.
Videos are named as the MEGC log files name them: ``15_0101``; subjects as their folders: ``s15``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..au_codes import cell_text
from .common import RowNote, RowRefused, subject_number
from .files import find_dir, find_file, open_workbook
from .spotting import (
    AnnotatedRow,
    SpottingReport,
    SpottingSpec,
    VideoFolder,
    annotated_row,
    spotting_converter,
)

FPS = 30.0
FRAME_PATTERN = re.compile(r"img(\d+)\.jpe?g", re.IGNORECASE)
VIDEO_FOLDER = re.compile(r"(\d+)_(\d{4})")  # "15_0101disgustingteeth": subject number, video code
COLUMNS = ("participant", "expression", "onset", "apex", "offset", "aus", "emotion", "type", "self_report")


def find_annotation(root: Path) -> Path:
    try:
        return find_file(root, "*code_final(updated)*.xlsx")
    except ValueError:
        return find_file(root, "*code_final*.xlsx")


def find_videos(root: Path) -> dict[str, VideoFolder]:
    """Every long video under ``rawpic/``, keyed ``"15_0101"``."""
    rawpic = find_dir(root, "rawpic", holds=r"s\d+")
    videos = {}
    for subject_folder in sorted(p for p in rawpic.iterdir() if p.is_dir() and re.fullmatch(r"s\d+", p.name, re.I)):
        for folder in sorted(p for p in subject_folder.iterdir() if p.is_dir()):
            match = VIDEO_FOLDER.match(folder.name)
            if match:
                key = f"{int(match.group(1))}_{match.group(2)}"
                videos[key] = VideoFolder(f"s{int(match.group(1)):02d}", key, folder)
    if not videos:
        raise ValueError(f"{rawpic}: no video folders like s15/15_0101disgustingteeth found")
    return videos


def read_annotation(path: Path, report: SpottingReport) -> list[AnnotatedRow]:
    """The expressions of the code sheet, placed on videos through the two naming sheets."""
    with open_workbook(path) as book:
        main, rule1, rule2 = _sheet_names(book.sheetnames, path)
        subjects = _subject_table(book[rule1].iter_rows(values_only=True), path, rule1)
        codes = _video_codes(book[rule2].iter_rows(values_only=True), path, rule2)
        rows = []
        for number, values in enumerate(book[main].iter_rows(values_only=True), start=1):
            cells = dict(zip(COLUMNS, tuple(values) + (None,) * len(COLUMNS)))
            if not any(cell_text(v) for v in values) or (number == 1 and _is_header(cells)):
                continue
            report.rows_read += 1
            name = f"{cell_text(cells['participant'])}/{cell_text(cells['expression'])}"
            try:
                rows.append(_row(number, cells, subjects, codes))
            except RowRefused as refusal:
                report.refused.append(RowNote(number, name, refusal.rule, refusal.detail))
        return rows


def _sheet_names(names: list[str], path: Path) -> tuple[str, str, str]:
    def named(key: str, position: int) -> str:
        found = [n for n in names if key in re.sub(r"[\s_]+", "", n).lower()]
        if found:
            return found[0]
        if position < len(names):
            return names[position]
        raise ValueError(f"{path.name}: no sheet {key!r} (sheets: {', '.join(names)}); CAS(ME)^2's workbook has "
                         f"the code sheet, 'naming rule1' and 'naming rule2'")

    return named("codefinal", 0), named("namingrule1", 1), named("namingrule2", 2)


def _subject_table(rows, path: Path, sheet: str) -> dict[int, int]:
    """Participant number (the code sheet's first column) -> subject folder number."""
    table = {}
    for values in rows:
        values = tuple(values) + (None, None, None)
        try:
            participant = subject_number(values[2])
            folder = subject_number(values[0] if cell_text(values[0]) else values[1])
        except ValueError:
            continue  # a header or a note
        table[participant] = folder
    if not table:
        raise ValueError(f"{path.name}: sheet {sheet!r} maps no participant to a subject folder "
                         f"(expected rows like 15 | s15 | 1)")
    return table


def _video_codes(rows, path: Path, sheet: str) -> dict[str, str]:
    """Expression name (``disgust1``) -> video code (``0101``)."""
    table = {}
    for values in rows:
        values = tuple(values) + (None, None)
        code, name = cell_text(values[0]), cell_text(values[1])
        if re.fullmatch(r"\d{1,4}", code) and name:
            table[name.lower()] = code.zfill(4)
    if not table:
        raise ValueError(f"{path.name}: sheet {sheet!r} maps no expression name to a video code "
                         f"(expected rows like 0101 | disgust1)")
    return table


def _is_header(cells: dict) -> bool:
    """A first row whose frame cells are words (some copies add one) is a header, not an expression."""
    return all(re.search(r"[a-z]", cell_text(cells[key]), re.IGNORECASE) for key in ("onset", "apex", "offset"))


def _row(number: int, cells: dict, subjects: dict[int, int], codes: dict[str, str]) -> AnnotatedRow:
    participant = cell_text(cells["participant"])
    try:
        written = subject_number(participant)
    except ValueError:
        raise RowRefused("bad_subject", f"participant {participant!r} has no single number") from None
    # "s15" names the folder itself; a bare number is a participant of naming rule1
    folder = written if participant.lower().startswith("s") else subjects.get(written)
    if folder is None:
        raise RowRefused("bad_subject", f"participant {written} is not in naming rule1")
    expression = cell_text(cells["expression"])
    base = expression.rpartition("_")[0] or expression
    code = codes.get(base.lower())
    if code is None:
        raise RowRefused("unknown_video_name", f"{base!r} (from {expression!r}) is not in naming rule2")
    video = f"{folder}_{code}"
    return annotated_row(number, video, f"{video}/{expression}", cells)


SPEC = SpottingSpec("casme_sq", FPS, FRAME_PATTERN, find_annotation, find_videos, read_annotation)

convert = spotting_converter(SPEC, "Convert a CAS(ME)^2 folder into a long-video spotting dataset "
                                            "(one row per video of ``rawpic/``).")
