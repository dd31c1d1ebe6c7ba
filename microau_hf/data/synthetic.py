"""The synthetic micro-expression corpus: real faces, FACS-informed micro-movements, recorded as a camera would.

It lets tests, demos and benchmarks run on any machine, since the real corpora cannot be shipped. Each subject is
one real, freely available face (:mod:`microau_hf.data.faces`). Each sample then:

1. draws the emotion first, then the AUs from a noisy emotion-to-AU distribution (:func:`draw_expression`): one of
   the emotion's EMFACS prototypes (cut down to the AU set), each of its AUs missing with ``au_miss_prob``, each other
   AU of the set added with ``au_extra_prob``; in ``others_prob`` of the expressive samples the emotion is
   ``"others"``, as CASME II labels faces that show no clear emotion, with a Davison objective-class combination or a
   lone AU. So AU1+2, AU4+7, AU15+17 co-occur, lone AUs appear, and the label-free emotion scorer, which knows only
   the prototypes, must infer the emotion from AUs that do not always match it. In ``neutral_prob`` of the samples
   no AU moves at all (emotion ``"none"``; 30 % of those are still pairs, whose apex is the onset frame itself);
2. frames the face in a camera picture of its own (:mod:`~microau_hf.data.render`): frame size, position, scale
   (interocular distance 30-90 px by default) and in-plane rotation drawn per sample;
3. makes the apex by moving each AU's skin along its FACS direction (:mod:`~microau_hf.data.au_motion`), each AU
   peaking at its own amplitude drawn from ``amplitude_px`` (pixels at an interocular distance of 38.4 px, that of
   a 128 px aligned crop: 1-2.5 px proved hard but learnable for a small ViT, under 1 px was at chance); the
   field's kernel width, shape, direction and anchor points deviate from the catalogue per sample;
4. adds what a recording adds (:class:`Nuisance`): residual head motion, blur, sensor noise and a light change
   between the frames, and, as distractors that carry no AU label, blinks, larger head motion and light flicker;
5. saves both frames as JPEG at a per-sample quality.

The corpus holds the whole frames, as a converted corpus does: the face pipeline finds, aligns and crops the face,
for training exactly as for a user's frames. Samples draw from ``numpy.random.default_rng([seed, index])``: same
seed, same bytes, and sample ``i`` does not depend on how many samples follow it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from datasets import Dataset, concatenate_datasets, load_from_disk
from tqdm.auto import tqdm

from ..atomic import atomic_directory, check_replaceable
from ..aus import AU_SETS, EMOTION_PROTOTYPES, NO_EMOTION, OBJECTIVE_CLASSES, resolve_au_set
from ..face.regions import interocular
from .au_motion import AU_MOTIONS, KERNELS, LATERAL_AUS, Move, displacement_grid
from .faces import FaceImage, load_faces
from .render import (REFERENCE_IOD, Rendering, SubjectFace, draw_camera, prepare_subjects, render_frame, similarity,
                     to_jpeg)
from .schema import sample_features

logger = logging.getLogger(__name__)

CHUNK = 512  # samples turned into Arrow at a time


# ------------------------------------------------------------------------------------------------------------------
# Labels: which AUs a sample shows
# ------------------------------------------------------------------------------------------------------------------


def _combinations_within(table: dict, au_set: frozenset[int]) -> dict:
    """The table's combinations cut down to ``au_set`` (keys left with none are dropped).

    A micro-expression often shows only part of a prototype, so fear's 1+2+4+5+7+20+26 shown as 1+2+4+7 is a fair
    sample.
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


@dataclass(frozen=True)
class ExpressionNoise:
    """How loosely a sample's AUs follow its emotion."""

    others_prob: float = 0.25  # share of the expressive samples labelled "others" (CASME II's largest class)
    au_miss_prob: float = 0.25  # each AU of the drawn prototype is not shown (at least one always is)
    au_extra_prob: float = 0.05  # each other AU of the set is shown too


OTHERS = "others"


