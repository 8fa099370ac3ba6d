"""The package's shape, checked: no import cycle between geodiag's subpackages (imports inside functions
count), the dashboard side never reaches torch, models or methods, the engine flows one way, functions fit on
a screen, __init__.py files only re-export, metric names are spelled once, and references name papers."""

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

import geodiag.names as names

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "geodiag"
SOURCES = sorted(PACKAGE.rglob("*.py"))
UI_SOURCES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
ENGINE = {"models", "methods", "collectors", "analysis", "train", "integrations"}
HEAVY = ("torch", "transformers", "peft")


def unit(path: Path) -> str:
    """The subpackage (or top-level module) a file belongs to: geodiag/methods/lora/model.py -> methods."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0] if parts[0] != "__init__" else "geodiag"


def imports(path: Path) -> set[str]:
    """Every module name a file imports, anywhere in it (inside functions too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            if node.module == "geodiag":  # from geodiag import figures
                out |= {f"geodiag.{a.name}" for a in node.names}
    return out


def graph() -> dict[str, set[str]]:
    edges = defaultdict(set)
    for path in SOURCES:
        for name in imports(path):
            parts = name.split(".")
            if parts[0] == "geodiag" and len(parts) > 1 and parts[1] != unit(path):
                edges[unit(path)].add(parts[1])
    return edges


def closure(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_cycles_between_subpackages():
    edges = graph()
    cycles = sorted(u for u in edges if u in closure(u, edges))
    assert not cycles, {u: sorted(edges[u]) for u in cycles}


def test_the_dashboard_side_never_reaches_torch_models_or_methods():
    edges = graph()
    for side in ("store", "figures", "report", "ui"):
        reach = closure(side, edges) | {side}
        assert not reach & ENGINE, (side, sorted(reach & ENGINE))
        heavy = [(p.name, m) for p in SOURCES if unit(p) in reach for m in imports(p) if m.split(".")[0] in HEAVY]
        assert not heavy, (side, heavy)
    for path in UI_SOURCES:
        assert not {m.split(".")[0] for m in imports(path)} & set(HEAVY), path.name
        engine = {m.split(".")[1] for m in imports(path) if m.startswith("geodiag.")} & ENGINE
        assert engine <= {"methods"}, path.name  # Launch lists the methods' torch-free configs


def test_the_engine_flows_one_way():
    edges = graph()
    assert not closure("names", edges) and closure("options", edges) <= {"errors"}
    assert not closure("methods", edges) & {"collectors", "train", "analysis", "store", "integrations"}
    assert not closure("collectors", edges) & {"train", "analysis", "integrations"}
    assert not closure("analysis", edges) & {"methods", "collectors", "train"}  # methods get their GIDs handed
    assert not closure("models", edges) & {"methods", "collectors", "train", "analysis"}


def test_configs_and_the_method_registry_are_torch_free():
    for path in SOURCES:
        rel = path.relative_to(PACKAGE).as_posix()
        torch_free = rel in ("config.py", "options.py", "names.py", "cache.py") or rel.startswith(
            ("data/__init__", "data/types", "data/tasks", "data/files", "data/load", "allocation/")) or (
            rel.startswith("methods/") and path.name in ("__init__.py", "config.py", "context.py", "registry.py"))
        if torch_free:
            assert not {m.split(".")[0] for m in imports(path)} & set(HEAVY), rel


def test_no_function_is_longer_than_a_screen():
    long = []
    for path in SOURCES + UI_SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not long


@pytest.mark.parametrize("path", [p for p in SOURCES if p.name == "__init__.py"], ids=lambda p: str(p.parent.name))
def test_init_files_only_re_export(path):
    for node in ast.parse(path.read_text()).body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        dunder = isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id in ("__all__", "__version__")
                                                      for t in node.targets)
        assert docstring or dunder or isinstance(node, ast.Import | ast.ImportFrom), (path, ast.unparse(node)[:80])


METRIC = re.compile(r"(loss|gate|probe|geometry|spectrum|adalora|dora|intruders|gid|eval|id|fisher|alloc|params"
                    r"|subspace|analysis|dev|item|forget|esd)/[a-z0-9_/]+")


def test_metric_names_are_spelled_once():
    spelled = {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
    spelled |= set(names.GID_FISHER.values())
    assert all(METRIC.fullmatch(v) for v in spelled if "/" in v)
    literals = []
    for path in SOURCES + UI_SOURCES:
        if path.name == "names.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and METRIC.fullmatch(node.value):
                literals.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value}")
    assert not literals


def test_references_name_papers_not_internal_documents():
    pattern = re.compile(r"\bSPEC\b|paper 00\d|\b00[123] (§|Eq|Fig|Table|App)|\(00[123]\b")
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in [*SOURCES, *UI_SOURCES, ROOT / "README.md"]
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits
