"""Publishing to the Hub, with the real `huggingface_hub` client against the local test Hub (`tests/hub_server.py`)."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, Features, Image, List, Value
from huggingface_hub import HfApi, ModelCard, constants, hf_api, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from PIL import Image as PILImage
from transformers import TrainingArguments
from transformers.utils import hub as transformers_hub

from fresh_process import run_without_package
from hub_server import HubServer
from microau_hf import MicroAUClipModel, make_config
from microau_hf.face import build_processor
from microau_hf.hub import PushError, push_checkpoint, render_model_card
from microau_hf.train import make_trainer

TOKEN = "hf_test_token"
USER = "tester"
MEAN_F1 = 0.51234


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The test Hub, with this process's hub client pointed at it.

    huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE and HF_HUB_DISABLE_XET once, when it is imported (conftest set
    offline mode before that), and module-level HfApi objects keep the endpoint they were built with; so the constants
    and those objects are patched for this module, and the environment is set for subprocesses.
    """
    home = tmp_path_factory.mktemp("hf_home")
    with HubServer(tokens={TOKEN: USER}) as server, pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "ENDPOINT": server.url,
            "HUGGINGFACE_CO_URL_TEMPLATE": server.url + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HUB_OFFLINE": False,
            # With hf_xet installed the client sends LFS files through Xet, which the test Hub does not speak.
            "HF_HUB_DISABLE_XET": True,
            # No saved token may leak in from this machine: "push without a token" must mean no token at all.
            "HF_TOKEN_PATH": str(home / "token"),
            "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        }.items():
            patch.setattr(constants, name, value)
        patch.setattr(hf_api.api, "endpoint", server.url)
        patch.setattr(transformers_hub, "_hf_api", None)  # transformers caches an HfApi built at first use
        for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
            patch.delenv(variable, raising=False)
        patch.setenv("HF_HOME", str(home))
        yield server


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny trained-looking checkpoint as training leaves it: `run/model/` (weights, code, processor) and
    `run/results.json` (the evaluation)."""
    run = tmp_path_factory.mktemp("run")
    config = make_config("casme2", preset="test")
    torch.manual_seed(0)
    model = MicroAUClipModel(config).eval()
    with torch.no_grad():  # move the temperature off its initial value, so a wrong load shows in the outputs
        model.logit_scale.add_(0.3)
    model.save_pretrained(run / "model")
    build_processor(config).save_pretrained(run / "model")
    per_au = {name: {"f1": 0.5, "precision": 0.5, "recall": 0.5, "support": 3, "macro_f1_for_comparison": 0.7}
              for name in config.au_names}
    results = {
        "protocol": "LOSO", "dataset": ["synthetic"], "aus": config.aus, "input_mode": config.input_mode,
        "settings": {"threshold": "fixed"},
        "scores": {"mean_f1": MEAN_F1, "mean_precision": 0.5, "mean_recall": 0.5, "mean_macro_f1_for_comparison": 0.7,
                   "num_samples": 24, "per_au": per_au},
        "emotion": {"emotion": {"uf1": 0.31, "uar": 0.35, "samples": 20, "unscorable_labels": 4}},
    }
    (run / "results.json").write_text(json.dumps(results))
    return run / "model", model, config


@pytest.fixture(scope="module")
def pushed(hub, checkpoint):
    folder, _, _ = checkpoint
    repo_id = f"{USER}/micro-au-clip-tiny"
    return repo_id, push_checkpoint(folder, repo_id, token=TOKEN)


def test_push_uploads_weights_code_processor_and_a_filled_card(hub, checkpoint, pushed, tmp_path):
    folder, _, _ = checkpoint
    repo_id, url = pushed
    assert url.startswith(f"{hub.url}/{repo_id}/commit/")
    local = Path(snapshot_download(repo_id, cache_dir=tmp_path / "cache"))
    names = {p.name for p in local.iterdir()}
    assert {"model.safetensors", "config.json", "configuration_micro_au_clip.py", "modeling_micro_au_clip.py",
            "processing_micro_au_clip.py", "processor_config.json", "tokenizer.json", "README.md",
            "results.json"} <= names
    assert filecmp.cmp(local / "model.safetensors", folder / "model.safetensors", shallow=False)
    tree = {entry.path: entry for entry in HfApi().list_repo_tree(repo_id)}
    assert tree["model.safetensors"].lfs is not None  # went through the LFS batch protocol, as on the Hub
    siblings = {s.rfilename: s for s in HfApi().model_info(repo_id, files_metadata=True).siblings}
    assert siblings["model.safetensors"].lfs.sha256 == tree["model.safetensors"].lfs.sha256
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in siblings)

    card = ModelCard.load(local / "README.md")
    assert card.data.library_name == "transformers" and card.data.license == "apache-2.0"
    assert card.data.pipeline_tag == "image-classification"
    assert {"micro-expression", "action-units", "facs", "clip", "custom_code", "synthetic-data"} <= set(card.data.tags)
    assert card.data.datasets == ["synthetic"]
    mean = [r for r in card.data.eval_results if r.metric_name.startswith("mean AU F1")]
    assert [(r.metric_type, r.metric_value) for r in mean] == [("f1", round(MEAN_F1, 4))]
    assert "LOSO" in mean[0].metric_name and mean[0].task_name == "Micro-expression action unit detection"
    uf1 = [r for r in card.data.eval_results if r.metric_name.startswith("UF1")]
    assert [(r.task_name, r.metric_value) for r in uf1] == [("Label-free micro-expression emotion recognition", 0.31)]
    assert "**`difference`**" in card.text and "Not for lie detection" in card.text and "arXiv:2603.16302" in card.text
    assert "macro F1 (for comparison only)" in card.text and "Synthetic data." in card.text


def test_the_hub_copy_loads_in_a_fresh_process_without_the_package(hub, checkpoint, pushed, tmp_path):
    _, model, config = checkpoint
    repo_id, _ = pushed
    rng = np.random.default_rng(0)
    onset, apex = (rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(2))
    np.save(tmp_path / "onset.npy", onset), np.save(tmp_path / "apex.npy", apex)
    inputs = build_processor(config)(onset=onset, apex=apex)
    with torch.no_grad():
        torch.save({"inputs": dict(inputs), "logits": model(**inputs).logits}, tmp_path / "expected.pt")
    body = f"""
        import numpy as np, torch
        from transformers import AutoModel, AutoProcessor
        model = AutoModel.from_pretrained({repo_id!r}, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained({repo_id!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        expected = torch.load("expected.pt", weights_only=True)
        inputs = processor(onset=np.load("onset.npy"), apex=np.load("apex.npy"))
        for key, value in expected["inputs"].items():
            torch.testing.assert_close(inputs[key], value, rtol=0, atol=0)
        with torch.no_grad():
            torch.testing.assert_close(model(**inputs).logits, expected["logits"], rtol=0, atol=0)
        """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGING_FACE"))}
    env.update({"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": str(tmp_path / "hf_home"), "TOKENIZERS_PARALLELISM": "false"})
    run_without_package(body, cwd=tmp_path, env=env)


def test_private_push_is_invisible_without_a_token(hub, checkpoint):
    folder, _, _ = checkpoint
    repo_id = f"{USER}/private-tiny"
    push_checkpoint(folder, repo_id, token=TOKEN, private=True)
    assert HfApi(token=TOKEN).model_info(repo_id).private
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).model_info(repo_id)


def tiny_corpus(aus: list[int], count: int = 4) -> Dataset:
    rng = np.random.default_rng(0)
    onsets = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(count)]
    # The apex: the same crop again with its own sensor noise (two independent noise frames would not register).
    apexes = [np.clip(onset + rng.normal(0, 3, onset.shape), 0, 255).astype(np.uint8) for onset in onsets]
    frames = [PILImage.fromarray(frame) for frame in onsets + apexes]
    features = Features({"subject": Value("string"), "sample_id": Value("string"), "onset": Image(), "apex": Image(),
                         "aus": List(Value("int32"))})
    return Dataset.from_dict({
        "subject": [f"s{i % 2}" for i in range(count)],
        "sample_id": [f"s{i % 2}/clip{i}" for i in range(count)],
        "onset": frames[:count],
        "apex": frames[count:],
        "aus": [aus[i::count] for i in range(count)],  # every AU occurs somewhere, as the trainer requires
    }, features=features)


def test_trainer_push_to_hub_lands_on_the_hub(hub, tmp_path):
    config = make_config("casme2", preset="test")
    repo_id = f"{USER}/trainer-push"
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), push_to_hub=True, hub_model_id=repo_id, hub_token=TOKEN, use_cpu=True,
        report_to="none", max_steps=1, per_device_train_batch_size=4, remove_unused_columns=False,
        save_strategy="no", dataloader_num_workers=0,
    )
    # Noise frames hold no face: given as pre-aligned crops (template regions), as a corpus of crops would be.
    trainer = make_trainer(MicroAUClipModel(config), build_processor(config), tiny_corpus(config.aus), args,
                           landmarker=None)
    trainer.train()
    commit = trainer.push_to_hub()
    assert commit.commit_url.startswith(f"{hub.url}/{repo_id}/commit/")
    files = set(HfApi().list_repo_files(repo_id))
    assert {"model.safetensors", "config.json", "configuration_micro_au_clip.py", "modeling_micro_au_clip.py",
            "README.md"} <= files


@pytest.mark.parametrize("repo_id", ["no spaces allowed", "a/b/c", f"{USER}/bad--name", f"{USER}/-dash", "bare-name"])
def test_a_malformed_repo_id_is_refused_in_one_line(checkpoint, repo_id):
    with pytest.raises(PushError, match="repo id") as error:
        push_checkpoint(checkpoint[0], repo_id, token=TOKEN)
    assert "\n" not in str(error.value)


def test_a_push_without_a_token_says_how_to_log_in(hub, checkpoint):
    with pytest.raises(PushError, match="hf auth login") as error:
        push_checkpoint(checkpoint[0], f"{USER}/no-token")
    assert "\n" not in str(error.value)
    assert not HfApi(token=TOKEN).repo_exists(f"{USER}/no-token")


def test_the_test_hub_itself_refuses_writes_without_a_valid_token(hub, checkpoint):
    with pytest.raises(HfHubHTTPError) as error:
        HfApi().create_repo(f"{USER}/anonymous", token=False)
    assert error.value.response.status_code == 401
    with pytest.raises(PushError, match="refused the token") as error:
        push_checkpoint(checkpoint[0], f"{USER}/wrong-token", token="hf_not_a_real_token")
    assert "\n" not in str(error.value)


def _empty(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink()


def _other_model_type(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "clip"}))


def _nested_pickle(folder: Path) -> None:
    (folder / "checkpoint-1").mkdir()
    torch.save({"step": 1}, folder / "checkpoint-1" / "optimizer.pt")


@pytest.mark.parametrize("damage, message", [
    (_empty, "no config.json"),
    (_other_model_type, "model_type 'clip'"),
    (lambda folder: (folder / "model.safetensors").unlink(), "no model.safetensors"),
    (lambda folder: (folder / "processor_config.json").unlink(), "no processor_config.json"),
    (lambda folder: (folder / "modeling_micro_au_clip.py").unlink(), "lacks modeling_micro_au_clip.py"),
    (lambda folder: torch.save({"lr": 1e-3}, folder / "training_args.bin"), "pickle"),
    (_nested_pickle, "pickle"),
])
def test_a_folder_that_is_not_a_clean_checkpoint_is_refused_in_one_line(hub, checkpoint, tmp_path, damage, message):
    folder = tmp_path / "model"
    shutil.copytree(checkpoint[0], folder)
    damage(folder)
    with pytest.raises(PushError, match=message) as error:
        push_checkpoint(folder, f"{USER}/refused", token=TOKEN)
    assert "\n" not in str(error.value)
    assert not HfApi(token=TOKEN).repo_exists(f"{USER}/refused")


def test_results_for_another_au_set_are_refused(checkpoint, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(checkpoint[0], folder)
    results = json.loads((checkpoint[0].parent / "results.json").read_text())
    (folder / "results.json").write_text(json.dumps({**results, "aus": [1, 2]}))
    with pytest.raises(PushError, match="evaluates AUs"):
        render_model_card(folder, f"{USER}/x")


def test_an_unevaluated_checkpoint_says_so_and_claims_no_scores(checkpoint, tmp_path):
    folder = tmp_path / "alone" / "model"
    shutil.copytree(checkpoint[0], folder)
    card = render_model_card(folder, f"{USER}/unevaluated")
    assert "Not evaluated" in card.text and "model-index" not in str(card)
    assert card.data.eval_results is None and card.data.datasets is None
    assert card.data.library_name == "transformers"
