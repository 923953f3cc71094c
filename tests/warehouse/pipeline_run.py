"""Run the real pipeline (``meltano run tap-freshbooks <loader>``) against the FreshBooks emulator.

Each call gets its own MELTANO_SYS_DIR_ROOT (own system DB, so own state and run directory), and
reuses the plugin virtualenvs that ``scripts/setup`` installed in the project's ``.meltano`` (linked,
not copied) so a test does not reinstall them.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from cryptography.fernet import Fernet

from security.outputs import save_output

ROOT = Path(__file__).resolve().parents[2]


class PipelineFailed(AssertionError):
    pass


def meltano_env(
    emu,
    token_dir: Path,
    sys_dir: Path,
    loader_env: dict[str, str],
    grant: dict | None = None,
    token_key: str = "",
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAP_FRESHBOOKS", "MELTANO_", "TARGET_", "FRESHBOOKS_LOOKER"))
    }
    token_dir.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "TAP_FRESHBOOKS_CLIENT_ID": emu.client_id,
            "TAP_FRESHBOOKS_CLIENT_SECRET": emu.client_secret,
            "TAP_FRESHBOOKS_REDIRECT_URI": emu.redirect_uri,
            "TAP_FRESHBOOKS_API_URL": emu.url,
            "TAP_FRESHBOOKS_AUTH_URL": emu.url,
            "TAP_FRESHBOOKS_TOKEN_STORE_PATH": str(token_dir / "tokens.fernet"),
            "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY": token_key,
            "MELTANO_ENVIRONMENT": "dev",
            "MELTANO_SYS_DIR_ROOT": str(sys_dir),
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_CLI_LOG_LEVEL": "warning",
        }
    )
    if grant is not None:
        env["TAP_FRESHBOOKS_REFRESH_TOKEN"] = grant["refresh_token"]
    env.update(loader_env)
    return env


def _link_plugins(sys_dir: Path) -> None:
    sys_dir.mkdir(parents=True, exist_ok=True)
    for kind in ("extractors", "loaders"):
        src = ROOT / ".meltano" / kind
        dst = sys_dir / kind
        if src.is_dir() and not dst.exists():
            dst.symlink_to(src, target_is_directory=True)


class Pipeline:
    """One Meltano project state (sys dir + token store) that can run several times."""

    def __init__(self, emu, workdir: Path, loader: str, loader_env: dict[str, str]):
        self.emu = emu
        self.workdir = Path(workdir)
        self.loader = loader
        self.sys_dir = self.workdir / ".meltano"
        _link_plugins(self.sys_dir)
        self.grant = emu.issue_grant()
        self.token_key = Fernet.generate_key().decode()
        self.loader_env = loader_env
        self.runs = 0
        self.durations: list[float] = []

    def run(self, timeout: float = 300) -> subprocess.CompletedProcess:
        env = meltano_env(
            self.emu,
            self.workdir / "tokens",
            self.sys_dir,
            self.loader_env,
            self.grant if self.runs == 0 else None,
            self.token_key,
        )
        started = time.monotonic()
        proc = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "meltano"), "run", "tap-freshbooks", self.loader],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.durations.append(time.monotonic() - started)
        self.runs += 1
        log = self.workdir / f"meltano-run-{self.runs}.log"
        log.write_text(proc.stdout + "\n" + proc.stderr)
        save_output(
            f"meltano run tap-freshbooks {self.loader} #{self.runs}", proc.stdout + "\n" + proc.stderr
        )
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.splitlines()[-40:])
            raise PipelineFailed(
                f"meltano run tap-freshbooks {self.loader} failed "
                f"(exit {proc.returncode}, log {log}):\n{tail}"
            )
        return proc
