"""Spotting in videos through the public `MicroAUPredictor.predict_video` and `microau predict --video`.

The videos are written here from a real face (the astronaut) with movements at known frames: a brief smile (a
micro-expression), a long one (a macro-expression), a head that moves and stays, a cut, faceless stretches. The
model is a tiny random one: these tests check where intervals are found and what is reported, not what the
probabilities say.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from skimage import data

from microau_hf.face import NoFaceError
from microau_hf.inference import MicroAUPredictor
from microau_hf.results import SCHEMA_VERSION, frames_csv_path, save_results
from microau_hf.spotting.metrics import Interval, interval_iou
from microau_hf.video import VideoReadError, VideoTooShortError, iter_frames, write_video
from test_inference import MOUTH, smile

pytest.importorskip("mediapipe", reason="spotting real faces needs the landmark backend")

FPS = 25
MICRO = (30, 38)  # onset and offset frames of the brief smile; 9 frames = 0.36 s
MACRO = (62, 95)  # a 1.36 s smile: a macro-expression


def envelope(frame: int, onset: int, offset: int, peak: float) -> float:
    """A raised-cosine rise and fall between onset and offset (0 outside)."""
    if not onset <= frame <= offset:
        return 0.0
    return peak * math.sin(math.pi * (frame - onset + 0.5) / (offset - onset + 1)) ** 2


def face_frames(count: int, moves=(), seed: int = 0, shift_from: int | None = None):
    """The astronaut's face, with light sensor noise, each frame's mouth pushed up by the sum of ``moves``
    (``(onset, offset, peak px)``); from ``shift_from`` on, the whole picture is moved 6 px right (the head moved)."""
    face = data.astronaut()[:320, 64:384]
    rng = np.random.default_rng(seed)
    centre = (MOUTH[0] - 64, MOUTH[1])
    for frame in range(count):
        amplitude = sum(envelope(frame, *move) for move in moves)
        picture = smile(face, amplitude, centre) if amplitude else face
        if shift_from is not None and frame >= shift_from:
            picture = np.roll(picture, 6, axis=1)
        noisy = picture.astype(np.float32) + rng.normal(0, 1.5, picture.shape)
        yield np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def predictor(checkpoint) -> MicroAUPredictor:
    return MicroAUPredictor.from_pretrained(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def expressions_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("spotting") / "expressions.avi"
    return write_video(path, face_frames(120, [(*MICRO, 4.0), (*MACRO, 8.0)]), fps=FPS)


@pytest.fixture(scope="module")
def spotted(predictor, expressions_video):
    return predictor.predict_video(expressions_video, every_frame=True, stride=10)


def test_spots_the_micro_expression_and_not_the_macro_one(spotted):
    micro = spotted.micro_expressions
    assert len(micro) == 1, spotted.summary_lines()
    found = Interval(micro[0].onset_frame, micro[0].offset_frame)
    assert interval_iou(found, Interval(*MICRO)) >= 0.5, found
    assert MICRO[0] <= micro[0].apex_frame <= MICRO[1]
    assert micro[0].prediction.ok and micro[0].to_dict()["onset_time_s"] == pytest.approx(micro[0].onset_frame / FPS)
    assert micro[0].regions[0] in (12, 14, 15), micro[0].regions  # the mouth corners moved
    macro = [i for i in spotted.intervals if i.offset_frame >= MACRO[0] and i.onset_frame <= MACRO[1]]
    assert all(i.kind == "macro" for i in macro), [i.summary_line() for i in macro]


def test_the_interval_is_scored_as_its_onset_apex_pair(predictor, spotted, expressions_video):
    """One path: the spotted interval's prediction is what predict_pair gives for its two decoded frames."""
    interval = spotted.micro_expressions[0]
    frames = dict(iter_frames(expressions_video))
    alone = predictor.predict_pair(frames[interval.onset_frame], frames[interval.apex_frame])
    np.testing.assert_allclose(interval.prediction.probabilities, alone.probabilities, atol=1e-5)


