"""Micro-AU CLIP model tests, in the style of transformers' CLIP tester: tiny configs, one behaviour per test."""

from __future__ import annotations

import inspect

import pytest
import torch

from microau_hf import MicroAUClipConfig, MicroAUClipModel, make_config, region_boxes_to_patch_weights
from microau_hf.configuration_micro_au_clip import INPUT_MODES
from microau_hf.defaults_micro_au_clip import CLIP_TEXT_IDS, VIT_B_16
from microau_hf.modeling_micro_au_clip import PatchTokenAttention, micro_au_contrastive_loss
from microau_hf.tokenizer import load_clip_tokenizer
from microau_hf.train.baselines import WholeFaceBaseline

from fresh_process import run_without_package


class MicroAUClipModelTester:
    """Builds tiny configs and random inputs for them."""

    def __init__(self, batch_size: int = 3, aus: str = "casme2", **overrides):
        self.batch_size = batch_size
        self.config = make_config(aus, preset="test", **overrides)
        self.num_aus = self.config.num_aus
        self.num_patches = self.config.grid_size**2

    def inputs(self, seed: int = 0, with_labels: bool = True) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        size = self.config.vision_config.image_size
        onset = torch.randn(self.batch_size, 3, size, size, generator=generator)
        inputs = {"onset_pixel_values": onset, "apex_pixel_values": onset + 0.3 * torch.randn(onset.shape, generator=generator)}
        if with_labels:
            labels = torch.randint(0, 2, (self.batch_size, self.num_aus), generator=generator)
            labels[0] = 0  # a sample with no AU must not break GDLoss
            labels[1, :2] = 1  # and one with a co-activation must count
            inputs["labels"] = labels
        return inputs

    def model(self, seed: int = 0) -> MicroAUClipModel:
        torch.manual_seed(seed)
        return MicroAUClipModel(self.config).eval()


SWITCHES = [
    {},
    {"use_pta": False},
    {"use_gda": False},
    {"use_gd_loss": False},
    {"use_miaucl": False},
    {"freeze_text_encoder": False},
    {"gda_num_layers": 2},
]


@pytest.mark.parametrize("input_mode", INPUT_MODES)
def test_shapes_and_finite_loss(input_mode):
    tester = MicroAUClipModelTester(input_mode=input_mode)
    output = tester.model()(**tester.inputs())
    batch, aus, patches = tester.batch_size, tester.num_aus, tester.num_patches
    dim = tester.config.projection_dim
    assert output.logits.shape == (batch, aus)
    assert output.au_tokens.shape == output.local_au_tokens.shape == (batch, aus, dim)
    assert output.patch_attentions.shape == (batch, aus, patches)
    assert output.dependency_attentions.shape == (batch, 1 + aus, 1 + aus)
    for term in (output.loss, output.detection_loss, output.contrastive_loss, output.dependency_loss):
        assert term.shape == () and torch.isfinite(term)
    expected = output.detection_loss + tester.config.lambda_cl * output.contrastive_loss
    expected = expected + tester.config.lambda_gd * output.dependency_loss
    torch.testing.assert_close(output.loss, expected)


