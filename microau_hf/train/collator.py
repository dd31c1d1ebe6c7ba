"""From contract rows to model inputs: frames through the processor, AU lists to multi-hot labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from datasets import Dataset

from ..data.schema import REQUIRED_COLUMNS


def au_labels(rows_aus: Sequence[Sequence[int]], aus: Sequence[int]) -> torch.Tensor:
    """`(N, K)` multi-hot labels over the configured AUs; AUs the model does not detect are ignored."""
    index = {au: k for k, au in enumerate(aus)}
    labels = torch.zeros(len(rows_aus), len(aus))
    for row, sample_aus in enumerate(rows_aus):
        for au in sample_aus:
            if au in index:
                labels[row, index[au]] = 1.0
    return labels


def check_dataset(dataset: Dataset, aus: Sequence[int], name: str = "dataset") -> None:
    """Refuse, with one clear line, a dataset the model cannot train or be evaluated on."""
    missing = [column for column in REQUIRED_COLUMNS if column not in dataset.column_names]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing}; a converted corpus has {list(REQUIRED_COLUMNS)}")
    if len(dataset) == 0:
        raise ValueError(f"{name}: no samples")
    present = {au for sample_aus in dataset["aus"] for au in sample_aus}
    absent = [au for au in aus if au not in present]
    if absent:
        raise ValueError(f"{name}: AU(s) {absent} never occur in the data; choose an AU set the data has (it has {sorted(present)})")


class MicroAUCollator:
    """Batches contract rows for `MicroAUClipModel`: `onset_pixel_values`, `apex_pixel_values`, `au_region_weights`,
    `labels`. Rows with a `region_boxes` column (landmark-based boxes from the face pipeline) use them; others use the
    processor's canonical template."""

    def __init__(self, processor: Any, aus: Sequence[int]):
        self.processor = processor
        self.aus = list(aus)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        boxes = [row["region_boxes"] for row in rows] if "region_boxes" in rows[0] else None
        inputs = self.processor.process_frames([r["onset"] for r in rows], [r["apex"] for r in rows], boxes)
        inputs["labels"] = au_labels([r["aus"] for r in rows], self.aus)
        return inputs
