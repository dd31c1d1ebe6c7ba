"""Tiny corpora in the exact layouts of CASME II, SAMM and CAS(ME)^3, for tests and benchmarks.

The real corpora cannot be shipped, so these builders write the same spreadsheets (sheet names, preambles, headers,
blank columns) and the same frame folders, with small JPEGs. Every frame is one flat grey level derived from its
frame number (:func:`frame_level`), so a test can tell from the pixels which frame a converter picked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import openpyxl
from PIL import Image

FRAME_SIZE = 64


@dataclass
class FixtureRow:
    """One annotation row, with cells written exactly as given (``"/"``, ``4.0``, ``"spNo.1"`` stay as they are)."""

    subject: object
    filename: str
    onset: object
    apex: object
    offset: object
    aus: object = "12"
    emotion: str = "happiness"
    objective_class: object = None
    missing_frames: tuple[int, ...] = ()  # frames of onset..offset whose files are not written


def frame_level(frame: int) -> int:
    """The grey level of a fixture frame: distinct for neighbouring frames, far from JPEG's rounding."""
    return (frame * 17) % 200 + 20


def write_frame(path: Path, frame: int, *, gray: bool = False, size: int = FRAME_SIZE) -> None:
    level = frame_level(frame)
    image = Image.new("L", (size, size), level) if gray else Image.new("RGB", (size, size), (level, level, level))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=95)


def _write_frames(row: FixtureRow, folder: Path, name: str, *, gray: bool = False, size: int = FRAME_SIZE) -> None:
    """Frames onset..offset of ``row`` into ``folder``; ``name`` formats a frame number into a file name."""
    if not (isinstance(row.onset, int) and isinstance(row.offset, int)):
        return
    for frame in range(row.onset, row.offset + 1):
        path = folder / name.format(frame)
        if frame not in row.missing_frames and not path.exists():
            write_frame(path, frame, gray=gray, size=size)


def _write_sheet(path: Path, sheet: str, header: list, rows: list[list], preamble: list[list] = (), drop_column=None):
    """An xlsx with ``preamble`` rows, then ``header``, then ``rows``; ``drop_column`` leaves one column out."""
    book = openpyxl.Workbook()
    book.active.title = sheet
    keep = [i for i, name in enumerate(header) if name != drop_column or name is None]
    for line in preamble:
        book.active.append(line)
    book.active.append([header[i] for i in keep])
    for values in rows:
        book.active.append([values[i] for i in keep])
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def _number(subject: object) -> int:
    return int("".join(c for c in str(subject) if c.isdigit()))


# ----------------------------------------------------------------------------------------------------------------
# CASME II
# ----------------------------------------------------------------------------------------------------------------

CASME2_HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
                 "Estimated Emotion"]


def casme2_rows() -> list[FixtureRow]:
    return [
        FixtureRow("01", "EP02_01f", 46, 49, 52, "12", "happiness", 1),
        FixtureRow(2, "EP03_02", 10, 12, 14, "L12+R14A", "Repression", "VII"),
        FixtureRow("04", "EP12_01f", 20, 23, 25, "4+7", "Disgust"),
    ]


def build_casme2(root: Path, rows: list[FixtureRow] | None = None, *, cropped: bool = False,
                 objective_column: bool = True, drop_column: str | None = None,
                 coding_name: str = "CASME2-coding-20140508.xlsx", size: int = FRAME_SIZE) -> Path:
    """A CASME II folder: the coding sheet plus ``CASME2_RAW_selected/`` (or ``Cropped/`` with ``reg_img``)."""
    rows = casme2_rows() if rows is None else rows
    header = CASME2_HEADER + (["Objective Classes"] if objective_column else [])
    cells = [[r.subject, r.filename, None, r.onset, r.apex, r.offset, None, r.aus, r.emotion]
             + ([r.objective_class] if objective_column else []) for r in rows]
    _write_sheet(root / coding_name, "Sheet1", header, cells, drop_column=drop_column)
    top, prefix = ("Cropped", "reg_img") if cropped else ("CASME2_RAW_selected", "img")
    for row in rows:
        folder = root / top / f"sub{_number(row.subject):02d}" / row.filename
        _write_frames(row, folder, prefix + "{}.jpg", size=size)
    return root


# ----------------------------------------------------------------------------------------------------------------
# SAMM
# ----------------------------------------------------------------------------------------------------------------

SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
               "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]
SAMM_PREAMBLE = (  # 13 rows before the header, as in the corpus
    [["SAMM: Spontaneous Actions and Micro-Movements"], ["FACS codes of the micro-movements"]]
    + [[]] * 10
    + [["Micro-expressions only"]]
)


