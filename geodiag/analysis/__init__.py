"""Rank-allocation analyses: how much rank does each layer need? (RaLoRA, RaLoRA-Pro, GeLoRA, LoRA+GID)."""
