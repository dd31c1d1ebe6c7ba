"""The synthetic micro-expression corpus: real faces, FACS-informed micro-movements, the nuisance of a real recording.

It lets tests, demos and benchmarks run on any machine, since the real corpora cannot be shipped. Each subject is
one real, freely available face (:mod:`microau_hf.data.faces`). Landmarks are found once per subject, and the face is
aligned onto the canonical face. Each sample then:

1. draws an AU combination the way corpora show them: an EMFACS emotion prototype or a Davison objective-class
   combination (so AU1+2, AU4+7, AU6+12, AU15+17 co-occur, and lone AUs appear), or, in ``single_au_prob`` of the
   samples, one random AU from the set;
2. makes the apex by moving each AU's skin along its FACS direction (:mod:`~microau_hf.data.au_motion`) with a
   smooth Gaussian-RBF displacement field, each AU peaking at its own amplitude drawn from ``amplitude_px`` (crop
   pixels; at 128 px the interocular distance is ~38 px, where 1-2.5 px proved hard but learnable for a small ViT
   and under 1 px was at chance);
3. adds what a recording adds (:class:`Nuisance`): a small head pose shared by both frames, residual head motion and an
   illumination change between them, blur, and sensor noise.

Frames are rendered at twice the crop resolution and area-downsampled, so sub-pixel motion shows as a camera would
record it. Samples draw from ``numpy.random.default_rng([seed, index])``: same seed, same bytes, and sample ``i`` does
not depend on how many samples follow it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from datasets import Dataset, concatenate_datasets, load_from_disk

from ..atomic import atomic_directory
from ..aus import AU_SETS, EMOTION_PROTOTYPES, OBJECTIVE_CLASSES, Point, resolve_au_set
from .au_motion import AU_MOTIONS, LATERAL_AUS, displacement_grid
from .faces import FaceImage, load_faces
from .schema import sample_features

logger = logging.getLogger(__name__)

SUPERSAMPLE = 2  # render at 2x the crop resolution, then area-downsample like a sensor integrating light
MARGIN = 0.125  # context kept around the crop (fraction of its size), so head motion never pulls in black borders
CHUNK = 512  # samples turned into Arrow at a time
MAX_YAW = 0.2  # nose tip off the eyes' midline, in IOD: beyond this a frontal similarity alignment distorts the face


# ------------------------------------------------------------------------------------------------------------------
# Labels: which AUs a sample shows
# ------------------------------------------------------------------------------------------------------------------


def _combinations_within(table: dict, au_set: frozenset[int]) -> dict:
    """The table's combinations cut down to ``au_set`` (keys left with none are dropped).

    A micro-expression often shows only part of a prototype, so fear's 1+2+4+5+7+20+26 shown as 1+2+4+7 is a fair
    sample; the labels are then read back from the AUs actually shown (:func:`best_match`), never from the draw.
    """
    kept = {key: list(dict.fromkeys(c & au_set for c in combos if c & au_set)) for key, combos in table.items()}
    return {key: combos for key, combos in kept.items() if combos}


def best_match(aus: frozenset[int], table: dict):
    """The key whose largest combination is contained in ``aus`` (first key on ties), or ``None``."""
    best, size = None, 0
    for key, combos in table.items():
        for combo in combos:
            if combo <= aus and len(combo) > size:
                best, size = key, len(combo)
    return best


def draw_aus(rng: np.random.Generator, au_set: tuple[int, ...], single_au_prob: float) -> frozenset[int]:
    """An AU combination: an emotion prototype or objective-class combination (cut down to ``au_set``), or, in
    ``single_au_prob`` of the draws, one random AU of the set."""
    tables = (_combinations_within(table, frozenset(au_set)) for table in (EMOTION_PROTOTYPES, OBJECTIVE_CLASSES))
    pools = [pool for pool in tables if pool]
    if not pools or rng.random() < single_au_prob:
        return frozenset({int(rng.choice(au_set))})
    pool = pools[rng.integers(len(pools))]
    combos = pool[list(pool)[rng.integers(len(pool))]]
    return combos[rng.integers(len(combos))]


# ------------------------------------------------------------------------------------------------------------------
# Nuisance: what a real recording adds
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nuisance:
    """Ranges of the recording nuisances; every value is a half-width of a uniform draw unless it is a pair."""

    pose_deg: float = 2.0  # head pose left after alignment, shared by onset and apex
    pose_scale: float = 0.02
    pose_shift_px: float = 1.5
    motion_deg: float = 0.1  # residual head motion from onset to apex (alignment leaves ~0.1-0.3 px; more swamps AUs)
    motion_px: float = 0.15
    gain: float = 0.03  # illumination change from onset to apex: gain, offset (grey levels), left-right ramp
    offset: float = 3.0
    ramp: float = 0.02
    blur_sigma: tuple[float, float] = (0.0, 0.7)  # optics, crop pixels, shared
    noise_sigma: tuple[float, float] = (0.5, 2.0)  # sensor noise, grey levels, drawn per frame


#: No nuisance at all: the apex differs from the onset only where an AU moved the skin.
NO_NUISANCE = Nuisance(0, 0, 0, 0, 0, 0, 0, 0, (0, 0), (0, 0))


def _similarity(rng: np.random.Generator, deg: float, scale: float, shift: float, centre: float) -> np.ndarray:
    """A random similarity about the crop centre, as a (2, 3) matrix on crop coordinates."""
    angle = math.radians(rng.uniform(-deg, deg))
    factor = 1 + rng.uniform(-scale, scale)
    linear = factor * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shift_xy = rng.uniform(-shift, shift, size=2)
    return np.hstack([linear, (centre - linear @ [centre, centre] + shift_xy)[:, None]])


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


# ------------------------------------------------------------------------------------------------------------------
# Subjects: one aligned face each, prepared once
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubjectFace:
    """A subject's face aligned onto the canonical face, with context around the crop, rendered at SUPERSAMPLE x."""

    subject: str
    canvas: np.ndarray  # (S, S, 3) uint8; crop coordinate c maps to canvas coordinate (c + margin) * SUPERSAMPLE
    margin: float  # crop pixels of context on each side
    landmarks: dict[str, Point]  # semantic landmarks, crop pixels (continuous: pixel i spans [i, i + 1))
    size: int


