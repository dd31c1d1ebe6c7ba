"""MEGC spotting metrics on hand-computed cases."""

from __future__ import annotations

import json

import pytest

from microau_hf.spotting.metrics import (
    Interval,
    SpottingScores,
    interval_iou,
    match_intervals,
    spotting_scores,
)


def micro(onset: int, offset: int) -> Interval:
    return Interval(onset, offset, "micro")


def macro(onset: int, offset: int) -> Interval:
    return Interval(onset, offset, "macro")


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ((0, 4), (2, 6), 3 / 7),  # frames 2, 3, 4 shared; 0..6 in the union
        ((0, 9), (0, 9), 1.0),
        ((5, 5), (5, 5), 1.0),  # a one-frame interval is an interval
        ((0, 4), (5, 9), 0.0),  # touching, no shared frame
        ((0, 4), (10, 20), 0.0),
        ((0, 9), (0, 4), 0.5),  # 5 of 10 frames
        ((10, 19), (12, 13), 2 / 10),  # one inside the other
    ],
)
def test_iou_counts_frames_with_both_ends_included(a, b, iou):
    assert interval_iou(Interval(*a), Interval(*b)) == pytest.approx(iou)
    assert interval_iou(Interval(*b), Interval(*a)) == pytest.approx(iou)


@pytest.mark.parametrize(("onset", "offset"), [(5, 4), (-1, 3), (1.5, 3)])
def test_an_interval_is_checked(onset, offset):
    with pytest.raises(ValueError, match="interval"):
        Interval(onset, offset)


def test_two_predictions_on_one_truth_are_one_tp_and_one_fp():
    matches = match_intervals([micro(0, 9), micro(1, 9)], [micro(0, 9)])
    assert (matches.tp, matches.fp, matches.fn) == (1, 1, 0)
    (pair,) = matches.pairs
    assert (pair.predicted_index, pair.truth_index, pair.iou) == (0, 0, 1.0)  # the better one is kept


def test_one_prediction_over_two_truths_matches_only_one():
    matches = match_intervals([micro(0, 9)], [micro(0, 9), micro(0, 8)])
    assert (matches.tp, matches.fp, matches.fn) == (1, 0, 1)


def test_greedy_matching_by_descending_iou():
    # p0 overlaps t0 (IoU 0.6) and t1 (IoU 0.9); p1 only t1 (IoU 0.55). Greedy takes p0-t1 first, then p1 has
    # nothing left: 1 TP, though p0-t0 + p1-t1 would give 2. This is the documented rule, kept deliberately.
    t0, t1 = micro(0, 9), micro(4, 13)
    p0, p1 = micro(3, 12), micro(5, 15)
    assert interval_iou(p0, t1) > interval_iou(p0, t0) >= 0.5
    matches = match_intervals([p0, p1], [t0, t1])
    assert [(p.predicted_index, p.truth_index) for p in matches.pairs] == [(0, 1)]
    assert (matches.tp, matches.fp, matches.fn) == (1, 1, 1)


def test_iou_of_exactly_the_threshold_counts():
    assert match_intervals([micro(0, 4)], [micro(0, 9)]).tp == 1  # 5 of 10 frames: 0.5
    assert match_intervals([micro(0, 3)], [micro(0, 9)]).tp == 0  # 0.4
    # 3/10 == 0.3, although 0.3 * 10 > 3 in floating point
    assert match_intervals([micro(0, 2)], [micro(0, 9)], iou_threshold=0.3).tp == 1


def test_a_bad_threshold_is_refused():
    with pytest.raises(ValueError, match="iou_threshold"):
        match_intervals([], [], iou_threshold=0)


def test_scores_are_pooled_over_videos_not_averaged():
    videos = [
        ([micro(0, 9)], [micro(0, 9)]),  # 1 TP
        ([micro(50, 59), micro(70, 79)], [micro(100, 109)]),  # 2 FP, 1 FN
        ([], [micro(5, 9), micro(20, 29)]),  # 2 FN
    ]
    scores = spotting_scores(videos, kind="micro")
    assert (scores.tp, scores.fp, scores.fn, scores.videos) == (1, 2, 3, 3)
    assert scores.precision == pytest.approx(1 / 3) and scores.recall == pytest.approx(1 / 4)
    assert scores.f1 == pytest.approx(2 * 1 / (2 * 1 + 2 + 3))  # 0.2857; the per-video F1 mean would be 0.333


def test_kind_filters_predictions_and_truth_and_overall_sums_the_kinds():
    videos = [
        ([micro(0, 9), macro(100, 149)], [micro(0, 9), macro(100, 150)]),
        ([macro(0, 9)], [micro(0, 9)]),  # a macro prediction over a micro-expression: no TP, even overall
    ]
    m = spotting_scores(videos, kind="micro")
    assert (m.tp, m.fp, m.fn) == (1, 0, 1)
    big = spotting_scores(videos, kind="macro")
    assert (big.tp, big.fp, big.fn) == (1, 1, 0)
    overall = spotting_scores(videos, kind=None)
    assert (overall.tp, overall.fp, overall.fn) == (m.tp + big.tp, m.fp + big.fp, m.fn + big.fn)
    assert overall.kind is None and m.kind == "micro"


@pytest.mark.parametrize(
    ("videos", "counts", "precision", "recall"),
    [
        ([], (0, 0, 0), 0.0, 0.0),  # no video at all
        ([([], [])], (0, 0, 0), 0.0, 0.0),  # a video with nothing in it
        ([([micro(0, 4)], [])], (0, 1, 0), 0.0, 0.0),  # predictions only
        ([([], [micro(0, 4)])], (0, 0, 1), 0.0, 0.0),  # truth only
        ([([macro(0, 4)], [macro(0, 4)])], (0, 0, 0), 0.0, 0.0),  # nothing of the kind asked for
    ],
)
def test_empty_cases_have_defined_figures(videos, counts, precision, recall):
    scores = spotting_scores(videos, kind="micro")
    assert (scores.tp, scores.fp, scores.fn) == counts
    assert (scores.precision, scores.recall, scores.f1) == (precision, recall, 0.0)


def test_scores_serialise_to_json():
    scores = spotting_scores([([micro(0, 9)], [micro(0, 9)])])
    data = json.loads(json.dumps(scores.to_dict()))
    assert data == {"tp": 1, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "videos": 1,
                    "kind": "micro"}
    assert SpottingScores.from_counts(1, 0, 0, 1, "micro") == scores
    assert match_intervals([micro(0, 9)], [micro(0, 9)]).to_dict() == {"tp": 1, "fp": 0, "fn": 0,
                                                                         "pairs": [[0, 0, 1.0]]}
