"""The two passes over a video that :meth:`~microau_hf.inference.MicroAUPredictor.predict_video` makes.

1. **Measure** (:func:`measure_video`): every frame decoded once, its face tracked and checked
   (:class:`~microau_hf.face.tracking.FaceTracker`), and each AU region's optical flow measured
   (:class:`~microau_hf.spotting.MotionSignals`). No model runs; only a few seconds of small crops are held.
2. **Gather** (:func:`gather_pairs`): the video decoded again, keeping only the raw frames the model needs: the
   onset and apex of each spotted interval (and, with ``every_frame``, each frame with the one a micro window before
   it). These go through the face pipeline as any onset/apex pair does, so a spotted interval is scored exactly
   as ``microau predict --onset A --apex B`` would score its two frames.

Decoding is cheap next to finding the face (~300 against ~75 frames/s on one core at 640x360), so reading twice
costs less than holding frames.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from .face.landmarks import NoFaceError
from .face.tracking import SMOOTHING_FRAMES, FaceTracker, TrackedFrame
from .spotting import FrameTrack, MotionSignals, MotionTrack
from .video import FrameStream, VideoInfo, VideoReadError, VideoSource, VideoTooShortError, open_video


@dataclass
class MeasuredVideo:
    """The measuring pass: what was read, each frame's face, and the motion (flow per AU region, return signals)."""

    info: VideoInfo
    frames: list[TrackedFrame]
    signals: MotionTrack
    truncated_by: str
    note: str

    @property
    def track(self) -> FrameTrack:
        return FrameTrack.from_frames(self.frames)


def measure_video(stream: FrameStream, tracker: FaceTracker, signals,
                  progress: bool = False) -> MeasuredVideo:
    """Read ``stream`` to its end (or limit), feeding each frame's aligned crop to ``signals`` (a
    :class:`~microau_hf.spotting.MotionSignals`, or anything with its ``add``/``finish``/``half_widths``); :class:`NoFaceError` when no frame holds a usable face,
    :class:`VideoTooShortError` when too few do for one micro window on each side."""
    if stream.info.fps <= 0:
        stream.close()
        raise VideoReadError(f"{stream.info.path}: the video does not say its frame rate; give fps")
    frames: list[TrackedFrame] = []
    pending: deque[np.ndarray] = deque()  # the raw frames not yet aligned: SMOOTHING_FRAMES of them at most

    def align_next() -> None:
        position = len(frames) - len(pending)
        tracked = frames[position]
        tracker.align(tracked, frames[max(position - SMOOTHING_FRAMES, 0):position + SMOOTHING_FRAMES + 1])
        frame = pending.popleft()
        signals.add(tracked, tracker.crop(frame, tracked) if tracked.usable else None)
        # Kept per frame from here on: its status and a few floats; the points and the transform are done with.
        tracked.transform = None
        if position >= SMOOTHING_FRAMES:
            frames[position - SMOOTHING_FRAMES].rigid_points = None

    bar = tqdm(total=stream.frames_expected, desc="video frames", unit="frame", disable=not progress)
    try:
        for index, frame in stream:
            frames.append(tracker.track(index, frame))
            pending.append(frame)
            if len(pending) > SMOOTHING_FRAMES:
                align_next()
            bar.update(1)
        while pending:
            align_next()
    finally:
        bar.close()
        stream.close()
    name = stream.info.path
    truncated_by, note = stream.reading_note()
    if not frames:
        raise VideoTooShortError(f"{name}: no frame could be decoded; the file is empty or broken")
    usable = sum(f.usable for f in frames)
    if not usable:
        reasons = sorted({f.message for f in frames if f.message})
        raise NoFaceError(f"{name}: no usable face in any of the {len(frames)} frames read ({'; '.join(reasons)})")
    needed = 2 * signals.half_widths[0] + 1
    if usable < needed:
        raise VideoTooShortError(
            f"{name}: {usable} frames with a usable face; spotting needs at least {needed} "
            f"({needed / stream.info.fps:.2f} s at {stream.info.fps:g} fps: one micro window on each side of a frame)")
    return MeasuredVideo(stream.info, frames, signals.finish(), truncated_by, note)


Pair = tuple[np.ndarray, np.ndarray]


def gather_pairs(
    source: VideoSource,
    pairs: Sequence[tuple[int, int]],
    fps: float | None,
    limit: int | None,
) -> Iterator[tuple[tuple[int, int], Pair]]:
    """``((onset, apex), (onset frame, apex frame))`` for each ``(onset, apex)`` pair of frame positions, in apex
    order, from one decode. Only onsets still needed by a later apex are held."""
    stream = open_video(source, fps=fps, max_frames=limit)
    by_apex: dict[int, list[int]] = {}
    last_use: dict[int, int] = {}  # onset position -> the last apex that needs it
    for onset, apex in pairs:
        by_apex.setdefault(apex, []).append(onset)
        last_use[onset] = max(last_use.get(onset, apex), apex)
    held: dict[int, np.ndarray] = {}
    end = max(by_apex, default=-1)
    try:
        for position, (_, frame) in enumerate(stream):
            if position > end:
                return
            if position in last_use:
                held[position] = frame
            for onset in by_apex.get(position, []):
                yield (onset, position), (held[onset], frame)
            for onset in [o for o in held if last_use[o] <= position]:
                del held[onset]
    finally:
        stream.close()


__all__ = ["MeasuredVideo", "gather_pairs", "measure_video"]
