"""The Space's pictures: where the AUs that fired sit on the apex, and the amplified motion between the two frames.

Both are drawn on the aligned crops the model saw, enlarged to :data:`DISPLAY_SIZE` so that small crops (the test
preset's are 32 px) still read on the page.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from microau_hf.data.contact_sheet import difference_heat_map

DISPLAY_SIZE = 320
HEAT_OPACITY = 0.6  # at a region's core; the face stays visible under the colour


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _enlarge(crop: np.ndarray) -> np.ndarray:
    return cv2.resize(np.ascontiguousarray(crop), (DISPLAY_SIZE, DISPLAY_SIZE), interpolation=cv2.INTER_CUBIC)


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


Box = tuple[float, float, float, float]


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _label(draw: ImageDraw.ImageDraw, centre: tuple[float, float], text: str, font: ImageFont.ImageFont,
           taken: list[Box]) -> None:
    """``text`` centred on ``centre``, white on a dark backing so it reads on any skin and on the heat colours.

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
    draw.text((x + 2 - left, y + 2 - top), text, fill=(255, 255, 255), font=font)


def au_heat_map(
    apex: np.ndarray,
    weights: np.ndarray,
    grid_size: int,
    probabilities: Sequence[float],
    present: Sequence[bool],
    labels: Sequence[str],
) -> Image.Image:
    """The aligned ``apex`` with the regions of the AUs that fired (``present``) coloured by their probability.

    ``weights`` is ``(K, grid_size ** 2)``: the patch weights the model's region-masked attention used for this face.
    The colour is the AU's probability (jet: green 0.5, yellow 0.75, red 1), the opacity how much of its region lies
    there; where two fired regions overlap, the AU with the larger probability x weight colours the pixel. Each fired AU is labelled at the centre
    of its region; a caption says so when none fired.
    """
    image = _enlarge(apex).astype(np.float32)
    fired = [k for k, on in enumerate(present) if on]
    maps = np.zeros((len(present), DISPLAY_SIZE, DISPLAY_SIZE), np.float32)
    maps[fired] = _region_maps(np.asarray(weights)[fired], grid_size)  # only the fired AUs are drawn
    probability = np.zeros((DISPLAY_SIZE, DISPLAY_SIZE), np.float32)  # the colour: the AU's probability
    cover = np.zeros((DISPLAY_SIZE, DISPLAY_SIZE), np.float32)  # the opacity: how much its region covers the pixel
    if fired:
        scores = np.stack([float(probabilities[k]) * maps[k] for k in fired])
        dominant = scores.argmax(axis=0)  # per pixel, the fired AU that most likely acts there
        probability = np.asarray([float(probabilities[k]) for k in fired], np.float32)[dominant]
        cover = np.take_along_axis(maps[fired], dominant[None], axis=0)[0]
    colours = cv2.applyColorMap((probability * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1].astype(np.float32)
    alpha = (HEAT_OPACITY * cover)[..., None]
    picture = Image.fromarray(np.clip(image * (1 - alpha) + colours * alpha, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    font, taken = _font(14), []
    for k in sorted(fired, key=lambda k: -float(probabilities[k])):  # the likeliest AU keeps its label on the spot
        ys, xs = np.indices(maps[k].shape)
        mass = maps[k].sum()
        if mass > 0:
            centre = (float((xs * maps[k]).sum() / mass), float((ys * maps[k]).sum() / mass))
            _label(draw, centre, f"{labels[k]} {float(probabilities[k]):.2f}", font, taken)
    if not fired:
        _label(draw, (DISPLAY_SIZE / 2, DISPLAY_SIZE - 14), "no AU above the threshold", font, taken)
    return picture


def motion_image(onset: np.ndarray, apex: np.ndarray, gain: float) -> Image.Image:
    """``|apex - onset| x gain`` of the aligned crops as a heat map, the way the corpus contact sheets show it."""
    heat = difference_heat_map(onset, apex, float(gain))
    # Nearest-neighbour: every enlarged pixel is one measured difference, not an interpolated one.
    return Image.fromarray(heat).resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.NEAREST)


__all__ = ["DISPLAY_SIZE", "au_heat_map", "motion_image"]
