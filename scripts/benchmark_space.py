"""The Space's latency for one onset/apex pair, end to end through ``gradio_client``, beside its parts.

For each preset a random checkpoint is saved to a temporary folder, the Space is started on 127.0.0.1 in this process,
and each round times, on the same example pair (``spaces_app/examples``):

* ``face``: the face pipeline alone (load both frames, MediaPipe landmarks on the onset, alignment, AU regions);
* ``model``: the model's forward alone, batch 1, on the prepared tensors;
* ``predict_pair``: ``MicroAUPredictor.predict_pair`` (face + processor + model + emotion scoring);
* ``http``: what the page itself does, in plain HTTP: upload both frames, call ``/predict_pair`` through the queue,
  read its event stream, fetch the two result images;
* ``space``: the same through ``gradio_client`` (``Client.predict(..., api_name="/predict_pair")``), which adds its
  own waits (it polls its message queue every 50 ms);
* ``preview``: what an uploaded video costs before any button is pressed: the check against the Space's bounds and
  the VP8 WebM copy the page plays (``/preview_video``, through ``gradio_client``), on the example video.

The rounds interleave the six, so a busy machine slows them alike; medians are reported.

    python scripts/benchmark_space.py --presets test tiny vit-b-16 --repeats 7 --out benchmarks/space.json
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

for variable, value in {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1"}.items():
    os.environ.setdefault(variable, value)  # before gradio is imported: it reads them at import

import gradio  # noqa: E402
import httpx  # noqa: E402
import torch  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402

from microau_hf import MicroAUClipModel, make_config  # noqa: E402
from microau_hf.face import build_processor, model_inputs  # noqa: E402
from microau_hf.inference import MicroAUPredictor  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO / "spaces_app"
PARTS = ("face", "model", "predict_pair", "http", "space", "preview")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _http_predict(http: httpx.Client, base: str, onset: str, apex: str) -> None:
    """One pair the way the browser sends it: upload, queue call, event stream, result images."""
    files = [("files", (Path(p).name, Path(p).read_bytes(), mimetypes.guess_type(p)[0])) for p in (onset, apex)]
    paths = http.post(base + "gradio_api/upload", files=files).raise_for_status().json()
    data = [{"path": path, "orig_name": Path(p).name, "meta": {"_type": "gradio.FileData"}}
            for path, p in zip(paths, (onset, apex))]
    call = http.post(base + "gradio_api/call/predict_pair", json={"data": [*data, 10]}).raise_for_status()
    kind, payload = "error", "the event stream ended without a result"
    with http.stream("GET", f"{base}gradio_api/call/predict_pair/{call.json()['event_id']}") as stream:
        lines = stream.iter_lines()
        for line in lines:
            if line.startswith("event:") and line.split(":", 1)[1].strip() in ("complete", "error"):
                kind, payload = line.split(":", 1)[1].strip(), next(lines).removeprefix("data: ")
                break
    if kind == "error":
        raise RuntimeError(f"the Space refused the pair: {payload}")
    for image in json.loads(payload)[1:3]:
        http.get(image["url"]).raise_for_status()


def benchmark_preset(preset: str, onset: str, apex: str, video: str, repeats: int, workdir: Path) -> dict:
    import app  # spaces_app/app.py, found through sys.path as the Hub and `microau space` find it

    torch.manual_seed(0)
    config = make_config("casme2", preset=preset)
    folder = workdir / f"micro-au-clip-{preset}-random"
    model = MicroAUClipModel(config)
    parameters = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder)
    build_processor(config).save_pretrained(folder)
    del model

    started = time.perf_counter()
    demo = app.build_demo(str(folder))
    startup = time.perf_counter() - started
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH_OPTIONS)
    base = f"http://127.0.0.1:{port}/"
    http = httpx.Client(timeout=300)
    try:
        client = Client(base, verbose=False)
        predictor = MicroAUPredictor.from_pretrained(folder, device="cpu")  # a second copy, timed outside the Space
        prepared = predictor.preparer.prepare(onset, apex)
        inputs = model_inputs(predictor.processor, [prepared])
        calls = {
            "face": lambda: predictor.preparer.prepare(onset, apex),
            "model": lambda: predictor.run_model(inputs["onset_pixel_values"], inputs["apex_pixel_values"],
                                                 inputs["au_region_weights"]),
            "predict_pair": lambda: predictor.predict_pair(onset, apex),
            "http": lambda: _http_predict(http, base, onset, apex),
            "space": lambda: client.predict(handle_file(onset), handle_file(apex), api_name="/predict_pair"),
            "preview": lambda: client.predict(handle_file(video), api_name="/preview_video"),
        }
        for call in calls.values():
            call()  # warm-up: the prompt cache, MediaPipe's graph, the first upload
        times: dict[str, list[float]] = {part: [] for part in PARTS}
        for _ in range(repeats):
            for part, call in calls.items():
                times[part].append(_seconds(call))
    finally:
        http.close()
        demo.close()
    medians = {f"{part}_ms": 1000 * statistics.median(values) for part, values in times.items()}
    return {
        "preset": preset,
        "parameters_m": parameters / 1e6,
        "crop_px": config.vision_config.image_size,
        "patch_px": config.vision_config.patch_size,
        "startup_s": startup,
        **medians,
        "http_overhead_ms": medians["http_ms"] - medians["predict_pair_ms"],
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["test", "tiny", "vit-b-16"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--pair", nargs=2, metavar=("ONSET", "APEX"),
                        help="the pair to time (default: the Space's first example pair)")
    parser.add_argument("--video", default=str(SPACE_DIR / "examples" / "astronaut_smile.webm"),
                        help="the video whose browser copy is timed (default: the example, 3 s at 25 fps)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/space.json"))
    args = parser.parse_args(argv)

    sys.path.insert(0, str(SPACE_DIR))
    if args.pair is None:
        import app

        args.pair = app.load_examples()[0][0]
    load_before = os.getloadavg()[0]  # the machine may be shared: the load says how much to trust the numbers
    with tempfile.TemporaryDirectory(prefix="space_benchmark_") as workdir:
        rows = [benchmark_preset(p, *args.pair, args.video, args.repeats, Path(workdir)) for p in args.presets]

    print(f"1-minute load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    print(f"{'preset':<10} {'params':>8} {'crop':>5} {'face ms':>8} {'model ms':>9} {'predict ms':>11} "
          f"{'HTTP ms':>8} {'client ms':>10} {'preview ms':>11}   (medians of {args.repeats}, one pair, CPU)")
    for row in rows:
        print(f"{row['preset']:<10} {row['parameters_m']:>7.1f}M {row['crop_px']:>5} {row['face_ms']:>8.1f} "
              f"{row['model_ms']:>9.1f} {row['predict_pair_ms']:>11.1f} {row['http_ms']:>8.1f} "
              f"{row['space_ms']:>10.1f} {row['preview_ms']:>11.1f}")
    machine = {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "gradio": gradio.__version__,
               "device": "cpu", "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    inputs = {"pair": [Path(p).name for p in args.pair], "video": Path(args.video).name}
    args.out.write_text(json.dumps({"machine": machine, **inputs, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
