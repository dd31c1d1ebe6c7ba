"""Videos: frames streamed one at a time, one alignment taken from the onset, the apex found by motion.

The rules, as :meth:`~microau_hf.inference.MicroAUPredictor.predict_video` applies them:

* **Onset** is the frame at ``onset_frame`` (default 0, the first frame): the corpora define the onset as the frame
  where the movement starts, and a clip handed to us usually starts there. The face is found on the onset only, and
  the onset's similarity transform aligns *every* later frame, exactly as the face pipeline aligns an apex: fitting
  each frame separately would pull its landmarks back onto the canonical face and erase the very movement we look for.
* **Motion** of a frame is the mean absolute difference between its aligned crop and the onset's (0..255 scale).
  The **apex** is the frame of largest motion (the first one on ties): the usual estimate when no apex is annotated.
  Head motion and lighting changes count as motion too, as in every difference-based apex spotter.
* **Memory** stays flat: OpenCV decodes one frame at a time, and only the onset crop, the best apex crop so far and
  one batch of crops are held, so an hour of video needs the memory of a few frames (plus a few floats a frame).
* **Limits**: ``max_frames`` / ``max_seconds`` count from the onset, the onset included.

OpenCV is imported when a video is opened, so ``import microau_hf`` does not pay for it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .face import FacePreparer, ImageLoadError, PreparedPair
from .face.io import check_pixel_count
from .face.align import warp

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


class VideoError(ValueError):
    """A video that cannot be used; the message is one line: ``<file>: <problem>``."""


class VideoReadError(VideoError):
    """The file is missing or OpenCV cannot decode a frame of it."""


class VideoTooShortError(VideoError):
    """The video has no frame after the onset, so there is nothing to compare the onset with."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video. ``frame_count`` is the container's estimate (0 when unknown)."""

    path: str
    fps: float
    frame_count: int
    width: int
    height: int


def is_video_path(source: object) -> bool:
    """True for a path whose suffix is a common video container's."""
    return isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() in VIDEO_SUFFIXES


def _open(path: str | os.PathLike):
    import cv2  # imported here: OpenCV is only needed for videos and landmark alignment

    if not Path(path).is_file():
        raise VideoReadError(f"{path}: no such file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoReadError(f"{path}: cannot open the video (not a format OpenCV can decode)")
    return capture


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """The video's frame rate, frame count and size, without decoding it."""
    import cv2

    capture = _open(path)
    try:
        return VideoInfo(
            path=str(path),
            fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
            frame_count=max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0),
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
        )
    finally:
        capture.release()


def iter_frames(
    path: str | os.PathLike, start: int = 0, max_frames: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, RGB uint8 frame)`` from frame ``start`` on, at most ``max_frames`` of them, decoded one at a time.

    Frames before ``start`` are decoded and dropped rather than seeked past: seeking is not frame-exact for every codec.
    """
    import cv2

    capture = _open(path)
    try:
        index = 0
        while max_frames is None or index < start + max_frames:
            ok, frame = capture.read()
            if not ok:
                return
            if index >= start:
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()  # also runs when the caller stops early and the generator is closed


def write_video(
    path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 30.0, codec: str = "FFV1"
) -> Path:
    """Write RGB uint8 frames of one size to ``path`` (``.avi`` or ``.mkv``), one at a time: for tests and demos.

    The default FFV1 is lossless, so the frames read back are the frames written (MJPG, for one, codes its first
    frame differently from the others, which shows up as motion); ``codec="mp4v"`` into an ``.mp4`` gives small files.
    """
    import cv2

    writer = None
    try:
        for frame in frames:
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
                if not writer.isOpened():
                    raise VideoError(f"{path}: OpenCV cannot write {codec!r} video here")
            writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise VideoError(f"{path}: no frames to write")
    return Path(path)


def frame_limit(info: VideoInfo, max_frames: int | None, max_seconds: float | None) -> int | None:
    """The number of frames (onset included) the limits allow; ``None`` for the whole video."""
    limits = [] if max_frames is None else [int(max_frames)]
    if max_seconds is not None:
        if info.fps > 0:
            limits.append(max(int(math.ceil(max_seconds * info.fps)), 1))
        else:
            logger.warning("%s: unknown frame rate, max_seconds ignored (use max_frames)", info.path)
    if any(limit < 2 for limit in limits):
        raise ValueError(f"{info.path}: the frame limit must allow at least 2 frames (onset and one more)")
    return min(limits) if limits else None


class FrameAligner:
    """Aligns any frame of one video with the transform found on its onset (or, without landmarks, resizes it)."""

    def __init__(self, transform: np.ndarray | None, size: int):
        self.transform = transform
        self.size = size

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.transform is None:
            # The template path of FacePreparer: the whole frame is the crop, resized bicubically like the processor.
            return np.asarray(Image.fromarray(frame).resize((self.size, self.size), Image.BICUBIC))
        return warp(frame, self.transform, self.size)


@dataclass
class AlignedVideo:
    """A video aligned on its onset. ``onset`` is the face pipeline's result for the onset frame (its ``apex`` is the
    onset crop too); ``frames`` streams ``(index, aligned crop)`` for the frames after it, within the limits."""

    info: VideoInfo
    onset_index: int
    onset: PreparedPair
    aligner: FrameAligner
    frames: Iterator[tuple[int, np.ndarray]]
    limit: int | None

    def pair(self, apex_crop: np.ndarray, apex_index: int) -> PreparedPair:
        """The onset/apex sample for the model: the onset's regions and landmarks, this apex crop."""
        name = f"{self.info.path} frames {self.onset_index}-{apex_index}"
        return dataclasses.replace(self.onset, name=name, apex=apex_crop)

    @property
    def frames_expected(self) -> int | None:
        """How many frames ``frames`` should yield, by the container's count and the limits (``None``: unknown)."""
        claimed = self.info.frame_count - self.onset_index if self.info.frame_count > 0 else None
        bounds = [n for n in (claimed, self.limit) if n is not None]
        return max(min(bounds) - 1, 0) if bounds else None

    def close(self) -> None:
        """Release the video before the frames are used up."""
        self.frames.close()


def align_video(
    path: str | os.PathLike,
    preparer: FacePreparer,
    onset_frame: int = 0,
    max_frames: int | None = None,
    max_seconds: float | None = None,
) -> AlignedVideo:
    """Open a video, find and align the face on its onset, and stream the later frames aligned the same way.

    Raises :class:`VideoReadError` (missing or undecodable file, no onset frame), :class:`VideoTooShortError` (no
    frame after the onset) or :class:`~microau_hf.face.NoFaceError` (no face in the onset).
    """
    info = probe_video(path)
    try:
        check_pixel_count(info.width, info.height, str(path))
    except ImageLoadError as err:
        raise VideoReadError(str(err)) from None
    limit = frame_limit(info, max_frames, max_seconds)
    frames = iter_frames(path, start=onset_frame, max_frames=limit)
    try:
        first = next(frames, None)
        if first is None:
            raise VideoReadError(f"{path}: cannot decode frame {onset_frame} (the onset); the file is empty or broken")
        onset_index, onset_rgb = first
        onset = _prepare_onset(preparer, onset_rgb, f"{path} (frame {onset_index})")
        second = next(frames, None)
        if second is None:
            raise VideoTooShortError(f"{path}: only one frame from the onset on; a video needs at least two")
    except BaseException:
        frames.close()  # release the capture now, not whenever the generator is collected
        raise
    aligner = FrameAligner(onset.extra.get("transform"), preparer.image_size)
    return AlignedVideo(info, onset_index, onset, aligner, _aligned(second, frames, aligner), limit)


def _prepare_onset(preparer: FacePreparer, frame: np.ndarray, name: str) -> PreparedPair:
    """The face pipeline on the onset; its NoFaceError reads ``<file> (frame i) onset: no face found``."""
    try:
        return preparer.prepare(frame, frame, name)
    except ImageLoadError as err:  # a frame too small to hold a usable face
        raise VideoReadError(str(err)) from None


def _aligned(first: tuple[int, np.ndarray], rest: Iterator, aligner: FrameAligner) -> Iterator[tuple[int, np.ndarray]]:
    index, frame = first
    yield index, aligner(frame)
    try:
        for index, frame in rest:
            yield index, aligner(frame)
    finally:
        rest.close()


def motion(onset_crop: np.ndarray, crop: np.ndarray) -> float:
    """Mean absolute difference of two aligned crops (0..255): how much the frame moved away from the onset."""
    import cv2

    return float(cv2.absdiff(onset_crop, crop).mean())


class ApexTracker:
    """Follows the motion of each frame against the onset and keeps the crop of the largest (the apex so far)."""

    def __init__(self, onset_crop: np.ndarray, onset_index: int = 0):
        self.onset_crop = onset_crop
        self.indices: list[int] = [onset_index]
        self.motions: list[float] = [0.0]
        self.apex_index: int | None = None
        self.apex_crop: np.ndarray | None = None
        self._best = -1.0

    def update(self, index: int, crop: np.ndarray) -> float:
        value = motion(self.onset_crop, crop)
        self.indices.append(index)
        self.motions.append(value)
        if value > self._best:  # strict: the first frame wins a tie
            self._best, self.apex_index, self.apex_crop = value, index, crop.copy()
        return value


class FrameScorer:
    """Gathers aligned frames into batches and scores each batch with ``score`` (crops -> ``(B, K)`` probabilities),
    so the model sees ``batch_size`` frames a call and no more than that are held."""

    def __init__(self, score: Callable[[list[np.ndarray]], np.ndarray], batch_size: int = 16):
        self.score = score
        self.batch_size = batch_size
        self.indices: list[int] = []
        self.pending: list[np.ndarray] = []
        self.chunks: list[np.ndarray] = []

    def add(self, index: int, crop: np.ndarray) -> None:
        self.indices.append(index)
        self.pending.append(crop)
        if len(self.pending) == self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.chunks.append(self.score(self.pending))
            self.pending = []

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The scored frame indices ``(S,)`` and their probabilities ``(S, K)``."""
        self.flush()
        return np.array(self.indices), np.concatenate(self.chunks)


def find_apex(video: AlignedVideo) -> ApexTracker:
    """Read the whole (limited) video and return the tracker holding its apex and motion curve."""
    tracker = ApexTracker(video.onset.onset, video.onset_index)
    for index, crop in video.frames:
        tracker.update(index, crop)
    return tracker


__all__ = [
    "AlignedVideo",
    "ApexTracker",
    "FrameAligner",
    "FrameScorer",
    "VIDEO_SUFFIXES",
    "VideoError",
    "VideoInfo",
    "VideoReadError",
    "VideoTooShortError",
    "align_video",
    "find_apex",
    "frame_limit",
    "is_video_path",
    "iter_frames",
    "motion",
    "probe_video",
    "write_video",
]
