"""Writes the Space's example files into ``spaces_app/examples/`` (run from the repository root):

    python spaces_app/make_examples.py

* three onset/apex pairs from the synthetic corpus, made of the public-domain faces only (the NASA astronaut
  portrait and the U.S. Navy portrait of Grace Hopper), so the files may be published with the Space;
* a short video of the astronaut: a neutral first frame (the onset, as the corpora define it), a smile (AU6 + AU12)
  that rises to its apex and fades, at micro-expression amplitude.

The files are small on purpose (a Space repository should stay light): 128 px PNGs and a 160 px WebM, < 1 MB in all.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from microau_hf.aus import AU_SETS
from microau_hf.data.au_motion import displacement_grid
from microau_hf.data.faces import licence_notes, load_faces
from microau_hf.data.synthetic import _render, make_synthetic_corpus, prepare_subjects

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
PAIR_SIZE = 128
VIDEO_SIZE = 160
VIDEO_FPS = 25
#: Seed and corpus indices of the pairs shown: chosen for distinct AUs and emotions (surprise, anger, sadness).
SEED = 0
PAIR_INDICES = (0, 1, 4)
# The synthetic corpus's upper amplitudes: visible in the amplified difference yet still micro (a few pixels).
AMPLITUDE_PX = (2.0, 3.0)
VIDEO_MOVES = ((6, "", 2.0), (12, "", 3.0))  # AU, side ("" for both), peak displacement in crop pixels
VIDEO_FRAMES = 30  # 1.2 s at 25 fps: within the 0.5 s of a micro-expression plus neutral frames around it


def write_pairs(out_dir: Path) -> list[dict]:
    """The chosen synthetic samples as ``<sample>_onset.png`` / ``<sample>_apex.png``, with their labels."""
    faces = load_faces(public_domain_only=True)
    corpus = make_synthetic_corpus(
        num_samples=max(PAIR_INDICES) + 1, seed=SEED, amplitude_px=AMPLITUDE_PX, image_size=PAIR_SIZE,
        aus=AU_SETS["casme2"], faces=faces,
    )
    notes = licence_notes(faces)
    written = []
    for index in PAIR_INDICES:
        row = corpus[index]
        stem = row["sample_id"].replace("/", "_")
        for frame in ("onset", "apex"):
            row[frame].save(out_dir / f"{stem}_{frame}.png", optimize=True)
        written.append({"onset": f"{stem}_onset.png", "apex": f"{stem}_apex.png", "aus": row["aus"],
                        "emotion": row["emotion"], "licence": notes[row["subject"]]})
    return written


def write_video(out_dir: Path) -> dict:
    """The astronaut smiling at micro-expression amplitude, as VP8 WebM (OpenCV's wheels encode it; browsers play
    it, so the Space needs no ffmpeg to show the example)."""
    astronaut = [face for face in load_faces(public_domain_only=True) if face.subject == "astronaut"]
    subject = prepare_subjects(astronaut, VIDEO_SIZE)[0]
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    path = out_dir / "astronaut_smile.webm"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), VIDEO_FPS, (VIDEO_SIZE, VIDEO_SIZE))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write VP8 WebM here")
    # Neutral for the first 6 frames, a raised-cosine rise to the apex at frame 14, a slower fade, neutral again.
    t = np.arange(VIDEO_FRAMES)
    envelope = np.where(t < 6, 0.0, np.where(t <= 14, 0.5 - 0.5 * np.cos(np.pi * (t - 6) / 8), 0.0))
    fade = (t > 14) & (t < 26)
    envelope[fade] = 0.5 + 0.5 * np.cos(np.pi * (t[fade] - 14) / 12)
    for strength in envelope:
        moves = [(au, side, peak * strength) for au, side, peak in VIDEO_MOVES]
        field = displacement_grid(subject.landmarks, moves, VIDEO_SIZE) if strength > 0 else None
        frame = np.clip(np.rint(_render(subject, identity, field)), 0, 255).astype(np.uint8)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return {"video": path.name, "aus": [au for au, _, _ in VIDEO_MOVES], "apex_frame": 14, "fps": VIDEO_FPS,
            "licence": astronaut[0].licence}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the Space's example files.")
    parser.add_argument("--out", type=Path, default=EXAMPLES_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = {"pairs": write_pairs(args.out), "video": write_video(args.out)}
    (args.out / "examples.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(f.stat().st_size for f in args.out.iterdir())
    print(f"wrote {len(list(args.out.iterdir()))} files to {args.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
