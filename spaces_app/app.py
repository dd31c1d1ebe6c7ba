"""The Micro-AU CLIP Space: micro-expression action units and the emotion they suggest, from an onset and an apex
frame, or spotted in a short video.

    MODEL_ID=my-org/micro-au-clip-casme2 python app.py         # what the Hub runs (MODEL_ID: a Hub id or a folder)
    microau space --model outputs/quickstart/checkpoint         # the same app, from the package's command line

The model loads once, when the app starts; requests then share it through a queue that runs one at a time (a CPU
Space has no spare cores for two forward passes). Every bad input (not an image, no face, a video too long) comes back
to the page as one line saying what is wrong, logs no traceback, and the next request is served as usual.

A video is spotted (:meth:`MicroAUPredictor.predict_video`): the brief movements that return to rest are found and
each micro- and macro-expression's onset/apex pair is scored; the page shows the time line, the table of spotted
intervals and, for the strongest micro-expression, the same pictures as for a pair. It is scored from the file as
uploaded; the page plays a VP8 WebM copy of it, since browsers cannot play many files OpenCV reads (an OpenCV
``mp4v`` .mp4, an MJPG .avi).

API (``gradio_client``): ``/predict_pair`` takes ``onset``, ``apex`` (and optional ``gain``) and returns the bar plot,
the heat map, the motion image, the emotion label, the result as JSON (values rounded to 4 decimals), a status line,
the explanation of the numbers and the JSON file to download. ``/predict_video`` takes ``video`` (and ``gain``) and
returns the same eight for the strongest micro-expression (the first three and the label empty when none was
spotted), then the time line (PNG) and the table of spotted intervals (``{"headers", "data"}``, one row per interval,
in time order). Its JSON file is the versioned results document (``results_document``: ``{"schema",
"schema_version", "kind": "video", "video": {...}}``, rounded likewise, the visitor's file name in place of the
server's path); the JSON output is the same with ``video.path`` named ``video.file`` (see :func:`_client_safe`).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import gradio as gr
import numpy as np
import pandas as pd

from microau_hf.aus import CATALOGUE, OBJECTIVE_CLASS_EMOTIONS, OBJECTIVE_CLASS_NAMES, OBJECTIVE_CLASSES
from microau_hf.checkpoints import SYNTHETIC_CORPUS, read_training_data
from microau_hf.face import ImageLoadError, NoFaceError
from microau_hf.face.io import MAX_PIXELS, check_pixel_count
from microau_hf.inference import CheckpointError, MicroAUPredictor, Prediction
from microau_hf.results import SpottedInterval, VideoPrediction, results_document
from microau_hf.spotting import SpottingSettings
from microau_hf.timeline import plot_timeline
from microau_hf.video import VIDEO_SUFFIXES, VideoError, VideoInfo, frame_limit, iter_frames, probe_video, write_video

from space_figures import DISPLAY_SIZE, au_heat_map, motion_image

logger = logging.getLogger("microau_space")

DEFAULT_MODEL_ID = "my-org/micro-au-clip-casme2"
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
MAX_FILE_SIZE = "20mb"  # a 128-1024 px frame is well under 1 MB; a few seconds of video fit in 20 MB
MAX_VIDEO_SECONDS = 10.0  # a micro-expression lasts under 0.5 s; longer clips only cost the other visitors time
MAX_FPS = 200  # CASME II and SAMM record at 200 fps: the frame bound for a video whose frame rate is unknown
QUEUE_SIZE = 16  # requests waiting beyond this are refused at once rather than left to time out
DEFAULT_GAIN = 10.0  # a 1-3 px micro-movement changes edges by ~5-30 grey levels; x10 makes that visible
JSON_DIGITS = 4  # probabilities to 1e-4: finer digits are noise, and 6.5e-08 reads as a bug
PREVIEW_SIDE = 360  # px, the longest side of the browser copy of a video: it is for the eye, the original is scored
PREVIEW_FPS = 25.0  # the browser copy's frame rate when the container does not tell one
# The browser copy keeps every n-th frame of a faster video: encoding VP8 runs at ~15-40 frames/s on a CPU Space, so a
# 10 s clip at 200 fps would keep the visitor waiting a minute for a copy that a screen shows at 60 Hz anyway.
PREVIEW_MAX_FPS = 30.0
RESULT_FILE = "micro_au_result.json"
TIMELINE_FILE = "micro_au_timeline.png"
#: The interval table's columns, as the page and the API show them.
INTERVAL_COLUMNS = ["kind", "frames (onset-apex-offset)", "time (s)", "AUs present", "emotion", "strength (MADs)"]
NO_MICRO = "no micro-expression spotted: nothing moved briefly above the noise"
UNUSABLE_RUNS_NAMED = 5  # runs of frames without a usable face named in the note; the JSON lists them all
SPOTTING = SpottingSettings()  # what predict_video spots with, for the explanation

# A local font stack: the default theme fetches Google Fonts, which an offline machine cannot reach.
THEME = gr.themes.Soft(font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                       font_mono=["ui-monospace", "Consolas", "monospace"])
CSS = ".synthetic-warning { border-left: 6px solid #e0a800; background: #fff8e1; padding: 8px 14px; color: #3b2f00; }"

INTRO = """# Micro-AU CLIP
Detects **micro-expression action units** (FACS AUs shown for 1/25 to 1/2 s, at low intensity) from the motion between
an **onset** frame (the face at rest) and an **apex** frame (the peak of the movement), or spots them in a short
**video**: brief movements that return to rest, each scored on its onset and apex frames. The emotion is estimated
from the AUs through FACS prototypes: the model never saw an emotion label. Research demo, not for decisions about
people."""


class UserInputError(gr.Error):
    """A request the Space refuses, with one line for the page saying why (kept on screen until closed). It is the
    visitor's input, not a fault of the Space, so the server log gets no traceback for it."""

    def __init__(self, message: str):
        super().__init__(message, duration=None, title="Cannot score this input", print_exception=False)


