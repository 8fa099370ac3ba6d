"""DoRA's weight decomposition (Liu et al. 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation").

DoRA trains W' = m ⊙ (W0 + s B A) / ‖W0 + s B A‖, the norm taken per output row (peft's `dim=1` on a
(d_out, d_in) weight; the paper's column norm of its transposed W): W' - W0 is not a low-rank update. The
paper's §2.2 analysis splits the change of each output row n into a magnitude and a direction part:

    ΔM = mean_n |m_n - ‖W0_n‖|,    ΔD = mean_n (1 - cos(W0_n + s B_n A, W0_n))

Both come from the factors: ‖W0_n + s B_n A‖² = ‖W0_n‖² + 2 s B_n·(A W0_nᵀ) + s² B_n (A Aᵀ) B_nᵀ, so nothing
of size d_out × d_in beyond W0 itself is formed, and the sums run in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Decomposition:
    magnitude_change: float  # ΔM
    direction_change: float  # ΔD


def row_norms(W0: torch.Tensor, B: torch.Tensor, A: torch.Tensor, scaling: float) -> torch.Tensor:
    """‖W0_n + s B_n A‖ for every output row n (d_out,), float64, from W0 and the factors:
    ‖W0_n‖² + 2 s B_n·(A W0_nᵀ) + s² B_n (A Aᵀ) B_nᵀ."""
    W0, B, A = (t.detach().to(torch.float64) for t in (W0, B, A))
    square = W0.square().sum(1) + 2 * scaling * (B * (W0 @ A.T)).sum(1) + scaling**2 * (B * (B @ (A @ A.T))).sum(1)
    return square.clamp_min(0).sqrt()


def dora_decomposition(W0: torch.Tensor, B: torch.Tensor, A: torch.Tensor, scaling: float,
                       magnitude: torch.Tensor) -> Decomposition:
    """ΔM and ΔD of one DoRA module: W0 (d_out, d_in), B (d_out, r), A (r, d_in), magnitude m (d_out,)."""
    W0, B, A, m = (t.detach().to(torch.float64) for t in (W0, B, A, magnitude))
    w_norm2 = W0.square().sum(1)  # (d_out,) ‖W0_n‖²
    cross = (B * (W0 @ A.T)).sum(1)  # (d_out,) B_n · (A W0_nᵀ)
    v_norm = row_norms(W0, B, A, scaling)  # (d_out,) ‖W0_n + s B_n A‖
    cos = (w_norm2 + scaling * cross) / (v_norm * w_norm2.sqrt()).clamp_min(1e-300)
    return Decomposition(float((m - w_norm2.sqrt()).abs().mean()), float((1 - cos).mean()))