def test_time_series_files_and_dataframes(spotted, tmp_path):
    count = len(spotted.frame_indices)
    assert count == 120 and spotted.face_status == ["found"] * count and not spotted.truncated
    assert spotted.region_motion.shape == (count, len(spotted.aus)) and spotted.spotting_score.shape == (count,)
    lag = round(0.3 * FPS)  # one micro window: the first frame that has a frame that far before it
    assert spotted.scored_frames.tolist() == list(range(lag, 120, 10))
    assert spotted.frame_probabilities.shape == (len(range(lag, 120, 10)), len(spotted.aus))
    document = json.loads(save_results(spotted, tmp_path / "video.json").read_text())
    assert (document["schema_version"], document["kind"]) == (SCHEMA_VERSION, "video")
    video = document["video"]
    assert len(video["frames"]) == count and video["unusable_frames"] == []
    assert [i["kind"] for i in video["intervals"]] == [i.kind for i in spotted.intervals]
    assert "AU12" in video["frames"][lag] and "AU12" not in video["frames"][lag + 1] and "motion_AU12" in video["frames"][0]
    save_results(spotted, tmp_path / "video.csv")
    intervals = list(csv.DictReader((tmp_path / "video.csv").open()))
    frames = list(csv.DictReader(frames_csv_path(tmp_path / "video.csv").open()))
    assert len(intervals) == len(spotted.intervals) and len(frames) == count
    assert spotted.to_dataframe("intervals").shape[0] == len(spotted.intervals)
    assert list(spotted.to_dataframe("frames")["frame"]) == list(range(count))


def test_a_still_face_gives_no_interval(predictor, tmp_path):
    still = write_video(tmp_path / "still.avi", face_frames(60), fps=FPS)
    result = predictor.predict_video(still)
    assert result.intervals == [] and "no micro-expression" in "\n".join(result.summary_lines())


def test_a_head_that_moves_and_stays_is_no_micro_expression(predictor, tmp_path):
    moved = write_video(tmp_path / "moved.avi", face_frames(80, shift_from=40), fps=FPS)
    near_the_step = [i for i in predictor.predict_video(moved).micro_expressions
                     if i.onset_frame <= 44 and i.offset_frame >= 36]
    assert near_the_step == []  # noise may reach the threshold elsewhere; the step itself never does


def test_a_folder_of_frames_is_a_video(predictor, spotted, expressions_video, tmp_path):
    from PIL import Image

    for index, frame in iter_frames(expressions_video):
        Image.fromarray(frame).save(tmp_path / f"img{index + 1}.png")  # img2 must come before img10
    with pytest.raises(VideoReadError, match="carry no frame rate; give fps"):
        predictor.predict_video(tmp_path)
    from_folder = predictor.predict_video(tmp_path, fps=FPS)
    assert [(i.kind, i.onset_frame, i.apex_frame, i.offset_frame) for i in from_folder.intervals] == \
        [(i.kind, i.onset_frame, i.apex_frame, i.offset_frame) for i in spotted.intervals]


def test_faceless_frames_and_cuts_are_listed_and_never_in_an_interval(predictor, tmp_path):
    blank = np.full((320, 320, 3), 90, np.uint8)
    other = data.astronaut()[:320, 64:384][:, ::-1].copy()  # a different picture: a cut
    frames = [*face_frames(40, [(15, 23, 5.0)]), *[blank] * 10, *face_frames(30, seed=1), *[other] * 30]
    result = predictor.predict_video(write_video(tmp_path / "mixed.avi", frames, fps=FPS))
    runs = result.unusable_runs()
    assert runs == [{"status": "lost", "first_frame": 40, "last_frame": 49, "frames": 10}]
    assert result.face_status[80] == "cut" and result.face_status[81] == "found"
    assert any(line.startswith("10 frames without a usable face") for line in result.summary_lines())
    for interval in result.intervals:
        assert not interval.onset_frame <= 45 <= interval.offset_frame  # not across the faceless stretch
        assert not interval.onset_frame < 80 <= interval.offset_frame  # not across the cut
    # The smile before the faceless stretch is found (the mesh moves its nose tip with the mouth, so it may be
    # listed as head motion rather than as a micro-expression; either way it is not lost at the segment's edge).
    assert any(i.onset_frame <= 19 <= i.offset_frame for i in result.intervals)


