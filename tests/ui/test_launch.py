"""Launching from the dashboard: argument lists only, own process group, PID in the store, cancel ends the
run as cancelled with its data kept."""

import json
import os
import subprocess
import sys
import time

import pytest

from geodiag.errors import GeodiagError
from geodiag.store import Reader
from geodiag.ui import launch


def test_command_is_an_argument_list_for_the_geodiag_cli_only():
    args = launch.command("train", {"model": "tiny", "steps": 5, "target_modules": ["q_proj", "v_proj"],
                                    "trust_remote_code": False, "subspace_k": 0, "dataset": None,
                                    "run_name": "a; rm -rf /"})
    assert args[:4] == [sys.executable, "-m", "geodiag", "train"]
    assert args[args.index("--target-modules") + 1] == "q_proj,v_proj"
    assert "--trust-remote-code" not in args and "--dataset" not in args
    assert "a; rm -rf /" in args  # one argv entry, never interpreted by a shell
    assert launch.command("analyze", {"model": "tiny"}, analysis="gid")[3:5] == ["analyze", "gid"]
    with pytest.raises(GeodiagError):
        launch.command("bash", {})
    with pytest.raises(GeodiagError, match="Only the geodiag"):
        launch.spawn(["/bin/sh", "-c", "echo hi"], "/tmp")


def test_cancel_refuses_a_process_that_is_not_geodiag():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(GeodiagError, match="no longer a geodiag run"):
            launch.cancel(proc.pid)
        assert proc.poll() is None  # untouched
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(GeodiagError, match="no recorded process id"):
        launch.cancel(None)


def wait_for(predicate, timeout=180.0, every=0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def running_run(store: str, pid: int):
    """The run the process `pid` is writing, once the store shows it running; None before."""
    try:
        runs = Reader(store).runs()
    except GeodiagError:  # the store file is not created yet
        return None
    mine = runs[(runs["pid"] == pid) & (runs["status"] == "running")]
    return None if mine.empty else mine.iloc[0]


def test_launched_training_runs_in_its_own_group_and_cancels_cleanly(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"{a}+{a}=", "response": str(2 * a)}) for a in range(8)))
    store = str(tmp_path / "s.duckdb")
    args = launch.command("train", {"model": "tiny", "method": "manifold", "dataset": str(data), "steps": 100000,
                                    "batch_size": 4, "grad_accum": 1, "record_every": 2, "eval_size": 0,
                                    "store": store})
    job = launch.spawn(args, tmp_path / "logs")
    try:
        assert os.getpgid(job.pid) == job.pid  # its own process group: a browser tab cannot take it down

        def running():
            run = running_run(store, job.pid)
            if run is not None and len(Reader(store).metric(run["run_id"], "loss/lm")) >= 3:
                return run["run_id"]
            return None

        rid = wait_for(running)
        launch.cancel(job.pid)
        wait_for(lambda: launch.finished(job.pid) is not None, timeout=60)
        run = Reader(store).run(rid)
        assert run["status"] == "cancelled", (run["status"], launch.tail(job.log))
        assert len(Reader(store).metric(rid, "loss/lm")) >= 3  # the data up to the cancel is kept
    finally:
        if launch.finished(job.pid) is None:
            os.killpg(job.pid, 9)


def test_a_launched_analysis_records_its_progress_and_cancels_cleanly(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"{a}+{a}=", "response": str(2 * a)}) for a in range(8)))
    store = str(tmp_path / "s.duckdb")
    args = launch.command("analyze", {"model": "tiny", "dataset": str(data), "gid_batches": 100000, "batch_size": 2,
                                      "store": store}, analysis="gid")
    job = launch.spawn(args, tmp_path / "logs")
    try:
        def sweeping():
            run = running_run(store, job.pid)
            sweep = Reader(store).metric(run["run_id"], "analysis/progress") if run is not None else []
            return (run, sweep) if len(sweep) >= 3 else None

        run, sweep = wait_for(sweeping)
        fraction, text = launch.progress(run["kind"], run["method"], run["config"], sweep.iloc[:0], sweep)
        assert 0 < fraction < 0.01 and text.endswith("/ 100000 batches")  # what the Launch page shows
        launch.cancel(job.pid)
        wait_for(lambda: launch.finished(job.pid) is not None, timeout=60)
        after = Reader(store).run(run["run_id"])
        assert after["status"] == "cancelled", (after["status"], launch.tail(job.log))
        assert len(Reader(store).metric(run["run_id"], "analysis/progress")) >= 3
    finally:
        if launch.finished(job.pid) is None:
            os.killpg(job.pid, 9)


def test_a_launch_that_fails_early_leaves_its_sentence_in_the_log(tmp_path):
    args = launch.command("train", {"model": str(tmp_path / "no-such-model"), "store": str(tmp_path / "s.duckdb")})
    job = launch.spawn(args, tmp_path / "logs")
    code = wait_for(lambda: launch.finished(job.pid), timeout=120)
    assert code == 2
    last = launch.tail(job.log, 1)
    assert last.startswith("geodiag: error:") and "Traceback" not in launch.tail(job.log, 50)


def test_progress_reads_steps_for_training_and_sweep_units_for_analyses():
    import pandas as pd

    def rows(pairs):
        return pd.DataFrame({"step": [p[0] for p in pairs], "value": [p[1] for p in pairs]})

    none = rows([])
    assert launch.progress("train", "lora", {"steps": 40}, rows([(5, 2.0), (10, 1.5)]), none) == (0.25, "step 10 / 40")
    assert launch.progress("train", "lora", {"steps": 40}, none, none) == (0.0, "step 0 / 40")
    assert launch.progress("analysis", "gid", {"batches": 16}, none, none)[0] == 0.0
    assert launch.progress("analysis", "gid", {"batches": 16}, none, rows([(4, 0.25), (2, 0.125)])) == \
        (0.25, "4 / 16 batches")  # the latest point, whatever order the store returns
    assert launch.progress("analysis", "id", {"tokens": 500}, none, rows([(100, 0.2)])) == (0.2, "100 / 500 points")
    done, text = launch.progress("analysis", "id", {"tokens": 500}, none, rows([(500, 1.0)]))
    assert done == 1.0 and "computing" in text
