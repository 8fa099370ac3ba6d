"""Every dashboard page's server-side render time on the shipped sample store and on a store a group accumulates:
the sample store replicated to about 2,000 runs and 30 million metric rows (each copy its own sweep), timed side
by side in one process with Streamlit's AppTest. A render is cold: every Streamlit cache is cleared first, then the
page runs. The run records stay read for the store's version (as when one switches pages on a store that did not
change); `records cold` also drops them, as the first page after any run record changed (a live run's heartbeat).

Goal (issue 21): every page in 1.5 s or less at 2,000 runs and 30 million rows.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_runs" / "geodiag.duckdb"
SWEEP = '"sweep": "([^"]+)"'  # a run's sweep in its config JSON


def replicate(source: Path, out: Path, copies: int) -> dict:
    """`source` plus `copies` copies of every run and its metric rows, each copy its own sweep (`<sweep>-cK`)."""
    shutil.copyfile(source, out)
    con = duckdb.connect(str(out))
    try:
        cols = [r[0] for r in con.execute("DESCRIBE runs").fetchall()]
        con.execute("CREATE TEMP TABLE base_runs AS SELECT * FROM runs")
        con.execute("CREATE TEMP TABLE base_metrics AS SELECT * FROM metrics")
        for k in range(1, copies + 1):
            suffix = f"-c{k}"
            own_sweep = f"regexp_replace(CAST(config AS VARCHAR), '{SWEEP}', '\"sweep\": \"\\1{suffix}\"')::JSON"
            select = ", ".join(f"run_id || '{suffix}'" if c == "run_id" else own_sweep if c == "config" else c
                               for c in cols)
            con.execute(f"INSERT INTO runs SELECT {select} FROM base_runs")
            con.execute(f"INSERT INTO metrics SELECT run_id || '{suffix}', step, wall_time, name, module, layer, "
                        "module_type, idx, value FROM base_metrics")
        con.execute("CHECKPOINT")
        runs, rows = (con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "metrics"))
    finally:
        con.close()
    return {"runs": runs, "rows": rows, "mb": out.stat().st_size / 1e6}


def render_times(store: Path, records_cold: bool = False) -> dict[str, float]:
    """Seconds to render each page (cold caches) on `store`, with the sidebar's default run."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from geodiag.store import reader
    from geodiag.ui import PAGES

    out = {}
    for p in PAGES:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.session_state["store"] = str(store)
        at.run()
        st.cache_data.clear()
        if records_cold:
            reader.forget_records()
        t0 = time.perf_counter()
        at.switch_page(p.path).run()
        out[p.title] = time.perf_counter() - t0
        if at.exception:
            raise RuntimeError(f"{p.title} failed on {store}: {at.exception[0].message}")
    return out


def bench_pages(copies: int = 44, source: Path = SAMPLE) -> dict:
    with tempfile.TemporaryDirectory(prefix="geodiag-pages-") as tmp:
        big = Path(tmp) / "big.duckdb"
        t0 = time.perf_counter()
        size = replicate(source, big, copies)
        built = time.perf_counter() - t0
        small, large, cold = render_times(source), render_times(big), render_times(big, records_cold=True)
    return {"store": size, "build_s": built, "small": small, "large": large, "cold": cold,
            "ratio": {k: large[k] / small[k] for k in small}, "worst_s": max(large.values()),
            "worst_cold_s": max(cold.values())}


if __name__ == "__main__":
    r = bench_pages()
    print(f"replicated store: {r['store']['runs']:,} runs, {r['store']['rows'] / 1e6:.1f}M rows, "
          f"{r['store']['mb']:.0f} MB (built in {r['build_s']:.0f} s)")
    for page, small in r["small"].items():
        print(f"{page:<26} {small:6.2f} s -> {r['large'][page]:6.2f} s ({r['ratio'][page]:.1f}x); records cold "
              f"{r['cold'][page]:.2f} s")
    print(f"slowest page at scale: {r['worst_s']:.2f} s, records cold {r['worst_cold_s']:.2f} s (goal <= 1.5 s)")
