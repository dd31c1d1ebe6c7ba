"""How the spotter decides: every threshold in one place, with where its value came from."""

from __future__ import annotations

from dataclasses import dataclass

#: The flow lags, named in the order the signals are stored: a micro-expression (<= 0.5 s) goes and comes back
#: within 2 x 0.3 s; a macro-expression (0.5-4 s) within 2 x 1 s or 2 x 2 s.
SCALES = ("micro", "long", "macro")


@dataclass(frozen=True)
class SpottingSettings:
    """The spotter's settings. ``threshold_mads``, ``min_motion`` and ``extent_fraction`` were chosen on the spotting
    benchmark's dev videos only (best pooled micro F1 over a grid; the test videos were scored once, after;
    docs/spotting/README.md); the others are set by their reasons, given beside them. Durations are seconds; motions are flow-image pixels at ``flow_size``."""

    feature_size: int = 160  # px, side of the aligned gray crops the tracker makes
    flow_size: int = 112  # px, side of the crops the flow runs on (80 px read a 2 px smile 2.5 times weaker)
    micro_window_s: float = 0.3
    long_window_s: float = 1.0
    macro_window_s: float = 2.0
    threshold_mads: float = 8.0  # a region's return signal must stand this many MADs above its median ...
    min_motion: float = 0.05  # ... and move at least this many flow pixels (a still video gives no interval)
    low_fraction: float = 0.5  # a movement's frames: where its regions stay above this share of the threshold
    extent_fraction: float = 0.05  # onset/offset: where the rise and fall fall back under this share of the apex
    micro_max_s: float = 0.5  # longer is a macro-expression
    min_duration_s: float = 0.08  # shorter is a one-frame glitch (a landmark fit off): kind "other"
    blink_drop: float = 0.85  # the eyes closed to this share of their median opening: a blink, partial ones too
    head_turn: float = 0.15  # interocular distances of nose-tip shift (pose proxies) within a movement: a turn
    # (the mesh moves its nose tip with a smile by up to ~0.08, measured on the astronaut test video: not a turn)
    head_flow: float = 0.6  # flow px of the nose region itself at the apex: alignment could not hold the head
    head_regions: float = 0.75  # share of regions moving at least half as much as the most moved one
    speech_window_s: float = 2.0  # speech: the mouth regions peaked ...
    speech_peaks: int = 3  # ... at least this many times within the window around a lower-face movement
    same_movement_iou: float = 0.3  # two regions' runs overlapping at least this much are one movement

    def frames(self, seconds: float, fps: float) -> int:
        """``seconds`` as a number of frames at ``fps`` (at least 2)."""
        return max(int(round(seconds * fps)), 2)

    def windows(self) -> tuple[float, float, float]:
        """The flow lags of :data:`SCALES`, in seconds."""
        return self.micro_window_s, self.long_window_s, self.macro_window_s


__all__ = ["SCALES", "SpottingSettings"]
