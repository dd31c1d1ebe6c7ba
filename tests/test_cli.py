"""The `microau` command line: every subcommand answers --help; bad input is one line and a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures_corpora import build_corpus
from fresh_process import run_without_package
from microau_hf.cli import build_parser, main

SUBCOMMANDS = ["quickstart", "synth", "convert", "train", "evaluate", "predict", "push", "space"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert len(capsys.readouterr().out.splitlines()) > 3


def test_the_entry_point_is_installed():
    result = subprocess.run([sys.executable, "-m", "microau_hf.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and all(c in result.stdout for c in SUBCOMMANDS)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "--data", "/nonexistent/corpus", "--output-dir", "{tmp}/x"], "no such dataset folder"),
        (["push", "--model", "{tmp}", "--repo-id", "not a repo id!!", "--token", "t"], "repo"),
        (["train", "--data", "{tmp}", "--output-dir", "{tmp}/run", "--aus", "ck+"], "unknown AU set"),
        (["convert", "casme2", "--root", "{tmp}/empty", "--out", "{tmp}/out"], "empty"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(argv, message, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert message.lower() in err.lower() or "error" in err.lower()


def test_convert_from_the_command_line(tmp_path, capsys):
    root = build_corpus("casme2", tmp_path / "raw", 4)
    assert main(["convert", "casme2", "--root", str(root), "--out", str(tmp_path / "out")]) == 0
    from datasets import load_from_disk

    assert len(load_from_disk(str(tmp_path / "out"))) == 4
    assert "written" in capsys.readouterr().out.lower()


def test_quickstart_end_to_end_at_test_size(tmp_path, capsys):
    code = main(["quickstart", "--out", str(tmp_path / "qs"), "--num-samples", "24", "--folds", "2", "--epochs", "1",
                 "--preset", "test", "--aus", "samm"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| **mean** |" in out and "label-free emotion" in out and "next:" in out
    results = json.loads((tmp_path / "qs" / "loso" / "results.json").read_text())
    assert results["protocol"].startswith("LOSO, 2 of ") and len(results["folds"]) == 2
    assert (tmp_path / "qs" / "per_au_f1.png").stat().st_size > 1000
    checkpoint = tmp_path / "qs" / "checkpoint"
    run_without_package(
        f"""
        from transformers import AutoModel, AutoProcessor
        model = AutoModel.from_pretrained({str(checkpoint)!r}, trust_remote_code=True)
        processor = AutoProcessor.from_pretrained({str(checkpoint)!r}, trust_remote_code=True)
        assert model.config.aus == [2, 4, 7, 12]
        """,
        cwd=tmp_path,
    )


def _astronaut_pair(folder: Path, name: str) -> None:
    from PIL import Image
    from skimage.data import astronaut

    face = astronaut()[:300, 100:400]
    Image.fromarray(face).save(folder / f"{name}_onset.png")
    Image.fromarray(face).save(folder / f"{name}_apex.png")


def test_predict_a_pair_to_json(checkpoint, tmp_path, capsys):
    _astronaut_pair(tmp_path, "a")
    code = main(["predict", "--model", str(checkpoint), "--onset", str(tmp_path / "a_onset.png"),
                 "--apex", str(tmp_path / "a_apex.png"), "--out", str(tmp_path / "out.json")])
    assert code == 0
    result = json.loads((tmp_path / "out.json").read_text())
    assert len(result) == 1 and len(result[0]["aus"]) == 8
    assert all(0 <= au["score"] <= 1 for au in result[0]["aus"]) and result[0]["status"] in ("aligned", "template")


def test_predict_a_folder_lists_the_bad_item_and_exits_nonzero(checkpoint, tmp_path, capsys):
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    _astronaut_pair(pairs, "good")
    (pairs / "bad_onset.png").write_bytes(b"not an image at all")
    (pairs / "bad_apex.png").write_bytes(b"not an image at all")
    code = main(["predict", "--model", str(checkpoint), "--folder", str(pairs), "--out", str(tmp_path / "out.csv")])
    assert code == 1
    err = capsys.readouterr().err
    assert "bad" in err and "Traceback" not in err
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert len(rows) == 3  # header, the good pair with its AU columns, the bad one with its status


def test_predict_with_a_folder_that_is_not_a_checkpoint(tmp_path, capsys):
    _astronaut_pair(tmp_path, "a")
    code = main(["predict", "--model", str(tmp_path), "--onset", str(tmp_path / "a_onset.png"),
                 "--apex", str(tmp_path / "a_apex.png")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "checkpoint" in err.lower()
