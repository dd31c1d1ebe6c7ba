"""Ablation on the synthetic corpus: every row trained and tested under LOSO on the same folds with the same seed.

Rows: the full model; without PTA's region mask (AU queries see every patch); without GDA; without GDLoss; without
MiAUCL (a plain linear BCE head, no text tower); the whole-face baseline (CLIP image embedding + linear layer); and
the full model under each other `input_mode`. The "all-positive" row is the F1 of predicting every AU present.

    python scripts/benchmark_ablation.py --num-samples 480 --folds 3 --epochs 8 --out docs/ablation

Writes `ablation.json`, `ablation.md` and `ablation.png` to `--out`.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from datasets import load_from_disk

from microau_hf.atomic import atomic_write_text
from microau_hf.data.synthetic import make_synthetic_corpus
from microau_hf.face.pipeline import build_processor
from microau_hf.modeling_micro_au_clip import MicroAUClipModel
from microau_hf.presets import make_config
from microau_hf.train.baselines import WholeFaceBaseline
from microau_hf.train.collator import au_labels
from microau_hf.train.loso import ProtocolSettings, run_protocol
from microau_hf.train.plots import plot_ablation
from microau_hf.train.protocols import loso_folds

# Every row freezes the text tower (the default for a pretrained CLIP) except the one that says it trains it, so the
# table does not move when a preset's default changes.
FROZEN = {"freeze_text_encoder": True}
ROWS = [
    ("full model (difference image, text tower frozen)", FROZEN, None),
    ("without PTA region mask", {**FROZEN, "use_pta": False}, None),
    ("without GDA", {**FROZEN, "use_gda": False}, None),
    ("without GDLoss", {**FROZEN, "use_gd_loss": False}, None),
    ("without MiAUCL (linear BCE head)", {**FROZEN, "use_miaucl": False}, None),
    ("full model, text tower trained too", {"freeze_text_encoder": False}, None),
    ("whole-face baseline (image embedding + linear)", FROZEN, WholeFaceBaseline),
    ("input_mode=motion (token difference)", {**FROZEN, "input_mode": "motion"}, None),
    ("input_mode=apex", {**FROZEN, "input_mode": "apex"}, None),
    ("input_mode=apex+difference", {**FROZEN, "input_mode": "apex+difference"}, None),
]


def _micro_au_clip(clip: str | None):
    if clip is None:
        return MicroAUClipModel
    return lambda config: MicroAUClipModel.from_clip(clip, config)


def all_positive_f1(dataset, aus, folds) -> float:
    labels = au_labels([dataset[i]["aus"] for fold in folds for i in fold.test_indices], aus).numpy()
    rate = labels.mean(0)
    return float(np.mean(2 * rate / (1 + rate)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=int, default=480)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=float, default=8.0)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--aus", default="casme2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clip", help="copy the towers from this CLIP checkpoint (Hub id or folder) for every row")
    parser.add_argument("--rows", nargs="*", help="only rows whose name contains one of these words")
    parser.add_argument("--corpus", type=Path, default=Path("outputs/ablation/synthetic"))
    parser.add_argument("--out", type=Path, default=Path("docs/ablation"))
    args = parser.parse_args()

    if (args.corpus / "dataset_info.json").exists():
        dataset = load_from_disk(str(args.corpus))
    else:
        dataset = make_synthetic_corpus(args.corpus, num_samples=args.num_samples, seed=args.seed, aus=args.aus)
    folds = loso_folds(dataset, args.folds)
    settings = ProtocolSettings(max_folds=args.folds, epochs=args.epochs, seed=args.seed,
                                training_overrides={"disable_tqdm": True, "logging_steps": 50})
    rows = []
    for name, overrides, factory in ROWS:
        if args.rows and not any(word in name for word in args.rows):
            continue
        config = make_config(args.aus, preset=args.preset, **overrides)
        start = time.perf_counter()
        results = run_protocol(dataset, config, build_processor(config), args.out / "runs" / name.split(" (")[0].replace(" ", "_"),
                               settings, model_factory=factory or _micro_au_clip(args.clip))
        rows.append({"name": name, "mean_f1": results["scores"]["mean_f1"],
                     "per_au_f1": {k: v["f1"] for k, v in results["scores"]["per_au"].items()},
                     "mean_macro_f1_for_comparison": results["scores"]["mean_macro_f1_for_comparison"],
                     "invented_au_rate": results["invented_aus"]["overall"],
                     "neutral_false_rate": results["invented_aus"]["neutral"], "protocol": results["protocol"],
                     "emotion": results["emotion"], "seconds": round(time.perf_counter() - start, 1)})
        print(f"{name:<50} mean F1 {rows[-1]['mean_f1']:.3f}  ({rows[-1]['seconds']:.0f} s)", flush=True)
    rows.append({"name": "all-positive guess (reference)", "mean_f1": all_positive_f1(dataset, make_config(args.aus, "test").aus, folds)})
    _write(_merge_with_earlier(rows, args.out / "ablation.json"), args, dataset, folds)


def _merge_with_earlier(rows: list[dict], path: Path) -> list[dict]:
    """Rows rerun with `--rows` replace their earlier selves; the others are kept, in the order of ROWS."""
    if not path.exists():
        return rows
    merged = {row["name"]: row for row in json.loads(path.read_text())["rows"]}
    merged.update({row["name"]: row for row in rows})
    order = [name for name, _, _ in ROWS] + ["all-positive guess (reference)"]
    return [merged[name] for name in order if name in merged]


def _write(rows, args, dataset, folds) -> None:
    held_out = [fold.name for fold in folds]
    subjects = len(set(dataset["subject"]))
    header = (f"LOSO ({len(held_out)} of {subjects} subjects held out) on the synthetic corpus ({len(dataset)} samples, "
              f"{subjects} subjects; "
              f"held out: {', '.join(held_out)}), preset `{args.preset}`, {args.epochs:g} epochs, seed {args.seed}. "
              f"Mean binary F1 of the positive class, pooled over the held-out subjects. Random initial weights; the text "
              f"tower is frozen except in the row that says it is trained. Frames go through the face pipeline, as "
              f"`predict` serves them. Invented AUs: share of (single-AU sample, other AU) pairs called present.")
    names = list(rows[0]["per_au_f1"]) if "per_au_f1" in rows[0] else []
    lines = [header, "", "| row | mean F1 | invented AUs | " + " | ".join(n.split(" ")[0] for n in names) + " |",
             "|---|---:|---:|" + "---:|" * len(names)]
    for row in rows:
        per_au = " | ".join(f"{row['per_au_f1'][n]:.2f}" for n in names) if "per_au_f1" in row else " | ".join("" for _ in names)
        invented = f"{row['invented_au_rate']:.3f}" if "invented_au_rate" in row else ""
        lines.append(f"| {row['name']} | {row['mean_f1']:.3f} | {invented} | {per_au} |")
    command = ("python scripts/benchmark_ablation.py " + f"--num-samples {args.num_samples} --folds {args.folds} "
               f"--epochs {args.epochs:g} --preset {args.preset} --aus {args.aus} --seed {args.seed} --out {args.out}")
    lines += ["", f"Made with: `{command}`", ""]
    machine = {"processor": platform.processor() or platform.machine(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    atomic_write_text(args.out / "ablation.json", json.dumps({"command": command, "machine": machine, "held_out": held_out,
                                                              "rows": rows}, indent=2))
    atomic_write_text(args.out / "ablation.md", "\n".join(lines))
    plot_ablation(rows, args.out / "ablation.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
