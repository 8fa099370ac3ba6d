"""ManifoldLoRA (ManifoldLoRA §3): gated adaptive-rank adapters plus circuit manifold probes.

Delta W = scaling * B diag(g) A with g_k = sigmoid(gamma_k / T), T = exp(tau)          (ManifoldLoRA Eq. 1-2)
r_max = floor(min(d_out, d_in) / r_div); effective rank r_eff = sum_k g_k             (Eq. 3)
Probe per transformer layer: Q = QR(Phi).Q, gates g^p, d_eff = sum g^p                  (Eq. 4)
L_align = 1 - mean_i ||(Delta W_i Q) * g^p|| / (||Delta W_i|| + eps), from the factors (Eq. 6)
L_sparse = mean over adapters of mean(g)                                                (Eq. 7)
L = L_LM + lambda_s L_sparse + lambda_a mean L_align                                    (Eq. 8)

What the paper leaves open, made checkable: with probe_mode="pca", Q is the top principal directions of the
projection inputs (a running covariance over training forwards), refreshed every pca_every steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from geodiag.errors import GeodiagError
from geodiag.methods.base import AdapterView
from geodiag.methods.context import BuildContext
from geodiag.methods.hooks import HookAdapted
from geodiag.methods.manifold.config import ManifoldConfig
from geodiag.models import (
    backbone,
    decoder_layers,
    hidden_size,
    layer_index,
    linear_modules,
    module_type,
    resolve_targets,
)
from geodiag.names import GATE_TEMPERATURE, LOSS_ALIGNMENT, LOSS_SPARSITY

_TINY = 1e-30  # floor under squared norms: sqrt'(0) would be infinite while B is still zero


def r_max(d_out: int, d_in: int, r_div: int) -> int:
    return min(d_out, d_in) // r_div


class GatedAdapter(nn.Module):
    """scaling * B diag(g) A on the input of one frozen linear layer."""

    def __init__(self, d_in: int, d_out: int, r: int, cfg: ManifoldConfig):
        super().__init__()
        self.A = nn.Parameter(torch.empty(r, d_in))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # as nn.Linear and LoRA
        self.B = nn.Parameter(torch.zeros(d_out, r) if cfg.init == "lora" else torch.randn(d_out, r) * 1e-3)
        self.gamma = nn.Parameter(torch.full((r,), float(cfg.gamma0)))
        self.tau = nn.Parameter(torch.tensor(math.log(cfg.T0)))
        self.scaling = float(cfg.scaling)

    def gates(self) -> torch.Tensor:  # (r,)
        return torch.sigmoid(self.gamma / self.tau.exp())

    def delta(self, x: torch.Tensor) -> torch.Tensor:  # (..., d_in) -> (..., d_out)
        return F.linear(F.linear(x, self.A) * self.gates(), self.B) * self.scaling


class Probe(nn.Module):
    """An orthonormal basis Q (h x p) of one layer's activation manifold, with gates."""

    def __init__(self, h: int, p: int, cfg: ManifoldConfig):
        super().__init__()
        self.Phi = nn.Parameter(torch.randn(h, p))
        self.gamma = nn.Parameter(torch.full((p,), float(cfg.gamma0)))
        self.tau = nn.Parameter(torch.tensor(math.log(cfg.T0)))
        self.register_buffer("pca_basis", torch.zeros(h, p))  # (h, p): Q in pca mode, once refreshed
        self.register_buffer("pca_ready", torch.tensor(False))
        self.pca = cfg.probe_mode == "pca"

    def basis(self) -> torch.Tensor:  # (h, p)
        # learned mode never reads the flag: no tensor-to-bool sync, nothing for torch.compile to break on
        return self.pca_basis if self.pca and bool(self.pca_ready) else torch.linalg.qr(self.Phi).Q

    def gates(self) -> torch.Tensor:  # (p,)
        return torch.sigmoid(self.gamma / self.tau.exp())