def _display_name(payload: dict | None) -> str:
    """The name the visitor knows the file by (not Gradio's temporary path)."""
    return (payload or {}).get("orig_name") or Path((payload or {}).get("path") or "file").name


def _scrub(message: str, payloads: list[dict | None]) -> str:
    """``message`` with Gradio's temporary paths replaced by the visitor's file names."""
    for payload in payloads:
        if payload and payload.get("path"):
            message = message.replace(str(payload["path"]), _display_name(payload))
    return message


def _guarded(predict: Callable[..., Any]) -> Callable[..., Any]:
    """``predict`` with unexpected failures logged in full (once) and shown as one generic line: the page learns that
    it failed, the log learns why, and the next request is served as usual."""

    @functools.wraps(predict)
    def wrapper(*args: Any) -> Any:
        try:
            return predict(*args)
        except gr.Error:
            raise
        except Exception:
            logger.exception("request failed")
            raise gr.Error("Something went wrong while scoring this input; it has been logged.",
                           print_exception=False) from None

    return wrapper


def _require(payload: dict | None, what: str) -> str:
    if not payload or not payload.get("path"):
        raise UserInputError(f"Please add the {what}.")
    return str(payload["path"])


def rounded(value: Any, digits: int = JSON_DIGITS) -> Any:
    """``value`` (JSON-like: dicts, lists, numbers) with every float rounded to ``digits`` decimals."""
    if isinstance(value, (float, np.floating)):
        return round(float(value), digits)
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item, digits) for item in value]
    return value


