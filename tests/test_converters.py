"""The corpus converters on fixture corpora laid out exactly like CASME II, SAMM and CAS(ME)^3."""

from __future__ import annotations

import json

import datasets
import pytest
from fixtures_corpora import (
    FixtureRow,
    build_casme2,
    build_casme3,
    build_samm,
    casme2_rows,
    casme3_rows,
    frame_level,
    samm_rows,
)

from microau_hf.data.converters import CONVERTERS, REPORT_NAME, common, convert_corpus
from microau_hf.data.schema import sample_features


def convert(name, root, out, **kwargs):
    report = convert_corpus(name, root, out, progress=False, **kwargs)
    return report, datasets.load_from_disk(str(out))


def by_id(dataset) -> dict[str, dict]:
    return {row["sample_id"]: row for row in dataset}


def notes(report, rule: str, *, refused: bool = False) -> list:
    return [n for n in (report.refused if refused else report.repaired) if n.rule == rule]


def level(image) -> int:
    pixel = image.getpixel((image.width // 2, image.height // 2))
    return pixel[0] if isinstance(pixel, tuple) else pixel


def assert_close(actual: int, expected: int) -> None:
    assert abs(actual - expected) <= 3, (actual, expected)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ----------------------------------------------------------------------------------------------------------------
# CASME II
# ----------------------------------------------------------------------------------------------------------------

CASME2_BAD = [
    FixtureRow("05", "EP19_05f", 30, "/", 36, "4+soft focus", "Others"),  # apex unknown, AU text unreadable
    FixtureRow(9, "EP02_04f", 10, 12, 14, 4.0, "fear", 2.0),  # numbers where text was expected
    FixtureRow("11", "EP13_05", 50, 52, 54, "R12 or R14", "happiness", missing_frames=(52,)),  # apex file missing
    FixtureRow("12", "EP01_02", 60, 61, 65, "12", "happiness", "XII"),  # objective class unreadable
]


def test_casme2_rows_follow_the_contract(tmp_path):
    root = build_casme2(tmp_path / "CASME2", casme2_rows() + CASME2_BAD)
    report, dataset = convert("casme2", root, tmp_path / "out")

    assert dataset.features == sample_features()
    assert (report.rows_read, report.rows_written) == (7, 6)
    rows = by_id(dataset)
    first = rows["01/EP02_01f"]
    assert (first["dataset"], first["subject"], first["onset_frame"], first["apex_frame"], first["offset_frame"]) == (
        "casme2", "01", 46, 49, 52)
    assert (first["aus"], first["emotion"], first["objective_class"], first["apex_estimated"]) == (
        [12], "happiness", 1, False)
    assert first["apex"].mode == "RGB" and first["apex"].size == (64, 64)
    assert_close(level(first["onset"]), frame_level(46))
    assert_close(level(first["apex"]), frame_level(49))

    lateral = rows["02/EP03_02"]  # subject written as the number 2
    assert (lateral["aus"], lateral["laterality"], lateral["intensity"]) == ([12, 14], ["L", "R"], ["", "A"])
    assert (lateral["emotion"], lateral["objective_class"]) == ("repression", 7)
    assert rows["04/EP12_01f"]["objective_class"] is None
    numeric = rows["09/EP02_04f"]
    assert (numeric["aus"], numeric["au_raw"], numeric["objective_class"]) == ([4], "4", 2)


def test_casme2_bad_rows_are_repaired_or_refused_and_reported(tmp_path):
    root = build_casme2(tmp_path / "CASME2", casme2_rows() + CASME2_BAD)
    report, dataset = convert("casme2", root, tmp_path / "out")
    rows = by_id(dataset)

    estimated = rows["05/EP19_05f"]
    assert (estimated["apex_frame"], estimated["apex_estimated"]) == (33, True)
    assert_close(level(estimated["apex"]), frame_level(33))
    assert [n.sample for n in notes(report, "apex_estimated")] == ["05/EP19_05f"]

    assert (estimated["aus"], estimated["au_raw"], estimated["emotion"]) == ([4], "4+soft focus", "others")
    (unreadable,) = notes(report, "au_unreadable")
    assert "soft focus" in unreadable.detail and unreadable.row == 5  # the row number Excel shows (header on row 1)

    (missing,) = notes(report, "missing_frame", refused=True)
    assert missing.sample == "11/EP13_05" and "img52.jpg" in missing.detail
    assert "11/EP13_05" not in rows

    assert rows["12/EP01_02"]["objective_class"] is None
    assert notes(report, "objective_class_unreadable")

    saved = json.loads((tmp_path / "out" / REPORT_NAME).read_text())
    assert (saved["rows_read"], saved["rows_written"], saved["rows_refused"]) == (7, 6, 1)
    assert saved["repairs_by_rule"]["apex_estimated"] == 1
    assert saved["refusals_by_reason"] == {"missing_frame": 1}


def test_casme2_cropped_frames_and_whole_span(tmp_path):
    root = build_casme2(tmp_path / "CASME2", cropped=True, objective_column=False)
    report, dataset = convert("casme2", root, tmp_path / "out", cropped=True, with_frames=True)
    assert dataset.features == sample_features(with_frames=True)
    row = by_id(dataset)["01/EP02_01f"]
    assert len(row["frames"]) == 52 - 46 + 1
    assert [level(f) for f in row["frames"][:2]] == pytest.approx([frame_level(46), frame_level(47)], abs=3)
    assert row["objective_class"] is None and report.rows_written == 3


def test_casme2_takes_the_latest_coding_file(tmp_path):
    root = build_casme2(tmp_path / "CASME2", drop_column="ApexFrame")  # an old, broken file...
    build_casme2(root, coding_name="CASME2-coding-20190701.xlsx")  # ...and a later, good one
    report, _ = convert("casme2", root, tmp_path / "out")
    assert report.annotation.endswith("CASME2-coding-20190701.xlsx") and report.rows_written == 3


@pytest.mark.parametrize(
    ("name", "build", "column", "message"),
    [
        ("casme2", build_casme2, "ApexFrame",
         "CASME2-coding-20140508.xlsx: column 'ApexFrame' not found in sheet 'Sheet1'"),
        ("samm", build_samm, "Action Units",
         "SAMM_Micro_FACS_Codes_v2.xlsx: column 'Action Units' not found in sheet 'MICRO_ONLY'"),
        ("casme3", build_casme3, "Onset",
         "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx: column 'Onset' not found in sheet 'label'"),
    ],
)
def test_a_missing_column_is_named_with_its_file(tmp_path, name, build, column, message):
    root = build(tmp_path / name, drop_column=column)
    with pytest.raises(ValueError) as error:
        convert_corpus(name, root, tmp_path / "out", progress=False)
    assert str(error.value) == message
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------------------------
# SAMM and CAS(ME)^3
# ----------------------------------------------------------------------------------------------------------------


def test_samm_preamble_grayscale_and_unknown_apex(tmp_path):
    rows = samm_rows() + [FixtureRow(6, "006_5_1", 1000, -1, 1004, "R14A+ 43", "Other", "V")]
    report, dataset = convert("samm", build_samm(tmp_path / "samm", rows), tmp_path / "out")
    assert dataset.features == sample_features()
    rows = by_id(dataset)
    first = rows["006/006_1_2"]
    assert (first["subject"], first["aus"], first["emotion"], first["objective_class"]) == ("006", [4, 7], "anger", 3)
    assert first["apex"].mode == "L"
    assert_close(level(first["apex"]), frame_level(5564))
    asym = rows["011/011_2_3"]
    assert (asym["aus"], asym["laterality"], asym["intensity"]) == ([1, 2], ["A", "A"], ["B", "C"])
    unknown = rows["006/006_5_1"]
    assert (unknown["apex_frame"], unknown["apex_estimated"], unknown["aus"]) == (1002, True, [14, 43])
    assert (unknown["emotion"], unknown["objective_class"]) == ("others", 5)
    assert [n.row for n in notes(report, "apex_estimated")] == [18]  # 13 preamble rows, header, 4th data row


def test_casme3_duplicates_subject_spelling_and_roman_classes(tmp_path):
    rows = casme3_rows() + [
        FixtureRow("spNO.1", "a", 500, 502, 504, "L12", "others", "VI"),
        FixtureRow("spNO.3", "c", 10, 11, 12, "4", missing_frames=(10, 11, 12)),  # no such subject folder
    ]
    root = build_casme3(tmp_path / "casme3", rows, subject_folder="spNo.{}")
    report, dataset = convert("casme3", root, tmp_path / "out")
    rows = by_id(dataset)
    assert sorted(rows) == ["spNO.1/a", "spNO.1/a#2", "spNO.1/a#3", "spNO.2/b"]
    assert [n.sample for n in notes(report, "duplicate_filename")] == ["spNO.1/a#2", "spNO.1/a#3"]
    assert [rows[k]["objective_class"] for k in sorted(rows)] == [1, 4, 6, 2]
    assert rows["spNO.1/a"]["emotion"] == "happiness"
    assert_close(level(rows["spNO.1/a#2"]["apex"]), frame_level(301))
    (refused,) = report.refused
    assert (refused.rule, refused.sample) == ("missing_frame", "spNO.3/c")


def test_corpora_without_crops_refuse_cropped(tmp_path):
    root = build_samm(tmp_path / "samm")
    with pytest.raises(ValueError, match="no aligned crops"):
        convert_corpus("samm", root, tmp_path / "out", cropped=True, progress=False)


def test_unknown_corpus_name():
    assert sorted(CONVERTERS) == ["4dme", "casme", "casme2", "casme3", "mmew", "samm"]  # MEB's CD6ME six
    with pytest.raises(ValueError, match="unknown corpus 'smic'"):
        convert_corpus("smic", ".", "out")


# ----------------------------------------------------------------------------------------------------------------
# Writing: atomic, idempotent, careful with what it replaces
# ----------------------------------------------------------------------------------------------------------------


def test_a_run_failing_midway_leaves_nothing(tmp_path, monkeypatch):
    root = build_casme2(tmp_path / "CASME2")
    read_image, calls = common.read_image, []

    def failing(path, base):
        calls.append(path)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return read_image(path, base)

    monkeypatch.setattr(common, "read_image", failing)
    out = tmp_path / "out"
    with pytest.raises(Exception, match="disk on fire|generating the dataset"):
        convert_corpus("casme2", root, out, progress=False)
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_a_failed_rerun_keeps_the_previous_output(tmp_path, monkeypatch):
    root = build_casme2(tmp_path / "CASME2")
    out = tmp_path / "out"
    convert("casme2", root, out)
    monkeypatch.setattr(common, "read_image", lambda path, base: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(Exception):
        convert_corpus("casme2", root, out, progress=False, overwrite=True)
    assert len(datasets.load_from_disk(str(out))) == 3
    assert leftovers(tmp_path) == []


def test_rerunning_replaces_the_output(tmp_path):
    root = build_casme2(tmp_path / "CASME2")
    out = tmp_path / "out"
    _, first = convert("casme2", root, out)
    build_casme2(root, casme2_rows()[:2])  # the sheet now has two rows
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        convert("casme2", root, out)
    report, second = convert("casme2", root, out, overwrite=True)
    assert (len(first), len(second), report.rows_written) == (3, 2, 2)
    assert sorted(second["sample_id"]) == ["01/EP02_01f", "02/EP03_02"]
    assert leftovers(tmp_path) == []


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(tmp_path):
    root = build_casme2(tmp_path / "CASME2")
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("...")
    with pytest.raises(FileExistsError, match="did not write"):
        convert_corpus("casme2", root, precious, progress=False, overwrite=True)
    assert (precious / "chapter1.tex").exists()


def test_never_replaces_a_dataset_folder_that_also_holds_the_users_files(tmp_path):
    root = build_casme2(tmp_path / "CASME2")
    out = tmp_path / "out"
    convert("casme2", root, out)
    (out / "my_notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=r"did not write \(my_notes.txt\)"):
            convert_corpus("casme2", root, out, progress=False, overwrite=overwrite)
    assert (out / "my_notes.txt").read_text() == "keep me" and len(datasets.load_from_disk(str(out))) == 3


def test_corrupt_frames_are_refused_and_an_all_refused_run_still_writes(tmp_path):
    root = build_casme2(tmp_path / "CASME2", casme2_rows()[:1])
    (root / "CASME2_RAW_selected" / "sub01" / "EP02_01f" / "img49.jpg").write_bytes(b"not a jpeg")
    report, dataset = convert("casme2", root, tmp_path / "out")
    assert len(dataset) == 0 and dataset.features == sample_features()
    assert [n.rule for n in report.refused] == ["unreadable_image"]


@pytest.mark.parametrize("cell", ["foo", "12X", "??"])
def test_a_wholly_unreadable_au_cell_refuses_its_row(tmp_path, cell):
    rows = casme2_rows() + [FixtureRow("05", "EP19_01", 10, 12, 14, cell, "others")]
    report, dataset = convert("casme2", build_casme2(tmp_path / "CASME2", rows), tmp_path / "out")
    assert "05/EP19_01" not in by_id(dataset)  # never an all-negative training row
    (refused,) = notes(report, "au_unreadable", refused=True)
    assert refused.sample == "05/EP19_01" and cell in refused.detail and "no AU could be read" in refused.detail


def test_an_au_code_outside_the_catalogue_is_named_in_the_report(tmp_path):
    rows = casme2_rows() + [FixtureRow("05", "EP19_01", 10, 12, 14, "AU99+4", "others")]
    report, dataset = convert("casme2", build_casme2(tmp_path / "CASME2", rows), tmp_path / "out")
    assert by_id(dataset)["05/EP19_01"]["aus"] == [4, 99]
    (note,) = notes(report, "au_not_in_catalogue")
    assert note.sample == "05/EP19_01" and "AU 99 not in the AU catalogue" in note.detail


def test_a_text_file_named_xlsx_is_one_line(tmp_path, capsys):
    from microau.cli import main

    root = build_casme2(tmp_path / "CASME2")
    sheet = root / "CASME2-coding-20140508.xlsx"
    sheet.write_text("subject,filename\n01,EP02_01f\n")
    with pytest.raises(ValueError, match="not a readable .xlsx workbook"):
        convert_corpus("casme2", root, tmp_path / "out", progress=False)
    assert main(["convert", "casme2", "--root", str(root), "--out", str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(sheet) in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()
