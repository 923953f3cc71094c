"""Typed settings, read once from ``WEBHOOK_BRIDGE_<SETTING>`` environment variables.

This is the Meltano way: ``meltano invoke webhook-bridge ...`` exports the utility's settings from
``meltano.yml`` / ``.env`` as ``WEBHOOK_BRIDGE_<SETTING>`` before it starts the process, and the same
variables work without Meltano. A missing or unsafe value stops the program with one line that names
the variable (``SettingsError``); secret values are wrapped in :class:`Secret` and never printed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from freshbooks_auth.errors import ConfigError
from freshbooks_auth.fernet import GENERATE_KEY_COMMAND, fernet
from freshbooks_auth.settings import DEFAULT_API_URL

ENV_PREFIX = "WEBHOOK_BRIDGE_"
ACCOUNT_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
PLUGIN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
RUN_MODES = ("DIRECT", "MELTANO")
OFF_VALUES = ("", "off", "none", "false", "0")
MAX_BODY_LIMIT = 1_048_576  # a FreshBooks delivery is ~150 bytes; more than 1 MiB is never needed


class SettingsError(ValueError):
    """A setting is missing or unsafe; ``str(err)`` is one line naming the variable."""


class Secret:
    """A secret string that never shows in ``repr``/``str``/logs; call :meth:`reveal` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value (for the one place that needs it)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the bridge reads from its environment. See README.md "Settings"."""

    token_encryption_key: Secret
    data_dir: Path
    project_root: Path
    # postgresql://... : queue, runs, verifiers and callbacks in PostgreSQL, shared by replicas
    # (None: SQLite at db_path). A Secret: the URL may hold a password.
    database_url: Secret | None = None
    token_store_path: Path | None = None
    token_store_url: Secret | None = None  # the tap's token_store_url (may hold a password)
    client_id: str | None = None
    client_secret: Secret | None = None
    redirect_uri: str | None = None
    api_url: str = DEFAULT_API_URL
    account_ids: tuple[str, ...] = ()
    public_url: str | None = None
    events: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 8192
    meltano_executable: str = "meltano"
    meltano_environment: str | None = None
    extractor: str = "tap-freshbooks"
    loader: str = "target-duckdb"
    run_mode: str = "direct"
    post_load_command: str | None = "freshbooks-looker:post_load"
    post_load_retry_seconds: float = 60.0
    coalesce_window_seconds: float = 0.25
    max_batch_records: int = 200
    max_attempts: int = 8
    retry_base_seconds: float = 10.0
    retry_max_seconds: float = 1800.0
    busy_retry_seconds: float = 30.0
    run_timeout_seconds: float = 3600.0
    run_niceness: int = 10
    poll_interval: float = 900.0
    workers: int = 1  # replicated mode: runs of different accounts at a time, per replica
    http_timeout_seconds: float = 20.0
    log_level: str = "INFO"

    # ---------------------------------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        """The SQLite queue."""
        return self.data_dir / "bridge.sqlite3"

    @property
    def lock_path(self) -> Path:
        """The global run lock (one Meltano run at a time, across processes)."""
        return self.data_dir / "run.lock"

    @property
    def runs_log_dir(self) -> Path:
        """Output of each Meltano run (the last ones are kept)."""
        return self.data_dir / "runs"

    @property
    def extractor_env_prefix(self) -> str:
        """``tap-freshbooks`` -> ``TAP_FRESHBOOKS`` (how Meltano names a plugin's variables)."""
        return re.sub(r"[^A-Za-z0-9]", "_", self.extractor).upper()

    def tap_config(self) -> dict[str, object]:
        """The subset of tap settings the FreshBooks authenticator needs (contains secrets)."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret.reveal() if self.client_secret else None,
            "redirect_uri": self.redirect_uri,
            "token_store_path": str(self.token_store_path) if self.token_store_path else None,
            "token_store_url": self.token_store_url.reveal() if self.token_store_url else None,
            "token_encryption_key": self.token_encryption_key.reveal(),
            "api_url": self.api_url,
        }

    def describe(self) -> dict[str, object]:
        """Settings for display: secrets masked."""
        out: dict[str, object] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Secret):
                value = "**********" if value else None
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        return out

    # ---------------------------------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``WEBHOOK_BRIDGE_*`` (``overrides`` win, e.g. CLI flags).

        Raises:
            SettingsError: one line naming the first bad variable.
        """
        env = os.environ if environ is None else environ
        reader = _Reader(env, overrides)

        key = reader.string("token_encryption_key", secret=True)
        if not key:
            raise SettingsError(
                f"{ENV_PREFIX}TOKEN_ENCRYPTION_KEY is not set: the bridge encrypts webhook verifiers "
                f"with the tap's Fernet key (the same value as TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY); "
                f"generate one with: {GENERATE_KEY_COMMAND}"
            )
        _check_fernet_key(key)

        project_root = (
            Path(reader.string("project_root") or env.get("MELTANO_PROJECT_ROOT") or os.getcwd())
            .expanduser()
            .resolve()
        )
        data_dir_raw = reader.string("data_dir")
        data_dir = Path(data_dir_raw).expanduser() if data_dir_raw else Path(".webhook-bridge")
        if not data_dir.is_absolute():
            data_dir = project_root / data_dir

        api_url = (reader.string("api_url") or cls.api_url).rstrip("/")
        _check_url(api_url, "API_URL", allow_path=True)

        public_url = reader.string("public_url")
        if public_url:
            _check_url(public_url, "PUBLIC_URL", allow_path=True)

        account_ids = reader.string_list("account_ids")
        for account in account_ids:
            if not ACCOUNT_ID_RE.fullmatch(account):
                raise SettingsError(
                    f"{ENV_PREFIX}ACCOUNT_IDS has {account!r}, which is not a FreshBooks account id "
                    "(letters and digits only)"
                )

        database_url = reader.string("database_url", secret=True)
        if database_url:
            _check_database_url(database_url)

        client_secret = reader.string("client_secret", secret=True)
        token_store = reader.string("token_store_path")
        token_store_url = reader.string("token_store_url", secret=True)

        settings = cls(
            token_encryption_key=Secret(key),
            data_dir=data_dir,
            project_root=project_root,
            database_url=Secret(database_url) if database_url else None,
            token_store_path=Path(token_store).expanduser() if token_store else None,
            token_store_url=Secret(token_store_url) if token_store_url else None,
            client_id=reader.string("client_id"),
            client_secret=Secret(client_secret) if client_secret else None,
            redirect_uri=reader.string("redirect_uri"),
            api_url=api_url,
            account_ids=tuple(account_ids),
            public_url=public_url,
            events=tuple(reader.string_list("events")),
            host=reader.string("host") or cls.host,
            port=reader.integer("port", cls.port, minimum=0, maximum=65535),
            max_body_bytes=reader.integer(
                "max_body_bytes", cls.max_body_bytes, minimum=256, maximum=MAX_BODY_LIMIT
            ),
            meltano_executable=reader.string("meltano_executable") or cls.meltano_executable,
            meltano_environment=reader.string("meltano_environment"),
            extractor=reader.plugin_name("extractor", cls.extractor),
            loader=reader.plugin_name("loader", cls.loader),
            run_mode=reader.choice("run_mode", cls.run_mode.upper(), RUN_MODES).lower(),
            post_load_command=reader.post_load_command(cls.post_load_command),
            post_load_retry_seconds=reader.number(
                "post_load_retry_seconds", cls.post_load_retry_seconds, minimum=1, maximum=86_400
            ),
            coalesce_window_seconds=reader.number(
                "coalesce_window_seconds", cls.coalesce_window_seconds, minimum=0, maximum=300
            ),
            max_batch_records=reader.integer(
                "max_batch_records", cls.max_batch_records, minimum=1, maximum=10_000
            ),
            max_attempts=reader.integer("max_attempts", cls.max_attempts, minimum=1, maximum=100),
            retry_base_seconds=reader.number(
                "retry_base_seconds", cls.retry_base_seconds, minimum=0, maximum=86_400
            ),
            retry_max_seconds=reader.number(
                "retry_max_seconds", cls.retry_max_seconds, minimum=0, maximum=7 * 86_400
            ),
            busy_retry_seconds=reader.number(
                "busy_retry_seconds", cls.busy_retry_seconds, minimum=0, maximum=86_400
            ),
            run_timeout_seconds=reader.number(
                "run_timeout_seconds", cls.run_timeout_seconds, minimum=1, maximum=7 * 86_400
            ),
            run_niceness=reader.integer("run_niceness", cls.run_niceness, minimum=0, maximum=19),
            poll_interval=reader.number("poll_interval", cls.poll_interval, minimum=0, maximum=7 * 86_400),
            workers=reader.integer("workers", cls.workers, minimum=1, maximum=64),
            http_timeout_seconds=reader.number(
                "http_timeout_seconds", cls.http_timeout_seconds, minimum=0.1, maximum=600
            ),
            log_level=reader.choice("log_level", cls.log_level, LOG_LEVELS),
        )
        if 0 < settings.poll_interval < 10:
            raise SettingsError(
                f"{ENV_PREFIX}POLL_INTERVAL is {settings.poll_interval:g}: use 0 to disable polling "
                "or at least 10 seconds"
            )
        return settings


# Settings the bridge shares with the tap: without WEBHOOK_BRIDGE_<NAME>, TAP_FRESHBOOKS_<NAME> is
# used, so a standalone bridge next to a configured tap needs no duplicated secrets.
SHARED_WITH_TAP = frozenset(
    {
        "token_encryption_key",
        "token_store_path",
        "token_store_url",
        "client_id",
        "client_secret",
        "redirect_uri",
        "api_url",
    }
)


class _Reader:
    def __init__(self, env: Mapping[str, str], overrides: Mapping[str, object]) -> None:
        self.env = env
        self.overrides = {k: v for k, v in overrides.items() if v is not None}

    @staticmethod
    def var(name: str) -> str:
        return ENV_PREFIX + name.upper()

    def raw(self, name: str) -> object | None:
        if name in self.overrides:
            return self.overrides[name]
        value = self.env.get(self.var(name))
        if (value is None or not str(value).strip()) and name in SHARED_WITH_TAP:
            value = self.env.get(f"TAP_FRESHBOOKS_{name.upper()}")
        if value is None or not str(value).strip():
            return None
        return value

    def string(self, name: str, *, secret: bool = False) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        text = str(value).strip()
        if "\n" in text or "\x00" in text:
            shown = "" if secret else f" ({text[:40]!r})"
            raise SettingsError(f"{self.var(name)} must be one line{shown}")
        return text

    def string_list(self, name: str) -> list[str]:
        value = self.raw(name)
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            items = [str(v).strip() for v in value]
        else:
            text = str(value).strip()
            if text.startswith("["):
                try:
                    parsed = json.loads(text)
                except ValueError:
                    raise SettingsError(f"{self.var(name)} is not a valid JSON array") from None
                if not isinstance(parsed, list):
                    raise SettingsError(f"{self.var(name)} must be a JSON array or a comma list")
                items = [str(v).strip() for v in parsed]
            else:
                items = [part.strip() for part in text.split(",")]
        return [item for item in items if item]

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(str(value).strip())
        except ValueError:
            raise SettingsError(f"{self.var(name)}={value!r} is not an integer") from None
        if not minimum <= number <= maximum:
            raise SettingsError(f"{self.var(name)}={number} is outside {minimum}..{maximum}")
        return number

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(str(value).strip())
        except ValueError:
            raise SettingsError(f"{self.var(name)}={value!r} is not a number") from None
        if number != number or not minimum <= number <= maximum:  # NaN or out of range
            raise SettingsError(f"{self.var(name)}={value!r} is outside {minimum:g}..{maximum:g}")
        return number

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = self.string(name)
        if value is None:
            return default
        if value.upper() not in options:
            raise SettingsError(f"{self.var(name)}={value!r} is not one of {', '.join(options)}")
        return value.upper()

    def post_load_command(self, default: str | None) -> str | None:
        """``<plugin>:<command>`` of the Meltano project, or ``None`` (off: empty or ``off``)."""
        var = self.var("post_load_command")
        value = (
            self.env.get(var)
            if "post_load_command" not in self.overrides
            else self.overrides["post_load_command"]
        )
        if value is None:
            return default
        text = str(value).strip()
        if text.lower() in OFF_VALUES:
            return None
        plugin, _, command = text.partition(":")
        if not (PLUGIN_NAME_RE.fullmatch(plugin) and PLUGIN_NAME_RE.fullmatch(command)):
            raise SettingsError(
                f"{var}={text!r} is not <plugin>:<command> of the Meltano project "
                "(e.g. freshbooks-looker:post_load), or empty to turn post-load steps off"
            )
        return text

    def plugin_name(self, name: str, default: str) -> str:
        value = self.string(name) or default
        if not PLUGIN_NAME_RE.fullmatch(value):
            raise SettingsError(f"{self.var(name)}={value!r} is not a Meltano plugin name")
        return value


def _check_fernet_key(key: str) -> None:
    try:
        fernet(key, setting=f"{ENV_PREFIX}TOKEN_ENCRYPTION_KEY")
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None


def _check_database_url(url: str) -> None:
    """``postgresql://`` (or ``postgres://``); the message never echoes the URL (it may hold a password)."""
    if urlsplit(url).scheme.lower() not in ("postgresql", "postgres"):
        raise SettingsError(
            f"{ENV_PREFIX}DATABASE_URL must be a postgresql:// URL; leave it unset for "
            "the SQLite queue under the data directory"
        )


def is_loopback_host(host: str | None) -> bool:
    """True for localhost / 127.0.0.0/8 / ::1."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_url(url: str, name: str, *, allow_path: bool) -> None:
    """Only ``https://`` (``http://`` is allowed for loopback hosts: tests, the emulator)."""
    var = ENV_PREFIX + name
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{var}={url!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise SettingsError(
            f"{var}={url!r} uses plain http to a non-loopback host; use https (tokens and "
            "verifiers would travel in clear text)"
        )
    if parts.username or parts.password:
        raise SettingsError(f"{var} must not contain credentials")
    if parts.query or parts.fragment or (not allow_path and parts.path not in ("", "/")):
        raise SettingsError(f"{var}={url!r} must not have a query or fragment")
