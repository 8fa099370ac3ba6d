"""The LM loss with the head applied only where a loss is taken.

Only the answer tokens carry labels, yet a causal LM's forward computes logits over the whole vocabulary at
every position (on SmolLM2, 49k x 576 per token: 15-20% of a training step). `labelled_loss` runs the decoder
stack, keeps the hidden states of the positions whose next token is labelled, and applies the head to those
alone. It is the same number as transformers' loss (labels shifted by one, -100 ignored, mean over the
labelled tokens, logits in float32); `lm_loss` checks that on one batch before training and falls back to
the full forward for a model whose head does more than one linear map (logit scaling or soft-capping).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from geodiag.methods.base import Adapted
from geodiag.models import backbone

Batch = dict[str, torch.Tensor]


def labelled_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Mean next-token cross-entropy over the labelled positions, the head applied to those positions only."""
    hidden = backbone(model)(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    targets = batch["labels"][:, 1:]  # (B, T-1): the token each position predicts
    keep = targets != -100  # (B, T-1)
    logits = model.get_output_embeddings()(hidden[:, :-1][keep])  # (n, V) for n labelled positions, not (B, T, V)
    return F.cross_entropy(logits.float(), targets[keep])


def full_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    return model(**batch).loss


def lm_loss(adapted: Adapted, probe: Batch, *, rtol: float = 1e-4) -> tuple[Callable[[Batch], torch.Tensor], str]:
    """The loss function training uses, and its name for the run's config: the labelled-positions loss when
    it equals the model's own loss on `probe` (a batch with labels, on the model's device), else the model's."""
    model = adapted.model
    if backbone(model) is model or model.get_output_embeddings() is None:
        return (lambda batch: full_loss(model, batch)), "full logits (the decoder stack is not separable)"
    with adapted.recording(), torch.no_grad():  # eval mode: dropout would make the two forwards differ
        ours, theirs = labelled_loss(model, probe), full_loss(model, probe)
    if not torch.allclose(ours, theirs.float(), rtol=rtol, atol=1e-6):
        return (lambda batch: full_loss(model, batch)), "full logits (the model's head is not a plain linear map)"
    return (lambda batch: labelled_loss(model, batch)), "labelled positions only"
