"""The face pipeline over a whole corpus, once: which rows hold a usable face, and the detections cached beside it.

    faces = check_corpus_faces(dataset, name="casme2")     # detects each onset's face (or reads the cache)
    faces.refused                                          # {sample_id: "why", ...}: never trained on, never scored
    train_rows = dataset.select(faces.usable)
    preparer = faces.preparer(config)                      # the face pipeline of predict, with the cache

Training, evaluation and inference then all turn frames into model inputs with the same
:class:`~microau_hf.face.FacePreparer`; the cache only spares the landmark model a second look at a frame it has seen
(see :mod:`microau_hf.face.cache`). For a dataset saved on disk the cache is a file in the dataset's folder, keyed by
frame content, so it is reused across runs and never trusted for frames that changed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset
from tqdm.auto import tqdm

from ..atomic import atomic_write_text
from ..face.cache import CACHE_FILE_NAME, FaceCache
from ..face.io import ImageLoadError
from ..face.landmarks import LandmarkBackend, NoFaceError, load_landmarker
from ..face.pipeline import FacePreparer, LandmarkerChoice
from ..face.registration import RegistrationError

logger = logging.getLogger(__name__)

FACE_REPORT_NAME = "face_report.json"


@dataclass
class CorpusFaces:
    """The outcome of :func:`check_corpus_faces`.

    ``landmarker`` is ``None`` for pre-aligned crops (every row then takes the canonical template regions).
    """

    landmarker: LandmarkBackend | None
    cache: FaceCache | None
    usable: list[int]
    refused: dict[str, str] = field(default_factory=dict)  # sample_id -> one line naming the frame and the problem
    cache_path: Path | None = None

    def preparer(self, config: Any) -> FacePreparer:
        """The face pipeline for a model config, reading this corpus's cached detections."""
        return FacePreparer.from_config(config, self.landmarker, self.cache)

    def usable_rows(self, dataset: Dataset, name: str = "dataset") -> Dataset:
        """The rows of ``dataset`` (the one checked) with a usable face; ``ValueError`` when there is none."""
        if len(self.usable) + len(self.refused) != len(dataset):
            raise ValueError(f"{name}: {len(dataset)} rows, but the face check covered "
                             f"{len(self.usable) + len(self.refused)}; check this dataset itself")
        if not self.usable:
            raise ValueError(self.summary(name) + "; nothing to train on or score")
        return dataset if not self.refused else dataset.select(self.usable)

    def report(self) -> dict[str, Any]:
        """For results files: how many rows were usable, and each refused one with its reason."""
        return {"usable": len(self.usable), "refused": dict(self.refused),
                "regions": "landmarks" if self.landmarker is not None else "template (pre-aligned crops)"}

    def summary(self, name: str = "dataset") -> str:
        total = len(self.usable) + len(self.refused)
        line = f"{name}: {len(self.usable)} of {total} samples have a usable face"
        if self.refused:
            first_id, reason = next(iter(self.refused.items()))
            line += f"; {len(self.refused)} refused (first: {reason})"
        return line


def face_cache_path(dataset: Dataset) -> Path | None:
    """Where a dataset loaded from disk keeps its face cache (its own folder); ``None`` for one held in memory."""
    files = getattr(dataset, "cache_files", None) or []
    return Path(files[0]["filename"]).parent / CACHE_FILE_NAME if files else None


def check_corpus_faces(
    dataset: Dataset,
    landmarker: LandmarkerChoice = "auto",
    name: str = "dataset",
    progress: bool = True,
    cache: FaceCache | None = None,
) -> CorpusFaces:
    """Run the face pipeline on every row: both frames load and match, the onset holds a usable face, and the apex
    registers onto it (the head did not move too far).

    ``landmarker``: ``"auto"`` (MediaPipe when installed, else the template with a warning), a backend, or ``None``
    for corpora of pre-aligned crops. ``cache``: detections to start from; by default the dataset's cache file.
    The cache, with what was detected now, is saved back beside a dataset on disk (when that folder is writable).
    """
    backend = load_landmarker() if landmarker == "auto" else landmarker
    path = face_cache_path(dataset)
    if backend is not None and cache is None:
        cache = FaceCache.load(path, backend.name) if path is not None else FaceCache(backend.name)
    # The whole face path, as training and predict run it (the AU list and crop size do not change what is refused).
    preparer = FacePreparer([1], landmarker=backend, face_cache=cache)
    usable, refused = [], {}
    rows = dataset.select_columns(["sample_id", "onset", "apex"])
    for index, row in enumerate(tqdm(rows, desc=f"faces in {name}", unit="sample", disable=not progress)):
        sample = str(row["sample_id"])
        try:
            preparer.prepare(row["onset"], row["apex"], sample)
        except (ImageLoadError, NoFaceError, RegistrationError) as err:
            refused[sample] = str(err)
            continue
        usable.append(index)
    saved = _save_cache(cache, path)
    faces = CorpusFaces(backend, cache, usable, refused, saved)
    if refused:
        logger.warning("%s", faces.summary(name))
    return faces


def write_face_report(faces: CorpusFaces, folder: str | Path, name: str = "dataset") -> Path:
    """``face_report.json`` in a corpus folder: how many rows the face pipeline can use, and each refused row with its
    reason (the rows training and evaluation will leave out)."""
    path = Path(folder) / FACE_REPORT_NAME
    atomic_write_text(path, json.dumps({"summary": faces.summary(name), **faces.report()}, indent=2) + "\n")
    return path


def _save_cache(cache: FaceCache | None, path: Path | None) -> Path | None:
    if cache is None or path is None:
        return None
    if not cache.dirty:
        return path
    try:
        return cache.save(path)
    except OSError as err:  # a read-only corpus folder: the detections are kept in memory for this run only
        logger.info("face cache not saved to %s (%s)", path, err)
        return None


__all__ = ["CorpusFaces", "FACE_REPORT_NAME", "check_corpus_faces", "face_cache_path", "write_face_report"]
