"""Methods on the tiny real-architecture model: ManifoldLoRA's algebra, parameter counts, reloading."""

import math

import pytest
import torch

from geodiag.errors import GeodiagError
from geodiag.methods import build
from geodiag.methods.hooks import load_adapter
from geodiag.methods.manifold.model import ManifoldAdapted, alignment_loss, r_max
from geodiag.models import linear_modules, load_model, tiny_model


@pytest.fixture(scope="module")
def tokenizer():
    return load_model("tiny").tokenizer


def fresh(tokenizer, seed=0):
    return tiny_model(len(tokenizer), seed=seed)


def randomise(adapted: ManifoldAdapted, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a in adapted.adapters_.values():
            a.B.copy_(torch.randn(a.B.shape, generator=g) * 0.1)
            a.gamma.copy_(torch.randn(a.gamma.shape, generator=g))
            a.tau.fill_(0.3)
        for p in adapted.probes:
            p.gamma.copy_(torch.randn(p.gamma.shape, generator=g))


def test_manifold_forward_equals_base_plus_gated_low_rank_update(tokenizer):
    model = fresh(tokenizer)
    adapted = build("manifold", model, {"r_div": 4, "scaling": 0.7})
    randomise(adapted)
    name = adapted.targets[0]
    lin = linear_modules(model)[name]
    a = adapted.adapters_[name.replace(".", "__")]
    x = torch.randn(3, 5, lin.in_features)
    g = torch.sigmoid(a.gamma / a.tau.exp())
    expected = x @ lin.weight.T + 0.7 * (x @ (a.B @ torch.diag(g) @ a.A).T)
    torch.testing.assert_close(lin(x), expected, rtol=1e-5, atol=1e-6)
    adapted.remove()
    torch.testing.assert_close(lin(x), x @ lin.weight.T)  # hooks gone: the untouched base layer


def test_alignment_loss_from_factors_equals_the_dense_formula(tokenizer):
    adapted = build("manifold", fresh(tokenizer), {"r_div": 2, "probe_div": 4, "scaling": 1.3})
    randomise(adapted)
    for _name, a, probe in adapted.probe_pairs():
        Q, gp = probe.basis(), probe.gates()
        dW = (1.3 * a.B @ torch.diag(a.gates()) @ a.A).double()  # (d_out, d_in), dense on purpose
        ratios = torch.linalg.vector_norm((dW @ Q.double()) * gp.double(), dim=1) / (
            torch.linalg.vector_norm(dW, dim=1) + 1e-8)
        expected = float(1 - ratios.mean().detach())
        assert float(alignment_loss(a, Q, gp, 1e-8).detach()) == pytest.approx(expected, rel=1e-5)


def test_alignment_starts_at_one_and_has_finite_gradients(tokenizer):
    adapted = build("manifold", fresh(tokenizer))
    losses = adapted.aux_losses(0.0)
    assert float(losses["loss/alignment"][0].detach()) == pytest.approx(1.0, abs=1e-6)
    assert float(losses["loss/sparsity"][0].detach()) == pytest.approx(0.5)
    total = sum(w * v for v, w in losses.values())
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in adapted.trainable() if p.grad is not None)


def test_r_max_probe_size_and_parameter_counts_match_the_formulas(tokenizer):
    model = fresh(tokenizer)
    base_total = sum(p.numel() for p in model.parameters())
    targets = ["q_proj", "v_proj", "down_proj"]
    adapted = build("manifold", model, {"r_div": 4, "probe_div": 8, "target_modules": targets})
    lin = linear_modules(model)
    expected = 0
    for name in adapted.targets:
        d_out, d_in = lin[name].out_features, lin[name].in_features
        r = r_max(d_out, d_in, 4)
        assert r == min(d_out, d_in) // 4
        assert adapted.adapters_[name.replace(".", "__")].A.shape == (r, d_in)
        expected += r * (d_in + d_out) + r + 1  # A, B, gate logits, log-temperature
    h, p = 64, 64 // 8
    expected += len(adapted.probes) * (h * p + p + 1)  # Phi, probe gates, probe temperature
    assert adapted.trainable_parameters() == expected
    assert adapted.total_parameters() == base_total + expected
    lora = build("lora", fresh(tokenizer), {"r": 4})
    assert lora.trainable_parameters() == sum(4 * (m.in_features + m.out_features)
                                              for n, m in linear_modules(fresh(tokenizer)).items()
                                              if n.endswith(("q_proj", "v_proj")))


def test_bad_method_options_name_the_field(tokenizer):
    model = fresh(tokenizer)
    with pytest.raises(GeodiagError, match="No linear module matches attn_qq; this model's linear modules are named"):
        build("manifold", model, {"target_modules": ["attn_qq"]})
    with pytest.raises(GeodiagError, match="r_div=1000 leaves no rank"):
        build("manifold", model, {"r_div": 1000})
    with pytest.raises(GeodiagError, match="probe_mode must be learned or pca, got 'magic'"):
        build("manifold", model, {"probe_mode": "magic"})
    with pytest.raises(GeodiagError, match="Unknown option"):
        build("lora", model, {"rank": 4})
    with pytest.raises(GeodiagError, match="target_r must be between 1 and init_r=4"):
        build("adalora", model, {"init_r": 4, "target_r": 9})
    with pytest.raises(GeodiagError, match=r"r=100 is larger than model.layers.0.self_attn.q_proj \(64x64\)"):
        build("lora", model, {"r": 100})
    with pytest.raises(GeodiagError, match="init_r=40 is larger than .*v_proj"):
        build("adalora", model, {"init_r": 40, "target_r": 8})
    with pytest.raises(GeodiagError, match="Unknown method 'vera'"):
        build("vera", model)
    with pytest.raises(GeodiagError, match="init_lora_weights must be default or gaussian, got 'pissa'"):
        build("dora", model, {"init_lora_weights": "pissa"})


