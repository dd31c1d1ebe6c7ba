"""Loading a Micro-AU CLIP checkpoint the safe way: safetensors only, and only when its tensors cover the model.

    model = load_model("outputs/quickstart/checkpoint")     # a folder (save_pretrained) or a Hub id

Every command that loads weights (predict, the pipeline, the Space, push, training from a checkpoint) goes through
here, so a bad checkpoint gives the same one-line :class:`CheckpointError` everywhere: not a folder, no config, another
model type, no ``model.safetensors`` (a ``pytorch_model.bin`` pickle is never read), a weights file that is not
readable safetensors (empty, cut short, garbage), weights that leave some of the model's tensors uninitialised, a
tensor of another shape than the config describes, a tensor holding NaN or Inf, or a config whose AU list is not the
one the weights were trained on. ``save_pretrained`` records that list in the weights' own metadata
(:data:`~microau_hf.modeling_micro_au_clip.AUS_METADATA_KEY`); a checkpoint saved before it did still loads, unchecked
on that point.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write_text
from .errors import first_line
from .modeling_micro_au_clip import AUS_METADATA_KEY, MicroAUClipModel

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
        if (folder / WEIGHT_FILES[0]).exists():
            raise CheckpointError(f"{folder / WEIGHT_FILES[0]}: not a file; save the model with save_pretrained")
        found = sorted(p.name for p in folder.iterdir()
                       if p.is_file() and p.suffix in (".bin", ".pt", ".pth", ".safetensors"))
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


def load_model(path: str | os.PathLike, **hub_options: Any) -> MicroAUClipModel:
    """The model in a checkpoint folder or Hub id; :class:`CheckpointError` (one line naming the file) unless its
    weights are readable, complete, finite, of the model's shapes and trained on the AUs its config lists.

    ``hub_options`` (``revision``, ``token``, ``cache_dir``, ``local_files_only``) go to the Hub download."""
    local = Path(path).expanduser()
    if local.exists():
        check_checkpoint_folder(local)
    elif not _looks_like_hub_id(str(path)):
        raise CheckpointError(f"{path}: no such checkpoint folder (and not a Hub id, which reads org/name)")
    # A local file is read before transformers sees it, so a damaged one is named; a Hub file once downloaded.
    weights = read_weights_record(local) if local.exists() else None
    model, info = _from_pretrained(path, local, hub_options)
    weights = weights or read_weights_record(str(path), hub_options)
    _check_loaded(model, info, weights, path)
    return model


def _from_pretrained(path: str | os.PathLike, local: Path, hub_options: dict) -> tuple[MicroAUClipModel, dict]:
    from safetensors import SafetensorError

    source = str(local) if local.exists() else str(path)
    try:
        with _quiet_transformers():
            # Mismatched shapes are reported in the loading info (and refused by _check_loaded) rather than raised as
            # transformers' RuntimeError, whose text points at a table in the log.
            return MicroAUClipModel.from_pretrained(source, output_loading_info=True, ignore_mismatched_sizes=True,
                                                    **hub_options)
    except (OSError, ValueError, KeyError, SafetensorError) as err:
        where = "" if local.exists() else " (no such folder, and not loadable as a Hub id)"
        raise CheckpointError(f"{path}: cannot load the model{where}: {first_line(err)}") from None


def _check_loaded(model: MicroAUClipModel, info: dict, weights: WeightsRecord, path: str | os.PathLike) -> None:
    """Refuse weights that leave tensors uninitialised, were trained on other AUs than the config lists, do not fit
    the model's shapes or hold NaN or Inf: each would give confident answers from a broken model."""
    _refuse_missing(model, sorted(info.get("missing_keys") or []), path)
    _refuse_other_aus([int(au) for au in model.config.aus], weights)
    _refuse_other_shapes(sorted(info.get("mismatched_keys") or []), weights)
    _refuse_non_finite(model, weights)


def _refuse_missing(model: MicroAUClipModel, missing: list[str], path: str | os.PathLike) -> None:
    if missing:
        total = len(model.state_dict())
        raise CheckpointError(f"{path}: the weights cover {total - len(missing)} of the model's {total} tensors; "
                              f"{len(missing)} missing (first: {missing[0]}); the checkpoint is incomplete")


