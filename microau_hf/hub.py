"""Publishing: a checkpoint folder to the Hugging Face Hub, with its remote code, processor and a filled-in model card.

    from microau_hf.hub import push_checkpoint
    url = push_checkpoint("runs/casme2/model", "my-org/micro-au-clip-casme2", private=True)

What goes up: the safetensors weights, `config.json`, the remote-code files that `save_pretrained` copied beside them
(so `AutoModel.from_pretrained(repo, trust_remote_code=True)` works without this package), the processor files, the
evaluation (`results.json`, from the folder or its parent) and `README.md`, rendered from the `model_card.md`
template with YAML metadata and a `model-index` built from the evaluation. Pickle files are never uploaded: a folder
that holds one is refused, since unpickling a downloaded file can run arbitrary code.

Every refusal is a `PushError` with a one-line message, checked before anything is sent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, EvalResult, HfApi, ModelCard, ModelCardData, get_token
from huggingface_hub.errors import HFValidationError, HfHubHTTPError
from huggingface_hub.utils import validate_repo_id

from .checkpoints import MODEL_TYPE, WEIGHT_FILES, CheckpointError, load_model
from .train.metrics import markdown_table

# The template ships in the package (the top-level model_card.md is a link to it, so there is one copy).
MODEL_CARD_TEMPLATES = (Path(__file__).resolve().parent / "assets" / "model_card.md",)
DEFAULT_COMMIT_MESSAGE = "Upload Micro-AU CLIP checkpoint"

# Multi-label classification of an (onset, apex) face-crop pair into a fixed AU list is image classification in the
# Hub's task list. Not zero-shot-image-classification: the prompts are fixed in the config and cached, a user cannot
# pass new labels. Not video-classification: the model takes two aligned crops, not a clip to decode.
PIPELINE_TAG = "image-classification"
TAGS = ["micro-expression", "action-units", "facs", "facial-action-coding-system", "clip", "custom_code",
        "micro-au-clip", "arxiv:2603.16302"]
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
# Weights, configs and processor/tokenizer files, and the remote code; everything else in the folder stays home.
UPLOAD_SUFFIXES = (".safetensors", ".json", ".txt", ".py")

CORPUS_TITLES = {"casme": "CASME", "casme2": "CASME II", "samm": "SAMM", "4dme": "4DME", "mmew": "MMEW",
                 "casme3": "CAS(ME)^3", "synthetic": "synthetic micro-AU corpus"}
INPUT_MODE_TEXT = {
    "difference": "the apex-minus-onset difference image, encoded in one pass, so the tower sees the motion itself",
    "motion": "onset and apex encoded in one batched pass and their patch tokens subtracted",
    "apex": "the apex frame alone (no motion information; an ablation)",
    "apex+difference": "the apex frame and the difference image, encoded in one batched pass, their tokens fused",
}


class PushError(ValueError):
    """A push refused, before sending anything or by the Hub; the message is one line, fit for a command line."""


def push_checkpoint(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    base_model: str | None = None,
) -> str:
    """Upload a checkpoint folder to the Hub (creating the repo if needed) and return the commit URL.

    Args:
        model_dir: a folder written by `model.save_pretrained` and `processor.save_pretrained` (after
            `import microau_hf`, so the remote-code files are copied beside the weights).
        repo_id: `"ORG/NAME"` or `"USER/NAME"`.
        private: create the repo private (an existing repo keeps its visibility).
        token: a Hub token with write access; defaults to `HF_TOKEN` or the token saved by `hf auth login`.
        commit_message: the commit's summary.
        base_model: the Hub id of the CLIP checkpoint the towers were initialised from, for the card's metadata.

    Raises:
        PushError: a malformed repo id, no token, a folder that is not a Micro-AU CLIP checkpoint or holds a pickle
            file, an evaluation that does not match the checkpoint, or a refusal by the Hub.
    """
    check_repo_id(repo_id)
    folder = Path(model_dir)
    check_checkpoint(folder)
    token = _write_token(token)
    card = render_model_card(folder, repo_id, base_model=base_model)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path))
                  for name, path in files_to_upload(folder).items()]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card).encode("utf-8")))
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.create_commit(repo_id, operations, commit_message=commit_message)
    except HfHubHTTPError as error:
        raise PushError(_describe_refusal(error, repo_id)) from error
    return commit.commit_url


def check_repo_id(repo_id: str) -> None:
    """Refuse a repo id the Hub would refuse, and one without a namespace (the push would land in a guessed one)."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise PushError(f"invalid repo id: {_one_line(str(error))}") from None
    if not isinstance(repo_id, str) or "/" not in repo_id:
        raise PushError(f"repo id {repo_id!r} has no namespace: give it as 'ORG/NAME' or 'USER/NAME'")


