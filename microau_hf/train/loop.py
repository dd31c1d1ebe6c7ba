"""The Accelerate training loop: any number of processes, mixed precision, gradient accumulation, exact resume.

    accelerate launch scripts/train.py --data DIR --output-dir runs/x            # GPUs, as configured
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \
        scripts/train.py --data DIR --output-dir runs/x --cpu                   # 2 CPU processes
    microau train --data DIR --output-dir runs/x                                # one process

Checkpoints (`checkpoint-<step>/`) hold the model as safetensors (`save_pretrained`), the optimizer and scheduler
state and the RNG state as plain tensors read back with `torch.load(weights_only=True)` (never arbitrary pickles),
and `trainer_state.json`. The data order is a pure function of (seed, epoch), so a run resumed from a checkpoint
skips the batches it already saw and ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from ..atomic import atomic_directory, remove_stale_staging
from ..checkpoints import load_model
from ..aus import resolve_au_set
from ..data.corpus_faces import check_corpus_faces
from ..data.schema import load_dataset_folder
from ..modeling_micro_au_clip import MicroAUClipModel
from ..presets import make_config
from .collator import MicroAUCollator, au_labels, check_dataset
from .loso import positive_weights

STATE_FILE = "trainer_state.json"

# With several processes, the DDP-wrapped model, optimizer and data loader must outlive `train()`: freeing them runs
# the Gloo process group's destructor, which joins threads that wait on a peer that may already have left, and hangs.
# `main()` ends the process with `os._exit` right after, so they are never freed.
_KEPT_UNTIL_EXIT: list[Any] = []


@dataclass
class LoopSettings:
    data: str
    output_dir: str
    aus: str = "casme2"
    preset: str = "tiny"
    model: str | None = None  # a Micro-AU CLIP checkpoint to start from
    clip: str | None = None  # or a CLIP checkpoint (Hub id or folder) for the towers
    config_overrides: dict[str, Any] = field(default_factory=dict)
    epochs: int = 5
    max_steps: int | None = None
    batch_size: int = 16  # per process
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-4
    weight_decay: float = 0.05
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    cpu: bool = False
    seed: int = 0
    save_steps: int = 0  # 0: only at the end
    logging_steps: int = 10
    resume_from: str | None = None  # a checkpoint folder, or "latest"
    pre_aligned: bool = False  # frames are aligned face crops: canonical template regions, no landmark model
    stop_after_steps: int | None = None  # simulate a crash right after this step's checkpoint (tests)


class EpochShuffle(Sampler[int]):
    """A random order that depends only on (seed, epoch), identical on every process and after a resume."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def build_model(settings: LoopSettings, train_labels: torch.Tensor | None = None) -> MicroAUClipModel:
    if settings.model:
        return load_model(settings.model)
    config = make_config(settings.aus, preset=settings.preset, **settings.config_overrides)
    if train_labels is not None:
        config.au_pos_weight = positive_weights(train_labels)
    if settings.clip:
        return MicroAUClipModel.from_clip(settings.clip, config)
    return MicroAUClipModel(config)


def _latest_checkpoint(output_dir: Path) -> Path:
    """The checkpoint-<step> folder with the highest step; other folders (``checkpoint-old``, a copy) are ignored."""
    steps = {int(p.name.split("-", 1)[1]): p for p in output_dir.glob("checkpoint-*")
             if p.is_dir() and p.name.split("-", 1)[1].isdigit()}
    if not steps:
        raise FileNotFoundError(f"{output_dir}: no checkpoint-<step> folder to resume from")
    return steps[max(steps)]


