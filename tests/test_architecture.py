"""The direction of every import arrow, checked on the source (imports inside functions too).

- The house, top to bottom: flows, reports, tasks, hardware_profiles. A module never imports
  one of a layer above its own.
- The analysis, stage by stage: findings and scenarios, ranking, walls, projection, training,
  supply, workload. ``demand`` and ``health`` stand apart and import no stage.
- The core imports no framework and reads no file: nothing under ``tasks/analysis`` imports
  prefect, jax, reportlab, ``tasks.profiles`` or ``tasks.probes``.
- No module of ``tasks/`` or ``reports/`` imports one of the project's own modules inside a
  function (such an import is how a circle hides); a lazy import of a third-party library
  stays fine.
- No circle among the project's modules.

The checker is tested on made-up modules too, so a rule that could never fail is caught.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("flows", "reports", "tasks", "hardware_profiles")
HOUSE = ("flows", "reports", "tasks", "hardware_profiles")
STAGES = (
    ("tasks.analysis.findings", "tasks.analysis.scenarios"),
    ("tasks.analysis.ranking",),
    ("tasks.analysis.walls",),
    ("tasks.analysis.projection",),
    ("tasks.analysis.training",),
    ("tasks.analysis.supply",),
    ("tasks.analysis.workload",),
)
APART = ("tasks.analysis.demand", "tasks.analysis.health")
CORE_FORBIDDEN = ("prefect", "jax", "jaxlib", "reportlab", "tasks.profiles", "tasks.probes")
NO_LAZY_OWN_IMPORTS = ("tasks", "reports")


@dataclass(frozen=True)
class Arrow:
    source: str  # the importing module
    target: str  # the imported module (or name under it)
    line: int
    in_function: bool


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def arrows(source: str, module: str, is_package: bool = False) -> Iterator[Arrow]:
    """Every import in ``source`` (the text of ``module``), relative ones resolved."""
    tree = ast.parse(source)
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside.update(id(sub) for sub in ast.walk(node) if sub is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Arrow(module, alias.name, node.lineno, id(node) in inside)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                yield Arrow(module, f"{base}.{alias.name}", node.lineno, id(node) in inside)


def project_arrows(root: Path = ROOT) -> list[Arrow]:
    found: list[Arrow] = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = module_name(path, root)
            found.extend(arrows(path.read_text(), name, path.name == "__init__.py"))
    return found


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer(name: str, layers: Iterable[Iterable[str]]) -> int | None:
    for i, members in enumerate(layers):
        if any(under(name, m) for m in members):
            return i
    return None


def upward(found: Iterable[Arrow], layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """Arrows from a module to one of a layer above its own (a lower index)."""
    broken = []
    for a in found:
        src, dst = layer(a.source, layers), layer(a.target, layers)
        if src is not None and dst is not None and dst < src:
            broken.append(f"{a.source}:{a.line} imports {a.target}")
    return broken


def known_modules(found: Iterable[Arrow]) -> set[str]:
    return {a.source for a in found}


def resolve(target: str, modules: set[str]) -> str | None:
    """The project module an import names (``pkg.mod.Name`` is ``pkg.mod``)."""
    while target:
        if target in modules:
            return target
        target = target.rpartition(".")[0]
    return None


def circles(found: list[Arrow]) -> list[list[str]]:
    """The import graph's strongly connected components of more than one module."""
    modules = known_modules(found)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for a in found:
        target = resolve(a.target, modules)
        # A package's __init__ importing its own children is not an arrow between stages.
        if target is not None and target != a.source and not under(target, a.source):
            graph[a.source].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found_circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found_circles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found_circles


def test_the_house_points_down() -> None:
    assert upward(project_arrows(), tuple((p,) for p in HOUSE)) == []


def test_the_analysis_stages_point_down() -> None:
    assert upward(project_arrows(), STAGES) == []


def test_demand_and_health_stand_apart() -> None:
    broken = [
        f"{a.source}:{a.line} imports {a.target}"
        for a in project_arrows()
        if any(under(a.source, m) for m in APART) and layer(a.target, STAGES) is not None
    ]
    assert broken == []


def test_the_core_imports_no_framework_and_no_loader() -> None:
    broken = [
        f"{a.source}:{a.line} imports {a.target}"
        for a in project_arrows()
        if under(a.source, "tasks.analysis") and any(under(a.target, f) for f in CORE_FORBIDDEN)
    ]
    assert broken == []


def test_no_function_level_import_of_the_projects_own_modules() -> None:
    broken = [
        f"{a.source}:{a.line} imports {a.target} inside a function"
        for a in project_arrows()
        if a.in_function
        and any(under(a.source, p) for p in NO_LAZY_OWN_IMPORTS)
        and any(under(a.target, p) for p in PACKAGES)
    ]
    assert broken == []


def test_no_circle_among_the_projects_modules() -> None:
    assert circles(project_arrows()) == []


def _fake_tree(tmp_path: Path, files: dict[str, str]) -> list[Arrow]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return project_arrows(tmp_path)


def test_the_checker_catches_an_upward_import_hidden_in_a_function(tmp_path: Path) -> None:
    found = _fake_tree(
        tmp_path,
        {
            "tasks/analysis/workload/figures.py": (
                "def late():\n    from tasks.analysis.projection.projector import project\n"
            ),
            "tasks/analysis/projection/projector.py": (
                "from tasks.analysis.workload.figures import late\n"
            ),
            "reports/story.py": "from flows.cli import main\n",
            "flows/cli.py": "",
        },
    )
    assert upward(found, STAGES) == [
        "tasks.analysis.workload.figures:2 imports tasks.analysis.projection.projector.project"
    ]
    assert upward(found, tuple((p,) for p in HOUSE)) == ["reports.story:1 imports flows.cli.main"]
    assert [a.in_function for a in found if a.source.endswith("figures")] == [True]
    assert circles(found) == [
        ["tasks.analysis.projection.projector", "tasks.analysis.workload.figures"]
    ]


def test_the_checker_resolves_relative_imports(tmp_path: Path) -> None:
    found = _fake_tree(
        tmp_path,
        {
            "tasks/analysis/supply/__init__.py": "",
            "tasks/analysis/supply/predict.py": "from ..ranking import ranking\n",
            "tasks/analysis/ranking/ranking.py": "",
        },
    )
    assert upward(found, STAGES) == [
        "tasks.analysis.supply.predict:1 imports tasks.analysis.ranking.ranking"
    ]
