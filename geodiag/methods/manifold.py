"""ManifoldLoRA (paper 002 §3, SPEC §2): gated adaptive-rank adapters plus circuit manifold probes.

Delta W = scaling * B diag(g) A with g_k = sigmoid(gamma_k / T), T = exp(tau)          (002 Eq. 1-2)
r_max = floor(min(d_out, d_in) / r_div); effective rank r_eff = sum_k g_k             (002 Eq. 3)
Probe per transformer layer: Q = QR(Phi).Q, gates g^p, d_eff = sum g^p                  (002 Eq. 4)
L_align = 1 - mean_i ||(Delta W_i Q) * g^p|| / (||Delta W_i|| + eps), from the factors (002 Eq. 6)
L_sparse = mean over adapters of mean(g)                                                (002 Eq. 7)
L = L_LM + lambda_s L_sparse + lambda_a mean L_align                                    (002 Eq. 8)

The update rides on forward hooks: the base model's weights are frozen and never modified.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from geodiag.errors import GeodiagError
from geodiag.methods.base import Adapted, AdapterView, MethodConfig, option
from geodiag.models import decoder_layers, hidden_size, layer_index, linear_modules, module_type, resolve_targets

_TINY = 1e-30  # floor under squared norms: sqrt'(0) would be infinite while B is still zero


@dataclass
class ManifoldConfig(MethodConfig):
    r_div: int = option(16, "rank divisor: r_max = floor(min(d_out, d_in) / r_div)")
    probe_div: int = option(32, "probe divisor: p = floor(hidden / probe_div)")
    gamma0: float = option(0.0, "initial gate logit (g = sigmoid(0) = 0.5)")
    T0: float = option(1.0, "initial gate temperature")
    scaling: float = option(1.0, "multiplier of B diag(g) A (the paper uses none, i.e. 1)")
    lambda_s: float = option(0.01, "sparsity loss weight (002 App. A: 0.03-0.10 prunes)")
    lambda_a: float = option(0.10, "alignment loss weight")
    lambda_a_warmup: float = option(0.0, "fraction of steps over which lambda_a ramps up from 0")
    lr_factors: float = option(1e-4, "learning rate of A, B and the probe bases")
    lr_gates: float = option(1e-3, "learning rate of the gate logits")
    lr_temperature: float = option(1e-3, "learning rate of the log-temperatures")
    init: str = option("lora", "'lora': A Kaiming-uniform, B zero (starts at the base model); 'random': B small too",
                       choices=("lora", "random"))
    probe_mode: str = option("learned", "'learned' (the paper) or 'pca': Q = top principal directions of the "
                             "projection inputs, refreshed every pca_every steps", choices=("learned", "pca"))
    pca_every: int = option(25, "steps between PCA probe refreshes (probe_mode=pca)")
    eps: float = option(1e-8, "epsilon in the alignment loss denominator")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require(self.r_div >= 1, "r_div", "a positive integer")
        self._require(self.probe_div >= 1, "probe_div", "a positive integer")
        self._require(self.T0 > 0, "T0", "positive")
        self._require(self.lambda_s >= 0, "lambda_s", "non-negative")
        self._require(self.lambda_a >= 0, "lambda_a", "non-negative")
        self._require(0 <= self.lambda_a_warmup <= 1, "lambda_a_warmup", "a fraction in [0, 1]")
        self._require(self.pca_every >= 1, "pca_every", "a positive integer")


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
        self.register_buffer("pca_basis", torch.empty(0))  # (h, p) once refreshed in pca mode

    def basis(self) -> torch.Tensor:  # (h, p)
        if self.pca_basis.numel():
            return self.pca_basis
        return torch.linalg.qr(self.Phi).Q

    def gates(self) -> torch.Tensor:  # (p,)
        return torch.sigmoid(self.gamma / self.tau.exp())


def alignment_loss(adapter: GatedAdapter, Q: torch.Tensor, probe_gates: torch.Tensor, eps: float) -> torch.Tensor:
    """002 Eq. 6 from the factors: Delta W Q = B diag(g) (A Q), ||Delta W_i||^2 = b_i (A A^T) b_i^T."""
    Bg = adapter.B * adapter.gates()  # (d_out, r)
    proj = (Bg @ (adapter.A @ Q)) * probe_gates  # (d_out, p)
    num = proj.square().sum(dim=1).clamp_min(_TINY).sqrt()  # (d_out,)
    row_sq = ((Bg @ (adapter.A @ adapter.A.T)) * Bg).sum(dim=1)  # (d_out,)
    den = row_sq.clamp_min(_TINY).sqrt()
    s = abs(adapter.scaling)
    return 1.0 - (num * s / (den * s + eps)).mean()


class ManifoldAdapted(Adapted):
    method = "manifold"

    def __init__(self, model: nn.Module, cfg: ManifoldConfig):
        super().__init__(model, cfg)
        for p in model.parameters():
            p.requires_grad_(False)
        self.h = hidden_size(model)
        linears = linear_modules(model)
        self.targets = resolve_targets(model, cfg.target_modules)
        self.adapters_ = nn.ModuleDict()
        for name in self.targets:
            lin = linears[name]
            r = r_max(lin.out_features, lin.in_features, cfg.r_div)
            if r < 1:
                short = min(lin.out_features, lin.in_features)
                raise GeodiagError(f"r_div={cfg.r_div} leaves no rank for {name} ({lin.out_features}x"
                                   f"{lin.in_features}); lower r_div to at most {short}.")
            self.adapters_[_key(name)] = GatedAdapter(lin.in_features, lin.out_features, r, cfg).to(
                lin.weight.device, lin.weight.dtype)
        p = self.h // cfg.probe_div
        if p < 1:
            raise GeodiagError(f"probe_div={cfg.probe_div} exceeds the hidden size {self.h}; lower it.")
        n_layers = len(decoder_layers(model))
        ref = next(model.parameters())
        self.probes = nn.ModuleList([Probe(self.h, p, cfg).to(ref.device, ref.dtype) for _ in range(n_layers)])
        self._cov = {}  # layer -> (sum x x^T, sum x, count) of projection inputs, pca mode only
        self.attention_mask: torch.Tensor | None = None  # set by the trainer so statistics skip padding
        self._handles = [linears[n].register_forward_hook(self._hook(n)) for n in self.targets]

    def _hook(self, name: str):
        adapter = self.adapters_[_key(name)]
        layer = layer_index(name)

        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            x = inputs[0]  # (B, T, d_in)
            if self.config.probe_mode == "pca" and self.training_stats and layer is not None \
                    and x.shape[-1] == self.h:
                self._accumulate(layer, x)
            return output + adapter.delta(x)

        return hook

    training_stats = True  # pca mode: accumulate activation covariance during training forwards

    def _accumulate(self, layer: int, x: torch.Tensor) -> None:
        if layer in self._cov and self._cov[layer][3] is x:
            return  # q, k, v share one input: count it once
        flat = _tokens(x.detach(), self.attention_mask).to(torch.float64)  # (n, h)
        s2, s1, n, _ = self._cov.get(layer, (0.0, 0.0, 0, None))
        self._cov[layer] = (s2 + flat.T @ flat, s1 + flat.sum(0), n + flat.shape[0], x)

    def refresh_pca(self) -> None:
        """Q of each layer := top-p eigenvectors of its running input covariance (probe_mode=pca)."""
        for layer, (s2, s1, n, _) in self._cov.items():
            if n < 2:
                continue
            mean = s1 / n
            cov = (s2 - n * torch.outer(mean, mean)) / (n - 1)
            vecs = torch.linalg.eigh(cov).eigenvectors.flip(1)
            probe = self.probes[layer]
            probe.pca_basis = vecs[:, : probe.Phi.shape[1]].to(probe.Phi.dtype).contiguous()
        self._cov.clear()

    def pairs(self):
        """(module name, adapter, probe) for every adapter whose input lives in the hidden space."""
        for name in self.targets:
            adapter, layer = self.adapters_[_key(name)], layer_index(name)
            if layer is not None and adapter.A.shape[1] == self.h:
                yield name, adapter, self.probes[layer]

    def alignment_losses(self) -> dict[str, torch.Tensor]:
        return {name: alignment_loss(a, p.basis(), p.gates(), self.config.eps) for name, a, p in self.pairs()}

    def aux_losses(self, progress: float) -> dict[str, tuple[torch.Tensor, float]]:
        cfg = self.config
        sparsity = torch.stack([a.gates().mean() for a in self.adapters_.values()]).mean()
        out = {"loss/sparsity": (sparsity, cfg.lambda_s)}
        aligns = list(self.alignment_losses().values())
        if aligns:
            ramp = 1.0 if cfg.lambda_a_warmup == 0 else min(1.0, progress / cfg.lambda_a_warmup)
            out["loss/alignment"] = (torch.stack(aligns).mean(), cfg.lambda_a * ramp)
        return out

    def after_step(self, step: int) -> None:
        if self.config.probe_mode == "pca" and step % self.config.pca_every == 0:
            self.refresh_pca()

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        cfg = self.config
        groups = {"factors": [], "gates": [], "temperature": []}
        for module in [*self.adapters_.values(), *self.probes]:
            for pname, param in module.named_parameters():
                kind = {"gamma": "gates", "tau": "temperature"}.get(pname, "factors")
                groups[kind].append(param)
        rates = {"factors": cfg.lr_factors, "gates": cfg.lr_gates, "temperature": cfg.lr_temperature}
        return [{"params": ps, "lr": rates[k], "weight_decay": weight_decay, "name": k} for k, ps in groups.items()]

    def trainable(self) -> list[nn.Parameter]:
        params = [p for a in self.adapters_.values() for p in a.parameters()]
        if self.config.probe_mode == "learned":
            params += [p for pr in self.probes for p in pr.parameters()]
        else:
            params += [p for pr in self.probes for n, p in pr.named_parameters() if n != "Phi"]
        return params

    def adapters(self) -> list[AdapterView]:
        return [AdapterView(n, layer_index(n), module_type(n), a.B.detach(), a.A.detach(), a.gates().detach(),
                            a.scaling) for n, a in ((n, self.adapters_[_key(n)]) for n in self.targets)]

    def extra_state(self) -> dict[str, float]:
        temps = torch.stack([a.tau.detach().exp() for a in self.adapters_.values()])
        return {"gate/temperature": float(temps.mean())}

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {f"adapters.{k}.{n}": t for k, a in self.adapters_.items() for n, t in a.state_dict().items()}
        out |= {f"probes.{i}.{n}": t for i, p in enumerate(self.probes) for n, t in p.state_dict().items()}
        return out

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items() if v.numel()}
        save_file(state, str(directory / "manifold_adapter.safetensors"))
        meta = {"method": "manifold", "config": self.config.to_dict(), "targets": self.targets}
        (directory / "manifold_config.json").write_text(json.dumps(meta, indent=2))

    def load(self, directory: Path) -> None:
        from safetensors.torch import load_file

        state = load_file(str(Path(directory) / "manifold_adapter.safetensors"))
        for key, tensor in state.items():
            kind, idx, name = key.split(".", 2)
            owner = self.adapters_[idx] if kind == "adapters" else self.probes[int(idx)]
            if name == "pca_basis":
                owner.pca_basis = tensor.to(owner.Phi.device)
            else:
                owner.get_parameter(name).data.copy_(tensor)

    def remove(self) -> None:
        """Detach the hooks: the model is the untouched base model again."""
        for h in self._handles:
            h.remove()


def load_manifold(model: nn.Module, directory: str | Path) -> ManifoldAdapted:
    """Re-attach a saved ManifoldLoRA adapter to a freshly loaded base model."""
    meta = json.loads((Path(directory) / "manifold_config.json").read_text())
    adapted = ManifoldAdapted(model, ManifoldConfig.from_dict(meta["config"]))
    adapted.load(Path(directory))
    return adapted


def build_manifold(model: nn.Module, cfg: ManifoldConfig, total_steps: int, context=None) -> ManifoldAdapted:
    return ManifoldAdapted(model, cfg)


def _key(name: str) -> str:
    return name.replace(".", "__")  # ModuleDict keys cannot contain dots


def _tokens(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, h) -> (n, h) without padding positions when a matching mask is known."""
    if mask is not None and mask.shape == x.shape[:2]:
        return x[mask.bool()]
    return x.reshape(-1, x.shape[-1])
