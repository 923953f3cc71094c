"""The `--config` files of the `tap-freshbooks` command line, checked before the SDK reads them, so a
missing or broken file is one line instead of an SDK traceback.

Imported before singer-sdk (cli.py, packaged_catalog.py): keep it to the standard library.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path


def config_paths(argv: t.Sequence[str]) -> list[str]:
    """The values of every ``--config X`` / ``--config=X`` in ``argv``."""
    paths: list[str] = []
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            paths.append(args[i + 1])
        elif arg.startswith("--config="):
            paths.append(arg.split("=", 1)[1])
    return paths


def config_file_problem(path: str) -> str | None:
    """Why ``path`` cannot be the tap's config file, in one line; None when it can (or is ENV)."""
    if path == "ENV":
        return None
    file = Path(path)
    hint = "give --config a JSON file, or ENV to read TAP_FRESHBOOKS_* variables"
    if not file.exists():
        return f"config file not found: {path} ({hint})"
    if not file.is_file():
        return f"config file is not a file: {path} ({hint})"
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        return f"cannot read config file {path}: {exc.strerror or exc}"
    except ValueError as exc:
        return f"config file {path} is not valid JSON: {exc}"
    if not isinstance(content, dict):
        return f'config file {path} must hold a JSON object like {{"client_id": "..."}}'
    return None
