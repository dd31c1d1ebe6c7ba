"""Run a protocol end to end: one fresh model per fold, trained with the `Trainer`, predictions pooled, F1 once.

Thresholds are fixed at 0.5, or chosen per AU on an inner split by subject of the fold's training subjects
(`inner_thresholds`): never on the fold's test samples, and never on a model's predictions of its own training rows.
Emotion estimates come from the pooled AU probabilities through the prototypes; emotion labels are only compared with.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm
from transformers.trainer_callback import PrinterCallback

from ..atomic import atomic_directory, atomic_write_text
from ..checkpoints import write_training_data
from ..configuration_micro_au_clip import MicroAUClipConfig
from ..data.corpus_faces import check_corpus_faces
from ..face.pipeline import FacePreparer, LandmarkerChoice
from ..emotion import evaluate_emotions, summary_line
from ..modeling_micro_au_clip import MicroAUClipModel, au_probabilities
from .collator import au_labels, check_dataset
from .metrics import au_detection_scores, best_thresholds, invented_au_rates, markdown_table
from .protocols import Fold, leave_one_corpus_out_folds, loso_folds, subject_keys
from .recipe import Recipe
from .trainer import make_trainer, training_arguments

ModelFactory = Callable[[MicroAUClipConfig], torch.nn.Module]
PROTOCOLS = {"loso": loso_folds, "loco": leave_one_corpus_out_folds}
EVALUATION_SCHEMA = "micro-au-clip/evaluation"


@dataclass
class ProtocolSettings:
    protocol: str = "loso"
    max_folds: int | None = None
    epochs: float = 10.0
    max_steps: int = -1
    batch_size: int = 32
    learning_rate: float = 1e-3  # measured on the synthetic corpus, user path: LOSO mean F1 0.699 vs 0.629 at 5e-4
    threshold: str = "fixed"  # "fixed" (0.5) or "inner" (per-AU best F1 on inner held-out subjects: inner_thresholds)
    inner_subjects: int = 2  # with threshold="inner": training subjects each fold's inner model leaves out
    seed: int = 0
    pre_aligned: bool = False  # frames are aligned face crops: canonical template regions, no landmark model
    training_overrides: dict[str, Any] = field(default_factory=dict)


THRESHOLD_RULES = {"fixed": "0.5 for every AU",
                   "inner": "per AU, the best F1 on the predictions of an inner split by subject of the training fold"}


def _probabilities(trainer, dataset: Dataset) -> np.ndarray:
    logits = trainer.predict(dataset).predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    return au_probabilities(logits)


def train_fold(
    config: MicroAUClipConfig, processor: Any, train: Dataset, settings: ProtocolSettings, output_dir: Path,
    model_factory: ModelFactory = MicroAUClipModel, preparer: FacePreparer | None = None,
):
    """Train one fresh model on `train` (rows the face pipeline can use); returns the Trainer (its `.model` is the
    trained model)."""
    config = copy.deepcopy(config)  # the Trainer glue writes this training split's statistics into it
    torch.manual_seed(settings.seed)
    model = model_factory(config)
    args = training_arguments(
        str(output_dir),
        Recipe(learning_rate=settings.learning_rate),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        seed=settings.seed,
        **{"disable_tqdm": True, **settings.training_overrides},  # the protocol's own bar counts the folds
    )
    trainer = make_trainer(model, processor, train, args, preparer=preparer, landmarker=_landmarker(settings))
    # With its progress bar off, the Trainer prints each log dict ({'train_runtime': ...}) on stdout instead, between
    # the fold bar and the results; the logs stay in trainer.state.log_history.
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return trainer


@dataclass
class ProtocolRun:
    """What the one fold loop produced: the rows it used, the folds, and every fold's test predictions pooled."""

    dataset: Dataset  # the rows the face pipeline could use
    faces: Any  # the face pipeline's check of the corpus (data.corpus_faces.CorpusFaces)
    folds: list[Fold]
    fold_rows: list[dict[str, Any]]  # per fold: held out, sizes, thresholds (and the inner split)
    tested: Dataset  # the test rows of every fold, in fold order
    labels: np.ndarray  # (tested, K) multi-hot
    probabilities: np.ndarray
    predictions: np.ndarray
    model: torch.nn.Module  # the last fold's model


