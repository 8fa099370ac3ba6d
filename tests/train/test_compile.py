"""Hook adapters under torch.compile: the training forward traces with no graph break and gives the eager
loss and gradients (aot_eager: dynamo's tracing and autograd without inductor's minutes of code generation);
a method whose forward keeps Python-side statistics is refused in one sentence."""

import pytest
import torch
import torch._dynamo
from helpers import geodiag

from geodiag import methods
from geodiag.data import load_task
from geodiag.data.tokenise import collate, encode
from geodiag.models import load_model


class FixedGids:
    """GIDs 4, 8, 12, ...: at r = 2 RaLoRA stacks 2, 4, 4, 8, ... blocks (block-diagonal adapters of several
    shapes)."""

    def gids(self, targets, from_analysis, batches):
        return {t: 4.0 * (i + 1) for i, t in enumerate(targets)}, dict.fromkeys(targets, 1.0)


@pytest.mark.parametrize("method, options", [("manifold", {"r_div": 4}), ("ralora", {"r": 2})])
def test_hook_adapters_trace_without_graph_breaks_and_match_eager(method, options):
    lm = load_model("tiny")
    adapted = methods.build(method, lm.model, options, context=methods.BuildContext(measurements=FixedGids()))
    data = load_task("basic_arithmetic", n_train=8, n_eval=1)
    batch = collate([encode(lm.tokenizer, ex, 48) for ex in data.train[:4]], lm.tokenizer.pad_token_id)
    params = adapted.trainable()
    for p in params:  # move off the zero init so every factor has a gradient
        p.data.add_(0.01 * torch.randn_like(p))

    eager = lm.model(**batch).loss
    want = torch.autograd.grad(eager, params, allow_unused=True)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = torch.compile(lm.model, backend="aot_eager")(**batch).loss
    got = torch.autograd.grad(compiled, params, allow_unused=True)

    assert not torch._dynamo.utils.counters["graph_break"]
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    assert sum(g is not None for g in want) > 0
    for w, g in zip(want, got, strict=True):
        assert (w is None) == (g is None)
        if w is not None:
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)


def test_compile_refuses_pca_probes_in_one_sentence(tmp_path):
    out = geodiag("train", "--model", "tiny", "--method", "manifold", "--probe-mode", "pca", "--torch-compile",
                  "--steps", "1", "--store", str(tmp_path / "s.duckdb"), "--no-progress")
    assert out.returncode == 2
    assert out.stderr.strip() == ("geodiag: error: --torch-compile cannot trace manifold with these options (its "
                                  "forward keeps Python-side statistics); leave out --torch-compile.")
