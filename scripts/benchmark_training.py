"""Training throughput: optimizer steps of Micro-AU CLIP (forward, backward, AdamW) on random inputs.

    python scripts/benchmark_training.py --preset vit-b-16 --batch-size 8 --steps 3 --out benchmarks/training.json

Reports samples/s and the process's peak resident memory (CPU) or peak CUDA memory (GPU, with `--device cuda`,
`--bf16` for bf16 autocast). The text tower is frozen (the default), so its prompt embeddings are computed once.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch

from microau_hf import MicroAUClipModel, make_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="vit-b-16")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/training.json"))
    args = parser.parse_args()

    torch.manual_seed(0)
    model = MicroAUClipModel(make_config("casme2", preset=args.preset)).to(args.device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    size = model.config.vision_config.image_size
    onset = torch.randn(args.batch_size, 3, size, size, device=args.device)
    apex = onset + 0.05 * torch.randn_like(onset)
    labels = torch.randint(0, 2, (args.batch_size, model.config.num_aus), device=args.device)

    def step() -> None:
        with torch.autocast(device_type=args.device, dtype=torch.bfloat16, enabled=args.bf16):
            loss = model(onset_pixel_values=onset, apex_pixel_values=apex, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()  # warm-up
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if args.device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    peak_mib = (torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda"
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    row = {"preset": args.preset, "device": args.device, "bf16": args.bf16, "batch_size": args.batch_size,
           "seconds_per_step": round(seconds, 3), "samples_per_s": round(args.batch_size / seconds, 2),
           "peak_memory_mib": round(peak_mib, 1), "parameters_m": round(model.num_parameters() / 1e6, 1),
           "machine": {"processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                       "torch": torch.__version__}}
    print(f"{'preset':<10} {'device':<6} {'batch':>5} {'s/step':>8} {'samples/s':>10} {'peak MiB':>9}")
    print(f"{row['preset']:<10} {row['device']:<6} {row['batch_size']:>5} {row['seconds_per_step']:>8.3f} "
          f"{row['samples_per_s']:>10.2f} {row['peak_memory_mib']:>9.0f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(row, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