def draw_expression(rng: np.random.Generator, au_set: tuple[int, ...],
                    noise: ExpressionNoise = ExpressionNoise()) -> tuple[str, frozenset[int]]:
    """An emotion, then the AUs that show it: one of its prototypes (cut down to ``au_set``) with AUs missed and
    added at the ``noise`` rates; or ``"others"`` with an objective-class combination or, half the time, one AU."""
    emotions = _combinations_within(EMOTION_PROTOTYPES, frozenset(au_set))
    if not emotions or rng.random() < noise.others_prob:
        classes = _combinations_within(OBJECTIVE_CLASSES, frozenset(au_set))
        if not classes or rng.random() < 0.5:
            return OTHERS, frozenset({int(rng.choice(au_set))})
        combos = classes[list(classes)[rng.integers(len(classes))]]
        return OTHERS, combos[rng.integers(len(combos))]
    emotion = list(emotions)[rng.integers(len(emotions))]
    prototype = emotions[emotion][rng.integers(len(emotions[emotion]))]
    shown = {au for au in sorted(prototype) if rng.random() >= noise.au_miss_prob}
    if not shown:
        shown = {int(rng.choice(sorted(prototype)))}
    extras = {au for au in au_set if au not in prototype and rng.random() < noise.au_extra_prob}
    return emotion, frozenset(shown | extras)


# ------------------------------------------------------------------------------------------------------------------
# Nuisance: what a real recording adds
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nuisance:
    """Ranges of the recording nuisances; a value is the half-width of a uniform draw unless it is a pair.

    Pixels and degrees are on the canonical face at an interocular distance of 38.4 px (:data:`REFERENCE_IOD`).
    The ``*_prob`` fields are distractors: movement no AU label accounts for, in that share of the samples.
    """

    motion_deg: float = 0.1  # residual head motion from onset to apex (alignment leaves ~0.1-0.3 px)
    motion_px: float = 0.15
    gain: float = 0.03  # light change from onset to apex: gain, offset (grey levels), left-right ramp
    offset: float = 3.0
    ramp: float = 0.02
    blur_sigma: tuple[float, float] = (0.0, 0.7)  # optics, frame pixels, shared
    noise_sigma: tuple[float, float] = (0.5, 2.0)  # sensor noise, grey levels, drawn per frame
    blink_prob: float = 0.1  # the upper lids drop (AU45, never labelled) by blink_px
    blink_px: tuple[float, float] = (2.0, 4.0)
    head_motion_prob: float = 0.15  # a larger head movement between the frames
    head_motion_deg: float = 0.4
    head_motion_px: float = 0.6
    flicker_prob: float = 0.15  # a light flicker: extra gain and offset
    flicker_gain: float = 0.1
    flicker_offset: float = 8.0
    #: A turn of the head out of the image plane: the nose, nearer the camera, moves against the cheeks by up to
    #: this (pixels at the reference IOD; ``head_parallax_px`` in the samples with larger head motion). No 2-D
    #: registration removes it, so the model must learn that it is not an AU.
    parallax_px: float = 0.5
    head_parallax_px: float = 0.8
    #: The apex is coded at its own JPEG quality, up to this much off the onset's (a re-encoded frame).
    requality: int = 10
    #: A glance between the frames (the eyes' contents move, the lids do not), in this share of the samples.
    gaze_prob: float = 0.2
    gaze_px: tuple[float, float] = (0.5, 1.5)
    #: Skin that moves by itself a little (breathing, a held expression relaxing, a codec's motion blocks): a few
    #: smooth bumps anywhere on the face, peaking at up to this (reference IOD), in every sample but the still ones.
    #: Measured on still stretches of real video after registration, the AU regions' flow was 0.2-0.3 px (90th
    #: percentile, median over pairs) against 0.1 px in the corpus without it.
    wobble_px: float = 0.35


#: No nuisance at all: the apex differs from the onset only where an AU moved the skin (and by JPEG coding).
NO_NUISANCE = Nuisance(0, 0, 0, 0, 0, (0, 0), (0, 0), 0, (0, 0), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (0, 0), 0)


