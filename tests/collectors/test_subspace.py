"""Principal angles and factor SVDs against known answers and dense references; the subspace collector
against a dense recomputation; full fine-tuning's GID dynamics against a direct gradient."""

import math

import numpy as np
import pytest
import torch

from geodiag.collectors import subspace_rows
from geodiag.methods import build
from geodiag.metrics import effective_rank, factor_svd, principal_angles, random_subspace_angle
from geodiag.models import linear_modules, load_model, tiny_model


def test_principal_angles_known_answers():
    rng = np.random.default_rng(0)
    U = rng.standard_normal((20, 3))
    assert np.allclose(principal_angles(U, U @ rng.standard_normal((3, 3))), 0.0, atol=1e-6)
    e = np.eye(6)
    assert np.allclose(principal_angles(e[:, :2], e[:, 2:4]), 90.0)
    theta = 0.3  # one plane tilted by theta out of span(e0, e1) towards e2
    V = np.stack([e[:, 0], math.cos(theta) * e[:, 1] + math.sin(theta) * e[:, 2]], axis=1)
    assert np.allclose(principal_angles(e[:, :2], V).numpy(), [0.0, math.degrees(theta)], atol=1e-6)
    with pytest.raises(ValueError, match="one space"):
        principal_angles(e[:, :2], np.eye(5)[:, :2])


@pytest.mark.parametrize("blocks", [1, 4])
def test_factor_svd_equals_dense_svd(blocks):
    g = torch.Generator().manual_seed(blocks)
    n, r, o, c, k = blocks, 3, 32, 24, 5
    B = torch.randn(n, o // n, r, generator=g, dtype=torch.float64) if blocks > 1 else torch.randn(o, r, generator=g,
                                                                                                   dtype=torch.float64)
    A = torch.randn(n, r, c // n, generator=g, dtype=torch.float64) if blocks > 1 else torch.randn(r, c, generator=g,
                                                                                                   dtype=torch.float64)
    gates = torch.rand(n * r, generator=g, dtype=torch.float64)
    U, s, V = factor_svd(B, A, k, gates=gates, scaling=0.5)
    gb = gates.reshape(n, r)
    Bs = B if blocks > 1 else B[None]
    As = A if blocks > 1 else A[None]
    dense = 0.5 * torch.block_diag(*[Bs[i] @ torch.diag(gb[i]) @ As[i] for i in range(n)])  # (o, c)
    Ud, sd, Vhd = torch.linalg.svd(dense)
    k = min(k, n * r)  # a rank-3 update has 3 triplets, however many are asked for
    assert s.shape == (k,) and U.shape == (o, k) and V.shape == (c, k)
    assert torch.allclose(s, sd[:k], rtol=1e-10)
    assert torch.allclose(U.T @ U, torch.eye(k, dtype=torch.float64), atol=1e-10)
    # same subspaces (signs and order within ties aside): every principal angle is ~0
    assert float(principal_angles(U, Ud[:, :k]).max()) < 1e-4
    assert float(principal_angles(V, Vhd[:k].T).max()) < 1e-4


@pytest.fixture(scope="module")
def tok():
    return load_model("tiny").tokenizer


def _batch(tok):
    from geodiag.data import Example
    from geodiag.data.tokenise import collate, encode

    items = [Example(f"What is {a} plus {a}?", str(2 * a)) for a in range(1, 5)]
    return collate([encode(tok, ex, 64) for ex in items], tok.pad_token_id)


def test_subspace_rows_equal_a_dense_recomputation(tok):
    model = tiny_model(len(tok), seed=0)
    adapted = build("lora", model, {"r": 4, "target_modules": ["q_proj", "v_proj"]})
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in adapted.model.modules():
            if hasattr(m, "lora_B") and "default" in m.lora_B:
                m.lora_B["default"].weight.copy_(torch.randn(m.lora_B["default"].weight.shape, generator=g))
    batch = _batch(tok)
    trainable = [p for p in adapted.model.parameters() if p.requires_grad]
    rows = subspace_rows(adapted, batch, 3, 5, 0.0)
    assert all(p.grad is None for p in trainable)  # the collector leaves the optimiser's gradients alone
    assert [p.requires_grad for p in adapted.model.parameters()].count(True) == len(trainable)
    view = adapted.adapters()[0]
    got = sorted(r["value"] for r in rows if r["module"] == view.module and r["name"] == "subspace/angle_dw_grad")
    assert len(got) == 3 and all(0 <= a <= 90 for a in got)
    # dense reference: Delta W = s B A, and G from an ordinary backward with only that weight trainable
    dW = view.scaling * (view.B.double() @ view.A.double())
    base = dict(adapted.model.named_modules())
    w = next(m.base_layer.weight for n, m in base.items() if n.endswith(view.module))
    w.requires_grad_(True)
    adapted.model.eval()
    adapted.model(**batch).loss.backward()
    G = w.grad.double()
    w.grad = None
    w.requires_grad_(False)
    want = principal_angles(torch.linalg.svd(dW)[0][:, :3], torch.linalg.svd(G)[0][:, :3])
    assert np.allclose(got, sorted(want.tolist()), atol=1e-6)