# Landmarks are found once per subject image and crop size; a string records why a face was refused.
_SUBJECT_CACHE: dict[tuple[str, str, int], SubjectFace | str] = {}


def prepare_subjects(faces: Sequence[FaceImage], size: int) -> list[SubjectFace]:
    """Every usable face aligned as a subject (cached); unusable ones are skipped with a warning naming them."""
    from ..face.landmarks import MediaPipeLandmarker, NoFaceError

    ids = [face.subject for face in faces]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two faces share a subject id in {ids}: one person, one id")
    keys = [(face.subject, hashlib.sha1(face.image.tobytes()).hexdigest(), size) for face in faces]
    missing = [(key, face) for key, face in zip(keys, faces) if key not in _SUBJECT_CACHE]
    if missing:
        with MediaPipeLandmarker() as landmarker:
            for key, face in missing:
                try:
                    _SUBJECT_CACHE[key] = _align_subject(face, size, landmarker)
                except (NoFaceError, ValueError) as err:
                    _SUBJECT_CACHE[key] = str(err)
    subjects = []
    for key in keys:
        if isinstance(_SUBJECT_CACHE[key], str):
            logger.warning("skipping a face: %s", _SUBJECT_CACHE[key])
        else:
            subjects.append(_SUBJECT_CACHE[key])
    if not subjects:
        raise ValueError("no usable face for the synthetic corpus (see the warnings above)")
    return subjects


