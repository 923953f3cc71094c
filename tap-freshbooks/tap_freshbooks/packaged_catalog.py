"""The tap's catalog, shipped in the package: ``tap-freshbooks --discover`` answers from it.

Every ``meltano run`` starts with a discovery unless Meltano has the catalog cached, and it caches
none for an editable install (a source checkout, this repository's meltano.yml) nor on a runner that
starts from a clean checkout (CI, cron on a fresh runner, a new container). Building the tap to
discover it imports singer-sdk and every stream: 0.7-0.8 s of each run's start-up on a 2-core
machine, for a catalog no setting changes. The streams and their schemas are fixed in
``streams/``, and ``TapFreshBooks.dynamic_catalog`` is False, so the SDK's own discovery does not
even read the settings.

``catalog.json`` is the SDK's discovery output, byte for byte. To regenerate it after changing a
stream, run ``python -m tap_freshbooks.packaged_catalog --write``.
tests/tap/test_packaged_catalog.py fails when it is stale. Anything but a plain ``--discover
[--config FILE|ENV ...] [--state FILE]`` (what Meltano runs) takes the SDK's path, and so does a
config or state file that the SDK would refuse, so that the SDK's error is what the user sees.

This module is imported before singer-sdk, on every start of the console script: keep it small.
"""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

from tap_freshbooks.config_files import config_file_problem

CATALOG_FILE = Path(__file__).with_name("catalog.json")


def plain_discover(argv: t.Sequence[str]) -> bool:
    """True for ``--discover`` with nothing but ``--config FILE|ENV`` (each file a readable JSON
    object) and ``--state FILE`` (a readable file: the SDK opens it, and Meltano passes one)."""
    if "--discover" not in argv:
        return False
    rest = [arg for arg in argv if arg != "--discover"]
    if len(rest) % 2:
        return False
    for option, value in zip(rest[::2], rest[1::2], strict=True):
        if option == "--config":
            if config_file_problem(value) is not None:
                return False
        elif option == "--state":
            if not _readable(value):
                return False
        else:
            return False
    return True


def _readable(path: str) -> bool:
    try:
        with open(path, encoding="utf-8"):
            return True
    except OSError:
        return False


def answer_discover(argv: t.Sequence[str], out: t.TextIO | None = None) -> bool:
    """Write the packaged catalog for a plain ``--discover``; False when the SDK should answer."""
    if not plain_discover(argv):
        return False
    try:
        text = CATALOG_FILE.read_text(encoding="utf-8")
    except OSError:
        return False  # a build without the file: the SDK discovers as before
    (out or sys.stdout).write(text + "\n")  # the SDK print()s it
    return True


def generated_text() -> str:
    """The SDK's discovery output of this tap now (imports singer-sdk and every stream)."""
    from tap_freshbooks.tap import TapFreshBooks  # noqa: PLC0415

    tap = TapFreshBooks(config={}, validate_config=False, setup_mapper=False)
    return tap.catalog_json_text


def main(argv: t.Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["--write"] and args != ["--check"]:
        print("usage: python -m tap_freshbooks.packaged_catalog --write | --check", file=sys.stderr)
        return 2
    text = generated_text()
    current = CATALOG_FILE.read_text(encoding="utf-8") if CATALOG_FILE.exists() else None
    if args == ["--check"]:
        if current != text:
            print(
                f"{CATALOG_FILE} is stale: python -m tap_freshbooks.packaged_catalog --write", file=sys.stderr
            )
            return 1
        return 0
    if current != text:
        CATALOG_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {CATALOG_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
