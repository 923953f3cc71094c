"""Built distributions, made the way a release makes them (`python -m build`), and fresh venvs.

(Not a conftest.py: tests/ has several, and the tap tests import the top one as `conftest`. Not a
package either: `packaging` is also a library that pip and build import.)

The builds and the fresh virtualenvs use uv with ``UV_OFFLINE=1``: everything they need (hatchling
and the packages' dependencies) is in uv's cache once `scripts/setup` has run `meltano install`,
which installs these same packages through uv. A dependency the cache lacks (a Python version's
own binary wheels, the first time) is fetched from the package registry, as `scripts/setup` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {  # source directory -> PyPI distribution name
    "freshbooks-auth": "freshbooks-warehouse-auth",
    "tap-freshbooks": "freshbooks-warehouse-tap",
    "webhook-bridge": "freshbooks-webhook-bridge",
    "looker": "freshbooks-looker",
    "target-duckdb-fast": "freshbooks-warehouse-target-duckdb",
}
UV = str(Path(sys.executable).parent / "uv")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no project variables, no PYTHONPATH, no venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "TAP_FRESHBOOKS",
                "MELTANO_",
                "TARGET_",
                "WEBHOOK_BRIDGE",
                "FRESHBOOKS_LOOKER",
                "PYTHON",
                "VIRTUAL_ENV",
                "SINGER_SDK_LOG",
            )
        )
    }
    env.update(extra)
    return env


def uv_install(python: Path, *requirements: str, cwd: Path) -> None:
    """`uv pip install` into the venv of ``python``: from the cache, else from the registry."""
    command = [UV, "pip", "install", "--quiet", "--python", str(python), *requirements]
    offline = subprocess.run(
        command,
        cwd=cwd,
        env=clean_env(UV_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if offline.returncode == 0:
        return
    online = subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=600, check=False
    )
    assert online.returncode == 0, (
        f"uv pip install failed:\n{offline.stderr[-1500:]}\n{online.stderr[-1500:]}"
    )


def build_wheels(out: Path) -> dict[str, Path]:
    """{distribution name: built wheel}, from `python -m build --wheel` of each package."""
    for directory in PACKAGES:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "build",
                "--wheel",
                "--installer",
                "uv",
                "--outdir",
                str(out),
                str(ROOT / directory),
            ],
            cwd=out,
            env=clean_env(UV_OFFLINE="1", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}"),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, (
            f"python -m build {directory} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    built = {path.name.split("-")[0].replace("_", "-"): path for path in out.glob("*.whl")}
    assert set(built) == set(PACKAGES.values()), sorted(built)
    return built


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def make_venv(path: Path, python: str, wheels: t.Iterable[Path]) -> Path:
    """A fresh venv at ``path`` (interpreter ``python``) with ``wheels`` installed; its python."""
    subprocess.run(
        [UV, "venv", "--quiet", "--python", python, str(path)],
        env=clean_env(UV_OFFLINE="1"),
        cwd=path.parent,
        check=True,
        capture_output=True,
        timeout=120,
    )
    uv_install(venv_python(path), *(str(w) for w in wheels), cwd=path.parent)
    return venv_python(path)