class SpaceModel:
    """The predictor, loaded once, what the checkpoint says it was trained on, and the requests the page sends."""

    def __init__(self, model_id_or_path: str, max_video_seconds: float = MAX_VIDEO_SECONDS):
        self.model_id = model_id_or_path
        self.max_video_seconds = max_video_seconds
        started = time.perf_counter()
        self.predictor = MicroAUPredictor.from_pretrained(model_id_or_path)
        logger.info("loaded %s in %.1f s", model_id_or_path, time.perf_counter() - started)
        self.training_data = read_training_data(model_id_or_path)
        # The JSON downloads and the browser copies of videos; Gradio copies what it serves into its own cache.
        self._files = tempfile.TemporaryDirectory(prefix="micro_au_space_")

    @property
    def shown_name(self) -> str:
        """The checkpoint as a visitor should read it: a local folder by its name (its full path says nothing)."""
        return Path(self.model_id).name if Path(self.model_id).exists() else self.model_id

    @property
    def trained_on_synthetic(self) -> bool:
        return bool(self.training_data) and SYNTHETIC_CORPUS in self.training_data["corpora"]

    def describe(self) -> str:
        config = self.predictor.model.config
        vision = config.vision_config
        aus = ", ".join(f"AU{a}" for a in self.predictor.aus)
        return (f"Model `{self.shown_name}`: {len(self.predictor.aus)} AUs ({aus}); {vision.image_size} px crops, "
                f"{vision.patch_size} px patches, input `{config.input_mode}`; an AU is present when its probability "
                f"is at least {self.predictor.threshold:g}.")

    def training_notice(self) -> str:
        """What the checkpoint was trained on, in words; a warning when that was the synthetic corpus."""
        if self.trained_on_synthetic:
            return (f"**Demo checkpoint, trained on synthetic data.** `{self.shown_name}` learnt from the synthetic "
                    f"micro-AU corpus ({self.training_data['num_samples']} micro-movements rendered on freely licensed "
                    "face photos), not from real micro-expressions: its scores show what this Space does, not how well "
                    "micro-AUs can be read from real faces.")
        if self.training_data and self.training_data["corpora"]:
            return (f"Trained on {', '.join(self.training_data['corpora'])} "
                    f"({self.training_data['num_samples']} samples).")
        return "This checkpoint does not record its training data; see its model card."

    # -- requests ----------------------------------------------------------------------------------------------
    # Gradio hands the raw upload records (preprocess=False) so that a file that is not an image reaches our own
    # loader, whose message names the file, instead of failing inside Gradio with a bare "Error".

    def predict_pair(self, onset: dict | None, apex: dict | None, gain: float = DEFAULT_GAIN) -> tuple:
        paths = [_require(onset, "onset image"), _require(apex, "apex image")]
        try:
            prediction = self.predictor.predict_pair(*paths, name="your pair")  # messages read "your pair onset: ..."
        except (OSError, ValueError) as err:
            raise UserInputError(_scrub(str(err), [onset, apex])) from None
        if not prediction.ok:
            raise UserInputError(_explain(prediction, [onset, apex]))
        source = {"onset": _display_name(onset), "apex": _display_name(apex)}
        return self._outputs(prediction, gain, "", source)

    def predict_video(self, video: dict | None, gain: float = DEFAULT_GAIN) -> tuple:
        path = _require(video, "video")
        self._check_video(video)
        try:
            # The limits also bound a video whose container does not tell its length or frame rate.
            result = self.predictor.predict_video(path, max_seconds=self.max_video_seconds,
                                                  max_frames=int(self.max_video_seconds * MAX_FPS))
        except (VideoError, NoFaceError, OSError, ValueError) as err:
            raise UserInputError(_scrub(str(err), [video])) from None
        result = dataclasses.replace(result, path=_display_name(video))  # what the time line's title names
        document = json.loads(_scrub(json.dumps(results_document(result)), [video]))  # the pairs' names too
        record = rounded(document)
        folder = Path(tempfile.mkdtemp(dir=self._files.name))
        timeline = str(plot_timeline(result, folder / TIMELINE_FILE))
        table = pd.DataFrame([_interval_row(i) for i in sorted(result.intervals, key=lambda i: i.onset_frame)],
                             columns=INTERVAL_COLUMNS)
        strongest = strongest_micro(result)
        note = self._video_note(result, strongest)
        download = self._write_record(record, folder)
        shown = _client_safe(record)
        if strongest is None:
            status = "  \n".join([_no_micro_headline(result, video), note])
            return (None, None, None, None, shown, status, _video_explanation(result), download, timeline, table)
        bars, heat, motion = self._figures(strongest.prediction, gain)
        explanation = self._explanation(strongest.prediction) + "\n\n" + _video_explanation(result)
        return (bars, heat, motion, rounded(strongest.prediction.emotion_scores), shown,
                _status(strongest.prediction, note), explanation, download, timeline, table)

    def _video_note(self, result: VideoPrediction, strongest: SpottedInterval | None) -> str:
        """What was read, what was spotted, and the frames that had no usable face, in a few lines."""
        micro = result.micro_expressions
        counts = f"{len(micro)} micro-expression{'s' if len(micro) != 1 else ''}"
        others = len(result.intervals) - len(micro)
        if others:
            counts += f" and {others} other movement{'s' if others != 1 else ''} (in the table)"
        lines = [f"**Video:** {len(result.frame_indices)} frames read at {result.fps:g} fps; {counts} spotted."]
        if strongest is not None:
            lines.append(f"**Shown:** the strongest micro-expression, {_interval_span(strongest)}, apex frame "
                         f"{strongest.apex_frame}; the pictures compare its onset and apex frames.")
        runs = result.unusable_runs()
        if runs:
            named = ", ".join(f"{_frame_range(r['first_frame'], r['last_frame'])} ({r['status'].replace('_', ' ')})"
                              for r in runs[:UNUSABLE_RUNS_NAMED])
            more = f" and {len(runs) - UNUSABLE_RUNS_NAMED} more runs" if len(runs) > UNUSABLE_RUNS_NAMED else ""
            frames = sum(r["frames"] for r in runs)
            lines.append(f"**No usable face** in {frames} frame{'s' if frames != 1 else ''}: {named}{more}; "
                         "nothing is spotted there.")
        if result.truncated_by == "frame_limit":
            lines.append(f"Only the first {self.max_video_seconds:g} s were read.")
        elif result.truncated:
            lines.append(f"Note: {result.note}.")
        return "  \n".join(lines)

    def preview_video(self, video: dict | None) -> str | None:
        """A copy of the uploaded video that any browser plays (VP8 WebM, at most :data:`PREVIEW_SIDE` px and
        :data:`PREVIEW_MAX_FPS`), checked against the Space's bounds first; ``None`` clears the player when the upload
        is removed."""
        if not video or not video.get("path"):
            return None
        info = self._check_video(video)
        limit = frame_limit(info, int(self.max_video_seconds * MAX_FPS), self.max_video_seconds)
        frames = iter_frames(info.path, max_frames=limit)
        first = next(frames, None)
        if first is None:
            raise UserInputError(f"{_display_name(video)}: no frame of it could be decoded; the file is empty or "
                                 "broken")
        scale = min(1.0, PREVIEW_SIDE / max(first[1].shape[:2]))
        size = tuple(max(2, round(side * scale / 2) * 2) for side in first[1].shape[1::-1])  # VP8 wants even sides
        fps = info.fps if info.fps > 0 else PREVIEW_FPS
        step = math.ceil(fps / PREVIEW_MAX_FPS)
        kept = itertools.islice(itertools.chain([first], frames), 0, None, step)
        shrunk = (cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for _, frame in kept)
        out = Path(tempfile.mkdtemp(dir=self._files.name)) / f"{Path(_display_name(video)).stem}.webm"
        return str(write_video(out, shrunk, fps=fps / step, codec="VP80"))

    def _check_video(self, video: dict) -> VideoInfo:
        """The video's header, refused (one line) when OpenCV cannot open it, its frames are over the pixel bound or
        it lasts longer than the Space takes."""
        try:
            info = probe_video(str(video["path"]))
            check_pixel_count(info.width, info.height, _display_name(video))
        except (VideoError, ImageLoadError) as err:
            raise UserInputError(_scrub(str(err), [video])) from None
        seconds = info.frame_count / info.fps if info.fps > 0 else 0.0
        if seconds > self.max_video_seconds:
            raise UserInputError(
                f"{_display_name(video)} lasts {seconds:.1f} s; this Space takes videos up to "
                f"{self.max_video_seconds:g} s. Trim it to the seconds around the expression."
            )
        return info

    # -- results -----------------------------------------------------------------------------------------------

    def _outputs(self, prediction: Prediction, gain: float, note: str, source: dict[str, Any]) -> tuple:
        record = self.result_record(prediction, source)
        return (*self._figures(prediction, gain), record["emotion_scores"], record, _status(prediction, note),
                self._explanation(prediction), self._write_record(record))

    def _figures(self, prediction: Prediction, gain: float) -> tuple[pd.DataFrame, Any, Any]:
        """The bar plot's rows, the AU heat map and the amplified motion of one scored onset/apex pair."""
        weights = self.predictor.processor.region_weights(prediction.region_boxes, 1)[0].numpy()
        heat = au_heat_map(prediction.apex_crop, weights, self.predictor.processor.grid_size,
                           prediction.probabilities, [s.present for s in prediction.aus],
                           [f"AU{s.au}" for s in prediction.aus], self.predictor.threshold)
        return _bar_frame(prediction), heat, motion_image(prediction.onset_crop, prediction.apex_crop, gain)

    def result_record(self, prediction: Prediction, source: dict[str, Any]) -> dict[str, Any]:
        """The result as JSON, every float rounded to :data:`JSON_DIGITS` decimals: what was scored, by which
        checkpoint and threshold, and the prediction (the objective class with its numeral and meaning)."""
        scores = prediction.to_dict()
        scores.pop("name")  # "your pair": the input says what was scored
        number = prediction.objective_class
        return rounded({
            "input": source,
            "model": self.shown_name,
            "training_data": self.training_data,
            "threshold": self.predictor.threshold,
            **scores,
            "objective_class_name": OBJECTIVE_CLASS_NAMES.get(number) if number else None,
            "objective_class_explained": objective_class_text(number, self.predictor.aus) if number else None,
        })

    def _write_record(self, record: dict[str, Any], folder: Path | None = None) -> str:
        folder = folder or Path(tempfile.mkdtemp(dir=self._files.name))  # one folder a request: names never clash
        path = folder / RESULT_FILE
        path.write_text(json.dumps(record, indent=2) + "\n")
        return str(path)

    def _explanation(self, prediction: Prediction) -> str:
        """Every number on the page, in words."""
        threshold = self.predictor.threshold
        rows = [f"| AU{s.au} | {CATALOGUE[s.au].name} | {_what_moves(s.au)} | {s.score:.2f} | "
                f"{'**present**' if s.present else 'absent'} |" for s in prediction.aus]
        emotions = sorted(prediction.emotion_scores.items(), key=lambda item: -item[1])
        lines = [
            "#### How to read these numbers",
            f"**AU probabilities.** For each action unit, the probability (0 to 1) that it moved between the onset "
            f"and the apex. An AU counts as **present** when its probability is at least **{threshold:g}**, the "
            "checkpoint's threshold; the heat map colours only those AUs' regions, on the colour bar's scale.",
            "",
            "| AU | FACS name | what moves | probability | reading |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "**Emotion scores.** Each emotion has FACS/EMFACS prototypes (AU combinations, e.g. AU6+AU12 for "
            "happiness); its score is how likely its best prototype is, given the AU probabilities, as a share of "
            "all the emotions (they sum to 1). *none* is the chance that no AU moved. No emotion label was used "
            "to train the model. Here: " + (", ".join(f"{name} {share:.2f}" for name, share in emotions) or "none"),
        ]
        if prediction.objective_class:
            meaning = objective_class_text(prediction.objective_class, self.predictor.aus)
            lines += ["", f"**Objective class {meaning}.** Davison et al. (2018) sort micro-expressions into "
                      "objective classes I-VII by the AUs that move rather than by the emotion reported; this is the "
                      "class whose AU combinations best match the probabilities."]
        return "\n".join(lines)


def _video_explanation(result: VideoPrediction) -> str:
    """How the video was read: the time line, the kinds of interval and the table's columns, in words."""
    return "\n".join([
        "#### How the video was read",
        "**Spotting.** Each frame's face is aligned and every AU region compared with the frames "
        f"{SPOTTING.micro_window_s:g} s before and after it: a movement that rises and falls back within "
        f"{SPOTTING.micro_max_s:g} s differs from both sides at its apex. The time line shows each region's motion "
        "(top) and the spotting score (bottom: the most moved regions, in MADs over their own noise in this "
        f"video); a peak must reach **{result.threshold:g}** to be spotted. Hatched: frames without a usable face.",
        "",
        f"**Kinds.** *micro*: brief (at most {SPOTTING.micro_max_s:g} s) and back to rest, shaded red, scored by "
        "the model on its onset and apex frames; *macro*: a longer movement (blue), scored too; *blink* (grey) and "
        "*head motion* (purple) are listed so you can check them, never scored as expressions. A face that moves "
        "and stays moved is a step, not a micro-expression, and is not spotted.",
        "",
        "**Table.** Frames are the video's (from 0), times in seconds; *AUs present* and *emotion* are the "
        "model's reading of the interval's onset/apex pair (at the checkpoint's threshold); *strength* is the "
        "peak of the spotting score.",
    ])


def _no_micro_headline(result: VideoPrediction, video: dict) -> str:
    """The status's first line when no micro-expression can be shown: none was spotted, or none could be scored."""
    if not result.micro_expressions:
        return f"**{NO_MICRO[0].upper()}{NO_MICRO[1:]}.**"
    first = result.micro_expressions[0]
    why = _scrub(first.prediction.message, [video]) if first.prediction is not None else "not scored"
    return (f"**{len(result.micro_expressions)} micro-expression(s) spotted, but the model could not score "
            f"their frames** (first: {_interval_span(first)}: {why}).")


def _client_safe(document: dict[str, Any]) -> dict[str, Any]:
    """The video's results document for the JSON panel: its ``video.path`` (the visitor's file name) as
    ``video.file``. ``gradio_client`` (2.7, against a Gradio 6 server) takes any ``{"path": str}`` in an output for
    a file of the server's to fetch, and fails on it; the download keeps the document as it is."""
    video = {("file" if key == "path" else key): value for key, value in document["video"].items()}
    return {**document, "video": video}


def strongest_micro(result: VideoPrediction) -> SpottedInterval | None:
    """The micro-expression with the largest spotting score whose onset/apex pair the model scored; ``None`` if none."""
    scored = [i for i in result.micro_expressions if i.prediction is not None and i.prediction.ok]
    return max(scored, key=lambda i: i.strength, default=None)


def _frame_range(first: int, last: int) -> str:
    return f"frame {first}" if first == last else f"frames {first}-{last}"


def _interval_span(interval: SpottedInterval) -> str:
    """``frames 32-38 (1.28-1.52 s)``."""
    onset, offset = interval.time(interval.onset_frame), interval.time(interval.offset_frame)
    when = f" ({onset:.2f}-{offset:.2f} s)" if onset is not None and offset is not None else ""
    return f"{_frame_range(interval.onset_frame, interval.offset_frame)}{when}"


def _interval_row(interval: SpottedInterval) -> list[Any]:
    """One row of the interval table (:data:`INTERVAL_COLUMNS`)."""
    prediction = interval.prediction
    onset, offset = interval.time(interval.onset_frame), interval.time(interval.offset_frame)
    times = f"{onset:.2f}-{offset:.2f}" if onset is not None and offset is not None else ""
    if prediction is None:  # blinks and head motion: listed, not scored
        aus, emotion = "not scored (moved: " + "+".join(f"AU{a}" for a in interval.regions) + ")", ""
    elif not prediction.ok:
        aus, emotion = f"not scored ({prediction.status.replace('_', ' ')})", ""
    else:
        aus = "+".join(f"AU{a}" for a in prediction.present) or "none above the threshold"
        emotion = prediction.emotion or "none"
    frames = f"{interval.onset_frame}-{interval.apex_frame}-{interval.offset_frame}"
    return [interval.kind.replace("_", " "), frames, times, aus, emotion, round(interval.strength, 1)]


def objective_class_text(number: int, aus: Sequence[int]) -> str:
    """``V (AU1 Inner brow raiser, ...: the AU combinations Davison et al. (2018) group with sadness)``, naming the
    class's AUs that the model detects."""
    used = sorted({a for combo in OBJECTIVE_CLASSES[number] for a in combo if a in aus})
    names = ", ".join(f"AU{a} {CATALOGUE[a].name}" for a in used)
    return (f"{OBJECTIVE_CLASS_NAMES[number]} ({names}: the AU combinations Davison et al. (2018) group with "
            f"{OBJECTIVE_CLASS_EMOTIONS[number]})")


def _what_moves(au: int) -> str:
    """The AU's present prompt as a phrase: "inner brows are slightly raised"."""
    return CATALOGUE[au].present_prompt.removeprefix("a face whose ").removeprefix("a face with ")


def _explain(prediction: Prediction, payloads: list[dict | None]) -> str:
    message = _scrub(prediction.message, payloads)
    if prediction.status == "no_face":
        return f"No face found: {message}. Use frames where one face is clearly visible and roughly frontal."
    if prediction.status == "bad_image":
        return f"Not a usable image: {message}."
    if prediction.status == "unregistered":
        return f"Not scored: {message}. Use two frames of one take where the head keeps still."
    return message or f"Cannot score this input ({prediction.status})."


def _bar_frame(prediction: Prediction) -> pd.DataFrame:
    """One row per AU, in the model's order, for the bar plot."""
    return pd.DataFrame({
        "AU": [f"AU{s.au}" for s in prediction.aus],
        "probability": [round(s.score, JSON_DIGITS) for s in prediction.aus],
        "state": ["present" if s.present else "absent" for s in prediction.aus],
        "name": [s.label for s in prediction.aus],
    })


def _status(prediction: Prediction, note: str) -> str:
    present = [f"{s.label} ({s.score:.2f})" for s in prediction.aus if s.present]
    faces = {"aligned": "face found and aligned on its landmarks",
             "template": "frames taken as aligned crops (canonical AU regions)"}
    face = faces.get(prediction.status, prediction.status)
    if prediction.num_faces > 1:
        face += f"; {prediction.num_faces} faces, the largest scored"
    share = prediction.emotion_scores.get(prediction.emotion or "", 0.0)
    lines = [f"**AUs present:** {', '.join(present) if present else 'none above the threshold'}",
             f"**Emotion estimate:** {prediction.emotion or 'no prototype among these AUs'}"
             + (f" ({share:.2f} of the emotion scores)" if prediction.emotion else "")]
    if prediction.objective_class:
        meaning = objective_class_text(prediction.objective_class, [s.au for s in prediction.aus])
        lines.append(f"**Objective class:** {meaning}")
    lines.append(f"**Face:** {face}")
    if note:
        lines.append(note)
    return "  \n".join(lines)


class Examples(NamedTuple):
    """The Space's examples: onset/apex path pairs and video paths, each with the label the page shows."""

    pairs: list[list[str]]
    pair_labels: list[str]
    videos: list[str]
    video_labels: list[str]


def load_examples() -> Examples:
    """The examples listed in ``examples/examples.json`` (see make_examples.py); none when it is missing."""
    manifest_path = EXAMPLES_DIR / "examples.json"
    if not manifest_path.is_file():
        return Examples([], [], [], [])
    manifest = json.loads(manifest_path.read_text())
    pairs = [[str(EXAMPLES_DIR / p["onset"]), str(EXAMPLES_DIR / p["apex"])] for p in manifest.get("pairs", [])]
    labels = [f"{p['onset'].split('_')[0]}: {'+'.join(f'AU{a}' for a in p['aus'])} ({p['emotion']})"
              for p in manifest.get("pairs", [])]
    video = manifest.get("video")
    if not video:
        return Examples(pairs, labels, [], [])
    moves = ", ".join(f"{i['kind']} {'+'.join(f'AU{a}' for a in i['aus'])} ({i['emotion']}) at "
                      f"{i['onset_frame'] / video['fps']:.1f}-{i['offset_frame'] / video['fps']:.1f} s"
                      for i in video["intervals"])
    seconds = video["frames"] / video["fps"]
    return Examples(pairs, labels, [str(EXAMPLES_DIR / video["video"])],
                    [f"{video['video'].split('_')[0]}: {moves}, {seconds:g} s"])


def _showing(visible: bool) -> Callable[[], gr.Column]:
    """An event handler that shows (or hides) a column."""
    return lambda: gr.Column(visible=visible)


def build_demo(model_id_or_path: str, max_video_seconds: float = MAX_VIDEO_SECONDS) -> gr.Blocks:
    """The Space's page, with the model loaded (once) from ``model_id_or_path`` (a Hub id or a local folder) and the
    queue set up; launch it with :data:`LAUNCH_OPTIONS`."""
    space = SpaceModel(model_id_or_path, max_video_seconds)
    pairs, pair_labels, videos, video_labels = load_examples()
    with gr.Blocks(title="Micro-AU CLIP") as demo:
        gr.Markdown(INTRO)
        gr.Markdown(space.training_notice(), elem_id="training-notice",
                    elem_classes=["synthetic-warning"] if space.trained_on_synthetic else None)
        gr.Markdown(space.describe())
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tab("Onset + apex") as pair_tab:
                    with gr.Row():
                        onset = gr.Image(type="filepath", label="Onset (neutral)", sources=["upload"], height=220,
                                         elem_id="onset")
                        apex = gr.Image(type="filepath", label="Apex (peak)", sources=["upload"], height=220,
                                        elem_id="apex")
                    pair_button = gr.Button("Detect AUs", variant="primary")
                    if pairs:
                        gr.Examples(pairs, [onset, apex], label="Synthetic micro-expressions (public-domain faces)",
                                    example_labels=pair_labels)
                with gr.Tab("Video") as video_tab:
                    video = gr.File(label=f"Video, up to {max_video_seconds:g} s, with the face at rest around the "
                                          "movement",
                                    file_types=list(VIDEO_SUFFIXES), elem_id="video-file", height=120)
                    gr.Markdown(f"Any format OpenCV reads ({', '.join(VIDEO_SUFFIXES)}), frames up to "
                                f"{MAX_PIXELS / 1e6:.0f} MP. The spotter finds movements of at most "
                                f"{SPOTTING.micro_max_s:g} s that return to rest, and needs the face on at least "
                                f"{2 * SPOTTING.micro_window_s:g} s of it. Below, the browser plays a WebM copy; the "
                                "file as uploaded is what gets scored.")
                    # No label badge: it would lie over the top of the picture.
                    preview = gr.Video(label="Your video, as the browser plays it", show_label=False,
                                       interactive=False, loop=True, height=220, elem_id="video-preview")
                    video_button = gr.Button("Detect AUs in the video", variant="primary")
                    if videos:
                        gr.Examples([[v] for v in videos], [video], label="A real face, a synthetic micro-smile",
                                    example_labels=video_labels)
                gain = gr.Slider(1, 40, value=DEFAULT_GAIN, step=1, label="Motion amplification (x gain)")
            with gr.Column(scale=1):
                emotion = gr.Label(label="Emotion estimate (from the AUs; shares of the emotion scores)",
                                   num_top_classes=4, elem_id="emotion")
                status = gr.Markdown("Results appear here.", label="Status", elem_id="status")
                # sort: the model's AU order (by number), not Vega's alphabetical AU1, AU12, AU14, AU15, AU17, AU2
                bars = gr.BarPlot(x="AU", y="probability", color="state", y_lim=[0, 1],
                                  sort=[f"AU{a}" for a in space.predictor.aus],
                                  color_map={"present": "#d1495b", "absent": "#8d99ae"},
                                  tooltip=["name", "probability"],
                                  label=f"AU probabilities (present: p >= {space.predictor.threshold:g})",
                                  elem_id="au-bars")
        # The video's own results, full width: shown while the Video tab is open (the pair tab has no time line).
        with gr.Column(visible=False, elem_id="video-results") as video_results:
            gr.Markdown("**Time line**: each AU region's motion (top) and the spotting score against its threshold "
                        "(bottom); spotted intervals shaded by kind (micro red, macro blue, blink grey, head motion "
                        "purple) and labelled with their AUs", elem_id="timeline-caption")
            timeline = gr.Image(label="Time line", show_label=False, type="filepath", format="png",
                                interactive=False, elem_id="timeline")
            intervals = gr.Dataframe(headers=INTERVAL_COLUMNS, label="Spotted intervals", interactive=False,
                                     wrap=True, elem_id="intervals")
        with gr.Row():  # captions above the pictures, not label badges, which would cover the colour bar's top
            with gr.Column():
                gr.Markdown("**AU regions that fired**, on the aligned apex in grey; colour: the AU's probability "
                            "(the bar on the right)", elem_id="au-heat-map-caption")
                heat = gr.Image(label="AU regions that fired", show_label=False, type="pil", format="png",
                                interactive=False, height=DISPLAY_SIZE, elem_id="au-heat-map")
            with gr.Column():
                gr.Markdown("**Amplified motion** `|apex - onset| x gain`: the brighter, the more the face changed")
                motion = gr.Image(label="Amplified motion", show_label=False, type="pil", format="png",
                                  interactive=False, height=DISPLAY_SIZE)
        explanation = gr.Markdown(elem_id="explanation")
        with gr.Row():
            download = gr.DownloadButton("Download the result (JSON)", elem_id="download-json")  # set by each result
        with gr.Accordion("The result as JSON (values rounded to 4 decimals)", open=False):
            scores = gr.JSON(label="Result")
        outputs = [bars, heat, motion, emotion, scores, status, explanation, download]
        # One slot for both events: they share one model and one MediaPipe graph, which are not meant for two threads.
        common = {"outputs": outputs, "preprocess": False, "concurrency_id": "model", "concurrency_limit": 1}
        pair_button.click(_guarded(space.predict_pair), [onset, apex, gain], api_name="predict_pair", **common)
        video_button.click(_guarded(space.predict_video), [video, gain], api_name="predict_video",
                           **{**common, "outputs": outputs + [timeline, intervals]})
        for tab, shown in ((pair_tab, False), (video_tab, True)):  # page layout only: no queue, no API
            tab.select(_showing(shown), None, [video_results], queue=False, api_visibility="private")
        video.change(_guarded(space.preview_video), [video], [preview], preprocess=False, api_name="preview_video",
                     api_visibility="undocumented", concurrency_id="preview", concurrency_limit=1)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return demo


#: What ``launch`` needs beyond host and port: the upload bound, the offline-safe theme and the page's style.
LAUNCH_OPTIONS: dict[str, Any] = {"max_file_size": MAX_FILE_SIZE, "theme": THEME, "css": CSS,
                                  "footer_links": ["api", "gradio"]}


def main(model: str | None = None, port: int | None = None, host: str | None = None) -> None:
    """Run the Space: ``model`` (else ``$MODEL_ID``, else the published checkpoint) on ``host:port`` (else Gradio's
    defaults and its ``GRADIO_SERVER_NAME``/``GRADIO_SERVER_PORT``, as on the Hub)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up requests, one line each
    model_id = model or os.environ.get("MODEL_ID") or DEFAULT_MODEL_ID
    build_demo(model_id).launch(server_name=host, server_port=port, **LAUNCH_OPTIONS)  # CheckpointError: the caller's


if __name__ == "__main__":
    try:
        main()
    except CheckpointError as err:  # `microau space` reports it as a user error (exit 2) itself
        raise SystemExit(f"cannot start the Space: {err}") from None
