"""Fixtures for the runner tests: a real S3 API server (moto, tests/s3_cas_server.py) and a real PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "tests", ROOT / "tests" / "warehouse", ROOT / "tests" / "runner"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from embedded_pg import EmbeddedPostgres  # noqa: E402

from s3_cas_server import CasS3Server  # noqa: E402  (moto, one request at a time: atomic CAS)


@pytest.fixture(scope="module")
def s3_server():
    pytest.importorskip("moto", reason="moto[server] is not installed (requirements-dev.txt)")
    pytest.importorskip("boto3", reason="boto3 is not installed (requirements-dev.txt)")
    with CasS3Server() as server:
        yield server


@pytest.fixture(scope="module")
def postgres():
    with EmbeddedPostgres() as pg:
        yield pg
