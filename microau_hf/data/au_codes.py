"""Read the AU codes micro-expression corpora write by hand, and say what could not be read.

The coding columns of CASME II, SAMM and CAS(ME)^3 were typed by FACS coders, not generated, so one parser has to
accept every notation they used, and must never lose a fragment quietly: a label that silently drops an AU teaches
the model that the AU was absent. The grammar, loosest binding first:

* ``+`` (also ``,`` and ``;``) joins codes: ``4+7``, ``1+2+4``.
* ``or`` and ``/`` separate alternatives, and bind tighter than ``+``: ``4+R12 or R14`` is ``4 + (R12 or R14)``.
  Parentheses group: ``(R6 or R12)+R15``.
* ``ref(...)`` wraps an ordinary code: ``ref(7B)`` is read as ``7B``.
* A code is ``[AU][prefix]<number>[intensity]`` with spaces allowed anywhere inside (``R 12``, ``12 C``):

  - prefix ``L``/``R`` (unilateral, the subject's side) or ``A`` (asymmetric) is the *laterality*;
  - prefix ``T``/``B`` (top/bottom, e.g. ``T23``, ``B18``: top or bottom lip) is the *part*; both may appear (``BL12``);
  - a trailing letter ``A``..``E`` is the FACS *intensity*: ``A1B`` is AU1, asymmetric, intensity B.

* ``none``, ``-``, ``/`` and an empty cell mean no AU. Numeric cells (Excel stores ``4`` as ``4`` or ``4.0``) are
  read as the integer they show.

Policy for what the notation leaves open (each case is recorded in :attr:`ParsedAUs.resolved`):

* **alternatives** (``R12 or R14``, ``12/14``): the first alternative is kept, the others are recorded as dropped.
  One rule everywhere, so a reader can predict the label from the code;
* **intensity alternatives** (``10A/B``): AU10 is kept with the first intensity, ``A``;
* **laterality alternatives** (``A/L12``): AU12 is kept with the first laterality, ``A``;
* **space-separated codes** (``4 7``): read as ``4+7``;
* **a repeated AU** (``L12+R12``, ``4+4``): the AU is kept once; left plus right become bilateral (``""``), any other
  disagreement keeps the first occurrence;
* **codes outside the catalogue** (38, 43, 61: nostril, eye and head codes) are kept in ``aus``; they are listed by
  :attr:`ParsedAUs.not_in_catalogue` so that label building can ignore them knowingly;
* **anything else** (``soft focus``, ``?``, ``12?``, unbalanced parentheses, AU ``0``) goes to
  :attr:`ParsedAUs.unreadable`, fragment by fragment, and the rest of the cell is still read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..aus import CATALOGUE

#: Cell contents that mean "no AU coded".
EMPTY_CODES = frozenset({"", "none", "-", "/", "n/a", "na", "nan"})

_CODE = re.compile(
    r"^(?:AU\s*)?(?P<prefix>(?:[TBLRA]\s*){0,2})(?P<number>\d{1,2})\s*(?P<intensity>[A-E])?$",
    re.IGNORECASE,
)
_PLUS = re.compile(r"\s*[+,;]\s*")
_ALTERNATIVE = re.compile(r"\s*(?:(?<![a-z])or(?![a-z])|/)\s*", re.IGNORECASE)
_REF = re.compile(r"^ref\s*\((?P<inner>.*)\)$", re.IGNORECASE | re.DOTALL)
_LETTER = re.compile(r"^[A-E]$", re.IGNORECASE)
_SIDE = re.compile(r"^[LRA]$", re.IGNORECASE)


@dataclass(frozen=True)
class Code:
    """One AU as written: number plus the optional laterality, part (top/bottom) and intensity letters."""

    number: int
    laterality: str = ""  # "L", "R", "A" or ""
    part: str = ""  # "T", "B" or ""
    intensity: str = ""  # "A".."E" or ""

    def __str__(self) -> str:
        return f"{self.part}{self.laterality}{self.number}{self.intensity}"


@dataclass(frozen=True)
class Resolution:
    """A choice the parser made where the code was ambiguous, so that converters can report it."""

    kind: str  # "alternative", "intensity", "laterality", "reference", "spacing" or "duplicate"
    written: str
    kept: str
    dropped: tuple[str, ...] = ()

    def describe(self) -> str:
        dropped = f", dropped {' / '.join(self.dropped)}" if self.dropped else ""
        return f"{self.kind}: {self.written!r} read as {self.kept}{dropped}"


@dataclass(frozen=True)
class ParsedAUs:
    """An AU cell, read. The per-AU tuples are aligned with ``aus``."""

    raw: str
    aus: tuple[int, ...] = ()
    laterality: tuple[str, ...] = ()
    intensity: tuple[str, ...] = ()
    part: tuple[str, ...] = ()
    resolved: tuple[Resolution, ...] = ()
    unreadable: tuple[str, ...] = ()

    @property
    def not_in_catalogue(self) -> tuple[int, ...]:
        """AUs that were read but that the model does not know (head and eye codes, rare AUs)."""
        return tuple(au for au in self.aus if au not in CATALOGUE)

    @property
    def code(self) -> str:
        """The canonical spelling of what was read, e.g. ``R12+15C``; empty when no AU was read."""
        per_au = zip(self.part, self.laterality, self.aus, self.intensity)
        return "+".join(f"{part}{side}{au}{grade}" for part, side, au, grade in per_au)


def cell_text(cell: object) -> str:
    """A spreadsheet cell as the coder sees it: ``4.0`` stored by Excel is ``"4"``, an empty cell is ``""``."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def parse_au_code(cell: object) -> ParsedAUs:
    """Parse one AU cell (text or number) into sorted AUs, their laterality and intensity, and what was unclear."""
    raw = cell_text(cell)
    reader = _Reader()
    if raw.lower() not in EMPTY_CODES:
        reader.read_sum(raw)
    return reader.result(raw)


