"""Frames the tool must not read silently wrong: a frame of another size in a frame folder, a phone video's rotation,
an upside-down face, a frame rate no camera records, a damaged apex, and arrays the pipeline cannot take."""

from __future__ import annotations

import math
import struct

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from microau_hf.inference import MicroAUPredictor
from microau_hf.video import iter_frames, probe_video, write_video
from test_bad_inputs import one_line_error

#: The astronaut's face, upright, 320 high and 240 wide (portrait, so a turn shows in the shape too).
FACE = np.ascontiguousarray(data.astronaut()[:320, 104:344])
#: A tight crop of the same face: MediaPipe's mesh fits it without the detector, upright or not.
TIGHT_FACE = np.ascontiguousarray(data.astronaut()[30:230, 120:330])


def with_display_rotation(path, degrees: int) -> None:
    """Set an MP4's display matrix (track header) to turn the frames by ``degrees``, as a phone does for a portrait
    video. Neither PyAV nor an ffmpeg binary is installed here to write it, so the 36 bytes of the ``tkhd`` box's
    matrix are written in place (version-0 box: 8 bytes of box header, 20 of times and ids, 16 reserved/layer/volume)."""
    content = bytearray(path.read_bytes())
    box = content.find(b"tkhd") - 4
    assert box >= 0 and content[box + 8] == 0, "a version-0 track header"
    cos, sin = round(math.cos(math.radians(degrees))), round(math.sin(math.radians(degrees)))
    start = box + 8 + 4 + 20 + 16
    content[start:start + 36] = struct.pack(">9i", cos << 16, sin << 16, 0, -sin << 16, cos << 16, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(content))


def test_a_phone_video_is_turned_upright_as_its_header_says(tmp_path):
    sideways = cv2.rotate(FACE, cv2.ROTATE_90_CLOCKWISE)  # the sensor's landscape frames of a portrait video
    plain = write_video(tmp_path / "plain.mp4", [sideways] * 5, fps=25, codec="mp4v")
    phone = tmp_path / "phone.mp4"
    phone.write_bytes(plain.read_bytes())
    with_display_rotation(phone, 270)  # "turn a quarter counter-clockwise to show"
    info = probe_video(phone)
    assert (info.rotation, info.width, info.height) == (270, 240, 320)
    _, first = next(iter_frames(phone))
    assert first.shape == FACE.shape and np.abs(first.astype(int) - FACE).mean() < 10  # upright: the face as filmed
    assert probe_video(plain).rotation == 0 and next(iter_frames(plain))[1].shape == sideways.shape


@pytest.mark.parametrize("odd", [10, 0])
def test_a_frame_of_another_size_in_a_frame_folder_is_marked_and_never_used(checkpoint, tmp_path, odd):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(40):
        frame = Image.fromarray(FACE)
        frame = frame.resize((200, 267)) if index == odd else frame  # a stray frame, resized
        frame.save(folder / f"f{index:04d}.png")
    predictor = MicroAUPredictor.from_pretrained(checkpoint, device="cpu", landmarker=None)
    result = predictor.predict_video(folder, fps=25)
    assert result.face_status[odd] == "size_changed"  # also when the odd frame comes first: most frames set the size
    assert [s for i, s in enumerate(result.face_status) if i != odd] == ["found"] * 39
    assert result.unusable_runs() == [{"status": "size_changed", "first_frame": odd, "last_frame": odd, "frames": 1}]
    assert all(odd not in (i.onset_frame, i.apex_frame) for i in result.intervals)


def test_an_upside_down_face_is_refused_not_aligned(checkpoint, tmp_path, capsys):
    upright, upside_down = tmp_path / "upright.png", tmp_path / "upside_down.png"
    Image.fromarray(TIGHT_FACE).save(upright)
    Image.fromarray(np.ascontiguousarray(TIGHT_FACE[::-1, ::-1])).save(upside_down)
    predictor = MicroAUPredictor.from_pretrained(checkpoint, device="cpu")
    assert predictor.predict_pair(upright, upright).status == "aligned"
    err = one_line_error(["predict", "--model", str(checkpoint), "--onset", str(upside_down), "--apex",
                          str(upside_down)], capsys)
    assert "the face is upside down" in err and "turn the frames upright" in err


def test_a_frame_rate_no_camera_records_is_refused_in_one_line(checkpoint, tmp_path, capsys):
    slow = write_video(tmp_path / "slow.avi", [FACE] * 10, fps=0.01, codec="MJPG")  # a broken header
    err = one_line_error(["predict", "--model", str(checkpoint), "--video", str(slow)], capsys)
    assert f"{slow}: its header's frame rate, 0.01 fps, is not one a camera records (5-1000 fps)" in err
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(10):
        Image.fromarray(FACE).save(folder / f"{index}.png")
    err = one_line_error(["predict", "--model", str(checkpoint), "--video", str(folder), "--fps", "10000"], capsys)
    assert f"{folder}: the frame rate given, 10000 fps, is not one a camera records" in err


def test_a_damaged_apex_is_reported_under_its_own_name(checkpoint, tmp_path, capsys):
    onset, apex = tmp_path / "onset.png", tmp_path / "apex.png"
    Image.fromarray(FACE).save(onset)
    whole = onset.read_bytes()
    apex.write_bytes(whole[: len(whole) // 3])  # a download cut short
    err = one_line_error(["predict", "--model", str(checkpoint), "--onset", str(onset), "--apex", str(apex)], capsys)
    assert f"{apex}: cannot read the image" in err and str(onset) not in err


def test_the_pipeline_refuses_a_channels_first_array_and_an_empty_list(checkpoint):
    from transformers import pipeline

    detect = pipeline("micro-au-detection", model=str(checkpoint), device="cpu", landmarker=None)
    channels_first = np.ascontiguousarray(FACE.transpose(2, 0, 1))
    with pytest.raises(ValueError, match=r"shape \(3, 320, 240\) looks channels-first; give \(H, W, 3\)"):
        detect((channels_first, channels_first))
    for empty in ([], ()):
        with pytest.raises(ValueError, match="an empty (list|tuple); give a pair"):
            detect(empty)
    assert detect((FACE, FACE))["status"] == "template"


def test_evaluate_on_one_subject_names_the_folder(tiny_corpus, tmp_path, capsys):
    corpus, _ = tiny_corpus
    one = corpus.filter(lambda subject: subject == corpus[0]["subject"], input_columns="subject")
    one.save_to_disk(tmp_path / "one_subject")
    err = one_line_error(["evaluate", "--data", str(tmp_path / "one_subject"), "--output-dir", str(tmp_path / "out"),
                          "--aus", "samm", "--preset", "test", "--pre-aligned"], capsys)
    assert f"{tmp_path / 'one_subject'}: the subject protocol needs at least 2 subjects" in err
