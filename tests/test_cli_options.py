"""Every option of every subcommand, run end to end through the console command `microau`, as a user types it.

`RUNS` holds the command lines; `test_every_option_is_run_through_the_console` checks against the parser that each
option of each subcommand appears in one of them, so an option added without a run here fails CI (an option that
crashed when used, as `train --save-steps` once did, cannot pass again). The runs are tiny (test preset, a step or
two, pre-aligned crops where the face path is not what is tested).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest

from console import error_lines, microau, one_error, start_microau
from fixtures_corpora import build_casme2, many_rows
from hub_server import HubServer
from microau.cli import build_parser

TOKEN, USER = "hf_test_token", "tester"
TINY = ["--aus", "samm", "--preset", "test"]
TRAIN = ["train", "--data", "{corpus}", "--output-dir", "{tmp}/run", *TINY, "--clip", "{clip}", "--config",
         '{"use_gda": false}', "--epochs", "1", "--batch-size", "4", "--learning-rate", "1e-3",
         "--gradient-accumulation-steps", "1", "--mixed-precision", "no", "--save-steps", "1", "--seed", "1",
         "--pre-aligned", "--device", "cpu"]

RUNS = {
    "quickstart": ["quickstart", "--out", "{tmp}/qs", "--num-samples", "12", "--folds", "1", "--epochs", "1", *TINY,
                   "--seed", "1", "--overwrite", "--device", "cpu", "--verbose"],
    "synth": ["synth", "--out", "{tmp}/synth", "--num-samples", "2", "--seed", "2", "--aus", "samm", "--amplitude",
              "1", "2", "--overwrite", "--contact-sheet", "{tmp}/sheet.png", "--verbose"],
    "convert": ["convert", "casme2", "--root", "{raw}", "--out", "{tmp}/casme2", "--annotation",
                "{raw}/CASME2-coding-20140508.xlsx", "--with-frames", "--cropped", "--overwrite", "--push-to-hub",
                f"{USER}/casme2", "--private", "--verbose"],
    "train": [*TRAIN, "--max-steps", "2", "--verbose"],
    "train, resumed": [*TRAIN, "--max-steps", "3", "--resume-from", "latest"],
    "train from a checkpoint": ["train", "--data", "{corpus}", "--output-dir", "{tmp}/run", "--model", "{tmp}/run/final",
                                "--max-steps", "1", "--batch-size", "4", "--pre-aligned", "--device", "cpu",
                                "--overwrite"],
    "evaluate": ["evaluate", "--data", "{loco}", "--output-dir", "{tmp}/loco", "--task", "au", "--protocol", "loco",
                 "--max-folds", "1", *TINY, "--epochs", "1", "--batch-size", "8", "--learning-rate", "1e-3",
                 "--threshold", "inner", "--inner-subjects", "1", "--save-model", "--config", '{"use_gda": false}',
                 "--seed", "1", "--pre-aligned", "--overwrite", "--device", "cpu", "--verbose"],
    # MEB's CD6ME end to end on the synthetic stand-in: the two documented commands (README, docs/cd6me.md)
    "synth, CD6ME stand-in": ["synth", "--out", "{tmp}/standin", "--cd6me-standin", "--num-samples", "12", "--seed",
                              "0"],
    "evaluate, CD6ME": ["evaluate", "--protocol", "cd6me", "--data", "{tmp}/standin/corpora.txt", "--output-dir",
                        "{tmp}/cd6me", "--preset", "test", "--epochs", "1", "--batch-size", "8", "--save-model",
                        "--device", "cpu"],
    "evaluate, spotting": ["evaluate", "--task", "spotting", "--data", "{spotting}", "--model", "{ckpt}",
                           "--output-dir", "{tmp}/spotting", "--device", "cpu"],
    "predict a pair": ["predict", "--model", "{ckpt}", "--onset", "{tmp}/onset.png", "--apex", "{tmp}/apex.png",
                       "--threshold", "0.4", "--pre-aligned", "--out", "{tmp}/pair.json", "--overwrite", "--device",
                       "cpu", "--verbose"],
    "predict a folder": ["predict", "--model", "{ckpt}", "--folder", "{tmp}/pairs", "--batch-size", "2", "--out",
                         "{tmp}/pairs.csv"],
    "predict a video": ["predict", "--model", "{ckpt}", "--video", "{tmp}/frames", "--fps", "25", "--every-frame",
                        "--stride", "2", "--max-seconds", "0.9", "--plot", "{tmp}/timeline.png", "--out",
                        "{tmp}/video.csv"],
    "push": ["push", "--model", "{ckpt}", "--repo-id", f"{USER}/tiny", "--private", "--token", TOKEN, "--base-model",
             "openai/clip-vit-base-patch16", "--message", "first upload", "--verbose"],
    "space": ["space", "--model", "{ckpt}", "--port", "{port}", "--host", "127.0.0.1", "--verbose"],
}


def test_every_option_is_run_through_the_console():
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    given = defaultdict(set)
    for argv in RUNS.values():
        given[argv[0]] |= {a for a in argv if a.startswith("--")}
    missing = [f"microau {name} {action.option_strings[-1]}" for name, sub in subcommands.items()
               for action in sub._actions
               if action.option_strings and not isinstance(action, argparse._HelpAction)  # --help: test_cli.py
               and not given[name] & set(action.option_strings)]
    assert not missing, f"options no console run in RUNS uses: {missing}"


def _run(name: str, places: dict[str, Path | str], **kwargs):
    argv = RUNS[name]
    for key, value in places.items():
        argv = [a.replace("{" + key + "}", str(value)) for a in argv]
    return microau(*argv, **kwargs)


def _ok(result) -> str:
    """stdout of a run that must succeed with nothing on stderr but progress bars."""
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [line for line in error_lines(result.stderr) if "Traceback" in line or "error" in line.lower()]
    return result.stdout


# -- inputs --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def places(tiny_corpus, checkpoint, tmp_path_factory) -> dict[str, Path]:
    """Where the runs read from: the tiny corpus, the same rows as three corpora, a tiny CLIP, a
    CASME II release (Cropped), a long-video corpus, a pair, a folder of pairs and a frame folder."""
    from PIL import Image
    from skimage.data import astronaut

    tmp = tmp_path_factory.mktemp("options")
    _, corpus = tiny_corpus
    face = astronaut()[:300, 100:400]
    Image.fromarray(face).save(tmp / "onset.png"), Image.fromarray(face).save(tmp / "apex.png")
    (tmp / "pairs").mkdir(), (tmp / "frames").mkdir()
    for name in ("a", "b"):
        shutil.copy(tmp / "onset.png", tmp / "pairs" / f"{name}_onset.png")
        shutil.copy(tmp / "apex.png", tmp / "pairs" / f"{name}_apex.png")
    for index in range(24):
        Image.fromarray(face).save(tmp / "frames" / f"img{index + 1}.jpg", quality=95)
    return {"tmp": tmp, "corpus": corpus, "ckpt": checkpoint, "loco": _two_corpora(corpus, tmp / "loco_data"),
            "clip": _tiny_clip(tmp / "clip"), "raw": build_casme2(tmp / "raw", many_rows("casme2", 4), cropped=True),
            "spotting": _long_video_corpus(tmp / "frames", tmp / "spotting_data")}


def _two_corpora(corpus: Path, out: Path) -> Path:
    """The tiny corpus's rows as six subjects in three corpora: a leave-one-corpus-out fold trains on four subjects
    that show every AU, with or without any one of them (the inner split)."""
    from datasets import load_from_disk

    rows = load_from_disk(str(corpus))
    rows = rows.map(lambda row, i: {"subject": f"{row['subject']}-{i % 3}", "dataset": f"c{i % 3}"}, with_indices=True)
    rows.save_to_disk(str(out))
    return out


def _tiny_clip(out: Path) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPModel

    from microau_hf import make_config

    config = make_config("samm", preset="test")
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(vision_config=config.vision_config.to_dict(), text_config=config.text_config.to_dict(),
                         projection_dim=32)).save_pretrained(out)
    return out


def _long_video_corpus(frames: Path, out: Path) -> Path:
    from datasets import Dataset

    from microau_hf.data.spotting_schema import spotting_features

    paths = sorted((str(p) for p in frames.glob("img*.jpg")), key=lambda p: int(Path(p).stem[3:]))
    row = {"corpus": "test", "subject": "s1", "video": "s1_still", "fps": 25.0, "num_frames": len(paths),
           "frame_paths": paths, "intervals": [{"onset": 4, "apex": 6, "offset": 8, "kind": "micro", "aus": "12",
                                                "emotion": "happiness"}]}
    Dataset.from_list([row], features=spotting_features()).save_to_disk(str(out))
    return out


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The test Hub, and the environment that points a console run at it (no token of this machine leaks in)."""
    home = tmp_path_factory.mktemp("hf_home")
    with HubServer(tokens={TOKEN: USER}) as server:
        env = {"HF_ENDPOINT": server.url, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
               "HF_HOME": str(home), "HF_TOKEN_PATH": str(home / "token"), "HF_TOKEN": ""}
        yield server, env


