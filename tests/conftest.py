import numpy as np
import pytest
import torch

torch.set_num_threads(max(1, torch.get_num_threads()))


@pytest.fixture(scope="session", autouse=True)
def nothing_outlives_the_suite(tmp_path_factory):
    """Every process a test starts works in this session's temporary folder; whatever still runs there at the end
    (a launch a failed browser test could not cancel, a sweep's cell) is stopped and named."""
    yield
    from helpers import stop_processes_under

    left = stop_processes_under(tmp_path_factory.getbasetemp())
    if left:
        print(f"\nstopped {len(left)} process(es) a test had left running: {left}")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def dashboard_store(tmp_path_factory) -> dict:
    """A real store written by the engine on the tiny model: GID and ID analyses, a LoRA run, a full
    fine-tuning run with GID dynamics, two LoRA runs of a learning-rate selection (a sweep of their own), then, as
    cells of one sweep, LoRA, DoRA, RaLoRA and a ManifoldLoRA run with
    subspace angles (newest, so the dashboard opens on it). Returns the store path and the run ids by method."""
    import json

    from geodiag.analysis import analyze_gid, analyze_id
    from geodiag.config import AnalyzeConfig
    from geodiag.train import TrainConfig, train

    tmp = tmp_path_factory.mktemp("dashboard")
    store = str(tmp / "s.duckdb")
    data = tmp / "d.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"What is {a} plus {a}?", "response": str(2 * a)})
                              for a in range(1, 9)))
    ids = {"gid": analyze_gid(AnalyzeConfig(model="tiny", dataset=str(data), gid_batches=2, r=2, store=store),
                              progress=False),
           "id": analyze_id(AnalyzeConfig(model="tiny", dataset=str(data), id_tokens=120, store=store), progress=False)}
    common = dict(model="tiny", dataset=str(data), steps=6, batch_size=4, grad_accum=1, record_every=3,
                  eval_size=1, record_batch=3, warmup=0.0, max_new_tokens=2, store=store)
    ids["full"] = train(TrainConfig(method="full", record_gid_every=2, **common), progress=False)
    for lr in (1e-3, 3e-2):  # a learning-rate selection on the task's dev items, a sweep of its own
        ids[f"select-{lr:g}"] = train(TrainConfig(
            **{**common, "dataset": None, "eval_size": 2, "dev_size": 4, "train_size": 32}, method="lora", lr=lr,
            sweep="fixture-select", label="lora", method_options={"r": 2},
            selection={"grid": [1e-3, 3e-2], "seeds": [0], "phase": "select"}), progress=False)
    common["sweep"] = "fixture-sweep"  # the Results page's: every run below is a cell of one sweep
    ids["lora"] = train(TrainConfig(method="lora", method_options={"r": 4}, **common), progress=False)
    ids["dora"] = train(TrainConfig(method="dora", lr=1e-2, method_options={"r": 4}, **common), progress=False)
    ids["ralora"] = train(TrainConfig(method="ralora", method_options={"r": 2, "from_analysis": ids["gid"]},
                                      **common), progress=False)
    ids["manifold"] = train(TrainConfig(method="manifold", subspace_k=2, lr=3e-2,
                                        method_options={"r_div": 4, "probe_div": 8, "gate_lr_ratio": 1 / 30,
                                                        "temperature_lr_ratio": 1 / 30}, **common),
                            progress=False)
    return {"store": store, "ids": ids}
