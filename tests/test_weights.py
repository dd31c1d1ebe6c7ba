"""Weights checked once, in the one loader the CLI, the pipeline, the Space and push use: readable, complete, finite,
of the config's shapes, trained on the AUs the config lists. Each refusal is one line naming the file."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fresh_process import run_without_package
from microau_hf.checkpoints import CheckpointError, load_model
from microau_hf.modeling_micro_au_clip import AUS_METADATA_KEY
from microau_hf.pipeline import TASK, CheckpointRefused
from test_bad_inputs import any_image, copy_checkpoint, one_line_error

QUERIES = "patch_token_attention.au_queries"  # one tensor every model has, shaped (number of AUs, projection size)


def recorded_aus(folder) -> list[int] | None:
    with safe_open(str(folder / "model.safetensors"), framework="pt") as weights:
        value = (weights.metadata() or {}).get(AUS_METADATA_KEY)
    return None if value is None else json.loads(value)


def rewrite_weights(folder, change, metadata: dict | None = None) -> None:
    """``model.safetensors`` with ``change(tensors)`` applied; by default keeping the file's own metadata."""
    path = folder / "model.safetensors"
    if metadata is None:
        with safe_open(str(path), framework="pt") as weights:
            metadata = weights.metadata()
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path, metadata=metadata)


def edit_config(folder, change) -> None:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def predict_argv(folder, tmp_path) -> list[str]:
    image = str(any_image(tmp_path))
    return ["predict", "--model", str(folder), "--onset", image, "--apex", image]


def test_save_pretrained_records_the_au_list_in_the_weights_also_from_the_remote_code(checkpoint, tmp_path):
    from microau_hf import MicroAUClipModel

    aus = json.loads((checkpoint / "config.json").read_text())["aus"]
    assert recorded_aus(checkpoint) == aus
    sharded = tmp_path / "sharded"
    MicroAUClipModel.from_pretrained(checkpoint).save_pretrained(sharded, max_shard_size="200KB")
    shards = sorted(sharded.glob("model-*.safetensors"))
    assert len(shards) > 1
    for shard in shards:
        with safe_open(str(shard), framework="pt") as weights:
            assert json.loads(weights.metadata()[AUS_METADATA_KEY]) == aus
    assert load_model(sharded).config.aus == aus
    # A Hub user without this package: AutoModel with the remote code copied beside the weights saves it too.
    run_without_package(f"""
        import json
        from safetensors import safe_open
        from transformers import AutoModel
        AutoModel.from_pretrained({str(checkpoint)!r}, trust_remote_code=True).save_pretrained({str(tmp_path / "auto")!r})
        with safe_open({str(tmp_path / "auto" / "model.safetensors")!r}, framework="pt") as weights:
            assert json.loads(weights.metadata()[{AUS_METADATA_KEY!r}]) == {aus!r}, weights.metadata()
    """, cwd=tmp_path)


@pytest.mark.parametrize("edit", ["reversed", "relabelled"])
def test_a_config_listing_other_aus_than_the_weights_learnt_is_refused(checkpoint, tmp_path, capsys, edit):
    folder = copy_checkpoint(checkpoint, tmp_path / "ckpt")
    aus = json.loads((folder / "config.json").read_text())["aus"]
    edited = aus[::-1] if edit == "reversed" else [6 if au == 12 else au for au in aus]  # AU6 was never trained
    edit_config(folder, lambda config: config.update(aus=edited))
    listed = ", ".join(map(str, edited))
    with pytest.raises(CheckpointError, match=rf"config.json: lists AUs {listed} but the weights were trained on AUs "
                                              rf"{', '.join(map(str, aus))}"):
        load_model(folder)
    err = one_line_error(predict_argv(folder, tmp_path), capsys)
    assert f"{folder}/config.json: lists AUs {listed}" in err


