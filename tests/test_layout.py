"""The house plan, checked: import direction, no circles, layers, module size, Redis keys.

Every import counts, including those under `if TYPE_CHECKING:` and inside functions: a circle
for type hints is still a circle for a reader.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("enforcement", "loader", "varco", "deploy", "bench", "tests")
MAX_LINES = 400
# Longest chain of imports inside enforcement/, counting modules (a module importing nothing of
# ours is level 1), and counting its subpackages (core, config, replica, transits, audit, http;
# keys.py and durable.py on their own). Lower is better: a ratchet, not a goal.
MAX_MODULE_LEVELS = 9
MAX_PACKAGE_LEVELS = 4


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imported(name: str, path: Path, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The absolute names an import statement reaches (a module, or a name in a module)."""
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names)
        return
    base = node.module or ""
    if node.level:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    yield base
    yield from (f"{base}.{a.name}" for a in node.names)


@cache
def _graph() -> dict[str, frozenset[str]]:
    """Module -> the project's modules it imports."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(name, path, node):
                    if "._lookup" in f"{target}.":  # the C kernel: no Python module
                        continue
                    while target and target not in modules:
                        target = target.rpartition(".")[0]
                    if target and target != name and not name.startswith(f"{target}."):
                        deps.add(target)
        graph[name] = frozenset(deps)
    return graph


def _cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _levels(graph: dict[str, frozenset[str]]) -> dict[str, int]:
    """1 + the longest chain below each node (the graph must be acyclic)."""
    level: dict[str, int] = {}

    def of(v: str) -> int:
        if v not in level:
            level[v] = 1 + max((of(w) for w in graph[v]), default=0)
        return level[v]

    for v in graph:
        of(v)
    return level


def _within(prefix: str) -> dict[str, frozenset[str]]:
    graph = _graph()
    return {
        m: frozenset(d for d in deps if d.startswith(prefix))
        for m, deps in graph.items()
        if m.startswith(prefix)
    }


def _part(module: str) -> str:
    """enforcement.core.index -> core; enforcement.keys -> keys."""
    return module.split(".")[1] if module.count(".") else "(package)"


def _parts_graph() -> dict[str, frozenset[str]]:
    parts: dict[str, set[str]] = {}
    for module, deps in _within("enforcement.").items():
        parts.setdefault(_part(module), set()).update(
            _part(d) for d in deps if _part(d) != _part(module)
        )
    return {p: frozenset(d) for p, d in parts.items()}


def test_no_import_cycles_anywhere() -> None:
    assert _cycles(_graph()) == []


def test_enforcement_layers() -> None:
    modules = _within("enforcement.")
    module_levels = _levels(modules)
    deepest = max(module_levels, key=module_levels.__getitem__)
    assert module_levels[deepest] <= MAX_MODULE_LEVELS, (deepest, module_levels[deepest])
    parts = _parts_graph()
    assert _cycles(parts) == []
    part_levels = _levels(parts)
    assert max(part_levels.values()) <= MAX_PACKAGE_LEVELS, part_levels
    # The domain is at the bottom; HTTP at the top.
    assert part_levels["core"] == 1
    assert part_levels["http"] == max(part_levels.values())


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("enforcement", ("loader", "varco", "bench", "deploy", "tests")),
        ("loader", ("varco", "enforcement.http", "enforcement.transits", "enforcement.audit")),
        (
            "enforcement.core",
            (
                "enforcement.config",
                "enforcement.replica",
                "enforcement.transits",
                "enforcement.audit",
                "enforcement.http",
            ),
        ),
        (
            "enforcement.config",
            (
                "enforcement.replica",
                "enforcement.transits",
                "enforcement.audit",
                "enforcement.http",
            ),
        ),
        ("enforcement.transits", ("enforcement.http", "enforcement.audit")),
        ("enforcement.audit", ("enforcement.http", "enforcement.transits")),
        ("enforcement.replica", ("enforcement.http", "enforcement.transits", "enforcement.audit")),
    ],
)
def test_imports_point_one_way(importer: str, forbidden: tuple[str, ...]) -> None:
    wrong = sorted(
        f"{m} -> {d}"
        for m, deps in _graph().items()
        if m == importer or m.startswith(f"{importer}.")
        for d in deps
        if d.startswith(forbidden)
    )
    assert wrong == []


def test_the_domain_needs_no_network_stack() -> None:
    """enforcement/core: no asyncio, Redis or aiohttp (a rule is a table, a lookup a model)."""
    banned = ("asyncio", "redis", "aiohttp", "hiredis", "psycopg")
    wrong = []
    for name, path in _modules().items():
        if not name.startswith("enforcement.core"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
                for target in _imported(name, path, node):
                    if target.split(".")[0] in banned:
                        wrong.append(f"{name}: {target}")
    assert wrong == []


def test_no_module_over_400_lines() -> None:
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_redis_key_is_spelled_in_keys_py() -> None:
    """No f-string builds `{prefix}:...` outside enforcement/keys.py."""
    wrong = []
    for name, path in _modules().items():
        if name == "enforcement.keys" or name.startswith("tests."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr) and len(node.values) >= 2:
                first, second = node.values[0], node.values[1]
                if (
                    isinstance(first, ast.FormattedValue)
                    and "prefix" in ast.unparse(first.value)
                    and isinstance(second, ast.Constant)
                    and str(second.value)[:1] == ":"
                ):
                    wrong.append(f"{name}:{node.lineno}")
    assert wrong == []


def test_the_varco_command_is_the_composition_layer() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["varco"] == "varco.cli:main"


def test_the_readme_maps_every_module() -> None:
    """README's "How it works" names every module of the three packages."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[
        readme.index("## How it works") : readme.index("\n## ", readme.index("## How it works") + 5)
    ]
    unnamed = sorted(
        name
        for name, path in _modules().items()
        if name.split(".")[0] in ("enforcement", "loader", "varco")
        and path.name not in ("__init__.py", "__main__.py")
        and f"`{path.name}`" not in section
    )
    assert unnamed == []
