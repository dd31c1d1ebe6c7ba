"""A contact sheet of a corpus: the onset frame, then the aligned onset crop and where the apex differs from it, row by
row, with the AU labels.

Micro-movements are invisible side by side, which is the point; the amplified difference of the aligned crops (made by
the face pipeline, as the model gets them) shows whether a sample moves where its labels say: the labelled AUs'
regions, placed from the onset's landmarks, are outlined on it. Works on any corpus with the
:func:`~microau_hf.data.schema.sample_features` columns, synthetic or converted. The README figure is made with::

    python -m microau_hf.data.contact_sheet docs/synthetic_contact_sheet.png

which draws a synthetic corpus of the public-domain faces only (``--corpus DIR`` draws a saved corpus instead).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from datasets import Dataset, load_from_disk
from PIL import Image, ImageDraw, ImageFont

from ..aus import CATALOGUE
from ..face.pipeline import FacePreparer

HEADER = ("onset frame", "aligned onset crop", "aligned |apex - onset| x{gain:g}")
TEXT_WIDTH = 200
BOX_COLOUR = (80, 255, 80)


def _as_array(image: Image.Image | np.ndarray, tile: int) -> np.ndarray:
    image = image if isinstance(image, Image.Image) else Image.fromarray(image)
    image = image.convert("RGB")
    image.thumbnail((tile, tile), Image.Resampling.BILINEAR)  # the whole frame, its aspect kept
    framed = Image.new("RGB", (tile, tile), "white")
    framed.paste(image, ((tile - image.width) // 2, (tile - image.height) // 2))
    return np.asarray(framed, dtype=np.float32)


def difference_heat_map(onset: np.ndarray, apex: np.ndarray, gain: float) -> np.ndarray:
    """``|apex - onset|`` (mean over colour channels) times ``gain``, as an RGB uint8 heat map."""
    difference = np.abs(apex.astype(np.float32) - onset.astype(np.float32)).mean(axis=-1)
    scaled = np.clip(difference * gain, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def _outline_regions(heat: np.ndarray, boxes: list[list]) -> np.ndarray:
    size = heat.shape[0]
    for au_boxes in boxes:
        for x0, y0, x1, y1 in au_boxes:
            corner0, corner1 = (round(x0 * size), round(y0 * size)), (round(x1 * size) - 1, round(y1 * size) - 1)
            cv2.rectangle(heat, corner0, corner1, BOX_COLOUR, 1)
    return heat


def _label_lines(row: dict) -> list[str]:
    sides = row.get("laterality") or [""] * len(row["aus"])
    codes = [f"AU{au}({side})" if side else f"AU{au}" for au, side in zip(row["aus"], sides)]
    objective = row.get("objective_class")
    return [
        str(row["sample_id"]),
        " + ".join(codes) or "no AU",
        f"raw: {row.get('au_raw', '')}",
        f"emotion: {row.get('emotion', '')}",
        f"objective class: {objective if objective is not None else '-'}",
    ]


def draw_contact_sheet(dataset: Dataset, n: int = 8, gain: float = 10.0, tile: int = 192,
                       preparer: FacePreparer | None = None) -> Image.Image:
    """The first ``n`` samples of ``dataset``: onset frame | aligned onset | amplified aligned difference (the labelled
    AUs' regions outlined) | labels.

    ``gain`` multiplies the grey-level difference (a 2 px movement on an edge is ~10-30 grey levels); ``tile`` is the
    side in pixels each frame is drawn at; ``preparer``: the face pipeline (default: landmarks when MediaPipe is
    installed, every AU of the catalogue, ``tile`` px crops). A row whose face the pipeline refuses shows the reason.
    """
    count = min(n, len(dataset))
    if count == 0:
        raise ValueError("the dataset is empty: nothing to draw")
    preparer = preparer or FacePreparer(sorted(CATALOGUE), image_size=tile, patch_size=tile)
    index_of = {au: k for k, au in enumerate(preparer.aus)}
    font = ImageFont.load_default()
    header = 18
    sheet = Image.new("RGB", (3 * tile + TEXT_WIDTH, header + count * tile), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(HEADER):
        draw.text((column * tile + 4, 3), title.format(gain=gain), fill="black", font=font)
    for index in range(count):
        row = dataset[index]
        top = header + index * tile
        sheet.paste(Image.fromarray(_as_array(row["onset"], tile).astype(np.uint8)), (0, top))
        prepared = preparer.prepare_batch([(row["onset"], row["apex"])], [str(row["sample_id"])])[0]
        lines = _label_lines(row)
        if prepared.ok:
            onset, apex = (_as_array(crop, tile) for crop in (prepared.onset, prepared.apex))
            labelled = [prepared.region_boxes[index_of[au]] for au in row["aus"] if au in index_of]
            heat = _outline_regions(difference_heat_map(onset, apex, gain), labelled)
            for column, pixels in enumerate((onset, heat), start=1):
                sheet.paste(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), (column * tile, top))
        else:
            lines.append(prepared.message[:40])
        for line_number, line in enumerate(lines):
            draw.text((3 * tile + 6, top + 6 + 16 * line_number), line, fill="black", font=font)
    return sheet


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Draw a corpus contact sheet (PNG).")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--corpus", type=Path, help="a saved corpus; default: a synthetic one of public-domain faces")
    parser.add_argument("-n", type=int, default=8, help="samples (rows)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full-colour", action="store_true", help="keep 24-bit colour (default: a 256-colour palette,"
                        " a third of the size, fine for a figure)")
    args = parser.parse_args(argv)
    if args.corpus is not None:
        dataset = load_from_disk(str(args.corpus))
    else:
        from .faces import load_faces
        from .synthetic import make_synthetic_corpus

        dataset = make_synthetic_corpus(num_samples=args.n, seed=args.seed, faces=load_faces(public_domain_only=True))
    sheet = draw_contact_sheet(dataset, n=args.n)
    if not args.full_colour:
        sheet = sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out}")


__all__ = ["difference_heat_map", "draw_contact_sheet"]

if __name__ == "__main__":
    main()
