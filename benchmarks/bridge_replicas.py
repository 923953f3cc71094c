"""Replicated bridge: events/s accepted and runs/min completed with 1, 2 and 3 replicas (not a test).

For each replica count, one after the other in this one run, a fresh cluster (the harness of
``tests/bridge/test_replicas.py``: real ``webhook-bridge serve`` replicas in replicated mode on one
embedded PostgreSQL holding the queue, Meltano's system database and the target-postgres
warehouse; the FreshBooks emulator) gets the same workload:

* ``--events`` signed webhooks (default 1,000) over ``--accounts`` accounts (default 6) of
  ``--clients`` clients each (default 10), each a real change in the emulator, sent round-robin to
  the replicas by 16 senders. **events/s accepted** = events / seconds until the last 200 (each 200
  means the event is committed in PostgreSQL).
* Runs are capped at ``--max-batch`` records (default 5), so the workload needs a known minimum of
  runs. **runs/min completed** = webhook runs that succeeded / minutes from the first event until
  every event is done.

Startup (Meltano resolution, catalog discovery) and a warm-up of one event per account (the
first loads create the warehouse's schema and table) are not timed. The table at the end gives each
figure and its ratio to 1 replica. Every replica runs ``workers=1``; the machine's cores are shared
by all replicas, their runs and PostgreSQL, so the ratios say what replicas buy on THIS machine.

Usage:
  .venv/bin/python benchmarks/bridge_replicas.py [--replicas 1,2,3] [--events 1000] [--accounts 6]
      [--clients 10] [--max-batch 5] [--rounds 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "webhook-bridge"), str(ROOT / "tests"), str(ROOT / "tap-freshbooks")]

from bridge.replica_cluster import Cluster, plugins_installed  # noqa: E402


def measure(replicas: int, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-replicas-", dir=args.keep) as tmp:
        root = (
            Path(tmp) if args.keep is None else Path(tempfile.mkdtemp(prefix=f"{replicas}-", dir=args.keep))
        )
        cluster = Cluster(
            root,
            accounts=args.accounts,
            clients_per_account=args.clients,
            max_batch_records=str(args.max_batch),
        )
        try:
            for n in range(replicas):
                cluster.start(n)
            # warm-up, not timed: one event per account creates the warehouse's schema and table
            # (concurrent first loads race on CREATE SCHEMA in target-postgres; the loser is retried)
            cluster.deliver_many(range(args.accounts), replicas=list(range(replicas)))
            cluster.wait_drained(timeout=600)
            [(warm_runs,)] = cluster.query("bridge", "SELECT coalesce(max(id), 0) FROM runs")
            events = range(args.accounts, args.accounts + args.events)
            for i in events:  # the changes first: the senders time the bridge, not the emulator
                cluster.change(i)
            started = time.monotonic()
            codes = cluster.deliver_many(events, replicas=list(range(replicas)), threads=16, changed=True)
            accepted_s = time.monotonic() - started
            if codes.count(200) != args.events:
                raise SystemExit(f"{replicas} replicas: {len(codes) - codes.count(200)} events refused")
            cluster.wait_drained(timeout=1800)
            drained_s = time.monotonic() - started
            [(runs,)] = cluster.query(
                "bridge",
                "SELECT count(*) FROM runs WHERE kind = 'webhook' AND status = 'succeeded' AND id > %s",
                (warm_runs,),
            )
            [(failed,)] = cluster.query(
                "bridge",
                "SELECT count(*) FROM runs WHERE kind = 'webhook' AND status <> 'succeeded' AND id > %s",
                (warm_runs,),
            )
        finally:
            cluster.close()
    result = {
        "replicas": replicas,
        "events_per_s": args.events / accepted_s,
        "accept_s": accepted_s,
        "runs": int(runs),
        "other_runs": int(failed),
        "drain_s": drained_s,
        "runs_per_min": int(runs) / drained_s * 60,
    }
    print(
        f"{replicas} replica(s): {args.events} events accepted in {accepted_s:.2f} s, "
        f"{int(runs)} runs succeeded ({int(failed)} not) in {drained_s:.1f} s",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=6)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--max-batch", type=int, default=5)
    parser.add_argument("--keep", help="keep each cluster's logs under this directory")
    parser.add_argument("--rounds", type=int, default=1, help="measure each count this often (medians)")
    args = parser.parse_args()
    if not plugins_installed():
        print("Meltano plugins are not installed: run scripts/setup", file=sys.stderr)
        return 2
    counts = [int(n) for n in args.replicas.split(",")]
    runs: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
    for _ in range(args.rounds):  # interleaved: a change in the machine's load hits every count alike
        for n in counts:
            runs[n].append(measure(n, args))
    results = [
        {
            "replicas": n,
            **{
                k: statistics.median(r[k] for r in runs[n])
                for k in ("events_per_s", "runs", "drain_s", "runs_per_min")
            },
        }
        for n in counts
    ]
    base = results[0]
    print()
    print(f"medians of {args.rounds} interleaved round(s)")
    print(
        f"workload: {args.events} webhooks, {args.accounts} accounts x {args.clients} clients, "
        f"runs of at most {args.max_batch} records, workers=1 per replica"
    )
    header = f"{'replicas':>8} {'events/s':>9} {'ratio':>6} {'runs':>5} {'drain s':>8} {'runs/min':>9} {'ratio':>6}"
    print(header)
    for r in results:
        print(
            f"{r['replicas']:>8} {r['events_per_s']:>9.0f} {r['events_per_s'] / base['events_per_s']:>6.2f}"
            f" {r['runs']:>5.0f} {r['drain_s']:>8.1f} {r['runs_per_min']:>9.1f}"
            f" {r['runs_per_min'] / base['runs_per_min']:>6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
