"""Retries that behave (issue 9, point 4), against the emulator's real HTTP server.

Waits are measured where they happen: at the emulator, as the gap between a failed request's arrival
and the next request's arrival (the tap sends one request at a time).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter

import pytest
import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from conftest import ROOT, run_tap, tap_config
from freshbooks_auth.token_store import TokenStore
from freshbooks_emulator.streams import LINE_RIDERS
from tap_freshbooks import retries
from tap_freshbooks.errors import ReauthorizationRequired
from tap_freshbooks.streams import STREAM_TYPES
from tap_freshbooks.streams.base import FreshBooksStream

ALL_STREAMS = [s.name for s in STREAM_TYPES]
ID_FIELDS = {
    "bill_vendors": "vendorid",
    "other_incomes": "incomeid",
    "chart_of_accounts": "uuid",
    "team_members": "uuid",
}
#: waits after attempt 1, 2, 3 of one request: [0.05, 0.1], [0.1, 0.2], [0.2, 0.4] s
TEST_POLICY = retries.RetryPolicy(base_seconds=0.1, max_seconds=5.0, max_retry_after_seconds=5.0)


@pytest.fixture(autouse=True)
def small_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FreshBooksStream, "retry_policy", TEST_POLICY)


def truth_ids(emu, stream: str, account_id: str) -> list[str]:
    if stream in LINE_RIDERS:  # invoice_lines, estimate_lines, invoice_profile_lines
        return sorted(str(line["lineid"]) for line in emu.truth(stream, account_id))
    field = ID_FIELDS.get(stream, "id")
    return sorted(str(r.get(field, r.get("id"))) for r in emu.truth(stream, account_id))


def assert_complete_and_unduplicated(run, emu, accounts: list[dict] | None = None) -> None:
    for account in accounts or emu.accounts:
        for stream in ALL_STREAMS:
            assert run.ids(stream, account["account_id"]) == truth_ids(emu, stream, account["account_id"]), (
                stream
            )
    for stream_type in STREAM_TYPES:
        keys = [tuple(r[k] for k in stream_type.primary_keys) for r in run.records.get(stream_type.name, [])]
        assert len(keys) == len(set(keys)), stream_type.name


def waits_after(emu, kinds: set[str | None]) -> list[float]:
    """Seconds between each faulted request (of these kinds) and the request that followed it."""
    arrivals = list(emu.faults.arrivals)
    return [later[0] - earlier[0] for earlier, later in itertools.pairwise(arrivals) if earlier[2] in kinds]


def chosen_waits(caplog: pytest.LogCaptureFixture) -> list[tuple[int, float]]:
    """(attempt, seconds) of each backoff, as the tap chose and logged it."""
    return [(r.fb_retry_attempt, r.fb_retry_wait_s) for r in caplog.records if hasattr(r, "fb_retry_wait_s")]


def api_statuses(emu) -> list[int]:
    return [status for _m, path, status in emu.request_log if "/oauth/" not in path]


# -- the policy itself ----------------------------------------------------------------------------


def test_waits_grow_within_a_request_are_capped_and_jittered() -> None:
    policy = retries.RetryPolicy(base_seconds=1.0, max_seconds=8.0)
    rng = random.Random(9)
    for attempt, step in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        draws = [policy.wait(attempt, rng=rng) for _ in range(200)]
        assert step / 2 <= min(draws) and max(draws) <= step  # equal jitter: a floor of half a step
        assert len({round(d, 6) for d in draws}) > 150  # identical situations, different waits
    assert policy.wait(1, retry_after=5.0, rng=rng) == 5.0  # Retry-After is a floor ...
    assert policy.wait(1, retry_after=0.0, rng=rng) >= 0.5  # ... not a ceiling
    assert retries.RetryPolicy(max_retry_after_seconds=60).wait(1, retry_after=3600) == 60  # capped


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = 1_445_412_478.0  # 2015-10-21 07:27:58 UTC
    assert retries.parse_retry_after("1") == 1.0
    assert retries.parse_retry_after(" 30 ") == 30.0
    assert retries.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 2.0
    assert retries.parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now=now) == 0.0  # in the past
    assert retries.parse_retry_after("soon") is None
    assert retries.parse_retry_after(None) is None


def test_each_request_gets_its_own_attempt_counter(emulator, tmp_path) -> None:
    """The stream hands python-backoff a new generator per request: request B starts at step 1
    however far request A escalated."""
    from tap_freshbooks.tap import TapFreshBooks

    tap = TapFreshBooks(config=tap_config(emulator, tmp_path), parse_env_config=False)
    stream = tap.streams["invoices"]
    response = requests.Response()
    response.status_code = 503
    failure = RetriableAPIError("503", response)
    first = stream.backoff_wait_generator()
    first.send(None)
    escalated = [first.send(failure) for _ in range(4)]
    assert escalated[-1] >= 0.4  # step 4 of TEST_POLICY: [0.4, 0.8]
    second = stream.backoff_wait_generator()
    second.send(None)
    assert second.send(failure) <= 0.1  # step 1 again


# -- the tap against the emulator -------------------------------------------------------------------


def test_isolated_failures_never_escalate(emulator, tmp_path, monkeypatch, caplog) -> None:
    """Every 2nd request fails once, over many pages and streams: each waits one short, jittered
    step. (A counter shared by all requests, as before, doubled the wait at every failure.)"""
    # steps of one request: [0.025, 0.05], [0.05, 0.1], [0.1, 0.2], [0.2, 0.4] s
    monkeypatch.setattr(FreshBooksStream, "retry_policy", retries.RetryPolicy(base_seconds=0.05))
    account = emulator.accounts[0]
    emulator.seed_bulk("invoices", 250, account["account_id"])  # 3+ pages
    emulator.faults.configure(server_error_every=2)
    with caplog.at_level(logging.WARNING):
        run = run_tap(tap_config(emulator, tmp_path, account_ids=[account["account_id"]]))
    assert_complete_and_unduplicated(run, emulator, [account])
    # What the tap chose (its backoff log lines): every retry is attempt 1, one step of [0.025, 0.05] s.
    # The gaps the emulator saw are only a floor: on a loaded CI runner a thread may wake 100 ms late.
    chosen = chosen_waits(caplog)
    assert len(chosen) >= 20
    assert all(attempt == 1 and 0.025 <= wait <= 0.05 for attempt, wait in chosen), chosen
    assert statistics.pstdev(wait for _attempt, wait in chosen) > 0.002  # jitter: same situation, other waits
    waits = waits_after(emulator, {"503"})
    assert len(waits) == len(chosen)
    assert all(w >= 0.025 for w in waits), [round(w, 3) for w in waits]


def test_waits_escalate_within_one_request_and_reset_after_it(
    emulator, tmp_path, monkeypatch, caplog
) -> None:
    # steps of one request: [0.1, 0.2], [0.2, 0.4], [0.4, 0.8], [0.8, 1.6] s
    monkeypatch.setattr(FreshBooksStream, "retry_policy", retries.RetryPolicy(base_seconds=0.2))
    emulator.faults.configure(only_paths="/users/clients$", fail_next={"n": 3, "status": 503})
    with caplog.at_level(logging.WARNING):
        run = run_tap(tap_config(emulator, tmp_path, account_ids=[emulator.accounts[0]["account_id"]]))
        assert run.records["clients"]
        emulator.faults.configure(fail_next={"n": 1, "status": 503})  # the next clients request: once
        run_tap(tap_config(emulator, tmp_path, account_ids=[emulator.accounts[0]["account_id"]]))
    first, second, third, later = chosen_waits(caplog)
    assert [first[0], second[0], third[0], later[0]] == [1, 2, 3, 1]  # a new request starts at step 1
    assert 0.1 <= first[1] <= 0.2 and 0.2 <= second[1] <= 0.4 and 0.4 <= third[1] <= 0.8
    assert 0.1 <= later[1] <= 0.2
    # and the emulator saw at least those waits (a loaded machine only adds to them)
    seen = waits_after(emulator, {"503"})
    for gap, (_attempt, chosen) in zip(seen, [first, second, third, later], strict=True):
        assert gap >= chosen - 0.005, (seen, chosen)


def test_retry_after_is_honoured(emulator, tmp_path, caplog) -> None:
    emulator.faults.configure(
        only_paths="/users/clients$", retry_after="1", fail_next={"n": 1, "status": 429}
    )
    with caplog.at_level(logging.WARNING):
        run = run_tap(tap_config(emulator, tmp_path, account_ids=[emulator.accounts[0]["account_id"]]))
    assert run.records["clients"]
    [(attempt, chosen)] = chosen_waits(caplog)
    assert attempt == 1 and chosen == 1.0  # Retry-After, not a backoff step
    [wait] = waits_after(emulator, {"429"})
    assert wait >= 1.0 - 0.005, wait


FAULTS = [
    pytest.param({"server_error_every": 5}, "503", id="503"),
    pytest.param({"rate_limit_every": 5}, "429", id="429"),
    pytest.param({"reset_every": 5}, "reset", id="connection-reset"),
    pytest.param({"truncate_every": 5, "truncate_style": "length"}, "truncate", id="short-of-content-length"),
    pytest.param({"truncate_every": 5, "truncate_style": "chunked"}, "truncate", id="chunked-cut-short"),
    pytest.param({"garbage_every": 5, "garbage_style": "html"}, "garbage", id="html-on-200"),
    pytest.param({"garbage_every": 5, "garbage_style": "half_json"}, "garbage", id="half-json-on-200"),
    pytest.param({"garbage_every": 5, "garbage_style": "binary"}, "garbage", id="not-utf8-on-200"),
    pytest.param({"timeout_every": 14, "timeout_seconds": 1.5}, "timeout", id="read-timeout"),
]


@pytest.mark.parametrize(("faults", "kind"), FAULTS)
def test_each_fault_is_retried_and_nothing_is_lost_or_sent_twice(emulator, tmp_path, faults, kind) -> None:
    account = emulator.accounts[0]
    emulator.faults.configure(**faults)
    run = run_tap(tap_config(emulator, tmp_path, request_timeout=1, account_ids=[account["account_id"]]))
    assert emulator.faults.injected_by_kind[kind] >= 2
    assert_complete_and_unduplicated(run, emulator, [account])


@pytest.mark.parametrize("kind", ["reset", "garbage", "truncate", "503"])
def test_fetches_by_id_use_the_same_retries(emulator, tmp_path, kind) -> None:
    account_id = emulator.accounts[0]["account_id"]
    wanted = [str(r["id"]) for r in emulator.truth("invoices", account_id)[:2]]
    status = int(kind) if kind.isdigit() else kind
    emulator.faults.configure(only_paths=r"/invoices/invoices/\d+$", fail_next={"n": 2, "status": status})
    config = tap_config(emulator, tmp_path, account_ids=[account_id], record_ids={"invoices": wanted})
    run = run_tap(config)
    assert run.ids("invoices") == sorted(wanted)
    assert emulator.faults.injected == 2


def test_a_401_refreshes_once_and_retries_at_once(emulator, tmp_path, monkeypatch) -> None:
    # any backoff step would be >= 1 s here: the retry after a refreshed token must not wait
    monkeypatch.setattr(FreshBooksStream, "retry_policy", retries.RetryPolicy(base_seconds=2.0))
    config = tap_config(emulator, tmp_path, account_ids=[emulator.accounts[0]["account_id"]])
    run_tap(config)  # fills the token store
    emulator.expire_access_tokens()
    emulator.clear_log()
    emulator.faults.configure(reset=True)
    run = run_tap(config)
    assert run.records["clients"]
    statuses = api_statuses(emulator)
    assert statuses.count(401) == 1  # (which request meets the expired token first may vary)
    assert sum("/oauth/token" in path for _m, path, _s in emulator.request_log) == 1
    failed = statuses.index(401)
    arrivals = list(emulator.faults.arrivals)  # every API request, in the order they arrived
    assert len(arrivals) == len(statuses)
    assert arrivals[failed + 1][0] - arrivals[failed][0] < 0.5  # the refresh POST, and no backoff


def test_a_401_on_a_fresh_token_asks_to_reauthorize(emulator, tmp_path) -> None:
    emulator.faults.configure(fail_next={"n": 2, "status": 401})
    with pytest.raises(ReauthorizationRequired, match="auth login"):
        run_tap(tap_config(emulator, tmp_path))
    # the bootstrap refresh, then ONE refresh after the first 401 (not one per attempt)
    assert sum("/oauth/token" in path for _m, path, _s in emulator.request_log) == 2


@pytest.mark.parametrize("status", [403, 400, 404, 422])
def test_403_and_other_4xx_are_not_retried(emulator, tmp_path, status) -> None:
    emulator.faults.configure(only_paths="/users/clients$", server_error_every=1, server_error_status=status)
    with pytest.raises(FatalAPIError):
        run_tap(tap_config(emulator, tmp_path))
    assert Counter(kind for _at, _path, kind in emulator.faults.arrivals)[str(status)] == 1


def test_exhausted_retries_end_in_one_clear_line_and_exit_1(emulator, tmp_path) -> None:
    """Through the CLI, with the shipped waits: 3 attempts, then one line naming the stream, the path
    (no query string, no token) and the last failure."""
    account_id = emulator.accounts[0]["account_id"]
    config = tap_config(emulator, tmp_path, max_request_tries=3, account_ids=[account_id])
    emulator.faults.configure(only_paths="/invoices/invoices$", server_error_every=1)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_FRESHBOOKS")}
    proc = subprocess.run(
        [sys.executable, "-m", "tap_freshbooks", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert last == (
        f"tap-freshbooks: Stream invoices: GET /accounting/account/{account_id}/invoices/invoices failed 3 "
        f"times; last failure: 503 from FreshBooks for /accounting/account/{account_id}/invoices/invoices: "
        "Service temporarily unavailable. FreshBooks (or the network to it) keeps failing: try again "
        "later, or raise max_request_tries."
    ), last
    assert Counter(kind for _at, _path, kind in emulator.faults.arrivals)["503"] == 3
    stored = TokenStore(config["token_store_path"], config["token_encryption_key"]).load()
    secrets = {config["refresh_token"], config["client_secret"], stored.access_token, stored.refresh_token}
    assert not any(secret in proc.stderr + proc.stdout for secret in secrets)
    assert "?" not in last and "per_page" not in proc.stderr


def _black_hole() -> tuple[socket.socket, list[socket.socket]]:
    """A port whose accept queue is full: a connect to it hangs until the connect timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(server.getsockname())
        fillers.append(filler)
    return server, fillers


