"""The gray-level spotter this project used before optical flow, kept as a baseline for the benchmark.

Where the face moved briefly, and back, in each AU region, measured on gray levels:

Every usable frame is aligned on its rigid points (:mod:`microau_hf.face.tracking`), turned to gray, blurred and
divided by its mean brightness (so a light flicker is not motion). Then, for each frame ``t`` and each AU region:

    motion_k(t) = min( |F(t) - F(t - k)|, |F(t) - F(t + k)| )       (mean over the region's pixels)

where ``F(t +- k)`` is the mean of the three frames around ``t +- k``. A movement that rises and falls back within
``2k`` frames differs from *both* sides at its apex; a step (a head that settles in a new pose, a face that stays
smiling) differs from one side only and scores ~0. It is the feature-difference idea of Moilanen et al. (ICPR 2014),
the baseline of the MEGC spotting challenges, with a minimum in place of their mean so that steps cancel.

Three window sizes are computed: ``micro`` (``k`` = 0.3 s, a micro-expression lasts at most 0.5 s), ``long`` (1 s)
and ``macro`` (2 s). A micro-expression is a peak of the micro signal that the long window does not see as larger:
a movement longer than ~0.6 s keeps growing with the window, a brief one does not.

Decisions, in :func:`find_intervals`:

* each region's signal is divided by its own noise (median and MAD over the segment), so a talking mouth does not
  drown a still brow, and a peak must stand ``threshold_mads`` MADs above its region's median *and* move at least
  ``min_motion`` gray levels (so a perfectly still video gives no interval);
* onset and offset: where the peak's regions fall back under ``extent_fraction`` of the peak, widened by
  ``extent_pad_s`` on each side for a micro-expression (near a movement's ends the micro window's far side still
  lies inside the movement, so the signal shows only its middle); a peak narrower
  than ``min_duration_s`` is a one-frame glitch (a landmark fit off for one frame) and is dropped;
* a peak is part of a longer movement, a macro-expression (listed, labelled ``"macro"``), when its long-window
  response exceeds the micro one by more than ``1 / micro_ratio`` (it keeps growing past 0.3 s), when the frames
  a micro window before and after it differ by more than ``return_fraction`` of the peak (the face did not come
  back: the rising or falling edge of a longer movement), or when it is wider than ``micro_max_s``; overlapping
  macro intervals are merged;
* a peak in the upper face during a blink (the eye opening drops below ``blink_drop`` of its median) is a blink, and a
  peak during an out-of-plane head turn (``head_turn`` interocular distances of nose shift) is head motion: both listed
  with their kind, never as micro-expressions;
* no interval contains a frame without a usable face or spans a cut.

Memory: the frames of one macro window (4 s) are held as small crops; per frame, a few floats per region are kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..face.tracking import TrackedFrame
from .intervals import Candidate, FrameTrack, eyes_closed, segment_scores
from .regions import region_masks, upper_face

#: The window half-widths, in seconds, in the order the signals are stored.
WINDOWS = ("micro", "long", "macro")
#: The signals stored per frame: each window's motion, then how much the micro window's two sides differ.
SIGNALS = (*WINDOWS, "micro_sides")


@dataclass(frozen=True)
class GraySettings:
    """How the gray-level spotter decided (its defaults as shipped before optical flow). ``threshold_mads``, ``micro_ratio``, ``return_fraction``, ``extent_pad_s`` and
    ``top_regions`` were chosen on the spotting benchmark's dev videos only (best micro F1 of a grid; the test videos
    were scored once, after; docs/spotting/README.md)."""

    feature_size: int = 160  # px, side of the aligned gray crops compared
    micro_window_s: float = 0.3
    long_window_s: float = 1.0
    macro_window_s: float = 2.0
    micro_max_s: float = 0.5  # longest micro-expression (onset to offset)
    min_duration_s: float = 0.1  # shorter peaks are one-frame glitches (a landmark fit off for a frame), dropped
    threshold_mads: float = 3.0
    min_motion: float = 0.2  # gray levels (of 255, at mean brightness 128)
    extent_fraction: float = 0.1
    extent_pad_s: float = 0.1  # the micro window's sides lie inside a movement near its ends: it sees only its middle
    micro_ratio: float = 0.5  # micro response / long response at the apex, at least
    return_fraction: float = 0.5  # the two sides of the micro window may differ by at most this much of the peak
    blink_drop: float = 0.7
    head_turn: float = 0.06
    top_regions: int = 1

    def frames(self, seconds: float, fps: float) -> int:
        """``seconds`` as a number of frames at ``fps`` (at least 2)."""
        return max(int(round(seconds * fps)), 2)


@dataclass(frozen=True)
class Glitch:
    """A peak narrower than ``min_duration_s``: a landmark fit off for a frame, not a movement (its frames are
    still taken, so that its neighbours do not become peaks in its place)."""

    onset: int
    offset: int


def normalised_crop(crop: np.ndarray) -> np.ndarray:
    """A gray crop blurred (codec noise, landmark jitter) and scaled to mean 128 (light flicker), flattened."""
    import cv2

    blurred = cv2.GaussianBlur(crop, (0, 0), 1.0)
    mean = float(blurred.mean())
    return (blurred * (128.0 / mean if mean > 1 else 1.0)).ravel()


class GraySignals:
    """Streams frames in and the windowed region motion out, holding only one macro window of crops.

    ``add(tracked, crop)`` for each frame in order (``crop`` ``None`` when the frame is not usable), then ``finish()``:
    ``(F, K)`` per name of :data:`SIGNALS` (each window's motion, and how much the micro window's two sides differ),
    NaN where a frame or its neighbours are missing.
    """

    def __init__(self, aus: Sequence[int], fps: float, settings: GraySettings):
        self.masks = region_masks(aus, settings.feature_size)
        self.half_widths = [settings.frames(s, fps) for s in
                            (settings.micro_window_s, settings.long_window_s, settings.macro_window_s)]
        self.reach = max(self.half_widths) + 1
        self._crops: dict[int, tuple[int, np.ndarray]] = {}  # position -> (segment, crop), within reach of the centre
        self._order: deque[int] = deque()
        self._rows: list[np.ndarray] = []
        self._count = 0

    def add(self, tracked: TrackedFrame, crop: np.ndarray | None) -> None:
        position = self._count
        self._count += 1
        if crop is not None:
            self._crops[position] = (tracked.segment, normalised_crop(crop))
            self._order.append(position)
        centre = position - self.reach
        if centre >= 0:
            self._rows.append(self._at(centre))
        while self._order and self._order[0] < position - 2 * self.reach:
            self._crops.pop(self._order.popleft())

    def finish(self) -> dict[str, np.ndarray]:
        for centre in range(max(self._count - self.reach, 0), self._count):
            self._rows.append(self._at(centre))
        stacked = np.stack(self._rows) if self._rows else np.zeros((0, len(SIGNALS), len(self.masks)), np.float32)
        return {name: stacked[:, w] for w, name in enumerate(SIGNALS)}

    def _at(self, centre: int) -> np.ndarray:
        row = np.full((len(SIGNALS), len(self.masks)), np.nan, np.float32)
        if centre not in self._crops:
            return row
        segment, crop = self._crops[centre]
        for w, k in enumerate(self.half_widths):
            before, after = self._around(centre - k, segment), self._around(centre + k, segment)
            if before is not None and after is not None:
                row[w] = np.minimum(self.masks @ np.abs(crop - before), self.masks @ np.abs(crop - after))
                if w == 0:
                    row[len(WINDOWS)] = self.masks @ np.abs(before - after)
        return row

    def _around(self, position: int, segment: int) -> np.ndarray | None:
        """The mean crop of the frames at ``position`` +- 1 in ``segment``; ``None`` without the one at ``position``."""
        if self._crops.get(position, (None,))[0] != segment:
            return None
        near = [self._crops[p][1] for p in (position - 1, position, position + 1)
                if self._crops.get(p, (None,))[0] == segment]
        return np.mean(near, axis=0)


# ----------------------------------------------------------------------------------------------------------------
# From signals to intervals
# ----------------------------------------------------------------------------------------------------------------


def _top_regions(micro: np.ndarray, segments: np.ndarray, settings: GraySettings) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the ``top_regions`` regions that moved most (in MADs), and their mean MAD score."""
    scores = np.nan_to_num(segment_scores(micro, segments), nan=-np.inf)
    ranked = np.argsort(-scores, axis=1)[:, :settings.top_regions]
    return ranked, np.take_along_axis(scores, ranked, axis=1).mean(axis=1)


