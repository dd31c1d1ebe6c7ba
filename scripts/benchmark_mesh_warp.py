"""Micro-AUs rendered by a generator other than the corpus's own: does the model find them on faces it sees anew?

The synthetic corpus moves the skin with smooth displacement fields placed on the canonical face
(``microau_hf/data/au_motion.py``) and frames the face with its own camera (``data/render.py``). This benchmark
shares neither: it takes each face photo as it is, scales it so that the eyes are 40-80 px apart, finds its
478-point MediaPipe mesh, moves the mesh vertices inside each shown AU's region (the catalogue's region boxes,
placed on the photo's landmarks) along that AU's FACS direction with a smooth fall-off, and warps the photo
piecewise-affinely on the mesh's triangles (SciPy's barycentric interpolation, OpenCV's remap). The head drifts by
up to 0.4 px between the frames; each frame gets its own sensor noise and JPEG coding. Pairs go through
``MicroAUPredictor.predict_pairs``.

Mean binary F1 (positive class) over the AUs, per-AU F1, and the invented-AU rate on the pairs with no AU:

    python scripts/benchmark_mesh_warp.py --model outputs/quickstart/checkpoint --out benchmarks/mesh_warp.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np
from scipy.interpolate import griddata

from microau_hf.atomic import atomic_write_text
from microau_hf.aus import get_au
from microau_hf.data.faces import load_faces
from microau_hf.face.landmarks import MediaPipeLandmarker, NoFaceError
from microau_hf.inference import MicroAUPredictor
from microau_hf.train.metrics import au_detection_scores

#: Where each AU pulls the skin (image x right, y down), as FACS describes the movement; "out" is away from the
#: face's midline, "in" towards it.
DIRECTIONS = {
    1: (0.0, -1.0), 2: (0.0, -1.0), 4: ("in", 0.6), 7: (0.0, -1.0),
    12: ("out", -0.8), 14: ("in", 0.0), 15: ("out", 1.0), 17: (0.0, -1.0),
}
AMPLITUDE_PX = (1.0, 2.5)  # at an interocular distance of 38.4 px, as the corpus states its amplitudes
REFERENCE_IOD = 38.4


def _direction(au: int, x: float, midline: float) -> np.ndarray:
    dx, dy = DIRECTIONS[au]
    if isinstance(dx, str):
        outward = 1.0 if x > midline else -1.0
        dx = outward if dx == "out" else -outward
    vector = np.array([dx, dy], np.float64)
    return vector / max(np.linalg.norm(vector), 1e-9)


def moved_mesh(points: np.ndarray, semantic: dict, aus: list[int], amplitudes: list[float]) -> np.ndarray:
    """The mesh vertices after the AUs: each vertex in an AU's region box moves along the AU's direction, weighted
    by a Gaussian of its distance to the box's centre (sigma: half the box's diagonal)."""
    (lx, ly), (rx, ry) = semantic["eye_center_left"], semantic["eye_center_right"]
    iod = math.hypot(rx - lx, ry - ly)
    midline = (lx + rx) / 2
    moved = points.copy()
    for au, amplitude in zip(aus, amplitudes):
        for box in get_au(au).region:
            x0, y0, x1, y1 = box.place(semantic, iod)
            centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
            sigma = 0.5 * math.hypot(x1 - x0, y1 - y0)
            weight = np.exp(-np.sum((points - centre) ** 2, axis=1) / (2 * sigma**2))
            direction = _direction(au, centre[0], midline)
            moved += weight[:, None] * direction[None, :] * amplitude * iod / REFERENCE_IOD
    return moved


def pwa_warp(image: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``image`` with the skin at ``source`` points carried to ``target`` points: piecewise affine on the triangles of
    the target points (the image's corners and edge midpoints held still). Each output pixel reads the input where
    the barycentric interpolation of the points' offsets sends it, which is exactly the piecewise-affine map."""
    height, width = image.shape[:2]
    frame = np.array([[0, 0], [width / 2, 0], [width - 1, 0], [0, height / 2], [width - 1, height / 2],
                      [0, height - 1], [width / 2, height - 1], [width - 1, height - 1]], np.float64)
    source, target = np.vstack([source, frame]), np.vstack([target, frame])
    ys, xs = np.mgrid[0:height, 0:width]
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    offsets = griddata(target, source - target, grid, method="linear", fill_value=0.0)
    map_x = (grid[:, 0] + offsets[:, 0]).reshape(height, width).astype(np.float32)
    map_y = (grid[:, 1] + offsets[:, 1]).reshape(height, width).astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.float32)


