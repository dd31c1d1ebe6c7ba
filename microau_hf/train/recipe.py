"""The training recipe, in one place: what the `Trainer` glue (`trainer.py`) and the Accelerate loop (`loop.py`) share.

As in open_clip, every entry point trains the same model the same way because both read the recipe from here:

- **parameter groups**: weight decay on weight matrices and embeddings only; none on norms, biases, the learned
  temperature (``logit_scale``) and the AU queries (learned tokens, like CLIP's class embedding). open_clip's rule is
  "no decay when ``p.ndim < 2``, or on norms, biases and ``logit_scale``"; the AU queries are 2-D, so they are named.
- **training-split statistics**: the BCE weight of each AU's positives (negatives / positives) and the AU
  co-occurrence ``P(AU j | AU i)`` GDLoss weighs its targets with, both from the *training split* only.
- **loss terms**: the names of the parts of the loss a model output carries, for logging.
- **the schedule**: linear warm-up over ``ceil(warmup_ratio * total_steps)`` optimizer steps (as the Trainer counts
  them), then cosine decay to 0, sized so that 1 and N processes follow the same learning rate per sample seen.
- **mixed precision and gradient accumulation**, as `TrainingArguments` fields and as `Accelerator` arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import get_cosine_schedule_with_warmup

from ..loss_micro_au_clip import conditional_cooccurrence

#: The parts of the loss each model output may carry (`None` when switched off); logged by both entry points.
LOSS_TERMS = ("detection_loss", "contrastive_loss", "dependency_loss")

#: Config fields the recipe sets from the training split (`set_training_statistics`), never given by hand.
TRAINING_STATISTICS = ("au_pos_weight", "au_cooccurrence")

#: Learned parameters that are not weights: a decay would pull the temperature and the AU queries towards 0. (The
#: temperature is 0-d, so the ndim rule covers it too; the AU queries are 2-D and need their name.)
NO_DECAY_NAMES = ("logit_scale", "au_queries")
MIXED_PRECISION = ("no", "fp16", "bf16")


def refuse_training_statistics(config_overrides: dict[str, Any]) -> None:
    """Config overrides may not set what the recipe computes from the training split (one line naming them)."""
    given = [name for name in TRAINING_STATISTICS if name in config_overrides]
    if given:
        raise ValueError(f"config overrides: {', '.join(given)} is set from the training split by the training "
                         f"recipe; leave it out")


@dataclass(frozen=True)
class Recipe:
    """The optimisation settings both entry points read (their defaults are these)."""

    learning_rate: float = 5e-4
    weight_decay: float = 0.05
    warmup_ratio: float = 0.05  # share of the optimizer steps spent warming up
    max_grad_norm: float = 1.0
    mixed_precision: str | None = "no"  # "no", "fp16", "bf16", or None: as `accelerate launch` was configured
    gradient_accumulation_steps: int = 1

    def __post_init__(self) -> None:
        if self.mixed_precision is not None and self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if self.gradient_accumulation_steps < 1:
            raise ValueError(f"gradient_accumulation_steps must be >= 1, got {self.gradient_accumulation_steps}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must lie in [0, 1), got {self.warmup_ratio}")

    def trainer_arguments(self) -> dict[str, Any]:
        """The recipe as `TrainingArguments` fields (a float `warmup_steps` below 1 is a ratio in transformers v5)."""
        return {
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "warmup_steps": self.warmup_ratio,
            "lr_scheduler_type": "cosine",
            "optim": "adamw_torch",  # torch.optim.AdamW, as the loop builds it
            "max_grad_norm": self.max_grad_norm,
            "fp16": self.mixed_precision == "fp16",
            "bf16": self.mixed_precision == "bf16",
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    def accelerator_arguments(self) -> dict[str, Any]:
        """The recipe as `Accelerator(...)` keyword arguments. A launch configuration's accumulation steps win over
        these (Accelerate reads them from the environment), so a loop counts steps with the Accelerator's value."""
        return {"mixed_precision": self.mixed_precision,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}


def _decays(name: str, parameter: nn.Parameter) -> bool:
    last = name.rsplit(".", 1)[-1]
    if parameter.ndim < 2 or last in NO_DECAY_NAMES:
        return False  # norms' and biases' vectors, the temperature, class embeddings, the AU queries
    return "norm" not in name.lower()  # a 2-D norm parameter (none in CLIP today) is still a norm


def decay_parameter_names(model: nn.Module) -> list[str]:
    """Names of the trainable parameters that get weight decay (the `Trainer`'s `get_decay_parameter_names`)."""
    return [name for name, p in model.named_parameters() if p.requires_grad and _decays(name, p)]


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups of (name, parameter) pairs, decayed first, as the `Trainer` orders them; frozen parameters
    are left out. torch keeps the names in the optimizer's state dict (``param_names``), so a checkpoint says which
    parameter had which decay."""
    decayed = set(decay_parameter_names(model))
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [(n, p) for n, p in trainable if n in decayed], "weight_decay": weight_decay},
        {"params": [(n, p) for n, p in trainable if n not in decayed], "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.AdamW:
    """AdamW over the recipe's parameter groups (torch's defaults for betas and eps, as the Trainer's)."""
    return torch.optim.AdamW(parameter_groups(model, recipe.weight_decay), lr=recipe.learning_rate)


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    """Warm-up optimizer steps, rounded up as `TrainingArguments.get_warmup_steps` rounds a ratio."""
    return math.ceil(total_steps * warmup_ratio)


def make_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float, processes: int = 1
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay to 0 at `total_steps` optimizer steps.

    Accelerate steps a prepared scheduler once per process at every optimizer step (without ``split_batches``), so
    the schedule is laid out in process-steps: with N processes it advances N times a step and still ends at
    `total_steps`, and N processes follow the same learning rate per sample seen as one process does.
    """
    return get_cosine_schedule_with_warmup(optimizer, warmup_steps(total_steps, warmup_ratio) * processes,
                                           total_steps * processes)


def positive_weights(labels: torch.Tensor, cap: float = 10.0) -> list[float]:
    """BCE positive weight per AU: negatives / positives on the training split, capped so a rare AU cannot dominate."""
    positives = labels.sum(0)
    weights = (labels.shape[0] - positives) / positives.clamp(min=1)
    return weights.clamp(min=1.0, max=cap).tolist()


def set_training_statistics(config: Any, labels: torch.Tensor) -> None:
    """Write the training split's statistics into a model's config (read at every forward): the positive weights
    and ``P(AU j | AU i)`` (`conditional_cooccurrence`); `labels` is the split's ``(N, K)`` multi-hot."""
    config.au_pos_weight = positive_weights(labels)
    config.au_cooccurrence = conditional_cooccurrence(labels).tolist()
