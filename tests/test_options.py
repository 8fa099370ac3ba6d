"""One option schema: configs check their fields (naming the bad one), and the CLI flags are rendered from the
same OptionSpecs the Launch form uses."""

import pytest
from helpers import geodiag

from geodiag.config import AnalyzeConfig, TrainConfig
from geodiag.errors import GeodiagError
from geodiag.methods import METHODS
from geodiag.methods.manifold import ManifoldConfig
from geodiag.methods.ralora import RaLoraProConfig
from geodiag.options import schema, split_list


def test_schema_lists_every_method_with_defaults():
    assert {"lora", "adalora", "manifold", "ralora", "ralora-pro", "gelora", "lora-gid", "full"} <= set(METHODS)
    manifold = {s.name: s.default for s in schema(ManifoldConfig)}
    assert manifold["r_div"] == 16 and manifold["lambda_s"] == 0.01 and manifold["lambda_a"] == 0.1
    probe = next(s for s in schema(ManifoldConfig) if s.name == "probe_mode")
    assert probe.choices == ("learned", "pca") and probe.type == "str" and probe.flag == "--probe-mode"
    targets = next(s for s in schema(TrainConfig) if s.name == "target_modules")
    assert targets.type == "list" and targets.optional and targets.group == "advanced"


def test_fields_are_converted_losslessly_or_refused_by_name():
    cfg = TrainConfig(steps=3.0, lr=1, target_modules="q_proj, v_proj", trust_remote_code="false")
    assert cfg.steps == 3 and isinstance(cfg.lr, float) and cfg.target_modules == ["q_proj", "v_proj"]
    assert cfg.trust_remote_code is False
    for bad, message in [({"steps": "abc"}, "steps must be an integer, got 'abc'."),
                         ({"steps": 2.5}, "steps must be an integer, got 2.5."),
                         ({"lr": "fast"}, "lr must be a number, got 'fast'."),
                         ({"gradient_checkpointing": "maybe"}, "gradient_checkpointing must be true or false"),
                         ({"dtype": "fp8"}, "dtype must be auto, float32 or bfloat16, got 'fp8'."),
                         ({"method_options": [1]}, "method_options must be a mapping")]:
        with pytest.raises(GeodiagError, match=message):
            TrainConfig(**bad)
    with pytest.raises(GeodiagError, match="Unknown option.s. rank for the lora method; it takes alpha"):
        METHODS["lora"].config.from_dict({"rank": 4})
    assert split_list(" a, ,b ,") == ["a", "b"] and split_list(["a", " b"]) == ["a", "b"]


def test_an_option_belongs_to_the_analyses_it_applies_to():
    gid = {s.name for s in schema(AnalyzeConfig) if s.applies_to("gid")}
    ids = {s.name for s in schema(AnalyzeConfig) if s.applies_to("id")}
    assert {"gid_batches", "n_max", "block_rounding"} <= gid - ids and {"id_tokens", "pooling"} <= ids - gid
    assert "rank_rounding" in {s.name for s in schema(RaLoraProConfig)} - {s.name for s in schema(
        METHODS["ralora"].config)}


def test_train_help_renders_every_option_of_the_run_and_of_each_method():
    out = geodiag("train", "--help")
    assert out.returncode == 0
    for spec in schema(TrainConfig):
        assert (spec.flag in out.stdout) == (spec.group != "file"), spec.name
    for name, method in METHODS.items():
        own = [s for s in schema(method.config) if s.name != "target_modules"]
        if own:  # one section per method, listing its own options
            section = out.stdout.split(f"--method {name}: ")[1].split("\n\n")[0]
            assert all(s.flag in section for s in own), name
    assert "schema" not in geodiag("--help").stdout  # no hidden command behind the dashboard any more


def test_one_flag_name_per_concept_across_commands():
    train = {s.name for s in schema(TrainConfig)} | {s.name for m in METHODS.values() for s in schema(m.config)}
    analyze = {s.name for s in schema(AnalyzeConfig)}
    assert {"target_modules", "gid_batches", "id_tokens", "r", "n_max", "block_rounding", "gelora_scale"} <= \
        train & analyze
    assert not {"targets", "batches", "tokens", "rank"} & (train | analyze)


def test_a_usage_error_is_one_line():
    out = geodiag("train", "--steps", "many")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "argument --steps: invalid int value: 'many'" in out.stderr
