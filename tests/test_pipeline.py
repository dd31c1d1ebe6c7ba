"""The ``micro-au-detection`` pipeline task: registered on import, loaded from a checkpoint folder, run on pairs and
videos."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from skimage import data
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from microau_hf.inference import MicroAUPredictor
from microau_hf.pipeline import TASK, MicroAUDetectionPipeline
from microau_hf.results import result_object, results_document
from microau_hf.video import write_video


@pytest.fixture(scope="module")
def detect(checkpoint):
    return pipeline(TASK, model=str(checkpoint), device="cpu")


@pytest.fixture(scope="module")
def pair():
    onset = data.astronaut()
    return onset, np.roll(onset, 2, axis=0)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from test_spotting import face_frames

    frames = face_frames(60, [(25, 33, 5.0)])  # a brief smile at frames 25-33
    return write_video(tmp_path_factory.mktemp("video") / "clip.avi", frames, fps=25)


def test_task_is_registered_on_import():
    assert TASK in PIPELINE_REGISTRY.get_supported_tasks()


def test_import_stays_light():
    """Registering the task must not pull in OpenCV or MediaPipe: they load when a video or a face is first seen."""
    check = "import sys, microau_hf; print(sorted(m for m in ('cv2', 'mediapipe') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_pair(detect, checkpoint, pair):
    assert isinstance(detect, MicroAUDetectionPipeline)
    result = detect({"onset": pair[0], "apex": pair[1]})
    config = detect.model.config
    assert [s["au"] for s in result["aus"]] == list(config.aus)
    assert set(result["aus"][0]) == {"au", "label", "score", "present"}
    assert {s["au"]: s["label"] for s in result["aus"]} == dict(zip(config.aus, config.au_names))
    assert all(0 <= s["score"] <= 1 for s in result["aus"])
    assert result["present"] == [s["au"] for s in result["aus"] if s["score"] >= 0.5]
    assert result["emotion"] in result["emotion_scores"] and result["status"] in ("aligned", "template")
    # The pipeline is the predictor: the same Prediction, as the results schema writes it.
    expected = MicroAUPredictor.from_pretrained(checkpoint, device="cpu").predict_pair(*pair, name="pair")
    assert result == result_object(expected)
    assert result == results_document([expected])["items"][0]
    assert detect(pair) == result


def test_threshold_and_lists(detect, pair):
    everything = detect(pair, threshold=0.0)
    assert everything["present"] == list(detect.model.config.aus)
    assert all(s["present"] for s in everything["aus"])
    nothing = detect(pair, threshold=1.0)
    assert nothing["present"] == [] and not any(s["present"] for s in nothing["aus"])
    assert [s["score"] for s in nothing["aus"]] == [s["score"] for s in everything["aus"]]
    assert nothing["emotion"] == everything["emotion"]  # the emotion comes from the probabilities, not the threshold
    results = detect([pair, {"onset": pair[0], "apex": pair[0]}])
    assert isinstance(results, list) and len(results) == 2


def test_video(detect, video):
    result = detect(str(video))
    assert set(result) >= {"path", "fps", "frames_read", "intervals", "unusable_frames", "truncated", "frames"}
    micro = [i for i in result["intervals"] if i["kind"] == "micro"]
    assert result["frames_read"] == 60 and len(result["frames"]) == 60 and len(micro) == 1
    assert not any("AU12" in row for row in result["frames"])  # AU probabilities per frame only with every_frame
    scored = micro[0]["prediction"]
    assert micro[0]["onset_frame"] <= 29 <= micro[0]["offset_frame"] and scored["status"] == "aligned"
    assert micro[0]["apex_time_s"] == pytest.approx(micro[0]["apex_frame"] / 25)
    assert [a["au"] for a in scored["aus"]] == list(detect.model.config.aus)
    assert micro[0]["present"] == scored["present"] and micro[0]["emotion"] == scored["emotion"]
    every = detect({"video": video}, every_frame=True, stride=20, video_batch_size=2, threshold=0.0)
    scored = [row["frame"] for row in every["frames"] if "AU12" in row]
    assert scored == [8, 28, 48]  # every 20th frame from the first with a frame 0.3 s (8 frames) before it
    micro = [i for i in every["intervals"] if i["kind"] == "micro"]
    assert micro[0]["present"] == list(detect.model.config.aus)  # the call's threshold reaches the intervals


def test_bad_inputs(detect, pair):
    with pytest.raises(ValueError, match="takes .*onset.*tuple, or a video path"):
        detect({"onset": pair[0]})
    blank = np.zeros((128, 128, 3), np.uint8)
    result = detect((blank, blank))
    assert result["status"] in ("no_face", "template") and (result["aus"] == []) == (result["status"] == "no_face")
