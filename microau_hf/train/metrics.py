"""AU detection metrics, defined once.

*F1* here is what the field should report: for each AU, the binary F1 of the positive class (is the AU there?),
and their mean over AUs. Some papers report a per-AU "macro" F1, the mean of the positive-class and the
negative-class F1; it is much higher on rare AUs (the negative class is easy) and is given beside ours, labelled,
for comparison only. Predictions are pooled over all test folds before any F1 is computed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    # An AU that is never present and never predicted has no F1; scikit-learn's zero_division=0 convention applies.
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator, dtype=float), where=denominator > 0)


def au_detection_scores(
    labels: np.ndarray, predictions: np.ndarray, au_names: Sequence[str] | None = None
) -> dict[str, object]:
    """Per-AU binary F1 (positive class), precision, recall and support, their means, and the labelled macro F1.

    Args:
        labels, predictions: `(num_samples, K)` arrays of 0/1.
        au_names: K names for the per-AU table (default `AU index`).
    """
    labels = np.asarray(labels).astype(bool)
    predictions = np.asarray(predictions).astype(bool)
    if labels.shape != predictions.shape or labels.ndim != 2:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must both be (samples, AUs)")
    tp = (labels & predictions).sum(0).astype(float)
    fp = (~labels & predictions).sum(0).astype(float)
    fn = (labels & ~predictions).sum(0).astype(float)
    tn = (~labels & ~predictions).sum(0).astype(float)
    f1 = _f1(tp, fp, fn)
    negative_f1 = _f1(tn, fn, fp)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    names = list(au_names) if au_names is not None else [str(i) for i in range(labels.shape[1])]
    per_au = {
        name: {
            "f1": float(f1[k]),
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "support": int(labels[:, k].sum()),
            "macro_f1_for_comparison": float((f1[k] + negative_f1[k]) / 2),
        }
        for k, name in enumerate(names)
    }
    return {
        "mean_f1": float(f1.mean()),
        "mean_precision": float(precision.mean()),
        "mean_recall": float(recall.mean()),
        "mean_macro_f1_for_comparison": float(((f1 + negative_f1) / 2).mean()),
        "num_samples": int(labels.shape[0]),
        "per_au": per_au,
    }


def invented_au_rates(
    labels: np.ndarray, predictions: np.ndarray, au_names: Sequence[str] | None = None
) -> dict[str, object]:
    """How often an AU is called present on samples that show exactly one *other* AU, and on samples with none.

    On a single-AU sample, every other AU's region did not move (by the labels), so each call of another AU is
    invented: from a neighbouring region, or from co-occurrence learnt by the dependency module. ``per_au[name]`` is
    the share of single-AU samples of *other* AUs on which ``name`` was called; ``"overall"`` pools every (sample,
    other AU) pair; ``"neutral"`` is the share of (no-AU sample, AU) pairs called present.
    """
    labels = np.asarray(labels).astype(bool)
    predictions = np.asarray(predictions).astype(bool)
    names = list(au_names) if au_names is not None else [str(i) for i in range(labels.shape[1])]
    single = labels.sum(1) == 1
    neutral = labels.sum(1) == 0
    per_au = {}
    for k, name in enumerate(names):
        others = single & ~labels[:, k]
        per_au[name] = {"rate": float(predictions[others, k].mean()) if others.any() else float("nan"),
                        "samples": int(others.sum())}
    pairs = single[:, None] & ~labels
    return {
        "overall": float(predictions[pairs].mean()) if pairs.any() else float("nan"),
        "single_au_samples": int(single.sum()),
        "neutral": float(predictions[neutral].mean()) if neutral.any() else float("nan"),
        "neutral_samples": int(neutral.sum()),
        "per_au": per_au,
    }


def best_thresholds(labels: np.ndarray, probabilities: np.ndarray, grid: Sequence[float] | None = None) -> np.ndarray:
    """Per-AU thresholds that maximise binary F1 on the given predictions (of subjects the model did not train on;
    never a test fold's). An AU with no positive among them keeps 0.5: its F1 is 0 at every threshold, and the
    lowest one would call it everywhere."""
    grid = np.asarray(grid if grid is not None else np.linspace(0.05, 0.95, 19))
    labels = np.asarray(labels).astype(bool)
    thresholds = np.full(labels.shape[1], 0.5)
    for k in range(labels.shape[1]):
        if not labels[:, k].any():
            continue
        scores = [au_detection_scores(labels[:, k : k + 1], probabilities[:, k : k + 1] >= t)["mean_f1"] for t in grid]
        thresholds[k] = grid[int(np.argmax(scores))]
    return thresholds


def markdown_table(scores: dict[str, object], title: str | None = None) -> str:
    """The per-AU table, with the labelled comparison column."""
    lines = [f"### {title}", ""] if title else []
    lines += [
        "| AU | F1 | precision | recall | support | macro F1 (for comparison only) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in scores["per_au"].items():
        lines.append(
            f"| {name} | {row['f1']:.3f} | {row['precision']:.3f} | {row['recall']:.3f} | {row['support']} "
            f"| {row['macro_f1_for_comparison']:.3f} |"
        )
    lines.append(
        f"| **mean** | **{scores['mean_f1']:.3f}** | {scores['mean_precision']:.3f} | {scores['mean_recall']:.3f} "
        f"| {scores['num_samples']} samples | {scores['mean_macro_f1_for_comparison']:.3f} |"
    )
    return "\n".join(lines)
