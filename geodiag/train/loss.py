"""The LM loss with the head applied only where a loss is taken.

Only the answer tokens carry labels, yet a causal LM's forward computes logits over the whole vocabulary at
every position (on SmolLM2, 49k x 576 per token: 15-20% of a training step). `labelled_loss` runs the decoder
stack, keeps the hidden states of the positions whose next token is labelled, and applies the head to those
alone. It is the same number as transformers' loss (labels shifted by one, -100 ignored, mean over the
labelled tokens, logits in float32); `lm_loss` checks that on one batch before training and falls back to
the full forward for a model whose head does more than one linear map (logit scaling or soft-capping).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from geodiag.methods.base import Adapted
from geodiag.models import backbone

Batch = dict[str, torch.Tensor]


def labelled_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Mean next-token cross-entropy over the labelled positions, the head applied to those positions only.
    Positions after the batch's last labelled prediction are not run at all: under causal attention they
    change nothing before them (the final token, at least, predicts nothing)."""
    targets = batch["labels"][:, 1:]  # (B, T-1): the token each position predicts
    used = int((targets != -100).any(0).nonzero().max()) + 1 if (targets != -100).any() else 1
    hidden = backbone(model)(input_ids=batch["input_ids"][:, :used],
                             attention_mask=batch["attention_mask"][:, :used]).last_hidden_state  # (B, used, h)
    targets = targets[:, :used]
    keep = targets != -100  # (B, used)
    logits = model.get_output_embeddings()(hidden[keep])  # (n, V) for n labelled positions, not (B, T, V)
    return F.cross_entropy(logits.float(), targets[keep])


@torch.no_grad()
def held_out_loss(adapted: Adapted, loss: Callable[[Batch], torch.Tensor], batches: list[Batch]) -> float:
    """The training loss on held-out batches, weighted by their labelled positions (every answer token counts
    once), in eval mode."""
    total, count = 0.0, 0
    with adapted.recording():
        for batch in batches:
            n = int((batch["labels"][:, 1:] != -100).sum())
            total, count = total + float(loss(batch)) * n, count + n
    return total / max(count, 1)


@torch.no_grad()
def text_loss(model: nn.Module, batches: list[Batch]) -> float:
    """The model's own mean token loss over batches of plain text, weighted by their labelled positions, in eval
    mode: the forgetting measure's "before", on the base model before any adapter is attached."""
    was_training, total, count = model.training, 0.0, 0
    model.eval()
    try:
        for batch in batches:
            n = int((batch["labels"][:, 1:] != -100).sum())
            total, count = total + float(full_loss(model, batch)) * n, count + n
    finally:
        model.train(was_training)
    return total / max(count, 1)


def full_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    return model(**batch).loss


# config attributes of heads that do more than one linear map (Gemma 2's soft-capping, Cohere's logit scale)
_SHAPED_HEADS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def lm_loss(adapted: Adapted, probe: Batch) -> tuple[Callable[[Batch], torch.Tensor], str]:
    """The loss function training uses, and its name for the run's config: the labelled-positions loss when
    the head is one linear map and it equals the model's own loss on `probe` (a batch with labels, on the
    model's device; to 1e-4 in float32, to bfloat16's rounding otherwise); else the model's own loss."""
    model = adapted.model
    full = functools.partial(full_loss, model)
    config = getattr(model, "config", None)
    if backbone(model) is model or model.get_output_embeddings() is None or any(
            getattr(config, a, None) not in (None, 1, 1.0) for a in _SHAPED_HEADS):
        return full, "full logits (the head is not one linear map on the decoder's output)"
    with adapted.recording(), torch.no_grad():  # eval mode: dropout would make the two forwards differ
        ours, theirs = labelled_loss(model, probe), full_loss(model, probe).float()
    rtol = 1e-4 if model.get_output_embeddings().weight.dtype == torch.float32 else 2e-2
    if not torch.allclose(ours, theirs, rtol=rtol, atol=1e-6):
        return full, f"full logits (the labelled-positions loss differed: {float(ours):.6g} vs {float(theirs):.6g})"
    return functools.partial(labelled_loss, model), "labelled positions only"
