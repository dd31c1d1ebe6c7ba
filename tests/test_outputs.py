"""Nothing a user owns is lost: the write rule (microau_hf/atomic.py) and the output lock, run as a user runs them.

The rule: a command never replaces one of its inputs, a checkpoint's files, or a file microau did not write; it
replaces its own earlier output only with --overwrite. A second run into an output in use is refused, naming the
holder; the lock of a killed run is taken over. Each refusal is one line, exit 2, and leaves every file as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from console import error_lines, start_microau
from microau.cli import main

TINY_TRAIN = ["--aus", "samm", "--preset", "test", "--batch-size", "4", "--max-steps", "1", "--pre-aligned",
              "--device", "cpu"]
TINY_EVALUATE = ["--aus", "samm", "--preset", "test", "--epochs", "1", "--batch-size", "8", "--max-folds", "1",
                 "--pre-aligned", "--device", "cpu"]


def _refused(argv: list, capsys) -> str:
    """The one error line of a refused command (exit 2, no traceback, nothing else on stderr but progress bars)."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = error_lines(err)
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    return lines[0]


def _snapshot(*folders: Path) -> dict[Path, bytes]:
    """Every file under ``folders`` (hidden ones too: a lock or staging file left behind shows) with its bytes."""
    return {p: p.read_bytes() for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


def _pair(folder: Path) -> tuple[Path, Path]:
    from PIL import Image
    from skimage.data import astronaut

    face = astronaut()[:300, 100:400]
    Image.fromarray(face).save(folder / "onset.png")
    Image.fromarray(face).save(folder / "apex.png")
    return folder / "onset.png", folder / "apex.png"


@pytest.fixture
def user_files(checkpoint, tmp_path):
    """A user's folder: a pair, a folder of pairs holding a JSON file, a frame folder, their own .json and .csv
    files, a video's per-frame CSV, and a checkpoint of theirs (with its evaluation) that no command reads."""
    onset, apex = _pair(tmp_path)
    pairs, frames = tmp_path / "pairs", tmp_path / "frames"
    pairs.mkdir(), frames.mkdir()
    shutil.copy(onset, pairs / "a_onset.png"), shutil.copy(apex, pairs / "a_apex.png")
    (pairs / "notes.json").write_text('{"mine": true}')
    for index in range(12):
        shutil.copy(onset, frames / f"f{index:04d}.png")
    (tmp_path / "mine.json").write_text('{"mine": true}')
    (tmp_path / "mine.csv").write_text("a,b\n1,2\n")
    (tmp_path / "spotted.frames.csv").write_text("a,b\n1,2\n")
    other = shutil.copytree(checkpoint, tmp_path / "other_checkpoint")
    (other / "results.json").write_text('{"scores": {}}')
    (other / "results.md").write_text("| AU | F1 |\n")
    return tmp_path


PREDICT_REFUSALS = [
    (["--onset", "{tmp}/onset.png", "--apex", "{tmp}/apex.png", "--out", "{ckpt}/config.json"],
     "the input folder of --model"),
    (["--onset", "{tmp}/onset.png", "--apex", "{tmp}/apex.png", "--out", "{tmp}/other_checkpoint/results.json",
      "--overwrite"], "lies in the checkpoint folder"),
    (["--onset", "{tmp}/onset.png", "--apex", "{tmp}/apex.png", "--out", "{tmp}/mine.json", "--overwrite"],
     "mine.json: exists and was not written by microau"),
    (["--onset", "{tmp}/onset.png", "--apex", "{tmp}/apex.png", "--out", "{tmp}/mine.csv"],
     "mine.csv: already exists; pass --overwrite"),
    (["--folder", "{tmp}/pairs", "--out", "{tmp}/pairs/notes.json", "--overwrite"], "the input folder of --folder"),
    (["--video", "{tmp}/frames", "--fps", "25", "--plot", "{tmp}/frames/f0010.png", "--overwrite"],
     "f0010.png: lies in"),
    (["--video", "{tmp}/frames", "--fps", "25", "--out", "{tmp}/spotted.csv"], "spotted.frames.csv: already exists"),
]


@pytest.mark.parametrize("argv, message", PREDICT_REFUSALS, ids=[m for _, m in PREDICT_REFUSALS])
def test_predict_never_writes_over_an_input_a_checkpoint_or_a_file_it_did_not_write(argv, message, user_files,
                                                                                   checkpoint, capsys):
    before = _snapshot(user_files, checkpoint)
    argv = [a.replace("{tmp}", str(user_files)).replace("{ckpt}", str(checkpoint)) for a in argv]
    err = _refused(["predict", "--model", checkpoint, "--pre-aligned", *argv], capsys)
    assert message in err, err
    assert _snapshot(user_files, checkpoint) == before  # nothing replaced, nothing added (no lock left either)


def test_predict_replaces_its_own_earlier_result_only_with_overwrite(checkpoint, tmp_path, capsys):
    onset, apex = _pair(tmp_path)
    argv = ["predict", "--model", checkpoint, "--onset", onset, "--apex", apex, "--pre-aligned", "--out",
            tmp_path / "result.json"]
    assert main([str(a) for a in argv]) == 0
    first = (tmp_path / "result.json").read_bytes()
    assert "result.json: already exists; pass --overwrite" in _refused(argv, capsys)
    assert (tmp_path / "result.json").read_bytes() == first
    assert main([str(a) for a in [*argv, "--threshold", "0.9", "--overwrite"]]) == 0
    assert json.loads((tmp_path / "result.json").read_text())["schema"] == "micro-au-clip/results"


def test_evaluate_never_writes_into_a_checkpoint(user_files, tiny_corpus, capsys):
    _, corpus = tiny_corpus
    other = user_files / "other_checkpoint"
    before = _snapshot(other)
    err = _refused(["evaluate", "--data", corpus, "--output-dir", other, "--overwrite", *TINY_EVALUATE], capsys)
    assert "other_checkpoint: is a checkpoint folder" in err
    assert _snapshot(other) == before


def test_evaluate_replaces_its_own_earlier_evaluation_only_with_overwrite(tiny_corpus, tmp_path, capsys):
    _, corpus = tiny_corpus
    out = tmp_path / "evaluation"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["evaluate", "--data", corpus, "--output-dir", out, "--save-model", *TINY_EVALUATE]
    assert main([str(a) for a in argv]) == 0
    assert json.loads((out / "results.json").read_text())["schema"] == "micro-au-clip/evaluation"
    earlier = _snapshot(out)
    assert "holds an earlier run's output" in _refused(argv, capsys)
    (out / "checkpoint" / "mine.txt").write_text("mine")  # a file of the user's in a folder evaluate replaces
    assert "checkpoint/mine.txt: was not written by microau" in _refused([*argv, "--overwrite"], capsys)
    (out / "checkpoint" / "mine.txt").unlink()
    assert _snapshot(out) == earlier
    assert main([str(a) for a in [*argv, "--overwrite"]]) == 0
    assert (out / "notes.txt").read_text() == "mine"  # what evaluate does not write is left alone


def test_an_evaluation_that_microau_did_not_write_is_never_replaced(tiny_corpus, tmp_path, capsys):
    _, corpus = tiny_corpus
    (tmp_path / "results.json").write_text('{"my": "results"}')
    err = _refused(["evaluate", "--data", corpus, "--output-dir", tmp_path, "--overwrite", *TINY_EVALUATE], capsys)
    assert "results.json: exists and was not written by microau" in err
    assert (tmp_path / "results.json").read_text() == '{"my": "results"}'


def test_train_into_an_earlier_run_needs_overwrite_and_never_deletes_a_user_s_file(tiny_corpus, tmp_path, capsys):
    _, corpus = tiny_corpus
    run = tmp_path / "run"
    argv = ["train", "--data", corpus, "--output-dir", run, "--save-steps", "1", *TINY_TRAIN]
    assert main([str(a) for a in argv]) == 0
    (run / "notes.txt").write_text("mine")
    err = _refused([*argv, "--seed", "1"], capsys)
    assert "holds an earlier run's output" in err and "--overwrite" in err and "--resume-from latest" in err
    (run / "final" / "notes.txt").write_text("mine")
    earlier = _snapshot(run)
    assert "final/notes.txt: was not written by microau" in _refused([*argv, "--seed", "1", "--overwrite"], capsys)
    assert _snapshot(run) == earlier
    (run / "final" / "notes.txt").unlink()
    assert main([str(a) for a in [*argv, "--seed", "1", "--overwrite", "--save-steps", "0"]]) == 0
    assert not (run / "checkpoint-1").exists()  # the earlier run's checkpoint went with it: no resume mixes runs
    assert [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()] == [1]
    assert (run / "notes.txt").read_text() == "mine"
    assert "give one of them" in _refused([*argv, "--overwrite", "--resume-from", "latest"], capsys)


def test_train_never_writes_into_its_data_or_a_checkpoint(tiny_corpus, user_files, capsys):
    _, corpus = tiny_corpus
    before = _snapshot(corpus, user_files / "other_checkpoint")
    err = _refused(["train", "--data", corpus, "--output-dir", corpus / "run", *TINY_TRAIN], capsys)
    assert "the input folder of --data" in err
    err = _refused(["train", "--data", corpus, "--output-dir", user_files / "other_checkpoint" / "run", *TINY_TRAIN],
                   capsys)
    assert "lies in the checkpoint folder" in err
    assert _snapshot(corpus, user_files / "other_checkpoint") == before


def test_a_batch_larger_than_the_data_is_refused_instead_of_training_nothing(tiny_corpus, tmp_path, capsys):
    _, corpus = tiny_corpus  # 32 rows; full batches only: before, no step ran (and --max-steps waited forever)
    argv = ["train", "--data", corpus, "--output-dir", tmp_path / "run", *TINY_TRAIN, "--batch-size", "64"]
    assert "32 usable samples, fewer than one batch of 64" in _refused(argv, capsys)
    assert not (tmp_path / "run").exists()


def test_amplitude_is_named_as_the_user_typed_it(tmp_path, capsys):
    err = _refused(["synth", "--out", tmp_path / "s", "--amplitude", "5", "1"], capsys)
    assert "--amplitude 5 1: LOW must not exceed HIGH" in err and "amplitude_px" not in err


# -- one run per output ----------------------------------------------------------------------------------------------


ATOMIC = Path(__file__).resolve().parent.parent / "microau_hf" / "atomic.py"


@pytest.fixture
def holder(tmp_path):
    """A process holding the locks of ``tmp_path / name`` for each name (as runs writing them do) until killed.
    It loads atomic.py by its path (standard library only), so it starts at once."""
    started = []

    def hold(*names: str) -> subprocess.Popen:
        code = (f"import importlib.util, time\nspec = importlib.util.spec_from_file_location('atomic', {str(ATOMIC)!r})\n"
                "atomic = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(atomic)\n"
                f"locks = [atomic.output_lock(path, 'train') for path in {[str(tmp_path / n) for n in names]!r}]\n"
                "[lock.__enter__() for lock in locks]\nprint('held', flush=True)\ntime.sleep(600)\n")
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield hold
    for process in started:
        process.kill()
        process.wait()


def test_a_run_into_an_output_in_use_is_refused_naming_the_holder_and_a_dead_one_is_taken_over(
        tiny_corpus, checkpoint, tmp_path, holder, capsys):
    _, corpus = tiny_corpus
    onset, apex = _pair(tmp_path)
    runs = {
        "run": ["train", "--data", corpus, "--output-dir", tmp_path / "run", *TINY_TRAIN],
        "evaluation": ["evaluate", "--data", corpus, "--output-dir", tmp_path / "evaluation", *TINY_EVALUATE],
        "corpus": ["synth", "--out", tmp_path / "corpus", "--num-samples", "2"],
        "result.json": ["predict", "--model", checkpoint, "--onset", onset, "--apex", apex, "--out",
                        tmp_path / "result.json"],
    }
    process = holder(*runs)
    for name, argv in runs.items():
        err = _refused(argv, capsys)
        assert f"{name}: in use by another run (microau train, pid {process.pid} on {socket.gethostname()}" in err
        assert not (tmp_path / name).exists()
    os.kill(process.pid, signal.SIGKILL)  # killed: its lock files stay, naming a dead process
    process.wait()
    stale = tmp_path / ".run.lock"
    assert json.loads(stale.read_text())["pid"] == process.pid
    assert main([str(a) for a in runs["run"]]) == 0
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file() and not stale.exists()


def test_two_trains_started_together_into_one_folder_one_is_refused(tiny_corpus, tmp_path):
    _, corpus = tiny_corpus
    argv = ["train", "--data", corpus, "--output-dir", tmp_path / "run", "--aus", "samm", "--preset", "test",
            "--batch-size", "4", "--max-steps", "2", "--pre-aligned", "--device", "cpu"]
    runs = [start_microau(*argv, "--seed", seed) for seed in (1, 2)]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, _, err in results if code == 2)
    lines = error_lines(loser)
    # Refused at the lock while the other runs, or after it, by its finished run: either way one line, no write.
    assert len(lines) == 1 and ("in use by another run" in lines[0] or "holds an earlier run" in lines[0]), loser
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == [2]  # one run's log (written at its last step), not two interleaved
