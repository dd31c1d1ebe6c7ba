"""The training loop under Accelerate's FSDP2 on CPU processes, run by tests/test_train.py through torchrun:

    torchrun --standalone --nproc_per_node 2 tests/fsdp_loop_on_cpu.py --data DIR --output-dir OUT --cpu ...

with the FSDP variables `accelerate launch --config_file configs/accelerate/fsdp.yaml` sets in the environment.
Accelerate turns FSDP on only for accelerators: for CPU processes `AcceleratorState` keeps `MULTI_CPU` and drops the
FSDP plugin, although torch's FSDP2 itself runs on CPU over gloo. This lifts that one gate and nothing else, so the
loop, `accelerator.prepare` (Accelerate's FSDP2 wrapping, with the auto-wrap policy of the launch configuration),
the gathered checkpoints, the resume and the final save all run as they do on GPUs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType

CONFIG_FILE = Path(__file__).resolve().parent.parent / "configs" / "accelerate" / "fsdp.yaml"


def launch_environment(config_file: Path = CONFIG_FILE) -> dict[str, str]:
    """The FSDP variables `accelerate launch --config_file config_file` sets for its processes."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(config_file), "train.py"])
    args, _, _ = _validate_launch_command(args)
    return {k: v for k, v in prepare_multi_gpu_env(args).items() if k.startswith(("FSDP", "ACCELERATE_USE_FSDP"))}


def allow_fsdp_on_cpu() -> None:
    """Let `AcceleratorState` keep the FSDP plugin for CPU processes (this launcher's processes only: the tests that
    import `launch_environment` never call it)."""
    accelerator_state_init = AcceleratorState.__init__

    def init_with_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs) -> None:
        accelerator_state_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            # Every later `AcceleratorState()` copies PartialState's fields over its own, so both say FSDP.
            PartialState._shared_state["distributed_type"] = self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin

    AcceleratorState.__init__ = init_with_fsdp_on_cpu


if __name__ == "__main__":
    from microau_hf.train.loop import main

    allow_fsdp_on_cpu()
    main(sys.argv[1:])
