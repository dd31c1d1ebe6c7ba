"""MEB's CD6ME protocol (Varanka et al., "Data Leakage and Evaluation Issues in Micro-Expression Analysis", 2023):
leave one corpus out over CASME, CASME II, SAMM, 4DME, MMEW and CAS(ME)^3, the 12 AUs, binary and macro F1.

The corpora are given as converted dataset folders (one corpus each). Before any training, the bad inputs a
composite benchmark invites are found and *named*, never averaged in silently:

* a corpus labelled with another AU set (its conversion report lists the AUs it labelled, and not all 12): left out,
  since an AU it did not label would count as absent;
* samples present in two corpora (the same onset and apex bytes): the later copy is left out, since it would be
  trained on in the fold that tests it;
* an AU without a positive in a held-out corpus: its F1 there is undefined (null) and left out of that corpus's
  mean, as a count of defined AUs beside the mean says; an AU with fewer than :data:`MIN_POSITIVES` positives in a
  held-out corpus, or in a fold's training corpora, is listed, because its F1 there rests on one or two samples.

Training and prediction go through :func:`~microau_hf.train.loso.run_folds`, the one fold loop of every protocol;
thresholds are the protocol's rule (0.5, as MEB's ``logit > 0``, or chosen on an inner split of the training
corpora's subjects), never the held-out corpus. Scores and tables are in :mod:`.cd6me_report`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, Image, concatenate_datasets

from ..aus import AU_SETS
from ..configuration_micro_au_clip import MicroAUClipConfig
from ..data.converters.common import REPORT_NAME
from ..data.schema import CORPUS_NAMES, load_dataset_folder, sample_features
from ..modeling_micro_au_clip import MicroAUClipModel
from .cd6me_report import corpus_scores, meb_shape, overall_scores, write_cd6me
from .loso import (EVALUATION_SCHEMA, ModelFactory, ProtocolRun, ProtocolSettings, emotion_scores, face_path_text,
                   run_folds, save_fold_model, threshold_record)
from .metrics import au_detection_scores
from .protocols import leave_one_corpus_out_folds

#: MEB's six corpora, by the names our converters give them (MEB calls 4DME "fourd" and CAS(ME)^3 "casme3a").
CD6ME_CORPORA = ("casme", "casme2", "samm", "4dme", "mmew", "casme3")
CD6ME_AUS = AU_SETS["cross12"]
#: Below this many positives of an AU, in a held-out corpus or a fold's training corpora, the AU is listed.
MIN_POSITIVES = 3
assert set(CD6ME_CORPORA) <= set(CORPUS_NAMES)


@dataclass
class CorpusInput:
    """One corpus as given: where it is, and what its conversion report says of its labels."""

    name: str
    folder: str
    samples: int
    annotation: str | None = None
    annotation_sha256: str | None = None
    aus_labelled: list[int] | None = None  # None: every AU as the corpus coded it
    left_out_samples: int = 0  # duplicates of another corpus's samples


@dataclass
class Problem:
    """A bad input, named in results.json and printed: ``kind`` is au_set, duplicate_samples or few_positives."""

    kind: str
    corpus: str
    detail: str
    aus: list[str] = field(default_factory=list)  # the AUs concerned (few_positives)


@dataclass
class Cd6meData:
    """The corpora checked and joined: the rows to run, what each corpus is, and what was wrong."""

    dataset: Dataset
    corpora: list[CorpusInput]
    problems: list[Problem] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.corpora]


# -------------------------------------------------------------------------------------------------------------
# The corpora
# -------------------------------------------------------------------------------------------------------------


def corpus_folders(paths: list[str | Path]) -> list[Path]:
    """Dataset folders from ``--data``: folders as given, and list files (one folder a line, ``#`` comments,
    relative to the list file) expanded in place."""
    folders: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
            listed = [path.parent / line for line in lines if line]
            if not listed:
                raise ValueError(f"{path}: the corpus list names no folder")
            folders += listed
        else:
            folders.append(path)
    return folders


def load_corpora(paths: list[str | Path], aus: tuple[int, ...] = CD6ME_AUS) -> Cd6meData:
    """Load, check and join the corpora; bad input is named in ``problems`` (or refused when nothing is left)."""
    loaded, seen = [], {}
    for folder in corpus_folders(paths):
        rows = load_dataset_folder(folder)
        name = _corpus_name(rows, folder)
        if name in seen:
            raise ValueError(f"{folder}: corpus {name!r} is given twice (also {seen[name]}); give each corpus once")
        seen[name] = folder
        loaded.append((_describe(name, folder, rows), rows))
    problems = [p for corpus, _ in loaded if (p := _au_set_problem(corpus, aus))]
    kept = [(c, r) for c, r in loaded if c.name not in {p.corpus for p in problems}]
    problems += _drop_duplicates(kept)
    kept = [(c, r) for c, r in kept if len(r)]
    if len(kept) < 2:
        named = "; ".join(p.detail for p in problems) or "one corpus given"
        raise ValueError(f"CD6ME leaves one corpus out and needs at least 2 usable corpora, has {len(kept)} ({named})")
    columns = list(sample_features())  # frames (with_frames corpora) are not used: onset and apex are
    joined = concatenate_datasets([rows.select_columns(columns).cast(sample_features()) for _, rows in kept])
    return Cd6meData(joined, [c for c, _ in kept], problems)


def _corpus_name(rows: Dataset, folder: Path) -> str:
    names = sorted(set(rows["dataset"])) if "dataset" in rows.column_names else []
    if len(names) != 1:
        raise ValueError(f"{folder}: a CD6ME corpus folder holds one corpus (one `dataset` value), this one has "
                         f"{names or 'no dataset column'}; convert each corpus into its own folder")
    return names[0]


def _describe(name: str, folder: Path, rows: Dataset) -> CorpusInput:
    """The corpus and, from its conversion report, which annotation file (by hash) and AU set its labels are."""
    corpus = CorpusInput(name, str(folder), len(rows))
    report_path = Path(folder) / REPORT_NAME
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        corpus.annotation, corpus.annotation_sha256 = report.get("annotation"), report.get("annotation_sha256")
        corpus.aus_labelled = report.get("aus_labelled")
    return corpus


def _au_set_problem(corpus: CorpusInput, aus: tuple[int, ...]) -> Problem | None:
    if corpus.aus_labelled is None:
        return None
    unlabelled = sorted(set(aus) - set(corpus.aus_labelled))
    if not unlabelled:
        return None
    return Problem("au_set", corpus.name, f"{corpus.name}: labelled only AUs {sorted(corpus.aus_labelled)}, not "
                                          f"AU {', '.join(map(str, unlabelled))}; left out (an unlabelled AU would "
                                          f"count as absent)")


def _drop_duplicates(corpora: list[tuple[CorpusInput, Dataset]]) -> list[Problem]:
    """Samples whose onset and apex bytes another corpus (earlier in the list) already has are left out, in place."""
    first: dict[str, str] = {}
    problems = []
    for index, (corpus, rows) in enumerate(corpora):
        keys, ids = _sample_keys(rows), rows["sample_id"]
        repeats = [i for i, key in enumerate(keys) if key in first and not first[key].startswith(corpus.name + ":")]
        for key, sample_id in zip(keys, ids):
            first.setdefault(key, f"{corpus.name}:{sample_id}")
        if repeats:
            shown = ", ".join(f"{ids[i]} (= {first[keys[i]]})" for i in repeats[:3])
            more = f" and {len(repeats) - 3} more" if len(repeats) > 3 else ""
            problems.append(Problem("duplicate_samples", corpus.name, f"{corpus.name}: {len(repeats)} samples are "
                                    f"already in another corpus, left out: {shown}{more}"))
            corpus.left_out_samples = len(repeats)
            corpora[index] = (corpus, rows.select(sorted(set(range(len(rows))) - set(repeats))))
    return problems


def _sample_keys(rows: Dataset) -> list[str]:
    """A sample's identity by content: the SHA-256 of its onset and apex file bytes (read undecoded, in batches)."""
    frames = rows.select_columns(["onset", "apex"])
    frames = frames.cast_column("onset", Image(decode=False)).cast_column("apex", Image(decode=False))
    keys = []
    for batch in frames.iter(batch_size=64):
        for onset, apex in zip(batch["onset"], batch["apex"]):
            keys.append(hashlib.sha256((onset["bytes"] or b"") + b"|" + (apex["bytes"] or b"")).hexdigest())
    return keys