def record(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise and JPEG coding, per frame."""
    noisy = frame + rng.uniform(0.5, 2.0) * rng.standard_normal(frame.shape)
    pixels = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    _, data = cv2.imencode(".jpg", pixels[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(75, 95))])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()


def face_at_scale(image: np.ndarray, landmarker: MediaPipeLandmarker, iod: float):
    """The photo scaled so that its eyes are ``iod`` px apart, cropped around the face, and its mesh there."""
    face = landmarker.detect(image, "photo")
    (lx, ly), (rx, ry) = face.semantic["eye_center_left"], face.semantic["eye_center_right"]
    scale = iod / math.hypot(rx - lx, ry - ly)
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cx, cy = (lx + rx) / 2 * scale, (ly + ry) / 2 * scale
    half = int(2.5 * iod)
    padded = cv2.copyMakeBorder(small, half, half, half, half, cv2.BORDER_REFLECT)
    x0, y0 = int(cx), int(cy - 0.3 * iod)
    crop = np.ascontiguousarray(padded[y0:y0 + 2 * half, x0:x0 + 2 * half])
    found = landmarker.detect(crop, "crop")
    return crop, found


def samples(landmarker, rng, per_subject: int, aus: list[int]):
    for subject in load_faces():
        for _ in range(per_subject):
            try:
                crop, face = face_at_scale(subject.image, landmarker, rng.uniform(40, 80))
            except NoFaceError:
                continue
            shown = [] if rng.random() < 0.2 else sorted(rng.choice(aus, size=rng.integers(1, 3), replace=False))
            amplitudes = [rng.uniform(*AMPLITUDE_PX) for _ in shown]
            drift = rng.uniform(-0.4, 0.4, size=2)
            target = moved_mesh(face.points, face.semantic, [int(a) for a in shown], amplitudes) + drift
            onset = record(crop.astype(np.float32), rng)
            apex = record(pwa_warp(crop, face.points, target), rng)
            yield subject.subject, onset, apex, [int(a) for a in shown]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="outputs/quickstart/checkpoint")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/mesh_warp.json"))
    parser.add_argument("--per-subject", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    predictor = MicroAUPredictor.from_pretrained(args.model, device="cpu")
    aus = [au for au in predictor.aus if au in DIRECTIONS]
    rng = np.random.default_rng(args.seed)
    with MediaPipeLandmarker() as landmarker:
        rows = list(samples(landmarker, rng, args.per_subject, aus))
    results = predictor.predict_pairs([(onset, apex) for _, onset, apex, _ in rows])
    scored = [(row, r) for row, r in zip(rows, results) if r.ok]
    labels = np.array([[au in row[3] for au in predictor.aus] for row, _ in scored])
    called = np.array([[a.present for a in r.aus] for _, r in scored])
    scores = au_detection_scores(labels, called, [f"AU{au}" for au in predictor.aus])
    neutral = ~labels.any(axis=1)
    report = {"model": str(args.model), "pairs": len(rows), "scored": len(scored),
              "statuses": {s: sum(r.status == s for r in results) for s in {r.status for r in results}},
              "mean_f1": round(float(scores["mean_f1"]), 3),
              "per_au_f1": {name: round(row["f1"], 3) for name, row in scores["per_au"].items()},
              "per_au_support": {name: row["support"] for name, row in scores["per_au"].items()},
              "invented_on_neutral": round(float(called[neutral].any(axis=1).mean()), 3) if neutral.any() else None,
              "neutral_pairs": int(neutral.sum())}
    print(json.dumps(report, indent=2, default=str))
    atomic_write_text(args.out, json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
