"""The public API a user reaches first: `from microau_hf import MicroAUPredictor`, its one loader, and the one
logits-to-probabilities step (`au_probabilities`) that training and inference share."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import microau_hf
from microau_hf import MicroAUPredictor, au_probabilities
from microau_hf.checkpoints import CheckpointError

ROOT = Path(__file__).resolve().parents[1]
#: Where AU logits could be turned into probabilities: the package, the Space and the scripts.
SCANNED = [ROOT / "microau_hf", ROOT / "spaces_app", ROOT / "scripts"]
#: The one place allowed to do it.
THE_ONE = (ROOT / "microau_hf" / "modeling_micro_au_clip.py", "au_probabilities")


def test_the_predictor_is_importable_from_the_package():
    from microau_hf.inference import MicroAUPredictor as from_module

    assert MicroAUPredictor is from_module
    assert {"MicroAUPredictor", "Prediction", "VideoPrediction", "au_probabilities"} <= set(microau_hf.__all__)


def test_from_pretrained_goes_through_the_one_loader(checkpoint, monkeypatch):
    import microau_hf.inference as inference

    loaded = []
    original = inference.load_model

    def spy(path, **options):
        loaded.append(str(path))
        return original(path, **options)

    monkeypatch.setattr(inference, "load_model", spy)
    predictor = MicroAUPredictor.from_pretrained(checkpoint, device="cpu")
    assert loaded == [str(checkpoint)] and predictor.aus == list(predictor.model.config.aus)


def test_from_pretrained_refuses_what_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        MicroAUPredictor.from_pretrained(tmp_path / "missing")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path))):
        MicroAUPredictor.from_pretrained(tmp_path)


def test_au_probabilities_keeps_the_type_it_is_given():
    logits = np.array([[-30.0, -1.0, 0.0, 2.0]], dtype=np.float32)
    expected = 1 / (1 + np.exp(-logits.astype(np.float64)))
    as_array = au_probabilities(logits)
    assert isinstance(as_array, np.ndarray) and as_array.dtype == np.float32
    np.testing.assert_allclose(as_array, expected, rtol=1e-6)
    as_tensor = au_probabilities(torch.from_numpy(logits).double())
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.dtype == torch.float32
    np.testing.assert_allclose(as_tensor.numpy(), expected, rtol=1e-6)


def _probability_steps(tree: ast.AST) -> list[ast.AST]:
    """Calls of `sigmoid`/`expit` and hand-written `1 / (1 + exp(-x))` in a module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("sigmoid", "expit", "logsigmoid"):
                found.append(node)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and "exp(-" in ast.unparse(node.right):
            found.append(node)
    return found


def _inside(tree: ast.AST, function: str) -> set[int]:
    """Ids of the nodes inside the module-level function `function`."""
    return {id(n) for top in ast.iter_child_nodes(tree)
            if isinstance(top, ast.FunctionDef) and top.name == function for n in ast.walk(top)}


def test_logits_become_probabilities_in_one_place():
    others, seen_the_one = [], False
    for path in sorted(p for root in SCANNED for p in root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        allowed = _inside(tree, THE_ONE[1]) if path == THE_ONE[0] else set()
        for node in _probability_steps(tree):
            if id(node) in allowed:
                seen_the_one = True
            else:
                others.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert seen_the_one, "au_probabilities no longer applies the sigmoid: update this test"
    assert not others, "call microau_hf.au_probabilities instead:\n" + "\n".join(others)
