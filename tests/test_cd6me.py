"""CD6ME without training: the corpora's checks (AU set, duplicates across corpora, coverage) and MEB-shaped scores.

The whole protocol, trained, runs through the console on the synthetic stand-in in test_cli_options.py
(`test_cd6me_on_the_synthetic_stand_in_end_to_end`).
"""

from __future__ import annotations

import json
import shutil

import datasets
import numpy as np
import pytest
from fixtures_corpora import build_casme2, build_fourdme, build_mmew

from microau_hf.data.converters import REPORT_NAME, convert_corpus
from microau_hf.train.cd6me import corpus_folders, load_corpora, protocol_name
from microau_hf.train.cd6me_report import MEB_PUBLISHED, _comparison, corpus_scores, meb_shape, overall_scores


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """CASME II, MMEW and 4DME fixture corpora, converted as a user converts them."""
    tmp = tmp_path_factory.mktemp("cd6me")
    folders = {}
    for name, build in (("casme2", build_casme2), ("mmew", build_mmew), ("4dme", build_fourdme)):
        folders[name] = tmp / f"{name}_out"
        convert_corpus(name, build(tmp / name), folders[name], progress=False)
    return tmp, folders


def _renamed_copy(source, out, name: str, aus_labelled=None):
    """A converted corpus saved again under another corpus name (and, optionally, another labelled AU set)."""
    rows = datasets.load_from_disk(str(source)).map(lambda row: {"dataset": name})
    rows.save_to_disk(str(out))
    report = json.loads((source / REPORT_NAME).read_text())
    (out / REPORT_NAME).write_text(json.dumps({**report, "corpus": name, "aus_labelled": aus_labelled}))
    return out


def test_bad_corpora_are_named_and_left_out_never_averaged_in(converted):
    tmp, folders = converted
    copied = _renamed_copy(folders["mmew"], tmp / "samm_copy", "samm")  # MMEW's samples again, as "samm"
    narrow = _renamed_copy(folders["casme2"], tmp / "casme3_narrow", "casme3", aus_labelled=[2, 4, 7, 12])
    data = load_corpora([folders["casme2"], folders["mmew"], folders["4dme"], copied, narrow])

    assert data.names == ["casme2", "mmew", "4dme"]  # samm: every sample a duplicate; casme3: another AU set
    kinds = {(p.kind, p.corpus) for p in data.problems}
    assert kinds == {("duplicate_samples", "samm"), ("au_set", "casme3")}
    duplicate = next(p for p in data.problems if p.kind == "duplicate_samples")
    assert "3 samples are already in another corpus" in duplicate.detail and "= mmew:" in duplicate.detail
    assert "not AU 1, 5, 6, 9, 10, 14, 15, 17" in next(p for p in data.problems if p.kind == "au_set").detail
    assert sorted(set(data.dataset["dataset"])) == ["4dme", "casme2", "mmew"] and len(data.dataset) == 9
    assert [c.annotation_sha256 for c in data.corpora] == [
        json.loads((folders[n] / REPORT_NAME).read_text())["annotation_sha256"] for n in data.names]


def test_a_corpus_given_twice_or_too_few_corpora_are_refused(converted):
    tmp, folders = converted
    with pytest.raises(ValueError, match="corpus 'mmew' is given twice"):
        load_corpora([folders["mmew"], folders["mmew"]])
    with pytest.raises(ValueError, match="needs at least 2 usable corpora, has 1"):
        load_corpora([folders["mmew"]])


def test_a_list_file_names_folders_relative_to_itself(converted, tmp_path):
    tmp, folders = converted
    listing = tmp / "corpora.txt"
    listing.write_text(f"# CD6ME corpora here\n{folders['casme2'].name}\n\n{folders['mmew'].name}  # MMEW\n")
    assert corpus_folders([listing, folders["4dme"]]) == [folders["casme2"], folders["mmew"], folders["4dme"]]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="names no folder"):
        corpus_folders([tmp_path / "empty.txt"])


def test_a_folder_of_two_corpora_is_refused(converted, tmp_path):
    tmp, folders = converted
    both = datasets.concatenate_datasets([datasets.load_from_disk(str(folders[n])) for n in ("casme2", "mmew")])
    both.save_to_disk(str(tmp_path / "both"))
    shutil.copy(folders["4dme"] / REPORT_NAME, tmp_path / "both" / REPORT_NAME)
    with pytest.raises(ValueError, match="holds one corpus"):
        load_corpora([tmp_path / "both", folders["4dme"]])


def test_an_au_without_positives_is_null_not_zero_and_left_out_of_the_mean():
    labels = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 0], [0, 0, 0]])
    predictions = np.array([[1, 1, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    scores = corpus_scores(labels, predictions, ["AU1", "AU2", "AU4"])
    assert scores["per_au"]["AU2"] == {"f1": None, "macro_f1": None, "precision": None, "recall": None, "support": 0}
    assert scores["per_au"]["AU1"]["f1"] == pytest.approx(2 / 3) and scores["per_au"]["AU4"]["f1"] == pytest.approx(2 / 3)
    assert scores["mean_f1"] == pytest.approx(2 / 3) and (scores["aus_defined"], scores["aus_undefined"]) == (2, ["AU2"])
    # macro F1 of AU1: positive 2/3, negative class (tn 2, fn 1, fp 0) 4/5 -> mean 0.733
    assert scores["per_au"]["AU1"]["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)

    held_out = {"a": scores, "b": corpus_scores(labels[:2], predictions[:2], ["AU1", "AU2", "AU4"])}
    overall = overall_scores(labels, predictions, ["AU1", "AU2", "AU4"], held_out)
    shape = meb_shape(held_out, overall, ["AU1", "AU2", "AU4"])
    assert shape["aus"] == ["AU1", "AU2", "AU4", "Average"] and shape["binary_f1"][1] is None
    assert shape["datasets"] == ["a", "b", "Average"] and shape["binary_f1"][-1] == pytest.approx(66.7)


def test_the_name_says_the_coverage_and_meb_figures_sit_beside_real_runs_only():
    assert protocol_name(["casme", "casme2", "samm", "mmew"]) == "CD6ME, 4 of 6 corpora"
    assert protocol_name(["casme", "casme2", "samm", "4dme", "mmew", "casme3"]) == "CD6ME, 6 of 6 corpora"
    assert protocol_name(["synthetic_lab200", "synthetic_dim90"]).startswith("CD6ME protocol on the synthetic stand-in")
    overall = {"mean_f1": 0.301, "mean_macro_f1": 0.602}
    real = {"synthetic": False, "protocol": "CD6ME, 4 of 6 corpora", "missing_corpora": ["4dme", "casme3"],
            "cd6me": {"overall": overall}}
    text = "\n".join(_comparison(real))
    assert "| this run (CD6ME, 4 of 6 corpora) | 30.1 | 60.2 | measured here |" in text
    assert all(f"| {name} | {b:.1f} | {m:.1f} | theirs |" in text for name, b, m in MEB_PUBLISHED)
    assert "Not the same test set: this run covers 4 of 6 corpora (without 4dme, casme3)" in text
    synthetic = "\n".join(_comparison({**real, "synthetic": True}))
    assert "SSSNet" not in synthetic and "not compared with MEB's" in synthetic
