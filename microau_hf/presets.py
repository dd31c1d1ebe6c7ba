"""Named model sizes and the one way to build a complete config from the AU catalogue.

`make_config` is where the catalogue (prompts, regions) meets the configuration: it tokenizes the prompts with the
bundled CLIP tokenizer and writes everything into the config, so that a saved checkpoint needs neither this package
nor a tokenizer to predict.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from .aus import get_au, resolve_au_set
from .configuration_micro_au_clip import MicroAUClipConfig
from .defaults_micro_au_clip import CLIP_TEXT_IDS, VIT_B_16
from .tokenizer import CLIP_CONTEXT_LENGTH, load_clip_tokenizer

PRESETS: dict[str, dict[str, Any]] = {
    # For unit tests: a few milliseconds a forward pass.
    "test": {
        "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                          "image_size": 32, "patch_size": 8},
        "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                        "max_position_embeddings": 32, **CLIP_TEXT_IDS},
        "projection_dim": 32, "pta_num_heads": 4, "gda_num_heads": 4,
    },
    # The quickstart's model: trains in minutes on a laptop CPU, 14x14 patch grid like ViT-B/16.
    "tiny": {
        "vision_config": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
                          "image_size": 112, "patch_size": 8},
        "text_config": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
                        "max_position_embeddings": CLIP_CONTEXT_LENGTH, **CLIP_TEXT_IDS},
        "projection_dim": 128, "pta_num_heads": 4, "gda_num_heads": 4,
        # A randomly initialised text tower has no language to preserve, and frozen it embeds all prompts almost
        # alike (mean cosine 0.80); trained, the prompts separate: LOSO mean F1 0.773 -> 0.835 (docs/ablation).
        "freeze_text_encoder": False,
    },
    # The shape of openai/clip-vit-base-patch16 (random weights unless built with `clip=`); also the shape of a bare
    # `MicroAUClipConfig()`, which is why it lives in the remote code.
    "vit-b-16": VIT_B_16,
}


def make_config(aus: str | list[int] = "casme2", preset: str = "tiny", **overrides: Any) -> MicroAUClipConfig:
    """A complete `MicroAUClipConfig` for an AU set (`"casme2"`, `"samm"`, ... or AU numbers) and a size preset.

    `overrides` set any config field (`input_mode="motion"`, `use_gda=False`, `lambda_cl=0.5`, ...).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets are {sorted(PRESETS)}")
    known = set(inspect.signature(MicroAUClipConfig.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(overrides) - known)
    if unknown:  # a misspelt switch would otherwise be stored and ignored, and the run would look like the default
        close = {name: difflib.get_close_matches(name, known, n=1) for name in unknown}
        hints = ", ".join(f"{name!r}" + (f" (did you mean {close[name][0]!r}?)" if close[name] else "")
                          for name in unknown)
        raise ValueError(f"unknown config field(s) {hints}; fields are listed in MicroAUClipConfig's docstring")
    return MicroAUClipConfig(**{**PRESETS[preset], **au_set_fields(aus), **overrides})


def au_set_fields(aus: str | list[int]) -> dict[str, Any]:
    """The config fields that describe an AU set, from the catalogue: the AU numbers, names, prompts, the prompts'
    token ids (bundled CLIP tokenizer) and the template region boxes."""
    numbers = resolve_au_set(aus)
    catalogue = [get_au(n) for n in numbers]
    prompts = [[au.present_prompt, au.absent_prompt] for au in catalogue]
    tokenizer = load_clip_tokenizer()
    return {
        "aus": list(numbers),
        "au_names": [f"{au.label} {au.name}" for au in catalogue],
        "au_prompts": prompts,
        "prompt_input_ids": [tokenizer(text).input_ids for pair in prompts for text in pair],
        "au_template_boxes": [[list(box) for box in au.template_boxes] for au in catalogue],
    }
