"""The Gradio Space, end to end: a real server on 127.0.0.1, driven through ``gradio_client`` and through a real
headless Chromium (Playwright), on a tiny random checkpoint that records synthetic training data.

One server serves the whole module (building it loads the model and MediaPipe once, ~5 s). The browser test needs
Debian's Chromium at /usr/bin/chromium (``apt-get install -y chromium``) and the ``playwright`` Python package; it never
downloads a browser. With ``MICROAU_UPDATE_SCREENSHOT=1`` the server runs the ``tiny`` preset (112 px crops, so the
face reads in the picture) and the screenshots are written to ``docs/space_screenshot.png`` (a pair's result) and
``docs/space_video_screenshot.png`` (the example video spotted); set to a checkpoint folder (the quickstart's), that
trained model serves the pictures; otherwise the ``test`` preset and temporary files.
"""

from __future__ import annotations

import importlib
import json
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
from datasets import Dataset
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from microau_hf import MicroAUClipModel, make_config
from microau_hf.checkpoints import write_training_data
from microau_hf.face import build_processor
from microau_hf.inference import Prediction
from microau_hf.results import SpottedInterval
from microau_hf.spotting.metrics import MEGC_IOU_THRESHOLD, Interval, interval_iou
from microau_hf.video import iter_frames, probe_video, write_video

REPO = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO / "spaces_app"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT_ENV = "MICROAU_UPDATE_SCREENSHOT"
MAX_VIDEO_SECONDS = 4.0  # the example video lasts 3 s; the "too long" one 5 s
# Chromium on a closed network: without these it keeps trying to reach Google's services (see the machine notes).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HAVE_CURRENT_DATA = 2  # HTMLMediaElement.readyState once a frame can be shown
AU_THRESHOLD = 0.5  # the predictor's default, which the Space keeps


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def figures():
    sys.path.insert(0, str(SPACE_DIR))  # as on the Hub and in `microau space`: app.py imports its sibling modules
    try:
        yield importlib.import_module("space_figures")
    finally:
        sys.path.remove(str(SPACE_DIR))


def _random_checkpoint(folder: Path, preset: str):
    config = make_config("casme2", preset=preset)
    torch.manual_seed(0)  # the same random model, so the same picture, run after run
    MicroAUClipModel(config).save_pretrained(folder)
    build_processor(config).save_pretrained(folder)
    write_training_data(folder, Dataset.from_dict({"dataset": ["synthetic"] * 3}))  # as the quickstart records it
    return config


@pytest.fixture(scope="module")
def space(tmp_path_factory, figures):
    sys.path.insert(0, str(SPACE_DIR))
    try:
        app = importlib.import_module("app")
        screenshot_model = os.environ.get(SCREENSHOT_ENV, "")
        if screenshot_model not in ("", "1"):  # a trained checkpoint for the docs' picture, e.g. the quickstart's
            checkpoint = Path(screenshot_model)
            config = MicroAUClipModel.config_class.from_pretrained(checkpoint)
        else:
            preset = "tiny" if screenshot_model == "1" else "test"
            checkpoint = tmp_path_factory.mktemp(f"micro-au-clip-{preset}-random", numbered=False)  # named on the page
            config = _random_checkpoint(checkpoint, preset)
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
    pairs = space.app.load_examples().pairs
    return pairs[1][0], pairs[1][1]


@pytest.fixture(scope="module")
def example_video(space) -> tuple[Path, dict]:
    """The example video and its manifest entry (frames, fps, the micro-movement's truth)."""
    manifest = json.loads((space.app.EXAMPLES_DIR / "examples.json").read_text())["video"]
    return Path(space.app.load_examples().videos[0]), manifest


@pytest.fixture(scope="module")
def mp4v_video(example_video, tmp_path_factory) -> Path:
    """The example video re-encoded the way OpenCV users write .mp4 files: MPEG-4 part 2, which browsers cannot play."""
    path = tmp_path_factory.mktemp("mp4v") / "smile_mp4v.mp4"
    return write_video(path, (frame for _, frame in iter_frames(example_video[0])), fps=25, codec="mp4v")


