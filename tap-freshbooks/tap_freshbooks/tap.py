"""`TapFreshBooks`: settings, stream list, account discovery, and the config the subcommands read.

The console script itself (Singer CLI, `auth login`, `reconcile`) is cli.py."""

from __future__ import annotations

import json
import time
import typing as t
from functools import cached_property

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities

from freshbooks_auth.answers import IDENTITY_PATH, accounting_accounts
from freshbooks_auth.authenticator import authenticator_from_config
from freshbooks_auth.settings import DEFAULT_API_URL, DEFAULT_AUTH_URL
from tap_freshbooks import cli_output
from tap_freshbooks.errors import ConfigError
from tap_freshbooks.run_lock import hold_pipeline_lock
from tap_freshbooks.schema_objects import restore_decimal_sizes
from tap_freshbooks.sdk_compat import BufferedMsgSpecWriter, use_encoded_state_writer
from tap_freshbooks.streams import RIDES_ALONG, STREAM_TYPES

if t.TYPE_CHECKING:
    from freshbooks_auth.authenticator import FreshBooksAuthenticator
    from tap_freshbooks.streams.base import FreshBooksStream


def _setting(
    name: str,
    kind: th.JSONTypeHelper[t.Any] | type[th.JSONTypeHelper[t.Any]],
    description: str,
    **kwargs: t.Any,
) -> th.Property[t.Any]:
    return th.Property(
        name,
        kind,
        title=name.replace("_", " ").title(),
        description=f"{description} Env: TAP_FRESHBOOKS_{name.upper()}.",
        **kwargs,
    )


