"""Structured logs: one JSON object per line on stderr.

Call sites pass their fields with ``extra={"fields": {...}}``. Field names that could carry secrets
are dropped here as a last line of defence; the call sites never pass the signature, a verifier,
a token or the raw form anyway.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import typing as t

FORBIDDEN_FIELDS = frozenset(
    {
        "verifier",
        "signature",
        "x-freshbooks-hmac-sha256",
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "token_encryption_key",
        "fields",
        "form",
        "body",
        "headers",
    }
)


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "msg": ..., <fields>}``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, t.Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if key.lower() not in FORBIDDEN_FIELDS and key not in out:
                    out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["error_type"] = record.exc_info[0].__name__
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(level: str = "INFO", stream: t.TextIO | None = None) -> None:
    """Send the bridge's (and uvicorn's) logs through the JSON formatter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # the bridge logs each delivery
    logging.getLogger("httpx").setLevel(logging.WARNING)


def log(logger: logging.Logger, level: int, msg: str, **fields: t.Any) -> None:
    """``logger.log`` with structured fields."""
    if logger.isEnabledFor(level):
        logger.log(level, msg, extra={"fields": fields})
