"""The built wheels are what a user gets from PyPI: metadata, license, a fresh install that needs no
source tree, and a fresh Meltano project that installs the tap from the wheel and loads DuckDB.

Built once per module with `python -m build --wheel` (distributions.py); about 70-90 s in all.
"""

from __future__ import annotations

import email
import glob
import json
import os
import re
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path

import distributions as dist
import duckdb
import pytest
import yaml
from cryptography.fernet import Fernet

from conftest import run_tap, tap_config
from freshbooks_emulator import FreshBooksEmulator
from security.outputs import save_output

pytestmark = pytest.mark.slow

ROOT = dist.ROOT
SOURCE_VERSION = {
    "freshbooks-warehouse-auth": ROOT / "freshbooks-auth" / "freshbooks_auth" / "__init__.py",
    "freshbooks-warehouse-tap": ROOT / "tap-freshbooks" / "tap_freshbooks" / "__init__.py",
    "freshbooks-webhook-bridge": ROOT / "webhook-bridge" / "webhook_bridge" / "__init__.py",
    "freshbooks-looker": ROOT / "looker" / "freshbooks_looker" / "__init__.py",
}
README = {
    "freshbooks-warehouse-auth": ROOT / "freshbooks-auth" / "README.md",
    "freshbooks-warehouse-tap": ROOT / "tap-freshbooks" / "README.md",
    "freshbooks-webhook-bridge": ROOT / "webhook-bridge" / "README.md",
    "freshbooks-looker": ROOT / "looker" / "README.md",
}
SCRIPTS = {
    "freshbooks-warehouse-auth": None,
    "freshbooks-warehouse-tap": "tap-freshbooks",
    "freshbooks-webhook-bridge": "webhook-bridge",
    "freshbooks-looker": "freshbooks-looker",
}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return dist.build_wheels(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def emulator():
    emu = FreshBooksEmulator(seed="small").start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def reference_counts(emulator, tmp_path_factory) -> dict[str, int]:
    """Records per stream from the source tree's tap, in-process: what the wheel must match."""
    run = run_tap(tap_config(emulator, tmp_path_factory.mktemp("reference")))
    return {stream: len(records) for stream, records in run.records.items()}


def run(
    command: list[str], cwd: Path, env: dict[str, str], label: str, timeout: int = 300
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    save_output(label, proc.stdout[-20000:] + "\n" + proc.stderr)
    return proc


# -- metadata -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SOURCE_VERSION))
def test_wheel_metadata_is_complete(wheels, name) -> None:
    with zipfile.ZipFile(wheels[name]) as wheel:
        files = wheel.namelist()
        dist_info = next(f.split("/")[0] for f in files if f.endswith(".dist-info/METADATA"))
        metadata = email.message_from_string(wheel.read(f"{dist_info}/METADATA").decode())
        license_text = wheel.read(f"{dist_info}/licenses/LICENSE").decode()
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode() if SCRIPTS[name] else ""
    version = re.search(r'__version__ = "([^"]+)"', SOURCE_VERSION[name].read_text()).group(1)
    assert metadata["Name"] == name and metadata["Version"] == version
    assert metadata["License-Expression"] == "MIT"
    assert license_text == (ROOT / "LICENSE").read_text()  # one license, shipped in every wheel
    assert metadata["Requires-Python"] == ">=3.11"
    classifiers = metadata.get_all("Classifier")
    assert {"Programming Language :: Python :: 3.11", "Programming Language :: Python :: 3.12"} <= set(
        classifiers
    )
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Repository", "Issues", "Changelog"} <= set(urls)
    # the package's own README, standalone, is the long description
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == README[name].read_text().strip()
    assert (
        "../README.md" not in metadata.get_payload()
        and "See the repository README" not in metadata.get_payload()
    )
    assert SCRIPTS[name] is None or f"{SCRIPTS[name]} = " in entry_points


def test_the_tap_wheel_ships_its_catalog(wheels) -> None:
    """`tap-freshbooks --discover` answers from it (tap_freshbooks/packaged_catalog.py)."""
    with zipfile.ZipFile(wheels["freshbooks-warehouse-tap"]) as wheel:
        shipped = wheel.read("tap_freshbooks/catalog.json").decode()
    assert shipped == (ROOT / "tap-freshbooks" / "tap_freshbooks" / "catalog.json").read_text()


def requires_dist(wheel_path: Path) -> list[str]:
    with zipfile.ZipFile(wheel_path) as wheel:
        meta = next(f for f in wheel.namelist() if f.endswith(".dist-info/METADATA"))
        return email.message_from_string(wheel.read(meta).decode()).get_all("Requires-Dist") or []


def test_tap_and_bridge_depend_on_the_auth_distribution(wheels) -> None:
    """One auth owner: both depend on freshbooks-warehouse-auth, which depends on neither."""
    tap, bridge = (
        requires_dist(wheels["freshbooks-warehouse-tap"]),
        requires_dist(wheels["freshbooks-webhook-bridge"]),
    )
    assert any(r.startswith("freshbooks-warehouse-auth") for r in tap)
    assert any(r.startswith("freshbooks-warehouse-auth") for r in bridge)
    assert not any(
        r.startswith("freshbooks-warehouse-tap") for r in bridge
    )  # it runs the tap through Meltano
    assert not any(
        r.startswith(("freshbooks-warehouse-tap", "freshbooks-webhook-bridge"))
        for r in requires_dist(wheels["freshbooks-warehouse-auth"])
    )


# -- a fresh venv, no source tree ------------------------------------------------------------------
def interpreter(version: str) -> str:
    """A real python<version> on this machine (pyenv's shims only answer for the global one)."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for candidate in [
        shutil.which(f"python{version}"),
        *sorted(glob.glob(str(root / "versions" / f"{version}.*" / "bin" / f"python{version}"))),
    ]:
        if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    pytest.skip(f"no Python {version} on this machine")


@pytest.mark.parametrize("python", ["3.11", "3.12"])
def test_fresh_venv_runs_the_installed_wheels(wheels, emulator, reference_counts, tmp_path, python) -> None:
    """All four wheels in a new venv, run from a directory outside the repository with no
    PYTHONPATH: --about, --discover and a full extraction against the emulator."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    py = dist.make_venv(tmp_path / "venv", interpreter(python), wheels.values())
    bin_dir = py.parent
    env = dist.clean_env()

    where = run(
        [
            str(py),
            "-c",
            "import sys, freshbooks_auth, tap_freshbooks, webhook_bridge, freshbooks_looker as l;"
            "print(sys.version_info[:2], tap_freshbooks.__file__, l.__file__)",
        ],
        work,
        env,
        "import check",
    )
    assert where.returncode == 0, where.stderr
    assert str(ROOT) not in where.stdout and str(tmp_path / "venv") in where.stdout  # no source tree
    assert f"({python.replace('.', ', ')})" in where.stdout

    about = run([str(bin_dir / "tap-freshbooks"), "--about", "--format", "json"], work, env, "about (wheel)")
    assert about.returncode == 0, about.stderr
    info = json.loads(about.stdout)
    assert info["name"] == "tap-freshbooks" and info["version"] == "0.1.0"
    assert info["supported_python_versions"] == ["3.11", "3.12"]
    assert "client_id" in info["settings"]["properties"]

    config = tmp_path / "config.json"
    config.write_text(json.dumps(tap_config(emulator, tmp_path)))
    discover = run(
        [str(bin_dir / "tap-freshbooks"), "--config", str(config), "--discover"],
        work,
        env,
        "discover (wheel)",
    )
    assert discover.returncode == 0, discover.stderr[-2000:]
    streams = {s["tap_stream_id"] for s in json.loads(discover.stdout)["streams"]}
    assert streams == set(reference_counts)

    sync = run([str(bin_dir / "tap-freshbooks"), "--config", str(config)], work, env, "sync (wheel)")
    assert sync.returncode == 0, sync.stderr[-2000:]
    counts: dict[str, int] = {}
    for line in sync.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            counts[message["stream"]] = counts.get(message["stream"], 0) + 1
    assert counts == reference_counts

    for script in ("webhook-bridge", "freshbooks-looker"):
        helped = run([str(bin_dir / script), "--help"], work, env, f"{script} --help (wheel)")
        assert helped.returncode == 0 and "usage" in helped.stdout.lower(), helped.stderr


# -- a fresh Meltano project, the tap from the wheel ---------------------------------------------------
def test_fresh_meltano_project_installs_the_wheel_and_loads_duckdb(
    wheels, emulator, reference_counts, tmp_path
) -> None:
    """`meltano add --from-ref hub/tap-freshbooks.yml` (offline), `pip_url` pointed at the built
    wheel, `meltano install`, `meltano run tap-freshbooks target-duckdb`: every stream lands.
    target-duckdb's venv is the one scripts/setup installed (linked, not reinstalled)."""
    project = tmp_path / "project"
    (project / "output").mkdir(parents=True)
    main = yaml.safe_load((ROOT / "meltano.yml").read_text())
    loader = next(p for p in main["plugins"]["loaders"] if p["name"] == "target-duckdb")
    (project / "meltano.yml").write_text(
        yaml.safe_dump(
            {
                "requires_meltano": main["requires_meltano"],
                "project_id": str(uuid.uuid4()),
                "default_environment": "dev",
                "send_anonymous_usage_stats": False,
                "environments": [{"name": "dev"}],
                "plugins": {"loaders": [loader]},
            },
            sort_keys=False,
        )
    )
    (project / ".meltano" / "loaders").mkdir(parents=True)
    (project / ".meltano" / "loaders" / "target-duckdb").symlink_to(
        ROOT / ".meltano" / "loaders" / "target-duckdb"
    )
    meltano = str(ROOT / ".venv" / "bin" / "meltano")
    offline = dist.clean_env(
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        UV_OFFLINE="1",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        ALL_PROXY="http://127.0.0.1:9",
        NO_PROXY="",
    )

    added = run(
        [
            meltano,
            "add",
            "--plugin-type",
            "extractor",
            "tap-freshbooks",
            "--from-ref",
            str(ROOT / "hub" / "tap-freshbooks.yml"),
            "--no-install",
        ],
        project,
        offline,
        "meltano add --from-ref (wheel project)",
    )
    assert added.returncode == 0, added.stderr[-2000:]
    definition = yaml.safe_load((project / "meltano.yml").read_text())
    assert set(definition["plugins"]) == {"extractors", "loaders"}
    extractor = next(p for p in definition["plugins"]["extractors"] if p["name"] == "tap-freshbooks")
    assert (
        extractor["variant"] == "freshbooks-warehouse" and extractor["pip_url"] == "freshbooks-warehouse-tap"
    )
    # the files, as a user testing a release would (the auth wheel too: the tap depends on it)
    extractor["pip_url"] = f"{wheels['freshbooks-warehouse-auth']} {wheels['freshbooks-warehouse-tap']}"
    (project / "meltano.yml").write_text(yaml.safe_dump(definition, sort_keys=False))

    installed = run(
        [meltano, "install", "extractor", "tap-freshbooks"],
        project,
        offline,
        "meltano install (wheel project)",
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    tap_module = run(
        [
            str(project / ".meltano" / "extractors" / "tap-freshbooks" / "venv" / "bin" / "python"),
            "-c",
            "import tap_freshbooks; print(tap_freshbooks.__file__)",
        ],
        project,
        offline,
        "plugin venv import",
    )
    assert "site-packages" in tap_module.stdout and str(ROOT) not in tap_module.stdout

    env = {
        **offline,
        "TAP_FRESHBOOKS_CLIENT_ID": emulator.client_id,
        "TAP_FRESHBOOKS_CLIENT_SECRET": emulator.client_secret,
        "TAP_FRESHBOOKS_REDIRECT_URI": emulator.redirect_uri,
        "TAP_FRESHBOOKS_API_URL": emulator.url,
        "TAP_FRESHBOOKS_AUTH_URL": emulator.url,
        "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "TAP_FRESHBOOKS_REFRESH_TOKEN": emulator.issue_grant()["refresh_token"],
        "NO_PROXY": "127.0.0.1,localhost",
    }
    # token_store_path is not set: the Hub definition's default ($MELTANO_PROJECT_ROOT/.secrets/...) is used
    ran = run(
        [meltano, "run", "tap-freshbooks", "target-duckdb"],
        project,
        env,
        "meltano run (wheel project)",
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr[-4000:]
    assert (project / ".secrets" / "freshbooks_tokens.fernet").is_file()

    con = duckdb.connect(str(project / "output" / "warehouse.duckdb"), read_only=True)
    try:
        loaded = {
            table: con.execute(f"select count(*) from freshbooks.{table}").fetchone()[0]
            for (table,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'freshbooks'"
            ).fetchall()
        }
    finally:
        con.close()
    assert loaded == reference_counts
