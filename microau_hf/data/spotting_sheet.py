"""A contact sheet of a spotting video: for each injected movement, its onset, apex and offset frames and where they
differ, so a person can check that the movement sits where the truth file says.

Columns, each a crop around the movement: onset | apex | offset | ``|apex - onset|`` amplified | and, when the
source video is at hand, ``|apex - source frame|`` amplified: the injection alone, without the source's own head
motion and blinks (which the onset-to-apex difference shows too). The box the warp changed is outlined in green.
Made by ``scripts/show_spotting_video.py VIDEO``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..video import iter_frames
from .contact_sheet import BOX_COLOUR, difference_heat_map
from .synthetic_video import InjectedMovement, SpottingVideo

TEXT_WIDTH = 170
HEADER = 34  # two lines: the video, then the column titles


def _collect(path: Path, wanted: Iterable[int]) -> dict[int, np.ndarray]:
    """The frames numbered ``wanted`` of a video, read in one pass (only those are held)."""
    wanted = set(wanted)
    if not wanted:
        return {}
    kept = {}
    for index, frame in iter_frames(path, 0, max(wanted) + 1):
        if index in wanted:
            kept[index] = frame
    return kept


def _crop_square(movement: InjectedMovement, width: int, height: int) -> tuple[int, int, int]:
    """``(x0, y0, side)`` of a square around the movement's box, with room around it, inside the frame."""
    x0, y0, x1, y1 = movement.box or (0, 0, width, height)
    side = int(min(max(x1 - x0, y1 - y0, 2.5 * movement.iod_px) * 1.3, width, height))
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    left = min(max(cx - side // 2, 0), width - side)
    top = min(max(cy - side // 2, 0), height - side)
    return left, top, side


def _tile(image: np.ndarray, square: tuple[int, int, int], tile: int,
          box: tuple[int, int, int, int] | None = None) -> Image.Image:
    left, top, side = square
    crop = Image.fromarray(np.ascontiguousarray(image[top:top + side, left:left + side])).resize(
        (tile, tile), Image.Resampling.LANCZOS)
    if box is not None:
        scale = tile / side
        corners = [(box[0] - left) * scale, (box[1] - top) * scale, (box[2] - left) * scale - 1,
                   (box[3] - top) * scale - 1]
        ImageDraw.Draw(crop).rectangle(corners, outline=BOX_COLOUR)
    return crop


def draw_spotting_sheet(video: SpottingVideo, source: str | Path | None = None, gain: float = 8.0,
                        tile: int = 200) -> Image.Image:
    """The sheet of ``video`` (a :class:`~microau_hf.data.synthetic_video.SpottingVideo`, e.g. loaded from its
    truth); ``source``: the source video, for the injection-only column; ``gain`` multiplies grey-level
    differences; ``tile``: the side of each crop in pixels."""
    if not video.movements:
        raise ValueError(f"{video.path}: no injected movement to draw")
    frames = _collect(video.path, {k for m in video.movements for k in (m.onset, m.apex, m.offset)})
    originals = _collect(Path(source), {video.source_index(m.apex) for m in video.movements}) if source else {}
    titles = ["onset", "apex", "offset", f"|apex - onset| x{gain:g}"]
    if originals:
        titles.append(f"|apex - source| x{gain:g}")
    font = ImageFont.load_default()
    sheet = Image.new("RGB", (TEXT_WIDTH + len(titles) * tile, HEADER + len(video.movements) * tile), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 3), f"{video.path.name}: {video.num_frames} frames at {video.fps:.3g} fps, made from "
              f"{video.source} frames {video.source_range[0]}-{video.source_range[1] - 1} ({video.loops} ping-pong "
              f"passes); green: the pixels the warp changed", fill="black", font=font)
    for column, title in enumerate(titles):
        draw.text((TEXT_WIDTH + column * tile + 4, 19), title, fill="black", font=font)
    for row, movement in enumerate(video.movements):
        top = HEADER + row * tile
        square = _crop_square(movement, video.width, video.height)
        onset, apex, offset = (frames[k] for k in (movement.onset, movement.apex, movement.offset))
        tiles = [_tile(onset, square, tile), _tile(apex, square, tile), _tile(offset, square, tile),
                 _tile(difference_heat_map(onset, apex, gain), square, tile, movement.box)]
        if originals:
            original = originals[video.source_index(movement.apex)]
            tiles.append(_tile(difference_heat_map(original, apex, gain), square, tile, movement.box))
        for column, image in enumerate(tiles):
            sheet.paste(image, (TEXT_WIDTH + column * tile, top))
        lines = [f"{movement.kind} AU{movement.au_code}",
                 f"frames {movement.onset}/{movement.apex}/{movement.offset}",
                 f"{(movement.offset - movement.onset) / video.fps:.2f} s",
                 f"peak {movement.amplitude_px:.1f} px",
                 f"({movement.amplitude_px / movement.iod_px:.3f} IOD)" if movement.iod_px else ""]
        for number, line in enumerate(lines):
            draw.text((6, top + 8 + 16 * number), line, fill="black", font=font)
    return sheet


def _default_source(video: SpottingVideo) -> Path | None:
    for candidate in (video.path.parent / "sources" / video.source, video.path.parent / video.source):
        if candidate.is_file() and candidate.resolve() != video.path.resolve():
            return candidate
    return None


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description="Draw the injected movements of a spotting video (PNG).")
    parser.add_argument("video", type=Path, help="a spotting video with its .truth.json beside it")
    parser.add_argument("--out", type=Path, help="the PNG (default: <video>.movements.png)")
    parser.add_argument("--source", type=Path, help="the source video (default: sources/<name> or <name> beside "
                        "the video, if there)")
    parser.add_argument("--gain", type=float, default=8.0, help="difference amplification")
    parser.add_argument("--tile", type=int, default=200, help="crop side in pixels")
    parser.add_argument("--full-colour", action="store_true", help="keep 24-bit colour (default: a 256-colour "
                        "palette, a third of the size, fine for a figure)")
    args = parser.parse_args(argv)
    video = SpottingVideo.load(args.video)
    source = args.source or _default_source(video)
    sheet = draw_spotting_sheet(video, source, args.gain, args.tile)
    if not args.full_colour:
        sheet = sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    out = args.out or args.video.with_name(args.video.name + ".movements.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    print(f"wrote {out}")
    return out


__all__ = ["draw_spotting_sheet", "main"]

if __name__ == "__main__":
    main()