def check_checkpoint(model_dir: str | os.PathLike) -> dict[str, Any]:
    """Refuse a folder that is not a complete Micro-AU CLIP checkpoint or that holds a pickle; return its config."""
    folder = Path(model_dir)
    if not folder.is_dir():
        raise PushError(f"{folder} is not a folder")
    pickles = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise PushError(
            f"{folder} holds pickle file(s) {pickles[:3]}: pickles can run code when loaded and are never uploaded; "
            "save the model with save_pretrained into a folder without them"
        )
    config = _read_json(folder / "config.json", "save the model with model.save_pretrained(folder)")
    if config.get("model_type") != MODEL_TYPE:
        raise PushError(f"{folder} is not a Micro-AU CLIP checkpoint: config.json has model_type "
                        f"{config.get('model_type')!r}, not {MODEL_TYPE!r}")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise PushError(f"{folder} has no model.safetensors: save the model with model.save_pretrained(folder)")
    processor = _read_json(folder / "processor_config.json", "save the processor beside the model: "
                           "microau_hf.face.build_processor(config).save_pretrained(folder)")
    for owner, settings in (("config.json", config), ("processor_config.json", processor)):
        for reference in _auto_map_references(settings):
            module = reference.split("--")[-1].split(".")[0] + ".py"
            if not (folder / module).is_file():
                raise PushError(f"{folder} lacks {module}, which its {owner} names as remote code: save the model and "
                                "processor after `import microau_hf`, so save_pretrained copies it")
    try:  # the weights must load, whole: an incomplete or damaged checkpoint is never published
        load_model(folder)
    except CheckpointError as error:
        raise PushError(str(error)) from None
    return config


def _auto_map_references(settings: dict[str, Any]) -> list[str]:
    """`"module.Class"` strings of an `auto_map` (a tokenizer's entry is a [slow, fast] pair, either may be null)."""
    references = []
    for value in (settings.get("auto_map") or {}).values():
        references += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
    return references


def files_to_upload(model_dir: str | os.PathLike) -> dict[str, Path]:
    """Path in the repo -> local file: the folder's top-level weights, JSON, text and code files, and the evaluation
    (`results.json`, from the folder or else its parent). `README.md` is rendered separately."""
    folder = Path(model_dir)
    files = {p.name: p for p in sorted(folder.iterdir())
             if p.is_file() and p.suffix in UPLOAD_SUFFIXES and not p.name.startswith(".")}
    results = find_results(folder)
    if results is not None:
        files["results.json"] = results
    return files


def find_results(model_dir: str | os.PathLike) -> Path | None:
    """The checkpoint's evaluation: `results.json` in the folder, else in its parent (where training writes it)."""
    folder = Path(model_dir)
    for candidate in (folder / "results.json", folder.parent / "results.json"):
        if candidate.is_file():
            return candidate
    return None


def render_model_card(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    base_model: str | None = None,
    template_path: str | os.PathLike | None = None,
) -> ModelCard:
    """The checkpoint's model card: YAML metadata (and a `model-index` when it was evaluated) over the template."""
    folder = Path(model_dir)
    config = _read_json(folder / "config.json", "a Micro-AU CLIP checkpoint needs config.json")
    results_path = find_results(folder)
    results = _load_results(results_path, config) if results_path is not None else None
    model_name = repo_id.split("/")[-1]
    evaluations = eval_results(results) if results else []
    corpora = _corpora(results) if results else []
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        license="apache-2.0",
        tags=TAGS + (["synthetic-data"] if results and _is_synthetic(results) else []),
        datasets=corpora or None,
        metrics=["f1"],
        base_model=base_model,
        model_name=model_name if evaluations else None,  # only the model-index uses it
        eval_results=evaluations or None,
    )
    candidates = [Path(template_path)] if template_path is not None else MODEL_CARD_TEMPLATES
    template = next((path for path in candidates if path.is_file()), None)
    if template is None:
        raise PushError(f"model card template not found (looked for {', '.join(map(str, candidates))})")
    values = _template_values(config, results, repo_id, base_model)
    return ModelCard.from_template(card_data, template_path=str(template), **values)