def alignment_loss(adapter: GatedAdapter, Q: torch.Tensor, probe_gates: torch.Tensor, eps: float) -> torch.Tensor:
    """ManifoldLoRA Eq. 6 from the factors: Delta W Q = B diag(g) (A Q), ||Delta W_i||^2 = b_i (A A^T) b_i^T."""
    Bg = adapter.B * adapter.gates()  # (d_out, r)
    proj = (Bg @ (adapter.A @ Q)) * probe_gates  # (d_out, p)
    num = proj.square().sum(dim=1).clamp_min(_TINY).sqrt()  # (d_out,)
    row_sq = ((Bg @ (adapter.A @ adapter.A.T)) * Bg).sum(dim=1)  # (d_out,)
    den = row_sq.clamp_min(_TINY).sqrt()
    s = abs(adapter.scaling)
    return 1.0 - (num * s / (den * s + eps)).mean()


class ManifoldAdapted(HookAdapted):
    method = "manifold"
    has_probes = True

    def __init__(self, model: nn.Module, cfg: ManifoldConfig):
        super().__init__(model, cfg)
        self.h = hidden_size(model)
        linears = linear_modules(model)
        for name in resolve_targets(model, cfg.target_modules):
            d_out, d_in = linears[name].out_features, linears[name].in_features
            r = r_max(d_out, d_in, cfg.r_div)
            if r < 1:
                raise GeodiagError(f"r_div={cfg.r_div} leaves no rank for {name} ({d_out}x{d_in}); lower r_div to "
                                   f"at most {min(d_out, d_in)}.")
            self.attach(name, GatedAdapter(d_in, d_out, r, cfg))
        p = self.h // cfg.probe_div
        if p < 1:
            raise GeodiagError(f"probe_div={cfg.probe_div} exceeds the hidden size {self.h}; lower it.")
        device = next(model.parameters()).device  # float32 probes, like the adapters, under any base dtype
        self.probes = nn.ModuleList([Probe(self.h, p, cfg).to(device) for _ in range(len(decoder_layers(model)))])
        self._cov: dict[int, tuple] = {}  # layer -> (sum x x^T, sum x, count, last input) in pca mode
        self._mask: torch.Tensor | None = None  # the attention mask of the forward in progress
        self._handles.append(backbone(model).register_forward_pre_hook(self._remember_mask, with_kwargs=True))

    @property
    def compiles(self) -> bool:
        return self.config.probe_mode != "pca"  # PCA statistics accumulate in Python dicts during the forward

    def _remember_mask(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self._mask = kwargs.get("attention_mask")  # (B, T): PCA statistics skip padding

    def on_input(self, name: str, x: torch.Tensor) -> None:
        layer = layer_index(name)
        if self.config.probe_mode == "pca" and self.model.training and layer is not None and x.shape[-1] == self.h:
            self._accumulate(layer, x)

    def _accumulate(self, layer: int, x: torch.Tensor) -> None:
        if layer in self._cov and self._cov[layer][3] is x:
            return  # q, k and v share one input: count it once
        flat = _tokens(x.detach(), self._mask).to(torch.float64)  # (n, h)
        s2, s1, n, _ = self._cov.get(layer, (0.0, 0.0, 0, None))
        self._cov[layer] = (s2 + flat.T @ flat, s1 + flat.sum(0), n + flat.shape[0], x)

    def refresh_pca(self) -> None:
        """Q of each layer := top-p eigenvectors of its running input covariance (probe_mode=pca), over the
        inputs every rank saw: the sums are added over the processes first, so all ranks get the same Q."""
        for layer, (s2, s1, n, _) in sorted(self._cov.items()):
            s2, s1, n = _summed_over_ranks(s2, s1, n)
            if n < 2:
                continue
            mean = s1 / n
            cov = (s2 - n * torch.outer(mean, mean)) / (n - 1)  # (h, h)
            vecs = torch.linalg.eigh(cov).eigenvectors.flip(1)  # (h, h), largest first
            probe = self.probes[layer]
            probe.pca_basis.copy_(vecs[:, : probe.Phi.shape[1]])
            probe.pca_ready.fill_(True)
        self._cov.clear()

    def probe_pairs(self):
        """(module name, adapter, probe) for every adapter whose input lives in the hidden space."""
        for name in self.targets:
            adapter, layer = self.adapter(name), layer_index(name)
            if layer is not None and adapter.A.shape[1] == self.h:
                yield name, adapter, self.probes[layer]

    def alignment_losses(self) -> dict[str, torch.Tensor]:
        return {name: alignment_loss(a, p.basis(), p.gates(), self.config.eps) for name, a, p in self.probe_pairs()}

    def aux_losses(self, progress: float) -> dict[str, tuple[torch.Tensor, float]]:
        cfg = self.config
        sparsity = torch.stack([a.gates().mean() for a in self.adapters_.values()]).mean()
        out = {LOSS_SPARSITY: (sparsity, cfg.lambda_s)}
        aligns = list(self.alignment_losses().values())
        if aligns:
            ramp = 1.0 if cfg.lambda_a_warmup == 0 else min(1.0, progress / cfg.lambda_a_warmup)
            out[LOSS_ALIGNMENT] = (torch.stack(aligns).mean(), cfg.lambda_a * ramp)
        return out

    def after_step(self, step: int) -> None:
        if self.config.probe_mode == "pca" and step % self.config.pca_every == 0:
            self.refresh_pca()

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """ManifoldLoRA §4.1: factors and probe bases at the run's rate, gate logits and log-temperatures at their
        ratios to it (the paper's 1e-4, 1e-3, 1e-3 at --lr 1e-4), so a learning-rate sweep moves all three."""
        cfg = self.config
        groups = {"factors": [], "gates": [], "temperature": []}
        for pname, param in self._trainable_named():
            groups[{"gamma": "gates", "tau": "temperature"}.get(pname.rsplit(".", 1)[-1], "factors")].append(param)
        rates = {"factors": lr, "gates": lr * cfg.gate_lr_ratio, "temperature": lr * cfg.temperature_lr_ratio}
        return [{"params": ps, "lr": rates[k], "weight_decay": weight_decay, "name": k} for k, ps in groups.items()]

    def _trainable_named(self):
        yield from self.adapters_.named_parameters()
        for pname, param in self.probes.named_parameters():
            if self.config.probe_mode == "learned" or not pname.endswith("Phi"):  # PCA bases are not learned
                yield pname, param

    def trainable(self) -> list[nn.Parameter]:
        return [p for _, p in self._trainable_named()]

    def parts(self) -> dict[str, nn.Module]:
        return {"adapters": self.adapters_, "probes": self.probes}

    def adapters(self) -> list[AdapterView]:
        return [AdapterView(n, layer_index(n), module_type(n), a.B.detach(), a.A.detach(), a.gates().detach(),
                            a.scaling) for n, a in ((n, self.adapter(n)) for n in self.targets)]

    def extra_state(self) -> dict[str, float]:
        temps = torch.stack([a.tau.detach().exp() for a in self.adapters_.values()])
        return {GATE_TEMPERATURE: float(temps.mean())}


def _summed_over_ranks(s2: torch.Tensor, s1: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(sum x x^T, sum x, count) added over the processes of a distributed run; as they are on one process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return s2, s1, n
    count = torch.tensor([float(n)], dtype=torch.float64, device=s1.device)
    for t in (s2, s1, count):
        dist.all_reduce(t)
    return s2, s1, int(count.item())


def build(model: nn.Module, cfg: ManifoldConfig, context: BuildContext) -> ManifoldAdapted:
    return ManifoldAdapted(model, cfg)


def restore(model: nn.Module, cfg: ManifoldConfig, meta: dict) -> ManifoldAdapted:
    return ManifoldAdapted(model, cfg)


def _tokens(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, h) -> (n, h) without padding positions when a matching mask is known."""
    if mask is not None and mask.shape == x.shape[:2]:
        return x[mask.bool()]
    return x.reshape(-1, x.shape[-1])
