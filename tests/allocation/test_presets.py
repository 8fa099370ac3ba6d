"""The allocation lab's presets on vectors computed by hand (clip, divisibility and rounding edge cases), the file
`geodiag allocate` writes, and what peft and `geodiag train --allocation` build from it."""

import json

import pytest

from geodiag.allocation import ModuleShape, Settings, Vectors, plan, plan_json, read_allocation
from geodiag.errors import GeodiagError

Q = ModuleShape("model.layers.0.self_attn.q_proj", 576, 576, 0, "q")  # d_in, d_out
V = ModuleShape("model.layers.0.self_attn.v_proj", 576, 192, 0, "v")
ODD = ModuleShape("model.layers.1.self_attn.v_proj", 576, 100, 1, "v")  # 100 = 4 x 25: 8 blocks do not tile it


def ranks(p):
    return {a.module.split(".")[-1] + str(a.layer): (a.rank, a.blocks) for a in p.allocations}


def test_ralora_pro_official_floors_the_rounded_share_with_identity_features():
    # B = (1152 + 768) * 8 = 15360; Q: round(0.7 B) = 10752, / 1152 = 9.33 -> 9; V: 4608 / 768 = 6
    # blocks: floor(log2 40 - log2 9) = floor(2.15) = 2 -> 4; floor(log2 12 - log2 6) = 1 -> 2
    vec = Vectors(gids={Q.name: 40.0, V.name: 12.0}, importance={Q.name: 0.7, V.name: 0.3})
    p = plan(Settings("ralora-pro", "official", r=8), vec, [Q, V])
    assert ranks(p) == {"q_proj0": (9, 4), "v_proj0": (6, 2)}
    assert p.params == 9 * 1152 + 6 * 768 == p.peft_params
    assert p.lora_params == 15360
    assert p.alphas == {Q.name: 18.0, V.name: 12.0}


def test_ralora_pro_paper_and_lycoris_use_sqrt_features_and_clip_to_half_and_double():
    # budget = 8 (sqrt 1152 + sqrt 768) = 493.23; Q: 0.7 * 493.23 / 33.94 = 10.17 -> 10; V: 147.97 / 27.71 = 5.34 -> 5
    vec = Vectors(gids={Q.name: 40.0, V.name: 12.0}, importance={Q.name: 0.7, V.name: 0.3})
    paper = plan(Settings("ralora-pro", "paper", r=8), vec, [Q, V])
    assert [a.rank for a in paper.allocations] == [10, 5]
    lycoris = plan(Settings("ralora-pro", "lycoris", r=8), vec, [Q, V])
    assert [a.rank for a in lycoris.allocations] == [10, 5]
    assert lycoris.alphas == {Q.name: 10.0, V.name: 5.0}  # alpha = rank
    # one module takes nearly all the importance: budget 8 (sqrt 1152 + 2 sqrt 768) = 714.9, / 33.94 = 21.1 for Q:
    # paper clips it at 2r = 16 and the others at r/2 = 4; official: 21504 / 1152 = 18.7 -> 18, the others at 1
    v1 = ModuleShape("model.layers.1.self_attn.v_proj", 576, 192, 1, "v")
    skew = Vectors(gids={Q.name: 40.0, V.name: 12.0, v1.name: 12.0},
                   importance={Q.name: 1.0, V.name: 1e-6, v1.name: 1e-6})
    assert [a.rank for a in plan(Settings("ralora-pro", "paper", r=8), skew, [Q, V, v1]).allocations] == [16, 4, 4]
    assert [a.rank for a in plan(Settings("ralora-pro", "official", r=8), skew, [Q, V, v1]).allocations] == [18, 1, 1]
    # the lab's own clip replaces the preset's
    assert [a.rank for a in plan(Settings("ralora-pro", "paper", r=8, r_min=2, r_max=12), skew,
                                 [Q, V, v1]).allocations] == [12, 2, 2]