def eval_results(results: dict[str, Any]) -> list[EvalResult]:
    """`model-index` entries from an evaluation: mean and per-AU F1 (positive class), and label-free emotion UF1/UAR."""
    protocol = results.get("protocol", "unknown protocol")
    corpora = _corpora(results) or ["unknown"]
    dataset = {"dataset_type": "+".join(corpora), "dataset_name": " + ".join(CORPUS_TITLES.get(c, c) for c in corpora)}
    # The model-index groups results by task type, dataset and dataset config; the config keeps AU detection and the
    # label-free emotion scores (measured against other labels of the same corpus) apart.
    detection = {"task_type": PIPELINE_TAG, "task_name": "Micro-expression action unit detection",
                 "dataset_config": "action_units", **dataset}
    scores = results["scores"]
    entries = [EvalResult(**detection, metric_type="f1", metric_value=round(scores["mean_f1"], 4),
                          metric_name=f"mean AU F1 ({protocol}, positive class)")]
    entries += [EvalResult(**detection, metric_type="f1", metric_value=round(row["f1"], 4),
                           metric_name=f"{name} F1 ({protocol})")
                for name, row in scores.get("per_au", {}).items()]
    entries += _cd6me_entries(results, detection)
    for target, row in (results.get("emotion") or {}).items():
        label = target.replace("_", " ")
        emotion = {"task_type": PIPELINE_TAG, "task_name": f"Label-free micro-expression {label} recognition",
                   "dataset_config": target, **dataset}
        entries.append(EvalResult(**emotion, metric_type="f1", metric_value=round(row["uf1"], 4),
                                  metric_name=f"UF1, {label} ({protocol})"))
        entries.append(EvalResult(**emotion, metric_type="recall", metric_value=round(row["uar"], 4),
                                  metric_name=f"UAR, {label} ({protocol})"))
    return entries


def _cd6me_entries(results: dict[str, Any], detection: dict[str, str]) -> list[EvalResult]:
    """A CD6ME evaluation's figures in MEB's terms: the pooled macro F1 over the 12 AUs, and each held-out corpus's
    mean binary and macro F1 (over its defined AUs), under that corpus's name."""
    cd6me = results.get("cd6me")
    if not cd6me:
        return []
    protocol, overall = results.get("protocol", "CD6ME"), cd6me["overall"]
    entries = [EvalResult(**detection, metric_type="f1", metric_value=round(overall["mean_macro_f1"], 4),
                          metric_name=f"mean AU macro F1, MEB's ({protocol})")] if overall["mean_macro_f1"] is not None else []
    for corpus, scores in cd6me["held_out"].items():
        if scores["mean_f1"] is None:
            continue
        held = {**detection, "dataset_type": corpus, "dataset_name": CORPUS_TITLES.get(corpus, corpus)}
        entries.append(EvalResult(**held, metric_type="f1", metric_value=round(scores["mean_f1"], 4),
                                  metric_name=f"mean AU F1, {corpus} held out ({scores['aus_defined']} AUs defined)"))
        entries.append(EvalResult(**held, metric_type="f1", metric_value=round(scores["mean_macro_f1"], 4),
                                  metric_name=f"mean AU macro F1, {corpus} held out"))
    return entries


def _template_values(config: dict, results: dict | None, repo_id: str, base_model: str | None) -> dict[str, Any]:
    vision = config.get("vision_config") or {}
    values: dict[str, Any] = {
        "repo_id": repo_id,
        "model_title": repo_id.split("/")[-1],
        "aus": config.get("au_names") or [f"AU{a}" for a in config.get("aus", [])],
        "au_count": len(config.get("aus", [])),
        "input_mode": config.get("input_mode", "difference"),
        "input_mode_text": INPUT_MODE_TEXT.get(config.get("input_mode", "difference"), "see the config"),
        "vision_layers": vision.get("num_hidden_layers"),
        "vision_width": vision.get("hidden_size"),
        "image_size": vision.get("image_size"),
        "patch_size": vision.get("patch_size"),
        "base_model": base_model,
        "evaluated": results is not None,
        "synthetic": bool(results) and _is_synthetic(results),
    }
    values.update({key: config.get(key, True) for key in ("use_pta", "use_gda", "use_gd_loss", "use_miaucl",
                                                          "miaucl_mask_true_prompts")})
    values["gda_max_logit_shift"] = config.get("gda_max_logit_shift")
    values.update({key: config.get(key) for key in ("lambda_cl", "lambda_gd")})
    if results is not None:
        values.update(_results_values(results))
    return values


