"""What every corpus converter shares: the row rules, the report, and the run from spreadsheet to dataset.

A corpus module only says where its files are and what its columns are called (a :class:`CorpusSpec`); the rules
that turn a spreadsheet row into a contract row live here, once, so the three corpora cannot drift apart:

* a row without an apex gets the middle of onset..offset, flagged ``apex_estimated`` and reported as *repaired*;
* a row whose frame files are missing is *refused* and reported, never written with a hole;
* AU fragments the parser cannot read, and choices it made, are reported as repairs; the row keeps what was read;
* a repeated subject/filename gets ``#2``, ``#3``... in the order of the sheet, so ids stay stable between runs.

Frames are decoded with PIL to prove they are readable, and their original bytes are stored: re-encoding would add
JPEG artefacts as large as the micro-movements the model looks for. Finding files and reading the spreadsheet
live in :mod:`.files`, the atomic write in :mod:`.writing`.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image as PILImage

from ..au_codes import ParsedAUs, cell_text, parse_au_code
from .files import Header, SheetRow, read_sheet
from ...atomic import check_replaceable
from .writing import write_atomically

#: Values a frame or class cell holds when the corpus does not know it.
UNKNOWN = frozenset({"", "/", "-", "none", "n/a", "na", "nan", "unknown", "-1"})
REPORT_NAME = "conversion_report.json"

FrameLocator = Callable[[str, str, int], Path]  # (subject, filename, frame number) -> image path

_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7}
_EMOTIONS = {
    "happy": "happiness", "sad": "sadness", "angry": "anger", "surprised": "surprise", "disgusted": "disgust",
    "fearful": "fear", "afraid": "fear", "contemptuous": "contempt", "other": "others",
}


# -------------------------------------------------------------------------------------------------------------
# The report
# -------------------------------------------------------------------------------------------------------------


@dataclass
class RowNote:
    """One row's repair or refusal. ``row`` is the row number Excel shows, so a user can find it."""

    row: int
    sample: str
    rule: str
    detail: str = ""


@dataclass
class ConversionReport:
    """What a conversion did with every row: written as is, repaired (and how), or refused (and why)."""

    corpus: str
    annotation: str
    out: str
    #: The annotation file's SHA-256, so an evaluation can record which copy of the corpus's labels it scored on.
    annotation_sha256: str = ""
    #: None: every AU is stored as the corpus coded it. A list: only these AUs were labelled (the synthetic corpora),
    #: so an AU outside it is unknown, not absent, and a protocol over other AUs must refuse the corpus.
    aus_labelled: list[int] | None = None
    rows_read: int = 0
    rows_written: int = 0
    repaired: list[RowNote] = field(default_factory=list)
    refused: list[RowNote] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        summary = {
            "rows_repaired": len({note.row for note in self.repaired}),
            "rows_refused": len(self.refused),
            "repairs_by_rule": dict(Counter(note.rule for note in self.repaired)),
            "refusals_by_reason": dict(Counter(note.rule for note in self.refused)),
        }
        return {**asdict(self), **summary}

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    def summary(self) -> str:
        """A few lines for the command line; the JSON file has every row."""
        data = self.to_dict()
        lines = [
            f"{self.corpus}: {self.rows_read} rows read, {self.rows_written} written, "
            f"{data['rows_repaired']} repaired, {data['rows_refused']} refused ({self.seconds:.1f} s) -> {self.out}"
        ]
        lines += [f"  repaired ({rule}): {n}" for rule, n in data["repairs_by_rule"].items()]
        lines += [f"  refused ({reason}): {n}" for reason, n in data["refusals_by_reason"].items()]
        return "\n".join(lines)


class RowRefused(Exception):
    """Raised while planning or writing a row that cannot be converted; becomes a report entry."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule, self.detail = rule, detail


# -------------------------------------------------------------------------------------------------------------
# Cell values
# -------------------------------------------------------------------------------------------------------------


def parse_frame(value: object) -> int | None:
    """A frame number; None when the corpus marks it unknown (``/``, ``-1``, empty); ValueError for other text."""
    text = cell_text(value)
    if text.lower() in UNKNOWN:
        return None
    if not re.fullmatch(r"\d+", text):
        raise ValueError(f"frame {text!r} is not a number")
    return int(text)


def parse_objective_class(value: object) -> int | None:
    """Davison's objective class from ``3``, ``"III"`` or ``"Class III"``; None when absent, ValueError otherwise."""
    text = re.sub(r"^class\s*", "", cell_text(value), flags=re.IGNORECASE).upper()
    if text.lower() in UNKNOWN:
        return None
    number = int(text) if text.isdigit() else _ROMAN.get(text)
    if number not in _ROMAN.values():
        raise ValueError(f"objective class {cell_text(value)!r} is not 1..7 or I..VII")
    return number


