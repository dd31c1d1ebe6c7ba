"""The Accelerate training loop: any number of processes and machines, DDP or FSDP, mixed precision, gradient
accumulation, exact resume. It follows the training recipe of `recipe.py`, as the `Trainer` glue does.

    accelerate launch --config_file configs/accelerate/ddp.yaml scripts/train.py --data DIR --output-dir runs/x
    accelerate launch --config_file configs/accelerate/fsdp.yaml scripts/train.py --data DIR --output-dir runs/x
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \
        scripts/train.py --data DIR --output-dir runs/x --cpu                   # 2 CPU processes
    microau train --data DIR --output-dir runs/x                                # one process

Checkpoints (`checkpoint-<step>/`) hold the model as safetensors (`save_pretrained`), the optimizer and scheduler
state and the RNG state as plain tensors read back with `torch.load(weights_only=True)` (never arbitrary pickles),
and `trainer_state.json` with the run's settings. The data order is a pure function of (seed, epoch), so a run
resumed from a checkpoint skips the batches it already saw and ends with the same weights as one that never stopped;
a resume whose model, batch size, seed or process count differs from the checkpoint's is refused (`check_resume`).
Under FSDP the model and optimizer state are gathered whole into the same files, so the final model loads anywhere
(a resume still needs the checkpoint's number of processes, the batches already seen depend on it, and FSDP again,
the optimizer state is laid out by parameter name); `sharding.py` holds what FSDP changes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from ..atomic import OutputRule, atomic_directory, output_lock, remove_stale_staging
from ..checkpoints import load_model, write_training_data
from ..data.corpus_faces import check_corpus_faces
from ..data.schema import load_dataset_folder
from ..face.pipeline import build_processor
from ..modeling_micro_au_clip import MicroAUClipModel
from ..presets import make_config
from .collator import MicroAUCollator, au_labels, check_dataset
from .recipe import (LOSS_TERMS, Recipe, make_optimizer, make_scheduler, refuse_training_statistics,
                     set_training_statistics)
from .sharding import (full_state_dicts, load_full_state_dicts, make_shardable, plain_model, saved_shapes,
                       training_shapes)

logger = logging.getLogger(__name__)

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
    gradient_accumulation_steps: int = Recipe.gradient_accumulation_steps
    learning_rate: float = Recipe.learning_rate
    weight_decay: float = Recipe.weight_decay
    warmup_ratio: float = Recipe.warmup_ratio
    max_grad_norm: float = Recipe.max_grad_norm
    mixed_precision: str | None = None  # "no", "fp16", "bf16"; None: as `accelerate launch` was configured, else "no"
    cpu: bool = False
    seed: int = 0
    save_steps: int = 0  # 0: only at the end
    logging_steps: int = 10
    resume_from: str | None = None  # a checkpoint folder, or "latest"
    pre_aligned: bool = False  # frames are aligned face crops: canonical template regions, no landmark model
    stop_after_steps: int | None = None  # simulate a crash right after this step's checkpoint (tests)
    overwrite: bool = False  # replace an earlier run in output_dir (else refused, unless resume_from continues it)

    def recipe(self) -> Recipe:
        return Recipe(self.learning_rate, self.weight_decay, self.warmup_ratio, self.max_grad_norm,
                      self.mixed_precision, self.gradient_accumulation_steps)


def check_settings(settings: LoopSettings) -> None:
    """Refuse, in one line, settings that would be silently ignored or contradict each other."""
    if settings.overwrite and settings.resume_from:
        raise ValueError("--overwrite replaces the earlier run and --resume-from continues it: give one of them")
    if settings.model:
        ignored = sorted(settings.config_overrides) + (["clip"] if settings.clip else [])
        if ignored:
            raise ValueError(f"--model {settings.model}: the checkpoint's config and weights are used as saved, so "
                             f"{', '.join(ignored)} would be ignored; drop them, or build a new model (--preset, "
                             f"--clip, --config) instead of --model")
    refuse_training_statistics(settings.config_overrides)


#: Settings a resume must share with its checkpoint, and what they fix.
RESUME_MUST_MATCH = {
    "aus": "the AU set", "preset": "the model size", "model": "the starting checkpoint", "clip": "the CLIP towers",
    "config_overrides": "the model settings", "batch_size": "the batches already seen",
    "gradient_accumulation_steps": "the batches of a step", "seed": "the data order", "pre_aligned": "the face path",
    "processes": "the batches already seen", "samples": "the data order",
    "fsdp": "the optimizer state's layout",
}
#: Settings a resume may change but that the checkpoint's optimizer state overrides: a change has no effect.
RESUME_KEEPS_CHECKPOINT = ("learning_rate", "weight_decay")
#: Settings a resume may change: the learning-rate curve is laid out anew over the new length from here on.
RESUME_REDRAWS_SCHEDULE = ("epochs", "max_steps", "warmup_ratio")


def check_resume(folder: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse a resume whose model or data order differs from the checkpoint's (one line naming every difference);
    warn about changes the resume ignores or that reshape the schedule. `saved` and `current` are the run records
    (`LoopSettings` fields, plus `processes` and `samples`)."""
    def differs(name: str) -> bool:
        return name in saved and saved[name] != current[name]

    refused = [f"{name} is {current[name]!r} here but {saved[name]!r} in the checkpoint ({why})"
               for name, why in RESUME_MUST_MATCH.items() if differs(name)]
    if refused:
        raise ValueError(f"{folder}: cannot resume: {'; '.join(refused)}; resume with the checkpoint's settings or "
                         f"train into a new --output-dir")
    for name in filter(differs, RESUME_KEEPS_CHECKPOINT):
        logger.warning("%s: %s %r is ignored: the resumed optimizer keeps the checkpoint's %r", folder, name,
                       current[name], saved[name])
    for name in filter(differs, RESUME_REDRAWS_SCHEDULE):
        logger.warning("%s: %s changed from %r to %r: the learning-rate schedule is laid out anew from here on",
                       folder, name, saved[name], current[name])


