"""`geodiag sweep` as a user runs it, on the tiny model: one sweep id over every cell, reruns that add nothing,
a killed cell retried, bad input refused before anything is written, and Slurm scripts that run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from helpers import geodiag

from geodiag.lab.progress import progress_of
from geodiag.store import Reader

FAST = ["--model", "tiny", "--steps", "3", "--eval-size", "2", "--dev-size", "4", "--max-new-tokens", "2",
        "--record-every", "3", "--train-size", "64", "--no-progress"]


def listed(store: str) -> list[dict]:
    out = geodiag("runs", "list", "--json", "--store", store)
    assert out.returncode == 0, out.stderr
    return [r for r in json.loads(out.stdout) if r["kind"] == "train"]


def test_a_sweep_writes_every_cell_once_and_a_rerun_adds_none(tmp_path):
    store = str(tmp_path / "s.duckdb")
    args = ["sweep", "--methods", "lora,ralora", "--seeds", "0,1", "--budget", "lora-r=4", "--workers", "2",
            "--store", store, *FAST]
    first = geodiag(*args)
    assert first.returncode == 0, first.stderr
    sweep_id = first.stdout.split()[0]
    runs = listed(store)
    assert sorted((r["method"], r["seed"]) for r in runs) == [("lora", 0), ("lora", 1), ("ralora", 0), ("ralora", 1)]
    assert {r["sweep"] for r in runs} == {sweep_id} and {r["status"] for r in runs} == {"finished"}
    for r in runs:  # the achieved count beside each run: LoRA and RaLoRA train exactly LoRA's r = 4 count
        budget = json.loads(r["config"])["budget"] if isinstance(r["config"], str) else r["config"]["budget"]
        assert budget["params"] == budget["target"] == r["trainable_params"]
    analyses = [r for r in json.loads(geodiag("runs", "list", "--json", "--store", store).stdout)
                if r["kind"] == "analysis"]
    assert len(analyses) == 1 and analyses[0]["sweep"] == sweep_id  # one GID analysis, shared

    exported = geodiag("export", sweep_id, "--figure", "results", "--format", "svg", "--out", str(tmp_path / "ex"),
                       "--store", store)
    assert exported.returncode == 0, exported.stderr
    table = (tmp_path / "ex" / f"results-{sweep_id}.csv").read_text().splitlines()
    assert len(table) == 1 + 4 and (tmp_path / "ex" / f"results-{sweep_id}.svg").exists()  # a row per run

    again = geodiag(*args)
    assert again.returncode == 0 and again.stdout.split()[0] == sweep_id
    assert "0 run now, 4 already done" in again.stderr
    assert len(listed(store)) == 4 and len(Reader(store).runs()) == 5
    # the sweep recorded itself once (the rerun replaced its record), apart from the runs, with its plan
    record = Reader(store).sweeps()
    assert list(record["run_id"]) == [sweep_id] and list(record["status"]) == ["finished"]
    config = json.loads(record["config"].iloc[0])
    assert config["plan"] == {"select": 0, "final": 4, "steps": 4 * 3} and config["workers"] == 2
    progress = progress_of(Reader(store), record.iloc[0].to_dict())
    assert (progress.finished, progress.queued, progress.failed, progress.steps_done) == (4, 0, 0, 12)


def test_a_killed_cell_is_retried(tmp_path):
    store = str(tmp_path / "s.duckdb")
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"model": "tiny", "store": store, "eval_size": 2, "max_new_tokens": 2,
                                    "train_size": 64, "record_every": 3, "steps": 3,
                                    "methods": {"lora": {"steps": 3000}, "dora": {}}, "seeds": [0]}, sort_keys=False))
    sweep = subprocess.Popen([sys.executable, "-m", "geodiag", "sweep", str(spec), "--no-progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, victim = time.time() + 120, None
    while victim is None and time.time() < deadline:  # the slow lora cell's run, once it trains
        time.sleep(0.5)
        if os.path.exists(store) or (tmp_path / "s.duckdb.spool").exists():
            runs = Reader(store).runs()
            live = runs[(runs["label"] == "lora") & (runs["status"] == "running")]
            victim = None if live.empty else live.iloc[0]
    assert victim is not None
    os.kill(int(victim["pid"]), signal.SIGKILL)  # the worker dies; the sweep goes on with the other cell
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 1 and "lora s0 failed" in err
    assert Reader(store).run(victim["run_id"])["status"] == "interrupted"
    record = Reader(store).sweeps().iloc[0]
    assert record["status"] == "failed" and record["message"].startswith("1 cell(s) failed: lora s0")

    spec.write_text(spec.read_text().replace("3000", "3"))  # the same cell, now quick: a different sweep id...
    data = yaml.safe_load(spec.read_text())
    data["name"] = out.split()[0]  # ...unless it is named: the rerun of the same sweep
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    rerun = geodiag("sweep", str(spec), "--no-progress")
    assert rerun.returncode == 0, rerun.stderr
    assert "1 run now, 1 already done" in rerun.stderr
    runs = listed(store)
    assert sorted(r["method"] for r in runs) == ["dora", "lora"] and {r["status"] for r in runs} == {"finished"}
    assert victim["run_id"] not in {r["run_id"] for r in runs}  # the interrupted run was replaced
    assert list(Reader(store).sweeps()["status"]) == ["finished"]


def test_cancel_stops_every_cell_of_a_sweep_and_resume_reruns_the_rest(tmp_path):
    """SIGTERM to the sweep's process (the Launch page's Cancel): the running cell ends cancelled with its data, the
    queued one never starts, the record says cancelled and how to resume; Resume reruns from the record's own spec
    file, skipping what finished."""
    from geodiag.ui import launch

    store = str(tmp_path / "s.duckdb")
    slow = ["--methods", "lora,dora", "--seeds", "0", "--name", "slow", "--store", store, *FAST[:2], *FAST[4:],
            "--steps", "3000"]
    sweep = subprocess.Popen([sys.executable, "-m", "geodiag", "sweep", *slow],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait = time.time() + 120
        while time.time() < wait:
            time.sleep(0.5)
            runs = Reader(store).runs() if os.path.exists(store) else None
            if runs is not None and len(runs) and Reader(store).metrics(list(runs["run_id"]), ("loss/lm",)).shape[0]:
                break
        launch.cancel(int(Reader(store).sweeps()["pid"].iloc[0]), group=False)
        sweep.communicate(timeout=120)
    finally:
        sweep.kill()
    assert sweep.returncode == 130
    runs, record = Reader(store).runs(), Reader(store).sweeps().iloc[0]
    assert list(runs["status"]) == ["cancelled"] and list(runs["label"]) == ["lora"]  # dora never started
    assert record["status"] == "cancelled" and "Resume it" in record["message"]
    progress = progress_of(Reader(store), record.to_dict())
    assert (progress.failed, progress.queued, progress.finished) == (1, 1, 0)

    config = json.loads(record["config"])
    spec_file = Path(config["spec_file"])
    spec = json.loads(spec_file.read_text())
    assert spec["name"] == "slow" and spec["steps"] == 3000
    spec_file.write_text(json.dumps({**spec, "steps": 3}))  # quicker now, the same sweep (it is named)
    job = launch.resume(config, tmp_path / "logs")
    assert subprocess.Popen.wait(launch._CHILDREN[job.pid], timeout=240) == 0
    runs = Reader(store).runs()
    assert sorted(runs["label"]) == ["dora", "lora"] and set(runs["status"]) == {"finished"}
    assert list(Reader(store).sweeps()["status"]) == ["finished"]


def test_a_second_process_driving_a_running_sweep_is_refused(tmp_path):
    from geodiag.store import Writer

    store = str(tmp_path / "s.duckdb")
    Writer(store).create_run(run_id="busy", name="busy", kind="sweep", config={})  # alive: this process
    out = geodiag("sweep", "--methods", "lora", "--name", "busy", "--store", store, *FAST)
    assert out.returncode == 2 and f"Sweep busy is already running (process {os.getpid()})" in out.stderr
    assert Reader(store).runs().empty


def test_bad_sweeps_are_one_sentence_and_write_nothing(tmp_path):
    store = tmp_path / "s.duckdb"
    cases = [(["--methods", "lora,nonsense"], "Unknown method 'nonsense'"),
             (["--methods", "lora,dora", "--budget", "lora-r=1000"], "No method can meet --budget lora-r=1000"),
             (["--methods", "lora,full", "--budget", "lora-r=4"], "full has no size to match"),
             (["--methods", "lora", "--seeds", "0,0"], "seeds must be distinct"),
             (["--methods", "lora", "--budget", "8"], "--budget takes lora-r=N"),
             (["--methods", "lora", "--workers", "0"], "workers must be a positive integer, got 0."),
             (["--methods", "lora", "--emit", "slurm", str(tmp_path / "file.txt")], "is a file; give a folder")]
    (tmp_path / "file.txt").write_text("not a folder")
    for extra, message in cases:
        out = geodiag("sweep", *extra, "--store", str(store), *FAST)
        assert out.returncode == 2 and message in out.stderr, (extra, out.stderr)
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert not store.exists() and not (tmp_path / "s.duckdb.spool").exists() and not (tmp_path / "sweeps").exists()


def test_slurm_scripts_run_the_analyses_then_one_cell_per_task(tmp_path):
    store = str(tmp_path / "shared" / "s.duckdb")
    (tmp_path / "shared").mkdir()
    out = geodiag("sweep", "--methods", "lora,lora-gid", "--seeds", "0,1", "--budget", "lora-r=4", "--store", store,
                  "--emit", "slurm", str(tmp_path / "job"), *FAST)
    assert out.returncode == 0, out.stderr
    job = tmp_path / "job"
    cells = (job / "cells.sbatch").read_text()
    assert "#SBATCH --array=0-3" in cells and "--cell \"$SLURM_ARRAY_TASK_ID\"" in cells
    assert "--dependency=afterok" in (job / "submit.sh").read_text()
    assert not os.path.exists(store)  # emitting runs nothing
    for script in ("cells.sbatch", "analyses.sbatch", "submit.sh"):
        assert subprocess.run(["bash", "-n", str(job / script)]).returncode == 0
    # what Slurm would do: the analyses job, then array tasks 3 and 0
    assert subprocess.run(["bash", str(job / "analyses.sbatch")], capture_output=True).returncode == 0
    for task in ("3", "0"):
        done = subprocess.run(["bash", str(job / "cells.sbatch")], env={**os.environ, "SLURM_ARRAY_TASK_ID": task},
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    runs = listed(store)
    assert sorted((r["method"], r["seed"]) for r in runs) == [("lora", 0), ("lora-gid", 1)]
    assert len({r["sweep"] for r in runs}) == 1


def test_learning_rate_selection_trains_the_grid_then_the_other_seeds_at_the_best_dev_rate(tmp_path):
    """Selection on seed 0 at each grid value, seed 1 at the value with the best dev accuracy (ties: lower dev loss),
    recomputed here from the store, as soon as its own label's selection is done; a rerun adds nothing; the plan
    and the Slurm scripts show both phases."""
    import numpy as np

    store = str(tmp_path / "s.duckdb")
    args = ["sweep", "--methods", "lora,manifold", "--seeds", "0,1", "--lr-grid", "3e-2,1e-3", "--store", store,
            *FAST]
    plan = geodiag(*args, "--plan")
    assert plan.returncode == 0, plan.stderr
    assert "4 selection runs" in plan.stdout and "2 final runs at the chosen rates: 6 runs" in plan.stdout
    assert sum(line.split()[4] == "chosen" for line in plan.stdout.splitlines()[2:-1]) == 2
    assert not os.path.exists(store)

    first = geodiag(*args, "--workers", "2")
    assert first.returncode == 0, first.stderr
    runs = [r for r in listed(store)]
    assert len(runs) == 6 and {r["status"] for r in runs} == {"finished"}
    reader = Reader(store)
    for label in ("lora", "manifold"):
        mine = {(r["seed"], r["lr"]): r["run_id"] for r in runs if r["label"] == label}
        assert {k for k in mine if k[0] == 0} == {(0, 3e-2), (0, 1e-3)}
        dev = {lr: [reader.metric(mine[0, lr], name)["value"].iloc[-1] for name in ("dev/accuracy", "dev/loss")]
               for lr in (3e-2, 1e-3)}
        best = min(dev, key=lambda lr: (-dev[lr][0], dev[lr][1]))
        assert [k for k in mine if k[0] == 1] == [(1, best)]  # seed 1 trained at the chosen rate only
        config = json.loads(r["config"]) if isinstance((r := next(x for x in runs if x["run_id"] == mine[1, best]))[
            "config"], str) else r["config"]
        assert config["selection"] == {"grid": [1e-3, 3e-2], "seeds": [0], "phase": "final"}
        assert np.isclose(config["lr"], best)
    # label by label: lora's final run started before manifold's selection had finished (its finals waited only
    # for its own label's selection, not for every label's)
    lora_final = next(r for r in runs if r["label"] == "lora" and r["seed"] == 1)
    assert lora_final["started_at"] < max(r["ended_at"] for r in runs if r["label"] == "manifold" and r["seed"] == 0)

    results = geodiag("results", first.stdout.split()[0], "--json", "--store", store)
    assert results.returncode == 0, results.stderr
    assert {r["label"]: len(r["seeds"]) for r in json.loads(results.stdout)} == {"lora": 2, "manifold": 2}

    again = geodiag(*args)
    assert again.returncode == 0 and "0 run now, 6 already done" in again.stderr and len(listed(store)) == 6

    out = geodiag(*args, "--emit", "slurm", str(tmp_path / "job"))
    assert out.returncode == 0, out.stderr
    job = tmp_path / "job"
    assert "#SBATCH --array=0-3" in (job / "select.sbatch").read_text()
    assert "#SBATCH --array=4-5" in (job / "cells.sbatch").read_text()
    submit = (job / "submit.sh").read_text()
    assert 'cells=$(sbatch --parsable --dependency=afterok:"$select" cells.sbatch)' in submit
    assert subprocess.run(["bash", "-n", str(job / "submit.sh")]).returncode == 0


def test_a_bad_grid_is_one_sentence_and_writes_nothing(tmp_path):
    store = tmp_path / "s.duckdb"
    for extra, says in ((["--lr-grid", "1e-3,abc"], "lr_grid values must be positive numbers"),
                        (["--lr-grid", "1e-3,-1"], "lr_grid values must be positive numbers"),
                        (["--lr-grid", "1e-3", "--dev-size", "0"], "Learning-rate selection needs dev items"),
                        (["--lr-grid", "1e-3", "--select-seeds", "7"], "select_seeds 7 is not one of"),
                        (["--dev-size", "300", "--eval-size", "300", "--task-option", "max_digits=1"], "supplied")):
        out = geodiag("sweep", "--methods", "lora", "--store", str(store), *FAST, *extra)  # extra's flags win
        assert out.returncode == 2 and says in out.stderr and out.stderr.count("\n") == 1, (extra, out.stderr)
    assert not store.exists() and not (tmp_path / "sweeps").exists()


def test_a_spectral_rule_trains_budget_matched_from_the_sweeps_spectra_analysis(tmp_path):
    """lora-alpha-share (made from the registered alpha-share rule, no method code of its own) shares one
    `analyze spectra` run, is sized to LoRA's count through the rule's budget scale, and trains the ranks the rule
    gives for the stored spectra."""
    from geodiag.allocation import Settings, plan
    from geodiag.lab import stored_analysis

    store = str(tmp_path / "s.duckdb")
    out = geodiag("sweep", "--methods", "lora,lora-alpha-share", "--budget", "lora-r=4", "--store", store, *FAST)
    assert out.returncode == 0, out.stderr
    reader = Reader(store)
    runs = reader.runs()
    spectra = runs[(runs["kind"] == "analysis") & (runs["method"] == "spectra")]
    assert len(spectra) == 1 and spectra["sweep"].iloc[0] == out.stdout.split()[0]
    trained = {r["label"]: r for r in listed(store)}
    rid = trained["lora-alpha-share"]["run_id"]
    config = reader.run(rid)["config"]
    options = config["method_options"]
    assert options["from_analysis"] == spectra["run_id"].iloc[0]
    stored = stored_analysis(reader, options["from_analysis"])
    expected = plan(Settings("alpha-share", budget_scale=options["rule_scale"]), stored.vectors, stored.shapes)
    ranks = reader.metric(rid, "alloc/lora-alpha-share").set_index("module")["value"].to_dict()
    assert ranks == {a.module: a.rank for a in expected.allocations}
    lora = trained["lora"]["trainable_params"]
    assert abs(trained["lora-alpha-share"]["trainable_params"] - lora) / lora <= 0.25  # the budget's tolerance
