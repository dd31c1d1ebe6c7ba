"""MicroAUClipProcessor: shapes, CLIP normalisation, grayscale, batching, region weights, save/load offline, tokens."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from transformers import AutoProcessor
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

import microau_hf
import microau_hf.processing_micro_au_clip as processing_module
from microau_hf.face import build_processor
from microau_hf.modeling_micro_au_clip import region_boxes_to_patch_weights
from microau_hf.processing_micro_au_clip import MicroAUClipProcessor

SIZE, PATCH, GRID = 32, 8, 4  # the "test" preset's vision tower


@pytest.fixture(scope="module")
def config():
    return microau_hf.make_config("casme2", preset="test")


@pytest.fixture(scope="module")
def processor(config) -> MicroAUClipProcessor:
    return build_processor(config)


@pytest.fixture(scope="module")
def frames() -> tuple[np.ndarray, np.ndarray]:
    astronaut = data.astronaut()
    return astronaut[40:220, 140:320], astronaut[44:224, 140:320]  # onset, and an apex moved 4 px


def test_shapes_for_one_pair(processor, config, frames):
    out = processor(onset=frames[0], apex=frames[1])
    assert set(out) == {"onset_pixel_values", "apex_pixel_values", "au_region_weights"}
    assert out["onset_pixel_values"].shape == out["apex_pixel_values"].shape == (1, 3, SIZE, SIZE)
    assert out["onset_pixel_values"].dtype == torch.float32
    assert out["au_region_weights"].shape == (1, len(config.aus), GRID * GRID)
    assert processor.grid_size == config.grid_size


def test_clip_normalisation(processor):
    colour = np.array([255, 128, 0], np.uint8)
    flat = np.broadcast_to(colour, (40, 40, 3)).copy()
    pixels = processor(onset=flat, apex=flat)["onset_pixel_values"][0]
    expected = (colour / 255.0 - np.array(OPENAI_CLIP_MEAN)) / np.array(OPENAI_CLIP_STD)
    assert torch.allclose(pixels.mean(dim=(1, 2)), torch.tensor(expected, dtype=torch.float32), atol=1e-5)
    assert torch.allclose(pixels.std(dim=(1, 2)), torch.zeros(3), atol=1e-5)


def test_grayscale_equals_the_same_picture_in_rgb(processor, frames):
    grey = np.asarray(Image.fromarray(frames[0]).convert("L"))
    as_rgb = np.repeat(grey[..., None], 3, axis=2)
    from_grey = processor(onset=grey, apex=Image.fromarray(grey))
    from_rgb = processor(onset=as_rgb, apex=as_rgb)
    assert torch.equal(from_grey["onset_pixel_values"], from_rgb["onset_pixel_values"])
    assert torch.equal(from_grey["apex_pixel_values"], from_rgb["apex_pixel_values"])


def test_paths_pil_and_arrays_give_the_same_pixels(processor, frames, tmp_path):
    path = tmp_path / "onset.png"
    Image.fromarray(frames[0]).save(path)
    by_array = processor(onset=frames[0], apex=frames[1])["onset_pixel_values"]
    assert torch.equal(processor(onset=str(path), apex=frames[1])["onset_pixel_values"], by_array)
    assert torch.equal(processor(onset=Image.open(path), apex=frames[1])["onset_pixel_values"], by_array)


def test_batch_equals_singles(processor, frames):
    onset, apex = frames
    batch = processor(onset=[onset, apex], apex=[apex, onset])
    assert batch["onset_pixel_values"].shape[0] == 2 and batch["au_region_weights"].shape[0] == 2
    for i, (first, second) in enumerate([(onset, apex), (apex, onset)]):
        single = processor(onset=first, apex=second)
        for key in single:
            assert torch.equal(batch[key][i], single[key][0]), key


def test_region_weights_from_boxes_or_the_template(processor, config, frames):
    onset, apex = frames
    default = processor(onset=onset, apex=apex)["au_region_weights"][0]
    assert torch.equal(default, region_boxes_to_patch_weights(config.au_template_boxes, GRID))
    own = [[[0.0, 0.0, 0.5, 0.5]]] + [[[0.5, 0.5, 1.0, 1.0]]] * (len(config.aus) - 1)
    single = processor(onset=onset, apex=apex, region_boxes=own)["au_region_weights"][0]
    assert torch.equal(single, region_boxes_to_patch_weights(own, GRID))
    assert single[0].reshape(GRID, GRID)[:2, :2].eq(1).all() and single[0].sum() == 4
    mixed = processor(onset=[onset, onset], apex=[apex, apex], region_boxes=[own, None])["au_region_weights"]
    assert torch.equal(mixed[0], single) and torch.equal(mixed[1], default)
    assert torch.all((mixed >= 0) & (mixed <= 1))


def test_inconsistent_inputs_are_refused(processor, frames):
    onset, apex = frames
    with pytest.raises(ValueError, match="2 onset frames but 1 apex frames"):
        processor(onset=[onset, onset], apex=[apex])
    with pytest.raises(ValueError, match="pair 0: onset is 180x180 but apex is 90x90"):
        processor(onset=onset, apex=apex[::2, ::2])
    with pytest.raises(ValueError, match="region boxes for 1 AUs"):
        processor(onset=onset, apex=apex, region_boxes=[[[0, 0, 1, 1]]])
    with pytest.raises(ValueError, match="both the onset and the apex"):
        processor(onset=onset)


def test_clip_tokenizer_ids(processor):
    out = processor(text="a photo of a cat")
    assert out["input_ids"][0].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    black = np.zeros((64, 64, 3), np.uint8)
    both = processor(text=["a photo of a cat", "a face"], onset=black, apex=black)
    assert both["input_ids"].shape == both["attention_mask"].shape == (2, 7)
    assert both["onset_pixel_values"].shape[0] == 1


def _outputs(processor, frames) -> dict:
    own = [[[0.1, 0.2, 0.6, 0.7]]] * 8
    out = processor(onset=list(frames), apex=list(frames[::-1]), region_boxes=[own, None], text=["a photo of a cat"])
    return dict(out)


def test_save_and_reload_offline_with_remote_code(processor, frames, tmp_path):
    processor.save_pretrained(tmp_path)
    saved = {p.name for p in tmp_path.iterdir()}
    assert {"processor_config.json", "processing_micro_au_clip.py", "modeling_micro_au_clip.py"} <= saved
    reloaded = AutoProcessor.from_pretrained(tmp_path, trust_remote_code=True, local_files_only=True)
    assert type(reloaded).__name__ == "MicroAUClipProcessor"
    assert reloaded.au_template_boxes == processor.au_template_boxes and reloaded.aus == processor.aus
    expected, got = _outputs(processor, frames), _outputs(reloaded, frames)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def test_save_and_reload_with_the_registered_class(processor, frames, tmp_path):
    from transformers.models.auto.processing_auto import processor_class_from_name

    if processor_class_from_name("MicroAUClipProcessor") is None:
        pytest.skip("MicroAUClipProcessor is not registered with AutoProcessor in microau_hf/__init__.py yet")
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path, local_files_only=True)
    assert type(reloaded) is MicroAUClipProcessor
    expected, got = _outputs(processor, frames), _outputs(reloaded, frames)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def test_remote_file_imports_only_what_the_hub_copy_has():
    allowed = {"transformers", "torch", "numpy", "PIL", *sys.stdlib_module_names}
    siblings = {"configuration_micro_au_clip", "modeling_micro_au_clip"}
    tree = ast.parse(Path(processing_module.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = {alias.name.split(".")[0] for alias in node.names}
            assert roots <= allowed, roots
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                assert node.level == 1 and node.module in siblings, node.module
            else:
                assert node.module.split(".")[0] in allowed, node.module
