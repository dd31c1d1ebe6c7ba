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
    """A small synthetic corpus from the two public-domain faces: 2 subjects, saved to disk, SAMM's 4 AUs."""
    from microau_hf.data.faces import load_faces
    from microau_hf.data.synthetic import make_synthetic_corpus

    folder = tmp_path_factory.mktemp("corpus") / "synthetic"
    return make_synthetic_corpus(folder, num_samples=32, seed=0, image_size=64, aus="samm",
                                 faces=load_faces(public_domain_only=True)), folder
