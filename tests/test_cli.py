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
    assert results["protocol"] == "LOSO" and len(results["folds"]) == 2
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