def test_manifold_adapter_reloads_to_identical_outputs(tokenizer, tmp_path):
    adapted = build("manifold", fresh(tokenizer), {"r_div": 4})
    randomise(adapted)
    x = torch.randint(0, 1000, (2, 7))
    with torch.no_grad():
        before = adapted.model(input_ids=x).logits
    adapted.save(tmp_path)
    reloaded = load_adapter(fresh(tokenizer), tmp_path)
    with torch.no_grad():
        after = reloaded.model(input_ids=x).logits
    assert torch.equal(before, after)


def test_lora_adapter_reloads_with_peft(tokenizer, tmp_path):
    from peft import PeftModel

    adapted = build("lora", fresh(tokenizer), {"r": 4})
    with torch.no_grad():
        for n, p in adapted.model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    x = torch.randint(0, 1000, (2, 7))
    with torch.no_grad():
        before = adapted.model(input_ids=x).logits
    adapted.save(tmp_path)
    reloaded = PeftModel.from_pretrained(fresh(tokenizer), tmp_path)
    with torch.no_grad():
        assert torch.equal(before, reloaded(input_ids=x).logits)


def test_pca_probe_mode_spans_the_top_principal_directions(tokenizer):
    model = fresh(tokenizer)
    adapted = build("manifold", model, {"probe_mode": "pca", "probe_div": 8, "pca_every": 1})
    x = torch.randint(0, 1000, (4, 16))
    with torch.no_grad():
        model(input_ids=x)
    inputs = {}
    layer0 = [n for n in adapted.targets if ".0." in n][0]
    h = linear_modules(model)[layer0].register_forward_pre_hook(lambda m, a: inputs.setdefault("x", a[0]))
    with torch.no_grad():
        model(input_ids=x)
    h.remove()
    adapted._cov.clear()
    with torch.no_grad():
        model(input_ids=x)
    adapted.after_step(1)
    Q = adapted.probes[0].basis().double()
    X = inputs["x"].reshape(-1, 64).double()
    Xc = X - X.mean(0)
    top = torch.linalg.eigh(Xc.T @ Xc).eigenvectors.flip(1)[:, :8]
    # same subspace: the projector onto span(Q) equals the projector onto the top-8 eigenvectors
    torch.testing.assert_close(Q @ Q.T, top @ top.T, atol=1e-6, rtol=0)
    assert not math.isnan(float(adapted.aux_losses(0.5)["loss/alignment"][0].detach()))


def test_adalora_orthogonality_term_equals_peft_regulariser(tokenizer):
    """geodiag reports AdaLoRA's regulariser as loss/orthogonality instead of hiding it in loss/lm; it must be
    the very term peft adds when orth_reg_weight > 0."""
    from geodiag.data import Example
    from geodiag.data.tokenise import collate, encode

    adapted = build("adalora", fresh(tokenizer), {"init_r": 4, "target_r": 2, "orth_reg_weight": 0.5})
    batch = collate([encode(tokenizer, Example("What is 2 plus 2?", "4"), 32)], tokenizer.pad_token_id)
    value, weight = adapted.aux_losses(0.0)["loss/orthogonality"]
    cfg = adapted.model.peft_config["default"]
    plain = float(adapted.model(**batch).loss.detach())
    cfg.orth_reg_weight = 0.5
    with_reg = float(adapted.model(**batch).loss.detach())
    cfg.orth_reg_weight = 0.0
    assert weight == 0.5 and float(value.detach()) > 0
    assert with_reg - plain == pytest.approx(weight * float(value.detach()), rel=1e-5)


@pytest.mark.parametrize("method, options", [("manifold", {"r_div": 4, "gate_lr_ratio": 3.0}), ("lora", {"r": 2}),
                                             ("dora", {"r": 2}), ("adalora", {"init_r": 3, "target_r": 2}),
                                             ("full", {})])
def test_the_run_learning_rate_moves_every_parameter_group_keeping_their_ratios(tokenizer, method, options):
    adapted = build(method, fresh(tokenizer), options)
    low, high = adapted.param_groups(1e-4, 0.0), adapted.param_groups(3e-3, 0.0)
    assert [g["name"] for g in low] == [g["name"] for g in high]
    for a, b in zip(low, high, strict=True):  # no group keeps a rate of its own: a learning-rate sweep sweeps all
        assert b["lr"] == pytest.approx(30 * a["lr"])
    if method == "manifold":  # ManifoldLoRA §4.1's three groups, the gates at their ratio to the factors
        rates = {g["name"]: g["lr"] for g in low}
        assert rates["factors"] == 1e-4 and rates["gates"] == pytest.approx(3e-4) and rates["temperature"] == 1e-3
