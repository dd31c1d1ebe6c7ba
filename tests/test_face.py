"""The face pipeline on a real face (``skimage.data.astronaut()``, public domain): landmarks, alignment, AU regions,
the template fallback, and every kind of bad input."""

from __future__ import annotations

import ast
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from microau_hf.aus import CANONICAL_LANDMARKS, CATALOGUE, get_au
from microau_hf.face import (
    FacePreparer,
    ImageLoadError,
    NoFaceError,
    build_processor,
    load_image,
    load_pair,
    model_inputs,
    region_weights,
    template_region_boxes,
)
from microau_hf.face import landmarks as landmarks_module
from microau_hf.face.align import similarity_transform, warp

ALL_AUS = sorted(CATALOGUE)
SIZE, PATCH = 224, 16


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def landmarker():
    pytest.importorskip("mediapipe")
    backend = landmarks_module.MediaPipeLandmarker()
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def preparer(landmarker) -> FacePreparer:
    return FacePreparer(ALL_AUS, SIZE, PATCH, landmarker)


@pytest.fixture(scope="module")
def prepared(preparer, astronaut):
    return preparer.prepare(astronaut, astronaut, "astronaut")


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))


def _grey(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).convert("L"))


def _centre_y(boxes) -> float:
    return float(np.mean([(b[1] + b[3]) / 2 for b in boxes]))


def _boxes(prepared, au: int):
    return prepared.region_boxes[ALL_AUS.index(au)]


# ---------------------------------------------------------------------------------------------------------------
# Landmarks
# ---------------------------------------------------------------------------------------------------------------


def test_landmarks_lie_inside_the_face_box(landmarker, astronaut):
    face = landmarker.detect(astronaut, "astronaut")
    x0, y0, x1, y1 = face.box
    # The astronaut's face is in the upper middle of the photo.
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 200
    assert face.points.shape == (478, 2) and face.num_faces == 1
    # The detector's box is tight (brows to lips); allow a tenth of its size for the brow ends and the chin.
    margin_x, margin_y = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
    assert set(face.semantic) == set(CANONICAL_LANDMARKS)
    for name, (x, y) in face.semantic.items():
        assert x0 - margin_x <= x <= x1 + margin_x and y0 - margin_y <= y <= y1 + margin_y, name


def test_semantic_landmarks_are_anatomically_ordered(landmarker, astronaut):
    s = landmarker.detect(astronaut).semantic
    for side in ("left", "right"):
        assert s[f"brow_mid_{side}"][1] < s[f"eye_top_{side}"][1] < s[f"eye_bottom_{side}"][1]
        assert s[f"eye_bottom_{side}"][1] < s["nose_tip"][1] < s[f"mouth_corner_{side}"][1] < s["chin"][1]
    # "left" is the image's left side.
    for part in ("brow_outer", "eye_outer", "eye_center", "mouth_corner", "cheek", "nose_wing"):
        assert s[f"{part}_left"][0] < s[f"{part}_right"][0], part
    assert s["lip_top"][1] < s["lip_bottom"][1] < s["chin"][1]


def test_several_faces_take_the_largest(landmarker, astronaut):
    face = astronaut[40:220, 140:310]
    small, big = _resize(face, 200), _resize(face, 300)
    canvas = np.full((340, 560, 3), 90, np.uint8)
    canvas[20:220, 20:220] = small  # found first by the detector, so "first" would be wrong
    canvas[20:320, 240:540] = big
    found = landmarker.detect(canvas, "two faces")
    assert found.num_faces == 2
    assert found.box[0] > 240 and found.box[2] - found.box[0] > 150
    assert all(x > 240 for x, _ in found.semantic.values())


@pytest.mark.parametrize("kind", ["grey", "noise"])
def test_no_face_is_a_typed_error_naming_the_item(landmarker, preparer, kind):
    rng = np.random.default_rng(0)
    frame = np.full((480, 640, 3), 128, np.uint8) if kind == "grey" else rng.integers(0, 256, (480, 640, 3), np.uint8)
    with pytest.raises(NoFaceError, match=f"{kind} frame: no face found"):
        landmarker.detect(frame, f"{kind} frame")
    with pytest.raises(NoFaceError, match="sample-7 onset"):
        preparer.prepare(frame, frame, "sample-7")


def test_tight_crop_without_margin_still_finds_the_face(landmarker, astronaut):
    # Pre-cropped corpora (CASME II's cropped faces) fill the frame; the detector misses those, the padded mesh not.
    tight = _resize(astronaut[67:172, 173:278], 224)
    assert landmarker.detect(tight, "tight crop").num_faces == 1


def test_grayscale_frames_align(preparer, astronaut):
    grey = _grey(astronaut)  # SAMM is grayscale
    result = preparer.prepare(grey, grey, "grey")
    assert result.status == "aligned" and result.onset.shape == (SIZE, SIZE, 3)
    assert np.array_equal(result.onset[..., 0], result.onset[..., 2])