class TapFreshBooks(Tap):
    """Singer tap for FreshBooks."""

    name = "tap-freshbooks"
    #: msgspec encoding, RECORD messages written in chunks (sdk_compat.py)
    message_writer_class = BufferedMsgSpecWriter
    #: the PyPI distribution (`--about` reads its version and Python versions from it)
    package_name = "freshbooks-warehouse-tap"

    # No ACTIVATE_VERSION: no stream is a plain full-table reload (each emits only changes).
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        PluginCapabilities.ABOUT,
        TapCapabilities.CATALOG,
        TapCapabilities.DISCOVER,
        TapCapabilities.STATE,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.BATCH,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    config_jsonschema = th.PropertiesList(
        _setting("client_id", th.StringType, "Client ID of your FreshBooks OAuth app.", required=True),
        _setting(
            "client_secret",
            th.StringType,
            "Client secret of your FreshBooks OAuth app.",
            required=True,
            secret=True,
        ),
        _setting(
            "redirect_uri",
            th.StringType,
            "The app's registered redirect URI (used by `tap-freshbooks auth login` and sent on "
            "token requests).",
        ),
        _setting(
            "refresh_token",
            th.StringType,
            "Bootstrap only: used when the token store holds no token yet. FreshBooks rotates "
            "refresh tokens on every use, so after the first run the store is the source of truth.",
            secret=True,
        ),
        _setting(
            "token_store_path",
            th.StringType,
            "File holding the OAuth tokens, encrypted with token_encryption_key. The rotated "
            "refresh token is written here atomically before the new access token is used. "
            "Required unless token_store_url is set.",
        ),
        _setting(
            "token_store_url",
            th.StringType,
            "Token store backend, wins over token_store_path: file:///path, "
            "postgresql://user@host:5432/db[?grant=NAME] (a row per grant, rotated under SELECT ... "
            "FOR UPDATE; needs the `postgres` extra) or s3://bucket/key (compare-and-swap writes; "
            "endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION; needs the `s3` extra). Runners that share "
            "no disk share the grant through it.",
            secret=True,
        ),
        _setting(
            "token_encryption_key",
            th.StringType,
            'Fernet key encrypting the token store. Generate one with: python -c "from '
            'cryptography.fernet import Fernet; print(Fernet.generate_key().decode())".',
            required=True,
            secret=True,
        ),
        _setting(
            "account_ids",
            th.ArrayType(th.StringType),
            "FreshBooks account ids to extract. Default: every accounting account the grant "
            "reaches (from /auth/api/v1/users/me).",
        ),
        _setting(
            "start_date",
            th.DateTimeType,
            "RFC 3339; earliest `updated` to extract on a first run (default: everything).",
        ),
        _setting(
            "api_url",
            th.StringType,
            "FreshBooks API base URL: every API call, the token endpoint and the identity call.",
            default=DEFAULT_API_URL,
        ),
        _setting(
            "auth_url",
            th.StringType,
            "FreshBooks authorization host (the authorize page of `auth login`).",
            default=DEFAULT_AUTH_URL,
        ),
        _setting(
            "record_ids",
            th.ObjectType(additional_properties=th.ArrayType(th.CustomType({"type": ["string", "integer"]}))),
            "Webhook-driven runs: {stream_name: [id, ...]} fetches exactly these records by id, "
            "marks them `_fb_trigger: webhook` and never moves a polling bookmark.",
        ),
        _setting(
            "event_received_at",
            th.ObjectType(additional_properties=th.ObjectType()),
            "With record_ids: {stream_name: {id: RFC 3339}}, when the webhook that caused each "
            "fetch was received; copied into `_fb_event_received_at`.",
        ),
        _setting(
            "bills_timezone",
            th.StringType,
            "Zone of bill / bill vendor created_at and updated_at. Default UTC, as FreshBooks' Python "
            "SDK reads them (freshbooks-sdk 1.3.0 models.py ACCOUNTING_UTC_DATE_FIELDS); the Node SDK "
            "reads them as US/Eastern.",
            default="UTC",
            allowed_values=["US/Eastern", "UTC"],
        ),
        _setting(
            "journal_lookback_days",
            th.IntegerType,
            "journal_entry_details has no change timestamp: each run re-reads this many days of "
            "entry dates and emits what changed.",
            default=90,
        ),
        _setting(
            "max_request_tries",
            th.IntegerType,
            "Attempts per HTTP request on 429 (Retry-After honoured), 5xx, connection resets, "
            "timeouts and cut-short or non-JSON bodies.",
            default=8,
        ),
        _setting("request_timeout", th.IntegerType, "Seconds per HTTP request.", default=60),
        _setting(
            "pipeline_lock_url",
            th.StringType,
            "Where the run lock lives that keeps two runs of this pipeline (Meltano project + "
            "environment + extractor) from overlapping: file:///dir, s3://bucket/prefix or "
            "postgresql://... for runners that share no disk. Default under Meltano: a file in "
            ".meltano/run; outside Meltano no lock unless set.",
        ),
    ).to_dict()

    @property
    def catalog_dict(self) -> dict[str, t.Any]:
        """The catalog, with the decimal sizes the SDK's catalog model drops (sdk_compat.py)."""
        catalog = super().catalog_dict
        restore_decimal_sizes(catalog)
        return catalog

    def discover_streams(self) -> list[FreshBooksStream]:
        return [stream_class(tap=self) for stream_class in STREAM_TYPES]

    # -- shared per-process objects ------------------------------------------------------------
    @cached_property
    def authenticator(self) -> FreshBooksAuthenticator:
        """The one authenticator of this process (FreshBooks refresh tokens are single-use)."""
        return authenticator_from_config(self.config, logger=self.logger)

    @cached_property
    def record_ids(self) -> dict[str, list[str]] | None:
        """Validated ``record_ids`` setting, or None for a normal poll."""
        raw = self.config.get("record_ids")
        if raw in (None, "", {}):
            return None
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                msg = f'record_ids is not valid JSON ({exc.msg}); expected {{"invoices": [123, 456]}}'
                raise ConfigError(msg) from None
        if not isinstance(raw, dict):
            msg = 'record_ids must be an object like {"invoices": [123, 456]}'
            raise ConfigError(msg)
        known = {s.name: t.cast("FreshBooksStream", s) for s in self.streams.values()}
        result: dict[str, list[str]] = {}
        for stream_name, ids in raw.items():
            stream = known.get(stream_name)
            if stream is None:
                msg = f"record_ids names an unknown stream {stream_name!r}; known: {', '.join(sorted(known))}"
                raise ConfigError(msg)
            if stream.single_path is None:
                msg = (
                    f"record_ids: stream {stream_name!r} cannot be fetched by id (it comes with its "
                    "parent or has no single-record endpoint)"
                )
                raise ConfigError(msg)
            if not isinstance(ids, list) or not all(
                isinstance(i, (int, str)) and not isinstance(i, bool) and str(i).strip() for i in ids
            ):
                msg = f"record_ids[{stream_name!r}] must be a list of ids (numbers or strings)"
                raise ConfigError(msg)
            result[stream_name] = [str(i).strip() for i in ids]
        return result

    @cached_property
    def accounts(self) -> list[dict[str, t.Any]]:
        """Partitions: one context per FreshBooks account to extract."""
        anchor = t.cast("FreshBooksStream", next(iter(self.streams.values())))
        reachable = {a["account_id"]: a for a in accounting_accounts(anchor.fetch_json(IDENTITY_PATH))}
        wanted = self.config.get("account_ids")
        if isinstance(wanted, str):
            wanted = json.loads(wanted) if wanted.strip().startswith("[") else wanted.split(",")
        if not wanted:
            if not reachable:
                msg = "This FreshBooks grant reaches no accounting account (users/me lists none)."
                raise ConfigError(msg)
            return list(reachable.values())
        missing = [a for a in wanted if str(a).strip() not in reachable]
        if missing:
            msg = (
                f"account_ids {missing} are not reachable with this grant; reachable: "
                f"{sorted(reachable) or 'none'}"
            )
            raise ConfigError(msg)
        return [reachable[str(a).strip()] for a in wanted]

    # -- run --------------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Fail fast, with one clear line, on anything that would only fail later."""
        record_ids = self.record_ids
        store = self.authenticator.store
        store.load()  # unreadable store / wrong key -> TokenStoreError now, not mid-run
        if record_ids is not None:
            wanted = set(record_ids) | {
                rider for rider, carrier in RIDES_ALONG.items() if carrier in record_ids
            }
            for stream in self.streams.values():
                if stream.name not in wanted:
                    stream.selected = False
        for rider, carrier in RIDES_ALONG.items():
            if self.streams[rider].selected and not self.streams[carrier].selected:
                self.logger.warning(
                    "%s is selected but %s is not: %s come with %s, so none will be extracted",
                    rider,
                    carrier,
                    rider,
                    carrier,
                )
        _ = self.accounts

    # singer-sdk marks sync_all final; the tap must hold the pipeline lock around the whole sync and
    # flush its buffered writer however the sync ends, which no SDK hook allows.
    def sync_all(self) -> None:  # type: ignore[misc]
        started = time.monotonic()
        pipeline_lock = hold_pipeline_lock(self.config, self.logger)  # before any token use
        use_encoded_state_writer(self)  # STATE lines without the SDK's deep copies (sdk_compat.py)
        try:
            self.preflight()
            if not self.state:
                # A run without input state (first run, --full-refresh) starts with an empty STATE:
                # the SDK writes none, and a per-stream loader (target-duckdb) would otherwise take the
                # first STATE it sees, the one after the first stream's records, as its "flushed"
                # state and emit it while those records still sit in its buffer (chaos: a loader
                # killed during a full refresh lost them for good).
                self.state_writer.write_state({"bookmarks": {}})
            super().sync_all()
        finally:
            if isinstance(self.message_writer, BufferedMsgSpecWriter):
                self.message_writer.flush()  # records no STATE followed yet (a failed run)
            if pipeline_lock is not None:
                pipeline_lock.done()
            for stream in self.streams.values():
                if warning := t.cast("FreshBooksStream", stream).guard_warning():
                    self.logger.warning(warning)
        records = getattr(self.message_writer, "records", None)
        self.logger.info(
            "tap-freshbooks finished in %.1f s%s",
            time.monotonic() - started,
            "" if records is None else f", {records} records",
        )


def read_cli_config(config_paths: t.Sequence[str]) -> dict[str, t.Any]:
    """Config for the subcommands: JSON files and/or ENV (TAP_FRESHBOOKS_*), later ones win."""
    config: dict[str, t.Any] = {}
    for path in config_paths or ("ENV",):
        if path == "ENV":
            config.update(TapFreshBooks._env_var_config)  # noqa: SLF001  (the SDK's TAP_FRESHBOOKS_* parser)
        else:
            try:
                with open(path, encoding="utf-8") as handle:
                    config.update(json.load(handle))
            except (OSError, ValueError) as exc:
                cli_output.fail(f"cannot read config file {path}: {exc}", 2)
    return config
