"""Hidden-state geometry on the fixed record batch: one no-grad forward of the decoder stack (no LM head),
the participation ratio of every block's output (ManifoldLoRA Eq. 5), and the probe metrics for a method
that has probes."""

from __future__ import annotations

import torch

from geodiag.collectors.probes import probe_inputs, probe_rows
from geodiag.methods.base import Adapted
from geodiag.metrics import participation_ratio
from geodiag.models import backbone
from geodiag.names import PARTICIPATION_RATIO, PARTICIPATION_RATIO_N
from geodiag.records import row


@torch.no_grad()
def activation_rows(adapted: Adapted, batch: dict[str, torch.Tensor], step: int, wall: float) -> list[dict]:
    mask = batch["attention_mask"].bool()  # (B, T)
    with adapted.recording(), probe_inputs(adapted, mask) as inputs:
        # the decoder stack alone: the LM head's logits over the whole vocabulary are not needed here
        out = backbone(adapted.model)(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                      output_hidden_states=True)
    rows = []
    for layer, H in enumerate(out.hidden_states[1:]):  # block outputs, (B, T, h) each
        tokens = H[mask].float()  # (n, h), padding dropped
        if tokens.shape[0] >= 2:
            where = {"module": f"layers.{layer}", "layer": layer}
            rows.append(row(step, wall, PARTICIPATION_RATIO, participation_ratio(tokens), **where))
            rows.append(row(step, wall, PARTICIPATION_RATIO_N, tokens.shape[0], **where))
    if adapted.has_probes:
        rows += probe_rows(adapted, inputs, step, wall)
    return rows