# ---------------------------------------------------------------------------------------------------------------
# Alignment
# ---------------------------------------------------------------------------------------------------------------


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    source = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = source @ (scale * rotation).T + shift
    fitted = similarity_transform(source, target)
    assert np.allclose(fitted, np.hstack([scale * rotation, shift[:, None]]))
    # A mirror image is fitted with a rotation, never a reflection.
    assert np.linalg.det(similarity_transform(source, source * [-1, 1])[:, :2]) > 0


def test_aligned_landmarks_land_near_the_canonical_face(prepared):
    for name in ("eye_center_left", "eye_center_right", "nose_tip"):
        x, y = prepared.landmarks[name]
        cx, cy = CANONICAL_LANDMARKS[name]
        assert abs(x / SIZE - cx) < 0.05 and abs(y / SIZE - cy) < 0.05, name


def test_onset_transform_aligns_both_frames_and_registration_removes_the_head_shift(preparer, astronaut):
    cv2 = pytest.importorskip("cv2")
    from microau_hf.face.registration import apply_gain, registered_transform

    shift = np.array([6, 4])  # the apex: the whole frame moved 6 px right, 4 px down (the head moved, not the face)
    apex = np.roll(astronaut, (shift[1], shift[0]), axis=(0, 1))
    result = preparer.prepare(astronaut, apex, "shifted")
    transform = result.extra["transform"]
    assert np.array_equal(result.onset, warp(astronaut, transform, SIZE))
    # The apex is its own frame resampled once: the onset's transform followed by the registration, which measured
    # the head's shift in crop pixels and took it out.
    moved = warp(apex, registered_transform(transform, result.registration), SIZE)
    assert np.array_equal(result.apex, apply_gain(moved, result.registration.gain))
    assert abs(result.registration.shift_px - np.linalg.norm(transform[:, :2] @ shift)) < 0.1
    gray = lambda im: _grey(im).astype(np.float32)  # noqa: E731
    bias = np.array(cv2.phaseCorrelate(gray(result.onset), gray(result.onset))[0])  # OpenCV's own offset
    left = np.array(cv2.phaseCorrelate(gray(result.onset), gray(result.apex))[0]) - bias
    kept = np.array(cv2.phaseCorrelate(gray(result.onset), gray(warp(apex, transform, SIZE)))[0]) - bias
    assert np.linalg.norm(left) < 0.15 and np.allclose(kept, transform[:, :2] @ shift, atol=0.3)


# ---------------------------------------------------------------------------------------------------------------
# AU regions
# ---------------------------------------------------------------------------------------------------------------


def test_regions_sit_where_their_muscles_act(prepared):
    nose_tip_y = prepared.landmarks["nose_tip"][1] / SIZE
    for brow_au in (1, 2, 4):
        for eye_au in (5, 7):
            assert _centre_y(_boxes(prepared, brow_au)) < _centre_y(_boxes(prepared, eye_au))
    for lip_corner_au in (12, 14, 15, 20):
        boxes = _boxes(prepared, lip_corner_au)
        assert len(boxes) == 2 and boxes[0][2] < boxes[1][0]  # one box per side, left box on the left
        assert _centre_y(boxes) > nose_tip_y
    # The chin: the lowest landmark, and AU17's region the lowest region, reaching down to it.
    chin_y = prepared.landmarks["chin"][1]
    assert chin_y == max(y for _, y in prepared.landmarks.values())
    assert max(ALL_AUS, key=lambda au: _centre_y(_boxes(prepared, au))) == 17
    assert _boxes(prepared, 17)[0][3] == pytest.approx(chin_y / SIZE)


def test_region_weights_cover_the_patch_grid(prepared):
    grid = SIZE // PATCH
    weights = prepared.region_weights
    assert weights.shape == (len(ALL_AUS), grid * grid)
    assert torch.all((weights >= 0) & (weights <= 1)) and torch.all(weights.sum(dim=1) > 0)
    rows = weights.reshape(len(ALL_AUS), grid, grid).sum(dim=2)
    first_row = lambda au: int(torch.nonzero(rows[ALL_AUS.index(au)])[0])  # noqa: E731
    assert first_row(1) < first_row(7) < first_row(12) < first_row(17)


