"""The two measurements the allocations stand on.

GID pass (RaLoRA §3.2, Alg. 1 lines 1-9): accumulate the full fine-tuning gradient of every target
weight over N mini-batches, without an optimiser step; GID_l = erank(G_l). Only the target weights get
gradients, and each parameter's gradient is folded into its accumulator by a post-accumulate hook and
freed at once, so peak memory is one float32 copy of the target weights (plus one transient gradient).

ID pass (GeLoRA, as reported): TwoNN intrinsic dimension and participation ratio of the non-padding
token representations entering and leaving every block (hidden_states[0..L]).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from geodiag.errors import GeodiagError
from geodiag.metrics import effective_rank, participation_ratio, singular_values, threshold_rank, twonn
from geodiag.models import backbone, layer_index, linear_modules, module_type
from geodiag.names import GID_THRESHOLDS


@dataclass(frozen=True)
class GradientStats:
    module: str
    layer: int | None
    module_type: str
    d_out: int
    d_in: int
    erank: float  # GID
    thresholds: dict[float, int]  # eps -> number of singular values above it
    importance: float  # mean |W * G| (RaLoRA Eq. 5)
    fisher: float  # mean over batches of mean(G_b^2) (RaLoRA App. E.2)


@dataclass
class Accumulated:
    """The summed gradient of each target weight (float32), the summed per-batch Fisher means, batches seen."""

    grads: dict[str, torch.Tensor]  # name -> (d_out, d_in)
    fisher: dict[str, float]
    n: int

    def summed_over_ranks(self) -> Accumulated:
        """Added over the processes of a data-parallel pass, once, in place: then every rank holds the sums
        one process would have over all the batches."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        for G in self.grads.values():
            dist.all_reduce(G)
        names = sorted(self.fisher)
        scalars = torch.tensor([self.fisher[k] for k in names] + [self.n], dtype=torch.float64,
                               device=next(iter(self.grads.values())).device)
        dist.all_reduce(scalars)
        self.fisher, self.n = dict(zip(names, scalars[:-1].tolist(), strict=True)), int(scalars[-1].item())
        return self


def gradient_pass(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], targets: list[str], *,
                   total: int | None = None, progress: bool = True,
                   on_batch: Callable[[int], None] | None = None) -> list[GradientStats]:
    """Accumulated gradients of the target weights over the batches (sum, as Alg. 1), and their statistics.
    on_batch(n) is told each time n batches are done (the store records it for the dashboard's progress)."""
    acc = accumulate_gradients(model, batches, targets, total=total, progress=progress, on_batch=on_batch)
    return gradient_stats(model, acc)


def accumulate_gradients(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], targets: list[str], *,
                         total: int | None = None, progress: bool = True,
                         on_batch: Callable[[int], None] | None = None) -> Accumulated:
    """Sum each target weight's gradient over the batches; the model's own gradients are freed as they come."""
    linears = linear_modules(model)
    weights = {name: linears[name].weight for name in targets}
    was = {p: p.requires_grad for p in model.parameters()}
    acc = Accumulated({name: torch.zeros_like(w, dtype=torch.float32) for name, w in weights.items()},
                      dict.fromkeys(weights, 0.0), 0)
    handles = []
    for p in model.parameters():
        p.requires_grad_(False)
    for name, w in weights.items():
        w.requires_grad_(True)
        handles.append(w.register_post_accumulate_grad_hook(_fold(acc.grads[name], acc.fisher, name)))
    training = model.training
    model.eval()  # no dropout: the gradient of the model as it is
    try:
        for batch in tqdm(batches, total=total, desc="gradients", unit="batch", disable=not progress):
            model(**batch).loss.backward()
            acc.n += 1
            if on_batch:
                on_batch(acc.n)
    finally:
        for h in handles:
            h.remove()
        for p, flag in was.items():
            p.requires_grad_(flag)
        model.train(training)
    return acc


