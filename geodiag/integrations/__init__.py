"""Bridges to other tools: a transformers TrainerCallback that records geodiag diagnostics."""

from geodiag.integrations.hf import GeodiagCallback

__all__ = ["GeodiagCallback"]
