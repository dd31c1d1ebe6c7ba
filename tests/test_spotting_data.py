"""The long-video converters (CAS(ME)^2, SAMM Long Videos) and the spotting dataset, on fixture corpora laid out
exactly as the corpora ship."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_corpora import build_casme2, write_frame
from fixtures_spotting import (
    CASME_SQ_NAMING2,
    CASME_SQ_VIDEOS,
    LongVideo,
    build_casme_sq,
    build_samm_lv,
    casme_sq_rows,
    samm_lv_rows,
)

from microau_hf.data.converters import CONVERTERS, REPORT_NAME, SPOTTING_CONVERTERS, convert_corpus
from microau_hf.data.spotting_schema import load_spotting_folder, spotting_features
from microau_hf.spotting.evaluation import truth_intervals
from microau_hf.spotting.metrics import Interval


def convert(name: str, root: Path, out: Path, **kwargs):
    report = convert_corpus(name, root, out, progress=False, **kwargs)
    return report, load_spotting_folder(out)


def by_video(dataset) -> dict[str, dict]:
    return {row["video"]: row for row in dataset}


def spans(row) -> list[tuple]:
    return [(i["onset"], i["apex"], i["offset"], i["kind"]) for i in row["intervals"]]


def rules(notes) -> list[tuple[int, str]]:
    return sorted((n.row, n.rule) for n in notes)


def one_line_error(call) -> str:
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    assert len(message.splitlines()) == 1, message
    return message


# ----------------------------------------------------------------------------------------------------------------
# CAS(ME)^2
# ----------------------------------------------------------------------------------------------------------------


def test_casme_sq_rows_are_long_videos_with_intervals_at_0_based_positions(tmp_path):
    report, dataset = convert("casme_sq", build_casme_sq(tmp_path / "CASME_sq"), tmp_path / "out")
    assert dataset.features == spotting_features()
    assert [row["video"] for row in dataset] == ["15_0101", "15_0401", "16_0101", "16_0401"]
    rows = by_video(dataset)
    first = rows["15_0101"]
    assert (first["corpus"], first["subject"], first["fps"], first["num_frames"]) == ("casme_sq", "s15", 30.0, 40)
    # img3..img9 with apex img5: positions 2..8, apex 4; the offset of 0 ends the macro-expression at its apex
    assert spans(first) == [(2, 4, 8, "micro"), (19, 24, 24, "macro")]
    assert (first["intervals"][0]["aus"], first["intervals"][0]["emotion"]) == ("4+7", "negative")
    assert Path(first["frame_paths"][first["intervals"][0]["onset"]]).name == "img3.jpg"
    assert truth_intervals(first) == [Interval(2, 8, "micro"), Interval(19, 24, "macro")]
    assert spans(rows["16_0101"]) == [(1, 3, 5, "micro")]  # participant 2 is subject folder 16
    assert rows["16_0401"]["intervals"] == [] and rows["16_0401"]["num_frames"] == 12  # a video without expressions
    (note,) = report.repaired
    assert (note.row, note.rule, note.sample) == (2, "offset_from_apex", "15_0101/disgust1_2")
    assert (report.rows_read, report.rows_written, report.videos, report.frames) == (4, 4, 4, 40 + 30 + 25 + 12)
    assert "4 videos (107 frames)" in report.summary()


def test_frames_are_in_time_order_by_number_and_absolute(tmp_path):
    _, dataset = convert("casme_sq", build_casme_sq(tmp_path / "CASME_sq"), tmp_path / "out")
    paths = by_video(dataset)["15_0101"]["frame_paths"]
    assert [Path(p).name for p in paths[:11]] == [f"img{n}.jpg" for n in range(1, 12)]  # img2 before img10
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in paths)


def test_casme_sq_copies_that_differ(tmp_path):
    """Codes stored as numbers (101), a header row some copies add, the other sheet name, the updated file."""
    naming2 = [[int(code), name] for code, name in CASME_SQ_NAMING2]
    root = build_casme_sq(tmp_path / "raw", naming2=naming2, code_sheet="CASMEcode_final",
                          header=["participant", "video", "onset", "apex", "offset", "AU", "emotion", "type", "self"],
                          name="CAS(ME)^2code_final(Updated).xlsx")
    build_casme_sq(root, casme_sq_rows()[:1])  # an older file beside it, with one row: not the one read
    report, dataset = convert("casme_sq", root, tmp_path / "out")
    assert report.annotation.endswith("code_final(Updated).xlsx")
    assert report.rows_read == 4 and spans(by_video(dataset)["15_0401"]) == [(9, 11, 13, "macro")]


def test_casme_sq_bad_rows_are_refused_with_their_row_numbers(tmp_path):
    rows = casme_sq_rows() + [
        [9, "disgust1_1", 2, 3, 4, "4", "negative", "micro-expression", ""],  # participant unknown
        [1, "fear1_1", 2, 3, 4, "4", "negative", "micro-expression", ""],  # name not in naming rule2
        [1, "disgust1_3", 12, 11, 10, "4", "negative", "micro-expression", ""],  # onset after offset
        [1, "disgust1_4", 50, 52, 55, "4", "negative", "micro-expression", ""],  # after the video's 40 frames
        [1, "happy1_1", 2, 3, 4, "12", "positive", "micro-expression", ""],  # 15_0502: no such video folder
        [1, "disgust1_5", 2, 3, 4, "4", "negative", "blink", ""],  # not an expression type
        [2, "anger1_1", 3, 5, 7, "4", "negative", "macro-expression", ""],  # frame 3 missing in 16_0401
        [1, "anger1_2", 2, "/", 6, "4", "negative", "micro-expression", ""],  # apex unknown: estimated
    ]
    videos = [v if v.code != "0401" or v.subject != 16 else LongVideo(16, "0401", 12, "angrywhole", missing=(3,))
              for v in CASME_SQ_VIDEOS]
    report, dataset = convert("casme_sq", build_casme_sq(tmp_path / "raw", rows, videos=videos), tmp_path / "out")
    assert rules(report.refused) == [(5, "bad_subject"), (6, "unknown_video_name"), (7, "bad_frame_number"),
                                     (8, "outside_video"), (9, "missing_video"), (10, "unknown_type"),
                                     (11, "missing_frame")]
    assert ("offset 10 is before onset 12" in next(n.detail for n in report.refused if n.row == 7))
    assert rules(report.repaired) == [(0, "frame_numbers_not_contiguous"), (2, "offset_from_apex"),
                                      (12, "apex_estimated")]
    assert spans(by_video(dataset)["15_0401"]) == [(1, 3, 5, "micro"), (9, 11, 13, "macro")]
    saved = json.loads((tmp_path / "out" / REPORT_NAME).read_text())
    assert (saved["rows_read"], saved["rows_written"], saved["rows_refused"], saved["videos"]) == (12, 5, 7, 4)


def test_a_frame_gap_is_reported_and_positions_follow_the_files(tmp_path):
    videos = [LongVideo(15, "0101", 40, missing=(1,))] + list(CASME_SQ_VIDEOS[1:])
    report, dataset = convert("casme_sq", build_casme_sq(tmp_path / "raw", videos=videos), tmp_path / "out")
    row = by_video(dataset)["15_0101"]
    assert row["num_frames"] == 39 and Path(row["frame_paths"][0]).name == "img2.jpg"
    assert spans(row)[0] == (1, 3, 7, "micro")  # img3..img9 are now positions 1..7
    assert not any(n.rule == "frame_numbers_not_contiguous" for n in report.repaired)  # 2..40 has no hole
    videos[0] = LongVideo(15, "0101", 40, missing=(30,))
    report, _ = convert("casme_sq", build_casme_sq(tmp_path / "raw2", videos=videos), tmp_path / "out2")
    assert [n.sample for n in report.repaired if n.rule == "frame_numbers_not_contiguous"] == ["15_0101"]


# ----------------------------------------------------------------------------------------------------------------
# SAMM Long Videos
# ----------------------------------------------------------------------------------------------------------------


def test_samm_lv_preamble_floats_unannotated_onsets_and_clamped_offsets(tmp_path):
    report, dataset = convert("samm_lv", build_samm_lv(tmp_path / "SAMMLV"), tmp_path / "out")
    assert dataset.features == spotting_features()
    rows = by_video(dataset)
    first = rows["006_1"]
    assert (first["corpus"], first["subject"], first["fps"], first["num_frames"]) == ("samm_lv", "006", 200.0, 30)
    # frames 5..12 (apex 7.0 stored as a float) and a macro whose onset 0 takes the apex 20
    assert spans(first) == [(4, 6, 11, "micro"), (19, 19, 27, "macro")]
    assert spans(rows["006_2"]) == [(2, 4, 7, "micro")]  # apex -1: the middle of 3..8
    five_digits = rows["007_3"]
    assert Path(five_digits["frame_paths"][9]).name == "007_3_00010.jpg"
    assert spans(five_digits) == [(3, 5, 14, "macro")]  # offset 99 clamped to the last of 15 frames
    # header on Excel row 10, so the data rows are 11..14
    assert rules(report.repaired) == [(12, "onset_from_apex"), (13, "apex_estimated"),
                                      (14, "offset_after_last_frame")]
    assert "-1" in next(n.detail for n in report.repaired if n.rule == "apex_estimated")


def test_samm_lv_bad_rows_are_refused(tmp_path):
    rows = samm_lv_rows() + [
        [6, "006_1_3", 2, 3, 4, "Blink", "45"],  # not a micro- or macro-movement
        [7, "006_1_4", 2, 3, 4, "Micro - 1/2", "12"],  # Subject 7 but the file is subject 006's
        [8, "008_1_1", 2, 3, 4, "Macro", "12"],  # no folder 008_1
        [6, "006_2_2", 9, 5, 4, "Macro", "12"],  # onset after offset
        [6, "006_2_3", "soon", 5, 7, "Macro", "12"],  # not a number
    ]
    report, dataset = convert("samm_lv", build_samm_lv(tmp_path / "raw", rows), tmp_path / "out")
    assert rules(report.refused) == [(15, "unknown_type"), (16, "bad_subject"), (17, "missing_video"),
                                     (18, "bad_frame_number"), (19, "bad_frame_number")]
    assert report.rows_written == 4 and len(dataset) == 3


# ----------------------------------------------------------------------------------------------------------------
# One-line errors, the loader, the registry, the command line
# ----------------------------------------------------------------------------------------------------------------


def test_bad_corpus_folders_are_one_line_errors_and_write_nothing(tmp_path):
    out = tmp_path / "out"
    assert "corpus folder not found" in one_line_error(lambda: convert_corpus("casme_sq", tmp_path / "nowhere", out))
    (tmp_path / "empty").mkdir()
    assert "no annotation file" in one_line_error(lambda: convert_corpus("samm_lv", tmp_path / "empty", out))
    root = build_casme_sq(tmp_path / "frames_gone")
    for path in sorted((root / "rawpic").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (root / "rawpic").rmdir()
    assert "folder 'rawpic'" in one_line_error(lambda: convert_corpus("casme_sq", root, out))
    lonely = build_casme_sq(tmp_path / "one_sheet", naming1=None, naming2=None)
    assert "no sheet 'namingrule1'" in one_line_error(lambda: convert_corpus("casme_sq", lonely, out))
    text = build_samm_lv(tmp_path / "text")
    (text / "SAMM_LongVideos_V3_Release.xlsx").write_text("Subject,Filename\n")
    assert "not a readable .xlsx workbook" in one_line_error(lambda: convert_corpus("samm_lv", text, out))
    broken = build_samm_lv(tmp_path / "broken", drop_column="Type")
    assert one_line_error(lambda: convert_corpus("samm_lv", broken, out)) == (
        "SAMM_LongVideos_V3_Release.xlsx: column 'Type' not found in sheet 'FACS_Movement_Only'")
    twice = build_casme_sq(tmp_path / "twice")
    write_frame(twice / "rawpic" / "s15" / "15_0101disgustingteeth" / "img01.jpg", 1, size=16)
    assert "two frames numbered 1" in one_line_error(lambda: convert_corpus("casme_sq", twice, out))
    for option in ("with_frames", "cropped"):
        one_line_error(lambda: convert_corpus("casme_sq", build_casme_sq(tmp_path / option), out, **{option: True}))
    assert not out.exists()


def test_rerunning_needs_overwrite_and_replaces_atomically(tmp_path):
    root = build_samm_lv(tmp_path / "raw")
    out = tmp_path / "out"
    convert("samm_lv", root, out)
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        convert_corpus("samm_lv", root, out, progress=False)
    build_samm_lv(root, samm_lv_rows()[:1])
    report, dataset = convert("samm_lv", root, out, overwrite=True)
    assert report.rows_written == 1 and sum(len(r["intervals"]) for r in dataset) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_the_loader_refuses_other_datasets_in_one_line(tmp_path):
    samples = tmp_path / "casme2"
    convert_corpus("casme2", build_casme2(tmp_path / "CASME2"), samples, progress=False)
    message = one_line_error(lambda: load_spotting_folder(samples))
    assert str(samples) in message and "not a long-video spotting dataset (micro-expression samples" in message
    assert "no such dataset folder" in one_line_error(lambda: load_spotting_folder(tmp_path / "missing"))


def test_the_command_line_offers_every_registered_corpus():
    from microau import cli

    assert set(cli.CORPORA) == set(CONVERTERS) | set(SPOTTING_CONVERTERS)
    assert not set(CONVERTERS) & set(SPOTTING_CONVERTERS)


def _convert_on_the_command_line(tmp_path, monkeypatch, capsys) -> list:
    from microau.cli import main
    from microau_hf import commands

    faces_checked: list = []
    monkeypatch.setattr(commands, "_check_faces", lambda dataset, folder: faces_checked.append(folder))
    root = build_casme_sq(tmp_path / "CASME_sq")
    assert main(["convert", "casme_sq", "--root", str(root), "--out", str(tmp_path / "out")]) == 0
    assert "4 videos (107 frames)" in capsys.readouterr().out
    assert len(load_spotting_folder(tmp_path / "out")) == 4
    return faces_checked


def test_convert_casme_sq_from_the_command_line(tmp_path, monkeypatch, capsys):
    _convert_on_the_command_line(tmp_path, monkeypatch, capsys)


def test_convert_does_not_run_the_sample_face_check_on_long_videos(tmp_path, monkeypatch, capsys):
    assert _convert_on_the_command_line(tmp_path, monkeypatch, capsys) == []
