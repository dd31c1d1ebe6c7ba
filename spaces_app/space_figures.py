"""The Space's pictures: where the AUs that fired sit on the apex, and the amplified motion between the two frames.

Both are drawn on the aligned crops the model saw, enlarged to :data:`DISPLAY_SIZE` so that small crops (the test
preset's are 32 px) still read on the page.

The AU map must read on any skin: the face is shown in darkened grey, so that the only colour in the picture is the
AU probability, drawn with a perceptual colour map (viridis: its lightness grows with the value, so the order of two
colours survives a grey-scale print or colour-blind eyes) and explained by the colour bar beside the face.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from microau_hf.data.contact_sheet import difference_heat_map

DISPLAY_SIZE = 320
COLOUR_BAR_PANEL = 100  # px to the right of the face: the colour bar, its ticks and its caption
HEAT_OPACITY = 0.85  # at a region's core; the grey face still shows through the colour
# The part of viridis the probabilities use: its darkest quarter (near-black purple) would vanish on the dark face.
COLOUR_MAP_SPAN = (0.28, 1.0)
FACE_BRIGHTNESS = (25.0, 0.45)  # grey = 25 + 0.45 x luminance: a dim face that no colour of the map blends into
OUTLINE_LEVEL = 0.5  # a region's outline: where its weight falls to half its peak
REGION_EDGE = 0.15  # below this weight (relative to the peak) a region gets no colour
PANEL_BACKGROUND = (32, 32, 32)
TEXT_COLOUR = (255, 255, 255)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _enlarge(crop: np.ndarray) -> np.ndarray:
    return cv2.resize(np.ascontiguousarray(crop), (DISPLAY_SIZE, DISPLAY_SIZE), interpolation=cv2.INTER_CUBIC)


@cache
def _viridis() -> np.ndarray:
    """Viridis as a ``(256, 3)`` RGB lookup table."""
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    return cv2.applyColorMap(ramp, cv2.COLORMAP_VIRIDIS)[:, 0, ::-1].copy()


def probability_colour(probabilities: np.ndarray | float, threshold: float) -> np.ndarray:
    """The RGB colour (uint8, shape ``(..., 3)``) of AU probabilities on the map's scale: ``threshold`` (the lowest
    probability an AU that fired can have) at the dark end of :data:`COLOUR_MAP_SPAN`, 1 at its bright end."""
    position = (np.asarray(probabilities, dtype=np.float32) - threshold) / max(1.0 - threshold, 1e-6)
    low, high = COLOUR_MAP_SPAN
    index = np.rint(255 * (low + (high - low) * np.clip(position, 0.0, 1.0))).astype(np.int64)
    return _viridis()[index]


def _region_maps(weights: np.ndarray, grid_size: int) -> np.ndarray:
    """``(K, N)`` patch weights as ``(K, S, S)`` maps at display size, each peaking at 1.

    The region weights count how much of each patch the AU's boxes cover; scaling each AU to peak at 1 lets the
    colour say how likely the AU is, not how large its region is.
    """
    maps = []
    for row in np.asarray(weights, dtype=np.float32):
        cells = row.reshape(grid_size, grid_size)
        cells = cells / cells.max() if cells.max() > 0 else cells
        # Bilinear upsampling plus a blur of a third of a patch: a heat map, without hiding where the patches are.
        smooth = cv2.resize(cells, (DISPLAY_SIZE, DISPLAY_SIZE), interpolation=cv2.INTER_LINEAR)
        maps.append(cv2.GaussianBlur(smooth, (0, 0), DISPLAY_SIZE / grid_size / 3))
    return np.stack(maps) if maps else np.zeros((0, DISPLAY_SIZE, DISPLAY_SIZE), np.float32)


def _dimmed_grey(crop: np.ndarray) -> np.ndarray:
    """The enlarged crop as a dim grey RGB picture (float32)."""
    luminance = cv2.cvtColor(_enlarge(crop), cv2.COLOR_RGB2GRAY).astype(np.float32)
    offset, scale = FACE_BRIGHTNESS
    return np.repeat((offset + scale * luminance)[..., None], 3, axis=-1)


Box = tuple[float, float, float, float]


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _label(draw: ImageDraw.ImageDraw, centre: tuple[float, float], text: str, font: ImageFont.ImageFont,
           taken: list[Box]) -> None:
    """``text`` centred on ``centre``, white on a dark backing so it reads on the face and on the heat colours.

    Regions of several AUs share a centre (AU1, AU2 and AU4 all sit on the brows), so a label that would cover one
    already drawn (``taken``, updated) moves down a line until it is free.
    """
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    width, height = right - left + 4, bottom - top + 4
    x = min(max(centre[0] - width / 2, 0), DISPLAY_SIZE - width)
    y = min(max(centre[1] - height / 2, 0), DISPLAY_SIZE - height)
    while any(_overlaps((x, y, x + width, y + height), box) for box in taken) and y + 2 * height <= DISPLAY_SIZE:
        y += height + 1
    taken.append((x, y, x + width, y + height))
    draw.rectangle((x, y, x + width, y + height), fill=(20, 20, 20))
    draw.text((x + 2 - left, y + 2 - top), text, fill=TEXT_COLOUR, font=font)


def _colour_bar(threshold: float) -> Image.Image:
    """The key of the AU map: the colours from ``threshold`` (bottom) to 1 (top), ticked, with what they mean."""
    panel = Image.new("RGB", (COLOUR_BAR_PANEL, DISPLAY_SIZE), PANEL_BACKGROUND)
    draw = ImageDraw.Draw(panel)
    font, small = _font(13), _font(11)
    draw.text((8, 6), "AU probability", fill=TEXT_COLOUR, font=small)
    top, bottom, left, right = 28, DISPLAY_SIZE - 48, 10, 28
    values = np.linspace(1.0, threshold, bottom - top)  # one value per bar row, the highest on top
    bar = np.repeat(probability_colour(values, threshold)[:, None, :], right - left, axis=1)
    panel.paste(Image.fromarray(bar.astype(np.uint8)), (left, top))
    for fraction in (0.0, 0.5, 1.0):
        y = round(top + fraction * (bottom - top - 1))
        draw.line((right, y, right + 4, y), fill=TEXT_COLOUR)
        value = 1.0 - fraction * (1.0 - threshold)
        draw.text((right + 7, y - 7), f"{value:.2f}", fill=TEXT_COLOUR, font=font)
    for row, line in enumerate(("coloured: AUs", f"with p >= {threshold:g}", "(present)")):
        draw.text((6, bottom + 6 + 13 * row), line, fill=TEXT_COLOUR, font=small)
    return panel


def au_heat_map(
    apex: np.ndarray,
    weights: np.ndarray,
    grid_size: int,
    probabilities: Sequence[float],
    present: Sequence[bool],
    labels: Sequence[str],
    threshold: float,
) -> Image.Image:
    """The aligned ``apex`` in dim grey with the regions of the AUs that fired (``present``) coloured by their
    probability, outlined and labelled, and a colour bar on the right.

    ``weights`` is ``(K, grid_size ** 2)``: the patch weights the model's region-masked attention used for this face.
    The colour is the AU's probability (:func:`probability_colour`, from ``threshold`` to 1), the opacity how much of
    its region lies there; where two fired regions overlap, the AU with the larger probability x weight colours the
    pixel. A caption says so when no AU fired.
    """
    image = _dimmed_grey(apex)
    fired = [k for k, on in enumerate(present) if on]
    maps = _region_maps(np.asarray(weights)[fired], grid_size)  # only the fired AUs are drawn
    scores = np.asarray([float(probabilities[k]) for k in fired], np.float32)
    if fired:
        dominant = (scores[:, None, None] * maps).argmax(axis=0)  # per pixel, the fired AU that most likely acts there
        colours = probability_colour(scores[dominant], threshold).astype(np.float32)
        cover = np.take_along_axis(maps, dominant[None], axis=0)[0]
        # Full colour inside the outline, fading to none just outside it: the blur's faint tails tint nothing.
        fade = np.clip((cover - REGION_EDGE) / (OUTLINE_LEVEL - REGION_EDGE), 0.0, 1.0)
        alpha = (HEAT_OPACITY * fade)[..., None]
        image = image * (1 - alpha) + colours * alpha
    face = np.clip(image, 0, 255).astype(np.uint8)
    for region, score in zip(maps, scores):  # outlines keep each region's edge visible where its colour fades
        contours, _ = cv2.findContours((region >= OUTLINE_LEVEL).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(face, contours, -1, tuple(int(c) for c in probability_colour(score, threshold)), 2)
    picture = Image.new("RGB", (DISPLAY_SIZE + COLOUR_BAR_PANEL, DISPLAY_SIZE), PANEL_BACKGROUND)
    picture.paste(Image.fromarray(face), (0, 0))
    picture.paste(_colour_bar(threshold), (DISPLAY_SIZE, 0))
    draw, font, taken = ImageDraw.Draw(picture), _font(14), []
    for j in np.argsort(-scores, kind="stable"):  # the likeliest AU keeps its label on the spot
        ys, xs = np.indices(maps[j].shape)
        mass = maps[j].sum()
        if mass > 0:
            centre = (float((xs * maps[j]).sum() / mass), float((ys * maps[j]).sum() / mass))
            _label(draw, centre, f"{labels[fired[j]]} {scores[j]:.2f}", font, taken)
    if not fired:
        _label(draw, (DISPLAY_SIZE / 2, DISPLAY_SIZE - 14), "no AU above the threshold", font, taken)
    return picture


def motion_image(onset: np.ndarray, apex: np.ndarray, gain: float) -> Image.Image:
    """``|apex - onset| x gain`` of the aligned crops as a heat map, the way the corpus contact sheets show it."""
    heat = difference_heat_map(onset, apex, float(gain))
    # Nearest-neighbour: every enlarged pixel is one measured difference, not an interpolated one.
    return Image.fromarray(heat).resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.NEAREST)


__all__ = ["COLOUR_BAR_PANEL", "DISPLAY_SIZE", "au_heat_map", "motion_image", "probability_colour"]
