"""Allocation rules against values computed by hand, including clip and divisibility edge cases."""

import pytest

from geodiag.allocation import (
    ModuleShape,
    Settings,
    Vectors,
    gelora,
    gelora_ranks,
    lora_gid,
    lora_params,
    plan,
    ralora_blocks,
)
from geodiag.errors import GeodiagError

Q = ModuleShape("layers.0.q", 576, 576, 0, "q")
V = ModuleShape("layers.0.v", 576, 192, 0, "v")


@pytest.mark.parametrize("gid, rounding, expected", [
    (40.0, "floor", 4),    # log2(40/8) = 2.32 -> 2 -> 4 blocks
    (40.0, "ceil", 8),     # -> 3 -> 8 (Eq. 4 as printed)
    (40.0, "round", 4),
    (5.0, "floor", 1),     # GID below r: exponent clipped at 0
    (0.0, "floor", 1),
    (1e6, "floor", 32),    # clipped at n_max = 32
])
def test_ralora_blocks(gid, rounding, expected):
    assert ralora_blocks(gid, 8, Q, rounding=rounding) == expected


def test_ralora_blocks_lowered_until_they_tile_the_matrix():
    # 192 / 32 = 6 < r = 8: a 6-wide block cannot hold rank 8, so 32 -> 16 (192 / 16 = 12)
    assert ralora_blocks(1e6, 8, V) == 16
    # 8 blocks do not divide d_in = 100; 4 do (and 60 / 4 = 15 >= 8)
    assert ralora_blocks(64.0, 8, ModuleShape("odd", 100, 60)) == 4
    # an odd dimension allows only one block
    assert ralora_blocks(1e6, 2, ModuleShape("prime", 97, 64)) == 1


def ralora(gids, shapes, **settings):
    return list(plan(Settings("ralora", **settings), Vectors(gids=gids), shapes).allocations)


def ralora_pro_ranks(importance, shapes, r_ref=8, **settings):
    vectors = Vectors(gids={s.name: 1.0 for s in shapes}, importance=importance)
    return {a.module: a.rank for a in plan(Settings("ralora-pro", r=r_ref, **settings), vectors, shapes).allocations}


def test_ralora_keeps_lora_parameter_count():
    allocs = ralora({"layers.0.q": 100.0, "layers.0.v": 20.0}, [Q, V], r=8)
    assert [a.blocks for a in allocs] == [8, 2]
    assert [a.params for a in allocs] == [8 * (576 + 576), 8 * (576 + 192)]
    assert [a.equivalent_rank for a in allocs] == [64, 16]


A = ModuleShape("a", 64, 64)
B = ModuleShape("b", 64, 32)


def test_ralora_pro_ranks_by_hand():
    # P_total = 8 (sqrt(128) + sqrt(96)) = 168.893; alpha = (0.75, 0.25)
    # r_a = 168.893 * 0.75 / 11.3137 = 11.196; r_b = 168.893 * 0.25 / 9.79796 = 4.309
    assert ralora_pro_ranks({"a": 3.0, "b": 1.0}, [A, B]) == {"a": 11, "b": 4}
    assert ralora_pro_ranks({"a": 3.0, "b": 1.0}, [A, B], rank_rounding="ceil") == {"a": 12, "b": 5}
    # all importance on a: 168.893 / 11.3137 = 14.93 -> 15; b clipped up to r_min = 4
    assert ralora_pro_ranks({"a": 1.0, "b": 0.0}, [A, B]) == {"a": 15, "b": 4}
    # clipped down to r_max = 2 r_ref = 16 when the share exceeds it
    assert ralora_pro_ranks({"a": 1.0, "b": 0.0}, [A, B], r_ref=8, r_max=12) == {"a": 12, "b": 4}
    with pytest.raises(GeodiagError, match="sum to zero"):
        ralora_pro_ranks({"a": 0.0, "b": 0.0}, [A, B])


def test_ralora_pro_combines_ranks_and_blocks():
    allocs = plan(Settings("ralora-pro"), Vectors(gids={"a": 200.0, "b": 9.0}, importance={"a": 3.0, "b": 1.0}),
                  [A, B]).allocations
    # a: r = 11, log2(200 / 11) = 4.18 -> 16 blocks, but 64 / 16 = 4 < 11 -> 8 (8 < 11) -> 4 (16 >= 11)
    # b: r = 4, log2(9 / 4) = 1.17 -> 2 blocks (32 / 2 = 16 >= 4)
    assert [(x.rank, x.blocks) for x in allocs] == [(11, 4), (4, 2)]
    assert [x.params for x in allocs] == [lora_params(A, 11), lora_params(B, 4)]


def test_lora_gid_rounds_and_clips():
    allocs = lora_gid({"a": 7.4, "b": 0.3}, [A, B])
    assert [x.rank for x in allocs] == [7, 1]
    assert lora_gid({"b": 1000.0}, [B])[0].rank == 32  # at most min(d_in, d_out)


def test_gelora_rule_on_a_fixed_profile():
    ids = [10.0, 14.0, 12.0, 20.5]  # d_0 (entering block 0) .. d_3 (leaving block 2)
    assert gelora_ranks(ids) == [5, 1, 10]  # max(d_{i+1} - d_i, 0) + 1, rounded
    assert gelora_ranks(ids, scale=2.0) == [10, 2, 19]  # 2 * (8.5 + 1)
    shapes = [ModuleShape(f"layers.{i}.q", 64, 64, i, "q") for i in range(3)]
    allocs = gelora(ids, shapes)
    assert [x.rank for x in allocs] == [5, 1, 10]
    assert sum(x.params for x in allocs) == (5 + 1 + 10) * 128
    with pytest.raises(ValueError, match="before and after"):
        gelora_ranks([3.0])