def test_template_fallback_for_pre_aligned_crops(astronaut):
    crop = _resize(astronaut[40:220, 140:310], 150)
    result = FacePreparer(ALL_AUS, SIZE, PATCH, landmarker=None).prepare(crop, crop, "pre-aligned")
    assert result.status == "template" and result.onset.shape == (SIZE, SIZE, 3)
    assert result.region_boxes == template_region_boxes(ALL_AUS)
    assert result.region_boxes[0] == list(get_au(ALL_AUS[0]).template_boxes)
    assert torch.equal(result.region_weights, region_weights(template_region_boxes(ALL_AUS), SIZE // PATCH))


def test_face_package_imports_mediapipe_and_opencv_only_when_used():
    # Installs without the `face` extra have neither; no module of the package may import them at its top level.
    import microau_hf.face

    for path in Path(microau_hf.face.__file__).parent.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not {m.split(".")[0] for m in modules} & {"mediapipe", "cv2"}, path.name


def test_without_mediapipe_or_opencv_the_template_is_used(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes `import mediapipe` fail, as if not installed
    monkeypatch.setitem(sys.modules, "cv2", None)
    with caplog.at_level(logging.WARNING, logger="microau_hf.face.landmarks"):
        preparer = FacePreparer([1, 12], 64, 16)
    assert "fall back to the canonical template" in caplog.text
    frame = np.zeros((100, 80), np.uint8)
    result = preparer.prepare(frame, frame, "frame")
    assert (result.status, result.onset.shape, tuple(result.region_weights.shape)) == ("template", (64, 64, 3), (2, 16))
    assert preparer.uses_template and "no landmark backend" in result.message


def test_batch_reports_bad_items_and_keeps_the_good_ones(preparer, astronaut, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image at all")
    grey = np.full((480, 640, 3), 128, np.uint8)
    results = preparer.prepare_batch(
        [(astronaut, astronaut), (grey, grey), (str(corrupt), str(corrupt))], names=["good", "blank", "broken"]
    )
    assert [r.status for r in results] == ["aligned", "no_face", "bad_image"]
    assert "blank" in results[1].message and str(corrupt) in results[2].message
    vision = SimpleNamespace(image_size=SIZE, patch_size=PATCH)
    processor = build_processor(SimpleNamespace(vision_config=vision, aus=ALL_AUS))
    inputs = model_inputs(processor, results)
    assert inputs["onset_pixel_values"].shape == (1, 3, SIZE, SIZE)
    assert torch.allclose(inputs["au_region_weights"][0], results[0].region_weights)


# ---------------------------------------------------------------------------------------------------------------
# Loading: every bad or unusual input
# ---------------------------------------------------------------------------------------------------------------


def _save(image: Image.Image, path, **kwargs) -> str:
    image.save(path, **kwargs)
    return str(path)


def test_corrupt_and_truncated_files_are_refused_naming_the_file(astronaut, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(ImageLoadError, match=f"{corrupt}: cannot read the image"):
        load_image(corrupt)
    whole = _save(Image.fromarray(astronaut), tmp_path / "whole.jpg", quality=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(open(whole, "rb").read()[:20000])
    with pytest.raises(ImageLoadError, match=f"{truncated}: cannot read the image.*truncated"):
        load_image(truncated)
    with pytest.raises(ImageLoadError, match="missing.png: no such file"):
        load_image(tmp_path / "missing.png")


def test_colour_modes_become_rgb_uint8(astronaut, tmp_path):
    rgb = Image.fromarray(astronaut)
    grey = np.asarray(rgb.convert("L"))
    cmyk = load_image(_save(rgb.convert("CMYK"), tmp_path / "cmyk.jpg", quality=95))
    assert cmyk.shape == astronaut.shape and np.abs(cmyk.astype(int) - astronaut).mean() < 6
    indexed = rgb.quantize(256)
    assert np.array_equal(load_image(_save(indexed, tmp_path / "palette.png")), np.asarray(indexed.convert("RGB")))
    sixteen = Image.fromarray(grey.astype(np.uint16) * 257)  # full 16-bit range, as a 16-bit PNG holds it
    assert np.array_equal(load_image(_save(sixteen, tmp_path / "grey16.png"))[..., 1], grey)
    la = rgb.convert("LA")
    assert np.array_equal(load_image(la)[..., 0], grey)
    rgba = load_image(_save(rgb.convert("RGBA"), tmp_path / "rgba.png"))
    assert np.array_equal(rgba, astronaut)
    assert np.array_equal(load_image(grey), np.repeat(grey[..., None], 3, axis=2))  # SAMM's grayscale frames


def test_exif_rotation_is_applied(astronaut, tmp_path):
    portrait = astronaut[:, :400]
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = _save(Image.fromarray(portrait), tmp_path / "rotated.png", exif=exif)
    loaded = load_image(path)
    assert np.array_equal(loaded, np.rot90(portrait, k=-1))


def test_small_images_and_size_mismatch_are_refused(astronaut):
    with pytest.raises(ImageLoadError, match="tiny: image is 80x50 px, smaller than the 64 px minimum"):
        load_image(astronaut[:50, :80], "tiny")
    with pytest.raises(ImageLoadError, match="s01/ep02: onset is 512x512 px but apex is 256x256 px"):
        load_pair(astronaut, astronaut[::2, ::2], "s01/ep02")