def normalise_emotion(value: object) -> str:
    """Lower case, one spelling per emotion (``Happy`` and ``happiness`` both give ``happiness``)."""
    text = re.sub(r"\s+", " ", cell_text(value)).lower()
    return _EMOTIONS.get(text, text)


def subject_number(value: object) -> int:
    """The number in a subject cell: ``1``, ``"01"``, ``"sub01"`` and ``"spNO.1"`` all give 1."""
    digits = re.findall(r"\d+", cell_text(value))
    if len(digits) != 1:
        raise ValueError(f"subject {cell_text(value)!r} has no single number")
    return int(digits[0])


# -------------------------------------------------------------------------------------------------------------
# From rows to samples
# -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusSpec:
    """Everything corpus-specific: where the files are and what the columns are called.

    ``columns`` and ``optional_columns`` map our field names (subject, filename, onset, apex, offset, aus, emotion,
    objective_class) to the header text of the corpus's sheet.
    """

    name: str
    sheet: str | None  # None: the first sheet
    columns: Mapping[str, Header]
    optional_columns: Mapping[str, Header]
    find_annotation: Callable[[Path], Path]
    frame_locator: Callable[[Path, bool], FrameLocator]
    normalise_subject: Callable[[object], str]


@dataclass
class Sample:
    """A row that passed every check, with the paths of the frames it needs."""

    row: int
    subject: str
    sample_id: str
    onset: int
    apex: int
    offset: int
    apex_estimated: bool
    aus: ParsedAUs
    emotion: str
    objective_class: int | None
    frames: dict[int, Path]


def plan_samples(spec: CorpusSpec, rows: list[SheetRow], locate: FrameLocator, with_frames: bool,
                 report: ConversionReport) -> list[Sample]:
    """Check every row before any image is read, so a bad row costs nothing and is reported with its reason."""
    samples, occurrences = [], Counter()
    for row in rows:
        notes: list[RowNote] = []
        try:
            sample = _plan_row(spec, row, locate, with_frames, occurrences, notes)
        except RowRefused as refusal:
            report.refused.append(RowNote(row.number, _row_name(row), refusal.rule, refusal.detail))
            continue
        report.repaired.extend(notes)
        samples.append(sample)
    return samples