# -------------------------------------------------------------------------------------------------------------
# The protocol
# -------------------------------------------------------------------------------------------------------------


def run_cd6me(data: Cd6meData, config: MicroAUClipConfig, processor: Any, output_dir: str | Path,
              settings: ProtocolSettings | None = None, model_factory: ModelFactory = MicroAUClipModel,
              save_model_to: str | Path | None = None) -> dict[str, Any]:
    """Leave each corpus out in turn, score per held-out corpus and pooled, write results.json/results.md."""
    if tuple(config.aus) != tuple(CD6ME_AUS):
        raise ValueError(f"CD6ME scores the 12 AUs {list(CD6ME_AUS)} (the cross12 set); the config detects "
                         f"{list(config.aus)}")
    settings = ProtocolSettings(**{**asdict(settings or ProtocolSettings()), "protocol": "cd6me", "max_folds": None})
    run = run_folds(data.dataset, config, processor, output_dir, settings, model_factory,
                    make_folds=leave_one_corpus_out_folds)
    problems = data.problems + few_positive_problems(run, tuple(config.aus))
    results = _results(data, run, config, settings, problems)
    write_cd6me(results, Path(output_dir))
    if save_model_to is not None:
        save_fold_model(run, processor, results, save_model_to)
    return results


def protocol_name(corpora: list[str]) -> str:
    """The protocol's name says its coverage: "CD6ME, 4 of 6 corpora"; a stand-in says it is synthetic."""
    if is_synthetic(corpora):
        return f"CD6ME protocol on the synthetic stand-in ({len(corpora)} pseudo-corpora)"
    covered = sum(name in CD6ME_CORPORA for name in corpora)
    others = [name for name in corpora if name not in CD6ME_CORPORA]
    return f"CD6ME, {covered} of {len(CD6ME_CORPORA)} corpora" + (f" (+ {', '.join(others)})" if others else "")


