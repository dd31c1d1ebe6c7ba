"""Loading a Micro-AU CLIP checkpoint the safe way: safetensors only, and only when its tensors cover the model.

    model = load_model("outputs/quickstart/checkpoint")     # a folder (save_pretrained) or a Hub id

Every command that loads weights (predict, the pipeline, the Space, training from a checkpoint) goes through here, so
a bad checkpoint gives the same one-line :class:`CheckpointError` everywhere: not a folder, no config, another model
type, no ``model.safetensors`` (a ``pytorch_model.bin`` pickle is never read), unreadable weights, or weights that
leave some of the model's tensors uninitialised.

A checkpoint also says what it was trained on: the training entry points (LOSO with ``save_model_to``, which the
quickstart uses, and the Accelerate loop's ``final/``) write :data:`TRAINING_DATA_FILE` beside the weights,
``{"corpora": ["synthetic"], "num_samples": 360}``: the ``dataset`` names of the training rows and their count.
The Space reads it to say when a checkpoint is a demo trained on synthetic data; the Hub push uploads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .modeling_micro_au_clip import MicroAUClipModel

MODEL_TYPE = "micro_au_clip"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
TRAINING_DATA_FILE = "training_data.json"
#: The ``dataset`` name of the rows of the synthetic corpus (:mod:`microau_hf.data.synthetic`).
SYNTHETIC_CORPUS = "synthetic"


class CheckpointError(ValueError):
    """A path or Hub id that is not a loadable Micro-AU CLIP checkpoint; one line naming it."""


def check_checkpoint_folder(folder: Path) -> None:
    """Refuse a local folder that is not a Micro-AU CLIP checkpoint, before transformers gives a longer error."""
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a folder; give a checkpoint folder (save_pretrained) or a Hub id")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{folder}: not a Micro-AU CLIP checkpoint (no config.json)")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise CheckpointError(f"{config_file}: not a readable JSON config") from None
    if model_type != MODEL_TYPE:
        raise CheckpointError(f"{folder}: not a Micro-AU CLIP checkpoint (config.json model_type is {model_type!r})")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        found = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".safetensors"))
        hint = f" (found {', '.join(found)}; pickled or stray weights are never loaded)" if found else ""
        raise CheckpointError(f"{folder}: no model.safetensors{hint}; save the model with save_pretrained")


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' loading bars and its missing-weights table are for the developer; our own error says it."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _looks_like_hub_id(text: str) -> bool:
    """``name`` or ``org/name``: what the Hub accepts as a model id (a path with more parts is a missing folder)."""
    return bool(text) and text.count("/") <= 1 and not text.startswith((".", "/", "~")) and "\\" not in text


def load_model(path: str | os.PathLike) -> MicroAUClipModel:
    """The model in a checkpoint folder or Hub id; :class:`CheckpointError` (one line) if it is not a complete one."""
    from safetensors import SafetensorError

    local = Path(path).expanduser()
    if local.exists():
        check_checkpoint_folder(local)
    elif not _looks_like_hub_id(str(path)):
        raise CheckpointError(f"{path}: no such checkpoint folder (and not a Hub id, which reads org/name)")
    source = str(local) if local.exists() else str(path)
    try:
        with _quiet_transformers():
            model, info = MicroAUClipModel.from_pretrained(source, output_loading_info=True)
    except (OSError, ValueError, KeyError, SafetensorError) as err:
        where = "" if local.exists() else " (no such folder, and not loadable as a Hub id)"
        problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: cannot load the model{where}: {problem}") from None
    missing = list(info.get("missing_keys") or [])
    if missing:
        total = len(model.state_dict())
        raise CheckpointError(f"{path}: the weights cover {total - len(missing)} of the model's {total} tensors; "
                              f"{len(missing)} missing (first: {missing[0]}); the checkpoint is incomplete")
    return model


def write_training_data(folder: str | os.PathLike, rows: Any) -> Path:
    """Record in ``folder`` what trained the checkpoint: ``rows`` (the training rows, a ``datasets.Dataset``), by the
    names in their ``dataset`` column (none recorded when the column is absent) and their count."""
    corpora = sorted({str(name) for name in rows["dataset"]}) if "dataset" in rows.column_names else []
    record = {"corpora": corpora, "num_samples": len(rows)}
    return atomic_write_text(Path(folder) / TRAINING_DATA_FILE, json.dumps(record, indent=2) + "\n")


def read_training_data(path: str | os.PathLike) -> dict | None:
    """The :data:`TRAINING_DATA_FILE` record of a checkpoint folder or Hub id; ``None`` when it has none (an older or
    hand-made checkpoint) or the record cannot be read."""
    local = Path(path).expanduser()
    try:
        if local.exists():
            text = (local / TRAINING_DATA_FILE).read_text()
        else:
            from huggingface_hub import hf_hub_download

            text = Path(hf_hub_download(str(path), TRAINING_DATA_FILE)).read_text()
        record = json.loads(text)
    except (OSError, ValueError):  # absent, not on the Hub or offline (OSError), not JSON (ValueError): it does not say
        return None
    return record if isinstance(record, dict) and isinstance(record.get("corpora"), list) else None


__all__ = ["CheckpointError", "MODEL_TYPE", "SYNTHETIC_CORPUS", "TRAINING_DATA_FILE", "check_checkpoint_folder",
           "load_model", "read_training_data", "write_training_data"]
