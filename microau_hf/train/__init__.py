"""Training and evaluation: the Trainer glue, the Accelerate loop, the LOSO protocol and the metrics."""

from .collator import MicroAUCollator, au_labels, check_dataset
from .metrics import au_detection_scores, best_thresholds, markdown_table
from .protocols import Fold, leave_one_corpus_out_folds, loso_folds
from .trainer import MicroAUTrainer, make_trainer, training_arguments

__all__ = [
    "Fold",
    "MicroAUCollator",
    "MicroAUTrainer",
    "au_detection_scores",
    "au_labels",
    "best_thresholds",
    "check_dataset",
    "leave_one_corpus_out_folds",
    "loso_folds",
    "make_trainer",
    "markdown_table",
    "training_arguments",
]