def _align_subject(face: FaceImage, size: int, landmarker) -> SubjectFace:
    from ..face.align import alignment_transform, apply_transform, warp

    found = landmarker.detect(face.image, name=f"subject {face.subject}")
    _check_frontal(face.subject, found.semantic)
    margin = math.ceil(MARGIN * size)
    to_crop = alignment_transform(found, size)
    to_canvas = SUPERSAMPLE * np.hstack([to_crop[:, :2], to_crop[:, 2:] + margin])
    canvas_px = SUPERSAMPLE * (size + 2 * margin)
    image, to_canvas = _shrink_for(face.image, to_canvas)
    image, to_canvas = _pad_to_cover(image, to_canvas, canvas_px)
    canvas = warp(image, to_canvas, canvas_px)
    names = list(found.semantic)
    mapped = apply_transform(to_crop, np.array([found.semantic[n] for n in names]))
    landmarks = {n: (float(x), float(y)) for n, (x, y) in zip(names, mapped)}
    return SubjectFace(face.subject, canvas, float(margin), landmarks, size)


def _check_frontal(subject: str, semantic: dict[str, Point]) -> None:
    (lx, ly), (rx, ry) = semantic["eye_center_left"], semantic["eye_center_right"]
    iod = math.hypot(rx - lx, ry - ly)
    off_midline = abs(semantic["nose_tip"][0] - (lx + rx) / 2) / iod
    if off_midline > MAX_YAW:
        raise ValueError(f"subject {subject}: head turned too far for a frontal crop (nose {off_midline:.2f} IOD off)")


