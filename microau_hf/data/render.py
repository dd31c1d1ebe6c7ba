"""Camera-like frames of the synthetic subjects: a real face inside a larger frame, as a user's camera records it.

Each subject is one real photo (:mod:`microau_hf.data.faces`), aligned once onto the canonical face at
:data:`SUBJECT_SIZE` with a wide margin of its own surroundings (the *canvas*). A sample then places that face in a
frame of its own size (:class:`Camera`: position, scale, in-plane rotation), moves the skin with a displacement field
defined on the canonical face, and renders the frame at twice its resolution before area-downsampling it, so that
sub-pixel motion shows as a sensor would integrate it. The face pipeline must then find, align and crop the face
itself, exactly as it does for a user's frames.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..aus import Point
from .au_motion import FieldStyle
from .faces import FaceImage

logger = logging.getLogger(__name__)

SUBJECT_SIZE = 256  # canonical crop side the subjects are prepared at: interocular distance 0.3 * 256 = 77 px
CONTEXT = 1.5  # canvas margin on each side, in crop sizes: the photo's own background around the face
SUPERSAMPLE = 2  # frames are rendered at 2x, then area-downsampled like a sensor integrating light
MAX_YAW = 0.2  # nose tip off the eyes' midline, in IOD: beyond this a frontal similarity alignment distorts the face
#: Amplitudes are given in pixels at this interocular distance (that of a 128 px aligned crop), whatever the frame.
REFERENCE_IOD = 0.3 * 128
#: Half the face's extent around the canonical crop centre, in IOD: what must stay inside the frame.
FACE_RADIUS_IOD = 1.9

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


# ------------------------------------------------------------------------------------------------------------------
# Subjects: one aligned face each, prepared once
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubjectFace:
    """A subject's face aligned onto the canonical face, with its surroundings around the crop."""

    subject: str
    canvas: np.ndarray  # (C, C, 3) uint8; crop coordinate c maps to canvas coordinate c + margin
    margin: float  # crop pixels of surroundings on each side
    landmarks: dict[str, Point]  # semantic landmarks, crop pixels (continuous: pixel i spans [i, i + 1))
    size: int  # side of the canonical crop

    @property
    def iod(self) -> float:
        (lx, ly), (rx, ry) = self.landmarks["eye_center_left"], self.landmarks["eye_center_right"]
        return math.hypot(rx - lx, ry - ly)


# Landmarks are found once per subject image; a string records why a face was refused.
_SUBJECT_CACHE: dict[tuple[str, str], SubjectFace | str] = {}


def prepare_subjects(faces: Sequence[FaceImage]) -> list[SubjectFace]:
    """Every usable face aligned as a subject (cached); unusable ones are skipped with a warning naming them."""
    from ..face.landmarks import MediaPipeLandmarker, NoFaceError

    ids = [face.subject for face in faces]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two faces share a subject id in {ids}: one person, one id")
    keys = [(face.subject, hashlib.sha1(face.image.tobytes()).hexdigest()) for face in faces]
    missing = [(key, face) for key, face in zip(keys, faces) if key not in _SUBJECT_CACHE]
    if missing:
        with MediaPipeLandmarker() as landmarker:
            for key, face in missing:
                try:
                    _SUBJECT_CACHE[key] = _align_subject(face, landmarker)
                except (NoFaceError, ValueError) as err:
                    _SUBJECT_CACHE[key] = str(err)
    subjects = []
    for key in keys:
        if isinstance(_SUBJECT_CACHE[key], str):
            logger.warning("skipping a face: %s", _SUBJECT_CACHE[key])
        else:
            subjects.append(_SUBJECT_CACHE[key])
    if not subjects:
        raise ValueError("no usable face for the synthetic corpus (see the warnings above)")
    return subjects


