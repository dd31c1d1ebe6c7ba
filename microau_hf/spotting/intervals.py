"""From motion signals to intervals: every movement above the threshold, with its extent and its kind.

The rule, in the order :func:`find_intervals` applies it:

1. **Runs.** For each flow lag (:data:`~.settings.SCALES`) and each AU region, the return signal
   (:func:`~.flow.return_signals`) is scaled by its own noise (median and MAD over the segment: a talking mouth does
   not drown a still brow). A *run* is a stretch of frames that stays above ``low_fraction`` of the threshold and
   peaks at ``threshold_mads`` or more, moving at least ``min_motion`` flow pixels.
2. **Movements.** Runs are grouped into movements: two runs are one movement when they share frames (at least
   ``same_movement_iou`` of the shorter one) and lie in the same half of the face (upper: brows and lids; lower:
   mouth and chin), or in different halves when the shorter lies 60 % or more inside the other and both peak within
   two frames (one expression moving both); a run of a region the movement already has, in the same half, that ends
   or starts within 0.1 s of it is the same movement's rise or fall. So a weaker peak near a stronger one is kept
   as a movement of its own when its regions differ (a mouth movement just before a blink, a blink during speech).
3. **Extent.** Onset and offset come from the movement's rise and fall (:func:`~.flow.side_profiles`): the frames,
   before and after the apex, where the displacement from the neutral frame one lag away falls back under
   ``extent_fraction`` of the apex (or half of ``min_motion``, the flow's noise). When both ends do not fit in the
   lag's window and a longer lag sees the movement at least 0.8 times as strongly, the longer lag is read: a 2 s
   smile is read at the 2 s lag from its onset to its offset, as one interval. The interval always covers the
   movement's micro-lag runs.
4. **Kind**, the first that holds:
   ``blink`` the lids (AU7's region; the upper face when AU7 is not spotted) are among the two most moved regions,
   the eyes closed to ``blink_drop`` of their median opening (partial closures included: the mesh reads a lid
   lowered by 40-90 % of the eye's height as 75-55 % open) and the lids region moved down (AU7, the lid tightener,
   narrows the eye too, but raises the lower lid);
   ``head_motion`` the head turned (pose proxies range over ``head_turn`` interocular distances), the head motion
   removed from the flow at the apex exceeds ``head_flow`` (alignment could not hold the head), or ``head_regions``
   of all regions moved at least half as much as the most moved one (the whole face alike: an expression moves its
   own regions most);
   ``speech`` the strongest region is in the lower face, the movement is shorter than ``micro_max_s`` (a smile is
   not speech) and the lower face moved at least ``speech_peaks`` times
   within ``speech_window_s`` (continuous mouth movement: micro-lag runs of the lower face peaking 0.1 s apart
   or more); consecutive speech intervals are merged;
   ``other`` shorter than ``min_duration_s`` (a landmark fit off for a frame);
   ``macro`` lasting ``micro_max_s`` (0.5 s) or more;
   ``micro`` otherwise.
5. **Blinks the flow misses.** A partial closure moves little skin; where the landmarks' eye opening drops under
   ``blink_drop`` of its median and no interval overlaps, a ``blink`` interval is listed (its strength is the
   closure's depth, not MADs).
6. **Overlaps.** A micro-expression or ``other`` interval lying mostly (half or more) inside a macro-expression of
   the same face half is part of it: the macro interval is widened to cover it. Overlapping macro intervals of the
   same half, or of both halves lying half or more inside one another, are one expression. Nothing else is dropped:
   every frame whose spotting score reaches the threshold lies in an interval of some kind (:func:`uncovered_frames`
   checks it).

Intervals are returned in order of onset. No interval crosses a segment (a cut, or frames without a face).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..face.tracking import TrackedFrame
from .flow import FlowSignals, FlowTrack, return_signals, side_profiles
from .regions import upper_face
from .settings import SCALES, SpottingSettings

KINDS = ("micro", "macro", "blink", "head_motion", "speech", "other")


@dataclass
class Candidate:
    """A spotted movement before the model sees it: frame positions, kind and the regions that moved."""

    onset: int
    apex: int
    offset: int
    kind: str  # one of KINDS
    strength: float  # the peak, in MADs over its region's noise
    regions: list[int] = field(default_factory=list)  # AU numbers of the regions that moved, strongest first


@dataclass
class FrameTrack:
    """What the spotter needs of every frame, stacked: ``(F,)`` arrays in frame order."""

    indices: np.ndarray  # the video's frame numbers
    segments: np.ndarray  # -1 where the frame is not usable
    eye_opening: np.ndarray
    pose: np.ndarray  # (F, 2) yaw, pitch proxies

    @classmethod
    def from_frames(cls, frames: Sequence[TrackedFrame]) -> FrameTrack:
        return cls(np.array([f.index for f in frames], np.int64), np.array([f.segment for f in frames], np.int64),
                   np.array([f.eye_opening for f in frames], np.float32),
                   np.array([f.pose for f in frames], np.float32).reshape(-1, 2))


@dataclass
class MotionTrack:
    """The measuring pass's motion: the flow vectors (:class:`~.flow.FlowTrack`) and the return signals
    ``(F, S, K)`` they give, in flow pixels. ``micro`` is the micro lag's ``(F, K)``, the time series a user sees."""

    flow: FlowTrack
    returns: np.ndarray

    @classmethod
    def from_flow(cls, flow: FlowTrack) -> MotionTrack:
        return cls(flow, return_signals(flow))

    @property
    def micro(self) -> np.ndarray:
        return self.returns[:, 0]


