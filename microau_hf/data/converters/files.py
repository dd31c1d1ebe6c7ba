"""Finding a corpus's files and reading its annotation spreadsheet.

Users unpack corpora in different ways (an extra top folder, a renamed root), and copies of the same spreadsheet
differ in preamble rows and column order. So files are looked for a few folder levels deep, and the header row is
found by its column names rather than by its position; whatever is missing is named in a one-line error.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import openpyxl

from ..au_codes import cell_text

#: How many rows from the top of a sheet may precede the header (SAMM has 13).
HEADER_SEARCH_ROWS = 40


def find_file(root: Path, pattern: str | re.Pattern[str], *, depth: int = 2) -> Path:
    """The last (by name: coding files carry dates) file matching ``pattern`` (a glob, case-insensitive, or a
    compiled regular expression for names a glob cannot tell apart), near ``root``."""
    regex = pattern if isinstance(pattern, re.Pattern) else re.compile(_glob_to_regex(pattern), re.IGNORECASE)
    for level in _levels(root, depth):
        found = sorted(p for folder in level for p in _children(folder) if p.is_file() and regex.match(p.name))
        if found:
            return found[-1]
    shown = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
    raise ValueError(f"{root}: no annotation file {shown!r} found (looked {depth} folder levels deep)")


def find_dirs(root: Path, name: str | re.Pattern[str], *, holds: str | None = None, depth: int = 3) -> list[Path]:
    """Folders named ``name`` (case-insensitive), ``root`` included, at the shallowest level where any occurs.

    ``holds`` (a regular expression) keeps only folders with a sub-folder so named: a root that merely happens
    to be called ``samm`` is not taken for the ``SAMM`` frames folder.
    """
    regex = name if isinstance(name, re.Pattern) else re.compile(re.escape(name) + "$", re.IGNORECASE)
    child = re.compile(holds + "$", re.IGNORECASE) if holds else None
    for level in _levels(root, depth):
        found = [p for p in level if regex.match(p.name)]
        if child:
            found = [p for p in found if any(c.is_dir() and child.match(c.name) for c in _children(p))]
        if found:
            return found
    return []


def find_dir(root: Path, name: str, *, holds: str | None = None, depth: int = 3) -> Path:
    """The folder named ``name`` near ``root``, with an error that says what was looked for."""
    found = find_dirs(root, name, holds=holds, depth=depth)
    if not found:
        inside = f" holding {holds!r} folders" if holds else ""
        raise ValueError(f"{root}: folder {name!r}{inside} not found (looked {depth} folder levels deep)")
    return found[0]


def _levels(root: Path, depth: int) -> Iterator[list[Path]]:
    """Breadth-first folder levels below ``root`` (``root`` first), listed lazily so a shallow match stops early."""
    level = [Path(root)]
    for _ in range(depth + 1):
        yield level
        level = [p for folder in level for p in _children(folder) if p.is_dir()]


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _glob_to_regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$"


@dataclass(frozen=True)
class SheetRow:
    """One data row: ``number`` is the row number Excel shows; ``cells`` maps our field names to cell values."""

    number: int
    cells: dict[str, object]


@contextmanager
def open_workbook(path: Path) -> Iterator[openpyxl.Workbook]:
    """An .xlsx opened read-only and closed after use; a missing or damaged file is one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: annotation file not found")
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as err:
        # An .xlsx is a zip of XML parts: a renamed text file, a truncated download or an old .xls all fail here.
        problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a readable .xlsx workbook ({problem})") from None
    try:
        yield book
    finally:
        book.close()


#: A column's header text, or the spellings it has in different copies of a corpus's sheet (the first is named in
#: errors).
Header = str | tuple[str, ...]


def read_sheet(path: Path, sheet: str | None, columns: Mapping[str, Header],
               optional: Mapping[str, Header]) -> list[SheetRow]:
    """The non-empty rows under the header row; ``columns`` must all be there, ``optional`` ones read as None if not.
    ``sheet`` None reads the first sheet (corpora whose sheet name differs between copies)."""
    path = Path(path)
    with open_workbook(path) as book:
        names = {n.lower(): n for n in book.sheetnames}
        if sheet is None:
            sheet = book.sheetnames[0]
        if sheet.lower() not in names:
            raise ValueError(f"{path.name}: sheet {sheet!r} not found (sheets: {', '.join(book.sheetnames)})")
        rows = book[names[sheet.lower()]].iter_rows(values_only=True)
        header_number, positions = _find_header(path.name, sheet, rows, columns, optional)
        data = []
        for number, values in enumerate(rows, start=header_number + 1):
            if any(cell_text(v) for v in values):
                cells = {key: _at(values, positions.get(key)) for key in {**columns, **optional}}
                data.append(SheetRow(number, cells))
        return data


def _find_header(file: str, sheet: str, rows: Iterator[tuple], columns: Mapping[str, Header],
                 optional: Mapping[str, Header]) -> tuple[int, dict[str, int]]:
    """Consume rows up to the header; return its row number and each field's column position."""
    best: dict[str, int] = {}
    for number, values in enumerate(rows, start=1):
        seen = {_header_key(v): i for i, v in enumerate(values) if cell_text(v)}
        positions = {}
        for key, names in {**columns, **optional}.items():
            found = [seen[_header_key(name)] for name in _spellings(names) if _header_key(name) in seen]
            if found:
                positions[key] = found[0]
        if all(key in positions for key in columns):
            return number, positions
        if len(positions) > len(best):
            best = positions
        if number >= HEADER_SEARCH_ROWS:
            break
    missing = next(names for key, names in columns.items() if key not in best)
    also = f" (nor {' / '.join(map(repr, _spellings(missing)[1:]))})" if len(_spellings(missing)) > 1 else ""
    raise ValueError(f"{file}: column {_spellings(missing)[0]!r}{also} not found in sheet {sheet!r}")


def _spellings(names: Header) -> tuple[str, ...]:
    return (names,) if isinstance(names, str) else tuple(names)


def _header_key(value: object) -> str:
    """Header text compared without case, spaces or underscores: ``Onset Frame`` matches ``OnsetFrame``."""
    return re.sub(r"[\s_]+", "", cell_text(value)).lower()


def _at(values: tuple, position: int | None) -> object:
    return values[position] if position is not None and position < len(values) else None
