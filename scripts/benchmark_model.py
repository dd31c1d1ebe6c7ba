"""Micro-AU CLIP's forward against the bare CLIP vision pass it needs, at the ViT-B/16 shape (random weights).

The overhead that PTA + GDA + prompt similarity add is the ratio of the two times, measured in one run on the same
inputs. `difference` and `apex` need one tower pass, `motion` and `apex+difference` two (batched).

    python scripts/benchmark_model.py --batch-size 8 --repeats 5 --out benchmarks/model.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from microau_hf import MicroAUClipModel, make_config

TOWER_PASSES = {"difference": 1, "apex": 1, "motion": 2, "apex+difference": 2}


def _paired_median_seconds(first, second, repeats: int) -> tuple[float, float]:
    """Median times of two calls, interleaved so that both see the same machine load."""
    first(), second()  # warm-up: allocations, kernel selection, the prompt cache
    first_times, second_times = [], []
    for _ in range(repeats):
        for fn, times in ((first, first_times), (second, second_times)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(first_times), statistics.median(second_times)


@torch.inference_mode()
def benchmark(preset: str, modes: list[str], batch_size: int, repeats: int) -> list[dict]:
    rows = []
    for mode in modes:
        torch.manual_seed(0)
        model = MicroAUClipModel(make_config("casme2", preset=preset, input_mode=mode)).eval()
        size = model.config.vision_config.image_size
        onset = torch.randn(batch_size, 3, size, size)
        apex = onset + 0.05 * torch.randn_like(onset)
        tower_batch = torch.randn(TOWER_PASSES[mode] * batch_size, 3, size, size)
        tower, full = _paired_median_seconds(
            lambda: model.vision_model(pixel_values=tower_batch),
            lambda: model(onset_pixel_values=onset, apex_pixel_values=apex),
            repeats,
        )
        rows.append(
            {
                "preset": preset,
                "input_mode": mode,
                "batch_size": batch_size,
                "tower_passes": TOWER_PASSES[mode],
                "vision_tower_s": tower,
                "micro_au_clip_s": full,
                "overhead_ratio": full / tower,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="vit-b-16")
    parser.add_argument("--modes", nargs="+", default=list(TOWER_PASSES))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/model.json"))
    args = parser.parse_args()

    rows = benchmark(args.preset, args.modes, args.batch_size, args.repeats)
    print(f"{'mode':<16} {'tower s':>9} {'model s':>9} {'ratio':>7}   (preset {args.preset}, batch {args.batch_size})")
    for row in rows:
        print(f"{row['input_mode']:<16} {row['vision_tower_s']:>9.3f} {row['micro_au_clip_s']:>9.3f} {row['overhead_ratio']:>7.3f}")
    machine = {"processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "device": "cpu"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
