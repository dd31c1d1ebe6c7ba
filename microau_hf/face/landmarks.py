"""Face landmark backends: find the face in a frame and name its landmarks the way :mod:`microau_hf.aus` does.

A backend returns a :class:`Face` whose ``semantic`` dict has every name of :data:`~microau_hf.aus.CANONICAL_LANDMARKS`,
in image pixels. Alignment and AU regions only read those names, so a second backend (dlib's 68 points, say) only has
to map its own indices to them.

The MediaPipe backend uses the legacy ``mp.solutions`` API of ``mediapipe==0.10.21`` (the face detection and the
478-point face mesh models ship inside the wheel: CPU, offline). mediapipe is imported only when a
:class:`MediaPipeLandmarker` is built, so this package imports without it (or OpenCV, which comes with it).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..aus import CANONICAL_LANDMARKS

logger = logging.getLogger(__name__)

Point = tuple[float, float]
PixelBox = tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels


class NoFaceError(ValueError):
    """No face in a frame; the message is one line naming the file or item."""


class BackendUnavailableError(ImportError):
    """The landmark backend's library is not installed."""


@dataclass
class Face:
    """The face a backend chose in one frame (the largest, when there are several)."""

    box: PixelBox  # the face detector's box (or the landmarks' bounding box when the detector found none)
    points: np.ndarray  # (N, 2) float landmarks in image pixels, in the backend's own order
    semantic: dict[str, Point]  # every name of aus.CANONICAL_LANDMARKS, in image pixels
    num_faces: int = 1  # faces the detector saw; > 1 means the largest was taken
    score: float = 1.0  # the detector's confidence for the chosen face (0 when a fallback found it)
    backend: str = ""


class LandmarkBackend(ABC):
    """Finds the largest face in an RGB uint8 image and names its landmarks."""

    name: str = "backend"

    @abstractmethod
    def detect(self, image: np.ndarray, name: str = "image") -> Face:
        """The largest face in ``image`` (``(H, W, 3)`` RGB uint8); :class:`NoFaceError` naming ``name`` if none."""

    def close(self) -> None:
        """Free the backend's resources (models, threads)."""

    def __enter__(self) -> LandmarkBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------------------------
# MediaPipe face mesh indices for each semantic landmark; a name with several indices is their mean. Chosen on the
# astronaut with every index drawn (see docs/au_regions_astronaut.png for the result). "left"/"right" are image
# sides: the mesh's indices 33/133 are the eye on the image's left for a frontal, non-mirrored face.
# ----------------------------------------------------------------------------------------------------------------

MEDIAPIPE_SEMANTIC_INDICES: dict[str, tuple[int, ...]] = {
    # Brows: mean of the upper and the lower contour point, so the point sits on the brow's midline.
    "brow_outer_left": (46, 70),
    "brow_mid_left": (52, 105),
    "brow_inner_left": (55, 107),
    "brow_inner_right": (285, 336),
    "brow_mid_right": (282, 334),
    "brow_outer_right": (276, 300),
    "glabella": (9,),
    "eye_outer_left": (33,),
    "eye_top_left": (159,),
    "eye_inner_left": (133,),
    "eye_bottom_left": (145,),
    # Eye centres from the corners, not the iris: gaze moves the iris, and the corners are what the canonical face
    # is drawn from (its eye centre is the corners' midpoint).
    "eye_center_left": (33, 133),
    "eye_inner_right": (362,),
    "eye_top_right": (386,),
    "eye_outer_right": (263,),
    "eye_bottom_right": (374,),
    "eye_center_right": (263, 362),
    "nose_bridge": (6,),
    "nose_tip": (1,),  # the pronasale, as 5-point detectors and dlib's point 30 mark it
    # The alar base beside the nostril: level with the tip, as on the canonical face.
    "nose_wing_left": (98,),
    "nose_wing_right": (327,),
    # The canonical cheek point lies between the cheekbone (50/280) and the cheek above the nasolabial fold (205/425).
    "cheek_left": (50, 205),
    "cheek_right": (280, 425),
    "mouth_corner_left": (61,),
    "lip_top": (0,),
    "mouth_corner_right": (291,),
    "lip_bottom": (17,),
    "chin": (152,),  # the menton (dlib's point 8): AU17's region then spans the whole chin boss
}

