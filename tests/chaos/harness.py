"""One chaos harness: an in-process FreshBooks emulator, a Meltano project state and a DuckDB file.

* ``meltano run tap-freshbooks target-duckdb`` is the real pipeline: the project's meltano.yml and
  plugin venvs (linked, as in tests/warehouse/pipeline_run.py), its own MELTANO_SYS_DIR_ROOT (own
  system DB, hence own state and run directory), its own token store and DuckDB file. Runs get the
  catalog the tap discovers (Meltano's ``catalog`` extra, ``TAP_FRESHBOOKS__CATALOG``): the tap is
  installed editable, so Meltano would otherwise run discovery before every run (~2.5 s).
* Runs for the racing trials start the tap directly (``tap-freshbooks --config``) with the same
  token store, writing to a file; their output can be loaded with ``target-duckdb`` afterwards
  (DuckDB has one writer at a time, as the bridge's run lock has one run at a time).
* ``verify`` is the trial's verdict: ``reconcile`` plus the check against the emulator's store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import typing as t
from pathlib import Path

import psutil
from cryptography.fernet import Fernet

from chaos import checks, processes
from chaos.changes import Changes
from chaos.requests_hook import HookedFaults, install
from freshbooks_emulator import FreshBooksEmulator
from security.outputs import save_output
from stream_names import CONTRACT_STREAMS
from warehouse.pipeline_run import meltano_env

ROOT = Path(__file__).resolve().parents[2]
MELTANO = ROOT / ".venv" / "bin" / "meltano"
TAP = ROOT / ".meltano" / "extractors" / "tap-freshbooks" / "venv" / "bin" / "tap-freshbooks"
TARGET = ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "target-duckdb-fast"
#: the project venv's console script (it has the `reconcile` extra: duckdb, psycopg)
RECONCILE = ROOT / ".venv" / "bin" / "tap-freshbooks"
#: every stream the pipeline loads (and the check compares)
STREAMS = CONTRACT_STREAMS
#: the tap settings meltano.yml sets, so direct runs emit the same record shapes as Meltano runs
STATE_ID = "dev:tap-freshbooks-to-target-duckdb"
MELTANO_YML_TAP_CONFIG = {"flattening_enabled": True, "flattening_max_depth": 1}
MELTANO_YML_TARGET_CONFIG = {
    "default_target_schema": "freshbooks",
    "add_metadata_columns": True,
    "hard_delete": False,
    "primary_key_required": True,
}

_catalog_lock = threading.Lock()


def link_plugins(sys_dir: Path) -> None:
    """Reuse the plugin venvs `scripts/setup` installed (linked into this system dir, not copied)."""
    sys_dir.mkdir(parents=True, exist_ok=True)
    for kind in ("extractors", "loaders"):
        src, dst = ROOT / ".meltano" / kind, sys_dir / kind
        if src.is_dir() and not dst.exists():
            dst.symlink_to(src, target_is_directory=True)


_catalog: Path | None = None


def discovered_catalog() -> Path:
    """The tap's ``--discover`` output (once per process; it needs no FreshBooks call)."""
    global _catalog
    with _catalog_lock:
        if _catalog is None or not _catalog.exists():
            folder = Path(tempfile.mkdtemp(prefix="chaos-catalog-"))
            config = folder / "config.json"
            config.write_text(
                json.dumps(
                    {
                        "client_id": "discover",
                        "client_secret": "discover",
                        "token_store_path": str(folder / "unused.fernet"),
                        "token_encryption_key": Fernet.generate_key().decode(),
                        **MELTANO_YML_TAP_CONFIG,
                    }
                )
            )
            proc = subprocess.run(
                [str(TAP), "--config", str(config), "--discover"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"tap-freshbooks --discover failed: {proc.stderr.strip()[-400:]}")
            _catalog = folder / "catalog.json"
            _catalog.write_text(proc.stdout)
        return _catalog


@dataclasses.dataclass
class Run:
    """One process run of the harness and how it ended."""

    label: str
    returncode: int | None  # None: it hung and was killed
    seconds: float
    log: Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 12) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