def _plan_row(spec, row, locate, with_frames, occurrences, notes) -> Sample:
    cells = row.cells
    try:
        subject = spec.normalise_subject(cells["subject"])
    except ValueError as error:
        raise RowRefused("bad_subject", str(error)) from None
    filename = cell_text(cells["filename"])
    if not filename:
        raise RowRefused("missing_filename", "the Filename cell is empty")
    sample_id = f"{subject}/{filename}"
    occurrences[sample_id] += 1
    if occurrences[sample_id] > 1:
        sample_id += f"#{occurrences[sample_id]}"
        notes.append(RowNote(row.number, sample_id, "duplicate_filename", f"{filename!r} repeats within {subject}"))

    onset, apex, offset, estimated = _frame_numbers(cells, row.number, sample_id, notes)
    aus = parse_au_code(cells["aus"])
    if aus.unreadable:
        detail = f"{aus.raw!r}: could not read {list(aus.unreadable)}"
        if not aus.aus:  # nothing readable: stored, it would train as a face with no AU at all
            raise RowRefused("au_unreadable", detail + "; no AU could be read, so the row is left out")
        notes.append(RowNote(row.number, sample_id, "au_unreadable", detail))
    if aus.not_in_catalogue:
        detail = (f"{aus.raw!r}: AU {', '.join(map(str, aus.not_in_catalogue))} not in the AU catalogue; stored as "
                  f"coded, but no model detects it")
        notes.append(RowNote(row.number, sample_id, "au_not_in_catalogue", detail))
    notes += [RowNote(row.number, sample_id, "au_resolved", r.describe()) for r in aus.resolved]
    try:
        objective = parse_objective_class(cells.get("objective_class"))
    except ValueError as error:
        objective = None
        notes.append(RowNote(row.number, sample_id, "objective_class_unreadable", f"{error}; stored as null"))

    numbers = range(onset, offset + 1) if with_frames else (onset, apex)
    frames = {n: locate(subject, filename, n) for n in numbers}
    missing = [path for path in frames.values() if not path.is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise RowRefused("missing_frame", f"{missing[0]}{more}")
    return Sample(row.number, subject, sample_id, onset, apex, offset, estimated, aus,
                  normalise_emotion(cells.get("emotion")), objective, frames)


def _frame_numbers(cells: dict, row: int, sample_id: str, notes: list[RowNote]) -> tuple[int, int, int, bool]:
    """Onset, apex, offset and whether the apex was estimated; refuses rows whose span is unknown or reversed."""
    try:
        onset, offset = parse_frame(cells["onset"]), parse_frame(cells["offset"])
    except ValueError as error:
        raise RowRefused("bad_frame_number", str(error)) from None
    if onset is None or offset is None:
        raise RowRefused("bad_frame_number", "onset or offset frame missing")
    if offset < onset:
        raise RowRefused("bad_frame_number", f"offset {offset} is before onset {onset}")
    try:
        apex = parse_frame(cells["apex"])
    except ValueError:
        apex = None
    if apex is None:
        apex = (onset + offset) // 2
        notes.append(RowNote(row, sample_id, "apex_estimated",
                             f"apex {cell_text(cells['apex'])!r} unknown: middle of {onset}..{offset} = {apex}"))
        return onset, apex, offset, True
    if not onset <= apex <= offset:
        raise RowRefused("bad_frame_number", f"apex {apex} outside onset..offset {onset}..{offset}")
    return onset, apex, offset, False


def _row_name(row: SheetRow) -> str:
    return f"{cell_text(row.cells.get('subject'))}/{cell_text(row.cells.get('filename'))}"


# -------------------------------------------------------------------------------------------------------------
# From samples to the dataset
# -------------------------------------------------------------------------------------------------------------


def read_image(path: Path, root: Path) -> dict:
    """The frame's original bytes, after PIL has decoded it fully (a truncated file is refused, not stored)."""
    data = path.read_bytes()
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise RowRefused("unreadable_image", f"{path}: {error}") from None
    return {"bytes": data, "path": path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name}


def sample_rows(spec: CorpusSpec, samples: list[Sample], root: Path, with_frames: bool,
                report: ConversionReport) -> Iterator[dict]:
    """The contract rows; a frame that fails to decode refuses its row here, late but still reported."""
    for sample in samples:
        try:
            images = {n: read_image(path, root) for n, path in sample.frames.items()}
        except RowRefused as refusal:
            report.refused.append(RowNote(sample.row, sample.sample_id, refusal.rule, refusal.detail))
            report.repaired = [note for note in report.repaired if note.row != sample.row]  # refused, not repaired
            continue
        aus = sample.aus
        row = {
            "dataset": spec.name, "subject": sample.subject, "sample_id": sample.sample_id,
            "onset_frame": sample.onset, "apex_frame": sample.apex, "offset_frame": sample.offset,
            "apex_estimated": sample.apex_estimated, "onset": images[sample.onset], "apex": images[sample.apex],
            "aus": list(aus.aus), "au_raw": aus.raw, "laterality": list(aus.laterality),
            "intensity": list(aus.intensity), "emotion": sample.emotion, "objective_class": sample.objective_class,
        }
        if with_frames:
            row["frames"] = [images[n] for n in range(sample.onset, sample.offset + 1)]
        report.rows_written += 1
        yield row


def run_conversion(spec: CorpusSpec, root: str | Path, out: str | Path, *, with_frames: bool = False,
                   cropped: bool = False, progress: bool = True, annotation: str | Path | None = None,
                   overwrite: bool = False) -> ConversionReport:
    """Convert one corpus folder into a ``datasets`` folder at ``out``; the report is saved inside it. An existing
    ``out`` is replaced only with ``overwrite``, and never when it holds files a conversion did not write."""
    start = time.perf_counter()
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"{root}: corpus folder not found")
    out = Path(out).expanduser()
    check_replaceable(out, overwrite)  # fail before the work, not after it
    annotation = Path(annotation) if annotation else spec.find_annotation(root)
    locate = spec.frame_locator(root, cropped)
    rows = read_sheet(annotation, spec.sheet, spec.columns, spec.optional_columns)
    report = ConversionReport(spec.name, str(annotation), str(out), annotation_sha256=file_sha256(annotation),
                              rows_read=len(rows))
    samples = plan_samples(spec, rows, locate, with_frames, report)
    write_atomically(
        lambda: sample_rows(spec, samples, root, with_frames, report),
        out, with_frames=with_frames, total=len(samples), progress=progress, desc=spec.name,
        finish=lambda folder: _finish(report, folder, start), overwrite=overwrite,
    )
    return report


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file, read in blocks (an annotation sheet is small, a frame archive need not be)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _finish(report: ConversionReport, folder: Path, start: float) -> None:
    report.seconds = round(time.perf_counter() - start, 3)
    report.save(folder / REPORT_NAME)
