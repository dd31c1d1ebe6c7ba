"""The time line of a spotted video: each AU region's motion over time, the spotting score against its threshold,
the spotted intervals shaded by kind and labelled with their AUs, and the frames without a usable face greyed.

    from microau_hf.timeline import plot_timeline
    plot_timeline(predictor.predict_video("clip.mp4"), "timeline.png")     # or: microau predict --video ... --plot
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

from .face.tracking import USABLE_STATUSES  # noqa: E402
from .results import VideoPrediction  # noqa: E402
from .train.plots import _save  # noqa: E402

#: Shading of each interval kind: micro-expressions stand out, the rest is there to be checked.
KIND_COLOURS = {"micro": "#d62728", "macro": "#1f77b4", "blink": "#7f7f7f", "head_motion": "#9467bd",
                "speech": "#2ca02c", "other": "#bcbd22"}


def plot_timeline(video: VideoPrediction, path: str | Path, width: float = 10.0) -> Path:
    """Write the time line of ``video`` as a PNG and return its path."""
    seconds = video.fps > 0
    x = video.frame_indices / video.fps if seconds else video.frame_indices.astype(float)
    figure, (motion_axis, score_axis) = plt.subplots(2, 1, figsize=(width, 4.6), dpi=110, sharex=True,
                                                      gridspec_kw={"height_ratios": [3, 2]})
    colours = plt.get_cmap("tab10" if len(video.aus) <= 10 else "tab20")
    for k, au in enumerate(video.aus):
        motion_axis.plot(x, video.region_motion[:, k], linewidth=0.8, color=colours(k % colours.N), label=f"AU{au}")
    motion_axis.set_ylabel("region motion\n(flow px, back and forth)", fontsize=8)
    motion_axis.legend(fontsize=6, ncol=min(len(video.aus), 8), loc="upper left", frameon=False)
    score_axis.plot(x, video.spotting_score, color="black", linewidth=0.8, label="spotting score")
    score_axis.axhline(video.threshold, color="#d62728", linestyle="--", linewidth=0.8,
                       label=f"threshold {video.threshold:g}")
    score_axis.set_ylabel("score (MADs)", fontsize=8)
    score_axis.set_xlabel("time (s)" if seconds else "frame")
    score_axis.legend(fontsize=6, loc="upper left", frameon=False)
    measured = np.isfinite(video.spotting_score).any()  # not when every segment is shorter than two windows
    top = float(np.nanmax(video.spotting_score)) if measured else video.threshold
    bottom = min(float(np.nanmin(video.spotting_score)), 0.0) if measured else 0.0
    score_axis.set_ylim(bottom, max(top, video.threshold) * 1.25)
    for axis in (motion_axis, score_axis):
        _shade_unusable(axis, video)
        _shade_intervals(axis, video, label=axis is score_axis)
    micro = len(video.micro_expressions)
    figure.suptitle(f"{Path(video.path).name}: {micro} micro-expression{'s' if micro != 1 else ''} spotted "
                    f"(red); macro blue, blink grey, head motion purple, speech green, other olive; no usable face "
                    f"hatched", fontsize=9)
    return _save(figure, path)


def _span(video: VideoPrediction, first: int, last: int) -> tuple[float, float]:
    scale = video.fps if video.fps > 0 else 1.0
    return first / scale, (last + 1) / scale


def _shade_intervals(axis, video: VideoPrediction, label: bool) -> None:
    for interval in video.intervals:  # in order of onset (VideoPrediction keeps them so)
        start, end = _span(video, interval.onset_frame, interval.offset_frame)
        axis.axvspan(start, end, color=KIND_COLOURS.get(interval.kind, "#bcbd22"), alpha=0.25, linewidth=0)
        if label and interval.kind == "micro":  # the other kinds are told by colour: labels would pile up
            prediction = interval.prediction
            aus = prediction.present if prediction is not None and prediction.ok else []
            text = interval.kind.replace("_", " ") + (": " + "+".join(f"AU{a}" for a in aus) if aus else "")
            axis.annotate(text, ((start + end) / 2, 1.0), xycoords=("data", "axes fraction"), ha="center",
                          va="bottom", fontsize=6, rotation=0, color=KIND_COLOURS.get(interval.kind, "black"))


def _shade_unusable(axis, video: VideoPrediction) -> None:
    for run in video.unusable_runs():
        start, end = _span(video, run["first_frame"], run["last_frame"])
        axis.axvspan(start, end, facecolor="none", edgecolor="#aaaaaa", hatch="///", linewidth=0)


__all__ = ["KIND_COLOURS", "plot_timeline"]
