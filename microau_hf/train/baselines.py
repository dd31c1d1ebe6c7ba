"""Baselines for the ablation table, trained and evaluated exactly like Micro-AU CLIP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionModel

from ..configuration_micro_au_clip import MicroAUClipConfig
from ..modeling_micro_au_clip import MicroAUClipOutput, MicroAUClipPreTrainedModel, encode_frames


class WholeFaceBaseline(MicroAUClipPreTrainedModel):
    """The whole-face detector: the CLIP image embedding of the same input (the projected class token) and one
    linear layer for all AUs. No regions, no AU tokens, no text: what Micro-AU CLIP's parts are measured against."""

    def __init__(self, config: MicroAUClipConfig):
        super().__init__(config)
        self.vision_model = CLIPVisionModel._from_config(config.vision_config)
        self.visual_projection = nn.Linear(config.vision_config.hidden_size, config.projection_dim, bias=False)
        self.fusion = nn.Linear(2 * config.projection_dim, config.projection_dim) if config.input_mode == "apex+difference" else None
        self.probe = nn.Linear(config.projection_dim, config.num_aus)
        self.post_init()

    def forward(self, apex_pixel_values=None, onset_pixel_values=None, au_region_weights=None, labels=None, **kwargs):
        _, image_embedding = encode_frames(self.vision_model, self.visual_projection, self.config.input_mode,
                                           onset_pixel_values, apex_pixel_values, self.fusion)
        logits = self.probe(image_embedding)
        output = MicroAUClipOutput(logits=logits)
        if labels is not None:
            pos_weight = None
            if self.config.au_pos_weight is not None:
                pos_weight = torch.tensor(self.config.au_pos_weight, device=logits.device, dtype=logits.dtype)
            output.detection_loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=pos_weight)
            output.loss = output.detection_loss
        return output