class MotionSignals(FlowSignals):
    """:class:`~.flow.FlowSignals` whose ``finish()`` gives the :class:`MotionTrack` the spotter reads."""

    def finish(self) -> MotionTrack:  # type: ignore[override]
        return MotionTrack.from_flow(super().finish())


@dataclass
class Run:
    """Frames ``onset..offset`` where one region's signal at one lag stayed up, peaking at ``apex``."""

    scale: int
    region: int
    onset: int
    apex: int
    offset: int
    peak: float  # MADs


# ----------------------------------------------------------------------------------------------------------------
# Scores and runs
# ----------------------------------------------------------------------------------------------------------------


def region_scores(signal: np.ndarray) -> np.ndarray:
    """Each region's signal (``(F, K)``) in MADs above its own median (NaN stays NaN). A region's MAD is taken as
    at least the regions' median MAD, so that an unusually still region cannot make a trifle look large."""
    median = np.nanmedian(signal, axis=0)
    mad = np.nanmedian(np.abs(signal - median), axis=0) * 1.4826
    floor = float(np.nanmedian(mad)) if np.isfinite(mad).any() else 0.0
    return (signal - median) / np.maximum(mad, max(floor, 1e-3))


def segment_scores(signal: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """:func:`region_scores` within each segment: a new shot or a face found again has its own noise."""
    scores = np.full(signal.shape, np.nan, np.float32)
    for segment in np.unique(segments[segments >= 0]):
        rows = segments == segment
        finite = np.isfinite(signal[rows]).all(axis=1).sum()
        if finite >= 3:
            scores[rows] = region_scores(signal[rows])
    return scores


def _gated_scores(signal: np.ndarray, segments: np.ndarray, settings: SpottingSettings) -> np.ndarray:
    """:func:`segment_scores`, with regions that moved less than ``min_motion`` held at 0."""
    scores = segment_scores(signal, segments)
    return np.where(np.nan_to_num(signal, nan=0.0) >= settings.min_motion, scores, np.minimum(scores, 0.0))


def spotting_score(micro: np.ndarray, segments: np.ndarray, settings: SpottingSettings) -> np.ndarray:
    """``(F,)``: the most moved region's micro-lag score in MADs (NaN where it cannot be measured). Every frame where
    it reaches ``settings.threshold_mads`` lies in a spotted interval."""
    if not len(micro) or np.isnan(micro).all():
        return np.full(len(micro), np.nan, np.float32)
    scores = _gated_scores(micro, segments, settings)
    best = np.nanmax(np.where(np.isfinite(scores), scores, -np.inf), axis=1)
    return np.where(np.isfinite(best), best, np.nan).astype(np.float32)


def _runs(scores: np.ndarray, scale: int, region: int, settings: SpottingSettings) -> list[Run]:
    """The runs of one region at one lag (``scores`` ``(F,)``, gated)."""
    low = settings.low_fraction * settings.threshold_mads
    up = np.nan_to_num(scores, nan=-np.inf) >= low
    runs = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], up.astype(np.int8), [0]])))
    for onset, end in zip(edges[::2], edges[1::2]):
        apex = onset + int(np.argmax(scores[onset:end]))
        if scores[apex] >= settings.threshold_mads:
            runs.append(Run(scale, region, int(onset), int(apex), int(end - 1), float(scores[apex])))
    return runs


