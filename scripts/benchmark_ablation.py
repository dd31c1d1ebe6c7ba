"""Ablation on the synthetic corpus: every row trained and tested under LOSO on the same folds, over several seeds.

Rows: the full model; without PTA's region mask (AU queries see every patch); without GDA (and so without GDLoss);
without GDLoss; without MiAUCL (a plain linear BCE head, no text tower); MiAUCL as the paper wrote it (the other AUs'
true prompts as negatives); the whole-face baseline (CLIP image embedding + linear layer); and
the full model under each other `input_mode`; last, the text tower frozen. The "all-positive" row is the F1 of
predicting every AU present.

    python scripts/benchmark_ablation.py                  # the full run: 6 held-out subjects x 3 seeds per row
    python scripts/benchmark_ablation.py --quick          # a smoke run of the whole script (minutes; outputs/ablation-quick)
    python scripts/benchmark_ablation.py --rows GDLoss    # rerun only the rows whose name holds a word

A row is the mean +- std over seeds of the LOSO mean F1 (binary F1 of the positive class, pooled over the held-out
subjects; thresholds fixed at 0.5). The corpus is the same for every seed; the seed sets the initial weights and the
batch order. A part *earns its place* when removing it lowers the mean by more than the larger of the two rows' seed
std; otherwise the table says it is not shown to help. Each (row, seed) run is kept, so an
interrupted run resumes where it stopped and `--rows` reruns replace only their rows. The (row, seed) results are
small JSON files in `--out/seeds/` (committed with the table); the bulky fold runs stay in `--work`.

Frames go through the face pipeline as `microau predict` serves them (the collator calls the same `FacePreparer`;
tests/test_one_path.py checks that the Trainer's inputs and probabilities equal `MicroAUPredictor`'s).
Writes `ablation.json`, `ablation.md` and `ablation.png` to `--out`.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import dataclass
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

FULL = "full model (the quickstart's: difference image, text tower trained)"
# Every row is the preset's model (for `tiny` a trained text tower: a random one, frozen, embeds all prompts almost
# alike and MiAUCL has nothing to pull towards) with one part changed. In the order they are run: the parts in
# question first, so a run stopped early has answered them.
ROWS = [
    (FULL, {}, None),
    ("without GDLoss", {"use_gd_loss": False}, None),
    ("without MiAUCL (linear BCE head)", {"use_miaucl": False}, None),
    ("MiAUCL as the paper wrote it (true prompts as negatives)", {"miaucl_mask_true_prompts": False}, None),
    ("without GDA (and so without GDLoss)", {"use_gda": False}, None),
    ("without PTA region mask", {"use_pta": False}, None),
    ("whole-face baseline (image embedding + linear)", {}, WholeFaceBaseline),
    ("input_mode=motion (token difference)", {"input_mode": "motion"}, None),
    ("input_mode=apex", {"input_mode": "apex"}, None),
    ("input_mode=apex+difference", {"input_mode": "apex+difference"}, None),
    ("full model, text tower frozen", {"freeze_text_encoder": True}, None),
]
ALL_POSITIVE = "all-positive guess (reference)"


@dataclass(frozen=True)
class Plan:
    """What every row is run with; a (row, seed) run kept on disk is reused only under the same plan."""

    num_samples: int
    folds: int
    epochs: float
    preset: str
    aus: str
    seeds: tuple[int, ...]
    corpus_seed: int = 0

    def record(self) -> dict:
        """The plan as results record it (JSON-ready)."""
        return {**self.__dict__, "seeds": list(self.seeds)}

    def command(self, out: Path, quick: bool) -> str:
        if quick:
            return f"python scripts/benchmark_ablation.py --quick --out {out}"
        seeds = " ".join(str(s) for s in self.seeds)
        return (f"python scripts/benchmark_ablation.py --num-samples {self.num_samples} --folds {self.folds} "
                f"--epochs {self.epochs:g} --preset {self.preset} --aus {self.aus} --seeds {seeds} --out {out}")


QUICK = Plan(num_samples=96, folds=2, epochs=1.0, preset="test", aus="casme2", seeds=(0, 1))
QUICK_FOLDER = Path("outputs/ablation-quick")


def _run_name(name: str) -> str:
    return name.split(" (")[0].replace(" ", "_").replace("=", "-")


def _kept_path(name: str, seed: int, out: Path) -> Path:
    return out / "seeds" / f"{_run_name(name)}-seed{seed}.json"


def _row_record(overrides: dict, factory) -> dict:
    """What makes a row the row it is: a kept result made with other settings under the same name is not reused."""
    return {"overrides": overrides, "model": (factory or MicroAUClipModel).__name__}


def kept_result(name: str, overrides: dict, factory, plan: Plan, seed: int, out: Path) -> dict | None:
    """A (row, seed) result kept in ``out/seeds/`` (small JSON) under the same plan and row settings, else ``None``."""
    kept = _kept_path(name, seed, out)
    if kept.exists():
        summary = json.loads(kept.read_text())
        if summary.get("plan") == plan.record() and summary.get("row") == _row_record(overrides, factory):
            return summary
    return None


def run_row_seed(dataset, name, overrides, factory, plan: Plan, seed: int, out: Path, work: Path) -> dict:
    """One row at one seed, or its kept result when the plan and the row's settings are the same."""
    if (summary := kept_result(name, overrides, factory, plan, seed, out)) is not None:
        return summary
    config = make_config(plan.aus, preset=plan.preset, **overrides)
    settings = ProtocolSettings(max_folds=plan.folds, epochs=plan.epochs, seed=seed,
                                training_overrides={"disable_tqdm": True, "logging_steps": 50})
    start = time.perf_counter()
    results = run_protocol(dataset, config, build_processor(config), work / "runs" / _run_name(name) / f"seed{seed}",
                           settings, model_factory=factory or MicroAUClipModel)
    summary = {"plan": plan.record(), "row": _row_record(overrides, factory), "seed": seed,
               "protocol": results["protocol"], "mean_f1": results["scores"]["mean_f1"],
               "per_au_f1": {k: v["f1"] for k, v in results["scores"]["per_au"].items()},
               "invented_au_rate": results["invented_aus"]["overall"], "emotion": results["emotion"],
               "seconds": round(time.perf_counter() - start, 1)}
    atomic_write_text(_kept_path(name, seed, out), json.dumps(summary, indent=2))
    return summary


