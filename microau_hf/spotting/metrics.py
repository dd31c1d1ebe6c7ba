"""Scoring spotted intervals against the truth, as the Micro-Expression Grand Challenges (MEGC) score spotting.

The protocol, from the challenge baselines (Li et al., "Spotting Micro-Expressions on Long Videos Sequences",
MEGC 2019, arXiv:1812.10306; He et al., "Spotting Macro- and Micro-expression Intervals in Long Video Sequences",
MEGC 2020, arXiv:1912.11985, code at github.com/HeyingGithub/Baseline-project-for-MEGC2020_spotting):

* An interval is a run of frames, both ends included. Its overlap with a ground-truth interval is counted in frames:
  ``IoU = |A ∩ B| / |A ∪ B|`` (``calc_iou`` in the MEGC 2020 baseline's ``MDMD_results/result_helper.py``).
* A spotted interval is a true positive when its IoU with a ground truth is at least ``k = 0.5``.
* Counts are pooled over every video of the corpus (sum TP, FP, FN over videos, then precision, recall and F1),
  never averaged per video: the baselines' ``F1 of the entire database``
  (``2 TP / (2 TP + FP + FN)``, ``compareGT_lbp.m`` in github.com/jingtingEmmaLi/MEGC_spotting).
* Micro- and macro-expressions are scored separately, and the *overall* figure sums the TP, FP and FN of the two
  (``MEGC2020_results.txt``: 130 TP = 21 micro + 109 macro on CAS(ME)^2). So a macro interval spotted over a
  micro-expression is no true positive, even overall.

Where the baselines differ, we choose, and say so:

* Matching is one-to-one: each ground truth is matched at most once and each prediction at most once, greedily by
  descending IoU. Two predictions over one expression are 1 TP and 1 FP. (The MEGC 2020 baseline's
  ``precision_large`` counted both as true; its ``recall`` already counted each ground truth once.)
* A one-frame interval is valid (its IoU with itself is 1); the MEGC 2020 ``calc_iou`` returned 0 for it.

Numpy and the standard library only, so the figures can be recomputed anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: The IoU at or above which a spotted interval counts (MEGC's k).
MEGC_IOU_THRESHOLD = 0.5
#: Float slack for "IoU >= threshold": 3/10 must count at 0.3, though 0.3 * 10 > 3 in binary floating point.
_EPS = 1e-9


@dataclass(frozen=True)
class Interval:
    """Frames ``onset..offset`` of one video, both included, as 0-based positions; ``kind`` is ``"micro"`` or
    ``"macro"`` for the corpora (a spotter may return other kinds, e.g. ``"blink"``: they never match a truth)."""

    onset: int
    offset: int
    kind: str = "micro"

    def __post_init__(self) -> None:
        if not (_is_int(self.onset) and _is_int(self.offset)):
            raise ValueError(f"interval {self.onset!r}..{self.offset!r}: onset and offset must be whole frame numbers")
        if self.onset < 0:
            raise ValueError(f"interval {self.onset}..{self.offset}: onset is before the first frame (0)")
        if self.onset > self.offset:
            raise ValueError(f"interval {self.onset}..{self.offset}: onset is after offset")

    @property
    def length(self) -> int:
        """Frames in the interval, both ends counted."""
        return self.offset - self.onset + 1

    def to_dict(self) -> dict:
        return {"onset": int(self.onset), "offset": int(self.offset), "kind": self.kind}


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def interval_iou(a: Interval, b: Interval) -> float:
    """Intersection over union counted in frames, both ends included: [0, 4] and [2, 6] share 3 of 7 frames."""
    inter = min(a.offset, b.offset) - max(a.onset, b.onset) + 1
    if inter <= 0:
        return 0.0
    return inter / (a.length + b.length - inter)


def _iou_matrix(predicted: Sequence[Interval], truth: Sequence[Interval]) -> np.ndarray:
    """IoU of every prediction (rows) with every truth (columns)."""
    if not predicted or not truth:
        return np.zeros((len(predicted), len(truth)))
    p = np.array([(i.onset, i.offset) for i in predicted], dtype=np.int64)
    t = np.array([(i.onset, i.offset) for i in truth], dtype=np.int64)
    inter = np.minimum(p[:, None, 1], t[None, :, 1]) - np.maximum(p[:, None, 0], t[None, :, 0]) + 1
    inter = np.clip(inter, 0, None)
    union = (p[:, 1] - p[:, 0] + 1)[:, None] + (t[:, 1] - t[:, 0] + 1)[None, :] - inter
    return inter / union


@dataclass(frozen=True)
class MatchedPair:
    """A true positive: ``predicted[predicted_index]`` matched ``truth[truth_index]`` with this IoU."""

    predicted_index: int
    truth_index: int
    iou: float


@dataclass(frozen=True)
class Matches:
    """The one-to-one matching of one video's predictions to its truth."""

    tp: int
    fp: int
    fn: int
    pairs: tuple[MatchedPair, ...] = ()

    def to_dict(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn,
                "pairs": [[p.predicted_index, p.truth_index, round(p.iou, 6)] for p in self.pairs]}


