"""AU regions on an aligned face: boxes from its landmarks (or the canonical template), then weights over the ViT
patch grid.

Boxes are in crop units (0..1, ``y`` down), one list per AU, as :mod:`microau_hf.aus` defines them; the patch weights
come from the model's own :func:`~microau_hf.modeling_micro_au_clip.region_boxes_to_patch_weights`, so the face
pipeline and the model can never disagree on which patch belongs to which AU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from ..aus import Box, get_au
from ..modeling_micro_au_clip import region_boxes_to_patch_weights

Point = tuple[float, float]


def interocular(landmarks: Mapping[str, Point]) -> float:
    """The distance between the eye centres, in the landmarks' units."""
    (lx, ly), (rx, ry) = landmarks["eye_center_left"], landmarks["eye_center_right"]
    return math.hypot(rx - lx, ry - ly)


def clip_box(box: Sequence[float]) -> Box | None:
    """``box`` clipped to the crop; ``None`` when nothing of it is left inside."""
    x0, y0, x1, y1 = (min(max(float(v), 0.0), 1.0) for v in box)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def landmark_region_boxes(landmarks: Mapping[str, Point], aus: Sequence[int]) -> list[list[Box]]:
    """Each AU's region placed on one face; ``landmarks`` are in crop units (``AlignedPair.normalised_landmarks()``).

    Pads scale with this face's interocular distance, so a region keeps its size relative to the face. A box that falls
    wholly outside the crop is dropped; an AU left with no box gets zero weight everywhere.
    """
    distance = interocular(landmarks)
    regions = []
    for number in aus:
        placed = (clip_box(box.place(dict(landmarks), distance)) for box in get_au(number).region)
        regions.append([box for box in placed if box is not None])
    return regions


def template_region_boxes(aus: Sequence[int]) -> list[list[Box]]:
    """Each AU's region on the canonical face: the fallback for crops without landmarks."""
    return [list(get_au(number).template_boxes) for number in aus]


def region_weights(boxes: Sequence[Sequence[Sequence[float]]], grid_size: int) -> torch.Tensor:
    """``(K, grid_size ** 2)`` patch weights in [0, 1], row-major like CLIP's patch tokens."""
    return region_boxes_to_patch_weights(boxes, grid_size)


__all__ = ["clip_box", "interocular", "landmark_region_boxes", "region_weights", "template_region_boxes"]