def spotting_score(micro: np.ndarray, segments: np.ndarray, settings: GraySettings) -> np.ndarray:
    """``(F,)``: the mean MAD score of each frame's most moved regions (NaN where it cannot be measured); a frame is
    a micro-expression apex candidate where it reaches ``settings.threshold_mads``."""
    if not len(micro) or np.isnan(micro).all():
        return np.full(len(micro), np.nan, np.float32)
    _, strength = _top_regions(micro, segments, settings)
    return np.where(np.isfinite(strength), strength, np.nan).astype(np.float32)


def find_intervals(
    signals: dict[str, np.ndarray], track: FrameTrack, aus: Sequence[int], fps: float, settings: GraySettings
) -> list[Candidate]:
    """The movements in a video, strongest first; see the module docstring for the rules."""
    micro = signals["micro"]
    if not len(micro) or np.isnan(micro).all():
        return []
    ranked, strength = _top_regions(micro, track.segments, settings)
    raw_top = np.take_along_axis(np.nan_to_num(micro, nan=0.0), ranked, axis=1).mean(axis=1)
    eligible = (strength >= settings.threshold_mads) & (raw_top >= settings.min_motion)
    half = settings.frames(settings.micro_window_s, fps)
    candidates: list[Candidate] = []
    taken = np.zeros(len(micro), bool)
    for apex in np.argsort(-np.where(eligible, strength, -np.inf)):
        if not eligible[apex]:
            break
        if taken[max(apex - half, 0):apex + half + 1].any():
            continue  # within a window of a stronger peak: the same movement
        regions = list(ranked[apex])
        candidate = _candidate(int(apex), regions, signals, track, aus, fps, settings, float(strength[apex]))
        taken[candidate.onset:candidate.offset + 1] = True
        taken[max(apex - half, 0):apex + half + 1] = True
        if isinstance(candidate, Candidate):
            candidates.append(candidate)
    return _merge_macros(candidates)