def test_bad_videos_say_what_is_wrong(predictor, tmp_path):
    with pytest.raises(VideoReadError, match="no such file"):
        predictor.predict_video(tmp_path / "missing.mp4")
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(VideoReadError, match="text.mp4: cannot"):
        predictor.predict_video(tmp_path / "text.mp4")
    blank = write_video(tmp_path / "blank.avi", [np.full((160, 160, 3), 90, np.uint8)] * 20, fps=FPS)
    with pytest.raises(NoFaceError, match=r"blank.avi: no usable face in any of the 20 frames read \(no face found\)"):
        predictor.predict_video(blank)
    short = write_video(tmp_path / "short.avi", face_frames(8), fps=FPS)
    with pytest.raises(VideoTooShortError, match=r"short.avi: 8 frames with a usable face; spotting needs at least"):
        predictor.predict_video(short)
    glimpse = write_video(tmp_path / "glimpse.avi", [*face_frames(5), *[np.full((320, 320, 3), 90, np.uint8)] * 40],
                          fps=FPS)
    with pytest.raises(VideoTooShortError, match="glimpse.avi: 5 frames with a usable face"):
        predictor.predict_video(glimpse)
    with pytest.raises(ValueError, match="at least 2 frames"):
        predictor.predict_video(short, max_frames=1)


