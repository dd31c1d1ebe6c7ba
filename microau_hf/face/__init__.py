"""The face pipeline: frames in, aligned onset/apex crops and AU region weights out.

``io`` loads frames robustly, ``landmarks`` finds the face (MediaPipe, imported only when used), ``align`` warps both
frames with the onset's transform, ``regions`` places each AU's region and turns it into patch weights, ``pipeline``
ties them together and hands the result to :class:`~microau_hf.processing_micro_au_clip.MicroAUClipProcessor`, and
``draw`` pictures the regions.
"""

from .align import AlignedPair, align_pair, similarity_transform
from .cache import FaceCache, frame_key
from .io import ImageLoadError, load_image, load_pair
from .landmarks import BackendUnavailableError, Face, LandmarkBackend, MediaPipeLandmarker, NoFaceError, load_landmarker
from .pipeline import FaceFinder, FacePreparer, PreparedPair, build_processor, model_inputs
from .regions import landmark_region_boxes, region_weights, template_region_boxes

__all__ = [
    "AlignedPair",
    "BackendUnavailableError",
    "Face",
    "FaceCache",
    "FaceFinder",
    "FacePreparer",
    "ImageLoadError",
    "LandmarkBackend",
    "MediaPipeLandmarker",
    "NoFaceError",
    "PreparedPair",
    "align_pair",
    "frame_key",
    "build_processor",
    "landmark_region_boxes",
    "load_image",
    "load_landmarker",
    "load_pair",
    "model_inputs",
    "region_weights",
    "similarity_transform",
    "template_region_boxes",
]
