"""Pictures of the AU regions on an aligned face, to check by eye that each region sits where its muscle acts.

    python -m microau_hf.face.draw --out docs/au_regions_astronaut.png

draws the regions on ``skimage.data.astronaut()`` (public domain): a first panel with every AU's boxes and the
landmarks, then one panel per AU with its boxes and the ViT patches shaded by the weight the model gives them.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..aus import AU_SETS, CATALOGUE, resolve_au_set

Color = tuple[int, int, int]

PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200),
    (128, 0, 0), (170, 255, 195), (128, 128, 0),
]


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _upscaled(crop: np.ndarray | Image.Image, scale: int) -> Image.Image:
    image = crop if isinstance(crop, Image.Image) else Image.fromarray(np.asarray(crop))
    return image.convert("RGB").resize((image.width * scale, image.height * scale), Image.BICUBIC)


def _shade_patches(image: Image.Image, weights: torch.Tensor, grid_size: int, color: Color) -> Image.Image:
    """``image`` with each patch tinted in ``color`` in proportion to its weight."""
    cells = np.asarray(weights, dtype=np.float32).reshape(grid_size, grid_size)
    alpha = Image.fromarray((cells * 140).astype(np.uint8)).resize(image.size, Image.NEAREST)
    tint = Image.new("RGB", image.size, color)
    return Image.composite(tint, image, alpha)


def _label(draw: ImageDraw.ImageDraw, corner: tuple[float, float], text: str, color, font) -> None:
    """Text just above a box's top-left ``corner`` (inside it at the image's top edge), on a dark backing so it reads
    on skin and on hair alike, and without hiding a small box's outline."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    height = bottom - top
    x, y = corner[0], corner[1] - height - 3
    if y < 0:
        y = corner[1] + 2
    draw.rectangle((x - 1, y + top - 1, x + right - left + 1, y + bottom + 1), fill=(0, 0, 0))
    draw.text((x, y), text, fill=color, font=font)


def draw_au_regions(
    crop: np.ndarray | Image.Image,
    boxes: Sequence[Sequence[Sequence[float]]],
    labels: Sequence[str],
    scale: int = 2,
    landmarks: Mapping[str, tuple[float, float]] | None = None,
    weights: torch.Tensor | None = None,
    grid_size: int | None = None,
    colors: Sequence[tuple[int, int, int]] | None = None,
) -> Image.Image:
    """The aligned ``crop``, enlarged ``scale`` times, with each AU's boxes (crop units) outlined and labelled.

    ``landmarks`` (crop pixels) are drawn as dots; ``weights`` (K, grid_size ** 2) shade the patches of each AU.
    """
    colors = list(colors or PALETTE)
    image = _upscaled(crop, scale)
    if weights is not None:
        if grid_size is None:
            raise ValueError("give grid_size with weights")
        for i, au_weights in enumerate(weights):
            image = _shade_patches(image, au_weights, grid_size, colors[i % len(colors)])
    draw = ImageDraw.Draw(image)
    font = _font(max(10, 6 * scale))
    side = image.width
    for i, (au_boxes, label) in enumerate(zip(boxes, labels)):
        color = colors[i % len(colors)]
        for x0, y0, x1, y1 in au_boxes:
            draw.rectangle((x0 * side, y0 * side, x1 * side, y1 * side), outline=color, width=max(1, scale))
        if au_boxes:
            _label(draw, (au_boxes[0][0] * side, au_boxes[0][1] * side), label, color, font)
    for x, y in (landmarks or {}).values():
        draw.ellipse((x * scale - 2, y * scale - 2, x * scale + 2, y * scale + 2), fill=(255, 255, 255))
    return image


def au_region_sheet(
    crop: np.ndarray,
    boxes: Sequence[Sequence[Sequence[float]]],
    labels: Sequence[str],
    weights: torch.Tensor,
    grid_size: int,
    landmarks: Mapping[str, tuple[float, float]] | None = None,
    columns: int = 6,
) -> Image.Image:
    """A contact sheet: every region on one double-size panel at the top left, then one panel per AU with its patch
    weights shaded, filling the other cells row by row."""
    overview = draw_au_regions(crop, boxes, labels, 2, landmarks)
    cell = overview.width // 2
    free = [(r, c) for r in range(2) for c in range(2, columns)]
    rows = 2 + max(0, -(-(len(labels) - len(free)) // columns))
    free += [(r, c) for r in range(2, rows) for c in range(columns)]
    sheet = Image.new("RGB", (columns * cell, rows * cell), (255, 255, 255))
    sheet.paste(overview, (0, 0))
    for i, (label, (row, col)) in enumerate(zip(labels, free)):
        color = PALETTE[i % len(PALETTE)]
        panel = draw_au_regions(
            crop, [boxes[i]], [label], 1, weights=weights[i : i + 1], grid_size=grid_size, colors=[color]
        )
        sheet.paste(panel, (col * cell, row * cell))
    return sheet


def astronaut_sheet(aus: Sequence[int], image_size: int = 224, patch_size: int = 16) -> tuple[Image.Image, str]:
    """The contact sheet for ``skimage.data.astronaut()``, and how its regions were placed (``"aligned"`` or
    ``"template"``)."""
    from skimage import data

    from .pipeline import FacePreparer

    preparer = FacePreparer(aus, image_size, patch_size)
    frame = data.astronaut()
    prepared = preparer.prepare(frame, frame, "skimage.data.astronaut()")
    labels = [f"AU{a}" for a in preparer.aus]
    sheet = au_region_sheet(
        prepared.onset, prepared.region_boxes, labels, prepared.region_weights, preparer.grid_size, prepared.landmarks
    )
    return sheet, prepared.status


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Draw the AU regions on the astronaut's aligned face.")
    parser.add_argument("--out", default="docs/au_regions_astronaut.png", help="PNG to write")
    parser.add_argument("--aus", default="all", help=f"an AU set ({', '.join(AU_SETS)}), 'all', or numbers like 1,2,4")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--patch-size", type=int, default=16)
    args = parser.parse_args(argv)
    if args.aus == "all":
        aus = sorted(CATALOGUE)
    elif args.aus in AU_SETS:
        aus = list(resolve_au_set(args.aus))
    else:
        aus = list(resolve_au_set([int(a) for a in args.aus.split(",")]))
    sheet, status = astronaut_sheet(aus, args.image_size, args.patch_size)
    sheet.save(args.out)
    print(f"wrote {args.out} ({len(aus)} AUs, regions: {status})")


if __name__ == "__main__":
    main()
