"""`Trainer` glue: stock `TrainingArguments`, a collator, per-AU F1 as `compute_metrics`, and each loss term logged."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import evaluate
import numpy as np
import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments
from transformers.trainer import TRAINING_ARGS_NAME

from . import au_f1
from ..data.corpus_faces import check_corpus_faces
from ..face.pipeline import FacePreparer, LandmarkerChoice
from ..modeling_micro_au_clip import au_probabilities
from .collator import MicroAUCollator, au_labels, check_dataset
from .recipe import LOSS_TERMS, Recipe, decay_parameter_names, set_training_statistics


def training_arguments(output_dir: str, recipe: Recipe | None = None, **overrides: Any) -> TrainingArguments:
    """`TrainingArguments` following the training recipe (`recipe.py`), with the settings this model needs (custom
    inputs, no reporting service, CPU when no GPU); `overrides` set any other field."""
    defaults: dict[str, Any] = {
        "output_dir": output_dir,
        "use_cpu": not torch.cuda.is_available(),
        "report_to": "none",
        "remove_unused_columns": False,  # the collator reads the image columns itself
        "per_device_train_batch_size": 32,
        "per_device_eval_batch_size": 64,
        **(recipe or Recipe()).trainer_arguments(),
        "logging_steps": 10,
        "save_strategy": "no",
        "dataloader_num_workers": 0,
        "seed": 0,
    }
    return TrainingArguments(**{**defaults, **overrides})


def compute_metrics_function(au_names: Sequence[str], threshold: float | np.ndarray = 0.5):
    """`compute_metrics` for the Trainer: the package's `evaluate` module, loaded by path (works offline)."""
    metric = evaluate.load(au_f1.__file__)

    def compute_metrics(prediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        predicted = au_probabilities(logits) >= threshold
        scores = metric.compute(
            predictions=predicted.astype(int).tolist(), references=prediction.label_ids.astype(int).tolist(), au_names=list(au_names)
        )
        flat = {key: value for key, value in scores.items() if key.startswith("mean_")}
        flat.update({f"f1_{name}": row["f1"] for name, row in scores["per_au"].items()})
        return flat

    return compute_metrics


def keep_logits(outputs: Any, labels: torch.Tensor) -> torch.Tensor:
    """Evaluation keeps only the logits (not the AU tokens and attention maps) to save memory."""
    return outputs[0] if isinstance(outputs, (tuple, list)) else outputs


class MicroAUTrainer(Trainer):
    """A `Trainer` that follows the recipe's parameter groups, logs the running mean of each loss term and saves no
    pickle.

    The stock Trainer writes `training_args.bin` (a pickle) beside every saved model, and `push_to_hub` uploads it;
    this project ships safetensors and JSON only, so the arguments are written as `training_args.json` instead.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._term_sums: dict[str, float] = defaultdict(float)
        self._term_counts: dict[str, int] = defaultdict(int)

    def get_decay_parameter_names(self, model: torch.nn.Module) -> list[str]:
        """The recipe's rule, not the stock one (which decays the temperature and the AU queries): the stock
        `create_optimizer` then builds the same two groups as the Accelerate loop."""
        return decay_parameter_names(model)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        if model.training:
            for term in LOSS_TERMS:
                value = getattr(outputs, term, None)
                if value is not None:
                    self._term_sums[term] += float(value.detach())
                    self._term_counts[term] += 1
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        for term, total in self._term_sums.items():
            logs[term] = round(total / max(self._term_counts[term], 1), 4)
        self._term_sums.clear()
        self._term_counts.clear()
        super().log(logs, *args, **kwargs)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        super()._save(output_dir, state_dict)
        folder = Path(output_dir or self.args.output_dir)
        (folder / TRAINING_ARGS_NAME).unlink(missing_ok=True)
        (folder / "training_args.json").write_text(self.args.to_json_string())


def make_trainer(
    model: torch.nn.Module,
    processor: Any,
    train_dataset: Dataset,
    args: TrainingArguments,
    eval_dataset: Dataset | None = None,
    threshold: float | np.ndarray = 0.5,
    preparer: FacePreparer | None = None,
    landmarker: LandmarkerChoice = "auto",
) -> MicroAUTrainer:
    """A Trainer for `MicroAUClipModel` on contract datasets (checked first, with clear errors).

    The frames go through the face pipeline of `MicroAUPredictor`. Without `preparer`, the datasets are checked
    here (`check_corpus_faces`, with `landmarker`; `None` for pre-aligned crops) and rows without a usable face are
    left out with a warning; a given `preparer` is taken to serve datasets already checked. As the recipe has it,
    the model's positive weights and AU co-occurrence are set from `train_dataset` (`set_training_statistics`).
    """
    aus = model.config.aus
    check_dataset(train_dataset, aus, "training data")
    if preparer is None:
        faces = check_corpus_faces(train_dataset, landmarker, "training data")
        train_dataset = faces.usable_rows(train_dataset, "training data")
        if eval_dataset is not None:
            eval_faces = check_corpus_faces(eval_dataset, faces.landmarker, "evaluation data", cache=faces.cache)
            eval_dataset = eval_faces.usable_rows(eval_dataset, "evaluation data")
        preparer = faces.preparer(model.config)
    set_training_statistics(model.config, au_labels(train_dataset["aus"], aus))
    return MicroAUTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=MicroAUCollator(processor, aus, preparer),
        processing_class=processor,
        compute_metrics=compute_metrics_function(model.config.au_names, threshold),
        preprocess_logits_for_metrics=keep_logits,
    )
