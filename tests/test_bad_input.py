"""Bad input, generated (hypothesis): every typed option of every command, found by walking the real parser, fed
values its type or choices refuse; and the files commands read (allocation files, sweep files, datasets, adapter
folders) fed corrupt variants of valid ones. A command must answer exit status 2 and one line naming what is
wrong, with no traceback and no store written; a reader must either read the file or raise the one-sentence
GeodiagError the CLI prints, never another exception."""

import argparse
import contextlib
import io
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geodiag.cli.main import build_parser, main
from geodiag.errors import GeodiagError

# CI replays the same examples (a red build names a bug that reproduces); elsewhere each run explores new ones
FAST = settings(max_examples=60, deadline=None, derandomize=bool(os.environ.get("CI")),
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def typed_options() -> list[tuple[tuple[str, ...], str, argparse.Action]]:
    """(command path, flag, action) of every option that converts its value or checks choices."""
    found = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))
            elif action.option_strings and action.nargs is None and (action.type in (int, float) or action.choices):
                found.append((path, action.option_strings[-1], action))

    walk(build_parser(), ())
    return found


OPTIONS = typed_options()


def _parses(text: str, kind) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def refused(action: argparse.Action) -> st.SearchStrategy[str]:
    """Values the option's type or choices refuse ("--" among them: it once slipped past argparse as [])."""
    words = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
    if action.choices:
        return st.one_of(st.just("--"), words).filter(lambda v: not _chosen(v, action))
    return st.one_of(st.sampled_from(["abc", "1.5.2", "ten", "1e", "0x1g", "", "--"]), words).filter(
        lambda v: not _parses(v, action.type))


def _chosen(value: str, action: argparse.Action) -> bool:
    """Whether the value is one of the choices once the option's type has converted it."""
    if action.type is None:
        return value in action.choices
    return _parses(value, action.type) and action.type(value) in action.choices


def run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


def test_the_walk_finds_the_typed_options_of_every_command():
    commands = {path[0] for path, _, _ in OPTIONS}
    assert {"train", "sweep", "analyze", "allocate", "export", "dashboard"} <= commands
    assert ("train", "--steps") in {(p[0], f) for p, f, _ in OPTIONS} and len(OPTIONS) > 80


