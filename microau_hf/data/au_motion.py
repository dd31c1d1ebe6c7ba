"""Where each action unit moves the skin: the motion model of the synthetic corpus.

Every AU is a few Gaussian *pushes*: skin around a landmark (or the mean of several) slides along a FACS direction,
falling off smoothly with distance. Summed, they give a displacement field over the aligned crop, which the synthetic
corpus turns into an apex frame by warping the onset. Directions follow the "appearance changes" of the FACS manual
(Ekman, Friesen & Hager, 2002), seen from the front; sizes are in interocular distances (IOD) so they scale with the
face.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

from ..aus import Point


@dataclass(frozen=True)
class Push:
    """One Gaussian push of an AU: skin around the mean of ``at`` moves along ``direction``.

    ``"{side}"`` in a name makes a mirrored pair of pushes; ``direction`` is ``(outward, downward)``, so "out" means
    away from the face's midline on either side. ``sigma`` is in interocular distances.
    """

    at: tuple[str, ...]
    direction: tuple[float, float]
    sigma: float
    weight: float = 1.0

    @property
    def sided(self) -> bool:
        return any("{side}" in name for name in self.at)


def _p(*at: str, d: tuple[float, float], s: float, w: float = 1.0) -> Push:
    return Push(at, d, s, w)


UP, DOWN, IN = (0.0, -1.0), (0.0, 1.0), (-1.0, 0.0)

#: The pushes of each AU.
AU_MOTIONS: dict[int, tuple[Push, ...]] = {
    1: (_p("brow_inner_{side}", d=UP, s=0.16),),  # inner brow up
    2: (_p("brow_outer_{side}", d=UP, s=0.16), _p("brow_mid_{side}", d=UP, s=0.14, w=0.6)),  # outer brow up
    4: (_p("brow_inner_{side}", d=(-0.5, 0.85), s=0.15), _p("brow_mid_{side}", d=DOWN, s=0.14, w=0.5)),  # down, in
    5: (_p("eye_top_{side}", d=UP, s=0.08),),  # upper lid up
    6: (_p("cheek_{side}", d=UP, s=0.2), _p("eye_bottom_{side}", d=UP, s=0.1, w=0.5)),  # cheek up, eye narrowed below
    7: (_p("eye_bottom_{side}", d=UP, s=0.09), _p("eye_top_{side}", d=DOWN, s=0.08, w=0.5)),  # lids tighten
    9: (_p("nose_wing_{side}", d=(-0.3, -0.95), s=0.12), _p("nose_bridge", "nose_tip", d=UP, s=0.12, w=0.6)),  # nose up
    10: (_p("lip_top", d=UP, s=0.12), _p("lip_top", "mouth_corner_{side}", d=UP, s=0.1, w=0.8)),  # upper lip up
    12: (_p("mouth_corner_{side}", d=(0.55, -0.85), s=0.15),),  # corners up and out
    14: (_p("mouth_corner_{side}", d=(-1.0, -0.1), s=0.12),),  # corners in and back
    15: (_p("mouth_corner_{side}", d=(0.15, 1.0), s=0.15),),  # corners down
    17: (_p("chin", d=UP, s=0.3), _p("lip_bottom", d=UP, s=0.12, w=0.6)),  # chin boss and lower lip up
    20: (_p("mouth_corner_{side}", d=(1.0, 0.15), s=0.15),),  # corners stretched out
    23: (  # lips narrow and thin
        _p("mouth_corner_{side}", d=IN, s=0.08, w=0.8),
        _p("lip_top", d=DOWN, s=0.08, w=0.5),
        _p("lip_bottom", d=UP, s=0.08, w=0.5),
    ),
    24: (  # lips pressed together
        _p("lip_top", d=DOWN, s=0.1),
        _p("lip_bottom", d=UP, s=0.1),
        _p("mouth_corner_{side}", d=IN, s=0.08, w=0.3),
    ),
    25: (_p("lip_bottom", d=DOWN, s=0.1), _p("lip_top", d=UP, s=0.08, w=0.4)),  # lips part
    26: (_p("chin", d=DOWN, s=0.4), _p("lip_bottom", d=DOWN, s=0.2, w=0.6)),  # jaw down
}

#: Movements that carry no AU label: the synthetic corpus adds them as distractors, which a detector must not call.
DISTRACTOR_MOTIONS: dict[str, tuple[Push, ...]] = {
    "blink": (_p("eye_top_{side}", d=DOWN, s=0.07), _p("eye_bottom_{side}", d=UP, s=0.05, w=0.15)),  # AU45, not coded
    # A glance: both eyes' contents move the same way in the image (a negative amplitude turns it round). Real
    # footage is full of them, and they sit in the lids' region (AU7's).
    "gaze_x": (_p("eye_center_left", d=(1.0, 0.0), s=0.09), _p("eye_center_right", d=(1.0, 0.0), s=0.09)),
    "gaze_y": (_p("eye_center_left", d=(0.0, 1.0), s=0.09), _p("eye_center_right", d=(0.0, 1.0), s=0.09)),
}

#: AUs that can show on one side only (every push is mirrored): these may carry an ``L``/``R`` code.
LATERAL_AUS = frozenset(au for au, pushes in AU_MOTIONS.items() if all(p.sided for p in pushes))

# FACS sides are the subject's: a non-mirrored camera shows the subject's left on the image's right.
_IMAGE_SIDES = {"": ("left", "right"), "L": ("right",), "R": ("left",)}

CUTOFF = 3.0  # sigmas: beyond this a push is exactly zero, so skin far from every AU stays exactly still

#: One movement in a sample: (AU number or distractor name, laterality "" / "L" / "R", peak displacement in pixels).
Move = tuple[Union[int, str], str, float]

KERNELS = ("gaussian", "cosine")


@dataclass(frozen=True)
class FieldStyle:
    """How a sample's pushes deviate from the catalogue: drawn per sample, so that the motion does not sit exactly on
    the landmarks that also define the AU regions (which would flatter region-based models).

    ``kernel``: the falloff, ``"gaussian"`` or ``"cosine"`` (a raised cosine reaching zero at 2.5 sigma);
    ``anchor_jitter``: standard deviation of each push's centre offset (IOD); ``sigma_range``: factor on each push's
    width; ``anisotropy``: half-range of the log ratio of horizontal to vertical width; ``direction_jitter_deg``:
    half-range of a rotation of each push's direction.
    """

    kernel: str = "gaussian"
    anchor_jitter: float = 0.0
    sigma_range: tuple[float, float] = (1.0, 1.0)
    anisotropy: float = 0.0
    direction_jitter_deg: float = 0.0


#: The catalogue's pushes exactly (for figures and tests).
EXACT = FieldStyle()


def _falloff(coords: np.ndarray, centre: float, sigma: float, kernel: str) -> np.ndarray:
    distance = (coords - centre) / sigma
    if kernel == "cosine":
        return np.where(np.abs(distance) < 2.5, 0.5 + 0.5 * np.cos(np.pi * distance / 2.5), 0.0)
    return np.where(np.abs(distance) < CUTOFF, np.exp(-0.5 * distance**2), 0.0)


def _rotate(vector: np.ndarray, degrees: float) -> np.ndarray:
    angle = math.radians(degrees)
    return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) @ vector


def _push_field(push: Push, side: str, landmarks: dict[str, Point], iod: float, coords: np.ndarray,
                style: FieldStyle, rng: np.random.Generator | None) -> np.ndarray:
    cx, cy = np.mean([landmarks[name.format(side=side)] for name in push.at], axis=0)
    outward = -1.0 if side == "left" else 1.0
    direction = np.array([push.direction[0] * outward, push.direction[1]])
    sigma_x = sigma_y = push.sigma * iod
    if rng is not None:
        cx, cy = np.array([cx, cy]) + rng.normal(0.0, style.anchor_jitter * iod, size=2)
        sigma_x = sigma_y = sigma_x * rng.uniform(*style.sigma_range)
        stretch = math.exp(rng.uniform(-style.anisotropy, style.anisotropy))
        sigma_x, sigma_y = sigma_x * stretch, sigma_y / stretch
        direction = _rotate(direction, rng.uniform(-style.direction_jitter_deg, style.direction_jitter_deg))
    direction = direction / np.linalg.norm(direction)
    # Both kernels are separable: an outer product of two 1-D profiles, cheap even for many pushes.
    profile = np.outer(_falloff(coords, cy, sigma_y, style.kernel), _falloff(coords, cx, sigma_x, style.kernel))
    return push.weight * profile[..., None] * direction


def _au_field(motion: int | str, laterality: str, landmarks: dict[str, Point], iod: float, size: int,
              style: FieldStyle, rng: np.random.Generator | None) -> np.ndarray:
    coords = np.arange(size) + 0.5  # pixel centres (pixel i spans [i, i + 1))
    field = np.zeros((size, size, 2))
    pushes = AU_MOTIONS[motion] if isinstance(motion, int) else DISTRACTOR_MOTIONS[motion]
    for push in pushes:
        for side in _IMAGE_SIDES[laterality] if push.sided else ("",):
            field += _push_field(push, side, landmarks, iod, coords, style, rng)
    return field


def displacement_grid(
    landmarks: dict[str, Point],
    moves: Sequence[Move],
    size: int,
    style: FieldStyle = EXACT,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """The skin displacement (pixels, ``(size, size, 2)`` as dx, dy) at the pixel centres of a ``size`` crop.

    ``landmarks`` are the face's semantic landmarks in that crop's pixels. Each movement's own field peaks at its
    amplitude; movements acting on the same skin add up, as muscles do. With ``rng``, each push deviates from the
    catalogue as ``style`` says (drawn from ``rng``); without, the pushes are exactly the catalogue's, in
    ``style.kernel``.
    """
    if style.kernel not in KERNELS:
        raise ValueError(f"unknown kernel {style.kernel!r}; kernels are {KERNELS}")
    (lx, ly), (rx, ry) = landmarks["eye_center_left"], landmarks["eye_center_right"]
    iod = math.hypot(rx - lx, ry - ly)
    total = np.zeros((size, size, 2))
    for au, laterality, amplitude in moves:
        field = _au_field(au, laterality, landmarks, iod, size, style, rng)
        peak = np.linalg.norm(field, axis=-1).max()
        if peak > 0:
            total += field * (amplitude / peak)
    return total.astype(np.float32)


__all__ = ["AU_MOTIONS", "DISTRACTOR_MOTIONS", "EXACT", "FieldStyle", "KERNELS", "LATERAL_AUS", "Move", "Push",
           "displacement_grid"]