def test_a_checkpoint_saved_before_the_au_list_was_recorded_still_loads(checkpoint, tmp_path):
    folder = copy_checkpoint(checkpoint, tmp_path / "old")
    rewrite_weights(folder, lambda tensors: None, metadata={"format": "pt"})  # what save_pretrained wrote before
    assert recorded_aus(folder) is None
    model = load_model(folder)
    assert model.config.aus == json.loads((folder / "config.json").read_text())["aus"]
    expected = load_file(checkpoint / "model.safetensors")[QUERIES]
    assert torch.equal(model.state_dict()[QUERIES], expected)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_tensor_holding_nan_or_inf_is_refused_by_the_cli_the_pipeline_push_and_the_space(checkpoint, tmp_path,
                                                                                           capsys, bad):
    from transformers import pipeline

    from microau_hf.hub import PushError, check_checkpoint

    folder = copy_checkpoint(checkpoint, tmp_path / "ckpt")
    rewrite_weights(folder, lambda tensors: tensors[QUERIES].view(-1).__setitem__(slice(0, 3), bad))
    kind = "NaN" if math.isnan(bad) else "Inf"
    problem = f"{folder}/model.safetensors: tensor {QUERIES} holds 3 {kind} value(s)"
    with pytest.raises(CheckpointError, match=re.escape(problem)):
        load_model(folder)
    assert problem in one_line_error(predict_argv(folder, tmp_path), capsys)
    with pytest.raises(CheckpointRefused, match=re.escape(problem)):
        pipeline(TASK, model=str(folder), device="cpu")
    with pytest.raises(PushError, match=re.escape(problem)):
        check_checkpoint(folder)
    if kind == "NaN":  # the Space's start-up, once (it imports Gradio)
        assert problem in one_line_error(["space", "--model", str(folder)], capsys)


def test_a_tensor_of_another_shape_is_one_line_naming_it(checkpoint, tmp_path, capsys):
    folder = copy_checkpoint(checkpoint, tmp_path / "ckpt")
    rewrite_weights(folder, lambda tensors: tensors.update({QUERIES: torch.zeros(3, 7)}))
    err = one_line_error(predict_argv(folder, tmp_path), capsys)
    wanted = tuple(load_file(checkpoint / "model.safetensors")[QUERIES].shape)
    assert f"{folder}/model.safetensors: tensor {QUERIES} has shape (3, 7) where the model its config.json " \
           f"describes has {wanted}" in err


def test_the_pipeline_loads_through_the_checkpoint_loader(checkpoint, tmp_path):
    from transformers import pipeline

    folder = copy_checkpoint(checkpoint, tmp_path / "half")
    weights = load_file(folder / "model.safetensors")
    save_file(dict(list(weights.items())[: len(weights) // 2]), folder / "model.safetensors", metadata={"format": "pt"})
    for model in (str(folder), folder):  # a string is loaded by transformers.pipeline, a Path by the pipeline class
        with pytest.raises(CheckpointRefused, match=f"cover {len(weights) // 2} of the model's {len(weights)} "
                                                    f"tensors"):
            pipeline(TASK, model=model, device="cpu")
    detector = pipeline(TASK, model=checkpoint, device="cpu")  # a sound checkpoint, given as a Path
    assert detector.model.config.aus == json.loads((checkpoint / "config.json").read_text())["aus"]


def test_the_results_json_never_holds_a_bare_nan(tmp_path):
    from microau_hf.inference import AUScore, Prediction, save_results

    prediction = Prediction("pair", "aligned", aus=[AUScore(12, "AU12 Lip corner puller", math.nan, False)],
                            emotion_scores={"happiness": math.inf})

    def refuse(token: str):
        raise ValueError(f"a bare {token} token")

    document = json.loads(save_results([prediction], tmp_path / "r.json").read_text(), parse_constant=refuse)
    assert document["items"][0]["aus"][0]["score"] is None
    assert document["items"][0]["emotion_scores"] == {"happiness": None}
    rows = save_results([prediction], tmp_path / "r.csv").read_text().splitlines()
    assert rows[1].endswith(",") and "nan" not in rows[1].lower()