def test_official_blocks_raise_when_they_do_not_tile_and_paper_halves_them():
    vec = Vectors(gids={ODD.name: 70.0})  # floor(log2 70 - log2 8) = floor(3.13) = 3 -> 8 blocks; 100 % 8 != 0
    with pytest.raises(GeodiagError, match=r"8 blocks do not divide .*v_proj \(100x576\)"):
        plan(Settings("ralora", "official", r=8), vec, [ODD])
    assert ranks(plan(Settings("ralora", "paper", r=8), vec, [ODD])) == {"v_proj1": (8, 4)}
    # n_max caps the exponent before the divisibility check: 4 blocks tile 100 x 576
    assert ranks(plan(Settings("ralora", "official", r=8, n_max=4), vec, [ODD])) == {"v_proj1": (8, 4)}


@pytest.mark.parametrize("rounding, scale, expected", [
    ("round", 1.0, [2, 4]),   # Python rounds halves to even: 2.5 -> 2, 3.5 -> 4
    ("ceil", 1.0, [3, 4]),
    ("floor", 1.0, [2, 3]),
    ("round", 2.0, [5, 7]),   # the budget scale multiplies the GIDs first
    ("floor", 0.1, [1, 1]),   # at least 1
])
def test_lora_gid_rounding_and_scale(rounding, scale, expected):
    vec = Vectors(gids={Q.name: 2.5, V.name: 3.5})
    p = plan(Settings("lora-gid", "paper", rank_rounding=rounding, budget_scale=scale), vec, [Q, V])
    assert [a.rank for a in p.allocations] == expected


def test_gelora_from_the_profile_with_the_labs_clip():
    vec = Vectors(ids={0: 5.0, 1: 9.0, 2: 8.0})  # block 0: 9 - 5 + 1 = 5; block 1: max(8 - 9, 0) + 1 = 1
    p = plan(Settings("gelora", "paper"), vec, [Q, V, ODD])
    assert [a.rank for a in p.allocations] == [5, 5, 1]
    assert p.alphas[Q.name] == 160.0  # GeLoRA's alpha = 32 r
    clipped = plan(Settings("gelora", "paper", r_min=2, r_max=3), vec, [Q, V, ODD])
    assert [a.rank for a in clipped.allocations] == [3, 3, 2]


@pytest.mark.parametrize("settings, vectors, message", [
    (dict(rule="ralora", preset="nope"), Vectors(gids={Q.name: 1.0}), "There is no preset 'nope'"),
    (dict(rule="lora+gid"), Vectors(gids={Q.name: 1.0}), "There is no allocation rule"),
    (dict(rule="gelora"), Vectors(gids={Q.name: 1.0}), "pick a `geodiag analyze id` run"),
    (dict(rule="ralora"), Vectors(ids={0: 1.0, 1: 2.0}), "has none for model.layers.0"),
    (dict(rule="ralora-pro"), Vectors(gids={Q.name: 1.0}), "needs importances"),
    (dict(rule="ralora", n_max=6), Vectors(gids={Q.name: 1.0}), "a power of two"),
])
def test_bad_settings_are_one_sentence(settings, vectors, message):
    with pytest.raises(GeodiagError, match=message):
        plan(Settings(**settings), vectors, [Q])


def _tiny_plan(rule: str, preset: str):
    from geodiag.models import module_shapes, resolve_targets, tiny_model

    model = tiny_model(256)
    shapes = module_shapes(model, resolve_targets(model, ["q_proj", "v_proj"]))
    gids = {s.name: 3.0 + 9 * i for i, s in enumerate(shapes)}  # 3, 12, 21, 30: blocks 1, 1, 2, 2 at r = 8
    vec = Vectors(gids=gids, importance={s.name: 1.0 + i for i, s in enumerate(shapes)})
    return model, plan(Settings(rule, preset, r=8), vec, shapes)


