"""An MDMD-style optical-flow spotter: the field's flow baseline, for the benchmark to compare with.

Main Directional Maximal Difference analysis (Wang et al., Neurocomputing 2017) is the baseline of the MEGC 2020
spotting challenge (He et al., arXiv:1912.11985: micro F1 0.008 on CAS(ME)^2, 0.036 on SAMM-LV). What is kept here:

* the face is cut into a 6 x 6 grid of blocks; for the current frame ``CF`` the head frame ``HF`` is ``k`` frames
  before it and the tail frame ``TF`` ``k`` frames after;
* per block, the flow ``HF -> CF`` and ``HF -> TF`` is reduced to its **main direction**: of 8 direction sectors, the
  one holding most vectors, and the mean magnitude of the vectors in it (``rho``);
* the block's difference is ``rho(HF, CF) - rho(HF, TF)`` (large when the face moved away and came back); a frame's
  feature is the mean of its largest third of blocks;
* the threshold is ``mean + p (max - mean)`` of the feature over the video (the MEGC baselines' rule, ``p`` chosen
  on dev); frames above it form intervals, a micro-expression when shorter than 0.5 s, else a macro-expression.

Not kept, because it is what :mod:`.flow` and :mod:`.intervals` add: head motion removal beyond the per-frame
alignment, per-region noise scaling, extents from the rise and fall, and kinds other than by length. The flow is
OpenCV's DIS on the same aligned crops as :mod:`.flow` (MDMD used robust local optical flow on larger frames).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..face.tracking import TrackedFrame
from .intervals import Candidate
from .regions import FACE_BOX
from .settings import SpottingSettings

GRID = 6
SECTORS = 8


def block_index(size: int) -> np.ndarray:
    """``(size * size,)``: each pixel's block of the :data:`GRID` over :data:`FACE_BOX` (-1 outside it)."""
    x0, y0, x1, y1 = FACE_BOX
    ys, xs = np.divmod(np.arange(size * size), size)
    bx = np.floor((xs / size - x0) / (x1 - x0) * GRID).astype(int)
    by = np.floor((ys / size - y0) / (y1 - y0) * GRID).astype(int)
    inside = (bx >= 0) & (bx < GRID) & (by >= 0) & (by < GRID)
    return np.where(inside, by * GRID + bx, -1)


def main_direction_magnitude(flow: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """``(GRID * GRID,)``: per block, the mean magnitude of the vectors in its most populated direction sector."""
    inside = blocks >= 0
    u, v, block = flow[inside, 0], flow[inside, 1], blocks[inside]
    sector = (np.floor((np.arctan2(v, u) + np.pi) / (2 * np.pi) * SECTORS).astype(int)) % SECTORS
    key = block * SECTORS + sector
    cells = GRID * GRID * SECTORS
    counts = np.bincount(key, minlength=cells).reshape(GRID * GRID, SECTORS)
    sums = np.bincount(key, weights=np.hypot(u, v), minlength=cells).reshape(GRID * GRID, SECTORS)
    best = np.argmax(counts, axis=1)
    rows = np.arange(GRID * GRID)
    return sums[rows, best] / np.maximum(counts[rows, best], 1)


class MDMDSignals:
    """Streams aligned crops in (as :class:`~.intervals.MotionSignals` does) and the MDMD feature out: ``finish()``
    -> ``(F,)``, NaN where ``HF``, ``CF`` or ``TF`` is missing or in another segment."""

    def __init__(self, fps: float, settings: SpottingSettings):
        import cv2

        self.settings = settings
        self.lag = settings.frames(settings.micro_window_s, fps)
        self.half_widths = [self.lag]
        self.blocks = block_index(settings.flow_size)
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._held: deque[tuple[int, int, np.ndarray]] = deque()
        self._head_to_current: dict[int, np.ndarray] = {}  # CF position -> rho(HF, CF), until TF arrives
        self._feature: list[float] = []
        self._count = 0

    def add(self, tracked: TrackedFrame, crop: np.ndarray | None) -> None:
        import cv2

        position = self._count
        self._count += 1
        self._feature.append(np.nan)
        while self._held and self._held[0][0] < position - 2 * self.lag:
            self._held.popleft()
        if crop is None:
            return
        size = self.settings.flow_size
        small = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.uint8)
        earlier = {p: image for p, segment, image in self._held if segment == tracked.segment}
        if position - self.lag in earlier:  # this frame as CF
            self._head_to_current[position] = self._rho(earlier[position - self.lag], small)
        current = position - self.lag  # this frame as TF of the frame k before
        if current in self._head_to_current and current - self.lag in earlier:
            tail = self._rho(earlier[current - self.lag], small)
            difference = np.sort(self._head_to_current.pop(current) - tail)[::-1]
            self._feature[current] = float(difference[:len(difference) // 3].mean())
        self._head_to_current.pop(current - 1, None)
        self._held.append((position, tracked.segment, small))

    def _rho(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        return main_direction_magnitude(self._flow.calc(before, after, None).reshape(-1, 2), self.blocks)

    def finish(self) -> np.ndarray:
        return np.array(self._feature, np.float32)


def mdmd_intervals(feature: np.ndarray, segments: np.ndarray, fps: float, p: float,
                   micro_max_s: float = 0.5) -> list[Candidate]:
    """Runs of frames whose feature exceeds ``mean + p (max - mean)``, in order of onset; kind by length."""
    finite = np.isfinite(feature)
    if not finite.any():
        return []
    mean, top = float(feature[finite].mean()), float(feature[finite].max())
    above = np.nan_to_num(feature, nan=-np.inf) > mean + p * (top - mean)
    candidates = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], above.astype(np.int8), [0]])))
    for onset, end in zip(edges[::2], edges[1::2]):
        offset = int(end - 1)
        if segments[onset] != segments[offset]:
            continue
        apex = int(onset + np.argmax(feature[onset:end]))
        kind = "micro" if (offset - onset + 1) / fps < micro_max_s else "macro"
        candidates.append(Candidate(int(onset), apex, offset, kind, float(feature[apex]), []))
    return candidates


__all__ = ["GRID", "MDMDSignals", "SECTORS", "block_index", "main_direction_magnitude", "mdmd_intervals"]