def _merge_macros(candidates: list[Candidate]) -> list[Candidate]:
    """One macro-expression for each group of overlapping macro intervals (the strongest peak's apex and regions)."""
    merged: list[Candidate] = []
    for candidate in candidates:  # strongest first
        if candidate.kind == "macro":
            for kept in merged:
                if kept.kind == "macro" and candidate.onset <= kept.offset and kept.onset <= candidate.offset:
                    kept.onset, kept.offset = min(kept.onset, candidate.onset), max(kept.offset, candidate.offset)
                    break
            else:
                merged.append(candidate)
        else:
            merged.append(candidate)
    return merged


def _candidate(apex: int, regions: list[int], signals: dict[str, np.ndarray], track: FrameTrack, aus: Sequence[int],
               fps: float, settings: GraySettings, strength: float) -> Candidate | Glitch:
    micro, long, sides = (_above_floor(signals[name][:, regions], track.segments, apex)
                          for name in ("micro", "long", "micro_sides"))
    onset, offset = _extent(micro, apex, track.segments, settings.extent_fraction)
    if offset - onset + 1 < settings.min_duration_s * fps:
        return Glitch(onset, offset)
    kind = "micro"
    too_long = (offset - onset + 1) / fps > settings.micro_max_s
    grows = not np.isnan(long[apex]) and micro[apex] < settings.micro_ratio * long[apex]
    stays = sides[apex] > settings.return_fraction * micro[apex]  # the face did not come back: part of a longer move
    if too_long or grows or stays:
        kind = "macro"
        macro = _above_floor(signals["macro"][:, regions], track.segments, apex)
        if not np.isnan(macro[apex]):
            onset, offset = _extent(macro, apex, track.segments, settings.extent_fraction)
    elif _is_blink(track, onset, offset, [aus[r] for r in regions], fps, settings):
        kind = "blink"
    elif _head_turned(track, onset, offset, settings):
        kind = "head_motion"
    else:
        onset, offset = _padded(onset, offset, apex, track.segments, int(round(settings.extent_pad_s * fps)))
    return Candidate(onset, apex, offset, kind, strength, [int(aus[r]) for r in regions])


def _padded(onset: int, offset: int, apex: int, segments: np.ndarray, pad: int) -> tuple[int, int]:
    """The extent widened by ``pad`` frames on each side, within the apex's segment."""
    same = np.flatnonzero(segments == segments[apex])
    return max(onset - pad, int(same[0])), min(offset + pad, int(same[-1]))


def _above_floor(signal: np.ndarray, segments: np.ndarray, apex: int) -> np.ndarray:
    """The regions' mean signal over the median of the apex's segment: what moved beyond the noise every frame has
    (so that the ratios of the kind tests compare movements, not noise)."""
    mean = signal.mean(axis=1)
    same = segments == segments[apex]
    floor = float(np.nanmedian(mean[same])) if np.isfinite(mean[same]).any() else 0.0
    return mean - floor


def _extent(signal: np.ndarray, apex: int, segments: np.ndarray, fraction: float) -> tuple[int, int]:
    """Onset and offset around ``apex``: the last frames, on each side, above ``fraction`` of the peak over the
    signal's floor, within the apex's segment."""
    floor = float(np.nanmedian(signal))
    level = floor + fraction * (float(signal[apex]) - floor)
    onset = offset = apex
    while onset > 0 and segments[onset - 1] == segments[apex] and signal[onset - 1] > level:
        onset -= 1
    while offset < len(signal) - 1 and segments[offset + 1] == segments[apex] and signal[offset + 1] > level:
        offset += 1
    return onset, offset


def _is_blink(track: FrameTrack, onset: int, offset: int, regions: list[int], fps: float, settings) -> bool:
    """The eyes closed during the interval and the movement is in the upper face."""
    return all(upper_face(au) for au in regions) and eyes_closed(track, onset, offset, fps, settings)


def _head_turned(track: FrameTrack, onset: int, offset: int, settings) -> bool:
    pose = track.pose[onset:offset + 1]
    if np.isnan(pose).all():
        return False
    return bool((np.nanmax(pose, axis=0) - np.nanmin(pose, axis=0)).max() > settings.head_turn)


__all__ = ["GraySettings", "GraySignals", "SIGNALS", "WINDOWS", "find_intervals", "normalised_crop", "spotting_score"]