@pytest.mark.parametrize("rule, preset", [("ralora-pro", "official"), ("lora-gid", "lycoris"), ("ralora", "paper")])
def test_the_json_builds_a_peft_model_with_exactly_peft_params(tmp_path, rule, preset):
    import peft

    model, p = _tiny_plan(rule, preset)
    path = tmp_path / "a.json"
    path.write_text(json.dumps(plan_json(p, source_run="r1", model="tiny")))
    data = json.loads(path.read_text())
    assert set(data) >= {"rule", "preset", "source_run", "r", "target_modules", "shapes", "rank_pattern",
                         "alpha_pattern", "blocks", "params", "peft_params"}
    assert len(set(data["rank_pattern"].values())) > 1 or rule == "ralora"  # a pattern peft must really read
    cfg = peft.LoraConfig(r=data["r"], rank_pattern=data["rank_pattern"], alpha_pattern=data["alpha_pattern"],
                          target_modules=data["target_modules"])
    pm = peft.get_peft_model(model, cfg)
    trained = sum(t.numel() for t in pm.parameters() if t.requires_grad)
    assert trained == data["peft_params"]
    if rule == "ralora":
        assert "note" in data and max(data["blocks"].values()) == 2  # peft gets the per-block rank only
    back = read_allocation(path)
    assert back.ranks == data["rank_pattern"] and back.rule == rule


def test_a_file_for_another_model_is_refused_in_one_sentence(tmp_path):
    from geodiag.models import module_shapes, resolve_targets, tiny_model

    _, p = _tiny_plan("lora-gid", "paper")
    data = plan_json(p, source_run="r1", model="tiny")
    data["shapes"] = {m: [576, 576] for m in data["shapes"]}
    data["model"] = "smollm2"
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    model = tiny_model(256)
    with pytest.raises(GeodiagError, match=r"made for smollm2, where model.layers.0.self_attn.q_proj is 576x576; in "
                                           r"tiny it is 64x64"):
        read_allocation(path).check(module_shapes(model, resolve_targets(model, ["q_proj", "v_proj"])), "tiny")
    path.write_text("{not json")
    with pytest.raises(GeodiagError, match="not an allocation file"):
        read_allocation(path)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["rank_pattern"].update({next(iter(d["rank_pattern"])): -4}), "rank of .* as -4; it must be"),
    (lambda d: d["rank_pattern"].update({next(iter(d["rank_pattern"])): 2.5}), "as 2.5; it must be a positive whole"),
    (lambda d: d["alpha_pattern"].update({next(iter(d["alpha_pattern"])): "big"}), "alpha of .* as 'big'"),
    (lambda d: d["shapes"].update({next(iter(d["shapes"])): [64]}), "the shape \\[64\\]; a shape is \\[d_out, d_in\\]"),
    (lambda d: d.update(blocks={next(iter(d["shapes"])): 3}), "into 3 blocks, which do not tile it"),
    (lambda d: d.update(rank_pattern=[1, 2]), "rank_pattern must map module names to values"),
    (lambda d: d.update(r=0), "gives the r as 0"),
])
def test_a_corrupt_allocation_file_is_one_sentence(tmp_path, change, message):
    """What a hand edit can break is refused when the file is read, before peft sees it (a negative rank once
    escaped as peft's traceback)."""
    _, p = _tiny_plan("lora-gid", "paper")
    data = plan_json(p, source_run="r1", model="tiny")
    change(data)
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    with pytest.raises(GeodiagError, match=message):
        read_allocation(path)
    with pytest.raises(GeodiagError, match="cannot be read as an allocation file"):
        read_allocation(tmp_path)  # a folder


def test_r_min_above_r_max_is_one_sentence():
    with pytest.raises(GeodiagError, match=r"r_min \(9\) is above r_max \(4\)"):
        Settings("lora-gid", r_min=9, r_max=4)
    with pytest.raises(GeodiagError, match="r_min must be a positive whole rank, got 0"):
        Settings("lora-gid", r_min=0)
