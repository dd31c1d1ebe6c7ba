"""A multi-corpus synthetic stand-in for MEB's CD6ME: pseudo-corpora that differ as real corpora do.

CD6ME's point is that corpora differ: camera and frame rate, resolution and face size, lighting, how strongly the
people in them move. The stand-in gives each pseudo-corpus its own values of those, through the existing parameters
of :func:`~microau_hf.data.synthetic.make_synthetic_corpus` (nothing about how a face is rendered is new here), its
own ``dataset`` name and, when enough faces are available, its own people. It runs the whole protocol on any machine;
its figures say that the code runs, never how a model does on CD6ME, and are never printed beside MEB's.

What differs, per pseudo-corpus (:data:`STANDIN_CORPORA`):

* frame rate: frame numbers are those of a clip at that rate (the synthetic corpus numbers frames as at 200 fps);
  the two frames the model sees are the same rendering either way, so the rate is bookkeeping, said so here;
* resolution and face size: :class:`~microau_hf.data.render.Rendering` ``frame_sizes`` and ``iod_px``;
* lighting: the light change and flicker between onset and apex (:class:`~microau_hf.data.synthetic.Nuisance`);
* amplitude: the range of each AU's peak displacement (``amplitude_px``).

Each pseudo-corpus is saved as a dataset folder with a ``conversion_report.json`` like a converted corpus's: its
``annotation_sha256`` is the hash of the settings that made its labels (the stand-in's "annotation"), and
``aus_labelled`` lists the 12 AUs, the only ones the stand-in labels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from datasets import Dataset

from ..atomic import atomic_directory, atomic_write_text, check_replaceable
from ..aus import AU_SETS
from .converters.common import REPORT_NAME, ConversionReport
from .faces import FaceImage, load_faces
from .render import Rendering
from .synthetic import Nuisance, make_synthetic_corpus

#: The list of corpus folders the stand-in writes beside them, for ``microau evaluate --protocol cd6me --data``.
LIST_FILE = "corpora.txt"
SYNTHETIC_FPS = 200  # make_synthetic_corpus numbers frames as at 200 fps


@dataclass(frozen=True)
class PseudoCorpus:
    """One pseudo-corpus: its name (the ``dataset`` column) and what its recordings are like."""

    name: str
    fps: int
    frame_sizes: tuple[tuple[int, int], ...]
    iod_px: tuple[float, float]
    amplitude_px: tuple[float, float]
    light_gain: float  # onset-to-apex light change (Nuisance.gain); the default is 0.03
    flicker_prob: float  # share of samples with a light flicker (Nuisance.flicker_prob); the default is 0.15


#: Four pseudo-corpora, loosely after the spread of the real ones (a 200 fps lab camera, a 60 fps small-face one,
#: a 90 fps dim one with flicker, a 30 fps webcam with stronger movements); the names say they are synthetic.
STANDIN_CORPORA: tuple[PseudoCorpus, ...] = (
    PseudoCorpus("synthetic_lab200", 200, ((640, 480),), (60.0, 90.0), (1.0, 2.0), 0.02, 0.05),
    PseudoCorpus("synthetic_small60", 60, ((320, 240),), (30.0, 45.0), (1.5, 2.5), 0.03, 0.15),
    PseudoCorpus("synthetic_dim90", 90, ((480, 360),), (40.0, 70.0), (1.0, 2.5), 0.08, 0.4),
    PseudoCorpus("synthetic_webcam30", 30, ((640, 480), (480, 360)), (35.0, 60.0), (2.0, 3.0), 0.05, 0.25),
)


def make_standin_corpora(out_dir: str | Path, samples_per_corpus: int = 24, seed: int = 0,
                         corpora: Sequence[PseudoCorpus] = STANDIN_CORPORA, faces: Sequence[FaceImage] | None = None,
                         overwrite: bool = False) -> list[Path]:
    """Write every pseudo-corpus to ``out_dir/<name>`` and the list file ``out_dir/corpora.txt``; return the folders.

    ``faces`` default to every face available here; with at least as many faces as corpora each corpus gets its own
    people (as real corpora have), else every corpus uses all of them and the report says so.
    """
    out_dir = Path(out_dir)
    for corpus in corpora:  # all refusals before any work
        check_replaceable(out_dir / corpus.name, overwrite)
    faces = list(load_faces() if faces is None else faces)
    folders = []
    for index, corpus in enumerate(corpora):
        people = faces[index::len(corpora)] if len(faces) >= len(corpora) else faces
        folders.append(_write_corpus(out_dir / corpus.name, corpus, seed + index, samples_per_corpus, people,
                                     shared_people=len(faces) < len(corpora)))
    atomic_write_text(out_dir / LIST_FILE, "".join(f"{folder.name}\n" for folder in folders))
    return folders


def _write_corpus(folder: Path, corpus: PseudoCorpus, seed: int, samples: int, faces: Sequence[FaceImage],
                  shared_people: bool) -> Path:
    rendering = Rendering(frame_sizes=corpus.frame_sizes, iod_px=corpus.iod_px)
    nuisance = replace(Nuisance(), gain=corpus.light_gain, flicker_prob=corpus.flicker_prob)
    rows = make_synthetic_corpus(None, num_samples=samples, seed=seed, amplitude_px=corpus.amplitude_px,
                                 aus=AU_SETS["cross12"], faces=faces, nuisance=nuisance, rendering=rendering)
    rows = _as_corpus(rows, corpus)
    recipe = {"pseudo_corpus": asdict(corpus), "seed": seed, "samples": samples, "aus": list(AU_SETS["cross12"]),
              "faces": [face.subject for face in faces], "people_shared_with_other_corpora": shared_people}
    text = json.dumps(recipe, sort_keys=True)
    report = ConversionReport(corpus.name, f"synthetic stand-in recipe: {text}", str(folder),
                              annotation_sha256=hashlib.sha256(text.encode()).hexdigest(),
                              aus_labelled=list(AU_SETS["cross12"]), rows_read=samples, rows_written=len(rows))
    with atomic_directory(folder) as staged:
        rows.save_to_disk(str(staged))
        report.save(staged / REPORT_NAME)
    return folder


def _as_corpus(rows: Dataset, corpus: PseudoCorpus) -> Dataset:
    """The pseudo-corpus's name in every row, and frame numbers at its frame rate."""
    scale = corpus.fps / SYNTHETIC_FPS

    def rename(row: dict) -> dict:
        onset = round(row["onset_frame"] * scale)
        apex = max(onset, round(row["apex_frame"] * scale))
        return {"dataset": corpus.name, "onset_frame": onset, "apex_frame": apex,
                "offset_frame": max(apex, round(row["offset_frame"] * scale))}

    return rows.map(rename, desc=None)


__all__ = ["LIST_FILE", "STANDIN_CORPORA", "PseudoCorpus", "make_standin_corpora"]
