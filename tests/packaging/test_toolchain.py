"""One toolchain (issue 11 point 6): ruff (lint and format) and mypy (strict) with zero findings.

The configuration is the repository's pyproject.toml ([tool.ruff], [tool.mypy]); the tools are the
exact versions pinned in requirements-dev.txt, so a finding here is a finding on every machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Everything the project ships and runs: the four packages, the orchestration code location, the
# tests with their emulators, the benchmarks and scripts.
RUFF_PATHS = [
    "freshbooks-auth/freshbooks_auth",
    "tap-freshbooks/tap_freshbooks",
    "webhook-bridge/webhook_bridge",
    "looker/freshbooks_looker",
    "orchestration/dagster/freshbooks_dagster",
    "target-duckdb-fast/target_duckdb_fast",
    "tests",  # with the FreshBooks emulator, the chaos suite, fixtures and the Snowflake shim
    "benchmarks",  # benchmarks/.venv-dlt is excluded in [tool.ruff]
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scripts").glob("*.py")),
]
# Files left out of the check, each with the reason (none today).
RUFF_EXCLUDE: list[str] = []


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize("command", ["check", "format"])
def test_ruff_has_no_findings(command: str) -> None:
    extra = ["--check", "--diff"] if command == "format" else ["--output-format", "concise"]
    exclude = ["--extend-exclude", ",".join(RUFF_EXCLUDE)] if RUFF_EXCLUDE else []
    result = _run(str(BIN / "ruff"), command, *extra, *exclude, *RUFF_PATHS)
    assert result.returncode == 0, f"ruff {command}:\n{result.stdout[-6000:]}{result.stderr[-2000:]}"


def test_mypy_strict_has_no_findings() -> None:
    """The packages listed in [tool.mypy] files, strict."""
    result = _run(str(BIN / "mypy"))
    assert result.returncode == 0, f"mypy:\n{result.stdout[-6000:]}{result.stderr[-2000:]}"
    assert "Success: no issues found" in result.stdout