class _Reader:
    """Walks one cell; collects codes, resolutions and unreadable fragments as it goes."""

    def __init__(self) -> None:
        self.codes: dict[int, Code] = {}
        self.resolved: list[Resolution] = []
        self.unreadable: list[str] = []

    def read_sum(self, text: str) -> None:
        parts = _split_top_level(text, _PLUS)
        if parts is None:
            self.unreadable.append(text.strip())
            return
        for part in parts:
            if part:
                self.read_term(part)

    def read_term(self, text: str) -> None:
        ref = _REF.match(text)
        if ref:
            self.resolved.append(Resolution("reference", text, ref["inner"].strip()))
            self.read_sum(ref["inner"])
        elif text.startswith("(") and _closing_paren(text) == len(text) - 1:
            self.read_sum(text[1:-1])
        else:
            alternatives = _split_top_level(text, _ALTERNATIVE)
            if alternatives is None:
                self.unreadable.append(text)
            elif len(alternatives) > 1:
                self.read_alternatives(text, alternatives)
            else:
                self.read_code(text)

    def read_alternatives(self, text: str, pieces: list[str]) -> None:
        first = _code(pieces[0])
        if first and first.intensity and all(_LETTER.match(p) for p in pieces[1:]):  # 10A/B
            dropped = tuple(str(Code(first.number, first.laterality, first.part, p.upper())) for p in pieces[1:])
            self.add(first, Resolution("intensity", text, str(first), dropped))
            return
        last = _code(pieces[-1])
        if last and all(_SIDE.match(p) for p in pieces[:-1]):  # A/L12
            sides = [p.upper() for p in pieces[:-1]] + [last.laterality]
            variants = [Code(last.number, side, last.part, last.intensity) for side in sides]
            self.add(variants[0], Resolution("laterality", text, str(variants[0]), tuple(map(str, variants[1:]))))
            return
        self.resolved.append(Resolution("alternative", text, pieces[0], tuple(pieces[1:])))
        self.read_term(pieces[0])

    def read_code(self, text: str) -> None:
        code = _code(text)
        if code:
            self.add(code)
            return
        words = text.split()
        codes = [_code(word) for word in words]
        if len(words) > 1 and all(codes):
            self.resolved.append(Resolution("spacing", text, "+".join(map(str, codes))))
            for one in codes:
                self.add(one)  # type: ignore[arg-type]
        else:
            self.unreadable.append(text)

    def add(self, code: Code, resolution: Resolution | None = None) -> None:
        if resolution:
            self.resolved.append(resolution)
        seen = self.codes.get(code.number)
        if seen is None:
            self.codes[code.number] = code
            return
        merged = seen
        if {seen.laterality, code.laterality} == {"L", "R"}:
            merged = Code(seen.number, "", seen.part, seen.intensity or code.intensity)
        self.codes[code.number] = merged
        self.resolved.append(Resolution("duplicate", f"{seen}+{code}", str(merged)))

    def result(self, raw: str) -> ParsedAUs:
        codes = [self.codes[number] for number in sorted(self.codes)]
        return ParsedAUs(
            raw=raw,
            aus=tuple(c.number for c in codes),
            laterality=tuple(c.laterality for c in codes),
            intensity=tuple(c.intensity for c in codes),
            part=tuple(c.part for c in codes),
            resolved=tuple(self.resolved),
            unreadable=tuple(self.unreadable),
        )


def _code(text: str) -> Code | None:
    """One code, or None when ``text`` is not exactly one code."""
    match = _CODE.match(text.strip())
    if not match or int(match["number"]) == 0:
        return None
    letters = re.sub(r"\s", "", match["prefix"]).upper()
    sides = [c for c in letters if c in "LRA"]
    parts = [c for c in letters if c in "TB"]
    if len(sides) > 1 or len(parts) > 1:
        return None
    intensity = (match["intensity"] or "").upper()
    return Code(int(match["number"]), "".join(sides), "".join(parts), intensity)


def _split_top_level(text: str, separator: re.Pattern[str]) -> list[str] | None:
    """Split at separators outside parentheses; None when the parentheses do not balance."""
    pieces, depth, start, i = [], 0, 0, 0
    while i < len(text):
        char = text[i]
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return None
        match = separator.match(text, i) if depth == 0 else None
        if match and match.end() > i:
            pieces.append(text[start:i].strip())
            start = i = match.end()
            continue
        i += 1
    if depth != 0:
        return None
    pieces.append(text[start:].strip())
    return pieces


def _closing_paren(text: str) -> int:
    """Index of the parenthesis closing the one at ``text[0]``; -1 when it never closes."""
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return i
    return -1


__all__ = ["Code", "EMPTY_CODES", "ParsedAUs", "Resolution", "cell_text", "parse_au_code"]
