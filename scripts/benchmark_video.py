"""End-to-end video scoring speed and memory, beside the bare vision tower (the limit), on this machine's CPU.

    python scripts/benchmark_video.py [--out benchmarks/video.json] [--seconds 10] [--long-seconds 60]
                                      [--presets tiny,vit-b-16] [--threads N]

The video: the astronaut (``skimage.data.astronaut()``) pasted into 640x480 frames at 30 fps, her mouth corners
pulled up and released in a few short pulses (a micro-smile), written as MPEG-4 part 2 (``mp4v``), as a camera
file would be. For each preset (random weights):

* ``video_fps``: frames per second of ``MicroAUPredictor.predict_video(every_frame=True)``, everything included:
  decoding, face detection and landmarks on every frame, alignment, spotting, the processor
  and the model (one difference pass per frame, batches of 16);
* ``spotting_only_fps``: the same without scoring every frame (decode, track, spot, the model on the spotted
  intervals only; scripts/benchmark_spotting.py measures it on one core against real videos);
* ``tower_images_per_s``: the CLIP vision tower alone on batches of 16 random images, measured before and after the
  video run (the machine is shared, so the mean of both brackets the video run); ``ratio`` = video / tower.
* ``model_ms_per_frame`` / ``outside_model_ms_per_frame``: the video run split into the whole model's forward pass
  (tower, PTA, GDA, prompt head) and everything else (decoding, alignment, motion, processor).

Memory: the ``tiny`` preset scores every frame of a short and of a long video, each in a fresh process; the peak
resident set size (RSS) of both shows whether it grows with the video's length.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

FPS = 30
BATCH = 16
TARGET_RATIO = 0.85  # video scoring within 15% of the bare tower at ViT-B/16
MOUTH = (290.0, 132.0)  # the astronaut's mouth centre once pasted (480 px high, 80 px from the left)


def base_frame() -> np.ndarray:
    from skimage import data

    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 80:560] = cv2.resize(data.astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    return frame


def smiles(frame: np.ndarray, levels: int = 6, max_px: float = 4.0, sigma: float = 14.0) -> list[np.ndarray]:
    """``frame`` with the mouth region pushed up by 0 .. ``max_px`` pixels, one frame per level."""
    height, width = frame.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    falloff = np.exp(-((xs - MOUTH[0]) ** 2 + (ys - MOUTH[1]) ** 2) / (2 * sigma**2)).astype(np.float32)
    return [cv2.remap(frame, xs, ys + a * falloff, cv2.INTER_LINEAR) for a in np.linspace(0, max_px, levels)]


def write_benchmark_video(path: Path, seconds: float) -> Path:
    """Pulses of 0.3 s every 2 s: level up then down; the rest of the time the neutral face."""
    from microau_hf.video import write_video

    levels = smiles(base_frame())
    pulse = [1, 2, 3, 4, 5, 4, 3, 2, 1]

    def frames():
        for index in range(int(seconds * FPS)):
            phase = index % (2 * FPS)
            yield levels[pulse[phase - FPS]] if FPS <= phase < FPS + len(pulse) else levels[0]

    return write_video(path, frames(), fps=FPS, codec="mp4v")


def predictor_for(preset: str):
    from microau_hf import MicroAUClipModel, make_config
    from microau_hf.inference import MicroAUPredictor

    torch.manual_seed(0)
    return MicroAUPredictor(MicroAUClipModel(make_config("casme2", preset=preset)), device="cpu")


def tower_images_per_s(model, seconds: float = 6.0) -> float:
    """The vision tower alone on batches of random images, for about ``seconds`` (at least 3 batches)."""
    size = model.config.vision_config.image_size
    pixels = torch.randn(BATCH, 3, size, size)
    with torch.inference_mode():
        model.vision_model(pixel_values=pixels)  # warm-up
        batches, start = 0, time.perf_counter()
        while batches < 3 or time.perf_counter() - start < seconds:
            model.vision_model(pixel_values=pixels)
            batches += 1
    return batches * BATCH / (time.perf_counter() - start)


def timed_model(predictor) -> list[float]:
    """Wrap ``predictor.run_model`` so the seconds spent in the model are summed into the returned list's one item."""
    spent, run_model = [0.0], predictor.run_model

    def timed(*args):
        start = time.perf_counter()
        try:
            return run_model(*args)
        finally:
            spent[0] += time.perf_counter() - start

    predictor.run_model = timed
    return spent