def test_manifold_subspace_rows_include_the_probe_pairs(tok):
    model = tiny_model(len(tok), seed=0)
    adapted = build("manifold", model, {"r_div": 4, "probe_div": 8})
    batch = _batch(tok)
    fresh = {r["name"] for r in subspace_rows(adapted, batch, 2, 0, 0.0)}  # B = 0: Delta W has no subspace yet
    assert fresh == {"subspace/angle_grad_probe", "subspace/random_grad_probe"}
    with torch.no_grad():
        for a in adapted.adapters_.values():
            a.B.normal_()
    rows = subspace_rows(adapted, batch, 2, 1, 0.0)
    pairs = ("dw_grad", "dw_probe", "grad_probe")
    assert {r["name"] for r in rows} == {f"subspace/{kind}_{p}" for kind in ("angle", "random") for p in pairs}
    # dense reference for one module: the top-2 row space of Delta W against the whole probe span of its layer
    view = adapted.adapters()[0]
    Q = adapted.probes[view.layer].basis().detach().double()  # (h, p)
    assert Q.shape[1] > 2  # a first-2-columns cut of Q would give different angles
    dW = view.scaling * (view.B.double() * view.gates.double()) @ view.A.double()  # (d_out, d_in)
    want = principal_angles(torch.linalg.svd(dW)[2][:2].T, Q)
    got = sorted(r["value"] for r in rows if r["module"] == view.module and r["name"] == "subspace/angle_dw_probe")
    assert np.allclose(got, sorted(want.tolist()), atol=1e-6)
    chance = [r["value"] for r in rows if r["module"] == view.module and r["name"] == "subspace/random_dw_probe"]
    assert chance == [random_subspace_angle(Q.shape[0], 2, Q.shape[1])]


def test_random_subspace_angle_known_answers():
    # two random lines in the plane: the angle is uniform on [0, 90], so its mean is 45
    assert abs(random_subspace_angle(2, 1, 1, draws=4000) - 45.0) < 1.5
    assert random_subspace_angle(5, 2, 5) < 1e-6  # a subspace filling the space contains every other
    # in high dimension small random subspaces are nearly orthogonal, and a larger partner pulls them closer
    wide = random_subspace_angle(576, 8, 8)
    assert 80 < wide < 90 and random_subspace_angle(576, 8, 64) < wide
    with pytest.raises(ValueError, match="1..n"):
        random_subspace_angle(4, 2, 5)


def test_full_finetuning_records_gid_of_the_step_gradient(tmp_path, tok):
    import json

    from geodiag.data.tokenise import collate, encode
    from geodiag.store import Reader
    from geodiag.train import TrainConfig, train

    items = [{"prompt": f"What is {a} plus {a}?", "response": str(2 * a)} for a in range(1, 7)]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in items))
    cfg = TrainConfig(model="tiny", dataset=str(data), method="full", steps=4, batch_size=5, grad_accum=1,
                      record_every=2, record_gid_every=2, eval_size=1, record_batch=2, warmup=0.0,
                      store=str(tmp_path / "s.duckdb"), max_new_tokens=2)
    rid = train(cfg, progress=False)
    gid = Reader(cfg.store).metric(rid, "gid/erank")
    assert sorted(gid["step"].unique()) == [1, 2, 4]
    assert set(gid["module_type"]) == {"q", "k", "v", "o"}
    # step 1's gradient is the gradient at the initial weights on the five training items
    from geodiag.data import load_data

    model = load_model("tiny", seed=cfg.seed).model
    train_items = load_data(None, str(data), n_train=cfg.train_size, n_eval=cfg.record_batch, seed=cfg.seed).train
    batch = collate([encode(tok, ex, cfg.max_length) for ex in train_items], tok.pad_token_id)
    model(**batch).loss.backward()
    name = gid["module"].iloc[0]
    want = effective_rank(linear_modules(model)[name].weight.grad)
    got = gid[(gid["step"] == 1) & (gid["module"] == name)]["value"].item()
    assert got == pytest.approx(want, rel=1e-5)


def test_record_gid_every_needs_full_finetuning(tmp_path):
    from geodiag.errors import GeodiagError
    from geodiag.train import TrainConfig, train

    cfg = TrainConfig(model="tiny", method="lora", steps=2, record_gid_every=1, eval_size=0, train_size=8,
                      store=str(tmp_path / "s.duckdb"))
    with pytest.raises(GeodiagError, match="needs --method full"):
        train(cfg, progress=False)
