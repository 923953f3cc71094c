"""Shared fixtures: a running FreshBooks emulator and helpers to run the tap against it.

Everything external is emulated on 127.0.0.1; databases are real (DuckDB, embedded PostgreSQL).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import typing as t
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from freshbooks_emulator import FreshBooksEmulator  # noqa: E402  (tests/ is on sys.path)

# fails the session if any secret the emulators issued appears in any test output
pytest_plugins = ["security.plugin"]

# A fixed, valid Fernet key for tests only (the token store is per-test, under tmp_path).
TEST_FERNET_KEY = "Z9-YCWqom_shcJfmiPesSB3Lz5ok9CuMVoJclbB9hMM="


@pytest.fixture(autouse=True)
def _no_ambient_tap_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads TAP_FRESHBOOKS_* from the environment in some paths: keep tests hermetic."""
    for name in list(os.environ):
        if name.startswith(("TAP_FRESHBOOKS", "MELTANO_")):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emulator() -> t.Iterator[FreshBooksEmulator]:
    emu = FreshBooksEmulator(seed="small").start()
    try:
        yield emu
    finally:
        emu.stop()


def app_config(emu: FreshBooksEmulator, tmp_path: Path) -> dict[str, t.Any]:
    """The emulator's OAuth app and an empty encrypted token store: what `auth login` needs."""
    return {
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "redirect_uri": emu.redirect_uri,
        "api_url": emu.url,
        "auth_url": emu.url,
        "token_store_path": str(tmp_path / "tokens.fernet"),
        "token_encryption_key": TEST_FERNET_KEY,
    }


def tap_config(emu: FreshBooksEmulator, tmp_path: Path, **overrides: t.Any) -> dict[str, t.Any]:
    """A complete tap config: the app, a store, and a freshly granted refresh token to bootstrap it."""
    config = app_config(emu, tmp_path)
    config["refresh_token"] = emu.issue_grant()["refresh_token"]
    config["max_request_tries"] = 10
    config.update(overrides)
    return config


class TapRun(t.NamedTuple):
    records: dict[str, list[dict]]
    state: dict
    messages: list[dict]

    def ids(self, stream: str, account_id: str | None = None) -> list[str]:
        return sorted(
            r["id"] for r in self.records.get(stream, []) if account_id in (None, r.get("account_id"))
        )

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.records.values())


def run_tap(config: dict, state: dict | None = None, catalog: dict | None = None) -> TapRun:
    """Run the tap in-process, capture its Singer output, return records and the final state."""
    from tap_freshbooks.tap import TapFreshBooks

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap = TapFreshBooks(config=config, state=state, catalog=catalog, parse_env_config=False)
        tap.sync_all()
    records: dict[str, list[dict]] = {}
    final_state: dict = {}
    messages = []
    for line in out.getvalue().splitlines():
        message = json.loads(line)
        messages.append(message)
        if message["type"] == "RECORD":
            records.setdefault(message["stream"], []).append(message["record"])
        elif message["type"] == "STATE":
            final_state = message["value"]
    return TapRun(records, final_state, messages)
