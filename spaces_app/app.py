"""The Micro-AU CLIP Space: micro-expression action units and the emotion they suggest, from an onset and an apex
frame or from a short video.

    MODEL_ID=my-org/micro-au-clip-casme2 python app.py         # what the Hub runs (MODEL_ID: a Hub id or a folder)
    microau space --model outputs/quickstart/checkpoint         # the same app, from the package's command line

The model loads once, when the app starts; requests then share it through a queue that runs one at a time (a CPU
Space has no spare cores for two forward passes). Every bad input (not an image, no face, a video too long) comes back
to the page as one line saying what is wrong, and the next request is served as usual.

API (``gradio_client``): ``/predict_pair`` takes ``onset``, ``apex`` (and optional ``gain``); ``/predict_video`` takes
``video`` (and ``gain``). Both return the bar plot, the heat map, the motion image, the emotion label, the AU scores as
JSON and a status line.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from microau_hf.aus import OBJECTIVE_CLASS_NAMES
from microau_hf.face import NoFaceError
from microau_hf.inference import CheckpointError, MicroAUPredictor, Prediction
from microau_hf.video import VideoError, probe_video

from space_figures import DISPLAY_SIZE, au_heat_map, motion_image

logger = logging.getLogger("microau_space")

DEFAULT_MODEL_ID = "my-org/micro-au-clip-casme2"
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
MAX_FILE_SIZE = "20mb"  # a 128-1024 px frame is well under 1 MB; a few seconds of video fit in 20 MB
MAX_VIDEO_SECONDS = 10.0  # a micro-expression lasts under 0.5 s; longer clips only cost the other visitors time
MAX_FPS = 200  # CASME II and SAMM record at 200 fps: the frame bound for a video whose frame rate is unknown
QUEUE_SIZE = 16  # requests waiting beyond this are refused at once rather than left to time out
DEFAULT_GAIN = 10.0  # a 1-3 px micro-movement changes edges by ~5-30 grey levels; x10 makes that visible

# A local font stack: the default theme fetches Google Fonts, which an offline machine cannot reach.
THEME = gr.themes.Soft(font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                       font_mono=["ui-monospace", "Consolas", "monospace"])

INTRO = """# Micro-AU CLIP
Detects **micro-expression action units** (FACS AUs shown for 1/25 to 1/2 s, at low intensity) from the motion between
an **onset** frame (the face at rest) and an **apex** frame (the peak of the movement), or from a short **video**
whose first frame is the onset. The emotion is estimated from the AUs through FACS prototypes: the model never saw an
emotion label. Research demo, not for decisions about people."""


class UserInputError(gr.Error):
    """A request the Space refuses, with one line for the page saying why (kept on screen until closed)."""

    def __init__(self, message: str):
        super().__init__(message, duration=None, title="Cannot score this input")


def _display_name(payload: dict | None) -> str:
    """The name the visitor knows the file by (not Gradio's temporary path)."""
    return (payload or {}).get("orig_name") or Path((payload or {}).get("path") or "file").name


def _scrub(message: str, payloads: list[dict | None]) -> str:
    """``message`` with Gradio's temporary paths replaced by the visitor's file names."""
    for payload in payloads:
        if payload and payload.get("path"):
            message = message.replace(str(payload["path"]), _display_name(payload))
    return message


def _guarded(predict: Callable[..., tuple]) -> Callable[..., tuple]:
    """``predict`` with unexpected failures logged in full and shown as one generic line: the page learns that it
    failed, the log learns why, and the next request is served as usual."""

    @functools.wraps(predict)
    def wrapper(*args: Any) -> tuple:
        try:
            return predict(*args)
        except gr.Error:
            raise
        except Exception:
            logger.exception("request failed")
            raise gr.Error("Something went wrong while scoring this input; it has been logged.") from None

    return wrapper


def _require(payload: dict | None, what: str) -> str:
    if not payload or not payload.get("path"):
        raise UserInputError(f"Please add the {what}.")
    return str(payload["path"])


class SpaceModel:
    """The predictor, loaded once, and the two requests the page sends it."""

    def __init__(self, model_id_or_path: str, max_video_seconds: float = MAX_VIDEO_SECONDS):
        self.model_id = model_id_or_path
        self.max_video_seconds = max_video_seconds
        started = time.perf_counter()
        self.predictor = MicroAUPredictor.from_pretrained(model_id_or_path)
        logger.info("loaded %s in %.1f s", model_id_or_path, time.perf_counter() - started)

    def describe(self) -> str:
        config = self.predictor.model.config
        vision = config.vision_config
        aus = ", ".join(f"AU{a}" for a in self.predictor.aus)
        # A local folder is shown by its name: its full path says nothing to a visitor.
        shown = Path(self.model_id).name if Path(self.model_id).exists() else self.model_id
        return (f"Model `{shown}`: {len(self.predictor.aus)} AUs ({aus}); {vision.image_size} px crops, "
                f"{vision.patch_size} px patches, input `{config.input_mode}`; present when p >= "
                f"{self.predictor.threshold:g}.")

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
        return self._outputs(prediction, gain, "")

    def predict_video(self, video: dict | None, gain: float = DEFAULT_GAIN) -> tuple:
        path = _require(video, "video")
        try:
            info = probe_video(path)
        except VideoError as err:
            raise UserInputError(_scrub(str(err), [video])) from None
        seconds = info.frame_count / info.fps if info.fps > 0 else 0.0
        if seconds > self.max_video_seconds:
            raise UserInputError(
                f"{_display_name(video)} lasts {seconds:.1f} s; this Space takes videos up to "
                f"{self.max_video_seconds:g} s. Trim it to the seconds around the expression."
            )
        try:
            # The limits also bound a video whose container does not tell its length or frame rate.
            result = self.predictor.predict_video(path, max_seconds=self.max_video_seconds,
                                                  max_frames=int(self.max_video_seconds * MAX_FPS))
        except (VideoError, NoFaceError, OSError, ValueError) as err:
            raise UserInputError(_scrub(str(err), [video])) from None
        if not result.prediction.ok:
            raise UserInputError(_explain(result.prediction, [video]))
        apex_time = result.time(result.apex_frame)
        when = f" ({apex_time:.2f} s)" if apex_time is not None else ""
        note = (f"Onset: frame {result.onset_frame}; apex (largest motion): frame {result.apex_frame}{when} "
                f"of {len(result.frame_indices)} frames read.")
        if result.truncated_by == "frame_limit":
            note += f" Only the first {self.max_video_seconds:g} s were read."
        elif result.truncated:
            note += f" Note: {result.note}."
        return self._outputs(result.prediction, gain, note)

    def _outputs(self, prediction: Prediction, gain: float, note: str) -> tuple:
        weights = self.predictor.processor.region_weights(prediction.region_boxes, 1)[0].numpy()
        grid = self.predictor.processor.grid_size
        labels = [f"AU{s.au}" for s in prediction.aus]
        heat = au_heat_map(prediction.apex_crop, weights, grid, prediction.probabilities,
                           [s.present for s in prediction.aus], labels)
        motion = motion_image(prediction.onset_crop, prediction.apex_crop, gain)
        return (_bar_frame(prediction), heat, motion, prediction.emotion_scores or {},
                prediction.to_dict(), _status(prediction, note))


def _explain(prediction: Prediction, payloads: list[dict | None]) -> str:
    message = _scrub(prediction.message, payloads)
    if prediction.status == "no_face":
        return f"No face found: {message}. Use frames where one face is clearly visible and roughly frontal."
    if prediction.status == "bad_image":
        return f"Not a usable image: {message}."
    return message or f"Cannot score this input ({prediction.status})."


def _bar_frame(prediction: Prediction) -> pd.DataFrame:
    """One row per AU, in the model's order, for the bar plot."""
    return pd.DataFrame({
        "AU": [f"AU{s.au}" for s in prediction.aus],
        "probability": [round(s.score, 4) for s in prediction.aus],
        "state": ["present" if s.present else "absent" for s in prediction.aus],
        "name": [s.label for s in prediction.aus],
    })


def _status(prediction: Prediction, note: str) -> str:
    present = [f"{s.label} ({s.score:.2f})" for s in prediction.aus if s.present]
    face = {"aligned": "face found and aligned on its landmarks",
            "template": "frames taken as aligned crops (canonical AU regions)"}.get(prediction.status, prediction.status)
    if prediction.num_faces > 1:
        face += f"; {prediction.num_faces} faces, the largest scored"
    lines = [f"**AUs present:** {', '.join(present) if present else 'none above the threshold'}",
             f"**Emotion estimate:** {prediction.emotion or 'no prototype among these AUs'}"]
    if prediction.objective_class is not None:
        lines.append(f"**Objective class:** {OBJECTIVE_CLASS_NAMES.get(prediction.objective_class)}")
    lines.append(f"**Face:** {face}")
    if note:
        lines.append(note)
    return "  \n".join(lines)


def load_examples() -> tuple[list[list[str]], list[str], list[str]]:
    """(pair examples, their labels, video examples) from ``examples/examples.json`` (see make_examples.py)."""
    manifest_path = EXAMPLES_DIR / "examples.json"
    if not manifest_path.is_file():
        return [], [], []
    manifest = json.loads(manifest_path.read_text())
    pairs = [[str(EXAMPLES_DIR / p["onset"]), str(EXAMPLES_DIR / p["apex"])] for p in manifest.get("pairs", [])]
    labels = [f"{p['onset'].split('_')[0]}: {'+'.join(f'AU{a}' for a in p['aus'])} ({p['emotion']})"
              for p in manifest.get("pairs", [])]
    video = manifest.get("video")
    return pairs, labels, [str(EXAMPLES_DIR / video["video"])] if video else []


def build_demo(model_id_or_path: str, max_video_seconds: float = MAX_VIDEO_SECONDS) -> gr.Blocks:
    """The Space's page, with the model loaded (once) from ``model_id_or_path`` (a Hub id or a local folder) and the
    queue set up; launch it with :data:`LAUNCH_OPTIONS`."""
    space = SpaceModel(model_id_or_path, max_video_seconds)
    pairs, pair_labels, videos = load_examples()
    with gr.Blocks(title="Micro-AU CLIP") as demo:
        gr.Markdown(INTRO)
        gr.Markdown(space.describe())
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tab("Onset + apex"):
                    with gr.Row():
                        onset = gr.Image(type="filepath", label="Onset (neutral)", sources=["upload"], height=220)
                        apex = gr.Image(type="filepath", label="Apex (peak)", sources=["upload"], height=220)
                    pair_button = gr.Button("Detect AUs", variant="primary")
                    if pairs:
                        gr.Examples(pairs, [onset, apex], label="Synthetic micro-expressions (public-domain faces)",
                                    example_labels=pair_labels)
                with gr.Tab("Video"):
                    video = gr.Video(label=f"Video, up to {max_video_seconds:g} s; the first frame is the onset",
                                     sources=["upload"], height=220)
                    video_button = gr.Button("Detect AUs in the video", variant="primary")
                    if videos:
                        gr.Examples([[v] for v in videos], [video], label="A real face, a synthetic micro-smile",
                                    example_labels=["astronaut: AU6+AU12 (happiness), 1.2 s"])
                gain = gr.Slider(1, 40, value=DEFAULT_GAIN, step=1, label="Motion amplification (x gain)")
            with gr.Column(scale=1):
                emotion = gr.Label(label="Emotion estimate (from the AUs)", num_top_classes=4, elem_id="emotion")
                status = gr.Markdown("Results appear here.", label="Status", elem_id="status")
                # sort: the model's AU order (by number), not Vega's alphabetical AU1, AU12, AU14, AU15, AU17, AU2
                bars = gr.BarPlot(x="AU", y="probability", color="state", y_lim=[0, 1],
                                  sort=[f"AU{a}" for a in space.predictor.aus],
                                  color_map={"present": "#d1495b", "absent": "#8d99ae"},
                                  tooltip=["name", "probability"], label="AU probabilities", elem_id="au-bars")
        with gr.Row():
            heat = gr.Image(label="Apex with the AU regions that fired", type="pil", format="png", interactive=False,
                            height=DISPLAY_SIZE)
            motion = gr.Image(label="Amplified motion |apex - onset| x gain", type="pil", format="png",
                              interactive=False, height=DISPLAY_SIZE)
        with gr.Accordion("AU scores (JSON)", open=False):
            scores = gr.JSON(label="AU scores")
        outputs = [bars, heat, motion, emotion, scores, status]
        # One slot for both events: they share one model and one MediaPipe graph, which are not meant for two threads.
        common = {"outputs": outputs, "preprocess": False, "concurrency_id": "model", "concurrency_limit": 1}
        pair_button.click(_guarded(space.predict_pair), [onset, apex, gain], api_name="predict_pair", **common)
        video_button.click(_guarded(space.predict_video), [video, gain], api_name="predict_video", **common)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return demo


#: What ``launch`` needs beyond host and port: the upload bound and the offline-safe theme.
LAUNCH_OPTIONS: dict[str, Any] = {"max_file_size": MAX_FILE_SIZE, "theme": THEME, "footer_links": ["api", "gradio"]}


def main(model: str | None = None, port: int | None = None, host: str | None = None) -> None:
    """Run the Space: ``model`` (else ``$MODEL_ID``, else the published checkpoint) on ``host:port`` (else Gradio's
    defaults and its ``GRADIO_SERVER_NAME``/``GRADIO_SERVER_PORT``, as on the Hub)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up requests, one line each
    model_id = model or os.environ.get("MODEL_ID") or DEFAULT_MODEL_ID
    try:
        demo = build_demo(model_id)
    except CheckpointError as err:
        raise SystemExit(f"cannot start the Space: {err}") from None
    demo.launch(server_name=host, server_port=port, **LAUNCH_OPTIONS)


if __name__ == "__main__":
    main()
