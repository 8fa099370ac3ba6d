"""Training: the loop, its configuration and the distributed glue."""

from geodiag.train.config import TrainConfig
from geodiag.train.loop import train

__all__ = ["TrainConfig", "train"]
