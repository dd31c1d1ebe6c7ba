"""Face detections cached by frame content, so that training runs the landmark model once per onset frame.

Finding the face and its landmarks is the slow step of the face pipeline (tens of milliseconds a frame); aligning,
cropping and placing the regions from them are fast. A :class:`FaceCache` keeps, per onset frame, what the backend
found (or why it found nothing), and the face pipeline reads it instead of running the backend again. Everything
after the detection is recomputed, so a cached sample goes through exactly the code an uncached one does.

The key is a hash of the frame's RGB pixels and shape: frames that change get a new key and are detected anew, so a
cache never stands in for frames it was not computed from. A cache file records the backend that filled it; a file
from another backend is ignored. Files are safetensors (tensors) with JSON metadata: no pickle.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .landmarks import Face

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CACHE_FILE_NAME = "microau_face_cache.safetensors"


def frame_key(frame: np.ndarray) -> str:
    """A content hash of an RGB frame: its shape and pixel bytes."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((frame.shape, str(frame.dtype))).encode())
    digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class NoFace:
    """A frame the backend found no usable face in; ``reason`` is the backend's message without the item's name."""

    reason: str


class FaceCache:
    """What a landmark backend found in each frame, by :func:`frame_key`.

    Args:
        backend: the name of the backend whose results this holds (``"mediapipe"``); results from another
            backend are never mixed in.
    """

    def __init__(self, backend: str):
        self.backend = backend
        self._entries: dict[str, Face | NoFace] = {}
        self.dirty = False

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Face | NoFace | None:
        return self._entries.get(key)

    def put(self, key: str, found: Face | NoFace) -> None:
        self._entries[key] = found
        self.dirty = True

    # -- files --------------------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the cache atomically (a temporary file renamed into place)."""
        from safetensors.numpy import save_file

        path = Path(path)
        faces = {k: v for k, v in self._entries.items() if isinstance(v, Face)}
        refused = {k: v.reason for k, v in self._entries.items() if isinstance(v, NoFace)}
        metadata = {
            "format_version": str(FORMAT_VERSION),
            "backend": self.backend,
            "keys": json.dumps(list(faces)),
            "semantic_names": json.dumps(list(next(iter(faces.values())).semantic) if faces else []),
            "no_face": json.dumps(refused),
        }
        tensors = _face_tensors(list(faces.values()))
        staged = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        save_file(tensors, str(staged), metadata=metadata)
        os.replace(staged, path)
        self.dirty = False
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str) -> FaceCache:
        """The cache in ``path``; an empty one (with a log line) when the file is absent, unreadable or from another
        backend, since the detections are then simply made again."""
        cache = cls(backend)
        path = Path(path)
        if not path.is_file():
            return cache
        from safetensors import SafetensorError

        try:
            cache._entries = _read_entries(path, backend)
        except (OSError, ValueError, KeyError, IndexError, SafetensorError) as err:
            logger.info("face cache %s not used (%s); the faces are detected again", path, err)
        return cache


def _face_tensors(faces: list[Face]) -> dict[str, np.ndarray]:
    if not faces:
        return {"boxes": np.zeros((0, 4))}
    return {
        "boxes": np.array([face.box for face in faces], np.float64),
        "points": np.stack([face.points for face in faces]).astype(np.float64),
        "semantic": np.array([list(face.semantic.values()) for face in faces], np.float64),
        "num_faces": np.array([face.num_faces for face in faces], np.int64),
        "scores": np.array([face.score for face in faces], np.float64),
    }


def _read_entries(path: Path, backend: str) -> dict[str, Face | NoFace]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as opened:
        metadata = opened.metadata() or {}
        if metadata.get("format_version") != str(FORMAT_VERSION) or metadata.get("backend") != backend:
            raise ValueError(f"made by {metadata.get('backend')!r} (format {metadata.get('format_version')}), "
                             f"not {backend!r} (format {FORMAT_VERSION})")
        tensors = {name: opened.get_tensor(name) for name in opened.keys()}
    keys, names = json.loads(metadata["keys"]), json.loads(metadata["semantic_names"])
    entries: dict[str, Face | NoFace] = {}
    for i, key in enumerate(keys):
        semantic = {name: (float(x), float(y)) for name, (x, y) in zip(names, tensors["semantic"][i])}
        entries[key] = Face(tuple(float(v) for v in tensors["boxes"][i]), tensors["points"][i], semantic,
                            num_faces=int(tensors["num_faces"][i]), score=float(tensors["scores"][i]),
                            backend=backend)
    entries.update({key: NoFace(reason) for key, reason in json.loads(metadata["no_face"]).items()})
    return entries


__all__ = ["CACHE_FILE_NAME", "FaceCache", "NoFace", "frame_key"]