class Harness:
    """Emulator + Meltano project state + DuckDB warehouse for a sequence of trials."""

    def __init__(
        self,
        workdir: Path,
        *,
        bulk: t.Sequence[tuple[str, int]] = (),
        batch_size_rows: int | None = None,
        request_timeout: int = 3,
        use_catalog: bool = True,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs = self.workdir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.emu = FreshBooksEmulator(seed="small").start()
        self.faults: HookedFaults = install(self.emu)
        first = self.emu.accounts[0]["account_id"]
        for stream, n in bulk:  # changed within the last day: every poll reads them again (pages)
            self.emu.seed_bulk(stream, n, first, days=1)
        self.sys_dir = self.workdir / ".meltano"
        link_plugins(self.sys_dir)
        self.token_dir = self.workdir / "tokens"
        self.token_store = self.token_dir / "tokens.fernet"
        self.grant = self.emu.issue_grant()
        self.key = Fernet.generate_key().decode()
        self.warehouse = self.workdir / "warehouse.duckdb"
        self.batch_size_rows = batch_size_rows
        self.request_timeout = request_timeout
        self.catalog = discovered_catalog() if use_catalog else None
        self.changes = Changes(self.emu)
        self.meltano_proc: subprocess.Popen | None = None
        #: processes of a run whose meltano was killed (reaped by the trial)
        self.orphans: list[psutil.Process] = []
        #: labels of the API requests of the last complete run (kill points are picked among them)
        self.last_requests: list[str] = []
        #: (role, request label) already used as fault points in this harness
        self.used_points: set[tuple[str, str]] = set()
        #: after meltano itself was killed its job stays "running" in the system DB, and Meltano refuses
        #: every run of the state ID until the job is 5 minutes stale, unless --force
        self.stale_job_until = 0.0
        self.runs = 0
        self.reconcile_config = self._reconcile_config()

    def close(self) -> None:
        self.faults.hook = None
        self.emu.stop()

    # -- configuration ---------------------------------------------------------------------------
    def _reconcile_config(self) -> Path:
        """reconcile reads FreshBooks with its own grant and token store (it changes no state)."""
        path = self.workdir / "reconcile.json"
        path.write_text(
            json.dumps(
                {
                    "client_id": self.emu.client_id,
                    "client_secret": self.emu.client_secret,
                    "redirect_uri": self.emu.redirect_uri,
                    "api_url": self.emu.url,
                    "auth_url": self.emu.url,
                    "token_store_path": str(self.workdir / "reconcile-tokens" / "tokens.fernet"),
                    "token_encryption_key": Fernet.generate_key().decode(),
                    "refresh_token": self.emu.issue_grant()["refresh_token"],
                }
            )
        )
        return path

    def env(self, extra: t.Mapping[str, str] | None = None) -> dict[str, str]:
        loader = {
            "TARGET_DUCKDB_FILEPATH": str(self.warehouse),
            "TAP_FRESHBOOKS_REQUEST_TIMEOUT": str(self.request_timeout),
        }
        if self.batch_size_rows:
            loader["TARGET_DUCKDB_BATCH_SIZE_ROWS"] = str(self.batch_size_rows)
        if self.catalog is not None:
            loader["TAP_FRESHBOOKS__CATALOG"] = str(self.catalog)
        env = meltano_env(
            self.emu, self.token_dir, self.sys_dir, loader, self.grant if self.runs == 0 else None, self.key
        )
        env.update(extra or {})
        return env

    def tap_config(self, name: str, **overrides: t.Any) -> Path:
        """Config for a direct tap run that shares this harness's token store."""
        path = self.workdir / f"{name}.config.json"
        path.write_text(
            json.dumps(
                {
                    "client_id": self.emu.client_id,
                    "client_secret": self.emu.client_secret,
                    "redirect_uri": self.emu.redirect_uri,
                    "api_url": self.emu.url,
                    "auth_url": self.emu.url,
                    "token_store_path": str(self.token_store),
                    "token_encryption_key": self.key,
                    "request_timeout": self.request_timeout,
                    **MELTANO_YML_TAP_CONFIG,
                    **overrides,
                }
            )
        )
        return path

    # -- runs ------------------------------------------------------------------------------------
    def _log(self, label: str) -> Path:
        self.runs += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)  # labels name requests: "reports/x p2", ...
        return self.logs / f"{self.runs:03d}-{safe}.log"

    def meltano(
        self,
        label: str,
        *,
        hook: t.Callable | None = None,
        extra_env: t.Mapping[str, str] | None = None,
        force: bool = False,
        timeout: float = 240,
    ) -> Run:
        """``meltano run [--force] tap-freshbooks target-duckdb``; ``hook`` sees every API request."""
        env = self.env(extra_env)
        log = self._log(label)
        force = force or time.monotonic() < self.stale_job_until
        cmd = [str(MELTANO), "run", *(["--force"] if force else []), "tap-freshbooks", "target-duckdb"]
        started = time.monotonic()
        with log.open("w") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.meltano_proc = proc
        self.faults.hook = hook
        try:
            code: int | None = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
            with contextlib.suppress(psutil.Error):
                processes.reap([*processes.descendants(proc.pid), psutil.Process(proc.pid)], grace=0)
            proc.wait(10)
        finally:
            self.faults.hook = None
        run = Run(label, code, time.monotonic() - started, log)
        save_output(f"chaos meltano run {label}", log.read_text(errors="replace"))
        return run

    def start_tap(
        self, label: str, config: Path, out: Path, state: Path | None = None
    ) -> tuple[subprocess.Popen, Path]:
        """``tap-freshbooks --config C [--state S] > out`` in the background; (process, its log)."""
        log = self._log(label)
        cmd = [str(TAP), "--config", str(config), *(["--state", str(state)] if state else [])]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_FRESHBOOKS", "MELTANO_"))}
        with out.open("w") as stdout, log.open("w") as stderr:
            proc = subprocess.Popen(cmd, cwd=self.workdir, env=env, stdout=stdout, stderr=stderr)
        return proc, log

    def finish(
        self, label: str, proc: subprocess.Popen, log: Path, started: float, timeout: float = 240
    ) -> Run:
        try:
            code: int | None = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            code = None
        save_output(f"chaos {label}", log.read_text(errors="replace"))
        return Run(label, code, time.monotonic() - started, log)

    def load(self, label: str, messages: Path) -> Run:
        """``target-duckdb`` fed a file of Singer messages (a run whose load waited for the lock)."""
        config = self.workdir / "target.json"
        config.write_text(
            json.dumps(
                {
                    "filepath": str(self.warehouse),
                    **MELTANO_YML_TARGET_CONFIG,
                    **({"batch_size_rows": self.batch_size_rows} if self.batch_size_rows else {}),
                }
            )
        )
        log = self._log(label)
        started = time.monotonic()
        with messages.open() as stdin, log.open("w") as stderr:
            proc = subprocess.run(
                [str(TARGET), "--config", str(config)],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                timeout=240,
                check=False,
            )
        save_output(f"chaos {label}", log.read_text(errors="replace"))
        return Run(label, proc.returncode, time.monotonic() - started, log)

    def _meltano_state(self, *args: str) -> str:
        proc = subprocess.run(
            [str(MELTANO), "state", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        save_output(f"chaos meltano state {args[0]}", proc.stdout + "\n" + proc.stderr)
        if proc.returncode != 0:
            raise RuntimeError(f"meltano state {args[0]} failed: {proc.stderr.strip()[-400:]}")
        return proc.stdout

    def state_get(self) -> dict:
        """The Singer state Meltano keeps for this pipeline (``meltano state get``)."""
        return json.loads(self._meltano_state("get", STATE_ID))["singer_state"]

    def state_set(self, singer_state: dict) -> None:
        self._meltano_state("set", "--force", STATE_ID, json.dumps({"singer_state": singer_state}))

    # -- checks ----------------------------------------------------------------------------------
    def verify(self) -> checks.Verdict:
        verdict = checks.Verdict()
        checks.reconcile(self.reconcile_config, self.warehouse, verdict)
        checks.own_check(self.emu, self.warehouse, self.changes.marks, STREAMS, verdict)
        return verdict

    def reconcile_cli(self) -> subprocess.CompletedProcess:
        """The console script itself: ``tap-freshbooks reconcile ... --format json``."""
        proc = subprocess.run(
            [
                str(RECONCILE),
                "reconcile",
                "--config",
                str(self.reconcile_config),
                "--warehouse",
                f"duckdb://{self.warehouse}",
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            cwd=self.workdir,
        )
        save_output("chaos tap-freshbooks reconcile", proc.stdout + "\n" + proc.stderr)
        return proc

    def marks(self) -> dict:
        return checks.load_marks(self.warehouse)