def run_record(settings: LoopSettings, accelerator: Accelerator, samples: int) -> dict[str, Any]:
    """What a checkpoint records of its run, and what a resume is checked against: the settings as they took effect
    (a launch configuration may set the precision and the accumulation)."""
    settings_record = {name: os.fspath(value) if isinstance(value, os.PathLike) else value  # JSON has no paths
                       for name, value in asdict(settings).items()}
    return {**settings_record, "mixed_precision": accelerator.mixed_precision,
            "gradient_accumulation_steps": accelerator.gradient_accumulation_steps,
            "processes": accelerator.num_processes, "samples": samples,
            "fsdp": is_fsdp(accelerator)}


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


def build_model(settings: LoopSettings) -> MicroAUClipModel:
    if settings.model:
        return load_model(settings.model)
    config = make_config(settings.aus, preset=settings.preset, **settings.config_overrides)
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


def _checkpoint_to_resume(settings: LoopSettings, output_dir: Path, record: dict[str, Any]) -> Path | None:
    """The checkpoint folder a resume starts from, checked against this run (`check_resume`) before any work."""
    if not settings.resume_from:
        return None
    folder = _latest_checkpoint(output_dir) if settings.resume_from == "latest" else Path(settings.resume_from)
    if not (folder / STATE_FILE).exists() or not (folder / "model.safetensors").exists():
        raise FileNotFoundError(f"{folder}: not a training checkpoint (needs {STATE_FILE} and model.safetensors)")
    saved = _read(folder / STATE_FILE, lambda path: json.loads(path.read_text()))
    check_resume(folder, saved.get("settings") or {}, record)
    return folder


def is_fsdp(accelerator: Accelerator) -> bool:
    return accelerator.distributed_type == DistributedType.FSDP


@dataclass
class PreparedRun:
    """What `accelerator.prepare` returned, and the parameters reshaped to be sharded (`sharding.make_shardable`)."""

    accelerator: Accelerator
    model: Any
    optimizer: Any
    scheduler: Any
    loader: DataLoader
    reshaped: list[str]

    @property
    def sharded(self) -> bool:
        return is_fsdp(self.accelerator)

    def local_model(self):
        """The model as this process holds it: its shard under FSDP (every process takes part in gathering), the
        unwrapped whole model otherwise."""
        return self.model if self.sharded else self.accelerator.unwrap_model(self.model)

    def save_model(self, folder: Path, model_state: dict[str, torch.Tensor]) -> None:
        """`save_pretrained` of the gathered `model_state` (main process only), in the saved shapes."""
        model_state = saved_shapes(model_state, self.reshaped)
        model = self.accelerator.unwrap_model(self.model)
        if self.sharded:
            model = plain_model(model, model_state)
        model.save_pretrained(folder, state_dict=model_state, safe_serialization=True)


