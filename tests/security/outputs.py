"""Where tests that run subprocesses put what those processes printed, so the secret scan sees it.

``save_output(name, text)`` writes one JSON file into the per-session directory that
``tests/security/plugin.py`` creates (named by the ``OUTPUT_DIR_ENV`` environment variable) and scans
at the end of the session. Outside a pytest session (benchmarks, the demo) it does nothing.

Save outputs only: never a data file a test wrote on purpose (a config holding a secret is not a leak).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from pathlib import Path

OUTPUT_DIR_ENV = "FRESHBOOKS_TEST_OUTPUT_DIR"

_counter = itertools.count(1)
_lock = threading.Lock()


def current_test() -> str:
    """The running test's node id (pytest sets PYTEST_CURRENT_TEST), or ``"<session>"``."""
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    return current.rsplit(" (", 1)[0] if current else "<session>"


def save_output(name: str, text: str | bytes | None) -> Path | None:
    """Keep ``text`` (a process's stdout/stderr/log) for the end-of-session secret scan."""
    directory = os.environ.get(OUTPUT_DIR_ENV)
    if not directory or not text:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    with _lock:
        number = next(_counter)
    path = Path(directory) / f"{os.getpid()}-{number:06d}.json"
    try:
        path.write_text(json.dumps({"test": current_test(), "name": name, "text": text}), encoding="utf-8")
    except OSError:
        return None
    return path
