"""Layers point down: the import graph of every module in the package, read from the source (ast).

Layers, bottom to top:

    core        trustframe/*.py (errors, media, settings, weights, training, ...), and the module-level
                part of trustframe/__init__.py (__version__, the errors, Frames)
    components  trustframe.generator, .watermark, .provenance, .detector
    service     trustframe.service (audit, batch, http, cli, ...)
    entry       trustframe.cli (the command-line root that mounts every component's commands) and the
                public API functions of trustframe/__init__.py (audit, audit_many, sign, generate, Verdict)

A module may import its own layer and the layers below it. Imports inside functions (lazy imports)
count as edges like any other: a lazy import runs whenever its function is called. One node is split:
trustframe/__init__.py's function-level imports belong to the public API functions, which run only
when a caller outside the package calls them (`test_no_module_calls_the_public_api` checks that no
module of the package imports them), so `from trustframe import __version__` does not pull the
service in. Run this file as a script to print the graph's summary.
"""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ("trustframe.generator", "trustframe.watermark", "trustframe.provenance", "trustframe.detector")
SERVICE = "trustframe.service"
FACADE, FACADE_API = "trustframe", "trustframe:api"  # trustframe/__init__.py, split as the docstring says
ENTRY = {"trustframe.cli", FACADE_API}
PUBLIC_API = {"audit", "audit_many", "sign", "generate", "Verdict"}


def modules() -> dict[str, Path]:
    """Every module of the package (dotted name -> file), by pyproject's package-dir mapping."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = {}
    for package, folder in cfg["tool"]["setuptools"]["package-dir"].items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            if package == "trustframe" and len(parts) > 1:
                continue  # the component folders are mapped on their own
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def _in_function(tree: ast.AST) -> set[int]:
    """ids of the import nodes that sit inside a function body."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside |= {id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)}
    return inside


def imports(name: str, path: Path, known: set[str]) -> dict[str, set[str]]:
    """node -> the package modules it imports (module-level and lazy). `from X import y` is an edge
    to X.y when that is a module, else to X; relative imports are resolved."""
    tree = ast.parse(path.read_text(), str(path))
    lazy = _in_function(tree) if name == FACADE else set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges: dict[str, set[str]] = defaultdict(set)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        source = FACADE_API if id(node) in lazy else name
        edges[source] |= {t for t in targets if t in known}
    return edges


def graph() -> dict[str, set[str]]:
    found = modules()
    g: dict[str, set[str]] = {m: set() for m in found} | {FACADE_API: set()}
    for name, path in found.items():
        for source, targets in imports(name, path, set(found)).items():
            g[source] |= targets - {source}
    return g


def layer(module: str) -> int:
    if module in ENTRY:
        return 3
    if module == SERVICE or module.startswith(SERVICE + "."):
        return 2
    if any(module == c or module.startswith(c + ".") for c in COMPONENTS):
        return 1
    return 0


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in g:
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(g[child]))))
                    break
                if child in on:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    scc = []
                    while True:
                        m = stack.pop()
                        on.discard(m)
                        scc.append(m)
                        if m == node:
                            break
                    if len(scc) > 1:
                        out.append(sorted(scc))
    return out


def upward(g: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in g.items() for b in targets if layer(b) > layer(a))


def test_the_graph_covers_every_layer():
    g = graph()
    assert len(g) > 50
    for c in (*COMPONENTS, SERVICE, "trustframe.media", "trustframe.cli"):
        assert c in g
    assert "trustframe.service.http.app" in g  # packages inside components are walked too
    assert "trustframe.service.cli" in g["trustframe.cli"]  # lazy imports count: _mount() imports inside


def test_no_component_or_core_module_imports_the_service():
    g = graph()
    bad = [e for e in upward(g) if layer(e.split(" -> ")[1]) == 2]
    assert bad == [], "component or core -> service:\n" + "\n".join(bad)


def test_core_imports_no_component():
    g = graph()
    bad = [f"{a} -> {b}" for a, targets in g.items() if layer(a) == 0 for b in targets if layer(b) > 0]
    assert bad == [], "core -> component:\n" + "\n".join(bad)


def test_nothing_imports_the_entry_points():
    g = graph()
    bad = [f"{a} -> {b}" for a, targets in g.items() for b in targets if b in ENTRY and a not in ENTRY]
    assert bad == []


def test_no_import_cycle():
    found = cycles(graph())
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_module_calls_the_public_api():
    """Why trustframe/__init__.py's function-level imports may sit apart: nothing in the package
    imports the public API functions that hold them."""
    bad = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "trustframe" and not node.level:
                bad += [f"{name}: {a.name}" for a in node.names if a.name in PUBLIC_API]
            if isinstance(node, ast.Import) and any(a.name == "trustframe" for a in node.names):
                bad.append(f"{name}: import trustframe")
    assert bad == []


def test_the_checks_find_a_planted_cycle_and_upward_edge():
    g = {"trustframe.media": {"trustframe.generator.models"},
         "trustframe.generator.models": {"trustframe.media"},
         "trustframe.watermark.api": {"trustframe.service.audit"}, "trustframe.service.audit": set()}
    assert cycles(g) == [["trustframe.generator.models", "trustframe.media"]]
    assert upward(g) == ["trustframe.media -> trustframe.generator.models",
                         "trustframe.watermark.api -> trustframe.service.audit"]


if __name__ == "__main__":
    g = graph()
    print(f"{len(g)} nodes, {sum(map(len, g.values()))} edges (lazy imports included)")
    print("upward edges:", *upward(g) or ["none"], sep="\n  ")
    print("cycles:", *[" <-> ".join(c) for c in cycles(g)] or ["none"], sep="\n  ")
