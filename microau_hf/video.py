"""Videos: a video file, a folder of frames or a list of frame paths, streamed one frame at a time.

:func:`open_video` gives a :class:`FrameStream` whatever the source: OpenCV decodes a file one frame at a time (so
an hour of video needs the memory of a few frames), an image sequence is read in the order of the numbers in its
file names (``img2`` before ``img10``), and ``max_frames`` / ``max_seconds`` bound what is read. After reading, the
stream says whether the file held fewer frames than its header claims. A phone video's rotation (the container's
display matrix) is applied, so its frames come upright; a frame rate no camera records (a broken header, or a
mistyped ``fps``) is refused; the frames of an image sequence are of the size most of them have, and one of another
size is marked by the tracker, never compared with its neighbours. What is done with the frames (tracking the
face, spotting) lives in :mod:`microau_hf.face.tracking`, :mod:`microau_hf.spotting` and
:meth:`~microau_hf.inference.MicroAUPredictor.predict_video`.

OpenCV is imported when a video is opened, so ``import microau_hf`` does not pay for it.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from .face import ImageLoadError
from .face.io import IMAGE_SUFFIXES, check_pixel_count

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


class VideoError(ValueError):
    """A video that cannot be used; the message is one line: ``<file>: <problem>``."""


class VideoReadError(VideoError):
    """The file is missing or OpenCV cannot decode a frame of it."""


class VideoTooShortError(VideoError):
    """The video holds too few frames with a usable face for one micro window on each side of a frame."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video. ``frame_count`` is the container's estimate (0 when unknown)."""

    path: str
    fps: float
    frame_count: int
    width: int  # of the frames as served (after the rotation below)
    height: int
    rotation: int = 0  # degrees the container asks the player to turn the frames by; applied to every frame served


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
    # A phone stores a portrait video as landscape frames plus a display rotation; OpenCV 4.11 leaves the frames
    # sideways unless asked, and a sideways face gives other AUs (or none).
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
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
            rotation=int(capture.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360,
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


#: The frame rates a camera records at: below 5 fps a half-second micro-expression spans under three frames; the
#: fastest cameras of the micro-expression corpora record at 200 fps, high-speed ones at up to 1000.
MIN_FPS, MAX_FPS = 5.0, 1000.0


def check_frame_rate(fps: float, label: str, given: bool = False) -> None:
    """:class:`VideoReadError` naming ``label`` when a known frame rate (> 0) is not one a camera records: a header
    claiming 0.01 fps would put a micro-expression at 4800 s, and 10000 fps would make every movement brief."""
    if fps > 0 and not MIN_FPS <= fps <= MAX_FPS:
        where = "the frame rate given" if given else "its header's frame rate"
        hint = "give the real one" if given else "the header is wrong: give the real frame rate with fps / --fps"
        raise VideoReadError(f"{label}: {where}, {fps:g} fps, is not one a camera records ({MIN_FPS:g}-"
                             f"{MAX_FPS:g} fps); {hint}")


def frame_limit(info: VideoInfo, max_frames: int | None, max_seconds: float | None) -> int | None:
    """The number of frames the limits allow (counted from the first); ``None`` for the whole video."""
    limits = [] if max_frames is None else [int(max_frames)]
    if max_seconds is not None:
        if info.fps > 0:
            limits.append(max(int(math.ceil(max_seconds * info.fps)), 1))
        else:
            logger.warning("%s: unknown frame rate, max_seconds ignored (use max_frames)", info.path)
    if any(limit < 2 for limit in limits):
        raise ValueError(f"{info.path}: the frame limit must allow at least 2 frames")
    return min(limits) if limits else None


class FrameStream:
    """The frames of one video file or image sequence, read one at a time: ``info`` and ``frames`` (``(index, RGB
    uint8 frame)``, within the limit). ``frames_read`` counts what was decoded so far."""

    def __init__(self, info: VideoInfo, frames: Iterator[tuple[int, np.ndarray]], limit: int | None):
        self.info = info
        self.limit = limit
        self.frames_read = 0
        self._frames = frames

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        for item in self._frames:
            self.frames_read += 1
            yield item

    @property
    def frames_expected(self) -> int | None:
        """How many frames the stream should yield, by the container's count and the limit (``None``: unknown)."""
        bounds = [n for n in (self.info.frame_count or None, self.limit) if n is not None]
        return min(bounds) if bounds else None

    def reading_note(self) -> tuple[str, str]:
        """What stopped the reading short of the end (``"frame_limit"``, ``"file_cut_short"`` or ``""``), and a line
        saying so; call it after the frames are used up."""
        claimed, read = self.info.frame_count, self.frames_read
        if self.limit is not None and read >= self.limit and (claimed == 0 or claimed > read):
            return "frame_limit", f"stopped after {read} frames (the frame limit); the rest was not read"
        if claimed > read + FRAME_COUNT_TOLERANCE:
            return "file_cut_short", (f"the file holds fewer frames than its header claims ({read} of {claimed} "
                                      f"decoded): it is cut short or damaged")
        return "", ""

    def close(self) -> None:
        self._frames.close()


#: Containers estimate their frame count; a shortfall of more than this many frames means the file is cut short.
FRAME_COUNT_TOLERANCE = 1

VideoSource = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


def image_sequence(source: VideoSource) -> list[Path] | None:
    """The frames of an image-sequence source (a folder of images, or a list of image paths) in time order, by the
    last number in each name (``img2`` before ``img10``); ``None`` for a video file."""
    if isinstance(source, (str, os.PathLike)):
        if not Path(source).is_dir():
            return None
        paths = [p for p in Path(source).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        if not paths:
            raise VideoReadError(f"{source}: a folder without images ({', '.join(IMAGE_SUFFIXES)})")
    else:
        paths = [Path(p) for p in source]
        if not paths:
            raise VideoReadError("an empty list of frames")
    return sorted(paths, key=_frame_number) if isinstance(source, (str, os.PathLike)) else paths


def _frame_number(path: Path) -> tuple[int, str]:
    numbers = re.findall(r"\d+", path.stem)
    return (int(numbers[-1]) if numbers else -1, path.name)


def open_video(
    source: VideoSource,
    fps: float | None = None,
    max_frames: int | None = None,
    max_seconds: float | None = None,
) -> FrameStream:
    """A video file, a folder of frames or a list of frame paths as one :class:`FrameStream`.

    ``fps`` is required for image sequences (their files carry no frame rate) and overrides a video's header
    otherwise. Raises :class:`VideoReadError` (missing, undecodable, over the pixel bound).
    """
    sequence = image_sequence(source)
    if sequence is None:
        info = probe_video(source)
        if fps:
            info = dataclasses.replace(info, fps=float(fps))
        frames = iter_frames(source)
    else:
        if not fps:
            raise VideoReadError(f"{_describe(source)}: image frames carry no frame rate; give fps")
        width, height = _common_size(sequence)
        info = VideoInfo(_describe(source), float(fps), len(sequence), width, height)
        frames = ((i, _load_frame(p)) for i, p in enumerate(sequence))
    check_frame_rate(info.fps, info.path, given=bool(fps))
    try:
        check_pixel_count(info.width, info.height, info.path)
    except ImageLoadError as err:
        raise VideoReadError(str(err)) from None
    limit = frame_limit(info, max_frames, max_seconds)
    if limit is not None:
        frames = itertools.islice(frames, limit)
    return FrameStream(info, _closing(frames), limit)


def _closing(frames: Iterable) -> Iterator:
    try:
        yield from frames
    finally:
        if hasattr(frames, "close"):
            frames.close()


def _describe(source: VideoSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return f"{Path(source[0]).parent} ({len(source)} frames)" if len(source) else "<no frames>"


def _common_size(paths: Sequence[Path]) -> tuple[int, int]:
    """The ``(width, height)`` most frames of an image sequence have, from their headers (nothing decoded): the
    size of the video, which a frame of another size (a stray file, a resized frame) must not set."""
    from PIL import Image

    sizes: dict[tuple[int, int], int] = {}
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes[image.size] = sizes.get(image.size, 0) + 1
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            continue  # unreadable: reading the frame names the file and the problem
    if not sizes:
        _load_frame(paths[0])  # raises, naming the first frame and its problem
        raise VideoReadError(f"{paths[0]}: cannot read the frames' sizes")
    return max(sizes, key=sizes.get)


def _load_frame(path: Path) -> np.ndarray:
    from .face.io import load_image

    try:
        return load_image(path)
    except ImageLoadError as err:
        raise VideoReadError(str(err)) from None


__all__ = [
    "FrameStream",
    "VIDEO_SUFFIXES",
    "VideoError",
    "VideoInfo",
    "VideoReadError",
    "VideoTooShortError",
    "MAX_FPS",
    "MIN_FPS",
    "check_frame_rate",
    "frame_limit",
    "image_sequence",
    "is_video_path",
    "iter_frames",
    "open_video",
    "probe_video",
    "write_video",
]
