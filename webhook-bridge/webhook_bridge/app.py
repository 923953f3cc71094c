"""HTTP routes: ``POST /webhooks/freshbooks`` and ``GET /healthz``.

``create_app(settings)`` builds the app; the lifespan owns the :class:`~webhook_bridge.service.Bridge`
(database, workers). A delivery is answered:

* 413 when the body is over ``max_body_bytes``; 400 when it is not a form FreshBooks would send;
* 401 when it is not an event correctly signed with a verified verifier of its account (unsigned,
  tampered, wrong key, unknown or not-allowed account, malformed identifying fields) - nothing is
  stored;
* 200 for a verification delivery after the verifier is stored (encrypted, pending); the verify PUT
  happens afterwards in the background;
* 200 for a valid event only after it is committed to SQLite (``synchronous=FULL``); 503 if that
  commit failed, so FreshBooks delivers it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import typing as t

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from webhook_bridge.logs import log
from webhook_bridge.service import Bridge, ClientFactory
from webhook_bridge.signature import (
    SIGNATURE_HEADER,
    EventDelivery,
    FormError,
    SignatureError,
    VerificationDelivery,
    classify,
    parse_form,
    verify_signature,
)
from webhook_bridge.store import StoreError, utc_iso

if t.TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

    from webhook_bridge.settings import Settings

LOGGER = logging.getLogger("webhook_bridge.app")
FORM_TYPE = "application/x-www-form-urlencoded"
# FreshBooks sends ~7 short fields (ids, an event name, a 33-char verifier): anything far longer is
# refused before a signature is computed or anything is stored.
MAX_FIELD_NAME_CHARS = 64
MAX_FIELD_VALUE_CHARS = 256


class _TooLarge(Exception):
    pass


def _reply(status: int, message: str, **extra: t.Any) -> JSONResponse:
    return JSONResponse({"status": status, "message": message, **extra}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise FormError("bad Content-Length")
        if int(declared) > limit:
            raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


async def receive_webhook(request: Request) -> JSONResponse:
    """``POST /webhooks/freshbooks``."""
    bridge: Bridge = request.app.state.bridge
    received_ts = time.time()
    client = request.client.host if request.client else None
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != FORM_TYPE:  # refused before the body is even read
        log(LOGGER, logging.WARNING, "delivery refused: not a form", client=client)
        return _reply(400, f"expected {FORM_TYPE}")
    try:
        body = await _read_body(request, bridge.settings.max_body_bytes)
    except _TooLarge:
        log(LOGGER, logging.WARNING, "delivery refused: body too large", client=client)
        return _reply(413, "body too large")
    except FormError:
        return _reply(400, "bad request")
    try:
        fields = parse_form(body)
        _check_field_sizes(fields)
    except FormError as exc:
        log(LOGGER, logging.WARNING, "delivery refused: malformed form", client=client, reason=str(exc))
        return _reply(400, "malformed form")

    try:
        delivery = classify(fields)
    except SignatureError as exc:
        log(LOGGER, logging.WARNING, "delivery refused", client=client, reason=str(exc))
        return _reply(401, "unauthorized")

    if not isinstance(delivery, EventDelivery):
        return await _verification(bridge, delivery, client)
    return await _event(bridge, request, delivery, received_ts, client)


def _check_field_sizes(fields: list[tuple[str, str]]) -> None:
    """Raise FormError for a field name or value far beyond anything FreshBooks sends."""
    for name, value in fields:
        if len(name) > MAX_FIELD_NAME_CHARS or len(value) > MAX_FIELD_VALUE_CHARS:
            raise FormError("form field too long")


async def _verification(bridge: Bridge, delivery: VerificationDelivery, client: str | None) -> JSONResponse:
    account_id = delivery.account_id or await bridge.callback_account(delivery.callback_id)
    fields = {"callback_id": delivery.callback_id, "account_id": account_id, "client": client}
    if account_id is None:
        log(LOGGER, logging.WARNING, "verification refused: account unknown", **fields)
        return _reply(400, "verification without account_id for an unknown callback")
    if not await bridge.verification_allowed(account_id):
        log(
            LOGGER,
            logging.WARNING,
            "verification refused: account not expected (run register, or set account_ids)",
            **fields,
        )
        return _reply(401, "unauthorized")
    try:
        status = await bridge.accept_verification(delivery, account_id)
    except StoreError as exc:
        log(LOGGER, logging.ERROR, "verification not stored", error=str(exc), **fields)
        return _reply(503, "try again later")
    log(LOGGER, logging.INFO, "verification received", verifier_status=status, **fields)
    return _reply(200, "verification received")


async def _event(
    bridge: Bridge, request: Request, delivery: EventDelivery, received_ts: float, client: str | None
) -> JSONResponse:
    fields = {
        "event_name": delivery.name,
        "account_id": delivery.account_id,
        "object_id": delivery.object_id,
        "received_at": utc_iso(received_ts),
        "client": client,
    }
    signature = request.headers.get(SIGNATURE_HEADER)
    if not bridge.account_allowed(delivery.account_id):
        log(LOGGER, logging.WARNING, "event refused: account not in account_ids", **fields)
        return _reply(401, "unauthorized")
    verifiers = await bridge.verifiers_for(delivery.account_id)
    try:
        verify_signature(delivery.fields, signature, verifiers)
    except SignatureError:
        # maybe a verification finished in another process a moment ago: re-read once
        fresh = await bridge.verifiers_for(delivery.account_id, refresh=True)
        try:
            if fresh is verifiers:
                raise
            verify_signature(delivery.fields, signature, fresh)
        except SignatureError as exc:
            log(LOGGER, logging.WARNING, "event refused", reason=str(exc), **fields)
            return _reply(401, "unauthorized")
    try:
        result = await bridge.enqueue(delivery, received_ts)
    except (TimeoutError, StoreError) as exc:
        log(LOGGER, logging.ERROR, "event NOT stored; FreshBooks will retry", error=str(exc), **fields)
        return _reply(503, "try again later")
    log(
        LOGGER,
        logging.INFO,
        f"event {result.status}",
        event_id=result.event_id,
        ack_ms=round((time.time() - received_ts) * 1000, 2),
        **fields,
    )
    return _reply(200, result.status, event_id=result.event_id)


async def healthz(request: Request) -> JSONResponse:
    """``GET /healthz``: 200 when the bridge can take events."""
    bridge: Bridge = request.app.state.bridge
    ok, reason = await asyncio.to_thread(bridge.healthy)
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "detail": reason}, status_code=200 if ok else 503
    )


def create_app(
    settings: Settings,
    *,
    client_factory: ClientFactory | None = None,
    run_runner: bool = True,
) -> Starlette:
    """The ASGI app. ``run_runner=False``: receive and store only, start no runs (HTTP-layer tests)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        bridge = Bridge(settings, client_factory=client_factory, run_runner=run_runner)
        app.state.bridge = bridge
        await bridge.start()
        try:
            yield
        finally:
            await bridge.stop()

    return Starlette(
        routes=[
            Route("/webhooks/freshbooks", receive_webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
