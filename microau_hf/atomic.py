"""Atomic writes: a reader sees the old output or the new one whole, never a half-written folder or file.

Everything is written into a hidden sibling (same file system, so the final `os.replace` is atomic) and renamed into
place only once complete; a failure removes the sibling and leaves any previous output untouched.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

#: What a saved ``datasets`` folder holds (with the ``cache-*.arrow`` files ``Dataset.map`` writes beside a loaded
#: dataset), and the reports and caches this package writes beside the data.
DATASET_FOLDER_FILES = (
    "dataset_info.json", "state.json", "data-*.arrow", "cache-*.arrow", "conversion_report.json", "face_report.json",
    "microau_face_cache.safetensors",
)


def check_replaceable(out: str | os.PathLike, overwrite: bool, flag: str = "--overwrite",
                      own_files: Sequence[str] = DATASET_FOLDER_FILES) -> None:
    """Refuse, in one line, to write over anything the command did not create itself.

    An empty or absent ``out`` is fine. A non-empty one is replaced only with ``overwrite`` (the user's ``flag``),
    and only when every entry in it matches ``own_files`` (what an earlier run wrote): a folder that also holds the
    user's own files is never replaced, whatever the flag says.
    """
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out}: exists and is a file; choose another output folder")
    entries = sorted(out.iterdir())
    if not entries:
        return
    foreign = [p.name for p in entries if p.is_dir() or not any(fnmatch.fnmatch(p.name, g) for g in own_files)]
    if foreign:
        listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise FileExistsError(f"{out}: holds files this command did not write ({listed}); refusing to replace it, "
                              f"choose another output folder")
    if not overwrite:
        raise FileExistsError(f"{out}: already exists; pass {flag} to replace it")


@contextmanager
def atomic_directory(out: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder; on normal exit it replaces `out` (a previous `out` is removed)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # The pid in the name tells a later run whether the writer of a leftover staging folder is still alive.
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    staged, old = work / "new", work / "old"
    staged.mkdir()
    try:
        yield staged
        if out.exists():
            os.replace(out, old)
        try:
            os.replace(staged, out)
        except OSError:
            if old.exists():
                os.replace(old, out)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def remove_stale_staging(folder: str | os.PathLike, names: str = "*") -> list[Path]:
    """Remove the staging folders that :func:`atomic_directory` left in ``folder`` for outputs matching ``names``
    when their writer died (a killed run); a writer still running keeps its own. Returns what was removed."""
    removed = []
    for staging in Path(folder).glob(f".{names}.tmp-*"):
        pid = staging.name.rpartition(".tmp-")[2].split("-")[0]
        if staging.is_dir() and not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(staging, ignore_errors=True)
            removed.append(staging)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file through a temporary sibling and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
