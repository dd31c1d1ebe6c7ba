"""Run the `microau` console command as a user does: a fresh process of the installed entry point."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

MICROAU = Path(sys.executable).with_name("microau")  # the console script installed beside this interpreter


def microau(*argv: object, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """``microau ARGV...`` in a fresh process; its exit code, stdout and stderr."""
    return subprocess.run([str(MICROAU), *map(str, argv)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def start_microau(*argv: object) -> subprocess.Popen:
    """``microau ARGV...`` started in the background (for runs that meet another run)."""
    return subprocess.Popen([str(MICROAU), *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def error_lines(stderr: str) -> list[str]:
    """What stderr says besides progress bars (tqdm redraws with \\r): the lines a user reads as messages."""
    lines = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", stderr).replace("\r", "\n").splitlines()  # tqdm's cursor moves too
    return [line for line in lines if line.strip() and "%|" not in line]


def one_error(result: subprocess.CompletedProcess, code: int = 2) -> str:
    """The single error line of a refused run (exit ``code``, no traceback); fails the test otherwise."""
    lines = error_lines(result.stderr)
    assert result.returncode == code, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr[-3000:]
    return lines[0]