def match_intervals(predicted: Sequence[Interval], truth: Sequence[Interval],
                    iou_threshold: float = MEGC_IOU_THRESHOLD) -> Matches:
    """Match predictions to truth one-to-one, greedily by descending IoU (ties: earlier prediction, then earlier
    truth); a pair counts when its IoU is at least ``iou_threshold`` (0.5 exactly counts). Kinds are not looked at:
    call per kind, as :func:`spotting_scores` does."""
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold {iou_threshold!r} must be in (0, 1]")
    ious = _iou_matrix(predicted, truth)
    candidates = sorted(((-ious[i, j], i, j) for i, j in zip(*np.nonzero(ious >= iou_threshold - _EPS))))
    used_p, used_t, pairs = set(), set(), []
    for negative_iou, i, j in candidates:
        if i in used_p or j in used_t:
            continue
        used_p.add(i)
        used_t.add(j)
        pairs.append(MatchedPair(int(i), int(j), float(-negative_iou)))
    tp = len(pairs)
    return Matches(tp=tp, fp=len(predicted) - tp, fn=len(truth) - tp, pairs=tuple(pairs))


@dataclass(frozen=True)
class SpottingScores:
    """TP, FP and FN pooled over ``videos`` videos, and the precision, recall and F1 they give.

    ``kind`` is the kind scored, or ``None`` for MEGC's overall figure (each kind matched on its own, counts summed).
    With nothing to score (no truth, no prediction) every figure is 0, not a division error.
    """

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    videos: int
    kind: str | None

    @classmethod
    def from_counts(cls, tp: int, fp: int, fn: int, videos: int, kind: str | None) -> SpottingScores:
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0  # = harmonic mean of precision and recall
        return cls(tp, fp, fn, precision, recall, f1, videos, kind)

    def to_dict(self) -> dict:
        return asdict(self)


def spotting_scores(per_video: Sequence[tuple[Sequence[Interval], Sequence[Interval]]], kind: str | None = "micro",
                    iou_threshold: float = MEGC_IOU_THRESHOLD) -> SpottingScores:
    """MEGC scores over a corpus: ``per_video`` holds one ``(predicted, truth)`` pair of interval lists per video.

    ``kind="micro"`` or ``"macro"`` keeps only intervals of that kind, in predictions and truth alike; ``None``
    matches each kind on its own and sums the counts (the overall figure). TP, FP and FN are summed over videos
    before precision, recall and F1 are computed.
    """
    tp = fp = fn = 0
    for predicted, truth in per_video:
        kinds = [kind] if kind is not None else sorted({i.kind for i in (*predicted, *truth)})
        for each in kinds:
            matches = match_intervals(_of_kind(predicted, each), _of_kind(truth, each), iou_threshold)
            tp, fp, fn = tp + matches.tp, fp + matches.fp, fn + matches.fn
    return SpottingScores.from_counts(tp, fp, fn, len(per_video), kind)


def _of_kind(intervals: Iterable[Interval], kind: str) -> list[Interval]:
    return [i for i in intervals if i.kind == kind]


__all__ = ["Interval", "MEGC_IOU_THRESHOLD", "MatchedPair", "Matches", "SpottingScores", "interval_iou",
           "match_intervals", "spotting_scores"]