def _refuse_other_aus(listed: list[int], weights: WeightsRecord) -> None:
    # Checked before the shapes: a config listing another number of AUs also changes shapes, and this says why.
    if weights.aus is not None and weights.aus != listed:
        raise CheckpointError(f"{weights.config_file}: lists AUs {_aus_text(listed)} but the weights were trained on "
                              f"AUs {_aus_text(weights.aus)} (recorded in {weights.names[0]}); use the "
                              f"config.json saved with these weights")


def _refuse_other_shapes(mismatched: list[tuple], weights: WeightsRecord) -> None:
    if mismatched:
        name, saved, wanted = mismatched[0]
        raise CheckpointError(f"{weights.file_of(name)}: tensor {name} has shape {tuple(saved)} where the model its "
                              f"config.json describes has {tuple(wanted)} ({len(mismatched)} tensor(s) of another "
                              f"shape); the weights and the config do not belong together")


def _refuse_non_finite(model: MicroAUClipModel, weights: WeightsRecord) -> None:
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            kind = "NaN" if bool(torch.isnan(tensor).any()) else "Inf"
            count = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"{weights.file_of(name)}: tensor {name} holds {count} {kind} value(s); the weights "
                                  f"are broken (a diverged or damaged training run)")


def _aus_text(aus: list[int]) -> str:
    return ", ".join(str(au) for au in aus)


@dataclass
class WeightsRecord:
    """What a checkpoint's weight files say about themselves, read from their headers (no tensor decoded)."""

    source: str  # the folder or Hub id, as messages name it (never the Hub cache's path)
    names: list[str]  # the safetensors files: model.safetensors, or the shards its index names
    shard_of: dict[str, str]  # tensor name -> shard file name (empty for one file)
    aus: list[int] | None  # the AU list saved with the weights; None: saved before it was recorded

    @property
    def config_file(self) -> str:
        return f"{self.source}/config.json"

    def file_of(self, tensor: str) -> str:
        """The file holding ``tensor``, as messages name it."""
        return f"{self.source}/{self.shard_of.get(tensor, self.names[0])}"


def read_weights_record(source: str | os.PathLike, hub_options: dict | None = None) -> WeightsRecord:
    """The headers of a checkpoint's safetensors files (a local folder, or a Hub id whose files were downloaded);
    :class:`CheckpointError` naming a file that is not a readable safetensors file."""
    index_path = _resolve(source, WEIGHT_FILES[1], hub_options)
    shard_of: dict[str, str] = {}
    if index_path is not None:
        try:
            shard_of = json.loads(index_path.read_text())["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"{source}/{WEIGHT_FILES[1]}: not a readable weights index ({first_line(err)})") \
                from None
    names = sorted(set(shard_of.values())) if index_path is not None else [WEIGHT_FILES[0]]
    recorded = [_read_aus(_resolve(source, name, hub_options), f"{source}/{name}") for name in names]
    return WeightsRecord(str(source), names, shard_of, recorded[0])


def _resolve(source: str | os.PathLike, name: str, hub_options: dict | None) -> Path | None:
    """``name`` in a local folder, or in the local copy of a Hub repository; ``None`` when it has none."""
    local = Path(source)
    if local.exists():
        return local / name if (local / name).is_file() else None
    from transformers.utils import cached_file

    found = cached_file(str(source), name, _raise_exceptions_for_missing_entries=False, **(hub_options or {}))
    return Path(found) if found else None


def _read_aus(path: Path | None, shown: str) -> list[int] | None:
    """The AU list in a safetensors file's metadata (``None`` when it has none); :class:`CheckpointError` naming the
    file (``shown``) when it is absent or its header cannot be read (empty, cut short, not safetensors)."""
    from safetensors import SafetensorError, safe_open

    if path is None:
        raise CheckpointError(f"{shown}: no such file (the weights index names it)")
    try:
        with safe_open(str(path), framework="pt") as weights:
            metadata = weights.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{shown}: not a readable safetensors file ({first_line(err)})") from None
    if AUS_METADATA_KEY not in metadata:
        return None
    try:
        return [int(au) for au in json.loads(metadata[AUS_METADATA_KEY])]
    except (ValueError, TypeError):
        raise CheckpointError(f"{shown}: its AU list ({AUS_METADATA_KEY}) is not a list of AU numbers") from None


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


__all__ = ["CheckpointError", "MODEL_TYPE", "SYNTHETIC_CORPUS", "TRAINING_DATA_FILE", "WeightsRecord",
           "check_checkpoint_folder", "load_model", "read_training_data", "read_weights_record", "write_training_data"]
