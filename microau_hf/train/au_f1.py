"""`evaluate` metric module for micro-AU detection, loaded by path (Hub metrics cannot load offline):

    import evaluate, microau_hf.train.au_f1 as module
    metric = evaluate.load(module.__file__)
    metric.compute(predictions=[[0, 1], [1, 1]], references=[[0, 1], [1, 0]], au_names=["AU1", "AU2"])

It reports `microau_hf.train.metrics.au_detection_scores`: per-AU binary F1 of the positive class and its mean, with
the per-AU "macro" F1 some papers report beside it, labelled.
"""

import datasets
import evaluate

from microau_hf.train.metrics import au_detection_scores

_DESCRIPTION = "Per-AU binary F1 (positive class), precision, recall, their means, and the labelled per-AU macro F1."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of lists of 0/1, shape (samples, AUs).
    references: list of lists of 0/1, shape (samples, AUs).
    au_names: optional list of AU names for the per-AU entries.
Returns:
    mean_f1, mean_precision, mean_recall, mean_macro_f1_for_comparison, num_samples, per_au.
"""


class MicroAUF1(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("int32")), "references": datasets.Sequence(datasets.Value("int32"))}
            ),
        )

    def _compute(self, predictions, references, au_names=None):
        return au_detection_scores(references, predictions, au_names)
