"""What a user sees from a model trained the quickstart way: no AU invented on a still face, and the Space's
examples read as their labels say.

One session-scoped run of the quickstart (the same code as ``microau quickstart``, its default settings) trains the
checkpoint; everything here then goes through the public entry points on raw frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from microau_hf.aus import NO_EMOTION
from microau_hf.data.faces import load_faces
from microau_hf.data.render import Rendering, draw_camera, prepare_subjects, render_frame
from microau_hf.inference import MicroAUPredictor
from microau_hf.quickstart import QuickstartSettings, run
from microau_hf.spotting.metrics import MEGC_IOU_THRESHOLD, Interval, interval_iou

EXAMPLES = Path(__file__).resolve().parent.parent / "spaces_app" / "examples"
STILL_FACE_MAX = 0.2


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("quickstart")
    results = run(QuickstartSettings(out=out))
    return out / "checkpoint", results


@pytest.fixture(scope="module")
def predictor(quickstart_run) -> MicroAUPredictor:
    return MicroAUPredictor.from_pretrained(quickstart_run[0], device="cpu")


def test_the_quickstart_reports_user_path_loso_with_its_coverage(quickstart_run):
    checkpoint, results = quickstart_run
    assert results["face_pipeline"]["regions"] == "landmarks" and not results["face_pipeline"]["refused"]
    assert len(results["folds"]) == 2 and results["scores"]["mean_f1"] > 0.3  # far above chance is all we claim here
    saved = json.loads((checkpoint / "results.json").read_text())
    assert saved["scores"] == results["scores"]


def test_a_still_face_shows_no_au_and_no_emotion(predictor):
    """onset == apex: nothing moved, so every AU stays under 0.2 and the emotion is "none", for every face here."""
    rng = np.random.default_rng(0)
    subjects = prepare_subjects(load_faces())
    worst = {}
    for subject in subjects:
        frame = render_frame(subject, draw_camera(rng, Rendering(), subject))
        still = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        prediction = predictor.predict_pair(still, still, name=subject.subject)
        assert prediction.ok, prediction.message
        worst[subject.subject] = float(prediction.probabilities.max())
        assert prediction.emotion == NO_EMOTION and prediction.objective_class is None, subject.subject
    assert max(worst.values()) < STILL_FACE_MAX, worst


def test_each_space_example_gives_exactly_its_labelled_aus_and_emotion(predictor):
    manifest = json.loads((EXAMPLES / "examples.json").read_text())
    for example in manifest["pairs"]:
        prediction = predictor.predict_pair(EXAMPLES / example["onset"], EXAMPLES / example["apex"])
        scores = {s.au: round(s.score, 2) for s in prediction.aus}
        assert prediction.present == example["aus"], (example["onset"], scores)
        assert prediction.emotion == example["emotion"], (example["onset"], prediction.emotion_scores)


def test_the_space_video_example_is_spotted_as_its_micro_smile(predictor):
    """The spotter finds the example's one micro-movement where it was rendered (IoU >= 0.5 in frames, as the MEGC
    challenges count a hit), nothing else, and the model reads its onset/apex pair as the AUs and emotion drawn."""
    manifest = json.loads((EXAMPLES / "examples.json").read_text())["video"]
    video = predictor.predict_video(EXAMPLES / manifest["video"])
    assert len(video.frame_indices) == manifest["frames"] and not video.unusable_runs()
    micro = video.micro_expressions
    assert len(micro) == len(manifest["intervals"]), video.summary_lines()
    for truth in manifest["intervals"]:
        expected = Interval(truth["onset_frame"], truth["offset_frame"])
        ious = [interval_iou(Interval(i.onset_frame, i.offset_frame), expected) for i in micro]
        spotted = micro[int(np.argmax(ious))]
        assert max(ious) >= MEGC_IOU_THRESHOLD, (truth, video.summary_lines())
        assert spotted.onset_frame <= truth["apex_frame"] <= spotted.offset_frame, spotted.summary_line()
        scores = {s.au: round(s.score, 2) for s in spotted.prediction.aus}
        assert spotted.prediction.present == truth["aus"], scores
        assert spotted.prediction.emotion == truth["emotion"], spotted.prediction.emotion_scores