def _align_subject(face: FaceImage, landmarker) -> SubjectFace:
    from ..face.align import alignment_transform, apply_transform, warp

    found = landmarker.detect(face.image, name=f"subject {face.subject}")
    _check_frontal(face.subject, found.semantic)
    size = SUBJECT_SIZE
    margin = math.ceil(CONTEXT * size)
    to_crop = alignment_transform(found, size)
    to_canvas = np.hstack([to_crop[:, :2], to_crop[:, 2:] + margin])
    canvas_px = size + 2 * margin
    image, to_canvas = _shrink_for(face.image, to_canvas)
    image, to_canvas = _pad_to_cover(image, to_canvas, canvas_px)
    canvas = warp(image, to_canvas, canvas_px)
    names = list(found.semantic)
    mapped = apply_transform(to_crop, np.array([found.semantic[n] for n in names]))
    landmarks = {n: (float(x), float(y)) for n, (x, y) in zip(names, mapped)}
    return SubjectFace(face.subject, canvas, float(margin), landmarks, size)


def _check_frontal(subject: str, semantic: dict[str, Point]) -> None:
    (lx, ly), (rx, ry) = semantic["eye_center_left"], semantic["eye_center_right"]
    iod = math.hypot(rx - lx, ry - ly)
    off_midline = abs(semantic["nose_tip"][0] - (lx + rx) / 2) / iod
    if off_midline > MAX_YAW:
        raise ValueError(f"subject {subject}: head turned too far for a frontal crop (nose {off_midline:.2f} IOD off)")


