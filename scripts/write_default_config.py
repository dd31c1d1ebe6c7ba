"""Regenerate the AU data of the default config (`MicroAUClipConfig()`) from the AU catalogue.

The default config is remote code and cannot read `microau_hf/aus.py` or run the tokenizer, so it carries a generated
copy, `DEFAULT_AU_FIELDS` in `microau_hf/defaults_micro_au_clip.py`. Rerun this after changing the catalogue's entries
for the default AU set; tests/test_modeling.py fails until the copy matches.

    python scripts/write_default_config.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from microau_hf import defaults_micro_au_clip
from microau_hf.presets import au_set_fields

MARKER = "DEFAULT_AU_FIELDS = "


def python_literal(fields: dict[str, list[Any]]) -> str:
    """The fields as a Python dict literal: a list of numbers on one line, any other list one entry a line."""
    lines = ["{"]
    for name, values in fields.items():
        if not all(isinstance(value, (int, float)) for value in values):
            lines += [f"    {json.dumps(name)}: ["] + [f"        {json.dumps(value)}," for value in values] + ["    ],"]
        else:
            lines.append(f"    {json.dumps(name)}: {json.dumps(values)},")
    return "\n".join(lines + ["}"])


def main() -> None:
    path = Path(defaults_micro_au_clip.__file__)
    head = path.read_text().split(MARKER)[0]
    fields = au_set_fields(defaults_micro_au_clip.DEFAULT_AU_SET)
    path.write_text(head + MARKER + python_literal(fields) + "\n")
    print(f"wrote the {defaults_micro_au_clip.DEFAULT_AU_SET} AU fields ({len(fields['aus'])} AUs) to {path}")


if __name__ == "__main__":
    main()
