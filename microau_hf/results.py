"""What a prediction returns: per-AU scores for a pair, a video's curve and frames, and writing them as JSON or CSV.

Written through a temporary file and a rename, so a results file is never half-written.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_text
from .face.tracking import USABLE_STATUSES


@dataclass
class AUScore:
    au: int
    label: str  # "AU12 Lip corner puller"
    score: float  # probability that the AU is present
    present: bool  # score >= the predictor's threshold


def au_scores(aus: Sequence[int], labels: Sequence[str], probabilities: Sequence[float],
              threshold: float) -> list[AUScore]:
    """One :class:`AUScore` per AU; an AU is present when its probability is at least ``threshold``."""
    return [AUScore(int(au), label, float(p), bool(p >= threshold)) for au, label, p in zip(aus, labels, probabilities)]


@dataclass
class Prediction:
    """One onset/apex sample. ``status``: ``"aligned"``/``"template"`` (scored), ``"no_face"``, ``"bad_image"``,
    ``"unregistered"`` (the head moved between the frames) or ``"missing_frame"`` (not scored: ``aus`` is empty and
    ``message`` says why)."""

    name: str
    status: str
    message: str = ""
    num_faces: int = 0
    aus: list[AUScore] = field(default_factory=list)
    emotion: str | None = None  # the best EMFACS prototype; never learnt from emotion labels
    emotion_scores: dict[str, float] = field(default_factory=dict)
    objective_class: int | None = None  # Davison et al. (2018), 1..7
    onset_crop: np.ndarray | None = field(default=None, repr=False)  # aligned crops, for display
    apex_crop: np.ndarray | None = field(default=None, repr=False)
    region_boxes: list | None = field(default=None, repr=False)  # per AU, boxes in crop units

    @property
    def ok(self) -> bool:
        return self.status in ("aligned", "template")

    @property
    def probabilities(self) -> np.ndarray:
        return np.array([s.score for s in self.aus], dtype=np.float32)

    @property
    def present(self) -> list[int]:
        return [s.au for s in self.aus if s.present]

    def at_threshold(self, threshold: float) -> Prediction:
        """This prediction with each AU's ``present`` decided at ``threshold`` (scores and emotion unchanged)."""
        scores = au_scores([s.au for s in self.aus], [s.label for s in self.aus], [s.score for s in self.aus], threshold)
        return replace(self, aus=scores)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without the crops."""
        keys = ("name", "status", "message", "num_faces", "emotion", "emotion_scores", "objective_class")
        return {**{k: getattr(self, k) for k in keys}, "present": self.present, "aus": [asdict(s) for s in self.aus]}

    def summary_line(self) -> str:
        """One line for a person: the present AUs with their probabilities and the emotion, or why it was not scored."""
        if not self.ok:
            return f"{self.name}: not scored ({self.status}): {self.message}"
        present = ", ".join(f"AU{s.au} {s.score:.2f}" for s in self.aus if s.present) or "no AU present"
        emotion = f"emotion {self.emotion}" if self.emotion else "no emotion"
        objective = f", objective class {self.objective_class}" if self.objective_class else ""
        return f"{self.name}: {present}; {emotion}{objective}"

    def to_row(self) -> dict[str, Any]:
        """One flat CSV row: the item, its status, emotion, present AUs, then one probability column per AU."""
        row = {k: getattr(self, k) for k in ("name", "status", "message", "num_faces", "emotion", "objective_class")}
        row["present"] = "+".join(str(a) for a in self.present)
        row.update({f"AU{s.au}": round(s.score, 6) for s in self.aus})
        return row


def frame_time(frame: int, fps: float) -> float | None:
    """A frame's time in seconds (4 decimals); ``None`` when the frame rate is unknown."""
    return round(frame / fps, 4) if fps > 0 else None


