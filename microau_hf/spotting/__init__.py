"""Spotting: where in a long video the face moved, for how long, and what kind of movement it was.

* :mod:`.flow` -- the motion signals: optical flow per AU region on the aligned face, head motion removed;
* :mod:`.intervals` -- from signals to intervals, each with a kind (micro, macro, blink, head motion, speech, other);
* :mod:`.gray` and :mod:`.mdmd` -- the baselines the benchmark compares with (the gray-level feature difference this
  project used before, and an MDMD-style optical-flow spotter);
* :mod:`.metrics` and :mod:`.evaluation` -- MEGC scoring of spotted intervals, and evaluation on a long-video corpus
  (its dataset schema is :mod:`microau_hf.data.spotting_schema`, which the converters write).

Imports flow one way: this package uses :mod:`microau_hf.aus`, :mod:`microau_hf.face` and :mod:`microau_hf.data`;
nothing below it imports it.
"""

from __future__ import annotations

from .flow import FlowSignals, FlowTrack, main_direction, return_signals
from .intervals import (KINDS, Candidate, FrameTrack, MotionSignals, MotionTrack, find_intervals, region_scores,
                        segment_scores, spotting_score, uncovered_frames)
from .regions import region_masks, rigid_mask, upper_face
from .settings import SCALES, SpottingSettings
from .metrics import (MEGC_IOU_THRESHOLD, Interval, MatchedPair, Matches, SpottingScores, interval_iou,
                      match_intervals, spotting_scores)

#: Loaded on first use: evaluation reads ``datasets`` (slow to import), which spotting a video does not need.
_EVALUATION = ("MATCHING", "Spotter", "evaluate_spotting", "spotting_table", "truth_intervals")


def __getattr__(name: str):
    if name in _EVALUATION:
        from . import evaluation

        return getattr(evaluation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Candidate", "FlowSignals", "FlowTrack", "FrameTrack", "Interval", "KINDS", "MEGC_IOU_THRESHOLD",
           "MatchedPair", "Matches", "MotionSignals", "MotionTrack", "SCALES", "SpottingScores", "SpottingSettings",
           "find_intervals", "interval_iou", "main_direction", "match_intervals", "region_masks", "region_scores",
           "return_signals", "rigid_mask", "segment_scores", "spotting_score", "spotting_scores", "uncovered_frames",
           "upper_face", *_EVALUATION]
