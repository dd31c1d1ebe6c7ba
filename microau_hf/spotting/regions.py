"""Where on the aligned face the spotter looks: each AU's canonical region, and the rigid nose region."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..aus import get_au

#: The rigid reference, in canonical crop coordinates ``(x0, y0, x1, y1)``: the nose from its bridge to above its
#: tip, between the eyes' inner corners. No spotted AU moves it (AU9, the nose wrinkler, would: it is not spotted
#: separately), so its flow is what alignment left of the head's motion.
RIGID_BOX = (0.45, 0.43, 0.55, 0.55)


def _box_mask(boxes: Sequence[tuple[float, float, float, float]], size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    for x0, y0, x1, y1 in boxes:
        mask[int(y0 * size):max(int(math.ceil(y1 * size)), int(y0 * size) + 1),
             int(x0 * size):max(int(math.ceil(x1 * size)), int(x0 * size) + 1)] = 1.0
    return mask.ravel()


def region_masks(aus: Sequence[int], size: int) -> np.ndarray:
    """``(K, size * size)`` weights: each AU's canonical region, normalised to sum 1."""
    masks = np.stack([_box_mask(get_au(au).template_boxes, size) for au in aus]) if aus else np.zeros((0, size * size))
    return (masks / np.maximum(masks.sum(axis=1, keepdims=True), 1.0)).astype(np.float32)


def rigid_mask(size: int) -> np.ndarray:
    """``(size * size,)`` bool: the pixels of :data:`RIGID_BOX`."""
    return _box_mask([RIGID_BOX], size) > 0


#: The face, in canonical crop coordinates: the pixels a head-motion fit may use (brows to chin, cheek to cheek).
FACE_BOX = (0.2, 0.2, 0.8, 0.92)


def face_points(size: int, step: int = 2) -> np.ndarray:
    """``(P,)`` flat indices of every ``step``-th pixel (each way) of :data:`FACE_BOX` in a ``size`` crop."""
    x0, y0, x1, y1 = (int(round(v * size)) for v in FACE_BOX)
    ys, xs = np.mgrid[y0:y1:step, x0:x1:step]
    return (ys * size + xs).ravel()


def upper_face(au: int) -> bool:
    """Whether the AU's region lies in the upper face (brows, lids): the half a blink moves."""
    return float(np.mean([(y0 + y1) / 2 for _, y0, _, y1 in get_au(au).template_boxes])) < 0.5


__all__ = ["FACE_BOX", "RIGID_BOX", "face_points", "region_masks", "rigid_mask", "upper_face"]