# ----------------------------------------------------------------------------------------------------------------
# Runs to movements
# ----------------------------------------------------------------------------------------------------------------


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> tuple[float, float]:
    """(IoU, intersection over the shorter) of two frame ranges, both ends included."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0, 0.0
    la, lb = a[1] - a[0] + 1, b[1] - b[0] + 1
    return inter / (la + lb - inter), inter / min(la, lb)


@dataclass
class _Movement:
    runs: list[Run]
    onset: int
    offset: int

    @property
    def strongest(self) -> Run:
        return max(self.runs, key=lambda r: r.peak)


def _group(runs: list[Run], upper: list[bool], settings: SpottingSettings, touching: int) -> list[_Movement]:
    """Runs that share frames in one face half (or overlap much across halves) become one movement, and so does a
    run of a region the movement has that lies within ``touching`` frames of it; strongest runs seed the movements,
    so a weak run joins the movement it overlaps most."""
    movements: list[_Movement] = []
    for run in sorted(runs, key=lambda r: -r.peak):
        span = (run.onset, run.offset)
        best, best_overlap = None, -1.0
        for movement in movements:
            iou, cover = _overlap(span, (movement.onset, movement.offset))
            same_half = upper[run.region] == upper[movement.strongest.region]
            together = abs(run.apex - movement.strongest.apex) <= 2  # across halves: one expression peaks at once
            gap = max(run.onset, movement.onset) - min(run.offset, movement.offset) - 1
            rise = same_half and gap <= touching and run.region in {r.region for r in movement.runs}
            joins = rise or (cover >= settings.same_movement_iou if same_half else (cover >= 0.6 and together))
            if joins and cover > best_overlap:
                best, best_overlap = movement, cover
        if best is None:
            movements.append(_Movement([run], run.onset, run.offset))
        else:
            best.runs.append(run)
            best.onset, best.offset = min(best.onset, run.onset), max(best.offset, run.offset)
    return movements


def _distinct(apexes: list[int], spacing: int) -> np.ndarray:
    """The apexes, one of each cluster closer than ``spacing`` frames (regions peaking together count once)."""
    kept: list[int] = []
    for apex in apexes:
        if not kept or apex - kept[-1] >= spacing:
            kept.append(apex)
    return np.array(kept, np.int64)


def _segment_range(segments: np.ndarray, frame: int) -> tuple[int, int]:
    same = np.flatnonzero(segments == segments[frame])
    return int(same[0]), int(same[-1])


def _read_extent(motion: MotionTrack, scale: int, apex: int, regions: list[int],
                 settings: SpottingSettings) -> tuple[int, int, bool] | None:
    """(onset, offset, whether both ends lie inside the lag's window) at one lag; ``None`` without a rise."""
    rise, fall = side_profiles(motion.flow, scale, apex, regions)
    ends = [v for v in (rise[-1], fall[0]) if np.isfinite(v)]
    if not ends or max(ends) <= 0:
        return None
    level = max(settings.extent_fraction * max(ends), settings.min_motion / 2)  # not below the flow's noise
    below_before = np.flatnonzero(~(np.nan_to_num(rise, nan=-np.inf) > level))
    below_after = np.flatnonzero(~(np.nan_to_num(fall, nan=-np.inf) > level))
    lag = motion.flow.lags[scale]
    onset = apex - lag + 1 + (int(below_before[-1]) + 1 if len(below_before) else 0)
    offset = apex + (int(below_after[0]) - 1 if len(below_after) else lag - 1)
    return onset, offset, bool(len(below_before) and len(below_after))


def _extent(motion: MotionTrack, movement: _Movement, segments: np.ndarray,
            settings: SpottingSettings) -> tuple[int, int, int]:
    """(onset, offset, lag index): the rise and fall read at the movement's lag, or at a longer one when they do not
    fit in its window and the longer lag sees the movement at least as strongly (it keeps growing: a longer
    movement). The extent always covers the movement's runs and stays in the apex's segment."""
    strongest = movement.strongest
    regions = sorted({r.region for r in movement.runs if r.scale == strongest.scale} | {strongest.region})
    first, last = _segment_range(segments, strongest.apex)
    found, scale = None, strongest.scale
    for candidate in range(strongest.scale, len(SCALES)):
        if found is not None:
            here = np.nanmean(motion.returns[strongest.apex, candidate, regions])
            before = np.nanmean(motion.returns[strongest.apex, scale, regions])
            if not np.isfinite(here) or here < 0.8 * before:
                break
        read = _read_extent(motion, candidate, strongest.apex, regions, settings)
        if read is None:
            break
        found, scale = read, candidate
        if read[2]:
            break
    onset, offset = (found[0], found[1]) if found is not None else (movement.onset, movement.offset)
    micro_runs = [r for r in movement.runs if r.scale == 0]  # the frames the spotting score shows above threshold
    onset = min([onset, *(r.onset for r in micro_runs)])
    offset = max([offset, *(r.offset for r in micro_runs)])
    return max(onset, first), min(offset, last), scale


# ----------------------------------------------------------------------------------------------------------------
# Kinds
# ----------------------------------------------------------------------------------------------------------------


def _head_moved(track: FrameTrack, motion: MotionTrack, scores: np.ndarray, onset: int, offset: int, apex: int,
                scale: int, settings: SpottingSettings) -> bool:
    pose = track.pose[onset:offset + 1]
    if np.isfinite(pose).any() and float(np.nanmax(np.ptp(np.where(np.isfinite(pose), pose, np.nanmean(pose, axis=0)),
                                                           axis=0))) > settings.head_turn:
        return True
    head = motion.flow.head[apex, scale]
    if np.isfinite(head) and float(head) > settings.head_flow:
        return True
    raw = np.nan_to_num(motion.returns[apex, scale], nan=0.0)  # an expression moves its own regions most
    alike = raw >= 0.5 * raw.max()
    return raw.max() > 0 and float(np.mean(alike)) >= settings.head_regions


def _lids_lead(movement: _Movement, aus: Sequence[int], upper: list[bool]) -> bool:
    """Whether the lids (AU7's region) are among the movement's two most moved regions (any upper-face region when
    AU7 is not spotted)."""
    ranked = sorted({r.region: r.peak for r in sorted(movement.runs, key=lambda r: r.peak)}.items(),
                    key=lambda item: -item[1])[:2]
    return any(aus[k] == 7 if 7 in aus else upper[k] for k, _ in ranked)


def _lids_down(motion: MotionTrack, movement: _Movement, aus: Sequence[int]) -> bool:
    """Whether the lids region moved down at the apex (a blink lowers the upper lid; AU7 raises the lower one);
    true when AU7's region is not spotted (no direction to read)."""
    if 7 not in aus:
        return True
    apex, scale, lids = movement.strongest.apex, movement.strongest.scale, list(aus).index(7)
    return bool(np.nan_to_num(motion.flow.vectors[apex, scale, lids, 1], nan=1.0) > 0)


def eyes_closed(track: FrameTrack, onset: int, offset: int, fps: float, settings: SpottingSettings) -> bool:
    """The eyes closed to ``blink_drop`` of their median opening (over 2 s around) during ``onset``-``offset``."""
    around = track.eye_opening[max(onset - int(2 * fps), 0):offset + int(2 * fps) + 1]
    if np.isnan(around).all():
        return False  # no landmarks (pre-aligned crops): blinks cannot be told apart
    margin = max(int(0.1 * fps), 1)
    during = track.eye_opening[max(onset - margin, 0):offset + margin + 1]
    return bool(np.nanmin(during) < settings.blink_drop * np.nanmedian(around))


def _kind(movement: _Movement, onset: int, offset: int, scale: int, lower_apexes: np.ndarray, upper: list[bool],
          aus: Sequence[int], track: FrameTrack, motion: MotionTrack, scores: np.ndarray, fps: float,
          settings: SpottingSettings) -> str:
    strongest = movement.strongest
    if _lids_lead(movement, aus, upper) and eyes_closed(track, onset, offset, fps, settings) and _lids_down(
            motion, movement, aus):
        return "blink"
    if _head_moved(track, motion, scores, onset, offset, strongest.apex, scale, settings):
        return "head_motion"
    brief = (offset - onset + 1) / fps < settings.micro_max_s
    if not upper[strongest.region] and brief:
        half = settings.speech_window_s / 2 * fps
        if int(np.sum(np.abs(lower_apexes - strongest.apex) <= half)) >= settings.speech_peaks:
            return "speech"
    if (offset - onset + 1) / fps < settings.min_duration_s:
        return "other"
    return "macro" if (offset - onset + 1) / fps >= settings.micro_max_s else "micro"


# ----------------------------------------------------------------------------------------------------------------
# Overlaps, and the whole rule
# ----------------------------------------------------------------------------------------------------------------


def _upper(candidate: Candidate, aus: Sequence[int]) -> bool:
    return upper_face(candidate.regions[0]) if candidate.regions else True


def _resolve(candidates: list[Candidate], aus: Sequence[int], fps: float) -> list[Candidate]:
    """Step 5 of the rule: micro and other intervals mostly inside a macro of their face half join it; overlapping
    macros (of one half, or half inside one another) and speech intervals less than 0.3 s apart merge."""
    macros = sorted([c for c in candidates if c.kind == "macro"], key=lambda c: -c.strength)
    merged: list[Candidate] = []
    for macro in macros:
        for kept in merged:
            iou, cover = _overlap((kept.onset, kept.offset), (macro.onset, macro.offset))
            if (iou > 0 and _upper(kept, aus) == _upper(macro, aus)) or cover >= 0.5:
                kept.onset, kept.offset = min(kept.onset, macro.onset), max(kept.offset, macro.offset)
                kept.regions = list(dict.fromkeys(kept.regions + macro.regions))
                break
        else:
            merged.append(replace(macro))
    out = list(merged)
    for candidate in candidates:
        if candidate.kind == "macro":
            continue
        host = next((m for m in merged
                     if candidate.kind in ("micro", "other") and _upper(m, aus) == _upper(candidate, aus)
                     and _overlap((candidate.onset, candidate.offset), (m.onset, m.offset))[1] >= 0.5), None)
        if host is not None:
            host.onset, host.offset = min(host.onset, candidate.onset), max(host.offset, candidate.offset)
        else:
            out.append(candidate)
    return _merge_speech(sorted(out, key=lambda c: (c.onset, c.offset)), int(round(0.3 * fps)))


def _merge_speech(candidates: list[Candidate], gap: int) -> list[Candidate]:
    out: list[Candidate] = []
    for candidate in candidates:
        last = next((c for c in reversed(out) if c.kind == "speech"), None)
        if candidate.kind == "speech" and last is not None and candidate.onset - last.offset <= gap:
            last.offset = max(last.offset, candidate.offset)
            if candidate.strength > last.strength:
                last.apex, last.strength = candidate.apex, candidate.strength
            last.regions = list(dict.fromkeys(last.regions + candidate.regions))
        else:
            out.append(candidate)
    return out


def movement_scores(motion: MotionTrack, segments: np.ndarray, settings: SpottingSettings) -> np.ndarray:
    """``(F, S, K)``: every lag's return signal in MADs over its region's noise, gated by ``min_motion``."""
    return np.stack([_gated_scores(motion.returns[:, s], segments, settings)
                     for s in range(motion.returns.shape[1])], axis=1)


def find_intervals(motion: MotionTrack, track: FrameTrack, aus: Sequence[int], fps: float,
                   settings: SpottingSettings) -> list[Candidate]:
    """Every movement above the threshold, in order of onset, each with its kind (module docstring)."""
    if not len(motion.returns) or np.isnan(motion.returns).all():
        return []
    scores = movement_scores(motion, track.segments, settings)
    upper = [upper_face(au) for au in aus]
    runs = [run for s in range(scores.shape[1]) for k in range(scores.shape[2])
            for run in _runs(scores[:, s, k], s, k, settings)]
    movements = _group(runs, upper, settings, touching=max(int(round(0.1 * fps)), 1))
    lower_apexes = _distinct(sorted(r.apex for r in runs if r.scale == 0 and not upper[r.region]),
                             max(int(round(0.1 * fps)), 1))
    candidates = []
    for movement in movements:
        onset, offset, scale = _extent(motion, movement, track.segments, settings)
        kind = _kind(movement, onset, offset, scale, lower_apexes, upper, aus, track, motion, scores, fps, settings)
        regions = sorted({r.region for r in movement.runs}, key=lambda k: -max(r.peak for r in movement.runs
                                                                                  if r.region == k))
        candidates.append(Candidate(onset, movement.strongest.apex, offset, kind, movement.strongest.peak,
                                    [int(aus[k]) for k in regions]))
    return sorted(_resolve(candidates, aus, fps) + _closures_alone(candidates, track, fps, settings),
                  key=lambda c: (c.onset, c.offset))


def _closures_alone(candidates: list[Candidate], track: FrameTrack, fps: float,
                    settings: SpottingSettings) -> list[Candidate]:
    """Blinks the landmarks see and the flow does not (a partial closure moves little skin): runs where the eyes
    are under ``blink_drop`` of their median opening (over the 4 s around), overlapping no interval."""
    opening = track.eye_opening.astype(np.float64)
    if np.isnan(opening).all():
        return []
    reach = int(2 * fps)
    closed = np.zeros(len(opening), bool)
    for t in np.flatnonzero(np.isfinite(opening)):
        around = opening[max(t - reach, 0):t + reach + 1]
        closed[t] = opening[t] < settings.blink_drop * np.nanmedian(around)
    blinks = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], closed.astype(np.int8), [0]])))
    for onset, end in zip(edges[::2], edges[1::2]):
        offset = int(end - 1)
        if track.segments[onset] < 0 or track.segments[onset] != track.segments[offset]:
            continue
        if any(c.onset <= offset and onset <= c.offset for c in candidates):
            continue  # the flow saw it: its interval has its kind already
        apex = int(onset + np.nanargmin(opening[onset:end]))
        depth = 1.0 - float(opening[apex] / np.nanmedian(opening[max(apex - reach, 0):apex + reach + 1]))
        blinks.append(Candidate(int(onset), apex, offset, "blink", round(depth, 3), []))
    return blinks


def uncovered_frames(candidates: Sequence[Candidate], score: np.ndarray, threshold: float) -> np.ndarray:
    """Frame positions whose spotting score reaches ``threshold`` outside every interval (should be none)."""
    covered = np.zeros(len(score), bool)
    for candidate in candidates:
        covered[candidate.onset:candidate.offset + 1] = True
    return np.flatnonzero((np.nan_to_num(score, nan=-np.inf) >= threshold) & ~covered)


__all__ = ["Candidate", "FrameTrack", "KINDS", "MotionSignals", "MotionTrack", "Run", "eyes_closed", "find_intervals",
           "movement_scores", "region_scores", "segment_scores", "spotting_score", "uncovered_frames"]
