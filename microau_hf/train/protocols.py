"""Evaluation protocols of the field: leave-one-subject-out (LOSO) within a corpus, leave-one-corpus-out across.

A fold is the list of training indices and the list of test indices; predictions of all test folds are pooled before
F1 is computed (per-fold F1 averaged over tiny folds is unstable and not what the field reports).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasets import Dataset

from ..data.corpus_faces import face_cache_path


@dataclass(frozen=True)
class Fold:
    name: str  # the held-out subject or corpus
    train_indices: list[int]
    test_indices: list[int]


def _folds_by(values: list[str], kind: str, max_folds: int | None, where: str = "dataset") -> list[Fold]:
    groups = sorted(set(values))
    if len(groups) < 2:
        raise ValueError(f"{where}: the {kind} protocol needs at least 2 {kind}s, the data has {groups}")
    if max_folds is not None:
        if max_folds < 1:
            raise ValueError(f"max_folds must be >= 1, got {max_folds}")
        # Evenly spread over the sorted groups, so a bounded run still sees different parts of the corpus.
        picks = np.linspace(0, len(groups) - 1, num=min(max_folds, len(groups))).round().astype(int)
        held_out = [groups[i] for i in sorted(set(picks.tolist()))]
    else:
        held_out = groups
    folds = []
    values_array = np.asarray(values)
    for group in held_out:
        test = np.flatnonzero(values_array == group).tolist()
        train = np.flatnonzero(values_array != group).tolist()
        if not test or not train:
            raise ValueError(f"fold {group!r} is empty ({len(train)} training, {len(test)} test samples)")
        folds.append(Fold(group, train, test))
    return folds


def subject_keys(dataset: Dataset) -> list[str]:
    """Each row's subject, named ``corpus/subject`` when the rows name their corpus (subject "01" of two corpora is
    two people)."""
    if "dataset" in dataset.column_names:
        return [f"{d}/{s}" for d, s in zip(dataset["dataset"], dataset["subject"])]
    return list(dataset["subject"])


def loso_folds(dataset: Dataset, max_folds: int | None = None) -> list[Fold]:
    """One fold per subject (within one corpus; subjects of different corpora are kept apart by corpus name)."""
    return _folds_by(subject_keys(dataset), "subject", max_folds, _where(dataset))


def leave_one_corpus_out_folds(dataset: Dataset, max_folds: int | None = None) -> list[Fold]:
    """One fold per corpus: train on the others, test on it."""
    return _folds_by(list(dataset["dataset"]), "corpus", max_folds, _where(dataset))


def _where(dataset: Dataset) -> str:
    """The dataset's folder, for messages (the folder a user gave); ``"dataset"`` for one held in memory."""
    cache = face_cache_path(dataset)  # beside the dataset's own files
    return str(cache.parent) if cache is not None else "dataset"
