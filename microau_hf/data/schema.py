"""The data contract: one ``datasets`` row per micro-expression sample, the same for every corpus.

Converters (CASME II, SAMM, CAS(ME)^3) and the synthetic corpus all write these features, so training and evaluation
never branch on where a sample came from.
"""

from __future__ import annotations

import os
from pathlib import Path

from datasets import Dataset, Features, Image, List, Value

#: Corpus names as they appear in the ``dataset`` column.
CORPUS_NAMES = ("casme", "casme2", "samm", "4dme", "mmew", "casme3", "synthetic")


def sample_features(with_frames: bool = False) -> Features:
    """The features of a converted corpus; ``with_frames`` adds the whole onset..offset span as ``frames``."""
    columns = {
        "dataset": Value("string"),
        "subject": Value("string"),  # normalised: "01" for CASME II sub01, "006" for SAMM, "spNO.1" for CAS(ME)^3
        "sample_id": Value("string"),  # unique within the corpus: "{subject}/{filename}[#n]"
        "onset_frame": Value("int32"),
        "apex_frame": Value("int32"),
        "offset_frame": Value("int32"),
        "apex_estimated": Value("bool"),  # True where the corpus gave no apex and we took the middle of onset..offset
        "onset": Image(),
        "apex": Image(),
        "aus": List(Value("int32")),  # sorted AU numbers
        "au_raw": Value("string"),  # the code exactly as the corpus wrote it
        "laterality": List(Value("string")),  # per AU in `aus`: "L", "R", "A" (asymmetric) or "" (bilateral/unknown)
        "intensity": List(Value("string")),  # per AU in `aus`: "A".."E" or "" (not coded)
        "emotion": Value("string"),  # the corpus's estimated emotion, lower case, normalised spelling
        "objective_class": Value("int32"),  # Davison et al. class 1..7, null where the corpus gives none
    }
    if with_frames:
        columns["frames"] = List(Image())
    return Features(columns)


REQUIRED_COLUMNS = ("subject", "sample_id", "onset", "apex", "aus")


def load_dataset_folder(path: str | os.PathLike) -> Dataset:
    """A dataset saved with ``save_to_disk`` (a converted or synthetic corpus); ``ValueError`` naming the folder when
    it is missing, not a dataset, or damaged."""
    from datasets import load_from_disk

    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such dataset folder (make one with `microau convert` or `microau synth`)")
    try:
        dataset = load_from_disk(str(folder))
    except FileNotFoundError:
        raise ValueError(f"{folder}: not a saved dataset (no dataset_info.json/state.json); make one with "
                         f"`microau convert` or `microau synth`") from None
    except (OSError, ValueError, KeyError) as err:  # pyarrow's ArrowInvalid is a ValueError
        problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{folder}: the dataset is damaged or unreadable ({problem})") from None
    if not isinstance(dataset, Dataset):
        raise ValueError(f"{folder}: holds a DatasetDict ({', '.join(dataset)}); give one split's folder")
    return dataset
