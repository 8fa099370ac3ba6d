"""geodiag: see the geometry of LoRA fine-tuning.

Data flows one way: model -> collectors -> metrics -> store -> figures -> pages.
"""

__version__ = "0.1.0"
