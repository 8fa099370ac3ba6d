"""Two writer processes and a reader on one store at the same time; a writer killed with SIGKILL."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from geodiag.store import Reader
from geodiag.store.ingest import ingest

WRITER = textwrap.dedent("""
    import sys, time
    from geodiag.store import Writer
    store, name, batches, rows, final = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    w = Writer(store)
    rid = w.create_run(name=name, kind="train", method="lora")
    print(rid, flush=True)
    for b in range(batches):
        w.append(rid, [{"step": b, "name": "loss/lm", "module": f"m{i}", "value": float(b)} for i in range(rows)])
        time.sleep(0.02)
    if final != "none":
        w.set_status(rid, final)
""")


def start_writer(store, name, batches, rows, final="finished"):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(store), name, str(batches), str(rows), final],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_writers_and_a_reader_lose_nothing(tmp_path):
    store = tmp_path / "s.duckdb"
    batches, rows = 40, 50
    writers = [start_writer(store, f"run{i}", batches, rows) for i in range(2)]
    run_ids = [w.stdout.readline().strip() for w in writers]
    seen_live, errors = 0, []
    while any(w.poll() is None for w in writers):
        try:  # the dashboard's view while both runs write
            seen_live = max(seen_live, len(Reader(store).metric(run_ids[0], "loss/lm")))
        except Exception as e:  # noqa: BLE001 - any error here is a failure of the design
            errors.append(repr(e))
        time.sleep(0.05)
    for w in writers:
        out, err = w.communicate()
        assert w.returncode == 0, err
    assert errors == []
    assert seen_live > 0  # points were visible while the run was still writing
    reader = Reader(store)
    for rid in run_ids:
        df = reader.metric(rid, "loss/lm")
        assert len(df) == batches * rows  # every row, exactly once
        assert sorted(df["step"].unique()) == list(range(batches))
        assert reader.run(rid)["status"] == "finished"
    assert ingest(store, timeout_s=5) == 0  # everything was already folded in...
    assert not any((tmp_path / "s.duckdb.spool").glob("*/*.parquet"))  # ...and the spool cleaned


LIVE_WRITER = textwrap.dedent("""
    import sys
    from geodiag.store import Writer
    w = Writer(sys.argv[1])
    rid = w.create_run(name="live", kind="train", method="lora")
    print(rid, flush=True)
    for line in sys.stdin:  # one point per line, then wait (the run goes on)
        w.append(rid, [{"step": int(line), "name": "loss/lm", "value": float(line)}])
        print(int(line), flush=True)
""")


def test_a_point_is_visible_within_five_seconds_while_its_writer_still_runs(tmp_path):
    store = tmp_path / "s.duckdb"
    writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(store)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        rid = writer.stdout.readline().strip()
        for step in range(3):
            writer.stdin.write(f"{step}\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == str(step)  # appended: the clock starts now
            t0 = time.monotonic()
            while step not in set(Reader(store).metric(rid, "loss/lm")["step"]):
                assert time.monotonic() - t0 < 5, f"point {step} not visible 5 s after it was written"
                time.sleep(0.05)
            assert writer.poll() is None  # still running: no exit or final status flushed it for us
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)
    assert Reader(store).run(rid)["status"] == "interrupted"  # it ended without saying finished


def test_sigkill_keeps_flushed_batches_and_marks_the_run_interrupted(tmp_path):
    store = tmp_path / "s.duckdb"
    w = start_writer(store, "doomed", batches=10_000, rows=10, final="finished")
    rid = w.stdout.readline().strip()
    time.sleep(1.0)
    os.kill(w.pid, signal.SIGKILL)
    w.wait()
    reader = Reader(store)
    run = reader.run(rid)
    assert run["status"] == "interrupted" and "killed or crashed" in run["message"]
    df = reader.metric(rid, "loss/lm")
    steps = sorted(df["step"].unique())
    assert len(steps) >= 3 and steps == list(range(len(steps)))  # a prefix of the batches, none torn
    assert (df.groupby("step").size() == 10).all()
    assert ingest(store, timeout_s=5) is not None  # the store stays writable
    assert Reader(store).run(rid)["status"] == "interrupted"
    assert len(Reader(store).metric(rid, "loss/lm")) == len(df)


def test_writer_refuses_a_foreign_file_before_writing_anything(tmp_path):
    from geodiag.errors import StoreError
    from geodiag.store import Writer

    store = tmp_path / "s.duckdb"
    store.write_text("notes")
    with pytest.raises(StoreError, match="is not a DuckDB database"):
        Writer(store).create_run(name="x", kind="train")
    assert not (tmp_path / "s.duckdb.spool").exists()
    assert store.read_text() == "notes"
