"""The training losses of Micro-AU CLIP beyond the detection BCE: MiAUCL and GDLoss.

Remote code: imports only torch and the standard library (a saved checkpoint carries this file).

**MiAUCL** (micro-AU contrastive loss). Each AU token is pulled to the prompt that states its AU's label ("inner brows
slightly raised" or "inner brows at rest") and pushed from the prompts that are *false* for the face. The prompts that
are true for the face but belong to other AUs (the "absent" prompt of every other absent AU, the "present" prompt of
every other present AU) are left out of the softmax: they are not negatives, and the absent prompts are nearly
collinear (cosine 0.75-0.83 under CLIP's text tower), so pushing from them fights the pull to the token's own absent
prompt. The paper's form, every other prompt a negative, stays available (``mask_true_prompts=False``) for the
ablation.

**GDLoss** (global dependency loss), redesigned. The paper's form (pairwise cosine of AU tokens pulled to the sample's
label co-activation) is nearly satisfied by mutually orthogonal tokens whatever the labels, and its one informative
term pulls co-active tokens to cosine 1, undoing PTA's independence. Here GDLoss supervises where GDA *looks*, not what
the tokens are: in GDA's attention over [global token, AU tokens], the row of AU token ``i`` should match

    target_i = 1/2 * (AU i itself) + 1/2 * (the other AUs active in this sample, weighted by P(j active | i active)
               on the training split; the global token when no other AU is active)

for every AU token, active or not (an absent AU's token learns to look at the AUs that come with it when they move).

a cross-entropy ``-sum_j target_ij * log attention_ij``, averaged over samples and AU tokens. It carries the training
split's co-occurrence (``P(j | i)``) and the sample's labels (which AUs are active), so no label-independent attention
can meet it; it acts on the attention weights (GDA's query and key projections) and does not pull the tokens
themselves together. Half the mass stays on the token itself, so
dependency sharpens local evidence and never replaces it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Share of each AU token's target attention kept on the token itself (its local evidence).
SELF_ATTENTION_SHARE = 0.5


def true_prompt_mask(labels: torch.Tensor) -> torch.Tensor:
    """``(B, 2K)``: True for the prompts that are true of each sample (present ``2j`` if AU j is on, else absent
    ``2j+1``)."""
    batch, num_aus = labels.shape
    mask = torch.zeros(batch, num_aus, 2, dtype=torch.bool, device=labels.device)
    mask[..., 0] = labels > 0.5
    mask[..., 1] = labels <= 0.5
    return mask.flatten(1)


def micro_au_contrastive_loss(similarities: torch.Tensor, labels: torch.Tensor, mask_true_prompts: bool = True) -> torch.Tensor:
    """MiAUCL: for each sample and AU, cross-entropy over the prompts with the target the prompt stating the label.

    Args:
        similarities: ``(B, K, 2K)`` scaled similarities of each AU token to every prompt (present AU 0, absent AU 0,
            present AU 1, ...).
        labels: ``(B, K)`` in {0, 1}.
        mask_true_prompts: leave out of each softmax the other AUs' prompts that are true for the sample (no false
            negatives); ``False`` is the paper's form.
    """
    num_aus = labels.shape[1]
    aus = torch.arange(num_aus, device=labels.device)
    targets = 2 * aus + (labels <= 0.5).long()  # (B, K): the absent prompt sits right after the present one
    if mask_true_prompts:
        true = true_prompt_mask(labels).unsqueeze(1).expand(-1, num_aus, -1).clone()  # (B, K, 2K)
        true.scatter_(2, targets.unsqueeze(2), False)  # the target itself stays
        similarities = similarities.masked_fill(true, torch.finfo(similarities.dtype).min)
    return F.cross_entropy(similarities.flatten(0, 1), targets.flatten())


def conditional_cooccurrence(labels: torch.Tensor, smoothing: float = 1.0) -> torch.Tensor:
    """``(K, K)``: ``P(AU j active | AU i active)`` on a training split, Laplace-smoothed; the diagonal is 0."""
    labels = labels.float()
    together = labels.T @ labels  # (K, K) counts of both active
    active = labels.sum(0)  # (K,)
    probability = (together + smoothing) / (active.unsqueeze(1) + 2 * smoothing)
    return probability.fill_diagonal_(0.0)


def dependency_attention_target(labels: torch.Tensor, cooccurrence: torch.Tensor | None) -> torch.Tensor:
    """``(B, K, 1+K)``: each AU token's target attention over [global token, AU tokens] (see the module docstring)."""
    batch, num_aus = labels.shape
    labels = labels.to(torch.float32)
    weights = torch.ones(num_aus, num_aus, device=labels.device) if cooccurrence is None else cooccurrence.float()
    weights = weights * (1 - torch.eye(num_aus, device=labels.device))
    others = labels.unsqueeze(1) * weights.unsqueeze(0)  # (B, K, K): active AUs j != i, weighted by P(j | i)
    total = others.sum(-1, keepdim=True)
    lonely = (total <= 0).to(labels.dtype)  # no other active AU: the dependency share goes to the global token
    others = others / total.clamp(min=1e-12)
    target = torch.zeros(batch, num_aus, 1 + num_aus, device=labels.device)
    target[..., 0] = (1 - SELF_ATTENTION_SHARE) * lonely.squeeze(-1)
    target[..., 1:] = (1 - SELF_ATTENTION_SHARE) * others * (1 - lonely)
    target[..., 1:] += SELF_ATTENTION_SHARE * torch.eye(num_aus, device=labels.device)
    return target


def global_dependency_loss(dependency_attention: torch.Tensor, labels: torch.Tensor,
                           cooccurrence: torch.Tensor | None = None) -> torch.Tensor:
    """GDLoss: cross-entropy of GDA's attention rows of the AU tokens against :func:`dependency_attention_target`.

    Args:
        dependency_attention: ``(B, 1+K, 1+K)`` GDA's attention over [global, AU tokens], heads averaged.
        labels: ``(B, K)`` in {0, 1}.
        cooccurrence: ``(K, K)`` ``P(j | i)`` from the training split (:func:`conditional_cooccurrence`); ``None``
            weights the other active AUs alike.
    """
    target = dependency_attention_target(labels, cooccurrence)
    attention = dependency_attention[:, 1:, :].float()  # the AU tokens' rows
    return -(target * attention.clamp(min=1e-8).log()).sum(-1).mean()