def _blur(frame: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(frame, (0, 0), sigma) if sigma > 0.05 else frame


def _relight(frame: np.ndarray, rng: np.random.Generator, nuisance: Nuisance, flicker: bool) -> np.ndarray:
    """A global gain and offset plus a left-right ramp: light that changed a little between the two frames."""
    gain = rng.uniform(-nuisance.gain, nuisance.gain)
    offset = rng.uniform(-nuisance.offset, nuisance.offset)
    if flicker:
        gain += rng.choice([-1, 1]) * rng.uniform(0.5, 1.0) * nuisance.flicker_gain
        offset += rng.uniform(-nuisance.flicker_offset, nuisance.flicker_offset)
    ramp = rng.uniform(-nuisance.ramp, nuisance.ramp) * np.linspace(-1, 1, frame.shape[1], dtype=np.float32)
    return frame * (1 + gain + ramp)[None, :, None] + offset


def parallax_grid(landmarks: dict, size: int, nose_shift: np.ndarray) -> np.ndarray:
    """The skin displacement of a small head turn out of the image plane, ``(size, size, 2)``: the parts nearer the
    camera move more, so the nose (``nose_shift`` pixels at its tip) moves against the face's outline (still)."""
    iod = interocular(landmarks)
    nose_x, nose_y = landmarks["nose_tip"]
    centres = np.arange(size, dtype=np.float32) + 0.5
    depth = np.exp(-((centres[None, :] - nose_x) ** 2 + (centres[:, None] - nose_y) ** 2) / (2 * (0.6 * iod) ** 2))
    return (depth[..., None] * np.asarray(nose_shift, np.float32)).astype(np.float32)


def wobble_grid(landmarks: dict, size: int, rng: np.random.Generator, peak: float, bumps: int = 3) -> np.ndarray:
    """``bumps`` smooth displacement bumps (width 0.4 IOD, random directions) at random places of the face, the
    strongest ``peak`` pixels: movement of the skin that no AU label accounts for."""
    points = np.array(list(landmarks.values()))
    sigma = 0.4 * interocular(landmarks)
    centres = np.arange(size, dtype=np.float32) + 0.5
    field = np.zeros((size, size, 2), np.float32)
    for _ in range(bumps):
        x, y = rng.uniform(points.min(axis=0), points.max(axis=0))
        angle = rng.uniform(0, 2 * np.pi)
        bump = np.exp(-((centres[None, :] - x) ** 2 + (centres[:, None] - y) ** 2) / (2 * sigma**2))
        field += bump[..., None] * np.array([np.cos(angle), np.sin(angle)], np.float32) * rng.uniform(0.3, 1.0)
    strongest = float(np.linalg.norm(field, axis=-1).max())
    return field * (peak / strongest) if strongest > 0 else field


def _add_noise(frame: np.ndarray, rng: np.random.Generator, nuisance: Nuisance) -> np.ndarray:
    sigma = rng.uniform(*nuisance.noise_sigma)
    return frame + sigma * rng.standard_normal(frame.shape, dtype=np.float32)


# ------------------------------------------------------------------------------------------------------------------
# Samples and the corpus
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSettings:
    """What every sample of one corpus shares."""

    aus: tuple[int, ...]
    amplitude_px: tuple[float, float]
    nuisance: Nuisance = Nuisance()
    rendering: Rendering = Rendering()
    expression: ExpressionNoise = ExpressionNoise()
    unilateral_prob: float = 0.1
    neutral_prob: float = 0.25
    #: Share of the neutral samples that are still pairs: the apex is the onset frame itself, as a duplicated video
    #: frame (or a user checking the model with the same frame twice) gives. Nothing moved, so nothing is present.
    #: The other neutral samples are two different frames of a face that did not move, as real footage gives: own
    #: noise, own coding, head drift and turn, light drift.
    still_prob: float = 0.1


def draw_moves(rng: np.random.Generator, settings: SampleSettings) -> tuple[str, list[int], list[str], list[Move]]:
    """The sample's emotion, its AUs, their sides, and the movements of the apex (the AUs', then any blink)."""
    emotion, aus = NO_EMOTION, []
    if rng.random() >= settings.neutral_prob:
        emotion, shown = draw_expression(rng, settings.aus, settings.expression)
        aus = sorted(shown)
    side = ("L", "R")[rng.integers(2)] if rng.random() < settings.unilateral_prob else ""
    laterality = [side if au in LATERAL_AUS else "" for au in aus]
    low, high = settings.amplitude_px
    base = rng.uniform(low, high)  # one intensity per sample; its AUs vary a little around it
    moves: list[Move] = [(au, lat, float(np.clip(base * rng.uniform(0.8, 1.2), low, high)))
                         for au, lat in zip(aus, laterality)]
    if rng.random() < settings.nuisance.blink_prob:
        moves.append(("blink", "", float(rng.uniform(*settings.nuisance.blink_px))))
    if rng.random() < settings.nuisance.gaze_prob:
        axis = ("gaze_x", "gaze_y")[rng.integers(2)]
        moves.append((axis, "", float(rng.choice([-1, 1]) * rng.uniform(*settings.nuisance.gaze_px))))
    return emotion, aus, laterality, moves


def make_sample(subject: SubjectFace, index: int, seed: int, settings: SampleSettings) -> dict:
    """Row ``index`` of the corpus (the :func:`~microau_hf.data.schema.sample_features` columns)."""
    rng = np.random.default_rng([seed, index])
    emotion, aus, laterality, moves = draw_moves(rng, settings)
    apex_frame = int(rng.integers(10, 40))  # frame numbers as at 200 fps: onset to offset within 0.5 s
    offset_frame = apex_frame + int(rng.integers(10, 50))

    nuisance, rendering = settings.nuisance, settings.rendering
    to_subject = subject.iod / REFERENCE_IOD  # amplitudes and head motion are given at the reference IOD
    camera = draw_camera(rng, rendering, subject)
    head = rng.random() < nuisance.head_motion_prob
    motion_deg = nuisance.head_motion_deg if head else nuisance.motion_deg
    motion_px = (nuisance.head_motion_px if head else nuisance.motion_px) * to_subject
    motion = similarity(rng, motion_deg, motion_px, subject.size / 2)
    flicker = rng.random() < nuisance.flicker_prob
    blur = rng.uniform(*nuisance.blur_sigma)
    quality = int(rng.integers(rendering.jpeg_quality[0], rendering.jpeg_quality[1] + 1))
    still = not moves and rng.random() < settings.still_prob
    scaled = [(au, lat, amplitude * to_subject) for au, lat, amplitude in moves]
    field = displacement_grid(subject.landmarks, scaled, subject.size, rendering.field, rng) if scaled else None
    if not still:
        reach = (nuisance.head_parallax_px if head else nuisance.parallax_px) * to_subject
        turn = parallax_grid(subject.landmarks, subject.size, rng.uniform(-reach, reach, size=2))
        turn += wobble_grid(subject.landmarks, subject.size, rng, rng.uniform(0, nuisance.wobble_px) * to_subject)
        field = turn if field is None else field + turn
    apex_quality = int(np.clip(quality + rng.integers(-nuisance.requality, nuisance.requality + 1),
                               *rendering.jpeg_quality))
    onset = _add_noise(_blur(render_frame(subject, camera), blur), rng, nuisance)
    if still:
        apex = onset
    else:
        apex = _relight(_blur(render_frame(subject, camera, motion, field), blur), rng, nuisance, flicker)
        apex = _add_noise(apex, rng, nuisance)

    return {
        "dataset": "synthetic",
        "subject": subject.subject,
        "sample_id": f"{subject.subject}/{index:06d}",
        "onset_frame": 0,
        "apex_frame": apex_frame,
        "offset_frame": offset_frame,
        "apex_estimated": False,
        "onset": to_jpeg(onset, quality),
        "apex": to_jpeg(apex, quality if still else apex_quality),
        "aus": aus,
        "au_raw": "+".join(f"{lat}{au}" for au, lat in zip(aus, laterality)) or "none",
        "laterality": laterality,
        "intensity": [""] * len(aus),  # amplitudes are micro by construction; no FACS intensity letter is claimed
        "emotion": emotion,  # as drawn: the AUs follow it loosely, so it is not a function of them
        "objective_class": best_match(frozenset(aus), OBJECTIVE_CLASSES),  # Davison's classes are defined by AUs
    }


def make_synthetic_corpus(
    out_dir: str | os.PathLike | None = None,
    num_samples: int = 256,
    seed: int = 0,
    amplitude_px: tuple[float, float] = (0.8, 2.5),
    aus: str | Sequence[int] = AU_SETS["casme2"],
    faces: Sequence[FaceImage] | None = None,
    nuisance: Nuisance = Nuisance(),
    rendering: Rendering = Rendering(),
    expression: ExpressionNoise = ExpressionNoise(),
    unilateral_prob: float = 0.1,
    neutral_prob: float = 0.25,
    overwrite: bool = False,
    progress: bool = False,
) -> Dataset:
    """The synthetic corpus as a ``datasets.Dataset``; saved atomically to ``out_dir`` when given.

    ``amplitude_px``: the range each AU's peak displacement is drawn from, in pixels at an interocular distance of
    38.4 px (scaled with the face in each frame). ``aus``: a named set of :data:`~microau_hf.aus.AU_SETS` or AU
    numbers; only these AUs are shown and labelled. ``faces``: defaults to
    :func:`~microau_hf.data.faces.load_faces` (every face available here), one subject each; subjects take turns, so
    each has ``num_samples / len(faces)`` samples, give or take one. ``nuisance``: :data:`NO_NUISANCE` for an apex
    that differs from the onset only where the AUs moved. ``rendering``: frame sizes, face scale, rotation, JPEG
    quality and motion style (:class:`~microau_hf.data.render.Rendering`). ``expression``: how loosely the AUs follow
    the emotion drawn first (:class:`ExpressionNoise`). ``unilateral_prob``, ``neutral_prob``: shares of samples with
    sided AUs on one side only, and with no AU (their emotion is ``"none"``). ``overwrite``: replace an existing
    ``out_dir`` (else :class:`FileExistsError`). The whole corpus is held in memory (~40-90 kB a sample), as is usual
    for a test or demo corpus.
    """
    settings = _settings(num_samples, amplitude_px, aus, nuisance, rendering, expression, unilateral_prob,
                         neutral_prob)
    if out_dir is not None:
        check_replaceable(out_dir, overwrite, flag="--overwrite (overwrite=True)")  # before the work, not after
    subjects = prepare_subjects(load_faces() if faces is None else faces)
    features = sample_features()
    chunks = []
    bar = tqdm(total=num_samples, desc="synthetic samples", unit="sample", disable=not progress)
    for start in range(0, num_samples, CHUNK):  # chunks, so the JPEG bytes are held once (in Arrow), not twice
        indices = range(start, min(start + CHUNK, num_samples))
        rows = []
        for i in indices:
            rows.append(make_sample(subjects[i % len(subjects)], i, seed, settings))
            bar.update(1)
        chunks.append(Dataset.from_dict({name: [row[name] for row in rows] for name in features}, features=features))
    bar.close()
    dataset = concatenate_datasets(chunks) if len(chunks) > 1 else chunks[0]
    if out_dir is None:
        return dataset
    save_atomically(dataset, out_dir, overwrite)
    return load_from_disk(str(out_dir))


def _settings(num_samples, amplitude_px, aus, nuisance, rendering, expression, unilateral_prob,
              neutral_prob) -> SampleSettings:
    low, high = (float(v) for v in amplitude_px)
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    if not 0 <= low <= high:
        raise ValueError(f"amplitude_px must be (low, high) with 0 <= low <= high, got {amplitude_px}")
    for name, p in (*vars(expression).items(), ("unilateral_prob", unilateral_prob), ("neutral_prob", neutral_prob)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must lie in [0, 1], got {p}")
    if rendering.field.kernel not in KERNELS:
        raise ValueError(f"unknown kernel {rendering.field.kernel!r}; kernels are {KERNELS}")
    au_set = resolve_au_set(aus)
    missing = [au for au in au_set if au not in AU_MOTIONS]
    if missing:
        raise ValueError(f"no synthetic motion for AU {missing}; AUs with one: {sorted(AU_MOTIONS)}")
    return SampleSettings(au_set, (low, high), nuisance, rendering, expression, unilateral_prob, neutral_prob)


def save_atomically(dataset: Dataset, out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """``dataset.save_to_disk`` into a hidden folder beside ``out_dir``, then renamed into place.

    A reader never sees a half-written corpus: ``out_dir`` is either absent, the old corpus, or the new one whole. An
    existing corpus is replaced only with ``overwrite``, and a folder holding anything else never.
    """
    out = Path(out_dir)
    check_replaceable(out, overwrite, flag="--overwrite (overwrite=True)")
    with atomic_directory(out) as staged:
        dataset.save_to_disk(str(staged))
    return out


__all__ = [
    "NO_EMOTION",
    "NO_NUISANCE",
    "OTHERS",
    "ExpressionNoise",
    "Nuisance",
    "Rendering",
    "SampleSettings",
    "SubjectFace",
    "best_match",
    "draw_expression",
    "draw_moves",
    "make_sample",
    "make_synthetic_corpus",
    "parallax_grid",
    "wobble_grid",
    "prepare_subjects",
    "save_atomically",
]
