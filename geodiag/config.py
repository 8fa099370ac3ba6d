"""The run configurations of `geodiag train` and `geodiag analyze gid|id`: dataclasses whose fields carry
their help, choices and group (geodiag.options), with a YAML/JSON round trip. Torch-free, so the dashboard's
Launch form is rendered from these very classes in-process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from geodiag.allocation import ROUNDINGS
from geodiag.errors import GeodiagError
from geodiag.names import DEFAULT_TASK, MIN_ID_POINTS, R_REF
from geodiag.options import Config, option
from geodiag.store import DEFAULT_STORE

MODEL_HELP = "`smollm2` (embedded), `tiny` (random, for tests), a Hugging Face id or a local directory"


@dataclass
class TrainConfig(Config):
    KIND: ClassVar[str] = "geodiag train"

    model: str = option("smollm2", MODEL_HELP)
    method: str = option("manifold", "adaptation method (`geodiag train --help` lists each one's options)")
    task: str = option(DEFAULT_TASK, "reasoning-gym task name")
    dataset: str | None = option(None, "local JSONL/CSV (prompt/response) or a `datasets` name; overrides task")
    steps: int = option(200, "optimiser steps")
    lr: float = option(1e-4, "learning rate (a method with several parameter groups keeps their ratios to it, "
                             "e.g. ManifoldLoRA's gate_lr_ratio)")
    batch_size: int = option(2, "examples per micro-batch")
    grad_accum: int = option(8, "micro-batches per optimiser step")
    max_length: int = option(128, "maximum tokens per example")
    record_every: int = option(10, "steps between diagnostic records")
    eval_size: int = option(64, "test items for accuracy (0 disables evaluation)")
    dev_size: int = option(128, "dev items, disjoint from the test items: a sweep selects learning rates on their "
                                "accuracy (0: none)")
    seed: int = option(0, "training seed: initialisation and data order")
    data_seed: int = option(0, "seed that draws the train, dev and test items (the training seed does not change "
                               "them, so runs pair on items)")
    store: str = option(DEFAULT_STORE, "DuckDB store file")
    allocation: str | None = option(None, "an allocation file from `geodiag allocate` (FILE.json): trains its ranks "
                                          "with its rule's method (ralora, ralora-pro, lora-gid or gelora)",
                                   group="advanced")
    sweep: str | None = option(None, "the id of the `geodiag sweep` this run is a cell of (set by the sweep)",
                               group="advanced")
    label: str | None = option(None, "what the Results page groups this run under (default: the method; a sweep "
                                     "sets its cell's label, e.g. pissa)", group="advanced")
    budget: dict = option({}, "the budget a sweep sized this run to: spec, target and achieved parameters, and "
                              "what is counted", group="file")
    target_modules: list[str] | None = option(None, "modules to adapt (default: the method's, e.g. q_proj,v_proj)",
                                              group="advanced")
    subspace_k: int = option(0, "record principal angles between the top-k subspaces of Delta W, the gradient of W "
                                "on the record batch and the probe basis at every record (one extra backward per "
                                "record); 0 = off", group="advanced")
    record_gid_every: int = option(0, "with --method full: record gid/erank of every target's gradient every K "
                                      "steps (RaLoRA Fig. 3c); 0 = off", group="advanced")
    intruders: bool = option(True, "record intruder dimensions (Shuttleworth et al. 2024) at the end: how many of "
                                   "the top-k singular vectors of W + Delta W have no counterpart in W",
                             group="advanced")
    intruders_every: int = option(0, "also record them every K steps (a multiple of --record-every; 0: at the end "
                                     "only)", group="advanced")
    intruders_top_k: int = option(10, "top singular vectors of W + Delta W examined (peft's default)",
                                  group="advanced")
    intruders_epsilon: float = option(0.5, "a vector is an intruder when its largest |cos| with W's singular "
                                           "vectors is below this (peft's default)", group="advanced")
    item_records: bool = option(True, "record every dev and test item's score at each evaluation (for paired "
                                      "per-item statistics)", group="advanced")
    forget_text: str | None = option(None, "a UTF-8 text file whose token loss before and after training measures "
                                           "forgetting (default: the Python Language Reference prose the standard "
                                           "library ships)", group="advanced")
    forget_size: int = option(16, "windows of max_length tokens of the forgetting text (0: no forgetting measure)",
                              group="advanced")
    selection: dict = option({}, "the learning-rate selection a sweep ran this cell in: grid, selection seeds, "
                                 "phase", group="file")
    eval_every: int = option(0, "steps between accuracy evaluations (0: only before and after)", group="advanced")
    train_size: int = option(2000, "training items generated for a reasoning-gym task", group="advanced")
    record_batch: int = option(12, "held-out examples in the fixed batch that activation metrics use (12 give "
                                   "~600 tokens on the default task: PR needs n >= h = 576 on SmolLM2)",
                               group="advanced")
    max_new_tokens: int = option(16, "generation length for evaluation", group="advanced")
    warmup: float = option(0.05, "fraction of steps of linear warm-up before the cosine decay", group="advanced")
    clip: float = option(1.0, "gradient clipping norm (0 disables)", group="advanced")
    weight_decay: float = option(0.01, "AdamW weight decay", group="advanced")
    dtype: str = option("auto", "auto (fp32 on CPU, bf16 on capable GPUs), float32 or bfloat16",
                        choices=("auto", "float32", "bfloat16"), group="advanced")
    device: str = option("auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda"), group="advanced")
    gradient_checkpointing: bool = option(False, "trade compute for memory", group="advanced")
    torch_compile: bool = option(False, "compile the training forward with torch.compile (inductor), through "
                                        "accelerate; minutes of compiling first, then faster steps on a GPU",
                                 group="advanced")
    fsdp: bool = option(False, "shard parameters, gradients and optimiser state over the processes with torch's "
                               "FSDP2 (under torchrun; lora, lora-gid, gelora and full)", group="advanced")
    trust_remote_code: bool = option(False, "allow a model's own code to run (off unless you trust its source)",
                                     group="advanced")
    run_name: str | None = option(None, "a readable name (default: method-model-task)", group="advanced")
    output_dir: str | None = option(None, "where the adapter is saved (default: <store dir>/adapters/<run id>)",
                                    group="advanced")
    method_options: dict = option({}, "method options, e.g. {r: 8} or {lambda_s: 0.05}", group="file")
    task_options: dict = option({}, "reasoning-gym task options, e.g. {max_digits: 3}", group="file")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("steps", "batch_size", "grad_accum", "max_length", "record_every", "record_batch",
                     "max_new_tokens"):
            self.require(getattr(self, name) >= 1, name, "a positive integer")
        for name in ("eval_every", "eval_size", "dev_size", "train_size", "record_gid_every", "subspace_k",
                     "intruders_every", "forget_size"):
            self.require(getattr(self, name) >= 0, name, "zero or positive")
        self.require(self.lr > 0, "lr", "positive")
        self.require(0 <= self.warmup < 1, "warmup", "a fraction in [0, 1)")
        self.require(self.clip >= 0, "clip", "zero (off) or positive")
        self.require(self.intruders_every % self.record_every == 0, "intruders_every",
                     f"a multiple of record_every ({self.record_every})")
        self.require(self.intruders_top_k >= 1, "intruders_top_k", "a positive integer")
        self.require(0 < self.intruders_epsilon <= 1, "intruders_epsilon", "in (0, 1]")
        self.require(not (self.fsdp and self.torch_compile), "fsdp", "used without --torch-compile (not supported yet)")
        self.require(not (self.fsdp and (self.subspace_k or self.record_gid_every)), "fsdp",
                     "used without --subspace-k and --record-gid-every (they read whole gradients)")

    @classmethod
    def from_file(cls, path: str | Path, **overrides) -> TrainConfig:
        return cls.from_dict({**read_mapping(path), **overrides})

    def name(self) -> str:
        data = Path(self.dataset).stem if self.dataset else self.task
        return self.run_name or f"{self.method}-{Path(self.model).name}-{data}"


DATA = ("gid", "id")  # the analyses that run the model on data


@dataclass
class AnalyzeConfig(Config):
    """Every analysis; a field's scope says which ones it applies to (gid: RaLoRA's GID pass, id: GeLoRA's
    TwoNN profile, spectra: the pretrained weights' ESDs, which read no data)."""

    KIND: ClassVar[str] = "geodiag analyze"

    model: str = option("smollm2", MODEL_HELP)
    task: str = option(DEFAULT_TASK, "reasoning-gym task name", scope=DATA)
    dataset: str | None = option(None, "local JSONL/CSV instead of a task", scope=DATA)
    target_modules: list[str] = option(["q_proj", "k_proj", "v_proj", "o_proj"], "modules to measure and allocate to")
    layers: list[str] | None = option(None, "decoder layers to measure, e.g. 0,8,16 (default: all); with id, "
                                            "the hidden states entering and leaving them")
    gid_batches: int = option(16, "mini-batches whose gradients are accumulated (over all processes)",
                              scope=("gid",))
    id_tokens: int = option(4000, "points per layer (non-padding tokens, or sequences with --pooling mean)",
                            scope=("id",))
    batch_size: int = option(4, "examples per mini-batch", scope=DATA)
    max_length: int = option(128, "maximum tokens per example", scope=DATA)
    r: int = option(R_REF, "reference LoRA rank (RaLoRA's block rank; RaLoRA-Pro's and the spectral rules' r_ref)",
                    scope=("gid", "spectra"))
    pooling: str = option("tokens", "'tokens' or 'mean' (mean-pooled sequences)", choices=("tokens", "mean"),
                          scope=("id",), group="advanced")
    n_max: int = option(32, "RaLoRA maximum number of blocks (a power of two)", scope=("gid",), group="advanced")
    block_rounding: str = option("floor", "RaLoRA exponent rounding: floor, ceil (RaLoRA Eq. 4) or "
                                 "round", choices=ROUNDINGS, scope=("gid",), group="advanced")
    rank_rounding: str = option("round", "RaLoRA-Pro / LoRA+GID / spectral rules' rank rounding: round, ceil "
                                "(RaLoRA Eq. 8) or floor", choices=ROUNDINGS, scope=("gid", "spectra"),
                                group="advanced")
    gelora_scale: float = option(1.0, "GeLoRA budget scale on r_i = max(d_{i+1} - d_i, 0) + 1", scope=("id",),
                                 group="advanced")
    seed: int = option(0, "seed for the data (and for the tiny model's random weights)", group="advanced")
    train_size: int = option(2000, "items generated for a reasoning-gym task", group="advanced", scope=DATA)
    store: str = option(DEFAULT_STORE, "DuckDB store file")
    run_name: str | None = option(None, "a readable name", group="advanced")
    sweep: str | None = option(None, "the id of the `geodiag sweep` this analysis serves (set by the sweep)",
                               group="advanced")
    dtype: str = option("auto", "the model's dtype: auto (fp32 on CPU, bf16 on capable GPUs), float32 or "
                        "bfloat16 (gradients are accumulated in float32 either way)",
                        choices=("auto", "float32", "bfloat16"), group="advanced", scope=DATA)
    device: str = option("auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda"), group="advanced", scope=DATA)
    trust_remote_code: bool = option(False, "allow a model's own code to run (off unless you trust its source)",
                                     group="advanced")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("gid_batches", "id_tokens", "batch_size", "max_length", "r", "n_max"):
            self.require(getattr(self, name) >= 1, name, "a positive integer")
        # TwoNN needs 3 distinct points after deduplication; fewer than a few dozen give a meaningless estimate
        self.require(self.id_tokens >= MIN_ID_POINTS, "id_tokens", f"at least {MIN_ID_POINTS} points")
        self.require((self.n_max & (self.n_max - 1)) == 0, "n_max", "a power of two")
        self.require(self.gelora_scale > 0, "gelora_scale", "positive")
        self.require(bool(self.target_modules), "target_modules", "at least one module name, e.g. q_proj,v_proj")
        self.require(self.layers is None or all(x.isdigit() for x in self.layers), "layers",
                     "layer indices, e.g. 0,8,16")

    def layer_indices(self) -> list[int] | None:
        return None if self.layers is None else sorted({int(x) for x in self.layers})



def read_mapping(path: str | Path) -> dict:
    """A YAML or JSON file of option: value, or a sentence saying what is wrong with it."""
    p = Path(path)
    if not p.exists():
        raise GeodiagError(f"There is no config file at {p}.")
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(p.read_text()) or {}
        else:
            values = json.loads(p.read_text())
    except Exception as e:  # noqa: BLE001 - a parse error of any kind is one sentence
        raise GeodiagError(f"Could not parse {p}: {str(e).splitlines()[0]}.") from None
    if not isinstance(values, dict):
        raise GeodiagError(f"{p} must hold a mapping of option: value.")
    odd = [k for k in values if not isinstance(k, str)]
    if odd:
        raise GeodiagError(f"{p} has the key {odd[0]!r}, which is not an option name (option: value).")
    return values
