"""RaLoRA: block-diagonal forward equals the dense block-diagonal product; counts; training from GIDs."""


import pytest
import torch
from helpers import geodiag

from geodiag.allocation import Allocation
from geodiag.errors import GeodiagError
from geodiag.methods import build
from geodiag.methods.hooks import load_adapter
from geodiag.methods.ralora import RaLoraConfig
from geodiag.methods.ralora.model import BlockDiagonalAdapter, RaLoraAdapted
from geodiag.metrics import factor_spectrum
from geodiag.models import linear_modules, load_model, tiny_model
from geodiag.store import Reader


def dense(ad: BlockDiagonalAdapter) -> torch.Tensor:
    return torch.block_diag(*[b @ a for b, a in zip(ad.B, ad.A, strict=True)]) * ad.scaling  # (d_out, d_in)


def test_block_diagonal_forward_equals_the_dense_product():
    ad = BlockDiagonalAdapter(d_in=64, d_out=32, r=3, n=4, alpha=6.0)
    with torch.no_grad():
        ad.B.normal_()
    x = torch.randn(5, 7, 64)
    torch.testing.assert_close(ad.delta(x), x @ dense(ad).T, rtol=1e-5, atol=1e-5)
    s = factor_spectrum(ad.B.detach(), ad.A.detach(), scaling=ad.scaling)
    torch.testing.assert_close(s, torch.linalg.svdvals(dense(ad).double())[:12], rtol=1e-6, atol=1e-8)
    assert sum(p.numel() for p in ad.parameters()) == 3 * (64 + 32)  # r (d_in + d_out), like LoRA


@pytest.fixture(scope="module")
def vocab():
    return len(load_model("tiny").tokenizer)


def test_adapter_hooks_base_unchanged_and_reload(vocab, tmp_path):
    model = tiny_model(vocab)
    names = [n for n in linear_modules(model) if n.endswith(("q_proj", "v_proj"))]
    allocs = [Allocation(n, 2, 4 if "q_proj" in n else 2, params=0) for n in names]
    adapted = RaLoraAdapted(model, RaLoraConfig(r=2), allocs)
    with torch.no_grad():
        for ad in adapted.adapters_.values():
            ad.B.normal_()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randint(0, 1000, (2, 9))
    with torch.no_grad():
        out = model(input_ids=x).logits
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    adapted.save(tmp_path)
    reloaded = load_adapter(tiny_model(vocab), tmp_path)
    with torch.no_grad():
        assert torch.equal(out, reloaded.model(input_ids=x).logits)
    assert adapted.trainable_parameters() == sum(2 * (m.in_features + m.out_features)
                                                 for n, m in linear_modules(model).items() if n in names)


def test_ralora_needs_gids(vocab):
    with pytest.raises(GeodiagError, match="This method needs GIDs"):
        build("ralora", tiny_model(vocab))




@pytest.mark.parametrize("method", ["ralora", "ralora-pro"])
def test_train_from_a_stored_gid_analysis(tmp_path, method):
    store = str(tmp_path / "s.duckdb")
    out = geodiag("analyze", "gid", "--model", "tiny", "--target-modules", "q_proj,v_proj", "--gid-batches", "2",
                  "--r", "2", "--store", store, "--no-progress")
    assert out.returncode == 0, out.stderr
    analysis = out.stdout.strip()
    out = geodiag("train", "--model", "tiny", "--method", method, "--from-analysis", analysis, "--r", "2",
                  "--steps", "6", "--grad-accum", "1", "--record-every", "3", "--eval-size", "2", "--lr", "1e-2",
                  "--dev-size", "2", "--store", store, "--no-progress")
    assert out.returncode == 0, out.stderr
    rid = out.stdout.strip()
    reader = Reader(store)
    assert reader.run(rid)["method"] == method
    used = reader.metric(rid, f"alloc/{method}/blocks").set_index("module")["value"]
    planned = reader.metric(analysis, f"alloc/{method}/blocks").set_index("module")["value"]
    assert used.to_dict() == planned.to_dict()  # trained with exactly the allocation the analysis implies
    params = reader.metric(rid, "params/trainable")["value"].iloc[0]
    assert params == reader.run(rid)["trainable_params"]
    assert reader.metric(rid, "params/lora_reference")["value"].iloc[0] > 0
    sv = reader.metric(rid, "spectrum/singular_value")
    assert len(sv[sv.step == 6]) > 0


@pytest.mark.parametrize("method, analysis", [("lora-gid", "gid"), ("gelora", "id")])
def test_lora_gid_and_gelora_train_with_the_analysed_ranks(tmp_path, method, analysis):
    store = str(tmp_path / "s.duckdb")
    extra = ["--gid-batches", "2"] if analysis == "gid" else ["--id-tokens", "300", "--gelora-scale", "4"]
    out = geodiag("analyze", analysis, "--model", "tiny", "--target-modules", "q_proj,v_proj", *extra, "--store", store,
                  "--no-progress")
    assert out.returncode == 0, out.stderr
    aid = out.stdout.strip()
    flags = ["--gelora-scale", "4"] if method == "gelora" else []
    out = geodiag("train", "--model", "tiny", "--method", method, "--from-analysis", aid, *flags, "--steps", "4",
                  "--grad-accum", "1", "--record-every", "2", "--eval-size", "2", "--dev-size", "2", "--store", store,
                  "--no-progress")
    assert out.returncode == 0, out.stderr
    rid = out.stdout.strip()
    reader = Reader(store)
    planned = reader.metric(aid, f"alloc/{method}").set_index("module")["value"]
    used = reader.metric(rid, f"alloc/{method}").set_index("module")["value"]
    assert used.to_dict() == planned.to_dict()
    # the trained peft adapters really have those ranks: one singular value per rank direction
    sv = reader.metric(rid, "spectrum/singular_value")
    counts = sv[sv.step == 4].groupby("module").size()
    assert counts.to_dict() == {m: int(r) for m, r in planned.items()}
    assert reader.run(rid)["trainable_params"] == reader.metric(rid, "params/trainable")["value"].iloc[0]


def test_remove_detaches_every_block_adapter(vocab):
    model = tiny_model(vocab)
    x = torch.randint(0, 1000, (2, 9))
    with torch.no_grad():
        base = model(input_ids=x).logits
    names = [n for n in linear_modules(model) if n.endswith(("q_proj", "v_proj"))]
    adapted = RaLoraAdapted(model, RaLoraConfig(r=2), [Allocation(n, 2, 2, params=0) for n in names])
    with torch.no_grad():
        for ad in adapted.adapters_.values():
            ad.B.normal_()
        assert not torch.allclose(model(input_ids=x).logits, base)  # the blocks change the output...
        adapted.remove()
        assert torch.equal(model(input_ids=x).logits, base)  # ...until they are detached
