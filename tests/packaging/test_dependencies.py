"""The packages' allowed dependencies (issue 11): read from the source with ``ast``, never imported.

* A package imports another first-party package only if its pyproject declares that distribution
  (in ``dependencies`` or an extra): the tap and the bridge both declare ``freshbooks-warehouse-auth``,
  and the bridge does not import the tap.
* No import cycle between modules, counting imports inside functions (a cycle hidden that way is
  still a cycle); imports under ``if TYPE_CHECKING:`` run only for the type checker and are left out.

Fast: parses about a hundred files, no subprocess.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import distributions as dist
import pytest

ROOT = dist.ROOT
# where a package may live: the repository's deliverables, each with its own pyproject.toml
PACKAGE_DIRS = [
    "freshbooks-auth",
    "tap-freshbooks",
    "webhook-bridge",
    "looker",
    "orchestration/dagster",
    "target-duckdb-fast",
]


class Package:
    def __init__(self, directory: Path) -> None:
        project = tomllib.loads((directory / "pyproject.toml").read_text())
        self.directory = directory
        self.distribution = project["project"]["name"]
        self.modules_root: list[str] = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
        requirements = list(project["project"].get("dependencies", []))
        for extra in project["project"].get("optional-dependencies", {}).values():
            requirements.extend(extra)
        self.declared = {_requirement_name(r) for r in requirements}

    def files(self) -> dict[str, Path]:
        """{dotted module name: file} of every module of the package."""
        out: dict[str, Path] = {}
        for root in self.modules_root:
            for path in sorted((self.directory / root).rglob("*.py")):
                parts = list(path.relative_to(self.directory).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                out[".".join(parts)] = path
        return out


def _requirement_name(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert name, requirement
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(path: Path, module: str) -> set[str]:
    """Every module name ``path`` imports at run time (absolute; relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


PACKAGES = [Package(ROOT / d) for d in PACKAGE_DIRS]
OWNER = {root: package for package in PACKAGES for root in package.modules_root}  # import root -> package
MODULES = {name: path for package in PACKAGES for name, path in package.files().items()}


def _owner(name: str) -> Package | None:
    return OWNER.get(name.split(".")[0])


def _module_of(name: str) -> str | None:
    """The first-party module an imported name refers to (``pkg.mod.attr`` -> ``pkg.mod``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def test_the_packages_are_found() -> None:
    assert {p.distribution for p in PACKAGES} >= set(dist.PACKAGES.values())
    assert len(MODULES) > 50


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.distribution)
def test_a_package_imports_only_first_party_packages_it_declares(package: Package) -> None:
    undeclared: list[str] = []
    for module, path in package.files().items():
        for name in imported_names(path, module):
            other = _owner(name)
            if other is not None and other is not package and other.distribution not in package.declared:
                undeclared.append(
                    f"{path.relative_to(ROOT)} imports {name} ({other.distribution} is not declared)"
                )
    assert not undeclared, "\n".join(sorted(set(undeclared)))


def test_the_auth_package_depends_on_no_other_first_party_package() -> None:
    auth = next(p for p in PACKAGES if p.distribution == "freshbooks-warehouse-auth")
    assert not auth.declared & {p.distribution for p in PACKAGES}
    for name in ("freshbooks-warehouse-tap", "freshbooks-webhook-bridge"):
        assert "freshbooks-warehouse-auth" in next(p for p in PACKAGES if p.distribution == name).declared


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = {_module_of(name) for name in imported_names(path, module)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path) -> None:
    """The check itself: auth.py <-> login.py with the import inside a function, as it once was."""
    (tmp_path / "auth.py").write_text("def f():\n    from pkg.login import g\n")
    (tmp_path / "login.py").write_text("from pkg.auth import f\n")
    (tmp_path / "types_only.py").write_text(
        "import typing as t\nif t.TYPE_CHECKING:\n    from pkg.auth import f\n"
    )
    graph = {
        f"pkg.{p.stem}": imported_names(p, f"pkg.{p.stem}") & {"pkg.auth", "pkg.login"}
        for p in tmp_path.glob("*.py")
    }
    assert graph["pkg.types_only"] == set()
    assert _cycles(graph) == [["pkg.auth", "pkg.login"]]


# Cycles that existed when this check was written (2026-12-02), in code other work was reshaping at
# the time. This list may only shrink: a new cycle fails, and so does a listed one that is gone
# (delete its line then).
KNOWN_CYCLES: set[tuple[str, ...]] = set()  # none left


def test_no_import_cycle_between_modules() -> None:
    cycles = {tuple(c) for c in _cycles(import_graph())}
    new = cycles - KNOWN_CYCLES
    assert not new, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in sorted(new))
    gone = KNOWN_CYCLES - cycles
    assert not gone, "broken cycles, delete them from KNOWN_CYCLES:\n" + "\n".join(map(str, sorted(gone)))


def test_the_auth_package_has_no_import_cycle() -> None:
    assert not [c for c in _cycles(import_graph()) if c[0].startswith("freshbooks_auth")]