# -- the runs ------------------------------------------------------------------------------------------------------


def test_quickstart_options(places):
    out = _ok(_run("quickstart", places))
    assert "| **mean** |" in out and (places["tmp"] / "qs" / "checkpoint" / "model.safetensors").is_file()
    assert json.loads((places["tmp"] / "qs" / "loso" / "results.json").read_text())["protocol"].startswith("LOSO, 1 of")


def test_synth_options(places):
    from datasets import load_from_disk

    out = _ok(_run("synth", places))
    assert len(load_from_disk(str(places["tmp"] / "synth"))) == 2 and "contact sheet" in out
    assert (places["tmp"] / "sheet.png").read_bytes()[:4] == b"\x89PNG"


def test_convert_options_the_push_is_refused_by_this_hub_in_one_line(places, hub):
    from datasets import load_from_disk

    _, env = hub
    result = _run("convert", places, env=env)
    converted = load_from_disk(str(places["tmp"] / "casme2"))
    assert len(converted) == 4 and "frames" in converted.column_names  # --with-frames, from the Cropped release
    # The test Hub serves model repositories only: the dataset push reaches it and is refused, in one line.
    assert "microau convert: error:" in one_error(result)


def test_train_options_save_steps_resume_and_overwrite(places):
    run = places["tmp"] / "run"
    _ok(_run("train", places))
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    state = json.loads((run / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["settings"]["data"] == str(places["corpus"])  # a path in the run record: written as text
    assert "resumed from" in _ok(_run("train, resumed", places)) and (run / "checkpoint-3").is_dir()
    assert [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()] == [2, 3]
    _ok(_run("train from a checkpoint", places))
    assert not (run / "checkpoint-1").exists() and (run / "final" / "model.safetensors").is_file()


def test_evaluate_options(places):
    out = _ok(_run("evaluate", places))
    assert "train_runtime" not in out  # the Trainer's log dicts stay off stdout
    results = json.loads((places["tmp"] / "loco" / "results.json").read_text())
    assert results["protocol"].startswith("LOCO, 1 of 3 corpora") and results["settings"]["threshold"] == "inner"
    assert (places["tmp"] / "loco" / "checkpoint" / "model.safetensors").is_file()


def test_cd6me_on_the_synthetic_stand_in_end_to_end(places):
    """The stand-in's four pseudo-corpora through the whole protocol: tables, nulls, the record, the model card."""
    from microau_hf.hub import render_model_card

    _ok(_run("synth, CD6ME stand-in", places))
    out = _ok(_run("evaluate, CD6ME", places))
    assert "CD6ME protocol on the synthetic stand-in (4 pseudo-corpora)" in out and "| **pooled** (MEB's AU row) |" in out
    assert "SSSNet" not in out and "not compared with MEB's" in out  # a stand-in is never put beside their figures
    results = json.loads((places["tmp"] / "cd6me" / "results.json").read_text())
    held_out = results["cd6me"]["held_out"]
    assert sorted(held_out) == ["synthetic_dim90", "synthetic_lab200", "synthetic_small60", "synthetic_webcam30"]
    assert [c["folder"] for c in results["corpora"]] and all(len(c["annotation_sha256"]) == 64 for c in results["corpora"])
    assert results["aus"] == [1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17] and results["seeds"] == [0]
    assert results["threshold"]["rule"] == "0.5 for every AU" and results["synthetic"] is True
    undefined = [(c, au) for c, s in held_out.items() for au, row in s["per_au"].items() if row["support"] == 0]
    assert undefined and all(held_out[c]["per_au"][au]["f1"] is None for c, au in undefined)  # null, not 0
    assert all(held_out[c]["aus_defined"] == 12 - len(held_out[c]["aus_undefined"]) for c in held_out)
    assert {p["kind"] for p in results["problems"]} == {"few_positives"}
    assert len(results["cd6me"]["meb_shape"]["binary_f1"]) == 13 and results["cd6me"]["meb_shape"]["units"] == "percent"
    assert all("chance" in s["emotion"]["emotion"] for s in held_out.values())  # label-free emotions beside chance
    card = str(render_model_card(places["tmp"] / "cd6me" / "checkpoint", f"{USER}/cd6me"))
    assert "mean AU F1, synthetic_lab200 held out" in card and "synthetic-data" in card and "Synthetic data." in card


def test_evaluate_spotting_options(places):
    assert "spotting" in _ok(_run("evaluate, spotting", places))
    results = json.loads((places["tmp"] / "spotting" / "results.json").read_text())
    assert results["schema"] == "micro-au-clip/spotting-evaluation" and results["protocol"].startswith("spotting")


def test_predict_a_pair_options(places):
    _ok(_run("predict a pair", places))
    document = json.loads((places["tmp"] / "pair.json").read_text())
    assert document["kind"] == "pairs" and document["items"][0]["status"] == "template"  # --pre-aligned


def test_predict_a_folder_options(places):
    _ok(_run("predict a folder", places))
    assert len((places["tmp"] / "pairs.csv").read_text().splitlines()) == 3


def test_predict_a_video_options(places):
    _ok(_run("predict a video", places))
    assert (places["tmp"] / "video.frames.csv").is_file() and (places["tmp"] / "video.csv").is_file()
    assert (places["tmp"] / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_push_options(places, hub):
    server, env = hub
    out = _ok(_run("push", places, env=env))
    assert f"pushed: {server.url}/{USER}/tiny/commit/" in out


def test_space_options(places):
    port = _free_port()
    space = start_microau(*[a.replace("{ckpt}", str(places["ckpt"])).replace("{port}", str(port))
                            for a in RUNS["space"]])
    try:
        assert _answers(f"http://127.0.0.1:{port}/", space, seconds=180), space.communicate(timeout=30)
    finally:
        space.terminate()
        space.communicate(timeout=60)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str, process, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status == 200
        except OSError:
            time.sleep(1)
    return False
