"""``webhook-bridge``: serve | register | status | poll | requeue.

Settings come from ``WEBHOOK_BRIDGE_<SETTING>`` (``meltano invoke webhook-bridge ...`` sets them from
meltano.yml); flags override them. Errors end with one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import time
import typing as t
from urllib.parse import urlsplit

from webhook_bridge import __version__
from webhook_bridge.settings import Settings, SettingsError, is_loopback_host

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from webhook_bridge.freshbooks import Callback, FreshBooksClient
    from webhook_bridge.store import Store

WEBHOOK_PATH = "/webhooks/freshbooks"


class CliError(Exception):
    """One-line error for the user."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webhook-bridge",
        description="FreshBooks webhooks -> durable queue -> exactly-once tap-freshbooks runs.",
    )
    parser.add_argument("--version", action="version", version=f"webhook-bridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP endpoint, the run queue and the poller")
    serve.add_argument("--host", help="bind address (WEBHOOK_BRIDGE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (WEBHOOK_BRIDGE_PORT, default 8000)")

    reg = sub.add_parser(
        "register",
        help="create (idempotently) and verify the FreshBooks callbacks; list/resend/delete",
    )
    reg.add_argument("--public-url", help="public https URL of this bridge (WEBHOOK_BRIDGE_PUBLIC_URL)")
    reg.add_argument(
        "--events",
        nargs="+",
        help="event names (invoice.update) or resources (invoice = create+update+delete); "
        "default: every resource the tap loads",
    )
    reg.add_argument("--account", action="append", help="account id (repeatable); default: all")
    action = reg.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list the callbacks and exit")
    action.add_argument("--resend", metavar="ID", help="ask FreshBooks to resend a verification")
    action.add_argument("--delete", metavar="ID", help="delete a callback (and its stored verifier)")
    reg.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="seconds to wait until FreshBooks reports the callbacks verified (0: do not wait)",
    )

    status = sub.add_parser("status", help="queue depth, last runs, failures")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    sub.add_parser("poll", help="run one incremental poll now, under the run lock (cron-safe)")

    sub.add_parser("settings", help="print the effective settings as JSON (secrets masked)")

    requeue = sub.add_parser("requeue", help="give parked events another chance")
    requeue.add_argument("ids", nargs="*", type=int, help="event ids (default: all parked)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        overrides: dict[str, object] = {}
        if args.command == "serve":
            overrides = {"host": args.host, "port": args.port}
        elif args.command == "register":
            overrides = {"public_url": args.public_url}
        settings = Settings.from_env(None, **overrides)
        handler = {
            "serve": cmd_serve,
            "register": cmd_register,
            "status": cmd_status,
            "poll": cmd_poll,
            "requeue": cmd_requeue,
            "settings": cmd_settings,
        }[args.command]
        return handler(settings, args)
    except (SettingsError, CliError) as exc:
        print(f"webhook-bridge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from webhook_bridge.freshbooks import FreshBooksAPIError  # noqa: PLC0415
        from webhook_bridge.store import StoreError  # noqa: PLC0415

        if isinstance(exc, (FreshBooksAPIError, StoreError)):
            print(f"webhook-bridge: error: {exc}", file=sys.stderr)
            return 1
        raise


# ------------------------------------------------------------------------------------------------
def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415

    from webhook_bridge import logs  # noqa: PLC0415
    from webhook_bridge.app import create_app  # noqa: PLC0415
    from webhook_bridge.commands import resolve_executable  # noqa: PLC0415

    logs.configure(settings.log_level)
    _open_store(settings).close()  # an unusable data dir fails here, in one line
    meltano = resolve_executable(settings.meltano_executable, settings.project_root)
    if shutil.which(meltano) is None:
        logs.log(
            logging.getLogger("webhook_bridge.cli"),
            logging.WARNING,
            "meltano executable not found: runs will fail until it is installed",
            meltano_executable=meltano,
        )
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
        server_header=False,
    )
    return 0


# ------------------------------------------------------------------------------------------------
def webhook_uri(public_url: str) -> str:
    """``https://host/base`` -> ``https://host/base/webhooks/freshbooks`` (unchanged if already there)."""
    url = public_url.rstrip("/")
    return url if url.endswith(WEBHOOK_PATH) else url + WEBHOOK_PATH


def _open_store(settings: Settings) -> Store:
    from webhook_bridge.store import Store  # noqa: PLC0415

    return Store.from_settings(settings)


def _client(settings: Settings) -> FreshBooksClient:
    from webhook_bridge.freshbooks import FreshBooksClient, token_provider_from_settings  # noqa: PLC0415

    return FreshBooksClient(
        settings.api_url, token_provider_from_settings(settings), timeout=settings.http_timeout_seconds
    )


def _find_account(client: FreshBooksClient, store: Store, accounts: list[str], callback_id: str) -> str:
    known = store.callback_account(callback_id)
    if known:
        return known
    for account in accounts:
        if any(str(c.callback_id) == callback_id for c in client.list_callbacks(account)):
            return account
    raise CliError(f"callback {callback_id} not found in accounts {', '.join(accounts) or '(none)'}")


def cmd_register(settings: Settings, args: argparse.Namespace) -> int:
    from webhook_bridge import logs  # noqa: PLC0415
    from webhook_bridge.freshbooks import DEFAULT_EVENTS, FreshBooksAPIError, expand_events  # noqa: PLC0415

    logs.configure("WARNING")
    store = _open_store(settings)
    with _client(settings) as client:
        accounts = list(args.account or settings.account_ids or client.account_ids())
        if not accounts:
            raise CliError("the FreshBooks grant reaches no accounting account")

        if args.list:
            for account in accounts:
                callbacks = client.list_callbacks(account)
                print(f"account {account}: {len(callbacks)} callback(s)")
                for cb in sorted(callbacks, key=lambda c: (c.event, c.callback_id)):
                    state = "verified" if cb.verified else "NOT verified"
                    print(f"  {cb.callback_id:>10}  {cb.event:<24} {state:<13} {cb.uri}")
            return 0
        if args.resend:
            account = _find_account(client, store, accounts, args.resend)
            client.resend_verification(account, args.resend)
            print(f"account {account}: verification of callback {args.resend} resent")
            return 0
        if args.delete:
            account = _find_account(client, store, accounts, args.delete)
            client.delete_callback(account, args.delete)
            removed = store.forget_callback(account, args.delete)
            print(f"account {account}: callback {args.delete} deleted ({removed} stored verifier(s) removed)")
            return 0

        if not settings.public_url:
            raise CliError("--public-url (or WEBHOOK_BRIDGE_PUBLIC_URL) is required to register")
        uri = webhook_uri(settings.public_url)
        _preflight(uri)
        events = expand_events(args.events or settings.events or DEFAULT_EVENTS)
        waiting: dict[tuple[str, int], str] = {}
        not_offered: list[str] = []
        for account in accounts:
            store.remember_account(account)  # the server now accepts this account's verifications
            existing = [c for c in client.list_callbacks(account) if c.uri == uri]
            for event in events:
                same = sorted((c for c in existing if c.event == event), key=lambda c: c.callback_id)
                if same:
                    for extra in same[1:]:
                        print(
                            f"  note: duplicate callback {extra.callback_id} for {event}; "
                            f"remove it with: webhook-bridge register --delete {extra.callback_id}"
                        )
                    cb = next((c for c in same if c.verified), same[0])
                    store.remember_callback(account, str(cb.callback_id), cb.event, cb.uri)
                    if cb.verified:
                        print(f"  {account} {event:<24} exists ({cb.callback_id}, verified)")
                    else:
                        client.resend_verification(account, cb.callback_id)
                        waiting[(account, cb.callback_id)] = event
                        print(f"  {account} {event:<24} exists ({cb.callback_id}), verification resent")
                    continue
                try:
                    cb = client.create_callback(account, event, uri)
                except FreshBooksAPIError as exc:
                    if exc.unrecognized_event:
                        not_offered.append(event)
                        print(
                            f"  {account} {event:<24} not offered by FreshBooks (skipped; the poll covers it)"
                        )
                        continue
                    raise
                store.remember_callback(account, str(cb.callback_id), cb.event or event, uri)
                if cb.verified:
                    print(f"  {account} {event:<24} created ({cb.callback_id}, verified)")
                else:
                    waiting[(account, cb.callback_id)] = event
                    print(f"  {account} {event:<24} created ({cb.callback_id}), awaiting verification")
        if not waiting:
            print("all callbacks verified")
            return 0
        if args.wait <= 0:
            print(f"{len(waiting)} callback(s) await verification (the running bridge confirms them)")
            return 0
        return _wait_verified(client, waiting, args.wait)


def _preflight(uri: str) -> None:
    import httpx  # noqa: PLC0415

    parts = urlsplit(uri)
    health = f"{parts.scheme}://{parts.netloc}{parts.path[: -len(WEBHOOK_PATH)]}/healthz"
    try:
        response = httpx.get(health, timeout=5.0)
        ok = response.status_code == 200
    except httpx.HTTPError:
        ok = False
    if not ok:
        print(
            f"  warning: {health} did not answer 200; FreshBooks' verification POST needs "
            "`webhook-bridge serve` reachable at the public URL",
            file=sys.stderr,
        )
    if parts.scheme != "https" and not is_loopback_host(parts.hostname):
        raise CliError("the public URL must be https")


def _wait_verified(client: FreshBooksClient, waiting: dict[tuple[str, int], str], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    resent = False
    pending = dict(waiting)
    while pending and time.monotonic() < deadline:
        time.sleep(0.5)
        for account in sorted({a for a, _ in pending}):
            listed: dict[int, Callback] = {c.callback_id: c for c in client.list_callbacks(account)}
            for key in [k for k in pending if k[0] == account]:
                cb = listed.get(key[1])
                if cb is not None and cb.verified:
                    print(f"  {account} {pending.pop(key):<24} verified ({key[1]})")
        if pending and not resent and time.monotonic() > deadline - timeout / 2:
            resent = True
            for account, callback_id in pending:
                client.resend_verification(account, callback_id)
    if pending:
        print(
            f"{len(pending)} callback(s) still not verified after {timeout:g} s: is "
            "`webhook-bridge serve` running and reachable at the public URL? Retry with "
            "`webhook-bridge register --resend ID`",
            file=sys.stderr,
        )
        return 1
    print("all callbacks verified")
    return 0


# ------------------------------------------------------------------------------------------------
def _iso(ts: float | None) -> str:
    from webhook_bridge.store import utc_iso  # noqa: PLC0415

    return "-" if ts is None else utc_iso(ts)


def status_report(settings: Settings) -> dict[str, t.Any]:
    from webhook_bridge.run_lock import RunLock  # noqa: PLC0415

    store = _open_store(settings)
    try:
        now = time.time()
        lock = RunLock(settings.lock_path)
        free = lock.is_free()
        return {
            "queue": store.stats(now=now),
            "run_lock": {"held": not free, "holder_pid": None if free else lock.holder()},
            "last_runs": [
                {
                    "run_id": r.id,
                    "kind": r.kind,
                    "account_id": r.account_id,
                    "status": r.status,
                    "started_at": _iso(r.started_ts),
                    "finished_at": _iso(r.finished_ts),
                    "duration_s": None if r.finished_ts is None else round(r.finished_ts - r.started_ts, 3),
                    "records": r.record_count,
                    "events": r.event_count,
                    "exit_code": r.exit_code,
                    "error": r.error,
                }
                for r in store.last_runs_by_account()
            ],
            "recent_failures": [
                {
                    "event_id": e.id,
                    "event_name": e.name,
                    "account_id": e.account_id,
                    "object_id": e.object_id,
                    "received_at": e.received_at,
                    "status": e.status,
                    "attempts": e.attempts,
                    "last_error": e.last_error,
                }
                for e in store.failures(limit=10)
            ],
            "failed_runs": [
                {
                    "run_id": r.id,
                    "kind": r.kind,
                    "account_id": r.account_id,
                    "status": r.status,
                    "finished_at": _iso(r.finished_ts),
                    "error": r.error,
                }
                for r in store.runs(limit=50)
                if r.status in ("failed", "timeout", "busy", "interrupted")
            ][:5],
            "verifiers": store.verifier_summary(),
        }
    finally:
        store.close()


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    report = status_report(settings)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    q = report["queue"]
    print(
        f"queue depth: {q['queue_depth']} ({q['pending']} pending of which {q['retrying']} retrying, "
        f"{q['running']} running); parked: {q['parked']}; done: {q['done']}; ignored: {q['ignored']}"
    )
    age = q["oldest_pending_age_seconds"]
    print("oldest pending event: " + ("none" if age is None else f"{age:.1f} s ago"))
    lock = report["run_lock"]
    print("run lock: " + (f"held by pid {lock['holder_pid']}" if lock["held"] else "free"))
    print("last run per account:")
    if not report["last_runs"]:
        print("  (no runs yet)")
    for r in report["last_runs"]:
        account = r["account_id"] or "(all accounts)"
        line = (
            f"  {account:<16} {r['kind']:<8} {r['status']:<11} started {r['started_at']}"
            f"  duration {r['duration_s'] if r['duration_s'] is not None else '-'} s"
        )
        if r["kind"] == "webhook":
            line += f"  {r['records']} record(s) from {r['events']} event(s)"
        print(line)
        if r["error"] and r["status"] != "succeeded":
            print(f"      {r['error'][:300]}")
    print("recent failures:")
    if not report["recent_failures"] and not report["failed_runs"]:
        print("  none")
    for e in report["recent_failures"]:
        print(
            f"  event {e['event_id']} {e['event_name']} {e['account_id']}/{e['object_id']} "
            f"{e['status']} after {e['attempts']} attempt(s): {(e['last_error'] or '')[:200]}"
        )
    for r in report["failed_runs"]:
        print(
            f"  run {r['run_id']} ({r['kind']}, {r['account_id'] or 'all'}) {r['status']} at "
            f"{r['finished_at']}: {(r['error'] or '')[:200]}"
        )
    if report["verifiers"]:
        print(
            "verifiers: "
            + "; ".join(
                f"{acct} " + ", ".join(f"{k}={v}" for k, v in sorted(states.items()))
                for acct, states in sorted(report["verifiers"].items())
            )
        )
    return 0


# ------------------------------------------------------------------------------------------------
def cmd_poll(settings: Settings, _args: argparse.Namespace) -> int:
    from webhook_bridge import logs  # noqa: PLC0415
    from webhook_bridge.replicas import ReplicatedRunner  # noqa: PLC0415
    from webhook_bridge.runner import Runner  # noqa: PLC0415

    logs.configure(settings.log_level)
    store = _open_store(settings)

    async def go() -> int:
        # replicated (database_url): a poll per account, each under its lock and state ID
        runner = (ReplicatedRunner if settings.database_url else Runner)(settings, store)
        try:
            outcome = await runner.run_poll()
            await runner.run_post_load_now()
        finally:
            await runner.close()
        return 0 if outcome is not None and outcome.ok else 1

    try:
        return asyncio.run(go())
    finally:
        store.close()


def cmd_requeue(settings: Settings, args: argparse.Namespace) -> int:
    store = _open_store(settings)
    try:
        n = store.requeue_parked(args.ids or None)
    finally:
        store.close()
    print(f"{n} parked event(s) queued again")
    return 0


def cmd_settings(settings: Settings, _args: argparse.Namespace) -> int:
    print(json.dumps(settings.describe(), indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
