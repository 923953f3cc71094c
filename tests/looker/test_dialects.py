"""The dialect registry (freshbooks_looker/dialects.py) is the one place a warehouse is declared:
every registered dialect declares every attribute, the LookML's Liquid dialect branches are exactly
the registry's, and what the checker and sqlgen use comes from it. Fast: no warehouse, no pipeline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from liquid import Environment, StrictUndefined

from freshbooks_looker import dialects, generate
from freshbooks_looker.check import LOOKER_DIALECTS, Checker
from freshbooks_looker.dialects import Dialect
from freshbooks_looker.lookml import Project

LOOKER_DIR = Path(__file__).resolve().parents[2] / "looker"
BRANCH = re.compile(r"_dialect\._name\s*==\s*'([^']+)'")


@pytest.fixture(scope="module")
def project() -> Project:
    return Project(LOOKER_DIR)


def test_every_dialect_declares_every_attribute() -> None:
    assert dialects.names() == ["postgres", "redshift", "snowflake", "bigquery_standard_sql", "duckdb"]
    for d in dialects.registered():
        for attr in Dialect.REQUIRED:
            value = getattr(d, attr)
            assert isinstance(value, str) and value, (d, attr)
        assert Dialect(d.name) == d or type(Dialect(d.name)) is type(d)
        assert set(d.constants) == set(generate.CONSTANT_DOCS), d
        assert all(d.constants.values()), d
        # a dialect Looker does not have is reached through one it has
        assert Dialect(d.liquid_name).is_looker, d
        # the sqlglot name is one sqlglot knows
        assert sqlglot.Dialect.get_or_raise(d.sqlglot) is not None
        for pattern, what in d.lint:
            re.compile(pattern)
            assert what
    assert sum(d.liquid_default for d in dialects.registered()) == 1
    with pytest.raises(ValueError, match="unknown dialect oracle"):
        Dialect("oracle")


def test_a_dialect_missing_an_attribute_is_refused() -> None:
    with pytest.raises(TypeError, match="does not set decimal_note, timestamps"):

        class Half(Dialect):  # pragma: no cover - the class statement itself raises
            name = sqlglot = liquid_name = "half"
            label = "Half"
            decimal_type = "NUMERIC"

    assert "half" not in dialects.names()


def test_the_lookml_dialect_branches_are_the_registry(project: Project) -> None:
    """Every ``_dialect._name == '...'`` in the project names a registered Looker dialect, and each
    internal manifest constant renders, for every Looker dialect, exactly the registry's value."""
    looker = {d.name for d in dialects.looker_dialects()}
    assert set(LOOKER_DIALECTS) == looker
    named = {name for text in project.raw_text.values() for name in BRANCH.findall(text)}
    assert named and named <= looker, named - looker
    env = Environment(undefined=StrictUndefined)
    for name in generate.CONSTANT_DOCS:
        template = env.from_string(project.constants[name]["value"])
        for d in dialects.looker_dialects():
            assert template.render(_dialect={"_name": d.name}) == d.constants[name], (name, d)
    # the generated part of the manifest is current (generate --check covers it too)
    manifest = LOOKER_DIR / "manifest.lkml"
    assert generate.render_manifest(manifest.read_text()) == manifest.read_text()


def test_a_new_dialect_gets_its_liquid_branch_from_its_class() -> None:
    """Adding a warehouse is one class: its branch appears in the generated manifest."""
    values = {d: d.constants["DECIMAL_TYPE"] for d in dialects.registered()}

    class Exotic(Dialect):
        name = sqlglot = liquid_name = "exotic"
        label = "Exotic"
        decimal_type = "DECIMAL(76,27)"
        decimal_note = "test only"
        timestamps = "test only"

    try:
        exotic = Dialect("exotic")
        values[exotic] = exotic.constants["DECIMAL_TYPE"]
        rendered = generate.liquid_branches(values)
        assert "{% elsif _dialect._name == 'exotic' %}DECIMAL(76,27){% else %}NUMERIC{% endif %}" in rendered
    finally:
        dialects._REGISTRY.pop("exotic")  # undo the test's registration


def test_offline_constants_come_from_the_registry() -> None:
    """DuckDB gets the postgres Liquid branch, except where its own type differs (the money cast)."""
    assert Dialect("duckdb").offline_constants == {"DECIMAL_TYPE": "DECIMAL(38,27)"}
    assert all(not d.offline_constants for d in dialects.looker_dialects())
    sql = (
        Checker(LOOKER_DIR)
        .explore_sql("invoices", Dialect("duckdb"))
        .compile(["invoices.total_invoiced"])
        .sql
    )
    assert "DECIMAL(38,27)" in sql and "NUMERIC" not in sql
    assert Dialect("postgres").converts_timestamptz and not Dialect("redshift").converts_timestamptz
