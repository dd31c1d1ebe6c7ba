"""From contract rows to model inputs: frames through the face pipeline and the processor, AU lists to multi-hot
labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from datasets import Dataset

from ..data.schema import REQUIRED_COLUMNS
from ..face.pipeline import FacePreparer, model_inputs


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
    `labels`.

    The frames go through `preparer` (face found on the onset, both frames aligned, regions from the landmarks) and
    then `model_inputs`, the very calls `MicroAUPredictor` makes on a user's files, so that a model is trained on what
    it will be asked about. Rows whose face the pipeline refuses should be left out first
    (`CorpusFaces.usable_rows`); one that reaches the collator stops the batch with its reason.
    """

    def __init__(self, processor: Any, aus: Sequence[int], preparer: FacePreparer):
        self.processor = processor
        self.aus = list(aus)
        self.preparer = preparer

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        prepared = [self.preparer.prepare(row["onset"], row["apex"], str(row["sample_id"])) for row in rows]
        inputs = dict(model_inputs(self.processor, prepared))
        inputs["labels"] = au_labels([r["aus"] for r in rows], self.aus)
        return inputs
