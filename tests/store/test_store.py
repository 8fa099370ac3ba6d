"""Store round trips through a real DuckDB file, and the errors a user sees for bad files."""

import subprocess
import sys
import time

import duckdb
import numpy as np
import pandas as pd
import pytest

from geodiag.errors import StoreError
from geodiag.store import Reader, Writer, spool
from geodiag.store.schema import METRIC_COLUMNS


@pytest.fixture
def store(tmp_path):
    return tmp_path / "runs" / "geodiag.duckdb"


def test_round_trip_of_runs_and_metrics(store):
    w = Writer(store)
    rid = w.create_run(name="demo", kind="train", method="lora", model="tiny", task="basic_arithmetic",
                       config={"r": 8, "lr": 1e-4}, trainable_params=1234, total_params=99999)
    rows = [{"step": s, "name": "loss/lm", "value": 3.0 - 0.1 * s, "wall_time": 0.5 * s} for s in range(5)]
    rows += [{"step": 4, "name": "spectrum/singular_value", "module": "layers.0.q_proj", "layer": 0,
              "module_type": "q", "idx": k, "value": 1.0 / (k + 1)} for k in range(3)]
    assert w.append(rid, pd.DataFrame(rows)) == 8
    w.set_status(rid, "finished")

    r = Reader(store)
    runs = r.runs()
    assert list(runs["run_id"]) == [rid]
    assert runs.loc[0, "status"] == "finished" and runs.loc[0, "trainable_params"] == 1234
    assert r.run(rid)["config"] == {"r": 8, "lr": 1e-4}
    loss = r.metric(rid, "loss/lm")
    assert list(loss["step"]) == list(range(5))
    assert loss["value"].tolist() == pytest.approx([3.0 - 0.1 * s for s in range(5)])
    sv = r.metric(rid, "spectrum/singular_value")
    assert sv["idx"].tolist() == [0, 1, 2] and set(sv["module_type"]) == {"q"}
    assert r.metric_names(rid) == ["loss/lm", "spectrum/singular_value"]


def test_empty_store_has_no_runs_and_missing_store_says_so(store):
    with pytest.raises(StoreError, match="There is no store at"):
        Reader(store).runs()
    store.parent.mkdir(parents=True)
    duckdb.connect(str(store)).close()  # a new, empty DuckDB file: nothing to list, nothing wrong
    assert Reader(store).runs().empty


def test_unknown_run_id_is_a_clear_error(store):
    Writer(store).create_run(name="a", kind="train")
    with pytest.raises(StoreError, match="There is no run 'nope'"):
        Reader(store).metric("nope", "loss/lm")
    with pytest.raises(StoreError, match="There is no run 'nope'"):
        Writer(store).set_status("nope", "finished")


def test_foreign_and_corrupt_files_are_refused_and_left_untouched(tmp_path):
    text = tmp_path / "notes.duckdb"
    text.write_text("my thesis draft")
    for make in (lambda: Reader(text).runs(), lambda: Writer(text).create_run(name="x", kind="train")):
        with pytest.raises(StoreError, match="is not a DuckDB database, so geodiag will not touch it"):
            make()
    assert text.read_text() == "my thesis draft"

    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE sales (x INT)")
    con.close()
    with pytest.raises(StoreError, match="not a geodiag store"):
        Writer(other).create_run(name="x", kind="train")

    good = tmp_path / "good.duckdb"
    Writer(good).create_run(name="x", kind="train")
    with open(good, "r+b") as f:
        f.truncate(5000)
    with pytest.raises(StoreError, match="damaged or unreadable"):
        Reader(good).runs()


def hold_lock(store, seconds: float) -> subprocess.Popen:
    """Another process that opens the store read-write and keeps it for `seconds`."""
    code = (f"import duckdb, time; c = duckdb.connect({str(store)!r}); "
            f"print('locked', flush=True); time.sleep({seconds})")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_reader_waits_for_a_writer_lock_then_reads(store):
    Writer(store).create_run(name="x", kind="train")
    holder = hold_lock(store, 1.5)
    t0 = time.monotonic()
    assert len(Reader(store).runs()) == 1  # retried until the lock went away
    assert time.monotonic() - t0 > 0.3
    holder.wait()


