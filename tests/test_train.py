"""Training and evaluation: metrics, protocols, the one training recipe of the Trainer and the Accelerate loop (2
processes, FSDP on CPU), thresholds from inner subjects, exact and refused resumes."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import evaluate
import numpy as np
import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file

from microau_hf import MicroAUClipModel, make_config
from microau_hf.checkpoints import read_training_data
from microau_hf.emotion import (chance_uf1_uar, evaluate_emotions, predict_classes, score_emotions,
                                 score_objective_classes, uf1_uar)
from microau_hf.face import build_processor
from microau_hf.train import au_detection_scores, best_thresholds, check_dataset, loso_folds, make_trainer, training_arguments
from microau_hf.train import au_f1
from microau_hf.train.loop import LoopSettings, train
from microau_hf.train.loso import ProtocolSettings, inner_split, run_protocol
from microau_hf.train.metrics import invented_au_rates
from microau_hf.train.protocols import subject_keys

REPO = Path(__file__).resolve().parent.parent


def test_f1_is_the_positive_class_and_macro_f1_is_labelled_apart():
    labels = np.array([[1, 0], [1, 0], [0, 0], [0, 1]])
    predictions = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    scores = au_detection_scores(labels, predictions, ["AU1", "AU2"])
    # AU1: tp 1, fp 1, fn 1 -> F1 0.5; negatives: tn 1, fp 1, fn 1 -> 0.5. AU2: tp 0, fn 1 -> F1 0; negatives F1 6/7.
    assert scores["per_au"]["AU1"]["f1"] == pytest.approx(0.5)
    assert scores["per_au"]["AU2"]["f1"] == 0.0
    assert scores["per_au"]["AU2"]["macro_f1_for_comparison"] == pytest.approx((0 + 6 / 7) / 2)
    assert scores["mean_f1"] == pytest.approx(0.25)
    assert scores["mean_macro_f1_for_comparison"] > scores["mean_f1"]


def test_invented_aus_are_counted_on_single_au_and_neutral_samples():
    labels = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 1, 0]])
    predictions = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]])
    rates = invented_au_rates(labels, predictions, ["AU1", "AU2", "AU4"])
    # Single-AU samples 0 and 1: AU2 invented on sample 0 (1 of 1), AU1 never (0 of 1), AU4 never (0 of 2).
    assert rates["per_au"]["AU2"] == {"rate": 1.0, "samples": 1}
    assert rates["per_au"]["AU4"] == {"rate": 0.0, "samples": 2}
    assert rates["overall"] == pytest.approx(1 / 4) and rates["single_au_samples"] == 2
    assert rates["neutral"] == pytest.approx(1 / 3) and rates["neutral_samples"] == 1  # the two-AU row is neither


def test_evaluate_module_loads_by_path_offline():
    metric = evaluate.load(au_f1.__file__)
    result = metric.compute(predictions=[[1, 0], [1, 1]], references=[[1, 0], [0, 1]], au_names=["AU1", "AU2"])
    assert result["per_au"]["AU2"]["f1"] == 1.0 and result["per_au"]["AU1"]["f1"] == pytest.approx(2 / 3)


def test_thresholds_come_from_the_data_they_are_given():
    labels = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    probabilities = np.array([[0.3, 0.9], [0.35, 0.1], [0.1, 0.2], [0.2, 0.3]])
    assert best_thresholds(labels, probabilities).tolist() == pytest.approx([0.25, 0.5])  # no positive: 0.5 kept


def test_emotions_are_scored_from_aus_only():
    aus = [1, 2, 4, 6, 7, 12, 15, 17]
    smile = np.array([0.05, 0.05, 0.05, 0.9, 0.1, 0.95, 0.05, 0.05])
    assert predict_classes(score_emotions(smile, aus)) == ["happiness"]
    assert predict_classes(score_objective_classes(smile, aus)) == [1]
    brows = np.array([0.9, 0.9, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05])
    assert predict_classes(score_emotions(brows, aus)) == ["surprise"]
    result = evaluate_emotions(np.stack([smile, brows]), aus, ["happiness", "others"], [1, 2])
    assert result["emotion"]["samples"] == 1 and result["emotion"]["unscorable_labels"] == 1
    assert result["objective_class"]["uar"] == 1.0
    assert result["objective_class"]["chance"]["uniform"]["uar"] == pytest.approx(1 / 7)  # 7 classes to guess from


def test_chance_baselines_are_what_guessing_scores():
    labels = ["a"] * 6 + ["b"] * 3 + ["c"]
    chance = chance_uf1_uar(labels, ["a", "b", "c", "d"])
    always_a = uf1_uar(labels, ["a"] * len(labels), ["a", "b", "c", "d"])
    assert chance["majority"]["label"] == "a"
    assert (chance["majority"]["uf1"], chance["majority"]["uar"]) == pytest.approx((always_a["uf1"], always_a["uar"]))
    rng = np.random.default_rng(0)  # uniform guesses over the 4 answers, averaged: the expected-count figures
    guessed = [uf1_uar(labels * 50, rng.choice(list("abcd"), 500).tolist(), list("abcd")) for _ in range(100)]
    assert np.mean([g["uf1"] for g in guessed]) == pytest.approx(chance["uniform"]["uf1"], abs=0.01)
    assert chance["uniform"]["uar"] == 0.25


def test_uf1_uar_by_hand():
    scores = uf1_uar(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert scores["uar"] == pytest.approx((0.5 + 1.0) / 2)
    assert scores["uf1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_loso_folds_hold_out_each_subject(tiny_corpus):
    dataset, _ = tiny_corpus
    folds = loso_folds(dataset)
    assert len(folds) == len(set(dataset["subject"])) == 2
    for fold in folds:
        test_subjects = {dataset[i]["subject"] for i in fold.test_indices}
        train_subjects = {dataset[i]["subject"] for i in fold.train_indices}
        assert len(test_subjects) == 1 and not test_subjects & train_subjects
    assert len(loso_folds(dataset, max_folds=1)) == 1
    with pytest.raises(ValueError, match="at least 2 subjects"):
        loso_folds(dataset.filter(lambda row: row["subject"] == dataset[0]["subject"]))


def test_bad_datasets_are_refused(tiny_corpus):
    dataset, _ = tiny_corpus
    with pytest.raises(ValueError, match="missing column"):
        check_dataset(dataset.remove_columns("apex"), [2, 4])
    with pytest.raises(ValueError, match=r"AU\(s\) \[26\] never occur"):
        check_dataset(dataset, [2, 26])
    with pytest.raises(ValueError, match="no samples"):
        check_dataset(dataset.select([]), [2])


def test_trainer_fine_tunes_and_logs_each_loss_term(tiny_corpus, tmp_path):
    dataset, _ = tiny_corpus
    config = make_config("samm", preset="test")
    torch.manual_seed(0)
    model = MicroAUClipModel(config)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    args = training_arguments(str(tmp_path), max_steps=4, per_device_train_batch_size=8, logging_steps=2,
                              eval_strategy="steps", eval_steps=4, disable_tqdm=True)
    trainer = make_trainer(model, build_processor(config), dataset, args, eval_dataset=dataset)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged and all(k in logged[0] for k in ("detection_loss", "contrastive_loss", "dependency_loss"))
    evaluated = [entry for entry in trainer.state.log_history if "eval_mean_f1" in entry]
    assert evaluated and 0 <= evaluated[0]["eval_mean_f1"] <= 1 and "eval_f1_AU12 Lip corner puller" in evaluated[0]
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters() if n in before)
    trainer.save_model(str(tmp_path / "saved"))
    assert (tmp_path / "saved" / "model.safetensors").exists() and not (tmp_path / "saved" / "training_args.bin").exists()


def test_loso_protocol_pools_predictions_and_writes_results(tiny_corpus, tmp_path):
    dataset, _ = tiny_corpus
    config = make_config("samm", preset="test")
    settings = ProtocolSettings(max_steps=2, batch_size=8, training_overrides={"disable_tqdm": True})
    results = run_protocol(dataset, config, build_processor(config), tmp_path / "run", settings, save_model_to=tmp_path / "ckpt")
    assert results["scores"]["num_samples"] == len(dataset)  # every sample tested exactly once
    assert len(results["folds"]) == 2 and all(len(f["thresholds"]) == 4 for f in results["folds"])
    written = json.loads((tmp_path / "run" / "results.json").read_text())
    assert written["scores"]["mean_f1"] == results["scores"]["mean_f1"]
    assert written["threshold"] == {"rule": "0.5 for every AU", "source": "fixed; no data"}
    summary = (tmp_path / "run" / "results.md").read_text()
    assert "macro F1 (for comparison only)" in summary and "(chance: majority UF1" in summary
    reloaded = MicroAUClipModel.from_pretrained(tmp_path / "ckpt")
    assert reloaded.config.aus == [2, 4, 7, 12] and (tmp_path / "ckpt" / "processor_config.json").exists()
    # The saved model is the last fold's, trained on the other subject's rows: the checkpoint says so.
    assert read_training_data(tmp_path / "ckpt") == {"corpora": ["synthetic"],
                                                      "num_samples": results["folds"][-1]["train_samples"]}
    assert read_training_data(tmp_path / "run") is None  # a folder without the record: it does not say


def _loop_settings(folder: Path, output_dir: Path, **overrides) -> LoopSettings:
    settings = {"aus": "samm", "preset": "test", "batch_size": 4, "epochs": 2, "cpu": True, "logging_steps": 1}
    return LoopSettings(data=str(folder), output_dir=str(output_dir), **{**settings, **overrides})


def test_resumed_run_ends_with_the_same_weights(tiny_corpus, tmp_path):
    _, folder = tiny_corpus
    straight = train(_loop_settings(folder, tmp_path / "straight", max_steps=10))
    crashed = subprocess.run(
        [sys.executable, "-m", "microau_hf.train.loop", "--data", str(folder), "--output-dir", str(tmp_path / "resumed"),
         "--aus", "samm", "--preset", "test", "--batch-size", "4", "--epochs", "2", "--cpu", "--max-steps", "10",
         "--save-steps", "5", "--stop-after-steps", "5", "--logging-steps", "1"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert crashed.returncode == 3, crashed.stderr[-2000:]
    assert (tmp_path / "resumed" / "checkpoint-5").is_dir() and not (tmp_path / "resumed" / "final").exists()
    resumed = train(_loop_settings(folder, tmp_path / "resumed", max_steps=10, resume_from="latest"))
    assert read_training_data(straight) == {"corpora": ["synthetic"], "num_samples": 32}
    expected, actual = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 11))


def test_resume_from_a_folder_that_is_not_a_checkpoint(tiny_corpus, tmp_path):
    _, folder = tiny_corpus
    (tmp_path / "not-a-checkpoint").mkdir()
    with pytest.raises(FileNotFoundError, match="not a training checkpoint"):
        train(_loop_settings(folder, tmp_path / "run", max_steps=2, resume_from=str(tmp_path / "not-a-checkpoint")))


def test_accelerate_launch_two_processes(tiny_corpus, tmp_path):
    _, folder = tiny_corpus
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", str(REPO / "scripts" / "train.py"),
        "--data", str(folder), "--output-dir", str(tmp_path / "ddp"), "--aus", "samm", "--preset", "test",
        "--batch-size", "2", "--max-steps", "6", "--warmup-ratio", "0.34", "--cpu", "--logging-steps", "1",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    final = tmp_path / "ddp" / "final"
    model = MicroAUClipModel.from_pretrained(final)
    assert model.config.aus == [2, 4, 7, 12]
    log = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == list(range(1, 7)) and all(np.isfinite(entry["loss"]) for entry in log)
    # 2 processes x 2 samples see 4 samples a step, as 1 process x 4 does: the learning rate must follow the same curve.
    train(_loop_settings(folder, tmp_path / "one", batch_size=4, max_steps=6, warmup_ratio=0.34))
    single = [json.loads(line) for line in (tmp_path / "one" / "log.jsonl").read_text().splitlines()]
    assert [entry["lr"] for entry in log] == pytest.approx([entry["lr"] for entry in single], rel=1e-6)
    assert single[-1]["lr"] < single[2]["lr"]  # a decaying schedule, not one that climbs back


def _four_subjects(dataset: Dataset) -> Dataset:
    """The tiny corpus's 2 faces as 4 subjects (every other row of a face renamed; faces take turns), so that a fold
    keeps 3 subjects to split."""
    return dataset.map(lambda row, i: {"subject": f"{row['subject']}-{i // 2 % 2}"}, with_indices=True)


def _relabel(dataset: Dataset, subjects: set[str], aus: list[int]) -> Dataset:
    keys = subject_keys(dataset)
    return dataset.map(lambda row, i: {"aus": aus if keys[i] in subjects else row["aus"]}, with_indices=True)


def test_inner_thresholds_come_from_held_out_training_subjects_never_the_test_subject(tiny_corpus, tmp_path):
    dataset = _four_subjects(tiny_corpus[0])
    config = make_config("samm", preset="test")
    settings = ProtocolSettings(max_folds=1, max_steps=2, batch_size=8, threshold="inner", inner_subjects=1,
                                training_overrides={"disable_tqdm": True})
    runs = {}

    def run(name: str, rows: Dataset) -> dict:
        runs[name] = run_protocol(rows, config, build_processor(config), tmp_path / name, settings)
        return runs[name]["folds"][0]

    fold = run("as labelled", dataset)
    test_subject, inner = fold["held_out"], fold["inner_split"]
    training_subjects = set(subject_keys(dataset)) - {test_subject}
    assert inner["held_out_subjects"] and set(inner["held_out_subjects"]) <= training_subjects  # never the test one
    assert inner["fold_training_subjects"] == 3 and inner["inner_training_subjects"] == 2
    assert runs["as labelled"]["threshold"]["source"].startswith("inner split of 3 training subjects per fold: 1 held")
    # Every AU on for the test subject: its labels change the scores, never the thresholds.
    assert run("test relabelled", _relabel(dataset, {test_subject}, [2, 4, 7, 12]))["thresholds"] == fold["thresholds"]
    assert runs["test relabelled"]["scores"] != runs["as labelled"]["scores"]
    # Every AU on for the inner held-out subject: the thresholds follow (the lowest threshold is then best).
    moved = run("inner relabelled", _relabel(dataset, set(inner["held_out_subjects"]), [2, 4, 7, 12]))["thresholds"]
    assert moved == [0.05] * 4 != fold["thresholds"]


def test_an_inner_split_needs_a_subject_left_to_train_on(tiny_corpus):
    dataset, _ = tiny_corpus
    one_subject = dataset.filter(lambda row: row["subject"] == dataset[0]["subject"])
    with pytest.raises(ValueError, match="a fold trains on 1; use threshold='fixed'"):
        inner_split(one_subject, 1, seed=0)
    train_rows, held_rows, held = inner_split(_four_subjects(dataset), 2, seed=0)
    keys = subject_keys(_four_subjects(dataset))
    assert len(held) == 2 and {keys[i] for i in held_rows} == set(held)
    assert not {keys[i] for i in train_rows} & set(held)
    with pytest.raises(ValueError, match="threshold must be one of"):
        run_protocol(dataset, make_config("samm", preset="test"), None, "unused", ProtocolSettings(threshold="train"))


def test_trainer_and_loop_build_the_same_parameter_groups(tiny_corpus, tmp_path):
    dataset, folder = tiny_corpus
    train(_loop_settings(folder, tmp_path / "loop", max_steps=1, save_steps=1))
    saved = torch.load(tmp_path / "loop" / "checkpoint-1" / "optimizer.pt", weights_only=True)
    loop_groups = {group["weight_decay"]: sorted(group["param_names"]) for group in saved["param_groups"]}

    config = make_config("samm", preset="test")
    model = MicroAUClipModel(config)
    trainer = make_trainer(model, build_processor(config), dataset, training_arguments(str(tmp_path / "trainer")))
    names = {id(p): name for name, p in model.named_parameters()}
    trainer_groups = {group["weight_decay"]: sorted(names[id(p)] for p in group["params"])
                      for group in trainer.create_optimizer().param_groups}
    assert trainer_groups == loop_groups and set(loop_groups) == {0.05, 0.0}
    decayed, free = loop_groups[0.05], loop_groups[0.0]
    assert "logit_scale" in free and "patch_token_attention.au_queries" in free
    assert any("layer_norm" in n for n in free) and all(not n.endswith("bias") for n in decayed)
    assert all(n.endswith("weight") and "norm" not in n for n in decayed)
    statistics = json.loads((tmp_path / "loop" / "final" / "config.json").read_text())
    for name in ("au_pos_weight", "au_cooccurrence"):  # from the training split, by both entry points
        np.testing.assert_allclose(getattr(model.config, name), statistics[name], rtol=1e-6, err_msg=name)


def test_a_resume_with_other_settings_is_refused_in_one_line_or_warned(tiny_corpus, tmp_path, caplog):
    _, folder = tiny_corpus
    run = tmp_path / "run"
    train(_loop_settings(folder, run, max_steps=2, save_steps=2))
    for change, named in (({"batch_size": 8}, "batch_size is 8 here but 4 in the checkpoint (the batches already"),
                          ({"seed": 1}, "seed is 1 here but 0"), ({"aus": "casme2"}, "aus is 'casme2' here but 'samm'"),
                          ({"config_overrides": {"lambda_cl": 0.5}}, "config_overrides is {'lambda_cl': 0.5} here")):
        with pytest.raises(ValueError, match="cannot resume") as refused:
            train(_loop_settings(folder, run, max_steps=3, resume_from="latest", **change))
        assert named in str(refused.value) and "\n" not in str(refused.value), change
    assert not (run / "checkpoint-3").exists() and sorted(p.name for p in run.iterdir() if p.is_dir()) == [
        "checkpoint-2", "final"]
    with caplog.at_level(logging.WARNING, logger="microau_hf.train.loop"):
        train(_loop_settings(folder, run, max_steps=3, resume_from="latest", learning_rate=0.01))
    assert "learning_rate 0.01 is ignored: the resumed optimizer keeps the checkpoint's 0.0005" in caplog.text
    assert "max_steps changed from 2 to 3" in caplog.text


def test_settings_a_run_would_ignore_are_refused_before_any_work(checkpoint, tmp_path):
    with pytest.raises(ValueError, match=r"--model .*: the checkpoint's config .* so lambda_cl would be ignored"):
        train(_loop_settings(tmp_path / "no-data", tmp_path / "run", model=str(checkpoint),
                             config_overrides={"lambda_cl": 0.5}))
    with pytest.raises(ValueError, match="au_pos_weight is set from the training split"):
        train(_loop_settings(tmp_path / "no-data", tmp_path / "run", config_overrides={"au_pos_weight": [1.0] * 4}))


def test_accelerate_configs_are_valid_for_the_installed_accelerate():
    from fsdp_loop_on_cpu import launch_environment

    from accelerate.commands.config.config_args import load_config_from_file

    folder = REPO / "configs" / "accelerate"
    configs = {path.stem: load_config_from_file(str(path)) for path in sorted(folder.glob("*.yaml"))}
    assert set(configs) == {"ddp", "ddp_multi_node", "fsdp"}
    assert configs["ddp_multi_node"].num_machines == 2 and configs["ddp_multi_node"].main_process_ip
    environment = launch_environment(folder / "fsdp.yaml")
    assert environment["ACCELERATE_USE_FSDP"] == "true" and environment["FSDP_VERSION"] == "2"
    assert environment["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"
    assert "ACCELERATE_USE_FSDP" not in launch_environment(folder / "ddp.yaml")


def _fsdp_loop(folder: Path, output_dir: Path, *flags: str) -> subprocess.CompletedProcess:
    """The loop on 2 CPU processes under Accelerate's FSDP2 with configs/accelerate/fsdp.yaml's settings, 2 samples a
    process (tests/fsdp_loop_on_cpu.py). GDLoss normalises by the AU pairs each batch involves, so halves of a batch
    would not average to the whole batch's loss; weighted 0, the comparison with one process is exact."""
    from fsdp_loop_on_cpu import launch_environment

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "tests" / "fsdp_loop_on_cpu.py"), "--data", str(folder), "--output-dir", str(output_dir),
               "--aus", "samm", "--preset", "test", "--batch-size", "2", "--max-steps", "4", "--cpu",
               "--logging-steps", "1", "--mixed-precision", "no", "--config-overrides", '{"lambda_gd": 0.0}', *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **launch_environment(), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})


