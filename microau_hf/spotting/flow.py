"""Motion signals from optical flow: how far each AU region's skin moved, relative to the nose, and whether it came back.

Every usable frame arrives as an aligned gray face crop (:mod:`microau_hf.face.tracking`: aligned on its smoothed
rigid points). It is shrunk to ``flow_size`` px (112 by default: DIS flow at that size costs ~1.5 ms, and a 2-6 px
movement on a 100 px interocular distance is still 1-3 px there; at 80 px the Space's 2.3 px micro-smile read 2.5
times weaker against the same noise), blurred a little and held for
``macro_window_s``. For each frame ``t`` and each lag ``k`` of :data:`SCALES` (0.3, 1 and 2 s), OpenCV's DIS flow
runs from frame ``t - k`` to frame ``t``, and each AU region gets one vector, the MEGC methods' statistics:

* **head motion removed**: a similarity transform (shift, rotation, scale) is fitted to the flow over the whole face,
  robustly (Huber weights: a brief movement moves a small part of the face, so it is an outlier to the fit), and
  subtracted from every pixel. The MEGC methods subtract the nose region's flow ("Rethinking optical flow methods for
  micro-expression spotting", ACM MM 2022); a shift alone was measured here to leave 0.4 px in every region when
  the landmark alignment followed a smile (the mesh moves its eye and nose points with the mouth), the similarity
  fit removes it;
* **main direction** (MDMO / MDMD): the region's pixels are binned by the direction of their flow into 8 sectors,
  weighted by magnitude; the region's vector is the mean flow of the pixels in the strongest sector. A muscle moves
  its skin one way; noise points every way and averages out within a sector less than it does over all sectors, so
  the main direction keeps a small movement that the mean over a whole region would dilute.

The stored result per frame is ``(S, K, 2)`` vectors ``a_s(t)``: region displacement from ``t - k_s`` to ``t``
(flow-image pixels). :func:`return_signals` turns them into the signal the spotter thresholds: a movement that
goes and comes back within ``2 k`` displaces frame ``t`` from *both* sides the same way, so with
``b_s(t) = -a_s(t + k_s)`` (the displacement from ``t + k`` to ``t``),

    r_s(t) = max(0, min(a . u, b . u)),   u = (a + b) / |a + b|

is the part of the displacement both sides agree on. A step (a head that settles, a smile that stays) moves one side
only and scores ~0; a movement longer than ``2 k`` scores ~0 at lag ``k`` and shows at a longer lag.

Memory: ``macro`` seconds of small crops, and 2 x 3 x K floats per frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..face.tracking import TrackedFrame
from .regions import face_points, region_masks
from .settings import SpottingSettings

#: Direction sectors of the main-direction statistic (MDMD uses 8).
DIRECTION_BINS = 8


@dataclass
class FlowTrack:
    """The flow pass's result: ``vectors`` ``(F, S, K, 2)``, each region's displacement (main direction, head
    motion removed) from ``k_s`` frames before, in flow-image pixels; ``head`` ``(F, S)``, the removed head motion's
    mean displacement over the face (what alignment left of it); NaN where a frame or the one ``k_s`` before is
    missing or in another segment. ``lags``: ``k_s`` in frames; ``flow_size``: the side of the flow images."""

    vectors: np.ndarray
    head: np.ndarray
    lags: tuple[int, ...]
    flow_size: int


def main_direction(flow: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``(K, 2)``: per region (``masks`` ``(K, P)``, rows summing to 1), the mean flow of its pixels in the direction
    sector carrying the most flow magnitude (``flow`` ``(P, 2)``)."""
    magnitude = np.hypot(flow[:, 0], flow[:, 1])
    sector = (np.floor((np.arctan2(flow[:, 1], flow[:, 0]) + np.pi) / (2 * np.pi) * DIRECTION_BINS)
              .astype(np.int64) % DIRECTION_BINS)
    onehot = np.zeros((len(flow), DIRECTION_BINS), np.float32)
    onehot[np.arange(len(flow)), sector] = 1.0
    weight = masks @ (onehot * magnitude[:, None])  # (K, bins): flow magnitude per sector
    count = masks @ onehot  # (K, bins): share of the region's pixels per sector
    best = np.argmax(weight, axis=1)
    rows = np.arange(len(masks))
    sums = np.stack([masks @ (onehot * flow[:, [0]]), masks @ (onehot * flow[:, [1]])], axis=-1)  # (K, bins, 2)
    return sums[rows, best] / np.maximum(count[rows, best], 1e-9)[:, None]


def head_motion(flow: np.ndarray, size: int, points: np.ndarray, iterations: int = 3) -> np.ndarray:
    """``(size * size, 2)``: the similarity motion (shift, rotation, scale about the crop's centre) that best explains
    ``flow`` (``(size * size, 2)``) at ``points``, fitted by least squares with Huber weights."""
    centre = (size - 1) / 2
    ys, xs = np.divmod(np.arange(size * size), size)
    x, y = xs - centre, ys - centre

    def design(idx: np.ndarray) -> np.ndarray:  # rows for u then v: u = tx + a x - b y, v = ty + b x + a y
        one, zero = np.ones(len(idx)), np.zeros(len(idx))
        return np.concatenate([np.stack([one, zero, x[idx], -y[idx]], 1), np.stack([zero, one, y[idx], x[idx]], 1)])

    rows = design(points)
    target = np.concatenate([flow[points, 0], flow[points, 1]])
    weights = np.ones(len(target))
    for _ in range(iterations):
        params, *_ = np.linalg.lstsq(rows * weights[:, None], target * weights, rcond=None)
        residual = np.abs(target - rows @ params)
        scale = 1.345 * max(float(np.median(residual)) * 1.4826, 1e-3)
        weights = np.sqrt(np.minimum(1.0, scale / np.maximum(residual, 1e-9)))
    tx, ty, a, b = params
    return np.stack([tx + a * x - b * y, ty + b * x + a * y], axis=1).astype(np.float32)


