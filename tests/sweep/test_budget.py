"""Each method's budget sizer against the method itself: the count a sizer promises is what the built adapter
trains (ManifoldLoRA: its adapters, the probes apart), on the tiny model."""

import pytest

from geodiag import methods
from geodiag.allocation import Vectors
from geodiag.allocation.budget import TOLERANCE, Budget, Geometry
from geodiag.errors import GeodiagError
from geodiag.models import module_shapes, resolve_targets, tiny_model

TARGETS = ["q_proj", "v_proj"]


class Handed:
    """Measurements as a stored analysis would hand them (a BuildContext's `measurements`)."""

    def __init__(self, vectors: Vectors):
        self.vectors = vectors

    def gids(self, targets, from_analysis, batches):
        return dict(self.vectors.gids), dict(self.vectors.importance)

    def id_profile(self, from_analysis, tokens):
        return [self.vectors.ids[i] for i in sorted(self.vectors.ids)]


def geometry():
    model = tiny_model(256)
    shapes = tuple(module_shapes(model, resolve_targets(model, TARGETS)))
    vectors = Vectors(gids={s.name: 2.0 + 5 * i for i, s in enumerate(shapes)},
                      importance={s.name: 1.0 + i for i, s in enumerate(shapes)}, ids={0: 4.0, 1: 9.0, 2: 11.0})
    return shapes, vectors


@pytest.mark.parametrize("method, r", [("lora", 4), ("dora", 4), ("ralora", 4), ("ralora-pro", 4), ("lora-gid", 4),
                                       ("gelora", 4), ("manifold", 2), ("eva", 4)])
def test_the_sized_count_is_what_the_method_trains(method, r):
    shapes, vectors = geometry()
    target = Budget(r).params(shapes)
    sized = methods.get_method(method).size(target, Geometry(shapes, vectors))
    assert sized is not None and sized.error(target) <= TOLERANCE
    if method == "eva":  # its ranks move only once its SVD has run on data: sized as LoRA at r
        assert sized.options == {"r": r} and sized.params == target
        return
    context = methods.BuildContext(measurements=Handed(vectors))
    adapted = methods.build(method, tiny_model(256), {**sized.options, "target_modules": TARGETS}, context=context)
    trained = adapted.trainable_parameters()
    if method == "manifold":
        trained -= sum(p.numel() for p in adapted.probes.parameters())  # training-time only: not in the budget
    assert trained == sized.params
    if method in ("lora", "ralora"):
        assert sized.params == target  # equal by construction


def test_a_budget_is_lora_at_a_rank_or_a_sentence():
    shapes, _ = geometry()
    assert Budget.parse("lora-r=8").params(shapes) == 8 * sum(s.d_in + s.d_out for s in shapes)
    for bad in ("lora-r=0", "r=8", "lora-r=x", ""):
        with pytest.raises(GeodiagError, match="--budget takes lora-r=N"):
            Budget.parse(bad)
