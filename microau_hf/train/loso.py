"""Run a protocol end to end: one fresh model per fold, trained with the `Trainer`, predictions pooled, F1 once.

Thresholds are fixed at 0.5 or chosen per AU on the fold's *training* predictions, never on its test samples.
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

from ..atomic import atomic_directory, atomic_write_text
from ..configuration_micro_au_clip import MicroAUClipConfig
from ..data.corpus_faces import check_corpus_faces
from ..face.pipeline import FacePreparer, LandmarkerChoice
from ..emotion import evaluate_emotions
from ..modeling_micro_au_clip import MicroAUClipModel
from .collator import au_labels, check_dataset
from .metrics import au_detection_scores, best_thresholds, invented_au_rates, markdown_table
from .protocols import Fold, leave_one_corpus_out_folds, loso_folds
from .trainer import make_trainer, training_arguments

ModelFactory = Callable[[MicroAUClipConfig], torch.nn.Module]
PROTOCOLS = {"loso": loso_folds, "loco": leave_one_corpus_out_folds}


@dataclass
class ProtocolSettings:
    protocol: str = "loso"
    max_folds: int | None = None
    epochs: float = 10.0
    max_steps: int = -1
    batch_size: int = 32
    learning_rate: float = 1e-3  # measured on the synthetic corpus, user path: LOSO mean F1 0.699 vs 0.629 at 5e-4
    threshold: str = "fixed"  # "fixed" (0.5) or "train" (per-AU best F1 on the training fold)
    seed: int = 0
    pre_aligned: bool = False  # frames are aligned face crops: canonical template regions, no landmark model
    training_overrides: dict[str, Any] = field(default_factory=dict)


def positive_weights(labels: torch.Tensor, cap: float = 10.0) -> list[float]:
    """BCE positive weight per AU: negatives / positives on the training split, capped so a rare AU cannot dominate."""
    positives = labels.sum(0)
    weights = (labels.shape[0] - positives) / positives.clamp(min=1)
    return weights.clamp(min=1.0, max=cap).tolist()


def _probabilities(trainer, dataset: Dataset) -> np.ndarray:
    logits = trainer.predict(dataset).predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    return 1 / (1 + np.exp(-logits))


def train_fold(
    config: MicroAUClipConfig, processor: Any, train: Dataset, settings: ProtocolSettings, output_dir: Path,
    model_factory: ModelFactory = MicroAUClipModel, preparer: FacePreparer | None = None,
):
    """Train one fresh model on `train` (rows the face pipeline can use); returns the Trainer (its `.model` is the
    trained model)."""
    config = copy.deepcopy(config)
    config.au_pos_weight = positive_weights(au_labels(train["aus"], config.aus))
    torch.manual_seed(settings.seed)
    model = model_factory(config)
    args = training_arguments(
        str(output_dir),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        seed=settings.seed,
        **settings.training_overrides,
    )
    trainer = make_trainer(model, processor, train, args, preparer=preparer, landmarker=_landmarker(settings))
    trainer.train()
    return trainer


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
    if settings.threshold not in ("fixed", "train"):
        raise ValueError(f"threshold must be 'fixed' or 'train', got {settings.threshold!r}")
    check_dataset(dataset, config.aus)
    output_dir = Path(output_dir)
    # Rows the face pipeline refuses (no face, unreadable frames) are never trained on nor scored; the results say so.
    faces = check_corpus_faces(dataset, _landmarker(settings), "dataset")
    dataset = faces.usable_rows(dataset)
    preparer = faces.preparer(config)
    folds = PROTOCOLS[settings.protocol](dataset, settings.max_folds)
    probabilities, predictions, indices, fold_rows = [], [], [], []
    for fold in tqdm(folds, desc=f"{settings.protocol.upper()} folds", unit="fold"):
        probs, preds, row, model = _run_fold(fold, dataset, config, processor, settings, output_dir, model_factory,
                                             preparer)
        probabilities.append(probs), predictions.append(preds), indices.extend(fold.test_indices), fold_rows.append(row)
    tested = dataset.select(indices)
    labels = au_labels(tested["aus"], config.aus).numpy()
    probabilities, predictions = np.concatenate(probabilities), np.concatenate(predictions)
    groups = len(set(dataset["dataset" if settings.protocol == "loco" else "subject"]))
    unit = "corpora" if settings.protocol == "loco" else "subjects"
    results = {
        # Coverage is part of the name: a partial LOSO must never read as a full one.
        "protocol": f"{settings.protocol.upper()}, {len(folds)} of {groups} {unit} held out",
        "face_path": "frames through the face pipeline (detection, alignment on the onset, landmark regions), "
                     "as MicroAUPredictor serves them" if faces.landmarker is not None else
                     "pre-aligned crops, canonical template regions",
        "dataset": sorted(set(tested["dataset"])) if "dataset" in tested.column_names else None,
        "aus": list(config.aus),
        "input_mode": config.input_mode,
        "settings": asdict(settings),
        "face_pipeline": faces.report(),
        "folds": fold_rows,
        "scores": au_detection_scores(labels, predictions, config.au_names),
        "invented_aus": invented_au_rates(labels, predictions, config.au_names),
        "emotion": evaluate_emotions(
            probabilities, config.aus,
            tested["emotion"] if "emotion" in tested.column_names else [None] * len(tested),
            tested["objective_class"] if "objective_class" in tested.column_names else [None] * len(tested),
        ),
    }
    write_results(results, output_dir)
    if save_model_to is not None:
        with atomic_directory(save_model_to) as staged:
            model.save_pretrained(staged)
            processor.save_pretrained(staged)
            write_results(results, staged)
    return results


def _landmarker(settings: ProtocolSettings) -> LandmarkerChoice:
    return None if settings.pre_aligned else "auto"


def _run_fold(fold: Fold, dataset, config, processor, settings, output_dir, model_factory, preparer):
    train, test = dataset.select(fold.train_indices), dataset.select(fold.test_indices)
    trainer = train_fold(config, processor, train, settings, output_dir / "folds" / _safe(fold.name), model_factory,
                         preparer)
    thresholds = np.full(config.num_aus, 0.5)
    if settings.threshold == "train":
        thresholds = best_thresholds(au_labels(train["aus"], config.aus).numpy(), _probabilities(trainer, train))
    probabilities = _probabilities(trainer, test)
    row = {"held_out": fold.name, "train_samples": len(train), "test_samples": len(test),
           "thresholds": thresholds.round(3).tolist()}
    return probabilities, probabilities >= thresholds, row, trainer.model


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_results(results: dict[str, Any], output_dir: Path) -> None:
    atomic_write_text(output_dir / "results.json", json.dumps(results, indent=2))
    lines = [markdown_table(results["scores"], f"{results['protocol']} on {', '.join(results['dataset'] or [])}"), ""]
    for kind, row in results["emotion"].items():
        lines.append(f"- label-free {kind.replace('_', ' ')}: UF1 {row['uf1']:.3f}, UAR {row['uar']:.3f} "
                     f"({row['samples']} samples, {row['unscorable_labels']} with labels no prototype covers)")
    atomic_write_text(output_dir / "results.md", "\n".join(lines) + "\n")
