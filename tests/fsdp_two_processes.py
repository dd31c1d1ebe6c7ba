"""FSDP2 on CPU, run by tests/test_train.py: `torchrun --standalone --nproc_per_node 2 tests/fsdp_two_processes.py OUT`.

Accelerate turns FSDP on only for accelerators, so this drives torch's FSDP2 (`fully_shard`) directly, over gloo,
on the units Accelerate's FSDP2 would shard with configs/accelerate/fsdp.yaml (its auto-wrap policy, from the
settings `accelerate launch` derives from that file, then the root).
Each process trains on its half of a batch of 4 with the recipe's optimizer; then the loop's checkpoint helpers
gather the full model and optimizer state (written to OUT by rank 0) and load it into a freshly sharded model, whose
next step must match the trained model's. The test compares OUT with one process trained on the whole batch.

FSDP (1 and 2) refuses 0-d parameters, and the model's temperature `logit_scale` is 0-d (as in transformers' CLIP);
until the model holds it as a 1-element tensor, both runs here reshape it (`one_dimensional_temperature`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.fsdp import fully_shard

from microau_hf import MicroAUClipModel, make_config
from microau_hf.train.loop import full_state_dicts, load_full_state_dicts
from microau_hf.train.recipe import Recipe, make_optimizer

STEPS = 3
CONFIG_FILE = Path(__file__).resolve().parent.parent / "configs" / "accelerate" / "fsdp.yaml"


def launch_environment(config_file: Path = CONFIG_FILE) -> dict[str, str]:
    """The FSDP variables `accelerate launch --config_file config_file` sets for its processes."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(config_file), "train.py"])
    args, _, _ = _validate_launch_command(args)
    return {k: v for k, v in prepare_multi_gpu_env(args).items() if k.startswith(("FSDP", "ACCELERATE_USE_FSDP"))}


def shard_units(model: nn.Module) -> list[nn.Module]:
    """The sub-modules Accelerate's FSDP2 shards on their own under the launch configuration, innermost first."""
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy, get_module_children_bottom_up

    os.environ.update(launch_environment())
    plugin = FullyShardedDataParallelPlugin()
    plugin.set_auto_wrap_policy(model)
    policy = fsdp2_prepare_auto_wrap_policy(plugin, model)
    return [module for module in get_module_children_bottom_up(model)[:-1] if policy(module)]


def tiny_config():
    # GDLoss normalises by the pairs each batch involves, so halves of a batch would not average to the whole batch's
    # loss; weighted 0, the comparison with one process is exact.
    return make_config("samm", preset="test", lambda_gd=0.0)


def batch(config, size: int = 4) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    side = config.vision_config.image_size
    return {"onset_pixel_values": torch.randn(size, 3, side, side, generator=generator),
            "apex_pixel_values": torch.randn(size, 3, side, side, generator=generator),
            "labels": (torch.rand(size, config.num_aus, generator=generator) > 0.5).float()}


def train_steps(model, optimizer, inputs: dict[str, torch.Tensor], steps: int) -> list[float]:
    losses = []
    for _ in range(steps):
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    return losses


def one_dimensional_temperature(model: MicroAUClipModel) -> MicroAUClipModel:
    if model.logit_scale is not None and model.logit_scale.ndim == 0:
        model.logit_scale = nn.Parameter(model.logit_scale.detach().reshape(1))
    return model


def reference_model(seed: int) -> MicroAUClipModel:
    torch.manual_seed(seed)
    return one_dimensional_temperature(MicroAUClipModel(tiny_config()))


def sharded_model(seed: int):
    model = reference_model(seed)
    for module in shard_units(model):
        fully_shard(module)
    fully_shard(model)
    return model, make_optimizer(model, Recipe())


def main(out: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    model, optimizer = sharded_model(seed=0)
    half = {key: value[2 * rank : 2 * rank + 2] for key, value in batch(model.config).items()}
    losses = train_steps(model, optimizer, half, STEPS)
    model_state, optimizer_state = full_state_dicts(model, optimizer, sharded=True)
    if rank == 0:  # before loading, which shards the dicts it is given in place
        torch.save({"model": model_state, "optimizer": optimizer_state, "losses": torch.tensor(losses)}, out)

    fresh, fresh_optimizer = sharded_model(seed=1)  # other weights, until the checkpoint is loaded
    load_full_state_dicts(fresh, fresh_optimizer, model_state, optimizer_state, sharded=True)
    continued, reloaded = train_steps(model, optimizer, half, 1), train_steps(fresh, fresh_optimizer, half, 1)
    if rank == 0:
        torch.save({"continued": torch.tensor(continued), "reloaded": torch.tensor(reloaded)}, out + ".next")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