def samm_rows() -> list[FixtureRow]:
    return [
        FixtureRow("006", "006_1_2", 5562, 5564, 5567, "4+7", "Anger", 3),
        FixtureRow(7, "007_3_1", 120, 122, 124, "R12A+R14A", "Contempt", "VII"),
        FixtureRow("011", "011_2_3", 300, 301, 303, "A1B+A2C", "Surprise", "II"),
    ]


def build_samm(root: Path, rows: list[FixtureRow] | None = None, *, drop_column: str | None = None,
               size: int = FRAME_SIZE) -> Path:
    """A SAMM folder: ``SAMM_Micro_FACS_Codes_v2.xlsx`` and grayscale ``SAMM/006/006_1_2/006_05562.jpg`` frames."""
    rows = samm_rows() if rows is None else rows
    cells = []
    for r in rows:
        duration = r.offset - r.onset + 1 if isinstance(r.onset, int) and isinstance(r.offset, int) else None
        cells.append([r.subject, r.filename, "1", r.onset, r.apex, r.offset, duration, "Micro", r.aus, r.emotion,
                      r.objective_class, None])
    _write_sheet(root / "SAMM_Micro_FACS_Codes_v2.xlsx", "MICRO_ONLY", SAMM_HEADER, cells,
                 preamble=SAMM_PREAMBLE, drop_column=drop_column)
    for row in rows:
        subject = f"{_number(row.subject):03d}"
        _write_frames(row, root / "SAMM" / subject / row.filename, subject + "_{:05d}.jpg", gray=True, size=size)
    return root


# ----------------------------------------------------------------------------------------------------------------
# CAS(ME)^3 part A
# ----------------------------------------------------------------------------------------------------------------

CASME3_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
CASME3_FRAMES = Path("part_A") / "data" / "part_A"


def casme3_rows() -> list[FixtureRow]:
    return [
        FixtureRow("spNO.1", "a", 140, 142, 145, "R12+L10", "happy", "I"),
        FixtureRow("spNO.1", "a", 300, 301, 303, "4", "disgust", "IV"),
        FixtureRow("spNO.2", "b", 30, 31, 33, "1+2", "surprise", "II"),
    ]


def build_casme3(root: Path, rows: list[FixtureRow] | None = None, *, subject_folder: str = "spNO.{}",
                 drop_column: str | None = None, size: int = FRAME_SIZE) -> Path:
    """A CAS(ME)^3 part A folder; ``subject_folder`` spells the subject folders (the corpus has ``spNo.1`` too)."""
    rows = casme3_rows() if rows is None else rows
    cells = [[r.subject, r.filename, r.onset, r.apex, r.offset, r.aus, r.objective_class, r.emotion] for r in rows]
    _write_sheet(root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", "label", CASME3_HEADER, cells,
                 drop_column=drop_column)
    for row in rows:
        folder = root / CASME3_FRAMES / subject_folder.format(_number(row.subject)) / row.filename / "color"
        _write_frames(row, folder, "{}.jpg", size=size)
    return root


# ----------------------------------------------------------------------------------------------------------------
# CASME, MMEW and 4DME (the other three corpora of MEB's CD6ME; layouts as MEB's loader reads them)
# ----------------------------------------------------------------------------------------------------------------

CASME_HEADER = ["Subject", "Filename", None, "OnsetF", "ApexF1", "ApexF2", "OffsetF", None, "AU", "Emotion"]


def casme_rows() -> list[FixtureRow]:
    return [
        FixtureRow(1, "EP01_5", 10, 13, 16, "4+9", "disgust"),
        FixtureRow(3, "EP08_2", 40, 42, 44, "1+2", "surprise"),
        FixtureRow("07", "EP12_3", 5, "/", 9, "R12", "happiness"),  # apex unknown: the middle, flagged
    ]


def build_casme(root: Path, rows: list[FixtureRow] | None = None, *, cropped: bool = False,
                drop_column: str | None = None, size: int = FRAME_SIZE) -> Path:
    """A CASME folder: ``casme.xlsx`` (as MEB names its copy) and ``CASME_raw_selected/sub01/EP01_5/`` frames named
    ``EP01_5-<n>.jpg`` (the last number is the frame number; or ``Cropped/`` with ``cropped``)."""
    rows = casme_rows() if rows is None else rows
    cells = [[r.subject, r.filename, None, r.onset, r.apex, None, r.offset, None, r.aus, r.emotion] for r in rows]
    _write_sheet(root / "casme.xlsx", "Sheet1", CASME_HEADER, cells, drop_column=drop_column)
    top = "Cropped" if cropped else "CASME_raw_selected"
    for row in rows:
        folder = root / top / f"sub{_number(row.subject):02d}" / row.filename
        _write_frames(row, folder, row.filename + "-{}.jpg", size=size)
    return root