def _example_frames(example_video, first: int = 0, last: int | None = None) -> list[np.ndarray]:
    """Frames ``first..last`` (RGB) of the example video."""
    return [frame for _, frame in iter_frames(example_video[0])][first:None if last is None else last + 1]


def _predict_pair(space, onset, apex) -> tuple:
    return space.client.predict(handle_file(str(onset)), handle_file(str(apex)), api_name="/predict_pair")


def _floats(value):
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _floats(item)
    elif isinstance(value, list):
        for item in value:
            yield from _floats(item)


def _assert_rounded(record: dict) -> None:
    assert all(value == round(value, 4) for value in _floats(record)), record
    assert "e-" not in json.dumps(record)  # no 6.5e-08


def _assert_colour_bar(heat: Image.Image, figures, threshold: float) -> None:
    """The picture carries its key: right of the face, the colours of probability 1 and of the threshold."""
    assert heat.size == (figures.DISPLAY_SIZE + figures.COLOUR_BAR_PANEL, figures.DISPLAY_SIZE)
    panel = np.asarray(heat.convert("RGB"))[:, figures.DISPLAY_SIZE:]
    for value in (1.0, (1.0 + threshold) / 2, threshold):
        assert (panel == figures.probability_colour(value, threshold)).all(-1).any(), value


def _check_pictures(result: tuple, prediction: dict, threshold: float, aus: list[int], figures) -> None:
    """The first four outputs and the explanation show ``prediction`` (one scored pair's ``to_dict()``)."""
    bars, heat, motion, emotion, _, status, explanation, _ = result[:8]
    scored = {s["au"]: s["score"] for s in prediction["aus"]}
    assert sorted(scored) == sorted(aus)  # every AU of the model, each with a probability
    assert all(0.0 <= p <= 1.0 for p in scored.values())
    assert [row[0] for row in bars["data"]] == [f"AU{a}" for a in aus]  # the bar plot, in the model's order
    assert emotion["label"] == prediction["emotion"] and emotion["confidences"]
    assert "AUs present" in status
    with Image.open(heat) as image:
        _assert_colour_bar(image, figures, threshold)
    with Image.open(motion) as image:
        assert image.size[0] >= 256  # enlarged for display, whatever the crop size
    # Every number in words: each AU's FACS name and the threshold, the emotion scores.
    assert all(s["label"].split(" ", 1)[1] in explanation for s in prediction["aus"])
    assert f"at least **{threshold:g}**" in explanation and "Emotion scores" in explanation


def _check_download(result: tuple) -> dict:
    """The download is the JSON shown, rounded."""
    scores, download = result[4], result[7]
    assert Path(download).suffix == ".json"
    assert json.loads(Path(download).read_text()) == scores
    _assert_rounded(scores)
    return scores


def _check_result(result: tuple, aus: list[int], figures) -> dict:
    scores = _check_download(result)
    _check_pictures(result, scores, scores["threshold"], aus, figures)
    status = result[5]
    if scores["objective_class"] is not None:
        assert f"Objective class:** {scores['objective_class_name']} (AU" in status
        assert scores["objective_class_explained"].startswith(f"{scores['objective_class_name']} (AU")
    assert scores["training_data"]["corpora"] == ["synthetic"]
    return scores


def _interval_rows(result: tuple) -> list[dict]:
    """The interval table (the last output) as one dict per row, keyed by the page's column names."""
    table = result[9]
    return [dict(zip(table["headers"], row)) for row in table["data"]]


def _check_video_result(result: tuple, video_name: str, frames: int) -> dict:
    """What every video result carries: the time line, the table (one row per spotted interval, in time order) and
    the versioned results document, naming the visitor's file and not the server's copy."""
    assert len(result) == 10
    with Image.open(result[8]) as timeline:
        assert timeline.format == "PNG" and timeline.size[0] >= 800  # full width, readable
    shown, download = result[4], result[7]
    document = json.loads(Path(download).read_text())
    _assert_rounded(document)
    assert (document["schema"], document["kind"]) == ("micro-au-clip/results", "video")
    video = document["video"]
    assert video["path"] == video_name and video["frames_read"] == frames
    # The panel shows the download, its file name under "file" (gradio_client would fetch a "path").
    assert shown == {**document, "video": {("file" if k == "path" else k): v for k, v in video.items()}}
    assert "gradio" not in json.dumps(document) and tempfile.gettempdir() not in json.dumps(document)
    rows = _interval_rows(result)
    assert [row["kind"] for row in rows] == [i["kind"].replace("_", " ") for i in
                                             sorted(video["intervals"], key=lambda i: i["onset_frame"])]
    return document


