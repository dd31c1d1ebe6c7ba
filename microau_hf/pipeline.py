"""The ``micro-au-detection`` pipeline task, registered with transformers when ``microau_hf`` is imported.

    import microau_hf
    from transformers import pipeline

    detect = pipeline("micro-au-detection", model="checkpoints/casme2")      # a folder or a Hub id
    detect({"onset": "onset.jpg", "apex": "apex.jpg"})                       # or a tuple (onset, apex)
    detect("clip.mp4", every_frame=True, max_seconds=10)                     # a video path (or {"video": path})

A thin adapter over :class:`~microau_hf.inference.MicroAUPredictor`: each input is scored by the predictor and
returned as its object in the results schema (:func:`~microau_hf.results.result_object`, docs/results_schema.md),
the same object ``microau predict --out result.json`` writes. A pair gives its :class:`Prediction`'s dict: ``name``,
``status``, ``message``, ``num_faces``, ``present`` (the AUs at or above ``threshold``), ``aus`` (``{"au": 12,
"label": "AU12 Lip corner puller", "score": 0.83, "present": true}`` per AU), ``emotion`` and ``emotion_scores``
(from the AU probabilities through FACS prototypes, never from emotion labels) and ``objective_class``. A pair
whose face cannot be found is not an error: its ``status`` says why and ``aus`` is empty. A video (a file or a
folder of frames) gives its :class:`VideoPrediction`'s dict: the spotted ``intervals`` (each with ``kind``, its
frames and times, and for micro- and macro-expressions the pair's ``prediction`` as above), ``fps``,
``frames_read``, ``unusable_frames``, ``truncated``, ``note`` and ``frames`` (the per-frame time series; with
``every_frame=True`` each AU's probability too).

A list of inputs gives a list of results; so a pair must be a tuple or a dict, never a list. Image arrays are
``(H, W, 3)`` (channels last); a channels-first array or an empty list is refused with a ``ValueError``.

The model is loaded by :func:`microau_hf.checkpoints.load_model`, as by the command line and the Space: a checkpoint
that is incomplete, holds NaN or Inf, does not fit its config's shapes or was trained on other AUs than its config
lists is refused with :class:`CheckpointRefused`, whose text is the loader's one line naming the file.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from transformers import Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .checkpoints import load_model
from .inference import CheckpointError, MicroAUPredictor, Prediction, VideoPrediction
from .modeling_micro_au_clip import MicroAUClipModel
from .results import result_object

TASK = "micro-au-detection"
#: What ``pipeline(...)`` hands on to the model download (the rest of its model keywords concern devices and dtypes,
#: which the pipeline applies itself).
HUB_OPTIONS = ("revision", "token", "cache_dir", "local_files_only")


class CheckpointRefused(Exception):
    """A checkpoint ``pipeline(TASK, model=...)`` refuses; the text is the loader's one line
    (:class:`~microau_hf.checkpoints.CheckpointError`). It is not a ``ValueError`` on purpose: transformers catches a
    ``ValueError`` raised while it loads a model and raises another one holding every traceback instead."""


class CheckedLoad:
    """The model class registered for the task: ``pipeline(TASK, model=DIR)`` loads through the one checkpoint loader
    (complete, finite, shapes and AU list checked), never through a bare ``from_pretrained``."""

    @classmethod
    def from_pretrained(cls, path: str, **kwargs: Any) -> MicroAUClipModel:
        try:
            model = load_model(path, **{k: v for k, v in kwargs.items() if k in HUB_OPTIONS and v is not None})
        except CheckpointError as error:
            raise CheckpointRefused(str(error)) from None
        dtype = kwargs.get("dtype")
        return model.to(dtype) if isinstance(dtype, torch.dtype) else model


class MicroAUDetectionPipeline(Pipeline):
    """Micro-expression AU detection on an onset/apex pair or a video, with the emotion estimated from the AUs.

    Call parameters: ``threshold`` (default 0.5); for videos ``every_frame``, ``stride``, ``fps``,
    ``max_frames``, ``max_seconds`` and ``video_batch_size`` (see :meth:`MicroAUPredictor.predict_video`).
    Construction also takes ``landmarker`` (``"auto"``, a backend, or ``None`` for pre-aligned crops).
    """

    # The processor is optional: a checkpoint without one gets it rebuilt from its config.
    _load_processor = None
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False
    _load_video_processor = False

    def __init__(self, model: MicroAUClipModel | str | os.PathLike, *args: Any, landmarker: Any = "auto",
                 **kwargs: Any):
        if isinstance(model, (str, os.PathLike)):  # transformers.pipeline passes a Path on unloaded
            model = CheckedLoad.from_pretrained(str(model))
        if not isinstance(model, MicroAUClipModel):
            raise CheckpointError(f"{TASK} needs a Micro-AU CLIP model, got {type(model).__name__}")
        super().__init__(model, *args, **kwargs)
        self.predictor = MicroAUPredictor(self.model, self.processor, device=self.device, landmarker=landmarker)
        self.processor = self.predictor.processor

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, (list, tuple)) and not inputs:  # transformers would fail on inputs[0] (IndexError)
            raise ValueError(f"{TASK}: an empty {type(inputs).__name__}; give a pair ({{'onset': image, 'apex': "
                             f"image}} or (onset, apex)), a video path, or a list of them")
        return super().__call__(inputs, *args, **kwargs)

    def _sanitize_parameters(
        self,
        threshold: float | None = None,
        every_frame: bool | None = None,
        stride: int | None = None,
        fps: float | None = None,
        max_frames: int | None = None,
        max_seconds: float | None = None,
        video_batch_size: int | None = None,
    ) -> tuple[dict, dict, dict]:
        video = dict(every_frame=every_frame, stride=stride, fps=fps, max_frames=max_frames,
                     max_seconds=max_seconds, batch_size=video_batch_size)
        preprocess = {name: value for name, value in video.items() if value is not None}
        postprocess = {} if threshold is None else {"threshold": float(threshold)}
        return preprocess, {}, postprocess

    def get_inference_context(self):
        return torch.inference_mode

    def preprocess(self, inputs: Any, **video_parameters: Any) -> dict[str, Any]:
        video = _video_path(inputs)
        if video is not None:  # streamed by the predictor in _forward, never held
            return {"video": video, **video_parameters}
        onset, apex = _pair(inputs)
        return {"onset": onset, "apex": apex, "name": _name(onset)}

    def _forward(self, inputs: dict[str, Any]) -> dict[str, Prediction | VideoPrediction]:
        if "video" in inputs:
            return {"result": self.predictor.predict_video(inputs.pop("video"), **inputs)}
        return {"result": self.predictor.predict_pair(inputs["onset"], inputs["apex"], name=inputs["name"])}

    def postprocess(self, outputs: dict[str, Any], threshold: float | None = None) -> dict[str, Any]:
        result = outputs["result"]
        return result_object(result if threshold is None else result.at_threshold(threshold))


def _video_path(inputs: Any) -> str | None:
    if isinstance(inputs, dict) and "video" in inputs:
        return str(inputs["video"])
    if isinstance(inputs, (str, os.PathLike)):
        return str(inputs)
    return None


def _pair(inputs: Any) -> tuple[Any, Any]:
    if isinstance(inputs, dict) and {"onset", "apex"} <= set(inputs):
        return _channels_last(inputs["onset"]), _channels_last(inputs["apex"])
    if isinstance(inputs, tuple) and len(inputs) == 2:
        return _channels_last(inputs[0]), _channels_last(inputs[1])
    raise ValueError(
        f"{TASK} takes {{'onset': image, 'apex': image}}, an (onset, apex) tuple, or a video path; "
        f"got {type(inputs).__name__}"
    )


def _channels_last(frame: Any) -> Any:
    """``frame`` as given; a ``ValueError`` for a channels-first array (as torchvision and CLIP processors output),
    which would otherwise be read as a 3-pixel-high image."""
    if isinstance(frame, (np.ndarray, torch.Tensor)) and frame.ndim == 3 and frame.shape[0] in (1, 3, 4) \
            and frame.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{TASK}: an image array of shape {tuple(frame.shape)} looks channels-first; give (H, W, 3) "
                         f"RGB (e.g. array.transpose(1, 2, 0))")
    return frame


def _name(onset: Any) -> str:
    return str(onset) if isinstance(onset, (str, os.PathLike)) else "pair"


PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=MicroAUDetectionPipeline, pt_model=CheckedLoad, type="image")

__all__ = ["CheckedLoad", "CheckpointRefused", "MicroAUDetectionPipeline", "TASK"]
