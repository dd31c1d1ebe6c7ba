"""MiAUCL without false negatives and the attention-based GDLoss: what they reward, and what they cannot be fooled by."""

from __future__ import annotations

import pytest
import torch

from microau_hf.loss_micro_au_clip import (
    SELF_ATTENTION_SHARE,
    conditional_cooccurrence,
    dependency_attention_target,
    global_dependency_loss,
    micro_au_contrastive_loss,
    true_prompt_mask,
)

LABELS = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])


def _similarity_gradient(labels: torch.Tensor, mask_true_prompts: bool) -> torch.Tensor:
    torch.manual_seed(0)
    similarities = torch.randn(labels.shape[0], labels.shape[1], 2 * labels.shape[1], requires_grad=True)
    micro_au_contrastive_loss(similarities, labels, mask_true_prompts=mask_true_prompts).backward()
    return similarities.grad


def test_true_prompt_mask_marks_the_stated_state_of_every_au():
    mask = true_prompt_mask(torch.tensor([[1.0, 0.0]]))
    assert mask.tolist() == [[True, False, False, True]]  # AU0 present, AU1 absent


def test_miaucl_pushes_only_from_prompts_that_are_false_for_the_face():
    gradient = _similarity_gradient(LABELS, mask_true_prompts=True)
    true = true_prompt_mask(LABELS)
    for sample in range(LABELS.shape[0]):
        for au in range(LABELS.shape[1]):
            target = 2 * au + int(LABELS[sample, au] <= 0.5)
            others_true = [p for p in range(2 * LABELS.shape[1]) if true[sample, p] and p != target]
            assert gradient[sample, au, target] < 0  # pulled to its own stated prompt
            assert torch.all(gradient[sample, au, others_true] == 0)  # true statements are not negatives
            false = [p for p in range(2 * LABELS.shape[1]) if not true[sample, p]]
            assert torch.all(gradient[sample, au, false] > 0)  # false statements are pushed from
    paper = _similarity_gradient(LABELS, mask_true_prompts=False)
    assert torch.all(paper[true.unsqueeze(1).expand_as(paper) & (gradient == 0)] > 0)  # the paper's form pushes them


def test_miaucl_ignores_how_close_a_token_is_to_other_true_prompts():
    torch.manual_seed(1)
    similarities = torch.randn(4, 3, 6)
    moved = similarities.clone()
    moved[0, 0, 3] += 5.0  # sample 0: AU1 absent -> prompt 3 is true; AU0's token moves close to it
    assert torch.allclose(micro_au_contrastive_loss(similarities, LABELS), micro_au_contrastive_loss(moved, LABELS))
    assert not torch.allclose(micro_au_contrastive_loss(similarities, LABELS, False),
                              micro_au_contrastive_loss(moved, LABELS, False))


def test_conditional_cooccurrence_counts_the_training_split():
    probability = conditional_cooccurrence(LABELS, smoothing=0.0)
    assert probability[0, 1] == pytest.approx(0.5)  # AU0 active twice, with AU1 once
    assert probability[1, 2] == pytest.approx(0.5) and probability[2, 1] == pytest.approx(1.0)
    assert torch.all(probability.diagonal() == 0)


def test_dependency_target_keeps_half_on_the_token_and_routes_the_rest():
    target = dependency_attention_target(LABELS, conditional_cooccurrence(LABELS))
    assert torch.allclose(target.sum(-1), torch.ones(4, 3))
    assert torch.allclose(target[:, :, 1:].diagonal(dim1=1, dim2=2), torch.full((4, 3), SELF_ATTENTION_SHARE))
    assert target[0, 0, 0] == pytest.approx(0.5)  # AU0 alone: the dependency share goes to the global token
    assert target[1, 0, 2] == pytest.approx(0.5) and target[1, 0, 0] == 0  # AU0 with AU1: attend to AU1
    assert target[1, 2, 1] > 0 and target[1, 2, 2] > 0  # inactive AU2 also looks at the active AUs
    assert target[1, 2, 3] == pytest.approx(SELF_ATTENTION_SHARE)  # and keeps its own share


def _tiny_dependency_attention(num_aus: int, dim: int = 16) -> torch.nn.Module:
    from microau_hf.modeling_micro_au_clip import GlobalDependencyAttention
    from microau_hf.presets import make_config

    config = make_config("samm", preset="test", projection_dim=dim, gda_num_heads=2)
    assert config.num_aus == num_aus
    return GlobalDependencyAttention(config)


def _fit(tokens_for: callable, labels: torch.Tensor, cooccurrence: torch.Tensor, steps: int = 100) -> float:
    """Train a GDA layer (and the token maker) on GDLoss alone; the loss reached."""
    torch.manual_seed(0)
    gda = _tiny_dependency_attention(labels.shape[1])
    maker = tokens_for(labels.shape[1])
    optimiser = torch.optim.Adam([*gda.parameters(), *maker.parameters()], lr=1e-2)
    for _ in range(steps):
        global_token, au_tokens = maker(labels)
        loss = global_dependency_loss(gda(global_token, au_tokens)[1], labels, cooccurrence)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return float(loss.detach())


class IdentityTokens(torch.nn.Module):
    """AU tokens that know which AU they are, never whether it is active."""

    def __init__(self, num_aus: int, dim: int = 16):
        super().__init__()
        self.tokens = torch.nn.Parameter(torch.randn(1 + num_aus, dim))

    def forward(self, labels):
        tokens = self.tokens.expand(labels.shape[0], -1, -1)
        return tokens[:, 0], tokens[:, 1:]


class LabelTokens(IdentityTokens):
    """The same, plus a learned "active" vector added to the active AUs' tokens."""

    def __init__(self, num_aus: int, dim: int = 16):
        super().__init__(num_aus, dim)
        self.active = torch.nn.Parameter(torch.randn(num_aus, dim))

    def forward(self, labels):
        global_token, au_tokens = super().forward(labels)
        return global_token, au_tokens + labels.unsqueeze(-1) * self.active


def test_gdloss_cannot_be_met_by_tokens_that_ignore_the_labels():
    generator = torch.Generator().manual_seed(0)
    labels = (torch.rand(32, 4, generator=generator) < 0.35).float()
    labels[:, 1] = torch.maximum(labels[:, 1], labels[:, 0])  # AU B comes with AU A, as AU2 with AU1
    cooccurrence = conditional_cooccurrence(labels)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    try:
        blind = _fit(IdentityTokens, labels, cooccurrence)
        informed = _fit(LabelTokens, labels, cooccurrence)
    finally:
        torch.set_num_threads(threads)
    target = dependency_attention_target(labels, cooccurrence)
    perfect = torch.cat([torch.full_like(target[:, :1], 1 / target.shape[-1]), target], dim=1)  # the global row: any
    optimum = float(global_dependency_loss(perfect, labels, cooccurrence))  # the targets' own entropy
    assert informed < blind - 0.1, (informed, blind)
    assert informed - optimum < 0.5 * (blind - optimum), (informed, blind, optimum)