MMEW_HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion",
               "remarks"]


def mmew_rows() -> list[FixtureRow]:
    return [
        FixtureRow("S01", "S01_happiness_1", 3, 6, 9, "6+12", "happiness"),
        FixtureRow("S02", "S02_surprise_1", 1, 3, 5, "1+2+5", "surprise"),
        FixtureRow("S03", "S03_others_1", 2, 4, 7, "4", "others"),
    ]


def build_mmew(root: Path, rows: list[FixtureRow] | None = None, *, drop_column: str | None = None,
               size: int = FRAME_SIZE) -> Path:
    """An MMEW folder: ``MMEW_Micro_Exp.xlsx`` and ``MMEW/Micro_Expression/<emotion>/<Filename>/<n>.jpg``."""
    rows = mmew_rows() if rows is None else rows
    cells = [[r.subject, r.filename, r.onset, r.apex, r.offset, r.aus, r.emotion, None] for r in rows]
    _write_sheet(root / "MMEW_Micro_Exp.xlsx", "Sheet1", MMEW_HEADER, cells, drop_column=drop_column)
    for row in rows:
        _write_frames(row, root / "MMEW" / "Micro_Expression" / row.emotion / row.filename, "{}.jpg", size=size)
    return root


FOURDME_HEADER = ["sub_ID", "fold_name", "Onset", "Apex", "Offset", "AUs", "eye blink", "Emotion", "Positive",
                  "Negative", "Surprise", "Repression", "Others"]


def fourdme_rows() -> list[FixtureRow]:
    return [
        FixtureRow("S01", "S01_M01", 100.0, 103.0, 106.0, "AU12+AU14(k)", "Positive"),  # (k): not counted, reported
        FixtureRow("S01", "S01_M02", 20, 22, 25, "AU4+AU7", "Negative"),
        FixtureRow("s05", "S05_M01", 7, 9, 11, "AU1+AU2", "Surprise"),
    ]


def build_fourdme(root: Path, rows: list[FixtureRow] | None = None, *, drop_column: str | None = None,
                  size: int = FRAME_SIZE) -> Path:
    """A 4DME folder: ``4DME_Labelling_Micro_release v1.xlsx`` and grey ``gray_micro/<sub_ID>/<fold_name>/`` frames
    named ``img<nnnn>.jpg``; subject folders upper case, whatever case the sheet uses."""
    rows = fourdme_rows() if rows is None else rows
    cells = [[r.subject, r.filename, r.onset, r.apex, r.offset, r.aus, 0, r.emotion, 0, 0, 0, 0, 0] for r in rows]
    _write_sheet(root / "4DME_Labelling_Micro_release v1.xlsx", "Sheet1", FOURDME_HEADER, cells,
                 drop_column=drop_column)
    for row in rows:
        whole = FixtureRow(row.subject, row.filename, int(row.onset), row.apex, int(row.offset),
                           missing_frames=row.missing_frames)
        folder = root / "gray_micro" / str(row.subject).upper() / row.filename
        _write_frames(whole, folder, "img{:04d}.jpg", gray=True, size=size)
    return root


# ----------------------------------------------------------------------------------------------------------------
# Bigger corpora for the benchmark
# ----------------------------------------------------------------------------------------------------------------

BUILDERS = {"casme2": build_casme2, "samm": build_samm, "casme3": build_casme3}
_AU_CODES = ["12", "L12+R14A", "4+7", "1+2", "A1B+A2C", "R12 or R14", "10A/B", "T23", "B18+25", "ref(7B)", "4+7+43"]


def many_rows(corpus: str, n: int, *, span: int = 5) -> list[FixtureRow]:
    """``n`` clean rows over a handful of subjects, cycling through real AU notations; ``span`` frames each."""
    rows = []
    for i in range(n):
        number = i % 10 + 1
        subject = {"casme2": f"{number:02d}", "samm": f"{number:03d}", "casme3": f"spNO.{number}"}[corpus]
        filename = {"casme2": f"EP{i:03d}_01", "samm": f"{number:03d}_{i}_1", "casme3": "a"}[corpus]
        onset = 10 + i * span if corpus == "casme3" else 10
        rows.append(FixtureRow(subject, filename, onset, onset + span // 2, onset + span - 1,
                               _AU_CODES[i % len(_AU_CODES)], "happiness", i % 7 + 1))
    return rows


def build_corpus(corpus: str, root: Path, n: int, *, span: int = 5, size: int = FRAME_SIZE) -> Path:
    """A corpus of ``n`` rows in the layout of ``corpus`` (``"casme2"``, ``"samm"`` or ``"casme3"``)."""
    return BUILDERS[corpus](root, many_rows(corpus, n, span=span), size=size)
