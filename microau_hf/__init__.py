"""Micro-AU CLIP for Hugging Face: micro-expression action-unit detection, emotion without emotion labels.

Importing the package registers the model with the Auto classes, so `AutoModel.from_pretrained(folder)` works
without `trust_remote_code`, and the ``micro-au-detection`` pipeline task.

    from microau_hf import MicroAUPredictor

    predictor = MicroAUPredictor.from_pretrained("outputs/quickstart/checkpoint")   # a folder or a Hub id
    predictor.predict_pair("onset.jpg", "apex.jpg").present                         # e.g. [12, 14]
"""

from transformers import AutoConfig, AutoModel, AutoProcessor

from .aus import AU_SETS, CATALOGUE, get_au, resolve_au_set
from .configuration_micro_au_clip import MicroAUClipConfig
from .inference import MicroAUPredictor
from .modeling_micro_au_clip import (MicroAUClipModel, MicroAUClipOutput, au_probabilities,
                                     region_boxes_to_patch_weights)
from .presets import PRESETS, make_config
from .processing_micro_au_clip import MicroAUClipProcessor
from .results import Prediction, VideoPrediction, save_results
from .tokenizer import load_clip_tokenizer

__version__ = "0.1.0"

AutoConfig.register(MicroAUClipConfig.model_type, MicroAUClipConfig, exist_ok=True)
AutoModel.register(MicroAUClipConfig, MicroAUClipModel, exist_ok=True)
AutoProcessor.register(MicroAUClipConfig, MicroAUClipProcessor, exist_ok=True)
# save_pretrained then writes the remote-code files and `auto_map`, so the Hub copy loads without this package.
MicroAUClipConfig.register_for_auto_class()
MicroAUClipModel.register_for_auto_class("AutoModel")

__all__ = [
    "AU_SETS",
    "CATALOGUE",
    "MicroAUClipConfig",
    "MicroAUClipModel",
    "MicroAUClipOutput",
    "MicroAUClipProcessor",
    "MicroAUPredictor",
    "PRESETS",
    "Prediction",
    "VideoPrediction",
    "au_probabilities",
    "get_au",
    "load_clip_tokenizer",
    "make_config",
    "region_boxes_to_patch_weights",
    "resolve_au_set",
    "save_results",
]

from . import pipeline as _pipeline  # registers the micro-au-detection task
