"""Evaluation benchmarks on the embedded model.

- What a 512-item test evaluation costs (greedy answers, batches of 16, the task's own scorer) and the 128-item dev
  evaluation beside it, on the base model.
- The per-item records' overhead: the same short training run with `--item-records` and with `--no-item-records`
  (every dev and test item's exact match and score at each evaluation, written to a real store), alternated round
  by round, medians compared (goal <= 1.03x).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from geodiag.data import load_task
from geodiag.data.evaluate import item_scores
from geodiag.models import load_model
from geodiag.store import Reader
from geodiag.train import TrainConfig, train


def bench_eval_cost(model: str, n_test: int = 512, n_dev: int = 128) -> dict:
    lm = load_model(model)
    data = load_task("basic_arithmetic", n_train=64, n_eval=n_test, n_dev=n_dev)
    out = {"model": model}
    for split, n in (("test", n_test), ("dev", n_dev)):
        t0 = time.perf_counter()
        scores = item_scores(lm.model, lm.tokenizer, data, split)
        out[f"{split}_items"], out[f"{split}_s"] = n, time.perf_counter() - t0
        out[f"{split}_accuracy"] = sum(s >= 1.0 for s in scores) / n
    out["test_items_per_s"] = n_test / out["test_s"]
    return out


def bench_item_overhead(model: str, steps: int, eval_size: int, dev_size: int, rounds: int = 2) -> dict:
    """Whole runs (load, evaluate before, train, record, evaluate after, save), with and without per-item
    records, alternated so that drift in the machine's speed falls on both."""
    times: dict[bool, list[float]] = {True: [], False: []}
    rows = 0
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(rounds):
            for items in (True, False) if k % 2 == 0 else (False, True):
                cfg = TrainConfig(model=model, method="lora", steps=steps, record_every=steps, eval_size=eval_size,
                                  dev_size=dev_size, item_records=items, lr=1e-3, method_options={"r": 8},
                                  store=str(Path(tmp) / f"s{k}{items}.duckdb"))
                t0 = time.perf_counter()
                rid = train(cfg, progress=False)
                times[items].append(time.perf_counter() - t0)
                if items:
                    m = Reader(cfg.store).metrics([rid], ["item/exact", "item/score"])
                    rows = len(m)
    with_items, without = statistics.median(times[True]), statistics.median(times[False])
    return {"model": model, "steps": steps, "eval_size": eval_size, "dev_size": dev_size, "rounds": rounds,
            "item_rows_per_run": rows, "with_items_s": with_items, "without_items_s": without,
            "ratio": with_items / without, "all_s": {str(k): v for k, v in times.items()}}


def bench_item_rows(n_test: int = 512, n_dev: int = 128, evaluations: int = 2) -> dict:
    """The per-item records' own cost, timed directly: a run's item rows (exact match and score of every dev and test
    item at each evaluation) built and written through the Writer into a real store, then folded into DuckDB."""
    from geodiag.names import ITEM_EXACT, ITEM_SCORE
    from geodiag.records import row
    from geodiag.store import Writer
    from geodiag.store.ingest import ingest

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "s.duckdb"
        writer = Writer(store)
        rid = writer.create_run(name="items", kind="train", method="lora")
        t0 = time.perf_counter()
        for step in range(evaluations):
            for split, n in (("test", n_test), ("dev", n_dev)):
                scores = [float(k % 3 == 0) for k in range(n)]
                writer.append(rid, [row(step, 0.0, name, v, module=split, idx=k) for k, s in enumerate(scores)
                                    for name, v in ((ITEM_EXACT, s), (ITEM_SCORE, s))])
        ingest(store, timeout_s=60)
        seconds = time.perf_counter() - t0
        rows = len(Reader(store).metrics([rid], [ITEM_EXACT, ITEM_SCORE]))
    return {"rows": rows, "seconds": seconds}
