"""Spotting evaluation end to end on a converted fixture corpus, with a fake spotter whose figures are known."""

from __future__ import annotations

import json

import pytest
from fixtures_spotting import build_casme_sq

from microau_hf.data.converters import convert_corpus
from microau_hf.data.spotting_schema import load_spotting_folder
from microau_hf.spotting.evaluation import evaluate_spotting, spotting_table, truth_intervals
from microau_hf.spotting.metrics import Interval


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """CAS(ME)^2 layout; truth: 15_0101 micro 2..8 and macro 19..24, 15_0401 macro 9..13, 16_0101 micro 1..5,
    16_0401 nothing."""
    folder = tmp_path_factory.mktemp("spotting")
    convert_corpus("casme_sq", build_casme_sq(folder / "raw"), folder / "data", progress=False)
    return load_spotting_folder(folder / "data")


def shifted_truth(corpus, failing: str | None = None):
    """A spotter returning each truth interval one frame later (three frames for 16_0101: IoU 0.25, a miss), a
    spurious micro-expression in 16_0401, and a blink everywhere (never scored)."""
    truth = {row["frame_paths"][0]: (row["video"], truth_intervals(row)) for row in corpus}

    def spot(frame_paths: list[str], fps: float) -> list[Interval]:
        assert fps == 30.0
        video, intervals = truth[frame_paths[0]]
        if video == failing:
            raise ValueError(f"{video}: no face in frame 1")
        shift = 3 if video == "16_0101" else 1
        found = [Interval(i.onset + shift, i.offset + shift, i.kind) for i in intervals]
        if video == "16_0401":
            found.append(Interval(0, 3, "micro"))
        return found + [Interval(0, 1, "blink")]

    return spot


def test_known_figures_from_a_shifted_truth(corpus):
    results = evaluate_spotting(corpus, shifted_truth(corpus))
    assert results["protocol"] == "spotting, 4 of 4 videos" and results["corpora"] == ["casme_sq"]
    scores = results["scores"]
    # micro: 15_0101 matched (IoU 6/8); 16_0101 missed (IoU 2/8): 1 FP + 1 FN; the spurious one: 1 FP
    assert {k: scores["micro"][k] for k in ("tp", "fp", "fn")} == {"tp": 1, "fp": 2, "fn": 1}
    assert {k: scores["macro"][k] for k in ("tp", "fp", "fn")} == {"tp": 2, "fp": 0, "fn": 0}  # IoU 5/7 and 4/6
    overall = scores["overall"]
    assert (overall["tp"], overall["fp"], overall["fn"], overall["videos"]) == (3, 2, 1, 4)
    assert (overall["precision"], overall["recall"]) == pytest.approx((0.6, 0.75))
    assert overall["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    videos = {v["video"]: v for v in results["videos"]}
    assert videos["15_0101"]["truth"] == [{"onset": 2, "offset": 8, "kind": "micro"},
                                          {"onset": 19, "offset": 24, "kind": "macro"}]
    assert videos["15_0101"]["predicted"][0] == {"onset": 3, "offset": 9, "kind": "micro"}
    assert (videos["16_0101"]["tp"], videos["16_0101"]["fp"], videos["16_0101"]["fn"]) == (0, 1, 1)
    assert all(v["other_kinds_left_out"] == 1 for v in videos.values())  # the blinks
    assert json.loads(json.dumps(results)) == results


def test_a_video_the_spotter_fails_on_counts_as_spotting_nothing(corpus):
    results = evaluate_spotting(corpus, shifted_truth(corpus, failing="15_0401"))
    assert results["protocol"] == "spotting, 3 of 4 videos"
    assert results["failed"] == {"casme_sq/15_0401": "15_0401: no face in frame 1"}
    macro = results["scores"]["macro"]
    assert (macro["tp"], macro["fn"]) == (1, 1)  # its macro-expression is missed
    table = spotting_table(results)
    assert "1 video(s) could not be spotted" in table and "15_0401: no face" in table


def test_the_table(corpus):
    table = spotting_table(evaluate_spotting(corpus, shifted_truth(corpus)))
    lines = table.splitlines()
    assert lines[0] == "### spotting, 4 of 4 videos (casme_sq; IoU >= 0.5)"
    assert "| micro | 1 | 2 | 1 | 0.333 | 0.500 | 0.400 |" in lines
    assert "| macro | 2 | 0 | 0 | 1.000 | 1.000 | 1.000 |" in lines
    assert lines[-1] == "| **overall** | 3 | 2 | 1 | 0.600 | 0.750 | 0.667 |"


def test_a_stricter_threshold(corpus):
    results = evaluate_spotting(corpus, shifted_truth(corpus), iou_threshold=0.7)
    assert results["scores"]["overall"]["tp"] == 2  # 6/8 and 5/7 stay; 4/6 does not


def test_a_spotter_returning_nonsense_is_a_bug_not_a_figure(corpus):
    with pytest.raises(ValueError, match=r"casme_sq/15_0101: the spotter returned 39\.\.40, past the last frame"):
        evaluate_spotting(corpus, lambda paths, fps: [Interval(len(paths) - 1, len(paths))])
    with pytest.raises(TypeError, match="not an Interval"):
        evaluate_spotting(corpus, lambda paths, fps: [(0, 3)])