def _spread(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise_row(name: str, runs: list[dict]) -> dict:
    """Mean +- std over seeds of the row's LOSO mean F1, per AU too."""
    mean, std = _spread([r["mean_f1"] for r in runs])
    per_au = {au: _spread([r["per_au_f1"][au] for r in runs])[0] for au in runs[0]["per_au_f1"]}
    return {"name": name, "mean_f1": mean, "std_f1": std, "seeds": [r["seed"] for r in runs],
            "per_seed_f1": [r["mean_f1"] for r in runs], "per_au_f1": per_au,
            "invented_au_rate": statistics.fmean(r["invented_au_rate"] for r in runs),
            "protocol": runs[0]["protocol"], "seconds": sum(r["seconds"] for r in runs)}


def verdict(row: dict, full: dict) -> str:
    """Does the part this row removes (or replaces) earn its place? Only a drop beyond the seeds' spread counts."""
    if row["name"] == full["name"] or "std_f1" not in row:
        return ""
    if min(len(row["seeds"]), len(full["seeds"])) < 2:
        return "one seed: no verdict"
    drop = full["mean_f1"] - row["mean_f1"]
    noise = max(row["std_f1"], full["std_f1"])
    if drop > noise:
        return f"full model better by {drop:.3f} (> std {noise:.3f})"
    if -drop > noise:
        return f"this row better by {-drop:.3f} (> std {noise:.3f})"
    return f"no difference shown ({drop:+.3f} within std {noise:.3f})"


def all_positive_f1(dataset, aus, folds) -> float:
    labels = au_labels([dataset[i]["aus"] for fold in folds for i in fold.test_indices], aus).numpy()
    rate = labels.mean(0)
    return float(np.mean(2 * rate / (1 + rate)))


def parse_arguments() -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=int, default=480)
    parser.add_argument("--folds", type=int, default=6, help="held-out subjects (LOSO folds) per run")
    parser.add_argument("--epochs", type=float, default=6.0, help="6 keeps the full run near 2 h on 2 cores")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--aus", default="casme2")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 96 samples, 2 folds, 1 epoch, 2 seeds")
    parser.add_argument("--rows", nargs="*", help="only rows whose name contains one of these words")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: write the table from the (row, seed) results already kept")
    parser.add_argument("--out", type=Path,
                        help=f"the table, JSON and chart (default docs/ablation; with --quick, {QUICK_FOLDER})")
    parser.add_argument("--work", type=Path, help="the corpus and every (row, seed) run, kept for resuming "
                                                  f"(default outputs/ablation; with --quick, {QUICK_FOLDER}/work)")
    args = parser.parse_args()
    # A smoke run writes apart: under the full run's file names it would replace the committed table and the kept
    # (row, seed) results of the full plan, and share the fold folders of a full run going on at the same time.
    args.out = args.out or (QUICK_FOLDER if args.quick else Path("docs/ablation"))
    args.work = args.work or (QUICK_FOLDER / "work" if args.quick else Path("outputs/ablation"))
    plan = QUICK if args.quick else Plan(args.num_samples, args.folds, args.epochs, args.preset, args.aus,
                                         tuple(args.seeds))
    return plan, args


