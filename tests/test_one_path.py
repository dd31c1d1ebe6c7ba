"""One face path: the rows a model trains on and the files a user predicts on become the same model inputs.

The training collator reads corpus rows with the detections cached beside the corpus; the predictor reads the same
frames from files with a fresh face pipeline. Both must give the same tensors and the same probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Image
from PIL import Image as PILImage

from microau_hf import MicroAUClipModel, au_probabilities, make_config
from microau_hf.data.corpus_faces import check_corpus_faces, face_cache_path
from microau_hf.face import FaceCache, LandmarkBackend, MediaPipeLandmarker, build_processor, model_inputs
from microau_hf.face.pipeline import FacePreparer
from microau_hf.inference import MicroAUPredictor
from microau_hf.pipeline import MicroAUDetectionPipeline
from microau_hf.train import MicroAUCollator

KEYS = ("onset_pixel_values", "apex_pixel_values", "au_region_weights")


class CountingLandmarker(LandmarkBackend):
    """MediaPipe, counting the frames it is asked about."""

    name = "mediapipe"

    def __init__(self):
        self.inner = MediaPipeLandmarker()
        self.calls = 0

    def detect(self, image, name="image"):
        self.calls += 1
        return self.inner.detect(image, name)

    def close(self):
        self.inner.close()


@pytest.fixture(scope="module")
def model_and_processor():
    config = make_config("samm", preset="test")
    torch.manual_seed(0)
    return MicroAUClipModel(config).eval(), build_processor(config)


def write_pairs(rows, folder: Path) -> list[tuple[Path, Path]]:
    """The rows' frames as the files they were stored as (JPEG bytes, untouched)."""
    raw = rows.cast_column("onset", Image(decode=False)).cast_column("apex", Image(decode=False))
    pairs = []
    for row in raw:
        stem = row["sample_id"].replace("/", "_")
        paths = (folder / f"{stem}_onset.jpg", folder / f"{stem}_apex.jpg")
        for path, frame in zip(paths, (row["onset"], row["apex"])):
            path.write_bytes(frame["bytes"])
        pairs.append(paths)
    return pairs


def test_collator_and_predictor_build_the_same_inputs_and_probabilities(tiny_corpus, model_and_processor, tmp_path):
    dataset, folder = tiny_corpus
    model, processor = model_and_processor
    faces = check_corpus_faces(dataset, name="tiny corpus", progress=False)
    assert face_cache_path(dataset) == folder / "microau_face_cache.safetensors" and face_cache_path(dataset).is_file()
    rows = faces.usable_rows(dataset).select(range(8))
    batch = MicroAUCollator(processor, model.config.aus, faces.preparer(model.config))(list(rows))

    predictor = MicroAUPredictor(model, processor, device="cpu")  # a fresh face pipeline, no cache: what users run
    pairs = write_pairs(rows, tmp_path)
    prepared = predictor.preparer.prepare_batch(pairs)
    assert all(p.status == "aligned" for p in prepared)
    served = model_inputs(processor, prepared)
    for key in KEYS:
        assert batch[key].shape == served[key].shape
        assert (batch[key] - served[key]).abs().max() <= 1e-5, key

    with torch.inference_mode():
        trained_on = au_probabilities(model(**{k: batch[k] for k in KEYS}).logits).numpy()
    predicted = np.stack([p.probabilities for p in predictor.predict_pairs(pairs)])
    assert np.abs(trained_on - predicted).max() <= 1e-5


def test_the_cache_serves_unchanged_frames_and_changed_frames_are_detected_again(tiny_corpus, tmp_path):
    dataset, folder = tiny_corpus
    rows = dataset.select(range(4))
    counting = CountingLandmarker()
    cache = FaceCache.load(face_cache_path(dataset), "mediapipe")
    check_corpus_faces(rows, counting, cache=cache, progress=False)
    assert counting.calls == 0  # every onset was in the cache file

    flipped = rows.map(lambda row: {"onset": row["onset"].transpose(0), "apex": row["apex"].transpose(0)})
    check_corpus_faces(flipped, counting, cache=cache, progress=False)
    assert counting.calls == 4  # new pixels, new keys: never trusted to the old detections

    other_backend = FaceCache.load(face_cache_path(dataset), "dlib")
    assert len(other_backend) == 0  # a cache made by another backend is not used
    garbage = tmp_path / "cache.safetensors"
    garbage.write_bytes(b"not a cache")
    assert len(FaceCache.load(garbage, "mediapipe")) == 0  # an unreadable cache is rebuilt, never trusted
    counting.close()


def test_unusable_rows_are_refused_with_their_reason(tiny_corpus):
    dataset, _ = tiny_corpus
    blank = PILImage.new("RGB", (320, 240), (128, 128, 128))
    rows = dataset.select(range(3)).map(
        lambda row, i: {"onset": blank, "apex": blank} if i == 1 else row, with_indices=True)
    faces = check_corpus_faces(rows, progress=False)
    bad = rows[1]["sample_id"]
    assert faces.usable == [0, 2] and list(faces.refused) == [bad]
    assert faces.refused[bad] == f"{bad} onset: no face found"
    assert len(faces.usable_rows(rows)) == 2
    assert "1 refused" in faces.summary("rows")


def test_every_consumer_goes_through_the_face_preparer(tiny_corpus, model_and_processor, monkeypatch, tmp_path):
    dataset, _ = tiny_corpus
    model, processor = model_and_processor
    calls = []
    original = FacePreparer.prepare

    def spy(self, onset, apex, name=None):
        calls.append(name)
        return original(self, onset, apex, name)

    monkeypatch.setattr(FacePreparer, "prepare", spy)
    rows = dataset.select(range(2))
    faces = check_corpus_faces(rows, progress=False)
    assert len(calls) == 2  # the corpus face check runs the whole face path too
    MicroAUCollator(processor, model.config.aus, faces.preparer(model.config))(list(rows))
    assert len(calls) == 4
    pairs = write_pairs(rows, tmp_path)
    MicroAUPredictor(model, processor, device="cpu").predict_pairs(pairs)
    assert len(calls) == 6
    detector = MicroAUDetectionPipeline(model=model, processor=processor, device="cpu")
    detector({"onset": str(pairs[0][0]), "apex": str(pairs[0][1])})
    assert len(calls) == 7


def test_synth_reports_the_face_check_and_caches_the_detections(tmp_path, capsys):
    import json

    from microau.cli import main

    out = tmp_path / "corpus"
    assert main(["synth", "--out", str(out), "--num-samples", "6"]) == 0
    report = json.loads((out / "face_report.json").read_text())
    assert report["usable"] == 6 and report["refused"] == {} and report["regions"] == "landmarks"
    assert (out / "microau_face_cache.safetensors").is_file()
    assert "6 of 6 samples have a usable face" in capsys.readouterr().out
