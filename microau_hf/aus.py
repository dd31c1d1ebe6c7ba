"""The action-unit catalogue: FACS names, muscles, facial regions, prompts and emotion prototypes.

Everything the rest of the package knows about an AU comes from here. Regions are written once, against *semantic
landmarks* (``brow_inner_left``, ``mouth_corner_right`` ...), so that any landmark backend (MediaPipe's 478-point mesh,
dlib's 68 points) can place them by mapping its own indices to these names, and so that the canonical template boxes
used for pre-aligned crops come from the same definition applied to :data:`CANONICAL_LANDMARKS`.

Conventions:

* "left"/"right" in landmark names are the sides of the *image* (a non-mirrored camera sees the subject's right side on
  the image's left). FACS laterality codes (``L12``) keep the subject's side; the data parser records them as given.
* Coordinates are normalised to the aligned face crop: ``(x, y)`` in ``[0, 1]``, ``y`` growing downwards.
* Region pads are in units of the interocular distance (IOD, the distance between the eye centres), so that a region
  keeps its size relative to the face whatever the crop resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

# ----------------------------------------------------------------------------------------------------------------
# The canonical face: where each semantic landmark sits in an aligned crop. Alignment maps a detected face's eye
# centres, nose tip and mouth corners onto these positions with a similarity transform. Brows and chin are where
# MediaPipe's mesh puts them on average after that alignment (measured on the 12 offline faces of the synthetic
# corpus), so that template boxes sit where landmark-based boxes would.
# ----------------------------------------------------------------------------------------------------------------

CANONICAL_LANDMARKS: dict[str, tuple[float, float]] = {
    "brow_outer_left": (0.22, 0.335),
    "brow_mid_left": (0.32, 0.305),
    "brow_inner_left": (0.43, 0.33),
    "brow_inner_right": (0.57, 0.33),
    "brow_mid_right": (0.68, 0.305),
    "brow_outer_right": (0.78, 0.335),
    "glabella": (0.50, 0.34),
    "eye_outer_left": (0.265, 0.40),
    "eye_top_left": (0.35, 0.38),
    "eye_inner_left": (0.435, 0.40),
    "eye_bottom_left": (0.35, 0.42),
    "eye_center_left": (0.35, 0.40),
    "eye_inner_right": (0.565, 0.40),
    "eye_top_right": (0.65, 0.38),
    "eye_outer_right": (0.735, 0.40),
    "eye_bottom_right": (0.65, 0.42),
    "eye_center_right": (0.65, 0.40),
    "nose_bridge": (0.50, 0.42),
    "nose_tip": (0.50, 0.575),
    "nose_wing_left": (0.445, 0.60),
    "nose_wing_right": (0.555, 0.60),
    "cheek_left": (0.29, 0.56),
    "cheek_right": (0.71, 0.56),
    "mouth_corner_left": (0.395, 0.725),
    "lip_top": (0.50, 0.69),
    "mouth_corner_right": (0.605, 0.725),
    "lip_bottom": (0.50, 0.775),
    "chin": (0.50, 0.94),
}

#: The five points alignment uses, in this order.
ALIGNMENT_LANDMARKS: tuple[str, ...] = (
    "eye_center_left",
    "eye_center_right",
    "nose_tip",
    "mouth_corner_left",
    "mouth_corner_right",
)

Point = tuple[float, float]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(frozen=True)
class RegionBox:
    """One box of an AU region: the bounding box of some landmarks, grown by pads (in IOD units).

    ``pad`` is ``(left, top, right, bottom)`` on the image.
    """

    anchors: tuple[str, ...]
    pad: tuple[float, float, float, float]

    def place(self, landmarks: dict[str, Point], interocular: float) -> Box:
        """The box in the coordinates of ``landmarks``."""
        xs = [landmarks[name][0] for name in self.anchors]
        ys = [landmarks[name][1] for name in self.anchors]
        left, top, right, bottom = (p * interocular for p in self.pad)
        return (min(xs) - left, min(ys) - top, max(xs) + right, max(ys) + bottom)


def _both_sides(anchors: tuple[str, ...], outer: float, top: float, inner: float, bottom: float) -> tuple[RegionBox, ...]:
    """A pair of mirrored boxes; ``anchors`` use ``{side}``, pads are given as outer/inner so they mirror."""
    left = RegionBox(tuple(a.format(side="left") for a in anchors), (outer, top, inner, bottom))
    right = RegionBox(tuple(a.format(side="right") for a in anchors), (inner, top, outer, bottom))
    return (left, right)


def _centre(anchors: tuple[str, ...], side: float, top: float, bottom: float) -> tuple[RegionBox, ...]:
    return (RegionBox(anchors, (side, top, side, bottom)),)


@dataclass(frozen=True)
class ActionUnit:
    """One FACS action unit as the model and the face pipeline use it."""

    number: int
    name: str
    muscles: str
    region: tuple[RegionBox, ...]
    present_prompt: str
    absent_prompt: str

    @property
    def label(self) -> str:
        return f"AU{self.number}"

    @cached_property
    def template_boxes(self) -> tuple[Box, ...]:
        """The region on the canonical face, clipped to the crop: the fallback for crops without landmarks."""
        interocular = _canonical_interocular()
        boxes = (box.place(CANONICAL_LANDMARKS, interocular) for box in self.region)
        return tuple(tuple(min(max(v, 0.0), 1.0) for v in box) for box in boxes)  # type: ignore[misc]

    @property
    def emotions(self) -> tuple[str, ...]:
        """The EMFACS emotions with a prototype that contains this AU."""
        return tuple(e for e, protos in EMOTION_PROTOTYPES.items() if any(self.number in p for p in protos))

    @property
    def objective_classes(self) -> tuple[int, ...]:
        """The Davison et al. (2018) objective classes with a combination that contains this AU."""
        return tuple(c for c, combos in OBJECTIVE_CLASSES.items() if any(self.number in p for p in combos))


def _canonical_interocular() -> float:
    (lx, ly), (rx, ry) = CANONICAL_LANDMARKS["eye_center_left"], CANONICAL_LANDMARKS["eye_center_right"]
    return ((rx - lx) ** 2 + (ry - ly) ** 2) ** 0.5


# ----------------------------------------------------------------------------------------------------------------
# The catalogue. Prompts describe the *slight* change a micro-expression shows, and the absent prompt names the same
# place at rest, so that the only difference the text encoder sees between the two is the movement.
# ----------------------------------------------------------------------------------------------------------------

_AUS: tuple[ActionUnit, ...] = (
    ActionUnit(
        1, "Inner brow raiser", "frontalis, pars medialis",
        _both_sides(("brow_inner_{side}",), outer=0.18, top=0.35, inner=0.08, bottom=0.10),
        "a face whose inner brows are slightly raised",
        "a face whose inner brows are relaxed and level",
    ),
    ActionUnit(
        2, "Outer brow raiser", "frontalis, pars lateralis",
        _both_sides(("brow_outer_{side}", "brow_mid_{side}"), outer=0.08, top=0.35, inner=0.02, bottom=0.10),
        "a face whose outer brows are slightly raised",
        "a face whose outer brows are relaxed and level",
    ),
    ActionUnit(
        4, "Brow lowerer", "corrugator supercilii, depressor supercilii, procerus",
        _centre(("brow_inner_left", "brow_inner_right", "glabella"), side=0.15, top=0.15, bottom=0.15),
        "a face whose brows are slightly lowered and drawn together",
        "a face with a smooth, relaxed space between the brows",
    ),
    ActionUnit(
        5, "Upper lid raiser", "levator palpebrae superioris",
        _both_sides(("eye_outer_{side}", "eye_inner_{side}", "eye_top_{side}"), outer=0.03, top=0.08, inner=0.03, bottom=0.0),
        "a face whose upper eyelids are slightly raised, widening the eyes",
        "a face whose upper eyelids rest in their usual place",
    ),
    ActionUnit(
        6, "Cheek raiser", "orbicularis oculi, pars orbitalis",
        _both_sides(("eye_outer_{side}", "cheek_{side}"), outer=0.10, top=0.0, inner=0.10, bottom=0.05),
        "a face whose cheeks are slightly raised, narrowing the eyes from below",
        "a face whose cheeks are relaxed below the eyes",
    ),
    ActionUnit(
        7, "Lid tightener", "orbicularis oculi, pars palpebralis",
        _both_sides(
            ("eye_outer_{side}", "eye_inner_{side}", "eye_top_{side}", "eye_bottom_{side}"),
            outer=0.06, top=0.06, inner=0.04, bottom=0.08,
        ),
        "a face whose eyelids are slightly tightened",
        "a face whose eyelids are relaxed",
    ),
    ActionUnit(
        9, "Nose wrinkler", "levator labii superioris alaeque nasi",
        _centre(("nose_bridge", "nose_wing_left", "nose_wing_right"), side=0.05, top=0.05, bottom=0.0),
        "a face whose nose is slightly wrinkled",
        "a face with a smooth, relaxed nose",
    ),
    ActionUnit(
        10, "Upper lip raiser", "levator labii superioris",
        _centre(("nose_wing_left", "nose_wing_right", "lip_top"), side=0.10, top=0.0, bottom=0.05),
        "a face whose upper lip is slightly raised",
        "a face whose upper lip is relaxed",
    ),
    ActionUnit(
        12, "Lip corner puller", "zygomaticus major",
        _both_sides(("mouth_corner_{side}",), outer=0.18, top=0.18, inner=0.05, bottom=0.08),
        "a face whose lip corners are slightly pulled up",
        "a face whose lip corners are relaxed",
    ),
    ActionUnit(
        14, "Dimpler", "buccinator",
        _both_sides(("mouth_corner_{side}",), outer=0.20, top=0.10, inner=0.04, bottom=0.10),
        "a face whose lip corners are slightly tightened into dimples",
        "a face with smooth, relaxed cheeks beside the mouth",
    ),
    ActionUnit(
        15, "Lip corner depressor", "depressor anguli oris",
        _both_sides(("mouth_corner_{side}",), outer=0.12, top=0.05, inner=0.05, bottom=0.20),
        "a face whose lip corners are slightly pulled down",
        "a face whose lip corners are level and relaxed",
    ),
    ActionUnit(
        17, "Chin raiser", "mentalis",
        _centre(("lip_bottom", "chin"), side=0.22, top=0.0, bottom=0.0),
        "a face whose chin is slightly pushed up",
        "a face with a smooth, relaxed chin",
    ),
    ActionUnit(
        20, "Lip stretcher", "risorius, platysma",
        _both_sides(("mouth_corner_{side}",), outer=0.25, top=0.08, inner=0.03, bottom=0.12),
        "a face whose lips are slightly stretched sideways",
        "a face whose lips are relaxed at their usual width",
    ),
    ActionUnit(
        23, "Lip tightener", "orbicularis oris",
        _centre(("mouth_corner_left", "mouth_corner_right", "lip_top", "lip_bottom"), side=0.04, top=0.05, bottom=0.05),
        "a face whose lips are slightly tightened and narrowed",
        "a face whose lips are soft and relaxed",
    ),
    ActionUnit(
        24, "Lip pressor", "orbicularis oris",
        _centre(("mouth_corner_left", "mouth_corner_right", "lip_top", "lip_bottom"), side=0.04, top=0.05, bottom=0.05),
        "a face whose lips are slightly pressed together",
        "a face whose lips touch lightly without pressure",
    ),
    ActionUnit(
        25, "Lips part", "depressor labii inferioris, relaxed mentalis or orbicularis oris",
        _centre(("lip_top", "lip_bottom"), side=0.15, top=0.03, bottom=0.03),
        "a face whose lips are slightly parted",
        "a face whose lips are closed",
    ),
    ActionUnit(
        26, "Jaw drop", "relaxed masseter, temporalis and internal pterygoid",
        _centre(("mouth_corner_left", "mouth_corner_right", "lip_bottom", "chin"), side=0.05, top=0.0, bottom=0.05),
        "a face whose jaw is slightly dropped",
        "a face whose jaw is closed and at rest",
    ),
)

CATALOGUE: dict[int, ActionUnit] = {au.number: au for au in _AUS}

# ----------------------------------------------------------------------------------------------------------------
# Named AU sets: the sets the field evaluates on.
# ----------------------------------------------------------------------------------------------------------------

AU_SETS: dict[str, tuple[int, ...]] = {
    # CASME II: the 8 AUs with enough samples for LOSO (Li et al., micro-AU detection benchmarks).
    "casme2": (1, 2, 4, 7, 12, 14, 15, 17),
    # SAMM: the 4 AUs frequent enough for LOSO.
    "samm": (2, 4, 7, 12),
    # MMEW: the AUs with enough support in its micro-expression part.
    "mmew": (1, 2, 4, 5, 7, 10, 12, 14),
    # The 12-AU set used for cross-corpus work (CASME II + SAMM + CAS(ME)^3 union of frequent AUs).
    "cross12": (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17),
}

# ----------------------------------------------------------------------------------------------------------------
# Emotions from AUs, never from emotion labels: EMFACS-style prototypes (the combinations micro-expression corpora
# code for each basic emotion, at micro intensity often only part of the full prototype shows) and the objective
# classes of Davison et al. (2018), "Objective Classes for Micro-Facial Expression Recognition", J. Imaging 4(10).
# ----------------------------------------------------------------------------------------------------------------

#: The emotion label of a face that shows no AU: scored as the hypothesis that every AU is off, so a still face is
#: called "none" rather than the emotion whose AUs are least unlikely.
NO_EMOTION = "none"

EMOTION_PROTOTYPES: dict[str, tuple[frozenset[int], ...]] = {
    "happiness": (frozenset({6, 12}), frozenset({12})),
    "sadness": (frozenset({1, 4, 15}), frozenset({1, 4}), frozenset({15, 17}), frozenset({15})),
    "surprise": (frozenset({1, 2, 5, 26}), frozenset({1, 2, 5}), frozenset({1, 2})),
    "fear": (frozenset({1, 2, 4, 5, 7, 20, 26}), frozenset({1, 2, 4}), frozenset({20})),
    "anger": (frozenset({4, 5, 7, 23}), frozenset({4, 7}), frozenset({23}), frozenset({24})),
    "disgust": (frozenset({9, 15}), frozenset({9}), frozenset({10}), frozenset({10, 17})),
    "contempt": (frozenset({12, 14}), frozenset({14})),
}

OBJECTIVE_CLASSES: dict[int, tuple[frozenset[int], ...]] = {
    1: (frozenset({6}), frozenset({12}), frozenset({6, 12}), frozenset({6, 7, 12}), frozenset({7, 12})),
    2: (frozenset({1, 2}), frozenset({5}), frozenset({25}), frozenset({1, 2, 25}), frozenset({25, 26}), frozenset({5, 24})),
    3: (
        frozenset({23}), frozenset({4}), frozenset({4, 7}), frozenset({4, 5}), frozenset({4, 5, 7}),
        frozenset({17, 24}), frozenset({4, 6, 7}),
    ),
    4: (
        frozenset({10}), frozenset({9}), frozenset({4, 9}), frozenset({4, 7, 9}), frozenset({4, 9, 17}),
        frozenset({4, 7, 10}), frozenset({4, 5, 7, 9}), frozenset({7, 10}),
    ),
    5: (frozenset({1}), frozenset({15}), frozenset({1, 4}), frozenset({6, 15}), frozenset({15, 17})),
    6: (frozenset({1, 2, 4}), frozenset({20})),
    7: (frozenset({14}), frozenset({17}), frozenset({24})),
}

#: Roman numerals as the corpora write objective classes.
OBJECTIVE_CLASS_NAMES: dict[int, str] = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII"}

#: The emotion whose EMFACS combinations each objective class gathers. The classes group micro-expressions by the
#: AUs that move, not by the emotion a subject reported (hence "objective"); this is where their AUs come from.
OBJECTIVE_CLASS_EMOTIONS: dict[int, str] = {
    1: "happiness", 2: "surprise", 3: "anger", 4: "disgust", 5: "sadness", 6: "fear", 7: "contempt and other movements",
}


def resolve_au_set(aus: str | list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """An AU set by name (``"casme2"``) or as numbers, checked against the catalogue and sorted."""
    if isinstance(aus, str):
        if aus not in AU_SETS:
            raise ValueError(f"unknown AU set {aus!r}; named sets are {sorted(AU_SETS)}")
        return AU_SETS[aus]
    numbers = tuple(sorted({int(a) for a in aus}))
    if not numbers:
        raise ValueError("the AU list is empty")
    unknown = [a for a in numbers if a not in CATALOGUE]
    if unknown:
        raise ValueError(f"AU {unknown} not in the catalogue; known AUs are {sorted(CATALOGUE)}")
    return numbers


def get_au(number: int) -> ActionUnit:
    """The catalogue entry of one AU, with a clear error for an AU the catalogue lacks."""
    if number not in CATALOGUE:
        raise KeyError(f"AU{number} is not in the catalogue; known AUs are {sorted(CATALOGUE)}")
    return CATALOGUE[number]


__all__ = [
    "ALIGNMENT_LANDMARKS",
    "AU_SETS",
    "ActionUnit",
    "CANONICAL_LANDMARKS",
    "CATALOGUE",
    "EMOTION_PROTOTYPES",
    "OBJECTIVE_CLASSES",
    "OBJECTIVE_CLASS_EMOTIONS",
    "OBJECTIVE_CLASS_NAMES",
    "RegionBox",
    "get_au",
    "resolve_au_set",
]
