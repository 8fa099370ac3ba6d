"""Allocation rules are objects in a registry, and what reads allocations asks the registry or the store, never a
list kept by hand: a toy rule registered here plans, is offered for its analysis and is accepted in a file; a toy
method's recorded allocation appears in the atlas and in the outcome table without being named anywhere."""

import json

import pytest

from geodiag import allocation as alloc
from geodiag import names as n
from geodiag.allocation import Allocation, ModuleShape, Rule, Settings, Vectors, lora_params, plan, plan_json
from geodiag.errors import GeodiagError
from geodiag.figures import figure_data
from geodiag.lab.outcomes import outcomes
from geodiag.methods import METHODS, analysis_of
from geodiag.records import row
from geodiag.store import Reader, Writer

SHAPES = [ModuleShape(f"model.layers.{i}.self_attn.q_proj", 64, 64, i, "q") for i in range(2)]


def three_everywhere(settings: Settings, vectors: Vectors, shapes) -> list[Allocation]:
    return [Allocation(s.name, 3, 1, s.layer, s.module_type, lora_params(s, 3)) for s in shapes]


@pytest.fixture
def toy():
    rule = alloc.register_rule(Rule("toy", "spectra", three_everywhere, "a test's rule", alpha_ratio=4.0))
    yield rule
    alloc.RULES.pop("toy")


def test_a_registered_rule_plans_is_offered_and_is_accepted_in_a_file(toy, tmp_path):
    p = plan(Settings("toy"), Vectors(), SHAPES)
    assert [a.rank for a in p.allocations] == [3, 3] and set(p.alphas.values()) == {12.0}  # its alpha convention
    assert p.params == 2 * 3 * 128
    assert alloc.rules_reading("spectra")[-1] == "toy" and "toy" not in alloc.rules_reading("gid")
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(plan_json(p, source_run="r", model="tiny")))
    assert alloc.read_allocation(path).rule == "toy"
    alloc.RULES.pop("toy")
    with pytest.raises(GeodiagError, match="allocation files hold one of ralora, ralora-pro, lora-gid, gelora, alpha"):
        alloc.read_allocation(path)
    alloc.register_rule(toy)


def test_an_unknown_rule_lists_the_registered_ones_and_a_rule_must_read_a_known_analysis(toy):
    with pytest.raises(GeodiagError, match="choose one of ralora, .*, stable-rank, toy"):
        Settings("nope")
    with pytest.raises(ValueError, match="analysis must be one of gid, id, spectra"):
        Rule("bad", "weights", three_everywhere, "")


def test_methods_say_which_analysis_their_rule_reads():
    assert {m: analysis_of(m) for m in ("ralora", "ralora-pro", "lora-gid", "gelora", "lora")} == {
        "ralora": "gid", "ralora-pro": "gid", "lora-gid": "gid", "gelora": "id", "lora": None}
    assert all(METHODS[m].rule in alloc.RULES for m in METHODS if METHODS[m].rule)


def test_an_allocation_any_method_recorded_reaches_the_atlas_and_the_outcome_table(tmp_path):
    store = str(tmp_path / "s.duckdb")
    w = Writer(store)
    rid = w.create_run(name="toy run", kind="train", method="toy-method", model="tiny",
                       config={"method_options": {"r": 8}})
    rows = []
    for s, rank in zip(SHAPES, (2, 6), strict=True):
        where = {"module": s.name, "layer": s.layer, "module_type": s.module_type}
        rows += [row(0, 0.0, n.allocation("toy-method", "equivalent_rank"), rank, **where),
                 row(0, 0.0, n.allocation("toy-method", "params"), rank * 128, **where),
                 row(0, 0.0, n.GID, 4.0, **where)]
    w.append(rid, rows)
    w.set_status(rid, "finished")
    reader = Reader(store)
    atlas = figure_data(reader, "atlas", [rid])
    assert set(atlas["name"]) >= {"alloc/toy-method/equivalent_rank", "alloc/toy-method/params"}
    row_ = outcomes(reader, [rid]).iloc[0]
    assert row_["gid_rank_ratio"] == pytest.approx((4 / 2 + 4 / 6) / 2)  # the ranks it recorded, not r = 8
