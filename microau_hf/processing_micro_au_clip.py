"""The Micro-AU CLIP processor: aligned onset/apex crops and AU regions in, model inputs out.

Remote code: this file is copied to the Hub beside the weights, so it imports only its sibling files, transformers,
torch, numpy, PIL and the standard library. It does not find or align faces: give it crops that are already aligned
(``microau_hf.face`` does that, and hands over per-sample region boxes), or pre-aligned corpus crops, for which the
canonical template boxes it was built with stand in for landmarks.

One call returns:

* ``onset_pixel_values``, ``apex_pixel_values``: ``(B, 3, H, W)`` float, resized to the vision tower's size and
  normalised with CLIP's mean and std;
* ``au_region_weights``: ``(B, K, N)``, per AU the fraction of each of the ``N = (H / patch) ** 2`` patch cells its
  region covers;
* with ``text=``, the CLIP tokenizer's ``input_ids`` and ``attention_mask``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import torch
from PIL import Image, ImageOps
from transformers import BatchFeature, ProcessorMixin

from .modeling_micro_au_clip import region_boxes_to_patch_weights

ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray]
Boxes = Sequence[Sequence[Sequence[float]]]  # per AU, a list of [x0, y0, x1, y1] in the crop (0..1)

# 16-bit frames (I;16 PNG/TIFF) are scaled by a fixed factor, never stretched to their own range: a per-frame stretch
# would give onset and apex different gains and show up as motion in their difference.
_UINT16_TO_UINT8 = 1.0 / 257.0


def to_rgb_array(image: ImageInput) -> np.ndarray:
    """Any supported image as an ``(H, W, 3)`` uint8 RGB array.

    Paths are opened with PIL; EXIF rotation is applied; grayscale, palette, CMYK, alpha (composited on white, as
    transformers does), 16-bit and float inputs are converted. Raises ``ValueError`` (or PIL's ``OSError``) when an
    image cannot be read or has a layout this function does not know.
    """
    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as opened:
            opened.load()  # decode now, so a truncated file fails here and not later
            return _pil_to_rgb(opened)
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image)
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image)
    raise ValueError(f"expected a path, a PIL image or a numpy array, got {type(image).__name__}")


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _array_to_rgb(np.asarray(image))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("RGB"))


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] == 4:
        rgb, alpha = _to_uint8(array[..., :3]).astype(np.float32), _to_uint8(array[..., 3:]).astype(np.float32) / 255
        return np.round(rgb * alpha + 255 * (1 - alpha)).astype(np.uint8)
    if array.ndim == 2:
        return np.repeat(_to_uint8(array)[..., None], 3, axis=-1)
    if array.ndim == 3 and array.shape[-1] == 3:
        return np.ascontiguousarray(_to_uint8(array))
    raise ValueError(f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image array, got shape {array.shape}")


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        # Floats in [0, 1] are the usual convention; anything larger is taken to be on the 0..255 scale already.
        scale = 255.0 if array.size and float(np.nanmax(array)) <= 1.0 else 1.0
        return np.clip(np.nan_to_num(array) * scale, 0, 255).round().astype(np.uint8)
    if array.dtype == np.uint16 or (np.issubdtype(array.dtype, np.integer) and array.size and int(array.max()) > 255):
        # uint16 is 16-bit by its type; wider integer arrays (PIL's "I" mode) are taken as 16-bit when they exceed 255.
        return np.clip(array * _UINT16_TO_UINT8, 0, 255).round().astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        return np.clip(array, 0, 255).astype(np.uint8)
    raise ValueError(f"unsupported image dtype {array.dtype}")


def _as_image_list(images: Any) -> list[ImageInput]:
    """One image or a batch of them as a list; a 4-D array is a batch, a 2-D or 3-D array one image."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images)
    if isinstance(images, (list, tuple)):
        return list(images)
    return [images]


def _is_one_sample(region_boxes: Sequence) -> bool:
    """True for one sample's boxes (``[[x0, y0, x1, y1], ...]`` per AU), False for a batch of them."""
    for boxes in region_boxes:
        if boxes is None:
            return False
        for box in boxes:
            if len(box):  # an AU whose boxes all fell outside the crop has an empty list; look further
                return not isinstance(box[0], (Sequence, np.ndarray, torch.Tensor))
    return True


class MicroAUClipProcessor(ProcessorMixin):
    r"""
    Turns aligned onset/apex face crops into Micro-AU CLIP inputs, and text into CLIP token ids.

    Args:
        image_processor ([`CLIPImageProcessor`]): resizes to the vision tower's size, rescales and normalises with
            CLIP's mean and std. Build it with `size={"height": S, "width": S}` and `do_center_crop=False`, so that the
            whole aligned crop, and with it every region box, reaches the model.
        tokenizer ([`CLIPTokenizer`]): the CLIP tokenizer.
        au_template_boxes (`list[list[list[float]]]`): per AU, the canonical region boxes `[x0, y0, x1, y1]` (0..1),
            used for samples given without their own region boxes.
        patch_size (`int`): the vision tower's patch size; the patch grid is `image size // patch_size` per side.
        aus (`list[int]`): the AU numbers, in the order of `au_template_boxes` and of the model's outputs.
    """

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        au_template_boxes: Sequence[Sequence[Sequence[float]]] | None = None,
        patch_size: int = 16,
        aus: Sequence[int] | None = None,
        **kwargs,
    ):
        self.au_template_boxes = [[[float(v) for v in box] for box in boxes] for boxes in (au_template_boxes or [])]
        self.patch_size = int(patch_size)
        self.aus = [int(a) for a in (aus or [])]
        if self.aus and self.au_template_boxes and len(self.aus) != len(self.au_template_boxes):
            raise ValueError(f"{len(self.au_template_boxes)} template box lists for {len(self.aus)} AUs")
        super().__init__(image_processor, tokenizer, **kwargs)

    @property
    def image_size(self) -> int:
        size = self.image_processor.size
        if size["height"] != size["width"]:
            raise ValueError(f"the vision tower takes square images, the image processor has size {dict(size)}")
        return int(size["height"])

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def model_input_names(self) -> list[str]:
        return ["onset_pixel_values", "apex_pixel_values", "au_region_weights", *self.tokenizer.model_input_names]

    def __call__(
        self,
        onset: ImageInput | Sequence[ImageInput] | None = None,
        apex: ImageInput | Sequence[ImageInput] | None = None,
        text: str | list[str] | None = None,
        region_boxes: Boxes | Sequence[Boxes | None] | None = None,
        return_tensors: str | None = "pt",
        **text_kwargs,
    ) -> BatchFeature:
        """Process onset/apex pairs (one pair or a batch), text, or both.

        Args:
            onset, apex: aligned crops (paths, PIL images or arrays; grayscale or RGB), one each or equally long lists.
            text: a prompt or a list of prompts for the CLIP tokenizer (padded to the longest unless `padding=` says
                otherwise; further keyword arguments go to the tokenizer).
            region_boxes: one sample's boxes (per AU a list of `[x0, y0, x1, y1]`), or a list with one entry per sample,
                where `None` takes the template boxes. Left out, every sample takes the template boxes.
            return_tensors: `"pt"`; text alone may also ask for `None` (lists) or `"np"`.
        """
        if onset is None and apex is None and text is None:
            raise ValueError("give onset and apex frames, text, or both")
        data: dict[str, Any] = {}
        if onset is not None or apex is not None:
            if return_tensors != "pt":
                raise ValueError(f"frames come as torch tensors: return_tensors must be 'pt', got {return_tensors!r}")
            data.update(self.process_frames(onset, apex, region_boxes))
        if text is not None:
            text_kwargs.setdefault("padding", True)
            data.update(self.tokenizer(text, return_tensors=return_tensors, **text_kwargs))
        return BatchFeature(data=data, tensor_type=return_tensors)

    def process_frames(
        self,
        onset: ImageInput | Sequence[ImageInput] | None,
        apex: ImageInput | Sequence[ImageInput] | None,
        region_boxes: Boxes | Sequence[Boxes | None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Pixel values of both frames and the AU region weights, batch first."""
        if onset is None or apex is None:
            raise ValueError("give both the onset and the apex frame")
        onsets, apexes = _as_image_list(onset), _as_image_list(apex)
        if len(onsets) != len(apexes):
            raise ValueError(f"{len(onsets)} onset frames but {len(apexes)} apex frames")
        frames = [to_rgb_array(image) for image in onsets + apexes]
        count = len(onsets)
        for i, (first, second) in enumerate(zip(frames[:count], frames[count:])):
            if first.shape != second.shape:
                (h0, w0), (h1, w1) = first.shape[:2], second.shape[:2]
                raise ValueError(f"pair {i}: onset is {w0}x{h0} but apex is {w1}x{h1}")
        pixels = self.image_processor([Image.fromarray(f) for f in frames], return_tensors="pt")["pixel_values"]
        return {
            "onset_pixel_values": pixels[:count],
            "apex_pixel_values": pixels[count:],
            "au_region_weights": self.region_weights(region_boxes, count),
        }

    def region_weights(self, region_boxes: Boxes | Sequence[Boxes | None] | None, batch_size: int) -> torch.Tensor:
        """``(batch_size, K, N)`` patch weights from per-sample boxes, the template standing in where none are given."""
        if region_boxes is None:
            per_sample: list = [None] * batch_size
        elif _is_one_sample(region_boxes):
            per_sample = [region_boxes]
        else:
            per_sample = list(region_boxes)
        if len(per_sample) != batch_size:
            raise ValueError(f"region boxes for {len(per_sample)} samples, but {batch_size} frame pairs")
        template = None
        weights = []
        for boxes in per_sample:
            if boxes is None:
                template = self._template_weights() if template is None else template
                weights.append(template)
            else:
                weights.append(self._weights(boxes))
        return torch.stack(weights)

    def _template_weights(self) -> torch.Tensor:
        if not self.au_template_boxes:
            raise ValueError("no region boxes given and this processor has no template boxes (au_template_boxes)")
        return self._weights(self.au_template_boxes)

    def _weights(self, boxes: Boxes) -> torch.Tensor:
        expected = len(self.au_template_boxes) or len(self.aus)
        if expected and len(boxes) != expected:
            raise ValueError(f"region boxes for {len(boxes)} AUs, but the processor has {expected}")
        boxes = [[[float(v) for v in box] for box in au_boxes] for au_boxes in boxes]
        return region_boxes_to_patch_weights(boxes, self.grid_size).to(torch.float32)


# Saving writes `auto_map` into processor_config.json and copies this file (and the files it imports) beside it, so
# `AutoProcessor.from_pretrained(folder, trust_remote_code=True)` works without this package installed.
MicroAUClipProcessor.register_for_auto_class()

__all__ = ["MicroAUClipProcessor", "to_rgb_array"]
