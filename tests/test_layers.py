"""The package's shape: no module imports from a layer above it, no import cycles (counting imports inside
functions and under TYPE_CHECKING), one way to open a PostgreSQL connection, and only the commands' service
functions see ``Config``."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stsync"

# Lowest first. A module's layer is that of the longest prefix listed; it may import only from its own layer
# or the ones below.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("stsync.errors", "stsync.masking"),
    ("stsync.sqlfile", "stsync.files", "stsync.budget", "stsync.ratelimit", "stsync.retry", "stsync.httplog"),
    ("stsync.db",),
    ("stsync.servicetitan", "stsync.ghl.client", "stsync.ghl.stages"),
    ("stsync.config",),
    ("stsync.sync", "stsync.ghl", "stsync.events", "stsync.ops", "stsync.airtable"),
    ("stsync.sandbox",),
    (
        "stsync.sync.service",
        "stsync.ghl.service",
        "stsync.events.service",
        "stsync.ops.service",
        "stsync.checks",
        "stsync.demo",
    ),
    ("stsync.cli", "stsync.__main__"),
)
# Who may see the whole configuration: the command's service functions (and the CLI that loads it).
SEES_CONFIG = ("stsync.config", *LAYERS[-2], "stsync.cli")
# Who may open a PostgreSQL connection with the driver itself.
CONNECTS = ("stsync.db.connect",)


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names imported from it) for every import in the file, wherever it is."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [alias.name for alias in node.names]
            found.append((node.module, names))
            # `from stsync.ghl import plan` imports the module stsync.ghl.plan
            found += [(f"{node.module}.{n}", []) for n in names if f"{node.module}.{n}" in MODULES]
    return [(m, n) for m, n in found if m == "stsync" or m.startswith("stsync.")]


def _layer(module: str) -> int:
    best, layer = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), i
    assert layer >= 0, f"{module} is in no layer: add it to LAYERS"
    return layer


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_no_module_imports_from_a_layer_above_it() -> None:
    upward = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, path in MODULES.items()
        for target, _ in _imports(path)
        if target in MODULES and _layer(target) > _layer(module)
    ]
    assert upward == []


def test_there_are_no_import_cycles() -> None:
    graph = {m: sorted({t for t, _ in _imports(p) if t in MODULES and t != m}) for m, p in MODULES.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in graph[module]:
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    # A package's __init__ importing its own modules is how a package offers its names, not a cycle of design.
    assert [" -> ".join(c) for c in cycles if not all(m.startswith(c[0]) for m in c)] == []


def test_only_the_service_functions_see_config() -> None:
    seeing = [
        module
        for module, path in MODULES.items()
        for target, names in _imports(path)
        if target == "stsync.config" and "Config" in names and not _within(module, SEES_CONFIG)
    ]
    assert seeing == []


def test_one_connect_function() -> None:
    """Only stsync.db.connect calls the driver's connect (the others call it)."""
    calls = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect":
                text = ast.unparse(node.func)
                if text.startswith("psycopg") and not _within(module, CONNECTS):
                    calls.append(f"{module}: {text}")
    assert calls == []
