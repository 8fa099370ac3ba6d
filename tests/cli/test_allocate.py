"""`geodiag allocate` on a real analysis run, and `geodiag train --allocation` training exactly what the file says."""

import json

from helpers import geodiag

from geodiag.store import Reader


def test_allocate_then_train_the_file(tmp_path):
    store = str(tmp_path / "s.duckdb")
    assert geodiag("analyze", "gid", "--model", "tiny", "--gid-batches", "2", "--store", store).returncode == 0
    gid = Reader(store).runs()["run_id"].iloc[0]
    out = tmp_path / "a.json"
    bad = geodiag("allocate", gid, "--rule", "ralora-pro", "--preset", "nope", "--out", str(out), "--store", store)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "There is no preset 'nope'" in bad.stderr
    assert not out.exists()  # nothing written
    wrong = geodiag("allocate", gid, "--rule", "gelora", "--out", str(out), "--store", store)
    assert wrong.returncode == 2 and "`geodiag analyze id` run" in wrong.stderr and not out.exists()

    done = geodiag("allocate", gid, "--rule", "ralora-pro", "--preset", "official", "--out", str(out), "--store", store)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["source_run"] == gid and data["model"] == "tiny" and len(data["shapes"]) == 8  # q,k,v,o x 2 layers
    trained = geodiag("train", "--model", "tiny", "--allocation", str(out), "--steps", "2", "--eval-size", "0",
                      "--dev-size", "0", "--no-progress", "--store", store)
    assert trained.returncode == 0, trained.stderr
    run = Reader(store).run(trained.stdout.split()[0])
    assert run["method"] == "ralora-pro"  # the file's rule
    assert run["trainable_params"] == data["params"]  # the block-diagonal rule trains exactly what the file says
    assert run["config"]["allocation"] == str(out)


def test_a_file_for_another_model_trains_nothing(tmp_path):
    store = str(tmp_path / "s.duckdb")
    assert geodiag("analyze", "gid", "--model", "tiny", "--gid-batches", "2", "--store", store).returncode == 0
    gid = Reader(store).runs()["run_id"].iloc[0]
    out = tmp_path / "a.json"
    assert geodiag("allocate", gid, "--rule", "lora-gid", "--out", str(out), "--store", store).returncode == 0
    data = json.loads(out.read_text())
    data["model"], data["shapes"] = "smollm2", {m: [576, 576] for m in data["shapes"]}  # SmolLM2's q_proj shape
    out.write_text(json.dumps(data))
    before = len(Reader(store).runs())
    bad = geodiag("train", "--model", "tiny", "--allocation", str(out), "--steps", "2", "--no-progress",
                  "--store", store)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "was made for smollm2, where model.layers.0.self_attn.q_proj is 576x576; in tiny it is 64x64" in bad.stderr
    assert len(Reader(store).runs()) == before  # nothing written


def test_a_spectral_rules_paper_constant_moves_from_the_command_line(tmp_path):
    store = str(tmp_path / "s.duckdb")
    assert geodiag("analyze", "spectra", "--model", "tiny", "--store", store).returncode == 0
    spectra = Reader(store).runs()["run_id"].iloc[0]
    out = tmp_path / "a.json"
    for bad_pair, sentence in [("beta", "--constant takes NAME=VALUE with a number for VALUE, got 'beta'."),
                               ("gamma=1", "The alpha-share rule has no constant 'gamma'; its constants are beta."),
                               ("beta=-1", "The alpha-share rule's beta must be a number between 0 and 20, got -1.0.")]:
        bad = geodiag("allocate", spectra, "--rule", "alpha-share", "--constant", bad_pair, "--out", str(out),
                      "--store", store)
        assert bad.returncode == 2 and bad.stderr.strip() == f"geodiag: error: {sentence}", bad.stderr
        assert not out.exists()
    paper = json.loads(geodiag("allocate", spectra, "--rule", "alpha-share", "--store", store).stdout)
    equal = geodiag("allocate", spectra, "--rule", "alpha-share", "--constant", "beta=0", "--out", str(out),
                    "--store", store)
    assert equal.returncode == 0, equal.stderr
    data = json.loads(out.read_text())
    assert paper["constants"] == {"beta": 2.5} and data["constants"] == {"beta": 0.0}
    assert set(data["rank_pattern"].values()) == {data["r"]}  # alpha^0: every module the same share, LoRA's rank
