"""Run the real pipeline as a runner would: ``meltano run`` in a project dir, with its own system DB.

A "runner" here is a Meltano project directory plus a ``.meltano`` system dir (system DB, run dir,
default lock dir). Plugin virtualenvs are reused from the repository's ``.meltano`` (linked, as in
``tests/warehouse/pipeline_run.py``), so nothing is reinstalled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from cryptography.fernet import Fernet

from security.outputs import save_output

ROOT = Path(__file__).resolve().parents[2]
MELTANO = ROOT / ".venv" / "bin" / "meltano"
TAP = ROOT / ".venv" / "bin" / "tap-freshbooks"
BUSY_LINE = "pipeline is already running"


def link_plugins(sys_dir: Path) -> None:
    sys_dir.mkdir(parents=True, exist_ok=True)
    for kind in ("extractors", "loaders", "utilities"):
        src, dst = ROOT / ".meltano" / kind, sys_dir / kind
        if src.is_dir() and not dst.exists():
            dst.symlink_to(src, target_is_directory=True)


def clone_project(dest: Path) -> Path:
    """The tracked files of the repository (``git ls-files``) copied to ``dest``: a fresh clone."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        if not name or not (ROOT / name).is_file():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return dest


def postgres_env(pg) -> dict[str, str]:
    return {
        "TARGET_POSTGRES_HOST": pg.host,
        "TARGET_POSTGRES_PORT": str(pg.port),
        "TARGET_POSTGRES_USER": pg.user,
        "TARGET_POSTGRES_PASSWORD": "",
        "TARGET_POSTGRES_DATABASE": pg.database,
    }


class Runner:
    """One runner: a project dir, its own HOME and system dir, and the environment of its runs."""

    def __init__(self, emu, project: Path, home: Path, env: dict[str, str]) -> None:
        self.emu = emu
        self.project = project
        self.home = home
        self.sys_dir = home / "meltano-sys"
        link_plugins(self.sys_dir)
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TAP_FRESHBOOKS", "MELTANO_", "TARGET_", "WEBHOOK_BRIDGE_", "AWS_"))
        }
        self.env = {
            **base,
            "HOME": str(home),
            "TAP_FRESHBOOKS_CLIENT_ID": emu.client_id,
            "TAP_FRESHBOOKS_CLIENT_SECRET": emu.client_secret,
            "TAP_FRESHBOOKS_REDIRECT_URI": emu.redirect_uri,
            "TAP_FRESHBOOKS_API_URL": emu.url,
            "TAP_FRESHBOOKS_AUTH_URL": emu.url,
            "MELTANO_ENVIRONMENT": "dev",
            "MELTANO_SYS_DIR_ROOT": str(self.sys_dir),
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_CLI_LOG_LEVEL": "warning",
            **env,
        }
        self.logs: list[Path] = []

    def start(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """``meltano run ...`` in its own process group, output to a log file."""
        log = self.home / f"run-{len(self.logs) + 1}.log"
        self.logs.append(log)
        handle = log.open("w")
        proc = subprocess.Popen(
            [str(MELTANO), "run", *args],
            cwd=self.project,
            env={**self.env, **(extra_env or {})},
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        handle.close()
        proc.log = log  # type: ignore[attr-defined]
        return proc

    def run(
        self, *args: str, timeout: float = 300, extra_env: dict[str, str] | None = None
    ) -> tuple[int, str]:
        proc = self.start(*args, extra_env=extra_env)
        code = proc.wait(timeout=timeout)
        output = proc.log.read_text()  # type: ignore[attr-defined]
        save_output(f"meltano run {' '.join(args)}", output)
        return code, output

    def reconcile(self, warehouse: str, *args: str) -> tuple[int, str]:
        """``tap-freshbooks reconcile`` with this runner's tap settings (same token store)."""
        proc = subprocess.run(
            [str(TAP), "reconcile", "--config", "ENV", "--warehouse", warehouse, "--format", "text", *args],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        save_output("tap-freshbooks reconcile", proc.stdout + proc.stderr)
        return proc.returncode, proc.stdout + proc.stderr


def token_env(token_path: Path, grant: dict | None = None, key: str | None = None) -> dict[str, str]:
    env = {
        "TAP_FRESHBOOKS_TOKEN_STORE_PATH": str(token_path),
        "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY": key or Fernet.generate_key().decode(),
    }
    if grant is not None:
        env["TAP_FRESHBOOKS_REFRESH_TOKEN"] = grant["refresh_token"]
    return env


def wait_until(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
