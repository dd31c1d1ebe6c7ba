"""The spotter's rules on motion it is handed: flow statistics, head motion removal, return signals, intervals and
their kinds. No video, no landmarks: each region's displacement over time is written down, turned into the flow
vectors the measuring pass would store, and spotted. (tests/test_spotting.py spots real faces end to end.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from microau_hf.spotting import (FlowTrack, FrameTrack, MotionTrack, SpottingSettings, find_intervals, main_direction,
                                 return_signals, spotting_score, uncovered_frames)
from microau_hf.spotting.flow import head_motion
from microau_hf.spotting.regions import face_points

AUS = (1, 2, 4, 7, 12, 14, 15, 17)
FPS = 25.0
SETTINGS = SpottingSettings()
LAGS = tuple(SETTINGS.frames(s, FPS) for s in SETTINGS.windows())


def bump(frames: int, onset: int, offset: int, peak: float) -> np.ndarray:
    """A raised-cosine movement from ``onset`` to ``offset`` (0 outside), peaking at ``peak`` px."""
    t = np.arange(frames)
    inside = (t > onset) & (t < offset)
    return np.where(inside, peak * np.sin(np.pi * (t - onset) / (offset - onset)) ** 2, 0.0)


def motion_of(displacement: np.ndarray, seed: int = 0, noise: float = 0.02) -> MotionTrack:
    """``displacement`` ``(F, K, 2)`` (px from the neutral face) as the flow pass stores it: per lag, the
    displacement from ``k`` frames before, with a little flow noise."""
    rng = np.random.default_rng(seed)
    count = len(displacement)
    vectors = np.full((count, len(LAGS), len(AUS), 2), np.nan, np.float32)
    for s, lag in enumerate(LAGS):
        vectors[lag:, s] = displacement[lag:] - displacement[:-lag] + rng.normal(0, noise, (count - lag, len(AUS), 2))
    return MotionTrack.from_flow(FlowTrack(vectors, np.zeros((count, len(LAGS)), np.float32), LAGS, 80))


def track_of(count: int, eye_opening: np.ndarray | None = None) -> FrameTrack:
    eyes = np.full(count, 0.3, np.float32) if eye_opening is None else eye_opening.astype(np.float32)
    return FrameTrack(np.arange(count), np.zeros(count, np.int64), eyes, np.zeros((count, 2), np.float32))


def region(au: int) -> int:
    return AUS.index(au)


def spot(displacement: np.ndarray, eye_opening: np.ndarray | None = None):
    motion = motion_of(displacement)
    track = track_of(len(displacement), eye_opening)
    return find_intervals(motion, track, AUS, FPS, SETTINGS), motion, track


# ----------------------------------------------------------------------------------------------------------------
# Flow statistics
# ----------------------------------------------------------------------------------------------------------------


def test_main_direction_keeps_a_movement_that_the_region_mean_dilutes():
    rng = np.random.default_rng(0)
    flow = rng.normal(0, 0.3, (400, 2)).astype(np.float32)  # noise everywhere
    flow[:80] += (0.0, -1.0)  # a fifth of the region moves up by 1 px
    masks = np.full((1, 400), 1 / 400, np.float32)
    vector = main_direction(flow, masks)[0]
    mean = flow.mean(axis=0)  # what the mean over the region says: a fifth of it
    assert vector[1] < 2.5 * mean[1] and abs(vector[0]) < 0.3, (vector, mean)


def test_head_motion_fit_removes_a_similarity_and_keeps_a_local_movement():
    size = 80
    ys, xs = (v.astype(float) for v in np.divmod(np.arange(size * size), size))
    angle, scale = math.radians(1.5), 0.02
    x, y = xs - (size - 1) / 2, ys - (size - 1) / 2
    flow = np.stack([0.8 + scale * x - angle * y, -0.5 + angle * x + scale * y], axis=1)
    local = (np.abs(xs - 30) < 5) & (np.abs(ys - 58) < 4)  # a mouth corner moving up by 1 px
    flow[local, 1] -= 1.0
    residual = flow - head_motion(flow.astype(np.float32), size, face_points(size))
    assert np.abs(residual[~local]).max() < 0.05
    assert residual[local, 1].mean() == pytest.approx(-1.0, abs=0.1)


def test_return_signal_sees_a_movement_that_comes_back_and_not_a_step():
    count = 150
    displacement = np.zeros((count, len(AUS), 2))
    displacement[:, region(12), 1] = -bump(count, 40, 50, 1.0)  # up and back in 0.4 s
    displacement[90:, region(1), 1] = -1.0  # the brow goes up and stays
    returns = return_signals(motion_of(displacement, noise=0.0).flow)
    assert returns[45, 0, region(12)] == pytest.approx(1.0, abs=0.05)
    assert np.nanmax(returns[:, 0, region(1)]) < 0.05  # a step moves one side only


# ----------------------------------------------------------------------------------------------------------------
# Intervals and kinds
# ----------------------------------------------------------------------------------------------------------------


def test_a_brief_movement_is_one_micro_interval_over_its_frames():
    count = 200
    displacement = np.zeros((count, len(AUS), 2))
    displacement[:, region(12), 1] = -bump(count, 60, 70, 0.8)
    candidates, _, _ = spot(displacement)
    assert [c.kind for c in candidates] == ["micro"], candidates
    micro = candidates[0]
    assert 60 <= micro.onset <= 63 and 67 <= micro.offset <= 70 and micro.regions[0] == 12


def test_a_long_expression_is_one_macro_interval_from_onset_to_offset():
    count = 250
    displacement = np.zeros((count, len(AUS), 2))
    displacement[:, region(12), 1] = -bump(count, 80, 130, 3.0)  # a 2 s smile, rising for 1 s
    candidates, _, _ = spot(displacement)
    assert [c.kind for c in candidates] == ["macro"], candidates
    macro = candidates[0]
    assert macro.onset <= 88 and macro.offset >= 122, macro  # its rise and fall in one interval


def test_a_partial_blink_is_a_blink_and_an_eye_narrowing_micro_expression_is_not():
    count = 240
    displacement = np.zeros((count, len(AUS), 2))
    displacement[:, region(7), 1] = bump(count, 50, 56, 0.8)  # the lids go down: a blink ...
    eyes = np.full(count, 0.3)
    eyes[51:56] = 0.3 * (1 - 0.45 * np.sin(np.pi * (np.arange(51, 56) - 50) / 6) ** 2)  # ... to 55 % open
    displacement[:, region(7), 1] -= bump(count, 150, 159, 0.8)  # AU7: the lower lid up, the eye narrower
    eyes[151:159] *= 0.8
    candidates, _, _ = spot(displacement, eyes)
    assert [(c.kind, c.onset < 100) for c in candidates] == [("blink", True), ("micro", False)], candidates


def test_a_weaker_movement_just_before_a_stronger_one_elsewhere_is_kept():
    count = 200
    displacement = np.zeros((count, len(AUS), 2))
    displacement[:, region(12), 1] = -bump(count, 60, 68, 0.5)  # the mouth, then ...
    displacement[:, region(1), 1] = -bump(count, 70, 78, 1.5)  # ... 0.3 s later the brows, three times as strong
    candidates, motion, track = spot(displacement)
    assert [(c.kind, c.regions[0]) for c in candidates] == [("micro", 12), ("micro", 1)], candidates
    assert candidates[0].onset < candidates[1].onset  # in order of onset


def test_continuous_mouth_movement_is_speech_and_the_brows_meanwhile_still_a_micro_expression():
    count = 300
    displacement = np.zeros((count, len(AUS), 2))
    for start in range(50, 160, 10):  # 2.5 syllables a second for 4.4 s
        displacement[:, region(17), 1] += bump(count, start, start + 8, 1.0)
    displacement[:, region(2), 1] = -bump(count, 100, 109, 0.8)
    candidates, _, _ = spot(displacement)
    kinds = [c.kind for c in candidates]
    assert kinds.count("micro") == 1 and candidates[kinds.index("micro")].regions[0] == 2, candidates
    speech = [c for c in candidates if c.kind == "speech"]
    assert len(speech) <= 2 and min(c.onset for c in speech) <= 55 and max(c.offset for c in speech) >= 155


def test_every_frame_above_the_threshold_is_in_an_interval():
    rng = np.random.default_rng(3)
    count = 400
    displacement = np.zeros((count, len(AUS), 2))
    for k in range(len(AUS)):  # movements of every length, anywhere
        for _ in range(3):
            onset = int(rng.integers(0, count - 60))
            length = int(rng.integers(3, 60))
            displacement[:, k, int(rng.integers(2))] += bump(count, onset, onset + length, rng.uniform(0.2, 2.0))
    candidates, motion, track = spot(displacement)
    score = spotting_score(motion.micro, track.segments, SETTINGS)
    assert (score >= SETTINGS.threshold_mads).sum() > 20  # there is something to cover
    assert uncovered_frames(candidates, score, SETTINGS.threshold_mads).tolist() == []
    assert [c.onset for c in candidates] == sorted(c.onset for c in candidates)


def test_a_still_face_gives_nothing():
    candidates, _, _ = spot(np.zeros((200, len(AUS), 2)))
    assert candidates == []
