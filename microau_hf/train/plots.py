"""Figures for results: per-AU F1 of one run, and the ablation rows side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402


def _save(figure, path: str | Path) -> Path:
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_per_au_f1(results: dict[str, Any], path: str | Path) -> Path:
    """Bar chart of each AU's binary F1, the mean as a line, the all-positive baseline for reference."""
    per_au = results["scores"]["per_au"]
    names = [name.split(" ")[0] for name in per_au]
    f1 = [row["f1"] for row in per_au.values()]
    samples = results["scores"]["num_samples"]
    # Predicting "present" everywhere gives F1 = 2p / (1 + p) for an AU with positive rate p.
    rates = [row["support"] / max(samples, 1) for row in per_au.values()]
    all_positive = [2 * p / (1 + p) for p in rates]
    figure, axis = plt.subplots(figsize=(max(5, 0.7 * len(names) + 2), 3.2), dpi=120)
    axis.bar(names, f1, color="#3b75af", label="F1 (positive class)")
    axis.scatter(names, all_positive, color="#d62728", marker="_", s=300, label="all-positive guess", zorder=3)
    axis.axhline(results["scores"]["mean_f1"], color="#3b75af", linestyle="--", linewidth=1,
                 label=f"mean F1 {results['scores']['mean_f1']:.3f}")
    axis.set_ylim(0, 1)
    axis.set_ylabel("F1")
    axis.set_title(f"{results['protocol']}, {', '.join(results.get('dataset') or [])}: per-AU F1, pooled over folds", fontsize=9)
    axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    return _save(figure, path)


def plot_ablation(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Horizontal bars of mean F1 per ablation row, with the seeds' std as error bars where a row has one."""
    labels = [row["name"] for row in rows]
    values = [row["mean_f1"] for row in rows]
    errors = [row.get("std_f1", 0.0) for row in rows]
    figure, axis = plt.subplots(figsize=(11, 0.45 * len(rows) + 1.2), dpi=120)  # wide: the row names are long
    bars = axis.barh(labels[::-1], values[::-1], xerr=errors[::-1], color="#3b75af", ecolor="#222222", capsize=3)
    for bar, value, error in zip(bars, values[::-1], errors[::-1]):
        text = f"{value:.3f} +- {error:.3f}" if error else f"{value:.3f}"
        axis.text(value + error + 0.01, bar.get_y() + bar.get_height() / 2, text, va="center", fontsize=8)
    axis.set_xlim(0, 1.15)  # room for the value labels
    axis.set_xlabel("mean binary F1 (LOSO, pooled; error bars: std over seeds)")
    return _save(figure, path)
