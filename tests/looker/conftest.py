"""Fixtures for the LookML tests: one real pipeline load into DuckDB, shared by the session.

The load is the product path: the FreshBooks emulator (seed "small": two accounts, USD and CAD,
deleted and archived records, a second currency per account) -> ``meltano run tap-freshbooks
target-duckdb`` -> a DuckDB file. The checker and the measure tests read that file; the emulator
stays up as the source of truth.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "tests", ROOT / "tests" / "warehouse", ROOT / "tests" / "looker"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from pipeline_run import Pipeline  # noqa: E402

from freshbooks_emulator import FreshBooksEmulator  # noqa: E402

LOOKER_DIR = ROOT / "looker"


class Loaded:
    def __init__(self, emu: FreshBooksEmulator, path: Path, pipeline: Pipeline):
        self.emu = emu
        self.path = path
        self.pipeline = pipeline


def _loaded(tmp_path_factory: pytest.TempPathFactory, seed: str):
    """Run the real pipeline (meltano, tap, target-duckdb) once on an emulator with ``seed``."""
    work = tmp_path_factory.mktemp(f"{seed}_load")
    emu = FreshBooksEmulator(seed=seed).start()
    try:
        path = work / "warehouse.duckdb"
        pipeline = Pipeline(emu, work, "target-duckdb", {"TARGET_DUCKDB_FILEPATH": str(path)})
        pipeline.run()
        yield Loaded(emu, path, pipeline)
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def duckdb_load(tmp_path_factory: pytest.TempPathFactory):
    yield from _loaded(tmp_path_factory, "small")


@pytest.fixture(scope="session")
def demo_load(tmp_path_factory: pytest.TempPathFactory):
    """The demo seed: ~10x more records per stream, so relationship and key checks have teeth."""
    yield from _loaded(tmp_path_factory, "demo")


@pytest.fixture(scope="session")
def checker(duckdb_load):
    from freshbooks_looker.check import Checker
    from freshbooks_looker.warehouse import DuckDBWarehouse

    wh = DuckDBWarehouse(duckdb_load.path)
    yield Checker(LOOKER_DIR, wh)
    wh.close()


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A scratch copy of the LookML project to break on purpose."""
    dst = tmp_path / "looker"
    shutil.copytree(
        LOOKER_DIR, dst, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "freshbooks_looker")
    )
    return dst