def prepare_run(accelerator: Accelerator, model, loader: DataLoader, recipe: Recipe, total_steps: int) -> PreparedRun:
    """The recipe's optimizer and schedule, and everything through `accelerator.prepare` (under FSDP the model is
    made shardable first, so that the optimizer holds the parameters FSDP shards)."""
    reshaped = make_shardable(model) if is_fsdp(accelerator) else []
    optimizer = make_optimizer(model, recipe)
    scheduler = make_scheduler(optimizer, total_steps, recipe.warmup_ratio, accelerator.num_processes)
    return PreparedRun(accelerator, *accelerator.prepare(model, optimizer, scheduler, loader), reshaped=reshaped)


def save_checkpoint(folder: Path, run: PreparedRun, state: dict) -> None:
    """Write one checkpoint atomically (main process), all processes waiting for it."""
    accelerator = run.accelerator
    accelerator.wait_for_everyone()
    model_state, optimizer_state = full_state_dicts(run.local_model(), run.optimizer.optimizer, run.sharded)
    if accelerator.is_main_process:
        remove_stale_staging(folder.parent, "checkpoint-*")  # what a run killed mid-save left behind
        with atomic_directory(folder) as staged:
            run.save_model(staged, model_state)
            torch.save(optimizer_state, staged / "optimizer.pt")
            torch.save(run.scheduler.state_dict(), staged / "scheduler.pt")
            torch.save({"cpu": torch.get_rng_state()}, staged / "rng_state.pt")
            (staged / STATE_FILE).write_text(json.dumps(state, indent=2))
    accelerator.wait_for_everyone()


def load_checkpoint(folder: Path, run: PreparedRun) -> dict:
    from safetensors.torch import load_file

    reads = not run.sharded or run.accelerator.is_main_process  # under FSDP the main process reads and sends
    model_state = training_shapes(_read(folder / "model.safetensors", load_file), run.reshaped) if reads else {}
    optimizer_state = _read(folder / "optimizer.pt", _tensors_only) if reads else {}
    load_full_state_dicts(run.local_model(), run.optimizer.optimizer, model_state, optimizer_state, run.sharded)
    run.scheduler.load_state_dict(_read(folder / "scheduler.pt", _tensors_only))
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


#: What a run writes into its output_dir (everything else there is left alone).
TRAIN_WRITES = ("log.jsonl", "final", "checkpoint-[0-9]*")


def _check_output_dir(settings: LoopSettings) -> list[Path]:
    """The write rule for output_dir (`atomic.OutputRule`): the earlier run's entries it holds, if any."""
    rule = OutputRule({"--data": settings.data, "--model": settings.model, "--clip": settings.clip},
                      settings.overwrite)
    return rule.check_folder(settings.output_dir, "--output-dir", TRAIN_WRITES, continuing=bool(settings.resume_from),
                             or_else="--resume-from latest to continue it")


@contextmanager
def claimed_output_dir(settings: LoopSettings) -> Iterator[None]:
    """Check output_dir and hold its lock for the run; with ``overwrite``, the earlier run's log and checkpoints go
    (its final model stays until the new one replaces it). The main process alone does this, before Accelerate
    starts (``RANK`` is set by the launcher): a refusal there ends the launch."""
    if os.environ.get("RANK", "0") != "0":
        yield
        return
    _check_output_dir(settings)
    with output_lock(settings.output_dir, "train"):
        earlier = _check_output_dir(settings)  # again under the lock: a run that ended meanwhile may have written
        if settings.overwrite:
            for entry in (e for e in earlier if e.name != "final"):
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        yield


def train(settings: LoopSettings) -> Path:
    """Train; returns the folder of the final model (`<output_dir>/final`)."""
    check_settings(settings)
    with claimed_output_dir(settings):
        return _train(settings)


