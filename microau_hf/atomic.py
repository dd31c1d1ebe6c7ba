"""Every file the tool writes goes through here: atomic writes, the write rule, and one run per output.

Atomic: everything is written into a hidden sibling (same file system, so the final `os.replace` is atomic) and
renamed into place only once complete; a failure removes the sibling and leaves any previous output untouched.
The write rule (`OutputRule`): never an input, a checkpoint's files or a file this package did not write; its own
earlier output only with --overwrite. The lock (`output_lock`): a second run writing the same output is refused.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


# -- the write rule: what a command may replace ------------------------------------------------------------------------
#
# One rule for every file the tool writes: never an input of the same command, never a checkpoint's files, never a
# file it did not write; its own earlier output only with --overwrite. "A file it wrote" is known by content where
# the content can say so: a JSON document this package writes carries ``"schema": "micro-au-clip/..."``; a folder it
# writes (a checkpoint, a corpus) holds only the files named below. A CSV, PNG or Markdown file cannot say who wrote
# it, so an existing one is replaced only with --overwrite, as the user's own decision.

#: The start of the ``"schema"`` value of every JSON document this package writes.
SCHEMA_PREFIX = "micro-au-clip/"

#: What this package writes into a checkpoint folder: `save_pretrained` (config, weights, remote code), the processor
#: (tokenizer, processor config), the training record, evaluate's results, and the loop's resumable state.
CHECKPOINT_FILES = (
    "config.json", "*_config.json", "*.safetensors", "*.safetensors.index.json", "*_micro_au_clip.py",
    "tokenizer*.json", "vocab.json", "merges.txt", "special_tokens_map.json", "training_data.json", "results.json",
    "results.md", "optimizer.pt", "scheduler.pt", "rng_state.pt", "trainer_state.json",
)
#: A folder holding ``config.json`` and one of these is a checkpoint: nothing is ever written into it.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def is_checkpoint_folder(folder: str | os.PathLike) -> bool:
    folder = Path(folder)
    return (folder / "config.json").is_file() and any((folder / name).is_file() for name in WEIGHT_FILES)


def carries_our_schema(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a JSON document this package wrote (its ``"schema"`` starts with :data:`SCHEMA_PREFIX`)."""
    import json

    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(document, dict) and str(document.get("schema", "")).startswith(SCHEMA_PREFIX)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class OutputRule:
    """The write rule of one command run: ``inputs`` (option -> path; Hub ids and unset options are ignored) are
    what it reads, ``overwrite`` is the user's ``--overwrite``. Each check raises `FileExistsError` in one line
    naming the file and what to do, before any work is done."""

    def __init__(self, inputs: dict[str, str | os.PathLike | None], overwrite: bool = False,
                 flag: str = "--overwrite"):
        self.inputs = {option: Path(path).resolve() for option, path in inputs.items()
                       if path is not None and Path(path).expanduser().exists()}
        self.overwrite, self.flag = overwrite, flag

    def check_place(self, path: str | os.PathLike, option: str) -> Path:
        """``path`` is not an input, not inside an input folder, and not inside a checkpoint folder."""
        path = Path(path)
        resolved = path.resolve()
        for input_option, source in self.inputs.items():
            if resolved == source:
                raise FileExistsError(f"{path}: is the input of {input_option}; {option} must name another path")
            if source.is_dir() and _inside(resolved, source):
                raise FileExistsError(f"{path}: lies in {source}, the input folder of {input_option}; {option} must "
                                      f"be outside it")
        for folder in (resolved, *resolved.parents):
            if is_checkpoint_folder(folder):
                where = "is a checkpoint folder" if folder == resolved else f"lies in the checkpoint folder {folder}"
                raise FileExistsError(f"{path}: {where}, whose files are never replaced; {option} must be outside it")
        return path

    def check_file(self, path: str | os.PathLike, option: str) -> Path:
        """A file output: in a permitted place, and if it exists, this package's own (JSON) and ``overwrite``."""
        path = self.check_place(path, option)
        if path.exists() or path.is_symlink():
            self._check_earlier_file(path, option)
            if not self.overwrite:
                raise FileExistsError(f"{path}: already exists; pass {self.flag} to replace it")
        return path

    def check_replaced_folder(self, out: str | os.PathLike, option: str,
                              own_files: Sequence[str] = DATASET_FOLDER_FILES) -> Path:
        """A folder the command replaces whole (a corpus): in a permitted place, and `check_replaceable`."""
        out = self.check_place(out, option)
        check_replaceable(out, self.overwrite, self.flag, own_files)
        return out

    def check_folder(self, out: str | os.PathLike, option: str, writes: Sequence[str], continuing: bool = False,
                     or_else: str = "") -> list[Path]:
        """A folder the command writes the entries ``writes`` (glob patterns) into, leaving everything else in it
        alone. Returns the entries an earlier run left there; they are replaced only with ``overwrite`` (or, with
        ``continuing``, the run goes on from them), and never when they hold files this package did not write.
        ``or_else`` names another way on in the refusal (e.g. "--resume-from latest to continue it")."""
        out = self.check_place(out, option)
        if out.exists() and not out.is_dir():
            raise FileExistsError(f"{out}: exists and is a file; {option} must be a folder")
        earlier = sorted(p for p in out.iterdir() if _matches(p.name, writes)) if out.is_dir() else []
        for entry in earlier:
            if entry.is_dir() and not entry.is_symlink():
                _check_own_folder(entry, option)
            else:
                self._check_earlier_file(entry, option)
        if earlier and not (self.overwrite or continuing):
            listed = ", ".join(p.name for p in earlier[:3]) + (" ..." if len(earlier) > 3 else "")
            ways = [f"pass {self.flag} to replace it", *([or_else] if or_else else []), f"choose another {option}"]
            raise FileExistsError(f"{out}: holds an earlier run's output ({listed}); {', or '.join(ways)}")
        return earlier

    def _check_earlier_file(self, path: Path, option: str) -> None:
        if path.is_symlink() or not path.is_file():
            raise FileExistsError(f"{path}: exists and is not a plain file; {option} must name another path")
        if path.suffix.lower() == ".json" and not carries_our_schema(path):
            raise FileExistsError(f"{path}: exists and was not written by microau (no \"schema\": "
                                  f"\"{SCHEMA_PREFIX}...\" in it); refusing to replace it, choose another {option}")