class FlowSignals:
    """Streams aligned crops in and the per-region flow vectors out, holding ``macro_window_s`` of small crops.

    ``add(tracked, crop)`` for each frame in order (``crop`` ``None`` when the frame is not usable), then
    ``finish()`` -> :class:`FlowTrack`.
    """

    def __init__(self, aus: Sequence[int], fps: float, settings: SpottingSettings):
        import cv2

        self.settings = settings
        self.lags = tuple(settings.frames(seconds, fps) for seconds in settings.windows())
        self.half_widths = list(self.lags)  # what measure_video asks: the micro lag first
        self.masks = region_masks(aus, settings.flow_size)
        self.points = face_points(settings.flow_size)
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._held: deque[tuple[int, int, np.ndarray]] = deque()  # (position, segment, small crop)
        self._vectors: list[np.ndarray] = []
        self._head: list[np.ndarray] = []
        self._count = 0

    def add(self, tracked: TrackedFrame, crop: np.ndarray | None) -> None:
        position = self._count
        self._count += 1
        vectors = np.full((len(self.lags), len(self.masks), 2), np.nan, np.float32)
        head = np.full(len(self.lags), np.nan, np.float32)
        while self._held and self._held[0][0] < position - max(self.lags):
            self._held.popleft()
        if crop is not None:
            small = self.small(crop)
            earlier = {p: image for p, segment, image in self._held if segment == tracked.segment}
            for s, lag in enumerate(self.lags):
                if position - lag in earlier:
                    vectors[s], head[s] = self.region_vectors(earlier[position - lag], small)
            self._held.append((position, tracked.segment, small))
        self._vectors.append(vectors)
        self._head.append(head)

    def small(self, crop: np.ndarray) -> np.ndarray:
        """The crop at ``flow_size``, lightly blurred (sensor noise), as uint8 for DIS."""
        import cv2

        size = self.settings.flow_size
        small = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        return np.clip(cv2.GaussianBlur(small, (0, 0), 0.7), 0, 255).astype(np.uint8)

    def region_vectors(self, before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, float]:
        """``(K, 2)`` main-direction displacement of each region from ``before`` to ``after``, head motion removed,
        and the removed head motion's mean displacement over the face."""
        flow = self._flow.calc(before, after, None).reshape(-1, 2)
        head = head_motion(flow, self.settings.flow_size, self.points)
        moved = float(np.hypot(head[self.points, 0], head[self.points, 1]).mean())
        return main_direction(flow - head, self.masks), moved

    def finish(self) -> FlowTrack:
        count, scales, regions = len(self._vectors), len(self.lags), len(self.masks)
        vectors = np.stack(self._vectors) if count else np.zeros((0, scales, regions, 2), np.float32)
        head = np.stack(self._head) if count else np.zeros((0, scales), np.float32)
        return FlowTrack(vectors, head, self.lags, self.settings.flow_size)


def return_signals(track: FlowTrack) -> np.ndarray:
    """``(F, S, K)``: per scale and region, the displacement both sides of a frame agree on (module docstring), in
    flow-image pixels; NaN where either side is missing."""
    count = len(track.vectors)
    out = np.full(track.vectors.shape[:3], np.nan, np.float32)
    for s, lag in enumerate(track.lags):
        if count <= lag:
            continue
        a = track.vectors[:count - lag, s]  # t - k -> t, for t = 0 .. F - k - 1
        b = -track.vectors[lag:, s]  # t + k -> t
        both = a + b
        norm = np.linalg.norm(both, axis=-1, keepdims=True)
        unit = both / np.maximum(norm, 1e-9)
        agreed = np.minimum((a * unit).sum(-1), (b * unit).sum(-1))
        out[:count - lag, s] = np.maximum(agreed, 0.0)
    return out


def side_profiles(track: FlowTrack, scale: int, apex: int, regions: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """How far the ``regions`` were displaced, along the apex's direction, from the neutral frame ``k`` before
    (``rise[j]`` for frame ``apex - k + 1 + j``) and from the neutral frame ``k`` after (``fall[j]`` for frame
    ``apex + j``): the movement's rise and fall, read from the flows already computed."""
    lag, count = track.lags[scale], len(track.vectors)
    a_apex = track.vectors[apex, scale, regions]
    b_apex = -track.vectors[apex + lag, scale, regions] if apex + lag < count else a_apex
    direction = a_apex + b_apex
    direction = direction / np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-9)
    rise = [_along(track.vectors[t, scale, regions], direction) if 0 <= t < count else np.nan
            for t in range(apex - lag + 1, apex + 1)]
    fall = [_along(-track.vectors[t + lag, scale, regions], direction) if t + lag < count else np.nan
            for t in range(apex, apex + lag)]
    return np.array(rise), np.array(fall)


def _along(vectors: np.ndarray, direction: np.ndarray) -> float:
    """The regions' mean displacement along their apex directions (NaN when none is measured)."""
    along = (vectors * direction).sum(-1)
    return float(np.mean(along[np.isfinite(along)])) if np.isfinite(along).any() else np.nan


__all__ = ["DIRECTION_BINS", "FlowSignals", "FlowTrack", "head_motion", "main_direction", "return_signals", "side_profiles"]