def _write_video(path: Path, frames: int, fps: float, size: int = 64) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
    for i in range(frames):
        writer.write(np.full((size, size, 3), 100 + i % 50, np.uint8))
    writer.release()
    return path


def test_heat_map_colours_the_fired_regions_on_a_grey_face(figures):
    """Contrast on any skin: outside the fired AUs' regions the face is grey, inside them the colour of the
    probability; an AU below the threshold is not drawn."""
    colourful_face = np.zeros((32, 32, 3), np.uint8)
    colourful_face[..., 0], colourful_face[..., 1] = 220, 150  # skin-like orange everywhere
    weights = np.zeros((2, 16), np.float32)
    weights[0, 0] = weights[1, 15] = 1.0  # AU "A": the top-left patch of a 4x4 grid; AU "B": the bottom-right one
    picture = figures.au_heat_map(colourful_face, weights, 4, [0.9, 0.3], [True, False], ["A", "B"], threshold=0.5)
    _assert_colour_bar(picture, figures, 0.5)
    face = np.asarray(picture)[:, :figures.DISPLAY_SIZE].astype(int)
    size = figures.DISPLAY_SIZE
    inside, unfired = face[size // 16, size // 4], face[size - size // 16, size - size // 4]
    expected = figures.probability_colour(0.9, 0.5).astype(int)
    assert np.abs(inside - expected).max() < np.abs(unfired - expected).max() / 2  # the fired region takes its colour
    assert unfired[0] == unfired[1] == unfired[2] and unfired[0] < 140  # dim grey, not the orange skin
    assert face[size // 2, size // 2].std() == 0  # between the regions: grey too


def test_pair_end_to_end(space, example_pair, figures):
    _check_result(_predict_pair(space, *example_pair), space.aus, figures)


def _predict_video(space, path) -> tuple:
    return space.client.predict(handle_file(str(path)), api_name="/predict_video")


def _seconds(frame: int, fps: float) -> str:
    return f"{frame / fps:.2f}"


def test_video_example_is_spotted_as_one_micro_expression(space, example_video, figures):
    """The example's micro-smile is the one interval listed, as micro, where it was drawn; the pictures and the
    status show its onset/apex pair."""
    from gradio.utils import _parse_file_size

    path, manifest = example_video
    # Within the Space's own bounds too (this server takes 4 s): the example must play on the Hub.
    assert manifest["frames"] / manifest["fps"] <= space.app.MAX_VIDEO_SECONDS
    assert path.stat().st_size <= _parse_file_size(space.app.MAX_FILE_SIZE)
    result = _predict_video(space, path)
    document = _check_video_result(result, path.name, manifest["frames"])
    truth = manifest["intervals"][0]
    (row,) = _interval_rows(result)
    (spotted,) = document["video"]["intervals"]
    assert row["kind"] == spotted["kind"] == "micro"
    onset, apex, offset = (int(v) for v in row["frames (onset-apex-offset)"].split("-"))
    assert (onset, apex, offset) == (spotted["onset_frame"], spotted["apex_frame"], spotted["offset_frame"])
    iou = interval_iou(Interval(onset, offset), Interval(truth["onset_frame"], truth["offset_frame"]))
    assert iou >= MEGC_IOU_THRESHOLD and onset <= truth["apex_frame"] <= offset, (row, truth)
    fps = manifest["fps"]
    assert row["time (s)"] == f"{_seconds(onset, fps)}-{_seconds(offset, fps)}"
    prediction = spotted["prediction"]
    assert row["AUs present"] == ("+".join(f"AU{a}" for a in prediction["present"]) or "none above the threshold")
    _check_pictures(result, prediction, AU_THRESHOLD, space.aus, figures)
    status = result[5]
    assert f"{manifest['frames']} frames read at {fps:g} fps; 1 micro-expression spotted" in status
    assert f"frames {onset}-{offset} ({_seconds(onset, fps)}-{_seconds(offset, fps)} s), apex frame {apex}" in status
    assert "How the video was read" in result[6]


def test_video_without_a_brief_movement_says_so_and_still_shows_the_time_line(space, example_video, tmp_path):
    """The example's last 1.2 s: the face at rest. Nothing spotted, said in words; no pair pictures."""
    still = write_video(tmp_path / "still.avi", _example_frames(example_video, 45), fps=example_video[1]["fps"])
    result = _predict_video(space, still)
    document = _check_video_result(result, still.name, example_video[1]["frames"] - 45)
    assert document["video"]["intervals"] == [] and _interval_rows(result) == []
    assert result[1] is None and result[2] is None  # no heat map, no motion image: there is no pair to show
    assert space.app.NO_MICRO in result[5].lower()


def test_video_frames_without_a_face_are_named_in_the_note(space, example_video, tmp_path):
    """Half a second of an empty grey picture before the example: those frames are named, the smile still found."""
    frames = _example_frames(example_video)
    blank = [np.full_like(frames[0], 128)] * 12
    path = write_video(tmp_path / "late_face.avi", blank + frames, fps=example_video[1]["fps"])
    result = _predict_video(space, path)
    document = _check_video_result(result, path.name, len(blank) + len(frames))
    assert document["video"]["unusable_frames"][0]["first_frame"] == 0
    assert document["video"]["unusable_frames"][0]["last_frame"] == len(blank) - 1
    assert f"No usable face** in {len(blank)} frames: frames 0-{len(blank) - 1}" in result[5]
    assert [row["kind"] for row in _interval_rows(result)] == ["micro"]


def test_unscored_intervals_are_listed_as_such(space):
    """A blink is listed with the regions that moved, never with AUs; a micro-expression whose frames the model could
    not score is said to be spotted but unscored, not "nothing spotted"."""
    def spotted(kind: str, prediction=None):
        return SpottedInterval(10, 14, 18, kind, 9.0, [1, 2], fps=25.0, prediction=prediction)

    blink = spotted("blink")
    failed = spotted("micro", Prediction(name="clip.avi frames 10-14", status="no_face",
                                         message="/srv/tmp/clip.avi frames 10-14: no face found"))
    row = dict(zip(space.app.INTERVAL_COLUMNS, space.app._interval_row(blink)))
    assert row == {**row, "kind": "blink", "frames (onset-apex-offset)": "10-14-18", "time (s)": "0.40-0.72",
                   "AUs present": "not scored (moved: AU1+AU2)", "emotion": ""}
    video = SimpleNamespace(micro_expressions=[failed], intervals=[blink, failed])
    headline = space.app._no_micro_headline(video, {"path": "/srv/tmp/clip.avi", "orig_name": "clip.avi"})
    assert "spotted, but the model could not score" in headline and "frames 10-18 (0.40-0.72 s)" in headline
    assert "clip.avi frames 10-14: no face found" in headline and "/srv/tmp" not in headline
    assert space.app.strongest_micro(video) is None
    assert space.app.NO_MICRO in space.app._no_micro_headline(SimpleNamespace(micro_expressions=[]), {}).lower()


def test_mp4v_video_is_scored_from_the_original_and_shown_as_webm(space, mp4v_video, example_video):
    result = _predict_video(space, mp4v_video)
    _check_video_result(result, mp4v_video.name, example_video[1]["frames"])
    preview = space.client.predict(handle_file(str(mp4v_video)), api_name="/preview_video")
    info = probe_video(preview)
    assert Path(preview).suffix == ".webm" and info.frame_count == example_video[1]["frames"]
    assert info.fps == pytest.approx(25)
    fourcc = int(cv2.VideoCapture(preview).get(cv2.CAP_PROP_FOURCC))
    assert fourcc.to_bytes(4, "little").decode(errors="replace").upper().startswith("VP8")


def test_preview_of_a_fast_video_keeps_a_screen_frame_rate(space, tmp_path):
    fast = _write_video(tmp_path / "fast.avi", frames=40, fps=100)  # 0.4 s at 100 fps, as a high-speed camera films
    info = probe_video(space.client.predict(handle_file(str(fast)), api_name="/preview_video"))
    step = -(-100 // int(space.app.PREVIEW_MAX_FPS))
    assert info.fps == pytest.approx(100 / step) and info.frame_count == -(-40 // step)  # the same 0.4 s


def test_bad_inputs_are_refused_without_a_traceback_and_the_space_keeps_serving(space, example_pair, example_video,
                                                                                 figures, tmp_path, capfd):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are notes, not pixels")
    grey = tmp_path / "grey.png"
    Image.new("RGB", (128, 128), (128, 128, 128)).save(grey)
    long_video = _write_video(tmp_path / "long.avi", frames=50, fps=10)  # 5 s
    # 0.4 s of the example's face: too short for one 0.3 s micro window on each side of a frame.
    short_video = write_video(tmp_path / "short.avi", _example_frames(example_video, 0, 9), fps=25)
    not_a_video = tmp_path / "clip.mp4"
    not_a_video.write_text("not a video")
    huge = tmp_path / "huge.png"
    Image.new("L", (8000, 8000)).save(huge)  # 64 MP in a small file: the pixel cap, not the upload size, refuses it

    cases = [
        ("/predict_pair", (not_an_image, example_pair[1]), "notes.png"),
        ("/predict_pair", (grey, grey), "No face found"),
        ("/predict_pair", (huge, huge), "25 MP limit"),
        ("/predict_video", (long_video,), "lasts 5.0 s"),
        ("/preview_video", (long_video,), "lasts 5.0 s"),  # refused on upload, before the visitor presses a button
        ("/predict_video", (short_video,), "spotting needs at least"),
        ("/predict_video", (not_a_video,), "cannot open the video"),
        ("/preview_video", (not_a_video,), "cannot open the video"),
    ]
    capfd.readouterr()  # the server log from here on
    for api_name, files, expected in cases:
        with pytest.raises(AppError) as refused:
            space.client.predict(*(handle_file(str(f)) for f in files), api_name=api_name)
        assert expected in str(refused.value)
        assert str(tmp_path) not in str(refused.value)  # the visitor's file name, never the server's paths
    log = capfd.readouterr()
    assert "Traceback" not in log.out + log.err, log.err[-3000:]  # a visitor's mistake is not a server fault
    _check_result(_predict_pair(space, *example_pair), space.aus, figures)


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


def _page_checks_after_the_pair(page, space, figures) -> None:
    """What the page must show next to a pair's result: the synthetic-data notice, the heat map with its colour bar,
    each number explained, and a download of the rounded JSON."""
    notice = page.locator("#training-notice")
    assert "trained on synthetic data" in notice.inner_text() and "synthetic-warning" in notice.get_attribute("class")
    page.wait_for_function("() => { const image = document.querySelector('#au-heat-map img');"
                           " return image && image.complete && image.naturalWidth > 0 }", timeout=30_000)
    width = page.locator("#au-heat-map img").first.evaluate("image => image.naturalWidth")
    assert width == figures.DISPLAY_SIZE + figures.COLOUR_BAR_PANEL  # the face and its colour bar
    assert "colour: the AU's probability" in page.locator("#au-heat-map-caption").inner_text()
    explanation = page.locator("#explanation").inner_text()
    assert "How to read these numbers" in explanation and "Inner brow raiser" in explanation
    with page.expect_download(timeout=30_000) as download:
        page.locator("#download-json").click()
    record = json.loads(Path(download.value.path()).read_text())
    _assert_rounded(record)
    assert sorted(s["au"] for s in record["aus"]) == sorted(space.aus)
    assert record["objective_class"] is not None  # the fixture's model gives this example one
    assert f"Objective class: {record['objective_class_name']} (AU" in page.locator("#status").inner_text()


def _page_checks_video(page, space, mp4v_video: Path, example_video, screenshot: Path) -> None:
    """An mp4v upload plays in the page (as its WebM copy); the example, picked from the examples, is spotted: the
    time line and the interval table appear, the table lists the micro-smile at the times the API gives, and the
    status names it. The picture of the page is taken there; the pair tab then hides the video's results."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Video").click()
    page.locator("#video-results").wait_for(state="visible", timeout=10_000)
    page.locator("#video-file input[type=file]").set_input_files(str(mp4v_video))
    player = page.locator("#video-preview video")
    player.wait_for(timeout=30_000)
    page.wait_for_function(f"() => document.querySelector('#video-preview video').readyState >= {HAVE_CURRENT_DATA}",
                           timeout=30_000)
    assert player.evaluate("video => video.error") is None
    assert "not playable" not in page.locator("body").inner_text().lower()
    page.get_by_text(space.app.load_examples().video_labels[0], exact=True).click()  # the example replaces it
    page.locator(f"#video-preview video[src*='{example_video[0].stem}']").wait_for(timeout=30_000)
    page.get_by_role("button", name="Detect AUs in the video", exact=True).click()
    page.locator("#status").get_by_text("1 micro-expression spotted").wait_for(timeout=60_000)
    page.wait_for_function("() => { const image = document.querySelector('#timeline img');"
                           " return image && image.complete && image.naturalWidth > 0 }", timeout=30_000)
    assert page.locator("#timeline img").first.evaluate("image => image.naturalWidth") >= 800
    (expected,) = _interval_rows(_predict_video(space, example_video[0]))  # what the API says of the same file
    table = page.locator("#intervals")
    for column in ("kind", "frames (onset-apex-offset)", "time (s)", "AUs present", "emotion"):
        cell = table.get_by_test_id(f"cell-0-{space.app.INTERVAL_COLUMNS.index(column)}")
        expect(cell).to_have_text(str(expected[column]), use_inner_text=True, timeout=10_000)
    assert expected["kind"] == "micro" and not table.get_by_test_id("cell-1-0").count()  # the one row
    assert "Shown: the strongest micro-expression" in page.locator("#status").inner_text()
    page.wait_for_timeout(500)  # let the result images finish decoding before the picture
    page.screenshot(path=str(screenshot), full_page=True)
    page.get_by_role("tab", name="Onset + apex").click()
    page.locator("#video-results").wait_for(state="hidden", timeout=10_000)


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
def test_browser_example_to_result(space, figures, mp4v_video, example_video, tmp_path):
    from playwright.sync_api import sync_playwright

    labels = space.app.load_examples().pair_labels
    grey = tmp_path / "grey.png"
    Image.new("RGB", (128, 128), (128, 128, 128)).save(grey)
    pictures = REPO / "docs" if os.environ.get(SCREENSHOT_ENV) else tmp_path
    screenshot, video_screenshot = pictures / "space_screenshot.png", pictures / "space_video_screenshot.png"
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 1000}, accept_downloads=True,
        )
        try:
            page = browser.new_page()
            page.goto(space.url, wait_until="networkidle")
            # A refused upload: the message shows on the page, and the page goes on working.
            for frame in ("onset", "apex"):  # by id: waits for the input to be rendered, whatever else the page has
                page.locator(f"#{frame} input[type=file]").set_input_files(str(grey))
            for frame in ("onset", "apex"):
                page.locator(f"#{frame} img[src*='grey']").wait_for(timeout=30_000)
            page.get_by_role("button", name="Detect AUs", exact=True).click()
            page.get_by_text("No face found").first.wait_for(timeout=30_000)
            page.get_by_text(labels[1], exact=True).click()  # fills the onset and apex inputs
            subject = labels[1].split(":")[0]
            page.locator(f"img[src*='{subject}']").first.wait_for(timeout=10_000)
            page.get_by_role("button", name="Detect AUs", exact=True).click()
            status = page.locator("#status")
            status.get_by_text("AUs present").wait_for(timeout=30_000)
            emotion = status.inner_text().split("Emotion estimate:")[1].splitlines()[0].split("(")[0].strip()
            assert emotion in page.locator("#emotion").inner_text()
            bars = page.locator("#au-bars svg").first
            bars.get_by_text("probability").wait_for(timeout=10_000)
            axis_text = bars.text_content()
            assert all(f"AU{a}" in axis_text for a in space.aus), axis_text
            _page_checks_after_the_pair(page, space, figures)
            for close in page.get_by_role("button", name="Close").all():  # the error toast, out of the picture
                if close.is_visible():
                    close.click()
            page.wait_for_timeout(500)  # let the result images finish decoding before the picture
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            _page_checks_video(page, space, mp4v_video, example_video, video_screenshot)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000 and video_screenshot.stat().st_size > 10_000
