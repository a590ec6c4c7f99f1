"""The library's layers import one way: no module imports, at its top, a module that imports it
back (directly or around a longer circle), and the reference core imports nothing above it."""
import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tinyllm"

# The reference core and what it may import from the library: the engine, its argument checks,
# its NumPy surface and the kernels' registry; never layers, models, training or teaching code.
CORE = {"tinyllm.backend", "tinyllm.tensor", "tinyllm.tensor_methods", "tinyllm.ops", "tinyllm.arguments",
        "tinyllm.functional", "tinyllm.gradcheck"}
CORE_MAY_IMPORT = CORE | {"tinyllm", "tinyllm.kernels", "tinyllm.kernels.registry", "tinyllm.kernels.cpu"}


def module_names():
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


def top_level_imports(name, path, known):
    """The library modules ``name`` imports at its top level (not inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # ``from . import x`` imports the submodule x when there is one
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names}
    return {m for m in found if m in known and m != name}


@functools.cache
def import_graph():
    known = module_names()
    return {name: top_level_imports(name, path, known) for name, path in known.items()}


def circles(graph):
    """Every circle of imports found by a depth-first walk (each as a list of module names)."""
    found, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        trail.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail)
        trail.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_no_module_of_the_library_imports_a_module_that_imports_it_back():
    graph = import_graph()
    assert len(graph) > 50 and "tinyllm.arguments" in graph["tinyllm.functional"]
    assert circles(graph) == []


def test_the_circle_finder_finds_circles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("module", sorted(CORE))
def test_the_reference_core_imports_nothing_above_it(module):
    graph = import_graph()
    assert graph[module] <= CORE_MAY_IMPORT, graph[module] - CORE_MAY_IMPORT