@dataclass
class SpottedInterval:
    """One movement spotted in a video: frames (the video's numbers), kind and, for micro- and macro-expressions,
    the model's prediction on its onset/apex pair. ``kind`` is ``"micro"``, ``"macro"``, ``"blink"`` or
    ``"head_motion"``; only micro-expressions are *the* result, the others are listed so a person can check them."""

    onset_frame: int
    apex_frame: int
    offset_frame: int
    kind: str
    strength: float  # the peak, in MADs above its regions' noise
    regions: list[int]  # AUs whose regions moved most, strongest first
    fps: float = 0.0
    prediction: Prediction | None = None

    def time(self, frame: int) -> float | None:
        return frame_time(frame, self.fps)

    @property
    def duration_s(self) -> float | None:
        return round((self.offset_frame - self.onset_frame + 1) / self.fps, 4) if self.fps > 0 else None

    def to_dict(self) -> dict[str, Any]:
        scored = self.prediction is not None and self.prediction.ok
        return {"kind": self.kind, "onset_frame": self.onset_frame, "apex_frame": self.apex_frame,
                "offset_frame": self.offset_frame, "onset_time_s": self.time(self.onset_frame),
                "apex_time_s": self.time(self.apex_frame), "offset_time_s": self.time(self.offset_frame),
                "duration_s": self.duration_s, "strength": round(self.strength, 3), "moved_regions": self.regions,
                "prediction": self.prediction.to_dict() if self.prediction is not None else None,
                "present": self.prediction.present if scored else [],
                "emotion": self.prediction.emotion if scored else None}

    def to_row(self) -> dict[str, Any]:
        """One flat CSV row: the interval, then its prediction's columns."""
        row = {k: v for k, v in self.to_dict().items() if k not in ("prediction", "present", "emotion")}
        row["moved_regions"] = "+".join(str(a) for a in self.regions)
        if self.prediction is not None:
            row.update({k: v for k, v in self.prediction.to_row().items() if k not in ("name",)})
        return row

    def summary_line(self) -> str:
        when = (f" ({self.time(self.onset_frame):.2f}-{self.time(self.offset_frame):.2f} s)"
                if self.fps > 0 else "")
        head = f"{self.kind} frames {self.onset_frame}-{self.offset_frame}{when}, apex {self.apex_frame}"
        if self.prediction is None:
            return f"{head}: moved regions AU{', AU'.join(map(str, self.regions))}"
        return f"{head}: {self.prediction.summary_line().split(': ', 1)[-1]}"


