"""Training and evaluation: metrics, protocols, the Trainer, the Accelerate loop (2 processes) and exact resume."""

from __future__ import annotations

import json
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
from microau_hf.emotion import evaluate_emotions, predict_classes, score_emotions, score_objective_classes, uf1_uar
from microau_hf.face import build_processor
from microau_hf.train import au_detection_scores, best_thresholds, check_dataset, loso_folds, make_trainer, training_arguments
from microau_hf.train import au_f1
from microau_hf.train.loop import LoopSettings, train
from microau_hf.train.loso import ProtocolSettings, run_protocol
from microau_hf.train.metrics import invented_au_rates

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
    labels = np.array([[1], [1], [0], [0]])
    probabilities = np.array([[0.3], [0.35], [0.1], [0.2]])
    assert best_thresholds(labels, probabilities)[0] == pytest.approx(0.25)


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
    settings = ProtocolSettings(max_steps=2, batch_size=8, threshold="train", training_overrides={"disable_tqdm": True})
    results = run_protocol(dataset, config, build_processor(config), tmp_path / "run", settings, save_model_to=tmp_path / "ckpt")
    assert results["scores"]["num_samples"] == len(dataset)  # every sample tested exactly once
    assert len(results["folds"]) == 2 and all(len(f["thresholds"]) == 4 for f in results["folds"])
    written = json.loads((tmp_path / "run" / "results.json").read_text())
    assert written["scores"]["mean_f1"] == results["scores"]["mean_f1"]
    assert "macro F1 (for comparison only)" in (tmp_path / "run" / "results.md").read_text()
    reloaded = MicroAUClipModel.from_pretrained(tmp_path / "ckpt")
    assert reloaded.config.aus == [2, 4, 7, 12] and (tmp_path / "ckpt" / "processor_config.json").exists()


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
