"""The `microau` command line: every subcommand answers --help; bad input is one line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures_corpora import build_corpus
from fresh_process import run_without_package
from microau.cli import build_parser, main

SUBCOMMANDS = ["quickstart", "synth", "convert", "train", "evaluate", "predict", "push", "space"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert len(capsys.readouterr().out.splitlines()) > 3


def test_the_entry_point_is_installed():
    result = subprocess.run([sys.executable, "-m", "microau", "--help"], capture_output=True, text=True, timeout=120)
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
    document = json.loads((tmp_path / "out.json").read_text())
    assert (document["schema"], document["schema_version"], document["kind"]) == ("micro-au-clip/results", 2, "pairs")
    result = document["items"]
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


# -- a command line that respects the user's time -------------------------------------------------------------------


def _run_without_torch(code: str) -> None:
    """Run ``code`` in a fresh interpreter and fail if it imported torch (or transformers, or MediaPipe)."""
    script = f"""
import sys
{code}
heavy = sorted(name for name in ("torch", "transformers", "mediapipe", "microau_hf") if name in sys.modules)
assert not heavy, f"imported {{heavy}}"
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", [[], *([c] for c in SUBCOMMANDS)])
def test_help_answers_without_importing_torch(command):
    _run_without_torch(f"from microau.cli import main\nassert main({command + ['--help']!r}) == 0")


def test_a_bad_output_path_is_refused_before_anything_loads(checkpoint, tmp_path):
    _astronaut_pair(tmp_path, "a")
    argv = ["predict", "--model", str(checkpoint), "--onset", str(tmp_path / "a_onset.png"),
            "--apex", str(tmp_path / "a_apex.png"), "--out", str(tmp_path / "result.txt")]
    _run_without_torch(f"from microau.cli import main\nassert main({argv!r}) == 2")


