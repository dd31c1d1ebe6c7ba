"""Bad inputs a user can cause: each gives one line naming the file and the problem, a non-zero exit from the CLI, and
nothing of the user's is lost."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from microau.cli import main
from microau_hf.checkpoints import CheckpointError, load_model
from microau_hf.modeling_micro_au_clip import MicroAUClipModel


def copy_checkpoint(checkpoint: Path, folder: Path) -> Path:
    shutil.copytree(checkpoint, folder)
    return folder


def any_image(folder: Path) -> Path:
    """A readable image, for commands that must fail on something else first (arguments are checked first)."""
    path = folder / "any.png"
    Image.new("RGB", (64, 64), (128, 100, 90)).save(path)
    return path


def one_line_error(argv: list[str], capsys) -> str:
    """The CLI's error line (progress bars may share stderr; nothing else may)."""
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("microau ")]
    assert len(errors) == 1 and errors[0] == err.splitlines()[-1] and "Traceback" not in err, err
    return errors[0]


def test_a_pickle_beside_a_stray_safetensors_file_is_never_loaded(checkpoint, tmp_path, capsys):
    folder = copy_checkpoint(checkpoint, tmp_path / "ckpt")
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(weights, folder / "pytorch_model.bin")
    save_file({"unrelated": torch.zeros(1)}, folder / "decoy.safetensors")
    with pytest.raises(CheckpointError, match=r"no model.safetensors \(found decoy.safetensors, pytorch_model.bin"):
        load_model(folder)
    with pytest.raises(OSError):  # the model class itself refuses the pickle, for AutoModel users too
        MicroAUClipModel.from_pretrained(folder)
    with pytest.raises(ValueError, match="safetensors weights only"):
        MicroAUClipModel.from_pretrained(folder, use_safetensors=False)
    err = one_line_error(["predict", "--model", str(folder), "--onset", str(any_image(tmp_path)), "--apex", str(any_image(tmp_path))], capsys)
    assert "no model.safetensors" in err


