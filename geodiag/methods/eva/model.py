"""EVA through peft: `LoraConfig(init_lora_weights="eva", eva_config=...)`, then
`initialize_lora_eva_weights` on batches of the training data: an incremental SVD of every target layer's
input, A := its top right-singular vectors, and the rank budget r x (number of modules) redistributed by
explained variance (a module may get 0 ranks and lose its adapter). The ranks it settles on are recorded as
`alloc/eva`, the same way the allocation-driven methods record theirs."""

from __future__ import annotations

import itertools
import warnings

from torch import nn

from geodiag import allocation as alloc
from geodiag.errors import GeodiagError
from geodiag.methods.base import AllocationRecord
from geodiag.methods.context import BuildContext
from geodiag.methods.eva.config import EvaConfig
from geodiag.methods.lora.model import LoraAdapted
from geodiag.methods.peft_adapted import check_rank, wrap
from geodiag.models import module_shapes, resolve_targets


def capped_forward(limit: int):
    """peft's forward over the SVD's batches, cycling them until every layer's SVD converged, which may be
    never (tau near 1, noisy inputs): after `limit` forwards this stops with a sentence instead."""
    from peft.tuners.lora.eva import forward_fn_dict

    calls = 0

    def forward(model, inputs):
        nonlocal calls
        calls += 1
        if calls > limit:
            raise GeodiagError(f"EVA's SVD did not converge within {limit} batches; raise --eva-batches or lower "
                               "--tau.")
        return forward_fn_dict(model, inputs)

    return forward


def _float32_inputs(layer_input, model_input, layer_name):
    """peft's own selection of the labelled positions, in float32: a bfloat16 model's inputs are too coarse
    for the incremental SVD to converge."""
    from peft.tuners.lora.eva import prepare_layer_inputs_fn_language_modeling

    return prepare_layer_inputs_fn_language_modeling(layer_input, model_input, layer_name).float()


def build(model: nn.Module, cfg: EvaConfig, context: BuildContext) -> LoraAdapted:
    from peft import EvaConfig as PeftEvaConfig
    from peft import LoraConfig as PeftLoraConfig
    from peft import initialize_lora_eva_weights

    targets = resolve_targets(model, cfg.target_modules)
    check_rank(model, targets, cfg.r, "r")
    shapes = module_shapes(model, targets)
    batches = list(itertools.islice(context.require_batches("batches to take its SVD on")(), cfg.eva_batches))
    eva = PeftEvaConfig(rho=cfg.rho, tau=cfg.tau, whiten=cfg.whiten, use_label_mask=cfg.use_label_mask,
                        adjust_scaling_factors=cfg.adjust_scaling_factors)
    peft_cfg = PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                              init_lora_weights="eva", eva_config=eva, task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft suggests low_cpu_mem_usage, an optimisation, not a user's concern
        warnings.filterwarnings("ignore", message=".*low_cpu_mem_usage.*")
        adapted = LoraAdapted(wrap(model, peft_cfg), cfg)
    was = adapted.model.training
    adapted.model.eval()  # the SVD sees the model as it is, without dropout
    initialize_lora_eva_weights(adapted.model, batches, show_progress_bar=context.progress,
                                forward_fn=capped_forward(cfg.eva_batches), prepare_layer_inputs_fn=_float32_inputs)
    adapted.model.train(was)
    adapted.method = "eva"
    ranks = {name: int(m.r["default"]) for name, m in adapted.lora_layers()}  # modules EVA gave 0 ranks are gone
    allocations = [alloc.Allocation(s.name, ranks.get(s.name, 0), 1, s.layer, s.module_type,
                                    alloc.lora_params(s, ranks.get(s.name, 0))) for s in shapes]
    adapted.allocation = AllocationRecord("eva", allocations, cfg.r)
    return adapted
