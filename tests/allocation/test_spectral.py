"""The spectral rules (alpha, alpha-share, stable-rank) against ranks computed by hand, and their refusals."""

import math

import pytest

from geodiag.allocation import ModuleShape, Settings, Vectors, plan
from geodiag.errors import GeodiagError

A, B, C = ModuleShape("a", 64, 64), ModuleShape("b", 64, 32), ModuleShape("c", 128, 64)
SPECTRA = Vectors(alpha={"a": 2.0, "b": 4.0, "c": 6.0}, spikes={"a": 10.0, "b": 0.0, "c": 5.0},
                  stable_rank={"a": 10.0, "b": 20.0, "c": 30.0})


def ranks(rule: str, **settings) -> list[int]:
    return [a.rank for a in plan(Settings(rule, **settings), SPECTRA, [A, B, C]).allocations]


def test_alpha_is_linear_in_the_score_between_the_bounds():
    # norm alpha (0, .5, 1), norm spikes (1, 0, .5): scores 0, .65, .85 on [4, 16] -> 4, 11.8, 14.2
    assert ranks("alpha") == [4, 12, 14]
    assert ranks("alpha", r_min=2, r_max=6) == [2, 5, 5]  # 2 + .65 x 4 = 4.6, 2 + .85 x 4 = 5.4
    assert ranks("alpha", rank_rounding="floor") == [4, 11, 14]


def test_alpha_share_spends_loras_total_rank_in_proportion_to_alpha_to_the_two_and_a_half():
    # alpha^2.5 = 5.657, 32, 88.18 (sum 125.84) of 3 x 8 = 24 ranks -> 1.08, 6.10, 16.82
    assert ranks("alpha-share") == [1, 6, 17]
    p = plan(Settings("alpha-share"), SPECTRA, [A, B, C])
    assert set(p.alphas.values()) == {2.0, 12.0, 34.0}  # alpha = 2 r, as LoRA's default ratio


def test_stable_rank_shares_and_the_budget_scale():
    assert ranks("stable-rank") == [4, 8, 12]
    assert ranks("stable-rank", budget_scale=2.0) == [8, 16, 24]
    assert ranks("stable-rank", budget_scale=20.0) == [64, 32, 64]  # never above min(d_in, d_out)


@pytest.mark.parametrize("rule, vectors, message", [
    ("alpha", Vectors(alpha={"a": 2.0, "b": 3.0, "c": 4.0}), "alpha allocates from each module's spikes"),
    ("alpha-share", Vectors(alpha={"a": 2.0, "b": math.nan, "c": 4.0}), "no usable value for b"),
    ("stable-rank", Vectors(gids={"a": 1.0}), "pick a `geodiag analyze spectra` run"),
])
def test_missing_or_unusable_spectra_are_one_sentence(rule, vectors, message):
    with pytest.raises(GeodiagError, match=message):
        plan(Settings(rule), vectors, [A, B, C])


def test_the_papers_constants_are_defaults_that_move():
    # beta 0: equal shares, 8 each; alpha_weight 1: the score is norm(alpha) alone (0, .5, 1) on [4, 16]
    assert ranks("alpha-share", constants=(("beta", 0.0),)) == [8, 8, 8]
    assert ranks("alpha", constants=(("alpha_weight", 1.0),)) == [4, 10, 16]
    assert ranks("alpha", constants=(("alpha_weight", 0.7),)) == ranks("alpha")  # the paper's value is the default
    assert Settings("alpha-share").constant("beta") == 2.5


@pytest.mark.parametrize("rule, constants, message", [
    ("alpha-share", (("gamma", 1.0),), "The alpha-share rule has no constant 'gamma'; its constants are beta"),
    ("stable-rank", (("beta", 1.0),), "The stable-rank rule has no constant 'beta'; it has none"),
    ("alpha", (("alpha_weight", 1.5),), "alpha_weight must be a number between 0 and 1, got 1.5"),
    ("alpha-share", (("beta", math.nan),), "beta must be a number between 0 and 20"),
])
def test_a_constant_the_rule_does_not_have_or_out_of_range_is_one_sentence(rule, constants, message):
    with pytest.raises(GeodiagError, match=message):
        Settings(rule, constants=constants)