def test_a_checkpoint_missing_half_its_tensors_is_refused_with_the_count(checkpoint, tmp_path, capsys):
    folder = copy_checkpoint(checkpoint, tmp_path / "ckpt")
    weights = load_file(folder / "model.safetensors")
    kept = dict(list(weights.items())[: len(weights) // 2])
    save_file(kept, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=f"cover {len(kept)} of the model's {len(weights)} tensors; "
                                              f"{len(weights) - len(kept)} missing"):
        load_model(folder)
    one_line_error(["predict", "--model", str(folder), "--onset", str(any_image(tmp_path)), "--apex", str(any_image(tmp_path))], capsys)


@pytest.mark.parametrize("content", [b"", b"garbage, not safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{"])
def test_unreadable_weights_are_one_line(checkpoint, tmp_path, capsys, content):
    folder = copy_checkpoint(checkpoint, tmp_path / "ckpt")
    (folder / "model.safetensors").write_bytes(content)
    problem = f"{folder}/model.safetensors: not a readable safetensors file ("
    with pytest.raises(CheckpointError, match=re.escape(problem)):
        load_model(folder)
    err = one_line_error(["predict", "--model", str(folder), "--onset", str(any_image(tmp_path)), "--apex", str(any_image(tmp_path))], capsys)
    assert problem in err


def test_weights_cut_short_by_an_interrupted_copy_name_the_file(checkpoint, tmp_path, capsys):
    folder = copy_checkpoint(checkpoint, tmp_path / "ckpt")
    whole = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(whole[: len(whole) * 2 // 3])  # the header is whole, the tensors not
    err = one_line_error(["predict", "--model", str(folder), "--onset", str(any_image(tmp_path)), "--apex", str(any_image(tmp_path))], capsys)
    assert f"{folder}/model.safetensors: not a readable safetensors file (" in err


def _loop(folder, output_dir, **overrides):
    from microau_hf.train.loop import LoopSettings

    return LoopSettings(data=str(folder), output_dir=str(output_dir), aus="samm", preset="test", batch_size=4,
                        epochs=1, cpu=True, logging_steps=1, **overrides)


def test_a_killed_save_leaves_nothing_behind_and_odd_folders_do_not_break_resume(tiny_corpus, tmp_path):
    from microau_hf.train.loop import train

    _, corpus = tiny_corpus
    run = tmp_path / "run"
    run.mkdir()
    dead = run / ".checkpoint-5.tmp-4194304-abcd"  # a pid no process can have: its writer was killed
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"\0" * 1000)
    legacy = run / ".checkpoint-3.tmp-k2j4"  # the name an earlier version gave its staging folders
    legacy.mkdir()
    (run / "checkpoint-old").mkdir()  # the user's own copy, not a step
    train(_loop(corpus, run, max_steps=2, save_steps=2))
    assert not dead.exists() and not legacy.exists() and (run / "checkpoint-old").is_dir()
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    resumed = train(_loop(corpus, run, max_steps=3, resume_from="latest"))  # checkpoint-2, not "old"
    assert (resumed / "model.safetensors").is_file()


class NotATensor:
    """Any class: a pickle that names it would run its module's code to rebuild it."""


def test_a_checkpoint_holding_a_foreign_pickle_is_refused_in_one_line(tiny_corpus, tmp_path, capsys):
    from microau_hf.train.loop import train

    _, corpus = tiny_corpus
    run = tmp_path / "run"
    train(_loop(corpus, run, max_steps=2, save_steps=2))
    torch.save({"state": NotATensor()}, run / "checkpoint-2" / "optimizer.pt")
    err = one_line_error(["train", "--data", str(corpus), "--output-dir", str(run), "--aus", "samm", "--preset", "test",
                          "--batch-size", "4", "--max-steps", "3", "--resume-from", "latest"], capsys)
    assert "optimizer.pt: holds objects other than tensors" in err


def test_a_huge_frame_is_refused_before_it_is_decoded(checkpoint, tmp_path, capsys):
    from PIL import Image

    huge = tmp_path / "huge.png"
    Image.new("L", (8000, 8000)).save(huge)  # 64 MP; decoded through the pipeline it would take gigabytes
    err = one_line_error(["predict", "--model", str(checkpoint), "--onset", str(huge), "--apex", str(huge)], capsys)
    assert f"{huge}: image is 8000x8000 px (64.0 MP), above the 25 MP limit" in err

    from microau_hf.pipeline import MicroAUDetectionPipeline
    from microau_hf.checkpoints import load_model

    detector = MicroAUDetectionPipeline(model=load_model(checkpoint), device="cpu")
    result = detector({"onset": str(huge), "apex": str(huge)})
    assert result["status"] == "bad_image" and "25 MP limit" in result["message"]


def test_a_folder_pair_in_a_format_not_read_is_listed_not_skipped(checkpoint, tmp_path):
    from PIL import Image

    from microau_hf.inference import MicroAUPredictor

    face = Image.new("RGB", (128, 128), (120, 100, 90))
    face.save(tmp_path / "a_onset.png"), face.save(tmp_path / "a_apex.png")
    face.save(tmp_path / "b_onset.gif"), face.save(tmp_path / "b_apex.gif")
    results = {r.name: r for r in MicroAUPredictor.from_pretrained(checkpoint, device="cpu").predict_folder(tmp_path)}
    assert set(results) == {"a", "b"}
    assert results["b"].status == "unsupported_format" and ".gif is not a format read here" in results["b"].message


def test_a_video_cut_short_says_so(checkpoint, tmp_path):
    from skimage import data

    from microau_hf.inference import MicroAUPredictor
    from microau_hf.video import probe_video, write_video

    face = np.ascontiguousarray(data.astronaut()[:320, 64:384])
    whole = write_video(tmp_path / "whole.avi", [face] * 60, fps=25, codec="MJPG")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 5])  # the download stopped at 40 %
    assert probe_video(cut).frame_count == 60  # the header still claims them all
    predictor = MicroAUPredictor.from_pretrained(checkpoint, device="cpu")
    result = predictor.predict_video(cut)
    assert result.truncated and result.truncated_by == "file_cut_short"
    assert "of 60 decoded" in result.note and result.to_dict()["note"] == result.note
    intact = predictor.predict_video(whole)
    assert not intact.truncated and intact.note == ""


def test_a_misspelt_config_field_is_refused_with_a_suggestion(tiny_corpus, tmp_path, capsys):
    from microau_hf import make_config

    with pytest.raises(ValueError, match=r"'use_gdaa' \(did you mean 'use_gda'\?\)"):
        make_config("samm", preset="test", use_gdaa=False)
    _, corpus = tiny_corpus
    err = one_line_error(["train", "--data", str(corpus), "--output-dir", str(tmp_path / "run"), "--aus", "samm",
                          "--preset", "test", "--max-steps", "1", "--config", '{"lambda_gdd": 0}'], capsys)
    assert "'lambda_gdd' (did you mean 'lambda_gd'?)" in err and not (tmp_path / "run" / "final").exists()


def test_a_damaged_dataset_folder_and_a_file_as_output_folder_are_one_line(tiny_corpus, tmp_path, capsys):
    _, corpus = tiny_corpus
    damaged = tmp_path / "damaged"
    shutil.copytree(corpus, damaged)
    arrow = next(damaged.glob("data-*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:1000])
    for command in ("train", "evaluate"):
        err = one_line_error([command, "--data", str(damaged), "--output-dir", str(tmp_path / command)], capsys)
        assert f"{damaged}: the dataset is damaged or unreadable" in err
    (tmp_path / "a_file").write_text("mine")
    err = one_line_error(["train", "--data", str(corpus), "--output-dir", str(tmp_path / "a_file"), "--aus", "samm",
                          "--preset", "test", "--max-steps", "1"], capsys)
    assert "a_file: exists and is a file" in err and (tmp_path / "a_file").read_text() == "mine"


def test_a_checkpoint_path_that_does_not_exist_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        load_model(tmp_path / "runs" / "missing" / "final")


def test_an_incomplete_checkpoint_is_never_pushed(checkpoint, tmp_path):
    from microau_hf.hub import PushError, check_checkpoint

    folder = copy_checkpoint(checkpoint, tmp_path / "ckpt")
    weights = load_file(folder / "model.safetensors")
    save_file(dict(list(weights.items())[:10]), folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(PushError, match=f"cover 10 of the model's {len(weights)} tensors"):
        check_checkpoint(folder)