def run_folds(
    dataset: Dataset,
    config: MicroAUClipConfig,
    processor: Any,
    output_dir: str | Path,
    settings: ProtocolSettings,
    model_factory: ModelFactory = MicroAUClipModel,
    make_folds: Callable[[Dataset, int | None], list[Fold]] | None = None,
) -> ProtocolRun:
    """Train and test every fold (``make_folds``, default the folds of ``settings.protocol``): the one training loop
    every protocol runs through. Nothing is scored or written here."""
    if settings.threshold not in THRESHOLD_RULES:
        raise ValueError(f"threshold must be one of {sorted(THRESHOLD_RULES)}, got {settings.threshold!r} (thresholds "
                         f"are never chosen on a model's predictions of its own training rows)")
    check_dataset(dataset, config.aus)
    output_dir = Path(output_dir)
    # Rows the face pipeline refuses (no face, unreadable frames) are never trained on nor scored; the results say so.
    faces = check_corpus_faces(dataset, _landmarker(settings), "dataset")
    dataset = faces.usable_rows(dataset)
    preparer = faces.preparer(config)
    folds = (make_folds or PROTOCOLS[settings.protocol])(dataset, settings.max_folds)
    probabilities, predictions, indices, fold_rows = [], [], [], []
    for fold in tqdm(folds, desc=f"{settings.protocol.upper()} folds", unit="fold"):
        probs, preds, row, model = _run_fold(fold, dataset, config, processor, settings, output_dir, model_factory,
                                             preparer)
        probabilities.append(probs), predictions.append(preds), indices.extend(fold.test_indices), fold_rows.append(row)
    tested = dataset.select(indices)
    return ProtocolRun(dataset, faces, folds, fold_rows, tested, au_labels(tested["aus"], config.aus).numpy(),
                       np.concatenate(probabilities), np.concatenate(predictions), model)


def run_protocol(
    dataset: Dataset,
    config: MicroAUClipConfig,
    processor: Any,
    output_dir: str | Path,
    settings: ProtocolSettings | None = None,
    model_factory: ModelFactory = MicroAUClipModel,
    save_model_to: str | Path | None = None,
) -> dict[str, Any]:
    """Train and test every fold; write `results.json` and `results.md` to `output_dir`; return the results.

    With `save_model_to`, the last fold's model (trained on every subject but the one it was tested on) is saved there
    as a checkpoint, with its processor and the results.
    """
    settings = settings or ProtocolSettings()
    if settings.protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {settings.protocol!r}; protocols are {sorted(PROTOCOLS)}")
    run = run_folds(dataset, config, processor, output_dir, settings, model_factory)
    dataset, tested = run.dataset, run.tested
    groups = len(set(dataset["dataset"] if settings.protocol == "loco" else subject_keys(dataset)))  # as the folds
    unit = "corpora" if settings.protocol == "loco" else "subjects"
    results = {
        "schema": EVALUATION_SCHEMA,  # says who wrote the file: an earlier evaluation is replaced only with --overwrite
        # Coverage is part of the name: a partial LOSO must never read as a full one.
        "protocol": f"{settings.protocol.upper()}, {len(run.folds)} of {groups} {unit} held out",
        "face_path": face_path_text(run),
        "dataset": sorted(set(tested["dataset"])) if "dataset" in tested.column_names else None,
        "aus": list(config.aus),
        "input_mode": config.input_mode,
        "settings": asdict(settings),
        "threshold": threshold_record(settings, run.fold_rows),
        "face_pipeline": run.faces.report(),
        "folds": run.fold_rows,
        "scores": au_detection_scores(run.labels, run.predictions, config.au_names),
        "invented_aus": invented_au_rates(run.labels, run.predictions, config.au_names),
        "emotion": emotion_scores(run.probabilities, config.aus, tested),
    }
    write_results(results, Path(output_dir))
    if save_model_to is not None:
        save_fold_model(run, processor, results, save_model_to)
    return results


def face_path_text(run: ProtocolRun) -> str:
    """What results.json says of the frames' path to the model."""
    if run.faces.landmarker is not None:
        return ("frames through the face pipeline (detection, alignment on the onset, landmark regions), "
                "as MicroAUPredictor serves them")
    return "pre-aligned crops, canonical template regions"


def emotion_scores(probabilities: np.ndarray, aus, rows: Dataset) -> dict[str, Any]:
    """Label-free emotion and objective-class UF1/UAR of ``rows`` (with chance), from their AU probabilities."""
    def column(name: str) -> list:
        return rows[name] if name in rows.column_names else [None] * len(rows)

    return evaluate_emotions(probabilities, aus, column("emotion"), column("objective_class"))


def save_fold_model(run: ProtocolRun, processor: Any, results: dict[str, Any], save_model_to: str | Path) -> None:
    """The last fold's model as a checkpoint, with its processor, the results and the rows it was trained on."""
    with atomic_directory(save_model_to) as staged:
        run.model.save_pretrained(staged)
        processor.save_pretrained(staged)
        write_results(results, staged)
        write_training_data(staged, run.dataset.select(run.folds[-1].train_indices))  # the last fold's model


def _landmarker(settings: ProtocolSettings) -> LandmarkerChoice:
    return None if settings.pre_aligned else "auto"


