"""The shape of the code, read from its syntax trees: no import cycle, no private name imported
from another module, no function over 120 lines but data tables, no module over 600 lines."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "cobranza"
MAX_FUNCTION_LINES = 120
MAX_MODULE_LINES = 600


# Owned by the engineers of the simulator and of ingest and silver/gold, who are splitting them in
# parallel; each entry goes once its split lands.
@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # the module imported (a package's __init__ for `from package import name`)
    names: tuple[str, ...]  # names taken from it (`from target import names`)
    line: int


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at module level or inside functions, but under TYPE_CHECKING
    (never executed)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child
            stack.append(child)


def _imports(module: str) -> list[Import]:
    out = []
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    out.append(Import(module, alias.name, (), node.lineno))
            continue
        base = node.module or ""
        if node.level:  # relative: from the importer's package
            package = module if _is_package(module) else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in MODULES:  # `from package import module`
                out.append(Import(module, sub, (), node.lineno))
            elif base in MODULES:
                out.append(Import(module, base, (alias.name,), node.lineno))
    return out


IMPORTS = [imp for module in MODULES for imp in _imports(module)]


def _graph() -> dict[str, set[str]]:
    """module -> modules its import statements run. Importing `package.module` from outside the
    package runs the package's `__init__` first, so that edge is there too."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in IMPORTS:
        graph[imp.importer].add(imp.target)
        parts = imp.target.split(".")
        for i in range(2, len(parts)):
            package = ".".join(parts[:i])
            if not (imp.importer == package or imp.importer.startswith(package + ".")):
                graph[imp.importer].add(package)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
            if len(component) > 1 or v in graph[v]:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_of_the_package_has_no_cycle():
    cycles = _cycles(_graph())
    assert cycles == [], "modules importing each other (directly or through others): " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_cycle_finder_finds_a_cycle_through_a_package_init():
    """The rule above can fail: a module importing a sibling through its own package, whose
    `__init__` imports that module, is a cycle."""
    graph = {"p": {"p.a"}, "p.a": {"p"}, "q": set()}
    assert _cycles(graph) == [["p", "p.a"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_module_imports_a_private_name_of_another():
    private = [
        f"{imp.importer} (line {imp.line}) imports {name} from {imp.target}"
        for imp in IMPORTS
        for name in imp.names
        if name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
    ]
    assert private == []


def _data_table(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Straight-line code that builds a table: no branch, loop, try, with or nested function."""
    control = (ast.If, ast.For, ast.While, ast.Try, ast.With, ast.Match, ast.FunctionDef)
    return not any(isinstance(n, control) for stmt in node.body for n in ast.walk(stmt))


def _functions() -> Iterator[tuple[str, int, bool]]:
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                yield f"{module}.{node.name}", lines, _data_table(node)


def test_no_function_is_longer_than_120_lines_but_data_tables():
    long = {name for name, lines, table in _functions() if lines > MAX_FUNCTION_LINES and not table}
    assert long == set()


def test_no_module_is_longer_than_600_lines():
    long = {
        module: n
        for module, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
