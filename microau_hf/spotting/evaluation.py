"""Evaluate a spotter on a long-video corpus (CAS(ME)^2, SAMM Long Videos) the way the MEGC challenges score it.

    from microau_hf.data.spotting_schema import load_spotting_folder
    from microau_hf.spotting import evaluate_spotting, spotting_table
    results = evaluate_spotting(load_spotting_folder("data/casme_sq"), spot)   # spot(frame_paths, fps) -> intervals
    print(spotting_table(results)); json.dump(results, open("results.json", "w"))

``spot`` gets one video's frame paths (in time order) and its frame rate, and returns
:class:`~microau_hf.spotting.metrics.Interval` objects: 0-based positions into those paths. Micro- and
macro-expressions are scored on their own and summed for the overall figure (:mod:`.metrics`); intervals
of any other kind a spotter reports (blinks, head motion) are left out of the scores and counted per video.

A video ``spot`` fails on (a ``ValueError`` or ``OSError``: no face, an unreadable frame) is scored as if nothing
was spotted in it, so its expressions count as missed; it is named under ``failed`` and the coverage line says
how many videos were spotted: ``"spotting, 96 of 98 videos"``. Any other exception is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from tqdm.auto import tqdm

from ..data.spotting_schema import INTERVAL_KINDS
from .metrics import MEGC_IOU_THRESHOLD, Interval, spotting_scores

Spotter = Callable[[list[str], float], Sequence[Interval]]

MATCHING = ("one-to-one, greedily by descending IoU, each kind on its own; overall sums the micro and macro counts "
            "(MEGC)")


def evaluate_spotting(dataset: Iterable[dict], spot: Spotter, iou_threshold: float = MEGC_IOU_THRESHOLD,
                      progress: bool = False) -> dict:
    """Run ``spot(frame_paths, fps)`` on every video of ``dataset`` (a spotting dataset's rows) and score it.

    Returns a JSON-ready dict: ``protocol`` (with the coverage), ``iou_threshold``, ``matching``, ``corpora``,
    ``scores`` (``overall``, ``micro``, ``macro``: TP, FP, FN, precision, recall, F1 pooled over videos), ``videos``
    (per video: the predicted and true intervals, the counts, the intervals of other kinds left out) and ``failed``
    (video -> the one-line reason).
    """
    per_video, videos, failed, corpora = [], [], {}, set()
    rows = list(dataset) if not hasattr(dataset, "__len__") else dataset
    for row in tqdm(rows, desc="spotting", unit="video", disable=not progress):
        name = f"{row['corpus']}/{row['video']}"
        corpora.add(row["corpus"])
        truth = truth_intervals(row)
        try:
            predicted = list(spot(list(row["frame_paths"]), float(row["fps"])))
        except (ValueError, OSError) as err:
            failed[name] = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            predicted = []
        _check_predictions(predicted, int(row["num_frames"]), name)
        scored = [i for i in predicted if i.kind in INTERVAL_KINDS]
        per_video.append((scored, truth))
        counts = spotting_scores([(scored, truth)], kind=None, iou_threshold=iou_threshold)
        videos.append({
            "corpus": row["corpus"], "subject": row["subject"], "video": row["video"], "fps": float(row["fps"]),
            "num_frames": int(row["num_frames"]), "tp": counts.tp, "fp": counts.fp, "fn": counts.fn,
            "predicted": [i.to_dict() for i in scored], "truth": [i.to_dict() for i in truth],
            "other_kinds_left_out": len(predicted) - len(scored), "failed": name in failed,
        })
    total = len(videos)
    scores = {"overall": spotting_scores(per_video, kind=None, iou_threshold=iou_threshold).to_dict()}
    scores |= {kind: spotting_scores(per_video, kind=kind, iou_threshold=iou_threshold).to_dict()
               for kind in INTERVAL_KINDS}
    return {
        "protocol": f"spotting, {total - len(failed)} of {total} videos",
        "iou_threshold": iou_threshold,
        "matching": MATCHING,
        "corpora": sorted(corpora),
        "scores": scores,
        "videos": videos,
        "failed": failed,
    }


def truth_intervals(row: dict) -> list[Interval]:
    """The annotated intervals of one spotting dataset row as :class:`Interval` objects (positions into
    ``frame_paths``), ready for :func:`~microau_hf.spotting.metrics.spotting_scores`."""
    return [Interval(int(i["onset"]), int(i["offset"]), str(i["kind"])) for i in row["intervals"]]


def _check_predictions(predicted: list, num_frames: int, name: str) -> None:
    """A spotter's intervals must be Interval objects inside the video: anything else is a bug in the spotter."""
    for interval in predicted:
        if not isinstance(interval, Interval):
            raise TypeError(f"{name}: the spotter returned {type(interval).__name__}, not an Interval")
        if interval.offset >= num_frames:
            raise ValueError(f"{name}: the spotter returned {interval.onset}..{interval.offset}, past the last "
                             f"frame ({num_frames - 1})")


def spotting_table(results: dict) -> str:
    """The scores as a markdown table, titled with the protocol and its coverage."""
    lines = [f"### {results['protocol']} ({', '.join(results['corpora']) or 'no corpus'}; "
             f"IoU >= {results['iou_threshold']:g})", "",
             "| kind | TP | FP | FN | precision | recall | F1 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for kind in (*INTERVAL_KINDS, "overall"):
        s = results["scores"][kind]
        label = f"**{kind}**" if kind == "overall" else kind
        lines.append(f"| {label} | {s['tp']} | {s['fp']} | {s['fn']} | {s['precision']:.3f} | {s['recall']:.3f} "
                     f"| {s['f1']:.3f} |")
    if results["failed"]:
        first, reason = next(iter(results["failed"].items()))
        lines += ["", f"{len(results['failed'])} video(s) could not be spotted and count as spotting nothing "
                      f"(first: {first}: {reason})"]
    return "\n".join(lines)


__all__ = ["MATCHING", "Spotter", "evaluate_spotting", "spotting_table", "truth_intervals"]
