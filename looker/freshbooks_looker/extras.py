"""The optional parts of ``freshbooks-looker`` and the one line a user sees when one is missing.

The runtime (``post-load``, ``refresh``, ``drift``, ``cost-centers``, ``timestamptz``) needs only
requests, PyYAML and lkml; the warehouse clients come with the ``duckdb`` / ``postgres`` extras.
The development tools (``check`` and the SQL it generates: python-liquid, sqlglot) come with
``dev``. A module that needs an extra imports it under :func:`needs`, so a missing extra is one
:class:`ExtraMissing` (an ImportError) that names the ``pip install`` to run.
"""

from __future__ import annotations

import contextlib
import typing as t


class ExtraMissing(ImportError):
    """An optional dependency is not installed; the message says which extra brings it."""


@contextlib.contextmanager
def needs(extra: str, what: str) -> t.Iterator[None]:
    """Turn a ModuleNotFoundError in the block into one ExtraMissing naming ``extra``."""
    try:
        yield
    except ModuleNotFoundError as exc:
        raise ExtraMissing(
            f"{what} needs the `{extra}` extra: pip install 'freshbooks-looker[{extra}]' "
            f"(module {exc.name} is not installed)"
        ) from exc
