"""Every secret the emulators hand out, so the test suite can prove none of them leaks into an output.

The FreshBooks emulator records its client secret, access and refresh tokens, authorization codes,
callback verifiers and the webhook signatures it computes; the fake Looker records its client secret
and access tokens. ``tests/security/plugin.py`` scans every captured output for them.

The registry is process-wide and thread-safe. When the environment variable named by ``ENV_VAR`` is
set, each new secret is also appended to that file as one ``kind<TAB>value`` line, so secrets issued
by an emulator running as a separate process reach the scan in the pytest process.
"""

from __future__ import annotations

import os
import threading

ENV_VAR = "FRESHBOOKS_EMULATOR_SECRETS_FILE"

_lock = threading.Lock()
_issued: dict[str, str] = {}  # value -> kind
_order: list[str] = []  # values in the order they were issued


def record(kind: str, value: str | None) -> str | None:
    """Remember ``value`` as a secret of ``kind``; returns ``value`` so calls can wrap expressions."""
    if not value:
        return value
    with _lock:
        if value in _issued:
            return value
        _issued[value] = kind
        _order.append(value)
        path = os.environ.get(ENV_VAR)
        if path and "\n" not in value and "\t" not in value:
            try:
                with open(path, "a", encoding="utf-8") as fh:
                    fh.write(f"{kind}\t{value}\n")
            except OSError:
                pass  # the scan then misses this one secret; never break the emulator for it
    return value


def issued() -> dict[str, str]:
    """``{value: kind}`` of every secret this process recorded."""
    with _lock:
        return dict(_issued)


def issued_since(start: int) -> tuple[dict[str, str], int]:
    """``({value: kind}, new_start)`` of the secrets recorded after the first ``start`` ones."""
    with _lock:
        return {value: _issued[value] for value in _order[start:]}, len(_order)


def read_file(path: str | os.PathLike[str], offset: int = 0) -> tuple[dict[str, str], int]:
    """``({value: kind}, new_offset)`` from a secrets file written by ``record``, from ``offset`` on."""
    found: dict[str, str] = {}
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return found, offset
    complete = data.rfind(b"\n") + 1  # a line still being written is read next time
    for line in data[:complete].decode("utf-8", "replace").splitlines():
        kind, sep, value = line.partition("\t")
        if sep and value:
            found[value] = kind
    return found, offset + complete
