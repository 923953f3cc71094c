"""A copy of the project as a fresh clone has it, plus the plugin venvs `scripts/setup` installed.

Files: everything git tracks or would track (`git ls-files --cached --others --exclude-standard`),
so no `output/` content, `.env`, `.secrets/` or `.meltano/`. The Meltano plugin venvs of this
checkout are linked (not copied or reinstalled) into the copy's `.meltano/`; the tap inside them is
the editable install of this checkout, i.e. the same code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MELTANO = ROOT / ".venv" / "bin" / "meltano"
PYTHON = ROOT / ".venv" / "bin" / "python"
PLUGIN_KINDS = ("extractors", "loaders", "utilities")
OWN_PREFIXES = ("TAP_FRESHBOOKS", "TARGET_", "MELTANO_", "FRESHBOOKS_LOOKER", "WEBHOOK_BRIDGE")


def copy_project(dest: Path) -> Path:
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():  # deleted-but-tracked files are skipped
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    sys_dir = dest / ".meltano"
    sys_dir.mkdir()
    for kind in PLUGIN_KINDS:
        if (ROOT / ".meltano" / kind).is_dir():
            (sys_dir / kind).symlink_to(ROOT / ".meltano" / kind, target_is_directory=True)
    return dest


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any project setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env.update(extra)
    return env


def meltano(
    project: Path, env: dict[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MELTANO), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
