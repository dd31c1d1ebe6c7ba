"""Write a converted corpus so that a failed run leaves nothing behind and a rerun replaces the last output.

Everything is built in a hidden folder beside ``out`` (same file system, so the final rename is atomic) and only
renamed to ``out`` once the dataset and its report are complete. Rows stream through ``Dataset.from_generator``,
which writes Arrow to disk as it goes, so a corpus with all its frames never has to fit in memory.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import datasets
from tqdm.auto import tqdm

from ...atomic import atomic_directory, check_replaceable
from ..schema import sample_features


def write_atomically(make_rows: Callable[[], Iterator[dict]], out: Path, *, with_frames: bool, total: int,
                     progress: bool, desc: str, finish: Callable[[Path], None], overwrite: bool = False) -> None:
    """Build the dataset from ``make_rows()`` in a temporary folder, call ``finish(folder)``, then move it to ``out``.

    ``finish`` writes what belongs beside the data (the report) before the rename, so ``out`` is never half-written.
    An existing ``out`` is replaced only with ``overwrite`` and only if it holds nothing but an earlier conversion.
    """
    out = Path(out).expanduser().resolve()
    check_replaceable(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(out) as built, tempfile.TemporaryDirectory(prefix=f".{out.name}.cache-", dir=out.parent) as cache:
        _build(make_rows, built, with_frames=with_frames, total=total, progress=progress, desc=desc, cache=Path(cache))
        finish(built)


def _build(make_rows, folder: Path, *, with_frames: bool, total: int, progress: bool, desc: str, cache: Path) -> None:
    features = sample_features(with_frames)

    written = []

    def generate() -> Iterator[dict]:
        for row in tqdm(make_rows(), total=total, desc=desc, unit="sample", disable=not progress):
            written.append(row["sample_id"])
            yield row

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # our bar counts samples; theirs would add two more per run
    try:
        try:
            dataset = datasets.Dataset.from_generator(
                generate, features=features, cache_dir=str(cache), fingerprint=uuid.uuid4().hex
            )
        except ValueError:  # raised by `datasets` for a generator that yields nothing (its own errors are wrapped)
            if written:
                raise
            # every row was refused: still write an empty dataset, so the report sits where the user looks
            dataset = datasets.Dataset.from_dict({name: [] for name in features}, features=features)
        dataset.save_to_disk(str(folder), num_shards=None if len(dataset) else 1)  # 0 shards would not load
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
