"""Corpus converters: CASME, CASME II, SAMM, MMEW, 4DME and CAS(ME)^3 (the six corpora of MEB's CD6ME) from the files a user holds under each corpus licence.

Each converter reads the corpus's own annotation spreadsheet and frame folders and writes a ``datasets`` folder in
the contract of :mod:`microau_hf.data.schema`, with ``conversion_report.json`` beside the data saying which rows
were repaired and which were refused. ``convert_corpus("casme2", root, out)`` is the one entry point scripts need.
The long-video corpora CAS(ME)^2 (``casme_sq``) and SAMM Long Videos (``samm_lv``) go through the same entry point
but write one row per long video for spotting (:mod:`microau_hf.data.spotting_schema`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import casme, casme2, casme3, casme_sq, fourdme, mmew, samm, samm_lv
from .common import REPORT_NAME, ConversionReport, RowNote

Converter = Callable[..., ConversionReport]

CONVERTERS: dict[str, Converter] = {
    "casme2": casme2.convert,
    "samm": samm.convert,
    "casme3": casme3.convert,
    "casme": casme.convert,
    "mmew": mmew.convert,
    "4dme": fourdme.convert,
}
#: Long-video corpora: they write the spotting contract of :mod:`microau_hf.data.spotting_schema` (one row per
#: video, frame paths and annotated intervals), not micro-expression samples, so they are kept apart.
SPOTTING_CONVERTERS: dict[str, Converter] = {
    "casme_sq": casme_sq.convert,
    "samm_lv": samm_lv.convert,
}


def convert_corpus(name: str, root: str | Path, out: str | Path, *, with_frames: bool = False, cropped: bool = False,
                   progress: bool = True, annotation: str | Path | None = None,
                   overwrite: bool = False) -> ConversionReport:
    """Convert the corpus ``name`` found under ``root`` into a dataset folder ``out`` (an earlier conversion there is
    replaced only with ``overwrite``; a folder holding anything else, never).

    ``with_frames`` also stores every frame of onset..offset; ``cropped`` uses the corpus's own aligned crops (CASME II
    only); ``annotation`` points at the spreadsheet when it is not where the corpus puts it.
    """
    converter = CONVERTERS.get(name) or SPOTTING_CONVERTERS.get(name)
    if converter is None:
        raise ValueError(f"unknown corpus {name!r}; converters exist for {sorted(CONVERTERS)} and, for long "
                         f"videos (spotting), {sorted(SPOTTING_CONVERTERS)}")
    return converter(root, out, with_frames=with_frames, cropped=cropped, progress=progress,
                     annotation=annotation, overwrite=overwrite)


__all__ = ["CONVERTERS", "REPORT_NAME", "SPOTTING_CONVERTERS", "ConversionReport", "RowNote", "convert_corpus"]