def gradient_stats(model: nn.Module, acc: Accumulated) -> list[GradientStats]:
    """GID (erank), threshold ranks, importance and Fisher of each accumulated gradient."""
    if acc.n == 0:
        raise ValueError("no batches: the gradient pass needs at least one")
    linears = linear_modules(model)
    out = []
    for name, G in acc.grads.items():
        s = singular_values(G)
        W = linears[name].weight.detach().to(torch.float32)
        out.append(GradientStats(name, layer_index(name), module_type(name), G.shape[0], G.shape[1],
                                 effective_rank(s), {eps: threshold_rank(s, eps) for eps in GID_THRESHOLDS},
                                 float((W * G).abs().mean()), acc.fisher[name] / acc.n))
    return out


def _fold(acc: torch.Tensor, fisher: dict, name: str):
    def hook(p: torch.Tensor) -> None:
        g = p.grad  # this batch's gradient
        acc.add_(g.to(acc.dtype))
        fisher[name] += float(g.to(torch.float64).square().mean())
        p.grad = None  # free it now: only the accumulators stay

    return hook


@dataclass(frozen=True)
class LayerGeometry:
    layer: int  # index into hidden_states: 0 = entering block 0, L = leaving the last block
    twonn: float
    twonn_error: float
    n: int
    duplicates: int
    participation_ratio: float


def hidden_state_pass(model: nn.Module, batches: Iterator[dict[str, torch.Tensor]], tokens: int, *,
                       pooling: str = "tokens", progress: bool = True,
                       on_batch: Callable[[int], None] | None = None) -> list[LayerGeometry]:
    """TwoNN and PR of hidden_states[0..L] over `tokens` non-padding tokens (or mean-pooled sequences).
    on_batch(n) is told after each batch how many of the `tokens` points are collected."""
    points = collect_hidden_states(model, batches, tokens, pooling=pooling, progress=progress, on_batch=on_batch)
    return layer_geometries(points)


@torch.no_grad()
def collect_hidden_states(model: nn.Module, batches: Iterator[dict[str, torch.Tensor]], tokens: int, *,
                          pooling: str = "tokens", states: list[int] | None = None, progress: bool = True,
                          on_batch: Callable[[int], None] | None = None) -> dict[int, torch.Tensor]:
    """hidden_states index -> (tokens, h) float32 points on the CPU: every state, or those in `states`."""
    if pooling not in ("tokens", "mean"):
        raise ValueError("pooling must be 'tokens' or 'mean'")
    model.eval()
    chunks: dict[int, list[torch.Tensor]] = {}
    have = 0
    bar = tqdm(total=tokens, desc="hidden states", unit="pt", disable=not progress)
    while have < tokens:
        batch = next(batches)
        mask = batch["attention_mask"].bool()  # (B, T)
        hs = backbone(model)(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             output_hidden_states=True).hidden_states  # L + 1 tensors (B, T, h), no LM head
        for i in range(len(hs)) if states is None else states:
            H = hs[i]
            pts = H[mask] if pooling == "tokens" else (H * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            chunks.setdefault(i, []).append(pts.float().cpu())
        got = int(mask.sum()) if pooling == "tokens" else mask.shape[0]
        have += got
        bar.update(got)
        if on_batch:
            on_batch(min(have, tokens))
    bar.close()
    return {i: torch.cat(c)[:tokens] for i, c in chunks.items()}


def layer_geometries(points: dict[int, torch.Tensor]) -> list[LayerGeometry]:
    """TwoNN and participation ratio of each hidden state's points (n, h)."""
    out = []
    for i, X in sorted(points.items()):
        try:
            r = twonn(X)
        except ValueError as e:  # e.g. every point a duplicate of another: too few distinct ones
            raise GeodiagError(f"TwoNN could not measure hidden_states[{i}]: {e} Collect more points "
                               "(--id-tokens) or use more varied data.") from None
        out.append(LayerGeometry(i, r.dimension, r.error, r.n_used, r.n_duplicates, participation_ratio(X)))
    return out
