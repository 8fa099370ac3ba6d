"""Input handling shared by every estimator: numpy or torch in, validated float tensor out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor | Sequence[float]


def as_tensor(x: ArrayLike, name: str, *, ndim: Sequence[int] | None = None) -> torch.Tensor:
    """Return ``x`` as a floating tensor, refusing wrong ranks and non-finite values.

    float32 and float64 keep their dtype; integers, bools and half precisions become float64/float32
    so that every estimator sees a dtype with enough range.
    """
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if not t.is_floating_point():
        t = t.to(torch.float64)
    elif t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(torch.float32)
    if ndim is not None and t.ndim not in ndim:
        want = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name} must be {want}, got an array of shape {tuple(t.shape)}.")
    check_finite(t, name)
    return t


def check_finite(t: torch.Tensor, name: str) -> None:
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(
            f"{name} contains {bad} non-finite value(s) (NaN or inf) out of {t.numel()}; "
            "drop or impute them before estimating."
        )


def singular_value_vector(s: ArrayLike, name: str = "singular values") -> torch.Tensor:
    """Validate a 1-D vector of singular values and return it as float64, sorted descending."""
    if _is_matrix(s):
        raise ValueError(
            f"{name} must be a 1-D vector; for a matrix call geodiag.metrics.singular_values(M) first."
        )
    t = as_tensor(s, name, ndim=(1,))
    if bool((t < 0).any()):
        raise ValueError(f"{name} must be non-negative; got a minimum of {float(t.min()):.3g}.")
    return torch.sort(t.to(torch.float64), descending=True).values


def _is_matrix(x: ArrayLike) -> bool:
    return getattr(x, "ndim", np.ndim(x)) == 2