def test_a_lock_held_too_long_is_a_clear_error(store):
    Writer(store).create_run(name="x", kind="train")
    holder = hold_lock(store, 5)
    try:
        from geodiag.store import _db

        with pytest.raises(StoreError, match=rf"locked by process {holder.pid} for more than"), \
                _db.connect(store, read_only=True, timeout_s=0.3):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_bad_rows_and_statuses_are_rejected(store):
    w = Writer(store)
    rid = w.create_run(name="x", kind="train")
    with pytest.raises(ValueError, match="name and a step"):
        w.append(rid, [{"value": 1.0}])
    with pytest.raises(ValueError, match="status must be one of"):
        w.set_status(rid, "done")


def _as_if_from(store, run_id: str, host: str, heartbeat: str) -> None:
    """Rewrite a running run's spooled record as another host's writer would have left it."""
    import json

    from geodiag.store import spool

    path = spool.run_dir(store, run_id) / "run.json"
    rec = json.loads(path.read_text())
    path.write_text(json.dumps({**rec, "host": host, "pid": 999_999_999, "heartbeat": heartbeat}))


def test_a_run_on_another_host_is_never_interrupted_and_reads_stale_once_silent(store, monkeypatch, capsys):
    from datetime import datetime, timedelta, timezone

    w = Writer(store)
    rid = w.create_run(name="remote", kind="train", method="lora")
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    _as_if_from(store, rid, "gpu-node-7", str(now - timedelta(minutes=3)))
    assert Reader(store).run(rid)["status"] == "running"  # its pid means nothing here: not interrupted
    _as_if_from(store, rid, "gpu-node-7", str(now - timedelta(minutes=11)))
    run = Reader(store).run(rid)
    assert run["status"] == "stale" and "No write from host gpu-node-7 for 11 min" in run["message"]
    monkeypatch.setenv("GEODIAG_STALE_AFTER_S", "3600")  # the interval is a setting
    assert Reader(store).run(rid)["status"] == "running"
    monkeypatch.setenv("GEODIAG_STALE_AFTER_S", "ten minutes")  # said once, and the default used
    assert Reader(store).run(rid)["status"] == "stale"
    err = capsys.readouterr().err
    assert err.count("GEODIAG_STALE_AFTER_S must be a positive number of seconds, got 'ten minutes'; using 600") == 1


def test_a_writer_beats_while_it_runs_and_not_once_it_ended(store):
    import json

    from geodiag.store import spool

    w = Writer(store)
    rid = w.create_run(name="live", kind="train", method="lora")
    path = spool.run_dir(store, rid) / "run.json"
    first = json.loads(path.read_text())["heartbeat"]
    w.beat(rid)  # within the beat interval: nothing written
    assert json.loads(path.read_text())["heartbeat"] == first
    time.sleep(0.01)
    w.beat(rid, every_s=0)
    assert json.loads(path.read_text())["heartbeat"] > first
    w.set_status(rid, "finished")
    w.beat(rid, every_s=0)
    assert Reader(store).run(rid)["status"] == "finished"


def test_a_second_writer_can_append_to_a_running_run(store):
    """Another Writer object (a callback, a second process) adds rows to a run it did not create: its
    heartbeat rewrites the run's record, which must fold into the table like the first writer's."""
    rid = Writer(store).create_run(name="live", kind="train", method="lora", config={"r": 4})
    Writer(store).append(rid, [{"step": 1, "name": "loss/lm", "value": 2.0}])
    Writer(store).beat(rid, every_s=0)
    from geodiag.store.ingest import ingest

    assert ingest(store, timeout_s=5) is not None  # the record folds (no NaT where a timestamp goes)
    run = Reader(store).run(rid)
    assert run["status"] == "running" and run["config"] == {"r": 4} and pd.isna(run["ended_at"])
    assert len(Reader(store).metric(rid, "loss/lm")) == 1


def test_run_records_are_read_once_per_store_version_and_liveness_is_judged_at_every_read(store):
    """The runs table is cached per store version (the file, its WAL, the spooled records), so a page that asks
    for it ten times reads it once; a process that dies changes nothing in the store, and still reads interrupted
    at once; any write is a new version; callers get their own copy."""
    from geodiag.store import reader as reader_module
    from geodiag.store.ingest import ingest

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        w = Writer(store)
        rid = w.create_run(name="a", kind="train")
        w.update_run(rid, pid=proc.pid)
        ingest(store, timeout_s=5)
        first = Reader(store).runs()
        assert list(first["status"]) == ["running"]
        cached = reader_module._RECORDS[str(store.resolve())]
        first.loc[0, "name"] = "changed by a caller"
        assert list(Reader(store).runs()["name"]) == ["a"] and reader_module._RECORDS[str(store.resolve())] is cached
        proc.kill()
        proc.wait()
        assert Reader(store).run(rid)["status"] == "interrupted"  # the same version, judged now
        assert reader_module._RECORDS[str(store.resolve())] is cached
        w.rename_run(rid, "b")
        assert list(Reader(store).runs()["name"]) == ["b"]  # a write is a new version
    finally:
        proc.kill()