def _shrink_for(image: np.ndarray, transform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area-downsample ``image`` first when ``transform`` shrinks it, so the bilinear warp does not alias."""
    scale = math.sqrt(abs(np.linalg.det(transform[:, :2])))
    if scale >= 1:
        return image, transform
    height, width = image.shape[:2]
    new_size = (max(round(width * scale), 1), max(round(height * scale), 1))
    small = cv2.resize(image, new_size, interpolation=cv2.INTER_AREA)
    fx, fy = small.shape[1] / width, small.shape[0] / height
    return small, transform @ np.diag([1 / fx, 1 / fy, 1.0])


def _pad_to_cover(image: np.ndarray, transform: np.ndarray, canvas_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Mirror-pad ``image`` so the canvas never reaches past it: black corners would move with the head pose and
    show in the apex-onset difference as motion no AU made."""
    corners = np.array([[0, 0], [canvas_px, 0], [0, canvas_px], [canvas_px, canvas_px]], np.float64)
    inverse = cv2.invertAffineTransform(transform)
    reach = corners @ inverse[:, :2].T + inverse[:, 2]
    height, width = image.shape[:2]
    pad = int(math.ceil(max(0.0, -reach.min(), (reach[:, 0] - width).max(), (reach[:, 1] - height).max()))) + 2
    pad = min(pad, min(height, width) - 1)  # reflection cannot reach further than the image itself
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    return padded, transform @ np.array([[1, 0, -pad], [0, 1, -pad], [0, 0, 1]], np.float64)


# ------------------------------------------------------------------------------------------------------------------
# Rendering one sample
# ------------------------------------------------------------------------------------------------------------------


def _render(subject: SubjectFace, pose: np.ndarray, field: np.ndarray | None) -> np.ndarray:
    """One frame, float RGB at crop size: ``pose`` maps crop to face coordinates, ``field`` (from
    :func:`displacement_grid`, face coordinates) moves the skin."""
    size, fine = subject.size, subject.size * SUPERSAMPLE
    centres = ((np.arange(fine) + 0.5) / SUPERSAMPLE).astype(np.float32)  # fine pixel centres, crop coordinates
    (a, b, c), (d, e, f) = pose.astype(np.float32)
    face_x = a * centres[None, :] + b * centres[:, None] + c
    face_y = d * centres[None, :] + e * centres[:, None] + f
    if field is not None:
        # The skin at face point q came from q - field(q); field pixel i is centred on i + 0.5.
        moved = cv2.remap(field, face_x - 0.5, face_y - 0.5, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        face_x, face_y = face_x - moved[..., 0], face_y - moved[..., 1]
    # Face coordinates to canvas pixels; OpenCV puts pixel centres on integers, hence the half pixel.
    canvas_x, canvas_y = ((v + subject.margin) * SUPERSAMPLE - 0.5 for v in (face_x, face_y))
    frame = cv2.remap(subject.canvas, canvas_x, canvas_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)


def _blur(frame: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(frame, (0, 0), sigma) if sigma > 0.05 else frame


def _relight(frame: np.ndarray, rng: np.random.Generator, nuisance: Nuisance) -> np.ndarray:
    """A global gain and offset plus a left-right ramp: light that changed a little between the two frames."""
    gain = rng.uniform(-nuisance.gain, nuisance.gain)
    offset = rng.uniform(-nuisance.offset, nuisance.offset)
    ramp = rng.uniform(-nuisance.ramp, nuisance.ramp) * np.linspace(-1, 1, frame.shape[1], dtype=np.float32)
    return frame * (1 + gain + ramp)[None, :, None] + offset


def _add_noise(frame: np.ndarray, rng: np.random.Generator, nuisance: Nuisance) -> np.ndarray:
    sigma = rng.uniform(*nuisance.noise_sigma)
    return frame + sigma * rng.standard_normal(frame.shape, dtype=np.float32)


def _to_png(frame: np.ndarray) -> dict:
    pixels = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return {"bytes": encoded.tobytes(), "path": None}


# ------------------------------------------------------------------------------------------------------------------
# Samples and the corpus
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSettings:
    """What every sample of one corpus shares."""

    aus: tuple[int, ...]
    amplitude_px: tuple[float, float]
    nuisance: Nuisance
    single_au_prob: float = 0.1
    unilateral_prob: float = 0.1


def make_sample(subject: SubjectFace, index: int, seed: int, settings: SampleSettings) -> dict:
    """Row ``index`` of the corpus (the :func:`~microau_hf.data.schema.sample_features` columns)."""
    rng = np.random.default_rng([seed, index])
    aus = sorted(draw_aus(rng, settings.aus, settings.single_au_prob))
    side = ("L", "R")[rng.integers(2)] if rng.random() < settings.unilateral_prob else ""
    laterality = [side if au in LATERAL_AUS else "" for au in aus]
    low, high = settings.amplitude_px
    base = rng.uniform(low, high)  # one intensity per sample; its AUs vary a little around it
    moves = [(au, lat, float(np.clip(base * rng.uniform(0.8, 1.2), low, high))) for au, lat in zip(aus, laterality)]
    apex_frame = int(rng.integers(10, 40))  # frame numbers as at 200 fps: onset to offset within 0.5 s
    offset_frame = apex_frame + int(rng.integers(10, 50))

    nuisance, centre = settings.nuisance, subject.size / 2
    pose = _similarity(rng, nuisance.pose_deg, nuisance.pose_scale, nuisance.pose_shift_px, centre)
    motion = _similarity(rng, nuisance.motion_deg, 0.0, nuisance.motion_px, centre)
    blur = rng.uniform(*nuisance.blur_sigma)
    field = displacement_grid(subject.landmarks, moves, subject.size)
    onset = _blur(_render(subject, pose, None), blur)
    apex = _relight(_blur(_render(subject, _compose(pose, motion), field), blur), rng, nuisance)
    onset, apex = (_add_noise(frame, rng, nuisance) for frame in (onset, apex))

    shown = frozenset(aus)
    return {
        "dataset": "synthetic",
        "subject": subject.subject,
        "sample_id": f"{subject.subject}/{index:06d}",
        "onset_frame": 0,
        "apex_frame": apex_frame,
        "offset_frame": offset_frame,
        "apex_estimated": False,
        "onset": _to_png(onset),
        "apex": _to_png(apex),
        "aus": aus,
        "au_raw": "+".join(f"{lat}{au}" for au, lat in zip(aus, laterality)),
        "laterality": laterality,
        "intensity": [""] * len(aus),  # amplitudes are micro by construction; no FACS intensity letter is claimed
        "emotion": best_match(shown, EMOTION_PROTOTYPES) or "others",
        "objective_class": best_match(shown, OBJECTIVE_CLASSES),
    }


def make_synthetic_corpus(
    out_dir: str | os.PathLike | None = None,
    num_samples: int = 256,
    seed: int = 0,
    amplitude_px: tuple[float, float] = (1.0, 2.5),
    image_size: int = 128,
    aus: str | Sequence[int] = AU_SETS["casme2"],
    faces: Sequence[FaceImage] | None = None,
    nuisance: Nuisance = Nuisance(),
    single_au_prob: float = 0.1,
    unilateral_prob: float = 0.1,
    overwrite: bool = False,
) -> Dataset:
    """The synthetic corpus as a ``datasets.Dataset``; saved atomically to ``out_dir`` when given.

    ``amplitude_px``: the range each AU's peak displacement is drawn from, in pixels of the ``image_size`` crop (whose
    interocular distance is 0.3 * ``image_size``). ``aus``: a named set of :data:`~microau_hf.aus.AU_SETS` or AU
    numbers; only these AUs are shown and labelled. ``faces``: defaults to
    :func:`~microau_hf.data.faces.load_faces` (every face available here), one subject each; subjects take turns, so
    each has ``num_samples / len(faces)`` samples, give or take one. ``nuisance``: :data:`NO_NUISANCE` for a clean
    apex that differs from the onset only where the AUs moved. ``single_au_prob``: share of samples with one random
    AU; ``unilateral_prob``: share of samples whose sided AUs show on one side only. ``overwrite``: replace an
    existing ``out_dir`` (else :class:`FileExistsError`). The whole corpus is held in memory (~60 kB a sample at
    128 px), as is usual for a test or demo corpus.
    """
    settings = _settings(num_samples, amplitude_px, image_size, aus, nuisance, single_au_prob, unilateral_prob)
    subjects = prepare_subjects(load_faces() if faces is None else faces, image_size)
    features = sample_features()
    chunks = []
    for start in range(0, num_samples, CHUNK):  # chunks, so the PNG bytes are held once (in Arrow), not twice
        indices = range(start, min(start + CHUNK, num_samples))
        rows = [make_sample(subjects[i % len(subjects)], i, seed, settings) for i in indices]
        chunks.append(Dataset.from_dict({name: [row[name] for row in rows] for name in features}, features=features))
    dataset = concatenate_datasets(chunks) if len(chunks) > 1 else chunks[0]
    if out_dir is None:
        return dataset
    save_atomically(dataset, out_dir, overwrite)
    return load_from_disk(str(out_dir))


def _settings(num_samples, amplitude_px, image_size, aus, nuisance, single_au_prob, unilateral_prob) -> SampleSettings:
    low, high = (float(v) for v in amplitude_px)
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    if not 0 <= low <= high:
        raise ValueError(f"amplitude_px must be (low, high) with 0 <= low <= high, got {amplitude_px}")
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 px, got {image_size}")
    for name, p in (("single_au_prob", single_au_prob), ("unilateral_prob", unilateral_prob)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must lie in [0, 1], got {p}")
    au_set = resolve_au_set(aus)
    missing = [au for au in au_set if au not in AU_MOTIONS]
    if missing:
        raise ValueError(f"no synthetic motion for AU {missing}; AUs with one: {sorted(AU_MOTIONS)}")
    return SampleSettings(au_set, (low, high), nuisance, single_au_prob, unilateral_prob)


def save_atomically(dataset: Dataset, out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """``dataset.save_to_disk`` into a hidden folder beside ``out_dir``, then renamed into place.

    A reader never sees a half-written corpus: ``out_dir`` is either absent, the old corpus, or the new one whole.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass overwrite=True to replace it")
    with atomic_directory(out) as staged:
        dataset.save_to_disk(str(staged))
    return out


__all__ = [
    "NO_NUISANCE",
    "Nuisance",
    "SampleSettings",
    "SubjectFace",
    "best_match",
    "draw_aus",
    "make_sample",
    "make_synthetic_corpus",
    "prepare_subjects",
    "save_atomically",
]
