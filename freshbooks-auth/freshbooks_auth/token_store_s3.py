"""S3 token store: one object per grant, every write a compare-and-swap on its ETag.

``token_store_url = s3://bucket/key[?lease_seconds=N]``. The endpoint, credentials and region come
from the standard AWS variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, or any other source boto3 reads), so any S3 API
with conditional writes works (AWS S3, MinIO, R2, moto...). The bucket must exist.

The object is the same Fernet-encrypted document as the file store, plus a rotation lease:

* ``lock()`` claims the lease by writing the document with ``rotation = {owner, lease_seconds}``
  under ``If-Match: <etag just read>`` (``If-None-Match: *`` while the object does not exist). A
  runner that loses the race (412, or 409 ``ConditionalRequestConflict``) re-reads: while another
  runner's lease is live it waits, so exactly one runner per rotation calls the token endpoint, and
  the others then find the rotated pair and use it.
* ``save()`` writes the new pair and clears the lease in ONE conditional PUT on the claim's ETag:
  the rotation is published and the lease released atomically, before the caller uses the token.
* The holder renews the lease every ``lease_seconds / 3`` (a CAS write as well), so a lease outlives
  a slow token endpoint; a runner killed mid-refresh stops renewing, and the next runner takes the
  lease over once it is ``lease_seconds`` old. Its age is judged on the server's clock
  (``Last-Modified`` against the response's ``Date``), so clock skew between runners does not matter.
* Every PUT carries a fresh ``write_id``: when botocore re-sends a PUT whose answer was lost and the
  re-send fails its precondition, a re-read recognises our own write.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import logging
import os
import random
import socket
import threading
import time
import typing as t
import uuid
from urllib.parse import parse_qsl, unquote, urlsplit

from freshbooks_auth.errors import ConfigError, TokenStoreError
from freshbooks_auth.store_url import DISTRIBUTION, URL_SETTING, missing_extra_error, nested
from freshbooks_auth.token_store import DEFAULT_LOCK_TIMEOUT, TokenCipher

try:
    import boto3
    import botocore.config
    import botocore.exceptions
except ImportError:  # pragma: no cover - exercised only without the extra
    boto3 = None

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from freshbooks_auth.token_store import TokenSet

LOGGER = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 30.0
POLL_MIN_SECONDS = 0.02
POLL_MAX_SECONDS = 0.25
LOST_RACE_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
FORCE_WRITE_TRIES = 10


@dataclasses.dataclass
class _Lease:
    owner: str
    lease_seconds: float
    etag: str
    tokens: TokenSet | None  # the pair in the object while we hold the lease
    mutex: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    released: bool = False
    lost: bool = False
    thread: threading.Thread | None = None


class _Held(threading.local):
    lease: _Lease | None = None
    depth: int = 0


@dataclasses.dataclass(frozen=True)
class _Read:
    document: dict[str, t.Any] | None
    etag: str | None
    last_modified: float | None
    server_now: float


class S3TokenStore:
    """The grant's object in an S3 bucket (see the module docstring)."""

    def __init__(
        self,
        url: str,
        encryption_key: str | bytes | None,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        lease_seconds: float | None = None,
        client: t.Any = None,
    ) -> None:
        """Parse the URL (no request yet).

        Raises:
            ConfigError: boto3 is missing or too old, the URL is not ``s3://bucket/key``, or the key
                is malformed.
        """
        if boto3 is None:
            raise missing_extra_error("S3", "s3", "boto3")
        self._cipher = TokenCipher(encryption_key)
        parts = urlsplit(url)
        self.bucket = parts.netloc
        self.key = unquote(parts.path.lstrip("/"))
        if not self.bucket or not self.key or self.key.endswith("/") or parts.username or parts.password:
            msg = f"setting `{URL_SETTING}` must be s3://bucket/key (credentials come from the AWS variables)"
            raise ConfigError(msg)
        params = dict(parse_qsl(parts.query))
        unknown = sorted(set(params) - {"lease_seconds"})
        if unknown:
            msg = f"setting `{URL_SETTING}` has unknown parameters {unknown}; s3:// takes only lease_seconds"
            raise ConfigError(msg)
        try:
            lease = float(params.get("lease_seconds") or lease_seconds or DEFAULT_LEASE_SECONDS)
        except ValueError:
            lease = -1.0
        if not 1 <= lease <= 3600:
            msg = f"setting `{URL_SETTING}` lease_seconds must be a number of seconds from 1 to 3600"
            raise ConfigError(msg)
        self.lease_seconds = lease
        self.lock_timeout = float(lock_timeout)
        self._location = f"s3://{self.bucket}/{self.key}"
        self._client = client
        self._held = _Held()

    def __repr__(self) -> str:
        return f"S3TokenStore({self._location!r})"

    @property
    def location(self) -> str:
        """``s3://bucket/key``."""
        return self._location

    # requests -----------------------------------------------------------------------------------

    @property
    def client(self) -> t.Any:
        """The boto3 S3 client (from the standard AWS variables), checked for conditional writes."""
        if self._client is None:
            config = botocore.config.Config(
                connect_timeout=10, read_timeout=30, retries={"mode": "standard", "max_attempts": 4}
            )
            try:
                client = boto3.session.Session().client("s3", config=config)
            except botocore.exceptions.BotoCoreError as exc:
                msg = f"cannot use the token store {self._location}: {_first_line(exc)}"
                raise TokenStoreError(msg) from None
            members = client.meta.service_model.operation_model("PutObject").input_shape.members
            if "IfMatch" not in members or "IfNoneMatch" not in members:
                msg = (
                    f"setting `{URL_SETTING}` is s3:// but the installed botocore cannot send conditional "
                    f"writes (If-Match on PutObject): pip install '{DISTRIBUTION}[s3]'"
                )
                raise ConfigError(msg)
            self._client = client
        return self._client

    def _fail(self, action: str, exc: Exception) -> TokenStoreError:
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return TokenStoreError(
                f"cannot {action} the token store {self._location}: no AWS credentials (set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or another standard AWS credential source)"
            )
        if isinstance(exc, botocore.exceptions.ClientError):
            error = exc.response.get("Error", {})
            code = error.get("Code") or "error"
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket":
                return TokenStoreError(
                    f"cannot {action} the token store {self._location}: the bucket {self.bucket} "
                    "does not exist (create it; the token store does not create buckets)"
                )
            return TokenStoreError(
                f"cannot {action} the token store {self._location}: S3 answered {code} (HTTP {status})"
            )
        return TokenStoreError(f"cannot {action} the token store {self._location}: {_first_line(exc)}")

    def _get(self) -> _Read:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key)
            body = response["Body"].read()
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return _Read(None, None, None, _server_time(exc.response))
            raise self._fail("read", exc) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise self._fail("read", exc) from None
        document = self._cipher.open(body, location=self._location, medium="object")
        last_modified = response.get("LastModified")
        return _Read(
            document,
            response.get("ETag"),
            last_modified.timestamp() if last_modified is not None else None,
            _server_time(response),
        )

    def _put(self, blob: bytes, *, etag: str | None) -> str | None:
        """Conditional PUT: the new ETag, or ``None`` when the object is not at ``etag`` anymore."""
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=blob,
                ContentType="application/octet-stream",
                **condition,
            )
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in LOST_RACE_CODES or status in (409, 412):
                return None
            raise self._fail("write", exc) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise self._fail("write", exc) from None
        return str(response["ETag"])

    def _seal(self, tokens: TokenSet | None, rotation: dict[str, t.Any] | None) -> tuple[bytes, str]:
        write_id = uuid.uuid4().hex
        return self._cipher.seal(tokens, rotation=rotation, write_id=write_id), write_id

    def _tokens(self, read: _Read) -> TokenSet | None:
        if read.document is None:
            return None
        return self._cipher.tokens(read.document, location=self._location)

    def _put_or_recognise(
        self, tokens: TokenSet | None, rotation: dict[str, t.Any] | None, etag: str | None
    ) -> str | None:
        """CAS write; after a lost precondition, the ETag if the object is our own write anyway."""
        blob, write_id = self._seal(tokens, rotation)
        new_etag = self._put(blob, etag=etag)
        if new_etag is not None:
            return new_etag
        again = self._get()
        if again.document is not None and again.document.get("write_id") == write_id:
            return again.etag  # botocore re-sent a PUT that had already succeeded
        return None

    # the interface ------------------------------------------------------------------------------

    def load(self) -> TokenSet | None:
        """The stored pair, read from the object (inside ``lock()`` too: a holder whose lease lapsed
        must see what the taker wrote, not what it claimed)."""
        return self._tokens(self._get())

    def check_key(self) -> None:
        """Fail when the object exists and this key does not decrypt it."""
        self._get()

    def check_writable(self) -> None:
        """Inside ``lock()`` the lease proves it; outside, read the object (bucket, credentials)."""
        if self._held.lease is not None:
            return
        self._get()

    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the grant's rotation lease (re-entrant within a thread).

        Raises:
            TokenStoreError: another runner's lease stayed live for ``timeout`` seconds, or S3 failed.
        """
        if self._held.lease is not None:
            with nested(self._held):
                yield
            return
        lease = self._claim(self.lock_timeout if timeout is None else float(timeout))
        lease.thread = threading.Thread(target=self._renew, args=(lease,), name="token-lease", daemon=True)
        lease.thread.start()
        self._held.lease = lease
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.lease = None
            self._held.depth = 0
            self._release(lease)

    def save(self, tokens: TokenSet) -> None:
        """Publish ``tokens`` and release the lease in one conditional PUT (locks when not held).

        Raises:
            TokenStoreError: the write failed, or a different grant was written meanwhile.
        """
        lease = self._held.lease
        if lease is None:
            with self.lock():
                self.save(tokens)
            return
        with lease.mutex:
            lease.stop.set()
            etag = None if lease.lost else self._put_or_recognise(tokens, None, lease.etag)
            if etag is None:
                etag = self._force_rotated(tokens, spent=lease.tokens)
            lease.etag = etag
            lease.tokens = tokens
            lease.released = True

    # the lease ----------------------------------------------------------------------------------

    def _claim(self, wait: float) -> _Lease:
        deadline = time.monotonic() + wait
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        delay = POLL_MIN_SECONDS
        while True:
            read = self._get()
            rotation = (read.document or {}).get("rotation")
            if isinstance(rotation, dict) and not _expired(rotation, read, self.lease_seconds):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    msg = (
                        f"timed out after {wait:g} s waiting for the token store lease on {self._location} "
                        f"(held by {rotation.get('owner')}: a refresh in progress, or a runner that died; "
                        "its lease lapses after lease_seconds without renewal)"
                    )
                    raise TokenStoreError(msg)
                time.sleep(min(remaining, delay * (0.5 + random.random())))
                delay = min(delay * 1.5, POLL_MAX_SECONDS)
                continue
            if isinstance(rotation, dict):
                LOGGER.warning(
                    "Taking over the token store lease on %s from %s: not renewed for %g s",
                    self._location,
                    rotation.get("owner"),
                    float(rotation.get("lease_seconds") or 0),
                    extra={"fb_token_event": "lease_taken_over"},
                )
            tokens = self._tokens(read)
            etag = self._put_or_recognise(
                tokens, {"owner": owner, "lease_seconds": self.lease_seconds}, read.etag
            )
            if etag is not None:
                return _Lease(owner=owner, lease_seconds=self.lease_seconds, etag=etag, tokens=tokens)
            # Lost the race: another runner wrote first. Re-read at once; its lease makes us wait.
            if time.monotonic() >= deadline:
                msg = f"timed out after {wait:g} s competing for the token store lease on {self._location}"
                raise TokenStoreError(msg)

    def _renew(self, lease: _Lease) -> None:
        while not lease.stop.wait(lease.lease_seconds / 3):
            with lease.mutex:
                if lease.released or lease.stop.is_set():
                    return
                try:
                    etag = self._put_or_recognise(
                        lease.tokens, {"owner": lease.owner, "lease_seconds": lease.lease_seconds}, lease.etag
                    )
                except TokenStoreError as exc:
                    LOGGER.warning("Could not renew the token store lease: %s", exc.message)
                    continue
                if etag is None:
                    lease.lost = True
                    LOGGER.warning(
                        "Lost the token store lease on %s (another runner took it over)",
                        self._location,
                        extra={"fb_token_event": "lease_lost"},
                    )
                    return
                lease.etag = etag

    def _release(self, lease: _Lease) -> None:
        with lease.mutex:
            lease.stop.set()
            if lease.released or lease.lost:
                pass
            else:
                lease.released = True
                try:
                    if self._put_or_recognise(lease.tokens, None, lease.etag) is None:
                        LOGGER.warning(
                            "Token store lease on %s was taken over before release", self._location
                        )
                except TokenStoreError as exc:
                    LOGGER.warning(
                        "Could not release the token store lease (it lapses by itself): %s", exc.message
                    )
        if lease.thread is not None and lease.thread is not threading.current_thread():
            lease.thread.join(timeout=5)

    def _force_rotated(self, tokens: TokenSet, *, spent: TokenSet | None) -> str:
        """Our lease was taken over while we rotated. We spent the stored refresh token, so our pair
        is the grant's only live one: write it over the object as long as it still holds the spent
        pair (the taker's own refresh with it can only fail). A different pair there means someone
        wrote another grant (``auth login``): leave it and fail.
        """
        for _ in range(FORCE_WRITE_TRIES):
            read = self._get()
            current = self._tokens(read)
            if current is not None and (spent is None or current.refresh_token != spent.refresh_token):
                if current.refresh_token == tokens.refresh_token:
                    return str(read.etag)
                msg = (
                    f"the token store {self._location} received a different grant while this runner "
                    "rotated the token (auth login elsewhere?); keeping that one"
                )
                raise TokenStoreError(msg)
            etag = self._put_or_recognise(tokens, None, read.etag)
            if etag is not None:
                LOGGER.warning(
                    "Token store lease on %s lapsed during the refresh; wrote the rotated pair over the "
                    "taker's lease (its refresh token was already spent)",
                    self._location,
                    extra={"fb_token_event": "lease_lapsed_saved"},
                )
                return etag
        msg = f"could not write the rotated pair to {self._location}: it kept changing"
        raise TokenStoreError(msg)


def _expired(rotation: dict[str, t.Any], read: _Read, default_lease: float) -> bool:
    """A lease is live until ``lease_seconds`` after the object's last write, on the server's clock."""
    try:
        lease = float(rotation.get("lease_seconds") or default_lease)
    except (TypeError, ValueError):
        lease = default_lease
    if read.last_modified is None:
        return False
    # Last-Modified has a resolution of one second: count the lease from the end of that second.
    return read.server_now >= read.last_modified + 1 + lease


def _server_time(response: t.Mapping[str, t.Any]) -> float:
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if date:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            return email.utils.parsedate_to_datetime(date).timestamp()
    return time.time()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