def test_fsdp_through_accelerate_matches_one_process_resumes_exactly_and_saves_a_plain_model(tiny_corpus, tmp_path):
    _, folder = tiny_corpus
    straight = _fsdp_loop(folder, tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr[-3000:]
    crashed = _fsdp_loop(folder, tmp_path / "resumed", "--save-steps", "2", "--stop-after-steps", "2")
    assert crashed.returncode != 0 and not (tmp_path / "resumed" / "final").exists()
    resumed = _fsdp_loop(folder, tmp_path / "resumed", "--resume-from", "latest")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final, checkpoint = tmp_path / "straight" / "final", tmp_path / "resumed" / "checkpoint-2"
    sharded = load_file(final / "model.safetensors")
    after_resume = load_file(tmp_path / "resumed" / "final" / "model.safetensors")
    assert sharded.keys() == after_resume.keys()
    for name in sharded:
        torch.testing.assert_close(after_resume[name], sharded[name], rtol=0, atol=0, msg=name)
    halfway = load_file(checkpoint / "model.safetensors")
    tolerance = 1e-4  # of the comparison with one process below; steps 3 and 4 (LR decaying to 0) move more than it
    assert max(float((halfway[name] - sharded[name]).abs().max()) for name in sharded) > 4 * tolerance
    groups = torch.load(checkpoint / "optimizer.pt", weights_only=True)["param_groups"]  # gathered, by name
    assert [group["params"][0] for group in groups] == ["vision_model.embeddings.patch_embedding.weight",
                                                        "logit_scale"]  # the recipe's groups

    # One process on the whole batch of 4 sees what the two shards saw together.
    one = train(_loop_settings(folder, tmp_path / "one", batch_size=4, max_steps=4,
                               config_overrides={"lambda_gd": 0.0}))
    whole = load_file(one / "model.safetensors")
    assert sharded.keys() == whole.keys()
    for name in whole:
        # AdamW divides by the root of tiny second moments, so near-zero gradients (biases) carry rounding.
        torch.testing.assert_close(sharded[name], whole[name], rtol=0, atol=tolerance, msg=name)
    lr = [[json.loads(line)["lr"] for line in (run / "log.jsonl").read_text().splitlines()]
          for run in (tmp_path / "straight", tmp_path / "one")]
    assert lr[0] == pytest.approx(lr[1], rel=1e-6) and lr[0][-1] < lr[0][0]

    # Saved as a plain model: CLIP's 0-d temperature, the model's own class as remote code, no torch FSDP files.
    assert sharded["logit_scale"].shape == whole["logit_scale"].shape == ()
    config = json.loads((final / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_micro_au_clip.MicroAUClipModel"
    assert not list(final.glob("_fsdp*")) and MicroAUClipModel.from_pretrained(final).logit_scale.ndim == 0
    with pytest.raises(ValueError, match=r"fsdp is False here but True in the checkpoint \(the optimizer state"):
        train(_loop_settings(folder, tmp_path / "resumed", batch_size=2, max_steps=4,
                             config_overrides={"lambda_gd": 0.0}, resume_from=str(checkpoint)))
