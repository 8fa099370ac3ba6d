"""GID and ID passs against direct computations, the GID-Fisher table, and `geodiag analyze` end to end."""

import itertools
import math

import numpy as np
import pytest
import torch
from helpers import geodiag

from geodiag.allocation import ModuleShape, Settings, Vectors, plan
from geodiag.analysis.correlation import gid_fisher_correlations
from geodiag.analysis.passes import gradient_pass, hidden_state_pass
from geodiag.data import load_task
from geodiag.data.tokenise import batch_stream, encode
from geodiag.models import linear_modules, load_model, resolve_targets
from geodiag.store import Reader


@pytest.fixture(scope="module")
def tiny():
    lm = load_model("tiny")
    data = load_task("basic_arithmetic", n_train=64, n_eval=2)
    encoded = [encode(lm.tokenizer, ex, 64) for ex in data.train]
    return lm, encoded


def test_gid_of_accumulated_gradients_equals_a_direct_svd(tiny):
    lm, encoded = tiny
    model = lm.model
    batches = list(itertools.islice(batch_stream(encoded, 4, lm.tokenizer.pad_token_id), 3))
    targets = resolve_targets(model, ["q_proj", "v_proj"])
    stats = {s.module: s for s in gradient_pass(model, batches, targets, progress=False)}
    # reference: plain autograd over all parameters, gradients summed over the batches, SVD in float64
    model.zero_grad()
    per_batch = {n: [] for n in targets}
    linears = linear_modules(model)
    for b in batches:
        model(**b).loss.backward()
        for n in targets:
            per_batch[n].append(linears[n].weight.grad.detach().clone())
        model.zero_grad()
    for n in targets:
        G = torch.stack(per_batch[n]).sum(0).double()
        s = torch.linalg.svdvals(G)
        p = s / s.sum()
        assert stats[n].erank == pytest.approx(float(torch.exp(-(p * p.log()).sum())), rel=1e-6)
        W = linears[n].weight.detach().double()
        assert stats[n].importance == pytest.approx(float((W * G).abs().mean()), rel=1e-6)
        fisher = np.mean([float(g.double().square().mean()) for g in per_batch[n]])
        assert stats[n].fisher == pytest.approx(fisher, rel=1e-6)
        assert stats[n].thresholds[1e-5] >= stats[n].thresholds[1e-3] >= stats[n].thresholds[1e-1]
    # the sweep left no gradients behind and restored what was trainable
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())


def test_gid_fisher_correlations_on_synthetic_data():
    rng = np.random.default_rng(0)
    gid = rng.uniform(5, 50, 30)
    fisher = np.exp(-gid / 10)  # log F exactly linear in GID, decreasing
    types = ["q", "v"] * 15
    table = gid_fisher_correlations(gid, fisher, types)
    for t in ("q", "v", "all"):
        assert table[t]["pearson_log"] == pytest.approx(-1.0)
        assert table[t]["spearman"] == pytest.approx(-1.0)
        assert 0.5 < table[t]["pearson_inv"] < 1.0  # monotone but not linear
    # a known correlation rho = 0.6 between GID and log F, large n
    x = rng.standard_normal(20_000)
    y = 0.6 * x + 0.8 * rng.standard_normal(20_000)
    table = gid_fisher_correlations(10 + x, np.exp(y), ["k"] * len(x))
    assert table["k"]["pearson_log"] == pytest.approx(0.6, abs=0.02)
    assert math.isnan(gid_fisher_correlations([1.0, 2.0], [1.0, 2.0], ["o", "o"])["o"]["spearman"])


def test_hidden_state_pass_measures_every_layer(tiny):
    lm, encoded = tiny
    stream = batch_stream(encoded, 8, lm.tokenizer.pad_token_id)
    profile = hidden_state_pass(lm.model, stream, 400, progress=False)
    assert [g.layer for g in profile] == [0, 1, 2]  # entering block 0, leaving blocks 0 and 1
    for g in profile:
        assert g.n + g.duplicates == 400 and 0 < g.twonn < 64 and 1 <= g.participation_ratio <= 64




