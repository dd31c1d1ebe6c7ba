"""From raw onset/apex frames to model inputs: load, find the face on the onset, align both frames, place the AU
regions; then hand the crops and boxes to the processor.

    preparer = FacePreparer.from_config(config)
    prepared = preparer.prepare("onset.jpg", "apex.jpg")          # one sample; raises on a bad one
    batch = preparer.prepare_batch(pairs)                          # many; a bad one gets a status, not an exception
    inputs = model_inputs(build_processor(config), batch)          # the model's tensors, for the usable samples
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import numpy as np
import torch
from PIL import Image
from transformers import BatchFeature, CLIPImageProcessorPil

from ..aus import CANONICAL_LANDMARKS, Box
from ..processing_micro_au_clip import MicroAUClipProcessor
from ..tokenizer import load_clip_tokenizer
from .align import DEFAULT_CROP_SIZE, align_pair, warp
from .cache import FaceCache, NoFace, frame_key
from .io import ImageLoadError, ImageSource, describe, load_pair
from .landmarks import Face, LandmarkBackend, NoFaceError, load_landmarker, upside_down
from .regions import interocular, landmark_region_boxes, region_weights, template_region_boxes
from .registration import Registration, RegistrationError, apply_gain, register_apex, registered_transform

logger = logging.getLogger(__name__)

Status = Literal["aligned", "template", "no_face", "bad_image", "unregistered"]
LandmarkerChoice = Union[LandmarkBackend, Literal["auto"], None]

#: Faces whose eyes are closer than this (pixels of the frame) hold too little detail for micro-movements: refused.
MIN_INTEROCULAR_PX = 20.0


@dataclass
class PreparedPair:
    """One sample after the face pipeline.

    ``status`` is ``"aligned"`` (landmarks found, regions placed on this face), ``"template"`` (frames taken as aligned
    crops, canonical regions), ``"no_face"``, ``"bad_image"`` or ``"unregistered"`` (the apex could not be put onto the
    onset: the head moved or turned; :mod:`.registration`); the crops and regions are then ``None`` and ``message``
    says why. ``registration`` says how the apex was registered onto the onset (usable samples).
    """

    name: str
    status: Status
    onset: np.ndarray | None = None  # (S, S, 3) uint8 RGB aligned crop
    apex: np.ndarray | None = None
    region_boxes: list[list[Box]] | None = None  # per AU, boxes in crop units
    region_weights: torch.Tensor | None = None  # (K, N) over the vision tower's patch grid
    landmarks: dict[str, tuple[float, float]] | None = None  # onset landmarks, crop pixels ("aligned" only)
    num_faces: int = 0
    message: str = ""
    registration: Registration | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("aligned", "template")


class FaceFinder:
    """The face of a frame: a landmark backend, a cache of what it found, and the checks a usable face passes.

    Args:
        landmarker: the backend that finds the face.
        face_cache: detections by frame content; the backend runs only for frames it does not hold (and what it
            finds, or why it finds nothing, is added).
    """

    def __init__(self, landmarker: LandmarkBackend, face_cache: FaceCache | None = None):
        if face_cache is not None and face_cache.backend != landmarker.name:
            raise ValueError(f"a {face_cache.backend!r} face cache cannot serve the {landmarker.name!r} backend")
        self.landmarker = landmarker
        self.face_cache = face_cache

    def find(self, frame: np.ndarray, label: str) -> Face:
        """The face in ``frame``; :class:`NoFaceError` naming ``label`` when there is none, when it is upside down
        (:func:`~microau_hf.face.landmarks.upside_down`), or when it is too small to show micro-movements."""
        key = frame_key(frame) if self.face_cache is not None else ""
        found = self.face_cache.get(key) if self.face_cache is not None else None
        if found is None:
            try:
                found = self.landmarker.detect(frame, name=label)
                # An upside-down face aligns "fine" and gives confident nonsense; cached as a refusal, so asked once.
                found = NoFace(reason) if (reason := upside_down(found, frame, self.landmarker)) else found
            except NoFaceError as err:
                found = NoFace(str(err).removeprefix(f"{label}: "))
            if self.face_cache is not None:
                self.face_cache.put(key, found)
        if isinstance(found, NoFace):
            raise NoFaceError(f"{label}: {found.reason}")
        distance = interocular(found.semantic)
        if distance < MIN_INTEROCULAR_PX:
            raise NoFaceError(f"{label}: face too small (eyes {distance:.0f} px apart; at least "
                              f"{MIN_INTEROCULAR_PX:.0f} px needed)")
        return found


class FacePreparer:
    """Aligns onset/apex pairs on the onset's face and places the AU regions on it.

    Args:
        aus: the AU numbers, in the model's order.
        image_size: side of the aligned crops (the vision tower's image size).
        patch_size: the vision tower's patch size (the region weights are over ``image_size // patch_size`` squared).
        landmarker: ``"auto"`` (MediaPipe when installed, else the canonical template with a warning), a
            :class:`LandmarkBackend`, or ``None`` for frames that are already aligned crops (canonical template).
        face_cache: detections by frame content (:class:`~microau_hf.face.cache.FaceCache`); the landmark backend
            runs only for onset frames it does not hold. Training keeps one beside the dataset; inference needs none.

    Every consumer (the training collator, evaluation, predict, the pipeline, video, the Space) turns frames into
    model inputs through :meth:`prepare` and :func:`model_inputs`, so what the model is trained on and what it is
    asked about are made the same way.
    """

    def __init__(
        self,
        aus: Sequence[int],
        image_size: int = DEFAULT_CROP_SIZE,
        patch_size: int = 16,
        landmarker: LandmarkerChoice = "auto",
        face_cache: FaceCache | None = None,
    ):
        if image_size % patch_size:
            raise ValueError(f"image_size ({image_size}) must be a multiple of patch_size ({patch_size})")
        self.aus = [int(a) for a in aus]
        self.image_size = int(image_size)
        self.grid_size = image_size // patch_size
        self.landmarker = load_landmarker() if landmarker == "auto" else landmarker
        self.template_reason = ""
        if self.landmarker is None:
            asked_for_none = landmarker is None
            self.template_reason = "landmarks off, frames taken as aligned" if asked_for_none else "no landmark backend"
        self.finder = FaceFinder(self.landmarker, face_cache) if self.landmarker is not None else None
        self._template_boxes = template_region_boxes(self.aus)
        self._template_weights = region_weights(self._template_boxes, self.grid_size)

    @classmethod
    def from_config(
        cls, config: Any, landmarker: LandmarkerChoice = "auto", face_cache: FaceCache | None = None
    ) -> FacePreparer:
        """A preparer matching a :class:`~microau_hf.MicroAUClipConfig` (AU list, image and patch size)."""
        vision = config.vision_config
        return cls(config.aus, vision.image_size, vision.patch_size, landmarker, face_cache)

    @property
    def uses_template(self) -> bool:
        """True when every sample gets the canonical template regions (no landmark backend)."""
        return self.landmarker is None

    def prepare(self, onset: ImageSource, apex: ImageSource, name: str | None = None) -> PreparedPair:
        """One sample; raises :class:`ImageLoadError`, :class:`NoFaceError` or :class:`RegistrationError` (one line
        naming the item).

        Both frames are aligned with the onset's transform, then the apex is registered onto the onset on the part of
        the face that did not move (:mod:`.registration`), so that head drift between the frames does not reach the
        model as movement.
        """
        label = name or describe(onset)
        first, second = load_pair(onset, apex, name)
        if self.landmarker is None:
            return self._template_pair(first, second, label)
        face = self.finder.find(first, f"{label} onset" if name else label)
        aligned = align_pair(first, second, face, self.image_size)
        landmarks = aligned.normalised_landmarks()
        registration = register_apex(first, second, aligned.transform, self.image_size, aligned.points, landmarks,
                                     label)
        apex_crop = warp(second, registered_transform(aligned.transform, registration), self.image_size)
        boxes = landmark_region_boxes(landmarks, self.aus)
        message = f"{face.num_faces} faces found; took the largest" if face.num_faces > 1 else ""
        return PreparedPair(
            name=label,
            status="aligned",
            onset=aligned.onset,
            apex=apply_gain(apex_crop, registration.gain),
            region_boxes=boxes,
            region_weights=region_weights(boxes, self.grid_size),
            landmarks=aligned.landmarks,
            num_faces=face.num_faces,
            message=message,
            registration=registration,
            extra={"transform": aligned.transform, "face_box": face.box, "score": face.score},
        )

    def prepare_batch(
        self, pairs: Iterable[tuple[ImageSource, ImageSource]], names: Sequence[str] | None = None
    ) -> list[PreparedPair]:
        """Many samples; an unreadable frame or a frame without a face gets a status and a message, not an exception."""
        results = []
        for i, (onset, apex) in enumerate(pairs):
            name = names[i] if names is not None else f"item {i}"
            try:
                results.append(self.prepare(onset, apex, name))
            except ImageLoadError as err:
                results.append(PreparedPair(name, "bad_image", message=str(err)))
            except NoFaceError as err:
                results.append(PreparedPair(name, "no_face", message=str(err)))
            except RegistrationError as err:
                results.append(PreparedPair(name, "unregistered", message=str(err)))
        failed = [r for r in results if not r.ok]
        if failed:  # each item says why; callers report them (the CLI lists every one)
            logger.info("%d of %d samples unusable, first: %s", len(failed), len(results), failed[0].message)
        return results

    def _template_pair(self, onset: np.ndarray, apex: np.ndarray, label: str) -> PreparedPair:
        size = (self.image_size, self.image_size)
        # Bicubic, as the CLIP image processor resizes, so resizing here or there gives the same pixels.
        crops = [np.asarray(Image.fromarray(frame).resize(size, Image.BICUBIC)) for frame in (onset, apex)]
        message = f"canonical template regions ({self.template_reason})"
        registration = self._register_template(onset, apex, label)
        if registration is None:
            message += "; apex not registered onto the onset (OpenCV is not installed)"
        else:  # the crops are resized frames: the registration resamples the apex crop (bicubic, as above)
            moved = warp(crops[1], registered_transform(np.eye(2, 3), registration), self.image_size, cubic=True)
            crops[1] = apply_gain(moved, registration.gain)
        return PreparedPair(
            name=label,
            status="template",
            onset=crops[0],
            apex=crops[1],
            region_boxes=[list(boxes) for boxes in self._template_boxes],
            region_weights=self._template_weights.clone(),
            message=message,
            registration=registration,
        )

    def _register_template(self, onset: np.ndarray, apex: np.ndarray, label: str) -> Registration | None:
        """The registration of a pre-aligned pair on the canonical face; ``None`` without OpenCV (an install without
        the face extra), whose pairs are then scored as given."""
        try:
            import cv2  # noqa: F401
        except ImportError:
            return None
        height, width = onset.shape[:2]
        to_crop = np.array([[self.image_size / width, 0, 0], [0, self.image_size / height, 0]])
        outline = np.array(list(CANONICAL_LANDMARKS.values())) * self.image_size
        return register_apex(onset, apex, to_crop, self.image_size, outline, CANONICAL_LANDMARKS, label)


def build_processor(config: Any) -> MicroAUClipProcessor:
    """A fresh :class:`MicroAUClipProcessor` for a config, built offline from the bundled CLIP vocabulary.

    The image processor keeps the whole crop (no centre crop), so the region boxes stay where the face pipeline put
    them; the template boxes come from the config, or from the AU catalogue if the config has none.
    """
    vision = config.vision_config
    size = {"height": vision.image_size, "width": vision.image_size}
    image_processor = CLIPImageProcessorPil(size=size, do_center_crop=False, crop_size=size)
    boxes = getattr(config, "au_template_boxes", None) or template_region_boxes(config.aus)
    return MicroAUClipProcessor(
        image_processor,
        load_clip_tokenizer(),
        au_template_boxes=boxes,
        patch_size=vision.patch_size,
        aus=list(config.aus),
    )


def model_inputs(processor: MicroAUClipProcessor, prepared: Sequence[PreparedPair]) -> BatchFeature:
    """The processor's tensors for the usable samples of ``prepared``, in order: ``[p for p in prepared if p.ok]``."""
    usable = [p for p in prepared if p.ok]
    if not usable:
        raise ValueError("no usable sample in the batch: " + "; ".join(p.message for p in prepared[:3]))
    return processor(
        onset=[p.onset for p in usable],
        apex=[p.apex for p in usable],
        region_boxes=[p.region_boxes for p in usable],
    )


__all__ = ["FaceFinder", "FacePreparer", "MIN_INTEROCULAR_PX", "PreparedPair", "build_processor", "model_inputs"]
