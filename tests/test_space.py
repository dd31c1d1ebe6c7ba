"""The Gradio Space, end to end: a real server on 127.0.0.1, driven through ``gradio_client`` and through a real
headless Chromium (Playwright), on a tiny random checkpoint.

One server serves the whole module (building it loads the model and MediaPipe once, ~5 s). The browser test needs
Debian's Chromium at /usr/bin/chromium (``apt-get install -y chromium``) and the ``playwright`` Python package; it never
downloads a browser. With ``MICROAU_UPDATE_SCREENSHOT=1`` the server runs the ``tiny`` preset (112 px crops, so the
face reads in the picture) and the screenshot is written to ``docs/space_screenshot.png``; set to a checkpoint folder
(the quickstart's), that trained model serves the picture; otherwise the ``test`` preset and a temporary file.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from microau_hf import MicroAUClipModel, make_config
from microau_hf.face import build_processor

REPO = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO / "spaces_app"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT_ENV = "MICROAU_UPDATE_SCREENSHOT"
MAX_VIDEO_SECONDS = 2.0  # the example video lasts 1.2 s; the "too long" one 3 s
# Chromium on a closed network: without these it keeps trying to reach Google's services (see the machine notes).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    sys.path.insert(0, str(SPACE_DIR))  # as on the Hub and in `microau space`: app.py imports its sibling modules
    try:
        app = importlib.import_module("app")
        screenshot_model = os.environ.get(SCREENSHOT_ENV, "")
        if screenshot_model not in ("", "1"):  # a trained checkpoint for the docs' picture, e.g. the quickstart's
            checkpoint = Path(screenshot_model)
            config = MicroAUClipModel.config_class.from_pretrained(checkpoint)
        else:
            preset = "tiny" if screenshot_model == "1" else "test"
            checkpoint = tmp_path_factory.mktemp(f"micro-au-clip-{preset}-random", numbered=False)  # named on the page
            config = make_config("casme2", preset=preset)
            torch.manual_seed(0)  # the same random model, so the same picture, run after run
            MicroAUClipModel(config).save_pretrained(checkpoint)
            build_processor(config).save_pretrained(checkpoint)
        demo = app.build_demo(str(checkpoint), max_video_seconds=MAX_VIDEO_SECONDS)
        port = _free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    **app.LAUNCH_OPTIONS)
        url = f"http://127.0.0.1:{port}/"
        try:
            yield SimpleNamespace(app=app, demo=demo, url=url, aus=list(config.aus), client=Client(url, verbose=False))
        finally:
            demo.close()
    finally:
        sys.path.remove(str(SPACE_DIR))


@pytest.fixture(scope="module")
def example_pair(space) -> tuple[str, str]:
    pairs, _, _ = space.app.load_examples()
    return pairs[1][0], pairs[1][1]


def _predict_pair(space, onset, apex) -> tuple:
    return space.client.predict(handle_file(str(onset)), handle_file(str(apex)), api_name="/predict_pair")


def _check_result(result: tuple, aus: list[int]) -> None:
    bars, heat, motion, emotion, scores, status = result
    scored = {s["au"]: s["score"] for s in scores["aus"]}
    assert sorted(scored) == sorted(aus)  # every AU of the model, each with a probability
    assert all(0.0 <= p <= 1.0 for p in scored.values())
    assert [row[0] for row in bars["data"]] == [f"AU{a}" for a in aus]  # the bar plot, in the model's order
    assert emotion["label"] == scores["emotion"] and emotion["confidences"]
    assert "AUs present" in status
    for picture in (heat, motion):
        with Image.open(picture) as image:
            assert image.size[0] >= 256  # enlarged for display, whatever the crop size


def _write_video(path: Path, frames: int, fps: float, size: int = 64) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
    for i in range(frames):
        writer.write(np.full((size, size, 3), 100 + i % 50, np.uint8))
    writer.release()
    return path


def test_pair_end_to_end(space, example_pair):
    _check_result(_predict_pair(space, *example_pair), space.aus)


def test_video_end_to_end(space):
    _, _, videos = space.app.load_examples()
    result = space.client.predict(handle_file(videos[0]), api_name="/predict_video")
    _check_result(result, space.aus)
    assert "apex (largest motion): frame" in result[5]


def test_bad_inputs_are_refused_and_the_space_keeps_serving(space, example_pair, tmp_path):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are notes, not pixels")
    grey = tmp_path / "grey.png"
    Image.new("RGB", (128, 128), (128, 128, 128)).save(grey)
    long_video = _write_video(tmp_path / "long.avi", frames=30, fps=10)  # 3 s
    not_a_video = tmp_path / "clip.mp4"
    not_a_video.write_text("not a video")
    huge = tmp_path / "huge.png"
    Image.new("L", (8000, 8000)).save(huge)  # 64 MP in a small file: the pixel cap, not the upload size, refuses it

    cases = [
        ("/predict_pair", (not_an_image, example_pair[1]), "notes.png"),
        ("/predict_pair", (grey, grey), "No face found"),
        ("/predict_pair", (huge, huge), "25 MP limit"),
        ("/predict_video", (long_video,), "lasts 3.0 s"),
        ("/predict_video", (not_a_video,), "cannot open the video"),
    ]
    for api_name, files, expected in cases:
        with pytest.raises(AppError) as refused:
            space.client.predict(*(handle_file(str(f)) for f in files), api_name=api_name)
        assert expected in str(refused.value)
        assert str(tmp_path) not in str(refused.value)  # the visitor's file name, never the server's paths
    _check_result(_predict_pair(space, *example_pair), space.aus)


def test_upload_size_and_queue_are_bounded(space):
    import httpx
    from gradio.utils import _parse_file_size

    assert space.demo._queue.max_size == space.app.QUEUE_SIZE
    limit = _parse_file_size(space.app.MAX_FILE_SIZE)
    # Straight to the upload route: gradio_client checks the size itself, so only a raw request shows the server's bound.
    upload = space.url + "gradio_api/upload"
    refused = httpx.post(upload, files={"files": ("huge.png", b"\0" * (limit + 1), "image/png")}, timeout=60)
    assert refused.status_code == 413, refused.text
    accepted = httpx.post(upload, files={"files": ("small.png", b"\0" * 1024, "image/png")}, timeout=60)
    assert accepted.status_code == 200, accepted.text


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
def test_browser_example_to_result(space, tmp_path):
    from playwright.sync_api import sync_playwright

    _, labels, _ = space.app.load_examples()
    grey = tmp_path / "grey.png"
    Image.new("RGB", (128, 128), (128, 128, 128)).save(grey)
    screenshot = REPO / "docs" / "space_screenshot.png" if os.environ.get(SCREENSHOT_ENV) else (
        tmp_path / "space_screenshot.png")
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 1000},
        )
        try:
            page = browser.new_page()
            page.goto(space.url, wait_until="networkidle")
            # A refused upload: the message shows on the page, and the page goes on working.
            for upload in page.locator("input[type=file]").all()[:2]:  # onset, apex
                upload.set_input_files(str(grey))
            page.locator("img[src*='grey']").nth(1).wait_for(timeout=10_000)
            page.get_by_role("button", name="Detect AUs", exact=True).click()
            page.get_by_text("No face found").first.wait_for(timeout=30_000)
            page.get_by_text(labels[1], exact=True).click()  # fills the onset and apex inputs
            subject = labels[1].split(":")[0]
            page.locator(f"img[src*='{subject}']").first.wait_for(timeout=10_000)
            page.get_by_role("button", name="Detect AUs", exact=True).click()
            status = page.locator("#status")
            status.get_by_text("AUs present").wait_for(timeout=30_000)
            emotion = status.inner_text().split("Emotion estimate:")[1].splitlines()[0].strip()
            assert emotion in page.locator("#emotion").inner_text()
            bars = page.locator("#au-bars svg").first
            bars.get_by_text("probability").wait_for(timeout=10_000)
            axis_text = bars.text_content()
            assert all(f"AU{a}" in axis_text for a in space.aus), axis_text
            for close in page.get_by_role("button", name="Close").all():  # the error toast, out of the picture
                if close.is_visible():
                    close.click()
            page.wait_for_timeout(500)  # let the result images finish decoding before the picture
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