def _train(settings: LoopSettings) -> Path:
    recipe = settings.recipe()
    accelerator = Accelerator(cpu=settings.cpu, **recipe.accelerator_arguments())
    torch.manual_seed(settings.seed)
    output_dir = Path(settings.output_dir)
    dataset = load_dataset_folder(settings.data)
    with accelerator.main_process_first():  # the main process detects the faces and saves the cache; the rest read it
        faces = check_corpus_faces(dataset, None if settings.pre_aligned else "auto", settings.data,
                                   progress=accelerator.is_main_process)
    dataset = faces.usable_rows(dataset, settings.data)
    record = run_record(settings, accelerator, len(dataset))
    resume_folder = _checkpoint_to_resume(settings, output_dir, record)
    model = build_model(settings)
    check_dataset(dataset, model.config.aus, settings.data)
    set_training_statistics(model.config, au_labels(dataset["aus"], model.config.aus))
    collator = MicroAUCollator(build_processor(model.config), model.config.aus, faces.preparer(model.config))
    loader = DataLoader(dataset, batch_size=settings.batch_size, sampler=EpochShuffle(len(dataset), settings.seed),
                        collate_fn=collator, drop_last=True)
    if len(loader) == 0:  # full batches only (drop_last): no step would ever run, and --max-steps would wait forever
        raise ValueError(f"{settings.data}: {len(dataset)} usable samples, fewer than one batch of "
                         f"{settings.batch_size}; lower --batch-size")
    steps_per_epoch = math.ceil(len(loader) / accelerator.num_processes / accelerator.gradient_accumulation_steps)
    total_steps = settings.max_steps or settings.epochs * steps_per_epoch
    run = prepare_run(accelerator, model, loader, recipe, total_steps)

    state = {"global_step": 0, "epoch": 0, "batches_in_epoch": 0, "settings": record}
    if resume_folder is not None:
        state = load_checkpoint(resume_folder, run)
        accelerator.print(f"resumed from {resume_folder} at step {state['global_step']}")
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    _run_steps(settings, run, state, total_steps)
    final = _save_final(output_dir / "final", run, dataset)
    accelerator.end_training()
    if accelerator.num_processes > 1:
        _KEPT_UNTIL_EXIT.append(run)
    return final


def _run_steps(settings: LoopSettings, run: PreparedRun, state: dict, total_steps: int) -> None:
    """Train from `state` (step, epoch, batches seen in it) to `total_steps`, logging and checkpointing."""
    accelerator, model, optimizer, scheduler = run.accelerator, run.model, run.optimizer, run.scheduler
    output_dir = Path(settings.output_dir)
    progress = tqdm(total=total_steps, initial=state["global_step"], desc="training",
                    disable=not accelerator.is_main_process)
    running: dict[str, float] = {}
    clipped = [p for p in model.parameters() if p.requires_grad]  # the prepared (under FSDP: sharded) parameters
    model.train()
    while state["global_step"] < total_steps:
        run.loader.set_epoch(state["epoch"])
        seen = state["batches_in_epoch"]
        batches = accelerator.skip_first_batches(run.loader, seen) if seen else run.loader
        for batch in batches:
            with accelerator.accumulate(model):
                outputs = model(**batch)
                accelerator.backward(outputs.loss)
                if accelerator.sync_gradients and settings.max_grad_norm:
                    accelerator.clip_grad_norm_(clipped, settings.max_grad_norm)
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
                _write_log(running, state, scheduler, output_dir / "log.jsonl", accelerator, progress)
            if settings.save_steps and state["global_step"] % settings.save_steps == 0:
                save_checkpoint(output_dir / f"checkpoint-{state['global_step']}", run, state)
                if settings.stop_after_steps == state["global_step"]:
                    _crash(accelerator)
            if state["global_step"] >= total_steps:
                break
        else:
            state["epoch"] += 1
            state["batches_in_epoch"] = 0
    progress.close()


def _save_final(final: Path, run: PreparedRun, rows) -> Path:
    """The trained model, its processor and what trained it (`rows`), saved atomically by the main process (the
    model gathered first under FSDP)."""
    accelerator = run.accelerator
    accelerator.wait_for_everyone()
    model_state = accelerator.get_state_dict(run.model)  # every process takes part; the main process gets it whole
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(run.model)
        with atomic_directory(final) as staged:
            run.save_model(staged, model_state)
            build_processor(unwrapped.config).save_pretrained(staged)
            write_training_data(staged, rows)
    accelerator.wait_for_everyone()
    return final


def _accumulate_terms(running: dict[str, float], outputs, accelerator: Accelerator) -> None:
    for term in ("loss", *LOSS_TERMS):
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
