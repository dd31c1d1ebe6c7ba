"""Registration: the apex put back onto the onset where the face did not move, so that only facial movement is left.

Two frames of a real face are never identical. Aligning both with the onset's transform keeps whatever the head did
between them: a drift of half a pixel, a slow turn, a camera that shook. Measured with the quickstart's checkpoint,
an apex shifted by 0.5 px made it call an AU on 4 of 4 still faces, by 1 px at p 0.99, while sensor noise, JPEG
coding and a 3 % light change did not (docs/real_footage.md). So, before the model sees a pair, the apex is
registered onto the onset:

1. Both frames are aligned with the onset's transform at :data:`REGISTRATION_SIZE` (about the frame's own
   resolution for the faces micro-expression corpora hold: at the model's 112 px crop, sub-pixel fits lose half
   their precision), in gray.
2. **Dense optical flow** (OpenCV's DIS) from onset to apex over the face (the mesh's outline, or the canonical
   landmarks for pre-aligned crops).
3. **A robust similarity fit** (shift, rotation, scale) to that flow: started at its median (a micro-expression
   moves a small part of the face; when most of the face moved, at the nose's median), then refitted by least
   squares on the pixels that agree with the last fit within each band of :data:`FIT_BANDS_PX`. The pixels within
   :data:`INLIER_FLOW_PX` of the final fit are the face that did not move. Measured on the astronaut with a 0.5-2 px
   head shift and a 2 px lip-corner movement: error under 0.06 px (ECC on the nose alone erred by 0.1-0.5 px, too
   little texture; ECC over the whole face was pulled 0.3-0.5 px towards the movement).
4. The fit is composed with the onset's alignment and the apex is resampled **once** from its own frame (a second
   interpolation would blur the apex and not the onset: a difference of its own); each colour channel is scaled so
   that its mean over the face that did not move matches the onset's (a light change).

The model never sees the head's shift, so a still face gives a pair that differs by noise and coding alone, and the
movement of a region is kept whole. A pair whose head moved or turned more than a micro-expression's head motion
(:data:`MAX_SHIFT_IOD`, :data:`MAX_ROTATION_DEG`) or whose registered faces do not correlate (:data:`MIN_CORRELATION`: a face that turned, a
hand in front of it) is refused with :class:`RegistrationError`, never scored as if aligned.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from ..aus import Point
from .regions import interocular

#: Side of the crops the shift is measured on (crop pixels: 0.3 of it between the eyes, 67 px).
REGISTRATION_SIZE = 224
#: Flow within this of the final fit (registration pixels) is the face that did not move.
INLIER_FLOW_PX = 0.35
#: With fewer inliers than this share of the face, most of it moved (a macro-expression, speech): the shift is then
#: measured on the nose, which no AU of the catalogue but AU9 moves as a whole.
MIN_INLIER_SHARE = 0.3
NOSE_LANDMARKS = ("nose_bridge", "nose_wing_left", "nose_tip", "nose_wing_right")
#: The robust fit's rounds: each refits on the pixels whose flow is within this of the last fit (registration
#: pixels), so a turn or a zoom, which a shift alone leaves far off at the face's edges, is taken in step by step.
FIT_BANDS_PX = (1.5, 0.8, 0.35)
SAMPLE_STEP = 3  # the fit reads the flow on a grid of this step: the flow is smooth over a few pixels
#: Beyond these the two frames show a head that moved, not a face that moved (interocular distances, degrees).
MAX_SHIFT_IOD = 0.25
MAX_ROTATION_DEG = 5.0
#: Below this correlation over the still face the registered frames are not the same view (a turn, an occlusion).
MIN_CORRELATION = 0.8
MAX_GAIN_CHANGE = 0.25  # a light change beyond 25 % between two frames of a micro-expression is not corrected


_PER_THREAD = threading.local()


class RegistrationError(ValueError):
    """The apex could not be registered onto the onset; one line naming the item and why."""


@dataclass(frozen=True)
class Registration:
    """How the apex was put onto the onset.

    ``residual`` (2, 3): the similarity taking onset-crop coordinates to where the same skin is in the apex crop
    (continuous coordinates of the caller's crop), removed before the model sees the pair; ``shift_px``: its
    displacement at the face's centre; ``rotation_deg`` and ``scale`` its angle and size change; ``still_share``:
    the share of the face whose motion agreed with the head's; ``correlation``: of the registered frames over that
    part of the face; ``gain`` (3,): the per-channel light correction applied to the apex.
    """

    residual: np.ndarray
    shift_px: float
    rotation_deg: float
    scale: float
    still_share: float
    correlation: float
    gain: np.ndarray

    def as_dict(self) -> dict:
        return {"shift_px": round(self.shift_px, 3), "rotation_deg": round(self.rotation_deg, 3),
                "scale": round(self.scale, 4), "still_share": round(self.still_share, 3),
                "correlation": round(self.correlation, 4), "gain": [round(float(g), 4) for g in self.gain]}


def hull_mask(points: np.ndarray, size: int) -> np.ndarray:
    """The convex hull of ``points`` (N, 2 in pixels of a ``size`` crop) as a boolean mask."""
    import cv2

    mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.asarray(points, np.float32))
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 255)
    return mask > 0


def register_apex(onset: np.ndarray, apex: np.ndarray, to_crop: np.ndarray, crop_size: int,
                  face_points: np.ndarray, landmarks: dict[str, Point], label: str = "pair") -> Registration:
    """Measure how the face in the ``apex`` frame moved from the ``onset`` frame where it did not move itself.

    ``to_crop`` (2, 3): the onset's frame -> crop transform (continuous coordinates) for a ``crop_size`` crop;
    ``face_points`` (N, 2): the face's outline points in crop pixels (the mesh, or the canonical landmarks);
    ``landmarks``: the semantic landmarks in crop units. Raises :class:`RegistrationError` naming ``label``.
    """
    import cv2

    from .align import warp

    if onset.shape == apex.shape and np.array_equal(onset, apex):  # the same frame twice: nothing to register
        return Registration(np.eye(2, 3), 0.0, 0.0, 1.0, 1.0, 1.0, np.ones(3))
    scale = REGISTRATION_SIZE / crop_size
    fine = np.vstack([to_crop[0] * scale, to_crop[1] * scale])
    colour = [warp(frame, fine, REGISTRATION_SIZE) for frame in (onset, apex)]
    template, moving = (cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in colour)
    face = hull_mask(np.asarray(face_points) * scale, REGISTRATION_SIZE)
    flow = _optical_flow().calc(template, moving, None)
    residual, still, still_share = _head_motion(flow, face, landmarks)
    registered = _registered(colour[1], residual)
    correlation = _correlation(template, cv2.cvtColor(registered, cv2.COLOR_RGB2GRAY), still)
    centre = np.array(landmarks["nose_tip"]) * REGISTRATION_SIZE
    shift = float(np.linalg.norm(residual[:, :2] @ centre + residual[:, 2] - centre))
    rotation = math.degrees(math.atan2(residual[1, 0], residual[0, 0]))
    iod = interocular(landmarks) * REGISTRATION_SIZE
    if shift > MAX_SHIFT_IOD * iod or abs(rotation) > MAX_ROTATION_DEG or correlation < MIN_CORRELATION:
        raise RegistrationError(
            f"{label}: the head moved between onset and apex ({shift / scale:.1f} px of the crop, turned "
            f"{rotation:.1f} deg, correlation {correlation:.2f}); a micro-expression pair needs a still head")
    return Registration(_rescaled(residual, 1 / scale), shift / scale, rotation,
                        float(np.hypot(residual[0, 0], residual[1, 0])), still_share, correlation,
                        _gain(colour[0], registered, still))


def _optical_flow():
    """This thread's DIS optical flow (the Space serves requests on several threads; one DIS object is not
    thread-safe). The ultrafast preset: its flow's median and fit were as exact as the fast one's in the tests, at a
    third of the time."""
    import cv2

    if not hasattr(_PER_THREAD, "flow"):
        _PER_THREAD.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    return _PER_THREAD.flow


def registered_transform(alignment: np.ndarray, registration: Registration) -> np.ndarray:
    """The frame -> crop transform for the apex: the onset's ``alignment`` followed by the inverse residual, so that
    the apex crop at ``x`` shows the skin the onset crop shows at ``x``."""
    import cv2

    inverse = cv2.invertAffineTransform(registration.residual)
    return np.hstack([inverse[:, :2] @ alignment[:, :2], (inverse[:, :2] @ alignment[:, 2] + inverse[:, 2])[:, None]])


def apply_gain(crop: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """``crop`` with each channel scaled by ``gain`` (uint8 in, uint8 out)."""
    if np.allclose(gain, 1.0, atol=1e-3):
        return crop
    return np.clip(np.rint(crop.astype(np.float32) * gain.astype(np.float32)), 0, 255).astype(np.uint8)


def _head_motion(flow: np.ndarray, face: np.ndarray, landmarks: dict[str, Point]
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """The similarity that the face's flow follows where the face itself did not move, those pixels (a mask of the
    sampled ones) and their share of the face.

    Started from the median flow (a micro-expression moves a small part of the face), then refitted
    (:func:`~microau_hf.face.align.similarity_transform`, least squares) on the pixels within each band of
    :data:`FIT_BANDS_PX` of the last fit; the still pixels are those within :data:`INLIER_FLOW_PX` of the final one.
    """
    from .align import similarity_transform

    step = SAMPLE_STEP
    ys, xs = np.nonzero(face[::step, ::step])
    ys, xs = ys * step, xs * step
    points = np.stack([xs, ys], axis=1).astype(np.float64) + 0.5  # continuous coordinates of pixel centres
    moved = points + flow[ys, xs].astype(np.float64)
    start = np.median(moved - points, axis=0)
    if _agreeing(points, moved, np.hstack([np.eye(2), start[:, None]])).mean() < MIN_INLIER_SHARE:
        nose = hull_mask(np.array([landmarks[n] for n in NOSE_LANDMARKS]) * REGISTRATION_SIZE, REGISTRATION_SIZE)
        inside_nose = nose[ys, xs]
        if inside_nose.any():  # most of the face moved (a macro-expression): the nose tells the head's motion
            start = np.median((moved - points)[inside_nose], axis=0)
    residual = np.hstack([np.eye(2), start[:, None]])
    for band in FIT_BANDS_PX:
        agree = _agreeing(points, moved, residual, band)
        if agree.sum() < 10:
            break
        residual = similarity_transform(points[agree], moved[agree])
    agree = _agreeing(points, moved, residual)
    still = np.zeros_like(face)
    still[ys[agree], xs[agree]] = True
    return residual, still, float(agree.mean()) if len(agree) else 0.0


def _agreeing(points: np.ndarray, moved: np.ndarray, residual: np.ndarray, band: float = INLIER_FLOW_PX
              ) -> np.ndarray:
    predicted = points @ residual[:, :2].T + residual[:, 2]
    return np.linalg.norm(moved - predicted, axis=1) < band


def _rescaled(residual: np.ndarray, factor: float) -> np.ndarray:
    """A transform between crops of one size as the same transform between crops ``factor`` times that size."""
    return np.hstack([residual[:, :2], residual[:, 2:] * factor])


def _registered(image: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """``image`` (registration size) resampled so that it shows at ``x`` what it showed at ``residual @ x``."""
    import cv2

    from .align import warp

    return warp(image, cv2.invertAffineTransform(residual), image.shape[0])


def _correlation(template: np.ndarray, registered: np.ndarray, still: np.ndarray) -> float:
    """Of the onset and the registered apex (gray) over the still pixels."""
    if not still.any():
        return 0.0
    a = template[still].astype(np.float64)
    b = registered[still].astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-9))


def _gain(onset: np.ndarray, registered: np.ndarray, still: np.ndarray) -> np.ndarray:
    """Per-channel ratio of the onset's mean to the registered apex's over the face that did not move (both
    colour crops at the registration size)."""
    if not still.any():
        return np.ones(3)
    onset_mean = onset[still].astype(np.float64).mean(axis=0)
    apex_mean = registered[still].astype(np.float64).mean(axis=0)
    ratio = onset_mean / np.maximum(apex_mean, 1.0)
    return np.where(np.abs(ratio - 1) <= MAX_GAIN_CHANGE, ratio, 1.0)


__all__ = ["INLIER_FLOW_PX", "MAX_ROTATION_DEG", "MAX_SHIFT_IOD", "MIN_CORRELATION", "REGISTRATION_SIZE",
           "Registration", "RegistrationError", "apply_gain", "hull_mask", "register_apex", "registered_transform"]