def test_cli_writes_intervals_time_series_and_plot(checkpoint, expressions_video, tmp_path, capsys):
    from microau.cli import main

    out, plot = tmp_path / "spotted.json", tmp_path / "timeline.png"
    code = main(["predict", "--model", str(checkpoint), "--video", str(expressions_video), "--out", str(out),
                 "--plot", str(plot), "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0 and "1 micro-expression spotted" in printed and "micro frames" in printed
    assert json.loads(out.read_text())["kind"] == "video"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    blank = write_video(tmp_path / "blank.avi", [np.full((160, 160, 3), 90, np.uint8)] * 20, fps=FPS)
    nothing = tmp_path / "nothing.json"
    code = main(["predict", "--model", str(checkpoint), "--video", str(blank), "--out", str(nothing),
                 "--plot", str(tmp_path / "nothing.png"), "--device", "cpu"])
    error = capsys.readouterr().err
    last = error.strip().replace("\r", "\n").splitlines()[-1]  # after the progress bar
    assert code == 2 and "blank.avi: no usable face" in last and "Traceback" not in error
    assert not nothing.exists() and not (tmp_path / "nothing.png").exists()
    assert main(["predict", "--model", str(checkpoint), "--onset", str(plot), "--apex", str(plot),
                 "--plot", str(plot)]) == 2
    assert "--plot: for --video only" in capsys.readouterr().err


def test_evaluate_spotting_on_a_long_video_corpus(checkpoint, expressions_video, tmp_path, capsys):
    """`microau evaluate --task spotting` on a converted long-video dataset (frames on disk, truth intervals)."""
    from datasets import Dataset
    from PIL import Image

    from microau.cli import main
    from microau_hf.data.spotting_schema import spotting_features

    frames = tmp_path / "frames"
    frames.mkdir()
    paths = []
    for index, frame in iter_frames(expressions_video):
        paths.append(str(frames / f"img{index + 1}.jpg"))
        Image.fromarray(frame).save(paths[-1], quality=95)
    truth = [{"onset": MICRO[0], "apex": (MICRO[0] + MICRO[1]) // 2, "offset": MICRO[1], "kind": "micro",
              "aus": "12", "emotion": "happiness"},
             {"onset": MACRO[0], "apex": 78, "offset": MACRO[1], "kind": "macro", "aus": "12", "emotion": ""}]
    row = {"corpus": "test", "subject": "s1", "video": "s1_expressions", "fps": float(FPS), "num_frames": len(paths),
           "frame_paths": paths, "intervals": truth}
    Dataset.from_list([row], features=spotting_features()).save_to_disk(str(tmp_path / "corpus"))
    out = tmp_path / "run"
    assert main(["evaluate", "--task", "spotting", "--data", str(tmp_path / "corpus"), "--model", str(checkpoint),
                 "--output-dir", str(out), "--device", "cpu"]) in (0, None)
    results = json.loads((out / "results.json").read_text())
    assert results["protocol"].startswith("spotting, 1 of 1 video")
    micro = results["scores"]["micro"]
    assert (micro["tp"], micro["fn"]) == (1, 0), micro
    assert "spotting" in capsys.readouterr().out
    assert main(["evaluate", "--task", "spotting", "--data", str(tmp_path / "corpus"), "--output-dir", str(out)]) == 2
    assert "--task spotting needs --model" in capsys.readouterr().err


def test_every_frame_leaves_out_frames_without_a_face(predictor, tmp_path):
    blank = np.full((320, 320, 3), 90, np.uint8)
    video = write_video(tmp_path / "gap.avi", [*face_frames(30), *[blank] * 10, *face_frames(30, seed=2)], fps=FPS)
    result = predictor.predict_video(video, every_frame=True, stride=5)
    scored = result.scored_frames.tolist()
    assert scored and all(result.face_status[frame] == "found" for frame in scored)
    assert not any(30 <= frame < 40 + round(0.3 * FPS) for frame in scored)  # the gap and the frames just after it
    assert result.frame_probabilities.shape == (len(scored), len(result.aus))


def test_plot_of_a_video_whose_segments_are_all_too_short(checkpoint, tmp_path):
    """Enough faces to spot, but no segment long enough for a window on each side: no score, still a time line."""
    from microau.cli import main

    blank = np.full((320, 320, 3), 90, np.uint8)
    video = write_video(tmp_path / "bits.avi", [*face_frames(12), *[blank] * 3, *face_frames(12, seed=3)], fps=FPS)
    out, plot = tmp_path / "bits.json", tmp_path / "bits.png"
    assert main(["predict", "--model", str(checkpoint), "--video", str(video), "--out", str(out), "--plot", str(plot),
                 "--device", "cpu"]) == 0
    assert json.loads(out.read_text())["video"]["intervals"] == [] and plot.stat().st_size > 0


def test_a_partial_blink_is_a_blink_and_a_mouth_movement_just_before_it_is_kept(predictor, tmp_path):
    """The eyes closing to ~55 % is a blink, never a micro-expression; a brief mouth movement 0.3 s before it is
    listed on its own (it used to be swallowed by the stronger blink next to it)."""
    from microau_hf.data.synthetic_video import warp_face
    from microau_hf.face.landmarks import MediaPipeLandmarker

    face = data.astronaut()[:320, 64:384]
    with MediaPipeLandmarker() as landmarker:
        landmarks = landmarker.detect(face).semantic
    eye_height = math.dist(landmarks["eye_top_left"], landmarks["eye_bottom_left"])
    rng = np.random.default_rng(0)
    frames = []
    for frame in range(100):
        moves = [("blink", "", 0.45 * eye_height * envelope(frame, 50, 56, 1.0))] if 50 <= frame <= 56 else []
        moves += [(12, "", envelope(frame, 34, 42, 3.0))] if 34 <= frame <= 42 else []
        picture = warp_face(face, landmarks, moves)[0] if moves else face
        frames.append(np.clip(picture + rng.normal(0, 1.5, picture.shape), 0, 255).astype(np.uint8))
    result = predictor.predict_video(write_video(tmp_path / "blink.avi", frames, fps=FPS))
    kinds = [(i.kind, i.onset_frame, i.offset_frame) for i in result.intervals]
    assert [k for k in kinds if k[0] == "micro"] and all(k[2] < 48 for k in kinds if k[0] == "micro"), kinds
    assert any(kind == "blink" and onset <= 53 <= offset for kind, onset, offset in kinds), kinds
    assert [i.onset_frame for i in result.intervals] == sorted(i.onset_frame for i in result.intervals)
