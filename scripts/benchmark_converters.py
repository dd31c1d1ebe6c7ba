"""Conversion speed of the CASME II, SAMM and CAS(ME)^3 converters on fixture corpora of the real layouts.

The real corpora cannot be shipped, so each converter runs on a corpus built by ``tests/fixtures_corpora.py``:
``--rows`` samples of ``--span`` frames, ``--size`` pixels square. Building the corpus is not timed; the conversion
is (spreadsheet, checks, decoding every stored frame, the Arrow write and the atomic rename), with and without the
whole onset..offset span.

    python scripts/benchmark_converters.py --rows 200 --out benchmarks/converters.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the fixture builders live beside the tests that also use them

from fixtures_corpora import BUILDERS, build_corpus  # noqa: E402

from microau_hf.data.converters import convert_corpus  # noqa: E402


def benchmark(corpus: str, rows: int, span: int, size: int, with_frames: bool, work: Path) -> dict:
    root = work / corpus
    if not root.exists():
        build_corpus(corpus, root, rows, span=span, size=size)
    out = work / f"{corpus}-out"
    start = time.perf_counter()
    report = convert_corpus(corpus, root, out, with_frames=with_frames, progress=False)
    seconds = time.perf_counter() - start
    stored = sum(f.stat().st_size for f in out.rglob("*.arrow"))
    return {
        "corpus": corpus,
        "frames": "onset..offset" if with_frames else "onset+apex",
        "rows": report.rows_written,
        "refused": len(report.refused),
        "seconds": round(seconds, 3),
        "rows_per_s": round(report.rows_written / seconds, 1),
        "arrow_mb": round(stored / 2**20, 2),
    }


def print_table(results: list[dict]) -> None:
    print(f"{'corpus':<8} {'frames':<14} {'rows':>5} {'seconds':>8} {'rows/s':>8} {'arrow MB':>9}")
    for r in results:
        print(f"{r['corpus']:<8} {r['frames']:<14} {r['rows']:>5} {r['seconds']:>8.2f} {r['rows_per_s']:>8.1f} "
              f"{r['arrow_mb']:>9.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200, help="samples per corpus")
    parser.add_argument("--span", type=int, default=5, help="frames from onset to offset")
    parser.add_argument("--size", type=int, default=64, help="frame width and height in pixels")
    parser.add_argument("--corpora", nargs="+", default=sorted(BUILDERS), choices=sorted(BUILDERS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "converters.json")
    args = parser.parse_args(argv)

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-converters-") as tmp:
        for corpus in args.corpora:
            for with_frames in (False, True):
                results.append(benchmark(corpus, args.rows, args.span, args.size, with_frames, Path(tmp)))
    print_table(results)
    machine = {"processor": platform.machine(), "threads": os.cpu_count(), "python": platform.python_version()}
    settings = {"rows": args.rows, "span": args.span, "size": args.size}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "settings": settings, "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
