"""What the training loop does differently under FSDP: 0-d parameters held as 1-element tensors while sharded, and
the whole model and optimizer state gathered to be saved and sent back on a resume.

FSDP (1 and 2) splits every parameter along its first dimension, so it refuses a 0-d one, and the model's temperature
`logit_scale` is 0-d, as in transformers' CLIP and in every saved checkpoint. Under FSDP the loop holds it as a
1-element tensor (`make_shardable`; the forward broadcasts it alike) and turns it back to 0-d before anything is
written (`saved_shapes`), so a file has one layout whatever trained it and loads anywhere, FSDP-trained or not;
the model is saved as an instance of its own class (`plain_model`).
"""

from __future__ import annotations

import torch
from torch import nn


def make_shardable(model: nn.Module) -> list[str]:
    """Replace every 0-d parameter of `model` by a 1-element one with the same value; return their names."""
    names = []
    for name, parameter in list(model.named_parameters()):
        if parameter.ndim == 0:
            owner_name, _, attribute = name.rpartition(".")
            owner = model.get_submodule(owner_name) if owner_name else model
            setattr(owner, attribute, nn.Parameter(parameter.detach().reshape(1), parameter.requires_grad))
            names.append(name)
    return names


def saved_shapes(model_state: dict[str, torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
    """`model_state` with the parameters `make_shardable` reshaped back to 0-d, as they are saved."""
    return {key: value.reshape(()) if key in names else value for key, value in model_state.items()}


def training_shapes(model_state: dict[str, torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
    """The inverse of `saved_shapes`: a saved state dict shaped for the model `make_shardable` changed."""
    return {key: value.reshape(1) if key in names else value for key, value in model_state.items()}


def plain_model(sharded_model: nn.Module, model_state: dict[str, torch.Tensor]) -> nn.Module:
    """A model of `sharded_model`'s own class holding the gathered `model_state` (saved shapes).

    FSDP2 turns a model's class into a generated subclass (`FSDPMicroAUClipModel`, defined in torch's
    `_fsdp_init.py`); `save_pretrained` on it would write that class into the config's `auto_map` and copy torch's
    FSDP files as the remote code, so that the checkpoint no longer loads. Built on the meta device, it costs no
    memory beyond the state dict it is given."""
    from torch.distributed.fsdp import FSDPModule

    own_class = next(cls for cls in type(sharded_model).__mro__ if not issubclass(cls, FSDPModule))
    with torch.device("meta"):
        model = own_class(sharded_model.config)
    model.load_state_dict(model_state, strict=False, assign=True)
    return model


# Under FSDP every process holds a shard of the model and of the optimizer state: the whole of each is gathered on
# the main process to be saved, and sent from it to every process on a resume (torch.distributed.checkpoint's
# full state dicts). Without FSDP each process holds all of it, and the plain state dicts are used.


def full_state_dicts(model: nn.Module, optimizer: torch.optim.Optimizer, sharded: bool) -> tuple[dict, dict]:
    """The whole model's and optimizer's state (`model` unwrapped, `optimizer` the torch one); with `sharded`, every
    process must call this, and the main process receives it."""
    if not sharded:
        return model.state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                         get_optimizer_state_dict)

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options), get_optimizer_state_dict(model, optimizer, options=options)


def load_full_state_dicts(model: nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
                          optimizer_state: dict, sharded: bool) -> None:
    """The inverse of `full_state_dicts`; with `sharded`, only the main process's dicts are read (and sent on; the
    dicts are sharded in place)."""
    if not sharded:
        model.load_state_dict(model_state, strict=False)  # save_pretrained leaves out tied copies
        optimizer.load_state_dict(optimizer_state)
        return
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                         set_optimizer_state_dict)

    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False)
    set_model_state_dict(model, model_state, options=options)
    set_optimizer_state_dict(model, optimizer, optimizer_state, options=options)
