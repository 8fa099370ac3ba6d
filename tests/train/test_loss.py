"""The LM head applied only to the labelled positions gives the model's own loss and the same gradients, for
a plain model, a peft-wrapped one and hook adapters; a head that is more than a linear map falls back."""

import pytest
import torch

from geodiag.allocation import Allocation
from geodiag.data import Example
from geodiag.data.tokenise import collate, encode
from geodiag.methods import build
from geodiag.methods.ralora import RaLoraConfig
from geodiag.methods.ralora.model import RaLoraAdapted
from geodiag.models import linear_modules, load_model, tiny_model
from geodiag.train.loss import full_loss, labelled_loss, lm_loss

QUESTIONS = [("What is 2 plus 2?", "4"), ("What is 12 plus 30?", "42"), ("Name the capital of France.", "Paris")]


@pytest.fixture(scope="module")
def tokenizer():
    return load_model("tiny").tokenizer


def batch(tokenizer):
    items = [encode(tokenizer, Example(q, a), 48) for q, a in QUESTIONS]  # three lengths: padding in the batch
    return collate(items, tokenizer.pad_token_id)


def adapted(kind: str, tokenizer, dtype=torch.float32):
    """(the parameters that train, the model) for a plain model or an adapter method on the tiny model."""
    model = tiny_model(len(tokenizer), seed=3).to(dtype)
    if kind == "plain":
        return list(model.parameters()), model
    if kind == "ralora":
        names = [n for n in linear_modules(model) if n.endswith(("q_proj", "v_proj"))]
        a = RaLoraAdapted(model, RaLoraConfig(r=2), [Allocation(n, 2, 2, params=0) for n in names])
    else:
        a = build(kind, model, {"r": 4} if kind == "lora" else {"r_div": 4})
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # B = 0 at initialisation: give the update a shape so that its gradient path counts
        for name, p in a.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for ad in getattr(a, "adapters_", {}).values():
            ad.B.copy_(torch.randn(ad.B.shape, generator=g) * 0.1)
    return a.trainable(), a.model


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["plain", "lora", "manifold", "ralora"])
def test_labelled_positions_give_the_models_loss_and_gradients(tokenizer, kind, dtype):
    """To 1e-6 in float32 (summation order is all that differs); to 1e-12 in float64, gradients included."""
    params, model = adapted(kind, tokenizer, dtype)
    b = batch(tokenizer)
    assert (b["labels"] != -100).sum() < b["labels"].numel() // 3  # most positions carry no loss
    grads = {}
    for name, fn in (("full", full_loss), ("labelled", labelled_loss)):
        for p in params:
            p.grad = None
        loss = fn(model, b)
        loss.backward()
        grads[name] = (float(loss.detach()), [p.grad.clone() for p in params if p.grad is not None])
    (full, g_full), (ours, g_ours) = grads["full"], grads["labelled"]
    assert ours == pytest.approx(full, rel=1e-6 if dtype == torch.float32 else 1e-12)
    assert len(g_full) == len(g_ours) > 0
    # float32: equal up to the rounding of a different sum order (the truncated batch has other shapes); hook
    # adapters keep float32 parameters and compute their update in float32 even on a float64 model
    exact = dtype == torch.float64 and kind not in ("manifold", "ralora")
    for x, y in zip(g_full, g_ours, strict=True):
        scale = float(x.abs().max())
        tol = {"rtol": 1e-10, "atol": 1e-12 * scale} if exact else {"rtol": 1e-4, "atol": 1e-5 * scale}
        torch.testing.assert_close(y, x, **tol)


def test_training_uses_it_only_where_it_is_exact(tokenizer):
    a = build("lora", tiny_model(len(tokenizer)), {"r": 4})
    model = a.model
    loss, name = lm_loss(a, batch(tokenizer))
    assert name == "labelled positions only"
    handle = model.register_forward_hook(lambda m, args, out: out.__setitem__("loss", out["loss"] * 2) or out)
    loss, name = lm_loss(a, batch(tokenizer))  # the model's own loss now does more than its head
    handle.remove()
    assert name.startswith("full logits")


def test_a_head_that_is_more_than_a_linear_map_keeps_the_models_loss(tokenizer):
    model = tiny_model(len(tokenizer))
    model.config.final_logit_softcapping = 30.0  # as Gemma 2 declares it
    a = build("lora", model, {"r": 4})
    assert lm_loss(a, batch(tokenizer))[1].startswith("full logits")
