"""What a prediction returns: per-AU scores for a pair, a video's curve and frames, and writing them as JSON or CSV.

Written through a temporary file and a rename, so a results file is never half-written.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_text


@dataclass
class AUScore:
    au: int
    label: str  # "AU12 Lip corner puller"
    score: float  # probability that the AU is present
    present: bool  # score >= the predictor's threshold


@dataclass
class Prediction:
    """One onset/apex sample. ``status``: ``"aligned"``/``"template"`` (scored), ``"no_face"``, ``"bad_image"`` or
    ``"missing_frame"`` (not scored: ``aus`` is empty and ``message`` says why)."""

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


@dataclass
class VideoPrediction:
    """A video: its onset/apex prediction, the motion curve and, with ``every_frame``, per-frame probabilities."""

    path: str
    fps: float
    onset_frame: int
    apex_frame: int
    prediction: Prediction  # the onset/apex pair
    frame_indices: np.ndarray  # (F,) every frame read, the onset first
    motion: np.ndarray  # (F,) mean absolute difference of each aligned frame to the onset (0..255)
    aus: list[int]
    scored_frames: np.ndarray | None = None  # (S,) frames scored against the onset
    frame_probabilities: np.ndarray | None = None  # (S, K) per-frame AU probabilities, in the order of ``aus``
    truncated_by: str = ""  # why the video was not read to its end: "frame_limit", "file_cut_short", or "" (it was)
    header_frames: int = 0  # the frame count the container claims (0: unknown)
    note: str = ""  # why the video was not read to its end, in one line

    @property
    def truncated(self) -> bool:
        """The video was not read to its end (``truncated_by`` says why, ``note`` in words)."""
        return bool(self.truncated_by)

    def time(self, frame: int) -> float | None:
        return round(frame / self.fps, 4) if self.fps > 0 else None

    def frame_rows(self) -> list[dict[str, Any]]:
        """One row per frame read: frame, time, motion, and the AU probabilities where the frame was scored."""
        scored = {}
        if self.scored_frames is not None:
            scored = {int(i): p for i, p in zip(self.scored_frames, self.frame_probabilities)}
        rows = []
        for index, value in zip(self.frame_indices.tolist(), self.motion.tolist()):
            row = {"frame": index, "time_s": self.time(index), "motion": round(value, 4)}
            if index in scored:
                row.update({f"AU{au}": round(float(p), 6) for au, p in zip(self.aus, scored[index])})
            rows.append(row)
        return rows

    def summary_lines(self) -> list[str]:
        """A few lines for a person: what was read, where the apex is, and the pair's prediction."""
        apex_time = self.time(self.apex_frame)
        lines = [f"{self.path}: {len(self.frame_indices)} frames read at {self.fps:g} fps; onset frame "
                 f"{self.onset_frame}, apex frame {self.apex_frame}" + (f" ({apex_time:.2f} s)" if apex_time else "")]
        if self.note:
            lines.append(f"note: {self.note}")
        if self.scored_frames is not None:
            lines.append(f"{len(self.scored_frames)} frames scored against the onset (per-frame probabilities in --out)")
        return lines + [self.prediction.summary_line()]

    def to_dict(self) -> dict[str, Any]:
        keys = ("path", "fps", "onset_frame", "apex_frame", "truncated", "truncated_by", "note", "header_frames")
        return {**{k: getattr(self, k) for k in keys}, "apex_time_s": self.time(self.apex_frame),
                "frames_read": len(self.frame_indices), "prediction": self.prediction.to_dict(),
                "frames": self.frame_rows()}


def save_results(results: Sequence[Prediction] | VideoPrediction, path: str | os.PathLike) -> Path:
    """Write predictions (or a video's result) as ``.json`` or ``.csv``: one row per pair, or per frame of a video."""
    out = Path(path)
    if out.suffix.lower() not in (".json", ".csv"):
        raise ValueError(f"{out}: results are written as .json or .csv, not {out.suffix or 'no suffix'!r}")
    video = isinstance(results, VideoPrediction)
    if out.suffix.lower() == ".json":
        payload = results.to_dict() if video else [p.to_dict() for p in results]
        return atomic_write_text(out, json.dumps(payload, indent=2) + "\n")
    rows = results.frame_rows() if video else [p.to_row() for p in results]
    columns = list(dict.fromkeys(key for row in rows for key in row))  # failed items lack the AU columns
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(out, table.getvalue())
