"""Test-wide settings: nothing may reach the network, and runs stay small on a 2-core machine."""

import os

for variable, value in {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(variable, value)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """A small synthetic corpus from the two public-domain faces: 2 subjects, saved to disk, SAMM's 4 AUs, camera-like
    frames (the face pipeline finds the faces)."""
    from microau_hf.data.faces import load_faces
    from microau_hf.data.synthetic import make_synthetic_corpus

    folder = tmp_path_factory.mktemp("corpus") / "synthetic"
    corpus = make_synthetic_corpus(folder, num_samples=32, seed=1, aus="samm",
                                   faces=load_faces(public_domain_only=True))
    for subject in set(corpus["subject"]):  # so that a LOSO fold trains on every AU (seed 0 left AU12 out of one)
        shown = {au for row, aus in zip(corpus["subject"], corpus["aus"]) if row == subject for au in aus}
        assert shown == {2, 4, 7, 12}, f"tiny corpus: subject {subject} shows only AUs {sorted(shown)}"
    return corpus, folder


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A saved tiny checkpoint (test preset, CASME II AUs, seed 0) with its processor: what a user's folder holds."""
    import torch

    from microau_hf import MicroAUClipModel, make_config
    from microau_hf.face import build_processor

    folder = tmp_path_factory.mktemp("checkpoint")
    torch.manual_seed(0)
    config = make_config("casme2", preset="test")
    MicroAUClipModel(config).save_pretrained(folder)
    build_processor(config).save_pretrained(folder)
    return folder
