"""Third-party log noise off (unless `--verbose`): what a user sees on stderr is ours.

MediaPipe's C++ core (glog/absl) and TFLite write to file descriptor 2 directly, before any Python logging is set up,
and ignore the usual environment switches; so the console command routes fd 2 through a pipe and drops only the lines
known to be such noise. Everything else (our errors, tqdm bars, a real traceback) passes unchanged.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# A noise line may land in the middle of a tqdm line (both write to fd 2 unsynchronised), so it is matched anywhere
# and cut out up to its end of line.
NOISE = re.compile(
    rb"(?:[IWE]\d{4} [\d:. ]+\s*\d+ [\w.]+:\d+\]"  # glog: W0000 00:00:1796171868.426848  5921 file.cc:114] ...
    rb"|INFO: Created TensorFlow Lite"
    rb"|WARNING: All log messages before absl::InitializeLog)[^\n]*\n?"
)
# An unfinished line holding something that may start such noise is held until it ends; other text passes at once.
MAYBE_NOISE = re.compile(rb"[IWE]\d|INFO|WARN|(?:[IWE]|IN|INF|WA|WAR)$")

QUIET_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "GLOG_minloglevel": "2",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # our own bars say what is happening
}


def _pieces(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (ending in \\n or \\r, as tqdm redraws) and the unfinished rest."""
    parts = re.split(rb"(?<=[\n\r])", buffer)
    return parts[:-1], parts[-1]


def _forward(source: int, target: int) -> None:
    pending = b""
    while chunk := os.read(source, 65536):
        lines, pending = _pieces(pending + chunk)
        kept = NOISE.sub(b"", b"".join(lines))
        if pending and not MAYBE_NOISE.search(pending):
            kept, pending = kept + pending, b""
        if kept:
            os.write(target, kept)
    if pending := NOISE.sub(b"", pending):
        os.write(target, pending)


@contextmanager
def third_party_logs_filtered() -> Iterator[None]:
    """Inside: known third-party noise is dropped from stderr. The quiet environment variables and the hidden
    library warnings (all but ours) stay set: the console command ends when this does.

    The filter is a forked process that reads the pipe until its last writer closes it, so it outlives a crash of
    this one (an abort or a segfault still shows its message) and a child process that inherited stderr.
    """
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"microau_hf\b.*")
    if not hasattr(os, "fork"):  # Windows: the environment switches only
        yield
        return
    sys.stderr.flush()
    real_stderr = os.dup(2)
    read_end, write_end = os.pipe()
    filter_pid = os.fork()  # before torch or MediaPipe start threads: the console has loaded neither yet
    if filter_pid == 0:
        os.close(write_end)
        try:
            _forward(read_end, real_stderr)
        finally:
            os._exit(0)
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    faulthandler.enable()  # a native crash's Python stack, through the filter
    try:
        yield
    finally:
        gc.collect()  # MediaPipe graphs held in reference cycles log as they close: let them close in here
        sys.stderr.flush()
        os.dup2(real_stderr, 2)  # drops our write end: the filter drains the pipe and stops at its end
        os.close(real_stderr)
        _wait(filter_pid, seconds=5.0)  # so its last lines come before the shell's prompt


def _wait(pid: int, seconds: float) -> None:
    """Reap the filter process, giving up after ``seconds`` (a child that inherited stderr may keep it open)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return
        time.sleep(0.01)
