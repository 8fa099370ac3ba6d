"""The run configuration: one dataclass, help text in field metadata, YAML/JSON round trip."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from geodiag.data import DEFAULT_TASK
from geodiag.errors import GeodiagError
from geodiag.methods.base import check_choices, option
from geodiag.store import DEFAULT_STORE


@dataclass
class TrainConfig:
    model: str = option("smollm2", "`smollm2` (embedded), `tiny` (random, for tests), a HF id or a local dir")
    method: str = option("manifold", "adaptation method: lora, adalora, manifold, ralora, ralora-pro, lora-gid, "
                                      "gelora or full")
    task: str = option(DEFAULT_TASK, "reasoning-gym task name")
    dataset: str | None = option(None, "local JSONL/CSV (prompt/response) or a `datasets` name; overrides task")
    steps: int = option(200, "optimiser steps")
    batch_size: int = option(2, "examples per micro-batch")
    grad_accum: int = option(8, "micro-batches per optimiser step")
    max_length: int = option(128, "maximum tokens per example")
    lr: float = option(1e-4, "learning rate (ManifoldLoRA uses its own lr_factors/lr_gates/lr_temperature)")
    weight_decay: float = option(0.01, "AdamW weight decay")
    clip: float = option(1.0, "gradient clipping norm (0 disables)")
    warmup: float = option(0.05, "fraction of steps of linear warm-up before the cosine decay")
    seed: int = option(0, "seed for data order, initialisation and splits")
    record_every: int = option(10, "steps between diagnostic records")
    record_gid_every: int = option(0, "with --method full: record gid/erank of every target's gradient every K "
                                      "steps (003 Fig. 3c); 0 = off")
    subspace_k: int = option(0, "record principal angles between the top-k subspaces of Delta W, the gradient "
                                "of W on the record batch and the probe basis at every record (one extra "
                                "backward per record); 0 = off")
    eval_every: int = option(0, "steps between accuracy evaluations (0: only before and after)")
    eval_size: int = option(64, "held-out items for accuracy (0 disables evaluation)")
    train_size: int = option(2000, "training items generated for a reasoning-gym task")
    record_batch: int = option(12, "held-out examples in the fixed batch that activation metrics use (12 give "
                                   "~600 tokens on the default task: PR needs n >= h = 576 on SmolLM2)")
    max_new_tokens: int = option(16, "generation length for evaluation")
    store: str = option(DEFAULT_STORE, "DuckDB store file")
    run_name: str | None = option(None, "a readable name (default: method-model-task)")
    output_dir: str | None = option(None, "where the adapter is saved (default: <store dir>/adapters/<run id>)")
    target_modules: list[str] | None = option(None, "modules to adapt (default: the method's, q_proj,v_proj)")
    method_options: dict = option({}, "method options, e.g. {r: 8} or {lambda_s: 0.05}")
    task_options: dict = option({}, "reasoning-gym task options, e.g. {max_digits: 3}")
    gradient_checkpointing: bool = option(False, "trade compute for memory")
    dtype: str = option("auto", "auto (fp32 on CPU, bf16 on capable GPUs), float32 or bfloat16",
                        choices=("auto", "float32", "bfloat16"))
    device: str = option("auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda"))
    trust_remote_code: bool = option(False, "allow a model's own code to run (off unless you trust it)")

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "max_length", "record_every", "record_batch"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise GeodiagError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")
        for name in ("eval_every", "eval_size", "train_size", "record_gid_every", "subspace_k"):
            if getattr(self, name) < 0:
                raise GeodiagError(f"{name} must be zero or positive, got {getattr(self, name)!r}.")
        if not self.lr > 0:
            raise GeodiagError(f"lr must be positive, got {self.lr!r}.")
        if not 0 <= self.warmup < 1:
            raise GeodiagError(f"warmup must be a fraction in [0, 1), got {self.warmup!r}.")
        check_choices(self)
        if isinstance(self.target_modules, str):
            self.target_modules = [t.strip() for t in self.target_modules.split(",") if t.strip()]

    @classmethod
    def from_file(cls, path: str | Path, **overrides) -> TrainConfig:
        p = Path(path)
        if not p.exists():
            raise GeodiagError(f"There is no config file at {p}.")
        text = p.read_text()
        try:
            if p.suffix in (".yaml", ".yml"):
                import yaml

                values = yaml.safe_load(text) or {}
            else:
                values = json.loads(text)
        except Exception as e:  # noqa: BLE001 - a parse error of any kind is one sentence
            raise GeodiagError(f"Could not parse {p}: {str(e).splitlines()[0]}.") from None
        if not isinstance(values, dict):
            raise GeodiagError(f"{p} must hold a mapping of option: value.")
        return cls.from_dict({**values, **overrides})

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise GeodiagError(f"Unknown option(s) {', '.join(unknown)}; known options are {', '.join(sorted(known))}.")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def name(self) -> str:
        data = Path(self.dataset).stem if self.dataset else self.task
        return self.run_name or f"{self.method}-{Path(self.model).name}-{data}"
