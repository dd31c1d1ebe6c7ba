"""Emotions and objective classes from AU probabilities, never from emotion labels.

Each emotion (and each Davison et al. objective class) has AU prototypes in `aus.py`. A prototype's score is the
probability, under independent AU detectors, that exactly its AUs are on among the AUs the model detects:
prod_{k in P} p_k * prod_{k not in P} (1 - p_k). A class scores its best prototype. Prototypes that use no AU the model
detects say nothing and are skipped, and so is a class left without prototypes. Emotions also score `"none"` (no AU
on: prod_k (1 - p_k)), so that a face that did not move is not given the least unlikely emotion.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .aus import EMOTION_PROTOTYPES, NO_EMOTION, OBJECTIVE_CLASSES


def _prototype_scores(probabilities: np.ndarray, aus: Sequence[int], prototypes: dict) -> dict:
    probabilities = np.clip(np.asarray(probabilities, dtype=float), 1e-6, 1 - 1e-6)
    log_on, log_off = np.log(probabilities), np.log1p(-probabilities)
    index = {au: k for k, au in enumerate(aus)}
    scores = {}
    for name, combos in prototypes.items():
        best = None
        for combo in combos:
            on = [index[a] for a in combo if a in index]
            if not on:
                continue
            mask = np.zeros(len(aus), dtype=bool)
            mask[on] = True
            log_likelihood = (log_on * mask).sum(-1) + (log_off * ~mask).sum(-1)
            best = log_likelihood if best is None else np.maximum(best, log_likelihood)
        if best is not None:
            scores[name] = best
    return scores


def score_emotions(probabilities: np.ndarray, aus: Sequence[int]) -> dict[str, np.ndarray]:
    """Log-likelihood of each emotion's best prototype, and of `"none"` (no AU on); `probabilities` is `(K,)` or
    `(N, K)` in the order of `aus`. Empty when no prototype uses an AU of `aus`."""
    scores = _prototype_scores(probabilities, aus, EMOTION_PROTOTYPES)
    if scores:
        off = np.log1p(-np.clip(np.asarray(probabilities, dtype=float), 1e-6, 1 - 1e-6))
        scores[NO_EMOTION] = off.sum(-1)
    return scores


def score_objective_classes(probabilities: np.ndarray, aus: Sequence[int]) -> dict[int, np.ndarray]:
    """Log-likelihood of each Davison et al. objective class (1..7)."""
    return _prototype_scores(probabilities, aus, OBJECTIVE_CLASSES)


def predict_classes(scores: dict) -> list:
    """The best-scoring class per sample."""
    names = list(scores)
    stacked = np.stack([np.atleast_1d(scores[n]) for n in names], axis=-1)
    return [names[i] for i in stacked.argmax(-1)]


def emotion_probabilities(probabilities: np.ndarray, aus: Sequence[int]) -> dict[str, float]:
    """One sample's emotion scores normalised to sum to 1 (for display)."""
    scores = score_emotions(probabilities, aus)
    values = np.array([float(v) for v in scores.values()])
    weights = np.exp(values - values.max())
    return dict(zip(scores, (weights / weights.sum()).tolist()))


def uf1_uar(true: Sequence, predicted: Sequence, classes: Sequence) -> dict[str, float]:
    """Unweighted F1 (mean over classes of per-class F1) and unweighted average recall, over `classes`."""
    true, predicted = np.asarray(true, dtype=object), np.asarray(predicted, dtype=object)
    f1s, recalls = [], []
    for c in classes:
        tp = float(((true == c) & (predicted == c)).sum())
        fp = float(((true != c) & (predicted == c)).sum())
        fn = float(((true == c) & (predicted != c)).sum())
        if tp + fn == 0:
            continue  # a class absent from the labels has no recall; it is left out of both means
        f1s.append(2 * tp / (2 * tp + fp + fn))
        recalls.append(tp / (tp + fn))
    return {"uf1": float(np.mean(f1s)) if f1s else float("nan"), "uar": float(np.mean(recalls)) if recalls else float("nan"),
            "classes_scored": len(f1s)}


def chance_uf1_uar(true: Sequence, classes: Sequence) -> dict[str, dict[str, object]]:
    """What guessing scores on the same labels, so that a label-free UF1/UAR can be read against it.

    ``majority``: every sample called the most frequent label (the best constant guess; it knows the label counts).
    ``uniform``: every sample called one of ``classes`` (those the scorer answers with) at random, scored on the
    expected counts: class c with n_c of N labels gets recall 1/m and F1 2 n_c / (N + m n_c), m = len(classes).
    Both average over the labelled classes, as :func:`uf1_uar` does.
    """
    labels = [label for label in true if label in set(classes)]
    counts = {c: labels.count(c) for c in classes if c in labels}
    if not counts:
        return {}
    total, m = len(labels), len(classes)
    majority = max(counts, key=counts.get)
    majority_f1 = 2 * counts[majority] / (total + counts[majority])
    uniform_f1 = [2 * n / (total + m * n) for n in counts.values()]
    return {"majority": {"uf1": majority_f1 / len(counts), "uar": 1 / len(counts), "label": majority},
            "uniform": {"uf1": float(np.mean(uniform_f1)), "uar": 1 / m}}


def evaluate_emotions(probabilities: np.ndarray, aus: Sequence[int], emotions: Sequence[str | None],
                      objective_classes: Sequence[int | None]) -> dict[str, object]:
    """UF1/UAR of label-free emotion and objective-class estimates against the corpus's labels, each with the chance
    baselines of :func:`chance_uf1_uar` on the same labels (``"chance"``).

    Samples whose label has no prototype (CASME II's "others", "repression") cannot be scored and are counted apart.
    """
    result: dict[str, object] = {}
    emotion_scores = score_emotions(probabilities, aus)
    known = [i for i, e in enumerate(emotions) if e in emotion_scores]
    if known:
        predicted = predict_classes({k: np.asarray(v)[known] for k, v in emotion_scores.items()})
        labels = [emotions[i] for i in known]
        result["emotion"] = {**uf1_uar(labels, predicted, list(emotion_scores)), "samples": len(known),
                             "unscorable_labels": len(emotions) - len(known),
                             "chance": chance_uf1_uar(labels, list(emotion_scores))}
    class_scores = score_objective_classes(probabilities, aus)
    known = [i for i, c in enumerate(objective_classes) if c is not None and c in class_scores]
    if known:
        predicted = predict_classes({k: np.asarray(v)[known] for k, v in class_scores.items()})
        labels = [objective_classes[i] for i in known]
        result["objective_class"] = {**uf1_uar(labels, predicted, list(class_scores)), "samples": len(known),
                                     "unscorable_labels": len(objective_classes) - len(known),
                                     "chance": chance_uf1_uar(labels, list(class_scores))}
    return result


def summary_line(kind: str, row: dict) -> str:
    """One printed line for a row of :func:`evaluate_emotions`: the scores beside their chance baselines."""
    chance = row.get("chance") or {}
    baselines = "; ".join(f"{name} UF1 {c['uf1']:.3f}, UAR {c['uar']:.3f}" for name, c in chance.items())
    return (f"label-free {kind.replace('_', ' ')}: UF1 {row['uf1']:.3f}, UAR {row['uar']:.3f}"
            + (f" (chance: {baselines})" if baselines else "")
            + f"; {row['samples']} samples, {row['unscorable_labels']} with labels no prototype covers")
