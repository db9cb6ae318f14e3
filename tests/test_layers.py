"""The package's shape: no import cycle, and no lower layer importing a higher one.

Every ``import`` in src/darklens counts, including those inside functions (a lazy import still
couples the modules). The layer order is the one docs/architecture.md writes down; a module's
layer is that of the longest prefix in :data:`LAYERS` that names it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import darklens

SRC = Path(darklens.__file__).parent
# Lowest first. A module may import modules of its own layer or of lower layers.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "core",
        (
            "darklens",
            "darklens.config",
            "darklens.registry",
            "darklens.device",
            "darklens.guards",
            "darklens.progress",
            "darklens._compat",
            "darklens._atomic",
        ),
    ),
    ("data", ("darklens.data",)),
    ("simulate", ("darklens.simulate",)),
    ("models", ("darklens.models",)),
    ("metrics", ("darklens.evaluate.metrics", "darklens.evaluate.regression")),
    ("runs", ("darklens.runs",)),
    ("train", ("darklens.train",)),
    ("predict", ("darklens.predict",)),
    ("evaluate", ("darklens.evaluate",)),
    ("recipes", ("darklens.recipes", "darklens.quickstart")),
    ("cli", ("darklens.cli", "darklens.__main__")),
)


def module_names() -> dict[str, Path]:
    names = {}
    for path in SRC.rglob("*.py"):
        parts = ("darklens", *path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def import_graph() -> dict[str, set[str]]:
    """Module → the darklens modules it imports (a package import counts as its __init__)."""
    modules = module_names()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best_len and (prefix != "darklens" or module == prefix):
                best, best_len = index, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS and the architecture page"
    return best


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_module_is_in_a_layer():
    for name in module_names():
        layer_of(name)


def test_no_lower_layer_imports_a_higher_one():
    violations = [
        f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
        for a, targets in import_graph().items()
        for b in targets
        if layer_of(b) > layer_of(a)
    ]
    assert not violations, "\n".join(violations)


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_checks_catch_what_they_look_for():
    """The graph code finds a cycle and an upward import when there is one."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("darklens.train.trainer") > layer_of("darklens.evaluate.metrics")
    assert layer_of("darklens.evaluate.run") > layer_of("darklens.predict.batch")
    graph = import_graph()
    assert "darklens.runs" in graph["darklens.train.trainer"]  # real edges are seen


def test_architecture_page_lists_the_layers_in_order():
    page = (SRC.parents[1] / "docs" / "architecture.md").read_text()
    positions = [page.find(f"`{name}`") for name, _ in LAYERS]
    assert all(p >= 0 for p in positions), "every layer is named on the architecture page"
    assert positions == sorted(positions), "the page lists the layers lowest first"


def test_importing_the_metrics_loads_no_plotting_or_models():
    import subprocess
    import sys

    code = (
        "import sys, darklens.evaluate.metrics, darklens.data.preprocessing\n"
        "names = ('matplotlib', 'timm', 'darklens.train.trainer')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_only_the_cli_builds_consoles_and_progress_bars():
    """Library code reports progress through callables (darklens.progress); rich is the CLI's."""
    offenders = sorted(
        name
        for name, path in module_names().items()
        if not name.startswith("darklens.cli")
        and any(
            isinstance(node, (ast.Import, ast.ImportFrom))
            and any(
                (alias.name if isinstance(node, ast.Import) else (node.module or "")).startswith(
                    "rich"
                )
                for alias in node.names
            )
            for node in ast.walk(ast.parse(path.read_text()))
        )
    )
    assert not offenders, offenders
