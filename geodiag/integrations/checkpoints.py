"""A `transformers.Trainer`'s checkpoint series as one run: DIR/checkpoint-N/ each hold an adapter saved at
global step N (from its trainer_state.json); the spectra (and, with the base model, DoRA's decomposition and
the intruder dimensions) of every checkpoint at its step, and the loss and learning-rate curves of the last
checkpoint's log_history, which holds the whole run's logs up to it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from tqdm.auto import tqdm

from geodiag.collectors import Intruders, adapter_rows
from geodiag.errors import GeodiagError
from geodiag.integrations.peft_import import read_config, read_peft_adapter
from geodiag.names import trainer_log
from geodiag.records import row
from geodiag.store import Writer

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_series(d: Path) -> list[tuple[int, Path]]:
    """(global step, folder) of each checkpoint-N folder that holds an adapter, by step; [] for an adapter folder."""
    if (d / "adapter_config.json").exists() or not d.is_dir():
        return []
    found = [(sub, _CHECKPOINT.match(sub.name)) for sub in d.iterdir() if sub.is_dir()]
    return sorted((_global_step(sub, int(m[1])), sub) for sub, m in found
                  if m and (sub / "adapter_config.json").exists())


def checkpoints_without_adapter(d: Path) -> list[Path]:
    """The checkpoint-N folders of a folder that is not itself an adapter, when none of them holds one."""
    if (d / "adapter_config.json").exists() or not d.is_dir():
        return []
    found = sorted(sub for sub in d.iterdir() if sub.is_dir() and _CHECKPOINT.match(sub.name))
    return [] if any((sub / "adapter_config.json").exists() for sub in found) else found


def _global_step(folder: Path, from_name: int) -> int:
    step = trainer_state(folder).get("global_step", from_name)
    return step if isinstance(step, int) and not isinstance(step, bool) else from_name


def trainer_state(folder: Path) -> dict:
    """A checkpoint's trainer_state.json; {} when it is missing, and a sentence when it is not JSON."""
    state = folder / "trainer_state.json"
    if not state.exists():
        return {}
    try:
        data = json.loads(state.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise GeodiagError(f"{state} cannot be read ({e}); remove or repair it to import the checkpoints.") from None
    return data if isinstance(data, dict) else {}


def import_series(d: Path, series: list[tuple[int, Path]], *, base: str | None, model: torch.nn.Module | None,
                  store: str, run_name: str | None, progress: bool) -> str:
    configs = [read_config(folder) for _, folder in series]
    bases = sorted({str(c.get("base_model_name_or_path")) for c in configs})
    if len(bases) > 1:
        raise GeodiagError(f"The checkpoints in {d} belong to different base models ({', '.join(bases)}); import each "
                           "checkpoint folder on its own.")
    first = read_peft_adapter(series[0][1], model)[1]
    writer = Writer(store)
    run_id = writer.create_run(name=run_name or f"import-{d.name}", kind="import", method=first.method,
                               model=base or configs[0].get("base_model_name_or_path"), trainable_params=first.params,
                               config={"adapter": str(d), "checkpoints": [f.name for _, f in series],
                                       "peft_config": configs[-1]})
    with writer.finishing(run_id):
        _record_series(writer, run_id, series, model, progress)
        writer.append(run_id, log_rows(series[-1][1]))
    return run_id


def _record_series(writer: Writer, run_id: str, series: list[tuple[int, Path]], model, progress: bool) -> None:
    """Each checkpoint's rows at its step, appended as it is read (a reader follows along)."""
    intruders = Intruders() if model is not None else None
    for step, folder in tqdm(series, desc="checkpoints", unit="ckpt", disable=not progress):
        adapter = read_peft_adapter(folder, model)[1]
        rows = adapter_rows(adapter, step, 0.0)
        if intruders is not None:
            if not intruders.bases:
                intruders.start(adapter)  # the base model's W: once for the series
            rows += intruders.rows(adapter, step, 0.0)
        writer.append(run_id, rows)


def log_rows(folder: Path) -> list[dict]:
    """loss, learning rate, grad norm, eval loss (and any other number) of trainer_state.json's log_history."""
    history = trainer_state(folder).get("log_history", [])
    history = [e for e in history if isinstance(e, dict)] if isinstance(history, list) else []
    return [row(int(entry["step"]), 0.0, trainer_log(k), float(v)) for entry in history
            if isinstance(entry.get("step"), int | float)
            for k, v in entry.items() if k not in ("step", "epoch") and isinstance(v, int | float)
            and not isinstance(v, bool)]