@pytest.mark.parametrize("input_mode", INPUT_MODES)
@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "full")
def test_every_trainable_parameter_gets_a_gradient(input_mode, switches):
    tester = MicroAUClipModelTester(input_mode=input_mode, **switches)
    model = tester.model().train()
    model(**tester.inputs()).loss.backward()
    without_gradient = [
        name for name, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    # In "motion" mode onset and apex tokens are subtracted, so the post-layernorm bias they share cancels exactly.
    cancelling = ["vision_model.post_layernorm.bias"] if input_mode == "motion" else []
    assert without_gradient == cancelling
    assert any(p.requires_grad for p in model.vision_model.parameters())


def test_frozen_text_tower_is_not_trained_and_prompts_are_cached():
    tester = MicroAUClipModelTester()
    model = tester.model()
    assert not any(p.requires_grad for p in model.text_model.parameters())
    calls = []
    model.text_model.register_forward_hook(lambda *args: calls.append(1))
    model(**tester.inputs(with_labels=False))
    model(**tester.inputs(seed=1, with_labels=False))
    model.train()
    model(**tester.inputs(seed=2))
    assert len(calls) == 1  # frozen, the prompts cannot change: encoded once, train() or not


def test_trainable_text_tower_recomputes_prompts_each_training_step():
    tester = MicroAUClipModelTester(freeze_text_encoder=False)
    model = tester.model().train()
    calls = []
    model.text_model.register_forward_hook(lambda *args: calls.append(1))
    model(**tester.inputs())
    model(**tester.inputs(seed=1))
    assert len(calls) == 2


def test_switching_off_gda_removes_it():
    full = MicroAUClipModelTester().model()
    tester = MicroAUClipModelTester(use_gda=False)
    model = tester.model()
    output = model(**tester.inputs())
    assert model.global_dependency_attention is None and output.dependency_attentions is None
    torch.testing.assert_close(output.au_tokens, output.local_au_tokens)
    assert model.num_parameters() < full.num_parameters()


def test_switching_off_pta_mask_lets_aus_see_every_patch():
    masked_tester, open_tester = MicroAUClipModelTester(), MicroAUClipModelTester(use_pta=False)
    template = masked_tester.model().template_region_weights()
    masked = masked_tester.model()(**masked_tester.inputs()).patch_attentions
    unmasked = open_tester.model()(**open_tester.inputs()).patch_attentions
    outside = (template == 0).expand_as(masked)
    assert masked[outside].abs().max() == 0
    assert (unmasked[outside] > 0).all()


def test_switching_off_gd_loss_and_miaucl():
    tester = MicroAUClipModelTester(use_gd_loss=False)
    output = tester.model()(**tester.inputs())
    assert output.dependency_loss is None
    torch.testing.assert_close(output.loss, output.detection_loss + tester.config.lambda_cl * output.contrastive_loss)

    tester = MicroAUClipModelTester(use_miaucl=False)
    model = tester.model()
    output = model(**tester.inputs())
    assert model.text_model is None and output.contrastive_loss is None
    torch.testing.assert_close(output.loss, output.detection_loss + tester.config.lambda_gd * output.dependency_loss)


def test_local_independence_of_patch_token_attention():
    """AU k's PTA token depends on the patch tokens of its region and on nothing else."""
    tester = MicroAUClipModelTester(batch_size=2)
    model = tester.model()
    pta: PatchTokenAttention = model.patch_token_attention
    weights = model.template_region_weights().expand(2, -1, -1)
    tokens = torch.randn(2, tester.num_patches, tester.config.projection_dim)
    before, _ = pta(tokens, weights)
    for au in range(tester.num_aus):
        inside = weights[0, au] > 0
        changed_outside = tokens.clone()
        changed_outside[:, ~inside] += 5 * torch.randn_like(changed_outside[:, ~inside])
        after, _ = pta(changed_outside, weights)
        torch.testing.assert_close(after[:, au], before[:, au], rtol=0, atol=1e-6)
        changed_inside = tokens.clone()
        changed_inside[:, inside] += 5 * torch.randn_like(changed_inside[:, inside])
        after, _ = pta(changed_inside, weights)
        assert (after[:, au] - before[:, au]).abs().max() > 1e-3
        others_outside = [k for k in range(tester.num_aus) if not (weights[0, k] * inside).any()]
        for other in others_outside:
            torch.testing.assert_close(after[:, other], before[:, other], rtol=0, atol=1e-6)


def test_region_weights_from_landmarks_are_used_and_empty_rows_fall_back():
    tester = MicroAUClipModelTester(batch_size=1)
    model = tester.model()
    custom = torch.zeros(1, tester.num_aus, tester.num_patches)
    custom[0, :, 0] = 1.0  # every AU looks at patch 0 only
    custom[0, 1] = 0.0  # AU row left empty: its template is used instead
    attention = model(**tester.inputs(with_labels=False), au_region_weights=custom).patch_attentions
    assert torch.allclose(attention[0, 0, 0], torch.tensor(1.0))
    template = model.template_region_weights()
    assert ((attention[0, 1] > 0) == (template[1] > 0)).all()


def test_sample_alone_equals_sample_in_batch():
    tester = MicroAUClipModelTester(batch_size=4)
    model = tester.model()
    inputs = tester.inputs(with_labels=False)
    batched = model(**inputs)
    for i in range(tester.batch_size):
        alone = model(**{k: v[i : i + 1] for k, v in inputs.items()})
        torch.testing.assert_close(alone.logits[0], batched.logits[i], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(alone.au_tokens[0], batched.au_tokens[i], rtol=1e-4, atol=1e-5)


def _perturb(model: MicroAUClipModel) -> None:
    """Move every weight away from its initial value, so that a load that re-initialises anything is caught."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
        if model.logit_scale is not None:
            model.logit_scale.fill_(3.1)


def test_save_and_load_give_identical_outputs(tmp_path):
    from transformers import AutoModel

    tester = MicroAUClipModelTester()
    model = tester.model()
    _perturb(model)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    remote_code = {"configuration_micro_au_clip.py", "modeling_micro_au_clip.py", "defaults_micro_au_clip.py"}
    assert remote_code <= {p.name for p in tmp_path.iterdir()}
    inputs = tester.inputs(with_labels=False)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded, MicroAUClipModel)
    torch.testing.assert_close(reloaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)
    assert reloaded.config.prompt_input_ids == model.config.prompt_input_ids


def test_remote_code_loads_in_a_fresh_process_without_the_package(tmp_path):
    tester = MicroAUClipModelTester()
    model = tester.model()
    _perturb(model)
    checkpoint = tmp_path / "checkpoint"
    model.save_pretrained(checkpoint)
    inputs = tester.inputs(with_labels=False)
    torch.save({k: v for k, v in inputs.items()}, tmp_path / "inputs.pt")
    torch.save(model(**inputs).logits.detach(), tmp_path / "expected.pt")
    run_without_package(
        f"""
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(checkpoint)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        inputs = torch.load({str(tmp_path / "inputs.pt")!r}, weights_only=True)
        expected = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        torch.testing.assert_close(model(**inputs).logits, expected, rtol=0, atol=0)
        """,
        cwd=tmp_path,
        env={"HF_HUB_OFFLINE": "1"},
    )


def test_from_clip_copies_the_towers(tmp_path):
    from transformers import CLIPConfig, CLIPModel

    config = make_config("samm", preset="test")
    clip_config = CLIPConfig(
        vision_config=config.vision_config.to_dict(), text_config=config.text_config.to_dict(), projection_dim=32
    )
    torch.manual_seed(0)
    clip = CLIPModel(clip_config)
    clip.save_pretrained(tmp_path / "clip")
    before = config.to_dict()
    model = MicroAUClipModel.from_clip(str(tmp_path / "clip"), config)
    assert config.to_dict() == before  # the caller's config is not changed
    assert model.config.gda_intermediate_size == 4 * 32
    clip_weights = clip.state_dict()
    for name, value in model.state_dict().items():
        if name.startswith(("vision_model.", "visual_projection.", "text_model.", "text_projection.", "logit_scale")):
            torch.testing.assert_close(value, clip_weights[name], rtol=0, atol=0)


def test_region_boxes_to_patch_weights_covers_cells_by_area():
    weights = region_boxes_to_patch_weights([[[0.0, 0.0, 0.5, 0.5]], [[0.25, 0.0, 0.5, 0.25], [0.75, 0.75, 1.0, 1.0]]], 4)
    assert weights.shape == (2, 16)
    grid = weights.view(2, 4, 4)
    assert grid[0, :2, :2].eq(1).all() and grid[0].sum() == 4
    assert grid[1, 0, 1] == 1 and grid[1, 3, 3] == 1 and grid[1].sum() == 2
    half = region_boxes_to_patch_weights([[[0.0, 0.0, 0.125, 0.25]]], 4).view(4, 4)
    assert half[0, 0] == pytest.approx(0.5)


def test_template_regions_sit_where_the_face_has_them():
    config = make_config("cross12", preset="test")
    centres = {au: ((b[0][1] + b[0][3]) / 2) for au, b in zip(config.aus, config.au_template_boxes)}
    assert centres[1] < centres[7] < centres[12] < centres[17]  # brows above lids above lip corners above the chin
    assert centres[2] < centres[6] and centres[4] < centres[9]


def test_losses_behave():
    labels = torch.tensor([[1.0, 0.0]])
    # A token sitting on the prompt its label names gives a lower MiAUCL than one on the opposite prompt.
    right = torch.tensor([[[10.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 10.0]]])
    wrong = torch.tensor([[[0.0, 10.0, 0.0, 0.0], [0.0, 0.0, 10.0, 0.0]]])
    assert micro_au_contrastive_loss(right, labels) < 0.01 < micro_au_contrastive_loss(wrong, labels)


def test_gdloss_follows_gda_and_uses_the_training_cooccurrence():
    assert not make_config("samm", preset="test", use_gda=False).use_gd_loss  # GDLoss supervises GDA: off with it
    tester = MicroAUClipModelTester()
    config, inputs = tester.config, tester.inputs()
    model = tester.model()
    plain = model(**inputs).dependency_loss
    config.au_cooccurrence = [[0.0 if i == j else (0.9 if j == 0 else 0.1) for j in range(config.num_aus)]
                              for i in range(config.num_aus)]
    weighted = model(**inputs).dependency_loss
    assert torch.isfinite(plain) and not torch.isclose(plain, weighted)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda i: i.update(apex_pixel_values=i["apex_pixel_values"][:, :, :16, :16]), "must have shape"),
        (lambda i: i.update(onset_pixel_values=i["onset_pixel_values"][:, :1]), "must have shape"),
        (lambda i: i.update(onset_pixel_values=i["onset_pixel_values"][:2]), "batch sizes differ"),
        (lambda i: i.update(labels=i["labels"][:, :3]), "labels must have shape"),
        (lambda i: i.update(au_region_weights=torch.ones(3, 8, 5)), "au_region_weights must have shape"),
        (lambda i: i.pop("onset_pixel_values"), "onset_pixel_values is required"),
    ],
)
def test_bad_inputs_raise_clear_errors(change, message):
    tester = MicroAUClipModelTester()
    inputs = tester.inputs()
    change(inputs)
    with pytest.raises(ValueError, match=message):
        tester.model()(**inputs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"aus": [1, 2, 99]}, "AU \\[99\\] not in the catalogue"),
        ({"aus": "ck+"}, "unknown AU set"),
        ({"input_mode": "optical_flow"}, "input_mode must be one of"),
        ({"pta_num_heads": 5}, "multiple of pta_num_heads"),
        ({"lambda_cl": -1.0}, "loss weights must be >= 0"),
        ({"au_pos_weight": [1.0, 2.0]}, "au_pos_weight has 2 entries for 8 AUs"),
        ({"preset": "vit-h"}, "unknown preset"),
    ],
)
def test_bad_configs_raise_clear_errors(kwargs, message):
    kwargs = {"aus": "casme2", "preset": "test", **kwargs}
    with pytest.raises(ValueError, match=message):
        make_config(**kwargs)


def test_a_config_without_aus_is_refused_by_the_model():
    with pytest.raises(ValueError, match="has no AUs"):
        MicroAUClipModel(MicroAUClipConfig(aus=[]))


def test_a_frozen_text_tower_encodes_its_prompts_once_however_often_train_is_called(monkeypatch):
    config = make_config("samm", preset="test", freeze_text_encoder=True)
    model = MicroAUClipModel(config)
    calls = []
    original = model.encode_prompts
    monkeypatch.setattr(model, "encode_prompts", lambda: calls.append(1) or original())
    inputs = {"onset_pixel_values": torch.randn(2, 3, 32, 32), "apex_pixel_values": torch.randn(2, 3, 32, 32)}
    for _ in range(3):  # as the Trainer does: train() before every step
        model.train()
        model(**inputs)
    model.eval()
    model(**inputs)
    assert len(calls) == 1
    model.load_state_dict(model.state_dict())
    model(**inputs)
    assert len(calls) == 2  # new weights: encoded again


def test_return_dict_false_gives_a_tuple_and_unknown_keywords_raise():
    tester = MicroAUClipModelTester()
    model = tester.model().eval()
    inputs = tester.inputs()
    output = model(**inputs)
    as_tuple = model(**inputs, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(output.to_tuple())
    for ours, theirs in zip(as_tuple, output.to_tuple()):
        torch.testing.assert_close(ours, theirs)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['label'\]"):
        model(**{k: v for k, v in inputs.items() if k != "labels"}, label=inputs["labels"])
    with pytest.raises(ValueError, match="output_attentions is not supported"):
        model(**inputs, output_attentions=True)
    model(**inputs, output_attentions=False, output_hidden_states=None)  # what generic callers pass is fine
    model.config.return_dict = False  # the config's setting is the default of return_dict
    for ours, theirs in zip(model(**inputs), output.to_tuple(), strict=True):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("model_class", [MicroAUClipModel, WholeFaceBaseline])
def test_main_input_name_is_the_first_forward_argument(model_class):
    assert list(inspect.signature(model_class.forward).parameters)[1] == model_class.main_input_name
    tester = MicroAUClipModelTester(input_mode="apex")
    model = model_class(tester.config).eval()
    apex = tester.inputs(with_labels=False)[model_class.main_input_name]
    torch.testing.assert_close(model(apex).logits, model(apex_pixel_values=apex).logits, rtol=0, atol=0)


def _assert_drawn_alike(name: str, loaded: torch.Tensor, fresh: torch.Tensor) -> None:
    """`loaded` looks drawn from `fresh`'s initial distribution: equal where the init is a constant (norms, biases,
    the temperature), otherwise mean and std within 4 standard errors."""
    loaded, fresh = loaded.detach(), fresh.detach()
    if fresh.numel() == 1 or fresh.std() == 0:
        torch.testing.assert_close(loaded, fresh, rtol=0, atol=0, msg=f"{name} is not initialised as when fresh")
        return
    count, loaded_std, fresh_std = fresh.numel(), loaded.std().item(), fresh.std().item()
    assert abs(loaded_std / fresh_std - 1) < 4 / count**0.5, f"{name}: std {loaded_std:.4f} loaded, {fresh_std:.4f} new"
    assert abs(float(loaded.mean() - fresh.mean())) < 4 * fresh_std * (2 / count) ** 0.5, f"{name}: mean differs"


@pytest.mark.parametrize("missing", ["text tower", "every weight"])
def test_weights_missing_from_a_checkpoint_are_initialised_as_in_a_fresh_model(tmp_path, missing):
    """transformers' test_can_init_all_missing_weights. "text tower": a checkpoint saved with `use_miaucl=False`
    loaded with the prompt head on (its text tower's fc1 had std 0.020 where a fresh one has 0.125)."""
    from safetensors.torch import save_file

    config = make_config("casme2", preset="test", input_mode="apex+difference")
    torch.manual_seed(0)
    saved = MicroAUClipModel(make_config("casme2", preset="test", input_mode="apex+difference",
                                         use_miaucl=missing != "text tower"))
    _perturb(saved)  # so that a loaded weight is told apart from a fresh one
    saved.save_pretrained(tmp_path)
    in_checkpoint = saved.state_dict()
    if missing == "every weight":
        save_file({}, tmp_path / "model.safetensors", metadata={"format": "pt"})
        in_checkpoint = {}
    loaded = MicroAUClipModel.from_pretrained(tmp_path, config=config)
    torch.manual_seed(1)
    fresh = MicroAUClipModel(config)
    missing_names = [name for name, _ in loaded.named_parameters() if name not in in_checkpoint]
    assert "text_model.encoder.layers.0.mlp.fc1.weight" in missing_names
    for name, parameter in loaded.named_parameters():
        if name in in_checkpoint:
            torch.testing.assert_close(parameter, in_checkpoint[name], rtol=0, atol=0)
        else:
            _assert_drawn_alike(name, parameter, fresh.get_parameter(name))


def test_a_bare_config_is_the_casme2_model_at_the_vit_b_16_shape():
    """As `CLIPConfig()` is a working CLIP. The remote code carries a generated copy of the AU data; this checks it
    against the catalogue and the tokenizer (rerun scripts/write_default_config.py when it fails)."""
    bare, made = MicroAUClipConfig().to_dict(), make_config("casme2", preset="vit-b-16").to_dict()
    assert {name: value for name, value in bare.items() if made.get(name) != value} == {}
    assert bare.keys() == made.keys()
    tokenizer = load_clip_tokenizer()
    assert CLIP_TEXT_IDS == {"vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
                             "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    assert VIT_B_16["text_config"]["max_position_embeddings"] == tokenizer.model_max_length


def test_a_bare_config_builds_a_working_model():
    torch.manual_seed(0)
    model = MicroAUClipModel(MicroAUClipConfig()).eval()
    pixels = torch.randn(2, 1, 3, 224, 224)
    labels = torch.tensor([[1, 0, 0, 1, 0, 0, 0, 0]])
    with torch.no_grad():
        output = model(onset_pixel_values=pixels[0], apex_pixel_values=pixels[1], labels=labels)
    assert output.logits.shape == (1, 8) and output.patch_attentions.shape == (1, 8, 14 * 14)
    assert torch.isfinite(output.loss)