def _check_own_folder(folder: Path, option: str) -> None:
    """An earlier output folder (a checkpoint, per-fold logs) holds only the files this package writes there."""
    if folder.is_symlink():
        raise FileExistsError(f"{folder}: is a link; refusing to replace it, choose another {option}")
    foreign = sorted(p for p in folder.rglob("*") if not p.is_dir() and not _matches(p.name, CHECKPOINT_FILES))
    if foreign:
        raise FileExistsError(f"{foreign[0]}: was not written by microau; refusing to replace {folder}, move the file "
                              f"or choose another {option}")


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` with the same extension (for writers that take a path, such as
    ``savefig``); on normal exit it replaces ``path`` in one rename, on failure it is removed."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def atomic_plot(plot: Callable[[Any, Path], Any], data: Any, path: str | os.PathLike) -> Path:
    """``plot(data, path)`` written through :func:`atomic_file`: a figure that fails half-way leaves no broken PNG."""
    with atomic_file(path) as staged:
        plot(data, staged)
    return Path(path)


# -- one run per output ------------------------------------------------------------------------------------------------


def lock_path(out: str | os.PathLike) -> Path:
    """Where the lock of ``out`` lives: beside it (``.NAME.lock``), so that replacing ``out`` whole keeps it."""
    out = Path(out).resolve()
    return out.parent / f".{out.name or 'root'}.lock"


@contextmanager
def output_lock(out: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold the lock of the output ``out`` while a run writes it; a second run is refused in one line naming the
    holder (command, pid, host, start time).

    The lock is an `fcntl.flock` on the lock file: the kernel drops it when its process ends, however it ends, so
    the lock file of a killed (dead) run is simply taken over; its content only names the holder.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): runs are not serialised there
        yield Path(out)
        return
    path = lock_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = _acquire(path, fcntl, out)
    try:
        _write_holder(handle, command)
        yield path
    finally:
        path.unlink(missing_ok=True)  # before the release: a waiting run then finds no lock, or a new one
        os.close(handle)


def _acquire(path: Path, fcntl, out) -> int:
    """An open, exclusively locked handle on ``path``; retried when the file was replaced between open and lock."""
    while True:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(handle)
            os.close(handle)
            raise FileExistsError(f"{out}: in use by another run ({holder}); wait for it to end or choose another "
                                  f"output") from None
        try:
            same = os.fstat(handle).st_ino == os.stat(path).st_ino  # the holder released and removed it meanwhile
        except FileNotFoundError:
            same = False
        if same:
            return handle
        os.close(handle)


def _write_holder(handle: int, command: str) -> None:
    import json
    import socket
    import time

    holder = {"command": f"microau {command}", "pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    os.ftruncate(handle, 0)
    os.pwrite(handle, json.dumps(holder).encode(), 0)


def _read_holder(handle: int) -> str:
    import json

    try:
        holder = json.loads(os.pread(handle, 4096, 0).decode())
        return f"{holder['command']}, pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its holder has not recorded itself yet"
