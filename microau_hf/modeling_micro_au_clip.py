"""Micro-AU CLIP: micro-expression action-unit detection by AU-level vision-text alignment.

Remote code: imports only its sibling remote-code files, transformers, torch and the standard library.

The forward pass, for a batch of B onset/apex pairs and K action units:

1. the CLIP vision tower encodes what `config.input_mode` asks for (by default the apex-minus-onset image, one pass),
   and its tokens are taken into the joint vision-text space (post-layernorm + CLIP's visual projection);
2. Patch Token Attention (PTA): one learned query per AU attends only over the patch tokens of its facial region,
   through key/value projections shared by all AUs: one AU token per AU, built from local evidence alone;
3. Global Dependency Attention (GDA): the AU tokens (and the image's global token) attend to each other, so each AU
   can take in the AUs it co-occurs with;
4. each AU token is compared with the text embeddings of its "present" and "absent" prompts: the log-odds of AU k
   is the (learned-temperature) similarity to its present prompt minus that to its absent prompt.

Losses (`loss_micro_au_clip.py`): BCE on those log-odds + `lambda_cl` * MiAUCL (each AU token is pulled to the
prompt stating its label and pushed from the prompts false for the face) + `lambda_gd` * GDLoss (GDA's attention of
each AU token: half on itself, half on the AUs active with it, weighted by the training split's co-occurrence).
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPModel, CLIPTextModel, CLIPVisionModel
from transformers import initialization as init
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_micro_au_clip import MicroAUClipConfig
from .loss_micro_au_clip import global_dependency_loss, micro_au_contrastive_loss

if TYPE_CHECKING:  # remote code imports only torch, transformers and the standard library at run time
    import numpy as np

# CLIP caps its learned inverse temperature at 100; so do we.
MAX_LOGIT_SCALE = math.log(100.0)

#: The safetensors metadata key under which `save_pretrained` records the AU list the weights were trained on (a JSON
#: list of AU numbers), so that a loader can tell a config.json edited afterwards (reordered, relabelled) from the
#: config the weights came with.
AUS_METADATA_KEY = "micro_au_clip.aus"


def region_boxes_to_patch_weights(boxes: Sequence[Sequence[Sequence[float]]], grid_size: int) -> torch.Tensor:
    """Per-AU weights over the ViT patch grid from region boxes.

    Args:
        boxes: for each of K AUs, a list of `[x0, y0, x1, y1]` boxes in normalised crop coordinates (0..1).
        grid_size: patches per side.

    Returns:
        `(K, grid_size * grid_size)` weights in [0, 1]: the fraction of each patch cell that the AU's region covers
        (the largest of its boxes' coverages), row-major like CLIP's patch tokens.
    """
    most = max((len(au_boxes) for au_boxes in boxes), default=0)
    # Pad every AU to the same number of boxes with empty boxes, so that all cells are covered in one tensor op.
    padded = torch.zeros(len(boxes), max(most, 1), 4, dtype=torch.float64)
    for k, au_boxes in enumerate(boxes):
        if len(au_boxes):
            padded[k, : len(au_boxes)] = torch.as_tensor(au_boxes, dtype=torch.float64).reshape(-1, 4)
    edges = torch.linspace(0.0, 1.0, grid_size + 1, dtype=torch.float64)
    low, high = edges[:-1], edges[1:]  # (G,)
    x0, y0, x1, y1 = (padded[..., i, None] for i in range(4))  # each (K, B, 1)
    along_x = (torch.minimum(high, x1) - torch.maximum(low, x0)).clamp(min=0) * grid_size  # (K, B, G)
    along_y = (torch.minimum(high, y1) - torch.maximum(low, y0)).clamp(min=0) * grid_size
    cover = (along_y.unsqueeze(-1) * along_x.unsqueeze(-2)).amax(dim=1)  # (K, G, G)
    return cover.flatten(1).float()


@dataclass
class MicroAUClipOutput(ModelOutput):
    """
    Output of [`MicroAUClipModel`]; B samples, K AUs, N patches, D the joint embedding size.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): total loss, when `labels` are given.
        logits (`torch.FloatTensor` of shape `(B, K)`): log-odds that each AU is present; [`au_probabilities`]
            gives its probability (the softmax over the AU's present and absent prompt similarities).
        au_tokens (`torch.FloatTensor` of shape `(B, K, D)`): the AU tokens after GDA (after PTA when GDA is off).
        local_au_tokens (`torch.FloatTensor` of shape `(B, K, D)`): the AU tokens straight out of PTA.
        patch_attentions (`torch.FloatTensor` of shape `(B, K, N)`): PTA's attention of each AU over the patches,
            averaged over heads.
        dependency_attentions (`torch.FloatTensor` of shape `(B, 1 + K, 1 + K)`, *optional*): GDA's last-layer
            attention among [global token, AU tokens], averaged over heads; `None` when GDA is off.
        detection_loss, contrastive_loss, dependency_loss (`torch.FloatTensor` of shape `()`, *optional*): the loss
            terms before weighting; `None` when a term is switched off or no labels are given.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    au_tokens: torch.FloatTensor | None = None
    local_au_tokens: torch.FloatTensor | None = None
    patch_attentions: torch.FloatTensor | None = None
    dependency_attentions: torch.FloatTensor | None = None
    detection_loss: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None
    dependency_loss: torch.FloatTensor | None = None



def au_probabilities(logits: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """The probability that each AU is present, from the model's `logits` (log-odds, `(B, K)`), in float32.

    The one logits-to-probabilities step: training metrics, LOSO, the predictor and the pipeline all call it. A
    tensor gives a tensor (on its device), a NumPy array (what `Trainer.predict` returns) a NumPy array.
    """
    if isinstance(logits, torch.Tensor):
        return logits.float().sigmoid()
    return torch.as_tensor(logits).float().sigmoid().numpy()

class PatchTokenAttention(nn.Module):
    """Local semantic independence: one query per AU, attending only over its region's patch tokens.

    The keys and values come from one projection shared by all AUs, so every AU's local evidence lands in the same
    feature space; the region mask (log of the region weight, -inf outside) makes AU k's token a function of its own
    region's patch tokens alone.
    """

    def __init__(self, config: MicroAUClipConfig):
        super().__init__()
        dim = config.projection_dim
        self.num_heads = config.pta_num_heads
        self.head_dim = dim // self.num_heads
        self.au_queries = nn.Parameter(torch.zeros(config.num_aus, dim))
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.output = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self, patch_tokens: torch.Tensor, region_weights: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`patch_tokens` (B, N, D), `region_weights` (B, K, N) or None (all patches) -> tokens (B, K, D), attention
        (B, K, N)."""
        batch, num_patches, dim = patch_tokens.shape
        queries = self.au_queries.view(1, -1, self.num_heads, self.head_dim).transpose(1, 2)
        keys = self.key(patch_tokens).view(batch, num_patches, self.num_heads, self.head_dim).transpose(1, 2)
        values = self.value(patch_tokens).view(batch, num_patches, self.num_heads, self.head_dim).transpose(1, 2)
        scores = queries @ keys.transpose(-1, -2) / math.sqrt(self.head_dim)  # (B, H, K, N)
        if region_weights is not None:
            scores = scores + torch.log(region_weights.to(scores.dtype)).unsqueeze(1)
        attention = scores.softmax(dim=-1)
        gathered = (self.dropout(attention) @ values).transpose(1, 2).reshape(batch, -1, dim)
        tokens = self.norm(self.au_queries + self.output(gathered))
        return tokens, attention.mean(dim=1)


class DependencyLayer(nn.Module):
    """A pre-norm transformer layer over [global token, AU tokens] that also returns its attention map."""

    def __init__(self, config: MicroAUClipConfig):
        super().__init__()
        dim = config.projection_dim
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, config.gda_num_heads, dropout=config.dropout, batch_first=True)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, config.gda_intermediate_size),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.gda_intermediate_size, dim),
        )

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        normed = self.attention_norm(tokens)
        attended, attention = self.attention(normed, normed, normed, need_weights=True, average_attn_weights=True)
        tokens = tokens + attended
        return tokens + self.mlp(self.mlp_norm(tokens)), attention


class GlobalDependencyAttention(nn.Module):
    """Global semantic dependency: self-attention among the image's global token and the K AU tokens."""

    def __init__(self, config: MicroAUClipConfig):
        super().__init__()
        self.layers = nn.ModuleList(DependencyLayer(config) for _ in range(config.gda_num_layers))

    def forward(self, global_token: torch.Tensor, au_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`global_token` (B, D), `au_tokens` (B, K, D) -> enhanced AU tokens (B, K, D), attention (B, 1+K, 1+K)."""
        tokens = torch.cat([global_token.unsqueeze(1), au_tokens], dim=1)
        for layer in self.layers:
            tokens, attention = layer(tokens)
        return tokens[:, 1:], attention


def encode_frames(
    vision_model: CLIPVisionModel,
    visual_projection: nn.Linear,
    input_mode: str,
    onset: torch.Tensor | None,
    apex: torch.Tensor,
    fusion: nn.Linear | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch tokens `(B, N, D)` and the global token `(B, D)` in the joint space, per `input_mode`.

    The modes that need two images send them through the tower as one batch.
    """
    batch = apex.shape[0]
    if input_mode == "difference":
        pixels = apex - onset
    elif input_mode == "apex":
        pixels = apex
    elif input_mode == "motion":
        pixels = torch.cat([onset, apex])
    else:  # apex+difference
        pixels = torch.cat([apex, apex - onset])
    hidden = vision_model(pixel_values=pixels).last_hidden_state
    tokens = visual_projection(vision_model.post_layernorm(hidden))
    if input_mode == "motion":
        tokens = tokens[batch:] - tokens[:batch]
    elif input_mode == "apex+difference":
        tokens = fusion(torch.cat([tokens[:batch], tokens[batch:]], dim=-1))
    return tokens[:, 1:], tokens[:, 0]


def _check_keywords(kwargs: dict) -> None:
    """Refuse keyword arguments the model does not take, instead of ignoring them (a misspelt `label=` would train
    without a loss). Generic callers' `output_attentions=False` / `output_hidden_states=False` are harmless."""
    asked = [name for name in ("output_attentions", "output_hidden_states") if kwargs.get(name)]
    if asked:
        raise ValueError(f"{', '.join(asked)} is not supported: the output always holds patch_attentions (PTA) and "
                         f"dependency_attentions (GDA); the towers' own states come from model.vision_model")
    unknown = sorted(set(kwargs) - {"output_attentions", "output_hidden_states"})
    if unknown:
        raise TypeError(f"MicroAUClipModel.forward() got unexpected keyword argument(s) {unknown}; it takes "
                        f"apex_pixel_values, onset_pixel_values, au_region_weights, labels and return_dict")


class MicroAUClipPreTrainedModel(PreTrainedModel):
    config_class = MicroAUClipConfig
    config: MicroAUClipConfig
    base_model_prefix = "micro_au_clip"
    # forward's first argument, as transformers expects: the apex crop, which every input_mode needs.
    main_input_name = "apex_pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["CLIPEncoderLayer", "CLIPTextEmbeddings", "CLIPVisionEmbeddings"]
    _supports_sdpa = True
    # The Trainer must not rescale our loss by the number of items (it is already a per-batch mean).
    accepts_loss_kwargs = False

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, reading safetensors weights only: a pickled `pytorch_model.bin` can run
        code when it is loaded, so it is never read, even when it is the only weight file there."""
        if kwargs.get("use_safetensors") is False:
            raise ValueError("Micro-AU CLIP loads safetensors weights only (use_safetensors=False is refused)")
        return super().from_pretrained(*args, **{**kwargs, "use_safetensors": True})

    def save_pretrained(self, save_directory, is_main_process: bool = True, push_to_hub: bool = False, **kwargs):
        """`PreTrainedModel.save_pretrained`, with the AU list (:data:`AUS_METADATA_KEY`) in each weights file's
        metadata. transformers writes the safetensors metadata itself and offers no hook for it, so the header is
        rewritten after the save; a push waits until then, so what goes up carries the AU list too."""
        hub_options = {k: kwargs.pop(k) for k in ("repo_id", "commit_message", "create_pr", "private") if k in kwargs}
        super().save_pretrained(save_directory, is_main_process=is_main_process, **kwargs)
        if is_main_process:
            aus = [int(au) for au in self.config.aus]
            for weights_file in saved_weight_files(save_directory, kwargs.get("variant")):
                record_metadata(weights_file, {AUS_METADATA_KEY: json.dumps(aus)})
        if push_to_hub and is_main_process:
            repo_id = hub_options.pop("repo_id", os.path.basename(os.path.normpath(str(save_directory))))
            self.push_to_hub(repo_id, token=kwargs.get("token"), **hub_options)

    @torch.no_grad()
    @init.guard_torch_init_functions()
    def initialize_weights(self) -> None:
        """Initialise every weight not loaded from a checkpoint: each sub-model (a CLIP tower) by its own
        `_init_weights` rule, every other module by ours, children before their parents.

        This is `PreTrainedModel.initialize_weights` without its shortcut for custom code, which marks a module done
        when all of the parameters it holds directly are loaded: true of every module that holds none, such as
        CLIPMLP and CLIPAttention, whose weights sit in child Linears. CLIP's rule for them then never ran, and a text
        tower missing from a checkpoint got a plain N(0, 0.02) (fc1 std 0.020 where CLIP draws 0.125). The shortcut
        guards code that writes weights in place; every rule here writes through `transformers.initialization`,
        which leaves loaded weights alone by itself.
        """

        def initialize(module: nn.Module, initialize_module: Callable[[nn.Module], None]) -> None:
            for child in module.children():
                own_rule = isinstance(child, PreTrainedModel)
                initialize(child, child._initialize_weights if own_rule else initialize_module)
            initialize_module(module)

        initialize(self, self._initialize_weights)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The layers Micro-AU CLIP adds; the CLIP towers are sub-models whose own `_init_weights` (CLIP's) runs on
        their modules (see `initialize_weights`).

        `transformers.initialization` functions are used so that weights loaded from a checkpoint are left alone.
        """
        super()._init_weights(module)
        factor = self.config.initializer_factor
        if isinstance(module, PatchTokenAttention):
            init.normal_(module.au_queries, std=self.config.projection_dim**-0.5 * factor)
        elif isinstance(module, MicroAUClipModel):
            init.normal_(module.visual_projection.weight, std=self.config.vision_config.hidden_size**-0.5 * factor)
            if module.text_projection is not None:
                init.constant_(module.logit_scale, self.config.logit_scale_init_value)
                init.normal_(module.text_projection.weight, std=self.config.text_config.hidden_size**-0.5 * factor)
            if module.classifier_weight is not None:
                init.normal_(module.classifier_weight, std=self.config.projection_dim**-0.5 * factor)
                init.zeros_(module.classifier_bias)


def saved_weight_files(folder, variant: str | None = None) -> list[str]:
    """The safetensors files `save_pretrained` wrote into ``folder``: the shards its index names, or the one file."""
    single = "model.safetensors" if not variant else f"model.{variant}.safetensors"
    index = os.path.join(folder, f"{single}.index.json")
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as file:
            shards = sorted(set(json.load(file)["weight_map"].values()))
        return [os.path.join(folder, shard) for shard in shards]
    path = os.path.join(folder, single)
    return [path] if os.path.isfile(path) else []  # none: a distributed (DCP) save writes no safetensors


def record_metadata(path: str, entries: dict[str, str]) -> None:
    """Add ``entries`` to a safetensors file's metadata. Only the JSON header changes: tensor offsets count from the
    end of the header, so the tensor bytes are copied as they are (no tensor is decoded). Written beside the file and
    renamed over it, so the file is never half-written."""
    with open(path, "rb") as source:
        (length,) = struct.unpack("<Q", source.read(8))
        header = json.loads(source.read(length))
        header["__metadata__"] = {**header.get("__metadata__", {}), **entries}
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)  # safetensors keeps the tensor bytes 8-byte aligned
        handle, staged = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".metadata-")
        try:
            with os.fdopen(handle, "wb") as target:
                target.write(struct.pack("<Q", len(text)) + text)
                shutil.copyfileobj(source, target, 1 << 24)
            shutil.copymode(path, staged)  # mkstemp's file is private; the weights keep the mode they were saved with
            os.replace(staged, path)
        except BaseException:
            os.unlink(staged)
            raise


class MicroAUClipModel(MicroAUClipPreTrainedModel):
    """Micro-AU CLIP: onset/apex crops in, per-AU log-odds out (see the module docstring for the forward pass).

    Build it from a complete config (`microau_hf.make_config(au_set, preset)`), from a CLIP checkpoint
    (`MicroAUClipModel.from_clip(clip_id, config)`), or load one with `from_pretrained` / `AutoModel`.
    """

    def __init__(self, config: MicroAUClipConfig):
        super().__init__(config)
        if not config.aus:
            raise ValueError(
                "MicroAUClipConfig has no AUs; build it with microau_hf.make_config(au_set, ...) so that the AU list, "
                "prompts and region boxes are filled in"
            )
        if not config.au_template_boxes:
            raise ValueError("MicroAUClipConfig has no au_template_boxes; build it with microau_hf.make_config")
        if config.use_miaucl and not config.prompt_input_ids:
            raise ValueError("use_miaucl needs prompt_input_ids in the config; build it with microau_hf.make_config")
        vision_width = config.vision_config.hidden_size
        self.vision_model = CLIPVisionModel._from_config(config.vision_config)
        self.visual_projection = nn.Linear(vision_width, config.projection_dim, bias=False)
        self.fusion = nn.Linear(2 * config.projection_dim, config.projection_dim) if config.input_mode == "apex+difference" else None
        self.patch_token_attention = PatchTokenAttention(config)
        self.global_dependency_attention = GlobalDependencyAttention(config) if config.use_gda else None
        if config.use_miaucl:
            self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init_value))
            self.text_model = CLIPTextModel._from_config(config.text_config)
            self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim, bias=False)
            self.classifier_weight = self.classifier_bias = None
            if config.freeze_text_encoder:
                self.text_model.requires_grad_(False)
                self.text_projection.requires_grad_(False)
        else:
            self.logit_scale = self.text_model = self.text_projection = None
            self.classifier_weight = nn.Parameter(torch.zeros(config.num_aus, config.projection_dim))
            self.classifier_bias = nn.Parameter(torch.zeros(config.num_aus))
        self._prompt_cache: torch.Tensor | None = None
        self._template_cache: torch.Tensor | None = None
        self.register_load_state_dict_post_hook(lambda module, keys: module.clear_caches())
        self.post_init()

    # ------------------------------------------------------------------------------------------------------------
    # Building from a CLIP checkpoint
    # ------------------------------------------------------------------------------------------------------------

    @classmethod
    def from_clip(cls, clip_name_or_path: str, config: MicroAUClipConfig, **clip_kwargs) -> "MicroAUClipModel":
        """A Micro-AU CLIP whose towers (and temperature) are copied from a CLIP checkpoint (Hub id or folder).

        The model's config is a copy of `config` (the caller's is left as it was) whose towers' configs are the
        checkpoint's, so the prompts' token ids and the region boxes are kept while the architecture follows the
        checkpoint; a GDA width left at its default (4 x the projection size) follows the new projection size.
        """
        clip = CLIPModel.from_pretrained(clip_name_or_path, **{"use_safetensors": True, **clip_kwargs})
        config = copy.deepcopy(config)
        if config.gda_intermediate_size == 4 * config.projection_dim:
            config.gda_intermediate_size = 4 * clip.config.projection_dim
        config.vision_config = clip.config.vision_config
        config.text_config = clip.config.text_config
        config.projection_dim = clip.config.projection_dim
        config.validate_settings()
        model = cls(config)
        result = model.load_state_dict(clip.state_dict(), strict=False)
        ours = {name for name in model.state_dict() if name.startswith(("vision_model.", "visual_projection."))}
        missing_tower_keys = ours & set(result.missing_keys)
        if missing_tower_keys:
            raise ValueError(f"{clip_name_or_path}: CLIP weights lack {sorted(missing_tower_keys)[:3]}...")
        return model

    # ------------------------------------------------------------------------------------------------------------
    # Prompts and regions, computed once and cached
    # ------------------------------------------------------------------------------------------------------------

    def clear_caches(self) -> None:
        """Forget the cached prompt embeddings (call after changing the text tower's weights by hand)."""
        self._prompt_cache = None
        self._template_cache = None

    def train(self, mode: bool = True) -> "MicroAUClipModel":
        # A text tower that trains may have changed; a frozen one has not (the Trainer calls train() every step).
        if not self.config.freeze_text_encoder:
            self._prompt_cache = None
        return super().train(mode)

    def get_input_embeddings(self) -> nn.Module:
        """The vision tower's embeddings (patches, class token, positions): the model's inputs are pixels.

        Accelerate's FSDP2 asks for it to shard it as a unit of its own, and transformers cannot guess it for a
        two-tower model. It is the whole embeddings module, not only the patch convolution as in
        `CLIPVisionModel`, because that module is already a shard unit (`_no_split_modules`) and a parameter cannot
        be sharded twice."""
        return self.vision_model.embeddings

    def load_state_dict(self, state_dict, *args, **kwargs):
        self.clear_caches()  # new weights, new prompt embeddings
        return super().load_state_dict(state_dict, *args, **kwargs)

    def encode_prompts(self) -> torch.Tensor:
        """Text embeddings of the 2K prompts, `(2K, D)`: present AU 0, absent AU 0, present AU 1, ..."""
        device = self.device
        eos = self.config.text_config.eos_token_id
        longest = max(len(ids) for ids in self.config.prompt_input_ids)
        input_ids = torch.full((len(self.config.prompt_input_ids), longest), eos, dtype=torch.long, device=device)
        attention_mask = torch.zeros_like(input_ids)
        for row, ids in enumerate(self.config.prompt_input_ids):
            input_ids[row, : len(ids)] = torch.tensor(ids, device=device)
            attention_mask[row, : len(ids)] = 1
        pooled = self.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return self.text_projection(pooled)

    def prompt_embeddings(self) -> torch.Tensor:
        """The prompts' embeddings: recomputed while the text tower trains, otherwise cached after the first call."""
        if self.training and not self.config.freeze_text_encoder:
            return self.encode_prompts()
        if self._prompt_cache is None or self._prompt_cache.device != self.device:
            with torch.no_grad():
                self._prompt_cache = self.encode_prompts()
        return self._prompt_cache

    def template_region_weights(self) -> torch.Tensor:
        """The canonical-template region weights `(K, N)`, for crops without landmarks."""
        device = self.device
        if self._template_cache is None or self._template_cache.device != device:
            weights = region_boxes_to_patch_weights(self.config.au_template_boxes, self.config.grid_size)
            self._template_cache = weights.to(device)
        return self._template_cache

    # ------------------------------------------------------------------------------------------------------------
    # Forward
    # ------------------------------------------------------------------------------------------------------------

    def forward(
        self,
        apex_pixel_values: torch.FloatTensor | None = None,
        onset_pixel_values: torch.FloatTensor | None = None,
        au_region_weights: torch.FloatTensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MicroAUClipOutput:
        r"""
        Args:
            apex_pixel_values (`torch.FloatTensor` of shape `(B, 3, H, W)`): the aligned apex crops, CLIP-normalised;
                the main input (`main_input_name`), first because every `input_mode` needs it.
            onset_pixel_values (`torch.FloatTensor` of shape `(B, 3, H, W)`): the aligned onset crops, normalised alike
                (not needed when `input_mode="apex"`).
            au_region_weights (`torch.FloatTensor` of shape `(B, K, N)` or `(K, N)`, *optional*): each AU's weight
                over the N patches, from the face's landmarks; defaults to the canonical template. An AU whose row is
                all zero (its region fell outside the crop) falls back to its template row.
            labels (`torch.Tensor` of shape `(B, K)`, *optional*): multi-hot AU labels in the config's AU order.
            return_dict (`bool`, *optional*): `False` returns `output.to_tuple()` (the fields that are not `None`, in
                order), as transformers models do; defaults to `config.return_dict`.
        """
        _check_keywords(kwargs)
        self._check_inputs(onset_pixel_values, apex_pixel_values, labels)
        patch_tokens, global_token = self._encode_images(onset_pixel_values, apex_pixel_values)
        region_weights = self._region_weights(au_region_weights, batch_size=patch_tokens.shape[0])
        local_tokens, patch_attentions = self.patch_token_attention(patch_tokens, region_weights)
        au_tokens, dependency_attentions = local_tokens, None
        if self.global_dependency_attention is not None:
            au_tokens, dependency_attentions = self.global_dependency_attention(global_token, local_tokens)
        logits, prompt_similarities = self._detect(au_tokens)
        if dependency_attentions is not None and self.config.gda_max_logit_shift is not None:
            logits = self._bounded_dependency(logits, local_tokens)
        output = MicroAUClipOutput(
            logits=logits,
            au_tokens=au_tokens,
            local_au_tokens=local_tokens,
            patch_attentions=patch_attentions,
            dependency_attentions=dependency_attentions,
        )
        if labels is not None:
            self._add_losses(output, labels.to(logits.dtype), prompt_similarities)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def _check_inputs(self, onset: torch.Tensor | None, apex: torch.Tensor | None, labels: torch.Tensor | None) -> None:
        size = self.config.vision_config.image_size
        needed = {"apex_pixel_values": apex}
        if self.config.input_mode != "apex":
            needed["onset_pixel_values"] = onset
        for name, pixels in needed.items():
            if pixels is None:
                raise ValueError(f"{name} is required for input_mode={self.config.input_mode!r}")
            if pixels.dim() != 4 or pixels.shape[1] != 3 or tuple(pixels.shape[2:]) != (size, size):
                raise ValueError(f"{name} must have shape (batch, 3, {size}, {size}), got {tuple(pixels.shape)}")
        if onset is not None and onset.shape[0] != apex.shape[0]:
            raise ValueError(f"onset and apex batch sizes differ: {onset.shape[0]} vs {apex.shape[0]}")
        if labels is not None and tuple(labels.shape) != (apex.shape[0], self.config.num_aus):
            raise ValueError(
                f"labels must have shape (batch, {self.config.num_aus}) for AUs {self.config.aus}, "
                f"got {tuple(labels.shape)}"
            )

    def _encode_images(self, onset: torch.Tensor | None, apex: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return encode_frames(self.vision_model, self.visual_projection, self.config.input_mode, onset, apex, self.fusion)

    def _region_weights(self, au_region_weights: torch.Tensor | None, batch_size: int) -> torch.Tensor | None:
        if not self.config.use_pta:
            return None
        template = self.template_region_weights()
        if au_region_weights is None:
            return template.expand(batch_size, -1, -1)
        weights = au_region_weights.to(template)
        if weights.dim() == 2:
            weights = weights.expand(batch_size, -1, -1)
        if tuple(weights.shape) != (batch_size, *template.shape):
            raise ValueError(
                f"au_region_weights must have shape (batch, {template.shape[0]}, {template.shape[1]}) = "
                f"(batch, AUs, patches of a {self.config.grid_size}x{self.config.grid_size} grid), got {tuple(weights.shape)}"
            )
        if (weights < 0).any():
            raise ValueError("au_region_weights must be >= 0")
        empty = weights.sum(dim=-1, keepdim=True) == 0
        return torch.where(empty, template.expand_as(weights), weights)

    def _detect(self, au_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-odds `(B, K)` and, with the prompt head, the scaled similarities to all prompts `(B, K, 2K)`."""
        if not self.config.use_miaucl:
            return (au_tokens * self.classifier_weight).sum(dim=-1) + self.classifier_bias, None
        scale = self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
        prompts = F.normalize(self.prompt_embeddings().to(au_tokens.dtype), dim=-1)
        similarities = scale * F.normalize(au_tokens, dim=-1) @ prompts.T  # (B, K, 2K)
        aus = torch.arange(self.config.num_aus, device=au_tokens.device)
        present = similarities[:, aus, 2 * aus]
        absent = similarities[:, aus, 2 * aus + 1]
        return present - absent, similarities

    def _bounded_dependency(self, dependency_logits: torch.Tensor, local_tokens: torch.Tensor) -> torch.Tensor:
        """The local log-odds moved towards GDA's by at most `gda_max_logit_shift` (a smooth, tanh-bounded step)."""
        local_logits, _ = self._detect(local_tokens)
        bound = self.config.gda_max_logit_shift
        return local_logits + bound * torch.tanh((dependency_logits - local_logits) / bound)

    def _add_losses(self, output: MicroAUClipOutput, labels: torch.Tensor, similarities: torch.Tensor | None) -> None:
        pos_weight = None
        if self.config.au_pos_weight is not None:
            pos_weight = torch.tensor(self.config.au_pos_weight, device=labels.device, dtype=labels.dtype)
        output.detection_loss = F.binary_cross_entropy_with_logits(output.logits, labels, pos_weight=pos_weight)
        loss = output.detection_loss
        if similarities is not None:
            output.contrastive_loss = micro_au_contrastive_loss(similarities, labels,
                                                                self.config.miaucl_mask_true_prompts)
            loss = loss + self.config.lambda_cl * output.contrastive_loss
        if self.config.use_gd_loss:
            cooccurrence = self.config.au_cooccurrence
            cooccurrence = torch.tensor(cooccurrence, device=labels.device) if cooccurrence is not None else None
            output.dependency_loss = global_dependency_loss(output.dependency_attentions, labels, cooccurrence)
            loss = loss + self.config.lambda_gd * output.dependency_loss
        output.loss = loss


__all__ = [
    "GlobalDependencyAttention",
    "MicroAUClipModel",
    "MicroAUClipOutput",
    "MicroAUClipPreTrainedModel",
    "PatchTokenAttention",
    "au_probabilities",
    "encode_frames",
    "global_dependency_loss",
    "micro_au_contrastive_loss",
    "region_boxes_to_patch_weights",
]
