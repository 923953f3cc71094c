"""The loader's configuration: target-duckdb 0.8.0's settings, parsed once, with errors that say what to do."""

from __future__ import annotations

import json
import os
import tempfile
import typing as t
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_BATCH_SIZE_ROWS = 100_000
DEFAULT_MAX_BATCH_AGE_SECONDS = 60.0


class ConfigError(Exception):
    """The configuration cannot work; the message says which setting to fix."""


@dataclass(frozen=True)
class Settings:
    path: str
    default_target_schema: str
    schema_mapping: dict[str, dict[str, t.Any]] = field(default_factory=dict)
    add_metadata_columns: bool = False
    hard_delete: bool = False
    batch_size_rows: int = DEFAULT_BATCH_SIZE_ROWS
    primary_key_required: bool = True
    temp_dir: str = field(default_factory=tempfile.gettempdir)
    duckdb_settings: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    catalog: str = ""
    validate_records: bool = False
    max_batch_age_seconds: float = DEFAULT_MAX_BATCH_AGE_SECONDS

    @property
    def metadata_columns(self) -> bool:
        """target-duckdb adds the _sdc_* columns for either setting."""
        return self.add_metadata_columns or self.hard_delete

    @property
    def connect_path(self) -> str:
        """What duckdb.connect() opens (MotherDuck takes its token as a query parameter)."""
        return f"{self.path}?token={self.token}" if self.token else self.path

    def target_schema(self, stream_schema: str | None) -> str | None:
        """The schema a stream's table goes to: schema_mapping by the stream's schema part, else the default."""
        if stream_schema is not None and stream_schema in self.schema_mapping:
            mapped = self.schema_mapping[stream_schema].get("target_schema")
            return str(mapped) if mapped else None
        return self.default_target_schema or None


def _bool(config: dict[str, t.Any], name: str, default: bool) -> bool:
    value = config.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.strip().lower() in {"true", "1", "yes"}
    if isinstance(value, int):
        return bool(value)
    raise ConfigError(f"setting {name!r} must be true or false, not {value!r}")


def _number(config: dict[str, t.Any], name: str, default: float, minimum: float) -> float:
    value = config.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r} must be a number, not {value!r}") from None
    if isinstance(value, bool) or number < minimum:
        raise ConfigError(f"setting {name!r} must be a number >= {minimum:g}, not {value!r}")
    return number


def catalog_name(config: dict[str, t.Any], path: str) -> str:
    """target-duckdb's catalog: `database`, else `dbname`, else the file name without its extension."""
    for name in ("database", "dbname"):
        if config.get(name):
            return str(config[name])
    parsed = urlparse(path)
    stem = os.path.splitext(os.path.basename(parsed.path))[0]
    if parsed.scheme in {"md", "motherduck"} and stem == "":
        return "my_db"
    return stem


def load_settings(config: dict[str, t.Any]) -> Settings:
    """Check a config dict the way target-duckdb does (and a little more) and return the settings."""
    errors = []
    path = config.get("path") or config.get("filepath")
    if not path:
        errors.append("set 'filepath' (or 'path') to the DuckDB file to load")
    default_schema = str(config.get("default_target_schema") or "").strip()
    mapping = config.get("schema_mapping") or {}
    if not isinstance(mapping, dict) or not all(isinstance(v, dict) for v in mapping.values()):
        errors.append("'schema_mapping' must be an object of {stream schema: {\"target_schema\": name}}")
        mapping = {}
    if not default_schema and not mapping:
        errors.append("set 'default_target_schema' (or 'schema_mapping') to the schema the tables go to")
    level = config.get("data_flattening_max_level", 0)
    if level not in (0, None, "0", ""):
        errors.append(
            f"'data_flattening_max_level' is {level!r} but only 0 is supported "
            "(nested objects are stored as JSON columns): remove the setting or set it to 0"
        )
    duckdb_settings = config.get("settings") or {}
    if not isinstance(duckdb_settings, dict):
        errors.append("'settings' must be an object of DuckDB settings {name: value}")
        duckdb_settings = {}
    if errors:
        raise ConfigError("invalid configuration: " + "; ".join(errors))
    return Settings(
        path=str(path),
        default_target_schema=default_schema,
        schema_mapping=mapping,
        add_metadata_columns=_bool(config, "add_metadata_columns", False),
        hard_delete=_bool(config, "hard_delete", False),
        batch_size_rows=int(_number(config, "batch_size_rows", DEFAULT_BATCH_SIZE_ROWS, 1)),
        primary_key_required=_bool(config, "primary_key_required", True),
        temp_dir=str(config.get("temp_dir") or tempfile.gettempdir()),
        duckdb_settings={str(k): str(v) for k, v in duckdb_settings.items()},
        token=str(config["token"]) if config.get("token") else None,
        catalog=catalog_name(config, str(path)),
        validate_records=_bool(config, "validate_records", False),
        max_batch_age_seconds=_number(config, "max_batch_age_seconds", DEFAULT_MAX_BATCH_AGE_SECONDS, 0),
    )


def read_config_file(path: str | None) -> dict[str, t.Any]:
    """The --config file as a dict (no file: an empty config, which load_settings then rejects)."""
    if path is None:
        return {}
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"the config file {path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"the config file {path} must hold a JSON object")
    return config
