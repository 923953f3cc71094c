"""The Singer SDK's standard tap tests, run against the FreshBooks emulator."""

from __future__ import annotations

import atexit
import tempfile
from pathlib import Path

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from conftest import tap_config
from freshbooks_emulator import FreshBooksEmulator
from tap_freshbooks.tap import TapFreshBooks

# The suite builds its config when the class is created, so the emulator starts at import.
_EMULATOR = FreshBooksEmulator(seed="small").start()
atexit.register(_EMULATOR.stop)
_CONFIG = tap_config(_EMULATOR, Path(tempfile.mkdtemp(prefix="tap-fb-sdk-")))

TestTapFreshBooksStandard = get_tap_test_class(
    tap_class=TapFreshBooks,
    config=_CONFIG,
    suite_config=SuiteConfig(max_records_limit=None),
)