def test_analyze_gid_and_id_record_measurements_and_allocations(tmp_path):
    store = str(tmp_path / "s.duckdb")
    out = geodiag("analyze", "gid", "--model", "tiny", "--gid-batches", "3", "--batch-size", "4", "--r", "2",
                  "--store", store, "--no-progress")
    assert out.returncode == 0, out.stderr
    rid = out.stdout.strip()
    reader = Reader(store)
    run = reader.run(rid)
    assert run["kind"] == "analysis" and run["method"] == "gid" and run["config"]["gid_batches"] == 3
    gid = reader.metric(rid, "gid/erank")
    assert len(gid) == 8 and set(gid["module_type"]) == {"q", "k", "v", "o"}  # 2 layers x q,k,v,o
    assert sorted(reader.metric(rid, "gid/threshold")["idx"].unique()) == [1, 3, 5]
    for name in ("alloc/lora", "alloc/ralora", "alloc/ralora-pro", "alloc/lora-gid", "alloc/ralora/params",
                 "importance", "fisher/mean", "gid/fisher_pearson_log", "gid/fisher_spearman"):
        assert name in reader.metric_names(rid), name
    # the recorded RaLoRA blocks are what the rule gives for the recorded GIDs
    blocks = reader.metric(rid, "alloc/ralora/blocks").set_index("module")["value"]
    lin = linear_modules(load_model("tiny").model)
    shapes = [ModuleShape(m, lin[m].in_features, lin[m].out_features) for m in gid["module"]]
    gids = dict(zip(gid["module"], gid["value"], strict=True))
    expected = {a.module: a.blocks for a in plan(Settings("ralora", r=2), Vectors(gids=gids), shapes).allocations}
    assert blocks.to_dict() == expected
    params = reader.metric(rid, "alloc/ralora/params").set_index("module")["value"]
    assert all(params[m] == 2 * (lin[m].in_features + lin[m].out_features) for m in params.index)
    progress = reader.metric(rid, "analysis/progress").sort_values("step")  # what the Launch page draws
    assert progress["step"].iloc[0] == 1 and progress["step"].iloc[-1] == 3  # first and last batch, at least
    assert np.allclose(progress["value"], progress["step"] / 3)

    out = geodiag("analyze", "id", "--model", "tiny", "--id-tokens", "300", "--store", store, "--no-progress")
    assert out.returncode == 0, out.stderr
    rid = out.stdout.strip()
    ids = reader.metric(rid, "id/twonn")
    assert sorted(ids["layer"]) == [0, 1, 2]
    assert (reader.metric(rid, "id/twonn_n")["value"] + reader.metric(rid, "id/twonn_duplicates")["value"] == 300).all()
    progress = reader.metric(rid, "analysis/progress").sort_values("step")
    assert progress["value"].is_monotonic_increasing and progress["value"].iloc[-1] == 1.0
    assert progress["step"].iloc[-1] == 300  # points collected, capped at --tokens
    ranks = reader.metric(rid, "alloc/gelora")
    d = ids.sort_values("layer")["value"].tolist()
    for layer in (0, 1):
        expected_rank = max(round(max(d[layer + 1] - d[layer], 0) + 1), 1)
        assert (ranks[ranks.layer == layer]["value"] == expected_rank).all()


def test_analyze_bad_input(tmp_path):
    store = str(tmp_path / "s.duckdb")
    out = geodiag("analyze", "gid", "--model", "tiny", "--target-modules", "nope", "--store", store)
    assert out.returncode == 2 and "No linear module matches nope" in out.stderr
    out = geodiag("analyze", "id", "--model", "tiny", "--id-tokens", "0", "--store", str(tmp_path / "s.duckdb"))
    assert out.returncode == 2 and "tokens must be a positive integer, got 0." in out.stderr
    out = geodiag("analyze", "id", "--model", "tiny", "--id-tokens", "2", "--store", store)  # once a traceback
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == "geodiag: error: id_tokens must be at least 20 points, got 2."
    out = geodiag("analyze", "id", "--model", "tiny", "--pooling", "max", "--store", str(tmp_path / "s.duckdb"))
    assert out.returncode == 2 and "invalid choice: 'max'" in out.stderr  # the flag lists the choices
    from geodiag.config import AnalyzeConfig
    from geodiag.errors import GeodiagError

    with pytest.raises(GeodiagError, match="pooling must be tokens or mean, got 'max'"):
        AnalyzeConfig(pooling="max")  # the config itself refuses it too (Launch page, Python callers)
    with pytest.raises(GeodiagError, match="block_rounding must be floor, ceil or round"):
        AnalyzeConfig(block_rounding="up")