def measure_preset(preset: str, video: Path) -> dict:
    predictor = predictor_for(preset)
    predictor.predict_video(video, every_frame=True, max_frames=BATCH + 1)  # warm-up: caches, mediapipe graphs
    model_seconds = timed_model(predictor)
    tower_before = tower_images_per_s(predictor.model)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = predictor.predict_video(video, every_frame=True, batch_size=BATCH)
    video_seconds, video_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    in_model = model_seconds[0]
    tower_after = tower_images_per_s(predictor.model)
    start = time.perf_counter()
    spotted_only = predictor.predict_video(video)
    spotting_seconds = time.perf_counter() - start
    frames = len(result.scored_frames)
    tower = (tower_before + tower_after) / 2
    return {
        "image_size": predictor.model.config.vision_config.image_size,
        "frames": frames,
        "video_seconds": round(video_seconds, 2),
        "video_fps": round(frames / video_seconds, 2),
        "spotting_only_fps": round(len(spotted_only.frame_indices) / spotting_seconds, 1),
        "tower_images_per_s": round(tower, 2),
        "tower_before_after": [round(tower_before, 2), round(tower_after, 2)],
        "ratio": round(frames / video_seconds / tower, 3),
        "video_cpu_seconds_per_frame": round(video_cpu / frames, 4),
        # Where the time went: the whole model (tower + PTA + GDA + prompt head) vs everything else (decoding,
        # alignment, motion, processor), per frame.
        "model_ms_per_frame": round(1000 * in_model / frames, 2),
        "outside_model_ms_per_frame": round(1000 * (video_seconds - in_model) / frames, 2),
        "tower_ms_per_image": round(1000 / tower, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "micro_expressions": len(result.micro_expressions),
        "face_found_frames": sum(status == "found" for status in result.face_status),
    }


def memory_child(video: str, preset: str) -> None:
    """Score every frame of ``video``; print, in MiB, the RSS once the model is loaded and warm, and the peak RSS
    while the video is scored, as JSON."""
    predictor = predictor_for(preset)
    predictor.predict_video(video, every_frame=True, max_frames=BATCH + 1)
    loaded = _status_mib("VmRSS")
    peak_reset = _reset_peak_rss()
    result = predictor.predict_video(video, every_frame=True, batch_size=BATCH)
    print(json.dumps({"frames": len(result.frame_indices), "rss_loaded_mib": round(loaded, 1),
                      "peak_rss_mib": round(_status_mib("VmHWM"), 1), "peak_is_scoring_only": peak_reset}))


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status. VmHWM, unlike getrusage's ru_maxrss, is not inherited from the parent
    process that forked this one, which here holds a ViT-B/16."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+), so the peak measures the video run alone."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure_memory(videos: dict[str, Path], preset: str, threads: int | None) -> dict:
    results = {}
    for label, path in videos.items():
        command = [sys.executable, __file__, "--memory-child", str(path), "--presets", preset]
        if threads:
            command += ["--threads", str(threads)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[label] = json.loads(output.strip().splitlines()[-1])
    return results


def print_table(report: dict) -> None:
    print(f"\nvideo scoring, 640x480 mp4v, {report['video']['seconds']} s at {FPS} fps, "
          f"{report['threads']} torch threads, batch {BATCH}")
    print(f"{'preset':<10} {'crop':>5} {'video fps':>10} {'spotting fps':>14} {'tower img/s':>12} {'ratio':>6}"
          f" | ms/frame: {'tower':>7} {'model':>7} {'outside':>8}")
    for name, row in report["presets"].items():
        print(f"{name:<10} {row['image_size']:>5} {row['video_fps']:>10} {row['spotting_only_fps']:>14} "
              f"{row['tower_images_per_s']:>12} {row['ratio']:>6} |           {row['tower_ms_per_image']:>7} "
              f"{row['model_ms_per_frame']:>7} {row['outside_model_ms_per_frame']:>8}")
    print(f"load average before {report['load_average_before']}, after {report['load_average_after']} "
          f"({report['cpu_count']} cores; others share them)")
    print(f"\npeak RSS while scoring every frame, {report['memory_preset']} preset:")
    for label, row in report["memory"].items():
        print(f"  {label:<6} {row['frames']:>5} frames: {row['rss_loaded_mib']} MiB loaded, "
              f"peak {row['peak_rss_mib']} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/video.json")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--long-seconds", type=float, default=60.0)
    parser.add_argument("--presets", default="tiny,vit-b-16")
    parser.add_argument("--memory-preset", default="tiny")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--memory-child", metavar="VIDEO", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child, args.presets.split(",")[0])
        return
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as tmp:
        short = write_benchmark_video(Path(tmp) / "short.mp4", args.seconds)
        long = write_benchmark_video(Path(tmp) / "long.mp4", args.long_seconds)
        presets = {name: measure_preset(name, short) for name in args.presets.split(",")}
        memory = measure_memory({f"{args.seconds:g} s": short, f"{args.long_seconds:g} s": long},
                                args.memory_preset, args.threads)
    report = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "load_average_before": load_before,
        "load_average_after": round(os.getloadavg()[0], 2),
        "video": {"size": "640x480", "fps": FPS, "seconds": args.seconds, "codec": "mp4v"},
        "presets": presets,
        "target_ratio_vit_b_16": TARGET_RATIO,
        "meets_target": presets.get("vit-b-16", {}).get("ratio", 0) >= TARGET_RATIO,
        "memory_preset": args.memory_preset,
        "memory": memory,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "opencv": cv2.__version__},
    }
    print_table(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
