"""Every ```python block of README.md runs as written.

Each block runs on its own (a fresh namespace) in a temporary folder laid out as the repository's root after
`microau quickstart`: `outputs/quickstart/checkpoint` (here the tests' tiny checkpoint) and `spaces_app/examples/`
(the Space's example frames and video, copied from the repository). The ```bash blocks are one-line commands
(set-up, quickstart, predict, convert, evaluate, accelerate launch) and are not run here: the command line has its
own tests (test_cli.py), and training at scale needs data and machines a test does not have.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks() -> list[tuple[int, str]]:
    """(first line number, code) of each ```python block of the README."""
    text = README.read_text()
    return [(text.count("\n", 0, match.start()) + 2, match.group(1)) for match in BLOCK.finditer(text)]


BLOCKS = python_blocks()


@pytest.fixture(scope="module")
def user_folder(checkpoint, tmp_path_factory) -> Path:
    """The repository's root as a user has it after the quickstart, in a temporary folder."""
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(checkpoint, folder / "outputs" / "quickstart" / "checkpoint")
    shutil.copytree(ROOT / "spaces_app" / "examples", folder / "spaces_app" / "examples")
    return folder


def test_the_readme_has_its_python_blocks():
    assert len(BLOCKS) >= 4, "README.md lost its Python examples (or this test's pattern no longer finds them)"


def test_the_files_the_blocks_name_are_in_the_repository():
    named = {path for _, code in BLOCKS for path in re.findall(r"spaces_app/examples/[\w.]+", code)}
    assert named and all((ROOT / path).is_file() for path in named), sorted(named)


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_block_runs(line: int, code: str, user_folder: Path, monkeypatch):
    monkeypatch.chdir(user_folder)
    exec(compile(code, f"README.md, block at line {line}", "exec"), {"__name__": "__readme__"})


def test_the_blocks_write_what_they_say(user_folder: Path):
    """After the blocks ran (parametrized above, in file order): the files they write exist and hold results."""
    if not (user_folder / "spotted.json").exists():
        pytest.skip("runs after test_block_runs (run the whole module)")
    import json

    spotted = json.loads((user_folder / "spotted.json").read_text())
    assert spotted["schema"] == "micro-au-clip/results" and spotted["kind"] == "video"
    assert any(i["kind"] == "micro" for i in spotted["video"]["intervals"])  # the example's micro-smile
    rows = (user_folder / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + 3  # a header and the three example pairs
    assert (user_folder / "timeline.png").stat().st_size > 0
    assert (user_folder / "my-checkpoint" / "model.safetensors").is_file()