def _shrink_for(image: np.ndarray, transform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area-downsample ``image`` first when ``transform`` shrinks it, so the bilinear warp does not alias."""
    scale = math.sqrt(abs(np.linalg.det(transform[:, :2])))
    if scale >= 1:
        return image, transform
    height, width = image.shape[:2]
    new_size = (max(round(width * scale), 1), max(round(height * scale), 1))
    small = cv2.resize(image, new_size, interpolation=cv2.INTER_AREA)
    fx, fy = small.shape[1] / width, small.shape[0] / height
    return small, transform @ np.diag([1 / fx, 1 / fy, 1.0])


def _pad_to_cover(image: np.ndarray, transform: np.ndarray, canvas_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad ``image`` by repeating its edges so the canvas never reaches past it. Black borders would move with the
    head and show as motion; a mirrored border would show a second, mirrored face to the face detector."""
    corners = np.array([[0, 0], [canvas_px, 0], [0, canvas_px], [canvas_px, canvas_px]], np.float64)
    inverse = cv2.invertAffineTransform(transform)
    reach = corners @ inverse[:, :2].T + inverse[:, 2]
    height, width = image.shape[:2]
    pad = int(math.ceil(max(0.0, -reach.min(), (reach[:, 0] - width).max(), (reach[:, 1] - height).max()))) + 2
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    # Repeated edges are streaks; a blur makes them a soft, faceless backdrop while the photo itself stays sharp.
    blurred = cv2.GaussianBlur(padded, (0, 0), 6)
    inside = np.zeros(padded.shape[:2], np.float32)
    inside[pad:pad + height, pad:pad + width] = 1
    inside = cv2.GaussianBlur(inside, (0, 0), 4)[..., None]
    padded = (padded * inside + blurred * (1 - inside)).astype(np.uint8)
    return padded, transform @ np.array([[1, 0, -pad], [0, 1, -pad], [0, 0, 1]], np.float64)


# ------------------------------------------------------------------------------------------------------------------
# The camera: where the face sits in the frame
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendering:
    """What a family of recordings looks like; each sample draws its own camera and motion style from it.

    ``frame_sizes``: (width, height) choices; ``iod_px``: the face's interocular distance in the frame;
    ``roll_deg``: half-range of the in-plane rotation; ``jpeg_quality``: range of the JPEG quality both frames are
    saved at; ``field``: how the displacement fields deviate from the catalogue (:class:`FieldStyle`).
    """

    frame_sizes: tuple[tuple[int, int], ...] = ((320, 240), (480, 360), (640, 480))
    iod_px: tuple[float, float] = (30.0, 90.0)
    roll_deg: float = 15.0
    jpeg_quality: tuple[int, int] = (70, 95)
    field: FieldStyle = field(default_factory=lambda: FieldStyle(
        kernel="gaussian", anchor_jitter=0.04, sigma_range=(0.75, 1.35), anisotropy=0.25, direction_jitter_deg=15.0))


@dataclass(frozen=True)
class Camera:
    """One sample's framing: the frame size and the map from canonical crop pixels to frame pixels."""

    width: int
    height: int
    to_frame: np.ndarray  # (2, 3)

    @property
    def scale(self) -> float:
        return math.sqrt(abs(np.linalg.det(self.to_frame[:, :2])))


def draw_camera(rng: np.random.Generator, rendering: Rendering, subject: SubjectFace) -> Camera:
    """A random framing of ``subject``: size, interocular distance, roll and a position keeping the face inside."""
    width, height = rendering.frame_sizes[rng.integers(len(rendering.frame_sizes))]
    low, high = rendering.iod_px
    iod = rng.uniform(low, min(high, min(width, height) / (2.2 * FACE_RADIUS_IOD)))
    scale = iod / subject.iod
    angle = math.radians(rng.uniform(-rendering.roll_deg, rendering.roll_deg))
    linear = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    reach = FACE_RADIUS_IOD * iod
    centre = np.array([rng.uniform(reach, width - reach), rng.uniform(reach, height - reach)])
    crop_centre = np.array([subject.size / 2, subject.size / 2])
    return Camera(int(width), int(height), np.hstack([linear, (centre - linear @ crop_centre)[:, None]]))


def render_frame(subject: SubjectFace, camera: Camera, head: np.ndarray = IDENTITY,
                 displacement: np.ndarray | None = None) -> np.ndarray:
    """One frame, float RGB ``(height, width, 3)``.

    ``head`` (2, 3) moves the face on the canonical face's coordinates (head motion between frames);
    ``displacement`` (from :func:`~microau_hf.data.au_motion.displacement_grid` on the subject's landmarks) moves
    the skin.
    """
    fine_w, fine_h = camera.width * SUPERSAMPLE, camera.height * SUPERSAMPLE
    u = ((np.arange(fine_w) + 0.5) / SUPERSAMPLE).astype(np.float32)
    v = ((np.arange(fine_h) + 0.5) / SUPERSAMPLE).astype(np.float32)
    (a, b, c), (d, e, f) = cv2.invertAffineTransform(_compose(camera.to_frame, head)).astype(np.float32)
    face_x = a * u[None, :] + b * v[:, None] + c
    face_y = d * u[None, :] + e * v[:, None] + f
    if displacement is not None:
        # The skin at face point q came from q - displacement(q); displacement pixel i is centred on i + 0.5.
        moved = cv2.remap(displacement, face_x - 0.5, face_y - 0.5, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        face_x, face_y = face_x - moved[..., 0], face_y - moved[..., 1]
    # Face coordinates to canvas pixels; OpenCV puts pixel centres on integers, hence the half pixel.
    frame = cv2.remap(subject.canvas, face_x + (subject.margin - 0.5), face_y + (subject.margin - 0.5),
                      cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(frame, (camera.width, camera.height), interpolation=cv2.INTER_AREA).astype(np.float32)


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def similarity(rng: np.random.Generator, deg: float, shift: float, centre: float, scale: float = 0.0) -> np.ndarray:
    """A random similarity about ``(centre, centre)``, as a (2, 3) matrix."""
    angle = math.radians(rng.uniform(-deg, deg))
    factor = 1 + rng.uniform(-scale, scale)
    linear = factor * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shift_xy = rng.uniform(-shift, shift, size=2)
    return np.hstack([linear, (centre - linear @ [centre, centre] + shift_xy)[:, None]])


def to_jpeg(frame: np.ndarray, quality: int) -> dict:
    """A float RGB frame as the ``datasets`` image dict of its JPEG bytes."""
    pixels = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return {"bytes": encoded.tobytes(), "path": None}


__all__ = [
    "Camera",
    "IDENTITY",
    "REFERENCE_IOD",
    "Rendering",
    "SUBJECT_SIZE",
    "SubjectFace",
    "draw_camera",
    "prepare_subjects",
    "render_frame",
    "similarity",
    "to_jpeg",
]
