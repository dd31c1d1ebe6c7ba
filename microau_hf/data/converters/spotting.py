"""What the two long-video converters (CAS(ME)^2, SAMM Long Videos) share: frames in order, the interval rules,
the report and the atomic write of a spotting dataset (:mod:`microau_hf.data.spotting_schema`).

A corpus module says where its videos and annotation are and how to read its sheet into :class:`AnnotatedRow`
objects; the rules that place an annotated expression on a video's frames live here, once:

* Frame numbers are the numbers in the image names (``img46.jpg``, ``006_1_0046.jpg``), 1-based as both corpora
  number them. Positions are indexes into the video's frames sorted by that number, so for a folder numbered
  ``1..N`` without gaps, position = number - 1 (a gap is reported, and positions still follow the files).
* An onset or offset of ``0`` (or empty, or negative) was not annotated: it takes the apex. CAS(ME)^2 marks
  unannotated offsets with 0 and the MEGC 2020 baseline sets them to the apex (``CASME_2.py`` in
  github.com/HeyingGithub/Baseline-project-for-MEGC2020_spotting; the MEGC 2019 LBP baseline used
  ``2 * apex - onset`` instead); SAMM Long Videos marks unannotated onsets with 0 (e.g. three macro-expressions of
  ``018_4`` that start "at 0" in the middle of other expressions), and later MEGC code starts them at the apex.
  Each such row is reported as repaired.
* An apex that is unknown (``-1``, empty) or outside onset..offset (SAMM-LV has ``-1069`` and apexes past the
  offset) becomes the middle of the interval, reported; the interval, which is what spotting scores, is kept.
* An offset past the last frame is clamped to it (SAMM-LV ``020_6_5`` ends at frame 5476 of 5001), an onset
  before the first frame likewise; both reported. An onset after the offset, an interval outside the video or a
  frame missing inside the video refuses the row, reported with its Excel row number.

Frames are listed, never decoded here: the two corpora hold about a million frames between them, and a spotter
reads every one anyway.
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from ...atomic import atomic_directory, check_replaceable
from ..au_codes import cell_text
from ..spotting_schema import spotting_features
from .common import REPORT_NAME, ConversionReport, RowNote, RowRefused, normalise_emotion


# -------------------------------------------------------------------------------------------------------------
# Reading
# -------------------------------------------------------------------------------------------------------------


def parse_frame_number(value: object) -> int | None:
    """An image number from a cell: ``46``, ``46.0``, ``"46"``; a float is rounded half up as the MEGC 2020
    baseline does (SAMM-LV stores some numbers as floats). ``None`` for empty, ``/``, ``-1`` or any negative
    number; ``ValueError`` for other text."""
    if isinstance(value, bool):
        raise ValueError(f"frame {value!r} is not a number")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        number = int(math.floor(value + 0.5))
        return number if number >= 0 else None
    text = cell_text(value)
    if text.lower() in {"", "/", "-", "none", "n/a", "na", "nan", "unknown"} or re.fullmatch(r"-\d+", text):
        return None
    if not re.fullmatch(r"\d+(\.\d+)?", text):
        raise ValueError(f"frame {text!r} is not a number")
    return parse_frame_number(float(text))


def parse_kind(value: object) -> str | None:
    """``"micro"`` for ``micro-expression`` or SAMM's ``Micro - 1/2``, ``"macro"`` for ``macro-expression`` or
    ``Macro``; ``None`` for anything else."""
    text = cell_text(value).lower()
    return "micro" if text.startswith("micro") else "macro" if text.startswith("macro") else None


@dataclass(frozen=True)
class AnnotatedRow:
    """One expression as the sheet gives it: image numbers as written (``None``: not annotated)."""

    row: int  # the row number Excel shows
    video: str  # key into the corpus's videos
    name: str  # how the report names it: "15_0101/disgust1_1", "006_1/006_1_2"
    onset: int | None
    apex: int | None
    offset: int | None
    kind: str
    aus: str
    emotion: str
    apex_raw: str = ""  # the apex cell as written, for the report when it is unusable


def annotated_row(number: int, video: str, name: str, cells: dict) -> AnnotatedRow:
    """The row's expression from its ``type``, ``onset``, ``apex``, ``offset``, ``aus`` and ``emotion`` cells;
    :class:`RowRefused` when the type or a frame number cannot be read."""
    kind = parse_kind(cells["type"])
    if kind is None:
        raise RowRefused("unknown_type", f"{cell_text(cells['type'])!r} is neither a micro- nor a macro-expression")
    try:
        onset, apex, offset = (parse_frame_number(cells[key]) for key in ("onset", "apex", "offset"))
    except ValueError as error:
        raise RowRefused("bad_frame_number", str(error)) from None
    return AnnotatedRow(number, video, name, onset, apex, offset, kind, cell_text(cells["aus"]),
                        cell_text(cells.get("emotion")), apex_raw=cell_text(cells["apex"]))


@dataclass(frozen=True)
class VideoFolder:
    """A long video as found on disk."""

    subject: str
    video: str
    folder: Path


@dataclass
class VideoFrames:
    """The frames of one video in time order: their numbers and absolute paths."""

    folder: Path
    numbers: list[int]
    paths: list[str]
    positions: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.positions = {number: i for i, number in enumerate(self.numbers)}

    @property
    def contiguous(self) -> bool:
        return not self.numbers or self.numbers[-1] - self.numbers[0] + 1 == len(self.numbers)


def list_frames(folder: Path, pattern: re.Pattern[str]) -> VideoFrames:
    """The images in ``folder`` whose names match ``pattern`` (group 1: the frame number), sorted by number:
    ``img2.jpg`` before ``img10.jpg``. Two files with one number (``img1.jpg``, ``img01.jpg``) are an error."""
    found: dict[int, Path] = {}
    for path in folder.iterdir():
        match = pattern.fullmatch(path.name)
        if not match or not path.is_file():
            continue
        number = int(match.group(1))
        if number in found:
            raise ValueError(f"{folder}: two frames numbered {number} ({found[number].name}, {path.name})")
        found[number] = path
    numbers = sorted(found)
    return VideoFrames(folder, numbers, [str(found[n].resolve()) for n in numbers])


# -------------------------------------------------------------------------------------------------------------
# The report
# -------------------------------------------------------------------------------------------------------------


@dataclass
class SpottingReport(ConversionReport):
    """A conversion report whose rows are annotated expressions (``rows_written``: intervals written), with the
    videos and frames written beside them. Video-level notes carry row 0."""

    videos: int = 0
    frames: int = 0

    def summary(self) -> str:
        lines = super().summary().splitlines()
        lines[0] = lines[0].replace(" -> ", f", {self.videos} videos ({self.frames} frames) -> ", 1)
        return "\n".join(lines)


# -------------------------------------------------------------------------------------------------------------
# From annotated rows to intervals
# -------------------------------------------------------------------------------------------------------------


def place_interval(row: AnnotatedRow, frames: VideoFrames, notes: list[RowNote]) -> dict:
    """The interval of ``row`` as positions into ``frames``, by the rules of this module; ``notes`` gets each
    repair; :class:`RowRefused` when the row cannot be placed."""

    def note(rule: str, detail: str) -> None:
        notes.append(RowNote(row.row, row.name, rule, detail))

    onset, apex, offset = row.onset, row.apex, row.offset
    apex = apex if apex else None  # an apex of 0 is no image either
    for end, value in (("onset", onset), ("offset", offset)):
        if not value:
            if apex is None:
                raise RowRefused("bad_frame_number", f"{end} and apex both not annotated")
            note(f"{end}_from_apex", f"{end} {value if value is not None else 'empty'} not annotated: apex {apex}")
    onset, offset = onset or apex, offset or apex
    if offset < onset:
        raise RowRefused("bad_frame_number", f"offset {offset} is before onset {onset}")
    if not frames.numbers:
        raise RowRefused("missing_frame", f"{frames.folder} holds no frames")
    first, last = frames.numbers[0], frames.numbers[-1]
    if onset > last or offset < first:
        raise RowRefused("outside_video", f"{onset}..{offset} is outside the frames {first}..{last} of "
                                               f"{frames.folder}")
    if onset < first:
        note("onset_before_first_frame", f"onset {onset} before the first frame {first}: set to {first}")
        onset = first
    if offset > last:
        note("offset_after_last_frame", f"offset {offset} after the last frame {last}: set to {last}")
        offset = last
    for end, number in (("onset", onset), ("offset", offset)):
        if number not in frames.positions:
            raise RowRefused("missing_frame", f"{end}: no frame numbered {number} in {frames.folder}")
    start, stop = frames.positions[onset], frames.positions[offset]
    if apex is None or not onset <= apex <= offset or apex not in frames.positions:
        middle = (start + stop) // 2
        written = row.apex_raw or (str(row.apex) if row.apex is not None else "empty")
        note("apex_estimated", f"apex {written} unknown or outside {onset}..{offset}: middle frame "
                               f"{frames.numbers[middle]}")
        position = middle
    else:
        position = frames.positions[apex]
    return {"onset": start, "apex": position, "offset": stop, "kind": row.kind, "aus": row.aus,
            "emotion": normalise_emotion(row.emotion)}


def video_rows(corpus: str, fps: float, videos: dict[str, VideoFolder], rows: list[AnnotatedRow],
               pattern: re.Pattern[str], report: SpottingReport) -> list[dict]:
    """One dataset row per video found, with its placed intervals; rows naming an unknown video are refused."""
    by_video: dict[str, list[AnnotatedRow]] = defaultdict(list)
    for row in rows:
        if row.video in videos:
            by_video[row.video].append(row)
        else:
            report.refused.append(RowNote(row.row, row.name, "missing_video", f"no video folder for {row.video!r}"))
    out = []
    for key in sorted(videos, key=lambda k: (videos[k].subject, videos[k].video)):
        found = videos[key]
        frames = list_frames(found.folder, pattern)
        if not frames.numbers:
            report.refused.append(RowNote(0, found.video, "no_frames", f"{found.folder} holds no frames"))
            report.refused += [RowNote(r.row, r.name, "no_frames", str(found.folder)) for r in by_video[key]]
            continue
        if not frames.contiguous:
            report.repaired.append(RowNote(0, found.video, "frame_numbers_not_contiguous",
                                           f"{len(frames.numbers)} frames numbered {frames.numbers[0]}.."
                                           f"{frames.numbers[-1]}: positions follow the files"))
        intervals = []
        for row in sorted(by_video[key], key=lambda r: (r.onset or r.apex or 0, r.row)):
            notes: list[RowNote] = []
            try:
                intervals.append(place_interval(row, frames, notes))
            except RowRefused as refusal:
                report.refused.append(RowNote(row.row, row.name, refusal.rule, refusal.detail))
                continue
            report.repaired += notes
        out.append({"corpus": corpus, "subject": found.subject, "video": found.video, "fps": float(fps),
                    "num_frames": len(frames.paths), "frame_paths": frames.paths, "intervals": intervals})
        report.rows_written += len(intervals)
        report.videos += 1
        report.frames += len(frames.paths)
    return out


# -------------------------------------------------------------------------------------------------------------
# The run
# -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpottingSpec:
    """Everything corpus-specific for a long-video corpus."""

    name: str
    fps: float
    frame_pattern: re.Pattern[str]  # an image name; group 1 is the frame number
    find_annotation: Callable[[Path], Path]
    find_videos: Callable[[Path], dict[str, VideoFolder]]
    # the rows it could read; it counts rows_read and refuses the unreadable ones in the report
    read_annotation: Callable[[Path, SpottingReport], list[AnnotatedRow]]


def run_spotting_conversion(spec: SpottingSpec, root: str | Path, out: str | Path, *, with_frames: bool = False,
                            cropped: bool = False, progress: bool = True, annotation: str | Path | None = None,
                            overwrite: bool = False) -> SpottingReport:
    """Convert one long-video corpus into a spotting dataset at ``out`` (replaced only with ``overwrite``, never
    when it holds files a conversion did not write); the report is saved inside it. ``progress`` is accepted for
    the common signature: listing frames takes seconds, there is nothing to show."""
    start = time.perf_counter()
    if with_frames:
        raise ValueError(f"{spec.name}: a spotting dataset already lists every frame of each video "
                         f"(frame_paths); --with-frames applies to the sample corpora")
    if cropped:
        raise ValueError(f"{spec.name}: the corpus ships no cropped long videos; convert the raw frames")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"{root}: corpus folder not found")
    out = Path(out).expanduser()
    check_replaceable(out, overwrite)  # fail before the work, not after it
    annotation = Path(annotation) if annotation else spec.find_annotation(root)
    videos = spec.find_videos(root)
    report = SpottingReport(spec.name, str(annotation), str(out))
    rows = spec.read_annotation(annotation, report)
    dataset_rows = video_rows(spec.name, spec.fps, videos, rows, spec.frame_pattern, report)
    write_spotting_dataset(dataset_rows, out, report, start, overwrite)
    return report


def spotting_converter(spec: SpottingSpec, summary: str) -> Callable[..., SpottingReport]:
    """The ``convert(root, out, ...)`` function of a corpus module, with the signature every converter shares."""

    def convert(root: str | Path, out: str | Path, *, with_frames: bool = False, cropped: bool = False,
                progress: bool = True, annotation: str | Path | None = None,
                overwrite: bool = False) -> SpottingReport:
        return run_spotting_conversion(spec, root, out, with_frames=with_frames, cropped=cropped,
                                       progress=progress, annotation=annotation, overwrite=overwrite)

    convert.__doc__ = summary
    convert.__qualname__ = convert.__name__ = "convert"
    return convert


def write_spotting_dataset(rows: list[dict], out: Path, report: SpottingReport, start: float,
                           overwrite: bool) -> None:
    """Save the rows and the report in a staging folder, then move it to ``out`` in one rename
    (:func:`microau_hf.atomic.atomic_directory`): a failed run leaves any earlier output as it was. The rows hold
    paths, not images, so they are built in memory."""
    out = Path(out).expanduser().resolve()
    check_replaceable(out, overwrite)
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        with atomic_directory(out) as built:
            dataset = datasets.Dataset.from_list(rows, features=spotting_features())
            dataset.save_to_disk(str(built), num_shards=1)
            report.seconds = round(time.perf_counter() - start, 3)
            report.save(built / REPORT_NAME)
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


__all__ = ["AnnotatedRow", "SpottingReport", "SpottingSpec", "VideoFolder", "VideoFrames", "annotated_row",
           "list_frames", "parse_frame_number", "parse_kind", "place_interval",
           "run_spotting_conversion", "spotting_converter"]
