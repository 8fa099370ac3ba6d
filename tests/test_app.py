"""The dashboard entry renders without exceptions on empty, populated and broken stores (AppTest)."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from geodiag.store import Writer

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def run_app(store) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["store"] = str(store)
    return at.run()


def test_lists_runs_of_a_store(tmp_path):
    store = tmp_path / "s.duckdb"
    Writer(store).create_run(name="alpha", kind="train", method="manifold", model="tiny")
    Writer(store).create_run(name="beta", kind="train", method="lora", model="tiny")
    at = run_app(store)
    assert not at.exception
    df = at.dataframe[0].value
    assert sorted(df["name"]) == ["alpha", "beta"]


@pytest.mark.parametrize("content, message", [
    (None, "There is no store at"),
    ("garbage", "is not a DuckDB database"),
])
def test_missing_or_broken_store_shows_one_sentence(tmp_path, content, message):
    store = tmp_path / "s.duckdb"
    if content is not None:
        store.write_text(content)
    at = run_app(store)
    assert not at.exception
    assert any(message in e.value for e in at.error)


def test_empty_store_says_so(tmp_path):
    from geodiag.store._db import connect

    store = tmp_path / "s.duckdb"
    with connect(store, read_only=False):  # a valid geodiag store with no runs
        pass
    at = run_app(store)
    assert not at.exception and "has no runs yet" in at.info[0].value