def _run_fold(fold: Fold, dataset, config, processor, settings, output_dir, model_factory, preparer):
    train, test = dataset.select(fold.train_indices), dataset.select(fold.test_indices)
    folder = output_dir / "folds" / _safe(fold.name)
    row: dict[str, Any] = {"held_out": fold.name, "train_samples": len(train), "test_samples": len(test)}
    thresholds = np.full(config.num_aus, 0.5)
    if settings.threshold == "inner":  # from the training rows alone: the test rows are not passed
        thresholds, row["inner_split"] = inner_thresholds(config, processor, train, settings, folder / "inner",
                                                          model_factory, preparer)
    trainer = train_fold(config, processor, train, settings, folder, model_factory, preparer)
    probabilities = _probabilities(trainer, test)
    row["thresholds"] = thresholds.round(3).tolist()
    return probabilities, probabilities >= thresholds, row, trainer.model


def inner_split(train: Dataset, count: int, seed: int) -> tuple[list[int], list[int], list[str]]:
    """Split a fold's training rows by subject: (inner training indices, inner held-out indices, held-out subjects).

    ``count`` subjects are drawn with ``seed`` from the sorted subjects of ``train``; at least one is left to train on.
    """
    subjects = subject_keys(train)
    distinct = sorted(set(subjects))
    if not 1 <= count < len(distinct):
        raise ValueError(f"threshold='inner' holds out {count} of a fold's training subjects, but a fold trains on "
                         f"{len(distinct)}; use threshold='fixed' or set inner_subjects between 1 and "
                         f"{len(distinct) - 1}")
    held_out = sorted(np.random.default_rng(seed).choice(distinct, size=count, replace=False).tolist())
    inner_train = [i for i, s in enumerate(subjects) if s not in held_out]
    inner_test = [i for i, s in enumerate(subjects) if s in held_out]
    return inner_train, inner_test, held_out


def inner_thresholds(
    config: MicroAUClipConfig, processor: Any, train: Dataset, settings: ProtocolSettings, output_dir: Path,
    model_factory: ModelFactory = MicroAUClipModel, preparer: FacePreparer | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-AU thresholds for a fold's model, from its training rows alone, on predictions of unseen subjects.

    An inner model, trained exactly as the fold's model but without ``settings.inner_subjects`` of its training
    subjects, predicts those held-out subjects; each AU's threshold is the best F1 on those predictions
    (:func:`best_thresholds`), and is then applied to the fold's model trained on all its training subjects. Why
    not the fold's own predictions of its training rows: a model is most confident on the rows it fitted, so
    thresholds tuned there are too high for a new face. Why not a cheaper split of the fold's model: the fold's
    model is the one evaluated, and it must see all its training subjects. The price is one more training per fold;
    the held-out subjects stand in for the test subject with a model trained on ``inner_subjects`` fewer people.
    Returns the thresholds and a record of the split (held-out subjects, subjects trained on).
    """
    inner_train, inner_test, held_out = inner_split(train, settings.inner_subjects, settings.seed)
    trainer = train_fold(config, processor, train.select(inner_train), settings, output_dir, model_factory, preparer)
    held_out_rows = train.select(inner_test)
    thresholds = best_thresholds(au_labels(held_out_rows["aus"], config.aus).numpy(),
                                 _probabilities(trainer, held_out_rows))
    training_subjects = len(set(subject_keys(train)))
    return thresholds, {"held_out_subjects": held_out, "inner_training_subjects": training_subjects - len(held_out),
                        "fold_training_subjects": training_subjects, "held_out_samples": len(inner_test)}


def threshold_record(settings: ProtocolSettings, fold_rows: list[dict[str, Any]]) -> dict[str, str]:
    """What results.json says of the thresholds: the rule and the data it was applied to."""
    if settings.threshold == "fixed":
        return {"rule": THRESHOLD_RULES["fixed"], "source": "fixed; no data"}
    counts = sorted({row["inner_split"]["fold_training_subjects"] for row in fold_rows})
    trained = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return {"rule": THRESHOLD_RULES["inner"],
            "source": f"inner split of {trained} training subjects per fold: {settings.inner_subjects} held out, "
                      f"predicted by a model trained on the others; applied to the fold's model trained on all "
                      f"{trained} (test subjects never used)"}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_results(results: dict[str, Any], output_dir: Path) -> None:
    atomic_write_text(output_dir / "results.json", json.dumps(results, indent=2))
    lines = [markdown_table(results["scores"], f"{results['protocol']} on {', '.join(results['dataset'] or [])}"), ""]
    lines += [f"- {line}" for line in result_notes(results)]
    atomic_write_text(output_dir / "results.md", "\n".join(lines) + "\n")


def result_notes(results: dict[str, Any]) -> list[str]:
    """What a protocol's F1 table needs beside it: the threshold rule and the label-free emotion scores with chance."""
    threshold = results.get("threshold")
    lines = [f"thresholds: {threshold['rule']} ({threshold['source']})"] if threshold else []
    return lines + [summary_line(kind, row) for kind, row in results["emotion"].items()]
