"""Robustness across renderings: train on one family of synthetic recordings, test on families it never saw.

The training family renders Gaussian-kernel motion at JPEG quality 80-95 with faces at an interocular distance of
40-90 px. The test sets use held-out subjects (faces the model never saw) and change one rendering factor at a time
(warp kernel, amplitude, JPEG quality, face scale), then all of them at once. Each model is trained on the training
family and scored through the public path (``MicroAUPredictor.predict_pairs`` on the frames), so a drop is what a
user would see. Two training variants show what the per-sample motion jitter buys: the catalogue's exact fields
versus fields whose kernel width, shape, direction and anchors are drawn per sample.

    python scripts/benchmark_robustness.py --train-samples 400 --test-samples 96 --epochs 8 --out benchmarks/robustness.json

Prints a table (mean binary F1 per test set, and the drop from the in-family test) and writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
from datasets.utils.logging import disable_progress_bar  # noqa: E402

from microau_hf.data.au_motion import EXACT  # noqa: E402
from microau_hf.data.corpus_faces import check_corpus_faces  # noqa: E402
from microau_hf.data.faces import load_faces  # noqa: E402
from microau_hf.data.render import Rendering  # noqa: E402
from microau_hf.data.synthetic import make_synthetic_corpus  # noqa: E402
from microau_hf.face.pipeline import build_processor  # noqa: E402
from microau_hf.inference import MicroAUPredictor  # noqa: E402
from microau_hf.presets import make_config  # noqa: E402
from microau_hf.train.collator import au_labels  # noqa: E402
from microau_hf.train.loso import ProtocolSettings, train_fold  # noqa: E402
from microau_hf.train.metrics import au_detection_scores  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
JITTER = Rendering().field
TRAIN_FAMILY = Rendering(iod_px=(40.0, 90.0), jpeg_quality=(80, 95), field=JITTER)
TRAIN_AMPLITUDE = (1.0, 2.5)
#: Test sets: name -> (rendering, amplitude); each changes one factor of the training family, the last all of them.
COSINE = dataclasses.replace(JITTER, kernel="cosine")
TEST_SETS = {
    "in family (new faces)": (TRAIN_FAMILY, TRAIN_AMPLITUDE),
    "cosine warp kernel": (dataclasses.replace(TRAIN_FAMILY, field=COSINE), TRAIN_AMPLITUDE),
    "amplitude 0.7-1.5 px": (TRAIN_FAMILY, (0.7, 1.5)),
    "JPEG quality 50-70": (dataclasses.replace(TRAIN_FAMILY, jpeg_quality=(50, 70)), TRAIN_AMPLITUDE),
    "small faces (IOD 30-40 px)": (dataclasses.replace(TRAIN_FAMILY, iod_px=(30.0, 40.0)), TRAIN_AMPLITUDE),
    "all four at once": (Rendering(iod_px=(30.0, 40.0), jpeg_quality=(50, 70), field=COSINE), (0.7, 1.5)),
}
VARIANTS = {"motion jittered per sample (default)": JITTER, "catalogue's exact motion": EXACT}


def score(predictor: MicroAUPredictor, dataset, aus) -> float:
    predictions = predictor.predict_pairs([(row["onset"], row["apex"]) for row in dataset], batch_size=32)
    kept = [i for i, p in enumerate(predictions) if p.ok]
    labels = au_labels([dataset[i]["aus"] for i in kept], aus).numpy()
    present = np.stack([predictions[i].probabilities for i in kept]) >= predictor.threshold
    return au_detection_scores(labels, present)["mean_f1"]


def run(args: argparse.Namespace) -> list[dict]:
    faces = load_faces()
    train_faces, test_faces = faces[: -args.test_subjects], faces[-args.test_subjects:]
    config = make_config("casme2", preset=args.preset)
    processor = build_processor(config)
    tests = {name: make_synthetic_corpus(num_samples=args.test_samples, seed=args.seed + 1, faces=test_faces,
                                         rendering=rendering, amplitude_px=amplitude)
             for name, (rendering, amplitude) in TEST_SETS.items()}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-robustness-") as tmp:
        for variant, style in VARIANTS.items():
            start = time.perf_counter()
            train = make_synthetic_corpus(num_samples=args.train_samples, seed=args.seed, faces=train_faces,
                                          rendering=dataclasses.replace(TRAIN_FAMILY, field=style),
                                          amplitude_px=TRAIN_AMPLITUDE)
            faces_found = check_corpus_faces(train, progress=False)
            train = faces_found.usable_rows(train)
            settings = ProtocolSettings(epochs=args.epochs, seed=args.seed,
                                        training_overrides={"disable_tqdm": True, "logging_steps": 1000})
            trainer = train_fold(config, processor, train, settings, Path(tmp) / "run",
                                 preparer=faces_found.preparer(config))
            predictor = MicroAUPredictor(trainer.model, processor, device="cpu")
            scores = {name: round(score(predictor, data, config.aus), 3) for name, data in tests.items()}
            rows.append({"training": variant, "mean_f1": scores, "seconds": round(time.perf_counter() - start, 1)})
            print(f"{variant}: {scores} ({rows[-1]['seconds']:.0f} s)", flush=True)
    return rows


def print_table(rows: list[dict]) -> None:
    names = list(TEST_SETS)
    print(f"\n{'test set':<28} " + " ".join(f"{row['training']:>38}" for row in rows))
    for name in names:
        cells = []
        for row in rows:
            value, base = row["mean_f1"][name], row["mean_f1"][names[0]]
            cells.append(f"{value:.3f}" + (f" (drop {base - value:+.3f})" if name != names[0] else " " * 14))
        print(f"{name:<28} " + " ".join(f"{cell:>38}" for cell in cells))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-samples", type=int, default=400)
    parser.add_argument("--test-samples", type=int, default=96, help="samples per test set")
    parser.add_argument("--test-subjects", type=int, default=3, help="faces held out of training (the last ones)")
    parser.add_argument("--epochs", type=float, default=8.0)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "robustness.json")
    args = parser.parse_args(argv)
    disable_progress_bar()
    rows = run(args)
    print_table(rows)
    machine = {"processor": platform.machine(), "threads": os.cpu_count(), "python": platform.python_version()}
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    report = {"machine": machine, "settings": settings, "metric": "mean binary F1 (positive class) through "
              "MicroAUPredictor.predict_pairs, threshold 0.5", "test_sets": list(TEST_SETS), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
