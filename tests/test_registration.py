"""Registration of the apex onto the onset (microau_hf/face/registration.py) on a real face (the astronaut): the
head's motion between two frames is removed, a facial movement is kept, and a pair that cannot be registered is
refused with its own status."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from microau_hf.face import FacePreparer
from microau_hf.face.align import warp
from microau_hf.face.registration import RegistrationError, apply_gain, registered_transform

cv2 = pytest.importorskip("cv2")
pytest.importorskip("mediapipe")

AUS = [1, 2, 4, 7, 12, 14, 15, 17]
SIZE, PATCH = 112, 8  # the quickstart's crop: where half a pixel of drift made the model call AUs


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def preparer() -> FacePreparer:
    return FacePreparer(AUS, SIZE, PATCH)


FINE = 4  # exposures are rendered at 4x and area-averaged, as a sensor integrates light: a shift blurs nothing


def _exposure(frame: np.ndarray, dx: float = 0.0, dy: float = 0.0, angle_deg: float = 0.0, seed: int = 0
              ) -> np.ndarray:
    """``frame`` as the camera records it: the head shifted (sub-pixel) and turned in the image plane about the
    frame's centre, own sensor noise."""
    height, width = frame.shape[:2]
    fine = cv2.resize(frame, (width * FINE, height * FINE), interpolation=cv2.INTER_CUBIC)
    matrix = cv2.getRotationMatrix2D((width * FINE / 2, height * FINE / 2), angle_deg, 1.0)
    matrix[:, 2] += (dx * FINE, dy * FINE)
    fine = cv2.warpAffine(fine, matrix, (width * FINE, height * FINE), borderMode=cv2.BORDER_REFLECT)
    moved = cv2.resize(fine, (width, height), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(seed).normal(0, 2, frame.shape)
    return np.clip(moved + noise, 0, 255).astype(np.uint8)


def _nose_displacement(frame_landmarks: dict, shape: tuple, dx: float, dy: float, angle_deg: float) -> float:
    """How far :func:`_exposure` moves the nose tip (frame pixels)."""
    height, width = shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle_deg, 1.0)
    nose = np.array(frame_landmarks["nose_tip"])
    return float(np.linalg.norm(matrix[:, :2] @ nose + matrix[:, 2] + (dx, dy) - nose))


def _lip_corners_raised(frame: np.ndarray, preparer: FacePreparer, amplitude: float) -> np.ndarray:
    """The lip corners pulled up and out by ``amplitude`` frame pixels (an AU12-like movement of the skin only)."""
    face = preparer.finder.find(frame, "astronaut")
    height, width = frame.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    dx, dy = np.zeros_like(xs), np.zeros_like(ys)
    for name, side in (("mouth_corner_left", -1), ("mouth_corner_right", 1)):
        x0, y0 = face.semantic[name]
        bump = np.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * 8.0**2))
        dx += side * 0.5 * amplitude * bump
        dy -= amplitude * bump
    return cv2.remap(frame, xs - dx, ys - dy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def _difference(prepared, box: tuple[float, float, float, float] | None = None) -> float:
    onset, apex = (getattr(prepared, k).astype(np.float32) for k in ("onset", "apex"))
    if box is not None:
        x0, y0, x1, y1 = (int(round(v * SIZE)) for v in box)
        onset, apex = onset[y0:y1, x0:x1], apex[y0:y1, x0:x1]
    return float(np.abs(onset - apex).mean())


@pytest.mark.parametrize("dx, dy, angle", [(0.5, 0.0, 0.0), (0.0, -1.0, 0.0), (0.3, 0.7, 0.4), (2.0, 1.0, 0.0)])
def test_head_motion_between_frames_is_measured_and_removed(preparer, astronaut, dx, dy, angle):
    onset = _exposure(astronaut, seed=1)
    apex = _exposure(astronaut, dx, dy, angle, seed=2)
    still = preparer.prepare(onset, _exposure(astronaut, seed=2), "noise only")
    result = preparer.prepare(onset, apex, "drifted")
    transform = result.extra["transform"]
    scale = np.sqrt(abs(np.linalg.det(transform[:, :2])))
    face = preparer.finder.find(onset, "onset")
    expected = _nose_displacement(face.semantic, onset.shape, dx, dy, angle) * scale
    assert abs(result.registration.shift_px - expected) < 0.06
    assert abs(result.registration.rotation_deg + angle) < 0.1  # OpenCV turns counter-clockwise, y down
    # What is left differs from the onset about as much as a second exposure of a still head does, and far less
    # than the pair aligned with the onset's transform alone.
    unregistered = np.abs(result.onset.astype(np.float32) - warp(apex, transform, SIZE)).mean()
    assert _difference(result) < 1.25 * _difference(still) < unregistered
    # The apex crop is the apex frame resampled once, by the onset's alignment followed by the registration.
    moved = warp(apex, registered_transform(transform, result.registration), SIZE)
    assert np.array_equal(result.apex, apply_gain(moved, result.registration.gain))


def test_a_movement_of_the_face_survives_registration(preparer, astronaut):
    onset = _exposure(astronaut, seed=1)
    moving = _lip_corners_raised(astronaut, preparer, amplitude=2.0)
    alone = preparer.prepare(onset, _exposure(moving, seed=2), "movement alone")
    drifted = preparer.prepare(onset, _exposure(moving, 0.6, -0.4, seed=2), "movement and head drift")
    mouth = alone.region_boxes[AUS.index(12)][0]
    forehead = (0.35, 0.12, 0.65, 0.25)
    # The head's drift is removed (the forehead is as still as without drift), the lip corners' movement is not.
    assert _difference(drifted, forehead) < 1.5 * _difference(alone, forehead) + 0.5
    assert _difference(drifted, mouth) > 0.8 * _difference(alone, mouth) > 2 * _difference(alone, forehead)
    assert drifted.registration.still_share > 0.6


def test_identical_frames_stay_identical(preparer, astronaut):
    result = preparer.prepare(astronaut, astronaut.copy(), "same frame")
    assert np.array_equal(result.onset, result.apex)
    assert result.registration.shift_px == 0.0 and result.registration.correlation == 1.0


def test_a_head_that_moved_too_far_is_refused_with_its_own_status(preparer, astronaut):
    turned = _exposure(astronaut, 25.0, 0.0, 8.0)
    with pytest.raises(RegistrationError, match="far: the head moved between onset and apex"):
        preparer.prepare(astronaut, turned, "far")
    batch = preparer.prepare_batch([(astronaut, turned), (astronaut, astronaut)], names=["turned", "same"])
    assert [p.status for p in batch] == ["unregistered", "aligned"]
    assert not batch[0].ok and batch[0].apex is None and "turned: the head moved" in batch[0].message


def test_pre_aligned_crops_are_registered_on_the_canonical_face(astronaut):
    crop = cv2.resize(astronaut[40:220, 140:310], (150, 150), interpolation=cv2.INTER_AREA)
    crop, shifted = _exposure(crop, seed=1), _exposure(crop, 0.8, 0.0, seed=2)
    template = FacePreparer(AUS, SIZE, PATCH, landmarker=None)
    result = template.prepare(crop, shifted, "pre-aligned")
    assert result.status == "template"
    assert abs(result.registration.shift_px - 0.8 * SIZE / 150) < 0.1
    unregistered = np.abs(cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC).astype(np.float32)
                          - cv2.resize(shifted, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)).mean()
    assert _difference(result, (0.2, 0.2, 0.8, 0.8)) < 0.7 * unregistered
