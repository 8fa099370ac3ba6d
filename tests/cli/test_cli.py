"""The geodiag command, run as a user runs it: a subprocess, output and exit status."""

import json

from helpers import geodiag

from geodiag.store import Writer


def test_help_and_version():
    out = geodiag("--help")
    assert out.returncode == 0 and "runs" in out.stdout
    assert geodiag("--version").stdout.startswith("geodiag ")


def test_runs_list_and_show(tmp_path):
    store = tmp_path / "s.duckdb"
    rid = Writer(store).create_run(name="my-run", kind="train", method="lora", config={"r": 4})
    Writer(store).append(rid, [{"step": 0, "name": "loss/lm", "value": 2.0}])
    table = geodiag("runs", "list", "--store", str(store))
    assert table.returncode == 0 and "my-run" in table.stdout and rid in table.stdout
    records = json.loads(geodiag("runs", "list", "--store", str(store), "--json").stdout)
    assert records[0]["run_id"] == rid and records[0]["method"] == "lora"
    show = geodiag("runs", "show", rid, "--store", str(store))
    assert show.returncode == 0 and '"r": 4' in show.stdout and "loss/lm" in show.stdout


def test_errors_are_one_sentence_and_exit_2(tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_text("not a database")
    out = geodiag("runs", "list", "--store", str(bad))
    assert out.returncode == 2
    assert out.stderr.startswith("geodiag: error: The file at") and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    missing = geodiag("runs", "show", "abc", "--store", str(tmp_path / "none.duckdb"))
    assert missing.returncode == 2 and "There is no store at" in missing.stderr


def test_dev_and_test_the_task_cannot_supply_disjointly_are_one_sentence_and_write_nothing(tmp_path):
    store = tmp_path / "s.duckdb"
    out = geodiag("train", "--model", "tiny", "--method", "lora", "--steps", "1", "--eval-size", "300",
                  "--dev-size", "300", "--task-option", "max_digits=1", "--store", str(store), "--no-progress")
    assert out.returncode == 2 and "lower --eval-size or --dev-size" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not store.exists()


def test_an_option_two_methods_share_keeps_each_methods_own_choices(tmp_path):
    """init_lora_weights: LoRA takes pissa (its README example), DoRA only default or gaussian; each method's
    --help section lists its own choices."""
    from geodiag.store import Reader

    store = tmp_path / "s.duckdb"
    out = geodiag("train", "--method", "dora", "--model", "tiny", "--init-lora-weights", "pissa", "--store",
                  str(store))
    assert out.returncode == 2 and out.stderr.strip() == ("geodiag: error: init_lora_weights must be default or "
                                                          "gaussian, got 'pissa'.")
    assert not store.exists()
    out = geodiag("train", "--method", "lora", "--model", "tiny", "--init-lora-weights", "pissa", "--steps", "1",
                  "--eval-size", "1", "--dev-size", "0", "--forget-size", "0", "--max-new-tokens", "1", "--store",
                  str(store), "--no-progress")
    assert out.returncode == 0, out.stderr
    run = Reader(store).run(out.stdout.split()[0])
    assert run["config"]["method_options"]["init_lora_weights"] == "pissa"
    text = geodiag("train", "--help").stdout
    lora, dora = text.index("--method lora:"), text.index("--method dora:")
    assert "{default,gaussian,pissa,olora}" in text[lora:text.index("--method", lora + 5)]
    assert "{default,gaussian}" in text[dora:text.index("--method", dora + 5)]
