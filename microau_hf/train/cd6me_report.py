"""CD6ME's scores and tables, in MEB's shape: per AU and per held-out corpus, binary F1 and MEB's macro F1.

MEB (``meb.utils.results_to_list``) reports two rows, in percent: per AU, the F1 of all held-out predictions pooled,
with their mean over the AUs ("Average": the figure its papers quote); and per held-out corpus, the mean over the
AUs of that corpus's F1, with their mean over the corpora. Its F1 is scikit-learn's per-AU ``average="macro"``
(the mean of the positive- and negative-class F1); the binary F1 of the positive class is printed beside it, as
everywhere in this project (:func:`~microau_hf.train.metrics.au_detection_scores`, used here for every number).

An AU without a positive in a held-out corpus has no F1 there: it is written as null, not 0 (0 would read as a
model that missed every one), and left out of that corpus's mean, whose count of defined AUs is given beside it.
MEB's published averages are printed beside a run's, labelled as theirs, only for real corpora: a synthetic
stand-in's figures say the code runs and are never compared with them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_text
from ..results import finite_or_null
from .loso import result_notes
from .metrics import au_detection_scores

#: MEB's published CD6ME averages over the 12 AUs, binary F1 / macro F1 in percent (Varanka et al., their table).
MEB_PUBLISHED: tuple[tuple[str, float, float], ...] = (
    ("SSSNet", 40.5, 68.3), ("OffApexNet", 39.5, 67.7), ("STSTNet", 31.8, 63.7), ("RCN-A", 28.7, 61.9),
    ("LED", 28.3, 61.4),
)
MEB_SOURCE = ("MEB's published figures (Varanka et al., \"Data Leakage and Evaluation Issues in Micro-Expression "
              "Analysis\", arXiv:2211.11425): theirs, all six corpora, mean of 5 seeds")


def corpus_scores(labels: np.ndarray, predictions: np.ndarray, au_names: Sequence[str]) -> dict[str, Any]:
    """Per-AU binary and macro F1 of one set of test rows; AUs without a positive are null and left out of the mean."""
    scores = au_detection_scores(labels, predictions, au_names)
    per_au = {name: _defined(row) for name, row in scores["per_au"].items()}
    defined = {name: row for name, row in per_au.items() if row["f1"] is not None}
    return {
        "samples": scores["num_samples"],
        "per_au": per_au,
        "mean_f1": _mean([row["f1"] for row in defined.values()]),
        "mean_macro_f1": _mean([row["macro_f1"] for row in defined.values()]),
        "aus_defined": len(defined),
        "aus_undefined": [name for name in per_au if name not in defined],
    }


def _defined(row: dict[str, Any]) -> dict[str, Any]:
    if row["support"] == 0:  # no positive: F1 is 0/0, undefined
        return {"f1": None, "macro_f1": None, "precision": None, "recall": None, "support": 0}
    return {"f1": row["f1"], "macro_f1": row["macro_f1_for_comparison"], "precision": row["precision"],
            "recall": row["recall"], "support": row["support"]}


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def overall_scores(labels: np.ndarray, predictions: np.ndarray, au_names: Sequence[str],
                   held_out: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """MEB's two averages: per AU over the pooled held-out predictions, and the mean of the corpora's means."""
    pooled = corpus_scores(labels, predictions, au_names)
    return {**pooled,
            "mean_over_corpora_f1": _mean([c["mean_f1"] for c in held_out.values() if c["mean_f1"] is not None]),
            "mean_over_corpora_macro_f1": _mean([c["mean_macro_f1"] for c in held_out.values()
                                                 if c["mean_macro_f1"] is not None])}


def meb_shape(held_out: dict[str, dict[str, Any]], overall: dict[str, Any], au_names: Sequence[str]) -> dict:
    """The two rows MEB prints, in percent: per AU (+ "Average") and per held-out corpus (+ "Average")."""
    per_au = overall["per_au"]
    return {
        "units": "percent",
        "aus": [*au_names, "Average"],
        "binary_f1": [_percent(per_au[n]["f1"]) for n in au_names] + [_percent(overall["mean_f1"])],
        "macro_f1": [_percent(per_au[n]["macro_f1"]) for n in au_names] + [_percent(overall["mean_macro_f1"])],
        "datasets": [*held_out, "Average"],
        "binary_f1_per_dataset": [_percent(c["mean_f1"]) for c in held_out.values()]
        + [_percent(overall["mean_over_corpora_f1"])],
        "macro_f1_per_dataset": [_percent(c["mean_macro_f1"]) for c in held_out.values()]
        + [_percent(overall["mean_over_corpora_macro_f1"])],
    }


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


# -------------------------------------------------------------------------------------------------------------
# Tables
# -------------------------------------------------------------------------------------------------------------


def cd6me_tables(results: dict[str, Any]) -> str:
    """The markdown report: F1 tables, the comparison (or the stand-in's note), problems, emotions, corpora."""
    parts = [f"### {results['protocol']}", "", *_coverage(results), "",
             _f1_table(results, "f1", "Binary F1 (positive class), %"), "",
             _f1_table(results, "macro_f1", "MEB's macro F1 (mean of positive- and negative-class F1), %"), "",
             *_comparison(results), "", *_problem_lines(results), "", _emotion_table(results), "",
             *[f"- {line}" for line in result_notes(results)]]
    return "\n".join(parts).replace("\n\n\n", "\n\n")


def _coverage(results: dict[str, Any]) -> list[str]:
    lines = [f"- corpora: {', '.join(_corpus_text(c) for c in results['corpora'])}"]
    if results["missing_corpora"]:
        lines.append(f"- not given (CD6ME has six): {', '.join(results['missing_corpora'])}")
    lines.append(f"- thresholds: {results['threshold']['rule']}; seeds {results['seeds']}; "
                 f"AUs {', '.join(f'AU{a}' for a in results['aus'])}")
    return lines


def _corpus_text(corpus: dict[str, Any]) -> str:
    sha = corpus.get("annotation_sha256")
    return f"{corpus['name']} ({corpus['samples']} samples" + (f", labels sha256 {sha[:12]}" if sha else "") + ")"


def _f1_table(results: dict[str, Any], key: str, title: str) -> str:
    names = [f"AU{a}" for a in results["aus"]]
    held_out, overall = results["cd6me"]["held_out"], results["cd6me"]["overall"]
    mean_key = "mean_f1" if key == "f1" else "mean_macro_f1"
    lines = [f"**{title}** (undef: no positive in that corpus; mean over the defined AUs)", "",
             "| held out | samples | " + " | ".join(names) + " | mean | AUs |",
             "|---|---:|" + "---:|" * (len(names) + 2)]
    for corpus, scores in held_out.items():
        lines.append(_row(corpus, scores, names, key, mean_key))
    lines.append(_row("**pooled** (MEB's AU row)", overall, names, key, mean_key))
    across = overall["mean_over_corpora_f1" if key == "f1" else "mean_over_corpora_macro_f1"]
    lines.append(f"| mean over corpora (MEB's dataset row) | | " + " | " * len(names) + f"{_cell(across)} | |")
    return "\n".join(lines)


def _row(label: str, scores: dict[str, Any], names: list[str], key: str, mean_key: str) -> str:
    cells = " | ".join(_cell(scores["per_au"][n][key]) for n in names)
    return f"| {label} | {scores['samples']} | {cells} | {_cell(scores[mean_key])} | {scores['aus_defined']} |"


def _cell(value: float | None) -> str:
    return "undef" if value is None else f"{100 * value:.1f}"


def _comparison(results: dict[str, Any]) -> list[str]:
    overall = results["cd6me"]["overall"]
    ours = f"{_cell(overall['mean_f1'])} | {_cell(overall['mean_macro_f1'])}"
    if results["synthetic"]:
        return [f"This run: {ours.replace(' | ', ' / ')} (binary / macro, %). Synthetic stand-in: these figures show "
                "that the protocol runs end to end; they are not CD6ME results and are not compared with MEB's."]
    lines = ["**Beside MEB's published 12-AU averages** (binary / macro F1, %)", "",
             "| method | binary F1 | macro F1 | source |", "|---|---:|---:|---|",
             f"| this run ({results['protocol']}) | {ours} | measured here |"]
    lines += [f"| {name} | {binary:.1f} | {macro:.1f} | theirs |" for name, binary, macro in MEB_PUBLISHED]
    lines += ["", f"Theirs: {MEB_SOURCE}."]
    if results["missing_corpora"]:
        lines.append(f"Not the same test set: this run covers {results['protocol'].split(', ', 1)[1]} "
                     f"(without {', '.join(results['missing_corpora'])}).")
    return lines


def _problem_lines(results: dict[str, Any]) -> list[str]:
    if not results["problems"]:
        return ["No bad input found (AU sets, duplicates across corpora, AUs with few positives)."]
    return ["**Bad input, named** (never averaged in silently):", ""] + [f"- {p['detail']}" for p in results["problems"]]


def _emotion_table(results: dict[str, Any]) -> str:
    lines = ["**Label-free emotions per corpus** (AU probabilities -> FACS prototypes; no emotion label trained on), "
             "against each corpus's own labels", "",
             "| corpus | samples scored | UF1 | UAR | chance: majority UF1 / UAR | chance: uniform UF1 / UAR |",
             "|---|---:|---:|---:|---:|---:|"]
    for corpus, scores in results["cd6me"]["held_out"].items():
        row = scores["emotion"].get("emotion")
        if row is None:
            lines.append(f"| {corpus} | 0 | | | | |")
            continue
        chance = row.get("chance") or {}
        lines.append(f"| {corpus} | {row['samples']} | {row['uf1']:.3f} | {row['uar']:.3f} | "
                     f"{_pair(chance.get('majority'))} | {_pair(chance.get('uniform'))} |")
    return "\n".join(lines)


def _pair(row: dict[str, Any] | None) -> str:
    return "" if not row else f"{row['uf1']:.3f} / {row['uar']:.3f}"


def write_cd6me(results: dict[str, Any], output_dir: Path) -> None:
    """results.json (null for every undefined or non-finite number) and results.md (the tables)."""
    atomic_write_text(output_dir / "results.json", json.dumps(finite_or_null(results), indent=2, allow_nan=False) + "\n")
    atomic_write_text(output_dir / "results.md", cd6me_tables(results) + "\n")
