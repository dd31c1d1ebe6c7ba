"""Configuration of Micro-AU CLIP.

Remote code: this file is copied to the Hub beside the weights, so it imports only transformers, the standard
library and its sibling remote-code files. Everything a checkpoint needs to predict (the AU list, the prompts as token
ids, the canonical region boxes) lives in the config, so loading a checkpoint never needs a tokenizer or this package.
"""

from __future__ import annotations

from transformers import CLIPTextConfig, CLIPVisionConfig, PreTrainedConfig
from transformers.utils import logging

from .defaults_micro_au_clip import DEFAULT_AU_FIELDS, VIT_B_16

logger = logging.get_logger(__name__)

INPUT_MODES = ("difference", "motion", "apex", "apex+difference")


class MicroAUClipConfig(PreTrainedConfig):
    r"""
    Configuration of [`MicroAUClipModel`]: a CLIP vision tower and text tower, Patch Token Attention (PTA) over each AU's
    region, Global Dependency Attention (GDA) among the AU tokens, and the detection head that compares each AU token
    with its "present" and "absent" prompts.

    `MicroAUClipConfig()` is a working model, as `CLIPConfig()` is: the CASME II AUs (prompts, token ids, regions
    filled in) at the shape of openai/clip-vit-base-patch16. Build one for another AU set or size with
    `microau_hf.make_config("samm", preset="tiny")`, which fills the prompts, their token ids and the template boxes
    from the AU catalogue.

    Args:
        vision_config (`dict` or `CLIPVisionConfig`, *optional*): the CLIP vision tower; defaults to ViT-B/16's (a
            dict is read as `CLIPVisionConfig(**dict)`, as `CLIPConfig` reads it).
        text_config (`dict` or `CLIPTextConfig`, *optional*): the CLIP text tower, defaults to ViT-B/16's; unused
            when `use_miaucl=False`.
        projection_dim (`int`, defaults to 512): the joint vision-text space, where PTA, GDA and the prompts live.
        aus (`list[int]`, *optional*): the AU numbers the model detects, in output order. Left out, the CASME II set
            with its names, prompts, token ids and template boxes (each of those given is kept); `[]` leaves the
            config empty (a model refuses it).
        au_names (`list[str]`): a readable name per AU (`"AU1 Inner brow raiser"`).
        au_prompts (`list[list[str]]`): per AU, `[present_prompt, absent_prompt]`.
        prompt_input_ids (`list[list[int]]`): the prompts tokenized with the CLIP tokenizer, `2 * len(aus)` lists in the
            order present AU 0, absent AU 0, present AU 1, ... (each from start to end-of-text token, unpadded).
        au_template_boxes (`list[list[list[float]]]`): per AU, its region as boxes `[x0, y0, x1, y1]` in the aligned
            crop (0..1); used when no landmark-based region weights are given.
        input_mode (`str`, defaults to `"difference"`): what the vision tower sees. `"difference"`: the apex-minus-onset
            image in one pass; `"motion"`: onset and apex in one batched pass, patch tokens subtracted; `"apex"`: the
            apex alone; `"apex+difference"`: apex and difference in one batched pass, tokens fused.
        pta_num_heads (`int`, defaults to 8): heads of Patch Token Attention.
        gda_num_layers (`int`, defaults to 1), gda_num_heads (`int`, defaults to 8), gda_intermediate_size (`int`,
            *optional*, defaults to `4 * projection_dim`): Global Dependency Attention.
        use_pta (`bool`): restrict each AU query to its region; `False` lets every AU query attend to all patches.
        use_gda (`bool`): the AU tokens attend to each other (and to the global token) after PTA.
        gda_max_logit_shift (`float`, *optional*, defaults to `None`): when set, GDA can move an AU's log-odds at
            most this far from what its own region's token says (a tanh-bounded correction): dependency then sharpens
            local evidence but cannot call an AU whose region did not move. `None`: GDA's tokens decide alone.
        use_gd_loss (`bool`, *optional*, defaults to `use_gda`): add GDLoss, which supervises GDA's attention: each
            AU token keeps half its attention on itself and gives the rest to the other AUs active in the sample,
            weighted by `au_cooccurrence` (the global token when none is; see `loss_micro_au_clip.py`). It needs GDA.
        use_miaucl (`bool`): the prompt-similarity head with the micro-AU contrastive loss; `False` gives a plain linear
            head per AU trained with BCE alone (and no text tower).
        miaucl_mask_true_prompts (`bool`, defaults to `True`): MiAUCL leaves out of each AU token's softmax the other
            AUs' prompts that are true for the face (no false negatives); `False` is the paper's form.
        au_cooccurrence (`list[list[float]]`, *optional*): `P(AU j active | AU i active)` on the training split, a
            `K x K` table with a zero diagonal, for GDLoss (`None`: the other active AUs weigh alike).
        lambda_cl (`float`), lambda_gd (`float`): weights of MiAUCL and GDLoss in the total loss.
        au_pos_weight (`list[float]`, *optional*): BCE positive weight per AU (usually negatives/positives on the
            training split, so that rare AUs count).
        logit_scale_init_value (`float`, defaults to 2.6592): initial log inverse temperature, as in CLIP.
        freeze_text_encoder (`bool`, defaults to `True`): keep the text tower fixed, so the prompt embeddings are
            computed once and cached, in training too.
        dropout (`float`): dropout in PTA and GDA.
    """

    model_type = "micro_au_clip"
    sub_configs = {"vision_config": CLIPVisionConfig, "text_config": CLIPTextConfig}

    def __init__(
        self,
        vision_config: dict | CLIPVisionConfig | None = None,
        text_config: dict | CLIPTextConfig | None = None,
        projection_dim: int = 512,
        aus: list[int] | None = None,
        au_names: list[str] | None = None,
        au_prompts: list[list[str]] | None = None,
        prompt_input_ids: list[list[int]] | None = None,
        au_template_boxes: list[list[list[float]]] | None = None,
        input_mode: str = "difference",
        pta_num_heads: int = 8,
        gda_num_layers: int = 1,
        gda_num_heads: int = 8,
        gda_intermediate_size: int | None = None,
        use_pta: bool = True,
        use_gda: bool = True,
        gda_max_logit_shift: float | None = None,
        use_gd_loss: bool | None = None,
        use_miaucl: bool = True,
        miaucl_mask_true_prompts: bool = True,
        au_cooccurrence: list[list[float]] | None = None,
        lambda_cl: float = 1.0,
        lambda_gd: float = 0.5,
        au_pos_weight: list[float] | None = None,
        logit_scale_init_value: float = 2.6592,
        freeze_text_encoder: bool = True,
        dropout: float = 0.0,
        initializer_range: float = 0.02,
        initializer_factor: float = 1.0,
        **kwargs,
    ):
        if aus is None:  # the default AU set; any of its per-AU fields the caller gave is kept
            default = DEFAULT_AU_FIELDS
            aus = default["aus"]
            au_names = default["au_names"] if au_names is None else au_names
            au_prompts = default["au_prompts"] if au_prompts is None else au_prompts
            prompt_input_ids = default["prompt_input_ids"] if prompt_input_ids is None else prompt_input_ids
            au_template_boxes = default["au_template_boxes"] if au_template_boxes is None else au_template_boxes
        # Nested configs arrive as dicts from config.json; transformers v5 leaves their conversion to us.
        self.vision_config = _as_config(vision_config, VIT_B_16["vision_config"], CLIPVisionConfig, projection_dim)
        self.text_config = _as_config(text_config, VIT_B_16["text_config"], CLIPTextConfig, projection_dim)
        self.projection_dim = projection_dim
        self.aus = [int(a) for a in (aus or [])]
        self.au_names = list(au_names) if au_names is not None else [f"AU{a}" for a in self.aus]
        self.au_prompts = [list(p) for p in (au_prompts or [])]
        self.prompt_input_ids = [list(map(int, ids)) for ids in (prompt_input_ids or [])]
        self.au_template_boxes = [[list(map(float, box)) for box in boxes] for boxes in (au_template_boxes or [])]
        self.input_mode = input_mode
        self.pta_num_heads = pta_num_heads
        self.gda_num_layers = gda_num_layers
        self.gda_num_heads = gda_num_heads
        self.gda_intermediate_size = gda_intermediate_size or 4 * projection_dim
        self.use_pta = use_pta
        self.use_gda = use_gda
        self.gda_max_logit_shift = float(gda_max_logit_shift) if gda_max_logit_shift is not None else None
        if use_gd_loss and not use_gda:  # e.g. a config saved before GDLoss acted on GDA's attention
            logger.warning("use_gd_loss is off: GDLoss supervises GDA's attention, and use_gda is False")
        self.use_gd_loss = bool(use_gda if use_gd_loss is None else use_gd_loss) and use_gda
        self.use_miaucl = use_miaucl
        self.miaucl_mask_true_prompts = miaucl_mask_true_prompts
        self.au_cooccurrence = [[float(p) for p in row] for row in au_cooccurrence] if au_cooccurrence else None
        self.lambda_cl = float(lambda_cl)
        self.lambda_gd = float(lambda_gd)
        self.au_pos_weight = [float(w) for w in au_pos_weight] if au_pos_weight is not None else None
        self.logit_scale_init_value = float(logit_scale_init_value)
        self.freeze_text_encoder = freeze_text_encoder
        self.dropout = float(dropout)
        self.initializer_range = initializer_range
        self.initializer_factor = initializer_factor
        super().__init__(**kwargs)
        self.validate_settings()

    @property
    def num_aus(self) -> int:
        return len(self.aus)

    @property
    def grid_size(self) -> int:
        """Patches per side of the vision tower's grid (image size / patch size)."""
        return self.vision_config.image_size // self.vision_config.patch_size

    def validate_settings(self) -> None:
        """Raise a ValueError naming the first inconsistent setting. An empty AU list (`aus=[]`) is allowed here and
        refused when a model is built from it."""
        if self.input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {self.input_mode!r}")
        if len(set(self.aus)) != len(self.aus):
            raise ValueError(f"aus has duplicates: {self.aus}")
        per_au = {"au_names": self.au_names, "au_template_boxes": self.au_template_boxes}
        if self.au_prompts:
            per_au["au_prompts"] = self.au_prompts
        if self.au_pos_weight is not None:
            per_au["au_pos_weight"] = self.au_pos_weight
        if self.au_cooccurrence is not None:
            per_au["au_cooccurrence"] = self.au_cooccurrence
            if any(len(row) != len(self.aus) for row in self.au_cooccurrence):
                raise ValueError(f"au_cooccurrence must be a {len(self.aus)} x {len(self.aus)} table")
        for name, values in per_au.items():
            if len(values) != len(self.aus):
                raise ValueError(f"{name} has {len(values)} entries for {len(self.aus)} AUs")
        if self.prompt_input_ids and len(self.prompt_input_ids) != 2 * len(self.aus):
            raise ValueError(
                f"prompt_input_ids needs a present and an absent prompt per AU ({2 * len(self.aus)}), "
                f"got {len(self.prompt_input_ids)}"
            )
        for au, boxes in zip(self.aus, self.au_template_boxes):
            if not boxes or any(len(b) != 4 or not (0 <= b[0] < b[2] <= 1 and 0 <= b[1] < b[3] <= 1) for b in boxes):
                raise ValueError(f"AU{au}: template boxes must be [x0, y0, x1, y1] with 0 <= x0 < x1 <= 1, got {boxes}")
        for name in ("pta_num_heads", "gda_num_heads"):
            heads = getattr(self, name)
            if heads < 1 or self.projection_dim % heads:
                raise ValueError(f"projection_dim ({self.projection_dim}) must be a multiple of {name} ({heads})")
        if self.gda_max_logit_shift is not None and self.gda_max_logit_shift <= 0:
            raise ValueError(f"gda_max_logit_shift must be > 0 (or None), got {self.gda_max_logit_shift}")
        if self.gda_num_layers < 1:
            raise ValueError(f"gda_num_layers must be >= 1, got {self.gda_num_layers}")
        if min(self.lambda_cl, self.lambda_gd) < 0:
            raise ValueError(f"loss weights must be >= 0, got lambda_cl={self.lambda_cl}, lambda_gd={self.lambda_gd}")
        if self.au_pos_weight is not None and min(self.au_pos_weight) <= 0:
            raise ValueError(f"au_pos_weight must be positive, got {self.au_pos_weight}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.vision_config.image_size % self.vision_config.patch_size:
            raise ValueError(
                f"vision image_size ({self.vision_config.image_size}) must be a multiple of its patch_size "
                f"({self.vision_config.patch_size})"
            )
        if self.vision_config.num_channels != 3:
            raise ValueError(f"the vision tower must take 3 channels, got {self.vision_config.num_channels}")


def _as_config(value, default: dict, config_class, projection_dim: int):
    if value is None:
        value = default
    if isinstance(value, dict):
        value = config_class(**{"projection_dim": projection_dim, **value})
    return value


__all__ = ["INPUT_MODES", "MicroAUClipConfig"]