@FAST
@given(data=st.data())
def test_every_typed_option_refuses_a_bad_value_in_one_line(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default store would land here; none may appear
    path, flag, action = data.draw(st.sampled_from(OPTIONS), label="option")
    value = data.draw(refused(action), label="value")
    code, err = run([*path, f"{flag}={value}"])
    assert code == 2, (path, flag, value, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert flag in err, err  # the message names the flag
    assert not list(tmp_path.rglob("*.duckdb")) and not list(tmp_path.rglob("*.spool"))


def corrupt(raw: bytes) -> st.SearchStrategy[bytes]:
    """A valid file's bytes truncated, with bytes overwritten, or with junk spliced in."""
    cut = st.integers(0, len(raw)).map(lambda n: raw[:n])
    flip = st.dictionaries(st.integers(0, max(len(raw) - 1, 0)), st.integers(0, 255), min_size=1, max_size=6).map(
        lambda edits: bytes(edits.get(i, b) for i, b in enumerate(raw)))
    splice = st.tuples(st.integers(0, len(raw)), st.binary(min_size=1, max_size=16)).map(
        lambda t: raw[:t[0]] + t[1] + raw[t[0]:])
    return st.one_of(cut, flip, splice)


def reads_or_says(read, path: Path) -> None:
    try:
        read(path)
    except GeodiagError as e:
        assert str(e) and "\n" not in str(e).strip() and "Traceback" not in str(e)


@pytest.fixture(scope="module")
def allocation_text() -> str:
    from geodiag.allocation import ModuleShape, Settings, Vectors, plan, plan_json

    shapes = [ModuleShape(f"model.layers.{i}.self_attn.q_proj", 64, 64, i, "q") for i in range(2)]
    p = plan(Settings("lora-gid"), Vectors(gids={s.name: 3.0 + i for i, s in enumerate(shapes)}), shapes)
    return json.dumps(plan_json(p, source_run="r", model="tiny"))


@FAST
@given(data=st.data())
def test_a_corrupt_allocation_file_is_read_or_refused_in_a_sentence(data, allocation_text, tmp_path):
    from geodiag.allocation import read_allocation

    path = tmp_path / "a.json"
    path.write_bytes(data.draw(corrupt(allocation_text.encode())))
    reads_or_says(read_allocation, path)


SWEEP = "name: s\nmodel: tiny\nmethods:\n  lora: {r: 4}\n  dora: {lr: 1.0e-3}\nseeds: [0, 1]\nbudget: lora-r=4\n" \
        "lr_grid: [1.0e-4, 1.0e-3]\nsteps: 3\nworkers: 2\n"


@FAST
@given(data=st.data())
def test_a_corrupt_sweep_file_is_read_or_refused_in_a_sentence(data, tmp_path):
    from geodiag.config import read_mapping
    from geodiag.sweep import from_mapping

    path = tmp_path / "sweep.yaml"
    path.write_bytes(data.draw(corrupt(SWEEP.encode())))
    reads_or_says(lambda p: from_mapping(read_mapping(p)).cells(), path)


DATASET = "\n".join(json.dumps({"prompt": f"What is {a} plus {a}?", "response": str(2 * a)}) for a in range(1, 40))


@FAST
@given(data=st.data(), suffix=st.sampled_from([".jsonl", ".csv"]))
def test_a_corrupt_dataset_is_read_or_refused_in_a_sentence(data, suffix, tmp_path):
    from geodiag.data.files import load_file

    text = DATASET if suffix == ".jsonl" else "prompt,response\n" + "\n".join(
        f"What is {a} plus {a}?,{2 * a}" for a in range(1, 40))
    path = tmp_path / f"d{suffix}"
    path.write_bytes(data.draw(corrupt(text.encode())))
    reads_or_says(lambda p: load_file(p, n_eval=4, n_dev=2), path)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> Path:
    from peft import LoraConfig, get_peft_model

    from geodiag.models import load_model

    folder = tmp_path_factory.mktemp("adapter")
    get_peft_model(load_model("tiny").model, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(folder)
    return folder


@FAST
@given(data=st.data(), which=st.sampled_from(["adapter_config.json", "adapter_model.safetensors"]))
def test_a_corrupt_adapter_folder_is_read_or_refused_in_a_sentence(data, which, adapter, tmp_path):
    import shutil
    import tempfile

    from geodiag.integrations.peft_import import read_peft_adapter

    folder = Path(tempfile.mkdtemp(dir=tmp_path)) / "adapter"  # one per example: the fixture's folder is shared
    shutil.copytree(adapter, folder)
    (folder / which).write_bytes(data.draw(corrupt((adapter / which).read_bytes())))
    reads_or_says(read_peft_adapter, folder)


@settings(max_examples=25, deadline=None, derandomize=bool(os.environ.get("CI")),
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), which=st.sampled_from(["trainer_state.json", "adapter_config.json"]))
def test_a_corrupt_checkpoint_series_is_imported_or_refused_in_a_sentence(data, which, adapter, tmp_path):
    """A Trainer output folder (checkpoint-2, checkpoint-4) whose second checkpoint has a corrupt file: the series
    is imported whole or refused in a sentence, and a refused one leaves no run behind."""
    import shutil
    import tempfile

    from geodiag.integrations.peft_import import import_peft
    from geodiag.store import Reader

    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    state = json.dumps({"global_step": 4, "log_history": [{"step": 2, "loss": 1.5}, {"step": 4, "loss": 1.2}]})
    for step in (2, 4):
        shutil.copytree(adapter, folder / f"checkpoint-{step}")
        (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    target = folder / "checkpoint-4" / which
    target.write_bytes(data.draw(corrupt(target.read_bytes())))
    store = folder / "s.duckdb"
    try:
        import_peft(folder, store=str(store), progress=False)
    except GeodiagError as e:
        assert "\n" not in str(e).strip()
        runs = Reader(store).runs() if store.exists() else None
        assert runs is None or set(runs["status"]) <= {"failed"}  # a failed import says so; nothing half-done