def main() -> None:
    plan, args = parse_arguments()
    corpus = args.work / f"synthetic-{plan.aus}-n{plan.num_samples}-seed{plan.corpus_seed}"
    if (corpus / "dataset_info.json").exists():
        dataset = load_from_disk(str(corpus))
    else:
        dataset = make_synthetic_corpus(corpus, num_samples=plan.num_samples, seed=plan.corpus_seed, aus=plan.aus)
    folds = loso_folds(dataset, plan.folds)
    rows = []
    for name, overrides, factory in ROWS:
        if args.rows and not any(word in name for word in args.rows):
            continue
        if args.report_only:
            runs = [r for seed in plan.seeds if (r := kept_result(name, overrides, factory, plan, seed, args.out))]
            if not runs:
                continue
        else:
            runs = [run_row_seed(dataset, name, overrides, factory, plan, seed, args.out, args.work)
                    for seed in plan.seeds]
        rows.append(summarise_row(name, runs))
        print(f"{name:<50} mean F1 {rows[-1]['mean_f1']:.3f} +- {rows[-1]['std_f1']:.3f} "
              f"({rows[-1]['seconds']:.0f} s over {len(runs)} seeds)", flush=True)
    rows.append({"name": ALL_POSITIVE, "mean_f1": all_positive_f1(dataset, make_config(plan.aus, "test").aus, folds)})
    rows = _merge_with_earlier(rows, args.out / "ablation.json", plan)
    _write(rows, plan, args, dataset, folds)


def _merge_with_earlier(rows: list[dict], path: Path, plan: Plan) -> list[dict]:
    """Rows rerun with `--rows` replace their earlier selves; the others are kept, in the order of ROWS, when they
    were run under the same plan (never a mix of plans in one table)."""
    if not path.exists():
        return rows
    earlier = json.loads(path.read_text())
    if earlier.get("plan") != plan.record():
        return rows
    merged = {row["name"]: row for row in earlier["rows"]}
    merged.update({row["name"]: row for row in rows})
    order = [name for name, _, _ in ROWS] + [ALL_POSITIVE]
    return [merged[name] for name in order if name in merged]


def _table(rows: list[dict]) -> list[str]:
    full = next((row for row in rows if row["name"] == FULL), None)
    names = list(rows[0].get("per_au_f1", {}))
    lines = ["| row | mean F1 +- std (seeds run) | invented AUs | verdict | " + " | ".join(names) + " |",
             "|---|---:|---:|---|" + "---:|" * len(names)]
    for row in rows:
        spread = (f"{row['mean_f1']:.3f} +- {row['std_f1']:.3f} ({len(row['seeds'])})" if "std_f1" in row
                  else f"{row['mean_f1']:.3f}")
        invented = f"{row['invented_au_rate']:.3f}" if "invented_au_rate" in row else ""
        per_au = " | ".join(f"{row['per_au_f1'][n]:.2f}" if "per_au_f1" in row else "" for n in names)
        lines.append(f"| {row['name']} | {spread} | {invented} | {verdict(row, full) if full else ''} | {per_au} |")
    return lines


def _write(rows, plan: Plan, args, dataset, folds) -> None:
    held_out = [fold.name for fold in folds]
    subjects = len(set(dataset["subject"]))
    header = (f"LOSO, {len(held_out)} of {subjects} subjects held out ({', '.join(held_out)}), on the synthetic corpus "
              f"({len(dataset)} samples), preset `{plan.preset}`, {plan.epochs:g} epochs, seeds "
              f"{', '.join(str(s) for s in plan.seeds)}: mean +- std over seeds of the pooled mean binary F1 "
              f"(threshold 0.5). Random initial weights, the preset's settings (for `tiny`, the text tower trains). "
              f"Frames go through the face "
              f"pipeline, as `predict` serves them. Invented AUs: share of (single-AU sample, other AU) pairs called "
              f"present. Verdict: a difference counts only beyond the "
              f"larger seed std of the two rows.")
    command = plan.command(args.out, args.quick)
    lines = [header, "", *_table(rows), "",
             f"Made with: `{command}` ({sum(r.get('seconds', 0) for r in rows) / 60:.0f} min of training for "
             f"these rows)", ""]
    machine = {"processor": platform.processor() or platform.machine(), "torch": torch.__version__,
               "threads": torch.get_num_threads()}
    payload = {"command": command, "machine": machine, "held_out": held_out,
               "plan": plan.record(), "rows": rows}
    atomic_write_text(args.out / "ablation.json", json.dumps(payload, indent=2))
    atomic_write_text(args.out / "ablation.md", "\n".join(lines))
    plot_ablation(rows, args.out / "ablation.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