def save_checkpoint(folder: Path, accelerator: Accelerator, model, optimizer, scheduler, state: dict) -> None:
    """Write one checkpoint atomically (main process), all processes waiting for it."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        remove_stale_staging(folder.parent, "checkpoint-*")  # what a run killed mid-save left behind
        with atomic_directory(folder) as staged:
            accelerator.unwrap_model(model).save_pretrained(staged, safe_serialization=True)
            torch.save(optimizer.state_dict(), staged / "optimizer.pt")
            torch.save(scheduler.state_dict(), staged / "scheduler.pt")
            torch.save({"cpu": torch.get_rng_state()}, staged / "rng_state.pt")
            (staged / STATE_FILE).write_text(json.dumps(state, indent=2))
    accelerator.wait_for_everyone()


def load_checkpoint(folder: Path, accelerator: Accelerator, model, optimizer, scheduler) -> dict:
    from safetensors.torch import load_file

    if not (folder / STATE_FILE).exists() or not (folder / "model.safetensors").exists():
        raise FileNotFoundError(f"{folder}: not a training checkpoint (needs {STATE_FILE} and model.safetensors)")
    accelerator.unwrap_model(model).load_state_dict(_read(folder / "model.safetensors", load_file), strict=False)
    optimizer.load_state_dict(_read(folder / "optimizer.pt", _tensors_only))
    scheduler.load_state_dict(_read(folder / "scheduler.pt", _tensors_only))
    torch.set_rng_state(_read(folder / "rng_state.pt", _tensors_only)["cpu"])
    return _read(folder / STATE_FILE, lambda path: json.loads(path.read_text()))


def _tensors_only(path: Path) -> Any:
    return torch.load(path, weights_only=True, map_location="cpu")


def _read(path: Path, reader) -> Any:
    """``reader(path)``, with whatever a damaged or foreign file raises turned into one line naming it. A refused
    pickle (anything but tensors and plain containers) is reported, never loaded."""
    from pickle import UnpicklingError

    from safetensors import SafetensorError

    try:
        return reader(path)
    except UnpicklingError:
        raise ValueError(f"{path}: holds objects other than tensors (a pickle that could run code when loaded); "
                         f"refused") from None
    except (SafetensorError, RuntimeError, EOFError, KeyError, ValueError, OSError) as err:
        problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: unreadable checkpoint file ({problem[:200]})") from None


def train(settings: LoopSettings) -> Path:
    """Train; returns the folder of the final model (`<output_dir>/final`)."""
    accelerator = Accelerator(
        cpu=settings.cpu,
        mixed_precision=settings.mixed_precision,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
    )
    torch.manual_seed(settings.seed)
    output_dir = Path(settings.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"{output_dir}: exists and is a file; --output-dir must be a folder")
    dataset = load_dataset_folder(settings.data)
    with accelerator.main_process_first():  # the main process detects the faces and saves the cache; the rest read it
        faces = check_corpus_faces(dataset, None if settings.pre_aligned else "auto", settings.data,
                                   progress=accelerator.is_main_process)
    dataset = faces.usable_rows(dataset, settings.data)
    model = build_model(settings, au_labels(dataset["aus"], resolve_au_set(settings.aus)))
    check_dataset(dataset, model.config.aus, settings.data)
    from ..face.pipeline import build_processor

    sampler = EpochShuffle(len(dataset), settings.seed)
    collator = MicroAUCollator(build_processor(model.config), model.config.aus, faces.preparer(model.config))
    loader = DataLoader(dataset, batch_size=settings.batch_size, sampler=sampler, collate_fn=collator, drop_last=True)
    steps_per_epoch = math.ceil(len(loader) / accelerator.num_processes / settings.gradient_accumulation_steps)
    total_steps = settings.max_steps or settings.epochs * steps_per_epoch
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    # Accelerate steps a prepared scheduler once per process at every optimizer step, so the schedule is laid out in
    # process-steps: N processes then follow the same learning rate per sample seen as one process does.
    processes = accelerator.num_processes
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(settings.warmup_ratio * total_steps) * processes,
                                                total_steps * processes)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

    state = {"global_step": 0, "epoch": 0, "batches_in_epoch": 0, "settings": asdict(settings)}
    if settings.resume_from:
        folder = _latest_checkpoint(output_dir) if settings.resume_from == "latest" else Path(settings.resume_from)
        state = load_checkpoint(folder, accelerator, model, optimizer, scheduler)
        accelerator.print(f"resumed from {folder} at step {state['global_step']}")

    log_path = output_dir / "log.jsonl"
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    progress = tqdm(total=total_steps, initial=state["global_step"], desc="training", disable=not accelerator.is_main_process)
    running: dict[str, float] = {}
    model.train()
    while state["global_step"] < total_steps:
        loader.set_epoch(state["epoch"])
        batches = accelerator.skip_first_batches(loader, state["batches_in_epoch"]) if state["batches_in_epoch"] else loader
        for batch in batches:
            with accelerator.accumulate(model):
                outputs = model(**batch)
                accelerator.backward(outputs.loss)
                if accelerator.sync_gradients and settings.max_grad_norm:
                    accelerator.clip_grad_norm_(trainable, settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            state["batches_in_epoch"] += 1
            _accumulate_terms(running, outputs, accelerator)
            if not accelerator.sync_gradients:
                continue
            state["global_step"] += 1
            progress.update(1)
            if state["global_step"] % settings.logging_steps == 0 or state["global_step"] == total_steps:
                _write_log(running, state, scheduler, log_path, accelerator, progress)
            if settings.save_steps and state["global_step"] % settings.save_steps == 0:
                save_checkpoint(output_dir / f"checkpoint-{state['global_step']}", accelerator, model, optimizer, scheduler, state)
                if settings.stop_after_steps == state["global_step"]:
                    _crash(accelerator)
            if state["global_step"] >= total_steps:
                break
        else:
            state["epoch"] += 1
            state["batches_in_epoch"] = 0
    progress.close()
    final = output_dir / "final"
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with atomic_directory(final) as staged:
            accelerator.unwrap_model(model).save_pretrained(staged, safe_serialization=True)
            build_processor(accelerator.unwrap_model(model).config).save_pretrained(staged)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if accelerator.num_processes > 1:
        _KEPT_UNTIL_EXIT.extend([accelerator, model, optimizer, loader, scheduler])
    return final


def _accumulate_terms(running: dict[str, float], outputs, accelerator: Accelerator) -> None:
    for term in ("loss", "detection_loss", "contrastive_loss", "dependency_loss"):
        value = getattr(outputs, term, None)
        if value is not None:
            running[term] = running.get(term, 0.0) + float(accelerator.reduce(value.detach(), reduction="mean"))
    running["batches"] = running.get("batches", 0.0) + 1


def _write_log(running, state, scheduler, log_path: Path, accelerator: Accelerator, progress) -> None:
    batches = max(running.pop("batches", 1.0), 1.0)
    record = {"step": state["global_step"], "epoch": state["epoch"], "lr": scheduler.get_last_lr()[0]}
    record.update({term: round(total / batches, 5) for term, total in running.items()})
    running.clear()
    if accelerator.is_main_process:
        progress.set_postfix(loss=record.get("loss"))
        with log_path.open("a") as stream:
            stream.write(json.dumps(record) + "\n")


def _crash(accelerator: Accelerator) -> None:
    """Stop like a killed job: no final save, no clean-up."""
    accelerator.print("stopping abruptly after the checkpoint (stop_after_steps)")
    sys.stdout.flush()
    os._exit(3)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Train Micro-AU CLIP with Accelerate (see module docstring).")
    defaults = LoopSettings(data="", output_dir="")
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if name in ("data", "output_dir"):
            parser.add_argument(flag, required=True)
        elif isinstance(value, bool):
            parser.add_argument(flag, action="store_true")
        elif isinstance(value, dict):
            parser.add_argument(flag, type=json.loads, default={}, help="JSON object of config fields")
        else:
            kind = type(value) if value is not None else (int if name in ("max_steps", "stop_after_steps") else str)
            parser.add_argument(flag, type=kind, default=value)
    settings = LoopSettings(**vars(parser.parse_args(argv)))
    final = train(settings)
    print(f"final model: {final}")
    sys.stdout.flush()
    sys.stderr.flush()
    # Rank 1 was seen to abort in interpreter teardown after DDP on CPU; the work is saved, so leave at once.
    os._exit(0)


if __name__ == "__main__":
    main()
