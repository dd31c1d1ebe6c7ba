"""The face in every frame of a video: found anew on each frame, checked, and aligned on its rigid points only.

Spotting compares each frame with its neighbours a fraction of a second away, so the head must hold still in the
crops while the skin may move. Two choices make that so:

* **Landmarks on every frame.** MediaPipe's detector and mesh run at ~75 frames/s on one core at 640x360 (measured
  here), so no frame needs to borrow an older frame's landmarks; a face that turns or leaves is seen at once.
* **Alignment on rigid points, smoothed.** Each frame's transform is fitted to the eye corners and the nose, which the facial
  muscles of the AUs spotted here hardly move. The pair pipeline fits five points including the mouth corners,
  which is right for one onset/apex pair (the apex reuses the onset's transform) but would pull a smiling mouth
  back to the resting one if every frame were fitted separately. The points are the median over the
  :data:`SMOOTHING_FRAMES` frames on each side (same segment): a landmark fit jitters by a pixel or so from frame to
  frame, which on its own shows as motion everywhere; a centred median removes it, follows a steady head turn
  without lag and keeps a sudden jump sharp (a mean would smear it into a few misaligned frames).

Each frame gets a :data:`FaceStatus`; ``"found"``, ``"several_faces"`` (the largest face, as pairs take it) and
``"cut"`` (a face, in a new shot) frames are usable; ``"lost"``, ``"too_small"`` and ``"size_changed"`` (a frame
of another size than the video's, as a stray or resized file in a frame folder is) ones are not. A frame whose picture jumps from the previous one (a cut) starts a new *segment*; so does the
first usable frame after unusable ones. Spotting never compares frames of different segments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..aus import CANONICAL_LANDMARKS
from .align import similarity_transform, warp
from .landmarks import Face, LandmarkBackend, NoFaceError
from .pipeline import MIN_INTEROCULAR_PX
from .regions import interocular

FaceStatus = Literal["found", "several_faces", "lost", "too_small", "cut", "size_changed"]
USABLE_STATUSES = ("found", "several_faces", "cut")  # a cut frame holds a face: it starts a segment

#: The points head motion is measured on: eye corners and the nose's bridge and tip, which the spotted AUs hardly
#: move (the nose wings are left out: a smile or a lip raise pulls them).
RIGID_LANDMARKS = ("eye_inner_left", "eye_inner_right", "eye_outer_left", "eye_outer_right", "nose_bridge")

#: Mean absolute difference (0..255) between two consecutive 32 px thumbnails above which the picture is a new shot.
CUT_THUMBNAIL_DIFFERENCE = 40.0
#: A face centre that moves more than this many interocular distances from one frame to the next is a cut, too.
CUT_FACE_JUMP_IOD = 1.0
#: Frames on each side whose rigid points are averaged into a frame's alignment.
SMOOTHING_FRAMES = 2


@dataclass
class TrackedFrame:
    """One frame's face. ``rigid_points`` are the face's :data:`RIGID_LANDMARKS` in frame pixels; ``transform``
    (set by :meth:`FaceTracker.align`) maps the frame to a ``size`` crop on the canonical face; both ``None`` when
    the frame is not usable. ``pose`` is ``(yaw, pitch)`` proxies from the landmarks (nose offset from
    the eyes' midpoint in interocular units): out-of-plane turns, which a 2-D alignment cannot undo."""

    index: int
    status: FaceStatus
    segment: int
    rigid_points: np.ndarray | None = None
    transform: np.ndarray | None = None
    eye_opening: float = math.nan  # eye height / eye width, both eyes averaged: drops during a blink
    pose: tuple[float, float] = (math.nan, math.nan)
    num_faces: int = 0
    message: str = ""

    @property
    def usable(self) -> bool:
        return self.status in USABLE_STATUSES


def rigid_transform(points: np.ndarray, size: int) -> np.ndarray:
    """The similarity transform taking rigid points (:data:`RIGID_LANDMARKS`, frame pixels) onto the canonical
    face in a ``size`` crop."""
    target = np.array([CANONICAL_LANDMARKS[name] for name in RIGID_LANDMARKS]) * size
    return similarity_transform(points, target)


def eye_opening(landmarks: dict[str, tuple[float, float]]) -> float:
    """Eye height over eye width, the mean of both eyes (~0.25-0.35 open, under ~0.15 closed)."""
    ratios = []
    for side in ("left", "right"):
        height = math.dist(landmarks[f"eye_top_{side}"], landmarks[f"eye_bottom_{side}"])
        width = math.dist(landmarks[f"eye_outer_{side}"], landmarks[f"eye_inner_{side}"])
        ratios.append(height / width if width > 0 else math.nan)
    return float(np.mean(ratios))


def head_pose(landmarks: dict[str, tuple[float, float]]) -> tuple[float, float]:
    """``(yaw, pitch)`` proxies: the nose tip's offset from the eyes' midpoint along and across the eye line, in
    interocular distances (a frontal face has yaw ~0)."""
    (lx, ly), (rx, ry) = landmarks["eye_center_left"], landmarks["eye_center_right"]
    distance = math.hypot(rx - lx, ry - ly)
    across = np.array([rx - lx, ry - ly]) / distance
    down = np.array([-across[1], across[0]])
    offset = np.array(landmarks["nose_tip"]) - ((lx + rx) / 2, (ly + ry) / 2)
    return float(offset @ across / distance), float(offset @ down / distance)


class FaceTracker:
    """Finds, checks and aligns the face frame by frame; ``landmarker=None`` takes frames as aligned crops.

    Args:
        landmarker: the landmark backend, or ``None`` for frames that are already aligned face crops.
        size: side of the crops :meth:`crop` makes.
        frame_size: the video's ``(width, height)``; a frame of another size is ``"size_changed"`` (default: the
            first frame's size).
    """

    def __init__(self, landmarker: LandmarkBackend | None, size: int, frame_size: tuple[int, int] | None = None):
        self.landmarker = landmarker
        self.size = size
        self.frame_size = frame_size
        self._segment = -1
        self._previous: TrackedFrame | None = None
        self._previous_thumbnail: np.ndarray | None = None
        self._previous_centre: tuple[np.ndarray, float] | None = None

    def track(self, index: int, frame: np.ndarray) -> TrackedFrame:
        """The face of the next frame (frames must come in order)."""
        import cv2

        self.frame_size = self.frame_size or (frame.shape[1], frame.shape[0])
        if (frame.shape[1], frame.shape[0]) != self.frame_size:
            # Its face would sit elsewhere in another geometry: compared with its neighbours it reads as a big
            # movement. It is left out, and ends the segment, as a frame without a face does.
            self._previous = TrackedFrame(index, "size_changed", -1, message=(
                f"frame is {frame.shape[1]}x{frame.shape[0]} px, the video's are {self.frame_size[0]}x"
                f"{self.frame_size[1]}"))
            return self._previous
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        thumbnail = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
        cut = (self._previous_thumbnail is not None
               and float(np.abs(thumbnail - self._previous_thumbnail).mean()) > CUT_THUMBNAIL_DIFFERENCE)
        self._previous_thumbnail = thumbnail
        tracked = self._find(index, frame, cut)
        if tracked.usable and (self._previous is None or not self._previous.usable or tracked.status == "cut"):
            self._segment += 1
        tracked.segment = self._segment if tracked.usable else -1
        self._previous = tracked
        return tracked

    def _find(self, index: int, frame: np.ndarray, cut: bool) -> TrackedFrame:
        if self.landmarker is None:
            scale = self.size / frame.shape[1], self.size / frame.shape[0]
            transform = np.array([[scale[0], 0.0, 0.0], [0.0, scale[1], 0.0]])
            return TrackedFrame(index, "cut" if cut else "found", -1, transform=transform, num_faces=1,
                                message="a cut: the picture changed at once" if cut else "")
        try:
            face = self.landmarker.detect(frame, name=f"frame {index}")
        except NoFaceError:
            self._previous_centre = None
            return TrackedFrame(index, "lost", -1, message="no face found")
        distance = interocular(face.semantic)
        if distance < MIN_INTEROCULAR_PX:
            return TrackedFrame(index, "too_small", -1, num_faces=face.num_faces,
                                message=f"face too small (eyes {distance:.0f} px apart)")
        centre = np.mean([face.semantic["eye_center_left"], face.semantic["eye_center_right"]], axis=0)
        jumped = (self._previous_centre is not None
                  and np.linalg.norm(centre - self._previous_centre[0]) > CUT_FACE_JUMP_IOD * self._previous_centre[1])
        self._previous_centre = (centre, distance)
        cut = cut or jumped
        status: FaceStatus = "cut" if cut else ("several_faces" if face.num_faces > 1 else "found")
        message = "a cut: the picture changed at once" if cut else (
            f"{face.num_faces} faces found; took the largest" if face.num_faces > 1 else "")
        points = np.array([face.semantic[name] for name in RIGID_LANDMARKS])
        return TrackedFrame(index, status, -1, points, None, eye_opening(face.semantic), head_pose(face.semantic),
                            face.num_faces, message)

    def align(self, centre: TrackedFrame, neighbours: list[TrackedFrame]) -> None:
        """Set ``centre.transform`` from the median rigid points of ``neighbours`` (the frames within
        :data:`SMOOTHING_FRAMES` of it, itself included) that share its segment."""
        if centre.rigid_points is None:
            return  # template crops keep their resize; unusable frames get none
        same = [f.rigid_points for f in neighbours if f.segment == centre.segment and f.rigid_points is not None]
        centre.transform = rigid_transform(np.median(same, axis=0), self.size)

    def crop(self, frame: np.ndarray, tracked: TrackedFrame) -> np.ndarray:
        """The frame's face, aligned on its rigid points, as a ``size`` x ``size`` grayscale float32 crop."""
        import cv2

        return warp(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), tracked.transform, self.size).astype(np.float32)


__all__ = ["FaceStatus", "FaceTracker", "RIGID_LANDMARKS", "TrackedFrame", "USABLE_STATUSES", "eye_opening",
           "head_pose", "rigid_transform"]