@pytest.mark.parametrize("where", ["connect-timeout", "refused"])
def test_connect_failures_are_retried_then_named(emulator, tmp_path, where) -> None:
    """Through the stream's own request decorator: a connect timeout or a refused connection is
    retried max_request_tries times, then named in one line without the query string."""
    from tap_freshbooks.retries import RequestFailed
    from tap_freshbooks.tap import TapFreshBooks

    tap = TapFreshBooks(config=tap_config(emulator, tmp_path, max_request_tries=2), parse_env_config=False)
    stream = tap.streams["invoices"]
    server, fillers = _black_hole()
    host, port = server.getsockname()
    if where == "refused":
        server.close()  # nothing listens there any more
    attempts = []

    def send(prepared: requests.PreparedRequest) -> requests.Response:
        attempts.append(time.monotonic())
        return requests.Session().send(prepared, timeout=(0.2, 1))

    url = f"http://{host}:{port}/accounting/account/x/invoices/invoices?page=2&search[secret]=hidden"
    try:
        with pytest.raises(RequestFailed) as info:
            stream.request_decorator(send)(requests.Request("GET", url).prepare())
    finally:
        for sock in [server, *fillers]:
            sock.close()
    assert len(attempts) == 2
    expected = "connect timeout" if where == "connect-timeout" else "connection refused"
    assert str(info.value).startswith(
        f"Stream invoices: GET /accounting/account/x/invoices/invoices failed 2 times; last failure: {expected}"
    ), str(info.value)
    assert "hidden" not in str(info.value) and "127.0.0.1" not in str(info.value)


def test_faults_are_configurable_over_the_admin_api(emulator) -> None:
    base = f"{emulator.url}/_emulator/faults"
    state = requests.post(
        base,
        json={
            "reset_every": 4,
            "truncate_every": 5,
            "truncate_style": "chunked",
            "garbage_every": 6,
            "garbage_style": "html",
            "timeout_every": 7,
            "timeout_seconds": 0.5,
            "only_paths": "/users/clients$",
            "fail_next": {"n": 1, "status": "reset"},
        },
        timeout=10,
    ).json()
    assert state["reset_every"] == 4 and state["truncate_style"] == "chunked" and state["only_paths"]
    grant = emulator.issue_grant()
    session = requests.Session()
    url = f"{emulator.url}/accounting/account/{emulator.accounts[0]['account_id']}/users/clients"
    with pytest.raises(requests.ConnectionError):
        session.get(url, headers={"Authorization": f"Bearer {grant['access_token']}"}, timeout=5)
    assert requests.get(base, timeout=10).json()["injected_by_kind"] == {"reset": 1}
