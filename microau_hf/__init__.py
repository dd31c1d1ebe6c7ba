"""Micro-AU CLIP for Hugging Face: micro-expression action-unit detection, emotion without emotion labels.

Importing the package registers the model with the Auto classes, so `AutoModel.from_pretrained(folder)` works
without `trust_remote_code`.
"""

from transformers import AutoConfig, AutoModel, AutoProcessor

from .aus import AU_SETS, CATALOGUE, get_au, resolve_au_set
from .configuration_micro_au_clip import MicroAUClipConfig
from .modeling_micro_au_clip import MicroAUClipModel, MicroAUClipOutput, region_boxes_to_patch_weights
from .presets import PRESETS, make_config
from .processing_micro_au_clip import MicroAUClipProcessor
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
    "PRESETS",
    "get_au",
    "load_clip_tokenizer",
    "make_config",
    "region_boxes_to_patch_weights",
    "resolve_au_set",
]

from . import pipeline as _pipeline  # registers the micro-au-detection task
