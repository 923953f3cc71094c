"""docs/architecture.md stays true: its dependency table equals what the packages declare, and
every module it names as the owner of a concern exists."""

from __future__ import annotations

import re
import tomllib
import typing as t
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text()
PACKAGE_DIRS = {
    "freshbooks_auth": "freshbooks-auth",
    "tap_freshbooks": "tap-freshbooks",
    "webhook_bridge": "webhook-bridge",
    "freshbooks_looker": "looker",
    "freshbooks_dagster": "orchestration/dagster",
    "target_duckdb_fast": "target-duckdb-fast",
}


def _section(title: str) -> str:
    start = DOC.index(title)
    end = DOC.find("\n#", start + len(title))
    return DOC[start : end if end > 0 else None]


def _allowed() -> dict[str, tuple[str, set[str]]]:
    """{package: (distribution, packages it may import)} from the doc's table."""
    rows = re.findall(r"^\| `(\w+)` \(`([\w-]+)`\) \| (.*?) \|$", _section("### Allowed dependencies"), re.M)
    return {pkg: (dist, set(re.findall(r"`(\w+)`", may))) for pkg, dist, may in rows}


def _project(package: str) -> dict[str, t.Any]:
    return tomllib.loads((ROOT / PACKAGE_DIRS[package] / "pyproject.toml").read_text())["project"]


def _requirement_names(project: dict[str, t.Any]) -> set[str]:
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    names = (re.match(r"[\w.-]+", r) for r in requirements)
    return {re.sub(r"[-_.]+", "-", n.group(0)).lower() for n in names if n}


def test_the_table_names_every_package() -> None:
    assert set(_allowed()) == set(PACKAGE_DIRS)


@pytest.mark.parametrize("package", sorted(PACKAGE_DIRS))
def test_declared_first_party_dependencies_are_the_allowed_ones(package: str) -> None:
    allowed = _allowed()
    distribution, may_import = allowed[package]
    project = _project(package)
    assert project["name"] == distribution
    by_distribution = {dist: pkg for pkg, (dist, _) in allowed.items()}
    declared = {by_distribution[name] for name in _requirement_names(project) if name in by_distribution}
    assert declared == may_import, (
        f"{package} declares {sorted(declared)}; docs/architecture.md allows {sorted(may_import)}"
    )


def test_every_owner_the_doc_names_exists() -> None:
    owners = _section("### One owner per concern")
    paths = {p for p in re.findall(r"`([\w./*-]+(?:\.py|/))`", owners)}
    assert len(paths) > 20
    missing = []
    for name in sorted(paths):
        candidates = [ROOT / name] + [ROOT / d / name for d in PACKAGE_DIRS.values()]
        candidates += [ROOT / d / pkg / name for pkg, d in PACKAGE_DIRS.items()]
        if not any(c.exists() or list(c.parent.glob(c.name)) for c in candidates):
            missing.append(name)
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
