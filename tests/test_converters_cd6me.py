"""The CASME, MMEW and 4DME converters on fixture corpora written in the layouts MEB's loader reads."""

from __future__ import annotations

import hashlib
import json

import datasets
import pytest
from fixtures_corpora import (
    FixtureRow,
    build_casme,
    build_fourdme,
    build_mmew,
    casme_rows,
    fourdme_rows,
    frame_level,
    mmew_rows,
)

from microau_hf.data.converters import REPORT_NAME, convert_corpus
from microau_hf.data.schema import sample_features


def convert(name, root, out, **kwargs):
    report = convert_corpus(name, root, out, progress=False, **kwargs)
    return report, {row["sample_id"]: row for row in datasets.load_from_disk(str(out))}


def level(image) -> int:
    pixel = image.getpixel((image.width // 2, image.height // 2))
    return pixel[0] if isinstance(pixel, tuple) else pixel


def rules(notes) -> list[str]:
    return sorted(note.rule for note in notes)


def test_casme_first_sheet_blank_columns_apexf1_and_frames_by_their_last_number(tmp_path):
    root = build_casme(tmp_path / "CASME")
    report, rows = convert("casme", root, tmp_path / "out")

    assert (report.rows_read, report.rows_written, report.refused) == (3, 3, [])
    first = rows["01/EP01_5"]
    assert (first["dataset"], first["onset_frame"], first["apex_frame"], first["aus"], first["emotion"]) == (
        "casme", 10, 13, [4, 9], "disgust")
    assert abs(level(first["apex"]) - frame_level(13)) <= 3  # EP01_5-13.jpg, not EP01_5-1x by position
    estimated = rows["07/EP12_3"]
    assert (estimated["apex_frame"], estimated["apex_estimated"]) == (7, True)
    assert rules(report.repaired) == ["apex_estimated"]
    assert report.annotation_sha256 == hashlib.sha256((root / "casme.xlsx").read_bytes()).hexdigest()
    saved = json.loads((tmp_path / "out" / REPORT_NAME).read_text())
    assert saved["annotation_sha256"] == report.annotation_sha256 and saved["aus_labelled"] is None


def test_casme_is_not_confused_with_casme2_sheets_beside_it(tmp_path):
    root = build_casme(tmp_path / "CASME")
    (root / "CASME2-coding-20140508.xlsx").write_bytes((root / "casme.xlsx").read_bytes())
    report, _ = convert("casme", root, tmp_path / "out")
    assert report.annotation.endswith("casme.xlsx")


def test_casme_a_missing_frame_names_the_folders_numbering(tmp_path):
    bad = FixtureRow(2, "EP03_1", 30, 33, 36, "14", "others", missing_frames=(33,))
    root = build_casme(tmp_path / "CASME", casme_rows() + [bad])
    report, rows = convert("casme", root, tmp_path / "out")
    assert "02/EP03_1" not in rows and [n.rule for n in report.refused] == ["missing_frame"]
    assert "no frame 33; its frames are numbered 30..36" in report.refused[0].detail


def test_mmew_clips_under_emotion_folders(tmp_path):
    root = build_mmew(tmp_path / "MMEW")
    report, rows = convert("mmew", root, tmp_path / "out")
    assert dict(rows["01/S01_happiness_1"], onset=None, apex=None)["aus"] == [6, 12]
    assert sorted(rows) == ["01/S01_happiness_1", "02/S02_surprise_1", "03/S03_others_1"]
    assert rows["03/S03_others_1"]["emotion"] == "others"  # kept as coded (MEB relabels it "repression")
    assert abs(level(rows["02/S02_surprise_1"]["apex"]) - frame_level(3)) <= 3
    assert report.refused == [] and rows["01/S01_happiness_1"]["apex"].mode == "RGB"


def test_mmew_a_clip_under_two_emotion_folders_is_refused_naming_both(tmp_path):
    root = build_mmew(tmp_path / "MMEW")
    twin = root / "MMEW" / "Micro_Expression" / "surprise" / "S01_happiness_1"
    twin.mkdir(parents=True)
    report, rows = convert("mmew", root, tmp_path / "out")
    assert "01/S01_happiness_1" not in rows
    assert [n.rule for n in report.refused] == ["ambiguous_clip_folder"]
    assert "happiness" in report.refused[0].detail and "surprise" in report.refused[0].detail


def test_fourdme_float_frames_k_marked_aus_and_subject_case(tmp_path):
    root = build_fourdme(tmp_path / "4DME")
    report, rows = convert("4dme", root, tmp_path / "out")
    assert report.refused == []
    first = rows["S01/S01_M01"]
    assert (first["dataset"], first["onset_frame"], first["apex_frame"], first["offset_frame"]) == ("4dme", 100, 103, 106)
    assert first["aus"] == [12] and first["au_raw"] == "AU12+AU14(k)"  # (k): not counted, as MEB does
    assert [(n.sample, n.rule) for n in report.repaired] == [("S01/S01_M01", "au_unreadable")]
    assert "AU14(k)" in report.repaired[0].detail
    assert first["apex"].mode == "L" and abs(level(first["apex"]) - frame_level(103)) <= 3
    assert rows["s05/S05_M01"]["aus"] == [1, 2]  # sheet says s05, the folder S05: found without case


@pytest.mark.parametrize("name, build, column, message", [
    ("casme", build_casme, "OnsetF", "column 'OnsetF' (nor 'OnsetFrame') not found"),
    ("mmew", build_mmew, "Action Units", "column 'Action Units' not found"),
    ("4dme", build_fourdme, "fold_name", "column 'fold_name' not found"),
])
def test_a_missing_column_is_named(tmp_path, name, build, column, message):
    root = build(tmp_path / name, drop_column=column)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        convert_corpus(name, root, tmp_path / "out", progress=False)


def test_all_three_write_the_contract(tmp_path):
    for name, build, rows in (("casme", build_casme, casme_rows()), ("mmew", build_mmew, mmew_rows()),
                              ("4dme", build_fourdme, fourdme_rows())):
        convert_corpus(name, build(tmp_path / name), tmp_path / f"{name}_out", progress=False)
        dataset = datasets.load_from_disk(str(tmp_path / f"{name}_out"))
        assert dataset.features == sample_features() and len(dataset) == len(rows)