def _ends_by_hand(m: pd.DataFrame, by_index: bool = False) -> pd.DataFrame:
    """Reader.ends computed from every row with pandas: the dense reference."""
    out, key = [], ["module", "idx"] if by_index else ["module"]
    for (rid, name), x in m.assign(module=m["module"].fillna("")).groupby(["run_id", "name"]):
        first, last = x["step"].min(), x["step"].max()
        for where, y in x.groupby(key, dropna=False):
            at = y[y["step"] == y["step"].max()]
            out.append({"run_id": rid, "name": name, "module": where[0], "idx": where[1] if by_index else None,
                        "first": y.loc[y["step"] == first, "value"].mean(), "last": at["value"].mean(),
                        "step": y["step"].max(),
                        "n_last": len(at), "at_end": y["step"].max() == last, "steps": x["step"].nunique(),
                        "last_step": last})
    return pd.DataFrame(out)


def test_ends_aggregate_in_the_store_as_every_row_would_by_hand(store):
    """First and last values per run, metric and module, folded rows and a live run's spooled ones alike."""
    w, rng = Writer(store), np.random.default_rng(0)
    ids = []
    for status in ("finished", "running"):
        rid = w.create_run(name=status, kind="train", method="lora", model="tiny", task="t", config={})
        rows = [{"step": s, "name": "loss/lm", "value": float(rng.normal())} for s in range(0, 30, 3)]
        rows += [{"step": s, "name": "spectrum/erank", "module": m, "layer": i, "module_type": "q", "idx": k,
                  "value": float(rng.normal())} for s in (0, 10, 20) for i, m in enumerate(("a", "b"))
                 for k in range(3) if not (m == "b" and s == 20)]  # module b stops before the end
        rows += [{"step": 5, "name": "alloc/x/equivalent_rank", "module": "a", "value": 4.0}]
        if status == "finished":
            w.append(rid, pd.DataFrame(rows))
            w.set_status(rid, "finished")
        else:  # spooled and not folded yet, as while another process holds the store's lock
            frame = pd.DataFrame(rows).reindex(columns=METRIC_COLUMNS).assign(run_id=rid)
            spool.write_batch(store, rid, time.time_ns(), frame)
        ids.append(rid)
    assert spool.batch_files(store, ids[1]) and not spool.batch_files(store, ids[0])  # one spooled, one folded
    r = Reader(store)
    got = r.ends(ids, ["loss/lm", "spectrum/erank"], prefix="alloc/")
    want = _ends_by_hand(r.metrics(ids, ["loss/lm", "spectrum/erank"], prefix="alloc/"))
    key = ["run_id", "name", "module"]
    got, want = (d.sort_values(key, ignore_index=True) for d in (got, want))
    assert len(got) == len(want) == 2 * 4
    pd.testing.assert_frame_equal(got[key], want[key])
    for col in ("first", "last", "step", "n_last", "steps", "last_step"):
        np.testing.assert_allclose(got[col].astype(float), want[col].astype(float), err_msg=col)
    assert got["at_end"].tolist() == want["at_end"].tolist()
    b = got[(got["module"] == "b") & (got["run_id"] == ids[0])].iloc[0]
    assert not b["at_end"] and b["last_step"] == 20 and b["n_last"] == 3  # its own last step, 10, not the end
    per_index = r.ends(ids, ["spectrum/erank"], by_index=("spectrum/erank",))  # a row per module and index
    want = _ends_by_hand(r.metrics(ids, ["spectrum/erank"]), by_index=True)
    key = ["run_id", "module", "idx"]
    per_index, want = (d.sort_values(key, ignore_index=True) for d in (per_index, want))
    assert len(per_index) == len(want) == 2 * 2 * 3 and per_index["n_last"].eq(1).all()
    for col in ("idx", "first", "last", "step", "last_step"):
        np.testing.assert_allclose(per_index[col].astype(float), want[col].astype(float), err_msg=col)
    assert r.ends(ids, []).empty and list(r.ends([], ["loss/lm"]).columns) == list(got.columns)
    with pytest.raises(StoreError, match="no run 'nope'"):
        r.ends(["nope"], ["loss/lm"])