assert set(MEDIAPIPE_SEMANTIC_INDICES) == set(CANONICAL_LANDMARKS), "every canonical landmark needs mesh indices"


def semantic_points(points: np.ndarray, indices: dict[str, tuple[int, ...]]) -> dict[str, Point]:
    """Named landmarks from a backend's point array and its name -> indices table."""
    return {name: tuple(float(v) for v in points[list(idx)].mean(axis=0)) for name, idx in indices.items()}


def _import_mediapipe():
    try:
        import mediapipe as mp
    except ImportError as err:
        raise BackendUnavailableError(
            f"mediapipe is not installed ({err}); install mediapipe==0.10.21 for landmarks, "
            "or treat the frames as pre-aligned crops"
        ) from None
    if not hasattr(mp, "solutions"):
        raise BackendUnavailableError(
            f"mediapipe {getattr(mp, '__version__', '?')} has no legacy mp.solutions API; install mediapipe==0.10.21"
        )
    return mp


class MediaPipeLandmarker(LandmarkBackend):
    """MediaPipe's full-range face detector, then its 478-point face mesh around the largest face.

    The detector picks the face (and counts them); the mesh then runs on a crop around that face only, so another
    face in the frame cannot take its place. Tight, pre-cropped faces (which the detector misses when the face fills
    the frame) get a second chance: the mesh alone on the frame padded with a border.
    """

    name = "mediapipe"
    CROP_MARGIN = 0.6  # of the detector's box, on each side: the box is tight, the mesh wants forehead and chin
    PAD_FRACTION = 0.25  # border added around a frame the detector found nothing in

    def __init__(self, min_confidence: float = 0.5, refine_landmarks: bool = True):
        mp = _import_mediapipe()
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_confidence
        )
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=1,
            refine_landmarks=refine_landmarks,  # 478 points (with the irises) instead of 468
            min_detection_confidence=min_confidence,
        )

    def close(self) -> None:
        self._detector.close()
        self._mesh.close()

    def detect(self, image: np.ndarray, name: str = "image") -> Face:
        image = np.ascontiguousarray(image)
        boxes, scores = self._detect_boxes(image)
        if not boxes:
            points = self._mesh_padded(image)
            if points is None:
                raise NoFaceError(f"{name}: no face found")
            # Found by the mesh alone: the landmarks' bounds stand in for the box, and there is no detector score.
            return self._face(points, _bounds(points), num_faces=1, score=0.0)
        best = max(range(len(boxes)), key=lambda i: _area(boxes[i]))
        points = self._mesh_near(image, boxes[best])
        if points is None:
            raise NoFaceError(f"{name}: the detector found a face but the face mesh did not fit it")
        return self._face(points, boxes[best], num_faces=len(boxes), score=scores[best])

    def _face(self, points: np.ndarray, box: PixelBox, num_faces: int, score: float) -> Face:
        semantic = semantic_points(points, MEDIAPIPE_SEMANTIC_INDICES)
        return Face(box, points, semantic, num_faces=num_faces, score=score, backend=self.name)

    def _detect_boxes(self, image: np.ndarray) -> tuple[list[PixelBox], list[float]]:
        height, width = image.shape[:2]
        result = self._detector.process(image)
        boxes, scores = [], []
        for detection in result.detections or []:
            rel = detection.location_data.relative_bounding_box
            x0, y0 = rel.xmin * width, rel.ymin * height
            boxes.append((x0, y0, x0 + rel.width * width, y0 + rel.height * height))
            scores.append(float(detection.score[0]))
        return boxes, scores

    def _mesh_near(self, image: np.ndarray, box: PixelBox) -> np.ndarray | None:
        height, width = image.shape[:2]
        margin_x = (box[2] - box[0]) * self.CROP_MARGIN
        margin_y = (box[3] - box[1]) * self.CROP_MARGIN
        x0, y0 = max(int(box[0] - margin_x), 0), max(int(box[1] - margin_y), 0)
        x1, y1 = min(int(box[2] + margin_x) + 1, width), min(int(box[3] + margin_y) + 1, height)
        points = self._mesh_points(np.ascontiguousarray(image[y0:y1, x0:x1]))
        return None if points is None else points + (x0, y0)

    def _mesh_padded(self, image: np.ndarray) -> np.ndarray | None:
        pad = int(round(max(image.shape[:2]) * self.PAD_FRACTION))
        padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
        points = self._mesh_points(padded)
        return None if points is None else points - pad

    def _mesh_points(self, image: np.ndarray) -> np.ndarray | None:
        if image.shape[0] < 2 or image.shape[1] < 2:
            return None
        result = self._mesh.process(image)
        if not result.multi_face_landmarks:
            return None
        height, width = image.shape[:2]
        marks = result.multi_face_landmarks[0].landmark
        return np.array([(p.x * width, p.y * height) for p in marks], dtype=np.float64)