def _threshold_text(results: dict[str, Any]) -> str:
    """The thresholds as results.json records them (rule and source); older results give only the setting's name."""
    threshold = results.get("threshold")
    if threshold:
        return f"{threshold['rule']} ({threshold['source']})"
    return {"fixed": "0.5 for every AU"}.get((results.get("settings") or {}).get("threshold"), "not recorded")


def _results_values(results: dict[str, Any]) -> dict[str, Any]:
    scores = results["scores"]
    emotion_rows = [
        {"name": target.replace("_", " "), "uf1": f"{row['uf1']:.3f}", "uar": f"{row['uar']:.3f}",
         "samples": row.get("samples", ""), "unscorable": row.get("unscorable_labels", "")}
        for target, row in (results.get("emotion") or {}).items()
    ]
    return {
        "protocol": results.get("protocol", "unknown protocol"),
        "datasets_text": ", ".join(CORPUS_TITLES.get(c, c) for c in _corpora(results)) or "unnamed data",
        "num_samples": scores.get("num_samples", "?"),
        "thresholds": _threshold_text(results),
        "mean_f1": f"{scores['mean_f1']:.3f}",
        "mean_macro_f1": f"{scores['mean_macro_f1_for_comparison']:.3f}"
        if "mean_macro_f1_for_comparison" in scores else "not recorded",
        "results_table": markdown_table(scores) if _has_full_table(scores) else "",
        "emotion_rows": emotion_rows,
    }


def _has_full_table(scores: dict[str, Any]) -> bool:
    columns = ("f1", "precision", "recall", "support", "macro_f1_for_comparison")
    means = ("mean_precision", "mean_recall", "mean_macro_f1_for_comparison", "num_samples")
    rows = scores.get("per_au") or {}
    return bool(rows) and all(m in scores for m in means) and all(c in r for r in rows.values() for c in columns)


def _load_results(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The evaluation, refused when it cannot describe this checkpoint (other AUs, another input mode)."""
    results = _read_json(path, "results.json must be the evaluation written by microau_hf.train")
    if not isinstance(results.get("scores"), dict) or "mean_f1" not in results["scores"]:
        raise PushError(f"{path} has no scores.mean_f1: it is not an evaluation written by microau_hf.train")
    if "aus" in results and list(results["aus"]) != list(config.get("aus", [])):
        raise PushError(f"{path} evaluates AUs {results['aus']}, but the checkpoint detects {config.get('aus')}")
    if "input_mode" in results and results["input_mode"] != config.get("input_mode", "difference"):
        raise PushError(f"{path} evaluates input_mode {results['input_mode']!r}, but the checkpoint uses "
                        f"{config.get('input_mode')!r}")
    return results


def _is_synthetic(results: dict[str, Any]) -> bool:
    """The synthetic corpus, or a CD6ME stand-in's pseudo-corpora (synthetic_lab200, ...)."""
    return bool(results.get("synthetic")) or any(c.startswith("synthetic") for c in _corpora(results))


def _corpora(results: dict[str, Any]) -> list[str]:
    dataset = results.get("dataset")
    if isinstance(dataset, str):
        return [dataset]
    return [str(d) for d in dataset] if dataset else []


def _read_json(path: Path, hint: str) -> dict[str, Any]:
    if not path.is_file():
        raise PushError(f"{path.parent} has no {path.name}: {hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PushError(f"{path} is not valid JSON ({_one_line(str(error))})") from None
    if not isinstance(data, dict):
        raise PushError(f"{path} does not hold a JSON object")
    return data


def _write_token(token: str | None) -> str:
    token = token or get_token()
    if not token:
        raise PushError("no Hugging Face token: log in with `hf auth login`, set HF_TOKEN, or pass token= "
                        "(a token with write access, from https://huggingface.co/settings/tokens)")
    return token


def _describe_refusal(error: HfHubHTTPError, repo_id: str) -> str:
    status = error.response.status_code if error.response is not None else None
    detail = _one_line(getattr(error, "server_message", None) or str(error).split("\n")[0])
    if status == 401:
        return f"the Hub refused the token (401: {detail}); log in again with `hf auth login` or pass a valid token="
    if status == 403:
        return f"the token may not write to {repo_id} (403: {detail}); use a token with write access to that namespace"
    return f"pushing to {repo_id} failed ({status}: {detail})"


def _one_line(text: str) -> str:
    return " ".join(text.split())


__all__ = ["PushError", "check_checkpoint", "check_repo_id", "eval_results", "files_to_upload", "find_results",
           "push_checkpoint", "render_model_card"]
