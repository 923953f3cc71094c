"""What a run starts: the ``meltano`` command line and the child's environment.

A run gets a lower CPU priority (``nice``), the bridge's environment without the bridge's own
variables (its secrets among them), and the run's tap settings (``record_ids`` of a webhook run,
``account_ids``, the state ID suffix of a per-account pipeline).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from webhook_bridge.settings import Settings

SUFFIX_VAR = "MELTANO_RUN_STATE_ID_SUFFIX"  # meltano run's --state-id-suffix, read by the tap's lock
BRIDGE_PREFIXES = ("WEBHOOK_BRIDGE_", "MELTANO_UTILITY_")  # the bridge's own settings (and secrets)


class TapRun(t.TypedDict, total=False):
    """One run's tap settings: absent ones are not set (a poll has no ``record_ids``)."""

    record_ids: Mapping[str, Sequence[int]]
    event_received_at: Mapping[str, Mapping[str, str]]
    account_ids: Sequence[str]


def without_bridge_variables(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` minus the bridge's own variables: a child process never sees the bridge's secrets."""
    return {k: v for k, v in env.items() if not k.startswith(BRIDGE_PREFIXES)}


def resolve_executable(name: str, project_root: Path | None = None) -> str:
    """``meltano`` on PATH; else the link Meltano keeps in ``<project>/.meltano/run/bin`` (there when
    the bridge runs as ``meltano invoke webhook-bridge``, whose venv has no meltano); else next to
    this Python."""
    if os.sep in name:
        return name
    found = shutil.which(name)
    if found:
        return found
    if name == "meltano" and project_root is not None:
        link = project_root / ".meltano" / "run" / "bin"
        if link.exists():
            return str(link)
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def nice_prefix(settings: Settings) -> list[str]:
    """``nice -n N``: runs get a lower CPU priority (``run_niceness``) so that, on a small machine,
    acknowledging webhooks (FreshBooks waits 10 s at most) always wins over a tap run (which can wait)."""
    nice = shutil.which("nice") if settings.run_niceness > 0 else None
    return [nice, "-n", str(settings.run_niceness)] if nice else []


def meltano_command(settings: Settings) -> list[str]:
    """``[nice -n N] meltano [--environment E]``, to which a subcommand is appended."""
    cmd = nice_prefix(settings)
    cmd.append(resolve_executable(settings.meltano_executable, settings.project_root))
    if settings.meltano_environment:
        cmd.append(f"--environment={settings.meltano_environment}")
    return cmd


def build_command(settings: Settings, *, force: bool = False) -> list[str]:
    """``[nice -n N] meltano [--environment E] run [--force] <extractor> <loader>``."""
    cmd = meltano_command(settings)
    cmd.append("run")
    if force:
        cmd.append("--force")
    cmd += [settings.extractor, settings.loader]
    return cmd


def build_env(
    base: Mapping[str, str],
    settings: Settings,
    *,
    record_ids: Mapping[str, Sequence[int]] | None = None,
    event_received_at: Mapping[str, Mapping[str, str]] | None = None,
    select: Sequence[str] | None = None,
    account_ids: Sequence[str] | None = None,
    state_id_suffix: str | None = None,
) -> dict[str, str]:
    """The child's environment: the bridge's own (minus its secrets) plus the run's tap settings.

    A poll (no ``record_ids``) gets none of the webhook-only variables, even if they were set in the
    bridge's environment by mistake. A webhook run sends no stream selection (``select`` is a
    Meltano select filter for callers that want one): the tap narrows the run to its ``record_ids``
    streams and the streams riding along with them. ``state_id_suffix`` (a per-account pipeline in
    replicated mode) becomes ``MELTANO_RUN_STATE_ID_SUFFIX``: ``meltano run`` appends it to the state
    ID, and the tap keys its pipeline lock with it.
    """
    env = without_bridge_variables(base)
    prefix = settings.extractor_env_prefix
    for var in (f"{prefix}_RECORD_IDS", f"{prefix}_EVENT_RECEIVED_AT", f"{prefix}__SELECT_FILTER"):
        env.pop(var, None)
    if record_ids is not None:
        env[f"{prefix}_RECORD_IDS"] = json.dumps(dict(record_ids), separators=(",", ":"))
        env[f"{prefix}_EVENT_RECEIVED_AT"] = json.dumps(dict(event_received_at or {}), separators=(",", ":"))
    if record_ids is not None and select is not None:  # the tap itself adds what rides along
        env[f"{prefix}__SELECT_FILTER"] = json.dumps(list(select))
    if account_ids is not None:
        env[f"{prefix}_ACCOUNT_IDS"] = json.dumps(list(account_ids))
    if state_id_suffix is not None:
        env[SUFFIX_VAR] = state_id_suffix
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