def _area(box: PixelBox) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def _bounds(points: np.ndarray) -> PixelBox:
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return (float(x0), float(y0), float(x1), float(y1))


#: A face whose eye line is turned more than this from level (degrees) is upside down, or past lying on its side.
MAX_ROLL_DEGREES = 90.0


def roll_degrees(semantic: dict[str, Point]) -> float:
    """The eye line's angle from level, in degrees in (-180, 180]: about 0 for an upright face, +-90 on its side,
    180 upside down ("left"/"right" name the image sides of an upright face, so a turned face's eyes trade places)."""
    (lx, ly), (rx, ry) = semantic["eye_center_left"], semantic["eye_center_right"]
    return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


def upside_down(face: Face, image: np.ndarray, backend: LandmarkBackend) -> str:
    """Why ``face`` looks upside down in ``image``, or ``""``. Its eye line may say so; but a face mesh fitted without
    the detector (``score`` 0, a tight crop) is drawn upright whatever the face does, so for such a face the detector
    is asked about the image turned half a turn: if it finds a face there, the face is upside down."""
    roll = roll_degrees(face.semantic)
    if abs(roll) > MAX_ROLL_DEGREES:
        return f"the face is upside down (eye line turned {abs(roll):.0f} degrees); turn the frames upright"
    if face.score > 0:
        return ""
    try:
        turned = backend.detect(np.ascontiguousarray(image[::-1, ::-1]))
    except NoFaceError:
        return ""
    if turned.score > 0:
        return "the face is upside down (found upright only in the frame turned half a turn); turn the frames upright"
    return ""


def load_landmarker(backend: str = "mediapipe") -> LandmarkBackend | None:
    """The named backend, or ``None`` (with a warning) when its library is missing, so callers can fall back to the
    canonical template instead of failing."""
    if backend != "mediapipe":
        raise ValueError(f"unknown landmark backend {backend!r}; available: 'mediapipe'")
    try:
        return MediaPipeLandmarker()
    except BackendUnavailableError as err:
        logger.warning("no landmark backend: %s; AU regions fall back to the canonical template", err)
        return None


__all__ = [
    "BackendUnavailableError",
    "Face",
    "LandmarkBackend",
    "MEDIAPIPE_SEMANTIC_INDICES",
    "MediaPipeLandmarker",
    "MAX_ROLL_DEGREES",
    "NoFaceError",
    "load_landmarker",
    "roll_degrees",
    "upside_down",
    "semantic_points",
]