def _options(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {a.option_strings or a.dest}", a, sub) for a in sub._actions)


def test_every_option_has_help_and_every_subcommand_an_example():
    parser = build_parser()
    missing = [name for name, action, _ in _options(parser) if not (action.help or "").strip()]
    assert not missing, missing
    subcommands = {sub.prog: sub for _, _, sub in _options(parser)}
    assert len(subcommands) == len(SUBCOMMANDS)
    assert all(sub.format_help().rstrip().splitlines()[-1].strip().startswith("microau ") for sub in subcommands.values())


def test_the_parser_offers_the_package_s_au_sets_and_presets():
    from microau import cli
    from microau_hf.aus import AU_SETS
    from microau_hf.presets import PRESETS

    assert set(cli.AU_SET_NAMES) == set(AU_SETS) and set(cli.PRESET_NAMES) == set(PRESETS)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "--model", "{ckpt}", "--onset", "{img}"], "--onset needs --apex"),
        (["predict", "--model", "{ckpt}", "--onset", "{img}", "--apex", "{img}", "--every-frame"], "--every-frame: for --video only"),
        (["predict", "--model", "{ckpt}", "--onset", "{tmp}/missing.png", "--apex", "{img}"], "missing.png: no such file"),
        (["predict", "--model", "{tmp}/nowhere/ckpt", "--onset", "{img}", "--apex", "{img}"], "no such checkpoint"),
        (["predict", "--model", "{ckpt}", "--onset", "{img}", "--apex", "{img}", "--threshold", "2"], "[0, 1]"),
        (["predict", "--model", "{ckpt}", "--onset", "{img}", "--apex", "{img}", "--device", "gpu0"], "cuda:N"),
        (["evaluate", "--data", "{img}", "--output-dir", "{tmp}/run"], "is a file, not a folder"),
        (["train", "--data", "{tmp}", "--output-dir", "{img}"], "exists and is a file"),
        (["synth", "--out", "{tmp}/s", "--contact-sheet", "{tmp}/sheet.jpg"], ".png"),
        (["train", "--data", "{tmp}", "--output-dir", "{tmp}/r", "--config", "{{bad json"], "not JSON"),
        (["train", "--data", "{tmp}", "--output-dir", "{tmp}/r", "--learning-rate", "inf"], "finite"),
        (["convert", "casme2", "--root", "{tmp}", "--out", "{tmp}/c", "--annotation", "{img}"], "give a .xlsx or .xlsm"),
        (["synth", "--out", "{tmp}/s", "--amplitude", "5", "1"], "microau synth: error: --amplitude 5 1: LOW must"),
        (["train", "--data", "{tmp}", "--output-dir", "{tmp}/r", "--overwrite", "--resume-from", "latest"],
         "microau train: error: --overwrite replaces"),
    ],
)
def test_arguments_are_checked_in_one_line(argv, message, checkpoint, tmp_path, capsys):
    _astronaut_pair(tmp_path, "a")
    values = {"{ckpt}": str(checkpoint), "{img}": str(tmp_path / "a_onset.png"), "{tmp}": str(tmp_path)}
    for key, value in values.items():
        argv = [a.replace(key, value) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_an_unavailable_device_is_refused_before_the_model_loads(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    _astronaut_pair(tmp_path, "a")
    (tmp_path / "config.json").write_text("{}")  # not a loadable checkpoint: loading it would fail differently
    code = main(["predict", "--model", str(tmp_path), "--onset", str(tmp_path / "a_onset.png"),
                 "--apex", str(tmp_path / "a_apex.png"), "--device", "cuda"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--device cuda" in err and "no CUDA device" in err and len(err.splitlines()) == 1


def test_predict_prints_a_bounded_summary_and_writes_the_rest(checkpoint, tmp_path, capsys, monkeypatch):
    from microau_hf import commands

    monkeypatch.setattr(commands, "SUMMARY_ITEMS", 2)
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    for name in ("a", "b", "c"):
        _astronaut_pair(pairs, name)
    assert main(["predict", "--model", str(checkpoint), "--folder", str(pairs)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("a: ") and out[1].startswith("b: ") and out[2] == "... and 1 more"
    assert "--out" in out[-1] and len(out) == 4
    assert main(["predict", "--model", str(checkpoint), "--folder", str(pairs), "--out", "-"]) == 0
    assert [item["name"] for item in json.loads(capsys.readouterr().out)["items"]] == ["a", "b", "c"]


def test_the_console_command_hides_third_party_log_noise_unless_verbose(tmp_path):
    pytest.importorskip("mediapipe")
    quiet = subprocess.run([sys.executable, "-m", "microau", "synth", "--out", str(tmp_path / "q"), "--num-samples", "3"],
                           capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    verbose = subprocess.run([sys.executable, "-m", "microau", "synth", "--out", str(tmp_path / "v"), "--num-samples", "3",
                              "--verbose"], capture_output=True, text=True, timeout=300)
    noise = ("XNNPACK", "W0000", "absl::InitializeLog")
    assert any(word in verbose.stderr for word in noise), verbose.stderr  # the filter, not luck, removes it
    assert not any(word in quiet.stderr for word in noise), quiet.stderr
    assert "synthetic samples" in quiet.stderr  # progress bars pass through


def test_the_log_filter_keeps_partial_lines_and_drops_only_noise():
    import os

    from microau.quiet import _forward

    source_read, source_write = os.pipe()
    target_read, target_write = os.pipe()
    os.write(source_write, b"W0000 00:00:1796171868.426848    5921 inference_feedback_manager.cc:114] Feedback\n"
                           b"bar  10%\rbar  20%\rINFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
                           b"faces:  0%|          | 0/3 [00:00<?, ?sample/s]W0000 00:00:1796174646.491607   24277 "
                           b"inference_feedback_manager.cc:114] Feedback manager requires a model\n"
                           b"microau predict: error: a.png: no face found\nWARNING: something of ours\nlast")
    os.close(source_write)
    _forward(source_read, target_write)
    os.close(target_write)
    kept = os.read(target_read, 65536)
    assert kept == (b"bar  10%\rbar  20%\rfaces:  0%|          | 0/3 [00:00<?, ?sample/s]"
                    b"microau predict: error: a.png: no face found\nWARNING: something of ours\nlast")


def test_the_log_filter_holds_every_start_of_a_noise_line_until_it_ends():
    from microau.quiet import MAYBE_NOISE

    # A read may end anywhere inside a noise line; what it has of the line so far must wait for the rest.
    markers = (b"W0000 00:00:1796171868.426848  5921 file.cc:114]", b"INFO: Created TensorFlow Lite",
               b"WARNING: All log messages before absl::InitializeLog")
    cut = [marker[:n] for marker in markers for n in range(1, len(marker) + 1)]
    assert [start for start in cut if not MAYBE_NOISE.search(b"bar 10%|" + start)] == []


def test_a_pair_that_cannot_be_scored_is_one_line_and_writes_nothing(checkpoint, tmp_path):
    pytest.importorskip("mediapipe")
    _astronaut_pair(tmp_path, "a")
    broken = tmp_path / "broken.png"
    broken.write_bytes((tmp_path / "a_onset.png").read_bytes()[:2000])  # a cut-off PNG
    out = tmp_path / "result.json"
    result = subprocess.run([sys.executable, "-m", "microau", "predict", "--model", str(checkpoint), "--onset",
                             str(broken), "--apex", str(tmp_path / "a_apex.png"), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and not out.exists() and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "broken.png" in lines[0] and "cannot read" in lines[0], result.stderr


def test_the_log_filter_outlives_a_crash_and_keeps_its_message():
    code = """
import os
from microau.quiet import third_party_logs_filtered
with third_party_logs_filtered():
    os.write(2, b"W0000 00:00:1796171868.426848    5921 inference_feedback_manager.cc:114] Feedback\\n")
    os.write(2, b"F0000 check failed: the native library's last words\\n")
    os.abort()
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "check failed: the native library's last words" in result.stderr and "Fatal Python error" in result.stderr
    assert "Feedback" not in result.stderr
