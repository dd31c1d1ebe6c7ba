"""Inference with a trained Micro-AU CLIP: onset/apex pairs, folders of pairs and videos, the model loaded once.

    predictor = MicroAUPredictor.from_pretrained("checkpoints/casme2")       # a folder or a Hub id
    prediction = predictor.predict_pair("onset.jpg", "apex.jpg")
    prediction.present, prediction.emotion, prediction.to_dict()
    predictions = predictor.predict_folder("pairs/")    # a bad item gets a status and a message, the rest go on
    video = predictor.predict_video("clip.mp4", every_frame=True)
    save_results(predictions, "results.csv")            # or .json

**Folder rule.** A folder holds pairs as files ``<name>_onset.<ext>`` + ``<name>_apex.<ext>``, or as subfolders
``<name>/`` each holding ``onset.<ext>`` and ``apex.<ext>`` (any of :data:`IMAGE_SUFFIXES`, any case). Other files
are ignored; a half pair is reported as an item with status ``"missing_frame"``, a pair in a format not read here
(``.gif``, ...) with status ``"unsupported_format"``.

**Videos** are spotted (:mod:`microau_hf.spotting`): the face is tracked on every frame, the brief movements found
and each micro-expression's onset/apex pair scored as a pair would be (:mod:`microau_hf.video_spotting`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence, Sized
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from .aus import NO_EMOTION
from .checkpoints import CheckpointError, check_checkpoint_folder, load_model
from .emotion import emotion_probabilities, predict_classes, score_emotions, score_objective_classes
from .face import FacePreparer, PreparedPair, build_processor, model_inputs
from .face.io import IMAGE_SUFFIXES, ImageSource
from .face.pipeline import LandmarkerChoice
from .modeling_micro_au_clip import MicroAUClipModel, au_probabilities
from .processing_micro_au_clip import MicroAUClipProcessor
from .face.tracking import FaceTracker
from .results import AUScore, Prediction, Predictions, SpottedInterval, VideoPrediction, au_scores, save_results
from .spotting import Candidate, MotionSignals, SpottingSettings, find_intervals, spotting_score
from .video import VideoSource, open_video
from .video_spotting import MeasuredVideo, gather_pairs, measure_video



class FolderError(ValueError):
    """A folder that holds no onset/apex pair; one line naming it."""


# ----------------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------------


def _load(path: str | os.PathLike) -> tuple[MicroAUClipModel, MicroAUClipProcessor]:
    model = load_model(path)
    local = Path(path).expanduser()
    source = str(local) if local.exists() else str(path)
    try:
        processor = MicroAUClipProcessor.from_pretrained(source)
    except (OSError, ValueError, TypeError):
        # The processor is determined by the config (sizes, AU list, template boxes), so a checkpoint saved without
        # one is still complete.
        processor = build_processor(model.config)
    return model, processor


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ----------------------------------------------------------------------------------------------------------------
# The predictor
# ----------------------------------------------------------------------------------------------------------------


class MicroAUPredictor:
    """A Micro-AU CLIP model (in eval mode), its processor and the face pipeline, ready to score pairs and videos.

    Args:
        model: the model; moved to ``device`` and put in eval mode.
        processor: its processor; built from the model's config when ``None``.
        device: where the model runs (default: where it is; ``from_pretrained``: CUDA when available, else CPU).
        landmarker: ``"auto"`` (MediaPipe when installed, else the canonical template), a backend, or ``None`` for
            frames that are already aligned crops.
        threshold: an AU is ``present`` when its probability is at least this.
    """

    def __init__(
        self,
        model: MicroAUClipModel,
        processor: MicroAUClipProcessor | None = None,
        device: str | torch.device | None = None,
        landmarker: LandmarkerChoice = "auto",
        threshold: float = 0.5,
    ):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        self.device = torch.device(device) if device is not None else model.device
        self.model = model.to(self.device).eval()
        self.processor = processor if processor is not None else build_processor(model.config)
        self.preparer = FacePreparer.from_config(model.config, landmarker)
        self.threshold = float(threshold)
        self.aus = [int(a) for a in model.config.aus]
        self.labels = list(model.config.au_names)

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        device: str | torch.device | None = None,
        landmarker: LandmarkerChoice = "auto",
        threshold: float = 0.5,
    ) -> MicroAUPredictor:
        """Load a checkpoint folder (``save_pretrained``) or Hub id; :class:`CheckpointError` if it is not one."""
        model, processor = _load(path)
        return cls(model, processor, device=device or _default_device(), landmarker=landmarker, threshold=threshold)

    # -- the model ----------------------------------------------------------------------------------------------

    def run_model(self, onset: torch.Tensor, apex: torch.Tensor, region_weights: torch.Tensor) -> np.ndarray:
        """AU probabilities ``(B, K)`` for pixel values and region weights (``(B, K, N)`` or ``(K, N)``)."""
        with torch.inference_mode():
            logits = self.model(
                onset_pixel_values=onset.to(self.device),
                apex_pixel_values=apex.to(self.device),
                au_region_weights=region_weights.to(self.device),
            ).logits
        return au_probabilities(logits).cpu().numpy()

    def predict_prepared(self, prepared: Sequence[PreparedPair]) -> list[Prediction]:
        """Score the usable samples of ``prepared`` in one batch; the others come back with their status."""
        usable = [p for p in prepared if p.ok]
        rows = iter([])
        if usable:
            inputs = model_inputs(self.processor, usable)
            rows = iter(self.run_model(inputs["onset_pixel_values"], inputs["apex_pixel_values"],
                                       inputs["au_region_weights"]))
        return [self.to_prediction(p, next(rows) if p.ok else None) for p in prepared]

    def to_prediction(self, prepared: PreparedPair, probabilities: np.ndarray | None) -> Prediction:
        """A sample's result from its face-pipeline output and its AU probabilities (``None``: not scored)."""
        result = Prediction(prepared.name, prepared.status, prepared.message, prepared.num_faces,
                            onset_crop=prepared.onset, apex_crop=prepared.apex, region_boxes=prepared.region_boxes)
        if probabilities is None:
            return result
        result.aus = au_scores(self.aus, self.labels, probabilities, self.threshold)
        if score_emotions(probabilities, self.aus):  # an AU set may hold no AU of any emotion prototype
            result.emotion_scores = emotion_probabilities(probabilities, self.aus)
            result.emotion = max(result.emotion_scores, key=result.emotion_scores.get)
        classes = score_objective_classes(probabilities, self.aus)
        if classes and result.emotion != NO_EMOTION:  # a face that did not move has no objective class either
            result.objective_class = int(predict_classes(classes)[0])
        return result

    # -- pairs and folders ----------------------------------------------------------------------------------------

    def predict_pair(self, onset: ImageSource, apex: ImageSource, name: str | None = None) -> Prediction:
        """One onset/apex pair (paths, PIL images or RGB arrays); a bad pair comes back with its status."""
        return self.predict_pairs([(onset, apex)], names=[name] if name else None)[0]

    def predict_pairs(
        self,
        pairs: Iterable[tuple[ImageSource, ImageSource]],
        names: Sequence[str] | None = None,
        batch_size: int = 16,
        progress: bool = False,
    ) -> Predictions:
        """Many pairs, ``batch_size`` at a time through the face pipeline and the model (so only one batch of crops is
        held). Unreadable images and faceless frames are listed with their status and message; the others are scored.
        ``progress`` shows a bar (pairs done) on stderr."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        results = Predictions()
        numbered = enumerate(pairs)
        total = len(pairs) if isinstance(pairs, Sized) else None
        with tqdm(total=total, desc="pairs", unit="pair", disable=not progress) as bar:
            while chunk := list(itertools.islice(numbered, batch_size)):
                chunk_names = [names[i] if names is not None else _default_name(i, onset) for i, (onset, _) in chunk]
                prepared = self.preparer.prepare_batch([pair for _, pair in chunk], chunk_names)
                results.extend(self.predict_prepared(prepared))
                bar.update(len(chunk))
        return results

    def predict_folder(self, folder: str | os.PathLike, batch_size: int = 16, progress: bool = False) -> Predictions:
        """Every pair of a folder (see the module's folder rule), sorted by name; half pairs listed as not scored."""
        pairs, missing = find_pairs(folder)
        names = list(pairs)
        results = self.predict_pairs([pairs[n] for n in names], names=names, batch_size=batch_size, progress=progress)
        for result in results:
            if not result.ok:  # the face pipeline says "<name> onset: ..."; name the file instead
                onset, apex = pairs[result.name]
                result.message = result.message.replace(f"{result.name} onset", str(onset), 1)
                result.message = result.message.replace(f"{result.name} apex", str(apex), 1)
        results += [Prediction(name, status, message) for name, (status, message) in missing.items()]
        return Predictions(sorted(results, key=lambda p: p.name))

    # -- videos ---------------------------------------------------------------------------------------------------

    def predict_video(
        self,
        source: VideoSource,
        every_frame: bool = False,
        stride: int = 1,
        fps: float | None = None,
        max_frames: int | None = None,
        max_seconds: float | None = None,
        batch_size: int = 16,
        progress: bool = False,
        settings: SpottingSettings | None = None,
    ) -> VideoPrediction:
        """Spot the micro-expressions of a video (a file, a folder of frames or a list of frame paths) and score each.

        One pass tracks the face on every frame and measures each AU region's motion; the spotter
        (:mod:`microau_hf.spotting`) turns that into intervals; a second pass hands each micro- and macro-expression's
        onset and apex frames to the face pipeline and the model, as a pair. ``every_frame`` also scores every
        ``stride``-th frame, counted from the first one a micro window into the video, against the frame one micro
        window before it, where both hold a usable face in one segment. ``fps`` is needed for image
        sequences; ``max_frames`` / ``max_seconds`` bound the frames read. Raises
        :class:`~microau_hf.video.VideoReadError`, :class:`~microau_hf.video.VideoTooShortError` or
        :class:`~microau_hf.face.NoFaceError` (no usable face in any frame).
        """
        if stride < 1 or batch_size < 1:
            raise ValueError(f"stride and batch_size must be at least 1, got {stride} and {batch_size}")
        settings = settings or SpottingSettings()
        stream = open_video(source, fps=fps, max_frames=max_frames, max_seconds=max_seconds)
        fps = stream.info.fps  # measure_video refuses a stream without one
        tracker = FaceTracker(self.preparer.landmarker, settings.feature_size, (stream.info.width, stream.info.height))
        measured = measure_video(stream, tracker, MotionSignals(self.aus, fps, settings), progress)
        track = measured.track
        candidates = find_intervals(measured.signals, track, self.aus, fps, settings)
        lag = settings.frames(settings.micro_window_s, fps)
        frame_pairs = _every_frame_pairs(track.segments, lag, stride) if every_frame else []
        scored = self._score_pairs(source, measured, candidates, frame_pairs, batch_size, progress)
        intervals = [self._interval(c, track.indices, fps, scored.intervals.get((c.onset, c.apex)))
                     for c in candidates]
        frame_pairs = [pair for pair in frame_pairs if pair in scored.frames]  # a frame without a face is not scored
        return VideoPrediction(
            path=measured.info.path, fps=fps, aus=self.aus, intervals=intervals, frame_indices=track.indices,
            face_status=[f.status for f in measured.frames], region_motion=measured.signals.micro,
            spotting_score=spotting_score(measured.signals.micro, track.segments, settings), eye_opening=track.eye_opening,
            threshold=settings.threshold_mads,
            scored_frames=track.indices[[apex for _, apex in frame_pairs]] if every_frame else None,
            frame_probabilities=(np.stack([scored.frames[p] for p in frame_pairs]) if frame_pairs
                                 else np.zeros((0, len(self.aus)), np.float32)) if every_frame else None,
            truncated_by=measured.truncated_by, header_frames=measured.info.frame_count, note=measured.note,
        )

    def _score_pairs(self, source: VideoSource, measured: MeasuredVideo, candidates: list[Candidate],
                     frame_pairs: list[tuple[int, int]], batch_size: int, progress: bool) -> ScoredPairs:
        """The model on each (onset, apex) position pair: the micro- and macro-expressions' (whole predictions) and
        the every-frame pairs (their probabilities only, so memory stays a few floats a frame), read in one more
        decode and scored ``batch_size`` at a time."""
        interval_pairs = {(c.onset, c.apex) for c in candidates if c.kind in SCORED_KINDS and c.onset < c.apex}
        every = set(frame_pairs)
        wanted = interval_pairs | every
        results = ScoredPairs({}, {})
        if not wanted:
            return results
        indices = [f.index for f in measured.frames]
        name = measured.info.path
        pairs = gather_pairs(source, sorted(wanted, key=lambda p: p[1]), measured.info.fps, len(indices))
        with tqdm(total=len(wanted), desc="scoring", unit="pair", disable=not progress) as bar:
            while chunk := list(itertools.islice(pairs, batch_size)):
                names = [f"{name} frames {indices[onset]}-{indices[apex]}" for (onset, apex), _ in chunk]
                prepared = self.preparer.prepare_batch([frames for _, frames in chunk], names)
                for (key, _), prediction in zip(chunk, self.predict_prepared(prepared)):
                    if key in interval_pairs:
                        results.intervals[key] = prediction
                    if key in every and prediction.ok:
                        results.frames[key] = prediction.probabilities
                bar.update(len(chunk))
        return results

    @staticmethod
    def _interval(candidate, indices: np.ndarray, fps: float, prediction: Prediction | None) -> SpottedInterval:
        return SpottedInterval(int(indices[candidate.onset]), int(indices[candidate.apex]),
                               int(indices[candidate.offset]), candidate.kind, candidate.strength, candidate.regions,
                               fps, prediction)


class ScoredPairs(NamedTuple):
    """The model's results for one video's pairs, by (onset, apex) frame positions."""

    intervals: dict[tuple[int, int], Prediction]  # the spotted micro- and macro-expressions, whole predictions
    frames: dict[tuple[int, int], np.ndarray]  # every-frame pairs with a usable face: (K,) probabilities


#: The kinds of spotted interval the model scores; blinks and head motion are listed, not scored.
SCORED_KINDS = ("micro", "macro")


def _every_frame_pairs(segments: np.ndarray, lag: int, stride: int) -> list[tuple[int, int]]:
    """(onset, apex) positions for every ``stride``-th frame whose frame ``lag`` before lies in its segment."""
    return [(apex - lag, apex) for apex in range(lag, len(segments), stride)
            if segments[apex] >= 0 and segments[apex - lag] == segments[apex]]


# ----------------------------------------------------------------------------------------------------------------
# Folders
# ----------------------------------------------------------------------------------------------------------------

Pair = tuple[Path, Path]


def find_pairs(folder: str | os.PathLike) -> tuple[dict[str, Pair], dict[str, tuple[str, str]]]:
    """The folder's pairs by name, and the names that are not a usable pair (name -> (status, the problem in one
    line); status ``"missing_frame"`` or ``"unsupported_format"``). :class:`FolderError` if it holds no usable pair."""
    root = Path(folder)
    if not root.is_dir():
        raise FolderError(f"{root}: no such folder")
    frames: dict[str, dict[str, list[Path]]] = {}
    for path in sorted(root.iterdir()):
        if path.is_dir():
            for inner in sorted(path.iterdir()):
                _collect(frames, path.name, inner.stem.lower(), inner)
        elif "_" in path.stem:
            name, _, role = path.stem.rpartition("_")
            _collect(frames, name, role.lower(), path)
    if not frames:
        raise FolderError(
            f"{root}: no onset/apex pairs found (expected <name>_onset.<ext> + <name>_apex.<ext>, or subfolders "
            f"holding onset.<ext> and apex.<ext>; ext one of {', '.join(IMAGE_SUFFIXES)})"
        )
    pairs, missing = {}, {}
    for name, roles in frames.items():
        problem = _pair_problem(roles)
        if problem:
            missing[name] = problem
        else:
            pairs[name] = (roles["onset"][0], roles["apex"][0])
    if not pairs:
        raise FolderError(f"{root}: no complete onset/apex pair; first problem: {next(iter(missing.values()))[1]}")
    return pairs, missing


def _collect(frames: dict, name: str, role: str, path: Path) -> None:
    # A frame in a format we do not read is kept too, so that its pair is reported rather than silently skipped.
    if role in ("onset", "apex") and path.is_file():
        frames.setdefault(name, {}).setdefault(role, []).append(path)


def _pair_problem(roles: dict[str, list[Path]]) -> tuple[str, str] | None:
    """What keeps these files from being one pair: (status, one line naming a file); ``None`` when they are one."""
    for path in (p for paths in roles.values() for p in paths):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            kind = path.suffix or "no extension"
            return "unsupported_format", f"{path}: {kind} is not a format read here ({', '.join(IMAGE_SUFFIXES)})"
    for role, other in (("onset", "apex"), ("apex", "onset")):
        found = roles.get(role, [])
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            return "missing_frame", f"{found[0].parent}: {len(found)} {role} images ({names}); keep one"
        if not found:
            return "missing_frame", f"{roles[other][0]}: no {role} image to pair it with"
    return None


def _default_name(index: int, onset: ImageSource) -> str:
    return str(onset) if isinstance(onset, (str, os.PathLike)) else f"item {index}"


__all__ = [
    "AUScore",
    "CheckpointError",
    "FolderError",
    "IMAGE_SUFFIXES",
    "MicroAUPredictor",
    "Prediction",
    "VideoPrediction",
    "check_checkpoint_folder",
    "find_pairs",
    "save_results",
]
