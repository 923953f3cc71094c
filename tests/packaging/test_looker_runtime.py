"""The runtime install of freshbooks-looker (issue 11 point 5): the wheel with its required
dependencies only (requests, PyYAML, lkml), no extra, in a fresh venv outside the repository.

`post-load` runs there for real (datagroup reset on the fake Looker API, 127.0.0.1), and the
development tools fail with one line that names the extra to install: `check`, importing
`freshbooks_looker.check` / `.sqlgen`, and a warehouse driver (`drift --duckdb`). One wheel build
and one venv from uv's cache: about 10 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import distributions as dist
import pytest

from looker.fake_looker import FakeLooker

ROOT = dist.ROOT
#: what only the extras bring: none of it may be in the runtime install
EXTRA_MODULES = ("liquid", "sqlglot", "duckdb", "psycopg")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the freshbooks-looker wheel and its required dependencies; its bin."""
    out = tmp_path_factory.mktemp("looker_runtime")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--installer",
            "uv",
            "--outdir",
            str(out / "dist"),
            str(ROOT / "looker"),
        ],
        cwd=out,
        env=dist.clean_env(UV_OFFLINE="1", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    wheels = list((out / "dist").glob("freshbooks_looker-*.whl"))
    assert len(wheels) == 1, wheels
    return dist.make_venv(out / "venv", sys.executable, wheels).parent


def run(bin_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    work = bin_dir.parent.parent  # outside the repository: no source tree on the path
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        cwd=work,
        env=dist.clean_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_runtime_install_has_no_development_dependency(runtime: Path) -> None:
    found = run(
        runtime,
        "python",
        "-c",
        "import importlib.util as u, freshbooks_looker as f;"
        f"print(f.__file__); print([m for m in {EXTRA_MODULES!r} if u.find_spec(m)])",
    )
    assert found.returncode == 0, found.stderr
    where, missing = found.stdout.splitlines()
    assert str(ROOT) not in where and str(runtime.parent) in where  # the wheel, not the source tree
    assert missing == "[]", missing


def test_post_load_runs_with_the_runtime_install(runtime: Path) -> None:
    helped = run(runtime, "freshbooks-looker", "post-load", "--help")
    assert helped.returncode == 0 and "usage: freshbooks-looker post-load" in helped.stdout, helped.stderr
    looker = FakeLooker().start()
    try:
        done = run(
            runtime,
            "freshbooks-looker",
            "post-load",
            env={
                "FRESHBOOKS_LOOKER_BASE_URL": looker.url,
                "FRESHBOOKS_LOOKER_CLIENT_ID": looker.client_id,
                "FRESHBOOKS_LOOKER_CLIENT_SECRET": looker.client_secret,
            },
        )
    finally:
        looker.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "post-load: refresh: datagroup freshbooks::freshbooks_load reset" in done.stdout
    assert ("PATCH", "/api/4.0/datagroups/7") in looker.endpoints()


@pytest.mark.parametrize("module", ["check", "sqlgen"])
def test_importing_a_development_tool_fails_cleanly(runtime: Path, module: str) -> None:
    imported = run(runtime, "python", "-c", f"import freshbooks_looker.{module}")
    assert imported.returncode == 1
    last = imported.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("freshbooks_looker.extras.ExtraMissing: ")
        and "pip install 'freshbooks-looker[dev]'" in last
    )


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["check"], "dev"),
        (["check", "--duckdb", "output/warehouse.duckdb"], "dev"),
        (["drift", "--duckdb", "warehouse.duckdb"], "duckdb"),
        (["timestamptz", "--postgres", "postgresql://127.0.0.1:9/x"], "postgres"),
    ],
)
def test_a_command_whose_extra_is_missing_says_which_in_one_line(
    runtime: Path, args: list[str], extra: str
) -> None:
    done = run(runtime, "freshbooks-looker", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"pip install 'freshbooks-looker[{extra}]'" in done.stderr and "Traceback" not in done.stderr


def test_generate_without_the_tap_says_where_to_run_it(runtime: Path) -> None:
    done = run(runtime, "freshbooks-looker", "generate", "--check")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stdout + done.stderr
    assert "where tap-freshbooks (freshbooks-warehouse-tap) is installed" in done.stderr
