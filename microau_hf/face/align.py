"""Alignment: one similarity transform per sample, from the onset's landmarks onto the canonical face.

The transform is fitted on the onset only and applied to both frames. Fitting the apex separately would pull its
landmarks back onto the canonical positions too, and so erase part of the very movement (a raised brow, a pulled lip
corner) the model is meant to see; head motion between the frames stays in the pair, as it does in the corpora.

Coordinates: landmarks and boxes use the continuous frame in which an image of width ``W`` spans ``[0, W]`` (pixel
``i`` covers ``[i, i + 1)``), as MediaPipe's normalised landmarks do. OpenCV puts pixel centres on integers, so the
warp shifts by half a pixel on each side of the transform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..aus import ALIGNMENT_LANDMARKS, CANONICAL_LANDMARKS
from .landmarks import Face, Point

DEFAULT_CROP_SIZE = 224  # CLIP ViT-B/16's input; FacePreparer passes the configured vision image size


@dataclass
class AlignedPair:
    """An onset/apex pair warped by the onset's transform, with the landmarks in crop pixels."""

    onset: np.ndarray  # (size, size, 3) uint8 RGB
    apex: np.ndarray  # (size, size, 3) uint8 RGB
    landmarks: dict[str, Point]  # semantic landmarks of the onset face, crop pixels
    points: np.ndarray  # (N, 2) all of the backend's landmarks, crop pixels
    transform: np.ndarray  # (2, 3) image -> crop, continuous coordinates

    @property
    def size(self) -> int:
        return self.onset.shape[0]

    def normalised_landmarks(self) -> dict[str, Point]:
        """The semantic landmarks in crop units (0..1), the frame :mod:`microau_hf.aus` regions are written in."""
        return {name: (x / self.size, y / self.size) for name, (x, y) in self.landmarks.items()}


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The ``(2, 3)`` rotation + uniform scale + translation mapping ``source`` points closest (least squares) onto
    ``target`` points: Umeyama (1991), with the reflection case excluded, since a mirrored face is not the same face.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    centred_s, centred_t = source - mean_s, target - mean_t
    covariance = centred_t.T @ centred_s / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ sign @ vt
    variance_s = (centred_s**2).sum() / len(source)
    if variance_s == 0:
        raise ValueError("the alignment landmarks all coincide; cannot fit a transform")
    scale = float(np.trace(np.diag(singular) @ sign)) / variance_s
    translation = mean_t - scale * rotation @ mean_s
    return np.hstack([scale * rotation, translation[:, None]])


def canonical_points(size: int) -> np.ndarray:
    """The five alignment landmarks of the canonical face, in pixels of a ``size`` x ``size`` crop."""
    return np.array([CANONICAL_LANDMARKS[name] for name in ALIGNMENT_LANDMARKS]) * size


def alignment_transform(face: Face, size: int = DEFAULT_CROP_SIZE) -> np.ndarray:
    """The transform taking ``face``'s frame to the aligned crop."""
    source = np.array([face.semantic[name] for name in ALIGNMENT_LANDMARKS])
    return similarity_transform(source, canonical_points(size))


def apply_transform(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (N, 2) mapped by a ``(2, 3)`` transform."""
    points = np.asarray(points, np.float64)
    return points @ transform[:, :2].T + transform[:, 2]


def warp(image: np.ndarray, transform: np.ndarray, size: int, cubic: bool = False) -> np.ndarray:
    """``image`` resampled into a ``size`` x ``size`` crop by ``transform`` (continuous coordinates; bilinear, or
    bicubic with ``cubic``)."""
    import cv2  # imported here: OpenCV comes with the face extra, and only landmark-aligned samples need it
    # Continuous x_c = pixel x_p + 0.5 on both sides: x_p' = A x_p + (A @ 0.5 + t - 0.5).
    opencv = transform.copy()
    opencv[:, 2] += transform[:, :2].sum(axis=1) * 0.5 - 0.5
    # Black outside the frame: the same in both frames, so it adds nothing to their difference.
    flags = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    return cv2.warpAffine(image, opencv, (size, size), flags=flags, borderMode=cv2.BORDER_CONSTANT)


def align_pair(onset: np.ndarray, apex: np.ndarray, face: Face, size: int = DEFAULT_CROP_SIZE) -> AlignedPair:
    """Warp both frames with the transform fitted to ``face`` (found on the onset)."""
    if onset.shape != apex.shape:
        raise ValueError(f"onset {onset.shape} and apex {apex.shape} differ in size; one transform cannot align both")
    transform = alignment_transform(face, size)
    names = list(face.semantic)
    mapped = apply_transform(transform, np.array([face.semantic[n] for n in names]))
    return AlignedPair(
        onset=warp(onset, transform, size),
        apex=warp(apex, transform, size),
        landmarks={name: (float(x), float(y)) for name, (x, y) in zip(names, mapped)},
        points=apply_transform(transform, face.points),
        transform=transform,
    )


__all__ = [
    "AlignedPair",
    "DEFAULT_CROP_SIZE",
    "align_pair",
    "alignment_transform",
    "apply_transform",
    "canonical_points",
    "similarity_transform",
    "warp",
]