def is_synthetic(corpora: list[str]) -> bool:
    return any(name.startswith("synthetic") for name in corpora)


def few_positive_problems(run: ProtocolRun, aus: tuple[int, ...]) -> list[Problem]:
    """Per fold, one line each for the held-out corpus and the training corpora: the AUs with fewer than
    MIN_POSITIVES positives there, with their counts (0 in the held-out corpus: F1 undefined)."""
    labels = run.dataset["aus"]
    problems = []
    for fold in run.folds:
        for where, indices in (("held-out corpus", fold.test_indices), ("training corpora", fold.train_indices)):
            counts = {f"AU{au}": sum(au in labels[i] for i in indices) for au in aus}
            few = {name: count for name, count in counts.items() if count < MIN_POSITIVES}
            if not few:
                continue
            listed = ", ".join(f"{name} {count}" for name, count in few.items())
            undefined = [name for name, count in few.items() if count == 0]
            note = f" (undefined there: {', '.join(undefined)})" if undefined and where == "held-out corpus" else ""
            problems.append(Problem("few_positives", fold.name, f"fold {fold.name}: fewer than {MIN_POSITIVES} "
                                    f"positives in the {where}: {listed}{note}", list(few)))
    return problems


def _results(data: Cd6meData, run: ProtocolRun, config: MicroAUClipConfig, settings: ProtocolSettings,
             problems: list[Problem]) -> dict[str, Any]:
    names = [f"AU{au}" for au in config.aus]  # MEB's column names
    corpora = [str(name) for name in run.tested["dataset"]]
    held_out = {}
    for fold in run.folds:  # the test rows are in fold order, so each corpus is one block of `run.tested`
        mask = np.asarray(corpora) == fold.name
        held_out[fold.name] = {**corpus_scores(run.labels[mask], run.predictions[mask], names),
                               "emotion": emotion_scores(run.probabilities[mask], config.aus,
                                                         run.tested.select(np.flatnonzero(mask).tolist()))}
    overall = overall_scores(run.labels, run.predictions, names, held_out)
    synthetic = is_synthetic(data.names)
    return {
        "schema": EVALUATION_SCHEMA,
        "protocol": protocol_name(data.names),
        "benchmark": "CD6ME (MEB: Varanka et al., leave one dataset out, 12 AUs)",
        "synthetic": synthetic,
        "corpora": [asdict(c) for c in data.corpora],
        "missing_corpora": [name for name in CD6ME_CORPORA if name not in data.names] if not synthetic else [],
        "dataset": data.names,
        "aus": list(config.aus),
        "input_mode": config.input_mode,
        "seeds": [settings.seed],
        "settings": asdict(settings),
        "threshold": threshold_record(settings, run.fold_rows),
        "face_path": face_path_text(run),
        "face_pipeline": run.faces.report(),
        "folds": run.fold_rows,
        "scores": au_detection_scores(run.labels, run.predictions, config.au_names),  # pooled, as every protocol writes it
        "cd6me": {"held_out": held_out, "overall": overall, "meb_shape": meb_shape(held_out, overall, names)},
        "emotion": emotion_scores(run.probabilities, config.aus, run.tested),
        "problems": [asdict(p) for p in problems],
    }
