"""Throughput of the face pipeline and of the processor on ONE CPU core.

    python scripts/benchmark_face.py [--out benchmarks/face.json] [--repeats 100]

Face pipeline: detection + 478-point mesh + alignment of an onset/apex pair + region weights, on a 640x480 frame
holding the astronaut (``skimage.data.astronaut()``), frames already decoded. Processor: one call on a batch of 32
aligned 224x224 pairs with per-sample region boxes (resize check, CLIP normalisation, patch weights).

The process is pinned to one core (``sched_setaffinity``) and every thread pool is set to one thread, so the figure is
per core: on a machine with C free cores, C worker processes give about C times as much.
"""

from __future__ import annotations

import os

# Thread pools read these when their libraries load, so they are set before any import below.
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_variable] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

TARGET_FACES_PER_SECOND = 25.0


def pin_to_one_core() -> str:
    """Run on a single core (mediapipe's XNNPACK would otherwise spread over all of them)."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"core {core} (sched_setaffinity)"
    return "threads=1 (no affinity control on this OS)"


def frame_640x480() -> tuple[np.ndarray, np.ndarray]:
    """An onset frame with the astronaut's face, and an apex with the face moved 2 px."""
    from skimage import data

    onset = np.full((480, 640, 3), 90, np.uint8)
    onset[:, 80:560] = cv2.resize(data.astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    return onset, np.roll(onset, 2, axis=1)


def per_second(work: Callable[[], object], repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        work()
    start = time.perf_counter()
    for _ in range(repeats):
        work()
    return repeats / (time.perf_counter() - start)


def bench_face(repeats: int) -> dict[str, float]:
    from microau_hf.aus import AU_SETS
    from microau_hf.face import FacePreparer, MediaPipeLandmarker, align_pair, landmark_region_boxes, region_weights

    onset, apex = frame_640x480()
    landmarker = MediaPipeLandmarker()
    preparer = FacePreparer(AU_SETS["cross12"], 224, 16, landmarker)
    face = landmarker.detect(onset)
    aligned = align_pair(onset, apex, face, 224)
    landmarks = aligned.normalised_landmarks()
    results = {
        "detect_and_landmarks_per_s": per_second(lambda: landmarker.detect(onset), repeats),
        "align_pair_per_s": per_second(lambda: align_pair(onset, apex, face, 224), repeats),
        "region_weights_per_s": per_second(
            lambda: region_weights(landmark_region_boxes(landmarks, preparer.aus), preparer.grid_size), repeats
        ),
        "faces_per_s": per_second(lambda: preparer.prepare(onset, apex), repeats),
    }
    landmarker.close()
    return results


def bench_processor(repeats: int, batch: int = 32) -> dict[str, float]:
    from microau_hf.aus import AU_SETS
    from microau_hf.face import FacePreparer, build_processor

    aus = list(AU_SETS["cross12"])
    processor = build_processor(SimpleNamespace(vision_config=SimpleNamespace(image_size=224, patch_size=16), aus=aus))
    onset, apex = frame_640x480()
    prepared = FacePreparer(aus, 224, 16, landmarker=None).prepare(onset, apex)
    onsets, apexes = [prepared.onset] * batch, [prepared.apex] * batch
    boxes = [prepared.region_boxes] * batch
    calls = per_second(lambda: processor(onset=onsets, apex=apexes, region_boxes=boxes), repeats, warmup=2)
    return {"batch_size": batch, "batches_per_s": calls, "pairs_per_s": calls * batch}


def versions() -> dict[str, str]:
    import mediapipe
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "mediapipe": mediapipe.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/face.json", help="where to write the JSON results")
    parser.add_argument("--repeats", type=int, default=100, help="faces timed (the processor: repeats // 10 batches)")
    args = parser.parse_args()

    pinned = pin_to_one_core()
    face = bench_face(args.repeats)
    proc = bench_processor(max(args.repeats // 10, 3))
    report = {
        "cpu": platform.processor() or platform.machine(),
        "pinned": pinned,
        "frame": "640x480 RGB, decoded",
        "crop": "224x224, 14x14 patches, 12 AUs (cross12)",
        "face_pipeline": face,
        "processor": proc,
        "target_faces_per_s": TARGET_FACES_PER_SECOND,
        "meets_target": face["faces_per_s"] >= TARGET_FACES_PER_SECOND,
        "versions": versions(),
    }
    rows = [
        ("detection + 478-point mesh", f"{face['detect_and_landmarks_per_s']:.1f} /s"),
        ("alignment (onset + apex)", f"{face['align_pair_per_s']:.1f} /s"),
        ("region boxes + patch weights", f"{face['region_weights_per_s']:.1f} /s"),
        ("whole face pipeline", f"{face['faces_per_s']:.1f} faces/s (target >= {TARGET_FACES_PER_SECOND:.0f})"),
        (f"processor, batches of {proc['batch_size']} pairs", f"{proc['pairs_per_s']:.1f} pairs/s"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"one CPU core: {pinned}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
