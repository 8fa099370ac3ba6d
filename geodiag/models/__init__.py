"""Loading models and finding the modules to adapt: the embedded SmolLM2 (`smollm2`), the tiny test model
(`tiny`), any Hugging Face causal LM; linear-module discovery, layer and module-type names."""

from geodiag.models.embedded import EMBEDDED, embedded_gguf, load_tokenizer_embedded
from geodiag.models.load import LoadedModel, load_model
from geodiag.models.modules import (
    MODULE_TYPES,
    backbone,
    decoder_layers,
    frozen_weight,
    hidden_size,
    layer_index,
    linear_modules,
    module_shapes,
    module_type,
    resolve_targets,
)
from geodiag.models.tiny import TINY, tiny_model

__all__ = ["EMBEDDED", "MODULE_TYPES", "TINY", "LoadedModel", "backbone", "decoder_layers", "embedded_gguf",
           "frozen_weight", "hidden_size", "layer_index", "linear_modules", "load_model", "load_tokenizer_embedded",
           "module_shapes", "module_type", "resolve_targets", "tiny_model"]
