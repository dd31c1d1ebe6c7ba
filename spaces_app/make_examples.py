"""Writes the Space's example files into ``spaces_app/examples/`` (run from the repository root):

    python spaces_app/make_examples.py

* three onset/apex pairs from the synthetic corpus, made of the public-domain faces only (the NASA astronaut
  portrait and the U.S. Navy portrait of Grace Hopper), so the files may be published with the Space: camera-like
  JPEG frames that the face pipeline finds, aligns and crops as it does a user's (with a seed the quickstart's
  corpus does not use, so these exact frames were never trained on);
* a 3 s video of the astronaut for the spotter: the face at rest, one micro-smile (AU12, at micro-expression
  amplitude) that rises and falls back within 0.4 s around 1.2-1.6 s, then rest again; the truth (onset, apex and
  offset frames, AUs) goes into the manifest.

The files are small on purpose (a Space repository should stay light): 320x240 JPEGs and a 240 px WebM, < 1 MB.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from datasets import Image

from microau_hf.aus import AU_SETS
from microau_hf.data.au_motion import displacement_grid
from microau_hf.data.faces import licence_notes, load_faces
from microau_hf.data.render import REFERENCE_IOD, Camera, Rendering, prepare_subjects, render_frame
from microau_hf.data.synthetic import make_synthetic_corpus
from microau_hf.data.synthetic_video import InjectedMovement

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
VIDEO_SIZE = 240
VIDEO_IOD = 60.0  # the face's interocular distance in the video frame, pixels
VIDEO_FPS = 25
#: Seed and corpus indices of the pairs shown: chosen for distinct emotions (anger, contempt, happiness) among the
#: first 40 samples of this seed that the quickstart's checkpoint reads exactly, with every AU probability at least
#: 0.25 from the 0.5 threshold, and whose drawn emotion is the one the AUs give. It reads 17 of those 40 exactly (an
#: extra AU4 beside AU1 and AU2 is the usual slip): these examples show what the demo does, the held-out LOSO table
#: says how well it does.
SEED = 7
PAIR_INDICES = (9, 18, 21)
# The synthetic corpus's upper amplitudes: visible in the amplified difference yet still micro (a few pixels).
AMPLITUDE_PX = (2.0, 3.0)
#: Frames the size of a small webcam picture, the face large enough to be read at a glance.
PAIR_RENDERING = Rendering(frame_sizes=((320, 240),), iod_px=(50.0, 60.0), roll_deg=8.0, jpeg_quality=(90, 95))
# AU, side ("" for both), peak displacement at the reference IOD. A lip-corner pull alone: with AU6 added, or
# AU12 above 1.75 px, the quickstart's checkpoint also calls AU14 (dimpler, the same lip corners) and AU7 (AU6's
# cheek motion reaches the lower lids), so the example would contradict its label.
VIDEO_MOVES = ((12, "", 1.5),)
VIDEO_FRAMES = 75  # 3 s at 25 fps: the spotter compares each frame with the frames 0.3 s before and after it
#: The micro-smile's onset, apex and offset frames (0-based, inclusive; the face is at rest at onset and offset):
#: 1.2-1.6 s, moving for 0.36 s, with over a second of rest on each side for the spotter's noise estimate.
VIDEO_INTERVAL = (30, 35, 40)


def write_pairs(out_dir: Path) -> list[dict]:
    """The chosen synthetic samples as ``<sample>_onset.png`` / ``<sample>_apex.png``, with their labels."""
    faces = load_faces(public_domain_only=True)
    corpus = make_synthetic_corpus(
        num_samples=max(PAIR_INDICES) + 1, seed=SEED, amplitude_px=AMPLITUDE_PX, aus=AU_SETS["casme2"], faces=faces,
        rendering=PAIR_RENDERING, neutral_prob=0.0,
    )
    notes = licence_notes(faces)
    # The corpus's own JPEG bytes, written as they are (decoding and saving again would change the pixels).
    raw = corpus.cast_column("onset", Image(decode=False)).cast_column("apex", Image(decode=False))
    written = []
    for index in PAIR_INDICES:
        row = raw[index]
        stem = row["sample_id"].replace("/", "_")
        for frame in ("onset", "apex"):
            (out_dir / f"{stem}_{frame}.jpg").write_bytes(row[frame]["bytes"])
        written.append({"onset": f"{stem}_onset.jpg", "apex": f"{stem}_apex.jpg", "aus": row["aus"],
                        "emotion": row["emotion"], "licence": notes[row["subject"]]})
    return written


def write_video(out_dir: Path) -> dict:
    """The astronaut at rest with one micro-smile, as VP8 WebM (OpenCV's wheels encode it; browsers play it, so the
    Space needs no ffmpeg to show the example), and its truth as a spotting row gives it."""
    astronaut = [face for face in load_faces(public_domain_only=True) if face.subject == "astronaut"]
    subject = prepare_subjects(astronaut)[0]
    scale = VIDEO_IOD / subject.iod
    shift = VIDEO_SIZE / 2 - scale * subject.size / 2
    camera = Camera(VIDEO_SIZE, VIDEO_SIZE, np.array([[scale, 0.0, shift], [0.0, scale, shift]]))
    to_subject = subject.iod / REFERENCE_IOD
    movement = InjectedMovement(*VIDEO_INTERVAL, kind="micro", aus=tuple(au for au, _, _ in VIDEO_MOVES),
                                amplitude_px=max(peak for _, _, peak in VIDEO_MOVES) * VIDEO_IOD / REFERENCE_IOD,
                                iod_px=VIDEO_IOD)
    path = out_dir / "astronaut_smile.webm"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), VIDEO_FPS, (VIDEO_SIZE, VIDEO_SIZE))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write VP8 WebM here")
    # The frames at rest are one rendering; what differs between them is the VP8 encoder's noise. Sensor noise added
    # before encoding (0.25-1 grey level) cut the smile's spotting score from ~22 MADs over the rest to 7-10, near
    # the spotter's threshold (SpottingSettings.threshold_mads) and not in order of the noise: the example would
    # hang on the encoder's luck.
    rest = render_frame(subject, camera)
    for index in range(VIDEO_FRAMES):
        strength = movement.envelope(index)  # sin^2 up to the apex, cos^2 back down: 0 at onset and offset
        moves = [(au, side, peak * strength * to_subject) for au, side, peak in VIDEO_MOVES]
        frame = rest if strength == 0 else render_frame(
            subject, camera, displacement=displacement_grid(subject.landmarks, moves, subject.size))
        writer.write(cv2.cvtColor(np.clip(np.rint(frame), 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    writer.release()
    onset, apex, offset = VIDEO_INTERVAL
    return {"video": path.name, "fps": VIDEO_FPS, "frames": VIDEO_FRAMES,
            "intervals": [{"kind": "micro", "onset_frame": onset, "apex_frame": apex, "offset_frame": offset,
                           "aus": list(movement.aus), "emotion": "happiness",
                           "amplitude_px": round(movement.amplitude_px, 3)}],
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
