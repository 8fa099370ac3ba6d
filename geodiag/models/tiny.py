"""A small random Llama of the embedded model's architecture family, for tests and quick demos."""

from __future__ import annotations

import torch
from torch import nn

TINY = "tiny"


def tiny_model(vocab_size: int, *, seed: int = 0, layers: int = 2, hidden: int = 64) -> nn.Module:
    """Real architecture (RMSNorm, RoPE, GQA, SwiGLU), test-sized."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, tie_word_embeddings=True)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg)
