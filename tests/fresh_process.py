"""Run Python in a fresh process that cannot import `microau_hf`: how a Hub user without this package loads a model."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

_BLOCK_PACKAGE = """
import importlib.abc, sys
class BlockPackage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "microau_hf" or name.startswith("microau_hf."):
            raise ImportError("microau_hf must not be importable here")
sys.meta_path.insert(0, BlockPackage())
"""

_CHECK_AND_MARK = """
assert not any(m == "microau_hf" or m.startswith("microau_hf.") for m in sys.modules)
print("FRESH-PROCESS-OK")
"""


def run_without_package(body: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> None:
    """Run `body` with `microau_hf` unimportable; fail the calling test with the child's stderr unless it succeeds."""
    script = _BLOCK_PACKAGE + textwrap.dedent(body) + _CHECK_AND_MARK
    env = {**os.environ, "HF_MODULES_CACHE": str(Path(cwd) / "modules"), **(env or {})}
    result = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert "FRESH-PROCESS-OK" in result.stdout, result.stderr[-3000:]
