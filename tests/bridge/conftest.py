"""Fixtures for the webhook-bridge tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
for _p in (_REPO / "webhook-bridge", _REPO / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from bridge.helpers import BridgeServer, FakeFreshBooks, bridge_env, fake_meltano, make_settings  # noqa: E402
from warehouse.embedded_pg import EmbeddedPostgres  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end through meltano, the tap and DuckDB")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    # starlette 1.x nags about httpx in its TestClient; nothing to act on here
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL for the bridge's tests (each test takes its own schema in it)."""
    with EmbeddedPostgres() as pg:
        yield pg


@pytest.fixture
def settings(tmp_path: Path):
    return make_settings(tmp_path)


@pytest.fixture
def fake_fb() -> FakeFreshBooks:
    return FakeFreshBooks()


@pytest.fixture
def fake_cmd(tmp_path: Path) -> Path:
    return fake_meltano(tmp_path)


@pytest.fixture
def server_factory(tmp_path: Path):
    servers: list[BridgeServer] = []

    def start(env_extra: dict[str, str] | None = None, **overrides: object) -> BridgeServer:
        server = BridgeServer(
            bridge_env(tmp_path, **overrides), log_path=tmp_path / f"bridge-{len(servers)}.log"
        )
        server.env.update(env_extra or {})
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
