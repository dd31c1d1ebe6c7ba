"""How long the command line makes a user wait: `microau --help`, a refused argument, and `microau predict`'s time to
the first result for one pair, each from process start (a new `microau` process, as a user runs it).

    python scripts/benchmark_cli.py [--out benchmarks/cli.json] [--repeats 5]

`predict` scores the Space's first example pair (real JPEG frames through the face pipeline) with a tiny-preset
checkpoint made with random weights here: the model's size, not its training, sets the time. The import of
`microau_hf` (torch, transformers) is timed alone too, to show where the wait goes. Medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "spaces_app" / "examples"
ENVIRONMENT = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def microau() -> list[str]:
    """The installed console script when on PATH beside this Python, else `python -m microau` (the same code)."""
    script = Path(sys.executable).with_name("microau")
    return [str(script)] if script.exists() else [sys.executable, "-m", "microau"]


def seconds(command: list[str], repeats: int, expect: int = 0) -> float:
    """Median wall time of ``command`` from process start to exit."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=ENVIRONMENT, timeout=600)
        times.append(time.perf_counter() - start)
        if result.returncode != expect:
            raise SystemExit(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return statistics.median(times)


def tiny_checkpoint(folder: Path) -> Path:
    subprocess.run([sys.executable, "-c", f"""
import torch
from microau_hf import MicroAUClipModel, make_config
torch.manual_seed(0)
MicroAUClipModel(make_config("casme2", preset="tiny")).save_pretrained({str(folder)!r})
"""], check=True, env=ENVIRONMENT)
    return folder


def measure(repeats: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="benchmark_cli_"))
    try:
        checkpoint = tiny_checkpoint(work / "checkpoint")
        onset, apex = EXAMPLES / "hopper_000009_onset.jpg", EXAMPLES / "hopper_000009_apex.jpg"
        predict = [*microau(), "predict", "--model", str(checkpoint), "--onset", str(onset), "--apex", str(apex)]
        return {
            "microau --help": seconds([*microau(), "--help"], repeats),
            "microau predict --help": seconds([*microau(), "predict", "--help"], repeats),
            "predict with a bad --out (refused)": seconds([*predict, "--out", str(work / "result.txt")], repeats, expect=2),
            "python -c 'import microau_hf'": seconds([sys.executable, "-c", "import microau_hf"], repeats),
            "predict, one pair: time to first result": seconds(predict, repeats),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "cli.json")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    timings = measure(args.repeats)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    print(f"| step (median of {args.repeats}, process start to exit) | seconds |\n|---|---:|")
    for name, value in timings.items():
        print(f"| {name} | {value:.2f} |")
    args.out.write_text(json.dumps({"machine": machine, "repeats": args.repeats, "seconds": timings}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
