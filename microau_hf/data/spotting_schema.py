"""The spotting contract: one ``datasets`` row per long video, with every frame's path and the annotated intervals.

Spotting is scored on whole long videos (CAS(ME)^2, SAMM Long Videos), not on the onset/apex pairs of the sample
contract (:mod:`microau_hf.data.schema`), so it has a dataset of its own:

* ``corpus``, ``subject`` (str), ``video`` (str id, unique within the corpus), ``fps`` (float), ``num_frames`` (int);
* ``frame_paths``: the absolute path of every frame, in time order (sorted by the frame's *number*, so ``img2``
  comes before ``img10``). Frames are referenced, not copied: a long-video corpus holds hundreds of thousands of
  frames, and a spotter reads them in order anyway. Moving the corpus means converting it again;
* ``intervals``: ``{onset, apex, offset, kind, aus, emotion}`` per annotated expression, where ``onset``, ``apex``
  and ``offset`` are 0-based positions into ``frame_paths`` (both ends included), ``kind`` is ``"micro"`` or
  ``"macro"``, ``aus`` the AU code as the corpus wrote it and ``emotion`` the corpus's estimate ("" if none).

A video without any annotated expression is a row too: whatever a spotter finds in it is a false positive.
Scoring these rows lives in :mod:`microau_hf.spotting` (``truth_intervals``, ``evaluate_spotting``): data/ describes
the corpora and never imports the spotter.
"""

from __future__ import annotations

import os
from pathlib import Path

from datasets import Dataset, Features, List, Value

from .schema import load_dataset_folder

#: Corpus names as they appear in the ``corpus`` column.
SPOTTING_CORPUS_NAMES = ("casme_sq", "samm_lv")
#: Interval kinds the corpora annotate.
INTERVAL_KINDS = ("micro", "macro")

INTERVAL_FEATURES = {
    "onset": Value("int32"),
    "apex": Value("int32"),
    "offset": Value("int32"),
    "kind": Value("string"),
    "aus": Value("string"),
    "emotion": Value("string"),
}


def spotting_features() -> Features:
    """The features of a converted long-video corpus."""
    return Features({
        "corpus": Value("string"),
        "subject": Value("string"),
        "video": Value("string"),
        "fps": Value("float64"),
        "num_frames": Value("int32"),
        "frame_paths": List(Value("string")),
        "intervals": List(INTERVAL_FEATURES),
    })


SPOTTING_COLUMNS = tuple(spotting_features())


def is_spotting_dataset(dataset: Dataset) -> bool:
    """Whether ``dataset`` has the spotting columns (a long-video corpus, not micro-expression samples)."""
    return all(name in dataset.column_names for name in SPOTTING_COLUMNS)


def load_spotting_folder(path: str | os.PathLike) -> Dataset:
    """A long-video dataset saved by ``microau convert casme_sq|samm_lv``; ``ValueError`` naming the folder when it
    is missing, damaged, or another kind of dataset (a corpus of micro-expression samples, say)."""
    folder = Path(path)
    dataset = load_dataset_folder(folder)
    if not is_spotting_dataset(dataset):
        missing = [name for name in SPOTTING_COLUMNS if name not in dataset.column_names]
        kind = ("micro-expression samples (onset/apex pairs), " if "sample_id" in dataset.column_names else "")
        raise ValueError(f"{folder}: not a long-video spotting dataset ({kind}no {', '.join(missing)} column"
                         f"{'s' if len(missing) > 1 else ''}); make one with `microau convert casme_sq` or "
                         f"`microau convert samm_lv`")
    return dataset


__all__ = ["INTERVAL_FEATURES", "INTERVAL_KINDS", "SPOTTING_COLUMNS", "SPOTTING_CORPUS_NAMES",
           "is_spotting_dataset", "load_spotting_folder", "spotting_features"]
