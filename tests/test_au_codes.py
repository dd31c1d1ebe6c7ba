"""The AU-code parser against the notations the corpora's annotation files use."""

from __future__ import annotations

import pytest

from microau_hf.data.au_codes import cell_text, parse_au_code

# code as written -> (aus, laterality, intensity, kinds of resolution recorded, unreadable fragments)
CASES = [
    # plain and +-joined
    ("4", (4,), ("",), ("",), (), ()),
    ("4+7", (4, 7), ("", ""), ("", ""), (), ()),
    ("1+2+4", (1, 2, 4), ("", "", ""), ("", "", ""), (), ()),
    ("25+12+6", (6, 12, 25), ("", "", ""), ("", "", ""), (), ()),
    # laterality prefixes and intensity suffixes
    ("L12", (12,), ("L",), ("",), (), ()),
    ("R14A", (14,), ("R",), ("A",), (), ()),
    ("A1B+A2C", (1, 2), ("A", "A"), ("B", "C"), (), ()),
    ("L12+R14A", (12, 14), ("L", "R"), ("", "A"), (), ()),
    ("R12A+R14A", (12, 14), ("R", "R"), ("A", "A"), (), ()),
    ("7B", (7,), ("",), ("B",), (), ()),
    ("12C", (12,), ("",), ("C",), (), ()),
    ("4+7E", (4, 7), ("", ""), ("", "E"), (), ()),
    ("r12", (12,), ("R",), ("",), (), ()),
    ("12c", (12,), ("",), ("C",), (), ()),
    ("AU12", (12,), ("",), ("",), (), ()),
    ("AU 1 + AU 2", (1, 2), ("", ""), ("", ""), (), ()),
    # top / bottom
    ("T23", (23,), ("",), ("",), (), ()),
    ("B18+25", (18, 25), ("", ""), ("", ""), (), ()),
    ("B18B", (18,), ("",), ("B",), (), ()),
    # ref(...)
    ("ref(7B)", (7,), ("",), ("B",), ("reference",), ()),
    ("1+2+ref(7B)", (1, 2, 7), ("", "", ""), ("", "", "B"), ("reference",), ()),
    # alternatives: the first is kept
    ("R12 or R14", (12,), ("R",), ("",), ("alternative",), ()),
    ("(R6 or R12)+R15", (6, 15), ("R", "R"), ("", ""), ("alternative",), ()),
    ("4+R12 or R14", (4, 12), ("", "R"), ("", ""), ("alternative",), ()),
    ("12/14", (12,), ("",), ("",), ("alternative",), ()),
    ("R6or R12", (6,), ("R",), ("",), ("alternative",), ()),
    ("10A/B", (10,), ("",), ("A",), ("intensity",), ()),
    ("R12A/B", (12,), ("R",), ("A",), ("intensity",), ()),
    ("A/L12", (12,), ("A",), ("",), ("laterality",), ()),
    # stray spaces
    (" 4 + 7 ", (4, 7), ("", ""), ("", ""), (), ()),
    ("R 12", (12,), ("R",), ("",), (), ()),
    ("12 C", (12,), ("",), ("C",), (), ()),
    ("4 7", (4, 7), ("", ""), ("", ""), ("spacing",), ()),
    ("4,7", (4, 7), ("", ""), ("", ""), (), ()),
    ("4++7+", (4, 7), ("", ""), ("", ""), (), ()),
    # none / empty
    ("none", (), (), (), (), ()),
    ("None", (), (), (), (), ()),
    ("", (), (), (), (), ()),
    ("-", (), (), (), (), ()),
    (None, (), (), (), (), ()),
    # numeric cells as Excel stores them
    (4, (4,), ("",), ("",), (), ()),
    (4.0, (4,), ("",), ("",), (), ()),
    (12.0, (12,), ("",), ("",), (), ()),
    # head and eye codes: kept
    ("4+7+43", (4, 7, 43), ("", "", ""), ("", "", ""), (), ()),
    ("38", (38,), ("",), ("",), (), ()),
    ("61+12", (12, 61), ("", ""), ("", ""), (), ()),
    # a repeated AU
    ("L12+R12", (12,), ("",), ("",), ("duplicate",), ()),
    ("4+4B", (4,), ("",), ("",), ("duplicate",), ()),
    # free text and broken codes: reported, the rest still read
    ("soft focus", (), (), (), (), ("soft focus",)),
    ("?", (), (), (), (), ("?",)),
    ("4+soft focus", (4,), ("",), ("",), (), ("soft focus",)),
    ("12?", (), (), (), (), ("12?",)),
    ("(4+7", (), (), (), (), ("(4+7",)),
    ("0", (), (), (), (), ("0",)),
    ("4+12F", (4,), ("",), ("",), (), ("12F",)),
    ("LR12", (), (), (), (), ("LR12",)),
    (1.5, (), (), (), (), ("1.5",)),
]


@pytest.mark.parametrize(("code", "aus", "laterality", "intensity", "kinds", "unreadable"), CASES,
                         ids=[repr(case[0]) for case in CASES])
def test_parse(code, aus, laterality, intensity, kinds, unreadable):
    parsed = parse_au_code(code)
    assert parsed.aus == aus
    assert parsed.laterality == laterality
    assert parsed.intensity == intensity
    assert tuple(r.kind for r in parsed.resolved) == kinds
    assert parsed.unreadable == unreadable


def test_alternatives_record_what_was_dropped():
    (resolution,) = parse_au_code("(R6 or R12)+R15").resolved
    assert (resolution.kept, resolution.dropped) == ("R6", ("R12",))
    assert "R12" in resolution.describe()
    (intensity,) = parse_au_code("10A/B").resolved
    assert (intensity.kept, intensity.dropped) == ("10A", ("10B",))
    (side,) = parse_au_code("A/L12").resolved
    assert (side.kept, side.dropped) == ("A12", ("L12",))


def test_part_is_kept_apart_from_laterality():
    parsed = parse_au_code("T23+B18+BL12")
    assert parsed.aus == (12, 18, 23)
    assert parsed.part == ("B", "B", "T")
    assert parsed.laterality == ("L", "", "")


def test_codes_outside_the_catalogue_are_listed():
    assert parse_au_code("4+7+43+61").not_in_catalogue == (43, 61)
    assert parse_au_code("1+2").not_in_catalogue == ()


def test_raw_and_canonical_spelling():
    parsed = parse_au_code(" r12 + 15c ")
    assert parsed.raw == "r12 + 15c"
    assert parsed.code == "R12+15C"
    assert parse_au_code(4.0).raw == "4"


@pytest.mark.parametrize(("cell", "text"), [(None, ""), (4.0, "4"), (4, "4"), (" L12 ", "L12"), (2.5, "2.5")])
def test_cell_text(cell, text):
    assert cell_text(cell) == text
