"""Run the pipeline for one account group: ``meltano run tap-freshbooks--<group> <loader>``.

No Dagster here: the asset (definitions.py) calls ``run_group`` from a thread pool. Each run is a
``meltano run`` process of its own, with the group's own plugin, hence its own state ID, pipeline
lock and run directory. Its output goes to a log file; what comes back is a ``GroupResult`` with the
one line the tap (or the loader) gave when it failed. The tap never logs tokens or secrets, and
neither does this module: it only reads ``[error]`` lines.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import typing as t
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .groups import AccountGroup

#: the tap's line when another run of the same group holds the pipeline lock (README "One pipeline lock")
BUSY = "another run of this pipeline is already running"
#: Meltano's own refusal when a job with the same state ID is RUNNING in its system database
MELTANO_BUSY = "pipeline is already running"
_ERROR_LINE = re.compile(r"\[error\s*\]\s+(\S+)\s+(.*)$")


@dataclass
class GroupResult:
    group: str
    extractor: str
    state_id: str
    status: str  # "ok" | "failed" | "busy" (another run of this group holds its lock: nothing lost)
    exit_code: int | None
    seconds: float
    error: str | None = None
    log: str | None = None
    accounts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, t.Any]:
        return asdict(self)


def project_root() -> Path:
    return Path(
        os.environ.get("FRESHBOOKS_DAGSTER_PROJECT_ROOT")
        or os.environ.get("MELTANO_PROJECT_ROOT")
        or os.getcwd()
    ).resolve()


def environment_name() -> str:
    return os.environ.get("FRESHBOOKS_DAGSTER_ENVIRONMENT") or os.environ.get("MELTANO_ENVIRONMENT") or "dev"


def loader_name() -> str:
    return os.environ.get("FRESHBOOKS_DAGSTER_LOADER") or "target-duckdb"


def state_id(environment: str, extractor: str, loader: str) -> str:
    """Meltano's state ID for ``meltano run <extractor> <loader>`` in ``environment``."""
    return f"{environment}:{extractor}-to-{loader}"


def group_env(group: AccountGroup, loader: str, duckdb_dir: Path | None) -> dict[str, str]:
    """Per-group environment. DuckDB takes one writer per file, so each group loads its own file."""
    if loader == "target-duckdb" and duckdb_dir is not None:
        duckdb_dir.mkdir(parents=True, exist_ok=True)  # target-duckdb does not create the folder
        return {"TARGET_DUCKDB_FILEPATH": str(duckdb_dir / f"{group.name}.duckdb")}
    return {}


def failure_line(output: str, extractor: str) -> str:
    """The plugin's own error line (the tap says what to do in one line), else Meltano's last one."""
    plugin_lines: list[str] = []
    meltano_lines: list[str] = []
    for line in output.splitlines():
        match = _ERROR_LINE.search(line)
        if match:
            (meltano_lines if match.group(1) == "meltano" else plugin_lines).append(
                str(match.group(2)).strip()
            )
    for line in plugin_lines:  # the first plugin error is the cause; later ones are consequences
        if line:
            return line
    tail = [line.strip() for line in output.splitlines() if line.strip()]
    return (meltano_lines or tail or [f"{extractor}: meltano run failed with no output"])[0]


def prepare_system_db(
    *,
    project_root: Path,
    meltano: str,
    environment: str,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> str | None:
    """Migrate Meltano's system database once, before the parallel runs: measured here, three
    ``meltano run`` starting together on a new system database race on its migration (two fail with
    ``table job already exists``). Returns None, or the error line when it failed."""
    proc = subprocess.run(
        [meltano, "--environment", environment, "upgrade", "database"],
        cwd=project_root,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return None if proc.returncode == 0 else failure_line(proc.stdout + proc.stderr, "meltano")


def run_group(
    group: AccountGroup,
    *,
    project_root: Path,
    meltano: str,
    environment: str,
    loader: str,
    log_dir: Path,
    full_refresh: bool = False,
    duckdb_dir: Path | None = None,
    timeout: float = 3600,
    env: dict[str, str] | None = None,
) -> GroupResult:
    """One ``meltano run`` for the group; never raises for a failed run (the result says it)."""
    sid = state_id(environment, group.extractor, loader)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{group.name}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    command = [meltano, "--environment", environment, "run"]
    if full_refresh:
        command.append("--full-refresh")
    command += [group.extractor, loader]
    run_env = {**os.environ, **(env or {}), **group_env(group, loader, duckdb_dir)}
    started = time.monotonic()
    with log.open("w") as out:
        # its own process group: a timeout stops meltano, the tap and the loader together
        proc = subprocess.Popen(
            command,
            cwd=project_root,
            env=run_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    code: int | None
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # Meltano stops gracefully; the lock keeper frees the lock
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        code = None
    seconds = round(time.monotonic() - started, 2)
    output = log.read_text(errors="replace")
    result = GroupResult(
        group.name, group.extractor, sid, "ok", code, seconds, log=str(log), accounts=list(group.account_ids)
    )
    if code == 0:
        return result
    result.error = (
        f"{group.extractor}: no result after {timeout:g} s (meltano run timed out)"
        if code is None
        else failure_line(output, group.extractor)
    )
    result.status = "busy" if BUSY in output or MELTANO_BUSY in output else "failed"
    return result