@dataclass
class VideoPrediction:
    """A video: the spotted intervals and the per-frame time series.

    ``frame_indices``, ``face_status``, ``region_motion`` (``(F, K)``: the micro-window motion of each AU region, gray
    levels), ``spotting_score`` (``(F,)``: the strongest regions' motion in MADs over their noise) and
    ``eye_opening`` hold one entry per frame read; ``frame_probabilities`` (``(S, K)``, with ``every_frame``) one row
    per frame of ``scored_frames``, each scored as an apex against the frame one micro window before it.
    """

    path: str
    fps: float
    aus: list[int]
    intervals: list[SpottedInterval]
    frame_indices: np.ndarray
    face_status: list[str]
    region_motion: np.ndarray
    spotting_score: np.ndarray
    eye_opening: np.ndarray
    threshold: float  # the spotting score a peak must reach
    scored_frames: np.ndarray | None = None
    frame_probabilities: np.ndarray | None = None
    truncated_by: str = ""  # why the video was not read to its end: "frame_limit", "file_cut_short", or "" (it was)
    header_frames: int = 0  # the frame count the container claims (0: unknown)
    note: str = ""  # why the video was not read to its end, in one line

    def __post_init__(self) -> None:
        # One order everywhere (JSON, CSV, the terminal, the time line, the Space): by onset, then offset.
        self.intervals = sorted(self.intervals, key=lambda i: (i.onset_frame, i.offset_frame))

    def at_threshold(self, threshold: float) -> VideoPrediction:
        """This video with each scored interval's AUs decided at ``threshold``."""
        intervals = [replace(i, prediction=i.prediction.at_threshold(threshold)) if i.prediction else i
                     for i in self.intervals]
        return replace(self, intervals=intervals)

    @property
    def truncated(self) -> bool:
        """The video was not read to its end (``truncated_by`` says why, ``note`` in words)."""
        return bool(self.truncated_by)

    @property
    def micro_expressions(self) -> list[SpottedInterval]:
        return [i for i in self.intervals if i.kind == "micro"]

    def time(self, frame: int) -> float | None:
        return frame_time(frame, self.fps)

    def unusable_runs(self) -> list[dict[str, Any]]:
        """Runs of consecutive frames without a usable face: ``{"status", "first_frame", "last_frame", "frames"}``."""
        runs: list[dict[str, Any]] = []
        for index, status in zip(self.frame_indices.tolist(), self.face_status):
            if status in USABLE_STATUSES:
                continue
            if runs and runs[-1]["status"] == status and runs[-1]["last_frame"] == index - 1:
                runs[-1]["last_frame"] = index
                runs[-1]["frames"] += 1
            else:
                runs.append({"status": status, "first_frame": index, "last_frame": index, "frames": 1})
        return runs

    def frame_rows(self) -> list[dict[str, Any]]:
        """One row per frame read: frame, time, face status, spotting score, eye opening, each AU region's motion,
        and the AU probabilities where the frame was scored."""
        scored = {}
        if self.scored_frames is not None:
            scored = {int(i): p for i, p in zip(self.scored_frames, self.frame_probabilities)}
        rows = []
        for position, index in enumerate(self.frame_indices.tolist()):
            row = {"frame": index, "time_s": self.time(index), "face_status": self.face_status[position],
                   "spotting_score": _rounded(self.spotting_score[position]),
                   "eye_opening": _rounded(self.eye_opening[position])}
            row.update({f"motion_AU{au}": _rounded(v) for au, v in zip(self.aus, self.region_motion[position])})
            if index in scored:
                row.update({f"AU{au}": round(float(p), 6) for au, p in zip(self.aus, scored[index])})
            rows.append(row)
        return rows

    def summary_lines(self) -> list[str]:
        """A few lines for a person: what was read, the faces, then each spotted interval."""
        micro = self.micro_expressions
        lines = [f"{self.path}: {len(self.frame_indices)} frames read at {self.fps:g} fps; {len(micro)} "
                 f"micro-expression{'s' if len(micro) != 1 else ''} spotted"]
        if self.note:
            lines.append(f"note: {self.note}")
        unusable = self.unusable_runs()
        if unusable:
            count = sum(run["frames"] for run in unusable)
            first = unusable[0]
            lines.append(f"{count} frames without a usable face, first frames {first['first_frame']}-"
                         f"{first['last_frame']} ({first['status'].replace('_', ' ')})")
        if not micro:
            lines.append("no micro-expression: nothing moved briefly above the noise")
        return lines + [i.summary_line() for i in sorted(self.intervals, key=lambda i: i.onset_frame)]

    def to_dict(self) -> dict[str, Any]:
        keys = ("path", "fps", "truncated", "truncated_by", "note", "header_frames", "threshold")
        return {**{k: getattr(self, k) for k in keys}, "frames_read": len(self.frame_indices), "aus": self.aus,
                "intervals": [i.to_dict() for i in self.intervals], "unusable_frames": self.unusable_runs(),
                "frames": self.frame_rows()}

    def to_dataframe(self, table: str = "intervals"):
        """``"intervals"`` (one row per spotted interval) or ``"frames"`` (the time series) as a pandas DataFrame."""
        pandas = _pandas()
        if table == "intervals":
            return pandas.DataFrame([i.to_row() for i in self.intervals])
        if table == "frames":
            return pandas.DataFrame(self.frame_rows())
        raise ValueError(f"table is 'intervals' or 'frames', not {table!r}")


