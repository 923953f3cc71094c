"""Shared helpers for the webhook-bridge tests (no pytest fixtures here; see conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from cryptography.fernet import Fernet

from security.outputs import save_output
from webhook_bridge.freshbooks import Callback, FreshBooksAPIError
from webhook_bridge.settings import Settings
from webhook_bridge.signature import compute_signature
from webhook_bridge.store import Store

REPO = Path(__file__).resolve().parents[2]
BRIDGE_SRC = REPO / "webhook-bridge"
FAKE_MELTANO = Path(__file__).with_name("fake_meltano.py")
FERNET_KEY = Fernet.generate_key().decode()
ACCOUNT = "ABC123"
VERIFIER = "scADVVi5QuKuj5qTjVkbJNYQe7V7USpGd"


def bridge_env(tmp_path: Path, **overrides: object) -> dict[str, str]:
    """``WEBHOOK_BRIDGE_*`` variables for a bridge whose data lives in ``tmp_path``."""
    values: dict[str, object] = {
        "token_encryption_key": FERNET_KEY,
        "data_dir": tmp_path / "data",
        "project_root": tmp_path,
        "coalesce_window_seconds": 0.2,
        "retry_base_seconds": 0.2,
        "retry_max_seconds": 2,
        "busy_retry_seconds": 0.3,
        "poll_interval": 0,
        "log_level": "DEBUG",
    }
    values.update(overrides)
    return {f"WEBHOOK_BRIDGE_{k.upper()}": str(v) for k, v in values.items() if v is not None}


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings.from_env(bridge_env(tmp_path, **overrides))


def event_fields(
    object_id: int | str = 1234567,
    name: str = "invoice.update",
    account_id: str = ACCOUNT,
    **extra: str,
) -> list[tuple[str, str]]:
    """The fields of an event delivery, in FreshBooks' documented order."""
    fields = [
        ("name", name),
        ("object_id", str(object_id)),
        ("account_id", account_id),
        ("business_id", "6543"),
        ("identity_id", "1234"),
        ("user_id", "1"),
    ]
    fields += [(k, v) for k, v in extra.items()]
    return fields


def encode(fields: list[tuple[str, str]]) -> bytes:
    return urlencode(fields).encode("ascii")


def signed(fields: list[tuple[str, str]], verifier: str = VERIFIER) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of a correctly signed delivery."""
    return encode(fields), {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-FreshBooks-Hmac-SHA256": compute_signature(fields, verifier),
    }


def seed_verifier(
    settings: Settings, account: str = ACCOUNT, callback_id: str = "2001", verifier: str = VERIFIER
) -> None:
    """Store a verifier as if FreshBooks had accepted its verify PUT."""
    store = Store(settings.db_path, settings.token_encryption_key.reveal())
    try:
        vid, _ = store.add_verifier(account, callback_id, verifier)
        store.mark_verifier(vid, "verified")
    finally:
        store.close()


def open_store(settings: Settings) -> Store:
    return Store(settings.db_path, settings.token_encryption_key.reveal())


class FakeFreshBooks:
    """Records verify calls (bedevere's FakeGH style); can block or fail on demand."""

    def __init__(self, *, fail_status: int | None = None) -> None:
        self.verify_calls: list[tuple[str, str, str]] = []
        self.release = threading.Event()
        self.release.set()
        self.fail_status = fail_status
        self.called = threading.Event()

    def verify_callback(self, account_id: str, callback_id: str, verifier: str) -> Callback:
        self.called.set()
        self.release.wait(30)
        self.verify_calls.append((account_id, callback_id, verifier))
        if self.fail_status is not None:
            raise FreshBooksAPIError(self.fail_status, f"HTTP {self.fail_status}")
        return Callback(int(callback_id), "invoice.create", "http://x", True, account_id)

    def close(self) -> None:
        pass


def fake_meltano(tmp_path: Path) -> Path:
    """An executable that runs fake_meltano.py with this interpreter."""
    path = tmp_path / "fake-meltano"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_MELTANO}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def cli(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """Run ``python -m webhook_bridge ARGS`` with ``env`` over the environment; its output is saved."""
    full = {
        **os.environ,
        **env,
        "PYTHONPATH": os.pathsep.join([str(BRIDGE_SRC), str(REPO / "tap-freshbooks"), str(REPO / "tests")]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "webhook_bridge", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    save_output(f"webhook-bridge {' '.join(args)}", proc.stdout + "\n" + proc.stderr)
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BridgeServer:
    """`python -m webhook_bridge serve` as a real process on 127.0.0.1."""

    def __init__(self, env: dict[str, str], *, log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = {
            **os.environ,
            **env,
            "WEBHOOK_BRIDGE_HOST": "127.0.0.1",
            "WEBHOOK_BRIDGE_PORT": str(self.port),
        }
        pythonpath = [str(BRIDGE_SRC), str(REPO / "tap-freshbooks"), str(REPO / "tests")]
        if self.env.get("PYTHONPATH"):
            pythonpath.append(self.env["PYTHONPATH"])
        self.env["PYTHONPATH"] = os.pathsep.join(pythonpath)
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> BridgeServer:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "webhook_bridge", "serve"],
            env=self.env,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"bridge exited with {self.proc.returncode}: {self.logs()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("bridge did not become healthy: " + self.logs()[-3000:])

    def post(self, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> httpx.Response:
        return httpx.post(self.url + "/webhooks/freshbooks", content=body, headers=headers, timeout=timeout)

    def kill9(self) -> None:
        """SIGKILL the bridge process only (not its children)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()
        save_output(f"webhook-bridge serve ({self.log_path.name})", self.logs())
        data_dir = self.env.get("WEBHOOK_BRIDGE_DATA_DIR")
        for run_log in sorted(Path(data_dir, "runs").glob("*.log")) if data_dir else ():
            save_output(f"bridge run log {run_log.name}", run_log.read_bytes())

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_lines(self) -> list[dict]:
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux), whichever of its threads started them: the bridge starts
    its runs from worker threads (webhook_bridge/spawn.py), and /proc lists a child under the thread."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found
