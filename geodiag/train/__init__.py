"""Training: the run's setup, the loop, the recorder and cancellation."""

from geodiag.config import TrainConfig
from geodiag.train.loop import train, train_step
from geodiag.train.setup import Run, setup

__all__ = ["Run", "TrainConfig", "setup", "train", "train_step"]