def _rounded(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError("to_dataframe() needs pandas: pip install pandas") from None
    return pandas


class Predictions(list):
    """A list of :class:`Prediction` (what ``predict_pairs`` and ``predict_folder`` return), with the table views."""

    def to_dicts(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self]

    def to_dataframe(self):
        """One row per pair (the CSV's columns) as a pandas DataFrame."""
        return _pandas().DataFrame([p.to_row() for p in self])


#: The version of the results JSON (docs/results_schema.md); bumped when a field changes meaning or goes away.
SCHEMA_VERSION = 2
SCHEMA_NAME = "micro-au-clip/results"


def results_document(results: Sequence[Prediction] | VideoPrediction) -> dict[str, Any]:
    """The one JSON shape for every result: ``{"schema", "schema_version", "kind", ...}`` with ``kind`` ``"pairs"``
    (``"items"``: one object per pair) or ``"video"`` (``"video"``: the video's object)."""
    header = {"schema": SCHEMA_NAME, "schema_version": SCHEMA_VERSION}
    if isinstance(results, VideoPrediction):
        return {**header, "kind": "video", "video": result_object(results)}
    return {**header, "kind": "pairs", "items": [result_object(p) for p in results]}


def result_object(result: Prediction | VideoPrediction) -> dict[str, Any]:
    """One pair's or one video's object in the results schema (an item of ``"items"``, or ``"video"``), JSON-ready:
    what the ``micro-au-detection`` pipeline returns for each input."""
    return finite_or_null(result.to_dict())


def finite_or_null(value: Any) -> Any:
    """``value`` (JSON-like) with every NaN or infinite number as ``None``: Python's json writes them as bare ``NaN``
    and ``Infinity`` tokens, which are not JSON and which strict parsers (JavaScript's, jq, Go's) reject."""
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value


def save_results(results: Sequence[Prediction] | VideoPrediction, path: str | os.PathLike) -> Path:
    """Write predictions (or a video's result) as ``.json`` (:func:`results_document`) or ``.csv``: one row per pair;
    for a video, one row per spotted interval, and the per-frame time series in :func:`frames_csv_path` beside it."""
    out = Path(path)
    if out.suffix.lower() not in (".json", ".csv"):
        raise ValueError(f"{out}: results are written as .json or .csv, not {out.suffix or 'no suffix'!r}")
    video = isinstance(results, VideoPrediction)
    if out.suffix.lower() == ".json":
        # allow_nan=False: a number that is not finite is a bug to hear about, never a bare NaN token in the file.
        return atomic_write_text(out, json.dumps(results_document(results), indent=2, allow_nan=False) + "\n")
    if video:  # two tables: the intervals in the file named, the time series beside it
        save_table([i.to_row() for i in results.intervals], out, empty_columns=INTERVAL_COLUMNS)
        save_table(results.frame_rows(), frames_csv_path(out))
        return out
    return save_table([p.to_row() for p in results], out)


#: The interval CSV's columns when nothing was spotted (the header is still written).
INTERVAL_COLUMNS = ("kind", "onset_frame", "apex_frame", "offset_frame", "onset_time_s", "apex_time_s",
                    "offset_time_s", "duration_s", "strength", "moved_regions")


def frames_csv_path(path: str | os.PathLike) -> Path:
    """Where a video's per-frame CSV goes beside its interval CSV: ``result.csv`` -> ``result.frames.csv``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.frames{path.suffix}")


def save_table(rows: list[dict[str, Any]], out: Path, empty_columns: Sequence[str] = ()) -> Path:
    """Rows as a CSV file, written atomically; the columns are the union of the rows' keys in order; a number that
    is not finite is an empty cell (as a missing one is), never ``nan``."""
    columns = list(dict.fromkeys(key for row in rows for key in row)) or list(empty_columns)  # failed items lack AUs
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows({key: "" if value is None else value for key, value in finite_or_null(row).items()} for row in rows)
    return atomic_write_text(out, table.getvalue())
